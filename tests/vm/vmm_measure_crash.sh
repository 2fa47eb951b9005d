#!/usr/bin/env bash
# vm.vmm_measure_crash: cvm-vmmd killed (kill -9) while a dev VM's launch is
# being measured (the ACPI probe boots QEMU in the daemon's child), and a
# StopVm during the measurement (docs/daemons/cvm-vmmd.md "Dev VMs are
# measured", "Crash safety"):
#  - the measuring child dies with the daemon, and the probe's QEMU and
#    swtpm with it (no orphan writes the VM's simulated TEE later);
#  - the restarted daemon starts the VM again: it is measured (measured:
#    true, RTMR0 from a probe) and running (QEMU -S), QEMU started once;
#  - StopVm while a measurement runs cancels it: the VM is stopped, its
#    child gone, no QEMU started.
# The image is the smallest one that is measurable: Debian's OVMF.fd, the
# guest kernel and the probe initrd (`cvm measure probe-initrd`). FAILS (does
# not skip) when QEMU, OVMF, busybox-static or the guest kernel is missing.
set -uo pipefail

bin="$(cd "${CVM_BIN:?CVM_BIN must point at build/bin}" && pwd)"
kernel_dir="${CVM_GUEST_KERNEL:-/var/cache/cvmkit/guest-kernel/current}"
for t in qemu-system-x86_64 qemu-img swtpm python3 curl; do
	command -v "$t" >/dev/null || { echo "vm.vmm_measure_crash: FAIL: $t is missing (scripts/setup.sh installs it)"; exit 1; }
done
kernel="$(find "$kernel_dir/boot/" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n 1)"
if [ ! -r /usr/share/ovmf/OVMF.fd ] || [ -z "$kernel" ]; then
	echo "vm.vmm_measure_crash: FAIL: OVMF.fd or the guest kernel ($kernel_dir) is missing: run scripts/setup.sh"
	exit 1
fi
T="$(mktemp -d "${TMPDIR:-/tmp}/cvm-vmm-measure-crash.XXXXXX")"
pid=""
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for f in "$T"/run/*/qemu.pid "$T"/run/*/swtpm.pid; do
		[ -f "$f" ] && p="$(cat "$f")" && grep -qa "$T/run" "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p"
	done
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "vm.vmm_measure_crash: FAIL: $*" >&2
	tail -n 20 "$T/vmmd.log" >&2
	exit 1
}
start() {
	rm -f "$T/port"
	"$bin/cvm-vmmd" -c "$T/vmmd.conf" --port-file "$T/port" >>"$T/vmmd.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	[ -s "$T/port" ] || fail "cvm-vmmd did not start"
	url="http://127.0.0.1:$(cat "$T/port")"
}
rpc() { curl -sf "$url/prpc/$1?json" -d "$2"; }
status() { rpc GetInfo "{\"id\":\"$1\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["status"])'; }
# measuring_pid NAME: the pid of the child measuring VM NAME, from the log
measuring_pid() {
	local id
	id="$(rpc GetInfo "{\"id\":\"$1\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["id"])')"
	for _ in $(seq 1 100); do
		grep -o "event=vm_measuring id=$id pid=[0-9]*" "$T/vmmd.log" | tail -n 1 | sed 's/.*pid=//' | grep . && return 0
		sleep 0.05
	done
	return 1
}

mkdir -p "$T/img/m" "$T/run"
cp /usr/share/ovmf/OVMF.fd "$T/img/m/ovmf.fd"
cp "$kernel" "$T/img/m/vmlinuz"
"$bin/cvm" -q measure probe-initrd "$T/img/m/acpi-probe.img" --kernel-dir "$kernel_dir" >/dev/null ||
	fail "cvm measure probe-initrd"
printf '{"bios":"ovmf.fd","kernel":"vmlinuz","acpi_probe_initrd":"acpi-probe.img","cmdline":"console=ttyS0","version":"test","is_dev":true}\n' \
	>"$T/img/m/metadata.json"
cat >"$T/vmmd.conf" <<EOF
[vmm]
listen = 127.0.0.1:0
run_dir = $T/run
image_dir = $T/img
accel = tcg
start_paused = true
stop_timeout = 5
[cvm]
max_vcpu = 4
EOF
compose='{\"manifest_version\":2,\"name\":\"m\",\"runner\":\"docker-compose\",\"docker_compose_file\":\"services: {}\"}'
start

# 1. kill -9 while measuring: the child goes with the daemon; the restarted
#    daemon measures and starts the VM.
rpc CreateVm "{\"name\":\"a\",\"image\":\"m\",\"compose_file\":\"$compose\",\"vcpu\":1,\"memory\":512,\"disk_size\":1,\"stopped\":true}" >/dev/null ||
	fail "CreateVm a"
rpc StartVm '{"id":"a"}' >/dev/null || fail "StartVm a"
child="$(measuring_pid a)" || fail "no measuring child for a"
[ "$(status a)" = starting ] || fail "a is not starting while it is measured"
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=""
for _ in $(seq 1 40); do kill -0 "$child" 2>/dev/null || break; sleep 0.05; done
kill -0 "$child" 2>/dev/null && fail "the measuring child $child outlived the daemon"
# and so do the probe's QEMU and swtpm (they die with the child)
sleep 1
pgrep -f "$T/run/.*/acpi-probe" >/dev/null && fail "the probe's QEMU or swtpm outlived the daemon: $(pgrep -af "$T/run/.*/acpi-probe")"
start
for _ in $(seq 1 240); do [ "$(status a)" = running ] && break; sleep 0.5; done
[ "$(status a)" = running ] || fail "the restarted daemon did not finish the start of a: $(rpc GetInfo '{"id":"a"}')"
grep -q "action=start_resumed" "$T/vmmd.log" || fail "no start_resumed in the log"
rpc GetInfo '{"id":"a"}' >"$T/a.json"
python3 - "$T/a.json" <<'PY' || fail "a: $(cat "$T/a.json")"
import json, sys
i = json.load(open(sys.argv[1]))["info"]
m = i["measurement"]
assert m["measured"] is True and len(m["rtmr0"]) == 96 and set(m["rtmr0"]) != {"0"}, m
assert [e["progress"] for e in i["boot_history"]].count("QEMU started") == 1, i["boot_history"]
assert [e["progress"] for e in i["boot_history"]].count("start requested") == 2, i["boot_history"]
PY

# 2. StopVm while measuring (another shape: the probe is not cached) cancels it.
rpc CreateVm "{\"name\":\"b\",\"image\":\"m\",\"compose_file\":\"$compose\",\"vcpu\":2,\"memory\":512,\"disk_size\":1,\"stopped\":true}" >/dev/null ||
	fail "CreateVm b"
rpc StartVm '{"id":"b"}' >/dev/null || fail "StartVm b"
child="$(measuring_pid b)" || fail "no measuring child for b"
rpc StopVm '{"id":"b"}' >/dev/null || fail "StopVm of a measuring VM"
[ "$(status b)" = stopped ] || fail "b is not stopped after StopVm during its measurement"
kill -0 "$child" 2>/dev/null && fail "the measuring child $child of b still runs"
[ -e "$T/run/$(rpc GetInfo '{"id":"b"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["id"])')/qemu.pid" ] &&
	fail "b's QEMU was started"
echo "vm.vmm_measure_crash: ok"
