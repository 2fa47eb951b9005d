/* lib/envcrypt: dstack's encrypted environment and the KMS's signatures
 * over the env public key, against dstack-util's own decryption vector
 * (compat/encrypted-env/inline-vectors.json, E-D1) and values made by the
 * published @phala/dstack-sdk 0.5.8 and its @noble dependencies
 * (compat/encrypted-env/sdk-env-vectors.json: an encryptEnvVars blob,
 * JSON.stringify's bytes, keccak digests, RFC 6979 signatures and the signer
 * the SDK recovers); every truncation, extension and bit flip of a blob is
 * refused; dstack's env-list limits, allowed_envs filter and .decrypted-env
 * quoting (the cases of dstack-util's parse_env_file.rs test); the env
 * file the CLI reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/envcrypt.h>

#include "vectors.h"

#define ENV_VECTORS "compat/encrypted-env/inline-vectors.json"
#define SDK_VECTORS "compat/encrypted-env/sdk-env-vectors.json"

/* ---- helpers ------------------------------------------------------------ */

static json_t *load_json(const char *rel)
{
	size_t len = 0;
	uint8_t *buf = vector_read(rel, &len);
	json_error_t jerr;
	json_t *j = json_loadb((const char *)buf, len, 0, &jerr);

	free(buf);
	if (j == NULL)
		fail_msg("%s: %s", rel, jerr.text);
	return j;
}

static json_t *sdk_vectors(void)
{
	return load_json(SDK_VECTORS);
}

static const char *jstr(const json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	if (s == NULL)
		fail_msg("vector field %s is missing", name);
	return s;
}

/* unhex_new decodes a hex string of any length into a new buffer. */
static uint8_t *unhex_new(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2, got = 0;
	uint8_t *p = malloc(n + 1);

	assert_non_null(p);
	assert_int_equal(cvm_hex_decode(hex, strlen(hex), p, n, &got), CVM_OK);
	assert_int_equal(got, n);
	*len = n;
	return p;
}

static void unhex(const char *hex, uint8_t *out, size_t len)
{
	assert_int_equal(strlen(hex), 2 * len);
	assert_int_equal(cvm_hex_decode_exact(hex, strlen(hex), out, len), CVM_OK);
}

static struct cvm_secret *secret_hex(const char *hex)
{
	struct cvm_secret *s = cvm_secret_new(strlen(hex) / 2);

	assert_non_null(s);
	unhex(hex, s->p, s->len);
	return s;
}

/* the E-D1 blob and key */
static uint8_t *ed1_blob(size_t *len, struct cvm_secret **key)
{
	json_t *j = load_json(ENV_VECTORS);
	json_t *in = json_object_get(json_array_get(json_object_get(j, "vectors"), 0), "input");
	uint8_t *blob = unhex_new(jstr(in, "ciphertext_hex"), len);

	*key = secret_hex(jstr(in, "env_crypt_key_hex"));
	json_decref(j);
	return blob;
}

static bool secret_is(const struct cvm_secret *s, const char *text)
{
	return s != NULL && s->len == strlen(text) && memcmp(s->p, text, s->len) == 0;
}

static struct cvm_env_list *json_list(const char *json, const struct cvm_env_allowed *allowed, int want)
{
	struct cvm_env_list *l = NULL;
	char err[256];

	assert_int_equal(cvm_env_list_from_json(json, strlen(json), allowed, &l, err, sizeof(err)), want);
	if (want != CVM_OK) {
		assert_null(l);
		assert_true(err[0] != '\0');
	}
	return l;
}

static void assert_var(const struct cvm_env_list *l, size_t i, const char *key, const char *value)
{
	assert_true(i < l->count);
	assert_int_equal(l->vars[i].key_len, strlen(key));
	assert_string_equal(l->vars[i].key, key);
	assert_int_equal(l->vars[i].value_len, strlen(value));
	assert_memory_equal(l->vars[i].value, value, strlen(value));
}

/* ---- sealing and opening -------------------------------------------------- */

static void open_decrypts_dstack_util_vector(void **state)
{
	struct cvm_env_list *l = NULL;
	struct cvm_secret *key = NULL, *plain = NULL;
	size_t len = 0;
	uint8_t *blob = ed1_blob(&len, &key);

	(void)state;
	assert_int_equal(cvm_envcrypt_open(key, blob, len, &plain), CVM_OK);
	assert_true(secret_is(plain, "[{\"key\":\"\",\"value\":\"\"}]"));
	/* E-D1 is the old bare-array shape, which today's guest refuses too. */
	assert_int_equal(cvm_env_list_from_json((const char *)plain->p, plain->len, NULL, &l, NULL, 0),
	                 CVM_E_FORMAT);
	assert_null(l);
	cvm_secret_free(plain);
	cvm_secret_free(key);
	free(blob);
}

