#!/usr/bin/env bash
# cvm cert ratls make|show|verify:
#  - show --json on every certificate of compat/ratls gives the profile, TEE,
#    binding and measurements its expectations.json states. The measurements
#    and the binding are also recomputed here from the certificate's bytes
#    (a small DER walker in python3: the extension found by OID, the quote
#    fields at their offsets, SHA-512("ratls-cert:" || SPKI) or SHA-256 of
#    the public key), not with cvmkit's code. A certificate without evidence
#    (R-D2) has no "binding" at all;
#  - the real Cosmian SEV-SNP certificates verify with the chain they carry,
#    anchored in AMD's built-in ARK, with their expected measurement as
#    policy (and no CRL, VMPL 1 allowed); the other measurement is rejected;
#    the strict default policy rejects them for the missing CRL;
#  - make + show + verify round trips on a simulated platform, TDX and SNP,
#    in both profiles: the key file is 0600 and never replaced, show reports
#    the profile, TEE and binding, verify accepts with --root (first line:
#    SIMULATED) and rejects without it (first line still SIMULATED); the TDX
#    certificates carry the simulator's runtime events, which replay to
#    RTMR3, and a certificate made with an event that RTMR3 never saw is
#    rejected on the replay;
#  - a certificate for another key carrying a made certificate's evidence
#    (made with python3's cryptography) shows binding
#    false and is rejected; one with a 1.9 app info (bin and array byte
#    strings, init script hashes) shows every field;
#  - verify rejects an expired certificate (--at past notAfter) with exit 3
#    and a line that says so;
#  - the legacy dstack chain (R-D1) with --ca its KMS CA: the chain step names
#    the missing keyCertSign, unless --allow-legacy-ca, which the verdict then
#    names;
#  - usage errors exit 2.
# Needs: $CVM_BIN/cvm, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
R=compat/ratls
vectors_require "$R/expectations.json" "$R/dstack-kvinwang-demo-server/server.crt" \
	"$R/dstack-kvinwang-demo-server/tmp-ca.crt" "$R/cosmian-tee-tools-2.1.0/tdx-cert.ratls.pem" \
	"$R/cosmian-tee-tools-2.1.0/sgx-cert.ratls.pem" "$R/cosmian-tee-tools-2.1.0/sev-cert.ratls.pem" \
	"$R/cosmian-tee-tools-1.6.2/sev-cert.ratls.pem" "$R/cosmian-tee-tools-2023/sev-cert.ratls.pem"
RV="$VECTORS/$R"

if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to read the JSON output and the certificates" >&2
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

# expect_rc WANT CMD...: runs CMD, records its output in $tmp/out, $tmp/err.
expect_rc() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "'$*' exited $rc, expected $want: $(head -c 600 "$tmp/err") $(head -c 1500 "$tmp/out")"
		return 1
	fi
	pass
}

# The independent reader: python3 certcheck.py CERT JSON [KEY=VALUE...]
# checks cvm's JSON against the certificate's own bytes and the given
# expectations (profile, tee, binding, and measurement fields).
cat >"$tmp/certcheck.py" <<'PY'
import base64, hashlib, json, re, sys

cert_path, json_path = sys.argv[1], sys.argv[2]
exp = dict(a.split("=", 1) for a in sys.argv[3:])
for k in ("profile", "tee"):
    if exp.get(k) == "none":  # no RA-TLS extension: JSON null
        exp[k] = None
j = json.load(open(json_path))
errs = []


def want(name, got, wanted):
    if got != wanted:
        errs.append("%s: got %r, expected %r" % (name, got, wanted))


raw = open(cert_path, "rb").read()
m = re.search(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", raw, re.S)
der = base64.b64decode(b"".join(m.group(1).split())) if m else raw


def tlv(b, i):
    """One DER TLV at b[i:]: (tag, content, whole TLV, next index)."""
    tag, n = b[i], b[i + 1]
    j0 = i + 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[j0:j0 + k], "big")
        j0 += k
    return tag, b[j0:j0 + n], b[i:j0 + n], j0 + n


