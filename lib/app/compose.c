/* app-compose.json: the schema check, the compose hash and the byte layout
 * (include/cvmkit/app.h; specs/dstack.md §4.1-4.3).
 *
 * The keys and their types follow dstack-types' AppCompose (Dstack-TEE/dstack
 * at 312dc605, dstack/dstack-types/src/lib.rs, and the older structs at
 * v0.3.6 tdxctl/src/utils.rs and v0.4.2 for the legacy keys docker_config,
 * features and tproxy_enabled), plus the keys the guest's shell reads
 * directly (os/common/rootfs/app-compose.sh: pre_launch_script,
 * bash_script). Upstream ignores unknown top-level keys; we refuse them
 * (a typo such as "kms_enable" silently changes nothing in dstack, yet the
 * compose hash commits to it) unless the caller asks for CVM_APP_PARSE_LAX.
 *
 * The file is parsed once by jansson (duplicate keys refused, depth checked
 * on the bytes first); the compose hash is SHA-256 over the bytes given,
 * never over a re-serialisation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <cvmkit/app.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/envcrypt.h>
#include <cvmkit/err.h>

#include "core/core_lib.h"

#define KEY_SHOW_MAX 48u /* bytes of an unknown key an error message shows */
#define HINT_KEY_MAX 64u /* longer keys get no "did you mean" */
#define OS_VERSION_MAX 256u
#define JCS_MEMBERS_MAX 64u /* gpu_policy has 5 members; LAX may add a few */

/* ---- the bytes: depth and layout ----------------------------------------- */

/* skip_string moves *i past the JSON string that starts at buf[*i] ('"');
 * false when the text ends inside it. */
static bool skip_string(const uint8_t *buf, size_t len, size_t *i)
{
	size_t j = *i + 1;

	while (j < len) {
		if (buf[j] == '\\') {
			j += 2;
			continue;
		}
		if (buf[j] == '"') {
			*i = j + 1;
			return true;
		}
		j++;
	}
	return false;
}

static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* max_depth is the deepest nesting of arrays and objects in the text, read
 * from the bytes (strings skipped) so that jansson never recurses deeper
 * than CVM_APP_DEPTH_MAX; it stops counting past `cap`. */
static unsigned max_depth(const uint8_t *buf, size_t len, unsigned cap)
{
	unsigned depth = 0, max = 0;
	size_t i = 0;

	while (i < len && max <= cap) {
		uint8_t c = buf[i];

		if (c == '"') {
			if (!skip_string(buf, len, &i))
				break;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
			if (depth > max)
				max = depth;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
		i++;
	}
	return max;
}

/* gap_is tells whether the `n` bytes at `p` are "\n" followed by `spaces`
 * spaces (nl) or nothing (!nl). */
static bool gap_is(const uint8_t *p, size_t n, bool nl, size_t spaces)
{
	if (!nl)
		return n == 0;
	if (n != 1 + spaces || p[0] != '\n')
		return false;
	for (size_t i = 1; i < n; i++)
		if (p[i] != ' ')
			return false;
	return true;
}

enum prev_tok { T_START, T_OPEN, T_VALUE, T_COMMA, T_COLON };

enum cvm_app_layout cvm_app_compose_layout(const uint8_t *buf, size_t len, bool *trailing_newline)
{
	bool compact = true, indent4 = true, done = false;
	enum prev_tok prev = T_START;
	size_t i = 0, depth = 0;

	if (trailing_newline != NULL)
		*trailing_newline = false;
	if (buf == NULL)
		return CVM_APP_LAYOUT_OTHER;
	while (i < len) {
		size_t ws = i, gap;
		uint8_t c;

		while (i < len && is_ws(buf[i]))
			i++;
		gap = i - ws;
		if (i == len) {
			if (trailing_newline != NULL)
				*trailing_newline = gap != 0;
			break;
		}
		if (done)
			return CVM_APP_LAYOUT_OTHER; /* a second value: not one JSON text */
		c = buf[i];
		if (gap != 0)
			compact = false;
		/* What json.dumps(indent=4) puts before this token. */
		if (prev != T_START && (c == '}' || c == ']')) {
			indent4 &= prev == T_OPEN ? gap == 0
			                          : depth > 0 && gap_is(buf + ws, gap, true, 4 * (depth - 1));
		} else if (prev == T_OPEN || prev == T_COMMA) {
			indent4 &= gap_is(buf + ws, gap, true, 4 * depth);
		} else if (prev == T_COLON) {
			indent4 &= gap == 1 && buf[ws] == ' ';
		} else {
			indent4 &= gap == 0; /* the first token, or a comma or colon after a value */
		}
		switch (c) {
		case '{':
		case '[':
			if (depth == CVM_APP_DEPTH_MAX)
				return CVM_APP_LAYOUT_OTHER;
			depth++;
			prev = T_OPEN;
			i++;
			break;
		case '}':
		case ']':
			if (depth == 0)
				return CVM_APP_LAYOUT_OTHER;
			depth--;
			prev = T_VALUE;
			done = depth == 0;
			i++;
			break;
		case ',':
			prev = T_COMMA;
			i++;
			break;
		case ':':
			prev = T_COLON;
			i++;
			break;
		case '"':
			if (!skip_string(buf, len, &i))
				return CVM_APP_LAYOUT_OTHER;
			prev = T_VALUE;
			done = depth == 0;
			break;
		default:
			while (i < len && !is_ws(buf[i]) && buf[i] != ',' && buf[i] != ':' && buf[i] != ']' &&
			       buf[i] != '}')
				i++;
			prev = T_VALUE;
			done = depth == 0;
		}
	}
	if (!done)
		return CVM_APP_LAYOUT_OTHER;
	if (compact)
		return CVM_APP_LAYOUT_COMPACT;
	return indent4 ? CVM_APP_LAYOUT_VMM_CLI : CVM_APP_LAYOUT_OTHER;
}

void cvm_app_compose_hash(const uint8_t *buf, size_t len, uint8_t out[32])
{
	cvm_sha256(buf != NULL ? buf : (const uint8_t *)"", buf != NULL ? len : 0, out);
}

/* ---- the parse ------------------------------------------------------------ */

struct pctx {
	struct cvm_app_compose *c;
	unsigned flags;
	char *err;
	size_t err_len;
	bool has_manifest, has_name, has_runner, has_kms, has_local, has_key_provider;
	bool has_bash_script, has_snapshotter, init_is_array;
	const char *key; /* the key being checked, for messages */
};

static const char *type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction or exponent";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "a JSON value";
}

