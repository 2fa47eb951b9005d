#!/usr/bin/env bash
# cvm quote verify / show against every real TDX and SGX vector, at each
# vector's own verify_at_unix:
#  - with a permissive policy, the quote verdict (Intel's rules: TCB status and
#    advisory IDs) must match the table in tests/vectors/README.md, and the
#    measured fields in the JSON must match the vector's manifest;
#  - with the default (strict) policy, the vectors the table marks "policy:"
#    are rejected for that reason, and only the clean UpToDate quote passes;
#  - usage errors exit 2, unreadable inputs exit 1 with a clear message;
#  - cvm quote show parses every quote;
#  - collateral that a second, revoked PCK leaf of a simulated platform signs (a TCB info turning
#    OutOfDate into UpToDate, a QE identity admitting a foreign QE), with that leaf in the issuer
#    chains, is rejected at step tcb_info: only Intel's TCB Signing certificate signs collateral.
# Needs: $CVM_BIN/cvm, tests/vectors (and the extra vectors of $CVM_VECTORS_DIR, if any), python3
# (for reading JSON), openssl (the forgery).
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
V="$VECTORS"
vectors_require tdx/dcapqvl-tdx-v4-uptodate/quote.bin tdx/automata-tdx-v5-alibaba/quote.bin

for tool in python3 openssl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is needed (the manifests and the JSON output; the forged collateral)" >&2
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

# The table of vectors/README.md. Fields: folder | quote verdict (ok,
# nomatch, v2) | TCB status | advisory IDs (comma-separated) | what the
# default policy rejects ("-": nothing beyond the quote verdict).
cat >"$tmp/table" <<'EOF'
tdx/dcapqvl-tdx-v4-uptodate|ok|UpToDate||-
tdx/zkdcap-tdx-v4-outofdate|ok|OutOfDate|INTEL-SA-00960,INTEL-SA-00982,INTEL-SA-00986|-
tdx/automata-tdx-v4-0625|ok|OutOfDate|INTEL-SA-00960,INTEL-SA-00982,INTEL-SA-00986|-
tdx/automata-tdx-v5-alibaba|ok|UpToDate||MR_SERVICE_TD
tdx/dcapqvl-tdx-v5-nomatch|nomatch|||-
tdx/gotdxguest-tdx-v4-spr-nomatch|nomatch|||SEPT_VE_DISABLE
sgx/dcapqvl-sgx-v3-confswhardening|ok|ConfigurationAndSWHardeningNeeded|INTEL-SA-00289,INTEL-SA-00615|-
sgx/dcapqvl-sgx-v3-2023collateral|ok|ConfigurationAndSWHardeningNeeded|INTEL-SA-00289,INTEL-SA-00615|-
sgx/zkdcap-sgx-v3-swhardening|ok|SWHardeningNeeded|INTEL-SA-00334,INTEL-SA-00615|-
sgx/trustee-occlum-sgx-v3-0825|ok|OutOfDate|INTEL-SA-00586,INTEL-SA-00614,INTEL-SA-00615,INTEL-SA-00657,INTEL-SA-00730,INTEL-SA-00738,INTEL-SA-00767,INTEL-SA-00828,INTEL-SA-00837,INTEL-SA-00960|debug
sgx/trustee-occlum-sgx-v3-tcbinfov2|v2|||-
EOF

# Every status, any advisory, debug allowed, no TD attribute requirement:
# what is left is the quote verdict by Intel's rules.
cat >"$tmp/permissive.json" <<'EOF'
{
  "accepted_tcb_statuses": ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                            "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"],
  "accepted_advisory_ids": ["*"],
  "allow_debug": true,
  "tdx": { "require_sept_ve_disable": false, "require_zero_mr_service_td": false }
}
EOF

# check.py: the JSON side of the checks. Each mode prints one line per
# problem and exits 1 if there was any.
cat >"$tmp/check.py" <<'EOF'
import json, sys

def load(path):
    with open(path) as f:
        return json.load(f)

