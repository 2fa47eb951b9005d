#!/usr/bin/env bash
# The collateral cache through an outage of its upstream, against the local
# vendor upstream (tests/common/vendor_upstream.py) serving real vectors:
#  1. the upstream itself answers as Intel's PCS/PCCS v4 and AMD's KDS do
#     (paths, parameters, headers, bodies byte for byte, 400/404), and each
#     failure mode does what it says (checked with curl, independent of cvm);
#  2. cvm collateral fetch and cvm quote verify fill the cache; a verify on a
#     filled cache makes no upstream request;
#  3. the cache never stores a badsig or an expired item (status shows nothing
#     new, verify fails with a clear reason), and a bad refresh never replaces
#     a good item;
#  4. with the upstream answering 500, 429 + Retry-After, hanging or resetting,
#     verify still passes from the cache and says stale with the age; the
#     Retry-After is honoured (timed) and bounded; the hang is cut by --timeout;
#  5. the upstream comes back: the next call refreshes (a request is counted)
#     and the verdict is no longer stale;
#  6. N concurrent cvm quote verify processes on an empty cache make one
#     upstream request per item.
# Needs: $CVM_BIN/cvm, python3, curl, tests/vectors.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
# shellcheck source=tests/common/upstream.sh
. "$(dirname "$0")/../common/upstream.sh"
V="$VECTORS/tdx/dcapqvl-tdx-v4-uptodate"
OLD="$VECTORS/tdx/zkdcap-tdx-v4-outofdate" # an older generation of the TD_QE identity: the expired one
SNPV="$VECTORS/snp/trustee-milan-vcek"
vectors_require tdx/dcapqvl-tdx-v4-uptodate/quote.bin tdx/zkdcap-tdx-v4-outofdate/qe_identity.json \
	snp/trustee-milan-vcek/report.bin snp/trustee-milan-vlek/cert_chain.pem
for tool in python3 curl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool is needed (the vendor upstream; its requests)" >&2
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

# Inside every item's window (TCB info and QE identity issued 2025-06-19
# ~10:30Z, next update 2025-07-19): not yet due for a refresh-ahead.
AT=1750330000
Q="$V/quote.bin"

upstream_start "$tmp/up" --no-vectors --dir "$V" --dir "$OLD" --dir "$SNPV" --dir "$VECTORS/snp/trustee-milan-vlek"
U="$UPSTREAM_URL"

