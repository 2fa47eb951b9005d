#!/usr/bin/env bash
# cvm tpm quote / verify / pcrread against a swtpm this script starts on
# 127.0.0.1 (free ports, killed by the trap), and interoperability with
# tpm2-tools in both directions:
#  - cvm tpm pcrread agrees with tpm2_pcrread and with an extend computed here;
#  - quotes by cvm tpm quote (ECC P-256/P-384, RSASSA, RSAPSS AKs, under the
#    EK or an SRK) verify with cvm tpm verify, with tpm2_verifysignature (the
#    TPM checks the signature) and with tpm2_checkquote (except RSAPSS, which
#    tpm2_checkquote 5.4 cannot check), and their fields agree with tpm2_print;
#  - quotes by tpm2_quote (RSASSA, ECDSA, RSAPSS AKs from tpm2_createak;
#    serialized and values PCR files) verify with cvm tpm verify;
#  - a changed nonce, an extended PCR, a flipped signature or message byte,
#    a truncated message and a non-restricted key are rejected (exit 3), bad
#    input files are errors (1), bad command lines usage errors (2).
# Needs: $CVM_BIN/cvm, swtpm, tpm2-tools, python3.
# No `set -e`: each check records its own failure and the script goes on.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"

if ! command -v swtpm >/dev/null 2>&1; then
	echo "SKIP: swtpm is not installed (scripts/setup.sh installs swtpm, swtpm-tools, tpm2-tools)" >&2
	exit 77
fi
for tool in tpm2_quote tpm2_checkquote tpm2_pcrread tpm2_pcrextend tpm2_createek tpm2_createak tpm2_print \
	tpm2_flushcontext tpm2_verifysignature tpm2_readpublic python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool is missing (scripts/setup.sh installs tpm2-tools, and python3 with clang-tidy)" >&2
		exit 1
	fi
done
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi
CVM="$(cd "$(dirname "$CVM")" && pwd)/$(basename "$CVM")"

tmp="$(mktemp -d)"
# shellcheck source=tests/common/swtpm.sh
. "$SRC/tests/common/swtpm.sh"
cleanup() {
	swtpm_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

swtpm_start "$tmp/state" || {
	echo "FAIL: could not start swtpm" >&2
	exit 1
}
T="$SWTPM_TCTI"
export TPM2TOOLS_TCTI="$T"
export TSS2_LOG=all+none
echo "swtpm on port $SWTPM_PORT (pid $SWTPM_PID)"

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }

# expect_rc WANT DESCRIPTION CMD...: runs CMD, output in $tmp/out and $tmp/err.
expect_rc() {
	local want="$1" what="$2" rc=0
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$what: exit $rc, expected $want"
		sed 's/^/    /' "$tmp/out" "$tmp/err" >&2
		return 1
	fi
	pass
}

# flush: tpm2-tools leave transient objects and sessions behind when no
# resource manager sits between them and the TPM.
flush() {
	tpm2_flushcontext -t >/dev/null 2>&1 || true
	tpm2_flushcontext -s >/dev/null 2>&1 || true
}

json_get() { # json_get FILE PY_EXPR  (the JSON object is `j`)
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# flip_byte FILE OFFSET_FROM_END: xor one byte with 0x01.
flip_byte() {
	python3 - "$1" "$2" <<'EOF'
import sys
p, k = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
b[len(b) - k] ^= 1
open(p, "wb").write(bytes(b))
EOF
}

NONCE=00112233445566778899aabbccddeeff

# ---- pcrread ---------------------------------------------------------------
EXT=$(python3 -c 'import hashlib; print(hashlib.sha256(b"cvmkit").hexdigest())')
tpm2_pcrextend "16:sha256=$EXT" >/dev/null
WANT16=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(bytes(32)+bytes.fromhex(sys.argv[1])).hexdigest())' "$EXT")
if expect_rc 0 "pcrread sha256:0-23" "$CVM" tpm pcrread --tcti "$T" --pcrs sha256:0-23 --json; then
	cp "$tmp/out" "$tmp/pcrread.json"
	got16=$(json_get "$tmp/pcrread.json" 'j["pcrs"]["sha256"]["16"]')
	[ "$got16" = "$WANT16" ] && pass || fail "pcrread: PCR 16 is $got16, the extend gives $WANT16"
	tpm2_pcrread sha256 >"$tmp/tpm2_pcrread.yaml"
	python3 - "$tmp/pcrread.json" "$tmp/tpm2_pcrread.yaml" <<'EOF' && pass || fail "pcrread differs from tpm2_pcrread"
