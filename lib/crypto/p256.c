/* ECDSA P-256 with SHA-256: raw keys and raw r || s signatures as DCAP
 * quotes carry them, and the signatures of P-256 certificates and CRLs.
 *
 * Why not a plain EVP_DigestVerify (the EVP build, CVM_FAST_ECDSA=OFF, does
 * exactly that): a DCAP verification checks nine P-256 signatures, seven of
 * them under keys a verifier meets again and again (Intel's root, PCK CA and
 * TCB signing keys, a platform's PCK and QE attestation keys). OpenSSL
 * multiplies the generator with a precomputed table but the public key with
 * a window built for every call, and EVP adds a provider round trip. The
 * fast build computes u1*G + u2*Q on OpenSSL's EC point operations: u1*G
 * with OpenSSL's generator table, and u2*Q with a table of Q's own when the
 * caller says the key is one it has authenticated and will see again ("kept"
 * verifications). OpenSSL builds that table for a group whose generator is Q
 * (EC_GROUP_precompute_mult: about 150 KB and 25 ms per key, repaid after
 * some 800 verifications); which keys get one, and which stay, is the
 * kept-keys policy shared with P-384 (keptkeys.c): P256_TABLES_MAX tables.
 * A table is a pure function of the public key, never a verification
 * result: every signature is checked in full every time. Everything here
 * handles public values only, so variable time is fine. */
/* EC_GROUP_precompute_mult is deprecated in OpenSSL 3.0 without a
 * replacement (it still builds the fixed-base table ECDSA signing uses). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "crypto_int.h"

#define P256_TABLES_MAX 8 /* keys with a table (about 150 KB each) */

struct cvm_p256_key {
	struct cvm_p256_pub pub;
};

#if CVM_FAST_ECDSA

static EC_GROUP *p256;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void p256_init(void)
{
	p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	ERR_clear_error();
}

static const EC_GROUP *p256_group(void)
{
	(void)pthread_once(&p256_once, p256_init);
	return p256;
}

int cvm_p256_pub_set(struct cvm_p256_pub *pub, const uint8_t xy[64])
{
	const EC_GROUP *g = p256_group();
	int r;

	pub->q = NULL;
	pub->pkey = NULL;
	if (g == NULL)
		return CVM_E_CRYPTO;
	r = cvm_ec_point_from_xy(g, xy, 32, &pub->q);
	if (r == CVM_OK)
		memcpy(pub->xy, xy, 64);
	return r;
}

/* table_build makes the table of a key: P-256 with Q as its generator, and
 * Q's multiples (the kept-keys policy calls it). */
static void *table_build(const void *arg)
{
	const struct cvm_p256_pub *pub = arg;
	BN_CTX *ctx = BN_CTX_new();
	EC_GROUP *g = ctx != NULL ? EC_GROUP_dup(p256) : NULL;
	bool ok =
	    g != NULL &&
	    EC_GROUP_set_generator(g, pub->q, EC_GROUP_get0_order(p256), EC_GROUP_get0_cofactor(p256)) == 1 &&
	    EC_GROUP_precompute_mult(g, ctx) == 1;

	BN_CTX_free(ctx);
	ERR_clear_error();
	if (!ok) {
		EC_GROUP_free(g);
		return NULL;
	}
	return g;
}

static void table_free(void *table)
{
	EC_GROUP_free(table);
}

static struct cvm_kept_table *slots[P256_TABLES_MAX];
static struct cvm_kept kept = CVM_KEPT_INIT(64, table_build, table_free, slots);

size_t cvm_p256_tables_held(void)
{
	return cvm_kept_held(&kept);
}

bool cvm_p256_has_table(const uint8_t xy[64])
{
	return cvm_kept_holds(&kept, xy);
}

void cvm_p256_tables_flush(void)
{
	cvm_kept_flush(&kept);
}

