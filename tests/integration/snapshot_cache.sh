#!/usr/bin/env bash
# cvm snapshot and cvm verify with the collateral cache instead of
# --collateral DIR (the options of cvm quote verify, cli/collateral_opts.c),
# against the local vendor upstream (tests/common/upstream.sh) serving the
# simulator's collateral in Intel PCS and AMD KDS form:
#  - TDX: cvm snapshot --cache C --intel-url URL fetches the collateral of
#    the agent certificate's quote during the handshake (the upstream sees
#    the requests; the output says "collateral: upstream"); with the
#    upstream stopped, cvm verify --offline takes it from the cache
#    ("collateral: cache"), passes, and -v / --json put the cvmkit share of
#    the time under 100 ms;
#  - an empty cache --offline: exit 1, saying what to give; --collateral
#    with a cache option: exit 2;
#  - SEV-SNP: the same with --amd-url (VCEK, chain and CRL of the report),
#    anchored in the simulator's ARK, then --offline (another simulator: an
#    agent keeps its runtime events in the simulator's folder).
# Needs swtpm (else skipped, exit 77), tpm2-tools, curl and python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=snapshot_cache
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-snapshot-cache.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
# shellcheck source=tests/common/upstream.sh
. "$SRC/tests/common/upstream.sh"
cleanup() {
	upstream_stop
	sv_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
sv_need "$NAME"
command -v curl >/dev/null 2>&1 || { echo "$NAME: FAIL: curl is missing"; exit 1; }

sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }
IROOT="$tmp/sim/collateral/tdx/intel_sgx_root_ca.der"
"$bin/cvm" sim init "$tmp/simsnp" >/dev/null || { echo "$NAME: FAIL: cvm sim init (SNP)"; exit 1; }
ARK="$tmp/simsnp/collateral/snp/ark.pem"
sv_agent_start "$tmp/sim" || { echo "$NAME: FAIL: the agent did not start"; exit 1; }

# under_100ms MS WHAT: the cvmkit share of a warm, offline verify is under
# 100 ms (not asserted in a sanitizer build, which is several times slower:
# printed only).
under_100ms() {
	if [ -n "${CVM_SANITIZE:-}" ]; then
		echo "$NAME: $2: ${1:-?} ms, not held to 100 ms in a sanitizer build (CVM_SANITIZE=$CVM_SANITIZE)"
		[ -n "$1" ] && pass || fail "$2: no time line"
		return
	fi
	python3 -c 'import sys; assert float(sys.argv[1]) < 100' "${1:-1e9}" && pass ||
		{ fail "$2: the cvmkit share is '${1}' ms, want under 100 ms"; show "$tmp/out"; }
}

# ---- TDX ----------------------------------------------------------------
upstream_start "$tmp/up" --no-vectors --dir "$tmp/sim/collateral/tdx"
expect 0 "cvm snapshot --cache --intel-url" sv_snapshot_with "$tmp/snap.json" --cache "$tmp/cache" \
	--intel-url "$UPSTREAM_URL" --root "$IROOT" || sv_finish "$NAME"
has "collateral: upstream, 4 items" "cvm snapshot --cache --intel-url"
n="$(upstream_count "")"
[ "$n" -ge 4 ] && pass || fail "the upstream saw $n requests, want the 4 items of the quote's collateral"
expect 0 "cvm verify --cache --intel-url" sv_verify_with "$tmp/snap.json" --cache "$tmp/cache" \
	--intel-url "$UPSTREAM_URL" --root "$IROOT"
has "verdict: the VM matches the snapshot" "cvm verify --cache --intel-url"
upstream_stop

expect 0 "cvm verify --cache --offline, upstream stopped" sv_verify_with "$tmp/snap.json" --cache "$tmp/cache" \
	--offline --root "$IROOT" -v
has "collateral: cache, 4 items" "cvm verify --offline"
has "verdict: the VM matches the snapshot" "cvm verify --offline"
ms="$(sv_cvmkit_ms)"
echo "$NAME: cvm verify -v --offline, warm cache: cvmkit ${ms:-?} ms"
grep "^time:" "$tmp/out"
under_100ms "$ms" "cvm verify -v --offline"
expect 0 "cvm verify --cache --offline --json" sv_verify_with "$tmp/snap.json" --cache "$tmp/cache" \
	--offline --root "$IROOT" --json
python3 - "$tmp/out" "${CVM_SANITIZE:-}" <<'PY' && pass || { fail "cvm verify --offline --json"; show "$tmp/out"; }
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "accepted", j["verdict"]
c = j["collateral"]
assert c["source"] == "cache" and c["fetched"] == 0 and c["items"] == 4, c
t = j["timings_ms"]
assert t["cvmkit"] < 100 or sys.argv[2] != "", t
assert abs(t["cvmkit"] - (t["setup"] + t["peer_check"] + t["verify"] + t["compare"])) < 0.01, t
print("timings", t, file=sys.stderr)
PY
expect 0 "cvm snapshot --cache --offline" sv_snapshot_with "$tmp/snap2.json" --cache "$tmp/cache" \
	--offline --root "$IROOT"
expect 0 "the offline snapshot equals the first" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/snap2.json"

expect 1 "cvm verify, an empty cache --offline" sv_verify_with "$tmp/snap.json" --cache "$tmp/empty" \
	--offline --root "$IROOT"
has "no usable collateral in the cache '$tmp/empty' for 'the agent's RA-TLS certificate'" "an empty cache"
has "give --collateral DIR, import a bundle" "an empty cache"
expect 2 "cvm snapshot, --collateral with --cache" sv_snapshot_with "$tmp/x.json" --collateral "$tmp/sim/collateral" \
	--cache "$tmp/cache"
has "the cache options (--cache, --intel-url, --amd-url, --offline, --refresh, ...) go without it" \
	"--collateral with --cache"
[ ! -e "$tmp/x.json" ] && pass || fail "a snapshot was written despite the usage error"

# ---- SEV-SNP ------------------------------------------------------------
sv_agent_stop
sv_agent_start "$tmp/simsnp" --platform snp || { echo "$NAME: FAIL: the SNP agent did not start"; exit 1; }
upstream_start "$tmp/up-snp" --no-vectors --dir "$tmp/simsnp/collateral/snp"
expect 0 "cvm snapshot --cache --amd-url (SEV-SNP)" sv_snapshot_with "$tmp/snap-snp.json" --cache "$tmp/cache" \
	--amd-url "$UPSTREAM_URL" --root "$ARK" || sv_finish "$NAME"
has "collateral: upstream, 3 items" "cvm snapshot --cache --amd-url"
has "SEV-SNP, TCB UpToDate" "cvm snapshot --cache --amd-url"
upstream_stop
expect 0 "cvm verify --cache --offline (SEV-SNP)" sv_verify_with "$tmp/snap-snp.json" --cache "$tmp/cache" \
	--offline --root "$ARK" -v
has "collateral: cache, 3 items" "cvm verify --offline (SEV-SNP)"
has "verdict: the VM matches the snapshot" "cvm verify --offline (SEV-SNP)"
ms="$(sv_cvmkit_ms)"
echo "$NAME: cvm verify -v --offline (SEV-SNP), warm cache: cvmkit ${ms:-?} ms"
grep "^time:" "$tmp/out"
under_100ms "$ms" "cvm verify -v --offline (SEV-SNP)"
sv_finish "$NAME"
