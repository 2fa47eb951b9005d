/* Verification front door: structure, then authenticity by the vendor's rules (Intel DCAP, AMD SEV-SNP),
 * then the caller's appraisal policy. Fails closed: 0 only when every stage
 * ran and passed. */
#include <string.h>

#include <cvmkit/dcap.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>
#include <cvmkit/snp.h>
#include <cvmkit/verify.h>

/* parse_step parses the quote into `q` first, so callers can show the
 * measured fields even when a later stage fails. Success adds no step:
 * quote verification reports the structure again with its own checks.
 * Returns 0, the parse error (with `*go_on` true when the quote proper is
 * complete and only non-zero bytes follow it, so the remaining stages still
 * run for the record), or the parse error with `*go_on` false. */
static int parse_step(const uint8_t *quote, size_t quote_len, struct cvm_quote *q, struct cvm_report *rep,
                      bool *go_on)
{
	int r;

	*go_on = false;
	r = cvm_quote_parse(quote, quote_len, q);
	if (r == CVM_OK) {
		*go_on = true;
		return CVM_OK;
	}
	if (r == CVM_E_FORMAT && q->trailing_garbage) {
		cvm_report_add(rep, "quote.parse", false,
		               "%zu bytes that are not zero padding follow the %zu-byte quote: rejected (the "
		               "quote proper is still verified below, for the record)",
		               q->padding_len, q->quote_len);
		*go_on = true;
		return r;
	}
	/* A half-parsed quote must not be shown as if it were read. */
	memset(q, 0, sizeof(*q));
	cvm_report_add(rep, "quote.parse", false, "the %zu bytes are not a DCAP quote cvmkit can read: %s",
	               quote_len, cvm_strerror(r));
	return r;
}

/* finish makes sure a failure is never silent and never positive. */
static int finish(int r, struct cvm_report *rep, const char *stage)
{
	if (r > 0)
		r = CVM_E_INTERNAL;
	if (r != CVM_OK && rep != NULL && rep->failed == NULL)
		cvm_report_add(rep, stage, false, "%s", cvm_strerror(r));
	return r;
}

/* quote_and_policy runs the stages shared by the cold and warm paths, once
 * the collateral is verified. `parse_r` is the structure verdict: when it is
 * not 0, the quote is verified for the record only and never appraised. */
static int quote_and_policy(struct cvm_dcap_verified *v, const uint8_t *quote, size_t quote_len, int64_t at,
                            const struct cvm_policy *policy, struct cvm_report *rep,
                            struct cvm_dcap_result *res, const struct cvm_quote *parsed, int parse_r)
{
	int r;

	r = cvm_dcap_quote_authenticate(v, quote, quote_len, at, rep, res);
	/* Keep the structure parse if quote verification cleared it. */
	if (res->quote.version == 0)
		res->quote = *parsed;
	if (parse_r != CVM_OK)
		return finish(parse_r, rep, "quote.parse");
	r = finish(r, rep, "dcap.quote");
	if (r != CVM_OK)
		return r;
	if (!res->authentic) {
		cvm_report_add(rep, "dcap.quote", false,
		               "quote verification returned without marking the quote authentic");
		return CVM_E_INTERNAL;
	}
	r = cvm_policy_appraise_quote(policy, res, rep);
	return finish(r, rep, "policy");
}

int cvm_verify_quote(const uint8_t *quote, size_t quote_len, const struct cvm_dcap_collateral *collateral,
                     const uint8_t *root_der, size_t root_der_len, int64_t at,
                     const struct cvm_policy *policy, struct cvm_report *rep, struct cvm_dcap_result *res)
{
	struct cvm_dcap_verified *v = NULL;
	struct cvm_quote parsed;
	bool go_on;
	int r, parse_r;

	if (res == NULL)
		return CVM_E_INVAL;
	memset(res, 0, sizeof(*res));
	if (quote == NULL || collateral == NULL || policy == NULL) {
		cvm_report_add(rep, "verify", false, "no quote, collateral or policy given");
		return CVM_E_INVAL;
	}
	parse_r = parse_step(quote, quote_len, &res->quote, rep, &go_on);
	r = parse_r;
	if (!go_on)
		goto out;
	parsed = res->quote;
	r = cvm_dcap_collateral_authenticate(collateral, root_der, root_der_len, at, rep, &v);
	r = finish(r, rep, "collateral");
	if (r == CVM_OK && v == NULL)
		r = finish(CVM_E_INTERNAL, rep, "collateral");
	if (r != CVM_OK)
		goto out;
	r = quote_and_policy(v, quote, quote_len, at, policy, rep, res, &parsed, parse_r);
out:
	cvm_dcap_verified_free(v);
	if (r == CVM_OK && parse_r != CVM_OK)
		r = parse_r; /* unreachable by construction; kept to fail closed */
	return r;
}

int cvm_verify_quote_warm(struct cvm_dcap_verified *v, const uint8_t *quote, size_t quote_len, int64_t at,
                          const struct cvm_policy *policy, struct cvm_report *rep,
                          struct cvm_dcap_result *res)
{
	struct cvm_quote parsed;
	bool go_on;
	int r;

