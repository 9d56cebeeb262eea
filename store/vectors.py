"""Media bytes (stored once by content hash) and their vectors: writes, the per-extractor
pgvector indexes and the kNN search behind comparables."""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from store.models import (
    Embedding,
    Media,
    Token,
)


def store_media(
    session: Session, sha256: str, mime: str, width: int, height: int, content: bytes
) -> None:
    """Identical bytes are stored once."""
    session.execute(
        insert(Media)
        .values(
            sha256=sha256, mime=mime, width=width, height=height, size=len(content), content=content
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
    )


def media_content(session: Session, sha256s: Sequence[str]) -> dict[str, bytes]:
    rows = session.execute(select(Media.sha256, Media.content).where(Media.sha256.in_(sha256s)))
    return {r.sha256: bytes(r.content) for r in rows}


_SAFE_NAME = re.compile(r"[^a-z0-9]+")


HALFVEC_MAX_DIM = 4000  # pgvector indexes halfvec up to this width


def vector_index_name(extractor: str) -> str:
    return "ix_embeddings_hnsw_" + _SAFE_NAME.sub("_", extractor.lower()).strip("_")


def ensure_vector_index(
    engine: Engine, extractor: str, dim: int, *, m: int = 16, ef_construction: int = 64
) -> bool:
    """An HNSW cosine index per extractor: a partial expression index casting to its width.
    Returns whether it had to be created.

    halfvec indexes up to 4,000 dimensions; wider vectors are indexed by their binary
    quantisation (Hamming distance) and re-ranked exactly (see :func:`nearest`). The catalogue is
    read first: an application role that does not own the table may not even run
    ``CREATE INDEX IF NOT EXISTS``, so an existing index must never reach that statement."""
    name = vector_index_name(extractor)
    exists = text("SELECT 1 FROM pg_indexes WHERE indexname = :n AND tablename = 'embeddings'")
    with engine.connect() as conn:
        if conn.execute(exists, {"n": name}).first() is not None:
            return False
    literal = extractor.replace("'", "''")
    if dim <= HALFVEC_MAX_DIM:
        expr = f"(vec::halfvec({dim})) halfvec_cosine_ops"
    else:
        expr = f"(binary_quantize(vec)::bit({dim})) bit_hamming_ops"
    with engine.begin() as conn:
        # IF NOT EXISTS alone races between workers: serialise on a lock named after the index
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
        if conn.execute(exists, {"n": name}).first() is not None:
            return False
        conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw ({expr}) "
                f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) "
                f"WHERE extractor = '{literal}'"
            )
        )
    return True


_STAGE_EMBEDDINGS = """
CREATE TEMP TABLE IF NOT EXISTS _st_embeddings (
  n int, image_sha256 varchar(64) COLLATE "C", dim int, vec halfvec) ON COMMIT DELETE ROWS
"""


_MERGE_EMBEDDINGS = """
INSERT INTO embeddings (image_sha256, extractor, dim, vec, weights, preprocess)
SELECT DISTINCT ON (image_sha256) image_sha256, %(extractor)s, dim, vec, %(weights)s,
       %(preprocess)s
FROM _st_embeddings
ORDER BY image_sha256, n DESC
ON CONFLICT (image_sha256, extractor) DO UPDATE SET
  vec = EXCLUDED.vec, dim = EXCLUDED.dim, weights = EXCLUDED.weights,
  preprocess = EXCLUDED.preprocess, created_at = now()
"""


def _halfvec_binary(vec: Sequence[float] | np.ndarray) -> bytes:
    """pgvector's binary wire format of a halfvec: dimensions, a reserved word, then
    big-endian IEEE half floats."""
    values = np.asarray(vec, dtype=">f2")
    return struct.pack(">HH", len(values), 0) + values.tobytes()


def store_embeddings(
    session: Session,
    extractor: str,
    weights: str,
    preprocess: str,
    vectors: Iterable[tuple[str, Sequence[float] | np.ndarray]],
) -> int:
    """Upsert one vector per image for ``extractor`` (the last one wins for a repeated image).

    The vectors travel in COPY's binary format, already half floats, into a staging table,
    then merge in one statement: a list of floats per vector, as text in a multi-row INSERT,
    cost about 1.7 ms per 1280-d vector in Python, as much as a third of embedding it."""
    rows = list(vectors)
    if not rows:
        return 0
    raw: Any = session.connection().connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(_STAGE_EMBEDDINGS)
        copy = "COPY _st_embeddings (n, image_sha256, dim, vec) FROM STDIN WITH (FORMAT BINARY)"
        with cur.copy(copy) as cp:
            # halfvec's bytes are written as they are (bytea's dumper passes them through)
            cp.set_types(["int4", "varchar", "int4", "bytea"])
            for n, (sha, vec) in enumerate(rows):
                cp.write_row((n, sha, len(vec), _halfvec_binary(vec)))
        cur.execute(
            _MERGE_EMBEDDINGS,
            {"extractor": extractor, "weights": weights, "preprocess": preprocess},
        )
        # emptied now, not at commit: another extractor's call may follow in this transaction
        cur.execute("DELETE FROM _st_embeddings")
    return len({sha for sha, _ in rows})