# ---- 1. the upstream itself --------------------------------------------------
# http GET URL: writes the body to $tmp/body, the headers to $tmp/hdr, prints the status
http() {
	local rc=0 code
	code="$(curl -sS --max-time 10 -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' "$1" 2>/dev/null)" || rc=$?
	if [ "$rc" != 0 ]; then echo "curl-$rc"; else echo "$code"; fi
}
hdr() { python3 -c '
import sys, urllib.parse
name = sys.argv[2].lower()
for line in open(sys.argv[1], encoding="latin-1"):
    k, _, v = line.partition(":")
    if k.strip().lower() == name:
        print(urllib.parse.unquote(v.strip()) if len(sys.argv) > 3 else v.strip())
        break' "$tmp/hdr" "$@"; }
same_file() { cmp -s "$1" "$2"; }

s="$(http "$U/tdx/certification/v4/tcb?fmspc=B0C06F000000")"
[ "$s" = 200 ] && pass || fail "upstream: TDX TCB info: status $s"
same_file "$tmp/body" "$V/tcb_info.json" && pass || fail "upstream: TDX TCB info body is not the vector's bytes"
[ "$(hdr TCB-Info-Issuer-Chain decode)" = "$(cat "$V/tcb_info_issuer_chain.pem")" ] && pass ||
	fail "upstream: TCB-Info-Issuer-Chain does not URL-decode to the vector's chain"
[ -n "$(hdr Request-ID)" ] && pass || fail "upstream: no Request-ID header"
[ "$(hdr Content-Type)" = application/json ] && pass || fail "upstream: TCB info Content-Type $(hdr Content-Type)"
s="$(http "$U/tdx/certification/v4/tcb?fmspc=b0c06f000000")"
[ "$s" = 200 ] && pass || fail "upstream: lower-case FMSPC: status $s (hex is case-insensitive)"
s="$(http "$U/tdx/certification/v4/tcb?fmspc=00000000AB00")"
[ "$s" = 404 ] && pass || fail "upstream: unknown FMSPC: status $s, want 404"
for bad in "fmspc=B0C06F0000" "fmspc=B0C06F00000G" "" "fmspc=B0C06F000000&update=sometimes"; do
	s="$(http "$U/tdx/certification/v4/tcb?$bad")"
	[ "$s" = 400 ] && pass || fail "upstream: malformed query '$bad': status $s, want 400"
done
[ -n "$(hdr Error-Code)" ] && pass || fail "upstream: a 400 has no Error-Code header"
s="$(http "$U/tdx/certification/v4/qe/identity")"
[ "$s" = 200 ] && same_file "$tmp/body" "$V/qe_identity.json" && pass ||
	fail "upstream: TD_QE identity: status $s or not the vector's bytes"
[ "$(hdr SGX-Enclave-Identity-Issuer-Chain decode)" = "$(cat "$V/qe_identity_issuer_chain.pem")" ] && pass ||
	fail "upstream: SGX-Enclave-Identity-Issuer-Chain"
s="$(http "$U/sgx/certification/v4/pckcrl?ca=platform&encoding=der")"
[ "$s" = 200 ] && same_file "$tmp/body" "$V/pck_crl.der" && pass ||
	fail "upstream: PCK CRL (platform, der): status $s or not the vector's bytes"
[ "$(hdr SGX-PCK-CRL-Issuer-Chain decode)" = "$(cat "$V/pck_crl_issuer_chain.pem")" ] && pass ||
	fail "upstream: SGX-PCK-CRL-Issuer-Chain"
s="$(http "$U/sgx/certification/v4/pckcrl?ca=platform")"
[ "$s" = 200 ] && head -1 "$tmp/body" | grep -q "BEGIN X509 CRL" && pass ||
	fail "upstream: PCK CRL without encoding is PEM: status $s"
s="$(http "$U/sgx/certification/v4/pckcrl?ca=sometimes")"
[ "$s" = 400 ] && pass || fail "upstream: pckcrl?ca=sometimes: status $s, want 400"
s="$(http "$U/sgx/certification/v4/rootcacrl")"
[ "$s" = 200 ] && same_file "$tmp/body" "$V/root_ca_crl.der" && pass || fail "upstream: rootcacrl: status $s"
s="$(http "$U/sgx/certification/v4/pckcert?encrypted_ppid=00&cpusvn=00&pcesvn=00&pceid=00")"
[ "$s" = 400 ] && pass || fail "upstream: pckcert with short parameters: status $s, want 400"
# SNP: the VCEK URL the report itself names (chip ID at 0x1A0, reported TCB at 0x180)
vurl="$(python3 -c '
import sys
r = open(sys.argv[1], "rb").read()
t = r[0x180:0x188]
print("/vcek/v1/Milan/%s?blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d" % (r[0x1A0:0x1E0].hex(), t[0], t[1], t[6], t[7]))' \
	"$SNPV/report.bin")"
s="$(http "$U$vurl")"
[ "$s" = 200 ] && same_file "$tmp/body" "$SNPV/vcek.der" && pass ||
	fail "upstream: the VCEK for the report's chip ID and TCB: status $s or not the vector's vcek.der"
s="$(http "$U${vurl/blSPL=/blSPL=9}")"
[ "$s" = 404 ] && pass || fail "upstream: a VCEK for another TCB: status $s, want 404"
s="$(http "$U/vcek/v1/Milan/abcd?blSPL=1&teeSPL=0&snpSPL=1&ucodeSPL=1")"
[ "$s" = 400 ] && pass || fail "upstream: a short hwid: status $s, want 400"
s="$(http "$U/vcek/v1/Milan/cert_chain")"
[ "$s" = 200 ] && same_file "$tmp/body" "$SNPV/cert_chain.pem" && pass || fail "upstream: Milan cert_chain: status $s"
s="$(http "$U/vlek/v1/Milan/cert_chain")"
[ "$s" = 200 ] && same_file "$tmp/body" "$VECTORS/snp/trustee-milan-vlek/cert_chain.pem" && pass ||
	fail "upstream: Milan VLEK cert_chain: status $s"
s="$(http "$U/vcek/v1/Naples/cert_chain")"
[ "$s" = 400 ] && pass || fail "upstream: an unknown product: status $s, want 400"

# the failure modes
upstream_mode 429 /tdx/ retry_after=7
s="$(http "$U/tdx/certification/v4/tcb?fmspc=B0C06F000000")"
[ "$s" = 429 ] && [ "$(hdr Retry-After)" = 7 ] && pass || fail "upstream: mode 429: status $s, Retry-After $(hdr Retry-After)"
s="$(http "$U/sgx/certification/v4/rootcacrl")"
[ "$s" = 200 ] && pass || fail "upstream: a mode for /tdx/ changed /sgx/: status $s"
upstream_mode 500 /tdx/
s="$(http "$U/tdx/certification/v4/qe/identity")"
[ "$s" = 500 ] && pass || fail "upstream: mode 500: status $s"
upstream_mode hang /tdx/
s=0
curl -sS --max-time 1 -o /dev/null "$U/tdx/certification/v4/qe/identity" 2>/dev/null || s="curl-$?"
[ "$s" = curl-28 ] && pass || fail "upstream: mode hang: curl gave $s, want a timeout (28)"
upstream_mode close /tdx/
s=0
curl -sS --max-time 5 -o /dev/null "$U/tdx/certification/v4/qe/identity" 2>/dev/null || s="curl-$?"
case "$s" in curl-52 | curl-56) pass ;; *) fail "upstream: mode close: curl gave $s, want a reset (52 or 56)" ;; esac
upstream_mode badsig /tdx/
s="$(http "$U/tdx/certification/v4/tcb?fmspc=B0C06F000000")"
python3 - "$tmp/body" "$V/tcb_info.json" <<'PY' && pass || fail "upstream: mode badsig: not the vector's body with one flipped bit in its signature"
import json, sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert len(a) == len(b)
diff = [i for i in range(len(a)) if a[i] != b[i]]
assert len(diff) == 1 and bin(a[diff[0]] ^ b[diff[0]]).count("1") in (1, 2), diff
sig = b.index(json.loads(b)["signature"].encode())
assert sig <= diff[0] < sig + len(json.loads(b)["signature"]), "the flip is not in the signature"
PY
upstream_mode badsig /sgx/certification/v4/pckcrl
s="$(http "$U/sgx/certification/v4/pckcrl?ca=platform&encoding=der")"
python3 -c '
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert len(a) == len(b) and sum(bin(x ^ y).count("1") for x, y in zip(a, b)) == 1' "$tmp/body" "$V/pck_crl.der" &&
	pass || fail "upstream: mode badsig on a DER CRL: not one flipped bit"
