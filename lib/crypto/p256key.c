/* P-256 private keys: scalars kept in a struct cvm_secret, the canonical
 * encodings dstack hashes (PKCS#8, SPKI) written from fixed templates, PEM
 * import that wipes its intermediate copies, and ECDSA-SHA256 signing. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cvmkit/encoding.h>
#include <cvmkit/crypto.h>

#include "crypto_int.h"
#include "crypto_lib.h"
#include "p256key_int.h"

/* The group order n of P-256, big-endian. */
static const uint8_t p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* PKCS#8 PrivateKeyInfo up to the scalar, and the [1] public key prefix. */
static const uint8_t pkcs8_head[36] = {
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
    0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
};
static const uint8_t pkcs8_pub_head[6] = {0xa1, 0x44, 0x03, 0x42, 0x00, 0x04};

/* SubjectPublicKeyInfo for an uncompressed P-256 point, up to x || y. */
static const uint8_t spki_head[27] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
    0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
};
#define SPKI_LEN (sizeof(spki_head) + 64)

#define PEM_BEGIN "-----BEGIN PRIVATE KEY-----\n"
#define PEM_END "-----END PRIVATE KEY-----\n"
#define PEM_MAX ((size_t)16 * 1024)

/* scalar_in_range is 0 < d < n, without branching on the bytes of d. */
static bool scalar_in_range(const uint8_t d[32])
{
	unsigned lt = 0, gt = 0, nonzero = 0;

	for (size_t i = 0; i < 32; i++) {
		unsigned a = d[i], b = p256_order[i];
		/* the first differing byte decides; later ones are masked out */
		unsigned undecided = 1u ^ (lt | gt);

		lt |= undecided & ((a - b) >> 8 & 1u);
		gt |= undecided & ((b - a) >> 8 & 1u);
		nonzero |= a;
	}
	return lt == 1 && nonzero != 0;
}

static bool host_is_little_endian(void)
{
	const uint16_t one = 1;
	uint8_t first;

	memcpy(&first, &one, 1);
	return first == 1;
}

/* public_point computes d * G, uncompressed (04 || x || y). */
static int public_point(const uint8_t d[32], uint8_t out[65])
{
	EC_GROUP *group = NULL;
	EC_POINT *p = NULL;
	BN_CTX *bctx = NULL;
	BIGNUM *bn = NULL;
	int r = CVM_E_CRYPTO;

	group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	bctx = BN_CTX_secure_new();
	bn = BN_secure_new();
	if (group == NULL || bctx == NULL || bn == NULL)
		goto out;
	p = EC_POINT_new(group);
	if (p == NULL || BN_bin2bn(d, 32, bn) == NULL)
		goto out;
	BN_set_flags(bn, BN_FLG_CONSTTIME);
	if (EC_POINT_mul(group, p, bn, NULL, NULL, bctx) != 1 ||
	    EC_POINT_point2oct(group, p, POINT_CONVERSION_UNCOMPRESSED, out, 65, bctx) != 65)
		goto out;
	r = CVM_OK;
out:
	ERR_clear_error();
	BN_clear_free(bn);
	BN_CTX_free(bctx);
	EC_POINT_free(p);
	EC_GROUP_free(group);
	return r;
}

/* make_pkey builds an OpenSSL key pair from the scalar and its point. The
 * scalar goes to OpenSSL as a native-endian buffer that we wipe ourselves. */
static int make_pkey(const uint8_t d[32], const uint8_t pub[65], EVP_PKEY **out)
{
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM params[4];
	uint8_t native[32];
	uint8_t point[65];
	char group[] = "prime256v1";
	int r = CVM_E_CRYPTO;

	*out = NULL;
	for (size_t i = 0; i < 32; i++)
		native[i] = host_is_little_endian() ? d[31 - i] : d[i];
	memcpy(point, pub, sizeof(point));
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, native, sizeof(native));
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, out, EVP_PKEY_KEYPAIR, params) != 1)
		goto out;
	r = CVM_OK;
