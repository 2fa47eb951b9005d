/* The signed span of a PCS collateral body and the jansson field readers the
 * TCB info and QE identity parsers share.
 *
 * Intel signs the exact bytes of the "tcbInfo" (or "enclaveIdentity") value
 * as the PCS sent them, so the span is found by a small bounded scanner over
 * the raw body, never by re-serialising a decoded object. jansson then
 * decodes both the span and the whole body, and the two must agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/encoding.h>

#include "dcap/collateral_int.h"

static void skip_ws(struct cvm_rd *r)
{
	uint8_t c;

	while (cvm_rd_peek_u8(r, &c) && (c == ' ' || c == '\t' || c == '\n' || c == '\r'))
		(void)cvm_rd_skip(r, 1);
}

static bool take_char(struct cvm_rd *r, uint8_t want)
{
	uint8_t c;

	if (!cvm_rd_peek_u8(r, &c) || c != want)
		return false;
	return cvm_rd_skip(r, 1);
}

static bool is_hex_digit(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_simple_escape(uint8_t c)
{
	return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't';
}

/* scan_string reads a string token, `r` at its opening quote, and returns the
 * raw bytes between the quotes (escapes not decoded). */
static bool scan_string(struct cvm_rd *r, struct cvm_rd *content)
{
	struct cvm_rd start;
	uint8_t c;

	if (!take_char(r, '"'))
		return false;
	start = *r;
	for (;;) {
		if (!cvm_rd_u8(r, &c))
			return false;
		if (c == '"')
			break;
		if (c < 0x20)
			return false;
		if (c != '\\')
			continue;
		if (!cvm_rd_u8(r, &c))
			return false;
		if (c == 'u') {
			for (int i = 0; i < 4; i++) {
				if (!cvm_rd_u8(r, &c) || !is_hex_digit(c))
					return false;
			}
		} else if (!is_simple_escape(c)) {
			return false;
		}
	}
	/* what was consumed since `start`, less the closing quote */
	return cvm_rd_sub(&start, content, start.len - r->len - 1);
}

static bool is_scalar_char(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '+' ||
	       c == '-' || c == '.';
}

/* scan_value moves `r` past one JSON value. Inside containers it only
 * balances brackets and skips strings: the grammar between tokens is left to
 * jansson, which decodes the span afterwards. */
static int scan_value(struct cvm_rd *r)
{
	uint8_t stack[CVM_JSON_DEPTH_MAX];
	size_t depth = 0;
	struct cvm_rd str;
	uint8_t c;

	for (;;) {
		skip_ws(r);
		if (!cvm_rd_peek_u8(r, &c))
			return CVM_E_FORMAT;
		if (c == '"') {
			if (!scan_string(r, &str))
				return CVM_E_FORMAT;
		} else if (c == '{' || c == '[') {
			if (depth == CVM_JSON_DEPTH_MAX)
				return CVM_E_TOO_LARGE;
			stack[depth++] = c == '{' ? '}' : ']';
			(void)cvm_rd_skip(r, 1);
			continue;
		} else if (c == '}' || c == ']') {
			if (depth == 0 || stack[depth - 1] != c)
				return CVM_E_FORMAT;
			depth--;
			(void)cvm_rd_skip(r, 1);
		} else if (c == ',' || c == ':') {
			if (depth == 0)
				return CVM_E_FORMAT;
			(void)cvm_rd_skip(r, 1);
			continue;
		} else if (is_scalar_char(c)) {
			while (cvm_rd_peek_u8(r, &c) && is_scalar_char(c))
				(void)cvm_rd_skip(r, 1);
		} else {
			return CVM_E_FORMAT;
		}
		if (depth == 0)
			return CVM_OK;
	}
}

