"""kNN in pgvector: halfvec HNSW and binary-quantised HNSW with exact re-ranking (4096-d), within
and across collections, checked against exact numpy search; index creation by a role that does
not own the table."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from store.db import make_engine, make_sessionmaker
from store.models import Media, Token
from store.vectors import ensure_vector_index, nearest, store_embeddings, vector_index_name

CHAIN = 1
A = "0x" + "a" * 40
B = "0x" + "b" * 40


def sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def clustered(n: int, dim: int, centres: int, seed: int, relu: bool) -> np.ndarray:
    """Unit vectors around a few centres; with ``relu`` all non-negative and sparse, like fc7."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    x = c[rng.integers(0, centres, n)] + 0.8 * rng.normal(size=(n, dim))
    if relu:
        x = np.maximum(x, 0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # what halfvec stores, so that the exact answer is computed on the same numbers
    return x.astype(np.float16).astype(np.float32)


def load(session: Session, vecs: np.ndarray, extractor: str) -> None:
    for i in range(len(vecs)):
        session.add(Media(sha256=sha(i), mime="image/png", width=1, height=1, size=0, content=b""))
    session.flush()
    for i in range(len(vecs)):
        session.add(
            Token(
                chain_id=CHAIN,
                contract=A if i % 2 == 0 else B,
                token_id=Decimal(i),
                image_sha256=sha(i),
            )
        )
    store_embeddings(session, extractor, "w", "p", [(sha(i), v) for i, v in enumerate(vecs)])


def exact(vecs: np.ndarray, q: int, k: int, members: np.ndarray) -> list[int]:
    sims = vecs @ vecs[q]
    order = [int(i) for i in np.argsort(-sims, kind="stable") if i != q and members[i]]
    return order[:k]


@pytest.mark.parametrize(("dim", "extractor"), [(64, "small-v1"), (4096, "vgg-like-v1")])
def test_nearest_matches_exact_search_within_and_across(
    db_url: str, dim: int, extractor: str
) -> None:
    n, k = 240, 10
    vecs = clustered(n, dim, centres=6, seed=dim, relu=dim > 4000)
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    with factory.begin() as s:
        load(s, vecs, extractor)
    assert ensure_vector_index(engine, extractor, dim) is True
    assert ensure_vector_index(engine, extractor, dim) is False  # found in the catalogue
    in_a = np.arange(n) % 2 == 0
    everyone = np.ones(n, dtype=bool)
    hits = total = 0
    for q in range(0, n, 24):
        for contract, members in ((None, everyone), (A, in_a)):
            with factory.begin() as s:
                got = nearest(
                    s, extractor=extractor, dim=dim, image_sha256=sha(q), k=k, contract=contract
                )
            assert len(got) == k
            assert sha(q) not in {g.image_sha256 for g in got}
            if contract is not None:
                assert {g.contract for g in got} == {A}
            sims = [g.similarity for g in got]
            assert sims == sorted(sims, reverse=True)
            want = exact(vecs, q, k, members)
            # the returned similarities are the true cosines of the returned vectors
            ids = [int(g.token_id) for g in got]
            assert np.allclose(sims, vecs[ids] @ vecs[q], atol=2e-3)
            hits += len(set(ids) & set(want))
            total += k
    assert hits / total >= 0.9
    engine.dispose()


@pytest.mark.parametrize(("dim", "extractor"), [(64, "plan-v1"), (4096, "plan-wide-v1")])
def test_nearest_runs_on_the_hnsw_index_and_an_unknown_image_has_no_neighbours(
    db_url: str, dim: int, extractor: str
) -> None:
    """The query vector stays in the server (a scalar subquery), and the scan is still the
    extractor's HNSW index: captured from the statement ``nearest`` itself sends."""
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    with factory.begin() as s:
        load(s, clustered(40, dim, centres=2, seed=3, relu=dim > 4000), extractor)
    ensure_vector_index(engine, extractor, dim)
    plans: list[str] = []
    with factory.begin() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        run = s.execute

        def explain_then_run(stmt: Any, params: Any = None, **kw: Any) -> Any:
            if "WITH query" in str(stmt):
                rows = run(text("EXPLAIN " + str(stmt)), params)
                plans.append("\n".join(r[0] for r in rows))
            return run(stmt, params, **kw)

        s.execute = explain_then_run  # type: ignore[method-assign,assignment]
        got = nearest(s, extractor=extractor, dim=dim, image_sha256=sha(0), k=5)
        assert len(got) == 5
        assert nearest(s, extractor=extractor, dim=dim, image_sha256="0" * 64) == []
    assert vector_index_name(extractor) in plans[0]
    engine.dispose()


def test_a_small_collection_beside_a_large_graph_still_gets_its_k_nearest(db_url: str) -> None:
    """The generic plan seeks through the graph and gives up after ``max_scan`` tuples, finding
    fewer than k of a small collection's members: the query is asked again, planned for that
    collection, and returns its exact nearest. The caller's plan cache mode survives."""
    dim, extractor, n, k = 32, "small-collection-v1", 1200, 10
    vecs = clustered(n, dim, centres=4, seed=11, relu=False)
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    with factory.begin() as s:
        load(s, vecs, extractor)
        small = list(range(0, 2 * (k + 1), 2))  # k + 1 of collection A's tokens stay in A
        s.execute(
            text("UPDATE tokens SET contract = :b WHERE token_id >= :n"), {"b": B, "n": 2 * k + 2}
        )
        s.execute(
            text("UPDATE tokens SET contract = :b WHERE contract = :a AND token_id % 2 = 1"),
            {"a": A, "b": B},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE tokens, embeddings"))
    ensure_vector_index(engine, extractor, dim)
    statements: list[str] = []
    with factory.begin() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))  # the generic plan walks the graph
        s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))  # the caller's own
        run = s.execute

        def counting(stmt: Any, params: Any = None, **kw: Any) -> Any:
            if "WITH query" in str(stmt):
                statements.append(str(stmt))
            return run(stmt, params, **kw)

        s.execute = counting  # type: ignore[method-assign,assignment]
        got = nearest(
            s, extractor=extractor, dim=dim, image_sha256=sha(0), k=k, contract=A, max_scan=1
        )
        assert s.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    engine.dispose()
    assert len(statements) == 2  # the graph's answer fell short; the collection's plan did not
    assert sorted(int(g.token_id) for g in got) == small[1:]
    assert {g.contract for g in got} == {A}


