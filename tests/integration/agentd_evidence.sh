#!/usr/bin/env bash
# cvm-agentd's GetEvidence with a TPM and an IMA list, end to end:
#  - a swtpm (tests/common/swtpm.sh) whose PCR 10 holds the first 507 entries
#    of a real IMA list (tests/vectors/ima/vm-ovmf-tpmcrb-imang, 513
#    entries of a QEMU/OVMF/swtpm boot), replayed with tpm2_pcrextend;
#  - cvm-agentd --simulator with --tpm and --ima; GetEvidence over the unix
#    socket with curl;
#  - the bundle verified by `cvm evidence verify` (TDX quote against the
#    simulator's root, binding of nonce and AK Name in report_data, event log
#    against the RTMRs, TPM quote, IMA prefix), and the binding rules
#    recomputed here in Python from docs/daemons/cvm-agentd.md;
#  - rejected (exit 3): another nonce, a changed nonce field, a swapped AK
#    (alone, and with a genuine quote of that other AK for the same nonce), a
#    PCR value read after an extension, a bundle quoted after an unlogged PCR
#    10 extension, a changed IMA entry, a changed event, a removed TPM part,
#    an unquoted PCR value, a flipped quote byte;
#  - errors: an unreachable TPM and an unreadable IMA list give a 500 with the
#    reason and an event=evidence_failed log line, never a bundle; bad
#    tpm_pcrs values stop the agent at start.
# Needs swtpm (else skipped, exit 77), tpm2-tools, curl and python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
VEC="$SRC/tests/vectors"
IMA="$VEC/ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements"
QUOTED=507 # entries replayed into PCR 10 before the quote

if ! command -v swtpm >/dev/null 2>&1; then
	echo "agentd_evidence: SKIP: swtpm is not installed (scripts/setup.sh installs swtpm and tpm2-tools)"
	exit 77
