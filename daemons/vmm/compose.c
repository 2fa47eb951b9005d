/* The one place cvm-vmmd asks about app-compose files (include/cvmkit/app.h).
 *
 * TODO(lib/app): lib/app implements include/cvmkit/app.h on another branch.
 * Until it is merged, vmm_compose_check stands in for cvm_app_compose_parse
 * (SHA-256 of the exact bytes, as cvm_app_compose_hash, and "is one JSON
 * object"), and vmm_compose_ids for cvm_app_mrconfigid (layouts 1 and 2,
 * dstack spec §5.7) and cvm_app_mrconfig_v3_hash (HOST_DATA, here SHA-256 of
 * the MRCONFIGID). The integrator switches these two functions to lib/app. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/keccak.h>

#include "vmm.h"

#define COMPOSE_MAX (256u * 1024u) /* CVM_APP_COMPOSE_MAX */

int vmm_compose_check(const uint8_t *buf, size_t len, uint8_t hash[32], char *err, size_t err_len)
{
	json_error_t je;
	json_t *j;

	memset(hash, 0, 32);
	if (len == 0) {
		(void)snprintf(err, err_len, "compose_file is empty: give the app-compose.json text");
		return CVM_E_FORMAT;
	}
	if (len > COMPOSE_MAX) {
		(void)snprintf(err, err_len, "compose_file is larger than %u bytes", COMPOSE_MAX);
		return CVM_E_TOO_LARGE;
	}
	j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(j)) {
		(void)snprintf(err, err_len, "compose_file is not one JSON object%s%s", j == NULL ? ": " : "",
		               j == NULL ? je.text : "");
		json_decref(j);
		return CVM_E_FORMAT;
	}
	json_decref(j);
	cvm_sha256(buf, len, hash);
	return CVM_OK;
}

static int kp_byte(const json_t *j)
{
	const char *kp = json_string_value(json_object_get(j, "key_provider"));

	if (kp == NULL) {
		if (json_is_true(json_object_get(j, "kms_enabled")))
			return 2;
		if (json_is_true(json_object_get(j, "local_key_provider_enabled")))
			return 1;
		return 0;
	}
	if (strcmp(kp, "kms") == 0)
		return 2;
	if (strcmp(kp, "local") == 0)
		return 1;
	if (strcmp(kp, "tpm") == 0)
		return 3;
	return strcmp(kp, "none") == 0 ? 0 : -1;
}

int vmm_compose_ids(const uint8_t *buf, size_t len, const uint8_t *app_id, uint8_t mrconfigid[48],
                    uint8_t host_data[32], char *err, size_t err_len)
{
	uint8_t hash[32], kpid[1024];
	size_t kpid_len = 0;
	const char *kpid_hex;
	json_t *j = NULL;
	int kp, r;

	memset(mrconfigid, 0, 48);
	memset(host_data, 0, 32);
	r = vmm_compose_check(buf, len, hash, err, err_len);
	if (r != CVM_OK)
		return r;
	j = json_loadb((const char *)buf, len, 0, NULL);
	kp = kp_byte(j);
	kpid_hex = json_string_value(json_object_get(j, "key_provider_id"));
	if (kp < 0) {
		(void)snprintf(err, err_len, "compose_file: key_provider is not none, kms, local or tpm");
		r = CVM_E_FORMAT;
		goto out;
	}
	if (kpid_hex != NULL && kpid_hex[0] != '\0' &&
	    cvm_hex_decode(kpid_hex, strlen(kpid_hex), kpid, sizeof(kpid), &kpid_len) != CVM_OK) {
		(void)snprintf(err, err_len, "compose_file: key_provider_id is not hex of at most %zu bytes",
		               sizeof(kpid));
		r = CVM_E_FORMAT;
		goto out;
	}
	if (kpid_len == 0) {
		mrconfigid[0] = 1;
		memcpy(mrconfigid + 1, hash, 32);
	} else {
		struct cvm_keccak256_ctx k;
		uint8_t b = (uint8_t)kp;

		cvm_keccak256_init(&k);
		cvm_keccak256_update(&k, hash, 32);
		cvm_keccak256_update(&k, app_id != NULL ? app_id : hash, 20);
		cvm_keccak256_update(&k, &b, 1);
		cvm_keccak256_update(&k, kpid, kpid_len);
		mrconfigid[0] = 2;
		cvm_keccak256_final(&k, mrconfigid + 1);
	}
	cvm_sha256(mrconfigid, 48, host_data);
	r = CVM_OK;
out:
	json_decref(j);
	return r;
}
