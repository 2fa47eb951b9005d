/* The KMS key provider (spec §3.4, §5.2): at boot the agent gets the app's
 * keys from a KMS of its list, over mutual RA-TLS, and records which KMS
 * gave them in RTMR3.
 *
 * The order of the runtime events is dstack's, with cvmkit's identity in
 * between: system-preparing, app-id, compose-hash, instance-id,
 * boot-mr-done (agent.c, measure_app); then the agent's identity key
 * (cvmkit.agent-key, identity.c), so that the KMS sees a certificate key
 * only the system could have; then GetAppKey with the RA-TLS certificate
 * of that key (no temp CA: the KMS requires the agent's key of a cvmkit
 * guest); then os-image-hash (the KMS's answer, as dstack records it: a
 * claim, not a measurement), key-provider {"name":"kms","id":hex(root CA
 * SPKI)} and system-ready.
 *
 * The KMS is checked before anything is sent: its RA-TLS certificate must
 * verify with [kms]'s collateral and policy, its certificate must be
 * issued by the root CA its answer names, and that CA must be the one
 * app-compose pins (key_provider_id) when it pins one. The keys live in
 * memory only: a restart of the agent within the boot asks again (the same
 * identity gets the same keys) and checks that the KMS is the one RTMR3
 * recorded. The LUKS passphrase and the decrypted environment go to the
 * files [kms] names, mode 0600. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/csr.h>
#include <cvmkit/encoding.h>
#include <cvmkit/envcrypt.h>
#include <cvmkit/file.h>
#include <cvmkit/kdf.h>
#include <cvmkit/ratls.h>
#include <cvmkit/secret.h>
#include <cvmkit/tls.h>

#include "agent.h"
#include "attest.h"
#include "daemon.h"
#include "rpc.h"

#define KMS_REPLY_MAX ((size_t)256 * 1024)
#define KMS_ENV_FILE_MAX ((size_t)1024 * 1024)

/* ---- which KMS list ------------------------------------------------------- */

/* add_url appends one URL to cfg.kms_urls' parsed list. */
static int add_url(struct agent *a, const char *u, size_t n, char *err, size_t err_len)
{
	if (a->kms_url_count == AGENT_KMS_URLS_MAX) {
		(void)snprintf(err, err_len, "more than %u KMS URLs", AGENT_KMS_URLS_MAX);
		return CVM_E_TOO_LARGE;
	}
	if (n == 0 || n >= sizeof(a->kms_urls[0])) {
		(void)snprintf(err, err_len, "a KMS URL is empty or over %zu bytes",
		               sizeof(a->kms_urls[0]) - 1);
		return CVM_E_INVAL;
	}
	memcpy(a->kms_urls[a->kms_url_count], u, n);
	a->kms_urls[a->kms_url_count][n] = '\0';
	if (cvm_tls_target_parse(a->kms_urls[a->kms_url_count], &(struct cvm_tls_target){0}) != CVM_OK) {
		(void)snprintf(err, err_len, "'%s' is not a KMS URL (https://HOST[:PORT] or HOST:PORT)",
		               a->kms_urls[a->kms_url_count]);
		return CVM_E_INVAL;
	}
	a->kms_url_count++;
	return CVM_OK;
}

