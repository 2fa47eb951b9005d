/* AMD SEV-SNP attestation reports (SEV-SNP firmware ABI, ATTESTATION_REPORT):
 * versions 2, 3, 4 and 5, all 1184 bytes, little-endian, signed with ECDSA
 * P-384 / SHA-384 over bytes 0x000..0x29F. This module only decodes; it
 * includes no OpenSSL and verifies nothing (see amd.h). */
#ifndef CVMKIT_SNP_H
#define CVMKIT_SNP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

#define CVM_SNP_REPORT_LEN 1184u  /* 0x4A0, every version */
#define CVM_SNP_SIGNED_LEN 0x2A0u /* bytes the signature covers */
#define CVM_SNP_SIG_COMPONENT_LEN 72u
#define CVM_SNP_SIG_ALGO_ECDSA_P384_SHA384 1u

/* Guest policy bits (POLICY, 0x08). */
#define CVM_SNP_POLICY_ABI_MINOR_MASK 0xffull
#define CVM_SNP_POLICY_ABI_MAJOR_SHIFT 8
#define CVM_SNP_POLICY_SMT (1ull << 16)
#define CVM_SNP_POLICY_RESERVED_ONE (1ull << 17) /* must be 1 */
#define CVM_SNP_POLICY_MIGRATE_MA (1ull << 18)
#define CVM_SNP_POLICY_DEBUG (1ull << 19)
#define CVM_SNP_POLICY_SINGLE_SOCKET (1ull << 20)
#define CVM_SNP_POLICY_CXL_ALLOW (1ull << 21)
#define CVM_SNP_POLICY_MEM_AES_256_XTS (1ull << 22)
#define CVM_SNP_POLICY_RAPL_DIS (1ull << 23)
#define CVM_SNP_POLICY_CIPHERTEXT_HIDING (1ull << 24)
#define CVM_SNP_POLICY_PAGE_SWAP_DISABLE (1ull << 25)
#define CVM_SNP_POLICY_RESERVED_ZERO (~((1ull << 26) - 1)) /* bits 63:26 */

/* Platform info bits (PLATFORM_INFO, 0x40). */
#define CVM_SNP_PLATFORM_SMT_EN (1ull << 0)
#define CVM_SNP_PLATFORM_TSME_EN (1ull << 1)
#define CVM_SNP_PLATFORM_ECC_EN (1ull << 2)
#define CVM_SNP_PLATFORM_RAPL_DIS (1ull << 3)
#define CVM_SNP_PLATFORM_CIPHERTEXT_HIDING_EN (1ull << 4)
#define CVM_SNP_PLATFORM_ALIAS_CHECK_COMPLETE (1ull << 5)
#define CVM_SNP_PLATFORM_TIO_EN (1ull << 7)

/* Signer info (0x48): AUTHOR_KEY_EN bit 0, MASK_CHIP_KEY bit 1,
 * SIGNING_KEY bits 4:2, bits 31:5 reserved. */
enum cvm_snp_signer {
	CVM_SNP_SIGNER_VCEK = 0,
	CVM_SNP_SIGNER_VLEK = 1,
	CVM_SNP_SIGNER_NONE = 7, /* the report is not signed */
};

/* AMD EPYC product lines with SEV-SNP. Bergamo and Siena are Genoa's line
 * (their VCEKs come from Genoa's chain). */
enum cvm_snp_product {
	CVM_SNP_PRODUCT_UNKNOWN = 0,
	CVM_SNP_PRODUCT_MILAN,
	CVM_SNP_PRODUCT_GENOA,
	CVM_SNP_PRODUCT_TURIN,
};

/* cvm_snp_product_name is "Milan", "Genoa", "Turin" or "unknown". */
CVM_API const char *cvm_snp_product_name(enum cvm_snp_product p);
/* cvm_snp_product_from_cpuid maps a report's CPUID family and model. */
CVM_API enum cvm_snp_product cvm_snp_product_from_cpuid(uint8_t family, uint8_t model);
/* cvm_snp_product_parse maps "Milan", "Genoa" or "Turin", optionally followed
 * by "-<stepping>" ("Milan-B0"), as VCEK product names read; the `len` bytes
 * need no NUL. */
CVM_API enum cvm_snp_product cvm_snp_product_parse(const char *s, size_t len);

