/* ECDSA P-256 with SHA-256: raw keys and raw r || s signatures as DCAP
 * quotes carry them, and the signatures of P-256 certificates and CRLs.
 *
 * Why not a plain EVP_DigestVerify: a DCAP verification checks nine P-256
 * signatures, seven of them under keys a verifier meets again and again
 * (Intel's root, PCK CA and TCB signing keys, a platform's PCK and QE
 * attestation keys). OpenSSL multiplies the generator with a precomputed
 * table but the public key with a window built for every call, and EVP adds
 * a provider round trip. Here u1*G + u2*Q is computed on OpenSSL's EC point
 * operations: u1*G with OpenSSL's generator table, and u2*Q with a table of
 * Q's own when the caller says the key is one it has authenticated and will
 * see again ("kept" verifications). OpenSSL builds that table for a group
 * whose generator is Q (EC_GROUP_precompute_mult: about 150 KB and 25 ms per
 * key, repaid after some 800 verifications), so a key gets one only at its
 * P256_BUILD_AFTER-th kept verification, and a process-wide cache keyed by
 * the key's bytes keeps P256_TABLES_MAX of them, the most used (counts are
 * halved now and then, so that keys no longer used make room). A table is
 * a pure function of the public key, never a verification result: every
 * signature is checked in full every time. Everything here handles public
 * values only, so variable time is fine. */
/* EC_GROUP_precompute_mult is deprecated in OpenSSL 3.0 without a
 * replacement (it still builds the fixed-base table ECDSA signing uses). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "crypto_int.h"

#define P256_TABLES_MAX 8   /* keys with a table (about 150 KB each) */
#define P256_CANDS_MAX 32   /* kept keys counted while they have no table */
#define P256_BUILD_AFTER 8  /* uses before a key gets a table */
#define P256_AGE_EVERY 4096 /* kept uses between halvings of every count */

struct cvm_p256_key {
	struct cvm_p256_pub pub;
};

struct p256_table {
	uint8_t xy[64];
	EC_GROUP *g; /* P-256 with Q as its generator, and Q's multiples */
	int refs;
	unsigned uses; /* since built, halved every P256_AGE_EVERY kept uses */
};

struct p256_cand {
	uint8_t xy[64];
	unsigned uses;
};

static EC_GROUP *p256;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct p256_table *tables[P256_TABLES_MAX];
static struct p256_cand cands[P256_CANDS_MAX];
static size_t cand_count;
static bool building; /* one table is built at a time */
static unsigned kept_uses;

static void p256_init(void)
{
	p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	ERR_clear_error();
}

const EC_GROUP *cvm_p256_group(void)
{
	(void)pthread_once(&p256_once, p256_init);
	return p256;
}

int cvm_p256_pub_set(struct cvm_p256_pub *pub, const uint8_t xy[64])
{
	const EC_GROUP *g = cvm_p256_group();
	uint8_t point[65];
	int r = CVM_E_FORMAT;

	pub->q = NULL;
	if (g == NULL)
		return CVM_E_CRYPTO;
	point[0] = 0x04;
	memcpy(point + 1, xy, 64);
	pub->q = EC_POINT_new(g);
	if (pub->q == NULL)
		return CVM_E_NOMEM;
	/* oct2point rejects a point not on the curve; the check is repeated so
	 * that this never depends on the OpenSSL version. */
	if (EC_POINT_oct2point(g, pub->q, point, sizeof(point), NULL) == 1 &&
	    EC_POINT_is_on_curve(g, pub->q, NULL) == 1 && EC_POINT_is_at_infinity(g, pub->q) == 0) {
		memcpy(pub->xy, xy, 64);
		r = CVM_OK;
	}
	if (r != CVM_OK) {
		EC_POINT_free(pub->q);
		pub->q = NULL;
	}
	ERR_clear_error();
	return r;
}

void cvm_p256_pub_clear(struct cvm_p256_pub *pub)
{
	EC_POINT_free(pub->q);
	pub->q = NULL;
}

static void table_put(struct p256_table *t)
{
	int left;

	if (t == NULL)
		return;
	(void)pthread_mutex_lock(&table_mu);
	left = --t->refs;
	(void)pthread_mutex_unlock(&table_mu);
	if (left == 0) {
		EC_GROUP_free(t->g);
		free(t);
	}
}

