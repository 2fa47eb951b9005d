#!/usr/bin/env bash
# cvm-verifierd --verify FILE answers dstack's POST /verify bodies (exit 0
# valid, 3 not valid, 1 error), as the server would:
#  - dstack's fixtures F-D2 (GetQuote form) and F-D1 (attestation form) with
#    an empty cache and no upstream: exit 3, quote_verified and
#    os_image_hash_verified false with a reason naming the quote, while
#    tee_variant, report_data and app_info (compose_hash, MRTD) are those of
#    the fixture and the measurement document's comparison is a passed step;
#  - {} is a verdict (exit 3, a reason), not a bad request; a body that is
#    not JSON is an error (exit 1);
#  - cvm sim evidence of the F-D2 guest (its two-pass MRTD, its RTMR0..2 event
#    digests, its runtime events into RTMR3, its report_data), with the sim's
#    collateral imported into the cache and the sim root configured as
#    [trust] intel_root: exit 0, is_valid, os_image_hash_verified, not
#    acpi_tables_verified, tee_variant dstack-tdx, the anchor named as
#    configured; without the root configured the same body is not valid.
# Needs: $CVM_BIN/cvm-verifierd (with --verify and --import), $CVM_BIN/cvm
# (sim), python3.
set -euo pipefail

BIN="${CVM_BIN:-build/bin}"
VD="$BIN/cvm-verifierd"
CVM="$BIN/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
FIX=compat/verifier/dstack-verifier-fixtures
vectors_require "$FIX/tdx-lite-getquote.json" "$FIX/tdx-lite-attestation.json"

if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to read and build the JSON bodies" >&2
	exit 77
fi
for b in "$VD" "$CVM"; do
	if [ ! -x "$b" ]; then
		echo "FAIL: $b is missing or not executable (set CVM_BIN)" >&2
		exit 1
	fi
done
if ! "$VD" --help 2>&1 | grep -q -- '--verify'; then
	echo "SKIP: $VD has no --verify option yet (cvm-verifierd's main.c from the verifierd work is not" \
		"in this build)" >&2
	exit 77
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verifierd-dstack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# verify BODY CONF...: runs --verify, keeps stdout in $work/out.json, sets rc.
verify() {
	local body="$1"
	shift
	rc=0
	"$VD" "$@" --verify "$body" >"$work/out.json" 2>"$work/err.txt" || rc=$?
}

# check FILE PYTHON-EXPR...: each expression over the answer `a` must hold.
check() {
	local what="$1"
	shift
	if ! python3 - "$work/out.json" "$@" <<'EOF'; then
import json, sys
a = json.load(open(sys.argv[1]))
d = a.get("details", {})
def step(name):
    for s in d.get("steps", []):
        if s["name"] == name:
            return s["ok"]
    return None
for expr in sys.argv[2:]:
    if not eval(expr):
        print("  does not hold: " + expr, file=sys.stderr)
        print("  answer: " + json.dumps(a)[:2000], file=sys.stderr)
        sys.exit(1)
EOF
		fail "$what"
	fi
}

cat >"$work/empty.conf" <<EOF
[upstream]
offline = true
EOF
mkdir -p "$work/cache-empty"
fixture_checks=(
	'a["is_valid"] is False'
	'd["quote_verified"] is False and d["os_image_hash_verified"] is False'
	'd["acpi_tables_verified"] is False'
	'a["reason"].startswith("quote:")'
	'd["tee_variant"] == "dstack-tdx"'
	'd["report_data"].startswith("646970313a3a")'
	'd["app_info"]["compose_hash"] == "86b0e55f2fa8e4fb69d890f14f54d5612707646e2573d54e0d2ddaaade77caa9"'
	'd["app_info"]["mrtd"].startswith("fd685522ce791dfe")'
	'step("os mrtd") is True and step("os rtmr1") is True and step("os rtmr2") is True'
	'd["os_image_is_dev"] is None and "os_image_version" in d'
)
for f in tdx-lite-getquote.json tdx-lite-attestation.json; do
	verify "$VECTORS/$FIX/$f" --config "$work/empty.conf" --cache "$work/cache-empty"
	[ "$rc" = 3 ] || fail "$f: exit $rc, want 3 (not valid): $(cat "$work/err.txt")"
	check "$f: the fixture's verdict without collateral" "${fixture_checks[@]}"
