"""Media: type by magic bytes, decode under caps, render SVG offline.

Pure. The type is taken from the bytes only, never from a Content-Type header or an extension.
PNG, JPEG, GIF (first frame), WebP (first frame) and BMP are decoded by Pillow after their header
says how big they are: more pixels than ``max_pixels`` or more frames than ``max_frames`` →
ImageTooLarge, before any pixel is decompressed. SVG is rendered by resvg (a Rust renderer with no
network access and no scripting) after a sanitising pass that drops scripts, ``foreignObject``,
entity declarations and every ``href`` except same-document ``#id`` and inline raster ``data:``
images, so nothing outside the SVG's own bytes is ever read; the output is capped at
``svg_max_side`` pixels. Time and memory stay bounded because the canvas is capped and usvg refuses
trees past one million nodes (an exponential ``<use>`` fan-out: 10^5 nodes render in about 2 s,
10^6 are refused in under 1 s); the renderer itself cannot be interrupted.
Video, audio, 3D models and HTML → UnsupportedMedia with the reason.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from tokenmeta.errors import ImageDecodeError, ImageTooLarge, UnsupportedMedia

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_FRAMES = 1_000
DEFAULT_SVG_MAX_BYTES = 4 << 20
DEFAULT_SVG_MAX_SIDE = 2048
DEFAULT_SVG_MIN_SIDE = 256
_SVG_MAX_ELEMENTS = 200_000

RASTER_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})


@dataclass(frozen=True, slots=True, repr=False)
class DecodedMedia:
    mime: str
    width: int
    height: int
    sha256: str
    data: bytes
    image: Image.Image
    """RGBA when the source has alpha, else RGB; the first frame of an animation."""
    frames: int = 1

    def __repr__(self) -> str:
        return (
            f"DecodedMedia({self.mime}, {self.width}x{self.height}, frames={self.frames}, "
            f"sha256={self.sha256[:12]}…, {len(self.data)} bytes)"
        )


def sniff(data: bytes) -> str | None:
    """The MIME type the bytes themselves declare, or None when unknown."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"BM") and len(head) >= 26 and head[14] in (12, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return "audio/mpeg"
    if head.startswith(b"glTF"):
        return "model/gltf-binary"
    if head.startswith(b"%PDF"):
        return "application/pdf"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "image/x-icon"
    text = _text_head(data)
    if text is not None:
        low = text.lower()
        if low.startswith(("<!doctype html", "<html", "<head", "<body")):
            return "text/html"
        if low.startswith("<svg") or (
            low.startswith(("<?xml", "<!--", "<!doctype svg")) and "<svg" in low
        ):
            return "image/svg+xml"
        if low.startswith(("{", "[")):
            return "application/json"
        if low.startswith("<") and "<html" in low:
            return "text/html"
    return None


def _text_head(data: bytes) -> str | None:
    head = data[:2048].lstrip(b"\xef\xbb\xbf")
    try:
        text = head.decode("utf-8", "strict")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            return None
        text = head[: exc.start].decode("utf-8")
    return text.lstrip()


def is_image_type(mime: str | None) -> bool:
    return mime in RASTER_TYPES or mime == "image/svg+xml"


def decode_media(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    svg_max_bytes: int = DEFAULT_SVG_MAX_BYTES,
    svg_max_side: int = DEFAULT_SVG_MAX_SIDE,
) -> DecodedMedia:
    """Decode image bytes; raises UnsupportedMedia, ImageTooLarge or ImageDecodeError."""
    mime = sniff(data)
    digest = hashlib.sha256(data).hexdigest()
    if mime == "image/svg+xml":
        if len(data) > svg_max_bytes:
            raise ImageTooLarge(f"SVG of {len(data)} bytes is over the {svg_max_bytes} cap")
        image = render_svg(data, max_side=svg_max_side)
        return DecodedMedia(mime, image.width, image.height, digest, data, image)
    if mime not in RASTER_TYPES:
        raise UnsupportedMedia(_unsupported_reason(mime, data))
    frames = count_gif_frames(data, stop_after=max_frames + 1) if mime == "image/gif" else 1
    if frames > max_frames:
        raise ImageTooLarge(f"GIF has more than {max_frames} frames")
    image, frames = _decode_raster(data, max_pixels, max_frames, frames)
    return DecodedMedia(mime, image.width, image.height, digest, data, image, frames)


def _unsupported_reason(mime: str | None, data: bytes) -> str:
    if mime is None:
        return f"unknown media type (first bytes {data[:8].hex()})"
    if mime.startswith(("video/", "audio/", "model/")):
        return f"{mime} is not an image (kept as animation, not embedded)"
    if mime == "text/html":
        return "HTML page, not an image"
    return f"{mime} is not a supported image type"