def main():
    mode = sys.argv[1]
    bad = []
    if mode == "at":
        print(load(sys.argv[2])["verify_at_unix"])
        return 0
    if mode == "get":
        v = load(sys.argv[2])
        for k in sys.argv[3].split("."):
            v = v[k] if v is not None else None
        print("null" if v is None else v)
        return 0
    out = load(sys.argv[2])
    if mode == "verdict":
        # verdict JSON has every documented key
        for k in ("verdict", "reason", "tee", "tcb_status", "advisory_ids", "steps", "quote_version",
                  "body", "platform_status", "qe_status", "tcb_date", "fmspc", "pck"):
            if k not in out:
                bad.append("missing key " + k)
        if out.get("verdict") not in ("accepted", "rejected"):
            bad.append("verdict is %r" % out.get("verdict"))
        if (out.get("verdict") == "accepted") != (out.get("reason") is None):
            bad.append("reason %r with verdict %r" % (out.get("reason"), out.get("verdict")))
        for s in out.get("steps", []):
            if set(s) != {"name", "ok", "detail"}:
                bad.append("step keys %r" % sorted(s))
        if out.get("verdict") == "accepted" and not all(s["ok"] for s in out["steps"]):
            bad.append("accepted with a failed step")
        if out.get("verdict") == "rejected" and all(s["ok"] for s in out.get("steps", [])):
            bad.append("rejected without a failed step")
    elif mode == "quote":
        want_status, want_adv = sys.argv[3], sys.argv[4]
        want_adv = sorted(a for a in want_adv.split(",") if a)
        if out.get("tcb_status") != want_status:
            bad.append("tcb_status %r, want %r" % (out.get("tcb_status"), want_status))
        if sorted(out.get("advisory_ids", [])) != want_adv:
            bad.append("advisory_ids %r, want %r" % (out.get("advisory_ids"), want_adv))
    elif mode == "fields":
        # measured fields (verify or show JSON) against the manifest
        kf = load(sys.argv[3])["key_fields"]
        for k, want in kf["fields"].items():
            got = out.get(k)
            if isinstance(want, str):
                want = want.lower()
            if got != want:
                bad.append("%s: %r, manifest %r" % (k, got, want))
        if out.get("quote_version") != kf["header"]["version"]:
            bad.append("quote_version %r" % out.get("quote_version"))
        tee = "tdx" if kf["fields"]["body"].startswith("td") else "sgx"
        if out.get("tee") != tee:
            bad.append("tee %r, want %r" % (out.get("tee"), tee))
        if len(sys.argv) > 4 and sys.argv[4] == "pck":
            pck = out.get("pck") or {}
            if pck.get("fmspc") != kf["pck"]["fmspc"].lower() or out.get("fmspc") != pck.get("fmspc"):
                bad.append("pck.fmspc %r, manifest %r" % (pck.get("fmspc"), kf["pck"]["fmspc"]))
            if pck.get("cpu_svn") != kf["pck"]["cpu_svn"] or pck.get("pce_svn") != kf["pck"]["pce_svn"]:
                bad.append("pck svns %r, manifest %r" % (pck, kf["pck"]))
        if len(sys.argv) > 4 and sys.argv[4] == "show":
            h, hk = out.get("header", {}), kf["header"]
            for a, b in (("version", "version"), ("att_key_type", "attestation_key_type"), ("qe_svn", "qe_svn"),
                         ("pce_svn", "pce_svn"), ("qe_vendor_id", "qe_vendor_id")):
                if h.get(a) != hk[b]:
                    bad.append("header.%s %r, manifest %r" % (a, h.get(a), hk[b]))
            if h.get("tee_type") != int(hk["tee_type"], 16):
                bad.append("header.tee_type %r" % h.get("tee_type"))
            if out.get("verified") is not False:
                bad.append("show must say verified: false")
            sd = out.get("signature_data", {})
            if sd.get("pck_chain_cert_count") != kf["pck"]["chain_len"]:
                bad.append("pck_chain_cert_count %r, manifest %r" % (sd.get("pck_chain_cert_count"),
                                                                     kf["pck"]["chain_len"]))
            if sd.get("cert_data_type") != 5:
                bad.append("cert_data_type %r" % sd.get("cert_data_type"))
    elif mode == "reason":
        # the reason (or, with "steps", a failed step) names the cause
        word, where = sys.argv[3].lower(), sys.argv[4] if len(sys.argv) > 4 else "reason"
        if where == "reason":
            if word not in (out.get("reason") or "").lower():
                bad.append("reason %r does not name %r" % (out.get("reason"), word))
        else:
            if not any(word in (s["detail"] + " " + s["name"]).lower() for s in out["steps"] if not s["ok"]):
                bad.append("no failed step names %r" % word)
    elif mode == "td_attr_clear":
        bit = int(sys.argv[3])
        a = int.from_bytes(bytes.fromhex(out["td_attributes"]), "little")
        if a & (1 << bit):
            bad.append("td_attributes bit %d is set" % bit)
    else:
        bad.append("unknown mode " + mode)
    for b in bad:
        print(b)
    return 1 if bad else 0

