#!/usr/bin/env bash
# cvm-agentd's dstack guest API v1 (/v1/ on the dstack socket; upstream
# docs/guest-api-v1.md of Dstack-TEE/dstack): every method over the unix
# socket with raw HTTP/1.1 (Node's net module, no client library). The agent
# runs with the app root key of the published v1 vectors, so GetKey must
# return exactly the vectors of tests/vectors/compat/guest-api-v1 (key,
# public key, link 0); the v0 surface stays as it was beside it.
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
src="${CVM_SOURCE_DIR:?CVM_SOURCE_DIR must point at the repository}"
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "agentd_v1: $bin/$t is missing (build it first)"; exit 1; }
done
command -v node >/dev/null || { echo "agentd_v1: SKIP: node is not installed (scripts/setup.sh installs it)"; exit 77; }
command -v openssl >/dev/null || { echo "agentd_v1: SKIP: openssl is not installed"; exit 77; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-agentd-v1.XXXXXX")"
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

vectors="$src/tests/vectors/compat/guest-api-v1/inline-vectors.json"
root="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).app_root_key_hex)' "$vectors")"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -subj "/O=cvmkit test/CN=v1 test CA" -days 1 \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$tmp/ca.crt" 2>/dev/null
node -e '
const fs = require("fs");
const [k256, key, crt, out] = process.argv.slice(1);
fs.writeFileSync(out, JSON.stringify({
	disk_crypt_key: require("crypto").randomBytes(32).toString("hex"), env_crypt_key: "",
	k256_key: k256, k256_signature: "", gateway_app_id: "any",
	ca_cert: fs.readFileSync(crt, "utf8"), key_provider: { None: { key: fs.readFileSync(key, "utf8") } },
}), { mode: 0o600 });' "$root" "$tmp/ca.key" "$tmp/ca.crt" "$tmp/appkeys.json"
printf '{"manifest_version":2,"name":"v1-app","runner":"docker-compose","docker_compose_file":""}' \
	>"$tmp/app-compose.json"

"$bin/cvm" sim init "$tmp/sim" >/dev/null
"$bin/cvm-agentd" --simulator "$tmp/sim" --appkeys "$tmp/appkeys.json" --listen "unix:$tmp/dstack.sock" \
	--app-compose "$tmp/app-compose.json" >"$tmp/agent.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/dstack.sock" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/agent.log"; echo "agentd_v1: the agent exited"; exit 1; }
	sleep 0.1
done
[ -S "$tmp/dstack.sock" ] || { cat "$tmp/agent.log"; echo "agentd_v1: no socket"; exit 1; }

cat >"$tmp/check.mjs" <<'EOF'
import net from "node:net";
import crypto from "node:crypto";
import fs from "node:fs";

const [sock, vectorsPath, caPath, appCompose, out] = process.argv.slice(2);
const vectors = JSON.parse(fs.readFileSync(vectorsPath, "utf8"));
let failures = 0, passes = 0;
function check(cond, what) {
	if (cond) { passes++; } else { failures++; console.log("FAIL: " + what); }
}

function request(method, path, body) {
	return new Promise((resolve, reject) => {
		const c = net.createConnection(sock);
		const b = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
		let h = `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`;
		if (method !== "GET") h += `Content-Type: application/json\r\nContent-Length: ${b.length}\r\n`;
		c.write(Buffer.concat([Buffer.from(h + "\r\n"), b]));
		const chunks = [];
		c.on("data", (d) => chunks.push(d));
		c.on("error", reject);
		c.on("end", () => {
			const raw = Buffer.concat(chunks);
			const i = raw.indexOf("\r\n\r\n");
			const status = Number(raw.subarray(0, i).toString("latin1").split(" ")[1]);
			const text = raw.subarray(i + 4).toString("utf8");
			let json;
			try { json = JSON.parse(text); } catch { json = undefined; }
			resolve({ status, text, json });
		});
	});
}
const post = (path, obj) => request("POST", path, JSON.stringify(obj));
const hex = (s) => typeof s === "string" && /^([0-9a-f]{2})*$/.test(s);

// GetKey: every published vector over HTTP, the domain with a NUL byte
// included (JSON "\u0000")
for (const v of vectors.keys) {
	const domain = Buffer.from(v.domain_hex, "hex");
	const r = await post("/v1/GetKey", { domain: domain.toString("utf8"), algorithm: v.algorithm });
	check(r.status === 200, `GetKey(${v.domain_hex}, ${v.algorithm}): status ${r.status} ${r.text}`);
	if (r.status !== 200) continue;
	check(r.json.key === v.private_key_hex, `GetKey(${v.domain_hex}, ${v.algorithm}): the published key`);
	check(r.json.public_key === v.public_key_hex, `GetKey(${v.domain_hex}, ${v.algorithm}): the published public key`);
	check(Array.isArray(r.json.signature_chain) && r.json.signature_chain.length === 2 &&
		/^[0-9a-f]{130}$/.test(r.json.signature_chain[0]) && r.json.signature_chain[1] === "",
		"GetKey: [link0 (65 bytes), link1 (\"\": no KMS)]");
	check(Object.keys(r.json).sort().join() === "key,public_key,signature_chain", "GetKey: exactly the v1 fields");
}
const l0 = vectors.chain_link0;
const g0 = await post("/v1/GetKey", { domain: l0.domain, algorithm: l0.algorithm });
check(g0.status === 200 && g0.json.signature_chain[0] === l0.link0_hex, "GetKey: link 0 is the published signature");
// GET with query parameters reaches the same method
const gq = await request("GET", `/v1/GetKey?domain=${l0.domain}&algorithm=${l0.algorithm}`);
check(gq.status === 200 && gq.json.key === g0.json.key, "GetKey: GET with a query gives the same key");
// the ed25519 key is the published seed's: Node derives the same public key
const ed = vectors.keys.find((k) => k.algorithm === "ed25519" && k.domain_hex === "");
const edr = await post("/v1/GetKey", { domain: "", algorithm: "ed25519" });
const edPriv = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"),
	Buffer.from(edr.json.key, "hex")]), format: "der", type: "pkcs8" });
