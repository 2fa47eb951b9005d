#!/usr/bin/env bash
# vm.vmm_boot_error: a VM that fails to boot is reported with the reason
# from its serial log (docs/daemons/cvm-vmmd.md). cvm-vmmd (dev, TCG) starts
# an image whose kernel has no root file system: the kernel panics, QEMU
# ends (-no-reboot), and the VM is stopped with a boot_error that quotes the
# panic line of its serial log; `cvm vm ls -v` shows it. A VM stopped on
# request carries no such error. FAILS (does not skip) when QEMU, OVMF or
# the guest kernel is missing.
set -uo pipefail

bin="$(cd "${CVM_BIN:?CVM_BIN must point at build/bin}" && pwd)"
kernel_dir="${CVM_GUEST_KERNEL:-/var/cache/cvmkit/guest-kernel/current}"
for t in qemu-system-x86_64 qemu-img swtpm python3 curl; do
	command -v "$t" >/dev/null || { echo "vm.vmm_boot_error: FAIL: $t is missing (scripts/setup.sh installs it)"; exit 1; }
done
kernel="$(find "$kernel_dir/boot/" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n 1)"
if [ ! -r /usr/share/ovmf/OVMF.fd ] || [ -z "$kernel" ]; then
	echo "vm.vmm_boot_error: FAIL: OVMF.fd or the guest kernel ($kernel_dir) is missing: run scripts/setup.sh"
	exit 1
fi
T="$(mktemp -d "${TMPDIR:-/tmp}/cvm-vmm-boot-error.XXXXXX")"
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for f in "$T"/run/*/qemu.pid "$T"/run/*/swtpm.pid; do
		[ -f "$f" ] && p="$(cat "$f")" && grep -qa "$T/run" "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p"
	done
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "vm.vmm_boot_error: FAIL: $*" >&2
	tail -n 20 "$T/vmmd.log" >&2
	exit 1
}

mkdir -p "$T/img/panic" "$T/run"
cp /usr/share/ovmf/OVMF.fd "$T/img/panic/ovmf.fd"
cp "$kernel" "$T/img/panic/vmlinuz"
printf '{"bios":"ovmf.fd","kernel":"vmlinuz","cmdline":"console=ttyS0 panic=1 root=/dev/nonexistent","version":"test","is_dev":true}\n' \
	>"$T/img/panic/metadata.json"
cat >"$T/vmmd.conf" <<EOF
[vmm]
listen = 127.0.0.1:0
run_dir = $T/run
image_dir = $T/img
accel = tcg
stop_timeout = 5
EOF
"$bin/cvm-vmmd" -c "$T/vmmd.conf" --port-file "$T/port" >"$T/vmmd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
[ -s "$T/port" ] || fail "cvm-vmmd did not start"
CVM_VMM_URL="http://127.0.0.1:$(cat "$T/port")"
export CVM_VMM_URL
printf '{"manifest_version":2,"name":"panic","runner":"docker-compose","docker_compose_file":"services: {}"}' >"$T/compose.json"
"$bin/cvm" vm deploy --name panic --image panic --compose "$T/compose.json" --memory 512 --disk 1 >/dev/null ||
	fail "deploy"
t0="$(date +%s)"
status=""
for _ in $(seq 1 240); do
	curl -sf "$CVM_VMM_URL/prpc/GetInfo?json" -d '{"id":"panic"}' >"$T/info.json" || fail "GetInfo"
	status="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["info"]["status"])' "$T/info.json")"
	[ "$status" = stopped ] && break
	sleep 0.5
done
[ "$status" = stopped ] || fail "the panicking VM is still $status after 120 s (is -no-reboot there?)"
python3 - "$T/info.json" <<'PY' || fail "boot_error does not quote the panic: $(cat "$T/info.json")"
import json, sys
e = json.load(open(sys.argv[1]))["info"]["boot_error"]
assert e.startswith("the VM stopped on its own; its serial log ends: "), e
assert "Kernel panic" in e, e
PY
"$bin/cvm" vm ls -v | grep -q "Kernel panic" || fail "cvm vm ls -v does not show the reason"
echo "vm.vmm_boot_error: the panic reported $(($(date +%s) - t0)) s after the start"

# A VM stopped on request carries no such error.
curl -sf "$CVM_VMM_URL/prpc/StartVm?json" -d '{"id":"panic"}' >/dev/null || fail "StartVm"
sleep 1
"$bin/cvm" vm stop -f panic >/dev/null || fail "stop -f"
curl -sf "$CVM_VMM_URL/prpc/GetInfo?json" -d '{"id":"panic"}' >"$T/info.json" || fail "GetInfo"
python3 -c 'import json,sys; i=json.load(open(sys.argv[1]))["info"]; assert i["status"] == "stopped" and i["boot_error"] == "", i' \
	"$T/info.json" || fail "a VM stopped on request has an error: $(cat "$T/info.json")"
echo "vm.vmm_boot_error: ok"