static void open_decrypts_blob_sealed_by_the_sdk(void **state)
{
	json_t *v = sdk_vectors();
	struct cvm_secret *key = secret_hex(jstr(v, "env_crypt_key_hex")), *plain = NULL;
	struct cvm_env_list *l;
	size_t len = 0;
	uint8_t *blob = unhex_new(jstr(v, "sdk_encrypted_env_hex"), &len);

	(void)state;
	assert_int_equal(cvm_envcrypt_open(key, blob, len, &plain), CVM_OK);
	assert_true(secret_is(plain, jstr(v, "sdk_plaintext_json")));
	l = json_list(jstr(v, "sdk_plaintext_json"), NULL, CVM_OK);
	/* sorted by name, as dstack's BTreeMap */
	assert_int_equal(l->count, 5);
	assert_var(l, 0, "CTRL",
	           "a\nb\tc\rd\x01"
	           "e\x1f"
	           "f\bg\fh");
	assert_var(l, 1, "EMPTY", "");
	assert_var(l, 2, "PLAIN", "v1");
	assert_var(l, 3, "QUOTED", "say \"hi\" \\ back\\slash");
	assert_var(l, 4, "UNICODE", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 /slash/ <>&'");
	cvm_env_list_free(l);
	cvm_secret_free(plain);
	cvm_secret_free(key);
	free(blob);
	json_decref(v);
}

static void sealed_json_is_byte_for_byte_json_stringify(void **state)
{
	json_t *v = sdk_vectors(), *e;
	struct cvm_env_list *l = cvm_env_list_new(4096);
	struct cvm_secret *out = NULL;
	size_t i;

	(void)state;
	assert_non_null(l);
	json_array_foreach(json_object_get(v, "env"), i, e)
	{
		const char *k = jstr(e, "key"), *val = jstr(e, "value");

		assert_int_equal(cvm_env_list_add(l, k, strlen(k), val, strlen(val)), CVM_OK);
	}
	assert_int_equal(cvm_env_list_to_json(l, CVM_ENV_JSON_SEALED, &out), CVM_OK);
	assert_true(secret_is(out, jstr(v, "sdk_plaintext_json")));
	cvm_secret_free(out);
	cvm_env_list_free(l);
	json_decref(v);
}

static void seal_then_open_round_trips(void **state)
{
	static const size_t sizes[] = {0, 1, 15, 16, 17, 4096, CVM_ENVCRYPT_PLAIN_MAX};
	json_t *v = sdk_vectors();
	struct cvm_secret *key = secret_hex(jstr(v, "env_crypt_key_hex"));
	uint8_t pub[32];

	(void)state;
	unhex(jstr(v, "env_pubkey_hex"), pub, sizeof(pub));
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint8_t *plain = malloc(sizes[k] + 1), *a = NULL, *b = NULL;
		size_t a_len = 0, b_len = 0;
		struct cvm_secret *back = NULL;

		assert_non_null(plain);
		for (size_t i = 0; i < sizes[k]; i++)
			plain[i] = (uint8_t)(i * 7 + k);
		assert_int_equal(cvm_envcrypt_seal(pub, plain, sizes[k], &a, &a_len), CVM_OK);
		assert_int_equal(a_len, sizes[k] + CVM_ENVCRYPT_OVERHEAD);
		assert_int_equal(cvm_envcrypt_open(key, a, a_len, &back), CVM_OK);
		assert_int_equal(back->len, sizes[k]);
		if (sizes[k] != 0)
			assert_memory_equal(back->p, plain, sizes[k]);
		/* a fresh ephemeral key and IV every time */
		assert_int_equal(cvm_envcrypt_seal(pub, plain, sizes[k], &b, &b_len), CVM_OK);
		assert_memory_not_equal(a, b, CVM_ENVCRYPT_PUBKEY_LEN + CVM_ENVCRYPT_IV_LEN);
		cvm_secret_free(back);
		free(a);
		free(b);
		free(plain);
	}
	cvm_secret_free(key);
	json_decref(v);
}

