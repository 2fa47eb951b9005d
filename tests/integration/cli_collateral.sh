#!/usr/bin/env bash
# cvm collateral: usage errors (exit 2, a 'cvm collateral ...:' message),
# status output as text and JSON (shape and marks), where the default cache
# is, import of a vector folder, fetch through $CVM_INTEL_URL, and the
# cache line in cvm quote verify's verdict.
# Needs: $CVM_BIN/cvm, python3, curl, tests/vectors.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
# shellcheck source=tests/common/upstream.sh
. "$(dirname "$0")/../common/upstream.sh"
V="$VECTORS/tdx/dcapqvl-tdx-v4-uptodate"
vectors_require tdx/dcapqvl-tdx-v4-uptodate/quote.bin
for tool in python3 curl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool is needed (JSON checks; the vendor upstream)" >&2
		exit 1
	fi
done
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
cleanup() {
	upstream_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
unset CVM_INTEL_URL CVM_AMD_URL CVM_COLLATERAL_CACHE

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }
run() {
	local rc=0
	"$CVM" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	echo "$rc"
}
AT=1750330000 # inside every item's window of $V (issued 2025-06-19 ~10:30Z)
C="$tmp/cache"

# ---- usage errors: exit 2, one line naming the command ---------------------------------
usage_case() {
	local what="$1" want="$2" rc
	shift 2
	rc="$(run "$@")"
	if [ "$rc" = 2 ]; then
		pass
		grep -q "^cvm collateral[a-z ]*: .*$want" "$tmp/err" && pass ||
			fail "usage: $what: stderr lacks '$want': $(cat "$tmp/err")"
	else
		fail "usage: $what: exit $rc, want 2 (stderr: $(cat "$tmp/err"))"
	fi
}
usage_case "no subcommand" "no subcommand given" collateral
usage_case "unknown subcommand" "unknown subcommand 'frob'" collateral frob
usage_case "fetch with nothing" "exactly one of them" collateral fetch --cache "$C"
usage_case "fetch: files and --fmspc" "exactly one of them" collateral fetch "$V/quote.bin" --fmspc B0C06F000000 --tee tdx --cache "$C"
usage_case "fetch --fmspc without --tee" "needs --tee" collateral fetch --fmspc B0C06F000000 --cache "$C"
usage_case "fetch --fmspc short" "12 hex digits" collateral fetch --fmspc B0C06F --tee tdx --cache "$C"
usage_case "fetch --fmspc not hex" "12 hex digits" collateral fetch --fmspc B0C06F00000Z --tee tdx --cache "$C"
usage_case "fetch --tee other" "needs --tee tdx or --tee sgx" collateral fetch --fmspc B0C06F000000 --tee snp --cache "$C"
usage_case "fetch --ca other" "expected processor or platform" collateral fetch --fmspc B0C06F000000 --tee tdx --ca root --cache "$C"
usage_case "fetch --product other" "expected Milan, Genoa or Turin" collateral fetch --product Naples --cache "$C"
usage_case "fetch --vlek alone" "--vlek goes with --product" collateral fetch --vlek "$V/quote.bin" --cache "$C"
usage_case "fetch --offline" "fetch needs an upstream" collateral fetch "$V/quote.bin" --offline --cache "$C"
usage_case "fetch --timeout 0" "expected milliseconds" collateral fetch "$V/quote.bin" --timeout 0 --cache "$C"
usage_case "fetch --refresh-after x" "expected seconds" collateral fetch "$V/quote.bin" --refresh-after x --cache "$C"
usage_case "pack without FILE" "no FILE given" collateral pack --cache "$C"
usage_case "import with two FILEs" "more than one FILE given" collateral import a b --cache "$C"
usage_case "status with an argument" "unexpected argument 'x'" collateral status x --cache "$C"
usage_case "status --at not a number" "expected Unix seconds" collateral status --at yesterday --cache "$C"
usage_case "unknown option" "unknown option '--frob'" collateral status --frob
usage_case "option without value" "needs a value" collateral status --cache
rc="$(run quote verify "$V/quote.bin" --collateral "$V" --cache "$C")"
[ "$rc" = 2 ] && grep -q "cache options .* go without it" "$tmp/err" && pass ||
	fail "quote verify --collateral with --cache: exit $rc: $(cat "$tmp/err")"
rc="$(run help collateral)"
[ "$rc" = 0 ] && grep -q "cvm collateral fetch QUOTE_OR_REPORT" "$tmp/out" && grep -q "cvm collateral status" "$tmp/out" &&
	pass || fail "help collateral: exit $rc: $(head -3 "$tmp/out")"
rc="$(run --help)"
grep -q "^ *collateral" "$tmp/out" && pass || fail "cvm --help does not list collateral"

# ---- the library from here on ---------------------------------------------------------------

