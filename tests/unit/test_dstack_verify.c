/* cvm-verifierd's POST /verify (daemons/verifier/dstack.c) against dstack's
 * verifier fixtures (tests/vectors/compat/verifier/, F-D1..F-D4 in its
 * README) and forged requests. The fixtures' Intel collateral is not
 * public: their quotes cannot verify, and the tests assert exactly that and
 * everything computed without collateral. The OS image rule is played
 * against a quote check that accepts (the binding logic on an authentic
 * quote) and one that rejects. The full verdict is played on `cvm sim`
 * evidence of the F-D2 guest through the service's own path: a worker
 * context, its cache filled by cvm_cache_import, the sim root configured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ratls.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/file.h>
#include <cvmkit/osimage.h>
#include <cvmkit/quote.h>
#include <cvmkit/tee.h>
#include <cvmkit/verify.h>

#include "dstack_int.h"
#include "vectors.h"
#include "verifier.h"

#define FIX "compat/verifier/dstack-verifier-fixtures/"

static const char fd2_app_id[] = "86b0e55f2fa8e4fb69d890f14f54d5612707646e";
static const char fd2_compose[] = "86b0e55f2fa8e4fb69d890f14f54d5612707646e2573d54e0d2ddaaade77caa9";
static const char fd2_instance[] = "050bf89570575fe8fab4cb8f0a62a9e64efe8ead";
static const char fd2_mrtd[] = "fd685522ce791dfef67414614eb07d03fc07a32c5a66f36288b329dab92b724b"
                               "1564c73d436ffb9ea84488c51ac5a1c5";
static const char fd2_image[] = "e6f5cfec20c02e7b97baa213d0f718020b55e040172d90ccbcb946d56c8b09db";

/* quote_accept stands for an authentic quote (the binding logic is what is
 * under test); quote_reject for one whose collateral is missing. */
static int quote_accept(struct vd_ctx *ctx, const uint8_t *quote, size_t len, int64_t now,
                        struct cvm_dcap_result *res, struct cvm_cache_info *info, struct cvm_report *rep,
                        char *err, size_t err_len)
{
	(void)ctx, (void)quote, (void)len, (void)now, (void)info, (void)err, (void)err_len;
	res->authentic = true;
	res->tcb_status = CVM_TCB_UP_TO_DATE;
	cvm_report_add(rep, "stub", true, "accepted by the test");
	return CVM_OK;
}

static struct vd_config cfg;
static struct vd_ctx ctx;

static json_t *answer(const char *body, size_t len, dstack_quote_fn fn, int want_status)
{
	struct cvm_http_resp resp;
	json_error_t jerr;
	json_t *o;

	memset(&resp, 0, sizeof(resp));
	if (fn == NULL)
		vd_dstack_verify(&ctx, (const uint8_t *)body, len, &resp);
	else
		dstack_verify(&ctx, (const uint8_t *)body, len, &resp, fn);
	assert_int_equal(resp.status, want_status);
	assert_non_null(resp.body);
	o = json_loadb(resp.body, resp.body_len, 0, &jerr);
	assert_non_null(o);
	cvm_http_resp_cleanup(&resp);
	return o;
}

static json_t *answer_json(json_t *req, dstack_quote_fn fn)
{
	char *s = json_dumps(req, JSON_COMPACT);
	json_t *o;

	assert_non_null(s);
	o = answer(s, strlen(s), fn, 200);
	free(s);
	return o;
}

static json_t *fixture(const char *name)
{
	size_t len = 0;
	uint8_t *buf = vector_read(name, &len);
	json_error_t jerr;
	json_t *o;

	assert_non_null(buf);
	o = json_loadb((const char *)buf, len, 0, &jerr);
	free(buf);
	assert_non_null(o);
	return o;
}

static const char *dstr(json_t *a, const char *field)
{
	json_t *v = json_object_get(json_object_get(a, "details"), field);

	return json_string_value(v);
}

static bool dbool(json_t *a, const char *field)
{
	json_t *v = json_object_get(json_object_get(a, "details"), field);

	assert_true(json_is_boolean(v));
	return json_is_true(v);
}

static const char *app(json_t *a, const char *field)
{
	return json_string_value(
	    json_object_get(json_object_get(json_object_get(a, "details"), "app_info"), field));
}

/* step_ok finds the step `name` in details.steps: 1 ok, 0 failed, -1 absent. */
static int step_ok(json_t *a, const char *name)
{
	json_t *steps = json_object_get(json_object_get(a, "details"), "steps");
	size_t i;
	json_t *s;

	json_array_foreach(steps, i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			return json_is_true(json_object_get(s, "ok")) ? 1 : 0;
	}
	return -1;
}

static const char *reason(json_t *a)
{
	return json_string_value(json_object_get(a, "reason"));
}

static void setup_ctx(void)
{
	vd_ctx_close(&ctx); /* the last test's (a zeroed one is a no-op) */
	memset(&cfg, 0, sizeof(cfg));
	memset(&ctx, 0, sizeof(ctx));
	cfg.at = 1767225600; /* fixed: no clock in the verdicts */
	ctx.cfg = &cfg;
	cvm_policy_init(&ctx.policy);
}

