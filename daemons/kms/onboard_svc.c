/* The Onboard service (dstack spec §3.6): while a node has no roots and
 * [onboard] enabled is set, cvm-kmsd serves, on its RPC address, only
 *   Onboard.GetAttestationInfo  this node's BootInfo values (device_id,
 *                               mr_aggregated, os_image_hash, ...), to
 *                               register it (on chain, in a policy) first;
 *   Onboard.Bootstrap{domain}   make the roots here (a first node);
 *   Onboard.Onboard{source_url, domain}  take them from a running node;
 *   Onboard.Finish              stop onboarding and serve the KMS RPC.
 * It speaks TLS with an RA-TLS certificate of a fresh key that the guest
 * agent attests, so an operator can check what answers. Bootstrap and
 * Onboard run in a child process: root keys are never mapped by this
 * network-facing process (the key process reads them after Finish). Both
 * refuse once roots exist, so a second call changes nothing. The calls
 * block the (operator-only) server for their duration. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/kms.h>
#include <cvmkit/kmsauth.h>
#include <cvmkit/ratls.h>
#include <cvmkit/secret.h>
#include <cvmkit/tls.h>

#include "daemon.h"
#include "httpd.h"
#include "kms.h"
#include "rpc.h"

#define SVC_CERT_LIFETIME_S ((int64_t)7 * 24 * 3600)
/* the child's answer: the public roots and, hex-encoded, their bootstrap
 * attestation (at most CVM_KMS_BOOTINFO_VA_MAX bytes) */
#define SVC_CHILD_REPLY_MAX (2 * CVM_KMS_BOOTINFO_VA_MAX + (size_t)64 * 1024)
#define SVC_DOMAIN_MAX 253u
#define SVC_URL_MAX 1024u

struct svc {
	const struct kms_onboard_conf *c;
	struct event_base *base;
	char *cert_pem;
	bool finished;
};

bool kms_roots_present(const char *dir)
{
	static const char *const names[] = {"epochs.json", ("epoch-0/" CVM_KMS_FILE_ROOT_CA_CERT),
	                                    CVM_KMS_FILE_ROOT_CA_CERT};
	char path[4096];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int n = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);

		if (n > 0 && (size_t)n < sizeof(path) && access(path, F_OK) == 0)
			return true;
	}
	return false;
}

/* public_of writes the public halves of the current epoch's roots into `o`
 * (ca_pubkey: the root CA's SPKI DER, k256_pubkey: compressed SEC1). */
static int public_of(const struct kms_onboard_conf *c, json_t *o, char *err, size_t err_len)
{
	struct cvm_kms_epochs t;
	struct cvm_kms_roots *r = NULL;
	struct cvm_cert **ca = NULL;
	uint8_t k256[CVM_K256_PUBKEY_LEN], *spki = NULL;
	struct cvm_kms_bootinfo bi;
	size_t n = 0, spki_len = 0;
	char path[4096];
	const char *pem;
	int rc;

	memset(&bi, 0, sizeof(bi));

	rc = cvm_kms_epochs_load(c->root_dir, &t, err, err_len);
	if (rc == CVM_OK)
		rc = c->load_roots(c->ctx, t.current, &r, err, err_len);
	if (rc == CVM_OK)
		rc = cvm_kms_roots_k256_public(r, k256);
	pem = rc == CVM_OK ? cvm_kms_roots_ca_cert(r) : NULL;
	if (rc == CVM_OK &&
	    (pem == NULL || cvm_certs_parse_pem((const uint8_t *)pem, strlen(pem), &ca, &n) != CVM_OK ||
	     n == 0))
		rc = CVM_E_FORMAT;
	if (rc == CVM_OK)
		rc = cvm_cert_spki(ca[0], &spki, &spki_len);
	if (rc == CVM_OK)
		rc = cvm_json_set(o, "ca_pubkey", cvm_json_hex(spki, spki_len));
	if (rc == CVM_OK)
		rc = cvm_json_set(o, "k256_pubkey", cvm_json_hex(k256, sizeof(k256)));
	if (rc == CVM_OK)
		rc = cvm_json_set(o, "epoch", json_integer(t.current));
	/* dstack's BootstrapResponse carries the attestation of the new roots
	 * (bootstrap-info.json; none for roots taken by onboarding) */
	if (rc == CVM_OK && cvm_kms_bootinfo_path(c->root_dir, t.current, path, sizeof(path)) == CVM_OK &&
	    access(path, F_OK) == 0) {
		rc = cvm_kms_bootinfo_load(path, &bi, err, err_len);
		if (rc == CVM_OK)
			rc = cvm_json_set(o, "attestation", cvm_json_hex(bi.attestation, bi.attestation_len));
	}
	cvm_kms_bootinfo_cleanup(&bi);
	free(spki);
	cvm_certs_free(ca, n);
	cvm_kms_roots_free(r);
	return rc;
}

