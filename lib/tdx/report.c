/* TD report bodies: TD 1.0 (584 bytes) and TD 1.5 (648 bytes). */
#include <string.h>

#include <cvmkit/quote.h>

int cvm_tdx_report_parse(struct cvm_rd *in, bool is_td15, struct cvm_tdx_report *out)
{
	struct cvm_rd body;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (!cvm_rd_sub(in, &body, is_td15 ? CVM_TD15_REPORT_LEN : CVM_TD10_REPORT_LEN))
		return CVM_E_TRUNCATED;
	ok = cvm_rd_copy(&body, out->tee_tcb_svn, sizeof(out->tee_tcb_svn)) &&
	     cvm_rd_copy(&body, out->mr_seam, sizeof(out->mr_seam)) &&
	     cvm_rd_copy(&body, out->mr_signer_seam, sizeof(out->mr_signer_seam)) &&
	     cvm_rd_copy(&body, out->seam_attributes, sizeof(out->seam_attributes)) &&
	     cvm_rd_copy(&body, out->td_attributes, sizeof(out->td_attributes)) &&
	     cvm_rd_copy(&body, out->xfam, sizeof(out->xfam)) &&
	     cvm_rd_copy(&body, out->mr_td, sizeof(out->mr_td)) &&
	     cvm_rd_copy(&body, out->mr_config_id, sizeof(out->mr_config_id)) &&
	     cvm_rd_copy(&body, out->mr_owner, sizeof(out->mr_owner)) &&
	     cvm_rd_copy(&body, out->mr_owner_config, sizeof(out->mr_owner_config));
	for (size_t i = 0; ok && i < 4; i++)
		ok = cvm_rd_copy(&body, out->rtmr[i], sizeof(out->rtmr[i]));
	ok = ok && cvm_rd_copy(&body, out->report_data, sizeof(out->report_data));
	if (ok && is_td15)
		ok = cvm_rd_copy(&body, out->tee_tcb_svn2, sizeof(out->tee_tcb_svn2)) &&
		     cvm_rd_copy(&body, out->mr_service_td, sizeof(out->mr_service_td));
	if (!ok || !cvm_rd_empty(&body))
		return CVM_E_INTERNAL; /* the field sizes add up to the body length */
	out->is_td15 = is_td15;
	return CVM_OK;
}

uint64_t cvm_td_attributes(const struct cvm_tdx_report *td)
{
	uint64_t v = 0;

	for (size_t i = 8; i > 0; i--)
		v = (v << 8) | td->td_attributes[i - 1];
	return v;
}
