/* Appraisal: a policy (policy.c) applied to an authentic DCAP or SEV-SNP
 * verdict. Every check adds one step to the report, so a caller sees each
 * reason a quote was rejected, not only the first. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/encoding.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>

#include "verify_int.h"

/* ---- appraisal --------------------------------------------------------- */

static void statuses_text(uint32_t mask, struct cvm_wr *t)
{
	bool first = true;

	for (int st = CVM_TCB_UP_TO_DATE; st < CVM_TCB_STATUS_COUNT; st++) {
		if ((mask & (1u << st)) == 0)
			continue;
		cvm_wr_fmt(t, "%s%s", first ? "" : ", ", cvm_tcb_status_name((enum cvm_tcb_status)st));
		first = false;
	}
	if (first)
		cvm_wr_fmt(t, "none");
}

static bool advisory_accepted(const struct cvm_policy *p, const char *id)
{
	for (size_t i = 0; i < p->accepted_advisory_count && i < CVM_POLICY_ADVISORIES_MAX; i++) {
		if (strncmp(p->accepted_advisories[i], id, CVM_ADVISORY_ID_MAX) == 0)
			return true;
	}
	return false;
}

static bool check_tcb_status(const struct cvm_policy *p, const struct cvm_dcap_result *res,
                             struct cvm_report *rep)
{
	char acc[CVM_REPORT_DETAIL_MAX];
	struct cvm_wr t;
	enum cvm_tcb_status st = res->tcb_status;

	cvm_wr_init_text(&t, acc, sizeof(acc));
	statuses_text(p->accepted_tcb_statuses, &t);
	if (st == CVM_TCB_NONE || (int)st < 0 || st >= CVM_TCB_STATUS_COUNT) {
		cvm_report_add(rep, "policy.tcb_status", false,
		               "no TCB level matched, so there is no status to accept (accepted: %s)", acc);
		return false;
	}
	if (st == CVM_TCB_REVOKED || (p->accepted_tcb_statuses & (1u << st)) == 0) {
		cvm_report_add(rep, "policy.tcb_status", false,
		               "TCB status %s is not accepted (accepted: %s)", cvm_tcb_status_name(st), acc);
		return false;
	}
	cvm_report_add(rep, "policy.tcb_status", true, "TCB status %s is accepted", cvm_tcb_status_name(st));
	return true;
}

static bool check_advisories(const struct cvm_policy *p, const struct cvm_dcap_result *res,
                             struct cvm_report *rep)
{
	char buf[CVM_REPORT_DETAIL_MAX];
	struct cvm_wr t;
	size_t n = res->advisory_count < CVM_ADVISORIES_MAX ? res->advisory_count : CVM_ADVISORIES_MAX;
	size_t bad = 0;

	cvm_wr_init_text(&t, buf, sizeof(buf));
	if (n == 0) {
		cvm_report_add(rep, "policy.advisories", true, "no advisories");
		return true;
	}
	if (p->accept_any_advisory) {
		for (size_t i = 0; i < n; i++)
			cvm_wr_fmt(&t, "%s%.*s", i ? ", " : "", CVM_ADVISORY_ID_MAX, res->advisory_ids[i]);
		cvm_report_add(rep, "policy.advisories", true, "%zu advisor%s accepted by \"*\": %s", n,
		               n == 1 ? "y" : "ies", buf);
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (advisory_accepted(p, res->advisory_ids[i]))
			continue;
		cvm_wr_fmt(&t, "%s%.*s", bad ? ", " : "", CVM_ADVISORY_ID_MAX, res->advisory_ids[i]);
		bad++;
	}
	if (bad != 0) {
		cvm_report_add(rep, "policy.advisories", false, "%zu of %zu advisor%s not accepted: %s", bad,
		               n, n == 1 ? "y is" : "ies are", buf);
		return false;
	}
	cvm_report_add(rep, "policy.advisories", true, "all %zu advisor%s accepted", n,
	               n == 1 ? "y is" : "ies are");
	return true;
}

