"""Security and caching headers on every response, as a plain ASGI middleware (it wraps
``send`` only, so streamed responses pass through untouched).

- Every response: ``X-Content-Type-Options: nosniff``, no referrer, and a Content-Security-Policy
  with ``frame-ancestors 'none'`` (plus ``X-Frame-Options`` for older browsers).
- The desk page gets a policy that allows its own scripts, styles, images and API calls only;
  the interactive docs may load Swagger UI from its CDN; JSON and images may load nothing.
- ``/v1`` answers depend on the key presented: they are ``private`` (``no-store`` unless the
  route chose a private cache lifetime) and ``Vary`` on both headers a key may travel in, so
  that no shared cache hands one key holder's answer to another."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DESK_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
KEYED_VARY = "X-API-Key, Authorization"
DOCS_PATHS = ("/docs", "/redoc")


def _policy(path: str) -> str:
    if path == "/" or path.startswith("/static/"):
        return DESK_CSP
    if path.startswith(DOCS_PATHS):
        return DOCS_CSP
    return API_CSP


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        keyed = path.startswith("/v1/") or path == "/v1"
        policy = _policy(path).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                add = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", policy),
                    (b"cross-origin-resource-policy", b"same-origin"),
                ]
                if keyed:
                    headers = _keyed_cache(headers, names)
                    names = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in add if n not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _keyed_cache(
    headers: list[tuple[bytes, bytes]], names: set[bytes]
) -> list[tuple[bytes, bytes]]:
    """Private caching and Vary on the key's headers, kept alongside what the route set."""
    out = []
    vary = [KEYED_VARY]
    for name, value in headers:
        lower = name.lower()
        if lower == b"cache-control":
            directives = value.decode("latin-1")
            if "private" not in directives and "no-store" not in directives:
                # a route's lifetime stays, for the key holder's own cache only
                directives = f"private, {directives}"
            out.append((name, directives.encode("latin-1")))
        elif lower == b"vary":
            vary.insert(0, value.decode("latin-1"))
        else:
            out.append((name, value))
    if b"cache-control" not in names:
        out.append((b"cache-control", b"private, no-store"))
    out.append((b"vary", ", ".join(vary).encode("latin-1")))
    return out
