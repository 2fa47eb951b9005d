/* Certificate and CRL building shared by the mock vendor PKIs (mockpki.c
 * for Intel, mockamd.c for AMD). Test and simulator material only: nothing
 * here is used to verify anything. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/err.h>

#include "mock_int.h"

void cvm_mock_fill_pattern(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + 7u * i);
}

int cvm_mock_copy_out(const void *p, size_t n, uint8_t **out, size_t *out_len)
{
	/* one NUL more than counted, so that PEM text may be read as a string */
	*out = malloc(n + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	memcpy(*out, p, n);
	(*out)[n] = 0;
	*out_len = n;
	return CVM_OK;
}

int cvm_mock_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return CVM_E_CRYPTO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? CVM_OK : CVM_E_CRYPTO;
}

int cvm_mock_set_time(ASN1_TIME *t, int64_t v)
{
	return ASN1_TIME_set(t, (time_t)v) != NULL ? CVM_OK : CVM_E_CRYPTO;
}

int cvm_mock_crl_add_serial(X509_CRL *crl, uint64_t serial, ASN1_TIME *when)
{
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_INTEGER *s = ASN1_INTEGER_new();
	int r = CVM_E_CRYPTO;

	if (rv == NULL || s == NULL)
		goto out;
	if (ASN1_INTEGER_set_uint64(s, serial) != 1 || X509_REVOKED_set_serialNumber(rv, s) != 1 ||
	    X509_REVOKED_set_revocationDate(rv, when) != 1)
		goto out;
	if (X509_CRL_add0_revoked(crl, rv) != 1)
		goto out;
	rv = NULL; /* transferred */
	r = CVM_OK;
out:
	ASN1_INTEGER_free(s);
	X509_REVOKED_free(rv);
	return r;
}

int cvm_mock_der_of(X509 *x, uint8_t **out, size_t *out_len)
{
	uint8_t *der = NULL;
	int len = i2d_X509(x, &der);
	int r;

	if (len <= 0)
		return CVM_E_CRYPTO;
	r = cvm_mock_copy_out(der, (size_t)len, out, out_len);
	OPENSSL_free(der);
	return r;
}

int cvm_mock_pem_chain(X509 *const *certs, size_t n, bool nul, uint8_t **out, size_t *out_len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long len;
	int r = CVM_E_CRYPTO;

	if (b == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (PEM_write_bio_X509(b, certs[i]) != 1)
			goto out;
	if (nul && BIO_write(b, "", 1) != 1)
		goto out;
	len = BIO_get_mem_data(b, &p);
	if (len <= 0)
		goto out;
	r = cvm_mock_copy_out(p, (size_t)len, out, out_len);
out:
	BIO_free(b);
	return r;
}
