/* Certificate revocation lists. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto_int.h"

struct cvm_crl {
	X509_CRL *crl;
	int refs;
	int64_t this_update;
	int64_t next_update;
	uint8_t *in; /* the bytes given to cvm_crl_parse (the cache's key) */
	size_t in_len;
	/* As in struct cvm_cert: the DER, and where ECDSA-SHA256 signed it. */
	uint8_t *der;
	size_t der_len;
	bool ecdsa_sha256;
	size_t tbs_off, tbs_len, sig_off, sig_len;
};

/* The process-wide cache of parsed CRLs (cvm_crl_cache_keep), keyed by
 * the bytes given to cvm_crl_parse. */
static void crl_bytes(const void *obj, const uint8_t **p, size_t *len)
{
	const struct cvm_crl *c = obj;

	*p = c->in;
	*len = c->in_len;
}

static void *crl_ref(void *obj)
{
	struct cvm_crl *c = obj;

	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	return c;
}

static void crl_unref(void *obj)
{
	cvm_crl_free(obj);
}

static struct cvm_crl *crl_slots[CVM_CRL_CACHE_MAX];
static struct cvm_mru crl_cache = CVM_MRU_INIT(crl_slots, crl_bytes, crl_ref, crl_unref);

void cvm_crl_cache_keep(struct cvm_crl *crl)
{
	cvm_mru_keep(&crl_cache, crl);
}

/* crl_fast_fields fills what the ECDSA-SHA256 path needs (optional: without
 * it X509_CRL_verify checks the signature). */
static void crl_fast_fields(struct cvm_crl *c)
{
	unsigned char *der = NULL;
	int n = i2d_X509_CRL(c->crl, &der);

	if (n <= 0) {
		ERR_clear_error();
		return;
	}
	c->der = der;
	c->der_len = (size_t)n;
	c->ecdsa_sha256 =
	    X509_CRL_get_signature_nid(c->crl) == NID_ecdsa_with_SHA256 &&
	    cvm_signed_der_split(c->der, c->der_len, &c->tbs_off, &c->tbs_len, &c->sig_off, &c->sig_len);
	ERR_clear_error();
}

/* crl_from_der reads exactly one DER CRL. */
static X509_CRL *crl_from_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);

	if (crl != NULL && p != der + len) {
		X509_CRL_free(crl); /* trailing bytes after the CRL */
		crl = NULL;
	}
	return crl;
}

int cvm_crl_parse(const uint8_t *buf, size_t len, struct cvm_crl **out)
{
	struct cvm_crl *c = NULL;
	X509_CRL *crl = NULL;
	int r = CVM_E_FORMAT;

	*out = NULL;
	if (len > INT32_MAX)
		return CVM_E_TOO_LARGE;
	*out = cvm_mru_take(&crl_cache, buf, len);
	if (*out != NULL)
		return CVM_OK;
	if (cvm_pem_starts(buf, len)) {
		uint8_t *der = NULL;
		size_t der_len = 0;

		r = cvm_pem_der_one(buf, len, "X509 CRL", len, &der, &der_len);
		if (r == CVM_E_NOMEM)
			return r;
		r = CVM_E_FORMAT;
		if (der != NULL)
			crl = crl_from_der(der, der_len);
		free(der);
	} else {
		crl = crl_from_der(buf, len);
	}
	if (crl == NULL)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (!cvm_asn1_time_unix(X509_CRL_get0_lastUpdate(crl), &c->this_update))
		goto out;
	if (X509_CRL_get0_nextUpdate(crl) == NULL)
		c->next_update = INT64_MAX;
	else if (!cvm_asn1_time_unix(X509_CRL_get0_nextUpdate(crl), &c->next_update))
		goto out;
	c->refs = 1;
	c->crl = crl;
	crl = NULL; /* transferred */
	crl_fast_fields(c);
	if (len <= CVM_CRL_CACHE_BYTES) {
		c->in = malloc(len != 0 ? len : 1);
		if (c->in == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		memcpy(c->in, buf, len);
		c->in_len = len;
	}
	*out = c;
	c = NULL;
	r = CVM_OK;
out:
	ERR_clear_error();
	X509_CRL_free(crl);
	cvm_crl_free(c);
	return r;
}

void cvm_crl_free(struct cvm_crl *crl)
{
	if (crl == NULL)
		return;
	if (__atomic_load_n(&crl->refs, __ATOMIC_ACQUIRE) > 0 &&
	    __atomic_sub_fetch(&crl->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	X509_CRL_free(crl->crl);
	OPENSSL_free(crl->der);
	free(crl->in);
	free(crl);
}

int64_t cvm_crl_this_update(const struct cvm_crl *crl)
{
	return crl->this_update;
}

int64_t cvm_crl_next_update(const struct cvm_crl *crl)
{
	return crl->next_update;
}

void cvm_crl_issuer(const struct cvm_crl *crl, char *buf, size_t len)
{
	char *s = X509_NAME_oneline(X509_CRL_get_issuer(crl->crl), NULL, 0);

	if (len == 0)
		return;
	buf[0] = '\0';
	if (s != NULL) {
		size_t k = strlen(s);

		k = k < len - 1 ? k : len - 1;
		memcpy(buf, s, k);
		buf[k] = '\0';
	}
	OPENSSL_free(s);
}

static int check_issued(const struct cvm_crl *crl, const struct cvm_cert *issuer, bool keep)
{
	EVP_PKEY *pk;

	if (X509_NAME_cmp(X509_CRL_get_issuer(crl->crl), X509_get_subject_name(issuer->x)) != 0)
		return CVM_E_CHAIN;
	if (crl->ecdsa_sha256 && issuer->has_p256)
		return cvm_p256_verify_der(&issuer->p256, crl->der + crl->tbs_off, crl->tbs_len,
		                           crl->der + crl->sig_off, crl->sig_len, keep) == CVM_OK
		           ? CVM_OK
		           : CVM_E_SIGNATURE;
	pk = X509_get0_pubkey(issuer->x);
	if (pk == NULL || X509_CRL_verify(crl->crl, pk) != 1) {
		ERR_clear_error();
		return CVM_E_SIGNATURE;
	}
	return CVM_OK;
}

int cvm_crl_check_issued(const struct cvm_crl *crl, const struct cvm_cert *issuer)
{
	return check_issued(crl, issuer, false);
}

int cvm_crl_check_issued_kept(const struct cvm_crl *crl, const struct cvm_cert *issuer)
{
	return check_issued(crl, issuer, true);
}

bool cvm_crl_revokes(const struct cvm_crl *crl, const struct cvm_cert *c)
{
	X509_REVOKED *rev = NULL;
	bool revoked = X509_CRL_get0_by_cert(crl->crl, &rev, c->x) == 1;

	ERR_clear_error();
	return revoked;
}

bool cvm_crl_signed_rsa_pss_sha384(const struct cvm_crl *crl)
{
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;

	X509_CRL_get0_signature(crl->crl, &sig, &alg);
	return cvm_algor_is_rsa_pss_sha384(alg);
}
