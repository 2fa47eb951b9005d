#!/usr/bin/env bash
# The simulated TEE through the CLI:
#  - cvm sim init makes a platform (keys 0600, collateral in the vectors'
#    layout); init refuses a used folder;
#  - cvm sim quote writes a TDX v4 quote that cvm quote verify accepts with
#    --root DIR/collateral/tdx/intel_sgx_root_ca.der and rejects without it;
#    the first line of every verdict (accepted or rejected) says SIMULATED,
#    and the JSON says "simulated": true (a real vector's says false);
#  - RTMR3 extensions by cvm sim extend are reproduced by an independent
#    replay (SHA-384 with python3's hashlib) and appear in the next quote;
#  - the quote binds the report data it was asked for;
#  - SEV-SNP: init also writes DIR/collateral/snp (the vectors' layout) and
#    the AMD keys (0600); cvm sim quote --snp writes a 1184-byte v3 report
#    whose layout, signature (checked with python3's cryptography against
#    vcek.der, when installed), reported TCB and chip ID are checked here
#    independently; cvm quote verify accepts it with --root
#    DIR/collateral/snp/ark.pem and rejects it without, the first line says
#    SIMULATED either way and the JSON says "simulated": true (a real SNP
#    vector's says false); the default policy needs the simulator's AMD CRL
#    (snp.require_crl): without crl.der the report is rejected; flipped bits
#    are rejected; refresh keeps it verifying;
#  - usage errors exit 2;
#  - cvm sim launch: VMs launched on the platform (MRTD and RTMR0..2 from
#    'cvm measure --json', options over it, MRCONFIGID, SNP MEASUREMENT and
#    HOST_DATA) quote what the host measured ('cvm measure lite --quote'
#    agrees), verify with the platform's collateral and root, extend RTMR3
#    on their own; a launched folder launches again; used folders,
#    non-platforms and bad measurement files are refused and make nothing.
# Needs: $CVM_BIN/cvm, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
V="$VECTORS"
FIX_REL=compat/verifier/dstack-verifier-fixtures/tdx-lite-getquote.json
vectors_require tdx/dcapqvl-tdx-v4-uptodate/quote.bin snp/trustee-milan-vcek/report.bin "$FIX_REL"
FIX="$V/$FIX_REL"

if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to replay RTMR3 and read the JSON output" >&2
	exit 77
fi
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

# expect_rc WANT CMD...: runs CMD, records its output in $tmp/out.
expect_rc() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "'$*' exited $rc, expected $want: $(head -c 600 "$tmp/err") $(head -c 600 "$tmp/out")"
		return 1
	fi
	pass
}

D="$tmp/platform"
MRTD=$(python3 -c 'print("ab" * 48)')
SNPM=$(python3 -c 'print("".join("%02x" % ((5 * i + 9) & 255) for i in range(48)))')
expect_rc 0 "$CVM" sim init "$D" --mrtd "$MRTD" --snp-measurement "$SNPM"
for f in tcb_info.json qe_identity.json tcb_info_issuer_chain.pem qe_identity_issuer_chain.pem \
	pck_crl_issuer_chain.pem pck_crl.der root_ca_crl.der intel_sgx_root_ca.der; do
	[ -s "$D/collateral/tdx/$f" ] && pass || fail "sim init made no $f"
done
for k in root pck_ca pck tcb_signer; do
	mode=$(stat -c %a "$D/keys/$k.key")
	[ "$mode" = 600 ] && pass || fail "keys/$k.key has mode $mode, expected 600"
done
expect_rc 1 "$CVM" sim init "$D" && { grep -q "not empty" "$tmp/err" && pass || fail "init on a used folder: $(cat "$tmp/err")"; }

ROOT="$D/collateral/tdx/intel_sgx_root_ca.der"
RD=$(python3 -c 'print("".join("%02x" % ((7 * i + 1) & 255) for i in range(64)))')
expect_rc 0 "$CVM" sim quote "$D" --report-data "$RD" --out "$tmp/q1.bin"

# accepted with the simulator's root, and the first line says so
expect_rc 0 "$CVM" quote verify "$tmp/q1.bin" --collateral "$D/collateral/tdx" --root "$ROOT"
first=$(head -n 1 "$tmp/out")
case "$first" in
"SIMULATED TEE:"*) pass ;;
*) fail "first line of an accepted simulated verdict: '$first'" ;;
esac
tail -n 1 "$tmp/out" | grep -q '^verdict: accepted (TDX, TCB UpToDate' && pass || fail "verdict: $(tail -n 1 "$tmp/out")"

