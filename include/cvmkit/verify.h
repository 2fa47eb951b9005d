/* Verification front door: authenticity by the vendor's rules, then policy. */
#ifndef CVMKIT_VERIFY_H
#define CVMKIT_VERIFY_H

#include "api.h"

#include "amd.h"
#include "dcap.h"
#include "ima.h"
#include "policy.h"
#include "report.h"
#include "tpm.h"

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

/* struct cvm_ima_coverage is what cvm_verify_ima_list learned. */
struct cvm_ima_coverage {
	bool matched;            /* a prefix of the list gives the quote's PCR digest */
	uint64_t quoted_entries; /* that prefix's length (0: the quote predates every entry) */
	uint64_t total_entries;  /* the entries in the whole list */
	uint32_t pcr_mask;       /* bit i: some entry extends PCR i (bit 10 always set) */
	size_t bank_count;
	uint16_t
	    banks[CVM_IMA_BANKS_MAX]; /* the banks replayed: every quoted one cvmkit hashes, SHA-256 first */
};

/* cvm_verify_ima_list appraises an IMA measurement list against a TPM quote
 * that already authenticated (cvm_tpm_quote_authenticate): it is the one
 * rule for which entries a quote covers. The list is `ima_len` bytes at `ima`
 * or, when `ima_path` is not NULL, the file at that path (binary or ASCII,
 * detected). `base` (may be NULL: none) holds the values of the quoted PCRs
 * the list does not extend, e.g. replayed from the firmware event log or
 * read from a PCR file.
 *
 * The whole list is parsed and every template digest checked, also past the
 * covered prefix. Then, in every bank the quote covers, the list is replayed
 * from the PCRs' reset value (zero) over `base`, and the shortest prefix
 * (the empty one included) whose PCR values give the quote's PCR digest is
 * the covered part: a list that grew after the quote is accepted, its later
 * entries are reported as not covered (res->quoted_entries <
 * res->total_entries). It fails when the quote does not select PCR 10, when
 * no prefix matches, and when an entry of the covered prefix extends a PCR
 * the quote does not select in every replayed bank (nothing vouches for it).
 * On success `out` (may be NULL) receives `base` with the replayed PCRs.
 * Each outcome is one step "ima" in `rep`. Returns 0, CVM_E_MISMATCH,
 * CVM_E_INVAL, CVM_E_NOMEM, CVM_E_SYSTEM (the file; errno says why) or the
 * list's parse errors (CVM_E_FORMAT, CVM_E_TRUNCATED, CVM_E_TOO_LARGE,
 * CVM_E_UNSUPPORTED). It does NOT check the entries' file digests against
 * any reference (cvm_ima_refset_check) nor their signatures (cvm_ima_sig_check). */
CVM_API CVM_MUST_CHECK int cvm_verify_ima_list(const struct cvm_tpm_quote *q, const struct cvm_tpm_pcrs *base,
                                               const uint8_t *ima, size_t ima_len, const char *ima_path,
                                               struct cvm_report *rep, struct cvm_tpm_pcrs *out,
                                               struct cvm_ima_coverage *res);

#endif
