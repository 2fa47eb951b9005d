/* Intel DCAP collateral JSON: TCB info (v2, v3 SGX and TDX), QE identity,
 * the signed span, TCB statuses and ISO 8601 dates. Real bodies come from
 * tests/vectors; negative cases are real bodies with one edit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include <cvmkit/dcap.h>
#include <cvmkit/file.h>

#include "vectors.h"

#define V2_VECTOR "sgx/trustee-occlum-sgx-v3-tcbinfov2"
#define TDX_VECTOR "tdx/dcapqvl-tdx-v4-uptodate"
#define SGX_VECTOR "sgx/dcapqvl-sgx-v3-confswhardening"

struct buf {
	uint8_t *p;
	size_t len;
};

/* REQUIRE_VECTORS fails the test when tests/vectors lacks the main vector. */
#define REQUIRE_VECTORS()                                                                     \
	do {                                                                                  \
		char required_[VECTOR_PATH_MAX];                                              \
		(void)vector_path(required_, sizeof(required_), TDX_VECTOR "/tcb_info.json"); \
	} while (0)

/* load reads <vec>/<file> of the vectors (vector_path: a name relative to
 * tests/vectors, or a folder's absolute path); a missing file is a test
 * failure. */
static struct buf load(const char *vec, const char *file)
{
	char rel[VECTOR_PATH_MAX], path[VECTOR_PATH_MAX];
	struct buf b = {NULL, 0};

	(void)snprintf(rel, sizeof(rel), "%s/%s", vec, file);
	if (cvm_file_read(vector_path(path, sizeof(path), rel), (size_t)4 * (size_t)CVM_DCAP_JSON_MAX, &b.p,
	                  &b.len) != CVM_OK)
		fail_msg("cannot read %s", path);
	return b;
}

/* vector_list fills `names` with every tdx/ and sgx/ vector folder (each
 * must hold a tcb_info.json): "tdx/<x>" for those of tests/vectors, the
 * folder's path for those of the extra folder; returns the count. */
#define VECTORS_MAX 64
#define NAME_LEN VECTOR_PATH_MAX
static size_t vector_list(char names[VECTORS_MAX][NAME_LEN])
{
	static const char *const kinds[] = {"tdx", "sgx"};
	size_t n = 0;

	for (size_t k = 0; k < 2; k++) {
		struct vector_folder *f = NULL;
		size_t count = vector_folders(kinds[k], "tcb_info.json", &f);

		for (size_t i = 0; i < count; i++) {
			if (n == VECTORS_MAX)
				fail_msg("more than %d tdx/ and sgx/ vectors: raise VECTORS_MAX",
				         VECTORS_MAX);
			(void)snprintf(names[n], NAME_LEN, "%s", f[i].is_extra ? f[i].dir : f[i].name);
			n++;
		}
		free(f);
	}
	assert_true(n >= 2);
	return n;
}

/* expected_time is the manifest's ISO date through libc, as a cross-check
 * of cvm_iso8601_parse (only for the plain "...Z" form). */
