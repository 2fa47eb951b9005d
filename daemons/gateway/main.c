/* cvm-gatewayd: the TLS ingress of the apps that run in CVMs
 * (docs/daemons/cvm-gatewayd.md).
 *
 *   cvm-gatewayd [-c FILE] [--log-level LEVEL]
 *
 * Start: config; logging; TLS contexts; routing table; the proxy's
 * workers; the admin listener; serve. SIGHUP reloads the certificate (and
 * the [dev] instances); SIGTERM and SIGINT drain: the listeners close, the
 * established connections get [proxy] drain_timeout seconds to finish. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include <cvmkit/file.h>
#include <cvmkit/secret.h>

#include "daemon.h"
#include "gw.h"
#include "httpd.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

#define PROG "cvm-gatewayd"

struct main_ctx {
	struct gw_ctx g;
	struct gw_admin admin;
	struct gw_proxy *proxy;
	struct gw_rpc *rpc;
	struct event_base *base;
	struct event *ev_term, *ev_int, *ev_hup, *ev_drain;
	struct timespec drain_start;
	bool draining;
};

static void usage(FILE *f)
{
	(void)fprintf(f, "usage: " PROG " [-c FILE] [--log-level LEVEL]\n"
	                 "\n"
	                 "  -c, --config FILE   INI config (default /etc/cvmkit/gatewayd.conf)\n"
	                 "  --log-level LEVEL   error, warn, info (default) or debug\n"
	                 "  -h, --help          this text\n"
	                 "  --version           print the version\n"
	                 "See docs/daemons/cvm-gatewayd.md.\n");
}

static int write_port(const char *path, uint16_t port)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%u\n", (unsigned)port);

	if (path[0] == '\0')
		return CVM_OK;
	return cvm_file_write(path, buf, (size_t)n, 0644);
}

static int load_token(struct gw_admin *a, const char *path, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	a->token_len = 0;
	if (path[0] == '\0')
		return CVM_OK;
	r = cvm_file_read(path, sizeof(a->token), &buf, &len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "[gateway] admin_token_file: cannot read %s: %s", path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] <= 0x20 || buf[i] >= 0x7f) {
			len = 0;
			break;
		}
	}
	if (len < 16 || len >= sizeof(a->token)) {
		(void)snprintf(
		    err, err_len,
		    "[gateway] admin_token_file: %s must hold one token of 16 to %zu printable bytes", path,
		    sizeof(a->token) - 1);
		cvm_freezero(buf, len);
		return CVM_E_FORMAT;
	}
	memcpy(a->token, buf, len);
	a->token[len] = '\0';
	a->token_len = len;
	cvm_freezero(buf, len);
	return CVM_OK;
}

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct main_ctx *m = arg;
	struct timespec now;
	double waited;

	(void)fd;
	(void)what;
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	waited = (double)(now.tv_sec - m->drain_start.tv_sec) +
	         (double)(now.tv_nsec - m->drain_start.tv_nsec) / 1e9;
	if (gw_proxy_active(m->proxy) == 0 || waited > (double)m->g.conf->drain_timeout_s + 1.0) {
		cvm_daemon_log(CVM_LOG_INFO, "drained", "left=%u waited_s=%.1f", gw_proxy_active(m->proxy),
		               waited);
		(void)event_base_loopbreak(m->base);
	}
}

static void start_drain(void *arg)
{
	struct main_ctx *m = arg;
	struct timeval tv = {0, 100000};

	if (m->draining)
		return;
	m->draining = true;
	atomic_store(&m->g.draining, true);
	(void)clock_gettime(CLOCK_MONOTONIC, &m->drain_start);
	cvm_daemon_log(CVM_LOG_INFO, "draining", "active=%u timeout_s=%llu", gw_proxy_active(m->proxy),
	               (unsigned long long)m->g.conf->drain_timeout_s);
	gw_proxy_drain(m->proxy);
	m->ev_drain = event_new(m->base, -1, EV_PERSIST, drain_tick, m);
	if (m->ev_drain == NULL || event_add(m->ev_drain, &tv) != 0)
		(void)event_base_loopbreak(m->base);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	cvm_daemon_log(CVM_LOG_INFO, "signal", "signal=%d action=drain", (int)sig);
	start_drain(arg);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct main_ctx *m = arg;
	struct gw_tls *fresh = NULL;
	char err[GW_ERR_MAX] = "";

	(void)sig;
	(void)what;
	if (gw_tls_load(m->g.conf, &fresh, err, sizeof(err)) != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "reload_failed", "what=tls error=\"%s\" action=kept_old", err);
		return;
	}
	gw_tls_swap(m->g.tls, fresh);
	if (m->g.conf->dev_instances[0] != '\0' &&
	    gw_routes_load_dev(m->g.routes, m->g.conf->dev_instances, err, sizeof(err)) != CVM_OK)
		cvm_daemon_log(CVM_LOG_ERROR, "reload_failed", "what=dev_instances error=\"%s\"", err);
	cvm_daemon_log(CVM_LOG_INFO, "reloaded", "what=tls");
}

static int serve(struct gw_conf *c)
{
	struct main_ctx m;
	struct cvm_httpd_opts ho;
	struct cvm_httpd *h = NULL, *rpc_h = NULL;
	struct cvm_addr addr;
	char err[GW_ERR_MAX] = "";
	uint16_t port = 0, admin_port = 0, rpc_port = 0;
	int rc = 1, r;

	memset(&m, 0, sizeof(m));
	m.g.conf = c;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return 1;
	if (gw_tls_load(c, &m.g.tls, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	if (gw_routes_new((int64_t)c->handshake_stale_s, &m.g.routes) != CVM_OK) {
		(void)fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	if (c->dev_instances[0] != '\0' &&
	    gw_routes_load_dev(m.g.routes, c->dev_instances, err, sizeof(err)) != 0) {
		(void)fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	m.admin.g = &m.g;
	m.admin.drain = start_drain;
	m.admin.drain_arg = &m;
	if (load_token(&m.admin, c->admin_token_file, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	m.base = event_base_new();
	if (m.base == NULL) {
		(void)fprintf(stderr, PROG ": cannot make the event loop\n");
		goto out;
	}
	memset(&ho, 0, sizeof(ho));
	ho.name = "admin";
	ho.max_body = (size_t)64 * 1024;
	ho.max_connections = 64;
	ho.max_connections_per_peer = 16;
	if (cvm_httpd_new(m.base, &ho, gw_admin_handle, &m.admin, &h) != CVM_OK ||
	    cvm_addr_parse(c->admin_listen, &addr) != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot make the admin server\n");
		goto out;
	}
	r = cvm_httpd_listen(h, &addr, 0600, &admin_port);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot listen on [gateway] admin_listen %s: %s\n",
		              c->admin_listen, r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	r = gw_proxy_start(&m.g, &m.proxy, &port, err, sizeof(err));
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	m.admin.proxy = m.proxy;
	if (c->rpc_listen[0] != '\0') {
		SSL_CTX *ctx = NULL;

		if (gw_rpc_new(&m.g, m.base, port, &m.rpc, err, sizeof(err)) != CVM_OK ||
		    gw_rpc_tls_ctx(c, &ctx, err, sizeof(err)) != CVM_OK) {
			(void)fprintf(stderr, PROG ": %s\n", err);
			goto out;
		}
		m.admin.rpc = m.rpc;
		memset(&ho, 0, sizeof(ho));
		ho.name = "gateway";
		ho.max_body = (size_t)16 * 1024;
		ho.max_connections = 4096;
		ho.max_connections_per_peer = 4096;
		r = cvm_httpd_new(m.base, &ho, gw_rpc_handle, m.rpc, &rpc_h);
		if (r == CVM_OK)
			r = cvm_httpd_set_tls(rpc_h, ctx, 10);
		SSL_CTX_free(ctx);
		if (r == CVM_OK && cvm_addr_parse(c->rpc_listen, &addr) == CVM_OK)
			r = cvm_httpd_listen(rpc_h, &addr, 0600, &rpc_port);
		else if (r == CVM_OK)
			r = CVM_E_FORMAT;
		if (r != CVM_OK) {
			(void)fprintf(stderr, PROG ": cannot serve [rpc] listen %s: %s\n", c->rpc_listen,
			              r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
			goto out;
		}
		if (write_port(c->rpc_port_file, rpc_port) != CVM_OK) {
			(void)fprintf(stderr, PROG ": cannot write [rpc] port_file\n");
			goto out;
		}
	}
	if (write_port(c->port_file, port) != CVM_OK ||
	    write_port(c->admin_port_file, admin_port) != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot write the port files\n");
		goto out;
	}
	if (cvm_daemon_drop_privileges(c->user) != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot switch to user '%s'\n", c->user);
		goto out;
	}
	m.ev_term = evsignal_new(m.base, SIGTERM, on_term, &m);
	m.ev_int = evsignal_new(m.base, SIGINT, on_term, &m);
	m.ev_hup = evsignal_new(m.base, SIGHUP, on_hup, &m);
	if (m.ev_term == NULL || m.ev_int == NULL || m.ev_hup == NULL || event_add(m.ev_term, NULL) != 0 ||
	    event_add(m.ev_int, NULL) != 0 || event_add(m.ev_hup, NULL) != 0) {
		(void)fprintf(stderr, PROG ": cannot handle signals\n");
		goto out;
	}
	{
		size_t apps = 0, inst = gw_routes_count(m.g.routes, &apps);
		char kv[CVM_KV_MAX];

		cvm_daemon_log(CVM_LOG_INFO, "ready",
		               "version=%s port=%u admin_port=%u rpc_port=%u wg=%s base_domains=%s "
		               "instances=%zu apps=%zu "
		               "admin=%s",
		               CVM_VERSION_STRING, (unsigned)port, (unsigned)admin_port, (unsigned)rpc_port,
		               c->wg_interface[0] != '\0' ? c->wg_interface : "off",
		               cvm_kv(c->base_domains_text, kv), inst, apps,
		               m.admin.token_len > 0 ? "on" : "off");
	}
	(void)event_base_dispatch(m.base);
	rc = 0;
out:
	gw_proxy_stop(m.proxy);
	if (h != NULL)
		cvm_httpd_free(h);
	if (rpc_h != NULL)
		cvm_httpd_free(rpc_h);
	gw_rpc_free(m.rpc);
	if (m.ev_term != NULL)
		event_free(m.ev_term);
	if (m.ev_int != NULL)
		event_free(m.ev_int);
	if (m.ev_hup != NULL)
		event_free(m.ev_hup);
	if (m.ev_drain != NULL)
		event_free(m.ev_drain);
	if (m.base != NULL)
		event_base_free(m.base);
	gw_routes_free(m.g.routes);
	gw_tls_free(m.g.tls);
	cvm_wipe(m.admin.token, sizeof(m.admin.token));
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct gw_conf c;
	enum cvm_log_level lvl = CVM_LOG_INFO;
	const char *level_override = NULL;
	bool named = false;
	char err[GW_ERR_MAX] = "";
	int o;

	gw_conf_defaults(&c);
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			if (strlen(optarg) >= sizeof(c.config_file)) {
				(void)fprintf(stderr, PROG ": the config path is too long\n");
				return 2;
			}
			(void)snprintf(c.config_file, sizeof(c.config_file), "%s", optarg);
			named = true;
			break;
		case 'l':
			level_override = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			(void)printf(PROG " %s\n", CVM_VERSION_STRING);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (gw_conf_load(&c, named, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s: %s\n", c.config_file,
		              err[0] != '\0' ? err : "cannot read it");
		return 2;
	}
	if (level_override != NULL)
		(void)snprintf(c.log_level, sizeof(c.log_level), "%s", level_override);
	if (cvm_daemon_log_level_parse(c.log_level, &lvl) != CVM_OK) {
		(void)fprintf(stderr, PROG ": unknown log level '%s'\n", c.log_level);
		return 2;
	}
	cvm_daemon_log_init(PROG, lvl);
	return serve(&c);
}
