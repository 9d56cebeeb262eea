"""Image bytes for the media and resolve tests, built in memory."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png(
    width: int = 16, height: int = 16, mode: str = "RGBA", color: object = (255, 0, 0, 128)
) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), color).save(buf, "PNG")  # type: ignore[arg-type]
    return buf.getvalue()


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file that claims ``width`` × ``height`` pixels: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def animated_gif(frames: int, size: int = 8) -> bytes:
    images = [
        Image.new("RGB", (size, size), (i % 256, (i * 7) % 256, i // 256 * 60))
        for i in range(frames)
    ]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=20, loop=0)
