/* cvm-verifierd: the verification service (docs/daemons/cvm-verifierd.md).
 *
 * One process per worker (prefork; the listening socket is shared), each with
 * its own collateral cache handle (lib/collateral keeps warm verified
 * collateral per handle) over one cache directory that all workers and any
 * `cvm` process may share. Counters live in a shared memory page so that
 * /metrics, answered by any worker, shows the whole service.
 *
 * The routes (server.c):
 *   GET  /health, GET /metrics
 *   GET  /sgx/certification/v4/..., /tdx/certification/v4/...  PCCS read API (pccs.c)
 *   GET  /vcek/v1/..., /vlek/v1/...                               AMD KDS read API (kds.c)
 *   POST /verify                                                  dstack-verifier's API (dstack.c)
 *   POST /cvmkit/v1/verify                                        cvmkit's own call (cvmkit.c)
 *
 * This header is the contract between those files. */
#ifndef CVM_VERIFIER_H
#define CVM_VERIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/collateral.h>
#include <cvmkit/policy.h>

#include "httpd.h"

struct json_t;

/* Fixed verification time: replaying old evidence with the collateral of
 * its day (the tests' vectors), 0: the clock. */
struct vd_config {
	const char *config_path;
	const char *listen[CVM_HTTPD_LISTENERS_MAX];
	size_t listen_count;
	unsigned workers;        /* processes; default: online CPUs */
	const char *cache_dir;   /* default /var/cache/cvmkit/collateral */
	const char *intel_url;   /* [upstream] pccs_url; "" or absent: none */
	const char *amd_url;     /* [upstream] kds_url */
	const char *policy_path; /* [verify] policy: the default appraisal policy (JSON) */
	const char *intel_root;  /* [trust] intel_root: an explicitly configured Intel root (DER/PEM) */
	const char *amd_root;    /* [trust] amd_root */
	int64_t at;              /* [verify] at / --at: fixed verification time, 0: now */
	bool offline;            /* [upstream] offline */
	struct cvm_httpd_opts http;
	const char *user; /* drop privileges to this user after binding */
};

/* Counters shared by all workers (metrics.c). */
enum vd_result { VD_OK = 0, VD_REJECTED = 1, VD_ERROR = 2, VD_RESULTS };
enum vd_api { VD_API_DSTACK = 0, VD_API_CVMKIT = 1, VD_API_PCCS = 2, VD_API_KDS = 3, VD_APIS };

/* struct vd_ctx is one worker's state. */
struct vd_ctx {
	const struct vd_config *cfg;
	struct cvm_cache *cache;  /* this worker's handle */
	struct cvm_policy policy; /* the default policy */
	uint8_t *intel_root;      /* configured anchors (NULL: built in) */
	size_t intel_root_len;
	uint8_t *amd_root;
	size_t amd_root_len;
	struct vd_metrics *metrics; /* shared; NULL in --verify mode and unit tests */
};

/* vd_now is the verification time: cfg->at when set, else the clock. */
int64_t vd_now(const struct vd_ctx *ctx);

/* vd_anchor_name writes how verdicts name the trust anchor for `tee`
 * ("tdx", "sgx", "snp"): "Intel SGX Root CA (built in)", "AMD ARK-Milan
 * (built in)", or "configured: <path> (SHA-256 <hex>)". */
void vd_anchor_name(const struct vd_ctx *ctx, const char *tee, char *buf, size_t cap);

/* Metrics (metrics.c). Every call is a no-op when ctx->metrics is NULL. */
void vd_metrics_verification(struct vd_ctx *ctx, enum vd_api api, enum vd_result result);
void vd_metrics_collateral(struct vd_ctx *ctx, const struct cvm_cache_info *info);

/* vd_dstack_verify answers one dstack `POST /verify` body (dstack.c): it
 * sets `resp` to 200 and dstack-verifier's response object
 * {"is_valid", "details": {...}, "reason"} for any well-formed request
 * (verification failures included), or to 400 with {"error": ...} when the
 * body is not a JSON object of the documented request shape. */
void vd_dstack_verify(struct vd_ctx *ctx, const uint8_t *body, size_t len, struct cvm_http_resp *resp);

/* vd_cvmkit_verify answers `POST /cvmkit/v1/verify` (cvmkit.c): a body
 * that is a raw DCAP quote or SEV-SNP report (Content-Type
 * application/octet-stream), or JSON {"quote": hex} / {"report": hex} /
 * {"evidence": {...}} with an optional "policy" object and "nonce". */
void vd_cvmkit_verify(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp);

#endif
