#!/usr/bin/env bash
# An air-gapped verifier, for every TDX and SGX vector: with the local vendor
# upstream (tests/common/vendor_upstream.py) serving that vector's collateral,
# cvm collateral fetch fills cache A; cvm collateral pack writes a bundle; the
# upstream stops; cvm collateral import loads the bundle into an empty cache B
# with no upstream configured; cvm quote verify --offline with B gives the
# same verdict as cvm quote verify --collateral on the vector's folder (which
# accepts, with a permissive policy, every vector whose quote Intel's rules
# accept). A bundle with one flipped byte is refused whole: B stays as it was,
# an empty cache stays empty. A flip in an item's signed body or chain, with
# the bundle's SHA-256 trailer made again (anyone can), must be refused by the
# vendor's signature; a flip in the middle of the file, trailer untouched, by
# the trailer (it may hit metadata no vendor signs).
# SEV-SNP: the vectors hold no AMD CRL, which every report's collateral needs
# (cvm_cache_need_report names it), so no real report's collateral can be
# complete from them (printed, not hidden); a cvm sim platform's collateral/snp
# (VCEK, ASK+ARK chain, CRL under its mock ARK, given as --amd-root) runs the
# same fetch, pack, import, offline verify and flipped-byte checks.
# Needs: $CVM_BIN/cvm, python3, curl, tests/vectors.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
# shellcheck source=tests/common/upstream.sh
. "$(dirname "$0")/../common/upstream.sh"
for tool in python3 curl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool is needed (the vendor upstream; its requests)" >&2
		exit 1
	fi
done
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi
vector_dirs "quote.bin manifest.json tcb_info.json qe_identity.json pck_crl.der root_ca_crl.der" tdx sgx

tmp="$(mktemp -d)"
cleanup() {
	upstream_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
unset CVM_INTEL_URL CVM_AMD_URL CVM_COLLATERAL_CACHE

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }


cat >"$tmp/permissive.json" <<'EOF'
{
  "accepted_tcb_statuses": ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                            "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"],
  "accepted_advisory_ids": ["*"],
  "allow_debug": true,
  "tdx": { "require_sept_ve_disable": false, "require_zero_mr_service_td": false }
}
EOF

# verdict FILE: the fields two verdicts on the same quote must share
verdict() {
	python3 -c '
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except ValueError:
    print("(no JSON verdict)")
    sys.exit(0)
print(json.dumps({k: j.get(k) for k in ("verdict", "reason", "tcb_status", "advisory_ids", "fmspc", "tcb_eval_num")},
                 sort_keys=True))' "$1"
}
status_json() { "$CVM" collateral status --cache "$1" --at "$2" --json 2>/dev/null; }

tried=0
for d in "${VECTOR_DIRS[@]}"; do
	name="$(vector_name "$d")"
	at="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at_unix"])' "$d/manifest.json")"
	if python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["tcbInfo"].get("version", 2) >= 3 else 1)' \
		"$d/tcb_info.json"; then
		:
	else
		echo "NOTE: $name: its TCB info is version 2 (Intel's API v3 serves it); the cache fetches API v4, so this vector is not run"
		continue
	fi
	tried=$((tried + 1))
	A="$tmp/$tried-a"
	B="$tmp/$tried-b"
	upstream_start "$tmp/up-$tried" --no-vectors --dir "$d"
	rc=0
	"$CVM" collateral fetch "$d/quote.bin" --cache "$A" --intel-url "$UPSTREAM_URL" --at "$at" -q >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" != 0 ] && grep -q "cannot name the collateral it needs" "$tmp/err" &&
		! "$CVM" quote verify "$d/quote.bin" --collateral "$d" --at "$at" --policy "$tmp/permissive.json" >/dev/null 2>&1; then
		# a quote cvm rejects as malformed whatever the collateral (e.g. bytes after it): the cache
		# cannot name what it needs, and nothing is lost
		echo "NOTE: $name: cvm rejects this quote with its own folder too, and the cache cannot name its" \
			"collateral: $(head -1 "$tmp/err"); not run"
		upstream_stop
		continue
	fi
	[ "$rc" = 0 ] && pass || fail "$name: fetch into cache A: exit $rc: $(cat "$tmp/err")"
	rc=0
	"$CVM" collateral pack "$tmp/$tried.bundle" --cache "$A" --at "$at" >"$tmp/out" 2>"$tmp/err" || rc=$?
	[ "$rc" = 0 ] && [ -s "$tmp/$tried.bundle" ] && pass || fail "$name: pack: exit $rc: $(cat "$tmp/err")"
	grep -q "^packed 4 items into" "$tmp/out" && pass || fail "$name: pack: $(cat "$tmp/out")"
	upstream_stop
	# the air gap: no upstream anywhere, an empty cache
	rc=0
	"$CVM" collateral import "$tmp/$tried.bundle" --cache "$B" --offline --at "$at" >"$tmp/out" 2>"$tmp/err" || rc=$?
	[ "$rc" = 0 ] && grep -q "^imported 4 items from" "$tmp/out" && pass ||
		fail "$name: import into the empty cache B: exit $rc: $(cat "$tmp/out" "$tmp/err")"
	rc=0
	"$CVM" quote verify "$d/quote.bin" --cache "$B" --offline --at "$at" --policy "$tmp/permissive.json" --json \
		>"$tmp/cache.json" 2>"$tmp/err" || rc=$?
	rc2=0
	"$CVM" quote verify "$d/quote.bin" --collateral "$d" --at "$at" --policy "$tmp/permissive.json" --json \
		>"$tmp/dir.json" 2>/dev/null || rc2=$?
	[ "$rc" = "$rc2" ] && [ "$(verdict "$tmp/cache.json")" = "$(verdict "$tmp/dir.json")" ] && pass ||
		fail "$name: verify with cache B: exit $rc, $(verdict "$tmp/cache.json" 2>/dev/null); with the folder: exit $rc2, $(verdict "$tmp/dir.json")"
	python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["collateral"]
