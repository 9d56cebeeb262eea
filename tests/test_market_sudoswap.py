"""Sudoswap v1/v2 pair swaps: the decoder joins logs built from the published ABI to the same
transaction's NFT and payment-token transfers, and a backfill of our pairs' swaps on anvil
records the sales (per-item prices, currencies, fees, bundles; v1 ETH swaps unpriced); a reorg
drops and restores them."""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_hash.auto import keccak
from web3 import Web3

from listeners.backfill import backfill
from listeners.decode import TRANSFER, decode_logs
from listeners.follower import Follower
from listeners.markets import sudoswap
from listeners.rpc import Rpc
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.db import truncate
from tests.test_listener_anvil import anvil_call, dump, rows

CHAIN = 31337
ETH = 10**18
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"

A = ["0x" + f"{i:040x}" for i in range(1, 10)]
PAIR = "0x" + "5a" * 20
COLL = "0x" + "77" * 20
FACTORY = sudoswap.FACTORY_V1


def _sig(signature: str) -> str:
    return "0x" + keccak(signature.encode()).hex()


def _pad(address: str) -> str:
    return "0x" + "0" * 24 + address[2:]


def _log(address: str, topics: list[str], data: bytes, index: int, tx: str = "cd") -> dict:
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + data.hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + tx * 32,
        "logIndex": hex(index),
    }


def _nft_move(frm: str, to: str, token_id: int, index: int, tx: str = "cd") -> dict:
    topics = [TRANSFER, _pad(frm), _pad(to), "0x" + f"{token_id:064x}"]
    return _log(COLL, topics, b"", index, tx)


def _weth(frm: str, to: str, amount: int, index: int, tx: str = "cd") -> dict:
    return _log(WETH, [TRANSFER, _pad(frm), _pad(to)], encode(["uint256"], [amount]), index, tx)


