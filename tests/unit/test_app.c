/* lib/app: app-compose files and MRCONFIGID.
 *
 *  - the three real app-compose files (compat/app-compose: compact A-D1,
 *    vmm-cli indent-4 A-D2, and A-D3's app_compose string) parse strictly,
 *    and their compose hashes are the values expectations.json states (read
 *    from it here); their layouts are told apart;
 *  - MRCONFIGID layout 1 of A-D2 equals the MRCONFIGID of the real TDX quote
 *    in the same folder (quote.json, bytes 232..280), and layout 1 of the
 *    simulator fixture's compose-hash event equals its quote's MRCONFIGID;
 *  - layout 3's document equals upstream's own test vector (dstack-types
 *    mr_config.rs, mr_config_v3_generates_jcs_but_hashes_document_bytes),
 *    and its hash is SHA-256 of the tag, a zero byte and the document,
 *    computed here in one piece; layout 2 against keccak256 of the inputs
 *    concatenated here (tests/integration/app_hash.sh checks layouts 2 and 3
 *    against a Python implementation);
 *  - refused inputs: unknown keys (with a close-match hint), wrong types,
 *    duplicate keys, bad manifest_version, allowed_envs names, key_provider
 *    against the booleans, oversize, too deep, missing required keys;
 *  - every truncation and single-bit flip of the three files either parses
 *    or fails with a message, and never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/app.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/keccak.h>
#include <cvmkit/ratls.h>

#include "vectors.h"

#define DIR "compat/app-compose/"

/* ---- helpers ------------------------------------------------------------ */

static json_t *load_json(const char *rel)
{
	size_t len = 0;
	uint8_t *buf = vector_read(rel, &len);
	json_error_t jerr;
	json_t *j = json_loadb((const char *)buf, len, 0, &jerr);

	free(buf);
	if (j == NULL)
		fail_msg("%s: %s", rel, jerr.text);
	return j;
}

/* file_bytes returns the bytes of vector file `which` (0: A-D1, 1: A-D2,
 * 2: A-D3's app_compose string). */
static uint8_t *file_bytes(int which, size_t *len)
{
	json_t *j;
	uint8_t *p;

	if (which == 0)
		return vector_read(DIR "dstack-examples-rtmr3-based/app-compose.json", len);
	if (which == 1)
		return vector_read(DIR "near-mpc-test-utils/app_compose.json", len);
	j = load_json(DIR "near-mpc-attestation/tcb_info_dev.json");
	*len = json_string_length(json_object_get(j, "app_compose"));
	p = malloc(*len + 1);
	assert_non_null(p);
	memcpy(p, json_string_value(json_object_get(j, "app_compose")), *len);
	json_decref(j);
	return p;
}

/* expected_hash reads the compose hash expectations.json states for item
 * `which`: the value of its first "expect" key that names the hash. */
static void expected_hash(int which, uint8_t out[32])
{
	json_t *j = load_json(DIR "expectations.json");
	json_t *ex = json_object_get(json_array_get(json_object_get(j, "items"), (size_t)which), "expect");
	const char *k, *found = NULL;
	json_t *v;

	json_object_foreach(ex, k, v)
	{
		if (found == NULL &&
		    (strncmp(k, "compose_hash", 12) == 0 || strncmp(k, "sha256(app_compose", 18) == 0))
			found = json_string_value(v);
	}
	assert_non_null(found);
	assert_true(strlen(found) >= 64);
	assert_int_equal(cvm_hex_decode_exact(found, 64, out, 32), CVM_OK);
	json_decref(j);
}

static struct cvm_app_compose *parse_ok(const char *text, unsigned flags)
{
	struct cvm_app_compose *c = NULL;
	char err[512] = "";
	int r = cvm_app_compose_parse((const uint8_t *)text, strlen(text), flags, &c, err, sizeof(err));

	if (r != CVM_OK)
		fail_msg("refused: %s (%s)", err, text);
	assert_non_null(c);
	return c;
}

