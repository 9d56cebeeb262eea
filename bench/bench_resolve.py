"""Resolve throughput: tokens/s against a local IPFS gateway with injected latency.

Each token is a real BAYC-style pair (metadata file in a UnixFS directory, PNG by raw CID), so a
token costs two gateway round trips plus a hash check and a decode. The same resolver runs the
tokens one at a time, then as ``resolve_many`` batches; the ratio is what batching buys.

    python bench/bench_resolve.py [--tokens 200] [--latency 0.05] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time

from PIL import Image

from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway
from tokenmeta.errors import TokenMetaError
from tokenmeta.resolve import FetchPolicy, Resolver, resolve_many


def build(gateway: LocalIpfsGateway, n: int) -> str:
    files = {}
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (i % 256, (i * 3) % 256, 90)).save(buf, "PNG")
        image = gateway.add_bytes(buf.getvalue())
        files[str(i)] = json.dumps({"name": f"#{i}", "image": f"ipfs://{image}"}).encode()
    return gateway.add_directory(files)


async def one_at_a_time(policy: FetchPolicy, uris: list[str]) -> float:
    async with Resolver(policy) as resolver:
        start = time.perf_counter()
        for uri in uris:
            await resolver.resolve(uri)
        return time.perf_counter() - start


async def batched(policy: FetchPolicy, uris: list[str], concurrency: int) -> float:
    async with Resolver(policy) as resolver:
        start = time.perf_counter()
        out = await resolve_many(resolver, [(u, None) for u in uris], concurrency)
        elapsed = time.perf_counter() - start
    failed = [o for o in out if isinstance(o, TokenMetaError)]
    if failed:
        raise SystemExit(f"{len(failed)} tokens failed, e.g. {failed[0].code}: {failed[0]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--serial-tokens", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    gateway = LocalIpfsGateway(latency=args.latency)
    base = gateway.start()
    try:
        root = build(gateway, args.tokens)
        uris = [f"ipfs://{root}/{i}" for i in range(args.tokens)]
        policy = FetchPolicy(
            gateways=(base,),
            allow_hosts=frozenset({gateway.netloc}),
            per_host_concurrency=args.concurrency,
        )
        serial = asyncio.run(one_at_a_time(policy, uris[: args.serial_tokens]))
        fast = asyncio.run(batched(policy, uris, args.concurrency))
    finally:
        gateway.stop()

    serial_rate = args.serial_tokens / serial
    batch_rate = args.tokens / fast
    print(f"gateway latency            {args.latency * 1000:.0f} ms per request")
    print(f"one at a time              {serial_rate:8.1f} tokens/s ({args.serial_tokens} tokens)")
    print(
        f"resolve_many (x{args.concurrency:<3})        {batch_rate:8.1f} tokens/s"
        f" ({args.tokens} tokens)"
    )
    print(f"ratio batched / serial     {batch_rate / serial_rate:8.1f}x")
    print(f"ideal (2 round trips/token) {1 / (2 * args.latency):7.1f} tokens/s one at a time")


if __name__ == "__main__":
    main()
