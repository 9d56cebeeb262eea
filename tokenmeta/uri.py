"""tokenURI normalisation: every form real collections use, turned into one typed description.

Pure: no I/O. ``parse_token_uri`` never touches the network; a malformed URI or an invalid CID
raises ``InvalidURI`` here, before any request is made.

Forms understood:

- ``ipfs://CID/path``, ``ipfs://ipfs/CID/path`` (the doubled prefix), ``ipfs:/CID``, ``IPFS://``;
- bare CIDs (``Qm…``, ``bafy…``), with or without ``/path``, and ``/ipfs/CID/path``;
- gateway URLs on any host, path style (``https://host/ipfs/CID/path``) and subdomain style
  (``https://CID.ipfs.host/path``): routed to our gateways first with the original host last, or
  dropped when the host is known dead (``ipfs.infura.io`` …);
- ``ipns://name/path`` and ``/ipns/`` gateway URLs (mutable, never hash-verified);
- ``ar://TX/path`` and ``arweave.net`` URLs;
- ``data:`` URIs: base64 (padding optional, url-safe alphabet tolerated), percent-encoded,
  ``;utf8``/``;charset=…``, raw JSON, raw SVG containing ``#``; a bare JSON object or ``<svg``;
- ``http(s)://`` URLs;
- surrounding whitespace, NUL bytes, quotes and JSON-escaped slashes (``ipfs:\\/\\/``) are cleaned.

ERC-1155 ``{id}`` is replaced, every occurrence, by the token id as 64 lower-case hex digits
(``substitute_id``); the resolver retries with the decimal id on a 404.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

from tokenmeta.cid import CID, is_cid, parse_cid
from tokenmeta.errors import InvalidURI, NoTokenURI

SourceKind = Literal["ipfs", "ipns", "arweave", "http", "data"]

DEFAULT_ARWEAVE_GATEWAYS: tuple[str, ...] = ("https://arweave.net",)

# Hosts that once served IPFS and no longer do: a URL on them is rewritten by its CID only.
DEAD_GATEWAY_HOSTS: frozenset[str] = frozenset(
    {
        "ipfs.infura.io",
        "cloudflare-ipfs.com",
        "cf-ipfs.com",
        "ipfs.fleek.co",
        "gateway.ipfs.io",
        "ipfs.cf-ipfs.com",
        "hardbin.com",
    }
)

_ID_PLACEHOLDER = re.compile(r"\{id\}", re.IGNORECASE)
_TRIM = " \t\r\n\v\f\0\"'`\u200b\ufeff"
_ARWEAVE_TX = re.compile(r"^[A-Za-z0-9_-]{43}$")
_ARWEAVE_HOSTS = ("arweave.net", "ar-io.net", "arweave.dev")
_MAX_URI_LENGTH = 16 << 20  # data: URIs can be long; anything beyond is not a real tokenURI


@dataclass(frozen=True, slots=True)
class ParsedURI:
    """What a tokenURI points at and how to fetch it.

    - ``ipfs``: ``cid`` and ``path`` (``""`` or ``/a/b``); ``origin_url`` is the original gateway
      URL when the URI named a live host (tried last);
    - ``ipns``: ``name`` and ``path``;
    - ``arweave``: ``name`` (the transaction id) and ``path``; ``origin_url`` when given as a URL;
    - ``http``: ``origin_url``;
    - ``data``: ``data`` and ``media_type``.
    """

    kind: SourceKind
    original: str
    cid: CID | None = None
    name: str | None = None
    path: str = ""
    origin_url: str | None = None
    data: bytes | None = None
    media_type: str | None = None
    query: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def normalized(self) -> str:
        """A canonical spelling, e.g. ``ipfs://bafy…/1`` (data: URIs stay as given)."""
        if self.kind == "ipfs":
            return f"ipfs://{self.cid}{self.path}{self._q}"
        if self.kind == "ipns":
            return f"ipns://{self.name}{self.path}{self._q}"
        if self.kind == "arweave":
            return f"ar://{self.name}{self.path}{self._q}"
        if self.kind == "http":
            return self.origin_url or self.original
        return self.original

    @property
    def _q(self) -> str:
        return f"?{self.query}" if self.query else ""

    @property
    def is_raw_block(self) -> bool:
        """True when the URI names one raw block whose bytes can be hash-verified."""
        return self.kind == "ipfs" and self.cid is not None and self.cid.is_raw and not self.path

    def candidate_urls(
        self,
        gateways: tuple[str, ...] = (),
        arweave_gateways: tuple[str, ...] = DEFAULT_ARWEAVE_GATEWAYS,
    ) -> tuple[str, ...]:
        """HTTP URLs to try in order: our gateways first, the original host last."""
        urls: list[str] = []
        if self.kind in ("ipfs", "ipns"):
            ident = str(self.cid) if self.kind == "ipfs" else self.name
            urls = [f"{g.rstrip('/')}/{self.kind}/{ident}{self.path}{self._q}" for g in gateways]
        elif self.kind == "arweave":
            urls = [f"{g.rstrip('/')}/{self.name}{self.path}{self._q}" for g in arweave_gateways]
        if self.origin_url and self.origin_url not in urls:
            urls.append(self.origin_url)
        return tuple(urls)