sys.exit(main())
EOF
check() { python3 "$tmp/check.py" "$@"; }

# run_cvm OUT ERR ARGS...: runs cvm, stores stdout/stderr, echoes the exit code.
run_cvm() {
	local out="$1" err="$2"
	shift 2
	local rc=0
	"$CVM" "$@" >"$out" 2>"$err" || rc=$?
	echo "$rc"
}

# expect_rc WANT GOT WHAT
expect_rc() {
	if [ "$2" -ne "$1" ]; then
		fail "$3: exit $2, want $1 (stderr: $(head -c 400 "$tmp/err"))"
		return 1
	fi
	pass
	return 0
}

# expect_check WHAT CHECK-ARGS...: a check.py run that must print nothing.
expect_check() {
	local what="$1" msg
	shift
	if ! msg="$(check "$@" 2>&1)"; then
		fail "$what: $msg"
		return 1
	fi
	pass
	return 0
}

seen_uptodate=""
vector_dirs "quote.bin manifest.json" tdx sgx
for dir in "${VECTOR_DIRS[@]}"; do
	name="$(vector_name "$dir")"
	at="$(check at "$dir/manifest.json")"
	line="$(grep "^$name|" "$tmp/table" || true)"
	if [ -z "$line" ]; then
		echo "NOTE: $name is not in the table; checking only that it gives a verdict" >&2
		line="$name|unknown|||-"
	fi
	IFS='|' read -r _ verdict status advisories policy_reason <<<"$line"

	# --- the quote verdict, with the permissive policy ---
	rc="$(run_cvm "$tmp/out.json" "$tmp/err" quote verify "$dir/quote.bin" --collateral "$dir" --at "$at" \
		--policy "$tmp/permissive.json" --json)"
	expect_check "$name: verdict JSON" verdict "$tmp/out.json" || continue
	case "$verdict" in
	ok)
		if expect_rc 0 "$rc" "$name (permissive)"; then
			expect_check "$name: quote verdict" quote "$tmp/out.json" "$status" "$advisories" || true
		fi
		expect_check "$name: measured fields" fields "$tmp/out.json" "$dir/manifest.json" pck || true
		;;
	nomatch)
		expect_rc 3 "$rc" "$name (permissive)" || true
		if [ "$(check get "$tmp/out.json" tcb_status)" = "null" ]; then pass; else
			fail "$name: tcb_status should be null when no TCB level matched"
		fi
		expect_check "$name: a failed step names the TCB level" reason "$tmp/out.json" "TCB level" steps || true
		expect_check "$name: measured fields" fields "$tmp/out.json" "$dir/manifest.json" || true
		;;
	v2)
		# TCB info version 2: only "a verdict with a TCB status or a clear
		# reason" for now.
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
			fail "$name: exit $rc, want 0 or 3"
		elif [ "$(check get "$tmp/out.json" tcb_status)" = "null" ] &&
			[ "$(check get "$tmp/out.json" reason)" = "null" ]; then
			fail "$name: neither a TCB status nor a reason"
		else
			pass
		fi
		;;
	*)
		[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "$name: exit $rc, want 0 or 3"
		;;
	esac

	# --- the default (strict) policy ---
	rc="$(run_cvm "$tmp/out.json" "$tmp/err" quote verify "$dir/quote.bin" --collateral "$dir" --at "$at" --json)"
	expect_check "$name: verdict JSON (default policy)" verdict "$tmp/out.json" || continue
	if [ "$name" = "tdx/dcapqvl-tdx-v4-uptodate" ]; then
		seen_uptodate=1
		expect_rc 0 "$rc" "$name (default policy)" || true
	elif [ "$verdict" != "unknown" ]; then
		expect_rc 3 "$rc" "$name (default policy)" || true
		[ "$(check get "$tmp/out.json" verdict)" = "rejected" ] || fail "$name: default policy did not reject"
	fi
	case "$policy_reason" in
	debug | MR_SERVICE_TD)
		expect_check "$name: reason names $policy_reason" reason "$tmp/out.json" "$policy_reason" || true
		;;
	SEPT_VE_DISABLE)
		# The quote verdict already rejects this one (no TCB level matches),
		# and a policy never appraises a quote that failed Intel's rules, so
		# the reason cannot name SEPT_VE_DISABLE: check the attribute itself.
		expect_check "$name: SEPT_VE_DISABLE clear" td_attr_clear "$tmp/out.json" 28 || true
		;;
	esac

	# --- cvm quote show parses every quote ---
	rc="$(run_cvm "$tmp/show.json" "$tmp/err" quote show "$dir/quote.bin" --json)"
	if expect_rc 0 "$rc" "$name: quote show --json"; then
		expect_check "$name: show fields" fields "$tmp/show.json" "$dir/manifest.json" show || true
	fi
	rc="$(run_cvm "$tmp/show.txt" "$tmp/err" quote show "$dir/quote.bin")"
	expect_rc 0 "$rc" "$name: quote show" || true
	grep -q "parsed only" "$tmp/show.txt" || fail "$name: quote show does not say it verified nothing"
