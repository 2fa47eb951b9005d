/* The CVM-facing RPC ([rpc] listen): Gateway.RegisterCvm and Gateway.Info,
 * pRPC style as dstack's gateway speaks them, over mutual TLS.
 *
 * Who may register: a client whose certificate chains to the KMS's root
 * ([rpc] kms_root_ca) and carries the app id (1.3) and the app info (1.9)
 * extensions the KMS writes when it signs an app's certificate (SignCert,
 * after verifying the CVM's attestation and the app's authorization). The
 * gateway takes the app id and the instance id from there, never from the
 * request, so a CVM can only register itself.
 *
 * What registering does: the instance gets a tunnel address (kept across
 * re-registrations; taken from [wg] address's prefix), the gateway's
 * WireGuard device gets one peer (one small message through lib/wg: no
 * `wg` process, no rewrite of the whole configuration), and the routing
 * table gets the instance. A WireGuard key belongs to one instance: a key
 * registered by another instance is refused (dstack PR #839's lesson). The
 * handshake times are read back every [wg] poll_interval seconds: only an
 * instance whose tunnel is alive receives traffic for its app. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/ratls.h>
#include <cvmkit/secret.h>
#include <cvmkit/wg.h>

#include "daemon.h"
#include "gw.h"
#include "httpd.h"
#include "rpc.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define PEER_KEEPALIVE_S 25
#define AGENT_PORT 8090 /* the guest agent's port behind the gateway (dstack's) */

struct gw_rpc {
	struct gw_ctx *g;
	struct cvm_wg *wg;
	uint8_t wg_pub[CVM_WG_KEY_LEN];
	uint32_t net, gw_ip; /* host order */
	uint8_t prefix;
	uint8_t *used; /* one bit per address of the prefix */
	uint32_t n_addr, cursor;
	uint16_t proxy_port;
	struct event *poll_ev;
	uint64_t registrations;
};

static bool used_get(const struct gw_rpc *r, uint32_t i)
{
	return (r->used[i / 8] >> (i % 8)) & 1u;
}

