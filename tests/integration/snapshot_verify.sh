#!/usr/bin/env bash
# cvm snapshot and cvm verify against cvm-agentd's TLS listener (simulated
# TDX, a swtpm, a real IMA list; tests/common/snapverify.sh):
#  - GetEvidence is served over TLS; the snapshot is taken, shown and
#    compares equal to itself (cvm snapshot diff exits 0);
#  - cvm verify -v passes every check and prints the step times;
#  - a new IMA entry (the kernel measured a file the snapshot does not hold)
#    fails verify, naming its path and digest;
#  - the TCB floor: a snapshot whose TEE TCB SVN is above the platform's
#    fails (a rollback), one below it passes and says the TCB rose;
#  - a snapshot tampered by hand (one MRTD byte; one IMA entry removed; one
#    boot PCR) is shown by cvm snapshot diff (exit 1, the field named) and
#    fails verify on the check of that part;
#  - a reboot (the TPM restarted: resetCount + 1) is reported on its own line
#    and does not fail by itself;
#  - a snapshot file that is not one is refused (exit 1), with the reason.
# Needs swtpm (else skipped, exit 77), tpm2-tools and python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=snapshot_verify
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-snapshot-verify.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
cleanup() {
	sv_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
sv_need "$NAME"

sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }
sv_agent_start "$tmp/sim" || { echo "$NAME: FAIL: the agent did not start"; exit 1; }

# Take the snapshot; it says what it recorded.
expect 0 "cvm snapshot" sv_snapshot "$tmp/sim" "$tmp/snap.json" || exit 1
has "IMA (path, digest) pairs from 507 quoted entries" "cvm snapshot"
python3 - "$tmp/snap.json" >"$tmp/out" 2>&1 <<'EOF' && pass || { fail "the snapshot's fields"; show "$tmp/out"; }
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "cvmkit-snapshot" and d["version"] == 1, "format/version"
assert d["platform"] == "tdx" and d["simulated"] is True, "platform"
for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "mr_config_id", "mr_owner", "mr_owner_config", "mr_seam"):
    assert len(d["tee"][k]) == 96, k
assert len(d["tee"]["td_attributes"]) == 16 and len(d["tee"]["xfam"]) == 16
assert len(d["tee"]["tee_tcb_svn"]) == 32
assert len(d["tee"]["agent_key_sha256"]) == 64
assert d["tee"]["tpm_ak_name"] == d["tpm"]["ak_name"] and d["tpm"]["ak_name"].startswith("000b")
assert d["tcb"]["status"] == "UpToDate" and d["tcb"]["policy"] is None
assert sorted(d["tpm"]["pcrs"]["sha256"]) == [str(i) for i in range(10)], "boot PCRs 0..9 only"
assert d["tpm"]["reset_count"] >= 0 and isinstance(d["taken"]["tpm_clock"], int)
e = d["ima"]["entries"]
assert len(e) == 507 and d["taken"]["ima_quoted_entries"] == 507, len(e)
assert {"path": "/out/quote/quote.pcrs", "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"} in e
assert all(x["path"] != "/out/quote/quote.sig" for x in e), "entry 508 is not quoted yet"
EOF
expect 0 "cvm snapshot show" "$bin/cvm" snapshot show "$tmp/snap.json"
has "ima: 507 (path, digest) pairs (bank sha256)" "cvm snapshot show"
has "files: not recorded (cvm snapshot --files records a digest of every file)" "cvm snapshot show"
expect 0 "cvm snapshot diff A A" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/snap.json"

# Verify: every check passes; -v prints the times.
expect 0 "cvm verify -v" sv_verify "$tmp/sim" "$tmp/snap.json" -v
for c in connection nonce tee "event log" "tpm ak" "tpm quote" "ima replay" "agent key" ak "tee measurements" \
	"boot pcrs" ima reboot; do
	has "[ OK ] $c:" "cvm verify"
done
grep -q "^\[FAIL\]" "$tmp/out" && fail "cvm verify printed a FAIL line" || pass
has "[ OK ] reboot: no reboot since the snapshot" "cvm verify"
grep -qE "^time: total [0-9.]+ ms = cvmkit [0-9.]+ ms \+ the guest's quotes and the network [0-9.]+ ms" \
	"$tmp/out" && pass || { fail "cvm verify -v: no time split"; show "$tmp/out"; }
grep "^time:" "$tmp/out"
expect 0 "cvm verify --json" sv_verify "$tmp/sim" "$tmp/snap.json" --json
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verdict"] == "accepted" and d["rebooted"] is False and d["ima_not_in_snapshot"] == []
assert all(c["ok"] for c in d["checks"]) and len(d["checks"]) == 14
assert d["timings_ms"]["total"] >= d["timings_ms"]["cvmkit"] > 0
' "$tmp/out" && pass || { fail "cvm verify --json"; show "$tmp/out"; }