upstream_mode expired /tdx/certification/v4/qe
s="$(http "$U/tdx/certification/v4/qe/identity")"
[ "$s" = 200 ] && same_file "$tmp/body" "$OLD/qe_identity.json" && pass ||
	fail "upstream: mode expired: status $s or not the older generation's QE identity"
upstream_mode slow "" ms=400
t0=$(date +%s%N)
http "$U/sgx/certification/v4/rootcacrl" >/dev/null
el=$((($(date +%s%N) - t0) / 1000000))
[ "$el" -ge 400 ] && pass || fail "upstream: mode slow 400 ms answered in $el ms"
upstream_mode ok
upstream_reset_stats
http "$U/sgx/certification/v4/rootcacrl" >/dev/null
http "$U/sgx/certification/v4/rootcacrl" >/dev/null
[ "$(upstream_count /rootcacrl)" = 2 ] && [ "$(upstream_count "")" = 2 ] && pass ||
	fail "upstream: /_stats counts $(upstream_count /rootcacrl) rootcacrl requests of $(upstream_count "")"
upstream_reset_stats
echo "collateral_outage: the vendor upstream: $checks checks passed, $failures failed"
if [ "$failures" -ne 0 ]; then
	exit 1
fi

# ---- the cache ----------------------------------------------------------------------

# verify_json CACHE OUT ARGS...: cvm quote verify from the cache at $AT, JSON to OUT; prints the exit code
verify_json() {
	local cache="$1" out="$2" rc=0
	shift 2
	"$CVM" quote verify "$Q" --cache "$cache" --at "$AT" --json "$@" >"$out" 2>"$tmp/err" || rc=$?
	echo "$rc"
}
# jq_py FILE EXPR: prints a Python expression over the JSON in FILE (as j)
jq_py() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
status_count() { "$CVM" collateral status --cache "$1" --at "$AT" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }

