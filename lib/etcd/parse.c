/* The parsers of etcd's gRPC-JSON gateway replies (3.4): proto3 JSON, where
 * int64 fields are decimal strings, bytes fields are base64 and a field at
 * its zero value is left out. Every field used is checked for its type;
 * nothing of the reply is trusted beyond what is checked here. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

#include "core/core_lib.h"
#include "etcd_int.h"

/* The longest decimal int64 with a sign. */
#define I64_DIGITS_MAX 20

/* copy_printable copies up to `out_len - 1` bytes of untrusted text with
 * every byte outside printable ASCII as '?': it ends up in logs. */
static void copy_printable(const char *s, size_t n, char *out, size_t out_len)
{
	size_t i;

	if (out_len == 0)
		return;
	for (i = 0; i < n && i + 1 < out_len; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f)
			out[i] = s[i];
		else
			out[i] = '?';
	}
	out[i] = '\0';
}

static json_t *load(const uint8_t *buf, size_t len, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *root;

	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		(void)cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply is not JSON (%s at byte %d)",
		                  jerr.text, jerr.position);
		return NULL;
	}
	if (!json_is_object(root)) {
		(void)cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply is not a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

/* parse_i64 reads the decimal int64 string of `v` through the bounded
 * reader: an optional '-', 1 to 19 digits, nothing else, no overflow. */
static bool parse_i64(const json_t *v, int64_t *out)
{
	struct cvm_rd rd;
	uint64_t acc = 0, lim = (uint64_t)INT64_MAX;
	bool neg = false, any = false;
	uint8_t c;

	if (!json_is_string(v) || json_string_length(v) > I64_DIGITS_MAX)
		return false;
	cvm_rd_init(&rd, json_string_value(v), json_string_length(v));
	if (cvm_rd_peek_u8(&rd, &c) && c == '-') {
		neg = true;
		lim += 1; /* |INT64_MIN| */
		(void)cvm_rd_skip(&rd, 1);
	}
	while (cvm_rd_u8(&rd, &c)) {
		if (c < '0' || c > '9')
			return false;
		if (acc > (lim - (uint64_t)(c - '0')) / 10)
			return false;
		acc = acc * 10 + (uint64_t)(c - '0');
		any = true;
	}
	if (!any)
		return false;
	if (neg)
		*out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
	else
		*out = (int64_t)acc;
	return true;
}

/* get_u64 reads the optional uint64 field `name` (member ids): 1 to 20
 * digits, no sign, no overflow. */
static int get_u64(const json_t *obj, const char *name, uint64_t *out, const char *where, char *err,
                   size_t err_len)
{
	const json_t *v = json_object_get(obj, name);
	struct cvm_rd rd;
	uint64_t acc = 0;
	bool any = false;
	uint8_t c;

	*out = 0;
	if (v == NULL)
		return CVM_OK;
	if (!json_is_string(v) || json_string_length(v) > I64_DIGITS_MAX)
		goto bad;
	cvm_rd_init(&rd, json_string_value(v), json_string_length(v));
	while (cvm_rd_u8(&rd, &c)) {
		if (c < '0' || c > '9' || acc > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
			goto bad;
		acc = acc * 10 + (uint64_t)(c - '0');
		any = true;
	}
	if (!any)
		goto bad;
	*out = acc;
	return CVM_OK;
bad:
	return cvm_err_set(err, err_len, CVM_E_FORMAT,
	                   "the etcd reply's %s.%s is not a decimal uint64 string", where, name);
}

/* get_i64 reads the optional int64 field `name` of `obj` (0 when absent);
 * `where` names `obj` in the error sentence. */
static int get_i64(const json_t *obj, const char *name, int64_t *out, const char *where, char *err,
                   size_t err_len)
{
	const json_t *v = json_object_get(obj, name);

	*out = 0;
	if (v == NULL)
		return CVM_OK;
	if (!parse_i64(v, out))
		return cvm_err_set(err, err_len, CVM_E_FORMAT,
		                   "the etcd reply's %s.%s is not a decimal int64 string", where, name);
	return CVM_OK;
}

static int get_bool(const json_t *obj, const char *name, bool *out, const char *where, char *err,
                    size_t err_len)
{
	const json_t *v = json_object_get(obj, name);

	*out = false;
	if (v == NULL)
		return CVM_OK;
	if (!json_is_boolean(v))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s.%s is not a boolean",
		                   where, name);
	*out = json_is_true(v);
	return CVM_OK;
}

/* get_b64 decodes the base64 string `v` of at most `max` decoded bytes into
 * a new buffer with a NUL after its `*out_len` bytes. */
static int get_b64(const json_t *v, size_t max, uint8_t **out, size_t *out_len, const char *where,
                   const char *name, char *err, size_t err_len)
{
	uint8_t *raw = NULL, *nb;
	size_t n = 0;
	int r;

	*out = NULL;
	*out_len = 0;
	if (!json_is_string(v))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s.%s is not a string",
		                   where, name);
	if (json_string_length(v) / 4 * 3 > max + 3)
		return cvm_err_set(err, err_len, CVM_E_TOO_LARGE,
		                   "the etcd reply's %s.%s is longer than %zu bytes", where, name, max);
	if (json_string_length(v) != 0) {
		r = cvm_base64_decode(json_string_value(v), json_string_length(v), max, &raw, &n);
		if (r != CVM_OK)
			return cvm_err_set(err, err_len, r == CVM_E_TOO_LARGE ? r : CVM_E_FORMAT,
			                   "the etcd reply's %s.%s is not base64 of at most %zu bytes", where,
			                   name, max);
	}
	nb = malloc(n + 1);
	if (nb == NULL) {
		free(raw);
		return CVM_E_NOMEM;
	}
	if (n != 0)
		memcpy(nb, raw, n);
	nb[n] = '\0';
	free(raw);
	*out = nb;
	*out_len = n;
	return CVM_OK;
}

