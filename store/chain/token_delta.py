"""Per-token deltas of one batch of *new* events: the pure half of the incremental token update.

``tokens`` rows are derived from all events of a token. Recomputing them from every event on each
batch costs a scan per touched token; instead each batch contributes a delta (counts, the earliest
mint, the last owner and last sale of the batch) that :mod:`store.chain.tokens` merges into the
stored row. Counts, minimums and maximums merge in any order; "last owner" and "last sale price"
only when the batch's events come after every stored one, which the database checks (and
otherwise falls back to a full recompute of that token).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from store.records import SaleEvent, TransferEvent

# A position in chain order, (block_number, log_index, batch_index), packed into one int so that
# comparing two costs one int comparison and building one allocates no tuple (this runs once per
# event). Log and batch indexes are below 2**32.
Pos = int
_LOW32 = 0xFFFFFFFF


def pos(block_number: int, log_index: int, batch_index: int) -> Pos:
    return (block_number << 64) | (log_index << 32) | batch_index


def unpack(p: Pos) -> tuple[int, int, int]:
    """(block_number, log_index, batch_index) of a packed position."""
    return p >> 64, (p >> 32) & _LOW32, p & _LOW32


@dataclass(slots=True)
class TokenDelta:
    contract: str
    token_id: int
    first_block: int  # earliest block of the batch's events of this token (resolve payload)
    minted_here: bool = False
    rows: int = 0  # new transfer rows
    moves: int = 0  # new transfer rows that are not mints
    mint_block: int | None = None
    multi: bool = False  # an ERC-1155 row: no single owner
    first_pos: Pos | None = None
    last_pos: Pos | None = None
    last_to: str | None = None
    sales: int = 0
    sale_first_pos: Pos | None = None
    sale_last_pos: Pos | None = None
    last_price: int | None = None
    last_time: dt.datetime | None = None
    redo: bool = False  # merge impossible from the batch alone: recompute from all events


def token_deltas(
    transfers: Iterable[TransferEvent],
    sales: Iterable[SaleEvent],
    when: Callable[[str], dt.datetime],
    redo_sales: frozenset[tuple[str, str, int, int]] = frozenset(),
) -> list[TokenDelta]:
    """Aggregate new ``transfers`` and ``sales`` per (contract, token_id),
    in order of first appearance.

    ``redo_sales``: keys (block_hash, tx_hash, log_index, batch_index) of sales whose stored price
    differs from the event's (fixed up in SQL): their tokens are recomputed."""
    out: list[TokenDelta] = []
    # contract -> token id -> delta: two lookups, but no key tuple allocated per event
    by_contract: dict[str, dict[int, TokenDelta]] = {}
    # Attribute reads hoisted and the common case (a token's first event of the batch) handled
    # in one step: this loop runs once per event, on the pipeline's critical path.
    for t in transfers:
        contract = t.contract
        tokens = by_contract.get(contract)
        if tokens is None:
            tokens = by_contract[contract] = {}
        token_id, block, mint = t.token_id, t.block_number, t.is_mint
        p = (block << 64) | (t.log_index << 32) | t.batch_index
        d = tokens.get(token_id)
        if d is None:
            d = tokens[token_id] = TokenDelta(
                contract,
                token_id,
                block,
                mint,
                1,
                0 if mint else 1,
                block if mint else None,
                t.standard == "erc1155",
                p,
                p,
                t.to_address,
            )
            out.append(d)
            continue
        if block < d.first_block:
            d.first_block = block
        d.rows += 1
        if mint:
            d.minted_here = True
            if d.mint_block is None or block < d.mint_block:
                d.mint_block = block
        else:
            d.moves += 1
        if not d.multi and t.standard == "erc1155":
            d.multi = True
        # Both positions are set by the token's first transfer, which this loop saw (the sales
        # come after); no check spent on None here, once per event.
        if p > d.last_pos:  # type: ignore[operator]
            d.last_pos = p
            d.last_to = t.to_address
        elif p < d.first_pos:  # type: ignore[operator]
            d.first_pos = p
    for s in sales:
        contract = s.contract
        tokens = by_contract.get(contract)
        if tokens is None:
            tokens = by_contract[contract] = {}
        d = tokens.get(s.token_id)
        if d is None:
            d = tokens[s.token_id] = TokenDelta(contract, s.token_id, s.block_number)
            out.append(d)
        elif s.block_number < d.first_block:
            d.first_block = s.block_number
        p = pos(s.block_number, s.log_index, s.batch_index)
        d.sales += 1
        if d.sale_first_pos is None or p < d.sale_first_pos:
            d.sale_first_pos = p
        if d.sale_last_pos is None or p > d.sale_last_pos:
            d.sale_last_pos = p
            d.last_price = s.price_wei
        t_ = when(s.block_hash)
        if d.last_time is None or t_ > d.last_time:
            d.last_time = t_
        if redo_sales and (s.block_hash, s.tx_hash, s.log_index, s.batch_index) in redo_sales:
            d.redo = True
    return out


ZERO_ADDRESS = "0x" + "0" * 40


def balance_deltas(transfers: Iterable[TransferEvent]) -> dict[tuple[str, int, str], int]:
    """Net change of ERC-1155 balances per (contract, token_id, owner) from new ``transfers``
    (other standards are skipped). The zero address (the mint and burn side)
    holds nothing; nets of zero are left out. Balances are sums, so deltas merge in any order."""
    out: dict[tuple[str, int, str], int] = {}
    get = out.get
    for t in transfers:
        if t.standard != "erc1155":
            continue
        amount = t.amount
        if t.from_address != ZERO_ADDRESS:
            key = (t.contract, t.token_id, t.from_address)
            out[key] = get(key, 0) - amount
        if t.to_address != ZERO_ADDRESS:
            key = (t.contract, t.token_id, t.to_address)
            out[key] = get(key, 0) + amount
    return {k: v for k, v in out.items() if v}
