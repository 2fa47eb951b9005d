# Helpers for the cvm-vmmd integration tests (tests/integration/vmmd_*.sh).
#
#   vmmd_setup NAME      makes $T (a temp dir, removed on exit), a fake image
#                        dir $T/img/dev0 (metadata.json naming Debian's OVMF)
#                        and $T/vmmd.conf (run_dir $T/run, TCG, QEMU -S)
#   vmmd_start [ENV...]  starts cvm-vmmd in the background ($VMMD_PID, $PORT,
#                        log $T/vmmd.log), with extra environment settings
#   vmmd_kill9           kill -9 of the daemon
#   rpc METHOD JSON      POST /prpc/METHOD?json; body in $T/out, status in $CODE
#   fail MSG             prints the daemon log and exits 1
# Every process started here is stopped by the EXIT trap, QEMUs included.

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
VMMD_PID=""
PORT=""
CODE=""

fail() {
	echo "$VMMD_TEST: FAIL: $*" >&2
	[ -f "$T/vmmd.log" ] && tail -n 30 "$T/vmmd.log" >&2
	exit 1
}

vmmd_cleanup() {
	if [ -n "$VMMD_PID" ]; then
		kill -9 "$VMMD_PID" 2>/dev/null || true
		wait "$VMMD_PID" 2>/dev/null || true
	fi
	# QEMU and swtpm run detached: stop those of this test's run_dir only
	for f in "$T"/run/*/qemu.pid "$T"/run/*/swtpm.pid; do
		[ -f "$f" ] || continue
		p="$(cat "$f" 2>/dev/null || true)"
		[ -n "$p" ] && grep -qa "$T/run" "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p" 2>/dev/null
	done
	[ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}

vmmd_setup() {
	VMMD_TEST="$1"
	T="$(mktemp -d "${TMPDIR:-/tmp}/cvm-$1.XXXXXX")"
	trap vmmd_cleanup EXIT
	mkdir -p "$T/img/dev0" "$T/run"
	printf '{"bios":"ovmf.fd","version":"0.1.0","is_dev":true}\n' >"$T/img/dev0/metadata.json"
	: >"$T/img/dev0/ovmf.fd"
	cat >"$T/vmmd.conf" <<CONF
[vmm]
listen = 127.0.0.1:0
run_dir = $T/run
image_dir = $T/img
accel = tcg
start_paused = true
stop_timeout = 3
[cvm]
port_range = 21000-21100
max_vcpu = 4
max_memory_mb = 2048
max_disk_gb = 8
cid_pool_size = 3
CONF
}

vmmd_start() {
	rm -f "$T/port"
	env "$@" "$bin/cvm-vmmd" -c "$T/vmmd.conf" --port-file "$T/port" >>"$T/vmmd.log" 2>&1 &
	VMMD_PID=$!
	for _ in $(seq 1 100); do
		[ -s "$T/port" ] && break
		kill -0 "$VMMD_PID" 2>/dev/null || fail "cvm-vmmd exited at start"
		sleep 0.05
	done
	[ -s "$T/port" ] || fail "cvm-vmmd did not write its port"
	PORT="$(cat "$T/port")"
}

vmmd_kill9() {
	kill -9 "$VMMD_PID" 2>/dev/null || true
	wait "$VMMD_PID" 2>/dev/null || true
	VMMD_PID=""
}

rpc() {
	CODE="$(curl -s -o "$T/out" -w '%{http_code}' --max-time 30 -X POST \
		"http://127.0.0.1:$PORT/prpc/$1?json" -H 'Content-Type: application/json' --data-binary "$2" || true)"
}

# create_body NAME [EXTRA [VCPU MEMORY DISK IMAGE]] is a CreateVm message
# for a stopped VM.
create_body() {
	printf '{"name":"%s","image":"%s","compose_file":"{\\"manifest_version\\":2,\\"name\\":\\"%s\\",\\"runner\\":\\"docker-compose\\",\\"docker_compose_file\\":\\"services: {}\\"}","vcpu":%s,"memory":%s,"disk_size":%s,"stopped":true%s}' \
		"$1" "${6:-dev0}" "$1" "${3:-1}" "${4:-128}" "${5:-1}" "${2:-}"
}
