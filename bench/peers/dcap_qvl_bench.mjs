// dcap_qvl_bench.mjs: how many DCAP quotes per second the npm peers verify, for
// the side-by-side comparison in scripts/bench-quote.sh (see bench/README.md).
//
//   node dcap_qvl_bench.mjs --impl js|wasm --quote FILE --collateral-json FILE --at UNIX_SECONDS --count N
//                           [--peers DIR]
//
// --impl js    @phala/dcap-qvl (pure JavaScript): verify(quote, collateral, nowSecs)
// --impl wasm  @phala/dcap-qvl-web (Rust compiled to WASM): js_verify(Uint8Array, collateral, BigInt(now))
// --peers DIR  the folder whose node_modules holds the packages (default: this file's folder)
//
// Each call verifies everything from the collateral it is given (the peers keep no cache), so the line
// says "mode": "cold". One untimed warm-up; every timed call must return the warm-up's status, or the
// run fails. Prints one JSON line; exit 0 ok, 1 a failed verification or error, 2 usage.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const PROG = "dcap_qvl_bench";
const COUNT_MAX = 100000000;

function usage(out) {
	out.write(
		`usage: node ${PROG}.mjs --impl js|wasm --quote FILE --collateral-json FILE --at UNIX_SECONDS --count N\n` +
			"       [--peers DIR]\n",
	);
}

function usageError(msg) {
	process.stderr.write(`${PROG}: ${msg}\n`);
	usage(process.stderr);
	process.exit(2);
}

function parseArgs(argv) {
	const o = { peers: path.dirname(fileURLToPath(import.meta.url)) };
	const names = { "--impl": "impl", "--quote": "quote", "--collateral-json": "collateral", "--at": "at",
		"--count": "count", "--peers": "peers" };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === "-h" || a === "--help") {
			usage(process.stdout);
			process.exit(0);
		}
		let key = a;
		let val;
		const eq = a.indexOf("=");
		if (a.startsWith("--") && eq > 0) {
			key = a.slice(0, eq);
			val = a.slice(eq + 1);
		}
		if (!(key in names))
			usageError(`unknown argument "${a}"`);
		if (val === undefined) {
			if (i + 1 >= argv.length)
				usageError(`${key} needs a value`);
			val = argv[++i];
		}
		o[names[key]] = val;
	}
	for (const k of ["impl", "quote", "collateral", "at", "count"]) {
		if (o[k] === undefined)
			usageError("--impl, --quote, --collateral-json, --at and --count are required");
	}
	if (o.impl !== "js" && o.impl !== "wasm")
		usageError(`--impl is js or wasm, not "${o.impl}"`);
	if (!/^-?[0-9]+$/.test(o.at))
		usageError(`--at wants Unix seconds, not "${o.at}"`);
	if (!/^[0-9]+$/.test(o.count) || Number(o.count) < 1 || Number(o.count) > COUNT_MAX)
		usageError(`--count wants a number from 1 to ${COUNT_MAX}, not "${o.count}"`);
	o.count = Number(o.count);
	return o;
}

// Loads the chosen peer from DIR/node_modules and returns a function (quote, collateral) -> status.
async function loadPeer(o) {
	const require = createRequire(path.join(path.resolve(o.peers), "package.json"));
	const at = Number(o.at);
	if (o.impl === "js") {
		const { verify } = require("@phala/dcap-qvl");
		return { version: require("@phala/dcap-qvl/package.json").version,
			verifyOnce: (quote, coll) => verify(quote, coll, at) };
	}
	const entry = require.resolve("@phala/dcap-qvl-web");
	const web = await import(pathToFileURL(entry).href);
	web.initSync({ module: fs.readFileSync(path.join(path.dirname(entry), "dcap-qvl-web_bg.wasm")) });
	const atBig = BigInt(o.at);
	return { version: require("@phala/dcap-qvl-web/package.json").version,
		verifyOnce: (quote, coll) => web.js_verify(quote, coll, atBig) };
}

function statusOf(result) {
	const s = result instanceof Map ? result.get("status") : result?.status;
	if (typeof s !== "string" || s === "")
		throw new Error(`the verifier returned no status: ${JSON.stringify(result)}`);
	return s;
}

function printResult(o, version, done, seconds, ok, status, error) {
	const line = { impl: o.impl, version, mode: "cold", count: done, seconds: Number(seconds.toFixed(6)),
		per_second: seconds > 0 ? Number((done / seconds).toFixed(1)) : 0, ok, tcb_status: status ?? "None" };
	if (error !== undefined)
		line.error = error;
	process.stdout.write(JSON.stringify(line) + "\n");
}

async function main() {
	const o = parseArgs(process.argv.slice(2));
	let peer;
	let quote;
	let coll;
	try {
		peer = await loadPeer(o);
		quote = new Uint8Array(fs.readFileSync(o.quote));
		coll = JSON.parse(fs.readFileSync(o.collateral, "utf8"));
	} catch (e) {
		const hint = e.code === "MODULE_NOT_FOUND" ?
			` (install the peers: scripts/bench-quote.sh does it, or npm install in --peers ${o.peers})` : "";
		process.stderr.write(`${PROG}: ${o.impl}: ${e.message.split("\n")[0]}${hint}\n`);
		process.exit(1);
	}

	let expect;
	try {
		expect = statusOf(peer.verifyOnce(quote, coll));
	} catch (e) {
		process.stderr.write(`${PROG}: ${o.impl}: the warm-up verification failed: ${e.message ?? e}\n`);
		printResult(o, peer.version, 0, 0, false, undefined, String(e.message ?? e));
		process.exit(1);
	}

	let i = 0;
	let failure;
	const t0 = process.hrtime.bigint();
	try {
		for (; i < o.count; i++) {
			const s = statusOf(peer.verifyOnce(quote, coll));
			if (s !== expect) {
				failure = `status ${s}, the warm-up gave ${expect}`;
				break;
			}
		}
	} catch (e) {
		failure = String(e.message ?? e);
	}
	const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
	if (failure !== undefined) {
		process.stderr.write(`${PROG}: ${o.impl}: iteration ${i + 1} of ${o.count} failed: ${failure}; ` +
			"a benchmark of failures is meaningless\n");
		printResult(o, peer.version, i, seconds, false, expect, failure);
		process.exit(1);
	}
	printResult(o, peer.version, o.count, seconds, true, expect);
}

await main();
