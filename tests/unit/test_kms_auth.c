/* lib/kmsauth: the policy file's semantics case by case in dstack
 * auth-simple's order (TCB status, advisories, OS image, then the KMS's
 * aggregated MR and device or the app's registration, compose hash and
 * device), each refusal's reason, the strict parsing of the file and its
 * re-reading on change; BootInfo's JSON against a hand-written string; the
 * webhook's answer parsing; the options and the fail-closed errors.
 * tests/integration/kms_auth_webhook.sh and kms_auth_chain.sh run the
 * webhook and chain authorizers against live peers. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/err.h>
#include <cvmkit/kmsauth.h>

#include "kmsauth/kmsauth_int.h"

/* x expands the JSON template `t`: "@XY" is 32 bytes XY in hex, "%XY" 20
 * bytes. The result lives until the test group ends. */
static char *expanded[256];
static size_t expanded_count;

static const char *x(const char *t)
{
	size_t n = strlen(t), k = 0;
	char *s = malloc(n * 32 + 1);

	assert_non_null(s);
	assert_true(expanded_count < sizeof(expanded) / sizeof(expanded[0]));
	for (size_t i = 0; i < n; i++) {
		if ((t[i] == '@' || t[i] == '%') && i + 2 < n) {
			for (int j = 0; j < (t[i] == '@' ? 32 : 20); j++) {
				s[k++] = t[i + 1];
				s[k++] = t[i + 2];
			}
			i += 2;
		} else {
			s[k++] = t[i];
		}
	}
	s[k] = '\0';
	expanded[expanded_count++] = s;
	return s;
}

static int free_expanded(void **state)
{
	(void)state;
	for (size_t i = 0; i < expanded_count; i++)
		free(expanded[i]);
	expanded_count = 0;
	return 0;
}

/* The policy of these tests: OS image 05.., KMS MR a0.. on device d0..,
 * app a1.. (compose c0.., device d0..), app a2.. (any device), app a3..
 * (no device list); TCB UpToDate or OutOfDate; advisory INTEL-SA-00837. */
static const char policy_tmpl[] =
    "{\"gatewayAppId\": \"gw-1\", \"chainId\": 7,"
    " \"osImages\": [\"0x@05\"],"
    " \"allowedTcbStatuses\": [\"UpToDate\", \"OutOfDate\"],"
    " \"allowedAdvisoryIds\": [\"INTEL-SA-00837\"],"
    " \"kms\": {\"mrAggregated\": [\"@A0\"], \"devices\": [\"0X@d0\"]},"
    " \"apps\": {\"%A1\": {\"composeHashes\": [\"0x@c0\"], \"devices\": [\"@d0\"]},"
    "          \"0x%a2\": {\"composeHashes\": [\"@C0\"], \"allowAnyDevice\": true},"
    "          \"%a3\": {\"composeHashes\": [\"@c0\"]}}}";

static const char *policy_json(void)
{
	return x(policy_tmpl);
}

static const char *const one_advisory[] = {"INTEL-SA-00837"};
static const char *const bad_advisory[] = {"INTEL-SA-00837", "INTEL-SA-00615"};

static void base_bi(struct cvm_boot_info *bi)
{
	memset(bi, 0, sizeof(*bi));
	(void)snprintf(bi->tee_variant, sizeof(bi->tee_variant), "dstack-tdx");
	memset(bi->mr_aggregated, 0xa0, 32);
	memset(bi->os_image_hash, 0x05, 32);
	memset(bi->mr_system, 0x5e, 32);
	memset(bi->compose_hash, 0xc0, 32);
	memset(bi->device_id, 0xd0, 32);
	memset(bi->app_id, 0xa1, 20);
	memset(bi->instance_id, 0xee, 20);
	bi->has_instance_id = true;
	(void)snprintf(bi->tcb_status, sizeof(bi->tcb_status), "UpToDate");
}

static struct auth_policy *load_policy(const char *json)
{
	struct auth_policy *p = NULL;
	char err[256] = "";

	assert_int_equal(auth_policy_parse((const uint8_t *)json, strlen(json), &p, err, sizeof(err)),
	                 CVM_OK);
	assert_non_null(p);
	return p;
}

/* expect_decision applies the test policy to `bi` and checks the answer:
 * `reason` NULL means allowed. */
static void expect_decision(const struct auth_policy *p, enum cvm_auth_kind kind,
                            const struct cvm_boot_info *bi, const char *reason)
{
	struct cvm_auth_decision d;

	memset(&d, 0x55, sizeof(d));
	auth_policy_decide(p, kind, bi, &d);
	assert_string_equal(d.gateway_app_id, "gw-1");
	if (reason == NULL) {
		assert_true(d.allowed);
		assert_string_equal(d.reason, "");
	} else {
		assert_false(d.allowed);
		assert_string_equal(d.reason, reason);
	}
}

