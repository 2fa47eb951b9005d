/* The probe initrd: a cpio "newc" archive in a gzip of stored deflate
 * blocks, written here so that it is byte-for-byte reproducible and needs
 * no cpio or gzip tool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/qemu.h>

#include "qemu_int.h"

#define INPUT_MAX ((size_t)64 << 20)
#define ARCHIVE_MAX ((size_t)256 << 20)
#define STORED_MAX 65535u

/* /init: print each fw_cfg file between the markers of include/cvmkit/qemu.h,
 * then power off. Reading the files is what the guest may do at any time:
 * QEMU fixed their content when the firmware first read them. */
static const char init_script[] =
    "#!/bin/busybox sh\n"
    "# cvmkit ACPI probe (cvm measure acpi-probe): prints QEMU's ACPI fw_cfg files.\n"
    "b=/bin/busybox\n"
    "$b mkdir -p /proc /sys /dev\n"
    "$b mount -t proc proc /proc\n"
    "$b mount -t sysfs sysfs /sys\n"
    "[ -d /sys/firmware/qemu_fw_cfg ] || { [ -f /qemu_fw_cfg.ko ] && $b insmod /qemu_fw_cfg.ko; }\n"
    "for f in etc/table-loader etc/acpi/rsdp etc/acpi/tables; do\n"
    "  p=/sys/firmware/qemu_fw_cfg/by_name/$f/raw\n"
    "  if [ -r $p ]; then\n"
    "    echo \"CVM-ACPI-BEGIN $f\"\n"
    "    $b base64 < $p\n"
    "    n=$($b wc -c < $p)\n"
    "    s=$($b sha256sum < $p)\n"
    "    echo \"CVM-ACPI-END $f $((n)) ${s%% *}\"\n"
    "  else\n"
    "    echo \"CVM-ACPI-MISSING $f\"\n"
    "  fi\n"
    "done\n"
    "echo CVM-ACPI-DONE\n"
    "$b poweroff -f\n";

static void cpio_entry(struct cvm_wr *w, uint32_t ino, const char *name, uint32_t mode, uint32_t rdev_major,
                       uint32_t rdev_minor, const uint8_t *data, size_t len)
{
	size_t name_len = strlen(name) + 1;

	/* magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	 * devminor, rdevmajor, rdevminor, namesize, check */
	cvm_wr_fmt(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode, 0u, 0u,
	           (mode & 0170000u) == 0040000u ? 2u : 1u, 0u, (unsigned)len, 0u, 0u, rdev_major, rdev_minor,
	           (unsigned)name_len, 0u);
	cvm_wr_bytes(w, name, name_len);
	cvm_wr_zeros(w, (4 - (110 + name_len) % 4) % 4);
	if (len != 0) {
		cvm_wr_bytes(w, data, len);
		cvm_wr_zeros(w, (4 - len % 4) % 4);
	}
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t table[256];
	uint32_t c = 0xffffffffu;

	for (uint32_t i = 0; i < 256; i++) {
		uint32_t v = i;

		for (int k = 0; k < 8; k++)
			v = (v & 1u) != 0 ? 0xedb88320u ^ (v >> 1) : v >> 1;
		table[i] = v;
	}
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* gzip_stored wraps `len` bytes in a gzip member of stored deflate blocks
 * (RFC 1951 BTYPE 00, RFC 1952 header without name or time). */
static void gzip_stored(struct cvm_wr *w, const uint8_t *p, size_t len)
{
	static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
	size_t off = 0;

	cvm_wr_bytes(w, header, sizeof(header));
	do {
		size_t n = len - off > STORED_MAX ? STORED_MAX : len - off;
		bool last = off + n == len;

		cvm_wr_u8(w, last ? 1 : 0);
		cvm_wr_u16le(w, (uint16_t)n);
		cvm_wr_u16le(w, (uint16_t)~n);
		cvm_wr_bytes(w, p + off, n);
		off += n;
	} while (off < len);
	cvm_wr_u32le(w, crc32_ieee(p, len));
	cvm_wr_u32le(w, (uint32_t)len);
}

int cvm_qemu_probe_initrd_write(const char *busybox_path, const char *fw_cfg_module_path,
                                const char *out_path)
{
	uint8_t *busybox = NULL, *module = NULL, *cpio = NULL, *gz = NULL;
	size_t busybox_len = 0, module_len = 0, cpio_len = 0, gz_len = 0;
	struct cvm_wr w;
	int r;

	if (busybox_path == NULL || out_path == NULL)
		return CVM_E_INVAL;
	r = cvm_file_read(busybox_path, INPUT_MAX, &busybox, &busybox_len);
	if (r != CVM_OK)
		goto out;
	if (busybox_len < 4 || memcmp(busybox, "\177ELF", 4) != 0) {
		r = CVM_E_INVAL;
		goto out;
	}
	if (fw_cfg_module_path != NULL) {
		r = cvm_file_read(fw_cfg_module_path, INPUT_MAX, &module, &module_len);
		if (r != CVM_OK)
			goto out;
		/* busybox insmod loads an ELF module, not a compressed one. */
		if (module_len < 4 || memcmp(module, "\177ELF", 4) != 0) {
			r = CVM_E_INVAL;
			goto out;
		}
	}
	cvm_wr_init(&w, ARCHIVE_MAX);
	cpio_entry(&w, 1, "bin", 0040755u, 0, 0, NULL, 0);
	cpio_entry(&w, 2, "bin/busybox", 0100755u, 0, 0, busybox, busybox_len);
	cpio_entry(&w, 3, "dev", 0040755u, 0, 0, NULL, 0);
	cpio_entry(&w, 4, "dev/console", 0020600u, 5, 1, NULL, 0);
	cpio_entry(&w, 5, "init", 0100755u, 0, 0, (const uint8_t *)init_script, sizeof(init_script) - 1);
	if (module != NULL)
		cpio_entry(&w, 6, "qemu_fw_cfg.ko", 0100644u, 0, 0, module, module_len);
	cpio_entry(&w, 0, "TRAILER!!!", 0, 0, 0, NULL, 0);
	r = cvm_wr_finish(&w, &cpio, &cpio_len);
	if (r != CVM_OK)
		goto out;
	cvm_wr_init(&w, ARCHIVE_MAX);
	gzip_stored(&w, cpio, cpio_len);
	r = cvm_wr_finish(&w, &gz, &gz_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_file_write(out_path, gz, gz_len, 0644);
out:
	free(busybox);
	free(module);
	free(cpio);
	free(gz);
	return r;
}
