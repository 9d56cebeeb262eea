"""The compiled CPU path: BatchNorm folding, vectors equal to eager fp32, when it compiles, and
the fallback to eager when compiling fails."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from torch import nn

from nftvision.datasets import load_cryptopunks, load_image_folder
from nftvision.extractors import cnn, get_extractor
from nftvision.extractors.cnn import CnnExtractor
from nftvision.extractors.fastpath import fold_batchnorm

EGYPTIAN_CAT, ESPRESSO = 285, 967


def _cnn(name: str, **kwargs: object) -> CnnExtractor:
    ext = get_extractor(name, allow_random=True, **kwargs)  # type: ignore[arg-type]
    assert isinstance(ext, CnnExtractor)
    return ext


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


@pytest.fixture(scope="module")
def mixed(shared_data: Path) -> list[Image.Image]:
    """Two photos, then real pixel art: punks (24×24, transparent), Moonbirds (42×42, palette)."""
    photos = [Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]
    punks = [p.image for p in load_cryptopunks()[::500]]
    birds = [item.image for item in load_image_folder(shared_data / "moonbirds", limit=6)]
    return photos + punks + birds


@pytest.fixture(scope="module")
def effnet_fast() -> CnnExtractor:
    """The pretrained default as a warm worker runs it (default precision, compiled)."""
    return _cnn("effnet-lite0-v1", optimize="compile")


@pytest.mark.parametrize("name", ["resnet50-v1:random", "effnet-lite0-v1"])
def test_folding_batchnorm_keeps_the_outputs(name: str) -> None:
    ext = _cnn(name, precision="fp32", optimize="eager")
    folded = copy.deepcopy(ext.features)
    with torch.no_grad():
        count = fold_batchnorm(folded)
    assert count == sum(isinstance(m, nn.BatchNorm2d) for m in ext.features.modules()) > 40
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want, got = ext.features(x), folded(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_folding_leaves_a_net_without_batchnorm_alone() -> None:
    ext = _cnn("vgg16-fc7-v1:random", precision="fp32", optimize="eager")
    before = {k: v.clone() for k, v in ext.features.state_dict().items()}
    assert fold_batchnorm(ext.features) == 0
    after = ext.features.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_auto_compiles_only_after_enough_images(
    monkeypatch: pytest.MonkeyPatch, mixed: list[Image.Image]
) -> None:
    compiled: list[nn.Module] = []

    def spy(module: nn.Module, **kwargs: object) -> nn.Module:
        compiled.append(module)
        return module  # the prepared copy, run eagerly: same contract, no compiler needed

    monkeypatch.setattr(cnn, "COMPILE_AFTER", 4)
    monkeypatch.setattr(torch, "compile", spy)
    ext = _cnn("effnet-lite0-v1:random", precision="fp32")
    assert ext.optimize == "auto"
    first = ext.embed(mixed[:3])
    assert not ext.compiled and not compiled  # one-off use stays eager
    again = ext.embed(mixed[:3])
    assert ext.compiled and len(compiled) == 1
    assert not any(isinstance(m, nn.BatchNorm2d) for m in compiled[0].modules())  # folded
    np.testing.assert_allclose(again, first, atol=1e-5)


def test_compiled_vectors_equal_eager_fp32(
    effnet_fast: CnnExtractor, mixed: list[Image.Image]
) -> None:
    assert effnet_fast.optimize == "compile" and effnet_fast.micro_batch == 4
    eager = _cnn("effnet-lite0-v1", precision="fp32", optimize="eager").embed(mixed, batch_size=8)
    # batch_size 5 → micro-batches of 4 and single images: every path through _features
    fast = effnet_fast.embed(mixed, batch_size=5)
    assert fast.shape == eager.shape and fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosines = _cosines(eager, fast)
    assert cosines.min() >= 0.999, cosines
    assert float(fast[0] @ fast[1]) < 0.9  # different images stay apart
    assert effnet_fast.compiled  # nothing fell back on the way


def test_compiled_logits_still_classify(
    effnet_fast: CnnExtractor, mixed: list[Image.Image]
) -> None:
    effnet_fast.warm_up()
    assert effnet_fast.logits(mixed[:2]).argmax(axis=1).tolist() == [EGYPTIAN_CAT, ESPRESSO]


def test_warm_up_leaves_nothing_to_compile(
    effnet_fast: CnnExtractor, mixed: list[Image.Image]
) -> None:
    from torch._dynamo.utils import counters

    effnet_fast.warm_up()
    graphs = counters["stats"]["unique_graphs"]
    effnet_fast.embed(mixed[:6], batch_size=6)  # a micro-batch of 4 and two single images
    effnet_fast.embed(mixed[:1], batch_size=1)
    assert counters["stats"]["unique_graphs"] == graphs


def test_each_compiled_extractor_keeps_its_own_weights(
    effnet_fast: CnnExtractor, mixed: list[Image.Image]
) -> None:
    """Same architecture, same shapes, other weights: the frozen graphs must not be shared."""
    control = _cnn("effnet-lite0-v1:random", precision="fp32", optimize="compile")
    few = mixed[:5]
    trained, random = effnet_fast.embed(few), control.embed(few)
    assert control.compiled and effnet_fast.compiled
    eager = _cnn("effnet-lite0-v1:random", precision="fp32", optimize="eager").embed(few)
    assert _cosines(eager, random).min() >= 0.999
    assert _cosines(trained, random).max() < 0.9


def test_compiled_bf16_resnet50_agrees_with_fp32(mixed: list[Image.Image]) -> None:
    few = mixed[:2] + mixed[-3:]
    fp32 = _cnn("resnet50-v1:random", precision="fp32", optimize="eager").embed(few)
    fast = _cnn("resnet50-v1:random", precision="bf16", optimize="compile")
    cosines = _cosines(fp32, fast.embed(few))
    assert fast.compiled and fast.amp_dtype == torch.bfloat16
    assert cosines.min() >= 0.999, cosines


def test_falls_back_to_eager_when_compile_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, mixed: list[Image.Image]
) -> None:
    def unsupported(*args: object, **kwargs: object) -> object:
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unsupported)
    ext = _cnn("effnet-lite0-v1:random", precision="fp32", optimize="compile")
    with caplog.at_level(logging.WARNING, logger="nftvision.extractors.cnn"):
        got = ext.embed(mixed[:5])
    assert not ext.compiled and ext.optimize == "eager"
    assert "staying eager" in caplog.text and "not supported" in caplog.text
    want = _cnn("effnet-lite0-v1:random", precision="fp32", optimize="eager").embed(mixed[:5])
    np.testing.assert_allclose(got, want, atol=1e-6)
    ext.warm_up()  # nothing to compile with: a no-op, not an error
    assert not ext.compiled


def test_falls_back_to_eager_when_the_compiled_graph_fails(
    monkeypatch: pytest.MonkeyPatch, mixed: list[Image.Image]
) -> None:
    def broken(module: nn.Module, **kwargs: object) -> object:
        def run(x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("C++ compile failed")  # what inductor raises without a compiler

        return run

    monkeypatch.setattr(torch, "compile", broken)
    ext = _cnn("effnet-lite0-v1:random", precision="fp32", optimize="compile")
    got = ext.embed(mixed[:6], batch_size=6)
    assert not ext.compiled and ext.optimize == "eager"
    want = _cnn("effnet-lite0-v1:random", precision="fp32", optimize="eager").embed(mixed[:6])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_eager_never_compiles(mixed: list[Image.Image]) -> None:
    ext = _cnn("effnet-lite0-v1:random", optimize="eager")
    ext.warm_up()
    ext.embed(mixed[:2])
    assert not ext.compiled