def substitute_id(uri: str, token_id: int, *, decimal: bool = False) -> str:
    """ERC-1155: replace every ``{id}`` by the id as 64 lower-case hex digits (or decimal)."""
    if token_id < 0 or token_id >= 1 << 256:
        raise InvalidURI(f"token id out of uint256 range: {token_id}")
    value = str(token_id) if decimal else f"{token_id:064x}"
    return _ID_PLACEHOLDER.sub(value, uri)


def has_id_placeholder(uri: str) -> bool:
    return _ID_PLACEHOLDER.search(uri) is not None


def clean(uri: str) -> str:
    """Trim whitespace, NULs and quotes that contracts and JSON leave around URIs."""
    text = uri.replace("\0", "")
    previous = None
    while previous != text:
        previous = text
        text = text.strip(_TRIM)
    return text


def parse_token_uri(uri: str | None, token_id: int | None = None) -> ParsedURI:
    """Describe a tokenURI (or an image URI); raises NoTokenURI or InvalidURI, never does I/O."""
    if uri is None:
        raise NoTokenURI("tokenURI is empty")
    if len(uri) > _MAX_URI_LENGTH:
        raise InvalidURI(f"URI longer than {_MAX_URI_LENGTH} characters")
    text = clean(uri)
    if not text:
        raise NoTokenURI("tokenURI is empty")
    if token_id is not None and has_id_placeholder(text):
        text = substitute_id(text, token_id)
    lower = text[:16].lower()
    if lower.startswith("data:"):
        return _parse_data(text, original=uri)
    if text.startswith("{") or text.startswith("["):
        return ParsedURI("data", uri, data=text.encode(), media_type="application/json")
    if lower.startswith("<svg") or lower.startswith("<?xml"):
        return ParsedURI("data", uri, data=text.encode(), media_type="image/svg+xml")
    # JSON-escaped slashes survive double encoding: ``ipfs:\/\/Qm…``.
    text = text.replace("\\/", "/")
    if any(c in text for c in "\r\n\t "):
        text = re.sub(r"\s", "%20", text)
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if sep and scheme == "ipfs":
        return _parse_ipfs_path(rest.lstrip("/"), original=uri)
    if sep and scheme == "ipns":
        return _parse_ipns_path(rest.lstrip("/"), original=uri)
    if sep and scheme == "ar":
        return _parse_arweave_path(rest.lstrip("/"), original=uri, origin_url=None)
    if sep and scheme in ("http", "https"):
        return _parse_http(text, original=uri)
    if text.startswith("/ipfs/"):
        return _parse_ipfs_path(text[len("/ipfs/") :], original=uri)
    if text.startswith("/ipns/"):
        return _parse_ipns_path(text[len("/ipns/") :], original=uri)
    head = text.split("/", 1)[0].split("?", 1)[0]
    if is_cid(head):
        return _parse_ipfs_path(text, original=uri)
    if sep and re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise InvalidURI(f"unsupported URI scheme {scheme!r}")
    raise InvalidURI(f"not a URI: {text[:80]!r}")


def join_relative(base: ParsedURI, reference: str) -> str | None:
    """``reference`` (e.g. ``images/1.png``) read relative to the metadata's own URI, or None.

    Only plain relative paths qualify: anything with a scheme, or a bare CID, is absolute.
    """
    ref = clean(reference).replace("\\/", "/")
    if not ref or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", ref) or ref.startswith("//"):
        return None
    if base.kind == "http" and base.origin_url:
        return urljoin(base.origin_url, ref)
    if base.kind in ("ipfs", "ipns", "arweave"):
        ident = str(base.cid) if base.kind == "ipfs" else base.name
        scheme = "ar" if base.kind == "arweave" else base.kind
        folder = posixpath.dirname(base.path) if base.path else ""
        path = posixpath.normpath(posixpath.join("/", folder, ref))
        if path.startswith("//"):
            path = path[1:]
        return f"{scheme}://{ident}{path if path != '/' else ''}"
    return None


def _split_query(rest: str) -> tuple[str, str]:
    rest = rest.split("#", 1)[0]
    path, _, query = rest.partition("?")
    return path, query


