/* Building a verifier of RA-TLS certificates from a command's options
 * (--collateral, --root, --ca, --policy, --at, --require-agent-key,
 * --allow-legacy-ca), shared by `cvm cert ratls fetch` and the `cvm kms`
 * client commands. */
#ifndef CLI_RATLS_OPTS_H
#define CLI_RATLS_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/ratls.h>

#define CLI_RATLS_CA_MAX 8

struct cli_ratls_opts {
	const char *cmd; /* for messages */
	const char *collateral, *policy;
	const char *root[2]; /* Intel's root CA and/or AMD's ARK, in any order */
	size_t root_count;
	const char *ca[CLI_RATLS_CA_MAX];
	size_t ca_count;
	int64_t at;
	bool require_agent_key, allow_legacy_ca;
};

/* cli_ratls_verifier builds the verifier the options describe; prints why
 * not. Returns a CLI_EXIT_* code. */
int cli_ratls_verifier(const struct cli_ratls_opts *f, struct cvm_ratls_verifier **out);

#endif
