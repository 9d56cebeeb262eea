"""Embedding stored images: the one path behind the embed queue's batches and the urgent
valuation's single image."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from store.vectors import media_content, missing_embeddings, store_embeddings
from worker.context import WorkerContext

log = logging.getLogger(__name__)

EMBED_CHUNK = 32  # images per model call
DECODE_THREADS = 4  # PNG/GIF decoding and SVG rendering release the GIL for most of their work


def embed_stored(ctx: WorkerContext, extractors: Sequence[str], sha256s: Sequence[str]) -> int:
    """Embed stored images with each of ``extractors`` where they are not yet; returns how many
    vectors it stored.

    One read (what is missing, then those images' bytes), decoding in a thread pool that runs
    ahead of the model chunk by chunk, and one write transaction for every vector. An image
    that no longer decodes is logged and skipped. Each extractor is loaded once per process
    (``ctx.extractor``)."""
    from concurrent.futures import ThreadPoolExecutor
    from itertools import islice

    from nftvision.extractors.base import chunks
    from tokenmeta.media import decode_media

    names = list(extractors)
    with ctx.factory() as session:
        todo = {n: set(missing_embeddings(session, n, sha256s)) for n in names}
        wanted = [s for s in dict.fromkeys(sha256s) if any(s in t for t in todo.values())]
        contents = media_content(session, wanted) if wanted else {}
    shas = [s for s in wanted if s in contents]
    if not shas:
        return 0

    def decode(sha: str) -> Any:
        try:
            return decode_media(contents[sha]).image
        except Exception as exc:  # stored media decoded once already; record and move on
            log.warning("image %s no longer decodes: %s", sha, exc)
            return None

    models = {n: ctx.extractor(n) for n in names}
    rows: dict[str, list[tuple[str, Any]]] = {n: [] for n in names}
    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="embed-decode") as pool:
        decoded = pool.map(decode, shas)  # submitted at once: decoding runs ahead of the model
        for part in chunks(shas, EMBED_CHUNK):
            ready = zip(part, islice(decoded, len(part)), strict=True)
            images = {s: im for s, im in ready if im is not None}
            for n in names:
                keys = [s for s in images if s in todo[n]]
                if keys:
                    vectors = models[n].embed([images[s] for s in keys], batch_size=EMBED_CHUNK)
                    rows[n].extend(zip(keys, vectors, strict=True))
    for n in names:
        if rows[n]:
            ctx.ensure_index(n, models[n].dim)
    with ctx.factory.begin() as session:
        return sum(
            store_embeddings(session, n, models[n].weights, models[n].preprocess_version, rows[n])
            for n in names
        )
