"""Blur Exchange v1 and v2: the decoder reads the published layouts (logs built with eth_abi
from the verified sources' ABI), our emitter emits exactly them, its fills on anvil land in
Postgres as sales with the right sides, price, currency and fees, and the real mainnet fill
of a Blend collateral decodes to one sale."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi import encode
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from listeners.backfill import backfill
from listeners.decode import decode_logs
from listeners.markets import blur
from listeners.markets.base import BLUR_POOL
from listeners.rpc import Rpc
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.blur import (
    AZUKI,
    BLEND,
    BLUR_ABI,
    ETH,
    MAINNET_BIDDER,
    MAINNET_BORROWER,
    MAINNET_LOGS,
    MAINNET_TX,
    abi_type,
    fund,
    install_pool,
    order,
    shape,
    topic0,
)

CHAIN = 31337
NFT = "0x" + "11" * 20
A, B, C, FEE_TO = ("0x" + h * 40 for h in ("a", "b", "c", "f"))


@pytest.fixture
def rpc(anvil: Anvil) -> Iterator[Rpc]:
    client = Rpc(anvil.url)
    yield client
    client.close()


def rows(factory: sessionmaker[Session], sql: str) -> list[tuple[Any, ...]]:
    with factory() as s:
        return [tuple(r) for r in s.execute(text(sql)).all()]


def _event(name: str) -> dict:
    return next(e for e in BLUR_ABI if e["name"] == name)


def _log(name: str, values: list[Any], *, tx: str = "0x" + "01" * 32, index: int = 0) -> dict:
    """A log of the published event ``name``: indexed values as topics, the rest ABI-encoded."""
    event = _event(name)
    topics = [topic0(event)]
    data_types, data_values = [], []
    for param, value in zip(event["inputs"], values, strict=True):
        if param["indexed"]:
            topics.append("0x" + encode([abi_type(param)], [value]).hex())
        else:
            data_types.append(abi_type(param))
            data_values.append(value)
    return {
        "address": "0x" + "99" * 20,
        "topics": topics,
        "data": "0x" + encode(data_types, data_values).hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ee" * 32,
        "transactionHash": tx,
        "logIndex": hex(index),
    }


def _nft_move(frm: str, to: str, token_id: int, *, tx: str = "0x" + "01" * 32) -> dict:
    return {
        "address": NFT,
        "topics": [
            "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
            "0x" + "00" * 12 + frm[2:],
            "0x" + "00" * 12 + to[2:],
            "0x" + token_id.to_bytes(32, "big").hex(),
        ],
        "data": "0x",
        "blockNumber": "0x10",
        "blockHash": "0x" + "ee" * 32,
        "transactionHash": tx,
        "logIndex": "0x5",
    }


def test_topics_and_layouts_are_the_published_ones() -> None:
    published = {e["name"]: topic0(e) for e in BLUR_ABI}
    assert published == {
        "OrdersMatched": blur.ORDERS_MATCHED,
        "Execution": blur.EXECUTION,
        "Execution721Packed": blur.EXECUTION_721_PACKED,
        "Execution721TakerFeePacked": blur.EXECUTION_721_TAKER_FEE_PACKED,
        "Execution721MakerFeePacked": blur.EXECUTION_721_MAKER_FEE_PACKED,
    }
    # the values other indexers key on (mainnet logs of 0x…ad05…5127 and 0xb2ec…cea5)
    assert blur.ORDERS_MATCHED.startswith("0x61cbb2a3")
    assert blur.EXECUTION_721_PACKED.startswith("0x1d5e12b5")
    # the handlers expect each event's topic count: 1 + its indexed inputs
    for e in BLUR_ABI:
        count = 1 + sum(1 for i in e["inputs"] if i["indexed"])
        assert (topic0(e), count) in blur.MARKET.handlers
    # our emitter declares exactly the published events
    arts = ct.compile_contracts()
    ours = shape(arts["BlurEmitter"].abi)
    assert {k: ours[k] for k in published} == shape(BLUR_ABI)


def test_v1_listing_and_bid_from_published_layout() -> None:
    listing = order(A, 1, NFT, 7, 2 * ETH, 100, fees=[(250, FEE_TO), (50, C)])
    take = order(B, 0, NFT, 7, 2 * ETH, 101)
    bid = order(C, 0, NFT, 8, ETH, 90, payment_token=BLUR_POOL)
    accept = order(A, 1, NFT, 8, ETH, 95, payment_token=BLUR_POOL, fees=[(100, FEE_TO)])
    logs = [
        _log("OrdersMatched", [A, B, listing, b"\x01" * 32, take, b"\x02" * 32], index=1),
        _log("OrdersMatched", [C, A, accept, b"\x03" * 32, bid, b"\x04" * 32], index=2),
    ]
    out = decode_logs(logs)
    got = [
        (s.token_id, s.seller, s.buyer, s.price_wei, s.currency, s.fees_wei, s.royalty_wei)
        for s in out.sales
    ]
    assert got == [
        (7, A, B, 2 * ETH, "ETH", 2 * ETH * 300 // 10_000, 2 * ETH * 300 // 10_000),
        (8, A, C, ETH, "BLUR_POOL", ETH // 100, ETH // 100),
    ]
    assert {s.marketplace for s in out.sales} == {"blur"}


def test_v2_execution_and_packed_forms_from_published_layout() -> None:
    tx1, tx2, tx3, tx4 = ("0x" + f"{i:02x}" * 32 for i in (1, 2, 3, 4))
    price = 3 * ETH
    ids = (42 << 168) | (3 << 160) | int(A, 16)  # the seller's listing
    side_ask = (0 << 248) | (price << 160) | int(NFT, 16)
    side_bid = (1 << 248) | (price << 160) | int(NFT, 16)
    bid_ids = (43 << 168) | int(C, 16)  # the bidder's order
    fee = (50 << 160) | int(FEE_TO, 16)
    logs = [
        _log("Execution721Packed", [b"\x01" * 32, ids, side_ask], tx=tx1),
        _nft_move(A, B, 42, tx=tx1),
        _log("Execution721TakerFeePacked", [b"\x02" * 32, ids, side_ask, fee], tx=tx2),
        _nft_move(A, B, 42, tx=tx2),
        _log("Execution721MakerFeePacked", [b"\x03" * 32, bid_ids, side_bid, fee], tx=tx3),
        _nft_move(B, C, 43, tx=tx3),
        _log(
            "Execution",
            [
                (C, 44, 1, NFT, 0),
                b"\x04" * 32,
                0,
                price,
                (FEE_TO, 100),
                ((C, 50), (FEE_TO, 25)),
                1,
            ],
            tx=tx4,
        ),
        _nft_move(A, C, 44, tx=tx4),
    ]
    out = decode_logs(logs)
    got = [
        (s.token_id, s.seller, s.buyer, s.price_wei, s.currency, s.fees_wei, s.royalty_wei)
        for s in out.sales
    ]
    maker, taker, protocol = price // 100, price * 25 // 10_000, price * 50 // 10_000
    assert got == [
        (42, A, B, price, "ETH", 0, 0),
        # a taker fee is paid by the buyer on top of an ASK's price
        (42, A, B, price + price // 200, "ETH", price // 200, 0),
        # a BID's buyer pays the maker fee on top; the seller is the token's sender
        (43, B, C, price + price // 200, "BLUR_POOL", price // 200, 0),
        (44, A, C, price + maker, "BLUR_POOL", maker + taker + protocol, taker),
    ]


def test_bad_layout_is_skipped_not_fatal() -> None:
    """Data cut short (a look-alike, or a node that truncates) is no sale, and the rest of the
    pass goes on."""
    short = _log("Execution721Packed", [b"\x01" * 32, 1, 2])
    short["data"] = short["data"][:66]
    cut = _log(
        "OrdersMatched",
        [
            A,
            B,
            order(A, 1, NFT, 1, 1, 1),
            b"\0" * 32,
            order(B, 0, NFT, 1, 1, 2),
            b"\0" * 32,
        ],
    )
    cut["data"] = cut["data"][:400]
    out = decode_logs([short, cut])
    assert out.sales == [] and out.skipped == 2


def test_look_alike_emitter_is_ignored_on_mainnet() -> None:
    log = _log("Execution721Packed", [b"\x01" * 32, 1 << 168, int(NFT, 16)])
    assert decode_logs([log], chain_id=1).sales == []
    log["address"] = blur.EXCHANGE_V2
    assert len(decode_logs([log], chain_id=1).sales) == 1


def test_fills_on_anvil_are_recorded(anvil: Anvil, rpc: Rpc, sessions) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    pool = install_pool(w3, anvil.url)
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    ex = ct.deploy(w3, "BlurEmitter", pool.address)
    for i in range(1, 7):
        ct.mint(w3, nft, a[1], i)
    ct.call(w3, nft, "setApprovalForAll", ex.address, True, sender=a[1])
    ct.call(w3, nft, "setApprovalForAll", ex.address, True, sender=a[2])
    fund(w3, pool, a[3], 20 * ETH, [ex.address])
    c = nft.address
    zero_fee = ("0x" + "0" * 40, 0)  # web3 takes the zero address as is
    # v1: a listing in ETH with a 1% royalty, a bid in pool ETH
    sell = order(a[1], 1, c, 1, 2 * ETH, 10, fees=[(100, a[8])])
    ct.call(w3, ex, "execute", sell, order(a[2], 0, c, 1, 2 * ETH, 11), sender=a[2], value=2 * ETH)
    bid = order(a[3], 0, c, 2, ETH, 5, payment_token=BLUR_POOL)
    accept = order(a[1], 1, c, 2, ETH, 6, payment_token=BLUR_POOL)
    ct.call(w3, ex, "execute", accept, bid, sender=a[1])
    # v2: a packed ask, an ask with a taker fee, a bid with a maker fee, a protocol-fee bid
    h = b"\x07" * 32
    ct.call(w3, ex, "takeAsk", c, 3, a[1], ETH, zero_fee, (zero_fee, zero_fee), h, 0,
            sender=a[4], value=ETH)  # fmt: skip
    ct.call(w3, ex, "takeAsk", c, 4, a[1], ETH, zero_fee, (zero_fee, (a[8], 100)), h, 1,
            sender=a[4], value=ETH + ETH // 100)  # fmt: skip
    ct.call(w3, ex, "takeBid", c, 5, a[3], ETH, (a[8], 50), (zero_fee, zero_fee), h, 2,
            sender=a[1])  # fmt: skip
    ct.call(w3, ex, "takeBid", c, 6, a[3], ETH, zero_fee, ((a[9], 50), zero_fee), h, 3,
            sender=a[1])  # fmt: skip

    backfill(rpc, sessions, CHAIN, 0, rpc.get_block_number(), [c])
    got = rows(
        sessions,
        "SELECT token_id, seller, buyer, price_wei, currency, fees_wei, royalty_wei, "
        "price_eth_wei, marketplace FROM sales ORDER BY block_number",
    )
    a1, a2, a3, a4 = (x.lower() for x in a[1:5])
    assert got == [
        (1, a1, a2, 2 * ETH, "ETH", 2 * ETH // 100, 2 * ETH // 100, 2 * ETH, "blur"),
        (2, a1, a3, ETH, "BLUR_POOL", 0, 0, ETH, "blur"),
        (3, a1, a4, ETH, "ETH", 0, 0, ETH, "blur"),
        (4, a1, a4, ETH + ETH // 100, "ETH", ETH // 100, 0, ETH + ETH // 100, "blur"),
        (5, a1, a3, ETH + ETH // 200, "BLUR_POOL", ETH // 200, 0, ETH + ETH // 200, "blur"),
        (6, a1, a3, ETH, "BLUR_POOL", ETH // 200, 0, ETH, "blur"),
    ]
    # the payments did flow as the sales say: the bidder's pool balance paid three bids
    assert pool.functions.balanceOf(a[3]).call() == 20 * ETH - 3 * ETH - ETH // 200
    owners = rows(sessions, "SELECT token_id, owner, sale_count FROM tokens ORDER BY 1")
    assert owners == [(1, a2, 1), (2, a3, 1), (3, a4, 1), (4, a4, 1), (5, a3, 1), (6, a3, 1)]


def test_real_blend_collateral_fill_is_one_blur_sale() -> None:
    out = decode_logs(MAINNET_LOGS, chain_id=1)
    assert len(out.sales) == 1
    sale = out.sales[0]
    assert (sale.contract, sale.token_id, sale.tx_hash) == (AZUKI, 1527, MAINNET_TX)
    assert (sale.price_wei, sale.currency, sale.marketplace) == (16_300_000_000_000_000_000,
                                                                 "BLUR_POOL", "blur")  # fmt: skip
    # the bidder bought; the borrower (not Blend, the order's trader) sold
    assert (sale.buyer, sale.seller) == (MAINNET_BIDDER, MAINNET_BORROWER)
    # the NFT's own move is decoded beside it, once
    assert [(t.from_address, t.to_address) for t in out.transfers] == [(BLEND, MAINNET_BIDDER)]
