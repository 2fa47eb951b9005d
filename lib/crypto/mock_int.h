/* Internals shared by the mock vendor PKIs of lib/crypto (mockpki.c for
 * Intel, mockamd.c for AMD): the simulated marker, and keeping keys and
 * certificates in a folder. */
#ifndef CVM_MOCK_INT_H
#define CVM_MOCK_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

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

#endif
