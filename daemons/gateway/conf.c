/* cvm-gatewayd's configuration: /etc/cvmkit/gatewayd.conf (INI, daemons/common's
 * reader: unknown sections and keys are refused with their line). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "daemon.h"
#include "gw.h"

#define DEFAULT_CONFIG "/etc/cvmkit/gatewayd.conf"

void gw_conf_defaults(struct gw_conf *c)
{
	memset(c, 0, sizeof(*c));
	(void)snprintf(c->config_file, sizeof(c->config_file), "%s", DEFAULT_CONFIG);
	(void)snprintf(c->listen, sizeof(c->listen), "0.0.0.0:443");
	(void)snprintf(c->admin_listen, sizeof(c->admin_listen), "127.0.0.1:9016");
	(void)snprintf(c->log_level, sizeof(c->log_level), "info");
	c->max_connections = 100000;
	c->max_connections_per_ip = 1000;
	c->max_connections_per_app = 2000;
	c->handshake_timeout_s = 5;
	c->connect_timeout_s = 5;
	c->idle_timeout_s = 600;
	c->total_timeout_s = (uint64_t)5 * 3600;
	c->drain_timeout_s = 30;
	c->connect_top_n = 3;
	c->handshake_stale_s = 1800;
	c->max_registrations_per_app = 1000;
	(void)snprintf(c->wg_backend, sizeof(c->wg_backend), "auto");
	(void)snprintf(c->wg_address, sizeof(c->wg_address), "10.4.0.1/16");
	c->wg_listen_port = 51820;
	c->wg_poll_s = 5;
	c->dns_custom_domains = true;
	(void)snprintf(c->dns_prefix, sizeof(c->dns_prefix), "%s", CVM_INGRESS_TXT_PREFIX);
	c->dns_cache_ttl_s = 60;
}

#define STR(sec, name, field) CVM_CONF_KEY_STR(c, sec, name, field)
#define NUM(sec, name, field, min, max) CVM_CONF_KEY_U64(c, sec, name, field, min, max)
#define BOOL(sec, name, field) CVM_CONF_KEY_BOOL(c, sec, name, field)

static size_t conf_keys(struct gw_conf *c, struct cvm_conf_key *k, size_t cap)
{
	const struct cvm_conf_key keys[] = {
	    STR("gateway", "listen", listen),
	    STR("gateway", "admin_listen", admin_listen),
	    STR("gateway", "admin_token_file", admin_token_file),
	    STR("gateway", "port_file", port_file),
	    STR("gateway", "admin_port_file", admin_port_file),
	    STR("gateway", "base_domains", base_domains_text),
	    STR("gateway", "log_level", log_level),
	    STR("gateway", "user", user),
	    NUM("gateway", "workers", workers, 0, GW_WORKERS_MAX),
	    STR("tls", "cert", cert_file),
	    STR("tls", "key", key_file),
	    BOOL("proxy", "proxy_protocol_in", proxy_protocol_in),
	    NUM("proxy", "max_connections", max_connections, 1, 1000000),
	    NUM("proxy", "max_connections_per_ip", max_connections_per_ip, 1, 1000000),
	    NUM("proxy", "max_connections_per_app", max_connections_per_app, 1, 1000000),
	    NUM("proxy", "handshake_timeout", handshake_timeout_s, 1, 300),
	    NUM("proxy", "connect_timeout", connect_timeout_s, 1, 300),
	    NUM("proxy", "idle_timeout", idle_timeout_s, 1, 86400),
	    NUM("proxy", "total_timeout", total_timeout_s, 1, (uint64_t)7 * 86400),
	    NUM("proxy", "drain_timeout", drain_timeout_s, 0, 86400),
	    NUM("proxy", "connect_top_n", connect_top_n, 1, GW_TOP_N_MAX),
	    NUM("proxy", "handshake_stale", handshake_stale_s, 1, (uint64_t)30 * 86400),
	    STR("rpc", "listen", rpc_listen),
	    STR("rpc", "port_file", rpc_port_file),
	    STR("rpc", "cert", rpc_cert_file),
	    STR("rpc", "key", rpc_key_file),
	    STR("rpc", "kms_root_ca", kms_root_ca_file),
	    NUM("rpc", "max_instances_per_app", max_registrations_per_app, 1, 1000000),
	    STR("wg", "interface", wg_interface),
	    STR("wg", "backend", wg_backend),
	    STR("wg", "uapi_dir", wg_uapi_dir),
	    STR("wg", "private_key_file", wg_private_key_file),
	    STR("wg", "address", wg_address),
	    STR("wg", "endpoint", wg_endpoint),
	    NUM("wg", "listen_port", wg_listen_port, 1, 65535),
	    NUM("wg", "poll_interval", wg_poll_s, 1, 3600),
	    BOOL("dns", "custom_domains", dns_custom_domains),
	    STR("dns", "servers", dns_servers),
	    STR("dns", "prefix", dns_prefix),
	    NUM("dns", "cache_ttl", dns_cache_ttl_s, 1, 86400),
	    STR("dev", "instances", dev_instances),
	};
	size_t n = sizeof(keys) / sizeof(keys[0]);

	if (n > cap)
		return 0;
	memcpy(k, keys, sizeof(keys));
	return n;
}

/* parse_domains splits base_domains at commas into lower-case names. */
static int parse_domains(struct gw_conf *c, char *err, size_t err_len)
{
	const char *p = c->base_domains_text;

	c->n_base_domains = 0;
	while (*p != '\0') {
		size_t n = 0;
		char *d;

		while (*p == ',' || *p == ' ')
			p++;
		while (p[n] != '\0' && p[n] != ',' && p[n] != ' ')
			n++;
		if (n == 0)
			break;
		if (c->n_base_domains == GW_BASE_DOMAINS_MAX || n > CVM_INGRESS_NAME_MAX) {
			(void)snprintf(err, err_len,
			               "[gateway] base_domains: at most %u domain names of at most %d bytes",
			               GW_BASE_DOMAINS_MAX, CVM_INGRESS_NAME_MAX);
			return CVM_E_FORMAT;
		}
		d = c->base_domains[c->n_base_domains];
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)p[i];

			if (!(isalnum(ch) || ch == '-' || ch == '.')) {
				(void)snprintf(
				    err, err_len,
				    "[gateway] base_domains: '%.*s' is not a domain name (letters, digits, "
				    "'-' and '.')",
				    (int)n, p);
				return CVM_E_FORMAT;
			}
			d[i] = (char)tolower(ch);
		}
		d[n] = '\0';
		c->base_domain_ptrs[c->n_base_domains] = d;
		c->n_base_domains++;
		p += n;
	}
	return CVM_OK;
}

