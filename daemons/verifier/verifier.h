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
	unsigned
	    upstream_timeout_ms; /* [upstream] timeout_ms: one whole request (0: lib/collateral's default) */
	unsigned upstream_retries; /* [upstream] retries after the first try (0: the default, 3) */
	/* [upstream] refresh_check: seconds between the background refresher's
	 * passes (a process beside the workers that keeps cached items current,
	 * so that no request waits on an upstream for an item it may still
	 * use); 0: no refresher, requests refresh inline. Only with an upstream. */
	unsigned refresh_check_s;
	unsigned refresh_after_s; /* [upstream] refresh_after: re-fetch items older than this (0: 1 day) */
	bool refresher;           /* this process is the refresher: its handle fetches inline */
	struct cvm_httpd_opts http;
	const char *user; /* drop privileges to this user after binding */
	/* Requests handled at once by the whole service (every worker); more
	 * are answered 503. 0: no cap beyond one per worker. */
	unsigned max_inflight;
};

/* Counters shared by all workers (metrics.c). */
enum vd_result { VD_OK = 0, VD_REJECTED = 1, VD_ERROR = 2, VD_RESULTS };
enum vd_api { VD_API_DSTACK = 0, VD_API_CVMKIT = 1, VD_API_PCCS = 2, VD_API_KDS = 3, VD_APIS };

/* The shared counters: one MAP_SHARED mapping made by the parent before it
 * forks the workers, updated with atomic operations. Opaque. */
struct vd_metrics;

#define CVM_VD_ANCHOR_MAX 96 /* as cvm_cache_item.anchor */

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
	/* how verdicts name a configured anchor: "configured: <path> (SHA-256 <hex>)" */
	char intel_anchor[CVM_VD_ANCHOR_MAX];
	char amd_anchor[CVM_VD_ANCHOR_MAX];
	/* The last PCK chain labelled (simulated or not) and its label: a
	 * platform's quotes all carry the same chain, and labelling parses
	 * every certificate (most of a POST /verify's time). */
	uint8_t *sim_chain;
	size_t sim_chain_len;
	bool sim_label;
};

/* vd_has_refresher: the service runs a background refresher (an upstream,
 * not offline, refresh_check > 0). */
bool vd_has_refresher(const struct vd_config *cfg);

/* vd_chain_is_simulated says whether a quote's PCK chain (PEM, as the
 * quote carries it) is the simulated TEE's, remembering the last answer. */
bool vd_chain_is_simulated(struct vd_ctx *ctx, const uint8_t *pem, size_t len);

/* vd_now is the verification time: cfg->at when set, else the clock. */
int64_t vd_now(const struct vd_ctx *ctx);

/* vd_anchor_name writes how verdicts name the trust anchor for `tee`
 * ("tdx", "sgx", "snp"): "Intel SGX Root CA (built in)", "AMD ARK-Milan
 * (built in)", or "configured: <path> (SHA-256 <hex>)". */
void vd_anchor_name(const struct vd_ctx *ctx, const char *tee, char *buf, size_t cap);

/* vd_ctx_open fills `ctx` for one worker (or --verify): it opens the
 * cache handle over cfg->cache_dir with the configured upstreams and
 * anchors, and loads the default policy. `metrics` may be NULL. On failure
 * `err` says what is wrong and what to do. Returns 0 or a CVM_E_*. */
CVM_MUST_CHECK int vd_ctx_open(struct vd_ctx *ctx, const struct vd_config *cfg, struct vd_metrics *metrics,
                               char *err, size_t err_len);
/* vd_ctx_close frees what vd_ctx_open made; a zeroed ctx is a no-op. */
void vd_ctx_close(struct vd_ctx *ctx);

/* Metrics (metrics.c). Every call is a no-op when ctx->metrics is NULL. */
void vd_metrics_verification(struct vd_ctx *ctx, enum vd_api api, enum vd_result result);
/* vd_metrics_collateral counts how a verdict's collateral was obtained
 * (kind "evidence"); vd_metrics_cache the same for one item of `kind` (the
 * read APIs) or, with CVM_CACHE_NONE, for a warm set of `tee` ("sgx" and
 * "tdx" count as dcap, "snp" as amd). `r` is the cache call's result
 * (CVM_E_UPSTREAM: the upstream failed); `us` is how long it took: the
 * upstream's latency when it contacted the upstream. `info` may be NULL. */
