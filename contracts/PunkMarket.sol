// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// A port of the original CryptoPunksMarket (0xb47e3cd837dDF8e4c57F05d70Ab865de6e193BBB) to
/// Solidity 0.8 for tests and the demo. The events keep their exact signatures, and the behaviour
/// follows the original, including its bug: `acceptBidForPunk` clears the bid before emitting
/// `PunkBought`, so that event carries a zero value and a zero buyer.
///
/// Demo convenience ONLY: `tokenURI` / `setBaseURI` give punks metadata for the demo. The real
/// contract has no token URI at all (the images live in a hash-committed file).
contract PunkMarket {
    string public name = "CRYPTOPUNKS";
    string public symbol = "\u03FE";
    uint8 public decimals = 0;
    uint256 public totalSupply;

    address public owner;
    bool public allPunksAssigned;
    uint256 public punksRemainingToAssign;
    string private _base;

    mapping(uint256 => address) public punkIndexToAddress;
    mapping(address => uint256) public balanceOf;

    struct Offer {
        bool isForSale;
        uint256 punkIndex;
        address seller;
        uint256 minValue;
        address onlySellTo;
    }

    struct Bid {
        bool hasBid;
        uint256 punkIndex;
        address bidder;
        uint256 value;
    }

    mapping(uint256 => Offer) public punksOfferedForSale;
    mapping(uint256 => Bid) public punkBids;
    mapping(address => uint256) public pendingWithdrawals;

    event Assign(address indexed to, uint256 punkIndex);
    event Transfer(address indexed from, address indexed to, uint256 value);
    event PunkTransfer(address indexed from, address indexed to, uint256 punkIndex);
    event PunkOffered(uint256 indexed punkIndex, uint256 minValue, address indexed toAddress);
    event PunkBidEntered(uint256 indexed punkIndex, uint256 value, address indexed fromAddress);
    event PunkBidWithdrawn(uint256 indexed punkIndex, uint256 value, address indexed fromAddress);
    event PunkBought(
        uint256 indexed punkIndex, uint256 value, address indexed fromAddress, address indexed toAddress
    );
    event PunkNoLongerForSale(uint256 indexed punkIndex);

    constructor(uint256 supply) {
        owner = msg.sender;
        totalSupply = supply;
        punksRemainingToAssign = supply;
    }

    function setInitialOwner(address to, uint256 punkIndex) public {
        require(msg.sender == owner && !allPunksAssigned && punkIndex < totalSupply);
        if (punkIndexToAddress[punkIndex] != to) {
            if (punkIndexToAddress[punkIndex] != address(0)) {
                balanceOf[punkIndexToAddress[punkIndex]]--;
            } else {
                punksRemainingToAssign--;
            }
            punkIndexToAddress[punkIndex] = to;
            balanceOf[to]++;
            emit Assign(to, punkIndex);
        }
    }

    function setInitialOwners(address[] calldata addresses, uint256[] calldata indices) external {
        require(msg.sender == owner);
        for (uint256 i = 0; i < addresses.length; i++) {
            setInitialOwner(addresses[i], indices[i]);
        }
    }

    function allInitialOwnersAssigned() external {
        require(msg.sender == owner);
        allPunksAssigned = true;
    }

    function getPunk(uint256 punkIndex) external {
        require(allPunksAssigned && punksRemainingToAssign > 0);
        require(punkIndexToAddress[punkIndex] == address(0) && punkIndex < totalSupply);
        punkIndexToAddress[punkIndex] = msg.sender;
        balanceOf[msg.sender]++;
        punksRemainingToAssign--;
        emit Assign(msg.sender, punkIndex);
    }

    function transferPunk(address to, uint256 punkIndex) external {
        require(allPunksAssigned && punkIndexToAddress[punkIndex] == msg.sender);
        require(punkIndex < totalSupply);
        if (punksOfferedForSale[punkIndex].isForSale) {
            punkNoLongerForSale(punkIndex);
        }
        punkIndexToAddress[punkIndex] = to;
        balanceOf[msg.sender]--;
        balanceOf[to]++;
        emit Transfer(msg.sender, to, 1);
        emit PunkTransfer(msg.sender, to, punkIndex);
        // A bid from the receiver is refunded: it now owns the punk.
        Bid storage bid = punkBids[punkIndex];
        if (bid.bidder == to) {
            pendingWithdrawals[to] += bid.value;
            punkBids[punkIndex] = Bid(false, punkIndex, address(0), 0);
        }
    }

    function punkNoLongerForSale(uint256 punkIndex) public {
        require(allPunksAssigned && punkIndexToAddress[punkIndex] == msg.sender);
        punksOfferedForSale[punkIndex] = Offer(false, punkIndex, msg.sender, 0, address(0));
        emit PunkNoLongerForSale(punkIndex);
    }

    function offerPunkForSale(uint256 punkIndex, uint256 minSalePriceInWei) external {
        require(allPunksAssigned && punkIndexToAddress[punkIndex] == msg.sender);
        punksOfferedForSale[punkIndex] =
            Offer(true, punkIndex, msg.sender, minSalePriceInWei, address(0));
        emit PunkOffered(punkIndex, minSalePriceInWei, address(0));
    }

    function offerPunkForSaleToAddress(uint256 punkIndex, uint256 minSalePriceInWei, address toAddress)
        external
    {
        require(allPunksAssigned && punkIndexToAddress[punkIndex] == msg.sender);
        punksOfferedForSale[punkIndex] =
            Offer(true, punkIndex, msg.sender, minSalePriceInWei, toAddress);
        emit PunkOffered(punkIndex, minSalePriceInWei, toAddress);
    }

    function buyPunk(uint256 punkIndex) external payable {
        require(allPunksAssigned);
        Offer memory offer = punksOfferedForSale[punkIndex];
        require(offer.isForSale);
        require(offer.onlySellTo == address(0) || offer.onlySellTo == msg.sender);
        require(msg.value >= offer.minValue);
        require(offer.seller == punkIndexToAddress[punkIndex]);

        address seller = offer.seller;
        punkIndexToAddress[punkIndex] = msg.sender;
        balanceOf[seller]--;
        balanceOf[msg.sender]++;
        emit Transfer(seller, msg.sender, 1);

        punksOfferedForSale[punkIndex] = Offer(false, punkIndex, msg.sender, 0, address(0));
        emit PunkNoLongerForSale(punkIndex);
        pendingWithdrawals[seller] += msg.value;
        emit PunkBought(punkIndex, msg.value, seller, msg.sender);

        Bid storage bid = punkBids[punkIndex];
        if (bid.bidder == msg.sender) {
            pendingWithdrawals[msg.sender] += bid.value;
            punkBids[punkIndex] = Bid(false, punkIndex, address(0), 0);
        }
    }

    function withdraw() external {
        require(allPunksAssigned);
        uint256 amount = pendingWithdrawals[msg.sender];
        pendingWithdrawals[msg.sender] = 0;
        payable(msg.sender).transfer(amount);
    }

    function enterBidForPunk(uint256 punkIndex) external payable {
        require(punkIndex < totalSupply && allPunksAssigned);
        require(punkIndexToAddress[punkIndex] != address(0));
        require(punkIndexToAddress[punkIndex] != msg.sender);
        require(msg.value > 0);
        Bid memory existing = punkBids[punkIndex];
        require(msg.value > existing.value);
        if (existing.value > 0) {
            pendingWithdrawals[existing.bidder] += existing.value;
        }
        punkBids[punkIndex] = Bid(true, punkIndex, msg.sender, msg.value);
        emit PunkBidEntered(punkIndex, msg.value, msg.sender);
    }

    function acceptBidForPunk(uint256 punkIndex, uint256 minPrice) external {
        require(punkIndex < totalSupply && allPunksAssigned);
        require(punkIndexToAddress[punkIndex] == msg.sender);
        address seller = msg.sender;
        Bid storage bid = punkBids[punkIndex];
        require(bid.value > 0 && bid.value >= minPrice);

        punkIndexToAddress[punkIndex] = bid.bidder;
        balanceOf[seller]--;
        balanceOf[bid.bidder]++;
        emit Transfer(seller, bid.bidder, 1);

        punksOfferedForSale[punkIndex] = Offer(false, punkIndex, bid.bidder, 0, address(0));
        uint256 amount = bid.value;
        punkBids[punkIndex] = Bid(false, punkIndex, address(0), 0);
        pendingWithdrawals[seller] += amount;
        // The original's bug, kept on purpose: `bid` points at the cleared storage slot, so the
        // event says value 0 and buyer 0x0.
        emit PunkBought(punkIndex, bid.value, seller, bid.bidder);
    }

    function withdrawBidForPunk(uint256 punkIndex) external {
        require(punkIndex < totalSupply && allPunksAssigned);
        require(punkIndexToAddress[punkIndex] != address(0));
        require(punkIndexToAddress[punkIndex] != msg.sender);
        Bid memory bid = punkBids[punkIndex];
        require(bid.bidder == msg.sender);
        emit PunkBidWithdrawn(punkIndex, bid.value, msg.sender);
        punkBids[punkIndex] = Bid(false, punkIndex, address(0), 0);
        payable(msg.sender).transfer(bid.value);
    }

    // ---- demo convenience, not in the original contract ----

    function setBaseURI(string calldata base) external {
        require(msg.sender == owner);
        _base = base;
    }

    function tokenURI(uint256 punkIndex) external view returns (string memory) {
        require(punkIndex < totalSupply);
        return string.concat(_base, _toString(punkIndex));
    }

    function _toString(uint256 value) private pure returns (string memory) {
        if (value == 0) return "0";
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) digits++;
        bytes memory buffer = new bytes(digits);
        while (value != 0) {
            digits--;
            buffer[digits] = bytes1(uint8(48 + (value % 10)));
            value /= 10;
        }
        return string(buffer);
    }
}
