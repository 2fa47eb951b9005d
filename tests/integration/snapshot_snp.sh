#!/usr/bin/env bash
# cvm snapshot and cvm verify against cvm-agentd on the simulated SEV-SNP
# (cvm-agentd --platform snp; a swtpm, a real IMA list;
# tests/common/snapverify.sh), anchored in the simulator's ARK:
#  - the snapshot's platform is "snp" and its "tee" section holds what the
#    verified report says identifies the guest (the measurement given to
#    cvm sim init, host_data, ID and author key digests, family and image
#    IDs, policy, guest SVN, the reported TCB, the VCEK as signer) and the
#    two keys the report_data binds (no register records them on SEV-SNP);
#    cvm snapshot show prints it, cvm snapshot diff A A is empty;
#  - cvm verify passes every check, the connection line saying the key is
#    the one the certificate's report binds;
#  - a snapshot whose measurement (then host_data and policy) was changed
#    fails verify on "tee measurements", naming exactly those fields, and
#    diff names them;
#  - the bundle with the host's certificate table (the simulator's own chain,
#    put in by tests/integration/verify_foreign_chain_server.py in front of
#    the agent, with the agent's TLS key) verifies; a table without its
#    terminating entry, with more than 16 entries, with an entry outside it,
#    or naming the VCEK twice is refused on the "tee" line, saying which;
#  - a snapshot whose SNP field has the wrong length or type is refused
#    (exit 1) by verify and show, naming the field;
#  - a TDX snapshot (an agent on another, TDX simulator: an agent keeps its
#    runtime events in the simulator's folder) is refused against the SNP
#    agent, and the SNP snapshot against the TDX agent (exit 3, the
#    "platform" line), with nothing compared.
# Needs swtpm (else skipped, exit 77), tpm2-tools and python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=snapshot_snp
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-snapshot-snp.XXXXXX")"
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

MEAS="$(python3 -c 'print(bytes(range(1, 49)).hex())')"
sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/sim" --snp-measurement "$MEAS" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }
"$bin/cvm" sim init "$tmp/simtdx" >/dev/null || { echo "$NAME: FAIL: cvm sim init (TDX)"; exit 1; }

# A TDX agent first: its snapshot, for the cross-platform checks below.
sv_agent_start "$tmp/simtdx" || { echo "$NAME: FAIL: the TDX agent did not start"; exit 1; }
expect 0 "cvm snapshot (TDX)" sv_snapshot "$tmp/simtdx" "$tmp/snap-tdx.json" || sv_finish "$NAME"
sv_agent_stop
sv_agent_start "$tmp/sim" --platform snp || { echo "$NAME: FAIL: the SNP agent did not start"; exit 1; }

expect 0 "cvm snapshot (SEV-SNP)" sv_snapshot_snp "$tmp/sim" "$tmp/snap.json" || sv_finish "$NAME"
has "SEV-SNP, TCB UpToDate" "cvm snapshot (SEV-SNP)"
has "IMA (path, digest) pairs from 507 quoted entries" "cvm snapshot (SEV-SNP)"
python3 - "$tmp/snap.json" "$MEAS" >"$tmp/out" 2>&1 <<'PY' && pass || { fail "the SNP snapshot's fields"; show "$tmp/out"; }
import json, sys
d = json.load(open(sys.argv[1]))
t = d["tee"]
assert d["format"] == "cvmkit-snapshot" and d["version"] == 1, "format/version"
assert d["platform"] == "snp" and d["simulated"] is True, "platform"
assert t["measurement"] == sys.argv[2], ("measurement", t["measurement"])
for k, n in (("host_data", 32), ("id_key_digest", 48), ("author_key_digest", 48), ("family_id", 16),
             ("image_id", 16), ("agent_key_sha256", 32)):
    assert len(t[k]) == 2 * n, k
