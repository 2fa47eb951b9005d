/* Env lists: dstack's decrypted-env JSON, the env file the CLI reads, and
 * the three forms written out (sealed JSON, .decrypted-env.json and the
 * shell .decrypted-env). Names and values live in one block of secret
 * memory per list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/envcrypt.h>

#include "core/core_lib.h"

/* set_err writes one sentence into `err` (core's cvm_err_set). */
#define set_err(err, err_len, ...) ((void)cvm_err_set((err), (err_len), CVM_OK, __VA_ARGS__))

struct cvm_env_list *cvm_env_list_new(size_t store_len)
{
	struct cvm_env_list *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->vars = calloc(CVM_ENV_ITEMS_MAX, sizeof(*l->vars));
	l->store = cvm_secret_new(store_len);
	if (l->vars == NULL || l->store == NULL) {
		cvm_env_list_free(l);
		return NULL;
	}
	return l;
}

void cvm_env_list_free(struct cvm_env_list *l)
{
	if (l == NULL)
		return;
	cvm_secret_free(l->store);
	free(l->vars);
	for (size_t i = 0; i < l->skipped_count; i++)
		free(l->skipped[i]);
	free(l->skipped);
	free(l);
}

bool cvm_env_key_ok(const char *key, size_t len)
{
	if (key == NULL || len == 0 || len > CVM_ENV_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (!alpha && (i == 0 || c < '0' || c > '9'))
			return false;
	}
	return true;
}

/* utf8_ok checks that the `len` bytes at `p` are well-formed UTF-8 (no
 * overlong forms, no surrogates, nothing above U+10FFFF) and hold no NUL. */
static bool utf8_ok(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1fu;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0fu;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07u;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0u) != 0x80u)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3fu);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* store_put copies `n` bytes and a NUL into the list's secret memory. */
static const char *store_put(struct cvm_env_list *l, const char *p, size_t n)
{
	char *dst;

	if (l->store->len - l->store_used < n + 1)
		return NULL;
	dst = (char *)l->store->p + l->store_used;
	if (n != 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
	l->store_used += n + 1;
	return dst;
}

static size_t find_key(const struct cvm_env_list *l, const char *key, size_t key_len)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->vars[i].key_len == key_len && memcmp(l->vars[i].key, key, key_len) == 0)
			return i;
	return SIZE_MAX;
}

static size_t list_total(const struct cvm_env_list *l)
{
	size_t total = 0;

	for (size_t i = 0; i < l->count; i++)
		total += l->vars[i].key_len + l->vars[i].value_len;
	return total;
}

/* put sets KEY=VALUE, replacing an earlier value of KEY when `replace`. The
 * caller has checked the name and the value. */
static int put(struct cvm_env_list *l, const char *key, size_t key_len, const char *value, size_t value_len,
               bool replace)
{
	size_t i = find_key(l, key, key_len);
	const char *k, *v;

	if (i != SIZE_MAX && !replace)
		return CVM_E_FORMAT;
	if (i == SIZE_MAX && l->count == CVM_ENV_ITEMS_MAX)
		return CVM_E_TOO_LARGE;
	v = store_put(l, value, value_len);
	if (v == NULL)
		return CVM_E_TOO_LARGE;
	if (i != SIZE_MAX) {
		/* The old value's bytes are not reused: wipe them now. */
		cvm_wipe((void *)(uintptr_t)l->vars[i].value, l->vars[i].value_len);
		l->vars[i].value = v;
		l->vars[i].value_len = value_len;
		return CVM_OK;
	}
	k = store_put(l, key, key_len);
	if (k == NULL)
		return CVM_E_TOO_LARGE;
	l->vars[l->count].key = k;
	l->vars[l->count].key_len = key_len;
	l->vars[l->count].value = v;
	l->vars[l->count].value_len = value_len;
	l->count++;
	return CVM_OK;
}

int cvm_env_list_add(struct cvm_env_list *l, const char *key, size_t key_len, const char *value,
                     size_t value_len)
{
	if (l == NULL || key == NULL || (value == NULL && value_len != 0))
		return CVM_E_INVAL;
	if (!cvm_env_key_ok(key, key_len) || !utf8_ok((const uint8_t *)value, value_len))
		return CVM_E_FORMAT;
	if (value_len > CVM_ENV_VALUE_MAX || list_total(l) + key_len + value_len > CVM_ENV_TOTAL_MAX)
		return CVM_E_TOO_LARGE;
	return put(l, key, key_len, value, value_len, false);
}

