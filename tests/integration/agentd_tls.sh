#!/usr/bin/env bash
# cvm-agentd's TLS listener ([tls]; docs/daemons/cvm-agentd.md) over a
# simulated TEE, with Node's tls module as the client (TLS 1.3, no web PKI):
#  - off unless configured;
#  - its certificate is an RA-TLS certificate (dstack profile) for the
#    agent's identity key: SHA-256 of its SPKI is the cvmkit.agent-key
#    event's payload in the runtime event log;
#  - read-only: Info, Version, Attest (of the certificate key, never of
#    caller data) and FreshAttest, bound to this connection's TLS exporter;
#    GetEvidence (the bundle for the caller's nonce, as on the socket);
#    GetKey, GetTlsKey, GetQuote, EmitEvent, Sign and the v1 surface are 404;
#  - its caps: a peer over max_connections_per_peer is refused while another
#    client is served, a request over max_body is refused, a client that
#    never finishes its handshake is cut at handshake_timeout, one that
#    trickles its headers at header_timeout;
#  - SIGHUP renews its certificate;
#  - `cvm cert ratls fetch --require-agent-key` accepts it, and exits 3
#    through a relay that terminates TLS with the agent's own certificate and
#    key; on the simulated SEV-SNP the fresh evidence works too, and
#    --require-agent-key refuses (no register records the key there).
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "agentd_tls: $bin/$t is missing (build it first)"; exit 1; }
done
command -v node >/dev/null || { echo "agentd_tls: SKIP: node is not installed (scripts/setup.sh installs it)"; exit 77; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-agentd-tls.XXXXXX")"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

wait_for() { # wait_for FILE PID LOG
	for _ in $(seq 100); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || { cat "$3"; echo "agentd_tls: the agent exited"; exit 1; }
		sleep 0.1
	done
	cat "$3"
	echo "agentd_tls: $1 did not appear"
	exit 1
}

# 1. Off by default: no [tls] listen, no listener.
"$bin/cvm" sim init "$tmp/sim0" >/dev/null
"$bin/cvm-agentd" --simulator "$tmp/sim0" --listen "unix:$tmp/d0.sock" --tcp 127.0.0.1:0 \
	--port-file "$tmp/port0" >"$tmp/agent0.log" 2>&1 &
pids+=($!)
wait_for "$tmp/port0" "${pids[0]}" "$tmp/agent0.log"
if grep -q 'api=tls' "$tmp/agent0.log"; then
	cat "$tmp/agent0.log"
	echo "agentd_tls: FAIL: a TLS listener started without [tls] listen"
	exit 1
fi
kill -TERM "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true

# 2. On, with small caps.
"$bin/cvm" sim init "$tmp/sim" >/dev/null
printf '{"manifest_version":2,"name":"tls-app","runner":"docker-compose","docker_compose_file":"","public_tcbinfo":false}' \
	>"$tmp/app-compose.json"
cat >"$tmp/agent.conf" <<EOF
[agent]
simulator = $tmp/sim
app_compose = $tmp/app-compose.json
header_timeout = 3
[dstack]
listen = unix:$tmp/dstack.sock
[tls]
listen = 127.0.0.1:0
port_file = $tmp/tls-port
max_connections = 8
max_connections_per_peer = 3
max_body = 1024
handshake_timeout = 1
lifetime_hours = 2
EOF
"$bin/cvm-agentd" -c "$tmp/agent.conf" >"$tmp/agent.log" 2>&1 &
pids+=($!)
wait_for "$tmp/tls-port" "${pids[1]}" "$tmp/agent.log"

cat >"$tmp/check.mjs" <<'EOF'
import tls from "node:tls";
import net from "node:net";
import crypto from "node:crypto";
import fs from "node:fs";

const [port, runtimeLog, out, agentPid] = process.argv.slice(2);
const PORT = Number(port);
const LABEL = "EXPORTER-cvmkit-fresh-attestation-v1";
let failures = 0, passes = 0;
function check(cond, what) {
	if (cond) { passes++; } else { failures++; console.log("FAIL: " + what); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// connect opens a TLS 1.3 connection (no certificate check: the point is to
// look at the RA-TLS certificate ourselves); resolves with the socket.
function connect(localAddress) {
	return new Promise((resolve, reject) => {
		const s = tls.connect({ host: "127.0.0.1", port: PORT, localAddress, rejectUnauthorized: false,
			minVersion: "TLSv1.3", servername: "cvm-agentd" });
		s.setMaxListeners(0);
		s.once("secureConnect", () => resolve(s));
		s.once("error", reject);
		s.once("close", () => reject(new Error("closed before the handshake finished")));
	});
}

// exchange sends one request on `s` and reads one response (Content-Length framed).
function exchange(s, method, path, body) {
	return new Promise((resolve, reject) => {
		const b = Buffer.from(body === undefined ? "" : body);
		let buf = Buffer.alloc(0);
		const onData = (d) => {
			buf = Buffer.concat([buf, d]);
			const i = buf.indexOf("\r\n\r\n");
			if (i < 0) return;
			const head = buf.subarray(0, i).toString("latin1");
			const m = /content-length:\s*(\d+)/i.exec(head);
			const len = m ? Number(m[1]) : 0;
			if (buf.length < i + 4 + len) return;
			s.off("data", onData);
			const text = buf.subarray(i + 4, i + 4 + len).toString("utf8");
			let json;
			try { json = JSON.parse(text); } catch { json = undefined; }
			resolve({ status: Number(head.split(" ")[1]), text, json });
		};
		s.on("data", onData);
		s.once("error", reject);
		// one write: the client's own Nagle must not hold the body back
		s.write(Buffer.concat([Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: agent\r\n` +
			`Content-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n`), b]));
	});
}

const good = await connect();
check(good.getProtocol() === "TLSv1.3", "TLS 1.3");

// the certificate: RA-TLS (dstack profile) for the identity key
const der = good.getPeerCertificate(true).raw;
// as PEM: given DER bytes, Node looks for a PEM block first, and finds the
// PCK certificates inside the quote
const pem = ["-----BEGIN CERTIFICATE-----", ...der.toString("base64").match(/.{1,64}/g),
	"-----END CERTIFICATE-----", ""].join("\n");
const cert = new crypto.X509Certificate(pem);
check(cert.subject.includes("CN=cvm-agentd"), "the certificate is the agent's (CN=cvm-agentd)");
const spki = cert.publicKey.export({ type: "spki", format: "der" });
const spkiHash = crypto.createHash("sha256").update(spki).digest();
const events = fs.readFileSync(runtimeLog, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const agentKey = events.filter((e) => e.event === "cvmkit.agent-key");
check(agentKey.length === 1, "the runtime log has one cvmkit.agent-key event");
check(agentKey.length === 1 && Buffer.from(agentKey[0].payload, "base64").equals(spkiHash),
	"SHA-256(SPKI) of the TLS certificate is the cvmkit.agent-key payload");
const oid = (last) => Buffer.from("2b0601040183e73d01" + last, "hex");
check(der.includes(oid("01")) && der.includes(oid("02")) && der.includes(oid("08")),
	"the certificate carries the RA-TLS 1.1, 1.2 and 1.8 extensions");
// its report data binding: SHA-512("ratls-cert:" || SPKI) is inside the quote
const rd = crypto.createHash("sha512").update(Buffer.concat([Buffer.from("ratls-cert:"), spki])).digest();
check(der.includes(rd), "the quote in the certificate carries SHA-512(\"ratls-cert:\" || SPKI)");
const life = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 1000;
check(life >= 2 * 3600 && life <= 2 * 3600 + 600, `the certificate lives lifetime_hours (2 h), not years (${life} s)`);

// read-only methods
const ver = await exchange(good, "POST", "/Version", "{}");
check(ver.status === 200 && ver.json.version === "0.5.8", "Version over TLS");
const info = await exchange(good, "POST", "/Info", "{}");
check(info.status === 200 && /^[0-9a-f]{40}$/.test(info.json.app_id) && info.json.app_name === "tls-app" &&
	/^[0-9a-f]{64}$/.test(info.json.compose_hash) && /^[0-9a-f]{64}$/.test(info.json.mr_aggregated),
	"Info over TLS: identity and measurement hashes");
check(!("tcb_info" in info.json) && info.json.app_compose === "" && info.json.vm_config === "" &&
	info.json.key_provider_info === "", "Info over TLS: no tcb_info, documents hidden without public_tcbinfo");
const at = await exchange(good, "POST", "/Attest", "{}");
check(at.status === 200 && Buffer.from(at.json.attestation, "hex").includes(rd),
	"Attest over TLS attests the certificate key");
const atRd = await exchange(good, "POST", "/Attest", JSON.stringify({ report_data: "00".repeat(64) }));
check(atRd.status === 400 && /not accepted over TLS/.test(atRd.json.error), "Attest over TLS refuses caller report data");

// FreshAttest: bound to this connection's exporter
const nonce = crypto.randomBytes(32);
const fr = await exchange(good, "POST", "/FreshAttest", JSON.stringify({ nonce: nonce.toString("hex") }));
let fresh = "checked";
{
	const bound = good.exportKeyingMaterial(64, LABEL, nonce);
	const want = crypto.createHash("sha512").update(Buffer.concat([Buffer.from("cvmkit-tls-fresh:"), bound])).digest();
	const va = fr.status === 200 ? Buffer.from(fr.json.attestation, "hex") : Buffer.alloc(0);
	check(fr.status === 200 && va[0] === 0x00, `FreshAttest: a VersionedAttestation V0 (${fr.status} ${fr.text.slice(0, 200)})`);
	check(va.includes(want), "FreshAttest: report data = SHA-512(\"cvmkit-tls-fresh:\" || exporter(nonce))");
	// another connection's exporter differs: the answer binds this connection only
	const other = await connect();
	const otherBound = other.exportKeyingMaterial(64, LABEL, nonce);
	check(!otherBound.equals(bound), "another connection has another exporter value");
	other.destroy();
}
const frBad = await exchange(good, "POST", "/FreshAttest", JSON.stringify({ nonce: "abcd" }));
check(frBad.status === 400 && /32 bytes/.test(frBad.json.error), "FreshAttest: a nonce of the wrong size is refused");

// GetEvidence: the same bundle as on the socket (its report data binds the
// nonce in the evidence domain, never caller data)
const gev = await exchange(good, "POST", "/GetEvidence", JSON.stringify({ nonce: "ab".repeat(32) }));
check(gev.status === 200 && gev.json && gev.json.version === 2 && gev.json.nonce === "ab".repeat(32) &&
	typeof gev.json.quote === "string" && gev.json.quote.length > 0,
	`GetEvidence over TLS answers the bundle for the nonce (${gev.status} ${gev.text.slice(0, 120)})`);

// never over TLS: keys, quotes over caller data, events, signatures, v1
for (const [path, body] of [["/GetKey", { path: "a" }], ["/GetTlsKey", {}], ["/GetQuote", { report_data: "00" }],
	["/EmitEvent", { event: "x", payload: "00" }], ["/Sign", { algorithm: "ed25519", data: "00" }],
	["/v1/GetKey", { domain: "a", algorithm: "ed25519" }],
	["/v0/GetKey", { path: "a" }], ["/prpc/Tappd.DeriveKey", { path: "a" }]]) {
	const r = await exchange(good, "POST", path, JSON.stringify(body));
	check(r.status === 404 && r.json && typeof r.json.error === "string" && !("key" in r.json),
		`${path} over TLS is 404 (${r.status} ${r.text.slice(0, 120)})`);
}

// keep-alive exchanges are not held back by Nagle's algorithm against the
// client's delayed ACK (about 40 ms each when the reply's TLS records leave
// in separate segments without TCP_NODELAY)
const lat = [];
for (let i = 0; i < 11; i++) {
	const t0 = Date.now();
	await exchange(good, "POST", "/Version", "{}");
	lat.push(Date.now() - t0);
}
lat.sort((a, b) => a - b);
check(lat[5] < 25, `a keep-alive exchange over TLS takes milliseconds, not a delayed ACK (median ${lat[5]} ms)`);

// an oversized request is refused (max_body 1024)
const huge = await exchange(good, "POST", "/Version", JSON.stringify({ pad: "x".repeat(2048) }));
check(huge.status === 413, `a request over max_body is refused (${huge.status})`);
good.destroy();

// a peer over max_connections_per_peer (3) is refused while another is served
const flood = [];
for (let i = 0; i < 3; i++) flood.push(await connect("127.0.0.2"));
let refused = false;
try {
	const s = await connect("127.0.0.2");
	const r = await Promise.race([exchange(s, "POST", "/Version", "{}"), sleep(3000).then(() => null)]);
	refused = r === null;
	s.destroy();
} catch {
	refused = true;
}
check(refused, "a 4th connection from one peer is refused");
const other = await connect("127.0.0.1");
const ov = await exchange(other, "POST", "/Version", "{}");
check(ov.status === 200, "another client is served meanwhile");
other.destroy();
for (const s of flood) s.destroy();

// SIGHUP renews the certificate: a new one for the same key, while an open
// connection keeps working
const before = await connect();
await sleep(1100); // a later notBefore second
process.kill(Number(agentPid), "SIGHUP");
await sleep(500);
const after = await connect();
const derAfter = after.getPeerCertificate(true).raw;
check(!derAfter.equals(der), "SIGHUP: a new certificate");
check(derAfter.includes(spki), "SIGHUP: for the same identity key");
const vb = await exchange(before, "POST", "/Version", "{}");
check(vb.status === 200, "SIGHUP: a connection opened before is still served");
before.destroy();
after.destroy();

// a TLS client that trickles its headers is cut at header_timeout (3 s), as
// over plain sockets
const slow = await connect();
const t1 = Date.now();
const slowClosed = await new Promise((resolve) => {
	slow.on("close", () => resolve(Date.now() - t1));
	slow.write("POST /Version HTTP/1.1\r\nHost: agent\r\n");
	const tick = setInterval(() => { if (!slow.destroyed) slow.write("X-Slow: 1\r\n"); }, 500);
	setTimeout(() => { clearInterval(tick); slow.destroy(); resolve(-1); }, 9000);
	slow.on("close", () => clearInterval(tick));
});
check(slowClosed > 2500 && slowClosed < 6000, `a trickling TLS client is cut at header_timeout (${slowClosed} ms)`);

// a client that never finishes its handshake is cut at handshake_timeout (1 s)
const t0 = Date.now();
const closedAfter = await new Promise((resolve) => {
	const s = net.connect(PORT, "127.0.0.1");
	s.on("error", () => {});
	s.on("close", () => resolve(Date.now() - t0));
	setTimeout(() => { s.destroy(); resolve(-1); }, 8000);
});
check(closedAfter > 0 && closedAfter < 4000, `a silent client is cut by the handshake deadline (${closedAfter} ms)`);

fs.writeFileSync(out + ".der", der);
fs.writeFileSync(out, JSON.stringify({ passes, failures, fresh, cert: der.toString("base64") }));
console.log(`agentd_tls: ${passes} checks passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
EOF
node "$tmp/check.mjs" "$(cat "$tmp/tls-port")" "$tmp/sim/agent/runtime_events.log" "$tmp/result.json" "${pids[1]}" || {
	echo "--- agent log"; tail -n 30 "$tmp/agent.log"; exit 1
}
# The certificate as `cvm cert ratls show` reads it:
# dstack profile, TDX, the report data binds its key.
if "$bin/cvm" cert ratls show "$tmp/result.json.der" --json >"$tmp/show.json" 2>"$tmp/show.err"; then
	node -e '
const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (v.profile !== "dstack" || v.tee !== "tdx" || v.binding !== true) {
	console.log("agentd_tls: FAIL: cvm cert ratls show: " + JSON.stringify({ profile: v.profile, tee: v.tee, binding: v.binding }));
	process.exit(1);
}' "$tmp/show.json"
else
	cat "$tmp/show.err"
	echo "agentd_tls: FAIL: cvm cert ratls show cannot read the listener's certificate"
	exit 1
fi

# The fetch command verifies the peer and the fresh attestation end to end,
# with the certificate key required to be the one RTMR3 recorded.
# The simulator's whole collateral (tdx/ and snp/), anchored in its root CA
# and its ARK.
col="$tmp/sim/collateral"
roots=(--root "$col/tdx/intel_sgx_root_ca.der" --root "$col/snp/ark.pem")
fetch_ok=0
rc=0
"$bin/cvm" cert ratls fetch --collateral "$col" "${roots[@]}" --require-agent-key \
	"127.0.0.1:$(cat "$tmp/tls-port")" >"$tmp/fetch.out" 2>"$tmp/fetch.err" || rc=$?
if [ "$rc" -ne 0 ]; then
	cat "$tmp/fetch.out" "$tmp/fetch.err"
	echo "agentd_tls: FAIL: cvm cert ratls fetch --require-agent-key exited $rc"
	exit 1
else
	fetch_ok=1
	for want in "certificate: dstack profile, tdx evidence, the agent's key" \
		"fresh evidence: bound to this TLS connection" "verdict: accepted"; do
		grep -qF "$want" "$tmp/fetch.out" || {
			cat "$tmp/fetch.out"
			echo "agentd_tls: FAIL: cvm cert ratls fetch did not say: $want"
			exit 1
		}
	done
	# Through a relay that terminates TLS with the agent's own certificate and
	# identity key: the fresh evidence is bound to the relay's session to the
	# agent, not to the client's, and fetch says so (exit 3).
	command -v python3 >/dev/null || {
		echo "agentd_tls: FAIL: the relay case needs python3 (scripts/setup.sh installs it)"
		exit 1
	}
	{
		timeout 5 openssl s_client -connect "127.0.0.1:$(cat "$tmp/tls-port")" -tls1_3 </dev/null 2>/dev/null |
			openssl x509 >"$tmp/agent-cert.pem"
		python3 "$(dirname "$0")/ratls_relay_proxy.py" "$tmp/agent-cert.pem" "$tmp/sim/agent/cvm-agentd-identity.pem" \
			"$(cat "$tmp/tls-port")" "$tmp/relay-port" 2>"$tmp/relay.log" &
		pids+=($!)
		wait_for "$tmp/relay-port" "${pids[2]}" "$tmp/relay.log"
		rc=0
		"$bin/cvm" cert ratls fetch --collateral "$col" "${roots[@]}" --require-agent-key \
			"127.0.0.1:$(cat "$tmp/relay-port")" >"$tmp/relay.out" 2>"$tmp/relay.err" || rc=$?
		if [ "$rc" -ne 3 ] || ! grep -q "bound to another TLS connection" "$tmp/relay.err"; then
			cat "$tmp/relay.out" "$tmp/relay.err"
			echo "agentd_tls: FAIL: fetch through a relay exited $rc, want 3 and the relay line"
			exit 1
		fi
	}
fi

# 3. SEV-SNP: the same listener on the simulated SNP; the fresh evidence is
# bound as on TDX, but no register records the identity key, so a client
# that requires the system's key refuses it (exit 3) and says why.
if [ "$fetch_ok" -eq 1 ]; then
	"$bin/cvm" sim init "$tmp/snp" >/dev/null
	"$bin/cvm-agentd" --simulator "$tmp/snp" --platform snp --listen "unix:$tmp/snp.sock" --tls 127.0.0.1:0 \
		--tls-port-file "$tmp/snp-port" >"$tmp/agent-snp.log" 2>&1 &
	pids+=($!)
	wait_for "$tmp/snp-port" "$!" "$tmp/agent-snp.log"
	mkdir "$tmp/col-snp"
	ln -s "$tmp/snp/collateral/snp" "$tmp/col-snp/snp"
	"$bin/cvm" cert ratls fetch --collateral "$tmp/col-snp" --root "$tmp/snp/collateral/snp/ark.pem" \
		"127.0.0.1:$(cat "$tmp/snp-port")" >"$tmp/snp.out" 2>"$tmp/snp.err" || {
		cat "$tmp/snp.out" "$tmp/snp.err" "$tmp/agent-snp.log"
		echo "agentd_tls: FAIL: cvm cert ratls fetch against the SNP agent"
		exit 1
	}
	grep -q "fresh evidence: bound to this TLS connection" "$tmp/snp.out" || {
		cat "$tmp/snp.out"
		echo "agentd_tls: FAIL: SNP: no fresh evidence"
		exit 1
	}
	rc=0
	"$bin/cvm" cert ratls fetch --collateral "$tmp/col-snp" --root "$tmp/snp/collateral/snp/ark.pem" \
		--require-agent-key "127.0.0.1:$(cat "$tmp/snp-port")" >"$tmp/snp2.out" 2>"$tmp/snp2.err" || rc=$?
	if [ "$rc" -ne 3 ] || ! grep -q "not the one the system recorded" "$tmp/snp2.err"; then
		cat "$tmp/snp2.out" "$tmp/snp2.err"
		echo "agentd_tls: FAIL: SNP with --require-agent-key exited $rc, want 3 (no register records the key)"
		exit 1
	fi
fi
echo "agentd_tls: ok"
