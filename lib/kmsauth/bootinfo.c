/* dstack's PolicyBootInfo <-> JSON, as the KMS posts it to its auth API:
 * camelCase keys in the Rust struct's order, byte fields as lowercase hex
 * without 0x (serde_human_bytes), instanceId "" when the CVM has none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/kmsauth.h>

#include "kmsauth_int.h"

bool auth_is_simulated(const struct cvm_boot_info *bi)
{
	return strncmp(bi->tee_variant, CVM_AUTH_SIM_VARIANT_PREFIX, strlen(CVM_AUTH_SIM_VARIANT_PREFIX)) ==
	       0;
}

static bool field_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static int set_hex(json_t *o, const char *key, const uint8_t *p, size_t n)
{
	char *hex = cvm_hex_encode_new(p, n);
	int r;

	if (hex == NULL)
		return CVM_E_NOMEM;
	r = json_object_set_new(o, key, json_string(hex)) == 0 ? CVM_OK : CVM_E_NOMEM;
	free(hex);
	return r;
}

int cvm_boot_info_to_json(const struct cvm_boot_info *bi, char **out)
{
	json_t *o = NULL, *adv = NULL;
	char *s;
	int r;

	*out = NULL;
	if (bi == NULL || !field_terminated(bi->tee_variant, sizeof(bi->tee_variant)) ||
	    !field_terminated(bi->tcb_status, sizeof(bi->tcb_status)) ||
	    (bi->key_provider_info == NULL && bi->key_provider_info_len != 0) ||
	    (bi->advisory_ids == NULL && bi->advisory_count != 0))
		return CVM_E_INVAL;
	if (bi->key_provider_info_len > CVM_AUTH_KPI_MAX || bi->advisory_count > CVM_AUTH_ADVISORIES_MAX)
		return CVM_E_TOO_LARGE;
	o = json_object();
	adv = json_array();
	if (o == NULL || adv == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < bi->advisory_count; i++) {
		if (bi->advisory_ids[i] == NULL) {
			r = CVM_E_INVAL;
			goto out;
		}
		if (strnlen(bi->advisory_ids[i], CVM_AUTH_ADVISORY_MAX + 1) > CVM_AUTH_ADVISORY_MAX) {
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		if (json_array_append_new(adv, json_string(bi->advisory_ids[i])) != 0) {
			r = CVM_E_INVAL; /* not UTF-8 */
			goto out;
		}
	}
	r = json_object_set_new(o, "teeVariant", json_string(bi->tee_variant)) == 0 ? CVM_OK : CVM_E_INVAL;
	if (r == CVM_OK)
		r = set_hex(o, "mrAggregated", bi->mr_aggregated, sizeof(bi->mr_aggregated));
	if (r == CVM_OK)
		r = set_hex(o, "osImageHash", bi->os_image_hash, sizeof(bi->os_image_hash));
	if (r == CVM_OK)
		r = set_hex(o, "mrSystem", bi->mr_system, sizeof(bi->mr_system));
	if (r == CVM_OK)
		r = set_hex(o, "appId", bi->app_id, sizeof(bi->app_id));
	if (r == CVM_OK)
		r = set_hex(o, "composeHash", bi->compose_hash, sizeof(bi->compose_hash));
	if (r == CVM_OK)
		r = set_hex(o, "instanceId", bi->instance_id,
		            bi->has_instance_id ? sizeof(bi->instance_id) : 0);
	if (r == CVM_OK)
		r = set_hex(o, "deviceId", bi->device_id, sizeof(bi->device_id));
	if (r == CVM_OK)
		r = set_hex(o, "keyProviderInfo", bi->key_provider_info, bi->key_provider_info_len);
	if (r == CVM_OK && json_object_set_new(o, "tcbStatus", json_string(bi->tcb_status)) != 0)
		r = CVM_E_INVAL;
	if (r == CVM_OK) {
		r = json_object_set(o, "advisoryIds", adv) == 0 ? CVM_OK : CVM_E_NOMEM;
	}
	if (r != CVM_OK)
		goto out;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	*out = s;
out:
	json_decref(adv);
	json_decref(o);
	return r;
}

/* The single allocation behind a parsed BootInfo. */
struct owned {
	uint8_t kpi[CVM_AUTH_KPI_MAX];
	const char *adv_ptrs[CVM_AUTH_ADVISORIES_MAX];
	char adv[CVM_AUTH_ADVISORIES_MAX][CVM_AUTH_ADVISORY_MAX + 1];
};

static const char *const boot_keys[] = {"teeVariant",      "mrAggregated", "osImageHash", "mrSystem",
                                        "appId",           "composeHash",  "instanceId",  "deviceId",
                                        "keyProviderInfo", "tcbStatus",    "advisoryIds"};

/* get_hex decodes o[key], hex of exactly `n` bytes (with or without 0x),
 * into `dst`; `n_alt` (when not SIZE_MAX) is a second accepted size. */
