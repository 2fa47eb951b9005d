/* cvm-gatewayd: the TLS ingress of the apps that run in CVMs
 * (docs/daemons/cvm-gatewayd.md).
 *
 * Two planes share this header:
 * - the data path (proxy.c): worker threads, each with its own epoll loop
 *   and its own SO_REUSEPORT listener, that peek at a connection's
 *   ClientHello, route its server name, and either terminate TLS (tlsctx.c)
 *   and relay plaintext to the backend, or splice the TLS bytes through;
 * - the control plane (main.c, admin.c, routes.c): configuration, the
 *   routing table the workers read, the admin API and the metrics, on a
 *   libevent loop in the main thread.
 * The routing table (routes.c) is the only state they share, behind a
 * read-write lock, plus the counters (atomics). */
#ifndef CVM_GW_H
#define CVM_GW_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cvmkit/ingress.h>
#include <cvmkit/wg.h>

#define GW_PATH_MAX 512
#define GW_ERR_MAX (GW_PATH_MAX + 512) /* an error message may name a path */
#define GW_WORKERS_MAX 64u
#define GW_BASE_DOMAINS_MAX 8u
#define GW_TOP_N_MAX 8u
#define GW_ID_MAX CVM_INGRESS_ID_MAX

struct gw_conf {
	char config_file[GW_PATH_MAX];
	/* [gateway] */
	char listen[128];       /* the proxy: "0.0.0.0:443" */
	char admin_listen[128]; /* the admin API and /metrics */
	char admin_token_file[GW_PATH_MAX];
	char port_file[GW_PATH_MAX];       /* the proxy's port, when listen's port is 0 */
	char admin_port_file[GW_PATH_MAX]; /* the admin API's port */
	char base_domains_text[512];       /* comma-separated */
	char log_level[16];
	char user[64];
	uint64_t workers; /* 0: one per CPU */
	/* [tls] */
	char cert_file[GW_PATH_MAX]; /* the wildcard certificate chain (PEM) */
	char key_file[GW_PATH_MAX];
	/* [proxy] */
	bool proxy_protocol_in;   /* every connection starts with a PROXY header */
	uint64_t max_connections; /* all workers together */
	uint64_t max_connections_per_ip;
	uint64_t max_connections_per_app;
	uint64_t handshake_timeout_s; /* from accept to the end of the TLS handshake */
	uint64_t connect_timeout_s;
	uint64_t idle_timeout_s;
	uint64_t total_timeout_s;
	uint64_t drain_timeout_s; /* on SIGTERM: how long established connections may finish */
	uint64_t connect_top_n;   /* instances dialled at once for an app */
	uint64_t handshake_stale_s;
	/* [rpc]: Gateway.RegisterCvm and the other methods CVMs call, over
	 * mutual TLS: the CVM's certificate must chain to the KMS's root */
	char rpc_listen[128]; /* "" = off */
	char rpc_port_file[GW_PATH_MAX];
	char rpc_cert_file[GW_PATH_MAX];
	char rpc_key_file[GW_PATH_MAX];
	char kms_root_ca_file[GW_PATH_MAX];
	uint64_t max_registrations_per_app; /* instances one app may hold */
	/* [wg] */
	char wg_interface[CVM_WG_IFNAME_MAX + 1]; /* "" = no WireGuard (routes only) */
	char wg_backend[16];                      /* auto, kernel, userspace */
	char wg_uapi_dir[GW_PATH_MAX];
	char wg_private_key_file[GW_PATH_MAX];
	char wg_address[64];   /* the gateway's tunnel address and the CVMs' prefix: 10.4.0.1/16 */
	char wg_endpoint[128]; /* what CVMs dial: HOST:PORT */
	uint64_t wg_listen_port;
	uint64_t wg_poll_s; /* how often handshake times are read */
	/* [dns]: custom domains, whose _dstack-app-address TXT record names the app */
	bool dns_custom_domains;
	char dns_servers[256]; /* "IP[:PORT],..."; empty: /etc/resolv.conf */
	char dns_prefix[CVM_INGRESS_PREFIX_MAX + 1];
	uint64_t dns_cache_ttl_s;
	/* [dev] */
	char dev_instances[GW_PATH_MAX]; /* JSON list of static instances (tests, benchmarks) */