	if (res == NULL)
		return CVM_E_INVAL;
	memset(res, 0, sizeof(*res));
	if (v == NULL || quote == NULL || policy == NULL) {
		cvm_report_add(rep, "verify", false, "no verified collateral, quote or policy given");
		return CVM_E_INVAL;
	}
	r = parse_step(quote, quote_len, &res->quote, rep, &go_on);
	if (!go_on)
		return r;
	parsed = res->quote;
	return quote_and_policy(v, quote, quote_len, at, policy, rep, res, &parsed, r);
}

/* ---- AMD SEV-SNP -------------------------------------------------------- */

/* snp_parse_step parses the report so that its signing key picks the chain
 * and its fields can be shown even when a later stage fails. */
static int snp_parse_step(const uint8_t *report, size_t report_len, struct cvm_amd_result *res,
                          struct cvm_report *rep)
{
	int r;

	r = cvm_snp_report_parse(report, report_len, &res->report);
	if (r != CVM_OK) {
		memset(&res->report, 0, sizeof(res->report));
		cvm_report_add(rep, "report.parse", false,
		               "the %zu bytes are not an SEV-SNP report cvmkit can read: %s", report_len,
		               cvm_strerror(r));
		return r;
	}
	res->parsed = true;
	if (res->report.signing_key != CVM_SNP_SIGNER_VCEK &&
	    res->report.signing_key != CVM_SNP_SIGNER_VLEK) {
		cvm_report_add(rep, "report.parse", false, "the report's signing key is %u: it is %s",
		               res->report.signing_key,
		               res->report.signing_key == CVM_SNP_SIGNER_NONE ? "not signed"
		                                                              : "a reserved value");
		return CVM_E_SIGNATURE;
	}
	return CVM_OK;
}

/* snp_report_and_policy runs the stages shared by the cold and warm paths
 * once the chain is verified. */
static int snp_report_and_policy(struct cvm_amd_verified *v, const uint8_t *report, size_t report_len,
                                 int64_t at, const struct cvm_policy *policy, struct cvm_report *rep,
                                 struct cvm_amd_result *res)
{
	struct cvm_snp_report parsed = res->report;
	bool was_parsed = res->parsed;
	int r;

	r = cvm_amd_report_authenticate(v, report, report_len, at, rep, res);
	/* Keep the parsed fields if report verification stopped before them. */
	if (!res->parsed && was_parsed) {
		res->report = parsed;
		res->parsed = true;
	}
	r = finish(r, rep, "amd.report");
	if (r != CVM_OK)
		return r;
	if (!res->authentic) {
		cvm_report_add(rep, "amd.report", false,
		               "report verification returned without marking the report authentic");
		return CVM_E_INTERNAL;
	}
	r = cvm_policy_appraise_snp(policy, res, rep);
	return finish(r, rep, "policy");
}

int cvm_verify_snp_report(const uint8_t *report, size_t report_len,
                          const struct cvm_amd_collateral *collateral, const uint8_t *root_der,
                          size_t root_der_len, int64_t at, const struct cvm_policy *policy,
                          struct cvm_report *rep, struct cvm_amd_result *res)
{
	struct cvm_amd_verified *v = NULL;
	int r;

	if (res == NULL)
		return CVM_E_INVAL;
	memset(res, 0, sizeof(*res));
	if (report == NULL || collateral == NULL || policy == NULL) {
		cvm_report_add(rep, "verify", false, "no report, collateral or policy given");
		return CVM_E_INVAL;
	}
	r = snp_parse_step(report, report_len, res, rep);
	if (r != CVM_OK)
		return finish(r, rep, "report.parse");
	r = cvm_amd_chain_authenticate(collateral, (enum cvm_snp_signer)res->report.signing_key, root_der,
	                               root_der_len, at, rep, &v);
	r = finish(r, rep, "amd.chain");
	if (r == CVM_OK && v == NULL)
		r = finish(CVM_E_INTERNAL, rep, "amd.chain");
	if (r != CVM_OK)
		goto out;
	r = snp_report_and_policy(v, report, report_len, at, policy, rep, res);
out:
	cvm_amd_verified_free(v);
	return r;
}

int cvm_verify_snp_report_warm(struct cvm_amd_verified *v, const uint8_t *report, size_t report_len,
                               int64_t at, const struct cvm_policy *policy, struct cvm_report *rep,
                               struct cvm_amd_result *res)
{
	int r;

	if (res == NULL)
		return CVM_E_INVAL;
	memset(res, 0, sizeof(*res));
	if (v == NULL || report == NULL || policy == NULL) {
		cvm_report_add(rep, "verify", false, "no verified chain, report or policy given");
		return CVM_E_INVAL;
	}
	r = snp_parse_step(report, report_len, res, rep);
	if (r != CVM_OK)
		return finish(r, rep, "report.parse");
	return snp_report_and_policy(v, report, report_len, at, policy, rep, res);
}