/* struct cvm_snp_tcb is a TCB_VERSION decoded by its product's layout:
 * Milan and Genoa: bootloader [0], tee [1], reserved [2..5], snp [6],
 * microcode [7]; Turin: fmc [0], bootloader [1], tee [2], snp [3],
 * reserved [4..6], microcode [7]. */
struct cvm_snp_tcb {
	uint64_t raw; /* the field as a little-endian 64-bit value */
	bool has_fmc; /* Turin layout */
	uint8_t fmc;
	uint8_t bootloader;
	uint8_t tee;
	uint8_t snp;
	uint8_t microcode;
	bool reserved_nonzero; /* a reserved byte of the layout is not zero */
};

/* cvm_snp_tcb_decode decodes `raw` with the layout of `product` (Turin's for
 * CVM_SNP_PRODUCT_TURIN, the Milan/Genoa one otherwise). */
CVM_API void cvm_snp_tcb_decode(uint64_t raw, enum cvm_snp_product product, struct cvm_snp_tcb *out);
/* cvm_snp_tcb_encode is the inverse: the raw value of the components of
 * `t` in the layout of `product` (reserved bytes zero). */
CVM_API uint64_t cvm_snp_tcb_encode(const struct cvm_snp_tcb *t, enum cvm_snp_product product);

/* struct cvm_snp_report is a parsed attestation report. `signed_data`
 * borrows from the buffer given to cvm_snp_report_parse; everything else is
 * copied. */
struct cvm_snp_report {
	uint32_t version; /* 2, 3, 4 (laid out as 3) or 5 */
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint32_t sig_algo;
	struct cvm_snp_tcb current_tcb;
	uint64_t platform_info;
	uint32_t signer_info; /* raw 0x48 */
	bool author_key_en;
	bool mask_chip_key;
	uint8_t signing_key; /* bits 4:2 of signer_info: enum cvm_snp_signer, or a reserved value */
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint8_t report_id[32];
	uint8_t report_id_ma[32];
	struct cvm_snp_tcb reported_tcb;
	bool has_cpuid; /* version 3 and later */
	uint8_t cpuid_fam_id;
	uint8_t cpuid_mod_id;
	uint8_t cpuid_step;
	uint8_t chip_id[64];
	struct cvm_snp_tcb committed_tcb;
	uint8_t current_build, current_minor, current_major;
	uint8_t committed_build, committed_minor, committed_major;
	struct cvm_snp_tcb launch_tcb;
	bool has_mit_vectors; /* version 5 */
	uint64_t launch_mit_vector;
	uint64_t current_mit_vector;
	uint8_t sig_r[72]; /* as in the report: little-endian, zero-extended */
	uint8_t sig_s[72];
	/* the product the TCB fields were decoded for: from CPUID (v3+), else
	 * UNKNOWN (and the Milan/Genoa layout) */
	enum cvm_snp_product product;
	struct cvm_rd signed_data; /* bytes 0x000..0x29F */
	/* Structure problems that do not stop decoding (so `cvm quote show` can
	 * print the report), each of which makes verification reject it:
	 * a reserved byte or bit that must be zero is not, POLICY bit 17 is
	 * clear, SIGNING_KEY holds a reserved value. `reserved_what` names the
	 * first one. */
	bool reserved_nonzero;
	char reserved_what[48];
};

/* cvm_snp_report_looks_like is true when `len` bytes at `buf` have the size
 * of an SNP report and a version this module decodes; a DCAP quote never
 * does (its first 32 bits hold version and key type). */
CVM_API bool cvm_snp_report_looks_like(const uint8_t *buf, size_t len);

/* cvm_snp_report_parse decodes the `len` bytes at `buf`, which must be
 * exactly CVM_SNP_REPORT_LEN. Returns 0, CVM_E_TRUNCATED (shorter),
 * CVM_E_FORMAT (longer) or CVM_E_UNSUPPORTED (a version other than 2 to 5).
 * On 0, `out` is complete; `reserved_nonzero` may still be set (see above).
 * It checks no signature, no certificate and no policy. */
CVM_API CVM_MUST_CHECK int cvm_snp_report_parse(const uint8_t *buf, size_t len, struct cvm_snp_report *out);

/* cvm_snp_report_sig_be turns the report's little-endian r and s into
 * big-endian r || s of 48 bytes each, as ECDSA P-384 verifiers take them.
 * Returns false when r or s does not fit in 48 bytes. */
CVM_API bool cvm_snp_report_sig_be(const struct cvm_snp_report *r, uint8_t out[96]);

#endif
