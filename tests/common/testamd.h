/* The AMD test PKI: include/cvmkit/mockamd.h under the cvm_testamd_* names
 * the unit tests were written with, plus what only tests need: one set of
 * keys per process (RSA key generation would dominate otherwise) and the
 * collateral in memory. The PKI itself lives in the library
 * (lib/crypto/mockamd.c), where the simulated TEE uses the same code. See
 * mockamd.h for every knob.
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
#include <cvmkit/mockamd.h>
#include <cvmkit/snp.h>

/* Type names (struct tags) and functions of the library. */
#define cvm_testamd cvm_mockamd
#define cvm_testamd_window cvm_mockamd_window
#define cvm_testamd_report_opts cvm_mockamd_report_opts
#define cvm_testamd_opts cvm_mockamd_opts
#define cvm_testamd_new cvm_mockamd_new
#define cvm_testamd_free cvm_mockamd_free
#define cvm_testamd_report cvm_mockamd_report
#define cvm_testamd_ark_der cvm_mockamd_ark_der

/* cvm_testamd_opts_init is cvm_mockamd_opts_init with `keys_from` set to a
 * PKI made once per process, so that every test PKI shares its keys. */
void cvm_testamd_opts_init(struct cvm_mockamd_opts *o, enum cvm_snp_product product,
                           enum cvm_snp_signer signer, int64_t now);

/* cvm_testamd_collateral gives the chain as cvm_amd_collateral_load_dir would
 * load it: the VCEK or VLEK (DER), the ASK or ASVK (PEM), the ARK (DER) and
 * the CRL (DER) when made; free it with cvm_amd_collateral_free. Returns 0
 * or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_testamd_collateral(const struct cvm_mockamd *pki, struct cvm_amd_collateral **out);

#endif