assert c["source"] == "cache" and c["stale"] is False and c["items"] == 4 and c["upstream"] is None, c' "$tmp/cache.json" \
		2>/dev/null && pass || fail "$name: the verdict does not say the collateral came from the cache: $(head -c 600 "$tmp/cache.json")"
	if [ "$rc2" = 0 ]; then
		[ "$rc" = 0 ] && pass || fail "$name: accepted with its folder, not with the imported bundle"
	fi

	# one flipped byte, in each item's body as the bundle holds it, and in the middle of the file
	status_json "$B" "$at" >"$tmp/b-before.json"
	k=0
	for what in tcb_info.json qe_identity.json pck_crl.der root_ca_crl.der tcb_info_issuer_chain.pem middle; do
		k=$((k + 1))
		rm -f "$tmp/flip.bundle.signed"
		python3 - "$tmp/$tried.bundle" "$d" "$what" "$tmp/flip.bundle" <<'PY' >"$tmp/flipwhere" || true
import os, sys
b = bytearray(open(sys.argv[1], "rb").read())
what = sys.argv[3]
if what == "middle":
    i = len(b) // 2
    # say whether the byte lies in vendor-signed content (a body or an issuer chain, as the bundle
    # holds them byte for byte)
    for f in ("tcb_info.json", "qe_identity.json", "pck_crl.der", "root_ca_crl.der", "tcb_info_issuer_chain.pem",
              "qe_identity_issuer_chain.pem", "pck_crl_issuer_chain.pem"):
        c = open(os.path.join(sys.argv[2], f), "rb").read()
        at = bytes(b).find(c)
        if at >= 0 and at <= i < at + len(c):
            open(sys.argv[4] + ".signed", "w").write(f)
