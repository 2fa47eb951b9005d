#!/usr/bin/env bash
# cvm quote verify / show on AMD SEV-SNP reports:
#  - every real report in tests/vectors/snp (and the extra vectors) verifies at its verify_at_unix (tee "snp", tcb_status
#    "UpToDate"), and the JSON fields match the vector's manifest;
#  - the default (strict) policy rejects every real report because no AMD CRL comes with it
#    (snp.require_crl, on by default; no CRL was found in public repositories, so the other checks
#    run with a policy that turns it off, and say so); without that requirement it rejects the
#    debug guest and the VMPL 1 report with that reason;
#  - a bit flipped in the signed part of each report is rejected (exit 3);
#  - a chain made here with the openssl tool (its own ARK, ASK and VCEK, RSASSA-PSS and AMD's
#    extensions, the report re-signed with the VCEK's P-384 key) is rejected by default and accepted
#    with --root and its ARK's CRL; without a CRL the default policy rejects it; a CRL revoking the
#    ASK rejects it again;
#  - usage and file errors exit 2 and 1; cvm quote show prints every field.
# Needs: $CVM_BIN/cvm, tests/vectors, python3 (JSON and the signature encoding), openssl (the tool).
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
V="$VECTORS"
vectors_require snp/gosevguest-milan-vcek/report.bin snp/trustee-milan-vlek/report.bin snp/trustee-milan-vcek/report.bin
for tool in python3 openssl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is needed (JSON checks, test chain)" >&2
		exit 77
	fi
done
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }

# The real vectors ship no AMD CRL: every policy used on them turns snp.require_crl off.
cat >"$tmp/lenient.json" <<'JSON'
{ "allow_debug": true, "snp": { "vmpl": "any", "allow_migration_agent": true, "require_crl": false } }
JSON
cat >"$tmp/nocrl.json" <<'JSON'
{ "snp": { "require_crl": false } }
JSON

cat >"$tmp/check.py" <<'PY'
import json, sys

def load(p):
    with open(p) as f:
        return json.load(f)

mode = sys.argv[1]
if mode == "at":
    print(load(sys.argv[2])["verify_at_unix"])
    sys.exit(0)
if mode == "get":
    v = load(sys.argv[2])
    for k in sys.argv[3].split("."):
        v = v.get(k) if isinstance(v, dict) else None
    print("null" if v is None else v)
    sys.exit(0)
out = load(sys.argv[2])
bad = []
if mode == "fields":
    m = load(sys.argv[3])
    f = m["fields"]
    want = {"tee": "snp", "tcb_status": "UpToDate", "authentic": True, "verdict": "accepted",
            "signer": f["signing_key"].lower(), "product": m["expected"]["product"],
            "measurement": f["measurement"], "report_data": f["report_data"], "chip_id": f["chip_id"],
            "host_data": f["host_data"], "report_version": f["version"], "vmpl": f["vmpl"],
            "guest_svn": f["guest_svn"]}
    for k, v in want.items():
        if out.get(k) != v:
            bad.append("%s is %r, manifest says %r" % (k, out.get(k), v))
    rt = out.get("reported_tcb") or {}
    for k, mk in (("bootloader", "bootloader"), ("tee", "tee"), ("snp", "snp"), ("microcode", "microcode")):
        if rt.get(k) != f["reported_tcb"][mk]:
            bad.append("reported_tcb.%s is %r, manifest says %r" % (k, rt.get(k), f["reported_tcb"][mk]))
    if int(rt.get("raw", "0"), 16) != int(f["reported_tcb"]["raw_le_u64"], 16):
        bad.append("reported_tcb.raw %r" % rt.get("raw"))
    if (out.get("policy") or {}).get("raw") is None or int(out["policy"]["raw"], 16) != int(f["policy"], 16):
        bad.append("policy %r, manifest %r" % (out.get("policy"), f["policy"]))
    for s in out.get("steps", []):
        if set(s) != {"name", "ok", "detail"} or not s["ok"]:
            bad.append("step %r" % s)
elif mode == "rejected":
    # verdict rejected, tcb_status as asked ("UpToDate" or the failing check), reason contains a word
    if out.get("verdict") != "rejected":
        bad.append("verdict %r" % out.get("verdict"))
    if out.get("tcb_status") != sys.argv[3]:
        bad.append("tcb_status %r, want %r" % (out.get("tcb_status"), sys.argv[3]))
    if sys.argv[4] not in (out.get("reason") or ""):
        bad.append("reason %r does not say %r" % (out.get("reason"), sys.argv[4]))
    if out.get("tee") != "snp":
        bad.append("tee %r" % out.get("tee"))
