/* The crypto layer: the only part of cvmkit that includes OpenSSL. Everything
 * above it sees opaque certificates and CRLs and fixed-size raw keys. */
#ifndef CVMKIT_CRYPTO_H
#define CVMKIT_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"
#include "secret.h"

#define CVM_CHAIN_CERTS_MAX 8
/* The largest DER certificate a PEM chain may hold. */
#define CVM_CERT_DER_MAX ((size_t)64 * 1024)

CVM_API void cvm_sha256(const void *p, size_t n, uint8_t out[32]);
CVM_API void cvm_sha384(const void *p, size_t n, uint8_t out[48]);

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
CVM_API size_t cvm_digest_len(uint16_t alg);
/* cvm_digest_name returns the lower-case name of `alg` as Linux and
 * tpm2-tools spell it ("sha1", "sha256", "sha384", "sha512", "sm3_256"), or
 * NULL when it is not supported. The string is static. */
CVM_API const char *cvm_digest_name(uint16_t alg);
/* cvm_digest_from_name finds the algorithm called `name` (case-insensitive;
 * the names of cvm_digest_name, plus "sm3" as IMA writes it). Returns 0 or
 * CVM_E_UNSUPPORTED. */
CVM_API CVM_MUST_CHECK int cvm_digest_from_name(const char *name, enum cvm_digest_alg *out);

/* cvm_digest hashes the `n` bytes at `p` with `alg` in one call and writes
 * cvm_digest_len(alg) bytes to `out`, which holds `out_len` bytes. Returns 0,
 * CVM_E_UNSUPPORTED (unknown alg), CVM_E_INVAL (out_len too small) or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_digest(uint16_t alg, const void *p, size_t n, uint8_t *out, size_t out_len);

/* struct cvm_digest_ctx is an incremental digest of one algorithm. It may be
 * reused for any number of messages: cvm_digest_final starts a new message.
 * It is not safe to share between threads. */
struct cvm_digest_ctx;
/* cvm_digest_ctx_new makes a context for `alg`, ready for a first message.
 * The caller frees it with cvm_digest_ctx_free. Returns 0,
 * CVM_E_UNSUPPORTED, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_digest_ctx_new(uint16_t alg, struct cvm_digest_ctx **out);
/* cvm_digest_ctx_free frees `ctx`; NULL is a no-op. */
CVM_API void cvm_digest_ctx_free(struct cvm_digest_ctx *ctx);
/* cvm_digest_ctx_alg returns the algorithm `ctx` was made for. */
CVM_API enum cvm_digest_alg cvm_digest_ctx_alg(const struct cvm_digest_ctx *ctx);
/* cvm_digest_update adds `n` bytes to the current message. Returns 0 or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_digest_update(struct cvm_digest_ctx *ctx, const void *p, size_t n);
/* cvm_digest_final writes the current message's digest
 * (cvm_digest_len bytes) to `out`, which holds `out_len` bytes, and starts
 * a new, empty message. Returns 0, CVM_E_INVAL (out_len too small; the
 * message is kept) or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_digest_final(struct cvm_digest_ctx *ctx, uint8_t *out, size_t out_len);
/* cvm_digest_extend performs a TPM PCR extend with `ctx`'s algorithm:
 * reg := H(reg || digest), where `reg` and `digest` both hold
 * cvm_digest_len bytes (they may be the same buffer). Any message pending in
 * `ctx` is discarded first. Returns 0 or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_digest_extend(struct cvm_digest_ctx *ctx, uint8_t *reg, const uint8_t *digest);

/* struct cvm_p256_key is a parsed P-256 public key, reusable across
 * verifications (parsing it costs about as much as a verification). */
struct cvm_p256_key;
/* cvm_p256_key_new parses an uncompressed point given as x || y (64 bytes).
 * Returns 0, CVM_E_FORMAT (not on the curve) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_p256_key_new(const uint8_t xy[64], struct cvm_p256_key **out);
CVM_API void cvm_p256_key_free(struct cvm_p256_key *k);
/* cvm_p256_verify checks an ECDSA-SHA256 signature given as r || s (64 bytes,
 * big-endian). Returns 0 or CVM_E_SIGNATURE. */
