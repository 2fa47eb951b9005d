/* dstack's `.appkeys.json` (spec §2, §3.4): a bounded, strict parser that
 * validates every field and wipes every copy of a secret it makes, the
 * writer of the same format, and struct cvm_appkeys' lifetime.
 *
 * jansson decodes each string into its own buffer; before the tree is
 * released, every string value in it is wiped in place (wipe_strings). The
 * parser's scratch buffers are outside our reach unless the process installs
 * cvm_kdf_json_wipe_on_free. Error messages name fields, never values: a
 * message may end up in a log. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>
#include <cvmkit/kdf.h>

#define KEY_SHOWN_MAX 32
#define WIPE_DEPTH_MAX 64

/* ---- provider kinds -------------------------------------------------------- */

struct provider_desc {
	enum cvm_key_provider kind;
	const char *tag;  /* the appkeys.json tag */
	const char *name; /* the key-provider event name */
};

static const struct provider_desc providers[] = {
    {CVM_KEY_PROVIDER_NONE, "None", "none"},
    {CVM_KEY_PROVIDER_LOCAL_SGX, "Local", "local-sgx"},
    {CVM_KEY_PROVIDER_TPM, "Tpm", "tpm"},
    {CVM_KEY_PROVIDER_KMS, "Kms", "kms"},
    {CVM_KEY_PROVIDER_LOCAL, "CvmkitLocal", "local"},
};

static const struct provider_desc *provider_by_kind(enum cvm_key_provider p)
{
	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
		if (providers[i].kind == p)
			return &providers[i];
	}
	return NULL;
}

const char *cvm_key_provider_name(enum cvm_key_provider p)
{
	const struct provider_desc *d = provider_by_kind(p);

	return d != NULL ? d->name : NULL;
}

/* ---- lifetime -------------------------------------------------------------- */

void cvm_appkeys_free(struct cvm_appkeys *k)
{
	if (k == NULL)
		return;
	cvm_secret_free(k->k256_key);
	cvm_secret_free(k->disk_crypt_key);
	cvm_secret_free(k->env_crypt_key);
	cvm_secret_free(k->key_provider_key);
	free(k->gateway_app_id);
	free(k->ca_cert);
	free(k->key_provider_id);
	free(k->kms_url);
	free(k->kms_tmp_ca_cert);
	cvm_wipe(k, sizeof(*k));
	free(k);
}

/* ---- jansson hygiene --------------------------------------------------------- */

static void *wipe_malloc(size_t n)
{
	return malloc(n);
}

static void wipe_free(void *p)
{
	if (p == NULL)
		return;
	cvm_wipe(p, malloc_usable_size(p));
	free(p);
}

void cvm_kdf_json_wipe_on_free(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}

/* wipe_strings clears every string value of the tree in place. jansson hands
 * out string values as const; the storage is the string's own heap copy,
 * which nothing reads after this. The pointer is copied, not cast, to keep
 * -Wcast-qual meaningful elsewhere. */
static void wipe_strings(json_t *v, unsigned depth)
{
	const char *key;
	json_t *child;
	size_t i;

	if (v == NULL || depth > WIPE_DEPTH_MAX)
		return;
	if (json_is_string(v)) {
		const char *c = json_string_value(v);
		char *w;

		memcpy(&w, &c, sizeof(w));
		cvm_wipe(w, json_string_length(v));
		return;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			wipe_strings(child, depth + 1);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			wipe_strings(child, depth + 1);
		}
	}
}

/* ---- error messages ---------------------------------------------------------- */

struct perr {
	char *buf;
	size_t len;
};