def test_topics_are_the_published_signatures() -> None:
    assert sudoswap.SWAP_NFT_IN_V1 == (
        "0x3614eb567740a0ee3897c0e2b11ad6a5720d2e4438f9c8accf6c95c24af3a470"
    )
    assert sudoswap.SWAP_NFT_OUT_V1 == (
        "0xbc479dfc6cb9c1a9d880f987ee4b30fa43dd7f06aec121db685b67d587c93c93"
    )
    assert sudoswap.SWAP_NFT_IN_V2 == (
        "0x7a0e7e58d91fd23a96b0008604db1b2d1cee4aae434e3aad9a20fdd7c0995f89"
    )
    assert sudoswap.SWAP_NFT_OUT_V2 == (
        "0xa13c46268c53408442d94eb370f2e476cb7f0fbe027ae5bad73ce13d4469c8b9"
    )
    abi = ct.compile_contracts()["SudoswapPair"].abi
    events = {
        (_sig(f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"), len(e["inputs"]))
        for e in abi
        if e["type"] == "event"
    }
    assert events == {
        (sudoswap.SWAP_NFT_IN_V1, 0),
        (sudoswap.SWAP_NFT_OUT_V1, 0),
        (sudoswap.SWAP_NFT_IN_V2, 2),
        (sudoswap.SWAP_NFT_OUT_V2, 2),
    }
    assert all(not i["indexed"] for e in abi if e["type"] == "event" for i in e["inputs"])


def test_v2_from_the_abi_prices_from_the_event() -> None:
    out_event = _sig("SwapNFTOutPair(uint256,uint256[])")
    in_event = _sig("SwapNFTInPair(uint256,uint256[])")
    logs = [
        _nft_move(PAIR, A[1], 4, 1),
        _nft_move(PAIR, A[1], 5, 2),
        _log(PAIR, [out_event], encode(["uint256", "uint256[]"], [3 * ETH, [4, 5]]), 3),
        _nft_move(A[2], PAIR, 6, 4),
        _log(PAIR, [in_event], encode(["uint256", "uint256[]"], [ETH, [6]]), 5),
    ]
    sales = decode_logs(logs, chain_id=1).sales
    got = [(s.token_id, s.seller, s.buyer, s.price_wei, s.currency, s.bundle_size) for s in sales]
    assert got == [
        (4, PAIR, A[1], 3 * ETH // 2, "ETH", 2),
        (5, PAIR, A[1], 3 * ETH // 2, "ETH", 2),
        (6, A[2], PAIR, ETH, "ETH", 1),
    ]
    # an id the event names but no transfer moved is not invented
    lone = [_log(PAIR, [in_event], encode(["uint256", "uint256[]"], [ETH, [9]]), 5)]
    assert decode_logs(lone, chain_id=1).sales == []


def test_v1_from_the_logs_of_its_transaction() -> None:
    out_event, in_event = _sig("SwapNFTOutPair()"), _sig("SwapNFTInPair()")
    logs = [
        # a WETH pair sells two NFTs: the buyer pays the pair and the protocol fee
        _weth(A[1], PAIR, 2 * ETH, 1),
        _weth(A[1], FACTORY, ETH // 100, 2),
        _nft_move(PAIR, A[1], 4, 3),
        _nft_move(PAIR, A[1], 5, 4),
        _log(PAIR, [out_event], b"", 5),
        # then buys one in the same transaction: it pays the seller and the fee
        _weth(PAIR, A[2], ETH, 6),
        _weth(PAIR, FACTORY, ETH // 200, 7),
        _nft_move(A[2], PAIR, 6, 8),
        _log(PAIR, [in_event], b"", 9),
        # an ETH pair's swap in another transaction: no payment in any log
        _nft_move(PAIR, A[3], 7, 1, tx="ee"),
        _log(PAIR, [out_event], b"", 2, tx="ee"),
    ]
    sales = decode_logs(logs, chain_id=1).sales
    got = [
        (s.token_id, s.seller, s.buyer, s.price_wei, s.currency, s.fees_wei, s.bundle_size)
        for s in sales
    ]
    per = (2 * ETH + ETH // 100) // 2
    assert got == [
        (4, PAIR, A[1], per, "WETH", ETH // 200, 2),
        (5, PAIR, A[1], per, "WETH", ETH // 200, 2),
        (6, A[2], PAIR, ETH + ETH // 200, "WETH", ETH // 200, 1),
    ]


def _set_weth(w3: Any, url: str, balances: dict[str, int]) -> Any:
    """A real ERC-20 (our DemoToken's code) at the WETH address, with ``balances``."""
    demo = ct.deploy(w3, "DemoToken", "W", "W", 1)
    anvil_call(url, "anvil_setCode", [WETH, w3.eth.get_code(demo.address).hex()])
    for holder, amount in balances.items():
        slot = keccak(bytes.fromhex(_pad(holder.lower())[2:] + "00" * 32))  # _balances: slot 0
        anvil_call(url, "anvil_setStorageAt", [WETH, "0x" + slot.hex(), f"0x{amount:064x}"])
    return ct.at(w3, "DemoToken", WETH)


def _swaps(w3: Any, url: str, acct: list[str]) -> tuple[Any, Any, Any, Any]:
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    fee_to = acct[9]
    v2 = ct.deploy(w3, "SudoswapPair", nft.address, ct.ZERO_ADDRESS, fee_to, True)
    v1 = ct.deploy(w3, "SudoswapPair", nft.address, Web3.to_checksum_address(WETH), fee_to, False)
    v1_eth = ct.deploy(w3, "SudoswapPair", nft.address, ct.ZERO_ADDRESS, fee_to, False)
    weth = _set_weth(w3, url, {acct[3]: 10 * ETH, v1.address: 10 * ETH})
    w3.eth.send_transaction({"from": acct[0], "to": v2.address, "value": 5 * ETH})
    for i in (10, 11):
        ct.mint(w3, nft, v2.address, i)
    ct.mint(w3, nft, v1.address, 12)
    ct.mint(w3, nft, v1_eth.address, 13)
    for i in (1, 2, 3):
        ct.mint(w3, nft, acct[1], i)
    for pair in (v1, v2):
        ct.call(w3, nft, "setApprovalForAll", pair.address, True, sender=acct[1])
    ct.call(w3, weth, "approve", v1.address, 10 * ETH, sender=acct[3])
    # v2 ETH pair: a2 buys 10 and 11 for 2 ETH; a1 sells 1 for 0.5 ETH
    ct.call(
        w3,
        v2,
        "swapTokenForSpecificNFTs",
        [10, 11],
        2 * ETH,
        ETH // 100,
        sender=acct[2],
        value=2 * ETH,
    )
    ct.call(w3, v2, "swapNFTsForToken", [1], ETH // 2, ETH // 400, sender=acct[1])
    # v1 WETH pair: a3 buys 12 for 1 WETH (fee included); a1 sells 2 and 3 for 2 WETH + fee
    ct.call(w3, v1, "swapTokenForSpecificNFTs", [12], ETH, ETH // 200, sender=acct[3])
    ct.call(w3, v1, "swapNFTsForToken", [2, 3], 2 * ETH, ETH // 100, sender=acct[1])
    # v1 ETH pair: a4 buys 13; the price is in no log
    ct.call(w3, v1_eth, "swapTokenForSpecificNFTs", [13], ETH, 0, sender=acct[4], value=ETH)
    return nft, v2, v1, v1_eth


SALES_SQL = (
    "SELECT token_id, seller, buyer, price_wei, currency, fees_wei, bundle_size FROM sales"
    " WHERE marketplace = 'sudoswap' ORDER BY block_number, log_index, batch_index"
)


def test_backfill_and_reorg_on_anvil(anvil: Anvil, sessions) -> None:
    rpc = Rpc(anvil.url)
    w3 = ct.connect(anvil.url)
    acct = w3.eth.accounts
    a = [x.lower() for x in acct]
    nft, v2, v1, _eth_pair = _swaps(w3, anvil.url, acct)
    p2, p1 = v2.address.lower(), v1.address.lower()
    follower = Follower(rpc, sessions, CHAIN, [nft.address], start_block=0)
    follower.poll_once()
    got = [
        (int(r[0]), r[1], r[2], int(r[3]), r[4], int(r[5]), r[6]) for r in rows(sessions, SALES_SQL)
    ]
    assert got == [
        (10, p2, a[2], ETH, "ETH", 0, 2),
        (11, p2, a[2], ETH, "ETH", 0, 2),
        (1, a[1], p2, ETH // 2, "ETH", 0, 1),
        (12, p1, a[3], ETH, "WETH", ETH // 200, 1),
        (2, a[1], p1, ETH + ETH // 200, "WETH", ETH // 200, 2),
        (3, a[1], p1, ETH + ETH // 200, "WETH", ETH // 200, 2),
    ]
    # the ETH pair's v1 swap is no Sudoswap sale (its price is in no log)
    assert (
        rows(sessions, "SELECT 1 FROM sales WHERE token_id = 13 AND marketplace = 'sudoswap'") == []
    )
    # the price in ether is computed for the ETH and WETH sales alike
    assert rows(
        sessions,
        "SELECT count(*) FROM sales WHERE marketplace = 'sudoswap' AND price_eth_wei IS NULL",
    ) == [(0,)]

    # orphan the last three blocks (both v1 WETH swaps and the ETH one), then swap again
    anvil_call(anvil.url, "anvil_reorg", [3, []])
    follower.poll_once()
    assert len(rows(sessions, SALES_SQL)) == 3
    ct.call(w3, v1, "swapTokenForSpecificNFTs", [12], 2 * ETH, 0, sender=acct[3])
    follower.poll_once()
    live = dump(sessions)
    assert rows(sessions, "SELECT price_wei FROM sales WHERE token_id = 12") == [(2 * ETH,)]
    truncate(sessions)
    backfill(rpc, sessions, CHAIN, 0, rpc.get_block_number(), [nft.address])
    assert dump(sessions) == live
    rpc.close()
