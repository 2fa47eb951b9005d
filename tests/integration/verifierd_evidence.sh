#!/usr/bin/env bash
# POST /cvmkit/v1/verify on cvmkit evidence bundles (cvm-agentd's GetEvidence
# over the simulated TEE), through cvm-verifierd with the simulator's roots
# configured as the anchors ([trust] intel_root, amd_root) and the
# simulator's collateral imported into its cache (--import):
#  - the agent's own bundles (TDX and SEV-SNP, without a TPM) are accepted,
#    the answer names the tee, TCB status, measurements, the configured
#    anchor, the collateral (source "cache") and the bundle's results
#    (bound, event log replayed, simulated);
#  - rejected (200, ok false, the reason): another nonce, the bundle's nonce
#    field rewritten to it, a flipped quote byte, a policy that expects
#    other measurements, require_tpm on a bundle without a TPM quote, a
#    bundle that does not parse;
#  - 400 for a request without a nonce, a nonce too short, too long or not
#    hex, a nonce with a bare quote, an "evidence" that is no object, a
#    require_ima that is no bool;
#    503 from a daemon whose cache holds no collateral and has no upstream;
#  - with swtpm (else this part is SKIPPED and the test counts as skipped):
#    the agent's bundle with a TPM quote and an IMA list, required, is
#    accepted on both platforms (TPM verified, AK recorded on TDX, IMA
#    entries covered, PCRs shown); the in-guest attacker of
#    tests/integration/agentd_ak_binding.sh (its own swtpm and AK, the
#    agent's GetQuote over the binding it computed) is rejected: on TDX the
#    AK is not the one RTMR3 recorded, on SEV-SNP the binding fails.
# Needs curl and python3; swtpm and tpm2-tools for the TPM part.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
for t in curl python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "verifierd_evidence: FAIL: $t is missing (scripts/setup.sh installs it)"; exit 1; }
done
for t in cvm cvm-agentd cvm-verifierd; do
	[ -x "$bin/$t" ] || { echo "verifierd_evidence: FAIL: $bin/$t is missing (build it first)"; exit 1; }
done
bin="$(cd "$bin" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verifierd-evidence.XXXXXX")"
# The attacker's uid must reach the agent's socket inside.
chmod 0711 "$tmp"
# shellcheck source=tests/common/swtpm.sh
. "$SRC/tests/common/swtpm.sh"
pid=""
vpid=""
sys_tpm_pid=""
atk_tpm_pid=""
stop_agent() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=""
}
stop_verifier() {
	if [ -n "$vpid" ] && kill -0 "$vpid" 2>/dev/null; then
		kill -TERM "$vpid" 2>/dev/null || true
		wait "$vpid" 2>/dev/null || true
	fi
	vpid=""
}
cleanup() {
	stop_agent
	stop_verifier
	SWTPM_PID="$atk_tpm_pid"
	swtpm_stop
	SWTPM_PID="$sys_tpm_pid"
	swtpm_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }

# The attacker: another uid when we can switch (root), else this one, and
# then the agent is told that only root may ask for raw report data.
agent_conf="$tmp/agent.conf"
: >"$agent_conf"
if [ "$(id -u)" -eq 0 ]; then
	as_attacker() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
else
	as_attacker() { "$@"; }
	printf '[agent]\nraw_report_data_uids = 0\n' >"$agent_conf"
fi

"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "verifierd_evidence: FAIL: cvm sim init"; exit 1; }
TDX_COLL="$tmp/sim/collateral/tdx"
SNP_COLL="$tmp/sim/collateral/snp"
printf '[trust]\nintel_root = %s\namd_root = %s\n' "$TDX_COLL/intel_sgx_root_ca.der" "$SNP_COLL/ark.pem" \
	>"$tmp/vd.conf"

