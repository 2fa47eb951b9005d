/* Loading an SNP collateral folder: certificate bytes only, parsed later. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/amd.h>
#include <cvmkit/file.h>

#include "core/core_lib.h"

void cvm_amd_collateral_free(struct cvm_amd_collateral *c)
{
	if (c == NULL)
		return;
	free(c->vcek);
	free(c->vlek);
	free(c->ask);
	free(c->asvk);
	free(c->cert_chain);
	free(c->ark);
	free(c->crl);
	free(c);
}

/* read_opt reads dir/name into `buf`; an absent file leaves it NULL and is
 * not an error. */
static int read_opt(const char *dir, const char *name, size_t max, uint8_t **buf, size_t *len, char *err,
                    size_t err_len)
{
	char path[4096];
	int n, r;

	*buf = NULL;
	*len = 0;
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return cvm_err_set(err, err_len, CVM_E_INVAL, "the folder name is too long");
	r = cvm_file_read_err(path, max, buf, len, err, err_len);
	if (r == CVM_E_SYSTEM && errno == ENOENT) {
		(void)cvm_err_set(err, err_len, CVM_OK, "%s", "");
		errno = 0;
		return CVM_OK;
	}
	return r;
}

/* read_first reads the first of two names that exists. */
static int read_first(const char *dir, const char *a, const char *b, size_t max, uint8_t **buf, size_t *len,
                      char *err, size_t err_len)
{
	int r;

	r = read_opt(dir, a, max, buf, len, err, err_len);
	if (r != CVM_OK || *buf != NULL)
		return r;
	return read_opt(dir, b, max, buf, len, err, err_len);
}

int cvm_amd_collateral_load_dir(const char *dir, struct cvm_amd_collateral **out, char *err, size_t err_len)
{
	struct cvm_amd_collateral *c = NULL;
	int r;

	*out = NULL;
	(void)cvm_err_set(err, err_len, CVM_OK, "%s", "");
	if (dir == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no collateral folder given");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	r = read_first(dir, "vcek.der", "vcek.pem", CVM_AMD_CERT_MAX, &c->vcek, &c->vcek_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = read_first(dir, "vlek.der", "vlek.pem", CVM_AMD_CERT_MAX, &c->vlek, &c->vlek_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = read_opt(dir, "ask.pem", 2 * CVM_AMD_CERT_MAX, &c->ask, &c->ask_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = read_opt(dir, "asvk.pem", 2 * CVM_AMD_CERT_MAX, &c->asvk, &c->asvk_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = read_opt(dir, "cert_chain.pem", 2 * CVM_AMD_CERT_MAX, &c->cert_chain, &c->cert_chain_len, err,
	             err_len);
	if (r != CVM_OK)
		goto out;
	r = read_opt(dir, "ark.pem", CVM_AMD_CERT_MAX, &c->ark, &c->ark_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = read_first(dir, "crl.der", "crl.pem", CVM_AMD_CRL_MAX, &c->crl, &c->crl_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	if (c->vcek == NULL && c->vlek == NULL) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "%s holds no vcek.der, vcek.pem, vlek.der or vlek.pem", dir);
		goto out;
	}
	if (c->ask == NULL && c->asvk == NULL && c->cert_chain == NULL) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT, "%s holds no %s and no cert_chain.pem", dir,
		                c->vcek != NULL ? "ask.pem" : "asvk.pem");
		goto out;
	}
	*out = c;
	c = NULL; /* transferred */
out:
	cvm_amd_collateral_free(c);
	return r;
}
