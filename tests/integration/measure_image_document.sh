#!/usr/bin/env bash
# cvm measure --image DIR checks the image's measurement.tdx.cbor against
# its files. The document is made here, independently of cvmkit: MRTD in
# both page orders by python3 over the TDVF metadata of Debian's OVMF.fd, the
# kernel's Authenticode digest by osslsigncode on the kernel patched here as
# QEMU patches it for high memory, the command line (+ " initrd=initrd") and
# initrd digests by hashlib, the TD HOB witness of dstack's vector, all
# CBOR-encoded by hand. Then:
#  - every field matches the files (exit 0);
#  - an initrd changed by one byte: initrd_sha384 differs, exit 3.
# Fails (does not skip) when osslsigncode, OVMF or the guest kernel is missing.
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
[ -n "$KERNEL" ] || fail "no guest kernel in /var/cache/cvmkit/guest-kernel/current/boot (docs/vm.md)"

work="$(mktemp -d)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
img="$work/img"
mkdir "$img"
cp "$OVMF" "$img/ovmf.fd"
cp "$KERNEL" "$img/bzImage"
head -c 777777 /dev/urandom >"$img/initramfs.cpio.gz"
CMDLINE="console=ttyS0 init=/init dstack.rootfs_hash=00 dstack.rootfs_size=1"
printf '{"bios":"ovmf.fd","kernel":"bzImage","initrd":"initramfs.cpio.gz","cmdline":"%s"}' "$CMDLINE" \
	>"$img/metadata.json"
printf '{"cpu_count":2,"memory_size":4294967296,"qemu_version":"8.2.2"}' >"$work/vmc.json"

# the kernel as QEMU patches it at high memory, then osslsigncode's digest
python3 - "$img/bzImage" "$work/patched" "$(stat -c %s "$img/initramfs.cpio.gz")" <<'PY'
import struct, sys
k = bytearray(open(sys.argv[1], 'rb').read())
initrd = int(sys.argv[3])
real, cmd = (0x10000, 0x20000) if k[0x211] & 1 else (0x90000, 0x9a000)
k[0x210] = 0xb0
k[0x211] |= 0x80
struct.pack_into('<H', k, 0x224, cmd - real - 0x200)
struct.pack_into('<I', k, 0x228, cmd)
xlf = struct.unpack_from('<H', k, 0x236)[0]
imax = 0xffffffff if xlf & 0x40 else struct.unpack_from('<I', k, 0x22c)[0]
if imax >= 0x80000000 - 0x28000:
    imax = 0x80000000 - 0x28000 - 1
struct.pack_into('<I', k, 0x218, (imax - initrd) & ~4095)
struct.pack_into('<I', k, 0x21c, initrd)
open(sys.argv[2], 'wb').write(k)
PY
# shellcheck source=tests/common/authenticode.sh
. "$(dirname "$0")/../common/authenticode.sh"
ossl_init "$work"
KHASH="$(ossl_digest "$work/patched")"
[ ${#KHASH} -eq 96 ] || fail "osslsigncode gave no SHA-384 digest for the patched kernel"

python3 - "$img" "$CMDLINE" "$KHASH" <<'PY'
import hashlib, struct, sys
img, cmdline, khash = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
fw = open(img + "/ovmf.fd", "rb").read()
# TDVF metadata: the GUID table entry e47a6535-... holds its offset from the end
meta = len(fw) - 0x840
assert fw[meta:meta + 4] == b"TDVF", "Debian's OVMF.fd changed layout"
n = struct.unpack_from("<I", fw, meta + 12)[0]
secs = [struct.unpack_from("<IIQQII", fw, meta + 16 + 32 * i) for i in range(n)]
def mrtd(two):
    h = hashlib.sha384()
    for off, raw, gpa, size, typ, attr in secs:
        pages = size // 4096
        def add(p):
            if not attr & 2:
                b = bytearray(128); b[:12] = b"MEM.PAGE.ADD"; struct.pack_into("<Q", b, 16, gpa + p * 4096); h.update(b)
        def ext(p):
            if attr & 1:
                for c in range(16):
                    b = bytearray(128); b[:9] = b"MR.EXTEND"; struct.pack_into("<Q", b, 16, gpa + p * 4096 + c * 256)
                    h.update(b); o = off + p * 4096 + c * 256; h.update(fw[o:o + 256])
        if two:
            for p in range(pages): add(p)
            for p in range(pages): ext(p)
        else:
            for p in range(pages): add(p); ext(p)
    return h.digest()
def tstr(s):
    b = s.encode(); assert len(b) < 24; return bytes([0x60 | len(b)]) + b
def bstr(b):
    return (bytes([0x40 | len(b)]) if len(b) < 24 else bytes([0x58, len(b)])) + b
cl = hashlib.sha384((cmdline + " initrd=initrd").encode("utf-16-le") + b"\0\0").digest()
ird = hashlib.sha384(open(img + "/initramfs.cpio.gz", "rb").read()).digest()
doc = bytes([0xa3]) + tstr("version") + bytes([0x03])
doc += tstr("image") + bytes([0xa3]) + tstr("cmdline_sha384") + bstr(cl) + tstr("kernel_authenticode") + bstr(khash) + tstr("initrd_sha384") + bstr(ird)
doc += tstr("tdvf") + bytes([0xa3]) + tstr("ovmf") + tstr("pre202505")
doc += tstr("mrtd") + bytes([0xa2]) + tstr("single_pass") + bstr(mrtd(False)) + tstr("two_pass") + bstr(mrtd(True))
doc += tstr("td_hob") + bstr(bytes.fromhex("80100904000609020b021010"))
open(img + "/measurement.tdx.cbor", "wb").write(doc)
PY

set +e
"$CVM" measure --image "$img" --vm-config "$work/vmc.json" >"$work/out" 2>&1
rc=$?
set -e
cat "$work/out"
[ "$rc" -eq 0 ] || fail "the image's own document does not match its files (exit $rc)"
[ "$(grep -c 'matches the files' "$work/out")" -eq 6 ] || fail "not all six document fields match"
echo "ok: measurement.tdx.cbor made independently matches the image's files"

printf 'x' | dd of="$img/initramfs.cpio.gz" bs=1 seek=1000 conv=notrunc status=none
set +e
"$CVM" measure --image "$img" --vm-config "$work/vmc.json" >"$work/out" 2>&1
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "a changed initrd: exit $rc, not 3"
grep -q 'initrd_sha384 DIFFERS' "$work/out" || fail "a changed initrd is not named"
grep -q 'kernel_authenticode matches' "$work/out" || fail "the kernel should still match (same initrd size)"
echo "ok: a changed initrd is named, exit 3"
echo "PASS"