/* header reads the required "header" object's revision. */
static int header(const json_t *obj, int64_t *revision, const char *where, char *err, size_t err_len)
{
	const json_t *h = json_object_get(obj, "header");

	*revision = 0;
	if (!json_is_object(h))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s has no \"header\" object",
		                   where);
	return get_i64(h, "revision", revision, "header", err, err_len);
}

static int parse_kv(const json_t *o, struct cvm_etcd_kv *kv, const char *where, char *err, size_t err_len)
{
	const json_t *v;
	uint8_t *key = NULL;
	int r;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s is not an object", where);
	v = json_object_get(o, "key");
	if (v == NULL)
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s has no \"key\"", where);
	r = get_b64(v, CVM_ETCD_KEY_MAX, &key, &kv->key_len, where, "key", err, err_len);
	if (r != CVM_OK)
		return r;
	kv->key = (char *)key;
	v = json_object_get(o, "value");
	if (v != NULL) {
		r = get_b64(v, CVM_ETCD_VALUE_MAX, &kv->value, &kv->value_len, where, "value", err, err_len);
		if (r != CVM_OK)
			return r;
	}
	r = get_i64(o, "create_revision", &kv->create_revision, where, err, err_len);
	if (r == CVM_OK)
		r = get_i64(o, "mod_revision", &kv->mod_revision, where, err, err_len);
	if (r == CVM_OK)
		r = get_i64(o, "version", &kv->version, where, err, err_len);
	if (r == CVM_OK)
		r = get_i64(o, "lease", &kv->lease, where, err, err_len);
	return r;
}

void cvm_etcd_kv_cleanup(struct cvm_etcd_kv *kv)
{
	if (kv == NULL)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void cvm_etcd_kvs_cleanup(struct cvm_etcd_kvs *kvs)
{
	if (kvs == NULL)
		return;
	for (size_t i = 0; i < kvs->kv_count; i++)
		cvm_etcd_kv_cleanup(&kvs->kvs[i]);
	free(kvs->kvs);
	memset(kvs, 0, sizeof(*kvs));
}

/* range_body fills `out` from a RangeResponse object (a reply, or a txn's
 * response_range). */
static int range_body(const json_t *o, struct cvm_etcd_kvs *out, const char *where, char *err, size_t err_len)
{
	const json_t *arr;
	char sub[64];
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	r = header(o, &out->revision, where, err, err_len);
	if (r == CVM_OK)
		r = get_i64(o, "count", &out->count, where, err, err_len);
	if (r == CVM_OK)
		r = get_bool(o, "more", &out->more, where, err, err_len);
	if (r != CVM_OK)
		return r;
	arr = json_object_get(o, "kvs");
	if (arr == NULL)
		return CVM_OK;
	if (!json_is_array(arr))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s.kvs is not an array",
		                   where);
	n = json_array_size(arr);
	if (n > CVM_ETCD_KVS_MAX)
		return cvm_err_set(err, err_len, CVM_E_TOO_LARGE,
		                   "the etcd reply's %s.kvs has more than %d kvs", where, CVM_ETCD_KVS_MAX);
	if (n == 0)
		return CVM_OK;
	out->kvs = calloc(n, sizeof(*out->kvs));
	if (out->kvs == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		(void)snprintf(sub, sizeof(sub), "%s.kvs[%zu]", where, i);
		out->kv_count = i + 1; /* the cleanup frees what parse_kv left */
		r = parse_kv(json_array_get(arr, i), &out->kvs[i], sub, err, err_len);
		if (r != CVM_OK)
			return r;
	}
	if (out->count < (int64_t)n)
		return cvm_err_set(err, err_len, CVM_E_FORMAT,
		                   "the etcd reply's %s.count (%" PRId64 ") is less than its %zu kvs", where,
		                   out->count, n);
	return CVM_OK;
}