int agent_kms_settle(struct agent *a, char *err, size_t err_len)
{
	json_t *o = NULL, *v, *urls = NULL;
	json_error_t jerr;
	const char *kp;
	bool wanted;
	int r = CVM_OK;

	a->kms_url_count = 0;
	o = json_loadb(a->app_compose, a->app_compose_len, 0, &jerr);
	kp = json_string_value(json_object_get(o, "key_provider"));
	wanted = json_is_true(json_object_get(o, "kms_enabled")) || (kp != NULL && strcmp(kp, "kms") == 0);
	v = json_object_get(o, "key_provider_id");
	a->kms_pin_len = 0;
	if (json_is_string(v) && json_string_length(v) > 0) {
		size_t n = json_string_length(v);

		if (n % 2 != 0 || n / 2 > sizeof(a->kms_pin) ||
		    cvm_hex_decode_exact(json_string_value(v), n, a->kms_pin, n / 2) != CVM_OK) {
			(void)snprintf(err, err_len,
			               "app-compose's key_provider_id is not the hex of a public key");
			r = CVM_E_FORMAT;
			goto out;
		}
		a->kms_pin_len = n / 2;
	}
	if (a->cfg.kms_urls[0] != '\0') {
		const char *p = a->cfg.kms_urls;

		while (r == CVM_OK && *p != '\0') {
			size_t n = strcspn(p, ", ");

			if (n > 0)
				r = add_url(a, p, n, err, err_len);
			p += n;
			p += strspn(p, ", ");
		}
	} else if (wanted && a->sys_config_text != NULL) {
		json_t *sc = json_loads(a->sys_config_text, 0, &jerr);
		size_t i;

		urls = json_object_get(sc, "kms_urls");
		json_incref(urls);
		json_decref(sc);
		json_array_foreach(urls, i, v)
		{
			if (!json_is_string(v) || (r = add_url(a, json_string_value(v), json_string_length(v),
			                                       err, err_len)) != CVM_OK) {
				if (r == CVM_OK) {
					(void)snprintf(err, err_len,
					               "sys-config's kms_urls[%zu] is not a string", i);
					r = CVM_E_FORMAT;
				}
				goto out;
			}
		}
	}
	if (r != CVM_OK)
		goto out;
	a->kms_mode = a->kms_url_count > 0;
	if (wanted && !a->kms_mode) {
		(void)snprintf(
		    err, err_len,
		    "app-compose asks for KMS keys (kms_enabled or key_provider \"kms\") but no KMS "
		    "is named: set [kms] urls, --kms or sys-config's kms_urls");
		r = CVM_E_INVAL;
	}
out:
	json_decref(urls);
	json_decref(o);
	return r;
}

/* ---- one GetAppKey -------------------------------------------------------- */

/* struct kms_answer is what a KMS answered, checked. */
struct kms_answer {
	struct cvm_appkeys *keys;
	uint8_t os_image_hash[32];
	bool has_os_image_hash;
	uint64_t epoch;
};

/* spki_of_pem writes the SubjectPublicKeyInfo DER of the first
 * certificate of the PEM text `pem` (`len` bytes) into a new buffer. */
static int spki_of_pem(const char *pem, size_t len, uint8_t **out, size_t *out_len)
{
	struct cvm_cert **certs = NULL;
	size_t n = 0;
	int r = cvm_certs_parse_pem((const uint8_t *)pem, len, &certs, &n);

	if (r == CVM_OK)
		r = n > 0 ? cvm_cert_spki(certs[0], out, out_len) : CVM_E_FORMAT;
	cvm_certs_free(certs, n);
	return r;
}

/* issued_by is true when `leaf` was issued by the key whose SPKI DER is
 * `spki` (`len` bytes). */
static bool issued_by(const uint8_t *spki, size_t len, X509 *leaf)
{
	const unsigned char *p = spki;
	EVP_PKEY *key = spki != NULL && len > 0 ? d2i_PUBKEY(NULL, &p, (long)len) : NULL;
	bool ok = key != NULL && leaf != NULL && p == spki + len && X509_verify(leaf, key) == 1;

	EVP_PKEY_free(key);
	ERR_clear_error();
	return ok;
}

/* hex_secret decodes a 32-byte hex field into a new secret; `optional`
 * lets it be "" (then *out stays NULL). */
