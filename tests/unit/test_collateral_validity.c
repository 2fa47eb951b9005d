/* Collateral validity, revocation, who may sign what (the roles of every
 * certificate in every chain), and TCB levels, end to end through
 * cvm_verify_quote, cold and warm. The real vectors are signed by Intel, so
 * every case here builds its own Intel-shaped PKI with tests/common/testpki
 * (one knob changed from a baseline that verifies, or one certificate or
 * signature forged) and checks the verdict, the failing step and the reason
 * it gives. */
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

/* ---- who may sign the collateral ----------------------------------------- */

/* Intel signs TCB infos and QE identities with the TCB Signing key only: a
 * certificate named "Intel SGX TCB Signing" that the root issued directly,
 * an end entity whose key usage is digital signature. Any other key under
 * the root (a PCK leaf, even a revoked one, or a PCK CA) must not be able to
 * rate a platform or admit a QE. Each case below signs the collateral with
 * such a key and puts its certificate in the issuer chain. */

#define FORGER_SERIAL ((uint64_t)0x5eed0000000000a1ull)

/* struct forgery is one PKI, its collateral in memory, and what a forger
 * signs with: a certificate, its key, and the issuer chain it sends. */
struct forgery {
	struct cvm_testpki_opts o;
	struct cvm_testpki *pki;
	struct cvm_dcap_collateral *coll;
	struct cvm_testpki_issued signer;
	struct cvm_cert *chain[3];
	size_t chain_len;
};

static void forgery_init(struct forgery *f, enum cvm_tee tee)
{
	memset(f, 0, sizeof(*f));
	cvm_testpki_opts_init(&f->o, tee, NOW);
	/* Intel rates this platform OutOfDate; the forger wants UpToDate. */
	f->o.levels[0].status = "OutOfDate";
	/* A second PCK leaf of the same CA, revoked on the PCK CRL. */
	f->o.other_revoked[f->o.other_revoked_count++] = FORGER_SERIAL;
}

static void forgery_make(struct forgery *f)
{
	assert_int_equal(cvm_testpki_new(&f->o, &f->pki), CVM_OK);
	assert_int_equal(cvm_testpki_collateral(f->pki, &f->coll), CVM_OK);
}

static void forgery_cleanup(struct forgery *f)
{
	cvm_testpki_issued_cleanup(&f->signer);
	cvm_dcap_collateral_free(f->coll);
	cvm_testpki_free(f->pki);
}

/* forge re-signs file `which` (TCB info or QE identity) as `forged` says,
 * with the forger's key, and sends the forger's chain as its issuer chain. */
static void forge(struct forgery *f, enum cvm_mockpki_file which, const struct cvm_testpki_opts *forged)
{
	bool tcb = which == CVM_MOCKPKI_F_TCB_INFO;

	assert_int_equal(cvm_testpki_sign_json(forged, which, f->signer.key,
	                                       tcb ? &f->coll->tcb_info : &f->coll->qe_identity,
	                                       tcb ? &f->coll->tcb_info_len : &f->coll->qe_identity_len),
	                 CVM_OK);
	assert_int_equal(
	    cvm_testpki_chain(f->chain, f->chain_len,
	                      tcb ? &f->coll->tcb_info_issuer_chain : &f->coll->qe_identity_issuer_chain,
	                      tcb ? &f->coll->tcb_info_issuer_chain_len
	                          : &f->coll->qe_identity_issuer_chain_len),
	    CVM_OK);
}

/* verify_quote_of verifies a quote of the PKI described by `q` (NULL: the
 * default) with the collateral in `f`, cold, anchored in the PKI's root. */