static bool check_debug(const struct cvm_policy *p, const struct cvm_quote *q, struct cvm_report *rep)
{
	bool is_debug;
	char what[64];

	if (q->tee == CVM_TEE_TDX) {
		uint64_t a = cvm_td_attributes(&q->body.td);

		is_debug = (a & CVM_TD_ATTR_DEBUG) != 0;
		(void)snprintf(what, sizeof(what), "TD DEBUG attribute (td_attributes 0x%016" PRIx64 ")", a);
	} else {
		is_debug = (q->body.sgx.attributes[0] & CVM_SGX_ATTR_DEBUG) != 0;
		(void)snprintf(what, sizeof(what), "SGX DEBUG attribute (attributes[0] 0x%02x)",
		               q->body.sgx.attributes[0]);
	}
	if (!is_debug) {
		cvm_report_add(rep, "policy.debug", true, "%s is clear", what);
		return true;
	}
	if (p->allow_debug) {
		cvm_report_add(rep, "policy.debug", true, "%s is set; allowed by allow_debug", what);
		return true;
	}
	cvm_report_add(rep, "policy.debug", false,
	               "%s is set: a debug %s offers no confidentiality and the policy does not allow debug",
	               what, q->tee == CVM_TEE_TDX ? "TD" : "enclave");
	return false;
}

static bool check_tdx_attributes(const struct cvm_policy *p, const struct cvm_tdx_report *td,
                                 struct cvm_report *rep)
{
	uint64_t a = cvm_td_attributes(td);
	uint64_t reserved = a & CVM_TD_ATTR_RESERVED;
	bool ok = true;

	if ((a & CVM_TD_ATTR_SEPT_VE_DISABLE) != 0) {
		cvm_report_add(rep, "policy.sept_ve_disable", true, "SEPT_VE_DISABLE (bit 28) is set");
	} else if (!p->require_sept_ve_disable) {
		cvm_report_add(rep, "policy.sept_ve_disable", true,
		               "SEPT_VE_DISABLE (bit 28) is clear; not required by the policy");
	} else {
		cvm_report_add(rep, "policy.sept_ve_disable", false,
		               "SEPT_VE_DISABLE (bit 28) is clear in td_attributes 0x%016" PRIx64
		               ": the TD may receive #VE on EPT violations, and the policy requires the bit",
		               a);
		ok = false;
	}
	if (reserved == 0) {
		cvm_report_add(rep, "policy.reserved_attributes", true,
		               "no reserved TD attribute bit is set");
	} else if (p->allow_reserved_attributes) {
		cvm_report_add(rep, "policy.reserved_attributes", true,
		               "reserved TD attribute bits 0x%016" PRIx64 " are set; allowed by the policy",
		               reserved);
	} else {
		cvm_report_add(rep, "policy.reserved_attributes", false,
		               "reserved TD attribute bits 0x%016" PRIx64
		               " are set in td_attributes 0x%016" PRIx64
		               ", and the policy does not allow them",
		               reserved, a);
		ok = false;
	}
	if (td->is_td15) {
		bool zero = true;

		for (size_t i = 0; i < sizeof(td->mr_service_td); i++) {
			if (td->mr_service_td[i] != 0)
				zero = false;
		}
		if (zero) {
			cvm_report_add(rep, "policy.mr_service_td", true,
			               "MR_SERVICE_TD is zero (no service TD bound)");
		} else if (!p->require_zero_mr_service_td) {
			cvm_report_add(rep, "policy.mr_service_td", true,
			               "MR_SERVICE_TD is non-zero; allowed by the policy");
		} else {
			char hex[2 * sizeof(td->mr_service_td) + 1];

			cvm_hex_encode(td->mr_service_td, sizeof(td->mr_service_td), hex);
			cvm_report_add(
			    rep, "policy.mr_service_td", false,
			    "MR_SERVICE_TD is non-zero (%s): a service TD is bound to this TD, and the "
			    "policy requires none",
			    hex);
			ok = false;
		}
	}
	return ok;
}

