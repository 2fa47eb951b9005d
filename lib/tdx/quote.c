/* The Intel DCAP quote container: SGX v3, TDX v4 and v5.
 *
 * quote  := header(48) body sig_len(u32le) sig_data [zero padding]
 * v5     := header(48) body_type(u16le) body_size(u32le) body sig_len sig_data
 * sig_data (v4/v5) := signature(64) attest_key(64) cert_data(type 6)
 *   type 6 := qe_report(384) qe_report_sig(64) auth_len(u16le) auth cert_data(type 5)
 * sig_data (v3)    := signature(64) attest_key(64) qe_report(384) qe_report_sig(64)
 *                     auth_len(u16le) auth cert_data(type 5)
 * cert_data := type(u16le) size(u32le) data[size]
 */
#include <string.h>

#include <cvmkit/quote.h>

static int cert_data_parse(struct cvm_rd *in, uint16_t *type, struct cvm_rd *data)
{
	uint32_t size;

	if (!cvm_rd_u16le(in, type) || !cvm_rd_u32le(in, &size))
		return CVM_E_TRUNCATED;
	if (size > CVM_QUOTE_CERT_DATA_MAX)
		return CVM_E_TOO_LARGE;
	if (!cvm_rd_sub(in, data, size))
		return CVM_E_TRUNCATED;
	return CVM_OK;
}

/* The QE report, its signature, the QE authentication data and the PCK chain. */
static int qe_part_parse(struct cvm_rd *in, struct cvm_quote *q)
{
	struct cvm_rd qe;
	int r;

	if (!cvm_rd_sub(in, &qe, CVM_SGX_REPORT_LEN))
		return CVM_E_TRUNCATED;
	q->qe_report_raw = qe;
	r = cvm_sgx_report_parse(&qe, &q->qe_report);
	if (r != CVM_OK)
		return r;
	if (!cvm_rd_copy(in, q->qe_report_sig, sizeof(q->qe_report_sig)) ||
	    !cvm_rd_sub_u16le(in, &q->qe_auth_data))
		return CVM_E_TRUNCATED;
	if (q->qe_auth_data.len > CVM_QUOTE_AUTH_DATA_MAX)
		return CVM_E_TOO_LARGE;
	r = cert_data_parse(in, &q->cert_data_type, &q->pck_chain_pem);
	if (r != CVM_OK)
		return r;
	if (q->cert_data_type != CVM_CERT_DATA_PCK_CHAIN)
		return CVM_E_UNSUPPORTED;
	return CVM_OK;
}

static int sig_data_parse(struct cvm_rd *in, struct cvm_quote *q)
{
	struct cvm_rd inner;
	int r;

	if (!cvm_rd_copy(in, q->signature, sizeof(q->signature)) ||
	    !cvm_rd_copy(in, q->attest_key, sizeof(q->attest_key)))
		return CVM_E_TRUNCATED;
	if (q->version == 3) {
		q->outer_cert_data_type = CVM_CERT_DATA_PCK_CHAIN;
		return qe_part_parse(in, q);
	}
	r = cert_data_parse(in, &q->outer_cert_data_type, &inner);
	if (r != CVM_OK)
		return r;
	if (q->outer_cert_data_type != CVM_CERT_DATA_QE_REPORT)
		return CVM_E_UNSUPPORTED;
	r = qe_part_parse(&inner, q);
	if (r != CVM_OK)
		return r;
	return cvm_rd_empty(&inner) ? CVM_OK : CVM_E_FORMAT;
}

static int body_parse(struct cvm_rd *in, struct cvm_quote *q)
{
	uint16_t body_type;
	uint32_t body_size;
	struct cvm_rd body;

	if (q->version != 5) {
		if (q->tee == CVM_TEE_SGX) {
			q->body_type = CVM_BODY_SGX;
			return cvm_sgx_report_parse(in, &q->body.sgx);
		}
		q->body_type = CVM_BODY_TD10;
		return cvm_tdx_report_parse(in, false, &q->body.td);
	}
	if (!cvm_rd_u16le(in, &body_type) || !cvm_rd_u32le(in, &body_size))
		return CVM_E_TRUNCATED;
	/* v5 body types: 1 SGX enclave report, 2 TD 1.0, 3 TD 1.5. */
	switch (body_type) {
	case 2:
		if (body_size != CVM_TD10_REPORT_LEN)
			return CVM_E_FORMAT;
		break;
	case 3:
		if (body_size != CVM_TD15_REPORT_LEN)
			return CVM_E_FORMAT;
		break;
	default:
		return CVM_E_UNSUPPORTED;
	}
	if (!cvm_rd_sub(in, &body, body_size))
		return CVM_E_TRUNCATED;
	q->body_type = body_type == 3 ? CVM_BODY_TD15 : CVM_BODY_TD10;
	return cvm_tdx_report_parse(&body, body_type == 3, &q->body.td);
}

int cvm_quote_parse(const uint8_t *buf, size_t len, struct cvm_quote *out)
{
	struct cvm_rd in, sig, signed_start;
	uint32_t sig_len;
	int r;

	memset(out, 0, sizeof(*out));
	if (buf == NULL)
		return CVM_E_INVAL;
	if (len > CVM_QUOTE_MAX)
		return CVM_E_TOO_LARGE;
	cvm_rd_init(&in, buf, len);
	signed_start = in;
	if (!cvm_rd_u16le(&in, &out->version) || !cvm_rd_u16le(&in, &out->att_key_type) ||
	    !cvm_rd_u32le(&in, &out->tee_type) || !cvm_rd_u16le(&in, &out->qe_svn) ||
	    !cvm_rd_u16le(&in, &out->pce_svn) ||
	    !cvm_rd_copy(&in, out->qe_vendor_id, sizeof(out->qe_vendor_id)) ||
	    !cvm_rd_copy(&in, out->user_data, sizeof(out->user_data)))
		return CVM_E_TRUNCATED;
	if (out->att_key_type != CVM_ATT_KEY_ECDSA_P256)
		return CVM_E_UNSUPPORTED;
	switch (out->version) {
	case 3:
		/* v3 has no TEE type field: those 4 bytes are reserved (SGX only). */
		if (out->tee_type != CVM_TEE_TYPE_SGX)
			return CVM_E_FORMAT;
		out->tee = CVM_TEE_SGX;
		break;
	case 4:
	case 5:
		if (out->tee_type != CVM_TEE_TYPE_TDX)
			return out->tee_type == CVM_TEE_TYPE_SGX ? CVM_E_UNSUPPORTED : CVM_E_FORMAT;
		out->tee = CVM_TEE_TDX;
		break;
	default:
		return CVM_E_UNSUPPORTED;
	}
	r = body_parse(&in, out);
	if (r != CVM_OK)
		return r;
	if (!cvm_rd_sub(&signed_start, &out->signed_data, len - in.len))
		return CVM_E_INTERNAL;
	if (!cvm_rd_u32le(&in, &sig_len))
		return CVM_E_TRUNCATED;
	if (sig_len > CVM_QUOTE_MAX)
		return CVM_E_TOO_LARGE;
	if (!cvm_rd_sub(&in, &sig, sig_len))
		return CVM_E_TRUNCATED;
	r = sig_data_parse(&sig, out);
	if (r != CVM_OK)
		return r;
	if (!cvm_rd_empty(&sig))
		return CVM_E_FORMAT;
	/* A GetQuote buffer may hold zero padding after the quote; nothing else. */
	out->padding_len = in.len;
	out->quote_len = len - in.len;
	if (!cvm_rd_all_zero(&in)) {
		out->trailing_garbage = true;
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}
