#!/usr/bin/env bash
# CVMs register with cvm-gatewayd (Gateway.RegisterCvm over mutual TLS with
# KMS-shaped certificates) and are reached through WireGuard, in two network
# namespaces with wireguard-go (tests/integration/gateway_register.py says
# what each check is). Needs root, /dev/net/tun, ip, wireguard-go, wg, curl,
# python3 with python3-cryptography; without root or namespaces it says so
# and is skipped.
set -euo pipefail

BIN="${CVM_BIN:-build/bin}"
if [ ! -x "$BIN/cvm-gatewayd" ]; then
	echo "FAIL: $BIN/cvm-gatewayd is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: network namespaces and wireguard-go need root"
	exit 77
fi
if [ ! -c /dev/net/tun ] || ! ip netns add "cvmprobe$$" 2>/dev/null; then
	echo "SKIP: no /dev/net/tun or no network namespaces here"
	exit 77
fi
ip netns del "cvmprobe$$"
for t in wireguard-go wg curl; do
	command -v "$t" >/dev/null || { echo "FAIL: $t is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rc=0
python3 "$(dirname "$0")/gateway_register.py" "$BIN" "$tmp" || rc=$?
if [ "$rc" -ne 0 ] && [ -f "$tmp/gatewayd.log" ]; then
	echo "--- cvm-gatewayd's log (last 40 lines)"
	tail -n 40 "$tmp/gatewayd.log"
fi
exit "$rc"
