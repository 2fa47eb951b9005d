/* libFuzzer harness for cvm_policy_parse_json and cvm_policy_appraise_quote:
 * whatever the input, parsing returns cleanly with a NUL-terminated message
 * on error, leaves the policy untouched on error, and a parsed policy keeps
 * its counts in range and appraises a fixed verdict without crashing. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void appraise_fixed(const struct cvm_policy *p, enum cvm_tee tee)
{
	static struct cvm_dcap_result res;
	static struct cvm_report rep;
	int r;

	memset(&res, 0, sizeof(res));
	res.authentic = true;
	res.tcb_status = CVM_TCB_SW_HARDENING_NEEDED;
	(void)snprintf(res.advisory_ids[0], CVM_ADVISORY_ID_MAX, "INTEL-SA-00334");
	res.advisory_count = 1;
	res.quote.tee = tee;
	res.quote.version = tee == CVM_TEE_TDX ? 5 : 3;
	res.quote.body_type = tee == CVM_TEE_TDX ? CVM_BODY_TD15 : CVM_BODY_SGX;
	res.quote.body.td.is_td15 = tee == CVM_TEE_TDX;
	cvm_report_init(&rep);
	r = cvm_policy_appraise_quote(p, &res, &rep);
	if (r != CVM_OK && r != CVM_E_POLICY)
		__builtin_trap();
	/* Never accepted without a step, never rejected without a failed one. */
	if ((r == CVM_OK) != (rep.failed == NULL) || rep.count > CVM_REPORT_STEPS_MAX)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cvm_policy p, before;
	char err[256];
	int r;

	cvm_policy_init(&p);
	memcpy(&before, &p, sizeof(p));
	memset(err, 'x', sizeof(err));
	r = cvm_policy_parse_json((const char *)data, size, &p, err, sizeof(err));
	if (memchr(err, '\0', sizeof(err)) == NULL)
		__builtin_trap();
	if (r != CVM_OK) {
		/* Byte-exact on purpose: an error must not touch any byte of `p`,
		 * and both copies come from the same memcpy. */
		if (err[0] == '\0' ||
		    memcmp(&p, &before, sizeof(p)) != 0) /* NOLINT(bugprone-suspicious-memory-comparison) */
			__builtin_trap();
		return 0;
	}
	if (p.accepted_advisory_count > CVM_POLICY_ADVISORIES_MAX)
		__builtin_trap();
	for (size_t i = 0; i < p.accepted_advisory_count; i++) {
		if (memchr(p.accepted_advisories[i], '\0', CVM_ADVISORY_ID_MAX) == NULL)
			__builtin_trap();
	}
	if ((p.accepted_tcb_statuses & ((1u << CVM_TCB_NONE) | (1u << CVM_TCB_REVOKED))) != 0)
		__builtin_trap();
	appraise_fixed(&p, CVM_TEE_TDX);
	appraise_fixed(&p, CVM_TEE_SGX);
	return 0;
}
