// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// Blur Pool's shape: ETH deposited 1:1 into an ERC-20 balance (a mint from 0x0), moved by
/// `transferFrom` by its holder or an operator the holder allowed (the real pool lets the
/// exchange and Blend move funds; here the holder opts in). Tests place its code at the real
/// pool's address, so the listener reads its transfers as Blur Pool ETH.
contract BlurPoolLike {
    event Transfer(address indexed from, address indexed to, uint256 amount);

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => bool)) public operators;

    function deposit() external payable {
        balanceOf[msg.sender] += msg.value;
        emit Transfer(address(0), msg.sender, msg.value);
    }

    function setOperator(address operator, bool allowed) external {
        operators[msg.sender][operator] = allowed;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        require(msg.sender == from || operators[from][msg.sender], "not allowed");
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        return true;
    }
}

/// BlurExchange's (v1) types and its `OrdersMatched`, with the exact ABI.
abstract contract BlurV1Events {
    enum Side {
        Buy,
        Sell
    }

    struct Fee {
        uint16 rate;
        address payable recipient;
    }

    struct Order {
        address trader;
        Side side;
        address matchingPolicy;
        address collection;
        uint256 tokenId;
        uint256 amount;
        address paymentToken;
        uint256 price;
        uint256 listingTime;
        uint256 expirationTime;
        Fee[] fees;
        uint256 salt;
        bytes extraParams;
    }

    event OrdersMatched(
        address indexed maker,
        address indexed taker,
        Order sell,
        bytes32 sellHash,
        Order buy,
        bytes32 buyHash
    );
}

/// BlurExchangeV2's types and its four execution events, with the exact ABI.
abstract contract BlurV2Events {
    enum AssetType {
        ERC721,
        ERC1155
    }

    enum OrderType {
        ASK,
        BID
    }

    struct Transfer {
        address trader;
        uint256 id;
        uint256 amount;
        address collection;
        AssetType assetType;
    }

    struct FeeRate {
        address recipient;
        uint16 rate;
    }

    struct Fees {
        FeeRate protocolFee;
        FeeRate takerFee;
    }

    event Execution(
        Transfer transfer,
        bytes32 orderHash,
        uint256 listingIndex,
        uint256 price,
        FeeRate makerFee,
        Fees fees,
        OrderType orderType
    );

    event Execution721Packed(
        bytes32 orderHash,
        uint256 tokenIdListingIndexTrader,
        uint256 collectionPriceSide
    );

    event Execution721TakerFeePacked(
        bytes32 orderHash,
        uint256 tokenIdListingIndexTrader,
        uint256 collectionPriceSide,
        uint256 takerFeeRecipientRate
    );

    event Execution721MakerFeePacked(
        bytes32 orderHash,
        uint256 tokenIdListingIndexTrader,
        uint256 collectionPriceSide,
        uint256 makerFeeRecipientRate
    );
}