/* parse_bad checks that `text` is refused with CVM_E_FORMAT and a message
 * containing `needle`. */
static void parse_bad(const char *text, const char *needle)
{
	struct cvm_app_compose *c = (struct cvm_app_compose *)1;
	char err[512] = "";
	int r = cvm_app_compose_parse((const uint8_t *)text, strlen(text), 0, &c, err, sizeof(err));

	if (r != CVM_E_FORMAT || strstr(err, needle) == NULL)
		fail_msg("%s: got %d \"%s\", wanted \"%s\"", text, r, err, needle);
	assert_null(c);
}

#define BASE \
	"\"manifest_version\":2,\"name\":\"t\",\"runner\":\"docker-compose\",\"docker_compose_file\":\"\""

/* ---- the real files ------------------------------------------------------ */

static void real_files_parse_strictly_and_hash_as_stated(void **state)
{
	static const enum cvm_app_layout layouts[] = {CVM_APP_LAYOUT_COMPACT, CVM_APP_LAYOUT_VMM_CLI,
	                                              CVM_APP_LAYOUT_VMM_CLI};
	static const enum cvm_app_kp kps[] = {CVM_APP_KP_KMS, CVM_APP_KP_LOCAL, CVM_APP_KP_LOCAL};

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct cvm_app_compose *c = NULL;
		uint8_t want[32], h[32];
		size_t len = 0;
		uint8_t *buf = file_bytes(i, &len);
		char err[512] = "";
		bool nl = true;

		expected_hash(i, want);
		cvm_app_compose_hash(buf, len, h);
		assert_memory_equal(h, want, 32);
		assert_int_equal(cvm_app_compose_parse(buf, len, 0, &c, err, sizeof(err)), CVM_OK);
		assert_memory_equal(c->compose_hash, want, 32);
		assert_memory_equal(c->default_app_id, want, 20);
		assert_int_equal(c->manifest_version, 2);
		assert_string_equal(c->runner, "docker-compose");
		assert_int_equal(c->key_provider, kps[i]);
		assert_false(c->key_provider_explicit);
		assert_int_equal(c->event_log_version, 1);
		assert_int_equal(cvm_app_compose_layout(buf, len, &nl), layouts[i]);
		assert_false(nl);
		if (i == 0) {
			/* the legacy tproxy_enabled turns the gateway on */
			assert_true(c->gateway_enabled);
			assert_true(c->kms_enabled);
			assert_true(c->secure_time); /* absent: dstack's default */
		} else {
			assert_false(c->gateway_enabled);
			assert_true(c->no_instance_id);
			assert_false(c->secure_time);
			assert_true(c->has_allowed_envs);
			assert_int_equal(c->n_allowed_envs, 0);
			assert_null(c->key_provider_id); /* "" */
		}
		cvm_app_compose_free(c);
		free(buf);
	}
}

static void layout_sees_trailing_newline_and_other_spacing(void **state)
{
	static const char vmm[] = "{\n    \"a\": [],\n    \"b\": {\n        \"c\": 1\n    }\n}";
	static const char nl[] = "{\n    \"a\": 1\n}\n";
	static const char other[] = "{ \"a\": 1 }";
	static const char two_space[] = "{\n  \"a\": 1\n}";
	bool t = false;

	(void)state;
	assert_int_equal(cvm_app_compose_layout((const uint8_t *)vmm, strlen(vmm), &t),
	                 CVM_APP_LAYOUT_VMM_CLI);
	assert_false(t);
	assert_int_equal(cvm_app_compose_layout((const uint8_t *)nl, strlen(nl), &t), CVM_APP_LAYOUT_VMM_CLI);
	assert_true(t);
	assert_int_equal(cvm_app_compose_layout((const uint8_t *)other, strlen(other), &t),
	                 CVM_APP_LAYOUT_OTHER);
	assert_int_equal(cvm_app_compose_layout((const uint8_t *)two_space, strlen(two_space), NULL),
	                 CVM_APP_LAYOUT_OTHER);
	/* a brace inside a string does not count */
	assert_int_equal(cvm_app_compose_layout((const uint8_t *)"{\"a\":\"}\\\"{\"}", 12, NULL),
	                 CVM_APP_LAYOUT_COMPACT);
}

