#!/usr/bin/env bash
# cvm-agentd against bad HTTP input: bodies over the cap (with Content-Length
# and chunked), oversized headers, garbage request lines, bad framing, slow
# and half-closed clients, idle connection floods, pipelining. Each gets a
# clear JSON error (or a timely close), the agent keeps serving, and its
# file descriptors return to where they were (nothing leaks; under the ASan
# build, a clean exit also means no leak report).
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "agentd_badinput: $bin/$t is missing (build it first)"; exit 1; }
done
command -v node >/dev/null || { echo "agentd_badinput: SKIP: node is not installed (scripts/setup.sh installs it)"; exit 77; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-agentd-bad.XXXXXX")"
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

"$bin/cvm" sim init "$tmp/sim" >/dev/null
cat >"$tmp/agent.conf" <<EOF
; cvm-agentd test configuration
[agent]
simulator = $tmp/sim
timeout = 2
max_body = 4096
max_connections_per_peer = 256 ; section 9 opens 200 idle connections from this uid
log_level = info

[dstack]
listen = unix:$tmp/dstack.sock
mode = 0600
EOF
"$bin/cvm-agentd" -c "$tmp/agent.conf" >"$tmp/agent.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/dstack.sock" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/agent.log"; echo "agentd_badinput: the agent exited"; exit 1; }
	sleep 0.1
done
[ -S "$tmp/dstack.sock" ] || { cat "$tmp/agent.log"; echo "agentd_badinput: no socket"; exit 1; }
fds_before="$(ls "/proc/$pid/fd" | wc -l)"

cat >"$tmp/bad.mjs" <<'EOF'
import net from "node:net";

const sock = process.argv[2];
let failures = 0, passes = 0;
function check(cond, what) {
	if (cond) { passes++; } else { failures++; console.log("FAIL: " + what); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sends `parts` (with pauses), collects everything until the server closes
// or `limitMs` passes. Returns {raw, closed, ms}.
function exchange(parts, { limitMs = 8000, halfClose = false, pauseMs = 0 } = {}) {
	return new Promise((resolve) => {
		const t0 = Date.now();
		const c = net.createConnection(sock);
		const chunks = [];
		let done = false;
		const finish = (closed) => {
			if (done) return;
			done = true;
			c.destroy();
			resolve({ raw: Buffer.concat(chunks), closed, ms: Date.now() - t0 });
		};
		c.on("data", (d) => chunks.push(d));
		c.on("error", () => finish(true));
		c.on("close", () => finish(true));
		c.on("connect", async () => {
			for (const p of parts) {
				if (done) return;
				c.write(p);
				if (pauseMs) await sleep(pauseMs);
			}
			if (halfClose) c.end();
		});
		setTimeout(() => finish(false), limitMs);
	});
}
function responses(raw) {
	const out = [];
	let s = raw;
	while (s.length > 0) {
		const i = s.indexOf("\r\n\r\n");
		if (i < 0) break;
		const head = s.subarray(0, i).toString("latin1");
		const m = /content-length: *(\d+)/i.exec(head);
		const n = m ? Number(m[1]) : 0;
		const body = s.subarray(i + 4, i + 4 + n);
		let json;
		try { json = JSON.parse(body.toString()); } catch { json = undefined; }
		out.push({ status: Number(head.split(" ")[1]), head, body, json, hasLength: !!m });
		s = s.subarray(i + 4 + n);
	}
	return out;
}
function jsonError(r, status, re, what) {
	check(r !== undefined, `${what}: a response`);
	if (r === undefined) return;
	check(r.status === status, `${what}: status ${r.status}, expected ${status}`);
	check(r.hasLength && /application\/json/.test(r.head), `${what}: JSON with Content-Length`);
	check(r.json && typeof r.json.error === "string" && re.test(r.json.error), `${what}: error message (${r.body})`);
}
const ok = async (what) => {
	const r = responses((await exchange(["POST /Version HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"])).raw);
	check(r.length === 1 && r[0].status === 200 && r[0].json.version, `still serving after ${what}`);
};

// 1. Body over max_body with Content-Length: 413, then closed.
let x = await exchange([`POST /GetKey HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8000\r\n\r\n`,
	"{" + " ".repeat(7998) + "}"]);
jsonError(responses(x.raw)[0], 413, /at most 4096 bytes/, "oversized body");
check(x.closed, "oversized body: connection closed");
await ok("an oversized body");

// 2. The same, chunked.
const chunk = "a".repeat(3000);
x = await exchange([`POST /GetKey HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n` +
	`${(3000).toString(16)}\r\n${chunk}\r\n${(3000).toString(16)}\r\n${chunk}\r\n0\r\n\r\n`]);
jsonError(responses(x.raw)[0], 413, /too large/, "oversized chunked body");
await ok("an oversized chunked body");

// 3. A chunked body under the cap is read in full and handled.
const small = JSON.stringify({ report_data: "0102" });
x = await exchange([`POST /GetQuote HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`,
	`${small.length.toString(16)}\r\n${small}\r\n0\r\n\r\n`]);
check(responses(x.raw)[0]?.status === 200, "small chunked body: 200");

// 4. Headers over 16 KiB: 400.
x = await exchange([`POST /Version HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20000)}\r\n\r\n`]);
jsonError(responses(x.raw)[0], 400, /malformed HTTP request/, "oversized headers");
await ok("oversized headers");

// 5. Garbage, a bad Content-Length, a bad version.
for (const [req, what] of [["\x00\x01\x02garbage\r\n\r\n", "binary garbage"],
	["POST /Version HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "bad Content-Length"],
	["POST /Version HTTP/9.9\r\n\r\n", "bad HTTP version"]]) {
	x = await exchange([req]);
	jsonError(responses(x.raw)[0], 400, /malformed/, what);
}
x = await exchange(["FOO /Version HTTP/1.1\r\n\r\n"]);
jsonError(responses(x.raw)[0], 501, /not implemented/, "unknown HTTP method");
await ok("garbage");

// 6. A NUL byte in the path (percent-encoded): 400 JSON from the agent.
x = await exchange(["POST /Get%00Key HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"]);
jsonError(responses(x.raw)[0], 400, /NUL/, "NUL in the path");

// 7. A slow client (headers never finished) is cut off by the 2 s deadline.
x = await exchange(["POST /Version HTTP/1.1\r\n", "Host: x\r\n"], { pauseMs: 300 });
check(x.closed && x.ms < 6000, `slow client closed by the deadline (${x.ms} ms)`);

// 8. Half-closed: a partial request, then FIN. The agent closes too.
x = await exchange(["POST /GetKey HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pa"], { halfClose: true });
check(x.closed && x.ms < 6000, `half-closed client: connection closed (${x.ms} ms)`);
await ok("half-closed clients");

// 9. 200 idle connections at once; a real request still works; all are closed by the deadline.
const idle = [];
for (let i = 0; i < 200; i++) idle.push(exchange([], { limitMs: 8000 }));
await sleep(200);
await ok("200 idle connections");
const idleDone = await Promise.all(idle);
check(idleDone.every((r) => r.closed), "idle connections closed by the deadline");

// 10. Keep-alive: 50 requests on one connection, and two pipelined in one write.
const ka = [];
for (let i = 0; i < 50; i++) ka.push(`POST /GetKey HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"path":"${String(i).padStart(2, "0")}"}`);
x = await exchange([ka.join("")], { limitMs: 3000 });
const kr = responses(x.raw);
check(kr.length === 50 && kr.every((r) => r.status === 200 && /^[0-9a-f]{64}$/.test(r.json.key)),
	`50 pipelined keep-alive requests answered (${kr.length})`);
check(new Set(kr.map((r) => r.json.key)).size === 50, "50 distinct paths, 50 distinct keys");

// 11. Junk after a good request on the same connection: the good one is answered, then 400.
x = await exchange(["POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nNOT HTTP AT ALL\r\n\r\n"]);
const jr = responses(x.raw);
check(jr.length === 2 && jr[0].status === 200 && jr[1].status === 400 && jr[1].json, "good request then junk");

console.log(`${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
EOF
node "$tmp/bad.mjs" "$tmp/dstack.sock"

# Nothing leaks: once the deadlines passed, the agent holds the descriptors it
# started with.
sleep 3
fds_after="$(ls "/proc/$pid/fd" | wc -l)"
[ "$fds_after" -le "$fds_before" ] || { echo "agentd_badinput: fds $fds_before -> $fds_after"; exit 1; }
grep -q "event=request_rejected" "$tmp/agent.log" || { echo "agentd_badinput: no rejection logged"; exit 1; }

# Config errors name the line; non-loopback TCP is refused.
printf '[agent]\nsimulator = %s\nbogus = 1\n' "$tmp/sim" >"$tmp/bad.conf"
if "$bin/cvm-agentd" -c "$tmp/bad.conf" 2>"$tmp/err.txt"; then
	echo "agentd_badinput: unknown config key accepted"
	exit 1
fi
grep -q "line 3: unknown key \[agent\] bogus" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
printf '[agent]\ntimeout = 0\n' >"$tmp/bad2.conf"
if "$bin/cvm-agentd" -c "$tmp/bad2.conf" 2>"$tmp/err.txt"; then
	echo "agentd_badinput: timeout 0 accepted"
	exit 1
fi
grep -q "line 2" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
if "$bin/cvm-agentd" --simulator "$tmp/sim" --listen "unix:$tmp/x.sock" --tcp 0.0.0.0:0 2>"$tmp/err.txt"; then
	echo "agentd_badinput: a non-loopback TCP listener was opened"
	exit 1
fi
grep -q "not a loopback address" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
# A second agent on a live socket is refused; the first keeps it.
if "$bin/cvm-agentd" --simulator "$tmp/sim" --listen "unix:$tmp/dstack.sock" 2>"$tmp/err.txt"; then
	echo "agentd_badinput: a live socket was taken over"
	exit 1
fi
grep -q "Address already in use" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { tail -20 "$tmp/agent.log"; echo "agentd_badinput: agent exit status $rc"; exit 1; }
echo "agentd_badinput: ok"