static void open_rejects_every_truncation_and_extension(void **state)
{
	struct cvm_secret *key = NULL, *plain = NULL;
	size_t len = 0;
	uint8_t *blob = ed1_blob(&len, &key), *longer;

	(void)state;
	for (size_t n = 0; n < len; n++) {
		assert_int_not_equal(cvm_envcrypt_open(key, blob, n, &plain), CVM_OK);
		assert_null(plain);
		if (n < CVM_ENVCRYPT_OVERHEAD)
			assert_int_equal(cvm_envcrypt_open(key, blob, n, &plain), CVM_E_TRUNCATED);
	}
	longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, blob, len);
	longer[len] = 0;
	assert_int_equal(cvm_envcrypt_open(key, longer, len + 1, &plain), CVM_E_SIGNATURE);
	assert_null(plain);
	free(longer);
	cvm_secret_free(key);
	free(blob);
}

static void open_rejects_every_bit_flip(void **state)
{
	struct cvm_secret *key = NULL, *plain = NULL;
	size_t len = 0;
	uint8_t *blob = ed1_blob(&len, &key);

	(void)state;
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			int r;

			blob[i] ^= (uint8_t)(1u << bit);
			r = cvm_envcrypt_open(key, blob, len, &plain);
			blob[i] ^= (uint8_t)(1u << bit);
			if (r == CVM_OK)
				fail_msg("byte %zu bit %u flipped and the blob still opened", i, bit);
			assert_null(plain);
		}
	}
	assert_int_equal(cvm_envcrypt_open(key, blob, len, &plain), CVM_OK);
	cvm_secret_free(plain);
	cvm_secret_free(key);
	free(blob);
}

static void open_rejects_wrong_key_zero_secret_and_oversize(void **state)
{
	struct cvm_secret *key = NULL, *plain = NULL, *other, *short_key;
	size_t len = 0;
	uint8_t *blob = ed1_blob(&len, &key), *big;

	(void)state;
	other = secret_hex("0101010101010101010101010101010101010101010101010101010101010101");
	assert_int_equal(cvm_envcrypt_open(other, blob, len, &plain), CVM_E_SIGNATURE);
	short_key = secret_hex("7c282bf94b35dc47801dc953bfa0896fc2bd313381d3e8eca4e42f6536d2a9");
	assert_int_equal(cvm_envcrypt_open(short_key, blob, len, &plain), CVM_E_INVAL);
	/* an all-zero ephemeral key (a low-order point): zero shared secret */
	memset(blob, 0, CVM_ENVCRYPT_PUBKEY_LEN);
	assert_int_equal(cvm_envcrypt_open(key, blob, len, &plain), CVM_E_FORMAT);
	/* u = 1 is a low-order point as well */
	blob[0] = 1;
	assert_int_equal(cvm_envcrypt_open(key, blob, len, &plain), CVM_E_FORMAT);
	big = calloc(1, CVM_ENVCRYPT_BLOB_MAX + 1);
	assert_non_null(big);
	assert_int_equal(cvm_envcrypt_open(key, big, CVM_ENVCRYPT_BLOB_MAX + 1, &plain), CVM_E_TOO_LARGE);
	assert_null(plain);
	free(big);
	cvm_secret_free(short_key);
	cvm_secret_free(other);
	cvm_secret_free(key);
	free(blob);
}

static void open_refuses_non_canonical_ephemeral_key(void **state)
{
	struct cvm_secret *key = NULL, *plain = NULL;
	size_t len = 0;
	uint8_t *blob = ed1_blob(&len, &key);

	(void)state;
	/* X25519 ignores the top bit: the same shared secret, so it must be
	 * refused rather than open (byte 31, bit 7 of the bit-flip test) */
	blob[31] |= 0x80;
	assert_int_equal(cvm_envcrypt_open(key, blob, len, &plain), CVM_E_FORMAT);
	/* u = p + 9 reduces to the base point 9, a valid key */
	memset(blob, 0xff, 32);
	blob[0] = 0xf6;
	blob[31] = 0x7f;
	assert_int_equal(cvm_envcrypt_open(key, blob, len, &plain), CVM_E_FORMAT);
	/* p - 2 is canonical, not of low order, and fails on the tag */
	blob[0] = 0xeb;
	assert_int_equal(cvm_envcrypt_open(key, blob, len, &plain), CVM_E_SIGNATURE);
	assert_null(plain);
	cvm_secret_free(key);
	free(blob);
}

