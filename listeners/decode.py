"""Pure decoding of raw ``eth_getLogs`` dicts into typed events, by hand on fixed topic layouts:
the transfer side here, each market in its own module.

No ABI objects on the hot path: each supported event is recognised by its layout, topic0 and
topic count, which picks one small function from the handler table; the function slices its words
out of the hex ``data``. Addresses come out lower-case ``0x`` hex, token ids and amounts as Python
ints, the events as the records of :mod:`store.records`.

What becomes what:

- ERC-721 ``Transfer``: topic0 ``0xddf252ad…`` with exactly 4 topics and empty data. The ERC-20
  shape (3 topics + a data word) is never an NFT row; the legacy form with nothing indexed
  (1 topic + 3 data words, CryptoKitties) only for contracts passed in ``legacy_contracts``.
- ERC-1155 ``TransferSingle`` / ``TransferBatch`` (one row per id, ``batch_index`` = position).
- EIP-2309 ``ConsecutiveTransfer``: expanded into one row per id up to ``max_consecutive`` ids;
  larger ranges are reported in :attr:`Decoded.oversized` instead of expanded blindly.
- Markets (CryptoPunks' own, Seaport, Blur, …): one module each under :mod:`listeners.markets`,
  whose handlers join these by the same (topic0, topic count) key.
- EIP-4906 ``MetadataUpdate`` / ``BatchMetadataUpdate`` and ERC-1155 ``URI``: refresh work.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from listeners.logs import (
    MAX_UINT256,
    TRANSFER,
    WETH,
    ZERO,
    DecodeContext,
    Handler,
    Log,
    Payment,
    addr,
    checksummed,
    topic,
    uint,
    words,
)
from listeners.markets import markets_for
from store.records import Decoded, MetadataUpdateEvent, OversizedRange, TransferEvent

__all__ = [
    "MAX_UINT256",
    "TRANSFER",
    "WETH",
    "ZERO",
    "all_topics",
    "collection_topics",
    "decode_logs",
]

TRANSFER_SINGLE = topic("TransferSingle(address,address,address,uint256,uint256)")
TRANSFER_BATCH = topic("TransferBatch(address,address,address,uint256[],uint256[])")
URI = topic("URI(string,uint256)")
CONSECUTIVE_TRANSFER = topic("ConsecutiveTransfer(uint256,uint256,address,address)")
METADATA_UPDATE = topic("MetadataUpdate(uint256)")
BATCH_METADATA_UPDATE = topic("BatchMetadataUpdate(uint256,uint256)")


# --- transfers ---------------------------------------------------------------------------------


def _erc721_transfer(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``Transfer(from, to, tokenId)``, all indexed, no data: the commonest NFT log."""
    if len(log["data"]) > 2:
        return False
    frm = addr(topics[1])
    d.transfers.append(
        TransferEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=0,
            contract=d.contract,
            token_id=int(topics[3], 16),
            from_address=frm,
            to_address=addr(topics[2]),
            amount=1,
            standard="erc721",
            is_mint=frm == ZERO,
        )
    )
    return True


