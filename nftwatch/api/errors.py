"""Error bodies: one shape (``{"detail": ...}``) for every refusal, messages that name the
parameter, and a database that is busy or away answered as 503 with Retry-After, not 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)


class ValidationItem(BaseModel):
    loc: list[str | int] = Field(description="Where: ['path'|'query'|'header', name].")
    msg: str = Field(description="What is wrong, naming the parameter.")
    type: str


class Problem(BaseModel):
    """Every 4xx and 5xx body: a sentence, or (for malformed parameters) one item each."""

    detail: str | list[ValidationItem]


def _item(error: dict[str, Any]) -> dict[str, Any]:
    loc = [x if isinstance(x, int) else str(x) for x in error.get("loc", ())]
    name = next((str(x) for x in reversed(loc) if isinstance(x, str)), "request")
    # the input is left out: it may be megabytes, or bytes a terminal should not print
    return {"loc": loc, "msg": f"{name}: {error.get('msg', 'invalid')}", "type": error["type"]}


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": [_item(dict(e)) for e in errors]}, status_code=422)


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the database is busy or unreachable; try again shortly"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(PoolTimeout, _database_busy)
    app.add_exception_handler(OperationalError, _database_busy)


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals a route may answer with."""
    words = {
        401: "Missing or unknown API key.",
        404: "Not known.",
        422: "A malformed or out-of-range parameter.",
        429: "Rate limit exceeded; see Retry-After.",
        503: "Database busy or unreachable; see Retry-After.",
    }
    return {c: {"model": Problem, "description": words[c]} for c in codes}
