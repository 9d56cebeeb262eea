"""On-demand valuation, fast enough for a loan desk while a backfill runs.

The urgent path does only what this one token needs: resolve it if it never was, embed its image
with the comparables' extractor alone (the embed queue adds the other extractors later), look up
its visual neighbours, and value it with the collection's fitted model: the backtest's online
stack (``valuation.served``) of the levels, the hedonic-knn model and two naive medians, its
interval from the stack's own out-of-sample residuals.

Fitting is kept off that path: each worker process holds one fitted model per collection and
reuses it until the collection's sales or tokens change; a refit then runs in the background (at
most one per collection, at most every ``REFIT_INTERVAL_S``) while valuations go on with the
current fit. Every fit runs in a child process (``worker.fitting``): in a thread of this one it
would hold the GIL against the threads that start and run valuations. A new sale only moves the
levels, the medians and the comparables (``with_sales``: the weights, premia and ridge stay as
fit). A token the fit never saw, or whose traits changed since, is valued by the thin-market
method from its visual neighbours, and the valuation says so.
Every valuation records the model version, the time it was fit as of, its inputs and how long
each step took."""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from store import market, tokens, valuations
from store.vectors import Neighbour, embedding_dim, nearest
from worker.context import WorkerContext
from worker.embedding import embed_stored
from worker.fitting import FITTER, FitProcess

log = logging.getLogger(__name__)

WEI = Decimal(10**18)
PREFERRED_EXTRACTOR = "effnet-lite0-v1"
NEIGHBOURS = 8
REFIT_INTERVAL_S = 5.0  # a collection's model is refit at most this often, in the background
# ... and at most every this many times its last fit's duration: background fitting takes at
# most a quarter of a core, at nice 5 in a process of its own (worker.fitting)
REFIT_COST_FACTOR = 4.0

# what a fit or a market state was computed from: (sale count, max block, block sum)
Stamp = tuple[int, int, int]


def comparables_extractor(ctx: WorkerContext) -> str:
    names = ctx.config.extractors
    return PREFERRED_EXTRACTOR if PREFERRED_EXTRACTOR in names else names[-1]


class _Timer:
    """Milliseconds per step of one valuation, recorded with it."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round(self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1e3, 1)


def value_now(
    ctx: WorkerContext, chain_id: int, contract: str, token_id: int, *, reason: str = ""
) -> int:
    """Value one token now; returns the stored valuation's id."""
    from worker.resolving import resolve_batch

    contract = contract.lower()
    timer = _Timer()
    extractor = comparables_extractor(ctx)
    with timer.step("load_extractor"):  # once per process, ahead of any image that needs it
        ctx.extractor(extractor)
    with timer.step("read_token"), ctx.factory() as s:
        row = tokens.token(s, chain_id, contract, token_id)
        needs_resolve = row is None or row.metadata_status != "ok"
    if needs_resolve:
        with timer.step("resolve"):
            resolve_batch(ctx, chain_id, contract, [token_id])
        with ctx.factory() as s:
            row = tokens.token(s, chain_id, contract, token_id)
    sha = row.image_sha256 if row is not None else None
    traits = token_traits(row.attributes) if row is not None else {}
    if sha is not None:
        with timer.step("embed"):
            embed_stored(ctx, [extractor], [sha])
    return _value(ctx, chain_id, contract, token_id, sha, traits, reason, timer)


def token_traits(attrs: Any) -> dict[str, str]:
    """One token's traits from its ``attributes``, every value of a repeated trait type kept.

    Read alone, as ``collection_traits`` reads a collection of this one token: the fit's view of
    the same attributes is read the same way to tell whether they changed since the fit (in the
    fit, a type that another token repeats is keyed by value even where this one has it once)."""
    from valuation.traits import collection_traits

    return collection_traits({0: attrs})[0]


# ------------------------------------------------------------------ reading the collection


def _load_sales(s: Session, chain_id: int, contract: str) -> list[Any]:
    from valuation.sales import priced_single_sales

    return priced_single_sales(market.collection_sales(s, chain_id, contract))


def _eth(wei: int | None) -> float | None:
    return None if wei is None else float(Decimal(wei) / WEI)


def _listed(ask: market.Ask | None) -> Any:
    """A stored ask as ``valuation.bounds`` reads it (None stays None)."""
    from valuation.bounds import ListedAsk

    if ask is None:
        return None
    return ListedAsk(ask.token_id, float(Decimal(ask.price_wei) / WEI), ask.venue)


def _valuation_time(sales: list[Any]) -> dt.datetime:
    """Now, or just after the latest recorded sale when the chain's clock runs ahead of ours
    (a local node mines faster than a block a second): nothing after this time is used."""
    now = dt.datetime.now(dt.UTC)
    latest = max((s.time for s in sales), default=now)
    return max(now, latest + dt.timedelta(microseconds=1))


