"""Pixels, ImageNet features and the NFT-trained nft-ssl extractors, side by side, inside
collections.

    python bench/similarity_ssl.py --moonbirds DATA/moonbirds-10k [--per-group 300] [--json]

Only HELD-OUT tokens (:mod:`nftvision.ssl.holdout`; nft-ssl never trained on them) are
embedded. Groupings: CryptoPunks by type and by accessory count, Moonbirds by Body, Eyes and
Headwear; groups under ``--min-group`` tokens are dropped, larger ones sampled (seeded) to
``--per-group``. Per extractor and grouping: centred d′ and balanced 1-NN accuracy
(:func:`nftvision.similarity.analyse`) and group-balanced mAP@10 of trait-sharing neighbours
(:func:`nftvision.ssl.evaluate.map_at_k`). ``nft-ssl-v2:random`` is the same network untrained.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nftvision.errors import MissingWeights
from nftvision.extractors import get_extractor
from nftvision.similarity import analyse
from nftvision.ssl.data import Token, folder_tokens, punk_tokens, trait_values
from nftvision.ssl.evaluate import map_at_k

EXTRACTORS = (
    "raw-rgb-v1",
    "gradient-v1",
    "effnet-lite0-v1",
    "nft-ssl-v1",
    "nft-ssl-v2",
    "nft-ssl-v2:random",
)


def _accessories(t: Token) -> str:
    return f"{len(trait_values(t, 'accessory'))} acc"


def _trait(name: str) -> Callable[[Token], str]:
    def label(t: Token) -> str:
        values = trait_values(t, name)
        return values[0] if values else "(none)"

    return label


def _grouping(
    tokens: list[Token], label: Callable[[Token], str], per_group: int, min_group: int, seed: int
) -> tuple[list[int], np.ndarray]:
    """Rows of ``tokens`` to use and their group labels."""
    labels = [label(t) for t in tokens]
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    for g, n in sorted(Counter(labels).items()):
        if n < min_group:
            continue
        members = [i for i, lab in enumerate(labels) if lab == g]
        rows += sorted(rng.choice(members, size=min(n, per_group), replace=False).tolist())
    return rows, np.array([labels[i] for i in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moonbirds", type=Path, default=None, help="the moonbirds-10k folder")
    ap.add_argument("--per-group", type=int, default=300)
    ap.add_argument("--min-group", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    sets: dict[str, list[Token]] = {"punks": punk_tokens("held-out")}
    groupings: list[tuple[str, str, Callable[[Token], str]]] = [
        ("punks", "CryptoPunks by type", _trait("type")),
        ("punks", "CryptoPunks by accessory count", _accessories),
    ]
    if args.moonbirds:
        sets["moonbirds"] = folder_tokens(args.moonbirds, "held-out", collection="moonbirds")
        groupings += [
            ("moonbirds", f"Moonbirds by {trait}", _trait(trait))
            for trait in ("Body", "Eyes", "Headwear")
        ]
    print("held-out tokens:", {k: len(v) for k, v in sets.items()}, file=sys.stderr)

    vectors: dict[tuple[str, str], np.ndarray] = {}
    skipped: dict[str, str] = {}
    for name in EXTRACTORS:
        try:
            ext = get_extractor(name, weights_dir=args.weights_dir)
        except MissingWeights as err:
            skipped[name] = str(err)
            continue
        for set_name, tokens in sets.items():
            start = time.perf_counter()
            vectors[name, set_name] = ext.embed([t.image for t in tokens], batch_size=64)
            took = time.perf_counter() - start
            print(f"{name} {set_name}: {len(tokens) / took:.0f} images/s", file=sys.stderr)

    rows: list[dict[str, Any]] = []
    for set_name, title, label in groupings:
        picked, labels = _grouping(sets[set_name], label, args.per_group, args.min_group, args.seed)
        for name in EXTRACTORS:
            if (name, set_name) not in vectors:
                continue
            x = vectors[name, set_name][picked]
            groups = {g: x[labels == g] for g in dict.fromkeys(labels.tolist())}
            report = analyse(groups, center=True, label=name)
            rows.append(
                {
                    "grouping": title,
                    "groups": len(groups),
                    "tokens": len(picked),
                    "extractor": name,
                    "d_prime": report.d_prime,
                    "nn1": report.nn1_balanced_accuracy,
                    "map10": map_at_k(x, labels, 10),
                }
            )

    names = [n for n in EXTRACTORS if n not in skipped]
    print(f"| grouping (held-out) | {' | '.join(names)} |")
    print(f"| --- | {' | '.join('---' for _ in names)} |")
    for title in dict.fromkeys(r["grouping"] for r in rows):
        mine = {r["extractor"]: r for r in rows if r["grouping"] == title}
        first = next(iter(mine.values()))
        cells = [
            f"{mine[n]['d_prime']:.2f} / {mine[n]['nn1']:.2f} / {mine[n]['map10']:.2f}"
            for n in names
        ]
        print(f"| {title} ({first['groups']} groups, n={first['tokens']}) | {' | '.join(cells)} |")
    print("cells: centred d′ / balanced 1-NN / group-balanced mAP@10")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    if args.json:
        print(json.dumps({"rows": rows, "skipped": skipped}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