static int teardown_ctx(void **state)
{
	(void)state;
	vd_ctx_close(&ctx);
	return 0;
}

/* The quote's fields, for the recomputations the tests do themselves. */
static void fixture_quote(json_t *req, uint8_t **quote, size_t *len, struct cvm_quote *q)
{
	const char *hex = json_string_value(json_object_get(req, "quote"));

	assert_non_null(hex);
	*len = strlen(hex) / 2;
	*quote = malloc(*len);
	assert_non_null(*quote);
	assert_int_equal(cvm_hex_decode_exact(hex, strlen(hex), *quote, *len), CVM_OK);
	assert_int_equal(cvm_quote_parse(*quote, *len, q), CVM_OK);
}

static void hexcmp(const char *got, const uint8_t *want, size_t n)
{
	char buf[2 * 64 + 1];

	assert_true(n <= 64);
	cvm_hex_encode(want, n, buf);
	assert_non_null(got);
	assert_string_equal(got, buf);
}

/* Both fixtures: the shape dstack documents, quote_verified false for want
 * of collateral, and what needs no collateral computed. */
static void assert_fixture_answer(json_t *a, json_t *getquote)
{
	struct cvm_quote q;
	uint8_t *quote = NULL, mr_system[32], mr_aggregated[32], kp_sha[32];
	size_t quote_len = 0;
	const char *kp_hex;
	uint8_t kp[256];
	size_t kp_len = 0;
	json_t *d = json_object_get(a, "details"), *boot;

	assert_true(json_is_false(json_object_get(a, "is_valid")));
	assert_non_null(reason(a));
	assert_non_null(strstr(reason(a), "quote:"));
	assert_false(dbool(a, "quote_verified"));
	assert_false(dbool(a, "event_log_verified"));
	assert_false(dbool(a, "os_image_hash_verified"));
	assert_false(dbool(a, "acpi_tables_verified"));
	/* null, not absent, as dstack serialises Option::None */
	assert_true(json_is_null(json_object_get(d, "os_image_is_dev")));
	assert_true(json_is_null(json_object_get(d, "os_image_version")));
	assert_true(json_is_null(json_object_get(d, "tcb_status")));
	assert_true(json_is_array(json_object_get(d, "advisory_ids")));
	assert_string_equal(dstr(a, "tee_variant"), "dstack-tdx");
	assert_string_equal(dstr(a, "report_data"),
	                    json_string_value(json_object_get(getquote, "report_data")));
	assert_string_equal(app(a, "app_id"), fd2_app_id);
	assert_string_equal(app(a, "compose_hash"), fd2_compose);
	assert_string_equal(app(a, "instance_id"), fd2_instance);
	assert_string_equal(app(a, "mrtd"), fd2_mrtd);
	assert_string_equal(app(a, "os_image_hash"), fd2_image);
	/* device_id without a verified PCK certificate: SHA-256("") */
	assert_string_equal(app(a, "device_id"),
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_string_equal(json_string_value(json_object_get(json_object_get(d, "key_provider"), "name")),
	                    "kms");

	/* mr_system and mr_aggregated, recomputed here from the quote */
	fixture_quote(getquote, &quote, &quote_len, &q);
	kp_hex = app(a, "key_provider_info");
	assert_non_null(kp_hex);
	assert_int_equal(cvm_hex_decode(kp_hex, strlen(kp_hex), kp, sizeof(kp), &kp_len), CVM_OK);
	assert_non_null(memmem(kp, kp_len, "\"name\":\"kms\"", 12));
	{
		uint8_t buf[48 * 8];

		cvm_sha256(kp, kp_len, kp_sha);
		memcpy(buf, q.body.td.mr_td, 48);
		for (unsigned i = 0; i < 3; i++)
			memcpy(buf + 48 * (1 + i), q.body.td.rtmr[i], 48);
		memcpy(buf + 4 * 48, kp_sha, 32);
		cvm_sha256(buf, 4 * 48 + 32, mr_system);
		memcpy(buf + 4 * 48, q.body.td.rtmr[3], 48);
		memcpy(buf + 5 * 48, q.body.td.mr_config_id, 48);
		memcpy(buf + 6 * 48, q.body.td.mr_owner, 48);
		memcpy(buf + 7 * 48, q.body.td.mr_owner_config, 48);
		cvm_sha256(buf, sizeof(buf), mr_aggregated); /* MRCONFIGID is non-zero here */
	}
	hexcmp(app(a, "mr_system"), mr_system, 32);
	hexcmp(app(a, "mr_aggregated"), mr_aggregated, 32);

	/* the checks that need no collateral, reported as steps */
	assert_int_equal(step_ok(a, "quote"), 0);
	assert_int_equal(step_ok(a, "rtmr3 replay"), 1);
	assert_int_equal(step_ok(a, "os checksum file"), 1);
	assert_int_equal(step_ok(a, "os measurement listed"), 1);
	assert_int_equal(step_ok(a, "os mrtd"), 1);
	assert_int_equal(step_ok(a, "os rtmr1"), 1);
	assert_int_equal(step_ok(a, "os rtmr2"), 1);

	/* BootInfo: camelCase, tcbStatus "" when no TCB status was evaluated */
	boot = json_object_get(d, "boot_info");
	assert_true(json_is_object(boot));
	assert_string_equal(json_string_value(json_object_get(boot, "teeVariant")), "dstack-tdx");
	assert_string_equal(json_string_value(json_object_get(boot, "tcbStatus")), "");
	assert_string_equal(json_string_value(json_object_get(boot, "composeHash")), fd2_compose);
	assert_true(json_is_array(json_object_get(boot, "advisoryIds")));
	assert_true(json_is_string(json_object_get(boot, "mrAggregated")));
	free(quote);
}

static void test_the_getquote_fixture_F_D2_is_answered_without_collateral(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-getquote.json"), *a;

	(void)state;
	setup_ctx();
	a = answer_json(req, NULL); /* the service's path: no cache here */
	assert_fixture_answer(a, req);
	assert_non_null(strstr(reason(a), "collateral"));
	assert_int_equal(step_ok(a, "rtmr0 replay"), 1);
	assert_int_equal(step_ok(a, "rtmr1 replay"), 1);
	assert_int_equal(step_ok(a, "rtmr2 replay"), 1);
	json_decref(a);
	json_decref(req);
}

static void test_the_attestation_fixture_F_D1_is_answered_and_ignores_top_level_fields(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-attestation.json"), *gq = fixture(FIX "tdx-lite-getquote.json"),
	       *a;

	(void)state;
	setup_ctx();
	a = answer_json(req, NULL);
	assert_fixture_answer(a, gq);
	json_decref(a);
	/* With an attestation, a top-level quote, event_log and vm_config are
	 * ignored, never mixed in: the verdict does not change. */
	assert_int_equal(json_object_set_new(req, "quote", json_string("00")), 0);
	assert_int_equal(json_object_set_new(req, "event_log", json_string("not json")), 0);
	assert_int_equal(json_object_set_new(req, "vm_config", json_string("{\"os_image_hash\":\"00\"}")), 0);
	a = answer_json(req, NULL);
	assert_fixture_answer(a, gq);
	json_decref(a);
	json_decref(req);
	json_decref(gq);
}

static void test_the_request_shapes_of_F_D3_deserialize_and_fail_with_a_reason(void **state)
{
	static const char *const bodies[] = {
	    "{\"quote\":\"00\",\"event_log\":\"[]\",\"vm_config\":\"{}\"}",
	    "{\"attestation\":\"00\"}",
	    "{}",
	    "{\"quote\":null,\"attestation\":null,\"debug\":true,\"extra\":[1,2]}",
	};

	(void)state;
	setup_ctx();
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		json_t *a = answer(bodies[i], strlen(bodies[i]), NULL, 200);

		assert_true(json_is_false(json_object_get(a, "is_valid")));
		assert_non_null(reason(a));
		assert_true(strlen(reason(a)) > 10);
		assert_false(dbool(a, "quote_verified"));
		assert_false(dbool(a, "os_image_hash_verified"));
		assert_true(json_is_null(json_object_get(json_object_get(a, "details"), "app_info")));
		json_decref(a);
	}
}

