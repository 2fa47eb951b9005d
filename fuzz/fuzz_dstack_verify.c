/* libFuzzer harness for cvm-verifierd's POST /verify (daemons/verifier/
 * dstack.c): the input is the request body. An input that starts with
 * '{' (the fixtures, read in place) is a body whose quote is accepted by a
 * check that accepts every quote, so that the event log, app info and OS
 * image checks behind it are reached. Otherwise the first byte chooses:
 * odd, that check; even, the service's own, which has no cache here and so
 * rejects; the rest is the body.
 *
 * Invariants: the status is 200 or 400; the body is a JSON object; a 400
 * carries {"error": string}; a 200 carries is_valid, details and reason
 * (string, or null exactly when is_valid), and is_valid implies every
 * verified flag; os_image_hash_verified and event_log_verified imply
 * quote_verified, and acpi_tables_verified is never true; nothing leaks. */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/err.h>

#include "dstack_int.h"
#include "verifier.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int quote_accept(struct vd_ctx *ctx, const uint8_t *quote, size_t len, int64_t now,
                        struct cvm_dcap_result *res, struct cvm_cache_info *info, struct cvm_report *rep,
                        char *err, size_t err_len)
{
	(void)ctx, (void)quote, (void)len, (void)now, (void)info, (void)rep, (void)err, (void)err_len;
	res->authentic = true;
	return CVM_OK;
}

static bool flag(json_t *d, const char *name)
{
	json_t *v = json_object_get(d, name);

	if (!json_is_boolean(v))
		__builtin_trap();
	return json_is_true(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_config cfg;
	struct vd_ctx ctx;
	struct cvm_http_resp resp;
	json_error_t jerr;
	json_t *o, *d, *reason;
	bool valid;

	if (size == 0)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	memset(&ctx, 0, sizeof(ctx));
	memset(&resp, 0, sizeof(resp));
	cfg.at = 1767225600;
	ctx.cfg = &cfg;
	cvm_policy_init(&ctx.policy);
	if (data[0] == '{')
		dstack_verify(&ctx, data, size, &resp, quote_accept);
	else
		dstack_verify(&ctx, data + 1, size - 1, &resp,
		              (data[0] & 1) != 0 ? quote_accept : dstack_quote_cache);
	if (resp.body == NULL)
		__builtin_trap();
	o = json_loadb(resp.body, resp.body_len, 0, &jerr);
	if (!json_is_object(o))
		__builtin_trap();
	if (resp.status == 400) {
		if (!json_is_string(json_object_get(o, "error")))
			__builtin_trap();
	} else if (resp.status == 200) {
		d = json_object_get(o, "details");
		reason = json_object_get(o, "reason");
		if (!json_is_object(d) || !json_is_boolean(json_object_get(o, "is_valid")))
			__builtin_trap();
		valid = json_is_true(json_object_get(o, "is_valid"));
		if (valid != json_is_null(reason) || (!valid && !json_is_string(reason)))
			__builtin_trap();
		if (valid && !(flag(d, "quote_verified") && flag(d, "event_log_verified") &&
		               flag(d, "os_image_hash_verified")))
			__builtin_trap();
		if ((flag(d, "os_image_hash_verified") || flag(d, "event_log_verified")) &&
		    !flag(d, "quote_verified"))
			__builtin_trap();
		if (flag(d, "acpi_tables_verified"))
			__builtin_trap();
	} else {
		__builtin_trap();
	}
	json_decref(o);
	cvm_http_resp_cleanup(&resp);
	vd_ctx_close(&ctx); /* the worker's memo of the last chain labelled */
	return 0;
}
