/* Appraisal policy: the strict defaults, the policy file (every error names
 * its key) and the appraisal of hand-filled DCAP verdicts, check by check;
 * then cvm_verify_quote and cvm_verify_quote_warm over real vectors (the
 * stages run in order, the verdict survives a policy rejection, and nothing
 * but a full pass returns 0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>
#include <cvmkit/verify.h>

#include "vectors.h"

/* The end of an expect_error fragment list. */
#define END ((const char *)0)

/* ---- helpers ------------------------------------------------------------ */

static const char full_policy[] =
    "{\n"
    "  \"accepted_tcb_statuses\": [\"UpToDate\", \"SWHardeningNeeded\"],\n"
    "  \"accepted_advisory_ids\": [\"INTEL-SA-00334\", \"INTEL-SA-00615\"],\n"
    "  \"allow_debug\": false,\n"
    "  \"tdx\": {\n"
    "    \"require_sept_ve_disable\": false,\n"
    "    \"require_zero_mr_service_td\": false,\n"
    "    \"allow_reserved_attributes\": true,\n"
    "    \"mr_td\": "
    "\"935be7742dd89c6a4df6dba8353d89041ae0f052beef993b1e7f4524d3bc57650df20e5582158352e1240b3f1fed55d8\",\n"
    "    \"mr_config_id\": "
    "\"010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101\",\n"
    "    \"mr_owner\": "
    "\"020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202\",\n"
    "    \"mr_owner_config\": "
    "\"030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303\",\n"
    "    \"mr_seam\": "
    "\"FFC97A88587660FB04E1F7C851300C96AE0B5A463AC46D035D16C2D9F36D0ED1D23775BCBD27DEB219E3A3CC28023895\",\n"
    "    \"rtmr0\": "
    "\"101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010\",\n"
    "    \"rtmr1\": "
    "\"111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111\",\n"
    "    \"rtmr2\": "
    "\"121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212\",\n"
    "    \"rtmr3\": "
    "\"131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313\"\n"
    "  },\n"
    "  \"report_data\": "
    "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"\n"
    "}\n";

static int parse(const char *json, struct cvm_policy *p, char *err, size_t err_len)
{
	cvm_policy_init(p);
	return cvm_policy_parse_json(json, strlen(json), p, err, err_len);
}

/* expect_error parses `json` and requires CVM_E_FORMAT with a message that
 * contains every one of the given fragments (NULL-terminated). */
static void expect_error(const char *json, ...)
{
	struct cvm_policy p;
	char err[512];
	const char *frag;
	va_list ap;
	int r;

	r = parse(json, &p, err, sizeof(err));
	if (r != CVM_E_FORMAT)
		print_message("policy %s gave %d: %s\n", json, r, err);
	assert_int_equal(r, CVM_E_FORMAT);
	va_start(ap, json);
	for (frag = va_arg(ap, const char *); frag != NULL; frag = va_arg(ap, const char *)) {
		if (strstr(err, frag) == NULL)
			print_message("error \"%s\" lacks \"%s\"\n", err, frag);
		assert_non_null(strstr(err, frag));
	}
	va_end(ap);
}

static const struct cvm_step *find_step(const struct cvm_report *rep, const char *name)
{
	for (size_t i = 0; i < rep->count; i++) {
		if (strcmp(rep->steps[i].name, name) == 0)
			return &rep->steps[i];
	}
	return NULL;
}

static void assert_step(const struct cvm_report *rep, const char *name, bool ok)
{
	const struct cvm_step *s = find_step(rep, name);

	if (s == NULL) {
		print_message("no step %s\n", name);
		fail();
		return;
	}
	if (s->ok != ok)
		print_message("step %s: %s\n", name, s->detail);
	assert_int_equal(s->ok, ok);
}

static void set_td_attributes(struct cvm_tdx_report *td, uint64_t a)
{
	for (size_t i = 0; i < 8; i++)
		td->td_attributes[i] = (uint8_t)(a >> (8 * i));
}

/* A clean, authentic TDX verdict the default policy accepts. */
static void tdx_result(struct cvm_dcap_result *res, bool td15)
{
	memset(res, 0, sizeof(*res));
	res->authentic = true;
	res->tcb_status = CVM_TCB_UP_TO_DATE;
	res->platform_status = CVM_TCB_UP_TO_DATE;
	res->qe_status = CVM_TCB_UP_TO_DATE;
	res->quote.version = td15 ? 5 : 4;
	res->quote.tee = CVM_TEE_TDX;
	res->quote.tee_type = CVM_TEE_TYPE_TDX;
	res->quote.body_type = td15 ? CVM_BODY_TD15 : CVM_BODY_TD10;
	res->quote.body.td.is_td15 = td15;
	set_td_attributes(&res->quote.body.td, CVM_TD_ATTR_SEPT_VE_DISABLE);
	for (size_t i = 0; i < 48; i++) {
		res->quote.body.td.mr_td[i] = 0xa0;
		res->quote.body.td.mr_config_id[i] = 0xa1;
		res->quote.body.td.mr_owner[i] = 0xa2;
		res->quote.body.td.mr_owner_config[i] = 0xa3;
		res->quote.body.td.mr_seam[i] = 0xa4;
		for (size_t j = 0; j < 4; j++)
			res->quote.body.td.rtmr[j][i] = (uint8_t)(0xb0 + j);
	}
	memset(res->quote.body.td.report_data, 0xcc, 64);
}