/// Settles like Blur's exchanges and emits their events: v1 `execute(sell, buy)` (ETH or a
/// pool-like ERC-20, the sell order's fees out of the seller's share) and v2 `takeAsk` (ETH)
/// / `takeBid` (pool), choosing the event form as v2 does. The NFT really moves (the seller
/// approved this contract) and the payments really flow.
contract BlurEmitter is BlurV1Events, BlurV2Events {
    uint256 private constant _BASIS_POINTS = 10_000;
    BlurPoolLike public immutable pool;

    constructor(address pool_) {
        pool = BlurPoolLike(pool_);
    }

    // ---- v1 ----

    function execute(Order calldata sell, Order calldata buy) external payable {
        bool sellIsMaker = sell.listingTime <= buy.listingTime;
        uint256 price = sellIsMaker ? sell.price : buy.price;
        IERC721(sell.collection).transferFrom(sell.trader, buy.trader, sell.tokenId);
        uint256 fees;
        for (uint256 i; i < sell.fees.length; ++i) {
            uint256 fee = (price * sell.fees[i].rate) / _BASIS_POINTS;
            _pay(sell.paymentToken, buy.trader, sell.fees[i].recipient, fee);
            fees += fee;
        }
        _pay(sell.paymentToken, buy.trader, sell.trader, price - fees);
        emit OrdersMatched(
            sellIsMaker ? sell.trader : buy.trader,
            sellIsMaker ? buy.trader : sell.trader,
            sell,
            keccak256(abi.encode(sell)),
            buy,
            keccak256(abi.encode(buy))
        );
    }

    function _pay(address token, address from, address to, uint256 amount) private {
        if (amount == 0) return;
        if (token == address(0)) {
            (bool ok, ) = to.call{value: amount}("");
            require(ok, "eth");
        } else {
            require(BlurPoolLike(token).transferFrom(from, to, amount), "token");
        }
    }

    // ---- v2 ----

    /// The buyer (caller) takes `seller`'s listing, paying ETH: price plus the taker fee.
    function takeAsk(
        address collection,
        uint256 tokenId,
        address seller,
        uint256 price,
        FeeRate calldata makerFee,
        Fees calldata fees,
        bytes32 orderHash,
        uint256 listingIndex
    ) external payable {
        uint256 maker = (price * makerFee.rate) / _BASIS_POINTS;
        uint256 taker = (price * fees.takerFee.rate) / _BASIS_POINTS;
        uint256 protocol = (price * fees.protocolFee.rate) / _BASIS_POINTS;
        require(msg.value == price + taker, "value");
        IERC721(collection).transferFrom(seller, msg.sender, tokenId);
        _pay(address(0), msg.sender, seller, price - maker - protocol);
        _pay(address(0), msg.sender, makerFee.recipient, maker);
        _pay(address(0), msg.sender, fees.protocolFee.recipient, protocol);
        _pay(address(0), msg.sender, fees.takerFee.recipient, taker);
        _emitOptimal(
            Transfer(seller, tokenId, 1, collection, AssetType.ERC721),
            orderHash,
            listingIndex,
            price,
            makerFee,
            fees,
            OrderType.ASK
        );
    }

    /// The seller (caller) takes `bidder`'s bid, paid from the bidder's pool balance: the
    /// bidder pays price plus the maker fee.
    function takeBid(
        address collection,
        uint256 tokenId,
        address bidder,
        uint256 price,
        FeeRate calldata makerFee,
        Fees calldata fees,
        bytes32 orderHash,
        uint256 listingIndex
    ) external {
        uint256 maker = (price * makerFee.rate) / _BASIS_POINTS;
        uint256 taker = (price * fees.takerFee.rate) / _BASIS_POINTS;
        uint256 protocol = (price * fees.protocolFee.rate) / _BASIS_POINTS;
        IERC721(collection).transferFrom(msg.sender, bidder, tokenId);
        address token = address(pool);
        _pay(token, bidder, msg.sender, price - taker - protocol);
        _pay(token, bidder, makerFee.recipient, maker);
        _pay(token, bidder, fees.protocolFee.recipient, protocol);
        _pay(token, bidder, fees.takerFee.recipient, taker);
        _emitOptimal(
            Transfer(bidder, tokenId, 1, collection, AssetType.ERC721),
            orderHash,
            listingIndex,
            price,
            makerFee,
            fees,
            OrderType.BID
        );
    }

    /// The event v2 emits: a packed form when it fits (ERC-721, no protocol fee, small id,
    /// index and price; at most one of the maker and taker fees), else `Execution`.
    function _emitOptimal(
        Transfer memory transfer,
        bytes32 orderHash,
        uint256 listingIndex,
        uint256 price,
        FeeRate calldata makerFee,
        Fees calldata fees,
        OrderType orderType
    ) private {
        if (
            transfer.assetType == AssetType.ERC721 &&
            fees.protocolFee.rate == 0 &&
            transfer.id < 1 << (11 * 8) &&
            listingIndex < 1 << (1 * 8) &&
            price < 1 << (11 * 8)
        ) {
            uint256 ids = (transfer.id << (21 * 8)) |
                (listingIndex << (20 * 8)) |
                uint160(transfer.trader);
            uint256 side = (uint256(orderType) << (31 * 8)) |
                (price << (20 * 8)) |
                uint160(transfer.collection);
            if (makerFee.rate == 0 && fees.takerFee.rate == 0) {
                emit Execution721Packed(orderHash, ids, side);
                return;
            } else if (makerFee.rate == 0) {
                emit Execution721TakerFeePacked(orderHash, ids, side, _packFee(fees.takerFee));
                return;
            } else if (fees.takerFee.rate == 0) {
                emit Execution721MakerFeePacked(orderHash, ids, side, _packFee(makerFee));
                return;
            }
        }
        emit Execution(transfer, orderHash, listingIndex, price, makerFee, fees, orderType);
    }

    function _packFee(FeeRate calldata fee) private pure returns (uint256) {
        return (uint256(fee.rate) << (20 * 8)) | uint160(fee.recipient);
    }

    receive() external payable {}
}