check(crypto.createPublicKey(edPriv).export({ format: "der", type: "spki" }).subarray(12).toString("hex") ===
	ed.public_key_hex, "GetKey: the ed25519 key is the seed of its public key");
// a NUL byte is never dropped or cut: "k\u0000:ey" and "k" are different keys, and
// fields of other methods still refuse NUL
const kNul = await post("/v1/GetKey", { domain: "k\u0000:ey", algorithm: "ed25519" });
const kCut = await post("/v1/GetKey", { domain: "k", algorithm: "ed25519" });
check(kNul.status === 200 && kCut.status === 200 && kNul.json.key !== kCut.json.key, "GetKey: NUL is part of the domain");
const v0Nul = await post("/GetKey", { path: "a\u0000b", algorithm: "secp256k1" });
check(v0Nul.status === 400 && /NUL/.test(v0Nul.json.error), "v0 GetKey: a path with NUL is refused");
const icNul = await post("/v1/IssueCert", { subject: "a\u0000b" });
check(icNul.status === 400 && /NUL/.test(icNul.json.error), "IssueCert: a subject with NUL is refused");
const anNul = await post("/v1/IssueCert", { alt_names: ["a\u0000b"] });
check(anNul.status === 400 && /NUL/.test(anNul.json.error), "IssueCert: an alt name with NUL is refused");

// v1 keys are not v0 keys, and the curves never share a key
const v0 = await post("/GetKey", { path: l0.domain, purpose: "", algorithm: "secp256k1" });
check(v0.status === 200 && v0.json.key !== g0.json.key, "GetKey: the v1 key differs from the v0 key of the same name");
const sameName = vectors.keys.filter((k) => k.domain_hex === "");
check(sameName.length === 2 && sameName[0].private_key_hex !== sameName[1].private_key_hex,
	"GetKey: secp256k1 and ed25519 keys of one domain differ");
// algorithm: no default, no alias (upstream's texts)
const a0 = await post("/v1/GetKey", { domain: "x" });
check(a0.status === 400 && a0.json.error === "algorithm is required, use `secp256k1` or `ed25519`", "GetKey: empty algorithm");
for (const alg of ["k256", "secp256k1_prehashed", "Ed25519"]) {
	const r = await post("/v1/GetKey", { domain: "x", algorithm: alg });
	check(r.status === 400 && r.json.error === `unsupported algorithm \`${alg}\`, use \`secp256k1\` or \`ed25519\``,
		`GetKey: algorithm ${alg} refused`);
}
const big = await post("/v1/GetKey", { domain: "d".repeat(4097), algorithm: "ed25519" });
check(big.status === 400 && /too long/.test(big.json.error), "GetKey: an oversized domain is refused");

// Version
const ver = await post("/v1/Version", {});
check(ver.status === 200 && typeof ver.json.version === "string" && ver.json.version.length > 0 &&
	typeof ver.json.rev === "string", "Version: {version, rev}");

