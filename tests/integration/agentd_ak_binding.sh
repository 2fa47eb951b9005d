#!/usr/bin/env bash
# The TPM binding of cvm-agentd's evidence against a compromised container
# (issue 9, finding 2). The attacker talks to the agent's unix socket only,
# as another uid (65534 when this script runs as root): it starts its own
# swtpm, makes an AK there with tpm2-tools, extends a made-up IMA list into
# that TPM's PCR 10, asks the agent's GetQuote for report_data =
# cvm_evidence_report_data(nonce, its AK's Name), quotes its own PCRs for the
# nonce and assembles a bundle in GetEvidence's format. `cvm evidence verify
# --require-tpm --require-ima` must reject it:
#  - TDX (simulated): the AK is not the one the system recorded in RTMR3
#    (the agent records a cvmkit.tpm-ak event at start, before it serves);
#  - SEV-SNP (simulated, no runtime register): the report's report_data is
#    not the binding, since the agent hashes a GetQuote caller's data in its
#    caller domain unless the caller's uid may ask for raw report data.
# The agent's own GetEvidence bundle (the system swtpm, an IMA list extended
# into its PCR 10) verifies on both platforms. Also: EmitEvent refuses the
# system's names; restarts record nothing twice; a replaced identity key
# stops the agent; a changed AK, or a TPM configured only after an app
# event, gets no TPM quote served; on SNP, who gets raw report data
# (GetQuote, Tappd) follows raw_report_data_uids.
# Needs swtpm (else skipped, exit 77), tpm2-tools, curl and python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"

if ! command -v swtpm >/dev/null 2>&1; then
	echo "agentd_ak_binding: SKIP: swtpm is not installed (scripts/setup.sh installs swtpm and tpm2-tools)"
	exit 77
