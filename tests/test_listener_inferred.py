"""Sales without a marketplace event, on anvil: an ETH payment straight to the holder, a WETH
payment, a paid mint; free mints, gifts and decoded market sales get no inferred row; the
follower finds the same as a backfill; "all" mode infers nothing."""

from __future__ import annotations

from typing import Any

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


def sales(factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with factory() as s:
        return [
            tuple(r)
            for r in s.execute(
                text(
                    "SELECT tx_hash, token_id, seller, buyer, price_wei, currency, marketplace,"
                    " inferred FROM sales ORDER BY block_number, log_index, batch_index"
                )
            ).all()
        ]


def test_sales_inferred_from_the_transaction(anvil: Anvil, sessions) -> None:
    w3 = ct.connect(anvil.url)
    acct = w3.eth.accounts
    a = [x.lower() for x in acct]
    nft = ct.deploy(w3, "DemoNFT", "Infer", "INF")
    weth = ct.deploy(w3, "DemoToken", "Wrapped Ether", "WETH", 10**24)
    market = ct.deploy(w3, "DemoMarket", acct[9])
    ct.call(w3, weth, "transfer", acct[4], 10 * ETH)

    def tx(receipt: dict[str, Any]) -> str:
        return "0x" + receipt["transactionHash"].hex().removeprefix("0x")

    paid_mint = ct.call(w3, nft, "mintPaid", 1, sender=acct[1], value=ETH // 20)
    ct.mint(w3, nft, acct[2], 2)  # free mint by the owner: no sale
    ct.call(w3, nft, "ask", 2, ETH, sender=acct[2])
    eth_sale = ct.call(w3, nft, "buyFrom", acct[2], 2, sender=acct[3], value=ETH)
    ct.call(w3, nft, "ask", 2, 3 * ETH // 10, sender=acct[3])
    ct.call(w3, weth, "approve", nft.address, 3 * ETH // 10, sender=acct[4])
    weth_sale = ct.call(w3, nft, "buyWithToken", acct[3], 2, weth.address, sender=acct[4])
    ct.transfer(w3, nft, acct[4], acct[5], 2)  # a gift: no sale
    ct.call(w3, weth, "transfer", acct[1], ETH)  # WETH moving without an NFT: no sale
    market_sale = ct.sell(w3, market, nft, acct[1], acct[6], 1, 2 * ETH)  # decoded, not inferred
    head = w3.eth.block_number

    expected = [
        (tx(paid_mint), 1, ZERO, a[1], ETH // 20, "ETH", "mint", True),
        (tx(eth_sale), 2, a[2], a[3], ETH, "ETH", "inferred", True),
        (tx(weth_sale), 2, a[3], a[4], 3 * ETH // 10, "WETH", "inferred", True),
        (tx(market_sale), 1, a[1], a[6], 2 * ETH, "ETH", "seaport", False),
    ]
    watched = [nft.address]
    wrapped = frozenset({weth.address})
    with Rpc(anvil.url) as rpc:
        backfill(rpc, sessions, CHAIN, 0, head, watched, weth_contracts=wrapped)
        assert sales(sessions) == expected
        # a replay adds nothing
        backfill(rpc, sessions, CHAIN, 0, head, watched, weth_contracts=wrapped, checkpoint="b")
        assert sales(sessions) == expected
        with sessions() as s:
            last = s.execute(
                text("SELECT last_sale_wei, sale_count FROM tokens WHERE token_id = 2")
            ).one()
        assert tuple(last) == (3 * ETH // 10, 2)

        # the live follower infers the same
        truncate(sessions)
        follower = Follower(rpc, sessions, CHAIN, watched, start_block=0, weth_contracts=wrapped)
        while follower.poll_once():
            pass
        assert sales(sessions) == expected

        # "all" mode looks nothing up: only the marketplace's sale
        truncate(sessions)
        backfill(rpc, sessions, CHAIN, 0, head, None, weth_contracts=wrapped)
        assert sales(sessions) == expected[-1:]
