"""On-demand valuation: make sure the token is resolved and embedded (the urgent queue runs
those steps itself rather than waiting behind a backfill), gather the collection's sales, traits
and vectors, fit or reuse the collection's model, and store the valuation with its inputs."""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from store import queries
from store.models import Embedding, Token
from worker.context import WorkerContext

log = logging.getLogger(__name__)

WEI = Decimal(10**18)
PREFERRED_EXTRACTOR = "effnet-lite0-v1"
NEIGHBOURS = 8

_models: dict[tuple[int, str], tuple[tuple[int, int], Any]] = {}
_models_lock = threading.Lock()


def comparables_extractor(ctx: WorkerContext) -> str:
    names = ctx.config.extractors
    return PREFERRED_EXTRACTOR if PREFERRED_EXTRACTOR in names else names[-1]


def value_now(
    ctx: WorkerContext, chain_id: int, contract: str, token_id: int, *, reason: str = ""
) -> int:
    """Value one token now; returns the stored valuation's id."""
    from worker.tasks import embed_batch, resolve_batch

    contract = contract.lower()
    with ctx.factory() as s:
        row = queries.token(s, chain_id, contract, token_id)
        needs_resolve = row is None or row.metadata_status != "ok"
    if needs_resolve:
        resolve_batch(ctx, chain_id, contract, [token_id])
    with ctx.factory() as s:
        row = queries.token(s, chain_id, contract, token_id)
        sha = row.image_sha256 if row is not None else None
    if sha is not None:
        embed_batch(ctx, [sha])
    return _value(ctx, chain_id, contract, token_id, sha, reason)


def _collection_inputs(
    ctx: WorkerContext, chain_id: int, contract: str, extractor: str
) -> tuple[list[Any], dict[int, dict[str, str]], dict[int, list[float]]]:
    from nftvision.valuation.sales import SaleRecord

    with ctx.factory() as s:
        sales = [
            SaleRecord(
                time=sale.block_time,
                token_id=int(sale.token_id),
                price_eth=float(Decimal(sale.price_wei) / WEI),
                seller=sale.seller,
                buyer=sale.buyer,
                tx_hash=sale.tx_hash,
            )
            for sale in queries.collection_sales(s, chain_id, contract)
            if sale.price_wei > 0
        ]
        rows = s.execute(
            select(Token.token_id, Token.attributes, Embedding.vec)
            .outerjoin(
                Embedding,
                (Embedding.image_sha256 == Token.image_sha256) & (Embedding.extractor == extractor),
            )
            .where(Token.chain_id == chain_id, Token.contract == contract)
        ).all()
    attributes: dict[int, dict[str, str]] = {}
    vectors: dict[int, list[float]] = {}
    for tid, attrs, vec in rows:
        attributes[int(tid)] = traits_of(attrs)
        if vec is not None:
            vectors[int(tid)] = queries.as_floats(vec)
    return sales, attributes, vectors


def traits_of(attrs: Any) -> dict[str, str]:
    """OpenSea-style ``[{"trait_type", "value"}]`` as a mapping; anything else is no traits."""
    out: dict[str, str] = {}
    if isinstance(attrs, list):
        for a in attrs:
            if isinstance(a, dict) and "trait_type" in a and a.get("value") is not None:
                out[str(a["trait_type"])] = str(a["value"])
    return out


def _model(
    ctx: WorkerContext,
    chain_id: int,
    contract: str,
    inputs: tuple[list[Any], dict[int, dict[str, str]], dict[int, list[float]]],
    at: dt.datetime,
) -> Any:
    """The collection's fitted model, refit when its sales or tokens changed."""
    from nftvision.valuation.model import fit

    sales, attributes, vectors = inputs
    stamp = (len(sales), len(attributes) + len(vectors))
    key = (chain_id, contract)
    with _models_lock:
        cached = _models.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    model = fit(sales, attributes, as_of=at, embeddings=vectors or None)
    with _models_lock:
        _models[key] = (stamp, model)
    return model


def _neighbours(
    ctx: WorkerContext, chain_id: int, contract: str, sha: str | None, extractor: str
) -> list[queries.Neighbour]:
    if sha is None:
        return []
    with ctx.factory() as s, s.begin():
        dim = s.scalar(
            select(Embedding.dim).where(
                Embedding.image_sha256 == sha, Embedding.extractor == extractor
            )
        )
        if not dim:
            return []
        return queries.nearest(
            s,
            extractor=extractor,
            dim=dim,
            image_sha256=sha,
            k=NEIGHBOURS,
            chain_id=chain_id,
            contract=contract,
        )


def _valuation_time(sales: list[Any]) -> dt.datetime:
    """Now, or just after the latest recorded sale when the chain's clock runs ahead of ours
    (a local node mines faster than a block a second): nothing after this time is used."""
    now = dt.datetime.now(dt.UTC)
    latest = max((s.time for s in sales), default=now)
    return max(now, latest + dt.timedelta(microseconds=1))


def _value(
    ctx: WorkerContext, chain_id: int, contract: str, token_id: int, sha: str | None, reason: str
) -> int:
    from nftvision.valuation.thin import MIN_MODEL_SALES, Neighbour, value_thin_market

    extractor = comparables_extractor(ctx)
    sales, attributes, vectors = _collection_inputs(ctx, chain_id, contract, extractor)
    at = _valuation_time(sales)
    neighbours = _neighbours(ctx, chain_id, contract, sha, extractor)
    valuation = None
    if len(sales) >= MIN_MODEL_SALES and token_id in attributes:
        try:
            model = _model(ctx, chain_id, contract, (sales, attributes, vectors), at)
            valuation = model.value(token_id, at)
            training = model.training_sales
        except ValueError as exc:  # the model refuses too little usable history
            log.info(
                "collection model unavailable for %s (%s); thin-market valuation", contract, exc
            )
    if valuation is None:
        valuation = value_thin_market(
            token_id,
            at,
            sales,
            [
                Neighbour(
                    n.token_id,
                    n.similarity,
                    float(Decimal(n.last_sale_wei) / WEI) if n.last_sale_wei else None,
                )
                for n in neighbours
            ],
        )
        training = len(sales)
    explanation = dict(valuation.explanation)
    explanation["visual_neighbours"] = [
        {
            "token_id": str(n.token_id),
            "similarity": round(n.similarity, 4),
            "last_sale_eth": float(Decimal(n.last_sale_wei) / WEI)
            if n.last_sale_wei is not None
            else None,
            "sales": n.sale_count,
        }
        for n in neighbours
    ]
    explanation = json_safe(explanation)
    price = _finite(valuation.price_eth)
    with ctx.factory.begin() as s:
        return queries.store_valuation(
            s,
            chain_id=chain_id,
            contract=contract,
            token_id=Decimal(token_id),
            model_version=valuation.model_version,
            p_liquid=_finite(valuation.p_liquid) or 0.0,
            price_eth=price,
            price_low_eth=_finite(valuation.low_eth) if price is not None else None,
            price_high_eth=_finite(valuation.high_eth) if price is not None else None,
            confidence=_finite(valuation.confidence) or 0.0,
            explanation=explanation,
            inputs={
                "reason": reason,
                "extractor": extractor,
                "as_of": at.isoformat(),
                "training_sales": training,
            },
        )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """NaN and infinities as null: Postgres refuses them in JSON, and they mean "unknown"."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
