/* The built-in policy: dstack auth-simple's configuration file and its
 * order of checks (dstack spec §3.5, docs/kms-auth.md), held parsed in
 * memory. Where auth-simple is lenient this parser is strict, and says why:
 * an unknown key (a misspelt "devices" would silently allow every device),
 * a wrong type, or hex that is not of the field's size makes the whole file
 * malformed, and a malformed file refuses every decision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/kmsauth.h>

#include "kmsauth_int.h"

#define ZERO_ADDRESS "0x0000000000000000000000000000000000000000"
/* One string of the file (a TCB status, an advisory id), in bytes. */
#define STRING_MAX 256

static void list_free(struct auth_list *l)
{
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

static void strings_free(char **s, size_t n)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		free(s[i]);
	free(s);
}

void auth_policy_free(struct auth_policy *p)
{
	if (p == NULL)
		return;
	list_free(&p->os_images);
	list_free(&p->kms_mrs);
	list_free(&p->kms_devices);
	strings_free(p->tcb_statuses, p->tcb_status_count);
	strings_free(p->advisory_ids, p->advisory_count);
	for (size_t i = 0; p->apps != NULL && i < p->app_count; i++) {
		list_free(&p->apps[i].compose_hashes);
		list_free(&p->apps[i].devices);
	}
	free(p->apps);
	free(p);
}

/* hex_value decodes auth-simple's hex (either case, with or without 0x)
 * of exactly `n` bytes. */
static bool hex_value(const char *s, size_t l, uint8_t *out, size_t n)
{
	if (l >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		l -= 2;
	}
	return l == 2 * n && cvm_hex_decode_exact(s, l, out, n) == CVM_OK;
}

static bool keys_known(json_t *o, const char *const *keys, size_t n, const char **bad)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		bool known = false;

		(void)v;
		for (size_t i = 0; i < n; i++)
			known = known || strcmp(key, keys[i]) == 0;
		if (!known) {
			*bad = key;
			return false;
		}
	}
	return true;
}

/* get_list reads o[key] (absent: empty) as an array of hex strings of `n`
 * bytes each. */
static int get_list(json_t *o, const char *where, const char *key, size_t n, struct auth_list *l, char *err,
                    size_t err_len)
{
	json_t *a = json_object_get(o, key), *v;
	char q[80];
	size_t i;

	l->items = NULL;
	l->count = 0;
	if (a == NULL)
		return CVM_OK;
	if (!json_is_array(a)) {
		auth_set_err(err, err_len, "%s%s is not an array of hex strings", where, key);
		return CVM_E_FORMAT;
	}
	if (json_array_size(a) > CVM_AUTH_LIST_MAX) {
		auth_set_err(err, err_len, "%s%s has more than %d entries", where, key, CVM_AUTH_LIST_MAX);
		return CVM_E_TOO_LARGE;
	}
	l->items = calloc(json_array_size(a) + 1, sizeof(*l->items));
	if (l->items == NULL)
		return CVM_E_NOMEM;
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) ||
		    !hex_value(json_string_value(v), json_string_length(v), l->items[i], n)) {
			auth_quote(json_is_string(v) ? json_string_value(v) : "(not a string)", q, sizeof(q));
			auth_set_err(err, err_len, "%s%s[%zu] (\"%s\") is not %zu bytes of hex", where, key,
			             i, q, n);
			return CVM_E_FORMAT;
		}
		l->count = i + 1;
	}
	return CVM_OK;
}

/* get_strings reads o[key] (absent: `def`, a one-element default or NULL)
 * as an array of strings. */
