/* libFuzzer harness for lib/envcrypt. The first byte picks the target, the
 * rest is its input:
 *   0  cvm_env_list_from_json, without and with an allowed set
 *   1  cvm_env_list_from_dotenv
 *   2  cvm_envcrypt_open under dstack-util's test key (E-D1)
 *   3  seal the input to that key's public key, then open it
 * Whatever the input, each returns cleanly and leaves no result on error; an
 * accepted list keeps dstack's limits and every name valid, and its sealed
 * JSON parses back to the same list; an opened blob gives exactly its
 * ciphertext's length; a sealed input opens to itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/envcrypt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* dstack-util's test key (compat/encrypted-env/inline-vectors.json, E-D1) */
static const uint8_t test_key[32] = {0x7c, 0x28, 0x2b, 0xf9, 0x4b, 0x35, 0xdc, 0x47, 0x80, 0x1d, 0xc9,
                                     0x53, 0xbf, 0xa0, 0x89, 0x6f, 0xc2, 0xbd, 0x31, 0x33, 0x81, 0xd3,
                                     0xe8, 0xec, 0xa4, 0xe4, 0x2f, 0x65, 0x36, 0xd2, 0xa9, 0x6f};

static bool same_vars(const struct cvm_env_list *a, const struct cvm_env_list *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++)
		if (a->vars[i].key_len != b->vars[i].key_len ||
		    a->vars[i].value_len != b->vars[i].value_len ||
		    memcmp(a->vars[i].key, b->vars[i].key, a->vars[i].key_len) != 0 ||
		    memcmp(a->vars[i].value, b->vars[i].value, a->vars[i].value_len) != 0)
			return false;
	return true;
}

/* check_list asserts the invariants of an accepted list; `sorted` when it
 * came from JSON (sorted, unique names), so that its JSON reads back equal. */
static void check_list(const struct cvm_env_list *l, bool sorted)
{
	struct cvm_env_list *back = NULL;
	struct cvm_secret *js = NULL, *sh = NULL;
	size_t total = 0;

	if (l->count > CVM_ENV_ITEMS_MAX)
		__builtin_trap();
	for (size_t i = 0; i < l->count; i++) {
		if (!cvm_env_key_ok(l->vars[i].key, l->vars[i].key_len) ||
		    l->vars[i].value_len > CVM_ENV_VALUE_MAX ||
		    memchr(l->vars[i].value, 0, l->vars[i].value_len) != NULL ||
		    l->vars[i].value[l->vars[i].value_len])
			__builtin_trap();
		total += l->vars[i].key_len + l->vars[i].value_len;
	}
	if (total > CVM_ENV_TOTAL_MAX)
		__builtin_trap();
	if (cvm_env_list_format_shell(l, &sh) != CVM_OK)
		__builtin_trap();
	/* A list near the limits may need more JSON than a plaintext holds. */
	if (cvm_env_list_to_json(l, CVM_ENV_JSON_SEALED, &js) == CVM_OK) {
		if (cvm_env_list_from_json((const char *)js->p, js->len, NULL, &back, NULL, 0) != CVM_OK)
			__builtin_trap();
		if (sorted && !same_vars(l, back))
			__builtin_trap();
		if (back->count != l->count)
			__builtin_trap();
	}
	cvm_env_list_free(back);
	cvm_secret_free(js);
	cvm_secret_free(sh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"A", "KEY", "B_1"};
	const struct cvm_env_allowed allowed = {names, 3};
	struct cvm_env_list *l = NULL;
	struct cvm_secret *key = NULL, *plain = NULL;
	uint8_t pub[32], *blob = NULL;
	size_t blob_len = 0;
	char err[256];
	int r;

	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0:
		r = cvm_env_list_from_json((const char *)data + 1, size - 1, NULL, &l, err, sizeof(err));
		if ((r == CVM_OK) != (l != NULL) || (r != CVM_OK && err[0] == '\0'))
			__builtin_trap();
		if (l != NULL)
			check_list(l, true);
		cvm_env_list_free(l);
		l = NULL;
		r = cvm_env_list_from_json((const char *)data + 1, size - 1, &allowed, &l, err, sizeof(err));
		if ((r == CVM_OK) != (l != NULL))
			__builtin_trap();
		if (l != NULL) {
			for (size_t i = 0; i < l->count; i++)
				if (strcmp(l->vars[i].key, "A") != 0 && strcmp(l->vars[i].key, "KEY") != 0 &&
				    strcmp(l->vars[i].key, "B_1") != 0)
					__builtin_trap();
			check_list(l, true);
		}
		break;
	case 1:
		r = cvm_env_list_from_dotenv((const char *)data + 1, size - 1, &l, err, sizeof(err));
		if ((r == CVM_OK) != (l != NULL) || (r != CVM_OK && err[0] == '\0'))
			__builtin_trap();
		if (l != NULL)
			check_list(l, false);
		break;
	case 2:
	case 3:
		key = cvm_secret_new(sizeof(test_key));
		if (key == NULL)
			return 0;
		memcpy(key->p, test_key, sizeof(test_key));
		if (data[0] % 4 == 2) {
			r = cvm_envcrypt_open(key, data + 1, size - 1, &plain);
			if ((r == CVM_OK) != (plain != NULL) ||
			    (plain != NULL && plain->len + CVM_ENVCRYPT_OVERHEAD != size - 1))
				__builtin_trap();
			break;
		}
		if (cvm_x25519_pubkey(test_key, pub) != CVM_OK ||
		    cvm_envcrypt_seal(pub, data + 1, size - 1, &blob, &blob_len) != CVM_OK ||
		    cvm_envcrypt_open(key, blob, blob_len, &plain) != CVM_OK || plain->len != size - 1 ||
		    (size > 1 && memcmp(plain->p, data + 1, size - 1) != 0))
			__builtin_trap();
		break;
	}
	cvm_secret_free(plain);
	cvm_secret_free(key);
	cvm_env_list_free(l);
	free(blob);
	return 0;
}
