/* Verify before store: an item is verified alone, at the time given,
 * against the handle's anchor, by lib/dcap's and lib/amd's per-item checks
 * (no second copy of chain, CRL or signature logic here), and it must be
 * the item its key asked for (FMSPC, TEE, enclave, CA, product, chip, TCB). */
#include <stdio.h>
#include <string.h>

#include <cvmkit/amd.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/report.h>

#include "coll_int.h"
#include "core/core_lib.h"

static int fail(char *err, size_t err_len, int r, const char *name, const struct cvm_report *rep)
{
	const char *why = rep != NULL ? cvm_report_reason(rep) : NULL;

	return cvm_err_set(err, err_len, r, "%s does not verify: %s", name,
	                   why != NULL && why[0] != '\0' ? why : cvm_strerror(r));
}

static int verify_intel(struct cvm_cache *c, struct cvm_cache_item *it, int64_t now, const char *name,
                        char *err, size_t err_len)
{
	const struct cvm_cache_key *k = &it->key;
	struct cvm_cache_item *root_crl = NULL;
	struct cvm_cache_key rk;
	struct cvm_dcap_item_info info;
	struct cvm_report rep;
	enum cvm_dcap_item_kind kind;
	const char *want_id = NULL;
	int r;

	switch (k->kind) {
	case CVM_CACHE_TCB_INFO:
		kind = CVM_DCAP_ITEM_TCB_INFO;
		break;
	case CVM_CACHE_QE_ID:
		kind = CVM_DCAP_ITEM_QE_IDENTITY;
		want_id = k->tee == CVM_CACHE_TDX ? "TD_QE" : "QE";
		break;
	case CVM_CACHE_QVE_ID:
		kind = CVM_DCAP_ITEM_QE_IDENTITY;
		want_id = "QVE";
		break;
	case CVM_CACHE_PCK_CRL:
		kind = CVM_DCAP_ITEM_PCK_CRL;
		break;
	case CVM_CACHE_ROOT_CRL:
		kind = CVM_DCAP_ITEM_ROOT_CRL;
		break;
	case CVM_CACHE_PCK_CERT:
	case CVM_CACHE_PCK_CERTS:
		kind = CVM_DCAP_ITEM_PCK_CERT;
		break;
	default:
		return CVM_E_INVAL;
	}
	if (kind != CVM_DCAP_ITEM_ROOT_CRL && it->issuer_chain == NULL)
		return cvm_err_set(
		    err, err_len, CVM_E_CHAIN,
		    "%s came without its issuer chain (the upstream sent no issuer chain header)", name);
	/* The root CA CRL, when it is cached and current, also checks the
	 * chain's certificates the root issued. */
	if (kind != CVM_DCAP_ITEM_ROOT_CRL) {
		const struct cvm_cache_item *p;

		cvm_cache_key_init(&rk, CVM_CACHE_ROOT_CRL);
		p = coll_pending_find(c, &rk);
		if (p != NULL) {
			if (coll_item_dup(p, &root_crl) != CVM_OK)
				root_crl = NULL;
		} else if (coll_store_read(c, &rk, &root_crl) != CVM_OK)
			root_crl = NULL;
		if (root_crl != NULL && now >= root_crl->expires) {
			cvm_cache_item_free(root_crl);
			root_crl = NULL;
		}
	}
	if (k->kind == CVM_CACHE_PCK_CERTS) {
		r = coll_pck_certs_verify(c, it, root_crl != NULL ? root_crl->body : NULL,
		                          root_crl != NULL ? root_crl->body_len : 0, now, name, err, err_len);
		cvm_cache_item_free(root_crl);
		return r;
	}
	cvm_report_init(&rep);
	r = cvm_dcap_item_authenticate(kind, it->body, it->body_len, (const uint8_t *)it->issuer_chain,
	                               it->issuer_chain_len, root_crl != NULL ? root_crl->body : NULL,
	                               root_crl != NULL ? root_crl->body_len : 0, c->intel.der,
	                               c->intel.der_len, now, &rep, &info);
	cvm_cache_item_free(root_crl);
	if (r != CVM_OK)
		return fail(err, err_len, r, name, &rep);
	if (k->kind == CVM_CACHE_TCB_INFO &&
	    (memcmp(info.fmspc, k->fmspc, sizeof(k->fmspc)) != 0 ||
	     info.tee != (k->tee == CVM_CACHE_TDX ? CVM_TEE_TDX : CVM_TEE_SGX)))
		return cvm_err_set(err, err_len, CVM_E_MISMATCH,
		                   "%s is a valid TCB info, but for another FMSPC or TEE than was asked",
		                   name);
	if (want_id != NULL && strcmp(info.id, want_id) != 0)
		return cvm_err_set(err, err_len, CVM_E_MISMATCH, "%s is the identity of '%s', not of '%s'",
		                   name, info.id, want_id);
	if (k->kind == CVM_CACHE_PCK_CRL && info.ca_platform != (k->ca == CVM_CACHE_CA_PLATFORM))
		return cvm_err_set(err, err_len, CVM_E_MISMATCH,
		                   "%s is the CRL of the PCK %s CA, not of the one asked", name,
		                   info.ca_platform ? "Platform" : "Processor");
	if (k->kind == CVM_CACHE_PCK_CERT && it->fmspc[0] != '\0') {
		uint8_t f[6];

		if (cvm_hex_decode_exact(it->fmspc, strlen(it->fmspc), f, sizeof(f)) != CVM_OK ||
		    memcmp(f, info.fmspc, sizeof(f)) != 0)
			return cvm_err_set(err, err_len, CVM_E_MISMATCH,
			                   "%s: the SGX-FMSPC header does not match the certificate's FMSPC",
			                   name);
	}
	it->issued_at = info.issued;
	it->next_update = info.next_update;
	it->expires = info.expires;
	(void)snprintf(it->anchor, sizeof(it->anchor), "%s", c->intel.name);
	return CVM_OK;
}