static int get_strings(json_t *o, const char *key, const char *def, char ***out, size_t *count, char *err,
                       size_t err_len)
{
	json_t *a = json_object_get(o, key), *v;
	size_t i;

	*out = NULL;
	*count = 0;
	if (a == NULL && def == NULL)
		return CVM_OK;
	if (a != NULL && !json_is_array(a)) {
		auth_set_err(err, err_len, "%s is not an array of strings", key);
		return CVM_E_FORMAT;
	}
	if (a != NULL && json_array_size(a) > CVM_AUTH_LIST_MAX) {
		auth_set_err(err, err_len, "%s has more than %d entries", key, CVM_AUTH_LIST_MAX);
		return CVM_E_TOO_LARGE;
	}
	*out = calloc(a != NULL ? json_array_size(a) + 1 : 1, sizeof(char *));
	if (*out == NULL)
		return CVM_E_NOMEM;
	if (a == NULL) {
		(*out)[0] = strdup(def);
		if ((*out)[0] == NULL)
			return CVM_E_NOMEM;
		*count = 1;
		return CVM_OK;
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) > STRING_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			auth_set_err(err, err_len, "%s[%zu] is not a string of at most %d bytes", key, i,
			             STRING_MAX);
			return CVM_E_FORMAT;
		}
		(*out)[i] = strdup(json_string_value(v));
		if ((*out)[i] == NULL)
			return CVM_E_NOMEM;
		*count = i + 1;
	}
	return CVM_OK;
}

static int get_bool(json_t *o, const char *where, const char *key, bool *out, char *err, size_t err_len)
{
	json_t *v = json_object_get(o, key);

	*out = false;
	if (v == NULL)
		return CVM_OK;
	if (!json_is_boolean(v)) {
		auth_set_err(err, err_len, "%s%s is not true or false", where, key);
		return CVM_E_FORMAT;
	}
	*out = json_is_true(v);
	return CVM_OK;
}

static int get_text(json_t *o, const char *key, const char *def, char *dst, size_t cap, char *err,
                    size_t err_len)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (v == NULL) {
		(void)snprintf(dst, cap, "%s", def);
		return CVM_OK;
	}
	if (!json_is_string(v) || json_string_length(v) >= cap) {
		auth_set_err(err, err_len, "%s is not a string of at most %zu bytes", key, cap - 1);
		return CVM_E_FORMAT;
	}
	s = json_string_value(v);
	for (size_t i = 0; i < json_string_length(v); i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			auth_set_err(err, err_len, "%s holds a control character", key);
			return CVM_E_FORMAT;
		}
	}
	memcpy(dst, s, json_string_length(v) + 1);
	return CVM_OK;
}

static int parse_app(const char *id, json_t *v, struct auth_app *app, char *err, size_t err_len)
{
	static const char *const keys[] = {"composeHashes", "devices", "allowAnyDevice"};
	char where[80], q[48];
	const char *bad = NULL;
	int r;

	auth_quote(id, q, sizeof(q));
	(void)snprintf(where, sizeof(where), "apps[\"%s\"].", q);
	if (!hex_value(id, strlen(id), app->app_id, sizeof(app->app_id))) {
		auth_set_err(err, err_len, "apps: the key \"%s\" is not an app id (20 bytes of hex)", q);
		return CVM_E_FORMAT;
	}
	if (!json_is_object(v)) {
		auth_set_err(err, err_len, "apps[\"%s\"] is not an object", q);
		return CVM_E_FORMAT;
	}
	if (!keys_known(v, keys, sizeof(keys) / sizeof(keys[0]), &bad)) {
		auth_quote(bad, q, sizeof(q));
		auth_set_err(err, err_len,
		             "%s%s is not a key auth-simple knows (composeHashes, devices, allowAnyDevice)",
		             where, q);
		return CVM_E_FORMAT;
	}
	r = get_list(v, where, "composeHashes", 32, &app->compose_hashes, err, err_len);
	if (r == CVM_OK)
		r = get_list(v, where, "devices", 32, &app->devices, err, err_len);
	if (r == CVM_OK)
		r = get_bool(v, where, "allowAnyDevice", &app->allow_any_device, err, err_len);
	return r;
}