	/* derived */
	char base_domains[GW_BASE_DOMAINS_MAX][CVM_INGRESS_NAME_MAX + 1];
	const char *base_domain_ptrs[GW_BASE_DOMAINS_MAX];
	size_t n_base_domains;
};

void gw_conf_defaults(struct gw_conf *c);
/* gw_conf_load reads c->config_file (when it exists or was named) and
 * checks the result. Returns 0, or CVM_E_* with one sentence in err. */
int gw_conf_load(struct gw_conf *c, bool must_exist, char *err, size_t err_len);
int gw_conf_check(struct gw_conf *c, char *err, size_t err_len);

/* --- the routing table (routes.c) --- */

/* struct gw_app counts an app's connections across workers; it lives as
 * long as an instance or a connection refers to it. */
struct gw_app {
	char id[GW_ID_MAX + 1];
	atomic_uint conns;
	atomic_uint refs;
	struct gw_app *next; /* hash chain */
};

struct gw_inst {
	char id[GW_ID_MAX + 1];
	char app_id[GW_ID_MAX + 1];
	struct sockaddr_storage addr; /* the instance's address; the port comes from the name */
	socklen_t addr_len;
	int64_t last_handshake; /* unix seconds of the last WireGuard handshake; 0: none */
	bool is_static;         /* [dev] instances: no WireGuard, always eligible */
	bool send_proxy;        /* the app wants a PROXY v2 header */
	bool has_wg_key;
	uint8_t wg_key[CVM_WG_KEY_LEN]; /* the instance's WireGuard public key */
	int64_t reg_time;
	struct gw_app *app;
	struct gw_inst *next; /* hash chain */
};

/* A backend the data path may dial: copied out of the table under its lock. */
struct gw_pick {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	bool send_proxy;
};

struct gw_routes;

int gw_routes_new(int64_t stale_s, struct gw_routes **out);
void gw_routes_free(struct gw_routes *r);
/* gw_routes_put adds or replaces an instance (copied). */
int gw_routes_put(struct gw_routes *r, const struct gw_inst *src);
int gw_routes_remove(struct gw_routes *r, const char *instance_id);
/* gw_routes_pick fills up to `max` backends for `id` (an instance id, or an
 * app id: its eligible instances, most recent handshake first) with `port`
 * set, takes a reference on the app (gw_routes_app_put releases it) and
 * returns how many; 0 when there is none. */
size_t gw_routes_pick(struct gw_routes *r, const char *id, uint16_t port, int64_t now, struct gw_pick *out,
                      size_t max, struct gw_app **app_out);
void gw_routes_app_put(struct gw_routes *r, struct gw_app *app);
size_t gw_routes_count(struct gw_routes *r, size_t *apps);
/* gw_routes_get copies the instance `id` into *out (its app pointer must
 * not be used); false when there is none. */
bool gw_routes_get(struct gw_routes *r, const char *id, struct gw_inst *out);
/* gw_routes_by_key finds the instance registered with WireGuard key `key`
 * and copies its id into id_out; false when there is none. */
bool gw_routes_by_key(struct gw_routes *r, const uint8_t key[CVM_WG_KEY_LEN], char id_out[GW_ID_MAX + 1]);
/* gw_routes_set_handshakes sets each instance's last handshake from the
 * WireGuard device's peers (matched by key). */
void gw_routes_set_handshakes(struct gw_routes *r, const struct cvm_wg_device *d);
size_t gw_routes_app_count(struct gw_routes *r, const char *app_id);
/* gw_routes_json lists the instances (a new JSON array, or NULL). */
struct json_t;
struct json_t *gw_routes_json(struct gw_routes *r);
/* gw_routes_load_dev reads the [dev] instances file. */
int gw_routes_load_dev(struct gw_routes *r, const char *path, char *err, size_t err_len);

/* --- TLS (tlsctx.c) --- */

struct gw_tls;
struct ssl_st;

/* gw_tls_load makes the server contexts from the certificate and key files
 * (one for HTTP/1.1, one that offers only h2). */
int gw_tls_load(const struct gw_conf *c, struct gw_tls **out, char *err, size_t err_len);
void gw_tls_free(struct gw_tls *t);
/* gw_tls_new_ssl makes a server SSL from the current context (h2: the one
 * that accepts only h2), or NULL. gw_tls_swap installs fresh's contexts in
 * t (a hot reload) and frees fresh with the old ones; SSLs made before keep
 * their context. */
