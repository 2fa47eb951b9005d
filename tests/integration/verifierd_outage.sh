#!/usr/bin/env bash
# cvm-verifierd through an upstream outage, with its background refresher:
#  - a cache whose items are all due for refresh (fetched 2 minutes before,
#    refresh_after 60 s) and an upstream that hangs: a verification is
#    answered at once from the cache (source "cache"), not after the
#    upstream's timeouts; the refresher's failed pass shows in /metrics and
#    the items stay as they were;
#  - the upstream comes back: the refresher fetches every due item anew
#    (the status lists them fetched at the service's time, from the
#    upstream) without any request asking;
#  - items not in the cache at all are still fetched inline by the request
#    that needs them (an empty cache);
#  - items close to their next update that were fetched moments ago are not
#    fetched again by the next call (the upstream had nothing newer);
#  - with refresh_check = 0 (no refresher) the same hanging upstream makes
#    the request wait for it: the contrast that shows what the refresher buys.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
# shellcheck source=tests/common/upstream.sh
. "$(dirname "$0")/../common/upstream.sh"
# shellcheck source=tests/common/verifierd.sh
. "$(dirname "$0")/../common/verifierd.sh"
for t in python3 curl; do
	command -v "$t" >/dev/null || { echo "verifierd_outage: FAIL: $t is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
vectors_require tdx/dcapqvl-tdx-v4-uptodate
V="$VECTORS/tdx/dcapqvl-tdx-v4-uptodate"
AT="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at_unix"])' "$V/manifest.json")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verifierd-outage.XXXXXX")"
cleanup() {
	vd_stop
	upstream_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
pass() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# the upstream serves this vector's collateral only (the same items, anew)
upstream_start "$tmp/up" --no-vectors --dir "$V"
U="$UPSTREAM_URL"

# start CONF_EXTRA...: a daemon over $tmp/cache at $AT with the upstream.
start() {
	{
		printf '[upstream]\npccs_url = %s\ntimeout_ms = 1000\nretries = 1\nrefresh_after = 60\n' "$U"
		printf '%s\n' "$@"
	} >"$tmp/verifierd.conf"
	vd_start "$tmp/log" 2 --config "$tmp/verifierd.conf" --cache "$tmp/cache" --at "$AT" || exit 1
	P="$VD_URL"
}

# verify QUOTE OUT: POST the raw quote; prints "STATUS SECONDS".
verify() {
	curl -sS -o "$2" -w '%{http_code} %{time_total}\n' --max-time 30 \
		-H 'Content-Type: application/octet-stream' --data-binary "@$1" "$P/cvmkit/v1/verify" || echo "000 30"
}
# jfield FILE EXPR: a Python expression over the JSON answer `d`.
jfield() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null || echo "?"; }
metric() { curl -fsS "$P/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# wait_metric NAME MIN SECONDS: until the metric reaches MIN.
wait_metric() {
	local v
	for _ in $(seq $(($3 * 10))); do
		v="$(metric "$1")"
		[ -n "$v" ] && [ "$v" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
status_json() { "$bin/cvm" collateral status --cache "$tmp/cache" --at "$AT" --json; }

# --- 1. all items due, the upstream hangs ---
"$bin/cvm" collateral import "$V" --cache "$tmp/cache" --at $((AT - 120)) >/dev/null 2>&1
status_json >"$tmp/before.json"
upstream_mode hang
start "refresh_check = 1"
read -r code secs < <(verify "$V/quote.bin" "$tmp/a1.json")
[ "$code" = 200 ] && [ "$(jfield "$tmp/a1.json" 'd["ok"]')" = True ] &&
	pass "a verification during the outage is answered ($secs s)" ||
	fail "during the outage: status $code, answer $(head -c 300 "$tmp/a1.json")"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1.0 else 1)" "$secs" &&
	pass "it did not wait on the hanging upstream ($secs s < 1 s)" ||
	fail "it took $secs s: the request waited on the upstream (timeout 1 s x 2 tries)"
[ "$(jfield "$tmp/a1.json" 'd["collateral"]["source"]')" = cache ] &&
	[ "$(jfield "$tmp/a1.json" 'd["collateral"]["age_seconds"]')" = 120 ] &&
	pass "its verdict says the collateral came from the cache, 120 s old" ||
	fail "collateral in the verdict: $(jfield "$tmp/a1.json" 'd["collateral"]')"
wait_metric 'cvm_verifierd_refresh_items_total{result="failed"}' 1 15 &&
	pass "the refresher's pass against the hanging upstream failed and says so in /metrics" ||
	fail "no failed refresh in /metrics: $(curl -fsS "$P/metrics" | grep refresh)"
status_json >"$tmp/during.json"
cmp -s "$tmp/before.json" "$tmp/during.json" &&
	pass "the cached items are unchanged through the failed refresh" ||
	fail "the cache changed during the outage: $(diff "$tmp/before.json" "$tmp/during.json" | head -5)"

# --- 2. the upstream is back: the refresher refreshes, unasked ---
upstream_reset_stats
upstream_mode ok
wait_metric 'cvm_verifierd_refresh_items_total{result="refreshed"}' 4 20 &&
	pass "the refresher fetched the 4 due items once the upstream was back" ||
	fail "refreshed items: $(metric 'cvm_verifierd_refresh_items_total{result="refreshed"}'), log: $(tail -5 "$tmp/log")"
status_json >"$tmp/after.json"
python3 - "$tmp/after.json" "$AT" "$U" <<'PY' && pass "the status lists every item fetched at the service's time from the upstream" || fail "status after the refresh: $(head -c 600 "$tmp/after.json")"
import json, sys
s = json.load(open(sys.argv[1]))
items = s["items"]
assert len(items) == 4, len(items)
for it in items:
    assert it["age_s"] == 0, it
    assert it["source"].startswith(sys.argv[3] + "/"), it
PY
n="$(upstream_count "")"
[ "$n" -ge 4 ] && pass "the upstream saw $n requests, all from the refresher (no verification ran)" ||
	fail "the upstream saw $n requests"
read -r code secs < <(verify "$V/quote.bin" "$tmp/a2.json")
[ "$code" = 200 ] && [ "$(jfield "$tmp/a2.json" 'd["collateral"]["age_seconds"]')" = 0 ] &&
	pass "the next verification uses the refreshed items (age 0)" ||
	fail "after the refresh: status $code, collateral $(jfield "$tmp/a2.json" 'd["collateral"]')"

# --- 3. items never cached are fetched by the request that needs them ---
vd_stop
rm -rf "$tmp/cache"
upstream_reset_stats
start "refresh_check = 1"
read -r code secs < <(verify "$V/quote.bin" "$tmp/a3.json")
[ "$code" = 200 ] && [ "$(jfield "$tmp/a3.json" 'd["collateral"]["source"]')" = upstream ] &&
	pass "with an empty cache the request fetched its collateral inline ($secs s)" ||
	fail "empty cache: status $code, answer $(head -c 400 "$tmp/a3.json")"
vd_stop

# --- 4. without a refresher, the same outage makes the request wait ---
rm -rf "$tmp/cache"
"$bin/cvm" collateral import "$V" --cache "$tmp/cache" --at $((AT - 120)) >/dev/null 2>&1
upstream_mode hang
start "refresh_check = 0"
read -r code secs < <(verify "$V/quote.bin" "$tmp/a4.json")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 1.0 else 1)" "$secs" &&
	[ "$(jfield "$tmp/a4.json" 'd["collateral"]["source"]')" = stale ] &&
	pass "without the refresher the request waited on the upstream ($secs s) and was served stale" ||
	fail "without the refresher: status $code in $secs s, collateral $(jfield "$tmp/a4.json" 'd["collateral"]')"
grep -q 'refresher=no' "$tmp/log" && pass "the log says no refresher runs" || fail "log: $(grep '"start"\|start' "$tmp/log" | head -2)"
vd_stop

# --- 5. no refetch storm: the vector's items are within 7 days of their
# next update (never "current" by that rule), yet a call right after a fetch
# uses them (one of them expires a second after the vector's time: the
# same time for both calls) ---
upstream_mode ok
rm -rf "$tmp/c5"
upstream_reset_stats
"$bin/cvm" quote verify "$V/quote.bin" --cache "$tmp/c5" --intel-url "$U" --at "$AT" -q >/dev/null 2>&1 || true
n1="$(upstream_count "")"
"$bin/cvm" quote verify "$V/quote.bin" --cache "$tmp/c5" --intel-url "$U" --at "$AT" -q >/dev/null 2>&1 || true
n2="$(upstream_count "")"
[ "$n1" -ge 4 ] && [ "$n2" = "$n1" ] &&
	pass "a second call right after fetched nothing ($n1 requests, then none)" ||
	fail "upstream requests: $n1 for the first call, $((n2 - n1)) more for the second"

if [ "$failures" -ne 0 ]; then
	echo "verifierd_outage: $failures check(s) failed" >&2
	exit 1
fi
echo "verifierd_outage: all checks passed"
