/* cvm-kmsd: the key management service (docs/daemons/cvm-kmsd.md).
 *
 *   cvm-kmsd [-c FILE]             serve
 *   cvm-kmsd bootstrap [-c FILE]   make the roots of epoch 0 once (attested by the
 *                                  guest agent when one is configured)
 *
 * Start: config; logging; the key process is forked and loads the roots
 * (kms.h); the network process gets the public metadata, makes a fresh TLS
 * key, has the local guest agent attest it, and has the key process issue
 * the RPC certificate (dstack's rpc.crt, renewed at every start); then it
 * listens, drops privileges and serves. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include <cvmkit/amd.h>
#include <cvmkit/audit.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/file.h>
#include <cvmkit/kdf.h>
#include <cvmkit/kms.h>
#include <cvmkit/kmsauth.h>
#include <cvmkit/policy.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tls.h>
#include <cvmkit/tpm.h>

#include "conf.h"
#include "attest.h"
#include "daemon.h"
#include "httpd.h"
#include "kms.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

#define PROG "cvm-kmsd"
#define DEFAULT_CONFIG "/etc/cvmkit/kmsd.conf"
#define DEFAULT_ROOT_DIR "/var/lib/cvmkit/kms/roots"
#define DEFAULT_LISTEN "127.0.0.1:8000"

struct settings {
	char config_file[KMS_STR_MAX];
	char node_name[64];
	char root_dir[KMS_STR_MAX];
	char tpm_tcti[KMS_STR_MAX]; /* "" or "none": no TPM; else a tss2 TCTI ("device:/dev/tpmrm0") */
	char domain[256];
	char user[64];
	char log_level[16];
	char listen[KMS_STR_MAX];
	char port_file[KMS_STR_MAX];
	char agent[KMS_STR_MAX];
	char identity_key[KMS_STR_MAX];
	char collateral[KMS_STR_MAX];
	char intel_root[KMS_STR_MAX];
	char amd_root[KMS_STR_MAX];
	char policy[KMS_STR_MAX];
	char auth_type[16];
	char gateway_app_id[64];
	char auth_policy[KMS_STR_MAX];
	char auth_webhook[KMS_STR_MAX];
	char auth_chain_rpc[KMS_STR_MAX];
	char auth_contract[64];
	uint64_t auth_timeout_ms;
	char audit_db[KMS_STR_MAX];
	uint64_t rpc_cert_lifetime;
	bool serve_temp_ca, accept_dstack_guests, allow_simulated, allow_no_self_attestation;
	bool onboard;        /* [onboard] enabled: serve Onboard.* while there are no roots */
	bool auto_bootstrap; /* [onboard] auto_bootstrap: make the roots at start when there are none */
	uint64_t max_connections, max_connections_per_peer;
};

static void usage(FILE *f)
{
	(void)fprintf(
	    f, "usage: " PROG " [-c FILE] [--port-file FILE] [--log-level LEVEL]\n"
	       "       " PROG " bootstrap [-c FILE]\n"
	       "\n"
	       "  -c, --config FILE   INI config (default " DEFAULT_CONFIG ")\n"
	       "  --port-file FILE    write the TCP port bound (useful with port 0)\n"
	       "  --log-level LEVEL   error, warn, info (default) or debug\n"
	       "  -h, --help          this text\n"
	       "  --version           print the version\n"
	       "bootstrap makes the root material of epoch 0 in [kms] root_dir, once; `cvm kms rotate`\n"
	       "makes later epochs\n"
	       "(docs/daemons/cvm-kmsd.md); serving needs it. With [attestation] agent set, the\n"
	       "agent attests the new roots (bootstrap-info.json beside them).\n");
}

#define KEY(sec, name, type, field)                                \
	{                                                          \
		sec, name, type, &s->field, sizeof(s->field), 0, 0 \
	}
#define NUM(sec, name, field, min, max)                             \
	{                                                           \
		sec, name, CVM_CONF_U64, &s->field, 0, (min), (max) \
	}

