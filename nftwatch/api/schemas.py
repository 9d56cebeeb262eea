"""Response models: they document every field in /docs and check that handlers return what
they promise. Token ids and wei amounts are decimal strings (beyond JSON's safe integers)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LastSale(BaseModel):
    price_wei: str
    price_eth: float | None
    at: str | None = Field(description="ISO 8601 time of the sale.")


class SaleOut(BaseModel):
    block_number: int
    block_time: str | None
    tx_hash: str
    log_index: int
    seller: str
    buyer: str
    price_wei: str = Field(description="Price in the currency's smallest unit, as a string.")
    price_eth: float | None = Field(
        description="Price in ETH (ETH, WETH and Blur Pool ETH); null for other ERC-20s."
    )
    currency: str = Field(description="ETH, WETH, BLUR_POOL, or the ERC-20's address.")
    marketplace: str
    inferred: bool = Field(description="Price inferred from the transaction, not an event.")
    bundle_size: int = Field(
        description="NFTs sold in the same fill; above 1 the price is this token's even share."
    )
    wash_flags: list[str] = Field(
        description="Why this sale may not be a market price (left out of valuations): "
        "self_trade, round_trip, churn (3+ sales in 7 days), off_level_quiet, private_fill."
    )


class ImageRef(BaseModel):
    uri: str | None = Field(description="Where the metadata says the image lives.")
    sha256: str | None = Field(description="Hash of the stored image bytes.")
    url: str | None = Field(description="This API's route to the stored bytes.")


class ErrorOut(BaseModel):
    class_: str = Field(alias="class", serialization_alias="class")
    message: str | None


class TokenOut(BaseModel):
    chain_id: int
    contract: str
    token_id: str
    owner: str | None
    minted_block: int | None
    transfer_count: int
    sale_count: int
    last_sale: LastSale | None
    metadata_status: str
    token_uri: str | None
    metadata: Any = Field(description="The token's metadata JSON as resolved.")
    attributes: Any = Field(description="The metadata's attributes (traits).")
    image: ImageRef
    error: ErrorOut | None = Field(description="Why resolving failed, if it did.")
    resolved_at: str | None
    sales: list[SaleOut] = Field(description="Sales, newest first.")


class CollateralOut(BaseModel):
    """What a desk may lend against the valuation (``valuation.collateral``)."""

    value_eth: float | None = Field(
        description="Conservative collateral value: the interval's low end less the haircut."
    )
    haircut: float = Field(description="Share taken off: 10 % plus 30 % times 1 - P(liquid).")
    newest_evidence_age_days: float | None = Field(
        description="Days from the newest sale behind the estimate (comparables, visual "
        "neighbours, the token's own trades) to the valuation; null when none is dated."
    )
    level_deviation: float | None = Field(
        description="log(estimate / the collection's market level); null without a level."
    )
    comparables: int = Field(description="Comparable tokens with a sale behind the estimate.")
    sales_30d: int | None = Field(description="The collection's sales in the 30 days before.")
    flags: list[str] = Field(
        description="Why not to lend on it alone: no_estimate, thin (under 3 comparables or 5 "
        "sales in 30 days), stale (newest evidence over 90 days old), off_market (more than 3x "
        "from the market level), crossed_book (the token's live bid is above its live ask: one "
        "of them is stale)."
    )
    lendable: bool = Field(description="True when no flag is raised.")


class ValuationOut(BaseModel):
    id: int
    chain_id: int
    contract: str
    token_id: str
    valued_at: str | None
    model_version: str = Field(description="The model that produced it (stored with inputs).")
    price_eth: float | None = Field(description="Price estimate in ETH; null when none.")
    interval_eth: list[float | None] = Field(description="80 % interval [low, high] in ETH.")
    p_liquid: float = Field(description="Probability of more than two trades over the horizon.")
    confidence: float = Field(description="0..1, how sure the estimate is.")
    collateral: CollateralOut
    explanation: dict[str, Any] = Field(
        description="Why this price. In a fitted valuation, model: the served model (name "
        "'stack', version, as_of, the interval's source: the stack's out-of-sample "
        "residuals); stack: each input (input, name, value_eth, weight, missing: true where "
        "it had nothing to say and stands in at the level's price), weights summing to 1, "
        "the price their weighted geometric mean; relative_to_market (the price over the "
        "market level); market (level, medians, floor proxy), comparables, drivers and "
        "hedonic_knn_relative_to_market (the hedonic-knn input's), rarity, own_trades, "
        "visual_neighbours; orders and market_asks: what live orders and asks moved."
    )


class QueuedOut(BaseModel):
    status: str = Field(description="Always 'queued'.")
    requested_at: str
    poll: str = Field(description="GET this URL for the valuation.")


class TokenKeyOut(BaseModel):
    chain_id: int
    contract: str
    token_id: str


class NeighbourOut(BaseModel):
    chain_id: int
    contract: str
    token_id: str
    image_sha256: str
    similarity: float = Field(description="Cosine similarity of the image embeddings.")
    sale_count: int
    transfer_count: int
    last_sale_eth: float | None
    last_sale_at: str | None


class SimilarOut(BaseModel):
    token: TokenKeyOut
    extractor: str
    dim: int
    neighbours: list[NeighbourOut] = Field(description="Most similar first.")


class WindowOut(BaseModel):
    start: str
    end: str
    sales: int


class StatsOut(BaseModel):
    chain_id: int
    contract: str
    name: str | None
    token_count: int
    sales_count: int
    window: WindowOut
    median_sale_eth_30d: float | None
    floor_proxy_eth_30d: float | None = Field(description="10th percentile of 30-day sales.")
    listings_count: int


class ListingOut(BaseModel):
    """An on-chain offer (``venue`` "onchain": the block fields set) or an off-chain listing a
    marketplace holds (``venue`` the marketplace, e.g. "opensea": the order's fields set)."""

    chain_id: int
    contract: str
    token_id: str
    name: str | None = Field(description="The token's metadata name, when resolved.")
    venue: str = Field(
        description='"onchain" for an offer made on chain, else the marketplace that holds '
        'the signed order ("opensea").'
    )
    listed_at: str = Field(
        description="ISO 8601 time of the listing: the offer's block time, or when the "
        "marketplace says it was listed. The desk orders listings by it."
    )
    status: str | None = Field(
        description='An off-chain listing\'s status: "active", or, sent once by the stream '
        'when it leaves the book, "cancelled", "sold" or "expired" (drop it then). Null for '
        "an on-chain offer."
    )
    order_hash: str | None = Field(
        description="The off-chain order's hash (with venue, its identity); null on chain."
    )
    expires_at: str | None = Field(
        description="ISO 8601 time the off-chain listing expires; null on chain or if never."
    )
    block_number: int | None = Field(description="The offer's block; null off chain.")
    log_index: int | None = Field(description="The offer's log index; null off chain.")
    block_time: str | None = Field(description="The offer's block time; null off chain.")
    tx_hash: str | None = Field(description="The offer's transaction; null off chain.")
    seller: str | None = Field(
        description="Who lists the token: an off-chain listing's maker; for an on-chain offer, "
        "who held the token then (the recipient of its latest transfer before the offer), "
        "null if no such transfer is stored."
    )
    offered_to: str | None = Field(
        description="The only account the offer is open to; null: anyone."
    )
    price_wei: str | None = Field(
        description="Asking price in the currency's smallest unit, as a string."
    )
    currency: str = Field(description="ETH, WETH, or the ERC-20's address.")
    price_eth: float | None = Field(
        description="Asking price in ETH; null where no rate to ether is known."
    )
    image_url: str | None = Field(description="This API's route to the token's image.")
    valuation: ValuationOut | None = Field(description="The token's latest valuation, if any.")


class ListingsOut(BaseModel):
    listings: list[ListingOut] = Field(
        description="On-chain offers and active off-chain listings, newest first (listed_at)."
    )
    cursor: str = Field(
        description="Pass to /v1/listings/stream (cursor or Last-Event-ID) to get what follows."
    )


class IndexPointOut(BaseModel):
    day: str = Field(description="UTC day, YYYY-MM-DD; only days with sales have a point.")
    level_eth: float = Field(
        description="The index: an average-trait token's price in ETH at the day's close (the "
        "median of the last n_sales trait-adjusted sale prices up to its last sale)."
    )
    sales: int = Field(description="The day's sales behind the point (wash-flagged left out).")
    window_sales: int = Field(description="How many sales the day's level is the median of.")


class IndexOut(BaseModel):
    """A collection's daily price index (``valuation.index``)."""

    chain_id: int
    contract: str
    as_of: str = Field(description="ISO 8601 end of the index: only sales before it are read.")
    days: int = Field(description="The days the points cover, ending with as_of's day.")
    n_sales: int = Field(description="Sales in each day's level (the last N, however old).")
    trait_adjusted: bool = Field(
        description="Whether trait premia were fit (30+ sales); false: the level of raw prices."
    )
    sales_read: int = Field(description="Priced single-token ETH sales before as_of.")
    wash_excluded: dict[str, int] = Field(
        description="Sales left out as wash trades, per reason, plus their total as 'sales'."
    )
    points: list[IndexPointOut] = Field(description="One point per day with sales, oldest first.")


class AskOut(BaseModel):
    token_id: str
    price_wei: str = Field(description="The ask in wei of ether, as a string.")
    price_eth: float
    venue: str = Field(
        description='"on-chain offer" (a public offer in the collection\'s market contract) or '
        'the marketplace holding the signed order ("opensea").'
    )


class BidOut(BaseModel):
    price_wei: str = Field(description="The bid in wei of ether, as a string.")
    price_eth: float
    venue: str = Field(description='Where the bid stands ("on-chain bid").')
    bidder: str | None = Field(description="The bidding account, when stored.")


class OrdersOut(BaseModel):
    """What the market shows for the token now: the orders its valuation is bounded by."""

    chain_id: int
    contract: str
    token_id: str
    ask: AskOut | None = Field(
        description="The token's cheapest live ask, on chain or off; null when not listed."
    )
    bids: list[BidOut] = Field(description="Live bids on the token, highest first.")
    floor_ask: AskOut | None = Field(
        description="The collection's cheapest live ask (this token's included); null: none."
    )
