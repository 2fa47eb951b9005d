/* One worker's state: its cache handle, the default policy and the
 * configured trust anchors (verifier.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/tee.h>

#include "verifier.h"

/* A root certificate file: one certificate, DER or PEM. */
#define ROOT_FILE_MAX ((size_t)64 * 1024)

int64_t vd_now(const struct vd_ctx *ctx)
{
	if (ctx != NULL && ctx->cfg != NULL && ctx->cfg->at != 0)
		return ctx->cfg->at;
	return (int64_t)time(NULL);
}

void vd_anchor_name(const struct vd_ctx *ctx, const char *tee, char *buf, size_t cap)
{
	bool amd = tee != NULL && strcmp(tee, "snp") == 0;

	if (cap == 0)
		return;
	if (amd && ctx != NULL && ctx->amd_root != NULL)
		(void)snprintf(buf, cap, "%s", ctx->amd_anchor);
	else if (!amd && ctx != NULL && ctx->intel_root != NULL)
		(void)snprintf(buf, cap, "%s", ctx->intel_anchor);
	else if (amd)
		(void)snprintf(buf, cap, "AMD ARK of the report's product (built in)");
	else
		(void)snprintf(buf, cap, "Intel SGX Root CA (built in)");
}

/* load_root reads one certificate from `path` (DER, or the first PEM
 * CERTIFICATE block) into a new DER buffer and names it. */
static int load_root(const char *path, uint8_t **out, size_t *out_len, char *name, size_t name_cap, char *err,
                     size_t err_len)
{
	uint8_t *raw = NULL, *der = NULL;
	size_t raw_len = 0, der_len = 0;
	uint8_t digest[32];
	char hex[65];
	int r;

	*out = NULL;
	*out_len = 0;
	r = cvm_file_read(path, ROOT_FILE_MAX, &raw, &raw_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read the root certificate %s: %s", path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	if (cvm_pem_starts(raw, raw_len)) {
		struct cvm_rd in;
		struct cvm_pem_block b;

		cvm_rd_init(&in, raw, raw_len);
		r = cvm_pem_next(&in, &b);
		if (r == CVM_OK && !cvm_pem_label_is(&b, "CERTIFICATE"))
			r = CVM_E_FORMAT;
		if (r == CVM_OK) {
			der = malloc(cvm_pem_decoded_max(&b) + 1);
			r = der == NULL ? CVM_E_NOMEM
			                : cvm_pem_decode(&b, der, cvm_pem_decoded_max(&b), &der_len);
		}
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "%s: not a PEM CERTIFICATE: %s", path, cvm_strerror(r));
			goto out;
		}
	} else {
		der = raw;
		der_len = raw_len;
		raw = NULL;
	}
	cvm_sha256(der, der_len, digest);
	cvm_hex_encode(digest, sizeof(digest), hex);
	/* the digest's first 16 bytes: the name must fit cvm_cache_info.anchor */
	hex[32] = '\0';
	if (snprintf(name, name_cap, "configured: %s (SHA-256 %s...)", path, hex) >= (int)name_cap)
		(void)snprintf(name, name_cap, "configured: ...%s (SHA-256 %s...)",
		               path + strlen(path) - (name_cap > 60 ? name_cap - 60 : 0), hex);
	*out = der;
	*out_len = der_len;
	der = NULL;
	r = CVM_OK;
out:
	free(raw);
	free(der);
	return r;
}

int vd_ctx_open(struct vd_ctx *ctx, const struct vd_config *cfg, struct vd_metrics *metrics, char *err,
                size_t err_len)
{
	struct cvm_cache_opts o;
	int r;

	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->metrics = metrics;
	cvm_policy_init(&ctx->policy);
	if (cfg->policy_path != NULL && cfg->policy_path[0] != '\0') {
		char perr[256];

		r = cvm_policy_load_file(cfg->policy_path, &ctx->policy, perr, sizeof(perr));
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "the policy %s: %s", cfg->policy_path, perr);
			goto out;
		}
	}
	if (cfg->intel_root != NULL && cfg->intel_root[0] != '\0') {
		r = load_root(cfg->intel_root, &ctx->intel_root, &ctx->intel_root_len, ctx->intel_anchor,
		              sizeof(ctx->intel_anchor), err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	if (cfg->amd_root != NULL && cfg->amd_root[0] != '\0') {
		r = load_root(cfg->amd_root, &ctx->amd_root, &ctx->amd_root_len, ctx->amd_anchor,
		              sizeof(ctx->amd_anchor), err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	memset(&o, 0, sizeof(o));
	o.dir = cfg->cache_dir;
	o.intel_url = cfg->intel_url != NULL && cfg->intel_url[0] != '\0' ? cfg->intel_url : NULL;
	o.amd_url = cfg->amd_url != NULL && cfg->amd_url[0] != '\0' ? cfg->amd_url : NULL;
	o.offline = cfg->offline;
	o.timeout_ms = cfg->upstream_timeout_ms;
	o.retries = cfg->upstream_retries;
	o.refresh_s = cfg->refresh_after_s;
	/* the workers leave refreshing to the refresher, when there is one */
	o.background_refresh = vd_has_refresher(cfg) && !cfg->refresher;
	o.intel_root_der = ctx->intel_root;
	o.intel_root_der_len = ctx->intel_root_len;
	o.intel_root_name = ctx->intel_root != NULL ? ctx->intel_anchor : NULL;
	o.amd_root_der = ctx->amd_root;
	o.amd_root_der_len = ctx->amd_root_len;
	o.amd_root_name = ctx->amd_root != NULL ? ctx->amd_anchor : NULL;
	r = cvm_cache_open(&o, &ctx->cache, err, err_len);
	if (r != CVM_OK && err_len != 0 && err[0] == '\0')
		(void)snprintf(err, err_len, "cannot open the collateral cache %s: %s", cfg->cache_dir,
		               cvm_strerror(r));
out:
	if (r != CVM_OK)
		vd_ctx_close(ctx);
	return r;
}

void vd_ctx_close(struct vd_ctx *ctx)
{
	if (ctx == NULL)
		return;
	cvm_cache_close(ctx->cache);
	ctx->cache = NULL;
	free(ctx->intel_root);
	free(ctx->amd_root);
	ctx->intel_root = NULL;
	ctx->amd_root = NULL;
	ctx->intel_root_len = 0;
	ctx->amd_root_len = 0;
	free(ctx->sim_chain);
	ctx->sim_chain = NULL;
	ctx->sim_chain_len = 0;
}

bool vd_has_refresher(const struct vd_config *cfg)
{
	return cfg->refresh_check_s > 0 && !cfg->offline &&
	       ((cfg->intel_url != NULL && cfg->intel_url[0] != '\0') ||
	        (cfg->amd_url != NULL && cfg->amd_url[0] != '\0'));
}

bool vd_chain_is_simulated(struct vd_ctx *ctx, const uint8_t *pem, size_t len)
{
	uint8_t *copy;
	bool sim;

	if (ctx->sim_chain != NULL && ctx->sim_chain_len == len && memcmp(ctx->sim_chain, pem, len) == 0)
		return ctx->sim_label;
	sim = cvm_tee_evidence_is_simulated(NULL, 0, pem, len);
	copy = malloc(len + 1); /* + 1: never malloc(0) */
	if (copy != NULL) {     /* without memory, only the memo is lost */
		memcpy(copy, pem, len);
		free(ctx->sim_chain);
		ctx->sim_chain = copy;
		ctx->sim_chain_len = len;
		ctx->sim_label = sim;
	}
	return sim;
}