fi
for t in tpm2_createek tpm2_createak tpm2_flushcontext tpm2_quote tpm2_pcrread tpm2_pcrextend tpm2_evictcontrol curl python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "agentd_ak_binding: FAIL: $t is missing (scripts/setup.sh installs it)"; exit 1; }
done
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "agentd_ak_binding: FAIL: $bin/$t is missing (build it first)"; exit 1; }
done
bin="$(cd "$bin" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-agentd-ak.XXXXXX")"
# The attacker's uid must reach the socket inside.
chmod 0711 "$tmp"
# shellcheck source=tests/common/swtpm.sh
. "$SRC/tests/common/swtpm.sh"
pid=""
sys_tpm_pid=""
atk_tpm_pid=""
stop_agent() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=""
}
cleanup() {
	stop_agent
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
	ATTACKER_UID=65534
	as_attacker() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
else
	ATTACKER_UID="$(id -u)"
	as_attacker() { "$@"; }
	printf '[agent]\nraw_report_data_uids = 0\n' >"$agent_conf"
fi
echo "attacker uid $ATTACKER_UID"

# ---- the system's TPM and IMA list ------------------------------------------
# ima_list OUT NAME...: writes an ima-ng list (PCR 10, SHA-256 file digests
# of the names) and prints each entry's SHA-256 bank extension, so this
# script computes what IMA would extend without cvmkit's IMA code.
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

swtpm_start "$tmp/systpm" || { echo "agentd_ak_binding: FAIL: the system swtpm did not start"; exit 1; }
sys_tpm_pid="$SWTPM_PID"
SYS_TCTI="$SWTPM_TCTI"
export TSS2_LOG=all+none
mapfile -t sysd < <(ima_list "$tmp/ima.bin" boot_aggregate /usr/sbin/init /usr/bin/cvm-agentd)
TPM2TOOLS_TCTI="$SYS_TCTI" extend10 "${sysd[@]}" || { echo "agentd_ak_binding: FAIL: tpm2_pcrextend"; exit 1; }

"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "agentd_ak_binding: FAIL: cvm sim init"; exit 1; }

# ---- helpers ------------------------------------------------------------------
start_agent() { # start_agent LOG ARGS...: waits for the socket
	local log="$1" i
	shift
	rm -f "$tmp/d.sock"
	"$bin/cvm-agentd" -c "$agent_conf" --simulator "$tmp/sim" --listen "unix:$tmp/d.sock" "$@" >"$log" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		[ -S "$tmp/d.sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log" >&2
	echo "agentd_ak_binding: FAIL: the agent did not start" >&2
	exit 1
}

# call METHOD JSON OUT: as the attacker; prints the HTTP status, body to OUT.
call() {
	as_attacker curl -s --max-time 30 --unix-socket "$tmp/d.sock" -w '%{http_code}' \
		-H 'Content-Type: application/json' -d "$2" "http://localhost/$1" >"$tmp/call.out"
	python3 - "$tmp/call.out" "$3" <<'EOF'
import sys
raw = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(raw[:-3])
print(raw[-3:].decode())
EOF
}

# verify BUNDLE NONCE COLLATERAL ROOT [ARGS...]: output in $tmp/out.
verify() {
	local b="$1" n="$2" c="$3" r="$4"
	shift 4
	"$bin/cvm" evidence verify "$b" --nonce "$n" --collateral "$c" --root "$r" "$@" >"$tmp/out" 2>&1
}

# reason prints the JSON verdict's reason and first failed step.
reason() {
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
failed = [s["name"] for s in j["steps"] if not s["ok"]]
print(j["verdict"], failed[0] if failed else "-", j.get("reason") or "")' "$tmp/out"
}

# forge PLATFORM NONCE OUT: the compromised container's bundle.
forge() {
	local platform="$1" nonce="$2" out="$3" a="$tmp/attacker" st ver
	rm -rf "$a"
	mkdir -p "$a"
	# What format does the agent speak? Any caller may ask.
	st="$(call GetEvidence '{"nonce":"0101010101010101"}' "$a/probe.json")"
	[ "$st" = 200 ] || { fail "$platform: the attacker's GetEvidence probe: HTTP $st"; return 1; }
	ver="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$a/probe.json")"
	# Its own TPM, AK and PCR 10.
	SWTPM_PID=""
	swtpm_start "$a/tpm" || { fail "$platform: the attacker's swtpm did not start"; return 1; }
	atk_tpm_pid="$SWTPM_PID"
	export TPM2TOOLS_TCTI="$SWTPM_TCTI"
	# (swtpm has no resource manager: transient objects are flushed by hand)
	tpm2_createek -c "$a/ek.ctx" -G ecc -u "$a/ek.pub" >/dev/null && tpm2_flushcontext -t &&
		tpm2_createak -C "$a/ek.ctx" -c "$a/ak.ctx" -G ecc -g sha256 -s ecdsa -u "$a/ak.pub" -n "$a/ak.name" \
			>/dev/null && tpm2_flushcontext -t && tpm2_flushcontext -s ||
		{ fail "$platform: tpm2_createak"; return 1; }
	mapfile -t fake < <(ima_list "$a/ima.bin" boot_aggregate /usr/bin/innocent /usr/bin/also-innocent)
	extend10 "${fake[@]}" || { fail "$platform: the attacker's tpm2_pcrextend"; return 1; }
	python3 - "$ver" "$nonce" "$a/ak.name" "$a" <<'EOF'
import hashlib, sys
ver, nonce, name, a = sys.argv[1], bytes.fromhex(sys.argv[2]), open(sys.argv[3], "rb").read(), sys.argv[4]
rd = hashlib.sha512(b"cvmkit-evidence-v%s/report-data\0" % ver.encode() + bytes([len(nonce)]) + nonce +
                    len(name).to_bytes(2, "big") + name).hexdigest()
qd = hashlib.sha256(b"cvmkit-evidence-v%s/tpm-qualifying-data\0" % ver.encode() + bytes([len(nonce)]) +
                    nonce).hexdigest()
open(a + "/rd", "w").write(rd)
open(a + "/qd", "w").write(qd)
EOF
	tpm2_quote -c "$a/ak.ctx" -l sha256:0,1,2,3,4,5,6,7,8,9,10 -q "$(cat "$a/qd")" -m "$a/quote.msg" -s "$a/quote.sig" \
		-g sha256 >/dev/null || { fail "$platform: tpm2_quote"; return 1; }
	tpm2_pcrread sha256:0,1,2,3,4,5,6,7,8,9,10 >"$a/pcrs.txt" || { fail "$platform: tpm2_pcrread"; return 1; }
	unset TPM2TOOLS_TCTI
	# The TEE part: a GetQuote over the binding it computed.
	st="$(call GetQuote "{\"report_data\":\"$(cat "$a/rd")\"}" "$a/quote.json")"
	[ "$st" = 200 ] || { fail "$platform: the attacker's GetQuote: HTTP $st"; return 1; }
	python3 - "$a" "$platform" "$ver" "$nonce" "$out" <<'EOF'
import json, re, sys
a, platform, ver, nonce, out = sys.argv[1:]
h = lambda f: open(a + "/" + f, "rb").read().hex()
q = json.load(open(a + "/quote.json"))
pcrs = {}
for line in open(a + "/pcrs.txt"):
    m = re.match(r"\s+(\d+)\s*:\s*0x([0-9A-Fa-f]+)", line)
    if m:
        pcrs[m.group(1)] = m.group(2).lower()
assert len(pcrs) == 11, pcrs
bundle = {
    "version": int(ver), "platform": platform, "simulated": True, "nonce": nonce,
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

N1=00112233445566778899aabbccddeeff
N2=a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5

# run_platform PLATFORM COLLATERAL ROOT: the legitimate bundle and the forgery.
run_platform() {
	local platform="$1" coll="$2" root="$3" st why
	# The agent's own bundle: its TPM, its IMA list.
	st="$(call GetEvidence "{\"nonce\":\"$N1\"}" "$tmp/legit-$platform.json")"
	[ "$st" = 200 ] && pass || { fail "$platform: GetEvidence: HTTP $st"; cat "$tmp/legit-$platform.json" >&2; }
	if verify "$tmp/legit-$platform.json" "$N1" "$coll" "$root" --require-tpm --require-ima; then
		pass
	else
		fail "$platform: the agent's own bundle does not verify"
		cat "$tmp/out" >&2
	fi
	grep -q "^verdict: accepted (.*TPM quote bound, IMA list covered)" "$tmp/out" && pass ||
		fail "$platform: the verdict does not say TPM bound and IMA covered"

	# The compromised container's bundle.
	forge "$platform" "$N2" "$tmp/forged-$platform.json" || return
	rc=0
	verify "$tmp/forged-$platform.json" "$N2" "$coll" "$root" --require-tpm --require-ima --json || rc=$?
	why="$(reason)"
	echo "$platform forged bundle: exit $rc: $why"
	if [ "$rc" -eq 0 ]; then
		fail "$platform: the forged bundle (attacker's swtpm, made-up PCRs and IMA list) was ACCEPTED"
	elif [ "$rc" -ne 3 ]; then
		fail "$platform: the forged bundle: exit $rc, expected 3 (rejected)"
		cat "$tmp/out" >&2
	else
		pass
		case "$platform" in
		tdx) [[ "$why" == *"not the one the system recorded"* ]] && pass ||
			fail "tdx: the rejection does not say the AK is not the one the system recorded: $why" ;;
		snp) [[ "$why" == "rejected evidence.binding "* ]] && pass ||
			fail "snp: the forgery is not rejected at the binding: $why" ;;
		esac
	fi
}

# count_events NAME: how many runtime events of that name the simulator's log holds.
count_events() {
	python3 -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["event"] == sys.argv[2]))' \
		"$tmp/sim/agent/runtime_events.log" "$1"
}
TDX_COLL="$tmp/sim/collateral/tdx"
TDX_ROOT="$TDX_COLL/intel_sgx_root_ca.der"

