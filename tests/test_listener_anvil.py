"""The chain listener end to end on anvil with our own contracts: every event kind lands in
Postgres once, derived token rows are right, a replay changes nothing, and after reorgs the
database equals a fresh backfill of the canonical chain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from listeners.backfill import backfill
from listeners.follower import Follower
from listeners.rpc import Rpc
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.db import truncate

CHAIN = 31337
ETH = 10**18
ZERO = "0x" + "0" * 40


@pytest.fixture
def rpc(anvil: Anvil) -> Iterator[Rpc]:
    client = Rpc(anvil.url)
    yield client
    client.close()


def rows(factory: sessionmaker[Session], sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with factory() as s:
        return [tuple(r) for r in s.execute(text(sql), params).all()]


def dump(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every chain-derived row, in a stable order (timestamps of writes left out)."""
    return {
        "transfers": rows(factory, "SELECT * FROM transfers ORDER BY 1,2,3,4,5,6"),
        "sales": rows(factory, "SELECT * FROM sales ORDER BY 1,2,3,4,5,6"),
        "listings": rows(factory, "SELECT * FROM listings ORDER BY 1,2,3,4,5"),
        "tokens": rows(
            factory,
            "SELECT chain_id, contract, token_id, owner, minted_block, transfer_count, sale_count,"
            " last_sale_wei, last_sale_at FROM tokens ORDER BY 1,2,3",
        ),
        "balances": rows(factory, "SELECT * FROM balances ORDER BY 1,2,3,4"),
        "event_blocks": rows(
            factory,
            "SELECT number, hash, parent_hash FROM blocks WHERE hash IN "
            "(SELECT block_hash FROM transfers UNION SELECT block_hash FROM sales "
            " UNION SELECT block_hash FROM listings) ORDER BY 1",
        ),
    }


def token(factory: sessionmaker[Session], contract: str, token_id: int) -> dict[str, Any]:
    with factory() as s:
        r = (
            s.execute(
                text("SELECT * FROM tokens WHERE contract = :c AND token_id = :t"),
                {"c": contract.lower(), "t": token_id},
            )
            .mappings()
            .one()
        )
    return dict(r)


def anvil_call(url: str, method: str, params: list[Any]) -> Any:
    body = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    payload = body.json()
    assert "error" not in payload, payload
    return payload["result"]


def test_erc721_mint_transfer_burn_and_erc20_noise(anvil: Anvil, rpc: Rpc, sessions) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    erc20 = ct.deploy(w3, "DemoToken", "Noise", "NZ", 10**24)
    ct.mint(w3, nft, a[1], 1)
    ct.mint(w3, nft, a[1], 2)
    ct.transfer(w3, nft, a[1], a[2], 1)
    ct.transfer(w3, nft, a[2], a[3], 1)
    ct.burn(w3, nft, a[1], 2)
    big = 2**256 - 1
    ct.mint_batch(w3, nft, a[4], [7, big])
    ct.call(w3, erc20, "transfer", a[1], 5 * ETH)
    ct.call(w3, erc20, "transfer", a[2], 1)  # value 1 must not look like a token id

    head = rpc.get_block_number()
    # "all" mode: no address filter, the ERC-20 Transfer logs come back and must be dropped
    stats = backfill(rpc, sessions, CHAIN, 0, head, None)
    assert stats.logs == 10 and stats.transfers == 7  # 3 ERC-20 logs dropped
    contract = nft.address.lower()
    assert rows(sessions, "SELECT DISTINCT contract FROM transfers") == [(contract,)]

    t1 = token(sessions, contract, 1)
    assert t1["owner"] == a[3].lower() and t1["transfer_count"] == 2 and t1["minted_block"] > 0
    t2 = token(sessions, contract, 2)
    assert t2["owner"] == ZERO and t2["transfer_count"] == 1  # the burn counts as a transfer
    assert rows(
        sessions,
        "SELECT from_address, to_address, is_mint FROM transfers WHERE token_id = 2 "
        "ORDER BY block_number",
    ) == [(ZERO, a[1].lower(), True), (a[1].lower(), ZERO, False)]
    tbig = token(sessions, contract, big)
    assert int(tbig["token_id"]) == big and tbig["owner"] == a[4].lower()

    # one resolve outbox row per token, with the agreed payload and dedupe key
    out = rows(sessions, "SELECT task, queue, payload, dedupe_key FROM outbox ORDER BY id")
    assert len(out) == 4
    task, queue, payload, key = out[-1]
    assert (task, queue) == ("resolve", "resolve")
    assert payload["chain_id"] == CHAIN and payload["contract"] == contract
    assert payload["token_id"] == str(big) and isinstance(payload["block_number"], int)
    assert key == f"resolve:{CHAIN}:{contract}:{big}"