static bool allowed_has(const struct cvm_env_allowed *a, const char *key, size_t key_len)
{
	for (size_t i = 0; i < a->count; i++)
		if (a->names[i] != NULL && strlen(a->names[i]) == key_len &&
		    memcmp(a->names[i], key, key_len) == 0)
			return true;
	return false;
}

static int note_skipped(struct cvm_env_list *l, const char *key, size_t key_len)
{
	size_t n = key_len > CVM_ENV_KEY_MAX ? CVM_ENV_KEY_MAX : key_len;
	char *copy;

	if (l->skipped == NULL) {
		l->skipped = calloc(CVM_ENV_ITEMS_MAX, sizeof(*l->skipped));
		if (l->skipped == NULL)
			return CVM_E_NOMEM;
	}
	if (l->skipped_count == CVM_ENV_ITEMS_MAX)
		return CVM_E_INTERNAL;
	copy = malloc(n + 1);
	if (copy == NULL)
		return CVM_E_NOMEM;
	memcpy(copy, key, n);
	copy[n] = '\0';
	l->skipped[l->skipped_count++] = copy;
	return CVM_OK;
}

static int cmp_var(const void *a, const void *b)
{
	const struct cvm_env_var *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	return x->key_len < y->key_len ? -1 : x->key_len > y->key_len ? 1 : 0;
}

/* item_name gives a printable name for messages: the name when it passes
 * the name rule, else a placeholder (a bad name may hold anything). */
static const char *item_name(const char *key, size_t key_len)
{
	return cvm_env_key_ok(key, key_len) ? key : "(not a valid name)";
}

int cvm_env_list_from_json(const char *json, size_t len, const struct cvm_env_allowed *allowed,
                           struct cvm_env_list **out, char *err, size_t err_len)
{
	struct cvm_env_list *l = NULL;
	json_t *root = NULL, *env, *item;
	json_error_t jerr;
	size_t total = 0, n, idx;
	int r;