fi
for t in tpm2_pcrextend tpm2_pcrread curl python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "agentd_evidence: FAIL: $t is missing (scripts/setup.sh installs it)"; exit 1; }
done
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "agentd_evidence: FAIL: $bin/$t is missing (build it first)"; exit 1; }
done
[ -r "$IMA" ] || { echo "agentd_evidence: FAIL: $IMA is missing (git checkout -- tests/vectors restores it)"; exit 1; }
bin="$(cd "$bin" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-agentd-evidence.XXXXXX")"
# shellcheck source=tests/common/swtpm.sh
. "$SRC/tests/common/swtpm.sh"
pid=""
stop_agent() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=""
}
cleanup() {
	stop_agent
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

swtpm_start "$tmp/state" || { echo "agentd_evidence: FAIL: swtpm did not start"; exit 1; }
export TPM2TOOLS_TCTI="$SWTPM_TCTI" TSS2_LOG=all+none
echo "swtpm on port $SWTPM_PORT (pid $SWTPM_PID)"

"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "agentd_evidence: FAIL: cvm sim init"; exit 1; }
COLL="$tmp/sim/collateral/tdx"
ROOT="$COLL/intel_sgx_root_ca.der"

# ima_digests LIST N prints the SHA-256 bank extension of the first N entries
# (the hash of each entry's template data; 0xff.. for a violation), so this
# script computes what the kernel extended without cvmkit's IMA code.
ima_digests() {
	python3 - "$1" "$2" <<'EOF'
import hashlib, struct, sys
d = open(sys.argv[1], "rb").read()
want, i, n = int(sys.argv[2]), 0, 0
while i < len(d) and n < want:
    _pcr, = struct.unpack_from("<I", d, i); i += 4
    tdig = d[i:i + 20]; i += 20
    nl, = struct.unpack_from("<I", d, i); i += 4 + nl
    dl, = struct.unpack_from("<I", d, i); i += 4
    data = d[i:i + dl]; i += dl
    print("ff" * 32 if tdig == bytes(20) else hashlib.sha256(data).hexdigest())
    n += 1
EOF
}

# Replay the quoted prefix into PCR 10, 64 extensions per tpm2_pcrextend.
mapfile -t digests < <(ima_digests "$IMA" "$QUOTED")
[ "${#digests[@]}" -eq "$QUOTED" ] || { echo "agentd_evidence: FAIL: read ${#digests[@]} IMA entries"; exit 1; }
want10="$(python3 -c '
import hashlib, sys
v = bytes(32)
for d in sys.stdin.read().split():
    v = hashlib.sha256(v + bytes.fromhex(d)).digest()
print(v.hex())' <<<"${digests[*]}")"
for ((i = 0; i < QUOTED; i += 64)); do
	args=()
	for d in "${digests[@]:i:64}"; do args+=("10:sha256=$d"); done
	tpm2_pcrextend "${args[@]}" >/dev/null || { echo "agentd_evidence: FAIL: tpm2_pcrextend"; exit 1; }
done
got10="$(tpm2_pcrread sha256:10 | awk '/10:/ {print tolower($2)}')"
[ "$got10" = "0x$want10" ] && pass || fail "PCR 10 after the replay is $got10, expected 0x$want10"

start_agent() { # start_agent LOG ARGS...: waits for the socket
	local log="$1" i
	shift
	rm -f "$tmp/d.sock"
	"$bin/cvm-agentd" --simulator "$tmp/sim" --listen "unix:$tmp/d.sock" "$@" >"$log" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		[ -S "$tmp/d.sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log" >&2
	echo "agentd_evidence: FAIL: the agent did not start" >&2
	exit 1
}

# get_evidence NONCE OUT: prints the HTTP status; the body goes to OUT.
get_evidence() {
	curl -s --max-time 30 --unix-socket "$tmp/d.sock" -o "$2" -w '%{http_code}' \
		-H 'Content-Type: application/json' -d "{\"nonce\":\"$1\"}" http://localhost/GetEvidence
}

# verify BUNDLE NONCE [ARGS...]: cvm evidence verify, output in $tmp/out.
verify() {
	local b="$1" n="$2"
	shift 2
	"$bin/cvm" evidence verify "$b" --nonce "$n" --collateral "$COLL" --root "$ROOT" "$@" >"$tmp/out" 2>&1
}

# expect_rejected WHAT STEP BUNDLE NONCE [ARGS...]: exit 3 with the named
# step failing first.
expect_rejected() {
	local what="$1" step="$2" b="$3" n="$4" rc=0
	shift 4
	verify "$b" "$n" --json "$@" || rc=$?
	if [ "$rc" -ne 3 ]; then
		fail "$what: exit $rc, expected 3 (rejected)"
		sed 's/^/    /' "$tmp/out" >&2
		return
	fi
	python3 - "$tmp/out" "$step" <<'EOF' && pass || { fail "$what: not rejected at step $step"; sed 's/^/    /' "$tmp/out" >&2; }
import json, sys
j = json.load(open(sys.argv[1]))
failed = [s["name"] for s in j["steps"] if not s["ok"]]
sys.exit(0 if j["verdict"] == "rejected" and failed and failed[0] == sys.argv[2] else 1)
EOF
}

# edit IN OUT PYTHON: OUT = IN with the Python statements applied to `j`.
edit() {
	python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(j, open(sys.argv[2], "w"))
EOF
}

N1=00112233445566778899aabbccddeeff0123456789abcdef
N2=ffeeddccbbaa99887766554433221100

# ---- the agent with a TPM and the IMA list ----------------------------------
start_agent "$tmp/agent.log" --tpm "$SWTPM_TCTI" --ima "$IMA"
grep -q 'event=tpm_ready .*ak_created=yes' "$tmp/agent.log" && pass || fail "no tpm_ready line with a created AK"

st="$(get_evidence "$N1" "$tmp/b1.json")"
[ "$st" = 200 ] && pass || { fail "GetEvidence: HTTP $st"; cat "$tmp/b1.json" >&2; }
if verify "$tmp/b1.json" "$N1" --require-tpm --require-ima; then pass; else
	fail "the bundle does not verify"
	cat "$tmp/out" >&2
fi
grep -q '^SIMULATED TEE' "$tmp/out" && pass || fail "the verdict does not say SIMULATED first"
grep -q "^ima: PCR 10 (sha256) covers the first $QUOTED of 513 entries" "$tmp/out" && pass ||
	fail "the verdict does not say $QUOTED of 513 IMA entries are covered"
verify "$tmp/b1.json" "$N1" --json
python3 - "$tmp/out" <<'EOF' && pass || fail "JSON verdict fields"
import json, sys
j = json.load(open(sys.argv[1]))
ok = (j["verdict"] == "accepted" and j["simulated"] and j["bound"] and j["rtmrs_replayed"]
      and j["event_count"] == 9 and j["tpm"]["verified"] and j["tpm"]["pcr_selection"] == "sha256:0-10"
      and j["ima"] == {"verified": True, "bank": "sha256", "quoted_entries": 507, "total_entries": 513})
sys.exit(0 if ok else 1)
EOF

# The binding, recomputed from the documented rules, and the quoted PCR 10
# from this script's own replay.
python3 - "$tmp/b1.json" "$N1" "$want10" "$IMA" <<'EOF' && pass || fail "binding rules recomputed in Python"
import hashlib, json, sys
j = json.load(open(sys.argv[1]))
nonce = bytes.fromhex(sys.argv[2])
t = j["tpm"]
pub = bytes.fromhex(t["ak_public"])
tpmt = pub[2:]                                   # TPM2B_PUBLIC: u16be size, TPMT_PUBLIC
assert int.from_bytes(pub[:2], "big") == len(tpmt)
name = tpmt[2:4] + hashlib.sha256(tpmt).digest()  # nameAlg (sha256 = 0x000b) || H(TPMT_PUBLIC)
assert tpmt[2:4] == b"\x00\x0b" and name.hex() == t["ak_name"], "AK Name"
rd = hashlib.sha512(b"cvmkit-evidence-v2/report-data\0" + bytes([len(nonce)]) + nonce +
                    len(name).to_bytes(2, "big") + name).digest()
quote = bytes.fromhex(j["quote"])
assert rd.hex() == j["report_data"] and quote[568:632] == rd, "report_data in the TDX quote"
qd = hashlib.sha256(b"cvmkit-evidence-v2/tpm-qualifying-data\0" + bytes([len(nonce)]) + nonce).digest()
attest = bytes.fromhex(t["attest"])
assert qd.hex() == t["qualifying_data"] and qd in attest, "qualifying data in TPMS_ATTEST"
assert t["pcrs"]["sha256"]["10"] == sys.argv[3], "PCR 10"
assert bytes.fromhex(j["ima_log"]) == open(sys.argv[4], "rb").read(), "IMA list bytes"
EOF

# ---- what must fail -----------------------------------------------------------
expect_rejected "another nonce" evidence.nonce "$tmp/b1.json" "$N2"
edit "$tmp/b1.json" "$tmp/x.json" "j['nonce'] = '$N2'"
expect_rejected "nonce field changed" evidence.binding "$tmp/x.json" "$N2"
edit "$tmp/b1.json" "$tmp/x.json" "j['tpm'] = None"
expect_rejected "TPM part removed" evidence.binding "$tmp/x.json" "$N1"
edit "$tmp/b1.json" "$tmp/x.json" "q = bytearray.fromhex(j['quote']); q[200] ^= 1; j['quote'] = q.hex()"
expect_rejected "quote byte flipped" quote_signature "$tmp/x.json" "$N1"
edit "$tmp/b1.json" "$tmp/x.json" "j['tpm']['pcrs']['sha256']['11'] = '00' * 32"
expect_rejected "PCR value the quote does not cover" tpm.pcrs "$tmp/x.json" "$N1"
edit "$tmp/b1.json" "$tmp/x.json" "j['event_log'][-1]['event_payload'] = 'aa'"
expect_rejected "runtime event changed" evidence.event_log "$tmp/x.json" "$N1"
# entry 3's file digest (the list's own template digest then disagrees)
edit "$tmp/b1.json" "$tmp/x.json" "
import struct
b = bytearray.fromhex(j['ima_log']); i = 0
for _ in range(3):
    nl = struct.unpack_from('<I', b, i + 24)[0]; dl = struct.unpack_from('<I', b, i + 28 + nl)[0]
    i += 32 + nl + dl
b[i + 32 + struct.unpack_from('<I', b, i + 24)[0] + 4 + 8] ^= 0x80
j['ima_log'] = b.hex()"
expect_rejected "IMA entry changed" ima "$tmp/x.json" "$N1"

# A second AK in the same TPM, quoting the right qualifying data: its quote
# verifies, but the TEE quote names the agent's AK.
qd="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tpm"]["qualifying_data"])' "$tmp/b1.json")"
if "$bin/cvm" tpm quote --tcti "$SWTPM_TCTI" --ak-handle 0x81000101 --pcrs sha256:0-10 --nonce "$qd" \
	--out "$tmp/q2" -q >"$tmp/out" 2>&1; then
	pass
	"$bin/cvm" tpm verify --ak "$tmp/q2/ak.pub" --attest "$tmp/q2/quote.msg" --sig "$tmp/q2/quote.sig" \
		--nonce "$qd" --pcrs "$tmp/q2/quote.pcrs" -q >"$tmp/out" 2>&1 && pass ||
		fail "the second AK's quote does not verify on its own"
	edit "$tmp/b1.json" "$tmp/x.json" "
