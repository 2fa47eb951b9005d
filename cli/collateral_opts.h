/* Where a verifying command takes the collateral of a quote or report from:
 * a folder (--collateral DIR) or the collateral cache (--cache DIR,
 * --intel-url, --amd-url, --offline, --refresh, --refresh-after, --timeout),
 * with --product for SEV-SNP reports that do not name their product. Shared
 * by `cvm quote verify`, `cvm snapshot` and `cvm verify`. */
#ifndef CVM_CLI_COLLATERAL_OPTS_H
#define CVM_CLI_COLLATERAL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/amd.h>
#include <cvmkit/collateral.h>
#include <cvmkit/dcap.h>
#include <cvmkit/snp.h>

#include "cli.h"

#define CLI_OPT_COLLATERAL 0x190
#define CLI_OPT_PRODUCT 0x191
/* clang-format off */
#define CLI_COLL_LONGOPTS                                                                                  \
	{"collateral", required_argument, NULL, CLI_OPT_COLLATERAL},                                       \
	{"product", required_argument, NULL, CLI_OPT_PRODUCT},                                             \
	CLI_CACHE_LONGOPTS
/* clang-format on */

struct cli_coll {
	const char *dir;              /* --collateral DIR; NULL: the cache */
	struct cli_cache_args cache;  /* the cache options */
	bool cache_given;             /* one of the cache options was given */
	enum cvm_snp_product product; /* --product; UNKNOWN: the report's own */
	bool per_platform;            /* DIR holds tdx/ and snp/ (else DIR is the one folder) */
	/* what cli_coll_load used */
	bool from_cache;
	struct cvm_cache_info info;
};

/* cli_coll_option handles one of CLI_COLL_LONGOPTS inside a getopt loop:
 * returns 1 if `c` was one, 0 if not, -1 on a bad value (reported). */
int cli_coll_option(const char *cmd, struct cli_coll *o, int c, const char *arg);

/* cli_coll_check refuses --collateral together with a cache option
 * (reported); returns CLI_EXIT_OK or CLI_EXIT_USAGE. */
int cli_coll_check(const char *cmd, const struct cli_coll *o);

/* cli_coll_load takes the collateral of the `len` bytes at `ev` (a DCAP
 * quote, or an SEV-SNP report when `is_snp`) from the folder or the cache
 * that `o` names; `root` (may be NULL) is the trust anchor the cache checks
 * what it stores against. `what` names the evidence in messages. Exactly
 * one of *dcap (DCAP) and *amd (SNP) is set on success; the caller frees
 * it. On failure it prints why (and what to do) and returns the exit code:
 * 1 when the collateral cannot be had, 3 when it fails its own
 * verification. */
int cli_coll_load(const char *cmd, struct cli_coll *o, const char *what, bool is_snp, const uint8_t *ev,
                  size_t len, int64_t at, const uint8_t *root, size_t root_len,
                  struct cvm_dcap_collateral **dcap, struct cvm_amd_collateral **amd);

#endif
