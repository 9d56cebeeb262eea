"""End to end, from stored image bytes to stored vectors, against the model alone.

    python bench/bench_embed_e2e.py [--images 512] [--task-size 64] [--extractor NAME ...]

Real images: the Moonbirds and Nouns PNG files of the shared data folder (``--data``), topped up
with CryptoPunks re-encoded as PNG, stored as media rows in an embedded Postgres. Three timings
per extractor, best of ``--repeat``:

- model only: ``extractor.embed`` on images decoded beforehand (what the model alone costs);
- serial: read bytes, decode every image, embed, store (the pipeline without overlap);
- worker: ``worker.tasks.embed_batch`` in tasks of ``--task-size`` hashes (decoding in a thread
  pool ahead of the model, one read and one write transaction per task).

Printed as images/s and as the ratio model-only time / end-to-end time (1.0 = the pipeline adds
nothing to the model).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import text

from nftvision.datasets import load_cryptopunks
from nftvision.errors import MissingWeights
from nftwatch.localstack.embedded import EmbeddedPostgres
from store.db import make_engine, make_sessionmaker, upgrade
from store.vectors import media_content, missing_embeddings, store_embeddings, store_media
from tokenmeta.media import decode_media
from worker.config import WorkerConfig
from worker.context import WorkerContext
from worker.tasks import embed_batch

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def image_bytes(data: Path, n: int) -> list[bytes]:
    files = sorted((data / "moonbirds").glob("*.png")) + sorted((data / "nouns").glob("*.png"))
    out = [f.read_bytes() for f in files][:n]
    for punk in load_cryptopunks()[: max(0, n - len(out))]:
        buf = io.BytesIO()
        punk.image.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def best_of(fn: Callable[[], object], reset: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        reset()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--task-size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--extractor", action="append", default=None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--database-url", default=None, help="default: a throwaway embedded Postgres")
    args = ap.parse_args(argv)
    names = args.extractor or ["effnet-lite0-v1", "resnet50-v1", "resnet50-v1:random"]

    blobs = image_bytes(args.data, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.database_url else EmbeddedPostgres(Path(tmp), persistent=False)
        url = args.database_url or server.start()  # type: ignore[union-attr]
        try:
            upgrade(url)
            run(url, blobs, names, args.task_size, args.repeat)
        finally:
            if server is not None:
                server.stop()
    return 0


def run(url: str, blobs: list[bytes], names: list[str], task_size: int, repeat: int) -> None:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    shas = [hashlib.sha256(b).hexdigest() for b in blobs]
    with factory.begin() as s:
        for sha, b in zip(shas, blobs, strict=True):
            with Image.open(io.BytesIO(b)) as im:
                w, h = im.size
            store_media(s, sha, "image/png", w, h, b)
    decoded = [decode_media(b).image for b in blobs]
    print(f"{len(blobs)} images ({len(set(shas))} distinct), tasks of {task_size}")
    print(
        f"{'extractor':<20} {'model img/s':>11} {'serial img/s':>12} {'worker img/s':>12} "
        f"{'serial ratio':>12} {'worker ratio':>12}"
    )
    for name in names:
        ctx = WorkerContext(
            WorkerConfig(database_url=url, broker_url="memory://", extractors=(name,))
        )
        try:
            model: Any = ctx.extractor(name)
        except MissingWeights as exc:  # measured only where its weights are installed
            print(f"{name:<20} skipped: {exc}")
            continue
        if hasattr(model, "warm_up"):  # a CNN compiles now, as a long-running worker has
            model.warm_up()
        model.embed(decoded[:32])  # warm-up: weights resident, kernels built

        ctx.ensure_index(name, model.dim)  # both pipelines pay the HNSW inserts, as in service

        def clear() -> None:  # TRUNCATE empties the index too, so no run walks dead entries
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE embeddings"))

        def serial(n: str = name, m: Any = model) -> None:
            with factory() as s:
                contents = media_content(s, shas)
            images = [decode_media(contents[h]).image for h in shas]
            vecs = m.embed(images)
            with factory.begin() as s:
                store_embeddings(
                    s,
                    n,
                    m.weights,
                    m.preprocess_version,
                    zip(shas, vecs, strict=True),
                )

        def worker(c: WorkerContext = ctx) -> None:
            for i in range(0, len(shas), task_size):
                embed_batch(c, shas[i : i + task_size])

        def model_only(m: Any = model) -> None:
            m.embed(decoded)

        t_model = best_of(model_only, lambda: None, repeat)
        t_serial = best_of(serial, clear, repeat)
        t_worker = best_of(worker, clear, repeat)
        with factory() as s:
            stored = len(shas) - len(missing_embeddings(s, name, shas))
        assert stored == len(set(shas)), f"{name}: stored {stored} of {len(set(shas))}"
        n = len(shas)
        print(
            f"{name:<20} {n / t_model:>11.1f} {n / t_serial:>12.1f} {n / t_worker:>12.1f} "
            f"{t_model / t_serial:>12.2f} {t_model / t_worker:>12.2f}"
        )
        ctx.engine.dispose()
    engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
