/* The test PKI: include/cvmkit/mockpki.h under the cvm_testpki_* names the
 * unit tests were written with, plus three helpers that only tests need
 * (collateral in memory, a one-shot folder with quote.bin, and removing that
 * folder). The PKI itself lives in the library (lib/crypto/mockpki.c), where
 * the simulated TEE uses the same code. See mockpki.h for every knob. */
#ifndef CVMKIT_TESTS_TESTPKI_H
#define CVMKIT_TESTS_TESTPKI_H

#include <cvmkit/dcap.h>
#include <cvmkit/err.h>
#include <cvmkit/mockpki.h>

#define CVM_TESTPKI_LEVELS_MAX CVM_MOCKPKI_LEVELS_MAX
#define CVM_TESTPKI_ADVISORIES_MAX CVM_MOCKPKI_ADVISORIES_MAX
#define CVM_TESTPKI_REVOKED_MAX CVM_MOCKPKI_REVOKED_MAX
#define CVM_TESTPKI_AUTH_DATA_LEN CVM_MOCKPKI_AUTH_DATA_LEN
#define CVM_TESTPKI_JSON_MAX CVM_MOCKPKI_JSON_MAX
#define CVM_TESTPKI_ROOT CVM_MOCKPKI_ROOT
#define CVM_TESTPKI_PCK_CA CVM_MOCKPKI_PCK_CA
#define CVM_TESTPKI_PCK_LEAF CVM_MOCKPKI_PCK_LEAF
#define CVM_TESTPKI_TCB_SIGNER CVM_MOCKPKI_TCB_SIGNER
#define CVM_TESTPKI_CERT_COUNT CVM_MOCKPKI_CERT_COUNT
#define CVM_TESTPKI_FAULT_PCK_CRL_WRONG_KEY CVM_MOCKPKI_FAULT_PCK_CRL_WRONG_KEY
#define CVM_TESTPKI_FAULT_ROOT_CRL_WRONG_KEY CVM_MOCKPKI_FAULT_ROOT_CRL_WRONG_KEY
#define CVM_TESTPKI_FAULT_TCB_INFO_TAMPER CVM_MOCKPKI_FAULT_TCB_INFO_TAMPER
#define CVM_TESTPKI_FAULT_QE_IDENTITY_TAMPER CVM_MOCKPKI_FAULT_QE_IDENTITY_TAMPER
#define CVM_TESTPKI_FAULT_QUOTE_SIG CVM_MOCKPKI_FAULT_QUOTE_SIG
#define CVM_TESTPKI_FAULT_QE_REPORT_SIG CVM_MOCKPKI_FAULT_QE_REPORT_SIG
#define CVM_TESTPKI_FAULT_QE_BINDING CVM_MOCKPKI_FAULT_QE_BINDING

/* Type names (struct and enum tags) and functions of the library. */
#define cvm_testpki cvm_mockpki
#define cvm_testpki_cert cvm_mockpki_cert
#define cvm_testpki_window cvm_mockpki_window
#define cvm_testpki_advisories cvm_mockpki_advisories
#define cvm_testpki_tcb_level cvm_mockpki_tcb_level
#define cvm_testpki_qe_level cvm_mockpki_qe_level
#define cvm_testpki_quote_opts cvm_mockpki_quote_opts
#define cvm_testpki_opts cvm_mockpki_opts
#define cvm_testpki_opts_init cvm_mockpki_opts_init
#define cvm_testpki_new cvm_mockpki_new
#define cvm_testpki_free cvm_mockpki_free
#define cvm_testpki_write_collateral cvm_mockpki_write_collateral
#define cvm_testpki_quote cvm_mockpki_quote
#define cvm_testpki_opts_of cvm_mockpki_opts_of
#define cvm_testpki_root_der cvm_mockpki_root_der

/* cvm_testpki_collateral gives the PKI's collateral in memory, as
 * cvm_dcap_collateral_load_dir would load it from a folder (root_ca set);
 * the caller frees it with cvm_dcap_collateral_free. Returns 0 or
 * CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_testpki_collateral(const struct cvm_mockpki *pki, struct cvm_dcap_collateral **out);

/* cvm_testpki_write builds a PKI from `o` and writes the collateral files and
 * quote.bin into the existing folder `dir`. */
CVM_MUST_CHECK int cvm_testpki_write(const struct cvm_mockpki_opts *o, const char *dir);

/* cvm_testpki_dir_remove deletes the files cvm_testpki_write may have made
 * in `dir`, then the folder itself (which must then be empty). Other files
 * are left alone, so a wrong path cannot wipe a tree. Returns 0 or
 * CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_testpki_dir_remove(const char *dir);

#endif
