// kmssig.js: checks the KMS's signature over an app's env public key in the
// browser, as `cvm app encrypt-env --kms-pubkey` does (docs/cli/cvm-app.md):
//   signature_v1 = recoverable secp256k1 signature (r || s || v, v = 0/1 or
//   27/28) by the KMS's root k256 key over
//   keccak256("dstack-env-encrypt-pubkey:" || app_id (20) || u64be(timestamp) || public_key (32))
// The key it recovers must be the KMS key the user pinned (GetMeta's
// k256_pubkey, compressed). Plain JavaScript with BigInt; it verifies
// public data only, so it need not be constant-time.

const MASK64 = (1n << 64n) - 1n;
const RC = [
	0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
	0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
	0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
	0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
	0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
	0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n,
];
// ROT[x][y]: the rotation of lane (x, y).
const ROT = [
	[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14],
];

function rotl(v, n) {
	if (n === 0)
		return v;
	const b = BigInt(n);
	return ((v << b) | (v >> (64n - b))) & MASK64;
}

function keccakF(s) {
	const c = new Array(5), b = new Array(25);
	for (let round = 0; round < 24; round++) {
		for (let x = 0; x < 5; x++)
			c[x] = s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20];
		for (let x = 0; x < 5; x++) {
			const d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
			for (let y = 0; y < 25; y += 5)
				s[x + y] ^= d;
		}
		for (let x = 0; x < 5; x++)
			for (let y = 0; y < 5; y++)
				b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(s[x + 5 * y], ROT[x][y]);
		for (let x = 0; x < 5; x++)
			for (let y = 0; y < 25; y += 5)
				s[x + y] = b[x + y] ^ (~b[((x + 1) % 5) + y] & b[((x + 2) % 5) + y]);
		s[0] ^= RC[round];
	}
}

// keccak256 is Ethereum's Keccak-256 (the original padding, not SHA3-256).
export function keccak256(bytes) {
	return sponge256(bytes, 0x01);
}

// sponge256 is the Keccak sponge with rate 136 and 32 bytes out; the
// domain byte `ds` is 0x01 for Keccak-256 and 0x06 for SHA3-256 (which the
// tests compare with another implementation).
export function sponge256(bytes, ds) {
	const rate = 136;
	const padded = new Uint8Array((Math.floor(bytes.length / rate) + 1) * rate);
	padded.set(bytes);
	padded[bytes.length] ^= ds;
	padded[padded.length - 1] ^= 0x80;
	const s = new BigUint64Array(25);
	for (let off = 0; off < padded.length; off += rate) {
		for (let i = 0; i < rate / 8; i++) {
			let lane = 0n;
			for (let k = 7; k >= 0; k--)
				lane = (lane << 8n) | BigInt(padded[off + 8 * i + k]);
			s[i] ^= lane;
		}
		keccakF(s);
	}
	const out = new Uint8Array(32);
	for (let i = 0; i < 4; i++)
		for (let k = 0; k < 8; k++)
			out[8 * i + k] = Number((s[i] >> BigInt(8 * k)) & 0xffn);
	return out;
}

// secp256k1
const P = (1n << 256n) - (1n << 32n) - 977n;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const G = {
	x: 0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
	y: 0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n,
};

const mod = (a, m) => ((a % m) + m) % m;

function inv(a, m) {
	let [lo, hi, x0, x1] = [mod(a, m), m, 1n, 0n];
	if (lo === 0n)
		throw new Error('no inverse');
	while (lo > 1n) {
		const q = hi / lo;
		[lo, hi] = [hi - q * lo, lo];
		[x0, x1] = [x1 - q * x0, x0];
	}
	return mod(x0, m);
}

function powmod(b, e, m) {
	let r = 1n;
	b = mod(b, m);
	while (e > 0n) {
		if (e & 1n)
			r = (r * b) % m;
		b = (b * b) % m;
		e >>= 1n;
	}
	return r;
}

// Points are {x, y} (affine) or null (infinity).
function add(a, b) {
	if (a === null)
		return b;
	if (b === null)
		return a;
	let l;
	if (a.x === b.x) {
		if (mod(a.y + b.y, P) === 0n)
			return null;
		l = mod(3n * a.x * a.x * inv(2n * a.y, P), P);
	} else {
		l = mod((b.y - a.y) * inv(b.x - a.x, P), P);
	}
	const x = mod(l * l - a.x - b.x, P);
	return { x, y: mod(l * (a.x - x) - a.y, P) };
}