# ---- TDX ----------------------------------------------------------------------
start_agent "$tmp/agent-tdx.log" --tpm "$SYS_TCTI" --ima "$tmp/ima.bin"
grep -q 'event=system_event name=cvmkit.agent-key recorded=yes index=7' "$tmp/agent-tdx.log" && pass ||
	fail "no cvmkit.agent-key event recorded at start after the 7 boot events"
grep -q 'event=system_event name=cvmkit.tpm-ak recorded=yes index=8' "$tmp/agent-tdx.log" && pass ||
	fail "no cvmkit.tpm-ak event recorded at start"
run_platform tdx "$TDX_COLL" "$TDX_ROOT"

# The reserved namespace and dstack's boot names, on both dstack paths, any case.
for ev in cvmkit.tpm-ak CVMKIT.Agent-Key cvmkit.anything system-ready; do
	for path in EmitEvent v0/EmitEvent; do
		st="$(call "$path" "{\"event\":\"$ev\",\"payload\":\"00\"}" "$tmp/e.json")"
		[ "$st" = 400 ] && grep -q 'reserved' "$tmp/e.json" && pass ||
			{ fail "EmitEvent $ev on /$path: HTTP $st, expected 400 'reserved'"; cat "$tmp/e.json" >&2; }
	done
done
st="$(call EmitEvent '{"event":"cvmkit.tpm-ak","payload":"00"}' "$tmp/e.json")"
grep -q "event names starting with 'cvmkit.' are reserved for the system" "$tmp/e.json" && pass ||
	{ fail "the refusal does not name the reserved namespace"; cat "$tmp/e.json" >&2; }
