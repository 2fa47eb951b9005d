/* The AMD test PKI over the simulator's mock (lib/sim/mockamd.c): shared
 * keys, collateral in memory, injected faults and changed certificates. See
 * testamd.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testamd.h"

/* The PKI whose keys every test PKI shares; made once, kept for the life of
 * the process. */
static struct cvm_mockamd *key_source;
static pthread_once_t key_source_once = PTHREAD_ONCE_INIT;

static void key_source_make(void)
{
	struct cvm_mockamd_opts o;

	cvm_mockamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, 1700000000);
	/* on failure each PKI makes its own keys: slower, still correct */
	if (cvm_mockamd_new(&o, &key_source) != CVM_OK)
		key_source = NULL;
}

int cvm_testamd_new(const struct cvm_mockamd_opts *o, struct cvm_mockamd **out)
{
	(void)pthread_once(&key_source_once, key_source_make);
	return cvm_mockamd_new_keyed(o, key_source, out);
}

static int dup_into(const uint8_t *p, size_t n, uint8_t **out, size_t *len)
{
	if (p == NULL)
		return CVM_OK;
	*out = malloc(n + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	memcpy(*out, p, n);
	(*out)[n] = 0;
	*len = n;
	return CVM_OK;
}

int cvm_testamd_collateral(const struct cvm_mockamd *pki, struct cvm_amd_collateral **out)
{
	struct cvm_amd_collateral *c = calloc(1, sizeof(*c));
	bool vlek = cvm_mockamd_opts_of(pki)->signer == CVM_SNP_SIGNER_VLEK;
	const uint8_t *p;
	size_t n;
	int r;

	*out = NULL;
	if (c == NULL)
		return CVM_E_NOMEM;
	cvm_mockamd_file(pki, CVM_MOCKAMD_F_VEK_DER, &p, &n);
	r = dup_into(p, n, vlek ? &c->vlek : &c->vcek, vlek ? &c->vlek_len : &c->vcek_len);
	if (r == CVM_OK) {
		cvm_mockamd_file(pki, CVM_MOCKAMD_F_INTERMEDIATE, &p, &n);
		r = dup_into(p, n, vlek ? &c->asvk : &c->ask, vlek ? &c->asvk_len : &c->ask_len);
	}
	if (r == CVM_OK) {
		cvm_mockamd_ark_der(pki, &p, &n);
		r = dup_into(p, n, &c->ark, &c->ark_len);
	}
	if (r == CVM_OK) {
		cvm_mockamd_file(pki, CVM_MOCKAMD_F_CRL, &p, &n);
		r = dup_into(p, n, &c->crl, &c->crl_len);
	}
	if (r != CVM_OK) {
		cvm_amd_collateral_free(c);
		return r;
	}
	*out = c;
	return CVM_OK;
}

/* der_take replaces `*buf` by a copy of the `n` bytes at `der`. */
static int der_take(const uint8_t *der, size_t n, uint8_t **buf, size_t *len)
{
	uint8_t *copy = NULL;
	size_t copy_len = 0;
	int r;

	r = dup_into(der, n, &copy, &copy_len);
	if (r != CVM_OK)
		return r;
	free(*buf);
	*buf = copy;
	*len = copy_len;
	return CVM_OK;
}

int cvm_testamd_faults_apply(const struct cvm_mockamd *pki, unsigned faults, struct cvm_amd_collateral *c,
                             uint8_t *report)
{
	if (report != NULL && (faults & CVM_TESTAMD_FAULT_REPORT_SIG))
		report[CVM_SNP_SIGNED_LEN] ^= 0x01; /* the first byte of r (little-endian) */
	if (c != NULL && (faults & CVM_TESTAMD_FAULT_CRL_WRONG_KEY)) {
		const uint8_t *p = c->crl;
		X509_CRL *crl = c->crl != NULL ? d2i_X509_CRL(NULL, &p, (long)c->crl_len) : NULL;
		uint8_t *der = NULL;
		int n, r = CVM_E_FORMAT;

		if (crl != NULL)
			r = cvm_mock_crl_sign(crl, cvm_mockamd_key(pki, CVM_MOCKAMD_INTERMEDIATE));
		n = r == CVM_OK ? i2d_X509_CRL(crl, &der) : 0;
		if (r == CVM_OK)
			r = n > 0 ? der_take(der, (size_t)n, &c->crl, &c->crl_len) : CVM_E_CRYPTO;
		OPENSSL_free(der);
		X509_CRL_free(crl);
		ERR_clear_error();
		return r;
	}
	return CVM_OK;
}

/* ext_replace removes every `nid` extension of `x`, then adds `value` (in
 * OpenSSL's config syntax) unless it is "". */
static int ext_replace(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	int i;

	while ((i = X509_get_ext_by_NID(x, nid, -1)) >= 0)
		X509_EXTENSION_free(X509_delete_ext(x, i));
	if (value[0] == '\0')
		return CVM_OK;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	return cvm_mock_add_conf_ext(x, &ctx, nid, value);
}

int cvm_testamd_cert_variant(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which, const char *cn,
                             const char *basic_constraints, const char *key_usage, uint8_t **der,
                             size_t *der_len)
{
	enum cvm_mockamd_cert issuer =
	    which == CVM_MOCKAMD_ARK ? CVM_MOCKAMD_ARK : (enum cvm_mockamd_cert)(which - 1);
	X509 *orig = cvm_mockamd_x509(pki, which);
	X509 *x = orig != NULL ? X509_dup(orig) : NULL;
	X509_NAME *name = NULL;
	uint8_t *out = NULL;
	int n, r = CVM_E_NOMEM;

	if (x == NULL)
		return orig == NULL ? CVM_E_INVAL : CVM_E_NOMEM;
	if (cn != NULL) {
		name = cvm_mock_amd_name(cn);
		if (name == NULL || X509_set_subject_name(x, name) != 1 ||
		    (which == CVM_MOCKAMD_ARK && X509_set_issuer_name(x, name) != 1))
			goto out;
	}
	r = CVM_OK;
	if (basic_constraints != NULL)
		r = ext_replace(x, cvm_mockamd_x509(pki, issuer), NID_basic_constraints, basic_constraints);
	if (r == CVM_OK && key_usage != NULL)
		r = ext_replace(x, cvm_mockamd_x509(pki, issuer), NID_key_usage, key_usage);
	if (r == CVM_OK)
		r = cvm_mock_cert_sign(x, cvm_mockamd_key(pki, issuer));
	if (r != CVM_OK)
		goto out;
	r = CVM_E_CRYPTO;
	n = i2d_X509(x, &out);
	if (n > 0)
		r = der_take(out, (size_t)n, der, der_len);
out:
	OPENSSL_free(out);
	X509_NAME_free(name);
	X509_free(x);
	ERR_clear_error();
	return r;
}