# ---- 2. fill ------------------------------------------------------------------------
A="$tmp/cache-a"
rc=0
"$CVM" collateral fetch "$Q" --cache "$A" --intel-url "$U" --at "$AT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && pass || fail "fetch on an empty cache: exit $rc: $(cat "$tmp/err")"
n="$(upstream_count "")"
[ "$n" -ge 4 ] && pass || fail "fetch made $n upstream requests, want at least 4 (TCB info, QE identity, PCK CRL, root CRL)"
[ "$(status_count "$A")" = 4 ] && pass || fail "status after fetch: $(status_count "$A") items, want 4"
upstream_reset_stats
rc="$(verify_json "$A" "$tmp/v.json" --intel-url "$U")"
[ "$rc" = 0 ] && pass || fail "verify from the filled cache: exit $rc: $(cat "$tmp/err")"
[ "$(jq_py "$tmp/v.json" 'j["collateral"]["source"]')" = cache ] && [ "$(jq_py "$tmp/v.json" 'j["collateral"]["stale"]')" = False ] &&
	pass || fail "verify from the filled cache: collateral $(jq_py "$tmp/v.json" 'j.get("collateral")')"
[ "$(upstream_count "")" = 0 ] && pass || fail "verify on a filled cache made $(upstream_count "") upstream requests, want none"
"$CVM" quote verify "$Q" --cache "$A" --at "$AT" >"$tmp/out" 2>&1 || true
grep -q "^collateral: cache, 4 items, age" "$tmp/out" && pass || fail "verify text: no 'collateral: cache, 4 items, age' line: $(cat "$tmp/out")"
"$CVM" collateral status --cache "$A" --at "$AT" --json >"$tmp/status-a.json"

# ---- 3. a bad item is never stored --------------------------------------------------
upstream_mode badsig
C="$tmp/cache-c"
rc=0
"$CVM" collateral fetch "$Q" --cache "$C" --intel-url "$U" --at "$AT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" != 0 ] && pass || fail "fetch with every signature flipped: exit 0"
grep -qiE "signature|not validly signed" "$tmp/err" && pass ||
	fail "fetch with bad signatures does not name the signature: $(cat "$tmp/err")"
[ "$(status_count "$C")" = 0 ] && pass || fail "badsig: the cache stored $(status_count "$C") items"
rc="$(verify_json "$C" "$tmp/v.json" --intel-url "$U")"
[ "$rc" != 0 ] && pass || fail "verify with only badsig collateral passed"
grep -qiE "signature|not validly signed" "$tmp/err" && pass ||
	fail "verify with badsig collateral: the reason does not name the signature: $(cat "$tmp/err")"
# a refresh that brings bad items keeps the good ones (and serves them stale)
rc="$(verify_json "$A" "$tmp/v.json" --intel-url "$U" --refresh)"
[ "$rc" = 0 ] && [ "$(jq_py "$tmp/v.json" 'j["collateral"]["source"]')" = stale ] && pass ||
	fail "badsig refresh: exit $rc, collateral $(jq_py "$tmp/v.json" 'j.get("collateral")' 2>/dev/null)"
"$CVM" collateral status --cache "$A" --at "$AT" --json >"$tmp/status-a2.json"
cmp -s "$tmp/status-a.json" "$tmp/status-a2.json" && pass || fail "a badsig refresh changed the cached items"
upstream_mode ok
upstream_mode expired /tdx/certification/v4/qe
D="$tmp/cache-d"
rc=0
"$CVM" collateral fetch "$Q" --cache "$D" --intel-url "$U" --at "$AT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" != 0 ] && pass || fail "fetch of an expired QE identity: exit 0"
grep -qi "expire" "$tmp/err" && pass || fail "fetch of an expired item does not say so: $(cat "$tmp/err")"
"$CVM" collateral status --cache "$D" --at "$AT" --json >"$tmp/status-d.json"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["count"] == 3 and not any("qe" in i["name"] for i in j["items"]), j' "$tmp/status-d.json" && pass ||
	fail "expired: the cache holds $(cat "$tmp/status-d.json")"
rc="$(verify_json "$D" "$tmp/v.json" --intel-url "$U")"
[ "$rc" != 0 ] && grep -qi "expire" "$tmp/err" && pass || fail "verify with an expired QE identity: exit $rc: $(cat "$tmp/err")"
upstream_mode ok