# rejected against Intel's built-in root, and still labelled
expect_rc 3 "$CVM" quote verify "$tmp/q1.bin" --collateral "$D/collateral/tdx"
first=$(head -n 1 "$tmp/out")
case "$first" in
"SIMULATED TEE:"*) pass ;;
*) fail "first line of a rejected simulated verdict: '$first'" ;;
esac
grep -q '^verdict: rejected' "$tmp/out" && pass || fail "no rejection line: $(cat "$tmp/out")"

# -q still labels it
expect_rc 0 "$CVM" -q quote verify "$tmp/q1.bin" --collateral "$D/collateral/tdx" --root "$ROOT"
head -n 1 "$tmp/out" | grep -q '^SIMULATED TEE:' && pass || fail "-q output: $(cat "$tmp/out")"

# JSON: "simulated": true, report data bound
expect_rc 0 "$CVM" quote verify "$tmp/q1.bin" --collateral "$D/collateral/tdx" --root "$ROOT" --json
python3 - "$tmp/out" "$RD" "$MRTD" <<'PY' && pass || fail "JSON verdict of the simulated quote"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["simulated"] is True, o.get("simulated")
assert o["verdict"] == "accepted", o["verdict"]
body = o.get("body") or o
def find(d, key):
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            r = find(v, key)
            if r is not None:
                return r
    return None
assert find(o, "report_data") == sys.argv[2], find(o, "report_data")
assert find(o, "mr_td") == sys.argv[3], find(o, "mr_td")
PY

# a real vector is not labelled
if [ -n "$V" ] && [ -d "$V/tdx/dcapqvl-tdx-v4-uptodate" ]; then
	vd="$V/tdx/dcapqvl-tdx-v4-uptodate"
	at=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at_unix"])' "$vd/manifest.json")
	expect_rc 0 "$CVM" quote verify "$vd/quote.bin" --collateral "$vd" --at "$at" --json
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["simulated"] is False' "$tmp/out" &&
		pass || fail "a real vector's JSON is not simulated:false"
	expect_rc 0 "$CVM" quote verify "$vd/quote.bin" --collateral "$vd" --at "$at"
	head -n 1 "$tmp/out" | grep -q SIMULATED && fail "a real vector was labelled SIMULATED" || pass
else
	echo "note: vectors not found; the real-vector label check was not run" >&2
fi

# RTMR3: extend three times, replay independently, compare with show and
# with the next quote
digests=()
for i in 1 2 3; do
	digests+=("$(python3 -c 'import hashlib,sys; print(hashlib.sha384(("event %s" % sys.argv[1]).encode()).hexdigest())' "$i")")
done
for d in "${digests[@]}"; do
	expect_rc 0 "$CVM" sim extend "$D" --rtmr 3 --digest "$d"
done
want=$(python3 - "${digests[@]}" <<'PY'
import hashlib, sys
r = bytes(48)
for d in sys.argv[1:]:
    r = hashlib.sha384(r + bytes.fromhex(d)).digest()
print(r.hex())
PY
)
grep -q "^rtmr3: $want\$" "$tmp/out" && pass || fail "extend printed $(cat "$tmp/out"), replay gives $want"
expect_rc 0 "$CVM" sim show "$D" --json
python3 - "$tmp/out" "$want" "$MRTD" <<'PY' && pass || fail "sim show --json"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["simulated"] is True
assert o["rtmr"][3] == sys.argv[2], o["rtmr"][3]
assert o["rtmr"][0] == "00" * 48
assert o["mrtd"] == sys.argv[3]
PY
expect_rc 0 "$CVM" sim quote "$D" --report-data 00 --out "$tmp/q2.bin"
expect_rc 0 "$CVM" quote verify "$tmp/q2.bin" --collateral "$D/collateral/tdx" --root "$ROOT" --json
python3 - "$tmp/out" "$want" <<'PY' && pass || fail "the quote after extending does not carry the replayed RTMR3"
import json, sys
o = json.load(open(sys.argv[1]))
def find(d, key):
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            r = find(v, key)
            if r is not None:
                return r
    return None
rt = find(o, "rtmr") or [find(o, "rtmr%d" % i) for i in range(4)]
assert rt[3] == sys.argv[2], rt
assert find(o, "report_data") == "00" * 64
PY