static void verify_quote_of(const struct forgery *f, const struct cvm_testpki_quote_opts *q,
                            const struct cvm_policy *p, struct outcome *out)
{
	const uint8_t *root;
	size_t root_len;
	uint8_t *quote = NULL;
	size_t quote_len = 0;

	memset(out, 0, sizeof(*out));
	cvm_report_init(&out->rep);
	cvm_testpki_root_der(f->pki, &root, &root_len);
	assert_int_equal(cvm_testpki_quote(f->pki, q, &quote, &quote_len), CVM_OK);
	out->r = cvm_verify_quote(quote, quote_len, f->coll, root, root_len, NOW, p, &out->rep, &out->res);
	if (out->rep.failed != NULL)
		print_message("    step %s: %s\n", out->rep.failed->name, out->rep.failed->detail);
	free(quote);
}

/* expect_no_warm_collateral checks that the collateral does not authenticate
 * either, so that no warm verification can start from it. */
static void expect_no_warm_collateral(const struct forgery *f, const char *step)
{
	struct cvm_dcap_verified *v = NULL;
	struct cvm_report rep;
	const uint8_t *root;
	size_t root_len;

	cvm_testpki_root_der(f->pki, &root, &root_len);
	cvm_report_init(&rep);
	assert_int_not_equal(cvm_dcap_collateral_authenticate(f->coll, root, root_len, NOW, &rep, &v),
	                     CVM_OK);
	assert_null(v);
	assert_non_null(rep.failed);
	assert_string_equal(rep.failed->name, step);
}

static void foreign_qe(const struct cvm_testpki_opts *o, struct cvm_testpki_opts *forged,
                       struct cvm_testpki_quote_opts *q)
{
	*forged = *o;
	cvm_mock_fill_pattern(forged->qe_mrsigner, sizeof(forged->qe_mrsigner), 0x66);
	*q = o->quote;
	memcpy(q->qe.mr_signer, forged->qe_mrsigner, sizeof(q->qe.mr_signer));
}

/* The issue's reproduction: a second PCK leaf, revoked on the PCK CRL, signs
 * a TCB info that turns OutOfDate into UpToDate and a QE identity that
 * admits a foreign QE. */
static void collateral_signed_by_a_revoked_pck_leaf_is_rejected(void **state)
{
	struct forgery f;
	struct cvm_testpki_opts up_to_date, admits_foreign;
	struct cvm_testpki_quote_opts foreign;
	struct cvm_policy p;
	struct outcome oc;

	(void)state;
	policy_default(&p);
	forgery_init(&f, CVM_TEE_TDX);
	forgery_make(&f);
	up_to_date = f.o;
	up_to_date.levels[0].status = "UpToDate";
	foreign_qe(&f.o, &admits_foreign, &foreign);

	/* What Intel's collateral says: OutOfDate, and the foreign QE is not
	 * Intel's. */
	verify_quote_of(&f, NULL, &p, &oc);
	assert_int_equal(oc.r, CVM_E_POLICY);
	assert_true(oc.res.authentic);
	assert_int_equal(oc.res.tcb_status, CVM_TCB_OUT_OF_DATE);
	verify_quote_of(&f, &foreign, &p, &oc);
	expect_reject(&oc, CVM_E_MISMATCH, "qe_identity_match", "MRSIGNER");

	/* The forger's leaf: the right name, issued by the PCK CA, revoked. */
	assert_int_equal(cvm_testpki_issue(f.pki, cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA),
	                                   cvm_mockpki_key(f.pki, CVM_MOCKPKI_PCK_CA),
	                                   "Intel SGX PCK Certificate", FORGER_SERIAL, "critical,CA:FALSE",
	                                   "critical,digitalSignature,nonRepudiation", true, &f.signer),
	                 CVM_OK);
	f.chain[0] = f.signer.cert;
	f.chain[1] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA);
	f.chain[2] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_ROOT);
	f.chain_len = 3;
	forge(&f, CVM_MOCKPKI_F_TCB_INFO, &up_to_date);
	forge(&f, CVM_MOCKPKI_F_QE_IDENTITY, &admits_foreign);
	verify_quote_of(&f, &foreign, &p, &oc);
	expect_reject(&oc, CVM_E_CHAIN, "tcb_info", "TCB Signing");
	assert_false(oc.res.authentic);
	expect_no_warm_collateral(&f, "tcb_info");
	forgery_cleanup(&f);

	/* The QE identity alone, with Intel's TCB info. */
	forgery_init(&f, CVM_TEE_SGX);
	forgery_make(&f);
	foreign_qe(&f.o, &admits_foreign, &foreign);
	assert_int_equal(cvm_testpki_issue(f.pki, cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA),
	                                   cvm_mockpki_key(f.pki, CVM_MOCKPKI_PCK_CA),
	                                   "Intel SGX PCK Certificate", FORGER_SERIAL, "critical,CA:FALSE",
	                                   "critical,digitalSignature,nonRepudiation", true, &f.signer),
	                 CVM_OK);
	f.chain[0] = f.signer.cert;
	f.chain[1] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA);
	f.chain[2] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_ROOT);
	f.chain_len = 3;
	forge(&f, CVM_MOCKPKI_F_QE_IDENTITY, &admits_foreign);
	verify_quote_of(&f, &foreign, &p, &oc);
	expect_reject(&oc, CVM_E_CHAIN, "qe_identity", "TCB Signing");
	expect_no_warm_collateral(&f, "qe_identity");
	forgery_cleanup(&f);
}

