#!/usr/bin/env bash
# cvm-vmmd with a real QEMU (TCG, started paused with -S so no guest needs to
# boot) and a real swtpm: StartVm spawns QEMU detached (pidfile, QMP socket
# in the work dir) and its vTPM; the daemon survives a kill -9 of itself and
# re-adopts the running QEMU (same pid, status running); StopVm quits QEMU
# and swtpm; ShutdownVm asks for an ACPI powerdown, which a paused guest
# ignores, so QEMU is quit after [vmm] stop_timeout; /logs serves the
# serial log; a VM whose QEMU died while the daemon was down is marked
# stopped at the next start.
set -euo pipefail
src="${CVM_SOURCE_DIR:?}"
# shellcheck source=tests/common/vmmd.sh
. "$src/tests/common/vmmd.sh"
for t in qemu-system-x86_64 qemu-img swtpm jq curl; do
	command -v "$t" >/dev/null || { echo "SKIP: $t is missing (scripts/setup.sh installs it)"; exit 77; }
done
ovmf=""
for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE.fd; do
	[ -r "$f" ] && { ovmf="$f"; break; }
done
[ -n "$ovmf" ] || { echo "SKIP: OVMF is missing (Debian package ovmf)"; exit 77; }
vmmd_setup vmmd_qemu
ln -sf "$ovmf" "$T/img/dev0/ovmf.fd"
vmmd_start

rpc CreateVm "$(create_body q1 ',"ports":[{"protocol":"tcp","host_port":21050,"vm_port":22}]')"
[ "$CODE" = 200 ] || fail "CreateVm: $(cat "$T/out")"
id="$(jq -r .id "$T/out")"
wd="$T/run/$id"
rpc StartVm '{"id":"q1"}'
[ "$CODE" = 200 ] || fail "StartVm: $CODE $(cat "$T/out"); qemu.log: $(cat "$wd/qemu.log" 2>/dev/null)"
rpc GetInfo '{"id":"q1"}'
jq -e '.info.status == "running" and .info.running == true and .info.pid > 0' "$T/out" >/dev/null ||
	fail "GetInfo after StartVm: $(cat "$T/out")"
pid="$(jq -r .info.pid "$T/out")"
[ "$pid" = "$(cat "$wd/qemu.pid")" ] || fail "the recorded pid is not QEMU's pidfile"
tr '\0' ' ' <"/proc/$pid/cmdline" >"$T/cmdline"
for want in "-machine q35,accel=tcg" "-S" "-daemonize" "$wd/qmp.sock" "$wd/hda.img" \
	"hostfwd=tcp:127.0.0.1:21050-:22" "mount_tag=host-shared,readonly=on" "tpm-crb" "$wd/swtpm.sock"; do
	grep -qF -- "$want" "$T/cmdline" || fail "QEMU's command line lacks $want: $(cat "$T/cmdline")"
done
[ "$(ps -o sid= -p "$pid" | tr -d ' ')" != "$(ps -o sid= -p "$VMMD_PID" | tr -d ' ')" ] ||
	fail "QEMU is in the daemon's session"
tpm="$(cat "$wd/swtpm.pid")"
kill -0 "$tpm" 2>/dev/null || fail "swtpm is not running"
[ -S "$wd/qmp.sock" ] || fail "no QMP socket"

# The daemon dies; QEMU lives on and is re-adopted.
vmmd_kill9
kill -0 "$pid" 2>/dev/null || fail "QEMU died with the daemon"
vmmd_start
grep -q "id=$id action=adopted pid=$pid" "$T/vmmd.log" || fail "the restarted daemon did not adopt QEMU"
rpc GetInfo '{"id":"q1"}'
jq -e --argjson p "$pid" '.info.status == "running" and .info.pid == $p' "$T/out" >/dev/null ||
	fail "GetInfo after the restart: $(cat "$T/out")"
rpc RemoveVm '{"id":"q1"}'
[ "$CODE" = 409 ] || fail "RemoveVm of a running VM: $CODE"
CODE="$(curl -s -o "$T/out" -w '%{http_code}' "http://127.0.0.1:$PORT/logs?id=q1&lines=5")"
[ "$CODE" = 200 ] || fail "/logs: $CODE $(cat "$T/out")"

# StopVm: QEMU and swtpm end.
rpc StopVm '{"id":"q1"}'
[ "$CODE" = 200 ] || fail "StopVm: $CODE $(cat "$T/out")"
for _ in $(seq 1 50); do grep -qF "$wd" "/proc/$pid/cmdline" 2>/dev/null || break; sleep 0.1; done
! grep -qF "$wd" "/proc/$pid/cmdline" 2>/dev/null || fail "QEMU still runs after StopVm"
for _ in $(seq 1 50); do grep -qF "$wd" "/proc/$tpm/cmdline" 2>/dev/null || break; sleep 0.1; done
! grep -qF "$wd" "/proc/$tpm/cmdline" 2>/dev/null || fail "swtpm still runs after StopVm"
rpc GetInfo '{"id":"q1"}'
jq -e '.info.status == "stopped" and .info.pid == 0' "$T/out" >/dev/null || fail "GetInfo after StopVm: $(cat "$T/out")"

# ShutdownVm: powerdown is ignored by the paused guest; quit after 3 s.
rpc StartVm '{"id":"q1"}'
[ "$CODE" = 200 ] || fail "StartVm again: $(cat "$T/out")"
rpc GetInfo '{"id":"q1"}'
pid="$(jq -r .info.pid "$T/out")"
rpc ShutdownVm '{"id":"q1"}'
[ "$CODE" = 200 ] || fail "ShutdownVm: $CODE $(cat "$T/out")"
rpc GetInfo '{"id":"q1"}'
jq -e '.info.status == "stopping"' "$T/out" >/dev/null || fail "GetInfo after ShutdownVm: $(cat "$T/out")"
for _ in $(seq 1 100); do
	rpc GetInfo '{"id":"q1"}'
	jq -e '.info.status == "stopped"' "$T/out" >/dev/null && break
	sleep 0.1
done
jq -e '.info.status == "stopped"' "$T/out" >/dev/null || fail "ShutdownVm did not end QEMU after stop_timeout: $(cat "$T/out")"
grep -q "id=$id action=quit_after_timeout" "$T/vmmd.log" || fail "no quit after the timeout in the log"

# QEMU dies while the daemon is down: marked stopped at the next start.
rpc StartVm '{"id":"q1"}'
[ "$CODE" = 200 ] || fail "StartVm a third time: $(cat "$T/out")"
rpc GetInfo '{"id":"q1"}'
pid="$(jq -r .info.pid "$T/out")"
vmmd_kill9
kill -9 "$pid"
sleep 0.3
vmmd_start
grep -q "id=$id action=marked_stopped" "$T/vmmd.log" || fail "a dead QEMU was not marked stopped"
rpc GetInfo '{"id":"q1"}'
jq -e '.info.status == "stopped"' "$T/out" >/dev/null || fail "GetInfo after QEMU died: $(cat "$T/out")"
rpc RemoveVm '{"id":"q1"}'
[ "$CODE" = 200 ] || fail "RemoveVm: $CODE $(cat "$T/out")"
[ ! -e "$wd" ] || fail "RemoveVm left the work dir"
echo "vmmd_qemu: OK"
