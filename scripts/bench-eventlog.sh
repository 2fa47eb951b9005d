#!/usr/bin/env bash
# Side-by-side event log replay speed and memory: cvmkit (`cvm eventlog
# replay`, and the library alone through bench_eventlog) against
# `tpm2_eventlog` (Debian tpm2-tools), on two large logs built from the
# entries of a real log, in one run. See bench/README.md.
#
# Usage: scripts/bench-eventlog.sh [SOURCE_LOG]
#   SOURCE_LOG  a real TCG2 log whose events are repeated (default: the
#               recorded OVMF/swtpm boot, tests/vectors/eventlog/vm-ovmf-tpmcrb-imang,
#               on which tpm2_eventlog 5.4 computes the right PCRs)
# Environment:
#   CVM_BUILD_DIR              build folder with bin/cvm and bin/bench_eventlog (default: build)
#   CVM_BENCH_EVENTS_SMALL     events in the smaller log (100000)
#   CVM_BENCH_EVENTS_LARGE     events in the larger log (1000000)
#   CVM_BENCH_REPEAT           runs of `cvm eventlog replay` per log, timed together (5)
#   TMPDIR                     where the two logs are written (removed at the end)
# Both tools replay the same file to PCR values; the script checks that they
# agree. Rates are events per second of whole processes (start, read, replay,
# print), max RSS from GNU time. Exits non-zero if a run fails or the tools
# disagree; a missed target only prints MISSED.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${CVM_BUILD_DIR:-$src/build}"
case "$build" in
/*) ;;
*) build="$src/$build" ;;
esac
vec="$src/tests/vectors"
source_log="${1:-$vec/eventlog/vm-ovmf-tpmcrb-imang/eventlog.bin}"
n_small="${CVM_BENCH_EVENTS_SMALL:-100000}"
n_large="${CVM_BENCH_EVENTS_LARGE:-1000000}"
repeat="${CVM_BENCH_REPEAT:-5}"
target=10

die() {
	echo "bench-eventlog: $*" >&2
	exit 1
}

[ "$#" -le 1 ] || die "usage: scripts/bench-eventlog.sh [SOURCE_LOG]"
[ -f "$source_log" ] || die "$source_log is missing (git checkout -- tests/vectors restores it, or give SOURCE_LOG)"
for n in "$n_small" "$n_large" "$repeat"; do
	case "$n" in
	'' | *[!0-9]* | 0) die "counts must be positive integers (got \"$n\")" ;;
	esac
done
cvm="$build/bin/cvm"
bench="$build/bin/bench_eventlog"
for b in "$cvm" "$bench"; do
	[ -x "$b" ] || die "$b is missing; build it first (optimised, no sanitizers):
  cmake -S $src -B $build && cmake --build $build --target cvm bench_eventlog"
done
command -v tpm2_eventlog >/dev/null || die "tpm2_eventlog is missing (Debian package tpm2-tools)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package time)"
command -v python3 >/dev/null || die "python3 is needed to compare the two tools' PCRs"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
echo "bench-eventlog: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || echo '?') CPUs;" \
	"$(tpm2_eventlog --version 2>&1 | head -n 1)"
if [ -f "$build/CMakeCache.txt" ]; then
	btype="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	san="$(sed -n 's/^CVM_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	echo "bench-eventlog: cvmkit build $build (${btype:-no build type}${san:+, sanitizers $san})"
	if [ "$btype" = Debug ] || [ -n "$san" ]; then
		echo "bench-eventlog: warning: a Debug or sanitizer build is not representative" >&2
	fi
fi
echo "bench-eventlog: source $source_log"

now_ns() { date +%s%N; }
# rate EVENTS RUNS NANOSECONDS
rate() { awk -v e="$1" -v r="$2" -v ns="$3" 'BEGIN { printf "%.0f", (ns > 0) ? e * r / (ns / 1e9) : 0 }'; }

# tpm2_eventlog's "pcrs:" section and ours, as "bank index hex" lines.
peer_pcrs() {
	awk '/^pcrs:/ { on = 1; next } on && /^  [a-z0-9_]+:$/ { bank = $1; sub(":", "", bank); next }
		on && /^    [0-9]+/ { v = $3; sub("^0x", "", v); print bank, $1, v }' | sort
}
own_pcrs() {
	python3 -c 'import json, sys
d = json.load(sys.stdin)
for bank, regs in d["pcrs"].items():
    for idx, v in regs.items():
        print(bank, idx, v)' | sort
}

failed=0
declare -A r_cvm r_peer r_lib rss_cvm rss_peer rss_lib

for size in small large; do
	if [ "$size" = small ]; then n="$n_small"; else n="$n_large"; fi
	log="$tmp/$size.bin"
	"$bench" --make "$source_log" --events "$n" --out "$log" >/dev/null || die "cannot build the $size log"
	bytes="$(stat -c %s "$log")"
	echo "bench-eventlog: $size log: $n events, $bytes bytes"

	# Same PCRs from both tools (checked once, untimed, on the small log).
	if [ "$size" = small ]; then
		tpm2_eventlog "$log" 2>/dev/null | peer_pcrs >"$tmp/peer.pcrs" || die "tpm2_eventlog cannot parse the small log"
		"$cvm" eventlog replay --json "$log" | own_pcrs >"$tmp/own.pcrs" || die "cvm cannot replay the small log"
		if [ ! -s "$tmp/peer.pcrs" ] || ! cmp -s "$tmp/peer.pcrs" "$tmp/own.pcrs"; then
			echo "bench-eventlog: the tools disagree on the PCRs:" >&2
			diff "$tmp/peer.pcrs" "$tmp/own.pcrs" >&2 || true
			failed=1
		else
			echo "bench-eventlog: both tools replay the same $(wc -l <"$tmp/own.pcrs") PCR values"
		fi
	fi

	# Peer: one run (it takes seconds), time and max RSS.
	t0="$(now_ns)"
	if ! /usr/bin/time -f "%M" -o "$tmp/peer.rss" tpm2_eventlog "$log" >/dev/null 2>"$tmp/peer.err"; then
		echo "bench-eventlog: tpm2_eventlog failed on the $size log: $(head -c 300 "$tmp/peer.err")" >&2
		failed=1
		continue
	fi
	t1="$(now_ns)"
	r_peer[$size]="$(rate "$n" 1 $((t1 - t0)))"
	rss_peer[$size]="$(tail -n 1 "$tmp/peer.rss")"

	# cvm eventlog replay: RSS from one run, then $repeat runs timed together.
	/usr/bin/time -f "%M" -o "$tmp/cvm.rss" "$cvm" eventlog replay -q "$log" >/dev/null ||
		die "cvm eventlog replay failed on the $size log"
	rss_cvm[$size]="$(tail -n 1 "$tmp/cvm.rss")"
	t0="$(now_ns)"
	for _ in $(seq "$repeat"); do
		"$cvm" eventlog replay -q "$log" >/dev/null || die "cvm eventlog replay failed on the $size log"
	done
	t1="$(now_ns)"
	r_cvm[$size]="$(rate "$n" "$repeat" $((t1 - t0)))"

	# The library alone (in-process timing, no process start).
	line="$("$bench" --log "$log" --count "$repeat")" || die "bench_eventlog failed on the $size log"
	r_lib[$size]="$(python3 -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["events_per_second"])' "$line")"
	rss_lib[$size]="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["max_rss_kb"])' "$line")"
	rm -f "$log"

	printf '%-6s %9s events  tpm2_eventlog %10s ev/s %8s KB | cvm eventlog replay %11s ev/s %6s KB | library %11s ev/s %6s KB\n' \
		"$size" "$n" "${r_peer[$size]}" "${rss_peer[$size]}" "${r_cvm[$size]}" "${rss_cvm[$size]}" \
		"${r_lib[$size]}" "${rss_lib[$size]}"
done

verdict=""
for size in small large; do
	if [ -z "${r_peer[$size]:-}" ] || [ -z "${r_cvm[$size]:-}" ]; then
		verdict="UNKNOWN (a run failed)"
		continue
	fi
	x="$(awk -v a="${r_cvm[$size]}" -v b="${r_peer[$size]}" 'BEGIN { printf "%.1f", a / b }')"
	echo "ratio ($size log): cvm eventlog replay / tpm2_eventlog = ${x}x"
	if awk -v x="$x" -v t="$target" 'BEGIN { exit !(x + 0 < t + 0) }'; then
		verdict="${verdict:+$verdict; }MISSED: $size ${x}x < ${target}x"
	fi
done
if [ -n "${rss_cvm[small]:-}" ] && [ -n "${rss_cvm[large]:-}" ]; then
	echo "max RSS, small -> large log: cvm ${rss_cvm[small]} -> ${rss_cvm[large]} KB," \
		"tpm2_eventlog ${rss_peer[small]:-?} -> ${rss_peer[large]:-?} KB"
fi
echo "verdict: ${verdict:-MET} (target: cvm eventlog replay >= ${target}x tpm2_eventlog, memory flat in the log size)"
exit "$failed"
