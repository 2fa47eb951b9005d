/* Loading an SNP collateral folder: certificate bytes only, parsed later. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/amd.h>
#include <cvmkit/file.h>

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

static void set_what(char *what, size_t what_len, const char *name)
{
	if (what != NULL && what_len != 0)
		(void)snprintf(what, what_len, "%s", name);
}

/* read_opt reads dir/name into `buf`; an absent file leaves it NULL and is
 * not an error. */
static int read_opt(const char *dir, const char *name, size_t max, uint8_t **buf, size_t *len, char *what,
                    size_t what_len)
{
	char path[4096];
	int n, r;

	*buf = NULL;
	*len = 0;
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		set_what(what, what_len, name);
		return CVM_E_INVAL;
	}
	r = cvm_file_read(path, max, buf, len);
	if (r == CVM_E_SYSTEM && errno == ENOENT) {
		errno = 0;
		return CVM_OK;
	}
	if (r != CVM_OK)
		set_what(what, what_len, name);
	return r;
}

/* read_first reads the first of two names that exists. */
static int read_first(const char *dir, const char *a, const char *b, size_t max, uint8_t **buf, size_t *len,
                      char *what, size_t what_len)
{
	int r;

	r = read_opt(dir, a, max, buf, len, what, what_len);
	if (r != CVM_OK || *buf != NULL)
		return r;
	return read_opt(dir, b, max, buf, len, what, what_len);
}

int cvm_amd_collateral_load_dir(const char *dir, struct cvm_amd_collateral **out, char *what, size_t what_len)
{
	struct cvm_amd_collateral *c = NULL;
	int r;

	*out = NULL;
	set_what(what, what_len, "");
	if (dir == NULL)
		return CVM_E_INVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	r = read_first(dir, "vcek.der", "vcek.pem", CVM_AMD_CERT_MAX, &c->vcek, &c->vcek_len, what, what_len);
	if (r != CVM_OK)
		goto out;
	r = read_first(dir, "vlek.der", "vlek.pem", CVM_AMD_CERT_MAX, &c->vlek, &c->vlek_len, what, what_len);
	if (r != CVM_OK)
		goto out;
	r = read_opt(dir, "ask.pem", 2 * CVM_AMD_CERT_MAX, &c->ask, &c->ask_len, what, what_len);
	if (r != CVM_OK)
		goto out;
	r = read_opt(dir, "asvk.pem", 2 * CVM_AMD_CERT_MAX, &c->asvk, &c->asvk_len, what, what_len);
	if (r != CVM_OK)
		goto out;
	r = read_opt(dir, "cert_chain.pem", 2 * CVM_AMD_CERT_MAX, &c->cert_chain, &c->cert_chain_len, what,
	             what_len);
	if (r != CVM_OK)
		goto out;
	r = read_opt(dir, "ark.pem", CVM_AMD_CERT_MAX, &c->ark, &c->ark_len, what, what_len);
	if (r != CVM_OK)
		goto out;
	r = read_first(dir, "crl.der", "crl.pem", CVM_AMD_CRL_MAX, &c->crl, &c->crl_len, what, what_len);
	if (r != CVM_OK)
		goto out;
	if (c->vcek == NULL && c->vlek == NULL) {
		set_what(what, what_len, "vcek.der");
		r = CVM_E_FORMAT;
		goto out;
	}
	if (c->ask == NULL && c->asvk == NULL && c->cert_chain == NULL) {
		set_what(what, what_len, c->vcek != NULL ? "ask.pem" : "asvk.pem");
		r = CVM_E_FORMAT;
		goto out;
	}
	*out = c;
	c = NULL; /* transferred */
out:
	cvm_amd_collateral_free(c);
	return r;
}
