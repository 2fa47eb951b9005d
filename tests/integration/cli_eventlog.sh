#!/usr/bin/env bash
# cvm eventlog replay / show against every real event log vector:
#  - replay --json gives the values the manifest states (expected.stated),
#    and exactly the registers and event count of the manifest's independent
#    replay (own_replay_check); "registers" lists every register of every
#    bank, the ones never extended at their reset value and marked so;
#    reading stdin gives the same;
#  - show (text and --json) reads every log; its JSON is one valid object;
#  - a dstack runtime log we write here replays to the RTMR3 that Python's
#    hashlib computes from the same events;
#  - dstack's JSON event log (the real GetQuote replies A-D1 and F-D2, and
#    their event_log alone) replays to the RTMR0..3 of the quote in the same
#    file (read here with Python from the quote's bytes); a changed runtime
#    payload is refused;
#  - short padding ends a log; EV_NO_ACTION events with index 0xffffffff are
#    shown and not extended; an extending event with PCR index 24 exits 3
#    naming the byte where it starts;
#  - a cut log exits 3 with the offset of the cut event and the reason, a
#    missing file 1, usage errors 2.
# Needs: $CVM_BIN/cvm, tests/vectors/eventlog and compat, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
V="$VECTORS"
vectors_require eventlog/manifest.json
if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to read the manifest and the JSON output" >&2
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

# expect_rc WANT DESC CMD...: runs CMD (stdout to $tmp/out, stderr to $tmp/err).
expect_rc() {
	local want="$1" desc="$2" rc=0
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, expected $want; stderr: $(head -c 400 "$tmp/err")"
		return 1
	fi
	pass
}

# --- every vector: replay --json against the manifest ---
python3 - "$V/eventlog/manifest.json" >"$tmp/list" <<'EOF'
import json, sys
for v in json.load(open(sys.argv[1]))["vectors"]:
    print(v["name"], v["files"][0]["file"])
EOF
count=0
while read -r name file; do
	count=$((count + 1))
	log="$V/eventlog/$file"
	expect_rc 0 "replay $name" "$CVM" eventlog replay --json "$log" || continue
	cp "$tmp/out" "$tmp/replay.json"
	if ! python3 - "$V/eventlog/manifest.json" "$name" "$tmp/replay.json" >"$tmp/cmp" 2>&1 <<'EOF'; then
import json, sys
m = json.load(open(sys.argv[1]))
v = next(x for x in m["vectors"] if x["name"] == sys.argv[2])
got = json.load(open(sys.argv[3]))
assert set(got) == {"format", "events", "pcrs", "registers", "digests"}, "keys %s" % sorted(got)
exp = v["expected"]
own = exp["own_replay_check"]
# registers: every register of every bank, extended ones as in pcrs, the
# others at their reset value (TCG PCRs 17..22 all ones, PCR 0 the
# StartupLocality, else zero), and marked.
fmt = got["format"]
want_idx = {"ccel": ["1", "2", "3", "4"]}.get(fmt, [str(i) for i in range(24)])
assert sorted(got["registers"]) == sorted(own["algs"]), "register banks %s" % sorted(got["registers"])
for bank, regs in got["registers"].items():
    assert sorted(regs, key=int) == want_idx, "%s registers %s" % (bank, sorted(regs, key=int))
    for idx, r in regs.items():
        if r["extended"]:
            if r["value"] is not None:
                assert got["pcrs"][bank][idx] == r["value"], "%s[%s] differs from pcrs" % (bank, idx)
        else:
            assert idx not in got["pcrs"].get(bank, {}), "%s[%s] in pcrs but not extended" % (bank, idx)
            if r["value"] is None:  # a bank cvmkit cannot compute
                continue
            n = len(r["value"]) // 2
            if fmt != "ccel" and 17 <= int(idx) <= 22:
                assert r["value"] == "ff" * n, "%s[%s] reset %s" % (bank, idx, r["value"])
            elif idx != "0":
                assert r["value"] == "00" * n, "%s[%s] reset %s" % (bank, idx, r["value"])
assert got["digests"]["computed"] == 0 and got["digests"]["checked"] == 0 and got["digests"]["logged"] <= got["events"]
bad = []
for src in ("stated", "own_replay_check"):
    if src not in exp:
        continue
    for bank, regs in exp[src]["pcrs"].items():
        for idx, val in regs.items():
            g = got["pcrs"].get(bank, {}).get(idx)
            if g is None and set(val) != {"0"}:
                bad.append("%s %s[%s] missing" % (src, bank, idx))
            elif g is not None and g != val:
                bad.append("%s %s[%s]: %s, manifest %s" % (src, bank, idx, g, val))