static int load_config(struct settings *s, char *err, size_t err_len)
{
	const struct cvm_conf_key keys[] = {
	    KEY("kms", "node_name", CVM_CONF_STR, node_name),
	    KEY("kms", "root_dir", CVM_CONF_STR, root_dir),
	    KEY("kms", "tpm_tcti", CVM_CONF_STR, tpm_tcti),
	    KEY("kms", "domain", CVM_CONF_STR, domain),
	    KEY("kms", "user", CVM_CONF_STR, user),
	    KEY("kms", "log_level", CVM_CONF_STR, log_level),
	    KEY("kms", "serve_temp_ca", CVM_CONF_BOOL, serve_temp_ca),
	    KEY("kms", "accept_dstack_guests", CVM_CONF_BOOL, accept_dstack_guests),
	    KEY("rpc", "listen", CVM_CONF_STR, listen),
	    KEY("rpc", "port_file", CVM_CONF_STR, port_file),
	    NUM("rpc", "cert_lifetime", rpc_cert_lifetime, 600, (uint64_t)366 * 86400),
	    NUM("rpc", "max_connections", max_connections, 1, CVM_HTTPD_CONNECTIONS_MAX),
	    NUM("rpc", "max_connections_per_peer", max_connections_per_peer, 1, CVM_HTTPD_CONNECTIONS_MAX),
	    KEY("attestation", "agent", CVM_CONF_STR, agent),
	    KEY("attestation", "identity_key", CVM_CONF_STR, identity_key),
	    KEY("attestation", "allow_no_self_attestation", CVM_CONF_BOOL, allow_no_self_attestation),
	    KEY("attestation", "collateral", CVM_CONF_STR, collateral),
	    KEY("attestation", "intel_root", CVM_CONF_STR, intel_root),
	    KEY("attestation", "amd_root", CVM_CONF_STR, amd_root),
	    KEY("attestation", "policy", CVM_CONF_STR, policy),
	    KEY("attestation", "allow_simulated", CVM_CONF_BOOL, allow_simulated),
	    KEY("auth", "type", CVM_CONF_STR, auth_type),
	    KEY("auth", "gateway_app_id", CVM_CONF_STR, gateway_app_id),
	    KEY("auth", "policy_file", CVM_CONF_STR, auth_policy),
	    KEY("auth", "webhook_url", CVM_CONF_STR, auth_webhook),
	    KEY("auth", "chain_rpc_url", CVM_CONF_STR, auth_chain_rpc),
	    KEY("auth", "kms_contract", CVM_CONF_STR, auth_contract),
	    NUM("auth", "timeout_ms", auth_timeout_ms, 100, 60000),
	    KEY("audit", "db", CVM_CONF_STR, audit_db),
	    KEY("onboard", "enabled", CVM_CONF_BOOL, onboard),
	    KEY("onboard", "auto_bootstrap", CVM_CONF_BOOL, auto_bootstrap),
	};

	return cvm_conf_load(s->config_file, keys, sizeof(keys) / sizeof(keys[0]), err, err_len);
}

static void defaults(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	(void)snprintf(s->config_file, sizeof(s->config_file), "%s", DEFAULT_CONFIG);
	(void)snprintf(s->node_name, sizeof(s->node_name), "kms");
	(void)snprintf(s->root_dir, sizeof(s->root_dir), "%s", DEFAULT_ROOT_DIR);
	(void)snprintf(s->domain, sizeof(s->domain), "localhost");
	(void)snprintf(s->log_level, sizeof(s->log_level), "info");
	(void)snprintf(s->listen, sizeof(s->listen), "%s", DEFAULT_LISTEN);
	(void)snprintf(s->auth_type, sizeof(s->auth_type), "none");
	s->rpc_cert_lifetime = (uint64_t)7 * 86400;
	s->serve_temp_ca = true;
	s->accept_dstack_guests = true;
}

/* tpm_tcti is [kms] tpm_tcti, or NULL when no TPM is configured. */
static const char *tpm_tcti(const struct settings *s)
{
	return s->tpm_tcti[0] == '\0' || strcmp(s->tpm_tcti, "none") == 0 ? NULL : s->tpm_tcti;
}

/* open_tpm opens [kms] tpm_tcti's TPM (*out NULL when none is configured). */
static int open_tpm(const struct settings *s, struct cvm_tpm **out)
{
	char err[256] = "";
	int r;

	*out = NULL;
	if (tpm_tcti(s) == NULL)
		return CVM_OK;
	r = cvm_tpm_open(tpm_tcti(s), out, err, sizeof(err));
	if (r != CVM_OK)
		(void)fprintf(stderr, PROG ": [kms] tpm_tcti: %s\n", err[0] != '\0' ? err : cvm_strerror(r));
	return r;
}

/* make_client_verifier builds the verifier of client certificates. */
static int make_client_verifier(const struct settings *s, struct cvm_ratls_verifier **out, char *err,
                                size_t err_len)
{
	struct cvm_daemon_verifier_conf c;

	memset(&c, 0, sizeof(c));
	c.section = "[attestation]";
	c.policy = s->policy;
	c.collateral = s->collateral;
	c.intel_root = s->intel_root;
	c.amd_root = s->amd_root;
	c.allow_legacy_ca = true; /* the client chain is not what is trusted: its evidence is */
	c.cache_entries = 1024;
	return cvm_daemon_verifier_new(&c, out, err, err_len);
}

/* make_tls issues the RPC certificate and makes the server context. */
static int make_tls(const struct settings *s, struct kms *k, SSL_CTX **ctx, char **chain_out, char *err,
                    size_t err_len)
{
	struct cvm_p256_keypair *key = NULL;
	struct cvm_secret *pem = NULL;
	uint8_t rd[64], *va = NULL;
	size_t va_len = 0;
	char *chain = NULL;
	int r;

	*ctx = NULL;
	*chain_out = NULL;
	r = cvm_p256_keypair_generate(&key);
	if (r == CVM_OK)
		r = cvm_p256_keypair_pkcs8_pem(key, &pem);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot make the TLS key: %s", cvm_strerror(r));
		goto out;
	}
	if (s->agent[0] != '\0') {
		r = cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, key, NULL, rd);
		if (r == CVM_OK)
			r = kms_self_attest(s->agent, rd, &va, &va_len, err, err_len);
		if (r != CVM_OK)
			goto out;
	} else if (!s->allow_no_self_attestation) {
		(void)snprintf(
		    err, err_len,
		    "[attestation] agent is not set: the KMS must attest its own TLS key through the "
		    "guest agent beside it (or set allow_no_self_attestation = true, for tests only)");
		r = CVM_E_INVAL;
		goto out;
	}
	r = kms_keyproc_rpc_cert(&k->kp, pem, s->domain, va, va_len, s->rpc_cert_lifetime, &chain, err,
	                         err_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_tls_server_ctx_new(chain, key, k->client_verifier, ctx);
	if (r == CVM_OK)
		r = cvm_tls_ctx_client_cert_optional(*ctx);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot make the TLS context: %s", cvm_strerror(r));
	if (r == CVM_OK) {
		*chain_out = chain;
		chain = NULL;
	}
out:
	free(chain);
	free(va);
	cvm_secret_free(pem);
	cvm_p256_keypair_free(key);
	return r;
}