/* check_value compares one measurement with its expected value. */
static bool check_value(const char *name, const char *label, const uint8_t *want, const uint8_t *got,
                        size_t n, struct cvm_report *rep)
{
	char w[2 * 64 + 1], g[2 * 64 + 1];

	if (n > 64) {
		cvm_report_add(rep, name, false, "%s: %zu bytes is longer than any measurement", label, n);
		return false;
	}
	cvm_hex_encode(got, n, g);
	if (memcmp(want, got, n) == 0) {
		cvm_report_add(rep, name, true, "%s matches %s", label, g);
		return true;
	}
	cvm_hex_encode(want, n, w);
	cvm_report_add(rep, name, false, "%s mismatch: expected %s, got %s", label, w, g);
	return false;
}

static bool check_tdx_measurements(const struct cvm_policy *p, const struct cvm_tdx_report *td,
                                   struct cvm_report *rep)
{
	static const char *const rtmr_steps[4] = {"policy.rtmr0", "policy.rtmr1", "policy.rtmr2",
	                                          "policy.rtmr3"};
	static const char *const rtmr_labels[4] = {"RTMR0", "RTMR1", "RTMR2", "RTMR3"};
	bool ok = true;

	if (p->mr_td.set)
		ok &= check_value("policy.mr_td", "MRTD", p->mr_td.v, td->mr_td, sizeof(td->mr_td), rep);
	if (p->mr_config_id.set)
		ok &= check_value("policy.mr_config_id", "MRCONFIGID", p->mr_config_id.v, td->mr_config_id,
		                  sizeof(td->mr_config_id), rep);
	if (p->mr_owner.set)
		ok &= check_value("policy.mr_owner", "MROWNER", p->mr_owner.v, td->mr_owner,
		                  sizeof(td->mr_owner), rep);
	if (p->mr_owner_config.set)
		ok &= check_value("policy.mr_owner_config", "MROWNERCONFIG", p->mr_owner_config.v,
		                  td->mr_owner_config, sizeof(td->mr_owner_config), rep);
	if (p->mr_seam.set)
		ok &= check_value("policy.mr_seam", "MRSEAM", p->mr_seam.v, td->mr_seam, sizeof(td->mr_seam),
		                  rep);
	for (size_t i = 0; i < 4; i++) {
		if (p->rtmr[i].set)
			ok &= check_value(rtmr_steps[i], rtmr_labels[i], p->rtmr[i].v, td->rtmr[i],
			                  sizeof(td->rtmr[i]), rep);
	}
	return ok;
}

static bool check_sgx_measurements(const struct cvm_policy *p, const struct cvm_sgx_report *s,
                                   struct cvm_report *rep)
{
	bool ok = true;

	if (p->mr_enclave.set)
		ok &= check_value("policy.mr_enclave", "MRENCLAVE", p->mr_enclave.v, s->mr_enclave,
		                  sizeof(s->mr_enclave), rep);
	if (p->mr_signer.set)
		ok &= check_value("policy.mr_signer", "MRSIGNER", p->mr_signer.v, s->mr_signer,
		                  sizeof(s->mr_signer), rep);
	if (p->isv_prod_id_set) {
		if (s->isv_prod_id == p->isv_prod_id) {
			cvm_report_add(rep, "policy.isv_prod_id", true, "ISVPRODID %u matches",
			               s->isv_prod_id);
		} else {
			cvm_report_add(rep, "policy.isv_prod_id", false,
			               "ISVPRODID mismatch: expected %u, got %u", p->isv_prod_id,
			               s->isv_prod_id);
			ok = false;
		}
	}
	if (p->isv_svn_min != 0) {
		if (s->isv_svn >= p->isv_svn_min) {
			cvm_report_add(rep, "policy.isv_svn", true, "ISVSVN %u is at least %u", s->isv_svn,
			               p->isv_svn_min);
		} else {
			cvm_report_add(rep, "policy.isv_svn", false, "ISVSVN %u is below the minimum %u",
			               s->isv_svn, p->isv_svn_min);
			ok = false;
		}
	}
	return ok;
}

int cvm_policy_appraise_quote(const struct cvm_policy *p, const struct cvm_dcap_result *res,
                              struct cvm_report *rep)
{
	const struct cvm_quote *q;
	const char *other;
	bool ok = true;