assert "mrtd" not in t and "rtmr0" not in t, "TDX fields in an SNP snapshot"
# the simulator's report: policy 0x30000 (SMT allowed, bit 17), guest SVN 0,
# signed by the VCEK, TCB bootloader 3, TEE 0, SNP 8, microcode 115
assert t["policy"] == 0x30000 and t["guest_svn"] == 0 and t["signer"] == "vcek", t
r = t["reported_tcb"]
assert (r["bootloader"], r["tee"], r["snp"], r["microcode"]) == (3, 0, 8, 115), r
assert r["raw"] == bytes([3, 0, 0, 0, 0, 0, 8, 115]).hex(), r["raw"]
assert t["key_binding"] == "report_data"
assert t["tpm_ak_name"] == d["tpm"]["ak_name"] and d["tpm"]["ak_name"].startswith("000b")
assert d["tcb"]["status"] == "UpToDate"
assert sorted(d["tpm"]["pcrs"]["sha256"]) == [str(i) for i in range(10)]
assert len(d["ima"]["entries"]) == 507
PY
expect 0 "cvm snapshot show (SEV-SNP)" "$bin/cvm" snapshot show "$tmp/snap.json"
has "platform: snp" "cvm snapshot show"
has "  measurement       $MEAS" "cvm snapshot show"
has "  policy 0x30000, guest_svn 0, signed by a VCEK" "cvm snapshot show"
expect 0 "cvm snapshot diff A A (SEV-SNP)" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/snap.json"

expect 0 "cvm verify (SEV-SNP)" sv_verify_snp "$tmp/sim" "$tmp/snap.json"
for c in connection nonce tee "event log" "tpm ak" "tpm quote" "ima replay" "agent key" ak "tee measurements" \
	"boot pcrs" ima reboot; do
	grep -q "^\[ OK \] $c:" "$tmp/out" && pass || { fail "cvm verify (SEV-SNP): no OK line for '$c'"; show "$tmp/out"; }
done
has "the one its certificate's SEV-SNP report binds" "cvm verify (SEV-SNP)"
has "verdict: the VM matches the snapshot" "cvm verify (SEV-SNP)"

# The host's certificate table in the bundle: the agent's own chain, then
# spoiled ones. The proxy holds the agent's TLS key, so the handshake passes.
python3 -c '
import ssl, sys
print(ssl.get_server_certificate(("127.0.0.1", int(sys.argv[1]))))' "$SV_PORT" >"$tmp/agent-cert.pem"
AGENT_PORT="$SV_PORT"
for mode in ok unterminated many outside twice; do
	stop_proxy
	rm -f "$tmp/proxy-port"
	python3 "$SRC/tests/integration/verify_foreign_chain_server.py" "$tmp/agent-cert.pem" \
		"$tmp/sim/agent/cvm-agentd-identity.pem" "$tmp/d.sock" "$tmp/sim/collateral/snp" "$tmp/proxy-port" \
		"$mode" 2>>"$tmp/proxy.log" &
	ppid_=$!
	for _ in $(seq 100); do [ -s "$tmp/proxy-port" ] && break; sleep 0.1; done
	SV_PORT="$(cat "$tmp/proxy-port" 2>/dev/null)"
	case "$mode" in
	ok) why="" ;;
	unterminated) why="it ends before its terminating entry of zeros" ;;
	many) why="more than 16 entries" ;;
	outside) why="the ARK's entry (offset 1048576, " ;;
	twice) why="it names the VCEK twice" ;;
	esac
	if [ "$mode" = ok ]; then
		expect 0 "cvm verify, the bundle carries the agent's chain in its table" sv_verify_snp "$tmp/sim" "$tmp/snap.json"
	else
		expect 3 "cvm verify, a certificate table: $mode" sv_verify_snp "$tmp/sim" "$tmp/snap.json"
		has "[FAIL] tee: the certificate table: $why" "cvm verify, a certificate table: $mode"
		has "[ OK ] connection:" "cvm verify, a certificate table: $mode"
	fi
done
stop_proxy
SV_PORT="$AGENT_PORT"

# tamper: edit FIELD=VALUE... of the snapshot's "tee" into $tmp/bad.json
tamper() {
	python3 - "$tmp/snap.json" "$tmp/bad.json" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    d["tee"][k] = json.loads(v)
json.dump(d, open(sys.argv[2], "w"))
PY
}
flipped="$(python3 -c 'import sys; h = sys.argv[1]; print(h[:10] + ("0" if h[10] != "0" else "1") + h[11:])' "$MEAS")"
tamper "measurement=\"$flipped\""
expect 3 "cvm verify, SNP measurement changed" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "[FAIL] tee measurements: measurement differ from the snapshot's" "cvm verify, SNP measurement changed"
has "verdict: REJECTED" "cvm verify, SNP measurement changed"
expect 1 "cvm snapshot diff, SNP measurement changed" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/bad.json"
has "changed: tee.measurement:" "cvm snapshot diff"
tamper "host_data=\"$(printf 'ab%.0s' $(seq 32))\"" "policy=196608" "guest_svn=1"
expect 3 "cvm verify, SNP host_data and guest_svn changed" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "[FAIL] tee measurements: host_data, guest_svn differ from the snapshot's" "cvm verify, host_data changed"

