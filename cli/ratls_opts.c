/* Building a verifier of RA-TLS certificates from a command's options
 * (ratls_opts.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/policy.h>
#include <cvmkit/ratls.h>

#include "cli.h"
#include "ratls_opts.h"

int cli_ratls_verifier(const struct cli_ratls_opts *f, struct cvm_ratls_verifier **out)
{
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_ratls_verifier_opts o;
	struct cvm_policy pol;
	uint8_t *root[2] = {NULL}, *ca[CLI_RATLS_CA_MAX] = {NULL};
	size_t root_len[2] = {0}, ca_len[CLI_RATLS_CA_MAX] = {0};
	const uint8_t *intel = NULL, *ark = NULL;
	size_t intel_len = 0, ark_len = 0;
	const uint8_t *cca[CLI_RATLS_CA_MAX] = {NULL};
	char err[256] = "", path[4096];
	int r, rc = CLI_EXIT_ERROR;

	*out = NULL;
	cvm_policy_init(&pol);
	if (f->policy != NULL && cvm_policy_load_file(f->policy, &pol, err, sizeof(err)) != CVM_OK) {
		cli_err(f->cmd, "policy '%s': %s", f->policy, err);
		goto out;
	}
	if (f->collateral != NULL) {
		bool any = false;

		(void)snprintf(path, sizeof(path), "%s/tdx", f->collateral);
		if (access(path, F_OK) == 0) {
			if (cvm_dcap_collateral_load_dir(path, &dcap, err, sizeof(err)) != CVM_OK) {
				cli_err(f->cmd, "TDX collateral: %s", err);
				goto out;
			}
			any = true;
		}
		(void)snprintf(path, sizeof(path), "%s/snp", f->collateral);
		if (access(path, F_OK) == 0) {
			if (cvm_amd_collateral_load_dir(path, &amd, err, sizeof(err)) != CVM_OK) {
				cli_err(f->cmd, "SNP collateral: %s", err);
				goto out;
			}
			any = true;
		}
		if (!any) {
			cli_err(f->cmd,
			        "--collateral '%s' holds neither tdx/ nor snp/: name the folder that does",
			        f->collateral);
			goto out;
		}
	}
	/* Each --root anchors its vendor's evidence, told apart by its key:
	 * AMD's ARKs are RSA, Intel's root CA is P-256. */
	for (size_t i = 0; i < f->root_count; i++) {
		struct cvm_cert *c = NULL;
		bool is_amd;

		rc = cli_load_cert(f->cmd, "--root certificate", f->root[i], &root[i], &root_len[i]);
		if (rc != CLI_EXIT_OK)
			goto out;
		rc = CLI_EXIT_ERROR;
		if (cvm_cert_parse(root[i], root_len[i], &c) != CVM_OK) {
			cli_err(f->cmd, "--root '%s' does not parse", f->root[i]);
			goto out;
		}
		is_amd = cvm_cert_key_type(c, NULL) == CVM_KEY_RSA;
		cvm_cert_free(c);
		if ((is_amd && ark != NULL) || (!is_amd && intel != NULL)) {
			cli_err(f->cmd,
			        "two --root certificates of %s: give at most one Intel root and one AMD ARK",
			        is_amd ? "AMD (RSA keys)" : "Intel (EC keys)");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		if (is_amd) {
			ark = root[i];
			ark_len = root_len[i];
		} else {
			intel = root[i];
			intel_len = root_len[i];
		}
	}
	for (size_t i = 0; i < f->ca_count; i++) {
		rc = cli_load_cert(f->cmd, "--ca certificate", f->ca[i], &ca[i], &ca_len[i]);
		if (rc != CLI_EXIT_OK)
			goto out;
		cca[i] = ca[i];
	}
	memset(&o, 0, sizeof(o));
	o.policy = &pol;
	o.dcap = dcap;
	o.amd = amd;
	o.intel_root_der = intel;
	o.intel_root_der_len = intel_len;
	o.amd_root_der = ark;
	o.amd_root_der_len = ark_len;
	o.ca_der = f->ca_count != 0 ? cca : NULL;
	o.ca_der_len = f->ca_count != 0 ? ca_len : NULL;
	o.ca_count = f->ca_count;
	o.allow_legacy_ca = f->allow_legacy_ca;
	o.require_system_key = f->require_agent_key;
	r = cvm_ratls_verifier_new(&o, f->at, out);
	if (r != CVM_OK && f->collateral != NULL) {
		/* Every kind of collateral in the folder is authenticated up front:
		 * name the anchors it was checked against, and what to give. */
		cli_err(f->cmd,
		        "the collateral in '%s' does not verify (%s) against %s%s%s: give the root each "
		        "kind of collateral chains to (a simulator's collateral needs its root CA and its "
		        "ARK, keys/root.pem and keys/ark.pem, each with --root), or a folder holding only "
		        "the kind you need",
		        f->collateral, cvm_strerror(r),
		        dcap == NULL ? "" : (intel != NULL ? "the Intel root given" : "Intel's root CA"),
		        dcap != NULL && amd != NULL ? " and " : "",
		        amd == NULL ? "" : (ark != NULL ? "the AMD ARK given" : "AMD's ARKs"));
		rc = cli_exit_for(r);
		goto out;
	}
	if (r != CVM_OK) {
		cli_err(f->cmd, "cannot set up the verifier: %s", cvm_strerror(r));
		rc = cli_exit_for(r);
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	free(root[0]);
	free(root[1]);
	for (size_t i = 0; i < CLI_RATLS_CA_MAX; i++)
		free(ca[i]);
	cvm_dcap_collateral_free(dcap);
	cvm_amd_collateral_free(amd);
	return rc;
}