# ---- helpers ------------------------------------------------------------------
start_agent() { # start_agent LOG ARGS...: waits for the socket
	local log="$1"
	shift
	rm -f "$tmp/d.sock"
	"$bin/cvm-agentd" -c "$agent_conf" --simulator "$tmp/sim" --listen "unix:$tmp/d.sock" "$@" >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		[ -S "$tmp/d.sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log" >&2
	echo "verifierd_evidence: FAIL: the agent did not start" >&2
	exit 1
}

# call METHOD JSON OUT: the agent, as the attacker; prints the HTTP status.
call() {
	as_attacker curl -s --max-time 30 --unix-socket "$tmp/d.sock" -w '%{http_code}' \
		-H 'Content-Type: application/json' -d "$2" "http://localhost/$1" >"$tmp/call.out"
	head -c -3 "$tmp/call.out" >"$3"
	tail -c 3 "$tmp/call.out"
}

# start_verifier CACHE LOG: two workers on a free port ($port).
start_verifier() {
	rm -f "$tmp/port"
	"$bin/cvm-verifierd" -c "$tmp/vd.conf" --listen 127.0.0.1:0 --port-file "$tmp/port" --workers 2 \
		--cache "$1" >"$2" 2>&1 &
	vpid=$!
	for _ in $(seq 100); do
		[ -s "$tmp/port" ] && [ "$(grep -c event=worker_start "$2")" -ge 2 ] && break
		kill -0 "$vpid" 2>/dev/null || break
		sleep 0.1
	done
	if ! kill -0 "$vpid" 2>/dev/null || [ ! -s "$tmp/port" ]; then
		cat "$2" >&2
		echo "verifierd_evidence: FAIL: the verifier did not start" >&2
		exit 1
	fi
	port="$(cat "$tmp/port")"
}

# post BUNDLE NONCE OUT [EXTRA]: POST {"evidence": BUNDLE, "nonce": NONCE}
# plus the JSON object text EXTRA's keys ("-": no nonce); prints the status.
post() {
	python3 - "$1" "$2" "${4:-"{}"}" >"$tmp/req.json" <<'EOF'
import json, sys
req = {"evidence": json.load(open(sys.argv[1]))}
if sys.argv[2] != "-":
    req["nonce"] = sys.argv[2]
req.update(json.loads(sys.argv[3]))
print(json.dumps(req))
EOF
	post_raw "$tmp/req.json" "$3"
}
post_raw() { # post_raw FILE OUT
	curl -s --max-time 60 -o "$2" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "@$1" "http://127.0.0.1:$port/cvmkit/v1/verify"
}

# answer OUT EXPR...: python expressions over the answer `a`, all true.
answer() {
	python3 - "$@" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))
bad = [e for e in sys.argv[2:] if not eval(e)]
for e in bad:
    print("  not true: " + e, file=sys.stderr)
