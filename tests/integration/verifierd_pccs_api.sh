#!/usr/bin/env bash
# cvm-verifierd's PCCS-compatible read API against every DCAP vector: each
# vector's collateral folder is imported into a fresh cache (--import, at
# the vector's verify_at_unix), a daemon serves it at that time, and the
# requests Intel's QPL (sgx_default_qcnl) sends are answered byte for byte
# with the vector's files:
#   {sgx,tdx}/certification/v4/tcb?fmspc=HEX      body tcb_info.json,
#       TCB-Info-Issuer-Chain (URL-encoded) tcb_info_issuer_chain.pem
#   {sgx,tdx}/certification/v4/qe/identity        body qe_identity.json,
#       SGX-Enclave-Identity-Issuer-Chain qe_identity_issuer_chain.pem
#   sgx/certification/v4/pckcrl?ca=X&encoding=der (PCS, QPL collateral 3.1)
#       body pck_crl.der, SGX-PCK-CRL-Issuer-Chain pck_crl_issuer_chain.pem
#   sgx/certification/v4/pckcrl?ca=X               (PCCS, QPL collateral 3.0)
#       body: pck_crl.der as hex
#   sgx/certification/v4/rootcacrl                 body: root_ca_crl.der as hex
# with a 32-hex-digit Request-ID on every answer, the content types, and
# 404 for an FMSPC the cache does not hold (no upstream is configured).
#
# Then PCK certificates by platform: the local vendor upstream
# (tests/common/vendor_upstream.py) knows one platform, by a platform
# manifest and an encrypted PPID, whose certificate is the real PCK
# certificate of a TDX vector quote; a daemon with that upstream answers
#   POST pckcerts {"platformManifest","pceid"}, GET pckcerts?encrypted_ppid=&pceid=
#   POST pckcert  {"platformManifest","cpusvn","pcesvn","pceid"}
# byte for byte as the upstream answers them (body, content type, issuer
# chain URL-encoded, SGX-FMSPC, SGX-PCK-Certificate-CA-Type, SGX-TCBm);
# 400 for a malformed body, 404 for an unknown platform or a raw TCB below
# every certificate, 405 for other methods; and a list with one flipped
# certificate is refused (502) and never served afterwards.
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
# shellcheck source=tests/common/verifierd.sh
. "$(dirname "$0")/../common/verifierd.sh"
[ -x "$bin/cvm-verifierd" ] || { echo "verifierd_pccs_api: $bin/cvm-verifierd is missing (build it first)"; exit 1; }
command -v python3 >/dev/null || { echo "verifierd_pccs_api: python3 is missing"; exit 1; }
command -v openssl >/dev/null || { echo "verifierd_pccs_api: openssl is missing"; exit 1; }

