/* Collateral validity, revocation and TCB levels, end to end through
 * cvm_verify_quote. The real vectors are signed by Intel, so every case here
 * builds its own Intel-shaped PKI with tests/common/testpki (one knob changed
 * from a baseline that verifies) and checks the verdict, the failing step and
 * the reason it gives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/dcap.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/report.h>
#include <cvmkit/verify.h>

#include "testpki.h"

/* A fixed verification time (2026-01-01T00:00:00Z) keeps runs reproducible;
 * every validity window of the test PKI is centred on it. */
#define NOW ((int64_t)1767225600)
#define DAY ((int64_t)24 * 3600)

struct outcome {
	int r;
	struct cvm_report rep;
	struct cvm_dcap_result res;
};

static void policy_default(struct cvm_policy *p)
{
	cvm_policy_init(p);
}

/* run_faulty writes the PKI described by `o`, with `faults` injected, into a
 * fresh folder, loads it as a collateral folder and verifies its quote.bin
 * at NOW, anchored in the generated root (or Intel's built-in root when
 * `builtin_root`). */
static void run_faulty(const struct cvm_testpki_opts *o, unsigned faults, const struct cvm_policy *p,
                       bool builtin_root, struct outcome *out)
{
	char dir[] = "/tmp/cvm-testpki-XXXXXX";
	char path[4096], what[256] = "";
	struct cvm_dcap_collateral *coll = NULL;
	uint8_t *quote = NULL, *root = NULL;
	size_t quote_len = 0, root_len = 0;

	int r_write, r_load = CVM_E_INTERNAL, r_quote = CVM_E_INTERNAL, r_root = CVM_E_INTERNAL;

	memset(out, 0, sizeof(*out));
	cvm_report_init(&out->rep);
	assert_non_null(mkdtemp(dir));
	/* Everything is read before any assertion, so the folder is always removed. */
	r_write = cvm_testpki_write(o, faults, dir);
	if (r_write == CVM_OK) {
		r_load = cvm_dcap_collateral_load_dir(dir, &coll, what, sizeof(what));
		(void)snprintf(path, sizeof(path), "%s/quote.bin", dir);
		r_quote = cvm_file_read(path, CVM_QUOTE_MAX, &quote, &quote_len);
		(void)snprintf(path, sizeof(path), "%s/intel_sgx_root_ca.der", dir);
		r_root = cvm_file_read(path, CVM_DCAP_CERT_MAX, &root, &root_len);
	}
	assert_int_equal(cvm_testpki_dir_remove(dir), CVM_OK);
	assert_int_equal(r_write, CVM_OK);
	if (r_load != CVM_OK)
		fail_msg("cvm_dcap_collateral_load_dir: %d (%s)", r_load, what);
	assert_int_equal(r_quote, CVM_OK);
	assert_int_equal(r_root, CVM_OK);

	out->r = cvm_verify_quote(quote, quote_len, coll, builtin_root ? NULL : root,
	                          builtin_root ? 0 : root_len, NOW, p, &out->rep, &out->res);
	if (out->rep.failed != NULL)
		print_message("    step %s: %s\n", out->rep.failed->name, out->rep.failed->detail);
	cvm_dcap_collateral_free(coll);
	free(quote);
	free(root);
}

static void run(const struct cvm_testpki_opts *o, const struct cvm_policy *p, bool builtin_root,
                struct outcome *out)
{
	run_faulty(o, 0, p, builtin_root, out);
}

/* expect_reject checks the error, the first failed step and that its detail
 * names the cause. */
static void expect_reject(const struct outcome *oc, int err, const char *step, const char *cause)
{
	assert_int_equal(oc->r, err);
	assert_non_null(oc->rep.failed);
	assert_string_equal(oc->rep.failed->name, step);
	if (strstr(oc->rep.failed->detail, cause) == NULL)
		fail_msg("step %s detail \"%s\" does not mention \"%s\"", step, oc->rep.failed->detail,
		         cause);
}

static void reject_with(const struct cvm_testpki_opts *o, int err, const char *step, const char *cause)
{
	struct cvm_policy p;
	struct outcome oc;

	policy_default(&p);
	run(o, &p, false, &oc);
	expect_reject(&oc, err, step, cause);
}

/* ---- baseline ------------------------------------------------------------ */