/* struct signer_case is a key that is not Intel's TCB Signing key, and the
 * chain its forger sends. */
struct signer_case {
	const char *what;
	const char *cn;        /* NULL: the PCK CA itself signs */
	bool by_pck_ca;        /* issued by the PCK CA, else by the root */
	bool chain_has_pck_ca; /* the PCK CA sits between signer and root */
	const char *bc, *ku;   /* basicConstraints, keyUsage */
	bool revoked;          /* on the root CA CRL */
	const char *detail;    /* what the failed step must say */
};

static const struct signer_case signer_cases[] = {
    {"the PCK CA", NULL, false, false, NULL, NULL, false, "TCB Signing"},
    {"a TCB Signing name issued by the PCK CA, chained through it", "Intel SGX TCB Signing", true, true,
     "critical,CA:FALSE", "critical,digitalSignature,nonRepudiation", false, "TCB Signing"},
    {"a TCB Signing name issued by the PCK CA, sent alone", "Intel SGX TCB Signing", true, false,
     "critical,CA:FALSE", "critical,digitalSignature,nonRepudiation", false, "root"},
    {"a TCB Signing certificate that is a CA", "Intel SGX TCB Signing", false, false,
     "critical,CA:TRUE,pathlen:0", "critical,digitalSignature,nonRepudiation", false, "CA"},
    {"a TCB Signing certificate for key encipherment only", "Intel SGX TCB Signing", false, false,
     "critical,CA:FALSE", "critical,keyEncipherment", false, "key usage"},
    {"a TCB Signing certificate that may also sign certificates", "Intel SGX TCB Signing", false, false,
     "critical,CA:FALSE", "critical,digitalSignature,keyCertSign", false, "key usage"},
    {"a TCB Signing certificate without key usage", "Intel SGX TCB Signing", false, false,
     "critical,CA:FALSE", NULL, false, "key usage"},
    {"a second TCB Signing certificate, revoked on the root CA CRL", "Intel SGX TCB Signing", false, false,
     "critical,CA:FALSE", "critical,digitalSignature,nonRepudiation", true, "revoked"},
};

/* run_signer_case makes a PKI, has the key of `sc` sign file `which` (the
 * platform UpToDate) and verifies a quote with it, cold and warm. It returns
 * true when the forgery is rejected as it must be, else says why not. */