/* make_auth makes the [auth] authorizer; NULL for type none. */
static int make_auth(const struct settings *s, struct cvm_auth **out, char *err, size_t err_len)
{
	struct cvm_auth_opts ao;

	*out = NULL;
	if (strcmp(s->auth_type, "none") == 0)
		return CVM_OK;
	memset(&ao, 0, sizeof(ao));
	ao.type = s->auth_type;
	ao.policy_path = s->auth_policy[0] != '\0' ? s->auth_policy : NULL;
	ao.webhook_url = s->auth_webhook[0] != '\0' ? s->auth_webhook : NULL;
	ao.chain_rpc_url = s->auth_chain_rpc[0] != '\0' ? s->auth_chain_rpc : NULL;
	ao.kms_contract = s->auth_contract[0] != '\0' ? s->auth_contract : NULL;
	ao.timeout_ms = (unsigned)s->auth_timeout_ms;
	ao.gateway_app_id = s->gateway_app_id[0] != '\0' ? s->gateway_app_id : NULL;
	ao.allow_dev = strcmp(s->auth_type, "dev") == 0;
	ao.allow_simulated_tee = s->allow_simulated;
	if (cvm_auth_new(&ao, out, err, err_len) != CVM_OK)
		return CVM_E_INVAL;
	if (ao.allow_dev)
		cvm_daemon_log(CVM_LOG_WARN, "auth_dev",
		               "msg=\"[auth] type = dev: every attested CVM gets its keys; for tests only\"");
	return CVM_OK;
}

/* self_authorize checks the KMS's own evidence (its RPC certificate) with
 * the client verifier and asks the policy whether this node may be a KMS
 * (dstack's ensure_self_allowed): a KMS its own policy refuses does not
 * serve. */
static int self_authorize(const struct settings *s, struct kms *k, const char *chain_pem, char *err,
                          size_t err_len)
{
	struct cvm_ratls_info *info = NULL;
	struct cvm_ratls_verdict v;
	struct cvm_boot_info bi;
	struct cvm_auth_decision d;
	struct app_ident id;
	const char *adv[CVM_AUTH_ADVISORIES_MAX];
	bool verified = false;
	char why[256] = "";
	int r;

	if (s->agent[0] == '\0') {
		cvm_daemon_log(
		    CVM_LOG_WARN, "self_authorization",
		    "msg=\"skipped: the KMS has no evidence of its own (allow_no_self_attestation)\"");
		return CVM_OK;
	}
	if (k->auth == NULL) {
		cvm_daemon_log(CVM_LOG_WARN, "self_authorization",
		               "msg=\"skipped: [auth] type = none (nobody gets anything)\"");
		return CVM_OK;
	}
	r = kms_pem_boot_info(k->client_verifier, chain_pem, &v, &info, &id, &bi, adv, &verified, why,
	                      sizeof(why));
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "self-authorization: %s%s", why,
		               verified ? "" : ": fix them, or this KMS serves nobody");
		goto out;
	}
	r = kms_decide(k, CVM_AUTH_KMS, &bi, &d, why, sizeof(why));
	if (r != CVM_OK || !d.allowed) {
		(void)kms_audit(k, "SelfCheck", NULL, &bi, r != CVM_OK ? "error" : "denied",
		                r != CVM_OK ? why : d.reason, "", k->epochs.current);
		(void)snprintf(err, err_len, "self-authorization: the policy %s this KMS node: %s",
		               r != CVM_OK ? "could not judge" : "does not allow",
		               r != CVM_OK ? why : d.reason);
		r = r != CVM_OK ? r : CVM_E_POLICY;
		goto out;
	}
	(void)kms_audit(k, "SelfCheck", NULL, &bi, "allowed", "", "", k->epochs.current);
	cvm_daemon_log(CVM_LOG_INFO, "self_authorization", "decision=allowed");
out:
	cvm_ratls_info_free(info);
	return r;
}

/* load_bootinfo reads the current epoch's bootstrap-info.json for GetMeta
 * (dstack's bootstrap_info). None is not an error (roots made without an
 * agent, or onboarded: they carry the first node's attestation nowhere);
 * one that does not parse, or names other keys than the roots the key
 * process holds, stops the start: serving it would vouch for other roots. */
