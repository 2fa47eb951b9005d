// The published @phala/dstack-sdk 0.5.8's env functions, for
// integration.kms_env_sdk:
//   node kms_env_sdk.mjs NODE_MODULES encrypt PUBKEY_HEX ENVS_JSON     -> the blob, hex
//   node kms_env_sdk.mjs NODE_MODULES verify PUB SIG APP_ID TIMESTAMP  -> "0x<signer>" or null
//   node kms_env_sdk.mjs NODE_MODULES verify-legacy PUB SIG APP_ID     -> "0x<signer>" or null
import { createRequire } from "node:module";
import path from "node:path";

const [nm, cmd, ...args] = process.argv.slice(2);
const req = createRequire(path.join(path.resolve(nm), "x.js"));
const { encryptEnvVars } = req("@phala/dstack-sdk/encrypt-env-vars");
const { verifyEnvEncryptPublicKey, verifyEnvEncryptPublicKeyLegacy } = req(
	"@phala/dstack-sdk/verify-env-encrypt-public-key");
const unhex = (h) => Uint8Array.from(Buffer.from(h, "hex"));

// The SDK logs why it refuses on stderr; keep stdout for the answer.
console.error = () => {};
if (cmd === "encrypt") {
	console.log(await encryptEnvVars(JSON.parse(args[1]), args[0]));
} else if (cmd === "verify") {
	console.log(String(verifyEnvEncryptPublicKey(unhex(args[0]), unhex(args[1]), args[2], Number(args[3]))));
} else if (cmd === "verify-legacy") {
	console.log(String(verifyEnvEncryptPublicKeyLegacy(unhex(args[0]), unhex(args[1]), args[2])));
} else {
	process.stderr.write("unknown command\n");
	process.exit(2);
}
