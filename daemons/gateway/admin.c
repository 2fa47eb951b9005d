/* The admin API, on its own listener ([gateway] admin_listen), and the
 * Prometheus metrics. Every request needs the admin token
 * ([gateway] admin_token_file) as "Authorization: Bearer <token>" or
 * "X-Admin-Token: <token>"; without a configured token every request is
 * refused (fail-closed). Methods (pRPC style, /prpc/Admin.<Method>):
 *   Status          counters, active connections, instances, draining
 *   ListInstances   the routing table
 *   RemoveInstance  {"instance_id": "..."}: traffic stops going to it
 *   Drain           stop accepting; established connections finish */
#include <stdio.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include <cvmkit/secret.h>

#include "daemon.h"
#include "gw.h"
#include "httpd.h"
#include "rpc.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *name, *help, *type;
} counter_info[GW_C__COUNT] = {
    [GW_C_ACCEPTED] = {"cvm_gateway_connections_accepted_total", "Connections accepted", "counter"},
    [GW_C_ACTIVE] = {"cvm_gateway_unused", "", "gauge"},
    [GW_C_REFUSED_CAP] = {"cvm_gateway_refused_max_connections_total",
                          "Connections refused at the global connection cap", "counter"},
    [GW_C_REFUSED_PER_IP] = {"cvm_gateway_refused_per_ip_total", "Connections refused at the per-address cap",
                             "counter"},
    [GW_C_REFUSED_PER_APP] = {"cvm_gateway_refused_per_app_total", "Connections refused at the per-app cap",
                              "counter"},
    [GW_C_BAD_HELLO] = {"cvm_gateway_bad_client_hello_total",
                        "Connections that sent no valid TLS ClientHello with a server name", "counter"},
    [GW_C_BAD_NAME] = {"cvm_gateway_bad_name_total", "Server names that do not route", "counter"},
    [GW_C_NO_BACKEND] = {"cvm_gateway_no_backend_total", "Names with no healthy instance", "counter"},
    [GW_C_CONNECT_FAILED] = {"cvm_gateway_connect_failed_total",
                             "Connections whose every backend dial failed", "counter"},
    [GW_C_TLS_FAILED] = {"cvm_gateway_tls_failed_total", "TLS handshakes that failed", "counter"},
    [GW_C_TIMEOUT_HANDSHAKE] = {"cvm_gateway_timeout_handshake_total",
                                "Connections cut at the handshake deadline", "counter"},
    [GW_C_TIMEOUT_CONNECT] = {"cvm_gateway_timeout_connect_total",
                              "Backend dials cut at the connect deadline", "counter"},
    [GW_C_TIMEOUT_IDLE] = {"cvm_gateway_timeout_idle_total", "Connections closed for idleness", "counter"},
    [GW_C_TIMEOUT_TOTAL] = {"cvm_gateway_timeout_total_total", "Connections cut at the total deadline",
                            "counter"},
    [GW_C_TERMINATED] = {"cvm_gateway_tls_terminated_total", "TLS handshakes completed by the gateway",
                         "counter"},
    [GW_C_PASSTHROUGH] = {"cvm_gateway_passthrough_total", "Connections passed through to the app's TLS",
                          "counter"},
    [GW_C_DNS_LOOKUPS] = {"cvm_gateway_dns_lookups_total", "TXT lookups for custom domains (cache misses)",
                          "counter"},
    [GW_C_CUSTOM_DOMAIN] = {"cvm_gateway_custom_domain_total",
                            "Connections routed by a custom domain's TXT record", "counter"},
    [GW_C_BYTES_IN] = {"cvm_gateway_client_bytes_in_total", "Bytes received from clients (plaintext or TLS)",
                       "counter"},
    [GW_C_BYTES_OUT] = {"cvm_gateway_client_bytes_out_total", "Bytes sent to clients", "counter"},
};

static bool auth_ok(const struct gw_admin *a, struct cvm_http_req *req)
{
	const struct evkeyvalq *h;
	const char *v = NULL;

	if (a->token_len == 0 || req->er == NULL)
		return false;
	h = evhttp_request_get_input_headers(req->er);
	v = evhttp_find_header(h, "Authorization");
	if (v != NULL && strncmp(v, "Bearer ", 7) == 0)
		v += 7;
	else
		v = evhttp_find_header(h, "X-Admin-Token");
	return v != NULL && strlen(v) == a->token_len && cvm_ct_equal(v, a->token, a->token_len);
}