def items(b):
    out, i = [], 0
    while i < len(b):
        t, c, whole, i = tlv(b, i)
        out.append((t, c, whole))
    return out


def oid(c):
    parts = [c[0] // 40, c[0] % 40]
    v = 0
    for x in c[1:]:
        v = (v << 7) | (x & 0x7F)
        if not x & 0x80:
            parts.append(v)
            v = 0
    return ".".join(map(str, parts))


tbs = items(items(items(der)[0][1])[0][1])
if tbs[0][0] == 0xA0:
    tbs = tbs[1:]
spki = tbs[5][2]
point = items(tbs[5][1])[1][1][1:]  # BIT STRING without its unused-bits byte
exts = {}
for t, c, _ in tbs:
    if t == 0xA3:
        for _, e, _ in items(items(c)[0][1]):
            f = items(e)
            exts[oid(f[0][1])] = f[-1][1]

quote = None
profile = None
if "1.3.6.1.4.1.62397.1.1" in exts:
    profile = "dstack"
    quote = items(exts["1.3.6.1.4.1.62397.1.1"])[0][1]  # dstack wraps it in an OCTET STRING
for o, tee in (("1.2.840.113741.1337.8", "tdx"), ("1.2.840.113741.1337.6", "sgx"), ("1.2.840.113741.1337.7", "snp")):
    if o in exts:
        profile, quote = "cosmian", exts[o]
va_only = quote is None and "1.3.6.1.4.1.62397.1.8" in exts
if va_only:
    profile = "dstack"
want("profile", j.get("profile"), exp.get("profile", profile))
want("tee", j.get("tee"), exp.get("tee"))
if va_only:
    # Only the VersionedAttestation (dstack's SEV-SNP form): the report data
    # as cvm shows it must still bind this certificate's SPKI.
    rd = bytes.fromhex(j.get("report_data", ""))
    want("binding (recomputed)", j.get("binding"), hashlib.sha512(b"ratls-cert:" + spki).digest() == rd)
elif quote is None:
    if "binding" in j:
        errs.append("a certificate without evidence has a binding: %r" % j["binding"])
else:
    tee = exp["tee"]
    if tee == "tdx":
        body = {"mr_td": quote[184:232], "mr_config_id": quote[232:280], "mr_owner": quote[280:328],
                "rtmr0": quote[376:424], "rtmr1": quote[424:472], "rtmr2": quote[472:520],
                "rtmr3": quote[520:568], "report_data": quote[568:632]}
    elif tee == "sgx":
        body = {"mr_enclave": quote[112:144], "mr_signer": quote[176:208], "report_data": quote[368:432]}
    else:
        body = {"report_data": quote[0x50:0x90], "measurement": quote[0x90:0xC0], "host_data": quote[0xC0:0xE0]}
    for k, v in body.items():
        want(k, j.get(k), v.hex())
    rd = body["report_data"]
    if profile == "dstack":
        bound = hashlib.sha512(b"ratls-cert:" + spki).digest() == rd
    else:
        bound = hashlib.sha256(point).digest() == rd[:32]
    want("binding (recomputed)", j.get("binding"), bound)
for k, v in exp.items():
    if k in ("profile", "tee"):
        continue
    got = j
    for part in k.split("."):
        got = got.get(part) if isinstance(got, dict) else None
    want(k, got if isinstance(got, str) else json.dumps(got), v)
if errs:
    print("%s: %s" % (cert_path, "; ".join(errs)), file=sys.stderr)
    sys.exit(1)
PY

# show_check CERT KEY=VALUE...: show --json, then the independent check.
show_check() {
	local cert="$1"
	shift
	if expect_rc 0 "$CVM" cert ratls show "$cert" --json; then
		python3 "$tmp/certcheck.py" "$cert" "$tmp/out" "$@" && pass ||
			fail "cvm cert ratls show --json on $(basename "$(dirname "$cert")")/$(basename "$cert")"
	fi
}

# ---- every certificate of compat/ratls (values from its expectations.json) ----
show_check "$RV/dstack-kvinwang-demo-server/server.crt" profile=dstack tee=tdx binding=true \
	report_data=745bdaefd61bd789cf1c42a80f6b9b1aba8a59afd09a604db364d703d04efb3e972065de2fcff71d9e47971618f6636398b70dbe52905f1cf62bbf2bb503dcdd \
	rtmr3=0e8bd1f57ea89006a8803684f1322d76fdbe226b7c16d1f3ad24387ffad5f14208d23a8a1f2b5edfa939a387ed909ed6 \
	mr_config_id="$(python3 -c 'print("00" * 48)')" \
	extensions.app_id=9e8af4fc80bde3bea655a161280910c770c8d561 extensions.usage=app:custom \
	extensions.event_log.event_count=27 extensions.event_log.ok=true certificate_count=3
show_check "$RV/dstack-kvinwang-demo-server/tmp-ca.crt" profile=none tee=none
show_check "$RV/cosmian-tee-tools-2.1.0/tdx-cert.ratls.pem" profile=cosmian tee=tdx binding=true \
	not_after=2024-12-05T13:52:48Z
show_check "$RV/cosmian-tee-tools-2.1.0/sgx-cert.ratls.pem" profile=cosmian tee=sgx binding=true \
	mr_enclave=72009e6e7ddebcb7a8cf6b000b40aa20fd15d2c4fd524e85e80df6e8e0841d10 \
	mr_signer=c1c161d0dd996e8a9847de67ea2c00226761f7715a2c422d3012ac10795a1ef5
show_check "$RV/cosmian-tee-tools-2.1.0/sev-cert.ratls.pem" profile=cosmian tee=snp binding=true \
	measurement=12068361369cf9179bb6ac08572b7e15ed0bc8abb698cb04d4f584f7ff512a4c2081c1f5b105351dbd45c035a7d6a3a5 \
	report_version=5 "extensions.cosmian_sev_format=tee-tools 2.x"
show_check "$RV/cosmian-tee-tools-1.6.2/sev-cert.ratls.pem" profile=cosmian tee=snp binding=true \
	measurement=59ead9b42664d54fda54f707670386f61b1d3bd34e2da8c8f9ac067e617a0aae4623304a4aa98bb30756affb4b6c0a05 \
	report_version=4 "extensions.cosmian_sev_format=tee-tools 1.6.2 bincode"
# tee-tools @ 5dd47678 (2023): report v2 in the 2023 table form; the
# measurement is the one its test pins (as tests/unit/test_ratls.c has it)
show_check "$RV/cosmian-tee-tools-2023/sev-cert.ratls.pem" profile=cosmian tee=snp binding=true \
	measurement=c2c84b9364fc9f0f54b04534768c860c6e0e386ad98b96e8b98eca46ac8971d05c531ba48373f054c880cfd1f4a0a84e \
	report_version=2 "extensions.cosmian_sev_format=2023 tagged"
# every file in the folder was shown above
n=$(find "$RV" -name '*.crt' -o -name '*.ratls.pem' | wc -l)
[ "$n" -eq 7 ] && pass || fail "compat/ratls holds $n certificates; this test checks 7: add the new ones"

# the same leaf as DER: the same decoding
python3 - "$RV/dstack-kvinwang-demo-server/server.crt" "$tmp/leaf.der" <<'PY'
import base64, re, sys
m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", open(sys.argv[1]).read(), re.S)
open(sys.argv[2], "wb").write(base64.b64decode("".join(m.group(1).split())))
PY
expect_rc 0 "$CVM" cert ratls show "$RV/dstack-kvinwang-demo-server/server.crt" --json && cp "$tmp/out" "$tmp/pem.json"
if expect_rc 0 "$CVM" cert ratls show "$tmp/leaf.der" --json; then
	python3 - "$tmp/out" "$tmp/pem.json" <<'PY' && pass || fail "the DER leaf decodes differently from the PEM chain's leaf"
import json, sys
der, pem = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert der["format"] == "der" and der["certificate_count"] == 1 and len(der["chain"]) == 1
assert pem["header"]["version"] == 4 and pem["header"]["tee_type"] == 0x81, pem["header"]
for k in ("file_len", "format", "certificate_count", "chain"):
    del der[k], pem[k]
assert der == pem, [k for k in pem if der.get(k) != pem[k]]
PY
fi

# text output: the first line and the chain's CA certificates without keyCertSign
if expect_rc 0 "$CVM" cert ratls show "$RV/dstack-kvinwang-demo-server/server.crt"; then
	grep -q "^certificate: RA-TLS profile dstack, TEE tdx, report data binds the certificate's key" "$tmp/out" &&
		pass || fail "show text: $(head -1 "$tmp/out")"
	[ "$(grep -c "keyUsage lacks keyCertSign" "$tmp/out")" -eq 2 ] && pass ||
		fail "show text does not flag the two CA certificates without keyCertSign"
fi

# ---- the legacy dstack chain with --ca (R-D1) ------------------------------------
python3 - "$RV/dstack-kvinwang-demo-server/server.crt" "$tmp/kms-ca.pem" <<'PY'
import re, sys
blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", open(sys.argv[1]).read(), re.S)
open(sys.argv[2], "w").write(blocks[2] + "\n")
PY
AT_2026=1786622400
if expect_rc 3 "$CVM" cert ratls verify "$RV/dstack-kvinwang-demo-server/server.crt" --ca "$tmp/kms-ca.pem" \
	--at "$AT_2026"; then
	grep "FAIL" "$tmp/out" | grep -q "keyCertSign" && pass ||
		fail "verify --ca on R-D1 does not name the missing keyCertSign: $(cat "$tmp/out")"
fi
if expect_rc 3 "$CVM" cert ratls verify "$RV/dstack-kvinwang-demo-server/server.crt" --ca "$tmp/kms-ca.pem" \
	--at "$AT_2026" --allow-legacy-ca --json; then
	python3 - "$tmp/out" <<'PY' && pass || fail "verify --allow-legacy-ca on R-D1: chain not accepted as legacy"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["chain_verified"] is True and j["legacy_ca"] is True, j
assert j["binding"] is True, j
assert j["evidence_verified"] is False, j  # no collateral is stored for R-D1
assert not any("keyCertSign" in s["detail"] for s in j["steps"] if not s["ok"]), j["steps"]
PY
fi

# ---- the real Cosmian SEV-SNP certificates verify with their own chain -------------
# As Cosmian's tests do (verify_ratls with the expected measurement): the
# report, VCEK, ASK and ARK the extension carries, anchored in AMD's built-in
# ARK, at a time inside the certificates' validity. They ship no AMD CRL and
# come from VMPL 1, so the policy waives both, and pins the measurement; the
# other measurement is rejected.
AT_SEV=1777000000
for pair in "cosmian-tee-tools-2.1.0 12068361369cf9179bb6ac08572b7e15ed0bc8abb698cb04d4f584f7ff512a4c2081c1f5b105351dbd45c035a7d6a3a5" \
	"cosmian-tee-tools-1.6.2 59ead9b42664d54fda54f707670386f61b1d3bd34e2da8c8f9ac067e617a0aae4623304a4aa98bb30756affb4b6c0a05"; do
	dir=${pair%% *} meas=${pair#* }
	printf '{"snp": {"require_crl": false, "vmpl": "any", "measurement": "%s"}}\n' "$meas" >"$tmp/sev-$dir.json"
	if expect_rc 0 "$CVM" cert ratls verify "$RV/$dir/sev-cert.ratls.pem" --at "$AT_SEV" --policy "$tmp/sev-$dir.json"; then
		grep -q "^verdict: accepted (cosmian, snp, evidence verified, key bound)" "$tmp/out" && pass ||
			fail "$dir/sev-cert.ratls.pem: $(tail -1 "$tmp/out")"
		head -1 "$tmp/out" | grep -q SIMULATED && fail "$dir/sev-cert.ratls.pem is labelled simulated" || pass
	fi
done
expect_rc 3 "$CVM" cert ratls verify "$RV/cosmian-tee-tools-1.6.2/sev-cert.ratls.pem" --at "$AT_SEV" \
	--policy "$tmp/sev-cosmian-tee-tools-2.1.0.json" || true
# the strict default policy: no CRL was given, so revocation was not checked
if expect_rc 3 "$CVM" cert ratls verify "$RV/cosmian-tee-tools-2.1.0/sev-cert.ratls.pem" --at "$AT_SEV"; then
	grep -q "^verdict: rejected: no CRL was given" "$tmp/out" && pass || fail "strict policy: $(tail -1 "$tmp/out")"
fi

# ---- make + show + verify on the simulator ---------------------------------------
D="$tmp/platform"
expect_rc 0 "$CVM" sim init "$D"
TDX_COLL="$D/collateral/tdx"
TDX_ROOT="$D/collateral/tdx/intel_sgx_root_ca.der"
SNP_COLL="$D/collateral/snp"
SNP_ROOT="$D/collateral/snp/ark.pem"

# Runtime events the simulated agent recorded, extended into RTMR3 as
# dstack does (V1 digest: SHA-384(u32le(0x08000001) || ":" || name || ":" || payload)).
mkdir -p "$D/agent"
python3 - "$D/agent/runtime_events.log" >"$tmp/digests" <<'PY'
import base64, hashlib, json, sys
events = [("system-preparing", b""), ("app-id", bytes(range(20))), ("compose-hash", bytes(32)),
          ("system-ready", b"")]
with open(sys.argv[1], "w") as f:
    for name, payload in events:
        f.write(json.dumps({"event": name, "payload": base64.b64encode(payload).decode()}) + "\n")
        print(hashlib.sha384((0x08000001).to_bytes(4, "little") + b":" + name.encode() + b":" + payload).hexdigest())
PY
while read -r d; do
	expect_rc 0 "$CVM" sim extend "$D" --rtmr 3 --digest "$d"
done <"$tmp/digests"

for platform in tdx snp; do
	for profile in dstack cosmian; do
		key="$tmp/$platform-$profile.key"
		crt="$tmp/$platform-$profile.pem"
		what="$profile $platform"
		expect_rc 0 "$CVM" cert ratls make --profile "$profile" --sim "$D" --platform "$platform" \
			--subject "test-$platform" --san localhost --san 127.0.0.1 --hours 2 \
			--key-out "$key" --cert-out "$crt" || continue
		[ "$(head -1 "$tmp/out")" = "SIMULATED TEE: this evidence comes from cvmkit's simulator, not from hardware" ] &&
			pass || fail "make $what: first line: $(head -1 "$tmp/out")"
		mode=$(stat -c %a "$key")
		[ "$mode" = 600 ] && pass || fail "make $what: key mode $mode, expected 600"
		grep -q "BEGIN PRIVATE KEY" "$key" && pass || fail "make $what: no PKCS#8 key in $key"
		if [ "$platform" = tdx ]; then
			grep -q ", 4 events, " "$tmp/out" && pass || fail "make $what: the 4 runtime events are not carried"
		fi
		if expect_rc 0 "$CVM" cert ratls show "$crt" --json; then
			python3 - "$tmp/out" "$profile" "$platform" <<'PY' && pass || fail "show --json on the $what certificate"
import datetime, json, sys
j = json.load(open(sys.argv[1]))
assert j["profile"] == sys.argv[2] and j["tee"] == sys.argv[3] and j["binding"] is True, j
nb = datetime.datetime.strptime(j["not_before"], "%Y-%m-%dT%H:%M:%SZ")
na = datetime.datetime.strptime(j["not_after"], "%Y-%m-%dT%H:%M:%SZ")
life = (na - nb).total_seconds()
assert 2 * 3600 <= life <= 2 * 3600 + 600, life  # --hours 2, from 5 minutes before now
if sys.argv[3] == "tdx":
    assert j["rtmr3"] != "00" * 48
if sys.argv[2] == "dstack":  # the VersionedAttestation: the runtime events replay to RTMR3
    a = j["extensions"]["attestation"]
    assert a["report_data_matches_quote"] is True, a
    if sys.argv[3] == "tdx":
        assert [e["event"] for e in a["runtime_events"]] == ["system-preparing", "app-id", "compose-hash",
                                                            "system-ready"], a["runtime_events"]
        assert a["runtime_replay"]["matches_quote"] is True, a["runtime_replay"]
        assert j["extensions"]["event_log"]["ok"] is True, j["extensions"]["event_log"]  # legacy 1.2
PY
			python3 "$tmp/certcheck.py" "$crt" "$tmp/out" "tee=$platform" "profile=$profile" binding=true &&
				pass || fail "independent check of the $what certificate"
		fi
		if [ "$platform" = tdx ]; then
			coll="$TDX_COLL" root="$TDX_ROOT"
		else
			coll="$SNP_COLL" root="$SNP_ROOT"
		fi
		if expect_rc 0 "$CVM" cert ratls verify "$crt" --collateral "$coll" --root "$root"; then
			[ "$(head -1 "$tmp/out")" = "SIMULATED TEE: this evidence comes from cvmkit's simulator, not from hardware" ] &&
				pass || fail "verify $what: first line: $(head -1 "$tmp/out")"
			grep -q "^verdict: accepted" "$tmp/out" && pass || fail "verify $what: $(tail -1 "$tmp/out")"
		fi
		if expect_rc 0 "$CVM" cert ratls verify "$crt" --collateral "$coll" --root "$root" --json; then
			python3 - "$tmp/out" "$platform" <<'PY' && pass || fail "verify --json on the $what certificate"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "accepted" and j["simulated"] is True, j
assert j["evidence_verified"] and j["binding"], j
if sys.argv[2] == "tdx" and j["profile"] == "dstack":
    assert j["replayed"] is True, j
PY
		fi
		# not anchored in the simulator's root: rejected, and still labelled
		if expect_rc 3 "$CVM" cert ratls verify "$crt" --collateral "$coll"; then
			[ "$(head -1 "$tmp/out")" = "SIMULATED TEE: this evidence comes from cvmkit's simulator, not from hardware" ] &&
				pass || fail "verify $what without --root: first line: $(head -1 "$tmp/out")"
		fi
		# expired: one second after notAfter
		na=$("$CVM" cert ratls show "$crt" --json | python3 -c 'import calendar,json,sys,time; print(calendar.timegm(time.strptime(json.load(sys.stdin)["not_after"], "%Y-%m-%dT%H:%M:%SZ")) + 1)')
		if expect_rc 3 "$CVM" cert ratls verify "$crt" --collateral "$coll" --root "$root" --at "$na"; then
			grep -qi "expired\|not valid after\|notAfter" "$tmp/out" && pass ||
				fail "verify $what after notAfter does not say it expired: $(cat "$tmp/out")"
		fi
		# a key file is never replaced
		expect_rc 1 "$CVM" cert ratls make --profile "$profile" --sim "$D" --platform "$platform" \
			--subject x --key-out "$key" --cert-out "$tmp/other.pem" &&
			{ grep -q "never replaces a key file" "$tmp/err" && pass || fail "make over a key: $(cat "$tmp/err")"; }
	done
done

# An event the simulator's RTMR3 never saw: the certificate's log no longer
# replays, and verify rejects it.
python3 - "$D/agent/runtime_events.log" "$tmp/extra.log" <<'PY'
import shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
open(sys.argv[2], "a").write('{"event":"app-started","payload":"aGVsbG8="}\n')
PY
if expect_rc 0 "$CVM" cert ratls make --profile dstack --sim "$D" --platform tdx --subject bad-log \
	--event-log "$tmp/extra.log" --key-out "$tmp/bad.key" --cert-out "$tmp/bad.pem"; then
	if expect_rc 3 "$CVM" cert ratls verify "$tmp/bad.pem" --collateral "$TDX_COLL" --root "$TDX_ROOT" --json; then
		python3 - "$tmp/out" <<'PY' && pass || fail "a certificate whose event log does not replay is not rejected on it"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "rejected" and j["replayed"] is False and j["binding"] is True, j
PY
	fi
fi

# A certificate for another key that carries the same evidence: its report
# data binds the first key, not this one. Made with python3's cryptography
# (the extensions copied byte for byte).
if python3 -c 'import cryptography' 2>/dev/null && [ -s "$tmp/tdx-dstack.pem" ]; then
	python3 - "$tmp/tdx-dstack.pem" "$tmp/rebound.pem" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

src = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rebound")])
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
     .not_valid_after(now + datetime.timedelta(hours=1)))
for e in src.extensions:
    if e.oid.dotted_string.startswith("1.3.6.1.4.1.62397."):
        b = b.add_extension(x509.UnrecognizedExtension(e.oid, e.value.value), critical=False)
open(sys.argv[2], "wb").write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
PY
	if expect_rc 0 "$CVM" cert ratls show "$tmp/rebound.pem" --json; then
		python3 "$tmp/certcheck.py" "$tmp/rebound.pem" "$tmp/out" profile=dstack tee=tdx binding=false && pass ||
			fail "show: a certificate whose evidence binds another key"
	fi
	if expect_rc 3 "$CVM" cert ratls verify "$tmp/rebound.pem" --collateral "$TDX_COLL" --root "$TDX_ROOT" --json; then
		python3 - "$tmp/out" <<'PY' && pass || fail "verify accepts a certificate whose evidence binds another key"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verdict"] == "rejected" and j["binding"] is False and j["evidence_verified"] is True, j
PY
	fi
	# dstack's 1.9 app info (no public certificate carries one): the made
	# certificate's extensions plus an AppInfo in rmp_serde's array form,
	# byte strings as bin and as arrays of integers, with two init script hashes.
	python3 - "$tmp/tdx-dstack.pem" "$tmp/appinfo.pem" "$tmp/appinfo.want" <<'PY'
import datetime, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def mbin(b):
    return b"\xc4" + bytes([len(b)]) + b


def marr(b):  # a byte string as an array of integers (serde without serde_bytes)
    return bytes([0xDC]) + len(b).to_bytes(2, "big") + b"".join(bytes([x]) if x < 128 else b"\xcc" + bytes([x]) for x in b)


f = {"app_id": bytes(range(20)), "compose_hash": bytes(range(100, 132)), "instance_id": b"",
     "device_id": bytes([7] * 32), "mr_system": bytes(range(200, 232)), "mr_aggregated": bytes([0xee] * 32),
     "os_image_hash": bytes([1] * 32), "key_provider_info": b'{"name":"kms","id":"00"}'}
h = [bytes([0xaa] * 32), bytes([0xbb] * 32)]
enc = {"compose_hash": marr, "mr_aggregated": marr}
body = bytes([0x99]) + b"".join(enc.get(k, mbin)(v) for k, v in f.items()) + bytes([0x92]) + b"".join(mbin(x) for x in h)
n = len(body)
ext = b"\x04" + (bytes([n]) if n < 128 else b"\x81" + bytes([n]) if n < 256 else b"\x82" + n.to_bytes(2, "big")) + body
src = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app-info")])
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
     .not_valid_after(now + datetime.timedelta(hours=1)))