[ "$(count_events cvmkit.tpm-ak)" = 1 ] && pass || fail "the log holds $(count_events cvmkit.tpm-ak) AK events"

# On TDX a caller's report_data stays raw (dstack's clients rely on it).
st="$(call GetQuote '{"report_data":"68656c6c6f"}' "$tmp/q.json")"
python3 -c '
import json, sys
q = json.load(open(sys.argv[1]))
want = b"hello".hex() + "00" * 59
sys.exit(0 if q["report_data"] == want and bytes.fromhex(q["quote"])[568:632].hex() == want else 1)' \
	"$tmp/q.json" && pass || fail "tdx: GetQuote's report_data is not the caller's (HTTP $st)"

# An app event, then a restart: the log keeps one AK event, nothing is
# recorded again, and the agent's bundle still verifies.
st="$(call EmitEvent '{"event":"app-started","payload":"01"}' "$tmp/e.json")"
[ "$st" = 200 ] && pass || fail "EmitEvent app-started: HTTP $st"
stop_agent
start_agent "$tmp/agent-tdx2.log" --tpm "$SYS_TCTI" --ima "$tmp/ima.bin"
grep -q 'event=system_event name=cvmkit.tpm-ak recorded=earlier index=8' "$tmp/agent-tdx2.log" && pass ||
	fail "after a restart the agent does not find its AK event"
grep -q 'event=system_event name=cvmkit.agent-key recorded=earlier index=7' "$tmp/agent-tdx2.log" && pass ||
	fail "after a restart the agent does not find its identity key event"
[ "$(count_events cvmkit.tpm-ak)" = 1 ] && [ "$(count_events cvmkit.agent-key)" = 1 ] && pass ||
	fail "a restart recorded a second system event"
st="$(call GetEvidence "{\"nonce\":\"$N2\"}" "$tmp/b.json")"
[ "$st" = 200 ] && verify "$tmp/b.json" "$N2" "$TDX_COLL" "$TDX_ROOT" --require-tpm --require-ima && pass ||
	{ fail "after a restart the agent's bundle does not verify (HTTP $st)"; cat "$tmp/out" >&2; }
grep -q 'evidence.ak_event: the AK is the one the system recorded in RTMR3 (cvmkit.tpm-ak event 8' "$tmp/out" &&
	pass || fail "the verdict does not show the recorded AK"
stop_agent