// Info: identity and configuration; no tcb_info, no app_cert
const info = await post("/v1/Info", {});
check(info.status === 200, "Info: 200");
const fields = ["app_id", "app_name", "compose_hash", "app_compose", "instance_id", "device_id",
	"os_image_hash", "mr_aggregated", "vm_config", "key_provider_info", "cloud_vendor", "cloud_product"];
check(Object.keys(info.json).sort().join() === [...fields].sort().join(), "Info: exactly the v1 fields");
check(info.json.app_compose === fs.readFileSync(appCompose, "utf8"), "Info: app_compose is the verbatim document");
check(info.json.compose_hash === crypto.createHash("sha256").update(fs.readFileSync(appCompose)).digest("hex"),
	"Info: compose_hash is SHA-256 of app_compose");
const info0 = await post("/Info", {});
for (const f of ["app_id", "instance_id", "mr_aggregated", "os_image_hash", "compose_hash", "device_id", "app_name"])
	check(info.json[f] === info0.json[f], `Info: ${f} is v0's`);
check(hex(info.json.mr_aggregated) && info.json.mr_aggregated.length === 64, "Info: mr_aggregated is 32 bytes hex");

// IssueCert: a fresh key and a chain to the app CA, RA-TLS on request
const ic = await post("/v1/IssueCert", { subject: "v1.example", alt_names: ["v1.example"], usage_ra_tls: true,
	usage_server_auth: true });
check(ic.status === 200 && /BEGIN PRIVATE KEY/.test(ic.json.key) && ic.json.certificate_chain.length === 2,
	`IssueCert: key and chain (${ic.status} ${ic.text.slice(0, 200)})`);
if (ic.status === 200) {
	const leaf = new crypto.X509Certificate(ic.json.certificate_chain[0]);
	const ca = new crypto.X509Certificate(fs.readFileSync(caPath));
	check(leaf.verify(ca.publicKey), "IssueCert: the leaf is signed by the app CA");
	check(leaf.checkPrivateKey(crypto.createPrivateKey(ic.json.key)), "IssueCert: the key is the leaf's");
	check(leaf.raw.includes(Buffer.from("2b0601040183e73d0101", "hex")), "IssueCert: RA-TLS 1.1 quote extension");
	const ic2 = await post("/v1/IssueCert", { subject: "v1.example" });
	check(ic2.status === 200 && ic2.json.key !== ic.json.key, "IssueCert: a fresh key per call");
}
// with_app_info: the 1.9 extension, dstack's AppInfo as a MessagePack array of 8 bins
const ia = await post("/v1/IssueCert", { subject: "v1.example", with_app_info: true });
check(ia.status === 200, `IssueCert with_app_info: 200 (${ia.status} ${ia.text.slice(0, 200)})`);
if (ia.status === 200) {
	const der = new crypto.X509Certificate(ia.json.certificate_chain[0]).raw;
	const oid19 = Buffer.from("060a2b0601040183e73d0109", "hex");
	const at19 = der.indexOf(oid19);
	check(at19 > 0, "IssueCert with_app_info: the 1.9 extension is there");
	check(!der.includes(Buffer.from("2b0601040183e73d0101", "hex")), "IssueCert without usage_ra_tls: no quote");
	// extnValue OCTET STRING { OCTET STRING { msgpack } }
	const len = (p) => (der[p] < 0x80 ? [der[p], 1] : [der.readUIntBE(p + 1, der[p] & 0x7f), 1 + (der[p] & 0x7f)]);
	let p = at19 + oid19.length;
	check(der[p] === 0x04, "1.9: extnValue");
	p += 1 + len(p + 1)[1];
	check(der[p] === 0x04, "1.9: an OCTET STRING inside");
	p += 1 + len(p + 1)[1];
	check(der[p] === 0x98, "1.9: a MessagePack array of 8");
	const items = [];
	p += 1;
	for (let i = 0; i < 8 && der[p] === 0xc4; i++) {
		const n = der[p + 1];
		items.push(der.subarray(p + 2, p + 2 + n).toString("hex"));
		p += 2 + n;
	}
	check(items.length === 8, "1.9: eight bins (app_id .. key_provider_info)");
	check(items[0] === info.json.app_id && items[1] === info.json.compose_hash && items[2] === info.json.instance_id &&
		items[3] === info.json.device_id && items[5] === info.json.mr_aggregated,
		"1.9: app_id, compose_hash, instance_id, device_id and mr_aggregated are Info's");
	check(items[6] === info.json.os_image_hash && Buffer.from(items[7], "hex").toString() === info.json.key_provider_info,
		"1.9: os_image_hash and key_provider_info are Info's");
}
// both: evidence and app info (lib/ratls checks the app info's shape)
const both = await post("/v1/IssueCert", { subject: "v1.example", usage_ra_tls: true, with_app_info: true });
check(both.status === 200, `IssueCert with usage_ra_tls and with_app_info: 200 (${both.status} ${both.text.slice(0, 200)})`);
if (both.status === 200) {
	const der = new crypto.X509Certificate(both.json.certificate_chain[0]).raw;
	for (const last of ["01", "02", "08", "09"])
		check(der.includes(Buffer.from("060a2b0601040183e73d01" + last, "hex")), `IssueCert: extension 1.${Number(last)}`);
}
const bad = await post("/v1/IssueCert", { not_before: 10, not_after: 5 });
check(bad.status === 400, "IssueCert: not_before must be before not_after");

