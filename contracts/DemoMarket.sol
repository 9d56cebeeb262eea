// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// Seaport 1.x's event types, with the exact ABI of `OrderFulfilled`.
abstract contract SeaportEvents {
    enum ItemType {
        NATIVE,
        ERC20,
        ERC721,
        ERC1155,
        ERC721_WITH_CRITERIA,
        ERC1155_WITH_CRITERIA
    }

    struct SpentItem {
        ItemType itemType;
        address token;
        uint256 identifier;
        uint256 amount;
    }

    struct ReceivedItem {
        ItemType itemType;
        address token;
        uint256 identifier;
        uint256 amount;
        address payable recipient;
    }

    event OrderFulfilled(
        bytes32 orderHash,
        address indexed offerer,
        address indexed zone,
        address recipient,
        SpentItem[] offer,
        ReceivedItem[] consideration
    );
}

/// A minimal fixed-price market that settles like a Seaport listing and emits a real-shaped
/// `OrderFulfilled`: offer = the ERC-721, consideration = the payment to the seller plus an
/// optional fee. Sellers list (after approving this market); buyers pay in ETH or an ERC-20.
contract DemoMarket is SeaportEvents {
    struct Listing {
        address seller;
        address currency; // address(0) = ETH
        uint256 price;
        uint256 fee; // part of price paid to feeRecipient
    }

    address public immutable feeRecipient;
    mapping(address => mapping(uint256 => Listing)) public listings;
    uint256 private _nonce;

    constructor(address feeRecipient_) {
        feeRecipient = feeRecipient_;
    }

    function list(address nft, uint256 id, address currency, uint256 price, uint256 fee) external {
        require(IERC721(nft).ownerOf(id) == msg.sender, "not owner");
        require(fee <= price, "fee");
        listings[nft][id] = Listing(msg.sender, currency, price, fee);
    }

    function buy(address nft, uint256 id) external payable {
        Listing memory l = listings[nft][id];
        require(l.seller != address(0), "not listed");
        delete listings[nft][id];

        IERC721(nft).transferFrom(l.seller, msg.sender, id);

        ItemType payType = l.currency == address(0) ? ItemType.NATIVE : ItemType.ERC20;
        uint256 n = l.fee > 0 ? 2 : 1;
        ReceivedItem[] memory consideration = new ReceivedItem[](n);
        consideration[0] = ReceivedItem(payType, l.currency, 0, l.price - l.fee, payable(l.seller));
        if (n == 2) {
            consideration[1] = ReceivedItem(payType, l.currency, 0, l.fee, payable(feeRecipient));
        }
        if (payType == ItemType.NATIVE) {
            require(msg.value == l.price, "price");
            for (uint256 i = 0; i < n; i++) {
                (bool ok,) = consideration[i].recipient.call{value: consideration[i].amount}("");
                require(ok, "pay");
            }
        } else {
            for (uint256 i = 0; i < n; i++) {
                require(
                    IERC20(l.currency).transferFrom(
                        msg.sender, consideration[i].recipient, consideration[i].amount
                    ),
                    "pay"
                );
            }
        }

        SpentItem[] memory offer = new SpentItem[](1);
        offer[0] = SpentItem(ItemType.ERC721, nft, id, 1);
        bytes32 orderHash = keccak256(abi.encode(nft, id, l.seller, msg.sender, _nonce++));
        emit OrderFulfilled(orderHash, l.seller, address(0), msg.sender, offer, consideration);
    }
}