/* An event log whose second entry is malformed is refused with a reason
 * naming that entry (found by fuzz_dstack_verify: the entry was skipped and
 * the log's freed names were replayed). */
static void test_an_event_log_with_a_malformed_later_entry_is_refused_naming_it(void **state)
{
	static const char body[] =
	    "{\"quote\":\"00\",\"event_log\":\"[{\\\"imr\\\":3,\\\"event_type\\\":134217729,"
	    "\\\"digest\\\":\\\"\\\",\\\"event\\\":\\\"app-id\\\",\\\"event_payload\\\":"
	    "\\\"\\\"},{\\\"imr\\\":3}]\",\"vm_config\":\"{}\"}";
	json_t *a;

	(void)state;
	setup_ctx();
	a = answer(body, strlen(body), quote_accept, 200);
	assert_non_null(reason(a));
	assert_non_null(strstr(reason(a), "event_log entry 1 "));
	assert_false(dbool(a, "quote_verified"));
	json_decref(a);
}

static void test_a_body_that_is_not_the_request_object_gets_400(void **state)
{
	static const char *const bodies[] = {
	    "",
	    "not json",
	    "[]",
	    "\"quote\"",
	    "{\"quote\":5}",
	    "{\"quote\":\"0x00\"}",
	    "{\"quote\":\"abc\"}",
	    "{\"attestation\":\"zz\"}",
	    "{\"event_log\":[]}",
	    "{\"vm_config\":{}}",
	    "{\"debug\":\"yes\"}",
	    "{\"quote\":\"00\",\"quote\":\"00\"}",
	};

	(void)state;
	setup_ctx();
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		json_t *a = answer(bodies[i], strlen(bodies[i]), NULL, 400);

		assert_true(json_is_string(json_object_get(a, "error")));
		json_decref(a);
	}
}

/* The README sample (F-D4): mr_system and mr_aggregated from its values;
 * mr_aggregated includes MRCONFIGID = 01 || compose_hash || 0^15. */