/* ---- MRCONFIGID ----------------------------------------------------------- */

static void layout1_equals_the_real_quotes_mrconfigid(void **state)
{
	struct cvm_app_compose *c = NULL;
	struct cvm_app_mrconfig_in in = {0};
	uint8_t id[48], quoted[48];
	json_t *q = load_json(DIR "near-mpc-test-utils/quote.json");
	size_t len = 0;
	uint8_t *buf = file_bytes(1, &len);
	char err[256];

	(void)state;
	assert_true(json_array_size(q) > 280);
	/* TD report body at 48; MRCONFIGID at body offset 184 */
	for (size_t i = 0; i < 48; i++)
		quoted[i] = (uint8_t)json_integer_value(json_array_get(q, 48 + 184 + i));
	assert_int_equal(cvm_app_compose_parse(buf, len, 0, &c, err, sizeof(err)), CVM_OK);
	in.compose_hash = c->compose_hash;
	in.key_provider = c->key_provider;
	assert_int_equal(cvm_app_mrconfigid(1, &in, id, NULL, err, sizeof(err)), CVM_OK);
	assert_memory_equal(id, quoted, 48);
	assert_int_equal(id[0], 1);
	cvm_app_compose_free(c);
	json_decref(q);
	free(buf);
}

static void layout1_equals_the_simulator_fixtures_mrconfigid(void **state)
{
	struct cvm_va *va = NULL;
	struct cvm_va_check chk;
	struct cvm_app_mrconfig_in in = {0};
	uint8_t id[48];
	size_t len = 0;
	uint8_t *buf = vector_read("compat/versioned-attestation/dstack-simulator/attestation.bin", &len);
	char err[256];
	bool found = false;

	(void)state;
	assert_int_equal(cvm_va_decode(buf, len, &va, err, sizeof(err)), CVM_OK);
	cvm_va_check(va, &chk);
	assert_true(chk.quote_parsed);
	for (size_t i = 0; i < va->runtime_event_count; i++) {
		if (strcmp(va->runtime_events[i].event, "compose-hash") != 0)
			continue;
		assert_int_equal(va->runtime_events[i].payload_len, 32);
		in.compose_hash = va->runtime_events[i].payload;
		found = true;
	}
	assert_true(found);
	assert_int_equal(cvm_app_mrconfigid(1, &in, id, NULL, err, sizeof(err)), CVM_OK);
	assert_memory_equal(id, chk.quote.body.td.mr_config_id, 48);
	cvm_va_free(va);
	free(buf);
}

/* Upstream's vector: MrConfigV3::new(app 0x11*20, compose 0x22*32, gpu
 * 0x55*32, Kms, key_provider_id 0x33*32, instance 0x44*20). */