def test_replay_changes_nothing(anvil: Anvil, rpc: Rpc, sessions) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    market = ct.deploy(w3, "DemoMarket", a[9])
    for i in range(5):
        ct.mint(w3, nft, a[1], i)
    ct.sell(w3, market, nft, a[1], a[2], 3, ETH)
    ct.set_base_uri(w3, nft, "ipfs://bafy/")
    head = rpc.get_block_number()
    backfill(rpc, sessions, CHAIN, 0, head, [nft.address])
    first = dump(sessions)
    outbox = rows(sessions, "SELECT dedupe_key FROM outbox ORDER BY 1")
    # the same range again under another checkpoint: everything is re-read and re-recorded
    stats = backfill(rpc, sessions, CHAIN, 0, head, [nft.address], checkpoint="again")
    assert stats.transfers == 6 and stats.sales == 1  # 5 mints + the sold token moving
    assert dump(sessions) == first
    assert rows(sessions, "SELECT dedupe_key FROM outbox ORDER BY 1") == outbox
    # the original checkpoint says it is done: a resume scans nothing
    assert backfill(rpc, sessions, CHAIN, 0, head, [nft.address]).blocks == 0


def test_seaport_order_fulfilled_sale(anvil: Anvil, rpc: Rpc, sessions) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    market = ct.deploy(w3, "DemoMarket", a[9])
    erc20 = ct.deploy(w3, "DemoToken", "Ape", "APE", 10**24)
    ct.call(w3, erc20, "transfer", a[3], 100 * ETH)
    ct.mint(w3, nft, a[1], 42)
    ct.mint(w3, nft, a[1], 43)
    fee = ETH // 40
    ct.sell(w3, market, nft, a[1], a[2], 42, ETH, fee_wei=fee)
    ct.sell(w3, market, nft, a[2], a[3], 42, 2 * ETH)
    ct.list_for_sale(w3, market, nft, a[1], 43, 7 * ETH, currency=erc20.address)
    ct.buy(w3, market, nft, a[3], 43)
    head = rpc.get_block_number()
    # watching only the collection: the market's OrderFulfilled comes from the topic query
    backfill(rpc, sessions, CHAIN, 0, head, [nft.address])
    sales = rows(
        sessions,
        "SELECT token_id, seller, buyer, price_wei, currency, marketplace, inferred FROM sales "
        "ORDER BY block_number",
    )
    assert sales == [
        (42, a[1].lower(), a[2].lower(), ETH, "ETH", "seaport", False),
        (42, a[2].lower(), a[3].lower(), 2 * ETH, "ETH", "seaport", False),
        (43, a[1].lower(), a[3].lower(), 7 * ETH, erc20.address.lower(), "seaport", False),
    ]
    t = token(sessions, nft.address, 42)
    assert t["sale_count"] == 2 and t["last_sale_wei"] == 2 * ETH and t["owner"] == a[3].lower()
    assert t["transfer_count"] == 2 and t["last_sale_at"] is not None