h = lambda f: open('$tmp/q2/' + f, 'rb').read().hex()
j['tpm']['ak_public'] = h('ak.pub'); j['tpm'].pop('ak_name')"
	expect_rejected "AK swapped" evidence.binding "$tmp/x.json" "$N1"
	edit "$tmp/b1.json" "$tmp/x.json" "
h = lambda f: open('$tmp/q2/' + f, 'rb').read().hex()
j['tpm'].update(ak_public=h('ak.pub'), attest=h('quote.msg'), signature=h('quote.sig')); j['tpm'].pop('ak_name')"
	expect_rejected "AK and its genuine quote swapped" evidence.binding "$tmp/x.json" "$N1"
	edit "$tmp/b1.json" "$tmp/x.json" "
h = lambda f: open('$tmp/q2/' + f, 'rb').read().hex()
j['tpm'].update(attest=h('quote.msg'), signature=h('quote.sig'))"
	expect_rejected "quote of another AK" signature "$tmp/x.json" "$N1"
else
	fail "cvm tpm quote with a second AK"
	cat "$tmp/out" >&2
fi

# Repeated requests: the agent opens the TPM per request and leaves no
# transient object behind (swtpm has no resource manager).
ok=0
for i in 1 2 3 4 5 6; do
	st="$(get_evidence "$(printf '%016x' "$i")" "$tmp/b3.json")"
	[ "$st" = 200 ] && verify "$tmp/b3.json" "$(printf '%016x' "$i")" --require-tpm && ok=$((ok + 1))