/* show_key copies `k` for a message: printable ASCII as it is, other bytes
 * as \xNN, cut at KEY_SHOW_MAX bytes. */
static void show_key(const char *k, char *out, size_t cap)
{
	struct cvm_wr w;
	size_t n = strlen(k);

	cvm_wr_init_text(&w, out, cap);
	for (size_t i = 0; i < n && i < KEY_SHOW_MAX; i++) {
		uint8_t b = (uint8_t)k[i];

		if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\')
			cvm_wr_u8(&w, b);
		else
			cvm_wr_fmt(&w, "\\x%02x", b);
	}
	if (n > KEY_SHOW_MAX)
		cvm_wr_str(&w, "...");
}

static int bad_type(struct pctx *p, json_t *v, const char *expected)
{
	return cvm_err_set(p->err, p->err_len, CVM_E_FORMAT, "app-compose: key \"%s\" must be %s, not %s",
	                   p->key, expected, type_name(v));
}

static int bad_value(struct pctx *p, const char *what)
{
	return cvm_err_set(p->err, p->err_len, CVM_E_FORMAT, "app-compose: key \"%s\": %s", p->key, what);
}

static int copy_str(struct pctx *p, json_t *v, char **out)
{
	char *s = strdup(json_string_value(v));

	if (s == NULL)
		return cvm_err_set(p->err, p->err_len, CVM_E_NOMEM, "app-compose: out of memory");
	free(*out);
	*out = s;
	return CVM_OK;
}

static int want_bool(struct pctx *p, json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return bad_type(p, v, "true or false");
	*out = json_is_true(v);
	return CVM_OK;
}

static int want_string(struct pctx *p, json_t *v)
{
	return json_is_string(v) ? CVM_OK : bad_type(p, v, "a string");
}

/* ---- one handler per key ---- */

static int k_manifest_version(struct pctx *p, json_t *v)
{
	p->has_manifest = true;
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		if (n == 2) {
			p->c->manifest_version = 2;
			return CVM_OK;
		}
		if (n == 3)
			return bad_value(p,
			                 "version 3 must be the string \"3\": dstack takes numbers only for "
			                 "the legacy versions, so that older guests refuse the file");
		return bad_value(p, "must be 2 or the string \"3\"");
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (strcmp(s, "2") == 0 || strcmp(s, "3") == 0) {
			p->c->manifest_version = s[0] - '0';
			return CVM_OK;
		}
		return bad_value(p, "must be 2 or the string \"3\" (canonical digits, no sign or spaces)");
	}
	return bad_type(p, v, "2 or the string \"3\"");
}

static int k_name(struct pctx *p, json_t *v)
{
	int r = want_string(p, v);

	p->has_name = true;
	return r != CVM_OK ? r : copy_str(p, v, &p->c->name);
}

static int k_runner(struct pctx *p, json_t *v)
{
	const char *s;
	int r = want_string(p, v);

	if (r != CVM_OK)
		return r;
	p->has_runner = true;
	s = json_string_value(v);
	if (strcmp(s, "docker-compose") != 0 && strcmp(s, "bash") != 0 && strcmp(s, "nerdctl-compose") != 0)
		return bad_value(p, "must be \"docker-compose\", \"bash\" or \"nerdctl-compose\"");
	return copy_str(p, v, &p->c->runner);
}

static int k_snapshotter(struct pctx *p, json_t *v)
{
	const char *s;

	if (json_is_null(v))
		return CVM_OK;
	if (!json_is_string(v))
		return bad_type(p, v, "\"overlayfs\" or \"stargz\"");
	s = json_string_value(v);
	if (strcmp(s, "overlayfs") != 0 && strcmp(s, "stargz") != 0)
		return bad_value(p, "must be \"overlayfs\" or \"stargz\"");
	p->has_snapshotter = true;
	return CVM_OK;
}

static int k_docker_compose_file(struct pctx *p, json_t *v)
{
	if (json_is_null(v))
		return CVM_OK;
	if (!json_is_string(v))
		return bad_type(p, v, "a string (the docker-compose YAML)");
	return copy_str(p, v, &p->c->docker_compose_file);
}

