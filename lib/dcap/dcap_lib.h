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

#endif
