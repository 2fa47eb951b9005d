/* lib/dcap's library-internal interface, for the modules above it. Not part
 * of the public API and not exported. */
#ifndef CVM_DCAP_DCAP_LIB_H
#define CVM_DCAP_DCAP_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/err.h>

/* cvm_dcap_pck_identify reads the first certificate of the PEM chain `pem`
 * (a quote's PCK chain) far enough to name its collateral: the FMSPC of its
 * SGX extension and whether the PCK Platform CA issued it (else the
 * Processor CA). It verifies nothing. Returns 0, CVM_E_FORMAT or
 * CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_dcap_pck_identify(const uint8_t *pem, size_t len, uint8_t fmspc[6], bool *platform_ca);

/* struct cvm_dcap_pck_desc is what a PCK certificate's SGX extension says. */
struct cvm_dcap_pck_desc {
	uint8_t fmspc[6];
	uint8_t pce_id[2];
	uint8_t tcb_svn[16]; /* SGX TCB components 1..16 */
	uint16_t pce_svn;
	uint8_t cpu_svn[16];
	bool platform_ca; /* issued by the PCK Platform CA (else Processor) */
};

/* cvm_dcap_pck_describe is cvm_dcap_pck_identify with the rest of the SGX
 * extension (PCE ID, TCB, CPUSVN), to compare a certificate with what it was
 * listed under. It verifies nothing. Returns 0, CVM_E_FORMAT or
 * CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_dcap_pck_describe(const uint8_t *pem, size_t len, struct cvm_dcap_pck_desc *out);

#endif
