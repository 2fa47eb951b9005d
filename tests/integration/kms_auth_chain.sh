#!/usr/bin/env bash
# KMS authorization (issue 13 point 5, docs/kms-auth.md): lib/kmsauth's
# chain authorizer against anvil and the test contracts of tests/chain/
# (tests/common/chain.sh), through build/tests/kmsauth_decide, with the
# BootInfos of tests/kmsauth/cases.json (the app id being the DstackApp
# contract's address, as on chain):
#  - the allowed app and KMS node are allowed, with the contract's
#    gatewayAppId() as gateway app id (or the configured one instead);
#  - another compose hash, an unregistered app, another OS image, another
#    device, an out-of-date TCB, another aggregated MR are refused with the
#    contract's own reason;
#  - a simulated TEE is refused before the chain is asked, unless the
#    authorizer opts in;
#  - GetMeta's info: the contract's address, the node's origin, chain id 31337;
#  - an address without code and a stopped node are errors, never an allow.
# It fails (never skips) when anvil, solc or node is missing: CI must run it.
set -euo pipefail

BIN="${CVM_BIN:-build/bin}"
D="$BIN/../tests/kmsauth_decide"
HERE="$(cd "$(dirname "$0")" && pwd)"
CASES="$HERE/../kmsauth/cases.json"
# shellcheck source=tests/common/chain.sh
. "$HERE/../common/chain.sh"

[ -x "$D" ] || {
	echo "FAIL: $D is missing (build the tests; set CVM_BIN)" >&2
	exit 1
}
chain_tools_check >&2 || {
	echo "FAIL: the local chain's tools are missing" >&2
	exit 1
}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-kms-auth-chain.XXXXXX")"
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	chain_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

fail=0
bad() {
	echo "FAIL: $*" >&2
	fail=1
}

chain_start "$tmp/chain" || {
	echo "FAIL: anvil did not start" >&2
	exit 1
}
chain_compile "$tmp/out" >/dev/null || {
	echo "FAIL: the contracts do not compile" >&2
	exit 1
}
kms="$(chain_deploy "$tmp/out" DstackKms)"
# DstackApp(allowAnyDevice = false, requireTcbUpToDate = true)
app="$(chain_deploy "$tmp/out" DstackApp false true)"
echo "chain: anvil at $CHAIN_URL, DstackKms at $kms, DstackApp at $app"

# The values of the cases' base BootInfo.
base() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base"][sys.argv[2]])' "$CASES" "$1"; }
OS="$(base osImageHash)"
MR="$(base mrAggregated)"
DEVICE="$(base deviceId)"
COMPOSE="$(base composeHash)"
h() { printf '%064x' "$1"; }

chain_send "$tmp/out" DstackKms "$kms" 'registerApp(address)' "$app"
chain_send "$tmp/out" DstackKms "$kms" 'setOsImageHash(bytes32,bool)' "$OS" true
chain_send "$tmp/out" DstackKms "$kms" 'setKmsAggregatedMr(bytes32,bool)' "$MR" true
chain_send "$tmp/out" DstackKms "$kms" 'setKmsDevice(bytes32,bool)' "$DEVICE" true
chain_send "$tmp/out" DstackApp "$app" 'setComposeHash(bytes32,bool)' "$COMPOSE" true
chain_send "$tmp/out" DstackApp "$app" 'setDevice(bytes32,bool)' "$DEVICE" true