static void layout3_document_equals_upstreams_vector(void **state)
{
	static const char want[] =
	    "{\"app_id\":\"1111111111111111111111111111111111111111\","
	    "\"compose_hash\":\"2222222222222222222222222222222222222222222222222222222222222222\","
	    "\"gpu_policy_hash\":\"5555555555555555555555555555555555555555555555555555555555555555\","
	    "\"instance_id\":\"4444444444444444444444444444444444444444\","
	    "\"key_provider\":\"kms\","
	    "\"key_provider_id\":\"3333333333333333333333333333333333333333333333333333333333333333\","
	    "\"version\":3}";
	uint8_t app[20], compose[32], gpu[32], kpid[32], inst[20], id[48], h[32], hd[32];
	struct cvm_app_mrconfig_in in = {0};
	uint8_t *cat;
	char *doc = NULL, err[256];

	(void)state;
	memset(app, 0x11, sizeof(app));
	memset(compose, 0x22, sizeof(compose));
	memset(kpid, 0x33, sizeof(kpid));
	memset(inst, 0x44, sizeof(inst));
	memset(gpu, 0x55, sizeof(gpu));
	in.compose_hash = compose;
	in.app_id = app;
	in.key_provider = CVM_APP_KP_KMS;
	in.key_provider_id = kpid;
	in.key_provider_id_len = sizeof(kpid);
	in.instance_id = inst;
	in.gpu_policy_hash = gpu;
	assert_int_equal(cvm_app_mrconfigid(3, &in, id, &doc, err, sizeof(err)), CVM_OK);
	assert_non_null(doc);
	assert_string_equal(doc, want);
	/* SHA-256("dstack-mr-config-v3:" || 0x00 || doc), in one piece here */
	cat = malloc(21 + strlen(want));
	assert_non_null(cat);
	memcpy(cat, "dstack-mr-config-v3:", 20);
	cat[20] = 0;
	memcpy(cat + 21, want, strlen(want));
	cvm_sha256(cat, 21 + strlen(want), h);
	assert_int_equal(id[0], 3);
	assert_memory_equal(id + 1, h, 32);
	for (size_t i = 33; i < 48; i++)
		assert_int_equal(id[i], 0);
	cvm_app_mrconfig_v3_hash(doc, strlen(doc), hd);
	assert_memory_equal(hd, h, 32);
	free(cat);
	free(doc);

	/* Omitted when absent (upstream's omits-gpu and missing-app-id tests);
	 * init_script_hashes in order, the empty list kept. */
	{
		static const uint8_t ih[2][32] = {{0xaa}, {0xbb}};
		struct cvm_app_mrconfig_in m = {.compose_hash = compose, .key_provider = CVM_APP_KP_NONE};

		assert_int_equal(cvm_app_mrconfigid(3, &m, id, &doc, err, sizeof(err)), CVM_OK);
		assert_string_equal(doc,
		                    "{\"compose_hash\":\"2222222222222222222222222222222222222222222222222222"
		                    "222222222222\",\"key_provider\":\"none\",\"version\":3}");
		free(doc);
		m.has_init_script_hashes = true;
		assert_int_equal(cvm_app_mrconfigid(3, &m, id, &doc, err, sizeof(err)), CVM_OK);
		assert_non_null(strstr(doc, "\"init_script_hashes\":[],\"key_provider\""));
		free(doc);
		m.init_script_hashes = ih;
		m.n_init_script_hashes = 2;
		assert_int_equal(cvm_app_mrconfigid(3, &m, id, &doc, err, sizeof(err)), CVM_OK);
		assert_non_null(strstr(doc, "\"init_script_hashes\":[\"aa000000"));
		assert_true(strstr(doc, "\"aa00") < strstr(doc, "\"bb00"));
		free(doc);
	}
}

static void layout2_is_keccak_of_the_inputs(void **state)
{
	struct cvm_keccak256_ctx k;
	uint8_t compose[32], app[20], kpid[5] = {1, 2, 3, 4, 5}, buf[32 + 20 + 1 + 5], d[32], id[48];
	struct cvm_app_mrconfig_in in = {0};
	char err[256];

	(void)state;
	for (size_t i = 0; i < 32; i++)
		compose[i] = (uint8_t)i;
	memset(app, 0xa5, sizeof(app));
	in.compose_hash = compose;
	in.key_provider = CVM_APP_KP_TPM;
	assert_int_equal(cvm_app_mrconfigid(2, &in, id, NULL, err, sizeof(err)), CVM_E_INVAL);
	assert_non_null(strstr(err, "app id"));
	in.app_id = app;
	in.key_provider_id = kpid;
	in.key_provider_id_len = sizeof(kpid);
	assert_int_equal(cvm_app_mrconfigid(2, &in, id, NULL, err, sizeof(err)), CVM_OK);
	memcpy(buf, compose, 32);
	memcpy(buf + 32, app, 20);
	buf[52] = 3; /* tpm */
	memcpy(buf + 53, kpid, 5);
	cvm_keccak256_init(&k);
	cvm_keccak256_update(&k, buf, sizeof(buf));
	cvm_keccak256_final(&k, d);
	assert_int_equal(id[0], 2);
	assert_memory_equal(id + 1, d, 32);
	assert_int_equal(cvm_app_mrconfigid(4, &in, id, NULL, err, sizeof(err)), CVM_E_INVAL);
	assert_int_equal(cvm_app_mrconfigid(0, &in, id, NULL, err, sizeof(err)), CVM_E_INVAL);
}

