"""Blur on anvil: the pool-like token placed at Blur Pool's real address, v1 orders, and the
published event ABIs (from the verified BlurExchange, BlurExchangeV2 and Blend sources) that the
market tests check our decoders and emitters against."""

from __future__ import annotations

from typing import Any

import httpx
from eth_hash.auto import keccak
from web3 import Web3
from web3.contract import Contract

from listeners.markets.base import BLUR_POOL
from listeners.markets.blur import EXCHANGE_V1, ORDERS_MATCHED
from nftwatch.localstack import chaintools as ct

ETH = 10**18
MAX_UINT = 2**256 - 1


def rpc_call(url: str, method: str, params: list[Any]) -> Any:
    payload = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    ).json()
    assert "error" not in payload, payload
    return payload["result"]


def install_pool(w3: Web3, url: str) -> Contract:
    """A ``BlurPoolLike`` at Blur Pool's mainnet address (its code copied there), so that the
    listener reads its transfers as Blur Pool ETH."""
    template = ct.deploy(w3, "BlurPoolLike")
    code = w3.eth.get_code(template.address)
    rpc_call(url, "anvil_setCode", [Web3.to_checksum_address(BLUR_POOL), "0x" + code.hex()])
    return ct.at(w3, "BlurPoolLike", BLUR_POOL)


def fund(w3: Web3, pool: Contract, account: str, amount: int, operators: list[str]) -> None:
    """``amount`` of ETH deposited into ``account``'s pool balance, movable by ``operators``."""
    ct.call(w3, pool, "deposit", sender=account, value=amount)
    for op in operators:
        ct.call(w3, pool, "setOperator", op, True, sender=account)


def order(
    trader: str,
    side: int,
    collection: str,
    token_id: int,
    price: int,
    listing_time: int,
    payment_token: str = "0x" + "0" * 40,
    fees: list[tuple[int, str]] | None = None,
    salt: int = 1,
) -> tuple[Any, ...]:
    """A v1 ``Order`` as web3 and eth_abi take it (side 0 buy, 1 sell)."""
    return (
        Web3.to_checksum_address(trader),
        side,
        Web3.to_checksum_address("0x" + "ab" * 20),  # matching policy: not read
        Web3.to_checksum_address(collection),
        token_id,
        1,
        Web3.to_checksum_address(payment_token),
        price,
        listing_time,
        MAX_UINT,
        [(rate, Web3.to_checksum_address(to)) for rate, to in fees or []],
        salt,
        b"\x01",
    )


# --- the published ABIs -----------------------------------------------------------------------


def _param(name: str, type_: str, indexed: bool = False, components: Any = None) -> dict:
    out: dict[str, Any] = {"name": name, "type": type_, "indexed": indexed}
    if components is not None:
        out["components"] = components
    return out


_FEE = [_param("rate", "uint16"), _param("recipient", "address")]
_ORDER = [
    _param("trader", "address"),
    _param("side", "uint8"),
    _param("matchingPolicy", "address"),
    _param("collection", "address"),
    _param("tokenId", "uint256"),
    _param("amount", "uint256"),
    _param("paymentToken", "address"),
    _param("price", "uint256"),
    _param("listingTime", "uint256"),
    _param("expirationTime", "uint256"),
    _param("fees", "tuple[]", components=_FEE),
    _param("salt", "uint256"),
    _param("extraParams", "bytes"),
]
_TRANSFER = [
    _param("trader", "address"),
    _param("id", "uint256"),
    _param("amount", "uint256"),
    _param("collection", "address"),
    _param("assetType", "uint8"),
]
_FEE_RATE = [_param("recipient", "address"), _param("rate", "uint16")]
_FEES = [
    _param("protocolFee", "tuple", components=_FEE_RATE),
    _param("takerFee", "tuple", components=_FEE_RATE),
]


def _event(name: str, *inputs: dict) -> dict:
    return {"type": "event", "name": name, "anonymous": False, "inputs": list(inputs)}


