#!/usr/bin/env bash
# cvm eventlog replay / show against every real event log vector:
#  - replay --json gives the values the manifest states (expected.stated),
#    and exactly the registers and event count of the manifest's independent
#    replay (own_replay_check); reading stdin gives the same;
#  - show (text and --json) reads every log; its JSON is one valid object;
#  - a dstack runtime log we write here replays to the RTMR3 that Python's
#    hashlib computes from the same events;
#  - a cut log exits 3 with the offset and the reason, a missing file 1,
#    usage errors 2.
# Needs: $CVM_BIN/cvm, tests/vectors/eventlog, python3.
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
assert set(got) == {"format", "events", "pcrs"}, "keys %s" % sorted(got)
exp = v["expected"]
own = exp["own_replay_check"]
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

# --- malformed logs, missing files, usage ---
src="$V/eventlog/vm-ovmf-tpmcrb-imang/eventlog.bin"
head -c 1000 "$src" >"$tmp/cut.bin"
if expect_rc 3 "replay of a cut log" "$CVM" eventlog replay "$tmp/cut.bin"; then
	grep -q "not a valid event log: at byte [0-9]*: the log ends inside an event" "$tmp/err" && pass ||
		fail "cut log message: $(cat "$tmp/err")"
fi
if expect_rc 3 "show --json of a cut log" "$CVM" eventlog show --json "$tmp/cut.bin"; then
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["error"]["offset"] > 0 and d["events"]' \
		"$tmp/out" && pass || fail "show --json of a cut log is not JSON with an error"
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