def test_binary_quantised_search_uses_its_index(db_url: str) -> None:
    dim, extractor = 4096, "vgg-like-v1"
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    with factory.begin() as s:
        load(s, clustered(40, dim, centres=2, seed=1, relu=True), extractor)
    ensure_vector_index(engine, extractor, dim)
    name = vector_index_name(extractor)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                text(
                    f"EXPLAIN SELECT image_sha256 FROM embeddings e WHERE extractor = :x "
                    f"ORDER BY binary_quantize(e.vec)::bit({dim}) <~> "
                    f"(SELECT binary_quantize(vec)::bit({dim}) FROM embeddings LIMIT 1) LIMIT 5"
                ),
                {"x": extractor},
            )
        )
    assert name in plan
    engine.dispose()


def test_index_check_works_for_a_role_that_does_not_own_the_table(db_url: str) -> None:
    owner = create_engine(db_url)
    with owner.begin() as conn:
        conn.execute(text("DROP ROLE IF EXISTS knn_app"))
        conn.execute(text("CREATE ROLE knn_app LOGIN"))
        conn.execute(text("GRANT USAGE ON SCHEMA public TO knn_app"))
        conn.execute(text("GRANT SELECT, INSERT ON embeddings TO knn_app"))
    app_url = make_url(db_url).set(username="knn_app", password=None)
    app = create_engine(app_url)
    try:
        ensure_vector_index(owner, "owned-v1", 8)
        # the index exists: the app role finds it and never reaches CREATE INDEX
        assert ensure_vector_index(app, "owned-v1", 8) is False
        # a missing index is the owner's job: the app role's attempt fails loudly, not silently
        with pytest.raises(ProgrammingError):
            ensure_vector_index(app, "other-v1", 8)
    finally:
        app.dispose()
        with owner.begin() as conn:
            conn.execute(text("REVOKE ALL ON embeddings FROM knn_app"))
            conn.execute(text("REVOKE ALL ON SCHEMA public FROM knn_app"))
            conn.execute(text("DROP ROLE knn_app"))
        owner.dispose()


def test_store_embeddings_round_trips_half_floats_and_upserts(db_url: str) -> None:
    """Vectors arrive in COPY's binary halfvec format: the stored values are the inputs rounded
    to half precision; a second store replaces (the last of a repeated image wins), and two
    extractors stored in one transaction each get only their own rows."""
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    rng = np.random.default_rng(5)
    first, second = rng.normal(size=(3, 48)), rng.normal(size=(3, 48)).astype(np.float32)
    with factory.begin() as s:
        load(s, first, "store-a-v1")
        stored = store_embeddings(
            s,
            "store-b-v1",
            "wb",
            "pb",
            [(sha(0), second[0]), (sha(1), list(map(float, second[1]))), (sha(0), second[2])],
        )
    assert stored == 2
    with factory.begin() as s:
        store_embeddings(s, "store-a-v1", "w2", "p2", [(sha(2), second[1])])
    with engine.connect() as conn:
        got = {
            (r.image_sha256, r.extractor): r
            for r in conn.execute(
                text(
                    "SELECT image_sha256, extractor, dim, vec::text AS vec, weights, preprocess "
                    "FROM embeddings WHERE extractor LIKE 'store-%'"
                )
            )
        }
    engine.dispose()
    assert len(got) == 5  # a: three images, b: two

    def values(key: tuple[str, str]) -> np.ndarray:
        return np.array(json.loads(got[key].vec), dtype=np.float32)

    half = np.float16
    np.testing.assert_array_equal(values((sha(0), "store-a-v1")), first[0].astype(half))
    np.testing.assert_array_equal(values((sha(0), "store-b-v1")), second[2].astype(half))
    np.testing.assert_array_equal(values((sha(1), "store-b-v1")), second[1].astype(half))
    replaced = got[(sha(2), "store-a-v1")]
    assert (replaced.weights, replaced.preprocess, replaced.dim) == ("w2", "p2", 48)
    np.testing.assert_array_equal(values((sha(2), "store-a-v1")), second[1].astype(half))