static int64_t expected_time(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	assert_non_null(end);
	assert_int_equal(*end, '\0');
	return (int64_t)timegm(&tm);
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t out_len)
{
	assert_int_equal(strlen(hex), 2 * out_len);
	for (size_t i = 0; i < out_len; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static json_t *manifest_summary(const char *vec, const char *which)
{
	struct buf m = load(vec, "manifest.json");
	json_error_t err;
	json_t *root, *s;

	root = json_loadb((const char *)m.p, m.len, 0, &err);
	free(m.p);
	assert_non_null(root);
	s = json_object_get(json_object_get(root, "collateral_summary"), which);
	assert_true(json_is_object(s));
	json_incref(s);
	json_decref(root);
	return s;
}

/* signed_span_matches checks that `span` lies in `b`, starts with '{' and is
 * the text between `"<key>":` and `,"signature"`. */
static void signed_span_matches(const struct buf *b, const struct cvm_rd *span, const char *key)
{
	char prefix[64];
	const uint8_t *start, *end;

	(void)snprintf(prefix, sizeof(prefix), "\"%s\":", key);
	start = memmem(b->p, b->len, prefix, strlen(prefix));
	assert_non_null(start);
	start += strlen(prefix);
	end = memmem(start, b->len - (size_t)(start - b->p), ",\"signature\"", 12);
	assert_non_null(end);
	assert_ptr_equal(span->p, start);
	assert_int_equal(span->len, (size_t)(end - start));
	assert_int_equal(span->p[0], '{');
	assert_true(span->p >= b->p && span->len <= b->len - (size_t)(span->p - b->p));
}

static bool level_greater_or_equal(const struct cvm_tcb_level *a, const struct cvm_tcb_level *b)
{
	int c = memcmp(a->sgx_svn, b->sgx_svn, 16);

	if (c != 0)
		return c > 0;
	if (a->pce_svn != b->pce_svn)
		return a->pce_svn > b->pce_svn;
	return memcmp(a->tdx_svn, b->tdx_svn, 16) >= 0;
}

static void assert_levels_sorted(const struct cvm_tcb_info *ti)
{
	for (size_t i = 1; i < ti->level_count; i++)
		assert_true(level_greater_or_equal(&ti->levels[i - 1], &ti->levels[i]));
}

static size_t json_levels_in_file(const struct buf *b, const char *key)
{
	json_error_t err;
	json_t *root;
	size_t n;

	root = json_loadb((const char *)b->p, b->len, 0, &err);
	assert_non_null(root);
	n = json_array_size(json_object_get(json_object_get(root, key), "tcbLevels"));
	json_decref(root);
	return n;
}

static void tcb_info_vectors_parse_with_manifest_fields(void **state)
{
	char names[VECTORS_MAX][NAME_LEN];
	size_t n;

	(void)state;
	REQUIRE_VECTORS();
	n = vector_list(names);
	for (size_t i = 0; i < n; i++) {
		struct buf b = load(names[i], "tcb_info.json");
		json_t *s = manifest_summary(names[i], "tcb_info");
		struct cvm_tcb_info *ti = NULL;
		struct cvm_rd span;
		uint8_t sig[64], zero[64] = {0}, fmspc[6];
		const json_t *id = json_object_get(s, "id");

		print_message("%s\n", names[i]);
		assert_int_equal(cvm_tcb_info_parse(b.p, b.len, &ti, &span, sig), CVM_OK);
		assert_non_null(ti);
		assert_int_equal(ti->version, json_integer_value(json_object_get(s, "version")));
		if (json_is_null(id) || id == NULL)
			assert_int_equal(ti->tee, CVM_TEE_SGX);
		else
			assert_int_equal(ti->tee, strcmp(json_string_value(id), "TDX") == 0 ? CVM_TEE_TDX
			                                                                    : CVM_TEE_SGX);
		hex_to_bytes(json_string_value(json_object_get(s, "fmspc")), fmspc, sizeof(fmspc));
		assert_memory_equal(ti->fmspc, fmspc, sizeof(fmspc));
		assert_int_equal(ti->tcb_eval_num,
		                 json_integer_value(json_object_get(s, "tcbEvaluationDataNumber")));
		assert_int_equal(ti->issue_date,
		                 expected_time(json_string_value(json_object_get(s, "issueDate"))));
		assert_int_equal(ti->next_update,
		                 expected_time(json_string_value(json_object_get(s, "nextUpdate"))));
		assert_memory_not_equal(sig, zero, sizeof(sig));
		assert_int_equal(ti->level_count, json_levels_in_file(&b, "tcbInfo"));
		assert_true(ti->level_count >= 1);
		assert_levels_sorted(ti);
		signed_span_matches(&b, &span, "tcbInfo");
		if (ti->tee == CVM_TEE_TDX)
			assert_true(ti->has_tdx_module);
		cvm_tcb_info_free(ti);
		json_decref(s);
		free(b.p);
	}
}

static void qe_identity_vectors_parse_with_manifest_fields(void **state)
{
	char names[VECTORS_MAX][NAME_LEN];
	size_t n;

	(void)state;
	REQUIRE_VECTORS();
	n = vector_list(names);
	for (size_t i = 0; i < n; i++) {
		struct buf b = load(names[i], "qe_identity.json");
		json_t *s = manifest_summary(names[i], "qe_identity");
		struct cvm_qe_identity *qe = NULL;
		struct cvm_rd span;
		uint8_t sig[64];

		print_message("%s\n", names[i]);
		assert_int_equal(cvm_qe_identity_parse(b.p, b.len, &qe, &span, sig), CVM_OK);
		assert_non_null(qe);
		assert_int_equal(qe->version, json_integer_value(json_object_get(s, "version")));
		assert_string_equal(qe->id, json_string_value(json_object_get(s, "id")));
		assert_int_equal(qe->tcb_eval_num,
		                 json_integer_value(json_object_get(s, "tcbEvaluationDataNumber")));
		assert_int_equal(qe->issue_date,
		                 expected_time(json_string_value(json_object_get(s, "issueDate"))));
		assert_int_equal(qe->next_update,
		                 expected_time(json_string_value(json_object_get(s, "nextUpdate"))));
		assert_int_equal(qe->level_count, json_levels_in_file(&b, "enclaveIdentity"));
		/* Intel's QE identities all say miscselect 0, mask FFFFFFFF */
		assert_int_equal(qe->miscselect, 0);
		assert_int_equal(qe->miscselect_mask, 0xffffffffu);
		signed_span_matches(&b, &span, "enclaveIdentity");
		cvm_qe_identity_free(qe);
		json_decref(s);
		free(b.p);
	}
}

static void qe_identity_levels_stay_in_file_order(void **state)
{
	struct buf b;
	struct cvm_qe_identity *qe = NULL;
	struct cvm_rd span;
	uint8_t sig[64];
	static const uint16_t want[] = {8, 6, 5, 4, 2, 1};

	(void)state;
	REQUIRE_VECTORS();
	b = load(V2_VECTOR, "qe_identity.json");
	assert_int_equal(cvm_qe_identity_parse(b.p, b.len, &qe, &span, sig), CVM_OK);
	assert_int_equal(qe->level_count, 6);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(qe->levels[i].isv_svn, want[i]);
	assert_int_equal(qe->levels[0].status, CVM_TCB_UP_TO_DATE);
	assert_int_equal(qe->levels[0].adv.count, 0);
	assert_int_equal(qe->levels[5].status, CVM_TCB_OUT_OF_DATE);
	assert_int_equal(qe->levels[5].adv.count, 6);
	assert_string_equal(qe->levels[5].adv.ids[0], "INTEL-SA-00202");
	assert_string_equal(qe->levels[5].adv.ids[5], "INTEL-SA-00615");
	assert_int_equal(qe->isv_prod_id, 1);
	assert_int_equal(qe->attributes[0], 0x11);
	assert_int_equal(qe->attributes_mask[0], 0xfb);
	assert_int_equal(qe->mrsigner[0], 0x8c);
	assert_int_equal(qe->mrsigner[31], 0xff);
	assert_int_equal(qe->levels[0].tcb_date, expected_time("2024-03-13T00:00:00Z"));
	cvm_qe_identity_free(qe);
	free(b.p);
}

/* reversed_levels returns the body with its tcbLevels array reversed. */
static struct buf reversed_levels(const struct buf *b)
{
	json_error_t err;
	json_t *root, *levels, *rev;
	struct buf out;
	char *s;

	root = json_loadb((const char *)b->p, b->len, 0, &err);
	assert_non_null(root);
	levels = json_object_get(json_object_get(root, "tcbInfo"), "tcbLevels");
	rev = json_array();
	for (size_t i = json_array_size(levels); i > 0; i--)
		assert_int_equal(json_array_append(rev, json_array_get(levels, i - 1)), 0);
	assert_int_equal(json_object_set_new(json_object_get(root, "tcbInfo"), "tcbLevels", rev), 0);
	s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_non_null(s);
	json_decref(root);
	out.p = (uint8_t *)s;
	out.len = strlen(s);
	return out;
}

static void tcb_info_v2_vector_parses_with_levels_sorted(void **state)
{
	struct buf b, rb;
	struct cvm_tcb_info *ti = NULL, *rti = NULL;
	struct cvm_rd span;
	uint8_t sig[64];
	static const uint8_t first[16] = {14, 14, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};

	(void)state;
	REQUIRE_VECTORS();
	b = load(V2_VECTOR, "tcb_info.json");
	assert_int_equal(cvm_tcb_info_parse(b.p, b.len, &ti, &span, sig), CVM_OK);
	assert_int_equal(ti->version, 2);
	assert_int_equal(ti->tee, CVM_TEE_SGX);
	assert_int_equal(ti->level_count, 11);
	assert_false(ti->has_tdx_module);
	assert_int_equal(ti->module_count, 0);
	assert_levels_sorted(ti);
	assert_memory_equal(ti->levels[0].sgx_svn, first, 16);
	assert_int_equal(ti->levels[0].pce_svn, 13);
	assert_int_equal(ti->levels[0].status, CVM_TCB_SW_HARDENING_NEEDED);
	assert_int_equal(ti->levels[1].status, CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
	assert_int_equal(ti->levels[10].pce_svn, 5);

	/* The same levels in reverse file order come out in the same order. */
	rb = reversed_levels(&b);
	assert_int_equal(cvm_tcb_info_parse(rb.p, rb.len, &rti, &span, sig), CVM_OK);
	assert_int_equal(rti->level_count, ti->level_count);
	for (size_t i = 0; i < ti->level_count; i++) {
		assert_memory_equal(rti->levels[i].sgx_svn, ti->levels[i].sgx_svn, 16);
		assert_int_equal(rti->levels[i].pce_svn, ti->levels[i].pce_svn);
		assert_int_equal(rti->levels[i].status, ti->levels[i].status);
	}
	cvm_tcb_info_free(rti);
	cvm_tcb_info_free(ti);
	free(rb.p);
	free(b.p);
}

static void tcb_info_tdx_levels_sort_by_tdx_components_last(void **state)
{
	struct buf b, rb;
	struct cvm_tcb_info *ti = NULL;
	struct cvm_rd span;
	uint8_t sig[64];

	(void)state;
	REQUIRE_VECTORS();
	b = load("tdx/zkdcap-tdx-v4-outofdate", "tcb_info.json");
	rb = reversed_levels(&b);
	assert_int_equal(cvm_tcb_info_parse(rb.p, rb.len, &ti, &span, sig), CVM_OK);
	assert_int_equal(ti->tee, CVM_TEE_TDX);
	assert_int_equal(ti->level_count, 4);
	assert_levels_sorted(ti);
	assert_int_equal(ti->levels[0].status, CVM_TCB_UP_TO_DATE);
	assert_int_equal(ti->levels[0].tdx_svn[0], 5);
	assert_int_equal(ti->levels[0].tdx_svn[2], 7);
	assert_int_equal(ti->levels[2].pce_svn, 11);
	assert_int_equal(ti->levels[3].pce_svn, 5);
	assert_int_equal(ti->module_count, 2);
	cvm_tcb_info_free(ti);
	free(rb.p);
	free(b.p);
}

static void tcb_info_tdx_modules_keep_file_order(void **state)
{
	struct buf b;
	struct cvm_tcb_info *ti = NULL;
	struct cvm_rd span;
	uint8_t sig[64];

	(void)state;
	REQUIRE_VECTORS();
	b = load(TDX_VECTOR, "tcb_info.json");
	assert_int_equal(cvm_tcb_info_parse(b.p, b.len, &ti, &span, sig), CVM_OK);
	assert_true(ti->has_tdx_module);
	assert_int_equal(ti->tdx_module_attributes_mask[0], 0xff);
	assert_int_equal(ti->module_count, 2);
	assert_string_equal(ti->modules[0].id, "TDX_03");
	assert_string_equal(ti->modules[1].id, "TDX_01");
	assert_int_equal(ti->modules[1].level_count, 2);
	assert_int_equal(ti->modules[1].levels[0].isv_svn, 4);
	assert_int_equal(ti->modules[1].levels[1].isv_svn, 2);
	assert_int_equal(ti->modules[1].levels[1].status, CVM_TCB_OUT_OF_DATE);
	assert_int_equal(ti->modules[1].attributes_mask[7], 0xff);
	assert_int_equal(ti->levels[1].adv.count, 14);
	assert_string_equal(ti->levels[1].adv.ids[13], "INTEL-SA-00837");
	assert_int_equal(ti->pce_id[0], 0);
	assert_int_equal(ti->tcb_type, 0);
	cvm_tcb_info_free(ti);
	free(b.p);
}

static void collateral_parsers_reject_every_truncation(void **state)
{
	char names[VECTORS_MAX][NAME_LEN];
	size_t n;

	(void)state;
	REQUIRE_VECTORS();
	n = vector_list(names);
	for (size_t i = 0; i < n; i++) {
		struct buf t = load(names[i], "tcb_info.json");
		struct buf q = load(names[i], "qe_identity.json");

		for (size_t k = 0; k < t.len; k++) {
			struct cvm_tcb_info *ti = (struct cvm_tcb_info *)1;
			struct cvm_rd span;
			uint8_t sig[64];

			assert_int_not_equal(cvm_tcb_info_parse(t.p, k, &ti, &span, sig), CVM_OK);
			assert_null(ti);
			assert_null(span.p);
		}
		for (size_t k = 0; k < q.len; k++) {
			struct cvm_qe_identity *qe = (struct cvm_qe_identity *)1;
			struct cvm_rd span;
			uint8_t sig[64];

			assert_int_not_equal(cvm_qe_identity_parse(q.p, k, &qe, &span, sig), CVM_OK);
			assert_null(qe);
		}
		free(t.p);
		free(q.p);
	}
}

static struct buf with_extra(const struct buf *b, const char *extra)
{
	struct buf out;

	out.len = b->len + strlen(extra);
	out.p = malloc(out.len);
	assert_non_null(out.p);
	memcpy(out.p, b->p, b->len);
	memcpy(out.p + b->len, extra, strlen(extra));
	return out;
}

static void collateral_parsers_reject_trailing_bytes(void **state)
{
	struct buf b, x;
	struct cvm_tcb_info *ti = NULL;
	struct cvm_qe_identity *qe = NULL;
	struct cvm_rd span;
	uint8_t sig[64];

	(void)state;
	REQUIRE_VECTORS();
	b = load(TDX_VECTOR, "tcb_info.json");
	x = with_extra(&b, "x");
	assert_int_equal(cvm_tcb_info_parse(x.p, x.len, &ti, &span, sig), CVM_E_FORMAT);
	free(x.p);
	x = with_extra(&b, "{}");
	assert_int_equal(cvm_tcb_info_parse(x.p, x.len, &ti, &span, sig), CVM_E_FORMAT);
	free(x.p);
	/* trailing whitespace is still one JSON document */
	x = with_extra(&b, "\n");
	assert_int_equal(cvm_tcb_info_parse(x.p, x.len, &ti, &span, sig), CVM_OK);
	cvm_tcb_info_free(ti);
	free(x.p);
	free(b.p);

	b = load(TDX_VECTOR, "qe_identity.json");
	x = with_extra(&b, "]");
	assert_int_equal(cvm_qe_identity_parse(x.p, x.len, &qe, &span, sig), CVM_E_FORMAT);
	assert_null(qe);
	free(x.p);
	free(b.p);
}

/* replaced returns `b` with the first `from` replaced by `to`. */
static struct buf replaced(const struct buf *b, const char *from, const char *to)
{
	const uint8_t *at = memmem(b->p, b->len, from, strlen(from));
	size_t pre, flen = strlen(from), tlen = strlen(to);
	struct buf out;

	if (at == NULL) {
		fail_msg("'%s' not in the vector", from);
		out.p = NULL;
		out.len = 0;
		return out;
	}
	pre = (size_t)(at - b->p);
	out.len = b->len - flen + tlen;
	out.p = malloc(out.len + 1);
	assert_non_null(out.p);
	memcpy(out.p, b->p, pre);
	memcpy(out.p + pre, to, tlen);
	memcpy(out.p + pre + tlen, at + flen, b->len - pre - flen);
	return out;
}

static int tcb_edit(const char *vec, const char *from, const char *to)
{
	struct buf b = load(vec, "tcb_info.json");
	struct buf e = replaced(&b, from, to);
	struct cvm_tcb_info *ti = (struct cvm_tcb_info *)1;
	struct cvm_rd span;
	uint8_t sig[64];
	int r;

	r = cvm_tcb_info_parse(e.p, e.len, &ti, &span, sig);
	if (r != CVM_OK)
		assert_null(ti);
	cvm_tcb_info_free(ti);
	free(e.p);
	free(b.p);
	return r;
}

static int qe_edit(const char *vec, const char *from, const char *to)
{
	struct buf b = load(vec, "qe_identity.json");
	struct buf e = replaced(&b, from, to);
	struct cvm_qe_identity *qe = (struct cvm_qe_identity *)1;
	struct cvm_rd span;
	uint8_t sig[64];
	int r;

	r = cvm_qe_identity_parse(e.p, e.len, &qe, &span, sig);
	if (r != CVM_OK)
		assert_null(qe);
	cvm_qe_identity_free(qe);
	free(e.p);
	free(b.p);
	return r;
}

static void tcb_info_rejects_a_duplicated_key(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	/* at the top level, where the signed span is cut */
	assert_int_equal(tcb_edit(TDX_VECTOR, "{\"tcbInfo\":", "{\"tcbInfo\":{},\"tcbInfo\":"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, ",\"signature\":", ",\"signature\":\"00\",\"signature\":"),
	                 CVM_E_FORMAT);
	/* the same key spelt with an escape is still the same key */
	assert_int_equal(tcb_edit(TDX_VECTOR, "{\"tcbInfo\":", "{\"tcb\\u0049nfo\":{},\"tcbInfo\":"),
	                 CVM_E_FORMAT);
	/* inside the signed object */
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"fmspc\":", "\"fmspc\":\"000000000000\",\"fmspc\":"),
	                 CVM_E_FORMAT);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"isvprodid\":", "\"isvprodid\":2,\"isvprodid\":"),
	                 CVM_E_FORMAT);
}

