"""X2Y2 ``EvInventory``: the decoder reads logs built from the published ABI (the NFTs inside
``item.data``, the settle op, the fees), and a backfill of our emitter's settlements on anvil
records the sales; a reorg drops and restores them."""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_hash.auto import keccak

from listeners.backfill import backfill
from listeners.decode import decode_logs
from listeners.follower import Follower
from listeners.markets import x2y2
from listeners.rpc import Rpc
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.db import truncate
from tests.test_listener_anvil import anvil_call, dump, rows

CHAIN = 31337
ETH = 10**18
ZERO = "0x" + "00" * 20

# The published event (X2Y2_r1 / its Market library): itemHash indexed, the rest in the data.
ITEM = "(uint256,bytes)"
DETAIL = (
    "(uint8,uint256,uint256,uint256,bytes32,address,bytes,uint256,uint256,uint256,"
    "(uint256,address)[])"
)
DATA_TYPES = [
    "address",
    "address",
    "uint256",
    "uint256",
    "uint256",
    "uint256",
    "uint256",
    "address",
    "bytes",
    ITEM,
    DETAIL,
]
SIGNATURE = "EvInventory(bytes32," + ",".join(DATA_TYPES) + ")"
PAIRS_721 = "(address,uint256)[]"
PAIRS_1155 = "(address,uint256,uint256)[]"

A = ["0x" + f"{i:040x}" for i in range(1, 10)]
COLL = "0x" + "77" * 20


def _log(
    op: int,
    intent: int,
    delegate: int,
    currency: str,
    data: bytes,
    price: int,
    fees: list,
    mask: bytes = b"",
    replacement: bytes = b"",
) -> dict:
    detail = (op, 0, 0, price, b"\x05" * 32, A[8], replacement, 0, 0, 0, fees)
    values = [A[0], A[1], 1, 2, intent, delegate, 10**10, currency, mask, (price, data), detail]
    return {
        "address": x2y2.EXCHANGE,
        "topics": ["0x" + keccak(SIGNATURE.encode()).hex(), "0x" + "05" * 32],
        "data": "0x" + encode(DATA_TYPES, values).hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + "cd" * 32,
        "logIndex": "0x2",
    }


def test_topic_is_the_published_signature() -> None:
    assert x2y2.EV_INVENTORY == "0x3cbb63f144840e5b1b0a38a7c19211d2e89de4d7c5faf8b2d3c1776c302d1d33"
    assert "0x" + keccak(SIGNATURE.encode()).hex() == x2y2.EV_INVENTORY
    abi = ct.compile_contracts()["X2Y2Emitter"].abi
    (event,) = [e for e in abi if e["type"] == "event"]
    assert [i["indexed"] for i in event["inputs"]] == [True] + [False] * 11


def test_from_the_abi_sell_offer_bundle_with_fees() -> None:
    data = encode([PAIRS_721], [[(COLL, 3), (COLL, 4)]])
    fees = [(20_000, A[6]), (5_000, A[7])]  # 2% and 0.5% of the price
    out = decode_logs([_log(1, 1, 1, ZERO, data, 4 * ETH, fees)], chain_id=1)
    got = [
        (
            s.contract,
            s.token_id,
            s.seller,
            s.buyer,
            s.price_wei,
            s.currency,
            s.fees_wei,
            s.bundle_size,
        )
        for s in out.sales
    ]
    fee = 4 * ETH * 25_000 // 10**6 // 2
    assert got == [
        (COLL, 3, A[0], A[1], 2 * ETH, "ETH", fee, 2),
        (COLL, 4, A[0], A[1], 2 * ETH, "ETH", fee, 2),
    ]


def test_from_the_abi_buy_offer_erc1155_and_non_sales() -> None:
    weth = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    data = encode([PAIRS_1155], [[(COLL, 9, 5)]])
    out = decode_logs([_log(2, 3, 2, weth, data, ETH, [])], chain_id=1)
    assert [(s.token_id, s.seller, s.buyer, s.price_wei, s.currency) for s in out.sales] == [
        (9, A[1], A[0], ETH, "WETH")  # an accepted offer: the taker sold to the maker
    ]
    # a collection offer: the id comes from the replacement where the mask is set
    offer = encode([PAIRS_1155], [[(COLL, 0, 5)]])
    mask = bytes(96) + b"\xff" * 32 + bytes(len(offer) - 128)
    masked = _log(2, 3, 2, weth, offer, ETH, [], mask, data)
    assert [s.token_id for s in decode_logs([masked], chain_id=1).sales] == [9]
    # cancel (3), bid (4), auction completion (5: its price is not in the event): no sale
    for op in (3, 4, 5):
        assert decode_logs([_log(op, 2, 1, ZERO, data, ETH, [])], chain_id=1).sales == []
    # an unknown delegate type names no NFT we can read
    unknown = decode_logs([_log(1, 1, 7, ZERO, data, ETH, [])], chain_id=1)
    assert unknown.sales == [] and unknown.skipped == 1


