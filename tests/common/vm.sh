# shellcheck shell=bash disable=SC2034 # variables for the script that sources this
# Sourced by the vm tests: boot the guest image of `cvm image build` under
# QEMU (TCG, q35, OVMF) with a private swtpm vTPM (tpm-crb) and a data disk
# holding the simulated TEE, reach it from the host, stop everything.
# docs/vm.md describes the guest. Every wait is bounded.
#
#   vm_require                 exit 77 (skip, with the reason) when QEMU, OVMF,
#                              swtpm or mke2fs is missing
#   vm_start IMAGE WORK SIM    boots IMAGE (a `cvm image build --test-channel`
#                              folder: vm_wait_agent and vm_exec need the
#                              command channel) with
#                              WORK as its own folder (swtpm state, OVMF vars,
#                              data disk, logs, sockets) and a copy of the
#                              `cvm sim init` folder SIM on the data disk
#                              (/data/sim in the guest); returns 1 on failure
#   vm_wait_agent TIMEOUT_S    waits for cvm-agentd's start line on the console
#                              and for the command channel; prints the console
#                              log's end and returns 1 on a timeout or when
#                              QEMU ended
#   vm_exec [-t S] COMMAND     runs COMMAND (one line) as root in the guest:
#                              its output on stdout, its exit status
#   vm_reboot                  resets the guest (QMP system_reset); swtpm and
#                              the data disk keep their state; then
#                              vm_wait_agent again
#   vm_stop                    stops QEMU and swtpm (call it from a trap)
#
# After vm_start: VM_TLS_PORT (host port forwarded to the agent's TLS
# listener, guest port 5555), VM_API_PORT (to guest port 8090, the dstack
# API when the image's agent config serves it on TCP), VM_CONSOLE (the
# serial console log), VM_CMD_SOCK, VM_QMP_SOCK, VM_QEMU_PID, VM_SWTPM_PID,
# VM_DATA_IMG. VM_BOOT_SECONDS after vm_wait_agent: from QEMU's start (or
# the reset) to the agent's start line.
#
# Settings (environment): VM_MEMORY (MiB, default 512), VM_OVMF_CODE and
# VM_OVMF_VARS (default Debian's 4M pair). For the app guest (`cvm image
# build --app-runtime`, docs/vm.md), all off unless set:
#   VM_SHARED=DIR        the host-shared folder, a read-only 9p share (tag
#                        host-shared; the app guest finds sim/ there)
#   VM_DATA_DISK=FILE    the data disk (qcow2) instead of the ext4 one made
#                        from SIM (not copied then); it keeps its contents
#                        across vm_start
#   VM_CHANNEL=1         the host channel (virtio-serial port
#                        org.cvmkit.host.0) on WORK/channel.sock; a reader
#                        appends its lines to VM_CHANNEL_LOG (WORK/channel.log)
#   VM_APP_GUEST_PORT=P  forward host port VM_APP_PORT to guest port P

VM_DIR_COMMON="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VM_QEMU_PID=""
VM_SWTPM_PID=""
VM_WATCHDOG_PID=""
VM_WORK=""
VM_CONSOLE=""
VM_CMD_SOCK=""
VM_QMP_SOCK=""
VM_TLS_PORT=""
VM_API_PORT=""
VM_DATA_IMG=""
VM_BOOT_SECONDS=""
VM_CHANNEL_LOG=""
VM_CHANNEL_PID=""
VM_APP_PORT=""
VM_T0=""
VM_MARK=0
: "${VM_OVMF_CODE:=/usr/share/OVMF/OVMF_CODE_4M.fd}"
: "${VM_OVMF_VARS:=/usr/share/OVMF/OVMF_VARS_4M.fd}"
: "${VM_MEMORY:=512}"

vm_require() {
	local t
	for t in qemu-system-x86_64:qemu-system-x86 swtpm:swtpm mke2fs:e2fsprogs python3:python3; do
		if ! command -v "${t%%:*}" >/dev/null 2>&1; then
			echo "SKIP: ${t%%:*} is missing (Debian package ${t#*:}; scripts/setup.sh installs it)"
			exit 77
		fi
	done
	if [ ! -r "$VM_OVMF_CODE" ] || [ ! -r "$VM_OVMF_VARS" ]; then
		echo "SKIP: OVMF is missing ($VM_OVMF_CODE; Debian package ovmf, scripts/setup.sh installs it)"
		exit 77
	fi
}