	set_err(err, err_len, "%s", "");
	if (out != NULL)
		*out = NULL;
	if (json == NULL || out == NULL) {
		set_err(err, err_len, "no JSON was given");
		return CVM_E_INVAL;
	}
	if (len > CVM_ENVCRYPT_PLAIN_MAX) {
		set_err(err, err_len, "the env JSON is %zu bytes, over the %zu-byte limit", len,
		        (size_t)CVM_ENVCRYPT_PLAIN_MAX);
		return CVM_E_TOO_LARGE;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		/* jerr.text quotes no input bytes, only a position and a reason. */
		set_err(err, err_len, "the env is not valid JSON (line %d, column %d): %s", jerr.line,
		        jerr.column, jerr.text);
		r = CVM_E_FORMAT;
		goto out;
	}
	env = json_is_object(root) ? json_object_get(root, "env") : NULL;
	if (!json_is_array(env)) {
		set_err(err, err_len,
		        "the env JSON is not an object with an \"env\" array ({\"env\":[{\"key\":..., "
		        "\"value\":...}]})");
		r = CVM_E_FORMAT;
		goto out;
	}
	n = json_array_size(env);
	if (n > CVM_ENV_ITEMS_MAX) {
		set_err(err, err_len, "the env list has %zu items, over dstack's limit of %d", n,
		        CVM_ENV_ITEMS_MAX);
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	/* Decoded strings are never longer than their JSON text. */
	l = cvm_env_list_new(len + 2 * (size_t)CVM_ENV_ITEMS_MAX);
	if (l == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	json_array_foreach(env, idx, item)
	{
		json_t *k = json_is_object(item) ? json_object_get(item, "key") : NULL;
		json_t *v = json_is_object(item) ? json_object_get(item, "value") : NULL;
		const char *key, *value;
		size_t key_len, value_len;

		if (!json_is_string(k) || !json_is_string(v)) {
			set_err(err, err_len,
			        "env item %zu is not an object with string \"key\" and \"value\"", idx);
			r = CVM_E_FORMAT;
			goto out;
		}
		key = json_string_value(k);
		key_len = json_string_length(k);
		value = json_string_value(v);
		value_len = json_string_length(v);
		if (allowed != NULL && !allowed_has(allowed, key, key_len)) {
			r = note_skipped(l, key, key_len);
			if (r != CVM_OK)
				goto out;
			continue;
		}
		if (key_len > CVM_ENV_KEY_MAX) {
			set_err(err, err_len,
			        "env item %zu: the name is %zu bytes, over dstack's limit of %d", idx,
			        key_len, CVM_ENV_KEY_MAX);
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		if (value_len > CVM_ENV_VALUE_MAX) {
			set_err(err, err_len,
			        "env item %zu (%s): the value is %zu bytes, over dstack's limit of %zu", idx,
			        item_name(key, key_len), value_len, (size_t)CVM_ENV_VALUE_MAX);
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		if (!cvm_env_key_ok(key, key_len)) {
			set_err(err, err_len,
			        "env item %zu: the name does not match ^[a-zA-Z_][a-zA-Z0-9_]*$", idx);
			r = CVM_E_FORMAT;
			goto out;
		}
		/* jansson refuses \u0000 without JSON_ALLOW_NUL, and checks UTF-8:
		 * the value is well-formed text with no NUL. */
		total += key_len + value_len;
		if (total > CVM_ENV_TOTAL_MAX) {
			set_err(err, err_len,
			        "env item %zu (%s): names and values exceed dstack's total of %zu bytes", idx,
			        key, (size_t)CVM_ENV_TOTAL_MAX);
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		r = put(l, key, key_len, value, value_len, true);
		if (r != CVM_OK) {
			set_err(err, err_len, "env item %zu (%s) could not be stored", idx, key);
			goto out;
		}
	}
	qsort(l->vars, l->count, sizeof(*l->vars), cmp_var);
	*out = l;
	l = NULL; /* transferred */
	r = CVM_OK;
out:
	json_decref(root);
	cvm_env_list_free(l);
	return r;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* trim narrows [*p, *p + *n) to drop spaces and tabs at both ends. */
static void trim(const char **p, size_t *n)
{
	while (*n > 0 && is_blank((*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && is_blank((*p)[*n - 1]))
		(*n)--;
}

int cvm_env_list_from_dotenv(const char *text, size_t len, struct cvm_env_list **out, char *err,
                             size_t err_len)
{
	struct cvm_env_list *l = NULL;
	struct cvm_rd rd;
	size_t lineno = 0;
	int r;

	set_err(err, err_len, "%s", "");
	if (out != NULL)
		*out = NULL;
	if (out == NULL || (text == NULL && len != 0)) {
		set_err(err, err_len, "no env file was given");
		return CVM_E_INVAL;
	}
	if (len > CVM_ENVCRYPT_PLAIN_MAX) {
		set_err(err, err_len, "the env file is %zu bytes, over the %zu-byte limit", len,
		        (size_t)CVM_ENVCRYPT_PLAIN_MAX);
		return CVM_E_TOO_LARGE;
	}
	l = cvm_env_list_new(len + 2 * (size_t)CVM_ENV_ITEMS_MAX);
	if (l == NULL)
		return CVM_E_NOMEM;
	cvm_rd_init(&rd, text, len);
	while (!cvm_rd_empty(&rd)) {
		const uint8_t *line_p, *nl = memchr(rd.p, '\n', rd.len);
		const char *line, *eq, *key, *value;
		size_t line_len = nl != NULL ? (size_t)(nl - rd.p) : rd.len, key_len, value_len;

		if (!cvm_rd_bytes(&rd, &line_p, line_len)) {
			r = CVM_E_INTERNAL;
			goto out;
		}
		if (!cvm_rd_empty(&rd) && !cvm_rd_skip(&rd, 1)) {
			r = CVM_E_INTERNAL;
			goto out;
		}
		lineno++;
		line = (const char *)line_p;
		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		if (!utf8_ok(line_p, line_len)) {
			set_err(err, err_len, "line %zu: not UTF-8 text, or holds a NUL byte", lineno);
			r = CVM_E_FORMAT;
			goto out;
		}
		trim(&line, &line_len);
		if (line_len == 0 || line[0] == '#')
			continue;
		eq = memchr(line, '=', line_len);
		if (eq == NULL) {
			set_err(err, err_len,
			        "line %zu: no '=' (write NAME=VALUE, or start a comment with #)", lineno);
			r = CVM_E_FORMAT;
			goto out;
		}
		key = line;
		key_len = (size_t)(eq - line);
		value = eq + 1;
		value_len = line_len - key_len - 1;
		trim(&key, &key_len);
		trim(&value, &value_len);
		if (!cvm_env_key_ok(key, key_len)) {
			set_err(err, err_len,
			        "line %zu: the name is not ^[a-zA-Z_][a-zA-Z0-9_]*$ of at most %d characters",
			        lineno, CVM_ENV_KEY_MAX);
			r = CVM_E_FORMAT;
			goto out;
		}
		if (value_len > 0 && (value[0] == '"' || value[0] == '\'')) {
			if (value_len < 2 || value[value_len - 1] != value[0]) {
				set_err(err, err_len,
				        "line %zu (%.*s): the value opens a quote it does not close at the "
				        "line's end",
				        lineno, (int)key_len, key);
				r = CVM_E_FORMAT;
				goto out;
			}
			value++;
			value_len -= 2;
		}
		r = cvm_env_list_add(l, key, key_len, value, value_len);
		if (r == CVM_E_FORMAT) {
			set_err(err, err_len, "line %zu: %.*s is set twice", lineno, (int)key_len, key);
			goto out;
		}
		if (r == CVM_E_TOO_LARGE) {
			set_err(err, err_len,
			        "line %zu (%.*s): over dstack's limits (%d names, values of %zu bytes, %zu "
			        "bytes in "
			        "all)",
			        lineno, (int)key_len, key, CVM_ENV_ITEMS_MAX, (size_t)CVM_ENV_VALUE_MAX,
			        (size_t)CVM_ENV_TOTAL_MAX);
			goto out;
		}
		if (r != CVM_OK)
			goto out;
	}
	*out = l;
	l = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_env_list_free(l);
	return r;
}

/* ---- writing ------------------------------------------------------------- */

/* json_escaped_len is the length of the `n` bytes at `p` as a JSON string's
 * contents. */
static size_t json_escaped_len(const char *p, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
			len += 2;
		else if (c < 0x20)
			len += 6;
		else
			len += 1;
	}
	return len;
}

static void wr_json_str(struct cvm_wr *w, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	cvm_wr_u8(w, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		switch (c) {
		case '"':
			cvm_wr_bytes(w, "\\\"", 2);
			break;
		case '\\':
			cvm_wr_bytes(w, "\\\\", 2);
			break;
		case '\b':
			cvm_wr_bytes(w, "\\b", 2);
			break;
		case '\f':
			cvm_wr_bytes(w, "\\f", 2);
			break;
		case '\n':
			cvm_wr_bytes(w, "\\n", 2);
			break;
		case '\r':
			cvm_wr_bytes(w, "\\r", 2);
			break;
		case '\t':
			cvm_wr_bytes(w, "\\t", 2);
			break;
		default:
			if (c < 0x20) {
				cvm_wr_bytes(w, "\\u00", 4);
				cvm_wr_u8(w, (uint8_t)hex[c >> 4]);
				cvm_wr_u8(w, (uint8_t)hex[c & 0xfu]);
			} else {
				cvm_wr_u8(w, c);
			}
		}
	}
	cvm_wr_u8(w, '"');
}

/* finish_secret hands over the `used` bytes the fixed writer `w` filled in
 * `s`, or fails (and frees `s`) when the writer overflowed, which the
 * measured size rules out. */
static int finish_secret(struct cvm_wr *w, struct cvm_secret *s, struct cvm_secret **out)
{
	if (w->err || w->len != s->len) {
		cvm_secret_free(s);
		return CVM_E_INTERNAL;
	}
	*out = s;
	return CVM_OK;
}

int cvm_env_list_to_json(const struct cvm_env_list *l, enum cvm_env_json form, struct cvm_secret **out)
{
	static const char sealed_head[] = "{\"env\":[";
	struct cvm_secret *s;
	struct cvm_wr w;
	size_t len;

	if (out != NULL)
		*out = NULL;
	if (l == NULL || out == NULL || (form != CVM_ENV_JSON_SEALED && form != CVM_ENV_JSON_MAP))
		return CVM_E_INVAL;
	/* Measure first: the JSON goes straight into secret memory. Each item
	 * is bounded (CVM_ENV_VALUE_MAX * 6), so the sum cannot overflow. */
	len = form == CVM_ENV_JSON_SEALED ? sizeof(sealed_head) - 1 + 2 : 2;
	for (size_t i = 0; i < l->count; i++) {
		len += json_escaped_len(l->vars[i].key, l->vars[i].key_len) + 2;
		len += json_escaped_len(l->vars[i].value, l->vars[i].value_len) + 2;
		len += form == CVM_ENV_JSON_SEALED ? sizeof("{\"key\":,\"value\":}") - 1 : 1;
		len += i > 0 ? 1 : 0;
		if (len > CVM_ENVCRYPT_PLAIN_MAX)
			return CVM_E_TOO_LARGE;
	}
	s = cvm_secret_new(len);
	if (s == NULL)
		return CVM_E_NOMEM;
	cvm_wr_init_fixed(&w, s->p, s->len);
	if (form == CVM_ENV_JSON_SEALED)
		cvm_wr_bytes(&w, sealed_head, sizeof(sealed_head) - 1);
	else
		cvm_wr_u8(&w, '{');
	for (size_t i = 0; i < l->count; i++) {
		if (i > 0)
			cvm_wr_u8(&w, ',');
		if (form == CVM_ENV_JSON_SEALED) {
			cvm_wr_str(&w, "{\"key\":");
			wr_json_str(&w, l->vars[i].key, l->vars[i].key_len);
			cvm_wr_str(&w, ",\"value\":");
			wr_json_str(&w, l->vars[i].value, l->vars[i].value_len);
			cvm_wr_u8(&w, '}');
		} else {
			wr_json_str(&w, l->vars[i].key, l->vars[i].key_len);
			cvm_wr_u8(&w, ':');
			wr_json_str(&w, l->vars[i].value, l->vars[i].value_len);
		}
	}
	if (form == CVM_ENV_JSON_SEALED)
		cvm_wr_u8(&w, ']');
	cvm_wr_u8(&w, '}');
	return finish_secret(&w, s, out);
}

/* The characters that make dstack quote a value (parse_env_file.rs). */
static bool shell_special(char c)
{
	return c != '\0' && strchr(" \t|&;<>()$`\\\"'\n", c) != NULL;
}

static bool shell_escaped(char c)
{
	return c == '"' || c == '$' || c == '`';
}

int cvm_env_list_format_shell(const struct cvm_env_list *l, struct cvm_secret **out)
{
	struct cvm_secret *s;
	struct cvm_wr w;
	size_t len = 0;

	if (out != NULL)
		*out = NULL;
	if (l == NULL || out == NULL)
		return CVM_E_INVAL;
	/* Every value at most doubles, plus quotes: bounded by the list's
	 * limits, no overflow. */
	for (size_t i = 0; i < l->count; i++) {
		const struct cvm_env_var *v = &l->vars[i];
		bool quote = false;

		len += v->key_len + 2; /* '=' and '\n' */
		for (size_t k = 0; k < v->value_len; k++) {
			quote = quote || shell_special(v->value[k]);
			len += v->value[k] == '\n' || shell_escaped(v->value[k]) ? 2 : 1;
		}
		len += quote ? 2 : 0;
	}
	s = cvm_secret_new(len);
	if (s == NULL)
		return CVM_E_NOMEM;
	cvm_wr_init_fixed(&w, s->p, s->len);
	for (size_t i = 0; i < l->count; i++) {
		const struct cvm_env_var *v = &l->vars[i];
		bool quote = false;

		for (size_t k = 0; k < v->value_len; k++)
			quote = quote || shell_special(v->value[k]);
		cvm_wr_bytes(&w, v->key, v->key_len);
		cvm_wr_u8(&w, '=');
		if (quote)
			cvm_wr_u8(&w, '"');
		for (size_t k = 0; k < v->value_len; k++) {
			char c = v->value[k];

			if (c == '\n') {
				cvm_wr_bytes(&w, "\\n", 2);
				continue;
			}
			if (shell_escaped(c))
				cvm_wr_u8(&w, '\\');
			cvm_wr_u8(&w, (uint8_t)c);
		}
		if (quote)
			cvm_wr_u8(&w, '"');
		cvm_wr_u8(&w, '\n');
	}
	return finish_secret(&w, s, out);
}
