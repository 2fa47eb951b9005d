/* libFuzzer harness for lib/kmsauth's readers of untrusted text: the policy
 * file (auth-simple's configuration), the webhook's bootAuth answer and info,
 * and the BootInfo JSON. Every input goes through all of them. Whatever the
 * input, each returns cleanly; a refused answer is never "allowed" and its
 * strings are empty; accepted strings are NUL-terminated printable text; a
 * parsed policy decides without crashing and a refusal always has a reason;
 * a parsed BootInfo writes back to JSON that parses to the same JSON. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/kmsauth.h>

#include "kmsauth/kmsauth_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			__builtin_trap();
}

static void check_policy(const uint8_t *data, size_t size)
{
	static const char *const adv[] = {"INTEL-SA-00837"};
	struct auth_policy *p = NULL;
	struct cvm_auth_decision d;
	struct cvm_boot_info bi = {.tee_variant = "dstack-tdx", .tcb_status = "UpToDate"};
	char err[256];

	if (auth_policy_parse(data, size, &p, err, sizeof(err)) != CVM_OK) {
		if (p != NULL)
			__builtin_trap();
		return;
	}
	for (int kind = CVM_AUTH_APP; kind <= CVM_AUTH_KMS; kind++) {
		for (int v = 0; v < 2; v++) {
			memset(bi.os_image_hash, v == 0 ? 0x05 : 0x00, sizeof(bi.os_image_hash));
			bi.advisory_ids = adv;
			bi.advisory_count = (size_t)v;
			auth_policy_decide(p, (enum cvm_auth_kind)kind, &bi, &d);
			check_text(d.gateway_app_id, sizeof(d.gateway_app_id));
			if (d.allowed != (d.reason[0] == '\0'))
				__builtin_trap();
		}
	}
	auth_policy_free(p);
}

static void check_reply(const uint8_t *data, size_t size)
{
	struct cvm_auth_decision d;
	struct cvm_auth_info info;
	char err[256];

	if (auth_webhook_reply_parse(data, size, &d, err, sizeof(err)) == CVM_OK) {
		check_text(d.gateway_app_id, sizeof(d.gateway_app_id));
		check_text(d.reason, sizeof(d.reason));
	} else if (d.allowed || d.reason[0] != '\0' || d.gateway_app_id[0] != '\0') {
		__builtin_trap();
	}
	if (auth_webhook_info_parse(data, size, &info, err, sizeof(err)) == CVM_OK) {
		check_text(info.status, sizeof(info.status));
		check_text(info.kms_contract_addr, sizeof(info.kms_contract_addr));
		check_text(info.gateway_app_id, sizeof(info.gateway_app_id));
		check_text(info.app_implementation, sizeof(info.app_implementation));
		check_text(info.eth_rpc_url, sizeof(info.eth_rpc_url));
	}
}

static void check_boot_info(const uint8_t *data, size_t size)
{
	struct cvm_boot_info bi, back;
	char *s = NULL, *again = NULL;

	if (cvm_boot_info_from_json((const char *)data, size, &bi, NULL, 0) != CVM_OK) {
		if (bi.owned != NULL)
			__builtin_trap();
		return;
	}
	check_text(bi.tee_variant, sizeof(bi.tee_variant));
	check_text(bi.tcb_status, sizeof(bi.tcb_status));
	if (cvm_boot_info_to_json(&bi, &s) != CVM_OK)
		__builtin_trap();
	if (cvm_boot_info_from_json(s, strlen(s), &back, NULL, 0) != CVM_OK)
		__builtin_trap();
	if (cvm_boot_info_to_json(&back, &again) != CVM_OK || strcmp(s, again) != 0)
		__builtin_trap();
	cvm_boot_info_cleanup(&back);
	cvm_boot_info_cleanup(&bi);
	free(again);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_policy(data, size);
	check_reply(data, size);
	check_boot_info(data, size);
	return 0;
}
