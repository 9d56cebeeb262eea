"""Modern pretrained backbones for users who can download their weights: CLIP and DINOv2.

* ``clip-vit-b32-v1``: open_clip's ViT-B-32 (LAION-2B ``laion2b_s34b_b79k``), its 512-d image
  embedding (``pip install 'nftwatch[clip]'``);
* ``dinov2-vits14-v1``: timm's ``vit_small_patch14_dinov2.lvd142m`` at 224 px (timm resamples
  its position embedding on load), the 384-d class token.

Weights are looked for, in order, as a file in ``weights_dir`` (:data:`CLIP_FILE`,
:data:`DINOV2_FILE`), then in the Hugging Face cache where open_clip and timm download them.
Nothing here downloads: offline machines get :class:`~nftvision.errors.MissingWeights` with one
line naming the file and both places; ``download=True`` lets the libraries fetch them.
Both run through :class:`~nftvision.extractors.cnn.CnnExtractor` (batching, precision) with the
whole picture resized to 224 px, as for the other CNNs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from nftvision.errors import MissingWeights
from nftvision.extractors.cnn import (
    RANDOM_SEED,
    CnnExtractor,
    Optimize,
    Precision,
    _Pooled,
    _seeded,
    _Split,
    sha256_prefix,
)
from nftvision.preprocess import Transform

CLIP_NAME = "clip-vit-b32-v1"
CLIP_ARCH, CLIP_TAG = "ViT-B-32", "laion2b_s34b_b79k"
CLIP_REPO, CLIP_HUB_FILE = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors"
CLIP_FILE = "clip-vit-b32-laion2b.safetensors"
CLIP_TRANSFORM = Transform(
    size=224, mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)
)

DINOV2_NAME = "dinov2-vits14-v1"
DINOV2_ARCH = "vit_small_patch14_dinov2.lvd142m"
DINOV2_REPO, DINOV2_HUB_FILE = "timm/vit_small_patch14_dinov2.lvd142m", "model.safetensors"
DINOV2_FILE = "dinov2-vits14.safetensors"
DINOV2_TRANSFORM = Transform(size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

NAMES = (CLIP_NAME, DINOV2_NAME)
# each one's weights: the file looked for in weights_dir, and the Hugging Face repo and file
WEIGHTS = {
    CLIP_NAME: (CLIP_FILE, CLIP_REPO, CLIP_HUB_FILE),
    DINOV2_NAME: (DINOV2_FILE, DINOV2_REPO, DINOV2_HUB_FILE),
}


def hf_cache_dir() -> Path:
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE)


def _cached(repo: str, file_name: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo, file_name)
    return Path(hit) if isinstance(hit, str) else None


def find_modern_weights(
    file_name: str, repo: str, hub_file: str, weights_dir: Path | None
) -> Path | None:
    if weights_dir is not None and (weights_dir / file_name).is_file():
        return weights_dir / file_name
    return _cached(repo, hub_file)


def _missing(name: str, file_name: str, repo: str, hub_file: str, weights_dir: Path | None) -> str:
    where = f"{weights_dir}/{file_name}" if weights_dir else f"TORCHVISION_WEIGHTS_DIR/{file_name}"
    return (
        f"{name} needs {repo}/{hub_file}: put it at {where} or in the Hugging Face cache "
        f"({hf_cache_dir()})"
    )


def _locate(
    name: str, weights_dir: Path | None, *, random_weights: bool, download: bool
) -> Path | None:
    """The weights file of ``name`` to load (:data:`WEIGHTS`, :func:`find_modern_weights`); None
    with ``random_weights``, or with ``download`` where neither place has it (the library fetches
    them then). Without them and without ``download``: :class:`MissingWeights` naming the file
    and both places."""
    if random_weights:
        return None
    file_name, repo, hub_file = WEIGHTS[name]
    path = find_modern_weights(file_name, repo, hub_file, weights_dir)
    if path is None and not download:
        raise MissingWeights(_missing(name, file_name, repo, hub_file, weights_dir))
    return path


def _load(name: str, build: Callable[[], nn.Module]) -> nn.Module:
    """``build`` under the fixed seed; an OSError or RuntimeError (no network, or a file that is
    not these weights) becomes :class:`MissingWeights` naming ``name``, in one line."""
    try:
        return _seeded(build)
    except (OSError, RuntimeError) as exc:
        raise MissingWeights(f"{name}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc


class _ClipImage(nn.Module):
    """open_clip model → its (unnormalised) image embedding."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.model.encode_image(x))  # type: ignore[operator]


def build_clip(
    *,
    device: torch.device,
    weights_dir: Path | None = None,
    random_weights: bool = False,
    download: bool = False,
    precision: Precision = "auto",
    optimize: Optimize = "eager",
) -> CnnExtractor:
    try:
        import open_clip
    except ImportError as exc:
        raise MissingWeights(f"{CLIP_NAME} needs open_clip: pip install 'nftwatch[clip]'") from exc
    path = _locate(CLIP_NAME, weights_dir, random_weights=random_weights, download=download)
    pretrained = str(path) if path is not None else (None if random_weights else CLIP_TAG)
    model = _load(CLIP_NAME, lambda: open_clip.create_model(CLIP_ARCH, pretrained=pretrained))
    weights = _weights_id(pretrained)
    return CnnExtractor(
        name=CLIP_NAME,
        split=_Split(_ClipImage(model), nn.Identity()),
        dim=int(cast(Any, model).visual.output_dim),
        transform=CLIP_TRANSFORM,
        weights=weights,
        device=device,
        precision=precision,
        optimize=optimize,
    )


def build_dinov2(
    *,
    device: torch.device,
    weights_dir: Path | None = None,
    random_weights: bool = False,
    download: bool = False,
    precision: Precision = "auto",
    optimize: Optimize = "eager",
) -> CnnExtractor:
    import timm

    size = DINOV2_TRANSFORM.size
    path = _locate(DINOV2_NAME, weights_dir, random_weights=random_weights, download=download)
    options: dict[str, Any] = {"img_size": size, "num_classes": 0}
    if path is not None:
        options["pretrained_cfg_overlay"] = {"file": str(path)}
    model = _load(
        DINOV2_NAME,
        lambda: timm.create_model(DINOV2_ARCH, pretrained=not random_weights, **options),
    )
    return CnnExtractor(
        name=DINOV2_NAME,
        split=_Split(_Pooled(model), nn.Identity()),
        dim=int(cast(Any, model).num_features),
        transform=DINOV2_TRANSFORM,
        weights=_weights_id(None if random_weights else str(path or DINOV2_REPO)),
        device=device,
        precision=precision,
        optimize=optimize,
    )


def _weights_id(source: str | None) -> str:
    if source is None:
        return f"random-init:seed{RANDOM_SEED}"
    path = Path(source)
    return sha256_prefix(path) if path.is_file() else f"hub:{source}"