int auth_policy_parse(const uint8_t *buf, size_t len, struct auth_policy **out, char *err, size_t err_len)
{
	static const char *const top_keys[] = {"gatewayAppId",
	                                       "kmsContractAddr",
	                                       "chainId",
	                                       "appImplementation",
	                                       "osImages",
	                                       "allowedTcbStatuses",
	                                       "allowedAdvisoryIds",
	                                       "kms",
	                                       "apps"};
	static const char *const kms_keys[] = {"mrAggregated", "devices", "allowAnyDevice"};
	struct auth_policy *p = NULL;
	json_error_t jerr;
	json_t *root = NULL, *kms, *apps, *chain, *v;
	const char *bad = NULL, *id;
	char q[48];
	size_t i;
	int r;

	*out = NULL;
	if (len > CVM_AUTH_POLICY_MAX) {
		auth_set_err(err, err_len, "the policy is larger than %d bytes", CVM_AUTH_POLICY_MAX);
		return CVM_E_TOO_LARGE;
	}
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		auth_set_err(err, err_len, "the policy is not JSON (line %d: %s)", jerr.line, jerr.text);
		r = CVM_E_FORMAT;
		goto out;
	}
	if (!json_is_object(root)) {
		auth_set_err(err, err_len, "the policy is not a JSON object");
		r = CVM_E_FORMAT;
		goto out;
	}
	if (!keys_known(root, top_keys, sizeof(top_keys) / sizeof(top_keys[0]), &bad)) {
		auth_quote(bad, q, sizeof(q));
		auth_set_err(err, err_len,
		             "\"%s\" is not a key of auth-simple's configuration (a misspelt key is "
		             "refused rather than ignored)",
		             q);
		r = CVM_E_FORMAT;
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = get_text(root, "gatewayAppId", "", p->gateway_app_id, sizeof(p->gateway_app_id), err, err_len);
	if (r == CVM_OK)
		r = get_text(root, "kmsContractAddr", ZERO_ADDRESS, p->kms_contract_addr,
		             sizeof(p->kms_contract_addr), err, err_len);
	if (r == CVM_OK)
		r = get_text(root, "appImplementation", ZERO_ADDRESS, p->app_implementation,
		             sizeof(p->app_implementation), err, err_len);
	if (r != CVM_OK)
		goto out;
	chain = json_object_get(root, "chainId");
	if (chain != NULL) {
		if (!json_is_integer(chain) || json_integer_value(chain) < 0) {
			auth_set_err(err, err_len, "chainId is not a non-negative integer");
			r = CVM_E_FORMAT;
			goto out;
		}
		p->chain_id = (uint64_t)json_integer_value(chain);
	}
	r = get_list(root, "", "osImages", 32, &p->os_images, err, err_len);
	if (r == CVM_OK)
		r = get_strings(root, "allowedTcbStatuses", "UpToDate", &p->tcb_statuses,
		                &p->tcb_status_count, err, err_len);
	if (r == CVM_OK)
		r = get_strings(root, "allowedAdvisoryIds", NULL, &p->advisory_ids, &p->advisory_count, err,
		                err_len);
	if (r != CVM_OK)
		goto out;
	kms = json_object_get(root, "kms");
	if (kms != NULL) {
		if (!json_is_object(kms)) {
			auth_set_err(err, err_len, "kms is not an object");
			r = CVM_E_FORMAT;
			goto out;
		}
		if (!keys_known(kms, kms_keys, sizeof(kms_keys) / sizeof(kms_keys[0]), &bad)) {
			auth_quote(bad, q, sizeof(q));
			auth_set_err(
			    err, err_len,
			    "kms.%s is not a key auth-simple knows (mrAggregated, devices, allowAnyDevice)",
			    q);
			r = CVM_E_FORMAT;
			goto out;
		}
		r = get_list(kms, "kms.", "mrAggregated", 32, &p->kms_mrs, err, err_len);
		if (r == CVM_OK)
			r = get_list(kms, "kms.", "devices", 32, &p->kms_devices, err, err_len);
		if (r == CVM_OK)
			r = get_bool(kms, "kms.", "allowAnyDevice", &p->kms_allow_any_device, err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	apps = json_object_get(root, "apps");
	if (apps != NULL) {
		if (!json_is_object(apps)) {
			auth_set_err(err, err_len, "apps is not an object of app id -> app policy");
			r = CVM_E_FORMAT;
			goto out;
		}
		if (json_object_size(apps) > CVM_AUTH_LIST_MAX) {
			auth_set_err(err, err_len, "apps has more than %d entries", CVM_AUTH_LIST_MAX);
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		p->apps = calloc(json_object_size(apps) + 1, sizeof(*p->apps));
		if (p->apps == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		i = 0;
		json_object_foreach(apps, id, v)
		{
			p->app_count = i + 1; /* so that auth_policy_free frees this entry's lists */
			r = parse_app(id, v, &p->apps[i], err, err_len);
			if (r != CVM_OK)
				goto out;
			/* Two keys that differ only in case or 0x name one app: refuse. */
			for (size_t j = 0; j < i; j++) {
				if (memcmp(p->apps[j].app_id, p->apps[i].app_id, sizeof(p->apps[i].app_id)) ==
				    0) {
					auth_quote(id, q, sizeof(q));
					auth_set_err(err, err_len, "apps lists the app \"%s\" twice", q);
					r = CVM_E_FORMAT;
					goto out;
				}
			}
			i++;
		}
	}
	*out = p;
	p = NULL; /* transferred */
	r = CVM_OK;
out:
	auth_policy_free(p);
	json_decref(root);
	return r;
}

static bool list_has(const struct auth_list *l, const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < l->count; i++)
		if (memcmp(l->items[i], v, n) == 0)
			return true;
	return false;
}

static bool strings_have(char *const *s, size_t n, const char *v)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i], v) == 0)
			return true;
	return false;
}

