/* Appraisal policy: what a relying party accepts once evidence is authentic.
 * Always an explicit argument, never the environment. Defaults are strict. */
#ifndef CVMKIT_POLICY_H
#define CVMKIT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcap.h"
#include "err.h"

#define CVM_POLICY_JSON_MAX ((size_t)256 * 1024)
#define CVM_POLICY_ADVISORIES_MAX 256

/* An expected value; `set` false means "any". */
struct cvm_expect48 {
	bool set;
	uint8_t v[48];
};
struct cvm_expect32 {
	bool set;
	uint8_t v[32];
};
struct cvm_expect64 {
	bool set;
	uint8_t v[64];
};

struct cvm_policy {
	/* bit (1u << status) set: that TCB status is accepted */
	uint32_t accepted_tcb_statuses;
	/* advisory IDs a quote may carry; any other one rejects it */
	size_t accepted_advisory_count;
	char accepted_advisories[CVM_POLICY_ADVISORIES_MAX][CVM_ADVISORY_ID_MAX];
	bool accept_any_advisory;

	bool allow_debug;                /* TD DEBUG / SGX DEBUG attribute */
	bool require_sept_ve_disable;    /* TDX */
	bool require_zero_mr_service_td; /* TD 1.5 */
	bool allow_reserved_attributes;  /* TD attribute bits reserved by the TDX ABI */

	/* TDX */
	struct cvm_expect48 mr_td, mr_config_id, mr_owner, mr_owner_config, mr_seam;
	struct cvm_expect48 rtmr[4];
	/* SGX */
	struct cvm_expect32 mr_enclave, mr_signer;
	bool isv_prod_id_set;
	uint16_t isv_prod_id;
	uint16_t isv_svn_min;
	/* both */
	struct cvm_expect64 report_data;
	/* collateral older than this many seconds past its nextUpdate is
	 * rejected by Intel's rules anyway; kept for later grace options */
};

/* cvm_policy_init sets the strict defaults: UpToDate only, no advisory,
 * no debug, SEPT_VE_DISABLE required, MR_SERVICE_TD zero, reserved
 * attribute bits zero, no expected measurement. */
void cvm_policy_init(struct cvm_policy *p);

/* cvm_policy_parse_json reads a policy file (see docs/policy.md) over the
 * defaults already in `p`. Unknown keys are errors, so a typo never loosens a
 * policy silently. On error `err` holds one sentence saying what is wrong. */
CVM_MUST_CHECK int cvm_policy_parse_json(const char *json, size_t len, struct cvm_policy *p, char *err,
                                         size_t err_len);
CVM_MUST_CHECK int cvm_policy_load_file(const char *path, struct cvm_policy *p, char *err, size_t err_len);

/* cvm_policy_appraise_quote applies `p` to an authentic DCAP verdict. Every
 * check becomes a step in `rep`. Returns 0 if accepted, CVM_E_POLICY if not. */
CVM_MUST_CHECK int cvm_policy_appraise_quote(const struct cvm_policy *p, const struct cvm_dcap_result *res,
                                             struct cvm_report *rep);

#endif