static int verify_amd(struct cvm_cache *c, struct cvm_cache_item *it, int64_t now, unsigned flags,
                      const char *name, char *err, size_t err_len)
{
	const struct cvm_cache_key *k = &it->key;
	struct cvm_cache_item *chain = NULL;
	struct cvm_cache_key ck;
	struct cvm_amd_item_info info;
	struct cvm_report rep;
	enum cvm_amd_item_kind kind;
	int r;

	kind = k->kind == CVM_CACHE_AMD_CHAIN ? CVM_AMD_ITEM_CHAIN
	       : k->kind == CVM_CACHE_AMD_CRL ? CVM_AMD_ITEM_CRL
	                                      : CVM_AMD_ITEM_VCEK;
	if (kind != CVM_AMD_ITEM_CHAIN) {
		/* The CRL and the VCEK verify under the product's cached chain
		 * (fetched first when it is not cached). */
		cvm_cache_key_init(&ck, CVM_CACHE_AMD_CHAIN);
		ck.product = k->product;
		ck.signer = kind == CVM_AMD_ITEM_VCEK ? CVM_SNP_SIGNER_VCEK : k->signer;
		if (coll_pending_find(c, &ck) != NULL)
			r = coll_item_dup(coll_pending_find(c, &ck), &chain);
		else
			r = cvm_cache_get(c, &ck, now, flags & ~(unsigned)CVM_CACHE_REFRESH, &chain, NULL,
			                  err, err_len);
		if (r != CVM_OK)
			return r;
	}
	cvm_report_init(&rep);
	r = cvm_amd_item_authenticate(kind, kind == CVM_AMD_ITEM_VCEK ? CVM_SNP_SIGNER_VCEK : k->signer,
	                              it->body, it->body_len, chain != NULL ? chain->body : NULL,
	                              chain != NULL ? chain->body_len : 0, c->amd.der, c->amd.der_len, now,
	                              &rep, &info);
	if (r == CVM_OK && chain != NULL && chain->expires < info.expires)
		info.expires = chain->expires;
	cvm_cache_item_free(chain);
	if (r != CVM_OK)
		return fail(err, err_len, r, name, &rep);
	if (info.product != k->product)
		return cvm_err_set(err, err_len, CVM_E_MISMATCH, "%s is for %s, not %s", name,
		                   cvm_snp_product_name(info.product), cvm_snp_product_name(k->product));
	if (kind == CVM_AMD_ITEM_VCEK) {
		struct cvm_snp_tcb want;

		cvm_snp_tcb_decode(k->tcb, k->product, &want);
		if (info.vek.hwid_len != k->hwid_len || memcmp(info.vek.hwid, k->hwid, k->hwid_len) != 0)
			return cvm_err_set(err, err_len, CVM_E_MISMATCH, "%s certifies another chip", name);
		if (info.vek.tcb.bootloader != want.bootloader || info.vek.tcb.tee != want.tee ||
		    info.vek.tcb.snp != want.snp || info.vek.tcb.microcode != want.microcode ||
		    (k->product == CVM_SNP_PRODUCT_TURIN && info.vek.tcb.fmc != want.fmc))
			return cvm_err_set(err, err_len, CVM_E_MISMATCH,
			                   "%s certifies another TCB than was asked", name);
	}
	it->issued_at = info.issued;
	it->next_update = info.next_update;
	it->expires = info.expires;
	(void)snprintf(it->anchor, sizeof(it->anchor), "%s", c->amd.name);
	return CVM_OK;
}

const struct cvm_cache_item *coll_pending_find(const struct cvm_cache *c, const struct cvm_cache_key *k)
{
	char want[COLL_NAME_MAX], name[COLL_NAME_MAX];

	if (c->pending_count == 0 || cvm_cache_key_name(k, want, sizeof(want)) != CVM_OK)
		return NULL;
	for (size_t i = 0; i < c->pending_count; i++)
		if (cvm_cache_key_name(&c->pending[i]->key, name, sizeof(name)) == CVM_OK &&
		    strcmp(name, want) == 0)
			return c->pending[i];
	return NULL;
}

int coll_verify(struct cvm_cache *c, struct cvm_cache_item *it, int64_t now, unsigned flags, char *err,
                size_t err_len)
{
	char name[COLL_NAME_MAX];
	int r;

	r = cvm_cache_key_name(&it->key, name, sizeof(name));
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the item's key does not name an item");
	if (it->body == NULL || it->body_len == 0 || it->body_len > coll_key_body_max(it->key.kind))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "%s has no body or one larger than %zu bytes",
		                   name, coll_key_body_max(it->key.kind));
	if (coll_key_is_amd(it->key.kind))
		return verify_amd(c, it, now, flags, name, err, err_len);
	return verify_intel(c, it, now, name, err, err_len);
}
