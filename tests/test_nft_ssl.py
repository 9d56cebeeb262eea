"""nft-ssl-v1 and v2: augmentations on real art, a tiny real training run, the shipped weights,
and how they separate held-out traits against raw pixels and the untrained network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nftvision.extractors import get_extractor
from nftvision.extractors.learned import SHIPPED, build_nft_ssl
from nftvision.preprocess import resize_square
from nftvision.similarity import analyse
from nftvision.ssl import augment
from nftvision.ssl.data import Token, folder_tokens, punk_tokens, trait_values
from nftvision.ssl.holdout import HOLDOUT_FRACTION, HOLDOUT_SEED, is_held_out
from nftvision.ssl.model import INPUT_SIZE
from nftvision.ssl.palette import palettise
from nftvision.ssl.train import TrainConfig, save_weights, sha256_file, sidecar_path, train


@pytest.fixture(scope="module")
def held_out_punks() -> list[Token]:
    return punk_tokens("held-out")


@pytest.fixture(scope="module")
def sample(held_out_punks: list[Token]) -> tuple[list[Token], torch.Tensor, torch.Tensor]:
    tokens = held_out_punks[:16]
    p = palettise([t.image for t in tokens], INPUT_SIZE)
    return tokens, torch.from_numpy(p.index.astype(np.int64)), torch.from_numpy(p.palette) / 255.0


def _partition(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered by first appearance: equal arrays mean the same partition of pixels."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse.reshape(-1)]


def _colour_classes(img: torch.Tensor) -> np.ndarray:
    """Per image, the partition of its pixels by colour: its shapes."""
    flat = img.permute(0, 2, 3, 1).reshape(len(img), -1, 3).numpy()
    return np.stack([_partition(np.unique(f, axis=0, return_inverse=True)[1]) for f in flat])


def _index_classes(index: torch.Tensor) -> np.ndarray:
    return np.stack([_partition(ix.reshape(-1).numpy()) for ix in index])


def test_palette_keeps_the_art_and_marks_the_transparent_background(sample) -> None:
    tokens, index, palette = sample
    rendered = augment.render(index, palette).permute(0, 2, 3, 1).numpy()
    for t, ix, rgb in zip(tokens, index.numpy(), rendered, strict=True):
        alpha = np.asarray(resize_square(t.image.getchannel("A"), INPUT_SIZE))
        assert np.array_equal(ix == 0, alpha == 0)  # the background is exactly the transparent part
        composite = np.asarray(resize_square(t.image.convert("RGB"), INPUT_SIZE))
        opaque = alpha == 255
        assert np.abs(rgb[opaque] * 255 - composite[opaque]).max() < 0.51


def test_palette_remap_changes_colours_and_keeps_every_shape(sample) -> None:
    _, index, palette = sample
    gen = torch.Generator().manual_seed(1)
    before = augment.render(index, palette)
    after = augment.render(index, augment.remap_palette(palette, gen))
    # every region keeps its pixels and gets a colour of its own
    assert np.array_equal(_colour_classes(after), _index_classes(index))
    fg = (index != 0)[:, None].expand_as(before)
    assert (before[fg] != after[fg]).float().mean() > 0.9
    assert torch.equal(before[~fg], after[~fg])  # the background is swap_background's job


def test_background_swap_touches_only_the_background(sample) -> None:
    _, index, palette = sample
    gen = torch.Generator().manual_seed(2)
    before = augment.render(index, palette)
    after = augment.render(index, augment.swap_background(palette, gen))
    bg = (index == 0)[:, None].expand_as(before)
    assert torch.equal(before[~bg], after[~bg])
    assert (before[bg] != after[bg]).float().mean() > 0.9


def test_hue_rotation_keeps_greys_and_brightness_and_permutation_keeps_shapes(sample) -> None:
    _, index, palette = sample
    grey = torch.tensor([[[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]]])
    assert torch.allclose(augment.rotate_hue(grey, torch.tensor([1.3])), grey, atol=1e-6)
    angle = torch.full((len(palette),), 2.0)
    rotated = augment.rotate_hue(palette, angle)
    assert not torch.allclose(rotated, palette, atol=0.05)
    unclipped = ((rotated > 0) & (rotated < 1)).all(dim=-1)
    assert unclipped.float().mean() > 0.3
    assert torch.allclose(rotated.sum(-1)[unclipped], palette.sum(-1)[unclipped], atol=1e-5)
    gen = torch.Generator().manual_seed(3)
    permuted = augment.permute_channels(palette, gen)
    assert torch.equal(permuted.sort(dim=-1).values, palette.sort(dim=-1).values)
    before = augment.render(index, palette)
    assert np.array_equal(_colour_classes(augment.render(index, permuted)), _colour_classes(before))


def test_shift_and_flip_move_the_art_without_changing_it(sample) -> None:
    _, index, _ = sample
    gen = torch.Generator().manual_seed(4)
    flipped = augment.shift_flip(index, 0, 1.0, gen)
    assert torch.equal(flipped, index.flip(-1))
    shifted = augment.shift_flip(index, 2, 0.0, gen)
    pad = torch.nn.functional.pad(index, (2, 2, 2, 2))
    for i in range(len(index)):
        assert any(
            torch.equal(shifted[i], pad[i, dy : dy + INPUT_SIZE, dx : dx + INPUT_SIZE])
            for dy in range(5)
            for dx in range(5)
        )


def test_colour_dropout_hides_whole_colours_and_erasing_hides_one_rectangle(sample) -> None:
    _, index, palette = sample
    gen = torch.Generator().manual_seed(5)
    dropped = augment.drop_colours(index, palette.shape[1], 0.5, gen)
    assert ((dropped != index) <= (dropped == 0)).all()  # hidden only behind the background
    assert (dropped == 0).sum() > (index == 0).sum()
    for ix, dr in zip(index, dropped, strict=True):
        for entry in ix.unique().tolist():
            shown = dr[ix == entry]
            assert bool((shown == entry).all()) or bool((shown == 0).all())  # all or nothing
    erased = augment.erase(index, 1.0, 12, gen)
    assert ((erased != index) <= (erased == 0)).all()
    for ix, er in zip(index, erased, strict=True):
        ys, xs = torch.nonzero(er != ix, as_tuple=True)
        if len(ys):
            assert ys.max() - ys.min() < 12 and xs.max() - xs.min() < 12
    assert torch.equal(augment.erase(index, 0.0, 12, gen), index)


def test_views_of_v1_draw_nothing_for_the_hiding_ops(sample) -> None:
    # nft-ssl-v1's recipe has them off: its views, so its weights, must stay reproducible
    _, index, palette = sample
    v1 = augment.Augment()
    a = augment.view(index, palette, v1, torch.Generator().manual_seed(6))
    hiding = augment.Augment(p_drop=1e-9, p_erase=1e-9)
    b = augment.view(index, palette, hiding, torch.Generator().manual_seed(6))
    assert a.shape == b.shape and not torch.equal(a, b)  # on, they consume the generator
    c = augment.view(index, palette, v1, torch.Generator().manual_seed(6))
    assert torch.equal(a, c)


def test_holdout_is_a_stable_seeded_share() -> None:
    held = [is_held_out("cryptopunks", i) for i in range(10_000)]
    assert held == [is_held_out("cryptopunks", str(i)) for i in range(10_000)]
    assert abs(np.mean(held) - HOLDOUT_FRACTION) < 0.02
    assert held != [is_held_out("cryptopunks", i, seed=HOLDOUT_SEED + 1) for i in range(10_000)]


def test_a_tiny_training_run_lowers_the_loss_and_writes_loadable_weights(
    shared_data: Path, held_out_punks: list[Token], tmp_path: Path
) -> None:
    birds = folder_tokens(shared_data / "moonbirds-10k", "all", limit=24)
    tokens = held_out_punks[:24] + birds
    data = palettise([t.image for t in tokens], INPUT_SIZE)
    config = TrainConfig(epochs=8, batch_size=24, seed=0)
    steps: list[float] = []
    result = train(data, config, lambda step, total, loss: steps.append(loss))
    assert len(steps) == result.steps == 16
    assert result.epoch_losses[-1] < result.epoch_losses[0]

    path = tmp_path / "nft-ssl-v1.pt"
    digest = save_weights(path, result, config, {"collections": {"test": len(tokens)}})
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["sha256"] == digest == sha256_file(path) and meta["epochs"] == 8
    ext = build_nft_ssl(device=torch.device("cpu"), weights_dir=tmp_path)
    assert ext.weights == f"sha256:{digest[:16]}"
    vectors = ext.embed([t.image for t in tokens[:5]])
    assert vectors.shape == (5, 128)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_shipped_weights_load_and_say_how_they_were_made() -> None:
    meta = json.loads(sidecar_path(SHIPPED).read_text())
    assert meta["version"] == "nft-ssl-v1" and meta["sha256"] == sha256_file(SHIPPED)
    assert meta["data"]["labels_used"] is False
    assert meta["data"]["holdout"] == {"seed": HOLDOUT_SEED, "fraction": HOLDOUT_FRACTION}
    assert SHIPPED.stat().st_size < 4 * 2**20
    ext = get_extractor("nft-ssl-v1")
    assert ext.dim == 128 and ext.weights == f"sha256:{meta['sha256'][:16]}"
    assert "square48" in ext.preprocess_version
    v2 = get_extractor("nft-ssl-v2")  # the same network, read at its third block
    assert v2.dim == 128 * 6 * 6 and v2.weights == ext.weights
    assert "block3" in v2.preprocess_version and v2.preprocess_version != ext.preprocess_version


def _d_prime(name: str, images: list, labels: np.ndarray) -> float:
    vectors = get_extractor(name).embed(images)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    groups = {g: vectors[labels == g] for g in np.unique(labels)}
    return analyse(groups, center=True).d_prime


def test_on_held_out_punks_it_separates_accessory_counts_better_than_pixels(
    held_out_punks: list[Token],
) -> None:
    # by type it does not: pixels lead there (see the README's table)
    images = [t.image for t in held_out_punks]
    counts = np.array([min(len(t.attributes) - 1, 4) for t in held_out_punks])
    scores = {n: _d_prime(n, images, counts) for n in ("raw-rgb-v1", "nft-ssl-v1")}
    assert scores["nft-ssl-v1"] > scores["raw-rgb-v1"]


def test_on_held_out_moonbirds_it_separates_body_styles_better_than_pixels_and_its_control(
    shared_data: Path,
) -> None:
    birds = folder_tokens(shared_data / "moonbirds-10k", "held-out", collection="moonbirds")
    bodies = np.array([trait_values(t, "Body")[0] for t in birds])
    common = np.isin(bodies, [b for b in np.unique(bodies) if (bodies == b).sum() >= 5])
    images = [t.image for t, keep in zip(birds, common, strict=True) if keep]
    names = ("raw-rgb-v1", "nft-ssl-v1", "nft-ssl-v1:random", "nft-ssl-v2", "nft-ssl-v2:random")
    scores = {n: _d_prime(n, images, bodies[common]) for n in names}
    assert scores["nft-ssl-v1"] > scores["raw-rgb-v1"]
    assert scores["nft-ssl-v1"] > scores["nft-ssl-v1:random"]  # the training, not the network
    # where a part sits matters in a collection drawn in one pose: the 6×6 map keeps it
    assert scores["nft-ssl-v2"] > scores["nft-ssl-v1"]
    assert scores["nft-ssl-v2"] > scores["nft-ssl-v2:random"]


def test_train_extractor_command_writes_weights(shared_data: Path, tmp_path: Path) -> None:
    from nftwatch.cli import cli

    folder = tmp_path / "birds"
    folder.mkdir()
    for src in sorted((shared_data / "moonbirds-10k").glob("*.png"))[:20]:
        (folder / src.name).write_bytes(src.read_bytes())
    out = tmp_path / "w" / "nft-ssl-v1.pt"
    result = CliRunner().invoke(
        cli,
        [
            "train-extractor",
            f"moonbirds={folder}",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sha256"] == sha256_file(out) and len(summary["epoch_losses"]) == 2
    assert summary["images"] == sum(
        not is_held_out("moonbirds", p.stem) for p in folder.glob("*.png")
    )
