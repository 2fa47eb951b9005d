#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include <cvmkit/encoding.h>

#include "rpc.h"

int cvm_rpc_fail(struct cvm_rpc_call *call, int status, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(call->err, sizeof(call->err), fmt, ap);
	va_end(ap);
	if (status != 0)
		call->status = status;
	return r;
}

json_t *cvm_json_hex(const uint8_t *p, size_t len)
{
	char *s;
	json_t *v;

	s = cvm_hex_encode_new(p, len);
	if (s == NULL)
		return NULL;
	v = json_stringn_nocheck(s, 2 * len);
	free(s);
	return v;
}

int cvm_json_set(json_t *o, const char *key, json_t *v)
{
	if (v == NULL)
		return CVM_E_NOMEM;
	if (json_object_set_new(o, key, v) != 0)
		return CVM_E_NOMEM;
	return CVM_OK;
}

/* get returns the value at `key`, or NULL when it is missing or null. */
static json_t *get(struct cvm_rpc_call *call, const char *key)
{
	json_t *v = json_object_get(call->args, key);

	return json_is_null(v) ? NULL : v;
}

/* rpc_string reads a string field; a JSON string may hold "\u0000" (the
 * body is parsed with JSON_ALLOW_NUL), which only `allow_nul` callers get. */
static int rpc_string(struct cvm_rpc_call *call, const char *key, size_t max_len, bool allow_nul,
                      const char **out, size_t *out_len)
{
	json_t *v = get(call, key);

	*out = "";
	*out_len = 0;
	if (v == NULL)
		return CVM_OK;
	if (!json_is_string(v))
		return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "invalid type for field %s: expected a string",
		                    key);
	if (json_string_length(v) > max_len)
		return cvm_rpc_fail(call, 400, CVM_E_TOO_LARGE, "field %s is too long (at most %zu bytes)",
		                    key, max_len);
	if (!allow_nul && memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
		return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "field %s must not contain a NUL character",
		                    key);
	*out = json_string_value(v);
	*out_len = json_string_length(v);
	return CVM_OK;
}

int cvm_rpc_str(struct cvm_rpc_call *call, const char *key, size_t max_len, const char **out, size_t *out_len)
{
	return rpc_string(call, key, max_len, false, out, out_len);
}

int cvm_rpc_str_nul(struct cvm_rpc_call *call, const char *key, size_t max_len, const char **out,
                    size_t *out_len)
{
	return rpc_string(call, key, max_len, true, out, out_len);
}

/* hex_span finds the hex digits of `key`: a string with any number of
 * leading "0x" dropped, as prpc's hex helper reads it. */
static int hex_span(struct cvm_rpc_call *call, const char *key, const char **hex, size_t *hex_len)
{
	const char *s;
	size_t n;
	int r;

	*hex = "";
	*hex_len = 0;
	r = cvm_rpc_str(call, key, SIZE_MAX / 2, &s, &n);
	if (r != CVM_OK)
		return r;
	while (n >= 2 && s[0] == '0' && s[1] == 'x') {
		s += 2;
		n -= 2;
	}
	if (n % 2 != 0)
		return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "invalid hex in field %s: odd number of digits",
		                    key);
	*hex = s;
	*hex_len = n;
	return CVM_OK;
}

int cvm_rpc_hex(struct cvm_rpc_call *call, const char *key, uint8_t *buf, size_t cap, size_t *out_len)
{
	const char *hex;
	size_t n;
	int r;

	*out_len = 0;
	r = hex_span(call, key, &hex, &n);
	if (r != CVM_OK)
		return r;
	if (n / 2 > cap)
		return cvm_rpc_fail(call, 400, CVM_E_TOO_LARGE, "field %s is too long (at most %zu bytes)",
		                    key, cap);
	r = cvm_hex_decode(hex, n, buf, cap, out_len);
	if (r != CVM_OK)
		return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "invalid hex in field %s", key);
	return CVM_OK;
}

