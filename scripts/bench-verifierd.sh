#!/usr/bin/env bash
# cvm-verifierd under load: wrk posts a real quote to the service over HTTP
# keep-alive and every answer is checked; the same run measures the in-process
# warm verification rate it is judged against and samples the service's
# resident memory. See bench/README.md ("cvm-verifierd under load").
#
# Usage: scripts/bench-verifierd.sh [--duration SECONDS] [--no-inprocess] [VECTOR_DIR]
#   --duration SECONDS  length of the main run (raw quote bodies), default 600; memory is
#                       sampled over it
#   --no-inprocess      skip the in-process warm run (the rate target is then UNKNOWN); the
#                       smoke test uses it to hand the service a quote that must fail
#   VECTOR_DIR          default tests/vectors/tdx/dcapqvl-tdx-v4-uptodate: a tdx/ or sgx/ vector
#                       folder (quote.bin, manifest.json with verify_at_unix, the collateral)
# Environment:
#   CVM_BUILD_DIR              build folder with bin/cvm, bin/cvm-verifierd, bin/bench_quote_verify
#                              (default: build)
#   CVM_BENCH_WARM_COUNT       iterations of the in-process warm run (20000)
#   CVM_BENCH_FORM_SECONDS     length of each of the JSON and dstack form runs (30, at most --duration)
#   CVM_BENCH_WRK_THREADS      wrk threads (1) and CVM_BENCH_WRK_CONNECTIONS connections (8): see
#                              bench/README.md for why these suit a 2-CPU machine
#   CVM_BENCH_WORKERS          cvm-verifierd worker processes (2)
# Targets: the service's rate >= 80% of the in-process warm rate, p99 < 5 ms,
# zero errors, memory flat (bench/README.md defines it). A missed target prints
# "verdict: MISSED: ..."; the exit status is 1 only for a failure: any error
# answer, a socket error, a worker that died, a run that could not be made.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
bench_name="bench-verifierd"
# shellcheck source=scripts/bench-common.sh
. "$src/scripts/bench-common.sh"

usage() {
	echo "usage: scripts/bench-verifierd.sh [--duration SECONDS] [--no-inprocess] [VECTOR_DIR]" >&2
	exit 2
}

duration=600
inprocess=1
vec=""
while [ "$#" -gt 0 ]; do
	case "$1" in
	--duration)
		[ "$#" -ge 2 ] || usage
		duration="$2"
		shift 2
		;;
	--no-inprocess)
		inprocess=0
		shift
		;;
	-*) usage ;;
	*)
		[ -z "$vec" ] || usage
		vec="$1"
		shift
		;;
	esac
done
vec="${vec:-$src/tests/vectors/tdx/dcapqvl-tdx-v4-uptodate}"
build="$(bench_build_dir "$src")"
warm_n="${CVM_BENCH_WARM_COUNT:-20000}"
threads="${CVM_BENCH_WRK_THREADS:-1}"
conns="${CVM_BENCH_WRK_CONNECTIONS:-8}"
workers="${CVM_BENCH_WORKERS:-2}"
bench_counts "$duration" "$warm_n" "$threads" "$conns" "$workers"
form_s="${CVM_BENCH_FORM_SECONDS:-30}"
bench_counts "$form_s"
[ "$form_s" -le "$duration" ] || form_s="$duration"
lua="$src/bench/verifierd/verify.lua"

for f in quote.bin manifest.json tcb_info.json; do
	[ -f "$vec/$f" ] || bench_die "$vec/$f is missing: VECTOR_DIR must be a tdx/ or sgx/ vector folder"
done
for t in cvm cvm-verifierd bench_quote_verify; do
	[ -x "$build/bin/$t" ] || bench_die "$build/bin/$t is missing; build first (an optimised build," \
		"no sanitizers): cmake -S $src -B $build && cmake --build $build"
