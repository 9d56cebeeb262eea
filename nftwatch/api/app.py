"""The application factory and its routes. Handlers are thin: validate, read ``store``, shape."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.api import errors, listings, market_routes, schemas, streams, views
from nftwatch.api.auth import KeyChecker, key_hash, presented_key
from nftwatch.api.errors import problems
from nftwatch.api.headers import SecurityHeaders
from nftwatch.api.params import (
    BIGINT_MAX,
    EXTRACTOR_PATTERN,
    CollectionRef,
    TokenRef,
    collection_ref,
    parse_contract,
    parse_extractor,
    parse_instant,
    token_ref,
    unprocessable,
)
from nftwatch.api.ratelimit import Limiter, RateLimits
from store import listings as store_listings
from store import market, ops, outbox, tokens, valuations, vectors

MAX_WAIT_S = 30.0
POLL_INTERVAL_S = 0.25
MAX_STREAM_S = 3600.0
STATIC = Path(__file__).parent / "static"

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)

Token = Annotated[TokenRef, Depends(token_ref)]
CollectionPath = Annotated[CollectionRef, Depends(collection_ref)]


def _not_found(message: str) -> HTTPException:
    return HTTPException(status_code=404, detail=message)


def _stored_key_hashes(factory: sessionmaker[Session]) -> list[bytes]:
    from store.keys import active_key_hashes

    with factory() as session:
        return [bytes.fromhex(h) for h in active_key_hashes(session)]


def create_app(
    factory: sessionmaker[Session],
    *,
    api_keys: Sequence[str],
    key_hashes: Sequence[bytes] = (),
    chain_id_default: int | None = None,
    allow_anonymous: bool = False,
    key_ttl: float = 5.0,
    rpc_chains: Collection[int] | None = None,
    rate_limits: RateLimits | None = None,
    threads: int | None = None,
) -> FastAPI:
    """The API over the database ``factory`` opens sessions on.

    Every ``/v1`` route needs one of ``api_keys`` (or of ``key_hashes``, their SHA-256); with
    none, the app refuses to exist unless ``allow_anonymous`` says that an open API is intended.
    ``rpc_chains``: the chains the workers can read (a valuation on another is refused); None
    when unknown. ``threads``: how many requests may use the database at once in this process
    (the thread pool that runs them); size the engine's pool to match."""
    checker = KeyChecker(
        api_keys, stored=lambda: _stored_key_hashes(factory), ttl=key_ttl, hashes=key_hashes
    )
    if not checker.configured and not allow_anonymous:
        raise ValueError(
            "no API keys: create one with `nftwatch keys create NAME` or set NFTWATCH_API_KEYS "
            "(or allow anonymous use)"
        )
    limiter = Limiter(rate_limits or RateLimits())
    served_chains = None if rpc_chains is None else frozenset(rpc_chains)

    def require_key(
        request: Request,
        x_api_key: Annotated[str | None, Security(_api_key_header)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    ) -> None:
        """Refuse a request without a valid key; note who asked (the key's hash, or the
        client's address on an open API): whom the rate limits count, whose stream ends when
        the key is revoked."""
        request.state.key_digest = None
        if allow_anonymous and not checker.configured:
            request.state.client_id = request.client.host if request.client else "anonymous"
            return
        key = presented_key(x_api_key, f"Bearer {bearer.credentials}" if bearer else None)
        if not checker.check(key):
            raise HTTPException(
                status_code=401,
                detail="missing or unknown API key (X-API-Key or Authorization: Bearer)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        assert key is not None
        digest = key_hash(key)
        request.state.client_id = digest.hex()
        request.state.key_digest = digest

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if threads is not None:
            # no more requests on threads than the pool has connections: a thread that would
            # wait for a connection holds its place and the GIL's attention for nothing
            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(
        title="nftwatch",
        summary="NFT tokens, images, visual neighbours and valuations for a lending desk.",
        version="1",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(SecurityHeaders)
    app.state.chain_id_default = chain_id_default
    v1 = APIRouter(
        prefix="/v1",
        dependencies=[Depends(require_key)],
        responses=problems(401, 422, 503),
    )

    @app.get("/healthz", summary="Liveness and database reachability (no key needed)")
    def healthz() -> JSONResponse:
        try:
            with factory() as session:
                ops.ping(session)
        except Exception as exc:  # any failure to reach the database means unhealthy
            return JSONResponse(
                {"status": "degraded", "database": f"error: {type(exc).__name__}"},
                status_code=503,
            )
        body: dict[str, Any] = {"status": "ok", "database": "ok"}
        if chain_id_default is not None:
            body["chain_id"] = chain_id_default
        return JSONResponse(body)

    @v1.get(
        "/tokens/{chain_id}/{contract}/{token_id}",
        summary="A token: metadata, image, owner, activity counts and its sales",
        response_model=schemas.TokenOut,
        responses=problems(404),
    )
    def get_token(ref: Token) -> dict[str, Any]:
        with factory() as session:
            row = tokens.token(session, ref.chain_id, ref.contract, ref.token_id)
            if row is None:
                raise _not_found(f"token {ref.path} is not known")
            sales = market.token_sales(session, ref.chain_id, ref.contract, ref.token_id)
            return views.token_body(row, sales, f"/v1/tokens/{ref.path}/image")

    @v1.get(
        "/tokens/{chain_id}/{contract}/{token_id}/image",
        summary="The token's stored image bytes",
        response_class=Response,
        responses={200: {"content": {"image/*": {}}}, **problems(404)},
    )
    def get_image(ref: Token) -> Response:
        with factory() as session:
            row = tokens.token(session, ref.chain_id, ref.contract, ref.token_id)
            if row is None:
                raise _not_found(f"token {ref.path} is not known")
            sha = row.image_sha256
            found = vectors.image(session, sha) if sha else None
        if found is None:
            raise _not_found(f"token {ref.path} has no stored image")
        content, mime = found
        # the ETag is the content hash; the token may be re-pointed, so caches revalidate soon;
        # private: the answer needed a key, so no shared cache may keep it
        return Response(
            content,
            media_type=mime,
            headers={"ETag": f'"{sha}"', "Cache-Control": "private, max-age=300"},
        )

    @v1.get(
        "/tokens/{chain_id}/{contract}/{token_id}/similar",
        summary="Visually nearest tokens (cosine on stored embeddings)",
        response_model=schemas.SimilarOut,
        responses=problems(404),
    )
    def get_similar(
        ref: Token,
        k: Annotated[int, Query(ge=1, le=100, description="How many neighbours.")] = 10,
        extractor: Annotated[
            str | None,
            Query(
                description="Embedding model; default: preferred.",
                json_schema_extra={"pattern": EXTRACTOR_PATTERN},
            ),
        ] = None,
        same_collection: Annotated[
            bool, Query(description="Only neighbours from the token's own contract.")
        ] = False,
    ) -> dict[str, Any]:
        extractor = parse_extractor(extractor)
        with factory() as session:
            row = tokens.token(session, ref.chain_id, ref.contract, ref.token_id)
            if row is None:
                raise _not_found(f"token {ref.path} is not known")
            if row.image_sha256 is None:
                raise _not_found(f"token {ref.path} has no image yet")
            emb = vectors.embedding_of(session, row.image_sha256, extractor)
            if emb is None:
                which = f"by {extractor}" if extractor else "yet"
                raise _not_found(f"token {ref.path}'s image is not embedded {which}")
            neighbours = vectors.nearest(
                session,
                extractor=emb.extractor,
                dim=emb.dim,
                image_sha256=row.image_sha256,
                k=k,
                chain_id=ref.chain_id if same_collection else None,
                contract=ref.contract if same_collection else None,
            )
        return {
            "token": {
                "chain_id": ref.chain_id,
                "contract": ref.contract,
                "token_id": str(ref.token_id),
            },
            "extractor": emb.extractor,
            "dim": emb.dim,
            "neighbours": [views.neighbour_body(n) for n in neighbours],
        }

    @v1.get(
        "/valuations/{chain_id}/{contract}/{token_id}",
        summary="The latest stored valuation with its explanation",
        response_model=schemas.ValuationOut,
        responses=problems(404),
    )
    def get_valuation(ref: Token) -> dict[str, Any]:
        with factory() as session:
            v = valuations.latest_valuation(session, ref.chain_id, ref.contract, ref.token_id)
            if v is None:
                raise _not_found(f"token {ref.path} has not been valued; POST to request one")
            return views.valuation_body(v)

    def _request(ref: TokenRef) -> dt.datetime | None:
        """Queue a valuation of a token the store knows; None (nothing queued) otherwise."""
        with factory.begin() as session:
            if not tokens.token_exists(session, ref.chain_id, ref.contract, ref.token_id):
                return None
            requested_at = ops.database_now(session)
            outbox.enqueue(
                session,
                "value",
                "urgent",
                {
                    "chain_id": ref.chain_id,
                    "contract": ref.contract,
                    "token_id": str(ref.token_id),
                    "reason": "desk",
                },
                dedupe_key=f"desk:{ref.chain_id}:{ref.contract}:{ref.token_id}:{uuid.uuid4()}",
            )
        return requested_at

    def _newer(ref: TokenRef, since: dt.datetime) -> dict[str, Any] | None:
        with factory() as session:
            v = valuations.valuation_since(session, ref.chain_id, ref.contract, ref.token_id, since)
            return None if v is None else views.valuation_body(v)

    @v1.post(
        "/valuations/{chain_id}/{contract}/{token_id}",
        summary="Request a fresh valuation on the urgent queue and wait for it a while",
        responses={
            200: {"description": "Valued within `wait` seconds.", "model": schemas.ValuationOut},
            202: {"description": "Queued; poll the Location URL.", "model": schemas.QueuedOut},
            404: {
                "model": errors.Problem,
                "description": "A token the store does not know: only tokens recorded from "
                "the chain (a watched collection's transfers) are valued.",
            },
            422: {
                "model": errors.Problem,
                "description": "A malformed parameter, or a chain without an RPC here.",
            },
            **problems(429),
        },
    )
    async def post_valuation(
        request: Request,
        ref: Token,
        wait: Annotated[
            float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for the result.")
        ] = 10.0,
    ) -> JSONResponse:
        await anyio.to_thread.run_sync(limiter.hit, "valuation", request.state.client_id)
        if served_chains is not None and ref.chain_id not in served_chains:
            served = ", ".join(str(c) for c in sorted(served_chains)) or "none"
            raise unprocessable(
                f"chain {ref.chain_id} has no RPC configured here, so its tokens cannot be "
                f"valued (chains served: {served})"
            )
        requested_at = await anyio.to_thread.run_sync(_request, ref)
        if requested_at is None:
            raise _not_found(
                f"token {ref.path} is not known: only tokens recorded from the chain are "
                "valued (is its collection watched and backfilled?)"
            )
        deadline = time.monotonic() + wait
        while True:
            found = await anyio.to_thread.run_sync(_newer, ref, requested_at)
            if found is not None:
                return JSONResponse(found)
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(POLL_INTERVAL_S, max(deadline - time.monotonic(), 0)))
        poll = f"/v1/valuations/{ref.path}"
        return JSONResponse(
            {"status": "queued", "requested_at": requested_at.isoformat(), "poll": poll},
            status_code=202,
            headers={"Location": poll, "Retry-After": "2"},
        )

    @v1.get(
        "/collections/{chain_id}/{contract}/stats",
        summary="Token and sale counts, 30-day median sale and floor proxy, listings",
        response_model=schemas.StatsOut,
        responses=problems(404),
    )
    def get_collection_stats(
        ref: CollectionPath,
        as_of: Annotated[
            dt.datetime | None,
            Query(
                description="End of the 30-day window (1970-01-01..9999-01-01, naive = UTC); "
                "default now."
            ),
        ] = None,
    ) -> dict[str, Any]:
        as_of = parse_instant("as_of", as_of)
        with factory() as session:
            stats = market.collection_stats(session, ref.chain_id, ref.contract, as_of)
        if stats is None:
            raise _not_found(f"nothing is known about {ref.chain_id}/{ref.contract}")
        return {"chain_id": ref.chain_id, "contract": ref.contract, **stats.to_dict()}

    @v1.get(
        "/listings/recent",
        summary="The newest on-chain offers and active off-chain listings, each with its "
        "token's latest valuation",
        response_model=schemas.ListingsOut,
    )
    def get_recent_listings(
        limit: Annotated[int, Query(ge=1, le=200, description="How many listings.")] = 20,
        chain_id: Annotated[
            int | None, Query(ge=1, le=BIGINT_MAX, description="Only this chain.")
        ] = None,
        contract: Annotated[str | None, Query(description="Only this contract.")] = None,
    ) -> dict[str, Any]:
        address = None if contract is None else parse_contract(contract)
        with factory() as session, session.begin():
            cursor = listings.head(session)
            rows = store_listings.recent(session, limit, chain_id, address)
        return {"listings": [views.listing_body(x) for x in rows], "cursor": cursor.encode()}

    def _changes(since: listings.Cursor) -> tuple[list[dict[str, Any]], listings.Cursor]:
        with factory() as session, session.begin():
            rows, after = listings.changes(session, since, limit=100)
        return [views.listing_body(x) for x in rows], after

    def _head() -> listings.Cursor:
        with factory() as session:
            return listings.head(session)

    @v1.get(
        "/listings/stream",
        summary="Server-Sent Events: new offers and off-chain listings, off-chain listings "
        "retired, and listings whose token was valued again",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "`event: listing` with a ListingOut as `data`; the event `id` "
                "is the cursor to resume from (every change once, in order, across "
                "reconnects); an off-chain listing that left its book comes once more with "
                "its final `status`. The server ends the stream after `duration` "
                "seconds, or at once when its key is revoked, with `event: end` and "
                '`data: {"reason": ...}` ("duration" or "key revoked").',
            },
            **problems(429),
        },
    )
    async def stream_listings(
        request: Request,
        cursor: Annotated[
            str | None,
            Query(
                max_length=listings.MAX_CURSOR_CHARS,
                description="Resume after this cursor (from /v1/listings/recent); default now.",
            ),
        ] = None,
        last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
        duration: Annotated[
            float,
            Query(ge=1, le=MAX_STREAM_S, description="Seconds before the server ends the stream."),
        ] = 600.0,
    ) -> StreamingResponse:
        # a malformed or out-of-range cursor (or Last-Event-ID) is refused, never echoed back:
        # an EventSource stops on a 4xx, where an id sent back would bring it back forever
        given = last_event_id or cursor
        try:
            start = listings.Cursor.decode(given) if given else None
        except ValueError as exc:
            which = "Last-Event-ID" if last_event_id else "cursor"
            raise unprocessable(f"{which}: {exc}") from None
        await anyio.to_thread.run_sync(limiter.hit, "stream", request.state.client_id)
        if start is None:
            start = await anyio.to_thread.run_sync(_head)

        who: bytes | None = request.state.key_digest

        def still_allowed() -> bool:
            return who is None or checker.check_digest(who)

        return StreamingResponse(
            streams.listing_events(
                start,
                changes=_changes,
                duration=duration,
                still_allowed=still_allowed,
                disconnected=request.is_disconnected,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    v1.include_router(market_routes.router(factory))
    app.include_router(v1)

    @app.get("/", include_in_schema=False)
    def desk() -> FileResponse:
        return FileResponse(STATIC / "desk.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
