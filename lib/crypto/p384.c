/* ECDSA P-384 over a certificate's key (AMD VCEK and VLEK sign SEV-SNP
 * reports with it), public key types, and the RSASSA-PSS parameters AMD
 * signs its certificates and CRLs with. X509_verify and X509_CRL_verify
 * already verify RSASSA-PSS signatures with the parameters the signature
 * carries; what they do not do is insist on AMD's parameters, which is what
 * cvm_algor_is_rsa_pss_sha384 adds.
 *
 * Why P-384 verification is not a plain EVP_DigestVerify (the EVP build,
 * CVM_FAST_ECDSA=OFF, does exactly that): OpenSSL 3.0 has no optimised P-384
 * code, and its generic verification spends most of its 0.8 ms on 384 point
 * doublings. A verifier checks many reports under few keys (AMD's VCEKs), so
 * the fast build computes u1*G + u2*Q with fixed-base tables: j * 64^i * P
 * for i < 64, j < 64, in affine coordinates. A scalar multiplication is then
 * 64 mixed additions and no doubling. The generator's table is made once per
 * process. A public key gets one only under the kept-keys policy shared with
 * P-256 (keptkeys.c): the caller has authenticated the key (a VCEK or VLEK
 * whose chain verified up to an AMD root) and it is the key's 8th kept use;
 * P384_TABLES_MAX tables of about 1 MB are kept. Any other key takes the
 * plain path, u1*G from the generator's table and u2*Q by OpenSSL, which
 * keeps nothing. A table is a pure function of the public key, never a
 * verification result. Everything here handles public values only, so
 * variable time is fine. */
/* EC_POINTs_make_affine (one inversion for a whole table) is deprecated in
 * OpenSSL 3.0 without a replacement. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto_int.h"

#define P384_TABLES_MAX 4 /* keys with a table (about 1 MB each) */
#define P384_POINT_LEN 97 /* 0x04 || x || y */

#if CVM_FAST_ECDSA

#define COMB_W 6                      /* bits per window */
#define COMB_ROWS (384 / COMB_W)      /* 64 windows */
#define COMB_COLS ((1 << COMB_W) - 1) /* multiples 1..63 of each window */

struct comb {
	EC_POINT *t[COMB_ROWS][COMB_COLS];
};

static EC_GROUP *p384;
static struct comb *g_comb;
static pthread_once_t p384_once = PTHREAD_ONCE_INIT;

static void comb_free(struct comb *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < COMB_ROWS; i++)
		for (size_t j = 0; j < COMB_COLS; j++)
			EC_POINT_free(c->t[i][j]);
	OPENSSL_free(c);
}

/* comb_new builds the table of `p`. */
static struct comb *comb_new(const EC_POINT *p, BN_CTX *ctx)
{
	struct comb *c = OPENSSL_zalloc(sizeof(*c));
	EC_POINT *base = EC_POINT_dup(p, p384);
	bool ok = c != NULL && base != NULL;

	for (size_t i = 0; ok && i < COMB_ROWS; i++) {
		c->t[i][0] = EC_POINT_dup(base, p384);
		ok = c->t[i][0] != NULL;
		for (size_t j = 1; ok && j < COMB_COLS; j++) {
			c->t[i][j] = EC_POINT_new(p384);
			ok = c->t[i][j] != NULL &&
			     EC_POINT_add(p384, c->t[i][j], c->t[i][j - 1], base, ctx) == 1;
		}
		for (size_t d = 0; ok && d < COMB_W; d++)
			ok = EC_POINT_dbl(p384, base, base, ctx) == 1;
	}
	/* A multiple of a point of prime order below the order is never the
	 * point at infinity, so every entry can be made affine. */
	ok = ok && EC_POINTs_make_affine(p384, (size_t)COMB_ROWS * COMB_COLS, &c->t[0][0], ctx) == 1;
	EC_POINT_free(base);
	if (!ok) {
		comb_free(c);
		return NULL;
	}
	return c;
}

static void p384_init(void)
{
	BN_CTX *ctx = BN_CTX_new();

	p384 = EC_GROUP_new_by_curve_name(NID_secp384r1);
	if (p384 != NULL && ctx != NULL)
		g_comb = comb_new(EC_GROUP_get0_generator(p384), ctx);
	BN_CTX_free(ctx);
	ERR_clear_error();
}

