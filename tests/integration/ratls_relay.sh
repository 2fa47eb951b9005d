#!/usr/bin/env bash
# The relay check of the fresh attestation (docs/attested-tls.md):
#  - ratls_server (tests/common/ratls_server.c) serves an RA-TLS
#    certificate quoted by the simulated TEE and answers POST /FreshAttest
#    with evidence bound to the TLS exporter of the connection it came on;
#  - `cvm cert ratls fetch` straight to it: the handshake's check and the
#    fresh check pass (exit 0), for TDX and SNP;
#  - through a relay (ratls_relay_proxy.py) that terminates TLS with the
#    server's own certificate and key and opens a second TLS session to the
#    server: the handshake's check passes (same certificate), the fresh
#    check does not: exit 3 and the one line that names the relay;
#  - a verifier anchored in another simulated platform refuses the server at
#    the handshake (exit 3).
# Needs: $CVM_BIN/cvm, build/tests/ratls_server, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
SERVER="$(dirname "$CVM")/../tests/ratls_server"
RELAY="$(dirname "$0")/ratls_relay_proxy.py"

if ! command -v python3 >/dev/null 2>&1; then
	echo "FAIL: python3 is needed for the relay (scripts/setup.sh installs it)" >&2
	exit 1
fi
for b in "$CVM" "$SERVER"; do
	if [ ! -x "$b" ]; then
		echo "FAIL: $b is missing or not executable (set CVM_BIN, build the tests)" >&2
		exit 1
	fi
done

tmp="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
check() { checks=$((checks + 1)); }

# wait_file FILE WHAT PID LOG: wait until FILE exists; fail when PID died.
wait_file() {
	for _ in $(seq 1 300); do
		[ -s "$1" ] && return 0
		if ! kill -0 "$3" 2>/dev/null; then
			echo "FAIL: $2 exited: $(cat "$4")" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "FAIL: $2 did not start (no $1)" >&2
	exit 1
}

"$CVM" sim init "$tmp/sim" >/dev/null
"$CVM" sim init "$tmp/other" >/dev/null
col="$tmp/sim/collateral"

# The simulator's mock roots: its Intel root CA and its AMD ARK.
roots=(--root "$col/tdx/intel_sgx_root_ca.der" --root "$col/snp/ark.pem")
oroots=(--root "$tmp/other/collateral/tdx/intel_sgx_root_ca.der" --root "$tmp/other/collateral/snp/ark.pem")

for platform in tdx snp; do
	d="$tmp/$platform"
	mkdir "$d"
	"$SERVER" --sim "$tmp/sim" --platform "$platform" --port-file "$d/port" \
		--chain-out "$d/chain.pem" --key-out "$d/key.pem" 2>"$d/server.log" &
	pids+=("$!")
	wait_file "$d/port" ratls_server "$!" "$d/server.log"
	port="$(cat "$d/port")"
	python3 "$RELAY" "$d/chain.pem" "$d/key.pem" "$port" "$d/relay_port" 2>"$d/relay.log" &
	pids+=("$!")
	wait_file "$d/relay_port" "the relay" "$!" "$d/relay.log"
	relay="$(cat "$d/relay_port")"

	# Straight to the server: accepted.
	check
	rc=0
	"$CVM" cert ratls fetch "127.0.0.1:$port" --collateral "$col" "${roots[@]}" >"$d/direct.out" \
		2>"$d/direct.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$platform: direct fetch exited $rc, want 0: $(cat "$d/direct.err")"
	fi
	check
	grep -q "verdict: accepted" "$d/direct.out" || fail "$platform: direct fetch did not print the verdict"
	check
	grep -q "^SIMULATED TEE" "$d/direct.out" || fail "$platform: the simulated banner is missing"
	check
	rc=0
	"$CVM" cert ratls fetch "127.0.0.1:$port" --collateral "$col" "${roots[@]}" --json \
		>"$d/direct.json" 2>/dev/null || rc=$?
	[ "$rc" -eq 0 ] && python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["fresh"] is True and o["tee"]==sys.argv[2] and o["simulated"] is True' \
		"$d/direct.json" "$platform" || fail "$platform: --json output is not the accepted verdict"

	# Through the relay: the certificate checks out, the fresh evidence
	# does not; one line, exit 3.
	check
	rc=0
	"$CVM" cert ratls fetch "127.0.0.1:$relay" --collateral "$col" "${roots[@]}" >"$d/relay.out" \
		2>"$d/relay.err" || rc=$?
	if [ "$rc" -ne 3 ]; then
		fail "$platform: fetch through the relay exited $rc, want 3: $(cat "$d/relay.err")"
	fi
	check
	want="cvm cert ratls fetch: the fresh evidence is bound to another TLS connection: something between you and 127.0.0.1:$relay terminates TLS (a relay); do not trust this connection"
	if [ "$(cat "$d/relay.err")" != "$want" ]; then
		fail "$platform: through the relay, stderr is not the one line: $(cat "$d/relay.err")"
	fi
	check
	[ ! -s "$d/relay.out" ] || fail "$platform: through the relay, something was printed on stdout"

	# Another platform's roots: refused at the handshake.
	check
	rc=0
	"$CVM" cert ratls fetch "127.0.0.1:$port" --collateral "$tmp/other/collateral" "${oroots[@]}" \
		>/dev/null 2>"$d/other.err" || rc=$?
	[ "$rc" -eq 3 ] || fail "$platform: another platform's roots: exit $rc, want 3: $(cat "$d/other.err")"
done

# Usage.
check
rc=0
"$CVM" cert ratls fetch >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "fetch without HOST:PORT exited $rc, want 2"
check
rc=0
"$CVM" cert ratls fetch localhost >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "fetch of 'localhost' (no port) exited $rc, want 2"

if [ "$failures" -ne 0 ]; then
	echo "ratls_relay: $failures of $checks checks failed" >&2
	exit 1
fi
echo "ratls_relay: $checks checks passed"