# refresh keeps quotes verifying
expect_rc 0 "$CVM" sim refresh "$D"
expect_rc 0 "$CVM" quote verify "$tmp/q2.bin" --collateral "$D/collateral/tdx" --root "$ROOT"

# usage errors
expect_rc 2 "$CVM" sim
expect_rc 2 "$CVM" sim frobnicate "$D"
expect_rc 2 "$CVM" sim extend "$D" --rtmr 4 --digest "${digests[0]}"
expect_rc 2 "$CVM" sim extend "$D" --rtmr 3 --digest abcd
expect_rc 2 "$CVM" sim quote "$D" --out "$tmp/x.bin"
expect_rc 2 "$CVM" sim quote "$D" --report-data "$(python3 -c 'print("00" * 65)')" --out "$tmp/x.bin"
expect_rc 1 "$CVM" sim quote "$tmp" --report-data 00 --out "$tmp/x.bin"
grep -q "not a simulator folder" "$tmp/err" && pass || fail "quote on a non-simulator folder: $(cat "$tmp/err")"
expect_rc 2 "$CVM" sim init "$tmp/p2" --snp-product zen
expect_rc 2 "$CVM" sim init "$tmp/p2" --snp-measurement abcd
[ ! -e "$tmp/p2" ] && pass || fail "a usage error made $tmp/p2"

# ---- SEV-SNP -----------------------------------------------------------------

S="$D/collateral/snp"
for f in ark.pem ask.pem vcek.der vcek.pem cert_chain.pem crl.der; do
	[ -s "$S/$f" ] && pass || fail "sim init made no collateral/snp/$f"
done
for k in ark ask vcek; do
	mode=$(stat -c %a "$D/keys/$k.key")
	[ "$mode" = 600 ] && pass || fail "keys/$k.key has mode $mode, expected 600"
done
expect_rc 0 "$CVM" sim quote "$D" --snp --report-data "$RD" --out "$tmp/s1.bin"
size=$(stat -c %s "$tmp/s1.bin")
[ "$size" = 1184 ] && pass || fail "the SNP report has $size bytes, expected 1184"

# the ABI's layout, read at its offsets; the signature and the VCEK's
# extensions with python3's cryptography (not cvmkit's code)
python3 - "$tmp/s1.bin" "$RD" "$SNPM" <<'PY' && pass || fail "SNP report layout"
import struct, sys
r = open(sys.argv[1], "rb").read()
u32 = lambda o: struct.unpack_from("<I", r, o)[0]
u64 = lambda o: struct.unpack_from("<Q", r, o)[0]
assert len(r) == 1184
assert u32(0x00) == 3, u32(0)                  # VERSION
assert u64(0x08) == 0x30000, hex(u64(0x08))    # POLICY: bit 17 + SMT, no DEBUG
assert u32(0x30) == 0                          # VMPL
assert u32(0x34) == 1                          # SIGNATURE_ALGO
assert u32(0x48) == 0                          # KEY_INFO: VCEK
assert r[0x50:0x90].hex() == sys.argv[2]       # REPORT_DATA
assert r[0x90:0xC0].hex() == sys.argv[3]       # MEASUREMENT
assert r[0x160:0x180] == b"\xff" * 32          # REPORT_ID_MA
assert u64(0x38) == u64(0x180) == u64(0x1E0) == u64(0x1F0)
assert r[0x188:0x18B] == bytes([0x19, 0x01, 0x01]), r[0x188:0x18B]   # Milan
assert r[0x18B:0x1A0] == bytes(21) and r[0x1F8:0x2A0] == bytes(0xA8)
assert r[0x2A0 + 48:0x2E8] == bytes(24) and r[0x2E8 + 48:0x330] == bytes(24)
assert r[0x330:] == bytes(1184 - 0x330)
PY
if python3 -c 'import cryptography' 2>/dev/null; then
	# -W ignore: cryptography warns that the VCEK's serial is 0, as AMD's are
	python3 -W ignore - "$tmp/s1.bin" "$S/vcek.der" <<'PY' && pass || fail "SNP report signature or VCEK binding (python3 cryptography)"
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
r = open(sys.argv[1], "rb").read()
v = x509.load_der_x509_certificate(open(sys.argv[2], "rb").read())
sig_r = int.from_bytes(r[0x2A0:0x2A0 + 72], "little")
sig_s = int.from_bytes(r[0x2E8:0x2E8 + 72], "little")
v.public_key().verify(encode_dss_signature(sig_r, sig_s), r[:0x2A0], ec.ECDSA(hashes.SHA384()))
def ext(oid):
    return v.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value.value