else:
    body = open(os.path.join(sys.argv[2], what), "rb").read()
    at = bytes(b).find(body)
    if at < 0:
        print("the bundle does not hold %s byte for byte; flipped its middle byte instead" % what)
        i = len(b) // 2
    else:
        # a chain: inside its first certificate (the signer's), past the PEM header
        i = at + (len(body) // 4 if what.endswith(".pem") else len(body) // 2)
b[i] ^= 0x01
if what != "middle":
    # a bundle ends in the SHA-256 of its other bytes, which anyone can make again: made again here,
    # so that the vendors' signatures, not the digest, must refuse a flip in a signed body or chain
    import hashlib
    b[-32:] = hashlib.sha256(bytes(b[:-32])).digest()
open(sys.argv[4], "wb").write(b)
PY
		[ -s "$tmp/flipwhere" ] && echo "NOTE: $name: $(cat "$tmp/flipwhere")"
		E="$tmp/$tried-e$k"
		rc=0
		"$CVM" collateral import "$tmp/flip.bundle" --cache "$E" --offline --at "$at" >"$tmp/out" 2>"$tmp/err" || rc=$?
		[ "$rc" != 0 ] && pass || fail "$name: a bundle with a flipped byte ($what) was imported"
		grep -q "refused, nothing imported" "$tmp/err" && pass || fail "$name: flipped $what: stderr: $(cat "$tmp/err")"
		c="$(status_json "$E" "$at" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])' 2>&1)"
		[ "$c" = 0 ] && pass || fail "$name: a refused bundle ($what) left $c items in an empty cache"
		rc=0
		"$CVM" collateral import "$tmp/flip.bundle" --cache "$B" --offline --at "$at" >/dev/null 2>&1 || rc=$?
		status_json "$B" "$at" >"$tmp/b-after.json"
		[ "$rc" != 0 ] && cmp -s "$tmp/b-before.json" "$tmp/b-after.json" && pass ||
			fail "$name: importing the flipped bundle ($what) into B: exit $rc, B changed: $(diff "$tmp/b-before.json" "$tmp/b-after.json" | head -5)"
	done
done
[ "$tried" -gt 0 ] || fail "no vector was run"

# ---- SEV-SNP -----------------------------------------------------------------------------
# The vectors hold no AMD CRL (tests/vectors/snp/*), which an SNP report's
# collateral needs, so a simulated platform stands in: its collateral/snp
# folder is what the vendor upstream serves (KDS paths), its mock ARK is the
# configured AMD anchor (--amd-root / --root), its report is verified.
echo "NOTE: SEV-SNP: the vectors hold no AMD CRL; a cvm sim platform's collateral/snp (VCEK, chain, CRL) is run instead"
SAT=1750330000
"$CVM" -q sim init "$tmp/sim" --at "$SAT" >/dev/null
"$CVM" -q sim quote "$tmp/sim" --snp --report-data "$(printf '%0128d' 5)" --out "$tmp/snp.bin" >/dev/null
SD="$tmp/sim/collateral/snp"
ARK="$SD/ark.pem"
R="$tmp/snp.bin"
A="$tmp/snp-a"
B="$tmp/snp-b"
upstream_start "$tmp/up-snp" --no-vectors --dir "$SD"
rc=0
"$CVM" collateral fetch "$R" --cache "$A" --amd-url "$UPSTREAM_URL" --amd-root "$ARK" --at "$SAT" -q >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && pass || fail "snp: fetch into cache A: exit $rc: $(cat "$tmp/err")"
rc=0
"$CVM" collateral pack "$tmp/snp.bundle" --cache "$A" --at "$SAT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && grep -q "^packed 3 items into" "$tmp/out" && pass || fail "snp: pack: exit $rc: $(cat "$tmp/out" "$tmp/err")"
upstream_stop
# the air gap: no upstream anywhere, an empty cache; the built-in ARKs refuse the mock chain
rc=0
"$CVM" collateral import "$tmp/snp.bundle" --cache "$tmp/snp-builtin" --offline --at "$SAT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 3 ] && grep -q "refused, nothing imported" "$tmp/err" &&
	[ "$(status_json "$tmp/snp-builtin" "$SAT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')" = 0 ] &&
	pass || fail "snp: the bundle imported under the built-in ARKs (the mock ARK is not AMD's): exit $rc: $(cat "$tmp/err")"
rc=0
"$CVM" collateral import "$tmp/snp.bundle" --cache "$B" --offline --amd-root "$ARK" --at "$SAT" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 0 ] && grep -q "^imported 3 items from" "$tmp/out" && pass ||
	fail "snp: import into the empty cache B: exit $rc: $(cat "$tmp/out" "$tmp/err")"
rc=0
"$CVM" quote verify "$R" --cache "$B" --offline --root "$ARK" --at "$SAT" --json >"$tmp/cache.json" 2>"$tmp/err" || rc=$?
rc2=0
"$CVM" quote verify "$R" --collateral "$SD" --root "$ARK" --at "$SAT" --json >"$tmp/dir.json" 2>/dev/null || rc2=$?
[ "$rc" = 0 ] && [ "$rc2" = 0 ] && [ "$(verdict "$tmp/cache.json")" = "$(verdict "$tmp/dir.json")" ] && pass ||
	fail "snp: verify with cache B: exit $rc, $(verdict "$tmp/cache.json"); with the folder: exit $rc2, $(verdict "$tmp/dir.json"): $(cat "$tmp/err")"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "accepted" and j["tee"] == "snp" and j["tcb_status"] == "UpToDate", j.get("reason")
c = j["collateral"]
assert c["source"] == "cache" and c["stale"] is False and c["items"] == 3 and c["upstream"] is None, c' "$tmp/cache.json" \
	2>/dev/null && pass || fail "snp: the offline verdict is not an accept from the cache: $(head -c 600 "$tmp/cache.json")"
# one flipped byte in each vendor-signed body as the bundle holds it: refused whole
status_json "$B" "$SAT" >"$tmp/b-before.json"
for what in vcek.der cert_chain.pem crl.der; do
	python3 - "$tmp/snp.bundle" "$SD/$what" "$tmp/flip.bundle" <<'PY' || fail "snp: the bundle does not hold $what byte for byte"
import sys
b = bytearray(open(sys.argv[1], "rb").read())
body = open(sys.argv[2], "rb").read()
at = bytes(b).find(body)
assert at >= 0
# a chain: inside its first certificate (the ASK), past the PEM header
i = at + (len(body) // 4 if sys.argv[2].endswith(".pem") else len(body) // 2)
b[i] ^= 0x01
# the bundle's SHA-256 trailer made again (anyone can): AMD's signature must refuse the flip
import hashlib
b[-32:] = hashlib.sha256(bytes(b[:-32])).digest()
open(sys.argv[3], "wb").write(b)
PY
	rc=0
	"$CVM" collateral import "$tmp/flip.bundle" --cache "$tmp/snp-e-$what" --offline --amd-root "$ARK" --at "$SAT" \
		>"$tmp/out" 2>"$tmp/err" || rc=$?
	[ "$rc" != 0 ] && grep -q "refused, nothing imported" "$tmp/err" && pass ||
		fail "snp: a bundle with a flipped byte in $what: exit $rc: $(cat "$tmp/out" "$tmp/err")"
	c="$(status_json "$tmp/snp-e-$what" "$SAT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])' 2>&1)"
	[ "$c" = 0 ] && pass || fail "snp: a refused bundle ($what) left $c items in an empty cache"
	rc=0
	"$CVM" collateral import "$tmp/flip.bundle" --cache "$B" --offline --amd-root "$ARK" --at "$SAT" >/dev/null 2>&1 || rc=$?
	status_json "$B" "$SAT" >"$tmp/b-after.json"
	[ "$rc" != 0 ] && cmp -s "$tmp/b-before.json" "$tmp/b-after.json" && pass ||
		fail "snp: importing the flipped bundle ($what) into B: exit $rc, B changed: $(diff "$tmp/b-before.json" "$tmp/b-after.json" | head -5)"