static int load_bootinfo(const struct settings *s, struct kms *k, char *err, size_t err_len)
{
	char path[KMS_STR_MAX + 64], why[256] = "", kv[CVM_KV_MAX];
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	int r;

	r = cvm_kms_bootinfo_path(s->root_dir, k->meta.epoch, path, sizeof(path));
	if (r == CVM_OK)
		r = cvm_kms_bootinfo_load(path, &k->bootinfo, why, sizeof(why));
	if (r == CVM_E_SYSTEM && errno == ENOENT) {
		cvm_daemon_log(
		    CVM_LOG_INFO, "bootstrap_info",
		    "msg=\"none: GetMeta's bootstrap_info is null (the roots' origin is not attested)\"");
		return CVM_OK;
	}
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "%.280s: %.180s: repair or remove it", path,
		               why[0] != '\0' ? why : cvm_strerror(r));
		return r;
	}
	if (k->meta.ca_cert_pem == NULL ||
	    cvm_kms_cert_spki((const uint8_t *)k->meta.ca_cert_pem, strlen(k->meta.ca_cert_pem), &spki,
	                      &spki_len) != CVM_OK ||
	    spki_len != k->bootinfo.ca_pubkey_len || memcmp(spki, k->bootinfo.ca_pubkey, spki_len) != 0 ||
	    !k->meta.has_k256 ||
	    memcmp(k->meta.k256_public, k->bootinfo.k256_pubkey, sizeof(k->meta.k256_public)) != 0) {
		(void)snprintf(
		    err, err_len,
		    "%.300s names other keys than epoch %u's roots: it belongs to other roots; remove it "
		    "or put back the right one",
		    path, (unsigned)k->meta.epoch);
		free(spki);
		cvm_kms_bootinfo_cleanup(&k->bootinfo);
		return CVM_E_MISMATCH;
	}
	free(spki);
	k->has_bootinfo = true;
	cvm_daemon_log(CVM_LOG_INFO, "bootstrap_info", "path=%s", cvm_kv(path, kv));
	return CVM_OK;
}

static int write_port_file(const char *path, uint16_t port)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%u\n", (unsigned)port);

	return cvm_file_write(path, buf, (size_t)n, 0644);
}

static int bootstrap_attested(const struct settings *s, struct cvm_tpm *tpm, char *err, size_t err_len);

/* bootstrap_roots is Onboard.Bootstrap's (in the Onboard service's child):
 * attested, as `cvm-kmsd bootstrap` with an agent (the Onboard service
 * requires one), sealed to [kms] tpm_tcti's TPM when one is set. */
static int bootstrap_roots(const void *ctx, char *err, size_t err_len)
{
	struct cvm_tpm *tpm = NULL;
	int r;

	if (open_tpm(ctx, &tpm) != CVM_OK) {
		(void)snprintf(err, err_len, "[kms] tpm_tcti: the TPM cannot be opened");
		return CVM_E_TPM;
	}
	r = bootstrap_attested(ctx, tpm, err, err_len);
	cvm_tpm_close(tpm);
	return r;
}

/* load_roots loads the roots of `epoch`, through [kms] tpm_tcti's TPM when
 * one is set (in the Onboard service's child). */
static int load_roots(const void *ctx, uint32_t epoch, struct cvm_kms_roots **out, char *err, size_t err_len)
{
	const struct settings *s = ctx;
	struct cvm_tpm *tpm = NULL;
	int r;

	if (open_tpm(s, &tpm) != CVM_OK) {
		(void)snprintf(err, err_len, "[kms] tpm_tcti: the TPM cannot be opened");
		return CVM_E_TPM;
	}
	r = cvm_kms_roots_load_tpm(s->root_dir, epoch, tpm, out, err, err_len);
	cvm_tpm_close(tpm);
	return r;
}

/* onboard_roots is Onboard.Onboard's (in the Onboard service's child). */
static int onboard_roots(const void *ctx, const char *from, struct cvm_ratls_verifier *v,
                         struct cvm_auth *auth, char *err, size_t err_len)
{
	const struct settings *s = ctx;
	struct cvm_tpm *tpm = NULL;
	int r;

	if (open_tpm(s, &tpm) != CVM_OK) {
		(void)snprintf(err, err_len, "[kms] tpm_tcti: the TPM cannot be opened");
		return CVM_E_TPM;
	}
	r = kms_onboard(from, s->root_dir, s->agent, s->identity_key, v, auth, tpm, err, err_len);
	cvm_tpm_close(tpm);
	return r;
}

/* auto_bootstrap makes the roots of epoch 0 at start ([onboard]
 * auto_bootstrap, dstack's auto_bootstrap_domain): attested when an agent
 * is set (as `cvm-kmsd bootstrap`), sealed when a TPM is, in a child
 * process so that this network-facing process never maps a root key. */