__attribute__((format(printf, 2, 3))) static void set_msg(struct perr *e, const char *fmt, ...)
{
	va_list ap;

	if (e->buf == NULL || e->len == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(e->buf, e->len, fmt, ap);
	va_end(ap);
}

/* fail(e, r, fmt, ...) writes the message and evaluates to `r`. A macro, so
 * that the value is visible where it is returned (static analysers do not
 * follow variadic calls). */
#define fail(e, r, ...) (set_msg((e), __VA_ARGS__), (r))

/* show_key copies an untrusted object key for a message: printable ASCII
 * only, at most KEY_SHOWN_MAX characters. Keys are names, never secrets. */
static void show_key(const char *s, char out[KEY_SHOWN_MAX + 4])
{
	size_t i;

	for (i = 0; i < KEY_SHOWN_MAX && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '"')
			out[i] = (char)c;
		else
			out[i] = '?';
	}
	if (s[i] != '\0') {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "an unknown value";
}

/* ---- field readers ------------------------------------------------------------- */

/* only_keys fails on any key of `obj` that is not in the NULL-ended `allowed`. */
static int only_keys(json_t *obj, const char *where, const char *const *allowed, struct perr *e)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		bool known = false;
		char shown[KEY_SHOWN_MAX + 4];

		for (size_t i = 0; allowed[i] != NULL && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known) {
			show_key(key, shown);
			return fail(e, CVM_E_FORMAT, "%s: unknown key \"%s\"", where, shown);
		}
	}
	return CVM_OK;
}

/* get_str finds string `key` of `obj`: NUL-free, at most `max` bytes. A
 * missing optional key gives *s = NULL. */
static int get_str(const json_t *obj, const char *where, const char *key, bool required, size_t max,
                   const char **s, size_t *len, struct perr *e)
{
	json_t *v = json_object_get(obj, key);

	*s = NULL;
	*len = 0;
	if (v == NULL) {
		if (required)
			return fail(e, CVM_E_FORMAT, "%s%s: missing", where, key);
		return CVM_OK;
	}
	if (!json_is_string(v))
		return fail(e, CVM_E_FORMAT, "%s%s: expected a string, got %s", where, key, json_kind(v));
	if (json_string_length(v) > max)
		return fail(e, CVM_E_TOO_LARGE, "%s%s: %zu bytes, more than the limit of %zu", where, key,
		            json_string_length(v), max);
	if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
		return fail(e, CVM_E_FORMAT, "%s%s: contains a NUL character", where, key);
	*s = json_string_value(v);
	*len = json_string_length(v);
	return CVM_OK;
}

/* get_hex_len: the decoded length must be one of the `count` allowed values,
 * or any value up to allowed[0] when count is 0. */
static int get_hex_len(const char *where, const char *key, size_t hex_len, const size_t *allowed,
                       size_t count, size_t max, struct perr *e)
{
	size_t n = hex_len / 2;
	bool ok = false;

	if (hex_len % 2 != 0)
		return fail(e, CVM_E_FORMAT, "%s%s: odd number of hex digits", where, key);
	if (count == 0)
		ok = n <= max;
	for (size_t i = 0; i < count; i++)
		ok = ok || n == allowed[i];
	if (!ok)
		return fail(e, CVM_E_FORMAT, "%s%s: %zu bytes, which is not an allowed length", where, key,
		            n);
	return CVM_OK;
}

/* get_hex_secret decodes hex `key` into a new secret of an allowed length. */
static int get_hex_secret(const json_t *obj, const char *key, bool required, const size_t *allowed,
                          size_t count, struct cvm_secret **out, struct perr *e)
{
	const char *s;
	size_t len;
	int r;

	*out = NULL;
	r = get_str(obj, "", key, required, 2 * CVM_APPKEYS_ID_MAX, &s, &len, e);
	if (r != CVM_OK)
		return r;
	if (s == NULL)
		len = 0; /* an absent optional key is an empty value */
	r = get_hex_len("", key, len, allowed, count, CVM_APPKEYS_ID_MAX, e);
	if (r != CVM_OK)
		return r;
	*out = cvm_secret_new(len / 2);
	if (*out == NULL)
		return CVM_E_NOMEM;
	r = cvm_hex_decode_exact(s != NULL ? s : "", len, (*out)->p, len / 2);
	if (r != CVM_OK) {
		cvm_secret_free(*out);
		*out = NULL;
		return fail(e, CVM_E_FORMAT, "%s: not hex", key);
	}
	return CVM_OK;
}

