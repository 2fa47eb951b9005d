// SPDX-License-Identifier: UNLICENSED
// cvmkit's test stand-in for dstack's KMS authorization contract, written to
// the interface of the dstack spec §3.5 (docs/chain.md): a KMS asks
// isAppAllowed / isKmsAllowed with an AppBootInfo through eth_call and
// releases keys only on (true, ""). The owner keeps the allow lists.
pragma solidity ^0.8.20;

struct AppBootInfo {
    address appId;
    bytes32 composeHash;
    address instanceId;
    bytes32 deviceId;
    bytes32 mrAggregated;
    bytes32 mrSystem;
    bytes32 osImageHash;
    string tcbStatus;
    string[] advisoryIds;
}

// IAppAuth is what an app's own contract (DstackApp) answers.
interface IAppAuth {
    function isAppAllowed(AppBootInfo calldata bootInfo) external view returns (bool isAllowed, string memory reason);
}

contract DstackKms {
    address public owner;
    string public gatewayAppId;

    mapping(address => bool) public registeredApps;
    mapping(bytes32 => bool) public allowedOsImages;
    mapping(bytes32 => bool) public kmsAllowedAggregatedMrs;
    mapping(bytes32 => bool) public kmsAllowedDeviceIds;

    event AppRegistered(address appId);
    event AppDeregistered(address appId);
    event OsImageHashAllowed(bytes32 osImageHash, bool allowed);
    event KmsAggregatedMrAllowed(bytes32 mrAggregated, bool allowed);
    event KmsDeviceAllowed(bytes32 deviceId, bool allowed);

    modifier onlyOwner() {
        require(msg.sender == owner, "only the owner may change the KMS policy");
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), "the new owner is the zero address");
        owner = newOwner;
    }

    function setGatewayAppId(string calldata appId) external onlyOwner {
        gatewayAppId = appId;
    }

    function registerApp(address appId) external onlyOwner {
        registeredApps[appId] = true;
        emit AppRegistered(appId);
    }

    function deregisterApp(address appId) external onlyOwner {
        registeredApps[appId] = false;
        emit AppDeregistered(appId);
    }

    function setOsImageHash(bytes32 osImageHash, bool allowed) external onlyOwner {
        allowedOsImages[osImageHash] = allowed;
        emit OsImageHashAllowed(osImageHash, allowed);
    }

    function setKmsAggregatedMr(bytes32 mrAggregated, bool allowed) external onlyOwner {
        kmsAllowedAggregatedMrs[mrAggregated] = allowed;
        emit KmsAggregatedMrAllowed(mrAggregated, allowed);
    }

    function setKmsDevice(bytes32 deviceId, bool allowed) external onlyOwner {
        kmsAllowedDeviceIds[deviceId] = allowed;
        emit KmsDeviceAllowed(deviceId, allowed);
    }

    // isKmsAllowed: may a KMS node with these measurements join (onboarding)?
    function isKmsAllowed(AppBootInfo calldata bootInfo) external view returns (bool isAllowed, string memory reason) {
        if (keccak256(bytes(bootInfo.tcbStatus)) != keccak256(bytes("UpToDate"))) {
            return (false, "the KMS's TCB status is not UpToDate");
        }
        if (!allowedOsImages[bootInfo.osImageHash]) {
            return (false, "the OS image is not allowed");
        }
        if (!kmsAllowedAggregatedMrs[bootInfo.mrAggregated]) {
            return (false, "the KMS's aggregated MR is not allowed");
        }
        if (!kmsAllowedDeviceIds[bootInfo.deviceId]) {
            return (false, "the KMS's device is not allowed");
        }
        return (true, "");
    }

    // isAppAllowed: may this app instance get its keys? The app's own
    // contract (its address is the app id) has the last word.
    function isAppAllowed(AppBootInfo calldata bootInfo) external view returns (bool isAllowed, string memory reason) {
        if (!registeredApps[bootInfo.appId]) {
            return (false, "the app is not registered");
        }
        if (!allowedOsImages[bootInfo.osImageHash]) {
            return (false, "the OS image is not allowed");
        }
        if (bootInfo.appId.code.length == 0) {
            return (false, "the app id is not a contract");
        }
        return IAppAuth(bootInfo.appId).isAppAllowed(bootInfo);
    }
}
