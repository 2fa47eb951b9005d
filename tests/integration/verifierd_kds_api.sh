#!/usr/bin/env bash
# cvm-verifierd's AMD-KDS-compatible read API against every SEV-SNP vector:
# the vector's certificates are imported into a fresh cache (--import, at
# the vector's verify_at_unix), a daemon serves them at that time, and the
# requests AMD's clients send are answered byte for byte with the files:
#   go-sev-guest (verify/trust, kds.VCEKCertURL):
#     /vcek/v1/{product}/{chip id hex}?blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d
#   virtee snpguest fetch vcek (two-digit SPL values):
#     /vcek/v1/{product}/{chip id hex}?blSPL=%02d&teeSPL=%02d&snpSPL=%02d&ucodeSPL=%02d
#   both, for the chain: /{vcek,vlek}/v1/{product}/cert_chain
# with the chip ID and reported TCB read from the vector's report. A TCB the
# cache does not hold and the CRL (no vector carries one) are 404: no
# upstream is configured.
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
# shellcheck source=tests/common/verifierd.sh
. "$(dirname "$0")/../common/verifierd.sh"
[ -x "$bin/cvm-verifierd" ] || { echo "verifierd_kds_api: $bin/cvm-verifierd is missing (build it first)"; exit 1; }
command -v python3 >/dev/null || { echo "verifierd_kds_api: python3 is missing"; exit 1; }

vector_dirs "report.bin cert_chain.pem manifest.json" snp

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verifierd-kds.XXXXXX")"
cleanup() {
	vd_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/check.py" <<'PY'
import http.client, json, os, struct, sys

port, d = int(sys.argv[1]), sys.argv[2]
fails = []
man = json.load(open(os.path.join(d, "manifest.json")))
product = man["expected"]["product"]

def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    h = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, h, body

def check(cond, what):
    if not cond:
        fails.append(what)

def answer(path, status, ctype=None, body=None):
    s, h, b = get(path)
    check(s == status, f"{path}: status {s}, expected {status}: {b[:200]!r}")
    if s == 200 and status == 200:
        check(h.get("content-type") == ctype, f"{path}: content type {h.get('content-type')!r}")
        check(b == body, f"{path}: the body differs from the vector's file ({len(b)} vs {len(body)} bytes)")

report = open(os.path.join(d, "report.bin"), "rb").read()
tcb = report[0x180:0x188]         # REPORTED_TCB: what the VCEK certifies
chip = report[0x1A0:0x1E0]        # CHIP_ID
signer = "vlek" if os.path.exists(os.path.join(d, "vlek.der")) else "vcek"
chain = open(os.path.join(d, "cert_chain.pem"), "rb").read()
answer(f"/{signer}/v1/{product}/cert_chain", 200, "application/x-pem-file", chain)
answer(f"/{signer}/v1/{product}/crl", 404)
if signer == "vcek":
    vcek = open(os.path.join(d, "vcek.der"), "rb").read()
    if product == "Turin":
        fmc, bl, tee, snp, ucode = tcb[0], tcb[1], tcb[2], tcb[3], tcb[7]
        hwid = chip[:8].hex()
    else:
        bl, tee, snp, ucode, fmc = tcb[0], tcb[1], tcb[6], tcb[7], None
        hwid = chip.hex()
    if chip == bytes(64):
        print(f"note: {os.path.basename(d)}: the chip ID is masked; no VCEK request by chip")
    else:
        extra = f"&fmcSPL={fmc}" if fmc is not None else ""
        answer(f"/vcek/v1/{product}/{hwid}?blSPL={bl}&teeSPL={tee}&snpSPL={snp}&ucodeSPL={ucode}{extra}",
               200, "application/x-x509-ca-cert", vcek)
        extra = f"fmcSPL={fmc:02}&" if fmc is not None else ""
        answer(f"/vcek/v1/{product}/{hwid}?{extra}blSPL={bl:02}&teeSPL={tee:02}&snpSPL={snp:02}&ucodeSPL={ucode:02}",
               200, "application/x-x509-ca-cert", vcek)
        other = (ucode + 1) % 256
        answer(f"/vcek/v1/{product}/{hwid}?blSPL={bl}&teeSPL={tee}&snpSPL={snp}&ucodeSPL={other}"
               + (f"&fmcSPL={fmc}" if fmc is not None else ""), 404)
for f in fails:
    print("FAIL: " + f)
sys.exit(1 if fails else 0)
PY

fails=0
for d in "${VECTOR_DIRS[@]}"; do
	name="$(vector_name "$d")"
	at="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at_unix"])' "$d/manifest.json")"
	cache="$tmp/cache-${name//\//-}"
	if ! "$bin/cvm-verifierd" --cache "$cache" --at "$at" --import "$d" >"$tmp/import.out" 2>&1; then
		cat "$tmp/import.out"
		echo "FAIL: $name: --import of the vector's certificates failed"
		fails=$((fails + 1))
		continue
	fi
	if ! vd_start "$tmp/vd.log" 1 --cache "$cache" --at "$at"; then
		echo "FAIL: $name: the daemon did not start"
		fails=$((fails + 1))
		continue
	fi
	if ! python3 "$tmp/check.py" "$VD_PORT" "$d"; then
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
if [ "$fails" -ne 0 ]; then
	echo "verifierd_kds_api: $fails vector(s) failed"
	exit 1
fi
echo "verifierd_kds_api: ${#VECTOR_DIRS[@]} vectors ok"