static void policy_allows_the_registered_app_and_kms_node(void **state)
{
	struct auth_policy *p = load_policy(policy_json());
	struct cvm_boot_info bi;

	(void)state;
	base_bi(&bi);
	expect_decision(p, CVM_AUTH_APP, &bi, NULL);
	expect_decision(p, CVM_AUTH_KMS, &bi, NULL);
	bi.has_instance_id = false;
	expect_decision(p, CVM_AUTH_APP, &bi, NULL);
	auth_policy_free(p);
}

static void policy_checks_the_tcb_status_first_and_exactly(void **state)
{
	struct auth_policy *p = load_policy(policy_json());
	struct cvm_boot_info bi;

	(void)state;
	base_bi(&bi);
	(void)snprintf(bi.tcb_status, sizeof(bi.tcb_status), "SWHardeningNeeded");
	expect_decision(p, CVM_AUTH_APP, &bi, "TCB status is not allowed");
	(void)snprintf(bi.tcb_status, sizeof(bi.tcb_status), "uptodate");
	expect_decision(p, CVM_AUTH_APP, &bi, "TCB status is not allowed");
	(void)snprintf(bi.tcb_status, sizeof(bi.tcb_status), "%s", "");
	expect_decision(p, CVM_AUTH_KMS, &bi, "TCB status is not allowed");
	/* Before everything else: the OS image, the app and the advisories are
	 * wrong as well. */
	(void)snprintf(bi.tcb_status, sizeof(bi.tcb_status), "Revoked");
	bi.os_image_hash[0] ^= 1;
	memset(bi.app_id, 0x11, 20);
	bi.advisory_ids = bad_advisory;
	bi.advisory_count = 2;
	expect_decision(p, CVM_AUTH_APP, &bi, "TCB status is not allowed");
	auth_policy_free(p);
}

static void policy_checks_every_advisory_before_the_os_image(void **state)
{
	struct auth_policy *p = load_policy(policy_json());
	struct cvm_boot_info bi;

	(void)state;
	base_bi(&bi);
	(void)snprintf(bi.tcb_status, sizeof(bi.tcb_status), "OutOfDate");
	bi.advisory_ids = one_advisory;
	bi.advisory_count = 1;
	expect_decision(p, CVM_AUTH_APP, &bi, NULL);
	bi.advisory_ids = bad_advisory;
	bi.advisory_count = 2;
	expect_decision(p, CVM_AUTH_APP, &bi, "advisory ID is not allowed");
	bi.os_image_hash[31] ^= 1;
	expect_decision(p, CVM_AUTH_KMS, &bi, "advisory ID is not allowed");
	auth_policy_free(p);
}

static void policy_checks_the_os_image_before_the_kms_or_app_rules(void **state)
{
	struct auth_policy *p = load_policy(policy_json());
	struct cvm_boot_info bi;

	(void)state;
	base_bi(&bi);
	bi.os_image_hash[31] = 0x06;
	expect_decision(p, CVM_AUTH_APP, &bi, "OS image is not allowed");
	memset(bi.app_id, 0x11, 20);
	memset(bi.mr_aggregated, 0xa1, 32);
	expect_decision(p, CVM_AUTH_APP, &bi, "OS image is not allowed");
	expect_decision(p, CVM_AUTH_KMS, &bi, "OS image is not allowed");
	auth_policy_free(p);
}

static void policy_kms_needs_an_allowed_mr_and_device(void **state)
{
	struct auth_policy *p = load_policy(policy_json());
	struct cvm_boot_info bi;

	(void)state;
	base_bi(&bi);
	/* The apps do not matter to a KMS node. */
	memset(bi.app_id, 0x11, 20);
	memset(bi.compose_hash, 0xc1, 32);
	expect_decision(p, CVM_AUTH_KMS, &bi, NULL);
	bi.mr_aggregated[0] = 0xa1;
	expect_decision(p, CVM_AUTH_KMS, &bi, "aggregated MR not allowed");
	bi.device_id[5] = 0xd1; /* the MR is checked first */
	expect_decision(p, CVM_AUTH_KMS, &bi, "aggregated MR not allowed");
	bi.mr_aggregated[0] = 0xa0;
	expect_decision(p, CVM_AUTH_KMS, &bi, "KMS is not allowed to boot on this device");
	auth_policy_free(p);
}

