"""Metadata JSON: bytes → an object, and the image a marketplace would show for it.

Pure. UTF-8 with or without a BOM (UTF-16/32 with a BOM too); bytes that are not UTF-8 are read
as latin-1 and flagged. HTML (a gateway's error page served with 200) → InvalidJSON; valid JSON
that is not an object → InvalidShape.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokenmeta.errors import InvalidJSON, InvalidShape

IMAGE_KEYS = ("image", "image_url", "imageUrl")


@dataclass(frozen=True, slots=True)
class ParsedMetadata:
    data: dict[str, Any]
    latin1_fallback: bool = False


def decode_text(raw: bytes) -> tuple[str, bool]:
    """Text of ``raw`` and whether the latin-1 fallback was needed."""
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if raw.startswith(bom):
            try:
                return raw.decode(codec), False
            except UnicodeDecodeError:
                break
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("latin-1"), True


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:512].lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body", "<!--", "<?xml")) or (
        head.startswith("<") and "<html" in head
    )


MAX_NESTING = 256
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = str.maketrans({"[": "(", "{": "(", "]": ")", "}": ")"})


def _max_nesting(text: str) -> int:
    """Deepest bracket nesting outside strings. Checked before ``json.loads``: its C scanner
    recurses per level and, when the interpreter's recursion limit has been raised, a hostile
    document crashes the process instead of raising RecursionError."""
    skeleton = _JSON_STRING.sub("", text)
    if "[" not in skeleton and "{" not in skeleton:
        return 0
    arr = np.frombuffer(skeleton.translate(_BRACKETS).encode("utf-8", "replace"), dtype=np.uint8)
    steps = (arr == ord("(")).astype(np.int32) - (arr == ord(")")).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def parse_metadata(raw: bytes) -> ParsedMetadata:
    text, latin1 = decode_text(raw)
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise InvalidJSON("metadata is empty")
    if stripped.startswith("<"):
        kind = "HTML" if looks_like_html(stripped) else "markup"
        raise InvalidJSON(f"metadata is {kind}, not JSON: {stripped[:60]!r}")
    if _max_nesting(stripped) > MAX_NESTING:
        raise InvalidJSON(f"metadata JSON nests deeper than {MAX_NESTING} levels")
    try:
        value = json.loads(stripped)
    except RecursionError:
        raise InvalidJSON("metadata JSON nests too deeply") from None
    except ValueError as exc:
        raise InvalidJSON(f"metadata is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidShape(f"metadata JSON is a {type(value).__name__}, not an object")
    return ParsedMetadata(value, latin1)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().strip("\0"):
        return value
    return None


def choose_image(metadata: dict[str, Any]) -> str | None:
    """The image URI: ``image``, ``image_url``, ``imageUrl``, ``image_data``, ``properties.image``.

    Inline ``image_data`` is returned as a ``data:image/svg+xml;base64,…`` URI so that every image
    goes down the same path.
    """
    for key in IMAGE_KEYS:
        found = _text(metadata.get(key))
        if found:
            return found
    inline = _text(metadata.get("image_data"))
    if inline:
        if inline.lstrip()[:5].lower() == "data:":
            return inline.strip()
        return "data:image/svg+xml;base64," + base64.b64encode(inline.encode()).decode()
    props = metadata.get("properties")
    if isinstance(props, dict):
        image = props.get("image")
        if isinstance(image, dict):  # the ERC-1155 JSON-schema style {"type":…, "description":…}
            image = image.get("description") or image.get("value")
        found = _text(image)
        if found:
            return found
    return None


def attributes_of(metadata: dict[str, Any]) -> list[Any]:
    """``attributes`` (OpenSea) or ``traits``; a dict of trait → value becomes a list."""
    value = metadata.get("attributes", metadata.get("traits"))
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [{"trait_type": k, "value": v} for k, v in value.items()]
    return []


def animation_url_of(metadata: dict[str, Any]) -> str | None:
    return _text(metadata.get("animation_url")) or _text(metadata.get("animationUrl"))
