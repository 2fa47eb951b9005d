#!/usr/bin/env bash
# cvm ima show / replay / check against every real IMA list and lists made
# here:
#  - replay --json reaches the PCR 10 values each manifest states (stated,
#    else the cross-checked replays), with its entry and violation counts;
#  - the own boot's quoted PCR 10 is reached by a prefix of 507 of 513
#    entries, and the 6 later entries are listed; a value no prefix reaches
#    is rejected (exit 3);
#  - the synthetic sm3 list is rejected (exit 3);
#  - check lists every entry a reference lacks, by path, and accepts a
#    complete reference;
#  - ima-sig signatures made here with openssl (RSA and EC) verify with the
#    right key and are rejected with a wrong key or a flipped signature;
#  - usage errors exit 2, unreadable files exit 1, malformed lists exit 3.
# Needs: $CVM_BIN/cvm, tests/vectors/ima, python3, openssl.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
V="$VECTORS/ima"
vectors_require ima/manifest.json
for tool in python3 openssl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is needed (JSON checks, test keys)" >&2
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

# expect_rc WANT CMD...: runs CMD (stdout to $tmp/out, stderr to $tmp/err).
expect_rc() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "exit $rc (want $want): $*: $(head -c 400 "$tmp/err")"
		return 1
	fi
	pass
	return 0
}

# --- every real list replays to its manifest values -----------------------
python3 - "$V/manifest.json" >"$tmp/lists" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
for v in m["vectors"]:
    if v["name"] == "keylime-ima-log-sm3_256":
        continue
    exp = v["expected"]
    for f in v["files"]:
        name = f["file"]
        form = "binary" if "binary_runtime" in name else "ascii" if "ascii_runtime" in name else None
        if form is None:
            continue
        own = exp["own_replay_check_" + form]
        want = {}
        for bank in ("sha1", "sha256"):
            stated = exp.get("stated", {}).get("pcrs", {}).get(bank, {}).get("10")
            want[bank] = stated or own["pcrs"][bank + ":10"]
        print(name, want["sha1"], want["sha256"], own["entries"], own["violations"], ",".join(own["templates"]))
EOF
n_lists=0
while read -r file sha1 sha256 entries violations templates; do
	n_lists=$((n_lists + 1))
	expect_rc 0 "$CVM" ima replay --json "$V/$file" || continue
	got="$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
print(j["pcrs"]["sha1"]["10"], j["pcrs"]["sha256"]["10"], j["entries"], j["violations"], ",".join(j["templates"]), j["verdict"])' "$tmp/out")"
	if [ "$got" != "$sha1 $sha256 $entries $violations $templates accepted" ]; then
		fail "$file: got '$got', want '$sha1 $sha256 $entries $violations $templates accepted'"
	else
		pass
	fi
done <"$tmp/lists"
[ "$n_lists" -eq 10 ] || fail "expected 10 real lists in the manifest, found $n_lists"

# text output names the same values
expect_rc 0 "$CVM" ima replay "$V/vm-ovmf-tpmcrb-imang/ascii_runtime_measurements" &&
	grep -q "PCR 10 sha256  6d85c70d85c11a3d55a6511fb06ca56bbbf87ffd3edd5f348412a96415270302" "$tmp/out" &&
	pass || fail "replay text output lacks the sha256 PCR 10 line"

# --- the sm3 synthetic list is negative only ------------------------------
expect_rc 3 "$CVM" ima replay "$V/keylime-ima-log-sm3_256/ascii_runtime_measurements" &&
	grep -q "template digest must be 40 hex digits" "$tmp/out" && pass || fail "sm3 list: no clear reason"

# --- prefix matching against the quoted PCR 10 -----------------------------
quoted="$(python3 -c 'import json,sys
m=json.load(open(sys.argv[1]))
v=[x for x in m["vectors"] if x["name"]=="vm-ovmf-tpmcrb-imang"][0]
print(v["expected"]["quote"]["quoted_sha256"]["10"])' "$V/manifest.json")"
for form in binary ascii; do
	log="$V/vm-ovmf-tpmcrb-imang/${form}_runtime_measurements"
	if expect_rc 0 "$CVM" ima replay --json --pcr "$quoted" --bank sha256 "$log"; then
		got="$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["prefix"]
