/* The kernel side of the measurement (measure.h): the PE/COFF Authenticode
 * digest OVMF extends into RTMR1, QEMU's setup-header patch that comes
 * before it, the command-line digest of RTMR2 and the empty Secure Boot
 * variables of RTMR0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/measure.h>

#include "core/core_lib.h"
#include "measure_int.h"

#define PE_SECTIONS_MAX 96u /* the PE/COFF limit */
#define DIR_SECURITY 4u     /* IMAGE_DIRECTORY_ENTRY_SECURITY */

struct pe_span {
	uint32_t off, len;
};

static bool rd_u16_at(const uint8_t *p, size_t len, uint64_t off, uint16_t *v)
{
	struct cvm_rd r;

	return measure_view(p, len, off, 2, &r) && cvm_rd_u16le(&r, v);
}

static bool rd_u32_at(const uint8_t *p, size_t len, uint64_t off, uint32_t *v)
{
	struct cvm_rd r;

	return measure_view(p, len, off, 4, &r) && cvm_rd_u32le(&r, v);
}

/* hash_span adds [off, off + n) of the image. */
static int hash_span(struct cvm_digest_ctx *h, const uint8_t *pe, size_t len, uint64_t off, uint64_t n)
{
	struct cvm_rd r;

	if (!measure_view(pe, len, off, n, &r))
		return CVM_E_FORMAT;
	return cvm_digest_update(h, r.p, r.len);
}

int cvm_pe_authenticode_sha384(const uint8_t *pe, size_t len, uint8_t out[48])
{
	struct pe_span secs[PE_SECTIONS_MAX];
	struct cvm_digest_ctx *h = NULL;
	uint32_t lfanew, sig, headers, rva_count, cert_size = 0, cert_addr = 0;
	uint16_t nsec, opt_size, magic;
	uint64_t opt, dirs, checksum, cert_dir = 0, table, sum;
	size_t n = 0;
	int r;

	memset(out, 0, 48);
	if (len > CVM_MEASURE_KERNEL_MAX)
		return CVM_E_TOO_LARGE;
	if (!rd_u32_at(pe, len, 0x3c, &lfanew) || !rd_u32_at(pe, len, lfanew, &sig) || sig != 0x00004550 ||
	    !rd_u16_at(pe, len, (uint64_t)lfanew + 6, &nsec) ||
	    !rd_u16_at(pe, len, (uint64_t)lfanew + 20, &opt_size))
		return CVM_E_FORMAT;
	opt = (uint64_t)lfanew + 24;
	if (!rd_u16_at(pe, len, opt, &magic) || (magic != 0x10b && magic != 0x20b))
		return CVM_E_FORMAT;
	dirs = opt + (magic == 0x20b ? 112 : 96);
	if (!rd_u32_at(pe, len, opt + 60, &headers) || !rd_u32_at(pe, len, dirs - 4, &rva_count) ||
	    dirs - opt > opt_size)
		return CVM_E_FORMAT;
	checksum = opt + 64;
	if (rva_count > DIR_SECURITY) {
		cert_dir = dirs + (uint64_t)8 * DIR_SECURITY;
		if (cert_dir + 8 > opt + opt_size || !rd_u32_at(pe, len, cert_dir, &cert_addr) ||
		    !rd_u32_at(pe, len, cert_dir + 4, &cert_size))
			return CVM_E_FORMAT;
	}
	table = opt + opt_size;
	if (nsec > PE_SECTIONS_MAX || headers > len ||
	    headers < (cert_dir != 0 ? cert_dir + 8 : checksum + 4) || table + (uint64_t)40 * nsec > len)
		return CVM_E_FORMAT;
	for (uint16_t i = 0; i < nsec; i++) {
		uint32_t size, ptr;

		if (!rd_u32_at(pe, len, table + (uint64_t)40 * i + 16, &size) ||
		    !rd_u32_at(pe, len, table + (uint64_t)40 * i + 20, &ptr))
			return CVM_E_FORMAT;
		if (size == 0)
			continue;
		if ((uint64_t)ptr + size > len)
			return CVM_E_FORMAT; /* a section past the end of the file */
		/* insertion by file offset */
		size_t j = n++;
		while (j > 0 && secs[j - 1].off > ptr) {
			secs[j] = secs[j - 1];
			j--;
		}
		secs[j] = (struct pe_span){ptr, size};
	}
	if (cert_size != 0 && ((uint64_t)cert_addr + cert_size > len || cert_addr < headers))
		return CVM_E_FORMAT;

	r = cvm_digest_ctx_new(CVM_DIGEST_SHA384, &h);
	if (r != CVM_OK)
		return r;
	r = hash_span(h, pe, len, 0, checksum);
	if (r == CVM_OK && cert_dir != 0) {
		r = hash_span(h, pe, len, checksum + 4, cert_dir - (checksum + 4));
		if (r == CVM_OK)
			r = hash_span(h, pe, len, cert_dir + 8, headers - (cert_dir + 8));
	} else if (r == CVM_OK) {
		r = hash_span(h, pe, len, checksum + 4, headers - (checksum + 4));
	}
	sum = headers;
	for (size_t i = 0; i < n && r == CVM_OK; i++) {
		r = hash_span(h, pe, len, secs[i].off, secs[i].len);
		sum += secs[i].len;
	}
	/* Bytes after the sections, the certificate table excepted (edk2's
	 * MeasurePeImageAndExtend; it assumes the table comes last). */
	if (r == CVM_OK && len > sum) {
		if (len < sum + cert_size)
			r = CVM_E_FORMAT;
		else if (len > sum + cert_size)
			r = hash_span(h, pe, len, sum, len - cert_size - sum);
	}
	if (r == CVM_OK)
		r = cvm_digest_final(h, out, 48);
	cvm_digest_ctx_free(h);
	if (r != CVM_OK)
		memset(out, 0, 48);
	return r;
}

