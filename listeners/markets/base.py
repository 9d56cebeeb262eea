"""What a market module declares: where its contracts live, the events it reads, and how."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from listeners.logs import DecodeContext, Handler

MAINNET = 1


@dataclass(frozen=True)
class Deployment:
    """One contract of a market on one chain, from the block it was deployed in."""

    address: str  # lower-case 0x hex
    block: int
    label: str = ""  # its version, e.g. "1.5"
    chain_id: int = MAINNET


@dataclass(frozen=True)
class Market:
    """One marketplace (or lending protocol): a module under ``listeners/markets/`` builds one.

    ``handlers`` maps (topic0, topic count) to the function decoding that layout. On a chain
    where the market lists ``deployments``, only logs of those contracts reach the handlers, so
    a look-alike contract cannot forge sales; on other chains (a dev chain, tests) any emitter is
    read. ``any_emitter``: the events come from contracts the market creates (Sudoswap's pairs),
    so they are fetched by topic alone. ``from_collection``: the collection itself emits them
    (CryptoPunks), so they come with the watched collections' logs. ``payment_tokens``: ERC-20s
    whose ``Transfer`` logs the decoders need (the same transaction's payments). ``finish`` runs
    once after every log of the pass, for decoders that join several logs."""

    name: str
    handlers: Mapping[tuple[str, int], Handler]
    deployments: tuple[Deployment, ...] = ()
    any_emitter: bool = False
    from_collection: bool = False
    payment_tokens: frozenset[str] = field(default_factory=frozenset)
    finish: Callable[[DecodeContext], None] | None = None

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(topic0 for topic0, _ in self.handlers))

    def addresses(self, chain_id: int | None) -> frozenset[str] | None:
        """The contracts whose logs are this market's on ``chain_id``; None: any contract's."""
        if chain_id is None or self.any_emitter:
            return None
        known = frozenset(d.address for d in self.deployments if d.chain_id == chain_id)
        return known or None


BLUR_POOL = "0x0000000000a39bb272e79075ade125fd351887ac"


def currency_name(token: str | None, weth: str) -> str:
    """A sale's ``currency``: ETH (``token`` None or 0x0), WETH, BLUR_POOL, or the ERC-20."""
    if token is None or token == "0x0000000000000000000000000000000000000000":
        return "ETH"
    if token == weth:
        return "WETH"
    if token == BLUR_POOL:
        return "BLUR_POOL"
    return token
