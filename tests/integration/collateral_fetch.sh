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
# The full vendor simulator is tests/common/vendor_upstream.py (not used
# here, to keep this test to what lib/collateral itself promises).
# Needs: build/tests/test_collateral_cache (its "get" and "threads" helper modes), python3.
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
exit "$fail"
