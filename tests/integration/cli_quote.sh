#!/usr/bin/env bash
# cvm quote verify / show against every real TDX and SGX vector, at each
# vector's own verify_at_unix:
#  - with a permissive policy, the quote verdict (Intel's rules: TCB status and
#    advisory IDs) must match the table in tests/vectors/README.md, and the
#    measured fields in the JSON must match the vector's manifest;
#  - with the default (strict) policy, the vectors the table marks "policy:"
#    are rejected for that reason, and only the clean UpToDate quote passes;
#  - usage errors exit 2, unreadable inputs exit 1 with a clear message;
#  - cvm quote show parses every quote.
# Needs: $CVM_BIN/cvm, tests/vectors (and the extra vectors of $CVM_VECTORS_DIR, if any), python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
V="$VECTORS"
vectors_require tdx/dcapqvl-tdx-v4-uptodate/quote.bin tdx/automata-tdx-v5-alibaba/quote.bin

if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to read the manifests and the JSON output" >&2
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
usage_case "verify without --collateral" quote verify "$q"
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
expect_rc 0 "$rc" "help quote" && { grep -q "cvm quote verify QUOTE --collateral DIR" "$tmp/out" || fail "help quote: no synopsis"; }
rc="$(run_cvm "$tmp/out" "$tmp/err" quote verify --help)"
expect_rc 0 "$rc" "quote verify --help" || true
rc="$(run_cvm "$tmp/out" "$tmp/err" --version)"
expect_rc 0 "$rc" "--version" && { grep -qE '^cvm \(cvmkit\) [0-9]+\.[0-9]+' "$tmp/out" || fail "--version: $(cat "$tmp/out")"; }

echo "cli_quote: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