static bool run_signer_case(const struct signer_case *sc, enum cvm_mockpki_file which)
{
	enum cvm_mockpki_cert issuer = sc->by_pck_ca ? CVM_MOCKPKI_PCK_CA : CVM_MOCKPKI_ROOT;
	const char *step = which == CVM_MOCKPKI_F_TCB_INFO ? "tcb_info" : "qe_identity";
	int want = sc->revoked ? CVM_E_REVOKED : CVM_E_CHAIN;
	struct cvm_testpki_opts forged;
	struct cvm_policy p;
	struct outcome oc;
	struct forgery f;
	bool ok;

	policy_default(&p);
	forgery_init(&f, CVM_TEE_TDX);
	if (sc->revoked)
		f.o.other_revoked[f.o.other_revoked_count++] = FORGER_SERIAL + 1;
	forgery_make(&f);
	forged = f.o;
	forged.levels[0].status = "UpToDate";
	if (sc->cn == NULL) {
		f.chain[0] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA);
		f.signer.key = cvm_privkey_dup(cvm_mockpki_key(f.pki, CVM_MOCKPKI_PCK_CA));
	} else {
		assert_int_equal(cvm_testpki_issue(f.pki, cvm_mockpki_x509(f.pki, issuer),
		                                   cvm_mockpki_key(f.pki, issuer), sc->cn, FORGER_SERIAL + 1,
		                                   sc->bc, sc->ku, false, &f.signer),
		                 CVM_OK);
		f.chain[0] = f.signer.cert;
	}
	f.chain_len = 1;
	if (sc->chain_has_pck_ca)
		f.chain[f.chain_len++] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA);
	f.chain[f.chain_len++] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_ROOT);
	forge(&f, which, &forged);
	verify_quote_of(&f, NULL, &p, &oc);
	ok = oc.r == want && oc.rep.failed != NULL && strcmp(oc.rep.failed->name, step) == 0 &&
	     strstr(oc.rep.failed->detail, sc->detail) != NULL && !oc.res.authentic;
	if (!ok)
		print_message(
		    "  FAIL: %s signs the %s: %s, %s at step %s (expected %s at step %s, saying \"%s\")\n",
		    sc->what, step, oc.r == CVM_OK ? "ACCEPTED" : "rejected",
		    oc.res.tcb_status == CVM_TCB_UP_TO_DATE ? "UpToDate" : cvm_strerror(oc.r),
		    oc.rep.failed != NULL ? oc.rep.failed->name : "(none)", cvm_strerror(want), step,
		    sc->detail);
	else
		expect_no_warm_collateral(&f, step);
	forgery_cleanup(&f);
	return ok;
}

static void collateral_signed_by_any_key_but_the_tcb_signing_key_is_rejected(void **state)
{
	size_t bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(signer_cases) / sizeof(signer_cases[0]); i++) {
		bad += !run_signer_case(&signer_cases[i], CVM_MOCKPKI_F_TCB_INFO);
		bad += !run_signer_case(&signer_cases[i], CVM_MOCKPKI_F_QE_IDENTITY);
	}
	if (bad != 0)
		fail_msg("%zu of %zu forged collateral files were not rejected as they must be", bad,
		         2 * sizeof(signer_cases) / sizeof(signer_cases[0]));
}

/* The control for the cases above: the same forged content, re-signed by
 * the PKI's own TCB Signing key and sent with its own chain, verifies; so
 * what rejects the forgeries is who signed them, not how they were made. */
static void collateral_re_signed_by_the_tcb_signing_key_verifies(void **state)
{
	struct cvm_testpki_opts forged;
	struct cvm_policy p;
	struct outcome oc;
	struct forgery f;

	(void)state;
	policy_default(&p);
	forgery_init(&f, CVM_TEE_TDX);
	forgery_make(&f);
	forged = f.o;
	forged.levels[0].status = "UpToDate";
	f.signer.key = cvm_privkey_dup(cvm_mockpki_key(f.pki, CVM_MOCKPKI_TCB_SIGNER));
	f.chain[0] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_TCB_SIGNER);
	f.chain[1] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_ROOT);
	f.chain_len = 2;
	forge(&f, CVM_MOCKPKI_F_TCB_INFO, &forged);
	forge(&f, CVM_MOCKPKI_F_QE_IDENTITY, &forged);
	verify_quote_of(&f, NULL, &p, &oc);
	assert_int_equal(oc.r, CVM_OK);
	assert_int_equal(oc.res.tcb_status, CVM_TCB_UP_TO_DATE);
	forgery_cleanup(&f);
}