void vd_metrics_collateral(struct vd_ctx *ctx, const struct cvm_cache_info *info);
void vd_metrics_cache(struct vd_ctx *ctx, enum cvm_cache_kind kind, const char *tee, int r,
                      const struct cvm_cache_info *info, int64_t us);
/* vd_now_us is a monotonic clock in microseconds, for latencies. */
int64_t vd_now_us(void);
/* vd_metrics_new maps the shared counters (before fork); NULL on failure. */
struct vd_metrics *vd_metrics_new(void);
void vd_metrics_free(struct vd_metrics *m);
/* vd_metrics_request_enter counts a request in flight and returns false
 * (counting nothing) when `max` (0: no cap) are already in flight;
 * vd_metrics_request_leave ends it with its status and duration. */
bool vd_metrics_request_enter(struct vd_metrics *m, unsigned max);
void vd_metrics_request_leave(struct vd_metrics *m, int status, int64_t us);
/* vd_metrics_share publishes worker `worker`'s count of open connections
 * (of `workers`) and says whether it should accept more: while it holds
 * more than an even share of all workers' connections plus one, it should
 * not (the accept gate, cvm_httpd_set_accept_gate). vd_metrics_worker_gone
 * clears a dead worker's count. */
#define VD_WORKERS_MAX 256u
bool vd_metrics_share(struct vd_metrics *m, unsigned worker, unsigned workers, unsigned open);
void vd_metrics_worker_gone(struct vd_metrics *m, unsigned worker);
/* vd_metrics_worker_restart counts a worker the parent restarted. */
void vd_metrics_worker_restart(struct vd_metrics *m);
/* vd_metrics_refresh counts one refresher pass that ended at `when`. */
void vd_metrics_refresh(struct vd_metrics *m, const struct cvm_cache_refresh *st, int64_t when);
/* vd_metrics_render answers GET /metrics: Prometheus text format 0.0.4. */
void vd_metrics_render(struct vd_ctx *ctx, struct cvm_http_resp *resp);

/* vd_handle is the HTTP handler of every worker (server.c); `arg` is the
 * worker's struct vd_ctx. It routes the request to the APIs above, and
 * answers 404, 405 and 503 itself. */
void vd_handle(void *arg, struct cvm_http_req *req, struct cvm_http_resp *resp);

/* vd_pccs_handle answers GET /sgx/certification/v4/... and
 * /tdx/certification/v4/... from the cache (pccs.c), vd_kds_handle
 * GET /vcek/v1/... and /vlek/v1/... (kds.c). Each answers 404 for a path it
 * does not know. */
void vd_pccs_handle(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp);
void vd_kds_handle(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp);

/* vd_request_id adds a random Request-ID header, as Intel's PCS does. */
void vd_request_id(struct cvm_http_resp *resp);

/* vd_query_get finds the parameter `name` in the raw query string `query`
 * (may be NULL) and percent-decodes its value into `buf`. Returns 1 when
 * found, 0 when absent, -1 when the query or value is malformed (bad
 * escape, NUL, repeated parameter, too long for `cap`). */
int vd_query_get(const char *query, const char *name, char *buf, size_t cap);
/* vd_query_only is true when every parameter of `query` is one of the
 * NULL-terminated `names` (Intel's PCS answers 400 to unknown ones). */
bool vd_query_only(const char *query, const char *const *names);

/* vd_dstack_verify answers one dstack `POST /verify` body (dstack.c): it
 * sets `resp` to 200 and dstack-verifier's response object
 * {"is_valid", "details": {...}, "reason"} for any well-formed request
 * (verification failures included), or to 400 with {"error": ...} when the
 * body is not a JSON object of the documented request shape. */
void vd_dstack_verify(struct vd_ctx *ctx, const uint8_t *body, size_t len, struct cvm_http_resp *resp);

/* vd_cvmkit_verify answers `POST /cvmkit/v1/verify` (cvmkit.c): a body
 * that is a raw DCAP quote or SEV-SNP report (Content-Type
 * application/octet-stream, an SNP report's product as ?product=), or JSON
 * {"quote": hex} / {"report": hex} with an optional "policy" object and
 * "product"; an expected nonce is the policy's report_data. Or JSON
 * {"evidence": bundle, "nonce": hex} (include/cvmkit/evidence.h) with the
 * optional "policy", "product", "require_tpm" and "require_ima". */
void vd_cvmkit_verify(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp);

#endif
