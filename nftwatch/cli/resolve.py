"""``nftwatch resolve``: one tokenURI resolved as the workers do, with exit statuses
that tell its outcomes apart."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _print_json, _settings

# `nftwatch resolve` exit statuses: scripts tell full success, an image refused, and failure
# apart (1 stays "unexpected error" and 2 "usage error", as for every command).
RESOLVE_OK = 0
RESOLVE_FAILED = 3
RESOLVE_IMAGE_REFUSED = 4


@cli.command(
    epilog="Exit status: 0 metadata and image resolved; 3 the metadata could not be resolved; "
    "4 metadata resolved but its image was refused or could not be fetched (--json: ok false, "
    "image_error names the class)."
)
def resolve(
    uri: str,
    token_id: Annotated[int | None, typer.Option(help="For ERC-1155 {id} URIs.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Resolve one tokenURI exactly as the workers do.

    Example: nftwatch resolve ipfs://bafy.../1 --json"""
    import asyncio

    from tokenmeta.errors import TokenMetaError
    from tokenmeta.resolve import FetchPolicy, Resolution, Resolver

    s = _settings()
    policy = FetchPolicy(
        gateways=s.ipfs_gateways, ipfs_api_url=s.ipfs_api_url, allow_hosts=frozenset(s.allow_hosts)
    )

    async def go() -> Resolution:
        async with Resolver(policy) as resolver:
            return await resolver.resolve(uri, token_id)

    try:
        res = asyncio.run(go())
    except TokenMetaError as exc:
        if as_json:
            _print_json(
                {
                    "ok": False,
                    "stage": "metadata",
                    "error_class": exc.code,
                    "retryable": exc.retryable,
                    "message": str(exc),
                }
            )
        else:
            typer.echo(f"error: {exc.code}: {exc}", err=True)
        raise typer.Exit(RESOLVE_FAILED) from None
    media, image_error = res.media, res.media_error
    if as_json:
        _print_json(
            {
                "ok": image_error is None,
                "metadata": res.metadata,
                "metadata_uri": res.metadata_uri,
                "image_uri": res.image_uri,
                "image": None
                if media is None
                else {
                    "mime": media.mime,
                    "width": media.width,
                    "height": media.height,
                    "bytes": len(media.data),
                    "sha256": media.sha256,
                },
                "image_error": None if image_error is None else image_error.code,
                "image_error_retryable": None if image_error is None else image_error.retryable,
                "image_error_message": None if image_error is None else str(image_error),
            }
        )
    else:
        typer.echo(json.dumps(res.metadata, indent=2) if res.metadata else "(no metadata)")
        if media is not None:
            typer.echo(
                f"image {res.image_uri}: {media.mime} {media.width}x{media.height}, "
                f"{len(media.data)} bytes, sha256 {media.sha256}"
            )
        elif image_error is None:
            typer.echo("(the metadata names no image)")
        if image_error is not None:
            typer.echo(f"error: image refused: {image_error.code}: {image_error}", err=True)
    raise typer.Exit(RESOLVE_OK if image_error is None else RESOLVE_IMAGE_REFUSED)
