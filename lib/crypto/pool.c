/* A pool of parsed certificates, keyed by their exact DER bytes. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "crypto_int.h"

struct cvm_cert_pool {
	struct cvm_cert *certs[CVM_CERT_POOL_MAX];
	size_t count;
};

int cvm_cert_pool_new(struct cvm_cert_pool **out)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? CVM_OK : CVM_E_NOMEM;
}

void cvm_cert_pool_free(struct cvm_cert_pool *pool)
{
	if (pool == NULL)
		return;
	for (size_t i = 0; i < pool->count; i++)
		cvm_cert_free(pool->certs[i]);
	free(pool);
}

void cvm_cert_pool_add(struct cvm_cert_pool *pool, struct cvm_cert *c)
{
	if (pool->count < CVM_CERT_POOL_MAX)
		pool->certs[pool->count++] = cvm_cert_dup(c);
}

bool cvm_cert_pool_holds(const struct cvm_cert_pool *pool, const struct cvm_cert *c)
{
	for (size_t i = 0; i < pool->count; i++)
		if (pool->certs[i] == c)
			return true;
	return false;
}

static struct cvm_cert *pool_find(const struct cvm_cert_pool *pool, const uint8_t *der, size_t len)
{
	for (size_t i = 0; i < pool->count; i++)
		if (pool->certs[i]->der_len == len && memcmp(pool->certs[i]->der, der, len) == 0)
			return pool->certs[i];
	return NULL;
}

static bool only_space_or_nul(const char *p, long len)
{
	for (long i = 0; i < len; i++)
		if (p[i] != 0 && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

int cvm_cert_pool_parse_pem(struct cvm_cert_pool *pool, const uint8_t *pem, size_t len,
                            struct cvm_cert ***out, size_t *count)
{
	struct cvm_cert **certs = NULL;
	size_t n = 0;
	BIO *b = NULL;
	int r = CVM_E_FORMAT;

	*out = NULL;
	*count = 0;
	if (len > INT32_MAX)
		return CVM_E_TOO_LARGE;
	if (!cvm_pem_starts(pem, len))
		return CVM_E_FORMAT;
	certs =
	    calloc(CVM_CHAIN_CERTS_MAX, sizeof(*certs)); /* NOLINT(bugprone-sizeof-expression): pointers */
	b = BIO_new_mem_buf(pem, (int)len);
	if (certs == NULL || b == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *der = NULL;
		long der_len = 0;
		const char *rest;
		long rest_len = BIO_get_mem_data(b, &rest);
		struct cvm_cert *c;
		bool ok;

		if (rest_len <= 0 || only_space_or_nul(rest, rest_len))
			break;
		if (!cvm_pem_starts((const uint8_t *)rest, (size_t)rest_len))
			goto out; /* text between or after certificates */
		if (n == CVM_CHAIN_CERTS_MAX) {
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		/* PEM framing and base64 only: the DER is parsed below, once. */
		ok = PEM_read_bio(b, &name, &header, &der, &der_len) == 1 &&
		     strcmp(name, PEM_STRING_X509) == 0 && header[0] == '\0' && der_len > 0;
		c = ok && pool != NULL ? pool_find(pool, der, (size_t)der_len) : NULL;
		if (ok && c != NULL) {
			certs[n++] = cvm_cert_dup(c);
		} else if (ok) {
			r = cvm_cert_parse(der, (size_t)der_len, &c);
			ok = r == CVM_OK;
			if (ok) {
				if (pool != NULL)
					cvm_cert_pool_add(pool, c);
				certs[n++] = c;
			}
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		if (!ok) {
			r = r == CVM_E_NOMEM ? r : CVM_E_FORMAT;
			goto out;
		}
		r = CVM_E_FORMAT; /* the verdict for any early exit from here on */
	}
	if (n == 0)
		goto out;
	*out = certs;
	*count = n;
	certs = NULL; /* transferred */
	n = 0;
	r = CVM_OK;
out:
	ERR_clear_error();
	BIO_free(b);
	cvm_certs_free(certs, n);
	return r;
}