if bad:
    print("  answer: " + json.dumps({k: a.get(k) for k in ("ok", "tee", "reason", "evidence", "error")}),
          file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

# rejected OUT STEP TEXT: ok false, the first failed step is STEP and the
# reason contains TEXT.
rejected() {
	answer "$1" 'a["ok"] is False' "[s[\"name\"] for s in a[\"steps\"] if not s[\"ok\"]][:1] == [\"$2\"]" \
		"\"$3\" in (a[\"reason\"] or \"\")"
}

# edit IN OUT PYTHON: a copy of a bundle `b` changed by the statement PYTHON.
edit() {
	python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(b, open(sys.argv[2], "w"))
EOF
}

N1=00112233445566778899aabbccddeeff
N2=a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5
ZERO48="$(printf '00%.0s' $(seq 48))"

# ---- the cache: the simulator's collateral, verified against its roots ----------
for c in "$TDX_COLL" "$SNP_COLL"; do
	"$bin/cvm-verifierd" -c "$tmp/vd.conf" --cache "$tmp/cache" --import "$c" >"$tmp/import.out" 2>&1 && pass ||
		{ fail "--import $c"; cat "$tmp/import.out" >&2; }
done

# ---- bundles without a TPM ------------------------------------------------------
start_agent "$tmp/agent-tdx.log"
st="$(call GetEvidence "{\"nonce\":\"$N1\"}" "$tmp/tdx.json")"
[ "$st" = 200 ] && pass || fail "tdx: GetEvidence: HTTP $st"
stop_agent
start_agent "$tmp/agent-snp.log" --platform snp --runtime-log "$tmp/snp-runtime.log"
st="$(call GetEvidence "{\"nonce\":\"$N1\"}" "$tmp/snp.json")"
[ "$st" = 200 ] && pass || fail "snp: GetEvidence: HTTP $st"
stop_agent

start_verifier "$tmp/cache" "$tmp/vd.log"

# The agent's own bundles.
st="$(post "$tmp/tdx.json" "$N1" "$tmp/a.json")"
[ "$st" = 200 ] && answer "$tmp/a.json" 'a["ok"] is True' 'a["reason"] is None' 'a["tee"] == "tdx"' \
	'a["tcb_status"] == "UpToDate"' 'a["advisory_ids"] == []' 'all(s["ok"] for s in a["steps"])' \
	"a[\"measurements\"][\"report_data\"].startswith(\"$N1\")" 'len(a["measurements"]["rtmr3"]) == 96' \
	'a["trust_anchor"].startswith("configured: ")' 'a["collateral"]["source"] == "cache"' \
	'a["collateral"]["stale"] is False' \
	'a["evidence"]["simulated"] is True and a["evidence"]["bound"] is True' \
	'a["evidence"]["tee_verified"] is True and a["evidence"]["rtmrs_replayed"] is True' \
	'a["evidence"]["event_count"] > 0 and a["evidence"]["tpm"] is None and a["evidence"]["ima"] is None' \
	'any(s["name"] == "evidence.event_log" and s["ok"] for s in a["steps"])' && pass ||
	fail "tdx: the agent's bundle (HTTP $st)"
st="$(post "$tmp/snp.json" "$N1" "$tmp/a.json")"
[ "$st" = 200 ] && answer "$tmp/a.json" 'a["ok"] is True' 'a["tee"] == "snp"' 'a["tcb_status"] is None' \
	"a[\"measurements\"][\"report_data\"].startswith(\"$N1\")" 'len(a["measurements"]["measurement"]) == 96' \
	'a["trust_anchor"].startswith("configured: ")' 'a["collateral"]["source"] == "cache"' \
	'a["evidence"]["simulated"] is True and a["evidence"]["bound"] is True' && pass ||
	fail "snp: the agent's bundle (HTTP $st)"

# Rejections: 200, ok false, the failed step and the reason.
for p in tdx snp; do
	st="$(post "$tmp/$p.json" "$N2" "$tmp/a.json")"
	[ "$st" = 200 ] && rejected "$tmp/a.json" evidence.nonce "another nonce" && pass ||
		fail "$p: a bundle for another nonce (HTTP $st)"
	# the attacker rewrites the bundle's nonce: the quote still binds N1
	edit "$tmp/$p.json" "$tmp/renonced.json" "b['nonce'] = '$N2'"
	st="$(post "$tmp/renonced.json" "$N2" "$tmp/a.json")"
	[ "$st" = 200 ] && rejected "$tmp/a.json" evidence.binding "" && pass ||
		fail "$p: a bundle whose nonce field was rewritten (HTTP $st)"
	st="$(post "$tmp/$p.json" "$N1" "$tmp/a.json" '{"require_tpm": true}')"
	[ "$st" = 200 ] && rejected "$tmp/a.json" tpm "required" && pass ||
		fail "$p: require_tpm on a bundle without a TPM quote (HTTP $st)"
done
# a flipped byte in the quote's signature
edit "$tmp/tdx.json" "$tmp/flipped.json" \
	"q = bytearray.fromhex(b['quote']); q[-200] ^= 1; b['quote'] = q.hex()"
st="$(post "$tmp/flipped.json" "$N1" "$tmp/a.json")"
[ "$st" = 200 ] && answer "$tmp/a.json" 'a["ok"] is False' 'a["reason"]' 'a["evidence"]["tee_verified"] is False' &&
	pass || fail "tdx: a bundle with a flipped quote byte (HTTP $st)"
# policies that expect other measurements
st="$(post "$tmp/tdx.json" "$N1" "$tmp/a.json" "{\"policy\": {\"tdx\": {\"rtmr0\": \"${ZERO48//00/11}\"}}}")"
[ "$st" = 200 ] && rejected "$tmp/a.json" policy.rtmr0 "" && pass ||
	fail "tdx: a policy expecting another RTMR0 (HTTP $st)"
st="$(post "$tmp/snp.json" "$N1" "$tmp/a.json" "{\"policy\": {\"snp\": {\"measurement\": \"$ZERO48\"}}}")"
[ "$st" = 200 ] && rejected "$tmp/a.json" policy.measurement "" && pass ||
	fail "snp: a policy expecting another measurement (HTTP $st)"
# a bundle that does not parse: rejected, not a request error
edit "$tmp/tdx.json" "$tmp/v1.json" "b['version'] = 1"
st="$(post "$tmp/v1.json" "$N1" "$tmp/a.json")"
[ "$st" = 200 ] && rejected "$tmp/a.json" evidence.parse "version 1" && pass ||
	fail "a version 1 bundle (HTTP $st)"

# Request errors: 400 with the reason.
st="$(post "$tmp/tdx.json" - "$tmp/a.json")"
[ "$st" = 400 ] && grep -q '"nonce\\" is required' "$tmp/a.json" && pass || fail "no nonce: HTTP $st"
for n in 0011 "$(printf 'ab%.0s' $(seq 65))" "${N1}0" "${N1%??}zz"; do
	st="$(post "$tmp/tdx.json" "$n" "$tmp/a.json")"
	[ "$st" = 400 ] && grep -q '8 to 64 bytes as hex' "$tmp/a.json" && pass || fail "nonce '$n': HTTP $st"
done
st="$(post "$tmp/tdx.json" "$N1" "$tmp/a.json" '{"require_ima": 1}')"
[ "$st" = 400 ] && grep -q 'true or false' "$tmp/a.json" && pass || fail "require_ima 1: HTTP $st"
st="$(post "$tmp/tdx.json" "$N1" "$tmp/a.json" '{"quote": "00"}')"
[ "$st" = 400 ] && grep -q 'exactly one' "$tmp/a.json" && pass || fail "evidence and quote: HTTP $st"
printf '{"evidence": [], "nonce": "%s"}' "$N1" >"$tmp/req.json"
st="$(post_raw "$tmp/req.json" "$tmp/a.json")"
[ "$st" = 400 ] && grep -q 'must be an object' "$tmp/a.json" && pass || fail "evidence []: HTTP $st"
python3 -c 'import json,sys; print(json.dumps({"quote": json.load(open(sys.argv[1]))["quote"], "nonce": sys.argv[2]}))' \
	"$tmp/tdx.json" "$N1" >"$tmp/req.json"
st="$(post_raw "$tmp/req.json" "$tmp/a.json")"
[ "$st" = 400 ] && grep -q 'go with \\"evidence\\" only' "$tmp/a.json" && pass || fail "a quote with a nonce: HTTP $st"

metrics="$(curl -s "http://127.0.0.1:$port/metrics")"
v="$(printf '%s\n' "$metrics" | sed -n 's/^cvm_verifierd_verifications_total{api="cvmkit",result="\(ok\|rejected\)"} \([0-9]*\)$/\2/p' |
	awk '{ s += $1 } END { print s + 0 }')"
