"""The blog's two direct methods: raw pixels and per-channel colour gradients.

Both work on the whole picture squashed to a small square (no crop: the blog compared whole
images) and stay ≤ 4,000 dims so pgvector's ``halfvec`` HNSW index can hold them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from nftvision.extractors.base import chunks, l2_normalize
from nftvision.preprocess import COMPOSITE_VERSION, batch_square


class RawRGB:
    """Raw RGB pixels on a 32×32 grid, scaled to [0, 1]: 32·32·3 = 3,072 dims."""

    name = "raw-rgb-v1"
    weights = "none"
    size = 32

    def __init__(self) -> None:
        self.dim = self.size * self.size * 3
        self.preprocess_version = f"{COMPOSITE_VERSION}-square{self.size}-box"

    def embed(self, images: Sequence[Image.Image], *, batch_size: int = 256) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        row = 0
        for batch in chunks(images, batch_size):
            arr = batch_square(batch, self.size).reshape(len(batch), -1)
            out[row : row + len(batch)] = l2_normalize(arr.astype(np.float32) / 255.0)
            row += len(batch)
        return out


def gradient_magnitudes(arr: np.ndarray) -> np.ndarray:
    """Per-channel gradient magnitude of ``(n, h, w, c)`` pixels, pooled 2×2.

    Central differences (``np.gradient``) per colour channel keep the colour of an edge: a red/black
    edge and a blue/black edge differ, as in the blog. Pooling halves the grid so edges between
    pixel-art cells, which fall on odd or even rows depending on scale, land in the same cell.
    """
    x = arr.astype(np.float32) / 255.0
    gy, gx = np.gradient(x, axis=(1, 2))
    mag = np.sqrt(gx * gx + gy * gy)
    n, h, w, c = mag.shape
    return mag.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class ColourGradient:
    """Per-channel gradient magnitudes computed on a 64×64 grid, pooled to 32×32×3 = 3,072 dims."""

    name = "gradient-v1"
    weights = "none"
    size = 64

    def __init__(self) -> None:
        self.dim = (self.size // 2) * (self.size // 2) * 3
        self.preprocess_version = f"{COMPOSITE_VERSION}-square{self.size}-box-grad-pool2"

    def embed(self, images: Sequence[Image.Image], *, batch_size: int = 256) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        row = 0
        for batch in chunks(images, batch_size):
            mags = gradient_magnitudes(batch_square(batch, self.size)).reshape(len(batch), -1)
            out[row : row + len(batch)] = l2_normalize(mags)
            row += len(batch)
        return out
