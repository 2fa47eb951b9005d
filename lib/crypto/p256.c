/* ECDSA P-256 over raw keys and raw r || s signatures, as DCAP quotes carry them. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "crypto_int.h"

struct cvm_p256_key {
	EVP_PKEY *pkey;
};

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
	struct cvm_p256_key *k = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM params[3];
	uint8_t point[65];
	char group[] = "prime256v1";
	int r = CVM_E_FORMAT;

	*out = NULL;
	point[0] = 0x04;
	memcpy(point + 1, xy, 64);
	k = calloc(1, sizeof(*k));
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (k == NULL || ctx == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	*out = k;
	k = NULL; /* transferred */
	r = CVM_OK;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	cvm_p256_key_free(k);
	return r;
}

void cvm_p256_key_free(struct cvm_p256_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int cvm_p256_verify(const struct cvm_p256_key *k, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	uint8_t der[80];
	size_t der_len;

	der_len = cvm_ecdsa_raw_to_der(sig, 32, der, sizeof(der));
	if (der_len == 0)
		return CVM_E_SIGNATURE;
	return cvm_evp_verify_sha256(k->pkey, msg, len, der, der_len);
}
