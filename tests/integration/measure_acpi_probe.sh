#!/usr/bin/env bash
# cvm measure acpi-probe and probe-initrd (lib/qemu), with QEMU TCG, Debian's
# OVMF.fd and guest kernel:
#  - probe-initrd is reproducible (two runs, same bytes);
#  - a q35 command line (OVMF.fd, -smp 2, -m 2G, virtio-net): two probes give
#    the same three blobs; -smp 4 changes each of them; a probe initrd 8 MiB
#    larger gives the same blobs; SeaBIOS gives another tables.bin than
#    OVMF; the printed digests are sha384sum's; with
#    --cache the second run reads the cache (from_cache) and gives the same;
#  - END TO END, the probe against the real boot: a command line with what the
#    probe rewrites (host port forward, a writable data disk, console and
#    command channel chardevs, a QMP socket, a swtpm vTPM) is probed; then
#    the REAL command line boots, unchanged, with its own swtpm, the guest
#    kernel, another -append and an initrd this script builds with cpio and
#    gzip, which dumps the fw_cfg files and the TPM event log: the guest of
#    the real VM sees the same three blobs as the probe; the probe left the
#    data disk unchanged and created none of the VM's sockets; its command
#    line (-v) has no hostfwd. If OVMF logged EV_PLATFORM_CONFIG_FLAGS events
#    in the TPM log, their SHA-256 digests must be the blobs'; Debian 12's
#    OVMF (edk2 2022.11) logs none without TDX, which is printed;
#  - a probe that times out fails (exit 1) with the serial log's tail; a
#    -nodefaults command line without a serial port is refused (exit 1).
# Fails (does not skip) when QEMU, swtpm, OVMF, busybox or the guest kernel is
# missing. Needs: $CVM_BIN/cvm, qemu-system-x86_64, swtpm, cpio, gzip, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
OVMF=/usr/share/ovmf/OVMF.fd
KDIR=/var/cache/cvmkit/guest-kernel/current
HERE="$(cd "$(dirname "$0")" && pwd)"
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
[ -x "$CVM" ] || fail "$CVM is missing or not executable (set CVM_BIN)"
for t in qemu-system-x86_64:qemu-system-x86 swtpm:swtpm cpio:cpio gzip:gzip python3:python3 sha384sum:coreutils; do
	command -v "${t%%:*}" >/dev/null || fail "${t%%:*} is missing (Debian package ${t#*:}; scripts/setup.sh)"
done
[ -f "$OVMF" ] || fail "$OVMF is missing: install Debian's ovmf package (scripts/setup.sh)"
[ -x /bin/busybox ] || fail "/bin/busybox is missing (Debian package busybox-static)"
KERNEL="$(ls "$KDIR"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)"
[ -n "$KERNEL" ] || fail "no guest kernel in $KDIR/boot (docs/vm.md)"
MODULE="$(ls "$KDIR"/lib/modules/*/kernel/drivers/firmware/qemu_fw_cfg.ko 2>/dev/null | head -n 1 || true)"
[ -n "$MODULE" ] || fail "no qemu_fw_cfg.ko in $KDIR (docs/vm.md)"

W="$(mktemp -d)"
SWTPM_PID=""
QEMU_PID=""
cleanup() {
	for p in "$QEMU_PID" "$SWTPM_PID"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$W"
}
trap cleanup EXIT

same3() { # same3 DIR1 DIR2: the three blobs are equal
	for f in table-loader.bin rsdp.bin tables.bin; do
		cmp -s "$1/$f" "$2/$f" || return 1
	done
}

probe() { # probe OUTDIR [cvm options] -- QEMU_ARGS...
	local out="$1"
	shift
	"$CVM" measure acpi-probe --out "$out" "$@" >"$out.txt" 2>"$out.err" ||
		fail "the probe into $out failed: $(cat "$out.err")"
}

echo "== probe-initrd is reproducible"
"$CVM" measure probe-initrd "$W/probe.gz" -q
"$CVM" measure probe-initrd "$W/probe2.gz" -q
cmp -s "$W/probe.gz" "$W/probe2.gz" || fail "two probe initrds differ"

BASE=(-machine q35,accel=tcg -m 2G -nographic -nodefaults -serial stdio -bios "$OVMF"
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0)