print(p["matched"], p["entries"], len(p["after"]), p["after"][0]["index"], p["after"][0]["name"], p["pcrs"]["sha256"]["10"])' "$tmp/out")"
		[ "$got" = "True 507 6 508 /out/quote/quote.sig $quoted" ] && pass || fail "$form prefix: got '$got'"
	fi
	# the bank follows from the length when --bank is not given
	expect_rc 0 "$CVM" ima replay -q --pcr "$quoted" "$log" &&
		[ "$(cat "$tmp/out")" = "verdict: accepted" ] && pass || fail "$form prefix, -q: '$(cat "$tmp/out")'"
done
wrong="${quoted%?}0"
[ "$wrong" != "$quoted" ] || wrong="${quoted%?}1"
expect_rc 3 "$CVM" ima replay --pcr "$wrong" "$V/vm-ovmf-tpmcrb-imang/binary_runtime_measurements" &&
	grep -q "no prefix of the 513 entries replays PCR 10 (sha256)" "$tmp/out" && pass ||
	fail "wrong PCR: no clear reason"
expect_rc 2 "$CVM" ima replay --pcr "$quoted" --bank sha1 "$V/vm-ovmf-tpmcrb-imang/binary_runtime_measurements"
# an entry of the prefix that extends another PCR is not covered by PCR 10
python3 - "$tmp/pcr11.list" >"$tmp/pcr11.want" <<'EOF'
import hashlib, struct, sys
def field(b): return struct.pack("<I", len(b)) + b
out, pcr10 = b"", bytes(32)
for pcr, name in ((10, b"/a"), (11, b"/b"), (10, b"/c")):
    td = field(b"sha256:\0" + hashlib.sha256(name).digest()) + field(name + b"\0")
    out += struct.pack("<I", pcr) + hashlib.sha1(td).digest() + field(b"ima-ng") + field(td)
    if pcr == 10:
        pcr10 = hashlib.sha256(pcr10 + hashlib.sha256(td).digest()).digest()
open(sys.argv[1], "wb").write(out)
print(pcr10.hex())
EOF
expect_rc 0 "$CVM" ima replay --json "$tmp/pcr11.list" &&
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert sorted(j["pcrs"]["sha256"]) == ["10", "11"]' "$tmp/out" &&
	pass || fail "a list extending PCR 11: PCR 11 missing from the output"
expect_rc 3 "$CVM" ima replay --pcr "$(cat "$tmp/pcr11.want")" "$tmp/pcr11.list" &&
	grep -q "extend PCR 11, which --pcr (PCR 10) does not cover" "$tmp/out" && pass ||
	fail "an entry on PCR 11 inside the quoted prefix was accepted"

# --- check against a reference --------------------------------------------
ascii="$V/vm-ovmf-tpmcrb-imang/ascii_runtime_measurements"
# sha256sum-style reference from the list itself, without two files
awk '{ split($4, d, ":"); print d[2] "  " $5 }' "$ascii" >"$tmp/full.ref"
grep -v -e ' /data/files/gzip$' -e ' /data/files/lesspipe$' "$tmp/full.ref" >"$tmp/partial.ref"
expect_rc 0 "$CVM" ima check --reference "$tmp/full.ref" "$ascii"
if expect_rc 3 "$CVM" ima check --json --reference "$tmp/partial.ref" "$V/vm-ovmf-tpmcrb-imang/binary_runtime_measurements"; then
	got="$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
print(j["verdict"], j["reason"], [(u["index"], u["name"], u["reason"]) for u in j["unknown"]])' "$tmp/out")"
	[ "$got" = "rejected 2 entries are not in the reference [(2, '/data/files/gzip', 'path not in the reference'), (3, '/data/files/lesspipe', 'path not in the reference')]" ] &&
		pass || fail "check --json: got '$got'"
fi
# entries after the quoted state are listed, not checked
head -n 507 "$tmp/full.ref" >"$tmp/prequote.ref"
expect_rc 3 "$CVM" ima check --reference "$tmp/prequote.ref" "$ascii"
if expect_rc 0 "$CVM" ima check --json --pcr "$quoted" --reference "$tmp/prequote.ref" "$ascii"; then
	got="$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
print(j["checked"], len(j["unknown"]), len(j["prefix"]["after"]))' "$tmp/out")"
	[ "$got" = "507 0 6" ] && pass || fail "check --pcr: got '$got'"
