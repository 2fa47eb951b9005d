// SPDX-License-Identifier: UNLICENSED
// cvmkit's test stand-in for an app's authorization contract (dstack spec
// §3.5, docs/chain.md): its address is the app id; its owner allows compose
// hashes (an upgrade adds one) and devices.
pragma solidity ^0.8.20;

import "DstackKms.sol";

contract DstackApp is IAppAuth {
    address public owner;
    bool public allowAnyDevice;
    bool public requireTcbUpToDate;

    mapping(bytes32 => bool) public allowedComposeHashes;
    mapping(bytes32 => bool) public allowedDeviceIds;

    event ComposeHashAllowed(bytes32 composeHash, bool allowed);
    event DeviceAllowed(bytes32 deviceId, bool allowed);

    modifier onlyOwner() {
        require(msg.sender == owner, "only the owner may change the app policy");
        _;
    }

    constructor(bool anyDevice, bool tcbUpToDate) {
        owner = msg.sender;
        allowAnyDevice = anyDevice;
        requireTcbUpToDate = tcbUpToDate;
    }

    function setComposeHash(bytes32 composeHash, bool allowed) external onlyOwner {
        allowedComposeHashes[composeHash] = allowed;
        emit ComposeHashAllowed(composeHash, allowed);
    }

    function setDevice(bytes32 deviceId, bool allowed) external onlyOwner {
        allowedDeviceIds[deviceId] = allowed;
        emit DeviceAllowed(deviceId, allowed);
    }

    function setAllowAnyDevice(bool allowed) external onlyOwner {
        allowAnyDevice = allowed;
    }

    function setRequireTcbUpToDate(bool required) external onlyOwner {
        requireTcbUpToDate = required;
    }

    function isAppAllowed(AppBootInfo calldata bootInfo) external view override returns (bool isAllowed, string memory reason) {
        if (requireTcbUpToDate && keccak256(bytes(bootInfo.tcbStatus)) != keccak256(bytes("UpToDate"))) {
            return (false, "the app requires an UpToDate TCB");
        }
        if (!allowedComposeHashes[bootInfo.composeHash]) {
            return (false, "the compose hash is not allowed");
        }
        if (!allowAnyDevice && !allowedDeviceIds[bootInfo.deviceId]) {
            return (false, "the device is not allowed");
        }
        return (true, "");
    }
}