int cvm_json_top_value(const struct cvm_rd *body, const char *key, struct cvm_rd *out)
{
	struct cvm_rd r = *body;
	struct cvm_rd name, start, value;
	size_t key_len = strlen(key);
	bool found = false;
	int rc;

	cvm_rd_init(out, NULL, 0);
	cvm_rd_init(&value, NULL, 0);
	skip_ws(&r);
	if (!take_char(&r, '{'))
		return CVM_E_FORMAT;
	skip_ws(&r);
	if (!take_char(&r, '}')) {
		for (;;) {
			skip_ws(&r);
			if (!scan_string(&r, &name))
				return CVM_E_FORMAT;
			skip_ws(&r);
			if (!take_char(&r, ':'))
				return CVM_E_FORMAT;
			skip_ws(&r);
			start = r;
			rc = scan_value(&r);
			if (rc != CVM_OK)
				return rc;
			if (name.len == key_len && memcmp(name.p, key, key_len) == 0) {
				if (found)
					return CVM_E_FORMAT;
				found = true;
				if (!cvm_rd_sub(&start, &value, start.len - r.len))
					return CVM_E_INTERNAL;
			}
			skip_ws(&r);
			if (take_char(&r, ','))
				continue;
			if (take_char(&r, '}'))
				break;
			return CVM_E_FORMAT;
		}
	}
	skip_ws(&r);
	if (!cvm_rd_empty(&r) || !found)
		return CVM_E_FORMAT;
	*out = value;
	return CVM_OK;
}

