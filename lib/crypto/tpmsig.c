/* TPM signatures: ECDSA over NIST P-256/P-384 (r and s as the big-endian
 * TPM2B_ECC_PARAMETERs of TPMS_SIGNATURE_ECC) and RSASSA-PKCS1-v1_5 /
 * RSASSA-PSS (TPMS_SIGNATURE_RSA), each with SHA-256 or SHA-384, under a
 * public key built from TPMT_PUBLIC's unique field (n and the exponent, or x
 * and y) or read from a SubjectPublicKeyInfo. Algorithms arrive as TPM IDs,
 * so lib/tpm passes what it unmarshalled without translating. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto_int.h"

struct cvm_tpmsig_key {
	EVP_PKEY *pkey;
	enum cvm_tpmsig_key_type type;
	unsigned bits;  /* RSA modulus bits, or the curve's field bits */
	uint16_t curve; /* CVM_TPMSIG_ECC_NIST_P256/P384; 0 for RSA */
};

/* The longest DER ECDSA-Sig-Value for P-384: two 49-byte INTEGERs plus
 * headers. */
#define ECDSA_DER_MAX 112
/* A PEM SubjectPublicKeyInfo of a 4096-bit RSA key is about 800 bytes. */
#define SPKI_PEM_MAX 4096

static const EVP_MD *md_of(uint16_t hash)
{
	switch (hash) {
	case CVM_DIGEST_SHA256:
		return EVP_sha256();
	case CVM_DIGEST_SHA384:
		return EVP_sha384();
	default:
		return NULL;
	}
}

static size_t curve_bytes(uint16_t curve)
{
	switch (curve) {
	case CVM_TPMSIG_ECC_NIST_P256:
		return 32;
	case CVM_TPMSIG_ECC_NIST_P384:
		return 48;
	default:
		return 0;
	}
}

static const char *curve_group(uint16_t curve)
{
	return curve == CVM_TPMSIG_ECC_NIST_P256 ? "prime256v1" : "secp384r1";
}

static int key_new(EVP_PKEY *pkey, enum cvm_tpmsig_key_type type, unsigned bits, uint16_t curve,
                   struct cvm_tpmsig_key **out)
{
	struct cvm_tpmsig_key *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return CVM_E_NOMEM;
	k->pkey = pkey;
	k->type = type;
	k->bits = bits;
	k->curve = curve;
	*out = k;
	return CVM_OK;
}