echo "== deterministic, sensitive to -smp, not to the initrd's size"
probe "$W/a1" --probe-initrd "$W/probe.gz" -- "${BASE[@]}" -smp 2
probe "$W/a2" --probe-initrd "$W/probe.gz" -- "${BASE[@]}" -smp 2
same3 "$W/a1" "$W/a2" || fail "two probes of the same command line differ"
[ "$(stat -c %s "$W/a1/rsdp.bin")" -ge 20 ] || fail "rsdp.bin is too short"
head -c 8 "$W/a1/rsdp.bin" | grep -q 'RSD PTR ' || fail "rsdp.bin does not start with 'RSD PTR '"
grep -q 'etc/acpi/tables' "$W/a1/table-loader.bin" || fail "table-loader.bin names no etc/acpi/tables"
for f in table-loader rsdp tables; do
	d="$(sha384sum "$W/a1/$f.bin" | cut -d' ' -f1)"
	grep -q "^$f.bin .* sha384 $d\$" "$W/a1.txt" || fail "the printed digest of $f.bin is not sha384sum's ($d)"
done
grep -q -- "^--acpi-files $W/a1/table-loader.bin,$W/a1/rsdp.bin,$W/a1/tables.bin\$" "$W/a1.txt" ||
	fail "no --acpi-files line: $(cat "$W/a1.txt")"
probe "$W/a4" --probe-initrd "$W/probe.gz" -- "${BASE[@]}" -smp 4
for f in table-loader rsdp tables; do
	cmp -s "$W/a1/$f.bin" "$W/a4/$f.bin" && fail "$f.bin is the same with -smp 4 as with -smp 2"
done
# SeaBIOS (QEMU's default firmware) enumerates PCI otherwise: other tables.
probe "$W/as" --probe-initrd "$W/probe.gz" -- -machine q35,accel=tcg -m 2G -nographic -nodefaults -serial stdio \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 -smp 2
cmp -s "$W/a1/tables.bin" "$W/as/tables.bin" && fail "tables.bin is the same under SeaBIOS as under OVMF"
mkdir -p "$W/pad"
head -c $((8 << 20)) /dev/urandom >"$W/pad/padding"
(cd "$W/pad" && echo padding | cpio -o -H newc --quiet | gzip -1 >"$W/pad.gz")
cat "$W/probe.gz" "$W/pad.gz" >"$W/big.gz"
probe "$W/ab" --probe-initrd "$W/big.gz" -- "${BASE[@]}" -smp 2
same3 "$W/a1" "$W/ab" || fail "a larger initrd changed the blobs"

echo "== cache"
probe "$W/c1" --json --cache "$W/cache" --probe-initrd "$W/probe.gz" -- "${BASE[@]}" -smp 2
probe "$W/c2" --json --cache "$W/cache" --probe-initrd "$W/probe.gz" -- "${BASE[@]}" -smp 2
python3 - "$W/c1.txt" "$W/c2.txt" <<'EOF' || fail "cache: see above"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["from_cache"] is False and b["from_cache"] is True, (a["from_cache"], b["from_cache"])
assert a["cache_key"] == b["cache_key"] and len(a["cache_key"]) == 64
assert a["acpi_digests"] == b["acpi_digests"]
EOF
same3 "$W/a1" "$W/c2" || fail "the cached blobs differ from a probe's"
[ -d "$W/cache/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cache_key"])' "$W/c1.txt")" ] ||
	fail "no cache entry named by the key"

echo "== end to end: the probe against the real boot"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
dd if=/dev/zero of="$W/data.img" bs=1M count=16 status=none
printf 'the data disk\n' | dd of="$W/data.img" conv=notrunc status=none
data_sha="$(sha256sum "$W/data.img" | cut -d' ' -f1)"
mkdir -p "$W/tpm"
VM=(-machine q35,accel=tcg -m 2G -smp 2 -nographic -nodefaults -bios "$OVMF"
	-chardev "file,id=con,path=$W/real-console.log" -serial chardev:con
	-chardev "socket,id=cmd,path=$W/cmd.sock,server=on,wait=off" -serial chardev:cmd
	-qmp "unix:$W/qmp.sock,server=on,wait=off"
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:80" -device virtio-net-pci,netdev=n0
	-drive "file=$W/data.img,format=raw,if=virtio"
	-chardev "socket,id=chrtpm,path=$W/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm
	-device tpm-crb,tpmdev=tpm0)