static struct p256_table *table_build(const struct cvm_p256_pub *pub)
{
	struct p256_table *t = calloc(1, sizeof(*t));
	BN_CTX *ctx = BN_CTX_new();
	bool ok = t != NULL && ctx != NULL;

	if (ok) {
		t->g = EC_GROUP_dup(p256);
		ok = t->g != NULL &&
		     EC_GROUP_set_generator(t->g, pub->q, EC_GROUP_get0_order(p256),
		                            EC_GROUP_get0_cofactor(p256)) == 1 &&
		     EC_GROUP_precompute_mult(t->g, ctx) == 1;
	}
	BN_CTX_free(ctx);
	ERR_clear_error();
	if (!ok) {
		if (t != NULL)
			EC_GROUP_free(t->g);
		free(t);
		return NULL;
	}
	memcpy(t->xy, pub->xy, 64);
	t->refs = 1;
	return t;
}

/* The bookkeeping below runs with table_mu held. */

static void age_counts(void)
{
	if (++kept_uses % P256_AGE_EVERY != 0)
		return;
	for (size_t i = 0; i < P256_TABLES_MAX; i++)
		if (tables[i] != NULL)
			tables[i]->uses /= 2;
	for (size_t i = 0; i < cand_count; i++)
		cands[i].uses /= 2;
}

static struct p256_table *table_find(const uint8_t xy[64])
{
	for (size_t i = 0; i < P256_TABLES_MAX; i++)
		if (tables[i] != NULL && memcmp(tables[i]->xy, xy, 64) == 0)
			return tables[i];
	return NULL;
}

/* victim is the table slot to fill: a free one, or the least used table. */
static size_t victim(void)
{
	size_t v = 0;

	for (size_t i = 0; i < P256_TABLES_MAX; i++) {
		if (tables[i] == NULL)
			return i;
		if (tables[i]->uses < tables[v]->uses)
			v = i;
	}
	return v;
}

/* cand_count_use counts a use of a key without a table and returns its
 * count (a new key replaces the least used candidate). */
static struct p256_cand *cand_use(const uint8_t xy[64])
{
	size_t least = 0;

	for (size_t i = 0; i < cand_count; i++) {
		if (memcmp(cands[i].xy, xy, 64) == 0) {
			cands[i].uses++;
			return &cands[i];
		}
		if (cands[i].uses < cands[least].uses)
			least = i;
	}
	if (cand_count < P256_CANDS_MAX)
		least = cand_count++;
	memcpy(cands[least].xy, xy, 64);
	cands[least].uses = 1;
	return &cands[least];
}

/* table_get returns a reference to the table of a kept key, or NULL. A key
 * gets a table at its P256_BUILD_AFTER-th use; when all slots are taken it
 * replaces the least used table only if it is used more than twice as often
 * (so that keys used alike never evict each other back and forth). */
static struct p256_table *table_get(const struct cvm_p256_pub *pub)
{
	struct p256_table *t, *built, *old = NULL;
	struct p256_cand *c;
	bool build = false;
	unsigned uses = 0;

	(void)pthread_mutex_lock(&table_mu);
	age_counts();
	t = table_find(pub->xy);
	if (t != NULL) {
		t->uses++;
		t->refs++;
	} else if (!building) {
		size_t v = victim();

		c = cand_use(pub->xy);
		uses = c->uses;
		build = uses >= P256_BUILD_AFTER && (tables[v] == NULL || uses > 2 * tables[v]->uses);
		if (build) {
			c->uses = 0; /* leaves the candidates (a zero count is replaced first) */
			building = true;
		}
	}
	(void)pthread_mutex_unlock(&table_mu);
	if (!build)
		return t;
	built = table_build(pub);
	(void)pthread_mutex_lock(&table_mu);
	building = false;
	if (built != NULL) {
		size_t v = victim();

		old = tables[v];
		tables[v] = built;
		built->uses = uses;
		built->refs++; /* the caller's; the cache holds the first */
	}
	(void)pthread_mutex_unlock(&table_mu);
	table_put(old);
	return built;
}

