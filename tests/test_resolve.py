"""End to end: tokenURIs of every real-world form resolved over real loopback servers."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import TypeVar

import pytest

from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from tests.support.media import animated_gif, png, png_header_only
from tests.support.servers import OriginServer, static, status_with_retry_after
from tokenmeta.cid import CID, DAG_PB, parse_cid, raw_cid
from tokenmeta.errors import (
    AllGatewaysFailed,
    BlockedAddress,
    ContentMismatch,
    ImageTooLarge,
    InvalidJSON,
    InvalidShape,
    InvalidURI,
    NotFound,
    ResponseTooLarge,
    TokenMetaError,
)
from tokenmeta.resolve import FetchPolicy, Resolution, Resolver, resolve_many

T = TypeVar("T")
PNG = png(24, 24)


@pytest.fixture
def policy(gateway: LocalIpfsGateway, origin: OriginServer) -> FetchPolicy:
    return FetchPolicy(
        gateways=(gateway.base_url,),
        allow_hosts=frozenset({gateway.netloc, origin.netloc}),
        connect_timeout=1.0,
        read_timeout=1.0,
        deadline=3.0,
        max_inline_retry_wait=0.2,
    )


def run(policy: FetchPolicy, job: Callable[[Resolver], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Resolver(policy) as resolver:
            return await job(resolver)

    return asyncio.run(main())


def resolve(policy: FetchPolicy, uri: str, token_id: int | None = None) -> Resolution:
    return run(policy, lambda r: r.resolve(uri, token_id))


def collection(gateway: LocalIpfsGateway, image: bytes = PNG, **extra: object) -> tuple[str, str]:
    """A BAYC-style drop: images by raw CID, metadata files named 0..2 without extension."""
    image_cid = gateway.add_bytes(image)
    files = {
        str(i): json.dumps(
            {"name": f"#{i}", "image": f"ipfs://{image_cid}", "attributes": [{"v": i}], **extra}
        ).encode()
        for i in range(3)
    }
    return gateway.add_directory(files), image_cid


def test_bayc_style_directory_uri(policy: FetchPolicy, gateway: LocalIpfsGateway) -> None:
    root, image_cid = collection(gateway, animation_url="ipfs://x/anim.mp4")
    res = resolve(policy, f"ipfs://{root}/1")
    assert res.metadata is not None and res.metadata["name"] == "#1"
    assert res.attributes == [{"v": 1}]
    assert res.animation_url == "ipfs://x/anim.mp4"
    assert res.image_uri == f"ipfs://{image_cid}"
    assert res.media is not None and res.media.mime == "image/png"
    assert (res.media.width, res.media.height) == (24, 24)
    assert res.media.data == PNG and res.media_error is None


@pytest.mark.parametrize(
    "form",
    [
        "ipfs://ipfs/{root}/2",
        "{root}/2",
        "ipfs://{v0}/2",
        "https://ipfs.infura.io/ipfs/{root}/2",
        "https://cloudflare-ipfs.com/ipfs/{v0}/2",
        "  ipfs://{root}/2\x00 ",
    ],
)
def test_other_spellings_resolve_through_our_gateway(
    policy: FetchPolicy, gateway: LocalIpfsGateway, form: str
) -> None:
    root, _ = collection(gateway)
    v1 = parse_cid(root)
    v0 = str(CID(0, DAG_PB, v1.hash_code, v1.digest))
    res = resolve(policy, form.format(root=root, v0=v0))
    assert res.metadata is not None and res.metadata["name"] == "#2"
    assert res.media is not None


def test_pinned_gateway_url_falls_back_to_its_own_host(
    policy: FetchPolicy, origin: OriginServer, gateway: LocalIpfsGateway
) -> None:
    # Azuki-style: content pinned only on the collection's own gateway host.
    elsewhere = LocalIpfsGateway()
    root = elsewhere.add_directory({"5": json.dumps({"name": "azuki 5"}).encode()})
    origin.routes[f"/ipfs/{root}/5"] = static(json.dumps({"name": "azuki 5"}).encode())
    res = resolve(policy, origin.url(f"/ipfs/{root}/5"))
    assert res.metadata == {"name": "azuki 5"}
    assert gateway.requests == 1  # tried first, 404, then the original host


def test_escaped_slashes_in_json_and_in_the_uri(
    policy: FetchPolicy, gateway: LocalIpfsGateway
) -> None:
    image_cid = gateway.add_bytes(PNG)
    # the JSON string holds a literal backslash before each slash, as double-encoded JSON does
    body = '{"name": "doodle", "image": "ipfs:\\\\/\\\\/' + image_cid + '"}'
    root = gateway.add_directory({"9": body.encode()})
    res = resolve(policy, f"ipfs:\\/\\/{root}\\/9")
    assert res.image_uri == f"ipfs://{image_cid}"
    assert res.media is not None and res.media.data == PNG


def test_onchain_base64_json_with_base64_svg(policy: FetchPolicy) -> None:
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 350 350'>"
        "<rect width='100%' height='100%' fill='#000'/><text x='10' y='20' fill='white'>"
        "Grimoire</text></svg>"
    )
    meta = {
        "name": "Bag #1",
        "image": "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode(),
    }
    uri = "data:application/json;base64," + base64.b64encode(json.dumps(meta).encode()).decode()
    res = resolve(policy, uri)
    assert res.metadata is not None and res.metadata["name"] == "Bag #1"
    assert res.media is not None and res.media.mime == "image/svg+xml"
    assert res.media.image.getpixel((5, 5)) == (0, 0, 0, 255)


def _id_route(body: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    return static(body, "application/json")


def test_erc1155_hex_id_and_decimal_retry(policy: FetchPolicy, origin: OriginServer) -> None:
    token_id = 31
    origin.routes[f"/meta/0x{token_id:064x}.json"] = _id_route(b'{"name": "hex"}')
    res = resolve(policy, origin.url("/meta/0x{id}.json"), token_id)
    assert res.metadata == {"name": "hex"} and not res.id_decimal_fallback
    origin.routes["/dec/31"] = _id_route(b'{"name": "decimal"}')
    res = resolve(policy, origin.url("/dec/{id}"), token_id)
    assert res.metadata == {"name": "decimal"} and res.id_decimal_fallback


def test_token_uri_serving_png_directly_with_a_lying_content_type(
    policy: FetchPolicy, origin: OriginServer
) -> None:
    origin.routes["/token/1"] = static(PNG, "application/json")
    res = resolve(policy, origin.url("/token/1"))
    assert res.metadata is None
    assert res.media is not None and res.media.mime == "image/png"


def test_json_served_as_image_png_is_still_json(policy: FetchPolicy, origin: OriginServer) -> None:
    origin.routes["/token/2"] = static(b'{"name": "liar"}', "image/png")
    assert resolve(policy, origin.url("/token/2")).metadata == {"name": "liar"}


def test_non_utf8_metadata_is_flagged(policy: FetchPolicy, origin: OriginServer) -> None:
    origin.routes["/latin"] = static('{"name": "Señor Café"}'.encode("latin-1"))
    res = resolve(policy, origin.url("/latin"))
    assert res.metadata == {"name": "Señor Café"} and res.latin1_fallback


def test_html_200_and_array_metadata_are_permanent_errors(
    policy: FetchPolicy, origin: OriginServer
) -> None:
    origin.routes["/html"] = static(b"<html><body>Bad gateway</body></html>", "application/json")
    origin.routes["/array"] = static(b"[1, 2]", "application/json")
    with pytest.raises(InvalidJSON):
        resolve(policy, origin.url("/html"))
    with pytest.raises(InvalidShape):
        resolve(policy, origin.url("/array"))


def test_image_errors_keep_the_metadata(policy: FetchPolicy, gateway: LocalIpfsGateway) -> None:
    bomb_root, _ = collection(gateway, image=png_header_only(20000, 20000))
    res = resolve(policy, f"ipfs://{bomb_root}/0")
    assert res.metadata is not None and res.media is None
    assert isinstance(res.media_error, ImageTooLarge) and not res.media_error.retryable


def test_animated_gif_gives_its_first_frame(policy: FetchPolicy, gateway: LocalIpfsGateway) -> None:
    root, _ = collection(gateway, image=animated_gif(400))
    res = resolve(policy, f"ipfs://{root}/0")
    assert res.media is not None and res.media.mime == "image/gif" and res.media.frames == 400


def test_json_over_the_cap_is_refused_while_streaming(
    policy: FetchPolicy, origin: OriginServer
) -> None:
    def huge(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b'{"a":' + b" " * (1 << 20)
        try:
            for _ in range(50):  # 50 MiB if nobody stops reading
                h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            return

    origin.routes["/huge.json"] = huge
    with pytest.raises(ResponseTooLarge):
        resolve(replace(policy, json_cap=5 << 20), origin.url("/huge.json"))


def test_raw_leaf_is_verified_and_a_lying_gateway_is_skipped(
    policy: FetchPolicy, gateway: LocalIpfsGateway, origin: OriginServer
) -> None:
    cid = gateway.add_bytes(PNG)
    origin.routes[f"/ipfs/{cid}"] = static(png(24, 24, color=(0, 0, 255, 255)))
    liar_first = replace(policy, gateways=(f"http://{origin.netloc}", gateway.base_url))
    res = resolve(liar_first, f"ipfs://{cid}")
    assert res.media is not None and res.media.data == PNG
    with pytest.raises(ContentMismatch):
        resolve(replace(policy, gateways=(f"http://{origin.netloc}",)), f"ipfs://{cid}")


def test_gateway_fallback_on_429_and_all_failing_is_retryable(
    policy: FetchPolicy, gateway: LocalIpfsGateway, origin: OriginServer
) -> None:
    root, _ = collection(gateway)
    origin.routes[f"/ipfs/{root}/1"] = status_with_retry_after(429, "60")
    busy_first = replace(policy, gateways=(f"http://{origin.netloc}", gateway.base_url))
    assert resolve(busy_first, f"ipfs://{root}/1").metadata is not None
    gateway.fail_next(5, 504, {"Retry-After": "30"})
    with pytest.raises(AllGatewaysFailed) as failed:
        resolve(busy_first, f"ipfs://{root}/1")
    assert failed.value.retryable and failed.value.retry_after == 30


def test_kubo_rpc_is_used_when_configured(policy: FetchPolicy, gateway: LocalIpfsGateway) -> None:
    root, _ = collection(gateway)
    kubo_only = replace(policy, gateways=(), ipfs_api_url=gateway.base_url)
    res = resolve(kubo_only, f"ipfs://{root}/2")
    assert res.metadata is not None and res.media is not None
    with pytest.raises(NotFound):
        resolve(kubo_only, f"ipfs://{root}/99")


def test_invalid_cid_makes_no_request(policy: FetchPolicy, gateway: LocalIpfsGateway) -> None:
    with pytest.raises(InvalidURI):
        resolve(policy, "ipfs://QmNotReallyACid/1")
    assert gateway.requests == 0


def test_loopback_not_on_the_allow_list_is_blocked(
    policy: FetchPolicy, origin: OriginServer
) -> None:
    origin.routes["/meta"] = static(b'{"name": "x"}')
    closed = replace(policy, allow_hosts=frozenset())
    with pytest.raises(BlockedAddress):
        resolve(closed, origin.url("/meta"))
    assert "/meta" not in origin.hits


def test_resolve_many_keeps_order_and_classifies_each(
    policy: FetchPolicy, gateway: LocalIpfsGateway
) -> None:
    root, _ = collection(gateway)
    items: list[tuple[str, int | None]] = [
        (f"ipfs://{root}/0", 0),
        ("", 1),
        (f"ipfs://{root}/404", 2),
        (f"ipfs://{root}/2", 3),
        ("ipfs://bad", 4),
        (f"ipfs://{raw_cid(b'missing')}", 5),
    ]
    out = run(policy, lambda r: resolve_many(r, items, concurrency=3))
    codes = [o.code if isinstance(o, TokenMetaError) else "ok" for o in out]
    assert codes == ["ok", "NoTokenURI", "NotFound", "ok", "InvalidURI", "NotFound"]
    first = out[0]
    assert isinstance(first, Resolution) and first.metadata is not None
    assert first.metadata["name"] == "#0"


def test_relative_image_next_to_the_metadata(
    policy: FetchPolicy, gateway: LocalIpfsGateway
) -> None:
    root = gateway.add_directory(
        {"meta/4": json.dumps({"image": "../img/4.png"}).encode(), "img/4.png": PNG}
    )
    res = resolve(policy, f"ipfs://{root}/meta/4")
    assert res.image_uri == f"ipfs://{root}/img/4.png"
    assert res.media is not None and res.media.data == PNG


def test_inline_png_data_uri_image_and_video_image(
    policy: FetchPolicy, gateway: LocalIpfsGateway
) -> None:
    inline = "data:image/png;base64," + base64.b64encode(PNG).decode()
    video_cid = gateway.add_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    root = gateway.add_directory(
        {
            "a": json.dumps({"image": inline}).encode(),
            "b": json.dumps({"image": f"ipfs://{video_cid}"}).encode(),
        }
    )
    res = resolve(policy, f"ipfs://{root}/a")
    assert res.media is not None and res.media.data == PNG
    video = resolve(policy, f"ipfs://{root}/b")
    assert video.media is None and video.media_error is not None
    assert video.media_error.code == "UnsupportedMedia" and "video/mp4" in str(video.media_error)