int cvm_rpc_hex_new(struct cvm_rpc_call *call, const char *key, size_t max, uint8_t **out, size_t *out_len)
{
	const char *hex;
	uint8_t *buf = NULL;
	size_t n;
	int r;

	*out = NULL;
	*out_len = 0;
	r = hex_span(call, key, &hex, &n);
	if (r != CVM_OK)
		return r;
	if (n == 0)
		return CVM_OK;
	if (n / 2 > max)
		return cvm_rpc_fail(call, 400, CVM_E_TOO_LARGE, "field %s is too long (at most %zu bytes)",
		                    key, max);
	buf = malloc(n / 2);
	if (buf == NULL)
		return cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
	r = cvm_hex_decode(hex, n, buf, n / 2, out_len);
	if (r != CVM_OK) {
		free(buf);
		return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "invalid hex in field %s", key);
	}
	*out = buf;
	return CVM_OK;
}

int cvm_rpc_bool(struct cvm_rpc_call *call, const char *key, bool *out)
{
	json_t *v = get(call, key);

	*out = false;
	if (v == NULL)
		return CVM_OK;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return CVM_OK;
	}
	if (call->from_query && json_is_string(v)) {
		if (strcmp(json_string_value(v), "true") == 0) {
			*out = true;
			return CVM_OK;
		}
		if (strcmp(json_string_value(v), "false") == 0)
			return CVM_OK;
	}
	return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "invalid type for field %s: expected a boolean", key);
}

int cvm_rpc_u64(struct cvm_rpc_call *call, const char *key, bool *present, uint64_t *out)
{
	json_t *v = get(call, key);

	*present = false;
	*out = 0;
	if (v == NULL)
		return CVM_OK;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		*present = true;
		return CVM_OK;
	}
	if (call->from_query && json_is_string(v)) {
		const char *s = json_string_value(v);
		uint64_t x = 0;
		size_t n = strlen(s);

		if (n != 0 && n <= 19 && strspn(s, "0123456789") == n) {
			for (size_t i = 0; i < n; i++)
				x = x * 10 + (uint64_t)(s[i] - '0');
			*out = x;
			*present = true;
			return CVM_OK;
		}
	}
	return cvm_rpc_fail(call, 400, CVM_E_FORMAT,
	                    "invalid type for field %s: expected an unsigned integer", key);
}

int cvm_rpc_str_array(struct cvm_rpc_call *call, const char *key, size_t max_count, size_t max_len,
                      const char ***out, size_t *count)
{
	json_t *v = get(call, key);
	const char **a;
	size_t n;

	*out = NULL;
	*count = 0;
	if (v == NULL)
		return CVM_OK;
	if (!json_is_array(v))
		return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "invalid type for field %s: expected an array",
		                    key);
	n = json_array_size(v);
	if (n > max_count)
		return cvm_rpc_fail(call, 400, CVM_E_TOO_LARGE, "field %s has too many entries (at most %zu)",
		                    key, max_count);
	if (n == 0)
		return CVM_OK;
	a = calloc(n, sizeof(*a));
	if (a == NULL)
		return cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);

		if (!json_is_string(e) || json_string_length(e) > max_len ||
		    memchr(json_string_value(e), '\0', json_string_length(e)) != NULL) {
			free(a);
			return cvm_rpc_fail(
			    call, 400, CVM_E_FORMAT,
			    "invalid entry in field %s: expected strings of at most %zu bytes, without NUL",
			    key, max_len);
		}
		a[i] = json_string_value(e);
	}
	*out = a;
	*count = n;
	return CVM_OK;
}

static bool is_json_type(const char *ct)
{
	size_t n;

	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, "; ");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* query_key_is reports whether the query has a key (before '=') equal to
 * `name`, undecoded, as Rocket's `?json` test reads it. */
static bool query_has_key(const char *q, const char *name)
{
	size_t nl = strlen(name);

	while (q != NULL && *q != '\0') {
		size_t seg = strcspn(q, "&");
		size_t klen = strcspn(q, "=&");

		if (klen == nl && strncmp(q, name, nl) == 0)
			return true;
		q += seg;
		if (*q == '&')
			q++;
	}
	return false;
}

/* decode_part percent-decodes (with '+' as space) `n` bytes at `s` into a
 * new NUL-terminated string; NULL when it would contain a NUL byte or when
 * out of memory. */
