"""The network: four conv blocks for 48-px pixel art, a 128-d embedding, a projection head.

Sized for two CPU cores: one 3×3 conv per block (BatchNorm, ReLU, 2×2 max-pool), 48 → 3 px, then
a 2×2 average pool that keeps coarse layout (a hat is on top) and a linear layer to the
embedding. The projection head exists for the contrastive loss only (SimCLR's finding: the
features before it transfer better). nft-ssl-v1 stores the embedding; nft-ssl-v2 stores the
third block's 6×6 map of the same trained network (:meth:`SslNet.grid`, 4,608-d): collections
draw every token in one pose, so *where* a part sits (a pattern on the belly, a hat on top) is
part of the trait, and the pooled embedding blurs it.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE = 48
EMBED_DIM = 128
GRID_DIM = 128 * 6 * 6  # the third block's channels × its 6×6 map
CHANNELS = (32, 64, 128, 128)
# inputs in [0, 1] are mapped to [-1, 1]
MEAN = 0.5
STD = 0.5


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SslNet(nn.Module):
    """``forward`` → the embedding; ``project`` → what the loss compares."""

    def __init__(self, embed_dim: int = EMBED_DIM, proj_dim: int = 64) -> None:
        super().__init__()
        blocks, cin = [], 3
        for cout in CHANNELS:
            blocks.append(_block(cin, cout))
            cin = cout
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.embed = nn.Linear(cin * 4, embed_dim)
        self.head = nn.Sequential(
            nn.BatchNorm1d(embed_dim),
            nn.ReLU(inplace=True),
            nn.Linear(embed_dim, embed_dim),
            nn.ReLU(inplace=True),
            nn.Linear(embed_dim, proj_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n, 3, 48, 48)`` in [0, 1]."""
        return self.embed(self.features((x - MEAN) / STD))

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        """The third conv block's map, flattened: ``(n, 128 * 6 * 6)``."""
        h = (x - MEAN) / STD
        for block in self.features[:3]:
            h = block(h)
        return h.flatten(1)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(x))
