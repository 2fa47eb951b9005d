/* Certificate revocation lists. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto_int.h"

struct cvm_crl {
	X509_CRL *crl;
	int64_t this_update;
	int64_t next_update;
};

int cvm_crl_parse(const uint8_t *buf, size_t len, struct cvm_crl **out)
{
	struct cvm_crl *c = NULL;
	X509_CRL *crl = NULL;
	int r = CVM_E_FORMAT;

	*out = NULL;
	if (len > INT32_MAX)
		return CVM_E_TOO_LARGE;
	if (cvm_pem_starts(buf, len)) {
		BIO *b = BIO_new_mem_buf(buf, (int)len);

		if (b == NULL)
			return CVM_E_NOMEM;
		crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
		BIO_free(b);
	} else {
		const unsigned char *p = buf;

		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (crl != NULL && p != buf + len) {
			X509_CRL_free(crl);
			crl = NULL;
		}
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
	c->crl = crl;
	crl = NULL; /* transferred */
	*out = c;
	c = NULL;
	r = CVM_OK;
out:
	ERR_clear_error();
	X509_CRL_free(crl);
	free(c);
	return r;
}

void cvm_crl_free(struct cvm_crl *crl)
{
	if (crl == NULL)
		return;
	X509_CRL_free(crl->crl);
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

int cvm_crl_check_issued(const struct cvm_crl *crl, const struct cvm_cert *issuer)
{
	EVP_PKEY *pk;

	if (X509_NAME_cmp(X509_CRL_get_issuer(crl->crl), X509_get_subject_name(issuer->x)) != 0)
		return CVM_E_CHAIN;
	pk = X509_get0_pubkey(issuer->x);
	if (pk == NULL || X509_CRL_verify(crl->crl, pk) != 1) {
		ERR_clear_error();
		return CVM_E_SIGNATURE;
	}
	return CVM_OK;
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
