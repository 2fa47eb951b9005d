#!/usr/bin/env bash
# The recorded VM boot (QEMU + OVMF + swtpm, tests/vectors/ima/vm-ovmf-tpmcrb-imang
# and eventlog/vm-ovmf-tpmcrb-imang) verifies end to end through the CLI:
#  - the quote over sha256:0-10, with its AK and nonce, against PCRs 0-9
#    replayed from the firmware event log and PCR 10 replayed from the IMA
#    list (binary and ascii): accepted, covering exactly the IMA prefix the
#    manifest states (507 of 513 entries);
#  - the same with tpm2_quote's own PCR file and with the manifest's quoted
#    values; the two-bank quote (sha1+sha256) from the same logs;
#  - rejected: the PCRs read through sysfs after the quote (PCR 10 moved on),
#    the event log without the IMA list, an IMA list cut before the quoted
#    prefix, another nonce.
# Needs: $CVM_BIN/cvm, tests/vectors, python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
V="$VECTORS"
IMA="$V/ima/vm-ovmf-tpmcrb-imang"
Q="$IMA/quote"
EVL="$V/eventlog/vm-ovmf-tpmcrb-imang/eventlog.bin"

vectors_require ima/vm-ovmf-tpmcrb-imang/quote ima/manifest.json eventlog/vm-ovmf-tpmcrb-imang/eventlog.bin
if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to read the manifests and the JSON output" >&2
	exit 77
fi
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }
expect_rc() {
	local want="$1" what="$2" rc=0
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$what: exit $rc, expected $want"
		sed 's/^/    /' "$tmp/out" "$tmp/err" >&2
		return 1
	fi
	pass
}

# What the manifest states about the quote.
python3 - "$V/ima/manifest.json" "$tmp" <<'EOF' || { echo "FAIL: cannot read the manifest" >&2; exit 1; }
import json, sys
m = json.load(open(sys.argv[1]))
v = [x for x in m["vectors"] if x["name"] == "vm-ovmf-tpmcrb-imang"][0]
q = v["expected"]["quote"]
d = sys.argv[2]
open(d + "/nonce", "w").write(q["nonce"])
open(d + "/prefix", "w").write(str(q["quoted_pcr10_matches_ima_prefix_entries"]))
open(d + "/total", "w").write(str(q["total_ima_entries"]))
json.dump({"sha256": q["quoted_sha256"]}, open(d + "/quoted.json", "w"))
json.dump({"sha256": v["expected"]["stated"]["pcrs"]["sha256"]}, open(d + "/sysfs.json", "w"))
EOF
NONCE="$(cat "$tmp/nonce")"
PREFIX="$(cat "$tmp/prefix")"
TOTAL="$(cat "$tmp/total")"
[ "$NONCE" = "$(tr -d '\n' <"$Q/nonce.hex")" ] && pass || fail "nonce.hex and the manifest disagree"

verify() { # verify QUOTE_NAME ARGS...
	local n="$1"
	shift
	"$CVM" tpm verify --ak "$Q/ak.tpm2b_public" --attest "$Q/$n.msg" --sig "$Q/$n.sig" "$@"
}

for list in binary_runtime_measurements ascii_runtime_measurements; do
	if expect_rc 0 "quote from the event log and the $list" verify quote --nonce "$NONCE" --eventlog "$EVL" \
		--ima "$IMA/$list" --json; then
		python3 - "$tmp/out" "$PREFIX" "$TOTAL" <<'EOF' && pass || fail "$list: wrong IMA prefix or fields"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "accepted" and j["pcrs_checked"], j
assert j["ima"] == {"matched": True, "quoted_entries": int(sys.argv[2]), "total_entries": int(sys.argv[3])}, j["ima"]
assert j["attest"]["reset_count"] == 2 and j["attest"]["pcr_selection"] == "sha256:0-10", j["attest"]
assert j["ak"]["name"] == "000b5bf6ed598d0ed9555fb2e9b91dce700d68138db71d268f2d7148e8231e9e95cb", j["ak"]
EOF
	fi
done
expect_rc 0 "text output names the prefix" verify quote --nonce "$NONCE" --eventlog "$EVL" \
	--ima "$IMA/binary_runtime_measurements" &&
	grep -q "covers the first $PREFIX of the $TOTAL entries" "$tmp/out" && pass || fail "prefix not in the text output"
expect_rc 0 "the firmware log in the IMA folder is the same log" verify quote --nonce "$NONCE" \
	--eventlog "$IMA/binary_bios_measurements" --ima "$IMA/binary_runtime_measurements"
expect_rc 0 "two-bank quote from the logs" verify quote2 --nonce "$NONCE" --eventlog "$EVL" \
	--ima "$IMA/binary_runtime_measurements"
expect_rc 0 "tpm2_quote's PCR file" verify quote --nonce "$NONCE" --pcrs "$Q/quote.pcrs"
expect_rc 0 "the manifest's quoted values" verify quote --nonce "$NONCE" --pcrs "$tmp/quoted.json"
expect_rc 0 "PEM AK" "$CVM" tpm verify --ak "$Q/ak.pub" --attest "$Q/quote.msg" --sig "$Q/quote.sig" \
	--nonce "$NONCE" --pcrs "$Q/quote.pcrs"

# Rejections.
expect_rc 3 "sysfs PCRs read after the quote" verify quote --nonce "$NONCE" --pcrs "$tmp/sysfs.json" &&
	grep -q "FAIL  pcr_digest" "$tmp/out" && pass || fail "sysfs rejection not explained"
expect_rc 3 "event log without the IMA list" verify quote --nonce "$NONCE" --eventlog "$EVL"
head -n $((PREFIX - 1)) "$IMA/ascii_runtime_measurements" >"$tmp/short.ascii"
expect_rc 3 "an IMA list cut before the quoted prefix" verify quote --nonce "$NONCE" --eventlog "$EVL" \
	--ima "$tmp/short.ascii" && grep -q "no prefix of the $((PREFIX - 1)) entries" "$tmp/out" && pass ||
	fail "short IMA list not explained"
expect_rc 3 "another nonce" verify quote --nonce "${NONCE%?}0" --eventlog "$EVL" \
	--ima "$IMA/binary_runtime_measurements"
expect_rc 1 "an unreadable IMA list" verify quote --nonce "$NONCE" --eventlog "$EVL" --ima "$tmp/none"

echo "vm_boot_e2e: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
