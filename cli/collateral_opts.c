/* The collateral options of the verifying commands (collateral_opts.h):
 * one place for --collateral DIR, --product and the cache options, and for
 * loading a quote's or report's collateral from either. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cvmkit/err.h>

#include "collateral_opts.h"

int cli_coll_option(const char *cmd, struct cli_coll *o, int c, const char *arg)
{
	int k;

	switch (c) {
	case CLI_OPT_COLLATERAL:
		o->dir = arg;
		return 1;
	case CLI_OPT_PRODUCT:
		if (strcmp(arg, "Milan") == 0)
			o->product = CVM_SNP_PRODUCT_MILAN;
		else if (strcmp(arg, "Genoa") == 0)
			o->product = CVM_SNP_PRODUCT_GENOA;
		else if (strcmp(arg, "Turin") == 0)
			o->product = CVM_SNP_PRODUCT_TURIN;
		else {
			cli_err(cmd, "--product '%s': expected Milan, Genoa or Turin", arg);
			return -1;
		}
		return 1;
	default:
		break;
	}
	k = cli_cache_option(cmd, &o->cache, c, arg);
	if (k > 0)
		o->cache_given = true;
	return k;
}

int cli_coll_check(const char *cmd, const struct cli_coll *o)
{
	if (o->dir == NULL || !o->cache_given)
		return CLI_EXIT_OK;
	cli_err(cmd, "--collateral DIR takes the collateral from DIR: the cache options "
	             "(--cache, --intel-url, --amd-url, --offline, --refresh, ...) go without it");
	return CLI_EXIT_USAGE;
}

/* dir_of is the folder the collateral of one platform is in: DIR/tdx or
 * DIR/snp when `per_platform` and that folder exists, else DIR. */
static const char *dir_of(const struct cli_coll *o, bool is_snp, char *buf, size_t cap)
{
	struct stat st;

	if (!o->per_platform)
		return o->dir;
	if (snprintf(buf, cap, "%s/%s", o->dir, is_snp ? "snp" : "tdx") >= (int)cap)
		return o->dir;
	if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return buf;
	return o->dir;
}

static int load_dir(const char *cmd, struct cli_coll *o, bool is_snp, struct cvm_dcap_collateral **dcap,
                    struct cvm_amd_collateral **amd)
{
	char what[4352] = "", path[4096];
	const char *dir = dir_of(o, is_snp, path, sizeof(path));
	int r;

	if (is_snp)
		r = cvm_amd_collateral_load_dir(dir, amd, what, sizeof(what));
	else
		r = cvm_dcap_collateral_load_dir(dir, dcap, what, sizeof(what));
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	cli_err(cmd, "cannot load %scollateral from '%s': %s", is_snp ? "SEV-SNP " : "", dir,
	        what[0] != '\0' ? what : cvm_strerror(r));
	if (is_snp)
		fprintf(stderr,
		        "cvm %s: for an SEV-SNP report, --collateral needs a folder with vcek.der "
		        "(or vcek.pem) or vlek.der, and ask.pem, asvk.pem or cert_chain.pem; ark.pem and "
		        "crl.der are optional%s\n",
		        cmd, o->per_platform ? " (DIR/snp, or DIR itself)" : "");
	else
		fprintf(stderr,
		        "cvm %s: --collateral needs a folder with tcb_info.json, qe_identity.json, "
		        "tcb_info_issuer_chain.pem, qe_identity_issuer_chain.pem, pck_crl_issuer_chain.pem, "
		        "pck_crl.der and root_ca_crl.der%s\n",
		        cmd,
		        o->per_platform ? " (DIR/tdx, or DIR itself; a simulator's DIR/collateral)" : "");
	return CLI_EXIT_ERROR;
}

static int load_cache(const char *cmd, struct cli_coll *o, const char *what, bool is_snp, const uint8_t *ev,
                      size_t len, int64_t at, const uint8_t *root, size_t root_len,
                      struct cvm_dcap_collateral **dcap, struct cvm_amd_collateral **amd)
{
	struct cvm_cache *c = NULL;
	char err[1024] = "";
	int r, rc;

	rc = cli_cache_open(cmd, &o->cache, is_snp ? NULL : root, is_snp ? 0 : root_len, is_snp ? root : NULL,
	                    is_snp ? root_len : 0, &c);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (is_snp)
		r = cvm_cache_amd(c, ev, len, o->product, NULL, 0, at,
		                  o->cache.refresh ? CVM_CACHE_REFRESH : 0, amd, &o->info, err, sizeof(err));
	else
		r = cvm_cache_dcap(c, ev, len, at, o->cache.refresh ? CVM_CACHE_REFRESH : 0, dcap, &o->info,
		                   err, sizeof(err));
	cvm_cache_close(c);
	if (r == CVM_OK) {
		o->from_cache = true;
		return CLI_EXIT_OK;
	}
	cli_err(cmd, "no usable collateral in the cache '%s' for '%s': %s", o->cache.dir_used, what,
	        err[0] != '\0' ? err : cvm_strerror(r));
	if (r == CVM_E_UNSUPPORTED && is_snp && o->product == CVM_SNP_PRODUCT_UNKNOWN)
		fprintf(stderr,
		        "cvm %s: give the product with --product Milan|Genoa|Turin, or --collateral DIR\n",
		        cmd);
	else if (r == CVM_E_NOT_FOUND || r == CVM_E_UPSTREAM || r == CVM_E_UNSUPPORTED)
		fprintf(stderr,
		        "cvm %s: give --collateral DIR, import a bundle (cvm collateral import), "
		        "or name an upstream (--intel-url / --amd-url, or CVM_INTEL_URL / CVM_AMD_URL)\n",
		        cmd);
	/* Collateral that fails its own verification rejects the evidence;
	 * collateral that cannot be had (or named) stops the job. */
	if (r == CVM_E_NOT_FOUND || r == CVM_E_UPSTREAM || r == CVM_E_UNSUPPORTED)
		return CLI_EXIT_ERROR;
	return cli_exit_for(r);
}

int cli_coll_load(const char *cmd, struct cli_coll *o, const char *what, bool is_snp, const uint8_t *ev,
                  size_t len, int64_t at, const uint8_t *root, size_t root_len,
                  struct cvm_dcap_collateral **dcap, struct cvm_amd_collateral **amd)
{
	*dcap = NULL;
	*amd = NULL;
	o->from_cache = false;
	if (o->dir != NULL)
		return load_dir(cmd, o, is_snp, dcap, amd);
	return load_cache(cmd, o, what, is_snp, ev, len, at, root, root_len, dcap, amd);
}