/* p384_ready makes the group and the generator's table once. */
static bool p384_ready(void)
{
	(void)pthread_once(&p384_once, p384_init);
	return p384 != NULL && g_comb != NULL;
}

int cvm_p384_pub_set(struct cvm_p384_pub *pub, const uint8_t xy[96])
{
	int r;

	pub->q = NULL;
	pub->pkey = NULL;
	if (!p384_ready())
		return CVM_E_CRYPTO;
	r = cvm_ec_point_from_xy(p384, xy, 48, &pub->q);
	if (r == CVM_OK)
		memcpy(pub->xy, xy, 96);
	return r;
}

/* table_build makes the table of the key x || y (`arg`: its 96 bytes),
 * checking that it is a point of the curve first. */
static void *table_build(const void *arg)
{
	struct cvm_p384_pub pub;
	BN_CTX *ctx;
	struct comb *c = NULL;

	if (cvm_p384_pub_set(&pub, arg) != CVM_OK)
		return NULL;
	ctx = BN_CTX_new();
	if (ctx != NULL)
		c = comb_new(pub.q, ctx);
	BN_CTX_free(ctx);
	cvm_p384_pub_clear(&pub);
	ERR_clear_error();
	return c;
}

static void table_free(void *table)
{
	comb_free(table);
}

static struct cvm_kept_table *slots[P384_TABLES_MAX];
static struct cvm_kept kept = CVM_KEPT_INIT(96, table_build, table_free, slots);

size_t cvm_p384_tables_held(void)
{
	return cvm_kept_held(&kept);
}

bool cvm_p384_has_table(const uint8_t xy[96])
{
	return cvm_kept_holds(&kept, xy);
}

void cvm_p384_tables_flush(void)
{
	cvm_kept_flush(&kept);
}

/* comb_mul sets r = k * P from P's table; k < 2^384. */
static bool comb_mul(const struct comb *c, const BIGNUM *k, EC_POINT *r, BN_CTX *ctx)
{
	if (EC_POINT_set_to_infinity(p384, r) != 1)
		return false;
	for (size_t i = 0; i < COMB_ROWS; i++) {
		unsigned digit = 0;

		for (int b = COMB_W - 1; b >= 0; b--)
			digit = (digit << 1) | (BN_is_bit_set(k, (int)(i * COMB_W) + b) == 1 ? 1u : 0u);
		if (digit != 0 && EC_POINT_add(p384, r, r, c->t[i][digit - 1], ctx) != 1)
			return false;
	}
	return true;
}

/* plain_mul sets r = k * Q for a public k with OpenSSL's windowed (wNAF)
 * multiplication. Asked for k * Q alone, OpenSSL 3.0 takes its constant-time
 * ladder, meant for secret scalars and about twice as slow; given 0 * G as
 * well, it takes the wNAF path, as its own ECDSA verification does. */
static bool plain_mul(const EC_POINT *q, const BIGNUM *k, EC_POINT *r, BN_CTX *ctx)
{
	BIGNUM *zero = BN_CTX_get(ctx);

	if (zero == NULL)
		return false;
	BN_zero(zero);
	return EC_POINT_mul(p384, r, zero, q, k, ctx) == 1;
}

/* verify checks r, s over the digest under the key x || y. `q` is the key
 * as a point when the caller has it; otherwise it is decoded (and checked)
 * only when the plain path needs it: a kept key that has its table was
 * checked when the table was built, from the very same bytes. */
