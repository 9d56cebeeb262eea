"""Incremental token rows and ERC-1155 balances equal a full recompute from all events, whatever
the order the batches arrive in (forward scans, an older range after a newer one, overlapping
replays, ERC-1155 tokens, sales-only tokens)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from listeners.decode import ZERO
from store.chain import recompute_tokens, record_batch
from store.records import BlockHeader, SaleEvent, TransferEvent

CHAIN = 5

TOKEN_COLS = (
    "contract, token_id, owner, minted_block, transfer_count, sale_count, last_sale_wei, "
    "last_sale_at"
)


def history(seed: int) -> tuple[list[BlockHeader], list[TransferEvent], list[SaleEvent]]:
    rng = random.Random(seed)
    users = [f"0x{i:040x}" for i in range(1, 9)]
    nft, multi = "0x" + "a1" * 20, "0x" + "b2" * 20
    headers, transfers, sales = [], [], []
    owner: dict[int, str] = {}
    parent = "0x" + "00" * 32
    for b in range(1, 121):
        bh = f"0x{rng.getrandbits(256):064x}"
        headers.append(BlockHeader(b, bh, parent, 1_700_000_000 + 12 * b))
        parent = bh
        for li in range(rng.randrange(0, 5)):
            tx = f"0x{rng.getrandbits(256):064x}"
            tid = rng.randrange(12)
            kind = rng.random()
            if kind < 0.6:
                frm = owner.get(tid, ZERO)
                to = rng.choice(users)
                owner[tid] = to
                transfers.append(
                    TransferEvent(b, bh, tx, li, 0, nft, tid, frm, to, 1, "erc721", frm == ZERO)
                )
                if frm != ZERO and rng.random() < 0.5:
                    price = rng.randrange(1, 10**19)
                    sales.append(
                        SaleEvent(b, bh, tx, li, 0, nft, tid, frm, to, price, "ETH", "seaport")
                    )
            elif kind < 0.8:
                for i in range(3):
                    frm = ZERO if rng.random() < 0.5 else rng.choice(users)
                    transfers.append(
                        TransferEvent(
                            b,
                            bh,
                            tx,
                            li,
                            i,
                            multi,
                            rng.randrange(4),
                            frm,
                            rng.choice(users),
                            rng.randrange(1, 5),
                            "erc1155",
                            frm == ZERO,
                        )
                    )
            else:
                # a sale of a token whose transfer we never see (another contract's NFT)
                sales.append(
                    SaleEvent(
                        b,
                        bh,
                        tx,
                        li,
                        0,
                        "0x" + "c3" * 20,
                        rng.randrange(3),
                        users[0],
                        users[1],
                        rng.randrange(1, 10**18),
                        "WETH",
                        "seaport",
                    )
                )
    return headers, transfers, sales


def ingest(
    factory: sessionmaker[Session],
    headers: list[BlockHeader],
    transfers: list[TransferEvent],
    sales: list[SaleEvent],
    ranges: list[tuple[int, int]],
    incremental: bool,
) -> None:
    for lo, hi in ranges:
        with factory.begin() as s:
            record_batch(
                s,
                CHAIN,
                [h for h in headers if lo <= h.number <= hi],
                [t for t in transfers if lo <= t.block_number <= hi],
                [x for x in sales if lo <= x.block_number <= hi],
                [],
                [],
                None,
                None,
                None,
                incremental=incremental,
            )


def tokens(factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with factory() as s:
        return [tuple(r) for r in s.execute(text(f"SELECT {TOKEN_COLS} FROM tokens ORDER BY 1, 2"))]


def balances(factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with factory() as s:
        sql = "SELECT contract, token_id, owner, amount FROM balances ORDER BY 1, 2, 3"
        return [tuple(r) for r in s.execute(text(sql))]


def wipe(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        s.execute(text("TRUNCATE transfers, sales, tokens, balances, blocks, outbox"))


ORDERS = {
    "forward": [(1, 30), (31, 60), (61, 90), (91, 120)],
    "backward": [(91, 120), (61, 90), (31, 60), (1, 30)],
    "overlapping": [(50, 80), (1, 60), (70, 120), (1, 120), (20, 25)],
    "shuffled_small": None,
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_incremental_tokens_equal_full_recompute(sessions, order: str) -> None:
    headers, transfers, sales = history(seed=len(order))
    ranges = ORDERS[order]
    if ranges is None:
        ranges = [(b, min(120, b + 6)) for b in range(1, 121, 7)]
        random.Random(3).shuffle(ranges)
    ingest(sessions, headers, transfers, sales, ranges, incremental=True)
    incremental = tokens(sessions)
    assert len(incremental) > 12  # ERC-721, ERC-1155 and sales-only tokens
    held = balances(sessions)
    assert held and {r[0] for r in held} == {"0x" + "b2" * 20}  # ERC-1155 holdings only

    with sessions.begin() as s:
        recompute_tokens(s, CHAIN)
    assert tokens(sessions) == incremental
    assert balances(sessions) == held

    # and the same as the reference path that recomputes every touched token on each batch
    wipe(sessions)
    ingest(sessions, headers, transfers, sales, ranges, incremental=False)
    assert tokens(sessions) == incremental
    assert balances(sessions) == held
    multi_owner = [r for r in incremental if r[0] == "0x" + "b2" * 20]
    assert multi_owner and all(r[2] is None for r in multi_owner)