import json, re, sys
ours = json.load(open(sys.argv[1]))["pcrs"]["sha256"]
theirs = {m.group(1): m.group(2).lower() for m in re.finditer(r"^\s+(\d+)\s*:\s*0x([0-9A-Fa-f]+)", open(sys.argv[2]).read(), re.M)}
assert len(theirs) == 24 and ours == theirs, (ours, theirs)
EOF
fi
expect_rc 0 "pcrread two banks, text" "$CVM" tpm pcrread --tcti "$T" --pcrs sha1:0+sha256:16 &&
	grep -q "$WANT16" "$tmp/out" && pass || fail "pcrread text does not show PCR 16"
expect_rc 2 "pcrread bad selection" "$CVM" tpm pcrread --tcti "$T" --pcrs sha256:24
expect_rc 1 "pcrread unreachable TCTI" "$CVM" tpm pcrread --tcti "swtpm:host=127.0.0.1,port=1"

# ---- cvm tpm quote, every AK type, both parents ----------------------------
# name handle type parent checkquote-hash
cat >"$tmp/aks" <<'EOF'
ecc256 0x81000100 ecc-p256 ek sha256
ecc384 0x81000101 ecc-p384 ek sha384
rsassa 0x81000102 rsa-rsassa ek sha256
rsapss 0x81000103 rsa-rsapss ek sha256
srk256 0x81000104 ecc-p256 srk sha256
EOF
SEL="sha256:0,1,16+sha1:16"
while read -r name handle type parent halg; do
	d="$tmp/q-$name"
	expect_rc 0 "quote $name" "$CVM" tpm quote --tcti "$T" --pcrs "$SEL" --nonce "$NONCE" --out "$d" \
		--ak-handle "$handle" --ak-type "$type" --parent "$parent" || continue
	grep -q "created now" "$tmp/out" && pass || fail "quote $name: the AK was not reported as created"
	for f in quote.msg quote.sig quote.pcrs pcrs.json ak.pub ak.pem nonce.hex; do
		[ -s "$d/$f" ] && pass || fail "quote $name: $f missing"
	done
	# cvm verifies its own quote with each PCR and AK format.
	expect_rc 0 "verify $name (pcrs.json)" "$CVM" tpm verify --ak "$d/ak.pub" --attest "$d/quote.msg" \
		--sig "$d/quote.sig" --nonce "$NONCE" --pcrs "$d/pcrs.json"
	expect_rc 0 "verify $name (serialized pcrs, PEM AK)" "$CVM" tpm verify --ak "$d/ak.pem" \
		--attest "$d/quote.msg" --sig "$d/quote.sig" --nonce "$NONCE" --pcrs "$d/quote.pcrs"
	# tpm2-tools verify it too.
	# The TPM itself checks the signature with the persistent AK.
	expect_rc 0 "tpm2_verifysignature accepts the $name quote" tpm2_verifysignature -c "$handle" -g "$halg" \
		-m "$d/quote.msg" -s "$d/quote.sig"
	flush
	# tpm2_checkquote 5.4 always verifies with PKCS#1 v1.5 padding: no PSS.
	if [ "$name" != rsapss ]; then
		expect_rc 0 "tpm2_checkquote accepts the $name quote" tpm2_checkquote -u "$d/ak.pem" -m "$d/quote.msg" \
			-s "$d/quote.sig" -f "$d/quote.pcrs" -q "$NONCE" -g "$halg"
		expect_rc 0 "tpm2_checkquote accepts the $name quote (tss AK)" tpm2_checkquote -u "$d/ak.pub" \
			-m "$d/quote.msg" -s "$d/quote.sig" -f "$d/quote.pcrs" -q "$NONCE" -g "$halg"
	fi
	# Our parser and tpm2_print agree on the attested fields.
	"$CVM" tpm verify --ak "$d/ak.pub" --attest "$d/quote.msg" --sig "$d/quote.sig" --nonce "$NONCE" \
		--pcrs "$d/pcrs.json" --json >"$d/verify.json"
	tpm2_print -t TPMS_ATTEST "$d/quote.msg" >"$d/print.yaml"
	python3 - "$d/verify.json" "$d/print.yaml" <<'EOF' && pass || fail "quote $name: fields differ from tpm2_print"
import json, re, sys
a = json.load(open(sys.argv[1]))["attest"]
t = open(sys.argv[2]).read()
def field(name):
    return re.search(r"^\s*" + name + r":\s*(\S+)", t, re.M).group(1)
assert a["extra_data"] == field("extraData")
assert a["qualified_signer"] == field("qualifiedSigner")
assert a["pcr_digest"] == field("pcrDigest")
assert a["clock"] == int(field("clock"))
assert a["reset_count"] == int(field("resetCount"))
assert a["restart_count"] == int(field("restartCount"))
EOF
done <"$tmp/aks"