int cvm_tpmsig_key_rsa(const uint8_t *n, size_t n_len, uint32_t exponent, struct cvm_tpmsig_key **out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	int bits, r = CVM_E_CRYPTO;

	*out = NULL;
	/* TPMS_RSA_PARMS: an exponent of zero means the default, 2^16 + 1. */
	if (exponent == 0)
		exponent = 65537;
	if (n == NULL || n_len == 0 || n_len > CVM_TPMSIG_RSA_BITS_MAX / 8)
		return n_len > CVM_TPMSIG_RSA_BITS_MAX / 8 ? CVM_E_UNSUPPORTED : CVM_E_FORMAT;
	if (exponent < 3 || (exponent & 1) == 0)
		return CVM_E_FORMAT;
	bn_n = BN_bin2bn(n, (int)n_len, NULL);
	bn_e = BN_new();
	bld = OSSL_PARAM_BLD_new();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (bn_n == NULL || bn_e == NULL || bld == NULL || ctx == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	bits = BN_num_bits(bn_n);
	if (!BN_is_odd(bn_n)) {
		r = CVM_E_FORMAT;
		goto out;
	}
	if (bits < CVM_TPMSIG_RSA_BITS_MIN || bits > CVM_TPMSIG_RSA_BITS_MAX) {
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	if (BN_set_word(bn_e, exponent) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1)
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	if (params == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	r = key_new(pkey, CVM_TPMSIG_KEY_RSA, (unsigned)bits, 0, out);
	if (r == CVM_OK)
		pkey = NULL; /* transferred */
out:
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return r;
}

int cvm_tpmsig_key_ecc(uint16_t curve, const uint8_t *x, size_t x_len, const uint8_t *y, size_t y_len,
                       struct cvm_tpmsig_key **out)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[3];
	uint8_t point[1 + 2 * 48];
	char group[16];
	size_t fb = curve_bytes(curve);
	int r = CVM_E_FORMAT;

	*out = NULL;
	if (fb == 0)
		return CVM_E_UNSUPPORTED;
	/* A TPM2B_ECC_PARAMETER may drop leading zero bytes; never add any. */
	if (x == NULL || y == NULL || x_len == 0 || y_len == 0 || x_len > fb || y_len > fb)
		return CVM_E_FORMAT;
	memset(point, 0, sizeof(point));
	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1 + (fb - x_len), x, x_len);
	memcpy(point + 1 + fb + (fb - y_len), y, y_len);
	(void)snprintf(group, sizeof(group), "%s", curve_group(curve));
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * fb);
	params[2] = OSSL_PARAM_construct_end();
	/* The import decodes the point, which rejects one not on the curve. */
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	r = key_new(pkey, CVM_TPMSIG_KEY_ECC, (unsigned)(fb * 8), curve, out);
	if (r == CVM_OK)
		pkey = NULL; /* transferred */
out:
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* classify fills type, bits and curve for an RSA or P-256/P-384 key. */
static int classify(EVP_PKEY *pkey, enum cvm_tpmsig_key_type *type, unsigned *bits, uint16_t *curve)
{
	char group[64];
	size_t glen = 0;
	int b;

	*curve = 0;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		b = EVP_PKEY_get_bits(pkey);
		if (b < CVM_TPMSIG_RSA_BITS_MIN || b > CVM_TPMSIG_RSA_BITS_MAX)
			return CVM_E_UNSUPPORTED;
		*type = CVM_TPMSIG_KEY_RSA;
		*bits = (unsigned)b;
		return CVM_OK;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
		                                   &glen) != 1)
			return CVM_E_UNSUPPORTED;
		if (strcmp(group, "prime256v1") == 0)
			*curve = CVM_TPMSIG_ECC_NIST_P256;
		else if (strcmp(group, "secp384r1") == 0)
			*curve = CVM_TPMSIG_ECC_NIST_P384;
		else
			return CVM_E_UNSUPPORTED;
		*type = CVM_TPMSIG_KEY_ECC;
		*bits = (unsigned)(curve_bytes(*curve) * 8);
		return CVM_OK;
	default:
		return CVM_E_UNSUPPORTED;
	}
}

int cvm_tpmsig_key_spki(const uint8_t *buf, size_t len, struct cvm_tpmsig_key **out)
{
	enum cvm_tpmsig_key_type type = CVM_TPMSIG_KEY_RSA;
	EVP_PKEY *pkey = NULL;
	const unsigned char *p = buf;
	unsigned bits = 0;
	uint16_t curve = 0;
	int r = CVM_E_FORMAT;

	*out = NULL;
	if (buf == NULL || len == 0 || len > SPKI_PEM_MAX)
		return len > SPKI_PEM_MAX ? CVM_E_TOO_LARGE : CVM_E_FORMAT;
	if (cvm_pem_starts(buf, len)) {
		uint8_t *der = NULL;
		size_t der_len = 0;

		r = cvm_pem_der_one(buf, len, "PUBLIC KEY", len, &der, &der_len);
		if (r == CVM_E_NOMEM)
			goto out;
		r = CVM_E_FORMAT;
		p = der;
		pkey = der != NULL ? d2i_PUBKEY(NULL, &p, (long)der_len) : NULL;
		if (pkey != NULL && (size_t)(p - der) != der_len) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
		free(der);
	} else {
		pkey = d2i_PUBKEY(NULL, &p, (long)len);
		/* DER must fill the input exactly. */
		if (pkey != NULL && (size_t)(p - buf) != len) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
	if (pkey == NULL)
		goto out;
	r = classify(pkey, &type, &bits, &curve);
	if (r != CVM_OK)
		goto out;
	r = key_new(pkey, type, bits, curve, out);
	if (r == CVM_OK)
		pkey = NULL; /* transferred */
out:
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	return r;
}

void cvm_tpmsig_key_free(struct cvm_tpmsig_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

enum cvm_tpmsig_key_type cvm_tpmsig_key_type(const struct cvm_tpmsig_key *k)
{
	return k->type;
}

unsigned cvm_tpmsig_key_bits(const struct cvm_tpmsig_key *k)
{
	return k->bits;
}

uint16_t cvm_tpmsig_key_curve(const struct cvm_tpmsig_key *k)
{
	return k->curve;
}

bool cvm_tpmsig_key_equal(const struct cvm_tpmsig_key *a, const struct cvm_tpmsig_key *b)
{
	bool eq = EVP_PKEY_eq(a->pkey, b->pkey) == 1;

	ERR_clear_error();
	return eq;
}

int cvm_tpmsig_key_pem(const struct cvm_tpmsig_key *k, char **out)
{
	BIO *bio = NULL;
	char *data = NULL, *s = NULL;
	long n;
	int r = CVM_E_CRYPTO;

	*out = NULL;
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (PEM_write_bio_PUBKEY(bio, k->pkey) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || data == NULL)
		goto out;
	s = malloc((size_t)n + 1);
	if (s == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	r = CVM_OK;
out:
	ERR_clear_error();
	BIO_free(bio);
	return r;
}

/* ecdsa_der encodes r and s (each 1..field bytes, big-endian) as a DER
 * ECDSA-Sig-Value. Returns its length, or 0. */
static size_t ecdsa_der(const uint8_t *rb, size_t r_len, const uint8_t *sb, size_t s_len, uint8_t *der,
                        size_t cap)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rb, (int)r_len, NULL);
	BIGNUM *s = BN_bin2bn(sb, (int)s_len, NULL);
	unsigned char *p = der;
	int len = 0;

	if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return 0;
	}
	/* r and s now belong to sig */
	len = i2d_ECDSA_SIG(sig, NULL);
	if (len <= 0 || (size_t)len > cap)
		len = 0;
	else
		len = i2d_ECDSA_SIG(sig, &p);
	ECDSA_SIG_free(sig);
	return len > 0 ? (size_t)len : 0;
}