static int hex_secret(json_t *o, const char *name, bool optional, struct cvm_secret **out)
{
	json_t *v = json_object_get(o, name);
	size_t n = json_string_length(v);

	*out = NULL;
	if (!json_is_string(v))
		return CVM_E_FORMAT;
	if (n == 0 && optional)
		return CVM_OK;
	if (n != 64)
		return CVM_E_FORMAT;
	*out = cvm_secret_new(32);
	if (*out == NULL)
		return CVM_E_NOMEM;
	if (cvm_hex_decode_exact(json_string_value(v), 64, (*out)->p, 32) != CVM_OK) {
		cvm_secret_free(*out);
		*out = NULL;
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

/* read_answer checks a GetAppKey answer against the server's certificate
 * (issued by the CA the answer names) and the pin, and builds the keys. */
static int read_answer(struct agent *a, X509 *leaf, const char *url, const char *body, size_t len,
                       struct kms_answer *ans, char *err, size_t err_len)
{
	struct cvm_appkeys *k = NULL;
	json_t *o = NULL, *v;
	json_error_t jerr;
	const char *what = "";
	int r = CVM_E_FORMAT;

	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o)) {
		(void)snprintf(err, err_len, "%s answered GetAppKey with something that is not a JSON object",
		               url);
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	k->key_provider = CVM_KEY_PROVIDER_KMS;
	what = "disk_crypt_key";
	if ((r = hex_secret(o, "disk_crypt_key", false, &k->disk_crypt_key)) != CVM_OK)
		goto bad;
	what = "env_crypt_key";
	if ((r = hex_secret(o, "env_crypt_key", true, &k->env_crypt_key)) != CVM_OK)
		goto bad;
	what = "k256_key";
	if ((r = hex_secret(o, "k256_key", false, &k->k256_key)) != CVM_OK)
		goto bad;
	what = "k256_signature";
	v = json_object_get(o, "k256_signature");
	if (!json_is_string(v) || json_string_length(v) != (size_t)2 * CVM_K256_RSIG_LEN ||
	    cvm_hex_decode_exact(json_string_value(v), (size_t)2 * CVM_K256_RSIG_LEN, k->k256_signature,
	                         CVM_K256_RSIG_LEN) != CVM_OK) {
		r = CVM_E_FORMAT;
		goto bad;
	}
	k->k256_signature_len = CVM_K256_RSIG_LEN;
	v = json_object_get(o, "gateway_app_id");
	k->gateway_app_id = strdup(json_is_string(v) ? json_string_value(v) : "");
	what = "ca_cert";
	v = json_object_get(o, "ca_cert");
	k->ca_cert = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
	k->kms_url = strdup(url);
	if (k->gateway_app_id == NULL || k->kms_url == NULL || (json_is_string(v) && k->ca_cert == NULL)) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (k->ca_cert == NULL || spki_of_pem(k->ca_cert, strlen(k->ca_cert), &k->key_provider_id,
	                                      &k->key_provider_id_len) != CVM_OK) {
		r = CVM_E_FORMAT;
		goto bad;
	}
	/* the KMS we talked to holds that CA: its certificate was issued by it */
	if (!issued_by(k->key_provider_id, k->key_provider_id_len, leaf)) {
		(void)snprintf(err, err_len,
		               "%s's TLS certificate was not issued by the root CA its answer names: refused",
		               url);
		r = CVM_E_MISMATCH;
		goto out;
	}
	if (a->kms_pin_len != 0 && (a->kms_pin_len != k->key_provider_id_len ||
	                            memcmp(a->kms_pin, k->key_provider_id, a->kms_pin_len) != 0)) {
		(void)snprintf(err, err_len,
		               "%s's root CA is not the one app-compose pins (key_provider_id): refused",
		               url);
		r = CVM_E_MISMATCH;
		goto out;
	}
	v = json_object_get(o, "os_image_hash");
	/* the KMS's claim of the image (from the vm_config the host gave);
	 * none when the host named none (all zero) */
	ans->has_os_image_hash =
	    json_is_string(v) && json_string_length(v) == 64 &&
	    cvm_hex_decode_exact(json_string_value(v), 64, ans->os_image_hash, 32) == CVM_OK &&
	    !cvm_ct_equal(ans->os_image_hash, (const uint8_t[32]){0}, 32);
	v = json_object_get(o, "epoch");
	ans->epoch = json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : 0;
	ans->keys = k;
	k = NULL;
	r = CVM_OK;
	goto out;
bad:
	(void)snprintf(err, err_len, "%s's GetAppKey answer has no valid %s", url, what);
out:
	cvm_appkeys_free(k);
	json_decref(o);
	ERR_clear_error();
	return r;
}

/* issued_by_pin is true when app-compose pins no KMS root CA, or when the
 * KMS's certificate was issued by the pinned one: checked before anything
 * is asked, so that no other KMS is even asked for the keys. */
static bool issued_by_pin(const struct agent *a, SSL *ssl)
{
	X509 *leaf;
	bool ok;

	if (a->kms_pin_len == 0)
		return true;
	leaf = SSL_get1_peer_certificate(ssl);
	ok = issued_by(a->kms_pin, a->kms_pin_len, leaf);
	X509_free(leaf);
	return ok;
}

static bool is_address(const char *host)
{
	uint8_t buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* kms_call runs `method` with `body` against the KMS `url` over the
 * client context: the KMS's certificate verified in the handshake, on a
 * simulated TEE only when allowed, issued by the pinned root CA when
 * app-compose pins one (else nothing is sent); a 200 answer's body goes to
 * *reply (wiped and freed by the caller) and the KMS's certificate to
 * *leaf. */
static int kms_call(struct agent *a, const char *url, const char *method, const char *body, uint8_t **reply,
                    size_t *reply_len, X509 **leaf, char *err, size_t err_len)
{
	const struct cvm_ratls_verdict *vd;
	struct cvm_tls_target t;
	char path[CVM_TLS_PREFIX_MAX + 64];
	SSL *ssl = NULL;
	int fd, r, status = 0;

	*reply = NULL;
	*reply_len = 0;
	*leaf = NULL;
	if (cvm_tls_target_parse(url, &t) != CVM_OK) {
		(void)snprintf(err, err_len, "'%s' is not a KMS URL", url);
		return CVM_E_INVAL;
	}
	(void)snprintf(path, sizeof(path), "%s/prpc/KMS.%s?json", t.prefix, method);
	fd = cvm_tls_dial(&t, (unsigned)a->cfg.kms_timeout, err, err_len);
	if (fd < 0)
		return CVM_E_UPSTREAM;
	r = CVM_E_UPSTREAM;
	ssl = SSL_new(a->kms_ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
		goto out;
	/* SNI for a name (a gateway in front of the KMS routes by it), none for
	 * an address (RFC 6066 forbids it) */
	if (!is_address(t.host) && SSL_set_tlsext_host_name(ssl, t.host) != 1)
		goto out;
	if (SSL_connect(ssl) != 1) {
		const char *pe = cvm_tls_peer_error(ssl);

		(void)snprintf(
		    err, err_len, "TLS with %s failed: %s", url,
		    pe != NULL ? pe : "the handshake did not complete (did it refuse our certificate?)");
		r = pe != NULL ? CVM_E_POLICY : CVM_E_UPSTREAM;
		goto out;
	}
	vd = cvm_tls_peer_verdict(ssl);
	if (vd == NULL) {
		(void)snprintf(err, err_len, "%s presented no verified certificate: refused", url);
		r = CVM_E_POLICY;
		goto out;
	}
	if (vd->simulated && a->cfg.simulator[0] == '\0' && !a->cfg.kms_allow_simulated) {
		(void)snprintf(err, err_len,
		               "%s runs on a simulated TEE: refused (set [kms] allow_simulated for tests)",
		               url);
		r = CVM_E_POLICY;
		goto out;
	}
	if (!issued_by_pin(a, ssl)) {
		(void)snprintf(err, err_len,
		               "%s's root CA is not the one app-compose pins (key_provider_id): refused, "
		               "nothing asked",
		               url);
		r = CVM_E_MISMATCH;
		goto out;
	}
	if (!cvm_tls_post_json(ssl, t.host, path, body)) {
		(void)snprintf(err, err_len, "cannot send %s to %s", method, url);
		goto out;
	}
	r = cvm_tls_read_reply(ssl, KMS_REPLY_MAX, &status, reply, reply_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "no answer to %s from %s: %s", method, url, cvm_strerror(r));
		r = CVM_E_UPSTREAM;
		goto out;
	}
	if (status != 200) {
		/* the KMS's reason, never secret, cut short */
		(void)snprintf(err, err_len, "%s refused %s (HTTP %d): %.300s", url, method, status,
		               (const char *)*reply);
		r = status >= 400 && status < 500 ? CVM_E_POLICY : CVM_E_UPSTREAM;
		goto out;
	}
	*leaf = SSL_get1_peer_certificate(ssl);
	r = *leaf != NULL ? CVM_OK : CVM_E_UPSTREAM;
out:
	if (r != CVM_OK && *reply != NULL) {
		cvm_freezero(*reply, *reply_len);
		*reply = NULL;
		*reply_len = 0;
	}
	if (ssl != NULL) {
		(void)SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	(void)close(fd);
	ERR_clear_error();
	return r;
}

/* KMS_CERT_LIFETIME_S: the identity certificate the agent presents to a
 * KMS; the context is renewed a tenth before it ends. */
#define KMS_CERT_LIFETIME_S 3600

/* client_ctx makes or renews the client context: the verifier of KMSs
 * ([kms]'s collateral, roots and policy) and the RA-TLS certificate of the
 * identity key with the TEE's evidence of now (RTMR3 holds the key). */
static int client_ctx(struct agent *a, char *err, size_t err_len)
{
	struct cvm_daemon_verifier_conf vc;
	struct cvm_cert_template tpl;
	SSL_CTX *ctx = NULL;
	char *pem = NULL;
	size_t pem_len = 0;
	int64_t now = (int64_t)time(NULL);
	int r = CVM_OK;

	if (a->kms_ctx != NULL && now < a->kms_ctx_until)
		return CVM_OK;
	if (a->kms_verifier == NULL) {
		memset(&vc, 0, sizeof(vc));
		vc.section = "[kms]";
		vc.policy = a->cfg.kms_policy;
		vc.collateral = a->cfg.kms_collateral;
		vc.intel_root = a->cfg.kms_intel_root;
		vc.amd_root = a->cfg.kms_amd_root;
		vc.cache_entries = 8;
		r = cvm_daemon_verifier_new(&vc, &a->kms_verifier, err, err_len);
		if (r != CVM_OK)
			return r;
	}
	cvm_cert_template_init(&tpl);
	tpl.common_name = "cvm-agentd";
	tpl.organization = "cvmkit";
	tpl.not_before = now - 300;
	tpl.not_after = now + KMS_CERT_LIFETIME_S;
	tpl.usage_client_auth = true;
	r = agent_ratls_cert(a, &tpl, a->identity, true, NULL, 0, NULL, NULL, &pem, &pem_len, err, err_len);
	if (r == CVM_OK && (r = cvm_tls_client_ctx_new(a->kms_verifier, pem, a->identity, &ctx)) != CVM_OK)
		(void)snprintf(err, err_len, "cannot make the TLS context for the KMS: %s", cvm_strerror(r));
	free(pem);
	if (r != CVM_OK)
		return r;
	SSL_CTX_free(a->kms_ctx);
	a->kms_ctx = ctx;
	a->kms_ctx_until = now + KMS_CERT_LIFETIME_S * 9 / 10;
	return CVM_OK;
}

void agent_kms_close(struct agent *a)
{
	SSL_CTX_free(a->kms_ctx);
	a->kms_ctx = NULL;
	cvm_ratls_verifier_free(a->kms_verifier);
	a->kms_verifier = NULL;
}

/* fetch asks the KMS list in order; the first that answers with keys that
 * pass the checks gives them. */
static int fetch(struct agent *a, struct kms_answer *ans, char *err, size_t err_len)
{
	json_t *req = NULL;
	char *body = NULL, why[512] = "", k[CVM_KV_MAX];
	int r;

	r = client_ctx(a, err, err_len);
	if (r != CVM_OK)
		return r;
	req = json_pack("{s:i, s:s}", "api_version", 1, "vm_config", a->vm_config);
	body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
		return CVM_E_NOMEM;
	r = CVM_E_UPSTREAM;
	for (size_t i = 0; i < a->kms_url_count; i++) {
		uint8_t *reply = NULL;
		size_t reply_len = 0;
		X509 *leaf = NULL;

		memset(ans, 0, sizeof(*ans));
		r = kms_call(a, a->kms_urls[i], "GetAppKey", body, &reply, &reply_len, &leaf, why,
		             sizeof(why));
		if (r == CVM_OK)
			r = read_answer(a, leaf, a->kms_urls[i], (const char *)reply, reply_len, ans, why,
			                sizeof(why));
		if (reply != NULL)
			cvm_freezero(reply, reply_len);
		X509_free(leaf);
		if (r == CVM_OK) {
			a->kms_used = i;
			break;
		}
		cvm_daemon_log(CVM_LOG_WARN, "kms_failed", "url=%s error=%s%s", a->kms_urls[i],
		               cvm_kv(why, k), i + 1 < a->kms_url_count ? " next=yes" : "");
	}
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "no KMS of the %zu listed gave the app keys; the last: %s",
		               a->kms_url_count, why);
	free(body);
	return r;
}

/* ---- SignCert -------------------------------------------------------------- */

/* attest_key makes the VersionedAttestation of `kp` (report data: dstack's
 * RA-TLS binding of its SPKI) under the runtime log's shared lock. */
static int attest_key(struct agent *a, const struct cvm_p256_keypair *kp, uint8_t **va, size_t *va_len)
{
	struct cvm_tee_evidence ev;
	uint8_t rd[64];
	int r;

	memset(&ev, 0, sizeof(ev));
	r = cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, kp, NULL, rd);
	if (r != CVM_OK)
		return r;
	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK)
		return r;
	r = cvm_tee_quote(a->tee, rd, &ev);
	if (r == CVM_OK)
		r = agent_va_encode(a, ev.platform, ev.data, ev.data_len, rd, 0, va, va_len);
	agent_rtlog_unlock(&a->rt);
	cvm_tee_evidence_cleanup(&ev);
	return r;
}

