// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// A Sudoswap-like pool of one ERC-721 collection, paid in ETH or one ERC-20, that moves its
/// tokens and payments in the order LSSVM pairs do and emits their swap events: v1's, without
/// arguments, or v2's ERC-721 pair events (the amount and the ids). The caller names the
/// prices (no bonding curve); the protocol fee goes to `feeRecipient`.
contract SudoswapPair is IERC721Receiver {
    event SwapNFTInPair();
    event SwapNFTOutPair();
    event SwapNFTInPair(uint256 amountOut, uint256[] ids);
    event SwapNFTOutPair(uint256 amountIn, uint256[] ids);

    IERC721 public immutable nft;
    address public immutable token; // address(0): an ETH pair
    address public immutable feeRecipient;
    bool public immutable v2;

    constructor(IERC721 nft_, address token_, address feeRecipient_, bool v2_) payable {
        nft = nft_;
        token = token_;
        feeRecipient = feeRecipient_;
        v2 = v2_;
    }

    receive() external payable {}

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return IERC721Receiver.onERC721Received.selector;
    }

    /// The caller buys `ids` from the pool for `inputAmount` (the protocol fee included).
    function swapTokenForSpecificNFTs(uint256[] calldata ids, uint256 inputAmount, uint256 protocolFee)
        external
        payable
    {
        if (token == address(0)) {
            require(msg.value == inputAmount, "value");
            (bool ok,) = feeRecipient.call{value: protocolFee}("");
            require(ok, "fee");
        } else {
            require(IERC20(token).transferFrom(msg.sender, address(this), inputAmount - protocolFee), "pay");
            if (protocolFee > 0) require(IERC20(token).transferFrom(msg.sender, feeRecipient, protocolFee), "fee");
        }
        for (uint256 i = 0; i < ids.length; i++) {
            nft.safeTransferFrom(address(this), msg.sender, ids[i]);
        }
        if (v2) emit SwapNFTOutPair(inputAmount, ids);
        else emit SwapNFTOutPair();
    }

    /// The caller sells `ids` to the pool for `outputAmount`; the pool also pays the fee.
    function swapNFTsForToken(uint256[] calldata ids, uint256 outputAmount, uint256 protocolFee) external {
        if (token == address(0)) {
            (bool ok,) = msg.sender.call{value: outputAmount}("");
            require(ok, "pay");
            (ok,) = feeRecipient.call{value: protocolFee}("");
            require(ok, "fee");
        } else {
            require(IERC20(token).transfer(msg.sender, outputAmount), "pay");
            if (protocolFee > 0) require(IERC20(token).transfer(feeRecipient, protocolFee), "fee");
        }
        for (uint256 i = 0; i < ids.length; i++) {
            nft.safeTransferFrom(msg.sender, address(this), ids[i]);
        }
        if (v2) emit SwapNFTInPair(outputAmount, ids);
        else emit SwapNFTInPair();
    }
}