static void test_mr_system_and_mr_aggregated_reproduce_the_readme_sample(void **state)
{
	struct cvm_tdx_report td;
	static const char *const rtmr[4] = {
	    "68102e7b524af310f7b7d426ce75481e36c40f5d513a9009c046e9d37e31551f0134d954b496a3357fd61d03f07ffe9"
	    "6",
	    "a7b523278d4f914ee8df0ec80cd1c3d498cbf1152b0c5eaf65bad9425072874a3fcf891e8b01713d3d9937e3e0d26c1"
	    "5",
	    "dbf4924c07f5066f3dc6859844184344306aa3263817153dcaee85af97d23e0c0b96efe0731d8865a8747e51b9e351a"
	    "c",
	    "5e7d8d84317343d28d73031d0be3c75f25facb1b20c9835a44582b8b0115de1acfe2d19350437dbd63846bcc5d7bf32"
	    "8",
	};
	static const char mrtd[] = "f06dfda6dce1cf904d4e2bab1dc370634cf95cefa2ceb2de2eee127c9382698090d7a4a13"
	                           "e14c536ec6c9c3c8fa87077";
	static const char compose[] = "e631a04a5d068c0e5ffd8ca60d6574ac99a18bdaf0417d129d0c4ac52244d40f";
	static const char kp_hex[] =
	    "7b226e616d65223a226b6d73222c226964223a2233303539333031333036303732613836343863653364303230313036"
	    "3038326138363438636533643033303130373033343230303034313962323435376464396238616136343436643938"
	    "3066313336666666373831326563643663373737343065656230653238623130643536633063303030323861356236"
	    "653539646365613330376435383362643166373037363965396331313664663262636662313735386139356438363133"
	    "653764653163383438326330227d";
	uint8_t kp[256], mr_system[32], mr_aggregated[32];
	size_t kp_len = 0;

	(void)state;
	memset(&td, 0, sizeof(td));
	assert_int_equal(cvm_hex_decode_exact(mrtd, 96, td.mr_td, 48), CVM_OK);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(cvm_hex_decode_exact(rtmr[i], 96, td.rtmr[i], 48), CVM_OK);
	assert_int_equal(cvm_hex_decode(kp_hex, strlen(kp_hex), kp, sizeof(kp), &kp_len), CVM_OK);
	td.mr_config_id[0] = 1;
	assert_int_equal(cvm_hex_decode_exact(compose, 64, td.mr_config_id + 1, 32), CVM_OK);
	cvm_dstack_aggregate(&td, kp, kp_len, mr_system, mr_aggregated);
	hexcmp("145010fa227e6c2537ad957c64e4a8486fcbfd8265ddfb359168b59afcff1d05", mr_system, 32);
	hexcmp("52f6d7ccbee1bfa870709e8ff489e016e2e5c25a157b7e22ef1ea68fce763694", mr_aggregated, 32);
	/* without the three config registers it is another value (4f1cdf75...) */
	memset(td.mr_config_id, 0, 48);
	cvm_dstack_aggregate(&td, kp, kp_len, mr_system, mr_aggregated);
	assert_memory_not_equal(mr_aggregated, "\x52\xf6\xd7\xcc", 4);
}

/* ---- the OS image rule ------------------------------------------------- */

/* vm_config_of returns the fixture's vm_config, parsed. */
static json_t *vm_config_of(json_t *req)
{
	json_error_t jerr;
	json_t *c = json_loads(json_string_value(json_object_get(req, "vm_config")), 0, &jerr);

	assert_non_null(c);
	return c;
}

static void set_vm_config(json_t *req, json_t *c)
{
	char *s = json_dumps(c, JSON_COMPACT);

	assert_non_null(s);
	assert_int_equal(json_object_set_new(req, "vm_config", json_string(s)), 0);
	free(s);
}

static uint8_t *b64_field(json_t *c, const char *name, size_t *len)
{
	const char *s = json_string_value(json_object_get(json_object_get(c, "tdx_measurement"), name));
	uint8_t *out = NULL;

	assert_non_null(s);
	assert_int_equal(cvm_base64_decode(s, strlen(s), 1 << 20, &out, len), CVM_OK);
	return out;
}

/* forge_image replaces the 48-byte digest `old` in the measurement document
 * with `new` and makes a consistent image around it: its checksum file
 * lists the new document, and os_image_hash is the new checksum file's. */
static void forge_image(json_t *req, const uint8_t old[48], const uint8_t repl[48])
{
	json_t *c = vm_config_of(req), *m;
	size_t doc_len = 0;
	uint8_t *doc = b64_field(c, "measurement", &doc_len), *at, sum[32], image[32];
	char line[128], hex[65], *b64;

	at = memmem(doc, doc_len, old, 48);
	assert_non_null(at);
	memcpy(at, repl, 48);
	cvm_sha256(doc, doc_len, sum);
	cvm_hex_encode(sum, 32, hex);
	(void)snprintf(line, sizeof(line), "%s  measurement.tdx.cbor\n", hex);
	cvm_sha256(line, strlen(line), image);
	cvm_hex_encode(image, 32, hex);
	m = json_object_get(c, "tdx_measurement");
	b64 = cvm_base64_encode_new(doc, doc_len);
	assert_int_equal(json_object_set_new(m, "measurement", json_string(b64)), 0);
	free(b64);
	b64 = cvm_base64_encode_new((const uint8_t *)line, strlen(line));
	assert_int_equal(json_object_set_new(m, "checksum_file", json_string(b64)), 0);
	free(b64);
	assert_int_equal(json_object_set_new(c, "os_image_hash", json_string(hex)), 0);
	set_vm_config(req, c);
	free(doc);
	json_decref(c);
}