static int verify(const uint8_t xy[96], const EC_POINT *q, const uint8_t digest[48], const uint8_t rb[48],
                  const uint8_t sb[48], bool keep)
{
	struct cvm_ecdsa_work w;
	struct cvm_kept_table *t = NULL;
	struct cvm_p384_pub own = {{0}, NULL, NULL};
	EC_POINT *r1 = NULL, *r2 = NULL;
	int ret;

	if (!p384_ready())
		return CVM_E_SIGNATURE;
	ret = cvm_ecdsa_begin(&w, p384, rb, sb, digest, 48);
	if (ret == CVM_OK) {
		r1 = EC_POINT_new(p384);
		r2 = EC_POINT_new(p384);
		t = r1 != NULL && r2 != NULL && keep ? cvm_kept_get(&kept, xy, xy) : NULL;
		/* not a point of the curve: CVM_E_FORMAT, a failed signature below */
		if (t == NULL && q == NULL && r1 != NULL && r2 != NULL) {
			ret = cvm_p384_pub_set(&own, xy);
			q = own.q;
		}
		if (ret != CVM_OK)
			goto out;
		if (r1 == NULL || r2 == NULL)
			ret = CVM_E_NOMEM;
		else if (!comb_mul(g_comb, w.u1, r1, w.ctx))
			ret = CVM_E_CRYPTO;
		else if (t != NULL)
			ret = comb_mul(t->table, w.u2, r2, w.ctx) ? CVM_OK : CVM_E_CRYPTO;
		else /* the plain path: OpenSSL multiplies Q (see plain_mul) */
			ret = plain_mul(q, w.u2, r2, w.ctx) ? CVM_OK : CVM_E_CRYPTO;
		if (ret == CVM_OK)
			ret = EC_POINT_add(p384, r1, r1, r2, w.ctx) == 1 ? cvm_ecdsa_finish(&w, p384, r1)
			                                                 : CVM_E_CRYPTO;
	}
out:
	EC_POINT_free(r1);
	EC_POINT_free(r2);
	cvm_p384_pub_clear(&own);
	cvm_kept_put(&kept, t);
	cvm_ecdsa_end(&w);
	return ret == CVM_OK || ret == CVM_E_NOMEM ? ret : CVM_E_SIGNATURE;
}

int cvm_p384_verify_digest(const struct cvm_p384_pub *pub, const uint8_t digest[48], const uint8_t rb[48],
                           const uint8_t sb[48], bool keep)
{
	if (pub->q == NULL)
		return CVM_E_SIGNATURE;
	return verify(pub->xy, pub->q, digest, rb, sb, keep);
}

/* verify_point checks a signature under a key given as bytes (a
 * certificate's): decoded only when no table of it is kept. */
static int verify_point(const uint8_t xy[96], const uint8_t digest[48], const uint8_t sig[96], bool keep)
{
	return verify(xy, NULL, digest, sig, sig + 48, keep);
}

#else /* the EVP build: OpenSSL verifies every signature */

int cvm_p384_pub_set(struct cvm_p384_pub *pub, const uint8_t xy[96])
{
	pub->q = NULL;
	pub->pkey = cvm_evp_pkey_ec("P-384", xy, 96);
	if (pub->pkey == NULL)
		return CVM_E_FORMAT;
	memcpy(pub->xy, xy, 96);
	return CVM_OK;
}

size_t cvm_p384_tables_held(void)
{
	return 0;
}

bool cvm_p384_has_table(const uint8_t xy[96])
{
	(void)xy;
	return false;
}

void cvm_p384_tables_flush(void)
{
}

int cvm_p384_verify_digest(const struct cvm_p384_pub *pub, const uint8_t digest[48], const uint8_t rb[48],
                           const uint8_t sb[48], bool keep)
{
	uint8_t rs[96], der[112];
	size_t der_len;

	(void)keep;
	if (pub->pkey == NULL)
		return CVM_E_SIGNATURE;
	memcpy(rs, rb, 48);
	memcpy(rs + 48, sb, 48);
	der_len = cvm_ecdsa_raw_to_der(rs, 48, der, sizeof(der));
	if (der_len == 0)
		return CVM_E_SIGNATURE;
	return cvm_evp_verify_digest(pub->pkey, EVP_sha384(), digest, 48, der, der_len);
}

static int verify_point(const uint8_t xy[96], const uint8_t digest[48], const uint8_t sig[96], bool keep)
{
	struct cvm_p384_pub pub;
	int r = cvm_p384_pub_set(&pub, xy);

	if (r == CVM_OK)
		r = cvm_p384_verify_digest(&pub, digest, sig, sig + 48, keep);
	cvm_p384_pub_clear(&pub);
	return r == CVM_OK || r == CVM_E_NOMEM ? r : CVM_E_SIGNATURE;
}

#endif

void cvm_p384_pub_clear(struct cvm_p384_pub *pub)
{
	EC_POINT_free(pub->q);
	EVP_PKEY_free(pub->pkey);
	pub->q = NULL;
	pub->pkey = NULL;
}

/* cert_p384_point reads the certificate's public key as an uncompressed
 * P-384 point straight from its SubjectPublicKeyInfo, without making an
 * EVP_PKEY export it to a provider (which costs more than a table lookup). */
