#!/usr/bin/env bash
# cvm-agentd over a simulated TEE: the dstack v0 API and the Tappd API as
# spec §1.2-1.5 describe them, checked with raw HTTP/1.1 over the unix
# sockets (Node's net module, no client library), and the quote checked with
# `cvm quote verify` against the simulator's root with report_data pinned.
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "agentd_api: $bin/$t is missing (build it first)"; exit 1; }
done
command -v node >/dev/null || { echo "agentd_api: SKIP: node is not installed (scripts/setup.sh installs it)"; exit 77; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-agentd-api.XXXXXX")"
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
# A compose file with a non-ASCII name: every reply must still be ASCII JSON.
printf '{"manifest_version":2,"name":"caf\xc3\xa9-app","runner":"docker-compose","docker_compose_file":""}' \
	>"$tmp/app-compose.json"
printf '{"vm_config":"{\\"os_image_hash\\":\\"%s\\",\\"cpu_count\\":1}"}' \
	"$(printf 'ab%.0s' $(seq 32))" >"$tmp/sys-config.json"

"$bin/cvm-agentd" --simulator "$tmp/sim" --listen "unix:$tmp/dstack.sock" --tappd "unix:$tmp/tappd.sock" \
	--tcp 127.0.0.1:0 --port-file "$tmp/port" --app-compose "$tmp/app-compose.json" \
	--sys-config "$tmp/sys-config.json" --mode 0660 >"$tmp/agent.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/tappd.sock" ] && [ -s "$tmp/port" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/agent.log"; echo "agentd_api: the agent exited"; exit 1; }
	sleep 0.1
done
[ -S "$tmp/dstack.sock" ] || { cat "$tmp/agent.log"; echo "agentd_api: no socket"; exit 1; }
mode="$(stat -c %a "$tmp/dstack.sock")"
[ "$mode" = 660 ] || { echo "agentd_api: socket mode $mode, expected 660"; exit 1; }

cat >"$tmp/check.mjs" <<'EOF'
import net from "node:net";
import crypto from "node:crypto";
import fs from "node:fs";

const [dstack, tappd, port, out] = process.argv.slice(2);
let failures = 0, passes = 0;
function check(cond, what) {
	if (cond) { passes++; } else { failures++; console.log("FAIL: " + what); }
}

// One raw HTTP/1.1 exchange on a fresh connection; returns {status, headers, raw, json}.
function request(sock, method, path, body, headers = {}) {
	return new Promise((resolve, reject) => {
		const c = typeof sock === "number" ? net.createConnection(sock, "127.0.0.1") : net.createConnection(sock);
		const b = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
		let h = `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`;
		for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
		if (method !== "GET") h += `Content-Length: ${b.length}\r\n`;
		c.write(Buffer.concat([Buffer.from(h + "\r\n"), b]));
		const chunks = [];
		c.on("data", (d) => chunks.push(d));
		c.on("error", reject);
		c.on("end", () => {
			const raw = Buffer.concat(chunks);
			const i = raw.indexOf("\r\n\r\n");
			const head = raw.subarray(0, i).toString("latin1").split("\r\n");
			const status = Number(head[0].split(" ")[1]);
			const hdrs = {};
			for (const l of head.slice(1)) { const j = l.indexOf(":"); hdrs[l.slice(0, j).toLowerCase()] = l.slice(j + 1).trim(); }
			const bodyBuf = raw.subarray(i + 4);
			let json;
			try { json = JSON.parse(bodyBuf.toString("utf8")); } catch { json = undefined; }
			resolve({ status, headers: hdrs, body: bodyBuf, json });
		});
	});
}
const post = (path, obj, sock = dstack) =>
	request(sock, "POST", path, JSON.stringify(obj), { "Content-Type": "application/json" });

function wellFormed(r, what) {
	check(r.headers["content-length"] !== undefined && Number(r.headers["content-length"]) === r.body.length,
		`${what}: Content-Length present and exact`);
	check(r.headers["transfer-encoding"] === undefined, `${what}: not chunked`);
	check(r.body.every((x) => x < 0x80), `${what}: ASCII-only body`);
	check(r.json !== undefined || r.body.toString() === "null", `${what}: JSON body`);
	check((r.headers["content-type"] || "").startsWith("application/json"), `${what}: JSON content type`);
}
function replay(events, imr) {
	let mr = Buffer.alloc(48);
	for (const e of events) {
		if (e.imr !== imr) continue;
		let d = Buffer.from(e.digest, "hex");
		if (d.length < 48) d = Buffer.concat([d, Buffer.alloc(48 - d.length)]);
		mr = crypto.createHash("sha384").update(Buffer.concat([mr, d])).digest();
	}
	return mr.toString("hex");
}

// Version, on every mount and on TCP
for (const p of ["/Version", "/v0/Version"]) {
	const r = await post(p, {});
	wellFormed(r, p);
	check(r.status === 200 && r.json.version === "0.5.8", `${p}: version 0.5.8`);
}
const tcp = await post("/Version", {}, Number(port));
check(tcp.status === 200 && tcp.json.version, "Version over TCP");

// GetKey: deterministic, k256 = secp256k1, ed25519 shares the key bytes (dstack's rule)
const k1 = await post("/GetKey", { path: "/a", purpose: "p", algorithm: "secp256k1" });
const k2 = await post("/GetKey", { path: "/a", purpose: "p", algorithm: "k256" });
const k3 = await post("/GetKey", { path: "/b", purpose: "p", algorithm: "secp256k1" });
const k4 = await post("/GetKey", { path: "/a", purpose: "p", algorithm: "ed25519" });
wellFormed(k1, "GetKey");
check(k1.status === 200 && /^[0-9a-f]{64}$/.test(k1.json.key), "GetKey: 32-byte hex key");
check(k1.json.key === k2.json.key, "GetKey: k256 = secp256k1");
check(k1.json.key !== k3.json.key, "GetKey: path changes the key");
check(k4.json.key === k1.json.key, "GetKey: ed25519 reuses the key bytes (dstack compatibility)");
check(k1.json.signature_chain.length === 2 && /^[0-9a-f]{130}$/.test(k1.json.signature_chain[0]),
	"GetKey: chain[0] is a 65-byte signature");
const kp = await post("/GetKey", { path: "/a", algorithm: "secp256k1_prehashed" });
check(kp.status === 400 && kp.json.error === "Unsupported algorithm", "GetKey: prehashed refused");

// GetQuote: padding, report data in the quote, event log replays to RTMR3
const rq = await post("/GetQuote", { report_data: "0x68656c6c6f" });
wellFormed(rq, "GetQuote");
const quote = Buffer.from(rq.json.quote, "hex");
const rd = "68656c6c6f" + "00".repeat(59);
check(rq.json.report_data === rd, "GetQuote: report_data right-padded");
check(quote.subarray(568, 632).toString("hex") === rd, "GetQuote: REPORTDATA in the quote");
check(typeof rq.json.event_log === "string", "GetQuote: event_log is a string");
let events = JSON.parse(rq.json.event_log);
check(events.length >= 7 && events.every((e) => e.digest.length === 96), "GetQuote: every event keeps its digest");
check(replay(events, 3) === quote.subarray(520, 568).toString("hex"), "GetQuote: event log replays to RTMR3");
check(rq.json.vm_config.includes("os_image_hash"), "GetQuote: vm_config from sys-config");
fs.writeFileSync(out + "/quote.bin", quote);
const long = await post("/GetQuote", { report_data: "00".repeat(65) });
check(long.status === 400 && long.json.error === "Report data is too long", "GetQuote: 65 bytes refused");

// GET with a query, ?json without Content-Type, and the same answers
const g = await request(dstack, "GET", "/GetQuote?report_data=0102", undefined);
check(g.status === 200 && g.json.report_data.startsWith("0102"), "GET /GetQuote?report_data=");
const j = await request(dstack, "POST", "/GetQuote?json", '{"report_data":"03"}');
check(j.status === 200 && j.json.report_data.startsWith("03"), "POST ?json without Content-Type");

// EmitEvent: appended with its digest, RTMR3 follows, one lock
const em = await post("/EmitEvent", { event: "test-event", payload: "deadbeef" });
wellFormed(em, "EmitEvent");
check(em.status === 200 && em.body.toString() === "null", "EmitEvent: 200 null");
const rq2 = await post("/GetQuote", { report_data: "" });
const ev2 = JSON.parse(rq2.json.event_log);
const last = ev2[ev2.length - 1];
const want = crypto.createHash("sha384").update(Buffer.concat([Buffer.from([1, 0, 0, 8]), Buffer.from(":test-event:"),
	Buffer.from("deadbeef", "hex")])).digest("hex");
check(last.event === "test-event" && last.event_payload === "deadbeef" && last.digest === want,
	"EmitEvent: the event and its V1 digest are in the log");
check(replay(ev2, 3) === Buffer.from(rq2.json.quote, "hex").subarray(520, 568).toString("hex"),
	"EmitEvent: RTMR3 replays after the event");
for (const [name, why] of [["", "empty"], ["a:b", "colon"], ["app-id", "reserved"], ["x".repeat(257), "too long"]]) {
	const r = await post("/EmitEvent", { event: name, payload: "" });
	check(r.status === 400 && typeof r.json.error === "string", `EmitEvent: ${why} name refused`);
}

// Attest: VersionedAttestation V0 around the quote
const at = await post("/Attest", { report_data: "aa" });
const att = Buffer.from(at.json.attestation, "hex");
check(at.status === 200 && att[0] === 0 && att[1] === 0, "Attest: V0, DstackTdx");
check(att.indexOf(Buffer.from("aa" + "00".repeat(63), "hex")) > 0, "Attest: report_data inside");

// Info and tcb_info
const info = await post("/Info", {});
wellFormed(info, "Info");
const tcb = JSON.parse(info.json.tcb_info);
check(/^[0-9a-f]{40}$/.test(info.json.app_id) && /^[0-9a-f]{40}$/.test(info.json.instance_id), "Info: ids");
check(info.json.app_name === "café-app", "Info: app_name decoded from \\u escapes");
check(info.json.device_id === crypto.createHash("sha256").update("").digest("hex"), "Info: device_id = sha256('')");
check(tcb.rtmr3 === replay(tcb.event_log, 3), "Info: tcb_info RTMR3 = replay of its event log");
check(tcb.app_compose.includes("café-app") && tcb.compose_hash === info.json.compose_hash, "Info: app_compose, compose_hash");
check(info.json.compose_hash === crypto.createHash("sha256").update(fs.readFileSync(out + "/app-compose.json")).digest("hex"),
	"Info: compose_hash = sha256(app-compose.json bytes)");
check(info.json.os_image_hash === "ab".repeat(32), "Info: os_image_hash from vm_config");
check(JSON.parse(info.json.key_provider_info).name === "local", "Info: key_provider_info");

// Sign and Verify round trips
for (const alg of ["ed25519", "secp256k1", "secp256k1_prehashed"]) {
	const data = alg === "secp256k1_prehashed" ? "11".repeat(32) : "68656c6c6f";
	const s = await post("/Sign", { algorithm: alg, data });
	check(s.status === 200 && s.json.signature_chain.length === 3, `Sign ${alg}`);
	const v = await post("/Verify", { algorithm: alg, data, signature: s.json.signature, public_key: s.json.public_key });
	check(v.status === 200 && v.json.valid === true, `Verify ${alg}: valid`);
	const w = await post("/Verify", { algorithm: alg, data: alg === "secp256k1_prehashed" ? "22".repeat(32) : "00",
		signature: s.json.signature, public_key: s.json.public_key });
	check(w.status === 200 && w.json.valid === false, `Verify ${alg}: wrong data is invalid`);
}
const sr = await post("/Sign", { algorithm: "rsa", data: "00" });
check(sr.status === 400 && sr.json.error === "Unsupported algorithm", "Sign rsa refused");
const sp = await post("/Sign", { algorithm: "secp256k1_prehashed", data: "00" });
check(sp.status === 400 && /32-byte digest/.test(sp.json.error), "Sign prehashed length");

// GetTlsKey with IP alt names and RA-TLS
const tk = await post("/GetTlsKey", { subject: "svc", alt_names: ["127.0.0.1", "svc.local"], usage_ra_tls: true,
	usage_server_auth: true });
check(tk.status === 200 && tk.json.key.startsWith("-----BEGIN PRIVATE KEY-----") && tk.json.certificate_chain.length >= 2,
	"GetTlsKey: key and chain");
const cert = new crypto.X509Certificate(tk.json.certificate_chain[0]);
check(cert.subjectAltName.includes("IP Address:127.0.0.1") && cert.subjectAltName.includes("DNS:svc.local"), "GetTlsKey: SANs");
check(cert.checkIssued(new crypto.X509Certificate(tk.json.certificate_chain[1])), "GetTlsKey: issued by the app CA");
check(crypto.createPublicKey(tk.json.key).equals(cert.publicKey), "GetTlsKey: key matches the certificate");
// valid for hours (cert_lifetime_hours, default 12), not dstack's years
const life = (Date.parse(cert.validTo) - Date.now()) / 3600e3;
check(life > 11 && life <= 12.1, `GetTlsKey: valid for 12 hours without not_after (${life.toFixed(2)} h left)`);
const tb = await post("/GetTlsKey", { not_before: 10, not_after: 5 });
check(tb.status === 400, "GetTlsKey: not_before >= not_after refused");

// GetEvidence
const evd = await post("/GetEvidence", { nonce: "00112233445566778899" });
check(evd.status === 200 && evd.json.version === 2 && evd.json.simulated === true &&
	Buffer.from(evd.json.quote, "hex").subarray(568, 578).toString("hex") === "00112233445566778899" &&
	Array.isArray(evd.json.event_log), "GetEvidence: bundle over the nonce");
const en = await post("/GetEvidence", { nonce: "0011" });
check(en.status === 400, "GetEvidence: short nonce refused");

// Tappd on its own socket
const td = await post("/prpc/Tappd.TdxQuote", { report_data: "68656c6c6f" }, tappd);
const h = crypto.createHash("sha512").update("app-data:hello").digest("hex");
check(td.status === 200 && Buffer.from(td.json.quote, "hex").subarray(568, 632).toString("hex") === h &&
	td.json.hash_algorithm === "sha512" && td.json.prefix === "app-data", "Tappd.TdxQuote: sha512(app-data:...)");
// The reply names the prefix the report data was hashed with (issue 9: it
// said "app-data" whatever the prefix was).
const tp = await post("/prpc/Tappd.TdxQuote", { report_data: "68656c6c6f", hash_algorithm: "sha256",
	prefix: "my-prefix" }, tappd);
const hp = crypto.createHash("sha256").update("my-prefix:hello").digest("hex") + "00".repeat(32);
check(tp.status === 200 && Buffer.from(tp.json.quote, "hex").subarray(568, 632).toString("hex") === hp,
	"Tappd.TdxQuote: sha256(my-prefix:...) in the quote");
check(tp.json.prefix === "my-prefix", `Tappd.TdxQuote: the reply's prefix is the one used, got ${tp.json.prefix}`);
const tkp = await post("/prpc/Tappd.TdxQuote", { report_data: "68656c6c6f", hash_algorithm: "keccak256",
	prefix: "p2" }, tappd);
check(tkp.status === 200 && tkp.json.prefix === "p2" && tkp.json.hash_algorithm === "keccak256",
	"Tappd.TdxQuote: keccak256 with a prefix names it");
const tr = await post("/prpc/RawQuote", { report_data: "ab".repeat(64) }, tappd);
check(tr.status === 200 && tr.json.prefix === "", "Tappd.RawQuote without the prefix");
const dk = await post("/prpc/Tappd.DeriveKey", { path: "/k", subject: "s" }, tappd);
const dk2 = await post("/prpc/Tappd.DeriveKey", { path: "/k", subject: "s" }, tappd);
check(dk.status === 200 && dk.json.key === dk2.json.key, "Tappd.DeriveKey: deterministic key");
const ti = await post("/prpc/Tappd.Info", {}, tappd);
check(ti.status === 200 && ti.json.app_id === info.json.app_id, "Tappd.Info");
const tn = await post("/GetKey", {}, tappd);
check(tn.status === 404, "Tappd socket: no DstackGuest at /");

// Errors: status and JSON message
const cases = [
	[await post("/Nope", {}), 400, /^Service not found: Nope$/],
	[await post("/a/b", {}), 404, /Not found/],
	[await request(dstack, "PUT", "/Info", "{}"), 405, /not allowed/],
	[await request(dstack, "POST", "/GetKey", "{bad json", { "Content-Type": "application/json" }), 400, /not valid JSON/],
	[await post("/GetKey", { path: 7 }), 400, /expected a string/],
	[await post("/GetQuote", { report_data: "abc" }), 400, /hex/],
	[await post("/GetQuote", { report_data: "zz" }), 400, /hex/],
	[await request(dstack, "POST", "/GetKey", "[1,2]", { "Content-Type": "application/json" }), 400, /JSON object/],
	[await request(dstack, "POST", "/GetKey", '{"path":"a","path":"b"}', { "Content-Type": "application/json" }), 400, /duplicate/],
];
for (const [r, status, re] of cases) {
	wellFormed(r, `error ${status}`);
	check(r.status === status && re.test(r.json.error), `error ${status} ${re}: got ${r.status} ${r.body}`);
}
const alive = await post("/Version", {});
check(alive.status === 200, "still serving after errors");

console.log(`${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
EOF
cp "$tmp/app-compose.json" "$tmp/app-compose.json.orig"
node "$tmp/check.mjs" "$tmp/dstack.sock" "$tmp/tappd.sock" "$(cat "$tmp/port")" "$tmp"

# The quote verifies against the simulator's root, with report_data pinned.
rd="68656c6c6f$(printf '0%.0s' $(seq 118))"
printf '{"report_data":"%s"}\n' "$rd" >"$tmp/policy.json"
"$bin/cvm" -q quote verify "$tmp/quote.bin" --collateral "$tmp/sim/collateral/tdx" \
	--root "$tmp/sim/collateral/tdx/intel_sgx_root_ca.der" --policy "$tmp/policy.json" >"$tmp/verify.txt"
grep -q "verdict: accepted" "$tmp/verify.txt" || { cat "$tmp/verify.txt"; echo "agentd_api: quote rejected"; exit 1; }
printf '{"report_data":"%s"}\n' "$(printf '0%.0s' $(seq 128))" >"$tmp/policy-wrong.json"
if "$bin/cvm" -q quote verify "$tmp/quote.bin" --collateral "$tmp/sim/collateral/tdx" \
	--root "$tmp/sim/collateral/tdx/intel_sgx_root_ca.der" --policy "$tmp/policy-wrong.json" >/dev/null; then
	echo "agentd_api: a policy with other report_data accepted the quote"
	exit 1
fi

# A clean stop: exit 0 (under ASan, no leak report) and the socket removed.
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { cat "$tmp/agent.log"; echo "agentd_api: agent exit status $rc"; exit 1; }
[ ! -e "$tmp/dstack.sock" ] || { echo "agentd_api: socket left behind"; exit 1; }
grep -q "event=stop" "$tmp/agent.log" || { echo "agentd_api: no stop line"; exit 1; }
echo "agentd_api: ok"
