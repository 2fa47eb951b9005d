/* `cvm-kmsd onboard --from HOST:PORT`: a new node gets the roots of a
 * running one (spec §3.6), over mutual RA-TLS: it presents the RA-TLS
 * certificate of its guest agent's identity key (the key the agent recorded
 * in RTMR3, which the source requires of a cvmkit guest), checks the
 * source's own RA-TLS certificate with the same verifier it serves with,
 * asks KMS.GetKmsKey and writes every epoch it receives with its epoch
 * table. The source decides whether this node may have the roots (its KMS
 * policy); a node that already has roots refuses to onboard. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/kms.h>
#include <cvmkit/kmsauth.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tls.h>

#include "daemon.h"
#include "kms.h"

#define OB_TIMEOUT_S 30
#define OB_REPLY_MAX ((size_t)4 * 1024 * 1024)
#define OB_KEY_MAX ((size_t)16 * 1024)

int kms_attested_cert(const char *agent, const struct cvm_p256_keypair *kp, const char *cn, bool server,
                      int64_t lifetime_s, char **pem, char *err, size_t err_len)
{
	struct cvm_ratls_make_opts o;
	struct cvm_ratls_evidence ev;
	struct cvm_va *va = NULL;
	uint8_t rd[64], *vab = NULL;
	size_t va_len = 0, pem_len = 0;
	char why[256] = "";
	int64_t now = (int64_t)time(NULL);
	int r;

	*pem = NULL;
	r = cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, kp, NULL, rd);
	if (r == CVM_OK)
		r = kms_self_attest(agent, rd, &vab, &va_len, err, err_len);
	if (r == CVM_OK && (r = cvm_va_decode(vab, va_len, &va, why, sizeof(why))) != CVM_OK)
		(void)snprintf(err, err_len, "the agent's attestation does not decode: %s", why);
	if (r != CVM_OK)
		goto out;
	memset(&ev, 0, sizeof(ev));
	ev.tee = va->tee;
	ev.quote = va->quote;
	ev.quote_len = va->quote_len;
	ev.events = va->events;
	ev.event_count = va->event_count;
	ev.config = va->config;
	memset(&o, 0, sizeof(o));
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	o.common_name = cn;
	o.not_before = now - 60;
	o.not_after = now + lifetime_s;
	o.client_auth = !server;
	o.server_auth = server;
	o.legacy_tdx = va->tee == CVM_RATLS_TEE_TDX;
	r = cvm_ratls_make(&o, kp, &ev, NULL, NULL, pem, &pem_len);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot make the RA-TLS certificate: %s", cvm_strerror(r));
out:
	cvm_va_free(va);
	free(vab);
	return r;
}

/* identity_cert makes the RA-TLS certificate of the agent's identity key,
 * with evidence from the agent over its binding. */
static int identity_cert(const char *agent, const char *key_path, struct cvm_p256_keypair **kp, char **pem,
                         char *err, size_t err_len)
{
	struct cvm_secret *kpem = NULL;
	char why[256] = "";
	int r;

	*kp = NULL;
	*pem = NULL;
	r = cvm_file_read_key(AT_FDCWD, key_path, OB_KEY_MAX, &kpem, why, sizeof(why));
	if (r == CVM_OK)
		r = cvm_p256_keypair_from_pem((const char *)kpem->p, kpem->len, kp);
	cvm_secret_free(kpem);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "[attestation] identity_key %s: %s", key_path,
		               why[0] != '\0' ? why : cvm_strerror(r));
		return r;
	}
	r = kms_attested_cert(agent, *kp, "cvm-kmsd onboarding", false, 3600, pem, err, err_len);
	if (r != CVM_OK) {
		cvm_p256_keypair_free(*kp);
		*kp = NULL;
	}
	return r;
}

/* fetch_kms_keys runs GetKmsKey against `from`; *body is the JSON answer
 * (wiped and freed by the caller). */
/* source_allowed asks this node's policy whether the source it talks to
 * is a KMS it may take roots from (bootAuth/kms on the source's evidence,
 * checked in the handshake). */
static int source_allowed(SSL *ssl, struct cvm_auth *auth, const char *from, char *err, size_t err_len)
{
	const struct cvm_ratls_verdict *pv = cvm_tls_peer_verdict(ssl);
	struct cvm_ratls_verdict v;
	struct cvm_ratls_info *info = NULL;
	struct cvm_boot_info bi;
	struct cvm_auth_decision d;
	struct app_ident id;
	const char *adv[CVM_AUTH_ADVISORIES_MAX];
	X509 *peer = SSL_get1_peer_certificate(ssl);
	unsigned char *der = NULL;
	char why[256] = "";
	int len, r;

	if (pv == NULL || peer == NULL) {
		X509_free(peer);
		(void)snprintf(err, err_len, "%s presented no verified certificate", from);
		return CVM_E_POLICY;
	}
	v = *pv;
	len = i2d_X509(peer, &der);
	X509_free(peer);
	r = len > 0 ? cvm_ratls_parse(der, (size_t)len, &info, why, sizeof(why)) : CVM_E_CRYPTO;
	OPENSSL_free(der);
	if (r == CVM_OK)
		r = kms_ident_read(info, &id);
	if (r == CVM_OK)
		r = kms_boot_info(&v, info, &id, &bi, adv, why, sizeof(why));
	if (r == CVM_OK)
		r = cvm_auth_decide(auth, CVM_AUTH_KMS, &bi, &d, why, sizeof(why));
	cvm_ratls_info_free(info);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot judge the source %s: %s", from,
		               why[0] != '\0' ? why : cvm_strerror(r));
		return r;
	}
	if (!d.allowed) {
		(void)snprintf(err, err_len, "this node's policy does not allow the source %s as a KMS: %s",
		               from, d.reason);
		return CVM_E_POLICY;
	}
	return CVM_OK;
}

