#!/usr/bin/env bash
# The cost of attested TLS, in one run (bench/bench_ratls.c): TLS 1.3
# handshakes per second with P-256, plain (no verification callback) and
# RA-TLS with the client checking the server's simulated evidence, with the
# verifier's verdict cache on (warm) and with every check missing it (cold),
# and the fresh attestation's round trip in ms; for TDX and SNP.
#
# Usage: scripts/bench-ratls.sh
# Environment:
#   CVM_BUILD_DIR           build folder with bin/bench_ratls (default: build)
#   CVM_BENCH_HANDSHAKES    handshakes per run (default 2000)
#   CVM_BENCH_FRESH         fresh attestations (default 200)
# Target: an RA-TLS handshake (warm) costs at most 1.3x a plain one; a missed
# target prints MISSED (the exit status is non-zero only if a run failed).
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${CVM_BUILD_DIR:-$src/build}"
case "$build" in
/*) ;;
*) build="$src/$build" ;;
esac
n="${CVM_BENCH_HANDSHAKES:-2000}"
f="${CVM_BENCH_FRESH:-200}"
for v in "$n" "$f"; do
	case "$v" in
	'' | *[!0-9]* | 0) echo "bench-ratls: counts must be positive integers (got \"$v\")" >&2; exit 1 ;;
	esac
done
bench="$build/bin/bench_ratls"
[ -x "$bench" ] || { echo "bench-ratls: $bench is missing (cmake --build $build --target bench_ratls)" >&2; exit 1; }

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
echo "bench-ratls: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || echo '?') CPUs, one thread," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
if [ -f "$build/CMakeCache.txt" ]; then
	btype="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	san="$(sed -n 's/^CVM_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	echo "bench-ratls: cvmkit build $build (${btype:-no build type}${san:+, sanitizers $san})"
fi

failed=0
for platform in tdx snp; do
	out=""
	rc=0
	out="$("$bench" --platform "$platform" --count "$n" --fresh-count "$f")" || rc=$?
	printf '%s\n' "$out"
	if [ "$rc" -ne 0 ]; then
		echo "bench-ratls: the $platform run failed (exit $rc)" >&2
		failed=1
		continue
	fi
	summary="$(printf '%s\n' "$out" | tail -n 1)"
	x="$(printf '%s' "$summary" | sed -n 's/.*"warm_over_plain": \([0-9.]*\).*/\1/p')"
	if printf '%s' "$summary" | grep -q '"met": true'; then
		echo "bench-ratls: $platform: RA-TLS handshake ${x}x plain: target (at most 1.3x) met"
	else
		echo "bench-ratls: $platform: RA-TLS handshake ${x}x plain: MISSED (target: at most 1.3x)"
	fi
done
exit "$failed"
