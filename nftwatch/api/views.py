"""Rows to JSON bodies. Pure: token ids and wei amounts travel as decimal strings (they exceed
JSON's safe integers), prices also as ETH floats for people."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from store.chain.token_delta import ZERO_ADDRESS
from store.listings import ListedToken
from store.models import OffchainListing, Sale, Token, Valuation
from store.vectors import Neighbour
from valuation.collateral import collateral
from valuation.sales import SaleRecord
from valuation.wash import WashPolicy, flag_sales

WEI = Decimal(10**18)
# the venue of an offer made on chain, in a marketplace contract (off chain: the marketplace)
ONCHAIN = "onchain"


def eth(wei: Decimal | int | None) -> float | None:
    return None if wei is None else float(Decimal(wei) / WEI)


def when(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def sale_body(sale: Sale, wash_flags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "block_number": sale.block_number,
        "block_time": when(sale.block_time),
        "tx_hash": sale.tx_hash,
        "log_index": sale.log_index,
        "seller": sale.seller,
        "buyer": sale.buyer,
        "price_wei": str(int(sale.price_wei)),
        "price_eth": eth(sale.price_eth_wei),
        "currency": sale.currency,
        "marketplace": sale.marketplace,
        "inferred": sale.inferred,
        "bundle_size": sale.bundle_size,
        "wash_flags": list(wash_flags),
    }


# A token page holds the token's own sales only: the rules that need the collection's level
# (off_level_quiet) wait for the model, which flags with every sale in view.
_TOKEN_PAGE_WASH = WashPolicy(outliers=False)


def token_wash_flags(sales: list[Sale]) -> list[tuple[str, ...]]:
    """Each of the token's sales' wash flags (``valuation.wash``), in the order given."""
    records = [
        SaleRecord(
            time=s.block_time,
            token_id=int(s.token_id),
            price_eth=eth(s.price_eth_wei) or 0.0,
            seller=s.seller,
            buyer=s.buyer,
            tx_hash=s.tx_hash,
            marketplace=s.marketplace,
        )
        for s in sales
    ]
    return flag_sales(records, _TOKEN_PAGE_WASH)


def token_body(token: Token, sales: list[Sale], image_path: str | None) -> dict[str, Any]:
    return {
        "chain_id": token.chain_id,
        "contract": token.contract,
        "token_id": str(int(token.token_id)),
        "owner": token.owner,
        "minted_block": token.minted_block,
        "transfer_count": token.transfer_count,
        "sale_count": token.sale_count,
        "last_sale": None
        if token.last_sale_wei is None
        else {
            "price_wei": str(int(token.last_sale_wei)),
            "price_eth": eth(token.last_sale_wei),
            "at": when(token.last_sale_at),
        },
        "metadata_status": token.metadata_status,
        "token_uri": token.token_uri,
        "metadata": token.metadata_json,
        "attributes": token.attributes,
        "image": {
            "uri": token.image_uri,
            "sha256": token.image_sha256,
            "url": image_path if token.image_sha256 else None,
        },
        "error": None
        if token.error_class is None
        else {"class": token.error_class, "message": token.error_message},
        "resolved_at": when(token.resolved_at),
        "sales": [sale_body(s, f) for s, f in zip(sales, token_wash_flags(sales), strict=True)],
    }


def valuation_body(v: Valuation) -> dict[str, Any]:
    guards = collateral(
        price_eth=v.price_eth,
        low_eth=v.price_low_eth,
        p_liquid=v.p_liquid,
        valued_at=v.valued_at,
        explanation=v.explanation or {},
    )
    return {
        "id": v.id,
        "chain_id": v.chain_id,
        "contract": v.contract,
        "token_id": str(int(v.token_id)),
        "valued_at": when(v.valued_at),
        "model_version": v.model_version,
        "price_eth": v.price_eth,
        "interval_eth": [v.price_low_eth, v.price_high_eth],
        "p_liquid": v.p_liquid,
        "confidence": v.confidence,
        "collateral": guards.to_dict(),
        "explanation": v.explanation,
    }


def neighbour_body(n: Neighbour) -> dict[str, Any]:
    return {
        "chain_id": n.chain_id,
        "contract": n.contract,
        "token_id": str(n.token_id),
        "image_sha256": n.image_sha256,
        "similarity": n.similarity,
        "sale_count": n.sale_count,
        "transfer_count": n.transfer_count,
        "last_sale_eth": eth(n.last_sale_wei),
        "last_sale_at": when(n.last_sale_at),
    }


def listing_body(x: ListedToken) -> dict[str, Any]:
    """An on-chain offer or an off-chain listing in one shape: the block fields are null off
    chain, the order's fields (order hash, expiry, status) null on chain."""
    listing = x.listing
    token_id = str(int(listing.token_id))
    path = f"{listing.chain_id}/{listing.contract}/{token_id}"
    common = {
        "chain_id": listing.chain_id,
        "contract": listing.contract,
        "token_id": token_id,
        "name": x.name,
        "listed_at": when(x.listed_at),
        "seller": x.seller,
        "image_url": f"/v1/tokens/{path}/image" if x.has_image else None,
        "valuation": None if x.valuation is None else valuation_body(x.valuation),
    }
    if isinstance(listing, OffchainListing):
        return {
            **common,
            "venue": listing.marketplace,
            "order_hash": listing.order_hash,
            "status": listing.status,
            "expires_at": when(listing.expires_at),
            "block_number": None,
            "log_index": None,
            "block_time": None,
            "tx_hash": None,
            "offered_to": None,
            "price_wei": str(int(listing.price_wei)),
            "currency": listing.currency,
            "price_eth": eth(listing.price_eth_wei),
        }
    return {
        **common,
        "venue": ONCHAIN,
        "order_hash": None,
        "status": None,
        "expires_at": None,
        "block_number": listing.block_number,
        "log_index": listing.log_index,
        "block_time": when(listing.block_time),
        "tx_hash": listing.tx_hash,
        "offered_to": None if listing.account == ZERO_ADDRESS else listing.account,
        "price_wei": None if listing.price_wei is None else str(int(listing.price_wei)),
        "currency": "ETH",
        "price_eth": eth(listing.price_wei),
    }
