"""A local IPFS gateway over content we add ourselves: real CIDs, real HTTP, for the demo and tests.

``LocalIpfsGateway`` serves, on 127.0.0.1 and a free port:

- ``GET /ipfs/{cid}`` and ``/ipfs/{cid}/{path}`` (path gateway; a directory without a path lists
  its entries, or serves its ``index.html``);
- ``?format=raw`` or ``Accept: application/vnd.ipld.raw``: the raw block (trustless gateway);
- ``POST /api/v0/cat?arg={cid}[/path]``: the kubo RPC call the resolver uses;
- 404 for unknown content. CIDv0 and every CIDv1 spelling of the same block are the same content.

Files are addressed as CIDv1 raw leaves and directories as UnixFS dag-pb nodes, so the CIDs equal
what kubo computes for the same single-block files. With ``root`` set, blocks are written there
and loaded again on the next start, so a second demo run keeps its URIs. ``latency`` adds a delay
to every response (benchmarks); ``fail_next`` makes the next N requests answer a status (tests).
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from tokenmeta.cid import CID, DAG_PB, build_directory, decode_directory, parse_cid, raw_cid
from tokenmeta.errors import InvalidURI


class LocalIpfsGateway:
    def __init__(
        self,
        root: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.root = Path(root) if root is not None else None
        self.host = host
        self.port = port
        self.latency = latency
        self.requests = 0
        self._blocks: dict[bytes, tuple[CID, bytes]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._fail: list[tuple[int, dict[str, str]]] = []
        if self.root is not None:
            self._load()

    # --- content -------------------------------------------------------------------------------

    def add_bytes(self, data: bytes) -> str:
        """Store ``data`` as one raw block; returns its CIDv1 (``bafkrei…``)."""
        cid = parse_cid(raw_cid(data))
        self._put(cid, data)
        return str(cid)

    def add_directory(self, files: Mapping[str, bytes]) -> str:
        """Store a UnixFS directory (names may contain ``/``); returns its CIDv1 (``bafybei…``)."""
        root, blocks = build_directory(files)
        for block in blocks:
            self._put(block.cid, block.data)
        return str(root)

    def _put(self, cid: CID, data: bytes) -> None:
        with self._lock:
            self._blocks[cid.digest] = (cid, data)
        if self.root is not None:
            path = self.root / "blocks" / str(cid.v1())
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)

    def _load(self) -> None:
        assert self.root is not None
        folder = self.root / "blocks"
        if not folder.is_dir():
            return
        for path in folder.iterdir():
            if path.suffix == ".tmp":
                continue
            try:
                cid = parse_cid(path.name)
            except InvalidURI:
                continue
            self._blocks[cid.digest] = (cid, path.read_bytes())

    def get_block(self, cid: CID) -> tuple[CID, bytes] | None:
        with self._lock:
            return self._blocks.get(cid.digest)

    def resolve_path(self, cid: CID, path: str) -> tuple[CID, bytes] | None:
        """The block at ``cid/path`` (directory links followed), or None."""
        found = self.get_block(cid)
        for part in (p for p in path.split("/") if p):
            if found is None or found[0].codec != DAG_PB:
                return None
            links = {link.name: link.cid for link in decode_directory(found[1])}
            child = links.get(part)
            if child is None:
                return None
            found = self.get_block(child)
        return found

    def fail_next(self, count: int, status: int, headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (e.g. 429 with Retry-After)."""
        with self._lock:
            self._fail.extend([(status, dict(headers or {}))] * count)

    def _take_failure(self) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            return self._fail.pop(0) if self._fail else None

    # --- server --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("gateway not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def netloc(self) -> str:
        """``host:port``, the form an SSRF allow-list takes."""
        return self.base_url.removeprefix("http://")

    def start(self) -> str:
        if self._server is not None:
            return self.base_url
        gateway = self

        class Handler(_GatewayHandler):
            owner = gateway

        self._server = _Server((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="ipfs-gateway",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalIpfsGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    # The stdlib default backlog of 5 stalls concurrent clients for a SYN retry (about 1 s).
    request_queue_size = 256
    daemon_threads = True


class _GatewayHandler(BaseHTTPRequestHandler):
    owner: LocalIpfsGateway
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: no delayed-ACK stall

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _prelude(self) -> bool:
        self.owner.requests += 1
        if self.owner.latency:
            time.sleep(self.owner.latency)
        failure = self.owner._take_failure()
        if failure is not None:
            status, headers = failure
            self._send(status, f"injected {status}\n".encode(), headers=headers)
            return False
        return True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._prelude():
            return
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        segments = unquote(parts.path).split("/", 3)  # "", "ipfs", cid, rest
        if len(segments) < 3 or segments[1] != "ipfs" or not segments[2]:
            self._send(404, b"not found\n")
            return
        try:
            cid = parse_cid(segments[2])
        except InvalidURI:
            self._send(400, b"invalid CID\n")
            return
        sub = segments[3] if len(segments) > 3 else ""
        found = self.owner.resolve_path(cid, sub)
        if found is None:
            self._send(404, b"no link by that name\n")
            return
        block_cid, data = found
        raw = query.get("format") == ["raw"] or "application/vnd.ipld.raw" in (
            self.headers.get("Accept") or ""
        )
        etag = {"Etag": f'"{block_cid.v1()}"', "X-Ipfs-Path": parts.path}
        if raw:
            self._send(200, data, "application/vnd.ipld.raw", etag)
        elif block_cid.codec == DAG_PB:
            links = decode_directory(data)
            index = next((link for link in links if link.name == "index.html"), None)
            if index is not None and (found_index := self.owner.get_block(index.cid)):
                self._send(200, found_index[1], "text/html; charset=utf-8", etag)
                return
            items = "".join(
                f"<li><a href='{html.escape(link.name)}'>{html.escape(link.name)}</a></li>"
                for link in links
            )
            self._send(200, f"<html><body><ul>{items}</ul></body></html>".encode(), "text/html")
        else:
            # Like real gateways: no extension, so the type is a guess; clients must sniff.
            self._send(200, data, "application/octet-stream", etag)

    def do_POST(self) -> None:
        if not self._prelude():
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = urlsplit(self.path)
        if parts.path != "/api/v0/cat":
            self._send(404, b"404 page not found\n")
            return
        arg = (parse_qs(parts.query).get("arg") or [""])[0]
        arg = arg.removeprefix("/ipfs/")
        head, _, sub = arg.partition("/")
        try:
            cid = parse_cid(head)
        except InvalidURI as exc:
            self._kubo_error(str(exc))
            return
        found = self.owner.resolve_path(cid, sub)
        if found is None:
            self._kubo_error(f"no link named {sub!r} under {head}")
            return
        if found[0].codec == DAG_PB:
            self._kubo_error("this dag node is a directory")
            return
        self._send(200, found[1], "text/plain", {"X-Stream-Output": "1"})

    def _kubo_error(self, message: str) -> None:
        body = json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode()
        self._send(500, body, "application/json")
