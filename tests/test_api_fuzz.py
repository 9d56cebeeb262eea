"""Schema-driven fuzz of the live API: schemathesis generates valid and invalid values for every
parameter of every route from the app's own OpenAPI document (NUL bytes included) and sends each
case to the server as `nftwatch api` runs it (worker processes, real Postgres), with a key and
without one. Every answer must be a defined status with a declared content type and a body that
matches the schema; none may be a 5xx; none may take longer than the client's timeout.

The stream's ``duration`` is capped at 1 s so that a stream case ends; every other value is
sent as generated."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from sqlalchemy import create_engine

from nftwatch.api.params import EXAMPLE_CONTRACT
from store import tokens
from store.db import make_engine, make_sessionmaker
from store.vectors import ensure_vector_index, store_embeddings
from tests.support import seed
from tests.support.api import LiveApi, config, live_api
from tests.support.db import truncate_all

KEY = "fuzz-key-0123456789abcdef"
CHAIN = 1
TOKEN_ID = 7804
EXTRACTOR = "test-8d"
TIMEOUT = (5, 30)  # connect, read: a case past it is a hang
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _seed(url: str) -> None:
    """One known token of the schema's example collection, with an image, a vector, a sale,
    a listing and a valuation, so that valid cases reach every route's 200 as well."""
    truncate_all(url)
    eng = make_engine(url)
    at = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)
    with make_sessionmaker(eng).begin() as s:
        tokens.upsert_collection(s, CHAIN, EXAMPLE_CONTRACT, name="CryptoPunks")
        for i, vec in ((TOKEN_ID, [1.0, 0, 0, 0, 0, 0, 0, 0]), (1, [1.0, 0.2, 0, 0, 0, 0, 0, 0])):
            sha = hashlib.sha256(f"punk {i}".encode()).hexdigest()
            seed.add_token(
                s,
                i,
                EXAMPLE_CONTRACT,
                chain_id=CHAIN,
                name=f"Punk #{i}",
                image=b"\x89PNG\r\n\x1a\n" + bytes([i % 256]),
                image_sha256=sha,
                size=(1, 1),
                attributes=[{"trait_type": "Type", "value": "Alien"}],
                image_uri=None,
            )
            store_embeddings(s, EXTRACTOR, "w", "p", [(sha, vec)])
        seed.add_sale(s, TOKEN_ID, 4.0, at, 0, contract=EXAMPLE_CONTRACT, chain_id=CHAIN)
        seed.add_listing(
            s,
            TOKEN_ID,
            101,
            5.0,
            contract=EXAMPLE_CONTRACT,
            chain_id=CHAIN,
            since=at - dt.timedelta(minutes=101),
            account="0x" + "00" * 20,
        )
        seed.add_valuation(
            s,
            TOKEN_ID,
            4.0,
            contract=EXAMPLE_CONTRACT,
            chain_id=CHAIN,
            p_liquid=0.5,
            low=3.0,
            high=5.0,
            confidence=0.5,
            explanation={"method": "test"},
        )
    ensure_vector_index(eng, EXTRACTOR, 8)
    eng.dispose()


@pytest.fixture(scope="module")
def fuzz_api(pg_url: str) -> Iterator[LiveApi]:
    _seed(pg_url)
    cfg = config(
        pg_url,
        [KEY],
        rpc_chains=(CHAIN,),
        valuation_rate="100000/minute",
        stream_rate="100000/minute",
        log_level="warning",
    )
    with live_api(cfg) as api:
        yield api
        log = api.log_text()
    assert "Traceback" not in log, log[-5000:]


@pytest.fixture(scope="module")
def api_schema(fuzz_api: LiveApi) -> Any:
    schema = schemathesis.openapi.from_url(f"{fuzz_api.base}/openapi.json")
    schema.config.update(base_url=fuzz_api.base)
    schema.config.generation.update(allow_x00=True)
    return schema


def _operations() -> list[tuple[str, str]]:
    """Every route of the app's schema (built without a database: nothing is read)."""
    from nftwatch.api import create_app

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    spec = create_app(make_sessionmaker(engine), api_keys=[KEY]).openapi()
    engine.dispose()
    return sorted((m.upper(), p) for p, item in spec["paths"].items() for m in item)


def _bounded(case: Any) -> None:
    """Cases that would wait as long as they were told: a stream's duration, a valuation
    request's wait (nothing values tokens here). Other values go as generated."""
    for path, name in (("/v1/listings/stream", "duration"), ("/v1/valuations/", "wait")):
        if case.path.startswith(path) and case.method == ("POST" if name == "wait" else "GET"):
            query = dict(case.query or {})
            value = query.get(name)
            if value is None or (isinstance(value, int | float) and value > 1):
                query[name] = 1
            case.query = query


def _answers_as_declared(case: Any) -> int:
    _bounded(case)
    keyed = case.call_and_validate(headers={"X-API-Key": KEY}, checks=CHECKS, timeout=TIMEOUT)
    assert keyed.status_code < 500
    anonymous = case.call_and_validate(headers={"X-API-Key": ""}, checks=CHECKS, timeout=TIMEOUT)
    assert anonymous.status_code == 401 or not case.path.startswith("/v1/")
    return int(keyed.status_code)


KNOWN = {"chain_id": CHAIN, "contract": EXAMPLE_CONTRACT, "token_id": str(TOKEN_ID)}


@pytest.mark.parametrize("mode", ["positive", "negative", "known token"])
@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_route_answers_as_declared_with_and_without_a_key(
    api_schema: Any, method: str, path: str, mode: str
) -> None:
    """``known token``: valid values for every parameter but the path's, which name the
    seeded token (random ids almost never do), so that the routes' 200s are fuzzed too."""
    operation = api_schema[path][method]
    if mode == "negative" and path == "/healthz":
        pytest.skip("no parameter to make invalid")
    fixed = {k: v for k, v in KNOWN.items() if "{" + k + "}" in path}
    if mode == "known token" and not fixed:
        pytest.skip("no token in the path")
    generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
    strategy = operation.as_strategy(
        generation_mode=generation, path_parameters=fixed if mode == "known token" else None
    )
    examples = 15 if mode == "negative" else 25
    seen: Counter[int] = Counter()

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        seen[_answers_as_declared(case)] += 1

    run()
    assert sum(seen.values()) > 0