/* A clean, authentic SGX verdict the default policy accepts. */
static void sgx_result(struct cvm_dcap_result *res)
{
	memset(res, 0, sizeof(*res));
	res->authentic = true;
	res->tcb_status = CVM_TCB_UP_TO_DATE;
	res->quote.version = 3;
	res->quote.tee = CVM_TEE_SGX;
	res->quote.tee_type = CVM_TEE_TYPE_SGX;
	res->quote.body_type = CVM_BODY_SGX;
	res->quote.body.sgx.attributes[0] = 0x05; /* INIT | MODE64BIT, no DEBUG */
	memset(res->quote.body.sgx.mr_enclave, 0xe1, 32);
	memset(res->quote.body.sgx.mr_signer, 0xe2, 32);
	res->quote.body.sgx.isv_prod_id = 7;
	res->quote.body.sgx.isv_svn = 3;
	memset(res->quote.body.sgx.report_data, 0xdd, 64);
}

static void add_advisory(struct cvm_dcap_result *res, const char *id)
{
	snprintf(res->advisory_ids[res->advisory_count], CVM_ADVISORY_ID_MAX, "%s", id);
	res->advisory_count++;
}

static int appraise(const struct cvm_policy *p, const struct cvm_dcap_result *res, struct cvm_report *rep)
{
	cvm_report_init(rep);
	return cvm_policy_appraise_quote(p, res, rep);
}

/* ---- defaults and the policy file --------------------------------------- */

static void policy_init_sets_strict_defaults(void **state)
{
	struct cvm_policy p;

	(void)state;
	memset(&p, 0xff, sizeof(p));
	cvm_policy_init(&p);
	assert_int_equal(p.accepted_tcb_statuses, 1u << CVM_TCB_UP_TO_DATE);
	assert_int_equal(p.accepted_advisory_count, 0);
	assert_false(p.accept_any_advisory);
	assert_false(p.allow_debug);
	assert_true(p.require_sept_ve_disable);
	assert_true(p.require_zero_mr_service_td);
	assert_false(p.allow_reserved_attributes);
	assert_true(p.snp.require_crl);
	assert_false(p.snp.allow_debug_set);
	assert_false(p.snp.allow_migration_agent);
	assert_false(p.mr_td.set);
	assert_false(p.mr_config_id.set);
	assert_false(p.mr_owner.set);
	assert_false(p.mr_owner_config.set);
	assert_false(p.mr_seam.set);
	for (size_t i = 0; i < 4; i++)
		assert_false(p.rtmr[i].set);
	assert_false(p.mr_enclave.set);
	assert_false(p.mr_signer.set);
	assert_false(p.isv_prod_id_set);
	assert_int_equal(p.isv_svn_min, 0);
	assert_false(p.report_data.set);
}

static void policy_full_file_parses(void **state)
{
	struct cvm_policy p;
	char err[256];
	uint8_t want[48];

	(void)state;
	assert_int_equal(parse(full_policy, &p, err, sizeof(err)), CVM_OK);
	assert_int_equal(p.accepted_tcb_statuses,
	                 (1u << CVM_TCB_UP_TO_DATE) | (1u << CVM_TCB_SW_HARDENING_NEEDED));
	assert_int_equal(p.accepted_advisory_count, 2);
	assert_string_equal(p.accepted_advisories[0], "INTEL-SA-00334");
	assert_string_equal(p.accepted_advisories[1], "INTEL-SA-00615");
	assert_false(p.accept_any_advisory);
	assert_false(p.allow_debug);
	assert_false(p.require_sept_ve_disable);
	assert_false(p.require_zero_mr_service_td);
	assert_true(p.allow_reserved_attributes);
	assert_true(p.mr_td.set);
	assert_int_equal(
	    cvm_hex_decode_exact("935be7742dd89c6a4df6dba8353d89041ae0f052beef993b1e7f4524d3bc5765"
	                         "0df20e5582158352e1240b3f1fed55d8",
	                         96, want, sizeof(want)),
	    CVM_OK);
	assert_memory_equal(p.mr_td.v, want, 48);
	assert_true(p.mr_seam.set);
	assert_int_equal(p.mr_seam.v[0], 0xff); /* upper-case hex is fine */
	assert_true(p.mr_config_id.set && p.mr_owner.set && p.mr_owner_config.set);
	assert_int_equal(p.mr_owner_config.v[47], 0x03);
	for (size_t i = 0; i < 4; i++) {
		assert_true(p.rtmr[i].set);
		assert_int_equal(p.rtmr[i].v[0], 0x10 + i);
	}
	assert_true(p.report_data.set);
	assert_int_equal(p.report_data.v[15], 0xff);
	assert_false(p.mr_enclave.set);
}

static void policy_sgx_section_parses(void **state)
{
	struct cvm_policy p;
	char err[256];

	(void)state;
	assert_int_equal(
	    parse("{\"sgx\": {\"mr_enclave\": "
	          "\"dca1a1841ab2e3fa7025c1d175d2c947df760b3baa4a9a0f30f4fd05718fcfe3\", "
	          "\"mr_signer\": \"83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e\", "
	          "\"isv_prod_id\": 0, \"isv_svn_min\": 65535}, "
	          "\"accepted_advisory_ids\": [\"*\"], \"allow_debug\": true}",
	          &p, err, sizeof(err)),
	    CVM_OK);
	assert_true(p.mr_enclave.set);
	assert_int_equal(p.mr_enclave.v[0], 0xdc);
	assert_true(p.mr_signer.set);
	assert_true(p.isv_prod_id_set);
	assert_int_equal(p.isv_prod_id, 0);
	assert_int_equal(p.isv_svn_min, 65535);
	assert_true(p.accept_any_advisory);
	assert_true(p.allow_debug);
}

