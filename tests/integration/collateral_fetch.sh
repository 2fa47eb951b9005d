#!/usr/bin/env bash
# lib/collateral against a minimal local upstream (an inline Python HTTP
# server that serves one vector's collateral as Intel's PCS API v4 does:
# bodies, URL-encoded issuer chain headers, 404 for what it lacks):
#  - four processes sharing one cache directory get the same four items at
#    once: the upstream sees one request per item (single flight across
#    processes, by the per-item lock file), and every process gets them;
#  - the TCB info's first answer is 503 with Retry-After: 1: the fetch waits
#    and retries (two requests for it in all, still one fetch);
#  - a second run is served from the cache without any request;
#  - an item the upstream does not have (HTTP 404) is CVM_E_NOT_FOUND after
#    one request, with no retry;
#  - four threads of one process, one handle each, on a fresh directory:
#    again one request per item.
# Then PCK certificates by platform through the full vendor simulator
# (tests/common/vendor_upstream.py, one platform registered with the real
# PCK certificate of a TDX vector quote), with `cvm collateral fetch`:
#  - by platform manifest (POST pckcerts) and by encrypted PPID (GET
#    pckcerts): fetched once, verified, listed by status, then served from
#    the cache; --cpusvn/--pcesvn select the quote's own PCK certificate;
#  - 429 (retried after Retry-After) and 500 (fails after the retries);
#  - a bad signature, or one flipped certificate among good ones: refused,
#    nothing stored; an unknown platform: not found;
#  - pack and import carry the list; import re-verifies it (a tampered
#    bundle imports nothing).
# Needs: build/tests/test_collateral_cache (its "get" and "threads" helper modes), python3, curl.
set -euo pipefail

BIN="${CVM_BIN:-build/bin}"
HELPER="$BIN/../tests/test_collateral_cache"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
VEC=tdx/automata-tdx-v4-0625
AT=1749095100
vectors_require "$VEC/tcb_info.json" "$VEC/qe_identity.json" "$VEC/pck_crl.der" "$VEC/root_ca_crl.der"

if ! command -v python3 >/dev/null 2>&1; then
	echo "FAIL: python3 is needed for the local upstream (scripts/setup.sh installs it)" >&2
	exit 1
fi
if [ ! -x "$HELPER" ]; then
	echo "FAIL: $HELPER is missing or not executable (set CVM_BIN, build the tests)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/upstream.py" <<'PY'
import http.server, os, sys, threading, time, urllib.parse

vec, port_file, log_file = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
seen = {}

def read(name):
    with open(os.path.join(vec, name), "rb") as f:
        return f.read()

def chain(name):
    return urllib.parse.quote(read(name).decode(), safe="")

ROUTES = {
    "/sgx/certification/v4/rootcacrl": ("root_ca_crl.der", None, None),
    "/sgx/certification/v4/pckcrl": ("pck_crl.der", "SGX-PCK-CRL-Issuer-Chain", "pck_crl_issuer_chain.pem"),
    "/tdx/certification/v4/tcb": ("tcb_info.json", "TCB-Info-Issuer-Chain", "tcb_info_issuer_chain.pem"),
    "/tdx/certification/v4/qe/identity": ("qe_identity.json", "SGX-Enclave-Identity-Issuer-Chain",
                                          "qe_identity_issuer_chain.pem"),
}

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        with lock:
            n = seen.get(path, 0) + 1
            seen[path] = n
            with open(log_file, "a") as f:
                f.write(path + "\n")
        time.sleep(0.3)  # long enough for the other processes to wait on the lock
        if path not in ROUTES:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.endswith("/tcb") and n == 1:
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body_name, hdr, chain_name = ROUTES[path]
        body = read(body_name)
        self.send_response(200)
        if hdr:
            self.send_header(hdr, chain(chain_name))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
PY

: >"$tmp/requests.log"
python3 "$tmp/upstream.py" "$VECTORS/$VEC" "$tmp/port" "$tmp/requests.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || {
	echo "FAIL: the local upstream did not start" >&2
	exit 1
}
URL="http://127.0.0.1:$(cat "$tmp/port")"
FMSPC="$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['tcbInfo']['fmspc'])" "$VECTORS/$VEC/tcb_info.json")"
ITEMS=(rootcrl pckcrl:platform "tcb:tdx:$FMSPC" qe:tdx)
fail=0

