"""The marketplaces nftwatch reads, one module each, and the registry that joins them.

    base          what a module declares: ``Market`` (handlers by topic layout, deployments,
                  payment tokens, a finishing pass) and ``Deployment``
    blend         Blur Blend's loans (a purchase out of a loan is a sale too)
    blur          Blur Exchange v1 ``OrdersMatched`` and v2 ``Execution`` (and its packed forms)
    cryptopunks   the punks contract's own market (emitted by the collection itself)
    looksrare     LooksRare v1 ``TakerAsk``/``TakerBid`` (with ``RoyaltyPayment``) and v2's
    seaport       Seaport 1.1–1.6 ``OrderFulfilled`` (and the demo market)
    sudoswap      Sudoswap v1/v2 pools' ``SwapNFTInPair``/``SwapNFTOutPair`` (any pair clone)
    x2y2          X2Y2 ``EvInventory``

Adding a market: write its module with a ``MARKET``, add it to :data:`MARKETS`, and give it a
test that checks its topics against the published ABI and decodes our emitter's logs on anvil.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

from listeners.logs import DecodeContext, Handler, Log
from listeners.markets import blend, blur, cryptopunks, looksrare, seaport, sudoswap, x2y2
from listeners.markets.base import Deployment, Market

MARKETS: tuple[Market, ...] = (
    cryptopunks.MARKET,
    seaport.MARKET,
    blur.MARKET,
    blend.MARKET,
    looksrare.MARKET,
    x2y2.MARKET,
    sudoswap.MARKET,
)

__all__ = ["MARKETS", "Deployment", "LogQuery", "Market", "Markets", "markets_for"]


@dataclass(frozen=True)
class LogQuery:
    """One ``eth_getLogs`` filter: ``addresses`` None means every contract."""

    addresses: tuple[str, ...] | None
    topics: tuple[str, ...]


def _guarded(handler: Handler, allowed: frozenset[str]) -> Handler:
    """``handler`` for logs of ``allowed`` contracts only: a look-alike elsewhere is skipped."""

    def guarded(d: DecodeContext, log: Log, topics: list[str]) -> bool:
        return d.contract in allowed and handler(d, log, topics)

    return guarded


@dataclass(frozen=True)
class Markets:
    """The registry on one chain: the handlers, the filters to fetch their logs, the payment
    tokens they read and their finishing passes."""

    chain_id: int | None
    markets: tuple[Market, ...]

    @property
    def handlers(self) -> dict[tuple[str, int], Handler]:
        out: dict[tuple[str, int], Handler] = {}
        for market in self.markets:
            allowed = market.addresses(self.chain_id)
            for layout, handler in market.handlers.items():
                if layout in out:
                    raise ValueError(f"{market.name}: layout {layout} is claimed twice")
                out[layout] = handler if allowed is None else _guarded(handler, allowed)
        return out

    @property
    def payment_tokens(self) -> frozenset[str]:
        return frozenset().union(*(m.payment_tokens for m in self.markets))

    @property
    def payment_topics(self) -> frozenset[str]:
        """Topics of the markets that read their transaction's payments: the transactions with
        such a log are the ones whose payment-token transfers are fetched (their receipts)."""
        return frozenset(t for m in self.markets if m.payment_tokens for t in m.topics)

    @property
    def finishers(self) -> tuple[Callable[[DecodeContext], None], ...]:
        return tuple(m.finish for m in self.markets if m.finish is not None)

    def collection_topics(self) -> tuple[str, ...]:
        """Topics the watched collections emit themselves (fetched with their logs)."""
        return _flat(m.topics for m in self.markets if m.from_collection)

    def queries(self) -> list[LogQuery]:
        """The filters for every market's logs beside the watched collections' own: one by the
        markets' known contracts, one by topic alone for markets whose emitters are unknown here
        (clones, or a chain without deployments). The payment tokens' transfers are not among
        them (WETH moves hundreds of times a block): they come from the receipts of the
        transactions that need them (:attr:`payment_topics`)."""
        by_address: list[str] = []
        address_topics: list[str] = []
        anywhere: list[str] = []
        for market in self.markets:
            if market.from_collection:
                continue
            allowed = market.addresses(self.chain_id)
            if allowed is None:
                anywhere.extend(market.topics)
            else:
                by_address.extend(sorted(allowed))
                address_topics.extend(market.topics)
        out = []
        if by_address:
            out.append(LogQuery(tuple(dict.fromkeys(by_address)), _flat([address_topics])))
        if anywhere:
            out.append(LogQuery(None, _flat([anywhere])))
        return out


def _flat(topic_lists: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for topics in topic_lists for t in topics))


@cache
def markets_for(chain_id: int | None) -> Markets:
    """The registry of :data:`MARKETS` on ``chain_id`` (None: any emitter is read)."""
    return Markets(chain_id, MARKETS)