static char *decode_part(const char *s, size_t n)
{
	char *tmp, *dec;
	size_t len = 0;

	tmp = strndup(s, n);
	if (tmp == NULL)
		return NULL;
	dec = evhttp_uridecode(tmp, 1, &len);
	free(tmp);
	if (dec != NULL && strlen(dec) != len) {
		free(dec);
		return NULL;
	}
	return dec;
}

/* query_args turns a GET query into the request message, as serde_qs
 * would for dstack's flat messages: key=value pairs become string values;
 * key[]=v or key[N]=v pairs become arrays of strings, in order. */
static int query_args(struct cvm_rpc_call *call, const char *q, json_t *args)
{
	size_t pairs = 0;
	char *key = NULL, *val = NULL;
	int r = CVM_OK;

	while (q != NULL && *q != '\0') {
		size_t seg = strcspn(q, "&"), klen = strcspn(q, "=&");
		size_t vlen = klen < seg ? seg - klen - 1 : 0;
		char *br;
		json_t *arr, *s;

		if (seg == 0)
			goto next;
		if (++pairs > CVM_RPC_QUERY_ARGS_MAX) {
			r = cvm_rpc_fail(call, 400, CVM_E_TOO_LARGE, "too many query parameters (at most %d)",
			                 CVM_RPC_QUERY_ARGS_MAX);
			goto out;
		}
		key = decode_part(q, klen);
		val = decode_part(klen < seg ? q + klen + 1 : q + seg, vlen);
		if (key == NULL || val == NULL) {
			r = cvm_rpc_fail(call, 400, CVM_E_FORMAT, "invalid query parameter encoding");
			goto out;
		}
		if (strcmp(key, "json") == 0)
			goto next;
		/* jansson refuses keys that are not UTF-8; that is the client's
		 * error, not a lack of memory */
		s = json_string(key);
		if (s == NULL)
			goto bad_utf8;
		json_decref(s);
		br = strchr(key, '[');
		if (br != NULL) {
			size_t idx_len = strlen(br + 1);

			if (idx_len == 0 || br[idx_len] != ']' ||
			    strspn(br + 1, "0123456789") != idx_len - 1 || idx_len - 1 > 2) {
				r = cvm_rpc_fail(call, 400, CVM_E_FORMAT, "invalid query parameter name");
				goto out;
			}
			*br = '\0';
			arr = json_object_get(args, key);
			if (arr == NULL) {
				r = cvm_json_set(args, key, json_array());
				if (r != CVM_OK)
					goto oom;
				arr = json_object_get(args, key);
			} else if (!json_is_array(arr)) {
				r = cvm_rpc_fail(call, 400, CVM_E_FORMAT,
				                 "query parameter %.64s is given twice", key);
				goto out;
			}
			if (json_array_size(arr) >= CVM_RPC_ARRAY_MAX) {
				r = cvm_rpc_fail(call, 400, CVM_E_TOO_LARGE, "too many values for %.64s",
				                 key);
				goto out;
			}
			s = json_string(val);
			if (s == NULL || json_array_append_new(arr, s) != 0)
				goto bad_utf8;
		} else {
			if (json_object_get(args, key) != NULL) {
				r = cvm_rpc_fail(call, 400, CVM_E_FORMAT,
				                 "query parameter %.64s is given twice", key);
				goto out;
			}
			s = json_string(val);
			if (s == NULL)
				goto bad_utf8;
			if (json_object_set_new(args, key, s) != 0)
				goto oom;
		}
next:
		free(key);
		free(val);
		key = val = NULL;
		q += seg;
		if (*q == '&')
			q++;
	}
	goto out;
bad_utf8:
	r = cvm_rpc_fail(call, 400, CVM_E_FORMAT, "query parameters must be UTF-8");
	goto out;
oom:
	r = cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
out:
	free(key);
	free(val);
	return r;
}

/* route finds the mount and method name for `path`: the rest after a mount's
 * prefix must be one non-empty path segment. */
static const struct cvm_rpc_mount *route(const struct cvm_rpc_api *api, const char *path, const char **name)
{
	for (size_t i = 0; i < api->count; i++) {
		const struct cvm_rpc_mount *m = &api->mounts[i];
		size_t pl = strlen(m->prefix);

		if (strncmp(path, m->prefix, pl) != 0)
			continue;
		if (path[pl] == '\0' || strchr(path + pl, '/') != NULL)
			continue;
		*name = path + pl;
		return m;
	}
	return NULL;
}