# The identity key file replaced: RTMR3 recorded another key, the agent
# refuses to start.
cp "$tmp/sim/agent/cvm-agentd-identity.pem" "$tmp/identity.save"
rm -f "$tmp/sim/agent/cvm-agentd-identity.pem"
rc=0
timeout 20 "$bin/cvm-agentd" -c "$agent_conf" --simulator "$tmp/sim" --listen "unix:$tmp/x.sock" \
	>"$tmp/agent-key.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q 'RTMR3 recorded another identity key for the agent' "$tmp/agent-key.log" && pass ||
	{ fail "a replaced identity key: exit $rc, expected 1 naming RTMR3's key"; cat "$tmp/agent-key.log" >&2; }
cp "$tmp/identity.save" "$tmp/sim/agent/cvm-agentd-identity.pem"

# Another AK at the handle after a restart: the agent makes a new one, sees
# that RTMR3 recorded the old one and serves no TPM quote (fail closed).
TPM2TOOLS_TCTI="$SYS_TCTI" tpm2_evictcontrol -C o -c 0x81000100 >/dev/null ||
	fail "tpm2_evictcontrol of the AK"
start_agent "$tmp/agent-tdx3.log" --tpm "$SYS_TCTI" --ima "$tmp/ima.bin"
grep -q 'event=tpm_ready .*ak_created=yes' "$tmp/agent-tdx3.log" && pass || fail "no new AK was made"
grep -q 'event=ak_mismatch' "$tmp/agent-tdx3.log" && pass || fail "no ak_mismatch line for a changed AK"
[ "$(count_events cvmkit.tpm-ak)" = 1 ] && pass || fail "a changed AK was recorded a second time"
st="$(call GetEvidence "{\"nonce\":\"$N2\"}" "$tmp/e.json")"
[ "$st" = 500 ] && grep -q 'is not the one RTMR3 recorded in this boot' "$tmp/e.json" && pass ||
	{ fail "changed AK: HTTP $st, expected 500 naming the recorded AK"; cat "$tmp/e.json" >&2; }
stop_agent

# A TPM configured only after an app emitted: too late to record it.
"$bin/cvm" sim init "$tmp/sim2" >/dev/null || fail "cvm sim init sim2"
start_agent "$tmp/agent-late.log" --simulator "$tmp/sim2"
st="$(call EmitEvent '{"event":"app-started","payload":"01"}' "$tmp/e.json")"
[ "$st" = 200 ] && pass || fail "sim2: EmitEvent: HTTP $st"
stop_agent
start_agent "$tmp/agent-late2.log" --simulator "$tmp/sim2" --tpm "$SYS_TCTI" --ima "$tmp/ima.bin"
grep -q 'event=ak_unrecorded' "$tmp/agent-late2.log" && pass || fail "no ak_unrecorded line"
st="$(call GetEvidence "{\"nonce\":\"$N2\"}" "$tmp/e.json")"
[ "$st" = 500 ] && grep -q 'app events already follow' "$tmp/e.json" && pass ||
	{ fail "late TPM: HTTP $st, expected 500 saying app events came first"; cat "$tmp/e.json" >&2; }
stop_agent

# A TPM unreachable at start: no AK recorded, and the agent says why.
"$bin/cvm" sim init "$tmp/sim3" >/dev/null || fail "cvm sim init sim3"
start_agent "$tmp/agent-dead.log" --simulator "$tmp/sim3" --tpm "swtpm:host=127.0.0.1,port=$(swtpm_free_port)"
grep -q 'event=ak_unrecorded reason=".*unreachable when the agent started' "$tmp/agent-dead.log" && pass ||
	fail "no ak_unrecorded line for a TPM unreachable at start"
stop_agent
# A first start on a log that already holds an app event (an agent
# upgraded within a boot): the identity key can no longer be anchored; the
# agent says so and keeps serving.
"$bin/cvm" sim init "$tmp/sim4" >/dev/null || fail "cvm sim init sim4"
printf '{"event":"app-started","payload":"AQ=="}\n' >"$tmp/rt4.log"
chmod 0600 "$tmp/rt4.log"
start_agent "$tmp/agent-unanchored.log" --simulator "$tmp/sim4" --runtime-log "$tmp/rt4.log"
grep -q 'event=identity_unanchored name=cvmkit.agent-key reason="app events already follow' \
	"$tmp/agent-unanchored.log" && pass || fail "no identity_unanchored line"
