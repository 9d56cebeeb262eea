// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721Consecutive} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721Consecutive.sol";

/// Mints `batchSize` tokens to `to` in its constructor with one EIP-2309 ConsecutiveTransfer.
contract DemoConsecutive is ERC721Consecutive {
    constructor(address to, uint96 batchSize) ERC721("Consecutive", "CNS") {
        _mintConsecutive(to, batchSize);
    }

    function _maxBatchSize() internal pure override returns (uint96) {
        return 50000;
    }
}
