/* Internal helpers of lib/crypto. */
#ifndef CVM_CRYPTO_INT_H
#define CVM_CRYPTO_INT_H

#include <pthread.h>

#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>

#include "crypto_lib.h"

/* ECDSA P-256 and P-384 verification comes in two builds (CMake option
 * CVM_FAST_ECDSA, compile definition CVM_FAST_ECDSA=1 or 0, the same for
 * every file): the fast one computes u1*G + u2*Q itself on OpenSSL's EC point
 * operations, with per-key tables for authenticated keys (p256.c, p384.c,
 * ecdsa.c, keptkeys.c); the other hands every verification to OpenSSL's EVP
 * and compiles none of that. cvm_ecdsa_fast() says which this is. */
#ifndef CVM_FAST_ECDSA
#define CVM_FAST_ECDSA 1
#endif

/* A P-256 public key as x || y and as OpenSSL sees it: a point on its P-256
 * group (`q`, the fast build) or an EVP_PKEY (`pkey`, the EVP build; the
 * other pointer is NULL). Both fields exist in both builds, so that the
 * struct is the same everywhere. */
struct cvm_p256_pub {
	uint8_t xy[64];
	EC_POINT *q;
	EVP_PKEY *pkey;
};

/* A P-384 public key, in the same way. */
struct cvm_p384_pub {
	uint8_t xy[96];
	EC_POINT *q;
	EVP_PKEY *pkey;
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

/* ECDSA verification's scalars (lib/crypto/ecdsa.c, fast build only):
 * cvm_ecdsa_begin reads r, s and the digest (n bytes each, big-endian, the
 * digest as long as the order), checks 0 < r, s < order and computes
 * u1 = e/s and u2 = r/s; the caller computes u1*G + u2*Q its own way, and
 * cvm_ecdsa_finish checks that the sum's x is r modulo the order.
 * cvm_ecdsa_end is always called. Both return 0, CVM_E_SIGNATURE,
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
struct cvm_ecdsa_work {
	BN_CTX *ctx;
	BIGNUM *r, *u1, *u2;
};
int cvm_ecdsa_begin(struct cvm_ecdsa_work *w, const EC_GROUP *g, const uint8_t *rb, const uint8_t *sb,
                    const uint8_t *digest, size_t n);
int cvm_ecdsa_finish(struct cvm_ecdsa_work *w, const EC_GROUP *g, const EC_POINT *sum);
void cvm_ecdsa_end(struct cvm_ecdsa_work *w);
/* cvm_ec_point_from_xy makes the point x || y (`coord_len` bytes each,
 * big-endian) of group `g` into *out (freed with EC_POINT_free), refusing a
 * point that is not on the curve or is the point at infinity. Returns 0,
 * CVM_E_FORMAT, CVM_E_NOMEM or CVM_E_INVAL. (Fast build only.) */
int cvm_ec_point_from_xy(const EC_GROUP *g, const uint8_t *xy, size_t coord_len, EC_POINT **out);
/* cvm_ecdsa_der_to_raw reads a DER ECDSA-Sig-Value of exactly `der_len`
 * bytes into r || s (n bytes each, big-endian) in `rs`. Only DER is read,
 * as OpenSSL's own verification insists (it re-encodes and compares):
 * minimal lengths and integers, no trailing bytes; a negative r or s, or
 * one longer than n bytes, is refused. Range checks against the order are
 * the verifier's. Both builds (lib/crypto/ecdsa.c). */
bool cvm_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t n, uint8_t *rs);
/* cvm_evp_pkey_ec makes an EVP_PKEY of the uncompressed point 0x04 || xy
 * (`xy_len` bytes) on the named curve ("P-256", "P-384"), or NULL when it is
 * not a point of that curve. */
EVP_PKEY *cvm_evp_pkey_ec(const char *curve, const uint8_t *xy, size_t xy_len);
/* cvm_evp_verify_digest checks a DER ECDSA signature over a digest already
 * made with `md` (EVP_PKEY_verify). Returns 0, CVM_E_SIGNATURE or
 * CVM_E_NOMEM. */