static int get_hex(json_t *o, const char *key, uint8_t *dst, size_t n, size_t *got, size_t max, char *err,
                   size_t err_len)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t l;

	if (!json_is_string(v)) {
		auth_set_err(err, err_len, "BootInfo.%s is not a string", key);
		return CVM_E_FORMAT;
	}
	s = json_string_value(v);
	l = json_string_length(v);
	if (l >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		l -= 2;
	}
	if (got != NULL) {
		if (l / 2 > max) {
			auth_set_err(err, err_len, "BootInfo.%s is longer than %zu bytes", key, max);
			return CVM_E_TOO_LARGE;
		}
		n = l / 2;
		*got = n;
	}
	if (l != 2 * n || cvm_hex_decode_exact(s, l, dst, n) != CVM_OK) {
		auth_set_err(err, err_len, "BootInfo.%s is not %zu bytes of hex", key, n);
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

static int get_str(json_t *o, const char *key, char *dst, size_t cap, char *err, size_t err_len)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t l;

	if (!json_is_string(v)) {
		auth_set_err(err, err_len, "BootInfo.%s is not a string", key);
		return CVM_E_FORMAT;
	}
	s = json_string_value(v);
	l = json_string_length(v);
	if (l >= cap) {
		auth_set_err(err, err_len, "BootInfo.%s is longer than %zu bytes", key, cap - 1);
		return CVM_E_TOO_LARGE;
	}
	for (size_t i = 0; i < l; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			auth_set_err(err, err_len, "BootInfo.%s holds a control character", key);
			return CVM_E_FORMAT;
		}
	}
	memcpy(dst, s, l);
	dst[l] = '\0';
	return CVM_OK;
}

int cvm_boot_info_from_json(const char *json, size_t len, struct cvm_boot_info *bi, char *err, size_t err_len)
{
	struct owned *own = NULL;
	json_error_t jerr;
	json_t *o = NULL, *adv;
	const char *key;
	json_t *val;
	size_t n = 0;
	int r;

	memset(bi, 0, sizeof(*bi));
	auth_set_err(err, err_len, "%s", "");
	o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o)) {
		auth_set_err(err, err_len,
		             "the BootInfo is not one JSON object (duplicate keys are refused)");
		r = CVM_E_FORMAT;
		goto out;
	}
	json_object_foreach(o, key, val)
	{
		bool known = false;

		(void)val;
		for (size_t i = 0; i < sizeof(boot_keys) / sizeof(boot_keys[0]); i++)
			known = known || strcmp(key, boot_keys[i]) == 0;
		if (!known) {
			auth_set_err(err, err_len, "the BootInfo has an unknown key");
			r = CVM_E_FORMAT;
			goto out;
		}
	}
	own = calloc(1, sizeof(*own));
	if (own == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = get_str(o, "teeVariant", bi->tee_variant, sizeof(bi->tee_variant), err, err_len);
	if (r == CVM_OK)
		r = get_hex(o, "mrAggregated", bi->mr_aggregated, 32, NULL, 0, err, err_len);
	if (r == CVM_OK)
		r = get_hex(o, "osImageHash", bi->os_image_hash, 32, NULL, 0, err, err_len);
	if (r == CVM_OK)
		r = get_hex(o, "mrSystem", bi->mr_system, 32, NULL, 0, err, err_len);
	if (r == CVM_OK)
		r = get_hex(o, "appId", bi->app_id, 20, NULL, 0, err, err_len);
	if (r == CVM_OK)
		r = get_hex(o, "composeHash", bi->compose_hash, 32, NULL, 0, err, err_len);
	if (r == CVM_OK) {
		r = get_hex(o, "instanceId", bi->instance_id, 0, &n, 20, err, err_len);
		if (r == CVM_OK && n != 0 && n != 20) {
			auth_set_err(err, err_len,
			             "BootInfo.instanceId is neither empty nor 20 bytes of hex");
			r = CVM_E_FORMAT;
		}
		bi->has_instance_id = n == 20;
	}
	if (r == CVM_OK)
		r = get_hex(o, "deviceId", bi->device_id, 32, NULL, 0, err, err_len);
	if (r == CVM_OK) {
		r = get_hex(o, "keyProviderInfo", own->kpi, 0, &n, CVM_AUTH_KPI_MAX, err, err_len);
		bi->key_provider_info = n != 0 ? own->kpi : NULL;
		bi->key_provider_info_len = n;
	}
	if (r == CVM_OK)
		r = get_str(o, "tcbStatus", bi->tcb_status, sizeof(bi->tcb_status), err, err_len);
	if (r != CVM_OK)
		goto out;
	adv = json_object_get(o, "advisoryIds");
	if (!json_is_array(adv)) {
		auth_set_err(err, err_len, "BootInfo.advisoryIds is not an array");
		r = CVM_E_FORMAT;
		goto out;
	}
	if (json_array_size(adv) > CVM_AUTH_ADVISORIES_MAX) {
		auth_set_err(err, err_len, "BootInfo.advisoryIds has more than %d entries",
		             CVM_AUTH_ADVISORIES_MAX);
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	for (size_t i = 0; i < json_array_size(adv); i++) {
		json_t *tmp = json_object();

		if (tmp == NULL || json_object_set(tmp, "advisoryIds", json_array_get(adv, i)) != 0) {
			json_decref(tmp);
			r = CVM_E_NOMEM;
			goto out;
		}
		r = get_str(tmp, "advisoryIds", own->adv[i], sizeof(own->adv[i]), err, err_len);
		json_decref(tmp);
		if (r != CVM_OK)
			goto out;
		own->adv_ptrs[i] = own->adv[i];
	}
	bi->advisory_ids = own->adv_ptrs;
	bi->advisory_count = json_array_size(adv);
	bi->owned = own;
	own = NULL; /* transferred */
	r = CVM_OK;
out:
	if (r != CVM_OK)
		memset(bi, 0, sizeof(*bi));
	free(own);
	json_decref(o);
	return r;
}

void cvm_boot_info_cleanup(struct cvm_boot_info *bi)
{
	if (bi == NULL)
		return;
	free(bi->owned);
	memset(bi, 0, sizeof(*bi));
}
