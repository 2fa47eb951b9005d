/* Issuing certificates and CRLs of any shape (crypto_lib.h): what the
 * simulator's mock vendor PKIs and the tests' broken variants of them are
 * made of. Names, extensions and PEM come from the helpers x509_make.c
 * shares; keys and signing contexts from privkey.c. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto_int.h"
#include "issue_int.h"

/* copy_out copies `n` bytes into a new buffer with one NUL after them. */
static int copy_out(const void *p, size_t n, uint8_t **out, size_t *out_len)
{
	*out = malloc(n + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	memcpy(*out, p, n);
	(*out)[n] = 0;
	*out_len = n;
	return CVM_OK;
}

static bool ext_ok(const struct cvm_issue_ext *e)
{
	return e->oid != NULL && (e->der == NULL || e->conf == NULL) && (e->der != NULL || e->der_len == 0);
}

/* add_ext appends `e` to `x` in the context `ctx`. */
static int add_ext(X509 *x, X509V3_CTX *ctx, const struct cvm_issue_ext *e)
{
	if (e->conf != NULL) {
		int nid = OBJ_txt2nid(e->oid);

		if (nid == NID_undef || !cvm_x509_add_conf_ext(x, ctx, nid, e->conf))
			return CVM_E_INVAL;
		return CVM_OK;
	}
	/* an OID OpenSSL cannot parse, mostly */
	return cvm_x509_add_der_ext(x, e->oid, e->critical, e->der, e->der_len) ? CVM_OK : CVM_E_INVAL;
}

/* remove_ext deletes every extension of `oid` from `x`. */
static int remove_ext(X509 *x, const char *oid)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 0);
	int i;

	if (obj == NULL)
		return CVM_E_INVAL;
	while ((i = X509_get_ext_by_OBJ(x, obj, -1)) >= 0)
		X509_EXTENSION_free(X509_delete_ext(x, i));
	ASN1_OBJECT_free(obj);
	return CVM_OK;
}

/* sign_x509 signs `x` with `signer` and `alg`, and parses the result. */
static int sign_x509(X509 *x, const struct cvm_privkey *signer, enum cvm_sig_alg alg, struct cvm_cert **out)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t *der = NULL;
	int n, r;

	r = cvm_privkey_sign_ctx(signer, alg, &ctx);
	if (r != CVM_OK)
		return r;
	r = CVM_E_CRYPTO;
	if (X509_sign_ctx(x, ctx) <= 0)
		goto out;
	n = i2d_X509(x, &der);
	if (n <= 0)
		goto out;
	r = cvm_cert_parse(der, (size_t)n, out);
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	return r;
}

int cvm_issue_cert(const struct cvm_issue_cert *spec, const struct cvm_privkey *subject_key,
                   const struct cvm_cert *issuer, const struct cvm_privkey *signer, struct cvm_cert **out)
{
	X509 *x = NULL, *issuer_x;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	int r = CVM_E_INVAL;

	*out = NULL;
	if (spec->subject == NULL || spec->subject_count == 0 || spec->subject_count > CVM_ISSUE_NAME_MAX ||
	    spec->ext_count > CVM_ISSUE_EXTS_MAX || (spec->exts == NULL && spec->ext_count != 0))
		return CVM_E_INVAL;
	for (size_t i = 0; i < spec->ext_count; i++)
		if (!ext_ok(&spec->exts[i]) || (spec->exts[i].der == NULL && spec->exts[i].conf == NULL))
			return CVM_E_INVAL;
	name = cvm_x509_name(spec->subject, spec->subject_count);
	if (name == NULL)
		goto out;
	r = CVM_E_CRYPTO;
	x = X509_new();
	if (x == NULL)
		goto out;
	issuer_x = issuer != NULL ? issuer->x : x;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), spec->serial) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(issuer_x)) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)spec->not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)spec->not_after) == NULL ||
	    X509_set_pubkey(x, cvm_privkey_pkey(subject_key)) != 1)
		goto out;
	X509V3_set_ctx(&ctx, issuer_x, x, NULL, NULL, 0);
	for (size_t i = 0; i < spec->ext_count; i++) {
		r = add_ext(x, &ctx, &spec->exts[i]);
		if (r != CVM_OK)
			goto out;
	}
	r = sign_x509(x, signer, spec->sig_alg, out);