/* write_all writes `len` bytes to `fd`. */
static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* child_run forks; the child runs `what` and writes its answer, a JSON
 * object ({"error": "..."} on failure), to a pipe; the parent reads it. */
enum child_job { JOB_BOOTSTRAP = 1, JOB_ONBOARD };

static void child_main(const struct kms_onboard_conf *c, enum child_job job, const char *source, int fd)
    __attribute__((noreturn));
static void child_main(const struct kms_onboard_conf *c, enum child_job job, const char *source, int fd)
{
	char err[768] = "";
	json_t *o = json_object();
	char *text;
	int r;

	if (kms_roots_present(c->root_dir)) {
		(void)snprintf(err, sizeof(err), "%s already holds roots: nothing was changed", c->root_dir);
		r = CVM_E_POLICY;
	} else if (job == JOB_BOOTSTRAP) {
		r = c->bootstrap(c->ctx, err, sizeof(err));
	} else {
		r = c->onboard(c->ctx, source, c->verifier, c->auth, err, sizeof(err));
	}
	if (r == CVM_OK)
		r = public_of(c, o, err, sizeof(err));
	if (r != CVM_OK) {
		json_object_clear(o);
		(void)json_object_set_new(o, "error", json_string(err[0] != '\0' ? err : cvm_strerror(r)));
		(void)json_object_set_new(o, "code", json_integer(r));
	}
	text = json_dumps(o, JSON_COMPACT);
	if (text != NULL)
		write_all(fd, text, strlen(text));
	_exit(r == CVM_OK ? 0 : 1);
}

static int child_run(struct svc *s, enum child_job job, const char *source, json_t **out, int *code)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	json_error_t jerr;
	pid_t pid;
	int p[2], st = 0;

	*out = NULL;
	*code = CVM_E_INTERNAL;
	if (pipe2(p, O_CLOEXEC) != 0)
		return CVM_E_SYSTEM;
	pid = fork();
	if (pid < 0) {
		(void)close(p[0]);
		(void)close(p[1]);
		return CVM_E_SYSTEM;
	}
	if (pid == 0) {
		(void)close(p[0]);
		child_main(s->c, job, source, p[1]);
	}
	(void)close(p[1]);
	buf = calloc(1, SVC_CHILD_REPLY_MAX + 1);
	if (buf != NULL) {
		for (;;) {
			ssize_t n = read(p[0], buf + len, SVC_CHILD_REPLY_MAX - len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == SVC_CHILD_REPLY_MAX)
				break;
		}
	}
	(void)close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (buf == NULL)
		return CVM_E_NOMEM;
	*out = json_loadb((const char *)buf, len, 0, &jerr);
	free(buf);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return CVM_E_INTERNAL;
	}
	*code = json_is_integer(json_object_get(*out, "code"))
	            ? (int)json_integer_value(json_object_get(*out, "code"))
	            : (WIFEXITED(st) && WEXITSTATUS(st) == 0 ? CVM_OK : CVM_E_INTERNAL);
	return CVM_OK;
}

/* domain_ok: the domain named in the call is this node's [kms] domain
 * (the RPC certificate's name), or empty. */
static int domain_ok(struct svc *s, struct cvm_rpc_call *c)
{
	const char *d = NULL;
	size_t n = 0;
	int r = cvm_rpc_str(c, "domain", SVC_DOMAIN_MAX, &d, &n);

	if (r != CVM_OK)
		return r;
	if (n != 0 && strcmp(d, s->c->domain) != 0)
		return cvm_rpc_fail(c, 400, CVM_E_INVAL,
		                    "domain '%s' is not this node's ([kms] domain = %s): set it there", d,
		                    s->c->domain);
	return CVM_OK;
}