CVM_API CVM_MUST_CHECK int cvm_p256_verify(const struct cvm_p256_key *k, const uint8_t *msg, size_t len,
                                           const uint8_t sig[64]);

/* struct cvm_cert is a parsed X.509 certificate. */
struct cvm_cert;

/* cvm_cert_parse reads one certificate in DER or PEM. */
CVM_API CVM_MUST_CHECK int cvm_cert_parse(const uint8_t *buf, size_t len, struct cvm_cert **out);
/* cvm_certs_parse_pem reads a PEM chain (at most CVM_CHAIN_CERTS_MAX
 * certificates, at least one; trailing NUL bytes are ignored, any other
 * non-PEM content is an error) into a new array the caller frees with
 * cvm_certs_free. */
CVM_API CVM_MUST_CHECK int cvm_certs_parse_pem(const uint8_t *pem, size_t len, struct cvm_cert ***out,
                                               size_t *count);
CVM_API void cvm_certs_free(struct cvm_cert **certs, size_t count);
CVM_API void cvm_cert_free(struct cvm_cert *c);

/* Validity window in Unix seconds. */
CVM_API int64_t cvm_cert_not_before(const struct cvm_cert *c);
CVM_API int64_t cvm_cert_not_after(const struct cvm_cert *c);
/* cvm_cert_is_ca is true when the certificate may issue certificates:
 * basicConstraints says CA:TRUE and keyUsage, when present, allows
 * keyCertSign (OpenSSL's X509_check_ca returning 1). */
CVM_API bool cvm_cert_is_ca(const struct cvm_cert *c);
/* cvm_cert_claims_ca is true when basicConstraints says CA:TRUE, whatever
 * keyUsage says: an end entity must not claim it. */
CVM_API bool cvm_cert_claims_ca(const struct cvm_cert *c);
/* cvm_cert_has_unknown_critical is true when a critical extension is one
 * OpenSSL does not understand (such a certificate must be rejected). */
CVM_API bool cvm_cert_has_unknown_critical(const struct cvm_cert *c);
/* Key usage bits (RFC 5280, 4.2.1.3), as cvm_cert_key_usage gives them. */
#define CVM_KU_DIGITAL_SIGNATURE 0x0080u
#define CVM_KU_NON_REPUDIATION 0x0040u
#define CVM_KU_KEY_ENCIPHERMENT 0x0020u
#define CVM_KU_DATA_ENCIPHERMENT 0x0010u
#define CVM_KU_KEY_AGREEMENT 0x0008u
#define CVM_KU_KEY_CERT_SIGN 0x0004u
#define CVM_KU_CRL_SIGN 0x0002u
#define CVM_KU_ENCIPHER_ONLY 0x0001u
#define CVM_KU_DECIPHER_ONLY 0x8000u
/* cvm_cert_key_usage is true when the certificate has a keyUsage extension,
 * and gives its bits (CVM_KU_*) in `*bits`; false (and 0) when it has none.
 * A malformed extension gives true and 0: no usage at all. */
CVM_API bool cvm_cert_key_usage(const struct cvm_cert *c, uint32_t *bits);
/* struct cvm_name_attr is one attribute of a distinguished name: its short
 * type name ("CN", "O", "OU", "L", "ST", "C") and its value in UTF-8. */
struct cvm_name_attr {
	const char *type;
	const char *value;
};
/* cvm_cert_subject_is is true when the certificate's subject is exactly the
 * `n` attributes of `attrs`, each a relative distinguished name of its own,
 * in that order, each value byte for byte (held as a UTF8String,
 * PrintableString or IA5String; case and spaces count). No attribute may be
 * missing, added, moved or merged into another's RDN. */