static void policy_kms_with_no_mr_list_denies_every_node(void **state)
{
	struct auth_policy *p =
	    load_policy(x("{\"osImages\": [\"@05\"], \"kms\": {\"allowAnyDevice\": true}}"));
	struct auth_policy *q =
	    load_policy(x("{\"osImages\": [\"@05\"], \"kms\": {\"mrAggregated\": [\"@a0\"]}}"));
	struct cvm_auth_decision d;
	struct cvm_boot_info bi;

	(void)state;
	base_bi(&bi);
	auth_policy_decide(p, CVM_AUTH_KMS, &bi, &d);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "aggregated MR not allowed");
	/* No device list and allowAnyDevice false: auth-simple allows any device. */
	bi.device_id[0] = 0x77;
	auth_policy_decide(q, CVM_AUTH_KMS, &bi, &d);
	assert_true(d.allowed);
	assert_string_equal(d.gateway_app_id, "");
	auth_policy_free(p);
	auth_policy_free(q);
}

static void policy_app_must_be_registered_with_its_compose_hash_and_device(void **state)
{
	struct auth_policy *p = load_policy(policy_json());
	struct cvm_boot_info bi;

	(void)state;
	base_bi(&bi);
	memset(bi.app_id, 0x11, 20);
	expect_decision(p, CVM_AUTH_APP, &bi, "app not registered");
	memset(bi.app_id, 0xa1, 20);
	memset(bi.compose_hash, 0xc1, 32);
	expect_decision(p, CVM_AUTH_APP, &bi, "compose hash not allowed");
	memset(bi.device_id, 0xd1, 32); /* the compose hash is checked first */
	expect_decision(p, CVM_AUTH_APP, &bi, "compose hash not allowed");
	memset(bi.compose_hash, 0xc0, 32);
	expect_decision(p, CVM_AUTH_APP, &bi, "app is not allowed to boot on this device");
	/* allowAnyDevice, and an app with no device list: any device. */
	memset(bi.app_id, 0xa2, 20);
	expect_decision(p, CVM_AUTH_APP, &bi, NULL);
	memset(bi.app_id, 0xa3, 20);
	expect_decision(p, CVM_AUTH_APP, &bi, NULL);
	auth_policy_free(p);
}

static void policy_defaults_allow_only_uptodate_and_no_os_image(void **state)
{
	struct auth_policy *p = load_policy("{}");
	struct cvm_auth_decision d;
	struct cvm_boot_info bi;

	(void)state;
	base_bi(&bi);
	auth_policy_decide(p, CVM_AUTH_APP, &bi, &d);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "OS image is not allowed");
	(void)snprintf(bi.tcb_status, sizeof(bi.tcb_status), "OutOfDate");
	auth_policy_decide(p, CVM_AUTH_APP, &bi, &d);
	assert_string_equal(d.reason, "TCB status is not allowed");
	assert_string_equal(p->kms_contract_addr, "0x0000000000000000000000000000000000000000");
	auth_policy_free(p);
}

static void policy_parse_refuses_what_auth_simple_would_misread(void **state)
{
	static const struct {
		const char *json;
		const char *err;
	} bad[] = {
	    {"", "the policy is not JSON"},
	    {"[]", "the policy is not a JSON object"},
	    {"{\"osImage\": []}", "\"osImage\" is not a key of auth-simple's configuration"},
	    {"{\"kms\": {\"device\": []}}", "kms.device is not a key"},
	    {"{\"apps\": {\"%a1\": {\"devices\": [], \"allowAnyDevices\": true}}}", "apps[\""},
	    {"{\"osImages\": \"@05\"}", "osImages is not an array"},
	    {"{\"osImages\": [\"@050\"]}", "osImages[0] (\""},
	    {"{\"osImages\": [\"0x%05\"]}", "is not 32 bytes of hex"},
	    {"{\"osImages\": [5]}", "(not a string)"},
	    {"{\"kms\": {\"allowAnyDevice\": \"true\"}}", "kms.allowAnyDevice is not true or false"},
	    {"{\"apps\": {\"@a1\": {}}}", "is not an app id (20 bytes of hex)"},
	    {"{\"apps\": {\"%a1\": {}, \"0x%A1\": {}}}", "lists the app"},
	    {"{\"apps\": []}", "apps is not an object"},
	    {"{\"allowedTcbStatuses\": [1]}", "allowedTcbStatuses[0] is not a string"},
	    {"{\"chainId\": -1}", "chainId is not a non-negative integer"},
	    {"{\"chainId\": 1.5}", "chainId is not a non-negative integer"},
	    {"{\"gatewayAppId\": 1}", "gatewayAppId is not a string"},
	    {"{\"osImages\": [], \"osImages\": []}", "the policy is not JSON"},
	};
	struct auth_policy *p = (struct auth_policy *)1;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		const char *json = x(bad[i].json);

		assert_int_not_equal(
		    auth_policy_parse((const uint8_t *)json, strlen(json), &p, err, sizeof(err)), CVM_OK);
		assert_null(p);
		if (strstr(err, bad[i].err) == NULL)
			fail_msg("policy %zu: error '%s' does not say '%s'", i, err, bad[i].err);
	}
}