fi
expect_rc 3 "$CVM" ima check --reference "$tmp/partial.ref" "$ascii" &&
	grep -q "#2 /data/files/gzip sha256:953d3262" "$tmp/out" && pass || fail "check text lacks the unknown path"
# a wrong digest for a known path
sed 's/^953d/0000/' "$tmp/full.ref" >"$tmp/wrongdigest.ref"
expect_rc 3 "$CVM" ima check --reference "$tmp/wrongdigest.ref" "$ascii" &&
	grep -q "digest not in the reference for this path" "$tmp/out" && pass || fail "wrong digest not reported"
# violations: listed unless allowed (keylime list: boot_aggregate is the violation)
awk '{ split($4, d, ":"); print d[2] "  " $5 }' "$V/keylime-ima-log-sha256/ascii_runtime_measurements" >"$tmp/kl.ref"
expect_rc 0 "$CVM" ima check --reference "$tmp/kl.ref" "$V/keylime-ima-log-sha256/ascii_runtime_measurements"
expect_rc 1 "$CVM" ima check --reference "$tmp/nonexistent.ref" "$ascii"
printf 'not a digest line\n' >"$tmp/bad.ref"
expect_rc 1 "$CVM" ima check --reference "$tmp/bad.ref" "$ascii" && grep -q "line 1" "$tmp/err" && pass ||
	fail "bad reference: no line number"

# --- ima-sig signatures with own keys --------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ec.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/other.key" 2>/dev/null
for k in ec rsa other; do
	openssl pkey -in "$tmp/$k.key" -pubout -out "$tmp/$k.pub" 2>/dev/null
	openssl pkey -in "$tmp/$k.key" -pubout -outform DER -out "$tmp/$k.pub.der" 2>/dev/null
done
# mklist.py OUT KEYNAME FLIP: a binary ima-sig list of three entries, the
# second signed (v2) by KEYNAME over its sha256 file digest; FLIP=1 flips
# one bit of the signature (the template digest still covers the flipped
# bytes, so only the signature check can notice).
cat >"$tmp/mklist.py" <<'EOF'
import hashlib, struct, subprocess, sys
out, key, flip, tmp = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]

def der_tlv(b, off):
    tag, ln = b[off], b[off + 1]
    off += 2
    if ln & 0x80:
        n = ln & 0x7f
        ln = int.from_bytes(b[off:off + n], "big")
        off += n
    return tag, b[off:off + ln], off + ln

def keyid(spki_der):
    _, seq, _ = der_tlv(spki_der, 0)
    _, _, off = der_tlv(seq, 0)          # AlgorithmIdentifier
    tag, bits, _ = der_tlv(seq, off)     # BIT STRING
    assert tag == 0x03
    return hashlib.sha1(bits[1:]).digest()[-4:]  # skip the unused-bits byte

def field(b):
    return struct.pack("<I", len(b)) + b

def entry(name, content, sig=b""):
    dig = hashlib.sha256(content).digest()
    td = field(b"sha256:\0" + dig) + field(name + b"\0") + field(sig)
    return struct.pack("<I", 10) + hashlib.sha1(td).digest() + field(b"ima-sig") + field(td)

content = b"#!/bin/sh\necho signed\n"
dig = hashlib.sha256(content).digest()
open(tmp + "/dig.bin", "wb").write(dig)
subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", tmp + "/" + key + ".key", "-pkeyopt", "digest:sha256",
                "-in", tmp + "/dig.bin", "-out", tmp + "/sig.bin"], check=True)