static void seal_refuses_low_order_key_and_oversize_plaintext(void **state)
{
	static const uint8_t zero[32], one[32] = {1};
	uint8_t pub[32] = {0x09};
	uint8_t *out = NULL, *big;
	size_t out_len = 7;

	(void)state;
	assert_int_equal(cvm_envcrypt_seal(zero, (const uint8_t *)"x", 1, &out, &out_len), CVM_E_FORMAT);
	assert_int_equal(cvm_envcrypt_seal(one, (const uint8_t *)"x", 1, &out, &out_len), CVM_E_FORMAT);
	assert_null(out);
	assert_int_equal(out_len, 0);
	big = calloc(1, CVM_ENVCRYPT_PLAIN_MAX + 1);
	assert_non_null(big);
	assert_int_equal(cvm_envcrypt_seal(pub, big, CVM_ENVCRYPT_PLAIN_MAX + 1, &out, &out_len),
	                 CVM_E_TOO_LARGE);
	free(big);
}

/* ---- env lists: dstack's JSON ---------------------------------------------- */

/* big_json builds {"env":[...]} with `n` items named K<i> whose values are
 * `value_len` bytes of 'v'. */
static char *big_json(size_t n, size_t value_len, size_t key_len)
{
	size_t cap = 64 + n * (value_len + key_len + 48);
	char *s = malloc(cap);
	size_t at;

	assert_non_null(s);
	at = (size_t)snprintf(s, cap, "{\"env\":[");
	for (size_t i = 0; i < n; i++) {
		at += (size_t)snprintf(s + at, cap - at, "%s{\"key\":\"K%zu", i ? "," : "", i);
		for (size_t k = 0; k + 1 < key_len && k < 4096; k++)
			s[at++] = 'x';
		at += (size_t)snprintf(s + at, cap - at, "\",\"value\":\"");
		memset(s + at, 'v', value_len);
		at += value_len;
		at += (size_t)snprintf(s + at, cap - at, "\"}");
	}
	(void)snprintf(s + at, cap - at, "]}");
	return s;
}

static void env_json_enforces_dstack_limits(void **state)
{
	struct cvm_env_list *l;
	char *s;

	(void)state;
	s = big_json(CVM_ENV_ITEMS_MAX, 1, 1);
	l = json_list(s, NULL, CVM_OK);
	assert_int_equal(l->count, CVM_ENV_ITEMS_MAX);
	cvm_env_list_free(l);
	free(s);
	s = big_json(CVM_ENV_ITEMS_MAX + 1, 1, 1);
	(void)json_list(s, NULL, CVM_E_TOO_LARGE);
	free(s);
	/* names of 255 bytes pass, 256 do not ("K0" + x...: key_len counts the K) */
	s = big_json(1, 1, CVM_ENV_KEY_MAX - 1);
	cvm_env_list_free(json_list(s, NULL, CVM_OK));
	free(s);
	s = big_json(1, 1, CVM_ENV_KEY_MAX);
	(void)json_list(s, NULL, CVM_E_TOO_LARGE);
	free(s);
	s = big_json(1, CVM_ENV_VALUE_MAX, 1);
	cvm_env_list_free(json_list(s, NULL, CVM_OK));
	free(s);
	s = big_json(1, CVM_ENV_VALUE_MAX + 1, 1);
	(void)json_list(s, NULL, CVM_E_TOO_LARGE);
	free(s);
	/* 8 values of 128 KiB = 1 MiB plus the names: over the total */
	s = big_json(8, CVM_ENV_VALUE_MAX, 1);
	(void)json_list(s, NULL, CVM_E_TOO_LARGE);
	free(s);
	s = big_json(7, CVM_ENV_VALUE_MAX, 1);
	cvm_env_list_free(json_list(s, NULL, CVM_OK));
	free(s);
}

static void env_json_checks_names_shape_and_duplicates(void **state)
{
	static const char *const bad_names[] = {"1A", "A-B", "", "A B", "\xc3\xa9", "A=B"};
	struct cvm_env_list *l;
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		(void)snprintf(buf, sizeof(buf), "{\"env\":[{\"key\":\"%s\",\"value\":\"x\"}]}",
		               bad_names[i]);
		(void)json_list(buf, NULL, CVM_E_FORMAT);
	}
	(void)json_list("{\"env\":[{\"key\":\"A\",\"value\":1}]}", NULL, CVM_E_FORMAT);
	(void)json_list("{\"env\":[{\"key\":\"A\"}]}", NULL, CVM_E_FORMAT);
	(void)json_list("{\"env\":{}}", NULL, CVM_E_FORMAT);
	(void)json_list("{}", NULL, CVM_E_FORMAT);
	(void)json_list("{\"env\":[]} x", NULL, CVM_E_FORMAT);
	(void)json_list("{\"env\":[],\"env\":[]}", NULL, CVM_E_FORMAT);
	(void)json_list("{\"env\":[{\"key\":\"A\",\"key\":\"B\",\"value\":\"x\"}]}", NULL, CVM_E_FORMAT);
	(void)json_list("{\"env\":[{\"key\":\"A\",\"value\":\"a\\u0000b\"}]}", NULL, CVM_E_FORMAT);
	(void)json_list("{\"env\":[{\"key\":\"A\",\"value\":\"\xff\"}]}", NULL, CVM_E_FORMAT);
	/* other members are ignored, as serde ignores them; the last of two
	 * items with one name wins; the list comes out sorted */
	l = json_list(
	    "{\"v\":1,\"env\":[{\"key\":\"b\",\"value\":\"1\",\"x\":[]},{\"key\":\"B\",\"value\":\"2\"},"
	    "{\"key\":\"b\",\"value\":\"3\"},{\"key\":\"_a\",\"value\":\"4\"}]}",
	    NULL, CVM_OK);
	assert_int_equal(l->count, 3);
	assert_var(l, 0, "B", "2");
	assert_var(l, 1, "_a", "4");
	assert_var(l, 2, "b", "3");
	cvm_env_list_free(l);
}