def _settle(w3: Any, a: list[str]) -> tuple[Any, Any, Any, Any]:
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    multi = ct.deploy(w3, "DemoMulti", "ipfs://m/{id}")
    token = ct.deploy(w3, "DemoToken", "Wrapped", "WX", 10**24)
    ex = ct.deploy(w3, "X2Y2Emitter")
    for i in (1, 2, 3):
        ct.mint(w3, nft, a[1], i)
    ct.call(w3, multi, "mint", a[2], 50, 4)
    ct.call(w3, nft, "setApprovalForAll", ex.address, True, sender=a[1])
    ct.call(w3, multi, "setApprovalForAll", ex.address, True, sender=a[2])
    ct.call(w3, token, "transfer", a[3], 100 * ETH)
    ct.call(w3, token, "approve", ex.address, 100 * ETH, sender=a[3])
    fees = [(20_000, a[8]), (5_000, a[9])]
    # a2 buys a1's listing of tokens 1 and 2 for 4 ETH
    data = encode([PAIRS_721], [[(nft.address, 1), (nft.address, 2)]])
    order = (a[1], 1, ZERO, data, b"", b"", 4 * ETH)
    ct.call(w3, ex, "buy", order, fees, sender=a[2], value=4 * ETH)
    # a2 sells 2 units of id 50 into a3's collection offer (id masked), paid in the ERC-20
    offer = encode([PAIRS_1155], [[(multi.address, 0, 2)]])
    filled = encode([PAIRS_1155], [[(multi.address, 50, 2)]])
    mask = bytes(96) + b"\xff" * 32 + bytes(len(offer) - 128)
    order = (a[3], 2, token.address, offer, mask, filled, 3 * ETH)
    ct.call(w3, ex, "sell", order, fees[:1], sender=a[2])
    # a cancelled listing of token 3: the same event, no sale
    data = encode([PAIRS_721], [[(nft.address, 3)]])
    ct.call(w3, ex, "cancel", (a[1], 1, ZERO, data, b"", b"", ETH), [], sender=a[1])
    return nft, multi, token, ex


SALES_SQL = (
    "SELECT contract, token_id, seller, buyer, price_wei, currency, fees_wei, bundle_size,"
    " marketplace FROM sales ORDER BY block_number, log_index, batch_index"
)


def test_backfill_and_reorg_on_anvil(anvil: Anvil, sessions) -> None:
    rpc = Rpc(anvil.url)
    w3 = ct.connect(anvil.url)
    acct = w3.eth.accounts
    a = [x.lower() for x in acct]
    nft, multi, token, ex = _settle(w3, acct)
    watched = [nft.address, multi.address]
    follower = Follower(rpc, sessions, CHAIN, watched, start_block=0)
    follower.poll_once()
    n, m, t = nft.address.lower(), multi.address.lower(), token.address.lower()
    fee = 4 * ETH * 25_000 // 10**6 // 2
    expected = [
        (n, 1, a[1], a[2], 2 * ETH, "ETH", fee, 2, "x2y2"),
        (n, 2, a[1], a[2], 2 * ETH, "ETH", fee, 2, "x2y2"),
        (m, 50, a[2], a[3], 3 * ETH, t, 3 * ETH * 20_000 // 10**6, 1, "x2y2"),
    ]
    got = [
        (r[0], int(r[1]), r[2], r[3], int(r[4]), r[5], int(r[6]), r[7], r[8])
        for r in rows(sessions, SALES_SQL)
    ]
    assert got == expected
    # three mints and the bundle's two moves
    assert len(rows(sessions, "SELECT 1 FROM transfers WHERE contract = :c", c=n)) == 5

    # orphan the last two blocks (the ERC-1155 sale and the cancel), then sell again
    anvil_call(anvil.url, "anvil_reorg", [2, []])
    follower.poll_once()
    assert len(rows(sessions, "SELECT 1 FROM sales")) == 2
    offer = encode([PAIRS_1155], [[(multi.address, 50, 1)]])
    order = (acct[3], 2, token.address, offer, b"", b"", ETH)
    ct.call(w3, ex, "sell", order, [], sender=acct[2])
    follower.poll_once()
    live = dump(sessions)
    last = rows(
        sessions, "SELECT token_id, price_wei FROM sales ORDER BY block_number DESC LIMIT 1"
    )
    assert [(int(i), int(p)) for i, p in last] == [(50, ETH)]
    truncate(sessions)
    backfill(rpc, sessions, CHAIN, 0, rpc.get_block_number(), watched)
    assert dump(sessions) == live
    rpc.close()