/* A TCB info kept after it verified (lib/dcap/kept.c keeps its decoded form
 * by its exact bytes) is still checked against its issuer chain every time:
 * the very same body sent with another chain is rejected, whatever was kept
 * and whichever certificates the process caches. */
static void a_kept_tcb_info_is_rechecked_against_its_chain(void **state)
{
	struct cvm_dcap_verified *v = NULL;
	struct cvm_report rep;
	struct forgery f;
	const uint8_t *root;
	size_t root_len;

	(void)state;
	forgery_init(&f, CVM_TEE_TDX);
	forgery_make(&f);
	cvm_testpki_root_der(f.pki, &root, &root_len);
	cvm_report_init(&rep);
	assert_int_equal(cvm_dcap_collateral_authenticate(f.coll, root, root_len, NOW, &rep, &v), CVM_OK);
	cvm_dcap_verified_free(v);
	assert_int_equal(cvm_testpki_issue(f.pki, cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA),
	                                   cvm_mockpki_key(f.pki, CVM_MOCKPKI_PCK_CA),
	                                   "Intel SGX PCK Certificate", FORGER_SERIAL, "critical,CA:FALSE",
	                                   "critical,digitalSignature,nonRepudiation", true, &f.signer),
	                 CVM_OK);
	f.chain[0] = f.signer.cert;
	f.chain[1] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA);
	f.chain[2] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_ROOT);
	assert_int_equal(
	    cvm_testpki_chain(f.chain, 3, &f.coll->tcb_info_issuer_chain, &f.coll->tcb_info_issuer_chain_len),
	    CVM_OK);
	expect_no_warm_collateral(&f, "tcb_info");
	f.chain[0] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA);
	f.chain[1] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_ROOT);
	assert_int_equal(
	    cvm_testpki_chain(f.chain, 2, &f.coll->tcb_info_issuer_chain, &f.coll->tcb_info_issuer_chain_len),
	    CVM_OK);
	expect_no_warm_collateral(&f, "tcb_info");
	forgery_cleanup(&f);
}

/* ---- the quote's PCK chain and the PCK CRL's issuer ---------------------- */

/* struct pck_case is a PCK chain a quote may carry: who issued its PCK
 * certificate, in what role, and what else the chain holds. */
struct pck_case {
	const char *what;
	const char *cn;      /* the leaf's CN */
	const char *bc, *ku; /* the leaf's basicConstraints and keyUsage */
	bool by_second_ca;   /* issued by another CA of the PCK CA's name, which the root issued */
	bool sub_ca;         /* issued by a CA the PCK CA issued, in the chain */
	bool no_root;        /* the chain stops before the root */
	bool ok;             /* a quote with it verifies */
	const char *detail;  /* what the failed step must say */
};

