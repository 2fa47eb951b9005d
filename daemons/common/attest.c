/* A verifier of RA-TLS peers from a daemon's config (attest.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>

#include "attest.h"

#define CERT_FILE_MAX ((size_t)64 * 1024)

/* load_cert_der reads a DER or PEM certificate file (the first certificate
 * of a PEM file) as DER. */
static int load_cert_der(const char *path, uint8_t **der, size_t *len, char *err, size_t err_len)
{
	struct cvm_cert **certs = NULL;
	uint8_t *buf = NULL;
	size_t buf_len = 0, n = 0;
	const uint8_t *d;
	size_t dl;
	int r;

	*der = NULL;
	*len = 0;
	r = cvm_file_read(path, CERT_FILE_MAX, &buf, &buf_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read %s: %s", path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	r = cvm_certs_parse_pem(buf, buf_len, &certs, &n);
	if (r != CVM_OK || n == 0) {
		struct cvm_cert *c = NULL;

		r = cvm_cert_parse(buf, buf_len, &c);
		if (r == CVM_OK) {
			*der = buf;
			*len = buf_len;
			cvm_cert_free(c);
			return CVM_OK;
		}
		(void)snprintf(err, err_len, "%s holds no certificate", path);
		free(buf);
		return CVM_E_FORMAT;
	}
	cvm_cert_der(certs[0], &d, &dl);
	*der = malloc(dl);
	if (*der != NULL) {
		memcpy(*der, d, dl);
		*len = dl;
	}
	cvm_certs_free(certs, n);
	free(buf);
	return *der != NULL ? CVM_OK : CVM_E_NOMEM;
}

int cvm_daemon_verifier_new(const struct cvm_daemon_verifier_conf *c, struct cvm_ratls_verifier **out,
                            char *err, size_t err_len)
{
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_ratls_verifier_opts o;
	struct cvm_policy pol;
	uint8_t *intel = NULL, *ark = NULL;
	size_t intel_len = 0, ark_len = 0;
	char path[4096 + 8], why[200] = "";
	int r = CVM_OK;

	*out = NULL;
	cvm_policy_init(&pol);
	if (c->policy[0] != '\0' && (r = cvm_policy_load_file(c->policy, &pol, why, sizeof(why))) != CVM_OK) {
		(void)snprintf(err, err_len, "%s policy %.200s: %s", c->section, c->policy, why);
		goto out;
	}
	if (c->collateral[0] != '\0') {
		(void)snprintf(path, sizeof(path), "%s/tdx", c->collateral);
		if (access(path, F_OK) == 0 &&
		    (r = cvm_dcap_collateral_load_dir(path, &dcap, why, sizeof(why))) != CVM_OK) {
			(void)snprintf(err, err_len, "%s TDX collateral %.200s: %s", c->section, path, why);
			goto out;
		}
		(void)snprintf(path, sizeof(path), "%s/snp", c->collateral);
		if (access(path, F_OK) == 0 &&
		    (r = cvm_amd_collateral_load_dir(path, &amd, why, sizeof(why))) != CVM_OK) {
			(void)snprintf(err, err_len, "%s SNP collateral %.200s: %s", c->section, path, why);
			goto out;
		}
	}
	if (c->intel_root[0] != '\0' &&
	    (r = load_cert_der(c->intel_root, &intel, &intel_len, err, err_len)) != CVM_OK)
		goto out;
	if (c->amd_root[0] != '\0' &&
	    (r = load_cert_der(c->amd_root, &ark, &ark_len, err, err_len)) != CVM_OK)
		goto out;
	memset(&o, 0, sizeof(o));
	o.policy = &pol;
	o.dcap = dcap;
	o.amd = amd;
	o.intel_root_der = intel;
	o.intel_root_der_len = intel_len;
	o.amd_root_der = ark;
	o.amd_root_der_len = ark_len;
	o.allow_legacy_ca = c->allow_legacy_ca;
	o.cache_entries = c->cache_entries;
	r = cvm_ratls_verifier_new(&o, (int64_t)time(NULL), out);
	if (r != CVM_OK)
		(void)snprintf(
		    err, err_len,
		    "the verifier cannot be made (%s): check %s collateral and the roots it chains "
		    "to",
		    cvm_strerror(r), c->section);
out:
	free(intel);
	free(ark);
	cvm_dcap_collateral_free(dcap);
	cvm_amd_collateral_free(amd);
	return r;
}
