/* Internals shared by the mock vendor PKIs of lib/crypto (mockpki.c for
 * Intel, mockamd.c for AMD): the simulated marker, and keeping keys and
 * certificates in a folder. */
#ifndef CVM_MOCK_INT_H
#define CVM_MOCK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* cvm_mock_marker_add adds to `x` the non-critical CVM_MOCKPKI_MARKER_OID
 * extension, whose value is a UTF8String saying what the certificate is.
 * Returns 0 or CVM_E_CRYPTO. */
int cvm_mock_marker_add(X509 *x);

/* cvm_mock_dir_check returns 0 when `dir` is a folder that neither group nor
 * others may write to, CVM_E_INVAL when it is not, CVM_E_SYSTEM when it
 * cannot be examined. */
int cvm_mock_dir_check(const char *dir);

/* cvm_mock_key_save writes `key` as PKCS#8 PEM to `path` with mode 0600,
 * through memory that is wiped when freed; cvm_mock_cert_save writes `x` as
 * PEM with mode 0644. Both return 0, CVM_E_NOMEM, CVM_E_CRYPTO or
 * CVM_E_SYSTEM. */
int cvm_mock_key_save(EVP_PKEY *key, const char *path);
int cvm_mock_cert_save(X509 *x, const char *path);

/* cvm_mock_key_load reads a PEM private key that no one but its owner may
 * read (CVM_E_INVAL otherwise); cvm_mock_cert_load reads a PEM certificate.
 * Both return 0, CVM_E_INVAL, CVM_E_FORMAT, CVM_E_NOMEM, CVM_E_TOO_LARGE or
 * CVM_E_SYSTEM. */
int cvm_mock_key_load(const char *path, EVP_PKEY **out);
int cvm_mock_cert_load(const char *path, X509 **out);

/* Building blocks (lib/crypto/mock_x509.c). Each returns 0, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
/* cvm_mock_fill_pattern fills `p` with a recognisable non-zero pattern. */
void cvm_mock_fill_pattern(uint8_t *p, size_t n, uint8_t seed);
/* cvm_mock_copy_out copies n bytes into a new buffer with one NUL after them. */
int cvm_mock_copy_out(const void *p, size_t n, uint8_t **out, size_t *out_len);
/* cvm_mock_add_conf_ext adds an extension given in OpenSSL's config syntax. */
int cvm_mock_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value);
int cvm_mock_set_time(ASN1_TIME *t, int64_t v);
/* cvm_mock_crl_add_serial lists `serial` as revoked at `when`. */
int cvm_mock_crl_add_serial(X509_CRL *crl, uint64_t serial, ASN1_TIME *when);
/* cvm_mock_der_of / cvm_mock_pem_chain encode into a new buffer; `nul`
 * adds a NUL byte after the PEM text (as quotes carry the PCK chain). */
int cvm_mock_der_of(X509 *x, uint8_t **out, size_t *out_len);
int cvm_mock_pem_chain(X509 *const *certs, size_t n, bool nul, uint8_t **out, size_t *out_len);

#endif