CVM_API bool cvm_cert_subject_is(const struct cvm_cert *c, const struct cvm_name_attr *attrs, size_t n);
CVM_API bool cvm_cert_equal(const struct cvm_cert *a, const struct cvm_cert *b);
/* cvm_cert_subject / _issuer write the one-line distinguished name. */
CVM_API void cvm_cert_subject(const struct cvm_cert *c, char *buf, size_t len);
CVM_API void cvm_cert_issuer(const struct cvm_cert *c, char *buf, size_t len);
/* cvm_cert_serial writes the serial number in hex. */
CVM_API void cvm_cert_serial(const struct cvm_cert *c, char *buf, size_t len);
/* cvm_cert_der gives the certificate's DER encoding (borrowed). */
CVM_API void cvm_cert_der(const struct cvm_cert *c, const uint8_t **der, size_t *len);
/* cvm_cert_spki writes the certificate's SubjectPublicKeyInfo DER into a new
 * buffer the caller frees. Returns 0, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_cert_spki(const struct cvm_cert *c, uint8_t **out, size_t *out_len);

/* cvm_cert_check_issued checks that `issuer`'s subject is `child`'s issuer,
 * that `issuer` may sign certificates (CA:TRUE), and `child`'s signature
 * under `issuer`'s key. Returns 0, CVM_E_CHAIN (names or CA flag) or
 * CVM_E_SIGNATURE. */
CVM_API CVM_MUST_CHECK int cvm_cert_check_issued(const struct cvm_cert *child, const struct cvm_cert *issuer);
/* cvm_cert_verify_p256 checks an ECDSA-SHA256 r || s signature under the
 * certificate's key, which must be P-256. Returns 0, CVM_E_SIGNATURE or
 * CVM_E_UNSUPPORTED. */
CVM_API CVM_MUST_CHECK int cvm_cert_verify_p256(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                                const uint8_t sig[64]);
/* cvm_cert_verify_p384 checks an ECDSA-SHA384 signature given as r || s (96
 * bytes, big-endian) over `len` bytes at `msg` under the certificate's key,
 * which must be P-384 (an AMD VCEK or VLEK). It keeps nothing. Returns 0,
 * CVM_E_SIGNATURE (also for a key that is not a point of P-384),
 * CVM_E_UNSUPPORTED (not a P-384 key), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_cert_verify_p384(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                                const uint8_t sig[96]);

/* cvm_ecdsa_fast is true when this build verifies ECDSA P-256 and P-384
 * signatures with its own arithmetic on OpenSSL's EC point operations, with
 * per-key tables for keys the library authenticated (CMake CVM_FAST_ECDSA=ON,
 * the default), and false
 * when every ECDSA verification goes to OpenSSL's EVP (CVM_FAST_ECDSA=OFF).
 * Both give the same verdict on every input. */
CVM_API bool cvm_ecdsa_fast(void);

/* The type of a certificate's public key. */
enum cvm_key_type {
	CVM_KEY_OTHER = 0,
	CVM_KEY_RSA,
	CVM_KEY_EC_P256,
	CVM_KEY_EC_P384,
};
/* cvm_cert_key_type gives the type of the certificate's public key and, for
 * RSA, the modulus size in bits (0 otherwise). */
CVM_API enum cvm_key_type cvm_cert_key_type(const struct cvm_cert *c, unsigned *bits);
/* cvm_cert_signed_rsa_pss_sha384 is true when the certificate's signature
 * algorithm is RSASSA-PSS with SHA-384, MGF1 with SHA-384, a 48-byte salt
 * and the standard trailer, as AMD signs its SEV certificates. It checks
 * the algorithm identifier only, not the signature. */
CVM_API bool cvm_cert_signed_rsa_pss_sha384(const struct cvm_cert *c);
/* cvm_cert_ext lends the contents of the extension with the dotted `oid`
 * (its OCTET STRING value, to be read with struct cvm_rd). CVM_E_FORMAT when
 * absent or present twice. */
CVM_API CVM_MUST_CHECK int cvm_cert_ext(const struct cvm_cert *c, const char *oid, struct cvm_rd *out);

