/* Public keys that verify signatures over precomputed digests (IMA signature
 * format v2: the kernel hands the file digest itself to the key). Keys come
 * from PEM or DER, bare (SubjectPublicKeyInfo) or in a certificate. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/encoding.h>

#include "crypto_int.h"

#define RSA_BITS_MIN 2048
#define SKID_MAX 64

struct cvm_pubkey {
	EVP_PKEY *pkey;
	enum cvm_pubkey_type type;
	unsigned bits;
	uint8_t spki_sha1[20];
	uint8_t skid[SKID_MAX];
	size_t skid_len;
};

void cvm_pubkey_free(struct cvm_pubkey *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

/* read_der takes a certificate or a SubjectPublicKeyInfo that fills the
 * buffer exactly. */
static void read_der(const uint8_t *buf, size_t len, X509 **x, EVP_PKEY **pkey)
{
	const unsigned char *p = buf;

	*x = d2i_X509(NULL, &p, (long)len);
	if (*x != NULL && (size_t)(p - buf) != len) {
		X509_free(*x);
		*x = NULL;
	}
	if (*x != NULL)
		return;
	p = buf;
	*pkey = d2i_PUBKEY(NULL, &p, (long)len);
	if (*pkey != NULL && (size_t)(p - buf) != len) {
		EVP_PKEY_free(*pkey);
		*pkey = NULL;
	}
}

/* read_pem takes the first CERTIFICATE or PUBLIC KEY block of the text
 * (other blocks before it are passed over) through the library's PEM
 * framer, then reads its DER as read_der does. */
static int read_pem(const uint8_t *buf, size_t len, X509 **x, EVP_PKEY **pkey)
{
	struct cvm_pem_block b;
	struct cvm_rd in;
	uint8_t *der;
	size_t der_len = 0, cap;
	int r;

	cvm_rd_init(&in, buf, len);
	for (;;) {
		r = cvm_pem_next(&in, &b);
		if (r != CVM_OK)
			return CVM_E_FORMAT;
		if (cvm_pem_label_is(&b, "CERTIFICATE") || cvm_pem_label_is(&b, "PUBLIC KEY"))
			break;
	}
	cap = cvm_pem_decoded_max(&b);
	der = malloc(cap != 0 ? cap : 1);
	if (der == NULL)
		return CVM_E_NOMEM;
	r = cvm_pem_decode(&b, der, cap, &der_len);
	if (r == CVM_OK)
		read_der(der, der_len, x, pkey);
	free(der);
	return r == CVM_OK ? CVM_OK : CVM_E_FORMAT;
}

static int spki_sha1(EVP_PKEY *pkey, uint8_t out[20])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits = NULL;
	int bits_len = 0, r = CVM_E_CRYPTO;
	unsigned int n = 0;

	if (X509_PUBKEY_set(&xpk, pkey) != 1)
		goto out;
	if (X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, xpk) != 1 || bits_len <= 0)
		goto out;
	if (EVP_Digest(bits, (size_t)bits_len, out, &n, EVP_sha1(), NULL) != 1 || n != 20)
		goto out;
	r = CVM_OK;
out:
	X509_PUBKEY_free(xpk);
	return r;
}

int cvm_pubkey_parse(const uint8_t *buf, size_t len, struct cvm_pubkey **out)
{
	struct cvm_pubkey *k = NULL;
	X509 *x = NULL;
	EVP_PKEY *pkey = NULL;
	const ASN1_OCTET_STRING *skid;
	int r, bits;

	*out = NULL;
	if (buf == NULL || len == 0)
		return CVM_E_FORMAT;
	if (len > CVM_PUBKEY_FILE_MAX)
		return CVM_E_TOO_LARGE;
	if (cvm_pem_starts(buf, len)) {
		r = read_pem(buf, len, &x, &pkey);
		if (r != CVM_OK)
			goto out;
	} else {
		read_der(buf, len, &x, &pkey);
	}
	if (x != NULL)
		pkey = X509_get_pubkey(x);
	if (pkey == NULL) {
		r = CVM_E_FORMAT;
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	bits = EVP_PKEY_get_bits(pkey);
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		k->type = CVM_PUBKEY_RSA;
		if (bits < RSA_BITS_MIN) {
			r = CVM_E_UNSUPPORTED;
			goto out;
		}
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		k->type = CVM_PUBKEY_EC;
	} else {
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	k->bits = bits > 0 ? (unsigned)bits : 0;
	r = spki_sha1(pkey, k->spki_sha1);
	if (r != CVM_OK)
		goto out;
	if (x != NULL) {
		skid = X509_get0_subject_key_id(x);
		if (skid != NULL && ASN1_STRING_length(skid) > 0 && ASN1_STRING_length(skid) <= SKID_MAX) {
			k->skid_len = (size_t)ASN1_STRING_length(skid);
			memcpy(k->skid, ASN1_STRING_get0_data(skid), k->skid_len);
		}
	}
	k->pkey = pkey;
	pkey = NULL; /* transferred */
	*out = k;
	k = NULL; /* transferred */
	r = CVM_OK;
out:
	ERR_clear_error();
	cvm_pubkey_free(k);
	EVP_PKEY_free(pkey);
	X509_free(x);
	return r;
}

enum cvm_pubkey_type cvm_pubkey_type(const struct cvm_pubkey *k)
{
	return k->type;
}

unsigned cvm_pubkey_bits(const struct cvm_pubkey *k)
{
	return k->bits;
}

void cvm_pubkey_spki_sha1(const struct cvm_pubkey *k, uint8_t out[20])
{
	memcpy(out, k->spki_sha1, sizeof(k->spki_sha1));
}

bool cvm_pubkey_skid(const struct cvm_pubkey *k, const uint8_t **id, size_t *len)
{
	*id = NULL;
	*len = 0;
	if (k->skid_len == 0)
		return false;
	*id = k->skid;
	*len = k->skid_len;
	return true;
}

static const EVP_MD *md_of(uint16_t alg)
{
	switch (alg) {
	case CVM_DIGEST_SHA1:
		return EVP_sha1();
	case CVM_DIGEST_SHA256:
		return EVP_sha256();
	case CVM_DIGEST_SHA384:
		return EVP_sha384();
	case CVM_DIGEST_SHA512:
		return EVP_sha512();
	case CVM_DIGEST_SM3_256:
		return EVP_sm3();
	default:
		return NULL;
	}
}

int cvm_pubkey_verify_digest(const struct cvm_pubkey *k, uint16_t alg, const uint8_t *digest,
                             size_t digest_len, const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = md_of(alg);
	int r, v;

	if (md == NULL)
		return CVM_E_UNSUPPORTED;
	if (k == NULL || digest == NULL || digest_len != cvm_digest_len(alg) || (sig == NULL && sig_len != 0))
		return CVM_E_INVAL;
	if (sig_len == 0)
		return CVM_E_SIGNATURE;
	pctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (pctx == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (EVP_PKEY_verify_init(pctx) != 1 || EVP_PKEY_CTX_set_signature_md(pctx, md) != 1) {
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	if (k->type == CVM_PUBKEY_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
		r = CVM_E_CRYPTO;
		goto out;
	}
	v = EVP_PKEY_verify(pctx, sig, sig_len, digest, digest_len);
	r = v == 1 ? CVM_OK : CVM_E_SIGNATURE;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(pctx);
	return r;
}
