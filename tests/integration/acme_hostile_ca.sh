#!/usr/bin/env bash
# cvm cert acme against a hostile ACME server (a python3 stand-in over TLS,
# written here; it checks no signature and answers what each scenario
# needs), for what pebble never does:
#  - an authorization for a name that was not ordered: refused before the
#    dns-01 hook runs (the hook is never called);
#  - a chain for another key: refused, and neither key nor chain written;
#  - a directory body over 64 KiB: refused as too large;
#  - an account Location that is http://: refused;
#  - a redirect: not followed;
#  - an authorization that stays pending: the wait ends at --timeout;
#  - a problem detail with terminal escapes: printed without them.
# Needs: $CVM_BIN/cvm, openssl, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
for tool in openssl python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool is missing: scripts/setup.sh installs it" >&2
		exit 1
	fi
done
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }
run() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "'$*' exited $rc, expected $want: $(head -c 800 "$tmp/err") $(head -c 400 "$tmp/out")"
		return 1
	fi
	pass
}

# The server's TLS: a test CA and a certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=hostile test CA" \
	-keyout "$tmp/ca.key" -out "$tmp/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$tmp/tls.key" -out "$tmp/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/tls.ext"
openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 2 \
	-extfile "$tmp/tls.ext" -out "$tmp/tls.pem" 2>/dev/null
# A certificate for a key that is not the one cvm makes.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=a.cvmkit.test" \
	-keyout "$tmp/other.key" -out "$tmp/other.pem" 2>/dev/null

cat >"$tmp/server.py" <<'PY'
import http.server, json, os, ssl, sys, threading

tmp = sys.argv[1]
base = None