# vm_free_ports N prints N TCP ports of 127.0.0.1 that were free a moment ago.
vm_free_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# vm_wait_socket PATH PID: up to 10 s for PATH to appear while PID lives.
vm_wait_socket() {
	local i
	for i in $(seq 1 100); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

vm_start() {
	local image="$1" work="$2" sim="$3" ports
	VM_WORK="$work"
	mkdir -p "$work/tpm" "$work/data"
	VM_CONSOLE="$work/console.log"
	VM_CMD_SOCK="$work/cmd.sock"
	VM_QMP_SOCK="$work/qmp.sock"
	VM_DATA_IMG="$work/data.img"
	: >"$VM_CONSOLE"
	VM_MARK=0
	for f in vmlinuz initrd.img root.ext4 cmdline; do
		[ -r "$image/$f" ] || { echo "vm_start: $image/$f is missing (run cvm image build $image)" >&2; return 1; }
	done
	local data_fmt=raw extra=() fwd
	if [ -n "${VM_DATA_DISK:-}" ]; then
		VM_DATA_IMG="$VM_DATA_DISK"
		data_fmt=qcow2
	else
		# The data disk: the simulated TEE's state, writable, ext4 (measured).
		rm -rf "$work/data/sim"
		cp -a "$sim" "$work/data/sim" || return 1
		rm -f "$VM_DATA_IMG"
		mke2fs -q -F -t ext4 -d "$work/data" "$VM_DATA_IMG" 64M >"$work/mke2fs.log" 2>&1 ||
			{ echo "vm_start: mke2fs of the data disk failed:" >&2; cat "$work/mke2fs.log" >&2; return 1; }
	fi
	if [ -n "${VM_SHARED:-}" ]; then
		extra+=(-virtfs "local,path=$VM_SHARED,mount_tag=host-shared,readonly=on,security_model=none")
	fi
	if [ -n "${VM_CHANNEL:-}" ]; then
		rm -f "$work/channel.sock"
		VM_CHANNEL_LOG="$work/channel.log"
		: >"$VM_CHANNEL_LOG"
		extra+=(-device virtio-serial -chardev "socket,path=$work/channel.sock,server=on,wait=off,id=ch0"
			-device "virtserialport,chardev=ch0,name=org.cvmkit.host.0")
	fi
	cp "$VM_OVMF_VARS" "$work/vars.fd" || return 1

	# The vTPM: its own state folder, a unix control socket for QEMU (the
	# firmware sends TPM2_Startup itself).
	rm -f "$work/swtpm.sock"
	swtpm socket --tpm2 --tpmstate "dir=$work/tpm" --ctrl "type=unixio,path=$work/swtpm.sock" \
		--log "file=$work/swtpm.log" >/dev/null 2>&1 &
	VM_SWTPM_PID=$!
	vm_wait_socket "$work/swtpm.sock" "$VM_SWTPM_PID" ||
		{ echo "vm_start: swtpm did not start:" >&2; cat "$work/swtpm.log" >&2; vm_stop; return 1; }

	read -r VM_TLS_PORT VM_API_PORT VM_APP_PORT <<<"$(vm_free_ports 3)"
	fwd="hostfwd=tcp:127.0.0.1:$VM_TLS_PORT-10.0.2.15:5555,hostfwd=tcp:127.0.0.1:$VM_API_PORT-10.0.2.15:8090"
	if [ -n "${VM_APP_GUEST_PORT:-}" ]; then
		fwd="$fwd,hostfwd=tcp:127.0.0.1:$VM_APP_PORT-10.0.2.15:$VM_APP_GUEST_PORT"
	else
		VM_APP_PORT=""
	fi
	rm -f "$VM_CMD_SOCK" "$VM_QMP_SOCK"
	VM_T0="$(date +%s.%N)"
	qemu-system-x86_64 -machine q35,accel=tcg -m "$VM_MEMORY" -smp 1 -nographic -nodefaults \
		-chardev "file,id=con,path=$VM_CONSOLE" -serial chardev:con \
		-chardev "socket,id=cmd,path=$VM_CMD_SOCK,server=on,wait=off" -serial chardev:cmd \
		-chardev "socket,id=chrtpm,path=$work/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
		-device tpm-crb,tpmdev=tpm0 \
		-drive "if=pflash,format=raw,readonly=on,file=$VM_OVMF_CODE" \
		-drive "if=pflash,format=raw,file=$work/vars.fd" \
		-kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$(cat "$image/cmdline")" \
		-drive "file=$image/root.ext4,format=raw,if=virtio,readonly=on" \
		-drive "file=$VM_DATA_IMG,format=$data_fmt,if=virtio" \
		-netdev "user,id=n0,$fwd" -device virtio-net-pci,netdev=n0 "${extra[@]}" \
		-qmp "unix:$VM_QMP_SOCK,server=on,wait=off" >"$work/qemu.log" 2>&1 </dev/null &
	VM_QEMU_PID=$!
	# No stray QEMU or swtpm, ever: a watchdog ends them when this shell
	# dies without running its trap (SIGKILL, a ctest timeout); a TERM, INT
	# or HUP exits through the EXIT trap that calls vm_stop.
	(
		trap '' INT HUP
		while kill -0 "$$" 2>/dev/null; do sleep 1; done
		kill -9 "$VM_QEMU_PID" "$VM_SWTPM_PID" 2>/dev/null
	) >/dev/null 2>&1 </dev/null &
	VM_WATCHDOG_PID=$!
	trap 'exit 143' TERM
	trap 'exit 130' INT
	trap 'exit 129' HUP
	vm_wait_socket "$VM_QMP_SOCK" "$VM_QEMU_PID" ||
		{ echo "vm_start: QEMU did not start:" >&2; cat "$work/qemu.log" >&2; vm_stop; return 1; }
	if [ -n "${VM_CHANNEL:-}" ]; then
		# The host side of the channel: every line the guest writes, kept.
		python3 - "$work/channel.sock" "$VM_CHANNEL_LOG" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(100):
    try:
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(1)
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out.write(b)
EOF
		VM_CHANNEL_PID=$!
	fi
	return 0
}

# vm_console_tail prints the end of the console log (for failures).
vm_console_tail() {
	echo "--- console ($VM_CONSOLE), last 60 lines:" >&2
	tail -n 60 "$VM_CONSOLE" >&2
	if [ -s "$VM_WORK/qemu.log" ]; then
		echo "--- qemu:" >&2
		cat "$VM_WORK/qemu.log" >&2
	fi
	echo "---" >&2
}

vm_wait_agent() {
	local timeout="$1" deadline now
	deadline=$(($(date +%s) + timeout))
	while :; do
		if ! kill -0 "$VM_QEMU_PID" 2>/dev/null; then
			echo "vm_wait_agent: QEMU ended before the agent started" >&2
			vm_console_tail
			return 1
		fi
		if tail -c +"$((VM_MARK + 1))" "$VM_CONSOLE" | grep -q 'daemon=cvm-agentd level=info event=start '; then
			break
		fi
		now="$(date +%s)"
		if [ "$now" -ge "$deadline" ]; then
			echo "vm_wait_agent: cvm-agentd did not start within $timeout s" >&2
			vm_console_tail
			return 1
		fi
		sleep 0.5
	done
	VM_BOOT_SECONDS="$(python3 -c "import time,sys; print('%.1f' % (time.time() - float(sys.argv[1])))" "$VM_T0")"
	if ! vm_exec -t 30 true >/dev/null; then
		echo "vm_wait_agent: the agent started but the command channel does not answer" >&2
		vm_console_tail
		return 1
	fi
	return 0
}

vm_exec() {
	local t=60
	if [ "$1" = "-t" ]; then
		t="$2"
		shift 2
	fi
	python3 "$VM_DIR_COMMON/vm_cmd.py" "$VM_CMD_SOCK" "$t" "$*"
}

# vm_qmp COMMAND sends one QMP command and prints its answer.
vm_qmp() {
	python3 - "$VM_QMP_SOCK" "$1" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rwb")
json.loads(f.readline())  # greeting
for cmd in ("qmp_capabilities", sys.argv[2]):
    f.write(json.dumps({"execute": cmd}).encode() + b"\n")
    f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            break
    if "error" in m:
        print(m["error"], file=sys.stderr)
        sys.exit(1)
print(json.dumps(m))
EOF
}

vm_reboot() {
	VM_MARK="$(stat -c %s "$VM_CONSOLE")"
	VM_T0="$(date +%s.%N)"
	vm_qmp system_reset >/dev/null || { echo "vm_reboot: system_reset failed" >&2; return 1; }
}

vm_stop() {
	local i p
	for p in "$VM_QEMU_PID" "$VM_SWTPM_PID" "$VM_CHANNEL_PID"; do
		[ -n "$p" ] || continue
		if kill -0 "$p" 2>/dev/null; then
			kill "$p" 2>/dev/null || true
			for i in $(seq 1 50); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
			kill -9 "$p" 2>/dev/null || true
		fi
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$VM_WATCHDOG_PID" ]; then
		kill "$VM_WATCHDOG_PID" 2>/dev/null || true
		wait "$VM_WATCHDOG_PID" 2>/dev/null || true
	fi
	VM_QEMU_PID=""
	VM_SWTPM_PID=""
	VM_CHANNEL_PID=""
	VM_WATCHDOG_PID=""
}
