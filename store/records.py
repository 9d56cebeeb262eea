"""The chain event records: built by the decoder (``listeners``), written by :mod:`store.chain`.

One definition each. The staging tables and COPY lines of :mod:`store.chain.staging` are derived
from these fields (their SQL types from the same-named columns of :mod:`store.models`), so a field
added here is a column written there. Addresses and hashes are lower-case ``0x`` hex, token ids
and amounts Python ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int  # unix seconds


@dataclass(slots=True)
class TransferEvent:
    """One NFT movement (a mint has from = 0x0, a burn to = 0x0)."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    batch_index: int  # position in an ERC-1155 batch or an EIP-2309 range, else 0
    contract: str
    token_id: int
    from_address: str
    to_address: str
    amount: int
    standard: str  # erc721 | erc1155 | cryptopunks
    is_mint: bool


@dataclass(slots=True)
class SaleEvent:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    batch_index: int  # position in a bundle (Seaport) or of the inferred sale's transfer
    contract: str
    token_id: int
    seller: str
    buyer: str
    price_wei: int  # what the buyer paid, fees included
    currency: str  # ETH | WETH | BLUR_POOL | the ERC-20's address (the price in ether: the table's)
    marketplace: str  # seaport | cryptopunks | inferred | mint | ...
    inferred: bool = False
    fees_wei: int = 0  # paid to others than the seller (market fees and royalties), in ``currency``
    royalty_wei: int = 0  # the part of ``fees_wei`` paid to the creator, where the event says
    bundle_size: int = 1  # NFTs in the fill: a bundle's price is split over them (see the market)


@dataclass(slots=True)
class ListingEvent:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    token_id: int
    kind: str  # offered | withdrawn | bid | bid_withdrawn
    price_wei: int | None
    # offered: the only allowed buyer (0x0 = anyone); bids: the bidder; withdrawn: 0x0
    account: str


@dataclass(slots=True)
class LoanEvent:
    """One event of an NFT-backed loan (Blur Blend): a lien taken, refinanced, repaid, put to
    auction, seized by its lender, or bought out of (the purchase is also a sale). Fields an
    event does not carry are None; the lien's ``taken`` row has them."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    protocol: str  # blend
    lien_id: int
    kind: str  # taken | refinanced | repaid | auction | seized | bought
    contract: str  # the collateral's collection
    token_id: int | None
    lender: str | None
    borrower: str | None
    principal_wei: int | None  # the amount lent (refinanced: the new amount)
    rate_bps: int | None  # the yearly rate in basis points
    auction_duration: int | None  # blocks
    # repaid / bought: what the lender received in the transaction (Blur Pool ETH), where the
    # decoder could tell it from the transaction's payments
    repaid_wei: int | None = None


@dataclass(slots=True)
class MetadataUpdateEvent:
    """Token ids ``from_token_id..to_token_id`` (inclusive) of ``contract`` changed metadata."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    from_token_id: int
    to_token_id: int


@dataclass(slots=True)
class OversizedRange:
    """An EIP-2309 range larger than the expansion cap: recorded, not expanded."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    from_token_id: int
    to_token_id: int
    from_address: str
    to_address: str


@dataclass(slots=True)
class Decoded:
    """The events of one span of logs, each list in chain order."""

    transfers: list[TransferEvent] = field(default_factory=list)
    sales: list[SaleEvent] = field(default_factory=list)
    listings: list[ListingEvent] = field(default_factory=list)
    loans: list[LoanEvent] = field(default_factory=list)
    metadata_updates: list[MetadataUpdateEvent] = field(default_factory=list)
    oversized: list[OversizedRange] = field(default_factory=list)
    skipped: int = 0  # logs that matched no NFT layout (ERC-20 noise, unknown events)

    def block_numbers(self) -> set[int]:
        out: set[int] = set()
        for seq in (
            self.transfers,
            self.sales,
            self.listings,
            self.loans,
            self.metadata_updates,
            self.oversized,
        ):
            out.update(e.block_number for e in seq)
        return out
