#!/usr/bin/env bash
# cvm-agentd under the attacks of issue 9 (daemons/common/httpd.c limits),
# over the simulated TEE, each with a legitimate client measured alongside:
#
#   1. per-uid connection cap: 200 idle connections from uid 65534 (setpriv)
#      get 32 slots and JSON 503s for the rest; root is served;
#   2. deadlines: a body trickled one byte per 0.5 s is cut at body_timeout
#      with a 408 (the inactivity timeout is 60 s); an idle keep-alive
#      connection is closed silently at header_timeout;
#   3. framing: two Content-Length headers (equal or not), Content-Length
#      with Transfer-Encoding, a Transfer-Encoding other than "chunked", a
#      signed length, a space before a colon and a HEAD with a body are each
#      answered 400 and the connection closed, so no smuggled request runs;
#   4. a body flood: 1000 connections, each announcing a 1 MiB body and
#      sending all of it but the last byte, from uid 65534 on the unix
#      socket: the agent's resident memory stays under the bound that
#      max_buffered and max_connections set, and root's requests are served;
#   5. six TCP addresses, each within its own caps, together over the
#      global ones: max_connections and max_buffered hold;
#   6. slowloris: 1100 TCP connections from 127.0.0.2 trickling header bytes
#      faster than the inactivity timeout: each is cut at header_timeout with
#      a 408 and 127.0.0.1 is served throughout (the agent runs with
#      RLIMIT_NOFILE 1024, systemd's default: without the caps, 1100
#      connections take every descriptor and 127.0.0.1 is never accepted).
#
# The sections that look at log lines come first: those lines are
# rate-limited, and the floods use up the budget.
# Every check runs (failures are counted, not fatal) so that a run against an
# agent without the limits shows which attacks succeed. Needs python3 and
# setpriv (util-linux); section 1 and 4 need root to switch uid.
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
here="$(cd "$(dirname "$0")" && pwd)"
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "daemon_limits: $bin/$t is missing (build it first)"; exit 1; }
done
# The system's python3: the attacker runs as another user, who cannot read a
# python installed under /root.
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3 || true)"
[ -n "$py" ] || { echo "daemon_limits: SKIP: python3 is not installed"; exit 77; }
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	echo "daemon_limits: SKIP: needs root and setpriv to run an attacker under another uid"
	exit 77
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-limits.XXXXXX")"
chmod 755 "$tmp" # uid 65534 reaches the socket
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
cp "$here/daemon_limits_client.py" "$tmp/client.py"
chmod 644 "$tmp/client.py"

failures=0
fail() {
	echo "daemon_limits: FAIL: $*"
	failures=$((failures + 1))
}
# j FILE EXPR: a value from the client's JSON report (python expression over j).
j() {
	"$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# The limits under test, small so that the whole script takes seconds.
max_connections=128
per_peer=32
max_buffered=$((16 * 1024 * 1024))
buffered_per_peer=$((4 * 1024 * 1024))
header_timeout=2
body_timeout=3

"$bin/cvm" sim init "$tmp/sim" >/dev/null
cat >"$tmp/agent.conf" <<EOF
; cvm-agentd limits test
[agent]
simulator = $tmp/sim
log_level = info
port_file = $tmp/port
timeout = 60
header_timeout = $header_timeout
body_timeout = $body_timeout
reply_timeout = 5
max_connections = $max_connections
max_connections_per_peer = $per_peer
max_buffered = $max_buffered
max_buffered_per_peer = $buffered_per_peer

[dstack]
listen = unix:$tmp/dstack.sock
mode = 0666
tcp = 127.0.0.1:0
EOF
(
	ulimit -n 1024
	exec "$bin/cvm-agentd" -c "$tmp/agent.conf" >"$tmp/agent.log" 2>&1
) &
pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/dstack.sock" ] && [ -s "$tmp/port" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/agent.log"; echo "daemon_limits: the agent exited"; exit 1; }
	sleep 0.1
done
[ -S "$tmp/dstack.sock" ] && [ -s "$tmp/port" ] || { cat "$tmp/agent.log"; echo "daemon_limits: no socket"; exit 1; }
port="$(cat "$tmp/port")"
unix=(--unix "$tmp/dstack.sock")
tcp=(--tcp "127.0.0.1:$port")
client=("$py" "$tmp/client.py")
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fds_before="$(ls "/proc/$pid/fd" | wc -l)"

