"""The desk page in headless Chromium against the real API on a loopback port: what a person sees
after entering a listed token with a bid and a wash-flagged sale (its valuation, the ask, the
bids, the collection's floor, the collateral value and guards, the wash flag, the collection's
daily index), and a new listing arriving without a reload."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from nftwatch.api import create_app
from nftwatch.localstack.embedded import free_port
from store import tokens
from store.models import Listing
from tests.support import seed

CHROMIUM = "/usr/bin/chromium"
INSTALL = "apt-get update && apt-get install -y chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "desk-browser-key"
CHAIN = 1
CONTRACT = "0x" + "b4" * 20
NEIGHBOURS = [2, 3, 4, 5, 6, 7]
SALES = [
    (dt.datetime(2024, 1, 10, tzinfo=dt.UTC), 2.5),
    (dt.datetime(2024, 3, 2, tzinfo=dt.UTC), 3.1),
]
SALES += [(dt.datetime(2024, 5, 20, tzinfo=dt.UTC), 2.9)]
ZERO = "0x" + "00" * 20
BIDDER = "0x" + "77" * 20
INDEX_DAYS = 14  # the collection's recent market: a sale a day of the neighbours


def png(token_id: int) -> bytes:
    """A small distinct picture per token: a coloured face on a plain background."""
    img = Image.new("RGB", (24, 24), (60 + 20 * (token_id % 8), 90, 140))
    for x in range(6, 18):
        for y in range(5, 20):
            img.putpixel((x, y), (220, 180 - 10 * (token_id % 6), 140))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def add_token(session: Session, token_id: int) -> None:
    seed.add_token(
        session,
        token_id,
        CONTRACT,
        name=f"Punkish #{token_id}",
        image=png(token_id),
        image_sha256=f"{token_id:064x}",
        size=(24, 24),
        image_uri=None,
        sale_count=len(SALES) if token_id == 1 else 1,
        transfer_count=len(SALES) + 1 if token_id == 1 else 1,
    )


def add_sale(session: Session, token_id: int, at: dt.datetime, eth: float, n: int) -> None:
    # the latest sale of token 1 is a self-trade: the page flags it as a wash
    wash = token_id == 1 and n == len(SALES) - 1
    seed.add_sale(
        session,
        token_id,
        eth,
        at,
        n,
        contract=CONTRACT,
        tx_offset=500,
        log_index=0,
        marketplace="punkmarket",
        buyer=seed.SELLER if wash else None,
    )


def add_valuation(session: Session, token_id: int, price: float, p_liquid: float) -> int:
    return seed.add_valuation(
        session,
        token_id,
        price,
        contract=CONTRACT,
        model_version="punks-ridge-3",
        p_liquid=p_liquid,
        low=round(price * 0.8, 4),
        high=round(price * 1.3, 4),
        confidence=0.55,
        explanation={
            "model": {"version": "punks-ridge-3"},
            "market": {"median_30d_eth": 2.8, "sales_30d": 41},
            "drivers": [
                {"feature": "Hat=Cap", "log_effect": 0.12},
                {"feature": "rarity_score", "log_effect": -0.05},
            ],
            "rarity": {"rank": 3, "of": 9},
            "stack": [
                {"input": "level", "value_eth": 2.75, "weight": 0.6, "missing": False},
                {"input": "hedonic_knn", "value_eth": 3.9, "weight": 0.4, "missing": False},
                {"input": "median_1d", "value_eth": 2.75, "weight": 0.0, "missing": True},
            ],
            "visual_neighbours": [
                {
                    "token_id": str(n),
                    "similarity": 0.95 - 0.01 * n,
                    "last_sale_eth": 2.0 + n / 10,
                    # the newest comparable sale: n days before now
                    "last_sale_time": (dt.datetime.now(dt.UTC) - dt.timedelta(days=n)).isoformat(),
                }
                for n in NEIGHBOURS
            ],
        },
    )


def add_listing(session: Session, token_id: int, block: int, eth: float) -> None:
    """A public offer (open to anyone): the token's live ask."""
    seed.add_listing(
        session,
        token_id,
        block,
        eth,
        contract=CONTRACT,
        tx=block + 9000,
        since=dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
        account=ZERO,
    )


def add_bid(session: Session, token_id: int, block: int, eth: float) -> None:
    session.add(
        Listing(
            chain_id=CHAIN,
            block_number=block,
            block_hash="0x" + f"{block:064x}",
            tx_hash="0x" + f"{block + 9000:064x}",
            log_index=1,
            block_time=dt.datetime(2024, 6, 2, tzinfo=dt.UTC),
            contract=CONTRACT,
            token_id=Decimal(token_id),
            kind="bid",
            price_wei=Decimal(int(eth * seed.WEI)),
            account=BIDDER,
        )
    )


def add_market(session: Session) -> None:
    """The neighbours' recent sales, a sale a day, each between a new pair of wallets and no
    token sold three times in a week (no wash flag): the collection's daily index."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=INDEX_DAYS + 1)
    for day in range(INDEX_DAYS):
        n = 10 + day
        seed.add_sale(
            session,
            NEIGHBOURS[day % len(NEIGHBOURS)],
            2.0 + day / 10,
            start + dt.timedelta(days=day),
            n,
            contract=CONTRACT,
            tx_offset=500,
            seller=f"0x{2 * n:040x}",
            buyer=f"0x{2 * n + 1:040x}",
        )


@pytest.fixture
def server(factory: sessionmaker[Session]) -> Iterator[str]:
    app = create_app(factory, api_keys=[KEY], chain_id_default=CHAIN)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium with `{INSTALL}`")
    return CHROMIUM


def _wait_until_true(page: Any, expression: str, timeout: float) -> None:
    """Poll a JavaScript expression from Python. ``page.wait_for_function`` polls with ``eval``
    inside the page once its first check fails, which the desk's CSP (no 'unsafe-eval')
    rightly refuses; ``page.evaluate`` goes through the DevTools protocol instead."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after the timeout: {expression}"
        time.sleep(0.1)


