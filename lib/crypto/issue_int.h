/* What lib/crypto's issuing files share (x509_make.c for the public
 * cvm_cert_make, privkey.c and issue.c for crypto_lib.h). */
#ifndef CVM_CRYPTO_ISSUE_INT_H
#define CVM_CRYPTO_ISSUE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/crypto.h>

#include "crypto_lib.h"

/* cvm_privkey_pkey lends the key's EVP_PKEY. */
EVP_PKEY *cvm_privkey_pkey(const struct cvm_privkey *k);
/* cvm_privkey_sign_ctx makes a signing context of `k` for `alg`, ready for
 * X509_sign_ctx or EVP_DigestSign. Returns 0, CVM_E_INVAL (`alg` is not for
 * this kind of key), CVM_E_NOMEM or CVM_E_CRYPTO. */
int cvm_privkey_sign_ctx(const struct cvm_privkey *k, enum cvm_sig_alg alg, EVP_MD_CTX **out);

/* cvm_x509_name makes a name of the `n` attributes (short type names, UTF-8
 * values), each an RDN of its own, in order; NULL when an attribute is
 * unknown or out of memory. The caller frees it with X509_NAME_free. */
X509_NAME *cvm_x509_name(const struct cvm_name_attr *attrs, size_t n);
/* cvm_x509_add_conf_ext adds extension `nid` made from `value` in
 * x509v3_config(5) syntax in the context `ctx`; cvm_x509_add_der_ext adds
 * the extension of the dotted OID `oid` whose extnValue holds the `len`
 * bytes at `der`. Both append, and return false on failure. */
bool cvm_x509_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value);
bool cvm_x509_add_der_ext(X509 *x, const char *oid, bool critical, const uint8_t *der, size_t len);
/* cvm_x509_pem writes the `n` certificates as PEM into a new buffer with a
 * NUL after the text (not counted). Returns 0, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
int cvm_x509_pem(X509 *const *xs, size_t n, char **out, size_t *out_len);

#endif
