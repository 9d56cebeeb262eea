from __future__ import annotations

import hashlib

import pytest
from multiformats import CID as MfCID

from tokenmeta.cid import (
    DAG_PB,
    RAW,
    build_directory,
    decode_directory,
    is_cid,
    parse_cid,
    raw_cid,
    to_base36,
    verify_raw,
)
from tokenmeta.errors import ContentMismatch, InvalidURI

EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
EMPTY_DIR_V1 = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


def test_raw_cid_of_hello_world_matches_kubo() -> None:
    # `echo -n "hello world" | ipfs add --cid-version 1 --raw-leaves -n -q`
    assert raw_cid(b"hello world") == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def test_empty_directory_has_the_well_known_cids() -> None:
    root, blocks = build_directory({})
    assert str(root) == EMPTY_DIR_V1
    assert str(parse_cid(EMPTY_DIR_V0).v1()) == EMPTY_DIR_V1
    assert blocks[-1].data == b"\x0a\x02\x08\x01"


@pytest.mark.parametrize(
    "text",
    [EMPTY_DIR_V0, EMPTY_DIR_V1, raw_cid(b"x")],
)
def test_parse_agrees_with_multiformats(text: str) -> None:
    ours = parse_cid(text)
    theirs = MfCID.decode(text)
    assert ours.version == theirs.version
    assert ours.codec == theirs.codec.code
    assert ours.digest == bytes(theirs.digest)[2:]
    assert str(ours) == text


def test_other_multibase_spellings_name_the_same_cid() -> None:
    cid = parse_cid(EMPTY_DIR_V1)
    mf = MfCID.decode(EMPTY_DIR_V1)
    for spelling in (
        to_base36(cid),
        mf.encode("base58btc"),
        mf.encode("base16"),
        EMPTY_DIR_V1.upper(),
    ):
        assert parse_cid(spelling) == cid, spelling


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "Qm",
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3N0",  # '0' is not base58
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf35",  # truncated
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354aa",  # too long
        "xyz",
        "hello",
    ],
)
def test_invalid_cids_raise_invalid_uri(bad: str) -> None:
    assert not is_cid(bad)
    with pytest.raises(InvalidURI):
        parse_cid(bad)


def test_verify_raw_accepts_the_block_and_rejects_others() -> None:
    data = b"\x89PNG fake"
    verify_raw(raw_cid(data), data)
    with pytest.raises(ContentMismatch):
        verify_raw(raw_cid(data), data + b"!")


def test_directory_links_are_sorted_and_round_trip() -> None:
    files = {"b": b"2", "a": b"1", "sub/c": b"3", "10": b"ten"}
    root, blocks = build_directory(files)
    assert root.codec == DAG_PB
    by_cid = {b.cid: b.data for b in blocks}
    links = decode_directory(by_cid[root])
    assert [link.name for link in links] == ["10", "a", "b", "sub"]
    leaf = next(link for link in links if link.name == "a")
    assert leaf.cid.codec == RAW and leaf.tsize == 1
    assert leaf.cid.digest == hashlib.sha256(b"1").digest()
    sub = next(link for link in links if link.name == "sub")
    assert [link.name for link in decode_directory(by_cid[sub.cid])] == ["c"]
    # the root hash covers the encoded node exactly
    assert hashlib.sha256(by_cid[root]).digest() == root.digest
    assert MfCID.decode(str(root)).codec.name == "dag-pb"