static int k_string(struct pctx *p, json_t *v)
{
	return want_string(p, v);
}

static int k_bash_script(struct pctx *p, json_t *v)
{
	p->has_bash_script = true;
	return want_string(p, v);
}

static int k_features(struct pctx *p, json_t *v)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return bad_type(p, v, "an array of strings (legacy)");
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return bad_value(p, "every entry must be a string");
		/* "tproxy-net" was the way to ask for the gateway before 0.4. */
		if (strcmp(json_string_value(e), "tproxy-net") == 0)
			p->c->gateway_enabled = true;
	}
	return CVM_OK;
}

static int k_docker_config(struct pctx *p, json_t *v)
{
	const char *k;
	json_t *e;

	if (!json_is_object(v))
		return bad_type(p, v, "an object (legacy: registry, username, token_key)");
	json_object_foreach(v, k, e)
	{
		if (strcmp(k, "registry") != 0 && strcmp(k, "username") != 0 && strcmp(k, "token_key") != 0) {
			if ((p->flags & CVM_APP_PARSE_LAX) != 0)
				continue;
			return bad_value(p, "members are registry, username and token_key only");
		}
		if (!json_is_string(e) && !json_is_null(e))
			return bad_value(p, "registry, username and token_key must be strings");
	}
	return CVM_OK;
}

static int k_init_script(struct pctx *p, json_t *v)
{
	struct cvm_app_compose *c = p->c;
	size_t n, i;
	json_t *e;

	if (json_is_null(v))
		return CVM_OK;
	if (json_is_string(v)) {
		n = 1;
	} else if (json_is_array(v)) {
		n = json_array_size(v);
		p->init_is_array = n > 1;
		json_array_foreach(v, i, e) if (!json_is_string(e)) return bad_value(
		    p, "every entry must be a string (a bash script)");
	} else {
		return bad_type(p, v, "a string or an array of strings");
	}
	if (n > CVM_APP_INIT_SCRIPTS_MAX)
		return bad_value(p, "at most 5 scripts (dstack's MAX_INIT_SCRIPTS)");
	c->init_scripts = calloc(n != 0 ? n : 1, sizeof(*c->init_scripts));
	if (c->init_scripts == NULL)
		return cvm_err_set(p->err, p->err_len, CVM_E_NOMEM, "app-compose: out of memory");
	for (i = 0; i < n; i++) {
		json_t *s = json_is_string(v) ? v : json_array_get(v, i);
		int r = copy_str(p, s, &c->init_scripts[i]);

		if (r != CVM_OK)
			return r;
		c->n_init_scripts = i + 1;
	}
	return CVM_OK;
}

#define K_BOOL(fn, field)                             \
	static int fn(struct pctx *p, json_t *v)      \
	{                                             \
		return want_bool(p, v, &p->c->field); \
	}
K_BOOL(k_public_logs, public_logs)
K_BOOL(k_public_sysinfo, public_sysinfo)
K_BOOL(k_no_instance_id, no_instance_id)
K_BOOL(k_secure_time, secure_time)
#undef K_BOOL

static int k_public_tcbinfo(struct pctx *p, json_t *v)
{
	p->c->public_tcbinfo_given = true;
	return want_bool(p, v, &p->c->public_tcbinfo);
}

static int k_kms_enabled(struct pctx *p, json_t *v)
{
	p->has_kms = true;
	return want_bool(p, v, &p->c->kms_enabled);
}

static int k_local_key_provider_enabled(struct pctx *p, json_t *v)
{
	p->has_local = true;
	return want_bool(p, v, &p->c->local_key_provider_enabled);
}

static int k_gateway_enabled(struct pctx *p, json_t *v)
{
	bool b = false;
	int r = want_bool(p, v, &b);

	/* gateway_enabled and its old name tproxy_enabled: either turns it on. */
	p->c->gateway_enabled |= b;
	return r;
}

static int k_key_provider(struct pctx *p, json_t *v)
{
	static const enum cvm_app_kp kps[] = {CVM_APP_KP_NONE, CVM_APP_KP_LOCAL, CVM_APP_KP_KMS,
	                                      CVM_APP_KP_TPM};

	if (json_is_null(v))
		return CVM_OK;
	if (!json_is_string(v))
		return bad_type(p, v, "\"none\", \"kms\", \"local\" or \"tpm\"");
	for (size_t i = 0; i < sizeof(kps) / sizeof(kps[0]); i++) {
		if (strcmp(json_string_value(v), cvm_app_kp_name(kps[i])) == 0) {
			p->c->key_provider = kps[i];
			p->c->key_provider_explicit = true;
			return CVM_OK;
		}
	}
	return bad_value(p, "must be \"none\", \"kms\", \"local\" or \"tpm\"");
}

/* hex_value decodes a string of hex digits (either case, no 0x, even
 * length) into a new buffer of at most `max` bytes. */
