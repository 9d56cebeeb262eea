from __future__ import annotations

import base64
import json

import pytest

from tokenmeta.errors import InvalidJSON, InvalidShape
from tokenmeta.metadata import attributes_of, choose_image, parse_metadata


def test_utf8_with_and_without_bom() -> None:
    body = json.dumps({"name": "Zoë"}, ensure_ascii=False).encode()
    assert parse_metadata(body).data["name"] == "Zoë"
    parsed = parse_metadata(b"\xef\xbb\xbf" + body)
    assert parsed.data["name"] == "Zoë" and not parsed.latin1_fallback


def test_latin1_fallback_is_flagged() -> None:
    parsed = parse_metadata('{"name": "Café"}'.encode("latin-1"))
    assert parsed.data["name"] == "Café" and parsed.latin1_fallback


def test_html_is_invalid_json_and_arrays_are_invalid_shape() -> None:
    with pytest.raises(InvalidJSON, match="HTML"):
        parse_metadata(b"<!DOCTYPE html><html><title>502</title></html>")
    with pytest.raises(InvalidJSON):
        parse_metadata(b"{not json")
    with pytest.raises(InvalidJSON):
        parse_metadata(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidShape):
        parse_metadata(b'[{"image": "x"}]')
    with pytest.raises(InvalidShape):
        parse_metadata(b'"just a string"')


def test_escaped_slashes_are_plain_json() -> None:
    meta = parse_metadata(b'{"image": "ipfs:\\/\\/QmX\\/1.png"}').data
    assert choose_image(meta) == "ipfs://QmX/1.png"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"image": "a", "image_url": "b"}, "a"),
        ({"image": "", "image_url": "b", "imageUrl": "c"}, "b"),
        ({"imageUrl": "c", "properties": {"image": "e"}}, "c"),
        ({"properties": {"image": "e"}}, "e"),
        ({"properties": {"image": {"type": "string", "description": "f"}}}, "f"),
        ({"name": "nothing"}, None),
        ({"image": 5}, None),
    ],
)
def test_image_choice_order(meta: dict[str, object], expected: str | None) -> None:
    assert choose_image(meta) == expected


def test_image_data_inline_svg_becomes_a_data_uri() -> None:
    svg = "<svg xmlns='http://www.w3.org/2000/svg'><rect fill='#fff'/></svg>"
    uri = choose_image({"image_data": svg, "properties": {"image": "later"}})
    assert uri is not None and uri.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]).decode() == svg


def test_attributes_kept_in_both_shapes() -> None:
    attrs = [{"trait_type": "Fur", "value": "Gold"}]
    assert attributes_of({"attributes": attrs}) == attrs
    assert attributes_of({"traits": {"Fur": "Gold"}}) == attrs
    assert attributes_of({}) == []