mine = {(b, i) for b, r in got["pcrs"].items() for i in r}
theirs = {(b, i) for b, r in own["pcrs"].items() for i in r}
if mine != theirs:
    bad.append("registers differ from own_replay_check: %s" % sorted(mine ^ theirs))
if got["events"] != own["events"]:
    bad.append("events %d, own_replay_check %d" % (got["events"], own["events"]))
kind = {"sha1-legacy": "tcg-sha1"}.get(own["format"], "ccel" if v["kind"] == "ccel" else "tcg2")
if got["format"] != kind:
    bad.append("format %s, expected %s" % (got["format"], kind))
if bad:
    print("; ".join(bad))
    sys.exit(1)
EOF
		fail "replay $name: $(cat "$tmp/cmp")"
	else
		pass
	fi
	# stdin gives the same output
	rc=0
	"$CVM" eventlog replay --json - <"$log" >"$tmp/stdin.json" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne 0 ] || ! cmp -s "$tmp/stdin.json" "$tmp/replay.json"; then
		fail "replay $name from stdin differs (exit $rc)"
	else
		pass
	fi
	# show: text, and one valid JSON object with every event
	expect_rc 0 "show $name" "$CVM" eventlog show "$log" || true
	if expect_rc 0 "show --json $name" "$CVM" eventlog show --json "$log"; then
		if ! python3 - "$tmp/out" "$tmp/replay.json" >"$tmp/cmp" 2>&1 <<'EOF'; then
import json, sys
s = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
assert len(s["events"]) == r["events"] == s["event_count"], "event counts"
assert s["pcrs"] == r["pcrs"], "pcrs differ from replay"
assert s["registers"] == r["registers"], "registers differ from replay"
assert [e["seq"] for e in s["events"]] == list(range(r["events"])), "seq"
assert all(isinstance(e["description"], str) for e in s["events"])
EOF
			fail "show --json $name: $(cat "$tmp/cmp")"
		else
			pass
		fi
	fi
done <"$tmp/list"
[ "$count" -eq 23 ] || fail "the manifest lists $count vectors, expected 23"

# --- a dstack runtime log of our own, against hashlib ---
python3 - "$tmp/runtime_events.log" >"$tmp/rtmr3" <<'EOF'
import base64, hashlib, json, struct, sys
events = [("system-preparing", b""), ("app-id", bytes(range(20))), ("compose-hash", b"\xab" * 32),
          ("key-provider", b'{"name":"kms","id":"00"}'), ("system-ready", b"")]
mr = b"\0" * 48
with open(sys.argv[1], "w") as f:
    for name, payload in events:
        d = hashlib.sha384(struct.pack("<I", 0x08000001) + b":" + name.encode() + b":" + payload).digest()
        mr = hashlib.sha384(mr + d).digest()
        f.write(json.dumps({"event": name, "payload": base64.b64encode(payload).decode()}) + "\n")
print(mr.hex())
EOF
if expect_rc 0 "replay dstack runtime log" "$CVM" eventlog replay --json "$tmp/runtime_events.log"; then
	got="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["format"], d["events"], d["pcrs"]["sha384"]["3"])' "$tmp/out")"
	[ "$got" = "dstack-runtime 5 $(cat "$tmp/rtmr3")" ] && pass || fail "dstack replay: $got"
fi
expect_rc 0 "show dstack runtime log" "$CVM" eventlog show "$tmp/runtime_events.log" &&
	grep -q '"key-provider"' "$tmp/out" && pass || fail "show does not name the key-provider event"
: >"$tmp/empty.log"
expect_rc 0 "empty runtime log with --format dstack" "$CVM" eventlog replay --json --format dstack "$tmp/empty.log" &&
	grep -q '"events": 0' "$tmp/out" && pass || fail "empty runtime log: $(cat "$tmp/out")"
expect_rc 3 "empty log, format auto" "$CVM" eventlog replay "$tmp/empty.log" || true

# --- dstack's JSON event log: real GetQuote replies, against their quotes ---
for rel in compat/app-compose/dstack-examples-rtmr3-based/report.json \
	compat/verifier/dstack-verifier-fixtures/tdx-lite-getquote.json; do
	doc="$V/$rel"
	if [ ! -f "$doc" ]; then
		fail "$rel is missing from the vectors"
		continue
	fi
	python3 - "$doc" "$tmp/bare.json" >"$tmp/rtmrs" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