done
[ -n "$seen_uptodate" ] || fail "tdx/dcapqvl-tdx-v4-uptodate is missing from the vectors"

# --- human output ---
up="$V/tdx/dcapqvl-tdx-v4-uptodate"
ali="$V/tdx/automata-tdx-v5-alibaba"
if [ -d "$up" ]; then
	at_up="$(check at "$up/manifest.json")"
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$up/quote.bin" --collateral "$up" --at "$at_up")"
	expect_rc 0 "$rc" "human output" || true
	grep -qx "verdict: accepted (TDX, TCB UpToDate, no advisories)" "$tmp/out" ||
		fail "human output: no accepted verdict line: $(tail -1 "$tmp/out")"
	grep -qE '^  OK    policy\.tcb_status: ' "$tmp/out" || fail "human output: no OK step lines"
	if grep -qE '^  FAIL  ' "$tmp/out"; then fail "human output: FAIL line in an accepted run"; else pass; fi
	# -q: the verdict line only
	rc="$(run_cvm "$tmp/out" "$tmp/err" -q quote verify "$up/quote.bin" --collateral "$up" --at "$at_up")"
	expect_rc 0 "$rc" "-q" || true
	[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "-q printed more than the verdict line"
	# --root, DER and PEM, gives the same verdict; a wrong root rejects
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$up/quote.bin" --collateral "$up" --at "$at_up" \
		--root "$up/intel_sgx_root_ca.der")"
	expect_rc 0 "$rc" "--root DER" || true
	python3 -c 'import base64,sys,textwrap; d=open(sys.argv[1],"rb").read(); print("-----BEGIN CERTIFICATE-----\n" + "\n".join(textwrap.wrap(base64.b64encode(d).decode(), 64)) + "\n-----END CERTIFICATE-----")' \
		"$up/intel_sgx_root_ca.der" >"$tmp/root.pem"
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$up/quote.bin" --collateral "$up" --at "$at_up" \
		--root "$tmp/root.pem")"
	expect_rc 0 "$rc" "--root PEM" || true
	# the TCB signing certificate (first in its chain) is not the root
	awk '/BEGIN CERT/{p=1} p{print} /END CERT/{exit}' "$up/tcb_info_issuer_chain.pem" >"$tmp/notroot.pem"
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$up/quote.bin" --collateral "$up" --at "$at_up" \
		--root "$tmp/notroot.pem")"
	expect_rc 3 "$rc" "--root with the wrong anchor" || true
	# --at defaults to now: this collateral has long expired
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$up/quote.bin" --collateral "$up")"
	expect_rc 3 "$rc" "--at default (now, collateral expired)" || true
	# a policy that pins MRTD: match accepted, mismatch rejected with both values
	mrtd="$(check get <("$CVM" quote show --json "$up/quote.bin") mr_td)"
	printf '{"tdx": {"mr_td": "%s"}}' "$mrtd" >"$tmp/pin.json"
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$up/quote.bin" --collateral "$up" --at "$at_up" \
		--policy "$tmp/pin.json")"
	expect_rc 0 "$rc" "policy pinning the right MRTD" || true
	printf '{"tdx": {"mr_td": "%s"}}' "$(printf '%096d' 0)" >"$tmp/pin.json"
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$up/quote.bin" --collateral "$up" --at "$at_up" \
		--policy "$tmp/pin.json")"
	expect_rc 3 "$rc" "policy pinning a wrong MRTD" || true
	grep -q "^  FAIL  policy.mr_td: MRTD mismatch: expected 0000.*, got $mrtd" "$tmp/out" ||
		fail "MRTD mismatch line: $(grep policy.mr_td "$tmp/out")"
	# an SGX expectation against a TDX quote is a policy error
	printf '{"sgx": {"mr_enclave": "%s"}}' "$(printf '%064d' 0)" >"$tmp/sgxpin.json"
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$up/quote.bin" --collateral "$up" --at "$at_up" \
		--policy "$tmp/sgxpin.json")"
	expect_rc 3 "$rc" "SGX expectation against a TDX quote" || true
	grep -q "FAIL  policy.tee" "$tmp/out" || fail "no policy.tee failure for an SGX policy on a TDX quote"
fi
if [ -d "$ali" ]; then
	at_ali="$(check at "$ali/manifest.json")"
	rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify "$ali/quote.bin" --collateral "$ali" --at "$at_ali")"
	expect_rc 3 "$rc" "human output, rejected" || true
	grep -qE '^verdict: rejected: .*MR_SERVICE_TD.*\(TDX, TCB UpToDate, no advisories\)$' "$tmp/out" ||
		fail "human output: rejected verdict line: $(tail -1 "$tmp/out")"