static void policy_parse_caps_the_file_and_its_lists(void **state)
{
	struct auth_policy *p = NULL;
	char err[256] = "";
	size_t n = (size_t)(CVM_AUTH_LIST_MAX + 1) * 4 + 32, k = 0;
	char *big = malloc(n);
	uint8_t *huge = calloc(1, (size_t)CVM_AUTH_POLICY_MAX + 1);

	(void)state;
	assert_non_null(big);
	assert_non_null(huge);
	k += (size_t)snprintf(big + k, n - k, "{\"allowedAdvisoryIds\": [");
	for (int i = 0; i <= CVM_AUTH_LIST_MAX; i++)
		k += (size_t)snprintf(big + k, n - k, "%s\"\"", i != 0 ? "," : "");
	k += (size_t)snprintf(big + k, n - k, "]}");
	assert_int_equal(auth_policy_parse((const uint8_t *)big, k, &p, err, sizeof(err)), CVM_E_TOO_LARGE);
	assert_non_null(strstr(err, "more than 4096 entries"));
	assert_int_equal(auth_policy_parse(huge, (size_t)CVM_AUTH_POLICY_MAX + 1, &p, err, sizeof(err)),
	                 CVM_E_TOO_LARGE);
	assert_null(p);
	free(big);
	free(huge);
}

static void policy_parse_rejects_every_truncation(void **state)
{
	struct auth_policy *p = NULL;
	const char *pj = policy_json();
	size_t len = strlen(pj);

	(void)state;
	for (size_t n = 0; n < len; n++) {
		assert_int_not_equal(auth_policy_parse((const uint8_t *)pj, n, &p, NULL, 0), CVM_OK);
		assert_null(p);
	}
}

/* ---- the policy authorizer on a file that changes ----------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int decide_file(struct cvm_auth *a, struct cvm_auth_decision *d, char *err, size_t err_len)
{
	struct cvm_boot_info bi;

	base_bi(&bi);
	return cvm_auth_decide(a, CVM_AUTH_APP, &bi, d, err, err_len);
}

static void policy_file_is_reread_and_a_malformed_one_refuses_everything(void **state)
{
	char dir[] = "/tmp/cvm-kms-auth-XXXXXX", path[64], err[512];
	struct cvm_auth_opts o = {.type = "policy"};
	struct cvm_auth_decision d;
	struct cvm_auth *a = NULL;
	char *other = strdup(policy_json());
	char *p;
	struct timespec ts[2] = {{0, 0}, {0, 0}};

	(void)state;
	assert_non_null(mkdtemp(dir));
	(void)snprintf(path, sizeof(path), "%s/policy.json", dir);
	o.policy_path = path;
	/* A missing file at start is an error. */
	assert_int_equal(cvm_auth_new(&o, &a, err, sizeof(err)), CVM_E_FORMAT);
	assert_null(a);
	assert_non_null(strstr(err, "cannot be read"));

	write_file(path, policy_json());
	assert_int_equal(cvm_auth_new(&o, &a, err, sizeof(err)), CVM_OK);
	assert_string_equal(cvm_auth_type(a), "policy");
	assert_int_equal(decide_file(a, &d, err, sizeof(err)), CVM_OK);
	assert_true(d.allowed);

	/* The same size, another OS image: only the mtime tells. */
	p = strstr(other, x("@05"));
	assert_non_null(p);
	p[1] = '6';
	write_file(path, other);
	ts[0].tv_sec = ts[1].tv_sec = 1000000000;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_int_equal(decide_file(a, &d, err, sizeof(err)), CVM_OK);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "OS image is not allowed");

	/* Malformed after a good one: every decision is an error, never the
	 * older allow list, until the file is fixed. */
	write_file(path, "{\"osImages\": [\"@05\"], \"devcies\": []}");
	for (int i = 0; i < 2; i++) {
		memset(&d, 0x55, sizeof(d));
		assert_int_equal(decide_file(a, &d, err, sizeof(err)), CVM_E_FORMAT);
		assert_false(d.allowed);
		assert_non_null(strstr(err, "the policy file is malformed (\"devcies\" is not a key"));
		assert_non_null(strstr(err, "every decision is refused until it is fixed"));
	}
	write_file(path, policy_json());
	assert_int_equal(decide_file(a, &d, err, sizeof(err)), CVM_OK);
	assert_true(d.allowed);

	/* Removed, grown over the cap, or not a regular file: errors too. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(decide_file(a, &d, err, sizeof(err)), CVM_E_FORMAT);
	assert_false(d.allowed);
	assert_non_null(strstr(err, "cannot be read"));
	{
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		for (int i = 0; i <= CVM_AUTH_POLICY_MAX / 16; i++)
			assert_int_equal(fputs("                ", f) >= 0, 1);
		assert_int_equal(fclose(f), 0);
	}
	assert_int_equal(decide_file(a, &d, err, sizeof(err)), CVM_E_FORMAT);
	assert_false(d.allowed);
	assert_non_null(strstr(err, "larger than"));
	/* A FIFO would block a reader: refused without opening it. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(decide_file(a, &d, err, sizeof(err)), CVM_E_FORMAT);
	assert_false(d.allowed);
	assert_non_null(strstr(err, "not a regular file"));
	cvm_auth_free(a);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	free(other);
}

/* ---- BootInfo JSON ------------------------------------------------------ */