/* sign_body makes SignCert's request for `kp`: a V2 CSR with `p` and the
 * key's attestation, signed by the key. */
static int sign_body(struct agent *a, const struct cvm_p256_keypair *kp, const struct cvm_csr_params *p,
                     char **out, char *err, size_t err_len)
{
	uint8_t *va = NULL, *csr = NULL, *sig = NULL;
	size_t va_len = 0, csr_len = 0, sig_len = 0;
	json_t *o = NULL;
	int r;

	*out = NULL;
	r = attest_key(a, kp, &va, &va_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot attest the certificate's key: %s", cvm_strerror(r));
		return r;
	}
	r = cvm_csr_make_signed(p, kp, va, va_len, &csr, &csr_len, &sig, &sig_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot make the certificate request: %s", cvm_strerror(r));
		goto out;
	}
	o = json_pack("{s:i, s:o, s:o}", "api_version", 2, "csr", cvm_json_hex(csr, csr_len), "signature",
	              cvm_json_hex(sig, sig_len));
	*out = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	r = *out != NULL ? CVM_OK : CVM_E_NOMEM;
out:
	json_decref(o);
	free(va);
	free(csr);
	free(sig);
	return r;
}

/* chain_of reads SignCert's answer: {"certificate_chain": [PEM, ...]},
 * one to eight certificates, the first for `kp`. */
