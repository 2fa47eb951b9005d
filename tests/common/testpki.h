/* The test PKI: the simulator's mock Intel PKI (lib/sim/mockpki_lib.h) under the
 * cvm_testpki_* names the unit tests were written with, plus what only tests
 * need: the collateral in memory, a one-shot folder with quote.bin, and the
 * faults and forgeries the tests inject. The simulator keeps none of those:
 * each is made here, by post-processing what the mock PKI made or from the
 * building blocks of lib/sim/mock_int.h and lib/crypto/crypto_lib.h (keys are
 * struct cvm_privkey, certificates struct cvm_cert). See mockpki_lib.h for
 * every knob. */
#ifndef CVMKIT_TESTS_TESTPKI_H
#define CVMKIT_TESTS_TESTPKI_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmkit/dcap.h>
#include <cvmkit/err.h>

#include "crypto/crypto_lib.h"
#include "sim/mock_int.h"
#include "sim/mockpki_lib.h"

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

/* Faults injected after the mock PKI made its output (cvm_testpki_write,
 * cvm_testpki_faults_apply). Collateral: */
#define CVM_TESTPKI_FAULT_PCK_CRL_WRONG_KEY (1u << 0)  /* PCK CRL re-signed by an unrelated key */
#define CVM_TESTPKI_FAULT_ROOT_CRL_WRONG_KEY (1u << 1) /* root CA CRL re-signed by an unrelated key */
#define CVM_TESTPKI_FAULT_TCB_INFO_TAMPER (1u << 2)    /* tcbInfo text altered after signing */
#define CVM_TESTPKI_FAULT_QE_IDENTITY_TAMPER (1u << 3) /* enclaveIdentity text altered after signing */
/* The quote: */
#define CVM_TESTPKI_FAULT_QUOTE_SIG (1u << 8)     /* quote signature does not verify */
#define CVM_TESTPKI_FAULT_QE_REPORT_SIG (1u << 9) /* QE report signature does not verify */
#define CVM_TESTPKI_FAULT_QE_BINDING (1u << 10)   /* QE report_data not the key hash (re-signed) */

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

/* cvm_testpki_faults_apply injects the collateral faults of `faults` into
 * `c` (collateral of `pki`) and the quote faults into the quote of `len`
 * bytes at `quote` (NULL: none), in place. Returns 0, CVM_E_FORMAT (the
 * quote does not parse), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testpki_faults_apply(const struct cvm_mockpki *pki, unsigned faults,
                                            struct cvm_dcap_collateral *c, uint8_t *quote, size_t len);

/* cvm_testpki_write builds a PKI from `o` and writes the collateral files and
 * quote.bin into the existing folder `dir`, with `faults` injected. */
CVM_MUST_CHECK int cvm_testpki_write(const struct cvm_mockpki_opts *o, unsigned faults, const char *dir);

/* cvm_testpki_dir_remove deletes the files cvm_testpki_write may have made
 * in `dir`, then the folder itself (which must then be empty). Other files
 * are left alone, so a wrong path cannot wipe a tree. Returns 0 or
 * CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_testpki_dir_remove(const char *dir);

/* ---- forgeries --------------------------------------------------------- */

/* struct cvm_testpki_issued is a certificate the tests issue under one of
 * the PKI's certificates, with a key of its own. */
struct cvm_testpki_issued {
	struct cvm_privkey *key;
	struct cvm_cert *cert;
};

/* cvm_testpki_issue makes a new P-256 key and a certificate for it named as
 * Intel names its certificates, with CN `cn`, serial `serial`, valid from a
 * year before the PKI's `now` to five years after, with `basic_constraints`
 * and `key_usage` in x509v3_config(5) syntax (NULL: none) and, when
 * `sgx_ext`, the SGX extension of the PKI's PCK leaf, issued and signed by
 * `issuer` with `issuer_key` (for instance cvm_mockpki_x509 and
 * cvm_mockpki_key of one of the PKI's certificates). Free with
 * cvm_testpki_issued_cleanup. Returns 0, CVM_E_INVAL, CVM_E_FORMAT (the
 * leaf has no single SGX extension), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testpki_issue(const struct cvm_mockpki *pki, const struct cvm_cert *issuer,
                                     const struct cvm_privkey *issuer_key, const char *cn, uint64_t serial,
                                     const char *basic_constraints, const char *key_usage, bool sgx_ext,
                                     struct cvm_testpki_issued *out);
void cvm_testpki_issued_cleanup(struct cvm_testpki_issued *c);

/* cvm_testpki_chain writes the `n` certificates as a PEM chain into a new
 * buffer (with one NUL after it, not counted), replacing `*pem`, whose
 * previous buffer it frees: a collateral field or a quote's PCK chain.
 * Returns 0, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testpki_chain(struct cvm_cert *const *certs, size_t n, uint8_t **pem, size_t *pem_len);

/* cvm_testpki_sign_json signs, with `key`, the TCB info
 * (CVM_MOCKPKI_F_TCB_INFO) or QE identity (CVM_MOCKPKI_F_QE_IDENTITY) that
 * `o` describes, replacing `*body` as cvm_testpki_chain replaces a chain.
 * Returns 0, CVM_E_INVAL, CVM_E_NOMEM, CVM_E_TOO_LARGE or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testpki_sign_json(const struct cvm_mockpki_opts *o, enum cvm_mockpki_file f,
                                         const struct cvm_privkey *key, uint8_t **body, size_t *body_len);

#endif