def missing_embeddings(session: Session, extractor: str, sha256s: Sequence[str]) -> list[str]:
    have = set(
        session.scalars(
            select(Embedding.image_sha256).where(
                Embedding.extractor == extractor, Embedding.image_sha256.in_(sha256s)
            )
        )
    )
    return [s for s in sha256s if s not in have]


def embedding_dim(session: Session, sha256: str, extractor: str) -> int | None:
    """The width of an image's vector by ``extractor``; None when it has none."""
    return session.scalar(
        select(Embedding.dim).where(
            Embedding.image_sha256 == sha256, Embedding.extractor == extractor
        )
    )


@dataclass(frozen=True)
class Neighbour:
    chain_id: int
    contract: str
    token_id: int
    image_sha256: str
    similarity: float
    last_sale_wei: int | None
    last_sale_at: dt.datetime | None
    sale_count: int
    transfer_count: int


def nearest(
    session: Session,
    *,
    extractor: str,
    dim: int,
    image_sha256: str,
    k: int = 10,
    chain_id: int | None = None,
    contract: str | None = None,
    ef_search: int = 100,
    rerank: int = 10,
    max_scan: int = 5_000,
) -> list[Neighbour]:
    """The k tokens whose images are nearest by cosine, within one collection when ``contract``
    is given, excluding tokens that share the query image. Uses the extractor's HNSW index with
    pgvector's iterative scan so that the collection filter still returns k rows.

    Vectors wider than halfvec's index limit are searched by their binary quantisation: the
    ``rerank × k`` nearest by Hamming distance are fetched through the index, then ordered by
    exact cosine on the full vectors.

    Three round trips: the search settings, one statement, the caller's plan cache mode back.
    The query vector never leaves the server: it is a scalar subquery (an InitPlan, evaluated
    once), which the HNSW scan accepts as its ordering operand where a join operand would make
    the planner sort every row.

    The statement runs on one generic plan, planned once per connection (it is prepared after a
    few uses): planning each query cost about a third of its latency. That plan always seeks
    through the graph; a collection small beside it may then have fewer than k members among
    the ``max_scan`` tuples the scan visits, and is asked again with a plan made for it, which
    sorts a small collection's vectors exactly (at the default 5,000, one under about 0.2% of
    the extractor's vectors for k = 10)."""
    wide = dim > HALFVEC_MAX_DIM
    # The extractor and the limits are written into the statement (the extractor as in the partial
    # index's predicate): a generic plan can then still prove the index usable and see the LIMIT.
    literal = extractor.replace("'", "''")
    own_row = f"FROM embeddings WHERE image_sha256 = :sha AND extractor = '{literal}'"
    candidates = max(k * rerank, k) if wide else k
    ef = str(max(int(ef_search), candidates))
    # a collection under about candidates/max_scan of the extractor's vectors is sorted exactly
    max_scan = max(int(max_scan), 20 * candidates)
    filters = [
        f"e.extractor = '{literal}'",
        "e.image_sha256 <> :sha",
        "(SELECT q FROM query) IS NOT NULL",
    ]
    params: dict[str, Any] = {"sha": image_sha256}
    if contract is not None:
        filters.append("t.contract = :contract")
        params["contract"] = contract.lower()
    if chain_id is not None:
        filters.append("t.chain_id = :chain_id")
        params["chain_id"] = chain_id
    where = " AND ".join(filters)
    columns = "t.chain_id, t.contract, t.token_id, t.last_sale_wei, t.last_sale_at, " + (
        "t.sale_count, t.transfer_count"
    )
    if not wide:
        cast = f"halfvec({dim})"
        query = f"SELECT vec::{cast} AS q {own_row}"
        # relaxed_order may return neighbours slightly out of order: sort the k found, by an
        # expression other than the CTE's own ORDER BY, which PostgreSQL 17+ would trust as sorted
        sql = f"""
        WITH query AS ({query}),
        c AS MATERIALIZED (
            SELECT {columns}, e.image_sha256, e.vec::{cast} <=> (SELECT q FROM query) AS distance
            FROM embeddings e JOIN tokens t ON t.image_sha256 = e.image_sha256
            WHERE {where}
            ORDER BY e.vec::{cast} <=> (SELECT q FROM query)
            LIMIT {int(k)}
        )
        SELECT *, 1 - distance AS similarity FROM c ORDER BY similarity DESC
        """
    else:
        bits = f"bit({dim})"
        query = f"SELECT vec AS q {own_row}"
        # the inner ORDER BY must be the indexed expression itself for HNSW to serve it
        sql = f"""
        WITH query AS ({query}),
        c AS MATERIALIZED (
            SELECT {columns}, e.image_sha256, e.vec
            FROM embeddings e JOIN tokens t ON t.image_sha256 = e.image_sha256
            WHERE {where}
            ORDER BY binary_quantize(e.vec)::{bits}
                 <~> binary_quantize((SELECT q FROM query))::{bits}
            LIMIT {int(candidates)}
        )
        SELECT c.*, 1 - (c.vec <=> (SELECT q FROM query)) AS similarity
        FROM c
        ORDER BY c.vec <=> (SELECT q FROM query)
        LIMIT {int(k)}
        """
    statement = text(sql)
    rows = _search(session, statement, params, ef, "force_generic_plan", max_scan)
    if contract is not None and len(rows) < k:
        rows = _search(session, statement, params, ef, "force_custom_plan", max_scan)
    return [
        Neighbour(
            chain_id=r.chain_id,
            contract=r.contract,
            token_id=int(r.token_id),
            image_sha256=r.image_sha256,
            similarity=float(r.similarity),
            last_sale_wei=int(r.last_sale_wei) if r.last_sale_wei is not None else None,
            last_sale_at=r.last_sale_at,
            sale_count=r.sale_count,
            transfer_count=r.transfer_count,
        )
        for r in rows
    ]


