/* The scalar side of ECDSA verification, shared by the P-256 and P-384
 * verifiers (p256.c, p384.c), which differ only in how they compute
 * u1*G + u2*Q. Public values only: variable time is fine. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "crypto_int.h"

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