q = bytes.fromhex(d["quote"])
# TDX quote v4: a 48-byte header, then the TD report; RTMR0..3 at 376 + 48 i.
print(" ".join(q[376 + 48 * i:424 + 48 * i].hex() for i in range(4)))
open(sys.argv[2], "w").write(d["event_log"])
EOF
	for input in "$doc" "$tmp/bare.json"; do
		if expect_rc 0 "replay --json $(basename "$input") (dstack JSON)" "$CVM" eventlog replay --json "$input"; then
			got="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=d["registers"]["sha384"]
assert d["format"] == "dstack-json" and sorted(r) == ["0", "1", "2", "3"], d
assert all(r[i]["extended"] for i in r)
print(" ".join(r[str(i)]["value"] for i in range(4)))' "$tmp/out" 2>&1)"
			[ "$got" = "$(cat "$tmp/rtmrs")" ] && pass || fail "$rel: replayed RTMRs $got, quote $(cat "$tmp/rtmrs")"
		fi
	done
	rc=0
	"$CVM" eventlog replay --json - <"$doc" >"$tmp/stdin.json" 2>"$tmp/err" || rc=$?
	"$CVM" eventlog replay --json "$doc" >"$tmp/file.json" 2>/dev/null || true
	[ "$rc" -eq 0 ] && cmp -s "$tmp/stdin.json" "$tmp/file.json" && pass || fail "$rel from stdin differs (exit $rc)"
	if expect_rc 0 "show $rel" "$CVM" eventlog show "$doc"; then
		grep -q 'RTMR3 .*DSTACK_RUNTIME_EVENT *"system-ready"' "$tmp/out" && pass || fail "show $rel: no system-ready event"
	fi
	expect_rc 0 "show --json $rel" "$CVM" eventlog show --json "$doc" &&
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=d["events"]
assert d["format"] == "dstack-json" and len(e) == d["event_count"]
rt = [x for x in e if x["type"] == 0x08000001]
assert rt and all(x["digest_source"] in ("checked", "computed") and x["index"] == 3 for x in rt)
assert all(x["digest_source"] == "logged" for x in e if x["type"] != 0x08000001)' "$tmp/out" && pass ||
		fail "show --json $rel"
done
# A-D1 gives the runtime digests: a changed payload no longer matches.
python3 - "$V/compat/app-compose/dstack-examples-rtmr3-based/report.json" "$tmp/tampered.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ev = json.loads(d["event_log"])
i = next(k for k, e in enumerate(ev) if e["event"] == "compose-hash")
ev[i]["event_payload"] = "00" + ev[i]["event_payload"][2:]
d["event_log"] = json.dumps(ev, separators=(",", ":"))
json.dump(d, open(sys.argv[2], "w"))
EOF
if expect_rc 3 "a dstack log with a changed runtime payload" "$CVM" eventlog replay "$tmp/tampered.json"; then
	grep -q "of event_log: event 23: digest is not the SHA-384 dstack computes" "$tmp/err" && pass ||
		fail "tampered dstack log message: $(cat "$tmp/err")"
fi
expect_rc 3 "a TCG log read as dstack-json" "$CVM" eventlog replay --format dstack-json "$V/eventlog/gtt-debian-10/eventlog.bin" || true

# --- short padding, EV_NO_ACTION indices, offsets in messages ---
src="$V/eventlog/vm-ovmf-tpmcrb-imang/eventlog.bin"
expect_rc 0 "replay of the source log" "$CVM" eventlog replay --json "$src" && cp "$tmp/out" "$tmp/src.json"
{ cat "$src"; printf '\0\0\0\0\0'; } >"$tmp/pad5.bin"
if expect_rc 0 "a log with 5 bytes of padding" "$CVM" eventlog replay "$tmp/pad5.bin"; then
	grep -q "+ 5 bytes of padding" "$tmp/out" && pass || fail "5 bytes of padding: $(head -1 "$tmp/out")"
fi
{ cat "$src"; printf '\0\0\0A'; } >"$tmp/padmix.bin"
if expect_rc 3 "a log with mixed trailing bytes" "$CVM" eventlog replay "$tmp/padmix.bin"; then
	grep -q "at byte 2464: the log ends inside an event header" "$tmp/err" && pass || fail "mixed padding: $(cat "$tmp/err")"