def test_punk_market_events(anvil: Anvil, rpc: Rpc, sessions) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    punks = ct.deploy(w3, "PunkMarket", 100)
    ct.assign_punks(w3, punks, {0: a[1], 1: a[2], 2: a[3]})
    ct.call(w3, punks, "offerPunkForSale", 0, ETH // 2, sender=a[1])
    ct.call(w3, punks, "buyPunk", 0, sender=a[2], value=ETH // 2)
    ct.call(w3, punks, "enterBidForPunk", 1, sender=a[4], value=ETH // 4)
    ct.call(w3, punks, "enterBidForPunk", 1, sender=a[5], value=ETH // 3)
    ct.call(w3, punks, "acceptBidForPunk", 1, 0, sender=a[2])  # emits PunkBought(.., 0, .., 0x0)
    ct.call(w3, punks, "transferPunk", a[6], 0, sender=a[2])
    ct.call(w3, punks, "enterBidForPunk", 2, sender=a[4], value=ETH)
    ct.call(w3, punks, "withdrawBidForPunk", 2, sender=a[4])
    ct.call(w3, punks, "withdraw", sender=a[1])
    ct.call(w3, punks, "offerPunkForSale", 2, ETH * 2, sender=a[3])  # still open at the end
    head = rpc.get_block_number()
    backfill(rpc, sessions, CHAIN, 0, head, [punks.address])
    c = punks.address.lower()

    sales = rows(
        sessions,
        "SELECT token_id, seller, buyer, price_wei, marketplace, inferred FROM sales "
        "ORDER BY block_number",
    )
    assert sales == [
        (0, a[1].lower(), a[2].lower(), ETH // 2, "cryptopunks", False),
        # the zero buyer is fixed from the same tx's Transfer, the zero price from the bid
        (1, a[2].lower(), a[5].lower(), ETH // 3, "cryptopunks", True),
    ]
    moves = rows(
        sessions,
        "SELECT token_id, from_address, to_address, is_mint, standard FROM transfers "
        "ORDER BY block_number, log_index",
    )
    assert moves == [
        (0, ZERO, a[1].lower(), True, "cryptopunks"),
        (1, ZERO, a[2].lower(), True, "cryptopunks"),
        (2, ZERO, a[3].lower(), True, "cryptopunks"),
        (0, a[1].lower(), a[2].lower(), False, "cryptopunks"),
        (1, a[2].lower(), a[5].lower(), False, "cryptopunks"),
        (0, a[2].lower(), a[6].lower(), False, "cryptopunks"),
    ]
    assert token(sessions, c, 0)["owner"] == a[6].lower()
    assert token(sessions, c, 0)["transfer_count"] == 2
    assert token(sessions, c, 1)["owner"] == a[5].lower()
    kinds = rows(sessions, "SELECT token_id, kind, price_wei FROM listings ORDER BY block_number")
    assert kinds == [
        (0, "offered", ETH // 2),
        (0, "withdrawn", None),
        (1, "bid", ETH // 4),
        (1, "bid", ETH // 3),
        (2, "bid", ETH),
        (2, "bid_withdrawn", ETH),
        (2, "offered", ETH * 2),
    ]
    # the ERC-20-shaped Transfer(from, to, 1) never became a row of its own
    assert rows(sessions, "SELECT count(*) FROM transfers")[0][0] == 6
    # punk 0's offer was bought in the next block: only the offer still open is valued
    value = rows(sessions, "SELECT payload, dedupe_key FROM outbox WHERE task = 'value'")
    assert len(value) == 1
    assert value[0][0] == {
        "chain_id": CHAIN,
        "contract": c,
        "token_id": "2",
        "reason": "listing",
        "price_wei": str(ETH * 2),
    }
    assert value[0][1].startswith(f"value:{CHAIN}:0x")


def test_metadata_updates_erc1155_and_consecutive(anvil: Anvil, rpc: Rpc, sessions) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    ct.mint_batch(w3, nft, a[1], [1, 2, 3])
    ct.set_base_uri(w3, nft, "ipfs://bafydir/")
    ct.call(w3, nft, "refreshMetadata", 2)
    multi = ct.deploy(w3, "DemoMulti", "ipfs://multi/{id}")
    ct.call(w3, multi, "mintBatch", a[1], [5, 6], [10, 20])
    ct.call(w3, multi, "safeTransferFrom", a[1], a[2], 6, 7, b"", sender=a[1])
    ct.call(w3, multi, "announceURI", "ipfs://new/6", 6)
    cons = ct.deploy(w3, "DemoConsecutive", a[3], 25)
    huge = ct.deploy(w3, "DemoConsecutive", a[3], 30)
    head = rpc.get_block_number()
    addrs = [nft.address, multi.address, cons.address, huge.address]
    stats = backfill(rpc, sessions, CHAIN, 0, head, addrs, max_consecutive=25)
    assert stats.oversized_ranges == 1  # the 30-token range exceeds the cap and is not expanded

    refresh = rows(
        sessions,
        "SELECT payload->>'contract', payload->>'token_id' FROM outbox "
        "WHERE dedupe_key LIKE 'refresh:%' ORDER BY id",
    )
    n, m = nft.address.lower(), multi.address.lower()
    assert sorted(refresh) == sorted([(n, "1"), (n, "2"), (n, "3"), (n, "2"), (m, "6")])
    multi_rows = rows(
        sessions,
        "SELECT token_id, from_address, to_address, amount, batch_index, standard FROM transfers "
        "WHERE contract = :c ORDER BY block_number, batch_index",
        c=m,
    )
    assert multi_rows == [
        (5, ZERO, a[1].lower(), 10, 0, "erc1155"),
        (6, ZERO, a[1].lower(), 20, 1, "erc1155"),
        (6, a[1].lower(), a[2].lower(), 7, 0, "erc1155"),
    ]
    assert token(sessions, m, 6)["owner"] is None  # several holders: no single owner
    assert rows(
        sessions,
        "SELECT token_id, owner, amount FROM balances WHERE contract = :c ORDER BY 1, 2",
        c=m,
    ) == sorted([(5, a[1].lower(), 10), (6, a[1].lower(), 13), (6, a[2].lower(), 7)])
    c = cons.address.lower()
    assert rows(sessions, "SELECT count(*) FROM transfers WHERE contract = :c", c=c) == [(25,)]
    assert token(sessions, c, 24)["owner"] == a[3].lower()
    assert rows(
        sessions, "SELECT count(*) FROM transfers WHERE contract = :c", c=huge.address.lower()
    ) == [(0,)]


def _build_history(
    w3: Any, nft: Any, market: Any, punks: Any, multi: Any, a: list[str], tag: int
) -> None:
    ct.mint(w3, nft, a[1], 100 + tag)
    ct.transfer(w3, nft, a[1], a[2], 100 + tag)
    ct.sell(w3, market, nft, a[2], a[3], 100 + tag, ETH + tag)
    ct.call(w3, punks, "offerPunkForSale", tag % 3, ETH, sender=w3.eth.accounts[1 + tag % 3])
    # ERC-1155: a shared id and one per tag, then part of the shared one moves on
    ct.call(w3, multi, "mintBatch", a[1], [1, 10 + tag], [5, 3])
    ct.call(w3, multi, "safeTransferFrom", a[1], a[2], 1, 2 + tag, b"", sender=a[1])


@pytest.mark.parametrize("depth", [1, 3, 10])
def test_follower_reorg_equals_fresh_backfill(anvil: Anvil, rpc: Rpc, sessions, depth) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    market = ct.deploy(w3, "DemoMarket", a[9])
    punks = ct.deploy(w3, "PunkMarket", 10)
    multi = ct.deploy(w3, "DemoMulti", "ipfs://multi/{id}")
    ct.assign_punks(w3, punks, {0: a[1], 1: a[2], 2: a[3]})
    watched = [nft.address, punks.address, multi.address]
    follower = Follower(rpc, sessions, CHAIN, watched, start_block=0)
    _build_history(w3, nft, market, punks, multi, a, 0)
    assert follower.poll_once() == rpc.get_block_number() + 1
    _build_history(w3, nft, market, punks, multi, a, 1)
    follower.poll_once()
    orphan = rows(sessions, "SELECT count(*) FROM transfers")[0][0]
    assert rows(sessions, "SELECT count(*) FROM balances")[0][0] > 0  # ERC-1155 holdings

    # replace the last `depth` blocks: the old mint/transfer/sale of token 101 partly vanish,
    # a different mint lands on the new branch
    data = nft.functions.mint(a[5], 555)._encode_transaction_data()
    anvil_call(
        anvil.url, "anvil_reorg", [depth, [[{"from": a[0], "to": nft.address, "data": data}, 0]]]
    )
    ct.mint(w3, nft, a[6], 556)  # the new branch grows past the old head
    follower.poll_once()
    follower.poll_once()
    assert follower.stats.reorgs == 1 and follower.stats.deepest_reorg >= 1
    live = dump(sessions)
    assert live["transfers"] != [] and len(live["transfers"]) != orphan
    assert any(int(r[8]) == 555 for r in live["transfers"])

    truncate(sessions)
    backfill(rpc, sessions, CHAIN, 0, rpc.get_block_number(), watched)
    assert dump(sessions) == live


def test_two_consecutive_reorgs_equal_fresh_backfill(anvil: Anvil, rpc: Rpc, sessions) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    market = ct.deploy(w3, "DemoMarket", a[9])
    punks = ct.deploy(w3, "PunkMarket", 10)
    multi = ct.deploy(w3, "DemoMulti", "ipfs://multi/{id}")
    ct.assign_punks(w3, punks, {0: a[1], 1: a[2], 2: a[3]})
    watched = [nft.address, punks.address, multi.address]
    follower = Follower(rpc, sessions, CHAIN, watched, start_block=0)
    for tag in range(3):
        _build_history(w3, nft, market, punks, multi, a, tag)
    follower.poll_once()
    assert rows(sessions, "SELECT count(*) FROM balances")[0][0] > 0  # ERC-1155 holdings
    mint = nft.functions.mint

    # first reorg: 4 blocks replaced by one carrying a new mint; the follower catches up
    data = mint(a[5], 700)._encode_transaction_data()
    anvil_call(
        anvil.url, "anvil_reorg", [4, [[{"from": a[0], "to": nft.address, "data": data}, 0]]]
    )
    _build_history(w3, nft, market, punks, multi, a, 7)
    follower.poll_once()
    follower.poll_once()
    # second reorg right after, deeper than the blocks added since the first one
    data = mint(a[6], 701)._encode_transaction_data()
    anvil_call(
        anvil.url, "anvil_reorg", [6, [[{"from": a[0], "to": nft.address, "data": data}, 1]]]
    )
    ct.mint(w3, nft, a[7], 702)
    follower.poll_once()
    follower.poll_once()
    assert follower.stats.reorgs == 2
    live = dump(sessions)
    ids = {int(r[8]) for r in live["transfers"]}
    assert {701, 702} <= ids

    truncate(sessions)
    backfill(rpc, sessions, CHAIN, 0, rpc.get_block_number(), watched)
    assert dump(sessions) == live
