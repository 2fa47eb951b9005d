/* Intel enclave identity (QE, TD_QE, QVE), version 2, as the PCS serves it. */
#include <stdlib.h>
#include <string.h>

#include "dcap/collateral_int.h"

void cvm_qe_identity_free(struct cvm_qe_identity *qe)
{
	if (qe == NULL)
		return;
	if (__atomic_load_n(&qe->refs, __ATOMIC_ACQUIRE) > 0 &&
	    __atomic_sub_fetch(&qe->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; qe->levels != NULL && i < qe->level_count; i++)
		cvm_coll_advisories_cleanup(&qe->levels[i].adv);
	free(qe->levels);
	free(qe);
}

static int parse_id(const json_t *o, struct cvm_qe_identity *qe)
{
	static const char *const known[] = {"QE", "TD_QE", "QVE"};
	const char *s;
	size_t len;
	int r;

	r = cvm_coll_string(o, "id", &s, &len);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strlen(known[i]) == len && memcmp(known[i], s, len) == 0) {
			memcpy(qe->id, known[i], len + 1);
			return CVM_OK;
		}
	}
	return CVM_E_UNSUPPORTED;
}

/* u32_field reads an 8-digit hex field. Intel writes the bytes of the
 * little-endian report field in memory order, so "01000000" is 1. */
static int u32_field(const json_t *o, const char *key, uint32_t *out)
{
	uint8_t b[4];
	int r;

	*out = 0;
	r = cvm_coll_hex(o, key, b, sizeof(b));
	if (r != CVM_OK)
		return r;
	*out = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return CVM_OK;
}

int cvm_qe_identity_decode(const json_t *o, struct cvm_qe_identity *qe)
{
	const json_t *levels;
	uint64_t version;
	size_t n;
	int r;

	r = cvm_coll_uint(o, "version", UINT32_MAX, &version);
	if (r != CVM_OK)
		return r;
	if (version != 2)
		return CVM_E_UNSUPPORTED;
	qe->version = (unsigned)version;
	r = parse_id(o, qe);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_date(o, "issueDate", &qe->issue_date);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_date(o, "nextUpdate", &qe->next_update);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_u32(o, "tcbEvaluationDataNumber", &qe->tcb_eval_num);
	if (r != CVM_OK)
		return r;
	r = u32_field(o, "miscselect", &qe->miscselect);
	if (r != CVM_OK)
		return r;
	r = u32_field(o, "miscselectMask", &qe->miscselect_mask);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_hex(o, "attributes", qe->attributes, sizeof(qe->attributes));
	if (r != CVM_OK)
		return r;
	r = cvm_coll_hex(o, "attributesMask", qe->attributes_mask, sizeof(qe->attributes_mask));
	if (r != CVM_OK)
		return r;
	r = cvm_coll_hex(o, "mrsigner", qe->mrsigner, sizeof(qe->mrsigner));
	if (r != CVM_OK)
		return r;
	r = cvm_coll_u16(o, "isvprodid", &qe->isv_prod_id);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_array(o, "tcbLevels", CVM_TCB_LEVELS_MAX, false, &levels, &n);
	if (r != CVM_OK)
		return r;
	qe->levels = calloc(n, sizeof(*qe->levels));
	if (qe->levels == NULL)
		return CVM_E_NOMEM;
	qe->level_count = n;
	/* Kept in file order: Intel takes the first level whose isvsvn is not
	 * above the QE's. */
	for (size_t i = 0; i < n; i++) {
		struct cvm_qe_level *ql = &qe->levels[i];
		uint64_t svn = 0;

		r = cvm_coll_isvsvn_level(json_array_get(levels, i), UINT16_MAX, &svn, &ql->tcb_date,
		                          &ql->status, &ql->adv);
		if (r != CVM_OK)
			return r;
		ql->isv_svn = (uint16_t)svn;
	}
	return CVM_OK;
}

int cvm_qe_identity_parse(const uint8_t *body, size_t len, struct cvm_qe_identity **out,
                          struct cvm_rd *signed_part, uint8_t signature[64])
{
	void *obj = NULL;
	int r;

	if (out == NULL)
		return CVM_E_INVAL;
	r = cvm_coll_parse(CVM_COLL_QE_IDENTITY, body, len, &obj, signed_part, signature);
	*out = obj;
	return r;
}
