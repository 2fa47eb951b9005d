/* cvm-kmsd: the key management service (docs/daemons/cvm-kmsd.md).
 *
 *   cvm-kmsd [-c FILE]             serve
 *   cvm-kmsd bootstrap [-c FILE]   make the roots of the current epoch once
 *
 * Start: config; logging; the key process is forked and loads the roots
 * (kms.h); the network process gets the public metadata, makes a fresh TLS
 * key, has the local guest agent attest it, and has the key process issue
 * the RPC certificate (dstack's rpc.crt, renewed at every start); then it
 * listens, drops privileges and serves. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#define CERT_FILE_MAX ((size_t)64 * 1024)

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
	       "(docs/daemons/cvm-kmsd.md); serving needs it.\n");
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

/* load_file_opt reads an optional DER or PEM certificate file as DER. */
static int load_cert_der(const char *path, uint8_t **der, size_t *len, char *err, size_t err_len)
{
	struct cvm_cert **certs = NULL;
	uint8_t *buf = NULL;
	size_t buf_len = 0, n = 0;
	const uint8_t *d;
	size_t dl;
	int r;

	*der = NULL;
	*len = 0;
	r = cvm_file_read(path, CERT_FILE_MAX, &buf, &buf_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
		return r;
	}
	r = cvm_certs_parse_pem(buf, buf_len, &certs, &n);
	if (r != CVM_OK || n == 0) {
		struct cvm_cert *c = NULL;

		r = cvm_cert_parse(buf, buf_len, &c);
		if (r == CVM_OK) {
			*der = buf;
			*len = buf_len;
			cvm_cert_free(c);
			return CVM_OK;
		}
		(void)snprintf(err, err_len, "%s holds no certificate", path);
		free(buf);
		return CVM_E_FORMAT;
	}
	cvm_cert_der(certs[0], &d, &dl);
	*der = malloc(dl);
	if (*der != NULL) {
		memcpy(*der, d, dl);
		*len = dl;
	}
	cvm_certs_free(certs, n);
	free(buf);
	return *der != NULL ? CVM_OK : CVM_E_NOMEM;
}

/* make_client_verifier builds the verifier of client certificates. */
static int make_client_verifier(const struct settings *s, struct cvm_ratls_verifier **out, char *err,
                                size_t err_len)
{
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_ratls_verifier_opts o;
	struct cvm_policy pol;
	uint8_t *intel = NULL, *ark = NULL;
	size_t intel_len = 0, ark_len = 0;
	char path[KMS_STR_MAX + 8], why[200] = "";
	int r = CVM_OK;

	cvm_policy_init(&pol);
	if (s->policy[0] != '\0' && (r = cvm_policy_load_file(s->policy, &pol, why, sizeof(why))) != CVM_OK) {
		(void)snprintf(err, err_len, "[attestation] policy %.200s: %s", s->policy, why);
		goto out;
	}
	if (s->collateral[0] != '\0') {
		(void)snprintf(path, sizeof(path), "%s/tdx", s->collateral);
		if (access(path, F_OK) == 0 &&
		    (r = cvm_dcap_collateral_load_dir(path, &dcap, why, sizeof(why))) != CVM_OK) {
			(void)snprintf(err, err_len, "TDX collateral %.200s: %s", path, why);
			goto out;
		}
		(void)snprintf(path, sizeof(path), "%s/snp", s->collateral);
		if (access(path, F_OK) == 0 &&
		    (r = cvm_amd_collateral_load_dir(path, &amd, why, sizeof(why))) != CVM_OK) {
			(void)snprintf(err, err_len, "SNP collateral %.200s: %s", path, why);
			goto out;
		}
	}
	if (s->intel_root[0] != '\0' &&
	    (r = load_cert_der(s->intel_root, &intel, &intel_len, err, err_len)) != CVM_OK)
		goto out;
	if (s->amd_root[0] != '\0' &&
	    (r = load_cert_der(s->amd_root, &ark, &ark_len, err, err_len)) != CVM_OK)
		goto out;
	memset(&o, 0, sizeof(o));
	o.policy = &pol;
	o.dcap = dcap;
	o.amd = amd;
	o.intel_root_der = intel;
	o.intel_root_der_len = intel_len;
	o.amd_root_der = ark;
	o.amd_root_der_len = ark_len;
	o.allow_legacy_ca = true; /* the client chain is not what is trusted: its evidence is */
	o.cache_entries = 1024;
	r = cvm_ratls_verifier_new(&o, (int64_t)time(NULL), out);
	if (r != CVM_OK)
		(void)snprintf(
		    err, err_len,
		    "the client verifier cannot be made (%s): check [attestation] collateral and the "
		    "roots it chains to",
		    cvm_strerror(r));
out:
	free(intel);
	free(ark);
	cvm_dcap_collateral_free(dcap);
	cvm_amd_collateral_free(amd);
	return r;
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
	struct cvm_cert **certs = NULL;
	struct cvm_ratls_info *info = NULL;
	struct cvm_ratls_verdict v;
	struct cvm_boot_info bi;
	struct cvm_auth_decision d;
	struct app_ident id;
	const char *adv[CVM_AUTH_ADVISORIES_MAX];
	const uint8_t *der;
	size_t n = 0, der_len;
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
	r = cvm_certs_parse_pem((const uint8_t *)chain_pem, strlen(chain_pem), &certs, &n);
	if (r != CVM_OK || n == 0) {
		(void)snprintf(err, err_len, "self-authorization: the RPC certificate does not parse");
		return r != CVM_OK ? r : CVM_E_INTERNAL;
	}
	cvm_cert_der(certs[0], &der, &der_len);
	memset(&v, 0, sizeof(v));
	r = cvm_ratls_verifier_check(k->client_verifier, &der, &der_len, 1, (int64_t)time(NULL), &v, NULL);
	if (r != CVM_OK) {
		(void)snprintf(
		    err, err_len,
		    "self-authorization: the KMS's own evidence does not verify with [attestation] "
		    "collateral and policy (%s): fix them, or this KMS serves nobody",
		    cvm_strerror(r));
		goto out;
	}
	r = cvm_ratls_parse(der, der_len, &info, why, sizeof(why));
	if (r == CVM_OK)
		r = kms_ident_read(info, &id);
	if (r == CVM_OK)
		r = kms_boot_info(&v, info, &id, &bi, adv, why, sizeof(why));
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "self-authorization: %s",
		               why[0] != '\0' ? why : cvm_strerror(r));
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
	cvm_certs_free(certs, n);
	return r;
}

static int write_port_file(const char *path, uint16_t port)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%u\n", (unsigned)port);

	return cvm_file_write(path, buf, (size_t)n, 0644);
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

static int bootstrap(const struct settings *s, struct cvm_tpm *tpm)
{
	char err[512] = "";
	int r = cvm_kms_bootstrap_tpm(s->root_dir, 0, (int64_t)time(NULL), tpm, err, sizeof(err));

	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG " bootstrap: %s\n", err[0] != '\0' ? err : cvm_strerror(r));
		return r == CVM_E_POLICY ? 3 : 1;
	}
	(void)printf("made the roots of epoch 0 in %s/epoch-0\n", s->root_dir);
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
