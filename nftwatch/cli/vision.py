"""``nftwatch embed`` and ``nftwatch similarity``: image vectors, of local files and of
stored collections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _address_arg, _print_json, _settings


@cli.command()
def embed(
    paths: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    extractor: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed local image files with the given extractors.

    Example: nftwatch embed punk-1.png punk-2.png --extractor gradient-v1 --json
    """
    from nftvision.extractors import get_extractor
    from tokenmeta.media import decode_media

    s = _settings()
    images = [decode_media(p.read_bytes()).image for p in paths]
    embedded = []
    for name in extractor or list(s.extractors):
        model = get_extractor(
            name, device=s.device if s.device != "auto" else "cpu", weights_dir=s.weights_dir
        )
        vectors: list[list[float]] = [v.tolist() for v in model.embed(images)]
        embedded.append((name, model, vectors))
    if as_json:
        _print_json(
            {
                name: {
                    "dim": model.dim,
                    "weights": model.weights,
                    "preprocess": model.preprocess_version,
                    "vectors": {str(p): v for p, v in zip(paths, vectors, strict=True)},
                }
                for name, model, vectors in embedded
            }
        )
        return
    for name, model, vectors in embedded:
        typer.echo(f"{name} ({model.dim}-d, weights {model.weights}):")
        for p, v in zip(paths, vectors, strict=True):
            head = ", ".join(f"{x:+.3f}" for x in v[:6])
            typer.echo(f"  {p}: [{head}, ...]")


def _trait_groups(attributes: object, trait: str) -> list[str]:
    """The groups a token's stored attributes put it in: every value of ``trait``, or with
    ``count:TRAIT`` how many values of it the token has (punks by accessory count)."""
    counting = trait.startswith("count:")
    want = (trait[len("count:") :] if counting else trait).lower()
    items = attributes if isinstance(attributes, list) else []
    values = [
        str(a.get("value"))
        for a in items
        if isinstance(a, dict)
        and str(a.get("trait_type", "")).lower() == want
        and a.get("value") is not None
    ]
    return [str(len(values))] if counting else values


@cli.command()
def similarity(
    collection: Annotated[
        list[str] | None, typer.Option(help="Contract address, repeatable.")
    ] = None,
    extractor: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    sample: Annotated[int, typer.Option(min=2, help="At most this many per group.")] = 500,
    center: Annotated[
        bool, typer.Option(help="Mean-centre vectors (CNN features are all positive).")
    ] = True,
    group_by: Annotated[
        str | None,
        typer.Option(
            help="Group by this trait's values instead of by collection (e.g. type), or by how "
            "many values a token has (count:accessory)."
        ),
    ] = None,
    held_out: Annotated[
        bool,
        typer.Option(
            "--held-out/--all-tokens",
            help="With --group-by: only the tokens the nft-ssl extractors never trained on.",
        ),
    ] = True,
    plot: Annotated[Path | None, typer.Option(help="Write the heatmaps to this PNG.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The blog's analysis on stored vectors: within vs across collections (or trait groups),
    per extractor, with the mAP@10 of group-sharing neighbours.

    With --group-by only held-out tokens count (the seeded 15 % of each collection that
    train-extractor never trains on; CryptoPunks and Moonbirds under their dataset names), so
    learned and fixed extractors are compared on the same unseen tokens.

    Example: nftwatch similarity --collection 0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb
    --group-by type --plot punks.png
    """
    import numpy as np

    from nftvision.heatmap import plot_heatmaps
    from nftvision.similarity import analyse, render_table
    from nftvision.ssl.evaluate import map_at_k
    from nftvision.ssl.holdout import holdout_name, is_held_out
    from nftwatch.demo.report import vectors_by_collection
    from nftwatch.runtime import open_resources
    from store import tokens

    s = _settings()
    wanted = [_address_arg(a, "--collection") for a in collection or []]
    rng = np.random.default_rng(0)
    reports = []
    scores: dict[str, float] = {}
    with open_resources(s) as res:
        with res.factory() as session:
            known = {c.address: c.name or c.address for c in tokens.collections(session)}
        names = {a: known.get(a, a) for a in (wanted or known)}
        if len(names) < 2 and group_by is None:
            raise ValueError("need at least two collections with stored vectors (or --group-by)")
        for name in extractor or list(s.extractors):
            if group_by is None:
                groups = vectors_by_collection(res.factory, name, names)
            else:
                members: dict[str, list[list[float]]] = {}
                for address in names:
                    with res.factory() as session:
                        attrs, vecs = tokens.attributes_and_vectors(session, None, address, name)
                    key = holdout_name(address)
                    for tid, vec in vecs.items():
                        if held_out and not is_held_out(key, tid):
                            continue
                        for g in _trait_groups(attrs.get(tid), group_by):
                            members.setdefault(g, []).append(vec)
                # a group of one has no within-group similarity to measure
                groups = {
                    g: np.asarray(v, dtype=np.float32)
                    for g, v in sorted(members.items())
                    if len(v) >= 2
                }
            groups = {g: v[rng.permutation(len(v))[:sample]] for g, v in groups.items()}
            if len(groups) >= 2:
                reports.append(analyse(groups, center=center, label=name))
                x = np.concatenate(list(groups.values()))
                labels = np.repeat(list(groups), [len(v) for v in groups.values()])
                scores[name] = map_at_k(x, labels, 10)
    if group_by is not None and not reports:
        hint = " (or --all-tokens to count the trained-on ones too)" if held_out else ""
        raise ValueError(
            f"too few tokens to compare: no two groups by {group_by!r} with two tokens each{hint}"
        )
    if plot and reports:
        plot_heatmaps(reports, plot)
    if as_json:
        _print_json([{**r.to_dict(), "map10": round(scores[r.label], 6)} for r in reports])
    else:
        typer.echo(render_table(reports))
        if scores:
            cells = ", ".join(f"{n} {v:.3f}" for n, v in scores.items())
            typer.echo(f"mAP@10 of group-sharing neighbours: {cells}")
        if plot:
            typer.echo(f"heatmaps written to {plot}")