static bool cert_p384_point(const struct cvm_cert *c, uint8_t key[P384_POINT_LEN])
{
	return cvm_x509_ec_point(c->x, NID_secp384r1, key, P384_POINT_LEN);
}

static int cert_verify_p384(const struct cvm_cert *c, const uint8_t *msg, size_t len, const uint8_t sig[96],
                            bool keep)
{
	uint8_t key[P384_POINT_LEN], e[48];

	if (!cert_p384_point(c, key)) {
		ERR_clear_error();
		return CVM_E_UNSUPPORTED;
	}
	cvm_sha384(msg, len, e);
	return verify_point(key + 1, e, sig, keep);
}

int cvm_cert_verify_p384(const struct cvm_cert *c, const uint8_t *msg, size_t len, const uint8_t sig[96])
{
	return cert_verify_p384(c, msg, len, sig, false);
}

int cvm_cert_verify_p384_kept(const struct cvm_cert *c, const uint8_t *msg, size_t len, const uint8_t sig[96])
{
	return cert_verify_p384(c, msg, len, sig, true);
}

enum cvm_key_type cvm_cert_key_type(const struct cvm_cert *c, unsigned *bits)
{
	EVP_PKEY *pk = X509_get0_pubkey(c->x);
	enum cvm_key_type t = CVM_KEY_OTHER;
	char group[32];

	if (bits != NULL)
		*bits = 0;
	if (pk == NULL) {
		ERR_clear_error();
		return CVM_KEY_OTHER;
	}
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		t = CVM_KEY_RSA;
		if (bits != NULL && EVP_PKEY_get_bits(pk) > 0)
			*bits = (unsigned)EVP_PKEY_get_bits(pk);
		break;
	case EVP_PKEY_EC: {
		uint8_t key[P384_POINT_LEN];

		if (cert_p384_point(c, key)) {
			t = CVM_KEY_EC_P384;
			break;
		}
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) == 1 &&
		    strcmp(group, "prime256v1") == 0)
			t = CVM_KEY_EC_P256;
		break;
	}
	default:
		break;
	}
	ERR_clear_error();
	return t;
}

/* md_is_sha384 is true for an AlgorithmIdentifier of SHA-384 (parameters
 * absent or NULL, as RFC 4055 allows both). */
static bool md_is_sha384(const X509_ALGOR *a)
{
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	int ptype = 0;

	if (a == NULL)
		return false; /* absent means SHA-1 */
	X509_ALGOR_get0(&obj, &ptype, &pval, a);
	return OBJ_obj2nid(obj) == NID_sha384 && (ptype == V_ASN1_UNDEF || ptype == V_ASN1_NULL);
}

static bool mgf1_is_sha384(const X509_ALGOR *a)
{
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	X509_ALGOR *md = NULL;
	int ptype = 0;
	bool ok;

	if (a == NULL)
		return false; /* absent means MGF1 with SHA-1 */
	X509_ALGOR_get0(&obj, &ptype, &pval, a);
	if (OBJ_obj2nid(obj) != NID_mgf1 || ptype != V_ASN1_SEQUENCE)
		return false;
	md = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR), a->parameter);
	ok = md_is_sha384(md);
	X509_ALGOR_free(md);
	return ok;
}

bool cvm_algor_is_rsa_pss_sha384(const X509_ALGOR *alg)
{
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	RSA_PSS_PARAMS *pss = NULL;
	int ptype = 0;
	bool ok = false;

	if (alg == NULL)
		return false;
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_rsassaPss || ptype != V_ASN1_SEQUENCE)
		goto out;
	pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), alg->parameter);
	if (pss == NULL)
		goto out;
	ok = md_is_sha384(pss->hashAlgorithm) && mgf1_is_sha384(pss->maskGenAlgorithm) &&
	     pss->saltLength != NULL && ASN1_INTEGER_get(pss->saltLength) == 48 &&
	     (pss->trailerField == NULL || ASN1_INTEGER_get(pss->trailerField) == 1);
out:
	RSA_PSS_PARAMS_free(pss);
	ERR_clear_error();
	return ok;
}

bool cvm_cert_signed_rsa_pss_sha384(const struct cvm_cert *c)
{
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;

	X509_get0_signature(&sig, &alg, c->x);
	return cvm_algor_is_rsa_pss_sha384(alg);
}
