// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/// An ERC-1155 collection for tests: TransferSingle, TransferBatch and URI events.
contract DemoMulti is ERC1155 {
    address public owner;

    constructor(string memory uri_) ERC1155(uri_) {
        owner = msg.sender;
    }

    function mint(address to, uint256 id, uint256 amount) external {
        require(msg.sender == owner, "not owner");
        _mint(to, id, amount, "");
    }

    function mintBatch(address to, uint256[] calldata ids, uint256[] calldata amounts) external {
        require(msg.sender == owner, "not owner");
        _mintBatch(to, ids, amounts, "");
    }

    function announceURI(string calldata value, uint256 id) external {
        require(msg.sender == owner, "not owner");
        emit URI(value, id);
    }
}
