"""Content identifiers: parse, validate and compute real IPFS CIDs.

Pure: no I/O. Supports CIDv0 (base58btc ``Qm…``) and CIDv1 in base32 (``b…``), base58btc
(``z…``), base36 (``k…``, used in subdomain gateways) and base16 (``f…``).

Computed CIDs match what kubo produces for the same content when it fits one block:

- a file ≤ 1 MiB as CIDv1 raw-leaf sha2-256 (``bafkrei…``), the CID of ``ipfs add --cid-version 1
  --raw-leaves`` for a single-chunk file;
- a UnixFS directory as CIDv1 dag-pb (``bafybei…``): a PBNode whose Links are sorted by name, each
  with Hash, Name and Tsize, and whose Data is the UnixFS ``Directory`` message.

Larger files are still addressed by the raw-leaf CID of their whole bytes; a real node would chunk
them into a different (dag-pb) CID, so such CIDs are only meaningful on our own gateway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from tokenmeta.errors import ContentMismatch, InvalidURI

RAW = 0x55
DAG_PB = 0x70
DAG_CBOR = 0x71
LIBP2P_KEY = 0x72
SHA2_256 = 0x12
IDENTITY = 0x00
SINGLE_BLOCK_LIMIT = 1 << 20

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_INDEX = {c: i for i, c in enumerate(_B32)}
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_KNOWN_CODECS = {RAW, DAG_PB, DAG_CBOR, LIBP2P_KEY, 0x0129}  # 0x0129: dag-json
_DIGEST_SIZES = {SHA2_256: 32, 0x13: 64, 0x1B: 32, 0x1E: 32}  # sha2-512, keccak-256, blake3


@dataclass(frozen=True, slots=True)
class CID:
    version: int
    codec: int
    hash_code: int
    digest: bytes

    @property
    def multihash(self) -> bytes:
        return _varint(self.hash_code) + _varint(len(self.digest)) + self.digest

    @property
    def is_raw(self) -> bool:
        return self.codec == RAW

    def to_bytes(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return _varint(1) + _varint(self.codec) + self.multihash

    def v1(self) -> CID:
        return CID(1, self.codec, self.hash_code, self.digest)

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + b32encode(self.to_bytes())


# --- encodings ---------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"not base58: {c!r}")
        n = n * 58 + _B58_INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def b32encode(data: bytes) -> str:
    bits = nbits = 0
    out = []
    for byte in data:
        bits = (bits << 8) | byte
        nbits += 8
        while nbits >= 5:
            nbits -= 5
            out.append(_B32[(bits >> nbits) & 31])
    if nbits:
        out.append(_B32[(bits << (5 - nbits)) & 31])
    return "".join(out)


def b32decode(text: str) -> bytes:
    bits = nbits = 0
    out = bytearray()
    for c in text.lower():
        if c not in _B32_INDEX:
            raise ValueError(f"not base32: {c!r}")
        bits = (bits << 5) | _B32_INDEX[c]
        nbits += 5
        if nbits >= 8:
            nbits -= 8
            out.append((bits >> nbits) & 0xFF)
    if bits & ((1 << nbits) - 1):
        raise ValueError("non-zero base32 padding bits")
    return bytes(out)


def _b36decode(text: str) -> bytes:
    n = int(text, 36)
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def b36encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out or "0"


# --- parsing -----------------------------------------------------------------------------------


def _parse_multihash(buf: bytes, pos: int) -> tuple[int, bytes]:
    code, pos = _read_varint(buf, pos)
    size, pos = _read_varint(buf, pos)
    digest = buf[pos:]
    if len(digest) != size:
        raise ValueError("multihash length does not match its digest")
    expected = _DIGEST_SIZES.get(code)
    if code != IDENTITY and expected is not None and size != expected:
        raise ValueError("wrong digest size for its hash function")
    if code != IDENTITY and expected is None:
        raise ValueError(f"unknown multihash function 0x{code:x}")
    return code, digest


def parse_cid(text: str) -> CID:
    """Parse a CID string; raises InvalidURI for anything that is not a well-formed CID."""
    try:
        return _parse_cid(text)
    except (ValueError, OverflowError) as exc:
        raise InvalidURI(f"invalid CID {text[:80]!r}: {exc}") from None


def _parse_cid(text: str) -> CID:
    if not text or len(text) > 200:
        raise ValueError("empty or overlong")
    if len(text) == 46 and text.startswith("Qm"):
        raw = b58decode(text)
        code, digest = _parse_multihash(raw, 0)
        if code != SHA2_256:
            raise ValueError("CIDv0 must be sha2-256")
        return CID(0, DAG_PB, code, digest)
    prefix, body = text[0], text[1:]
    if prefix in "bB":
        raw = b32decode(body)
    elif prefix == "z":
        raw = b58decode(body)
    elif prefix == "k":
        raw = _b36decode(body.lower())
    elif prefix in "fF":
        raw = bytes.fromhex(body)
    else:
        raise ValueError("unknown multibase prefix")
    version, pos = _read_varint(raw, 0)
    if version != 1:
        raise ValueError(f"unsupported CID version {version}")
    codec, pos = _read_varint(raw, pos)
    if codec not in _KNOWN_CODECS:
        raise ValueError(f"unknown codec 0x{codec:x}")
    code, digest = _parse_multihash(raw, pos)
    return CID(1, codec, code, digest)


def is_cid(text: str) -> bool:
    try:
        _parse_cid(text)
    except (ValueError, OverflowError):
        return False
    return True


def to_base36(cid: CID) -> str:
    """The base36 form that fits a DNS label (subdomain gateways)."""
    return "k" + b36encode(cid.v1().to_bytes())


# --- computing ---------------------------------------------------------------------------------


def raw_cid(data: bytes) -> str:
    """CIDv1 raw-leaf sha2-256 of ``data`` (``bafkrei…``)."""
    return str(CID(1, RAW, SHA2_256, hashlib.sha256(data).digest()))


def verify_raw(cid: str | CID, data: bytes) -> None:
    """Raise ContentMismatch unless ``data`` is exactly the block ``cid`` names."""
    parsed = parse_cid(cid) if isinstance(cid, str) else cid
    if parsed.hash_code == SHA2_256:
        ok = hashlib.sha256(data).digest() == parsed.digest
    elif parsed.hash_code == IDENTITY:
        ok = parsed.digest == data
    else:
        raise ContentMismatch(f"cannot verify hash function 0x{parsed.hash_code:x}")
    if not ok:
        raise ContentMismatch(f"bytes do not hash to {parsed}")


def _field_bytes(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _field_varint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


UNIXFS_DIRECTORY_DATA = _field_varint(1, 1)  # UnixFS Data { Type: Directory }


@dataclass(frozen=True, slots=True)
class DirLink:
    name: str
    cid: CID
    tsize: int


def encode_directory(links: list[DirLink]) -> bytes:
    """Canonical dag-pb PBNode of a UnixFS directory (Links before Data, sorted by name)."""
    out = bytearray()
    for link in sorted(links, key=lambda item: item.name.encode()):
        body = (
            _field_bytes(1, link.cid.to_bytes())
            + _field_bytes(2, link.name.encode())
            + _field_varint(3, link.tsize)
        )
        out += _field_bytes(2, body)
    out += _field_bytes(1, UNIXFS_DIRECTORY_DATA)
    return bytes(out)


def decode_directory(block: bytes) -> list[DirLink]:
    """Links of a dag-pb directory block (the inverse of ``encode_directory``)."""
    links: list[DirLink] = []
    pos = 0
    while pos < len(block):
        key, pos = _read_varint(block, pos)
        size, pos = _read_varint(block, pos)
        payload, pos = block[pos : pos + size], pos + size
        if key >> 3 != 2:
            continue
        name, cid, tsize, inner = "", None, 0, 0
        while inner < len(payload):
            k, inner = _read_varint(payload, inner)
            if k & 7 == 0:
                tsize, inner = _read_varint(payload, inner)
                continue
            n, inner = _read_varint(payload, inner)
            value, inner = payload[inner : inner + n], inner + n
            if k >> 3 == 1:
                cid = _cid_from_bytes(value)
            elif k >> 3 == 2:
                name = value.decode()
        if cid is not None:
            links.append(DirLink(name, cid, tsize))
    return links


def _cid_from_bytes(raw: bytes) -> CID:
    if raw[:2] == b"\x12\x20":
        code, digest = _parse_multihash(raw, 0)
        return CID(0, DAG_PB, code, digest)
    version, pos = _read_varint(raw, 0)
    codec, pos = _read_varint(raw, pos)
    code, digest = _parse_multihash(raw, pos)
    return CID(version, codec, code, digest)


@dataclass(frozen=True, slots=True)
class Block:
    cid: CID
    data: bytes


def build_directory(files: Mapping[str, bytes]) -> tuple[CID, list[Block]]:
    """A UnixFS directory tree of ``files`` (names may contain ``/`` for subdirectories).

    Returns the root CID and every block (leaves and directory nodes) needed to serve it.
    """
    blocks: list[Block] = []

    def build(entries: Mapping[str, bytes]) -> tuple[CID, int]:
        children: dict[str, dict[str, bytes]] = {}
        links: list[DirLink] = []
        for name, data in entries.items():
            head, sep, rest = name.partition("/")
            if not head:
                raise ValueError(f"bad file name {name!r}")
            if sep:
                children.setdefault(head, {})[rest] = data
                continue
            leaf = CID(1, RAW, SHA2_256, hashlib.sha256(data).digest())
            blocks.append(Block(leaf, data))
            links.append(DirLink(head, leaf, len(data)))
        for head, sub in children.items():
            sub_cid, sub_size = build(sub)
            links.append(DirLink(head, sub_cid, sub_size))
        node = encode_directory(links)
        node_cid = CID(1, DAG_PB, SHA2_256, hashlib.sha256(node).digest())
        blocks.append(Block(node_cid, node))
        return node_cid, len(node) + sum(link.tsize for link in links)

    root, _ = build(files)
    return root, blocks