/* struct cvm_crl is a parsed certificate revocation list. */
struct cvm_crl;
/* cvm_crl_parse reads a CRL in DER or PEM. */
CVM_API CVM_MUST_CHECK int cvm_crl_parse(const uint8_t *buf, size_t len, struct cvm_crl **out);
CVM_API void cvm_crl_free(struct cvm_crl *crl);
CVM_API int64_t cvm_crl_this_update(const struct cvm_crl *crl);
/* cvm_crl_next_update is INT64_MAX when the CRL has none. */
CVM_API int64_t cvm_crl_next_update(const struct cvm_crl *crl);
CVM_API void cvm_crl_issuer(const struct cvm_crl *crl, char *buf, size_t len);
/* cvm_crl_check_issued checks that `issuer` issued the CRL and its signature. */
CVM_API CVM_MUST_CHECK int cvm_crl_check_issued(const struct cvm_crl *crl, const struct cvm_cert *issuer);
/* cvm_crl_signed_rsa_pss_sha384 is cvm_cert_signed_rsa_pss_sha384 for a CRL. */
CVM_API bool cvm_crl_signed_rsa_pss_sha384(const struct cvm_crl *crl);
/* cvm_crl_revokes is true when `c` (by issuer name and serial) is listed. */
CVM_API bool cvm_crl_revokes(const struct cvm_crl *crl, const struct cvm_cert *c);

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
CVM_API CVM_MUST_CHECK int cvm_tpmsig_key_rsa(const uint8_t *n, size_t n_len, uint32_t exponent,
                                              struct cvm_tpmsig_key **out);
/* cvm_tpmsig_key_ecc builds a key from big-endian x and y of at most the
 * field size each (shorter values are left-padded with zeros). Returns 0,
 * CVM_E_UNSUPPORTED (curve), CVM_E_FORMAT (sizes, point not on the curve) or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tpmsig_key_ecc(uint16_t curve, const uint8_t *x, size_t x_len,
                                              const uint8_t *y, size_t y_len, struct cvm_tpmsig_key **out);
/* cvm_tpmsig_key_spki reads a SubjectPublicKeyInfo in DER (exactly `len`
 * bytes) or PEM (the first PUBLIC KEY block). Returns 0, CVM_E_FORMAT,
 * CVM_E_TOO_LARGE or CVM_E_UNSUPPORTED (another key type or size). */
CVM_API CVM_MUST_CHECK int cvm_tpmsig_key_spki(const uint8_t *buf, size_t len, struct cvm_tpmsig_key **out);
CVM_API void cvm_tpmsig_key_free(struct cvm_tpmsig_key *k);
CVM_API enum cvm_tpmsig_key_type cvm_tpmsig_key_type(const struct cvm_tpmsig_key *k);
/* cvm_tpmsig_key_bits is the modulus size (RSA) or the field size (ECC). */
CVM_API unsigned cvm_tpmsig_key_bits(const struct cvm_tpmsig_key *k);
/* cvm_tpmsig_key_curve is CVM_TPMSIG_ECC_NIST_P256/P384, or 0 for RSA. */
CVM_API uint16_t cvm_tpmsig_key_curve(const struct cvm_tpmsig_key *k);
CVM_API bool cvm_tpmsig_key_equal(const struct cvm_tpmsig_key *a, const struct cvm_tpmsig_key *b);
/* cvm_tpmsig_key_pem writes the key as a PEM SubjectPublicKeyInfo into a new
 * NUL-terminated string the caller frees. */
CVM_API CVM_MUST_CHECK int cvm_tpmsig_key_pem(const struct cvm_tpmsig_key *k, char **out);
/* cvm_tpmsig_verify_ecdsa checks an ECDSA signature (r, s) over H(msg).
 * Returns 0, CVM_E_SIGNATURE, CVM_E_MISMATCH (not an ECC key) or
 * CVM_E_UNSUPPORTED (hash). */
CVM_API CVM_MUST_CHECK int cvm_tpmsig_verify_ecdsa(const struct cvm_tpmsig_key *k, uint16_t hash,
                                                   const uint8_t *msg, size_t len, const uint8_t *r,
                                                   size_t r_len, const uint8_t *s, size_t s_len);
/* cvm_tpmsig_verify_rsa checks an RSASSA or RSAPSS (MGF1 with the same hash,
 * any salt length) signature over H(msg). Returns 0, CVM_E_SIGNATURE,
 * CVM_E_MISMATCH (not an RSA key) or CVM_E_UNSUPPORTED (scheme, hash). */