static void printable(const char *s, char *out, size_t cap)
{
	size_t j = 0;

	for (; *s != '\0' && j + 1 < cap; s++) {
		char c = '?';

		if (*s >= 0x20 && *s < 0x7f)
			c = *s;
		out[j++] = c;
	}
	out[j] = '\0';
}

void cvm_rpc_handle(const struct cvm_rpc_api *api, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	const struct cvm_rpc_mount *m;
	const struct cvm_rpc_method *fn = NULL;
	struct cvm_rpc_call call;
	const char *name = NULL;
	char shown[CVM_RPC_METHOD_MAX + 1];
	json_t *args = NULL, *reply = NULL;
	json_error_t jerr;
	bool json_mode;
	int r;

	memset(&call, 0, sizeof(call));
	m = route(api, req->path, &name);
	if (m == NULL) {
		printable(req->path, shown, sizeof(shown));
		cvm_http_resp_error(resp, 404, "Not found: %s", shown);
		return;
	}
	if (req->method != CVM_HTTP_GET && req->method != CVM_HTTP_POST) {
		resp->allow = "GET, POST";
		cvm_http_resp_error(resp, 405, "HTTP method %s is not allowed (use POST or GET)",
		                    req->method_name);
		return;
	}
	if (m->trim != NULL && m->trim[0] != '\0') {
		size_t tl = strlen(m->trim);

		while (strncmp(name, m->trim, tl) == 0)
			name += tl;
	}
	if (strlen(name) <= CVM_RPC_METHOD_MAX) {
		for (size_t i = 0; i < m->count; i++) {
			if (strcmp(m->methods[i].name, name) == 0) {
				fn = &m->methods[i];
				break;
			}
		}
	}
	if (fn == NULL) {
		printable(name, shown, sizeof(shown));
		cvm_http_resp_error(resp, m->unknown_status != 0 ? m->unknown_status : 400,
		                    "Service not found: %s", shown);
		return;
	}
	json_mode = req->method == CVM_HTTP_GET || query_has_key(req->query, "json") ||
	            is_json_type(req->content_type);
	call.method = fn->name;
	call.http = req;
	call.status = 400;
	if (req->method == CVM_HTTP_GET) {
		args = json_object();
		if (args == NULL) {
			cvm_http_resp_error(resp, 500, "out of memory");
			return;
		}
		call.from_query = true;
		r = query_args(&call, req->query, args);
		if (r != CVM_OK)
			goto fail;
	} else if (req->body_len == 0) {
		args = json_object();
		if (args == NULL) {
			cvm_http_resp_error(resp, 500, "out of memory");
			return;
		}
	} else {
		/* "\u0000" is allowed in string values (dstack's v1 domains may hold
		 * it); every getter but cvm_rpc_str_nul refuses it */
		args = json_loadb((const char *)req->body, req->body_len,
		                  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
		if (args == NULL) {
			(void)cvm_rpc_fail(
			    &call, 400, CVM_E_FORMAT,
			    "request body is not valid JSON: %s (line %d, column %d)%s", jerr.text, jerr.line,
			    jerr.column,
			    json_mode ? "" : "; cvm-agentd speaks the JSON encoding only, not protobuf");
			goto fail;
		}
		if (!json_is_object(args)) {
			(void)cvm_rpc_fail(&call, 400, CVM_E_FORMAT, "request body must be a JSON object");
			goto fail;
		}
	}
	call.args = args;
	r = fn->fn(api->ctx, &call, &reply);
	if (r != CVM_OK)
		goto fail;
	cvm_http_resp_json(resp, 200, reply);
	json_decref(reply);
	json_decref(args);
	return;
fail:
	if (call.err[0] == '\0')
		(void)snprintf(call.err, sizeof(call.err), "%s failed", fn->name);
	cvm_http_resp_error(resp, call.status != 0 ? call.status : 400, "%s", call.err);
	json_decref(reply);
	json_decref(args);
}