# ---- 4. outages: verify passes from the cache, stale -------------------------------------
outage() {
	local what="$1" maxs="$2" rc t0 el
	shift 2
	t0=$(date +%s%N)
	rc="$(verify_json "$A" "$tmp/v.json" --intel-url "$U" --refresh "$@")"
	el=$((($(date +%s%N) - t0) / 1000000))
	if [ "$rc" != 0 ]; then
		fail "$what: verify from the cache failed: exit $rc: $(cat "$tmp/err")"
		return
	fi
	pass
	python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["collateral"]
assert c["source"] == "stale" and c["stale"] is True, c
assert isinstance(c["age_s"], int) and c["age_s"] >= 0, c
assert c["upstream_error"], c' "$tmp/v.json" && pass || fail "$what: verdict does not say stale with age and the upstream's error: $(cat "$tmp/v.json")"
	echo "collateral_outage: $what: verify from the cache took $el ms"
	[ "$el" -le $((maxs * 1000)) ] && pass || fail "$what: verify took $el ms, bound ${maxs} s"
	"$CVM" quote verify "$Q" --cache "$A" --at "$AT" --intel-url "$U" --refresh "$@" >"$tmp/out" 2>&1 || true
	grep -q "^collateral: stale, .*age [0-9]* s.*stale: the refresh failed" "$tmp/out" && pass ||
		fail "$what: text verdict: $(grep collateral "$tmp/out")"
}
upstream_mode 500
outage "500" 30
upstream_mode ok
upstream_reset_stats
upstream_mode 429 /tdx/certification/v4/tcb retry_after=2
outage "429 + Retry-After: 2" 30
python3 -c '
import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1] + "/_stats"))
t = s["times"].get("/tdx/certification/v4/tcb", [])[:4]  # the first verify: 1 try + 3 retries
assert len(t) == 4, t
gaps = [b - a for a, b in zip(t, t[1:])]
assert min(gaps) >= 1.9, gaps' "$U" && pass || fail "429: the retries did not wait Retry-After (2 s): $(curl -s "$U/_stats")"
upstream_mode ok
upstream_mode hang /tdx/certification/v4/tcb
outage "hang (--timeout 1000)" 30 --timeout 1000
upstream_mode ok
upstream_mode close /tdx/certification/v4/tcb
outage "connection reset" 30

# ---- 5. the upstream comes back --------------------------------------------------------------
# Time has moved on (--at is 60 s later) past a short refresh setting: the
# next call refreshes by itself, without --refresh.
upstream_mode ok
upstream_reset_stats
rc=0
"$CVM" quote verify "$Q" --cache "$A" --at $((AT + 60)) --json --intel-url "$U" --refresh-after 30 >"$tmp/v.json" \
	2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && pass || fail "upstream back: verify: exit $rc: $(cat "$tmp/err")"
[ "$(jq_py "$tmp/v.json" 'j["collateral"]["stale"]')" = False ] && [ "$(jq_py "$tmp/v.json" 'j["collateral"]["source"]')" = upstream ] &&
	pass || fail "upstream back: collateral $(jq_py "$tmp/v.json" 'j.get("collateral")' 2>/dev/null)"
[ "$(upstream_count /tdx/certification/v4/tcb)" -ge 1 ] && pass || fail "upstream back: no TCB info request counted"

# ---- 6. N concurrent verifies, one request per item ---------------------------------------
E="$tmp/cache-e"
upstream_reset_stats
upstream_mode slow "" ms=300
N=8
pids=()
for i in $(seq 1 $N); do
	"$CVM" quote verify "$Q" --cache "$E" --intel-url "$U" --at "$AT" -q >"$tmp/conc.$i" 2>&1 &
	pids+=($!)
done
ok=0
for p in "${pids[@]}"; do
	wait "$p" && ok=$((ok + 1))
done
[ "$ok" = "$N" ] && pass || fail "concurrent: $ok of $N verifies passed: $(cat "$tmp"/conc.*)"
python3 -c '
import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1] + "/_stats"))
assert s["total"] == 4 and all(n == 1 for n in s["requests"].values()), s["requests"]' "$U" && pass ||
	fail "concurrent: $N verifies on an empty cache made these requests (want one per item): $(curl -s "$U/_stats")"
upstream_mode ok
upstream_stop