/* ---- what the parser refuses and accepts ---------------------------------- */

static void bad_files_are_refused_naming_the_key(void **state)
{
	(void)state;
	parse_bad("{" BASE ",\"kms_enable\":true}",
	          "key \"kms_enable\" is not an app-compose key (did you mean "
	          "\"kms_enabled\"?)");
	parse_bad("{" BASE ",\"zzzzzzzzzzzz\":1}", "key \"zzzzzzzzzzzz\" is not an app-compose key");
	parse_bad("{" BASE ",\"public_logs\":\"yes\"}",
	          "key \"public_logs\" must be true or false, not a string");
	parse_bad("{" BASE ",\"public_logs\":null}", "key \"public_logs\" must be true or false, not null");
	parse_bad("{" BASE ",\"kms_enabled\":true,\"kms_enabled\":false}", "duplicate");
	parse_bad("{\"manifest_version\":3,\"name\":\"t\",\"runner\":\"bash\",\"bash_script\":\"\"}",
	          "must be the string \"3\"");
	parse_bad("{\"manifest_version\":\"03\",\"name\":\"t\",\"runner\":\"bash\",\"bash_script\":\"\"}",
	          "key \"manifest_version\"");
	parse_bad("{\"manifest_version\":1,\"name\":\"t\",\"runner\":\"bash\",\"bash_script\":\"\"}",
	          "key \"manifest_version\"");
	parse_bad("{\"manifest_version\":2.0,\"name\":\"t\",\"runner\":\"bash\",\"bash_script\":\"\"}",
	          "key \"manifest_version\"");
	parse_bad("{" BASE ",\"allowed_envs\":[\"GOOD\",\"1BAD\"]}", "\"1BAD\" is not a variable name");
	parse_bad("{" BASE ",\"allowed_envs\":[\"A-B\"]}", "\"A-B\" is not a variable name");
	parse_bad("{" BASE ",\"allowed_envs\":[\"A\",\"A\"]}", "\"A\" is listed twice");
	parse_bad("{" BASE ",\"allowed_envs\":\"A\"}", "key \"allowed_envs\" must be an array");
	parse_bad("{" BASE ",\"kms_enabled\":true,\"key_provider\":\"tpm\"}",
	          "key \"key_provider\" is \"tpm\" but kms_enabled is true");
	parse_bad("{" BASE ",\"local_key_provider_enabled\":true,\"key_provider\":\"kms\"}",
	          "local_key_provider_enabled is true");
	parse_bad("{" BASE ",\"key_provider\":\"sgx\"}", "key \"key_provider\": must be");
	parse_bad("{" BASE ",\"key_provider_id\":\"abc\"}", "key \"key_provider_id\" must be an even number");
	parse_bad("{" BASE ",\"key_provider_id\":\"0x12\"}", "key \"key_provider_id\": must be hex digits");
	parse_bad("{" BASE ",\"storage_fs\":\"btrfs\"}", "key \"storage_fs\"");
	parse_bad("{" BASE ",\"swap_size\":\"1Q\"}", "key \"swap_size\"");
	parse_bad("{" BASE ",\"swap_size\":-1}", "key \"swap_size\"");
	parse_bad("{" BASE ",\"event_log_version\":3}", "key \"event_log_version\"");
	parse_bad("{" BASE ",\"init_script\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]}", "at most 5");
	parse_bad("{" BASE ",\"init_script\":[\"a\",2]}", "key \"init_script\"");
	parse_bad("{" BASE ",\"init_script\":[\"a\",\"b\"]}", "needs manifest_version \"3\"");
	parse_bad("{" BASE ",\"requirements\":{}}", "needs manifest_version \"3\"");
	parse_bad("{\"manifest_version\":\"3\",\"name\":\"t\",\"runner\":\"docker-compose\",\"docker_compose_"
	          "file\":"
	          "\"\",\"requirements\":{\"os_version_policy\":\">=1\"}}",
	          "\"os_version_policy\" is not a member of requirements");
	parse_bad("{\"manifest_version\":\"3\",\"name\":\"t\",\"runner\":\"docker-compose\",\"docker_compose_"
	          "file\":"
	          "\"\",\"requirements\":{\"gpu_policy\":{\"allow_debugger\":true}}}",
	          "\"allow_debugger\" is not a member of gpu_policy");
	parse_bad("{" BASE ",\"snapshotter\":\"stargz\"}", "nerdctl-compose");
	parse_bad("{" BASE ",\"port_policy\":{\"ports\":[{\"port\":70000}]}}", "key \"port_policy\"");
	parse_bad("{" BASE
	          ",\"verity_volumes\":[{\"source\":\"a\",\"verity_root\":\"00\",\"target\":\"/x\"}]}",
	          "verity_root");
	parse_bad("{\"manifest_version\":2,\"runner\":\"docker-compose\",\"docker_compose_file\":\"\"}",
	          "key \"name\" is missing");
	parse_bad("{\"manifest_version\":2,\"name\":\"t\",\"docker_compose_file\":\"\"}",
	          "key \"runner\" is missing");
	parse_bad("{\"manifest_version\":2,\"name\":\"t\",\"runner\":\"docker-compose\"}",
	          "key \"docker_compose_file\" is missing");
	parse_bad("{\"manifest_version\":2,\"name\":\"t\",\"runner\":\"podman\"}", "key \"runner\"");
	parse_bad("[1,2]", "one JSON object");
	parse_bad("{" BASE "} trailing", "not valid JSON");
	parse_bad("", "not valid JSON");
}

