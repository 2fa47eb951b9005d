/* Request routing (verifier.h): every worker's HTTP handler. */
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon.h"
#include "verifier.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

static bool prefix(const char *path, const char *p)
{
	return strncmp(path, p, strlen(p)) == 0;
}

static void health(struct vd_ctx *ctx, struct cvm_http_resp *resp)
{
	json_t *o;

	o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:b, s:b, s:b}", "status", "ok", "service", "cvm-verifierd",
	              "version", CVM_VERSION_STRING, "worker", (json_int_t)getpid(), "at",
	              (json_int_t)vd_now(ctx), "fixed_time", ctx->cfg->at != 0, "intel_upstream",
	              ctx->cfg->intel_url != NULL && ctx->cfg->intel_url[0] != '\0', "amd_upstream",
	              ctx->cfg->amd_url != NULL && ctx->cfg->amd_url[0] != '\0');
	if (o == NULL) {
		cvm_http_resp_error(resp, 500, "out of memory");
		return;
	}
	cvm_http_resp_json(resp, 200, o);
	json_decref(o);
}

/* method_ok answers 405 unless the request's method is `m` (HEAD goes
 * with GET). */
static bool method_ok(const struct cvm_http_req *req, enum cvm_http_method m, struct cvm_http_resp *resp)
{
	if (req->method == m || (m == CVM_HTTP_GET && req->method == CVM_HTTP_HEAD))
		return true;
	resp->allow = m == CVM_HTTP_GET ? "GET, HEAD" : "POST";
	cvm_http_resp_error(resp, 405, "%s is not allowed here; use %s", req->method_name,
	                    m == CVM_HTTP_GET ? "GET" : "POST");
	return false;
}

static void route(struct vd_ctx *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	const char *p = req->path;

	if (strcmp(p, "/health") == 0) {
		if (method_ok(req, CVM_HTTP_GET, resp))
			health(ctx, resp);
	} else if (strcmp(p, "/metrics") == 0) {
		if (method_ok(req, CVM_HTTP_GET, resp))
			vd_metrics_render(ctx, resp);
	} else if (strcmp(p, "/verify") == 0) {
		if (method_ok(req, CVM_HTTP_POST, resp))
			vd_dstack_verify(ctx, req->body, req->body_len, resp);
	} else if (strcmp(p, "/cvmkit/v1/verify") == 0) {
		if (method_ok(req, CVM_HTTP_POST, resp))
			vd_cvmkit_verify(ctx, req, resp);
	} else if (prefix(p, "/sgx/certification/v4/") || prefix(p, "/tdx/certification/v4/")) {
		vd_pccs_handle(ctx, req, resp); /* GET, and POST for pckcert(s): it checks the method */
	} else if (prefix(p, "/vcek/v1/") || prefix(p, "/vlek/v1/")) {
		if (method_ok(req, CVM_HTTP_GET, resp))
			vd_kds_handle(ctx, req, resp);
	} else {
		cvm_http_resp_error(
		    resp, 404,
		    "no such route; cvm-verifierd serves /health, /metrics, POST /verify, POST "
		    "/cvmkit/v1/verify, /sgx|tdx/certification/v4/... and /vcek|vlek/v1/...");
	}
}

void vd_handle(void *arg, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	struct vd_ctx *ctx = arg;
	int64_t t0 = vd_now_us();

	/* /health and /metrics stay answerable when the service is saturated */
	if (strcmp(req->path, "/health") != 0 && strcmp(req->path, "/metrics") != 0) {
		if (!vd_metrics_request_enter(ctx->metrics, ctx->cfg->max_inflight)) {
			cvm_http_resp_error(
			    resp, 503,
			    "the service handles %u requests already (max_inflight); try again later",
			    ctx->cfg->max_inflight);
			return;
		}
		route(ctx, req, resp);
		vd_metrics_request_leave(ctx->metrics, resp->status, vd_now_us() - t0);
		return;
	}
	route(ctx, req, resp);
}