def _search(
    session: Session, statement: Any, params: dict[str, Any], ef: str, plans: str, max_scan: int
) -> Sequence[Any]:
    """``statement`` under the search settings; the caller's plan cache mode comes back after
    it (the HNSW settings only matter to vector scans, and end with the transaction)."""
    caller_plans = session.execute(
        text(
            "SELECT current_setting('plan_cache_mode'), "
            "set_config('hnsw.ef_search', :ef, true), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.max_scan_tuples', :scan, true), "
            "set_config('plan_cache_mode', :plans, true)"
        ),
        {"ef": ef, "scan": str(max_scan), "plans": plans},
    ).scalar_one()
    rows = session.execute(statement, params).all()
    # (a failed statement aborts the transaction, whose rollback restores the settings)
    session.execute(
        text("SELECT set_config('plan_cache_mode', :plans, true)"), {"plans": caller_plans}
    )
    return rows


def as_floats(vec: Any) -> list[float]:
    """A stored vector as floats, whichever form the pgvector adapter hands back."""
    return [float(x) for x in (vec.to_list() if hasattr(vec, "to_list") else vec)]


def grouped_vectors(
    session: Session,
    extractor: str,
    contracts: Sequence[str],
    *,
    trait: str | None = None,
) -> dict[str, list[list[float]]]:
    """Stored vectors of the given collections' tokens, grouped by collection address, or by
    the value of ``trait`` (an OpenSea ``trait_type``) when given: e.g. punks by type."""
    params: dict[str, Any] = {"extractor": extractor, "contracts": [c.lower() for c in contracts]}
    if trait is None:
        sql = """SELECT t.contract AS grp, e.vec::real[] AS vec FROM tokens t
                 JOIN embeddings e ON e.image_sha256 = t.image_sha256
                 WHERE e.extractor = :extractor AND t.contract = ANY(:contracts)"""
    else:
        params["trait"] = trait
        sql = """SELECT a.attr->>'value' AS grp, e.vec::real[] AS vec FROM tokens t
                 JOIN embeddings e ON e.image_sha256 = t.image_sha256
                 CROSS JOIN LATERAL jsonb_array_elements(
                     CASE WHEN jsonb_typeof(t.attributes) = 'array' THEN t.attributes
                          ELSE '[]'::jsonb END) AS a(attr)
                 WHERE e.extractor = :extractor AND t.contract = ANY(:contracts)
                   AND lower(a.attr->>'trait_type') = lower(:trait)"""
    groups: dict[str, list[list[float]]] = {}
    for grp, vec in session.execute(text(sql), params):
        groups.setdefault(str(grp), []).append(as_floats(vec))
    return groups


def image(session: Session, sha256: str) -> tuple[bytes, str] | None:
    row = session.execute(select(Media.content, Media.mime).where(Media.sha256 == sha256)).first()
    return None if row is None else (bytes(row.content), row.mime)


def collection_images(
    session: Session, contracts: Sequence[str], *, limit: int | None = None
) -> list[tuple[str, int, Any, bytes]]:
    """``(contract, token id, attributes, image bytes)`` of every token of the given collections
    whose image is stored, in token order; ``limit`` caps each collection."""
    out: list[tuple[str, int, Any, bytes]] = []
    for contract in dict.fromkeys(c.lower() for c in contracts):
        query = (
            select(Token.token_id, Token.attributes, Media.content)
            .join(Media, Media.sha256 == Token.image_sha256)
            .where(Token.contract == contract)
            .order_by(Token.token_id)
            .limit(limit)
        )
        out += [(contract, int(t), a, bytes(c)) for t, a, c in session.execute(query)]
    return out


def embedding_of(session: Session, sha256: str, extractor: str | None) -> Embedding | None:
    """The image's vector from ``extractor``, or from any extractor (the preferred one first)."""
    query = select(Embedding).where(Embedding.image_sha256 == sha256)
    if extractor is not None:
        query = query.where(Embedding.extractor == extractor)
    ordered = query.order_by((Embedding.extractor == "effnet-lite0-v1").desc(), Embedding.extractor)
    return session.scalars(ordered.limit(1)).first()