# 1. Four processes at once, one cache directory.
getters=()
for i in 1 2 3 4; do
	"$HELPER" get "$tmp/cache" "$URL" "$AT" "${ITEMS[@]}" >"$tmp/out$i" 2>&1 &
	getters+=($!)
done
for i in 1 2 3 4; do
	if ! wait "${getters[$((i - 1))]}"; then
		echo "FAIL: getter $i failed:" >&2
		cat "$tmp/out$i" >&2
		fail=1
	fi
done
count() { grep -c -x -F "$1" "$tmp/requests.log" || true; }
for p in /sgx/certification/v4/rootcacrl /sgx/certification/v4/pckcrl /tdx/certification/v4/qe/identity; do
	n="$(count "$p")"
	if [ "$n" != 1 ]; then
		echo "FAIL: $p was requested $n times by four processes; single flight allows one" >&2
		fail=1
	fi
done
n="$(count /tdx/certification/v4/tcb)"
if [ "$n" != 2 ]; then
	echo "FAIL: the TCB info was requested $n times; one 503 (Retry-After: 1), then one fetch, expected 2" >&2
	fail=1
fi
# Exactly one process fetched each item; the others got its result.
for name in sgx/rootcacrl sgx/pckcrl/platform "tdx/tcb/${FMSPC,,}" tdx/qe; do
	fetched="$(cat "$tmp"/out? | awk -v n="$name" '$1 == n { s += $3 } END { print s + 0 }')"
	if [ "$fetched" != 1 ]; then
		echo "FAIL: $name was fetched $fetched times in all (expected 1):" >&2
		cat "$tmp"/out? >&2
		fail=1
	fi
done
[ "$fail" = 0 ] && echo "ok: four processes, one request per item, the 503 retried after Retry-After"

# 2. Again: all from the cache, no request.
before="$(wc -l <"$tmp/requests.log")"
"$HELPER" get "$tmp/cache" "$URL" "$AT" "${ITEMS[@]}" >"$tmp/again" 2>&1 || {
	echo "FAIL: the second run failed:" >&2
	cat "$tmp/again" >&2
	fail=1
}
after="$(wc -l <"$tmp/requests.log")"
if [ "$before" != "$after" ] || [ "$(grep -c ' cache 0 0' "$tmp/again")" != 4 ]; then
	echo "FAIL: the second run asked the upstream ($before -> $after requests) or did not serve from the cache:" >&2
	cat "$tmp/again" >&2
	fail=1
else
	echo "ok: a second run is served from the cache"
fi

# 3. 404: not found, one request, no retry.
if "$HELPER" get "$tmp/cache" "$URL" "$AT" qe:sgx >"$tmp/nf" 2>&1; then
	echo "FAIL: an item the upstream lacks was got:" >&2
	cat "$tmp/nf" >&2
	fail=1
fi
n="$(count /sgx/certification/v4/qe/identity)"
if ! grep -q '^sgx/qe error 0 -18 .*HTTP 404' "$tmp/nf" || [ "$n" != 1 ]; then
	echo "FAIL: a 404 should be CVM_E_NOT_FOUND (-18) after one request ($n made):" >&2
	cat "$tmp/nf" >&2
	fail=1
else
	echo "ok: 404 is not found, without retry"
fi
# 4. Four threads of one process, one handle each, a fresh directory.
for p in /sgx/certification/v4/rootcacrl /sgx/certification/v4/pckcrl /tdx/certification/v4/qe/identity \
	/tdx/certification/v4/tcb; do
	eval "before_${p//[^a-z]/_}=$(count "$p")"
done
if ! "$HELPER" threads 4 "$tmp/cache2" "$URL" "$AT" "${ITEMS[@]}" >"$tmp/threads" 2>&1; then
	echo "FAIL: the threads run failed:" >&2
	cat "$tmp/threads" >&2
	fail=1
fi
tfail=0
for p in /sgx/certification/v4/rootcacrl /sgx/certification/v4/pckcrl /tdx/certification/v4/qe/identity \
	/tdx/certification/v4/tcb; do
	var="before_${p//[^a-z]/_}"
	n=$(($(count "$p") - ${!var}))
	if [ "$n" != 1 ]; then
		echo "FAIL: $p was requested $n times by four threads; single flight allows one" >&2
		tfail=1
	fi