static int hex_value(struct pctx *p, json_t *v, size_t max, uint8_t **out, size_t *out_len)
{
	const char *s;
	size_t n;
	uint8_t *b;

	*out = NULL;
	*out_len = 0;
	if (!json_is_string(v))
		return bad_type(p, v, "a string of hex digits");
	s = json_string_value(v);
	n = json_string_length(v);
	if (n % 2 != 0 || n / 2 > max)
		return cvm_err_set(
		    p->err, p->err_len, CVM_E_FORMAT,
		    "app-compose: key \"%s\" must be an even number of hex digits, at most %zu "
		    "bytes",
		    p->key, max);
	if (n == 0)
		return CVM_OK;
	b = malloc(n / 2);
	if (b == NULL)
		return cvm_err_set(p->err, p->err_len, CVM_E_NOMEM, "app-compose: out of memory");
	if (cvm_hex_decode(s, n, b, n / 2, out_len) != CVM_OK) {
		free(b);
		return bad_value(p, "must be hex digits only (no 0x)");
	}
	*out = b;
	return CVM_OK;
}

static int k_key_provider_id(struct pctx *p, json_t *v)
{
	return hex_value(p, v, CVM_APP_KP_ID_MAX, &p->c->key_provider_id, &p->c->key_provider_id_len);
}

static int k_allowed_envs(struct pctx *p, json_t *v)
{
	struct cvm_app_compose *c = p->c;
	size_t n, i;
	json_t *e;

	if (!json_is_array(v))
		return bad_type(p, v, "an array of environment variable names");
	n = json_array_size(v);
	if (n > CVM_APP_ENVS_MAX)
		return bad_value(p, "more than 1024 names");
	c->has_allowed_envs = true;
	c->allowed_envs = calloc(n != 0 ? n : 1, sizeof(*c->allowed_envs));
	if (c->allowed_envs == NULL)
		return cvm_err_set(p->err, p->err_len, CVM_E_NOMEM, "app-compose: out of memory");
	json_array_foreach(v, i, e)
	{
		char shown[KEY_SHOW_MAX * 4 + 8];
		int r;

		const char *name = json_string_value(e);

		if (name == NULL)
			return bad_value(p, "every entry must be a string (a variable name)");
		if (!cvm_env_key_ok(name, json_string_length(e))) {
			show_key(name, shown, sizeof(shown));
			return cvm_err_set(p->err, p->err_len, CVM_E_FORMAT,
			                   "app-compose: key \"allowed_envs\": \"%s\" is not a variable name "
			                   "(^[A-Za-z_][A-Za-z0-9_]*$)",
			                   shown);
		}
		for (size_t j = 0; j < i; j++)
			if (c->allowed_envs[j] != NULL && strcmp(c->allowed_envs[j], name) == 0)
				return cvm_err_set(
				    p->err, p->err_len, CVM_E_FORMAT,
				    "app-compose: key \"allowed_envs\": \"%s\" is listed twice",
				    c->allowed_envs[j]);
		r = copy_str(p, e, &c->allowed_envs[i]);
		if (r != CVM_OK)
			return r;
		c->n_allowed_envs = i + 1;
	}
	return CVM_OK;
}

static int k_storage_fs(struct pctx *p, json_t *v)
{
	const char *s;

	if (json_is_null(v))
		return CVM_OK;
	if (!json_is_string(v))
		return bad_type(p, v, "\"zfs\" or \"ext4\"");
	s = json_string_value(v);
	/* dstack-util lower-cases it before comparing */
	if (strcasecmp(s, "zfs") != 0 && strcasecmp(s, "ext4") != 0)
		return bad_value(p, "must be \"zfs\" or \"ext4\"");
	return copy_str(p, v, &p->c->storage_fs);
}

/* parse_size reads dstack's size strings (size-parser): decimal bytes,
 * 0x hex, or decimal with one K/M/G/T suffix (1024-based, either case),
 * surrounding white space allowed. */
