// The published @phala/dstack-sdk 0.5.8 (npm), unmodified, against a running
// cvm-agentd over the simulated TEE: every SDK call of dstack spec §1.5 with
// the invariants listed there, the derivation vectors of §1.3 and §11, a
// quote that `cvm quote verify` accepts with the requested report data, and
// replayRtmrs() reproducing RTMR3 after emitEvent.
//
// Run by tests/compat/dstack_sdk.sh, which installs the package into the
// build tree, starts two agents and sets:
//   DSTACK_SIMULATOR_ENDPOINT, TAPPD_SIMULATOR_ENDPOINT  the first agent (simulator app key)
//   CVM_COMPAT_HTTP      http://127.0.0.1:PORT of the first agent
//   CVM_COMPAT_DIP1      the dstack socket of the second agent (app key 1a2b...)
//   CVM_BIN, CVM_COMPAT_SIM, CVM_COMPAT_TMP
import { test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { DstackClient, TappdClient } from "@phala/dstack-sdk";

const env = process.env;
const hex = (u8) => Buffer.from(u8).toString("hex");
const b64url = (buf) => Buffer.from(buf).toString("base64url");

function k256Compressed(key) {
	const ecdh = crypto.createECDH("secp256k1");
	ecdh.setPrivateKey(Buffer.from(key));
	return ecdh.getPublicKey(null, "compressed");
}
function ed25519Public(seed) {
	const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seed)]);
	const pub = crypto.createPublicKey(crypto.createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }));
	return pub.export({ format: "der", type: "spki" }).subarray(-32);
}
function verifyQuote(quoteHex, reportDataHex) {
	const dir = env.CVM_COMPAT_TMP;
	const qf = path.join(dir, `quote-${reportDataHex.slice(0, 8)}.bin`);
	const pf = path.join(dir, `policy-${reportDataHex.slice(0, 8)}.json`);
	fs.writeFileSync(qf, Buffer.from(quoteHex, "hex"));
	fs.writeFileSync(pf, JSON.stringify({ report_data: reportDataHex }));
	const coll = path.join(env.CVM_COMPAT_SIM, "collateral", "tdx");
	return spawnSync(path.join(env.CVM_BIN, "cvm"),
		["-q", "quote", "verify", qf, "--collateral", coll, "--root", path.join(coll, "intel_sgx_root_ca.der"),
			"--policy", pf], { encoding: "utf8" });
}

const client = new DstackClient();
const tappd = new TappdClient();

test("getKey matches the simulator app key's vectors (spec §11)", async () => {
	const root = await client.getKey("/");
	assert.equal(root.key.length, 32);
	assert.equal(hex(root.key), "f6c1ed94488394d78e0a4e5ab75d62e9f085d73b0b555d0614fb90ca13d9464d");
	assert.equal(hex(k256Compressed(root.key)), "026b694842460eff475d4e4b36a908c4ca05db27fe54bd7fb5db31c367a52ef211");
	const t = await client.getKey("test");
	assert.equal(hex(t.key), "133e8ca6e532ead3e38f00347408771da296e9c70e8e3e362f485154e64ef4e8");
	assert.ok(root.signature_chain.length >= 1);
	assert.equal(root.signature_chain[0].length, 65);
});

test("getKey: k256 = secp256k1, ed25519 is 32 bytes, prehashed fails", async () => {
	const a = await client.getKey("/app", "wallet", "secp256k1");
	const b = await client.getKey("/app", "wallet", "k256");
	const c = await client.getKey("/app", "wallet", "ed25519");
	assert.deepEqual(a.key, b.key);
	assert.equal(c.key.length, 32);
	await assert.rejects(client.getKey("/app", "wallet", "secp256k1_prehashed"));
});

test("getKey matches the dip1 vectors for app key 1a2b... (spec §1.3)", async () => {
	const other = new DstackClient(env.CVM_COMPAT_DIP1);
	const k = await other.getKey("vms", "signing", "secp256k1");
	assert.equal(b64url(k256Compressed(k.key)), "A6t_JdVkVdMAocH3f1f20WGT6JzdntxcXimUtEax8zc9");
	const e = await other.getKey("vms", "signing", "ed25519");
	assert.equal(b64url(ed25519Public(e.key)), "5Pbre1Amf1hrp2V2bbfKlIfxpQb2pJAmrgmhxgVoG9s");
});

test("getTlsKey: PEM key longer than 32 bytes of DER, a chain, IP alt names", async () => {
	const r = await client.getTlsKey({ subject: "compat", altNames: ["127.0.0.1", "compat.local"], usageRaTls: true });
	assert.match(r.key, /BEGIN PRIVATE KEY/);
	assert.ok(r.certificate_chain.length >= 1);
	assert.notEqual(r.asUint8Array(32).length, r.asUint8Array().length);
	const cert = new crypto.X509Certificate(r.certificate_chain[0]);
	assert.match(cert.subjectAltName, /IP Address:127\.0\.0\.1/);
	const windowed = await client.getTlsKey({ notBefore: 1700000000, notAfter: 1900000000 });
	assert.ok(windowed.certificate_chain.length >= 1);
});

