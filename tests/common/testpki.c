/* Test-only helpers around the library's mock PKI. See testpki.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cvmkit/file.h>

#include "testpki.h"

static const char quote_file_name[] = "quote.bin";

/* dup_nul copies a file's bytes with a NUL after them, as cvm_file_read. */
static int dup_nul(const uint8_t *p, size_t n, uint8_t **out, size_t *out_len)
{
	*out = malloc(n + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	if (n != 0)
		memcpy(*out, p, n);
	(*out)[n] = 0;
	*out_len = n;
	return CVM_OK;
}

int cvm_testpki_collateral(const struct cvm_mockpki *pki, struct cvm_dcap_collateral **out)
{
	struct cvm_dcap_collateral *c = NULL;
	struct {
		enum cvm_mockpki_file f;
		uint8_t **buf;
		size_t *len;
	} map[CVM_MOCKPKI_F_COUNT];
	size_t n = 0;
	int r = CVM_OK;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
#define MAP(F, FIELD)                 \
	map[n].f = (F);               \
	map[n].buf = &c->FIELD;       \
	map[n].len = &c->FIELD##_len; \
	n++
	MAP(CVM_MOCKPKI_F_TCB_INFO, tcb_info);
	MAP(CVM_MOCKPKI_F_QE_IDENTITY, qe_identity);
	MAP(CVM_MOCKPKI_F_TCB_INFO_CHAIN, tcb_info_issuer_chain);
	MAP(CVM_MOCKPKI_F_QE_IDENTITY_CHAIN, qe_identity_issuer_chain);
	MAP(CVM_MOCKPKI_F_PCK_CRL_CHAIN, pck_crl_issuer_chain);
	MAP(CVM_MOCKPKI_F_PCK_CRL, pck_crl);
	MAP(CVM_MOCKPKI_F_ROOT_CRL, root_ca_crl);
	MAP(CVM_MOCKPKI_F_ROOT_DER, root_ca);
#undef MAP
	for (size_t i = 0; i < n && r == CVM_OK; i++) {
		const uint8_t *p;
		size_t len;

		cvm_mockpki_file(pki, map[i].f, &p, &len);
		r = dup_nul(p, len, map[i].buf, map[i].len);
	}
	if (r != CVM_OK) {
		cvm_dcap_collateral_free(c);
		return r;
	}
	*out = c;
	return CVM_OK;
}

static int path_join(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? CVM_E_INVAL : CVM_OK;
}

int cvm_testpki_write(const struct cvm_mockpki_opts *o, const char *dir)
{
	struct cvm_mockpki *pki = NULL;
	uint8_t *quote = NULL;
	size_t quote_len = 0;
	char path[4096];
	int r;

	r = cvm_mockpki_new(o, &pki);
	if (r != CVM_OK)
		goto out;
	r = cvm_mockpki_write_collateral(pki, dir);
	if (r != CVM_OK)
		goto out;
	r = cvm_mockpki_quote(pki, NULL, &quote, &quote_len);
	if (r != CVM_OK)
		goto out;
	r = path_join(path, sizeof(path), dir, quote_file_name);
	if (r != CVM_OK)
		goto out;
	r = cvm_file_write(path, quote, quote_len, 0644);
out:
	free(quote);
	cvm_mockpki_free(pki);
	return r;
}

int cvm_testpki_dir_remove(const char *dir)
{
	char path[4096];
	int r;

	for (size_t i = 0; i <= CVM_MOCKPKI_F_COUNT; i++) {
		const char *name = i < CVM_MOCKPKI_F_COUNT ? cvm_mockpki_file_name((enum cvm_mockpki_file)i)
		                                           : quote_file_name;

		r = path_join(path, sizeof(path), dir, name);
		if (r != CVM_OK)
			return r;
		if (unlink(path) != 0 && errno != ENOENT)
			return CVM_E_SYSTEM;
	}
	return rmdir(dir) == 0 ? CVM_OK : CVM_E_SYSTEM;
}