static void test_the_os_image_hash_is_verified_when_the_document_binds_it_to_a_verified_quote(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-getquote.json"), *a;

	(void)state;
	setup_ctx();
	a = answer_json(req, quote_accept);
	assert_true(dbool(a, "quote_verified"));
	assert_true(dbool(a, "event_log_verified"));
	assert_true(dbool(a, "os_image_hash_verified"));
	assert_false(dbool(a, "acpi_tables_verified"));
	assert_true(json_is_true(json_object_get(a, "is_valid")));
	assert_true(json_is_null(json_object_get(a, "reason")));
	assert_string_equal(dstr(a, "tcb_status"), "UpToDate");
	json_decref(a);
	json_decref(req);
}

static void test_an_os_image_hash_only_claimed_is_not_verified(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-getquote.json"), *c, *a;

	(void)state;
	setup_ctx();
	/* no measurement at all: the hash stands alone */
	c = vm_config_of(req);
	assert_int_equal(json_object_del(c, "tdx_measurement"), 0);
	set_vm_config(req, c);
	json_decref(c);
	a = answer_json(req, quote_accept);
	assert_true(dbool(a, "quote_verified"));
	assert_false(dbool(a, "os_image_hash_verified"));
	assert_false(json_is_true(json_object_get(a, "is_valid")));
	assert_non_null(strstr(reason(a), "os image"));
	json_decref(a);

	/* another hash claimed with this image's documents */
	json_decref(req);
	req = fixture(FIX "tdx-lite-getquote.json");
	c = vm_config_of(req);
	assert_int_equal(json_object_set_new(
	                     c, "os_image_hash",
	                     json_string("07a2388c7a6a1b6a646d443f1517990a4ec294471d63146cda9d56972765051d")),
	                 0);
	set_vm_config(req, c);
	json_decref(c);
	a = answer_json(req, quote_accept);
	assert_false(dbool(a, "os_image_hash_verified"));
	assert_int_equal(step_ok(a, "os checksum file"), 0);
	json_decref(a);

	/* a variant that cannot be verified here (legacy: image download) */
	json_decref(req);
	req = fixture(FIX "tdx-lite-getquote.json");
	c = vm_config_of(req);
	assert_int_equal(json_object_del(c, "tdx_attestation_variant"), 0);
	set_vm_config(req, c);
	json_decref(c);
	a = answer_json(req, quote_accept);
	assert_false(dbool(a, "os_image_hash_verified"));
	assert_non_null(strstr(reason(a), "does not download"));
	json_decref(a);
	json_decref(req);
}

static void test_a_measurement_of_another_image_is_not_verified(void **state)
{
	json_t *req, *a;
	uint8_t mrtd[48], other[48], kernel[48];

	(void)state;
	setup_ctx();
	assert_int_equal(cvm_hex_decode_exact(fd2_mrtd, 96, mrtd, 48), CVM_OK);
	memcpy(other, mrtd, 48);
	other[47] ^= 1;

	/* the documents of another image, whose hash is claimed: its MRTD differs */
	req = fixture(FIX "tdx-lite-getquote.json");
	forge_image(req, mrtd, other);
	a = answer_json(req, quote_accept);
	assert_int_equal(step_ok(a, "os checksum file"), 1);
	assert_int_equal(step_ok(a, "os measurement listed"), 1);
	assert_int_equal(step_ok(a, "os mrtd"), 0);
	assert_false(dbool(a, "os_image_hash_verified"));
	assert_non_null(strstr(reason(a), "MRTD"));
	json_decref(a);
	json_decref(req);

	/* same firmware, another kernel: RTMR1 differs */
	assert_int_equal(cvm_hex_decode_exact(
	                     "ac7e632dcf5cd2a1fe5c1f41f4d9b8219570e64ed3c61038fdbf25404e6f542ffd57f276bc5076"
	                     "307efaf882e6d64177",
	                     96, kernel, 48),
	                 CVM_OK);
	memcpy(other, kernel, 48);
	other[0] ^= 0x80;
	req = fixture(FIX "tdx-lite-getquote.json");
	forge_image(req, kernel, other);
	a = answer_json(req, quote_accept);
	assert_int_equal(step_ok(a, "os mrtd"), 1);
	assert_int_equal(step_ok(a, "os rtmr1"), 0);
	assert_false(dbool(a, "os_image_hash_verified"));
	json_decref(a);
	json_decref(req);

	/* same firmware and kernel, another initrd: RTMR2 differs */
	assert_int_equal(cvm_hex_decode_exact(
	                     "4fe4f7710134a61d7def357add6ac50bdbfeee5032a4c100375e207216ffe42a3bd5822b24e679"
	                     "f91501fff795b81521",
	                     96, kernel, 48),
	                 CVM_OK);
	memcpy(other, kernel, 48);
	other[5] ^= 0x10;
	req = fixture(FIX "tdx-lite-getquote.json");
	forge_image(req, kernel, other);
	a = answer_json(req, quote_accept);
	assert_int_equal(step_ok(a, "os rtmr1"), 1);
	assert_int_equal(step_ok(a, "os rtmr2"), 0);
	assert_false(dbool(a, "os_image_hash_verified"));
	json_decref(a);
	json_decref(req);

	/* the document swapped without its checksum file: not listed */
	req = fixture(FIX "tdx-lite-getquote.json");
	{
		json_t *c = vm_config_of(req), *m = json_object_get(c, "tdx_measurement");
		size_t doc_len = 0;
		uint8_t *doc = b64_field(c, "measurement", &doc_len), *at = memmem(doc, doc_len, mrtd, 48);
		char *b64;

		assert_non_null(at);
		at[0] ^= 1;
		b64 = cvm_base64_encode_new(doc, doc_len);
		assert_int_equal(json_object_set_new(m, "measurement", json_string(b64)), 0);
		free(b64);
		free(doc);
		set_vm_config(req, c);
		json_decref(c);
	}
	a = answer_json(req, quote_accept);
	assert_int_equal(step_ok(a, "os measurement listed"), 0);
	assert_false(dbool(a, "os_image_hash_verified"));
	json_decref(a);
	json_decref(req);
}