int etcd_parse_range(const uint8_t *buf, size_t len, struct cvm_etcd_kvs *out, char *err, size_t err_len)
{
	json_t *root;
	int r;

	memset(out, 0, sizeof(*out));
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	r = range_body(root, out, "range reply", err, err_len);
	json_decref(root);
	return r;
}

int etcd_parse_put(const uint8_t *buf, size_t len, struct cvm_etcd_kv *prev, int64_t *revision, char *err,
                   size_t err_len)
{
	json_t *root;
	const json_t *pv;
	int r;

	if (prev != NULL)
		memset(prev, 0, sizeof(*prev));
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	r = header(root, revision, "put reply", err, err_len);
	pv = json_object_get(root, "prev_kv");
	if (r == CVM_OK && prev != NULL && pv != NULL)
		r = parse_kv(pv, prev, "put reply's prev_kv", err, err_len);
	json_decref(root);
	return r;
}

static int delete_body(const json_t *o, int64_t *deleted, int64_t *revision, const char *where, char *err,
                       size_t err_len)
{
	int r = header(o, revision, where, err, err_len);

	if (r == CVM_OK)
		r = get_i64(o, "deleted", deleted, where, err, err_len);
	if (r == CVM_OK && *deleted < 0)
		r = cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s.deleted is negative", where);
	return r;
}

int etcd_parse_delete(const uint8_t *buf, size_t len, int64_t *deleted, int64_t *revision, char *err,
                      size_t err_len)
{
	json_t *root;
	int r;

	*deleted = 0;
	*revision = 0;
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	r = delete_body(root, deleted, revision, "delete reply", err, err_len);
	json_decref(root);
	return r;
}

void cvm_etcd_txn_result_cleanup(struct cvm_etcd_txn_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->result_count; i++)
		cvm_etcd_kvs_cleanup(&res->results[i].range);
	free(res->results);
	memset(res, 0, sizeof(*res));
}

static int txn_op(const json_t *o, struct cvm_etcd_op_result *res, const char *where, char *err,
                  size_t err_len)
{
	const json_t *v;
	int64_t rev;
	size_t n = 0;

	if (!json_is_object(o))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s is not an object", where);
	n = json_object_size(o);
	if (n != 1)
		return cvm_err_set(err, err_len, CVM_E_FORMAT,
		                   "the etcd reply's %s holds %zu responses, not one", where, n);
	v = json_object_get(o, "response_range");
	if (v != NULL) {
		res->type = CVM_ETCD_OP_RANGE;
		if (!json_is_object(v))
			return cvm_err_set(err, err_len, CVM_E_FORMAT,
			                   "the etcd reply's %s.response_range is "
			                   "not an object",
			                   where);
		return range_body(v, &res->range, where, err, err_len);
	}
	v = json_object_get(o, "response_put");
	if (v != NULL) {
		res->type = CVM_ETCD_OP_PUT;
		if (!json_is_object(v))
			return cvm_err_set(err, err_len, CVM_E_FORMAT,
			                   "the etcd reply's %s.response_put is "
			                   "not an object",
			                   where);
		return header(v, &rev, where, err, err_len);
	}
	v = json_object_get(o, "response_delete_range");
	if (v != NULL) {
		res->type = CVM_ETCD_OP_DELETE;
		if (!json_is_object(v))
			return cvm_err_set(err, err_len, CVM_E_FORMAT,
			                   "the etcd reply's %s.response_delete_range "
			                   "is not an object",
			                   where);
		return delete_body(v, &res->deleted, &rev, where, err, err_len);
	}
	return cvm_err_set(err, err_len, CVM_E_FORMAT,
	                   "the etcd reply's %s is not a range, put or delete "
	                   "response",
	                   where);
}

