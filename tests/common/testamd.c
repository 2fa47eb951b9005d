/* The AMD test PKI over the simulator's mock (lib/sim/mockamd.c): shared
 * keys, collateral in memory, injected faults and changed certificates. See
 * testamd.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
		struct cvm_privkey *key = cvm_mockamd_key(pki, CVM_MOCKAMD_INTERMEDIATE);
		uint8_t *der = NULL;
		size_t der_len = 0;
		int r;

		if (c->crl == NULL)
			return CVM_E_FORMAT;
		r = cvm_issue_crl_resign(c->crl, c->crl_len, key, cvm_mock_sig_alg(key), &der, &der_len);
		if (r != CVM_OK)
			return r;
		free(c->crl);
		c->crl = der; /* NUL after it, as cvm_file_read */
		c->crl_len = der_len;
	}
	return CVM_OK;
}

int cvm_testamd_cert_variant(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which, const char *cn,
                             const char *basic_constraints, const char *key_usage, uint8_t **der,
                             size_t *der_len)
{
	enum cvm_mockamd_cert issuer =
	    which == CVM_MOCKAMD_ARK ? CVM_MOCKAMD_ARK : (enum cvm_mockamd_cert)(which - 1);
	struct cvm_cert *orig = cvm_mockamd_x509(pki, which), *x = NULL;
	struct cvm_privkey *key = cvm_mockamd_key(pki, issuer);
	struct cvm_name_attr name[CVM_MOCK_NAME_MAX];
	struct cvm_issue_ext exts[2];
	struct cvm_issue_edit e = {.exts = exts};
	const uint8_t *p;
	size_t n;
	int r;

	if (orig == NULL)
		return CVM_E_INVAL;
	if (cn != NULL) {
		e.subject = name;
		e.subject_count = cvm_mock_amd_name(cn, name);
	}
	/* "" removes the extension: an entry with no value */
	if (basic_constraints != NULL)
		exts[e.ext_count++] =
		    (struct cvm_issue_ext){.oid = "basicConstraints",
		                           .conf = basic_constraints[0] != '\0' ? basic_constraints : NULL};
	if (key_usage != NULL)
		exts[e.ext_count++] = (struct cvm_issue_ext){.oid = "keyUsage",
		                                             .conf = key_usage[0] != '\0' ? key_usage : NULL};
	e.sig_alg = cvm_mock_sig_alg(key);
	/* the ARK is its own issuer: a new name is its issuer name too */
	r = cvm_issue_cert_edit(orig, &e, which == CVM_MOCKAMD_ARK ? NULL : cvm_mockamd_x509(pki, issuer),
	                        key, &x);
	if (r != CVM_OK)
		return r;
	cvm_cert_der(x, &p, &n);
	r = der_take(p, n, der, der_len);
	cvm_cert_free(x);
	return r;
}