/* get_hex_bytes decodes public hex `key` (at most `max` bytes) into a new
 * buffer, or NULL when it is empty. */
static int get_hex_bytes(const json_t *obj, const char *where, const char *key, size_t max, uint8_t **out,
                         size_t *out_len, struct perr *e)
{
	const char *s;
	size_t len;
	int r;

	*out = NULL;
	*out_len = 0;
	r = get_str(obj, where, key, true, 2 * max, &s, &len, e);
	if (r != CVM_OK)
		return r;
	r = get_hex_len(where, key, len, NULL, 0, max, e);
	if (r != CVM_OK || len == 0)
		return r;
	*out = malloc(len / 2);
	if (*out == NULL)
		return CVM_E_NOMEM;
	r = cvm_hex_decode_exact(s, len, *out, len / 2);
	if (r != CVM_OK) {
		free(*out);
		*out = NULL;
		return fail(e, CVM_E_FORMAT, "%s%s: not hex", where, key);
	}
	*out_len = len / 2;
	return CVM_OK;
}

/* get_text copies string `key` into a new C string. */
static int get_text(const json_t *obj, const char *where, const char *key, size_t max, char **out,
                    struct perr *e)
{
	const char *s;
	size_t len;
	int r;

	*out = NULL;
	r = get_str(obj, where, key, true, max, &s, &len, e);
	if (r != CVM_OK)
		return r;
	*out = strndup(s, len);
	return *out == NULL ? CVM_E_NOMEM : CVM_OK;
}

/* get_certs copies string `key`, which must be "" (when allow_empty) or PEM
 * certificates. */
static int get_certs(const json_t *obj, const char *where, const char *key, bool allow_empty, char **out,
                     struct perr *e)
{
	struct cvm_cert **certs = NULL;
	size_t count = 0;
	int r;

	r = get_text(obj, where, key, CVM_APPKEYS_PEM_MAX, out, e);
	if (r != CVM_OK)
		return r;
	if ((*out)[0] == '\0' && allow_empty)
		return CVM_OK;
	r = cvm_certs_parse_pem((const uint8_t *)*out, strlen(*out), &certs, &count);
	cvm_certs_free(certs, count);
	if (r != CVM_OK) {
		free(*out);
		*out = NULL;
		return fail(e, r == CVM_E_NOMEM ? r : CVM_E_FORMAT, "%s%s: not PEM certificates (%s)", where,
		            key, cvm_strerror(r));
	}
	return CVM_OK;
}

/* get_pem_key copies string `key` into a new secret after checking that it
 * is a P-256 private key in PEM. */
static int get_pem_key(const json_t *obj, const char *where, const char *key, struct cvm_secret **out,
                       struct perr *e)
{
	struct cvm_p256_keypair *kp = NULL;
	const char *s;
	size_t len;
	int r;

	*out = NULL;
	r = get_str(obj, where, key, true, CVM_APPKEYS_PEM_MAX, &s, &len, e);
	if (r != CVM_OK)
		return r;
	r = cvm_p256_keypair_from_pem(s, len, &kp);
	cvm_p256_keypair_free(kp);
	if (r != CVM_OK)
		return fail(e, r == CVM_E_NOMEM ? r : CVM_E_FORMAT,
		            "%s%s: not a P-256 private key in PEM (%s)", where, key, cvm_strerror(r));
	*out = cvm_secret_new(len);
	if (*out == NULL)
		return CVM_E_NOMEM;
	memcpy((*out)->p, s, len);
	return CVM_OK;
}

/* ---- the parser ------------------------------------------------------------------- */

