// Driven by webui_modules.sh: the web UI's modules against cvmkit's C side.
// usage: node webui_modules.mjs WEBUI_DIR APP_ID NOW ANSWER OTHER_APP_ANSWER META DERIVE CVM TMPDIR
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { execFileSync } from 'child_process';
import { pathToFileURL } from 'url';

const [, , webui, appHex, nowText, answerFile, otherFile, metaFile, deriveFile, cvm, tmp] = process.argv;
const { checkEnvKey, keccak256, sponge256 } = await import(pathToFileURL(path.join(webui, 'kmssig.js')).href);
const { encryptEnv, parseEnvLines } = await import(pathToFileURL(path.join(webui, 'envcrypt.js')).href);
const answer = JSON.parse(fs.readFileSync(answerFile, 'utf8'));
const other = JSON.parse(fs.readFileSync(otherFile, 'utf8'));
const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
const derive = JSON.parse(fs.readFileSync(deriveFile, 'utf8'));
const now = Number(nowText);
const hexb = (h) => Uint8Array.from(Buffer.from(h, 'hex'));
const hex = (b) => Buffer.from(b).toString('hex');

let failures = 0, checks = 0;
function ok(cond, what) {
	checks++;
	if (!cond) {
		failures++;
		console.error(`FAIL: ${what}`);
	}
}
function refused(args, want, what) {
	try {
		checkEnvKey(args);
		ok(false, `${what}: accepted`);
	} catch (e) {
		ok(want.test(e.message), `${what}: refused with "${e.message}", expected ${want}`);
	}
}

// Keccak-256: published values, then the sponge against node's SHA3-256.
ok(hex(keccak256(new Uint8Array(0))) === 'c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470',
	'keccak256("")');
ok(hex(keccak256(new TextEncoder().encode('abc'))) ===
	'4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45', 'keccak256("abc")');
for (const n of [1, 55, 135, 136, 137, 271, 272, 273, 1000]) {
	const b = crypto.randomBytes(n);
	ok(hex(sponge256(b, 0x06)) === crypto.createHash('sha3-256').update(b).digest('hex'), `SHA3-256 of ${n} bytes`);
}

// The env key in the answer is the one the KMS derives for the app.
ok(answer.public_key === derive.env_crypt_public_key, 'the signer signed the derived env key');
const base = {
	kmsPubHex: meta.k256_pubkey, appId: hexb(appHex), pub: hexb(answer.public_key),
	timestamp: answer.timestamp, sigV1: hexb(answer.signature_v1), now,
};
try {
	ok(checkEnvKey(base) === answer.public_key, 'a good answer is accepted');
	checkEnvKey({ ...base, timestamp: String(answer.timestamp), kmsPubHex: '0x' + meta.k256_pubkey.toUpperCase() });
	const v27 = Uint8Array.from(base.sigV1);
	v27[64] += 27;
	checkEnvKey({ ...base, sigV1: v27 });
} catch (e) {
	ok(false, `a good answer is refused: ${e.message}`);
}
for (let i = 0; i < 65; i += 7) {
	const sig = Uint8Array.from(base.sigV1);
	sig[i] ^= 0x01;
	refused({ ...base, sigV1: sig }, /not signed by the pinned KMS key|not valid|recovery id/, `signature byte ${i} changed`);
}
refused({ ...base, sigV1: base.sigV1.subarray(0, 64) }, /65/, 'a 64-byte signature');
refused({ ...base, appId: hexb('5bb4ff9a3837357f19dc176407a5709c62eb6c56') },
	/not signed by the pinned/, 'another app id');
refused({ ...base, pub: hexb(other.public_key) }, /not signed by the pinned/, 'another app\'s env key');
refused({ ...base, pub: hexb(other.public_key), sigV1: hexb(other.signature_v1) }, /not signed by the pinned/,
	'another app\'s answer for this app');
const otherKms = crypto.createECDH('secp256k1');
otherKms.generateKeys();
refused({ ...base, kmsPubHex: otherKms.getPublicKey('hex', 'compressed') }, /not signed by the pinned/, 'another KMS key');
refused({ ...base, kmsPubHex: meta.k256_pubkey.slice(0, 64) }, /66 hex digits/, 'a malformed pinned key');
refused({ ...base, timestamp: Number(answer.timestamp) + 1 }, /not signed by the pinned|not valid/, 'another timestamp');
refused({ ...base, now: now + 301 }, /old/, 'a stale signature');
refused({ ...base, now: now - 61 }, /future/, 'a signature from the future');
refused({ ...base, sigV1: new Uint8Array(0) }, /no signature_v1/, 'no signature_v1');
refused({ ...base, timestamp: 'soon' }, /timestamp/, 'a timestamp that is no number');

// envcrypt.js: the ENVFILE rules, then a blob that cvm app decrypt-env opens.
const lines = '  A = "x y" \r\n# comment\n\nB=say "hi"\nC=\'q\'\nD=a#b\nE=\n\tF\t=\tü\t';
const want = [['A', 'x y'], ['B', 'say "hi"'], ['C', 'q'], ['D', 'a#b'], ['E', ''], ['F', 'ü']];
const got = parseEnvLines(lines);
ok(JSON.stringify(got.map((v) => [v.key, v.value])) === JSON.stringify(want), `parseEnvLines: ${JSON.stringify(got)}`);
for (const [bad, why] of [['A=1\nA=2', /twice/], ['A="x', /quote/], ['1A=2', /not a valid name/], ['noeq', /NAME=value/],
	['A=a\0b', /NUL/], ['A=' + 'x'.repeat(128 * 1024 + 1), /128 KiB/]]) {
	try {
		parseEnvLines(bad);
		ok(false, `parseEnvLines accepted ${JSON.stringify(bad.slice(0, 20))}`);
	} catch (e) {
		ok(why.test(e.message), `parseEnvLines(${JSON.stringify(bad.slice(0, 20))}): ${e.message}`);
	}
}
const envFile = path.join(tmp, 'lines.env');
fs.writeFileSync(envFile, lines);
const cvmList = execFileSync(cvm, ['app', 'encrypt-env', '--pubkey', derive.env_crypt_public_key, '--json', envFile],
	{ encoding: 'utf8' });
ok(JSON.parse(cvmList).names === want.length, 'cvm app encrypt-env reads as many names from the same lines');
const blob = await encryptEnv(got, Uint8Array.from(Buffer.from(derive.env_crypt_public_key, 'hex')));
fs.writeFileSync(path.join(tmp, 'blob.bin'), blob);
const opened = JSON.parse(execFileSync(cvm, ['app', 'decrypt-env', '--json', '--key-file', path.join(tmp, 'env.key'),
	path.join(tmp, 'blob.bin')], { encoding: 'utf8' }));
ok(JSON.stringify(opened) === JSON.stringify(Object.fromEntries(want)), `decrypt-env opens the page's blob: ${JSON.stringify(opened)}`);
const flipped = Uint8Array.from(blob);
flipped[50] ^= 1;
fs.writeFileSync(path.join(tmp, 'flipped.bin'), flipped);
let flippedOpened = true;
try {
	execFileSync(cvm, ['app', 'decrypt-env', '--key-file', path.join(tmp, 'env.key'), path.join(tmp, 'flipped.bin')],
		{ stdio: 'pipe' });
} catch (_) {
	flippedOpened = false;
}
ok(!flippedOpened, 'a blob with a changed byte does not open');

if (failures) {
	console.error(`webui_modules: ${failures} of ${checks} checks failed`);
	process.exit(1);
}
console.log(`webui_modules: ${checks} checks passed`);
