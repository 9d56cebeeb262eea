"""Label-free training (SimCLR's NT-Xent on two augmented views) and the weights file.

The weights file is a plain ``state_dict`` (``torch.save``) beside a JSON sidecar of the same
stem that says how it was made: version, seed, data, epochs, losses, sha256 of the ``.pt``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nftvision.ssl.augment import Augment, view
from nftvision.ssl.model import SslNet
from nftvision.ssl.palette import Paletted

VERSION = "nft-ssl-v1"
VERSION_2 = "nft-ssl-v2"
VERSIONS = (VERSION, VERSION_2)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    seed: int = 0
    device: str = "cpu"
    augment: Augment = field(default_factory=Augment)
    version: str = VERSION


# How the shipped network was trained (what ``nftwatch train-extractor`` runs). nft-ssl-v2 reads
# the same network at another layer, so one recipe and one weights file serve both; the hiding
# views (``Augment.p_drop``, ``p_erase``) and the colour-keeping ones were tried for v2 and did
# not beat it at the training time a CPU allows (see the README).
RECIPES: dict[str, TrainConfig] = {VERSION: TrainConfig(epochs=5)}


def recipe(version: str, **changes: Any) -> TrainConfig:
    """The shipped recipe of ``version`` with ``changes`` (epochs, seed, device …)."""
    if version not in RECIPES:
        raise ValueError(f"unknown version {version!r}; known: {', '.join(RECIPES)}")
    return replace(RECIPES[version], **changes)


@dataclass
class TrainResult:
    model: SslNet
    epoch_losses: list[float]
    seconds: float
    steps: int


# called after every step: (step, total steps, loss of that step)
StepCallback = Callable[[int, int, float], None]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss: each view must pick its partner out of the other 2n − 2 views."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(-math.inf)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)


def train(data: Paletted, config: TrainConfig, on_step: StepCallback | None = None) -> TrainResult:
    """Fit a fresh :class:`SslNet` to ``data``; deterministic for a given seed on one device."""
    if len(data) < 2:
        raise ValueError("need at least two images to contrast")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    device = torch.device(config.device)
    model = SslNet().to(device)
    batch = min(config.batch_size, len(data))
    per_epoch = len(data) // batch
    total = per_epoch * config.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total)
    index = torch.from_numpy(data.index.astype(np.int64))
    palette = torch.from_numpy(data.palette).float() / 255.0
    losses: list[float] = []
    step, start = 0, time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(data), generator=gen)
        running = 0.0
        for b in range(per_epoch):
            rows = order[b * batch : (b + 1) * batch]
            ix, pal = index[rows], palette[rows]
            v1 = view(ix, pal, config.augment, gen).to(device)
            v2 = view(ix, pal, config.augment, gen).to(device)
            loss = nt_xent(model.project(v1), model.project(v2), config.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            value = loss.item()
            running += value
            if on_step is not None:
                on_step(step, total, value)
        losses.append(running / per_epoch)
    model.eval()
    return TrainResult(model, losses, time.perf_counter() - start, step)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecar_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_weights(path: Path, result: TrainResult, config: TrainConfig, data: dict[str, Any]) -> str:
    """Write ``path`` (fp32 state_dict, CPU tensors) and its JSON sidecar; returns the sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    torch.save(state, path)
    digest = sha256_file(path)
    meta = {
        "version": config.version,
        "sha256": digest,
        "seed": config.seed,
        "epochs": config.epochs,
        "steps": result.steps,
        "config": {k: v for k, v in asdict(config).items() if k not in ("device", "version")},
        "device": config.device,
        "train_seconds": round(result.seconds, 1),
        "epoch_losses": [round(x, 4) for x in result.epoch_losses],
        "data": data,
    }
    sidecar_path(path).write_text(json.dumps(meta, indent=2) + "\n")
    return digest


def load_weights(path: Path, device: torch.device | str = "cpu") -> SslNet:
    """A :class:`SslNet` in eval mode from a file :func:`save_weights` wrote."""
    model = SslNet()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device).eval()