static int job_reply(struct svc *s, struct cvm_rpc_call *c, enum child_job job, const char *source,
                     json_t **out)
{
	json_t *o = NULL;
	int code, r = child_run(s, job, source, &o, &code);

	if (r != CVM_OK)
		return cvm_rpc_fail(c, 500, r, "the onboarding worker failed: %s", cvm_strerror(r));
	if (code != CVM_OK) {
		r = cvm_rpc_fail(c, code == CVM_E_POLICY ? 403 : (code == CVM_E_INVAL ? 400 : 502), code,
		                 "%s",
		                 json_string_value(json_object_get(o, "error")) != NULL
		                     ? json_string_value(json_object_get(o, "error"))
		                     : "failed");
		json_decref(o);
		return r;
	}
	cvm_daemon_log(CVM_LOG_INFO, "onboard", "step=%s result=done",
	               job == JOB_BOOTSTRAP ? "bootstrap" : "onboard");
	*out = o;
	return CVM_OK;
}

static int m_bootstrap(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct svc *s = ctx;
	int r = domain_ok(s, c);

	return r != CVM_OK ? r : job_reply(s, c, JOB_BOOTSTRAP, NULL, out);
}

static int m_onboard(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct svc *s = ctx;
	const char *url = NULL;
	size_t n = 0;
	int r = domain_ok(s, c);

	if (r == CVM_OK)
		r = cvm_rpc_str(c, "source_url", SVC_URL_MAX, &url, &n);
	if (r != CVM_OK)
		return r;
	if (n == 0 || cvm_tls_target_parse(url, &(struct cvm_tls_target){0}) != CVM_OK)
		return cvm_rpc_fail(c, 400, CVM_E_INVAL,
		                    "source_url must name the running KMS: https://HOST[:PORT] or HOST:PORT");
	return job_reply(s, c, JOB_ONBOARD, url, out);
}

/* m_attestation_info answers this node's BootInfo values, from the
 * evidence of the onboarding certificate checked with the node's verifier,
 * and whether the node's own policy allows it as a KMS. */
static int m_attestation_info(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct svc *s = ctx;
	struct cvm_ratls_info *info = NULL;
	struct cvm_ratls_verdict v;
	struct cvm_boot_info bi;
	struct cvm_auth_decision d;
	struct app_ident id;
	const char *adv[CVM_AUTH_ADVISORIES_MAX];
	bool verified = false;
	char why[256] = "";
	json_t *o = NULL;
	int r;

	r = kms_pem_boot_info(s->c->verifier, s->cert_pem, &v, &info, &id, &bi, adv, &verified, why,
	                      sizeof(why));
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 500, r, "%s%s", why, verified ? "" : ": fix them first");
		goto out;
	}
	o = json_pack("{s:s, s:s, s:s}", "tee_variant", bi.tee_variant, "tcb_status", bi.tcb_status,
	              "site_name", s->c->node_name);
	r = o != NULL ? CVM_OK : CVM_E_NOMEM;
	if (r == CVM_OK)
		r = cvm_json_set(o, "device_id", cvm_json_hex(bi.device_id, 32));
	if (r == CVM_OK)
		r = cvm_json_set(o, "mr_aggregated", cvm_json_hex(bi.mr_aggregated, 32));
	if (r == CVM_OK)
		r = cvm_json_set(o, "os_image_hash", cvm_json_hex(bi.os_image_hash, 32));
	if (r == CVM_OK)
		r = cvm_json_set(o, "mr_system", cvm_json_hex(bi.mr_system, 32));
	if (r == CVM_OK)
		r = cvm_json_set(o, "eth_rpc_url", json_string(s->c->eth_rpc_url));
	if (r == CVM_OK)
		r = cvm_json_set(o, "kms_contract_address", json_string(s->c->kms_contract));
	if (r == CVM_OK && s->c->auth != NULL) {
		/* what the node's own policy says of it now (it is asked again,
		 * as self-authorization, once the node serves) */
		why[0] = '\0';
		if (cvm_auth_decide(s->c->auth, CVM_AUTH_KMS, &bi, &d, why, sizeof(why)) == CVM_OK) {
			r = cvm_json_set(o, "self_allowed", json_boolean(d.allowed));
			if (r == CVM_OK && !d.allowed)
				r = cvm_json_set(o, "self_reason", json_string(d.reason));
		} else {
			r = cvm_json_set(o, "self_reason", json_string(why));
		}
	}
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 500, r, "out of memory");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(o);
	cvm_ratls_info_free(info);
	return r;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)event_base_loopbreak(arg);
}

static int m_finish(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct svc *s = ctx;

	if (!kms_roots_present(s->c->root_dir))
		return cvm_rpc_fail(c, 400, CVM_E_INVAL,
		                    "no roots yet: call Onboard.Bootstrap or Onboard.Onboard first");
	s->finished = true;
	/* answer first, then leave the loop */
	(void)event_base_once(s->base, -1, EV_TIMEOUT, stop_cb, s->base, &(struct timeval){0, 200000});
	cvm_daemon_log(CVM_LOG_INFO, "onboard", "step=finish result=done");
	*out = json_object();
	return *out != NULL ? CVM_OK : CVM_E_NOMEM;
}