static int auto_bootstrap(const struct settings *s, char *err, size_t err_len)
{
	int p[2], st = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0) {
		(void)snprintf(err, err_len, "pipe: %s", strerror(errno));
		return CVM_E_SYSTEM;
	}
	pid = fork();
	if (pid < 0) {
		(void)snprintf(err, err_len, "fork: %s", strerror(errno));
		(void)close(p[0]);
		(void)close(p[1]);
		return CVM_E_SYSTEM;
	}
	if (pid == 0) {
		struct cvm_tpm *tpm = NULL;
		char why[512] = "";
		int r = open_tpm(s, &tpm);

		(void)close(p[0]);
		if (r == CVM_OK)
			r = s->agent[0] != '\0' ? bootstrap_attested(s, tpm, why, sizeof(why))
			                        : cvm_kms_bootstrap_tpm(s->root_dir, 0, (int64_t)time(NULL),
			                                                tpm, why, sizeof(why));
		else
			(void)snprintf(why, sizeof(why), "[kms] tpm_tcti: the TPM cannot be opened");
		cvm_tpm_close(tpm);
		if (r != CVM_OK)
			(void)!write(p[1], why, strlen(why));
		_exit(r == CVM_OK ? 0 : 1);
	}
	(void)close(p[1]);
	n = read(p[0], err, err_len - 1);
	err[n > 0 ? (size_t)n : 0] = '\0';
	(void)close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (err[0] == '\0')
			(void)snprintf(err, err_len, "the bootstrap process failed");
		return CVM_E_INTERNAL;
	}
	cvm_daemon_log(CVM_LOG_INFO, "auto_bootstrap", "root_dir=%s attested=%s sealed=%s", s->root_dir,
	               s->agent[0] != '\0' ? "yes" : "no", tpm_tcti(s) != NULL ? "yes" : "no");
	return CVM_OK;
}

/* onboarding serves the Onboard service until Onboard.Finish: the node
 * then has roots and serves the KMS RPC. */
static int onboarding(const struct settings *s, struct cvm_auth *auth, char *err, size_t err_len)
{
	struct kms_onboard_conf c;
	struct cvm_ratls_verifier *v = NULL;
	int r = make_client_verifier(s, &v, err, err_len);

	if (r != CVM_OK)
		return r;
	memset(&c, 0, sizeof(c));
	c.listen = s->listen;
	c.port_file = s->port_file;
	c.node_name = s->node_name;
	c.domain = s->domain;
	c.root_dir = s->root_dir;
	c.agent = s->agent;
	c.identity_key = s->identity_key;
	c.eth_rpc_url = strcmp(s->auth_type, "chain") == 0 ? s->auth_chain_rpc : "";
	c.kms_contract = strcmp(s->auth_type, "chain") == 0 ? s->auth_contract : "";
	c.verifier = v;
	c.auth = auth;
	c.bootstrap = bootstrap_roots;
	c.onboard = onboard_roots;
	c.load_roots = load_roots;
	c.ctx = s;
	c.write_port = write_port_file;
	r = kms_onboard_serve(&c, err, err_len);
	cvm_ratls_verifier_free(v);
	return r;
}