# Hand-tampered snapshots: diff names the change, verify fails on it.
tamper() { # tamper OUT PYTHON-STATEMENT (d is the document)
	python3 - "$tmp/snap.json" "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"), indent=2)
EOF
}
tamper "$tmp/t-mrtd.json" 'd["tee"]["mrtd"] = ("00" if d["tee"]["mrtd"][:2] != "00" else "11") + d["tee"]["mrtd"][2:]'
expect 1 "diff, MRTD changed" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/t-mrtd.json"
has "changed: tee.mrtd:" "diff, MRTD changed"
expect 3 "verify, MRTD changed" sv_verify "$tmp/sim" "$tmp/t-mrtd.json"
has "[FAIL] tee measurements: mrtd differ from the snapshot's" "verify, MRTD changed"

tamper "$tmp/t-ima.json" 'd["ima"]["entries"] = [e for e in d["ima"]["entries"] if e["path"] != "/out/quote/ak.name"]'
expect 1 "diff, an IMA entry removed" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/t-ima.json"
has "ima: only in A: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 /out/quote/ak.name" \
	"diff, an IMA entry removed"
expect 3 "verify, an IMA entry removed" sv_verify "$tmp/sim" "$tmp/t-ima.json"
has "not in the snapshot: /out/quote/ak.name (sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855)" \
	"verify, an IMA entry removed"

tamper "$tmp/t-pcr.json" 'd["tpm"]["pcrs"]["sha256"]["7"] = "11" * 32'
expect 1 "diff, PCR 7 changed" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/t-pcr.json"
has "changed: tpm.pcrs.sha256.7:" "diff, PCR 7 changed"
expect 3 "verify, PCR 7 changed" sv_verify "$tmp/sim" "$tmp/t-pcr.json"
has "[FAIL] boot pcrs: 1 PCR values differ from the snapshot's: sha256:7" "verify, PCR 7 changed"

tamper "$tmp/t-attr.json" 'd["tee"]["mr_owner"] = "22" * 48'
expect 3 "verify, MROWNER changed" sv_verify "$tmp/sim" "$tmp/t-attr.json"
has "[FAIL] tee measurements: mr_owner differ from the snapshot's" "verify, MROWNER changed"

# The TCB floor: a platform below the snapshot's TCB fails (a rollback), one
# above it passes and says so.
tamper "$tmp/t-tcb-up.json" 'd["tee"]["tee_tcb_svn"] = "%02x" % (int(d["tee"]["tee_tcb_svn"][:2], 16) + 1) + d["tee"]["tee_tcb_svn"][2:]'
expect 3 "verify, a snapshot whose TCB is above the platform's" sv_verify "$tmp/sim" "$tmp/t-tcb-up.json"
has "[FAIL] tcb floor: the platform's TCB fell below the snapshot's: TEE TCB SVN byte 0:" "verify, TCB below the floor"
tamper "$tmp/t-tcb-down.json" 'd["tee"]["tee_tcb_svn"] = "00" * 16'
expect 0 "verify, a snapshot whose TCB is below the platform's" sv_verify "$tmp/sim" "$tmp/t-tcb-down.json"
has "[ OK ] tcb floor: the platform's TCB rose since the snapshot (a TDX module update)" "verify, TCB above the floor"

tamper "$tmp/t-ver.json" 'd["version"] = 2'
expect 1 "verify, snapshot version 2" sv_verify "$tmp/sim" "$tmp/t-ver.json"
has '"version" is not 1' "verify, snapshot version 2"

# The kernel measures a file the snapshot does not hold (entry 508 of the
# list, extended into PCR 10): verify fails and names it.
path508="$(sv_ima_path 508)"
sv_extend 508 508 || fail "tpm2_pcrextend"
expect 3 "verify after a new measurement" sv_verify "$tmp/sim" "$tmp/snap.json"
has "[FAIL] ima: 1 measured (path, digest) pairs are not in the snapshot" "verify after a new measurement"
has "not in the snapshot: $path508 (sha256:" "verify after a new measurement"
has "[ OK ] ima replay: PCR 10 covers the first 508 of 513 entries" "verify after a new measurement"

# A reboot: the TPM restarts (startup-clear: resetCount + 1, PCRs reset and
# the first 507 entries measured again), the agent restarts.
sv_agent_stop
swtpm_stop
sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm restart"; exit 1; }
sv_agent_start "$tmp/sim" || { echo "$NAME: FAIL: the agent did not restart"; exit 1; }
expect 0 "verify after a reboot" sv_verify "$tmp/sim" "$tmp/snap.json"
has "[ OK ] reboot: the VM rebooted since the snapshot (TPM resetCount" "verify after a reboot"
expect 0 "verify --json after a reboot" sv_verify "$tmp/sim" "$tmp/snap.json" --json
grep -q '"rebooted": true' "$tmp/out" && pass || { fail "--json: rebooted is not true"; show "$tmp/out"; }

sv_finish "$NAME"
