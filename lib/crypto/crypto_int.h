/* Internal helpers of lib/crypto. */
#ifndef CVM_CRYPTO_INT_H
#define CVM_CRYPTO_INT_H

#include <pthread.h>

#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>

/* A P-256 public key as x || y and as a point on OpenSSL's P-256 group. */
struct cvm_p256_pub {
	uint8_t xy[64];
	EC_POINT *q;
};

struct cvm_cert {
	X509 *x;
	int refs;
	int64_t not_before;
	int64_t not_after;
	uint8_t *der;
	size_t der_len;
	/* Set when the certificate's own key is P-256 (uncompressed). */
	bool has_p256;
	struct cvm_p256_pub p256;
	/* Set when the certificate is signed with ECDSA-SHA256 (the same
	 * algorithm inside and outside the signed part, a whole-byte BIT
	 * STRING): the signed bytes and the DER signature, inside der. */
	bool ecdsa_sha256;
	size_t tbs_off, tbs_len, sig_off, sig_len;
	/* One-line subject and issuer names (made once: the chain steps print
	 * them with every verification). */
	char subject[256];
	char issuer[256];
};

/* ECDSA verification's scalars (lib/crypto/ecdsa.c): cvm_ecdsa_begin reads
 * r, s and the digest (n bytes each, big-endian, the digest as long as the
 * order), checks 0 < r, s < order and computes u1 = e/s and u2 = r/s;
 * the caller computes u1*G + u2*Q its own way, and cvm_ecdsa_finish checks
 * that the sum's x is r modulo the order. cvm_ecdsa_end is always called.
 * Both return 0, CVM_E_SIGNATURE, CVM_E_NOMEM or CVM_E_CRYPTO. */
struct cvm_ecdsa_work {
	BN_CTX *ctx;
	BIGNUM *r, *u1, *u2;
};
int cvm_ecdsa_begin(struct cvm_ecdsa_work *w, const EC_GROUP *g, const uint8_t *rb, const uint8_t *sb,
                    const uint8_t *digest, size_t n);
int cvm_ecdsa_finish(struct cvm_ecdsa_work *w, const EC_GROUP *g, const EC_POINT *sum);
void cvm_ecdsa_end(struct cvm_ecdsa_work *w);
/* cvm_x509_ec_point copies the certificate's key when it is an uncompressed
 * point (0x04 || x || y, `len` bytes) on the curve `curve_nid`, straight
 * from the SubjectPublicKeyInfo (no EVP_PKEY export). */
bool cvm_x509_ec_point(X509 *x, int curve_nid, uint8_t *point, size_t len);

/* cvm_p256_group is OpenSSL's P-256 group (made once per process), or NULL. */
const EC_GROUP *cvm_p256_group(void);
/* cvm_p256_pub_set checks that x || y is a point on P-256 and fills `pub`
 * (freed with cvm_p256_pub_clear). Returns 0, CVM_E_FORMAT, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
int cvm_p256_pub_set(struct cvm_p256_pub *pub, const uint8_t xy[64]);
void cvm_p256_pub_clear(struct cvm_p256_pub *pub);
/* cvm_p256_verify_digest checks ECDSA r, s (32 bytes each, big-endian)
 * over a SHA-256 digest. `keep`: the caller has authenticated the key and
 * expects to see it again, so a table of its multiples may be built and kept
 * (lib/crypto/p256.c). Returns 0, CVM_E_SIGNATURE (also for any failure of
 * the arithmetic) or CVM_E_NOMEM. */
int cvm_p256_verify_digest(const struct cvm_p256_pub *pub, const uint8_t digest[32], const uint8_t rb[32],
                           const uint8_t sb[32], bool keep);
/* cvm_p256_tables_held is how many keys have a table now (for tests). */
size_t cvm_p256_tables_held(void);
/* cvm_p256_verify_der checks a DER ECDSA-Sig-Value over SHA-256(msg). */
int cvm_p256_verify_der(const struct cvm_p256_pub *pub, const uint8_t *msg, size_t len, const uint8_t *der,
                        size_t der_len, bool keep);
/* cvm_signed_der_split finds, in a DER SEQUENCE { signed TLV, algorithm TLV,
 * BIT STRING } (a certificate or CRL), the signed TLV and the signature
 * (the BIT STRING's content after its unused-bits byte, which must be 0).
 * False also when the algorithm differs, byte for byte, from the first
 * SEQUENCE inside the signed part (its own copy of the algorithm). */
bool cvm_signed_der_split(const uint8_t *der, size_t len, size_t *tbs_off, size_t *tbs_len, size_t *sig_off,
                          size_t *sig_len);

/* struct cvm_mru is a small process-wide list of reference-counted parsed
 * objects, most recently used first, each found only by its exact bytes
 * (the certificate and CRL caches). `bytes` gives an object's key bytes (a
 * NULL pointer: it cannot be kept), `ref` takes a reference and returns the
 * object, `unref` drops one. Thread-safe. */
struct cvm_mru {
	void **slot;
	size_t cap;
	pthread_mutex_t mu;
	void (*bytes)(const void *obj, const uint8_t **p, size_t *len);
	void *(*ref)(void *obj);
	void (*unref)(void *obj);
};
#define CVM_MRU_INIT(slots, bytes_fn, ref_fn, unref_fn)                                                    \
	{                                                                                                  \
		(void **)(slots), sizeof(slots) / sizeof((slots)[0]), PTHREAD_MUTEX_INITIALIZER, bytes_fn, \
		    ref_fn, unref_fn                                                                       \
	}
/* cvm_mru_take returns a new reference to the object with exactly these
 * bytes (moved to the front), or NULL. */
void *cvm_mru_take(struct cvm_mru *m, const uint8_t *p, size_t len);
/* cvm_mru_keep puts a reference to `obj` in front, unless one with the same
 * bytes is there; the least recently used one makes room. */
void cvm_mru_keep(struct cvm_mru *m, void *obj);

/* cvm_pem_starts is true when the text (after whitespace) opens a PEM block. */
bool cvm_pem_starts(const uint8_t *p, size_t len);

/* asn1_time_unix converts an ASN1_TIME to Unix seconds; false if it cannot. */
bool cvm_asn1_time_unix(const ASN1_TIME *t, int64_t *out);
/* ecdsa_raw_to_der turns r || s (2 * n bytes) into a DER ECDSA-Sig-Value in
 * `der` (cap bytes). Returns the length, or 0 on failure. */
size_t cvm_ecdsa_raw_to_der(const uint8_t *sig, size_t n, uint8_t *der, size_t cap);
/* verify_digest checks a DER signature with SHA-256 under `pkey`. */
int cvm_evp_verify_sha256(EVP_PKEY *pkey, const uint8_t *msg, size_t len, const uint8_t *der_sig,
                          size_t der_len);

/* cvm_algor_is_rsa_pss_sha384 is true for RSASSA-PSS with SHA-384, MGF1
 * SHA-384, a 48-byte salt and trailer 1 (lib/crypto/p384.c). */
bool cvm_algor_is_rsa_pss_sha384(const X509_ALGOR *alg);

#endif