# ---- 7. SEV-SNP: the same checks on AMD's KDS paths -------------------------------------------
# The real SNP vectors hold no AMD CRL, which every report's collateral needs,
# so a simulated platform stands in: its collateral/snp folder (VCEK, ASK+ARK
# chain, CRL signed by its mock ARK) is what the vendor upstream serves, its
# ARK is the configured AMD anchor (--root / --amd-root), and its report
# (version 3, so it names its product) is what is verified. An older generation
# of the CRL, re-signed by the same ARK key a year and more earlier
# (cvm sim refresh --at), is what the `expired` mode serves: valid signature,
# valid chain, only its window is past (shown: the same bytes store at a time
# inside that window).
# Platform at SAT: certificates from SAT-1y to SAT+10y, the CRL from SAT-1d to SAT+1y.
SAT=1750330000
"$CVM" -q sim init "$tmp/sim" --at "$SAT" >/dev/null
"$CVM" -q sim quote "$tmp/sim" --snp --report-data "$(printf '%0128d' 7)" --out "$tmp/snp.bin" >/dev/null
SD="$tmp/sim/collateral/snp"
ARK="$SD/ark.pem"
mkdir -p "$tmp/simold"
cp -r "$tmp/sim/." "$tmp/simold/"
"$CVM" -q sim refresh "$tmp/simold" --at $((SAT - 400 * 86400)) >/dev/null # its CRL: SAT-401d .. SAT-35d
cmp -s "$SD/vcek.der" "$tmp/simold/collateral/snp/vcek.der" && cmp -s "$SD/cert_chain.pem" "$tmp/simold/collateral/snp/cert_chain.pem" &&
	! cmp -s "$SD/crl.der" "$tmp/simold/collateral/snp/crl.der" && pass ||
	fail "snp: the refreshed old platform does not share the VCEK and chain, or its CRL is the same"
R="$tmp/snp.bin"
upstream_start "$tmp/up-snp" --no-vectors --dir "$SD" --dir "$tmp/simold/collateral/snp"
U="$UPSTREAM_URL"
# the report's own VCEK URL (chip ID at 0x1A0, reported TCB at 0x180, Milan layout)
svurl="$(python3 -c '
import sys
r = open(sys.argv[1], "rb").read()
t = r[0x180:0x188]
print("/vcek/v1/Milan/%s?blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d" % (r[0x1A0:0x1E0].hex(), t[0], t[1], t[6], t[7]))' "$R")"
svpath="${svurl%%\?*}"
s="$(http "$U$svurl")"
[ "$s" = 200 ] && same_file "$tmp/body" "$SD/vcek.der" && pass ||
	fail "snp upstream: the sim report's VCEK URL: status $s or not the platform's vcek.der"
s="$(http "$U/vcek/v1/Milan/crl")"
[ "$s" = 200 ] && same_file "$tmp/body" "$SD/crl.der" && pass ||
	fail "snp upstream: /vcek/v1/Milan/crl: status $s or not the current generation's crl.der"
upstream_reset_stats

