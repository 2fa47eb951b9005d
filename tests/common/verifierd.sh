# shellcheck shell=bash disable=SC2034,SC2154 # VD_* are for, and $bin is from, the sourcing script
# Sourced by the integration scripts: start and stop cvm-verifierd.
#
#   vd_start LOG WORKERS ARGS...  starts $bin/cvm-verifierd on 127.0.0.1, port 0,
#                                 with WORKERS workers and ARGS, logging to LOG;
#                                 waits (10 s at most) for its port and for every
#                                 worker to start; sets VD_PID, VD_PORT, VD_URL.
#                                 When it does not come up: prints the log, stops
#                                 what is left and returns 1.
#   vd_stop                       stops it (SIGTERM, then waits); no-op when not
#                                 running.
# Needs $bin (build/bin); the log level must be info or debug (worker_start).

VD_PID=""
VD_PORT=""
VD_URL=""

vd_start() {
	local log="$1" workers="$2" pf
	shift 2
	pf="$log.port"
	rm -f "$pf"
	VD_PORT=""
	VD_URL=""
	"$bin/cvm-verifierd" --listen 127.0.0.1:0 --port-file "$pf" --workers "$workers" "$@" >"$log" 2>&1 &
	VD_PID=$!
	for _ in $(seq 100); do
		[ -s "$pf" ] && [ "$(grep -c event=worker_start "$log")" -ge "$workers" ] && break
		kill -0 "$VD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! kill -0 "$VD_PID" 2>/dev/null || [ ! -s "$pf" ] ||
		[ "$(grep -c event=worker_start "$log")" -lt "$workers" ]; then
		cat "$log" >&2
		echo "cvm-verifierd did not start with $workers worker(s) within 10 s ($log)" >&2
		vd_stop
		return 1
	fi
	VD_PORT="$(cat "$pf")"
	VD_URL="http://127.0.0.1:$VD_PORT"
}

vd_stop() {
	if [ -n "$VD_PID" ] && kill -0 "$VD_PID" 2>/dev/null; then
		kill -TERM "$VD_PID" 2>/dev/null || true
		wait "$VD_PID" 2>/dev/null || true
	fi
	VD_PID=""
}
