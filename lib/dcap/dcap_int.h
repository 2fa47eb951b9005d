/* Internal interfaces of lib/dcap. */
#ifndef CVM_DCAP_INT_H
#define CVM_DCAP_INT_H

#include <cvmkit/bytes.h>
#include <cvmkit/dcap.h>

#define CVM_SGX_EXT_OID "1.2.840.113741.1.13.1"

/* struct cvm_pck_info is what verification needs from a PCK certificate's
 * SGX extension. */
struct cvm_pck_info {
	uint8_t ppid[16];
	uint8_t tcb_svn[16]; /* SGX TCB components 1..16 */
	uint16_t pce_svn;
	uint8_t cpu_svn[16];
	uint8_t pce_id[2];
	uint8_t fmspc[6];
	uint8_t sgx_type;
};

/* cvm_pck_info_parse decodes the DER value (the OCTET STRING contents) of
 * the SGX extension. Returns 0 or CVM_E_FORMAT. */
CVM_MUST_CHECK int cvm_pck_info_parse(const struct cvm_rd *ext, struct cvm_pck_info *out);

/* cvm_tcb_info_keep keeps the decoded `ti` of `body` process-wide (a few
 * recent bodies, thread-safe) so that a later cvm_tcb_info_parse of exactly
 * the same bytes returns it (shared, read-only) instead of decoding again.
 * Verifiers call it once the body's signature verified; it saves decoding,
 * never a check. `signed_part` and `signature` are what the parse gave. */
void cvm_tcb_info_keep(struct cvm_tcb_info *ti, const uint8_t *body, size_t len,
                       const struct cvm_rd *signed_part, const uint8_t signature[64]);
/* cvm_qe_identity_keep is cvm_tcb_info_keep for a QE identity. */
void cvm_qe_identity_keep(struct cvm_qe_identity *qe, const uint8_t *body, size_t len,
                          const struct cvm_rd *signed_part, const uint8_t signature[64]);

#endif