static bool parse_size(const char *s, uint64_t *out)
{
	size_t b = 0, e = strlen(s), i;
	uint64_t v = 0, mult = 1;
	unsigned base = 10;

	while (b < e && is_ws((uint8_t)s[b]))
		b++;
	while (e > b && is_ws((uint8_t)s[e - 1]))
		e--;
	if (e - b > 2 && s[b] == '0' && (s[b + 1] == 'x' || s[b + 1] == 'X')) {
		base = 16;
		b += 2;
	} else if (e > b) {
		switch (s[e - 1]) {
		case 'k':
		case 'K':
			mult = 1ull << 10;
			break;
		case 'm':
		case 'M':
			mult = 1ull << 20;
			break;
		case 'g':
		case 'G':
			mult = 1ull << 30;
			break;
		case 't':
		case 'T':
			mult = 1ull << 40;
			break;
		default:
			break;
		}
		if (mult != 1)
			e--;
	}
	if (e == b)
		return false;
	for (i = b; i < e; i++) {
		unsigned d;
		char ch = s[i];

		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (base == 16 && ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (base == 16 && ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (v > UINT64_MAX / mult)
		return false;
	*out = v * mult;
	return true;
}

static int k_swap_size(struct pctx *p, json_t *v)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return bad_value(p, "a size cannot be negative");
		p->c->swap_size = (uint64_t)json_integer_value(v);
		return CVM_OK;
	}
	if (json_is_string(v)) {
		if (!parse_size(json_string_value(v), &p->c->swap_size))
			return bad_value(p,
			                 "must be a number of bytes, 0x hex, or a number with K, M, G or T "
			                 "(\"1G\")");
		return CVM_OK;
	}
	return bad_type(p, v, "a number of bytes or a size such as \"1G\"");
}

static int k_event_log_version(struct pctx *p, json_t *v)
{
	if (!json_is_integer(v))
		return bad_type(p, v, "1 or 2");
	if (json_integer_value(v) != 1 && json_integer_value(v) != 2)
		return bad_value(p, "must be 1 or 2");
	p->c->event_log_version = (int)json_integer_value(v);
	return CVM_OK;
}

/* members_only refuses members of object `v` outside `names` (NULL-ended),
 * unless LAX. */
static int members_only(struct pctx *p, json_t *v, const char *const *names, const char *where)
{
	const char *k;
	json_t *e;

	if ((p->flags & CVM_APP_PARSE_LAX) != 0)
		return CVM_OK;
	json_object_foreach(v, k, e)
	{
		bool known = false;
		char shown[KEY_SHOW_MAX * 4 + 8];

		for (size_t i = 0; names[i] != NULL && !known; i++)
			known = strcmp(k, names[i]) == 0;
		if (!known) {
			show_key(k, shown, sizeof(shown));
			return cvm_err_set(p->err, p->err_len, CVM_E_FORMAT,
			                   "app-compose: key \"%s\": \"%s\" is not a member of %s", p->key,
			                   shown, where);
		}
	}
	return CVM_OK;
}

static int k_port_policy(struct pctx *p, json_t *v)
{
	static const char *const top[] = {"ports", "restrict_mode", NULL};
	static const char *const port[] = {"port", "pp", NULL};
	json_t *ports, *rm, *e;
	size_t i;
	int r;

	if (!json_is_object(v))
		return bad_type(p, v, "an object {ports, restrict_mode}");
	r = members_only(p, v, top, "port_policy (ports, restrict_mode)");
	if (r != CVM_OK)
		return r;
	rm = json_object_get(v, "restrict_mode");
	if (rm != NULL && !json_is_boolean(rm))
		return bad_value(p, "restrict_mode must be true or false");
	ports = json_object_get(v, "ports");
	if (ports == NULL)
		return CVM_OK;
	if (!json_is_array(ports))
		return bad_value(p, "ports must be an array of {port, pp}");
	json_array_foreach(ports, i, e)
	{
		json_t *pn = json_object_get(e, "port"), *pp = json_object_get(e, "pp");

		if (!json_is_object(e) || !json_is_integer(pn) || json_integer_value(pn) < 0 ||
		    json_integer_value(pn) > 65535 || (pp != NULL && !json_is_boolean(pp)))
			return bad_value(p, "each of ports must be {\"port\": 0..65535, \"pp\": true|false}");
		r = members_only(p, e, port, "a port_policy port (port, pp)");
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

/* ---- requirements and gpu_policy ---- */

/* cmp_names orders object member names for JCS (qsort). */
static int cmp_names(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;

	return strcmp(x != NULL ? x : "", y != NULL ? y : "");
}

/* jcs_value appends RFC 8785's form of `v`: what dstack hashes for
 * gpu_policy. Numbers are limited to integers of at most 2^53 in size (they
 * print the same in ECMAScript); others are CVM_E_UNSUPPORTED. */
static int jcs_value(struct cvm_wr *w, json_t *v, unsigned depth)
{
	const char **keys = NULL;
	const char *k;
	json_t *e;
	size_t n, i;
	int r = CVM_OK;

	if (depth > CVM_APP_DEPTH_MAX)
		return CVM_E_UNSUPPORTED;
	switch (json_typeof(v)) {
	case JSON_NULL:
		cvm_wr_str(w, "null");
		return CVM_OK;
	case JSON_TRUE:
		cvm_wr_str(w, "true");
		return CVM_OK;
	case JSON_FALSE:
		cvm_wr_str(w, "false");
		return CVM_OK;
	case JSON_STRING:
		cvm_jcs_string(w, json_string_value(v), json_string_length(v));
		return CVM_OK;
	case JSON_INTEGER:
		if (json_integer_value(v) > (1ll << 53) || json_integer_value(v) < -(1ll << 53))
			return CVM_E_UNSUPPORTED;
		cvm_wr_fmt(w, "%lld", (long long)json_integer_value(v));
		return CVM_OK;
	case JSON_REAL:
		return CVM_E_UNSUPPORTED;
	case JSON_ARRAY:
		cvm_wr_u8(w, '[');
		json_array_foreach(v, i, e)
		{
			if (i != 0)
				cvm_wr_u8(w, ',');
			r = jcs_value(w, e, depth + 1);
			if (r != CVM_OK)
				return r;
		}
		cvm_wr_u8(w, ']');
		return CVM_OK;
	case JSON_OBJECT:
		n = json_object_size(v);
		if (n > JCS_MEMBERS_MAX)
			return CVM_E_UNSUPPORTED;
		keys = calloc(n != 0 ? n : 1, sizeof(*keys));
		if (keys == NULL)
			return CVM_E_NOMEM;
		i = 0;
		json_object_foreach(v, k, e) if (i < n) keys[i++] = k;
		n = i;
		/* JCS sorts by UTF-16 code units; names here are ASCII in any file
		 * the strict check passes, where that is byte order. */
		qsort(keys, n, sizeof(*keys), cmp_names);
		cvm_wr_u8(w, '{');
		for (i = 0; i < n && r == CVM_OK; i++) {
			const char *key = keys[i];

			if (key == NULL)
				break;
			if (i != 0)
				cvm_wr_u8(w, ',');
			cvm_jcs_string(w, key, strlen(key));
			cvm_wr_u8(w, ':');
			r = jcs_value(w, json_object_get(v, key), depth + 1);
		}
		cvm_wr_u8(w, '}');
		free(keys);
		return r;
	}
	return CVM_E_UNSUPPORTED;
}

static int gpu_policy(struct pctx *p, json_t *g)
{
	static const char *const names[] = {"attest_gpu",          "rego", "allow_devtools", "allow_debug",
	                                    "allow_insecure_boot", NULL};
	static const char *const flags[] = {"attest_gpu", "allow_devtools", "allow_debug",
	                                    "allow_insecure_boot"};
	json_t *rego;
	struct cvm_wr w;
	uint8_t *text = NULL;
	size_t text_len = 0;
	int r;

	if (g == NULL) {
		cvm_sha256("{}", 2, p->c->gpu_policy_hash);
		return CVM_OK;
	}
	if (!json_is_object(g))
		return bad_value(p, "gpu_policy must be an object");
	r = members_only(p, g, names,
	                 "gpu_policy (attest_gpu, rego, allow_devtools, allow_debug, allow_insecure_boot)");
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		json_t *f = json_object_get(g, flags[i]);

		if (f != NULL && !json_is_boolean(f))
			return cvm_err_set(
			    p->err, p->err_len, CVM_E_FORMAT,
			    "app-compose: key \"requirements\": gpu_policy.%s must be true or false",
			    flags[i]);
	}
	rego = json_object_get(g, "rego");
	if (rego != NULL && !json_is_string(rego) && !json_is_null(rego))
		return bad_value(p, "gpu_policy.rego must be a string (a Rego policy)");
	cvm_wr_init(&w, 2 * CVM_APP_COMPOSE_MAX);
	r = jcs_value(&w, g, 0);
	if (r == CVM_OK)
		r = cvm_wr_finish(&w, &text, &text_len);
	cvm_wr_cleanup(&w);
	if (r != CVM_OK) {
		free(text);
		return r == CVM_E_NOMEM
		           ? cvm_err_set(p->err, p->err_len, r, "app-compose: out of memory")
		           : bad_value(p, "gpu_policy holds numbers cvmkit cannot put in JCS form");
	}
	cvm_sha256(text, text_len, p->c->gpu_policy_hash);
	free(text);
	return CVM_OK;
}

static bool hex64(const char *s, size_t n)
{
	uint8_t b[32];

	return n == 64 && cvm_hex_decode_exact(s, n, b, sizeof(b)) == CVM_OK;
}

static int k_requirements(struct pctx *p, json_t *v)
{
	static const char *const names[] = {"os_version",        "platforms",  "tdx_measure_acpi_tables",
	                                    "launch_token_hash", "gpu_policy", NULL};
	json_t *e, *x;
	size_t i;
	int r;

	if (json_is_null(v))
		return CVM_OK;
	if (!json_is_object(v))
		return bad_type(p, v, "an object");
	p->c->has_requirements = true;
	r = members_only(p, v, names,
	                 "requirements (os_version, platforms, tdx_measure_acpi_tables, launch_token_hash, "
	                 "gpu_policy)");
	if (r != CVM_OK)
		return r;
	e = json_object_get(v, "os_version");
	if (e != NULL && !json_is_null(e) && (!json_is_string(e) || json_string_length(e) > OS_VERSION_MAX))
		return bad_value(p, "os_version must be a version requirement string such as \">=0.6.0\"");
	e = json_object_get(v, "platforms");
	if (e != NULL && !json_is_null(e)) {
		if (!json_is_array(e))
			return bad_value(p, "platforms must be an array of platform names");
		json_array_foreach(e, i, x) if (!json_is_string(x)) return bad_value(
		    p, "platforms must be an array of platform names");
	}
	e = json_object_get(v, "tdx_measure_acpi_tables");
	if (e != NULL && !json_is_null(e) && !json_is_boolean(e))
		return bad_value(p, "tdx_measure_acpi_tables must be true or false");
	e = json_object_get(v, "launch_token_hash");
	if (e != NULL && !json_is_null(e) &&
	    (!json_is_string(e) || !hex64(json_string_value(e), json_string_length(e))))
		return bad_value(p, "launch_token_hash must be a SHA-256 in hex (64 digits)");
	return gpu_policy(p, json_object_get(v, "gpu_policy"));
}

static int k_verity_volumes(struct pctx *p, json_t *v)
{
	static const char *const names[] = {"source", "verity_root", "target", NULL};
	json_t *e;
	size_t i;

	if (!json_is_array(v))
		return bad_type(p, v, "an array of {source, verity_root, target}");
	json_array_foreach(v, i, e)
	{
		json_t *src = json_object_get(e, "source"), *root = json_object_get(e, "verity_root");
		json_t *tgt = json_object_get(e, "target");
		int r;

		if (!json_is_object(e) || !json_is_string(src) || !json_is_string(root) ||
		    !json_is_string(tgt))
			return bad_value(
			    p, "each volume is {\"source\": file, \"verity_root\": hex, \"target\": "
			       "path}");
		r = members_only(p, e, names, "a verity volume (source, verity_root, target)");
		if (r != CVM_OK)
			return r;
		if (!hex64(json_string_value(root), json_string_length(root)))
			return bad_value(p, "verity_root must be 32 bytes in hex (64 digits)");
		if (json_string_value(tgt)[0] != '/')
			return bad_value(p, "target must be an absolute path");
		for (size_t j = 0; j < i; j++)
			if (strcmp(json_string_value(json_object_get(json_array_get(v, j), "target")),
			           json_string_value(tgt)) == 0)
				return bad_value(p, "two volumes have the same target");
	}
	return CVM_OK;
}

/* The keys, in the order dstack documents them. */
static const struct {
	const char *name;
	int (*check)(struct pctx *p, json_t *v);
} KEYS[] = {
    {"manifest_version", k_manifest_version},
    {"name", k_name},
    {"features", k_features},
    {"runner", k_runner},
    {"snapshotter", k_snapshotter},
    {"docker_compose_file", k_docker_compose_file},
    {"docker_config", k_docker_config},
    {"bash_script", k_bash_script},
    {"pre_launch_script", k_string},
    {"init_script", k_init_script},
    {"public_logs", k_public_logs},
    {"public_sysinfo", k_public_sysinfo},
    {"public_tcbinfo", k_public_tcbinfo},
    {"kms_enabled", k_kms_enabled},
    {"gateway_enabled", k_gateway_enabled},
    {"tproxy_enabled", k_gateway_enabled},
    {"local_key_provider_enabled", k_local_key_provider_enabled},
    {"key_provider", k_key_provider},
    {"key_provider_id", k_key_provider_id},
    {"allowed_envs", k_allowed_envs},
    {"no_instance_id", k_no_instance_id},
    {"secure_time", k_secure_time},
    {"storage_fs", k_storage_fs},
    {"swap_size", k_swap_size},
    {"event_log_version", k_event_log_version},
    {"port_policy", k_port_policy},
    {"requirements", k_requirements},
    {"verity_volumes", k_verity_volumes},
};
#define NKEYS (sizeof(KEYS) / sizeof(KEYS[0]))

/* edit_distance is the Levenshtein distance of two short strings. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[HINT_KEY_MAX + 1];

	if (la > HINT_KEY_MAX || lb > HINT_KEY_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

static int unknown_key(struct pctx *p, const char *k)
{
	char shown[KEY_SHOW_MAX * 4 + 8];
	const char *hint = NULL;
	size_t best = 4; /* at most 3 edits away */

	show_key(k, shown, sizeof(shown));
	for (size_t i = 0; i < NKEYS; i++) {
		size_t d = edit_distance(k, KEYS[i].name);

		if (d < best) {
			best = d;
			hint = KEYS[i].name;
		}
	}
	if (hint != NULL)
		return cvm_err_set(p->err, p->err_len, CVM_E_FORMAT,
		                   "app-compose: key \"%s\" is not an app-compose key (did you mean \"%s\"?)",
		                   shown, hint);
	return cvm_err_set(p->err, p->err_len, CVM_E_FORMAT,
	                   "app-compose: key \"%s\" is not an app-compose key (a newer dstack's key? the lax "
	                   "mode accepts unknown keys)",
	                   shown);
}

/* finish checks what needs the whole file: required keys, the key provider
 * against the booleans, what manifest_version 3 must announce. */
static int finish(struct pctx *p)
{
	struct cvm_app_compose *c = p->c;
	bool lax = (p->flags & CVM_APP_PARSE_LAX) != 0;
	enum cvm_app_kp kp;

	if (!p->has_manifest && !lax)
		return cvm_err_set(
		    p->err, p->err_len, CVM_E_FORMAT,
		    "app-compose: key \"manifest_version\" is missing (2, or the string \"3\")");
	if (!p->has_name && !lax)
		return cvm_err_set(
		    p->err, p->err_len, CVM_E_FORMAT,
		    "app-compose: key \"name\" is missing (dstack's guest refuses a file without "
		    "it)");
	if (!p->has_runner && !lax)
		return cvm_err_set(p->err, p->err_len, CVM_E_FORMAT,
		                   "app-compose: key \"runner\" is missing (\"docker-compose\", \"bash\" or "
		                   "\"nerdctl-compose\")");
	if (c->name == NULL)
		c->name = strdup("");
	if (c->runner == NULL)
		c->runner = strdup("docker-compose");
	if (c->name == NULL || c->runner == NULL)
		return cvm_err_set(p->err, p->err_len, CVM_E_NOMEM, "app-compose: out of memory");
	if (!lax) {
		if (strcmp(c->runner, "bash") != 0 && c->docker_compose_file == NULL)
			return cvm_err_set(
			    p->err, p->err_len, CVM_E_FORMAT,
			    "app-compose: key \"docker_compose_file\" is missing: runner \"%s\" "
			    "starts the docker-compose YAML it holds",
			    c->runner);
		if (strcmp(c->runner, "bash") == 0 && !p->has_bash_script)
			return cvm_err_set(
			    p->err, p->err_len, CVM_E_FORMAT,
			    "app-compose: key \"bash_script\" is missing: runner \"bash\" runs it");
		if (p->has_snapshotter && strcmp(c->runner, "nerdctl-compose") != 0)
			return cvm_err_set(
			    p->err, p->err_len, CVM_E_FORMAT,
			    "app-compose: key \"snapshotter\" goes with runner \"nerdctl-compose\" "
			    "only (the guest refuses it with \"%s\")",
			    c->runner);
		if (c->manifest_version < 3 && c->has_requirements)
			return cvm_err_set(
			    p->err, p->err_len, CVM_E_FORMAT,
			    "app-compose: key \"requirements\" needs manifest_version \"3\" (a string), "
			    "so that guests too old to enforce it refuse the file instead of ignoring "
			    "it");
		if (c->manifest_version < 3 && p->init_is_array)
			return cvm_err_set(
			    p->err, p->err_len, CVM_E_FORMAT,
			    "app-compose: key \"init_script\" with several scripts needs "
			    "manifest_version \"3\" (a string), so that older guests refuse the file");
	}
	/* The key provider: key_provider when given, else the booleans. */
	kp = p->has_key_provider && c->key_provider_explicit ? c->key_provider
	     : c->kms_enabled                                ? CVM_APP_KP_KMS
	     : c->local_key_provider_enabled                 ? CVM_APP_KP_LOCAL
	                                                     : CVM_APP_KP_NONE;
	if (c->key_provider_explicit) {
		if (c->kms_enabled && kp != CVM_APP_KP_KMS)
			return cvm_err_set(
			    p->err, p->err_len, CVM_E_FORMAT,
			    "app-compose: key \"key_provider\" is \"%s\" but kms_enabled is true: "
			    "dstack would not use the KMS; set kms_enabled to false or key_provider "
			    "to \"kms\"",
			    cvm_app_kp_name(kp));
		if (c->local_key_provider_enabled && kp != CVM_APP_KP_LOCAL)
			return cvm_err_set(p->err, p->err_len, CVM_E_FORMAT,
			                   "app-compose: key \"key_provider\" is \"%s\" but "
			                   "local_key_provider_enabled is true; set one of them to agree",
			                   cvm_app_kp_name(kp));
	}
	c->key_provider = kp;
	if (!c->has_requirements)
		cvm_sha256("{}", 2, c->gpu_policy_hash);
	return CVM_OK;
}

int cvm_app_compose_parse(const uint8_t *buf, size_t len, unsigned flags, struct cvm_app_compose **out,
                          char *err, size_t err_len)
{
	struct cvm_app_compose *c = NULL;
	struct pctx p = {0};
	json_error_t jerr;
	json_t *root = NULL;
	const char *k;
	json_t *v;
	int r;

	if (out != NULL)
		*out = NULL;
	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (out == NULL || (buf == NULL && len != 0))
		return cvm_err_set(err, err_len, CVM_E_INVAL, "app-compose: no output given");
	if (len > CVM_APP_COMPOSE_MAX)
		return cvm_err_set(err, err_len, CVM_E_TOO_LARGE,
		                   "app-compose: %zu bytes, over dstack's limit of %zu bytes", len,
		                   CVM_APP_COMPOSE_MAX);
	if (max_depth(buf, len, CVM_APP_DEPTH_MAX) > CVM_APP_DEPTH_MAX)
		return cvm_err_set(err, err_len, CVM_E_FORMAT,
		                   "app-compose: arrays and objects nested deeper than %u levels",
		                   CVM_APP_DEPTH_MAX);
	root = json_loadb(len != 0 ? (const char *)buf : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "app-compose: not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
		                jerr.column);
		goto out;
	}
	if (!json_is_object(root)) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "app-compose: the file must be one JSON object, not %s", type_name(root));
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		r = cvm_err_set(err, err_len, CVM_E_NOMEM, "app-compose: out of memory");
		goto out;
	}
	cvm_app_compose_hash(buf, len, c->compose_hash);
	memcpy(c->default_app_id, c->compose_hash, CVM_APP_ID_BYTES);
	c->manifest_version = 2;
	c->public_tcbinfo = true;
	c->secure_time = true;
	c->event_log_version = 1;
	p.c = c;
	p.flags = flags;
	p.err = err;
	p.err_len = err_len;
	json_object_foreach(root, k, v)
	{
		size_t i;

		for (i = 0; i < NKEYS && strcmp(k, KEYS[i].name) != 0; i++)
			;
		if (i == NKEYS) {
			if ((flags & CVM_APP_PARSE_LAX) == 0) {
				r = unknown_key(&p, k);
				goto out;
			}
			c->n_unknown_keys++;
			continue;
		}
		p.key = KEYS[i].name;
		if (strcmp(k, "key_provider") == 0)
			p.has_key_provider = true;
		r = KEYS[i].check(&p, v);
		if (r != CVM_OK)
			goto out;
	}
	r = finish(&p);
	if (r != CVM_OK)
		goto out;
	*out = c;
	c = NULL; /* transferred */
out:
	cvm_app_compose_free(c);
	json_decref(root);
	return r;
}

void cvm_app_compose_free(struct cvm_app_compose *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->runner);
	free(c->docker_compose_file);
	free(c->key_provider_id);
	for (size_t i = 0; i < c->n_allowed_envs; i++)
		free(c->allowed_envs[i]);
	free(c->allowed_envs);
	for (size_t i = 0; i < c->n_init_scripts; i++)
		free(c->init_scripts[i]);
	free(c->init_scripts);
	free(c->storage_fs);
	free(c);
}
