"""The demo's on-chain story: deploy our contracts on anvil, mint the five collections to a few
holders, then trade: plain transfers, Seaport-shaped sales on the demo market, CryptoPunks-market
sales, and fresh punk listings for the desk."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from nftwatch.demo.content import DemoCollection
from nftwatch.localstack import chaintools

WEI = 10**18


@dataclass
class Deployed:
    collection: DemoCollection
    contract: Any  # web3 Contract
    standard: str  # erc721 | cryptopunks

    @property
    def address(self) -> str:
        return str(self.contract.address).lower()


@dataclass
class TradeStats:
    mints: int = 0
    transfers: int = 0
    sales: int = 0
    listings: list[tuple[str, int, int]] = field(default_factory=list)  # (contract, id, wei)


def fair_price_wei(collection: DemoCollection, token_index: int, rng: random.Random) -> int:
    """The scenario's price: the collection's level, a premium per rare trait, and noise; so
    that rarer and visually distinct tokens really are worth more."""
    counts: Counter[tuple[str, str]] = Counter(
        (a["trait_type"], a["value"]) for t in collection.tokens for a in t.attributes
    )
    n = len(collection.tokens)
    token = collection.tokens[token_index]
    rare = sum(1 for a in token.attributes if counts[(a["trait_type"], a["value"])] / n < 0.12)
    price = collection.price_level_eth * (1.0 + 0.5 * rare) * rng.lognormvariate(0.0, 0.15)
    return int(price * 1000) * WEI // 1000


def deploy(w3: Web3, collections: list[DemoCollection], base_uris: list[str]) -> list[Deployed]:
    out = []
    for collection, base in zip(collections, base_uris, strict=True):
        if collection.key == "cryptopunks":
            supply = max(t.token_id for t in collection.tokens) + 1
            contract = chaintools.deploy(w3, "PunkMarket", supply)
            chaintools.call(w3, contract, "setBaseURI", base)
            out.append(Deployed(collection, contract, "cryptopunks"))
        else:
            contract = chaintools.deploy(w3, "DemoNFT", collection.name, collection.symbol)
            chaintools.set_base_uri(w3, contract, base)
            out.append(Deployed(collection, contract, "erc721"))
    return out


def mint_all(w3: Web3, deployed: list[Deployed], holders: list[str], rng: random.Random) -> int:
    minted = 0
    for d in deployed:
        ids = [t.token_id for t in d.collection.tokens]
        owners = {tid: rng.choice(holders) for tid in ids}
        if d.standard == "cryptopunks":
            chaintools.assign_punks(w3, d.contract, owners)
        else:
            for holder in set(owners.values()):
                chaintools.mint_batch(
                    w3, d.contract, holder, [i for i in ids if owners[i] == holder]
                )
        minted += len(ids)
    return minted


def owner_of(d: Deployed, token_id: int) -> str:
    fn = "punkIndexToAddress" if d.standard == "cryptopunks" else "ownerOf"
    return str(getattr(d.contract.functions, fn)(token_id).call())


def trade(
    w3: Web3,
    deployed: list[Deployed],
    market: Any,
    holders: list[str],
    rng: random.Random,
    rounds: int = 3,
) -> TradeStats:
    """Each round sells about a third of each collection and gives away a few; some tokens
    trade in several rounds, so the collection has liquid and illiquid tokens."""
    stats = TradeStats()
    for _ in range(rounds):
        for d in deployed:
            tokens = d.collection.tokens
            for index in rng.sample(range(len(tokens)), k=max(1, len(tokens) // 3)):
                token_id = tokens[index].token_id
                seller = owner_of(d, token_id)
                buyer = rng.choice([h for h in holders if h != seller])
                price = fair_price_wei(d.collection, index, rng)
                if d.standard == "cryptopunks":
                    chaintools.call(
                        w3, d.contract, "offerPunkForSale", token_id, price, sender=seller
                    )
                    chaintools.call(w3, d.contract, "buyPunk", token_id, sender=buyer, value=price)
                else:
                    chaintools.sell(
                        w3, market, d.contract, seller, buyer, token_id, price, fee_wei=price // 40
                    )
                stats.sales += 1
            for index in rng.sample(range(len(tokens)), k=max(1, len(tokens) // 10)):
                token_id = tokens[index].token_id
                sender = owner_of(d, token_id)
                receiver = rng.choice([h for h in holders if h != sender])
                if d.standard == "cryptopunks":
                    chaintools.call(
                        w3,
                        d.contract,
                        "transferPunk",
                        Web3.to_checksum_address(receiver),
                        token_id,
                        sender=sender,
                    )
                else:
                    chaintools.transfer(w3, d.contract, sender, receiver, token_id)
                stats.transfers += 1
    return stats


def list_punks(
    w3: Web3, punks: Deployed, rng: random.Random, count: int
) -> list[tuple[str, int, int]]:
    """Offer a few punks for sale on the market contract: new listings for the desk."""
    listed = []
    tokens = punks.collection.tokens
    for index in rng.sample(range(len(tokens)), k=min(count, len(tokens))):
        token_id = tokens[index].token_id
        price = fair_price_wei(punks.collection, index, rng)
        chaintools.call(
            w3,
            punks.contract,
            "offerPunkForSale",
            token_id,
            price,
            sender=owner_of(punks, token_id),
        )
        listed.append((punks.address, token_id, price))
    return listed