# Clock info: real under the EK, obfuscated under an SRK (owner hierarchy).
rc_ek=$(json_get "$tmp/q-ecc256/verify.json" 'j["attest"]["reset_count"]')
rc_srk=$(json_get "$tmp/q-srk256/verify.json" 'j["attest"]["reset_count"]')
[ "$rc_ek" -lt 100 ] && pass || fail "resetCount under the EK is $rc_ek: not a plain count"
[ "$rc_ek" != "$rc_srk" ] && pass || fail "resetCount under an SRK ($rc_srk) is not obfuscated"

# The persistent AK is reused; another type at its handle is refused.
expect_rc 0 "quote with the existing AK" "$CVM" tpm quote --tcti "$T" --pcrs sha256:16 --nonce "$NONCE" \
	--out "$tmp/q-again" --ak-handle 0x81000100
grep -q "created now" "$tmp/out" && fail "the existing AK was created again" || pass
expect_rc 1 "quote with another AK type at a used handle" "$CVM" tpm quote --tcti "$T" --pcrs sha256:16 \
	--nonce "$NONCE" --out "$tmp/q-x" --ak-handle 0x81000100 --ak-type rsa-rsassa
grep -q "another type" "$tmp/err" && pass || fail "type clash not explained: $(cat "$tmp/err")"

# ---- rejections -----------------------------------------------------------
d="$tmp/q-ecc256"
verify_d() { "$CVM" tpm verify --ak "$d/ak.pub" --attest "$d/quote.msg" --sig "$d/quote.sig" "$@"; }
expect_rc 3 "another nonce" verify_d --nonce "${NONCE%f}e" --pcrs "$d/pcrs.json" &&
	grep -q "rejected: qualifying data" "$tmp/out" && pass || fail "nonce rejection not explained"
# A PCR extended between quote and verify.
tpm2_pcrextend "16:sha256=$EXT" >/dev/null
expect_rc 0 "pcrread after the extend" "$CVM" tpm pcrread --tcti "$T" --pcrs "$SEL" --out "$tmp/now.pcrs"
expect_rc 3 "verify against the PCRs after an extend" verify_d --nonce "$NONCE" --pcrs "$tmp/now.pcrs" &&
	grep -q "FAIL  pcr_digest" "$tmp/out" && pass || fail "PCR rejection not explained"
expect_rc 1 "tpm2_checkquote also rejects them" tpm2_checkquote -u "$d/ak.pem" -m "$d/quote.msg" \
	-s "$d/quote.sig" -f "$tmp/now.pcrs" -q "$NONCE" -g sha256
# A quote taken now verifies against them.
expect_rc 0 "a fresh quote verifies against the new PCRs" "$CVM" tpm quote --tcti "$T" --pcrs "$SEL" \
	--nonce "$NONCE" --out "$tmp/q-fresh" --ak-handle 0x81000100
expect_rc 0 "fresh quote, new PCRs" "$CVM" tpm verify --ak "$d/ak.pub" --attest "$tmp/q-fresh/quote.msg" \
	--sig "$tmp/q-fresh/quote.sig" --nonce "$NONCE" --pcrs "$tmp/now.pcrs"
# Flipped bytes.
cp -r "$d" "$tmp/bad"
flip_byte "$tmp/bad/quote.sig" 1
expect_rc 3 "flipped signature byte" "$CVM" tpm verify --ak "$d/ak.pub" --attest "$d/quote.msg" \
	--sig "$tmp/bad/quote.sig" --nonce "$NONCE" --pcrs "$d/pcrs.json" &&
	grep -q "FAIL  signature" "$tmp/out" && pass || fail "signature rejection not explained"
flip_byte "$tmp/bad/quote.msg" 40
expect_rc 3 "flipped message byte" "$CVM" tpm verify --ak "$d/ak.pub" --attest "$tmp/bad/quote.msg" \
	--sig "$d/quote.sig" --nonce "$NONCE" --pcrs "$d/pcrs.json"
head -c 50 "$d/quote.msg" >"$tmp/bad/short.msg"
expect_rc 3 "truncated message" "$CVM" tpm verify --ak "$d/ak.pub" --attest "$tmp/bad/short.msg" \
	--sig "$d/quote.sig" --nonce "$NONCE" --pcrs "$d/pcrs.json" &&
	grep -q "not a TPMS_ATTEST" "$tmp/out" && pass || fail "truncation not explained"
# Another AK's key.
expect_rc 3 "verify with another AK" "$CVM" tpm verify --ak "$tmp/q-srk256/ak.pub" --attest "$d/quote.msg" \
	--sig "$d/quote.sig" --nonce "$NONCE" --pcrs "$d/pcrs.json"
expect_rc 0 "signature-only check" verify_d --nonce "$NONCE" --no-pcr-check &&
	grep -q "PCR values NOT checked" "$tmp/out" && pass || fail "--no-pcr-check verdict does not say so"
