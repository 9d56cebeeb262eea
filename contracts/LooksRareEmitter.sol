// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// LooksRare v1's exchange events, with the published ABI: a listing bought (`TakerBid`) or a
/// bid accepted (`TakerAsk`) of one ERC-721, paid in an ERC-20 from the buyer: the protocol
/// fee, then the royalty (`RoyaltyPayment`), then the rest to the seller, as the exchange does.
contract LooksRareV1Emitter {
    event RoyaltyPayment(
        address indexed collection,
        uint256 indexed tokenId,
        address indexed royaltyRecipient,
        address currency,
        uint256 amount
    );
    event TakerAsk(
        bytes32 orderHash,
        uint256 orderNonce,
        address indexed taker,
        address indexed maker,
        address indexed strategy,
        address currency,
        address collection,
        uint256 tokenId,
        uint256 amount,
        uint256 price
    );
    event TakerBid(
        bytes32 orderHash,
        uint256 orderNonce,
        address indexed taker,
        address indexed maker,
        address indexed strategy,
        address currency,
        address collection,
        uint256 tokenId,
        uint256 amount,
        uint256 price
    );

    struct Fill {
        address collection;
        uint256 tokenId;
        address currency;
        uint256 price;
        address protocolRecipient;
        uint256 protocolFee;
        address royaltyRecipient;
        uint256 royalty;
    }

    address public constant STRATEGY = address(0x56244Bb70CbD3EA9Dc8007399F61dFC065190031);
    uint256 private _nonce;

    function _settle(Fill calldata f, address buyer, address seller) private {
        IERC20 token = IERC20(f.currency);
        require(token.transferFrom(buyer, f.protocolRecipient, f.protocolFee), "fee");
        if (f.royalty > 0) {
            require(token.transferFrom(buyer, f.royaltyRecipient, f.royalty), "royalty");
            emit RoyaltyPayment(f.collection, f.tokenId, f.royaltyRecipient, f.currency, f.royalty);
        }
        require(token.transferFrom(buyer, seller, f.price - f.protocolFee - f.royalty), "pay");
        IERC721(f.collection).transferFrom(seller, buyer, f.tokenId);
    }

    /// The caller buys `maker`'s listed token.
    function takerBid(Fill calldata f, address maker) external {
        _settle(f, msg.sender, maker);
        bytes32 h = keccak256(abi.encode(f.collection, f.tokenId, maker, _nonce));
        emit TakerBid(h, _nonce++, msg.sender, maker, STRATEGY, f.currency, f.collection, f.tokenId, 1, f.price);
    }

    /// The caller sells its token to `maker`'s bid.
    function takerAsk(Fill calldata f, address maker) external {
        _settle(f, maker, msg.sender);
        bytes32 h = keccak256(abi.encode(f.collection, f.tokenId, maker, _nonce));
        emit TakerAsk(h, _nonce++, msg.sender, maker, STRATEGY, f.currency, f.collection, f.tokenId, 1, f.price);
    }
}

/// LooksRare v2's protocol events, with the published ABI (`ILooksRareProtocol`): a taker bid
/// paid in ETH, or a taker ask paid in an ERC-20 by the maker, of ERC-721 or ERC-1155 items;
/// `feeAmounts` = (the seller's proceeds, the creator fee, the protocol fee).
contract LooksRareV2Emitter {
    struct NonceInvalidationParameters {
        bytes32 orderHash;
        uint256 orderNonce;
        bool isNonceInvalidated;
    }

    event TakerAsk(
        NonceInvalidationParameters nonceInvalidationParameters,
        address askUser,
        address bidUser,
        uint256 strategyId,
        address currency,
        address collection,
        uint256[] itemIds,
        uint256[] amounts,
        address[2] feeRecipients,
        uint256[3] feeAmounts
    );
    event TakerBid(
        NonceInvalidationParameters nonceInvalidationParameters,
        address bidUser,
        address bidRecipient,
        uint256 strategyId,
        address currency,
        address collection,
        uint256[] itemIds,
        uint256[] amounts,
        address[2] feeRecipients,
        uint256[3] feeAmounts
    );

    struct Items {
        address collection;
        bool erc1155;
        uint256[] itemIds;
        uint256[] amounts;
    }

    address public immutable protocolFeeRecipient;
    uint256 private _nonce;

    constructor(address protocolFeeRecipient_) {
        protocolFeeRecipient = protocolFeeRecipient_;
    }

    function _move(Items calldata it, address from, address to) private {
        for (uint256 i = 0; i < it.itemIds.length; i++) {
            if (it.erc1155) {
                IERC1155(it.collection).safeTransferFrom(from, to, it.itemIds[i], it.amounts[i], "");
            } else {
                IERC721(it.collection).transferFrom(from, to, it.itemIds[i]);
            }
        }
    }

    function _pay(address currency, address from, address to, uint256 amount) private {
        if (amount == 0) return;
        if (currency == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            require(ok, "eth");
        } else {
            require(IERC20(currency).transferFrom(from, to, amount), "erc20");
        }
    }

    function _nonceParams(address maker) private returns (NonceInvalidationParameters memory) {
        bytes32 h = keccak256(abi.encode(maker, _nonce));
        return NonceInvalidationParameters(h, _nonce++, true);
    }

    /// Who takes part: the seller, the buyer (bid user), the NFTs' recipient and the creator.
    struct Parties {
        address seller;
        address buyer;
        address recipient;
        address creator;
    }

    /// The buyer (the caller) buys the seller's items for ETH, for the recipient.
    function executeTakerBid(Items calldata it, Parties calldata p, uint256[3] calldata fees) external payable {
        require(msg.sender == p.buyer && msg.value == fees[0] + fees[1] + fees[2], "value");
        _pay(address(0), p.buyer, p.seller, fees[0]);
        _pay(address(0), p.buyer, p.creator, fees[1]);
        _pay(address(0), p.buyer, protocolFeeRecipient, fees[2]);
        _move(it, p.seller, p.recipient);
        emit TakerBid(
            _nonceParams(p.seller), p.buyer, p.recipient, 0, address(0), it.collection, it.itemIds, it.amounts,
            [p.seller, p.creator], fees
        );
    }

    /// The seller (the caller) sells its items to the buyer's bid, paid in `currency` (an ERC-20).
    function executeTakerAsk(Items calldata it, Parties calldata p, address currency, uint256[3] calldata fees)
        external
    {
        require(msg.sender == p.seller, "seller");
        _pay(currency, p.buyer, p.seller, fees[0]);
        _pay(currency, p.buyer, p.creator, fees[1]);
        _pay(currency, p.buyer, protocolFeeRecipient, fees[2]);
        _move(it, p.seller, p.buyer);
        emit TakerAsk(
            _nonceParams(p.buyer), p.seller, p.buyer, 1, currency, it.collection, it.itemIds, it.amounts,
            [p.seller, p.creator], fees
        );
    }
}