def _decode_raster(
    data: bytes, max_pixels: int, max_frames: int, frames: int
) -> tuple[Image.Image, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                if width <= 0 or height <= 0:
                    raise ImageDecodeError("image has no pixels")
                if width * height > max_pixels:
                    raise ImageTooLarge(f"{width}x{height} is over the {max_pixels} pixel cap")
                if im.format == "WEBP":
                    frames = int(getattr(im, "n_frames", 1))
                    if frames > max_frames:
                        raise ImageTooLarge(f"WebP has {frames} frames, over {max_frames}")
                im.seek(0)
                im.load()
                return _normalise_mode(im), frames
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(str(exc)) from None
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"cannot identify image: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise ImageDecodeError(f"corrupt image: {exc}") from None
    except MemoryError:
        raise ImageTooLarge("decoding ran out of memory") from None


def _normalise_mode(im: Image.Image) -> Image.Image:
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        return im.convert("RGBA") if im.mode != "RGBA" else im.copy()
    return im.convert("RGB") if im.mode != "RGB" else im.copy()


def count_gif_frames(data: bytes, *, stop_after: int) -> int:
    """Image descriptors in a GIF, counted by walking its blocks without decompressing any."""
    if len(data) < 13:
        return 0
    pos = 13
    flags = data[10]
    if flags & 0x80:
        pos += 3 * (1 << ((flags & 7) + 1))
    frames = 0
    n = len(data)
    while pos < n and frames < stop_after:
        marker = data[pos]
        if marker == 0x3B:  # trailer
            break
        if marker == 0x21:  # extension: label, then sub-blocks
            pos += 2
        elif marker == 0x2C:  # image descriptor, optional local table, LZW size, sub-blocks
            frames += 1
            if pos + 10 > n:
                break
            local = data[pos + 9]
            pos += 10
            if local & 0x80:
                pos += 3 * (1 << ((local & 7) + 1))
            pos += 1
        else:
            break
        while pos < n:
            size = data[pos]
            pos += 1 + size
            if size == 0:
                break
    return frames


# --- SVG ---------------------------------------------------------------------------------------

_SCRIPT = re.compile(rb"<script\b.*?(</script\s*>|/>)", re.IGNORECASE | re.DOTALL)
_FOREIGN = re.compile(rb"<foreignObject\b.*?(</foreignObject\s*>|/>)", re.IGNORECASE | re.DOTALL)
_HREF = re.compile(rb"""(\s(?:xlink:)?href\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_EVENT_ATTR = re.compile(rb"""\son[a-z]+\s*=\s*(["']).*?\1""", re.IGNORECASE | re.DOTALL)
_SAFE_DATA = re.compile(rb"^\s*data:image/(png|jpe?g|gif|webp|bmp)[;,]", re.IGNORECASE)
_CSS_URL = re.compile(rb"""url\(\s*(["']?)(?!#)[^)]*\)""", re.IGNORECASE)
_IMPORT = re.compile(rb"@import[^;]*;?", re.IGNORECASE)
_ROOT = re.compile(rb"<svg\b[^>]*>", re.IGNORECASE | re.DOTALL)
_NUMBER = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def sanitize_svg(data: bytes) -> bytes:
    """Drop everything that could reach outside the SVG or run code; refuse entity tricks."""
    if re.search(rb"<!ENTITY", data, re.IGNORECASE):
        raise UnsupportedMedia("SVG declares XML entities (refused: entity expansion)")
    if data.count(b"<") > _SVG_MAX_ELEMENTS:
        raise ImageTooLarge(f"SVG has more than {_SVG_MAX_ELEMENTS} elements")
    data = _SCRIPT.sub(b"", data)
    data = _FOREIGN.sub(b"", data)
    data = _EVENT_ATTR.sub(b"", data)

    def keep_href(match: re.Match[bytes]) -> bytes:
        value = match.group(3)
        if value.strip().startswith(b"#") or _SAFE_DATA.match(value):
            return match.group(0)
        return b""

    data = _HREF.sub(keep_href, data)
    data = _IMPORT.sub(b"", data)
    return _CSS_URL.sub(b"none", data)


def _svg_size(data: bytes) -> tuple[float, float] | None:
    root = _ROOT.search(data)
    if root is None:
        return None
    tag = root.group(0)

    def attr(name: bytes) -> float | None:
        m = re.search(
            rb"\s" + name + rb"""\s*=\s*["']\s*(""" + _NUMBER + rb")\s*(px)?\s*[\"']", tag
        )
        return float(m.group(1)) if m else None

    width, height = attr(b"width"), attr(b"height")
    if width and height and width > 0 and height > 0:
        return width, height
    box = re.search(rb"""viewBox\s*=\s*["']([^"']*)["']""", tag, re.IGNORECASE)
    if box:
        parts = re.findall(_NUMBER, box.group(1))
        if len(parts) == 4 and float(parts[2]) > 0 and float(parts[3]) > 0:
            return float(parts[2]), float(parts[3])
    return None


def render_svg(
    data: bytes, *, max_side: int = DEFAULT_SVG_MAX_SIDE, min_side: int = DEFAULT_SVG_MIN_SIDE
) -> Image.Image:
    """Rasterise an SVG offline into RGBA, its long side between ``min_side`` and ``max_side``."""
    try:
        import resvg_py
    except ImportError:  # pragma: no cover - depends on the installation
        raise UnsupportedMedia("SVG rendering needs the resvg-py package") from None
    clean = sanitize_svg(data)
    size = _svg_size(clean)
    if size is None:
        width = 512
    else:
        w, h = size
        long_side = min(max(max(w, h), min_side), max_side)
        width = max(1, round(long_side * w / max(w, h)))
    try:
        text = clean.decode("utf-8")
    except UnicodeDecodeError:
        text = clean.decode("latin-1")
    try:
        png = resvg_py.svg_to_bytes(svg_string=text, width=width, skip_system_fonts=False)
    except (ValueError, RuntimeError) as exc:
        if "limit" in str(exc):  # usvg's node limit: an exponential <use> fan-out
            raise ImageTooLarge(f"SVG expands past the renderer's limits: {exc}") from None
        raise ImageDecodeError(f"cannot render SVG: {exc}") from None
    with Image.open(io.BytesIO(bytes(png))) as im:
        if im.width * im.height > max_side * max_side:
            raise ImageTooLarge(f"SVG renders to {im.width}x{im.height}")
        im.load()
        return im.convert("RGBA")
