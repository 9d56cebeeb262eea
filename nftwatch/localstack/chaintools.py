"""Our Solidity contracts for tests and the demo: compile them with solc-js, deploy them, and drive
them (mint, transfer, list, buy) through web3.py against anvil's unlocked accounts.

Compilation runs solc-js under ``node`` with standard-JSON input; ``@openzeppelin/...`` and
``erc721a/...`` imports resolve from ``node_modules``. Artifacts are cached in ``contracts/build/``
under a hash of the sources and compiler settings, so only the first call pays for solc.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
NODE_MODULES = REPO_ROOT / "node_modules"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

# solc-js takes the import callback as a JS function, so the driver is a tiny node script.
_DRIVER = r"""
const fs = require('fs');
const path = require('path');
const solc = require(process.argv[1] + '/solc');
const roots = process.argv.slice(2);
const input = fs.readFileSync(0, 'utf8');
function findImports(p) {
  for (const root of roots) {
    const full = path.join(root, p);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, 'utf8') };
  }
  return { error: 'not found: ' + p };
}
process.stdout.write(solc.compile(input, { import: findImports }));
"""

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
}


class CompileError(RuntimeError):
    """solc reported errors, or node/solc-js is missing."""


class TransactionReverted(RuntimeError):
    """A transaction reverted (or would have: web3 estimates gas first)."""


@dataclass(frozen=True)
class CompiledContract:
    abi: list[dict[str, Any]]
    bytecode: str


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(CONTRACTS_DIR.glob("*.sol"))}


def _solc_version() -> str:
    pkg = json.loads((NODE_MODULES / "solc" / "package.json").read_text())
    return str(pkg["version"])


def compile_contracts(*, force: bool = False) -> dict[str, CompiledContract]:
    """Compile every ``contracts/*.sol``; returns contract name -> ABI and creation bytecode."""
    sources = _sources()
    key = hashlib.sha256(
        json.dumps([sources, SETTINGS, _solc_version()], sort_keys=True).encode()
    ).hexdigest()[:16]
    cached = BUILD_DIR / f"artifacts-{key}.json"
    if cached.exists() and not force:
        raw = json.loads(cached.read_text())
    else:
        raw = _run_solc(sources)
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw))
        tmp.replace(cached)
    return {name: CompiledContract(v["abi"], v["bytecode"]) for name, v in raw.items()}


def _run_solc(sources: dict[str, str]) -> dict[str, dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        raise CompileError("node is not on PATH: solc-js needs Node.js")
    if not (NODE_MODULES / "solc").exists():
        raise CompileError("solc-js is missing: run `npm ci` to install node_modules")
    std_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": SETTINGS,
    }
    proc = subprocess.run(
        [node, "-e", _DRIVER, str(NODE_MODULES), str(NODE_MODULES), str(CONTRACTS_DIR)],
        input=json.dumps(std_input),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CompileError(f"solc-js failed: {proc.stderr.strip()[:2000]}")
    out = json.loads(proc.stdout)
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e["message"]) for e in errors))
    result: dict[str, dict[str, Any]] = {}
    for file_name in sources:
        for name, art in out["contracts"].get(file_name, {}).items():
            bytecode = art["evm"]["bytecode"]["object"]
            if bytecode:  # skip abstract contracts and interfaces
                result[name] = {"abi": art["abi"], "bytecode": "0x" + bytecode}
    return result


def connect(url: str) -> Web3:
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))


def _send(w3: Web3, fn: Any, sender: str | None = None, value: int = 0) -> dict[str, Any]:
    tx: dict[str, Any] = {"from": sender or w3.eth.accounts[0]}
    if value:
        tx["value"] = value
    try:
        tx_hash = fn.transact(tx)
    except ContractLogicError as exc:
        raise TransactionReverted(f"reverted: {exc}") from exc
    receipt = dict(w3.eth.wait_for_transaction_receipt(tx_hash))
    if receipt["status"] != 1:
        raise TransactionReverted(f"transaction reverted: {tx_hash.hex()}")
    return receipt


def deploy(w3: Web3, name: str, *args: Any, sender: str | None = None) -> Contract:
    """Deploy contract ``name`` with constructor ``args`` from ``sender`` (default: account 0)."""
    art = compile_contracts()[name]
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = _send(w3, factory.constructor(*args), sender)
    contract: Contract = w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)
    return contract


def at(w3: Web3, name: str, address: str) -> Contract:
    """A handle on an already deployed contract of ours."""
    art = compile_contracts()[name]
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=art.abi)


def call(
    w3: Web3, contract: Contract, method: str, *args: Any, sender: str | None = None, value: int = 0
) -> dict[str, Any]:
    """Send one transaction ``contract.method(*args)``; returns the receipt (raises on revert)."""
    return _send(w3, getattr(contract.functions, method)(*args), sender, value)


# ---- ERC-721 (DemoNFT) ----


def mint(w3: Web3, nft: Contract, to: str, token_id: int) -> dict[str, Any]:
    return call(w3, nft, "mint", Web3.to_checksum_address(to), token_id)


def mint_batch(w3: Web3, nft: Contract, to: str, token_ids: list[int]) -> dict[str, Any]:
    return call(w3, nft, "mintBatch", Web3.to_checksum_address(to), token_ids)


def transfer(w3: Web3, nft: Contract, sender: str, to: str, token_id: int) -> dict[str, Any]:
    return call(
        w3,
        nft,
        "transferFrom",
        Web3.to_checksum_address(sender),
        Web3.to_checksum_address(to),
        token_id,
        sender=sender,
    )


def burn(w3: Web3, nft: Contract, holder: str, token_id: int) -> dict[str, Any]:
    return call(w3, nft, "burn", token_id, sender=holder)


def set_base_uri(w3: Web3, nft: Contract, base: str) -> dict[str, Any]:
    """DemoNFT emits BatchMetadataUpdate; PunkMarket (demo extension) emits nothing."""
    return call(w3, nft, "setBaseURI", base)


# ---- DemoMarket (Seaport-shaped sales) ----


def list_for_sale(
    w3: Web3,
    market: Contract,
    nft: Contract,
    seller: str,
    token_id: int,
    price_wei: int,
    *,
    fee_wei: int = 0,
    currency: str = ZERO_ADDRESS,
) -> dict[str, Any]:
    """Approve the market for ``seller``'s tokens and list ``token_id``."""
    call(w3, nft, "setApprovalForAll", market.address, True, sender=seller)
    return call(
        w3,
        market,
        "list",
        nft.address,
        token_id,
        Web3.to_checksum_address(currency),
        price_wei,
        fee_wei,
        sender=seller,
    )


def buy(w3: Web3, market: Contract, nft: Contract, buyer: str, token_id: int) -> dict[str, Any]:
    """Buy a listed token; pays ETH, or (ERC-20 listings) approves the currency first."""
    _seller, currency, price, _fee = market.functions.listings(nft.address, token_id).call()
    if int(currency, 16) == 0:
        return call(w3, market, "buy", nft.address, token_id, sender=buyer, value=price)
    token = at(w3, "DemoToken", currency)
    call(w3, token, "approve", market.address, price, sender=buyer)
    return call(w3, market, "buy", nft.address, token_id, sender=buyer)


def sell(
    w3: Web3,
    market: Contract,
    nft: Contract,
    seller: str,
    buyer: str,
    token_id: int,
    price_wei: int,
    *,
    fee_wei: int = 0,
) -> dict[str, Any]:
    """List and buy in one go: one Seaport-shaped ETH sale."""
    list_for_sale(w3, market, nft, seller, token_id, price_wei, fee_wei=fee_wei)
    return buy(w3, market, nft, buyer, token_id)


# ---- PunkMarket ----


def assign_punks(
    w3: Web3,
    punks: Contract,
    owners: dict[int, str],
    *,
    open_market: bool = True,
) -> dict[str, Any]:
    """setInitialOwners for ``{punk_index: owner}``; then (default) allInitialOwnersAssigned."""
    indices = sorted(owners)
    receipt = call(
        w3,
        punks,
        "setInitialOwners",
        [Web3.to_checksum_address(owners[i]) for i in indices],
        indices,
    )
    if open_market:
        call(w3, punks, "allInitialOwnersAssigned")
    return receipt