static void baseline_tdx_quote_is_accepted_up_to_date(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	policy_default(&p);
	run(&o, &p, false, &oc);
	assert_int_equal(oc.r, CVM_OK);
	assert_null(oc.rep.failed);
	assert_true(oc.res.authentic);
	assert_int_equal(oc.res.tcb_status, CVM_TCB_UP_TO_DATE);
	assert_int_equal(oc.res.advisory_count, 0);
	assert_memory_equal(oc.res.fmspc, o.fmspc, sizeof(o.fmspc));
	assert_memory_equal(oc.res.cpu_svn, o.cpu_svn, sizeof(o.cpu_svn));
	assert_int_equal(oc.res.pce_svn, o.pce_svn);
	assert_memory_equal(oc.res.quote.body.td.report_data, o.quote.td.report_data, 64);
}

static void baseline_sgx_quote_is_accepted_up_to_date(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_SGX, NOW);
	policy_default(&p);
	run(&o, &p, false, &oc);
	assert_int_equal(oc.r, CVM_OK);
	assert_int_equal(oc.res.tcb_status, CVM_TCB_UP_TO_DATE);
	assert_int_equal(oc.res.quote.tee, CVM_TEE_SGX);
}

static void test_root_is_rejected_under_intel_root(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	policy_default(&p);
	run(&o, &p, true, &oc);
	/* The test root copies Intel's names, so the first artefact checked
	 * against the real root (the root CA CRL) fails on its signature. */
	if (oc.r != CVM_E_CHAIN && oc.r != CVM_E_SIGNATURE)
		fail_msg("expected CVM_E_CHAIN or CVM_E_SIGNATURE, got %d", oc.r);
	assert_non_null(oc.rep.failed);
	assert_string_equal(oc.rep.failed->name, "root_ca_crl");
	assert_false(oc.res.authentic);
}

/* ---- dates --------------------------------------------------------------- */

static void pck_leaf_expired_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.cert[CVM_TESTPKI_PCK_LEAF].to = NOW - 1;
	reject_with(&o, CVM_E_EXPIRED, "pck_chain", "expired");
}

static void pck_leaf_not_yet_valid_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.cert[CVM_TESTPKI_PCK_LEAF].from = NOW + 60;
	reject_with(&o, CVM_E_EXPIRED, "pck_chain", "not yet valid");
}

static void pck_ca_expired_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.cert[CVM_TESTPKI_PCK_CA].to = NOW - DAY;
	/* The PCK CA is first met as the PCK CRL's issuer. */
	reject_with(&o, CVM_E_EXPIRED, "pck_crl", "expired");
}

static void root_crl_expired_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.root_crl.from = NOW - 30 * DAY;
	o.root_crl.to = NOW - 1;
	reject_with(&o, CVM_E_EXPIRED, "root_ca_crl", "expired");
}

static void root_crl_not_yet_valid_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.root_crl.from = NOW + 1;
	reject_with(&o, CVM_E_EXPIRED, "root_ca_crl", "not yet valid");
}

static void pck_crl_expired_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.pck_crl.from = NOW - 30 * DAY;
	o.pck_crl.to = NOW - 1;
	reject_with(&o, CVM_E_EXPIRED, "pck_crl", "expired");
}

static void tcb_info_expired_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.tcb_info.from = NOW - 31 * DAY;
	o.tcb_info.to = NOW - 1;
	reject_with(&o, CVM_E_EXPIRED, "tcb_info", "expired");
}

static void tcb_info_not_yet_issued_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.tcb_info.from = NOW + 3600;
	reject_with(&o, CVM_E_EXPIRED, "tcb_info", "not yet valid");
}

static void qe_identity_expired_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.qe_identity.from = NOW - 31 * DAY;
	o.qe_identity.to = NOW - 1;
	reject_with(&o, CVM_E_EXPIRED, "qe_identity", "expired");
}

static void tcb_signing_cert_expired_is_rejected(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.cert[CVM_TESTPKI_TCB_SIGNER].to = NOW - 1;
	/* The TCB signing certificate is first met in the TCB info chain. */
	reject_with(&o, CVM_E_EXPIRED, "tcb_info", "expired");
}

/* ---- revocation ---------------------------------------------------------- */

static void pck_leaf_on_pck_crl_is_revoked(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.revoke[CVM_TESTPKI_PCK_LEAF] = true;
	reject_with(&o, CVM_E_REVOKED, "pck_chain", "revoked");
}

static void pck_ca_on_root_crl_is_revoked(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.revoke[CVM_TESTPKI_PCK_CA] = true;
	reject_with(&o, CVM_E_REVOKED, "pck_crl", "revoked");
}

static void tcb_signer_on_root_crl_is_revoked(void **state)
{
	struct cvm_testpki_opts o;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.revoke[CVM_TESTPKI_TCB_SIGNER] = true;
	reject_with(&o, CVM_E_REVOKED, "tcb_info", "revoked");
}

