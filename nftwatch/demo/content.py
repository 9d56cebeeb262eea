"""The demo's five collections as tokens with images and metadata, published by CID on the local
IPFS gateway the way real collections do it: an image folder and a metadata folder, with
``tokenURI = ipfs://<metadata folder CID>/<token id>``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from nftwatch.demo.art import DemoToken, cryptopunks, generate_collection
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway


@dataclass(frozen=True)
class DemoCollection:
    key: str
    name: str
    symbol: str
    tokens: list[DemoToken]
    price_level_eth: float  # what a floor token trades at in the scenario


# (key, name, symbol, style, price level); the styles stand for the blog's five collections
COLLECTIONS = (
    ("cryptopunks", "CryptoPunks", "PUNK", "punks", 40.0),
    ("azuki", "Azuki (demo style)", "AZK", "azuki", 8.0),
    ("bayc", "Bored Ape Yacht Club (demo style)", "BAYC", "bayc", 25.0),
    ("doodles", "Doodles (demo style)", "DOOD", "doodles", 4.0),
    ("wow", "World of Women (demo style)", "WOW", "wow", 2.0),
)


def build_collections(count: int, seed: int = 7) -> list[DemoCollection]:
    out = []
    for key, name, symbol, style, level in COLLECTIONS:
        tokens = cryptopunks(count) if style == "punks" else generate_collection(style, count, seed)
        out.append(DemoCollection(key, name, symbol, tokens, level))
    return out


def publish(gateway: LocalIpfsGateway, collection: DemoCollection) -> str:
    """Add the images and the metadata to IPFS; returns the tokenURI base ``ipfs://CID/``."""
    images = gateway.add_directory({f"{t.token_id}.png": t.image_png for t in collection.tokens})
    metadata = {
        str(t.token_id): json.dumps(
            {
                "name": t.name,
                "description": f"{collection.name}, a collection of the nftwatch demo",
                "image": f"ipfs://{images}/{t.token_id}.png",
                "attributes": t.attributes,
            }
        ).encode()
        for t in collection.tokens
    }
    return f"ipfs://{gateway.add_directory(metadata)}/"