static void tcb_info_rejects_a_missing_or_misplaced_span(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(tcb_edit(TDX_VECTOR, "{\"tcbInfo\":", "{\"tcbInfoX\":"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "{\"tcbInfo\":", "[\"tcbInfo\",\"tcbInfo\":"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "{\"tcbInfo\":{", "{\"tcbInfo\":[{"), CVM_E_FORMAT);
	assert_int_equal(qe_edit(TDX_VECTOR, "{\"enclaveIdentity\":", "{\"tcbInfo\":"), CVM_E_FORMAT);
}

static void tcb_info_rejects_a_bad_signature(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"signature\":\"", "\"signature\":\"00"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"signature\":\"0", "\"signature\":\"g"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"signature\":\"", "\"signaturX\":\""), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"signature\":\"", "\"signature\":7,\"x\":\""), CVM_E_FORMAT);
}

static void tcb_info_rejects_a_wrong_length_fmspc(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"fmspc\":\"B0C06F000000\"", "\"fmspc\":\"B0C06F0000\""),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"fmspc\":\"B0C06F000000\"", "\"fmspc\":\"B0C06F00000000\""),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"fmspc\":\"B0C06F000000\"", "\"fmspc\":\"B0C06F00000Z\""),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"fmspc\":\"B0C06F000000\"", "\"fmspc\":176"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"pceId\":\"0000\"", "\"pceId\":\"000\""), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"mrsigner\":\"00", "\"mrsigner\":\""), CVM_E_FORMAT);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"miscselect\":\"00000000\"", "\"miscselect\":\"000000\""),
	                 CVM_E_FORMAT);
}

