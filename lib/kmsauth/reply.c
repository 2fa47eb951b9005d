/* The webhook's answers, untrusted: a bootAuth decision and the info GET. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/err.h>
#include <cvmkit/kmsauth.h>

#include "kmsauth_int.h"

/* opt_string reads o[key] as a string into `dst` (absent: ""). With
 * `exact`, a string that does not fit or is not printable ASCII is
 * refused; otherwise it is quoted and cut. */
static int opt_string(json_t *o, const char *key, char *dst, size_t cap, bool exact, char *err,
                      size_t err_len)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	dst[0] = '\0';
	if (v == NULL)
		return CVM_OK;
	if (!json_is_string(v)) {
		auth_set_err(err, err_len, "the webhook's \"%s\" is not a string", key);
		return CVM_E_FORMAT;
	}
	s = json_string_value(v);
	if (exact) {
		if (json_string_length(v) >= cap) {
			auth_set_err(err, err_len, "the webhook's \"%s\" is longer than %zu bytes", key,
			             cap - 1);
			return CVM_E_FORMAT;
		}
		for (size_t i = 0; i < json_string_length(v); i++) {
			if (s[i] < 0x20 || s[i] >= 0x7f) {
				auth_set_err(err, err_len, "the webhook's \"%s\" is not printable ASCII",
				             key);
				return CVM_E_FORMAT;
			}
		}
	}
	auth_quote(s, dst, cap);
	return CVM_OK;
}

int auth_webhook_reply_parse(const uint8_t *buf, size_t len, struct cvm_auth_decision *d, char *err,
                             size_t err_len)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	int r;

	memset(d, 0, sizeof(*d));
	if (len > CVM_AUTH_REPLY_MAX) {
		auth_set_err(err, err_len, "the webhook's answer is larger than %d bytes",
		             CVM_AUTH_REPLY_MAX);
		return CVM_E_TOO_LARGE;
	}
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		auth_set_err(err, err_len,
		             "the webhook's answer is not a JSON object (duplicate keys are refused)");
		r = CVM_E_FORMAT;
		goto out;
	}
	v = json_object_get(root, "isAllowed");
	if (!json_is_boolean(v)) {
		auth_set_err(err, err_len, "the webhook's answer has no JSON boolean \"isAllowed\"");
		r = CVM_E_FORMAT;
		goto out;
	}
	r = opt_string(root, "gatewayAppId", d->gateway_app_id, sizeof(d->gateway_app_id), true, err,
	               err_len);
	if (r == CVM_OK)
		r = opt_string(root, "reason", d->reason, sizeof(d->reason), false, err, err_len);
	if (r != CVM_OK)
		goto out;
	d->allowed = json_is_true(v);
out:
	if (r != CVM_OK)
		memset(d, 0, sizeof(*d));
	json_decref(root);
	return r;
}

int auth_webhook_info_parse(const uint8_t *buf, size_t len, struct cvm_auth_info *out, char *err,
                            size_t err_len)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > CVM_AUTH_REPLY_MAX) {
		auth_set_err(err, err_len, "the webhook's info is larger than %d bytes", CVM_AUTH_REPLY_MAX);
		return CVM_E_TOO_LARGE;
	}
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		auth_set_err(err, err_len, "the webhook's info is not a JSON object");
		r = CVM_E_FORMAT;
		goto out;
	}
	r = opt_string(root, "status", out->status, sizeof(out->status), true, err, err_len);
	if (r == CVM_OK)
		r = opt_string(root, "kmsContractAddr", out->kms_contract_addr,
		               sizeof(out->kms_contract_addr), true, err, err_len);
	if (r == CVM_OK)
		r = opt_string(root, "gatewayAppId", out->gateway_app_id, sizeof(out->gateway_app_id), true,
		               err, err_len);
	if (r == CVM_OK)
		r = opt_string(root, "appImplementation", out->app_implementation,
		               sizeof(out->app_implementation), true, err, err_len);
	if (r == CVM_OK)
		r = opt_string(root, "ethRpcUrl", out->eth_rpc_url, sizeof(out->eth_rpc_url), false, err,
		               err_len);
	if (r != CVM_OK)
		goto out;
	if (strcmp(out->status, "ok") != 0) {
		auth_set_err(err, err_len, "the webhook's status is not \"ok\"");
		r = CVM_E_FORMAT;
		goto out;
	}
	v = json_object_get(root, "chainId");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			auth_set_err(err, err_len, "the webhook's chainId is not a non-negative integer");
			r = CVM_E_FORMAT;
			goto out;
		}
		out->chain_id = (uint64_t)json_integer_value(v);
	}
out:
	if (r != CVM_OK)
		memset(out, 0, sizeof(*out));
	json_decref(root);
	return r;
}