static void env_json_filter_skips_names_and_never_reports_values(void **state)
{
	static const char *const names[] = {"KEEP", "ALSO"};
	const struct cvm_env_allowed allowed = {names, 2}, none = {names, 0};
	const char *json =
	    "{\"env\":[{\"key\":\"KEEP\",\"value\":\"k\"},{\"key\":\"DROP\",\"value\":\"SECRETVALUE\"},"
	    "{\"key\":\"bad-name\",\"value\":\"x\"},{\"key\":\"ALSO\",\"value\":\"a\"}]}";
	struct cvm_env_list *l;
	char err[256];

	(void)state;
	/* a name not allowed is skipped before it is checked, as in dstack */
	l = json_list(json, &allowed, CVM_OK);
	assert_int_equal(l->count, 2);
	assert_var(l, 0, "ALSO", "a");
	assert_var(l, 1, "KEEP", "k");
	assert_int_equal(l->skipped_count, 2);
	assert_string_equal(l->skipped[0], "DROP");
	assert_string_equal(l->skipped[1], "bad-name");
	cvm_env_list_free(l);
	/* an empty allowed set keeps nothing (dstack's empty allowed_envs) */
	l = json_list(json, &none, CVM_OK);
	assert_int_equal(l->count, 0);
	assert_int_equal(l->skipped_count, 4);
	cvm_env_list_free(l);
	/* without a filter the bad name fails; the message names no value */
	l = NULL;
	assert_int_equal(cvm_env_list_from_json(json, strlen(json), NULL, &l, err, sizeof(err)),
	                 CVM_E_FORMAT);
	assert_null(strstr(err, "SECRETVALUE"));
	assert_non_null(strstr(err, "item 2"));
}

/* ---- env lists: the env file --------------------------------------------- */

static struct cvm_env_list *dotenv(const char *text, int want, const char *err_has)
{
	struct cvm_env_list *l = NULL;
	char err[256];

	assert_int_equal(cvm_env_list_from_dotenv(text, strlen(text), &l, err, sizeof(err)), want);
	if (err_has != NULL && strstr(err, err_has) == NULL)
		fail_msg("error '%s' does not say '%s'", err, err_has);
	return l;
}

static void dotenv_reads_names_values_comments_and_quotes(void **state)
{
	struct cvm_env_list *l;

	(void)state;
	l = dotenv(
	    "# a comment\n\n  A = 1 \r\nB=\"hello world\"\nC='  x # y  '\n\t# indented comment\nD=a#b\n"
	    "E=\nF=\"\"\nG=x=y\nI='say \"hi\"'\nJ=\"'\"",
	    CVM_OK, NULL);
	assert_int_equal(l->count, 9);
	assert_var(l, 0, "A", "1");
	assert_var(l, 1, "B", "hello world");
	assert_var(l, 2, "C", "  x # y  ");
	assert_var(l, 3, "D", "a#b");
	assert_var(l, 4, "E", "");
	assert_var(l, 5, "F", "");
	assert_var(l, 6, "G", "x=y");
	assert_var(l, 7, "I", "say \"hi\"");
	assert_var(l, 8, "J", "'");
	cvm_env_list_free(l);
}