static void oversize_and_deep_files_are_refused(void **state)
{
	struct cvm_app_compose *c = NULL;
	size_t n = CVM_APP_COMPOSE_MAX + 1;
	uint8_t *big = malloc(n);
	char err[256] = "", deep[256];
	size_t d = 0;

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(cvm_app_compose_parse(big, n, 0, &c, err, sizeof(err)), CVM_E_TOO_LARGE);
	assert_non_null(strstr(err, "limit"));
	assert_null(c);
	free(big);
	/* a key under LAX holding 40 nested arrays */
	d += (size_t)snprintf(deep, sizeof(deep), "{" BASE ",\"x\":");
	for (int i = 0; i < 40; i++)
		deep[d++] = '[';
	for (int i = 0; i < 40; i++)
		deep[d++] = ']';
	deep[d++] = '}';
	deep[d] = '\0';
	assert_int_equal(
	    cvm_app_compose_parse((const uint8_t *)deep, d, CVM_APP_PARSE_LAX, &c, err, sizeof(err)),
	    CVM_E_FORMAT);
	assert_non_null(strstr(err, "deeper"));
}

static void accepted_forms_hold_what_the_file_says(void **state)
{
	struct cvm_app_compose *c;

	(void)state;
	c = parse_ok(
	    "{\"manifest_version\":\"3\",\"name\":\"n\",\"runner\":\"nerdctl-compose\",\"snapshotter\":"
	    "\"stargz\",\"docker_compose_file\":\"x\",\"init_script\":[\"echo a\",\"echo b\"],"
	    "\"swap_size\":\"1G\",\"storage_fs\":\"EXT4\",\"key_provider\":\"tpm\",\"key_provider_id\":"
	    "\"ABcd\",\"event_log_version\":2,\"requirements\":{\"gpu_policy\":{\"rego\":\"p\"}},"
	    "\"port_policy\":{\"ports\":[{\"port\":443,\"pp\":true}],\"restrict_mode\":true},"
	    "\"verity_volumes\":[{\"source\":\"v.img\",\"verity_root\":\"" /* 64 hex */
	    "0000000000000000000000000000000000000000000000000000000000000000\",\"target\":\"/v\"}]}",
	    0);
	assert_int_equal(c->manifest_version, 3);
	assert_int_equal(c->n_init_scripts, 2);
	assert_string_equal(c->init_scripts[1], "echo b");
	assert_true(c->swap_size == 1ull << 30);
	assert_int_equal(c->key_provider, CVM_APP_KP_TPM);
	assert_true(c->key_provider_explicit);
	assert_int_equal(c->key_provider_id_len, 2);
	assert_int_equal(c->key_provider_id[0], 0xab);
	assert_int_equal(c->event_log_version, 2);
	assert_true(c->has_requirements);
	{
		/* SHA-256 of the JCS text of {"rego":"p"} */
		uint8_t h[32];

		cvm_sha256("{\"rego\":\"p\"}", 12, h);
		assert_memory_equal(c->gpu_policy_hash, h, 32);
	}
	cvm_app_compose_free(c);

	c = parse_ok("{\"manifest_version\":2,\"name\":\"b\",\"runner\":\"bash\",\"bash_script\":\"x\","
	             "\"init_script\":\"one\",\"swap_size\":\"0x1000\",\"features\":[\"tproxy-net\"],"
	             "\"key_provider\":null}",
	             0);
	assert_int_equal(c->n_init_scripts, 1);
	assert_true(c->swap_size == 4096);
	assert_true(c->gateway_enabled);
	assert_int_equal(c->key_provider, CVM_APP_KP_NONE);
	assert_false(c->key_provider_explicit);
	cvm_app_compose_free(c);

	/* LAX: unknown keys and the required ones' defaults */
	c = parse_ok("{\"salt\":\"x\",\"docker_compose_file\":\"\"}", CVM_APP_PARSE_LAX);
	assert_int_equal(c->n_unknown_keys, 1);
	assert_string_equal(c->name, "");
	assert_string_equal(c->runner, "docker-compose");
	assert_int_equal(c->manifest_version, 2);
	cvm_app_compose_free(c);
	assert_string_equal(cvm_app_kp_name(CVM_APP_KP_LOCAL), "local");
}