done
command -v wrk >/dev/null || bench_die "wrk is missing (Debian package wrk; scripts/setup.sh installs it)"
command -v curl >/dev/null || bench_die "curl is missing"
command -v node >/dev/null || bench_die "node is needed to read the JSON results"
at="$(bench_verify_at "$vec/manifest.json")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-bench-verifierd.XXXXXX")"
pid=""
sampler=""
cleanup() {
	if [ -n "$sampler" ]; then
		kill "$sampler" 2>/dev/null || true
		wait "$sampler" 2>/dev/null || true
	fi
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "$bench_name: vector $vec, at $at; $workers workers, wrk -t$threads -c$conns," \
	"main run ${duration} s, JSON and dstack forms ${form_s} s each"
bench_machine "$build"
failed=0

# --- 1. the in-process warm rate, same quote, same time ---
warm=""
if [ "$inprocess" -eq 1 ]; then
	run warm "$build/bin/bench_quote_verify" --quote "$vec/quote.bin" --collateral "$vec" --at "$at" \
		--count "$warm_n" --mode warm
fi

# --- 2. the service: a fresh cache from the vector folder, then start ---
cache="$tmp/cache"
"$build/bin/cvm" collateral import "$vec" --cache "$cache" --at "$at" >"$tmp/import.log" 2>&1 || {
	cat "$tmp/import.log" >&2
	bench_die "cvm collateral import $vec failed"
}
# The service appraises with the policy bench_quote_verify uses (every TCB
# status, advisory and attribute accepted), so that both sides do the same
# work and a vector whose TCB the strict defaults refuse still measures
# verification. --log-level warn, as bench-agent.sh runs the agent: a log line
# per request would be measured, not the service.
cat >"$tmp/policy.json" <<'EOF'
{
  "accepted_tcb_statuses": ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"],
  "accepted_advisory_ids": ["*"],
  "allow_debug": true,
  "tdx": {"require_sept_ve_disable": false, "require_zero_mr_service_td": false,
    "allow_reserved_attributes": true}
}
EOF
printf '[verify]\npolicy = %s\n' "$tmp/policy.json" >"$tmp/verifierd.conf"
"$build/bin/cvm-verifierd" --config "$tmp/verifierd.conf" --workers "$workers" --listen 127.0.0.1:0 \
	--cache "$cache" --at "$at" --log-level warn >"$tmp/verifierd.log" 2>&1 &
pid=$!

# verifierd_pids prints the service's processes: the parent and its children
# (the kernel's list of each of its threads' children).
verifierd_pids() {
	echo "$pid"
	cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d'
	return 0
}

# listen_port prints the TCP port a process of the service listens on: the
# inode of each of its sockets, looked up among the listening sockets (state
# 0A) of /proc/net/tcp. Reading the kernel's table, not the log, means the
# script needs nothing from the log's wording.
listen_port() {
	local p inodes
	inodes="$(for p in $(verifierd_pids); do
		find "/proc/$p/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null
	done | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -u)"
	[ -n "$inodes" ] || return 0
	awk -v inodes="$inodes" 'BEGIN { n = split(inodes, a, "\n"); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		$4 == "0A" && ($10 in want) { split($2, la, ":"); print la[2]; exit }' /proc/net/tcp
}