int gw_conf_check(struct gw_conf *c, char *err, size_t err_len)
{
	struct cvm_addr a;
	enum cvm_log_level lvl;
	int r;

	if (cvm_addr_parse(c->listen, &a) != CVM_OK || a.kind != CVM_ADDR_TCP) {
		(void)snprintf(err, err_len, "[gateway] listen: '%s' is not HOST:PORT", c->listen);
		return CVM_E_FORMAT;
	}
	if (cvm_addr_parse(c->admin_listen, &a) != CVM_OK) {
		(void)snprintf(err, err_len, "[gateway] admin_listen: '%s' is not HOST:PORT or unix:PATH",
		               c->admin_listen);
		return CVM_E_FORMAT;
	}
	if (cvm_daemon_log_level_parse(c->log_level, &lvl) != CVM_OK) {
		(void)snprintf(err, err_len, "[gateway] log_level: '%s' is not error, warn, info or debug",
		               c->log_level);
		return CVM_E_FORMAT;
	}
	r = parse_domains(c, err, err_len);
	if (r != CVM_OK)
		return r;
	if (c->cert_file[0] == '\0' || c->key_file[0] == '\0') {
		(void)snprintf(
		    err, err_len,
		    "[tls] cert and key are required: the wildcard certificate of the base domains");
		return CVM_E_FORMAT;
	}
	if (c->rpc_listen[0] != '\0') {
		if (cvm_addr_parse(c->rpc_listen, &a) != CVM_OK || a.kind != CVM_ADDR_TCP) {
			(void)snprintf(err, err_len, "[rpc] listen: '%s' is not HOST:PORT", c->rpc_listen);
			return CVM_E_FORMAT;
		}
		if (c->rpc_cert_file[0] == '\0' || c->rpc_key_file[0] == '\0' ||
		    c->kms_root_ca_file[0] == '\0') {
			(void)snprintf(
			    err, err_len,
			    "[rpc] cert, key and kms_root_ca are required with [rpc] listen: CVMs "
			    "register with certificates from the KMS, whose root the gateway must know");
			return CVM_E_FORMAT;
		}
		if (c->wg_interface[0] == '\0') {
			(void)snprintf(err, err_len,
			               "[rpc] listen needs [wg] interface: registered CVMs are reached "
			               "through WireGuard");
			return CVM_E_FORMAT;
		}
	}
	if (c->wg_interface[0] != '\0' && (c->wg_private_key_file[0] == '\0' || c->wg_endpoint[0] == '\0')) {
		(void)snprintf(err, err_len,
		               "[wg] private_key_file and endpoint are required with [wg] interface");
		return CVM_E_FORMAT;
	}
	if (strcmp(c->wg_backend, "auto") != 0 && strcmp(c->wg_backend, "kernel") != 0 &&
	    strcmp(c->wg_backend, "userspace") != 0) {
		(void)snprintf(err, err_len, "[wg] backend: '%s' is not auto, kernel or userspace",
		               c->wg_backend);
		return CVM_E_FORMAT;
	}
	if (c->dns_prefix[0] != '_') {
		(void)snprintf(err, err_len, "[dns] prefix: '%s' must be a DNS label starting with '_'",
		               c->dns_prefix);
		return CVM_E_FORMAT;
	}
	if (c->max_connections_per_ip > c->max_connections ||
	    c->max_connections_per_app > c->max_connections) {
		(void)snprintf(err, err_len,
		               "[proxy] max_connections_per_ip and max_connections_per_app must not exceed "
		               "max_connections (%llu)",
		               (unsigned long long)c->max_connections);
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

int gw_conf_load(struct gw_conf *c, bool must_exist, char *err, size_t err_len)
{
	struct cvm_conf_key keys[64];
	size_t n = conf_keys(c, keys, sizeof(keys) / sizeof(keys[0]));
	int r;

	r = cvm_conf_load(c->config_file, keys, n, err, err_len);
	if (r == CVM_E_SYSTEM && errno == ENOENT && !must_exist)
		r = CVM_OK;
	if (r != CVM_OK)
		return r;
	return gw_conf_check(c, err, err_len);
}