out:
	X509_NAME_free(name);
	X509_free(x);
	ERR_clear_error();
	return r;
}

int cvm_issue_cert_edit(const struct cvm_cert *c, const struct cvm_issue_edit *e,
                        const struct cvm_cert *issuer, const struct cvm_privkey *signer,
                        struct cvm_cert **out)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	int r = CVM_E_INVAL;

	*out = NULL;
	if ((e->subject != NULL && (e->subject_count == 0 || e->subject_count > CVM_ISSUE_NAME_MAX)) ||
	    e->ext_count > CVM_ISSUE_EXTS_MAX || (e->exts == NULL && e->ext_count != 0))
		return CVM_E_INVAL;
	for (size_t i = 0; i < e->ext_count; i++)
		if (!ext_ok(&e->exts[i]))
			return CVM_E_INVAL;
	r = CVM_E_NOMEM;
	x = X509_dup(c->x);
	if (x == NULL)
		goto out;
	if (e->subject != NULL) {
		r = CVM_E_INVAL;
		name = cvm_x509_name(e->subject, e->subject_count);
		if (name == NULL)
			goto out;
		r = CVM_E_CRYPTO;
		if (X509_set_subject_name(x, name) != 1 ||
		    (issuer == NULL && X509_set_issuer_name(x, name) != 1))
			goto out;
	}
	X509V3_set_ctx(&ctx, issuer != NULL ? issuer->x : x, x, NULL, NULL, 0);
	for (size_t i = 0; i < e->ext_count; i++) {
		r = remove_ext(x, e->exts[i].oid);
		if (r == CVM_OK && (e->exts[i].der != NULL || e->exts[i].conf != NULL))
			r = add_ext(x, &ctx, &e->exts[i]);
		if (r != CVM_OK)
			goto out;
	}
	r = sign_x509(x, signer, e->sig_alg, out);
out:
	X509_NAME_free(name);
	X509_free(x);
	ERR_clear_error();
	return r;
}

/* ---- CRLs ----------------------------------------------------------------- */

static int crl_add_serial(X509_CRL *crl, uint64_t serial, ASN1_TIME *when)
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

/* crl_sign sorts `crl`, signs it and writes its DER. */
static int crl_sign(X509_CRL *crl, const struct cvm_privkey *signer, enum cvm_sig_alg alg, uint8_t **out,
                    size_t *out_len)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t *der = NULL;
	int n, r;

	if (X509_CRL_sort(crl) != 1)
		return CVM_E_CRYPTO;
	r = cvm_privkey_sign_ctx(signer, alg, &ctx);
	if (r != CVM_OK)
		return r;
	r = CVM_E_CRYPTO;
	if (X509_CRL_sign_ctx(crl, ctx) <= 0)
		goto out;
	n = i2d_X509_CRL(crl, &der);
	if (n <= 0)
		goto out;
	r = copy_out(der, (size_t)n, out, out_len);
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	return r;
}

int cvm_issue_crl(const struct cvm_issue_crl *spec, const struct cvm_cert *issuer,
                  const struct cvm_privkey *signer, uint8_t **der, size_t *der_len)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *t_this = NULL, *t_next = NULL;
	ASN1_INTEGER *num = NULL;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX ctx;
	int r = CVM_E_CRYPTO;

	*der = NULL;
	*der_len = 0;
	if (spec->revoked_count > CVM_ISSUE_REVOKED_MAX ||
	    (spec->revoked == NULL && spec->revoked_count != 0))
		return CVM_E_INVAL;
	crl = X509_CRL_new();
	t_this = ASN1_TIME_set(NULL, (time_t)spec->this_update);
	t_next = ASN1_TIME_set(NULL, (time_t)spec->next_update);
	if (crl == NULL || t_this == NULL || t_next == NULL)
		goto out;
	if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer->x)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, t_this) != 1 || X509_CRL_set1_nextUpdate(crl, t_next) != 1)
		goto out;
	for (size_t i = 0; i < spec->revoked_count; i++) {
		r = crl_add_serial(crl, spec->revoked[i], t_this);
		if (r != CVM_OK)
			goto out;
	}
	r = CVM_E_CRYPTO;
	if (spec->number != 0) {
		num = ASN1_INTEGER_new();
		if (num == NULL || ASN1_INTEGER_set_uint64(num, spec->number) != 1 ||
		    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
			goto out;
	}
	if (spec->authority_key_id) {
		X509V3_set_ctx(&ctx, issuer->x, NULL, NULL, crl, 0);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
		if (ext == NULL || X509_CRL_add_ext(crl, ext, -1) != 1)
			goto out;
	}
	r = crl_sign(crl, signer, spec->sig_alg, der, der_len);
out:
	X509_EXTENSION_free(ext);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t_next);
	ASN1_TIME_free(t_this);
	X509_CRL_free(crl);
	ERR_clear_error();
	return r;
}

