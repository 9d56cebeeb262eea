"""LooksRare v1 and v2: the decoder reads logs built from the published ABI, and a backfill of
our emitters' fills on anvil records the sales (prices, currencies, fees, royalties, bundles);
a reorg drops and restores them."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_hash.auto import keccak

from listeners.backfill import backfill
from listeners.decode import decode_logs
from listeners.follower import Follower
from listeners.markets import looksrare
from listeners.rpc import Rpc
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.db import truncate
from tests.test_listener_anvil import anvil_call, dump, rows

CHAIN = 31337
ETH = 10**18

# The published events (LooksRareExchange v1; ILooksRareProtocol v2): (type, indexed) in order.
V1_FIELDS = [
    ("bytes32", False),
    ("uint256", False),
    ("address", True),
    ("address", True),
    ("address", True),
    ("address", False),
    ("address", False),
    ("uint256", False),
    ("uint256", False),
    ("uint256", False),
]
ROYALTY_FIELDS = [
    ("address", True),
    ("uint256", True),
    ("address", True),
    ("address", False),
    ("uint256", False),
]
V2_TYPES = [
    "(bytes32,uint256,bool)",
    "address",
    "address",
    "uint256",
    "address",
    "address",
    "uint256[]",
    "uint256[]",
    "address[2]",
    "uint256[3]",
]


def _topic(name: str, types: list[str]) -> str:
    return "0x" + keccak(f"{name}({','.join(types)})".encode()).hex()


def _event_topics(abi: list[dict]) -> dict[str, tuple[str, int]]:
    """Each event of a compiled ABI: its topic0 and its number of indexed fields."""

    def typ(i: dict) -> str:
        if i["type"].startswith("tuple"):
            return "(" + ",".join(typ(c) for c in i["components"]) + ")" + i["type"][5:]
        return str(i["type"])

    return {
        e["name"]: (
            _topic(e["name"], [typ(i) for i in e["inputs"]]),
            sum(1 for i in e["inputs"] if i["indexed"]),
        )
        for e in abi
        if e["type"] == "event"
    }


def _word(value: Any, typ: str) -> str:
    return "0x" + encode([typ], [value]).hex()


def _log(name: str, fields: list[tuple[str, bool]], values: list[Any], index: int) -> dict:
    """A raw log of the event ``name`` laid out by the ABI: indexed fields as topics."""
    types = [t for t, _ in fields]
    topics = [_topic(name, types)]
    topics += [_word(v, t) for (t, ix), v in zip(fields, values, strict=True) if ix]
    data = encode(
        [t for t, ix in fields if not ix],
        [v for (_, ix), v in zip(fields, values, strict=True) if not ix],
    )
    return {
        "address": looksrare.EXCHANGE_V1,
        "topics": topics,
        "data": "0x" + data.hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + "cd" * 32,
        "logIndex": hex(index),
    }


A = ["0x" + f"{i:040x}" for i in range(1, 10)]
COLL = "0x" + "77" * 20
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def test_topics_are_the_published_signatures() -> None:
    assert looksrare.TAKER_BID_V1 == (
        "0x95fb6205e23ff6bda16a2d1dba56b9ad7c783f67c96fa149785052f47696f2be"
    )
    assert looksrare.TAKER_ASK_V1 == (
        "0x68cd251d4d267c6e2034ff0088b990352b97b2002c0476587d0c4da889c11330"
    )
    assert looksrare.TAKER_BID_V2 == (
        "0x3ee3de4684413690dee6fff1a0a4f92916a1b97d1c5a83cdf24671844306b2e3"
    )
    assert _topic("TakerAsk", V2_TYPES) == looksrare.TAKER_ASK_V2
    assert _topic("RoyaltyPayment", [t for t, _ in ROYALTY_FIELDS]) == looksrare.ROYALTY_PAYMENT
    # our emitters declare the same events, with the same indexed fields
    arts = ct.compile_contracts()
    assert _event_topics(arts["LooksRareV1Emitter"].abi) == {
        "TakerBid": (looksrare.TAKER_BID_V1, 3),
        "TakerAsk": (looksrare.TAKER_ASK_V1, 3),
        "RoyaltyPayment": (looksrare.ROYALTY_PAYMENT, 3),
    }
    assert _event_topics(arts["LooksRareV2Emitter"].abi) == {
        "TakerBid": (looksrare.TAKER_BID_V2, 0),
        "TakerAsk": (looksrare.TAKER_ASK_V2, 0),
    }


def test_v1_from_the_abi_with_its_royalty() -> None:
    royalty = _log("RoyaltyPayment", ROYALTY_FIELDS, [COLL, 5, A[6], WETH, ETH // 50], 3)
    bid = _log(
        "TakerBid",
        V1_FIELDS,
        [b"\x01" * 32, 7, A[0], A[1], A[2], WETH, COLL, 5, 1, 2 * ETH],
        4,
    )
    ask = _log("TakerAsk", V1_FIELDS, [b"\x02" * 32, 8, A[3], A[4], A[2], WETH, COLL, 6, 1, ETH], 5)
    out = decode_logs([royalty, bid, ask], chain_id=1)
    got = [
        (s.token_id, s.seller, s.buyer, s.price_wei, s.currency, s.royalty_wei) for s in out.sales
    ]
    assert got == [
        (5, A[1], A[0], 2 * ETH, "WETH", ETH // 50),  # TakerBid: the maker sold
        (6, A[3], A[4], ETH, "WETH", 0),  # TakerAsk: the taker sold
    ]
    assert out.sales[0].fees_wei == ETH // 50
    # the same logs from another contract on mainnet are a look-alike's: skipped
    fake = [dict(lg, address="0x" + "99" * 20) for lg in (royalty, bid, ask)]
    assert decode_logs(fake, chain_id=1).sales == []


def test_v2_from_the_abi_split_over_its_items() -> None:
    values = [
        (b"\x03" * 32, 9, True),
        A[0],  # bidUser
        A[5],  # bidRecipient
        0,
        "0x" + "00" * 20,
        COLL,
        [11, 12],
        [1, 1],
        [A[1], A[6]],
        [9 * ETH, ETH // 2, ETH // 2],
    ]
    data = encode(V2_TYPES, values)
    log = {
        "address": looksrare.PROTOCOL_V2,
        "topics": [_topic("TakerBid", V2_TYPES)],
        "data": "0x" + data.hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + "cd" * 32,
        "logIndex": "0x1",
    }
    out = decode_logs([log], chain_id=1)
    got = [
        (s.token_id, s.seller, s.buyer, s.price_wei, s.fees_wei, s.royalty_wei, s.bundle_size)
        for s in out.sales
    ]
    half = 10 * ETH // 2
    assert got == [
        (11, A[1], A[5], half, ETH // 2, ETH // 4, 2),
        (12, A[1], A[5], half, ETH // 2, ETH // 4, 2),
    ]
    assert {s.currency for s in out.sales} == {"ETH"}


def _fills(w3: Any, a: list[str]) -> tuple[Any, Any, Any, Any]:
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    multi = ct.deploy(w3, "DemoMulti", "ipfs://m/{id}")
    token = ct.deploy(w3, "DemoToken", "Wrapped", "WX", 10**24)
    v1 = ct.deploy(w3, "LooksRareV1Emitter")
    v2 = ct.deploy(w3, "LooksRareV2Emitter", a[9])
    for i in (1, 2, 3, 4):
        ct.mint(w3, nft, a[1], i)
    ct.call(w3, multi, "mint", a[1], 50, 4)
    for holder in (a[1], a[2]):
        ct.call(w3, nft, "setApprovalForAll", v1.address, True, sender=holder)
        ct.call(w3, nft, "setApprovalForAll", v2.address, True, sender=holder)
        ct.call(w3, multi, "setApprovalForAll", v2.address, True, sender=holder)
    for buyer in (a[2], a[3]):
        ct.call(w3, token, "transfer", buyer, 100 * ETH)
        ct.call(w3, token, "approve", v1.address, 100 * ETH, sender=buyer)
        ct.call(w3, token, "approve", v2.address, 100 * ETH, sender=buyer)
    fill = (nft.address, 1, token.address, 2 * ETH, a[9], ETH // 25, a[8], ETH // 10)
    ct.call(w3, v1, "takerBid", fill, a[1], sender=a[2])  # a2 buys token 1 from a1
    fill = (nft.address, 1, token.address, 3 * ETH, a[9], ETH // 10, a[8], 0)
    ct.call(w3, v1, "takerAsk", fill, a[3], sender=a[2])  # a2 sells token 1 to a3's bid
    # v2: a4 buys tokens 2 and 3 for ETH; a1 sells 4 units of id 50 to a3's bid in the ERC-20
    items = (nft.address, False, [2, 3], [1, 1])
    fees = [ETH * 3, ETH // 2, ETH // 2]
    ct.call(
        w3, v2, "executeTakerBid", items, (a[1], a[4], a[4], a[8]), fees, sender=a[4], value=4 * ETH
    )
    items = (multi.address, True, [50], [4])
    ct.call(
        w3,
        v2,
        "executeTakerAsk",
        items,
        (a[1], a[3], a[3], a[8]),
        token.address,
        [ETH, 0, ETH // 50],
        sender=a[1],
    )
    return nft, multi, token, v2


SALES_SQL = (
    "SELECT contract, token_id, seller, buyer, price_wei, currency, fees_wei, royalty_wei,"
    " bundle_size, marketplace FROM sales ORDER BY block_number, log_index, batch_index"
)


def test_backfill_and_reorg_on_anvil(anvil: Anvil, sessions) -> None:
    rpc = Rpc(anvil.url)
    w3 = ct.connect(anvil.url)
    a = [x.lower() for x in w3.eth.accounts]
    nft, multi, token, v2 = _fills(w3, w3.eth.accounts)
    watched = [nft.address, multi.address]
    follower = Follower(rpc, sessions, CHAIN, watched, start_block=0)
    follower.poll_once()
    n, m, t = nft.address.lower(), multi.address.lower(), token.address.lower()
    expected = [
        (n, 1, a[1], a[2], 2 * ETH, t, ETH // 10, ETH // 10, 1, "looksrare"),
        (n, 1, a[2], a[3], 3 * ETH, t, 0, 0, 1, "looksrare"),
        (n, 2, a[1], a[4], 2 * ETH, "ETH", ETH // 2, ETH // 4, 2, "looksrare"),
        (n, 3, a[1], a[4], 2 * ETH, "ETH", ETH // 2, ETH // 4, 2, "looksrare"),
        (m, 50, a[1], a[3], ETH + ETH // 50, t, ETH // 50, 0, 1, "looksrare"),
    ]
    got = rows(sessions, SALES_SQL)
    assert [
        (r[0], int(r[1]), r[2], r[3], int(r[4]), r[5], int(r[6]), int(r[7]), r[8], r[9])
        for r in got
    ] == expected

    # the last two fills (v2) are orphaned by a reorg, then mined again on the new branch
    anvil_call(anvil.url, "anvil_reorg", [2, []])
    follower.poll_once()
    assert len(rows(sessions, "SELECT 1 FROM sales")) == 2
    items = (nft.address, False, [2, 3], [1, 1])
    acct = w3.eth.accounts
    parties = (acct[1], acct[4], acct[4], acct[8])
    fees = [ETH * 3, ETH // 2, ETH // 2]
    ct.call(w3, v2, "executeTakerBid", items, parties, fees, sender=acct[4], value=4 * ETH)
    follower.poll_once()
    live = dump(sessions)
    assert len(live["sales"]) == 4
    truncate(sessions)
    backfill(rpc, sessions, CHAIN, 0, rpc.get_block_number(), watched)
    assert dump(sessions) == live
    rpc.close()


@pytest.mark.parametrize("bad", ["0x", "0x" + "00" * 64])
def test_short_data_is_not_a_sale(bad: str) -> None:
    log = {
        "address": looksrare.PROTOCOL_V2,
        "topics": [looksrare.TAKER_BID_V2],
        "data": bad,
        "blockNumber": "0x1",
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + "cd" * 32,
        "logIndex": "0x0",
    }
    out = decode_logs([log], chain_id=1)
    assert out.sales == [] and out.skipped == 1