static int parse_provider(json_t *root, struct cvm_appkeys *k, struct perr *e)
{
	static const char *const none_keys[] = {"key", NULL};
	static const char *const local_keys[] = {"key", "mr", NULL};
	static const char *const tpm_keys[] = {"key", "pubkey", NULL};
	static const char *const kms_keys[] = {"url", "pubkey", "tmp_ca_key", "tmp_ca_cert", NULL};
	static const char *const cvmkit_keys[] = {"key", "id", NULL};
	const struct provider_desc *d = NULL;
	json_t *kp = json_object_get(root, "key_provider");
	const char *tag;
	json_t *body;
	char where[64], shown[KEY_SHOWN_MAX + 4];
	int r;

	if (kp == NULL)
		return fail(e, CVM_E_FORMAT, "key_provider: missing");
	if (!json_is_object(kp) || json_object_size(kp) != 1)
		return fail(e, CVM_E_FORMAT,
		            "key_provider: expected an object with exactly one provider, got %s",
		            json_is_object(kp) ? "another number of keys" : json_kind(kp));
	json_object_foreach(kp, tag, body)
	{
		for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]) && d == NULL; i++) {
			if (strcmp(tag, providers[i].tag) == 0)
				d = &providers[i];
		}
		if (d == NULL) {
			show_key(tag, shown);
			return fail(e, CVM_E_UNSUPPORTED, "key_provider: unknown provider \"%s\"", shown);
		}
		(void)snprintf(where, sizeof(where), "key_provider.%s.", d->tag);
		if (!json_is_object(body))
			return fail(e, CVM_E_FORMAT, "key_provider.%s: expected an object, got %s", d->tag,
			            json_kind(body));
		k->key_provider = d->kind;
		switch (d->kind) {
		case CVM_KEY_PROVIDER_NONE:
			r = only_keys(body, "key_provider.None", none_keys, e);
			if (r == CVM_OK)
				r = get_pem_key(body, where, "key", &k->key_provider_key, e);
			return r;
		case CVM_KEY_PROVIDER_LOCAL_SGX:
			r = only_keys(body, "key_provider.Local", local_keys, e);
			if (r == CVM_OK)
				r = get_pem_key(body, where, "key", &k->key_provider_key, e);
			if (r == CVM_OK)
				r = get_hex_bytes(body, where, "mr", CVM_APPKEYS_ID_MAX, &k->key_provider_id,
				                  &k->key_provider_id_len, e);
			return r;
		case CVM_KEY_PROVIDER_TPM:
			r = only_keys(body, "key_provider.Tpm", tpm_keys, e);
			if (r == CVM_OK)
				r = get_pem_key(body, where, "key", &k->key_provider_key, e);
			if (r == CVM_OK)
				r = get_hex_bytes(body, where, "pubkey", CVM_APPKEYS_ID_MAX,
				                  &k->key_provider_id, &k->key_provider_id_len, e);
			return r;
		case CVM_KEY_PROVIDER_KMS:
			r = only_keys(body, "key_provider.Kms", kms_keys, e);
			if (r == CVM_OK)
				r = get_text(body, where, "url", CVM_APPKEYS_TEXT_MAX, &k->kms_url, e);
			if (r == CVM_OK)
				r = get_hex_bytes(body, where, "pubkey", CVM_APPKEYS_ID_MAX,
				                  &k->key_provider_id, &k->key_provider_id_len, e);
			if (r == CVM_OK)
				r = get_pem_key(body, where, "tmp_ca_key", &k->key_provider_key, e);
			if (r == CVM_OK)
				r = get_certs(body, where, "tmp_ca_cert", false, &k->kms_tmp_ca_cert, e);
			return r;
		case CVM_KEY_PROVIDER_LOCAL:
			r = only_keys(body, "key_provider.CvmkitLocal", cvmkit_keys, e);
			if (r == CVM_OK)
				r = get_pem_key(body, where, "key", &k->key_provider_key, e);
			if (r == CVM_OK)
				r = get_hex_bytes(body, where, "id", CVM_APPKEYS_ID_MAX, &k->key_provider_id,
				                  &k->key_provider_id_len, e);
			return r;
		}
	}
	return CVM_E_INTERNAL;
}

