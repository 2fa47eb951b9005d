/* What a quote or a report needs, read from the evidence without
 * verifying it (the verifiers do that with what the cache gives). */
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/err.h>
#include <cvmkit/quote.h>
#include <cvmkit/snp.h>

#include "coll_int.h"
#include "core/core_lib.h"
#include "dcap/dcap_lib.h"

int cvm_cache_need_quote(const uint8_t *quote, size_t len, struct cvm_cache_need *out, char *err,
                         size_t err_len)
{
	struct cvm_quote q;
	bool platform = false;
	uint8_t fmspc[6];
	enum cvm_cache_tee tee;
	int r;

	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (quote == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no quote given");
	r = cvm_quote_parse(quote, len, &q);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the quote cannot be parsed: %s", cvm_strerror(r));
	if (q.pck_chain_pem.p == NULL || q.pck_chain_pem.len == 0)
		return cvm_err_set(
		    err, err_len, CVM_E_UNSUPPORTED,
		    "the quote carries no PCK certificate chain (certification data type 5), so it "
		    "does not say which FMSPC and PCK CA its collateral is for");
	r = cvm_dcap_pck_identify(q.pck_chain_pem.p, q.pck_chain_pem.len, fmspc, &platform);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r == CVM_E_NOMEM ? r : CVM_E_FORMAT,
		                   "the quote's PCK certificate has no readable SGX extension");
	tee = q.tee == CVM_TEE_TDX ? CVM_CACHE_TDX : CVM_CACHE_SGX;
	/* The root CA CRL first: the items after it are checked against it. */
	cvm_cache_key_init(&out->keys[0], CVM_CACHE_ROOT_CRL);
	cvm_cache_key_init(&out->keys[1], CVM_CACHE_PCK_CRL);
	out->keys[1].ca = platform ? CVM_CACHE_CA_PLATFORM : CVM_CACHE_CA_PROCESSOR;
	cvm_cache_key_init(&out->keys[2], CVM_CACHE_TCB_INFO);
	out->keys[2].tee = tee;
	memcpy(out->keys[2].fmspc, fmspc, sizeof(fmspc));
	cvm_cache_key_init(&out->keys[3], CVM_CACHE_QE_ID);
	out->keys[3].tee = tee;
	out->count = 4;
	return CVM_OK;
}

int cvm_cache_need_report(const uint8_t *report, size_t len, enum cvm_snp_product product,
                          struct cvm_cache_need *out, char *err, size_t err_len)
{
	struct cvm_snp_report s;
	struct cvm_rd chip;
	enum cvm_snp_signer signer;
	int r;

	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (report == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no report given");
	r = cvm_snp_report_parse(report, len, &s);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the SEV-SNP report cannot be parsed: %s",
		                   cvm_strerror(r));
	if (s.has_cpuid) {
		enum cvm_snp_product p = cvm_snp_product_from_cpuid(s.cpuid_fam_id, s.cpuid_mod_id);

		if (p != CVM_SNP_PRODUCT_UNKNOWN)
			product = p;
	}
	if (product != CVM_SNP_PRODUCT_MILAN && product != CVM_SNP_PRODUCT_GENOA &&
	    product != CVM_SNP_PRODUCT_TURIN)
		return cvm_err_set(
		    err, err_len, CVM_E_UNSUPPORTED,
		    "the report does not name its product (version 2 has no CPUID fields): give "
		    "the product (Milan, Genoa or Turin)");
	signer = (enum cvm_snp_signer)s.signing_key;
	if (signer != CVM_SNP_SIGNER_VCEK && signer != CVM_SNP_SIGNER_VLEK)
		return cvm_err_set(err, err_len, CVM_E_UNSUPPORTED,
		                   "the report is signed by neither a VCEK nor a VLEK (signing key %u)",
		                   (unsigned)s.signing_key);
	if (signer == CVM_SNP_SIGNER_VCEK) {
		struct cvm_cache_key *k = &out->keys[out->count++];

		cvm_cache_key_init(k, CVM_CACHE_VCEK);
		k->product = product;
		k->hwid_len = product == CVM_SNP_PRODUCT_TURIN ? 8 : 64;
		memcpy(k->hwid, s.chip_id, k->hwid_len);
		cvm_rd_init(&chip, k->hwid, k->hwid_len);
		if (cvm_rd_all_zero(&chip))
			return cvm_err_set(
			    err, err_len, CVM_E_UNSUPPORTED,
			    "the report's chip ID is masked (MASK_CHIP_ID), so its VCEK cannot be "
			    "named: give the VCEK with the evidence");
		k->tcb = s.reported_tcb.raw;
	}
	cvm_cache_key_init(&out->keys[out->count], CVM_CACHE_AMD_CHAIN);
	out->keys[out->count].product = product;
	out->keys[out->count++].signer = signer;
	cvm_cache_key_init(&out->keys[out->count], CVM_CACHE_AMD_CRL);
	out->keys[out->count].product = product;
	out->keys[out->count++].signer = signer;
	return CVM_OK;
}
