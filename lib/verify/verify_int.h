/* What the files of lib/verify share and nothing else may use. */
#ifndef CVM_VERIFY_INT_H
#define CVM_VERIFY_INT_H

#include <cvmkit/policy.h>

/* policy_tdx_expectation, policy_sgx_expectation and
 * policy_snp_expectation name the first expected value of `p` that only a
 * TDX quote, an SGX quote or an SEV-SNP report can meet, or return NULL
 * (policy.c): a policy that expects a TDX measurement rejects an SGX quote
 * rather than ignoring the expectation. */
const char *policy_tdx_expectation(const struct cvm_policy *p);
const char *policy_sgx_expectation(const struct cvm_policy *p);
const char *policy_snp_expectation(const struct cvm_policy *p);

#endif