static const struct pck_case pck_cases[] = {
    {"a second PCK certificate of the same CA", "Intel SGX PCK Certificate", "critical,CA:FALSE",
     "critical,digitalSignature,nonRepudiation", false, false, false, true, NULL},
    {"a PCK certificate named as the TCB Signing certificate", "Intel SGX TCB Signing", "critical,CA:FALSE",
     "critical,digitalSignature,nonRepudiation", false, false, false, false, "not a PCK certificate"},
    {"a PCK certificate that is a CA", "Intel SGX PCK Certificate", "critical,CA:TRUE,pathlen:0",
     "critical,digitalSignature,keyCertSign", false, false, false, false, "is a CA"},
    {"a PCK certificate for key encipherment only", "Intel SGX PCK Certificate", "critical,CA:FALSE",
     "critical,keyEncipherment", false, false, false, false, "key usage"},
    {"a PCK certificate of another CA of the same name", "Intel SGX PCK Certificate", "critical,CA:FALSE",
     "critical,digitalSignature,nonRepudiation", true, false, false, false, "not that CA's"},
    {"a PCK certificate under a CA the PCK CA issued", "Intel SGX PCK Certificate", "critical,CA:FALSE",
     "critical,digitalSignature,nonRepudiation", false, true, false, false, "holds 4 certificates"},
    {"a PCK chain without the root", "Intel SGX PCK Certificate", "critical,CA:FALSE",
     "critical,digitalSignature,nonRepudiation", false, false, true, false, "holds 2 certificates"},
};

/* run_pck_case verifies a quote whose PCK chain is `pc`'s, cold, and warm
 * after a quote with the platform's own chain verified (so that a chain is
 * cached). Returns true when the verdict is the expected one. */
static bool run_pck_case(const struct pck_case *pc)
{
	struct cvm_testpki_opts o;
	struct cvm_testpki *pki = NULL;
	struct cvm_dcap_collateral *coll = NULL;
	struct cvm_dcap_verified *v = NULL;
	struct cvm_testpki_issued ca = {NULL, NULL}, leaf = {NULL, NULL};
	struct cvm_cert *issuer, *chain[4];
	struct cvm_privkey *issuer_key;
	uint8_t *pem = NULL, *quote = NULL, *good = NULL;
	size_t pem_len = 0, quote_len = 0, good_len = 0, n = 0;
	const uint8_t *root;
	size_t root_len;
	struct cvm_policy p;
	struct outcome cold, warm;
	bool ok;

	policy_default(&p);
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	assert_int_equal(cvm_testpki_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_testpki_collateral(pki, &coll), CVM_OK);
	cvm_testpki_root_der(pki, &root, &root_len);
	issuer = cvm_mockpki_x509(pki, CVM_MOCKPKI_PCK_CA);
	issuer_key = cvm_mockpki_key(pki, CVM_MOCKPKI_PCK_CA);
	if (pc->by_second_ca || pc->sub_ca) {
		struct cvm_cert *ca_issuer =
		    cvm_mockpki_x509(pki, pc->sub_ca ? CVM_MOCKPKI_PCK_CA : CVM_MOCKPKI_ROOT);
		struct cvm_privkey *ca_key =
		    cvm_mockpki_key(pki, pc->sub_ca ? CVM_MOCKPKI_PCK_CA : CVM_MOCKPKI_ROOT);

		assert_int_equal(cvm_testpki_issue(pki, ca_issuer, ca_key, "Intel SGX PCK Platform CA",
		                                   FORGER_SERIAL + 2, "critical,CA:TRUE,pathlen:0",
		                                   "critical,keyCertSign,cRLSign", false, &ca),
		                 CVM_OK);
		issuer = ca.cert;
		issuer_key = ca.key;
	}
	assert_int_equal(
	    cvm_testpki_issue(pki, issuer, issuer_key, pc->cn, FORGER_SERIAL, pc->bc, pc->ku, true, &leaf),
	    CVM_OK);
	chain[n++] = leaf.cert;
	chain[n++] = issuer;
	if (pc->sub_ca)
		chain[n++] = cvm_mockpki_x509(pki, CVM_MOCKPKI_PCK_CA);
	if (!pc->no_root)
		chain[n++] = cvm_mockpki_x509(pki, CVM_MOCKPKI_ROOT);
	assert_int_equal(cvm_mock_pem_chain(chain, n, true, &pem, &pem_len), CVM_OK);
	assert_int_equal(cvm_mockpki_quote_with(pki, NULL, leaf.key, pem, pem_len, &quote, &quote_len),
	                 CVM_OK);
	assert_int_equal(cvm_testpki_quote(pki, NULL, &good, &good_len), CVM_OK);

	memset(&cold, 0, sizeof(cold));
	cvm_report_init(&cold.rep);
	cold.r = cvm_verify_quote(quote, quote_len, coll, root, root_len, NOW, &p, &cold.rep, &cold.res);
	memset(&warm, 0, sizeof(warm));
	cvm_report_init(&warm.rep);
	assert_int_equal(cvm_dcap_collateral_authenticate(coll, root, root_len, NOW, &warm.rep, &v), CVM_OK);
	assert_int_equal(cvm_verify_quote_warm(v, good, good_len, NOW, &p, &warm.rep, &warm.res), CVM_OK);
	cvm_report_init(&warm.rep);
	warm.r = cvm_verify_quote_warm(v, quote, quote_len, NOW, &p, &warm.rep, &warm.res);
	if (pc->ok)
		ok = cold.r == CVM_OK && warm.r == CVM_OK;
	else
		ok = cold.r == CVM_E_CHAIN && cold.rep.failed != NULL &&
		     strcmp(cold.rep.failed->name, "pck_chain") == 0 &&
		     strstr(cold.rep.failed->detail, pc->detail) != NULL && warm.r == CVM_E_CHAIN &&
		     warm.rep.failed != NULL && strcmp(warm.rep.failed->name, "pck_chain") == 0;
	if (!ok)
		print_message("  FAIL: %s: cold %s at step %s (%s), warm %s at step %s; expected %s%s\n",
		              pc->what, cvm_strerror(cold.r),
		              cold.rep.failed != NULL ? cold.rep.failed->name : "(none)",
		              cold.rep.failed != NULL ? cold.rep.failed->detail : "", cvm_strerror(warm.r),
		              warm.rep.failed != NULL ? warm.rep.failed->name : "(none)",
		              pc->ok ? "acceptance" : "a rejection at step pck_chain saying ",
		              pc->ok ? "" : pc->detail);
	cvm_dcap_verified_free(v);
	free(good);
	free(quote);
	free(pem);
	cvm_testpki_issued_cleanup(&leaf);
	cvm_testpki_issued_cleanup(&ca);
	cvm_dcap_collateral_free(coll);
	cvm_testpki_free(pki);
	return ok;
}

