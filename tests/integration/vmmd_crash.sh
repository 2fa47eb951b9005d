#!/usr/bin/env bash
# Crash safety of cvm-vmmd's CreateVm, StartVm and RemoveVm: the daemon is killed
# (kill -9) at EVERY step of both (the test-only hook CVM_VMMD_TEST_PAUSE_AT
# makes it stop there), restarted, and then the database (Status) and
# run_dir must agree: a creation is either finished (the VM is listed,
# stopped, with a complete work dir) or undone (no row, no directory), a
# removal is finished, and no temporary directory is left; a start killed
# while the launch was being measured is started again by the restarted
# daemon (the VM ends up running, QEMU started once).
set -euo pipefail
src="${CVM_SOURCE_DIR:?}"
# shellcheck source=tests/common/vmmd.sh
. "$src/tests/common/vmmd.sh"
vmmd_setup vmmd_crash

# agree checks that Status and run_dir list the same VMs, each complete.
agree() {
	rpc Status '{}'
	[ "$CODE" = 200 ] || fail "Status: $CODE"
	listed="$(jq -r '.vms[].id' "$T/out" | sort)"
	# the VMs' work dirs (not sim-platform, acpi-cache: the daemon's own)
	dirs="$(cd "$T/run" && find . -mindepth 1 -maxdepth 1 -type d | sed 's|^\./||' |
		grep -E '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' | sort || true)"
	[ -z "$(cd "$T/run" && find . -mindepth 1 -maxdepth 1 -type d -name '.*')" ] || fail "$1: a hidden dir is left in run_dir"
	[ "$listed" = "$dirs" ] || fail "$1: Status lists [$listed] but run_dir holds [$dirs]"
	for id in $listed; do
		[ -f "$T/run/$id/vm.json" ] && [ -f "$T/run/$id/hda.img" ] &&
			[ -f "$T/run/$id/shared/app-compose.json" ] || fail "$1: $id is listed but incomplete"
	done
	jq -e '[.vms[].status] | all(. == "stopped")' "$T/out" >/dev/null || fail "$1: a VM is not stopped: $(cat "$T/out")"
}

# pause_then_kill STEP METHOD BODY: the request pauses the daemon at STEP,
# which is then killed with -9.
pause_then_kill() {
	vmmd_start CVM_VMMD_TEST_PAUSE_AT="$1"
	n0="$(grep -c "paused at $1" "$T/vmmd.log" || true)"
	curl -s -o /dev/null --max-time 20 -X POST "http://127.0.0.1:$PORT/prpc/$2?json" --data-binary "$3" &
	cpid=$!
	for _ in $(seq 1 200); do
		[ "$(grep -c "paused at $1" "$T/vmmd.log" || true)" -gt "$n0" ] && break
		sleep 0.05
	done
	[ "$(grep -c "paused at $1" "$T/vmmd.log" || true)" -gt "$n0" ] || fail "the daemon never paused at $1"
	vmmd_kill9
	wait "$cpid" 2>/dev/null || true
}

vmmd_start
agree "empty"
vmmd_kill9

i=0
for step in create_insert create_files create_disk create_manifest create_rename create_done; do
	i=$((i + 1))
	pause_then_kill "$step" CreateVm "$(create_body "vm$i")"
	vmmd_start
	agree "after a crash at $step"
	rpc GetInfo "{\"id\":\"vm$i\"}"
	case "$step" in
	create_insert | create_files | create_disk | create_manifest)
		jq -e '.found == false' "$T/out" >/dev/null || fail "$step: the creation was not undone: $(cat "$T/out")" ;;
	*)
		jq -e '.found == true and .info.status == "stopped"' "$T/out" >/dev/null ||
			fail "$step: the creation was not finished: $(cat "$T/out")" ;;
	esac
	[ -z "$(find "$T/run" -maxdepth 1 -name '.tmp-*' -o -maxdepth 1 -name '.rm-*')" ] || fail "$step: a temporary dir is left"
	vmmd_kill9
done

for step in remove_mark remove_rename remove_delete; do
	vmmd_start
	rpc CreateVm "$(create_body "rm-$step")"
	[ "$CODE" = 200 ] || fail "CreateVm: $(cat "$T/out")"
	vmmd_kill9
	pause_then_kill "$step" RemoveVm "{\"id\":\"rm-$step\"}"
	vmmd_start
	agree "after a crash at $step"
	rpc GetInfo "{\"id\":\"rm-$step\"}"
	jq -e '.found == false' "$T/out" >/dev/null || fail "$step: the removal was not finished: $(cat "$T/out")"
	[ -z "$(find "$T/run" -maxdepth 1 -name '.tmp-*' -o -maxdepth 1 -name '.rm-*')" ] || fail "$step: a temporary dir is left"
	vmmd_kill9
done

# StartVm killed while the launch is measured (state starting, no QEMU):
# the restarted daemon starts it again (QEMU, paused, with a real firmware).
cp /usr/share/ovmf/OVMF.fd "$T/img/dev0/ovmf.fd" || fail "no /usr/share/ovmf/OVMF.fd (scripts/setup.sh installs ovmf)"
vmmd_start
rpc CreateVm "$(create_body start1)"
[ "$CODE" = 200 ] || fail "CreateVm: $(cat "$T/out")"
vmmd_kill9
pause_then_kill start_measure StartVm '{"id":"start1"}'
rpc_down=1
vmmd_start
for _ in $(seq 1 100); do
	rpc GetInfo '{"id":"start1"}'
	jq -e '.info.status == "running"' "$T/out" >/dev/null && rpc_down=0 && break
	sleep 0.1
done
[ "$rpc_down" = 0 ] || fail "start_measure: the restarted daemon did not finish the start: $(cat "$T/out")"
grep -q "action=start_resumed" "$T/vmmd.log" || fail "start_measure: no start_resumed in the log"
jq -e '.info.boot_history | map(select(.progress == "QEMU started")) | length == 1' "$T/out" >/dev/null ||
	fail "start_measure: QEMU was not started exactly once: $(cat "$T/out")"
rpc StopVm '{"id":"start1"}'
rpc RemoveVm '{"id":"start1"}'
[ "$CODE" = 200 ] || fail "RemoveVm after the resumed start: $(cat "$T/out")"
vmmd_kill9

# A stray temporary dir with no row is removed at start.
mkdir -p "$T/run/.tmp-00000000-0000-4000-8000-000000000000/shared"
vmmd_start
[ ! -e "$T/run/.tmp-00000000-0000-4000-8000-000000000000" ] || fail "an orphan .tmp- dir was kept"
agree "after an orphan"
echo "vmmd_crash: OK"