# The documented bound (docs/daemons/cvm-agentd.md, "Limits"): max_buffered
# bytes of requests and replies, plus at most 32 KiB per connection record
# (libevent's connection, its buffers' slack, up to 100 parsed headers),
# plus 4 MiB for the allocator's own slack.
bound_kb=$((max_buffered / 1024 + (max_connections + 32) * 32 + 4096))
if grep -qa AddressSanitizer "$bin/cvm-agentd"; then
	# Redzones around every allocation and the quarantine of freed memory
	# roughly double what the same heap occupies.
	bound_kb=$((bound_kb * 2))
	echo "daemon_limits: AddressSanitizer build: the memory bound is doubled to $bound_kb KiB"
fi

check_probe() { # FILE WHAT: every legitimate request answered, each within 2 s (a loaded CI machine)
	local ok failed max
	ok="$(j "$1" "j['probe']['ok'] if 'probe' in j else j['ok']")"
	failed="$(j "$1" "j['probe']['failed'] if 'probe' in j else j['failed']")"
	max="$(j "$1" "(j['probe'] if 'probe' in j else j)['max_ms'] or 1e9")"
	echo "daemon_limits: $2: legitimate client: $ok answered, $failed failed, slowest $max ms"
	[ "$ok" -ge 5 ] && [ "$failed" -eq 0 ] && "$py" -c "import sys; sys.exit(0 if $max < 2000 else 1)" ||
		fail "$2: legitimate client: $ok answered, $failed failed, slowest ${max} ms ($(j "$1" "(j['probe'] if 'probe' in j else j)['failures']"))"
}

# 1. Per-uid connection cap: 200 idle connections from uid 65534.
"${as_nobody[@]}" "${client[@]}" slowloris "${unix[@]}" --conns 200 --every 10 --duration 1.5 >"$tmp/uid.json" &
att=$!
sleep 0.5
"${client[@]}" probe "${unix[@]}" --count 5 --interval 0.1 >"$tmp/uid-probe.json"
wait "$att"
echo "daemon_limits: per-uid cap: $(cat "$tmp/uid.json")"
check_probe "$tmp/uid-probe.json" "per-uid cap"
n503="$(j "$tmp/uid.json" "j['statuses'].get('503', 0)")"
[ "$n503" -ge $((200 - per_peer - 8)) ] || fail "per-uid cap: $n503 of 200 connections refused, expected about $((200 - per_peer))"
j "$tmp/uid.json" "j['sample_bodies']" | grep -q "max_connections_per_peer" || fail "per-uid cap: no 503 names max_connections_per_peer"
grep -q 'event=connection_refused api=dstack peer="unix:pid=[0-9]*,uid=65534" reason=peer_connections' "$tmp/agent.log" ||
	fail "per-uid cap: no event=connection_refused line for uid 65534"

