"""Views of paletted tokens that keep shapes and change what should not matter.

Every op takes a ``torch.Generator`` so a training run is reproducible from its seed:

* :func:`remap_palette`: every colour entry becomes a random colour (shapes stay, every hue and
  shade goes); :func:`permute_channels` and :func:`rotate_hue` are the gentler recolourings;
* :func:`swap_background`: entry 0 (the background) gets a random colour;
* :func:`shift_flip`: moves the art by a few pixels, filling with background, and mirrors it;
* :func:`drop_colours` and :func:`erase`: hide parts of the art (whole palette entries, or a
  rectangle) behind the background, so that no single accessory can tell a token from the others
  and the net must also match what stays: the silhouette, the skin, the body (nft-ssl-v2).

Colour is not thrown away entirely: only a share of views are remapped (``Augment.p_remap``), so
a token's colours stay a weak cue, as they are for punk types (aliens are blue, zombies green).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_GREY = torch.full((3,), 1.0 / math.sqrt(3.0))


@dataclass(frozen=True)
class Augment:
    """Probabilities and ranges of the augmentations (palettes are floats in [0, 1])."""

    p_remap: float = 0.3
    p_permute: float = 0.5
    max_hue: float = math.pi  # radians of rotation about the grey axis
    p_background: float = 0.8
    max_shift: int = 3  # pixels at the model's input size
    p_flip: float = 0.5
    p_drop: float = 0.0  # each colour entry hidden behind the background with this chance
    p_erase: float = 0.0  # chance of one rectangle of background over the art
    erase_max: int = 16  # its largest side, pixels at the model's input size


def _chance(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def remap_palette(palette: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Every entry but the background replaced by a uniform random colour."""
    out = torch.rand(palette.shape, generator=gen)
    out[:, 0] = palette[:, 0]
    return out


def permute_channels(palette: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each token's R, G, B shuffled by its own random permutation."""
    perms = torch.stack([torch.randperm(3, generator=gen) for _ in range(len(palette))])
    return torch.gather(palette, 2, perms[:, None, :].expand_as(palette))


def rotate_hue(palette: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate colours about the grey axis by ``angle`` (radians, one per token); greys stay."""
    k = _GREY.to(palette)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    # Rodrigues: v cosθ + (k×v) sinθ + k (k·v)(1 − cosθ)
    cross = torch.linalg.cross(k.expand_as(palette), palette, dim=-1)
    along = (palette @ k)[..., None] * k
    return (palette * cos + cross * sin + along * (1 - cos)).clamp(0.0, 1.0)


def swap_background(palette: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The background entry replaced by a uniform random colour."""
    out = palette.clone()
    out[:, 0] = torch.rand((len(palette), 3), generator=gen)
    return out


def shift_flip(
    index: torch.Tensor, max_shift: int, p_flip: float, gen: torch.Generator
) -> torch.Tensor:
    """Index maps moved by up to ``max_shift`` pixels each way (background fills what opens up)
    and mirrored left-right with probability ``p_flip``."""
    n, h, w = index.shape
    flip = _chance(n, p_flip, gen)
    index = torch.where(flip[:, None, None], index.flip(-1), index)
    if max_shift <= 0:
        return index
    padded = torch.nn.functional.pad(index, (max_shift,) * 4, value=0)
    offs = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen).tolist()
    return torch.stack([padded[i, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offs)])


def drop_colours(index: torch.Tensor, k: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """Each non-background palette entry (of ``k``) becomes background with chance ``p``."""
    n = len(index)
    gone = torch.rand(n, k, generator=gen) < p
    gone[:, 0] = False
    hidden = torch.gather(gone, 1, index.reshape(n, -1)).view_as(index)
    return torch.where(hidden, torch.zeros_like(index), index)


def erase(index: torch.Tensor, p: float, max_side: int, gen: torch.Generator) -> torch.Tensor:
    """With chance ``p`` a rectangle (sides 4 to ``max_side`` px) of each map set to background."""
    n, h, w = index.shape
    hit = torch.rand(n, generator=gen) < p
    side = torch.randint(4, max_side + 1, (n, 2), generator=gen)
    y0 = (torch.rand(n, generator=gen) * (h - side[:, 0] + 1)).long()
    x0 = (torch.rand(n, generator=gen) * (w - side[:, 1] + 1)).long()
    ys, xs = torch.arange(h)[None, :], torch.arange(w)[None, :]
    rows = (ys >= y0[:, None]) & (ys < (y0 + side[:, 0])[:, None])
    cols = (xs >= x0[:, None]) & (xs < (x0 + side[:, 1])[:, None])
    box = rows[:, :, None] & cols[:, None, :] & hit[:, None, None]
    return torch.where(box, torch.zeros_like(index), index)


def render(index: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """``(n, 3, s, s)`` float images from index maps and palettes."""
    rows = torch.arange(len(index))[:, None, None]
    return palette[rows, index].permute(0, 3, 1, 2)


def view(
    index: torch.Tensor, palette: torch.Tensor, aug: Augment, gen: torch.Generator
) -> torch.Tensor:
    """One random view of each token: ``index`` (n, s, s) int64, ``palette`` (n, k, 3) in [0, 1]."""
    n = len(index)
    # the hiding ops draw from ``gen`` only when on, so nft-ssl-v1's views stay as they were
    if aug.p_drop > 0:
        index = drop_colours(index, palette.shape[1], aug.p_drop, gen)
    if aug.p_erase > 0:
        index = erase(index, aug.p_erase, aug.erase_max, gen)
    pal = palette
    perm = _chance(n, aug.p_permute, gen)
    pal = torch.where(perm[:, None, None], permute_channels(pal, gen), pal)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * aug.max_hue
    pal = rotate_hue(pal, angle)
    remap = _chance(n, aug.p_remap, gen)
    pal = torch.where(remap[:, None, None], remap_palette(pal, gen), pal)
    bg = _chance(n, aug.p_background, gen)
    pal = torch.where(bg[:, None, None], swap_background(pal, gen), pal)
    return render(shift_flip(index, aug.max_shift, aug.p_flip, gen), pal)