# The TCB floor: a snapshot whose reported SNP SVN is above the platform's
# fails (a firmware rollback); one below it passes and says the TCB rose.
tcb_bump() { # tcb_bump DELTA: the snapshot's reported_tcb with snp + DELTA
	python3 - "$tmp/snap.json" "$1" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["tee"]["reported_tcb"]
t["snp"] = t["snp"] + int(sys.argv[2])
print(json.dumps(t))
PY
}
tamper "reported_tcb=$(tcb_bump 1)"
expect 3 "cvm verify, the snapshot's SNP SVN above the platform's" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "[FAIL] tcb floor: the platform's TCB fell below the snapshot's: snp " "cvm verify, SNP TCB below the floor"
tamper "reported_tcb=$(tcb_bump -1)"
expect 0 "cvm verify, the snapshot's SNP SVN below the platform's" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "[ OK ] tcb floor: the platform's TCB rose since the snapshot (a firmware update)" "cvm verify, SNP TCB rose"

# malformed SNP fields: refused before any connection, naming the field
tamper "host_data=\"$(printf 'ab%.0s' $(seq 31))\""
expect 1 "cvm verify, host_data of 31 bytes" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "\"tee.host_data\" is not 32 bytes of hex (SEV-SNP)" "cvm verify, host_data of 31 bytes"
expect 1 "cvm snapshot show, host_data of 31 bytes" "$bin/cvm" snapshot show "$tmp/bad.json"
has "\"tee.host_data\" is not 32 bytes of hex (SEV-SNP)" "cvm snapshot show, host_data of 31 bytes"
tamper 'policy="0x30000"'
expect 1 "cvm verify, policy as a string" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "\"tee.policy\" and \"tee.guest_svn\" must be non-negative integers (SEV-SNP)" "cvm verify, policy as a string"
tamper 'signer="ark"'
expect 1 "cvm verify, an unknown signer" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "\"tee.signer\" is neither \"vcek\" nor \"vlek\"" "cvm verify, an unknown signer"
tamper 'reported_tcb={"raw": "0300000000000873", "bootloader": 3, "tee": 0, "snp": 256, "microcode": 115}'
expect 1 "cvm verify, an SVN above 255" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "\"tee.reported_tcb.snp\" is not an SVN (0..255)" "cvm verify, an SVN above 255"
tamper 'key_binding="rtmr3"'
expect 1 "cvm verify, a binding SEV-SNP does not have" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "\"tee.key_binding\" is not \"report_data\"" "cvm verify, key_binding rtmr3"
tamper 'tpm_ak_name="000b"' 'tpm_ak_name=7'
expect 1 "cvm verify, tpm_ak_name not hex" sv_verify_snp "$tmp/sim" "$tmp/bad.json"
has "\"tee.tpm_ak_name\" is not a TPM Name in hex" "cvm verify, tpm_ak_name not hex"

# the other platform's snapshot is refused, nothing compared
expect 3 "cvm verify, a TDX snapshot against the SNP agent" sv_verify_snp "$tmp/sim" "$tmp/snap-tdx.json"
has "[FAIL] platform: the snapshot is of a TDX guest and the agent's evidence is SEV-SNP" "TDX snapshot, SNP agent"
grep -q "^\[.*\] tee measurements:" "$tmp/out" && fail "a TDX snapshot was compared with SNP evidence" || pass
sv_agent_stop
sv_agent_start "$tmp/simtdx" || { echo "$NAME: FAIL: the TDX agent did not restart"; exit 1; }
expect 3 "cvm verify, an SNP snapshot against the TDX agent" sv_verify "$tmp/simtdx" "$tmp/snap.json"
has "[FAIL] platform: the snapshot is of a SEV-SNP guest and the agent's evidence is TDX" "SNP snapshot, TDX agent"
grep -q "^\[.*\] tee measurements:" "$tmp/out" && fail "an SNP snapshot was compared with TDX evidence" || pass
sv_finish "$NAME"