static const struct cvm_rpc_method onboard_methods[] = {
    {"GetAttestationInfo", m_attestation_info},
    {"Bootstrap", m_bootstrap},
    {"Onboard", m_onboard},
    {"Finish", m_finish},
};

static const struct cvm_rpc_mount onboard_mounts[] = {
    {"/prpc/", "Onboard.", onboard_methods, sizeof(onboard_methods) / sizeof(onboard_methods[0]), 404},
};

static void handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	const struct cvm_rpc_api api = {"onboard", onboard_mounts, 1, ctx};

	if (req->method == CVM_HTTP_GET && strcmp(req->path, "/health") == 0) {
		cvm_http_resp_bytes(resp, 200, "application/json", "{\"status\":\"onboarding\"}", 23);
		return;
	}
	cvm_rpc_handle(&api, req, resp);
}

int kms_onboard_serve(const struct kms_onboard_conf *c, char *err, size_t err_len)
{
	struct svc s;
	struct cvm_httpd_opts ho;
	struct cvm_httpd *h = NULL;
	struct cvm_daemon_signals *sig = NULL;
	struct cvm_p256_keypair *kp = NULL;
	struct cvm_addr addr;
	SSL_CTX *ctx = NULL;
	uint16_t port = 0;
	char kv[CVM_KV_MAX];
	int r;

	memset(&s, 0, sizeof(s));
	s.c = c;
	if (c->agent[0] == '\0') {
		(void)snprintf(
		    err, err_len,
		    "the Onboard service needs [attestation] agent: it presents this node's evidence");
		return CVM_E_INVAL;
	}
	if (cvm_addr_parse(c->listen, &addr) != CVM_OK) {
		(void)snprintf(err, err_len, "[rpc] listen: %s is not HOST:PORT or unix:/path", c->listen);
		return CVM_E_INVAL;
	}
	r = cvm_p256_keypair_generate(&kp);
	if (r == CVM_OK)
		r = kms_attested_cert(c->agent, kp, c->domain[0] != '\0' ? c->domain : "cvm-kmsd onboarding",
		                      true, SVC_CERT_LIFETIME_S, &s.cert_pem, err, err_len);
	if (r == CVM_OK && (r = cvm_tls_server_ctx_new(s.cert_pem, kp, NULL, &ctx)) != CVM_OK)
		(void)snprintf(err, err_len, "cannot make the onboarding TLS context: %s", cvm_strerror(r));
	if (r != CVM_OK)
		goto out;
	s.base = event_base_new();
	memset(&ho, 0, sizeof(ho));
	ho.name = "onboard";
	ho.max_connections = 16;
	ho.max_connections_per_peer = 4;
	if (s.base == NULL || cvm_daemon_signals_new(s.base, &sig) != CVM_OK ||
	    cvm_httpd_new(s.base, &ho, handle, &s, &h) != CVM_OK) {
		(void)snprintf(err, err_len, "cannot make the onboarding server");
		r = CVM_E_NOMEM;
		goto out;
	}
	r = cvm_httpd_listen(h, &addr, 0600, &port);
	if (r == CVM_OK)
		r = cvm_httpd_set_tls(h, ctx, 0);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot listen on %s: %s", c->listen,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	if (c->port_file[0] != '\0' && c->write_port(c->port_file, port) != CVM_OK) {
		(void)snprintf(err, err_len, "cannot write %s", c->port_file);
		r = CVM_E_SYSTEM;
		goto out;
	}
	cvm_daemon_log(CVM_LOG_INFO, "onboarding",
	               "node=%s addr=%s port=%u msg=\"no roots: serving "
	               "Onboard.* until Onboard.Finish\"",
	               c->node_name, cvm_kv(c->listen, kv), (unsigned)port);
	(void)event_base_dispatch(s.base);
	if (!s.finished) {
		(void)snprintf(err, err_len, "stopped before Onboard.Finish");
		r = CVM_E_SYSTEM;
		errno = EINTR;
	}
out:
	cvm_httpd_free(h);
	cvm_daemon_signals_free(sig);
	if (s.base != NULL)
		event_base_free(s.base);
	SSL_CTX_free(ctx);
	free(s.cert_pem);
	cvm_p256_keypair_free(kp);
	return r;
}
