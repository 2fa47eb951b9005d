# shellcheck shell=bash disable=SC2034 # variables for the script that sources this
# Sourced by integration tests: start and stop a private swtpm (TPM 2.0
# simulator from Debian's swtpm package) on 127.0.0.1, on a free pair of
# ports, with state in a folder of the caller's. Every wait is bounded.
#
#   swtpm_start STATE_DIR   sets SWTPM_PID, SWTPM_PORT and SWTPM_TCTI
#                           ("swtpm:host=127.0.0.1,port=N"); returns 1 on failure
#   swtpm_stop              kills the swtpm it started (call it from a trap)
#
# The simulator starts with --flags not-need-init,startup-clear, so it is
# ready for commands without TPM2_Startup, as a kernel-managed TPM would be.

SWTPM_PID=""
SWTPM_PORT=""
SWTPM_TCTI=""

# swtpm_free_port prints a port P such that P and P+1 were free a moment ago.
swtpm_free_port() {
	python3 - <<'EOF'
import socket
for _ in range(50):
    a = socket.socket()
    a.bind(("127.0.0.1", 0))
    p = a.getsockname()[1]
    b = socket.socket()
    try:
        if p < 65535:
            b.bind(("127.0.0.1", p + 1))
            print(p)
            break
    except OSError:
        pass
    finally:
        a.close()
        b.close()
EOF
}

# swtpm_port_open is true when something accepts connections on port $1.
swtpm_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# swtpm_owns_port PID PORT is true when process PID holds the listening
# socket of 127.0.0.1:PORT: with tests running in parallel, a port found
# free may be taken by another test's swtpm before ours binds it, and
# "something listens there" would then hand us the other test's TPM.
swtpm_owns_port() {
	python3 - "$1" "$2" <<'EOF'
import os, sys
pid, port = sys.argv[1], int(sys.argv[2])
inodes = set()
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    f = line.split()
    if f[3] == "0A" and int(f[1].split(":")[1], 16) == port:
        inodes.add(f[9])
try:
    fds = os.listdir(f"/proc/{pid}/fd")
except OSError:
    sys.exit(1)
for fd in fds:
    try:
        t = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if t.startswith("socket:[") and t[8:-1] in inodes:
        sys.exit(0)
sys.exit(1)
EOF
}

swtpm_start() {
	local state="$1" attempt port i
	mkdir -p "$state"
	for attempt in 1 2 3 4 5; do
		port="$(swtpm_free_port)"
		[ -n "$port" ] || continue
		swtpm socket --tpm2 \
			--server "type=tcp,port=$port,bindaddr=127.0.0.1" \
			--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
			--flags not-need-init,startup-clear \
			--tpmstate "dir=$state" >"$state/swtpm.log" 2>&1 &
		SWTPM_PID=$!
		# Up to 10 s for the server port to accept connections.
		for i in $(seq 1 100); do
			if ! kill -0 "$SWTPM_PID" 2>/dev/null; then
				break
			fi
			if swtpm_port_open "$port" && swtpm_owns_port "$SWTPM_PID" "$port"; then
				SWTPM_PORT="$port"
				SWTPM_TCTI="swtpm:host=127.0.0.1,port=$port"
				return 0
			fi
			sleep 0.1
		done
		# It died (port taken in between) or never listened: try another port.
		swtpm_stop
	done
	echo "swtpm did not start; last log:" >&2
	cat "$state/swtpm.log" >&2 || true
	return 1
}

swtpm_stop() {
	local i
	if [ -n "$SWTPM_PID" ] && kill -0 "$SWTPM_PID" 2>/dev/null; then
		kill "$SWTPM_PID" 2>/dev/null || true
		for i in $(seq 1 50); do
			kill -0 "$SWTPM_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$SWTPM_PID" 2>/dev/null || true
		wait "$SWTPM_PID" 2>/dev/null || true
	fi
	SWTPM_PID=""
}