static int fetch_kms_keys(const char *from, struct cvm_ratls_verifier *v, struct cvm_auth *auth,
                          const char *cert, const struct cvm_p256_keypair *kp, char **body, size_t *body_len,
                          char *err, size_t err_len)
{
	struct cvm_tls_target t;
	char path[CVM_TLS_PREFIX_MAX + 32];
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	uint8_t *reply = NULL;
	size_t len = 0;
	int fd = -1, r, status = 0;

	*body = NULL;
	*body_len = 0;
	if (cvm_tls_target_parse(from, &t) != CVM_OK) {
		(void)snprintf(err, err_len, "'%s' is not HOST:PORT or https://HOST[:PORT][/PATH]", from);
		return CVM_E_INVAL;
	}
	(void)snprintf(path, sizeof(path), "%s/prpc/KMS.GetKmsKey?json", t.prefix);
	r = cvm_tls_client_ctx_new(v, cert, kp, &ctx);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot make the TLS context: %s", cvm_strerror(r));
		return r;
	}
	r = CVM_E_UPSTREAM;
	fd = cvm_tls_dial(&t, OB_TIMEOUT_S, err, err_len);
	if (fd < 0)
		goto out;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
		goto out;
	if (SSL_connect(ssl) != 1) {
		const char *pe = cvm_tls_peer_error(ssl);

		(void)snprintf(
		    err, err_len, "TLS with %s failed: %s", from,
		    pe != NULL ? pe : "the handshake did not complete (it refused this node's certificate?)");
		r = pe != NULL ? CVM_E_POLICY : CVM_E_UPSTREAM;
		goto out;
	}
	r = source_allowed(ssl, auth, from, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_tls_post_json(ssl, t.host, path, "{}")
	        ? cvm_tls_read_reply(ssl, OB_REPLY_MAX, &status, &reply, &len)
	        : CVM_E_SYSTEM;
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "no answer to GetKmsKey from %s: %s", from, cvm_strerror(r));
		r = CVM_E_UPSTREAM;
		goto out;
	}
	if (status != 200) {
		(void)snprintf(err, err_len, "%s refused GetKmsKey (HTTP %d): %.300s", from, status,
		               (const char *)reply);
		r = status == 401 || status == 403 ? CVM_E_POLICY : CVM_E_UPSTREAM;
		goto out;
	}
	*body = (char *)reply;
	*body_len = len;
	reply = NULL;
	r = CVM_OK;
out:
	if (reply != NULL)
		cvm_freezero(reply, len);
	if (ssl != NULL) {
		(void)SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	SSL_CTX_free(ctx);
	if (fd >= 0)
		(void)close(fd);
	ERR_clear_error();
	return r;
}