static void dotenv_refuses_what_it_would_have_to_guess(void **state)
{
	static const char nul_line[] = "A=1\nB=x\0y\n";
	struct cvm_env_list *l = NULL;
	char err[256];

	(void)state;
	(void)dotenv("A=1\nNOEQUALS\n", CVM_E_FORMAT, "line 2");
	(void)dotenv("A=1\n\nA=2\n", CVM_E_FORMAT, "line 3: A is set twice");
	(void)dotenv("1A=1\n", CVM_E_FORMAT, "line 1");
	(void)dotenv("A-B=1\n", CVM_E_FORMAT, "line 1");
	(void)dotenv("=1\n", CVM_E_FORMAT, "line 1");
	(void)dotenv("A=\"open\n", CVM_E_FORMAT, "does not close");
	(void)dotenv("A='\n", CVM_E_FORMAT, "does not close");
	(void)dotenv("A=\"mixed'\n", CVM_E_FORMAT, "does not close");
	(void)dotenv("A=\xc3\n", CVM_E_FORMAT, "UTF-8");
	(void)dotenv("A=\xed\xa0\x80\n", CVM_E_FORMAT, "UTF-8"); /* a surrogate */
	(void)dotenv("A=\xc0\xaf\n", CVM_E_FORMAT, "UTF-8");     /* overlong */
	assert_int_equal(cvm_env_list_from_dotenv(nul_line, sizeof(nul_line) - 1, &l, err, sizeof(err)),
	                 CVM_E_FORMAT);
	assert_non_null(strstr(err, "line 2"));
	assert_null(l);
}

/* ---- writing ------------------------------------------------------------------ */