static int parse_root(json_t *root, struct cvm_appkeys *k, struct perr *e)
{
	static const char *const root_keys[] = {
	    "disk_crypt_key", "env_crypt_key", "k256_key",     "k256_signature",
	    "gateway_app_id", "ca_cert",       "key_provider", NULL};
	static const size_t len32[] = {32};
	static const size_t len0_32[] = {0, 32};
	static const size_t sig_lens[] = {0, CVM_K256_RSIG_LEN};
	struct cvm_secret *sig = NULL;
	int r;

	if (!json_is_object(root))
		return fail(e, CVM_E_FORMAT, "appkeys: expected a JSON object, got %s", json_kind(root));
	r = only_keys(root, "appkeys", root_keys, e);
	if (r != CVM_OK)
		return r;
	r = get_hex_secret(root, "disk_crypt_key", true, len32, 1, &k->disk_crypt_key, e);
	if (r != CVM_OK)
		return r;
	r = get_hex_secret(root, "env_crypt_key", false, len0_32, 2, &k->env_crypt_key, e);
	if (r != CVM_OK)
		return r;
	r = get_hex_secret(root, "k256_key", true, len32, 1, &k->k256_key, e);
	if (r != CVM_OK)
		return r;
	if (cvm_k256_seckey_check(k->k256_key->p) != CVM_OK)
		return fail(e, CVM_E_FORMAT, "k256_key: not a valid secp256k1 secret key");
	/* the signature is public, but the reader is shared: copy it out */
	r = get_hex_secret(root, "k256_signature", true, sig_lens, 2, &sig, e);
	if (r != CVM_OK)
		return r;
	memcpy(k->k256_signature, sig->p, sig->len);
	k->k256_signature_len = sig->len;
	cvm_secret_free(sig);
	if (k->k256_signature_len != 0 && k->k256_signature[CVM_K256_SIG_LEN] > 3)
		return fail(e, CVM_E_FORMAT, "k256_signature: recovery id %u is not 0..3",
		            (unsigned)k->k256_signature[CVM_K256_SIG_LEN]);
	r = get_text(root, "", "gateway_app_id", CVM_APPKEYS_TEXT_MAX, &k->gateway_app_id, e);
	if (r != CVM_OK)
		return r;
	r = get_certs(root, "", "ca_cert", true, &k->ca_cert, e);
	if (r != CVM_OK)
		return r;
	return parse_provider(root, k, e);
}

static const char *jansson_reason(const json_error_t *jerr)
{
	switch (json_error_code(jerr)) {
	case json_error_duplicate_key:
		return "a key appears twice";
	case json_error_invalid_utf8:
		return "invalid UTF-8";
	case json_error_premature_end_of_input:
		return "the text ends early";
	case json_error_end_of_input_expected:
		return "text follows the JSON value";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "a NUL character";
	case json_error_stack_overflow:
		return "nested too deeply";
	default:
		return "invalid syntax";
	}
}

int cvm_appkeys_parse_json(const char *json, size_t len, struct cvm_appkeys **out, char *err, size_t err_len)
{
	struct perr e = {err, err_len};
	struct cvm_appkeys *k = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	int r;

	*out = NULL;
	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (json == NULL)
		return fail(&e, CVM_E_INVAL, "appkeys: no input");
	if (len > CVM_APPKEYS_JSON_MAX)
		return fail(&e, CVM_E_TOO_LARGE, "appkeys: %zu bytes, more than the limit of %zu", len,
		            CVM_APPKEYS_JSON_MAX);
	/* JSON_ALLOW_NUL would let "\u0000" into strings; get_str refuses those
	 * anyway, so the default (refuse at parse time) is kept. */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		/* jerr.text quotes the input near the error, which may be a key:
		 * report only the position and the kind of error. */
		r = fail(&e, CVM_E_FORMAT, "appkeys: not valid JSON at line %d, column %d: %s", jerr.line,
		         jerr.column, jansson_reason(&jerr));
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = parse_root(root, k, &e);
	if (r != CVM_OK)
		goto out;
	*out = k;
	k = NULL; /* transferred */
out:
	cvm_wipe(&jerr, sizeof(jerr));
	wipe_strings(root, 0);
	json_decref(root);
	cvm_appkeys_free(k);
	return r;
}

