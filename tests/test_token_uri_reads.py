"""tokenURI / uri reads on anvil with our contracts: ERC-165 standard detection, JSON-RPC batches,
Multicall3 aggregate3 at its canonical address, reads at an event's block, reverts classified;
and against a loopback node that refuses: the listeners' Retryable with its Retry-After."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from eth_abi import encode as abi_encode

from listeners.errors import Retryable, RpcUnavailable
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.servers import OriginServer, sequence, status_with_retry_after
from worker.contract_reads import MULTICALL3_ADDRESS, ContractReader, read_token_uris
from worker.errors import BadTokenURIResult, TokenURIReverted, TokenURIUnavailable, WorkerError

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


@pytest.fixture
def node() -> Iterator[OriginServer]:
    server = OriginServer().start()
    yield server
    server.stop()


def test_a_refusing_node_raises_retryable_with_its_retry_after(node: OriginServer) -> None:
    node.routes["/rate"] = status_with_retry_after(429, "7")
    node.routes["/down"] = status_with_retry_after(503, "30")
    node.routes["/bare"] = status_with_retry_after(502, None)
    with pytest.raises(RpcUnavailable) as limited:
        read_token_uris(node.url("/rate"), "0x" + "12" * 20, [1, 2], multicall=False)
    assert isinstance(limited.value, Retryable) and not isinstance(limited.value, WorkerError)
    assert limited.value.retry_after == 7.0
    with ContractReader(node.url("/down")) as reader, pytest.raises(Retryable) as down:
        reader.detect_standard("0x" + "12" * 20)  # the ERC-165 probes: the same seam
    assert down.value.retry_after == 30.0
    with pytest.raises(Retryable) as bare:
        read_token_uris(node.url("/bare"), "0x" + "12" * 20, [1])  # asks for Multicall3 first
    assert bare.value.retry_after is None
    assert node.hits == {"/rate": 1, "/down": 1, "/bare": 1}


def _json_rpc(answer: Any) -> Any:
    """A route answering each JSON-RPC batch with ``answer(calls)``."""

    def route(h: BaseHTTPRequestHandler) -> None:
        calls = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        raw = json.dumps(answer(calls)).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)

    return route


def test_a_call_the_node_fails_is_read_again_at_the_head(node: OriginServer) -> None:
    uri = "0x" + abi_encode(["string"], ["ipfs://bafyhead/1"]).hex()

    def pruned(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # no state at the event's block (not an archive node), and no reply at all to token 2
        missing = {"code": -32000, "message": "missing trie node"}
        return [{"jsonrpc": "2.0", "id": calls[0]["id"], "error": missing}]

    def head(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert all(c["params"][1] == "latest" for c in calls)
        return [{"jsonrpc": "2.0", "id": c["id"], "result": uri} for c in calls]

    node.routes["/"] = sequence(_json_rpc(pruned), _json_rpc(head))
    with httpx.Client() as client:
        with ContractReader(node.url("/"), multicall=False, client=client) as reader:
            got = reader.token_uris("0x" + "12" * 20, [1, 2], blocks={1: 100, 2: 100})
            assert reader.requests == 2
        assert not client.is_closed  # a shared client stays its owner's
    assert got == {1: "ipfs://bafyhead/1", 2: "ipfs://bafyhead/1"}
    node.routes["/"] = _json_rpc(pruned)
    at_head = read_token_uris(node.url("/"), "0x" + "12" * 20, [1], multicall=False)
    assert isinstance(at_head[1], TokenURIUnavailable) and at_head[1].retryable