need="tcb_info.json tcb_info_issuer_chain.pem qe_identity.json qe_identity_issuer_chain.pem pck_crl.der pck_crl_issuer_chain.pem root_ca_crl.der manifest.json"
vector_dirs "$need" tdx sgx

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verifierd-pccs.XXXXXX")"
cleanup() {
	vd_stop
	! command -v upstream_stop >/dev/null || upstream_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/check.py" <<'PY'
import http.client, json, os, sys, urllib.parse

port, d, tee, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
fails = []

def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    h = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, h, body

def file(name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()

def check(cond, what):
    if not cond:
        fails.append(what)

def answer(path, status, ctype=None, body=None, chain_header=None, chain_file=None):
    s, h, b = get(path)
    check(s == status, f"{path}: status {s}, expected {status}: {b[:200]!r}")
    rid = h.get("request-id", "")
    check(len(rid) == 32 and all(c in "0123456789abcdef" for c in rid), f"{path}: Request-ID {rid!r}")
    if s != status or status != 200:
        return
    check(h.get("content-type") == ctype, f"{path}: content type {h.get('content-type')!r}, expected {ctype}")
    check(b == body, f"{path}: the body differs from the vector's file ({len(b)} vs {len(body)} bytes)")
    if chain_header:
        v = h.get(chain_header.lower())
        check(v is not None, f"{path}: no {chain_header} header")
        if v is not None:
            check("\n" not in v and " " not in v, f"{path}: {chain_header} is not URL-encoded")
            check(urllib.parse.unquote(v).encode() == file(chain_file),
                  f"{path}: {chain_header} decodes to something else than {chain_file}")

fmspc = json.loads(file("tcb_info.json"))["tcbInfo"]["fmspc"]
base = f"/{tee}/certification/v4"
# the QPL writes the FMSPC as the hex of its bytes; Intel accepts either case
answer(f"{base}/tcb?fmspc={fmspc.upper()}", 200, "application/json", file("tcb_info.json"),
       "TCB-Info-Issuer-Chain", "tcb_info_issuer_chain.pem")
answer(f"{base}/tcb?fmspc={fmspc.lower()}", 200, "application/json", file("tcb_info.json"),
       "SGX-TCB-Info-Issuer-Chain", "tcb_info_issuer_chain.pem")
answer(f"{base}/qe/identity", 200, "application/json", file("qe_identity.json"),
       "SGX-Enclave-Identity-Issuer-Chain", "qe_identity_issuer_chain.pem")
sgx = "/sgx/certification/v4"
answer(f"{sgx}/pckcrl?ca={ca}&encoding=der", 200, "application/pkix-crl", file("pck_crl.der"),
       "SGX-PCK-CRL-Issuer-Chain", "pck_crl_issuer_chain.pem")
answer(f"{sgx}/pckcrl?ca={ca}", 200, "application/pkix-crl", file("pck_crl.der").hex().encode(),
       "SGX-PCK-CRL-Issuer-Chain", "pck_crl_issuer_chain.pem")
answer(f"{sgx}/rootcacrl", 200, "application/pkix-crl", file("root_ca_crl.der").hex().encode())
other = "FFFFFFFFFFFF" if fmspc.upper() != "FFFFFFFFFFFF" else "000000000000"
answer(f"{base}/tcb?fmspc={other}", 404)
for f in fails:
    print("FAIL: " + f)
sys.exit(1 if fails else 0)
PY

fails=0
for d in "${VECTOR_DIRS[@]}"; do
	name="$(vector_name "$d")"
	tee="${name%%/*}"
	at="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at_unix"])' "$d/manifest.json")"
	# the PCK CA that issued the CRL: Intel names it Processor or Platform
	if openssl x509 -noout -subject -in "$d/pck_crl_issuer_chain.pem" | grep -q "Platform CA"; then
		ca=platform
	else
		ca=processor
	fi
	cache="$tmp/cache-${name//\//-}"
	if ! "$bin/cvm-verifierd" --cache "$cache" --at "$at" --import "$d" >"$tmp/import.out" 2>&1; then
		cat "$tmp/import.out"
		echo "FAIL: $name: --import of the vector's collateral failed"
		fails=$((fails + 1))
		continue
	fi
	if ! vd_start "$tmp/vd.log" 1 --cache "$cache" --at "$at"; then
		echo "FAIL: $name: the daemon did not start"
		fails=$((fails + 1))
		continue
	fi
	if ! python3 "$tmp/check.py" "$VD_PORT" "$d" "$tee" "$ca"; then
		echo "  ($name)"
		fails=$((fails + 1))
	fi
	vd_stop
	# a worker that a sanitizer aborted is restarted: its report is in the log
	if grep -Eq "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$tmp/vd.log"; then
		grep -E -A20 "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$tmp/vd.log" | head -40
		echo "FAIL: $name: a sanitizer reported an error in the daemon"
		fails=$((fails + 1))
	fi
done
# ---- PCK certificates by platform, through the vendor upstream ----
# shellcheck source=tests/common/upstream.sh
. "$(dirname "$0")/../common/upstream.sh"
PV="$VECTORS/tdx/automata-tdx-v4-0625"
PAT=1749095100
python3 -c 'import os; print(os.urandom(2600).hex())' >"$tmp/manifest.hex"
python3 -c 'import os; print(os.urandom(384).hex())' >"$tmp/ppid.hex"
upstream_start "$tmp/up" --platform "$tmp/manifest.hex=$PV/quote.bin" --platform "$tmp/ppid.hex=$PV/quote.bin"
cat >"$tmp/pck.conf" <<CONF
[verifierd]
listen = 127.0.0.1:0
workers = 1
[cache]
dir = $tmp/cache-pck
[upstream]
pccs_url = $UPSTREAM_URL
timeout_ms = 5000
retries = 1
CONF
vd_start "$tmp/pck.log" 1 -c "$tmp/pck.conf" --at "$PAT" || {
	echo "FAIL: the daemon with an upstream did not start"
	exit 1
}
cat >"$tmp/pck.py" <<'PY'
import http.client, json, sys, urllib.parse