/* ---- loading ------------------------------------------------------------------------- */

int cvm_appkeys_load(const char *path, struct cvm_appkeys **out, char *err, size_t err_len)
{
	struct perr e = {err, err_len};
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0, cap = CVM_APPKEYS_JSON_MAX + 1;
	int fd = -1, r = CVM_E_SYSTEM, saved = 0;

	*out = NULL;
	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (path == NULL)
		return fail(&e, CVM_E_INVAL, "appkeys: no path");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		saved = errno;
		r = fail(&e, CVM_E_SYSTEM, "appkeys: cannot open the file: %s", strerror(saved));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		saved = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = fail(&e, CVM_E_POLICY, "appkeys: not a regular file");
		goto out;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		r = fail(&e, CVM_E_POLICY, "appkeys: mode %03o grants access to group or others (chmod 600)",
		         (unsigned)(st.st_mode & 0777));
		goto out;
	}
	buf = malloc(cap);
	if (buf == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			r = CVM_E_SYSTEM;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			r = fail(&e, CVM_E_TOO_LARGE, "appkeys: more than %zu bytes", CVM_APPKEYS_JSON_MAX);
			goto out;
		}
	}
	r = cvm_appkeys_parse_json((const char *)buf, len, out, err, err_len);
out:
	cvm_freezero(buf, cap);
	if (fd >= 0)
		close(fd);
	if (r == CVM_E_SYSTEM)
		errno = saved;
	return r;
}

/* ---- the writer ------------------------------------------------------------------------ */

static void wr_hex(struct cvm_wr *w, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		cvm_wr_u8(w, (uint8_t)digits[p[i] >> 4]);
		cvm_wr_u8(w, (uint8_t)digits[p[i] & 15]);
	}
}

/* wr_json_str writes a JSON string as serde_json does: escapes for `"`, `\`
 * and control characters, everything else (UTF-8 included) as is. */
static void wr_json_str(struct cvm_wr *w, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	cvm_wr_u8(w, '"');
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c == '"' || c == '\\') {
			cvm_wr_u8(w, '\\');
			cvm_wr_u8(w, c);
		} else if (c == '\n') {
			cvm_wr_str(w, "\\n");
		} else if (c == '\r') {
			cvm_wr_str(w, "\\r");
		} else if (c == '\t') {
			cvm_wr_str(w, "\\t");
		} else if (c < 0x20) {
			cvm_wr_str(w, "\\u00");
			cvm_wr_u8(w, (uint8_t)digits[c >> 4]);
			cvm_wr_u8(w, (uint8_t)digits[c & 15]);
		} else {
			cvm_wr_u8(w, c);
		}
	}
	cvm_wr_u8(w, '"');
}

static void wr_field_hex(struct cvm_wr *w, const char *name, const uint8_t *p, size_t n, bool first)
{
	if (!first)
		cvm_wr_u8(w, ',');
	cvm_wr_fmt(w, "\"%s\":\"", name);
	wr_hex(w, p, n);
	cvm_wr_u8(w, '"');
}

static void wr_field_str(struct cvm_wr *w, const char *name, const char *s)
{
	cvm_wr_fmt(w, ",\"%s\":", name);
	wr_json_str(w, (const uint8_t *)(s != NULL ? s : ""), s != NULL ? strlen(s) : 0);
}

static void wr_field_secret_str(struct cvm_wr *w, const char *name, const struct cvm_secret *s, bool first)
{
	if (!first)
		cvm_wr_u8(w, ',');
	cvm_wr_fmt(w, "\"%s\":", name);
	wr_json_str(w, s->p, s->len);
}

static bool secret_len_is(const struct cvm_secret *s, size_t a, size_t b)
{
	return s != NULL && (s->len == a || s->len == b);
}

