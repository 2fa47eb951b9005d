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
/* The largest DER certificate a PEM chain may hold. */
#define CVM_CERT_DER_MAX ((size_t)64 * 1024)

void cvm_sha256(const void *p, size_t n, uint8_t out[32]);
void cvm_sha384(const void *p, size_t n, uint8_t out[48]);

/* Message digests (lib/crypto/digest.c), named by their TPM algorithm IDs
 * (TPM_ALG_ID, TCG Algorithm Registry) so that event logs, IMA lists and TPM
 * structures can use the value they read directly. Any other value is an
 * unknown algorithm: cvm_digest_len returns 0 for it and every other function
 * returns CVM_E_UNSUPPORTED. */
enum cvm_digest_alg {
	CVM_DIGEST_SHA1 = 0x0004,    /* TPM_ALG_SHA1 */
	CVM_DIGEST_SHA256 = 0x000B,  /* TPM_ALG_SHA256 */
	CVM_DIGEST_SHA384 = 0x000C,  /* TPM_ALG_SHA384 */
	CVM_DIGEST_SHA512 = 0x000D,  /* TPM_ALG_SHA512 */
	CVM_DIGEST_SM3_256 = 0x0012, /* TPM_ALG_SM3_256 */
};

/* CVM_DIGEST_MAX is the longest digest of any supported algorithm (SHA-512). */
#define CVM_DIGEST_MAX 64

/* cvm_digest_len returns the digest length in bytes of `alg` (a TPM_ALG_ID),
 * or 0 when cvmkit does not support it. */
size_t cvm_digest_len(uint16_t alg);
/* cvm_digest_name returns the lower-case name of `alg` as Linux and
 * tpm2-tools spell it ("sha1", "sha256", "sha384", "sha512", "sm3_256"), or
 * NULL when it is not supported. The string is static. */
const char *cvm_digest_name(uint16_t alg);
/* cvm_digest_from_name finds the algorithm called `name` (case-insensitive;
 * the names of cvm_digest_name, plus "sm3" as IMA writes it). Returns 0 or
 * CVM_E_UNSUPPORTED. */
CVM_MUST_CHECK int cvm_digest_from_name(const char *name, enum cvm_digest_alg *out);

/* cvm_digest hashes the `n` bytes at `p` with `alg` in one call and writes
 * cvm_digest_len(alg) bytes to `out`, which holds `out_len` bytes. Returns 0,
 * CVM_E_UNSUPPORTED (unknown alg), CVM_E_INVAL (out_len too small) or
 * CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_digest(uint16_t alg, const void *p, size_t n, uint8_t *out, size_t out_len);

/* struct cvm_digest_ctx is an incremental digest of one algorithm. It may be
 * reused for any number of messages: cvm_digest_final starts a new message.
 * It is not safe to share between threads. */
struct cvm_digest_ctx;
/* cvm_digest_ctx_new makes a context for `alg`, ready for a first message.
 * The caller frees it with cvm_digest_ctx_free. Returns 0,
 * CVM_E_UNSUPPORTED, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_digest_ctx_new(uint16_t alg, struct cvm_digest_ctx **out);
/* cvm_digest_ctx_free frees `ctx`; NULL is a no-op. */
void cvm_digest_ctx_free(struct cvm_digest_ctx *ctx);
/* cvm_digest_ctx_alg returns the algorithm `ctx` was made for. */
enum cvm_digest_alg cvm_digest_ctx_alg(const struct cvm_digest_ctx *ctx);
/* cvm_digest_update adds `n` bytes to the current message. Returns 0 or
 * CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_digest_update(struct cvm_digest_ctx *ctx, const void *p, size_t n);
/* cvm_digest_final writes the current message's digest
 * (cvm_digest_len bytes) to `out`, which holds `out_len` bytes, and starts
 * a new, empty message. Returns 0, CVM_E_INVAL (out_len too small; the
 * message is kept) or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_digest_final(struct cvm_digest_ctx *ctx, uint8_t *out, size_t out_len);
/* cvm_digest_extend performs a TPM PCR extend with `ctx`'s algorithm:
 * reg := H(reg || digest), where `reg` and `digest` both hold
 * cvm_digest_len bytes (they may be the same buffer). Any message pending in
 * `ctx` is discarded first. Returns 0 or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_digest_extend(struct cvm_digest_ctx *ctx, uint8_t *reg, const uint8_t *digest);

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
/* Kept verifications. The *_kept variants of the ECDSA verifications
 * (cvm_p256_verify_kept, cvm_cert_verify_p256_kept,
 * cvm_cert_check_issued_kept, cvm_crl_check_issued_kept,
 * cvm_cert_verify_p384_kept) check exactly what the plain ones check; the
 * caller adds that it has authenticated the key (it chains to a trust
 * anchor) and expects to see it again. At a key's 8th kept verification a
 * table of its multiples is made (P-256: about 150 KB, some 25 ms to build;
 * P-384: about 1 MB), and the tables of the most used such keys are kept
 * process-wide (8 P-256 keys, 4 P-384 keys; thread-safe, one built at a
 * time): a verification under a key with a table costs about half as much
 * (P-256) or a third (P-384). Tables are a pure function of the public key,
 * never a verification result. Only authenticated keys, so that nobody can
 * make a verifier build tables for keys of their choosing: the plain
 * variants keep nothing. A build with CVM_FAST_ECDSA=OFF (see
 * cvm_ecdsa_fast) has no tables, and *_kept is the plain verification. */
