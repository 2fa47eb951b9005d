# shellcheck shell=bash disable=SC2034 # variables for the script that sources this
# Sourced by the integration scripts: start and stop the local vendor upstream
# (tests/common/vendor_upstream.py, Intel PCS/PCCS v4 and AMD KDS wire format).
#
#   upstream_start DIR ARGS...  starts the server with its files in DIR (made if
#                               missing) and ARGS (e.g. --no-vectors --dir D);
#                               sets UPSTREAM_URL (http://127.0.0.1:PORT) and
#                               UPSTREAM_PID; exits 1 if it does not come up in 10 s
#   upstream_stop               stops it (no-op when not running)
#   upstream_mode MODE [PREFIX] [KEY=VALUE...]
#                               sets a failure mode (ok 429 500 hang close badsig
#                               expired slow) globally or for paths under PREFIX;
#                               extra fields: retry_after=N, ms=N
#   upstream_reset_stats        zeroes the request counters
#   upstream_count SUBSTRING    prints how many requests' path+query contained
#                               SUBSTRING (all requests for "")
# Needs python3 and curl.

UPSTREAM_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/vendor_upstream.py"
UPSTREAM_PID=""
UPSTREAM_URL=""

upstream_start() {
	local dir="$1" i
	shift
	mkdir -p "$dir"
	rm -f "$dir/port"
	python3 "$UPSTREAM_PY" --port 0 --port-file "$dir/port" "$@" >"$dir/log" 2>&1 &
	UPSTREAM_PID=$!
	for i in $(seq 1 100); do
		[ -s "$dir/port" ] && break
		if ! kill -0 "$UPSTREAM_PID" 2>/dev/null; then
			echo "FAIL: the vendor upstream exited at start:" >&2
			cat "$dir/log" >&2
			exit 1
		fi
		sleep 0.1
	done
	if [ ! -s "$dir/port" ]; then
		echo "FAIL: the vendor upstream did not write its port in 10 s ($dir/log)" >&2
		exit 1
	fi
	UPSTREAM_URL="http://127.0.0.1:$(cat "$dir/port")"
}

upstream_stop() {
	if [ -n "$UPSTREAM_PID" ]; then
		kill "$UPSTREAM_PID" 2>/dev/null || true
		wait "$UPSTREAM_PID" 2>/dev/null || true
		UPSTREAM_PID=""
	fi
}

upstream_mode() {
	local mode="$1" prefix="${2:-}" kv body
	shift
	[ $# -gt 0 ] && shift
	body="{\"mode\":\"$mode\",\"prefix\":\"$prefix\""
	for kv in "$@"; do
		body="$body,\"${kv%%=*}\":${kv#*=}"
	done
	body="$body}"
	curl -fsS -X POST -H 'Content-Type: application/json' --data "$body" "$UPSTREAM_URL/_control" >/dev/null
}

upstream_reset_stats() {
	curl -fsS -X POST -H 'Content-Type: application/json' --data '{"reset_stats":true}' \
		"$UPSTREAM_URL/_control" >/dev/null
}

upstream_count() {
	curl -fsS "$UPSTREAM_URL/_stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(n for k, n in s["requests"].items() if sys.argv[1] in k))' "$1"
}