static void deny(struct cvm_auth_decision *d, const char *reason)
{
	d->allowed = false;
	(void)snprintf(d->reason, sizeof(d->reason), "%s", reason);
}

void auth_policy_decide(const struct auth_policy *p, enum cvm_auth_kind kind, const struct cvm_boot_info *bi,
                        struct cvm_auth_decision *d)
{
	const struct auth_app *app = NULL;

	memset(d, 0, sizeof(*d));
	(void)snprintf(d->gateway_app_id, sizeof(d->gateway_app_id), "%s", p->gateway_app_id);
	if (!strings_have(p->tcb_statuses, p->tcb_status_count, bi->tcb_status)) {
		deny(d, "TCB status is not allowed");
		return;
	}
	for (size_t i = 0; i < bi->advisory_count; i++) {
		if (!strings_have(p->advisory_ids, p->advisory_count, bi->advisory_ids[i])) {
			deny(d, "advisory ID is not allowed");
			return;
		}
	}
	if (!list_has(&p->os_images, bi->os_image_hash, sizeof(bi->os_image_hash))) {
		deny(d, "OS image is not allowed");
		return;
	}
	if (kind == CVM_AUTH_KMS) {
		if (!list_has(&p->kms_mrs, bi->mr_aggregated, sizeof(bi->mr_aggregated))) {
			deny(d, "aggregated MR not allowed");
			return;
		}
		/* auth-simple: an empty device list allows every device. */
		if (!p->kms_allow_any_device && p->kms_devices.count != 0 &&
		    !list_has(&p->kms_devices, bi->device_id, sizeof(bi->device_id))) {
			deny(d, "KMS is not allowed to boot on this device");
			return;
		}
		d->allowed = true;
		return;
	}
	for (size_t i = 0; i < p->app_count; i++)
		if (memcmp(p->apps[i].app_id, bi->app_id, sizeof(bi->app_id)) == 0)
			app = &p->apps[i];
	if (app == NULL) {
		deny(d, "app not registered");
		return;
	}
	if (!list_has(&app->compose_hashes, bi->compose_hash, sizeof(bi->compose_hash))) {
		deny(d, "compose hash not allowed");
		return;
	}
	if (!app->allow_any_device && app->devices.count != 0 &&
	    !list_has(&app->devices, bi->device_id, sizeof(bi->device_id))) {
		deny(d, "app is not allowed to boot on this device");
		return;
	}
	d->allowed = true;
}