/* import writes every epoch of the answer and the epoch table. */
static int import(const char *root_dir, struct cvm_tpm *tpm, const char *body, size_t body_len, size_t *count,
                  char *err, size_t err_len)
{
	struct cvm_kms_epochs t;
	json_error_t jerr;
	json_t *o, *roots, *ep, *x;
	uint8_t k256[CVM_K256_SECKEY_LEN];
	size_t i;
	int r = CVM_E_FORMAT;

	*count = 0;
	memset(&t, 0, sizeof(t));
	o = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
	roots = json_object_get(o, "roots");
	ep = json_object_get(o, "epochs");
	if (!json_is_array(roots) || json_array_size(roots) == 0 || json_array_size(roots) > KMS_EPOCHS_MAX ||
	    !json_is_object(ep) || !json_is_integer(json_object_get(ep, "current")) ||
	    !json_is_array(json_object_get(ep, "epochs")) ||
	    json_array_size(json_object_get(ep, "epochs")) > CVM_KMS_EPOCHS_MAX) {
		(void)snprintf(err, err_len,
		               "the answer has no cvmkit roots and epoch table (a dstack KMS? "
		               "onboarding from dstack is not supported)");
		goto out;
	}
	t.current = (uint32_t)json_integer_value(json_object_get(ep, "current"));
	json_array_foreach(json_object_get(ep, "epochs"), i, x)
	{
		const char *st = json_string_value(json_object_get(x, "state"));
		json_int_t n = json_integer_value(json_object_get(x, "epoch"));

		if (st == NULL || n < 0 || n > CVM_KMS_EPOCH_MAX) {
			(void)snprintf(err, err_len, "the answer's epoch table is malformed");
			goto out;
		}
		t.e[t.count].epoch = (uint32_t)n;
		t.e[t.count].until = (int64_t)json_integer_value(json_object_get(x, "until"));
		t.e[t.count].state = strcmp(st, "current") == 0 ? CVM_KMS_EPOCH_CURRENT
		                     : strcmp(st, "grace") == 0 ? CVM_KMS_EPOCH_GRACE
		                                                : CVM_KMS_EPOCH_REVOKED;
		t.count++;
	}
	json_array_foreach(roots, i, x)
	{
		struct cvm_kms_root_files f;
		const char *ck = json_string_value(json_object_get(x, "ca_key")),
		           *cc = json_string_value(json_object_get(x, "ca_cert")),
		           *kk = json_string_value(json_object_get(x, "k256_key")),
		           *tk = json_string_value(json_object_get(x, "tmp_ca_key")),
		           *tc = json_string_value(json_object_get(x, "tmp_ca_cert"));
		json_int_t n = json_integer_value(json_object_get(x, "epoch"));

		if (ck == NULL || cc == NULL || kk == NULL || tk == NULL || tc == NULL || n < 0 ||
		    n > CVM_KMS_EPOCH_MAX || strlen(kk) != (size_t)2 * CVM_K256_SECKEY_LEN ||
		    cvm_hex_decode_exact(kk, strlen(kk), k256, sizeof(k256)) != CVM_OK) {
			(void)snprintf(err, err_len, "root %zu of the answer is malformed", i);
			goto out;
		}
		memset(&f, 0, sizeof(f));
		f.epoch = (uint32_t)n;
		f.ca_key_pem = (const uint8_t *)ck;
		f.ca_key_pem_len = strlen(ck);
		f.ca_cert_pem = cc;
		f.k256 = k256;
		if (tk[0] != '\0' && tc[0] != '\0') {
			f.tmp_ca_key_pem = (const uint8_t *)tk;
			f.tmp_ca_key_pem_len = strlen(tk);
			f.tmp_ca_cert_pem = tc;
		}
		r = cvm_kms_roots_import_tpm(root_dir, &f, tpm, err, err_len);
		cvm_wipe(k256, sizeof(k256));
		if (r != CVM_OK)
			goto out;
		(*count)++;
	}
	r = cvm_kms_epochs_save(root_dir, &t, err, err_len);
out:
	cvm_wipe(k256, sizeof(k256));
	json_decref(o);
	return r;
}

int kms_onboard(const char *from, const char *root_dir, const char *agent, const char *identity_key,
                struct cvm_ratls_verifier *v, struct cvm_auth *auth, struct cvm_tpm *tpm, char *err,
                size_t err_len)
{
	struct cvm_kms_roots *existing = NULL;
	struct cvm_kms_epochs t;
	struct cvm_p256_keypair *kp = NULL;
	char *cert = NULL, *body = NULL;
	size_t body_len = 0, count = 0;
	int r;

	/* Never onboard over roots: a node has one set. */
	if (cvm_kms_epochs_load(root_dir, &t, err, err_len) == CVM_OK &&
	    cvm_kms_roots_load_tpm(root_dir, t.current, tpm, &existing, err, err_len) == CVM_OK &&
	    cvm_kms_roots_has(existing, CVM_KMS_ROOT_CA_KEY)) {
		cvm_kms_roots_free(existing);
		(void)snprintf(err, err_len,
		               "%s already holds roots: a node onboards once, into an empty folder",
		               root_dir);
		return CVM_E_POLICY;
	}
	cvm_kms_roots_free(existing);
	err[0] = '\0';
	if (agent[0] == '\0' || identity_key[0] == '\0') {
		(void)snprintf(err, err_len,
		               "onboarding needs [attestation] agent and identity_key: the node presents "
		               "its agent's identity");
		return CVM_E_INVAL;
	}
	if (auth == NULL) {
		(void)snprintf(err, err_len,
		               "onboarding needs an [auth] policy to judge the source KMS (type = none "
		               "trusts no source)");
		return CVM_E_POLICY;
	}
	r = identity_cert(agent, identity_key, &kp, &cert, err, err_len);
	if (r == CVM_OK)
		r = fetch_kms_keys(from, v, auth, cert, kp, &body, &body_len, err, err_len);
	if (r == CVM_OK)
		r = import(root_dir, tpm, body, body_len, &count, err, err_len);
	if (r == CVM_OK)
		cvm_daemon_log(CVM_LOG_INFO, "onboarded", "from=%s epochs=%zu", from, count);
	if (body != NULL)
		cvm_freezero(body, body_len);
	free(cert);
	cvm_p256_keypair_free(kp);
	return r;
}
