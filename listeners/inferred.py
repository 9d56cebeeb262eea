"""Sales that no marketplace event announces, inferred from the transaction.

For the watched collections only (in "all" mode every transfer on the chain would cost a lookup):

- a transfer (not a mint, not a burn) in a transaction without a decoded sale is a sale when the
  transaction carried ETH (price = its value, split evenly over the NFTs it moved), or else when
  WETH went to the NFT's sender in the same transaction (price = the WETH paid to that seller);
- a mint in a transaction sent to the NFT contract itself with a value is a paid mint: a primary
  sale (seller = the zero address, marketplace ``mint``) at the value split over its mints.

Both are flagged ``inferred``. Only the transactions that need it are looked up: one batched
``eth_getTransactionByHash`` round for the candidates, and one ``eth_getLogs`` on the WETH
contracts, filtered by recipient, for the candidates that carried no ETH.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from listeners.decode import TRANSFER, WETH, ZERO
from listeners.rpc import Rpc
from store.records import Decoded, SaleEvent, TransferEvent

_BATCH = 200
_TOPICS_PER_QUERY = 100


def _topic_of(address: str) -> str:
    return "0x" + "0" * 24 + address[2:]


def infer_sales(
    rpc: Rpc,
    decoded: Decoded,
    watched: frozenset[str] | None,
    *,
    weth_contracts: frozenset[str] = frozenset({WETH}),
) -> list[SaleEvent]:
    """The inferred sales of ``decoded`` (not added to it); ``watched=None`` ("all") gives none."""
    if not watched:
        return []
    weth_contracts = frozenset(a.lower() for a in weth_contracts)
    sold_txs = {s.tx_hash for s in decoded.sales}
    by_tx: dict[str, list[TransferEvent]] = defaultdict(list)
    for t in decoded.transfers:
        if (
            t.contract in watched
            and t.standard != "cryptopunks"  # the punk market announces every sale
            and t.tx_hash not in sold_txs
            and t.to_address != ZERO
        ):
            by_tx[t.tx_hash].append(t)
    if not by_tx:
        return []
    txs = _transactions(rpc, sorted(by_tx))
    sales: list[SaleEvent] = []
    unpaid: dict[str, list[TransferEvent]] = {}
    for tx_hash, transfers in by_tx.items():
        tx = txs.get(tx_hash)
        if tx is None:
            continue
        value = int(tx.get("value") or "0x0", 16)
        to = (tx.get("to") or "").lower()
        mints = [t for t in transfers if t.is_mint and t.contract == to]
        moves = [t for t in transfers if not t.is_mint]
        if value and mints and not moves:
            sales.extend(_sales(mints, value, "ETH", "mint"))
        elif value and moves:
            sales.extend(_sales(moves, value, "ETH", "inferred"))
        elif moves and weth_contracts:
            unpaid[tx_hash] = moves
    if unpaid:
        sales.extend(_weth_sales(rpc, unpaid, weth_contracts))
    sales.sort(key=lambda s: (s.block_number, s.log_index, s.batch_index))
    return sales


def _transactions(rpc: Rpc, hashes: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(hashes), _BATCH):
        chunk = hashes[i : i + _BATCH]
        for h, tx in zip(
            chunk, rpc.batch([("eth_getTransactionByHash", [h]) for h in chunk]), strict=True
        ):
            if tx:
                out[h] = tx
    return out


def _sales(
    transfers: list[TransferEvent], total: int, currency: str, marketplace: str
) -> list[SaleEvent]:
    """One sale per NFT moved, the price split evenly (a bundle's total is what was paid)."""
    share = total // len(transfers)
    return [
        SaleEvent(
            block_number=t.block_number,
            block_hash=t.block_hash,
            tx_hash=t.tx_hash,
            log_index=t.log_index,
            batch_index=t.batch_index,
            contract=t.contract,
            token_id=t.token_id,
            seller=t.from_address,
            buyer=t.to_address,
            price_wei=share,
            currency=currency,
            marketplace=marketplace,
            inferred=True,
        )
        for t in transfers
    ]


def _weth_sales(
    rpc: Rpc, unpaid: dict[str, list[TransferEvent]], weth_contracts: frozenset[str]
) -> list[SaleEvent]:
    """WETH paid to the NFT's sender in the same transaction (ERC-20 ``Transfer`` logs)."""
    moves = [t for ts in unpaid.values() for t in ts]
    lo = min(t.block_number for t in moves)
    hi = max(t.block_number for t in moves)
    sellers = sorted({t.from_address for t in moves})
    paid: dict[tuple[str, str], int] = defaultdict(int)  # (tx, seller) -> WETH received
    for i in range(0, len(sellers), _TOPICS_PER_QUERY):
        recipients = [_topic_of(a) for a in sellers[i : i + _TOPICS_PER_QUERY]]
        for lg in rpc.get_logs(lo, hi, sorted(weth_contracts), [TRANSFER, None, recipients]):
            tx = lg["transactionHash"].lower()
            if tx in unpaid and len(lg["topics"]) == 3 and not lg.get("removed"):
                to = "0x" + lg["topics"][2][-40:].lower()
                paid[(tx, to)] += int(lg["data"], 16) if len(lg["data"]) > 2 else 0
    sales: list[SaleEvent] = []
    for tx, transfers in unpaid.items():
        by_seller: dict[str, list[TransferEvent]] = defaultdict(list)
        for t in transfers:
            by_seller[t.from_address].append(t)
        for seller, items in by_seller.items():
            amount = paid.get((tx, seller), 0)
            if amount:
                sales.extend(_sales(items, amount, "WETH", "inferred"))
    return sales