static void unrelated_serials_on_crls_do_not_revoke(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	/* Same serial as the leaf but one bit off, plus the defaults. */
	o.other_revoked[o.other_revoked_count++] = o.serial[CVM_TESTPKI_PCK_LEAF] ^ 0x100;
	policy_default(&p);
	run(&o, &p, false, &oc);
	assert_int_equal(oc.r, CVM_OK);
}

/* ---- signatures ---------------------------------------------------------- */

static void pck_crl_signed_by_wrong_key_is_rejected(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	policy_default(&p);
	run_faulty(&o, CVM_TESTPKI_FAULT_PCK_CRL_WRONG_KEY, &p, false, &oc);
	if (oc.r != CVM_E_CHAIN && oc.r != CVM_E_SIGNATURE)
		fail_msg("expected CVM_E_CHAIN or CVM_E_SIGNATURE, got %d", oc.r);
	assert_non_null(oc.rep.failed);
	assert_string_equal(oc.rep.failed->name, "pck_crl");
	assert_non_null(strstr(oc.rep.failed->detail, "PCK CRL"));
}

static void tcb_info_altered_after_signing_is_rejected(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	policy_default(&p);
	run_faulty(&o, CVM_TESTPKI_FAULT_TCB_INFO_TAMPER, &p, false, &oc);
	expect_reject(&oc, CVM_E_SIGNATURE, "tcb_info", "signature");
}

/* The other faults the test PKI can inject, each caught where Intel's order
 * says it should be. */
static void injected_faults_are_caught_at_their_step(void **state)
{
	static const struct {
		unsigned faults;
		int err;
		const char *step;
	} cases[] = {
	    {CVM_TESTPKI_FAULT_ROOT_CRL_WRONG_KEY, CVM_E_SIGNATURE, "root_ca_crl"},
	    {CVM_TESTPKI_FAULT_QE_IDENTITY_TAMPER, CVM_E_SIGNATURE, "qe_identity"},
	    {CVM_TESTPKI_FAULT_QE_REPORT_SIG, CVM_E_SIGNATURE, "qe_report_signature"},
	    {CVM_TESTPKI_FAULT_QE_BINDING, CVM_E_MISMATCH, "qe_report_data"},
	    {CVM_TESTPKI_FAULT_QUOTE_SIG, CVM_E_SIGNATURE, "quote_signature"},
	};
	static const enum cvm_tee tees[] = {CVM_TEE_TDX, CVM_TEE_SGX};
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	policy_default(&p);
	for (size_t t = 0; t < sizeof(tees) / sizeof(tees[0]); t++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			cvm_testpki_opts_init(&o, tees[t], NOW);
			run_faulty(&o, cases[i].faults, &p, false, &oc);
			assert_int_equal(oc.r, cases[i].err);
			assert_non_null(oc.rep.failed);
			assert_string_equal(oc.rep.failed->name, cases[i].step);
			assert_false(oc.res.authentic);
		}
	}
}

/* ---- TCB levels ---------------------------------------------------------- */

static void out_of_date_level_reports_status_and_advisories(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.levels[0].status = "OutOfDate";
	o.levels[0].adv.count = 2;
	o.levels[0].adv.ids[0] = "INTEL-SA-00960";
	o.levels[0].adv.ids[1] = "INTEL-SA-00086";

	/* Strict policy: authentic, but OutOfDate is not accepted. */
	policy_default(&p);
	run(&o, &p, false, &oc);
	assert_int_equal(oc.r, CVM_E_POLICY);
	assert_true(oc.res.authentic);
	assert_int_equal(oc.res.tcb_status, CVM_TCB_OUT_OF_DATE);
	assert_int_equal(oc.res.advisory_count, 2);
	assert_string_equal(oc.res.advisory_ids[0], "INTEL-SA-00086");
	assert_string_equal(oc.res.advisory_ids[1], "INTEL-SA-00960");
	assert_non_null(oc.rep.failed);
	assert_string_equal(oc.rep.failed->name, "policy.tcb_status");
	assert_non_null(strstr(oc.rep.failed->detail, "OutOfDate"));

	/* OutOfDate accepted, but only one of the two advisories. */
	p.accepted_tcb_statuses |= 1u << CVM_TCB_OUT_OF_DATE;
	p.accepted_advisory_count = 1;
	(void)snprintf(p.accepted_advisories[0], sizeof(p.accepted_advisories[0]), "INTEL-SA-00086");
	run(&o, &p, false, &oc);
	assert_int_equal(oc.r, CVM_E_POLICY);
	assert_non_null(oc.rep.failed);
	assert_string_equal(oc.rep.failed->name, "policy.advisories");
	assert_non_null(strstr(oc.rep.failed->detail, "INTEL-SA-00960"));

	/* Both advisories accepted too. */
	p.accepted_advisory_count = 2;
	(void)snprintf(p.accepted_advisories[1], sizeof(p.accepted_advisories[1]), "INTEL-SA-00960");
	run(&o, &p, false, &oc);
	assert_int_equal(oc.r, CVM_OK);
	assert_null(oc.rep.failed);
	assert_int_equal(oc.res.tcb_status, CVM_TCB_OUT_OF_DATE);
	assert_int_equal(oc.res.advisory_count, 2);
}