fi
python3 - "$src" "$tmp" <<'EOF'
import struct, sys
log = open(sys.argv[1], "rb").read()
def event(pcr, typ, data):
    # sha1 and sha256 digests, the banks the Spec ID event of this log lists
    return (struct.pack("<III", pcr, typ, 2) + struct.pack("<H", 4) + b"\xab" * 20 +
            struct.pack("<H", 11) + b"\xab" * 32 + struct.pack("<I", len(data)) + data)
open(sys.argv[2] + "/noaction.bin", "wb").write(log + event(0xFFFFFFFF, 3, b"test record"))
open(sys.argv[2] + "/pcr24.bin", "wb").write(log + event(24, 6, b"tag"))
EOF
if expect_rc 0 "EV_NO_ACTION with index 0xffffffff" "$CVM" eventlog replay --json "$tmp/noaction.bin"; then
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
assert a["events"] == b["events"] + 1 and a["registers"] == b["registers"]' "$tmp/out" "$tmp/src.json" &&
		pass || fail "EV_NO_ACTION with index 0xffffffff changed the replay"
fi
expect_rc 0 "show EV_NO_ACTION with index 0xffffffff" "$CVM" eventlog show "$tmp/noaction.bin" &&
	grep -q "^ *25  PCR 4294967295 *EV_NO_ACTION" "$tmp/out" && pass || fail "show does not list the EV_NO_ACTION event"
if expect_rc 3 "an extending event with PCR index 24" "$CVM" eventlog replay "$tmp/pcr24.bin"; then
	grep -q "not a valid event log: at byte 2464: PCR index 24 (a TCG log has 0..23" "$tmp/err" && pass ||
		fail "PCR index 24 message: $(cat "$tmp/err")"
fi

# --- malformed logs, missing files, usage ---
src="$V/eventlog/vm-ovmf-tpmcrb-imang/eventlog.bin"
head -c 1000 "$src" >"$tmp/cut.bin"
# The cut falls inside the event that starts at the last offset below 1000.
cut_at="$(python3 -c 'import json,sys; print(max(e["offset"] for e in json.load(sys.stdin)["events"] if e["offset"] < 1000))' \
	< <("$CVM" eventlog show --json "$src"))"
if expect_rc 3 "replay of a cut log" "$CVM" eventlog replay "$tmp/cut.bin"; then
	grep -q "not a valid event log: at byte $cut_at: the log ends inside an event" "$tmp/err" && pass ||
		fail "cut log message (event at $cut_at): $(cat "$tmp/err")"
fi
if expect_rc 3 "show --json of a cut log" "$CVM" eventlog show --json "$tmp/cut.bin"; then
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["error"]["offset"] == int(sys.argv[2]) and d["events"]' \
		"$tmp/out" "$cut_at" && pass || fail "show --json of a cut log is not JSON with the error at $cut_at"
fi
{ cat "$src"; printf 'x'; } >"$tmp/extra.bin"
expect_rc 3 "a log with one extra byte" "$CVM" eventlog replay "$tmp/extra.bin" || true
expect_rc 3 "a SHA-1 log read as ccel" "$CVM" eventlog replay --format ccel "$V/eventlog/gtt-debian-10/eventlog.bin" || true
expect_rc 1 "a missing file" "$CVM" eventlog replay "$tmp/no-such-file" || true
grep -q "cannot open event log" "$tmp/err" && pass || fail "missing file message: $(cat "$tmp/err")"
expect_rc 1 "a folder" "$CVM" eventlog replay "$tmp" || true
grep -q "cannot read event log" "$tmp/err" && pass || fail "folder message: $(cat "$tmp/err")"
expect_rc 2 "no subcommand" "$CVM" eventlog || true
expect_rc 2 "unknown subcommand" "$CVM" eventlog verify "$src" || true
expect_rc 2 "no LOG" "$CVM" eventlog replay || true
expect_rc 2 "two LOGs" "$CVM" eventlog replay "$src" "$src" || true
expect_rc 2 "unknown format" "$CVM" eventlog replay --format tpm "$src" || true
expect_rc 2 "unknown option" "$CVM" eventlog show --bogus "$src" || true
expect_rc 0 "help" "$CVM" help eventlog && grep -q "cvm eventlog replay" "$tmp/out" && pass || fail "help text"

if [ "$failures" -ne 0 ]; then
	echo "cli_eventlog: $failures failure(s), $checks checks passed" >&2
	exit 1
fi
echo "cli_eventlog: all $checks checks passed"