CVM_API CVM_MUST_CHECK int cvm_tpmsig_verify_rsa(const struct cvm_tpmsig_key *k, uint16_t scheme,
                                                 uint16_t hash, const uint8_t *msg, size_t len,
                                                 const uint8_t *sig, size_t sig_len);

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
CVM_API CVM_MUST_CHECK int cvm_pubkey_parse(const uint8_t *buf, size_t len, struct cvm_pubkey **out);
CVM_API void cvm_pubkey_free(struct cvm_pubkey *k);
CVM_API enum cvm_pubkey_type cvm_pubkey_type(const struct cvm_pubkey *k);
/* cvm_pubkey_bits is the RSA modulus or EC group order size in bits. */
CVM_API unsigned cvm_pubkey_bits(const struct cvm_pubkey *k);
/* cvm_pubkey_spki_sha1 writes the SHA-1 of the subjectPublicKey BIT STRING
 * contents (RFC 5280 4.2.1.2, method 1): the key identifier most CAs and
 * evmctl use. */
CVM_API void cvm_pubkey_spki_sha1(const struct cvm_pubkey *k, uint8_t out[20]);
/* cvm_pubkey_skid lends the subjectKeyIdentifier of the certificate the key
 * came from; false when it came from a bare key or the certificate has
 * none. */
CVM_API bool cvm_pubkey_skid(const struct cvm_pubkey *k, const uint8_t **id, size_t *len);
/* cvm_pubkey_verify_digest checks `sig` over `digest`, a digest already
 * computed with `alg` (a TPM_ALG_ID; digest_len must be cvm_digest_len(alg)):
 * RSA PKCS#1 v1.5 with alg's DigestInfo, or ECDSA with a DER signature. It
 * hashes nothing. Returns 0, CVM_E_SIGNATURE (also for a malformed
 * signature), CVM_E_UNSUPPORTED (alg), CVM_E_INVAL or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_pubkey_verify_digest(const struct cvm_pubkey *k, uint16_t alg,
                                                    const uint8_t *digest, size_t digest_len,
                                                    const uint8_t *sig, size_t sig_len);

/* ==== key pairs, key agreement, KDFs and certificates ====================== */

/* Sizes of the raw keys and signatures below. */
#define CVM_K256_SECKEY_LEN 32      /* secp256k1 secret scalar, big-endian */
#define CVM_K256_PUBKEY_LEN 33      /* SEC1 compressed point */
#define CVM_K256_PUBKEY_FULL_LEN 65 /* SEC1 uncompressed point */
#define CVM_K256_SIG_LEN 64         /* r || s */
#define CVM_K256_RSIG_LEN 65        /* r || s || v, v = recovery id 0..3 */
#define CVM_ED25519_SEED_LEN 32     /* RFC 8032 private key ("seed") */
#define CVM_ED25519_PUBKEY_LEN 32
#define CVM_ED25519_SIG_LEN 64
#define CVM_X25519_KEY_LEN 32
#define CVM_P256_SCALAR_LEN 32
#define CVM_P256_PKCS8_DER_LEN 138 /* the canonical PKCS#8 encoding, see below */

/* cvm_hkdf_sha256 is RFC 5869 HKDF with SHA-256 (OpenSSL EVP_KDF): extract
 * with `salt`, expand with `info` to `out_len` bytes (1 .. 255 * 32). The
 * output is as secret as `ikm`. Returns 0, CVM_E_INVAL or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                                           size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                                           size_t out_len);

/* cvm_sha512_tagged writes SHA-512(tag || ":" || content) to `out`: dstack's
 * "content type" report_data (tags "ratls-cert", "app-data", ...; spec §6.2),
 * which fills the 64 bytes of a TDX REPORTDATA exactly. `tag` is a C string.
 * Returns 0 or CVM_E_CRYPTO (out of memory inside OpenSSL). */
CVM_API CVM_MUST_CHECK int cvm_sha512_tagged(const char *tag, const uint8_t *content, size_t len,
                                             uint8_t out[64]);

/* -- secp256k1 (libsecp256k1) -- */