# ---- status: an empty cache ------------------------------------------------------------------
rc="$(run collateral status --cache "$C" --at "$AT")"
[ "$rc" = 0 ] && pass || fail "status on an empty cache: exit $rc: $(cat "$tmp/err")"
head -1 "$tmp/out" | grep -q "^item  *fetched  *expires  *age  *source" && pass || fail "status header: $(head -1 "$tmp/out")"
tail -1 "$tmp/out" | grep -q "^0 items$" && pass || fail "status on an empty cache: $(tail -1 "$tmp/out")"
rc="$(run collateral status --cache "$C" --at "$AT" --json)"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert set(j) == {"cache", "at", "count", "items"}, j
assert j["cache"] == sys.argv[2] and j["at"] == int(sys.argv[3]) and j["count"] == 0 and j["items"] == [], j' \
	"$tmp/out" "$C" "$AT" && pass || fail "status --json on an empty cache: $(cat "$tmp/out")"

# ---- import a vector folder, then status ---------------------------------------------------------
rc="$(run collateral import "$V" --cache "$C" --at "$AT")"
[ "$rc" = 0 ] && grep -q "^imported 4 items from '$V'" "$tmp/out" && pass ||
	fail "import the vector folder: exit $rc: $(cat "$tmp/out" "$tmp/err")"
rc="$(run collateral import "$V" --cache "$C" --at "$AT" -q)"
[ "$rc" = 0 ] && [ ! -s "$tmp/out" ] && [ ! -s "$tmp/err" ] && pass || fail "import -q printed: $(cat "$tmp/out" "$tmp/err")"
rc="$(run collateral status --cache "$C" --at "$AT" --json)"
python3 - "$tmp/out" "$AT" <<'PY' && pass || fail "status --json after import: $(cat "$tmp/out")"
import json, sys
j = json.load(open(sys.argv[1]))
at = int(sys.argv[2])
assert j["count"] == 4 == len(j["items"]), j
names = [i["name"] for i in j["items"]]
assert names == sorted(names), names
assert any("b0c06f000000" in n for n in names), names
for i in j["items"]:
    assert set(i) == {"name", "source", "fetched", "expires", "age_s", "stale", "expired", "anchor"}, i
    assert i["source"].startswith("dir:") and i["anchor"] == "Intel SGX Root CA (built in)", i
    assert i["stale"] is False and i["expired"] is False and i["age_s"] >= 0, i
PY
rc="$(run collateral status --cache "$C" --at "$AT")"
[ "$(grep -c "dir:$V" "$tmp/out")" = 4 ] && tail -1 "$tmp/out" | grep -q "^4 items$" && pass ||
	fail "status text after import: $(cat "$tmp/out")"
# marks: the PCK CRL's nextUpdate is 2025-07-19T10:00:35Z, the TCB info's 10:16:03Z
rc="$(run collateral status --cache "$C" --at 1752919300)"
grep -q "^sgx/pckcrl/platform .*EXPIRED" "$tmp/out" && pass || fail "status: the PCK CRL past its nextUpdate is not EXPIRED: $(cat "$tmp/out")"
grep "b0c06f000000" "$tmp/out" | grep -qv "EXPIRED" && pass || fail "status: the TCB info within its window is marked: $(cat "$tmp/out")"
rc="$(run collateral status --cache "$C" --at 1752919300 --json)"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
m = {i["name"]: i for i in j["items"]}
assert m["sgx/pckcrl/platform"]["expired"] is True, m
assert sum(i["expired"] for i in j["items"]) == 1, m' "$tmp/out" && pass || fail "status --json marks: $(cat "$tmp/out")"

# ---- the verdict says where the collateral came from -------------------------------------------
rc="$(run quote verify "$V/quote.bin" --cache "$C" --offline --at "$AT")"
[ "$rc" = 0 ] && grep -q "^collateral: cache, 4 items, age 0 s, expires 2025-07-19T10:00:35Z$" "$tmp/out" && pass ||
	fail "quote verify from the cache: exit $rc: $(cat "$tmp/out" "$tmp/err")"
rc="$(run quote verify "$V/quote.bin" --cache "$C" --offline --at "$AT" --json)"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
c = j["collateral"]
assert j["verdict"] == "accepted", j
assert set(c) == {"source", "stale", "items", "fetched", "age_s", "expires", "anchor", "upstream", "upstream_error"}, c
assert c["source"] == "cache" and c["stale"] is False and c["items"] == 4 and c["fetched"] == 0, c
assert c["anchor"] == "Intel SGX Root CA (built in)" and c["upstream"] is None and c["upstream_error"] is None, c' \
	"$tmp/out" && pass || fail "quote verify --json from the cache: $(cat "$tmp/out")"
rc="$(run quote verify "$V/quote.bin" --collateral "$V" --at "$AT" --json)"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert "collateral" not in j, j' "$tmp/out" && pass ||
	fail "quote verify --collateral DIR grew a collateral field"
rc="$(run quote verify "$V/quote.bin" --cache "$tmp/empty" --offline --at "$AT")"
[ "$rc" = 1 ] && grep -q "no usable collateral in the cache '$tmp/empty'" "$tmp/err" && grep -q "give --collateral DIR" "$tmp/err" &&
	pass || fail "quote verify on an empty offline cache: exit $rc: $(cat "$tmp/err")"

