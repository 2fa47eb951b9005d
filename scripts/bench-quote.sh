#!/usr/bin/env bash
# Side-by-side DCAP quote verification speed: cvmkit cold and warm against the
# npm peers @phala/dcap-qvl (JS) and @phala/dcap-qvl-web (WASM), on one vector,
# in one run. See bench/README.md.
#
# Usage: scripts/bench-quote.sh [VECTOR_DIR]
#   VECTOR_DIR  default /work/shared/vectors/tdx/dcapqvl-tdx-v4-uptodate; it needs quote.bin,
#               collateral.json, the collateral files and manifest.json (verify_at_unix).
# Environment:
#   CVM_BUILD_DIR          build folder holding bin/bench_quote_verify (default: build)
#   CVM_BENCH_COLD_COUNT   iterations of our cold run (5000; the figure includes building the
#                          per-key tables of lib/crypto/p256.c at the 8th use of each key)
#   CVM_BENCH_WARM_COUNT   iterations of our warm run (20000)
#   CVM_BENCH_JS_COUNT     iterations of @phala/dcap-qvl (300)
#   CVM_BENCH_WASM_COUNT   iterations of @phala/dcap-qvl-web (300)
#   CVM_BENCH_ROOT         trust anchor (DER) for our runs (default: the built-in Intel SGX Root CA,
#                          which the peers also use)
# The peers are installed into $CVM_BUILD_DIR/bench-peers, never into the source tree. Nothing is
# built here. Exits non-zero if any run failed or could not run; a missed target only prints MISSED.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
vec="${1:-/work/shared/vectors/tdx/dcapqvl-tdx-v4-uptodate}"
build="${CVM_BUILD_DIR:-$src/build}"
case "$build" in
/*) ;;
*) build="$src/$build" ;;
esac
peers="$build/bench-peers"
bench="$build/bin/bench_quote_verify"
cold_n="${CVM_BENCH_COLD_COUNT:-5000}"
warm_n="${CVM_BENCH_WARM_COUNT:-20000}"
js_n="${CVM_BENCH_JS_COUNT:-300}"
wasm_n="${CVM_BENCH_WASM_COUNT:-300}"
targets_warm=50
targets_cold=15

die() {
	echo "bench-quote: $*" >&2
	exit 1
}

[ "$#" -le 1 ] || die "usage: scripts/bench-quote.sh [VECTOR_DIR]"
for f in quote.bin collateral.json manifest.json tcb_info.json; do
	[ -f "$vec/$f" ] || die "$vec/$f is missing: VECTOR_DIR must be a tdx/ or sgx/ vector folder"
done
for n in "$cold_n" "$warm_n" "$js_n" "$wasm_n"; do
	case "$n" in
	'' | *[!0-9]* | 0) die "iteration counts must be positive integers (got \"$n\")" ;;
	esac
done
command -v node >/dev/null || die "node is needed for the peers (Node.js 18 or later)"

# verify_at_unix from the manifest, with node (needed anyway) or python3.
at="$(node -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	if (!Number.isInteger(m.verify_at_unix)) process.exit(1);
	console.log(m.verify_at_unix);' "$vec/manifest.json" 2>/dev/null ||
	python3 -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["verify_at_unix"]))' \
		"$vec/manifest.json")" || die "$vec/manifest.json has no integer verify_at_unix"

# jget LINE KEY prints one field of a JSON line ("" if absent or not JSON).
jget() {
	node -e 'try { const v = JSON.parse(process.argv[1])[process.argv[2]];
		console.log(v === undefined ? "" : v); } catch (e) { console.log(""); }' "$1" "$2"
}

# --- install the peers (exact versions from bench/peers/package.json) ---
mkdir -p "$peers"
installed_ok() {
	node -e 'const p = require(process.argv[1] + "/package.json");
		for (const [n, v] of Object.entries(p.dependencies)) {
			let got;
			try { got = require(process.argv[1] + "/node_modules/" + n + "/package.json").version; }
			catch (e) { process.exit(1); }
			if (got !== v) process.exit(1);
		}' "$peers"
}
if cmp -s "$src/bench/peers/package.json" "$peers/package.json" && installed_ok; then
	echo "bench-quote: peers already installed in $peers"
else
	cp "$src/bench/peers/package.json" "$peers/package.json"
	(
		cd "$peers"
		if [ -f package-lock.json ] && npm ci --no-audit --no-fund --loglevel=error; then
			:
		else
			rm -f package-lock.json
			npm install --no-audit --no-fund --loglevel=error
		fi
	) >&2 || die "npm could not install the peers into $peers"
	installed_ok || die "the peers in $peers do not match bench/peers/package.json"
fi

# --- what we run on ---
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
echo "bench-quote: vector $vec, at $at"
echo "bench-quote: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || echo '?') CPUs, node $(node --version)," \
	"one thread each"
if [ -f "$build/CMakeCache.txt" ]; then
	btype="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	san="$(sed -n 's/^CVM_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	echo "bench-quote: cvmkit build $build (${btype:-no build type}${san:+, sanitizers $san})"
	if [ "$btype" = Debug ] || [ -n "$san" ]; then
		echo "bench-quote: warning: a Debug or sanitizer build is not representative" >&2
	fi
fi

failed=0
cold="" warm="" js="" wasm=""

# run NAME CMD...: runs one benchmark, prints its JSON line, stores it in $NAME.
run() {
	local name="$1" out rc
	shift
	rc=0
	out="$("$@")" || rc=$?
	out="$(printf '%s\n' "$out" | tail -n 1)"
	if [ "$rc" -ne 0 ] || [ "$(jget "$out" ok)" != true ]; then
		echo "bench-quote: the $name run failed (exit $rc)${out:+: $out}" >&2
		failed=1
		return 0
	fi
	printf '%s\n' "$out"
	printf -v "$name" '%s' "$out"
}

root_args=()
if [ -n "${CVM_BENCH_ROOT:-}" ]; then
	root_args=(--root "$CVM_BENCH_ROOT")
fi
if [ -x "$bench" ]; then
	run cold "$bench" --quote "$vec/quote.bin" --collateral "$vec" --at "$at" --count "$cold_n" \
		--mode cold "${root_args[@]}"
	run warm "$bench" --quote "$vec/quote.bin" --collateral "$vec" --at "$at" --count "$warm_n" \
		--mode warm "${root_args[@]}"
else
	echo "bench-quote: $bench is missing; build it first (an optimised build, no sanitizers):" >&2
	echo "  cmake -S $src -B $build && cmake --build $build --target bench_quote_verify" >&2
	failed=1
fi
# For information: a new `cvm quote verify` process per quote (process start,
# OpenSSL set-up, one cold verification, output), what a one-shot CLI user sees.
cvm="$build/bin/cvm"
if [ -x "$cvm" ]; then
	oneshot_n=20
	t0="$(date +%s%N)"
	for _ in $(seq "$oneshot_n"); do
		rc=0
		"$cvm" quote verify "$vec/quote.bin" --collateral "$vec" --at "$at" "${root_args[@]}" \
			>/dev/null 2>&1 || rc=$?
		[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || {
			echo "bench-quote: cvm quote verify failed (exit $rc)" >&2
			failed=1
			break
		}
	done
	t1="$(date +%s%N)"
	echo "bench-quote: one-shot, a new cvm process per quote (information only):" \
		"$(awk -v ns="$((t1 - t0))" -v n="$oneshot_n" 'BEGIN { printf "%.2f ms each", ns / n / 1e6 }')"
fi
peer_bench="$src/bench/peers/dcap_qvl_bench.mjs"
run js node "$peer_bench" --peers "$peers" --impl js --quote "$vec/quote.bin" \
	--collateral-json "$vec/collateral.json" --at "$at" --count "$js_n"
run wasm node "$peer_bench" --peers "$peers" --impl wasm --quote "$vec/quote.bin" \
	--collateral-json "$vec/collateral.json" --at "$at" --count "$wasm_n"

# --- ratios and verdict ---
rate() {
	if [ -n "$1" ]; then
		jget "$1" per_second
	fi
}
r_cold="$(rate "$cold")" r_warm="$(rate "$warm")" r_js="$(rate "$js")" r_wasm="$(rate "$wasm")"
ratio() {
	if [ -n "$1" ] && [ -n "$2" ]; then
		awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; }'
	fi
}
x_cold_web="$(ratio "$r_cold" "$r_wasm")" x_warm_web="$(ratio "$r_warm" "$r_wasm")"
x_cold_js="$(ratio "$r_cold" "$r_js")" x_warm_js="$(ratio "$r_warm" "$r_js")"
fmt() {
	if [ -n "$1" ]; then
		printf '%sx' "$1"
	else
		printf 'n/a'
	fi
}
echo "ratios: cold/web $(fmt "$x_cold_web"), warm/web $(fmt "$x_warm_web")," \
	"cold/js $(fmt "$x_cold_js"), warm/js $(fmt "$x_warm_js")"

if [ -z "$x_cold_web" ] || [ -z "$x_warm_web" ]; then
	echo "verdict: UNKNOWN (a run failed; targets: warm >= ${targets_warm}x web, cold >= ${targets_cold}x web)"
else
	verdict="$(awk -v w="$x_warm_web" -v c="$x_cold_web" -v tw="$targets_warm" -v tc="$targets_cold" 'BEGIN {
		m = "";
		if (w + 0 < tw + 0) m = m sprintf(" warm %sx < %dx", w, tw);
		if (c + 0 < tc + 0) m = m sprintf(" cold %sx < %dx", c, tc);
		print (m == "" ? "MET" : "MISSED:" m);
	}')"
	echo "verdict: $verdict (targets: warm >= ${targets_warm}x web, cold >= ${targets_cold}x web)"
fi
exit "$failed"