vd, up, mfile, pfile, quote = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
sys.path.insert(0, sys.argv[6])
import vendor_upstream as vu

upu = urllib.parse.urlsplit(up)
manifest = open(mfile).read().strip().upper()
ppid = open(pfile).read().strip()
pl = vu.Platform("x", quote)
fails = []

def req(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    b = r.read()
    h = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, h, b

def check(cond, what):
    if not cond:
        fails.append(what)

SAME = ("content-type", "sgx-pck-certificate-issuer-chain", "sgx-fmspc", "sgx-pck-certificate-ca-type", "sgx-tcbm")

def same(method, path, body=None, status=200):
    s1, h1, b1 = req(upu.port, method, path, body)
    s2, h2, b2 = req(vd, method, path, body)
    check(s1 == status, f"{method} {path}: the upstream answered {s1}, expected {status}: {b1[:200]!r}")
    check(s2 == status, f"{method} {path}: cvm-verifierd answered {s2}, expected {status}: {b2[:300]!r}")
    rid = h2.get("request-id", "")
    check(len(rid) == 32, f"{method} {path}: Request-ID {rid!r}")
    if s1 != 200 or s2 != 200:
        return h2, b2
    check(b1 == b2, f"{method} {path}: the body differs from the upstream's ({len(b2)} vs {len(b1)} bytes)")
    for k in SAME:
        check(h1.get(k) == h2.get(k), f"{method} {path}: header {k}: {h2.get(k)!r:.80} vs the upstream's {h1.get(k)!r:.80}")
    return h2, b2

base = "/sgx/certification/v4"
body = json.dumps({"platformManifest": manifest, "pceid": pl.pceid})
h, b = same("POST", base + "/pckcerts", body)
arr = json.loads(b) if b[:1] == b"[" else []
check(len(arr) == 2 and arr[0]["cert"] == "Not available" and "BEGIN%20CERTIFICATE" in arr[1]["cert"],
      "POST pckcerts: not the upstream's [Not available, certificate] list")
check(urllib.parse.unquote(h.get("sgx-pck-certificate-issuer-chain", "")) == pl.chain,
      "POST pckcerts: the issuer chain is not the quote's PCK CA and root")
check(h.get("sgx-tcbm") is None, "POST pckcerts: a list answer has no SGX-TCBm")
same("GET", f"{base}/pckcerts?encrypted_ppid={ppid}&pceid={pl.pceid}")
cpusvn = bytes(pl.tcb).hex()
pcesvn = pl.pcesvn.to_bytes(2, "little").hex()
one = json.dumps({"platformManifest": manifest, "cpusvn": cpusvn, "pcesvn": pcesvn, "pceid": pl.pceid})
h, b = same("POST", base + "/pckcert", one)
check(b == vu.pem_of(pl.leaf).encode(), "POST pckcert: not the quote's PCK certificate")
check(h.get("sgx-tcbm") == pl.tcbm, f"POST pckcert: SGX-TCBm {h.get('sgx-tcbm')!r}, expected {pl.tcbm}")
# a raw TCB above the certificate's still selects it; one below every certificate is 404
up_tcb = bytes(min(255, x + 1) for x in pl.tcb).hex()
same("POST", base + "/pckcert", json.dumps({"platformManifest": manifest, "cpusvn": up_tcb, "pcesvn": "ffff",
                                            "pceid": pl.pceid}))
low = bytes(max(0, x - 1) if x else 0 for x in pl.tcb).hex()
s, h, b = req(vd, "POST", base + "/pckcert", json.dumps({"platformManifest": manifest, "cpusvn": low,
                                                         "pcesvn": pcesvn, "pceid": pl.pceid}))
check(s == 404 and b"no PCK certificate matches" in b, f"POST pckcert below every certificate: {s} {b[:200]!r}")
# malformed bodies: 400, and the upstream is not asked
for bad in (b"", b"not json", b"[]", json.dumps({"platformManifest": manifest}).encode(),
            json.dumps({"platformManifest": manifest + "0", "pceid": pl.pceid}).encode(),
            json.dumps({"platformManifest": "zz", "pceid": pl.pceid}).encode(),
            json.dumps({"platformManifest": manifest, "pceid": pl.pceid, "x": 1}).encode(),
            json.dumps({"platformManifest": "00" * (64 * 1024 + 1), "pceid": pl.pceid}).encode()):
    s, h, b = req(vd, "POST", base + "/pckcerts", bad)
    check(s == 400 and b.startswith(b'{"error"'), f"POST pckcerts {bad[:40]!r}: {s}, expected 400: {b[:120]!r}")
s, h, b = req(vd, "POST", base + "/pckcert", body)  # no cpusvn, pcesvn
check(s == 400, f"POST pckcert without cpusvn/pcesvn: {s}, expected 400")
s, h, b = req(vd, "GET", f"{base}/pckcerts?encrypted_ppid={ppid[:-2]}&pceid={pl.pceid}")
check(s == 400, f"GET pckcerts with a short PPID: {s}, expected 400")
# an unknown platform: 404 from the upstream, 404 here
other = json.dumps({"platformManifest": "AB" * 100, "pceid": pl.pceid})
s, h, b = req(vd, "POST", base + "/pckcerts", other)
check(s == 404, f"POST pckcerts for an unknown platform: {s}, expected 404: {b[:200]!r}")
s, h, b = req(vd, "PUT", base + "/pckcerts", body)
check(s == 405 and "POST" in h.get("allow", ""), f"PUT pckcerts: {s} allow {h.get('allow')!r}")
s, h, b = req(vd, "POST", base + "/tcb?fmspc=00806F050000", body)
check(s == 405 and h.get("allow") == "GET, HEAD", f"POST tcb: {s} allow {h.get('allow')!r}")
for f in fails:
    print("FAIL: " + f)
sys.exit(1 if fails else 0)
PY
if ! python3 "$tmp/pck.py" "$VD_PORT" "$UPSTREAM_URL" "$tmp/manifest.hex" "$tmp/ppid.hex" \
	"$PV/quote.bin" "$(dirname "$0")/../common"; then
	echo "  (PCK certificates by platform)"
	fails=$((fails + 1))
fi
# one flipped certificate in the list: refused whole (502), nothing stored
upstream_mode onebad /sgx/certification/v4/pckcerts
code="$(curl -s -o "$tmp/bad.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data "{\"platformManifest\":\"$(cat "$tmp/manifest.hex")\",\"pceid\":\"0000\"}" \
	"$VD_URL/sgx/certification/v4/pckcerts" || true)"