/* The OS image's reason is its own first failure, not an earlier step's (a
 * stripped RTMR0 digest makes the "rtmr0 replay" step fail, which is not a
 * reason to reject). */
static void test_the_os_image_reason_names_the_image_check_that_failed(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-getquote.json"), *log, *a;
	json_error_t jerr;
	uint8_t mrtd[48], other[48];
	char *s;

	(void)state;
	setup_ctx();
	log = json_loads(json_string_value(json_object_get(req, "event_log")), 0, &jerr);
	assert_non_null(log);
	assert_int_equal(json_object_set_new(json_array_get(log, 0), "digest", json_string("")), 0);
	s = json_dumps(log, JSON_COMPACT);
	assert_int_equal(json_object_set_new(req, "event_log", json_string(s)), 0);
	free(s);
	json_decref(log);
	assert_int_equal(cvm_hex_decode_exact(fd2_mrtd, 96, mrtd, 48), CVM_OK);
	memcpy(other, mrtd, 48);
	other[1] ^= 4;
	forge_image(req, mrtd, other);
	a = answer_json(req, quote_accept);
	assert_int_equal(step_ok(a, "rtmr0 replay"), 0);
	assert_true(dbool(a, "event_log_verified"));
	assert_false(dbool(a, "os_image_hash_verified"));
	assert_non_null(strstr(reason(a), "os image: the quote's MRTD"));
	json_decref(a);
	json_decref(req);
}

static void test_an_os_image_bound_to_an_unverified_quote_is_not_verified(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-getquote.json"), *a;

	(void)state;
	setup_ctx();
	a = answer_json(req, NULL); /* no collateral: the quote does not verify */
	assert_int_equal(step_ok(a, "os rtmr2"), 1);
	assert_false(dbool(a, "quote_verified"));
	assert_false(dbool(a, "os_image_hash_verified"));
	json_decref(a);
	json_decref(req);
}

static void test_a_runtime_event_log_that_does_not_replay_to_rtmr3_is_rejected(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-getquote.json"), *log, *ev, *a;
	json_error_t jerr;
	size_t i;
	char *s;

	(void)state;
	setup_ctx();
	log = json_loads(json_string_value(json_object_get(req, "event_log")), 0, &jerr);
	assert_non_null(log);
	json_array_foreach(log, i, ev)
	{
		if (strcmp(json_string_value(json_object_get(ev, "event")), "compose-hash") == 0)
			assert_int_equal(json_object_set_new(ev, "event_payload", json_string("00")), 0);
	}
	s = json_dumps(log, JSON_COMPACT);
	assert_int_equal(json_object_set_new(req, "event_log", json_string(s)), 0);
	free(s);
	json_decref(log);
	a = answer_json(req, quote_accept);
	assert_true(dbool(a, "quote_verified"));
	assert_false(dbool(a, "event_log_verified"));
	assert_int_equal(step_ok(a, "rtmr3 replay"), 0);
	assert_false(json_is_true(json_object_get(a, "is_valid")));
	assert_non_null(strstr(reason(a), "RTMR3"));
	json_decref(a);
	json_decref(req);
}

/* libcbor allocates what a container header announces: a document whose
 * header announces 2^31 elements in 10 bytes is refused by the pre-scan,
 * before libcbor sees it (found by fuzz_osimage as a 16 GiB allocation). */
static void test_a_measurement_document_announcing_a_huge_container_is_refused_before_decoding(void **state)
{
	static const uint8_t doc[] = {0xa1, 0x65, 'i', 'm', 'a', 'g', 'e', 0x9a, 0x7f, 0xff, 0xff, 0xff};
	static const uint8_t nested[] = {0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x00};
	static const uint8_t indefinite[] = {0xbf, 0x61, 'a', 0x01, 0xff};
	struct cvm_osimage_tdx out;
	char err[160];

	(void)state;
	assert_int_equal(cvm_osimage_tdx_parse(doc, sizeof(doc), &out, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "bounds"));
	assert_int_equal(cvm_osimage_tdx_parse(nested, sizeof(nested), &out, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "bounds"));
	assert_int_equal(cvm_osimage_tdx_parse(indefinite, sizeof(indefinite), &out, err, sizeof(err)),
	                 CVM_E_FORMAT);
	assert_non_null(strstr(err, "bounds"));
}

