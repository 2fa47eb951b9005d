/* libFuzzer harness for cvm_appkeys_parse_json: whatever the input, parsing
 * returns cleanly with a NUL-terminated message (non-empty on a format
 * error) and no result on error; an accepted key set has every field in
 * range, answers GetKey, and survives a write/parse round trip unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/kdf.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const struct cvm_appkeys *k)
{
	struct cvm_appkeys *again = NULL;
	struct cvm_secret *js = NULL, *js2 = NULL;
	struct cvm_getkey g;

	if (k->k256_key == NULL || k->k256_key->len != 32 || cvm_k256_seckey_check(k->k256_key->p) != CVM_OK)
		__builtin_trap();
	if (k->disk_crypt_key == NULL || k->disk_crypt_key->len != 32)
		__builtin_trap();
	if (k->env_crypt_key == NULL || (k->env_crypt_key->len != 0 && k->env_crypt_key->len != 32))
		__builtin_trap();
	if (k->k256_signature_len != 0 && (k->k256_signature_len != 65 || k->k256_signature[64] > 3))
		__builtin_trap();
	if (k->gateway_app_id == NULL || k->ca_cert == NULL || k->key_provider_key == NULL ||
	    cvm_key_provider_name(k->key_provider) == NULL || k->key_provider_id_len > CVM_APPKEYS_ID_MAX)
		__builtin_trap();
	if (cvm_kdf_get_key(k, "fuzz", 4, "p", 1, CVM_KEY_ALG_SECP256K1, 0, &g) != CVM_OK)
		__builtin_trap();
	cvm_getkey_cleanup(&g);
	/* what we write, we read back to the same bytes */
	if (cvm_appkeys_to_json(k, &js) != CVM_OK)
		__builtin_trap();
	if (cvm_appkeys_parse_json((const char *)js->p, js->len, &again, NULL, 0) != CVM_OK)
		__builtin_trap();
	if (cvm_appkeys_to_json(again, &js2) != CVM_OK || js2->len != js->len ||
	    memcmp(js->p, js2->p, js->len) != 0)
		__builtin_trap();
	cvm_secret_free(js2);
	cvm_secret_free(js);
	cvm_appkeys_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_appkeys *k = NULL;
	char err[256];
	int r;

	memset(err, 'x', sizeof(err));
	r = cvm_appkeys_parse_json((const char *)data, size, &k, err, sizeof(err));
	if (memchr(err, '\0', sizeof(err)) == NULL)
		__builtin_trap();
	if (r != CVM_OK) {
		if (k != NULL)
			__builtin_trap();
		if ((r == CVM_E_FORMAT || r == CVM_E_UNSUPPORTED || r == CVM_E_TOO_LARGE) && err[0] == '\0')
			__builtin_trap();
		return 0;
	}
	check_accepted(k);
	cvm_appkeys_free(k);
	return 0;
}
