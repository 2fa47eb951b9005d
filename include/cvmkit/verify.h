/* Verification front door: authenticity by the vendor's rules, then policy. */
#ifndef CVMKIT_VERIFY_H
#define CVMKIT_VERIFY_H

#include "api.h"

#include "amd.h"
#include "dcap.h"
#include "policy.h"
#include "report.h"

/* cvm_verify_quote verifies a DCAP quote (SGX or TDX) with `collateral` at
 * Unix time `at`, anchored in `root_der` (NULL: Intel's root), and appraises
 * it with `policy`. Returns 0 only when the quote is authentic and the policy
 * accepts it; otherwise a negative CVM_E_* (CVM_E_POLICY when only the policy
 * rejected). `res` always carries the quote verdict (status, advisories)
 * as far as verification got; `rep` the steps. */
CVM_API CVM_MUST_CHECK int cvm_verify_quote(const uint8_t *quote, size_t quote_len,
                                            const struct cvm_dcap_collateral *collateral,
                                            const uint8_t *root_der, size_t root_der_len, int64_t at,
                                            const struct cvm_policy *policy, struct cvm_report *rep,
                                            struct cvm_dcap_result *res);

/* cvm_verify_quote_warm is cvm_verify_quote over collateral verified once. */
CVM_API CVM_MUST_CHECK int cvm_verify_quote_warm(struct cvm_dcap_verified *v, const uint8_t *quote,
                                                 size_t quote_len, int64_t at,
                                                 const struct cvm_policy *policy, struct cvm_report *rep,
                                                 struct cvm_dcap_result *res);

/* cvm_verify_snp_report verifies an AMD SEV-SNP report by AMD's rules with
 * the certificates in `collateral` at Unix time `at`, anchored in `root_der`
 * (NULL: the built-in ARK of the chain's product; an ARK in the collateral is
 * never trusted by itself), and appraises it with `policy`. The chain (VCEK
 * or VLEK) is chosen by the report's signing key. Returns 0 only when the
 * report is authentic and the policy accepts it; otherwise a negative
 * CVM_E_* (CVM_E_POLICY when only the policy rejected). `res` always carries
 * AMD's verdict as far as verification got (res->authentic: every AMD check
 * passed); `rep` the steps. */
CVM_API CVM_MUST_CHECK int cvm_verify_snp_report(const uint8_t *report, size_t report_len,
                                                 const struct cvm_amd_collateral *collateral,
                                                 const uint8_t *root_der, size_t root_der_len, int64_t at,
                                                 const struct cvm_policy *policy, struct cvm_report *rep,
                                                 struct cvm_amd_result *res);

/* cvm_verify_snp_report_warm is cvm_verify_snp_report over a chain verified
 * once (cvm_amd_chain_authenticate): only the report's own checks and the policy
 * run. A report signed by the other kind of key (VLEK for a VCEK chain) is
 * rejected. */
CVM_API CVM_MUST_CHECK int cvm_verify_snp_report_warm(struct cvm_amd_verified *v, const uint8_t *report,
                                                      size_t report_len, int64_t at,
                                                      const struct cvm_policy *policy, struct cvm_report *rep,
                                                      struct cvm_amd_result *res);

#endif
