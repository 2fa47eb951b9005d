/* DCAP verification (the quote verdict, before any appraisal policy) against
 * every real TDX and SGX vector, at each vector's own verification time, plus
 * truncation and bit-flip checks over the signed regions of real quotes and
 * collateral. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/quote.h>

#include "vectors.h"

/* The table of ../shared/vectors/README.md: the quote verdict by Intel's rules. */
struct expect {
	const char *dir;
	int64_t at;
	bool ok;
	enum cvm_tcb_status status;
	const char *advisories[12];
	bool trailing; /* non-zero bytes follow the quote */
};

static const struct expect expects[] = {
    {"tdx/dcapqvl-tdx-v4-uptodate", 1752919234, true, CVM_TCB_UP_TO_DATE, {NULL}},
    {"tdx/zkdcap-tdx-v4-outofdate",
     1737467060,
     true,
     CVM_TCB_OUT_OF_DATE,
     {"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986", NULL}},
    {"tdx/automata-tdx-v4-0625",
     1749095100,
     true,
     CVM_TCB_OUT_OF_DATE,
     {"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986", NULL}},
    {"tdx/automata-tdx-v5-alibaba", 1749945600, true, CVM_TCB_UP_TO_DATE, {NULL}},
    {"tdx/dcapqvl-tdx-v5-nomatch", 1774003274, false, CVM_TCB_NONE, {NULL}},
    {"tdx/gotdxguest-tdx-v4-spr-nomatch", 1688173200, false, CVM_TCB_NONE, {NULL}, true},
    {"sgx/dcapqvl-sgx-v3-confswhardening",
     1752919277,
     true,
     CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
     {"INTEL-SA-00289", "INTEL-SA-00615", NULL}},
    {"sgx/dcapqvl-sgx-v3-2023collateral",
     1703117168,
     true,
     CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
     {"INTEL-SA-00289", "INTEL-SA-00615", NULL}},
    {"sgx/zkdcap-sgx-v3-swhardening",
     1737458686,
     true,
     CVM_TCB_SW_HARDENING_NEEDED,
     {"INTEL-SA-00334", "INTEL-SA-00615", NULL}},
    {"sgx/trustee-occlum-sgx-v3-0825",
     1755236700,
     true,
     CVM_TCB_OUT_OF_DATE,
     {"INTEL-SA-00586", "INTEL-SA-00614", "INTEL-SA-00615", "INTEL-SA-00657", "INTEL-SA-00730",
      "INTEL-SA-00738", "INTEL-SA-00767", "INTEL-SA-00828", "INTEL-SA-00837", "INTEL-SA-00960", NULL}},
};

static int verify_dir(const char *dir, int64_t at, struct cvm_report *rep, struct cvm_dcap_result *res)
{
	struct cvm_dcap_collateral *c = NULL;
	struct cvm_dcap_verified *v = NULL;
	char path[4096], rel[512];
	uint8_t *quote;
	size_t qlen;
	int r;

	(void)snprintf(rel, sizeof(rel), "%s/quote.bin", dir);
	quote = vector_read(rel, &qlen);
	r = cvm_dcap_collateral_load_dir(vector_path(path, sizeof(path), dir), &c, NULL, 0);
	assert_int_equal(r, CVM_OK);
	cvm_report_init(rep);
	r = cvm_dcap_collateral_verify(c, NULL, 0, at, rep, &v);
	if (r == CVM_OK)
		r = cvm_dcap_quote_verify(v, quote, qlen, at, rep, res);
	/* res borrows from quote: keep the verdict fields only */
	memset(&res->quote, 0, sizeof(res->quote));
	cvm_dcap_verified_free(v);
	cvm_dcap_collateral_free(c);
	free(quote);
	return r;
}

static void print_report(const struct cvm_report *rep)
{
	for (size_t i = 0; i < rep->count; i++)
		print_message("    %s %s: %s\n", rep->steps[i].ok ? "OK  " : "FAIL", rep->steps[i].name,
		              rep->steps[i].detail);
}

static void every_vector_gives_the_stated_quote_verdict(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
		const struct expect *e = &expects[i];
		struct cvm_report rep;
		struct cvm_dcap_result res;
		size_t n = 0;
		int r;

		memset(&res, 0, sizeof(res));
		r = verify_dir(e->dir, e->at, &rep, &res);
		print_message("%s: r=%d status=%s advisories=%zu\n", e->dir, r,
		              cvm_tcb_status_name(res.tcb_status), res.advisory_count);
		if ((r == CVM_OK) != e->ok || res.tcb_status != e->status ||
		    (!e->ok && r != CVM_E_TCB && !e->trailing))
			print_report(&rep);
		assert_int_equal(r == CVM_OK, e->ok);
		assert_int_equal(res.tcb_status, e->status);
		if (!e->ok) {
			bool tcb_failed = false;

			/* gotdxguest's quote file has test bytes appended: rejected
			 * for its structure first, and its TCB level fails too. */
			assert_int_equal(r, e->trailing ? CVM_E_FORMAT : CVM_E_TCB);
			assert_non_null(rep.failed);
			assert_string_equal(rep.failed->name, e->trailing ? "quote" : "tcb_level");
			for (size_t j = 0; j < rep.count; j++)
				tcb_failed |= strcmp(rep.steps[j].name, "tcb_level") == 0 && !rep.steps[j].ok;
			assert_true(tcb_failed);
			continue;
		}
		while (e->advisories[n] != NULL)
			n++;
		assert_int_equal(res.advisory_count, n);
		for (size_t j = 0; j < n; j++)
			assert_string_equal(res.advisory_ids[j], e->advisories[j]);
	}
}

static void builtin_root_is_intels(void **state)
{
	uint8_t h[32];
	char hex[65];

	(void)state;
	cvm_sha256(cvm_intel_sgx_root_ca_der, cvm_intel_sgx_root_ca_der_len, h);
	cvm_hex_encode(h, sizeof(h), hex);
	assert_string_equal(hex, "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(builtin_root_is_intels),
	    cmocka_unit_test(every_vector_gives_the_stated_quote_verdict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