static int chain_of(const struct cvm_p256_keypair *kp, const char *url, const uint8_t *reply, size_t len,
                    json_t **out, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *o = json_loadb((const char *)reply, len, JSON_REJECT_DUPLICATES, &jerr), *arr, *v;
	uint8_t *want = NULL, *got = NULL;
	size_t want_len = 0, got_len = 0, i;
	int r = CVM_E_FORMAT;

	*out = NULL;
	arr = json_object_get(o, "certificate_chain");
	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 8)
		goto bad;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v))
			goto bad;
	}
	/* the first certificate is for our key */
	v = json_array_get(arr, 0);
	if (spki_of_pem(json_string_value(v), json_string_length(v), &got, &got_len) != CVM_OK ||
	    cvm_p256_keypair_spki(kp, &want, &want_len) != CVM_OK || got_len != want_len ||
	    memcmp(got, want, got_len) != 0)
		goto bad;
	*out = json_incref(arr);
	r = CVM_OK;
	goto out;
bad:
	(void)snprintf(err, err_len, "%s's SignCert answer is not a certificate chain for the key asked",
	               url);
out:
	free(want);
	free(got);
	json_decref(o);
	return r;
}

int agent_kms_sign(struct agent *a, const struct cvm_p256_keypair *kp, const struct cvm_csr_params *p,
                   json_t **chain, char *err, size_t err_len)
{
	char *body = NULL, why[512] = "", k[CVM_KV_MAX];
	int r;

	*chain = NULL;
	if (a->tee_info.platform != CVM_TEE_PLATFORM_TDX) {
		(void)snprintf(err, err_len, "KMS-signed certificates are implemented for TDX only");
		return CVM_E_UNSUPPORTED;
	}
	r = client_ctx(a, err, err_len);
	if (r == CVM_OK)
		r = sign_body(a, kp, p, &body, err, err_len);
	if (r != CVM_OK)
		return r;
	/* the KMS that gave the keys first, then the others */
	r = CVM_E_UPSTREAM;
	for (size_t j = 0; j < a->kms_url_count; j++) {
		size_t i = (a->kms_used + j) % a->kms_url_count;
		uint8_t *reply = NULL;
		size_t reply_len = 0;
		X509 *leaf = NULL;

		r = kms_call(a, a->kms_urls[i], "SignCert", body, &reply, &reply_len, &leaf, why,
		             sizeof(why));
		/* the same root as the keys: the KMS's certificate is issued by it */
		if (r == CVM_OK && !issued_by(a->keys->key_provider_id, a->keys->key_provider_id_len, leaf)) {
			(void)snprintf(why, sizeof(why), "%s is not a KMS of the root that gave the keys",
			               a->kms_urls[i]);
			r = CVM_E_MISMATCH;
		}
		if (r == CVM_OK)
			r = chain_of(kp, a->kms_urls[i], reply, reply_len, chain, why, sizeof(why));
		if (reply != NULL)
			cvm_freezero(reply, reply_len);
		X509_free(leaf);
		if (r == CVM_OK)
			break;
		cvm_daemon_log(CVM_LOG_WARN, "kms_failed", "url=%s method=SignCert error=%s", a->kms_urls[i],
		               cvm_kv(why, k));
	}
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "no KMS signed the certificate; the last: %s", why);
	free(body);
	return r;
}