	if (p == NULL || res == NULL) {
		cvm_report_add(rep, "policy", false, "no policy or no verdict to appraise");
		return CVM_E_INVAL;
	}
	q = &res->quote;
	/* Fail closed: a policy only ever appraises evidence already found
	 * authentic by the vendor's rules. */
	if (!res->authentic) {
		cvm_report_add(rep, "policy.authentic", false,
		               "the quote was not verified as authentic, so no policy can accept it");
		return CVM_E_POLICY;
	}
	if (q->tee == CVM_TEE_TDX && q->body_type != CVM_BODY_TD10 && q->body_type != CVM_BODY_TD15) {
		cvm_report_add(rep, "policy.tee", false, "TDX quote without a TD report body");
		return CVM_E_POLICY;
	}
	if (q->tee == CVM_TEE_SGX && q->body_type != CVM_BODY_SGX) {
		cvm_report_add(rep, "policy.tee", false, "SGX quote without an enclave report body");
		return CVM_E_POLICY;
	}
	if (q->tee != CVM_TEE_TDX && q->tee != CVM_TEE_SGX) {
		cvm_report_add(rep, "policy.tee", false, "the quote is from an unknown TEE");
		return CVM_E_POLICY;
	}
	other = q->tee == CVM_TEE_TDX ? policy_sgx_expectation(p) : policy_tdx_expectation(p);
	if (other == NULL && policy_snp_expectation(p) != NULL) {
		cvm_report_add(rep, "policy.tee", false,
		               "the policy sets %s, which only an SEV-SNP report can match, but this is a "
		               "DCAP quote",
		               policy_snp_expectation(p));
		ok = false;
	}
	if (other != NULL) {
		cvm_report_add(
		    rep, "policy.tee", false,
		    "the policy sets %s, which only an %s quote can match, but this quote is from %s", other,
		    q->tee == CVM_TEE_TDX ? "SGX" : "TDX",
		    q->tee == CVM_TEE_TDX ? "a TDX TD" : "an SGX enclave");
		ok = false;
	}
	/* The attribute checks come first: a debug TEE or a TD without
	 * SEPT_VE_DISABLE is unacceptable whatever its TCB, so the first
	 * failure a person reads is the most fundamental one. */
	ok &= check_debug(p, q, rep);
	if (q->tee == CVM_TEE_TDX)
		ok &= check_tdx_attributes(p, &q->body.td, rep);
	ok &= check_tcb_status(p, res, rep);
	ok &= check_advisories(p, res, rep);
	if (q->tee == CVM_TEE_TDX)
		ok &= check_tdx_measurements(p, &q->body.td, rep);
	else
		ok &= check_sgx_measurements(p, &q->body.sgx, rep);
	if (p->report_data.set) {
		const uint8_t *rd = q->tee == CVM_TEE_TDX ? q->body.td.report_data : q->body.sgx.report_data;

		ok &= check_value("policy.report_data", "REPORTDATA", p->report_data.v, rd, 64, rep);
	}
	return ok ? CVM_OK : CVM_E_POLICY;
}

/* ---- SEV-SNP appraisal ------------------------------------------------- */

static bool check_snp_crl(const struct cvm_policy *p, const struct cvm_amd_result *res,
                          struct cvm_report *rep)
{
	const char *inter = res->signer == CVM_SNP_SIGNER_VLEK ? "ASVK" : "ASK";

	if (res->crl_checked) {
		cvm_report_add(rep, "policy.crl", true, "the %s was checked against AMD's CRL", inter);
		return true;
	}
	if (!p->snp.require_crl) {
		cvm_report_add(rep, "policy.crl", true,
		               "no CRL was given, so the %s's revocation was not checked; allowed by "
		               "snp.require_crl false",
		               inter);
		return true;
	}
	cvm_report_add(rep, "policy.crl", false,
	               "no CRL was given, so the %s's revocation was not checked: give the CRL AMD's KDS "
	               "serves for this product (crl.der beside the chain), or set snp.require_crl to false",
	               inter);
	return false;
}

static bool check_snp_flags(const struct cvm_policy *p, const struct cvm_snp_report *s,
                            struct cvm_report *rep)
{
	bool allow_debug = p->snp.allow_debug_set ? p->snp.allow_debug : p->allow_debug;
	bool ok = true;