BLUR_ABI = [
    _event(
        "OrdersMatched",
        _param("maker", "address", True),
        _param("taker", "address", True),
        _param("sell", "tuple", components=_ORDER),
        _param("sellHash", "bytes32"),
        _param("buy", "tuple", components=_ORDER),
        _param("buyHash", "bytes32"),
    ),
    _event(
        "Execution",
        _param("transfer", "tuple", components=_TRANSFER),
        _param("orderHash", "bytes32"),
        _param("listingIndex", "uint256"),
        _param("price", "uint256"),
        _param("makerFee", "tuple", components=_FEE_RATE),
        _param("fees", "tuple", components=_FEES),
        _param("orderType", "uint8"),
    ),
    _event(
        "Execution721Packed",
        _param("orderHash", "bytes32"),
        _param("tokenIdListingIndexTrader", "uint256"),
        _param("collectionPriceSide", "uint256"),
    ),
    _event(
        "Execution721TakerFeePacked",
        _param("orderHash", "bytes32"),
        _param("tokenIdListingIndexTrader", "uint256"),
        _param("collectionPriceSide", "uint256"),
        _param("takerFeeRecipientRate", "uint256"),
    ),
    _event(
        "Execution721MakerFeePacked",
        _param("orderHash", "bytes32"),
        _param("tokenIdListingIndexTrader", "uint256"),
        _param("collectionPriceSide", "uint256"),
        _param("makerFeeRecipientRate", "uint256"),
    ),
]

BLEND_ABI = [
    _event(
        "LoanOfferTaken",
        _param("offerHash", "bytes32"),
        _param("lienId", "uint256"),
        _param("collection", "address"),
        _param("lender", "address"),
        _param("borrower", "address"),
        _param("loanAmount", "uint256"),
        _param("rate", "uint256"),
        _param("tokenId", "uint256"),
        _param("auctionDuration", "uint256"),
    ),
    _event("Repay", _param("lienId", "uint256"), _param("collection", "address")),
    _event("StartAuction", _param("lienId", "uint256"), _param("collection", "address")),
    _event(
        "Refinance",
        _param("lienId", "uint256"),
        _param("collection", "address"),
        _param("newLender", "address"),
        _param("newAmount", "uint256"),
        _param("newRate", "uint256"),
        _param("newAuctionDuration", "uint256"),
    ),
    _event("Seize", _param("lienId", "uint256"), _param("collection", "address")),
    _event(
        "BuyLocked",
        _param("lienId", "uint256"),
        _param("collection", "address"),
        _param("buyer", "address"),
        _param("seller", "address"),
        _param("tokenId", "uint256"),
    ),
]


def abi_type(param: dict) -> str:
    """The canonical ABI type of a parameter (tuples spelled out)."""
    if param["type"].startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def signature(event: dict) -> str:
    return f"{event['name']}({','.join(abi_type(i) for i in event['inputs'])})"


def topic0(event: dict) -> str:
    return "0x" + keccak(signature(event).encode()).hex()


def shape(abi: list[dict]) -> dict[str, list[tuple[str, bool]]]:
    """Each event's inputs as (canonical type, indexed): what fixes its log layout."""
    return {
        e["name"]: [(abi_type(i), bool(i.get("indexed"))) for i in e["inputs"]]
        for e in abi
        if e["type"] == "event"
    }


# --- the real fill on mainnet -------------------------------------------------------------------

# Block 17,173,049, transaction 0x63fd…9e90: a borrower sells Azuki #1527, Blend collateral,
# into a Blur bid (Blend's takeBid): Repay, the bidder's 16.3 pool ETH into Blend, the token to
# the bidder, OrdersMatched (sell.trader = Blend), 14.71… ETH to the lender, the rest to the
# borrower. The logs as mainnet has them (approvals included), in eth_getLogs' shape.
MAINNET_TX = "0x63fd57422f2051d8307eca6fa1e2874759bef24549be34cc820a443efc5f9e90"
AZUKI = "0xed5af388653567af2f388e6224dc7c4b3241c544"
_BLOCK = "0xaa5ab9bb22d8020d438496a7edb4eff508b1c5128b0dc01fdecf57f96aac1bb3"
BLEND = "0x29469395eaf6f95920e59f858042f0e28d98a20b"
_APPROVAL = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
_TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
MAINNET_BIDDER = "0x63e0605491bda6e4c1c37cf818a45b836faf46ee"
MAINNET_LENDER = "0x020ca66c30bec2c4fe3861a94e4db4a498a35872"
MAINNET_BORROWER = "0x14faf662e4631189d7c5e32d13391cd9fa06d68a"