port=""
for _ in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || break
	port="$(listen_port)"
	[ -z "$port" ] || port=$((16#$port))
	if [ -n "$port" ] && curl -fsS --max-time 2 "http://127.0.0.1:$port/health" >"$tmp/health.json" 2>/dev/null; then
		break
	fi
	port=""
	sleep 0.1
done
if [ -z "$port" ]; then
	cat "$tmp/verifierd.log" >&2
	bench_die "cvm-verifierd did not answer /health within 10 s"
fi
url="http://127.0.0.1:$port"
echo "$bench_name: cvm-verifierd pid $pid at $url: $(cat "$tmp/health.json")"
# The parent and its workers (a worker may still be starting: wait up to 2 s).
for _ in $(seq 20); do
	start_pids="$(verifierd_pids | sort -n | tr '\n' ' ')"
	[ "$(echo "$start_pids" | wc -w)" -le "$workers" ] || break
	sleep 0.1
done
[ "$(echo "$start_pids" | wc -w)" -gt "$workers" ] ||
	echo "$bench_name: warning: the service has the processes $start_pids for $workers workers" >&2

# --- 3. the bodies: raw quote, cvmkit JSON, dstack POST /verify ---
hex="$(od -An -v -tx1 "$vec/quote.bin" | tr -d ' \n')"
printf '{"quote": "%s"}' "$hex" >"$tmp/cvmkit.json"
# dstack's request form with the vector's quote: the vector has no dstack
# event log or vm_config, so is_valid is false by design; a good answer is a
# 200 whose quote verified (details.quote_verified), which is the work this run
# measures (JSON parsing, the quote, the response).
printf '{"quote": "%s", "event_log": "[]", "vm_config": "{}"}' "$hex" >"$tmp/dstack.json"

# cpu_ticks prints the CPU time (user + system, clock ticks) of each of the
# service's processes of the start, in the order of start_pids.
cpu_ticks() {
	local p
	for p in $start_pids; do
		sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ printf "%d ", $12 + $13 }' || printf '0 '
	done
}

# load NAME SECONDS PATH BODY CONTENT_TYPE KEY: one wrk run; prints its result
# line, with the CPU time each of the service's processes and wrk spent
# during it added, and stores it in NAME; any error answer or wrk failure
# sets failed=1.
load() {
	local name="$1" secs="$2" path="$3" body="$4" ctype="$5" key="$6" out line rc=0 c0 c1
	c0="$(cpu_ticks)"
	out="$(
		TIMEFORMAT='wrk-cpu: %U %S'
		{ time wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s -s "$lua" "$url" -- "$path" \
			"$body" "$ctype" "$key" 2>&1; } 2>&1
	)" || rc=$?
	c1="$(cpu_ticks)"
	line="$(printf '%s\n' "$out" | sed -n 's/^wrk-result: //p' | tail -n 1)"
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		printf '%s\n' "$out" >&2
		echo "$bench_name: wrk failed on the $name run (exit $rc)" >&2
		failed=1
		return 0
	fi
	# server_cpu_s: per process (parent first, then the workers by pid); a
	# lopsided split means the connections did not spread over the workers.
	line="$(node -e '
		const [line, c0, c1, wrkcpu, tck] = process.argv.slice(1);
		const r = JSON.parse(line), a = c0.trim().split(" ").map(Number), b = c1.trim().split(" ").map(Number);
		const per = b.map((v, i) => (v - a[i]) / Number(tck));
		const w = wrkcpu.trim().split(" ").map(Number);
		const srv = per.reduce((x, y) => x + y, 0), n = r.requests || 1;
		r.server_cpu_s = per.map((x) => Number(x.toFixed(2)));
		r.server_us_per_request = Number((srv * 1e6 / n).toFixed(1));
		r.wrk_cpu_s = Number((w[0] + w[1]).toFixed(2));
		r.wrk_us_per_request = Number(((w[0] + w[1]) * 1e6 / n).toFixed(1));
		console.log(JSON.stringify(r));' "$line" "$c0" "$c1" \
		"$(printf '%s\n' "$out" | sed -n 's/^wrk-cpu: //p' | tail -n 1)" "$(getconf CLK_TCK)")"
	printf '%-7s %s\n' "$name" "$line"
	if [ "$(jget "$line" errors)" != 0 ] || [ "$(jget "$line" good)" = 0 ]; then
		echo "$bench_name: the $name run had errors; the first bad answer: $(jget "$line" first_bad)" >&2
		failed=1
	fi
	printf -v "$name" '%s' "$line"
}

# rss_sampler INTERVAL FILE: every INTERVAL seconds, one line "MILLISECONDS
# KIB PROCESSES" with the sum of VmRSS over the service's processes (those at
# the start: a process that changes is a failure, checked after the run).
rss_sampler() {
	local every="$1" file="$2" t0 now kib n p v
	t0="$(date +%s%N)"
	while :; do
		kib=0 n=0
		for p in $start_pids; do
			v="$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$p/status" 2>/dev/null)" || v=""
			[ -n "$v" ] || continue
			kib=$((kib + v)) n=$((n + 1))
		done
		now="$(date +%s%N)"
		echo "$(((now - t0) / 1000000)) $kib $n" >>"$file"
		sleep "$every"
	done
}

