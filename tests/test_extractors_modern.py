"""CLIP (open_clip) and DINOv2 (timm) loaders: a clear one-line error without weights, seeded
random networks, and the real loading path fed a weights file written from such a network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from nftvision.datasets import load_cryptopunks
from nftvision.errors import MissingWeights
from nftvision.extractors import get_extractor, modern

CASES = [
    (modern.CLIP_NAME, modern.CLIP_FILE, 512),
    (modern.DINOV2_NAME, modern.DINOV2_FILE, 384),
]


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.fixture(scope="module")
def punks() -> list:
    return [p.image for p in load_cryptopunks()[:3]]


def _state(ext) -> dict[str, torch.Tensor]:
    model = ext.features.model
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("name", "file_name", "dim"), CASES)
def test_missing_weights_name_the_file_and_the_cache(
    name: str, file_name: str, dim: int, tmp_path: Path
) -> None:
    with pytest.raises(MissingWeights) as err:
        get_extractor(name, weights_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / file_name) in message and str(tmp_path / "hub") in message


@pytest.mark.parametrize(("name", "file_name", "dim"), CASES)
def test_random_weights_embed_and_a_weights_file_loads_through_the_real_path(
    name: str, file_name: str, dim: int, punks: list, tmp_path: Path
) -> None:
    rand = get_extractor(f"{name}:random")
    assert rand.name == f"{name}:random" and rand.dim == dim
    a = rand.embed(punks)
    assert a.shape == (3, dim) and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    # different punks, different vectors (a random DINOv2 barely moves: its layer scales start
    # at 1e-5, so its class token is nearly the same for every input)
    assert np.abs(a[0] - a[1]).max() > 0
    assert np.allclose(get_extractor(f"{name}:random").embed(punks), a, atol=1e-5)  # seeded

    # perturb the weights, so that loading them is what makes the vectors match
    state = {
        k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
        for k, v in _state(rand).items()
    }
    weights = tmp_path / "w"
    weights.mkdir()
    save_file(state, str(weights / file_name))
    loaded = get_extractor(name, weights_dir=weights)
    assert loaded.weights.startswith("sha256:")
    b = loaded.embed(punks)
    assert not np.allclose(a, b, atol=1e-3)
    rand.features.model.load_state_dict(state)
    assert np.allclose(rand.embed(punks), b, atol=1e-4)


def test_a_file_that_is_not_the_weights_is_a_missing_weights_error(tmp_path: Path) -> None:
    save_file({"nope": torch.zeros(3)}, str(tmp_path / modern.DINOV2_FILE))
    with pytest.raises(MissingWeights, match=modern.DINOV2_NAME):
        get_extractor(modern.DINOV2_NAME, weights_dir=tmp_path)