	if ((s->policy & CVM_SNP_POLICY_DEBUG) == 0) {
		cvm_report_add(rep, "policy.debug", true, "guest policy DEBUG (bit 19) is clear");
	} else if (allow_debug) {
		cvm_report_add(rep, "policy.debug", true, "guest policy DEBUG (bit 19) is set; allowed by %s",
		               p->snp.allow_debug_set ? "snp.allow_debug" : "allow_debug");
	} else {
		cvm_report_add(rep, "policy.debug", false,
		               "guest policy DEBUG (bit 19) is set (policy 0x%" PRIx64
		               "): the host can read and write a debug guest's memory, and the policy does "
		               "not allow debug",
		               s->policy);
		ok = false;
	}
	if ((s->policy & CVM_SNP_POLICY_MIGRATE_MA) == 0) {
		cvm_report_add(rep, "policy.migration_agent", true,
		               "guest policy MIGRATE_MA (bit 18) is clear");
	} else if (p->snp.allow_migration_agent) {
		cvm_report_add(
		    rep, "policy.migration_agent", true,
		    "guest policy MIGRATE_MA (bit 18) is set; allowed by snp.allow_migration_agent");
	} else {
		cvm_report_add(
		    rep, "policy.migration_agent", false,
		    "guest policy MIGRATE_MA (bit 18) is set: a migration agent may move the guest "
		    "and its secrets elsewhere, and the policy does not allow it");
		ok = false;
	}
	if ((s->platform_info & CVM_SNP_PLATFORM_SMT_EN) == 0) {
		cvm_report_add(rep, "policy.smt", true,
		               "SMT is disabled on the platform (PLATFORM_INFO bit 0)");
	} else if (p->snp.allow_smt) {
		cvm_report_add(rep, "policy.smt", true,
		               "SMT is enabled on the platform; allowed by the policy");
	} else {
		cvm_report_add(rep, "policy.smt", false,
		               "SMT is enabled on the platform (PLATFORM_INFO bit 0), and snp.allow_smt is "
		               "false");
		ok = false;
	}
	if (p->snp.vmpl_any) {
		cvm_report_add(rep, "policy.vmpl", true, "VMPL %u; any VMPL is allowed", s->vmpl);
	} else if (s->vmpl == p->snp.vmpl) {
		cvm_report_add(rep, "policy.vmpl", true, "VMPL %u, as required", s->vmpl);
	} else {
		cvm_report_add(rep, "policy.vmpl", false,
		               "the report comes from VMPL %u, the policy requires VMPL %u", s->vmpl,
		               p->snp.vmpl);
		ok = false;
	}
	return ok;
}

static bool check_min(const char *component, const struct cvm_min8 *m, uint8_t got, struct cvm_wr *bad,
                      struct cvm_wr *good)
{
	if (!m->set)
		return true;
	if (got >= m->v) {
		cvm_wr_fmt(good, "%s%s %u >= %u", good->len ? ", " : "", component, got, m->v);
		return true;
	}
	cvm_wr_fmt(bad, "%s%s %u < %u", bad->len ? ", " : "", component, got, m->v);
	return false;
}

static bool check_snp_tcb(const struct cvm_policy *p, const struct cvm_amd_result *res,
                          struct cvm_report *rep)
{
	const struct cvm_policy_snp *s = &p->snp;
	const struct cvm_snp_tcb *t = &res->reported_tcb;
	char b1[CVM_REPORT_DETAIL_MAX], b2[CVM_REPORT_DETAIL_MAX];
	struct cvm_wr bad, good;
	bool ok = true;

	if (!s->min_bootloader.set && !s->min_tee.set && !s->min_snp.set && !s->min_microcode.set &&
	    !s->min_fmc.set)
		return true;
	cvm_wr_init_text(&bad, b1, sizeof(b1));
	cvm_wr_init_text(&good, b2, sizeof(b2));
	ok &= check_min("bootloader", &s->min_bootloader, t->bootloader, &bad, &good);
	ok &= check_min("tee", &s->min_tee, t->tee, &bad, &good);
	ok &= check_min("snp", &s->min_snp, t->snp, &bad, &good);
	ok &= check_min("microcode", &s->min_microcode, t->microcode, &bad, &good);
	if (s->min_fmc.set && !t->has_fmc) {
		cvm_wr_fmt(&bad, "%sfmc: this product's TCB has no FMC component", bad.len ? ", " : "");
		ok = false;
	} else {
		ok &= check_min("fmc", &s->min_fmc, t->fmc, &bad, &good);
	}
	if (ok)
		cvm_report_add(rep, "policy.min_tcb", true, "reported TCB meets the minimum: %s", b2);
	else
		cvm_report_add(rep, "policy.min_tcb", false, "reported TCB is below the minimum: %s", b1);
	return ok;
}

