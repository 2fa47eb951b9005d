/* A verifier of RA-TLS peers built from a daemon's config: the policy
 * file, the collateral folder (tdx/ and/or snp/) and the vendor roots that
 * evidence chains to. cvm-kmsd checks its clients with it, cvm-agentd its
 * KMS. */
#ifndef CVM_DAEMON_ATTEST_H
#define CVM_DAEMON_ATTEST_H

#include <stdbool.h>
#include <stddef.h>

#include <cvmkit/ratls.h>

/* struct cvm_daemon_verifier_conf names the files; "" is unset. */
struct cvm_daemon_verifier_conf {
	const char *section; /* the config section, for messages: "[attestation]" */
	const char *policy;  /* "": the default policy (authentic evidence, nothing more) */
	const char *collateral;
	const char *intel_root, *amd_root; /* "": the vendors' real roots */
	bool allow_legacy_ca;
	unsigned cache_entries;
};

/* cvm_daemon_verifier_new builds the verifier `c` describes; on failure
 * `err` names the file and what was wrong with it. Returns 0 or a negative
 * CVM_E_*. */
int cvm_daemon_verifier_new(const struct cvm_daemon_verifier_conf *c, struct cvm_ratls_verifier **out,
                            char *err, size_t err_len);

#endif