CVM_MUST_CHECK int cvm_p256_verify_kept(const struct cvm_p256_key *k, const uint8_t *msg, size_t len,
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
/* cvm_cert_check_issued_kept: see "Kept verifications" above (`issuer` is
 * the authenticated key). */
CVM_MUST_CHECK int cvm_cert_check_issued_kept(const struct cvm_cert *child, const struct cvm_cert *issuer);
/* cvm_cert_verify_p256 checks an ECDSA-SHA256 r || s signature under the
 * certificate's key, which must be P-256. Returns 0, CVM_E_SIGNATURE or
 * CVM_E_UNSUPPORTED. */
CVM_MUST_CHECK int cvm_cert_verify_p256(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                        const uint8_t sig[64]);
/* cvm_cert_verify_p256_kept: see "Kept verifications" above. */
CVM_MUST_CHECK int cvm_cert_verify_p256_kept(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                             const uint8_t sig[64]);
/* cvm_cert_verify_p384 checks an ECDSA-SHA384 signature given as r || s (96
 * bytes, big-endian) over `len` bytes at `msg` under the certificate's key,
 * which must be P-384 (an AMD VCEK or VLEK). It keeps nothing. Returns 0,
 * CVM_E_SIGNATURE (also for a key that is not a point of P-384),
 * CVM_E_UNSUPPORTED (not a P-384 key), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_cert_verify_p384(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                        const uint8_t sig[96]);
/* cvm_cert_verify_p384_kept: see "Kept verifications" above (the caller
 * verified the certificate's chain up to a trust anchor). */
CVM_MUST_CHECK int cvm_cert_verify_p384_kept(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                             const uint8_t sig[96]);

/* cvm_ecdsa_fast is true when this build verifies ECDSA P-256 and P-384
 * signatures with its own arithmetic on OpenSSL's EC point operations, with
 * the kept tables above (CMake CVM_FAST_ECDSA=ON, the default), and false
 * when every ECDSA verification goes to OpenSSL's EVP (CVM_FAST_ECDSA=OFF).
 * Both give the same verdict on every input. */
bool cvm_ecdsa_fast(void);

/* The type of a certificate's public key. */
enum cvm_key_type {
	CVM_KEY_OTHER = 0,
	CVM_KEY_RSA,
	CVM_KEY_EC_P256,
	CVM_KEY_EC_P384,
};
/* cvm_cert_key_type gives the type of the certificate's public key and, for
 * RSA, the modulus size in bits (0 otherwise). */
enum cvm_key_type cvm_cert_key_type(const struct cvm_cert *c, unsigned *bits);
/* cvm_cert_signed_rsa_pss_sha384 is true when the certificate's signature
 * algorithm is RSASSA-PSS with SHA-384, MGF1 with SHA-384, a 48-byte salt
 * and the standard trailer, as AMD signs its SEV certificates. It checks
 * the algorithm identifier only, not the signature. */
bool cvm_cert_signed_rsa_pss_sha384(const struct cvm_cert *c);
/* cvm_cert_ext lends the contents of the extension with the dotted `oid`
 * (its OCTET STRING value, to be read with struct cvm_rd). CVM_E_FORMAT when
 * absent or present twice. */
CVM_MUST_CHECK int cvm_cert_ext(const struct cvm_cert *c, const char *oid, struct cvm_rd *out);

/* cvm_cert_cache_keep keeps the parsed form of `c` process-wide (the last
 * CVM_CERT_CACHE_MAX such certificates, thread-safe), so that a later
 * cvm_cert_parse or cvm_cert_pool_parse_pem of the very same DER bytes takes it
 * instead of parsing again (OpenSSL 3.0 spends about 100 us parsing one).
 * Callers keep only certificates that verified up to a trust anchor. It
 * saves parsing, never a check: dates, signatures and CRLs are checked by
 * every verification as before. */
#define CVM_CERT_CACHE_MAX 32
void cvm_cert_cache_keep(struct cvm_cert *c);

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
/* cvm_crl_check_issued_kept: see "Kept verifications" above. */
CVM_MUST_CHECK int cvm_crl_check_issued_kept(const struct cvm_crl *crl, const struct cvm_cert *issuer);
/* cvm_crl_cache_keep is cvm_cert_cache_keep for CRLs (the last
 * CVM_CRL_CACHE_MAX CRLs of at most CVM_CRL_CACHE_BYTES bytes each, by their
 * exact bytes as given to cvm_crl_parse). */
#define CVM_CRL_CACHE_MAX 8
#define CVM_CRL_CACHE_BYTES ((size_t)256 * 1024)
void cvm_crl_cache_keep(struct cvm_crl *crl);
/* cvm_crl_signed_rsa_pss_sha384 is cvm_cert_signed_rsa_pss_sha384 for a CRL. */
bool cvm_crl_signed_rsa_pss_sha384(const struct cvm_crl *crl);
/* cvm_crl_revokes is true when `c` (by issuer name and serial) is listed. */
bool cvm_crl_revokes(const struct cvm_crl *crl, const struct cvm_cert *c);

/* TPM signatures (lib/crypto/tpmsig.c): ECDSA over NIST P-256/P-384 and
 * RSASSA-PKCS1-v1_5 / RSASSA-PSS, each with SHA-256 or SHA-384 (hashes are
 * enum cvm_digest_alg values, i.e. TPM_ALG_IDs). Curves and schemes are
 * named by their TPM IDs too, as TPMT_PUBLIC and TPMT_SIGNATURE carry them. */
#define CVM_TPMSIG_ECC_NIST_P256 0x0003 /* TPM_ECC_NIST_P256 */
#define CVM_TPMSIG_ECC_NIST_P384 0x0004 /* TPM_ECC_NIST_P384 */
#define CVM_TPMSIG_RSASSA 0x0014        /* TPM_ALG_RSASSA */
#define CVM_TPMSIG_RSAPSS 0x0016        /* TPM_ALG_RSAPSS */
#define CVM_TPMSIG_ECDSA 0x0018         /* TPM_ALG_ECDSA */
#define CVM_TPMSIG_RSA_BITS_MIN 2048
#define CVM_TPMSIG_RSA_BITS_MAX 4096

enum cvm_tpmsig_key_type { CVM_TPMSIG_KEY_RSA = 1, CVM_TPMSIG_KEY_ECC = 2 };

/* struct cvm_tpmsig_key is an RSA (2048 to 4096 bits) or P-256/P-384 public key. */
struct cvm_tpmsig_key;
/* cvm_tpmsig_key_rsa builds a key from a big-endian modulus and an exponent
 * (0 means 65537, as in TPMS_RSA_PARMS). Returns 0, CVM_E_FORMAT (even
 * modulus, bad exponent), CVM_E_UNSUPPORTED (size) or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_tpmsig_key_rsa(const uint8_t *n, size_t n_len, uint32_t exponent,
                                      struct cvm_tpmsig_key **out);
/* cvm_tpmsig_key_ecc builds a key from big-endian x and y of at most the
 * field size each (shorter values are left-padded with zeros). Returns 0,
 * CVM_E_UNSUPPORTED (curve), CVM_E_FORMAT (sizes, point not on the curve) or
 * CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_tpmsig_key_ecc(uint16_t curve, const uint8_t *x, size_t x_len, const uint8_t *y,
                                      size_t y_len, struct cvm_tpmsig_key **out);
/* cvm_tpmsig_key_spki reads a SubjectPublicKeyInfo in DER (exactly `len`
 * bytes) or PEM (the first PUBLIC KEY block). Returns 0, CVM_E_FORMAT,
 * CVM_E_TOO_LARGE or CVM_E_UNSUPPORTED (another key type or size). */
CVM_MUST_CHECK int cvm_tpmsig_key_spki(const uint8_t *buf, size_t len, struct cvm_tpmsig_key **out);
void cvm_tpmsig_key_free(struct cvm_tpmsig_key *k);
enum cvm_tpmsig_key_type cvm_tpmsig_key_type(const struct cvm_tpmsig_key *k);
/* cvm_tpmsig_key_bits is the modulus size (RSA) or the field size (ECC). */
unsigned cvm_tpmsig_key_bits(const struct cvm_tpmsig_key *k);
/* cvm_tpmsig_key_curve is CVM_TPMSIG_ECC_NIST_P256/P384, or 0 for RSA. */
uint16_t cvm_tpmsig_key_curve(const struct cvm_tpmsig_key *k);
bool cvm_tpmsig_key_equal(const struct cvm_tpmsig_key *a, const struct cvm_tpmsig_key *b);
/* cvm_tpmsig_key_pem writes the key as a PEM SubjectPublicKeyInfo into a new
 * NUL-terminated string the caller frees. */
CVM_MUST_CHECK int cvm_tpmsig_key_pem(const struct cvm_tpmsig_key *k, char **out);
/* cvm_tpmsig_verify_ecdsa checks an ECDSA signature (r, s) over H(msg).
 * Returns 0, CVM_E_SIGNATURE, CVM_E_MISMATCH (not an ECC key) or
 * CVM_E_UNSUPPORTED (hash). */
CVM_MUST_CHECK int cvm_tpmsig_verify_ecdsa(const struct cvm_tpmsig_key *k, uint16_t hash, const uint8_t *msg,
                                           size_t len, const uint8_t *r, size_t r_len, const uint8_t *s,
                                           size_t s_len);
/* cvm_tpmsig_verify_rsa checks an RSASSA or RSAPSS (MGF1 with the same hash,
 * any salt length) signature over H(msg). Returns 0, CVM_E_SIGNATURE,
 * CVM_E_MISMATCH (not an RSA key) or CVM_E_UNSUPPORTED (scheme, hash). */
CVM_MUST_CHECK int cvm_tpmsig_verify_rsa(const struct cvm_tpmsig_key *k, uint16_t scheme, uint16_t hash,
                                         const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len);

/* Public keys that sign precomputed digests (lib/crypto/pubkey.c), as IMA's
 * signature format v2 uses them: RSA PKCS#1 v1.5 (the digest wrapped in its
 * DigestInfo) and ECDSA (a DER ECDSA-Sig-Value), keys read from PEM or DER. */
#define CVM_PUBKEY_FILE_MAX 65536 /* bytes of a key or certificate file */
enum cvm_pubkey_type { CVM_PUBKEY_RSA = 1, CVM_PUBKEY_EC = 2 };
/* struct cvm_pubkey is a parsed RSA (2048 bits or more) or EC (named curve)
 * public key. */
struct cvm_pubkey;
/* cvm_pubkey_parse reads the first key in `len` bytes at `buf`: a PEM
 * "CERTIFICATE" or "PUBLIC KEY" (SubjectPublicKeyInfo) block, or either in
 * DER (exactly `len` bytes). A certificate only carries the key: its
 * signature, chain, validity and usage are not checked. The caller frees
 * *out with cvm_pubkey_free. Returns 0, CVM_E_FORMAT, CVM_E_TOO_LARGE
 * (more than CVM_PUBKEY_FILE_MAX bytes), CVM_E_UNSUPPORTED (another key
 * type, RSA below 2048 bits) or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_pubkey_parse(const uint8_t *buf, size_t len, struct cvm_pubkey **out);
void cvm_pubkey_free(struct cvm_pubkey *k);
enum cvm_pubkey_type cvm_pubkey_type(const struct cvm_pubkey *k);
/* cvm_pubkey_bits is the RSA modulus or EC group order size in bits. */
unsigned cvm_pubkey_bits(const struct cvm_pubkey *k);
/* cvm_pubkey_spki_sha1 writes the SHA-1 of the subjectPublicKey BIT STRING
 * contents (RFC 5280 4.2.1.2, method 1): the key identifier most CAs and
 * evmctl use. */
void cvm_pubkey_spki_sha1(const struct cvm_pubkey *k, uint8_t out[20]);
/* cvm_pubkey_skid lends the subjectKeyIdentifier of the certificate the key
 * came from; false when it came from a bare key or the certificate has
 * none. */
bool cvm_pubkey_skid(const struct cvm_pubkey *k, const uint8_t **id, size_t *len);
/* cvm_pubkey_verify_digest checks `sig` over `digest`, a digest already
 * computed with `alg` (a TPM_ALG_ID; digest_len must be cvm_digest_len(alg)):
 * RSA PKCS#1 v1.5 with alg's DigestInfo, or ECDSA with a DER signature. It
 * hashes nothing. Returns 0, CVM_E_SIGNATURE (also for a malformed
 * signature), CVM_E_UNSUPPORTED (alg), CVM_E_INVAL or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_pubkey_verify_digest(const struct cvm_pubkey *k, uint16_t alg, const uint8_t *digest,
                                            size_t digest_len, const uint8_t *sig, size_t sig_len);

/* cvm_crypto_errstr returns the last libcrypto error as text and clears the queue. */
const char *cvm_crypto_errstr(void);

#endif
