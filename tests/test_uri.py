from __future__ import annotations

import base64

import pytest

from tokenmeta.cid import raw_cid
from tokenmeta.errors import InvalidURI, NoTokenURI
from tokenmeta.uri import clean, parse_token_uri, substitute_id

V0 = "QmeSjSinHpPnmXmspMjwiXyN6zS4E9zccariGR3jxcaWtq"  # BAYC metadata folder
V1 = "bafybeihpjhkeuiq3k6nqa3fkgeigeri7iebtrsuyuey5y6vy36n345xmbi"
RAW = raw_cid(b"image bytes")
GW = ("http://127.0.0.1:8080", "https://gw.example")


def test_bayc_style_path_without_extension() -> None:
    p = parse_token_uri(f"ipfs://{V0}/1")
    assert (p.kind, str(p.cid), p.path) == ("ipfs", V0, "/1")
    assert p.candidate_urls(GW) == (
        f"http://127.0.0.1:8080/ipfs/{V0}/1",
        f"https://gw.example/ipfs/{V0}/1",
    )


@pytest.mark.parametrize(
    "uri",
    [
        f"ipfs://ipfs/{V1}/7",
        f"ipfs://ipfs/ipfs/{V1}/7",
        f"IPFS://{V1}/7",
        f"ipfs:/{V1}/7",
        f"ipfs:\\/\\/{V1}\\/7",
        f'  "ipfs://{V1}/7"\x00\x00 ',
        f"/ipfs/{V1}/7",
        f"{V1}/7",
        f"ipfs://{V1}//7",
    ],
)
def test_ipfs_spellings_normalise_to_one_uri(uri: str) -> None:
    p = parse_token_uri(uri)
    assert p.normalized == f"ipfs://{V1}/7"
    assert p.origin_url is None


def test_path_gateway_on_any_host_goes_to_our_gateways_then_the_original() -> None:
    url = f"https://azuki.mypinata.cloud/ipfs/{V0}/42.json?x=1"
    p = parse_token_uri(url)
    assert p.kind == "ipfs" and p.path == "/42.json" and p.query == "x=1"
    urls = p.candidate_urls(GW)
    assert urls[0].startswith("http://127.0.0.1:8080/ipfs/")
    assert urls[-1] == url
    assert len(urls) == 3


def test_subdomain_gateway_is_recognised() -> None:
    p = parse_token_uri(f"https://{V1}.ipfs.nftstorage.link/3.json")
    assert p.kind == "ipfs" and str(p.cid) == V1 and p.path == "/3.json"
    assert p.candidate_urls(GW)[-1] == f"https://{V1}.ipfs.nftstorage.link/3.json"


def test_dead_gateway_host_is_rewritten_by_cid_and_never_tried() -> None:
    p = parse_token_uri(f"https://ipfs.infura.io/ipfs/{V0}/5")
    assert p.origin_url is None
    assert all("infura" not in u for u in p.candidate_urls(GW))
    with pytest.raises(InvalidURI):
        parse_token_uri("https://ipfs.infura.io/some/page")


def test_http_url_with_ipfs_segment_but_no_cid_is_a_web_page() -> None:
    p = parse_token_uri("https://example.com/ipfs/not-a-cid/1")
    assert p.kind == "http"


def test_raw_leaf_without_path_is_verifiable() -> None:
    assert parse_token_uri(f"ipfs://{RAW}").is_raw_block
    assert not parse_token_uri(f"ipfs://{V1}/1").is_raw_block


@pytest.mark.parametrize(
    "uri",
    ["ipfs://notacid/1", "ipfs://", "ipfs://Qm123/1", "ftp://example.com/x", "javascript:alert(1)"],
)
def test_invalid_uris_raise_without_io(uri: str) -> None:
    with pytest.raises(InvalidURI):
        parse_token_uri(uri)


@pytest.mark.parametrize("uri", ["", "   ", "\x00\x00", '""', None])
def test_empty_uri_is_no_token_uri(uri: str | None) -> None:
    with pytest.raises(NoTokenURI):
        parse_token_uri(uri)


def test_arweave_forms() -> None:
    tx = "a" * 43
    p = parse_token_uri(f"ar://{tx}/0.json")
    assert p.kind == "arweave" and p.candidate_urls() == (f"https://arweave.net/{tx}/0.json",)
    q = parse_token_uri(f"https://arweave.net/{tx}")
    assert q.kind == "arweave" and q.name == tx
    with pytest.raises(InvalidURI):
        parse_token_uri("ar://short")


def test_data_uri_base64_json() -> None:
    body = b'{"name":"Bag #1","image":"data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="}'
    for payload in (base64.b64encode(body).decode(), base64.b64encode(body).decode().rstrip("=")):
        p = parse_token_uri("data:application/json;base64," + payload)
        assert p.kind == "data" and p.data == body and p.media_type == "application/json"


def test_data_uri_percent_encoded_utf8_raw_json_and_svg_with_hash() -> None:
    assert parse_token_uri("data:application/json,%7B%22a%22%3A1%7D").data == b'{"a":1}'
    assert parse_token_uri('data:application/json;utf8,{"a":"b"}').data == b'{"a":"b"}'
    svg = "<svg xmlns='http://www.w3.org/2000/svg'><rect fill='#ff0000'/></svg>"
    p = parse_token_uri("data:image/svg+xml;utf8," + svg)
    assert p.data == svg.encode() and p.media_type == "image/svg+xml"
    assert parse_token_uri('{"name":"raw"}').data == b'{"name":"raw"}'


def test_data_uri_with_bad_base64_is_invalid() -> None:
    with pytest.raises(InvalidURI):
        parse_token_uri("data:application/json;base64,@@@@")
    with pytest.raises(InvalidURI):
        parse_token_uri("data:application/json;base64")


def test_erc1155_id_substitution_every_occurrence() -> None:
    uri = "https://api.example/{id}/meta/{ID}.json"
    out = substitute_id(uri, 0x1F)
    assert out == f"https://api.example/{'0' * 62}1f/meta/{'0' * 62}1f.json"
    assert substitute_id("x/{id}", 31, decimal=True) == "x/31"
    p = parse_token_uri("https://api.example/0x{id}", token_id=255)
    assert p.origin_url == "https://api.example/0x" + "0" * 62 + "ff"
    with pytest.raises(InvalidURI):
        substitute_id(uri, 1 << 256)


def test_clean_strips_quotes_nuls_and_whitespace() -> None:
    assert clean(" \t'\"https://x.y/1\"'\x00\n") == "https://x.y/1"


def test_relative_references_join_the_metadata_location() -> None:
    from tokenmeta.uri import join_relative

    ipfs = parse_token_uri(f"ipfs://{V1}/meta/7.json")
    assert join_relative(ipfs, "../img/7.png") == f"ipfs://{V1}/img/7.png"
    assert join_relative(ipfs, "7.png") == f"ipfs://{V1}/meta/7.png"
    assert join_relative(ipfs, "../../../x.png") == f"ipfs://{V1}/x.png"  # never above the root
    web = parse_token_uri("https://api.example/tokens/7")
    assert join_relative(web, "/images/7.png") == "https://api.example/images/7.png"
    assert join_relative(web, "https://other.example/a.png") is None
    assert join_relative(parse_token_uri('{"a": 1}'), "x.png") is None
