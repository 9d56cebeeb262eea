"""The market decoders on real mainnet logs, as a user runs them: the installed ``nftwatch``
console script in a subprocess backfills blocks 17173049–17173050 from a node on loopback that
replays the recorded logs (``tests/fixtures/mainnet_17173049_17173050.json``), into a throwaway
Postgres, and ``nftwatch export sales`` prints what was stored.

The expected values were read by hand from the logs:

- tx 0x42ace258…fc3c, Seaport 1.4 ``OrderFulfilled``: token #733 of 0x4e3f…27cf listed by
  0xaccc…db34 and bought by 0x31c0…2ed7 for 0.37 ETH (0.34225 to the seller, 0.00925 to
  OpenSea's fee recipient, 0.0185 to the creator).
- tx 0x63fd5742…9e90, Blur Exchange v1 ``OrdersMatched`` inside Blend: Azuki #1527, collateral
  of a Blend loan, sold to the bidder 0x63e0…46ee for 16.3 Blur Pool ETH, paid to Blend, which
  repaid the lender 0x020c…5872 14.7117 ETH (``Repay``) and passed the rest, 1.5883, to the
  borrower 0x14fa…d68a: the seller.

Nothing else in the two blocks is a marketplace sale: the other NFT events are mints (SeaDrop,
an ERC-1155 claim) and a plain transfer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.recorded_chain import RecordedChain, RecordedNode

NFTWATCH = str(Path(sys.executable).with_name("nftwatch"))
FIXTURE = Path(__file__).parent / "fixtures" / "mainnet_17173049_17173050.json"
FIRST, LAST = 17173049, 17173050
BLOCK_49 = "0xaa5ab9bb22d8020d438496a7edb4eff508b1c5128b0dc01fdecf57f96aac1bb3"
ETH = 10**18

SEAPORT_TX = "0x42ace258a44863bdbe83eb5dad6f999e5b6ab775b38529db5a3af4753970fc3c"
TOKEN_733 = "0x4e3f914246f55fc4f55ee2882bf70c72a8f427cf"
BLEND_TX = "0x63fd57422f2051d8307eca6fa1e2874759bef24549be34cc820a443efc5f9e90"
AZUKI = "0xed5af388653567af2f388e6224dc7c4b3241c544"
PLAIN_TRANSFER = "0x5078981549a1cc18673eb76fb47468f546aadc51"  # #3522, no market in its tx

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def node() -> Iterator[RecordedNode]:
    with RecordedNode(RecordedChain.load(FIXTURE)) as server:
        yield server


@pytest.fixture
def env(db_url: str, node: RecordedNode, tmp_path: Path) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NFTWATCH_", "CELERY_", "IPFS_"))
        and k not in {"DATABASE_URL", "ETH_RPC_URL"}
    }
    return {
        **base,
        "DATABASE_URL": db_url,
        "ETH_RPC_URL": node.url,
        "NFTWATCH_DATA_DIR": str(tmp_path / "data"),
    }


def nftwatch(env: dict[str, str], *args: str) -> str:
    """Run the console script; a successful run prints no traceback or warning."""
    result = subprocess.run(
        [NFTWATCH, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    return result.stdout


def backfill(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = nftwatch(
        env, "backfill", "--from-block", str(FIRST), "--to-block", str(LAST), "--json", *args
    )
    stats: dict[str, Any] = json.loads(out)
    return stats


def export(env: dict[str, str], kind: str) -> list[dict[str, Any]]:
    out = nftwatch(env, "export", kind, "--from-block", str(FIRST), "--to-block", str(LAST))
    return [json.loads(line) for line in out.splitlines()]


def sales_of(records: list[dict[str, Any]], contract: str, token_id: int) -> list[dict[str, Any]]:
    return [r for r in records if r["contract"] == contract and r["token_id"] == str(token_id)]


def test_seaport_sale_of_token_733(env: dict[str, str]) -> None:
    stats = backfill(env)
    assert stats["chain_id"] == 1 and stats["blocks"] == 2 and not stats["errors"]
    [sale] = sales_of(export(env, "sales"), TOKEN_733, 733)
    assert sale == {
        "chain_id": 1,
        "standard": "erc721",
        "contract": TOKEN_733,
        "token_id": "733",
        "from": "0xacccd6093da4357049158e84c62f13bb95a3db34",
        "to": "0x31c0b8dbacaf08da902e3117c346afc0128d2ed7",
        "amount": "1",
        "block_number": FIRST,
        "block_hash": BLOCK_49,
        "tx_hash": SEAPORT_TX,
        "log_index": 205,  # the OrderFulfilled log
        "batch_index": 0,
        "is_mint": False,
        "price_wei": str(370 * ETH // 1000),
        "currency": "ETH",
        "marketplace": "seaport",
        "inferred": False,
        "price_eth_wei": str(370 * ETH // 1000),
        "fees_wei": str(27_750 * ETH // 1_000_000),  # OpenSea's 2.5% and the creator's 5%
        "royalty_wei": str(18_500 * ETH // 1_000_000),  # the 5% not paid to OpenSea
        "bundle_size": 1,
    }


def test_blur_sale_of_azuki_1527_out_of_a_blend_loan(env: dict[str, str]) -> None:
    backfill(env)
    [sale] = sales_of(export(env, "sales"), AZUKI, 1527)
    assert sale["tx_hash"] == BLEND_TX and sale["block_number"] == FIRST
    assert sale["marketplace"] == "blur"
    assert (sale["price_wei"], sale["currency"]) == (str(163 * ETH // 10), "BLUR_POOL")
    assert sale["price_eth_wei"] == str(163 * ETH // 10)  # Blur Pool ETH is ether
    assert sale["to"] == "0x63e0605491bda6e4c1c37cf818a45b836faf46ee"  # the bidder
    assert sale["from"] == "0x14faf662e4631189d7c5e32d13391cd9fa06d68a"  # the borrower, not Blend
    assert sale["inferred"] is False and sale["bundle_size"] == 1


def test_no_other_sale_and_every_nft_transfer(env: dict[str, str]) -> None:
    stats = backfill(env)
    sales = export(env, "sales")
    assert sorted((s["tx_hash"], s["contract"], s["token_id"]) for s in sales) == sorted(
        [(SEAPORT_TX, TOKEN_733, "733"), (BLEND_TX, AZUKI, "1527")]
    )
    transfers = export(env, "transfers")
    assert stats["transfers"] == len(transfers) == 10
    assert sorted((t["contract"], t["token_id"], t["is_mint"]) for t in transfers) == sorted(
        [("0xb5f75c61052cd174c43b4187ca9333a5300d765f", str(i), True) for i in range(894, 899)]
        + [
            (AZUKI, "1527", False),
            (TOKEN_733, "733", False),
            (PLAIN_TRANSFER, "3522", False),
            ("0x0dd8cb761d895d502dc91978ceccb929165f7d6a", "123", True),
            ("0x977e43ab3eb8c0aece1230ba187740342865ee78", "0", True),  # ERC-1155
        ]
    )


def test_a_replay_changes_nothing(env: dict[str, str]) -> None:
    first = backfill(env)
    sales, transfers = export(env, "sales"), export(env, "transfers")
    # the same command again resumes at its checkpoint: the range is done
    again = backfill(env)
    assert again["resumed_from"] == LAST + 1 and again["blocks"] == 0
    # a replay that reads every log again, one block per run, stores nothing new
    for block in (FIRST, LAST):
        replay = json.loads(
            nftwatch(
                env, "backfill", "--from-block", str(block), "--to-block", str(block), "--json"
            )
        )
        assert replay["blocks"] == 1 and replay["logs"] > 0
    assert export(env, "sales") == sales and export(env, "transfers") == transfers
    assert len(sales) == first["sales"] == 2


def test_watched_collections_see_the_same_sales(env: dict[str, str], node: RecordedNode) -> None:
    """With a watch list the markets' logs come from the registry's own filters (their contracts,
    the payment tokens), and transfers without a market event are looked up for inferred sales:
    the recording knows no transaction, so none is inferred."""
    node.calls.clear()
    watched = [TOKEN_733, AZUKI, PLAIN_TRANSFER]
    backfill(env, *(arg for c in watched for arg in ("--collection", c)))
    sales = export(env, "sales")
    assert sorted((s["contract"], s["token_id"], s["marketplace"]) for s in sales) == sorted(
        [(TOKEN_733, "733", "seaport"), (AZUKI, "1527", "blur")]
    )
    assert node.calls["eth_getTransactionByHash"] >= 1  # #3522's transaction was asked about
    assert {t["contract"] for t in export(env, "transfers")} == set(watched)


def test_a_node_that_spells_addresses_in_eip55_case_decodes_the_same() -> None:
    from listeners.decode import decode_logs
    from listeners.logs import checksummed

    logs = json.loads(FIXTURE.read_text())["logs"]
    mixed = [{**lg, "address": checksummed(lg["address"])} for lg in logs]
    assert any(lg["address"] != lg["address"].lower() for lg in mixed)
    plain, cased = decode_logs(logs, chain_id=1), decode_logs(mixed, chain_id=1)
    assert cased.sales == plain.sales and cased.loans == plain.loans
    assert [s.currency for s in cased.sales] == ["BLUR_POOL", "ETH"]  # the payments were read
    assert cased.loans[0].repaid_wei == plain.loans[0].repaid_wei is not None