# ------------------------------------------------------------------ fitted models, reused


@dataclass
class _Entry:
    """One collection's model in this process and the data it reflects."""

    model: Any = None  # ServedStack over ``sales``, or None (never fit, or too little history)
    attributes: dict[int, Any] = field(default_factory=dict)  # each token's, as the fit read them
    fit_stamp: tuple[Stamp, tuple[int, int]] | None = None  # (sales, tokens) the fit read
    sales_stamp: Stamp | None = None  # the sales ``sales`` holds
    sales: list[Any] = field(default_factory=list)
    fitted_at: float = -math.inf  # monotonic seconds of the last fit attempt
    fit_seconds: float = 0.0  # how long the last fit took
    refitting: bool = False
    error: str | None = None  # why the last fit refused
    first_fit: threading.Lock = field(default_factory=threading.Lock)


class ModelCache:
    """Fitted models per (chain, contract), refit in the background when their data changed."""

    def __init__(
        self,
        refit_interval_s: float = REFIT_INTERVAL_S,
        cost_factor: float = REFIT_COST_FACTOR,
        fitter: FitProcess | None = None,
    ) -> None:
        self.refit_interval_s = refit_interval_s
        self.cost_factor = cost_factor  # background fitting takes at most 1/factor of a core
        self.fitter = fitter or FITTER
        self._entries: dict[tuple[int, str], _Entry] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def current(
        self,
        ctx: WorkerContext,
        chain_id: int,
        contract: str,
        extractor: str,
        sales_stamp: Stamp,
        tokens_stamp: tuple[int, int],
    ) -> _Entry:
        """The collection's model over its current sales: fit now when there is none yet,
        otherwise the existing fit (refit in the background when sales or tokens changed)."""
        key = (chain_id, contract)
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
        with entry.first_fit:  # nothing to serve yet: fit once, in the foreground
            if entry.fitted_at == -math.inf:
                self._refit(ctx, key, extractor)
        with self._lock:
            if entry.sales_stamp != sales_stamp:
                with ctx.factory() as s:
                    sales = _load_sales(s, chain_id, contract)
                entry.sales, entry.sales_stamp = sales, sales_stamp
                if entry.model is not None:  # a new sale moves the levels and comparables only
                    entry.model = entry.model.with_sales(sales)
            stale = entry.fit_stamp != (sales_stamp, tokens_stamp)
            # without a model, new sales make a fit worth trying at once; with one, on a schedule
            wait = max(self.refit_interval_s, self.cost_factor * entry.fit_seconds)
            due = entry.model is None or time.monotonic() - entry.fitted_at >= wait
            if stale and due and not entry.refitting:
                entry.refitting = True
                thread = threading.Thread(
                    target=self._refit,
                    args=(ctx, key, extractor),
                    name=f"refit-{contract[:10]}",
                    daemon=True,
                )
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                thread.start()
            return replace(entry)  # a consistent copy: a refit may swap the model meanwhile

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for background refits (tests, shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _refit(self, ctx: WorkerContext, key: tuple[int, str], extractor: str) -> None:
        from valuation.served import fit_served
        from valuation.thin import MIN_MODEL_SALES
        from valuation.traits import collection_traits

        chain_id, contract = key
        model, error = None, None
        began = time.monotonic()
        try:
            with ctx.factory() as s, s.begin():  # one snapshot for the stamps and the data
                stamp = (
                    market.sales_stamp(s, chain_id, contract),
                    tokens.coverage(s, chain_id, contract, extractor),
                )
                sales = _load_sales(s, chain_id, contract)
                attributes, vectors = tokens.attributes_and_vectors(
                    s, chain_id, contract, extractor
                )
            traits = collection_traits(attributes)  # every accessory of a punk, not its last
            if len(sales) >= MIN_MODEL_SALES and traits:
                # a fitting process starts only where a fit runs, and the refit schedule follows
                # what a fit costs, not that process's start-up
                starting = time.monotonic()
                self.fitter.start()
                began += time.monotonic() - starting
                try:
                    model = self.fitter.run(
                        fit_served,
                        sales,
                        traits,
                        as_of=_valuation_time(sales),
                        embeddings=vectors or None,
                    )
                except ValueError as exc:  # the model refuses too little usable history
                    error = str(exc)
            elif traits:
                error = f"{len(sales)} sales: too few to fit"
            else:
                error = "no token's traits are resolved yet"
        except Exception as exc:  # a failed refit keeps the previous fit serving
            log.exception("refit of %s failed", contract)
            with self._lock:
                entry = self._entries[key]
                entry.refitting, entry.fitted_at, entry.error = False, time.monotonic(), str(exc)
            return
        with self._lock:
            entry = self._entries[key]
            entry.fitted_at, entry.refitting, entry.error = time.monotonic(), False, error
            entry.fit_seconds = entry.fitted_at - began
            entry.fit_stamp = stamp
            if model is not None or entry.model is None:
                entry.model, entry.attributes = model, attributes
                entry.sales, entry.sales_stamp = sales, stamp[0]
        if model is not None:
            log.info(
                "fitted %s for %s on %d sales in %s s",
                model.model_version,
                contract,
                model.training_sales,
                model.fit_seconds,
            )


MODELS = ModelCache()


# ------------------------------------------------------------------ one valuation


def _neighbours(
    ctx: WorkerContext, chain_id: int, contract: str, sha: str | None, extractor: str
) -> list[Neighbour]:
    if sha is None:
        return []
    with ctx.factory() as s, s.begin():
        dim = embedding_dim(s, sha, extractor)
        if not dim:
            return []
        return nearest(
            s,
            extractor=extractor,
            dim=dim,
            image_sha256=sha,
            k=NEIGHBOURS,
            chain_id=chain_id,
            contract=contract,
        )


def _value(
    ctx: WorkerContext,
    chain_id: int,
    contract: str,
    token_id: int,
    sha: str | None,
    traits: dict[str, str],
    reason: str,
    timer: _Timer,
    cache: ModelCache | None = None,
) -> int:
    from valuation.bounds import MarketAsks, OpenOrders, apply_market, apply_orders
    from valuation.thin import Neighbour, value_thin_market
    from valuation.traits import collection_traits

    cache = cache or MODELS
    extractor = comparables_extractor(ctx)
    with timer.step("stamps"), ctx.factory() as s:
        sales_stamp = market.sales_stamp(s, chain_id, contract)
        tokens_stamp = tokens.coverage(s, chain_id, contract, extractor)
    with timer.step("model"):
        entry = cache.current(ctx, chain_id, contract, extractor, sales_stamp, tokens_stamp)
    sales = entry.sales
    at = _valuation_time(sales)
    with timer.step("neighbours"):
        neighbours = _neighbours(ctx, chain_id, contract, sha, extractor)
    model = entry.model
    valuation = None
    method = "fitted"
    with timer.step("value"):
        if model is None:
            method = f"thin: no fitted model ({entry.error or 'none yet'})"
        elif token_id not in model.space.index:
            method = "thin: token not in the fit"
        elif token_traits(entry.attributes.get(token_id)) != traits:
            method = "thin: traits changed since the fit"
        else:
            valuation = model.value(token_id, at)
            training = model.training_sales
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
                collection_traits(entry.attributes) if entry.attributes else None,
            )
            training = len(sales)
    valuation = replace(
        valuation,
        explanation={
            **valuation.explanation,
            "visual_neighbours": [
                {
                    "token_id": str(n.token_id),
                    "similarity": round(n.similarity, 4),
                    "last_sale_eth": float(Decimal(n.last_sale_wei) / WEI)
                    if n.last_sale_wei is not None
                    else None,
                    "last_sale_time": n.last_sale_at.isoformat() if n.last_sale_at else None,
                    "sales": n.sale_count,
                }
                for n in neighbours
            ],
        },
    )
    cited = [int(c["token_id"]) for c in valuation.explanation.get("comparables") or []]
    with timer.step("orders"), ctx.factory() as s:
        live = market.live_orders(s, chain_id, contract, token_id)
        asks = market.asks_of(s, chain_id, contract, cited + [n.token_id for n in neighbours])
        floor = market.floor_ask(s, chain_id, contract, exclude_token=token_id)
    valuation = apply_market(
        valuation,
        MarketAsks(
            floor=_listed(floor),
            asks={t: _listed(a) for t, a in asks.items() if t != token_id},
        ),
    )
    valuation = apply_orders(
        valuation,
        OpenOrders(
            ask_eth=_eth(live.ask_wei),
            ask_venue=live.ask_venue,
            bid_eth=_eth(live.bid_wei),
            bid_venue=live.bid_venue,
        ),
    )
    explanation = dict(valuation.explanation)
    explanation = json_safe(explanation)
    price = _finite(valuation.price_eth)
    inputs: dict[str, Any] = {
        "reason": reason,
        "method": method,
        "extractor": extractor,
        "as_of": at.isoformat(),
        "training_sales": training,
        # sales the fit left out as wash trades or outliers (valuation.wash), by reason
        "wash_excluded": dict(model.excluded) if model is not None and method == "fitted" else {},
        "sales_seen": len(sales),
        "fit_as_of": model.as_of.isoformat() if model is not None else None,
        "fit_version": model.model_version if model is not None else None,
    }
    with timer.step("store"), ctx.factory.begin() as s:
        inputs["timings_ms"] = dict(timer.ms)
        return valuations.store_valuation(
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
            inputs=inputs,
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
