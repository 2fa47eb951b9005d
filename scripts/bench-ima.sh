#!/usr/bin/env bash
# Side-by-side IMA replay speed and memory: cvmkit (bench_ima replay) against
# evmctl ima_measurement (Debian ima-evm-utils), on the same large binary
# lists, in one run. See docs/cli/cvm-ima.md (Speed and memory).
#
# Usage: scripts/bench-ima.sh [SOURCE_LIST]
#   SOURCE_LIST  a binary IMA list whose entries are repeated to build the large
#                lists (default: the own QEMU/swtpm boot, tests/vectors/
#                ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements). Copy k of
#                an entry gets the name "<name>.<k>" and a recomputed template
#                digest, so every entry is valid and every name unique.
# Environment:
#   CVM_BUILD_DIR           build folder holding bin/bench_ima (default: build)
#   CVM_BENCH_IMA_SMALL     entries in the small list (250000)
#   CVM_BENCH_IMA_LARGE     entries in the large list (1000000)
#   CVM_BENCH_IMA_RUNS      runs of each program per list; the fastest counts (3)
#   CVM_BENCH_IMA_DIR       where the lists go (default: $CVM_BUILD_DIR/bench-ima)
# Both programs replay the sha1 and sha256 banks and check every template digest;
# evmctl is given the PCR values cvmkit computed (--pcrs) and must print
# "Matched per TPM bank", so each run also checks the other. Rates are given per
# wall-clock second and per CPU second (user + system): on a shared machine the
# CPU rate is the steadier one, and the verdict uses it. Exits non-zero if a run
# failed or disagreed; a missed target only prints MISSED.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${CVM_BUILD_DIR:-$src/build}"
case "$build" in
/*) ;;
*) build="$src/$build" ;;
esac
vectors="$src/tests/vectors"
source_list="${1:-$vectors/ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements}"
small="${CVM_BENCH_IMA_SMALL:-250000}"
large="${CVM_BENCH_IMA_LARGE:-1000000}"
runs="${CVM_BENCH_IMA_RUNS:-3}"
dir="${CVM_BENCH_IMA_DIR:-$build/bench-ima}"
bench="$build/bin/bench_ima"
target=5

die() {
	echo "bench-ima: $*" >&2
	exit 1
}

[ "$#" -le 1 ] || die "usage: scripts/bench-ima.sh [SOURCE_LIST]"
[ -f "$source_list" ] || die "$source_list is missing (a binary IMA list; git checkout -- tests/vectors restores it, or pass one)"
for n in "$small" "$large" "$runs"; do
	case "$n" in
	'' | *[!0-9]* | 0) die "sizes and run counts must be positive integers (got \"$n\")" ;;
	esac
done
[ -x "$bench" ] || die "$bench is missing; build it first (an optimised build, no sanitizers):
  cmake -S $src -B $build && cmake --build $build --target bench_ima"
command -v evmctl >/dev/null || die "evmctl is needed (Debian package ima-evm-utils)"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time, Debian package time) is needed: it times both programs"

mkdir -p "$dir"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
echo "bench-ima: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || echo '?') CPUs, load average" \
	"$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'), one thread each"
echo "bench-ima: $(evmctl --version 2>/dev/null | head -n 1), source $source_list"
if [ -f "$build/CMakeCache.txt" ]; then
	btype="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	san="$(sed -n 's/^CVM_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	echo "bench-ima: cvmkit build $build (${btype:-no build type}${san:+, sanitizers $san})"
	if [ "$btype" = Debug ] || [ -n "$san" ]; then
		echo "bench-ima: warning: a Debug or sanitizer build is not representative" >&2
	fi
fi

# timed CMD...: runs CMD under GNU time and prints its stdout and stderr,
# then "TIMED wall cpu maxrss_kb rc". Linux counts the RSS a process had
# before exec in ru_maxrss, so the launcher must be small: GNU time is (about
# 2 MiB), a forked python would not be.
timed() {
	local t rc=0
	t="$(mktemp)"
	/usr/bin/time -o "$t" -f "%e %U %S %M %x" "$@" 2>&1 || rc=$?
	awk -v rc="$rc" 'END { printf "TIMED %s %.2f %s %s\n", $1, $2 + $3, $4, rc }' "$t"
	rm -f "$t"
}

failed=0
declare -A rate_wall rate_cpu rss ev_wall ev_cpu ev_rss

for size in "$small" "$large"; do
	list="$dir/ima-$size.bin"
	if [ ! -f "$list.done" ] || [ "$(cat "$list.done")" != "$(stat -c %s "$source_list") $size" ]; then
		echo "bench-ima: building $list ($size entries)"
		"$bench" gen --from "$source_list" --entries "$size" --out "$list" || die "bench_ima gen failed"
		echo "$(stat -c %s "$source_list") $size" >"$list.done"
	fi
	bytes="$(stat -c %s "$list")"
	best_c="" best_e=""
	for ((i = 0; i < runs; i++)); do
		out="$(timed "$bench" replay --log "$list" --banks sha1,sha256 --pcrs-dir "$dir")" || true
		t="$(printf '%s\n' "$out" | sed -n 's/^TIMED //p')"
		line="$(printf '%s\n' "$out" | grep '^{' | tail -n 1)"
		read -r wall cpu_s maxrss rc <<<"$t"
		if [ "${rc:-1}" -ne 0 ] || [ -z "$line" ]; then
			echo "bench-ima: cvmkit failed on $list: $(printf '%s\n' "$out" | tail -n 3)" >&2
			failed=1
			continue
		fi
		if [ -z "$best_c" ] || awk -v a="$cpu_s" -v b="${best_c%% *}" 'BEGIN { exit !(a < b) }'; then
			best_c="$cpu_s $wall $maxrss"
		fi
	done
	printf '%s\n' "$line"
	cp "$dir/pcr-sha1" "$dir/pcr-sha1.$size"
	cp "$dir/pcr-sha256" "$dir/pcr-sha256.$size"
	for ((i = 0; i < runs; i++)); do
		out="$(timed evmctl ima_measurement --pcrs "sha1,$dir/pcr-sha1.$size" --pcrs "sha256,$dir/pcr-sha256.$size" \
			"$list")" || true
		t="$(printf '%s\n' "$out" | sed -n 's/^TIMED //p')"
		read -r wall cpu_s maxrss rc <<<"$t"
		if [ "${rc:-1}" -ne 0 ] || ! printf '%s\n' "$out" | grep -q "Matched per TPM bank"; then
			echo "bench-ima: evmctl did not match cvmkit's PCRs on $list (exit ${rc:-?}):" \
				"$(printf '%s\n' "$out" | grep -v '^TIMED' | tail -n 3)" >&2
			failed=1
			continue
		fi
		if [ -z "$best_e" ] || awk -v a="$cpu_s" -v b="${best_e%% *}" 'BEGIN { exit !(a < b) }'; then
			best_e="$cpu_s $wall $maxrss"
		fi
	done
	if [ -n "$best_c" ]; then
		read -r c w m <<<"$best_c"
		rate_cpu[$size]="$(awk -v n="$size" -v t="$c" 'BEGIN { printf "%.0f", n / t }')"
		rate_wall[$size]="$(awk -v n="$size" -v t="$w" 'BEGIN { printf "%.0f", n / t }')"
		rss[$size]="$m"
	fi
	if [ -n "$best_e" ]; then
		read -r c w m <<<"$best_e"
		ev_cpu[$size]="$(awk -v n="$size" -v t="$c" 'BEGIN { printf "%.0f", n / t }')"
		ev_wall[$size]="$(awk -v n="$size" -v t="$w" 'BEGIN { printf "%.0f", n / t }')"
		ev_rss[$size]="$m"
	fi
	echo "bench-ima: $size entries ($bytes bytes): cvmkit ${rate_cpu[$size]:-n/a}/cpu-s" \
		"${rate_wall[$size]:-n/a}/s max RSS ${rss[$size]:-?} KiB; evmctl ${ev_cpu[$size]:-n/a}/cpu-s" \
		"${ev_wall[$size]:-n/a}/s max RSS ${ev_rss[$size]:-?} KiB"
done

ratio() {
	if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then
		awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; }'
	fi
}
x_cpu="$(ratio "${rate_cpu[$large]:-}" "${ev_cpu[$large]:-}")"
x_wall="$(ratio "${rate_wall[$large]:-}" "${ev_wall[$large]:-}")"
echo "ratio (cvmkit / evmctl, $large entries): ${x_cpu:-n/a}x per CPU second, ${x_wall:-n/a}x per wall second"
flat="unknown"
if [ -n "${rss[$small]:-}" ] && [ -n "${rss[$large]:-}" ]; then
	# flat: four times the entries may not cost more than 1 MiB more memory
	if [ "$((rss[$large] - rss[$small]))" -le 1024 ]; then
		flat="flat (${rss[$small]} KiB at $small entries, ${rss[$large]} KiB at $large)"
	else
		flat="GROWS (${rss[$small]} KiB at $small entries, ${rss[$large]} KiB at $large)"
	fi
fi
echo "memory: $flat"
if [ -z "$x_cpu" ]; then
	echo "verdict: UNKNOWN (a run failed; target: >= ${target}x evmctl per CPU second, flat memory)"
elif awk -v x="$x_cpu" -v t="$target" 'BEGIN { exit !(x + 0 >= t + 0) }' && [ "${flat%% *}" = flat ]; then
	echo "verdict: MET (${x_cpu}x >= ${target}x evmctl per CPU second, memory flat)"
else
	echo "verdict: MISSED: ${x_cpu}x per CPU second (target ${target}x), memory ${flat%% *}"
fi
exit "$failed"