def _t(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


_ORDERS_MATCHED_DATA = (
    "0x0000000000000000000000000000000000000000000000000000000000000080"
    "8ce975f0ea45e9f29ba5dc655a0c90af683ca5b78b0ecd9ae1b587e316940355"
    "0000000000000000000000000000000000000000000000000000000000000280"
    "b460174cc5b298109e4d93119f3d1327f17c4ef3dba0905d91a799013fd24b38"
    "00000000000000000000000029469395eaf6f95920e59f858042f0e28d98a20b"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "0000000000000000000000000000000000b92d5d043faf7cecf7e2ee6aaed232"
    "000000000000000000000000ed5af388653567af2f388e6224dc7c4b3241c544"
    "00000000000000000000000000000000000000000000000000000000000005f7"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "0000000000000000000000000000000000a39bb272e79075ade125fd351887ac"
    "000000000000000000000000000000000000000000000000e2353ba38ede0000"
    "000000000000000000000000000000000000000000000000000000006450fa41"
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    "00000000000000000000000000000000000000000000000000000000000001a0"
    "0000000000000000000000000000000000000000000000000000000000000251"
    "00000000000000000000000000000000000000000000000000000000000001c0"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "0100000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000063e0605491bda6e4c1c37cf818a45b836faf46ee"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000b92d5d043faf7cecf7e2ee6aaed232"
    "000000000000000000000000ed5af388653567af2f388e6224dc7c4b3241c544"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "0000000000000000000000000000000000a39bb272e79075ade125fd351887ac"
    "000000000000000000000000000000000000000000000000e2353ba38ede0000"
    "000000000000000000000000000000000000000000000000000000006450fa40"
    "0000000000000000000000000000000000000000000000000000000066322dc0"
    "00000000000000000000000000000000000000000000000000000000000001a0"
    "00000000000000000000000000000000ece722e01a7b754c2b0b470c31bd6bbd"
    "00000000000000000000000000000000000000000000000000000000000001c0"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "0100000000000000000000000000000000000000000000000000000000000000"
)
_TOKEN_1527 = "0x" + f"{1527:064x}"
_RAW = [
    (196, BLEND, "0x" + f"{593:064x}" + "00" * 12 + AZUKI[2:],
     ["0x2469cc9e12e74c63438d5b1117b318cd3a4cdaf9d659d9eac6d975d14d963254"]),
    (197, AZUKI, "0x", [_APPROVAL, _t(BLEND), _t("0x00000000000111abe46ff893f3b2fdf1f759a8a8"),
                        _TOKEN_1527]),
    (198, BLUR_POOL, "0x" + f"{16_300_000_000_000_000_000:064x}",
     [_TRANSFER, _t(MAINNET_BIDDER), _t(BLEND)]),
    (199, AZUKI, "0x", [_APPROVAL, _t(BLEND), "0x" + "00" * 32, _TOKEN_1527]),
    (200, AZUKI, "0x", [_TRANSFER, _t(BLEND), _t(MAINNET_BIDDER), _TOKEN_1527]),
    (201, EXCHANGE_V1, _ORDERS_MATCHED_DATA, [ORDERS_MATCHED, _t(MAINNET_BIDDER), _t(BLEND)]),
    (202, BLUR_POOL, "0x000000000000000000000000000000000000000000000000cc2a4999ab196c0c",
     [_TRANSFER, _t(BLEND), _t(MAINNET_LENDER)]),
    (203, BLUR_POOL, "0x000000000000000000000000000000000000000000000000160af209e3c493f4",
     [_TRANSFER, _t(BLEND), _t(MAINNET_BORROWER)]),
]  # fmt: skip
MAINNET_LOGS = [
    {
        "address": address,
        "data": data,
        "topics": topics,
        "logIndex": hex(index),
        "transactionHash": MAINNET_TX,
        "transactionIndex": hex(77),
        "blockHash": _BLOCK,
        "blockNumber": hex(17_173_049),
        "removed": False,
    }
    for index, address, data, topics in _RAW
]


def abi_log(
    abi: list[dict],
    name: str,
    values: list[Any],
    *,
    address: str = "0x" + "99" * 20,
    tx: str = "0x" + "01" * 32,
    index: int = 0,
) -> dict[str, Any]:
    """A log of the published event ``name``: indexed values as topics, the rest ABI-encoded."""
    from eth_abi import encode

    event = next(e for e in abi if e["name"] == name)
    topics = [topic0(event)]
    types, data = [], []
    for param, value in zip(event["inputs"], values, strict=True):
        if param["indexed"]:
            topics.append("0x" + encode([abi_type(param)], [value]).hex())
        else:
            types.append(abi_type(param))
            data.append(value)
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + encode(types, data).hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ee" * 32,
        "transactionHash": tx,
        "logIndex": hex(index),
    }