elif mode == "show":
    for k in ("verified", "report_version", "policy", "measurement", "report_data", "chip_id", "reported_tcb",
              "committed_tcb", "launch_tcb", "current_tcb", "platform_info", "signing_key", "signature_r",
              "signature_s", "family_id", "image_id", "id_key_digest", "author_key_digest", "host_data",
              "report_id", "report_id_ma", "current_version", "committed_version"):
        if k not in out:
            bad.append("show: missing " + k)
    if out.get("verified") is not False:
        bad.append("show: verified %r" % out.get("verified"))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
check() { python3 "$tmp/check.py" "$@"; }

# expect_rc WANT CMD...: runs CMD, which must exit with WANT; its stdout goes to $tmp/out.
expect_rc() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "exit $rc (want $want): $* ($(head -c 300 "$tmp/err"))"
		return 1
	fi
	return 0
}

# --- the real reports --------------------------------------------------------
vector_dirs "report.bin manifest.json" snp
for d in "${VECTOR_DIRS[@]}"; do
	name="$(basename "$d")"
	at="$(check at "$d/manifest.json")"
	if expect_rc 0 "$CVM" quote verify "$d/report.bin" --collateral "$d" --at "$at" --policy "$tmp/lenient.json" --json; then
		if problems="$(check fields "$tmp/out" "$d/manifest.json")"; then pass; else fail "$name: $problems"; fi
	fi
	# the same with --type snp, as text
	if expect_rc 0 "$CVM" quote verify "$d/report.bin" --collateral "$d" --at "$at" --policy "$tmp/lenient.json" --type snp; then
		if grep -q '^verdict: accepted (SEV-SNP' "$tmp/out" && grep -q '  OK    report_signature: ' "$tmp/out"; then
			pass
		else
			fail "$name: text output: $(tail -n 1 "$tmp/out")"
		fi
	fi
	# one bit flipped in the signed part (MEASUREMENT, then VMPL): rejected
	for off in 0x90 0x30; do
		python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[int(sys.argv[2], 16)] ^= 1; open(sys.argv[3], "wb").write(b)' \
			"$d/report.bin" "$off" "$tmp/tampered.bin"
		if expect_rc 3 "$CVM" quote verify "$tmp/tampered.bin" --collateral "$d" --at "$at" --policy "$tmp/lenient.json" --json; then
			if problems="$(check rejected "$tmp/out" report_signature "does not verify")"; then pass; else fail "$name tampered at $off: $problems"; fi
		fi
	done
	# one second before the VCEK/VLEK is valid
	vek="$d/vcek.der"
	[ -f "$vek" ] || vek="$d/vlek.der"
	nb="$(openssl x509 -inform DER -in "$vek" -noout -startdate | sed 's/^notBefore=//')"
	early=$(($(date -u -d "$nb" +%s) - 1))
	if expect_rc 3 "$CVM" quote verify "$d/report.bin" --collateral "$d" --at "$early" --json; then
		status="$(check get "$tmp/out" tcb_status)"
		case "$status" in vcek | vlek) pass ;; *) fail "$name at $early: tcb_status $status" ;; esac
	fi
	# the default policy requires AMD's CRL, which the vector does not have
	if expect_rc 3 "$CVM" quote verify "$d/report.bin" --collateral "$d" --at "$at" --json; then
		if problems="$(check rejected "$tmp/out" UpToDate "no CRL was given")"; then pass; else fail "$name default policy without a CRL: $problems"; fi
	fi
	# show
	if expect_rc 0 "$CVM" quote show "$d/report.bin" --json; then
		if problems="$(check show "$tmp/out")"; then pass; else fail "$name show: $problems"; fi
	fi
	if expect_rc 0 "$CVM" quote show "$d/report.bin"; then
		if grep -q '^  measurement ' "$tmp/out" && grep -q '^  reported_tcb ' "$tmp/out" && grep -q 'parsed only' "$tmp/out"; then
			pass
		else
			fail "$name show text"
		fi
	fi
done

# --- the default policy, but for the CRL the vectors lack --------------------------
g="$V/snp/gosevguest-milan-vcek"
if [ -d "$g" ] && expect_rc 3 "$CVM" quote verify "$g/report.bin" --collateral "$g" --at 1664000000 --policy "$tmp/nocrl.json" --json; then
	if problems="$(check rejected "$tmp/out" UpToDate "DEBUG")"; then pass; else fail "gosevguest default policy: $problems"; fi
