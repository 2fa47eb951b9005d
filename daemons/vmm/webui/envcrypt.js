// envcrypt.js: dstack's encrypted environment (docs/cli/cvm-app.md), made in
// the browser with WebCrypto so that the values never leave it in clear:
//   blob = eph_pub (32) || iv (12) || AES-256-GCM(key = X25519(eph, app_pub),
//          no AAD, UTF-8 JSON {"env":[{"key":K,"value":V},...]}) || tag (16)
// The raw X25519 shared secret is the AES key (no KDF), as dstack does.

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_ITEMS_MAX = 1024;
const ENV_NAME_MAX = 255;
const ENV_VALUE_MAX = 128 * 1024;
const ENV_TOTAL_MAX = 1024 * 1024;

// cryptoMissing returns null when WebCrypto X25519 can be used here, else a
// sentence for the user. Browsers expose crypto.subtle only in a secure
// context (https, or http on 127.0.0.1 / localhost).
export function cryptoMissing() {
	if (!globalThis.isSecureContext || !globalThis.crypto || !globalThis.crypto.subtle)
		return 'This page is not a secure context (it was loaded over plain HTTP from an address other ' +
			'than 127.0.0.1 or localhost), so the browser offers no WebCrypto and cannot encrypt ' +
			'environment variables. Open it through https, or through an SSH tunnel on 127.0.0.1.';
	return null;
}

export function toHex(bytes) {
	let s = '';
	for (const b of bytes)
		s += b.toString(16).padStart(2, '0');
	return s;
}

// fromHex decodes hex (an optional 0x prefix, any case); it throws on
// anything else.
export function fromHex(text) {
	let s = String(text).trim();
	if (s.startsWith('0x') || s.startsWith('0X'))
		s = s.slice(2);
	if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s))
		throw new Error('not a hex string: ' + JSON.stringify(String(text).slice(0, 80)));
	const out = new Uint8Array(s.length / 2);
	for (let i = 0; i < out.length; i++)
		out[i] = parseInt(s.substr(2 * i, 2), 16);
	return out;
}

// parseEnvLines reads NAME=value lines by the rules of `cvm app
// encrypt-env`'s ENVFILE (docs/cli/cvm-app.md): spaces and tabs around a
// line, a name and a value are dropped; empty lines and lines starting with
// '#' are skipped; a value wholly inside one pair of ' or " loses that pair
// and is kept byte for byte; a name given twice, a NUL, a value that opens a
// quote it does not close, and dstack's limits are refused. It throws an
// Error naming the line at the first mistake.
export function parseEnvLines(text) {
	const env = [];
	const seen = new Set();
	const enc = new TextEncoder();
	const trim = (t) => t.replace(/^[ \t]+|[ \t]+$/g, '');
	const lines = String(text).split('\n');
	let total = 0;
	for (let i = 0; i < lines.length; i++) {
		const line = trim(lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i]);
		if (line === '' || line[0] === '#')
			continue;
		const where = `environment line ${i + 1}`;
		if (line.includes('\0'))
			throw new Error(`${where}: a NUL character`);
		const eq = line.indexOf('=');
		if (eq < 0)
			throw new Error(`${where}: expected NAME=value`);
		const key = trim(line.slice(0, eq));
		let value = trim(line.slice(eq + 1));
		if (!NAME_RE.test(key) || key.length > ENV_NAME_MAX)
			throw new Error(`${where}: "${key.slice(0, 40)}" is not a valid name ` +
				'(letters, digits and _, not starting with a digit, at most 255)');
		if (seen.has(key))
			throw new Error(`${where}: ${key} is given twice`);
		seen.add(key);
		const q = value[0];
		if (q === '"' || q === "'") {
			if (value.length < 2 || value[value.length - 1] !== q)
				throw new Error(`${where}: the value of ${key} opens a quote it does not close`);
			value = value.slice(1, -1);
		}
		const n = enc.encode(value).length;
		if (n > ENV_VALUE_MAX)
			throw new Error(`${where}: the value of ${key} is over 128 KiB`);
		total += key.length + n;
		if (total > ENV_TOTAL_MAX)
			throw new Error(`${where}: the names and values are over 1 MiB in all`);
		env.push({ key, value });
	}
	if (env.length > ENV_ITEMS_MAX)
		throw new Error(`too many environment variables (${env.length}; at most ${ENV_ITEMS_MAX})`);
	return env;
}

// encryptEnv encrypts `env` ([{key, value}]) to the 32-byte X25519 public
// key `pub` and returns the blob's bytes.
export async function encryptEnv(env, pub) {
	if (!(pub instanceof Uint8Array) || pub.length !== 32)
		throw new Error('the env encryption key must be 32 bytes (X25519)');
	const subtle = globalThis.crypto.subtle;
	const plain = new TextEncoder().encode(JSON.stringify({ env }));
	const eph = await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
	const peer = await subtle.importKey('raw', pub, { name: 'X25519' }, false, []);
	const shared = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: peer }, eph.privateKey, 256));
	try {
		if (shared.every((b) => b === 0))
			throw new Error('the env encryption key is a low-order point (all-zero shared secret)');
		const key = await subtle.importKey('raw', shared, { name: 'AES-GCM' }, false, ['encrypt']);
		const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
		const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv }, key, plain));
		const ephPub = new Uint8Array(await subtle.exportKey('raw', eph.publicKey));
		const out = new Uint8Array(32 + 12 + ct.length);
		out.set(ephPub, 0);
		out.set(iv, 32);
		out.set(ct, 44);
		return out;
	} finally {
		shared.fill(0);
		plain.fill(0);
	}
}

// composeAppId is the app id of a new deployment: the first 20 bytes of
// SHA-256 over the exact app-compose bytes (dstack spec §4.3), as hex.
export async function composeAppId(bytes) {
	const h = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
	return { composeHash: toHex(h), appId: toHex(h.subarray(0, 20)) };
}
