from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from tests.support.media import animated_gif, encode, png, png_header_only
from tokenmeta.errors import ImageDecodeError, ImageTooLarge, UnsupportedMedia
from tokenmeta.media import count_gif_frames, decode_media, sanitize_svg, sniff


def test_png_decodes_with_alpha_and_hash() -> None:
    data = png(20, 10)
    m = decode_media(data)
    assert (m.mime, m.width, m.height, m.image.mode) == ("image/png", 20, 10, "RGBA")
    assert m.sha256 == hashlib.sha256(data).hexdigest() and m.data == data


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("BMP", "image/bmp"), ("GIF", "image/gif")],
)
def test_other_raster_formats(fmt: str, mime: str) -> None:
    data = encode(Image.new("RGB", (12, 9), (0, 128, 255)), fmt)
    m = decode_media(data)
    assert (m.mime, m.width, m.height) == (mime, 12, 9)
    assert m.image.mode in ("RGB", "RGBA")


def test_type_comes_from_bytes_not_names() -> None:
    assert sniff(png()) == "image/png"
    assert sniff(b"<!DOCTYPE html><html></html>") == "text/html"
    assert sniff(b"\x00\x00\x00\x18ftypmp42....") == "video/mp4"
    assert sniff(b'{"a": 1}') == "application/json"
    assert sniff(b"\xef\xbb\xbf<?xml version='1.0'?><svg></svg>") == "image/svg+xml"


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png_header_only(20000, 20000)
    assert len(bomb) < 2000
    with pytest.raises(ImageTooLarge):
        decode_media(bomb)


def test_gif_first_frame_and_frame_cap() -> None:
    data = animated_gif(400)
    assert count_gif_frames(data, stop_after=10_000) == 400
    m = decode_media(data)
    assert m.frames == 400 and (m.width, m.height) == (8, 8)
    assert m.image.getpixel((0, 0)) == m.image.getpixel((7, 7))
    with pytest.raises(ImageTooLarge):
        decode_media(data, max_frames=100)


def test_truncated_image_is_a_decode_error() -> None:
    data = encode(Image.new("RGB", (64, 64), "blue"), "JPEG")
    with pytest.raises(ImageDecodeError):
        decode_media(data[:200])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64, "video/mp4"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 64, "video/webm"),
        (b"<!doctype html><html><body>hi</body></html>", "HTML"),
        (b"\x01\x02\x03\x04garbage", "unknown"),
    ],
)
def test_video_html_and_unknown_are_unsupported_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedMedia, match=reason):
        decode_media(data)


SVG_HOSTILE = b"""<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
  width="24" height="24" viewBox="0 0 24 24">
  <script>alert(1)</script>
  <rect width="24" height="24" fill="#00ff00" onload="alert(2)"/>
  <image href="http://169.254.169.254/latest/meta-data" width="24" height="24"/>
  <image xlink:href="file:///etc/passwd" width="24" height="24"/>
  <style>@import url(http://evil.example/x.css);
    circle { fill: url(http://evil.example/p); }</style>
</svg>"""


def test_svg_with_script_and_external_hrefs_renders_offline() -> None:
    clean = sanitize_svg(SVG_HOSTILE)
    for gone in (b"<script", b"169.254", b"file://", b"onload", b"evil.example"):
        assert gone not in clean
    m = decode_media(SVG_HOSTILE)
    assert m.mime == "image/svg+xml" and m.image.mode == "RGBA"
    assert max(m.width, m.height) >= 256  # small pixel-art SVGs are scaled up for embedding
    pixel = m.image.getpixel((m.width // 2, m.height // 2))
    assert isinstance(pixel, tuple)
    _r, g, _b, a = pixel
    assert g > 200 and a == 255


def test_svg_entity_expansion_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;">]><svg xmlns="http://www.w3.org/2000/svg">&b;</svg>'
    )
    with pytest.raises(UnsupportedMedia):
        decode_media(laughs)


def test_huge_svg_canvas_is_rendered_within_the_side_cap() -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="50000">'
        b'<rect width="9" height="9"/></svg>'
    )
    m = decode_media(svg, svg_max_side=512)
    assert (m.width, m.height) == (512, 256)


def test_svg_use_fanout_bomb_is_refused() -> None:
    parts = [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b'<defs><rect id="l0" width="1" height="1"/>'
    ]
    for i in range(1, 7):  # 10^6 nodes once expanded
        uses = b"".join(b'<use href="#l%d" x="%d"/>' % (i - 1, j % 3) for j in range(10))
        parts.append(b'<g id="l%d">' % i + uses + b"</g>")
    parts.append(b'</defs><use href="#l6"/></svg>')
    with pytest.raises(ImageTooLarge):
        decode_media(b"".join(parts))