# 2. Deadlines. A body trickled one byte per 0.5 s: cut at body_timeout.
"$py" - "$tmp/dstack.sock" "$body_timeout" >"$tmp/body.txt" <<'EOF' || fail "trickled body: $(cat "$tmp/body.txt")"
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
limit = float(sys.argv[2])
s.sendall(b"POST /GetQuote HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
t0, raw = time.monotonic(), b""
s.settimeout(0.5)
while time.monotonic() - t0 < limit + 5:
    try:
        s.send(b" ")
        d = s.recv(4096)
        if not d:
            break
        raw += d
    except socket.timeout:
        continue
    except OSError:
        break
ms = (time.monotonic() - t0) * 1000
print(f"{ms:.0f} ms: {raw[:160]!r}")
ok = raw.startswith(b"HTTP/1.1 408 ") and b"body_timeout" in raw and limit * 1000 - 100 <= ms <= limit * 1000 + 2500
sys.exit(0 if ok else 1)
EOF
echo "daemon_limits: trickled body: $(cat "$tmp/body.txt")"
# An idle keep-alive connection: closed at header_timeout, without a reply.
"${client[@]}" raw "${unix[@]}" --data 'POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n' --wait-close \
	--limit $((header_timeout + 3)) >"$tmp/ka.json"
echo "daemon_limits: idle keep-alive: $(cat "$tmp/ka.json")"
[ "$(j "$tmp/ka.json" "j['responses']")" -eq 1 ] && [ "$(j "$tmp/ka.json" "j['closed']")" = True ] &&
	[ "$(j "$tmp/ka.json" "j['ms']")" -le $((header_timeout * 1000 + 2000)) ] ||
	fail "idle keep-alive connection: not closed silently at header_timeout ($(cat "$tmp/ka.json"))"

# 3. Framing. Each is a 400 that names the problem, then the connection
# closes (nothing after it is parsed: one response only).
framing() { # WHAT REQUEST REGEX
	"${client[@]}" raw "${unix[@]}" --data "$2" --wait-close --limit 2 >"$tmp/fr.json"
	[ "$(j "$tmp/fr.json" "j['status']")" = 400 ] && [ "$(j "$tmp/fr.json" "j['responses']")" -eq 1 ] &&
		[ "$(j "$tmp/fr.json" "j['closed']")" = True ] && j "$tmp/fr.json" "j['body']" | grep -q "$3" ||
		fail "framing: $1: $(cat "$tmp/fr.json")"
}
smuggled='POST /GetKey HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'
framing "two equal Content-Length headers" \
	'POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}' "more than one Content-Length"
framing "Content-Length 0 then 53, a request smuggled in the body" \
	"POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 53\r\n\r\n$smuggled" "more than one Content-Length"
framing "Content-Length with Transfer-Encoding" \
	'POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' "."
framing "Transfer-Encoding gzip, chunked" \
	"POST /Version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n$smuggled" 'exactly \\"chunked'
framing "a signed Content-Length" 'POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}' "decimal number"
framing "a space before the colon" \
	"POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length : 53\r\n\r\n$smuggled" "no space before the colon"
framing "HEAD with a body" "HEAD /Version HTTP/1.1\r\nHost: x\r\nContent-Length: 53\r\n\r\n$smuggled" "cannot carry a body"
# libevent answers a CONNECT request's malformed header with an error page
# but keeps the connection open (for CONNECT it ignores "Connection: close"):
# the request after it must not be handled.
"${client[@]}" raw "${unix[@]}" --data "CONNECT /Version HTTP/1.1\r\nHost: x\r\nbad line\r\n$smuggled" --wait-close \
	--limit 2 >"$tmp/connect.json"
[ "$(j "$tmp/connect.json" "j['status']")" = 400 ] && ! grep -q '\\"key\\"' "$tmp/connect.json" ||
	fail "framing: a request after a CONNECT's error page was handled: $(cat "$tmp/connect.json")"
# Still allowed: one Content-Length, and chunked alone (the agent accepts it).
"${client[@]}" raw "${unix[@]}" --data 'POST /Version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' \
	>"$tmp/ch.json"
[ "$(j "$tmp/ch.json" "j['status']")" = 200 ] || fail "a chunked body alone: $(cat "$tmp/ch.json")"

# 4. Body flood from uid 65534 on the unix socket; root probes meanwhile.
"${as_nobody[@]}" "${client[@]}" flood "${unix[@]}" --conns 1000 --body 1048576 --hold 2 --pid "$pid" \
	--send-timeout 20 >"$tmp/flood.json" &
att=$!
sleep 0.3
"${client[@]}" probe "${unix[@]}" --count 15 --interval 0.15 >"$tmp/flood-probe.json"
wait "$att"
echo "daemon_limits: body flood: $(cat "$tmp/flood.json")"
grow_kb=$(($(j "$tmp/flood.json" "j['rss_peak_kb']") - $(j "$tmp/flood.json" "j['rss_start_kb']")))
[ "$grow_kb" -le "$bound_kb" ] || fail "body flood: resident memory grew by $grow_kb KiB, bound $bound_kb KiB"
refused="$(j "$tmp/flood.json" "j['statuses'].get('503', 0)")"
[ "$refused" -ge 900 ] || fail "body flood: $refused connections refused with 503, expected at least 900"
j "$tmp/flood.json" "j['sample_bodies']" | grep -q "max_connections_per_peer\|max_buffered_per_peer" ||
	fail "body flood: the 503 bodies do not name the cap"
check_probe "$tmp/flood-probe.json" "body flood"

# 5. Six TCP addresses at once, each within its own caps, together over
# the global ones (one client, the addresses in turn, so that the
# connections overlap): 6 x 40 idle connections (128 may be open), then
# 6 x 3 bodies of 1 MiB (16 MiB may be held; 4 MiB per address).
six=127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7
"${client[@]}" slowloris "${tcp[@]}" --src "$six" --conns 240 --every 10 --duration 1 >"$tmp/gconn.json"
echo "daemon_limits: six addresses, 40 connections each: $(cat "$tmp/gconn.json")"
[ "$(j "$tmp/gconn.json" "j['alive_at_end']")" -le "$max_connections" ] ||
	fail "six addresses: $(j "$tmp/gconn.json" "j['alive_at_end']") connections held open, max_connections $max_connections"
grep -q '(max_connections)' "$tmp/gconn.json" || fail "six addresses: no connection refused by max_connections"
"${client[@]}" flood "${tcp[@]}" --src "$six" --conns 18 --body 1048576 --hold 1 --pid "$pid" --send-timeout 5 \
	>"$tmp/gflood.json"
echo "daemon_limits: six addresses, 3 MiB each: $(cat "$tmp/gflood.json")"
grow_kb=$(($(j "$tmp/gflood.json" "j['rss_peak_kb']") - $(j "$tmp/gflood.json" "j['rss_start_kb']")))
[ "$grow_kb" -le "$bound_kb" ] || fail "six addresses: resident memory grew by $grow_kb KiB, bound $bound_kb KiB"
grep -q '(max_buffered)' "$tmp/gflood.json" || fail "six addresses: no body refused by max_buffered"

# 6. Slowloris from 127.0.0.2 over TCP: a header byte every 0.5 s (the
# inactivity timeout is 60 s); 127.0.0.1 probes meanwhile.
"${client[@]}" slowloris "${tcp[@]}" --src 127.0.0.2 --conns 1100 --every 0.5 --duration 6 --pid "$pid" \
	>"$tmp/slow.json" &
att=$!
sleep 0.5
"${client[@]}" probe "${tcp[@]}" --count 20 --interval 0.2 >"$tmp/slow-probe.json"
wait "$att"
echo "daemon_limits: slowloris: $(cat "$tmp/slow.json")"
check_probe "$tmp/slow-probe.json" "slowloris"
[ "$(j "$tmp/slow.json" "j['alive_at_end']")" -eq 0 ] ||
	fail "slowloris: $(j "$tmp/slow.json" "j['alive_at_end']") trickling connections still open after 6 s"
[ "$(j "$tmp/slow.json" "j['statuses'].get('408', 0)")" -ge 1 ] || fail "slowloris: no 408 seen"
# Cut at header_timeout whatever the pace: 2 s, plus the client's 0.5 s tick
# and a loaded machine's delays (the client's clock starts at connect(),
# maybe before the agent accepts).
[ "$(j "$tmp/slow.json" "j['lifetime_ms_max_by_status'].get('408', 10**9)")" -le $((header_timeout * 1000 + 2500)) ] ||
	fail "slowloris: a connection lived $(j "$tmp/slow.json" "j['lifetime_ms_max_by_status']") ms (header_timeout ${header_timeout} s)"
j "$tmp/slow.json" "j['sample_bodies']" | grep -q "header_timeout" || fail "slowloris: the 408 body does not name header_timeout"

# The agent still serves, and holds no more descriptors than before (every
# connection and record came back).
"${client[@]}" probe "${unix[@]}" --count 5 --interval 0.05 >"$tmp/end-probe.json"
check_probe "$tmp/end-probe.json" "after the attacks"
for _ in $(seq 50); do
	[ "$(ls "/proc/$pid/fd" | wc -l)" -le "$fds_before" ] && break
	sleep 0.1
done
fds_after="$(ls "/proc/$pid/fd" | wc -l)"
[ "$fds_after" -le "$fds_before" ] || fail "descriptors: $fds_before before, $fds_after after"
grep -q "event=deadline" "$tmp/agent.log" || fail "no event=deadline line logged"

# Limits that cannot serve a request are refused at start, naming the values.
printf '[agent]\nsimulator = %s\nmax_body = 4194304\nmax_buffered_per_peer = 1048576\n' "$tmp/sim" >"$tmp/bad.conf"
if "$bin/cvm-agentd" -c "$tmp/bad.conf" --listen "unix:$tmp/bad.sock" 2>"$tmp/err.txt"; then
	fail "max_buffered_per_peer below max_body was accepted"
fi
grep -q "max_buffered_per_peer (1048576) must be at least" "$tmp/err.txt" || fail "bad limits: $(cat "$tmp/err.txt")"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { tail -20 "$tmp/agent.log"; fail "agent exit status $rc"; }
if [ "$failures" -ne 0 ]; then
	grep -v "event=lib\b" "$tmp/agent.log" | tail -5
	echo "daemon_limits: $failures check(s) failed"
	exit 1
fi
echo "daemon_limits: ok"