static void put_u16le(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int cvm_measure_qemu_patch_kernel(uint8_t *kernel, size_t len, uint32_t initrd_len, uint64_t memory_size,
                                  uint32_t acpi_data_size)
{
	uint16_t protocol, xlf;
	uint32_t real_addr, cmdline_addr, initrd_max, below_4g, max_field;
	uint8_t loadflags;
	struct cvm_rd r;

	if (len < 0x1000)
		return CVM_E_FORMAT;
	if (!rd_u16_at(kernel, len, 0x206, &protocol) || !measure_view(kernel, len, 0x211, 1, &r) ||
	    !cvm_rd_u8(&r, &loadflags) || !rd_u16_at(kernel, len, 0x236, &xlf) ||
	    !rd_u32_at(kernel, len, 0x22c, &max_field))
		return CVM_E_FORMAT;
	/* QEMU's x86_load_linux (hw/i386/x86.c): where the real-mode part and
	 * the command line go decides heap_end_ptr and cmd_line_ptr. */
	if (protocol < 0x200 || (loadflags & 0x01) == 0) {
		real_addr = 0x90000;
		cmdline_addr = 0x9a000;
	} else {
		real_addr = 0x10000;
		cmdline_addr = 0x20000;
	}
	if (protocol >= 0x200)
		kernel[0x210] = 0xb0; /* type_of_loader: QEMU */
	if (protocol >= 0x201) {
		kernel[0x211] = (uint8_t)(loadflags | 0x80); /* CAN_USE_HEAP */
		put_u16le(kernel + 0x224, (uint16_t)(cmdline_addr - real_addr - 0x200));
	}
	if (protocol >= 0x202) {
		put_u32le(kernel + 0x228, cmdline_addr);
	} else {
		put_u16le(kernel + 0x20, 0xa33f);
		put_u16le(kernel + 0x22, (uint16_t)(cmdline_addr - real_addr));
	}
	if (initrd_len == 0)
		return CVM_OK;
	if (protocol < 0x200)
		return CVM_E_FORMAT;
	if (protocol >= 0x20c && (xlf & 0x40) != 0)
		initrd_max = UINT32_MAX; /* XLF_CAN_BE_LOADED_ABOVE_4G */
	else if (protocol >= 0x203)
		initrd_max = max_field;
	else
		initrd_max = 0x37ffffff;
	/* q35: all memory below 4 GiB up to 0xB0000000 bytes, else 2 GiB */
	if (memory_size >= 0xB0000000ull)
		below_4g = 0x80000000u;
	else
		below_4g = (uint32_t)memory_size;
	if (acpi_data_size >= below_4g)
		return CVM_E_INVAL;
	if (initrd_max >= below_4g - acpi_data_size)
		initrd_max = below_4g - acpi_data_size - 1;
	if (initrd_len >= initrd_max)
		return CVM_E_INVAL;
	put_u32le(kernel + 0x218, (initrd_max - initrd_len) & ~(uint32_t)4095); /* ramdisk_image */
	put_u32le(kernel + 0x21c, initrd_len);                                  /* ramdisk_size */
	return CVM_OK;
}

int cvm_measure_cmdline_digest(const char *cmdline, size_t len, uint8_t out[48])
{
	struct cvm_wr w;
	struct cvm_rd r;
	uint8_t *buf = NULL;
	size_t n = 0;
	uint32_t cp;
	int ret;

	memset(out, 0, 48);
	if (len > CVM_MEASURE_CMDLINE_MAX)
		return CVM_E_TOO_LARGE;
	cvm_rd_init(&r, cmdline, len);
	cvm_wr_init(&w, 2 * len + 2);
	while (!cvm_rd_empty(&r)) {
		if (!cvm_rd_utf8(&r, &cp) || cp == 0) {
			cvm_wr_cleanup(&w);
			return CVM_E_FORMAT;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			cvm_wr_u16le(&w, (uint16_t)(0xd800 + (cp >> 10)));
			cvm_wr_u16le(&w, (uint16_t)(0xdc00 + (cp & 0x3ff)));
		} else {
			cvm_wr_u16le(&w, (uint16_t)cp);
		}
	}
	cvm_wr_u16le(&w, 0);
	ret = cvm_wr_finish(&w, &buf, &n);
	if (ret != CVM_OK)
		return ret == CVM_E_TOO_LARGE ? CVM_E_NOMEM : ret;
	cvm_sha384(buf, n, out);
	free(buf);
	return CVM_OK;
}

void cvm_efi_variable_digest(const uint8_t guid[16], const char *name, uint8_t out[48])
{
	uint8_t buf[16 + 8 + 8 + 2 * 64];
	size_t n = strlen(name), pos = 0;

	if (n > 64)
		n = 64; /* the names measured are short constants */
	memcpy(buf, guid, 16);
	measure_put_u64le(buf + 16, n);
	measure_put_u64le(buf + 24, 0);
	pos = 32;
	for (size_t i = 0; i < n; i++) {
		buf[pos++] = (uint8_t)name[i];
		buf[pos++] = 0;
	}
	cvm_sha384(buf, pos, out);
}