# attestation verify without --collateral: the cache too; an empty one fails the quote step saying why
VA="$VECTORS/compat/versioned-attestation/dstack-simulator/attestation.bin"
if [ -f "$VA" ]; then
	rc="$(run attestation verify "$VA" --cache "$tmp/empty" --offline --at "$AT")"
	[ "$rc" = 3 ] && grep -q "^  FAIL  quote: no --collateral given and none usable in the cache '$tmp/empty': " "$tmp/out" &&
		pass || fail "attestation verify on an empty cache: exit $rc: $(grep quote "$tmp/out")"
	rc="$(run attestation verify "$VA" --collateral "$V" --cache "$C")"
	[ "$rc" = 2 ] && pass || fail "attestation verify --collateral with --cache: exit $rc"
else
	fail "vector compat/versioned-attestation/dstack-simulator/attestation.bin is missing"
fi

# ---- the default cache: CVM_COLLATERAL_CACHE, then XDG_CACHE_HOME, then HOME -------------------------
if [ "$(id -u)" != 0 ]; then
	rc=0
	CVM_COLLATERAL_CACHE="$C" "$CVM" collateral status --at "$AT" --json >"$tmp/out" 2>"$tmp/err" || rc=$?
	[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["count"])' "$tmp/out")" = 4 ] && pass ||
		fail "CVM_COLLATERAL_CACHE is not the default: $(cat "$tmp/out" "$tmp/err")"
	XDG_CACHE_HOME="$tmp/xdg" "$CVM" collateral status --json >"$tmp/out" 2>&1 || true
	grep -q "\"cache\": \"$tmp/xdg/cvmkit/collateral\"" "$tmp/out" && pass || fail "XDG_CACHE_HOME: $(cat "$tmp/out")"
	env -u XDG_CACHE_HOME HOME="$tmp/home" "$CVM" collateral status --json >"$tmp/out" 2>&1 || true
	grep -q "\"cache\": \"$tmp/home/.cache/cvmkit/collateral\"" "$tmp/out" && pass || fail "HOME: $(cat "$tmp/out")"
else
	CVM_COLLATERAL_CACHE="$C" "$CVM" collateral status --at "$AT" --json >"$tmp/out" 2>&1 || true
	grep -q "\"count\": 4" "$tmp/out" && pass || fail "CVM_COLLATERAL_CACHE is not the default: $(cat "$tmp/out")"
	echo "NOTE: running as root: the default without CVM_COLLATERAL_CACHE is /var/cache/cvmkit/collateral, not checked"
fi

# ---- fetch through $CVM_INTEL_URL, and --fmspc ------------------------------------------------------
upstream_start "$tmp/up" --no-vectors --dir "$V"
F="$tmp/cache-f"
rc=0
CVM_INTEL_URL="$UPSTREAM_URL" "$CVM" collateral fetch --fmspc B0C06F000000 --tee tdx --ca platform --cache "$F" --at "$AT" \
	>"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && grep -q "^4 items fetched, 0 already cached$" "$tmp/out" && pass ||
	fail "fetch --fmspc through CVM_INTEL_URL: exit $rc: $(cat "$tmp/out" "$tmp/err")"
[ "$(grep -c ': upstream$' "$tmp/err")" = 4 ] && pass || fail "fetch: progress on stderr: $(cat "$tmp/err")"
[ "$(upstream_count /tdx/certification/v4/tcb?fmspc=)" = 1 ] && pass || fail "fetch --fmspc: TCB info requests: $(curl -s "$UPSTREAM_URL/_stats")"
rc=0
CVM_INTEL_URL="$UPSTREAM_URL" "$CVM" collateral fetch "$V/quote.bin" --cache "$F" --at "$AT" -q >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && [ ! -s "$tmp/out" ] && [ ! -s "$tmp/err" ] && pass || fail "fetch -q of a cached quote: exit $rc: $(cat "$tmp/out" "$tmp/err")"
rc=0
"$CVM" collateral fetch --fmspc 00000000AB00 --tee tdx --cache "$F" --intel-url "$UPSTREAM_URL" --at "$AT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q "tdx/tcb/00000000ab00" "$tmp/err" && pass || fail "fetch of an unknown FMSPC: exit $rc: $(cat "$tmp/err")"
rc=0
"$CVM" collateral fetch "$V/quote.bin" --cache "$tmp/cache-g" --at "$AT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -qi "upstream" "$tmp/err" && pass || fail "fetch without an upstream: exit $rc: $(cat "$tmp/err")"
rc=0
"$CVM" collateral fetch "$tmp/nope.bin" --cache "$F" --intel-url "$UPSTREAM_URL" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q "cannot read quote or report '$tmp/nope.bin'" "$tmp/err" && pass || fail "fetch of a missing file: exit $rc: $(cat "$tmp/err")"
rc=0
"$CVM" collateral import "$tmp/nope" --cache "$F" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" != 0 ] && grep -q "'$tmp/nope' refused, nothing imported" "$tmp/err" && pass || fail "import of a missing file: exit $rc: $(cat "$tmp/err")"

echo "cli_collateral: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
