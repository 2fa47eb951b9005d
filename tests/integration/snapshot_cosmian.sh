#!/usr/bin/env bash
# integration.snapshot_cosmian: Cosmian VM's snapshot format, read and carried
# into a cvmkit snapshot of a live VM (docs/cli/cvm-snapshot.md "Cosmian VM's
# snapshots").
#  - The only public Cosmian snapshot (tests/vectors/compat/cosmian-snapshot:
#    a documentation sample that is not valid JSON, with a "..." line and a
#    truncated digest) is refused as it is, naming the JSON error; with those
#    two lines dropped (nothing else changed) `cvm snapshot show` reads it and
#    prints the values its expectations.json lists (measurement, report_id,
#    policy 196608, zero IDs, resetCount 15).
#  - An agent on a simulated SEV-SNP platform whose launch measurement is the
#    sample's (cvm sim init --snp-measurement): `cvm snapshot --cosmian` of the
#    repaired sample passes its TEE policy (the simulator's guest policy is
#    0x30000, its IDs zero, its guest SVN 4 >= 0) and writes a full cvmkit
#    snapshot recording the import; against a platform with another
#    measurement it exits 3 naming `measurement` and writes nothing.
#  - TDX: a Cosmian Tdx policy made from the live VM's own quote (mr_td,
#    td_attributes, xfam, mr_seam, ... as Cosmian's agent copies them)
#    passes, and its filehashes (one the VM's IMA list measures later, one
#    never run) join the reference set: `cvm verify` then accepts the later
#    measurement that the plain snapshot rejects. A changed mr_td or a QE SVN
#    floor above the quote's is refused naming the field.
#  - Malformed documents are refused naming the field: an unknown field, a
#    short digest, an Sgx policy, a [path, digest] pair with a bad digest.
# Needs swtpm (else skipped, exit 77), tpm2-tools and python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=snapshot_cosmian
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-snapshot-cosmian.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
cleanup() {
	sv_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
sv_need "$NAME"

SAMPLE="$SRC/tests/vectors/compat/cosmian-snapshot/cosmian_vm-deployment-guide/snapshot-sample.lines466-489.txt"
[ -r "$SAMPLE" ] || { echo "$NAME: FAIL: $SAMPLE is missing (git checkout -- tests/vectors)"; exit 1; }
MEAS=73797518025d1d20e09efdf10e383cd0115e00562109b04ec577b5bd5d2ddab12f1f9ee22758f50a121355cf5aac6507

# --- the documentation sample ---
expect 1 "cvm snapshot show of the sample as published" "$bin/cvm" snapshot show "$SAMPLE"
has "not a JSON object (line 22" "the sample as published"
# The repair: drop the "..." line and the truncated pair, then the comma
# the dropped pair leaves; every other byte stays.
python3 - "$SAMPLE" "$tmp/sample.json" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
out = [l for l in lines if l.strip() != "..." and "[...]" not in l]
open(sys.argv[2], "w").write("\n".join(out))
EOF
expect 0 "cvm snapshot show of the repaired sample" "$bin/cvm" snapshot show "$tmp/sample.json"
has "  measurement          $MEAS" "the sample's measurement"
has "  report_id            b6db1e43f868a4823f708df92942a0448750fc5c37f7a724bc49292ffd111e1a" "the sample's report_id"
has "  policy               196608" "the sample's guest policy"
has "  family_id            00000000000000000000000000000000" "the sample's family_id"
has "  id_key_digest        $(printf '0%.0s' $(seq 96))" "the sample's id_key_digest"
has "tpm: resetCount 15, restartCount 0" "the sample's tpm_policy"
has "cloud: none" "the sample has no cloud_type"
expect 0 "cvm snapshot show --json of the repaired sample" "$bin/cvm" --json snapshot show "$tmp/sample.json"

# --- SEV-SNP: the sample's TEE policy against a live agent ---
sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/snp" --snp-measurement "$MEAS" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }
sv_agent_start "$tmp/snp" --platform snp || { echo "$NAME: FAIL: the SNP agent did not start"; exit 1; }
expect 0 "cvm snapshot --cosmian sample (SEV-SNP, the sample's measurement)" \
	sv_snapshot_snp "$tmp/snp" "$tmp/snp-snap.json" --cosmian "$tmp/sample.json"
has "carried over from the Cosmian VM snapshot" "cvm snapshot --cosmian"
python3 - "$tmp/snp-snap.json" "$MEAS" <<'EOF' && pass || fail "the SNP snapshot does not record the import"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "cvmkit-snapshot" and d["platform"] == "snp", d["platform"]
assert d["tee"]["measurement"] == sys.argv[2]
i = d["imported"]
assert i["from"] == "cosmian_vm" and i["tee_policy"] == "Sev" and i["filehashes"] == 0, i
assert i["tpm_policy"] == {"reset_count": 15, "restart_count": 0}, i
EOF
expect 0 "cvm snapshot show of the imported SNP snapshot" "$bin/cvm" snapshot show "$tmp/snp-snap.json"
has "imported: 0 (path, digest) pairs from cosmian_vm's snapshot" "show of an imported snapshot"
expect 0 "cvm verify against the imported SNP snapshot" sv_verify_snp "$tmp/snp" "$tmp/snp-snap.json"
expect 1 "cvm verify --snapshot of the Cosmian file itself" sv_verify_snp "$tmp/snp" "$tmp/sample.json"
has "cvm snapshot --url https://HOST:PORT --cosmian FILE -o OUT" "verify against a Cosmian file"

sv_agent_stop
"$bin/cvm" sim init "$tmp/snp2" >/dev/null || fail "cvm sim init (another measurement)"
sv_agent_start "$tmp/snp2" --platform snp || fail "the second SNP agent did not start"
expect 3 "cvm snapshot --cosmian sample against another measurement" \
	sv_snapshot_snp "$tmp/snp2" "$tmp/snp2-snap.json" --cosmian "$tmp/sample.json"
grep -q "breaks 1 field of the Cosmian snapshot's TEE policy: measurement (snapshot $MEAS" "$tmp/out" && pass ||
	{ fail "the mismatch does not name the measurement"; show "$tmp/out"; }
[ ! -e "$tmp/snp2-snap.json" ] && pass || fail "a snapshot was written for a VM that breaks the Cosmian policy"
sv_agent_stop

# --- TDX: a Cosmian policy made from the VM's own quote ---
"$bin/cvm" sim init "$tmp/tdx" >/dev/null || fail "cvm sim init (TDX)"
sv_agent_start "$tmp/tdx" || fail "the TDX agent did not start"
expect 0 "cvm snapshot (TDX, plain)" sv_snapshot "$tmp/tdx" "$tmp/plain.json"
# The quote's fields, as Cosmian's agent copies them into its policy.
"$bin/cvm" sim quote "$tmp/tdx" --report-data 00 --out "$tmp/q.bin" >/dev/null
"$bin/cvm" --json quote verify "$tmp/q.bin" --collateral "$tmp/tdx/collateral/tdx" \
	--root "$tmp/tdx/collateral/tdx/intel_sgx_root_ca.der" >"$tmp/q.json" 2>/dev/null
later="$(sv_ima_path $((SV_QUOTED + 1)))"
later_digest="$(sv_ima_file_digest $((SV_QUOTED + 1)))"
python3 - "$tmp/q.json" "$tmp/cos-tdx.json" "$later" "$later_digest" <<'EOF' || fail "cannot make the TDX Cosmian policy"
import json, sys
q = json.load(open(sys.argv[1]))
doc = {"cloud_type": None,
       "tee_policy": {"Tdx": {
           "header": {"minimum_qe_svn": None, "minimum_pce_svn": None, "qe_vendor_id": None},
           "body": {"minimum_tee_tcb_svn": q["tee_tcb_svn"], "mr_seam": q["mr_seam"],
                    "td_attributes": q["td_attributes"], "xfam": int.from_bytes(bytes.fromhex(q["xfam"]), "little"),
                    "mr_td": q["mr_td"], "mr_config_id": q["mr_config_id"], "mr_owner": q["mr_owner"],
                    "mr_owner_config": q["mr_owner_config"], "report_data": "00" * 64}}},
       "tpm_policy": {"reset_count": 1, "restart_count": 0},
       "filehashes": [[sys.argv[3], sys.argv[4]], ["/usr/bin/never-ran", "ab" * 32]]}
json.dump(doc, open(sys.argv[2], "w"))
EOF
expect 0 "cvm snapshot --cosmian (TDX policy from the VM's quote)" \
	sv_snapshot "$tmp/tdx" "$tmp/cos-snap.json" --cosmian "$tmp/cos-tdx.json"
has "2 of its 2 (path, digest) pairs were new to the reference set" "cvm snapshot --cosmian (TDX)"
# The next IMA entry is measured: the plain snapshot rejects it, the one
# carrying the Cosmian file hashes accepts it.
sv_extend $((SV_QUOTED + 1)) $((SV_QUOTED + 1))
expect 3 "cvm verify (plain snapshot) after a later measurement" sv_verify "$tmp/tdx" "$tmp/plain.json"
has "not in the snapshot: $later (sha256:$later_digest)" "cvm verify (plain)"
expect 0 "cvm verify (with the Cosmian file hashes) after a later measurement" \
	sv_verify "$tmp/tdx" "$tmp/cos-snap.json"
# Field mismatches, each named.
python3 - "$tmp/cos-tdx.json" "$tmp" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["tee_policy"]["Tdx"]
a = json.loads(json.dumps(d)); a["tee_policy"]["Tdx"]["body"]["mr_td"] = "11" * 48
json.dump(a, open(sys.argv[2] + "/bad-mrtd.json", "w"))
b = json.loads(json.dumps(d)); b["tee_policy"]["Tdx"]["header"]["minimum_qe_svn"] = 65535
json.dump(b, open(sys.argv[2] + "/bad-qesvn.json", "w"))
EOF
expect 3 "cvm snapshot --cosmian with another mr_td" sv_snapshot "$tmp/tdx" "$tmp/x.json" --cosmian "$tmp/bad-mrtd.json"
has "mr_td (snapshot 1111" "a changed mr_td"
expect 3 "cvm snapshot --cosmian with a QE SVN floor above the quote's" \
	sv_snapshot "$tmp/tdx" "$tmp/x.json" --cosmian "$tmp/bad-qesvn.json"
has "minimum_qe_svn (snapshot >= 65535" "a QE SVN floor"
[ ! -e "$tmp/x.json" ] && pass || fail "a snapshot was written for a VM that breaks the Cosmian policy"
expect 3 "cvm snapshot --cosmian of an SEV policy against a TDX VM" \
	sv_snapshot "$tmp/tdx" "$tmp/x.json" --cosmian "$tmp/sample.json"
has "the Cosmian snapshot is of a SEV-SNP guest, the VM is a TDX guest" "platform mismatch"

# --- malformed documents ---
bad() { # bad NAME PYTHON-EDIT EXPECTED-TEXT
	python3 - "$tmp/sample.json" "$tmp/$1.json" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))
EOF
	expect 1 "cvm snapshot show of $1" "$bin/cvm" snapshot show "$tmp/$1.json"
	has "$3" "$1"
}
bad unknown-field 'd["extra"] = 1' 'an unknown field "extra"'
bad short-measurement 'd["tee_policy"]["Sev"]["measurement"] = "00" * 47' 'tee_policy.Sev.measurement is not 48 bytes'
bad sgx 'd["tee_policy"] = {"Sgx": {}}' 'a snapshot of an SGX enclave'
bad bad-digest 'd["filehashes"] = [["/bin/x", "xyz"]]' '"filehashes"[0] is not [path, digest]'
bad upper-hex 'd["tee_policy"]["Sev"]["family_id"] = "AB" * 16' 'tee_policy.Sev.family_id is not 16 bytes of lowercase hex'
sv_finish "$NAME"