static void pck_chains_in_any_but_intels_shape_are_rejected_cold_and_warm(void **state)
{
	size_t bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(pck_cases) / sizeof(pck_cases[0]); i++)
		bad += !run_pck_case(&pck_cases[i]);
	if (bad != 0)
		fail_msg("%zu of %zu PCK chains did not get the verdict they must", bad,
		         sizeof(pck_cases) / sizeof(pck_cases[0]));
}

/* The PCK CRL issuer chain: the PCK CA, then the root. */
static void pck_crl_issuer_chain_must_be_a_pck_ca_and_the_root(void **state)
{
	struct forgery f;
	struct cvm_policy p;
	struct outcome oc;
	struct cvm_cert *chain[2];

	(void)state;
	policy_default(&p);
	/* without the root */
	forgery_init(&f, CVM_TEE_TDX);
	forgery_make(&f);
	chain[0] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_PCK_CA);
	assert_int_equal(
	    cvm_testpki_chain(chain, 1, &f.coll->pck_crl_issuer_chain, &f.coll->pck_crl_issuer_chain_len),
	    CVM_OK);
	verify_quote_of(&f, NULL, &p, &oc);
	expect_reject(&oc, CVM_E_CHAIN, "pck_crl", "holds 1 certificate");
	expect_no_warm_collateral(&f, "pck_crl");
	forgery_cleanup(&f);
	/* the TCB Signing certificate in the PCK CA's place */
	forgery_init(&f, CVM_TEE_TDX);
	forgery_make(&f);
	chain[0] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_TCB_SIGNER);
	chain[1] = cvm_mockpki_x509(f.pki, CVM_MOCKPKI_ROOT);
	assert_int_equal(
	    cvm_testpki_chain(chain, 2, &f.coll->pck_crl_issuer_chain, &f.coll->pck_crl_issuer_chain_len),
	    CVM_OK);
	verify_quote_of(&f, NULL, &p, &oc);
	expect_reject(&oc, CVM_E_CHAIN, "pck_crl", "not a PCK CA");
	expect_no_warm_collateral(&f, "pck_crl");
	forgery_cleanup(&f);
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

