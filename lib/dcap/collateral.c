/* Loading a collateral folder laid out as Intel's PCS responses are stored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/dcap.h>
#include <cvmkit/file.h>

#include "core/core_lib.h"

struct coll_file {
	const char *name;
	size_t max;
	bool optional;
	size_t buf_off; /* offsetof the uint8_t * field */
	size_t len_off; /* offsetof the size_t field */
};

#define COLL_FIELD(name, max, opt, f)                                    \
	{                                                                \
		name, max, opt, offsetof(struct cvm_dcap_collateral, f), \
		    offsetof(struct cvm_dcap_collateral, f##_len)        \
	}

static const struct coll_file coll_files[] = {
    COLL_FIELD("tcb_info.json", CVM_DCAP_JSON_MAX, false, tcb_info),
    COLL_FIELD("qe_identity.json", CVM_DCAP_JSON_MAX, false, qe_identity),
    COLL_FIELD("tcb_info_issuer_chain.pem", CVM_DCAP_PEM_MAX, false, tcb_info_issuer_chain),
    COLL_FIELD("qe_identity_issuer_chain.pem", CVM_DCAP_PEM_MAX, false, qe_identity_issuer_chain),
    COLL_FIELD("pck_crl_issuer_chain.pem", CVM_DCAP_PEM_MAX, false, pck_crl_issuer_chain),
    COLL_FIELD("pck_crl.der", CVM_DCAP_CRL_MAX, false, pck_crl),
    COLL_FIELD("root_ca_crl.der", CVM_DCAP_CRL_MAX, false, root_ca_crl),
    COLL_FIELD("intel_sgx_root_ca.der", CVM_DCAP_CERT_MAX, true, root_ca),
};

int cvm_dcap_collateral_load_dir(const char *dir, struct cvm_dcap_collateral **out, char *err, size_t err_len)
{
	struct cvm_dcap_collateral *c = NULL;
	int r = CVM_OK;

	*out = NULL;
	(void)cvm_err_set(err, err_len, CVM_OK, "%s", "");
	if (dir == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no collateral folder given");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < sizeof(coll_files) / sizeof(coll_files[0]); i++) {
		const struct coll_file *f = &coll_files[i];
		uint8_t **buf = (uint8_t **)(void *)((char *)c + f->buf_off);
		size_t *len = (size_t *)(void *)((char *)c + f->len_off);
		char path[4096];
		int n;

		n = snprintf(path, sizeof(path), "%s/%s", dir, f->name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			r = cvm_err_set(err, err_len, CVM_E_INVAL, "the folder name is too long");
			goto out;
		}
		r = cvm_file_read_err(path, f->max, buf, len, err, err_len);
		if (r == CVM_E_SYSTEM && errno == ENOENT && f->optional) {
			r = CVM_OK;
			continue;
		}
		if (r != CVM_OK)
			goto out;
	}
	(void)cvm_err_set(err, err_len, CVM_OK, "%s", ""); /* an absent optional file is no error */
	*out = c;
	c = NULL; /* transferred */
out:
	cvm_dcap_collateral_free(c);
	return r;
}

void cvm_dcap_collateral_free(struct cvm_dcap_collateral *c)
{
	if (c == NULL)
		return;
	free(c->tcb_info);
	free(c->qe_identity);
	free(c->tcb_info_issuer_chain);
	free(c->qe_identity_issuer_chain);
	free(c->pck_crl_issuer_chain);
	free(c->pck_crl);
	free(c->root_ca_crl);
	free(c->root_ca);
	free(c);
}