done

# dstack's VersionedAttestation over a report of the same platform (the RA-TLS extension
# 1.3.6.1.4.1.62397.1.8 of cvm cert ratls make --profile dstack): cvm attestation verify takes the
# report's collateral from cache B, offline; with an empty cache it cannot
rc=0
"$CVM" -q cert ratls make --profile dstack --sim "$tmp/sim" --platform snp --subject airgap --key-out "$tmp/ra.key" \
	--cert-out "$tmp/ra.pem" >/dev/null 2>"$tmp/err" || rc=$?
python3 - "$UPSTREAM_PY" "$tmp/ra.pem" "$tmp/va.bin" <<'PY' || fail "snp: no VersionedAttestation extension in the RA-TLS certificate (make: exit $rc: $(cat "$tmp/err"))"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("vu", sys.argv[1])
vu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vu)
der = vu.pem_blocks(open(sys.argv[2]).read())[0]
val = vu.cert_info(der)[2]["1.3.6.1.4.1.62397.1.8"]
tag, s, e = vu.der_tlv(val, 0)
assert tag == 0x04
open(sys.argv[3], "wb").write(val[s:e])
PY
rc=0
"$CVM" attestation verify "$tmp/va.bin" --cache "$B" --offline --root "$ARK" --at "$SAT" --json >"$tmp/va.json" 2>"$tmp/err" || rc=$?
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "accepted" and j["tee"] == "snp" and j["quote_verified"] is True, j.get("reason")
c = j["collateral"]
assert c["source"] == "cache" and c["items"] == 3 and c["upstream"] is None, c' "$tmp/va.json" 2>/dev/null && [ "$rc" = 0 ] && pass ||
	fail "snp: attestation verify from cache B offline: exit $rc: $(head -c 600 "$tmp/va.json") $(cat "$tmp/err")"
rc=0
"$CVM" attestation verify "$tmp/va.bin" --cache "$tmp/snp-empty" --offline --root "$ARK" --at "$SAT" >"$tmp/out" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q "^verdict: rejected: no --collateral given and none usable in the cache" "$tmp/out" && pass ||
	fail "snp: attestation verify with an empty cache offline: exit $rc: $(tail -1 "$tmp/out")"
echo "collateral_airgap: $tried vectors and a simulated SEV-SNP platform, $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