size_t cvm_p256_tables_held(void)
{
	size_t n = 0;

	(void)pthread_mutex_lock(&table_mu);
	for (size_t i = 0; i < P256_TABLES_MAX; i++)
		n += tables[i] != NULL;
	(void)pthread_mutex_unlock(&table_mu);
	return n;
}

int cvm_p256_verify_digest(const struct cvm_p256_pub *pub, const uint8_t digest[32], const uint8_t rb[32],
                           const uint8_t sb[32], bool keep)
{
	const EC_GROUP *g = cvm_p256_group();
	struct cvm_ecdsa_work w;
	struct p256_table *t = NULL;
	EC_POINT *a = NULL, *b = NULL;
	int ret;

	if (g == NULL || pub->q == NULL)
		return CVM_E_SIGNATURE;
	ret = cvm_ecdsa_begin(&w, g, rb, sb, digest, 32);
	if (ret == CVM_OK) {
		a = EC_POINT_new(g);
		t = a != NULL && keep ? table_get(pub) : NULL;
		if (a == NULL) {
			ret = CVM_E_NOMEM;
		} else if (t != NULL) {
			/* u1*G with OpenSSL's table of G, u2*Q with Q's own */
			b = EC_POINT_new(t->g);
			ret = b != NULL && EC_POINT_mul(g, a, w.u1, NULL, NULL, w.ctx) == 1 &&
			              EC_POINT_mul(t->g, b, w.u2, NULL, NULL, w.ctx) == 1 &&
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
	table_put(t);
	cvm_ecdsa_end(&w);
	return ret == CVM_OK || ret == CVM_E_NOMEM ? ret : CVM_E_SIGNATURE;
}

int cvm_p256_verify_der(const struct cvm_p256_pub *pub, const uint8_t *msg, size_t len, const uint8_t *der,
                        size_t der_len, bool keep)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig;
	const BIGNUM *r = NULL, *s = NULL;
	unsigned char *re = NULL;
	uint8_t rb[32], sb[32], digest[32];
	int n, ret = CVM_E_SIGNATURE;

	if (der_len > 80)
		return CVM_E_SIGNATURE;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (sig == NULL || p != der + der_len)
		goto out;
	/* Only the DER encoding is accepted (as OpenSSL's own verification
	 * does): re-encode and compare. */
	n = i2d_ECDSA_SIG(sig, &re);
	if (n <= 0 || (size_t)n != der_len || memcmp(re, der, der_len) != 0)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	/* A negative INTEGER is valid DER and BN_bn2binpad would write its
	 * magnitude. OpenSSL 3.0 reads ECDSA-Sig-Value integers as unsigned,
	 * so the re-encoding check above already refuses one; this keeps the
	 * rejection independent of that. */
	if (BN_is_negative(r) || BN_is_negative(s))
		goto out;
	if (BN_bn2binpad(r, rb, 32) != 32 || BN_bn2binpad(s, sb, 32) != 32)
		goto out; /* longer than the order: invalid */
	cvm_sha256(msg, len, digest);
	ret = cvm_p256_verify_digest(pub, digest, rb, sb, keep);
out:
	OPENSSL_free(re);
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	return ret;
}

size_t cvm_ecdsa_raw_to_der(const uint8_t *sig, size_t n, uint8_t *der, size_t cap)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)n, NULL);
	BIGNUM *ss = BN_bin2bn(sig + n, (int)n, NULL);
	unsigned char *p = der;
	int len = 0;

	if (s == NULL || r == NULL || ss == NULL || ECDSA_SIG_set0(s, r, ss) != 1) {
		BN_free(r);
		BN_free(ss);
		ECDSA_SIG_free(s);
		return 0;
	}
	/* r and ss now belong to s */
	len = i2d_ECDSA_SIG(s, NULL);
	if (len <= 0 || (size_t)len > cap)
		len = 0;
	else
		len = i2d_ECDSA_SIG(s, &p);
	ECDSA_SIG_free(s);
	return len > 0 ? (size_t)len : 0;
}

int cvm_evp_verify_sha256(EVP_PKEY *pkey, const uint8_t *msg, size_t len, const uint8_t *der_sig,
                          size_t der_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (ctx == NULL)
		return CVM_E_NOMEM;
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	     EVP_DigestVerify(ctx, der_sig, der_len, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? CVM_OK : CVM_E_SIGNATURE;
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