int etcd_parse_txn(const uint8_t *buf, size_t len, struct cvm_etcd_txn_result *out, char *err, size_t err_len)
{
	json_t *root;
	const json_t *arr;
	char sub[48];
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	r = header(root, &out->revision, "txn reply", err, err_len);
	if (r == CVM_OK)
		r = get_bool(root, "succeeded", &out->succeeded, "txn reply", err, err_len);
	if (r != CVM_OK)
		goto out;
	arr = json_object_get(root, "responses");
	if (arr == NULL)
		goto out;
	if (!json_is_array(arr)) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "the etcd reply's txn reply.responses is not an array");
		goto out;
	}
	n = json_array_size(arr);
	if (n > CVM_ETCD_TXN_OPS_MAX) {
		r = cvm_err_set(err, err_len, CVM_E_TOO_LARGE,
		                "the etcd txn reply has more than %d responses", CVM_ETCD_TXN_OPS_MAX);
		goto out;
	}
	if (n == 0)
		goto out;
	out->results = calloc(n, sizeof(*out->results));
	if (out->results == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		(void)snprintf(sub, sizeof(sub), "responses[%zu]", i);
		out->result_count = i + 1;
		r = txn_op(json_array_get(arr, i), &out->results[i], sub, err, err_len);
		if (r != CVM_OK)
			goto out;
	}
out:
	json_decref(root);
	return r;
}

int etcd_parse_lease_grant(const uint8_t *buf, size_t len, int64_t *id, int64_t *ttl, char *err,
                           size_t err_len)
{
	json_t *root;
	int64_t rev;
	int r;

	*id = 0;
	*ttl = 0;
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	r = header(root, &rev, "lease grant reply", err, err_len);
	if (r == CVM_OK)
		r = get_i64(root, "ID", id, "lease grant reply", err, err_len);
	if (r == CVM_OK)
		r = get_i64(root, "TTL", ttl, "lease grant reply", err, err_len);
	if (r == CVM_OK && (*id == 0 || *ttl <= 0))
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "the etcd lease grant reply has no lease ID or TTL");
	json_decref(root);
	return r;
}

int etcd_parse_lease_keepalive(const uint8_t *buf, size_t len, int64_t *id, int64_t *ttl, char *err,
                               size_t err_len)
{
	json_t *root;
	const json_t *res;
	int64_t rev;
	int r;

	*id = 0;
	*ttl = 0;
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	res = json_object_get(root, "result");
	if (!json_is_object(res)) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "the etcd keepalive reply has no \"result\" object");
		goto out;
	}
	r = header(res, &rev, "keepalive reply", err, err_len);
	if (r == CVM_OK)
		r = get_i64(res, "ID", id, "keepalive reply", err, err_len);
	if (r == CVM_OK)
		r = get_i64(res, "TTL", ttl, "keepalive reply", err, err_len);
	if (r == CVM_OK && *ttl < 0)
		r = cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd keepalive reply's TTL is negative");
out:
	json_decref(root);
	return r;
}

void cvm_etcd_lease_info_cleanup(struct cvm_etcd_lease_info *info)
{
	if (info == NULL)
		return;
	for (size_t i = 0; i < info->key_count; i++)
		free(info->keys[i]);
	free(info->keys);
	memset(info, 0, sizeof(*info));
}

