#!/usr/bin/env bash
# The README's first command. It installs what is missing (scripts/setup.sh),
# builds cvmkit into build/, then shows what cvmkit is for, printing every
# command it runs, what cvm prints and the exit code:
#
#  1. a real Intel TDX quote (v4, dcap-qvl's sample, tests/vectors) verified
#     with its real Intel collateral at the time its manifest gives, against
#     the Intel SGX Root CA built into cvm;
#  2. a confidential VM proven end to end: `cvm image build` makes the guest,
#     QEMU boots it (TCG, OVMF, a swtpm vTPM, IMA with the tcb policy,
#     cvm-agentd inside on the simulated TEE: this machine has no TDX), then
#     from the host `cvm snapshot` of the good VM and `cvm verify` against it
#     (accepted); a program that is not in the snapshot runs in the guest and
#     `cvm verify` fails naming it; after a reboot `cvm verify` passes again
#     and reports the reboot.
#
# Where QEMU cannot boot the guest (no QEMU, OVMF or guest kernel, or the
# boot does not finish in time), part 2 says so plainly and runs the same
# `cvm snapshot` / `cvm verify` against cvm-agentd on this host instead: the
# simulated TEE, a swtpm whose PCR 10 holds a real IMA list's first 507
# entries, the tampering being the list's next entries.
#
# The files stay in build/demo/ (the snapshot, the verify outputs, the
# guest's console log). Exit 0 when every verdict was the expected one.
#   scripts/demo.sh [--quote-only | --no-vm]
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
cd "$src"
vector="tests/vectors/tdx/dcapqvl-tdx-v4-uptodate"
jobs="${CVM_JOBS:-$(nproc 2>/dev/null || echo 2)}"
mode=all
case "${1:-}" in
"") ;;
--quote-only) mode=quote ;;
--no-vm) mode=novm ;;
-h | --help)
	sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: scripts/demo.sh [--quote-only | --no-vm]" >&2
	exit 2
	;;
esac

"$src/scripts/setup.sh"

for f in quote.bin manifest.json tcb_info.json qe_identity.json tcb_info_issuer_chain.pem \
	qe_identity_issuer_chain.pem pck_crl_issuer_chain.pem pck_crl.der root_ca_crl.der; do
	if [ ! -f "$vector/$f" ]; then
		echo "demo: $vector/$f is missing: the repository's tests/vectors holds the demo's vector" \
			"(git checkout -- tests/vectors restores it)" >&2
		exit 1
	fi
done

# cvm and cvm-agentd (the guest image carries the agent and libcvmkit).
programs=(cvm cvm-agentd)
echo "demo: building ${programs[*]} into build/ (log: build/demo-build.log)"
mkdir -p "$src/build"
log="$src/build/demo-build.log"
if ! { cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
	cmake --build "$src/build" -j "$jobs" --target "${programs[@]}"; } >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	echo "demo: build failed (full log: $log)" >&2
	exit 1
fi
bin="$src/build/bin"
cvm="$bin/cvm"
work="$src/build/demo"

# run ARGS...: prints the command and its output, returns cvm's exit code.
run() {
	echo
	echo "\$ cvm $*"
	local rc=0
	"$cvm" "$@" || rc=$?
	echo "(exit code $rc)"
	return "$rc"
}
say() { echo; echo "demo: $*"; }
verdicts=()
bad=0
# verdict WHAT GOT WANT: records one line of the summary.
verdict() {
	if [ "$2" = "$3" ]; then
		verdicts+=("  [ OK ] $1: $2")
	else
		verdicts+=("  [FAIL] $1: $2 (expected $3)")
		bad=$((bad + 1))
	fi
}
summary() {
	echo
	echo "demo: summary"
	printf '%s\n' "${verdicts[@]}"
	[ "$bad" -eq 0 ] || echo "demo: $bad verdict(s) were not the expected ones (files in build/demo/)" >&2
}

# --- 1. a real TDX quote ---------------------------------------------------
# verify_at_unix, read without a JSON tool so that a bare Debian suffices.
at="$(sed -n 's/.*"verify_at_unix"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$vector/manifest.json" | head -n 1)"
if [ -z "$at" ]; then
	echo "demo: no verify_at_unix in $vector/manifest.json" >&2
	exit 1
