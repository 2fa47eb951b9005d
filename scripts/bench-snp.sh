#!/usr/bin/env bash
# Side-by-side SEV-SNP report verification speed: cvmkit cold and warm against the npm peer
# @lit-protocol/sev-snp-utils-sdk, on one vector, in one run. See bench/README.md.
#
# Usage: scripts/bench-snp.sh [VECTOR_DIR]
#   VECTOR_DIR  default tests/vectors/snp/gosevguest-milan-vcek (the peer verifies Milan VCEK
#               chains only); it needs report.bin, vcek.der, ask.pem, ark.pem and manifest.json
#               (verify_at_unix).
# Environment:
#   CVM_BUILD_DIR          build folder holding bin/bench_quote_verify (default: build)
#   CVM_BENCH_COLD_COUNT   iterations of our cold run (3000)
#   CVM_BENCH_WARM_COUNT   iterations of our warm run (10000)
#   CVM_BENCH_PEER_COUNT   iterations of the peer (300)
# The peer is installed into $CVM_BUILD_DIR/bench-peers-snp, never into the source tree. Nothing is
# built here. Exits non-zero if any run failed or could not run; a missed target only prints MISSED.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
bench_name="bench-snp"
# shellcheck source=scripts/bench-common.sh
. "$src/scripts/bench-common.sh"
vec="${1:-$src/tests/vectors/snp/gosevguest-milan-vcek}"
build="$(bench_build_dir "$src")"
peers="$build/bench-peers-snp"
bench="$build/bin/bench_quote_verify"
cold_n="${CVM_BENCH_COLD_COUNT:-3000}"
warm_n="${CVM_BENCH_WARM_COUNT:-10000}"
peer_n="${CVM_BENCH_PEER_COUNT:-300}"
target_warm=30
target_cold=25

[ "$#" -le 1 ] || bench_die "usage: scripts/bench-snp.sh [VECTOR_DIR]"
for f in report.bin vcek.der manifest.json; do
	[ -f "$vec/$f" ] || bench_die "$vec/$f is missing: VECTOR_DIR must be an snp/ vector folder with a VCEK"
done
bench_counts "$cold_n" "$warm_n" "$peer_n"
command -v node >/dev/null || bench_die "node is needed for the peer (Node.js 18 or later)"
at="$(bench_verify_at "$vec/manifest.json")"

# --- install the peer (exact versions from bench/peers/snp/package.json) ---
bench_install_peers "$src/bench/peers/snp/package.json" "$peers"

echo "bench-snp: vector $vec, at $at"
bench_machine "$build"

failed=0
cold="" warm="" peer=""
if [ -x "$bench" ]; then
	run cold "$bench" --type snp --quote "$vec/report.bin" --collateral "$vec" --at "$at" \
		--count "$cold_n" --mode cold
	run warm "$bench" --type snp --quote "$vec/report.bin" --collateral "$vec" --at "$at" \
		--count "$warm_n" --mode warm
else
	echo "bench-snp: $bench is missing; build it first (an optimised build, no sanitizers):" >&2
	echo "  cmake -S $src -B $build && cmake --build $build --target bench_quote_verify" >&2
	failed=1
fi
run peer node "$src/bench/peers/snp/sev_snp_bench.mjs" --peers "$peers" --report "$vec/report.bin" \
	--vcek "$vec/vcek.der" --count "$peer_n"

r_cold="$(rate "$cold")" r_warm="$(rate "$warm")" r_peer="$(rate "$peer")"
x_cold="$(ratio "$r_cold" "$r_peer")" x_warm="$(ratio "$r_warm" "$r_peer")"
echo "ratios: cold/peer $(fmtx "$x_cold"), warm/peer $(fmtx "$x_warm")"
bench_verdict "$x_warm" "$x_cold" "$target_warm" "$target_cold" "the peer"
exit "$failed"