static const uint8_t kpi[] = "{\"type\":\"kms\"}";

static void boot_info_json_is_the_webhooks_encoding(void **state)
{
	/* Written by hand from dstack's PolicyBootInfo (camelCase, in the
	 * struct's order, hex without 0x). */
	static const char want[] = "{\"teeVariant\":\"dstack-tdx\","
	                           "\"mrAggregated\":\"@a0\","
	                           "\"osImageHash\":\"@05\","
	                           "\"mrSystem\":\"@5e\","
	                           "\"appId\":\"%a1\","
	                           "\"composeHash\":\"@c0\","
	                           "\"instanceId\":\"%ee\","
	                           "\"deviceId\":\"@d0\","
	                           "\"keyProviderInfo\":\"7b2274797065223a226b6d73227d\","
	                           "\"tcbStatus\":\"OutOfDate\","
	                           "\"advisoryIds\":[\"INTEL-SA-00837\",\"INTEL-SA-00615\"]}";
	struct cvm_boot_info bi;
	char *s = NULL;

	(void)state;
	base_bi(&bi);
	bi.key_provider_info = kpi;
	bi.key_provider_info_len = sizeof(kpi) - 1;
	(void)snprintf(bi.tcb_status, sizeof(bi.tcb_status), "OutOfDate");
	bi.advisory_ids = bad_advisory;
	bi.advisory_count = 2;
	assert_int_equal(cvm_boot_info_to_json(&bi, &s), CVM_OK);
	assert_string_equal(s, x(want));
	free(s);
	bi.has_instance_id = false;
	bi.key_provider_info = NULL;
	bi.key_provider_info_len = 0;
	bi.advisory_count = 0;
	assert_int_equal(cvm_boot_info_to_json(&bi, &s), CVM_OK);
	assert_non_null(strstr(s, "\"instanceId\":\"\",\"deviceId\""));
	assert_non_null(
	    strstr(s, "\"keyProviderInfo\":\"\",\"tcbStatus\":\"OutOfDate\",\"advisoryIds\":[]}"));
	free(s);
}