static void used_set(struct gw_rpc *r, uint32_t i, bool v)
{
	if (v)
		r->used[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		r->used[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

/* alloc_ip takes the next free address of the prefix (not the network, the
 * broadcast or the gateway's own). Returns false when the prefix is full. */
static bool alloc_ip(struct gw_rpc *r, uint32_t *ip)
{
	for (uint32_t k = 0; k < r->n_addr; k++) {
		uint32_t i = (r->cursor + k) % r->n_addr;

		if (i == 0 || i == r->n_addr - 1 || used_get(r, i))
			continue;
		used_set(r, i, true);
		r->cursor = i + 1;
		*ip = r->net + i;
		return true;
	}
	return false;
}

static void free_ip(struct gw_rpc *r, uint32_t ip)
{
	if (ip >= r->net && ip - r->net < r->n_addr && ip != r->gw_ip)
		used_set(r, ip - r->net, false);
}

static uint32_t inst_ip(const struct gw_inst *i)
{
	return ntohl(((const struct sockaddr_in *)&i->addr)->sin_addr.s_addr);
}

static void ip_str(uint32_t ip, char out[INET_ADDRSTRLEN])
{
	struct in_addr a;

	a.s_addr = htonl(ip);
	(void)inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

/* peer_set adds (or removes) one WireGuard peer. */
static int peer_set(struct gw_rpc *r, const uint8_t key[CVM_WG_KEY_LEN], uint32_t ip, bool remove)
{
	struct cvm_wg_allowed_ip aip;
	struct cvm_wg_peer p;
	struct cvm_wg_device d;

	if (r->wg == NULL)
		return CVM_OK;
	memset(&aip, 0, sizeof(aip));
	memset(&p, 0, sizeof(p));
	memset(&d, 0, sizeof(d));
	memcpy(p.public_key, key, CVM_WG_KEY_LEN);
	if (remove) {
		p.flags = CVM_WG_PEER_REMOVE;
	} else {
		aip.family = AF_INET;
		aip.cidr = 32;
		aip.addr.v4.s_addr = htonl(ip);
		p.flags = CVM_WG_PEER_REPLACE_ALLOWED_IPS;
		p.allowed_ips = &aip;
		p.allowed_ip_count = 1;
	}
	d.peers = &p;
	d.peer_count = 1;
	return cvm_wg_set(r->wg, &d);
}

void gw_rpc_release(struct gw_rpc *r, const struct gw_inst *inst)
{
	if (r == NULL || inst->is_static)
		return;
	if (inst->has_wg_key && peer_set(r, inst->wg_key, 0, true) != CVM_OK)
		cvm_daemon_log(CVM_LOG_WARN, "wg_failed", "what=remove_peer instance_id=%s", inst->id);
	free_ip(r, inst_ip(inst));
}

/* peer_identity reads the app id and the instance id (lower-case hex) from
 * the client's certificate, which OpenSSL has already chained to the KMS's
 * root. */
static int peer_identity(struct cvm_rpc_call *call, char app_id[GW_ID_MAX + 1], char inst_id[GW_ID_MAX + 1],
                         char compose_hash[65])
{
	SSL *ssl = call->http != NULL ? call->http->tls : NULL;
	X509 *cert = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	struct cvm_ratls_info *info = NULL;
	struct cvm_ratls_app_ids ids;
	unsigned char *der = NULL;
	char err[256] = "";
	int len, r;

	if (cert == NULL)
		return cvm_rpc_fail(
		    call, 401, CVM_E_POLICY,
		    "no client certificate: register with the certificate the KMS issued to this CVM");
	len = i2d_X509(cert, &der);
	if (len <= 0)
		return cvm_rpc_fail(call, 500, CVM_E_NOMEM, "cannot encode the client certificate");
	r = cvm_ratls_parse(der, (size_t)len, &info, err, sizeof(err));
	OPENSSL_free(der);
	if (r != CVM_OK)
		return cvm_rpc_fail(call, 403, r, "the client certificate's extensions do not parse: %s",
		                    err);
	if (!info->has_app_id || info->app_info == NULL) {
		cvm_ratls_info_free(info);
		return cvm_rpc_fail(call, 403, CVM_E_POLICY,
		                    "the client certificate names no app: it needs the app id and app info "
		                    "extensions the KMS writes (SignCert with ext_app_info)");
	}
	if (strcmp(info->usage, "kms:rpc") == 0 || strcmp(info->usage, "app:ca") == 0) {
		cvm_ratls_info_free(info);
		return cvm_rpc_fail(call, 403, CVM_E_POLICY,
		                    "a certificate of usage '%s' cannot register a CVM", info->usage);
	}
	r = cvm_ratls_app_info_ids(info->app_info, info->app_info_len, &ids, err, sizeof(err));
	if (r == CVM_OK && (ids.app_id_len != 20 || memcmp(ids.app_id, info->app_id, 20) != 0))
		r = cvm_rpc_fail(call, 403, CVM_E_MISMATCH,
		                 "the certificate's app info names another app than its app id extension");
	else if (r == CVM_OK && (ids.instance_id_len == 0 || ids.instance_id_len * 2 > GW_ID_MAX))
		r = cvm_rpc_fail(call, 403, CVM_E_FORMAT, "the certificate's app info has no instance id");
	else if (r != CVM_OK)
		r = cvm_rpc_fail(call, 403, r, "the certificate's app info: %s", err);
	if (r == CVM_OK) {
		cvm_hex_encode(ids.app_id, ids.app_id_len, app_id);
		cvm_hex_encode(ids.instance_id, ids.instance_id_len, inst_id);
		compose_hash[0] = '\0';
		if (ids.compose_hash_len == 32)
			cvm_hex_encode(ids.compose_hash, 32, compose_hash);
	}
	cvm_ratls_info_free(info);
	return r;
}

static json_t *servers_json(struct gw_rpc *r)
{
	char key[CVM_WG_KEY_B64_LEN + 1], ip[INET_ADDRSTRLEN];

	cvm_wg_key_to_base64(r->wg_pub, key);
	ip_str(r->gw_ip, ip);
	return json_pack("[{s:s, s:s, s:s}]", "public_key", key, "ip", ip, "endpoint",
	                 r->g->conf->wg_endpoint);
}

static int m_register(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct gw_rpc *r = ctx;
	struct gw_conf *c = r->g->conf;
	char app_id[GW_ID_MAX + 1] = "", inst_id[GW_ID_MAX + 1] = "", holder[GW_ID_MAX + 1] = "",
	                        compose[65] = "";
	char ip_text[INET_ADDRSTRLEN], kv[CVM_KV_MAX];
	uint8_t key[CVM_WG_KEY_LEN];
	struct gw_inst old, inst;
	const char *key_b64 = NULL;
	size_t key_len = 0;
	bool had = false, fresh_ip = false;
	uint32_t ip = 0;
	int rc;

	rc = peer_identity(call, app_id, inst_id, compose);
	if (rc != CVM_OK)
		return rc;
	rc = cvm_rpc_str(call, "client_public_key", CVM_WG_KEY_B64_LEN, &key_b64, &key_len);
	if (rc != CVM_OK)
		return rc;
	if (cvm_wg_key_from_base64(key_b64, key_len, key) != CVM_OK)
		return cvm_rpc_fail(
		    call, 400, CVM_E_FORMAT,
		    "client_public_key must be a WireGuard public key: the standard base64 of 32 "
		    "bytes (44 characters ending in '=')");
	if (gw_routes_by_key(r->g->routes, key, holder) && strcmp(holder, inst_id) != 0)
		return cvm_rpc_fail(
		    call, 409, CVM_E_POLICY,
		    "this WireGuard key is registered by another instance: each CVM needs its own");
	had = gw_routes_get(r->g->routes, inst_id, &old);
	if (had && strcmp(old.app_id, app_id) != 0)
		return cvm_rpc_fail(call, 409, CVM_E_MISMATCH, "instance %s is registered for another app",
		                    inst_id);
	if (!had && gw_routes_app_count(r->g->routes, app_id) >= c->max_registrations_per_app)
		return cvm_rpc_fail(
		    call, 429, CVM_E_TOO_LARGE,
		    "app %s has %llu instances registered, the most [rpc] max_instances_per_app allows",
		    app_id, (unsigned long long)c->max_registrations_per_app);
	if (had) {
		ip = inst_ip(&old);
	} else {
		if (!alloc_ip(r, &ip))
			return cvm_rpc_fail(call, 503, CVM_E_TOO_LARGE,
			                    "no tunnel address is left in [wg] address's prefix");
		fresh_ip = true;
	}
	/* The old key's peer goes first: the address is the new key's. */
	if (had && old.has_wg_key && memcmp(old.wg_key, key, CVM_WG_KEY_LEN) != 0 &&
	    peer_set(r, old.wg_key, 0, true) != CVM_OK) {
		rc = cvm_rpc_fail(call, 503, CVM_E_SYSTEM, "cannot update the WireGuard device");
		goto fail;
	}
	if (peer_set(r, key, ip, false) != CVM_OK) {
		rc = cvm_rpc_fail(call, 503, CVM_E_SYSTEM,
		                  "cannot add the WireGuard peer: is the gateway's WireGuard interface up?");
		goto fail;
	}
	memset(&inst, 0, sizeof(inst));
	(void)snprintf(inst.id, sizeof(inst.id), "%s", inst_id);
	(void)snprintf(inst.app_id, sizeof(inst.app_id), "%s", app_id);
	((struct sockaddr_in *)&inst.addr)->sin_family = AF_INET;
	((struct sockaddr_in *)&inst.addr)->sin_addr.s_addr = htonl(ip);
	inst.addr_len = sizeof(struct sockaddr_in);
	inst.has_wg_key = true;
	memcpy(inst.wg_key, key, CVM_WG_KEY_LEN);
	inst.reg_time = (int64_t)time(NULL);
	inst.last_handshake = had && memcmp(old.wg_key, key, CVM_WG_KEY_LEN) == 0 ? old.last_handshake : 0;
	rc = gw_routes_put(r->g->routes, &inst);
	if (rc != CVM_OK) {
		(void)peer_set(r, key, 0, true);
		rc = cvm_rpc_fail(call, 500, rc, "out of memory");
		goto fail;
	}
	r->registrations++;
	ip_str(ip, ip_text);
	cvm_daemon_log(CVM_LOG_INFO, "registered",
	               "app_id=%s instance_id=%s ip=%s compose_hash=%s renewed=%s", app_id, inst_id, ip_text,
	               cvm_kv(compose[0] != '\0' ? compose : NULL, kv), had ? "yes" : "no");
	*out =
	    json_pack("{s:{s:s, s:o}, s:{s:i, s:i, s:s, s:s}, s:[]}", "wg", "client_ip", ip_text, "servers",
	              servers_json(r), "agent", "external_port", (int)r->proxy_port, "internal_port",
	              AGENT_PORT, "domain", c->n_base_domains > 0 ? c->base_domains[0] : "",
	              "app_address_ns_prefix", CVM_INGRESS_TXT_PREFIX, "gateways");
	return *out == NULL ? cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory") : CVM_OK;
fail:
	if (fresh_ip)
		free_ip(r, ip);
	return rc;
}

static int m_info(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct gw_rpc *r = ctx;
	struct gw_conf *c = r->g->conf;

	(void)call;
	*out =
	    json_pack("{s:s, s:i, s:s}", "base_domain", c->n_base_domains > 0 ? c->base_domains[0] : "",
	              "external_port", (int)r->proxy_port, "app_address_ns_prefix", CVM_INGRESS_TXT_PREFIX);
	return *out == NULL ? cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory") : CVM_OK;
}

static const struct cvm_rpc_method methods[] = {
    {"RegisterCvm", m_register},
    {"Info", m_info},
};

static const struct cvm_rpc_mount mounts[] = {
    {"/prpc/", "Gateway.", methods, COUNT(methods), 404},
};

void gw_rpc_handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	const struct cvm_rpc_api api = {"gateway", mounts, COUNT(mounts), ctx};

	cvm_rpc_handle(&api, req, resp);
}

/* poll_handshakes reads the WireGuard device and refreshes each
 * instance's last handshake (what makes it eligible for traffic). */
static void poll_handshakes(evutil_socket_t fd, short what, void *arg)
{
	struct gw_rpc *r = arg;
	struct cvm_wg_device *d = NULL;

	(void)fd;
	(void)what;
	if (cvm_wg_get(r->wg, &d) != CVM_OK) {
		cvm_daemon_log_limited(CVM_LOG_WARN, "wg_failed", "what=read_handshakes interface=%s",
		                       r->g->conf->wg_interface);
		return;
	}
	gw_routes_set_handshakes(r->g->routes, d);
	cvm_wg_device_free(d);
}

static int parse_address(struct gw_rpc *r, const char *text, char *err, size_t err_len)
{
	char ip[64];
	const char *slash = strchr(text, '/');
	struct in_addr a;
	unsigned long prefix;
	char *end = NULL;

	if (slash == NULL || (size_t)(slash - text) >= sizeof(ip))
		goto bad;
	memcpy(ip, text, (size_t)(slash - text));
	ip[slash - text] = '\0';
	errno = 0;
	prefix = strtoul(slash + 1, &end, 10);
	if (inet_pton(AF_INET, ip, &a) != 1 || errno != 0 || *end != '\0' || prefix < 16 || prefix > 30)
		goto bad;
	r->prefix = (uint8_t)prefix;
	r->gw_ip = ntohl(a.s_addr);
	r->n_addr = 1u << (32 - prefix);
	r->net = r->gw_ip & ~(r->n_addr - 1);
	if (r->gw_ip == r->net || r->gw_ip == r->net + r->n_addr - 1)
		goto bad;
	return CVM_OK;
bad:
	(void)snprintf(err, err_len,
	               "[wg] address: '%s' must be the gateway's IPv4 tunnel address with the CVMs' prefix "
	               "(/16 to /30), such as 10.4.0.1/16",
	               text);
	return CVM_E_FORMAT;
}

/* setup_wg configures the gateway's own side of the tunnel: its key and
 * port, its address, the link up. The interface itself comes from the
 * system (the kernel's module through cvm_wg_link_create, or wireguard-go). */
static int setup_wg(struct gw_rpc *r, char *err, size_t err_len)
{
	struct gw_conf *c = r->g->conf;
	enum cvm_wg_backend b = strcmp(c->wg_backend, "kernel") == 0      ? CVM_WG_KERNEL
	                        : strcmp(c->wg_backend, "userspace") == 0 ? CVM_WG_USERSPACE
	                                                                  : CVM_WG_AUTO;
	struct cvm_secret *priv = NULL;
	struct cvm_wg_device d;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct in_addr a;
	int rc;

	rc = cvm_file_read(c->wg_private_key_file, 128, &buf, &len);
	if (rc != CVM_OK) {
		(void)snprintf(err, err_len, "[wg] private_key_file: cannot read %s: %s",
		               c->wg_private_key_file,
		               rc == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(rc));
		return rc;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	priv = cvm_secret_new(CVM_WG_KEY_LEN);
	if (priv == NULL || cvm_wg_key_from_base64((const char *)buf, len, priv->p) != CVM_OK) {
		cvm_freezero(buf, len);
		cvm_secret_free(priv);
		(void)snprintf(
		    err, err_len,
		    "[wg] private_key_file %s must hold a WireGuard private key (base64 of 32 bytes, as "
		    "`wg genkey` writes)",
		    c->wg_private_key_file);
		return CVM_E_FORMAT;
	}
	cvm_freezero(buf, len);
	if (cvm_wg_key_public(priv->p, r->wg_pub) != CVM_OK) {
		cvm_secret_free(priv);
		(void)snprintf(err, err_len, "cannot derive the WireGuard public key");
		return CVM_E_CRYPTO;
	}
	rc = cvm_wg_open(c->wg_interface, b, c->wg_uapi_dir[0] != '\0' ? c->wg_uapi_dir : NULL, &r->wg);
	if (rc != CVM_OK) {
		cvm_secret_free(priv);
		(void)snprintf(err, err_len,
		               "[wg] interface %s: cannot open it (%s): start `wireguard-go %s` or load the "
		               "wireguard kernel module and create the link",
		               c->wg_interface, cvm_strerror(rc), c->wg_interface);
		return rc;
	}
	memset(&d, 0, sizeof(d));
	d.flags = CVM_WG_DEV_HAS_PRIVATE_KEY | CVM_WG_DEV_HAS_LISTEN_PORT | CVM_WG_DEV_REPLACE_PEERS;
	d.private_key = priv;
	d.listen_port = (uint16_t)c->wg_listen_port;
	rc = cvm_wg_set(r->wg, &d);
	cvm_secret_free(priv);
	if (rc != CVM_OK) {
		(void)snprintf(err, err_len, "[wg] interface %s: cannot set its key and port: %s",
		               c->wg_interface, cvm_strerror(rc));
		return rc;
	}
	a.s_addr = htonl(r->gw_ip);
	rc = cvm_wg_addr_flush(c->wg_interface, AF_INET);
	if (rc == CVM_OK)
		rc = cvm_wg_addr_add(c->wg_interface, AF_INET, &a, r->prefix);
	if (rc == CVM_OK)
		rc = cvm_wg_link_set_up(c->wg_interface, true);
	if (rc != CVM_OK) {
		(void)snprintf(err, err_len, "[wg] interface %s: cannot give it %s and bring it up: %s",
		               c->wg_interface, c->wg_address, cvm_strerror(rc));
		return rc;
	}
	return CVM_OK;
}

int gw_rpc_new(struct gw_ctx *g, struct event_base *base, uint16_t proxy_port, struct gw_rpc **out, char *err,
               size_t err_len)
{
	struct gw_rpc *r = calloc(1, sizeof(*r));
	struct timeval tv;
	int rc;

	*out = NULL;
	if (r == NULL)
		return CVM_E_NOMEM;
	r->g = g;
	r->proxy_port = proxy_port;
	rc = parse_address(r, g->conf->wg_address, err, err_len);
	if (rc == CVM_OK) {
		r->used = calloc((r->n_addr + 7) / 8, 1);
		if (r->used == NULL)
			rc = CVM_E_NOMEM;
		else
			used_set(r, r->gw_ip - r->net, true);
	}
	if (rc == CVM_OK && g->conf->wg_interface[0] != '\0') {
		rc = setup_wg(r, err, err_len);
		if (rc == CVM_OK) {
			tv.tv_sec = (time_t)g->conf->wg_poll_s;
			tv.tv_usec = 0;
			r->poll_ev = event_new(base, -1, EV_PERSIST, poll_handshakes, r);
			if (r->poll_ev == NULL || event_add(r->poll_ev, &tv) != 0)
				rc = CVM_E_NOMEM;
		}
	}
	if (rc != CVM_OK) {
		gw_rpc_free(r);
		return rc;
	}
	*out = r;
	return CVM_OK;
}

void gw_rpc_free(struct gw_rpc *r)
{
	if (r == NULL)
		return;
	if (r->poll_ev != NULL)
		event_free(r->poll_ev);
	cvm_wg_close(r->wg);
	free(r->used);
	free(r);
}

/* gw_rpc_tls_ctx makes the RPC listener's TLS context: the gateway's
 * certificate, and a client certificate required and chained to the KMS's
 * root (nothing else: no system roots). */
int gw_rpc_tls_ctx(const struct gw_conf *c, SSL_CTX **out, char *err, size_t err_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char e[256];

	*out = NULL;
	if (ctx == NULL)
		return CVM_E_NOMEM;
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->rpc_cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->rpc_key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		(void)snprintf(err, err_len, "[rpc] cert %s / key %s: %s", c->rpc_cert_file, c->rpc_key_file,
		               e);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, c->kms_root_ca_file, NULL) != 1) {
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		(void)snprintf(err, err_len, "[rpc] kms_root_ca %s: %s", c->kms_root_ca_file, e);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	*out = ctx;
	return CVM_OK;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return CVM_E_FORMAT;
}