static int serve(struct settings *s)
{
	struct kms k;
	struct kp_config kc;
	struct cvm_httpd_opts ho;
	struct cvm_httpd *h = NULL;
	struct cvm_daemon_signals *sig = NULL;
	struct event_base *base = NULL;
	struct cvm_addr addr;
	SSL_CTX *ctx = NULL;
	char *chain = NULL;
	uint16_t port = 0;
	char err[512] = "", kv[CVM_KV_MAX];
	int rc = 1, r;

	memset(&k, 0, sizeof(k));
	k.kp.fd = -1;
	k.kp.pid = -1;
	k.node_name = s->node_name;
	k.serve_temp_ca = s->serve_temp_ca;
	k.accept_dstack_guests = s->accept_dstack_guests;
	k.simulated_ok = s->allow_simulated;
	(void)snprintf(k.gateway_app_id, sizeof(k.gateway_app_id), "%s", s->gateway_app_id);
	k.auth_type = s->auth_type;
	if (make_auth(s, &k.auth, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": [auth]: %s\n", err);
		return 2;
	}
	if (k.auth != NULL && cvm_auth_info(k.auth, &k.auth_info, err, sizeof(err)) != CVM_OK)
		cvm_daemon_log(CVM_LOG_WARN, "auth_info", "reason=%s", cvm_kv(err, kv));
	/* no roots yet: made unattended, or the Onboard service first (before
	 * the audit log, which lives beside the roots) */
	if (s->auto_bootstrap && !kms_roots_present(s->root_dir) &&
	    auto_bootstrap(s, err, sizeof(err)) != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "start_failed", "stage=auto_bootstrap reason=%s",
		               cvm_kv(err, kv));
		(void)fprintf(stderr, PROG ": [onboard] auto_bootstrap: %s\n", err);
		cvm_auth_free(k.auth);
		return 1;
	}
	if (s->onboard && !kms_roots_present(s->root_dir) &&
	    onboarding(s, k.auth, err, sizeof(err)) != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "start_failed", "stage=onboarding reason=%s", cvm_kv(err, kv));
		(void)fprintf(stderr, PROG ": onboarding: %s\n", err);
		cvm_auth_free(k.auth);
		return 1;
	}
	if (strcmp(s->audit_db, "none") == 0) {
		cvm_daemon_log(CVM_LOG_WARN, "audit_off",
		               "msg=\"[audit] db = none: decisions are not recorded\"");
	} else {
		char path[KMS_STR_MAX + 16];

		if (s->audit_db[0] != '\0')
			(void)snprintf(path, sizeof(path), "%s", s->audit_db);
		else
			(void)snprintf(path, sizeof(path), "%.*s/audit.db", KMS_STR_MAX - 1, s->root_dir);
		if (cvm_audit_open(path, true, &k.audit, err, sizeof(err)) != CVM_OK) {
			(void)fprintf(stderr, PROG ": the audit log %s: %s\n", path, err);
			cvm_auth_free(k.auth);
			return 1;
		}
	}
	if (cvm_addr_parse(s->listen, &addr) != CVM_OK) {
		(void)fprintf(stderr, PROG ": [rpc] listen: %s is not HOST:PORT or unix:/path\n", s->listen);
		return 2;
	}
	/* The key process first: nothing of the roots is ever read here. */
	memset(&kc, 0, sizeof(kc));
	kc.root_dir = s->root_dir;
	kc.user = s->user;
	kc.tpm_tcti = tpm_tcti(s);
	r = cvm_kms_epochs_load(s->root_dir, &k.epochs, err, sizeof(err));
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": the epoch table: %s\n", err);
		return 1;
	}
	/* the current epoch first, then those still in their grace period */
	kc.epochs[kc.epoch_count++] = k.epochs.current;
	for (size_t i = 0; i < k.epochs.count; i++) {
		const struct cvm_kms_epoch *e = &k.epochs.e[i];

		if (e->state != CVM_KMS_EPOCH_GRACE ||
		    !cvm_kms_epoch_readable(&k.epochs, e->epoch, time(NULL)))
			continue;
		if (kc.epoch_count == KMS_EPOCHS_MAX) {
			cvm_daemon_log(CVM_LOG_WARN, "epochs",
			               "msg=\"more than %u readable epochs: epoch %u is not loaded\"",
			               KMS_EPOCHS_MAX, (unsigned)e->epoch);
			continue;
		}
		kc.epochs[kc.epoch_count++] = e->epoch;
	}
	r = kms_keyproc_start(&kc, &k.kp, err, sizeof(err));
	if (r != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "start_failed", "stage=roots reason=%s", cvm_kv(err, kv));
		(void)fprintf(stderr, PROG ": the roots: %s\n", err);
		return 1;
	}
	r = kms_keyproc_meta(&k.kp, &k.meta, err, sizeof(err));
	if (r == CVM_OK)
		r = load_bootinfo(s, &k, err, sizeof(err));
	if (r == CVM_OK)
		r = make_client_verifier(s, &k.client_verifier, err, sizeof(err));
	if (r == CVM_OK)
		r = make_tls(s, &k, &ctx, &chain, err, sizeof(err));
	if (r == CVM_OK)
		r = self_authorize(s, &k, chain, err, sizeof(err));
	if (r != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "start_failed", "reason=%s", cvm_kv(err, kv));
		(void)fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	base = event_base_new();
	memset(&ho, 0, sizeof(ho));
	ho.name = "kms";
	ho.max_connections = (unsigned)s->max_connections;
	ho.max_connections_per_peer = (unsigned)s->max_connections_per_peer;
	if (base == NULL || cvm_daemon_signals_new(base, &sig) != CVM_OK ||
	    cvm_httpd_new(base, &ho, kms_handle, &k, &h) != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot make the server\n");
		goto out;
	}
	r = cvm_httpd_listen(h, &addr, 0600, &port);
	if (r == CVM_OK)
		r = cvm_httpd_set_tls(h, ctx, 0);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot listen on %s: %s\n", s->listen,
		              r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	if (s->port_file[0] != '\0' && write_port_file(s->port_file, port) != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot write %s\n", s->port_file);
		goto out;
	}
	if (cvm_daemon_drop_privileges(s->user) != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot switch to user %s\n", s->user);
		goto out;
	}
	cvm_daemon_log(CVM_LOG_INFO, "listening", "node=%s addr=%s port=%u epoch=%u temp_ca=%s auth=%s",
	               s->node_name, cvm_kv(s->listen, kv), (unsigned)port, (unsigned)k.meta.epoch,
	               s->serve_temp_ca ? "on" : "off", s->auth_type);
	(void)event_base_dispatch(base);
	rc = 0;
out:
	cvm_httpd_free(h);
	cvm_daemon_signals_free(sig);
	if (base != NULL)
		event_base_free(base);
	SSL_CTX_free(ctx);
	free(chain);
	cvm_ratls_verifier_free(k.client_verifier);
	kp_meta_cleanup(&k.meta);
	cvm_kms_bootinfo_cleanup(&k.bootinfo);
	kms_keyproc_stop(&k.kp);
	cvm_audit_close(k.audit);
	cvm_auth_free(k.auth);
	return rc;
}

static int onboard(const struct settings *s, const char *from)
{
	struct cvm_ratls_verifier *v = NULL;
	struct cvm_auth *auth = NULL;
	struct cvm_tpm *tpm = NULL;
	char err[512] = "";
	int r = make_client_verifier(s, &v, err, sizeof(err));

	if (r == CVM_OK)
		r = make_auth(s, &auth, err, sizeof(err));
	if (r == CVM_OK && open_tpm(s, &tpm) != CVM_OK) {
		cvm_auth_free(auth);
		cvm_ratls_verifier_free(v);
		return 1;
	}
	if (r == CVM_OK)
		r = kms_onboard(from, s->root_dir, s->agent, s->identity_key, v, auth, tpm, err, sizeof(err));
	cvm_tpm_close(tpm);
	cvm_auth_free(auth);
	cvm_ratls_verifier_free(v);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG " onboard: %s\n", err[0] != '\0' ? err : cvm_strerror(r));
		return r == CVM_E_POLICY ? 3 : 1;
	}
	(void)printf("onboarded from %s into %s\n", from, s->root_dir);
	return 0;
}

