#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include <cvmkit/file.h>

#include "conf.h"
#include "daemon.h"

struct conf_state {
	const struct cvm_conf_key *keys;
	size_t count;
	bool *seen;
	char *err;
	size_t err_len;
	bool failed;
};

/* fail records "<before>[section] name<after>" as the first error. */
static int fail(struct conf_state *st, const char *before, const char *section, const char *name,
                const char *after)
{
	char s[CVM_KV_MAX], n[CVM_KV_MAX];

	/* Only the first error is kept; libinih reports its line number. */
	if (!st->failed)
		(void)snprintf(st->err, st->err_len, "%s[%s] %s%s", before, cvm_kv(section, s),
		               cvm_kv(name, n), after);
	st->failed = true;
	return 0;
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
	struct conf_state *st = user;
	const struct cvm_conf_key *k = NULL;
	size_t i;
	int r;

	for (i = 0; i < st->count; i++) {
		if (strcmp(st->keys[i].section, section) == 0 && strcmp(st->keys[i].name, name) == 0) {
			k = &st->keys[i];
			break;
		}
	}
	if (k == NULL)
		return fail(st, "unknown key ", section, name, "");
	if (st->seen[i])
		return fail(st, "key ", section, name, " is set twice");
	st->seen[i] = true;
	if (value == NULL)
		return fail(st, "key ", section, name, " has no value");
	switch (k->type) {
	case CVM_CONF_STR:
		if (strlen(value) >= k->dst_len)
			return fail(st, "the value of ", section, name, " is too long");
		memcpy(k->dst, value, strlen(value) + 1);
		return 1;
	case CVM_CONF_BOOL:
		r = cvm_parse_bool(value, k->dst);
		break;
	case CVM_CONF_U64:
		r = cvm_parse_u64(value, k->min, k->max, k->dst);
		break;
	case CVM_CONF_MODE:
		r = cvm_parse_mode(value, k->dst);
		break;
	default:
		r = CVM_E_INTERNAL;
		break;
	}
	if (r != CVM_OK)
		return fail(st, "the value of ", section, name,
		            k->type == CVM_CONF_U64    ? " is not a number in range"
		            : k->type == CVM_CONF_MODE ? " is not an octal mode (e.g. 0660)"
		                                       : " is not a boolean (true/false)");
	return 1;
}

int cvm_conf_parse(const char *text, const struct cvm_conf_key *keys, size_t count, char *err, size_t err_len)
{
	struct conf_state st;
	size_t line = 1, col = 0;
	char msg[256];
	int n, r = CVM_E_FORMAT;

	(void)snprintf(err, err_len, "no error");
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\n') {
			line++;
			col = 0;
		} else if (++col > CVM_CONF_LINE_MAX) {
			(void)snprintf(err, err_len, "line %zu: longer than %d bytes", line,
			               CVM_CONF_LINE_MAX);
			return CVM_E_FORMAT;
		}
	}
	memset(&st, 0, sizeof(st));
	st.keys = keys;
	st.count = count;
	st.err = msg;
	st.err_len = sizeof(msg);
	st.seen = calloc(count != 0 ? count : 1, sizeof(bool));
	if (st.seen == NULL)
		return CVM_E_NOMEM;
	/* One key, one line: continuation lines would be read as part of the
	 * previous value, which hides a missing '='. */
	ini_allow_multiline = false;
	n = ini_parse_string(text, on_value, &st);
	if (n > 0) {
		if (st.failed)
			(void)snprintf(err, err_len, "line %d: %s", n, msg);
		else
			(void)snprintf(err, err_len, "line %d: not a [section] or key = value line", n);
		goto out;
	}
	if (n != 0) {
		(void)snprintf(err, err_len, "out of memory");
		r = CVM_E_NOMEM;
		goto out;
	}
	r = CVM_OK;
out:
	free(st.seen);
	return r;
}

int cvm_conf_load(const char *path, const struct cvm_conf_key *keys, size_t count, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = cvm_file_read(path, CVM_CONF_FILE_MAX, &buf, &len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read %s: %s", path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	if (memchr(buf, '\0', len) != NULL) {
		(void)snprintf(err, err_len, "%s contains a NUL byte", path);
		r = CVM_E_FORMAT;
		goto out;
	}
	r = cvm_conf_parse((const char *)buf, keys, count, err, err_len);
out:
	free(buf);
	return r;
}