/* ---- the parts of the guest that use the keys ------------------------------ */

int agent_kms_write_disk_key(struct agent *a, char *err, size_t err_len)
{
	struct cvm_secret *hex;
	int r;

	if (a->cfg.kms_disk_key_file[0] == '\0')
		return CVM_OK;
	hex = cvm_secret_new(65);
	if (hex == NULL)
		return CVM_E_NOMEM;
	/* dstack's LUKS passphrase: the key's lowercase hex */
	cvm_hex_encode(a->keys->disk_crypt_key->p, 32, (char *)hex->p);
	r = cvm_file_write(a->cfg.kms_disk_key_file, hex->p, 64, 0600);
	cvm_secret_free(hex);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot write the disk key to %s: %s", a->cfg.kms_disk_key_file,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
	return r;
}

/* allowed_envs reads app-compose's allowed_envs; *has is false when it is
 * absent (then every name is kept, as dstack does). */
static int allowed_envs(struct agent *a, const char ***names, size_t *count, bool *has, json_t **keep)
{
	json_error_t jerr;
	json_t *o = json_loadb(a->app_compose, a->app_compose_len, 0, &jerr), *arr, *v;
	size_t i;

	*names = NULL;
	*count = 0;
	*has = false;
	*keep = o;
	arr = json_object_get(o, "allowed_envs");
	if (arr == NULL)
		return CVM_OK;
	if (!json_is_array(arr))
		return CVM_E_FORMAT;
	*has = true;
	*names = calloc(json_array_size(arr) + 1, sizeof(**names));
	if (*names == NULL)
		return CVM_E_NOMEM;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v))
			return CVM_E_FORMAT;
		(*names)[(*count)++] = json_string_value(v);
	}
	return CVM_OK;
}