fi
l="$V/snp/trustee-milan-vlek"
if [ -d "$l" ] && expect_rc 3 "$CVM" quote verify "$l/report.bin" --collateral "$l" --at 1740000000 --policy "$tmp/nocrl.json" --json; then
	if problems="$(check rejected "$tmp/out" UpToDate "VMPL 1")"; then pass; else fail "vlek default policy: $problems"; fi
fi
t="$V/snp/trustee-milan-vcek"
if [ -d "$t" ]; then
	if expect_rc 0 "$CVM" -q quote verify "$t/report.bin" --collateral "$t" --at 1700000000 --policy "$tmp/nocrl.json"; then pass; fi
	# usage and file errors
	if expect_rc 2 "$CVM" quote verify "$t/report.bin" --collateral "$t" --type tpm; then pass; fi
	# without --collateral: the cache (empty, offline here); a v2 report does not name its product
	if expect_rc 1 "$CVM" quote verify "$t/report.bin" --cache "$tmp/emptycache" --offline; then
		if grep -q "does not name its product" "$tmp/err" && grep -q -- "--product" "$tmp/err"; then pass; else fail "cache path without --product: $(cat "$tmp/err")"; fi
	fi
	mkdir -p "$tmp/empty"
	if expect_rc 1 "$CVM" quote verify "$t/report.bin" --collateral "$tmp/empty"; then
		if grep -q 'vcek' "$tmp/err"; then pass; else fail "missing collateral message: $(cat "$tmp/err")"; fi
	fi
	head -c 1000 "$t/report.bin" >"$tmp/short.bin"
	if expect_rc 3 "$CVM" quote verify "$tmp/short.bin" --collateral "$t" --type snp --json; then
		if [ "$(check get "$tmp/out" tcb_status)" = report.parse ]; then pass; else fail "short report tcb_status"; fi
	fi
	if expect_rc 1 "$CVM" quote show "$tmp/short.bin" --type snp; then pass; fi
fi