int cvm_evp_verify_digest(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *digest, size_t digest_len,
                          const uint8_t *der_sig, size_t der_len);

/* Kept keys (lib/crypto/keptkeys.c, fast build only): the one policy by
 * which both ECDSA verifiers keep per-key tables. A table is made only for a
 * key its caller has authenticated (it chains to a trust anchor) and marks
 * "kept": at the key's CVM_KEPT_BUILD_AFTER-th kept use. Each curve keeps a
 * bounded set of tables, the most used (counts are halved every
 * CVM_KEPT_AGE_EVERY kept uses, so that keys no longer used make room); a key
 * replaces the least used table only when it is used more than twice as
 * often, so keys used alike never evict each other back and forth. One table
 * is built at a time in the whole process. A table is a pure function of the
 * public key, never a verification result. Thread-safe. */
#define CVM_KEPT_BUILD_AFTER 8
#define CVM_KEPT_AGE_EVERY 4096
#define CVM_KEPT_KEY_MAX 96 /* bytes that name a key: x || y */
#define CVM_KEPT_CANDS_MAX 32
struct cvm_kept_table {
	uint8_t key[CVM_KEPT_KEY_MAX];
	void *table;
	int refs;
	unsigned uses;
};
struct cvm_kept_cand {
	uint8_t key[CVM_KEPT_KEY_MAX];
	unsigned uses;
};
/* struct cvm_kept is one curve's set: `build` makes the table of a key from
 * what the caller passes to cvm_kept_get (NULL on failure), `free` frees
 * one. */
struct cvm_kept {
	size_t key_len;
	void *(*build)(const void *pub);
	void (*free)(void *table);
	struct cvm_kept_table **tables;
	size_t tables_max;
	struct cvm_kept_cand cands[CVM_KEPT_CANDS_MAX];
	size_t cand_count;
	unsigned kept_uses;
};
#define CVM_KEPT_INIT(key_len, build_fn, free_fn, slots)                                                   \
	{                                                                                                  \
		(key_len), (build_fn), (free_fn), (slots), sizeof(slots) / sizeof((slots)[0]), {{{0}, 0}}, \
		    0, 0                                                                                   \
	}
/* cvm_kept_get counts a kept use of `key` (key_len bytes) and returns a
 * reference to its table, or NULL (none yet: take the plain path). It may
 * build the table itself, from `pub`. Release with cvm_kept_put. */
struct cvm_kept_table *cvm_kept_get(struct cvm_kept *k, const uint8_t *key, const void *pub);
void cvm_kept_put(struct cvm_kept *k, struct cvm_kept_table *t);
/* cvm_kept_held is how many keys have a table; cvm_kept_holds whether `key`
 * has one (both for tests and the differential fuzzer). */
size_t cvm_kept_held(struct cvm_kept *k);
bool cvm_kept_holds(struct cvm_kept *k, const uint8_t *key);
/* cvm_kept_flush drops every table and every count (tables still in use
 * are freed by their last user). For tests and the fuzzer. */
void cvm_kept_flush(struct cvm_kept *k);

/* cvm_x509_ec_point copies the certificate's key when it is an uncompressed
 * point (0x04 || x || y, `len` bytes) on the curve `curve_nid`, straight
 * from the SubjectPublicKeyInfo (no EVP_PKEY export). */
bool cvm_x509_ec_point(X509 *x, int curve_nid, uint8_t *point, size_t len);

