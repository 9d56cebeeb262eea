"""The blog's analysis on the real CryptoPunks, grouped by type, for every extractor.

    python bench/similarity_punks.py [--per-type 200] [--plot punks_similarity.png] [--json]

Every type is sampled to at most ``--per-type`` punks (seeded; aliens and apes are few), embedded
by every extractor whose weights are available plus the EfficientNet-Lite0 architecture with
random weights as a control, and analysed raw and mean-centred. Extractors whose weights are
missing are listed with the reason, not faked.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from nftvision.datasets import PUNK_TYPES, load_cryptopunks
from nftvision.errors import MissingWeights
from nftvision.extractors import available_extractors, get_extractor
from nftvision.heatmap import plot_heatmaps
from nftvision.similarity import SimilarityReport, analyse, render_summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-type", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", type=Path, default=None, help="write the heatmaps to this PNG")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--weights-dir", type=Path, default=None)
    args = ap.parse_args(argv)

    punks = load_cryptopunks()
    rng = np.random.default_rng(args.seed)
    by_type: dict[str, list[int]] = {t: [] for t in PUNK_TYPES}
    for p in punks:
        by_type[p.punk_type].append(p.index)
    sample = {
        t: sorted(rng.choice(ids, size=min(len(ids), args.per_type), replace=False).tolist())
        for t, ids in by_type.items()
    }
    print("punks per type:", {t: len(v) for t, v in sample.items()})

    order = [i for t in PUNK_TYPES for i in sample[t]]
    images = [punks[i].image for i in order]
    bounds = np.cumsum([0] + [len(sample[t]) for t in PUNK_TYPES])

    reports: list[SimilarityReport] = []
    skipped: dict[str, str] = {}
    for name in [*available_extractors(), "effnet-lite0-v1:random"]:
        try:
            ext = get_extractor(name, weights_dir=args.weights_dir)
        except MissingWeights as err:
            skipped[name] = str(err)
            continue
        start = time.perf_counter()
        vectors = ext.embed(images, batch_size=64)
        took = time.perf_counter() - start
        print(
            f"{name}: {len(images)} images in {took:.1f}s ({len(images) / took:.0f}/s)",
            file=sys.stderr,
        )
        groups = {t: vectors[bounds[k] : bounds[k + 1]] for k, t in enumerate(PUNK_TYPES)}
        for center in (False, True):
            reports.append(analyse(groups, center=center, label=name))

    print(render_summary(reports))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    if args.plot:
        path = plot_heatmaps([r for r in reports if r.centered], args.plot)
        print(f"heatmap (centred cosines): {path}")
    if args.json:
        print(json.dumps({"reports": [r.to_dict() for r in reports], "skipped": skipped}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
