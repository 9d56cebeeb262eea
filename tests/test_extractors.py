"""Extractors: shapes, unit norms, batching, compositing, weights loading and its errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nftvision.errors import MissingWeights
from nftvision.extractors import available_extractors, get_extractor
from nftvision.extractors.direct import gradient_magnitudes
from nftvision.preprocess import BACKGROUND, batch_square, resize_square, to_rgb


def _images(n: int, size: int = 24, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        arr = rng.integers(0, 256, size=(size, size, 4), dtype=np.uint8)
        arr[..., 3] = np.where(rng.random((size, size)) < 0.3, 0, 255)
        out.append(Image.fromarray(arr))
    return out


def test_ids_are_listed() -> None:
    assert available_extractors() == [
        "raw-rgb-v1",
        "gradient-v1",
        "effnet-lite0-v1",
        "vgg16-fc7-v1",
        "vgg19-fc7-v1",
        "resnet50-v1",
        "nft-ssl-v1",
        "nft-ssl-v2",
        "clip-vit-b32-v1",
        "dinov2-vits14-v1",
    ]
    with pytest.raises(ValueError, match="unknown extractor"):
        get_extractor("nope-v1")


def test_transparency_is_composited_on_white() -> None:
    arr = np.zeros((4, 4, 4), dtype=np.uint8)
    arr[1, 1] = (200, 10, 10, 255)
    arr[2, 2] = (0, 0, 200, 128)
    rgb = np.asarray(to_rgb(Image.fromarray(arr)))
    assert tuple(rgb[0, 0]) == BACKGROUND
    assert tuple(rgb[1, 1]) == (200, 10, 10)
    assert abs(int(rgb[2, 2, 2]) - (200 * 128 + 255 * 127) // 255) <= 1
    assert rgb[2, 2, 0] in (126, 127, 128)
    # a palette image with a transparent index behaves the same
    pal = Image.fromarray(arr).convert("P")
    pal.info["transparency"] = np.asarray(pal)[0, 0].item()
    assert tuple(np.asarray(to_rgb(pal))[0, 0]) == BACKGROUND


def test_pixel_art_upscales_with_nearest_and_photos_shrink_smoothly() -> None:
    art = _images(1, size=24)[0]
    up = np.asarray(resize_square(to_rgb(art), 224))
    src_colours = {tuple(c) for c in np.asarray(to_rgb(art)).reshape(-1, 3)}
    assert {tuple(c) for c in up.reshape(-1, 3)} <= src_colours  # no invented colours
    stripes = np.zeros((400, 400, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    small = np.asarray(resize_square(Image.fromarray(stripes), 100))
    assert 100 < small.mean() < 155 and small.std() < 20  # averaged, not aliased


@pytest.mark.parametrize("name", ["raw-rgb-v1", "gradient-v1"])
def test_direct_extractors(name: str) -> None:
    ext = get_extractor(name)
    assert ext.dim <= 4000 and ext.weights == "none" and ext.preprocess_version
    imgs = _images(7)
    v = ext.embed(imgs, batch_size=3)
    assert v.shape == (7, ext.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ext.embed(imgs, batch_size=100), v, atol=1e-6)
    # the same picture on white without transparency gives the same vector
    flat = [to_rgb(im) for im in imgs]
    np.testing.assert_allclose(ext.embed(flat), v, atol=1e-6)
    assert ext.embed([]).shape == (0, ext.dim)


def test_raw_rgb_is_the_pixels() -> None:
    ext = get_extractor("raw-rgb-v1")
    img = _images(1, size=32)[0]
    expected = np.asarray(to_rgb(img), dtype=np.float32).reshape(-1) / 255.0
    np.testing.assert_allclose(ext.embed([img])[0], expected / np.linalg.norm(expected), atol=1e-6)


def test_gradients_keep_the_colour_of_an_edge() -> None:
    def edge(colour: tuple[int, int, int]) -> Image.Image:
        arr = np.zeros((32, 32, 3), dtype=np.uint8)
        arr[:, 16:] = colour
        return Image.fromarray(arr)

    ext = get_extractor("gradient-v1")
    red, blue, red2 = ext.embed([edge((255, 0, 0)), edge((0, 0, 255)), edge((128, 0, 0))])
    assert abs(float(red @ blue)) < 1e-6  # same geometry, different channel
    assert float(red @ red2) > 0.999  # same edge, different contrast
    flat = gradient_magnitudes(batch_square([Image.new("RGB", (8, 8), (9, 9, 9))], 64))
    assert not flat.any()


@pytest.mark.parametrize(
    ("name", "dim"), [("vgg16-fc7-v1", 4096), ("vgg19-fc7-v1", 4096), ("resnet50-v1", 2048)]
)
def test_torchvision_extractors_with_random_weights(
    name: str, dim: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    ext = get_extractor(name, allow_random=True, precision="fp32")
    assert ext.dim == dim and ext.weights == "random-init:seed0"
    imgs = _images(5)
    v = ext.embed(imgs, batch_size=2)
    assert v.shape == (5, dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ext.embed(imgs, batch_size=5), v, atol=1e-4)
    assert not np.allclose(v[0], v[1], atol=1e-4)


def test_missing_weights_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MissingWeights) as err:
        get_extractor("resnet50-v1", weights_dir=tmp_path / "mine")
    message = str(err.value)
    assert "resnet50-11ad3fa6.pth" in message
    assert "TORCHVISION_WEIGHTS_DIR" in message and str(tmp_path / "mine") in message
    assert "\n" not in message
    assert err.value.code == "MissingWeights" and not err.value.retryable


def test_weights_load_from_weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint under torchvision's file name in ``weights_dir`` is loaded, not ignored."""
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    torch.manual_seed(123)
    model = torchvision.models.resnet50(weights=None).eval()
    path = tmp_path / "resnet50-11ad3fa6.pth"
    torch.save(model.state_dict(), path)

    ext = get_extractor("resnet50-v1", weights_dir=tmp_path, precision="fp32")
    assert ext.weights == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    imgs = _images(2)
    model.fc = torch.nn.Identity()
    x = ext.to_input(ext.pixels(imgs))  # type: ignore[attr-defined]
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(model(x), dim=1).numpy()
    np.testing.assert_allclose(ext.embed(imgs), expected, atol=1e-4)


def test_random_control_is_named_as_such() -> None:
    ext = get_extractor("effnet-lite0-v1:random")
    assert ext.name == "effnet-lite0-v1:random" and ext.weights.startswith("random-init")
    assert ext.dim == 1280
    v = ext.embed(_images(3))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_cuda_is_not_touched_by_import_or_cpu_use() -> None:
    code = (
        "import torch, nftvision.extractors, nftvision.extractors.cnn, nftvision.similarity\n"
        "from nftvision.extractors import get_extractor\n"
        "from PIL import Image\n"
        "get_extractor('effnet-lite0-v1', device='cpu').embed([Image.new('RGB', (24, 24))])\n"
        "print(torch.cuda.is_initialized())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
