/* The AMD test PKI over the library's mock (lib/crypto/mockamd.c). See
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

void cvm_testamd_opts_init(struct cvm_mockamd_opts *o, enum cvm_snp_product product,
                           enum cvm_snp_signer signer, int64_t now)
{
	(void)pthread_once(&key_source_once, key_source_make);
	cvm_mockamd_opts_init(o, product, signer, now);
	o->keys_from = key_source;
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
