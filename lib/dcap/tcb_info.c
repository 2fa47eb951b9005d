/* Intel TCB info, versions 2 (SGX) and 3 (SGX, TDX), as the PCS serves it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcap/collateral_int.h"

void cvm_tcb_info_free(struct cvm_tcb_info *ti)
{
	if (ti == NULL)
		return;
	if (__atomic_load_n(&ti->refs, __ATOMIC_ACQUIRE) > 0 &&
	    __atomic_sub_fetch(&ti->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; ti->levels != NULL && i < ti->level_count; i++)
		cvm_coll_advisories_cleanup(&ti->levels[i].adv);
	free(ti->levels);
	for (size_t m = 0; ti->modules != NULL && m < ti->module_count; m++) {
		struct cvm_tdx_module_identity *mod = &ti->modules[m];

		for (size_t i = 0; mod->levels != NULL && i < mod->level_count; i++)
			cvm_coll_advisories_cleanup(&mod->levels[i].adv);
		free(mod->levels);
	}
	free(ti->modules);
	free(ti);
}

/* level_cmp is the order of Intel's QVL, which keeps TCB levels in a
 * std::set with std::greater: SGX component SVNs (lexicographic), then the
 * PCE SVN, then the TDX component SVNs. */
static int level_cmp(const struct cvm_tcb_level *a, const struct cvm_tcb_level *b)
{
	int c = memcmp(a->sgx_svn, b->sgx_svn, sizeof(a->sgx_svn));

	if (c != 0)
		return c;
	if (a->pce_svn != b->pce_svn)
		return a->pce_svn > b->pce_svn ? 1 : -1;
	return memcmp(a->tdx_svn, b->tdx_svn, sizeof(a->tdx_svn));
}

/* sort_levels sorts highest first, keeping file order among equals. An
 * insertion sort: at most CVM_TCB_LEVELS_MAX levels, usually a dozen. */
static void sort_levels(struct cvm_tcb_level *lv, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct cvm_tcb_level x = lv[i];
		size_t j = i;

		while (j > 0 && level_cmp(&x, &lv[j - 1]) > 0) {
			lv[j] = lv[j - 1];
			j--;
		}
		lv[j] = x;
	}
}

