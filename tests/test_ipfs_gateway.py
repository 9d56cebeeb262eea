from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from tokenmeta.cid import CID, DAG_PB, decode_directory, parse_cid, raw_cid


def test_files_are_served_by_their_real_cid(gateway: LocalIpfsGateway) -> None:
    cid = gateway.add_bytes(b"hello world")
    assert cid == raw_cid(b"hello world")
    response = httpx.get(f"{gateway.base_url}/ipfs/{cid}")
    assert response.status_code == 200 and response.content == b"hello world"


def test_directories_serve_paths_in_v0_and_v1_spellings(gateway: LocalIpfsGateway) -> None:
    root = gateway.add_directory({"1": b'{"n":1}', "2": b'{"n":2}', "img/1.png": b"png"})
    v1 = parse_cid(root)
    v0 = str(CID(0, DAG_PB, v1.hash_code, v1.digest))
    for spelling in (root, v0):
        assert httpx.get(f"{gateway.base_url}/ipfs/{spelling}/2").content == b'{"n":2}'
    assert httpx.get(f"{gateway.base_url}/ipfs/{root}/img/1.png").content == b"png"
    assert httpx.get(f"{gateway.base_url}/ipfs/{root}/3").status_code == 404
    listing = httpx.get(f"{gateway.base_url}/ipfs/{root}")
    assert listing.status_code == 200 and b"img" in listing.content


def test_raw_block_format_hashes_to_the_cid(gateway: LocalIpfsGateway) -> None:
    root = gateway.add_directory({"a": b"x"})
    block = httpx.get(f"{gateway.base_url}/ipfs/{root}?format=raw")
    assert block.headers["content-type"] == "application/vnd.ipld.raw"
    assert hashlib.sha256(block.content).digest() == parse_cid(root).digest
    assert [link.name for link in decode_directory(block.content)] == ["a"]


def test_unknown_and_invalid_cids(gateway: LocalIpfsGateway) -> None:
    assert httpx.get(f"{gateway.base_url}/ipfs/{raw_cid(b'never added')}").status_code == 404
    assert httpx.get(f"{gateway.base_url}/ipfs/notacid").status_code == 400
    assert httpx.get(f"{gateway.base_url}/other").status_code == 404


def test_kubo_cat_rpc(gateway: LocalIpfsGateway) -> None:
    root = gateway.add_directory({"meta/7": b'{"id":7}'})
    ok = httpx.post(f"{gateway.base_url}/api/v0/cat", params={"arg": f"{root}/meta/7"})
    assert ok.status_code == 200 and ok.content == b'{"id":7}'
    missing = httpx.post(f"{gateway.base_url}/api/v0/cat", params={"arg": f"{root}/meta/8"})
    assert missing.status_code == 500 and missing.json()["Type"] == "error"


def test_injected_failures_then_recovery(gateway: LocalIpfsGateway) -> None:
    cid = gateway.add_bytes(b"data")
    gateway.fail_next(1, 429, {"Retry-After": "3"})
    first = httpx.get(f"{gateway.base_url}/ipfs/{cid}")
    assert first.status_code == 429 and first.headers["retry-after"] == "3"
    assert httpx.get(f"{gateway.base_url}/ipfs/{cid}").content == b"data"


def test_content_persists_across_restarts(tmp_path: Path) -> None:
    first = LocalIpfsGateway(tmp_path)
    first.start()
    root = first.add_directory({"1": b"one"})
    first.stop()
    second = LocalIpfsGateway(tmp_path)
    url = second.start()
    try:
        assert httpx.get(f"{url}/ipfs/{root}/1").content == b"one"
    finally:
        second.stop()
