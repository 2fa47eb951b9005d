# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # bench_name and failed belong to the sourcing script
# Shared by the side-by-side benchmark scripts (bench-quote.sh, bench-snp.sh):
# sourced, not run. The sourcing script sets `bench_name` (its name in
# messages) and `failed=0` before calling these.

bench_die() {
	echo "$bench_name: $*" >&2
	exit 1
}

# bench_build_dir prints $CVM_BUILD_DIR (default build), made absolute.
bench_build_dir() {
	local src="$1" build="${CVM_BUILD_DIR:-$1/build}"
	case "$build" in
	/*) ;;
	*) build="$src/$build" ;;
	esac
	echo "$build"
}

# bench_counts N...: each iteration count must be a positive integer.
bench_counts() {
	for n in "$@"; do
		case "$n" in
		'' | *[!0-9]* | 0) bench_die "iteration counts must be positive integers (got \"$n\")" ;;
		esac
	done
}

# bench_verify_at MANIFEST prints its integer verify_at_unix.
bench_verify_at() {
	node -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
		if (!Number.isInteger(m.verify_at_unix)) process.exit(1);
		console.log(m.verify_at_unix);' "$1" 2>/dev/null ||
		bench_die "$1 has no integer verify_at_unix"
}

# jget LINE KEY prints one field of a JSON line ("" if absent or not JSON).
jget() {
	node -e 'try { const v = JSON.parse(process.argv[1])[process.argv[2]];
		console.log(v === undefined ? "" : v); } catch (e) { console.log(""); }' "$1" "$2"
}

# bench_install_peers PACKAGE_JSON DIR installs the exact versions a
# package.json pins into DIR (never the source tree), unless already there.
bench_install_peers() {
	local pkg="$1" dir="$2"
	mkdir -p "$dir"
	if cmp -s "$pkg" "$dir/package.json" && bench_peers_ok "$dir"; then
		echo "$bench_name: peers already installed in $dir"
		return 0
	fi
	cp "$pkg" "$dir/package.json"
	(
		cd "$dir"
		if [ -f package-lock.json ] && npm ci --no-audit --no-fund --loglevel=error; then
			:
		else
			rm -f package-lock.json
			npm install --no-audit --no-fund --loglevel=error
		fi
	) >&2 || bench_die "npm could not install the peers into $dir"
	bench_peers_ok "$dir" || bench_die "the peers in $dir do not match $pkg"
}

bench_peers_ok() {
	node -e 'const p = require(process.argv[1] + "/package.json");
		for (const [n, v] of Object.entries(p.dependencies)) {
			let got;
			try { got = require(process.argv[1] + "/node_modules/" + n + "/package.json").version; }
			catch (e) { process.exit(1); }
			if (got !== v) process.exit(1);
		}' "$1"
}

# bench_machine BUILD prints what the run is made on.
bench_machine() {
	local build="$1" cpu btype san
	cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
	echo "$bench_name: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || echo '?') CPUs, node $(node --version)," \
		"one thread each, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
	if [ -f "$build/CMakeCache.txt" ]; then
		btype="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
		san="$(sed -n 's/^CVM_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")"
		echo "$bench_name: cvmkit build $build (${btype:-no build type}${san:+, sanitizers $san})"
		if [ "$btype" = Debug ] || [ -n "$san" ]; then
			echo "$bench_name: warning: a Debug or sanitizer build is not representative" >&2
		fi
	fi
}

# run NAME CMD...: runs one benchmark, prints its JSON line and stores it in
# the variable NAME; a failed run (exit status, or "ok" not true) sets failed=1.
run() {
	local name="$1" out rc
	shift
	rc=0
	out="$("$@")" || rc=$?
	out="$(printf '%s\n' "$out" | tail -n 1)"
	if [ "$rc" -ne 0 ] || [ "$(jget "$out" ok)" != true ]; then
		echo "$bench_name: the $name run failed (exit $rc)${out:+: $out}" >&2
		failed=1
		return 0
	fi
	printf '%s\n' "$out"
	printf -v "$name" '%s' "$out"
}

# rate LINE prints its per_second ("" for a failed run).
rate() {
	if [ -n "$1" ]; then
		jget "$1" per_second
	fi
}

# ratio A B prints A / B with one decimal ("" if either is missing).
ratio() {
	if [ -n "$1" ] && [ -n "$2" ]; then
		awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; }'
	fi
}

# fmtx X prints "Xx", or "n/a" when X is empty.
fmtx() {
	if [ -n "$1" ]; then
		printf '%sx' "$1"
	else
		printf 'n/a'
	fi
}

# bench_verdict WARM_X COLD_X WARM_TARGET COLD_TARGET WHAT prints the verdict line.
bench_verdict() {
	local w="$1" c="$2" tw="$3" tc="$4" what="$5" v
	if [ -z "$w" ] || [ -z "$c" ]; then
		echo "verdict: UNKNOWN (a run failed; targets: warm >= ${tw}x, cold >= ${tc}x $what)"
		return 0
	fi
	v="$(awk -v w="$w" -v c="$c" -v tw="$tw" -v tc="$tc" 'BEGIN {
		m = "";
		if (w + 0 < tw + 0) m = m sprintf(" warm %sx < %dx", w, tw);
		if (c + 0 < tc + 0) m = m sprintf(" cold %sx < %dx", c, tc);
		print (m == "" ? "MET" : "MISSED:" m);
	}')"
	echo "verdict: $v (targets: warm >= ${tw}x, cold >= ${tc}x $what)"
}
