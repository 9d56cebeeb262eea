"""tokenURI / uri reads on anvil with our contracts: ERC-165 standard detection, JSON-RPC batches,
Multicall3 aggregate3 at its canonical address, reads at an event's block, reverts classified."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from worker.contract_reads import MULTICALL3_ADDRESS, ContractReader, read_token_uris
from worker.errors import BadTokenURIResult, TokenURIReverted

# Multicall3's aggregate3 interface, written here and compiled with solc-js: the test puts its
# runtime code at Multicall3's canonical address the way a chain with Multicall3 has it.
AGGREGATE3_SOURCE = """
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
contract Aggregate3 {
    struct Call3 { address target; bool allowFailure; bytes callData; }
    struct Result { bool success; bytes returnData; }
    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory out) {
        out = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory ret) = calls[i].target.call(calls[i].callData);
            require(ok || calls[i].allowFailure, "Multicall3: call failed");
            out[i] = Result(ok, ret);
        }
    }
}
"""


def rpc(url: str, method: str, params: list[Any]) -> Any:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    body = reply.json()
    assert "error" not in body, body
    return body["result"]


@pytest.fixture(scope="module")
def aggregate3_creation_code() -> str:
    art = ct._run_solc({"Aggregate3.sol": AGGREGATE3_SOURCE})["Aggregate3"]
    return str(art["bytecode"])


def install_multicall3(url: str, creation_code: str) -> None:
    sender = rpc(url, "eth_accounts", [])[0]
    tx = rpc(url, "eth_sendTransaction", [{"from": sender, "data": creation_code}])
    receipt = rpc(url, "eth_getTransactionReceipt", [tx])
    runtime = rpc(url, "eth_getCode", [receipt["contractAddress"], "latest"])
    rpc(url, "anvil_setCode", [MULTICALL3_ADDRESS, runtime])


def test_erc165_tells_721_from_1155_and_neither(anvil: Anvil) -> None:
    w3 = ct.connect(anvil.url)
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    multi = ct.deploy(w3, "DemoMulti", "ipfs://multi/{id}")
    punks = ct.deploy(w3, "PunkMarket", 10)
    reader = ContractReader(anvil.url, multicall=False)
    assert reader.detect_standard(nft.address.lower()) == "erc721"
    assert reader.detect_standard(multi.address.lower()) == "erc1155"
    assert reader.detect_standard(punks.address.lower()) is None
    assert reader.requests == 3  # both interface probes travel in one batch


def test_batched_reads_revert_and_1155_uri(anvil: Anvil) -> None:
    w3 = ct.connect(anvil.url)
    a = list(w3.eth.accounts)
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    ct.set_base_uri(w3, nft, "ipfs://bafybase/")
    ct.mint_batch(w3, nft, a[1], [1, 2, 3, 40])
    ct.burn(w3, nft, a[1], 3)
    reader = ContractReader(anvil.url, multicall=False)
    got = reader.token_uris(nft.address.lower(), [1, 2, 3, 40, 99])
    assert reader.requests == 1  # five eth_calls, one HTTP request
    assert got[1] == "ipfs://bafybase/1"
    assert got[2] == "ipfs://bafybase/2"
    assert got[40] == "ipfs://bafybase/40"
    assert isinstance(got[3], TokenURIReverted)  # burned
    assert isinstance(got[99], TokenURIReverted)  # never minted
    assert "0x7e273289" in str(got[99])  # ERC721NonexistentToken(uint256)

    multi = ct.deploy(w3, "DemoMulti", "ipfs://multi/{id}.json")
    ct.call(w3, multi, "mint", a[1], 7, 5)
    uris = read_token_uris(anvil.url, multi.address.lower(), [7], standard="erc1155")
    assert uris == {7: "ipfs://multi/{id}.json"}
    # reading a 1155 with the 721 selector reverts: the worker then asks ERC-165
    wrong = read_token_uris(anvil.url, multi.address.lower(), [7], standard="erc721")
    assert isinstance(wrong[7], TokenURIReverted)


def test_read_at_the_event_block(anvil: Anvil) -> None:
    w3 = ct.connect(anvil.url)
    a = list(w3.eth.accounts)
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    ct.set_base_uri(w3, nft, "ipfs://bafyold/")
    mint_block = int(ct.mint(w3, nft, a[1], 5)["blockNumber"])
    ct.set_base_uri(w3, nft, "https://example.org/meta/")
    ct.burn(w3, nft, a[1], 5)
    contract = nft.address.lower()
    reader = ContractReader(anvil.url, multicall=False)
    assert isinstance(reader.token_uris(contract, [5])[5], TokenURIReverted)
    at_mint = reader.token_uris(contract, [5], blocks={5: mint_block})
    assert at_mint == {5: "ipfs://bafyold/5"}


def test_multicall3_aggregate3_when_deployed(anvil: Anvil, aggregate3_creation_code: str) -> None:
    w3 = ct.connect(anvil.url)
    a = list(w3.eth.accounts)
    nft = ct.deploy(w3, "DemoNFT", "Demo", "DMO")
    ct.set_base_uri(w3, nft, "ipfs://bafyold/")
    ids = list(range(1, 31))
    early_block = int(ct.mint_batch(w3, nft, a[1], ids)["blockNumber"])
    ct.set_base_uri(w3, nft, "ipfs://bafynew/")
    contract = nft.address.lower()
    wanted = [*ids, 500]

    plain = ContractReader(anvil.url)
    assert not plain.has_multicall3()
    expected = plain.token_uris(contract, wanted)

    install_multicall3(anvil.url, aggregate3_creation_code)
    reader = ContractReader(anvil.url, batch_size=16)
    assert reader.has_multicall3()
    before = reader.requests
    got = reader.token_uris(contract, wanted)
    assert reader.requests - before == 2  # 31 reads in two aggregate3 calls of at most 16
    assert {k: v for k, v in got.items() if isinstance(v, str)} == {
        k: v for k, v in expected.items() if isinstance(v, str)
    }
    assert got[7] == "ipfs://bafynew/7"
    assert isinstance(got[500], TokenURIReverted)
    assert "0x7e273289" in str(got[500])

    # before Multicall3 existed at that block: aggregate3 answers nothing, the plain batch reads
    old = reader.token_uris(contract, [7, 8], blocks={7: early_block, 8: early_block})
    assert old == {7: "ipfs://bafyold/7", 8: "ipfs://bafyold/8"}


def test_a_contract_without_tokenuri_code(anvil: Anvil) -> None:
    empty = "0x" + "12" * 20  # no code: the call succeeds with no return data
    got = read_token_uris(anvil.url, empty, [1], multicall=False)
    assert isinstance(got[1], BadTokenURIResult)
