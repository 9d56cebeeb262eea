// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IERC4906} from "@openzeppelin/contracts/interfaces/IERC4906.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// An ERC-721 collection for tests and the demo. tokenURI is baseURI + decimal id with no
/// extension (BAYC style, `ipfs://<dirCID>/<id>`); changing the base URI announces an EIP-4906
/// BatchMetadataUpdate over every id.
contract DemoNFT is ERC721, IERC4906 {
    address public owner;
    string private _base;

    error NotOwner();

    constructor(string memory name_, string memory symbol_) ERC721(name_, symbol_) {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    function mint(address to, uint256 id) external onlyOwner {
        _mint(to, id);
    }

    function mintBatch(address to, uint256[] calldata ids) external onlyOwner {
        for (uint256 i = 0; i < ids.length; i++) {
            _mint(to, ids[i]);
        }
    }

    /// A paid public mint: the ETH goes to the contract (a primary sale without a market event).
    function mintPaid(uint256 id) external payable {
        require(msg.value > 0, "price");
        _mint(msg.sender, id);
    }

    /// Holders ask a price; anyone pays it straight to the holder here: a sale with no market
    /// event, known only from the transaction's value.
    mapping(uint256 => uint256) public askOf;

    function ask(uint256 id, uint256 price) external {
        require(ownerOf(id) == msg.sender, "not holder");
        askOf[id] = price;
    }

    function buyFrom(address holder, uint256 id) external payable {
        require(askOf[id] > 0 && msg.value == askOf[id], "price");
        delete askOf[id];
        _transfer(holder, msg.sender, id);
        (bool ok,) = payable(holder).call{value: msg.value}("");
        require(ok, "pay");
    }

    /// The same paid in an ERC-20 (WETH on mainnet): the buyer approved this contract first.
    function buyWithToken(address holder, uint256 id, address token) external {
        uint256 price = askOf[id];
        require(price > 0, "price");
        delete askOf[id];
        require(IERC20(token).transferFrom(msg.sender, holder, price), "pay");
        _transfer(holder, msg.sender, id);
    }

    function burn(uint256 id) external {
        _checkAuthorized(_ownerOf(id), msg.sender, id);
        _burn(id);
    }

    function setBaseURI(string calldata base) external onlyOwner {
        _base = base;
        emit BatchMetadataUpdate(0, type(uint256).max);
    }

    /// Announce a metadata change of one token (EIP-4906 MetadataUpdate).
    function refreshMetadata(uint256 id) external onlyOwner {
        emit MetadataUpdate(id);
    }

    function _baseURI() internal view override returns (string memory) {
        return _base;
    }

    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, IERC165)
        returns (bool)
    {
        return interfaceId == bytes4(0x49064906) || super.supportsInterface(interfaceId);
    }
}
