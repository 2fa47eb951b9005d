/* The AMD test PKI: the simulator's mock AMD PKI (lib/sim/mockamd_lib.h) under
 * the cvm_testamd_* names the unit tests were written with, plus what only
 * tests need: one set of keys per process (RSA key generation would dominate
 * otherwise), the collateral in memory, and the faults the tests inject by
 * post-processing what the mock made. See mockamd_lib.h for every knob.
 *
 *	struct cvm_testamd_opts o;
 *	struct cvm_testamd *pki;
 *	uint8_t report[CVM_SNP_REPORT_LEN];
 *
 *	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, now);
 *	o.revoke_intermediate = true;
 *	r = cvm_testamd_new(&o, &pki);
 *	r = cvm_testamd_report(pki, NULL, report);	// the default report
 *	...
 *	cvm_testamd_free(pki);
 */
#ifndef CVMKIT_TESTS_TESTAMD_H
#define CVMKIT_TESTS_TESTAMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/amd.h>
#include <cvmkit/err.h>
#include <cvmkit/snp.h>

#include "crypto/crypto_lib.h"
#include "sim/mock_int.h"
#include "sim/mockamd_lib.h"

/* Type names (struct tags) and functions of the library. */
#define cvm_testamd cvm_mockamd
#define cvm_testamd_window cvm_mockamd_window
#define cvm_testamd_report_opts cvm_mockamd_report_opts
#define cvm_testamd_opts cvm_mockamd_opts
#define cvm_testamd_free cvm_mockamd_free
#define cvm_testamd_report cvm_mockamd_report
#define cvm_testamd_ark_der cvm_mockamd_ark_der
#define cvm_testamd_opts_init cvm_mockamd_opts_init

/* Faults injected after the mock PKI made its output
 * (cvm_testamd_faults_apply). */
#define CVM_TESTAMD_FAULT_CRL_WRONG_KEY (1u << 0) /* the CRL re-signed by the intermediate's key */
#define CVM_TESTAMD_FAULT_REPORT_SIG (1u << 1)    /* one bit of the report signature's r flipped */

/* cvm_testamd_new is cvm_mockamd_new with the keys of a PKI made once per
 * process, shared by every test PKI. */
CVM_MUST_CHECK int cvm_testamd_new(const struct cvm_mockamd_opts *o, struct cvm_mockamd **out);

/* cvm_testamd_collateral gives the chain as cvm_amd_collateral_load_dir would
 * load it: the VCEK or VLEK (DER), the ASK or ASVK (PEM), the ARK (DER) and
 * the CRL (DER) when made; free it with cvm_amd_collateral_free. Returns 0
 * or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_testamd_collateral(const struct cvm_mockamd *pki, struct cvm_amd_collateral **out);

/* cvm_testamd_faults_apply injects `faults` into `c` (the collateral of
 * `pki`; NULL: none) and `report` (NULL: none), in place. Returns 0,
 * CVM_E_FORMAT (no CRL to re-sign), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testamd_faults_apply(const struct cvm_mockamd *pki, unsigned faults,
                                            struct cvm_amd_collateral *c, uint8_t *report);

/* cvm_testamd_cert_variant writes certificate `which` of `pki`, changed, as
 * DER into a new buffer replacing `*der`: the CN of its subject set to `cn`
 * (NULL: kept; the rest of AMD's name stays), its basicConstraints and
 * keyUsage extensions replaced by `basic_constraints` and `key_usage` in
 * x509v3_config(5) syntax (NULL: kept; "": removed), and signed again by the
 * key of its issuer (the ARK signs itself), so that only what changed is
 * wrong. Returns 0, CVM_E_INVAL, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testamd_cert_variant(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which,
                                            const char *cn, const char *basic_constraints,
                                            const char *key_usage, uint8_t **der, size_t *der_len);

#endif