fi

# --- the collateral signer is pinned (a revoked PCK leaf cannot sign) ---
# A simulated platform gives a PKI whose keys this script holds: "Intel's"
# collateral is re-signed by its TCB Signing key to rate the platform
# OutOfDate. A second PCK leaf of the same PCK CA, revoked on the PCK CRL,
# then signs a TCB info that says UpToDate and a QE identity that admits a
# foreign QE, and goes into their issuer chains in place of the TCB Signing
# certificate: the quote must be rejected at step tcb_info.
sim="$tmp/sim"
rc="$(run_cvm "$tmp/out" "$tmp/err" sim init "$sim")"
if expect_rc 0 "$rc" "sim init for the signer checks"; then
	C="$tmp/forged-coll"
	G="$tmp/intel-coll"
	K="$sim/keys"
	mkdir -p "$C" "$G"
	cp "$sim/collateral/tdx/"* "$G/"
	cat >"$tmp/forge.py" <<'PY'
import json, re, sys

def der_tlv(b, i):
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, b[i:i + n], i + n

def raw_sig(der_file):
    # an ECDSA-Sig-Value (openssl dgst -sign) as r || s, 32 bytes each
    der = open(der_file, "rb").read()
    _, seq, _ = der_tlv(der, 0)
    _, r, j = der_tlv(seq, 0)
    _, s, _ = der_tlv(seq, j)
    return int.from_bytes(r, "big").to_bytes(32, "big") + int.from_bytes(s, "big").to_bytes(32, "big")

QE_OFF = 48 + 584 + 4 + 64 + 64 + 2 + 4   # TDX v4: header, body, sig length, sig, key, type 6 header

mode = sys.argv[1]
if mode == "text":          # BODY OUT: the signed text of a PCS body
    body = open(sys.argv[2], "rb").read()
    m = re.fullmatch(rb'\{"(tcbInfo|enclaveIdentity)":(.*),"signature":"[0-9a-f]{128}"\}', body, re.S)
    open(sys.argv[3], "wb").write(m.group(2))
elif mode == "body":        # MEMBER TEXT SIG.der OUT
    text = open(sys.argv[3], "rb").read()
    sig = raw_sig(sys.argv[4]).hex().encode()
    open(sys.argv[5], "wb").write(b'{"' + sys.argv[2].encode() + b'":' + text + b',"signature":"' + sig + b'"}')