# --- a chain made here: self-made ARK ------------------------------------------
if [ -d "$t" ]; then
	ca="$tmp/ca"
	mkdir -p "$ca"
	subj="/OU=Engineering/C=US/L=Santa Clara/ST=CA/O=Advanced Micro Devices"
	pss=(-sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384)
	chip="$(python3 -c 'import sys; b = open(sys.argv[1], "rb").read(); print(":".join("%02X" % x for x in b[0x1a0:0x1e0]))' "$t/report.bin")"
	(
		cd "$ca"
		openssl genrsa -out ark.key 2048
		openssl req -x509 -new -key ark.key -subj "$subj/CN=ARK-Milan" -days 30 "${pss[@]}" -set_serial 0x10000 \
			-addext "keyUsage=critical,keyCertSign,cRLSign" -out ark.pem
		printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n' >ask.ext
		openssl genrsa -out ask.key 2048
		openssl req -new -key ask.key -subj "$subj/CN=SEV-Milan" -out ask.csr
		openssl x509 -req -in ask.csr -CA ark.pem -CAkey ark.key -set_serial 0x10001 -days 30 "${pss[@]}" -extfile ask.ext -out ask.pem
		# the TCB and chip ID of trustee-milan-vcek's report: bl 3, tee 0, snp 8, ucode 115
		{
			echo "1.3.6.1.4.1.3704.1.1=DER:02:01:00"
			echo "1.3.6.1.4.1.3704.1.2=DER:16:08:4D:69:6C:61:6E:2D:42:30"
			echo "1.3.6.1.4.1.3704.1.3.1=DER:02:01:03"
			echo "1.3.6.1.4.1.3704.1.3.2=DER:02:01:00"
			echo "1.3.6.1.4.1.3704.1.3.3=DER:02:01:08"
			echo "1.3.6.1.4.1.3704.1.3.8=DER:02:01:73"
			echo "1.3.6.1.4.1.3704.1.4=DER:$chip"
		} >vcek.ext
		openssl ecparam -name secp384r1 -genkey -noout -out vcek.key
		openssl req -new -key vcek.key -subj "$subj/CN=SEV-VCEK" -out vcek.csr
		openssl x509 -req -in vcek.csr -CA ask.pem -CAkey ask.key -set_serial 0 -days 30 "${pss[@]}" -extfile vcek.ext \
			-outform DER -out vcek.der
		# the report, re-signed by this VCEK
		head -c 672 "$t/report.bin" >signed.bin
		openssl dgst -sha384 -sign vcek.key -out sig.der signed.bin
		python3 - "$t/report.bin" sig.der report.bin <<'PY'
import sys
rep = bytearray(open(sys.argv[1], "rb").read())
der = open(sys.argv[2], "rb").read()
def tlv(b, i):
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, b[i:i + n], i + n
_, seq, _ = tlv(der, 0)
_, r, j = tlv(seq, 0)
_, s, _ = tlv(seq, j)
r = int.from_bytes(r, "big").to_bytes(72, "little")
s = int.from_bytes(s, "big").to_bytes(72, "little")
rep[0x2a0:0x2a0 + 72] = r
rep[0x2a0 + 72:0x2a0 + 144] = s
open(sys.argv[3], "wb").write(rep)
PY
		# a CRL of this ARK that revokes the ASK (serial 10001)
		: >index.txt
		echo 01 >crlnumber
		printf 'R\t%s\t%s\t010001\tunknown\t%s/CN=SEV-Milan\n' "$(date -u -d '+30 days' +%y%m%d%H%M%SZ)" \
			"$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" "$subj" >index.txt
		printf '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha384\ndefault_crl_days = 30\n' >ca.cnf
		openssl ca -batch -config ca.cnf -gencrl -keyfile ark.key -cert ark.pem \
			-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384 -out crl.pem
		openssl crl -in crl.pem -outform DER -out crl.der
		# and one that revokes nothing
		: >index.txt
		openssl ca -batch -config ca.cnf -gencrl -keyfile ark.key -cert ark.pem \
			-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384 -out crl-none.pem
		openssl crl -in crl-none.pem -outform DER -out crl-none.der
	) >"$tmp/ca.log" 2>&1 || fail "making the test chain with openssl failed: $(tail -n 5 "$tmp/ca.log")"
	if [ -f "$ca/report.bin" ] && [ -f "$ca/crl.der" ] && [ -f "$ca/crl-none.der" ]; then
		mkdir -p "$tmp/own" "$tmp/own-crl" "$tmp/own-ok"
		cp "$ca/vcek.der" "$ca/ask.pem" "$ca/ark.pem" "$tmp/own/"
		cp "$ca/vcek.der" "$ca/ask.pem" "$ca/ark.pem" "$ca/crl.der" "$tmp/own-crl/"
		cp "$ca/vcek.der" "$ca/ask.pem" "$ca/ark.pem" "$tmp/own-ok/"
		cp "$ca/crl-none.der" "$tmp/own-ok/crl.der"
		if expect_rc 3 "$CVM" quote verify "$ca/report.bin" --collateral "$tmp/own" --json; then
			if problems="$(check rejected "$tmp/out" ark "not one of AMD's ARKs")"; then pass; else fail "self-made ARK by default: $problems"; fi
		fi
		if expect_rc 0 "$CVM" quote verify "$ca/report.bin" --collateral "$tmp/own-ok" --root "$ca/ark.pem" --json; then
			if [ "$(check get "$tmp/out" tcb_status)" = UpToDate ] && [ "$(check get "$tmp/out" root_builtin)" = False ]; then
				pass
			else
				fail "self-made ARK with --root: $(head -c 400 "$tmp/out")"
			fi
		fi
		# without its CRL: rejected by the default policy, accepted when the policy allows it
		if expect_rc 3 "$CVM" quote verify "$ca/report.bin" --collateral "$tmp/own" --root "$ca/ark.pem" --json; then
			if problems="$(check rejected "$tmp/out" UpToDate "no CRL was given")"; then pass; else fail "self-made chain without a CRL: $problems"; fi
		fi
		if expect_rc 0 "$CVM" quote verify "$ca/report.bin" --collateral "$tmp/own" --root "$ca/ark.pem" --policy "$tmp/nocrl.json"; then pass; fi
		if expect_rc 3 "$CVM" quote verify "$ca/report.bin" --collateral "$tmp/own-crl" --root "$ca/ark.pem" --json; then
			if problems="$(check rejected "$tmp/out" crl "revoked")"; then pass; else fail "revoked ASK: $problems"; fi
		fi
		# the real ARK given as the root does not anchor this chain
		if expect_rc 3 "$CVM" quote verify "$ca/report.bin" --collateral "$tmp/own" --root "$t/ark.pem"; then pass; fi
		# the real report against the self-made chain: the VCEK did not sign it
		if expect_rc 3 "$CVM" quote verify "$t/report.bin" --collateral "$tmp/own" --root "$ca/ark.pem" --json; then
			if [ "$(check get "$tmp/out" tcb_status)" = report_signature ]; then pass; else fail "real report, own chain"; fi
		fi
	fi
fi

echo "cli_snp: $checks passed, $failures failed"
[ "$failures" -eq 0 ]