static void boot_info_json_round_trips(void **state)
{
	struct cvm_boot_info bi, back;
	char *s = NULL, *again = NULL, err[256];

	(void)state;
	base_bi(&bi);
	bi.key_provider_info = kpi;
	bi.key_provider_info_len = sizeof(kpi) - 1;
	bi.advisory_ids = bad_advisory;
	bi.advisory_count = 2;
	assert_int_equal(cvm_boot_info_to_json(&bi, &s), CVM_OK);
	assert_int_equal(cvm_boot_info_from_json(s, strlen(s), &back, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_boot_info_to_json(&back, &again), CVM_OK);
	assert_string_equal(s, again);
	assert_memory_equal(back.app_id, bi.app_id, 20);
	assert_true(back.has_instance_id);
	assert_int_equal(back.advisory_count, 2);
	assert_string_equal(back.advisory_ids[1], "INTEL-SA-00615");
	cvm_boot_info_cleanup(&back);
	assert_null(back.owned);
	free(s);
	free(again);
}

/* with_field writes the JSON of a good BootInfo with `key` set to the raw
 * JSON `value` (a template for x), or removed when `value` is NULL. */
static char *with_field(const char *key, const char *value)
{
	struct cvm_boot_info bi;
	json_error_t jerr;
	json_t *o, *v = NULL;
	char *s = NULL;

	base_bi(&bi);
	assert_int_equal(cvm_boot_info_to_json(&bi, &s), CVM_OK);
	o = json_loads(s, 0, &jerr);
	free(s);
	assert_non_null(o);
	if (value == NULL) {
		assert_int_equal(json_object_del(o, key), 0);
	} else {
		v = json_loads(x(value), JSON_DECODE_ANY, &jerr);
		assert_non_null(v);
		assert_int_equal(json_object_set_new(o, key, v), 0);
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	assert_non_null(s);
	return s;
}

static void boot_info_from_json_rejects_malformed_fields(void **state)
{
	static const struct {
		const char *key, *value;
	} bad[] = {
	    {"advisoryIds", NULL},
	    {"teeVariant", NULL},
	    {"isAllowed", "true"},
	    {"instanceId", "\"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\""},
	    {"composeHash", "\"%c0\""},
	    {"appId", "\"0xzz%a1\""},
	    {"keyProviderInfo", "\"abc\""},
	    {"mrSystem", "5"},
	    {"tcbStatus", "\"Up\\nToDate\""},
	    {"advisoryIds", "[1]"},
	    {"advisoryIds", "\"INTEL-SA-00837\""},
	    {"teeVariant", "\"dstack-tdx-0123456789012345678901\""},
	};
	struct cvm_boot_info bi;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 2; i++) {
		char *json =
		    i < 2 ? strdup(i == 0 ? "[]" : "{}") : with_field(bad[i - 2].key, bad[i - 2].value);

		assert_non_null(json);
		memset(&bi, 0x55, sizeof(bi));
		err[0] = '\0';
		if (cvm_boot_info_from_json(json, strlen(json), &bi, err, sizeof(err)) == CVM_OK)
			fail_msg("BootInfo %zu (%s) was accepted", i, json);
		assert_null(bi.owned);
		assert_true(err[0] != '\0');
		free(json);
	}
	/* The same construction with a good value is accepted. */
	{
		char *json = with_field("tcbStatus", "\"OutOfDate\"");

		assert_int_equal(cvm_boot_info_from_json(json, strlen(json), &bi, err, sizeof(err)), CVM_OK);
		assert_string_equal(bi.tcb_status, "OutOfDate");
		cvm_boot_info_cleanup(&bi);
		free(json);
	}
}

static void boot_info_from_json_rejects_every_truncation(void **state)
{
	struct cvm_boot_info bi;
	char *s = NULL;

	(void)state;
	base_bi(&bi);
	assert_int_equal(cvm_boot_info_to_json(&bi, &s), CVM_OK);
	for (size_t n = 0; n < strlen(s); n++) {
		assert_int_not_equal(cvm_boot_info_from_json(s, n, &bi, NULL, 0), CVM_OK);
		assert_null(bi.owned);
	}
	free(s);
}

/* ---- the webhook's answers ---------------------------------------------- */

static int reply(const char *json, struct cvm_auth_decision *d, char *err, size_t err_len)
{
	return auth_webhook_reply_parse((const uint8_t *)json, strlen(json), d, err, err_len);
}

static void webhook_reply_reads_dstacks_answer(void **state)
{
	struct cvm_auth_decision d;
	char err[256];

	(void)state;
	assert_int_equal(
	    reply("{\"isAllowed\":true,\"gatewayAppId\":\"any\",\"reason\":\"\"}", &d, err, sizeof(err)),
	    CVM_OK);
	assert_true(d.allowed);
	assert_string_equal(d.gateway_app_id, "any");
	assert_int_equal(
	    reply("{\"isAllowed\":false,\"reason\":\"app not\\nregistered\",\"gatewayAppId\":\"g\"}", &d, err,
	          sizeof(err)),
	    CVM_OK);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "app not?registered"); /* quoted for logs */
	assert_int_equal(reply("{\"isAllowed\":false}", &d, err, sizeof(err)), CVM_OK);
	assert_false(d.allowed);
	assert_string_equal(d.gateway_app_id, "");
}

static void webhook_reply_refuses_anything_but_a_boolean_isallowed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "true",
	    "[{\"isAllowed\":true}]",
	    "{\"isAllowed\":\"true\"}",
	    "{\"isAllowed\":1}",
	    "{\"isAllowed\":null}",
	    "{\"allowed\":true}",
	    "{\"isAllowed\":false,\"isAllowed\":true}",
	    "{\"isAllowed\":true,\"gatewayAppId\":7}",
	    "{\"isAllowed\":true,\"reason\":false}",
	    "{\"isAllowed\":true,\"gatewayAppId\":\"a\\u0000b\"}",
	    /* a gateway app id of 64 bytes, one over the field */
	    "{\"isAllowed\":true,\"gatewayAppId\":\"@01\"}",
	    "{\"isAllowed\":true} trailing",
	};
	struct cvm_auth_decision d;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&d, 0x55, sizeof(d));
		if (reply(x(bad[i]), &d, err, sizeof(err)) == CVM_OK)
			fail_msg("webhook answer %zu (%s) was accepted", i, bad[i]);
		assert_false(d.allowed);
	}
}