static void tcb_info_rejects_a_17_element_component_array(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"sgxtcbcomponents\":[", "\"sgxtcbcomponents\":[{\"svn\":0},"),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"tdxtcbcomponents\":[", "\"tdxtcbcomponents\":[{\"svn\":0},"),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(SGX_VECTOR, "\"sgxtcbcomponents\":[", "\"sgxtcbcomponents\":[{\"svn\":0},"),
	                 CVM_E_FORMAT);
	/* 15 elements */
	assert_int_equal(tcb_edit(TDX_VECTOR,
	                          "\"sgxtcbcomponents\":[{\"svn\":2,\"category\":\"BIOS\",\"type\":\"Early "
	                          "Microcode Update\"},",
	                          "\"sgxtcbcomponents\":["),
	                 CVM_E_FORMAT);
	/* a TDX level without TDX components */
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"tdxtcbcomponents\":", "\"tdxtcbcomponentz\":"),
	                 CVM_E_FORMAT);
}

static void tcb_info_rejects_out_of_range_svns(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(
	    tcb_edit(TDX_VECTOR, "\"sgxtcbcomponents\":[{\"svn\":2", "\"sgxtcbcomponents\":[{\"svn\":256"),
	    CVM_E_FORMAT);
	assert_int_equal(
	    tcb_edit(TDX_VECTOR, "\"sgxtcbcomponents\":[{\"svn\":2", "\"sgxtcbcomponents\":[{\"svn\":-1"),
	    CVM_E_FORMAT);
	assert_int_equal(
	    tcb_edit(TDX_VECTOR, "\"sgxtcbcomponents\":[{\"svn\":2", "\"sgxtcbcomponents\":[{\"svn\":2.0"),
	    CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"pcesvn\":11", "\"pcesvn\":65536"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"pcesvn\":11", "\"pcesvn\":65535"), CVM_OK);
	assert_int_equal(tcb_edit(V2_VECTOR, "\"sgxtcbcomp05svn\":255", "\"sgxtcbcomp05svn\":256"),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(V2_VECTOR, "\"sgxtcbcomp16svn\":0", "\"sgxtcbcomp17svn\":0"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"isvsvn\":3", "\"isvsvn\":256"), CVM_E_FORMAT);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"isvsvn\":", "\"isvsvn\":65536,\"x\":"), CVM_E_FORMAT);
	assert_int_equal(
	    tcb_edit(TDX_VECTOR, "\"tcbEvaluationDataNumber\":17", "\"tcbEvaluationDataNumber\":4294967296"),
	    CVM_E_FORMAT);
}