sig = bytearray(open(tmp + "/sig.bin", "rb").read())
if flip:
    sig[len(sig) // 2] ^= 0x10
kid = keyid(open(tmp + "/" + key + ".pub.der", "rb").read())
hdr = bytes([3, 2, 4]) + kid + struct.pack(">H", len(sig))
data = entry(b"/usr/bin/first", b"one") + entry(b"/usr/bin/signed", content, hdr + bytes(sig)) + entry(b"/etc/third", b"three")
open(out, "wb").write(data)
EOF
for k in ec rsa; do
	python3 "$tmp/mklist.py" "$tmp/$k.list" "$k" 0 "$tmp"
	python3 "$tmp/mklist.py" "$tmp/$k-flip.list" "$k" 1 "$tmp"
	expect_rc 0 "$CVM" ima replay "$tmp/$k.list"
	expect_rc 0 "$CVM" ima replay "$tmp/$k-flip.list" # the template digest covers the flipped bytes
	if expect_rc 0 "$CVM" ima check --json --keys "$tmp/$k.pub" "$tmp/$k.list"; then
		got="$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["signatures"]
print(s["valid"], s["invalid"], s["no_key"], s["unsigned"])' "$tmp/out")"
		[ "$got" = "1 0 0 2" ] && pass || fail "$k: signatures '$got'"
	fi
	# DER keys, and both keys at once
	expect_rc 0 "$CVM" ima check --keys "$tmp/other.pub,$tmp/$k.pub.der" "$tmp/$k.list"
	expect_rc 3 "$CVM" ima check --keys "$tmp/other.pub" "$tmp/$k.list" &&
		grep -q "no key with this key id" "$tmp/out" && pass || fail "$k: wrong key not reported"
	expect_rc 3 "$CVM" ima check --keys "$tmp/$k.pub" "$tmp/$k-flip.list" &&
		grep -q "#2 /usr/bin/signed .*(invalid signature" "$tmp/out" && pass || fail "$k: flipped signature accepted"
	# every file signed: the two unsigned files are then failures
	expect_rc 3 "$CVM" ima check --keys "$tmp/$k.pub" --require-signatures "$tmp/$k.list"
	expect_rc 0 "$CVM" ima show --keys "$tmp/$k.pub" "$tmp/$k.list" &&
		grep -q ": valid\]" "$tmp/out" && pass || fail "$k: show does not report the valid signature"
done
expect_rc 1 "$CVM" ima check --keys "$tmp/nonexistent.pub" "$tmp/ec.list"
expect_rc 1 "$CVM" ima check --keys "$tmp/bad.ref" "$tmp/ec.list"
# the real ima-sig list's one signature is by a key we do not have
expect_rc 3 "$CVM" ima check --keys "$tmp/ec.pub" "$V/cosmian-ima-sig/binary_runtime_measurements" &&
	grep -q "key id 577055f4" "$tmp/out" && pass || fail "cosmian-ima-sig: key id not named"

# --- malformed input, usage --------------------------------------------------
head -c 1000 "$V/vm-ovmf-tpmcrb-imang/binary_runtime_measurements" >"$tmp/trunc.bin"
expect_rc 3 "$CVM" ima replay "$tmp/trunc.bin" && grep -q "truncated" "$tmp/out" && pass ||
	fail "truncated list: no clear reason"
expect_rc 1 "$CVM" ima show "$tmp/trunc.bin"
expect_rc 0 "$CVM" ima show "$V/vm-ovmf-tpmcrb-imang/binary_runtime_measurements" &&
	grep -q "^513 entries (binary list)" "$tmp/out" && pass || fail "show: no summary line"
expect_rc 0 "$CVM" ima show --json "$V/cosmian-ima-ng-violations/binary_runtime_measurements" &&
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["count"]==2127 and len(j["entries"])==2127 and sum(e["violation"] for e in j["entries"])==256' "$tmp/out" &&
	pass || fail "show --json: wrong entries"
expect_rc 0 "$CVM" ima replay - <"$V/rustkeylime-small/ascii_runtime_measurements"
expect_rc 1 "$CVM" ima replay "$tmp/nonexistent.list"
expect_rc 2 "$CVM" ima
expect_rc 2 "$CVM" ima replay
expect_rc 2 "$CVM" ima replay a b
expect_rc 2 "$CVM" ima replay --banks sha1,md5 "$ascii"
expect_rc 2 "$CVM" ima replay --pcr xyz "$ascii"
expect_rc 2 "$CVM" ima replay --reference x "$ascii"
expect_rc 2 "$CVM" ima check "$ascii"
expect_rc 2 "$CVM" ima bogus
expect_rc 0 "$CVM" help ima
expect_rc 0 "$CVM" ima replay --banks sha384,sha512,sm3 --json "$ascii" &&
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert sorted(j["pcrs"])==["sha384","sha512","sm3_256"]' "$tmp/out" &&
	pass || fail "--banks: wrong banks in the output"

echo "cli_ima: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