fi
say "1. a real Intel TDX v4 quote (dcap-qvl's sample) and its Intel collateral, verified at" \
	"$(date -u -d "@$at" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null || echo "$at") (verify_at_unix $at);" \
	"expected (its manifest.json): accepted, TCB status UpToDate, no advisories." \
	"Add --json for the same as one JSON object."
rc=0
run quote verify "$vector/quote.bin" --collateral "$vector" --at "$at" || rc=$?
case "$rc" in
0) verdict "real TDX quote (dcap-qvl sample)" accepted accepted ;;
3) verdict "real TDX quote (dcap-qvl sample)" rejected accepted ;;
*)
	echo "demo: cvm quote verify gave no verdict (exit code $rc)" >&2
	exit 1
	;;
esac
if [ "$mode" = quote ]; then
	summary
	[ "$bad" -eq 0 ]
	exit
fi

# --- 2. a confidential VM, end to end --------------------------------------
rm -rf "$work"
mkdir -p "$work"
"$cvm" sim init "$work/sim" >/dev/null
coll="$work/sim/collateral"
root="$coll/tdx/intel_sgx_root_ca.der"
trust=(--collateral "$coll" --root "$root")

# expect_verify WHAT WANT OUT ARGS...: cvm verify, its output kept in OUT;
# WANT is accepted or rejected.
expect_verify() {
	local what="$1" want="$2" out="$3" rc=0
	shift 3
	run verify "$@" "${trust[@]}" -v 2>&1 | tee "$out" || true
	rc="$(sed -n 's/^(exit code \([0-9]*\))$/\1/p' "$out" | tail -n 1)"
	case "$rc" in
	0) verdict "$what" accepted "$want" ;;
	3) verdict "$what" rejected "$want" ;;
	*) verdict "$what" "no verdict (exit code $rc)" "$want" ;;
	esac
}

# A VM needs QEMU, OVMF, swtpm, mke2fs and the guest kernel that
# scripts/setup.sh unpacks; vm_require says which one is missing.
vm_why=""
if [ "$mode" = novm ]; then
	vm_why="--no-vm was given"
elif [ ! -d /var/cache/cvmkit/guest-kernel/current/ ]; then
	vm_why="the guest kernel is missing (/var/cache/cvmkit/guest-kernel/current: scripts/setup.sh unpacks it)"
else
	# shellcheck source=tests/common/vm.sh
	. "$src/tests/common/vm.sh"
	if ! vm_out="$(vm_require 2>&1)"; then
		vm_why="${vm_out#SKIP: }"
	fi
fi

vm_demo() { # returns 1 (with vm_why set) when the guest cannot be booted
	say "2. a confidential VM under QEMU: cvm image build, boot (TCG, OVMF, a swtpm vTPM, IMA tcb" \
		"policy; cvm-agentd inside on the simulated TEE, since this machine has no TDX), then" \
		"snapshot and verify it from the host over the agent's RA-TLS listener"
	echo "demo: building the guest image into build/demo/image (the test image: a root shell on a serial" \
		"channel lets this script run a program inside; a production image has none)"
	if ! "$cvm" image build "$work/image" --test-channel; then
		vm_why="cvm image build failed (above)"
		return 1
	fi
	trap 'vm_stop' EXIT
	echo "demo: booting the guest (TCG emulation: 20-60 s here; the console is build/demo/vm/console.log)"
	if ! vm_start "$work/image" "$work/vm" "$work/sim" || ! vm_wait_agent 240 >"$work/boot-wait.log" 2>&1; then
		vm_stop
		vm_why="QEMU could not boot the guest here (the console's end is in build/demo/boot-wait.log)"
		return 1
	fi
	echo "demo: the guest is up: cvm-agentd started ${VM_BOOT_SECONDS} s after QEMU; its TLS listener" \
		"(guest port 5555) is forwarded to 127.0.0.1:$VM_TLS_PORT"
	url="https://127.0.0.1:$VM_TLS_PORT"

	say "the snapshot of the good VM: TEE measurements, boot PCRs, the AK, the IMA reference set"
	local rc=0
	run snapshot --url "$url" -o "$work/snapshot.json" "${trust[@]}" || rc=$?
	if [ "$rc" -eq 0 ]; then
		verdict "cvm snapshot of the good VM" written written
	else
		verdict "cvm snapshot of the good VM" "not written (exit code $rc)" written
	fi
	run snapshot show "$work/snapshot.json" || true

	say "verify right after the snapshot: every check passes"
	expect_verify "VM right after the snapshot" accepted "$work/verify-1.txt" --url "$url" \
		--snapshot "$work/snapshot.json"

	say "inside the guest: /data/demo/busybox, a program that is not in the snapshot, runs (IMA measures it)"
	vm_exec "mkdir -p /data/demo && cp /bin/busybox /data/demo/busybox && echo demo-$RANDOM >>/data/demo/busybox && /data/demo/busybox echo ran /data/demo/busybox" || true
	expect_verify "VM after a foreign program ran" rejected "$work/verify-2.txt" --url "$url" \
		--snapshot "$work/snapshot.json"
	if grep -q 'not in the snapshot: /data/demo/busybox ' "$work/verify-2.txt"; then
		verdict "cvm verify names the program" "/data/demo/busybox" "/data/demo/busybox"
	else
		verdict "cvm verify names the program" "not named" "/data/demo/busybox"
	fi

	say "the guest reboots (the vTPM keeps its state): the program has not run in the new boot"
	if vm_reboot && vm_wait_agent 240 >"$work/reboot-wait.log" 2>&1; then
		echo "demo: the guest is up again after ${VM_BOOT_SECONDS} s"
		expect_verify "VM after a reboot" accepted "$work/verify-3.txt" --url "$url" \
			--snapshot "$work/snapshot.json"
		if grep -q '^\[ OK \] reboot: the VM rebooted since the snapshot' "$work/verify-3.txt"; then
			verdict "the reboot is reported" reported reported
		else
			verdict "the reboot is reported" "not reported" reported
		fi
	else
		verdict "VM after a reboot" "the guest did not come back (build/demo/reboot-wait.log)" accepted
	fi
	vm_stop
	trap - EXIT
	return 0
}