static void policy_empty_object_keeps_defaults(void **state)
{
	struct cvm_policy p, d;
	char err[256];

	(void)state;
	cvm_policy_init(&d);
	assert_int_equal(parse("{}", &p, err, sizeof(err)), CVM_OK);
	assert_memory_equal(&p, &d, sizeof(p));
}

static void policy_file_replaces_lists_and_keeps_other_fields(void **state)
{
	struct cvm_policy p;
	char err[256];
	const char *second = "{\"accepted_advisory_ids\": [\"INTEL-SA-00999\"]}";

	(void)state;
	assert_int_equal(parse(full_policy, &p, err, sizeof(err)), CVM_OK);
	/* A second file over the first: the list is replaced, the rest stays. */
	assert_int_equal(cvm_policy_parse_json(second, strlen(second), &p, err, sizeof(err)), CVM_OK);
	assert_int_equal(p.accepted_advisory_count, 1);
	assert_string_equal(p.accepted_advisories[0], "INTEL-SA-00999");
	assert_true(p.mr_td.set);
	assert_true(p.allow_reserved_attributes);
}

static void policy_rejects_unknown_keys_by_name(void **state)
{
	(void)state;
	expect_error("{\"alow_debug\": true}", "alow_debug", "unknown key", END);
	expect_error("{\"tdx\": {\"mr_signer_seam\": \"00\"}}", "tdx.mr_signer_seam", "unknown key", END);
	expect_error("{\"sgx\": {\"mr_td\": \"00\"}}", "sgx.mr_td", "unknown key", END);
	/* The SEV-SNP section exists now; its keys are checked by name too. */
	expect_error("{\"snp\": {\"mr_td\": \"00\"}}", "snp.mr_td", "unknown key", END);
}

static void policy_rejects_bad_hex_with_lengths(void **state)
{
	(void)state;
	expect_error("{\"tdx\": {\"mr_td\": "
	             "\"935be7742dd89c6a4df6dba8353d89041ae0f052beef993b1e7f4524d3bc57650df20e5582158352e1240"
	             "b3f1fed55d\"}}",
	             "tdx.mr_td: expected 96 hex digits (48 bytes), got 95", END);
	expect_error("{\"tdx\": {\"rtmr3\": \"\"}}", "tdx.rtmr3: expected 96 hex digits (48 bytes), got 0",
	             END);
	expect_error("{\"sgx\": {\"mr_enclave\": \"00\"}}",
	             "sgx.mr_enclave: expected 64 hex digits (32 bytes), got 2", END);
	expect_error("{\"report_data\": \"0x00\"}", "report_data: expected 128 hex digits (64 bytes), got 4",
	             END);
	expect_error("{\"sgx\": {\"mr_signer\": "
	             "\"83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9g\"}}",
	             "sgx.mr_signer", "non-hex character at position 64", END);
	expect_error("{\"tdx\": {\"mr_seam\": 5}}", "tdx.mr_seam", "got an integer", END);
}

static void policy_rejects_unknown_and_unacceptable_statuses(void **state)
{
	(void)state;
	expect_error("{\"accepted_tcb_statuses\": [\"UpToDate\", \"UptoDate\"]}", "accepted_tcb_statuses[1]",
	             "unknown TCB status \"UptoDate\"", END);
	expect_error("{\"accepted_tcb_statuses\": [\"None\"]}", "accepted_tcb_statuses[0]", "unknown", END);
	expect_error("{\"accepted_tcb_statuses\": [\"Revoked\"]}", "accepted_tcb_statuses[0]", "Revoked",
	             END);
	expect_error("{\"accepted_tcb_statuses\": []}", "accepted_tcb_statuses", "at least one", END);
}

static void policy_rejects_wrong_types_by_name(void **state)
{
	(void)state;
	expect_error("{\"allow_debug\": \"yes\"}", "allow_debug: expected true or false, got a string", END);
	expect_error("{\"allow_debug\": 1}", "allow_debug", "got an integer", END);
	expect_error("{\"accepted_tcb_statuses\": \"UpToDate\"}", "accepted_tcb_statuses",
	             "expected an array", END);
	expect_error("{\"accepted_tcb_statuses\": [1]}", "accepted_tcb_statuses[0]", "got an integer", END);
	expect_error("{\"accepted_advisory_ids\": \"*\"}", "accepted_advisory_ids", "expected an array", END);
	expect_error("{\"accepted_advisory_ids\": [null]}", "accepted_advisory_ids[0]", "got null", END);
	expect_error("{\"tdx\": []}", "tdx: expected an object, got an array", END);
	expect_error("{\"sgx\": true}", "sgx: expected an object, got true", END);
	expect_error("{\"tdx\": {\"require_sept_ve_disable\": null}}", "tdx.require_sept_ve_disable",
	             "got null", END);
	expect_error("{\"sgx\": {\"isv_prod_id\": -1}}", "sgx.isv_prod_id", "0 to 65535", END);
	expect_error("{\"sgx\": {\"isv_svn_min\": 65536}}", "sgx.isv_svn_min", "0 to 65535", END);
	expect_error("{\"sgx\": {\"isv_svn_min\": 1.5}}", "sgx.isv_svn_min", "fraction", END);
	expect_error("[]", "expected a JSON object at the top level", END);
}