/* cvm_p256_pub_set checks that x || y is a point on P-256 and fills `pub`
 * (freed with cvm_p256_pub_clear). Returns 0, CVM_E_FORMAT, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
int cvm_p256_pub_set(struct cvm_p256_pub *pub, const uint8_t xy[64]);
void cvm_p256_pub_clear(struct cvm_p256_pub *pub);
/* cvm_p256_verify_digest checks ECDSA r, s (32 bytes each, big-endian)
 * over a SHA-256 digest. `keep`: the caller has authenticated the key and
 * expects to see it again, so a table of its multiples may be built and kept
 * (the kept-keys policy above; the EVP build ignores it). Returns 0,
 * CVM_E_SIGNATURE (also for any failure of the arithmetic) or CVM_E_NOMEM. */
int cvm_p256_verify_digest(const struct cvm_p256_pub *pub, const uint8_t digest[32], const uint8_t rb[32],
                           const uint8_t sb[32], bool keep);
/* cvm_p256_verify_der checks a DER ECDSA-Sig-Value over SHA-256(msg). */
int cvm_p256_verify_der(const struct cvm_p256_pub *pub, const uint8_t *msg, size_t len, const uint8_t *der,
                        size_t der_len, bool keep);
/* cvm_p384_pub_set checks that x || y is a point on P-384 and fills `pub`
 * (freed with cvm_p384_pub_clear). Returns 0, CVM_E_FORMAT, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
int cvm_p384_pub_set(struct cvm_p384_pub *pub, const uint8_t xy[96]);
void cvm_p384_pub_clear(struct cvm_p384_pub *pub);
/* cvm_p384_verify_digest is cvm_p256_verify_digest for P-384 and a SHA-384
 * digest (48-byte r, s and digest). */
int cvm_p384_verify_digest(const struct cvm_p384_pub *pub, const uint8_t digest[48], const uint8_t rb[48],
                           const uint8_t sb[48], bool keep);
/* How many keys of a curve have a table now, whether one key has (its
 * x || y), and dropping them all (cvm_kept_flush): for tests and the
 * fuzzer. The EVP build has no tables: 0, false, nothing to drop. */
size_t cvm_p256_tables_held(void);
bool cvm_p256_has_table(const uint8_t xy[64]);
void cvm_p256_tables_flush(void);
size_t cvm_p384_tables_held(void);
bool cvm_p384_has_table(const uint8_t xy[96]);
void cvm_p384_tables_flush(void);
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

/* cvm_pem_der_one reads text that is exactly one PEM block labelled `label`
 * (white space and NULs around it allowed) and decodes it into a new buffer
 * of at most `max` bytes. Returns 0, CVM_E_FORMAT, CVM_E_TOO_LARGE or
 * CVM_E_NOMEM. (lib/core's PEM framer, once for every kind of object.) */
int cvm_pem_der_one(const uint8_t *pem, size_t len, const char *label, size_t max, uint8_t **der,
                    size_t *der_len);

/* asn1_time_unix converts an ASN1_TIME to Unix seconds; false if it cannot. */
bool cvm_asn1_time_unix(const ASN1_TIME *t, int64_t *out);
/* ecdsa_raw_to_der turns r || s (2 * n bytes) into a DER ECDSA-Sig-Value in
 * `der` (cap bytes). Returns the length, or 0 on failure. */
size_t cvm_ecdsa_raw_to_der(const uint8_t *sig, size_t n, uint8_t *der, size_t cap);
/* cvm_evp_verify checks a DER signature over `msg` hashed with `md` under
 * `pkey` (EVP_DigestVerify); cvm_evp_verify_sha256 with SHA-256. Return 0,
 * CVM_E_SIGNATURE or CVM_E_NOMEM. */
int cvm_evp_verify(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *msg, size_t len, const uint8_t *der_sig,
                   size_t der_len);
int cvm_evp_verify_sha256(EVP_PKEY *pkey, const uint8_t *msg, size_t len, const uint8_t *der_sig,
                          size_t der_len);

/* cvm_algor_is_rsa_pss_sha384 is true for RSASSA-PSS with SHA-384, MGF1
 * SHA-384, a 48-byte salt and trailer 1 (lib/crypto/p384.c). */
bool cvm_algor_is_rsa_pss_sha384(const X509_ALGOR *alg);

#endif