/// Blend's events with their exact ABI, and loans that really lock the NFT here and move pool
/// funds: borrow, repay, auction, refinance, seize, a locked token bought, and a Blur bid taken
/// on the collateral through the exchange (the sale is the exchange's fill, the sale's funds
/// repay the lender, the rest goes to the borrower). Debt is the principal (no interest).
contract BlendEmitter is BlurV1Events {
    event LoanOfferTaken(
        bytes32 offerHash,
        uint256 lienId,
        address collection,
        address lender,
        address borrower,
        uint256 loanAmount,
        uint256 rate,
        uint256 tokenId,
        uint256 auctionDuration
    );
    event Repay(uint256 lienId, address collection);
    event StartAuction(uint256 lienId, address collection);
    event Refinance(
        uint256 lienId,
        address collection,
        address newLender,
        uint256 newAmount,
        uint256 newRate,
        uint256 newAuctionDuration
    );
    event Seize(uint256 lienId, address collection);
    event BuyLocked(
        uint256 lienId,
        address collection,
        address buyer,
        address seller,
        uint256 tokenId
    );

    struct Lien {
        address lender;
        address borrower;
        address collection;
        uint256 tokenId;
        uint256 amount;
        uint256 rate;
        uint256 auctionDuration;
    }

    BlurPoolLike public immutable pool;
    mapping(uint256 => Lien) public liens;
    uint256 public nextLienId;

    constructor(address pool_) {
        pool = BlurPoolLike(pool_);
    }

    function borrow(
        address collection,
        uint256 tokenId,
        address lender,
        uint256 amount,
        uint256 rate,
        uint256 auctionDuration
    ) external returns (uint256 lienId) {
        lienId = nextLienId++;
        liens[lienId] = Lien(lender, msg.sender, collection, tokenId, amount, rate, auctionDuration);
        emit LoanOfferTaken(
            keccak256(abi.encode(lienId, lender)),
            lienId,
            collection,
            lender,
            msg.sender,
            amount,
            rate,
            tokenId,
            auctionDuration
        );
        IERC721(collection).transferFrom(msg.sender, address(this), tokenId);
        require(pool.transferFrom(lender, msg.sender, amount), "loan");
    }

    function repay(uint256 lienId) external {
        Lien memory lien = _end(lienId);
        IERC721(lien.collection).transferFrom(address(this), lien.borrower, lien.tokenId);
        require(pool.transferFrom(msg.sender, lien.lender, lien.amount), "repay");
    }

    function startAuction(uint256 lienId) external {
        Lien storage lien = liens[lienId];
        require(msg.sender == lien.lender, "lender only");
        emit StartAuction(lienId, lien.collection);
    }

    function refinance(uint256 lienId, address newLender, uint256 newRate) external {
        Lien storage lien = liens[lienId];
        require(pool.transferFrom(newLender, lien.lender, lien.amount), "refinance");
        lien.lender = newLender;
        lien.rate = newRate;
        emit Refinance(lienId, lien.collection, newLender, lien.amount, newRate, lien.auctionDuration);
    }

    function seize(uint256 lienId) external {
        Lien memory lien = liens[lienId];
        require(msg.sender == lien.lender, "lender only");
        delete liens[lienId];
        IERC721(lien.collection).transferFrom(address(this), lien.lender, lien.tokenId);
        emit Seize(lienId, lien.collection);
    }

    /// The caller buys the locked token at `price` (pool funds): the fee first, then the debt to
    /// the lender and the surplus to the borrower, as Blend pays them.
    function buyLocked(uint256 lienId, uint256 price, address feeRecipient, uint16 feeRate) external {
        uint256 fee = (price * feeRate) / 10_000;
        if (fee > 0) require(pool.transferFrom(msg.sender, feeRecipient, fee), "fee");
        Lien memory lien = _end(lienId);
        emit BuyLocked(lienId, lien.collection, msg.sender, lien.borrower, lien.tokenId);
        IERC721(lien.collection).transferFrom(address(this), msg.sender, lien.tokenId);
        require(pool.transferFrom(msg.sender, lien.lender, lien.amount), "debt");
        require(pool.transferFrom(msg.sender, lien.borrower, price - fee - lien.amount), "rest");
    }

    /// The borrower sells the collateral into a Blur bid: this contract is the sell order's
    /// trader, the exchange moves the token and the bidder's pool funds here, which repay the
    /// lender; the rest goes to the borrower.
    function takeBid(
        uint256 lienId,
        BlurEmitter exchange,
        Order calldata sell,
        Order calldata buy
    ) external {
        Lien memory lien = liens[lienId];
        require(msg.sender == lien.borrower, "borrower only");
        _end(lienId);
        IERC721(lien.collection).setApprovalForAll(address(exchange), true);
        pool.setOperator(address(exchange), true);
        uint256 before = pool.balanceOf(address(this));
        exchange.execute(sell, buy);
        uint256 received = pool.balanceOf(address(this)) - before;
        require(pool.transferFrom(address(this), lien.lender, lien.amount), "debt");
        require(pool.transferFrom(address(this), lien.borrower, received - lien.amount), "rest");
    }

    function _end(uint256 lienId) private returns (Lien memory lien) {
        lien = liens[lienId];
        delete liens[lienId];
        emit Repay(lienId, lien.collection);
    }
}
