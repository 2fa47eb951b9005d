#!/usr/bin/env bash
# Issue 12's GAP "unbound TPM key" (specs/cosmian_vm.md: Cosmian VM never binds
# the TPM's attestation key to the TEE quote, so any TPM's quote passes). The
# VM's AK is bound twice: the TEE quote's report_data names it and RTMR3
# recorded it (cvm_evidence_verify), and cvm verify requires it to be the
# snapshot's. Here the agent restarts on another TPM (a new swtpm, a new AK,
# PCR 10 replayed the same): the evidence is consistent in itself, yet cvm
# verify fails on the AK (exit 3), naming both Names.
# Needs swtpm (else skipped, exit 77), tpm2-tools and python3.
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=verify_gap_unbound_tpm
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verify-ak.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
cleanup() {
	sv_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
sv_need "$NAME"

sv_tpm_start "$tmp/tpm1" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }
sv_agent_start "$tmp/sim" || { echo "$NAME: FAIL: the agent did not start"; exit 1; }
expect 0 "cvm snapshot" sv_snapshot "$tmp/sim" "$tmp/snap.json" || sv_finish "$NAME"
expect 0 "cvm verify on the first TPM" sv_verify "$tmp/sim" "$tmp/snap.json"
ak1="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tpm"]["ak_name"])' "$tmp/snap.json")"

# The VM boots again on another TPM: a new TD (RTMRs at zero) with the same
# MRTD and the agent's same identity key, so only the TPM differs (the
# simulator's mock PKI is new too: verify anchors in its root).
sv_agent_stop
swtpm_stop
mrtd="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tee"]["mrtd"])' "$tmp/snap.json")"
"$bin/cvm" sim init "$tmp/sim2" --mrtd "$mrtd" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }
mkdir -p "$tmp/sim2/agent"
cp "$tmp/sim/agent/cvm-agentd-identity.pem" "$tmp/sim2/agent/"
sv_tpm_start "$tmp/tpm2" || { echo "$NAME: FAIL: the second swtpm"; exit 1; }
sv_agent_start "$tmp/sim2" || { echo "$NAME: FAIL: the agent did not restart"; exit 1; }
expect 3 "cvm verify on another TPM" sv_verify "$tmp/sim2" "$tmp/snap.json"
has "[FAIL] ak: the TPM attestation key " "cvm verify on another TPM"
has "is not the snapshot's $ak1: another TPM or key" "cvm verify on another TPM"
# The new AK is the one the system recorded: only the snapshot tells them apart.
has "[ OK ] tpm ak:" "cvm verify on another TPM"
has "[ OK ] tpm quote:" "cvm verify on another TPM"
has "[ OK ] agent key:" "cvm verify on another TPM"
has "[ OK ] tee measurements:" "cvm verify on another TPM"
sv_finish "$NAME"