json="" dstack="" raw=""
load json "$form_s" /cvmkit/v1/verify "$tmp/cvmkit.json" application/json ok
# dstack's POST /verify is for its TDX guests: an SGX vector skips that run.
kind="$(jget "$(tr -d '\n' <"$vec/manifest.json")" kind)"
if [ "$kind" = sgx ]; then
	echo "$bench_name: no dstack run: $vec is an SGX quote (dstack's POST /verify takes TDX quotes)"
else
	load dstack "$form_s" /verify "$tmp/dstack.json" application/json quote_verified
fi

# The main run: raw quote bodies, memory sampled every 5 s (every second on
# runs under a minute, four times a second on runs under 10 s).
every=5
[ "$duration" -ge 60 ] || every=1
[ "$duration" -ge 10 ] || every=0.25
rss_sampler "$every" "$tmp/rss.txt" &
sampler=$!
load raw "$duration" /cvmkit/v1/verify "$vec/quote.bin" application/octet-stream ok
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=""

# The split of the main run's work over the workers: a worker that did less
# than a quarter of the busiest one's work got too few of wrk's connections
# (said, not judged: it explains a low rate).
split="$(node -e 'const r = JSON.parse(process.argv[1]); const w = r.server_cpu_s.slice(1);
	const max = Math.max(...w); if (w.length > 1 && max > 0 && Math.min(...w) < max / 4)
		console.log(w.join(" s, ") + " s");' "$raw" 2>/dev/null || true)"
[ -z "$split" ] || echo "$bench_name: note: the workers' CPU time in the main run was $split: wrk's" \
	"$conns connections did not spread over the $workers workers, so the rate is about one worker's"

# --- 4. the service survived: the same processes, still answering ---
end_pids="$(verifierd_pids | sort -n | tr '\n' ' ')"
if ! kill -0 "$pid" 2>/dev/null; then
	echo "$bench_name: cvm-verifierd exited during the run" >&2
	failed=1
elif [ "$end_pids" != "$start_pids" ]; then
	echo "$bench_name: the service's processes changed during the run (a worker died and was" \
		"restarted?): before $start_pids, after $end_pids" >&2
	failed=1
fi
if grep -Eq 'Sanitizer|runtime error:|Segmentation fault|Assertion' "$tmp/verifierd.log"; then
	echo "$bench_name: cvm-verifierd's log reports a crash:" >&2
	cat "$tmp/verifierd.log" >&2
	failed=1
fi

# memory WINDOW: first/last/max, the averages of the first window after the
# warm-up and of the last window, the least-squares slope after the warm-up
# (KiB per minute), and whether memory is flat: the last window's average
# exceeds the first's by at most 5 % or 2 MiB, whichever is larger. The
# warm-up and each window last a minute on runs of 4 minutes or more, a
# quarter of the run on shorter ones.
mem="{}"
if [ -s "$tmp/rss.txt" ]; then
	win_ms=$((duration >= 240 ? 60000 : duration * 250))
	mem="$(awk -v win="$win_ms" -v end_ms=$((duration * 1000)) '
		{ t[NR] = $1; k[NR] = $2; if (NR == 1) first = $2; last = $2; if ($2 > max) max = $2 }
		END {
			for (i = 1; i <= NR; i++) {
				if (t[i] >= win && t[i] < 2 * win) { a += k[i]; na++ }
				if (t[i] >= end_ms - win) { b += k[i]; nb++ }
				if (t[i] >= win) { n++; sx += t[i]; sy += k[i]; sxx += t[i] * t[i]; sxy += t[i] * k[i] }
			}
			slope = (n > 1 && n * sxx - sx * sx > 0) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60000 : 0
			fa = na ? a / na : 0; lb = nb ? b / nb : 0
			allow = fa * 0.05 > 2048 ? fa * 0.05 : 2048
			flat = (na && nb) ? (lb - fa <= allow ? "true" : "false") : "null"
			printf "{\"samples\": %d, \"first_kib\": %d, \"last_kib\": %d, \"max_kib\": %d, ", NR, first, last, max
			printf "\"first_window_kib\": %.0f, \"last_window_kib\": %.0f, \"window_s\": %.1f, ", fa, lb, win / 1000
			printf "\"slope_kib_per_min\": %.1f, \"flat\": %s}", slope, flat
		}' "$tmp/rss.txt")"