done
if [ "$(grep -c . "$tmp/threads")" != 16 ]; then
	echo "FAIL: four threads should report four items each:" >&2
	cat "$tmp/threads" >&2
	tfail=1
fi
[ "$tfail" = 0 ] && echo "ok: four threads, one request per item"
[ "$tfail" = 0 ] || fail=1

# 5. PCK certificates by platform.
CVM="$BIN/cvm"
# shellcheck source=tests/common/upstream.sh
. "$(dirname "$0")/../common/upstream.sh"
trap 'upstream_stop; cleanup' EXIT
python3 -c 'import os; print(os.urandom(3000).hex())' >"$tmp/manifest.hex"
python3 -c 'import os; print(os.urandom(384).hex())' >"$tmp/ppid.hex"
python3 -c 'import os; print(os.urandom(500).hex())' >"$tmp/unknown.hex"
upstream_start "$tmp/up" --platform "$tmp/manifest.hex=$VECTORS/$VEC/quote.bin" \
	--platform "$tmp/ppid.hex=$VECTORS/$VEC/quote.bin"
read -r CPUSVN PCESVN PCEID < <(python3 -c '
import sys; sys.path.insert(0, sys.argv[1]); import vendor_upstream as v
p = v.Platform("x", sys.argv[2]); print(bytes(p.tcb).hex(), p.pcesvn, p.pceid)' \
	"$(dirname "$0")/../common" "$VECTORS/$VEC/quote.bin")
pfail=0
pck() { # pck CACHE ARGS...: cvm collateral fetch by platform; output in $tmp/p.out, $tmp/p.err
	local cache="$1" rc=0
	shift
	"$CVM" collateral fetch --cache "$cache" --intel-url "$UPSTREAM_URL" --at "$AT" --pceid "$PCEID" \
		--timeout 3000 "$@" >"$tmp/p.out" 2>"$tmp/p.err" || rc=$?
	return "$rc"
}
items() { find "$1/items" -name '*pckcerts*' 2>/dev/null | wc -l; }
P=/sgx/certification/v4/pckcerts
upstream_reset_stats
if ! pck "$tmp/pc" --platform-manifest "$tmp/manifest.hex" --cpusvn "$CPUSVN" --pcesvn "$PCESVN" --out "$tmp/sel.pem"; then
	echo "FAIL: fetch by platform manifest:" >&2
	cat "$tmp/p.err" >&2
	pfail=1
fi
python3 - "$VECTORS/$VEC/quote.bin" "$tmp/sel.pem" <<'PY' || pfail=1
import re, sys
q = open(sys.argv[1], "rb").read().decode("latin-1")
leaf = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", q, re.S).group(0)
got = open(sys.argv[2]).read()
if got.strip() != leaf.strip():
    print("FAIL: the selected certificate is not the quote's PCK certificate", file=sys.stderr)
    sys.exit(1)
PY
"$CVM" collateral status --cache "$tmp/pc" --at "$AT" >"$tmp/status" 2>&1 || true
grep -q "^sgx/pckcerts/manifest-" "$tmp/status" || { echo "FAIL: status does not list the list:" >&2; cat "$tmp/status" >&2; pfail=1; }
pck "$tmp/pc" --platform-manifest "$tmp/manifest.hex" || pfail=1
[ "$(upstream_count "$P")" = 1 ] || { echo "FAIL: pckcerts requested $(upstream_count "$P") times for two runs (one fetch, then the cache)" >&2; pfail=1; }
if ! pck "$tmp/pc" --encrypted-ppid "$tmp/ppid.hex" || ! grep -q "sgx/pckcerts/ppid-" "$tmp/p.err"; then
	echo "FAIL: fetch by encrypted PPID:" >&2
	cat "$tmp/p.err" >&2
	pfail=1
fi
[ "$(upstream_count "$P?encrypted_ppid=")" = 1 ] || { echo "FAIL: GET pckcerts?encrypted_ppid= not requested once" >&2; pfail=1; }
# a raw TCB below the certificate's: no certificate matches (exit 1, a clear message)
rc=0
pck "$tmp/pc" --platform-manifest "$tmp/manifest.hex" --cpusvn 00000000000000000000000000000000 --pcesvn 0 || rc=$?
if [ "$rc" = 0 ] || ! grep -q "no PCK certificate matches the raw TCB" "$tmp/p.err"; then
	echo "FAIL: a raw TCB below every certificate: rc $rc" >&2
	cat "$tmp/p.err" >&2
	pfail=1
fi
# 429 then ok: retried after Retry-After (one more request), stored
upstream_mode 429 "$P" retry_after=1
( sleep 0.5; upstream_mode ok "$P" ) &
pids+=($!)
upstream_reset_stats
if ! pck "$tmp/pc429" --platform-manifest "$tmp/manifest.hex" || [ "$(items "$tmp/pc429")" != 1 ]; then
	echo "FAIL: 429 then ok:" >&2
	cat "$tmp/p.err" >&2
	pfail=1
fi
[ "$(upstream_count "$P")" -ge 2 ] || { echo "FAIL: the 429 was not retried" >&2; pfail=1; }
# 500 throughout: fails after the retries, nothing stored
upstream_mode 500 "$P"
rc=0
pck "$tmp/pc500" --platform-manifest "$tmp/manifest.hex" || rc=$?
if [ "$rc" = 0 ] || ! grep -q "HTTP 500" "$tmp/p.err" || [ "$(items "$tmp/pc500")" != 0 ]; then
	echo "FAIL: 500: rc $rc" >&2
	cat "$tmp/p.err" >&2
	pfail=1
fi
# a bad signature, one flipped certificate among good ones: never stored
for mode in badsig onebad; do
	upstream_mode "$mode" "$P"
	rc=0
	pck "$tmp/pc-$mode" --platform-manifest "$tmp/manifest.hex" || rc=$?
	if [ "$rc" = 0 ] || ! grep -q "does not verify" "$tmp/p.err" || [ "$(items "$tmp/pc-$mode")" != 0 ]; then
		echo "FAIL: $mode: rc $rc, $(items "$tmp/pc-$mode") stored" >&2
		cat "$tmp/p.err" >&2
		pfail=1
	fi
done
upstream_mode ok "$P"
rc=0
pck "$tmp/pc-unknown" --platform-manifest "$tmp/unknown.hex" || rc=$?
grep -q "HTTP 404" "$tmp/p.err" && [ "$rc" != 0 ] || { echo "FAIL: an unknown platform: rc $rc" >&2; cat "$tmp/p.err" >&2; pfail=1; }
# pack and import carry the list; import re-verifies
"$CVM" collateral pack "$tmp/b.bundle" --cache "$tmp/pc" --at "$AT" -q >/dev/null 2>"$tmp/p.err" || { cat "$tmp/p.err" >&2; pfail=1; }
if ! "$CVM" collateral import "$tmp/b.bundle" --cache "$tmp/pc-imp" --at "$AT" -q >/dev/null 2>"$tmp/p.err" ||
	[ "$(items "$tmp/pc-imp")" != 2 ]; then
	echo "FAIL: import of a bundle with the lists: $(items "$tmp/pc-imp") lists" >&2
	cat "$tmp/p.err" >&2
	pfail=1
fi
python3 - "$tmp/b.bundle" "$tmp/bad.bundle" <<'PY'
import hashlib, sys
b = bytearray(open(sys.argv[1], "rb").read())
# the TCB the certificate is listed under (the entry after "Not available"):
# unsigned, bound to the certificate only by verification; then the
# bundle's digest again, which anyone can recompute
i = b.find(b"sgxtcbcomp02svn", b.index(b'"Not available"'))
assert i > 0
j = b.index(b":", i) + 1
b[j] = ord("7") if b[j] != ord("7") else ord("8")
b[-32:] = hashlib.sha256(bytes(b[:-32])).digest()
open(sys.argv[2], "wb").write(bytes(b))
PY
rc=0
"$CVM" collateral import "$tmp/bad.bundle" --cache "$tmp/pc-imp2" --at "$AT" -q >/dev/null 2>"$tmp/p.err" || rc=$?
if [ "$rc" = 0 ] || [ "$(items "$tmp/pc-imp2")" != 0 ] || ! grep -q "another TCB" "$tmp/p.err"; then
	echo "FAIL: a bundle whose list has a changed TCB imported (rc $rc)" >&2
	cat "$tmp/p.err" >&2
	pfail=1
fi
[ "$pfail" = 0 ] && echo "ok: PCK certificates by platform manifest and PPID, selection, failures, pack and import"
[ "$pfail" = 0 ] || fail=1
exit "$fail"