/* rm_staging removes what bootstrap_attested left in its staging folder
 * `dir`: the files of dir/epoch-0, that folder, and `dir`. */
static void rm_staging(const char *dir)
{
	char sub[KMS_STR_MAX + 64];
	struct dirent *e;
	DIR *d;

	(void)snprintf(sub, sizeof(sub), "%s/epoch-0", dir);
	d = opendir(sub);
	if (d != NULL) {
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				(void)unlinkat(dirfd(d), e->d_name, 0);
		(void)closedir(d);
	}
	(void)rmdir(sub);
	(void)rmdir(dir);
}

/* bootstrap_attested makes epoch 0's roots and their bootstrap attestation
 * (include/cvmkit/kms.h, dstack's Onboard.Bootstrap) so that roots never
 * exist without it: cvm_kms_bootstrap makes them in a new staging folder
 * ROOT_DIR/.bootstrap-XXXXXX, their public halves are read back, the agent
 * attests them, bootstrap-info.json (0644) is written beside them, and only
 * then does the folder become ROOT_DIR/epoch-0, in one rename that never
 * replaces an existing one. On any failure the staging folder is removed
 * (those roots were never used) and ROOT_DIR is as before. */
static int bootstrap_attested(const struct settings *s, struct cvm_tpm *tpm, char *err, size_t err_len)
{
	char stage[KMS_STR_MAX + 32], from[KMS_STR_MAX + 48], to[KMS_STR_MAX + 16], path[KMS_STR_MAX + 96];
	char why[512] = "";
	struct cvm_kms_roots *roots = NULL;
	struct cvm_kms_bootinfo bi;
	struct cvm_va *va = NULL;
	const char *pem;
	uint8_t rd[64];
	char *text = NULL;
	size_t text_len = 0;
	struct stat st;
	bool staged = false, exists;
	int r;

	memset(&bi, 0, sizeof(bi));
	(void)snprintf(to, sizeof(to), "%s/epoch-0", s->root_dir);
	/* the same refusals (and words) as cvm_kms_bootstrap's, before the agent is asked */
	if (lstat(to, &st) == 0) {
		(void)snprintf(err, err_len,
		               "%s already exists: the roots of epoch 0 were made before, and are never made "
		               "twice (nothing was changed)",
		               to);
		return CVM_E_POLICY;
	}
	(void)snprintf(path, sizeof(path), "%s/%s", s->root_dir, CVM_KMS_FILE_ROOT_CA_KEY);
	exists = lstat(path, &st) == 0;
	(void)snprintf(path, sizeof(path), "%s/%s", s->root_dir, CVM_KMS_FILE_ROOT_K256_KEY);
	exists = exists || lstat(path, &st) == 0;
	if (exists) {
		(void)snprintf(
		    err, err_len,
		    "%s already holds epoch 0's roots in dstack's layout: nothing was made (roots are "
		    "made once; a new epoch is `rotate`)",
		    s->root_dir);
		return CVM_E_POLICY;
	}
	if (mkdir(s->root_dir, 0700) != 0 && errno != EEXIST) {
		(void)snprintf(err, err_len, "cannot make the root directory %s: %s", s->root_dir,
		               strerror(errno));
		return CVM_E_SYSTEM;
	}
	if ((size_t)snprintf(stage, sizeof(stage), "%s/.bootstrap-XXXXXX", s->root_dir) >= sizeof(stage) ||
	    mkdtemp(stage) == NULL) {
		(void)snprintf(err, err_len, "cannot make a staging folder in %s: %s", s->root_dir,
		               strerror(errno));
		return CVM_E_SYSTEM;
	}
	staged = true;
	(void)snprintf(from, sizeof(from), "%s/epoch-0", stage);
	r = cvm_kms_bootstrap_tpm(stage, 0, (int64_t)time(NULL), tpm, why, sizeof(why));
	if (r == CVM_OK)
		r = cvm_kms_roots_load_tpm(stage, 0, tpm, &roots, why, sizeof(why));
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "%s", why[0] != '\0' ? why : cvm_strerror(r));
		goto out;
	}
	pem = cvm_kms_roots_ca_cert(roots);
	r = pem != NULL
	        ? cvm_kms_cert_spki((const uint8_t *)pem, strlen(pem), &bi.ca_pubkey, &bi.ca_pubkey_len)
	        : CVM_E_INTERNAL;
	if (r == CVM_OK)
		r = cvm_kms_roots_k256_public(roots, bi.k256_pubkey);
	if (r == CVM_OK)
		r = cvm_kms_bootstrap_report_data(bi.ca_pubkey, bi.ca_pubkey_len, bi.k256_pubkey, rd);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read the new roots' public keys: %s", cvm_strerror(r));
		goto out;
	}
	r = kms_self_attest(s->agent, rd, &bi.attestation, &bi.attestation_len, why, sizeof(why));
	if (r != CVM_OK) {
		(void)snprintf(
		    err, err_len,
		    "the guest agent did not attest the new roots (%s): nothing was made; start the "
		    "agent ([attestation] agent = %s) and run bootstrap again",
		    why, s->agent);
		goto out;
	}
	/* an agent that attests something else is caught here, not by the
	 * first verifier of the file */
	r = cvm_va_decode(bi.attestation, bi.attestation_len, &va, why, sizeof(why));
	if (r == CVM_OK && memcmp(va->report_data, rd, sizeof(rd)) != 0)
		r = CVM_E_MISMATCH;
	if (r == CVM_OK)
		r = cvm_kms_bootinfo_encode(&bi, &text, &text_len);
	if (r != CVM_OK) {
		(void)snprintf(
		    err, err_len,
		    "the guest agent's attestation of the new roots is unusable (%s): nothing was made",
		    r == CVM_E_MISMATCH ? "it is over other report_data" : cvm_strerror(r));
		goto out;
	}
	(void)snprintf(path, sizeof(path), "%s/%s", from, CVM_KMS_FILE_BOOTINFO);
	r = cvm_file_write(path, text, text_len, 0644);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) != 0) {
		int e = errno;

		(void)snprintf(
		    err, err_len, "cannot move the new roots to %s: %s%s", to, strerror(e),
		    e == EEXIST ? " (another bootstrap made epoch 0 meanwhile: nothing was changed)" : "");
		r = e == EEXIST ? CVM_E_POLICY : CVM_E_SYSTEM;
		goto out;
	}
	(void)rmdir(stage);
	staged = false;
	{
		int fd = open(s->root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0) {
			(void)fsync(fd);
			(void)close(fd);
		}
	}