def _legacy_transfer(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``Transfer(from, to, tokenId)`` with nothing indexed (CryptoKitties): the contracts named
    as legacy only, since ERC-20s of the same era look alike."""
    if d.contract not in d.legacy_contracts:
        return False
    w = words(log["data"])
    if len(w) < 3:
        return False
    frm = addr(w[0])
    d.transfers.append(
        TransferEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=0,
            contract=d.contract,
            token_id=uint(w[2]),
            from_address=frm,
            to_address=addr(w[1]),
            amount=1,
            standard="erc721",
            is_mint=frm == ZERO,
        )
    )
    return True


def _transfer_single(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """ERC-1155 ``TransferSingle(operator, from, to, id, value)``."""
    w = words(log["data"])
    frm = addr(topics[2])
    d.transfers.append(
        TransferEvent(
            block_number=d.block_number,
            block_hash=d.block_hash,
            tx_hash=d.tx_hash,
            log_index=d.log_index,
            batch_index=0,
            contract=d.contract,
            token_id=uint(w[0]),
            from_address=frm,
            to_address=addr(topics[3]),
            amount=uint(w[1]),
            standard="erc1155",
            is_mint=frm == ZERO,
        )
    )
    return True


def _transfer_batch(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """ERC-1155 ``TransferBatch(operator, from, to, ids[], values[])``: a row per id."""
    w = words(log["data"])
    ids_at = int(w[0], 16) // 32 + 1
    values_at = int(w[1], 16) // 32 + 1
    count = int(w[ids_at - 1], 16)
    ids = [int(x, 16) for x in w[ids_at : ids_at + count]]
    values = [int(x, 16) for x in w[values_at : values_at + count]]
    frm = addr(topics[2])
    to = addr(topics[3])
    mint = frm == ZERO
    bn, bh, tx, li, contract = d.block_number, d.block_hash, d.tx_hash, d.log_index, d.contract
    d.transfers.extend(
        TransferEvent(
            block_number=bn,
            block_hash=bh,
            tx_hash=tx,
            log_index=li,
            batch_index=i,
            contract=contract,
            token_id=token_id,
            from_address=frm,
            to_address=to,
            amount=value,
            standard="erc1155",
            is_mint=mint,
        )
        for i, (token_id, value) in enumerate(zip(ids, values, strict=False))
    )
    return True


def _consecutive_transfer(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """EIP-2309 ``ConsecutiveTransfer(fromTokenId, toTokenId, from, to)``: a row per id, or the
    range as it is when larger than ``max_consecutive``."""
    first = int(topics[1], 16)
    last = uint(words(log["data"])[0])
    frm = addr(topics[2])
    to = addr(topics[3])
    bn, bh, tx, li, contract = d.block_number, d.block_hash, d.tx_hash, d.log_index, d.contract
    if last < first or last - first + 1 > d.max_consecutive:
        d.out.oversized.append(
            OversizedRange(
                block_number=bn,
                block_hash=bh,
                tx_hash=tx,
                log_index=li,
                contract=contract,
                from_token_id=first,
                to_token_id=last,
                from_address=frm,
                to_address=to,
            )
        )
        return True
    mint = frm == ZERO
    d.transfers.extend(
        TransferEvent(
            block_number=bn,
            block_hash=bh,
            tx_hash=tx,
            log_index=li,
            batch_index=i,
            contract=contract,
            token_id=token_id,
            from_address=frm,
            to_address=to,
            amount=1,
            standard="erc721",
            is_mint=mint,
        )
        for i, token_id in enumerate(range(first, last + 1))
    )
    return True


# --- metadata updates --------------------------------------------------------------------------


def _metadata_update(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """EIP-4906 ``MetadataUpdate(tokenId)``."""
    token_id = uint(words(log["data"])[0])
    d.updates.append(_update(d, token_id, token_id))
    return True


def _batch_metadata_update(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """EIP-4906 ``BatchMetadataUpdate(fromTokenId, toTokenId)``."""
    w = words(log["data"])
    d.updates.append(_update(d, uint(w[0]), uint(w[1])))
    return True


def _uri(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """ERC-1155 ``URI(value, id)``: the id's metadata moved."""
    token_id = int(topics[1], 16)
    d.updates.append(_update(d, token_id, token_id))
    return True


def _update(d: DecodeContext, first: int, last: int) -> MetadataUpdateEvent:
    return MetadataUpdateEvent(
        block_number=d.block_number,
        block_hash=d.block_hash,
        tx_hash=d.tx_hash,
        log_index=d.log_index,
        contract=d.contract,
        from_token_id=first,
        to_token_id=last,
    )


# --- dispatch ----------------------------------------------------------------------------------

# (topic0, topic count) -> its handler. A layout not here (an ERC-20 Transfer's, an unknown
# event's) is no NFT event; the markets' layouts join these in :func:`_handlers`.
_TRANSFER_HANDLERS: dict[tuple[str, int], Handler] = {
    (TRANSFER, 4): _erc721_transfer,
    (TRANSFER, 1): _legacy_transfer,
    (TRANSFER_SINGLE, 4): _transfer_single,
    (TRANSFER_BATCH, 4): _transfer_batch,
    (CONSECUTIVE_TRANSFER, 4): _consecutive_transfer,
    (METADATA_UPDATE, 1): _metadata_update,
    (BATCH_METADATA_UPDATE, 1): _batch_metadata_update,
    (URI, 2): _uri,
}
_ERC20_TRANSFER = (TRANSFER, 3)
_by_chain: dict[int | None, dict[tuple[str, int], Handler]] = {}


def _handlers(chain_id: int | None) -> dict[tuple[str, int], Handler]:
    handlers = _by_chain.get(chain_id)
    if handlers is None:
        markets = markets_for(chain_id).handlers
        clash = markets.keys() & _TRANSFER_HANDLERS.keys()
        if clash:
            raise ValueError(f"market layouts {sorted(clash)} shadow the transfer handlers")
        handlers = _by_chain[chain_id] = {**_TRANSFER_HANDLERS, **markets}
    return handlers


@cache
def _spellings(tokens: frozenset[str]) -> frozenset[str]:
    return tokens | {checksummed(t) for t in tokens}


def collection_topics(chain_id: int | None = None) -> tuple[str, ...]:
    """Every topic0 the watched collections emit that we decode: their ``eth_getLogs`` filter.
    Markets' own events come from :meth:`listeners.markets.Markets.queries`."""
    own = tuple(dict.fromkeys(t for t, _ in _TRANSFER_HANDLERS))
    return own + markets_for(chain_id).collection_topics()


def all_topics(chain_id: int | None = None) -> tuple[str, ...]:
    """Every topic0 decoded (the filter of "all" mode), ERC-20 ``Transfer`` included (it is
    the NFT's topic too, and the payment tokens' transfers are read from it)."""
    markets = markets_for(chain_id)
    return tuple(dict.fromkeys(collection_topics(chain_id) + tuple(t for t, _ in markets.handlers)))


def decode_logs(
    logs: Iterable[Log],
    *,
    legacy_contracts: frozenset[str] = frozenset(),
    nft_contracts: frozenset[str] | None = None,
    max_consecutive: int = 10_000,
    chain_id: int | None = None,
) -> Decoded:
    """Decode ``logs`` (in chain order) into NFT events.

    ``nft_contracts``: when given, marketplace events are kept only for NFTs of these contracts
    (the watched collections); ``None`` keeps every NFT ("all" mode). ``chain_id``: on a chain
    where a market lists its contracts, only theirs are read as that market's (None: any)."""
    markets = markets_for(chain_id)
    d = DecodeContext(legacy_contracts, nft_contracts, max_consecutive, markets.payment_tokens)
    # as nodes spell them (lower case or EIP-55): no lower() on every ERC-20 log
    payment_spellings = _spellings(markets.payment_tokens)
    handlers = _handlers(chain_id)
    payments = d.payments
    # Consecutive logs share their block and often their transaction: parse those once.
    raw_bh = ""
    skipped = 0
    for log in logs:
        if log.get("removed"):
            continue
        topics: list[str] = log["topics"]
        if not topics:
            skipped += 1
            continue
        layout = (topics[0], len(topics))
        handle = handlers.get(layout)
        if handle is None and layout != _ERC20_TRANSFER:  # a node that spells hex upper-case
            layout = (topics[0].lower(), len(topics))
            handle = handlers.get(layout)
        if handle is None:
            if layout == _ERC20_TRANSFER:
                # A third of all logs, never an NFT row; the punk market's carries the buyer of
                # an accepted bid, a payment token's is a market's payment.
                d.punk_recipient[log["transactionHash"] + log["address"]] = topics[2]
                if log["address"] in payment_spellings:
                    payments.append(
                        Payment(
                            log["transactionHash"].lower(),
                            int(log["logIndex"], 16),
                            log["address"].lower(),
                            addr(topics[1]),
                            addr(topics[2]),
                            uint(words(log["data"])[0]),
                        )
                    )
            skipped += 1
            continue
        if log["transactionHash"] != d.raw_tx:
            d.raw_tx = log["transactionHash"]
            d.tx_hash = d.raw_tx.lower()
        if log["blockHash"] != raw_bh:
            raw_bh = log["blockHash"]
            d.block_hash = raw_bh.lower()
            d.block_number = int(log["blockNumber"], 16)
        d.contract = log["address"].lower()
        d.log_index = int(log["logIndex"], 16)
        if not handle(d, log, topics):
            skipped += 1
    for finish in markets.finishers:
        finish(d)
    d.out.skipped = skipped
    return d.out