done
[ "$ok" -eq 6 ] && pass || fail "only $ok of 6 repeated GetEvidence bundles verified"

stop_agent

# A bank IMA never extended (sha1 here): its PCR 10 is zero, so the quote
# covers the empty prefix. Accepted as such, rejected with --require-ima.
start_agent "$tmp/agent1b.log" --tpm "$SWTPM_TCTI" --tpm-pcrs sha1:0-10 --ima "$IMA"
st="$(get_evidence "$N1" "$tmp/b0.json")"
[ "$st" = 200 ] && verify "$tmp/b0.json" "$N1" --json && python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if j["ima"] == {"verified": True, "bank": "sha1", "quoted_entries": 0, "total_entries": 513} else 1)' \
	"$tmp/out" && pass || { fail "a sha1 quote covers no IMA entry"; cat "$tmp/out" >&2; }
expect_rejected "no IMA entry covered, --require-ima" ima "$tmp/b0.json" "$N1" --require-ima
stop_agent
start_agent "$tmp/agent.log" --tpm "$SWTPM_TCTI" --ima "$IMA"

# PCR 10 extended after the quote: the values read now are not the quoted
# ones; and a new bundle holds an extension the IMA list does not log.
tpm2_pcrextend "10:sha256=$(python3 -c 'print("5a" * 32)')" >/dev/null || fail "tpm2_pcrextend"
now10="$(tpm2_pcrread sha256:10 | awk '/10:/ {print tolower(substr($2, 3))}')"
edit "$tmp/b1.json" "$tmp/x.json" "j['tpm']['pcrs']['sha256']['10'] = '$now10'"
expect_rejected "PCR 10 read after an extension" pcr_digest "$tmp/x.json" "$N1"
st="$(get_evidence "$N2" "$tmp/b2.json")"
[ "$st" = 200 ] && pass || fail "GetEvidence after the extension: HTTP $st"
expect_rejected "unlogged PCR 10 extension" ima "$tmp/b2.json" "$N2"
verify "$tmp/b2.json" "$N2" --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["tpm"]["verified"] and j["bound"] else 1)' \
	"$tmp/out" && pass || fail "after the extension, the TPM quote itself must still verify"

