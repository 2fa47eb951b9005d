#!/usr/bin/env bash
# The runtime event log's budget in cvm-agentd (issue 9, finding 4): no local
# caller can fill the log and lock the app or the system out.
#  - each caller (uid of a unix socket peer, SO_PEERCRED) has its own share,
#    caller_events_max events and caller_payload_max payload bytes; one that
#    used it gets a 400 naming the limit, another uid can still append;
#    callers without a uid of their own (TCP) share one budget;
#  - apps together stay out of the last 128 events and 64 KiB of payload,
#    kept for the system: an app that reaches them gets a 400 saying so;
#  - the agent still records its own events beyond the apps' room (a log
#    already past it, as a boot tool might leave it);
#  - the config keys are range-checked.
# The two uids are root and 65534 when this script runs as root; otherwise
# the second caller is a TCP client (the script says so).
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
for t in curl python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "agentd_event_budget: FAIL: $t is missing (scripts/setup.sh installs it)"; exit 1; }
done
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "agentd_event_budget: FAIL: $bin/$t is missing (build it first)"; exit 1; }
done
bin="$(cd "$bin" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-agentd-budget.XXXXXX")"
chmod 0711 "$tmp" # the second uid must reach the socket inside
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

if [ "$(id -u)" -eq 0 ]; then
	OTHER_UID=65534
	as_other() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
else
	OTHER_UID=""
	echo "agentd_event_budget: not root: a second uid is not available, the TCP budget stands in for it"
fi

"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "agentd_event_budget: FAIL: cvm sim init"; exit 1; }

start_agent() { # start_agent LOG ARGS...
	local log="$1" i
	shift
	rm -f "$tmp/d.sock" "$tmp/port"
	"$bin/cvm-agentd" --simulator "$tmp/sim" --listen "unix:$tmp/d.sock" --tcp 127.0.0.1:0 \
		--port-file "$tmp/port" "$@" >"$log" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		[ -S "$tmp/d.sock" ] && [ -s "$tmp/port" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log" >&2
	echo "agentd_event_budget: FAIL: the agent did not start" >&2
	exit 1
}

# emit WHO NAME PAYLOAD_HEX: prints the HTTP status; the body is in $tmp/e.json.
# WHO: self (this uid), other (uid 65534) or tcp.
emit() {
	local who="$1" body
	body="{\"event\":\"$2\",\"payload\":\"$3\"}"
	case "$who" in
	self) curl -s --unix-socket "$tmp/d.sock" -o "$tmp/e.json" -w '%{http_code}' -d "$body" http://localhost/EmitEvent ;;
	other) as_other curl -s --unix-socket "$tmp/d.sock" -w '%{http_code}' -d "$body" http://localhost/EmitEvent \
		>"$tmp/raw" && python3 -c '
import sys
raw = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(raw[:-3])
print(raw[-3:].decode())' "$tmp/raw" "$tmp/e.json" ;;
	tcp) curl -s -o "$tmp/e.json" -w '%{http_code}' -d "$body" "http://127.0.0.1:$(cat "$tmp/port")/EmitEvent" ;;
	esac
}

# ---- each caller's share ------------------------------------------------------
printf '[agent]\ncaller_events_max = 5\ncaller_payload_max = 64\n' >"$tmp/share.conf"
start_agent "$tmp/agent1.log" -c "$tmp/share.conf"
first=other
[ -n "$OTHER_UID" ] || first=tcp
ok=0
for i in 1 2 3 4 5; do
	[ "$(emit "$first" "app-$first-$i" 01)" = 200 ] && ok=$((ok + 1))
done
[ "$ok" -eq 5 ] && pass || fail "$first: only $ok of 5 events within its share were accepted"
st="$(emit "$first" "app-$first-6" 01)"
if [ -n "$OTHER_UID" ]; then
	want="uid $OTHER_UID has used up its share of the runtime event log: 5 events (caller_events_max = 5)"
else
	want="the callers without a uid of their own (TCP, or beyond 64 uids) have used up their common share of the runtime event log: 5 events (caller_events_max = 5)"
fi
[ "$st" = 400 ] && grep -qF "$want" "$tmp/e.json" && pass ||
	{ fail "$first: 6th event: HTTP $st, expected 400 '$want'"; cat "$tmp/e.json" >&2; }
# Another caller still appends, until its own payload share (64 bytes) is used.
[ "$(emit self app-self-1 "$(printf 'ab%.0s' $(seq 60))")" = 200 ] && pass ||
	{ fail "a second caller cannot append after the first used its share"; cat "$tmp/e.json" >&2; }
st="$(emit self app-self-2 "$(printf 'cd%.0s' $(seq 5))")"
[ "$st" = 400 ] && grep -qF "has used up its share of the runtime event log: 60 payload bytes, 5 more asked (caller_payload_max = 64)" "$tmp/e.json" && pass ||
	{ fail "payload share: HTTP $st, expected 400 naming caller_payload_max"; cat "$tmp/e.json" >&2; }
