"""``nftwatch export transfers|sales`` through the CLI on events ingested from anvil: the issue's
fields exactly, values as on chain, chain order, the block range respected, JSON lines and CSV
agreeing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from listeners.backfill import backfill
from listeners.rpc import Rpc
from nftwatch.cli import cli
from nftwatch.cli.export import SALE_FIELDS, TRANSFER_FIELDS
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil

CHAIN = 31337
ETH = 10**18
ZERO = "0x" + "0" * 40


def export(db_url: str, tmp_path: Path, *args: str) -> str:
    env = {"DATABASE_URL": db_url, "NFTWATCH_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(cli, ["export", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_export_transfers_and_sales(
    anvil: Anvil, db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    w3 = ct.connect(anvil.url)
    a = [x.lower() for x in w3.eth.accounts]
    nft = ct.deploy(w3, "DemoNFT", "Export", "EX")
    multi = ct.deploy(w3, "DemoMulti", "ipfs://x/{id}")
    market = ct.deploy(w3, "DemoMarket", w3.eth.accounts[9])
    big = 2**256 - 1
    r_mint = ct.mint(w3, nft, a[1], big)
    r_batch = ct.call(w3, multi, "mintBatch", w3.eth.accounts[2], [5, 6], [10, 3])
    r_sale = ct.sell(
        w3, market, nft, w3.eth.accounts[1], w3.eth.accounts[3], big, 2 * ETH, fee_wei=ETH // 20
    )
    head = w3.eth.block_number
    with Rpc(anvil.url) as rpc:
        backfill(rpc, sessions, CHAIN, 0, head, None)

    def hx(v: bytes) -> str:
        return "0x" + v.hex().removeprefix("0x")

    nft_addr, multi_addr = nft.address.lower(), multi.address.lower()
    out = export(db_url, tmp_path, "transfers", "--from-block", "0", "--to-block", str(head))
    records = [json.loads(line) for line in out.splitlines()]
    assert all(tuple(r) == TRANSFER_FIELDS for r in records)
    expected = [
        {
            "chain_id": CHAIN,
            "standard": "erc721",
            "contract": nft_addr,
            "token_id": str(big),
            "from": ZERO,
            "to": a[1],
            "amount": "1",
            "block_number": r_mint["blockNumber"],
            "block_hash": hx(r_mint["blockHash"]),
            "tx_hash": hx(r_mint["transactionHash"]),
            "log_index": r_mint["logs"][0]["logIndex"],
            "batch_index": 0,
            "is_mint": True,
        },
        *(
            {
                "chain_id": CHAIN,
                "standard": "erc1155",
                "contract": multi_addr,
                "token_id": token_id,
                "from": ZERO,
                "to": a[2],
                "amount": amount,
                "block_number": r_batch["blockNumber"],
                "block_hash": hx(r_batch["blockHash"]),
                "tx_hash": hx(r_batch["transactionHash"]),
                "log_index": r_batch["logs"][0]["logIndex"],
                "batch_index": i,
                "is_mint": True,
            }
            for i, (token_id, amount) in enumerate([("5", "10"), ("6", "3")])
        ),
        {
            "chain_id": CHAIN,
            "standard": "erc721",
            "contract": nft_addr,
            "token_id": str(big),
            "from": a[1],
            "to": a[3],
            "amount": "1",
            "block_number": r_sale["blockNumber"],
            "block_hash": hx(r_sale["blockHash"]),
            "tx_hash": hx(r_sale["transactionHash"]),
            "log_index": r_sale["logs"][0]["logIndex"],
            "batch_index": 0,
            "is_mint": False,
        },
    ]
    assert records == expected

    # CSV: same records, the header first, booleans spelled out
    out = export(
        db_url, tmp_path, "transfers", "--from-block", "0", "--to-block", str(head),
        "--format", "csv",
    )  # fmt: skip
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0]) == list(TRANSFER_FIELDS)
    assert [r["tx_hash"] for r in table] == [r["tx_hash"] for r in expected]
    assert [r["is_mint"] for r in table] == ["true", "true", "true", "false"]
    assert table[0]["token_id"] == str(big)

    # the range is inclusive and respected; another chain id has nothing
    only = export(
        db_url, tmp_path, "transfers", "--from-block", str(r_batch["blockNumber"]),
        "--to-block", str(r_batch["blockNumber"]),
    )  # fmt: skip
    assert [json.loads(x)["batch_index"] for x in only.splitlines()] == [0, 1]
    assert export(db_url, tmp_path, "transfers", "--from-block", "0", "--to-block",
                  str(head), "--chain-id", "1") == ""  # fmt: skip

    # sales to a file
    target = tmp_path / "sales.jsonl"
    export(db_url, tmp_path, "sales", "--from-block", "0", "--to-block", str(head),
           "--output", str(target))  # fmt: skip
    sales = [json.loads(line) for line in target.read_text().splitlines()]
    assert all(tuple(r) == SALE_FIELDS for r in sales)
    assert sales == [
        {
            **expected[-1],
            "log_index": sales[0]["log_index"],  # the OrderFulfilled log
            "price_wei": str(2 * ETH),
            "currency": "ETH",
            "marketplace": "seaport",
            "inferred": False,
            "price_eth_wei": str(2 * ETH),
            "fees_wei": str(ETH // 20),  # the market's fee, within the price
            "royalty_wei": str(ETH // 20),  # not paid to OpenSea: read as the creator's
            "bundle_size": 1,
        }
    ]
    seaport_logs = [lg for lg in r_sale["logs"] if lg["address"].lower() == market.address.lower()]
    assert sales[0]["log_index"] == seaport_logs[0]["logIndex"]