function mul(k, pt) {
	let r = null;
	for (let i = BigInt(k.toString(2).length) - 1n; i >= 0n; i--) {
		r = add(r, r);
		if ((k >> i) & 1n)
			r = add(r, pt);
	}
	return r;
}

const big = (bytes) => bytes.reduce((a, b) => (a << 8n) | BigInt(b), 0n);
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

// recoverCompressed returns the compressed public key (hex) that signed the
// 32-byte `digest` with the 65-byte `sig`, or throws.
export function recoverCompressed(digest, sig) {
	if (sig.length !== 65)
		throw new Error(`the signature is ${sig.length} bytes, not 65 (r || s || v)`);
	const r = big(sig.subarray(0, 32)), s = big(sig.subarray(32, 64));
	let v = sig[64];
	if (v >= 27)
		v -= 27;
	if (v > 1)
		throw new Error(`the signature's recovery id ${sig[64]} is not 0, 1, 27 or 28`);
	if (r === 0n || r >= N || s === 0n || s >= N)
		throw new Error('the signature is not valid (r or s out of range)');
	const alpha = mod(r * r * r + 7n, P);
	let y = powmod(alpha, (P + 1n) / 4n, P);
	if ((y * y) % P !== alpha)
		throw new Error('the signature is not valid (r is not on the curve)');
	if (Number(y & 1n) !== v)
		y = P - y;
	const z = mod(big(digest), N), rInv = inv(r, N);
	const q = add(mul(mod(-z * rInv, N), G), mul(mod(s * rInv, N), { x: r, y }));
	if (q === null)
		throw new Error('the signature is not valid (it recovers to no key)');
	return ((q.y & 1n) ? '03' : '02') + q.x.toString(16).padStart(64, '0');
}

// envKeyDigest is what the KMS signs for `appId` (20 bytes), `timestamp`
// (Unix seconds) and `pub` (32 bytes).
export function envKeyDigest(appId, timestamp, pub) {
	const label = new TextEncoder().encode('dstack-env-encrypt-pubkey:');
	const msg = new Uint8Array(label.length + 20 + 8 + 32);
	msg.set(label, 0);
	msg.set(appId, label.length);
	let t = BigInt(timestamp);
	for (let i = 7; i >= 0; i--) {
		msg[label.length + 20 + i] = Number(t & 0xffn);
		t >>= 8n;
	}
	msg.set(pub, label.length + 28);
	return keccak256(msg);
}

// checkEnvKey throws an Error saying what did not hold unless the KMS
// whose compressed key is `kmsPubHex` signed `pub` as the env key of
// `appId` with signature_v1 at a `timestamp` at most `maxAge` seconds
// before `now` and at most 60 s after it (the SDK's and cvm's rule).
export function checkEnvKey({ kmsPubHex, appId, pub, timestamp, sigV1, now, maxAge = 300 }) {
	const pin = String(kmsPubHex).trim().toLowerCase().replace(/^0x/, '');
	if (!/^0[23][0-9a-f]{64}$/.test(pin))
		throw new Error('the pinned KMS key must be a compressed secp256k1 key (66 hex digits, 02 or 03 first)');
	if (!sigV1 || sigV1.length === 0)
		throw new Error('the VMM\'s answer has no signature_v1: the env key cannot be checked');
	const ts = typeof timestamp === 'string' && /^[0-9]{1,20}$/.test(timestamp) ? BigInt(timestamp) :
		(Number.isSafeInteger(timestamp) && timestamp >= 0 ? BigInt(timestamp) : null);
	if (ts === null || ts > 0xffffffffffffffffn)
		throw new Error('the VMM\'s answer has no valid timestamp');
	const got = recoverCompressed(envKeyDigest(appId, ts, pub), sigV1);
	if (got !== pin)
		throw new Error(`the env key is not signed by the pinned KMS key (the signature recovers to ${got})`);
	const t = BigInt(Math.floor(now));
	if (ts + BigInt(maxAge) < t)
		throw new Error(`the env key's signature is ${t - ts} s old (at most ${maxAge} s allowed)`);
	if (ts > t + 60n)
		throw new Error(`the env key's signature is dated ${ts - t} s in the future`);
	return hex(pub);
}