int agent_kms_write_env(struct agent *a, char *err, size_t err_len)
{
	struct cvm_secret *plain = NULL, *shell = NULL;
	struct cvm_env_list *list = NULL;
	struct cvm_env_allowed allow;
	const char **names = NULL;
	json_t *compose = NULL;
	uint8_t *blob = NULL;
	size_t blob_len = 0, count = 0;
	bool has = false;
	char why[256] = "";
	int r;

	if (a->cfg.kms_env_file[0] == '\0' || a->cfg.kms_encrypted_env[0] == '\0')
		return CVM_OK;
	if (access(a->cfg.kms_encrypted_env, F_OK) != 0)
		return CVM_OK; /* the app has no encrypted environment */
	if (a->keys->env_crypt_key == NULL) {
		(void)snprintf(err, err_len, "%s is there but the key provider gave no env key",
		               a->cfg.kms_encrypted_env);
		return CVM_E_POLICY;
	}
	r = cvm_file_read(a->cfg.kms_encrypted_env, KMS_ENV_FILE_MAX, &blob, &blob_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read %s: %s", a->cfg.kms_encrypted_env, cvm_strerror(r));
		goto out;
	}
	r = cvm_envcrypt_open(a->keys->env_crypt_key, blob, blob_len, &plain);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len,
		               "%s does not open with this app's env key (%s): it was sealed for another app "
		               "or KMS, or it was altered",
		               a->cfg.kms_encrypted_env, cvm_strerror(r));
		goto out;
	}
	r = allowed_envs(a, &names, &count, &has, &compose);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "app-compose's allowed_envs is not an array of names");
		goto out;
	}
	allow.names = names;
	allow.count = count;
	r = cvm_env_list_from_json((const char *)plain->p, plain->len, has ? &allow : NULL, &list, why,
	                           sizeof(why));
	if (r == CVM_OK)
		r = cvm_env_list_format_shell(list, &shell);
	if (r == CVM_OK)
		r = cvm_file_write(a->cfg.kms_env_file, shell->p, shell->len, 0600);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "the decrypted environment: %s",
		               why[0] != '\0' ? why : cvm_strerror(r));