done

printf '{}' >"$work/empty.json"
verify "$work/empty.json" --config "$work/empty.conf" --cache "$work/cache-empty"
[ "$rc" = 3 ] || fail "{}: exit $rc, want 3"
check "{}: a verdict with a reason" 'a["is_valid"] is False' 'len(a["reason"]) > 10'

printf 'not json' >"$work/bad.json"
verify "$work/bad.json" --config "$work/empty.conf" --cache "$work/cache-empty"
[ "$rc" = 1 ] || fail "a body that is not JSON: exit $rc, want 1"

# The full verdict on simulated evidence of the F-D2 guest.
now=$(date +%s)
mrtd=fd685522ce791dfef67414614eb07d03fc07a32c5a66f36288b329dab92b724b1564c73d436ffb9ea84488c51ac5a1c5
"$CVM" sim init "$work/sim" --mrtd "$mrtd" >/dev/null
python3 - "$VECTORS/$FIX/tdx-lite-getquote.json" >"$work/extends.txt" <<'EOF'
import hashlib, json, struct, sys
req = json.load(open(sys.argv[1]))
for e in json.loads(req["event_log"]):
    if e["event_type"] == 0x08000001:
        pre = struct.pack("<I", 0x08000001) + b":" + e["event"].encode() + b":" + bytes.fromhex(e["event_payload"])
        d = hashlib.sha384(pre).hexdigest()
    else:
        d = e["digest"]
    print(e["imr"], d)
print("report_data", req["report_data"])
EOF
while read -r imr digest; do
	if [ "$imr" = report_data ]; then
		rd="$digest"
		continue
	fi
	"$CVM" sim extend "$work/sim" --rtmr "$imr" --digest "$digest" >/dev/null
done <"$work/extends.txt"
"$CVM" sim quote "$work/sim" --report-data "$rd" --out "$work/sim-quote.bin" >/dev/null
python3 - "$VECTORS/$FIX/tdx-lite-getquote.json" "$work/sim-quote.bin" >"$work/sim.json" <<'EOF'
import json, sys
req = json.load(open(sys.argv[1]))
req["quote"] = open(sys.argv[2], "rb").read().hex()
print(json.dumps(req))
EOF
root="$work/sim/collateral/tdx/intel_sgx_root_ca.der"
cat >"$work/sim.conf" <<EOF
[upstream]
offline = true
[trust]
intel_root = $root
EOF
mkdir -p "$work/cache"
"$VD" --config "$work/sim.conf" --cache "$work/cache" --at "$now" --import "$work/sim/collateral/tdx" >/dev/null
verify "$work/sim.json" --config "$work/sim.conf" --cache "$work/cache" --at "$now"
[ "$rc" = 0 ] || fail "sim evidence with its root configured: exit $rc, want 0: $(cat "$work/err.txt")"
check "sim evidence with its root configured: valid" \
	'a["is_valid"] is True and a["reason"] is None' \
	'd["quote_verified"] and d["event_log_verified"] and d["os_image_hash_verified"]' \
	'd["acpi_tables_verified"] is False' \
	'd["tee_variant"] == "dstack-tdx"' \
	'"configured" in d["trust_anchor"] and "built in" not in d["trust_anchor"]' \
	'd.get("simulated") is True'
verify "$work/sim.json" --config "$work/empty.conf" --cache "$work/cache" --at "$now"
[ "$rc" = 3 ] || fail "sim evidence without its root configured: exit $rc, want 3"
check "sim evidence without its root: not valid" 'a["is_valid"] is False' 'd["os_image_hash_verified"] is False'

if [ "$fails" != 0 ]; then
	echo "verifierd_dstack: $fails check(s) failed" >&2
	exit 1
fi
echo "verifierd_dstack: ok"