// Attest: VersionedAttestation::V1 (a MessagePack map) over the padded report data
const at = await post("/v1/Attest", { report_data: "68656c6c6f" });
let attest = "absent";
{
	check(at.status === 200 && hex(at.json.attestation), `Attest: 200 with hex (${at.status} ${at.text.slice(0, 200)})`);
	check(Array.isArray(at.json.boottime_gpu_evidence) && at.json.boottime_gpu_evidence.length === 0,
		"Attest: no boot-time GPU evidence");
	const b = Buffer.from(at.json.attestation, "hex");
	// a MessagePack map (fixmap 0x80-0x8f, map16 0xde, map32 0xdf), not SCALE's 0x00
	check(b.length > 0 && ((b[0] & 0xf0) === 0x80 || b[0] === 0xde || b[0] === 0xdf), "Attest: a MessagePack map (V1)");
	check(b.includes(Buffer.concat([Buffer.from("hello"), Buffer.alloc(59)])), "Attest: carries the padded report data");
	fs.writeFileSync(out + ".va", b);
	attest = "written";
}
const at65 = await post("/v1/Attest", { report_data: "00".repeat(65) });
check(at65.status === 400 && /too long/.test(at65.json.error), "Attest: more than 64 bytes is an error");

// Unknown methods: upstream's 404 with "Service not found: <Method>", JSON body
for (const m of ["Sign", "Verify", "GetQuote", "EmitEvent", "GetTlsKey", "AttestGpu", "Nope"]) {
	const r = await post(`/v1/${m}`, {});
	check(r.status === 404 && r.json && r.json.error === `Service not found: ${m}`, `/v1/${m}: 404 Service not found`);
}
// the frozen surface is unchanged beside it
const s0 = await post("/Nope", {});
check(s0.status === 400 && s0.json.error === "Service not found: Nope", "v0: unknown method still 400");
const v0s = await post("/v0/Version", {});
check(v0s.status === 200, "v0: /v0/Version still served");

fs.writeFileSync(out, JSON.stringify({ passes, failures, attest }));
console.log(`agentd_v1: ${passes} checks passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
EOF
node "$tmp/check.mjs" "$tmp/dstack.sock" "$vectors" "$tmp/ca.crt" "$tmp/app-compose.json" "$tmp/result.json" || {
	echo "--- agent log"; tail -n 30 "$tmp/agent.log"; exit 1
}
# The attestation decodes as V1 with the cli's decoder and verifies with the
# simulator's collateral and the padded report data.
if [ -f "$tmp/result.json.va" ]; then
	if "$bin/cvm" attestation show "$tmp/result.json.va" --json >"$tmp/va.json" 2>"$tmp/va.err"; then
		node -e '
const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const rd = "68656c6c6f" + "00".repeat(59);
const bad = [];
if (v.version !== 1 || v.encoding !== "msgpack") bad.push("not a MessagePack V1");
if (v.tee !== "tdx" || v.platform !== "dstack-tdx") bad.push("not dstack-tdx");
if (v.attestation_report_data !== rd || v.report_data_matches_quote !== true) bad.push("report data");
if (bad.length) { console.log("agentd_v1: FAIL: cvm attestation show: " + bad.join(", ")); process.exit(1); }' "$tmp/va.json"
		"$bin/cvm" attestation verify "$tmp/result.json.va" --collateral "$tmp/sim/collateral/tdx" \
			--root "$tmp/sim/collateral/tdx/intel_sgx_root_ca.der" --report-data "68656c6c6f$(printf '00%.0s' $(seq 59))" \
			>"$tmp/verify.out" 2>&1 || {
			cat "$tmp/verify.out"
			echo "agentd_v1: FAIL: cvm attestation verify of /v1/Attest's answer"
			exit 1
		}
	else
		cat "$tmp/va.err"
		echo "agentd_v1: FAIL: cvm attestation show cannot read /v1/Attest's answer"
		exit 1
	fi
fi
echo "agentd_v1: ok"