static void shell_form_quotes_as_dstack(void **state)
{
	/* dstack-util parse_env_file.rs test_escape_value, and the rest of its
	 * special characters */
	static const struct {
		const char *value, *line;
	} cases[] = {
	    {"simple", "V=simple\n"},
	    {"hello world", "V=\"hello world\"\n"},
	    {"say \"hello\"", "V=\"say \\\"hello\\\"\"\n"},
	    {"line1\nline2", "V=\"line1\\nline2\"\n"},
	    {"price=$100", "V=\"price=\\$100\"\n"},
	    {"command=`date`", "V=\"command=\\`date\\`\"\n"},
	    {"a|b", "V=\"a|b\"\n"},
	    {"a;b&c<d>e(f)", "V=\"a;b&c<d>e(f)\"\n"},
	    {"it's", "V=\"it's\"\n"},
	    {"back\\slash", "V=\"back\\slash\"\n"},
	    {"tab\there", "V=\"tab\there\"\n"},
	    {"", "V=\n"},
	    {"=#*?~", "V==#*?~\n"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cvm_env_list *l = cvm_env_list_new(256);
		struct cvm_secret *out = NULL;

		assert_non_null(l);
		assert_int_equal(cvm_env_list_add(l, "V", 1, cases[i].value, strlen(cases[i].value)), CVM_OK);
		assert_int_equal(cvm_env_list_format_shell(l, &out), CVM_OK);
		if (!secret_is(out, cases[i].line))
			fail_msg("value %zu: got '%.*s', want '%s'", i, (int)out->len, (const char *)out->p,
			         cases[i].line);
		cvm_secret_free(out);
		cvm_env_list_free(l);
	}
}

static void map_form_is_decrypted_env_json(void **state)
{
	struct cvm_env_list *l = json_list("{\"env\":[{\"key\":\"B\",\"value\":\"q\\\"\\n\\u0002\"},"
	                                   "{\"key\":\"A\",\"value\":\"\xc3\xa9\"}]}",
	                                   NULL, CVM_OK);
	struct cvm_secret *out = NULL;

	(void)state;
	assert_int_equal(cvm_env_list_to_json(l, CVM_ENV_JSON_MAP, &out), CVM_OK);
	assert_true(secret_is(out, "{\"A\":\"\xc3\xa9\",\"B\":\"q\\\"\\n\\u0002\"}"));
	cvm_secret_free(out);
	assert_int_equal(cvm_env_list_format_shell(l, &out), CVM_OK);
	assert_true(secret_is(out, "A=\xc3\xa9\nB=\"q\\\"\\n\x02\"\n"));
	cvm_secret_free(out);
	cvm_env_list_free(l);
}

static void env_list_add_refuses_duplicates_and_limits(void **state)
{
	struct cvm_env_list *l = cvm_env_list_new(2 * CVM_ENV_TOTAL_MAX);
	char *big = malloc(CVM_ENV_VALUE_MAX + 1);
	char name[16];

	(void)state;
	assert_non_null(l);
	assert_non_null(big);
	memset(big, 'v', CVM_ENV_VALUE_MAX + 1);
	assert_int_equal(cvm_env_list_add(l, "A", 1, "1", 1), CVM_OK);
	assert_int_equal(cvm_env_list_add(l, "A", 1, "2", 1), CVM_E_FORMAT);
	assert_int_equal(cvm_env_list_add(l, "B", 1, big, CVM_ENV_VALUE_MAX + 1), CVM_E_TOO_LARGE);
	assert_int_equal(cvm_env_list_add(l, "B", 1, "a\0b", 3), CVM_E_FORMAT);
	for (int i = 0; i < 7; i++) {
		(void)snprintf(name, sizeof(name), "V%d", i);
		assert_int_equal(cvm_env_list_add(l, name, strlen(name), big, CVM_ENV_VALUE_MAX), CVM_OK);
	}
	/* the eighth 128 KiB value passes 1 MiB in all */
	assert_int_equal(cvm_env_list_add(l, "V7", 2, big, CVM_ENV_VALUE_MAX), CVM_E_TOO_LARGE);
	assert_int_equal(l->count, 8);
	free(big);
	cvm_env_list_free(l);
}

/* ---- the KMS's signatures over the env public key --------------------------- */

struct sig_vec {
	uint8_t root[32], kms_pub[33], app_id[20], pub[32], sig[65], sig_v1[65];
	uint64_t ts;
};

static void load_sig_vec(struct sig_vec *s)
{
	json_t *v = sdk_vectors();

	unhex(jstr(v, "root_k256_hex"), s->root, 32);
	unhex(jstr(v, "sdk_recovered_v1") + 2, s->kms_pub, 33);
	unhex(jstr(v, "app_id_hex"), s->app_id, 20);
	unhex(jstr(v, "env_pubkey_hex"), s->pub, 32);
	unhex(jstr(v, "signature_hex"), s->sig, 65);
	unhex(jstr(v, "signature_v1_hex"), s->sig_v1, 65);
	s->ts = (uint64_t)json_integer_value(json_object_get(v, "timestamp"));
	assert_string_equal(jstr(v, "sdk_recovered_legacy"), jstr(v, "sdk_recovered_v1"));
	json_decref(v);
}

static void pubkey_digests_match_the_sdk(void **state)
{
	json_t *v = sdk_vectors();
	struct sig_vec s;
	uint8_t d[32], want[32];

	(void)state;
	load_sig_vec(&s);
	cvm_envcrypt_pubkey_digest(s.app_id, s.pub, false, s.ts, d);
	unhex(jstr(v, "digest_legacy_hex"), want, 32);
	assert_memory_equal(d, want, 32);
	cvm_envcrypt_pubkey_digest(s.app_id, s.pub, true, s.ts, d);
	unhex(jstr(v, "digest_v1_hex"), want, 32);
	assert_memory_equal(d, want, 32);
	/* the timestamp is big-endian and matters */
	cvm_envcrypt_pubkey_digest(s.app_id, s.pub, true, s.ts + 1, d);
	assert_memory_not_equal(d, want, 32);
	json_decref(v);
}

static void pubkey_sign_equals_the_sdks_rfc6979_signatures(void **state)
{
	struct sig_vec s;
	uint8_t sig[65], sig_v1[65], k256_pub[33];

	(void)state;
	load_sig_vec(&s);
	assert_int_equal(cvm_k256_pubkey(s.root, k256_pub), CVM_OK);
	assert_memory_equal(k256_pub, s.kms_pub, 33);
	assert_int_equal(cvm_envcrypt_pubkey_sign(s.root, s.app_id, s.pub, s.ts, sig, sig_v1), CVM_OK);
	assert_memory_equal(sig, s.sig, 65);
	assert_memory_equal(sig_v1, s.sig_v1, 65);
	memset(s.root, 0, 32);
	assert_int_equal(cvm_envcrypt_pubkey_sign(s.root, s.app_id, s.pub, s.ts, sig, sig_v1), CVM_E_FORMAT);
	assert_true(sig[0] == 0 && sig_v1[64] == 0);
}

static void pubkey_verify_accepts_fresh_v1_and_rejects_everything_else(void **state)
{
	struct sig_vec s;
	uint8_t other[33], bad[65];
	char err[256];

	(void)state;
	load_sig_vec(&s);
#define VERIFY(pub_, app_, key_, sig_, v1_, ts_, now_, age_) \
	cvm_envcrypt_pubkey_verify(pub_, app_, key_, sig_, v1_, ts_, now_, age_, err, sizeof(err))
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig_v1, s.ts, s.ts, 300), CVM_OK);
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, NULL, s.sig_v1, s.ts, s.ts + 300, 300), CVM_OK);
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, NULL, s.sig_v1, s.ts, s.ts - 60, 300), CVM_OK);
	/* stale, and too far in the future */
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig_v1, s.ts, s.ts + 301, 300),
	                 CVM_E_POLICY);
	assert_non_null(strstr(err, "301 s old"));
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig_v1, s.ts, s.ts - 61, 300),
	                 CVM_E_POLICY);
	assert_non_null(strstr(err, "future"));
	/* another app id, env key, KMS key or timestamp */
	s.app_id[19] ^= 1;
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig_v1, s.ts, s.ts, 300),
	                 CVM_E_SIGNATURE);
	s.app_id[19] ^= 1;
	s.pub[0] ^= 1;
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig_v1, s.ts, s.ts, 300),
	                 CVM_E_SIGNATURE);
	s.pub[0] ^= 1;
	memset(bad, 0x11, 32);
	assert_int_equal(cvm_k256_pubkey(bad, other), CVM_OK);
	assert_int_equal(VERIFY(other, s.app_id, s.pub, s.sig, s.sig_v1, s.ts, s.ts, 300), CVM_E_SIGNATURE);
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig_v1, s.ts + 1, s.ts, 300),
	                 CVM_E_SIGNATURE);
	/* the legacy signature where signature_v1 belongs, a changed byte */
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig, s.ts, s.ts, 300), CVM_E_SIGNATURE);
	memcpy(bad, s.sig_v1, 65);
	bad[64] ^= 1;
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, bad, s.ts, s.ts, 300), CVM_E_SIGNATURE);
	memset(bad, 0, 65);
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, bad, s.ts, s.ts, 300), CVM_E_SIGNATURE);
	/* a key that is not a point */
	memset(other, 0, 33);
	other[0] = 5; /* no such SEC1 prefix */
	assert_int_equal(VERIFY(other, s.app_id, s.pub, s.sig, s.sig_v1, s.ts, s.ts, 300), CVM_E_FORMAT);
}

