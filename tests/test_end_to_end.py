"""The demo's whole job at small scale, on real components: anvil with our contracts, a local
IPFS gateway, Postgres + pgvector, the machine's Redis as broker and real Celery worker
processes. Asserts the rows the pipeline stored."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from nftwatch.demo.run import CHAIN_ID, run_story
from nftwatch.localstack import chaintools
from nftwatch.localstack.embedded import Anvil
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from nftwatch.settings import Settings
from store.models import Embedding, Listing, Media, Outbox, Sale, Token, Transfer, Valuation

TOKENS = 4


@pytest.mark.timeout(900)
def test_demo_story_end_to_end_on_redis(
    db_url: str, redis_url: str, redis_prefix: str, gateway: LocalIpfsGateway, tmp_path: Path
) -> None:
    anvil = Anvil(chain_id=CHAIN_ID)
    anvil.start()
    try:
        settings = Settings(
            data_dir=tmp_path, redis_key_prefix=f"{redis_prefix}{uuid.uuid4().hex[:6]}:"
        )
        summary = run_story(
            database_url=db_url,
            broker_url=redis_url,
            node=anvil,
            gateway=gateway,
            settings=settings,
            tokens_per_collection=TOKENS,
            work_dir=tmp_path,
            out_dir=tmp_path,
            console=Console(quiet=True),
            timeout=600,
            listed=2,
        )
        w3 = chaintools.connect(anvil.url)
        engine = create_engine(db_url)
        with Session(engine) as s:
            tokens = s.scalars(select(Token)).all()
            assert len(tokens) == 5 * TOKENS
            assert {t.metadata_status for t in tokens} == {"ok"}
            # every token's owner is the owner on chain
            for t in tokens:
                standard = "PunkMarket" if _is_punk(s, t) else "DemoNFT"
                contract = chaintools.at(w3, standard, t.contract)
                fn = "punkIndexToAddress" if standard == "PunkMarket" else "ownerOf"
                on_chain = getattr(contract.functions, fn)(int(t.token_id)).call()
                assert t.owner == on_chain.lower()
                assert t.attributes and t.image_sha256
            mints = s.scalar(select(func.count()).where(Transfer.is_mint))
            assert mints == 5 * TOKENS
            sales = s.scalar(select(func.count()).select_from(Sale))
            assert sales == summary["scenario"]["sales"]
            assert all(p > 0 for p in s.scalars(select(Sale.price_wei)))
            # derived counts equal the events
            assert sum(t.sale_count for t in tokens) == sales
            assert sum(t.transfer_count for t in tokens) == s.scalar(
                select(func.count()).where(Transfer.is_mint.is_(False))
            )
            assert s.scalar(select(func.count()).where(Listing.kind == "offered")) >= 2
            images = s.scalar(select(func.count()).select_from(Media))
            assert images == len({t.image_sha256 for t in tokens})
            per_extractor = dict(
                s.execute(
                    select(Embedding.extractor, func.count()).group_by(Embedding.extractor)
                ).all()
            )
            assert per_extractor == {name: images for name in settings.extractors}
            assert s.scalar(select(func.count()).where(Outbox.sent_at.is_(None))) == 0
            listed = s.scalars(
                select(Valuation).where(Valuation.inputs["reason"].astext == "listing")
            ).all()
            assert len(listed) >= 2
            for v in listed:
                assert v.price_eth is not None and v.price_eth > 0
                assert v.price_low_eth <= v.price_eth <= v.price_high_eth
                assert 0.0 <= v.p_liquid <= 1.0
                assert v.explanation["visual_neighbours"]
        engine.dispose()
        assert summary["heatmap"] and Path(summary["heatmap"]).stat().st_size > 0
        assert len(summary["similarity"]) == len(settings.extractors)
    finally:
        anvil.stop()


def _is_punk(s: Session, token: Token) -> bool:
    from store.models import Collection

    standard = s.scalar(
        select(Collection.standard).where(
            Collection.chain_id == token.chain_id, Collection.address == token.contract
        )
    )
    return standard == "cryptopunks"
