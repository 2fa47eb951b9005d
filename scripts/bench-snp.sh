#!/usr/bin/env bash
# Side-by-side SEV-SNP report verification speed: cvmkit cold and warm against the npm peer
# @lit-protocol/sev-snp-utils-sdk, on one vector, in one run. See bench/README.md.
#
# Usage: scripts/bench-snp.sh [VECTOR_DIR]
#   VECTOR_DIR  default /work/shared/vectors/snp/gosevguest-milan-vcek (the peer verifies Milan VCEK
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
vec="${1:-/work/shared/vectors/snp/gosevguest-milan-vcek}"
build="${CVM_BUILD_DIR:-$src/build}"
case "$build" in
/*) ;;
*) build="$src/$build" ;;
esac
peers="$build/bench-peers-snp"
bench="$build/bin/bench_quote_verify"
cold_n="${CVM_BENCH_COLD_COUNT:-3000}"
warm_n="${CVM_BENCH_WARM_COUNT:-10000}"
peer_n="${CVM_BENCH_PEER_COUNT:-300}"
target_warm=30
target_cold=25

die() {
	echo "bench-snp: $*" >&2
	exit 1
}

[ "$#" -le 1 ] || die "usage: scripts/bench-snp.sh [VECTOR_DIR]"
for f in report.bin vcek.der manifest.json; do
	[ -f "$vec/$f" ] || die "$vec/$f is missing: VECTOR_DIR must be an snp/ vector folder with a VCEK"
done
for n in "$cold_n" "$warm_n" "$peer_n"; do
	case "$n" in
	'' | *[!0-9]* | 0) die "iteration counts must be positive integers (got \"$n\")" ;;
	esac
done
command -v node >/dev/null || die "node is needed for the peer (Node.js 18 or later)"

at="$(node -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	if (!Number.isInteger(m.verify_at_unix)) process.exit(1);
	console.log(m.verify_at_unix);' "$vec/manifest.json" 2>/dev/null)" ||
	die "$vec/manifest.json has no integer verify_at_unix"

jget() {
	node -e 'try { const v = JSON.parse(process.argv[1])[process.argv[2]];
		console.log(v === undefined ? "" : v); } catch (e) { console.log(""); }' "$1" "$2"
}

# --- install the peer (exact versions from bench/peers/snp/package.json) ---
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
if cmp -s "$src/bench/peers/snp/package.json" "$peers/package.json" && installed_ok; then
	echo "bench-snp: peer already installed in $peers"
else
	cp "$src/bench/peers/snp/package.json" "$peers/package.json"
	(
		cd "$peers"
		if [ -f package-lock.json ] && npm ci --no-audit --no-fund --loglevel=error; then
			:
		else
			rm -f package-lock.json
			npm install --no-audit --no-fund --loglevel=error
		fi
	) >&2 || die "npm could not install the peer into $peers"
	installed_ok || die "the peer in $peers does not match bench/peers/snp/package.json"
fi

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
echo "bench-snp: vector $vec, at $at"
echo "bench-snp: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || echo '?') CPUs, node $(node --version)," \
	"one thread each, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
if [ -f "$build/CMakeCache.txt" ]; then
	btype="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	san="$(sed -n 's/^CVM_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	echo "bench-snp: cvmkit build $build (${btype:-no build type}${san:+, sanitizers $san})"
	if [ "$btype" = Debug ] || [ -n "$san" ]; then
		echo "bench-snp: warning: a Debug or sanitizer build is not representative" >&2
	fi
fi

failed=0
cold="" warm="" peer=""
run() {
	local name="$1" out rc
	shift
	rc=0
	out="$("$@")" || rc=$?
	out="$(printf '%s\n' "$out" | tail -n 1)"
	if [ "$rc" -ne 0 ] || [ "$(jget "$out" ok)" != true ]; then
		echo "bench-snp: the $name run failed (exit $rc)${out:+: $out}" >&2
		failed=1
		return 0
	fi
	printf '%s\n' "$out"
	printf -v "$name" '%s' "$out"
}

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

rate() {
	if [ -n "$1" ]; then
		jget "$1" per_second
	fi
}
r_cold="$(rate "$cold")" r_warm="$(rate "$warm")" r_peer="$(rate "$peer")"
ratio() {
	if [ -n "$1" ] && [ -n "$2" ]; then
		awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; }'
	fi
}
x_cold="$(ratio "$r_cold" "$r_peer")" x_warm="$(ratio "$r_warm" "$r_peer")"
echo "ratios: cold/peer ${x_cold:-n/a}x, warm/peer ${x_warm:-n/a}x"
if [ -z "$x_cold" ] || [ -z "$x_warm" ]; then
	echo "verdict: UNKNOWN (a run failed; targets: warm >= ${target_warm}x, cold >= ${target_cold}x the peer)"
else
	verdict="$(awk -v w="$x_warm" -v c="$x_cold" -v tw="$target_warm" -v tc="$target_cold" 'BEGIN {
		m = "";
		if (w + 0 < tw + 0) m = m sprintf(" warm %sx < %dx", w, tw);
		if (c + 0 < tc + 0) m = m sprintf(" cold %sx < %dx", c, tc);
		print (m == "" ? "MET" : "MISSED:" m);
	}')"
	echo "verdict: $verdict (targets: warm >= ${target_warm}x, cold >= ${target_cold}x the peer)"
fi
exit "$failed"
