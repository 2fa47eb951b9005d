/* PKCS#10 certificate requests (RFC 2986) for P-256 keys: what an ACME
 * client sends to finalize an order (RFC 8555, 7.4). Only the request goes
 * out; the key stays with its caller. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/crypto.h>

#include "crypto_int.h"
#include "issue_int.h"
#include "p256key_int.h"

/* X.520 ub-common-name: a longer first name goes in the SAN only. */
#define CSR_CN_MAX 64

bool cvm_dns_name_ok(const char *s)
{
	size_t n, label = 0;

	if (s == NULL)
		return false;
	n = strnlen(s, CVM_DNS_NAME_MAX + 1);
	if (n == 0 || n > CVM_DNS_NAME_MAX)
		return false;
	if (n > 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		n -= 2;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (label == 0 && c == '-')
			return false;
		label++;
		if (label > 63)
			return false;
	}
	return label != 0 && s[n - 1] != '-';
}

static bool add_san_request(X509_REQ *req, const char *const *names, size_t count)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	X509_EXTENSION *ext = NULL;
	bool ok = false;

	if (exts == NULL || gens == NULL)
		goto out;
	for (size_t i = 0; i < count; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *dns = ASN1_IA5STRING_new();

		if (g == NULL || dns == NULL || ASN1_STRING_set(dns, names[i], -1) != 1) {
			ASN1_IA5STRING_free(dns);
			GENERAL_NAME_free(g);
			goto out;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, dns);
		if (sk_GENERAL_NAME_push(gens, g) <= 0) {
			GENERAL_NAME_free(g);
			goto out;
		}
	}
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	if (ext == NULL || sk_X509_EXTENSION_push(exts, ext) <= 0)
		goto out;
	ext = NULL; /* transferred */
	ok = X509_REQ_add_extensions(req, exts) == 1;
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	return ok;
}

int cvm_csr_make(const struct cvm_p256_keypair *kp, const char *const *names, size_t name_count,
                 uint8_t **out, size_t *out_len)
{
	X509_REQ *req = NULL;
	X509_NAME *subject = NULL;
	unsigned char *der = NULL, *p;
	int len, r;

	*out = NULL;
	*out_len = 0;
	if (kp == NULL || names == NULL || name_count == 0)
		return CVM_E_INVAL;
	if (name_count > CVM_CERT_ALT_NAMES_MAX)
		return CVM_E_TOO_LARGE;
	for (size_t i = 0; i < name_count; i++) {
		if (!cvm_dns_name_ok(names[i]))
			return CVM_E_INVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				return CVM_E_INVAL;
	}
	r = CVM_E_CRYPTO;
	req = X509_REQ_new();
	if (req == NULL)
		goto out;
	if (strlen(names[0]) <= CSR_CN_MAX) {
		const struct cvm_name_attr cn = {"CN", names[0]};

		subject = cvm_x509_name(&cn, 1);
	} else {
		subject = X509_NAME_new();
	}
	if (subject == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, kp->pkey) != 1 ||
	    !add_san_request(req, names, name_count) || X509_REQ_sign(req, kp->pkey, EVP_sha256()) <= 0)
		goto out;
	len = i2d_X509_REQ(req, NULL);
	if (len <= 0)
		goto out;
	der = malloc((size_t)len);
	if (der == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	p = der;
	if (i2d_X509_REQ(req, &p) != len)
		goto out;
	*out = der;
	*out_len = (size_t)len;
	der = NULL; /* transferred */
	r = CVM_OK;
out:
	ERR_clear_error();
	free(der);
	X509_NAME_free(subject);
	X509_REQ_free(req);
	return r;
}