probe "$W/p" -v --probe-initrd "$W/probe.gz" -- "${VM[@]}"
# The TPM, the second serial port and the disk are in the tables: a probe
# that dropped them would give the plain command line's blobs.
cmp -s "$W/a1/tables.bin" "$W/p/tables.bin" && fail "the VM's devices did not change tables.bin"
grep -q 'probe command line' "$W/p.err" || fail "-v printed no probe command line"
grep -q hostfwd "$W/p.err" && fail "the probe's command line keeps a host port forward: $(cat "$W/p.err")"
[ "$(sha256sum "$W/data.img" | cut -d' ' -f1)" = "$data_sha" ] || fail "the probe changed the data disk"
for s in cmd.sock qmp.sock real-console.log; do
	[ -e "$W/$s" ] && fail "the probe created the VM's $s"
done

# The real VM's initrd, built here with cpio and gzip (not by cvm).
mkdir -p "$W/real/bin"
cp /bin/busybox "$W/real/bin/busybox"
cp "$MODULE" "$W/real/fw.ko"
cat >"$W/real/init" <<'EOF'
#!/bin/busybox sh
b=/bin/busybox
$b mkdir -p /proc /sys
$b mount -t proc proc /proc
$b mount -t sysfs sysfs /sys
$b mount -t securityfs securityfs /sys/kernel/security
$b insmod /fw.ko
for f in etc/table-loader etc/acpi/rsdp etc/acpi/tables; do
  echo "REAL-BEGIN $f"
  $b base64 < /sys/firmware/qemu_fw_cfg/by_name/$f/raw
  echo "REAL-END $f"
done
echo "REAL-BEGIN eventlog"
$b base64 < /sys/kernel/security/tpm0/binary_bios_measurements
echo "REAL-END eventlog"
$b poweroff -f
EOF
chmod 755 "$W/real/init"
(cd "$W/real" && find . | cpio -o -H newc --quiet | gzip -n >"$W/real.gz")
swtpm socket --tpm2 --tpmstate "dir=$W/tpm" --ctrl "type=unixio,path=$W/swtpm.sock" \
	--log "file=$W/swtpm.log" >/dev/null 2>&1 &
SWTPM_PID=$!
for _ in $(seq 1 100); do
	[ -S "$W/swtpm.sock" ] && break
	sleep 0.1
done
[ -S "$W/swtpm.sock" ] || fail "swtpm did not start: $(cat "$W/swtpm.log")"
timeout 300 qemu-system-x86_64 "${VM[@]}" -kernel "$KERNEL" -initrd "$W/real.gz" \
	-append "console=ttyS0 root=/dev/vda something=else" -no-reboot >"$W/real-qemu.log" 2>&1 </dev/null &
QEMU_PID=$!
wait "$QEMU_PID" || fail "the real boot failed: $(cat "$W/real-qemu.log"; tail -20 "$W/real-console.log")"
QEMU_PID=""
mkdir -p "$W/r"
for f in etc/table-loader:table-loader etc/acpi/rsdp:rsdp etc/acpi/tables:tables eventlog:eventlog; do
	tr -d '\r' <"$W/real-console.log" |
		awk -v b="REAL-BEGIN ${f%%:*}" -v e="REAL-END ${f%%:*}" '$0 == e { p = 0 } p { print } $0 == b { p = 1 }' |
		base64 -d >"$W/r/${f#*:}.bin" || fail "cannot decode ${f%%:*} from the real boot's console"
	[ -s "$W/r/${f#*:}.bin" ] || fail "the real boot printed no ${f%%:*}: $(tail -20 "$W/real-console.log")"
done
same3 "$W/p" "$W/r" || fail "the real VM's guest sees other ACPI blobs than the probe"
echo "the real VM's fw_cfg ACPI blobs equal the probe's"
python3 "$HERE/measure_acpi_evlog.py" "$W/r/eventlog.bin" "$W/p" || fail "the TPM event log disagrees with the probe"

echo "== failures"
if "$CVM" measure acpi-probe --timeout 1 --work "$W/tw" --probe-initrd "$W/probe.gz" --out "$W/t" -- "${BASE[@]}" -smp 2 \
	>/dev/null 2>"$W/t.err"; then
	fail "a probe with a 1 s timeout succeeded"
fi
grep -q 'did not end within 1 s' "$W/t.err" || fail "timeout message: $(cat "$W/t.err")"
grep -q 'serial log' "$W/t.err" || fail "no serial log tail on a timeout: $(cat "$W/t.err")"
set +e
"$CVM" measure acpi-probe --work "$W/nw" --probe-initrd "$W/probe.gz" --out "$W/n" -- -machine q35 -nodefaults >/dev/null 2>"$W/n.err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a command line without a serial port: exit $rc, not 1"
grep -q 'no serial port' "$W/n.err" || fail "no-serial message: $(cat "$W/n.err")"
echo "PASS"