out:
	cvm_wipe(native, sizeof(native));
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int cvm_p256_keypair_from_scalar(const uint8_t d[CVM_P256_SCALAR_LEN], struct cvm_p256_keypair **out)
{
	struct cvm_p256_keypair *kp = NULL;
	int r;

	*out = NULL;
	if (!scalar_in_range(d))
		return CVM_E_FORMAT;
	kp = calloc(1, sizeof(*kp));
	if (kp == NULL)
		return CVM_E_NOMEM;
	kp->d = cvm_secret_new(CVM_P256_SCALAR_LEN);
	if (kp->d == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(kp->d->p, d, CVM_P256_SCALAR_LEN);
	r = public_point(d, kp->pub);
	if (r != CVM_OK)
		goto out;
	r = make_pkey(d, kp->pub, &kp->pkey);
	if (r != CVM_OK)
		goto out;
	*out = kp;
	kp = NULL; /* transferred */
out:
	cvm_p256_keypair_free(kp);
	return r;
}

int cvm_p256_keypair_generate(struct cvm_p256_keypair **out)
{
	uint8_t d[CVM_P256_SCALAR_LEN];
	int r = CVM_E_CRYPTO;

	*out = NULL;
	/* A random 256-bit value is >= n with probability about 2^-32. */
	for (int tries = 0; tries < 8; tries++) {
		if (RAND_priv_bytes(d, sizeof(d)) != 1) {
			ERR_clear_error();
			r = CVM_E_CRYPTO;
			break;
		}
		r = cvm_p256_keypair_from_scalar(d, out);
		if (r != CVM_E_FORMAT)
			break;
	}
	cvm_wipe(d, sizeof(d));
	return r;
}

void cvm_p256_keypair_free(struct cvm_p256_keypair *kp)
{
	if (kp == NULL)
		return;
	EVP_PKEY_free(kp->pkey); /* OpenSSL clears the private scalar */
	cvm_secret_free(kp->d);
	cvm_wipe(kp, sizeof(*kp));
	free(kp);
}

void cvm_p256_keypair_public(const struct cvm_p256_keypair *kp, uint8_t xy[64])
{
	memcpy(xy, kp->pub + 1, 64);
}

int cvm_p256_keypair_spki(const struct cvm_p256_keypair *kp, uint8_t **out, size_t *out_len)
{
	uint8_t *der;

	*out = NULL;
	*out_len = 0;
	der = malloc(SPKI_LEN);
	if (der == NULL)
		return CVM_E_NOMEM;
	memcpy(der, spki_head, sizeof(spki_head));
	memcpy(der + sizeof(spki_head), kp->pub + 1, 64);
	*out = der;
	*out_len = SPKI_LEN;
	return CVM_OK;
}

void cvm_p256_keypair_pkcs8(const struct cvm_p256_keypair *kp, uint8_t out[CVM_P256_PKCS8_DER_LEN])
{
	size_t n = 0;

	memcpy(out + n, pkcs8_head, sizeof(pkcs8_head));
	n += sizeof(pkcs8_head);
	memcpy(out + n, kp->d->p, CVM_P256_SCALAR_LEN);
	n += CVM_P256_SCALAR_LEN;
	memcpy(out + n, pkcs8_pub_head, sizeof(pkcs8_pub_head));
	n += sizeof(pkcs8_pub_head);
	memcpy(out + n, kp->pub + 1, 64);
}

int cvm_p256_keypair_pkcs8_pem(const struct cvm_p256_keypair *kp, struct cvm_secret **out)
{
	/* 138 bytes -> 184 base64 characters -> lines of 64, 64 and 56 */
	enum { B64_LEN = (CVM_P256_PKCS8_DER_LEN + 2) / 3 * 4, LINES = (B64_LEN + 63) / 64 };
	uint8_t der[CVM_P256_PKCS8_DER_LEN];
	uint8_t b64[B64_LEN + 1];
	struct cvm_secret *s = NULL;
	size_t n = 0;
	int r = CVM_E_CRYPTO;

	*out = NULL;
	cvm_p256_keypair_pkcs8(kp, der);
	if (EVP_EncodeBlock(b64, der, (int)sizeof(der)) != B64_LEN)
		goto out;
	s = cvm_secret_new(sizeof(PEM_BEGIN) - 1 + B64_LEN + LINES + sizeof(PEM_END) - 1);
	if (s == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(s->p, PEM_BEGIN, sizeof(PEM_BEGIN) - 1);
	n = sizeof(PEM_BEGIN) - 1;
	for (size_t i = 0; i < B64_LEN; i += 64) {
		size_t line = B64_LEN - i < 64 ? B64_LEN - i : 64;

		memcpy(s->p + n, b64 + i, line);
		n += line;
		s->p[n++] = '\n';
	}
	memcpy(s->p + n, PEM_END, sizeof(PEM_END) - 1);
	n += sizeof(PEM_END) - 1;
	if (n != s->len) {
		r = CVM_E_INTERNAL;
		goto out;
	}
	*out = s;
	s = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_secret_free(s);
	cvm_wipe(der, sizeof(der));
	cvm_wipe(b64, sizeof(b64));
	return r;
}

/* ---- PEM import ------------------------------------------------------------ */

/* pem_der frames the one PRIVATE KEY (PKCS#8) or EC PRIVATE KEY (SEC 1)
 * block of `pem` (white space around it allowed, nothing else) with the
 * library's PEM framer and decodes its body into a new secret. */
static int pem_der(const char *pem, size_t len, struct cvm_secret **out, bool *is_pkcs8)
{
	struct cvm_pem_block b;
	struct cvm_secret *s = NULL;
	struct cvm_rd in;
	size_t n = 0;
	int r;

	*out = NULL;
	cvm_rd_init(&in, pem, len);
	r = cvm_pem_next(&in, &b);
	if (r != CVM_OK)
		return CVM_E_FORMAT;
	while (in.len != 0 && (in.p[0] == ' ' || in.p[0] == '\t' || in.p[0] == '\r' || in.p[0] == '\n'))
		(void)cvm_rd_skip(&in, 1);
	if (in.len != 0)
		return CVM_E_FORMAT; /* one key per PEM text */
	if (cvm_pem_label_is(&b, "PRIVATE KEY"))
		*is_pkcs8 = true;
	else if (cvm_pem_label_is(&b, "EC PRIVATE KEY"))
		*is_pkcs8 = false;
	else
		return CVM_E_FORMAT;
	s = cvm_secret_new(cvm_pem_decoded_max(&b));
	if (s == NULL)
		return CVM_E_NOMEM;
	r = cvm_pem_decode(&b, s->p, s->len, &n);
	if (r != CVM_OK) {
		cvm_secret_free(s); /* wipes what was decoded */
		return CVM_E_FORMAT;
	}
	/* The bytes past n were never written: the free still wipes them all. */
	s->len = n;
	*out = s;
	return CVM_OK;
}

/* pkey_scalar extracts the private scalar of an EC key, big-endian. */
static int pkey_scalar(const EVP_PKEY *pkey, uint8_t d[32])
{
	BIGNUM *bn = NULL;
	int r = CVM_E_FORMAT;

	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1)
		goto out;
	if (BN_bn2binpad(bn, d, 32) != 32)
		goto out;
	r = CVM_OK;
out:
	BN_clear_free(bn);
	ERR_clear_error();
	return r;
}

/* pkey_point_matches compares the public point OpenSSL decoded (or computed,
 * when the encoding had none) with ours. */
static bool pkey_point_matches(const EVP_PKEY *pkey, const uint8_t pub[65])
{
	BIGNUM *x = NULL, *y = NULL;
	uint8_t xy[64];
	bool ok = false;

	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 && BN_bn2binpad(x, xy, 32) == 32 &&
	    BN_bn2binpad(y, xy + 32, 32) == 32)
		ok = memcmp(xy, pub + 1, 64) == 0;
	BN_free(x);
	BN_free(y);
	ERR_clear_error();
	return ok;
}