/* A trust anchor given explicitly (--root) can expire before the collateral
 * it anchors: collateral verified while the root was valid must not keep
 * verifying quotes once it has expired, as the cold path would refuse. */
static void warm_path_rejects_once_the_trust_anchor_expired(void **state)
{
	struct cvm_testpki_opts o;
	struct cvm_testpki *pki = NULL;
	struct cvm_dcap_collateral *coll = NULL;
	struct cvm_dcap_verified *v = NULL;
	struct cvm_policy p;
	struct cvm_report rep;
	struct cvm_dcap_result res;
	const uint8_t *root;
	size_t root_len;
	uint8_t *quote = NULL;
	size_t quote_len = 0;
	const int64_t root_end = NOW + 10 * DAY, later = NOW + 20 * DAY;

	(void)state;
	cvm_testpki_opts_init(&o, CVM_TEE_TDX, NOW);
	o.cert[CVM_TESTPKI_ROOT].to = root_end; /* the TCB info and CRLs last until NOW + 29 days */
	policy_default(&p);
	assert_int_equal(cvm_testpki_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_testpki_collateral(pki, &coll), CVM_OK);
	assert_int_equal(cvm_testpki_quote(pki, NULL, &quote, &quote_len), CVM_OK);
	cvm_testpki_root_der(pki, &root, &root_len);

	/* cold: accepted while the root is valid, refused after */
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_quote(quote, quote_len, coll, root, root_len, NOW, &p, &rep, &res),
	                 CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_quote(quote, quote_len, coll, root, root_len, later, &p, &rep, &res),
	                 CVM_E_EXPIRED);
	assert_string_equal(rep.failed->name, "root");

	/* warm: the same */
	cvm_report_init(&rep);
	assert_int_equal(cvm_dcap_collateral_authenticate(coll, root, root_len, NOW, &rep, &v), CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_quote_warm(v, quote, quote_len, root_end, &p, &rep, &res), CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_quote_warm(v, quote, quote_len, root_end + 1, &p, &rep, &res),
	                 CVM_E_EXPIRED);
	assert_non_null(rep.failed);
	assert_string_equal(rep.failed->name, "collateral");
	assert_false(res.authentic);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_quote_warm(v, quote, quote_len, later, &p, &rep, &res), CVM_E_EXPIRED);
	cvm_dcap_verified_free(v);
	free(quote);
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
	    cmocka_unit_test(collateral_signed_by_a_revoked_pck_leaf_is_rejected),
	    cmocka_unit_test(collateral_signed_by_any_key_but_the_tcb_signing_key_is_rejected),
	    cmocka_unit_test(collateral_re_signed_by_the_tcb_signing_key_verifies),
	    cmocka_unit_test(a_kept_tcb_info_is_rechecked_against_its_chain),
	    cmocka_unit_test(pck_chains_in_any_but_intels_shape_are_rejected_cold_and_warm),
	    cmocka_unit_test(pck_crl_issuer_chain_must_be_a_pck_ca_and_the_root),
	    cmocka_unit_test(one_pki_signs_many_quotes_for_the_warm_path),
	    cmocka_unit_test(warm_path_rejects_once_the_trust_anchor_expired),
	    cmocka_unit_test(testpki_rejects_bad_options),
	    cmocka_unit_test(testpki_quotes_parse_and_carry_the_knobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