int cvm_appkeys_to_json(const struct cvm_appkeys *k, struct cvm_secret **out)
{
	const struct provider_desc *d;
	struct cvm_secret *s = NULL;
	struct cvm_wr w;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if (k == NULL || !secret_len_is(k->k256_key, 32, 32) || !secret_len_is(k->disk_crypt_key, 32, 32) ||
	    (k->key_provider == CVM_KEY_PROVIDER_KMS && (k->kms_url == NULL || k->kms_tmp_ca_cert == NULL)) ||
	    (k->env_crypt_key != NULL && !secret_len_is(k->env_crypt_key, 0, 32)) ||
	    (k->k256_signature_len != 0 && k->k256_signature_len != CVM_K256_RSIG_LEN) ||
	    k->key_provider_key == NULL || k->key_provider_id_len > CVM_APPKEYS_ID_MAX ||
	    (k->key_provider_id == NULL && k->key_provider_id_len != 0))
		return CVM_E_INVAL;
	d = provider_by_kind(k->key_provider);
	if (d == NULL)
		return CVM_E_INVAL;
	cvm_wr_init(&w, 4 * CVM_APPKEYS_JSON_MAX);
	cvm_wr_u8(&w, '{');
	wr_field_hex(&w, "disk_crypt_key", k->disk_crypt_key->p, k->disk_crypt_key->len, true);
	wr_field_hex(&w, "env_crypt_key", k->env_crypt_key != NULL ? k->env_crypt_key->p : NULL,
	             k->env_crypt_key != NULL ? k->env_crypt_key->len : 0, false);
	wr_field_hex(&w, "k256_key", k->k256_key->p, k->k256_key->len, false);
	wr_field_hex(&w, "k256_signature", k->k256_signature, k->k256_signature_len, false);
	wr_field_str(&w, "gateway_app_id", k->gateway_app_id);
	wr_field_str(&w, "ca_cert", k->ca_cert);
	cvm_wr_fmt(&w, ",\"key_provider\":{\"%s\":{", d->tag);
	switch (k->key_provider) {
	case CVM_KEY_PROVIDER_NONE:
		wr_field_secret_str(&w, "key", k->key_provider_key, true);
		break;
	case CVM_KEY_PROVIDER_LOCAL_SGX:
		wr_field_secret_str(&w, "key", k->key_provider_key, true);
		wr_field_hex(&w, "mr", k->key_provider_id, k->key_provider_id_len, false);
		break;
	case CVM_KEY_PROVIDER_TPM:
		wr_field_secret_str(&w, "key", k->key_provider_key, true);
		wr_field_hex(&w, "pubkey", k->key_provider_id, k->key_provider_id_len, false);
		break;
	case CVM_KEY_PROVIDER_KMS:
		cvm_wr_str(&w, "\"url\":");
		wr_json_str(&w, (const uint8_t *)(k->kms_url != NULL ? k->kms_url : ""),
		            k->kms_url != NULL ? strlen(k->kms_url) : 0);
		wr_field_hex(&w, "pubkey", k->key_provider_id, k->key_provider_id_len, false);
		wr_field_secret_str(&w, "tmp_ca_key", k->key_provider_key, false);
		wr_field_str(&w, "tmp_ca_cert", k->kms_tmp_ca_cert);
		break;
	case CVM_KEY_PROVIDER_LOCAL:
		wr_field_secret_str(&w, "key", k->key_provider_key, true);
		wr_field_hex(&w, "id", k->key_provider_id, k->key_provider_id_len, false);
		break;
	}
	cvm_wr_str(&w, "}}}");
	r = cvm_wr_finish(&w, &buf, &len);
	if (r != CVM_OK)
		goto out;
	s = cvm_secret_new(len);
	if (s == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(s->p, buf, len);
	*out = s;
	s = NULL; /* transferred */
out:
	cvm_freezero(buf, len);
	cvm_secret_free(s);
	return r;
}
