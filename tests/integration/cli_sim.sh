#!/usr/bin/env bash
# The simulated TEE through the CLI:
#  - cvm sim init makes a platform (keys 0600, collateral in the vectors'
#    layout); init refuses a used folder;
#  - cvm sim quote writes a TDX v4 quote that cvm quote verify accepts with
#    --root DIR/collateral/tdx/intel_sgx_root_ca.der and rejects without it;
#    the first line of every verdict (accepted or rejected) says SIMULATED,
#    and the JSON says "simulated": true (a real vector's says false);
#  - RTMR3 extensions by cvm sim extend are reproduced by an independent
#    replay (SHA-384 with python3's hashlib) and appear in the next quote;
#  - the quote binds the report data it was asked for;
#  - usage errors exit 2.
# Needs: $CVM_BIN/cvm, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
V="${CVM_VECTORS_DIR:-}"

if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to replay RTMR3 and read the JSON output" >&2
	exit 77
fi
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }

# expect_rc WANT CMD...: runs CMD, records its output in $tmp/out.
expect_rc() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "'$*' exited $rc, expected $want: $(head -c 600 "$tmp/err") $(head -c 600 "$tmp/out")"
		return 1
	fi
	pass
}

D="$tmp/platform"
MRTD=$(python3 -c 'print("ab" * 48)')
expect_rc 0 "$CVM" sim init "$D" --mrtd "$MRTD"
for f in tcb_info.json qe_identity.json tcb_info_issuer_chain.pem qe_identity_issuer_chain.pem \
	pck_crl_issuer_chain.pem pck_crl.der root_ca_crl.der intel_sgx_root_ca.der; do
	[ -s "$D/collateral/tdx/$f" ] && pass || fail "sim init made no $f"
done
for k in root pck_ca pck tcb_signer; do
	mode=$(stat -c %a "$D/keys/$k.key")
	[ "$mode" = 600 ] && pass || fail "keys/$k.key has mode $mode, expected 600"
done
expect_rc 1 "$CVM" sim init "$D" && { grep -q "not empty" "$tmp/err" && pass || fail "init on a used folder: $(cat "$tmp/err")"; }

ROOT="$D/collateral/tdx/intel_sgx_root_ca.der"
RD=$(python3 -c 'print("".join("%02x" % ((7 * i + 1) & 255) for i in range(64)))')
expect_rc 0 "$CVM" sim quote "$D" --report-data "$RD" --out "$tmp/q1.bin"

# accepted with the simulator's root, and the first line says so
expect_rc 0 "$CVM" quote verify "$tmp/q1.bin" --collateral "$D/collateral/tdx" --root "$ROOT"
first=$(head -n 1 "$tmp/out")
case "$first" in
"SIMULATED TEE:"*) pass ;;
*) fail "first line of an accepted simulated verdict: '$first'" ;;
esac
tail -n 1 "$tmp/out" | grep -q '^verdict: accepted (TDX, TCB UpToDate' && pass || fail "verdict: $(tail -n 1 "$tmp/out")"

# rejected against Intel's built-in root, and still labelled
expect_rc 3 "$CVM" quote verify "$tmp/q1.bin" --collateral "$D/collateral/tdx"
first=$(head -n 1 "$tmp/out")
case "$first" in
"SIMULATED TEE:"*) pass ;;
*) fail "first line of a rejected simulated verdict: '$first'" ;;
esac
grep -q '^verdict: rejected' "$tmp/out" && pass || fail "no rejection line: $(cat "$tmp/out")"

# -q still labels it
expect_rc 0 "$CVM" -q quote verify "$tmp/q1.bin" --collateral "$D/collateral/tdx" --root "$ROOT"
head -n 1 "$tmp/out" | grep -q '^SIMULATED TEE:' && pass || fail "-q output: $(cat "$tmp/out")"

# JSON: "simulated": true, report data bound
expect_rc 0 "$CVM" quote verify "$tmp/q1.bin" --collateral "$D/collateral/tdx" --root "$ROOT" --json
python3 - "$tmp/out" "$RD" "$MRTD" <<'PY' && pass || fail "JSON verdict of the simulated quote"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["simulated"] is True, o.get("simulated")
assert o["verdict"] == "accepted", o["verdict"]
body = o.get("body") or o
def find(d, key):
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            r = find(v, key)
            if r is not None:
                return r
    return None