static void webhook_reply_caps_its_size(void **state)
{
	size_t n = (size_t)CVM_AUTH_REPLY_MAX + 1;
	char *big = malloc(n + 1);
	struct cvm_auth_decision d;
	char err[256];

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "{\"isAllowed\":true}", 18);
	big[n] = '\0';
	assert_int_equal(auth_webhook_reply_parse((const uint8_t *)big, n, &d, err, sizeof(err)),
	                 CVM_E_TOO_LARGE);
	assert_false(d.allowed);
	assert_int_equal(auth_webhook_reply_parse((const uint8_t *)big, n - 1, &d, err, sizeof(err)), CVM_OK);
	assert_true(d.allowed);
	free(big);
}

static void webhook_info_reads_the_auth_api_info(void **state)
{
	static const char info[] = "{\"status\":\"ok\",\"kmsContractAddr\":\"0x%4b\",\"gatewayAppId\":\"gw\","
	                           "\"chainId\":8453,\"appImplementation\":\"0x%1a\"}";
	struct cvm_auth_info out;
	char err[256];

	(void)state;
	assert_int_equal(
	    auth_webhook_info_parse((const uint8_t *)x(info), strlen(x(info)), &out, err, sizeof(err)),
	    CVM_OK);
	assert_string_equal(out.kms_contract_addr, x("0x%4b"));
	assert_int_equal(out.chain_id, 8453);
	assert_string_equal(out.gateway_app_id, "gw");
	assert_int_not_equal(
	    auth_webhook_info_parse((const uint8_t *)"{\"status\":\"error\"}", 18, &out, err, sizeof(err)),
	    CVM_OK);
	assert_int_not_equal(auth_webhook_info_parse((const uint8_t *)"{\"status\":\"ok\",\"chainId\":\"1\"}",
	                                             29, &out, err, sizeof(err)),
	                     CVM_OK);
}

/* ---- options and fail-closed errors -------------------------------------- */

static void new_refuses_bad_options_and_dev_without_consent(void **state)
{
	static const struct cvm_auth_opts bad[] = {
	    {.type = NULL},
	    {.type = "mock"},
	    {.type = "dev"},
	    {.type = "policy"},
	    {.type = "webhook"},
	    {.type = "webhook", .webhook_url = "file:///etc/passwd"},
	    {.type = "webhook", .webhook_url = "ftp://auth"},
	    {.type = "webhook", .webhook_url = "http://"},
	    {.type = "webhook", .webhook_url = "http://auth api:8000"},
	    {.type = "chain", .chain_rpc_url = "http://127.0.0.1:8545"},
	    {.type = "chain", .chain_rpc_url = "http://127.0.0.1:8545", .kms_contract = "0x1234"},
	    {.type = "chain",
	     .chain_rpc_url = "http://127.0.0.1:8545",
	     .kms_contract = "1111111111111111111111111111111111111111"},
	    {.type = "chain", .kms_contract = "0x1111111111111111111111111111111111111111"},
	    {.type = "dev", .allow_dev = true, .gateway_app_id = "bad\nid"},
	};
	struct cvm_auth *a = NULL;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (cvm_auth_new(&bad[i], &a, err, sizeof(err)) == CVM_OK)
			fail_msg("options %zu were accepted", i);
		assert_null(a);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(cvm_auth_new(&bad[2], &a, err, sizeof(err)), CVM_E_INVAL);
	assert_non_null(strstr(err, "refused unless explicitly enabled"));
}

static void dev_allows_with_its_gateway_but_not_a_simulated_tee(void **state)
{
	struct cvm_auth_opts o = {.type = "dev", .allow_dev = true, .gateway_app_id = "any"};
	struct cvm_auth_decision d;
	struct cvm_auth_info info;
	struct cvm_boot_info bi;
	struct cvm_auth *a = NULL;
	char err[256];

	(void)state;
	assert_int_equal(cvm_auth_new(&o, &a, err, sizeof(err)), CVM_OK);
	base_bi(&bi);
	assert_int_equal(cvm_auth_decide(a, CVM_AUTH_KMS, &bi, &d, err, sizeof(err)), CVM_OK);
	assert_true(d.allowed);
	assert_string_equal(d.gateway_app_id, "any");
	(void)snprintf(bi.tee_variant, sizeof(bi.tee_variant), "cvmkit-sim-tdx");
	assert_int_equal(cvm_auth_decide(a, CVM_AUTH_APP, &bi, &d, err, sizeof(err)), CVM_OK);
	assert_false(d.allowed);
	assert_string_equal(
	    d.reason,
	    "the TEE is simulated (cvmkit-sim-tdx) and this authorizer does not accept simulated TEEs");
	/* An unterminated variant is the caller's bug: refused. */
	memset(bi.tee_variant, 'x', sizeof(bi.tee_variant));
	assert_int_equal(cvm_auth_decide(a, CVM_AUTH_APP, &bi, &d, err, sizeof(err)), CVM_E_INVAL);
	assert_false(d.allowed);
	assert_int_equal(cvm_auth_info(a, &info, err, sizeof(err)), CVM_OK);
	assert_string_equal(info.gateway_app_id, "any");
	assert_string_equal(info.status, "ok");
	cvm_auth_free(a);
	cvm_auth_free(NULL);
}