struct ssl_st *gw_tls_new_ssl(struct gw_tls *t, bool h2);
void gw_tls_swap(struct gw_tls *t, struct gw_tls *fresh);

/* --- counters (shared by the workers, read by /metrics) --- */

enum gw_counter {
	GW_C_ACCEPTED,
	GW_C_ACTIVE,
	GW_C_REFUSED_CAP,     /* global connection cap */
	GW_C_REFUSED_PER_IP,  /* per-address cap */
	GW_C_REFUSED_PER_APP, /* per-app cap */
	GW_C_BAD_HELLO,       /* not a TLS ClientHello, no SNI, too large */
	GW_C_BAD_NAME,        /* the name does not route */
	GW_C_NO_BACKEND,
	GW_C_CONNECT_FAILED,
	GW_C_TLS_FAILED,
	GW_C_TIMEOUT_HANDSHAKE,
	GW_C_TIMEOUT_CONNECT,
	GW_C_TIMEOUT_IDLE,
	GW_C_TIMEOUT_TOTAL,
	GW_C_TERMINATED,
	GW_C_PASSTHROUGH,
	GW_C_DNS_LOOKUPS,   /* TXT lookups for custom domains (cache misses) */
	GW_C_CUSTOM_DOMAIN, /* connections routed by a TXT record */
	GW_C_BYTES_IN,      /* from clients */
	GW_C_BYTES_OUT,     /* to clients */
	GW_C__COUNT
};

/* --- the data path (proxy.c) --- */

struct gw_proxy;

struct gw_ctx {
	struct gw_conf *conf;
	struct gw_routes *routes;
	struct gw_tls *tls;
	atomic_ullong counters[GW_C__COUNT];
	atomic_uint conns_total;
	atomic_bool draining;
};

static inline void gw_count(struct gw_ctx *g, enum gw_counter c, unsigned long long n)
{
	atomic_fetch_add_explicit(&g->counters[c], n, memory_order_relaxed);
}

/* gw_proxy_start binds one SO_REUSEPORT listener per worker on
 * conf->listen and starts the workers. *port is the port bound. */
int gw_proxy_start(struct gw_ctx *g, struct gw_proxy **out, uint16_t *port, char *err, size_t err_len);
/* gw_proxy_drain closes the listeners (no new connections) and lets
 * established ones finish for up to drain_timeout_s. */
void gw_proxy_drain(struct gw_proxy *p);
/* gw_proxy_active is the number of open client connections. */
unsigned gw_proxy_active(struct gw_proxy *p);
/* gw_proxy_stop ends the workers (closing what is left) and frees p. */
void gw_proxy_stop(struct gw_proxy *p);

/* --- the CVM-facing RPC (rpc.c) --- */

struct gw_rpc;
struct event_base;
/* gw_rpc_new sets up registration: the tunnel prefix and, with [wg]
 * interface, the gateway's WireGuard side and the handshake poll on base. */
int gw_rpc_new(struct gw_ctx *g, struct event_base *base, uint16_t proxy_port, struct gw_rpc **out, char *err,
               size_t err_len);
void gw_rpc_free(struct gw_rpc *r);
/* gw_rpc_release gives back what an instance held (its peer, its address)
 * after it left the routing table. */
void gw_rpc_release(struct gw_rpc *r, const struct gw_inst *inst);
struct cvm_http_req;
struct cvm_http_resp;
void gw_rpc_handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp);
struct ssl_ctx_st;
int gw_rpc_tls_ctx(const struct gw_conf *c, struct ssl_ctx_st **out, char *err, size_t err_len);

/* --- admin API and metrics (admin.c) --- */

struct gw_admin {
	struct gw_ctx *g;
	struct gw_proxy *proxy;
	struct gw_rpc *rpc; /* NULL without [rpc] */
	/* The admin token ([gateway] admin_token_file); without one the admin
	 * API refuses every request (fail-closed). /metrics needs it too:
	 * Prometheus sends it as a bearer token. */
	char token[256];
	size_t token_len;
	void (*drain)(void *arg); /* main.c's: start a graceful drain */
	void *drain_arg;
};
void gw_admin_handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp);

#endif
