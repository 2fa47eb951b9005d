#!/usr/bin/env bash
# cvm-gatewayd's data path on loopback: routing by name, termination,
# passthrough, h2, health, PROXY v2 out, refused names and ClientHellos, the
# admin token, caps, slowloris, a stalled backend, certificate hot reload and
# a graceful drain, custom domains by TXT record (tests/integration/gateway_proxy.py says what
# each check is).
# Needs: $CVM_BIN/cvm-gatewayd, python3, openssl, curl, pebble-challtestsrv (the custom
# domains' DNS server).
set -euo pipefail

BIN="${CVM_BIN:-build/bin}"
if [ ! -x "$BIN/cvm-gatewayd" ]; then
	echo "FAIL: $BIN/cvm-gatewayd is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rc=0
python3 "$(dirname "$0")/gateway_proxy.py" "$BIN" "$tmp" || rc=$?
if [ "$rc" -ne 0 ] && [ -f "$tmp/gatewayd.log" ]; then
	echo "--- cvm-gatewayd's log (last 40 lines)"
	tail -n 40 "$tmp/gatewayd.log"
fi
exit "$rc"