for e in src.extensions:
    if e.oid.dotted_string.startswith("1.3.6.1.4.1.62397."):
        b = b.add_extension(x509.UnrecognizedExtension(e.oid, e.value.value), critical=False)
b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.9"), ext), critical=False)
open(sys.argv[2], "wb").write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
want = {k: v.hex() for k, v in f.items()}
want["key_provider_info_text"] = f["key_provider_info"].decode()
want["init_script_hashes"] = [x.hex() for x in h]
json.dump(want, open(sys.argv[3], "w"))
PY
	if expect_rc 0 "$CVM" cert ratls show "$tmp/appinfo.pem" --json; then
		python3 -c 'import json,sys; got = json.load(open(sys.argv[1]))["extensions"]["app_info"]; want = json.load(open(sys.argv[2])); assert got == want, (got, want)' \
			"$tmp/out" "$tmp/appinfo.want" && pass || fail "the 1.9 app info is not decoded as written"
	fi
	if expect_rc 0 "$CVM" cert ratls show "$tmp/appinfo.pem"; then
		grep -q "^    mr_system          c8c9cacb" "$tmp/out" && grep -q "init_script_hashes 2 hashes" "$tmp/out" && pass ||
			fail "show text does not decode the app info: $(grep -A12 'app info' "$tmp/out")"
	fi