/* cvm_k256_seckey_check returns 0 when `sk` is a valid secret scalar
 * (0 < sk < n), else CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_k256_seckey_check(const uint8_t sk[CVM_K256_SECKEY_LEN]);
/* cvm_k256_pubkey writes the compressed public key of `sk`. Returns 0,
 * CVM_E_FORMAT (invalid scalar) or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_k256_pubkey(const uint8_t sk[CVM_K256_SECKEY_LEN],
                                           uint8_t out[CVM_K256_PUBKEY_LEN]);
/* cvm_k256_pubkey_parse reads a SEC1 point, compressed (33 bytes, 02/03) or
 * uncompressed (65 bytes, 04), and writes it compressed. Hybrid encodings
 * (06/07) and points off the curve give CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_k256_pubkey_parse(const uint8_t *pub, size_t len,
                                                 uint8_t out[CVM_K256_PUBKEY_LEN]);
/* cvm_k256_sign signs the 32-byte `digest` as is (no hashing) with ECDSA:
 * RFC 6979 deterministic nonce, low-S, output r || s. Returns 0,
 * CVM_E_FORMAT (invalid scalar) or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_k256_sign(const uint8_t sk[CVM_K256_SECKEY_LEN], const uint8_t digest[32],
                                         uint8_t out[CVM_K256_SIG_LEN]);
/* cvm_k256_sign_recoverable is cvm_k256_sign plus the recovery id: output
 * r || s || v with v in 0..3 (0 or 1 in practice), never 27/28 and with no
 * Ethereum message prefix. */
CVM_API CVM_MUST_CHECK int cvm_k256_sign_recoverable(const uint8_t sk[CVM_K256_SECKEY_LEN],
                                                     const uint8_t digest[32],
                                                     uint8_t out[CVM_K256_RSIG_LEN]);
/* cvm_k256_verify checks an r || s signature over the 32-byte `digest` under
 * the SEC1 key `pub` (33 or 65 bytes). High-S signatures are rejected, as the
 * Rust k256 crate that dstack uses rejects them. Returns 0, CVM_E_SIGNATURE,
 * or CVM_E_FORMAT when the key is not a point or r or s is 0 or >= n. */
CVM_API CVM_MUST_CHECK int cvm_k256_verify(const uint8_t *pub, size_t pub_len, const uint8_t digest[32],
                                           const uint8_t sig[CVM_K256_SIG_LEN]);
/* cvm_k256_recover recovers the compressed public key that made the
 * r || s || v signature `sig` over `digest`. Returns 0, CVM_E_FORMAT (v > 3,
 * r or s out of range) or CVM_E_SIGNATURE (no key recovers). It proves only
 * that someone holding the returned key signed: compare it with the key you
 * expect. */
CVM_API CVM_MUST_CHECK int cvm_k256_recover(const uint8_t digest[32], const uint8_t sig[CVM_K256_RSIG_LEN],
                                            uint8_t out[CVM_K256_PUBKEY_LEN]);

/* -- Ed25519 and X25519 (OpenSSL) -- */

/* cvm_ed25519_pubkey writes the RFC 8032 public key of the 32-byte `seed`. */
CVM_API CVM_MUST_CHECK int cvm_ed25519_pubkey(const uint8_t seed[CVM_ED25519_SEED_LEN],
                                              uint8_t out[CVM_ED25519_PUBKEY_LEN]);
/* cvm_ed25519_sign writes the (deterministic) Ed25519 signature of `msg`. */
CVM_API CVM_MUST_CHECK int cvm_ed25519_sign(const uint8_t seed[CVM_ED25519_SEED_LEN], const uint8_t *msg,
                                            size_t len, uint8_t out[CVM_ED25519_SIG_LEN]);
/* cvm_ed25519_verify returns 0 or CVM_E_SIGNATURE. A `pub` that is not a
 * valid point also gives CVM_E_SIGNATURE (OpenSSL does not tell it apart). */
CVM_API CVM_MUST_CHECK int cvm_ed25519_verify(const uint8_t pub[CVM_ED25519_PUBKEY_LEN], const uint8_t *msg,
                                              size_t len, const uint8_t sig[CVM_ED25519_SIG_LEN]);
/* cvm_x25519_pubkey writes X25519(sk, 9); `sk` is clamped inside. */
CVM_API CVM_MUST_CHECK int cvm_x25519_pubkey(const uint8_t sk[CVM_X25519_KEY_LEN],
                                             uint8_t out[CVM_X25519_KEY_LEN]);
/* cvm_x25519 writes the shared secret X25519(sk, peer) to `out` (secret:
 * the caller wipes it). An all-zero result (a low-order `peer`) gives
 * CVM_E_FORMAT, as dstack rejects it. */