def spl(oid):
    d = ext(oid)
    assert d[0] == 2 and d[1] == len(d) - 2, d.hex()
    return int.from_bytes(d[2:], "big")
tcb = r[0x180:0x188]   # Milan: bootloader, tee, 4 reserved, snp, microcode
assert tcb[0] == spl("1.3.6.1.4.1.3704.1.3.1"), tcb.hex()
assert tcb[1] == spl("1.3.6.1.4.1.3704.1.3.2"), tcb.hex()
assert tcb[2:6] == bytes(4)
assert tcb[6] == spl("1.3.6.1.4.1.3704.1.3.3"), tcb.hex()
assert tcb[7] == spl("1.3.6.1.4.1.3704.1.3.8"), tcb.hex()
assert r[0x1A0:0x1E0] == ext("1.3.6.1.4.1.3704.1.4")   # CHIP_ID is the hwID
PY
else
	echo "note: python3 has no 'cryptography' module; the independent SNP signature check was not run" >&2
fi

# accepted with the simulator's ARK, and the first line says so
expect_rc 0 "$CVM" quote verify "$tmp/s1.bin" --collateral "$S" --root "$S/ark.pem"
case "$(head -n 1 "$tmp/out")" in
"SIMULATED TEE:"*) pass ;;
*) fail "first line of an accepted simulated SNP verdict: '$(head -n 1 "$tmp/out")'" ;;
esac
tail -n 1 "$tmp/out" | grep -q '^verdict: accepted (SEV-SNP v3, Milan, VCEK, TCB UpToDate' && pass ||
	fail "SNP verdict: $(tail -n 1 "$tmp/out")"

# the default policy requires AMD's CRL (snp.require_crl): the simulator writes
# one, and without it the same report is rejected at policy.crl
mkdir -p "$tmp/snp-nocrl"
cp "$S/ark.pem" "$S/ask.pem" "$S/vcek.der" "$tmp/snp-nocrl/"
expect_rc 3 "$CVM" quote verify "$tmp/s1.bin" --collateral "$tmp/snp-nocrl" --root "$S/ark.pem" --json
python3 -c 'import json,sys; o = json.load(open(sys.argv[1])); assert o["verdict"] == "rejected" and "no CRL was given" in o["reason"], o' \
	"$tmp/out" && pass || fail "the simulated SNP report without its CRL: $(head -c 600 "$tmp/out")"

# rejected against AMD's built-in ARKs, and still labelled
expect_rc 3 "$CVM" quote verify "$tmp/s1.bin" --collateral "$S"
case "$(head -n 1 "$tmp/out")" in
"SIMULATED TEE:"*) pass ;;
*) fail "first line of a rejected simulated SNP verdict: '$(head -n 1 "$tmp/out")'" ;;
esac
grep -q "^verdict: rejected.*not one of AMD's ARKs" "$tmp/out" && pass || fail "SNP rejection: $(cat "$tmp/out")"
expect_rc 0 "$CVM" -q quote verify "$tmp/s1.bin" --collateral "$S" --root "$S/ark.pem"
head -n 1 "$tmp/out" | grep -q '^SIMULATED TEE:' && pass || fail "-q SNP output: $(cat "$tmp/out")"

# JSON
expect_rc 0 "$CVM" quote verify "$tmp/s1.bin" --collateral "$S" --root "$S/ark.pem" --json
python3 - "$tmp/out" "$RD" "$SNPM" <<'PY' && pass || fail "JSON verdict of the simulated SNP report"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["simulated"] is True, o.get("simulated")
assert o["verdict"] == "accepted", o["verdict"]
assert o["tee"] == "snp", o["tee"]
def find(d, key):
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            r = find(v, key)
            if r is not None:
                return r
    return None
assert find(o, "report_data") == sys.argv[2], find(o, "report_data")
assert find(o, "measurement") == sys.argv[3], find(o, "measurement")
PY
expect_rc 3 "$CVM" quote verify "$tmp/s1.bin" --collateral "$S" --json
python3 -c 'import json,sys; o = json.load(open(sys.argv[1])); assert o["simulated"] is True and o["verdict"] == "rejected"' \
	"$tmp/out" && pass || fail "JSON of the SNP report without --root: $(cat "$tmp/out")"

