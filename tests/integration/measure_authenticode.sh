#!/usr/bin/env bash
# cvm measure's Authenticode SHA-384 (lib/measure) against an independent
# implementation, osslsigncode (Debian package osslsigncode), on the real
# Debian guest kernel (/var/cache/cvmkit/guest-kernel/current/boot/vmlinuz-*):
#  - the signed kernel as it is (cvm measure authenticode vs osslsigncode
#    extract-data -h sha384, whose SpcIndirectDataContent carries the digest);
#  - the same kernel with its signature removed (osslsigncode remove-signature);
#  - the kernel as QEMU patches it (the setup-header fields written here in
#    python3 from QEMU's x86_load_linux rules, independently of cvmkit) for a
#    2 GiB VM and a 1 MiB initrd: osslsigncode's digest of that file equals
#    RTMR1's first event in cvm measure --json; and at 1 GiB it differs.
# Fails (does not skip) when osslsigncode, the kernel or OVMF is missing.
# Needs: $CVM_BIN/cvm, python3, osslsigncode, Debian's ovmf and guest kernel.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
OVMF=/usr/share/ovmf/OVMF.fd
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
[ -x "$CVM" ] || fail "$CVM is missing or not executable (set CVM_BIN)"
command -v osslsigncode >/dev/null || fail "osslsigncode is missing: install it (scripts/setup.sh)"
command -v python3 >/dev/null || fail "python3 is missing (scripts/setup.sh)"
[ -f "$OVMF" ] || fail "$OVMF is missing: install Debian's ovmf package (scripts/setup.sh)"
KERNEL="$(ls /var/cache/cvmkit/guest-kernel/current/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)"
[ -n "$KERNEL" ] || fail "no guest kernel in /var/cache/cvmkit/guest-kernel/current/boot (cvm image build fetches it; docs/vm.md)"

work="$(mktemp -d)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=tests/common/authenticode.sh
. "$(dirname "$0")/../common/authenticode.sh"
ossl_init "$work"
cvm_digest() { "$CVM" measure authenticode "$1" | cut -d' ' -f1; }

a="$(ossl_digest "$KERNEL")"
b="$(cvm_digest "$KERNEL")"
[ "$a" = "$b" ] || fail "signed kernel: osslsigncode $a, cvm $b"
echo "ok: signed kernel: $b"

osslsigncode remove-signature -in "$KERNEL" -out "$work/unsigned" >/dev/null
a="$(ossl_digest "$work/unsigned")"
b="$(cvm_digest "$work/unsigned")"
[ "$a" = "$b" ] || fail "unsigned kernel: osslsigncode $a, cvm $b"
echo "ok: unsigned kernel: $b"

# QEMU's patch for 2 GiB and a 1 MiB initrd, written here from QEMU's rules.
head -c 1048576 /dev/zero >"$work/initrd"
python3 - "$KERNEL" "$work/patched" 2147483648 1048576 <<'PY'
import struct, sys
k = bytearray(open(sys.argv[1], 'rb').read())
mem, initrd = int(sys.argv[3]), int(sys.argv[4])
proto = struct.unpack_from('<H', k, 0x206)[0]
assert proto >= 0x20c, "the test expects a modern boot protocol"
real, cmd = (0x10000, 0x20000) if k[0x211] & 1 else (0x90000, 0x9a000)
k[0x210] = 0xb0
k[0x211] |= 0x80
struct.pack_into('<H', k, 0x224, cmd - real - 0x200)
struct.pack_into('<I', k, 0x228, cmd)
xlf = struct.unpack_from('<H', k, 0x236)[0]
imax = 0xffffffff if xlf & 0x40 else struct.unpack_from('<I', k, 0x22c)[0]
below4g = 0x80000000 if mem >= 0xb0000000 else mem
if imax >= below4g - 0x28000:
    imax = below4g - 0x28000 - 1
struct.pack_into('<I', k, 0x218, (imax - initrd) & ~4095)
struct.pack_into('<I', k, 0x21c, initrd)
open(sys.argv[2], 'wb').write(k)
PY
a="$(ossl_digest "$work/patched")"
"$CVM" measure --firmware "$OVMF" --kernel "$KERNEL" --initrd "$work/initrd" --cmdline "console=ttyS0" \
	--memory 2G --json >"$work/m2g.json"
b="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"]["rtmr1"][0]["digest"])' "$work/m2g.json")"
[ "$a" = "$b" ] || fail "QEMU-patched kernel (2 GiB): osslsigncode $a, cvm measure $b"
echo "ok: QEMU-patched kernel at 2 GiB: $b"
"$CVM" measure --firmware "$OVMF" --kernel "$KERNEL" --initrd "$work/initrd" --cmdline "console=ttyS0" \
	--memory 1G --json >"$work/m1g.json"
c="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"]["rtmr1"][0]["digest"])' "$work/m1g.json")"
[ "$c" != "$b" ] || fail "the patched kernel's digest does not depend on the memory size"
echo "ok: at 1 GiB the patched kernel differs: $c"
echo "PASS"
