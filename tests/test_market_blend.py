"""Blur Blend: the decoder reads the published layouts (logs built with eth_abi from the verified
source's ABI), our emitter emits exactly them, loans on anvil land in the ``loans`` table in
the batch's transaction, a purchase out of a loan is one sale, and a reorg drops and restores
sales and loans so that the database equals a fresh backfill of the canonical chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from listeners.backfill import backfill
from listeners.decode import decode_logs
from listeners.follower import Follower
from listeners.markets import blend
from listeners.rpc import Rpc
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.blur import (
    AZUKI,
    BLEND,
    BLEND_ABI,
    BLUR_ABI,
    ETH,
    MAINNET_BORROWER,
    MAINNET_LENDER,
    MAINNET_LOGS,
    MAINNET_TX,
    abi_log,
    abi_type,
    fund,
    install_pool,
    order,
    rpc_call,
    shape,
    topic0,
)
from tests.support.db import truncate

CHAIN = 31337
NFT = "0x" + "11" * 20
LENDER, BORROWER, BUYER = ("0x" + h * 40 for h in ("a", "b", "c"))
FIXTURE = Path(__file__).parent / "fixtures" / "mainnet_17173049_17173050.json"


@pytest.fixture
def rpc(anvil: Anvil) -> Iterator[Rpc]:
    client = Rpc(anvil.url)
    yield client
    client.close()


def rows(factory: sessionmaker[Session], sql: str) -> list[tuple[Any, ...]]:
    with factory() as s:
        return [tuple(r) for r in s.execute(text(sql)).all()]


def _log(name: str, values: list[Any], index: int) -> dict:
    event = next(e for e in BLEND_ABI if e["name"] == name)
    types = [abi_type(p) for p in event["inputs"]]
    return {
        "address": "0x" + "99" * 20,
        "topics": [topic0(event)],  # nothing of Blend's is indexed
        "data": "0x" + encode(types, values).hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ee" * 32,
        "transactionHash": "0x" + "01" * 32,
        "logIndex": hex(index),
    }


def test_topics_and_layouts_are_the_published_ones() -> None:
    published = {e["name"]: topic0(e) for e in BLEND_ABI}
    assert published == {
        "LoanOfferTaken": blend.LOAN_OFFER_TAKEN,
        "Repay": blend.REPAY,
        "StartAuction": blend.START_AUCTION,
        "Refinance": blend.REFINANCE,
        "Seize": blend.SEIZE,
        "BuyLocked": blend.BUY_LOCKED,
    }
    assert blend.REPAY.startswith("0x2469cc9e")  # as mainnet's logs of 0x2946…a20b have it
    for topic in published.values():
        assert (topic, 1) in blend.MARKET.handlers
    ours = shape(ct.compile_contracts()["BlendEmitter"].abi)
    assert {k: ours[k] for k in published} == shape(BLEND_ABI)


def test_loan_events_from_published_layout() -> None:
    logs = [
        _log(
            "LoanOfferTaken",
            [b"\x01" * 32, 5, NFT, LENDER, BORROWER, 3 * ETH, 1200, 77, 9000],
            1,
        ),
        _log("StartAuction", [5, NFT], 2),
        _log("Refinance", [5, NFT, BUYER, 3 * ETH, 900, 9000], 3),
        _log("Seize", [5, NFT], 4),
        _log("Repay", [6, NFT], 5),
    ]
    out = decode_logs(logs)
    got = [
        (
            e.lien_id,
            e.kind,
            e.contract,
            e.token_id,
            e.lender,
            e.borrower,
            e.principal_wei,
            e.rate_bps,
            e.auction_duration,
        )
        for e in out.loans
    ]
    assert got == [
        (5, "taken", NFT, 77, LENDER, BORROWER, 3 * ETH, 1200, 9000),
        (5, "auction", NFT, None, None, None, None, None, None),
        (5, "refinanced", NFT, None, BUYER, None, 3 * ETH, 900, 9000),
        (5, "seized", NFT, None, None, None, None, None, None),
        (6, "repaid", NFT, None, None, None, None, None, None),
    ]
    assert {e.protocol for e in out.loans} == {"blend"} and out.sales == []


def test_buy_locked_is_one_sale_at_what_the_buyer_paid() -> None:
    log = _log("BuyLocked", [5, NFT, BUYER, BORROWER, 77], 3)
    out = decode_logs([log])
    assert [(s.seller, s.buyer, s.token_id, s.marketplace) for s in out.sales] == [
        (BORROWER, BUYER, 77, "blend")
    ]
    assert out.loans[0].kind == "bought" and out.loans[0].borrower == BORROWER


def test_buy_to_borrow_fill_is_bought_by_the_borrower() -> None:
    """Blend buys the listing for the borrower (it is the buy order's trader) and takes the
    token as collateral of the lien opened in the same transaction."""
    blend_at = "0x" + "99" * 20
    sell = order(LENDER, 1, NFT, 77, 4 * ETH, 1)
    buy = order(blend_at, 0, NFT, 77, 4 * ETH, 2)
    logs = [
        _log("LoanOfferTaken", [b"\x01" * 32, 5, NFT, BUYER, BORROWER, 3 * ETH, 1200, 77, 9], 1),
        abi_log(BLUR_ABI, "OrdersMatched", [LENDER, blend_at, sell, b"\0" * 32, buy, b"\0" * 32],
                address=blend_at, index=2),
    ]  # fmt: skip
    out = decode_logs(logs)
    assert [(s.seller, s.buyer, s.price_wei) for s in out.sales] == [(LENDER, BORROWER, 4 * ETH)]


def test_short_data_is_skipped() -> None:
    log = _log("Refinance", [5, NFT, BUYER, 3 * ETH, 900, 9000], 1)
    log["data"] = log["data"][: 2 + 64 * 3]
    out = decode_logs([log])
    assert out.loans == [] and out.skipped == 1


def test_real_repayment_through_a_blur_bid() -> None:
    """Mainnet: the Repay of lien 593 says only its id; the transaction's payments name the
    lender, the 14.71… ETH repaid, and the borrower."""
    out = decode_logs(MAINNET_LOGS, chain_id=1)
    assert len(out.loans) == 1
    loan = out.loans[0]
    assert (loan.kind, loan.lien_id, loan.contract, loan.tx_hash) == (
        "repaid",
        593,
        AZUKI,
        MAINNET_TX,
    )
    assert (loan.lender, loan.borrower) == (MAINNET_LENDER, MAINNET_BORROWER)
    assert loan.repaid_wei == 0xCC2A4999AB196C0C and loan.repaid_wei // 10**16 == 1471
    assert len(out.sales) == 1 and out.sales[0].seller != BLEND


def test_mainnet_blocks_fixture() -> None:
    data = json.loads(FIXTURE.read_text())
    out = decode_logs(data["logs"], chain_id=1)
    azuki = [s for s in out.sales if s.contract == AZUKI and s.token_id == 1527]
    assert len(azuki) == 1
    assert (azuki[0].price_wei, azuki[0].currency) == (16_300_000_000_000_000_000, "BLUR_POOL")
    assert (azuki[0].marketplace, azuki[0].seller) == ("blur", MAINNET_BORROWER)
    assert [s.marketplace for s in out.sales].count("blur") == 1
    repaid = [e for e in out.loans if e.tx_hash == MAINNET_TX]
    assert [(e.kind, e.lender, e.repaid_wei) for e in repaid] == [
        ("repaid", MAINNET_LENDER, 0xCC2A4999AB196C0C)
    ]


# --- anvil ----------------------------------------------------------------------------------------


def _dump(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "sales": rows(factory, "SELECT * FROM sales ORDER BY 1,2,3,4,5,6"),
        "loans": rows(factory, "SELECT * FROM loans ORDER BY 1,2,3,4,5"),
        "transfers": rows(factory, "SELECT * FROM transfers ORDER BY 1,2,3,4,5,6"),
        "tokens": rows(
            factory,
            "SELECT contract, token_id, owner, transfer_count, sale_count, last_sale_wei "
            "FROM tokens ORDER BY 1,2",
        ),
    }


class _Desk:
    """Our NFT, pool, exchange and Blend on anvil, and the accounts that use them."""

    def __init__(self, anvil: Anvil) -> None:
        self.w3 = w3 = ct.connect(anvil.url)
        self.a = a = w3.eth.accounts
        self.pool = install_pool(w3, anvil.url)
        self.nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
        self.exchange = ct.deploy(w3, "BlurEmitter", self.pool.address)
        self.blend = ct.deploy(w3, "BlendEmitter", self.pool.address)
        for who in (a[1], a[2], a[3], a[4]):
            fund(w3, self.pool, who, 50 * ETH, [self.blend.address, self.exchange.address])
            ct.call(w3, self.nft, "setApprovalForAll", self.blend.address, True, sender=who)

    def mint_and_borrow(self, token_id: int, amount: int) -> int:
        w3, a = self.w3, self.a
        ct.mint(w3, self.nft, a[1], token_id)
        lien = self.blend.functions.nextLienId().call()
        ct.call(w3, self.blend, "borrow", self.nft.address, token_id, a[2], amount, 1000, 500,
                sender=a[1])  # fmt: skip
        return int(lien)


def test_loans_on_anvil_are_recorded(anvil: Anvil, rpc: Rpc, sessions) -> None:
    desk = _Desk(anvil)
    w3, a, b = desk.w3, desk.a, desk.blend
    c = desk.nft.address
    first = desk.mint_and_borrow(1, 5 * ETH)
    ct.call(w3, b, "repay", first, sender=a[1])
    second = desk.mint_and_borrow(2, 4 * ETH)
    ct.call(w3, b, "startAuction", second, sender=a[2])
    ct.call(w3, b, "refinance", second, a[3], 800, sender=a[3])
    ct.call(w3, b, "seize", second, sender=a[3])
    third = desk.mint_and_borrow(3, 2 * ETH)
    ct.call(w3, b, "buyLocked", third, 6 * ETH, a[9], 100, sender=a[4])
    # a Blur bid taken on the collateral of a fourth loan: the exchange's fill is the sale
    fourth = desk.mint_and_borrow(4, ETH)
    sell = order(b.address, 1, c, 4, 3 * ETH, 20, payment_token=desk.pool.address)
    bid = order(a[4], 0, c, 4, 3 * ETH, 10, payment_token=desk.pool.address)
    ct.call(w3, b, "takeBid", fourth, desk.exchange.address, sell, bid, sender=a[1])

    backfill(rpc, sessions, CHAIN, 0, rpc.get_block_number(), [c])
    a1, a2, a3, a4 = (x.lower() for x in a[1:5])
    loans = rows(
        sessions,
        "SELECT lien_id, kind, token_id, lender, borrower, principal_wei, rate_bps, "
        "auction_duration, repaid_wei FROM loans ORDER BY block_number, log_index",
    )
    assert loans == [
        (first, "taken", 1, a2, a1, 5 * ETH, 1000, 500, None),
        (first, "repaid", None, a2, None, None, None, None, 5 * ETH),
        (second, "taken", 2, a2, a1, 4 * ETH, 1000, 500, None),
        (second, "auction", None, None, None, None, None, None, None),
        (second, "refinanced", None, a3, None, 4 * ETH, 800, 500, None),
        (second, "seized", None, None, None, None, None, None, None),
        (third, "taken", 3, a2, a1, 2 * ETH, 1000, 500, None),
        (third, "repaid", None, a2, None, None, None, None, 2 * ETH),
        (third, "bought", 3, a2, a1, None, None, None, 2 * ETH),
        (fourth, "taken", 4, a2, a1, ETH, 1000, 500, None),
        (fourth, "repaid", 4, a2, a1, None, None, None, ETH),  # the token Blend sold
    ]
    sales = rows(
        sessions,
        "SELECT token_id, seller, buyer, price_wei, currency, fees_wei, marketplace "
        "FROM sales ORDER BY block_number",
    )
    assert sales == [
        (3, a1, a4, 6 * ETH, "BLUR_POOL", 6 * ETH // 100, "blend"),
        # the bid taken on collateral: the exchange's fill, sold by the borrower (not Blend)
        (4, a1, a4, 3 * ETH, "BLUR_POOL", 0, "blur"),
    ]
    owners = rows(sessions, "SELECT token_id, owner, sale_count FROM tokens ORDER BY 1")
    assert owners == [(1, a1, 0), (2, a3, 0), (3, a4, 1), (4, a4, 1)]


@pytest.mark.parametrize("depth", [4, 6])
def test_reorg_drops_and_restores_sales_and_loans(
    anvil: Anvil, rpc: Rpc, sessions, depth: int
) -> None:
    desk = _Desk(anvil)
    w3, a, b = desk.w3, desk.a, desk.blend
    c = desk.nft.address
    follower = Follower(rpc, sessions, CHAIN, [c], start_block=0)
    first = desk.mint_and_borrow(1, 5 * ETH)  # two blocks: the mint, the loan
    follower.poll_once()
    # four blocks that a reorg of depth 4 orphans (6: the first loan too): a repayment, a
    # second loan and a purchase out of it
    ct.call(w3, b, "repay", first, sender=a[1])
    second = desk.mint_and_borrow(2, 2 * ETH)
    ct.call(w3, b, "buyLocked", second, 3 * ETH, a[9], 0, sender=a[4])
    follower.poll_once()
    before = _loans(sessions)
    assert [k for _, k, _ in before] == ["taken", "repaid", "taken", "repaid", "bought"]
    assert len(_dump(sessions)["sales"]) == 1

    # the last `depth` blocks replaced by a branch that mints token 9, which then grows past
    # the old head with a loan against it
    data = desk.nft.functions.mint(a[1], 9)._encode_transaction_data()
    fork = w3.eth.block_number - depth
    nonce = hex(w3.eth.get_transaction_count(a[0], block_identifier=fork))  # as of the fork
    tx = {"from": a[0], "to": c, "data": data, "nonce": nonce, "gas": hex(300_000)}
    rpc_call(anvil.url, "anvil_reorg", [depth, [[tx, 0]]])
    ct.call(w3, b, "borrow", c, 9, a[3], ETH, 700, 100, sender=a[1])
    follower.poll_once()
    follower.poll_once()
    assert follower.stats.reorgs == 1
    live = _dump(sessions)
    assert live["sales"] == []  # the purchase was on the orphaned branch
    kinds = [(token, kind) for _, kind, token in _loans(sessions)]
    expected = [(1, "taken")] if depth == 4 else []
    assert kinds == [*expected, (9, "taken")]

    truncate(sessions)
    backfill(rpc, sessions, CHAIN, 0, rpc.get_block_number(), [c])
    assert _dump(sessions) == live


def _loans(factory: sessionmaker[Session]) -> list[tuple[int, str, int | None]]:
    return [
        (int(lien), kind, None if token is None else int(token))
        for lien, kind, token in rows(
            factory, "SELECT lien_id, kind, token_id FROM loans ORDER BY block_number, log_index"
        )
    ]
