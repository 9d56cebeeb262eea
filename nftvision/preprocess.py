"""Turn decoded images into model-ready batches.

Every extractor sees the same first step, :func:`to_rgb`: transparency is composited onto a fixed
**white** background (``BACKGROUND``), so a transparent CryptoPunk and the same punk on white give
the same vector. Then each extractor resizes the whole picture to its own square
(:func:`resize_square`):

* images being *upscaled* from a small source (longer side ≤ ``PIXEL_ART_MAX_SIDE``, e.g. 24×24
  punks, 42×42 Moonbirds) use NEAREST, which keeps pixel art's hard edges instead of inventing blur;
* everything else uses the weights' own interpolation (antialiased by Pillow when shrinking).

Batches are stacked as ``uint8`` NHWC arrays whose NCHW view is already channels_last, so
normalisation is the first and only float pass. Version strings (``COMPOSITE_VERSION``,
``Transform.version``) are stored with every vector: change one whenever its output changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

BACKGROUND: tuple[int, int, int] = (255, 255, 255)
PIXEL_ART_MAX_SIDE = 128

# Bumped whenever the pixels handed to a model change.
COMPOSITE_VERSION = "white-nearest128"


@dataclass(frozen=True)
class Transform:
    """Input size, interpolation and normalisation of one family of weights.

    The whole picture is resized to ``size``×``size``; we deliberately skip the weights' centre
    crop (crop_pct 0.875): NFT art is composed to its frame, and a crop cuts hats, beaks and
    backgrounds that distinguish tokens. ``mean``/``std`` apply to values in [0, 1].
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: Image.Resampling = Image.Resampling.BILINEAR

    @property
    def version(self) -> str:
        return (
            f"{COMPOSITE_VERSION}-sq{self.size}-{self.interpolation.name.lower()}"
            f"-m{'/'.join(f'{m:g}' for m in self.mean)}-s{'/'.join(f'{s:g}' for s in self.std)}"
        )


# torchvision's ImageNet weights (VGG, ResNet): bilinear, ImageNet mean/std.
IMAGENET = Transform(size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
# TF EfficientNet-Lite expects [-1, 1], i.e. (x - 0.5) / 0.5; timm's config says bicubic.
EFFNET_LITE = Transform(
    size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation=Image.Resampling.BICUBIC
)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """Return an RGB image, compositing any transparency onto ``background``."""
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return image.convert("RGB")
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    out = Image.new("RGB", rgba.size, background)
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def resize_square(
    image: Image.Image,
    size: int,
    interpolation: Image.Resampling = Image.Resampling.BOX,
) -> Image.Image:
    """Resize the whole picture to ``size``×``size``.

    Small sources being upscaled (pixel art) use NEAREST; everything else ``interpolation``.
    """
    if image.size == (size, size):
        return image
    small = max(image.size) <= PIXEL_ART_MAX_SIDE and min(image.size) < size
    return image.resize((size, size), Image.Resampling.NEAREST if small else interpolation)


def stack_uint8(images: Sequence[Image.Image]) -> np.ndarray:
    """Stack same-sized RGB images into one ``(n, h, w, 3)`` uint8 array."""
    if not images:
        raise ValueError("no images")
    first = images[0]
    out = np.empty((len(images), first.size[1], first.size[0], 3), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = np.asarray(im, dtype=np.uint8)
    return out


def batch_for_transform(images: Sequence[Image.Image], t: Transform) -> np.ndarray:
    """Composite and resize a batch: ``(n, size, size, 3)`` uint8, not yet normalised."""
    return stack_uint8([resize_square(to_rgb(im), t.size, t.interpolation) for im in images])


def batch_square(images: Sequence[Image.Image], size: int) -> np.ndarray:
    """Composite and resize a batch to ``(n, size, size, 3)`` uint8 (box filter when shrinking)."""
    return stack_uint8([resize_square(to_rgb(im), size) for im in images])
