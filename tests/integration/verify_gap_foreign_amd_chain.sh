#!/usr/bin/env bash
# Issue 12's GAP "foreign AMD chain" (specs/cosmian_vm.md §7.5: when the
# SEV-SNP evidence carries ARK, ASK and VCEK in its certificate table, Cosmian
# VM takes all three from the evidence and pins no root, so a chain the
# attacker made verifies). This test fails on that behaviour: the attacker
# runs the agent on a simulator of its own (a second cvm sim init: its own
# ARK, ASK and VCEK), and cvm verify / cvm snapshot, anchored in the genuine
# simulator's ARK (--root), must refuse it (exit 3) saying that the chain is
# not anchored in the pinned ARK:
#  - the handshake: the agent certificate's report and the attacker's chain
#    (as the collateral: the simulator's certificates carry no chain, so a
#    verifier that takes the chain along with the evidence is given it this
#    way) are refused before GetEvidence ("[FAIL] connection"); with the
#    genuine collateral the attacker's report is refused too;
#  - the bundle: an in-guest attacker holding the genuine agent's TLS key
#    (verify_foreign_chain_server.py) answers GetEvidence, for the
#    verifier's fresh nonce, with the attacker agent's bundle whose
#    snp_cert_table carries the attacker's ARK, ASK and VCEK: the handshake
#    passes, the evidence is refused on its chain ("[FAIL] tee"), nothing is
#    compared; without the table the attacker's report fails on its
#    signature instead (so the table's chain is what was checked);
#  - meaningful: the same attacker evidence, table included, passes when the
#    attacker's ARK is the anchor, which is what Cosmian VM effectively does.
# Needs swtpm (else skipped, exit 77), tpm2-tools and python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=verify_gap_foreign_amd_chain
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verify-amd-chain.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
ppid_=""
stop_proxy() {
	if [ -n "$ppid_" ]; then kill "$ppid_" 2>/dev/null || true; wait "$ppid_" 2>/dev/null || true; fi
	ppid_=""
}
cleanup() {
	stop_proxy
	sv_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
sv_need "$NAME"

G="$tmp/genuine"
A="$tmp/attacker"
G_ARK="$G/collateral/snp/ark.pem"
A_ARK="$A/collateral/snp/ark.pem"
sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$G" >/dev/null || { echo "$NAME: FAIL: cvm sim init (genuine)"; exit 1; }
"$bin/cvm" sim init "$A" >/dev/null || { echo "$NAME: FAIL: cvm sim init (attacker)"; exit 1; }
cmp -s "$G_ARK" "$A_ARK" && { echo "$NAME: FAIL: the two simulators share an ARK"; exit 1; }

# agent_cert PEM: the certificate of the agent on SV_PORT, as any client sees it
agent_cert() {
	python3 -c '
import ssl, sys
print(ssl.get_server_certificate(("127.0.0.1", int(sys.argv[1]))))' "$SV_PORT" >"$1"
}

# The genuine VM: its snapshot, anchored in its ARK, and its TLS identity.
sv_agent_start "$G" --platform snp || { echo "$NAME: FAIL: the genuine agent did not start"; exit 1; }
expect 0 "cvm snapshot of the genuine VM" sv_snapshot_snp "$G" "$tmp/snap.json" || sv_finish "$NAME"
agent_cert "$tmp/genuine-cert.pem" && pass || fail "cannot read the genuine agent's certificate"
sv_agent_stop

# The attacker's VM.
sv_agent_start "$A" --platform snp || { echo "$NAME: FAIL: the attacker's agent did not start"; exit 1; }
agent_cert "$tmp/attacker-cert.pem" && pass || fail "cannot read the attacker's agent's certificate"
A_PORT="$SV_PORT"

# ---- the handshake ------------------------------------------------------------
expect 3 "cvm snapshot of the attacker's VM, the attacker's chain, the genuine ARK pinned" \
	sv_snapshot_with "$tmp/x.json" --collateral "$A/collateral" --root "$G_ARK"
has "is rejected, no snapshot written: the AMD certificate chain is not anchored in the pinned ARK (the --root given)" \
	"snapshot, handshake"
[ ! -e "$tmp/x.json" ] && pass || fail "a snapshot of the attacker's VM was written"
expect 3 "cvm verify of the attacker's VM, the attacker's chain, the genuine ARK pinned" \
	sv_verify_with "$tmp/snap.json" --collateral "$A/collateral" --root "$G_ARK"
has "[FAIL] connection: the agent's RA-TLS certificate is rejected: the AMD certificate chain is not anchored in the pinned ARK" \
	"verify, handshake"
has "[FAIL] snapshot: not compared" "verify, handshake"
expect 3 "cvm verify of the attacker's VM with the genuine collateral" \
	sv_verify_snp "$G" "$tmp/snap.json"
grep -q "^\[FAIL\] connection:" "$tmp/out" && pass || { fail "the genuine collateral accepted the attacker's report"; show "$tmp/out"; }

# proxy CERT KEY CHAIN_DIR|-: verify_foreign_chain_server.py in front of the
# attacker's agent, presenting CERT; SV_PORT is its port.
proxy() {
	stop_proxy
	rm -f "$tmp/proxy-port"
	python3 "$SRC/tests/integration/verify_foreign_chain_server.py" "$1" "$2" "$tmp/d.sock" "$3" \
		"$tmp/proxy-port" 2>>"$tmp/proxy.log" &
	ppid_=$!
	for _ in $(seq 100); do [ -s "$tmp/proxy-port" ] && break; sleep 0.1; done
	[ -s "$tmp/proxy-port" ] || { fail "the proxy did not start: $(cat "$tmp/proxy.log")"; return 1; }
	SV_PORT="$(cat "$tmp/proxy-port")"
}

# ---- meaningful: the attacker's ARK as the anchor (Cosmian's behaviour) ----------
proxy "$tmp/attacker-cert.pem" "$A/agent/cvm-agentd-identity.pem" "$A/collateral/snp" || sv_finish "$NAME"
expect 0 "cvm snapshot of the attacker's VM (its chain in the table) anchored in the attacker's ARK" \
	sv_snapshot_with "$tmp/evil.json" --collateral "$A/collateral" --root "$A_ARK"
expect 0 "cvm verify of the attacker's VM anchored in the attacker's ARK" \
	sv_verify_with "$tmp/evil.json" --collateral "$A/collateral" --root "$A_ARK" --json
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "accepted", j["verdict"]' "$tmp/out" && pass || { fail "the attacker-anchored verify"; show "$tmp/out"; }
expect 3 "the same evidence anchored in the genuine ARK" \
	sv_snapshot_with "$tmp/x.json" --collateral "$A/collateral" --root "$G_ARK"
has "not anchored in the pinned ARK" "the same evidence, the genuine ARK"

# ---- the bundle: the genuine agent's TLS key, the attacker's evidence -------------
proxy "$tmp/genuine-cert.pem" "$G/agent/cvm-agentd-identity.pem" "$A/collateral/snp" || sv_finish "$NAME"
expect 3 "cvm verify: the genuine TLS key, the attacker's bundle and chain" sv_verify_snp "$G" "$tmp/snap.json"
has "[ OK ] connection:" "verify, bundle path"
has "[FAIL] tee: the AMD certificate chain is not anchored in the pinned ARK (the --root given)" "verify, bundle path"
has "[FAIL] snapshot: not compared: the evidence did not verify" "verify, bundle path"
expect 3 "cvm snapshot: the genuine TLS key, the attacker's bundle and chain" sv_snapshot_snp "$G" "$tmp/x.json"
has "is rejected, no snapshot written: the AMD certificate chain is not anchored in the pinned ARK" "snapshot, bundle path"
[ ! -e "$tmp/x.json" ] && pass || fail "a snapshot of the attacker's bundle was written"
proxy "$tmp/genuine-cert.pem" "$G/agent/cvm-agentd-identity.pem" - || sv_finish "$NAME"
expect 3 "cvm verify: the genuine TLS key, the attacker's bundle without a table" sv_verify_snp "$G" "$tmp/snap.json"
has "[ OK ] connection:" "verify, bundle without a table"
grep -q "^\[FAIL\] tee: " "$tmp/out" && ! grep -q "not anchored" "$tmp/out" && pass ||
	{ fail "without a table, the attacker's report is not refused on its own (signature) step"; show "$tmp/out"; }
stop_proxy
SV_PORT="$A_PORT"
sv_finish "$NAME"