stop_agent

# ---- errors -------------------------------------------------------------------
# An unreachable TPM: logged at start, then a 500 naming it, never a bundle.
# (Configured through the INI file, so its keys are read too.)
dead="$(swtpm_free_port)"
cat >"$tmp/agent.conf" <<EOF
[agent]
tpm_tcti = swtpm:host=127.0.0.1,port=$dead
tpm_pcrs = sha1:0,10+sha256:0-10
tpm_ak_handle = 0x81000102
ima_log = none
EOF
start_agent "$tmp/agent2.log" -c "$tmp/agent.conf"
grep -q 'event=tpm_unavailable' "$tmp/agent2.log" && pass || fail "no tpm_unavailable line for a dead TPM"
grep -q "event=evidence tpm=\"swtpm:host=127.0.0.1,port=$dead\" pcrs=sha1:0,10+sha256:0-10 ima=none" \
	"$tmp/agent2.log" && pass || fail "the config file's TPM keys were not applied"
st="$(get_evidence "$N1" "$tmp/e.json")"
[ "$st" = 500 ] && grep -q '"error":"TPM: cannot connect' "$tmp/e.json" && pass ||
	{ fail "dead TPM: HTTP $st, expected 500 with the TPM named"; cat "$tmp/e.json" >&2; }
grep -q 'event=evidence_failed part=tpm error=' "$tmp/agent2.log" && pass || fail "no evidence_failed part=tpm line"
stop_agent

# An IMA list that cannot be read.
start_agent "$tmp/agent3.log" --ima "$tmp/no-such-list"
st="$(get_evidence "$N1" "$tmp/e.json")"
[ "$st" = 500 ] && grep -q 'cannot read the IMA list' "$tmp/e.json" && pass ||
	{ fail "missing IMA list: HTTP $st, expected 500"; cat "$tmp/e.json" >&2; }
grep -q 'event=evidence_failed part=ima' "$tmp/agent3.log" && pass || fail "no evidence_failed part=ima line"
stop_agent

# No TPM, no IMA: report_data is the nonce; --require-tpm rejects.
start_agent "$tmp/agent4.log" --ima none
st="$(get_evidence "$N1" "$tmp/b4.json")"
[ "$st" = 200 ] && verify "$tmp/b4.json" "$N1" && pass || { fail "bundle without TPM"; cat "$tmp/out" >&2; }
expect_rejected "no TPM but required" tpm "$tmp/b4.json" "$N1" --require-tpm
stop_agent

# Configuration errors stop the agent at start.
for bad in "--tpm-pcrs sha999:0" "--tpm-pcrs sha256:0-7 --ima $IMA" "--tpm-ak-handle 0x1234"; do
	rc=0
	# shellcheck disable=SC2086 # the options are meant to split
	timeout 20 "$bin/cvm-agentd" --simulator "$tmp/sim" --listen "unix:$tmp/bad.sock" \
		--tpm "$SWTPM_TCTI" $bad >"$tmp/bad.log" 2>&1 || rc=$?
	[ "$rc" -eq 1 ] && grep -q 'start_failed' "$tmp/bad.log" && pass ||
		{ fail "agent with '$bad': exit $rc, expected 1 with start_failed"; cat "$tmp/bad.log" >&2; }
done

echo "agentd_evidence: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
