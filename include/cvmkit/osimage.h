/* OS image measurement documents: what binds a dstack OS image hash to a
 * TDX quote without downloading the image (spec dstack.md §5.8, the "lite"
 * variant). An image ships `sha256sum.txt` (its checksum file, whose
 * SHA-256 is the image's os_image_hash) and `measurement.tdx.cbor` (listed
 * in it): the MRTD the firmware gives and the SHA-384 digests of kernel
 * (Authenticode), command line and initrd that OVMF and the EFI stub extend
 * into RTMR1 and RTMR2. */
#ifndef CVMKIT_OSIMAGE_H
#define CVMKIT_OSIMAGE_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

#define CVM_OSIMAGE_TDX_MAX ((size_t)16 * 1024)       /* measurement.tdx.cbor (384 B in dstack 0.6) */
#define CVM_OSIMAGE_CHECKSUMS_MAX ((size_t)64 * 1024) /* sha256sum.txt */
#define CVM_OSIMAGE_TD_HOB_MAX 64u

/* struct cvm_osimage_tdx is a decoded measurement.tdx.cbor:
 * {version, image: {kernel_authenticode, cmdline_sha384, initrd_sha384},
 *  tdvf: {ovmf, mrtd: {single_pass, two_pass}, td_hob}}. */
struct cvm_osimage_tdx {
	uint64_t version;
	uint8_t kernel_authenticode[48];
	uint8_t cmdline_sha384[48];
	uint8_t initrd_sha384[48];
	bool has_single_pass, has_two_pass;
	uint8_t mrtd_single_pass[48];
	uint8_t mrtd_two_pass[48];
	char ovmf[64]; /* "" when absent */
	uint8_t td_hob[CVM_OSIMAGE_TD_HOB_MAX];
	size_t td_hob_len;
};

/* cvm_osimage_tdx_parse decodes the `len` bytes at `buf` (at most
 * CVM_OSIMAGE_TDX_MAX; one CBOR map, nothing after it) with libcbor. The
 * three image digests are required, and at least one MRTD; keys it does not
 * know are ignored, a known key twice or of another type is an error. On
 * error `err` (may be NULL) says what. It proves nothing by itself: the
 * document must be bound to a quote (cvm_osimage_tdx_bind). Returns 0,
 * CVM_E_TOO_LARGE, CVM_E_FORMAT, CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_osimage_tdx_parse(const uint8_t *buf, size_t len, struct cvm_osimage_tdx *out,
                                                 char *err, size_t err_len);

/* cvm_osimage_checksum_find reads a sha256sum(1) file ("<64 hex>  <name>"
 * or "<64 hex> *<name>" lines; at most CVM_OSIMAGE_CHECKSUMS_MAX bytes) and
 * copies the digest listed for `name` to `out`. Every line must be
 * well-formed and `name` listed once. Returns 0, CVM_E_NOT_FOUND,
 * CVM_E_FORMAT (a malformed line, `name` listed twice), CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_osimage_checksum_find(const uint8_t *file, size_t len, const char *name,
                                                     uint8_t out[32]);

/* struct cvm_osimage_tdx_evidence is what a tdx-lite binding is checked
 * against. The registers must come from a quote the caller has verified:
 * the binding is only as good as they are. */
struct cvm_osimage_tdx_evidence {
	const uint8_t *os_image_hash; /* the claimed hash (vm_config), 32 bytes */
	const uint8_t *checksum_file; /* vm_config.tdx_measurement.checksum_file */
	size_t checksum_file_len;
	const uint8_t *measurement; /* vm_config.tdx_measurement.measurement */
	size_t measurement_len;
	bool single_pass;       /* vm_config.qemu_single_pass_add_pages: which MRTD applies */
	const uint8_t *mrtd;    /* the quote's, 48 bytes */
	const uint8_t *rtmr[3]; /* the quote's RTMR0..2 (RTMR0 is not used), 48 bytes each */
};

/* cvm_osimage_tdx_bind checks that `ev` binds the image to the quote's
 * registers: SHA-256(checksum file) is the claimed hash, the checksum file
 * lists SHA-256(measurement.tdx.cbor), the document's MRTD for the boot
 * (single or two pass) is the quote's, and RTMR1 and RTMR2 recomputed from
 * the document (the kernel's Authenticode digest and OVMF's four fixed boot
 * events; the command line, then the initrd) are the quote's. Each check is
 * a step of `rep` (may be NULL), and `out` (may be NULL) gets the decoded
 * document. It does not check RTMR0 (the VM's shape and ACPI tables) nor
 * the quote itself. Returns 0 only when every check holds; CVM_E_POLICY
 * when a value differs, or the parse errors. */
CVM_API CVM_MUST_CHECK int cvm_osimage_tdx_bind(const struct cvm_osimage_tdx_evidence *ev,
                                                struct cvm_osimage_tdx *out, struct cvm_report *rep);

#endif
