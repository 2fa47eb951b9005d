/* X.509 certificates through OpenSSL, behind an opaque type. The chain logic
 * itself (which certificate must sign which, at what time, against which CRL)
 * is explicit in the callers, so every step can be reported. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto_int.h"

static int cert_wrap(X509 *x, struct cvm_cert **out)
{
	struct cvm_cert *c;
	unsigned char *der = NULL;
	int n;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	c->refs = 1;
	if (!cvm_asn1_time_unix(X509_get0_notBefore(x), &c->not_before) ||
	    !cvm_asn1_time_unix(X509_get0_notAfter(x), &c->not_after)) {
		free(c);
		return CVM_E_FORMAT;
	}
	/* Cache the extension flags now (OpenSSL computes them lazily). */
	(void)X509_get_extension_flags(x);
	n = i2d_X509(x, &der);
	if (n <= 0) {
		free(c);
		return CVM_E_FORMAT;
	}
	c->der = der;
	c->der_len = (size_t)n;
	c->x = x;
	*out = c;
	return CVM_OK;
}

bool cvm_pem_starts(const uint8_t *p, size_t len)
{
	static const char begin[] = "-----BEGIN ";
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return len - i >= sizeof(begin) - 1 && memcmp(p + i, begin, sizeof(begin) - 1) == 0;
}

int cvm_cert_parse(const uint8_t *buf, size_t len, struct cvm_cert **out)
{
	X509 *x = NULL;
	int r;

	*out = NULL;
	if (len > INT32_MAX)
		return CVM_E_TOO_LARGE;
	if (cvm_pem_starts(buf, len)) {
		BIO *b = BIO_new_mem_buf(buf, (int)len);

		if (b == NULL)
			return CVM_E_NOMEM;
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	} else {
		const unsigned char *p = buf;

		x = d2i_X509(NULL, &p, (long)len);
		if (x != NULL && p != buf + len) {
			X509_free(x); /* trailing bytes after the certificate */
			x = NULL;
		}
	}
	ERR_clear_error();
	if (x == NULL)
		return CVM_E_FORMAT;
	r = cert_wrap(x, out);
	if (r != CVM_OK)
		X509_free(x);
	return r;
}

int cvm_certs_parse_pem(const uint8_t *pem, size_t len, struct cvm_cert ***out, size_t *count)
{
	return cvm_cert_pool_parse_pem(NULL, pem, len, out, count);
}

void cvm_certs_free(struct cvm_cert **certs, size_t count)
{
	if (certs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		cvm_cert_free(certs[i]);
	free(certs);
}

void cvm_cert_free(struct cvm_cert *c)
{
	if (c == NULL)
		return;
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	X509_free(c->x);
	OPENSSL_free(c->der);
	free(c);
}

struct cvm_cert *cvm_cert_dup(struct cvm_cert *c)
{
	if (c != NULL)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	return c;
}

int64_t cvm_cert_not_before(const struct cvm_cert *c)
{
	return c->not_before;
}

int64_t cvm_cert_not_after(const struct cvm_cert *c)
{
	return c->not_after;
}

bool cvm_cert_is_ca(const struct cvm_cert *c)
{
	return X509_check_ca(c->x) == 1;
}

bool cvm_cert_has_unknown_critical(const struct cvm_cert *c)
{
	return (X509_get_extension_flags(c->x) & EXFLAG_CRITICAL) != 0;
}

bool cvm_cert_equal(const struct cvm_cert *a, const struct cvm_cert *b)
{
	return a->der_len == b->der_len && memcmp(a->der, b->der, a->der_len) == 0;
}

static void name_line(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(b, &p);
		if (n > 0) {
			size_t k = (size_t)n < len - 1 ? (size_t)n : len - 1;

			memcpy(buf, p, k);
			buf[k] = '\0';
		}
	}
	BIO_free(b);
	ERR_clear_error();
}

void cvm_cert_subject(const struct cvm_cert *c, char *buf, size_t len)
{
	name_line(X509_get_subject_name(c->x), buf, len);
}

void cvm_cert_issuer(const struct cvm_cert *c, char *buf, size_t len)
{
	name_line(X509_get_issuer_name(c->x), buf, len);
}

void cvm_cert_serial(const struct cvm_cert *c, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	if (len != 0)
		buf[0] = '\0';
	if (hex != NULL && len != 0) {
		size_t k = strlen(hex);

		k = k < len - 1 ? k : len - 1;
		memcpy(buf, hex, k);
		buf[k] = '\0';
	}
	OPENSSL_free(hex);
	BN_free(bn);
}

void cvm_cert_der(const struct cvm_cert *c, const uint8_t **der, size_t *len)
{
	*der = c->der;
	*len = c->der_len;
}

int cvm_cert_check_issued(const struct cvm_cert *child, const struct cvm_cert *issuer)
{
	EVP_PKEY *pk;
	int v;

	/* Names, authority key id and the issuer's keyUsage. */
	v = X509_check_issued(issuer->x, child->x);
	if (v != X509_V_OK) {
		ERR_clear_error();
		return CVM_E_CHAIN;
	}
	if (X509_check_ca(issuer->x) != 1)
		return CVM_E_CHAIN;
	pk = X509_get0_pubkey(issuer->x);
	if (pk == NULL || X509_verify(child->x, pk) != 1) {
		ERR_clear_error();
		return CVM_E_SIGNATURE;
	}
	return CVM_OK;
}

int cvm_cert_verify_p256(const struct cvm_cert *c, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	EVP_PKEY *pk = X509_get0_pubkey(c->x);
	char group[32];
	uint8_t der[80];
	size_t der_len;

	if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0) {
		ERR_clear_error();
		return CVM_E_UNSUPPORTED;
	}
	der_len = cvm_ecdsa_raw_to_der(sig, 32, der, sizeof(der));
	if (der_len == 0)
		return CVM_E_SIGNATURE;
	return cvm_evp_verify_sha256(pk, msg, len, der, der_len);
}

int cvm_cert_ext(const struct cvm_cert *c, const char *oid, struct cvm_rd *out)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	const ASN1_OCTET_STRING *data;
	X509_EXTENSION *ext;
	int idx, r = CVM_E_FORMAT;

	out->p = NULL;
	out->len = 0;
	if (obj == NULL) {
		ERR_clear_error();
		return CVM_E_INVAL;
	}
	idx = X509_get_ext_by_OBJ(c->x, obj, -1);
	if (idx < 0 || X509_get_ext_by_OBJ(c->x, obj, idx) >= 0)
		goto out; /* absent, or present twice */
	ext = X509_get_ext(c->x, idx);
	data = ext != NULL ? X509_EXTENSION_get_data(ext) : NULL;
	if (data == NULL)
		goto out;
	cvm_rd_init(out, ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data));
	r = CVM_OK;
out:
	ASN1_OBJECT_free(obj);
	return r;
}