# a flipped bit anywhere (signed fields, r, s, the signature's reserved tail) is rejected
for off in 0x00 0x08 0x30 0x50 0x90 0x140 0x180 0x1a0 0x29f 0x2a0 0x2e8 0x3ff; do
	python3 - "$tmp/s1.bin" "$tmp/flip.bin" "$off" <<'PY'
import sys
r = bytearray(open(sys.argv[1], "rb").read())
r[int(sys.argv[3], 16)] ^= 0x04
open(sys.argv[2], "wb").write(r)
PY
	expect_rc 3 "$CVM" quote verify "$tmp/flip.bin" --collateral "$S" --root "$S/ark.pem" --type snp ||
		echo "  (flip at $off)" >&2
done

# the VMPL and the measurement show where they should
expect_rc 0 "$CVM" sim show "$D" --json
python3 - "$tmp/out" "$SNPM" <<'PY' && pass || fail "sim show --json: snp"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["snp"]["measurement"] == sys.argv[2], o["snp"]
assert o["snp"]["host_data"] == "00" * 32
assert "SEV-SNP" in o["snp"]["description"]
PY

# refresh re-signs the AMD CRL too; the report still verifies
before=$(sha256sum "$S/crl.der")
expect_rc 0 "$CVM" sim refresh "$D"
[ "$(sha256sum "$S/crl.der")" != "$before" ] && pass || fail "refresh left crl.der as it was"
expect_rc 0 "$CVM" quote verify "$tmp/s1.bin" --collateral "$S" --root "$S/ark.pem"

# a real SNP vector is not labelled
if [ -n "$V" ] && [ -d "$V/snp/trustee-milan-vcek" ]; then
	vd="$V/snp/trustee-milan-vcek"
	at=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at_unix"])' "$vd/manifest.json")
	rc=0
	"$CVM" quote verify "$vd/report.bin" --collateral "$vd" --at "$at" --json >"$tmp/out" 2>"$tmp/err" || rc=$?
	{ [ "$rc" = 0 ] || [ "$rc" = 3 ]; } &&
		python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["simulated"] is False' "$tmp/out" &&
		pass || fail "a real SNP vector's JSON is not simulated:false (rc $rc): $(head -c 300 "$tmp/err")"
	"$CVM" quote verify "$vd/report.bin" --collateral "$vd" --at "$at" >"$tmp/out" 2>&1 || true
	head -n 1 "$tmp/out" | grep -q SIMULATED && fail "a real SNP vector was labelled SIMULATED" || pass
else
	echo "note: SNP vectors not found; the real-vector label check was not run" >&2
fi

# a dev VM's launch: RTMR0..2, MRCONFIGID and HOST_DATA given at init appear
# in every quote and report; RTMR3 starts at zero and extends on top
L="$tmp/launch"
r0=$(python3 -c 'print("a0"*48)'); r1=$(python3 -c 'print("a1"*48)'); r2=$(python3 -c 'print("a2"*48)')
mc="01$(python3 -c 'print("5c"*32 + "00"*15)')"; hd=$(python3 -c 'print("d7"*32)')
expect_rc 0 "$CVM" -q sim init "$L" --rtmr0 "$r0" --rtmr1 "$r1" --rtmr2 "0x$r2" --mrconfigid "$mc" --snp-host-data "$hd"
ev=$(python3 -c 'print("e3"*48)')
expect_rc 0 "$CVM" -q sim extend "$L" --rtmr 3 --digest "$ev"
expect_rc 0 "$CVM" -q sim quote "$L" --report-data 00 --out "$tmp/lq.bin"
expect_rc 0 "$CVM" -q sim quote "$L" --snp --report-data 00 --out "$tmp/lr.bin"
python3 - "$tmp/lq.bin" "$tmp/lr.bin" "$r0" "$r1" "$r2" "$mc" "$hd" "$ev" <<'PY' && pass || fail "sim init --rtmr0..2/--mrconfigid/--snp-host-data: not in the quote"
import hashlib, sys
q = open(sys.argv[1], "rb").read(); r = open(sys.argv[2], "rb").read()
b = 48  # the TD report body follows the 48-byte v4 header: MRCONFIGID at 184, RTMR0 at 328
assert q[b + 184:b + 232].hex() == sys.argv[6], "MRCONFIGID"
for i in range(3):
    assert q[b + 328 + 48 * i:b + 376 + 48 * i].hex() == sys.argv[3 + i], "RTMR%d" % i