/* The VMM's inputs from a parsed file: init scripts pinned from manifest
 * version 3 only (dstack vmm mr_config.rs tests manifest_v2_omits / v3
 * includes empty init_script_hashes), the default app id, the TDX layout. */
static void compose_mrconfigid_takes_what_the_vmm_takes(void **state)
{
	struct cvm_app_compose *c;
	uint8_t id[48], ref[48], h[32];
	char *doc = NULL, err[256], hex[65];
	struct cvm_app_mrconfig_in in = {0};

	(void)state;
	c = parse_ok("{\"manifest_version\":\"3\",\"name\":\"n\",\"runner\":\"docker-compose\","
	             "\"docker_compose_file\":\"\",\"init_script\":[\"echo a\",\"echo b\"],"
	             "\"key_provider_id\":\"00ff\"}",
	             0);
	assert_int_equal(cvm_app_compose_tdx_layout(c), 3);
	assert_int_equal(cvm_app_compose_mrconfigid(c, 3, NULL, NULL, false, id, &doc, err, sizeof(err)),
	                 CVM_OK);
	cvm_sha256("echo b", 6, h);
	cvm_hex_encode(h, 32, hex);
	assert_non_null(strstr(doc, hex));
	assert_non_null(strstr(doc, "\"key_provider_id\":\"00ff\""));
	assert_null(strstr(doc, "gpu_policy_hash"));
	cvm_hex_encode(c->default_app_id, 20, hex);
	assert_non_null(strstr(doc, hex));
	free(doc);
	/* layout 2 by hand gives the same bytes */
	in.compose_hash = c->compose_hash;
	in.app_id = c->default_app_id;
	in.key_provider = c->key_provider;
	in.key_provider_id = c->key_provider_id;
	in.key_provider_id_len = c->key_provider_id_len;
	assert_int_equal(cvm_app_mrconfigid(2, &in, ref, NULL, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_app_compose_mrconfigid(c, 2, NULL, NULL, false, id, NULL, err, sizeof(err)),
	                 CVM_OK);
	assert_memory_equal(id, ref, 48);
	assert_int_equal(cvm_app_compose_mrconfigid(c, 3, NULL, NULL, true, id, &doc, err, sizeof(err)),
	                 CVM_OK);
	assert_non_null(strstr(doc, "gpu_policy_hash"));
	free(doc);
	cvm_app_compose_free(c);

	c = parse_ok("{" BASE "}", 0);
	assert_int_equal(cvm_app_compose_tdx_layout(c), 1);
	assert_int_equal(cvm_app_compose_mrconfigid(c, 3, NULL, NULL, false, id, &doc, err, sizeof(err)),
	                 CVM_OK);
	assert_null(strstr(doc, "init_script_hashes"));
	free(doc);
	cvm_app_compose_free(c);
	c = parse_ok("{\"manifest_version\":\"3\",\"name\":\"n\",\"runner\":\"docker-compose\","
	             "\"docker_compose_file\":\"\"}",
	             0);
	assert_int_equal(cvm_app_compose_mrconfigid(c, 3, NULL, NULL, false, id, &doc, err, sizeof(err)),
	                 CVM_OK);
	assert_non_null(strstr(doc, "\"init_script_hashes\":[]"));
	free(doc);
	cvm_app_compose_free(c);
}

static void mutated_files_never_crash(void **state)
{
	(void)state;
	for (int f = 0; f < 3; f++) {
		size_t len = 0, ok = 0, refused = 0;
		uint8_t *buf = file_bytes(f, &len);
		uint8_t *m = malloc(len);

		assert_non_null(m);
		for (size_t cut = 0; cut < len; cut++) {
			struct cvm_app_compose *c = NULL;
			char err[512] = "";
			int r = cvm_app_compose_parse(buf, cut, 0, &c, err, sizeof(err));

			/* every proper prefix of a JSON object is incomplete */
			assert_int_not_equal(r, CVM_OK);
			assert_true(err[0] != '\0');
			assert_null(c);
		}
		for (size_t i = 0; i < len; i++) {
			for (int b = 0; b < 8; b++) {
				struct cvm_app_compose *c = NULL;
				char err[512] = "";
				int r;

				memcpy(m, buf, len);
				m[i] ^= (uint8_t)(1u << b);
				r = cvm_app_compose_parse(m, len, 0, &c, err, sizeof(err));
				if (r == CVM_OK) {
					uint8_t h[32];

					/* what parses hashes the mutated bytes */
					cvm_sha256(m, len, h);
					assert_memory_equal(c->compose_hash, h, 32);
					ok++;
				} else {
					assert_true(err[0] != '\0');
					assert_null(c);
					refused++;
				}
				cvm_app_compose_free(c);
				(void)cvm_app_compose_layout(m, len, NULL);
			}
		}
		assert_true(refused > 0);
		assert_true(ok > 0); /* a flip inside docker_compose_file's text still parses */
		free(m);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(real_files_parse_strictly_and_hash_as_stated),
	    cmocka_unit_test(layout_sees_trailing_newline_and_other_spacing),
	    cmocka_unit_test(layout1_equals_the_real_quotes_mrconfigid),
	    cmocka_unit_test(layout1_equals_the_simulator_fixtures_mrconfigid),
	    cmocka_unit_test(layout3_document_equals_upstreams_vector),
	    cmocka_unit_test(layout2_is_keccak_of_the_inputs),
	    cmocka_unit_test(bad_files_are_refused_naming_the_key),
	    cmocka_unit_test(oversize_and_deep_files_are_refused),
	    cmocka_unit_test(accepted_forms_hold_what_the_file_says),
	    cmocka_unit_test(compose_mrconfigid_takes_what_the_vmm_takes),
	    cmocka_unit_test(mutated_files_never_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