# snp_verify CACHE OUT ARGS...: cvm quote verify of the SNP report from the cache, JSON to OUT; prints the exit code
snp_verify() {
	local cache="$1" out="$2" rc=0
	shift 2
	"$CVM" quote verify "$R" --cache "$cache" --root "$ARK" --at "$SAT" --json "$@" >"$out" 2>"$tmp/err" || rc=$?
	echo "$rc"
}
snp_status() { "$CVM" collateral status --cache "$1" --at "${2:-$SAT}" --json 2>/dev/null; }
snp_count() { snp_status "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }
# each item, its exact request
want_reqs="$svurl /vcek/v1/Milan/cert_chain /vcek/v1/Milan/crl"
reqs_are() { # prints nothing when /_stats holds exactly one request for each of $want_reqs and no other
	curl -fsS "$U/_stats" | python3 -c '
import json, sys
r = json.load(sys.stdin)["requests"]
want = sys.argv[1].split()
if sorted(r) != sorted(want) or any(n != 1 for n in r.values()):
    print(r)' "$want_reqs"
}

# fill: fetch, then a verify that makes no request
SA="$tmp/snp-a"
rc=0
"$CVM" collateral fetch "$R" --cache "$SA" --amd-url "$U" --amd-root "$ARK" --at "$SAT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && pass || fail "snp fetch on an empty cache: exit $rc: $(cat "$tmp/err")"
x="$(reqs_are)"
[ -z "$x" ] && pass || fail "snp fetch: the upstream saw $x, want one request each for $want_reqs"
[ "$(snp_count "$SA")" = 3 ] && pass || fail "snp status after fetch: $(snp_status "$SA")"
upstream_reset_stats
rc="$(snp_verify "$SA" "$tmp/v.json" --amd-url "$U")"
[ "$rc" = 0 ] && pass || fail "snp verify from the filled cache: exit $rc: $(cat "$tmp/err")"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "accepted" and j["tee"] == "snp", j.get("reason")
c = j["collateral"]
assert c["source"] == "cache" and c["stale"] is False and c["items"] == 3, c' "$tmp/v.json" && pass ||
	fail "snp verify from the filled cache: $(head -c 400 "$tmp/v.json")"
[ "$(upstream_count "")" = 0 ] && pass || fail "snp verify on a filled cache made $(upstream_count "") upstream requests"
snp_status "$SA" >"$tmp/snp-a.json"

# a bad signature on each item: nothing of it stored, the verify fails naming the signature
for what in VCEK:"$svpath" chain:/vcek/v1/Milan/cert_chain CRL:/vcek/v1/Milan/crl; do
	name="${what%%:*}"
	upstream_mode badsig "${what#*:}"
	SC="$tmp/snp-bad-$name"
	rc=0
	"$CVM" collateral fetch "$R" --cache "$SC" --amd-url "$U" --amd-root "$ARK" --at "$SAT" >"$tmp/out" 2>"$tmp/err" || rc=$?
	[ "$rc" = 3 ] && pass || fail "snp fetch with a badsig $name: exit $rc, want 3: $(cat "$tmp/err")"
	grep -qiE "signature|not validly signed" "$tmp/err" && pass ||
		fail "snp fetch with a badsig $name does not name the signature: $(cat "$tmp/err")"
	python3 -c '
import json, sys
items = [i["name"] for i in json.load(sys.stdin)["items"]]
n = sys.argv[1]
bad = {"VCEK": lambda x: not x.endswith(("/crl", "/cert_chain")), "chain": lambda x: x.endswith("/cert_chain"),
       "CRL": lambda x: x.endswith("/crl")}[n]
assert not any(bad(x) for x in items) and len(items) < 3, items' "$name" < <(snp_status "$SC") && pass ||
		fail "snp badsig $name: the cache holds $(snp_status "$SC")"
	rc="$(snp_verify "$SC" "$tmp/v.json" --amd-url "$U")"
	[ "$rc" != 0 ] && grep -qiE "signature|not validly signed" "$tmp/err" && pass ||
		fail "snp verify with a badsig $name passed or gave another reason: exit $rc: $(cat "$tmp/err")"
	# a refresh that brings the bad item keeps the good one (served stale)
	rc="$(snp_verify "$SA" "$tmp/v.json" --amd-url "$U" --refresh)"
	[ "$rc" = 0 ] && [ "$(jq_py "$tmp/v.json" 'j["collateral"]["source"]')" = stale ] && pass ||
		fail "snp badsig $name refresh: exit $rc, collateral $(jq_py "$tmp/v.json" 'j.get("collateral")' 2>/dev/null)"
	snp_status "$SA" >"$tmp/snp-a2.json"
	cmp -s "$tmp/snp-a.json" "$tmp/snp-a2.json" && pass || fail "snp: a badsig $name refresh changed the cached items"
	upstream_mode ok
done

# an expired CRL (the older generation, same ARK key): never stored
upstream_mode expired /vcek/v1/Milan/crl
s="$(http "$U/vcek/v1/Milan/crl")"
[ "$s" = 200 ] && same_file "$tmp/body" "$tmp/simold/collateral/snp/crl.der" && pass ||
	fail "snp upstream: mode expired: status $s or not the older generation's CRL"
SX="$tmp/snp-d"
rc=0
"$CVM" collateral fetch "$R" --cache "$SX" --amd-url "$U" --amd-root "$ARK" --at "$SAT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 3 ] && grep -qi "expire" "$tmp/err" && pass || fail "snp fetch of an expired CRL: exit $rc: $(cat "$tmp/err")"
python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["count"] == 2 and not any(i["name"].endswith("/crl") for i in j["items"]), j' < <(snp_status "$SX") && pass ||
	fail "snp expired CRL: the cache holds $(snp_status "$SX")"
rc="$(snp_verify "$SX" "$tmp/v.json" --amd-url "$U")"
[ "$rc" != 0 ] && grep -qi "expire" "$tmp/err" && pass || fail "snp verify with an expired CRL: exit $rc: $(cat "$tmp/err")"
# the same bytes at a time inside their window: stored (so only the time refused them above)
rc=0
"$CVM" collateral fetch "$R" --cache "$tmp/snp-d-then" --amd-url "$U" --amd-root "$ARK" --at $((SAT - 100 * 86400)) -q \
	>/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && [ "$(snp_count "$tmp/snp-d-then" $((SAT - 100 * 86400)))" = 3 ] && pass || fail "snp: the older CRL inside its own window was not stored: exit $rc: $(cat "$tmp/err")"
upstream_mode ok

# outages: verify passes from the cache, stale with the age
# snp_outage WHAT AGE ARGS...: a verify with --refresh AGE seconds after the items were fetched
snp_outage() {
	local what="$1" age="$2" rc t0 el
	shift 2
	t0=$(date +%s%N)
	rc="$(snp_verify "$SA" "$tmp/v.json" --amd-url "$U" --refresh --at $((SAT + age)) "$@")"
	el=$((($(date +%s%N) - t0) / 1000000))
	if [ "$rc" != 0 ]; then
		fail "snp $what: verify from the cache failed: exit $rc: $(cat "$tmp/err")"
		return
	fi
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
c = j["collateral"]
assert j["verdict"] == "accepted", j.get("reason")
assert c["source"] == "stale" and c["stale"] is True, c
assert c["age_s"] == int(sys.argv[2]), c
assert c["upstream_error"], c' "$tmp/v.json" "$age" && pass ||
		fail "snp $what: verdict does not say stale with age and the upstream's error: $(head -c 600 "$tmp/v.json")"
	echo "collateral_outage: snp $what: verify from the cache took $el ms"
}
# An hour after the fill, every item failing: the age is the oldest item's. The modes below fail
# one item each, and the refresh of the others succeeds (their fetch time is then SAT again).
upstream_mode 500 /vcek/
snp_outage "500" 3600
grep -q "HTTP 500" "$tmp/v.json" && pass || fail "snp 500: the upstream error does not name the 500: $(head -c 600 "$tmp/v.json")"
upstream_mode ok
upstream_reset_stats
upstream_mode 429 /vcek/v1/Milan/crl retry_after=1
snp_outage "429 + Retry-After: 1" 0
python3 -c '
import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1] + "/_stats"))
t = s["times"].get("/vcek/v1/Milan/crl", [])[:4]  # the first verify: 1 try + 3 retries
assert len(t) == 4, t
gaps = [b - a for a, b in zip(t, t[1:])]
assert min(gaps) >= 0.9, gaps' "$U" && pass || fail "snp 429: the retries did not wait Retry-After (1 s): $(curl -s "$U/_stats")"
upstream_mode ok
upstream_mode hang "$svpath"
snp_outage "hang (--timeout 500)" 0 --timeout 500
upstream_mode ok
upstream_mode close /vcek/v1/Milan/cert_chain
snp_outage "connection reset" 0
"$CVM" quote verify "$R" --cache "$SA" --root "$ARK" --at "$SAT" --amd-url "$U" --refresh >"$tmp/out" 2>&1 || true
grep -q "^collateral: stale, 3 items, age 0 s.*stale: the refresh failed: cannot reach .*/vcek/v1/Milan/cert_chain" "$tmp/out" &&
	grep -q "^verdict: accepted (SEV-SNP v3, Milan" "$tmp/out" && pass ||
	fail "snp connection reset: text verdict: $(grep -E "^(collateral|verdict)" "$tmp/out")"

