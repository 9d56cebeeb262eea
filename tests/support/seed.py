"""Rows for the API, desk and valuation tests (and the API benchmark): a collection's tokens
with their stored media, sales, listings and valuations, and a token's live order book (on-chain
offers, bids and withdrawals; marketplace asks).

Every value is a keyword whose default is what ``test_api.py`` seeds; the desk page, the fuzz
run and the benchmark pass their own (a real PNG, another contract, another marketplace).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from store import orders, valuations
from store.models import Listing, Sale, Token
from store.vectors import store_media

KEY = "desk-key-0123456789"  # the key the in-process API apps of test_api*.py accept
CHAIN = 1
CONTRACT = "0x" + "ab" * 20
WEI = 10**18
PNG = b"\x89PNG\r\n\x1a\n" + b"fake image bytes"
OWNER = "0x" + "11" * 20
SELLER = "0x" + "22" * 20
BUYER = "0x" + "33" * 20
LISTER = "0x" + "44" * 20
LISTED_FROM = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)
ZERO = "0x" + "0" * 40  # an on-chain offer's buyer when anyone may buy
MAKER = "0x" + "55" * 20  # the maker of marketplace_ask's marketplace asks


def sha(i: int) -> str:
    """The image hash ``add_token`` stores for token ``i`` by default."""
    return hashlib.sha256(f"image {i}".encode()).hexdigest()


def add_token(
    session: Session,
    token_id: int,
    contract: str = CONTRACT,
    *,
    chain_id: int = CHAIN,
    name: str | None = None,
    image: bytes | None = None,
    image_sha256: str | None = None,
    size: tuple[int, int] = (4, 4),
    attributes: list[dict[str, str]] | None = None,
    image_uri: str | None = "ipfs://cid/{}.png",
    **extra: Any,
) -> None:
    """A resolved token with its image stored: by default "Thing #i" with a Cap, the bytes
    ``PNG + [i % 256]`` under ``sha(i)``, and ``ipfs://cid/i.png`` (``image_uri`` is a template
    for the token id; ``None``: no URI).
    ``extra`` goes to the ``Token`` row as it is (counts, last sale, ...)."""
    digest = image_sha256 if image_sha256 is not None else sha(token_id)
    content = image if image is not None else PNG + bytes([token_id % 256])
    store_media(session, digest, "image/png", size[0], size[1], content)
    session.add(
        Token(
            chain_id=chain_id,
            contract=contract,
            token_id=Decimal(token_id),
            owner=OWNER,
            metadata_status="ok",
            metadata_json={"name": name if name is not None else f"Thing #{token_id}"},
            attributes=attributes
            if attributes is not None
            else [{"trait_type": "Hat", "value": "Cap"}],
            image_uri=image_uri.format(token_id) if image_uri is not None else None,
            image_sha256=digest,
            **extra,
        )
    )


def add_sale(
    session: Session,
    token_id: int,
    eth: float,
    at: dt.datetime,
    n: int,
    *,
    contract: str = CONTRACT,
    chain_id: int = CHAIN,
    first_block: int = 100,
    tx_offset: int = 1000,
    log_index: int | None = None,
    marketplace: str = "test",
    seller: str | None = None,
    buyer: str | None = None,
) -> None:
    """Sale number ``n``: block ``first_block + n`` (hash ``n``), transaction ``n + tx_offset``,
    log index ``n`` unless given; from SELLER to BUYER unless given."""
    session.add(
        Sale(
            chain_id=chain_id,
            block_number=first_block + n,
            block_hash="0x" + f"{n:064x}",
            tx_hash="0x" + f"{n + tx_offset:064x}",
            log_index=n if log_index is None else log_index,
            block_time=at,
            contract=contract,
            token_id=Decimal(token_id),
            seller=SELLER if seller is None else seller,
            buyer=BUYER if buyer is None else buyer,
            price_wei=Decimal(int(eth * WEI)),
            marketplace=marketplace,
        )
    )


def add_listing(
    session: Session,
    token_id: int,
    block: int,
    eth: float,
    log_index: int = 0,
    *,
    contract: str = CONTRACT,
    chain_id: int = CHAIN,
    tx: int | None = None,
    since: dt.datetime = LISTED_FROM,
    account: str = LISTER,
) -> None:
    """An offer at ``block``, listed ``block`` minutes after ``since``; its transaction is
    ``block * 100 + log_index`` unless given."""
    session.add(
        Listing(
            chain_id=chain_id,
            block_number=block,
            block_hash="0x" + f"{block:064x}",
            tx_hash="0x" + f"{block * 100 + log_index if tx is None else tx:064x}",
            log_index=log_index,
            block_time=since + dt.timedelta(minutes=block),
            contract=contract,
            token_id=Decimal(token_id),
            kind="offered",
            price_wei=Decimal(int(eth * WEI)),
            account=account,
        )
    )


def add_valuation(
    session: Session,
    token_id: int,
    price: float,
    *,
    contract: str = CONTRACT,
    chain_id: int = CHAIN,
    model_version: str = "test-1",
    p_liquid: float = 0.7,
    low: float | None = None,
    high: float | None = None,
    confidence: float = 0.6,
    explanation: dict[str, Any] | None = None,
) -> int:
    """A stored valuation (its id): the interval is ``price * 0.8 .. price * 1.25`` unless
    given."""
    return valuations.store_valuation(
        session,
        chain_id=chain_id,
        contract=contract,
        token_id=Decimal(token_id),
        model_version=model_version,
        p_liquid=p_liquid,
        price_eth=price,
        price_low_eth=price * 0.8 if low is None else low,
        price_high_eth=price * 1.25 if high is None else high,
        confidence=confidence,
        explanation=(
            {"method": "test", "drivers": ["Hat: Cap"]} if explanation is None else explanation
        ),
        inputs={},
    )


def add_order(
    session: Session,
    token_id: int,
    block: int,
    kind: str,
    eth: float | None,
    account: str,
    *,
    contract: str = CONTRACT,
    chain_id: int = CHAIN,
) -> None:
    """An on-chain order for the token's live book, stamped now: ``kind`` ``offered`` (to
    ``account``; ZERO: to anyone), ``bid`` (by ``account``) or ``withdrawn`` (``eth=None``: no
    price). Block ``block`` (its hash), transaction ``block + 10**6``, log index 0."""
    session.add(
        Listing(
            chain_id=chain_id,
            block_number=block,
            block_hash=f"0x{block:064x}",
            tx_hash=f"0x{block + 10**6:064x}",
            log_index=0,
            block_time=dt.datetime.now(dt.UTC),
            contract=contract,
            token_id=Decimal(token_id),
            kind=kind,
            price_wei=None if eth is None else Decimal(int(eth * WEI)),
            account=account,
        )
    )


def marketplace_ask(
    token_id: int,
    eth: float,
    tag: str = "ab",
    *,
    contract: str = CONTRACT,
    chain_id: int = CHAIN,
) -> orders.OrderEvent:
    """An active OpenSea ask in ETH by MAKER, listed now, never expiring; its order hash is
    ``tag`` 32 times. For ``orders.record``."""
    now = dt.datetime.now(dt.UTC)
    return orders.OrderEvent(
        marketplace="opensea",
        order_hash="0x" + tag * 32,
        status="active",
        chain_id=chain_id,
        contract=contract,
        token_id=token_id,
        price_wei=int(eth * WEI),
        currency="ETH",
        price_eth_wei=int(eth * WEI),
        maker=MAKER,
        listed_at=now,
        expires_at=None,
        event_at=now,
    )