elif mode == "status":      # TEXT OUT FROM TO: the first platform TCB level's status
    t = open(sys.argv[2], "rb").read()
    i = t.index(b'"tcbLevels":[{"tcb":{"sgxtcbcomponents"')
    a, b = ('"tcbStatus":"%s"' % sys.argv[4]).encode(), ('"tcbStatus":"%s"' % sys.argv[5]).encode()
    j = t.index(a, i)
    open(sys.argv[3], "wb").write(t[:j] + b + t[j + len(a):])
elif mode == "mrsigner":    # TEXT OUT HEX: a QE identity admitting another MRSIGNER
    t = open(sys.argv[2], "rb").read()
    t2 = re.sub(rb'"mrsigner":"[0-9A-Fa-f]{64}"', b'"mrsigner":"' + sys.argv[4].upper().encode() + b'"', t, count=1)
    assert t2 != t
    open(sys.argv[3], "wb").write(t2)
elif mode == "qe-report":   # QUOTE OUT-QUOTE OUT-REPORT HEX: a foreign QE (MRSIGNER at offset 128)
    q = bytearray(open(sys.argv[2], "rb").read())
    q[QE_OFF + 128:QE_OFF + 160] = bytes.fromhex(sys.argv[5])
    open(sys.argv[3], "wb").write(q)
    open(sys.argv[4], "wb").write(q[QE_OFF:QE_OFF + 384])
elif mode == "qe-sig":      # QUOTE SIG.der: the QE report's signature, in place
    q = bytearray(open(sys.argv[2], "rb").read())
    q[QE_OFF + 384:QE_OFF + 448] = raw_sig(sys.argv[3])
    open(sys.argv[2], "wb").write(q)