/* digest_verify runs one EVP_DigestVerify; `pss` selects PSS padding with
 * MGF1 over the same hash and any salt length (the TPM picks it). */
static int digest_verify(EVP_PKEY *pkey, const EVP_MD *md, bool pss, const uint8_t *msg, size_t len,
                         const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int r = CVM_E_SIGNATURE;

	if (ctx == NULL)
		return CVM_E_NOMEM;
	if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) != 1) {
		r = CVM_E_CRYPTO;
		goto out;
	}
	if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
	            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
		r = CVM_E_CRYPTO;
		goto out;
	}
	if (EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1)
		r = CVM_OK;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return r;
}

int cvm_tpmsig_verify_ecdsa(const struct cvm_tpmsig_key *k, uint16_t hash, const uint8_t *msg, size_t len,
                            const uint8_t *r, size_t r_len, const uint8_t *s, size_t s_len)
{
	const EVP_MD *md = md_of(hash);
	uint8_t der[ECDSA_DER_MAX];
	size_t fb, der_len;

	if (md == NULL)
		return CVM_E_UNSUPPORTED;
	if (k->type != CVM_TPMSIG_KEY_ECC)
		return CVM_E_MISMATCH;
	fb = curve_bytes(k->curve);
	if (r_len == 0 || s_len == 0 || r_len > fb || s_len > fb)
		return CVM_E_SIGNATURE;
	der_len = ecdsa_der(r, r_len, s, s_len, der, sizeof(der));
	if (der_len == 0)
		return CVM_E_SIGNATURE;
	return digest_verify(k->pkey, md, false, msg, len, der, der_len);
}

int cvm_tpmsig_verify_rsa(const struct cvm_tpmsig_key *k, uint16_t scheme, uint16_t hash, const uint8_t *msg,
                          size_t len, const uint8_t *sig, size_t sig_len)
{
	const EVP_MD *md = md_of(hash);

	if (md == NULL || (scheme != CVM_TPMSIG_RSASSA && scheme != CVM_TPMSIG_RSAPSS))
		return CVM_E_UNSUPPORTED;
	if (k->type != CVM_TPMSIG_KEY_RSA)
		return CVM_E_MISMATCH;
	/* RSA signatures are exactly as long as the modulus. */
	if (sig_len != ((size_t)k->bits + 7) / 8)
		return CVM_E_SIGNATURE;
	return digest_verify(k->pkey, md, scheme == CVM_TPMSIG_RSAPSS, msg, len, sig, sig_len);
}