[ "$v" -eq 12 ] && pass || fail "metrics count $v cvmkit verdicts, expected 12"
stop_verifier

# No collateral and no upstream: 503, never a rejection.
start_verifier "$tmp/empty-cache" "$tmp/vd-empty.log"
st="$(post "$tmp/tdx.json" "$N1" "$tmp/a.json")"
[ "$st" = 503 ] && grep -q 'cannot be had' "$tmp/a.json" && pass || fail "an empty cache: HTTP $st, expected 503"
stop_verifier

# ---- bundles with a TPM quote and an IMA list ------------------------------------
if ! command -v swtpm >/dev/null 2>&1; then
	echo "verifierd_evidence: $checks checks passed, $failures failed; the TPM part was NOT run"
	[ "$failures" -eq 0 ] || exit 1
	echo "verifierd_evidence: SKIP: swtpm is not installed (scripts/setup.sh installs swtpm and tpm2-tools)"
	exit 77
fi
for t in tpm2_createek tpm2_createak tpm2_flushcontext tpm2_quote tpm2_pcrread tpm2_pcrextend; do
	command -v "$t" >/dev/null 2>&1 || { echo "verifierd_evidence: FAIL: $t is missing (scripts/setup.sh installs it)"; exit 1; }
done

# ima_list OUT NAME...: writes an ima-ng list (PCR 10, SHA-256 file digests
# of the names) and prints each entry's SHA-256 bank extension.
ima_list() {
	python3 - "$@" <<'EOF'
import hashlib, struct, sys
out, names = sys.argv[1], sys.argv[2:]
blob = b""
for n in names:
    d = b"sha256:\0" + hashlib.sha256(n.encode()).digest()
    fn = n.encode() + b"\0"
    tdata = struct.pack("<I", len(d)) + d + struct.pack("<I", len(fn)) + fn
    blob += struct.pack("<I", 10) + hashlib.sha1(tdata).digest()
    blob += struct.pack("<I", 6) + b"ima-ng" + struct.pack("<I", len(tdata)) + tdata
    print(hashlib.sha256(tdata).hexdigest())
open(out, "wb").write(blob)
EOF
}
extend10() { # extend10 DIGEST...: into PCR 10 of $TPM2TOOLS_TCTI
	local args=() d
	for d in "$@"; do args+=("10:sha256=$d"); done
	tpm2_pcrextend "${args[@]}" >/dev/null
}