PY
	foreign="$(python3 -c 'print("66" * 32)')"
	(
		set -e
		cd "$tmp"
		subj="/O=Intel Corporation/L=Santa Clara/ST=CA/C=US"
		# "Intel's" collateral: the platform is OutOfDate
		python3 forge.py text "$G/tcb_info.json" ti.txt
		python3 forge.py status ti.txt ti-ood.txt UpToDate OutOfDate
		openssl dgst -sha256 -sign "$K/tcb_signer.key" -out s.der ti-ood.txt
		python3 forge.py body tcbInfo ti-ood.txt s.der "$G/tcb_info.json"
		# the second leaf: Intel's name for a PCK certificate, issued by the PCK CA
		openssl ecparam -name prime256v1 -genkey -noout -out leaf2.key
		openssl req -new -key leaf2.key -subj "/CN=Intel SGX PCK Certificate$subj" -out leaf2.csr
		printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n' >leaf2.ext
		openssl x509 -req -in leaf2.csr -CA "$K/pck_ca.pem" -CAkey "$K/pck_ca.key" -set_serial 0x5eed0000000000a1 \
			-days 365 -sha256 -extfile leaf2.ext -out leaf2.pem
		# revoked on the PCK CRL, which the PCK CA signs
		printf 'R\t%s\t%s\t5EED0000000000A1\tunknown\t/CN=Intel SGX PCK Certificate%s\n' \
			"$(date -u -d '+365 days' +%y%m%d%H%M%SZ)" "$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" "$subj" >index.txt
		echo 01 >crlnumber
		printf '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n' >ca.cnf
		openssl ca -batch -config ca.cnf -gencrl -keyfile "$K/pck_ca.key" -cert "$K/pck_ca.pem" -out pck_crl.pem
		openssl crl -in pck_crl.pem -outform DER -out "$G/pck_crl.der"
		cp "$G/"* "$C/"
		# what the leaf signs: UpToDate, and a QE identity for the foreign QE
		openssl dgst -sha256 -sign leaf2.key -out s.der ti.txt
		python3 forge.py body tcbInfo ti.txt s.der "$C/tcb_info.json"
		python3 forge.py text "$G/qe_identity.json" qe.txt
		python3 forge.py mrsigner qe.txt qe-foreign.txt "$foreign"
		openssl dgst -sha256 -sign leaf2.key -out s.der qe-foreign.txt
		python3 forge.py body enclaveIdentity qe-foreign.txt s.der "$C/qe_identity.json"
		cat leaf2.pem "$K/pck_ca.pem" "$K/root.pem" >"$C/tcb_info_issuer_chain.pem"
		cp "$C/tcb_info_issuer_chain.pem" "$C/qe_identity_issuer_chain.pem"
	) >"$tmp/forge.log" 2>&1 || fail "forging collateral with openssl and python3 failed: $(tail -n 5 "$tmp/forge.log")"
	rc="$(run_cvm "$tmp/out" "$tmp/err" sim quote "$sim" --report-data "$(python3 -c 'print("00" * 64)')" --out "$tmp/sq.bin")"
	expect_rc 0 "$rc" "sim quote for the signer checks" || true
	# the foreign QE's report, signed by the platform's own (not revoked) PCK key
	python3 "$tmp/forge.py" qe-report "$tmp/sq.bin" "$tmp/sq-foreign.bin" "$tmp/qe-report.bin" "$foreign" &&
		openssl dgst -sha256 -sign "$K/pck.key" -out "$tmp/qe-sig.der" "$tmp/qe-report.bin" &&
		python3 "$tmp/forge.py" qe-sig "$tmp/sq-foreign.bin" "$tmp/qe-sig.der" ||
		fail "making the foreign QE's quote failed"
	root="$G/intel_sgx_root_ca.der"
	# Intel's collateral: the platform is OutOfDate (the policy rejects it), and
	# the foreign QE is not Intel's
	rc="$(run_cvm "$tmp/out.json" "$tmp/err" quote verify "$tmp/sq.bin" --collateral "$G" --root "$root" --json)"
	if expect_rc 3 "$rc" "the simulated quote under Intel's (re-signed) collateral"; then
		expect_check "Intel's collateral rates the platform OutOfDate" quote "$tmp/out.json" OutOfDate "" || true
	fi
	rc="$(run_cvm "$tmp/out.json" "$tmp/err" quote verify "$tmp/sq-foreign.bin" --collateral "$G" --root "$root" --json)"
	if expect_rc 3 "$rc" "the foreign QE under Intel's collateral"; then
		expect_check "the foreign QE is refused for its MRSIGNER" reason "$tmp/out.json" "MRSIGNER" || true
	fi
	# the collateral the revoked leaf signed: rejected at tcb_info, naming the TCB Signing certificate
	rc="$(run_cvm "$tmp/out.json" "$tmp/err" quote verify "$tmp/sq-foreign.bin" --collateral "$C" --root "$root" --json)"
	if expect_rc 3 "$rc" "collateral signed by a revoked PCK leaf"; then
		expect_check "collateral signed by a revoked PCK leaf: the reason" reason "$tmp/out.json" "TCB Signing" || true
		if [ "$(check get "$tmp/out.json" tcb_status)" = "null" ] &&
			python3 -c 'import json,sys; s=[x for x in json.load(open(sys.argv[1]))["steps"] if not x["ok"]]; sys.exit(0 if s and s[0]["name"] == "tcb_info" else 1)' "$tmp/out.json"; then
			pass
		else
			fail "collateral signed by a revoked PCK leaf: not rejected at step tcb_info with no TCB status: $(head -c 600 "$tmp/out.json")"
		fi
	fi
	# the same with the permissive policy: still rejected (Intel's rules, not policy)
	rc="$(run_cvm "$tmp/out.json" "$tmp/err" quote verify "$tmp/sq-foreign.bin" --collateral "$C" --root "$root" --policy "$tmp/permissive.json" --json)"
	expect_rc 3 "$rc" "collateral signed by a revoked PCK leaf, permissive policy" || true
fi

