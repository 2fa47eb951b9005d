#!/usr/bin/env bash
# POST /cvmkit/v1/verify on every DCAP and SEV-SNP vector: the vector's
# collateral is imported into a fresh cache (--import, at its
# verify_at_unix), a daemon with two workers serves it at that time, and
# the evidence is sent raw (application/octet-stream) and as JSON hex with
# a policy that accepts every TCB status, advisory and debug TEE, so that
# the answer carries the vendor's verdict:
#   - the verdict, TCB status and advisories are cvmkit's for the vector (the
#     table integration.cli_quote checks too); a quote without a matching
#     TCB level is rejected with no status and a failed step naming it;
#   - every answer names its tee, its trust anchor, the steps, and the
#     collateral's source ("cache": it came from the cache) and expiry;
#   - a rejection has a reason;
#   - the raw form (an SNP report's product as ?product=) gives the same
#     TEE, anchor and TCB status;
#   - the default (strict) policy rejects what it must: a vector whose TCB
#     is not UpToDate is not "ok" without the permissive policy;
#   - the service's metrics count the verdicts and the cache hits.
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
# shellcheck source=tests/common/verifierd.sh
. "$(dirname "$0")/../common/verifierd.sh"
[ -x "$bin/cvm-verifierd" ] || { echo "verifierd_cvmkit: $bin/cvm-verifierd is missing (build it first)"; exit 1; }
command -v python3 >/dev/null || { echo "verifierd_cvmkit: python3 is missing"; exit 1; }

vector_dirs "quote.bin manifest.json" tdx sgx
dcap=("${VECTOR_DIRS[@]}")
vector_dirs "report.bin manifest.json" snp
snp=("${VECTOR_DIRS[@]}")

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verifierd-cvmkit.XXXXXX")"
cleanup() {
	vd_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/check.py" <<'PY'
import http.client, json, os, sys

port, d, kind, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
fails = []
man = json.load(open(os.path.join(d, "manifest.json")))
exp = man["expected"]
evidence = open(os.path.join(d, "report.bin" if kind == "snp" else "quote.bin"), "rb").read()
permissive = {"accepted_tcb_statuses": ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
              "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"],
              "accepted_advisory_ids": ["*"], "allow_debug": True}
if kind == "tdx":
    permissive["tdx"] = {"require_sept_ve_disable": False, "require_zero_mr_service_td": False,
                         "allow_reserved_attributes": True}
if kind == "snp":
    # no vector carries AMD's CRL; the VMPL is the report's own (offset 0x30)
    permissive = {"allow_debug": True, "snp": {"require_crl": False, "allow_migration_agent": True,
                  "vmpl": int.from_bytes(evidence[0x30:0x34], "little")}}

def post(body, ctype, query=""):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/cvmkit/v1/verify" + query, body=body, headers={"Content-Type": ctype})
    r = c.getresponse()
    b = r.read()
    c.close()
    return r.status, b

def check(cond, what):
    if not cond:
        fails.append(what)

