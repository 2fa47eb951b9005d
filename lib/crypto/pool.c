/* A pool of parsed certificates, keyed by their exact DER bytes. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/encoding.h>

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

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool only_space_or_nul(const struct cvm_rd *in)
{
	for (size_t i = 0; i < in->len; i++)
		if (in->p[i] != 0 && !is_space(in->p[i]))
			return false;
	return true;
}

/* pem_cert_block reads one CERTIFICATE block (after white space) from `in`
 * through the library's one PEM framer; the DER is a new buffer. (Framing
 * only: the DER is parsed by the caller, once.) */
static int pem_cert_block(struct cvm_rd *in, uint8_t **der, size_t *der_len)
{
	struct cvm_pem_block b;
	size_t cap;
	int r;

	*der = NULL;
	*der_len = 0;
	r = cvm_pem_next(in, &b);
	if (r != CVM_OK || !cvm_pem_label_is(&b, "CERTIFICATE"))
		return CVM_E_FORMAT;
	cap = cvm_pem_decoded_max(&b);
	if (cap > CVM_CERT_DER_MAX)
		cap = CVM_CERT_DER_MAX;
	*der = malloc(cap != 0 ? cap : 1);
	if (*der == NULL)
		return CVM_E_NOMEM;
	r = cvm_pem_decode(&b, *der, cap, der_len);
	if (r != CVM_OK) {
		free(*der);
		*der = NULL;
		*der_len = 0;
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

int cvm_pem_der_one(const uint8_t *pem, size_t len, const char *label, size_t max, uint8_t **der,
                    size_t *der_len)
{
	struct cvm_pem_block b;
	struct cvm_rd in;
	size_t cap;
	int r;

	*der = NULL;
	*der_len = 0;
	cvm_rd_init(&in, pem, len);
	r = cvm_pem_next(&in, &b);
	if (r != CVM_OK || !cvm_pem_label_is(&b, label) || !only_space_or_nul(&in))
		return CVM_E_FORMAT;
	cap = cvm_pem_decoded_max(&b);
	if (cap > max)
		cap = max;
	*der = malloc(cap != 0 ? cap : 1);
	if (*der == NULL)
		return CVM_E_NOMEM;
	r = cvm_pem_decode(&b, *der, cap, der_len);
	if (r != CVM_OK) {
		free(*der);
		*der = NULL;
		*der_len = 0;
	}
	return r;
}

int cvm_cert_pool_parse_pem(struct cvm_cert_pool *pool, const uint8_t *pem, size_t len,
                            struct cvm_cert ***out, size_t *count)
{
	struct cvm_cert **certs = NULL;
	struct cvm_rd in;
	size_t n = 0;
	int r = CVM_E_FORMAT;

	*out = NULL;
	*count = 0;
	if (len > INT32_MAX)
		return CVM_E_TOO_LARGE;
	if (!cvm_pem_starts(pem, len))
		return CVM_E_FORMAT;
	certs =
	    calloc(CVM_CHAIN_CERTS_MAX, sizeof(*certs)); /* NOLINT(bugprone-sizeof-expression): pointers */
	if (certs == NULL)
		return CVM_E_NOMEM;
	cvm_rd_init(&in, pem, len);
	for (;;) {
		uint8_t *der = NULL;
		size_t der_len = 0;
		struct cvm_cert *c;

		if (only_space_or_nul(&in))
			break;
		if (!cvm_pem_starts(in.p, in.len))
			goto out; /* text between or after certificates */
		if (n == CVM_CHAIN_CERTS_MAX) {
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		r = pem_cert_block(&in, &der, &der_len);
		if (r != CVM_OK)
			goto out;
		c = pool != NULL ? pool_find(pool, der, der_len) : NULL;
		if (c != NULL) {
			certs[n++] = cvm_cert_dup(c);
		} else {
			r = cvm_cert_parse(der, der_len, &c);
			if (r == CVM_OK) {
				if (pool != NULL)
					cvm_cert_pool_add(pool, c);
				certs[n++] = c;
			}
		}
		free(der);
		if (r != CVM_OK) {
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
	cvm_certs_free(certs, n);
	return r;
}