# the upstream comes back: two hours on (every item was last fetched at SAT), past a short refresh
# setting, the next call refreshes by itself
upstream_mode ok
upstream_reset_stats
rc=0
"$CVM" quote verify "$R" --cache "$SA" --root "$ARK" --at $((SAT + 7200)) --json --amd-url "$U" --refresh-after 60 \
	>"$tmp/v.json" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && [ "$(jq_py "$tmp/v.json" 'j["collateral"]["stale"]')" = False ] &&
	[ "$(jq_py "$tmp/v.json" 'j["collateral"]["source"]')" = upstream ] && pass ||
	fail "snp upstream back: exit $rc, collateral $(jq_py "$tmp/v.json" 'j.get("collateral")' 2>/dev/null): $(cat "$tmp/err")"
[ "$(upstream_count /vcek/v1/Milan/)" -ge 1 ] && pass || fail "snp upstream back: no KDS request counted"

# N concurrent verifies on an empty cache: one request per item
upstream_reset_stats
upstream_mode slow "" ms=300
pids=()
for i in $(seq 1 $N); do
	"$CVM" quote verify "$R" --cache "$tmp/snp-e" --root "$ARK" --amd-url "$U" --at "$SAT" -q >"$tmp/sconc.$i" 2>&1 &
	pids+=($!)
done
ok=0
for p in "${pids[@]}"; do
	wait "$p" && ok=$((ok + 1))
done
[ "$ok" = "$N" ] && pass || fail "snp concurrent: $ok of $N verifies passed: $(cat "$tmp"/sconc.*)"
x="$(reqs_are)"
[ -z "$x" ] && pass || fail "snp concurrent: $N verifies on an empty cache made $x, want one request each for $want_reqs"
upstream_mode ok
upstream_stop

echo "collateral_outage: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