host_demo() {
	# shellcheck disable=SC2034 # read by tests/common/snapverify.sh
	SRC="$src"
	tmp="$work/host"
	mkdir -p "$tmp"
	# shellcheck source=tests/common/snapverify.sh
	. "$src/tests/common/snapverify.sh"
	say "2. instead: cvm-agentd on this host on the simulated TEE, a swtpm vTPM whose PCR 10 holds the" \
		"first $SV_QUOTED entries of a real IMA list (a QEMU/OVMF/swtpm boot, tests/vectors/ima), and its" \
		"RA-TLS listener on 127.0.0.1; the same cvm snapshot and cvm verify as against a VM"
	if ! command -v swtpm >/dev/null 2>&1; then
		verdict "host demo" "swtpm is missing (scripts/setup.sh installs it)" run
		return
	fi
	trap 'sv_cleanup' EXIT
	if ! sv_tpm_start "$work/host/tpm" || ! sv_agent_start "$work/sim"; then
		verdict "host demo" "cvm-agentd or swtpm did not start ($work/host/agent.log)" run
		sv_cleanup
		trap - EXIT
		return
	fi
	url="https://127.0.0.1:$SV_PORT"
	local rc=0
	run snapshot --url "$url" -o "$work/snapshot.json" "${trust[@]}" || rc=$?
	if [ "$rc" -eq 0 ]; then
		verdict "cvm snapshot" written written
	else
		verdict "cvm snapshot" "not written (exit code $rc)" written
	fi
	expect_verify "right after the snapshot" accepted "$work/verify-1.txt" --url "$url" \
		--snapshot "$work/snapshot.json"
	local path
	path="$(sv_ima_path $((SV_QUOTED + 1)))"
	say "the next IMA entry of the list is measured (PCR 10 extended, as the kernel does): $path," \
		"which is not in the snapshot"
	sv_extend $((SV_QUOTED + 1)) $((SV_QUOTED + 1))
	expect_verify "after a program not in the snapshot ran" rejected "$work/verify-2.txt" --url "$url" \
		--snapshot "$work/snapshot.json"
	if grep -qF "not in the snapshot: $path " "$work/verify-2.txt"; then
		verdict "cvm verify names the program" "$path" "$path"
	else
		verdict "cvm verify names the program" "not named" "$path"
	fi
	sv_cleanup
	trap - EXIT
}

if [ -z "$vm_why" ] && vm_demo; then
	:
else
	echo
	echo "demo: the VM part cannot run here: $vm_why."
	echo "demo: what it would do: boot the guest of cvm image build under QEMU and prove it with cvm snapshot" \
		"and cvm verify (docs/vm.md). What runs instead:"
	host_demo
fi

summary
[ "$bad" -eq 0 ]