int cvm_p256_verify_digest(const struct cvm_p256_pub *pub, const uint8_t digest[32], const uint8_t rb[32],
                           const uint8_t sb[32], bool keep)
{
	const EC_GROUP *g = p256_group();
	struct cvm_ecdsa_work w;
	struct cvm_kept_table *t = NULL;
	EC_POINT *a = NULL, *b = NULL;
	int ret;

	if (g == NULL || pub->q == NULL)
		return CVM_E_SIGNATURE;
	ret = cvm_ecdsa_begin(&w, g, rb, sb, digest, 32);
	if (ret == CVM_OK) {
		a = EC_POINT_new(g);
		t = a != NULL && keep ? cvm_kept_get(&kept, pub->xy, pub) : NULL;
		if (a == NULL) {
			ret = CVM_E_NOMEM;
		} else if (t != NULL) {
			const EC_GROUP *tg = t->table;

			/* u1*G with OpenSSL's table of G, u2*Q with Q's own */
			b = EC_POINT_new(tg);
			ret = b != NULL && EC_POINT_mul(g, a, w.u1, NULL, NULL, w.ctx) == 1 &&
			              EC_POINT_mul(tg, b, w.u2, NULL, NULL, w.ctx) == 1 &&
			              EC_POINT_add(g, a, a, b, w.ctx) == 1
			          ? cvm_ecdsa_finish(&w, g, a)
			          : CVM_E_CRYPTO;
		} else {
			ret = EC_POINT_mul(g, a, w.u1, pub->q, w.u2, w.ctx) == 1 ? cvm_ecdsa_finish(&w, g, a)
			                                                         : CVM_E_CRYPTO;
		}
	}
	EC_POINT_free(a);
	EC_POINT_free(b);
	cvm_kept_put(&kept, t);
	cvm_ecdsa_end(&w);
	return ret == CVM_OK || ret == CVM_E_NOMEM ? ret : CVM_E_SIGNATURE;
}

int cvm_p256_verify_der(const struct cvm_p256_pub *pub, const uint8_t *msg, size_t len, const uint8_t *der,
                        size_t der_len, bool keep)
{
	uint8_t rs[64], digest[32];

	if (!cvm_ecdsa_der_to_raw(der, der_len, 32, rs))
		return CVM_E_SIGNATURE;
	cvm_sha256(msg, len, digest);
	return cvm_p256_verify_digest(pub, digest, rs, rs + 32, keep);
}

#else /* the EVP build: OpenSSL verifies every signature */

int cvm_p256_pub_set(struct cvm_p256_pub *pub, const uint8_t xy[64])
{
	pub->q = NULL;
	pub->pkey = cvm_evp_pkey_ec("P-256", xy, 64);
	if (pub->pkey == NULL)
		return CVM_E_FORMAT;
	memcpy(pub->xy, xy, 64);
	return CVM_OK;
}

size_t cvm_p256_tables_held(void)
{
	return 0;
}

bool cvm_p256_has_table(const uint8_t xy[64])
{
	(void)xy;
	return false;
}

void cvm_p256_tables_flush(void)
{
}

int cvm_p256_verify_digest(const struct cvm_p256_pub *pub, const uint8_t digest[32], const uint8_t rb[32],
                           const uint8_t sb[32], bool keep)
{
	uint8_t rs[64], der[80];
	size_t der_len;

	(void)keep;
	if (pub->pkey == NULL)
		return CVM_E_SIGNATURE;
	memcpy(rs, rb, 32);
	memcpy(rs + 32, sb, 32);
	der_len = cvm_ecdsa_raw_to_der(rs, 32, der, sizeof(der));
	if (der_len == 0)
		return CVM_E_SIGNATURE;
	return cvm_evp_verify_digest(pub->pkey, EVP_sha256(), digest, 32, der, der_len);
}

int cvm_p256_verify_der(const struct cvm_p256_pub *pub, const uint8_t *msg, size_t len, const uint8_t *der,
                        size_t der_len, bool keep)
{
	(void)keep;
	/* a P-256 DER signature has at most 72 bytes */
	if (pub->pkey == NULL || der_len > 80)
		return CVM_E_SIGNATURE;
	return cvm_evp_verify(pub->pkey, EVP_sha256(), msg, len, der, der_len);
}

#endif

void cvm_p256_pub_clear(struct cvm_p256_pub *pub)
{
	EC_POINT_free(pub->q);
	EVP_PKEY_free(pub->pkey);
	pub->q = NULL;
	pub->pkey = NULL;
}

int cvm_p256_key_new(const uint8_t xy[64], struct cvm_p256_key **out)
{
	struct cvm_p256_key *k;
	int r;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return CVM_E_NOMEM;
	r = cvm_p256_pub_set(&k->pub, xy);
	if (r != CVM_OK) {
		free(k);
		return r;
	}
	*out = k;
	return CVM_OK;
}

void cvm_p256_key_free(struct cvm_p256_key *k)
{
	if (k == NULL)
		return;
	cvm_p256_pub_clear(&k->pub);
	free(k);
}

static int raw_verify(const struct cvm_p256_key *k, const uint8_t *msg, size_t len, const uint8_t sig[64],
                      bool keep)
{
	uint8_t digest[32];

	cvm_sha256(msg, len, digest);
	return cvm_p256_verify_digest(&k->pub, digest, sig, sig + 32, keep);
}

int cvm_p256_verify(const struct cvm_p256_key *k, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	return raw_verify(k, msg, len, sig, false);
}

int cvm_p256_verify_kept(const struct cvm_p256_key *k, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	return raw_verify(k, msg, len, sig, true);
}
