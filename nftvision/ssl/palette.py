"""Images as index maps over their own palettes, with the background as entry 0.

A token is decoded exactly as the extractors see it (white composite, square, NEAREST when
upscaling pixel art) and then split into ``index`` (which palette entry each pixel shows) and
``palette`` (the RGB of each entry). Recolouring a token is then a change of its palette alone:
the shapes, which live in ``index``, cannot move.

The background is what a token's art does not cover: its transparent pixels when it has any
(CryptoPunks), else the colour that fills most of its border (Moonbirds' solid backgrounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from nftvision.preprocess import resize_square, to_rgb

MAX_COLOURS = 255  # entry 0 is the background, so an index map fits in uint8


@dataclass(frozen=True)
class Paletted:
    """``index``: ``(n, s, s)`` uint8; ``palette``: ``(n, k, 3)`` uint8, entry 0 = background."""

    index: np.ndarray
    palette: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def render(self) -> np.ndarray:
        """The images back as ``(n, s, s, 3)`` uint8."""
        rows = np.arange(len(self))[:, None, None]
        return self.palette[rows, self.index]

    def take(self, rows: np.ndarray | Sequence[int]) -> Paletted:
        return Paletted(self.index[rows], self.palette[rows])


def background_mask(image: Image.Image, rgb: np.ndarray, size: int) -> np.ndarray:
    """``(size, size)`` bool: True where ``rgb`` (the resized composite) shows background."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = resize_square(image.convert("RGBA").getchannel("A"), size, Image.Resampling.NEAREST)
        mask = np.asarray(alpha) == 0
        if mask.any():
            return mask
    border = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return np.all(rgb == colours[np.argmax(counts)], axis=-1)


def palettise_one(image: Image.Image, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One image as ``(index (size, size) uint8, palette (m, 3) uint8)``.

    Art with more than ``MAX_COLOURS`` colours (photos, gradients) is quantised first; pixel art
    never is.
    """
    rgb_im = resize_square(to_rgb(image), size)
    rgb = np.asarray(rgb_im, dtype=np.uint8)
    bg = background_mask(image, rgb, size)
    fg = rgb[~bg]
    colours, inverse = np.unique(fg.reshape(-1, 3), axis=0, return_inverse=True)
    if len(colours) > MAX_COLOURS - 1:
        quant = rgb_im.quantize(colors=MAX_COLOURS - 1).convert("RGB")
        fg = np.asarray(quant, dtype=np.uint8)[~bg]
        colours, inverse = np.unique(fg.reshape(-1, 3), axis=0, return_inverse=True)
    index = np.zeros((size, size), dtype=np.uint8)
    index[~bg] = inverse.reshape(-1).astype(np.uint8) + 1
    bg_colour = rgb[bg][0] if bg.any() else np.array([255, 255, 255], dtype=np.uint8)
    return index, np.concatenate([bg_colour[None], colours]).astype(np.uint8)


def palettise(images: Sequence[Image.Image], size: int) -> Paletted:
    """Every image at ``size``×``size``; palettes padded to the longest (unused entries black)."""
    if not images:
        raise ValueError("no images")
    parts = [palettise_one(im, size) for im in images]
    k = max(len(p) for _, p in parts)
    palette = np.zeros((len(parts), k, 3), dtype=np.uint8)
    for i, (_, p) in enumerate(parts):
        palette[i, : len(p)] = p
    return Paletted(np.stack([ix for ix, _ in parts]), palette)