static void tcb_info_rejects_an_unknown_status(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"tcbStatus\":\"OutOfDate\"", "\"tcbStatus\":\"OutOfDat\""),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"tcbStatus\":\"OutOfDate\"", "\"tcbStatus\":\"None\""),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"tcbStatus\":\"OutOfDate\"", "\"tcbStatus\":\"uptodate\""),
	                 CVM_E_FORMAT);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"tcbStatus\":\"UpToDate\"", "\"tcbStatus\":\"Fine\""),
	                 CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"tcbStatus\":\"OutOfDate\"", "\"tcbStatus\":\"Revoked\""),
	                 CVM_OK);
}

static void tcb_info_rejects_an_unknown_version(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"version\":3", "\"version\":4"), CVM_E_UNSUPPORTED);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"version\":3", "\"version\":1"), CVM_E_UNSUPPORTED);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"version\":3", "\"version\":\"3\""), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"id\":\"TDX\"", "\"id\":\"SEV\""), CVM_E_UNSUPPORTED);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"id\":\"TDX\",", ""), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(V2_VECTOR, "\"version\":2", "\"version\":2,\"id\":\"TDX\""),
	                 CVM_E_UNSUPPORTED);
	assert_int_equal(tcb_edit(V2_VECTOR, "\"version\":2", "\"version\":2,\"id\":\"SGX\""), CVM_OK);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"version\":2", "\"version\":3"), CVM_E_UNSUPPORTED);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"id\":\"TD_QE\"", "\"id\":\"PCE\""), CVM_E_UNSUPPORTED);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"id\":\"TD_QE\"", "\"id\":\"QVE\""), CVM_OK);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"id\":\"TD_QE\"", "\"id\":1"), CVM_E_FORMAT);
}

static void tcb_info_rejects_missing_required_fields(void **state)
{
	static const char *const fields[] = {
	    "\"issueDate\":",  "\"nextUpdate\":", "\"fmspc\":",
	    "\"pceId\":",      "\"tcbType\":",    "\"tcbEvaluationDataNumber\":",
	    "\"tcbLevels\":[", "\"tcbDate\":",    "\"tcbStatus\":",
	    "\"pcesvn\":",     "\"tcb\":{"};

	(void)state;
	REQUIRE_VECTORS();
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char renamed[64];

		/* "x<name>" keeps the JSON valid and the field missing */
		(void)snprintf(renamed, sizeof(renamed), "\"x%s", fields[i] + 1);
		if (tcb_edit(TDX_VECTOR, fields[i], renamed) != CVM_E_FORMAT)
			fail_msg("accepted a body without %s", fields[i]);
	}
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"tcbLevels\":[{", "\"tcbLevels\":[],\"x\":[{"), CVM_E_FORMAT);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"issueDate\":\"2025-06-19T10:16:03Z\"",
	                          "\"issueDate\":\"2025-06-19 10:16:03\""),
	                 CVM_E_FORMAT);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"mrsigner\":", "\"xmrsigner\":"), CVM_E_FORMAT);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"isvprodid\":", "\"xisvprodid\":"), CVM_E_FORMAT);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"tcbLevels\":", "\"xtcbLevels\":"), CVM_E_FORMAT);
}