st="$(call Version '{}' "$tmp/v.json")"
[ "$st" = 200 ] && pass || fail "the agent with an unanchored key does not serve (HTTP $st)"
stop_agent

# ---- SEV-SNP --------------------------------------------------------------------
# (its own runtime log: the TDX agent above filled the simulator's default one)
SNP_COLL="$tmp/sim/collateral/snp"
SNP_ROOT="$SNP_COLL/ark.pem"
snp_agent() { # snp_agent LOG [ARGS...]
	local log="$1"
	shift
	start_agent "$log" --platform snp --runtime-log "$tmp/snp-runtime.log" --tpm "$SYS_TCTI" \
		--ima "$tmp/ima.bin" "$@"
}
snp_agent "$tmp/agent-snp.log"
run_platform snp "$SNP_COLL" "$SNP_ROOT"

# What each caller gets: raw report data for root and the agent's uid (the
# default), SHA-512(label || 0x00 || data) for everyone else. snp_rd JSON
# WANT: the reply's report_data and the report's REPORT_DATA (offset 0x50)
# are WANT ("raw" or "hashed") of "hello" zero-padded.
snp_rd() {
	python3 - "$1" "$2" <<'PY'
import hashlib, json, sys
q = json.load(open(sys.argv[1]))
raw = b"hello" + bytes(59)
want = raw if sys.argv[2] == "raw" else hashlib.sha512(b"cvmkit-agent-v1/caller-report-data\0" + raw).digest()
rep = bytes.fromhex(q["quote"])
sys.exit(0 if q["report_data"] == want.hex() and rep[0x50:0x90] == want else 1)
PY
}
st="$(call GetQuote '{"report_data":"68656c6c6f"}' "$tmp/q.json")"
snp_rd "$tmp/q.json" hashed && pass || fail "snp: uid $ATTACKER_UID got raw report data (HTTP $st)"
if [ "$(id -u)" -eq 0 ]; then
	curl -s --unix-socket "$tmp/d.sock" -d '{"report_data":"68656c6c6f"}' http://localhost/GetQuote >"$tmp/q0.json"
	snp_rd "$tmp/q0.json" raw && pass || fail "snp: root did not get raw report data"
else
	echo "agentd_ak_binding: not root: root's raw report data is not checked (this script has one uid)"
fi
stop_agent
# Tappd's quotes follow the same rule.
snp_agent "$tmp/agent-snp2.log" --tappd "unix:$tmp/t.sock"
as_attacker curl -s --unix-socket "$tmp/t.sock" -d '{"report_data":"'"$(printf 'ab%.0s' $(seq 64))"'"}' \
	http://localhost/prpc/Tappd.RawQuote >"$tmp/tq.json"
python3 - "$tmp/tq.json" <<'PY' && pass || fail "snp: Tappd.RawQuote gave a caller raw report data"
import hashlib, json, sys
q = json.load(open(sys.argv[1]))
want = hashlib.sha512(b"cvmkit-agent-v1/caller-report-data\0" + b"\xab" * 64).digest()
sys.exit(0 if bytes.fromhex(q["quote"])[0x50:0x90] == want else 1)
PY
stop_agent
# An operator who allows the attacker's uid raw report data trusts it: its
# forgery then verifies (docs/threat-model.md says so).
if [ "$(id -u)" -eq 0 ]; then
	printf '[agent]\nraw_report_data_uids = 0, %s\n' "$ATTACKER_UID" >"$tmp/allow.conf"
	snp_agent "$tmp/agent-snp3.log" -c "$tmp/allow.conf"
	forge snp "$N2" "$tmp/forged-allowed.json" &&
		verify "$tmp/forged-allowed.json" "$N2" "$SNP_COLL" "$SNP_ROOT" --require-tpm --require-ima && pass ||
		fail "snp: a uid allowed raw report data could not bind its own AK (the config is not applied)"
	stop_agent
fi

echo "agentd_ak_binding: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
