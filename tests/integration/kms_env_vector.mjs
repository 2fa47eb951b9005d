// Writes tests/vectors/compat/encrypted-env/sdk-env-vectors.json: values made
// by the published @phala/dstack-sdk 0.5.8 and its dependencies
// (@noble/curves, @noble/hashes), for unit.envcrypt to check lib/envcrypt
// against an implementation that is not ours.
//   usage: node kms_env_vector.mjs NODE_MODULES_DIR OUT.json
// Run from the folder where `npm install @phala/dstack-sdk@0.5.8
// @noble/curves@^1.8.1 @noble/hashes@^1.6.1` was done (tests/compat/dstack_sdk.sh
// installs them into build/compat).
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const [nm, out] = process.argv.slice(2);
const req = createRequire(path.join(path.resolve(nm), "x.js"));
const { secp256k1 } = req("@noble/curves/secp256k1");
const { x25519 } = req("@noble/curves/ed25519");
const { keccak_256 } = req("@noble/hashes/sha3");
const sdk = { ...req("@phala/dstack-sdk/encrypt-env-vars"), ...req("@phala/dstack-sdk/verify-env-encrypt-public-key") };
const sdkVersion = JSON.parse(readFileSync(path.join(nm, "@phala/dstack-sdk/package.json"), "utf8")).version;

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (h) => Uint8Array.from(Buffer.from(h, "hex"));
const be64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return b; };

// Fixed inputs: the k256 root 01..20 of integration.kms_derive, the app id of
// compat/ratls's real leaf (K-D2), the X25519 key of the env vector E-D1.
const root = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const appId = "9e8af4fc80bde3bea655a161280910c770c8d561";
const envSecret = "7c282bf94b35dc47801dc953bfa0896fc2bd313381d3e8eca4e42f6536d2a96f";
const pub = x25519.getPublicKey(unhex(envSecret));
const timestamp = 1765000000;

const prefix = Buffer.from("dstack-env-encrypt-pubkey:");
const msgLegacy = Buffer.concat([prefix, unhex(appId), pub]);
const msgV1 = Buffer.concat([prefix, unhex(appId), be64(timestamp), pub]);
const sign = (digest) => {
	const s = secp256k1.sign(digest, root, { lowS: true }); // RFC 6979
	return hex(s.toCompactRawBytes()) + s.recovery.toString(16).padStart(2, "0");
};
const digestLegacy = keccak_256(msgLegacy), digestV1 = keccak_256(msgV1);
const sig = sign(digestLegacy), sigV1 = sign(digestV1);
const maxAge = Math.floor(Date.now() / 1000) - timestamp + 86400 * 365 * 50;
const recLegacy = sdk.verifyEnvEncryptPublicKeyLegacy(pub, unhex(sig), appId);
const recV1 = sdk.verifyEnvEncryptPublicKey(pub, unhex(sigV1), "0x" + appId, timestamp, { maxAgeSeconds: maxAge });

// An env list with every kind of byte JSON.stringify escapes, and one the
// SDK sealed to the E-D1 key.
const envs = [
	{ key: "PLAIN", value: "v1" },
	{ key: "QUOTED", value: "say \"hi\" \\ back\\slash" },
	{ key: "CTRL", value: "a\nb\tc\rd\u0001e\u001ff\bg\fh" },
	{ key: "UNICODE", value: "é€😀 /slash/ <>&'" },
	{ key: "EMPTY", value: "" },
];
const blob = await sdk.encryptEnvVars(envs, hex(pub));

writeFileSync(out, JSON.stringify({
	_about: `Made by tests/integration/kms_env_vector.mjs with @phala/dstack-sdk ${sdkVersion} and its @noble ` +
		"dependencies (not by cvmkit): keccak_256 from @noble/hashes, RFC 6979 low-S secp256k1 signatures and " +
		"X25519 from @noble/curves, the signer recovered by the SDK's verifyEnvEncryptPublicKey(Legacy), a " +
		"blob sealed by the SDK's encryptEnvVars (random ephemeral key and IV) and JSON.stringify's bytes.",
	root_k256_hex: hex(root),
	root_k256_pubkey_hex: hex(secp256k1.getPublicKey(root, true)),
	app_id_hex: appId,
	env_crypt_key_hex: envSecret,
	env_pubkey_hex: hex(pub),
	timestamp,
	message_legacy_hex: hex(msgLegacy),
	message_v1_hex: hex(msgV1),
	digest_legacy_hex: hex(digestLegacy),
	digest_v1_hex: hex(digestV1),
	signature_hex: sig,
	signature_v1_hex: sigV1,
	sdk_recovered_legacy: recLegacy,
	sdk_recovered_v1: recV1,
	env: envs,
	sdk_plaintext_json: JSON.stringify({ env: envs }),
	sdk_encrypted_env_hex: blob,
}, null, 1) + "\n");