static void metrics(struct gw_admin *a, struct cvm_http_resp *resp)
{
	char *buf = NULL;
	size_t len = 0, apps = 0, inst;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL) {
		cvm_http_resp_error(resp, 500, "out of memory");
		return;
	}
	for (size_t i = 0; i < GW_C__COUNT; i++) {
		if (i == GW_C_ACTIVE)
			continue;
		(void)fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", counter_info[i].name,
		              counter_info[i].help, counter_info[i].name, counter_info[i].type,
		              counter_info[i].name, (unsigned long long)atomic_load(&a->g->counters[i]));
	}
	inst = gw_routes_count(a->g->routes, &apps);
	(void)fprintf(f,
	              "# HELP cvm_gateway_connections_active Open client connections\n"
	              "# TYPE cvm_gateway_connections_active gauge\ncvm_gateway_connections_active %u\n"
	              "# HELP cvm_gateway_instances Instances in the routing table\n"
	              "# TYPE cvm_gateway_instances gauge\ncvm_gateway_instances %zu\n"
	              "# HELP cvm_gateway_apps Apps in the routing table\n"
	              "# TYPE cvm_gateway_apps gauge\ncvm_gateway_apps %zu\n"
	              "# HELP cvm_gateway_draining 1 while the gateway drains\n"
	              "# TYPE cvm_gateway_draining gauge\ncvm_gateway_draining %d\n",
	              a->proxy != NULL ? gw_proxy_active(a->proxy) : 0u, inst, apps,
	              atomic_load(&a->g->draining) ? 1 : 0);
	if (fclose(f) != 0) {
		free(buf);
		cvm_http_resp_error(resp, 500, "out of memory");
		return;
	}
	cvm_http_resp_bytes(resp, 200, "text/plain; version=0.0.4", buf, len);
	free(buf);
}

static int m_status(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct gw_admin *a = ctx;
	size_t apps = 0, inst = gw_routes_count(a->g->routes, &apps);

	(void)call;
	*out =
	    json_pack("{s:I, s:I, s:I, s:I, s:b}", "active_connections",
	              (json_int_t)(a->proxy != NULL ? gw_proxy_active(a->proxy) : 0u), "accepted",
	              (json_int_t)atomic_load(&a->g->counters[GW_C_ACCEPTED]), "instances", (json_int_t)inst,
	              "apps", (json_int_t)apps, "draining", atomic_load(&a->g->draining));
	return *out == NULL ? cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory") : CVM_OK;
}

static int m_list(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct gw_admin *a = ctx;
	json_t *l = gw_routes_json(a->g->routes);

	if (l == NULL)
		return cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
	*out = json_pack("{s:o}", "instances", l);
	return *out == NULL ? cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory") : CVM_OK;
}

static int m_remove(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct gw_admin *a = ctx;
	const char *id = NULL;
	size_t len = 0;
	char kv[CVM_KV_MAX];
	struct gw_inst inst;
	int r;

	r = cvm_rpc_str(call, "instance_id", GW_ID_MAX, &id, &len);
	if (r != CVM_OK)
		return r;
	if (len == 0)
		return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "instance_id is required");
	if (!gw_routes_get(a->g->routes, id, &inst) || gw_routes_remove(a->g->routes, id) != CVM_OK)
		return cvm_rpc_fail(call, 404, CVM_E_NOT_FOUND, "no instance %s", id);
	gw_rpc_release(a->rpc, &inst); /* its WireGuard peer and its address */
	cvm_daemon_log(CVM_LOG_INFO, "instance_removed", "instance_id=%s by=admin", cvm_kv(id, kv));
	*out = NULL;
	return CVM_OK;
}

static int m_drain(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct gw_admin *a = ctx;

	(void)call;
	if (a->drain != NULL)
		a->drain(a->drain_arg);
	*out = NULL;
	return CVM_OK;
}

static const struct cvm_rpc_method methods[] = {
    {"Status", m_status},
    {"ListInstances", m_list},
    {"RemoveInstance", m_remove},
    {"Drain", m_drain},
};

static const struct cvm_rpc_mount mounts[] = {
    {"/prpc/", "Admin.", methods, COUNT(methods), 404},
};

void gw_admin_handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	struct gw_admin *a = ctx;
	const struct cvm_rpc_api api = {"admin", mounts, COUNT(mounts), a};

	if (a->token_len == 0) {
		cvm_http_resp_error(
		    resp, 403,
		    "the admin API is off: set [gateway] admin_token_file to a file holding the token");
		return;
	}
	if (!auth_ok(a, req)) {
		cvm_http_resp_error(resp, 401,
		                    "a token is required: Authorization: Bearer <token> or X-Admin-Token");
		return;
	}
	if (strcmp(req->path, "/metrics") == 0) {
		if (req->method != CVM_HTTP_GET) {
			resp->allow = "GET";
			cvm_http_resp_error(resp, 405, "use GET /metrics");
			return;
		}
		metrics(a, resp);
		return;
	}
	cvm_rpc_handle(&api, req, resp);
}