int etcd_parse_lease_ttl(const uint8_t *buf, size_t len, struct cvm_etcd_lease_info *out, char *err,
                         size_t err_len)
{
	json_t *root;
	const json_t *arr;
	char sub[32];
	int64_t rev;
	size_t n, klen;
	int r;

	memset(out, 0, sizeof(*out));
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	r = header(root, &rev, "timetolive reply", err, err_len);
	if (r == CVM_OK)
		r = get_i64(root, "ID", &out->id, "timetolive reply", err, err_len);
	if (r == CVM_OK)
		r = get_i64(root, "TTL", &out->ttl, "timetolive reply", err, err_len);
	if (r == CVM_OK)
		r = get_i64(root, "grantedTTL", &out->granted_ttl, "timetolive reply", err, err_len);
	if (r != CVM_OK)
		goto out;
	if (out->ttl < -1) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd timetolive reply's TTL is below -1");
		goto out;
	}
	arr = json_object_get(root, "keys");
	if (arr == NULL)
		goto out;
	if (!json_is_array(arr)) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "the etcd timetolive reply's keys is not an array");
		goto out;
	}
	n = json_array_size(arr);
	if (n > CVM_ETCD_KVS_MAX) {
		r = cvm_err_set(err, err_len, CVM_E_TOO_LARGE,
		                "the etcd timetolive reply has more than %d keys", CVM_ETCD_KVS_MAX);
		goto out;
	}
	if (n == 0)
		goto out;
	out->keys = calloc(n, sizeof(*out->keys));
	if (out->keys == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t *k = NULL;

		(void)snprintf(sub, sizeof(sub), "keys[%zu]", i);
		r = get_b64(json_array_get(arr, i), CVM_ETCD_KEY_MAX, &k, &klen, "timetolive reply", sub, err,
		            err_len);
		if (r != CVM_OK)
			goto out;
		out->keys[i] = (char *)k;
		out->key_count = i + 1;
	}
out:
	json_decref(root);
	return r;
}

int etcd_parse_status(const uint8_t *buf, size_t len, uint64_t *member_id, uint64_t *leader_id, char *version,
                      size_t version_len, char *err, size_t err_len)
{
	json_t *root;
	const json_t *h, *v;
	int r;

	*member_id = 0;
	*leader_id = 0;
	if (version != NULL && version_len != 0)
		version[0] = '\0';
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	h = json_object_get(root, "header");
	if (!json_is_object(h)) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd status reply has no \"header\" object");
		goto out;
	}
	/* Member ids are uint64 in etcd's protobuf: parse them as such. */
	r = get_u64(h, "member_id", member_id, "status reply's header", err, err_len);
	if (r == CVM_OK)
		r = get_u64(root, "leader", leader_id, "status reply", err, err_len);
	if (r == CVM_OK) {
		v = json_object_get(root, "version");
		if (!json_is_string(v))
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "the etcd status reply's version is not a string");
		else if (version != NULL)
			copy_printable(json_string_value(v), json_string_length(v), version, version_len);
	}
out:
	json_decref(root);
	return r;
}

int etcd_parse_auth(const uint8_t *buf, size_t len, char **token, char *err, size_t err_len)
{
	json_t *root;
	const json_t *v;
	const char *s;
	size_t n;
	int64_t rev;
	int r;

	*token = NULL;
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	r = header(root, &rev, "authenticate reply", err, err_len);
	if (r != CVM_OK)
		goto out;
	v = json_object_get(root, "token");
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 4096) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "the etcd authenticate reply's token is not a string of 1 to 4096 bytes");
		goto out;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	/* The token goes into an HTTP header: printable ASCII only. */
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e) {
			r = cvm_err_set(
			    err, err_len, CVM_E_FORMAT,
			    "the etcd authenticate reply's token has a byte that is not printable ASCII");
			goto out;
		}
	}
	*token = strndup(s, n);
	if (*token == NULL)
		r = CVM_E_NOMEM;
out:
	json_decref(root);
	return r;
}

static int parse_event(const json_t *o, struct cvm_etcd_event *ev, const char *where, char *err,
                       size_t err_len)
{
	const json_t *t, *kv, *pkv;
	char sub[64];
	int r;

	if (!json_is_object(o))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s is not an object", where);
	t = json_object_get(o, "type");
	if (t == NULL || (json_is_string(t) && strcmp(json_string_value(t), "PUT") == 0))
		ev->type = CVM_ETCD_EVENT_PUT;
	else if (json_is_string(t) && strcmp(json_string_value(t), "DELETE") == 0)
		ev->type = CVM_ETCD_EVENT_DELETE;
	else
		return cvm_err_set(err, err_len, CVM_E_FORMAT,
		                   "the etcd reply's %s.type is not PUT or DELETE", where);
	kv = json_object_get(o, "kv");
	if (kv == NULL)
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the etcd reply's %s has no kv", where);
	(void)snprintf(sub, sizeof(sub), "%s.kv", where);
	r = parse_kv(kv, &ev->kv, sub, err, err_len);
	if (r != CVM_OK)
		return r;
	pkv = json_object_get(o, "prev_kv");
	if (pkv == NULL)
		return CVM_OK;
	(void)snprintf(sub, sizeof(sub), "%s.prev_kv", where);
	return parse_kv(pkv, &ev->prev_kv, sub, err, err_len);
}

