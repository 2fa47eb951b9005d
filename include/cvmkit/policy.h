/* Appraisal policy: what a relying party accepts once evidence is authentic.
 * Always an explicit argument, never the environment. Defaults are strict. */
#ifndef CVMKIT_POLICY_H
#define CVMKIT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amd.h"
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
struct cvm_expect16 {
	bool set;
	uint8_t v[16];
};
/* A lower bound; `set` false means "none". */
struct cvm_min8 {
	bool set;
	uint8_t v;
};

/* struct cvm_policy_snp holds the AMD SEV-SNP settings (the "snp" section of
 * a policy file). */
struct cvm_policy_snp {
	bool allow_debug_set; /* when set, allow_debug overrides the top-level allow_debug */
	bool allow_debug;
	bool allow_migration_agent; /* POLICY.MIGRATE_MA */
	bool allow_smt;             /* PLATFORM_INFO.SMT_EN (SMT enabled on the host) */
	/* the chain's revocation must have been checked against AMD's CRL (the
	 * ARK-signed CRL AMD's KDS serves for every product); default true */
	bool require_crl;
	bool vmpl_any; /* accept any VMPL instead of `vmpl` */
	uint32_t vmpl; /* the VMPL the report must come from */
	/* the reported TCB (the one the VCEK certifies) must be at least these */
	struct cvm_min8 min_bootloader, min_tee, min_snp, min_microcode, min_fmc;
	uint32_t min_guest_svn;
	struct cvm_expect48 measurement, id_key_digest, author_key_digest;
	struct cvm_expect32 host_data;
	struct cvm_expect64 report_data; /* checked in addition to the top-level report_data */
	struct cvm_expect16 family_id, image_id;
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
	/* SGX, TDX and SNP */
	struct cvm_expect64 report_data;
	/* AMD SEV-SNP */
	struct cvm_policy_snp snp;
	/* collateral older than this many seconds past its nextUpdate is
	 * rejected by Intel's rules anyway; kept for later grace options */
};

/* cvm_policy_init sets the strict defaults: UpToDate only, no advisory,
 * no debug, SEPT_VE_DISABLE required, MR_SERVICE_TD zero, reserved
 * attribute bits zero, no expected measurement; for SNP: AMD's CRL
 * required, no debug, no migration agent, SMT allowed, VMPL 0, no minimum
 * TCB or guest SVN. */
CVM_API void cvm_policy_init(struct cvm_policy *p);

/* cvm_policy_parse_json reads a policy file (see docs/policy.md) over the
 * defaults already in `p`. Unknown keys are errors, so a typo never loosens a
 * policy silently. On error `err` holds one sentence saying what is wrong. */
CVM_API CVM_MUST_CHECK int cvm_policy_parse_json(const char *json, size_t len, struct cvm_policy *p,
                                                 char *err, size_t err_len);
CVM_API CVM_MUST_CHECK int cvm_policy_load_file(const char *path, struct cvm_policy *p, char *err,
                                                size_t err_len);

/* cvm_policy_appraise_quote applies `p` to an authentic DCAP verdict. Every
 * check becomes a step in `rep`. Returns 0 if accepted, CVM_E_POLICY if not. */
CVM_API CVM_MUST_CHECK int cvm_policy_appraise_quote(const struct cvm_policy *p,
                                                     const struct cvm_dcap_result *res,
                                                     struct cvm_report *rep);

/* cvm_policy_appraise_snp applies `p` to an authentic SEV-SNP verdict: the
 * CRL requirement, debug, migration agent, SMT, VMPL, minimum TCB and guest
 * SVN, expected
 * measurement, host data, report data, ID and author key digests, family and
 * image IDs. Every check becomes a step in `rep`. Returns 0 if accepted,
 * CVM_E_POLICY if not (also when `res` is not authentic). */
CVM_API CVM_MUST_CHECK int cvm_policy_appraise_snp(const struct cvm_policy *p,
                                                   const struct cvm_amd_result *res, struct cvm_report *rep);

#endif