static void tcb_info_ignores_unknown_keys(void **state)
{
	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"version\":3", "\"version\":3,\"future\":{\"a\":[1,\"]}\"]}"),
	                 CVM_OK);
	assert_int_equal(tcb_edit(TDX_VECTOR, "\"tcbStatus\":", "\"note\":null,\"tcbStatus\":"), CVM_OK);
	assert_int_equal(tcb_edit(TDX_VECTOR, ",\"signature\":", ",\"extra\":[{}],\"signature\":"), CVM_OK);
	assert_int_equal(qe_edit(TDX_VECTOR, "\"isvprodid\":", "\"newField\":true,\"isvprodid\":"), CVM_OK);
}

static void qe_identity_decodes_miscselect_little_endian(void **state)
{
	struct buf b, e;
	struct cvm_qe_identity *qe = NULL;
	struct cvm_rd span;
	uint8_t sig[64];

	(void)state;
	REQUIRE_VECTORS();
	b = load(TDX_VECTOR, "qe_identity.json");
	e = replaced(&b, "\"miscselect\":\"00000000\"", "\"miscselect\":\"01020304\"");
	assert_int_equal(cvm_qe_identity_parse(e.p, e.len, &qe, &span, sig), CVM_OK);
	assert_int_equal(qe->miscselect, 0x04030201u);
	assert_string_equal(qe->id, "TD_QE");
	cvm_qe_identity_free(qe);
	free(e.p);
	free(b.p);
}

/* body_with returns the TDX vector with its tcbInfo changed by `edit`. */
static struct buf body_with(void (*edit)(json_t *tcb_info, size_t n), size_t n)
{
	struct buf b = load(TDX_VECTOR, "tcb_info.json");
	json_error_t err;
	json_t *root;
	struct buf out;
	char *s;

	root = json_loadb((const char *)b.p, b.len, 0, &err);
	assert_non_null(root);
	edit(json_object_get(root, "tcbInfo"), n);
	s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_non_null(s);
	json_decref(root);
	free(b.p);
	out.p = (uint8_t *)s;
	out.len = strlen(s);
	return out;
}

/* add_levels pads tcbLevels with small levels (no component names) so that
 * CVM_TCB_LEVELS_MAX of them still fit in CVM_DCAP_JSON_MAX. */
static void add_levels(json_t *ti, size_t n)
{
	json_t *levels = json_object_get(ti, "tcbLevels");
	json_t *small, *sgx = json_array(), *tdx = json_array();

	for (int i = 0; i < 16; i++) {
		assert_int_equal(json_array_append_new(sgx, json_pack("{s:i}", "svn", i)), 0);
		assert_int_equal(json_array_append_new(tdx, json_pack("{s:i}", "svn", 0)), 0);
	}
	small =
	    json_pack("{s:{s:o,s:i,s:o},s:s,s:s}", "tcb", "sgxtcbcomponents", sgx, "pcesvn", 1,
	              "tdxtcbcomponents", tdx, "tcbDate", "2018-01-04T00:00:00Z", "tcbStatus", "OutOfDate");
	assert_non_null(small);
	while (json_array_size(levels) < n)
		assert_int_equal(json_array_append(levels, small), 0);
	json_decref(small);
}

static void set_advisories(json_t *ti, size_t n)
{
	json_t *level = json_array_get(json_object_get(ti, "tcbLevels"), 0);
	json_t *ids = json_array();

	for (size_t i = 0; i < n; i++) {
		char id[32];

		(void)snprintf(id, sizeof(id), "INTEL-SA-%05zu", i);
		assert_int_equal(json_array_append_new(ids, json_string(id)), 0);
	}
	assert_int_equal(json_object_set_new(level, "advisoryIDs", ids), 0);
}

static void set_long_advisory(json_t *ti, size_t n)
{
	json_t *level = json_array_get(json_object_get(ti, "tcbLevels"), 0);
	char id[256];

	assert_true(n < sizeof(id));
	memset(id, 'A', n);
	id[n] = '\0';
	assert_int_equal(json_object_set_new(level, "advisoryIDs", json_pack("[s]", id)), 0);
}

static void set_control_advisory(json_t *ti, size_t n)
{
	json_t *level = json_array_get(json_object_get(ti, "tcbLevels"), 0);

	(void)n;
	assert_int_equal(json_object_set_new(level, "advisoryIDs", json_pack("[s]", "INTEL\tSA")), 0);
}

static void add_modules(json_t *ti, size_t n)
{
	json_t *mods = json_object_get(ti, "tdxModuleIdentities");
	json_t *first = json_array_get(mods, 0);

	while (json_array_size(mods) < n)
		assert_int_equal(json_array_append_new(mods, json_deep_copy(first)), 0);
}

static int parse_generated(void (*edit)(json_t *, size_t), size_t n, struct cvm_tcb_info **keep)
{
	struct buf b = body_with(edit, n);
	struct cvm_tcb_info *ti = NULL;
	struct cvm_rd span;
	uint8_t sig[64];
	int r;

	r = cvm_tcb_info_parse(b.p, b.len, &ti, &span, sig);
	if (keep != NULL)
		*keep = ti;
	else
		cvm_tcb_info_free(ti);
	free(b.p);
	return r;
}