# the good list is cached from above: served from the cache, not re-fetched
[ "$code" = 200 ] || { echo "FAIL: the cached list was not served while the upstream turned bad ($code)"; fails=$((fails + 1)); }
vd_stop
rm -rf "$tmp/cache-pck"
vd_start "$tmp/pck2.log" 1 -c "$tmp/pck.conf" --at "$PAT" || {
	echo "FAIL: the daemon with an upstream did not start again"
	exit 1
}
for attempt in 1 2; do
	code="$(curl -s -o "$tmp/bad.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data "{\"platformManifest\":\"$(cat "$tmp/manifest.hex")\",\"pceid\":\"0000\"}" \
		"$VD_URL/sgx/certification/v4/pckcerts" || true)"
	if [ "$code" != 502 ] || ! grep -q "certificate 2 does not verify" "$tmp/bad.out"; then
		echo "FAIL: a list with one flipped certificate (try $attempt): $code $(head -c 300 "$tmp/bad.out")"
		fails=$((fails + 1))
	fi
done
if [ ! -d "$tmp/cache-pck/items" ] || find "$tmp/cache-pck/items" -name '*pckcerts*' | grep -q .; then
	echo "FAIL: a list with one flipped certificate was stored (or the cache was not made)"
	fails=$((fails + 1))
fi
vd_stop
upstream_stop
if [ "$fails" -ne 0 ]; then
	echo "verifierd_pccs_api: $fails vector(s) or checks failed"
	exit 1
fi
echo "verifierd_pccs_api: ${#VECTOR_DIRS[@]} vectors ok; PCK certificates by platform answered as the upstream does"

