"""The ``nftwatch`` command line: the root group and its console script, with every command
group imported so that it registers on ``cli``."""

from __future__ import annotations

from nftwatch.cli import (  # noqa: F401  (imported to register their commands)
    api,
    backfill,
    config,
    demo,
    export,
    failures,
    keys,
    observe,
    resolve,
    service,
    train,
    values,
    vision,
)
from nftwatch.cli.app import cli, main

__all__ = ["cli", "main"]
