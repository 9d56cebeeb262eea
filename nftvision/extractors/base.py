"""What every extractor offers, and the helpers they share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
from PIL import Image

T = TypeVar("T")


@runtime_checkable
class Extractor(Protocol):
    """Turns images into L2-normalised float32 vectors.

    ``name`` is the versioned id stored with every vector, ``weights`` identifies the parameters
    (``sha256:…`` of the file, ``none`` for the direct methods, ``random-init:…`` for controls) and
    ``preprocess_version`` the exact pixel pipeline: a stored vector is only comparable to vectors
    with the same three.
    """

    name: str
    dim: int
    weights: str
    preprocess_version: str

    def embed(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> np.ndarray:
        """Return ``(len(images), dim)`` float32 rows of unit length."""
        ...


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero); float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, np.maximum(norms, eps), dtype=np.float32)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]
