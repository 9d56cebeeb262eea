"""Where a parsed URI's bytes come from, tried in order with fallback.

For IPFS the order is: the kubo RPC when configured, then the configured gateways in order, then
the URI's original gateway host (when it was a live one). A raw-leaf CID names exactly one block,
so its bytes are fetched with ``?format=raw`` (the trustless gateway form) and verified against
the hash whatever source they came from; a source that lies is skipped like one that is down.

Kubo is reached with plain httpx, not ``ipfshttpclient``. ``ipfshttpclient`` 0.7.0 (2021, its last
release) refuses every kubo ≥ 0.8 in ``connect()`` (``Client(addr)`` only skips that check), is
synchronous (it would block the event loop or need a thread per call) and sends requests through
``requests``, which would bypass our SSRF guard, byte caps, deadlines and Retry-After handling.
Kubo's RPC for this job is one call, ``POST /api/v0/cat?arg=CID/path``, so httpx through the
same guarded fetcher is both simpler and safer.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from tokenmeta.cid import CID, verify_raw
from tokenmeta.errors import (
    AllGatewaysFailed,
    ContentMismatch,
    NotFound,
    Permanent,
    ResponseTooLarge,
    Retryable,
    TokenMetaError,
    UpstreamUnavailable,
)
from tokenmeta.fetch.http import Cap, FetchResult, HttpFetcher
from tokenmeta.uri import DEFAULT_ARWEAVE_GATEWAYS, ParsedURI

_RAW_ACCEPT = (("Accept", "application/vnd.ipld.raw"),)


@dataclass(frozen=True, slots=True)
class Attempt:
    url: str
    method: str = "GET"
    verify: CID | None = None
    kubo: bool = False
    headers: tuple[tuple[str, str], ...] = ()


def plan_attempts(
    parsed: ParsedURI,
    *,
    gateways: tuple[str, ...],
    ipfs_api_url: str | None = None,
    arweave_gateways: tuple[str, ...] = DEFAULT_ARWEAVE_GATEWAYS,
) -> list[Attempt]:
    """Every source to try for ``parsed``, best first."""
    if parsed.kind == "data":
        return []
    verify = parsed.cid if parsed.is_raw_block else None
    attempts: list[Attempt] = []
    if parsed.kind in ("ipfs", "ipns") and ipfs_api_url:
        ident = str(parsed.cid) if parsed.kind == "ipfs" else f"/ipns/{parsed.name}"
        arg = quote(f"{ident}{parsed.path}", safe="/")
        api = ipfs_api_url.rstrip("/")
        attempts.append(Attempt(f"{api}/api/v0/cat?arg={arg}", "POST", verify, kubo=True))
    urls = parsed.candidate_urls(gateways, arweave_gateways)
    for url in urls:
        if verify is not None and url != parsed.origin_url:
            sep = "&" if "?" in url else "?"
            attempts.append(Attempt(f"{url}{sep}format=raw", verify=verify, headers=_RAW_ACCEPT))
        else:
            attempts.append(Attempt(url, verify=verify))
    return attempts


async def fetch_from(fetcher: HttpFetcher, attempts: list[Attempt], *, cap: Cap) -> FetchResult:
    """The first source that answers with the right bytes; the errors classified when none does.

    All sources 404 → NotFound; any source retryable → AllGatewaysFailed (retry later); a byte
    cap hit → ResponseTooLarge at once (every honest source serves the same bytes).
    """
    if not attempts:
        raise NotFound("no source to fetch from")
    errors: list[TokenMetaError] = []
    for attempt in attempts:
        try:
            result = await _try(fetcher, attempt, cap)
        except ResponseTooLarge:
            raise
        except TokenMetaError as exc:
            errors.append(exc)
            continue
        return result
    if len(errors) == 1:
        raise errors[0]
    retryable = [e for e in errors if isinstance(e, Retryable)]
    summary = "; ".join(f"{e.code}: {e}" for e in errors)
    if retryable:
        waits = [e.retry_after for e in retryable if e.retry_after is not None]
        raise AllGatewaysFailed(summary, retry_after=min(waits) if waits else None)
    if all(isinstance(e, NotFound) for e in errors):
        raise NotFound(summary)
    if any(isinstance(e, ContentMismatch) for e in errors):
        raise ContentMismatch(summary)
    first_permanent = next(e for e in errors if isinstance(e, Permanent))
    raise type(first_permanent)(summary)


async def _try(fetcher: HttpFetcher, attempt: Attempt, cap: Cap) -> FetchResult:
    if attempt.kubo:
        result = await fetcher.fetch(attempt.url, cap=cap, method="POST", raise_for_status=False)
        if result.status != 200:
            # Kubo answers 500 with a JSON message for both "no such path" and its own trouble.
            text = result.body[:2000].decode("utf-8", "replace")
            if "deadline" in text or "timeout" in text or result.status in (502, 503, 504):
                raise UpstreamUnavailable(f"kubo {result.status}: {text[:200]}")
            raise NotFound(f"kubo {result.status}: {text[:200]}")
    else:
        result = await fetcher.fetch(attempt.url, cap=cap, headers=dict(attempt.headers) or None)
    if attempt.verify is not None:
        verify_raw(attempt.verify, result.body)
    return result