static void tcb_info_rejects_counts_above_their_max(void **state)
{
	struct cvm_tcb_info *ti = NULL;

	(void)state;
	REQUIRE_VECTORS();
	assert_int_equal(parse_generated(add_levels, CVM_TCB_LEVELS_MAX, &ti), CVM_OK);
	assert_int_equal(ti->level_count, CVM_TCB_LEVELS_MAX);
	cvm_tcb_info_free(ti);
	assert_int_equal(parse_generated(add_levels, CVM_TCB_LEVELS_MAX + 1, NULL), CVM_E_TOO_LARGE);

	assert_int_equal(parse_generated(set_advisories, CVM_ADVISORIES_MAX, &ti), CVM_OK);
	assert_int_equal(ti->levels[0].adv.count, CVM_ADVISORIES_MAX);
	assert_string_equal(ti->levels[0].adv.ids[CVM_ADVISORIES_MAX - 1], "INTEL-SA-00127");
	cvm_tcb_info_free(ti);
	assert_int_equal(parse_generated(set_advisories, CVM_ADVISORIES_MAX + 1, NULL), CVM_E_TOO_LARGE);
	assert_int_equal(parse_generated(set_advisories, 0, &ti), CVM_OK);
	assert_int_equal(ti->levels[0].adv.count, 0);
	assert_null(ti->levels[0].adv.ids);
	cvm_tcb_info_free(ti);

	assert_int_equal(parse_generated(set_long_advisory, CVM_ADVISORY_ID_MAX - 1, &ti), CVM_OK);
	assert_int_equal(strlen(ti->levels[0].adv.ids[0]), CVM_ADVISORY_ID_MAX - 1);
	cvm_tcb_info_free(ti);
	assert_int_equal(parse_generated(set_long_advisory, CVM_ADVISORY_ID_MAX, NULL), CVM_E_TOO_LARGE);
	assert_int_equal(parse_generated(set_long_advisory, 0, NULL), CVM_E_FORMAT);
	assert_int_equal(parse_generated(set_control_advisory, 0, NULL), CVM_E_FORMAT);

	assert_int_equal(parse_generated(add_modules, CVM_TDX_MODULES_MAX, &ti), CVM_OK);
	assert_int_equal(ti->module_count, CVM_TDX_MODULES_MAX);
	cvm_tcb_info_free(ti);
	assert_int_equal(parse_generated(add_modules, CVM_TDX_MODULES_MAX + 1, NULL), CVM_E_TOO_LARGE);
}

static void tcb_info_rejects_deep_nesting_and_oversized_bodies(void **state)
{
	char deep[512];
	size_t n = 0;
	struct cvm_tcb_info *ti = NULL;
	struct cvm_rd span;
	uint8_t sig[64];
	uint8_t *big;

	(void)state;
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"x\":");
	for (int i = 0; i < 70; i++)
		deep[n++] = '[';
	for (int i = 0; i < 70; i++)
		deep[n++] = ']';
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, ",\"tcbInfo\":{},\"signature\":\"\"}");
	assert_int_equal(cvm_tcb_info_parse((const uint8_t *)deep, n, &ti, &span, sig), CVM_E_TOO_LARGE);
	assert_null(ti);

	big = calloc(1, CVM_DCAP_JSON_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', CVM_DCAP_JSON_MAX + 1);
	assert_int_equal(cvm_tcb_info_parse(big, CVM_DCAP_JSON_MAX + 1, &ti, &span, sig), CVM_E_TOO_LARGE);
	free(big);

	assert_int_not_equal(cvm_tcb_info_parse(NULL, 0, &ti, &span, sig), CVM_OK);
	assert_int_not_equal(cvm_tcb_info_parse((const uint8_t *)"{}", 2, &ti, &span, sig), CVM_OK);
	assert_int_equal(cvm_tcb_info_parse((const uint8_t *)"{}", 2, NULL, &span, sig), CVM_E_INVAL);
	cvm_tcb_info_free(NULL);
	cvm_qe_identity_free(NULL);
}

/* Overwriting any single byte never crashes or leaks: the parser either
 * rejects the body or returns a result that frees cleanly. */
static void collateral_parsers_survive_every_single_byte_overwrite(void **state)
{
	static const uint8_t subst[] = {'x', '"', '}'};
	struct buf t, q;

	(void)state;
	REQUIRE_VECTORS();
	t = load("tdx/gotdxguest-tdx-v4-spr-nomatch", "tcb_info.json");
	q = load(TDX_VECTOR, "qe_identity.json");
	for (size_t s = 0; s < sizeof(subst); s++) {
		for (size_t i = 0; i < t.len; i++) {
			struct cvm_tcb_info *ti = NULL;
			struct cvm_rd span;
			uint8_t sig[64], saved = t.p[i];

			t.p[i] = subst[s];
			if (cvm_tcb_info_parse(t.p, t.len, &ti, &span, sig) == CVM_OK)
				assert_true(span.p > t.p && span.len < t.len);
			else
				assert_null(ti);
			cvm_tcb_info_free(ti);
			t.p[i] = saved;
		}
		for (size_t i = 0; i < q.len; i++) {
			struct cvm_qe_identity *qe = NULL;
			struct cvm_rd span;
			uint8_t sig[64], saved = q.p[i];

			q.p[i] = subst[s];
			if (cvm_qe_identity_parse(q.p, q.len, &qe, &span, sig) != CVM_OK)
				assert_null(qe);
			cvm_qe_identity_free(qe);
			q.p[i] = saved;
		}
	}
	free(t.p);
	free(q.p);
}

static bool iso(const char *s, int64_t *t)
{
	return cvm_iso8601_parse(s, strlen(s), t);
}