# Input errors and usage errors.
printf 'not a key' >"$tmp/bad/ak.bin"
expect_rc 1 "garbage AK file" "$CVM" tpm verify --ak "$tmp/bad/ak.bin" --attest "$d/quote.msg" \
	--sig "$d/quote.sig" --nonce "$NONCE" --pcrs "$d/pcrs.json"
expect_rc 1 "missing attest file" verify_d --nonce "$NONCE" --pcrs "$tmp/nope.json"
expect_rc 2 "no PCR source" verify_d --nonce "$NONCE"
expect_rc 2 "two PCR sources" verify_d --nonce "$NONCE" --pcrs "$d/pcrs.json" --no-pcr-check
expect_rc 2 "bad nonce" verify_d --nonce xyz --pcrs "$d/pcrs.json"
expect_rc 2 "no subcommand" "$CVM" tpm
expect_rc 2 "unknown subcommand" "$CVM" tpm sign
expect_rc 0 "help" "$CVM" help tpm

# ---- tpm2-tools quotes, cvm verifies --------------------------------------
cd "$tmp" || exit 1
tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null
flush
# name createak-args quote-args pcr-format
cat >"$tmp/tools" <<'EOF'
t-rsassa|-G rsa -s rsassa -g sha256|-g sha256|serialized
t-ecdsa|-G ecc -s ecdsa -g sha256|-g sha256|values
t-rsapss|-G rsa -s rsapss -g sha256|--scheme rsapss -g sha256|serialized
EOF
while IFS='|' read -r name akargs qargs fmt; do
	# shellcheck disable=SC2086 # the argument lists are meant to split
	tpm2_createak -C ek.ctx -c "$name.ctx" $akargs -u "$name.pub" -f tss -n "$name.name" >/dev/null
	flush
	tpm2_readpublic -c "$name.ctx" -o "$name.pem" -f pem >/dev/null
	flush
	# shellcheck disable=SC2086
	tpm2_quote -c "$name.ctx" -l sha1:0,7+sha256:0,1,16 -q "$NONCE" -m "$name.msg" -s "$name.sig" \
		-o "$name.pcrs" -F "$fmt" $qargs >/dev/null
	flush
	expect_rc 0 "cvm verifies tpm2_quote's $name quote ($fmt PCRs)" "$CVM" tpm verify --ak "$name.pub" \
		--attest "$name.msg" --sig "$name.sig" --nonce "$NONCE" --pcrs "$name.pcrs"
	expect_rc 0 "cvm verifies tpm2_quote's $name quote (PEM AK)" "$CVM" tpm verify --ak "$name.pem" \
		--attest "$name.msg" --sig "$name.sig" --nonce "$NONCE" --pcrs "$name.pcrs"
	expect_rc 3 "cvm rejects tpm2_quote's $name quote with another nonce" "$CVM" tpm verify --ak "$name.pub" \
		--attest "$name.msg" --sig "$name.sig" --nonce 00 --pcrs "$name.pcrs"
	# The AK Name cvm computes is the one tpm2_createak printed.
	"$CVM" tpm verify --ak "$name.pub" --attest "$name.msg" --sig "$name.sig" --nonce "$NONCE" \
		--pcrs "$name.pcrs" --json >"$name.json"
	want_name=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().hex())' "$name.name")
	got_name=$(json_get "$name.json" 'j["ak"]["name"]')
	[ "$got_name" = "$want_name" ] && pass || fail "$name: AK name $got_name, tpm2-tools says $want_name"
done <"$tmp/tools"
# The EK cvm creates is tpm2_createek's ECC EK (the EK Credential Profile's
# template L-2): the quote's qualifiedSigner is the AK's Qualified Name
# under it, H(H(TPM_RH_ENDORSEMENT || Name(EK)) || Name(AK)).
tpm2_createek -c ekecc.ctx -G ecc -u ekecc.pub >/dev/null
tpm2_readpublic -c ekecc.ctx -n ekecc.name >/dev/null
flush
python3 - "$tmp/q-ecc256/verify.json" ekecc.name <<'EOF' && pass || fail "qualifiedSigner is not the AK's QN under the L-2 EK"
import hashlib, json, sys
v = json.load(open(sys.argv[1]))
ek = open(sys.argv[2], "rb").read()
qn_ek = b"\x00\x0b" + hashlib.sha256(bytes.fromhex("4000000b") + ek).digest()
qn_ak = b"\x00\x0b" + hashlib.sha256(qn_ek + bytes.fromhex(v["ak"]["name"])).digest()
assert v["attest"]["qualified_signer"] == qn_ak.hex(), (v["attest"]["qualified_signer"], qn_ak.hex())
EOF
cd - >/dev/null || exit 1

echo "cli_tpm_swtpm: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