out:
	if (staged)
		rm_staging(stage);
	free(text);
	cvm_va_free(va);
	cvm_kms_bootinfo_cleanup(&bi);
	cvm_kms_roots_free(roots);
	return r;
}

/* bootstrap makes the roots of epoch 0 (cvm-kmsd bootstrap): attested by
 * the guest agent when [attestation] agent is set, else unattested. */
static int bootstrap(const struct settings *s, struct cvm_tpm *tpm)
{
	char err[1024] = "";
	int r;

	if (s->agent[0] == '\0') {
		r = cvm_kms_bootstrap_tpm(s->root_dir, 0, (int64_t)time(NULL), tpm, err, sizeof(err));
	} else if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		(void)snprintf(err, sizeof(err), "cannot initialise libcurl");
		r = CVM_E_INTERNAL;
	} else {
		r = bootstrap_attested(s, tpm, err, sizeof(err));
		curl_global_cleanup();
	}
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG " bootstrap: %s\n", err[0] != '\0' ? err : cvm_strerror(r));
		return r == CVM_E_POLICY ? 3 : 1;
	}
	(void)printf("made the roots of epoch 0 in %s/epoch-0\n", s->root_dir);
	if (s->agent[0] != '\0')
		(void)printf("the guest agent attested them: %s/epoch-0/%s\n", s->root_dir,
		             CVM_KMS_FILE_BOOTINFO);
	else
		(void)printf("note: the roots are unattested ([attestation] agent is not set): no %s was "
		             "written, and nobody can check that they were made inside a CVM\n",
		             CVM_KMS_FILE_BOOTINFO);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"from", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	struct settings s;
	enum cvm_log_level level;
	const char *port_file = NULL, *log_level = NULL, *from = NULL;
	char err[512] = "";
	bool is_bootstrap = false, is_onboard = false;
	int opt, rc;

	defaults(&s);
	if (argc > 1 && (strcmp(argv[1], "bootstrap") == 0 || strcmp(argv[1], "onboard") == 0)) {
		is_bootstrap = strcmp(argv[1], "bootstrap") == 0;
		is_onboard = !is_bootstrap;
		argv++;
		argc--;
	}
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			(void)snprintf(s.config_file, sizeof(s.config_file), "%s", optarg);
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'l':
			log_level = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			(void)printf(PROG " " CVM_VERSION_STRING "\n");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (is_onboard != (from != NULL))) {
		usage(stderr);
		return 2;
	}
	if (load_config(&s, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s: %s\n", s.config_file, err);
		return 2;
	}
	if (port_file != NULL)
		(void)snprintf(s.port_file, sizeof(s.port_file), "%s", port_file);
	if (log_level != NULL)
		(void)snprintf(s.log_level, sizeof(s.log_level), "%s", log_level);
	if (cvm_daemon_log_level_parse(s.log_level, &level) != CVM_OK) {
		(void)fprintf(stderr, PROG ": log level %s is not error, warn, info or debug\n", s.log_level);
		return 2;
	}
	cvm_daemon_log_init(PROG, level);
	if (cvm_daemon_harden() != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot harden the process\n");
		return 1;
	}
	if (is_bootstrap) {
		struct cvm_tpm *tpm = NULL;

		if (open_tpm(&s, &tpm) != CVM_OK)
			return 1;
		rc = bootstrap(&s, tpm);
		cvm_tpm_close(tpm);
		return rc;
	}
	/* jansson's strings carry keys (GetAppKey, GetKmsKey): wiped when freed */
	cvm_kdf_json_wipe_on_free();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	rc = is_onboard ? onboard(&s, from) : serve(&s);
	curl_global_cleanup();
	return rc;
}