static void lower_pce_svn_falls_to_the_out_of_date_level(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.pce_svn = 7; /* below level 0 (11), at least level 1 (5) */
	o.quote.pce_svn = 7;
	policy_default(&p);
	p.accept_any_advisory = true;
	p.accepted_tcb_statuses |= 1u << CVM_TCB_OUT_OF_DATE;
	run(&o, &p, false, &oc);
	assert_int_equal(oc.r, CVM_OK);
	assert_int_equal(oc.res.tcb_status, CVM_TCB_OUT_OF_DATE);
	assert_int_equal(oc.res.advisory_count, o.levels[1].adv.count);
}

static void revoked_level_is_rejected(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.levels[0].status = "Revoked";
	policy_default(&p);
	/* Even a policy that lists Revoked must not accept it. */
	p.accepted_tcb_statuses |= 1u << CVM_TCB_REVOKED;
	p.accept_any_advisory = true;
	run(&o, &p, false, &oc);
	expect_reject(&oc, CVM_E_TCB, "tcb_level", "Revoked");
	assert_int_equal(oc.res.tcb_status, CVM_TCB_REVOKED);
}

static void cpu_svn_below_every_level_matches_none(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.cpu_svn[0] = 0; /* every level needs 3 */
	policy_default(&p);
	p.accepted_tcb_statuses = ~0u;
	p.accept_any_advisory = true;
	run(&o, &p, false, &oc);
	expect_reject(&oc, CVM_E_TCB, "tcb_level", "no TCB level");
	assert_int_equal(oc.res.tcb_status, CVM_TCB_NONE);
}

/* One PKI, collateral in memory, several quotes: how a simulated TEE uses it. */
static void one_pki_signs_many_quotes_for_the_warm_path(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_testpki *pki = NULL;
	struct cvm_dcap_collateral *coll = NULL;
	struct cvm_dcap_verified *v = NULL;
	struct cvm_testpki_quote_opts q;
	struct cvm_policy p;
	struct cvm_report rep;
	struct cvm_dcap_result res;
	const uint8_t *root;
	size_t root_len;
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	policy_default(&p);
	assert_int_equal(cvm_testpki_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_testpki_collateral(pki, &coll), CVM_OK);
	cvm_testpki_root_der(pki, &root, &root_len);
	cvm_report_init(&rep);
	assert_int_equal(cvm_dcap_collateral_authenticate(coll, root, root_len, NOW, &rep, &v), CVM_OK);
	for (uint8_t i = 0; i < 3; i++) {
		q = cvm_testpki_opts_of(pki)->quote;
		memset(q.td.report_data, i, sizeof(q.td.report_data));
		assert_int_equal(cvm_testpki_quote(pki, &q, &buf, &len), CVM_OK);
		cvm_report_init(&rep);
		assert_int_equal(cvm_verify_quote_warm(v, buf, len, NOW + i, &p, &rep, &res), CVM_OK);
		assert_memory_equal(res.quote.body.td.report_data, q.td.report_data, 64);
		free(buf);
		buf = NULL;
	}
	cvm_dcap_verified_free(v);
	cvm_dcap_collateral_free(coll);
	cvm_testpki_free(pki);
}

/* ---- the generator itself -------------------------------------------------- */

static void testpki_rejects_bad_options(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_testpki *pki = NULL;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.level_count = CVM_TESTPKI_LEVELS_MAX + 1;
	assert_int_equal(cvm_testpki_new(&o, &pki), CVM_E_INVAL);
	assert_null(pki);
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.levels[0].status = NULL;
	assert_int_equal(cvm_testpki_new(&o, &pki), CVM_E_INVAL);
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.serial[CVM_TESTPKI_ROOT] = 0;
	assert_int_equal(cvm_testpki_new(&o, &pki), CVM_E_INVAL);
}