fi
echo "memory  $mem"

# --- 5. summary and verdict ---
r_warm="$(rate "$warm")"
r_raw="$(jget "$raw" per_second)"
pct=""
if [ -n "$r_warm" ] && [ -n "$r_raw" ]; then
	pct="$(awk -v a="$r_raw" -v b="$r_warm" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b }')"
fi
summary="$(node -e '
	const [warm, raw, json, dstack, mem, pct, secs, workers, threads, conns] = process.argv.slice(1);
	const p = (s) => { try { return JSON.parse(s); } catch (e) { return null; } };
	const w = p(warm), r = p(raw), j = p(json), d = p(dstack), m = p(mem);
	const form = (x) => x && { per_second: x.per_second, p50_ms: x.p50_ms, p99_ms: x.p99_ms, errors: x.errors,
		server_us_per_request: x.server_us_per_request };
	console.log(JSON.stringify({ type: "verifierd", seconds: Number(secs), workers: Number(workers),
		wrk: { threads: Number(threads), connections: Number(conns) },
		inprocess_warm_per_second: w ? w.per_second : null,
		per_second: r ? r.per_second : null, of_warm_pct: pct === "" ? null : Number(pct),
		p50_ms: r ? r.p50_ms : null, p99_ms: r ? r.p99_ms : null,
		errors: [r, j, d].reduce((n, x) => n + (x ? x.errors : 0), 0),
		server_cpu_s: r ? r.server_cpu_s : null, server_us_per_request: r ? r.server_us_per_request : null,
		wrk_us_per_request: r ? r.wrk_us_per_request : null,
		inprocess_warm_us: w ? Number((1e6 / w.per_second).toFixed(1)) : null,
		json: form(j), dstack: form(d), memory: m }));
	' "$warm" "$raw" "$json" "$dstack" "$mem" "$pct" "$duration" "$workers" "$threads" "$conns")"
echo "$summary"

missed=""
unknown=""
if [ -z "$raw" ]; then
	unknown="$unknown the main run failed;"
else
	if [ -z "$pct" ]; then
		unknown="$unknown no in-process warm rate;"
	elif awk -v p="$pct" 'BEGIN { exit !(p < 80) }'; then
		missed="$missed rate $r_raw/s is $pct% of the in-process warm $r_warm/s (< 80%);"
	fi
	awk -v q="$(jget "$raw" p99_ms)" 'BEGIN { exit !(q >= 5) }' &&
		missed="$missed p99 $(jget "$raw" p99_ms) ms >= 5 ms;"
fi
errs="$(jget "$summary" errors)"
[ "$errs" = 0 ] || missed="$missed $errs errors;"
case "$(jget "$mem" flat)" in
true) ;;
false) missed="$missed memory not flat (last window $(jget "$mem" last_window_kib) KiB, first $(jget "$mem" first_window_kib) KiB);" ;;
*) unknown="$unknown memory not sampled;" ;;
esac
targets="(targets: >= 80% of the in-process warm rate, p99 < 5 ms, zero errors, memory flat)"
if [ -n "$missed" ]; then
	echo "verdict: MISSED:${missed%;}${unknown:+; unknown:${unknown%;}} $targets"
elif [ -n "$unknown" ]; then
	echo "verdict: UNKNOWN:${unknown%;} $targets"
else
	echo "verdict: MET $targets"
fi
exit "$failed"