int cvm_issue_crl_resign(const uint8_t *crl, size_t len, const struct cvm_privkey *signer,
                         enum cvm_sig_alg alg, uint8_t **out, size_t *out_len)
{
	const uint8_t *p = crl;
	X509_CRL *x = NULL;
	int r = CVM_E_FORMAT;

	*out = NULL;
	*out_len = 0;
	if (crl == NULL || len == 0 || len > INT32_MAX)
		return CVM_E_FORMAT;
	x = d2i_X509_CRL(NULL, &p, (long)len);
	if (x == NULL || p != crl + len)
		goto out;
	r = crl_sign(x, signer, alg, out, out_len);
out:
	X509_CRL_free(x);
	ERR_clear_error();
	return r;
}

/* ---- PEM and markers ------------------------------------------------------ */

int cvm_certs_pem(struct cvm_cert *const *certs, size_t n, uint8_t **out, size_t *out_len)
{
	X509 *xs[CVM_ISSUE_CHAIN_MAX];
	char *pem = NULL;
	int r;

	*out = NULL;
	*out_len = 0;
	if (n == 0 || n > CVM_ISSUE_CHAIN_MAX)
		return CVM_E_INVAL;
	for (size_t i = 0; i < n; i++)
		xs[i] = certs[i]->x;
	r = cvm_x509_pem(xs, n, &pem, out_len);
	*out = (uint8_t *)pem;
	return r;
}

static bool has_ext(const X509 *x, const ASN1_OBJECT *obj)
{
	return X509_get_ext_by_OBJ(x, obj, -1) >= 0;
}

bool cvm_cert_der_has_ext(const uint8_t *der, size_t len, const char *oid)
{
	ASN1_OBJECT *obj = NULL;
	const uint8_t *p = der;
	X509 *x = NULL;
	bool found = false;

	if (der == NULL || len == 0 || len > INT32_MAX)
		return false;
	obj = OBJ_txt2obj(oid, 1);
	x = obj != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
	/* exactly one certificate, nothing after it */
	found = x != NULL && p == der + len && has_ext(x, obj);
	X509_free(x);
	ASN1_OBJECT_free(obj);
	ERR_clear_error();
	return found;
}

bool cvm_certs_pem_any_has_ext(const uint8_t *pem, size_t len, const char *oid, size_t max)
{
	struct cvm_pem_block b;
	struct cvm_rd in;
	bool found = false;

	if (pem == NULL || len == 0 || len > INT32_MAX)
		return false;
	cvm_rd_init(&in, pem, len);
	for (size_t i = 0; i < max && !found; i++) {
		uint8_t *der;
		size_t cap, n = 0;

		if (cvm_pem_next(&in, &b) != CVM_OK)
			break;
		if (!cvm_pem_label_is(&b, "CERTIFICATE"))
			continue;
		cap = cvm_pem_decoded_max(&b);
		der = malloc(cap != 0 ? cap : 1);
		if (der == NULL)
			break;
		if (cvm_pem_decode(&b, der, cap, &n) == CVM_OK)
			found = cvm_cert_der_has_ext(der, n, oid);
		free(der);
	}
	return found;
}