static void pubkey_verify_uses_the_legacy_signature_only_when_asked(void **state)
{
	struct sig_vec s;
	char err[256];

	(void)state;
	load_sig_vec(&s);
	/* no signature_v1: refused unless max age 0 */
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, NULL, 0, s.ts, 300), CVM_E_POLICY);
	assert_non_null(strstr(err, "signature_v1"));
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, NULL, 0, s.ts, 0), CVM_OK);
	s.pub[31] ^= 1;
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, NULL, 0, s.ts, 0), CVM_E_SIGNATURE);
	s.pub[31] ^= 1;
	/* max age 0 with signature_v1: the v1 signature is still checked, the
	 * age is not */
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig_v1, s.ts, s.ts + 86400 * 365, 0),
	                 CVM_OK);
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, s.sig, s.sig_v1, s.ts + 1, s.ts, 0),
	                 CVM_E_SIGNATURE);
	assert_int_equal(VERIFY(s.kms_pub, s.app_id, s.pub, NULL, NULL, 0, s.ts, 0), CVM_E_INVAL);
#undef VERIFY
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(open_decrypts_dstack_util_vector),
	    cmocka_unit_test(open_decrypts_blob_sealed_by_the_sdk),
	    cmocka_unit_test(sealed_json_is_byte_for_byte_json_stringify),
	    cmocka_unit_test(seal_then_open_round_trips),
	    cmocka_unit_test(open_rejects_every_truncation_and_extension),
	    cmocka_unit_test(open_rejects_every_bit_flip),
	    cmocka_unit_test(open_rejects_wrong_key_zero_secret_and_oversize),
	    cmocka_unit_test(open_refuses_non_canonical_ephemeral_key),
	    cmocka_unit_test(seal_refuses_low_order_key_and_oversize_plaintext),
	    cmocka_unit_test(env_json_enforces_dstack_limits),
	    cmocka_unit_test(env_json_checks_names_shape_and_duplicates),
	    cmocka_unit_test(env_json_filter_skips_names_and_never_reports_values),
	    cmocka_unit_test(dotenv_reads_names_values_comments_and_quotes),
	    cmocka_unit_test(dotenv_refuses_what_it_would_have_to_guess),
	    cmocka_unit_test(shell_form_quotes_as_dstack),
	    cmocka_unit_test(map_form_is_decrypted_env_json),
	    cmocka_unit_test(env_list_add_refuses_duplicates_and_limits),
	    cmocka_unit_test(pubkey_digests_match_the_sdk),
	    cmocka_unit_test(pubkey_sign_equals_the_sdks_rfc6979_signatures),
	    cmocka_unit_test(pubkey_verify_accepts_fresh_v1_and_rejects_everything_else),
	    cmocka_unit_test(pubkey_verify_uses_the_legacy_signature_only_when_asked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