static void policy_rejects_bad_advisory_lists(void **state)
{
	(void)state;
	expect_error("{\"accepted_advisory_ids\": [\"*\", \"INTEL-SA-00334\"]}", "accepted_advisory_ids[0]",
	             "only entry", END);
	expect_error("{\"accepted_advisory_ids\": [\"INTEL SA 1\"]}", "accepted_advisory_ids[0]",
	             "\"INTEL SA 1\"", END);
	expect_error("{\"accepted_advisory_ids\": [\"\"]}", "accepted_advisory_ids[0]", END);
	expect_error("{\"accepted_advisory_ids\": [\"INTEL-SA-000000000000000000000000001\"]}",
	             "accepted_advisory_ids[0]", END);
}

static void policy_rejects_bad_json(void **state)
{
	struct cvm_policy p;
	char err[256];
	char *big;

	(void)state;
	expect_error("{\"allow_debug\": true, \"allow_debug\": false}", "duplicate", END);
	expect_error("{\"allow_debug\": true", "invalid JSON at line 1", END);
	expect_error("", "invalid JSON", END);
	expect_error("{\"tdx\": {\"mr_td\": "
	             "\"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	             "00000000000\"}, "
	             "\"sgx\": {\"mr_enclave\": "
	             "\"dca1a1841ab2e3fa7025c1d175d2c947df760b3baa4a9a0f30f4fd05718fcfe3\"}}",
	             "tdx.mr_td", "sgx.mr_enclave", END);
	/* Whole input bounded: one byte over the limit is refused unread. */
	big = malloc(CVM_POLICY_JSON_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', CVM_POLICY_JSON_MAX + 1);
	big[0] = '{';
	big[CVM_POLICY_JSON_MAX] = '}';
	cvm_policy_init(&p);
	assert_int_equal(cvm_policy_parse_json(big, CVM_POLICY_JSON_MAX + 1, &p, err, sizeof(err)),
	                 CVM_E_TOO_LARGE);
	assert_non_null(strstr(err, "limit"));
	/* Exactly at the limit is fine. */
	big[CVM_POLICY_JSON_MAX - 1] = '}';
	assert_int_equal(cvm_policy_parse_json(big, CVM_POLICY_JSON_MAX, &p, err, sizeof(err)), CVM_OK);
	free(big);
}

static void policy_error_leaves_policy_unchanged(void **state)
{
	struct cvm_policy p, before;
	char err[256];
	const char *bad = "{\"allow_debug\": true, \"accepted_tcb_statuses\": [\"OutOfDate\"], \"tdx\": 3}";

	(void)state;
	cvm_policy_init(&p);
	memcpy(&before, &p, sizeof(p));
	assert_int_equal(cvm_policy_parse_json(bad, strlen(bad), &p, err, sizeof(err)), CVM_E_FORMAT);
	assert_memory_equal(&p, &before, sizeof(p));
}

static void policy_load_file_reports_unreadable_file(void **state)
{
	struct cvm_policy p;
	char err[256];

	(void)state;
	cvm_policy_init(&p);
	assert_int_equal(cvm_policy_load_file("/nonexistent/cvmkit-policy.json", &p, err, sizeof(err)),
	                 CVM_E_SYSTEM);
	assert_non_null(strstr(err, "cannot read the policy file"));
}

static void policy_load_file_reads_a_file(void **state)
{
	struct cvm_policy p;
	char path[] = "/tmp/cvmkit-policy-XXXXXX";
	char err[256];
	int fd;
	FILE *f;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fputs(full_policy, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	cvm_policy_init(&p);
	assert_int_equal(cvm_policy_load_file(path, &p, err, sizeof(err)), CVM_OK);
	assert_true(p.mr_td.set);
	assert_int_equal(unlink(path), 0);
}

/* ---- appraisal ------------------------------------------------------------ */

static void appraise_accepts_clean_tdx_and_sgx(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	tdx_result(&res, false);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_null(rep.failed);
	assert_step(&rep, "policy.tcb_status", true);
	assert_step(&rep, "policy.advisories", true);
	assert_step(&rep, "policy.debug", true);
	assert_step(&rep, "policy.sept_ve_disable", true);
	assert_step(&rep, "policy.reserved_attributes", true);
	assert_null(find_step(&rep, "policy.mr_service_td")); /* TD 1.0 has none */
	tdx_result(&res, true);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_step(&rep, "policy.mr_service_td", true);
	sgx_result(&res);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_step(&rep, "policy.debug", true);
	assert_null(find_step(&rep, "policy.sept_ve_disable"));
}

static void appraise_rejects_unaccepted_tcb_status(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	tdx_result(&res, false);
	res.tcb_status = CVM_TCB_OUT_OF_DATE;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_step(&rep, "policy.tcb_status", false);
	assert_non_null(strstr(find_step(&rep, "policy.tcb_status")->detail, "OutOfDate"));
	p.accepted_tcb_statuses |= 1u << CVM_TCB_OUT_OF_DATE;
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	/* No level matched, or revoked: never accepted, whatever the mask says. */
	p.accepted_tcb_statuses = 0xffffffffu;
	res.tcb_status = CVM_TCB_NONE;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	res.tcb_status = CVM_TCB_REVOKED;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
}

static void appraise_rejects_unaccepted_advisory(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;
	char err[256];

	(void)state;
	sgx_result(&res);
	add_advisory(&res, "INTEL-SA-00334");
	add_advisory(&res, "INTEL-SA-00615");
	cvm_policy_init(&p);
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_step(&rep, "policy.advisories", false);
	assert_non_null(strstr(rep.failed->detail, "INTEL-SA-00334"));
	assert_non_null(strstr(rep.failed->detail, "INTEL-SA-00615"));
	/* One of two accepted: still rejected, naming only the other. */
	assert_int_equal(parse("{\"accepted_advisory_ids\": [\"INTEL-SA-00334\"]}", &p, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_null(strstr(rep.failed->detail, "INTEL-SA-00334"));
	assert_non_null(strstr(rep.failed->detail, "INTEL-SA-00615"));
	assert_int_equal(parse("{\"accepted_advisory_ids\": [\"INTEL-SA-00615\", \"INTEL-SA-00334\"]}", &p,
	                       err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_int_equal(parse("{\"accepted_advisory_ids\": [\"*\"]}", &p, err, sizeof(err)), CVM_OK);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
}

static void appraise_rejects_debug_td_and_enclave(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	tdx_result(&res, false);
	set_td_attributes(&res.quote.body.td, CVM_TD_ATTR_SEPT_VE_DISABLE | CVM_TD_ATTR_DEBUG);
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.debug");
	assert_non_null(strstr(rep.failed->detail, "DEBUG"));
	sgx_result(&res);
	res.quote.body.sgx.attributes[0] = 0x07;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.debug");
	p.allow_debug = true;
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_step(&rep, "policy.debug", true);
	tdx_result(&res, false);
	set_td_attributes(&res.quote.body.td, CVM_TD_ATTR_SEPT_VE_DISABLE | CVM_TD_ATTR_DEBUG);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
}

static void appraise_rejects_td_without_sept_ve_disable(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	tdx_result(&res, false);
	set_td_attributes(&res.quote.body.td, 0);
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.sept_ve_disable");
	assert_non_null(strstr(rep.failed->detail, "SEPT_VE_DISABLE"));
	p.require_sept_ve_disable = false;
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_step(&rep, "policy.sept_ve_disable", true);
}

static void appraise_rejects_non_zero_mr_service_td_on_td15_only(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	tdx_result(&res, true);
	res.quote.body.td.mr_service_td[47] = 1;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.mr_service_td");
	assert_non_null(strstr(rep.failed->detail, "MR_SERVICE_TD"));
	p.require_zero_mr_service_td = false;
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	/* A TD 1.0 body has no MR_SERVICE_TD: whatever the bytes, no check. */
	cvm_policy_init(&p);
	tdx_result(&res, false);
	res.quote.body.td.mr_service_td[0] = 1;
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_null(find_step(&rep, "policy.mr_service_td"));
}

static void appraise_rejects_reserved_td_attributes(void **state)
{
	static const uint64_t bits[] = {1ull << 1,  1ull << 7,  1ull << 8, 1ull << 27,
	                                1ull << 29, 1ull << 32, 1ull << 62};
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		cvm_policy_init(&p);
		tdx_result(&res, false);
		set_td_attributes(&res.quote.body.td, CVM_TD_ATTR_SEPT_VE_DISABLE | bits[i]);
		assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
		assert_string_equal(rep.failed->name, "policy.reserved_attributes");
		p.allow_reserved_attributes = true;
		assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	}
	/* Defined bits are not reserved. */
	cvm_policy_init(&p);
	tdx_result(&res, false);
	set_td_attributes(&res.quote.body.td, CVM_TD_ATTR_SEPT_VE_DISABLE | CVM_TD_ATTR_PKS | CVM_TD_ATTR_KL |
	                                          CVM_TD_ATTR_PERFMON);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
}

struct tdx_field {
	const char *step;
	size_t off; /* offset of the expectation in struct cvm_policy */
	uint8_t *(*got)(struct cvm_tdx_report *td);
};

static uint8_t *got_mr_td(struct cvm_tdx_report *td)
{
	return td->mr_td;
}
static uint8_t *got_mr_config_id(struct cvm_tdx_report *td)
{
	return td->mr_config_id;
}
static uint8_t *got_mr_owner(struct cvm_tdx_report *td)
{
	return td->mr_owner;
}
static uint8_t *got_mr_owner_config(struct cvm_tdx_report *td)
{
	return td->mr_owner_config;
}
static uint8_t *got_mr_seam(struct cvm_tdx_report *td)
{
	return td->mr_seam;
}
static uint8_t *got_rtmr0(struct cvm_tdx_report *td)
{
	return td->rtmr[0];
}
static uint8_t *got_rtmr1(struct cvm_tdx_report *td)
{
	return td->rtmr[1];
}
static uint8_t *got_rtmr2(struct cvm_tdx_report *td)
{
	return td->rtmr[2];
}
static uint8_t *got_rtmr3(struct cvm_tdx_report *td)
{
	return td->rtmr[3];
}

static void appraise_checks_each_tdx_measurement(void **state)
{
	const struct tdx_field fields[] = {
	    {"policy.mr_td", offsetof(struct cvm_policy, mr_td), got_mr_td},
	    {"policy.mr_config_id", offsetof(struct cvm_policy, mr_config_id), got_mr_config_id},
	    {"policy.mr_owner", offsetof(struct cvm_policy, mr_owner), got_mr_owner},
	    {"policy.mr_owner_config", offsetof(struct cvm_policy, mr_owner_config), got_mr_owner_config},
	    {"policy.mr_seam", offsetof(struct cvm_policy, mr_seam), got_mr_seam},
	    {"policy.rtmr0", offsetof(struct cvm_policy, rtmr[0]), got_rtmr0},
	    {"policy.rtmr1", offsetof(struct cvm_policy, rtmr[1]), got_rtmr1},
	    {"policy.rtmr2", offsetof(struct cvm_policy, rtmr[2]), got_rtmr2},
	    {"policy.rtmr3", offsetof(struct cvm_policy, rtmr[3]), got_rtmr3},
	};
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct cvm_expect48 *e;
		const uint8_t *got;
		char want_hex[97], got_hex[97];

		cvm_policy_init(&p);
		tdx_result(&res, false);
		e = (struct cvm_expect48 *)((uint8_t *)&p + fields[i].off);
		got = fields[i].got(&res.quote.body.td);
		/* Match. */
		e->set = true;
		memcpy(e->v, got, 48);
		assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
		assert_step(&rep, fields[i].step, true);
		/* Mismatch in the last byte: rejected, expected and got in hex. */
		e->v[47] ^= 0x01;
		assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
		assert_string_equal(rep.failed->name, fields[i].step);
		cvm_hex_encode(e->v, 48, want_hex);
		cvm_hex_encode(got, 48, got_hex);
		assert_non_null(strstr(rep.failed->detail, want_hex));
		assert_non_null(strstr(rep.failed->detail, got_hex));
		assert_non_null(strstr(rep.failed->detail, "expected"));
	}
}

static void appraise_checks_report_data_for_both_tees(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	p.report_data.set = true;
	memset(p.report_data.v, 0xcc, 64);
	tdx_result(&res, false);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_step(&rep, "policy.report_data", true);
	memset(p.report_data.v, 0xdd, 64);
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.report_data");
	sgx_result(&res);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	p.report_data.v[0] = 0;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.report_data");
}

static void appraise_checks_sgx_identity(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	sgx_result(&res);
	p.mr_enclave.set = true;
	memset(p.mr_enclave.v, 0xe1, 32);
	p.mr_signer.set = true;
	memset(p.mr_signer.v, 0xe2, 32);
	p.isv_prod_id_set = true;
	p.isv_prod_id = 7;
	p.isv_svn_min = 3;
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
	assert_step(&rep, "policy.mr_enclave", true);
	assert_step(&rep, "policy.mr_signer", true);
	assert_step(&rep, "policy.isv_prod_id", true);
	assert_step(&rep, "policy.isv_svn", true);

	p.mr_enclave.v[0] = 0;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.mr_enclave");
	p.mr_enclave.v[0] = 0xe1;
	p.mr_signer.v[31] = 0;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.mr_signer");
	p.mr_signer.v[31] = 0xe2;
	p.isv_prod_id = 8;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.isv_prod_id");
	p.isv_prod_id = 7;
	p.isv_svn_min = 4;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.isv_svn");
	assert_non_null(strstr(rep.failed->detail, "3"));
	assert_non_null(strstr(rep.failed->detail, "4"));
}

static void appraise_rejects_expectations_for_the_other_tee(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	p.mr_enclave.set = true;
	tdx_result(&res, false);
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.tee");
	assert_non_null(strstr(rep.failed->detail, "sgx.mr_enclave"));
	cvm_policy_init(&p);
	p.isv_svn_min = 1;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.tee");
	cvm_policy_init(&p);
	p.rtmr[2].set = true;
	sgx_result(&res);
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.tee");
	assert_non_null(strstr(rep.failed->detail, "tdx.rtmr2"));
	/* report_data applies to both. */
	cvm_policy_init(&p);
	p.report_data.set = true;
	memset(p.report_data.v, 0xdd, 64);
	assert_int_equal(appraise(&p, &res, &rep), CVM_OK);
}

static void appraise_runs_every_check_and_reports_all_failures(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	p.mr_td.set = true;
	tdx_result(&res, true);
	set_td_attributes(&res.quote.body.td, CVM_TD_ATTR_DEBUG | (1ull << 40));
	res.quote.body.td.mr_service_td[0] = 9;
	res.tcb_status = CVM_TCB_OUT_OF_DATE;
	add_advisory(&res, "INTEL-SA-00960");
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_step(&rep, "policy.debug", false);
	assert_step(&rep, "policy.sept_ve_disable", false);
	assert_step(&rep, "policy.reserved_attributes", false);
	assert_step(&rep, "policy.mr_service_td", false);
	assert_step(&rep, "policy.tcb_status", false);
	assert_step(&rep, "policy.advisories", false);
	assert_step(&rep, "policy.mr_td", false);
	/* The most fundamental failure comes first. */
	assert_string_equal(rep.failed->name, "policy.debug");
}

static void appraise_fails_closed(void **state)
{
	struct cvm_dcap_result res;
	struct cvm_report rep;
	struct cvm_policy p;

	(void)state;
	cvm_policy_init(&p);
	tdx_result(&res, false);
	res.authentic = false;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_non_null(rep.failed);
	tdx_result(&res, false);
	res.quote.tee = 0;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	tdx_result(&res, false);
	res.quote.body_type = CVM_BODY_SGX;
	assert_int_equal(appraise(&p, &res, &rep), CVM_E_POLICY);
	assert_int_not_equal(cvm_policy_appraise_quote(NULL, &res, NULL), CVM_OK);
	assert_int_not_equal(cvm_policy_appraise_quote(&p, NULL, NULL), CVM_OK);
	/* A NULL report is allowed and changes nothing about the verdict. */
	tdx_result(&res, false);
	assert_int_equal(cvm_policy_appraise_quote(&p, &res, NULL), CVM_OK);
	res.tcb_status = CVM_TCB_OUT_OF_DATE;
	assert_int_equal(cvm_policy_appraise_quote(&p, &res, NULL), CVM_E_POLICY);
}

/* ---- cvm_verify_quote over real vectors ---------------------------------- */

struct vq {
	uint8_t *quote;
	size_t quote_len;
	struct cvm_dcap_collateral *coll;
	struct cvm_policy policy;
	struct cvm_report rep;
	struct cvm_dcap_result res;
};

static struct vq *vq_load(const char *dir)
{
	struct vq *v = calloc(1, sizeof(*v));
	char rel[256], path[4096], what[256];

	assert_non_null(v);
	(void)snprintf(rel, sizeof(rel), "%s/quote.bin", dir);
	v->quote = vector_read(rel, &v->quote_len);
	assert_int_equal(
	    cvm_dcap_collateral_load_dir(vector_path(path, sizeof(path), dir), &v->coll, what, sizeof(what)),
	    CVM_OK);
	cvm_policy_init(&v->policy);
	return v;
}

static void vq_free(struct vq *v)
{
	cvm_dcap_collateral_free(v->coll);
	free(v->quote);
	free(v);
}

static int vq_run(struct vq *v, size_t len, int64_t at)
{
	cvm_report_init(&v->rep);
	return cvm_verify_quote(v->quote, len, v->coll, NULL, 0, at, &v->policy, &v->rep, &v->res);
}

static void verify_quote_accepts_uptodate_tdx_cold_and_warm(void **state)
{
	struct vq *v = vq_load("tdx/dcapqvl-tdx-v4-uptodate");
	struct cvm_dcap_verified *dv = NULL;
	struct cvm_report rep;

	(void)state;
	assert_int_equal(vq_run(v, v->quote_len, 1752919234), CVM_OK);
	assert_null(v->rep.failed);
	assert_true(v->res.authentic);
	assert_int_equal(v->res.tcb_status, CVM_TCB_UP_TO_DATE);
	assert_step(&v->rep, "policy.tcb_status", true);
	cvm_report_init(&rep);
	assert_int_equal(cvm_dcap_collateral_authenticate(v->coll, NULL, 0, 1752919234, &rep, &dv), CVM_OK);
	cvm_report_init(&v->rep);
	assert_int_equal(
	    cvm_verify_quote_warm(dv, v->quote, v->quote_len, 1752919234, &v->policy, &v->rep, &v->res),
	    CVM_OK);
	assert_null(v->rep.failed);
	/* Warm, a strict policy still rejects. */
	v->policy.mr_td.set = true;
	cvm_report_init(&v->rep);
	assert_int_equal(
	    cvm_verify_quote_warm(dv, v->quote, v->quote_len, 1752919234, &v->policy, &v->rep, &v->res),
	    CVM_E_POLICY);
	assert_string_equal(v->rep.failed->name, "policy.mr_td");
	cvm_dcap_verified_free(dv);
	vq_free(v);
}

static void verify_quote_policy_rejection_keeps_the_quote_verdict(void **state)
{
	struct vq *v = vq_load("tdx/automata-tdx-v5-alibaba");

	(void)state;
	assert_int_equal(vq_run(v, v->quote_len, 1749945600), CVM_E_POLICY);
	assert_string_equal(v->rep.failed->name, "policy.mr_service_td");
	assert_true(v->res.authentic);
	assert_int_equal(v->res.tcb_status, CVM_TCB_UP_TO_DATE);
	assert_int_equal(v->res.quote.body_type, CVM_BODY_TD15);
	v->policy.require_zero_mr_service_td = false;
	assert_int_equal(vq_run(v, v->quote_len, 1749945600), CVM_OK);
	vq_free(v);
}

static void verify_quote_stops_at_a_malformed_quote(void **state)
{
	struct vq *v = vq_load("sgx/zkdcap-sgx-v3-swhardening");

	(void)state;
	v->policy.accepted_tcb_statuses = 0xfe;
	v->policy.accept_any_advisory = true;
	assert_int_equal(vq_run(v, v->quote_len, 1737458686), CVM_OK);
	/* Truncated: the parse step fails, nothing else runs, no field is shown. */
	assert_int_not_equal(vq_run(v, v->quote_len - 1, 1737458686), CVM_OK);
	assert_int_equal(v->rep.count, 1);
	assert_string_equal(v->rep.steps[0].name, "quote.parse");
	assert_false(v->rep.steps[0].ok);
	assert_int_equal(v->res.quote.version, 0);
	assert_false(v->res.authentic);
	vq_free(v);
}

static void verify_quote_keeps_parsed_fields_when_collateral_fails(void **state)
{
	struct vq *v = vq_load("tdx/dcapqvl-tdx-v4-uptodate");
	uint8_t want[48];

	(void)state;
	/* A year after the collateral expired. */
	assert_int_not_equal(vq_run(v, v->quote_len, 1752919234 + 365 * 86400), CVM_OK);
	assert_non_null(v->rep.failed);
	assert_false(v->res.authentic);
	assert_int_equal(v->res.quote.version, 4);
	assert_int_equal(v->res.quote.tee, CVM_TEE_TDX);
	assert_int_equal(
	    cvm_hex_decode_exact("91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
	                         "de03ae6dc5f87f27428b2538873118b7",
	                         96, want, sizeof(want)),
	    CVM_OK);
	assert_memory_equal(v->res.quote.body.td.mr_td, want, 48);
	assert_null(find_step(&v->rep, "policy.tcb_status"));
	vq_free(v);
}

static void verify_quote_rejects_trailing_bytes_but_reports_the_rest(void **state)
{
	struct vq *v = vq_load("tdx/gotdxguest-tdx-v4-spr-nomatch");

	(void)state;
	v->policy.accepted_tcb_statuses = 0xfe & ~(1u << CVM_TCB_REVOKED);
	v->policy.accept_any_advisory = true;
	v->policy.require_sept_ve_disable = false;
	assert_int_equal(vq_run(v, v->quote_len, 1688173200), CVM_E_FORMAT);
	assert_string_equal(v->rep.failed->name, "quote.parse");
	assert_int_equal(v->res.quote.tee, CVM_TEE_TDX);
	assert_true(v->res.quote.trailing_garbage);
	/* Verified for the record, never appraised. */
	assert_non_null(find_step(&v->rep, "quote_signature"));
	assert_null(find_step(&v->rep, "policy.tcb_status"));
	vq_free(v);
}

static void verify_quote_refuses_missing_arguments(void **state)
{
	struct vq *v = vq_load("tdx/dcapqvl-tdx-v4-uptodate");

	(void)state;
	cvm_report_init(&v->rep);
	assert_int_equal(
	    cvm_verify_quote(NULL, 0, v->coll, NULL, 0, 1752919234, &v->policy, &v->rep, &v->res),
	    CVM_E_INVAL);
	assert_int_equal(
	    cvm_verify_quote(v->quote, v->quote_len, NULL, NULL, 0, 1752919234, &v->policy, &v->rep, &v->res),
	    CVM_E_INVAL);
	assert_int_equal(
	    cvm_verify_quote(v->quote, v->quote_len, v->coll, NULL, 0, 1752919234, NULL, &v->rep, &v->res),
	    CVM_E_INVAL);
	assert_int_equal(
	    cvm_verify_quote(v->quote, v->quote_len, v->coll, NULL, 0, 1752919234, &v->policy, &v->rep, NULL),
	    CVM_E_INVAL);
	assert_int_equal(
	    cvm_verify_quote_warm(NULL, v->quote, v->quote_len, 1752919234, &v->policy, &v->rep, &v->res),
	    CVM_E_INVAL);
	/* A NULL report is fine. */
	assert_int_equal(
	    cvm_verify_quote(v->quote, v->quote_len, v->coll, NULL, 0, 1752919234, &v->policy, NULL, &v->res),
	    CVM_OK);
	vq_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(policy_init_sets_strict_defaults),
	    cmocka_unit_test(policy_full_file_parses),
	    cmocka_unit_test(policy_sgx_section_parses),
	    cmocka_unit_test(policy_empty_object_keeps_defaults),
	    cmocka_unit_test(policy_file_replaces_lists_and_keeps_other_fields),
	    cmocka_unit_test(policy_rejects_unknown_keys_by_name),
	    cmocka_unit_test(policy_rejects_bad_hex_with_lengths),
	    cmocka_unit_test(policy_rejects_unknown_and_unacceptable_statuses),
	    cmocka_unit_test(policy_rejects_wrong_types_by_name),
	    cmocka_unit_test(policy_rejects_bad_advisory_lists),
	    cmocka_unit_test(policy_rejects_bad_json),
	    cmocka_unit_test(policy_error_leaves_policy_unchanged),
	    cmocka_unit_test(policy_load_file_reports_unreadable_file),
	    cmocka_unit_test(policy_load_file_reads_a_file),
	    cmocka_unit_test(appraise_accepts_clean_tdx_and_sgx),
	    cmocka_unit_test(appraise_rejects_unaccepted_tcb_status),
	    cmocka_unit_test(appraise_rejects_unaccepted_advisory),
	    cmocka_unit_test(appraise_rejects_debug_td_and_enclave),
	    cmocka_unit_test(appraise_rejects_td_without_sept_ve_disable),
	    cmocka_unit_test(appraise_rejects_non_zero_mr_service_td_on_td15_only),
	    cmocka_unit_test(appraise_rejects_reserved_td_attributes),
	    cmocka_unit_test(appraise_checks_each_tdx_measurement),
	    cmocka_unit_test(appraise_checks_report_data_for_both_tees),
	    cmocka_unit_test(appraise_checks_sgx_identity),
	    cmocka_unit_test(appraise_rejects_expectations_for_the_other_tee),
	    cmocka_unit_test(appraise_runs_every_check_and_reports_all_failures),
	    cmocka_unit_test(appraise_fails_closed),
	    cmocka_unit_test(verify_quote_accepts_uptodate_tdx_cold_and_warm),
	    cmocka_unit_test(verify_quote_policy_rejection_keeps_the_quote_verdict),
	    cmocka_unit_test(verify_quote_stops_at_a_malformed_quote),
	    cmocka_unit_test(verify_quote_keeps_parsed_fields_when_collateral_fails),
	    cmocka_unit_test(verify_quote_rejects_trailing_bytes_but_reports_the_rest),
	    cmocka_unit_test(verify_quote_refuses_missing_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
