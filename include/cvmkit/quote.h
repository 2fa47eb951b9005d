/* Intel DCAP quotes: SGX v3, TDX v4 and v5 (TD 1.0 and TD 1.5 bodies), with
 * ECDSA-P256 signature data and certification data type 6 wrapping type 5
 * (or type 5 directly, as SGX v3 quotes carry it). */
#ifndef CVMKIT_QUOTE_H
#define CVMKIT_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

#define CVM_QUOTE_MAX ((size_t)64 * 1024)           /* far above any real quote (about 5 KiB) */
#define CVM_QUOTE_CERT_DATA_MAX ((size_t)32 * 1024) /* a PEM chain of three certificates is about 4 KiB */
#define CVM_QUOTE_AUTH_DATA_MAX 4096u

#define CVM_TEE_TYPE_SGX 0x00000000u
#define CVM_TEE_TYPE_TDX 0x00000081u
#define CVM_ATT_KEY_ECDSA_P256 2u
#define CVM_CERT_DATA_PCK_CHAIN 5u
#define CVM_CERT_DATA_QE_REPORT 6u

#define CVM_SGX_REPORT_LEN 384u
#define CVM_TD10_REPORT_LEN 584u
#define CVM_TD15_REPORT_LEN 648u
#define CVM_QUOTE_HEADER_LEN 48u

enum cvm_tee { CVM_TEE_SGX = 1, CVM_TEE_TDX = 2 };
enum cvm_quote_body { CVM_BODY_SGX = 1, CVM_BODY_TD10 = 2, CVM_BODY_TD15 = 3 };

static const uint8_t CVM_INTEL_QE_VENDOR_ID[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                                   0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

/* struct cvm_sgx_report is an SGX enclave report body (384 bytes), decoded. */
struct cvm_sgx_report {
	uint8_t cpu_svn[16];
	uint32_t misc_select;
	uint8_t isv_ext_prod_id[16];
	uint8_t attributes[16];
	uint8_t mr_enclave[32];
	uint8_t mr_signer[32];
	uint8_t config_id[64];
	uint16_t isv_prod_id;
	uint16_t isv_svn;
	uint16_t config_svn;
	uint8_t isv_family_id[16];
	uint8_t report_data[64];
	bool reserved_nonzero; /* a reserved field held a non-zero byte */
};

/* struct cvm_tdx_report is a TD report body: TD 1.0 (584 bytes) or TD 1.5
 * (648 bytes: adds tee_tcb_svn2 and mr_service_td). */
struct cvm_tdx_report {
	uint8_t tee_tcb_svn[16];
	uint8_t mr_seam[48];
	uint8_t mr_signer_seam[48];
	uint8_t seam_attributes[8];
	uint8_t td_attributes[8];
	uint8_t xfam[8];
	uint8_t mr_td[48];
	uint8_t mr_config_id[48];
	uint8_t mr_owner[48];
	uint8_t mr_owner_config[48];
	uint8_t rtmr[4][48];
	uint8_t report_data[64];
	bool is_td15;
	uint8_t tee_tcb_svn2[16];
	uint8_t mr_service_td[48];
};

/* TD attribute bits (TDX module ABI, little-endian 64-bit field). */
#define CVM_TD_ATTR_DEBUG (1ull << 0)
#define CVM_TD_ATTR_SEPT_VE_DISABLE (1ull << 28)
#define CVM_TD_ATTR_PKS (1ull << 30)
#define CVM_TD_ATTR_KL (1ull << 31)
#define CVM_TD_ATTR_PERFMON (1ull << 63)
/* Bits that are reserved in TDX 1.0/1.5: TUD bits 7:1, SEC bits 27:8 and 29,
 * OTHER bits 62:32. */
#define CVM_TD_ATTR_RESERVED \
	(0x00000000000000feull | 0x000000000fffff00ull | (1ull << 29) | 0x7fffffff00000000ull)
/* SGX attribute flag bits (first byte). */
#define CVM_SGX_ATTR_DEBUG 0x02u

/* struct cvm_quote is a parsed DCAP quote. Every pointer and cvm_rd borrows
 * from the buffer passed to cvm_quote_parse. */
struct cvm_quote {
	/* header */
	uint16_t version;
	uint16_t att_key_type;
	uint32_t tee_type;
	uint16_t qe_svn;  /* v4/v5; reserved in v3 */
	uint16_t pce_svn; /* v4/v5; reserved in v3 */
	uint8_t qe_vendor_id[16];
	uint8_t user_data[20];
	enum cvm_tee tee;
	enum cvm_quote_body body_type;
	union {
		struct cvm_sgx_report sgx;
		struct cvm_tdx_report td;
	} body;
	/* bytes covered by the quote signature: header and body (v5: with the
	 * body type and size fields) */
	struct cvm_rd signed_data;
	/* signature data */
	uint8_t signature[64];       /* ECDSA r || s, big-endian */
	uint8_t attest_key[64];      /* P-256 public key x || y */
	struct cvm_rd qe_report_raw; /* the exact 384 bytes the PCK key signed */
	struct cvm_sgx_report qe_report;
	uint8_t qe_report_sig[64];
	struct cvm_rd qe_auth_data;
	uint16_t cert_data_type;       /* innermost: 5 */
	uint16_t outer_cert_data_type; /* 6 for v4/v5, 5 for v3 */
	struct cvm_rd pck_chain_pem;   /* certification data of type 5 */
	size_t quote_len;              /* bytes of the quote proper */
	size_t padding_len;            /* trailing bytes (zero padding, unless trailing_garbage) */
	bool trailing_garbage;         /* non-zero bytes follow the quote: parse gave CVM_E_FORMAT */
};

/* cvm_quote_parse checks the structure of the `len` bytes at `buf` and fills
 * `out`, whose pointers borrow from `buf`. It verifies no signature. A quote
 * followed by zero bytes only (as a TDX GetQuote buffer returns it) is
 * accepted; any other trailing byte is rejected with CVM_E_FORMAT, and then
 * (only then) `out` is nevertheless complete with `trailing_garbage` set, so
 * a verifier can explain what the quote proper would have given. Returns 0,
 * CVM_E_TRUNCATED, CVM_E_FORMAT, CVM_E_UNSUPPORTED or CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_quote_parse(const uint8_t *buf, size_t len, struct cvm_quote *out);

/* cvm_sgx_report_parse decodes a 384-byte enclave report from `in`. */
CVM_API CVM_MUST_CHECK int cvm_sgx_report_parse(struct cvm_rd *in, struct cvm_sgx_report *out);
/* cvm_tdx_report_parse decodes a TD 1.0 or TD 1.5 body from `in`. */
CVM_API CVM_MUST_CHECK int cvm_tdx_report_parse(struct cvm_rd *in, bool is_td15, struct cvm_tdx_report *out);

/* cvm_td_attributes returns the TD attributes as a host-order integer. */
CVM_API uint64_t cvm_td_attributes(const struct cvm_tdx_report *td);

#endif