# --- usage errors: exit 2, "cvm ...:" on stderr ---
q="$up/quote.bin"
usage_case() {
	local what="$1" rc
	shift
	rc="$(run_cvm "$tmp/out" "$tmp/err" "$@")"
	if expect_rc 2 "$rc" "usage: $what"; then
		grep -q '^cvm' "$tmp/err" || fail "usage: $what: stderr does not start with 'cvm': $(cat "$tmp/err")"
	fi
}
usage_case "no command"
usage_case "unknown command" frobnicate
usage_case "unknown global option" --frobnicate
usage_case "quote without subcommand" quote
usage_case "unknown quote subcommand" quote frobnicate
usage_case "verify without QUOTE" quote verify --collateral "$up"
usage_case "verify --collateral with a cache option" quote verify "$q" --collateral "$up" --offline
usage_case "verify with two QUOTEs" quote verify "$q" "$q" --collateral "$up"
usage_case "verify --at not a number" quote verify "$q" --collateral "$up" --at yesterday
usage_case "verify --at negative" quote verify "$q" --collateral "$up" --at -5
usage_case "verify --at without value" quote verify "$q" --collateral "$up" --at
usage_case "verify unknown option" quote verify "$q" --collateral "$up" --frobnicate
usage_case "show without QUOTE" quote show
usage_case "help for an unknown command" help frobnicate

# --- errors: exit 1 with a message that says what is wrong ---
error_case() {
	local what="$1" want="$2" rc
	shift 2
	rc="$(run_cvm "$tmp/out" "$tmp/err" "$@")"
	if expect_rc 1 "$rc" "error: $what"; then
		grep -q "^cvm quote [a-z]*: .*$want" "$tmp/err" || fail "error: $what: stderr lacks '$want': $(cat "$tmp/err")"
	fi
}
error_case "missing quote file" "cannot read quote file '$tmp/nope.bin': No such file or directory" \
	quote verify "$tmp/nope.bin" --collateral "$up" --at 1
error_case "missing collateral folder" "cannot load collateral from '$tmp/nodir'" \
	quote verify "$q" --collateral "$tmp/nodir" --at 1
# without --collateral the cache is used; an empty one, offline, has nothing (cli_collateral.sh and
# collateral_outage.sh test the cache path itself)
error_case "verify without --collateral on an empty cache" "no usable collateral in the cache '$tmp/emptycache'" \
	quote verify "$q" --cache "$tmp/emptycache" --offline --at 1
echo '{"alow_debug": true}' >"$tmp/typo.json"
error_case "policy with an unknown key" "alow_debug: unknown key" \
	quote verify "$q" --collateral "$up" --at 1 --policy "$tmp/typo.json"
echo '{"tdx": {"mr_td": "00"}}' >"$tmp/short.json"
error_case "policy with a short hex value" "tdx.mr_td: expected 96 hex digits (48 bytes), got 2" \
	quote verify "$q" --collateral "$up" --at 1 --policy "$tmp/short.json"
error_case "missing policy file" "cannot read the policy file" \
	quote verify "$q" --collateral "$up" --at 1 --policy "$tmp/nope.json"
error_case "missing --root file" "cannot read --root certificate" \
	quote verify "$q" --collateral "$up" --at 1 --root "$tmp/nope.der"
echo "not a certificate" >"$tmp/junk.pem"
error_case "--root that is no certificate" "neither a DER certificate" \
	quote verify "$q" --collateral "$up" --at 1 --root "$tmp/junk.pem"
error_case "show: missing file" "cannot read quote file" quote show "$tmp/nope.bin"
error_case "show: not a quote" "is not a DCAP quote" quote show "$up/manifest.json"
head -c 70000 /dev/zero >"$tmp/big.bin"
error_case "quote file too large" "larger than 65536 bytes" quote show "$tmp/big.bin"

# --- help and version ---
rc="$(run_cvm "$tmp/out" "$tmp/err" --help)"
expect_rc 0 "$rc" "--help" && { grep -q "quote" "$tmp/out" || fail "--help does not list quote"; }
rc="$(run_cvm "$tmp/out" "$tmp/err" help quote)"
expect_rc 0 "$rc" "help quote" && { grep -q "cvm quote verify QUOTE \[--collateral DIR\]" "$tmp/out" || fail "help quote: no synopsis"; }
rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify --help)"
expect_rc 0 "$rc" "quote verify --help" || true
rc="$(run_cvm "$tmp/out" "$tmp/err" --version)"
expect_rc 0 "$rc" "--version" && { grep -qE '^cvm \(cvmkit\) [0-9]+\.[0-9]+' "$tmp/out" || fail "--version: $(cat "$tmp/out")"; }

echo "cli_quote: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