int cvm_p256_keypair_from_pem(const char *pem, size_t len, struct cvm_p256_keypair **out)
{
	struct cvm_secret *der = NULL;
	struct cvm_p256_keypair *kp = NULL;
	EVP_PKEY *pkey = NULL;
	const unsigned char *p;
	uint8_t d[32];
	char group[64];
	bool is_pkcs8 = false;
	int r;

	*out = NULL;
	memset(d, 0, sizeof(d));
	if (pem == NULL)
		return CVM_E_INVAL;
	if (len > PEM_MAX)
		return CVM_E_TOO_LARGE;
	r = pem_der(pem, len, &der, &is_pkcs8);
	if (r != CVM_OK)
		goto out;
	p = der->p;
	if (is_pkcs8) {
		/* PKCS8_PRIV_KEY_INFO_free clears the private key it holds. */
		PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der->len);

		if (p8 != NULL && p == der->p + der->len)
			pkey = EVP_PKCS82PKEY(p8);
		PKCS8_PRIV_KEY_INFO_free(p8);
	} else {
		pkey = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, (long)der->len);
		if (pkey != NULL && p != der->p + der->len) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
	if (pkey == NULL) {
		r = CVM_E_FORMAT;
		goto out;
	}
	if (!EVP_PKEY_is_a(pkey, "EC") ||
	    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) !=
	        1 ||
	    strcmp(group, "prime256v1") != 0) {
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	r = pkey_scalar(pkey, d);
	if (r != CVM_OK)
		goto out;
	r = cvm_p256_keypair_from_scalar(d, &kp);
	if (r != CVM_OK)
		goto out;
	if (!pkey_point_matches(pkey, kp->pub)) {
		r = CVM_E_FORMAT;
		goto out;
	}
	*out = kp;
	kp = NULL; /* transferred */
out:
	ERR_clear_error();
	cvm_wipe(d, sizeof(d));
	EVP_PKEY_free(pkey);
	cvm_secret_free(der);
	cvm_p256_keypair_free(kp);
	return r;
}

int cvm_p256_keypair_sign(const struct cvm_p256_keypair *kp, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	static const uint8_t empty[1];
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	const BIGNUM *br, *bs;
	uint8_t der[80];
	size_t der_len = sizeof(der);
	const unsigned char *p = der;
	int r = CVM_E_CRYPTO;

	memset(sig, 0, 64);
	if (msg == NULL && len != 0)
		return CVM_E_INVAL;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		goto out;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, kp->pkey) != 1 ||
	    EVP_DigestSign(ctx, der, &der_len, len ? msg : empty, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (es == NULL)
		goto out;
	ECDSA_SIG_get0(es, &br, &bs);
	if (BN_bn2binpad(br, sig, 32) != 32 || BN_bn2binpad(bs, sig + 32, 32) != 32) {
		memset(sig, 0, 64);
		goto out;
	}
	r = CVM_OK;
out:
	ERR_clear_error();
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return r;
}

void *cvm_p256_keypair_evp_pkey(const struct cvm_p256_keypair *kp)
{
	return kp->pkey;
}
