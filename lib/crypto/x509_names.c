/* The DNS names a certificate is for: what a Certificate Transparency
 * monitor (lib/ct) compares with the domains it watches. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto_int.h"

/* put_name copies `len` bytes of an ASN.1 string as a printable, lowercase
 * C string: a certificate's names are untrusted text that will be printed. */
static void put_name(const unsigned char *p, int len, char out[CVM_CERT_NAME_LEN])
{
	size_t n = len > 0 ? (size_t)len : 0, i;
	bool cut = n > CVM_CERT_NAME_LEN - 1;

	if (cut)
		n = CVM_CERT_NAME_LEN - 1;
	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		else if (ch < 0x21 || ch > 0x7e)
			ch = '?';
		out[i] = (char)ch;
	}
	out[n] = '\0';
	if (cut)
		memcpy(out + n - 3, "...", 3);
}

int cvm_cert_dns_names(const struct cvm_cert *c, char (*names)[CVM_CERT_NAME_LEN], size_t cap, size_t *count,
                       bool *more)
{
	GENERAL_NAMES *san;
	int crit = 0, i, n, idx;

	*count = 0;
	*more = false;
	if (cap > CVM_CERT_NAMES_MAX)
		cap = CVM_CERT_NAMES_MAX;
	san = X509_get_ext_d2i(c->x, NID_subject_alt_name, &crit, NULL);
	if (san == NULL && crit != -1) {
		/* -1: no such extension; anything else with NULL is a bad one
		 * (or several), which a client would refuse, but a monitor must
		 * not overlook: the caller reports it. */
		ERR_clear_error();
		return CVM_E_FORMAT;
	}
	if (san != NULL) {
		n = sk_GENERAL_NAME_num(san);
		for (i = 0; i < n; i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
			const ASN1_IA5STRING *s;

			if (g->type != GEN_DNS)
				continue;
			if (*count == cap) {
				*more = true;
				break;
			}
			s = g->d.dNSName;
			put_name(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), names[*count]);
			(*count)++;
		}
		GENERAL_NAMES_free(san);
		return CVM_OK;
	}
	/* No subjectAltName: the last CN, as browsers that still fall back do. */
	idx = -1;
	for (;;) {
		int k = X509_NAME_get_index_by_NID(X509_get_subject_name(c->x), NID_commonName, idx);

		if (k < 0)
			break;
		idx = k;
	}
	if (idx >= 0 && cap > 0) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(X509_get_subject_name(c->x), idx);
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);

		put_name(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), names[0]);
		*count = 1;
	}
	ERR_clear_error();
	return CVM_OK;
}