def _parse_ipfs_path(rest: str, *, original: str, origin_url: str | None = None) -> ParsedURI:
    path, query = _split_query(rest)
    # ``ipfs://ipfs/CID`` doubling, sometimes more than once.
    while path.lower().startswith("ipfs/"):
        path = path[5:].lstrip("/")
    cid_text, slash, tail = path.partition("/")
    if not cid_text:
        raise InvalidURI(f"no CID in {original[:80]!r}")
    cid = parse_cid(cid_text)
    sub = "/" + tail if slash else ""
    sub = re.sub(r"/{2,}", "/", sub)
    if sub == "/":
        sub = ""
    return ParsedURI("ipfs", original, cid=cid, path=sub, query=query, origin_url=origin_url)


def _parse_ipns_path(rest: str, *, original: str, origin_url: str | None = None) -> ParsedURI:
    path, query = _split_query(rest)
    name, slash, tail = path.partition("/")
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", name):
        raise InvalidURI(f"invalid IPNS name in {original[:80]!r}")
    sub = "/" + tail if slash and tail else ""
    return ParsedURI("ipns", original, name=name, path=sub, query=query, origin_url=origin_url)


def _parse_arweave_path(rest: str, *, original: str, origin_url: str | None) -> ParsedURI:
    path, query = _split_query(rest)
    tx, slash, tail = path.partition("/")
    if not _ARWEAVE_TX.fullmatch(tx):
        raise InvalidURI(f"invalid Arweave transaction id in {original[:80]!r}")
    sub = "/" + tail if slash and tail else ""
    return ParsedURI("arweave", original, name=tx, path=sub, query=query, origin_url=origin_url)


def _parse_http(text: str, *, original: str) -> ParsedURI:
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise InvalidURI(f"malformed URL {text[:80]!r}: {exc}") from None
    if not host:
        raise InvalidURI(f"URL without a host: {text[:80]!r}")
    url = parts.geturl()
    origin = None if host in DEAD_GATEWAY_HOSTS else url
    rest = parts.path + (f"?{parts.query}" if parts.query else "")

    # Subdomain gateway: CID.ipfs.host / name.ipns.host
    labels = host.split(".")
    if len(labels) >= 3 and labels[1] in ("ipfs", "ipns"):
        if labels[1] == "ipfs" and is_cid(labels[0]):
            return _parse_ipfs_path(labels[0] + rest, original=original, origin_url=origin)
        if labels[1] == "ipns":
            return _parse_ipns_path(labels[0] + rest, original=original, origin_url=origin)
    # Path gateway: any host serving /ipfs/CID/… (an invalid CID there is just a web page).
    match = re.match(r"^/(ipfs|ipns)/([^/?#]+)", parts.path)
    if match and match.group(1) == "ipfs" and is_cid(match.group(2)):
        return _parse_ipfs_path(rest[len("/ipfs/") :], original=original, origin_url=origin)
    if match and match.group(1) == "ipns":
        return _parse_ipns_path(rest[len("/ipns/") :], original=original, origin_url=origin)
    if any(host == h or host.endswith("." + h) for h in _ARWEAVE_HOSTS):
        tx = parts.path.lstrip("/").split("/", 1)[0]
        if _ARWEAVE_TX.fullmatch(tx):
            return _parse_arweave_path(rest.lstrip("/"), original=original, origin_url=url)
    if host in DEAD_GATEWAY_HOSTS:
        raise InvalidURI(f"{host} no longer serves content and the URL names no CID")
    return ParsedURI("http", original, origin_url=url)


def _parse_data(text: str, *, original: str) -> ParsedURI:
    header, comma, payload = text[5:].partition(",")
    if not comma:
        raise InvalidURI("data: URI without a comma")
    params = [p.strip() for p in header.split(";")]
    media_type = (params[0] or "text/plain").lower()
    is_base64 = any(p.lower() == "base64" for p in params[1:])
    if is_base64:
        data = _b64decode(unquote_to_bytes(payload) if "%" in payload else payload.encode())
    else:
        raw = payload.encode("utf-8", "surrogatepass")
        data = unquote_to_bytes(raw) if re.search(rb"%[0-9A-Fa-f]{2}", raw) else raw
    return ParsedURI("data", original, data=data, media_type=media_type)


def _b64decode(payload: bytes) -> bytes:
    compact = re.sub(rb"\s", b"", payload).rstrip(b"=")
    compact += b"=" * (-len(compact) % 4)
    try:
        if b"-" in compact or b"_" in compact:
            return base64.urlsafe_b64decode(compact)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidURI(f"invalid base64 in data: URI: {exc}") from None
