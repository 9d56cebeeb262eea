"""Our Solidity compiles with solc-js, behaves like what it imitates, and emits the exact event
signatures the listener decodes by hand."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak

from listeners import decode
from listeners.markets import cryptopunks
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil


def _event_topics(abi: list[dict]) -> dict[str, str]:
    def typ(i: dict) -> str:
        if i["type"].startswith("tuple"):
            return "(" + ",".join(typ(c) for c in i["components"]) + ")" + i["type"][5:]
        return i["type"]

    out = {}
    for item in abi:
        if item["type"] == "event":
            sig = f"{item['name']}({','.join(typ(i) for i in item['inputs'])})"
            out[item["name"]] = "0x" + keccak(sig.encode()).hex()
    return out


def test_event_signatures_match_the_decoder() -> None:
    arts = ct.compile_contracts()
    punks = _event_topics(arts["PunkMarket"].abi)
    assert punks == {
        "Assign": cryptopunks.ASSIGN,
        "Transfer": decode.TRANSFER,
        "PunkTransfer": cryptopunks.PUNK_TRANSFER,
        "PunkOffered": cryptopunks.PUNK_OFFERED,
        "PunkBidEntered": cryptopunks.PUNK_BID_ENTERED,
        "PunkBidWithdrawn": cryptopunks.PUNK_BID_WITHDRAWN,
        "PunkBought": cryptopunks.PUNK_BOUGHT,
        "PunkNoLongerForSale": cryptopunks.PUNK_NO_LONGER_FOR_SALE,
    }
    # Seaport 1.x OrderFulfilled, as published
    assert _event_topics(arts["DemoMarket"].abi)["OrderFulfilled"] == (
        "0x9d9af8e38d66c62e2c12f0225249fd9d721c54b83f48d9352c97c6cacdcb6f31"
    )
    nft = _event_topics(arts["DemoNFT"].abi)
    assert nft["MetadataUpdate"] == decode.METADATA_UPDATE
    assert nft["BatchMetadataUpdate"] == decode.BATCH_METADATA_UPDATE
    assert _event_topics(arts["DemoConsecutive"].abi)["ConsecutiveTransfer"] == (
        decode.CONSECUTIVE_TRANSFER
    )
    multi = _event_topics(arts["DemoMulti"].abi)
    assert multi["TransferBatch"] == decode.TRANSFER_BATCH and multi["URI"] == decode.URI


def test_compile_is_cached() -> None:
    first = ct.compile_contracts()
    assert list(ct.BUILD_DIR.glob("artifacts-*.json"))
    assert ct.compile_contracts() == first


def test_demo_nft_and_punk_behaviour(anvil: Anvil) -> None:
    w3 = ct.connect(anvil.url)
    a = w3.eth.accounts
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    assert nft.functions.name().call() == "Demo" and nft.functions.symbol().call() == "DMO"
    ct.mint(w3, nft, a[1], 1234)
    ct.set_base_uri(w3, nft, "ipfs://bafydir/")
    assert nft.functions.tokenURI(1234).call() == "ipfs://bafydir/1234"
    assert nft.functions.supportsInterface(bytes.fromhex("49064906")).call()
    with pytest.raises(ct.TransactionReverted):
        ct.call(w3, nft, "mint", a[2], 5, sender=a[2])  # owner only

    punks = ct.deploy(w3, "PunkMarket", 10)
    ct.assign_punks(w3, punks, {3: a[1]})
    ct.call(w3, punks, "setBaseURI", "ipfs://punks/")
    assert punks.functions.tokenURI(3).call() == "ipfs://punks/3"
    ct.call(w3, punks, "offerPunkForSale", 3, 10**18, sender=a[1])
    with pytest.raises(ct.TransactionReverted):
        ct.call(w3, punks, "buyPunk", 3, sender=a[2], value=10**17)  # under the asking price
    ct.call(w3, punks, "buyPunk", 3, sender=a[2], value=10**18)
    assert punks.functions.punkIndexToAddress(3).call() == a[2]
    assert punks.functions.pendingWithdrawals(a[1]).call() == 10**18
    before = w3.eth.get_balance(a[1])
    ct.call(w3, punks, "withdraw", sender=a[1])
    assert w3.eth.get_balance(a[1]) > before
    assert punks.functions.pendingWithdrawals(a[1]).call() == 0
