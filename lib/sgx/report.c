/* SGX enclave report body (384 bytes), decoded field by field. */
#include <string.h>

#include <cvmkit/quote.h>

int cvm_sgx_report_parse(struct cvm_rd *in, struct cvm_sgx_report *out)
{
	struct cvm_rd body, r1, r2, r3, r4;

	memset(out, 0, sizeof(*out));
	if (!cvm_rd_sub(in, &body, CVM_SGX_REPORT_LEN))
		return CVM_E_TRUNCATED;
	if (!cvm_rd_copy(&body, out->cpu_svn, sizeof(out->cpu_svn)) ||
	    !cvm_rd_u32le(&body, &out->misc_select) || !cvm_rd_sub(&body, &r1, 12) ||
	    !cvm_rd_copy(&body, out->isv_ext_prod_id, sizeof(out->isv_ext_prod_id)) ||
	    !cvm_rd_copy(&body, out->attributes, sizeof(out->attributes)) ||
	    !cvm_rd_copy(&body, out->mr_enclave, sizeof(out->mr_enclave)) || !cvm_rd_sub(&body, &r2, 32) ||
	    !cvm_rd_copy(&body, out->mr_signer, sizeof(out->mr_signer)) || !cvm_rd_sub(&body, &r3, 32) ||
	    !cvm_rd_copy(&body, out->config_id, sizeof(out->config_id)) ||
	    !cvm_rd_u16le(&body, &out->isv_prod_id) || !cvm_rd_u16le(&body, &out->isv_svn) ||
	    !cvm_rd_u16le(&body, &out->config_svn) || !cvm_rd_sub(&body, &r4, 42) ||
	    !cvm_rd_copy(&body, out->isv_family_id, sizeof(out->isv_family_id)) ||
	    !cvm_rd_copy(&body, out->report_data, sizeof(out->report_data)) || !cvm_rd_empty(&body))
		return CVM_E_INTERNAL; /* the sizes above add up to 384 */
	out->reserved_nonzero =
	    !cvm_rd_all_zero(&r1) || !cvm_rd_all_zero(&r2) || !cvm_rd_all_zero(&r3) || !cvm_rd_all_zero(&r4);
	return CVM_OK;
}