static json_t *load_json(const struct cvm_rd *in, int *err)
{
	json_error_t jerr;
	json_t *j;

	j = json_loadb((const char *)in->p, in->len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		*err = json_error_code(&jerr) == json_error_out_of_memory ? CVM_E_NOMEM : CVM_E_FORMAT;
	return j;
}

int cvm_coll_load_signed(const uint8_t *body, size_t len, const char *key, json_t **obj, struct cvm_rd *span,
                         uint8_t signature[64])
{
	struct cvm_rd all, value;
	json_t *inner = NULL, *root = NULL;
	json_t *member;
	const char *hex;
	size_t hex_len;
	int r;

	*obj = NULL;
	cvm_rd_init(span, NULL, 0);
	if (len > (size_t)CVM_DCAP_JSON_MAX)
		return CVM_E_TOO_LARGE;
	cvm_rd_init(&all, body, len);
	r = cvm_json_top_value(&all, key, &value);
	if (r != CVM_OK)
		goto out;
	/* One parse of the whole body, duplicate keys rejected. The member
	 * jansson returns is the span's value: the scanner found exactly one
	 * literal top-level key, and any other spelling of it (an escape) would
	 * be a duplicate after unescaping. */
	root = load_json(&all, &r);
	if (root == NULL)
		goto out;
	r = CVM_E_FORMAT;
	if (!json_is_object(root))
		goto out;
	member = json_object_get(root, key);
	if (member == NULL || !json_is_object(member))
		goto out;
	inner = json_incref(member);
	r = cvm_coll_string(root, "signature", &hex, &hex_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_hex_decode_exact(hex, hex_len, signature, 64);
	if (r != CVM_OK) {
		r = CVM_E_FORMAT;
		goto out;
	}
	*obj = inner;
	inner = NULL; /* transferred */
	*span = value;
out:
	json_decref(inner);
	json_decref(root);
	return r;
}

int cvm_coll_uint(const json_t *o, const char *key, uint64_t max, uint64_t *out)
{
	const json_t *v = json_object_get(o, key);
	json_int_t i;

	*out = 0;
	if (!json_is_integer(v))
		return CVM_E_FORMAT;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max)
		return CVM_E_FORMAT;
	*out = (uint64_t)i;
	return CVM_OK;
}

int cvm_coll_u8(const json_t *o, const char *key, uint8_t *out)
{
	uint64_t v;
	int r;

	r = cvm_coll_uint(o, key, UINT8_MAX, &v);
	*out = (uint8_t)v;
	return r;
}

int cvm_coll_u16(const json_t *o, const char *key, uint16_t *out)
{
	uint64_t v;
	int r;

	r = cvm_coll_uint(o, key, UINT16_MAX, &v);
	*out = (uint16_t)v;
	return r;
}

int cvm_coll_u32(const json_t *o, const char *key, uint32_t *out)
{
	uint64_t v;
	int r;

	r = cvm_coll_uint(o, key, UINT32_MAX, &v);
	*out = (uint32_t)v;
	return r;
}

int cvm_coll_string(const json_t *o, const char *key, const char **s, size_t *len)
{
	const json_t *v = json_object_get(o, key);

	*s = NULL;
	*len = 0;
	if (!json_is_string(v))
		return CVM_E_FORMAT;
	*s = json_string_value(v);
	*len = json_string_length(v);
	return CVM_OK;
}

int cvm_coll_hex(const json_t *o, const char *key, uint8_t *out, size_t out_len)
{
	const char *s;
	size_t len;
	int r;

	memset(out, 0, out_len);
	r = cvm_coll_string(o, key, &s, &len);
	if (r != CVM_OK)
		return r;
	if (len != 2 * out_len)
		return CVM_E_FORMAT;
	r = cvm_hex_decode_exact(s, len, out, out_len);
	return r == CVM_OK ? CVM_OK : CVM_E_FORMAT;
}

int cvm_coll_date(const json_t *o, const char *key, int64_t *out)
{
	const char *s;
	size_t len;
	int r;

	*out = 0;
	r = cvm_coll_string(o, key, &s, &len);
	if (r != CVM_OK)
		return r;
	return cvm_iso8601_parse(s, len, out) ? CVM_OK : CVM_E_FORMAT;
}

int cvm_coll_status(const json_t *o, const char *key, enum cvm_tcb_status *out)
{
	const char *s;
	size_t len;
	int r;

	*out = CVM_TCB_NONE;
	r = cvm_coll_string(o, key, &s, &len);
	if (r != CVM_OK)
		return r;
	/* The relaunch statuses are verdicts, never a level's status. */
	if (!cvm_tcb_status_parse(s, len, out) || *out >= CVM_TCB_TD_RELAUNCH_ADVISED) {
		*out = CVM_TCB_NONE;
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

int cvm_coll_array(const json_t *o, const char *key, size_t max, bool allow_empty, const json_t **out,
                   size_t *count)
{
	const json_t *v = json_object_get(o, key);
	size_t n;

	*out = NULL;
	*count = 0;
	if (!json_is_array(v))
		return CVM_E_FORMAT;
	n = json_array_size(v);
	if (n > max)
		return CVM_E_TOO_LARGE;
	if (n == 0 && !allow_empty)
		return CVM_E_FORMAT;
	*out = v;
	*count = n;
	return CVM_OK;
}

void cvm_coll_advisories_cleanup(struct cvm_advisories *a)
{
	if (a == NULL)
		return;
	free(a->ids);
	a->ids = NULL;
	a->count = 0;
}

int cvm_coll_advisories(const json_t *level, struct cvm_advisories *out)
{
	char(*ids)[CVM_ADVISORY_ID_MAX] = NULL;
	const json_t *arr;
	size_t n;
	int r;

	out->count = 0;
	out->ids = NULL;
	if (json_object_get(level, "advisoryIDs") == NULL)
		return CVM_OK;
	r = cvm_coll_array(level, "advisoryIDs", CVM_ADVISORIES_MAX, true, &arr, &n);
	if (r != CVM_OK || n == 0)
		goto out;
	ids = calloc(n, sizeof(*ids));
	if (ids == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(arr, i);
		const char *s;
		size_t len;

		r = CVM_E_FORMAT;
		if (!json_is_string(v))
			goto out;
		s = json_string_value(v);
		len = json_string_length(v);
		if (len == 0)
			goto out;
		if (len >= CVM_ADVISORY_ID_MAX) {
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		for (size_t k = 0; k < len; k++) {
			unsigned char c = (unsigned char)s[k];

			if (c < 0x20 || c > 0x7e)
				goto out;
		}
		memcpy(ids[i], s, len);
		ids[i][len] = '\0';
	}
	out->ids = ids;
	out->count = n;
	ids = NULL; /* transferred */
	r = CVM_OK;
out:
	free(ids);
	return r;
}

int cvm_coll_level_common(const json_t *level, int64_t *tcb_date, enum cvm_tcb_status *status,
                          struct cvm_advisories *adv)
{
	int r;

	adv->count = 0;
	adv->ids = NULL;
	r = cvm_coll_date(level, "tcbDate", tcb_date);
	if (r != CVM_OK)
		return r;
	r = cvm_coll_status(level, "tcbStatus", status);
	if (r != CVM_OK)
		return r;
	return cvm_coll_advisories(level, adv);
}

int cvm_coll_isvsvn_level(const json_t *level, uint64_t max, uint64_t *isv_svn, int64_t *tcb_date,
                          enum cvm_tcb_status *status, struct cvm_advisories *adv)
{
	const json_t *tcb;
	int r;

	adv->count = 0;
	adv->ids = NULL;
	if (!json_is_object(level))
		return CVM_E_FORMAT;
	tcb = json_object_get(level, "tcb");
	if (!json_is_object(tcb))
		return CVM_E_FORMAT;
	r = cvm_coll_uint(tcb, "isvsvn", max, isv_svn);
	if (r != CVM_OK)
		return r;
	return cvm_coll_level_common(level, tcb_date, status, adv);
}