name = os.path.basename(os.path.normpath(d))
# cvmkit's verdicts on the vectors (the table of tests/vectors/README.md, as
# integration.cli_quote checks them): quote verdict, TCB status, advisories,
# whether the default (strict) policy rejects beyond the quote verdict
table = {
    "dcapqvl-tdx-v4-uptodate": ("ok", "UpToDate", [], False),
    "zkdcap-tdx-v4-outofdate": ("ok", "OutOfDate", ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"], True),
    "automata-tdx-v4-0625": ("ok", "OutOfDate", ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"], True),
    "automata-tdx-v5-alibaba": ("ok", "UpToDate", [], True),
    "dcapqvl-tdx-v5-nomatch": ("nomatch", None, [], True),
    # 39 bytes that are not zero padding follow the quote: cvm quote verify
    # reports the quote proper "for the record"; the service rejects it as
    # it stands, before any collateral is looked up
    "gotdxguest-tdx-v4-spr-nomatch": ("malformed", None, [], True),
    "dcapqvl-sgx-v3-confswhardening": ("ok", "ConfigurationAndSWHardeningNeeded", ["INTEL-SA-00289", "INTEL-SA-00615"], True),
    "dcapqvl-sgx-v3-2023collateral": ("ok", "ConfigurationAndSWHardeningNeeded", ["INTEL-SA-00289", "INTEL-SA-00615"], True),
    "zkdcap-sgx-v3-swhardening": ("ok", "SWHardeningNeeded", ["INTEL-SA-00334", "INTEL-SA-00615"], True),
    "trustee-occlum-sgx-v3-0825": ("ok", "OutOfDate", ["INTEL-SA-00586", "INTEL-SA-00614", "INTEL-SA-00615",
        "INTEL-SA-00657", "INTEL-SA-00730", "INTEL-SA-00738", "INTEL-SA-00767", "INTEL-SA-00828",
        "INTEL-SA-00837", "INTEL-SA-00960"], True),
    "trustee-occlum-sgx-v3-tcbinfov2": ("v2", None, [], None),
}
if kind == "snp":
    verdict, status, advisories, strict_rejects = "ok", None, [], None
elif name in table:
    verdict, status, advisories, strict_rejects = table[name]
else:
    print(f"note: {name} is not in the table; checking only that it gives a verdict")
    verdict, status, advisories, strict_rejects = "unknown", None, [], None
key = "report" if kind == "snp" else "quote"
req = {key: evidence.hex(), "policy": permissive}
if kind == "snp":
    req["product"] = exp.get("product", "Milan")
# a VLEK-signed report comes with its VLEK (no KDS serves it by chip)
vlek = None
if kind == "snp" and os.path.exists(os.path.join(d, "vlek.der")):
    vlek = open(os.path.join(d, "vlek.der"), "rb").read()
    req["vlek"] = vlek.hex()
s, b = post(json.dumps(req).encode(), "application/json")
check(s == 200, f"{name}: status {s}: {b[:300]!r}")
if s == 200:
    a = json.loads(b)
    if verdict == "ok":
        check(a["ok"] is True, f"{name}: rejected: {a.get('reason')}")
        check(a["tcb_status"] == status, f"{name}: tcb_status {a['tcb_status']}, expected {status}")
        check(sorted(a["advisory_ids"]) == sorted(advisories), f"{name}: advisories {a['advisory_ids']}")
        check(a.get("reason") is None, f"{name}: accepted with a reason")
        check(all(st["ok"] for st in a["steps"]), f"{name}: accepted with a failed step")
        check(len(a["measurements"].get("report_data", "")) == 128, f"{name}: no report_data measured")
    elif verdict == "nomatch":
        check(a["ok"] is False and a["tcb_status"] is None, f"{name}: {a['ok']} {a['tcb_status']}")
        check(any(not st["ok"] and "TCB level" in st["detail"] for st in a["steps"]),
              f"{name}: no failed step names the TCB level")
    elif verdict == "malformed":
        check(a["ok"] is False and a["tcb_status"] is None, f"{name}: {a['ok']} {a['tcb_status']}")
        check("parse" in (a.get("reason") or "") or "follow" in (a.get("reason") or ""),
              f"{name}: the reason does not say the quote does not parse: {a.get('reason')}")
    else:
        check(a["ok"] is True or a.get("reason"), f"{name}: neither accepted nor a reason")
    if a["ok"] is False:
        check(isinstance(a.get("reason"), str) and a["reason"] != "", f"{name}: a rejection without a reason")
        check(not all(st["ok"] for st in a["steps"]), f"{name}: rejected without a failed step")
    check(a["tee"] == kind, f"{name}: tee {a['tee']!r}")
    check(isinstance(a["trust_anchor"], str) and a["trust_anchor"] != "", f"{name}: no trust anchor")
    check(isinstance(a["steps"], list) and len(a["steps"]) > 0, f"{name}: no steps")
    col = a["collateral"]
    if verdict != "malformed":
        check(col["source"] == "cache", f"{name}: collateral source {col['source']!r}")
        check(col["stale"] is False and col["expires"] > man["verify_at_unix"], f"{name}: collateral {col}")
    if vlek is not None:
        # a VLEK whose signature was flipped: the chain does not hold
        bad = dict(req, vlek=(vlek[:-1] + bytes([vlek[-1] ^ 1])).hex())
        s3, b3 = post(json.dumps(bad).encode(), "application/json")
        check(s3 == 200 and json.loads(b3)["ok"] is False, f"{name}: a flipped VLEK: {s3} {b3[:300]!r}")
    # the raw form, with the default (strict) policy
    s2, b2 = post(evidence, "application/octet-stream", f"?product={req['product']}" if kind == "snp" else "")
    if vlek is not None:
        # no way to send the VLEK with a raw body: a 503 that says how
        check(s2 == 503 and b'\\"vlek\\"' in b2, f"{name}: raw VLEK-signed report: {s2} {b2[:300]!r}")
    else:
        check(s2 == 200, f"{name}: raw: status {s2}: {b2[:300]!r}")
    if s2 == 200:
        r = json.loads(b2)
        check(r["tee"] == a["tee"] and r["trust_anchor"] == a["trust_anchor"], f"{name}: raw and JSON disagree")
        check(r["tcb_status"] == a["tcb_status"], f"{name}: the policy changed the TCB status")
        if verdict == "nomatch":
            check(r["ok"] is False, f"{name}: the strict policy accepted a quote without a TCB level")
        if strict_rejects is True:
            check(r["ok"] is False, f"{name}: the strict policy accepted it")
        if strict_rejects is False:
            check(r["ok"] is True, f"{name}: the strict policy rejected it: {r.get('reason')}")
# whether the evidence got as far as a collateral lookup (a cache hit)
with open(marker, "w") as f:
    f.write("0" if verdict == "malformed" else "1")
for f in fails:
    print("FAIL: " + f)
sys.exit(1 if fails else 0)
PY

fails=0
n=0
for d in "${dcap[@]}" "${snp[@]}"; do
	name="$(vector_name "$d")"
	kind="${name%%/*}"
	at="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at_unix"])' "$d/manifest.json")"
	cache="$tmp/cache-${name//\//-}"
	if ! "$bin/cvm-verifierd" --cache "$cache" --at "$at" --import "$d" >"$tmp/import.out" 2>&1; then
		cat "$tmp/import.out"
		echo "FAIL: $name: --import of the vector's collateral failed"
		fails=$((fails + 1))
		continue
	fi
	if ! vd_start "$tmp/vd.log" 2 --cache "$cache" --at "$at"; then
		echo "FAIL: $name: the daemon did not start"
		fails=$((fails + 1))
		continue
	fi
	port="$VD_PORT"
	if ! python3 "$tmp/check.py" "$port" "$d" "$kind" "$tmp/lookup"; then
		echo "  ($name)"
		fails=$((fails + 1))
	fi
	metrics="$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
		"http://127.0.0.1:$port/metrics")"
	verdicts="$(printf '%s\n' "$metrics" | sed -n 's/^cvm_verifierd_verifications_total{api="cvmkit",result="\(ok\|rejected\)"} \([0-9]*\)$/\2/p' |
		awk '{ s += $1 } END { print s + 0 }')"
	if [ "${verdicts:-0}" -ne 2 ]; then
		echo "FAIL: $name: metrics count ${verdicts:-0} cvmkit verdicts, expected 2"
		fails=$((fails + 1))
	fi
	if [ "$(cat "$tmp/lookup" 2>/dev/null)" = 1 ] && ! printf '%s\n' "$metrics" | grep -Eq '^cvm_verifierd_collateral_total\{kind="(dcap|amd)",source="hit"\} [1-9]'; then
		echo "FAIL: $name: metrics count no cache hit"
		fails=$((fails + 1))
	fi
	vd_stop
	# a worker that a sanitizer aborted is restarted: its report is in the log
	if grep -Eq "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$tmp/vd.log"; then
		grep -E -A20 "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$tmp/vd.log" | head -40
		echo "FAIL: $name: a sanitizer reported an error in the daemon"
		fails=$((fails + 1))
	fi
	n=$((n + 1))
done
if [ "$fails" -ne 0 ]; then
	echo "verifierd_cvmkit: $fails failure(s)"
	exit 1
fi
echo "verifierd_cvmkit: $n vectors ok"
