/* The building blocks of the simulator's mock vendor PKIs (lib/sim:
 * mockpki.c for Intel, mockamd.c for AMD): certificates, CRLs and raw
 * signatures, the simulated marker, and keeping keys and certificates in a
 * folder. The unit tests make their deliberately broken variants (a CRL
 * signed by the wrong key, a certificate with the wrong name or key usage)
 * from the same blocks, in tests/common.
 *
 * Not part of the public API. With lib/crypto, lib/sim is the one place that
 * includes OpenSSL: a mock PKI issues certificates and CRLs of any shape,
 * wrong ones included, which the crypto layer deliberately offers no API
 * for. Nothing here verifies anything. */
#ifndef CVM_SIM_MOCK_INT_H
#define CVM_SIM_MOCK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sim/mockamd_lib.h"
#include "sim/mockpki_lib.h"

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

/* ---- building blocks (lib/sim/mock_x509.c) ------------------------------ */

/* cvm_mock_fill_pattern fills `p` with a recognisable non-zero pattern. */
void cvm_mock_fill_pattern(uint8_t *p, size_t n, uint8_t seed);
/* cvm_mock_copy_out copies n bytes into a new buffer with one NUL after
 * them. Returns 0 or CVM_E_NOMEM. */
int cvm_mock_copy_out(const void *p, size_t n, uint8_t **out, size_t *out_len);
/* cvm_mock_add_conf_ext adds an extension given in OpenSSL's config syntax.
 * Returns 0 or CVM_E_CRYPTO. */
int cvm_mock_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value);
int cvm_mock_set_time(ASN1_TIME *t, int64_t v);
/* cvm_mock_crl_add_serial lists `serial` as revoked at `when`. */
int cvm_mock_crl_add_serial(X509_CRL *crl, uint64_t serial, ASN1_TIME *when);
/* cvm_mock_der_of / cvm_mock_pem_chain encode into a new buffer; `nul`
 * adds a NUL byte after the PEM text (as quotes carry the PCK chain).
 * Return 0, CVM_E_NOMEM or CVM_E_CRYPTO. */
int cvm_mock_der_of(X509 *x, uint8_t **out, size_t *out_len);
int cvm_mock_pem_chain(X509 *const *certs, size_t n, bool nul, uint8_t **out, size_t *out_len);

/* cvm_mock_intel_name makes the name Intel gives its DCAP certificates,
 * CN=`cn`, O=Intel Corporation, L=Santa Clara, ST=CA, C=US;
 * cvm_mock_amd_name AMD's, OU=Engineering, C=US, L=Santa Clara, ST=CA,
 * O=Advanced Micro Devices, CN=`cn`. The caller frees it with
 * X509_NAME_free. NULL when out of memory. */
X509_NAME *cvm_mock_intel_name(const char *cn);
X509_NAME *cvm_mock_amd_name(const char *cn);

/* struct cvm_mock_cert is what cvm_mock_cert_new writes into a new
 * certificate. */
struct cvm_mock_cert {
	const X509_NAME *name; /* the subject (copied) */
	uint64_t serial;       /* AMD's VCEKs carry 0 */
	int64_t not_before, not_after;
	const char *basic_constraints; /* OpenSSL config syntax ("critical,CA:FALSE"); NULL: none */
	const char *key_usage;         /* likewise ("critical,digitalSignature"); NULL: none */
	bool key_ids;                  /* subject key identifier, and the authority's when issued */
	bool marker;                   /* the simulated marker (every mock root has it) */
};

/* cvm_mock_cert_new makes an X.509 v3 certificate of `spec` for the public
 * half of `key`, issued by `issuer` (NULL: by itself), not yet signed: the
 * caller adds any other extension, then signs it with cvm_mock_cert_sign.
 * Returns 0, CVM_E_INVAL (no name) or CVM_E_CRYPTO. */
int cvm_mock_cert_new(const struct cvm_mock_cert *spec, EVP_PKEY *key, X509 *issuer, X509 **out);

/* cvm_mock_cert_sign and cvm_mock_crl_sign sign with `key` as the vendor
 * whose kind of key it is signs: ECDSA with SHA-256 for an EC key (Intel),
 * RSASSA-PSS with SHA-384, MGF1 SHA-384 and a 48-byte salt for an RSA key
 * (AMD). A CRL is sorted first. Return 0 or CVM_E_CRYPTO. */
int cvm_mock_cert_sign(X509 *x, EVP_PKEY *key);
int cvm_mock_crl_sign(X509_CRL *crl, EVP_PKEY *key);

/* cvm_mock_sign_p256 signs SHA-256 of the `len` bytes at `msg` with the
 * P-256 `key` and gives r || s, 32 bytes each (how Intel signs TCB infos, QE
 * identities, QE reports and quotes). Returns 0 or CVM_E_CRYPTO. */
int cvm_mock_sign_p256(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[64]);

/* ---- the Intel mock's parts (lib/sim/mockpki.c) ------------------------- */

/* cvm_mockpki_key and cvm_mockpki_x509 lend the private key and the
 * certificate of `which` (NULL when out of range). */
EVP_PKEY *cvm_mockpki_key(const struct cvm_mockpki *pki, enum cvm_mockpki_cert which);
X509 *cvm_mockpki_x509(const struct cvm_mockpki *pki, enum cvm_mockpki_cert which);

/* cvm_mockpki_signed_body writes {"<member>":<text>,"signature":"<hex>"}
 * into a new buffer, the signature being `key`'s over exactly the `len`
 * bytes of `text` (how Intel's PCS serves TCB infos, member "tcbInfo", and
 * QE identities, "enclaveIdentity"). Returns 0, CVM_E_NOMEM,
 * CVM_E_TOO_LARGE or CVM_E_CRYPTO. */
int cvm_mockpki_signed_body(EVP_PKEY *key, const char *member, const uint8_t *text, size_t len, uint8_t **out,
                            size_t *out_len);

/* cvm_mockpki_quote_with is cvm_mockpki_quote with another PCK: the QE
 * report is signed by `pck_key` and the quote carries `pck_chain` (PEM, as
 * a quote holds it) instead of the PKI's own. */
int cvm_mockpki_quote_with(const struct cvm_mockpki *pki, const struct cvm_mockpki_quote_opts *q,
                           EVP_PKEY *pck_key, const uint8_t *pck_chain, size_t pck_chain_len, uint8_t **out,
                           size_t *out_len);

/* ---- the AMD mock's parts (lib/sim/mockamd.c) --------------------------- */

/* The certificates of an AMD mock PKI. */
enum cvm_mockamd_cert {
	CVM_MOCKAMD_ARK = 0,
	CVM_MOCKAMD_INTERMEDIATE,
	CVM_MOCKAMD_VEK,
	CVM_MOCKAMD_CERT_COUNT
};

/* cvm_mockamd_key and cvm_mockamd_x509 lend the private key and the
 * certificate of `which` (NULL when out of range). */
EVP_PKEY *cvm_mockamd_key(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which);
X509 *cvm_mockamd_x509(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which);

#endif
