// sev_snp_bench.mjs: how many SEV-SNP reports per second @lit-protocol/sev-snp-utils-sdk verifies, for
// the side-by-side comparison in scripts/bench-snp.sh (see bench/README.md).
//
//   node sev_snp_bench.mjs --report FILE --vcek FILE --count N [--peers DIR]
//
// verify_attestation_report(base64(report), vcek_der) checks the VCEK against the SDK's built-in
// Milan ASK and ARK and the report signature under the VCEK, from scratch on every call (the SDK keeps
// no cache), so the line says "mode": "cold". Before timing, one untimed call must succeed and the
// same report with one bit flipped in its signed part must be rejected (so the run measures a
// verifier that verifies). Every timed call must succeed. Prints one JSON line; exit 0 ok, 1 a
// failed verification or error, 2 usage.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const PROG = "sev_snp_bench";
const COUNT_MAX = 100000000;

function usage(out) {
	out.write(`usage: node ${PROG}.mjs --report FILE --vcek FILE --count N [--peers DIR]\n`);
}

function usageError(msg) {
	process.stderr.write(`${PROG}: ${msg}\n`);
	usage(process.stderr);
	process.exit(2);
}

function parseArgs(argv) {
	const o = { peers: path.dirname(fileURLToPath(import.meta.url)) };
	const names = { "--report": "report", "--vcek": "vcek", "--count": "count", "--peers": "peers" };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === "-h" || a === "--help") {
			usage(process.stdout);
			process.exit(0);
		}
		if (!(a in names))
			usageError(`unknown argument "${a}"`);
		if (i + 1 >= argv.length)
			usageError(`${a} needs a value`);
		o[names[a]] = argv[++i];
	}
	for (const k of ["report", "vcek", "count"]) {
		if (o[k] === undefined)
			usageError("--report, --vcek and --count are required");
	}
	if (!/^[0-9]+$/.test(o.count) || Number(o.count) < 1 || Number(o.count) > COUNT_MAX)
		usageError(`--count wants a number from 1 to ${COUNT_MAX}, not "${o.count}"`);
	o.count = Number(o.count);
	return o;
}

function line(o) {
	process.stdout.write(JSON.stringify(o) + "\n");
}

async function main() {
	const o = parseArgs(process.argv.slice(2));
	const require = createRequire(path.join(path.resolve(o.peers), "package.json"));
	const sdk = require("@lit-protocol/sev-snp-utils-sdk");
	const version = require("@lit-protocol/sev-snp-utils-sdk/package.json").version;
	const report = fs.readFileSync(o.report);
	const vcek = new Uint8Array(fs.readFileSync(o.vcek));
	const b64 = report.toString("base64");
	const result = { impl: "sev-snp-utils-sdk", version, mode: "cold", count: 0, seconds: 0, per_second: 0, ok: false };

	await sdk.initWasmSevSnpUtilsSdk();
	try {
		await sdk.verify_attestation_report(b64, vcek);
	} catch (e) {
		process.stderr.write(`${PROG}: the warm-up verification failed: ${e}\n`);
		line(result);
		process.exit(1);
	}
	const tampered = Buffer.from(report);
	tampered[0x90] ^= 0x01; /* a bit of MEASUREMENT */
	let rejected = false;
	try {
		await sdk.verify_attestation_report(tampered.toString("base64"), vcek);
	} catch (e) {
		rejected = true;
	}
	if (!rejected) {
		process.stderr.write(`${PROG}: the SDK accepted a tampered report; it measures nothing\n`);
		line(result);
		process.exit(1);
	}
	const t0 = process.hrtime.bigint();
	for (let i = 0; i < o.count; i++) {
		try {
			await sdk.verify_attestation_report(b64, vcek);
		} catch (e) {
			const t = Number(process.hrtime.bigint() - t0) / 1e9;
			process.stderr.write(`${PROG}: iteration ${i + 1} of ${o.count} failed: ${e}\n`);
			line({ ...result, count: i, seconds: t });
			process.exit(1);
		}
	}
	const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
	line({ ...result, count: o.count, seconds: Number(seconds.toFixed(6)),
		per_second: Number((o.count / seconds).toFixed(1)), ok: true });
}

main().catch((e) => {
	process.stderr.write(`${PROG}: ${e && e.stack ? e.stack : e}\n`);
	process.exit(1);
});