out:
	cvm_secret_free(shell);
	cvm_env_list_free(list);
	cvm_secret_free(plain);
	free(names);
	json_decref(compose);
	free(blob);
	return r;
}

/* ---- boot ---------------------------------------------------------------- */

/* recorded_provider checks that RTMR3's key-provider event names this KMS
 * root; *found is false when there is none. */
static int recorded_provider(struct agent *a, const char *kp_json, bool *found, char *err, size_t err_len)
{
	const struct agent_event *e = agent_find_event(a, "key-provider");

	*found = e != NULL;
	if (e == NULL)
		return CVM_OK;
	if (e->payload_len != strlen(kp_json) || memcmp(e->payload, kp_json, e->payload_len) != 0) {
		(void)snprintf(err, err_len,
		               "RTMR3 recorded another key provider in this boot than the KMS that answered "
		               "now (%s): refusing its keys",
		               a->kms_urls[a->kms_used]);
		return CVM_E_MISMATCH;
	}
	return CVM_OK;
}

int agent_kms_open(struct agent *a, char *err, size_t err_len)
{
	struct kms_answer ans;
	char *id_hex = NULL, *kp_json = NULL;
	json_t *o = NULL;
	bool found = false;
	int r;

	if (!a->kms_mode)
		return CVM_OK;
	memset(&ans, 0, sizeof(ans));
	agent_boot_report(a, "boot-progress", "keys: asking the KMS");
	r = fetch(a, &ans, err, err_len);
	if (r != CVM_OK) {
		agent_boot_report(a, "boot-error", err);
		return r;
	}
	agent_boot_report(a, "boot-progress", "keys: from the KMS");
	a->keys = ans.keys;
	id_hex = cvm_hex_encode_new(a->keys->key_provider_id, a->keys->key_provider_id_len);
	o = id_hex == NULL ? NULL : json_pack("{s:s,s:s}", "name", "kms", "id", id_hex);
	kp_json = o == NULL ? NULL : json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	if (kp_json == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = agent_rtlog_lock(&a->rt, LOCK_EX);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot lock the runtime event log: %s", cvm_strerror(r));
		goto out;
	}
	r = recorded_provider(a, kp_json, &found, err, err_len);
	if (r == CVM_OK && !found && a->kms_measure) {
		if (ans.has_os_image_hash)
			r = agent_emit_event_locked(a, "os-image-hash", ans.os_image_hash, 32, err, err_len);
		if (r == CVM_OK)
			r = agent_emit_event_locked(a, "key-provider", (const uint8_t *)kp_json,
			                            strlen(kp_json), err, err_len);
		/* the data disk before system-ready (spec §5.2): its key first */
		if (r == CVM_OK && a->cfg.boot_storage_hook[0] != '\0')
			r = agent_kms_write_disk_key(a, err, err_len);
		if (r == CVM_OK)
			r = agent_boot_storage(a, true, err, err_len);
		if (r == CVM_OK)
			r = agent_emit_event_locked(a, "system-ready", NULL, 0, err, err_len);
		if (r == CVM_OK)
			a->boot_storage_done = a->cfg.boot_storage_hook[0] != '\0';
	} else if (r == CVM_OK && !found && a->tee_info.platform == CVM_TEE_PLATFORM_TDX) {
		(void)snprintf(
		    err, err_len,
		    "RTMR3 records no key provider for this boot and the agent did not measure it: "
		    "the KMS keys cannot be bound to this boot (reboot the VM)");
		r = CVM_E_POLICY;
	}
	agent_rtlog_unlock(&a->rt);
	if (r != CVM_OK)
		goto out;
	cvm_daemon_log(CVM_LOG_INFO, "kms_keys", "url=%s epoch=%llu root_ca_spki=%.16s... recorded=%s",
	               a->kms_urls[a->kms_used], (unsigned long long)ans.epoch, id_hex,
	               found ? "earlier" : (a->kms_measure ? "yes" : "no"));
	if (!a->boot_storage_done)
		r = agent_kms_write_disk_key(a, err, err_len);
	if (r == CVM_OK)
		r = agent_kms_write_env(a, err, err_len);
out:
	free(kp_json);
	free(id_hex);
	json_decref(o);
	return r;
}