/* ---- a full verdict: `cvm sim` evidence of the F-D2 guest ----------------- */

#define SIM_NOW 1767225600

static char sim_dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* sim_quote makes a simulated TD with the image's two-pass MRTD, extends
 * RTMR0..3 with the fixture's event digests (RTMR3: the runtime events'
 * digests, which the GetQuote form strips) and quotes its report_data. */
static void sim_quote(json_t *req, bool debug)
{
	struct cvm_tee_sim_opts o;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	json_error_t jerr;
	json_t *log, *e;
	uint8_t rd[64], d[48], payload[1024];
	const char *rdh = json_string_value(json_object_get(req, "report_data"));
	char *hex;
	size_t i;

	(void)snprintf(sim_dir, sizeof(sim_dir), "/tmp/cvm-dstack-verify-XXXXXX");
	assert_non_null(mkdtemp(sim_dir));
	cvm_tee_sim_opts_init(&o, SIM_NOW);
	o.with_snp = false;
	o.is_debug = debug;
	assert_int_equal(cvm_hex_decode_exact(fd2_mrtd, 96, o.mrtd, 48), CVM_OK);
	assert_int_equal(cvm_tee_sim_init(sim_dir, &o), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(sim_dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	log = json_loads(json_string_value(json_object_get(req, "event_log")), 0, &jerr);
	assert_non_null(log);
	json_array_foreach(log, i, e)
	{
		const char *dh = json_string_value(json_object_get(e, "digest"));
		const char *ph = json_string_value(json_object_get(e, "event_payload"));
		unsigned imr = (unsigned)json_integer_value(json_object_get(e, "imr"));
		size_t plen = 0;

		if ((uint32_t)json_integer_value(json_object_get(e, "event_type")) == CVM_EV_DSTACK_RUNTIME) {
			assert_int_equal(cvm_hex_decode(ph, strlen(ph), payload, sizeof(payload), &plen),
			                 CVM_OK);
			assert_int_equal(cvm_evl_dstack_digest(json_string_value(json_object_get(e, "event")),
			                                       payload, plen, 1, d),
			                 CVM_OK);
		} else {
			assert_int_equal(cvm_hex_decode_exact(dh, strlen(dh), d, 48), CVM_OK);
		}
		assert_int_equal(cvm_tee_extend(tee, imr, d), CVM_OK);
	}
	json_decref(log);
	assert_int_equal(cvm_hex_decode_exact(rdh, strlen(rdh), rd, 64), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	hex = cvm_hex_encode_new(ev.data, ev.data_len);
	assert_non_null(hex);
	assert_int_equal(json_object_set_new(req, "quote", json_string(hex)), 0);
	free(hex);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
}

/* sim_verify answers `req` through the service's own path: a worker
 * context over a cache in the sim folder, with the sim root as the
 * configured Intel anchor or none (`root` false), and a policy that
 * allows debug TDs when `allow_debug`. */
static void sim_ctx_open(bool root)
{
	static char cache[96], root_path[128];
	char err[256];
	size_t count = 0;

	(void)snprintf(cache, sizeof(cache), "%s/cache", sim_dir);
	(void)snprintf(root_path, sizeof(root_path), "%s/collateral/tdx/intel_sgx_root_ca.der", sim_dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.at = SIM_NOW;
	cfg.cache_dir = cache;
	cfg.offline = true;
	cfg.intel_root = root ? root_path : NULL;
	err[0] = '\0';
	vd_ctx_close(&ctx); /* an earlier test's */
	if (vd_ctx_open(&ctx, &cfg, NULL, err, sizeof(err)) != CVM_OK)
		fail_msg("vd_ctx_open: %s", err);
	if (root) {
		(void)snprintf(root_path, sizeof(root_path), "%s/collateral/tdx", sim_dir);
		if (cvm_cache_import(ctx.cache, root_path, SIM_NOW, &count, err, sizeof(err)) != CVM_OK)
			fail_msg("cvm_cache_import: %s", err);
		assert_true(count > 0);
	}
}

static json_t *sim_verify(json_t *req, bool root, bool allow_debug)
{
	json_t *a;

	sim_ctx_open(root);
	ctx.policy.allow_debug = allow_debug;
	a = answer_json(req, NULL);
	vd_ctx_close(&ctx);
	return a;
}

static void test_simulated_evidence_of_the_fixture_guest_is_valid_with_its_root_configured(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-getquote.json"), *a;
	(void)state;
	sim_quote(req, false);

	/* the sim's collateral imported into the cache, its root configured */
	a = sim_verify(req, true, false);
	assert_true(json_is_true(json_object_get(a, "is_valid")));
	assert_true(json_is_null(json_object_get(a, "reason")));
	assert_true(dbool(a, "quote_verified"));
	assert_true(dbool(a, "event_log_verified"));
	assert_true(dbool(a, "os_image_hash_verified"));
	assert_false(dbool(a, "acpi_tables_verified"));
	assert_true(dbool(a, "simulated"));
	assert_string_equal(dstr(a, "tee_variant"), "dstack-tdx");
	assert_string_equal(dstr(a, "tcb_status"), "UpToDate");
	assert_non_null(strstr(dstr(a, "trust_anchor"), "configured"));
	assert_null(strstr(dstr(a, "trust_anchor"), "built in"));
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(a, "details"), "collateral"), "source")),
	                    "cache");
	assert_string_equal(app(a, "mrtd"), fd2_mrtd);
	assert_string_equal(app(a, "compose_hash"), fd2_compose);
	/* device_id from the verified PCK certificate's PPID, not SHA-256("") */
	assert_string_not_equal(app(a, "device_id"),
	                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	json_decref(a);

	/* the same cache without the sim root configured: the built-in Intel
	 * root does not accept the simulated chain */
	a = sim_verify(req, false, false);
	assert_false(json_is_true(json_object_get(a, "is_valid")));
	assert_false(dbool(a, "quote_verified"));
	assert_false(dbool(a, "os_image_hash_verified"));
	assert_true(dbool(a, "simulated"));
	json_decref(a);
	json_decref(req);
	assert_int_equal(nftw(sim_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* A worker remembers the last PCK chain it labelled: the label must follow
 * the chain of each request, simulated or real, in any order. */
static void test_one_worker_labels_simulated_and_real_quotes_each_by_its_own_chain(void **state)
{
	json_t *sim = fixture(FIX "tdx-lite-getquote.json"), *real = fixture(FIX "tdx-lite-getquote.json");
	json_t *seq[4], *a;
	const bool want[4] = {true, false, true, false};

	(void)state;
	sim_quote(sim, false);
	seq[0] = sim;
	seq[1] = real;
	seq[2] = sim;
	seq[3] = real;

	sim_ctx_open(true);
	for (size_t i = 0; i < 4; i++) {
		a = answer_json(seq[i], NULL);
		if (dbool(a, "simulated") != want[i])
			fail_msg("request %zu: simulated is %d, want %d", i, dbool(a, "simulated"), want[i]);
		/* the sim's quote verifies with its root configured; the real one
		 * does not here (no Intel collateral in this cache) */
		assert_int_equal(dbool(a, "quote_verified"), want[i]);
		json_decref(a);
	}
	vd_ctx_close(&ctx);
	json_decref(sim);
	json_decref(real);
	assert_int_equal(nftw(sim_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* dstack rejects a debug TD whatever else holds: so does POST /verify, even
 * under a policy that allows debug. */
static void test_a_debug_td_is_rejected_even_when_the_policy_allows_it(void **state)
{
	json_t *req = fixture(FIX "tdx-lite-getquote.json"), *a;
	(void)state;
	sim_quote(req, true);
	a = sim_verify(req, true, true);
	assert_false(dbool(a, "quote_verified"));
	assert_false(dbool(a, "os_image_hash_verified"));
	assert_false(json_is_true(json_object_get(a, "is_valid")));
	assert_non_null(strstr(reason(a), "debug"));
	/* authentic, so its TCB status is still reported */
	assert_string_equal(dstr(a, "tcb_status"), "UpToDate");
	json_decref(a);
	json_decref(req);
	assert_int_equal(nftw(sim_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_getquote_fixture_F_D2_is_answered_without_collateral),
	    cmocka_unit_test(test_the_attestation_fixture_F_D1_is_answered_and_ignores_top_level_fields),
	    cmocka_unit_test(test_the_request_shapes_of_F_D3_deserialize_and_fail_with_a_reason),
	    cmocka_unit_test(test_a_body_that_is_not_the_request_object_gets_400),
	    cmocka_unit_test(test_an_event_log_with_a_malformed_later_entry_is_refused_naming_it),
	    cmocka_unit_test(test_mr_system_and_mr_aggregated_reproduce_the_readme_sample),
	    cmocka_unit_test(
	        test_the_os_image_hash_is_verified_when_the_document_binds_it_to_a_verified_quote),
	    cmocka_unit_test(test_an_os_image_hash_only_claimed_is_not_verified),
	    cmocka_unit_test(test_a_measurement_of_another_image_is_not_verified),
	    cmocka_unit_test(test_the_os_image_reason_names_the_image_check_that_failed),
	    cmocka_unit_test(test_an_os_image_bound_to_an_unverified_quote_is_not_verified),
	    cmocka_unit_test(test_a_runtime_event_log_that_does_not_replay_to_rtmr3_is_rejected),
	    cmocka_unit_test(
	        test_a_measurement_document_announcing_a_huge_container_is_refused_before_decoding),
	    cmocka_unit_test(test_simulated_evidence_of_the_fixture_guest_is_valid_with_its_root_configured),
	    cmocka_unit_test(test_one_worker_labels_simulated_and_real_quotes_each_by_its_own_chain),
	    cmocka_unit_test(test_a_debug_td_is_rejected_even_when_the_policy_allows_it),
	};

	return cmocka_run_group_tests(tests, NULL, teardown_ctx);
}
