"""OpenSea's messages as :class:`store.orders.OrderEvent`: a Stream API event (the payload of
a ``collection:{slug}`` frame) and a listing of the REST book
(``GET /api/v2/listings/collection/{slug}/all``). Pure: dicts in, records out.

A Stream API event is ``{event_type, sent_at, payload: {item: {nft_id: "chain/contract/id",
chain: {name}}, collection: {slug}, order_hash, maker: {address}, base_price (item_listed,
item_cancelled) | sale_price (item_sold), payment_token: {address, symbol, decimals,
eth_price}, listing_date, expiration_date, closing_date, event_timestamp, ...}}``. A REST listing
is ``{order_hash, chain, price: {current: {currency, decimals, value}}, protocol_data:
{parameters: {offerer, offer: [{token, identifierOrCriteria}], consideration: [{itemType,
token}], startTime, endTime}}, status, ...}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from listeners.errors import FeedMessageError
from store.orders import OrderEvent

MARKETPLACE = "opensea"
ZERO_ADDRESS = "0x" + "0" * 40
# OpenSea's chain names -> chain ids (an item on another chain is skipped, not an error)
CHAINS: dict[str, int] = {
    "ethereum": 1,
    "matic": 137,
    "polygon": 137,
    "arbitrum": 42161,
    "optimism": 10,
    "base": 8453,
    "zora": 7777777,
    "blast": 81457,
    "sepolia": 11155111,
}
# the events that say something about a listing, and the status each one leaves it in
LISTING_EVENTS = {"item_listed": "active", "item_cancelled": "cancelled", "item_sold": "sold"}
# Seaport item types (protocol_data): 0 native currency, 1 ERC-20
_NATIVE = 0


def from_stream(message: Mapping[str, Any], now: dt.datetime) -> OrderEvent | None:
    """The order event a Stream API message carries; None for other event types (offers,
    transfers, metadata) and for private listings; FeedMessageError if a listing event lacks
    what it needs. ``now`` stands in for a missing event time."""
    kind = message.get("event_type")
    status = LISTING_EVENTS.get(kind) if isinstance(kind, str) else None
    if status is None:
        return None
    p = message.get("payload")
    if not isinstance(p, Mapping):
        raise FeedMessageError(f"{kind} without a payload", raw=message)
    if status == "active" and p.get("is_private"):
        return None  # reserved for one buyer: not a price the market can take
    try:
        chain_id, contract, token_id = _nft_id(_get(p, "item", "nft_id"))
        token = p.get("payment_token") or {}
        price = int(_get(p, "sale_price" if kind == "item_sold" else "base_price"))
        currency = _currency(str(token.get("address") or ZERO_ADDRESS), token.get("symbol"))
        event_at = _time(p.get("event_timestamp") or message.get("sent_at")) or now
        return OrderEvent(
            marketplace=MARKETPLACE,
            order_hash=_hash(_get(p, "order_hash")),
            status=status,
            chain_id=chain_id,
            contract=contract,
            token_id=token_id,
            price_wei=price,
            currency=currency,
            price_eth_wei=_in_ether(price, currency, token),
            maker=_address(_get(p, "maker", "address")),
            listed_at=_time(p.get("listing_date")) or event_at,
            expires_at=_time(p.get("expiration_date")),
            event_at=event_at,
        )
    except FeedMessageError:
        raise
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise FeedMessageError(f"{kind}: {type(exc).__name__}: {exc}", raw=message) from None


def from_rest(listing: Mapping[str, Any], now: dt.datetime) -> OrderEvent | None:
    """The active listing one REST book entry describes; None for one on an unknown chain or
    not active; FeedMessageError if it lacks what it needs."""
    if str(listing.get("status") or "ACTIVE").upper() != "ACTIVE":
        return None
    chain = CHAINS.get(str(listing.get("chain")))
    if chain is None:
        return None
    try:
        params = _get(listing, "protocol_data", "parameters")
        offered = params["offer"][0]
        current = _get(listing, "price", "current")
        pay = (params.get("consideration") or [{}])[0]
        if int(pay.get("itemType", _NATIVE)) == _NATIVE:
            currency = "ETH"
        else:
            currency = _currency(str(pay["token"]), current.get("currency"))
        price = int(current["value"])
        start = _epoch(params.get("startTime")) or now
        return OrderEvent(
            marketplace=MARKETPLACE,
            order_hash=_hash(listing["order_hash"]),
            status="active",
            chain_id=chain,
            contract=_address(offered["token"]),
            token_id=int(offered["identifierOrCriteria"]),
            price_wei=price,
            currency=currency,
            price_eth_wei=price if currency in ("ETH", "WETH") else None,
            maker=_address(params["offerer"]),
            listed_at=start,
            expires_at=_epoch(params.get("endTime")),
            event_at=start,
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise FeedMessageError(f"REST listing: {type(exc).__name__}: {exc}", raw=listing) from None


def _get(data: Mapping[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) is None:
            raise KeyError(".".join(path))
        value = value[key]
    return value


def _nft_id(value: Any) -> tuple[int, str, int]:
    parts = str(value).split("/")
    if len(parts) != 3:
        raise ValueError(f"nft_id {value!r} is not chain/contract/token")
    chain = CHAINS.get(parts[0])
    if chain is None:
        raise ValueError(f"unknown chain {parts[0]!r}")
    return chain, _address(parts[1]), int(parts[2])


def _address(value: Any) -> str:
    text = str(value).lower()
    if (
        len(text) != 42
        or not text.startswith("0x")
        or any(c not in "0123456789abcdef" for c in text[2:])
    ):
        raise ValueError(f"{value!r} is not an address")
    return text


def _hash(value: Any) -> str:
    text = str(value).lower()
    if len(text) != 66 or not text.startswith("0x"):
        raise ValueError(f"{value!r} is not a 32-byte hash")
    int(text, 16)
    return text


def _currency(address: str, symbol: Any) -> str:
    address = _address(address)
    if address == ZERO_ADDRESS:
        return "ETH"
    if symbol == "WETH":
        return "WETH"
    return address


def _in_ether(price: int, currency: str, token: Mapping[str, Any]) -> int | None:
    if currency in ("ETH", "WETH"):
        return price
    rate, decimals = token.get("eth_price"), token.get("decimals")
    if rate in (None, "") or decimals is None:
        return None
    # eth_price: ether per whole unit of the token
    return int(Decimal(price) * Decimal(str(rate)) * Decimal(10) ** (18 - int(decimals)))


def _time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _epoch(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    return dt.datetime.fromtimestamp(int(value), dt.UTC)
