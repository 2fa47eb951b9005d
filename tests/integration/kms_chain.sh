#!/usr/bin/env bash
# On-chain authorization (issue 13 point 5, docs/chain.md) against a local
# chain: anvil (npm, scripts/setup.sh) on a loopback port, the test contracts
# of tests/chain/ compiled with npm's solc and deployed here, then lib/chain
# through build/tests/chain_query:
#  - our selectors equal the ones solc lists for isAppAllowed/isKmsAllowed;
#  - an app whose DstackApp contract allows its compose hash, on an allowed
#    OS image, is allowed (so the contract decoded our AppBootInfo);
#  - another compose hash, an unregistered app, a disallowed OS image and a
#    forbidden device are refused with the contract's own reason; a compose
#    hash the owner removes again is refused afterwards;
#  - advisory ids travel in the string[] and a KMS node is allowed or
#    refused by isKmsAllowed (TCB status, aggregated MR);
#  - an address without code and a node that is down (anvil stopped) give
#    a clear error and no "allowed" (fail closed).
# It fails (never skips) when anvil, solc or node is missing: CI must run it.
set -euo pipefail

BIN="${CVM_BIN:-build/bin}"
Q="$BIN/../tests/chain_query"
# shellcheck source=tests/common/chain.sh
. "$(dirname "$0")/../common/chain.sh"

[ -x "$Q" ] || {
	echo "FAIL: $Q is missing (build the tests; set CVM_BIN)" >&2
	exit 1
}
chain_tools_check >&2 || {
	echo "FAIL: the local chain's tools are missing" >&2
	exit 1
}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-kms-chain.XXXXXX")"
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

t0=$(date +%s%N)
chain_start "$tmp/chain" || {
	echo "FAIL: anvil did not start" >&2
	exit 1
}
echo "chain: anvil up at $CHAIN_URL in $((($(date +%s%N) - t0) / 1000000)) ms"
chain_compile "$tmp/out" || {
	echo "FAIL: the contracts do not compile" >&2
	exit 1
}

# Our selectors against solc's.
for f in isAppAllowed isKmsAllowed; do
	sig="$f((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))"
	want="$(node -e 'const m=require(process.argv[1]).methods; console.log(m[process.argv[2]]||"")' \
		"$tmp/out/DstackKms.json" "$sig")"
	got="$("$Q" selector "$sig")"
	if [ -z "$want" ] || [ "$got" != "$want" ]; then
		bad "selector of $f: ours $got, solc's $want"
	fi
done

kms="$(chain_deploy "$tmp/out" DstackKms)"
# DstackApp(allowAnyDevice = false, requireTcbUpToDate = true)
app="$(chain_deploy "$tmp/out" DstackApp false true)"
echo "chain: DstackKms at $kms, DstackApp at $app"

h() { printf '%064x' "$1"; }
COMPOSE="$(h 0xc0)"
OTHER_COMPOSE="$(h 0xc1)"
OS="$(h 0x05)"
OTHER_OS="$(h 0x06)"
DEVICE="$(h 0xd0)"
OTHER_DEVICE="$(h 0xd1)"
MR="$(h 0xa0)"
OTHER_MR="$(h 0xa1)"
SYS="$(h 0x5e)"
INSTANCE="00000000000000000000000000000000000000ee"
UNREGISTERED="1111111111111111111111111111111111111111"

chain_send "$tmp/out" DstackKms "$kms" 'registerApp(address)' "$app"
chain_send "$tmp/out" DstackKms "$kms" 'setOsImageHash(bytes32,bool)' "$OS" true
chain_send "$tmp/out" DstackKms "$kms" 'setKmsAggregatedMr(bytes32,bool)' "$MR" true
chain_send "$tmp/out" DstackKms "$kms" 'setKmsDevice(bytes32,bool)' "$DEVICE" true
chain_send "$tmp/out" DstackApp "$app" 'setComposeHash(bytes32,bool)' "$COMPOSE" true
chain_send "$tmp/out" DstackApp "$app" 'setDevice(bytes32,bool)' "$DEVICE" true

# expect WANT_RC WANT_LINE what app|kms APP COMPOSE DEVICE MR OS TCB [ADV...]
expect() {
	local want_rc="$1" want="$2" what="$3" kind="$4" a="$5" c="$6" d="$7" m="$8" o="$9" t="${10}" rc=0 out
	shift 10
	out="$("$Q" "$kind" "$URL" "$kms" "$a" "$c" "$INSTANCE" "$d" "$m" "$SYS" "$o" "$t" "$@" 2>&1)" || rc=$?
	# shellcheck disable=SC2053 # $want is a glob pattern
	if [ "$rc" != "$want_rc" ] || [[ "$out" != $want ]]; then
		bad "$what: got rc $rc, '$out'; want rc $want_rc, '$want'"
	else
		echo "ok: $what: $out"
	fi
}
URL="$CHAIN_URL"
expect 0 "allowed: " "the allowed app" app "$app" "$COMPOSE" "$DEVICE" "$MR" "$OS" UpToDate
expect 0 "allowed: " "the allowed app with advisory ids" app "$app" "$COMPOSE" "$DEVICE" "$MR" "$OS" UpToDate \
	INTEL-SA-00837 INTEL-SA-00615
expect 3 "denied: the compose hash is not allowed" "another compose hash" \
	app "$app" "$OTHER_COMPOSE" "$DEVICE" "$MR" "$OS" UpToDate
expect 3 "denied: the app is not registered" "an unregistered app" \
	app "$UNREGISTERED" "$COMPOSE" "$DEVICE" "$MR" "$OS" UpToDate
expect 3 "denied: the OS image is not allowed" "another OS image" \
	app "$app" "$COMPOSE" "$DEVICE" "$MR" "$OTHER_OS" UpToDate
expect 3 "denied: the device is not allowed" "another device" \
	app "$app" "$COMPOSE" "$OTHER_DEVICE" "$MR" "$OS" UpToDate
expect 3 "denied: the app requires an UpToDate TCB" "an out-of-date TCB" \
	app "$app" "$COMPOSE" "$DEVICE" "$MR" "$OS" OutOfDate INTEL-SA-00837
expect 0 "allowed: " "an allowed KMS node" kms "$app" "$COMPOSE" "$DEVICE" "$MR" "$OS" UpToDate
expect 3 "denied: the KMS's aggregated MR is not allowed" "a KMS node with another aggregated MR" \
	kms "$app" "$COMPOSE" "$DEVICE" "$OTHER_MR" "$OS" UpToDate
expect 3 "denied: the KMS's TCB status is not UpToDate" "a KMS node out of date" \
	kms "$app" "$COMPOSE" "$DEVICE" "$MR" "$OS" OutOfDate

# The owner withdraws the compose hash: the same app is refused from now on.
chain_send "$tmp/out" DstackApp "$app" 'setComposeHash(bytes32,bool)' "$COMPOSE" false
expect 3 "denied: the compose hash is not allowed" "a withdrawn compose hash" \
	app "$app" "$COMPOSE" "$DEVICE" "$MR" "$OS" UpToDate

# No contract at the address: an error, not an answer.
kms_saved="$kms"
kms="$UNREGISTERED"
expect 1 "error: no contract answers at 0x$UNREGISTERED*" "an address without code" \
	app "$app" "$COMPOSE" "$DEVICE" "$MR" "$OS" UpToDate
kms="$kms_saved"

# The node goes down: fail closed, with a clear error.
chain_stop
expect 1 "error: the chain node $URL cannot be reached*" "a chain node that is down" \
	app "$app" "$COMPOSE" "$DEVICE" "$MR" "$OS" UpToDate

exit "$fail"