assert q[b + 472:b + 520] == hashlib.sha384(bytes(48) + bytes.fromhex(sys.argv[8])).digest(), "RTMR3"
assert r[0xC0:0xE0].hex() == sys.argv[7], "HOST_DATA"
PY
expect_rc 2 "$CVM" sim init "$tmp/launch2" --rtmr1 abcd
grep -q -- "--rtmr1: expected 48 bytes" "$tmp/err" && pass || fail "a short --rtmr1 was not named"

# ---- cvm sim launch: many VMs on one simulated platform -----------------------

# The host measures a VM ('cvm measure --json' on the dstack fixture) and
# launches it on the platform D: the VM's quotes carry the measured MRTD and
# RTMR0..2 ('cvm measure lite --quote' agrees with them), MRCONFIGID and a
# zero RTMR3, and verify with D's collateral and root (D was refreshed and
# its RTMR3 extended above: the VM starts at zero all the same).
expect_rc 0 "$CVM" measure lite "$FIX" --json
cp "$tmp/out" "$tmp/measure.json"
read -r M_MRTD M_R0 M_R1 M_R2 < <(python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); print(d["mrtd"], d["rtmr0"], d["rtmr1"], d["rtmr2"])' "$tmp/measure.json")
[ "${#M_MRTD}" = 96 ] && [ "${#M_R2}" = 96 ] && pass || fail "cvm measure --json gave no MRTD/RTMR2: $(head -c 300 "$tmp/measure.json")"
VM1="$tmp/vm1"
mc1="$(python3 -c 'print("c1"*48)')"; hd1="$(python3 -c 'print("d1"*32)')"; sm1="$(python3 -c 'print("e1"*48)')"
expect_rc 0 "$CVM" sim launch "$D" "$VM1" --measurement "$tmp/measure.json" --mrconfigid "$mc1" \
	--snp-measurement "$sm1" --snp-host-data "$hd1"
grep -q "^  rtmr1 *$M_R1\$" "$tmp/out" && grep -q "^  mrconfigid *$mc1\$" "$tmp/out" && pass ||
	fail "sim launch did not show the launch's values: $(cat "$tmp/out")"
for f in tcb_info.json pck_crl.der intel_sgx_root_ca.der; do
	cmp -s "$D/collateral/tdx/$f" "$VM1/collateral/tdx/$f" && pass || fail "the launch's collateral/tdx/$f is not the platform's"
done
mode=$(stat -c %a "$VM1/keys/pck.key")
[ "$mode" = 600 ] && pass || fail "the launch's keys/pck.key has mode $mode, expected 600"
expect_rc 0 "$CVM" -q sim quote "$VM1" --report-data "$RD" --out "$tmp/vm1q.bin"
expect_rc 0 "$CVM" quote verify "$tmp/vm1q.bin" --collateral "$D/collateral/tdx" --root "$ROOT" --json
python3 - "$tmp/out" "$RD" "$M_MRTD" "$M_R0" "$M_R1" "$M_R2" "$mc1" <<'PY' && pass || fail "the launched VM's quote, verified with the platform's collateral"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["simulated"] is True and o["verdict"] == "accepted", (o["simulated"], o["verdict"])
want = {"report_data": sys.argv[2], "mr_td": sys.argv[3], "rtmr0": sys.argv[4], "rtmr1": sys.argv[5],
        "rtmr2": sys.argv[6], "mr_config_id": sys.argv[7], "rtmr3": "00" * 48}
for k, v in want.items():
    assert o[k] == v, (k, o[k], v)
PY
expect_rc 0 "$CVM" measure lite "$FIX" --quote "$tmp/vm1q.bin"
[ "$(grep -c '^quote: .* matches$' "$tmp/out")" = 4 ] && pass || fail "cvm measure lite --quote on the VM's quote: $(cat "$tmp/out")"
# the VM's RTMR3 extends on its own; the platform's stays as it was
expect_rc 0 "$CVM" -q sim extend "$VM1" --rtmr 3 --digest "${digests[0]}"
expect_rc 0 "$CVM" sim show "$D" --json
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["rtmr"][3] == sys.argv[2]' "$tmp/out" "$want" &&
	pass || fail "extending the VM changed the platform's RTMR3"
