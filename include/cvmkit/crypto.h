/* The crypto layer: the only part of cvmkit that includes OpenSSL. Everything
 * above it sees opaque certificates and CRLs and fixed-size raw keys. */
#ifndef CVMKIT_CRYPTO_H
#define CVMKIT_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

#define CVM_CHAIN_CERTS_MAX 8

void cvm_sha256(const void *p, size_t n, uint8_t out[32]);
void cvm_sha384(const void *p, size_t n, uint8_t out[48]);

/* struct cvm_p256_key is a parsed P-256 public key, reusable across
 * verifications (parsing it costs about as much as a verification). */
struct cvm_p256_key;
/* cvm_p256_key_new parses an uncompressed point given as x || y (64 bytes).
 * Returns 0, CVM_E_FORMAT (not on the curve) or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_p256_key_new(const uint8_t xy[64], struct cvm_p256_key **out);
void cvm_p256_key_free(struct cvm_p256_key *k);
/* cvm_p256_verify checks an ECDSA-SHA256 signature given as r || s (64 bytes,
 * big-endian). Returns 0 or CVM_E_SIGNATURE. */
CVM_MUST_CHECK int cvm_p256_verify(const struct cvm_p256_key *k, const uint8_t *msg, size_t len,
                                   const uint8_t sig[64]);

/* struct cvm_cert is a parsed X.509 certificate. */
struct cvm_cert;

/* cvm_cert_parse reads one certificate in DER or PEM. */
CVM_MUST_CHECK int cvm_cert_parse(const uint8_t *buf, size_t len, struct cvm_cert **out);
/* cvm_certs_parse_pem reads a PEM chain (at most CVM_CHAIN_CERTS_MAX
 * certificates, at least one; trailing NUL bytes are ignored, any other
 * non-PEM content is an error) into a new array the caller frees with
 * cvm_certs_free. */
CVM_MUST_CHECK int cvm_certs_parse_pem(const uint8_t *pem, size_t len, struct cvm_cert ***out, size_t *count);
void cvm_certs_free(struct cvm_cert **certs, size_t count);
void cvm_cert_free(struct cvm_cert *c);
/* cvm_cert_dup takes a new reference to `c`. */
struct cvm_cert *cvm_cert_dup(struct cvm_cert *c);

/* Validity window in Unix seconds. */
int64_t cvm_cert_not_before(const struct cvm_cert *c);
int64_t cvm_cert_not_after(const struct cvm_cert *c);
/* cvm_cert_is_ca is true when basicConstraints says CA:TRUE. */
bool cvm_cert_is_ca(const struct cvm_cert *c);
/* cvm_cert_has_unknown_critical is true when a critical extension is one
 * OpenSSL does not understand (such a certificate must be rejected). */
bool cvm_cert_has_unknown_critical(const struct cvm_cert *c);
bool cvm_cert_equal(const struct cvm_cert *a, const struct cvm_cert *b);
/* cvm_cert_subject / _issuer write the one-line distinguished name. */
void cvm_cert_subject(const struct cvm_cert *c, char *buf, size_t len);
void cvm_cert_issuer(const struct cvm_cert *c, char *buf, size_t len);
/* cvm_cert_serial writes the serial number in hex. */
void cvm_cert_serial(const struct cvm_cert *c, char *buf, size_t len);
/* cvm_cert_der gives the certificate's DER encoding (borrowed). */
void cvm_cert_der(const struct cvm_cert *c, const uint8_t **der, size_t *len);

/* cvm_cert_check_issued checks that `issuer`'s subject is `child`'s issuer,
 * that `issuer` may sign certificates (CA:TRUE), and `child`'s signature
 * under `issuer`'s key. Returns 0, CVM_E_CHAIN (names or CA flag) or
 * CVM_E_SIGNATURE. */
CVM_MUST_CHECK int cvm_cert_check_issued(const struct cvm_cert *child, const struct cvm_cert *issuer);
/* cvm_cert_verify_p256 checks an ECDSA-SHA256 r || s signature under the
 * certificate's key, which must be P-256. Returns 0, CVM_E_SIGNATURE or
 * CVM_E_UNSUPPORTED. */
CVM_MUST_CHECK int cvm_cert_verify_p256(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                        const uint8_t sig[64]);
/* cvm_cert_ext lends the contents of the extension with the dotted `oid`
 * (its OCTET STRING value, to be read with struct cvm_rd). CVM_E_FORMAT when
 * absent or present twice. */
CVM_MUST_CHECK int cvm_cert_ext(const struct cvm_cert *c, const char *oid, struct cvm_rd *out);

/* struct cvm_cert_pool keeps parsed certificates by their DER bytes, so the
 * same certificate met in several chains (Intel's root, the TCB signing
 * certificate, the PCK CA) is parsed once. OpenSSL 3.0 spends about as long
 * parsing a certificate as verifying a signature. It caches parsing only,
 * never a verification result. At most CVM_CERT_POOL_MAX certificates are
 * kept; past that, certificates are parsed as usual. */
#define CVM_CERT_POOL_MAX 32
struct cvm_cert_pool;
CVM_MUST_CHECK int cvm_cert_pool_new(struct cvm_cert_pool **out);
void cvm_cert_pool_free(struct cvm_cert_pool *pool);
/* cvm_cert_pool_add keeps a reference to `c`. */
void cvm_cert_pool_add(struct cvm_cert_pool *pool, struct cvm_cert *c);
/* cvm_cert_pool_holds is true when the pool keeps a reference to `c` (so `c`
 * lives as long as the pool). */
bool cvm_cert_pool_holds(const struct cvm_cert_pool *pool, const struct cvm_cert *c);
/* cvm_cert_pool_parse_pem is cvm_certs_parse_pem through the pool (a NULL
 * pool parses every certificate). */
CVM_MUST_CHECK int cvm_cert_pool_parse_pem(struct cvm_cert_pool *pool, const uint8_t *pem, size_t len,
                                           struct cvm_cert ***out, size_t *count);

/* struct cvm_crl is a parsed certificate revocation list. */
struct cvm_crl;
/* cvm_crl_parse reads a CRL in DER or PEM. */
CVM_MUST_CHECK int cvm_crl_parse(const uint8_t *buf, size_t len, struct cvm_crl **out);
void cvm_crl_free(struct cvm_crl *crl);
int64_t cvm_crl_this_update(const struct cvm_crl *crl);
/* cvm_crl_next_update is INT64_MAX when the CRL has none. */
int64_t cvm_crl_next_update(const struct cvm_crl *crl);
void cvm_crl_issuer(const struct cvm_crl *crl, char *buf, size_t len);
/* cvm_crl_check_issued checks that `issuer` issued the CRL and its signature. */
CVM_MUST_CHECK int cvm_crl_check_issued(const struct cvm_crl *crl, const struct cvm_cert *issuer);
/* cvm_crl_revokes is true when `c` (by issuer name and serial) is listed. */
bool cvm_crl_revokes(const struct cvm_crl *crl, const struct cvm_cert *c);

/* cvm_crypto_errstr returns the last libcrypto error as text and clears the queue. */
const char *cvm_crypto_errstr(void);

#endif