assert find(o, "report_data") == sys.argv[2], find(o, "report_data")
assert find(o, "mr_td") == sys.argv[3], find(o, "mr_td")
PY

# a real vector is not labelled
if [ -n "$V" ] && [ -d "$V/tdx/dcapqvl-tdx-v4-uptodate" ]; then
	vd="$V/tdx/dcapqvl-tdx-v4-uptodate"
	at=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at_unix"])' "$vd/manifest.json")
	expect_rc 0 "$CVM" quote verify "$vd/quote.bin" --collateral "$vd" --at "$at" --json
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["simulated"] is False' "$tmp/out" &&
		pass || fail "a real vector's JSON is not simulated:false"
	expect_rc 0 "$CVM" quote verify "$vd/quote.bin" --collateral "$vd" --at "$at"
	head -n 1 "$tmp/out" | grep -q SIMULATED && fail "a real vector was labelled SIMULATED" || pass
else
	echo "note: vectors not found; the real-vector label check was not run" >&2
fi

# RTMR3: extend three times, replay independently, compare with show and
# with the next quote
digests=()
for i in 1 2 3; do
	digests+=("$(python3 -c 'import hashlib,sys; print(hashlib.sha384(("event %s" % sys.argv[1]).encode()).hexdigest())' "$i")")
done
for d in "${digests[@]}"; do
	expect_rc 0 "$CVM" sim extend "$D" --rtmr 3 --digest "$d"
done
want=$(python3 - "${digests[@]}" <<'PY'
import hashlib, sys
r = bytes(48)
for d in sys.argv[1:]:
    r = hashlib.sha384(r + bytes.fromhex(d)).digest()
print(r.hex())
PY
)
grep -q "^rtmr3: $want\$" "$tmp/out" && pass || fail "extend printed $(cat "$tmp/out"), replay gives $want"
expect_rc 0 "$CVM" sim show "$D" --json
python3 - "$tmp/out" "$want" "$MRTD" <<'PY' && pass || fail "sim show --json"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["simulated"] is True
assert o["rtmr"][3] == sys.argv[2], o["rtmr"][3]
assert o["rtmr"][0] == "00" * 48
assert o["mrtd"] == sys.argv[3]
PY
expect_rc 0 "$CVM" sim quote "$D" --report-data 00 --out "$tmp/q2.bin"
expect_rc 0 "$CVM" quote verify "$tmp/q2.bin" --collateral "$D/collateral/tdx" --root "$ROOT" --json
python3 - "$tmp/out" "$want" <<'PY' && pass || fail "the quote after extending does not carry the replayed RTMR3"
import json, sys
o = json.load(open(sys.argv[1]))
def find(d, key):
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            r = find(v, key)
            if r is not None:
                return r
    return None
rt = find(o, "rtmr") or [find(o, "rtmr%d" % i) for i in range(4)]
assert rt[3] == sys.argv[2], rt
assert find(o, "report_data") == "00" * 64
PY

# refresh keeps quotes verifying
expect_rc 0 "$CVM" sim refresh "$D"
expect_rc 0 "$CVM" quote verify "$tmp/q2.bin" --collateral "$D/collateral/tdx" --root "$ROOT"

# usage errors
expect_rc 2 "$CVM" sim
expect_rc 2 "$CVM" sim frobnicate "$D"
expect_rc 2 "$CVM" sim extend "$D" --rtmr 4 --digest "${digests[0]}"
expect_rc 2 "$CVM" sim extend "$D" --rtmr 3 --digest abcd
expect_rc 2 "$CVM" sim quote "$D" --out "$tmp/x.bin"
expect_rc 2 "$CVM" sim quote "$D" --report-data "$(python3 -c 'print("00" * 65)')" --out "$tmp/x.bin"
expect_rc 1 "$CVM" sim quote "$tmp" --report-data 00 --out "$tmp/x.bin"
grep -q "not a simulator folder" "$tmp/err" && pass || fail "quote on a non-simulator folder: $(cat "$tmp/err")"
expect_rc 1 "$CVM" sim quote "$D" --report-data 00 --out "$tmp/x.bin" --snp

echo "cli_sim: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