CVM_API CVM_MUST_CHECK int cvm_x25519(const uint8_t sk[CVM_X25519_KEY_LEN],
                                      const uint8_t peer[CVM_X25519_KEY_LEN],
                                      uint8_t out[CVM_X25519_KEY_LEN]);

/* -- P-256 key pairs (OpenSSL) -- */

/* struct cvm_p256_keypair is a P-256 private key with its public key. It
 * keeps the scalar in a struct cvm_secret; cvm_p256_keypair_free wipes it. */
struct cvm_p256_keypair;

/* cvm_p256_keypair_from_scalar makes a key pair from the big-endian scalar
 * `d`. Returns 0, CVM_E_FORMAT (d = 0 or d >= n), CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_p256_keypair_from_scalar(const uint8_t d[CVM_P256_SCALAR_LEN],
                                                        struct cvm_p256_keypair **out);
/* cvm_p256_keypair_generate makes a fresh random key pair. */
CVM_API CVM_MUST_CHECK int cvm_p256_keypair_generate(struct cvm_p256_keypair **out);
/* cvm_p256_keypair_from_pem reads one PEM block, "PRIVATE KEY" (PKCS#8) or
 * "EC PRIVATE KEY" (SEC1), holding a P-256 key (nothing but whitespace may
 * follow it). A public key embedded in the encoding must match the scalar.
 * Intermediate copies are wiped. Returns 0, CVM_E_FORMAT, CVM_E_UNSUPPORTED
 * (another curve or algorithm), CVM_E_TOO_LARGE or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_p256_keypair_from_pem(const char *pem, size_t len,
                                                     struct cvm_p256_keypair **out);
/* cvm_p256_keypair_free wipes and frees `kp`; NULL is a no-op. */
CVM_API void cvm_p256_keypair_free(struct cvm_p256_keypair *kp);
/* cvm_p256_keypair_public writes the public point as x || y. */
CVM_API void cvm_p256_keypair_public(const struct cvm_p256_keypair *kp, uint8_t xy[64]);
/* cvm_p256_keypair_spki writes the SubjectPublicKeyInfo DER (91 bytes) into
 * a new buffer the caller frees. */
CVM_API CVM_MUST_CHECK int cvm_p256_keypair_spki(const struct cvm_p256_keypair *kp, uint8_t **out,
                                                 size_t *out_len);
/* cvm_p256_keypair_pkcs8 writes the canonical 138-byte PKCS#8 DER that
 * dstack hashes (and that rcgen/ring, dstack and OpenSSL 3 all produce):
 *   30 81 87 | 02 01 00 | 30 13 06 07 2a8648ce3d0201 06 08 2a8648ce3d030107 |
 *   04 6d 30 6b 02 01 01 04 20 <d> a1 44 03 42 00 04 <x> <y>
 * i.e. ECPrivateKey v1 without [0] parameters and with the [1] public key.
 * The output is secret: the caller wipes it. */
CVM_API void cvm_p256_keypair_pkcs8(const struct cvm_p256_keypair *kp, uint8_t out[CVM_P256_PKCS8_DER_LEN]);
/* cvm_p256_keypair_pkcs8_pem writes that DER as a "PRIVATE KEY" PEM block
 * (64-column base64, LF line ends, trailing LF) into a new secret of exactly
 * the text's length (no NUL terminator). */
CVM_API CVM_MUST_CHECK int cvm_p256_keypair_pkcs8_pem(const struct cvm_p256_keypair *kp,
                                                      struct cvm_secret **out);
/* cvm_p256_keypair_sign signs SHA-256(msg) with ECDSA and writes r || s. The
 * nonce is random (OpenSSL), so two signatures of one message differ. */
CVM_API CVM_MUST_CHECK int cvm_p256_keypair_sign(const struct cvm_p256_keypair *kp, const uint8_t *msg,
                                                 size_t len, uint8_t sig[64]);

/* -- X.509 certificates (OpenSSL) -- */

#define CVM_CERT_ALT_NAMES_MAX 64
#define CVM_CERT_EXTS_MAX 16
#define CVM_CERT_SERIAL_MAX 20

/* struct cvm_cert_ext_spec is one extra extension: `value` is the content of
 * extnValue, i.e. the DER the extension carries (dstack's RA-TLS extensions
 * carry DER(OCTET STRING(payload)) there; spec §6.1). */
