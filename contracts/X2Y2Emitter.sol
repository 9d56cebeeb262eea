// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// X2Y2's `EvInventory`, with the published ABI (the exchange's `Market` structs): settles one
/// order item the way the exchange does (the NFTs ABI-encoded in `item.data` for the ERC-721 or
/// ERC-1155 delegate, each fee `price * percentage / 1e6` out of the seller's share).
contract X2Y2Emitter {
    enum Op {
        INVALID,
        COMPLETE_SELL_OFFER,
        COMPLETE_BUY_OFFER,
        CANCEL_OFFER,
        BID,
        COMPLETE_AUCTION,
        REFUND_AUCTION,
        REFUND_AUCTION_STUCK_ITEM
    }

    struct OrderItem {
        uint256 price;
        bytes data;
    }

    struct Fee {
        uint256 percentage;
        address to;
    }

    struct SettleDetail {
        Op op;
        uint256 orderIdx;
        uint256 itemIdx;
        uint256 price;
        bytes32 itemHash;
        address executionDelegate;
        bytes dataReplacement;
        uint256 bidIncentivePct;
        uint256 aucMinIncrementPct;
        uint256 aucIncDurationSecs;
        Fee[] fees;
    }

    struct ERC721Pair {
        address token;
        uint256 tokenId;
    }

    struct ERC1155Pair {
        address token;
        uint256 tokenId;
        uint256 amount;
    }

    event EvInventory(
        bytes32 indexed itemHash,
        address maker,
        address taker,
        uint256 orderSalt,
        uint256 settleSalt,
        uint256 intent,
        uint256 delegateType,
        uint256 deadline,
        address currency,
        bytes dataMask,
        OrderItem item,
        SettleDetail detail
    );

    uint256 public constant RATE_BASE = 1e6;
    uint256 private _salt;

    function _move(uint256 delegateType, bytes memory data, address from, address to) private {
        if (delegateType == 1) {
            ERC721Pair[] memory pairs = abi.decode(data, (ERC721Pair[]));
            for (uint256 i = 0; i < pairs.length; i++) {
                IERC721(pairs[i].token).transferFrom(from, to, pairs[i].tokenId);
            }
        } else {
            ERC1155Pair[] memory pairs = abi.decode(data, (ERC1155Pair[]));
            for (uint256 i = 0; i < pairs.length; i++) {
                IERC1155(pairs[i].token).safeTransferFrom(from, to, pairs[i].tokenId, pairs[i].amount, "");
            }
        }
    }

    function _transfer(address currency, address from, address to, uint256 amount) private {
        if (amount == 0) return;
        if (currency == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            require(ok, "eth");
        } else {
            require(IERC20(currency).transferFrom(from, to, amount), "erc20");
        }
    }

    function _distribute(address currency, address payer, address seller, uint256 price, Fee[] calldata fees) private {
        uint256 rest = price;
        for (uint256 i = 0; i < fees.length; i++) {
            uint256 amount = (price * fees[i].percentage) / RATE_BASE;
            rest -= amount;
            _transfer(currency, payer, fees[i].to, amount);
        }
        _transfer(currency, payer, seller, rest);
    }

    function _detail(Op op, uint256 price, Fee[] calldata fees) private view returns (SettleDetail memory) {
        return SettleDetail(op, 0, 0, price, bytes32(0), address(this), "", 0, 0, 0, fees);
    }

    /// One order item as the maker signed it, and the settlement's replacement of its data.
    struct Order {
        address maker;
        uint256 delegateType;
        address currency;
        bytes data;
        bytes mask;
        bytes replacement;
        uint256 price;
    }

    function _emit(Order calldata o, uint256 intent, bytes memory data, SettleDetail memory detail) private {
        OrderItem memory item = OrderItem(o.price, data);
        detail.itemHash = keccak256(abi.encode(o.maker, _salt, item));
        emit EvInventory(
            detail.itemHash, o.maker, msg.sender, _salt, _salt + 1, intent, o.delegateType,
            block.timestamp + 1 days, o.currency, o.mask, item, detail
        );
        _salt += 2;
    }

    /// The caller buys the maker's listed item (intent sell) in ETH or an ERC-20.
    function buy(Order calldata o, Fee[] calldata fees) external payable {
        if (o.currency == address(0)) require(msg.value == o.price, "value");
        _move(o.delegateType, o.data, o.maker, msg.sender);
        _distribute(o.currency, msg.sender, o.maker, o.price, fees);
        _emit(o, 1, o.data, _detail(Op.COMPLETE_SELL_OFFER, o.price, fees));
    }

    /// The caller sells into the maker's offer (intent buy), paid in an ERC-20 by the maker; the
    /// offer leaves the id to `replacement` where `mask` is set, as collection offers do.
    function sell(Order calldata o, Fee[] calldata fees) external {
        bytes memory filled = o.data;
        for (uint256 i = 0; i < o.mask.length; i++) {
            if (o.mask[i] != 0) filled[i] = o.replacement[i];
        }
        _move(o.delegateType, filled, msg.sender, o.maker);
        _distribute(o.currency, o.maker, msg.sender, o.price, fees);
        SettleDetail memory detail = _detail(Op.COMPLETE_BUY_OFFER, o.price, fees);
        detail.dataReplacement = o.replacement;
        _emit(o, 3, filled, detail);
    }

    /// An order item cancelled: the same event with op CANCEL_OFFER, nothing moves.
    function cancel(Order calldata o, Fee[] calldata fees) external {
        _emit(o, 1, o.data, _detail(Op.CANCEL_OFFER, o.price, fees));
    }
}