[ "$(emit self app-self-3 "$(printf 'ef%.0s' $(seq 4))")" = 200 ] && pass ||
	fail "the last 4 bytes of a payload share are refused"
if [ -n "$OTHER_UID" ]; then
	# TCP callers share one budget, apart from the uids'.
	ok=0
	for i in 1 2 3 4 5; do
		[ "$(emit tcp "app-tcp-$i" 02)" = 200 ] && ok=$((ok + 1))
	done
	st="$(emit tcp app-tcp-6 02)"
	[ "$ok" -eq 5 ] && [ "$st" = 400 ] && grep -q 'callers without a uid of their own' "$tmp/e.json" && pass ||
		{ fail "TCP budget: $ok of 5 accepted, then HTTP $st"; cat "$tmp/e.json" >&2; }
fi
grep -q "event=emit_event name=app-$first-5 payload_len=1 events=13 caller=" "$tmp/agent1.log" && pass ||
	fail "the emit_event log line does not name the caller"
stop_agent

# ---- the room kept for the system ---------------------------------------------
# One caller allowed the apps' whole payload room (960 KiB): the boot events
# hold a few hundred bytes, so 14 events of 64 KiB fit and the 15th is
# refused.
printf '[agent]\ncaller_events_max = 3968\ncaller_payload_max = 983040\n' >"$tmp/room.conf"
start_agent "$tmp/agent2.log" -c "$tmp/room.conf"
big="$(python3 -c 'print("5a" * 65536)')"
printf '{"event":"big","payload":"%s"}' "$big" >"$tmp/big.json"
ok=0 st=""
for i in $(seq 16); do
	st="$(curl -s --unix-socket "$tmp/d.sock" -o "$tmp/e.json" -w '%{http_code}' -d @"$tmp/big.json" http://localhost/EmitEvent)"
	[ "$st" = 200 ] || break
	ok=$((ok + 1))
done
[ "$ok" -eq 14 ] && [ "$st" = 400 ] &&
	grep -q 'no room left for app events: .* payload bytes are used, 65536 more asked, and the last 65536 are kept for system events' "$tmp/e.json" &&
	pass || { fail "payload room: $ok events of 64 KiB accepted, then HTTP $st"; cat "$tmp/e.json" >&2; }
# what is left below the reserve still fits a small event
[ "$(emit self small 00)" = 200 ] && pass || { fail "a small event below the reserve is refused"; cat "$tmp/e.json" >&2; }
stop_agent

# ---- the system beyond the apps' room ----------------------------------------------
# A log already past the apps' 3968 events, all of them system events (as a
# boot tool could leave it): the agent still records its own at start, and
# an app gets a 400 that names the reserve. (RTMR3 was not extended for
# these lines, so the agent reports rtmr3_mismatch: only the counts matter.)
"$bin/cvm" sim init "$tmp/sim3" >/dev/null || fail "cvm sim init sim3"
python3 - "$tmp/rt3.log" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(4000):
        f.write('{"event":"cvmkit.boot-step-%d","payload":""}\n' % i)
PY
chmod 0600 "$tmp/rt3.log"
rm -f "$tmp/d.sock" "$tmp/port"
"$bin/cvm-agentd" --simulator "$tmp/sim3" --runtime-log "$tmp/rt3.log" --listen "unix:$tmp/d.sock" \
	>"$tmp/agent3.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/d.sock" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
grep -q 'event=system_event name=cvmkit.agent-key recorded=yes index=4000' "$tmp/agent3.log" && pass ||
	{ fail "the agent did not record its key past the apps' room"; cat "$tmp/agent3.log" >&2; }
st="$(emit self app-late 00)"
[ "$st" = 400 ] && grep -qF "no room left for app events: 4001 of 4096 events are used, and the last 128 are kept for system events" "$tmp/e.json" &&
	pass || { fail "an app past the room: HTTP $st"; cat "$tmp/e.json" >&2; }
stop_agent

# ---- config errors --------------------------------------------------------------
for bad in "caller_events_max = 0" "caller_events_max = 3969" "caller_payload_max = 983041"; do
	printf '[agent]\n%s\n' "$bad" >"$tmp/bad.conf"
	rc=0
	timeout 20 "$bin/cvm-agentd" -c "$tmp/bad.conf" --simulator "$tmp/sim" --listen "unix:$tmp/bad.sock" \
		>"$tmp/bad.log" 2>&1 || rc=$?
	[ "$rc" -eq 1 ] && grep -q 'not a number in range' "$tmp/bad.log" && pass ||
		{ fail "'$bad': exit $rc, expected 1 naming the range"; cat "$tmp/bad.log" >&2; }
done

echo "agentd_event_budget: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