# setGatewayAppId(string) takes a dynamic argument, which chain.mjs does not
# encode: the call data is laid out here (selector, offset 0x20, length, the
# bytes padded to a word) and sent from anvil's first unlocked account.
GATEWAY="gateway-on-chain-01"
data="$(python3 - "$tmp/out/DstackKms.json" "$GATEWAY" <<'EOF'
import json, sys
sel = json.load(open(sys.argv[1]))["methods"]["setGatewayAppId(string)"]
b = sys.argv[2].encode()
print("0x" + sel + "%064x" % 32 + "%064x" % len(b) + b.hex().ljust(64 * ((len(b) + 31) // 32), "0"))
EOF
)"
rpc() { curl -sf --max-time 10 -H 'content-type: application/json' --data "$1" "$CHAIN_URL"; }
from="$(rpc '{"jsonrpc":"2.0","id":1,"method":"eth_accounts","params":[]}' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["result"][0])')"
tx="$(rpc "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"eth_sendTransaction\",\"params\":[{\"from\":\"$from\",\"to\":\"$kms\",\"gas\":\"0x989680\",\"data\":\"$data\"}]}" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["result"])')"
st=""
for _ in $(seq 1 100); do
	st="$(rpc "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"eth_getTransactionReceipt\",\"params\":[\"$tx\"]}" |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; print(r["status"] if r else "")')"
	[ -n "$st" ] && break
	sleep 0.05
done
[ "$st" = "0x1" ] || bad "setGatewayAppId did not succeed (receipt status '$st')"

# bootinfo FILE [KEY VALUE]...: the cases' base BootInfo with the app id set
# to the DstackApp contract and the given fields changed.
bootinfo() {
	python3 - "$CASES" "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["base"]
a = sys.argv[3:]
for k, v in zip(a[::2], a[1::2]):
    d[k] = json.loads(v) if v.startswith("[") else v
json.dump(d, open(sys.argv[2], "w"))
EOF
}
APPID="${app#0x}"
bootinfo "$tmp/good.json" appId "$APPID"
bootinfo "$tmp/adv.json" appId "$APPID" advisoryIds '["INTEL-SA-00837","INTEL-SA-00615"]'
bootinfo "$tmp/noinst.json" appId "$APPID" instanceId ""
bootinfo "$tmp/compose.json" appId "$APPID" composeHash "$(h 0xc1)"
bootinfo "$tmp/unreg.json" appId 1111111111111111111111111111111111111111
bootinfo "$tmp/os.json" appId "$APPID" osImageHash "$(h 0x06)"
bootinfo "$tmp/device.json" appId "$APPID" deviceId "$(h 0xd1)"
bootinfo "$tmp/tcb.json" appId "$APPID" tcbStatus OutOfDate
bootinfo "$tmp/mr.json" appId "$APPID" mrAggregated "$(h 0xa1)"
bootinfo "$tmp/sim.json" appId "$APPID" teeVariant cvmkit-sim-snp

# expect WANT_RC WANT_GLOB WHAT ARGS...
expect() {
	local want_rc="$1" want="$2" what="$3" rc=0 out
	shift 3
	out="$("$D" --chain "$URL" --contract "$kms" --timeout 5000 "$@" 2>&1)" || rc=$?
	# shellcheck disable=SC2053 # $want is a glob pattern
	if [ "$rc" != "$want_rc" ] || [[ "$out" != $want ]]; then
		bad "$what: got rc $rc, '$out'; want rc $want_rc, '$want'"
	else
		echo "ok: $what: $out"
	fi
}
URL="$CHAIN_URL"
expect 0 "allowed: gateway=$GATEWAY" "the allowed app (gateway app id from the contract)" one app "$tmp/good.json"
expect 0 "allowed: gateway=$GATEWAY" "the allowed app with advisory ids" one app "$tmp/adv.json"
expect 0 "allowed: gateway=$GATEWAY" "the allowed app without an instance id" one app "$tmp/noinst.json"
expect 0 "allowed: gateway=configured-gw" "the allowed app (gateway app id configured)" \
	--gateway configured-gw one app "$tmp/good.json"
expect 3 "denied: the compose hash is not allowed" "another compose hash" one app "$tmp/compose.json"
expect 3 "denied: the app is not registered" "an unregistered app" one app "$tmp/unreg.json"
expect 3 "denied: the OS image is not allowed" "another OS image" one app "$tmp/os.json"
expect 3 "denied: the device is not allowed" "another device" one app "$tmp/device.json"
expect 3 "denied: the app requires an UpToDate TCB" "an out-of-date TCB" one app "$tmp/tcb.json"
expect 0 "allowed: gateway=$GATEWAY" "an allowed KMS node" one kms "$tmp/good.json"
expect 3 "denied: the KMS's aggregated MR is not allowed" "a KMS node with another aggregated MR" \
	one kms "$tmp/mr.json"
expect 3 "denied: the KMS's TCB status is not UpToDate" "a KMS node out of date" one kms "$tmp/tcb.json"
expect 3 "denied: the KMS's device is not allowed" "a KMS node on another device" one kms "$tmp/device.json"
expect 3 "denied: the TEE is simulated (cvmkit-sim-snp) and this authorizer does not accept simulated TEEs" \
	"a simulated TEE" one app "$tmp/sim.json"
expect 0 "allowed: gateway=$GATEWAY" "a simulated TEE, the authorizer opting in" --allow-sim one app "$tmp/sim.json"
kms_lc="$(tr 'A-F' 'a-f' <<<"$kms")"
expect 0 "status=ok kmsContractAddr=$kms_lc gatewayAppId=$GATEWAY *ethRpcUrl=$URL chainId=31337" \
	"GetMeta's info" info

# No contract at the address: an error, not an answer.
kms_saved="$kms"
kms="0x1111111111111111111111111111111111111111"
expect 1 "error: no contract answers at 0x1111111111111111111111111111111111111111*" "an address without code" \
	one app "$tmp/good.json"
kms="$kms_saved"

# The node goes down: fail closed, with a clear error.
chain_stop
expect 1 "error: the chain node $URL cannot be reached*" "a chain node that is down" one app "$tmp/good.json"
expect 1 "error: the chain node $URL cannot be reached*" "a chain node that is down (KMS)" one kms "$tmp/good.json"
expect 1 "error: the chain node $URL cannot be reached*" "GetMeta with the node down" info

exit "$fail"