swtpm_start "$tmp/systpm" || { echo "verifierd_evidence: FAIL: the system swtpm did not start"; exit 1; }
sys_tpm_pid="$SWTPM_PID"
SYS_TCTI="$SWTPM_TCTI"
SWTPM_PID=""
export TSS2_LOG=all+none
mapfile -t sysd < <(ima_list "$tmp/ima.bin" boot_aggregate /usr/sbin/init /usr/bin/cvm-agentd)
TPM2TOOLS_TCTI="$SYS_TCTI" extend10 "${sysd[@]}" || { echo "verifierd_evidence: FAIL: tpm2_pcrextend"; exit 1; }

# forge PLATFORM NONCE OUT: the compromised container's bundle (as
# agentd_ak_binding.sh makes it): its own swtpm, AK and IMA list, and the
# agent's GetQuote over the binding of its AK.
forge() {
	local platform="$1" nonce="$2" out="$3" a="$tmp/attacker" st
	rm -rf "$a"
	mkdir -p "$a"
	swtpm_start "$a/tpm" || { fail "$platform: the attacker's swtpm did not start"; return 1; }
	atk_tpm_pid="$SWTPM_PID"
	SWTPM_PID=""
	export TPM2TOOLS_TCTI="$SWTPM_TCTI"
	# (swtpm has no resource manager: transient objects are flushed by hand)
	tpm2_createek -c "$a/ek.ctx" -G ecc -u "$a/ek.pub" >/dev/null && tpm2_flushcontext -t &&
		tpm2_createak -C "$a/ek.ctx" -c "$a/ak.ctx" -G ecc -g sha256 -s ecdsa -u "$a/ak.pub" -n "$a/ak.name" \
			>/dev/null && tpm2_flushcontext -t && tpm2_flushcontext -s ||
		{ fail "$platform: tpm2_createak"; return 1; }
	mapfile -t fake < <(ima_list "$a/ima.bin" boot_aggregate /usr/bin/innocent)
	extend10 "${fake[@]}" || { fail "$platform: the attacker's tpm2_pcrextend"; return 1; }
	python3 - "$nonce" "$a/ak.name" "$a" <<'EOF'
import hashlib, sys
nonce, name, a = bytes.fromhex(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
rd = hashlib.sha512(b"cvmkit-evidence-v2/report-data\0" + bytes([len(nonce)]) + nonce +
                    len(name).to_bytes(2, "big") + name).hexdigest()
qd = hashlib.sha256(b"cvmkit-evidence-v2/tpm-qualifying-data\0" + bytes([len(nonce)]) + nonce).hexdigest()
open(a + "/rd", "w").write(rd)
open(a + "/qd", "w").write(qd)
EOF
	tpm2_quote -c "$a/ak.ctx" -l sha256:0,1,2,3,4,5,6,7,8,9,10 -q "$(cat "$a/qd")" -m "$a/quote.msg" \
		-s "$a/quote.sig" -g sha256 >/dev/null || { fail "$platform: tpm2_quote"; return 1; }
	tpm2_pcrread sha256:0,1,2,3,4,5,6,7,8,9,10 >"$a/pcrs.txt" || { fail "$platform: tpm2_pcrread"; return 1; }
	unset TPM2TOOLS_TCTI
	st="$(call GetQuote "{\"report_data\":\"$(cat "$a/rd")\"}" "$a/quote.json")"
	[ "$st" = 200 ] || { fail "$platform: the attacker's GetQuote: HTTP $st"; return 1; }
	python3 - "$a" "$platform" "$nonce" "$out" <<'EOF'
import json, re, sys
a, platform, nonce, out = sys.argv[1:]
h = lambda f: open(a + "/" + f, "rb").read().hex()
q = json.load(open(a + "/quote.json"))
pcrs = {}
for line in open(a + "/pcrs.txt"):
    m = re.match(r"\s+(\d+)\s*:\s*0x([0-9A-Fa-f]+)", line)
    if m:
        pcrs[m.group(1)] = m.group(2).lower()
assert len(pcrs) == 11, pcrs
bundle = {
    "version": 2, "platform": platform, "simulated": True, "nonce": nonce,
    "report_data": q["report_data"], "quote": q["quote"], "snp_cert_table": None,
    "event_log": json.loads(q["event_log"]) if platform == "tdx" else [],
    "vm_config": q.get("vm_config", ""), "app_compose": "{}",
    "tpm": {"ak_handle": "0x81000100", "ak_public": h("ak.pub"), "ak_name": h("ak.name"),
            "qualifying_data": open(a + "/qd").read(), "pcr_selection": "sha256:0-10",
            "attest": h("quote.msg"), "signature": h("quote.sig"), "pcrs": {"sha256": pcrs}},
    "ima_log": h("ima.bin"),
}
json.dump(bundle, open(out, "w"))
EOF
	SWTPM_PID="$atk_tpm_pid"
	swtpm_stop
	atk_tpm_pid=""
}

# run_tpm PLATFORM FAILED_STEP REASON: the agent's bundle and the forgery.
run_tpm() {
	local platform="$1" st
	st="$(call GetEvidence "{\"nonce\":\"$N1\"}" "$tmp/legit-$platform.json")"
	[ "$st" = 200 ] && pass || { fail "$platform: GetEvidence with a TPM: HTTP $st"; return; }
	forge "$platform" "$N2" "$tmp/forged-$platform.json" || return
	start_verifier "$tmp/cache" "$tmp/vd-$platform.log"
	st="$(post "$tmp/legit-$platform.json" "$N1" "$tmp/a.json" '{"require_tpm": true, "require_ima": true}')"
	[ "$st" = 200 ] && answer "$tmp/a.json" 'a["ok"] is True' 'a["evidence"]["bound"] is True' \
		'a["evidence"]["tpm"]["verified"] is True' 'len(a["evidence"]["tpm"]["ak_name"]) == 68' \
		"a[\"evidence\"][\"tpm\"][\"ak_recorded\"] is $([ "$platform" = tdx ] && echo True || echo False)" \
		'a["evidence"]["tpm"]["pcr_selection"].startswith("sha256:")' \
		'len(a["evidence"]["tpm"]["pcrs"]["sha256"]["10"]) == 64' \
		'a["evidence"]["ima"]["verified"] is True and a["evidence"]["ima"]["bank"] == "sha256"' \
		'a["evidence"]["ima"]["quoted_entries"] == 3 and a["evidence"]["ima"]["total_entries"] == 3' && pass ||
		fail "$platform: the agent's bundle with a TPM quote and IMA list (HTTP $st)"
	st="$(post "$tmp/forged-$platform.json" "$N2" "$tmp/a.json" '{"require_tpm": true, "require_ima": true}')"
	echo "$platform forged bundle: HTTP $st: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("reason"))' "$tmp/a.json" 2>/dev/null)"
	[ "$st" = 200 ] && rejected "$tmp/a.json" "$2" "$3" &&
		answer "$tmp/a.json" 'a["evidence"]["tpm"]["pcrs"] is None' && pass ||
		fail "$platform: the in-guest attacker's bundle (its own swtpm and AK) was not rejected at $2"
	stop_verifier
}

start_agent "$tmp/agent-tdx-tpm.log" --tpm "$SYS_TCTI" --ima "$tmp/ima.bin"
run_tpm tdx evidence.ak_event "not the one the system recorded"
stop_agent
start_agent "$tmp/agent-snp-tpm.log" --platform snp --runtime-log "$tmp/snp-runtime2.log" --tpm "$SYS_TCTI" \
	--ima "$tmp/ima.bin"
run_tpm snp evidence.binding ""
stop_agent

for log in "$tmp"/vd*.log; do
	if grep -Eq "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$log"; then
		grep -E -A20 "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$log" | head -40
		fail "a sanitizer reported an error in the verifier ($log)"
	fi
done
echo "verifierd_evidence: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