/* free_port returns a loopback port with no listener. */
static unsigned short free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void webhook_and_chain_fail_closed_when_nobody_answers(void **state)
{
	char url[128], err[512];
	struct cvm_auth_opts w = {.type = "webhook", .timeout_ms = 2000};
	struct cvm_auth_opts c = {.type = "chain",
	                          .kms_contract = "0x1111111111111111111111111111111111111111"};
	struct cvm_auth_decision d;
	struct cvm_auth_info info;
	struct cvm_boot_info bi;
	struct cvm_auth *a = NULL;

	(void)state;
	(void)snprintf(url, sizeof(url), "http://user:secret@127.0.0.1:%u/hidden/path/", free_port());
	w.webhook_url = url;
	c.chain_rpc_url = url;
	base_bi(&bi);
	assert_int_equal(cvm_auth_new(&w, &a, err, sizeof(err)), CVM_OK);
	memset(&d, 0x55, sizeof(d));
	assert_int_equal(cvm_auth_decide(a, CVM_AUTH_APP, &bi, &d, err, sizeof(err)), CVM_E_UPSTREAM);
	assert_false(d.allowed);
	assert_non_null(strstr(err, "the webhook http://127.0.0.1:"));
	assert_null(strstr(err, "secret"));
	assert_null(strstr(err, "hidden"));
	assert_int_equal(cvm_auth_info(a, &info, err, sizeof(err)), CVM_E_UPSTREAM);
	cvm_auth_free(a);
	a = NULL;
	assert_int_equal(cvm_auth_new(&c, &a, err, sizeof(err)), CVM_OK);
	memset(&d, 0x55, sizeof(d));
	assert_int_equal(cvm_auth_decide(a, CVM_AUTH_KMS, &bi, &d, err, sizeof(err)), CVM_E_UPSTREAM);
	assert_false(d.allowed);
	assert_null(strstr(err, "secret"));
	cvm_auth_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(policy_allows_the_registered_app_and_kms_node),
	    cmocka_unit_test(policy_checks_the_tcb_status_first_and_exactly),
	    cmocka_unit_test(policy_checks_every_advisory_before_the_os_image),
	    cmocka_unit_test(policy_checks_the_os_image_before_the_kms_or_app_rules),
	    cmocka_unit_test(policy_kms_needs_an_allowed_mr_and_device),
	    cmocka_unit_test(policy_kms_with_no_mr_list_denies_every_node),
	    cmocka_unit_test(policy_app_must_be_registered_with_its_compose_hash_and_device),
	    cmocka_unit_test(policy_defaults_allow_only_uptodate_and_no_os_image),
	    cmocka_unit_test(policy_parse_refuses_what_auth_simple_would_misread),
	    cmocka_unit_test(policy_parse_caps_the_file_and_its_lists),
	    cmocka_unit_test(policy_parse_rejects_every_truncation),
	    cmocka_unit_test(policy_file_is_reread_and_a_malformed_one_refuses_everything),
	    cmocka_unit_test(boot_info_json_is_the_webhooks_encoding),
	    cmocka_unit_test(boot_info_json_round_trips),
	    cmocka_unit_test(boot_info_from_json_rejects_malformed_fields),
	    cmocka_unit_test(boot_info_from_json_rejects_every_truncation),
	    cmocka_unit_test(webhook_reply_reads_dstacks_answer),
	    cmocka_unit_test(webhook_reply_refuses_anything_but_a_boolean_isallowed),
	    cmocka_unit_test(webhook_reply_caps_its_size),
	    cmocka_unit_test(webhook_info_reads_the_auth_api_info),
	    cmocka_unit_test(new_refuses_bad_options_and_dev_without_consent),
	    cmocka_unit_test(dev_allows_with_its_gateway_but_not_a_simulated_tee),
	    cmocka_unit_test(webhook_and_chain_fail_closed_when_nobody_answers),
	};

	return cmocka_run_group_tests(tests, NULL, free_expanded);
}
