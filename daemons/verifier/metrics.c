/* Shared counters and GET /metrics (verifier.h).
 *
 * The parent maps one anonymous MAP_SHARED region before it forks the
 * workers, so every worker increments the same counters and any of them can
 * answer /metrics for the whole service. Counters are C11 atomics, updated
 * relaxed: each is an independent count, and a scrape that races an update
 * sees the value before or after it. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "verifier.h"

/* Collateral kinds as metrics label them: "evidence" (a verdict's whole
 * set), the cache kinds of the read APIs, then the warm sets. */
#define KIND_EVIDENCE 0
#define KIND_DCAP 11
#define KIND_AMD 12
#define KINDS 13
static const char *const kind_names[KINDS] = {
    "evidence", "tcb_info",  "qe_identity", "qve_identity", "pck_crl", "root_ca_crl", "pck_cert",
    "vcek",     "amd_chain", "amd_crl",     "pck_certs",    "dcap",    "amd",
};
_Static_assert(CVM_CACHE_PCK_CERTS == 10 && CVM_CACHE_AMD_CRL == 9,
               "kind_names lists the cache kinds in their order, then the warm sets");

/* How an item was obtained (cvm_cache_source), and "error" for a call that
 * got nothing. */
#define SOURCES 5
#define SOURCE_ERROR 4
static const char *const source_names[SOURCES] = {"none", "hit", "miss", "stale", "error"};

static const char *const api_names[VD_APIS] = {"dstack", "cvmkit", "pccs", "kds"};
static const char *const result_names[VD_RESULTS] = {"ok", "rejected", "error"};

/* Latency buckets, seconds (upper bounds); the last is +Inf. */
#define BUCKETS 12
static const double bucket_s[BUCKETS - 1] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,   0.25,   1.0,   5.0};

struct histogram {
	atomic_ullong bucket[BUCKETS]; /* not cumulative; summed when rendered */
	atomic_ullong sum_us;
	atomic_ullong count;
};

/* Status classes for requests_total. */
#define CLASSES 5 /* 1xx-5xx */

struct vd_metrics {
	atomic_ullong verifications[VD_APIS][VD_RESULTS];
	atomic_ullong collateral[KINDS][SOURCES];
	atomic_ullong upstream_errors[KINDS];
	struct histogram upstream;
	struct histogram request;
	atomic_ullong requests[CLASSES];
	atomic_ullong refused_inflight;
	atomic_llong inflight;
	atomic_ullong worker_restarts;
	/* the background refresher (vd_metrics_refresh) */
	atomic_ullong refresh_passes;
	atomic_ullong refresh_items[3]; /* refreshed, failed, skipped */
	atomic_llong refresh_last;      /* Unix time of the last pass's end, 0: none yet */
	/* open connections per worker, for the accept gate (vd_metrics_share) */
	atomic_uint worker_conns[VD_WORKERS_MAX];
};