static bool check_snp_values(const struct cvm_policy *p, const struct cvm_snp_report *s,
                             struct cvm_report *rep)
{
	const struct cvm_policy_snp *q = &p->snp;
	bool ok = true;

	if (q->min_guest_svn != 0) {
		if (s->guest_svn >= q->min_guest_svn) {
			cvm_report_add(rep, "policy.guest_svn", true, "GUEST_SVN %u is at least %u",
			               s->guest_svn, q->min_guest_svn);
		} else {
			cvm_report_add(rep, "policy.guest_svn", false, "GUEST_SVN %u is below the minimum %u",
			               s->guest_svn, q->min_guest_svn);
			ok = false;
		}
	}
	if (q->measurement.set)
		ok &= check_value("policy.measurement", "MEASUREMENT", q->measurement.v, s->measurement,
		                  sizeof(s->measurement), rep);
	if (q->host_data.set)
		ok &= check_value("policy.host_data", "HOST_DATA", q->host_data.v, s->host_data,
		                  sizeof(s->host_data), rep);
	if (q->id_key_digest.set)
		ok &= check_value("policy.id_key_digest", "ID_KEY_DIGEST", q->id_key_digest.v,
		                  s->id_key_digest, sizeof(s->id_key_digest), rep);
	if (q->author_key_digest.set)
		ok &= check_value("policy.author_key_digest", "AUTHOR_KEY_DIGEST", q->author_key_digest.v,
		                  s->author_key_digest, sizeof(s->author_key_digest), rep);
	if (q->family_id.set)
		ok &= check_value("policy.family_id", "FAMILY_ID", q->family_id.v, s->family_id,
		                  sizeof(s->family_id), rep);
	if (q->image_id.set)
		ok &= check_value("policy.image_id", "IMAGE_ID", q->image_id.v, s->image_id,
		                  sizeof(s->image_id), rep);
	if (p->report_data.set)
		ok &= check_value("policy.report_data", "REPORT_DATA", p->report_data.v, s->report_data, 64,
		                  rep);
	if (q->report_data.set)
		ok &= check_value("policy.report_data", "REPORT_DATA", q->report_data.v, s->report_data, 64,
		                  rep);
	return ok;
}

int cvm_policy_appraise_snp(const struct cvm_policy *p, const struct cvm_amd_result *res,
                            struct cvm_report *rep)
{
	const char *other;
	bool ok = true;

	if (p == NULL || res == NULL) {
		cvm_report_add(rep, "policy", false, "no policy or no verdict to appraise");
		return CVM_E_INVAL;
	}
	if (!res->authentic || !res->parsed) {
		cvm_report_add(rep, "policy.authentic", false,
		               "the report was not verified as authentic, so no policy can accept it");
		return CVM_E_POLICY;
	}
	other = policy_tdx_expectation(p);
	if (other == NULL)
		other = policy_sgx_expectation(p);
	if (other != NULL) {
		cvm_report_add(
		    rep, "policy.tee", false,
		    "the policy sets %s, which only a DCAP quote can match, but this is an SEV-SNP "
		    "report",
		    other);
		ok = false;
	}
	/* As for DCAP: the most fundamental checks first, so that the first
	 * failure a person reads is the one to fix first: whether revocation
	 * was checked, then the guest-policy and platform flags. */
	ok &= check_snp_crl(p, res, rep);
	ok &= check_snp_flags(p, &res->report, rep);
	ok &= check_snp_tcb(p, res, rep);
	ok &= check_snp_values(p, &res->report, rep);
	return ok ? CVM_OK : CVM_E_POLICY;
}