def scenario():
    with open(os.path.join(tmp, "scenario")) as f:
        return f.read().strip()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    nonce = 0
    finalized = False
    lock = threading.Lock()

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", ctype="application/json", headers=()):
        with H.lock:
            H.nonce += 1
            n = H.nonce
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Replay-Nonce", "nonce%d" % n)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.send(200)

    def do_GET(self):
        s = scenario()
        if self.path == "/dir":
            if s == "redirect":
                return self.send(302, b"", headers=[("Location", base + "/elsewhere")])
            d = {"newNonce": base + "/nonce", "newAccount": base + "/acct", "newOrder": base + "/order",
                 "revokeCert": base + "/revoke"}
            if s == "bigdir":
                d["meta"] = {"pad": "x" * 70000}
            return self.send(200, d)
        self.send(404, {"type": "urn:ietf:params:acme:error:malformed", "detail": "no such page"},
                  "application/problem+json")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        s = scenario()
        p = self.path
        if p == "/acct":
            loc = (base.replace("https://", "http://") if s == "httplocation" else base) + "/acct/1"
            return self.send(201, {"status": "valid"}, headers=[("Location", loc)])
        if p == "/order":
            if s == "escape":
                return self.send(400, {"type": "urn:ietf:params:acme:error:rejectedIdentifier",
                                       "detail": "no \x1b[31mred\x1b[0m here\r\nX-Injected: 1"},
                                 "application/problem+json")
            return self.send(201, self.order("pending"), headers=[("Location", base + "/order/1")])
        if p == "/order/1":
            return self.send(200, self.order("valid" if H.finalized else "ready"))
        if p == "/authz/1":
            name = "victim.example" if s == "otherdomain" else "a.cvmkit.test"
            status = "valid" if s == "wrongkey" else "pending"
            return self.send(200, {"status": status, "identifier": {"type": "dns", "value": name},
                                   "challenges": [{"type": "dns-01", "url": base + "/chall/1",
                                                   "status": "pending", "token": "tok"}]},
                             headers=[("Retry-After", "1")])
        if p == "/chall/1":
            return self.send(200, {"type": "dns-01", "url": base + "/chall/1", "status": "processing",
                                   "token": "tok"})
        if p == "/fin":
            H.finalized = True
            return self.send(200, self.order("processing"))
        if p == "/cert":
            with open(os.path.join(tmp, "other.pem"), "rb") as f:
                return self.send(200, f.read(), "application/pem-certificate-chain")
        self.send(404, {"type": "urn:ietf:params:acme:error:malformed", "detail": "no such page"},
                  "application/problem+json")

    def order(self, status):
        o = {"status": status, "authorizations": [base + "/authz/1"], "finalize": base + "/fin"}
        if status == "valid":
            o["certificate"] = base + "/cert"
        return o

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(tmp, "tls.pem"), os.path.join(tmp, "tls.key"))
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
base = "https://127.0.0.1:%d" % srv.server_address[1]
with open(os.path.join(tmp, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(tmp, "port.tmp"), os.path.join(tmp, "port"))
srv.serve_forever()
PY
echo none >"$tmp/scenario"
python3 "$tmp/server.py" "$tmp" >"$tmp/server.log" 2>&1 &
server_pid=$!
for i in $(seq 1 100); do
	[ -f "$tmp/port" ] && break
	if [ "$i" -eq 100 ]; then
		echo "FAIL: the stand-in ACME server did not start: $(cat "$tmp/server.log")" >&2
		exit 1
	fi
	sleep 0.1
done
dir="https://127.0.0.1:$(cat "$tmp/port")/dir"

printf '#!/bin/sh\necho "$@" >>"%s/hook.log"\n' "$tmp" >"$tmp/hook.sh"
chmod 755 "$tmp/hook.sh"
common=(--directory "$dir" --ca-bundle "$tmp/ca.pem" --account-key "$tmp/account.pem" --timeout 3
	--dns-01-hook "$tmp/hook.sh" --domain a.cvmkit.test)
issue() {
	local want="$1"
	shift
	rm -f "$tmp/key.pem" "$tmp/chain.pem"
	run "$want" "$CVM" cert acme issue "${common[@]}" --key-out "$tmp/key.pem" --cert-out "$tmp/chain.pem" "$@"
}
expect_err() {
	grep -q -F -- "$1" "$tmp/err" && pass || fail "expected '$1' in: $(cat "$tmp/err")"
}

echo otherdomain >"$tmp/scenario"
if issue 1; then
	expect_err "the CA asks to authorize victim.example, which was not ordered: refusing to answer for it"
fi
[ ! -e "$tmp/hook.log" ] && pass || fail "the hook ran for a name that was not ordered: $(cat "$tmp/hook.log")"

echo wrongkey >"$tmp/scenario"
if issue 1; then
	expect_err "the CA's certificate is not for the key of the request"
fi
[ ! -e "$tmp/key.pem" ] && [ ! -e "$tmp/chain.pem" ] && pass || fail "a chain for another key was written"

echo bigdir >"$tmp/scenario"
if issue 1; then
	expect_err "the answer of $dir is larger than 65536 bytes"
fi

echo httplocation >"$tmp/scenario"
if issue 1; then
	expect_err "the CA's account answer has no usable Location (the account URL)"
fi

echo redirect >"$tmp/scenario"
if issue 1; then
	expect_err "reading the directory: the CA answered HTTP 302 without a problem document"
fi

echo pending >"$tmp/scenario"
start=$(date +%s)
if issue 1; then
	expect_err "the CA did not validate a.cvmkit.test within 3 s"
fi
elapsed=$(($(date +%s) - start))
[ "$elapsed" -le 10 ] && pass || fail "the bounded wait took $elapsed s"
grep -q "^present a.cvmkit.test " "$tmp/hook.log" && grep -q "^cleanup a.cvmkit.test " "$tmp/hook.log" && pass ||
	fail "present/cleanup not both called: $(cat "$tmp/hook.log" 2>/dev/null)"

echo escape >"$tmp/scenario"
if issue 1; then
	expect_err "creating the order: the CA answered HTTP 400, rejectedIdentifier: no ?[31mred?[0m here??X-Injected: 1"
	if LC_ALL=C grep -q "$(printf '\033')" "$tmp/err"; then fail "an escape character reached stderr"; else pass; fi
fi

echo "acme_hostile_ca: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