int64_t vd_now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct vd_metrics *vd_metrics_new(void)
{
	void *p =
	    mmap(NULL, sizeof(struct vd_metrics), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* anonymous mappings are zero-filled: every counter starts at 0 */
	return p;
}

void vd_metrics_free(struct vd_metrics *m)
{
	if (m != NULL)
		(void)munmap(m, sizeof(*m));
}

static void add(atomic_ullong *c, unsigned long long n)
{
	(void)atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void observe(struct histogram *h, int64_t us)
{
	size_t i = 0;

	if (us < 0)
		us = 0;
	while (i < BUCKETS - 1 && (double)us / 1e6 > bucket_s[i])
		i++;
	add(&h->bucket[i], 1);
	add(&h->sum_us, (unsigned long long)us);
	add(&h->count, 1);
}

void vd_metrics_verification(struct vd_ctx *ctx, enum vd_api api, enum vd_result result)
{
	if (ctx == NULL || ctx->metrics == NULL || (unsigned)api >= VD_APIS || (unsigned)result >= VD_RESULTS)
		return;
	add(&ctx->metrics->verifications[api][result], 1);
}

static void count_collateral(struct vd_metrics *m, size_t kind, int r, const struct cvm_cache_info *info,
                             int64_t us)
{
	bool upstream_failed = r == CVM_E_UPSTREAM || (info != NULL && info->upstream_err[0] != '\0');
	size_t src = SOURCE_ERROR;

	if (r == CVM_OK && info != NULL && (unsigned)info->source < SOURCE_ERROR &&
	    info->source != CVM_CACHE_FROM_NONE)
		src = (size_t)info->source;
	add(&m->collateral[kind][src], 1);
	if (upstream_failed)
		add(&m->upstream_errors[kind], 1);
	/* the call's time is the upstream's latency when it went there */
	if (us >= 0 && (upstream_failed || (info != NULL && info->fetched != 0)))
		observe(&m->upstream, us);
}

void vd_metrics_collateral(struct vd_ctx *ctx, const struct cvm_cache_info *info)
{
	if (ctx == NULL || ctx->metrics == NULL)
		return;
	count_collateral(ctx->metrics, KIND_EVIDENCE,
	                 info != NULL && info->source != CVM_CACHE_FROM_NONE ? CVM_OK : CVM_E_NOT_FOUND, info,
	                 -1);
}

void vd_metrics_cache(struct vd_ctx *ctx, enum cvm_cache_kind kind, const char *tee, int r,
                      const struct cvm_cache_info *info, int64_t us)
{
	size_t k;

	if (ctx == NULL || ctx->metrics == NULL)
		return;
	if (kind == CVM_CACHE_NONE)
		k = tee != NULL && strcmp(tee, "snp") == 0 ? KIND_AMD : KIND_DCAP;
	else if ((unsigned)kind < KIND_DCAP)
		k = (size_t)kind;
	else
		return;
	count_collateral(ctx->metrics, k, r, info, us);
}

bool vd_metrics_request_enter(struct vd_metrics *m, unsigned max)
{
	long long prev;

	if (m == NULL)
		return true;
	prev = atomic_fetch_add_explicit(&m->inflight, 1, memory_order_relaxed);
	if (max != 0 && prev >= (long long)max) {
		(void)atomic_fetch_sub_explicit(&m->inflight, 1, memory_order_relaxed);
		add(&m->refused_inflight, 1);
		return false;
	}
	return true;
}

void vd_metrics_request_leave(struct vd_metrics *m, int status, int64_t us)
{
	if (m == NULL)
		return;
	(void)atomic_fetch_sub_explicit(&m->inflight, 1, memory_order_relaxed);
	if (status >= 100 && status < 600)
		add(&m->requests[status / 100 - 1], 1);
	observe(&m->request, us);
}

void vd_metrics_worker_restart(struct vd_metrics *m)
{
	if (m != NULL)
		add(&m->worker_restarts, 1);
}

void vd_metrics_refresh(struct vd_metrics *m, const struct cvm_cache_refresh *st, int64_t when)
{
	if (m == NULL || st == NULL)
		return;
	add(&m->refresh_passes, 1);
	add(&m->refresh_items[0], st->refreshed);
	add(&m->refresh_items[1], st->failed);
	add(&m->refresh_items[2], st->skipped);
	atomic_store_explicit(&m->refresh_last, when, memory_order_relaxed);
}

/* The text is at most a few KiB: a fixed buffer, with overflow noticed. */
#define TEXT_MAX ((size_t)32 * 1024)

struct text {
	char buf[TEXT_MAX];
	size_t len;
	bool overflow;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, TEXT_MAX - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= TEXT_MAX - t->len) {
		t->overflow = true;
		return;
	}
	t->len += (size_t)n;
}

static unsigned long long get(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void put_histogram(struct text *t, const char *name, const char *help, struct histogram *h)
{
	unsigned long long cum = 0;

	put(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < BUCKETS; i++) {
		cum += get(&h->bucket[i]);
		if (i < BUCKETS - 1)
			put(t, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_s[i], cum);
		else
			put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
	}
	put(t, "%s_sum %.6f\n%s_count %llu\n", name, (double)get(&h->sum_us) / 1e6, name, get(&h->count));
}

void vd_metrics_render(struct vd_ctx *ctx, struct cvm_http_resp *resp)
{
	static struct text t; /* one per worker process; handlers run one at a time */
	struct vd_metrics *m = ctx != NULL ? ctx->metrics : NULL;

	if (m == NULL) {
		cvm_http_resp_error(resp, 503, "metrics are not available in this mode");
		return;
	}
	t.len = 0;
	t.overflow = false;
	put(&t, "# HELP cvm_verifierd_verifications_total Verdicts by API and result.\n"
	        "# TYPE cvm_verifierd_verifications_total counter\n");
	for (size_t a = 0; a < VD_APIS; a++)
		for (size_t r = 0; r < VD_RESULTS; r++)
			put(&t, "cvm_verifierd_verifications_total{api=\"%s\",result=\"%s\"} %llu\n",
			    api_names[a], result_names[r], get(&m->verifications[a][r]));
	put(&t,
	    "# HELP cvm_verifierd_collateral_total Collateral lookups by kind and how they were served "
	    "(hit: cached and current, miss: fetched from the upstream, stale: the refresh failed and the "
	    "last good item served, error: none available).\n"
	    "# TYPE cvm_verifierd_collateral_total counter\n");
	for (size_t k = 0; k < KINDS; k++)
		for (size_t s = 1; s < SOURCES; s++)
			put(&t, "cvm_verifierd_collateral_total{kind=\"%s\",source=\"%s\"} %llu\n",
			    kind_names[k], source_names[s], get(&m->collateral[k][s]));
	put(&t, "# HELP cvm_verifierd_upstream_errors_total Failed upstream fetches by kind.\n"
	        "# TYPE cvm_verifierd_upstream_errors_total counter\n");
	for (size_t k = 0; k < KINDS; k++)
		put(&t, "cvm_verifierd_upstream_errors_total{kind=\"%s\"} %llu\n", kind_names[k],
		    get(&m->upstream_errors[k]));
	put_histogram(&t, "cvm_verifierd_upstream_seconds",
	              "Time of cache calls that contacted the upstream.", &m->upstream);
	put_histogram(&t, "cvm_verifierd_request_seconds", "Time to answer a request, in the worker.",
	              &m->request);
	put(&t, "# HELP cvm_verifierd_requests_total Answered requests by status class.\n"
	        "# TYPE cvm_verifierd_requests_total counter\n");
	for (size_t c = 0; c < CLASSES; c++)
		put(&t, "cvm_verifierd_requests_total{code=\"%zuxx\"} %llu\n", c + 1, get(&m->requests[c]));
	put(&t,
	    "# HELP cvm_verifierd_requests_refused_total Requests answered 503 over max_inflight.\n"
	    "# TYPE cvm_verifierd_requests_refused_total counter\n"
	    "cvm_verifierd_requests_refused_total %llu\n"
	    "# HELP cvm_verifierd_inflight_requests Requests being handled by all workers.\n"
	    "# TYPE cvm_verifierd_inflight_requests gauge\n"
	    "cvm_verifierd_inflight_requests %lld\n"
	    "# HELP cvm_verifierd_worker_restarts_total Workers the supervisor restarted.\n"
	    "# TYPE cvm_verifierd_worker_restarts_total counter\n"
	    "cvm_verifierd_worker_restarts_total %llu\n",
	    get(&m->refused_inflight), (long long)atomic_load_explicit(&m->inflight, memory_order_relaxed),
	    get(&m->worker_restarts));
	put(&t,
	    "# HELP cvm_verifierd_refresh_passes_total Passes of the background collateral refresher.\n"
	    "# TYPE cvm_verifierd_refresh_passes_total counter\n"
	    "cvm_verifierd_refresh_passes_total %llu\n"
	    "# HELP cvm_verifierd_refresh_items_total Items the refresher found due, by outcome "
	    "(refreshed; failed: the cached item keeps serving; skipped: no upstream, or expired).\n"
	    "# TYPE cvm_verifierd_refresh_items_total counter\n"
	    "cvm_verifierd_refresh_items_total{result=\"refreshed\"} %llu\n"
	    "cvm_verifierd_refresh_items_total{result=\"failed\"} %llu\n"
	    "cvm_verifierd_refresh_items_total{result=\"skipped\"} %llu\n"
	    "# HELP cvm_verifierd_refresh_last_pass_timestamp_seconds When the last refresh pass ended "
	    "(0: none yet).\n"
	    "# TYPE cvm_verifierd_refresh_last_pass_timestamp_seconds gauge\n"
	    "cvm_verifierd_refresh_last_pass_timestamp_seconds %lld\n",
	    get(&m->refresh_passes), get(&m->refresh_items[0]), get(&m->refresh_items[1]),
	    get(&m->refresh_items[2]),
	    (long long)atomic_load_explicit(&m->refresh_last, memory_order_relaxed));
	if (t.overflow) {
		cvm_http_resp_error(resp, 500, "the metrics text outgrew its buffer (a bug)");
		return;
	}
	cvm_http_resp_bytes(resp, 200, "text/plain; version=0.0.4; charset=utf-8", t.buf, t.len);
}

bool vd_metrics_share(struct vd_metrics *m, unsigned worker, unsigned workers, unsigned open)
{
	unsigned total = 0, fair;

	if (m == NULL || workers <= 1 || worker >= workers || workers > VD_WORKERS_MAX)
		return true;
	atomic_store(&m->worker_conns[worker], open);
	for (unsigned i = 0; i < workers; i++)
		total += atomic_load(&m->worker_conns[i]);
	/* an even share, rounded up, plus one of slack */
	fair = (total + workers - 1) / workers + 1;
	return open <= fair;
}

void vd_metrics_worker_gone(struct vd_metrics *m, unsigned worker)
{
	if (m != NULL && worker < VD_WORKERS_MAX)
		atomic_store(&m->worker_conns[worker], 0);
}
