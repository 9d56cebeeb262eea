"""``nft-ssl-v1`` and ``nft-ssl-v2``: the CNN trained label-free on NFT art (:mod:`nftvision.ssl`).

Both read one network, whose weights ship in the package (``nftvision/weights/nft-ssl-v1.pt``
with a JSON sidecar saying how they were made); a ``nft-ssl-v1.pt`` in ``weights_dir`` is used
instead when present, so a user can embed with weights they trained themselves (``nftwatch
train-extractor``). v1 stores the pooled 128-d embedding, v2 the third block's 6×6 map (4,608-d;
see :mod:`nftvision.ssl.model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nftvision.errors import MissingWeights
from nftvision.extractors.base import chunks, l2_normalize
from nftvision.preprocess import COMPOSITE_VERSION, batch_square
from nftvision.ssl.model import EMBED_DIM, GRID_DIM, INPUT_SIZE, SslNet
from nftvision.ssl.train import VERSION, VERSION_2, VERSIONS, load_weights, sha256_file

NAME = VERSION
FILE_NAME = f"{NAME}.pt"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED = WEIGHTS_DIR / FILE_NAME


def find_ssl_weights(weights_dir: Path | None) -> Path | None:
    for candidate in ([weights_dir / FILE_NAME] if weights_dir else []) + [SHIPPED]:
        if candidate.is_file():
            return candidate
    return None


class NftSsl:
    """White composite, 48×48 (NEAREST for pixel art), the network's embedding (v1) or its
    third block's map (v2), unit rows."""

    def __init__(self, model: SslNet, weights: str, device: torch.device, name: str = NAME) -> None:
        self.name = name
        self.version = VERSION_2 if name.startswith(VERSION_2) else VERSION
        self.grid = self.version == VERSION_2
        self.dim = GRID_DIM if self.grid else EMBED_DIM
        self.model = model.to(device).eval()
        self.device = device
        self.weights = weights
        readout = "-block3" if self.grid else ""
        self.preprocess_version = f"{COMPOSITE_VERSION}-square{INPUT_SIZE}-box-m0.5-s0.5{readout}"

    def embed(self, images: Sequence[Image.Image], *, batch_size: int = 256) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        row = 0
        with torch.inference_mode():
            for batch in chunks(images, batch_size):
                arr = torch.from_numpy(batch_square(batch, INPUT_SIZE)).to(self.device)
                x = arr.permute(0, 3, 1, 2).float() / 255.0
                y = self.model.grid(x) if self.grid else self.model(x)
                out[row : row + len(batch)] = l2_normalize(y.cpu().numpy())
                row += len(batch)
        return out


def build_nft_ssl(
    *,
    device: torch.device,
    version: str = VERSION,
    weights_dir: Path | None = None,
    weights_file: Path | None = None,
    random_weights: bool = False,
    seed: int = 0,
) -> NftSsl:
    """The extractor ``version`` from ``weights_file``, else ``weights_dir``, else the shipped
    weights; ``random_weights``: the same network freshly initialised from ``seed`` (the
    control)."""
    if version not in VERSIONS:
        raise ValueError(f"unknown version {version!r}; known: {', '.join(VERSIONS)}")
    if random_weights:
        torch.manual_seed(seed)
        return NftSsl(SslNet(), f"random-init:seed{seed}", device, version)
    path = weights_file or find_ssl_weights(weights_dir)
    if path is None or not path.is_file():
        raise MissingWeights(
            f"{version}: no weights file {FILE_NAME} (train one: nftwatch train-extractor)"
        )
    return NftSsl(load_weights(path, device), f"sha256:{sha256_file(path)[:16]}", device, version)
