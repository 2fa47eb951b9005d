/* What the P-256 and P-384 verifiers (p256.c, p384.c) share: reading DER
 * signatures, OpenSSL EVP keys and verifications (the whole of the EVP
 * build, and certificates of other kinds in the fast build) and, in the
 * fast build only, the scalar side of ECDSA verification: the curves differ
 * only in how they compute u1*G + u2*Q. Public values only: variable time is
 * fine. */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto_int.h"

bool cvm_ecdsa_fast(void)
{
	return CVM_FAST_ECDSA != 0;
}

bool cvm_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t n, uint8_t *rs)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r = NULL, *s = NULL;
	unsigned char *re = NULL;
	bool ok = false;
	int len;

	/* SEQUENCE { INTEGER, INTEGER } of at most n + 1 bytes each (a 0x00
	 * in front of a top bit): 2n + 8 bytes, rounded up. */
	if (n == 0 || n > 66 || der_len > 2 * n + 16)
		return false;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (sig == NULL || p != der + der_len)
		goto out;
	/* Only the DER encoding: re-encode and compare. */
	len = i2d_ECDSA_SIG(sig, &re);
	if (len <= 0 || (size_t)len != der_len || memcmp(re, der, der_len) != 0)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	/* A negative INTEGER is valid DER and BN_bn2binpad would write its
	 * magnitude. OpenSSL 3.0 reads ECDSA-Sig-Value integers as unsigned,
	 * so the re-encoding check above already refuses one; this keeps the
	 * rejection independent of that. */
	if (BN_is_negative(r) || BN_is_negative(s))
		goto out;
	/* longer than n bytes: not below the order, invalid */
	ok = BN_bn2binpad(r, rs, (int)n) == (int)n && BN_bn2binpad(s, rs + n, (int)n) == (int)n;
out:
	OPENSSL_free(re);
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	return ok;
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

EVP_PKEY *cvm_evp_pkey_ec(const char *curve, const uint8_t *xy, size_t xy_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[3];
	uint8_t point[1 + 2 * 66];
	char group[16];

	if (ctx == NULL || xy_len > sizeof(point) - 1)
		goto out;
	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, xy, xy_len);
	(void)snprintf(group, sizeof(group), "%s", curve);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + xy_len);
	params[2] = OSSL_PARAM_construct_end();
	/* The import decodes the point, which refuses one not on the curve
	 * (and coordinates not below the field prime). */
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return pkey;
}

int cvm_evp_verify_digest(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *digest, size_t digest_len,
                          const uint8_t *der_sig, size_t der_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	int r = CVM_E_SIGNATURE;

	if (ctx == NULL)
		return CVM_E_NOMEM;
	if (EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
	    EVP_PKEY_verify(ctx, der_sig, der_len, digest, digest_len) == 1)
		r = CVM_OK;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

int cvm_evp_verify(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *msg, size_t len, const uint8_t *der_sig,
                   size_t der_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (ctx == NULL)
		return CVM_E_NOMEM;
	ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 &&
	     EVP_DigestVerify(ctx, der_sig, der_len, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? CVM_OK : CVM_E_SIGNATURE;
}

int cvm_evp_verify_sha256(EVP_PKEY *pkey, const uint8_t *msg, size_t len, const uint8_t *der_sig,
                          size_t der_len)
{
	return cvm_evp_verify(pkey, EVP_sha256(), msg, len, der_sig, der_len);
}

#if CVM_FAST_ECDSA

int cvm_ec_point_from_xy(const EC_GROUP *g, const uint8_t *xy, size_t coord_len, EC_POINT **out)
{
	uint8_t point[1 + 2 * 66];
	EC_POINT *q;
	int r = CVM_E_FORMAT;

	*out = NULL;
	if (coord_len > 66)
		return CVM_E_INVAL;
	point[0] = 0x04;
	memcpy(point + 1, xy, 2 * coord_len);
	q = EC_POINT_new(g);
	if (q == NULL)
		return CVM_E_NOMEM;
	/* oct2point rejects a point not on the curve; the check is repeated so
	 * that this never depends on the OpenSSL version. */
	if (EC_POINT_oct2point(g, q, point, 1 + 2 * coord_len, NULL) == 1 &&
	    EC_POINT_is_on_curve(g, q, NULL) == 1 && EC_POINT_is_at_infinity(g, q) == 0)
		r = CVM_OK;
	ERR_clear_error();
	if (r != CVM_OK) {
		EC_POINT_free(q);
		return r;
	}
	*out = q;
	return CVM_OK;
}

int cvm_ecdsa_begin(struct cvm_ecdsa_work *w, const EC_GROUP *g, const uint8_t *rb, const uint8_t *sb,
                    const uint8_t *digest, size_t n)
{
	const BIGNUM *order = EC_GROUP_get0_order(g);
	BIGNUM *s, *e, *inv;

	w->ctx = BN_CTX_new();
	if (w->ctx == NULL)
		return CVM_E_NOMEM;
	BN_CTX_start(w->ctx);
	w->r = BN_CTX_get(w->ctx);
	w->u1 = BN_CTX_get(w->ctx);
	w->u2 = BN_CTX_get(w->ctx);
	s = BN_CTX_get(w->ctx);
	e = BN_CTX_get(w->ctx);
	inv = BN_CTX_get(w->ctx);
	if (inv == NULL)
		return CVM_E_NOMEM;
	if (BN_bin2bn(rb, (int)n, w->r) == NULL || BN_bin2bn(sb, (int)n, s) == NULL ||
	    BN_bin2bn(digest, (int)n, e) == NULL)
		return CVM_E_NOMEM;
	/* 0 < r, s < order; the digest is as long as the order: no truncation */
	if (BN_is_zero(w->r) || BN_is_zero(s) || BN_cmp(w->r, order) >= 0 || BN_cmp(s, order) >= 0)
		return CVM_E_SIGNATURE;
	if (BN_mod_inverse(inv, s, order, w->ctx) == NULL || BN_mod_mul(w->u1, e, inv, order, w->ctx) != 1 ||
	    BN_mod_mul(w->u2, w->r, inv, order, w->ctx) != 1)
		return CVM_E_CRYPTO;
	return CVM_OK;
}

int cvm_ecdsa_finish(struct cvm_ecdsa_work *w, const EC_GROUP *g, const EC_POINT *sum)
{
	BIGNUM *x = BN_CTX_get(w->ctx);

	if (x == NULL || EC_POINT_is_at_infinity(g, sum) == 1 ||
	    EC_POINT_get_affine_coordinates(g, sum, x, NULL, w->ctx) != 1 ||
	    BN_nnmod(x, x, EC_GROUP_get0_order(g), w->ctx) != 1)
		return CVM_E_SIGNATURE;
	return BN_cmp(x, w->r) == 0 ? CVM_OK : CVM_E_SIGNATURE;
}

void cvm_ecdsa_end(struct cvm_ecdsa_work *w)
{
	if (w->ctx != NULL) {
		BN_CTX_end(w->ctx);
		BN_CTX_free(w->ctx);
	}
	w->ctx = NULL;
	ERR_clear_error();
}

#endif