def test_desk_page_shows_a_valuation_and_a_new_listing_live(
    factory: sessionmaker[Session], server: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = chromium()
    with factory.begin() as s:
        tokens.upsert_collection(s, CHAIN, CONTRACT, name="Punkish")
        for i in [1, *NEIGHBOURS, 8]:
            add_token(s, i)
        for n, (at, eth) in enumerate(SALES):
            add_sale(s, 1, at, eth, n)
        add_listing(s, 1, 10, 3.5)
        add_bid(s, 1, 12, 2.9)
        add_market(s)
        add_valuation(s, 1, 3.2, 0.64)
    index = httpx.get(
        f"{server}/v1/collections/{CHAIN}/{CONTRACT}/index?days=365", headers={"X-API-Key": KEY}
    ).json()["points"]
    assert len(index) >= INDEX_DAYS - 3  # the first days have too few sales for a level

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server + "/")
            page.fill("#api-key", KEY)
            page.click("#key-form button")
            # the listing feed loads with the existing offer and its valuation
            feed = page.locator("#listings li")
            expect(feed).to_have_count(1)
            expect(feed.first).to_contain_text("Punkish #1")
            expect(feed.first).to_contain_text("3.20 ETH")
            expect(page.locator("#live-text")).to_have_text("live")

            page.fill("#contract", CONTRACT)
            page.fill("#token-id", "1")
            page.click("#lookup-go")
            expect(page.locator("#token-title")).to_have_text("Punkish #1")
            expect(page.locator("#facts")).to_contain_text("wash-flagged1 of 3 sales (self_trade)")
            expect(page.locator("#val-price")).to_have_text("3.20 ETH")
            expect(page.locator("#val-interval")).to_have_text("80 % interval 2.56 ETH – 4.16 ETH")
            expect(page.locator("#val-pliquid")).to_have_text("64 %")
            # the stack's inputs, each with its weight
            expect(page.locator("#why")).to_contain_text("hedonic knn × 0.403.900 ETH")
            expect(page.locator("#why")).to_contain_text("median 1d × 0.00no data")
            expect(page.locator("#val-confidence")).to_have_text("55 %")
            # lend against: the low end 2.56 less 10 % + 30 % x (1 - 0.64) = 20.8 %
            expect(page.locator("#val-collateral")).to_have_text("2.03 ETH")
            expect(page.locator("#val-guards")).to_have_text("haircut 21 % · newest sale 2 d ago")
            # what the market shows now: the ask, the bid, the collection's floor (this token)
            expect(page.locator("#val-ask")).to_have_text("3.50 ETH")
            expect(page.locator("#val-ask-venue")).to_have_text("on-chain offer")
            expect(page.locator("#val-bids")).to_have_text("bid 2.90 ETH (0x7777…7777)")
            expect(page.locator("#val-floor")).to_have_text(
                "collection floor 3.50 ETH (#1, on-chain offer)"
            )
            # the wash-flagged sale is marked on the trade history too
            expect(page.locator("#chart svg circle.pt.wash")).to_have_count(1)
            # the collection's daily index: one point per day the API gives, at its level
            dots = page.locator("#index-chart svg circle.index-pt")
            expect(dots).to_have_count(len(index))
            levels = [
                float(dots.nth(i).get_attribute("data-level") or "nan") for i in range(len(index))
            ]
            assert levels == pytest.approx([p["level_eth"] for p in index])
            expect(page.locator("#index-chart svg path.index-line")).to_have_count(1)
            expect(page.locator("#index-sub")).to_contain_text("median of the last 20 sales")
            _wait_until_true(
                page, "document.getElementById('token-image').naturalWidth > 0", timeout=10_000
            )
            comps = page.locator("#comparables .comp")
            expect(comps).to_have_count(len(NEIGHBOURS))
            _wait_until_true(
                page,
                "[...document.querySelectorAll('#comparables img')]"
                ".filter(i => i.complete && i.naturalWidth > 0).length === " + str(len(NEIGHBOURS)),
                timeout=10_000,
            )
            expect(comps.nth(0)).to_contain_text("#2")
            expect(comps.nth(0)).to_contain_text("last 2.20 ETH")
            points = page.locator("#chart svg circle.pt")
            expect(points).to_have_count(len(SALES))
            prices = [float(points.nth(i).get_attribute("data-price") or "nan") for i in range(3)]
            assert prices == [eth for _, eth in SALES]
            expect(page.locator("#why")).to_contain_text("Hat=Cap")
            page.screenshot(path=str(tmp_path / "desk.png"), full_page=True)
            if shot := os.environ.get("DESK_SCREENSHOT"):
                shutil.copy(tmp_path / "desk.png", shot)

            # a new offer arrives on chain, then its valuation: both show up without a reload
            page.evaluate("window.__sameDocument = true")
            with factory.begin() as s:
                add_listing(s, 8, 11, 6.0)
            expect(feed).to_have_count(2)
            expect(feed.first).to_contain_text("Punkish #8")
            expect(feed.first).to_contain_text("valuing…")
            with factory.begin() as s:
                add_valuation(s, 8, 5.4, 0.31)
            expect(feed.first).to_contain_text("5.40 ETH")
            expect(feed.first).to_contain_text("P(liquid) 31 %")
            assert page.evaluate("window.__sameDocument") is True
            _wait_until_true(
                page, "document.querySelector('#listings li img').naturalWidth > 0", timeout=10_000
            )
        finally:
            browser.close()
