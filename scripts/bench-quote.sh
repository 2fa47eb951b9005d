#!/usr/bin/env bash
# Side-by-side DCAP quote verification speed: cvmkit cold and warm against the
# npm peers @phala/dcap-qvl (JS) and @phala/dcap-qvl-web (WASM), on one vector,
# in one run. See bench/README.md.
#
# Usage: scripts/bench-quote.sh [VECTOR_DIR]
#   VECTOR_DIR  default tests/vectors/tdx/dcapqvl-tdx-v4-uptodate; it needs quote.bin,
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
bench_name="bench-quote"
# shellcheck source=scripts/bench-common.sh
. "$src/scripts/bench-common.sh"
vec="${1:-$src/tests/vectors/tdx/dcapqvl-tdx-v4-uptodate}"
build="$(bench_build_dir "$src")"
peers="$build/bench-peers"
bench="$build/bin/bench_quote_verify"
cold_n="${CVM_BENCH_COLD_COUNT:-5000}"
warm_n="${CVM_BENCH_WARM_COUNT:-20000}"
js_n="${CVM_BENCH_JS_COUNT:-300}"
wasm_n="${CVM_BENCH_WASM_COUNT:-300}"
targets_warm=50
targets_cold=15

[ "$#" -le 1 ] || bench_die "usage: scripts/bench-quote.sh [VECTOR_DIR]"
for f in quote.bin collateral.json manifest.json tcb_info.json; do
	[ -f "$vec/$f" ] || bench_die "$vec/$f is missing: VECTOR_DIR must be a tdx/ or sgx/ vector folder"
done
bench_counts "$cold_n" "$warm_n" "$js_n" "$wasm_n"
command -v node >/dev/null || bench_die "node is needed for the peers (Node.js 18 or later)"
at="$(bench_verify_at "$vec/manifest.json")"

# --- install the peers (exact versions from bench/peers/package.json) ---
bench_install_peers "$src/bench/peers/package.json" "$peers"

echo "bench-quote: vector $vec, at $at"
bench_machine "$build"

failed=0
cold="" warm="" js="" wasm=""

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
r_cold="$(rate "$cold")" r_warm="$(rate "$warm")" r_js="$(rate "$js")" r_wasm="$(rate "$wasm")"
x_cold_web="$(ratio "$r_cold" "$r_wasm")" x_warm_web="$(ratio "$r_warm" "$r_wasm")"
x_cold_js="$(ratio "$r_cold" "$r_js")" x_warm_js="$(ratio "$r_warm" "$r_js")"
echo "ratios: cold/web $(fmtx "$x_cold_web"), warm/web $(fmtx "$x_warm_web")," \
	"cold/js $(fmtx "$x_cold_js"), warm/js $(fmtx "$x_warm_js")"
bench_verdict "$x_warm_web" "$x_cold_web" "$targets_warm" "$targets_cold" "web"
exit "$failed"