void etcd_watch_msg_cleanup(struct etcd_watch_msg *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->event_count; i++) {
		cvm_etcd_kv_cleanup(&m->events[i].kv);
		cvm_etcd_kv_cleanup(&m->events[i].prev_kv);
	}
	free(m->events);
	memset(m, 0, sizeof(*m));
}

int etcd_parse_watch_line(const uint8_t *buf, size_t len, struct etcd_watch_msg *out, char *err,
                          size_t err_len)
{
	json_t *root;
	const json_t *res, *arr, *v;
	char sub[32];
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	root = load(buf, len, err, err_len);
	if (root == NULL)
		return CVM_E_FORMAT;
	res = json_object_get(root, "result");
	if (!json_is_object(res)) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "the etcd watch message has no \"result\" object");
		goto out;
	}
	r = header(res, &out->revision, "watch message", err, err_len);
	if (r == CVM_OK)
		r = get_bool(res, "created", &out->created, "watch message", err, err_len);
	if (r == CVM_OK)
		r = get_bool(res, "canceled", &out->canceled, "watch message", err, err_len);
	if (r == CVM_OK)
		r = get_i64(res, "watch_id", &out->watch_id, "watch message", err, err_len);
	if (r == CVM_OK)
		r = get_i64(res, "compact_revision", &out->compact_revision, "watch message", err, err_len);
	if (r != CVM_OK)
		goto out;
	v = json_object_get(res, "cancel_reason");
	if (v != NULL) {
		if (!json_is_string(v)) {
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "the etcd watch message's cancel_reason is not "
			                "a string");
			goto out;
		}
		copy_printable(json_string_value(v), json_string_length(v), out->cancel_reason,
		               sizeof(out->cancel_reason));
	}
	arr = json_object_get(res, "events");
	if (arr == NULL)
		goto out;
	if (!json_is_array(arr)) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "the etcd watch message's events is not an array");
		goto out;
	}
	n = json_array_size(arr);
	if (n > CVM_ETCD_KVS_MAX) {
		r = cvm_err_set(err, err_len, CVM_E_TOO_LARGE,
		                "the etcd watch message has more than %d events", CVM_ETCD_KVS_MAX);
		goto out;
	}
	if (n == 0)
		goto out;
	out->events = calloc(n, sizeof(*out->events));
	if (out->events == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		(void)snprintf(sub, sizeof(sub), "events[%zu]", i);
		out->event_count = i + 1;
		r = parse_event(json_array_get(arr, i), &out->events[i], sub, err, err_len);
		if (r != CVM_OK)
			goto out;
		/* Resuming relies on events coming in revision order. */
		if (out->events[i].kv.mod_revision <= 0 ||
		    (i > 0 && out->events[i].kv.mod_revision < out->events[i - 1].kv.mod_revision)) {
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "the etcd watch message's %s.kv.mod_revision is "
			                "not positive and in order",
			                sub);
			goto out;
		}
	}
out:
	json_decref(root);
	return r;
}

bool etcd_reply_error(const uint8_t *buf, size_t len, int *code, char *msg, size_t msg_len)
{
	json_error_t jerr;
	json_t *root;
	const json_t *e, *m, *c;
	bool ok = false;

	*code = 0;
	if (msg_len != 0)
		msg[0] = '\0';
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return false;
	e = json_object_get(root, "error");
	if (json_is_object(e)) { /* a stream's error */
		m = json_object_get(e, "message");
		c = json_object_get(e, "grpc_code");
	} else {
		m = json_object_get(root, "message");
		c = json_object_get(root, "code");
		if (m == NULL)
			m = e;
	}
	if (e != NULL && json_is_string(m) && json_is_integer(c) && json_integer_value(c) >= 0 &&
	    json_integer_value(c) <= 64) {
		*code = (int)json_integer_value(c);
		copy_printable(json_string_value(m), json_string_length(m), msg, msg_len);
		ok = true;
	}
	json_decref(root);
	return ok;
}

size_t etcd_prefix_end(const uint8_t *p, size_t len, uint8_t *out)
{
	size_t i = len;

	while (i > 0) {
		i--;
		if (p[i] != 0xff) {
			memcpy(out, p, i);
			out[i] = (uint8_t)(p[i] + 1);
			return i + 1;
		}
	}
	return 0;
}