expect_rc 0 "$CVM" sim show "$VM1" --json
python3 - "$tmp/out" "${digests[0]}" "$M_R0" <<'PY' && pass || fail "the VM's registers after an extension"
import hashlib, json, sys
o = json.load(open(sys.argv[1]))
assert o["rtmr"][3] == hashlib.sha384(bytes(48) + bytes.fromhex(sys.argv[2])).hexdigest(), o["rtmr"][3]
assert o["rtmr"][0] == sys.argv[3]
PY
# SEV-SNP: the launch's MEASUREMENT and HOST_DATA, the platform's ARK
expect_rc 0 "$CVM" -q sim quote "$VM1" --snp --report-data "$RD" --out "$tmp/vm1r.bin"
expect_rc 0 "$CVM" quote verify "$tmp/vm1r.bin" --collateral "$S" --root "$S/ark.pem" --json
python3 - "$tmp/out" "$sm1" "$hd1" <<'PY' && pass || fail "the launched VM's SNP report, verified with the platform's collateral"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["simulated"] is True and o["verdict"] == "accepted", (o["simulated"], o["verdict"])
assert o["measurement"] == sys.argv[2], o["measurement"]
assert o["host_data"] == sys.argv[3], o["host_data"]
PY
# explicit options override the file; a second VM on the same platform
# verifies with the same collateral; the platform's MRTD when none is given
VM2="$tmp/vm2"
r2b="$(python3 -c 'print("2b"*48)')"
expect_rc 0 "$CVM" -q sim launch "$D" "$VM2" --measurement "$tmp/measure.json" --rtmr2 "$r2b" --mrtd "$MRTD"
expect_rc 0 "$CVM" -q sim quote "$VM2" --report-data 00 --out "$tmp/vm2q.bin"
expect_rc 0 "$CVM" quote verify "$tmp/vm2q.bin" --collateral "$D/collateral/tdx" --root "$ROOT" --json
python3 - "$tmp/out" "$MRTD" "$M_R1" "$r2b" <<'PY' && pass || fail "the second VM's quote (--rtmr2 and --mrtd over --measurement)"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["verdict"] == "accepted"
assert o["mr_td"] == sys.argv[2] and o["rtmr1"] == sys.argv[3] and o["rtmr2"] == sys.argv[4], o
assert o["mr_config_id"] == "00" * 48
PY
# a launched folder is a platform: launch from it (all its values kept)
expect_rc 0 "$CVM" -q sim launch "$VM1" "$tmp/vm3"
expect_rc 0 "$CVM" sim show "$tmp/vm3" --json
python3 - "$tmp/out" "$M_MRTD" "$sm1" <<'PY' && pass || fail "a VM launched from a launched folder"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["mrtd"] == sys.argv[2] and o["rtmr"] == ["00" * 48] * 4, o
assert o["snp"]["measurement"] == sys.argv[3] and o["snp"]["host_data"] == "00" * 32, o["snp"]
PY
# refusals
expect_rc 1 "$CVM" sim launch "$D" "$VM1" && { grep -q "not empty" "$tmp/err" && pass || fail "launch into a used folder: $(cat "$tmp/err")"; }
expect_rc 1 "$CVM" sim launch "$tmp/snp-nocrl" "$tmp/vm4" && { grep -q "not a simulated platform" "$tmp/err" && pass || fail "launch from a non-platform: $(cat "$tmp/err")"; }
[ ! -e "$tmp/vm4" ] && pass || fail "a launch from a non-platform made $tmp/vm4"
echo '{"rtmr0": null}' >"$tmp/bad-measure.json"
expect_rc 1 "$CVM" sim launch "$D" "$tmp/vm4" --measurement "$tmp/bad-measure.json" &&
	{ grep -q '"mrtd" is missing' "$tmp/err" && pass || fail "a measurement without mrtd: $(cat "$tmp/err")"; }
expect_rc 1 "$CVM" sim launch "$D" "$tmp/vm4" --measurement "$tmp/no-such.json"
expect_rc 2 "$CVM" sim launch "$D"
expect_rc 2 "$CVM" sim launch "$D" "$tmp/vm4" --rtmr0 abcd
expect_rc 2 "$CVM" sim launch "$D" "$tmp/vm4" --snp-product genoa
[ ! -e "$tmp/vm4" ] && pass || fail "a refused launch made $tmp/vm4"

echo "cli_sim: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