static void testpki_quotes_parse_and_carry_the_knobs(void **state)
{
	static const enum cvm_tee tees[] = {CVM_TEE_TDX, CVM_TEE_SGX};
	struct cvm_testpki_opts o;
	struct cvm_testpki *pki = NULL;
	struct cvm_quote q;
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(tees) / sizeof(tees[0]); i++) {
		cvm_testpki_opts_init(&o, tees[i], NOW);
		o.quote.is_debug = true;
		assert_int_equal(cvm_testpki_new(&o, &pki), CVM_OK);
		assert_int_equal(cvm_testpki_quote(pki, NULL, &buf, &len), CVM_OK);
		assert_int_equal(cvm_quote_parse(buf, len, &q), CVM_OK);
		assert_int_equal(q.quote_len, len);
		assert_int_equal(q.qe_report.isv_svn, o.quote.qe.isv_svn);
		assert_memory_equal(q.qe_report.mr_signer, o.qe_mrsigner, sizeof(o.qe_mrsigner));
		assert_int_equal(q.qe_auth_data.len, CVM_TESTPKI_AUTH_DATA_LEN);
		if (tees[i] == CVM_TEE_TDX) {
			assert_int_equal(q.version, 4);
			assert_int_equal(q.outer_cert_data_type, CVM_CERT_DATA_QE_REPORT);
			assert_true(cvm_td_attributes(&q.body.td) & CVM_TD_ATTR_DEBUG);
			assert_true(cvm_td_attributes(&q.body.td) & CVM_TD_ATTR_SEPT_VE_DISABLE);
			assert_memory_equal(q.body.td.mr_td, o.quote.td.mr_td, sizeof(o.quote.td.mr_td));
		} else {
			assert_int_equal(q.version, 3);
			assert_int_equal(q.outer_cert_data_type, CVM_CERT_DATA_PCK_CHAIN);
			assert_true(q.body.sgx.attributes[0] & CVM_SGX_ATTR_DEBUG);
			assert_memory_equal(q.body.sgx.mr_enclave, o.quote.app.mr_enclave,
			                    sizeof(o.quote.app.mr_enclave));
		}
		assert_int_equal(q.cert_data_type, CVM_CERT_DATA_PCK_CHAIN);
		free(buf);
		buf = NULL;
		cvm_testpki_free(pki);
		pki = NULL;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(baseline_tdx_quote_is_accepted_up_to_date),
	    cmocka_unit_test(baseline_sgx_quote_is_accepted_up_to_date),
	    cmocka_unit_test(test_root_is_rejected_under_intel_root),
	    cmocka_unit_test(pck_leaf_expired_is_rejected),
	    cmocka_unit_test(pck_leaf_not_yet_valid_is_rejected),
	    cmocka_unit_test(pck_ca_expired_is_rejected),
	    cmocka_unit_test(root_crl_expired_is_rejected),
	    cmocka_unit_test(root_crl_not_yet_valid_is_rejected),
	    cmocka_unit_test(pck_crl_expired_is_rejected),
	    cmocka_unit_test(tcb_info_expired_is_rejected),
	    cmocka_unit_test(tcb_info_not_yet_issued_is_rejected),
	    cmocka_unit_test(qe_identity_expired_is_rejected),
	    cmocka_unit_test(tcb_signing_cert_expired_is_rejected),
	    cmocka_unit_test(pck_leaf_on_pck_crl_is_revoked),
	    cmocka_unit_test(pck_ca_on_root_crl_is_revoked),
	    cmocka_unit_test(tcb_signer_on_root_crl_is_revoked),
	    cmocka_unit_test(unrelated_serials_on_crls_do_not_revoke),
	    cmocka_unit_test(pck_crl_signed_by_wrong_key_is_rejected),
	    cmocka_unit_test(tcb_info_altered_after_signing_is_rejected),
	    cmocka_unit_test(injected_faults_are_caught_at_their_step),
	    cmocka_unit_test(out_of_date_level_reports_status_and_advisories),
	    cmocka_unit_test(lower_pce_svn_falls_to_the_out_of_date_level),
	    cmocka_unit_test(revoked_level_is_rejected),
	    cmocka_unit_test(cpu_svn_below_every_level_matches_none),
	    cmocka_unit_test(one_pki_signs_many_quotes_for_the_warm_path),
	    cmocka_unit_test(testpki_rejects_bad_options),
	    cmocka_unit_test(testpki_quotes_parse_and_carry_the_knobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
