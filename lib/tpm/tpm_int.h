/* Internal helpers of lib/tpm: conversions between tpm2-tss's types and
 * cvmkit's. Only lib/tpm includes the tss2 headers. */
#ifndef CVM_TPM_INT_H
#define CVM_TPM_INT_H

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tcti.h>
#include <tss2/tss2_tpm2_types.h>

#include <cvmkit/tpm.h>

_Static_assert(sizeof(((TPM2B_DATA *)0)->buffer) <= CVM_TPM_DATA_MAX, "TPM2B_DATA fits");
_Static_assert(sizeof(((TPM2B_NAME *)0)->name) <= CVM_TPM_NAME_MAX, "TPM2B_NAME fits");
_Static_assert(sizeof(((TPM2B_DIGEST *)0)->buffer) <= CVM_TPM_DIGEST_MAX, "TPM2B_DIGEST fits");
_Static_assert(sizeof(((TPM2B_PUBLIC_KEY_RSA *)0)->buffer) <= CVM_TPM_RSA_MAX, "RSA fits");
_Static_assert(sizeof(((TPM2B_ECC_PARAMETER *)0)->buffer) <= CVM_TPM_ECC_MAX, "ECC fits");
_Static_assert(TPM2_NUM_PCR_BANKS <= CVM_TPM_SEL_MAX, "selection fits");

/* tpm_sel_from_tss copies a TPML_PCR_SELECTION (already bounded by
 * tss2-mu: count <= TPM2_NUM_PCR_BANKS, sizeofSelect <= 4). */
void cvm_tpm_sel_from_tss(const TPML_PCR_SELECTION *in, struct cvm_tpm_pcr_sel *out);
/* tpm_sel_to_tss fills a TPML_PCR_SELECTION (sizeofSelect 3). Returns 0 or
 * CVM_E_INVAL (too many entries, a PCR above 23). */
int cvm_tpm_sel_to_tss(const struct cvm_tpm_pcr_sel *in, TPML_PCR_SELECTION *out);
/* tpm_public_fill reads the AK-relevant fields of `pub` into `out` and
 * computes the Name from the marshaled TPMT_PUBLIC `raw`. */
int cvm_tpm_public_fill(const TPMT_PUBLIC *pub, const uint8_t *raw, size_t raw_len,
                        struct cvm_tpm_public *out);
/* struct cvm_tpm is an open TPM (device.c opens it; seal.c uses it too). */
#define CVM_TPM_ERR_MAX 256
struct cvm_tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	char err[CVM_TPM_ERR_MAX];
};
/* cvm_tpm_parent_template fills the template of a primary key made again
 * from it each time: the EK (TCG EK Credential Profile, ECC P-256) or the
 * SRK (owner hierarchy, ECC P-256 storage key, empty auth, noDA). */
void cvm_tpm_parent_template(enum cvm_tpm_parent parent, TPM2B_PUBLIC *t);
/* cvm_tpm_ak_key lends the AK's key. */
const struct cvm_tpmsig_key *cvm_tpm_ak_key(const struct cvm_tpm_ak *ak);

#endif
