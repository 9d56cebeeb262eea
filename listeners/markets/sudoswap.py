"""Sudoswap's pools (LSSVM v1 and v2): every pair is a clone the factory made, so the events
are read from any emitter and joined to the same transaction's NFT transfers.

v1 pairs emit ``SwapNFTInPair()`` (the pair bought NFTs: the user sold) and ``SwapNFTOutPair()``
(the pair sold NFTs) with no arguments, after moving the NFTs and the payment. The ids and the
counterparty are the ERC-721 transfers into (in) or out of (out) the pair since that pair's
previous swap in the transaction. The price is what the logs show of the payment: the payment
token's transfers in the same window, into the pair and to others (the protocol fee) from the
buyer of an out-swap, or out of the pair (to the seller, and the fee) for an in-swap. An ETH
pair's v1 payment is in no log, so such a swap gets no sale here (a watched collection's transfer
in a transaction that carried ETH is still priced by the inferred-sale pass); an ERC-20 pair in
a token outside :data:`PAYMENT_TOKENS` neither. A price is never guessed.

v2 pairs emit ``SwapNFTInPair(uint256 amountOut, uint256[] ids)`` and ``SwapNFTOutPair(uint256
amountIn, uint256[] ids)`` (ERC-721 pairs). ``amountIn`` is what the buyer paid, fees and
royalties included; ``amountOut`` is what the seller received, after the protocol fee and
royalties (which the event does not show, so an in-swap's price is the seller's proceeds). The
collection is the transfers' of those ids; the currency is the payment token whose transfer the
same window shows, else ETH (so a pair in an ERC-20 outside :data:`PAYMENT_TOKENS` would read as
ETH: the event does not name its token, and the pair's ``token()`` is a contract read). The
ERC-1155 pairs' ``(uint256, uint256 numNFTs)`` forms name no token id and are not read.

A swap of several NFTs is split evenly over them and flagged with ``bundle_size``.

Sources: sudoswap/lssvm (``LSSVMPair``, ``LSSVMPairERC20._pullTokenInputAndPayProtocolFee``,
``LSSVMPairFactory`` 0xb16c…c0a4) and sudoswap/lssvm2 (``LSSVMPair``, ``swapTokenForSpecificNFTs``
and ``swapNFTsForToken`` of the ERC-721 pair, ``LSSVMPairFactory`` 0xa020…6000).
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from listeners.logs import WETH, DecodeContext, Log, Payment, array, topic, uint, words
from listeners.markets.base import Deployment, Market, currency_name
from store.records import SaleEvent, TransferEvent

NAME = "sudoswap"
FACTORY_V1 = "0xb16c1342e617a5b6e4b631eb114483fdb289c0a4"
FACTORY_V2 = "0xa020d57ab0448ef74115c112d18a9c231cc86000"
PAYMENT_TOKENS = frozenset({WETH})

SWAP_NFT_IN_V1 = topic("SwapNFTInPair()")
SWAP_NFT_OUT_V1 = topic("SwapNFTOutPair()")
SWAP_NFT_IN_V2 = topic("SwapNFTInPair(uint256,uint256[])")
SWAP_NFT_OUT_V2 = topic("SwapNFTOutPair(uint256,uint256[])")


class _Swap(NamedTuple):
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    pair: str
    nft_out: bool  # the pair sold
    amount: int | None  # v2's; None for v1
    ids: tuple[int, ...] | None  # v2's


def _held(d: DecodeContext, nft_out: bool, amount: int | None, ids: tuple[int, ...] | None) -> bool:
    swap = _Swap(
        d.block_number, d.block_hash, d.tx_hash, d.log_index, d.contract, nft_out, amount, ids
    )
    d.scratch.setdefault(NAME, []).append(swap)
    return True


def swap_in_v1(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return len(log["data"]) <= 2 and _held(d, False, None, None)


def swap_out_v1(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return len(log["data"]) <= 2 and _held(d, True, None, None)


def _v2(d: DecodeContext, log: Log, nft_out: bool) -> bool:
    w = words(log["data"])
    if len(w) < 3:
        return False
    return _held(d, nft_out, uint(w[0]), tuple(array(w, 1)))


def swap_in_v2(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return _v2(d, log, False)


def swap_out_v2(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    return _v2(d, log, True)


def _priced_v1(swap: _Swap, pays: list[Payment], counterparty: str) -> tuple[int, int, str] | None:
    """(price, fees, token) of a v1 swap from the payment-token transfers of its window."""
    if swap.nft_out:  # the buyer paid the pair, and the protocol fee beside it
        into_pair = [p for p in pays if p.receiver == swap.pair]
        if not into_pair:
            return None
        payer = into_pair[0].sender
        paid = [p for p in pays if p.sender == payer and p.token == into_pair[0].token]
        total = sum(p.amount for p in paid)
        fees = sum(p.amount for p in paid if p.receiver != swap.pair)
        return total, fees, into_pair[0].token
    out_of_pair = [p for p in pays if p.sender == swap.pair]
    if not any(p.receiver == counterparty for p in out_of_pair):
        return None
    token = out_of_pair[0].token
    paid = [p for p in out_of_pair if p.token == token]
    total = sum(p.amount for p in paid)
    fees = sum(p.amount for p in paid if p.receiver != counterparty)
    return total, fees, token


def finish(d: DecodeContext) -> None:
    """Each held swap becomes sales once the whole pass's transfers and payments are known."""
    swaps: list[_Swap] | None = d.scratch.pop(NAME, None)
    if not swaps:
        return
    txs = {s.tx_hash for s in swaps}
    moves: dict[str, list[TransferEvent]] = defaultdict(list)
    for t in d.transfers:
        if t.tx_hash in txs and t.standard == "erc721":
            moves[t.tx_hash].append(t)
    pays: dict[str, list[Payment]] = defaultdict(list)
    for p in d.payments:
        if p.tx_hash in txs:
            pays[p.tx_hash].append(p)
    previous: dict[tuple[str, str], int] = {}
    for swap in sorted(swaps, key=lambda s: (s.block_number, s.log_index)):
        key = (swap.tx_hash, swap.pair)
        after = previous.get(key, -1)
        previous[key] = swap.log_index
        nfts = [
            t
            for t in moves.get(swap.tx_hash, ())
            if after < t.log_index < swap.log_index
            and (t.from_address if swap.nft_out else t.to_address) == swap.pair
            and (swap.ids is None or t.token_id in swap.ids)
        ]
        if not nfts:
            continue  # the collection's transfers are not in this pass: not a watched NFT
        # one counterparty per swap: the NFTs' recipient (out) or sender (in)
        other = nfts[0].to_address if swap.nft_out else nfts[0].from_address
        window = [p for p in pays.get(swap.tx_hash, ()) if after < p.log_index < swap.log_index]
        token: str | None
        if swap.amount is None:
            priced = _priced_v1(swap, window, other)
            if priced is None:
                continue  # an ETH pair (or an unread token): its price is in no log
            total, fees, token = priced
        else:
            total, fees = swap.amount, 0
            side = [p for p in window if swap.pair in (p.sender, p.receiver)]
            token = side[0].token if side else None
        seller, buyer = (swap.pair, other) if swap.nft_out else (other, swap.pair)
        count = len(nfts)
        currency = currency_name(token, WETH)
        d.sales.extend(
            SaleEvent(
                block_number=swap.block_number,
                block_hash=swap.block_hash,
                tx_hash=swap.tx_hash,
                log_index=swap.log_index,
                batch_index=i,
                contract=t.contract,
                token_id=t.token_id,
                seller=seller,
                buyer=buyer,
                price_wei=total // count,
                currency=currency,
                marketplace=NAME,
                fees_wei=fees // count,
                bundle_size=count,
            )
            for i, t in enumerate(nfts)
            if d.keeps(t.contract)
        )


MARKET = Market(
    name=NAME,
    # The factories, for the record: the pairs they create emit the events, so nothing is
    # guarded by address. v1's block is its creation; v2's (May 2023) is a conservative
    # earlier bound below 17_309_203, where its pairs' logs are read from elsewhere.
    deployments=(
        Deployment(FACTORY_V1, 14_645_816, "1"),
        Deployment(FACTORY_V2, 17_300_000, "2"),
    ),
    any_emitter=True,
    payment_tokens=PAYMENT_TOKENS,
    handlers={
        (SWAP_NFT_IN_V1, 1): swap_in_v1,
        (SWAP_NFT_OUT_V1, 1): swap_out_v1,
        (SWAP_NFT_IN_V2, 1): swap_in_v2,
        (SWAP_NFT_OUT_V2, 1): swap_out_v2,
    },
    finish=finish,
)
