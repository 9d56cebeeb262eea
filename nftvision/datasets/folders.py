"""Image folders laid out as ``{id}.png`` beside ``{id}.json`` (metadata), e.g. Moonbirds, Nouns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image

IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".webp", ".bmp")


class FolderItem(NamedTuple):
    id: str
    image: Image.Image
    metadata: dict[str, Any]


def _sort_key(path: Path) -> tuple[int, int | str]:
    stem = path.stem
    return (0, int(stem)) if stem.isdigit() else (1, stem)


def load_image_folder(path: Path | str, *, limit: int | None = None) -> list[FolderItem]:
    """Every image in ``path`` (numeric ids in numeric order), decoded, with its JSON metadata.

    Metadata is ``{}`` when an image has no ``{id}.json``. Images are fully loaded, so the files are
    closed on return.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such image folder: {folder}")
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_sort_key
    )
    items: list[FolderItem] = []
    for file in files[:limit]:
        with Image.open(file) as im:
            im.load()
            image = im.copy() if im.mode != "P" else im.convert("RGBA")
        meta_path = file.with_suffix(".json")
        meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        items.append(FolderItem(file.stem, image, meta))
    return items