struct cvm_cert_ext_spec {
	const char *oid; /* dotted, e.g. "1.3.6.1.4.1.62397.1.8" */
	bool critical;
	const uint8_t *value;
	size_t value_len;
};

/* struct cvm_cert_template describes a certificate to make (the profile of
 * dstack's rcgen certificates, spec §6.3). Every pointer is borrowed. */
struct cvm_cert_template {
	const char *common_name;      /* required, non-empty UTF-8 */
	const char *organization;     /* NULL: no O= attribute */
	const char *const *alt_names; /* DNS names, or IP literals (v4/v6), which become IP SANs */
	size_t alt_name_count;        /* at most CVM_CERT_ALT_NAMES_MAX */
	int64_t not_before;           /* Unix seconds; not_before < not_after */
	int64_t not_after;
	bool is_ca;             /* basicConstraints CA:TRUE (critical), keyCertSign + cRLSign */
	int path_len;           /* CA only: pathLenConstraint, or -1 for none */
	bool usage_server_auth; /* extendedKeyUsage serverAuth */
	bool usage_client_auth; /* extendedKeyUsage clientAuth */
	const uint8_t *serial;  /* big-endian, 1..CVM_CERT_SERIAL_MAX bytes; NULL: 16 random bytes */
	size_t serial_len;
	const struct cvm_cert_ext_spec *exts; /* at most CVM_CERT_EXTS_MAX */
	size_t ext_count;
};

/* cvm_cert_template_init fills `t` with an empty leaf template: no names, no
 * usages, path_len -1, zero times (which cvm_cert_make rejects). */
CVM_API void cvm_cert_template_init(struct cvm_cert_template *t);

/* cvm_cert_make issues an X.509 v3 certificate for `subject`'s public key as
 * `t` describes, signed (ECDSA P-256 with SHA-256) by `issuer_key` as the
 * holder of `issuer`, or self-signed when both are NULL. It always adds
 * keyUsage (critical: digitalSignature, plus keyCertSign and cRLSign for a
 * CA), subjectKeyIdentifier, and authorityKeyIdentifier. It checks that
 * `issuer_key` is the key of `issuer` and that `issuer` is a CA, but not the
 * issuer's validity window or path length. On success *out_pem is a new
 * NUL-terminated PEM certificate ("-----BEGIN CERTIFICATE-----...") that the
 * caller frees, and *out_len its length without the NUL. Returns 0,
 * CVM_E_INVAL (bad template, key mismatch), CVM_E_TOO_LARGE, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_cert_make(const struct cvm_cert_template *t,
                                         const struct cvm_p256_keypair *subject,
                                         const struct cvm_p256_keypair *issuer_key,
                                         const struct cvm_cert *issuer, char **out_pem, size_t *out_len);

/* -- Certificate requests (OpenSSL) -- */

/* CVM_DNS_NAME_MAX is the longest DNS name in text form (RFC 1035). */
#define CVM_DNS_NAME_MAX 253

/* cvm_dns_name_ok is true when `s` is a DNS host name as a certificate
 * names it: labels of 1 to 63 letters, digits and inner hyphens, dots
 * between them, at most CVM_DNS_NAME_MAX characters, optionally after a
 * leading "*." (a wildcard). It does not look the name up. */
CVM_API bool cvm_dns_name_ok(const char *s);
/* cvm_csr_make writes a PKCS#10 certificate request (RFC 2986, DER) for the
 * public key of `kp`, signed by `kp` (ECDSA with SHA-256): subject CN =
 * names[0] (an empty subject when names[0] is longer than 64 characters),
 * and an extensionRequest with a subjectAltName of every name as a dNSName,
 * in order. The names must satisfy cvm_dns_name_ok and differ from each other
 * (1..CVM_CERT_ALT_NAMES_MAX of them). Only the public key and a signature
 * leave `kp`. *out is a new buffer the caller frees. Returns 0, CVM_E_INVAL,
 * CVM_E_TOO_LARGE, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_csr_make(const struct cvm_p256_keypair *kp, const char *const *names,
                                        size_t name_count, uint8_t **out, size_t *out_len);

#endif