else
	fail "python3's cryptography is not installed (scripts/setup.sh installs python3-cryptography), or no" \
		"TDX certificate was made: the certificate whose evidence binds another key and the 1.9 app" \
		"info cannot be checked"
fi

# ---- usage ----------------------------------------------------------------------
expect_rc 2 "$CVM" cert ratls show || true
expect_rc 2 "$CVM" cert ratls verify || true
expect_rc 2 "$CVM" cert ratls verify "$RV/dstack-kvinwang-demo-server/server.crt" --at soon || true
expect_rc 2 "$CVM" cert ratls make --profile dstack --subject x --key-out "$tmp/k" --cert-out "$tmp/c" || true
expect_rc 2 "$CVM" cert ratls make --profile other --sim "$D" --platform tdx --subject x --key-out "$tmp/k" \
	--cert-out "$tmp/c" || true
expect_rc 2 "$CVM" cert ratls make --profile dstack --sim "$D" --subject x --key-out "$tmp/k" --cert-out "$tmp/c" || true
expect_rc 2 "$CVM" cert ratls make --profile dstack --sim "$D" --platform tdx --subject x --hours 0 \
	--key-out "$tmp/k" --cert-out "$tmp/c" || true
expect_rc 2 "$CVM" cert ratls make --profile dstack --sim "$D" --platform tdx --subject x --app-id 1234 \
	--key-out "$tmp/k" --cert-out "$tmp/c" || true
[ ! -e "$tmp/k" ] && pass || fail "a refused make left a key file"
# --tee auto on a machine without a TEE (CI runners have none): exit 1, and
# it names the simulator; on a TDX/SNP guest it makes a certificate.
rc=0
"$CVM" cert ratls make --profile dstack --tee auto --subject x --key-out "$tmp/k" --cert-out "$tmp/c" \
	>"$tmp/out" 2>"$tmp/err" || rc=$?
if [ "$rc" -eq 1 ]; then
	grep -q "no TEE found on this machine.*--sim DIR" "$tmp/err" && pass || fail "--tee auto without a TEE: $(cat "$tmp/err")"
	[ ! -e "$tmp/k" ] && pass || fail "--tee auto without a TEE left a key file"
elif [ "$rc" -eq 0 ]; then
	echo "NOTE: this machine has a TEE: --tee auto made a certificate" >&2
	pass
else
	fail "--tee auto exited $rc: $(cat "$tmp/err")"
fi

if [ "$failures" -ne 0 ]; then
	echo "cli_ratls: $failures of $((checks + failures)) checks failed" >&2
	exit 1
fi
echo "cli_ratls: all $checks checks passed"