/* components reads an array of exactly 16 {"svn": n} objects. */
static int components(const json_t *tcb, const char *key, uint8_t svn[16])
{
	const json_t *arr = json_object_get(tcb, key);
	int r;

	if (!json_is_array(arr) || json_array_size(arr) != 16)
		return CVM_E_FORMAT;
	for (size_t i = 0; i < 16; i++) {
		const json_t *c = json_array_get(arr, i);

		if (!json_is_object(c))
			return CVM_E_FORMAT;
		r = cvm_coll_u8(c, "svn", &svn[i]);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

static int parse_level(const json_t *lv, const struct cvm_tcb_info *ti, struct cvm_tcb_level *out)
{
	const json_t *tcb;
	int r;

	if (!json_is_object(lv))
		return CVM_E_FORMAT;
	tcb = json_object_get(lv, "tcb");
	if (!json_is_object(tcb))
		return CVM_E_FORMAT;
	if (ti->version == 2) {
		for (unsigned i = 0; i < 16; i++) {
			char key[24];

			(void)snprintf(key, sizeof(key), "sgxtcbcomp%02usvn", i + 1);
			r = cvm_coll_u8(tcb, key, &out->sgx_svn[i]);
			if (r != CVM_OK)
				return r;
		}
	} else {
		r = components(tcb, "sgxtcbcomponents", out->sgx_svn);
		if (r != CVM_OK)
			return r;
		if (ti->tee == CVM_TEE_TDX) {
			r = components(tcb, "tdxtcbcomponents", out->tdx_svn);
			if (r != CVM_OK)
				return r;
		}
	}
	r = cvm_coll_u16(tcb, "pcesvn", &out->pce_svn);
	if (r != CVM_OK)
		return r;
	return cvm_coll_level_common(lv, &out->tcb_date, &out->status, &out->adv);
}

static int parse_module(const json_t *m, struct cvm_tdx_module_identity *out)
{
	const json_t *levels;
	const char *id;
	size_t id_len, n;
	int r;

	if (!json_is_object(m))
		return CVM_E_FORMAT;
	r = cvm_coll_string(m, "id", &id, &id_len);
	if (r != CVM_OK)
		return r;
	if (id_len == 0)
		return CVM_E_FORMAT;
	if (id_len >= sizeof(out->id))
		return CVM_E_TOO_LARGE;
	for (size_t i = 0; i < id_len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c < 0x21 || c > 0x7e)
			return CVM_E_FORMAT;
	}
	memcpy(out->id, id, id_len);
	out->id[id_len] = '\0';
	r = cvm_coll_hex(m, "mrsigner", out->mrsigner, sizeof(out->mrsigner));
	if (r != CVM_OK)
		return r;
	r = cvm_coll_hex(m, "attributes", out->attributes, sizeof(out->attributes));
	if (r != CVM_OK)
		return r;
	r = cvm_coll_hex(m, "attributesMask", out->attributes_mask, sizeof(out->attributes_mask));
	if (r != CVM_OK)
		return r;
	r = cvm_coll_array(m, "tcbLevels", CVM_TCB_LEVELS_MAX, false, &levels, &n);
	if (r != CVM_OK)
		return r;
	out->levels = calloc(n, sizeof(*out->levels));
	if (out->levels == NULL)
		return CVM_E_NOMEM;
	out->level_count = n;
	/* Kept in file order: Intel takes the first level whose isvsvn is not
	 * above the module's. */
	for (size_t i = 0; i < n; i++) {
		struct cvm_module_level *ml = &out->levels[i];
		uint64_t svn = 0;

		r = cvm_coll_isvsvn_level(json_array_get(levels, i), UINT8_MAX, &svn, &ml->tcb_date,
		                          &ml->status, &ml->adv);
		if (r != CVM_OK)
			return r;
		ml->isv_svn = (uint8_t)svn;
	}
	return CVM_OK;
}

static int parse_tdx(const json_t *o, struct cvm_tcb_info *ti)
{
	const json_t *mod = json_object_get(o, "tdxModule");
	const json_t *ids;
	size_t n;
	int r;

	if (mod != NULL) {
		if (!json_is_object(mod))
			return CVM_E_FORMAT;
		r = cvm_coll_hex(mod, "mrsigner", ti->tdx_module_mrsigner, sizeof(ti->tdx_module_mrsigner));
		if (r != CVM_OK)
			return r;
		r = cvm_coll_hex(mod, "attributes", ti->tdx_module_attributes,
		                 sizeof(ti->tdx_module_attributes));
		if (r != CVM_OK)
			return r;
		r = cvm_coll_hex(mod, "attributesMask", ti->tdx_module_attributes_mask,
		                 sizeof(ti->tdx_module_attributes_mask));
		if (r != CVM_OK)
			return r;
		ti->has_tdx_module = true;
	}
	if (json_object_get(o, "tdxModuleIdentities") == NULL)
		return CVM_OK;
	r = cvm_coll_array(o, "tdxModuleIdentities", CVM_TDX_MODULES_MAX, true, &ids, &n);
	if (r != CVM_OK || n == 0)
		return r;
	ti->modules = calloc(n, sizeof(*ti->modules));
	if (ti->modules == NULL)
		return CVM_E_NOMEM;
	ti->module_count = n;
	for (size_t i = 0; i < n; i++) {
		r = parse_module(json_array_get(ids, i), &ti->modules[i]);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

/* parse_id sets the TEE from "id": v2 has none (or "SGX"), v3 needs one. */
static int parse_id(const json_t *o, struct cvm_tcb_info *ti)
{
	const json_t *v = json_object_get(o, "id");
	const char *s;
	size_t len;

	if (v == NULL && ti->version == 2) {
		ti->tee = CVM_TEE_SGX;
		return CVM_OK;
	}
	if (!json_is_string(v))
		return CVM_E_FORMAT;
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 3 && memcmp(s, "SGX", 3) == 0) {
		ti->tee = CVM_TEE_SGX;
		return CVM_OK;
	}
	if (len == 3 && memcmp(s, "TDX", 3) == 0 && ti->version == 3) {
		ti->tee = CVM_TEE_TDX;
		return CVM_OK;
	}
	return CVM_E_UNSUPPORTED;
}

int cvm_tcb_info_decode(const json_t *o, struct cvm_tcb_info *ti)
{
	const json_t *levels;
	uint64_t version;
	size_t n;
	int r;

	r = cvm_coll_uint(o, "version", UINT32_MAX, &version);
	if (r != CVM_OK)
		return r;
	if (version != 2 && version != 3)
		return CVM_E_UNSUPPORTED;
	ti->version = (unsigned)version;
	r = parse_id(o, ti);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_date(o, "issueDate", &ti->issue_date);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_date(o, "nextUpdate", &ti->next_update);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_hex(o, "fmspc", ti->fmspc, sizeof(ti->fmspc));
	if (r != CVM_OK)
		return r;
	r = cvm_coll_hex(o, "pceId", ti->pce_id, sizeof(ti->pce_id));
	if (r != CVM_OK)
		return r;
	r = cvm_coll_u32(o, "tcbType", &ti->tcb_type);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_u32(o, "tcbEvaluationDataNumber", &ti->tcb_eval_num);
	if (r != CVM_OK)
		return r;
	if (ti->tee == CVM_TEE_TDX) {
		r = parse_tdx(o, ti);
		if (r != CVM_OK)
			return r;
	}
	r = cvm_coll_array(o, "tcbLevels", CVM_TCB_LEVELS_MAX, false, &levels, &n);
	if (r != CVM_OK)
		return r;
	ti->levels = calloc(n, sizeof(*ti->levels));
	if (ti->levels == NULL)
		return CVM_E_NOMEM;
	ti->level_count = n;
	for (size_t i = 0; i < n; i++) {
		r = parse_level(json_array_get(levels, i), ti, &ti->levels[i]);
		if (r != CVM_OK)
			return r;
	}
	sort_levels(ti->levels, n);
	return CVM_OK;
}

int cvm_tcb_info_parse(const uint8_t *body, size_t len, struct cvm_tcb_info **out, struct cvm_rd *signed_part,
                       uint8_t signature[64])
{
	void *obj = NULL;
	int r;

	if (out == NULL)
		return CVM_E_INVAL;
	r = cvm_coll_parse(CVM_COLL_TCB_INFO, body, len, &obj, signed_part, signature);
	*out = obj;
	return r;
}