static void iso8601_parses_dates_and_rejects_bad_ones(void **state)
{
	static const char *const bad[] = {
	    "2023-02-29T00:00:00Z", /* not a leap year */
	    "1900-02-29T00:00:00Z", /* century, not a leap year */
	    "2025-13-01T00:00:00Z",
	    "2025-00-10T00:00:00Z",
	    "2025-04-31T00:00:00Z",
	    "2025-01-00T00:00:00Z",
	    "2025-01-01T24:00:00Z",
	    "2025-01-01T23:60:00Z",
	    "2025-01-01T23:59:60Z",
	    "2025-01-01t00:00:00Z",
	    "2025-01-01T00:00:00z",
	    "2025-01-01T00:00:00",
	    "2025-01-01 00:00:00Z",
	    "2025-1-01T00:00:00Z",
	    "2025-01-01T00:00:00.Z",
	    "2025-01-01T00:00:00.1234567890Z",
	    "2025-01-01T00:00:00+0100",
	    "2025-01-01T00:00:00+24:00",
	    "2025-01-01T00:00:00+01:60",
	    "2025-01-01T00:00:00Zx",
	    "2025-01-01T00:00:00.5",
	    "+025-01-01T00:00:00Z",
	    "",
	};
	int64_t t, u;

	(void)state;
	assert_true(iso("1970-01-01T00:00:00Z", &t));
	assert_int_equal(t, 0);
	assert_true(iso("2024-02-29T00:00:00Z", &t)); /* leap day */
	assert_int_equal(t, 1709164800);
	assert_true(iso("2000-02-29T12:00:00Z", &t)); /* 400-year leap day */
	assert_int_equal(t, 951825600);
	assert_true(iso("2000-03-01T00:00:00Z", &t));
	assert_int_equal(t, 951868800);
	assert_true(iso("1969-12-31T23:59:59Z", &t));
	assert_int_equal(t, -1);
	assert_true(iso("2038-01-19T03:14:08Z", &t));
	assert_int_equal(t, 2147483648);
	assert_true(iso("9999-12-31T23:59:59Z", &t));
	assert_int_equal(t, 253402300799);
	assert_true(iso("2025-06-19T10:16:03Z", &t));
	assert_int_equal(t, expected_time("2025-06-19T10:16:03Z"));
	/* fractions are truncated */
	assert_true(iso("2025-06-19T10:16:03.999Z", &u));
	assert_int_equal(u, t);
	assert_true(iso("2025-06-19T10:16:03.1Z", &u));
	assert_int_equal(u, t);
	assert_true(iso("2025-06-19T10:16:03.123456789Z", &u));
	assert_int_equal(u, t);
	/* offsets: local time is UTC plus the offset */
	assert_true(iso("2025-06-19T12:16:03+02:00", &u));
	assert_int_equal(u, t);
	assert_true(iso("2025-06-19T04:46:03-05:30", &u));
	assert_int_equal(u, t);
	assert_true(iso("2025-06-19T10:16:03+00:00", &u));
	assert_int_equal(u, t);
	assert_true(iso("2025-06-20T00:16:03.5+14:00", &u));
	assert_int_equal(u, t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (iso(bad[i], &t))
			fail_msg("accepted '%s'", bad[i]);
	}
	/* the length is what counts, not a NUL */
	assert_false(cvm_iso8601_parse("2025-06-19T10:16:03Z", 19, &t));
	assert_false(cvm_iso8601_parse("2025-06-19T10:16:03Z\0", 21, &t));
	assert_false(cvm_iso8601_parse(NULL, 0, &t));
}

static void tcb_status_names_round_trip(void **state)
{
	enum cvm_tcb_status s;

	(void)state;
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_NONE), "None");
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_UP_TO_DATE), "UpToDate");
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_SW_HARDENING_NEEDED), "SWHardeningNeeded");
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_CONFIGURATION_NEEDED), "ConfigurationNeeded");
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED),
	                    "ConfigurationAndSWHardeningNeeded");
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_OUT_OF_DATE), "OutOfDate");
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED),
	                    "OutOfDateConfigurationNeeded");
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_REVOKED), "Revoked");
	assert_string_equal(cvm_tcb_status_name(CVM_TCB_STATUS_COUNT), "None");
	for (int i = CVM_TCB_UP_TO_DATE; i < CVM_TCB_STATUS_COUNT; i++) {
		const char *name = cvm_tcb_status_name((enum cvm_tcb_status)i);

		assert_true(cvm_tcb_status_parse(name, strlen(name), &s));
		assert_int_equal(s, i);
		assert_false(cvm_tcb_status_parse(name, strlen(name) - 1, &s));
		assert_int_equal(s, CVM_TCB_NONE);
	}
	assert_false(cvm_tcb_status_parse("None", 4, &s));
	assert_false(cvm_tcb_status_parse("UpToDateX", 9, &s));
	assert_false(cvm_tcb_status_parse(NULL, 0, &s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tcb_info_vectors_parse_with_manifest_fields),
	    cmocka_unit_test(qe_identity_vectors_parse_with_manifest_fields),
	    cmocka_unit_test(qe_identity_levels_stay_in_file_order),
	    cmocka_unit_test(tcb_info_v2_vector_parses_with_levels_sorted),
	    cmocka_unit_test(tcb_info_tdx_levels_sort_by_tdx_components_last),
	    cmocka_unit_test(tcb_info_tdx_modules_keep_file_order),
	    cmocka_unit_test(collateral_parsers_reject_every_truncation),
	    cmocka_unit_test(collateral_parsers_reject_trailing_bytes),
	    cmocka_unit_test(tcb_info_rejects_a_duplicated_key),
	    cmocka_unit_test(tcb_info_rejects_a_missing_or_misplaced_span),
	    cmocka_unit_test(tcb_info_rejects_a_bad_signature),
	    cmocka_unit_test(tcb_info_rejects_a_wrong_length_fmspc),
	    cmocka_unit_test(tcb_info_rejects_a_17_element_component_array),
	    cmocka_unit_test(tcb_info_rejects_out_of_range_svns),
	    cmocka_unit_test(tcb_info_rejects_an_unknown_status),
	    cmocka_unit_test(tcb_info_rejects_an_unknown_version),
	    cmocka_unit_test(tcb_info_rejects_missing_required_fields),
	    cmocka_unit_test(tcb_info_ignores_unknown_keys),
	    cmocka_unit_test(qe_identity_decodes_miscselect_little_endian),
	    cmocka_unit_test(tcb_info_rejects_counts_above_their_max),
	    cmocka_unit_test(tcb_info_rejects_deep_nesting_and_oversized_bodies),
	    cmocka_unit_test(collateral_parsers_survive_every_single_byte_overwrite),
	    cmocka_unit_test(iso8601_parses_dates_and_rejects_bad_ones),
	    cmocka_unit_test(tcb_status_names_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