test("getQuote: event_log parses, the quote verifies with report_data pinned", async () => {
	const q = await client.getQuote("hello compat");
	assert.ok(q.quote.length > 0);
	const events = JSON.parse(q.event_log);
	assert.ok(events.length > 0 && events.every((e) => typeof e.imr === "number" && /^[0-9a-f]*$/.test(e.digest)));
	const rd = Buffer.concat([Buffer.from("hello compat"), Buffer.alloc(64 - 12)]).toString("hex");
	assert.equal(q.report_data, rd);
	const v = verifyQuote(q.quote, rd);
	assert.equal(v.status, 0, v.stdout + v.stderr);
	assert.match(v.stdout, /verdict: accepted/);
	const w = verifyQuote(q.quote, "ff".repeat(64));
	assert.notEqual(w.status, 0, "a policy with other report_data must reject the quote");
	await assert.rejects(client.getQuote("x".repeat(65)));
});

test("emitEvent then replayRtmrs() reproduces RTMR0..3 of the quote", async () => {
	await client.emitEvent("compat-event", "payload from the SDK");
	const q = await client.getQuote("after event");
	const quote = Buffer.from(q.quote, "hex");
	const rtmrs = q.replayRtmrs();
	for (let i = 0; i < 4; i++)
		assert.equal(rtmrs[i], quote.subarray(376 + 48 * i, 424 + 48 * i).toString("hex"), `RTMR${i}`);
	const last = JSON.parse(q.event_log).at(-1);
	assert.equal(last.event, "compat-event");
	assert.equal(Buffer.from(last.event_payload, "hex").toString(), "payload from the SDK");
	await assert.rejects(client.emitEvent("", "x"));
});

test("attest returns a VersionedAttestation", async () => {
	const a = await client.attest("attest me");
	const bytes = Buffer.from(a.attestation, "hex");
	assert.ok(bytes.length > 1000);
	assert.equal(bytes[0], 0);
});

test("info: ids and a parsed tcb_info", async () => {
	const i = await client.info();
	assert.match(i.app_id, /^[0-9a-f]{40}$/);
	assert.match(i.instance_id, /^[0-9a-f]{40}$/);
	for (const k of ["rtmr0", "rtmr1", "rtmr2", "rtmr3"]) assert.match(i.tcb_info[k], /^[0-9a-f]{96}$/);
	for (const k of ["os_image_hash", "compose_hash", "device_id", "app_compose"]) assert.ok(k in i.tcb_info, k);
	assert.ok(Array.isArray(i.tcb_info.event_log) && i.tcb_info.event_log.length > 0);
	assert.equal(i.compose_hash, i.tcb_info.compose_hash);
	assert.ok(await client.isReachable());
});

test("version", async () => {
	const v = await client.version();
	assert.ok(v.version.length > 0);
});

test("sign and verify: ed25519, secp256k1, secp256k1_prehashed", async () => {
	for (const alg of ["ed25519", "secp256k1", "secp256k1_prehashed"]) {
		const data = alg === "secp256k1_prehashed" ? crypto.createHash("sha256").update("m").digest() : "message";
		const s = await client.sign(alg, data);
		assert.ok(s.signature.length === 64 && s.signature_chain.length >= 2, alg);
		assert.equal((await client.verify(alg, data, s.signature, s.public_key)).valid, true, alg);
		const other = alg === "secp256k1_prehashed" ? crypto.createHash("sha256").update("n").digest() : "other";
		assert.equal((await client.verify(alg, other, s.signature, s.public_key)).valid, false, alg);
	}
	await assert.rejects(client.sign("rsa", "message"));
	await assert.rejects(client.sign("secp256k1_prehashed", "short"));
});

test("the same API over TCP (DSTACK_SIMULATOR_ENDPOINT=http://...)", async () => {
	const http = new DstackClient(env.CVM_COMPAT_HTTP);
	const k = await http.getKey("/");
	assert.equal(hex(k.key), "f6c1ed94488394d78e0a4e5ab75d62e9f085d73b0b555d0614fb90ca13d9464d");
	const i = await http.info();
	assert.ok(i.tcb_info.rtmr3.length === 96);
});

test("TappdClient: deriveKey, tdxQuote with and without hash_algorithm, isReachable", async () => {
	const d = await tappd.deriveKey("/tappd", "tappd.local", ["127.0.0.1"]);
	assert.match(d.key, /BEGIN PRIVATE KEY/);
	assert.ok(d.certificate_chain.length >= 1);
	const q = await tappd.tdxQuote("hello");
	const h = crypto.createHash("sha512").update("app-data:hello").digest("hex");
	assert.equal(Buffer.from(q.quote, "hex").subarray(568, 632).toString("hex"), h);
	const s = await tappd.tdxQuote("hello", "sha256");
	assert.equal(s.hash_algorithm, "sha256");
	const raw = await tappd.tdxQuote("abcd", "raw");
	assert.equal(Buffer.from(raw.quote, "hex").subarray(568, 632).toString("hex"), "0".repeat(120) + "61626364"); // to_hex: the string's UTF-8 bytes
	assert.ok(await tappd.isReachable());
});
