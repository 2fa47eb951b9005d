/* cvm-kmsd's RPC surface: dstack's KMS service at /prpc/KMS.<Method>
 * (spec §3.3), plus /health and /metrics (docs/daemons/cvm-kmsd.md).
 *
 * Public methods (no client certificate): GetMeta, GetTempCaCert (when
 * serve_temp_ca). Attested methods require the client's RA-TLS certificate,
 * checked in the TLS handshake by the client verifier (quote, collateral,
 * policy, key binding, event-log replay); GetAppKey then reads the app's
 * identity from the certificate's runtime events, asks the authorization
 * policy, and only then asks the key process for the keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/csr.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/evidence.h>
#include <cvmkit/kdf.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tls.h>

#include "daemon.h"
#include "httpd.h"
#include "kms.h"
#include "rpc.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define EV_RUNTIME 0x08000001u /* dstack's runtime event type */

static json_t *hex_secret(const struct cvm_secret *s)
{
	char *h = cvm_hex_encode_new(s->p, s->len);
	json_t *j;

	if (h == NULL)
		return NULL;
	j = json_string(h);
	cvm_freezero(h, s->len * 2 + 1);
	return j;
}

static void log_decision(struct kms *k, struct cvm_rpc_call *c, const char *method, const char *decision,
                         const uint8_t *app_id, uint32_t epoch, const char *keys, const char *reason)
{
	char app[41] = "-", kv[CVM_KV_MAX], kv2[CVM_KV_MAX];

	if (app_id != NULL)
		cvm_hex_encode(app_id, CVM_APP_ID_LEN, app);
	cvm_daemon_log_limited(CVM_LOG_INFO, "decision",
	                       "node=%s method=%s peer=%s app_id=%s decision=%s epoch=%u keys=%s reason=%s",
	                       k->node_name, method, cvm_kv(cvm_http_req_peer(c->http), kv), app, decision,
	                       (unsigned)epoch, keys, cvm_kv(reason, kv2));
}

/* ---- the methods ------------------------------------------------------ */

/* bootinfo_json is dstack's BootstrapResponse: the file's three fields, hex. */
static json_t *bootinfo_json(const struct cvm_kms_bootinfo *bi)
{
	json_t *o = json_object();

	if (o == NULL ||
	    cvm_json_set(o, "ca_pubkey", cvm_json_hex(bi->ca_pubkey, bi->ca_pubkey_len)) != CVM_OK ||
	    cvm_json_set(o, "k256_pubkey", cvm_json_hex(bi->k256_pubkey, sizeof(bi->k256_pubkey))) !=
	        CVM_OK ||
	    cvm_json_set(o, "attestation", cvm_json_hex(bi->attestation, bi->attestation_len)) != CVM_OK) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int m_get_meta(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct kms *k = ctx;
	json_t *o = json_object();
	int r = o != NULL ? CVM_OK : CVM_E_NOMEM;

	(void)c;
	k->n_meta++;
	if (r == CVM_OK)
		r = cvm_json_set(o, "ca_cert", json_string(k->meta.ca_cert_pem));
	if (r == CVM_OK)
		r = cvm_json_set(o, "allow_any_upgrade", json_false());
	if (r == CVM_OK)
		r = cvm_json_set(o, "k256_pubkey",
		                 k->meta.has_k256 ? cvm_json_hex(k->meta.k256_public, CVM_K256_PUBKEY_LEN)
		                                  : json_string(""));
	if (r == CVM_OK)
		r = cvm_json_set(o, "bootstrap_info",
		                 k->has_bootinfo ? bootinfo_json(&k->bootinfo) : json_null());
	if (r == CVM_OK)
		r = cvm_json_set(o, "is_dev", json_boolean(strcmp(k->auth_type, "dev") == 0));
	if (r == CVM_OK)
		r = cvm_json_set(o, "gateway_app_id", json_string(k->auth_info.gateway_app_id));
	if (r == CVM_OK)
		r = cvm_json_set(o, "kms_contract_address", json_string(k->auth_info.kms_contract_addr));
	if (r == CVM_OK)
		r = cvm_json_set(o, "chain_id", json_integer((json_int_t)k->auth_info.chain_id));
	if (r == CVM_OK)
		r = cvm_json_set(o, "app_auth_implementation", json_string(k->auth_info.app_implementation));
	if (r == CVM_OK)
		r = cvm_json_set(o, "auth", json_string(k->auth_type));
	if (r == CVM_OK)
		r = cvm_json_set(o, "epoch", json_integer(k->meta.epoch));
	if (r == CVM_OK)
		r = cvm_json_set(o, "node", json_string(k->node_name));
	if (r != CVM_OK) {
		json_decref(o);
		return cvm_rpc_fail(c, 500, r, "out of memory");
	}
	*out = o;
	return CVM_OK;
}

static int m_get_temp_ca_cert(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct kms *k = ctx;
	json_t *o;
	int r;

	if (!k->serve_temp_ca || k->meta.tmp_ca_cert_pem == NULL)
		return cvm_rpc_fail(c, 404, CVM_E_NOT_FOUND,
		                    "this KMS does not hand out a temp CA (serve_temp_ca is off or there is "
		                    "none): present your own RA-TLS certificate instead");
	k->n_temp_ca++;
	o = json_object();
	r = o != NULL ? CVM_OK : CVM_E_NOMEM;
	if (r == CVM_OK)
		r = cvm_json_set(o, "temp_ca_cert", json_string(k->meta.tmp_ca_cert_pem));
	if (r == CVM_OK)
		r = cvm_json_set(o, "temp_ca_key",
		                 json_stringn((const char *)k->meta.tmp_ca_key->p, k->meta.tmp_ca_key->len));
	if (r == CVM_OK)
		r = cvm_json_set(o, "ca_cert", json_string(k->meta.ca_cert_pem));
	if (r != CVM_OK) {
		json_decref(o);
		return cvm_rpc_fail(c, 500, r, "out of memory");
	}
	*out = o;
	return CVM_OK;
}

/* requested_epoch reads the optional "epoch" of a request (cvmkit's
 * extension; dstack clients send none and get the current epoch) and
 * checks that its keys may be released now. */
static int requested_epoch(struct kms *k, struct cvm_rpc_call *c, uint32_t *epoch)
{
	bool present = false;
	uint64_t v = 0;
	int r = cvm_rpc_u64(c, "epoch", &present, &v);

	*epoch = k->epochs.current;
	if (r != CVM_OK)
		return r;
	if (!present)
		return CVM_OK;
	if (v > CVM_KMS_EPOCH_MAX)
		return cvm_rpc_fail(c, 400, CVM_E_FORMAT, "epoch %llu is out of range",
		                    (unsigned long long)v);
	*epoch = (uint32_t)v;
	if (!cvm_kms_epoch_readable(&k->epochs, *epoch, (int64_t)time(NULL)))
		return cvm_rpc_fail(
		    c, 403, CVM_E_POLICY,
		    "epoch %u is not readable: it is revoked, its grace period is over, or it "
		    "does not exist (the current epoch is %u)",
		    (unsigned)*epoch, (unsigned)k->epochs.current);
	return CVM_OK;
}

/* deny ends an attested method without keys: counted, logged, audited
 * (the call's error is the reason). */
static int deny(struct kms *k, struct cvm_rpc_call *c, const char *method, const struct cvm_boot_info *bi,
                const char *decision, uint32_t epoch, int r)
{
	const uint8_t *app = bi != NULL ? bi->app_id : NULL;

	if (strcmp(decision, "error") == 0)
		k->n_app_key_error++;
	else
		k->n_app_key_denied++;
	log_decision(k, c, method, decision, app, epoch, "", c->err);
	(void)kms_audit(k, method, c, bi, decision, c->err, "", epoch);
	return r;
}

/* authorize asks the policy for `bi`; on a refusal or an error the call
 * fails (403 with the policy's reason; 503 when the policy could not
 * answer: fail closed). */
static int authorize(struct kms *k, struct cvm_rpc_call *c, enum cvm_auth_kind kind,
                     const struct cvm_boot_info *bi, struct cvm_auth_decision *d, const char **decision)
{
	char err[256] = "";
	int r = kms_decide(k, kind, bi, d, err, sizeof(err));

	if (r != CVM_OK) {
		*decision = k->auth == NULL ? "denied" : "error";
		return cvm_rpc_fail(c, k->auth == NULL ? 403 : 503, r, "%s: %s",
		                    k->auth == NULL ? "refused" : "the authorization policy could not answer",
		                    err);
	}
	if (!d->allowed) {
		*decision = "denied";
		return cvm_rpc_fail(c, 403, CVM_E_POLICY, "denied by the authorization policy: %s",
		                    d->reason[0] != '\0' ? d->reason : "(no reason given)");
	}
	return CVM_OK;
}

static int m_get_app_key(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct kms *k = ctx;
	struct cvm_ratls_info *info = NULL;
	struct cvm_ratls_verdict v;
	struct cvm_boot_info bi;
	struct cvm_auth_decision d;
	const char *adv[CVM_AUTH_ADVISORIES_MAX], *decision = "denied";
	struct app_ident id;
	struct kp_app_keys keys;
	char err[256] = "";
	json_t *o = NULL;
	uint32_t epoch = k->epochs.current;
	bool have_bi = false;
	int r;

	memset(&keys, 0, sizeof(keys));
	memset(&bi, 0, sizeof(bi));
	r = kms_attested_client(k, c, &v, &info, &id);
	if (r != CVM_OK)
		return deny(k, c, "GetAppKey", NULL, "denied", epoch, r);
	if (!id.has_app_id || id.bad_size) {
		r = cvm_rpc_fail(c, 400, CVM_E_FORMAT,
		                 "the client's runtime events name no 20-byte app-id (or a malformed "
		                 "instance-id)");
		goto refused;
	}
	r = kms_boot_info(&v, info, &id, &bi, adv, err, sizeof(err));
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 400, r, "%s", err);
		goto refused;
	}
	have_bi = true;
	r = requested_epoch(k, c, &epoch);
	if (r == CVM_OK)
		r = authorize(k, c, CVM_AUTH_APP, &bi, &d, &decision);
	if (r != CVM_OK)
		goto refused;
	r = kms_keyproc_app_keys(&k->kp, epoch, id.app_id, id.instance_id,
	                         id.has_instance_id ? CVM_INSTANCE_ID_LEN : 0, &keys, err, sizeof(err));
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 500, r, "cannot derive the keys: %s", err);
		decision = "error";
		goto refused;
	}
	o = json_object();
	r = o != NULL ? CVM_OK : CVM_E_NOMEM;
	if (r == CVM_OK)
		r = cvm_json_set(o, "ca_cert", json_string(k->meta.ca_cert_pem));
	if (r == CVM_OK)
		r = cvm_json_set(o, "disk_crypt_key", hex_secret(keys.disk_crypt_key));
	if (r == CVM_OK)
		r = cvm_json_set(o, "env_crypt_key", hex_secret(keys.env_crypt_key));
	if (r == CVM_OK)
		r = cvm_json_set(o, "k256_key", hex_secret(keys.k256_key));
	if (r == CVM_OK)
		r = cvm_json_set(o, "k256_signature", cvm_json_hex(keys.k256_signature, CVM_K256_RSIG_LEN));
	if (r == CVM_OK)
		r = cvm_json_set(o, "tproxy_app_id", json_string(d.gateway_app_id));
	if (r == CVM_OK)
		r = cvm_json_set(o, "gateway_app_id", json_string(d.gateway_app_id));
	if (r == CVM_OK)
		r = cvm_json_set(o, "os_image_hash",
		                 cvm_json_hex(bi.os_image_hash, sizeof(bi.os_image_hash)));
	if (r == CVM_OK)
		r = cvm_json_set(o, "epoch", json_integer(keys.epoch));
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 500, r, "out of memory");
		decision = "error";
		goto refused;
	}
	/* The record first: keys that are not in the audit log never leave. */
	r = kms_audit(k, "GetAppKey", c, &bi, "allowed", "", "disk,env,k256", keys.epoch);
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 500, r, "the audit log cannot record this decision: no key is released");
		decision = "error";
		goto refused;
	}
	k->n_app_key_ok++;
	log_decision(k, c, "GetAppKey", "allowed", id.app_id, keys.epoch, "disk,env,k256", "");
	*out = o;
	o = NULL;
	goto out;
refused:
	(void)deny(k, c, "GetAppKey", have_bi ? &bi : NULL, decision, epoch, r);
out:
	json_decref(o);
	kp_app_keys_cleanup(&keys);
	cvm_ratls_info_free(info);
	return r;
}

static json_t *pem_secret(const struct cvm_secret *s)
{
	return s != NULL ? json_stringn((const char *)s->p, s->len) : json_string("");
}

/* m_get_kms_key hands every readable epoch's roots to another KMS node
 * (spec §3.6): only over mutual RA-TLS, only to a node the KMS policy
 * allows. dstack's fields (temp_ca_key, keys[{ca_key, k256_key}] of the
 * current epoch) come first; cvmkit's nodes read "roots" and "epochs". */
static int m_get_kms_key(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct kms *k = ctx;
	struct cvm_ratls_info *info = NULL;
	struct cvm_ratls_verdict v;
	struct cvm_boot_info bi;
	struct cvm_auth_decision d;
	const char *adv[CVM_AUTH_ADVISORIES_MAX], *decision = "denied";
	bool have_bi = false;
	struct app_ident id;
	struct kp_kms_keys keys;
	char err[256] = "", kv[CVM_KV_MAX];
	json_t *o = NULL, *arr = NULL, *roots = NULL, *ep = NULL;
	const struct kp_epoch_roots *cur = NULL;
	int r;

	memset(&keys, 0, sizeof(keys));
	memset(&bi, 0, sizeof(bi));
	r = kms_attested_client(k, c, &v, &info, &id);
	if (r == CVM_OK) {
		r = kms_boot_info(&v, info, &id, &bi, adv, err, sizeof(err));
		if (r != CVM_OK)
			r = cvm_rpc_fail(c, 400, r, "%s", err);
		else
			have_bi = true;
	}
	if (r == CVM_OK)
		r = authorize(k, c, CVM_AUTH_KMS, &bi, &d, &decision);
	if (r != CVM_OK) {
		(void)deny(k, c, "GetKmsKey", have_bi ? &bi : NULL, decision, k->epochs.current, r);
		goto out;
	}
	r = kms_keyproc_kms_keys(&k->kp, &keys, err, sizeof(err));
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 500, r, "cannot read the roots: %s", err);
		goto out;
	}
	o = json_object();
	arr = json_array();
	roots = json_array();
	r = o != NULL && arr != NULL && roots != NULL ? CVM_OK : CVM_E_NOMEM;
	for (size_t i = 0; i < keys.count && r == CVM_OK; i++) {
		const struct kp_epoch_roots *e = &keys.e[i];
		json_t *x = json_object();
		char *k256 = cvm_hex_encode_new(e->k256->p, e->k256->len);

		if (e->epoch == k->epochs.current)
			cur = e;
		r = x != NULL && k256 != NULL ? CVM_OK : CVM_E_NOMEM;
		if (r == CVM_OK)
			r = json_array_append_new(roots, x) == 0 ? CVM_OK : CVM_E_NOMEM;
		else
			json_decref(x);
		if (r == CVM_OK)
			r = cvm_json_set(x, "epoch", json_integer(e->epoch));
		if (r == CVM_OK)
			r = cvm_json_set(x, "ca_key", pem_secret(e->ca_key_pem));
		if (r == CVM_OK)
			r = cvm_json_set(x, "ca_cert", json_string(e->ca_cert_pem));
		if (r == CVM_OK)
			r = cvm_json_set(x, "k256_key", json_string(k256));
		if (r == CVM_OK)
			r = cvm_json_set(x, "tmp_ca_key", pem_secret(e->tmp_ca_key_pem));
		if (r == CVM_OK)
			r = cvm_json_set(x, "tmp_ca_cert",
			                 json_string(e->tmp_ca_cert_pem != NULL ? e->tmp_ca_cert_pem : ""));
		if (k256 != NULL)
			cvm_freezero(k256, strlen(k256));
	}
	if (r == CVM_OK && cur == NULL)
		r = CVM_E_INTERNAL;
	if (r == CVM_OK) {
		json_t *x = json_object();
		char *k256 = cvm_hex_encode_new(cur->k256->p, cur->k256->len);

		if (x == NULL || k256 == NULL) {
			json_decref(x);
			r = CVM_E_NOMEM;
		} else {
			r = json_array_append_new(arr, x) == 0 ? CVM_OK : CVM_E_NOMEM;
		}
		if (r == CVM_OK)
			r = cvm_json_set(x, "ca_key", pem_secret(cur->ca_key_pem));
		if (r == CVM_OK)
			r = cvm_json_set(x, "k256_key", json_string(k256));
		if (k256 != NULL)
			cvm_freezero(k256, strlen(k256));
	}
	if (r == CVM_OK)
		r = cvm_json_set(o, "temp_ca_key", pem_secret(cur->tmp_ca_key_pem));
	if (r == CVM_OK) {
		r = cvm_json_set(o, "keys", arr);
		arr = NULL;
	}
	if (r == CVM_OK) {
		r = cvm_json_set(o, "roots", roots);
		roots = NULL;
	}
	if (r == CVM_OK) {
		ep = json_array();
		r = ep != NULL ? CVM_OK : CVM_E_NOMEM;
		for (size_t i = 0; i < k->epochs.count && r == CVM_OK; i++) {
			const struct cvm_kms_epoch *e = &k->epochs.e[i];
			json_t *x =
			    json_pack("{s:I, s:s, s:I}", "epoch", (json_int_t)e->epoch, "state",
			              cvm_kms_epoch_state_name(e->state), "until", (json_int_t)e->until);

			r = x != NULL && json_array_append_new(ep, x) == 0 ? CVM_OK : CVM_E_NOMEM;
		}
		if (r == CVM_OK) {
			r = cvm_json_set(
			    o, "epochs",
			    json_pack("{s:I, s:O}", "current", (json_int_t)k->epochs.current, "epochs", ep));
		}
	}
	if (r != CVM_OK) {
		json_decref(o);
		o = NULL;
		r = cvm_rpc_fail(c, 500, r, "cannot make the answer");
		goto out;
	}
	r = kms_audit(k, "GetKmsKey", c, &bi, "allowed", "", "roots", k->epochs.current);
	if (r != CVM_OK) {
		json_decref(o);
		o = NULL;
		r = cvm_rpc_fail(c, 500, r, "the audit log cannot record this decision: no root is released");
		goto out;
	}
	cvm_daemon_log(CVM_LOG_INFO, "kms_key", "node=%s peer=%s decision=allowed epochs=%zu", k->node_name,
	               cvm_kv(cvm_http_req_peer(c->http), kv), keys.count);
	*out = o;
out:
	json_decref(ep);
	json_decref(arr);
	json_decref(roots);
	kp_kms_keys_cleanup(&keys);
	cvm_ratls_info_free(info);
	return r;
}

/* csr_app_info encodes the 1.9 AppInfo a CSR asks for from its verified
 * attestation's boot-time values (the KMS's own reading, never the CSR's
 * claim): app id, compose hash, instance id, device id, mr_system,
 * mr_aggregated and the OS image hash when the attestation names one; no
 * key-provider info (SignCert judges the boot-time measurement, without
 * it, as dstack does). */
static int csr_app_info(const struct cvm_ratls_boot_info *boot, const struct cvm_boot_info *bi, uint8_t **out,
                        size_t *out_len)
{
	static const uint8_t zero[32];
	struct cvm_ratls_app_info ai;

	memset(&ai, 0, sizeof(ai));
	ai.app_id = boot->app_id;
	ai.app_id_len = sizeof(boot->app_id);
	ai.compose_hash = boot->compose_hash;
	ai.compose_hash_len = boot->compose_hash_len;
	ai.instance_id = boot->instance_id;
	ai.instance_id_len = boot->instance_id_len;
	memcpy(ai.device_id, boot->device_id, 32);
	memcpy(ai.mr_system, boot->mr_system, 32);
	memcpy(ai.mr_aggregated, boot->mr_aggregated, 32);
	if (memcmp(bi->os_image_hash, zero, 32) != 0) {
		ai.os_image_hash = bi->os_image_hash;
		ai.os_image_hash_len = 32;
	}
	return cvm_ratls_app_info_encode(&ai, out, out_len);
}

/* m_sign_cert issues an app certificate for a CSR (dstack's SignCert, spec
 * §3.4): the CSR's signature by its key, its attestation (quote, binding of
 * the CSR's key, replay) with the client verifier, the boot-time BootInfo
 * authorized, then the key process signs with the App CA of the ATTESTED
 * app id. No client certificate is needed: the attestation is in the CSR. */
static int m_sign_cert(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct kms *k = ctx;
	struct cvm_ratls_verdict v;
	struct cvm_ratls_boot_info boot;
	struct cvm_boot_info bi;
	struct cvm_auth_decision d;
	const char *adv[CVM_AUTH_ADVISORIES_MAX], *decision = "denied";
	bool have_bi = false;
	struct cvm_csr *csr = NULL;
	uint8_t *csr_bytes = NULL, *app_info = NULL, sig[CVM_CSR_SIG_MAX];
	size_t csr_len = 0, sig_len = 0, app_info_len = 0;
	char err[256] = "", *chain[3] = {NULL, NULL, NULL};
	bool has_api = false;
	uint64_t api = 1;
	json_t *o = NULL, *arr = NULL;
	int r;

	r = cvm_rpc_u64(c, "api_version", &has_api, &api);
	if (r == CVM_OK && (api < 1 || api > 2))
		r = cvm_rpc_fail(c, 400, CVM_E_UNSUPPORTED, "api_version %llu: this KMS speaks 1 and 2",
		                 (unsigned long long)api);
	if (r == CVM_OK)
		r = cvm_rpc_hex_new(c, "csr", KMS_CSR_MAX, &csr_bytes, &csr_len);
	if (r == CVM_OK)
		r = cvm_rpc_hex(c, "signature", sig, sizeof(sig), &sig_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_csr_decode((unsigned)api, csr_bytes, csr_len, &csr, err, sizeof(err));
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 400, r, "the CSR does not decode: %s", err);
		goto out;
	}
	r = cvm_csr_check_signature(csr, sig, sig_len);
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 400, r, "the CSR's signature does not verify with its key (%s)",
		                 cvm_strerror(r));
		goto out;
	}
	memset(&v, 0, sizeof(v));
	memset(&boot, 0, sizeof(boot));
	r = cvm_ratls_check_va_key(k->client_verifier, csr->attestation, csr->attestation_len,
	                           csr->pubkey_der, csr->pubkey_der_len, (int64_t)time(NULL), &v, NULL,
	                           &boot);
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 403, r, "the CSR's attestation does not verify: %s", cvm_strerror(r));
		goto out;
	}
	if (v.simulated && !k->simulated_ok) {
		r = cvm_rpc_fail(
		    c, 403, CVM_E_POLICY,
		    "the CSR's evidence comes from the simulated TEE, which this KMS does not accept");
		goto out;
	}
	kms_boot_info_csr(&v, &boot, NULL, 0, &bi, adv);
	have_bi = true;
	r = authorize(k, c, CVM_AUTH_APP, &bi, &d, &decision);
	if (r != CVM_OK)
		goto out;
	if (csr->ext_app_info) {
		r = csr_app_info(&boot, &bi, &app_info, &app_info_len);
		if (r != CVM_OK) {
			r = cvm_rpc_fail(c, 500, r, "cannot encode the app info");
			decision = "error";
			goto out;
		}
	}
	r = kms_keyproc_sign_csr(&k->kp, k->epochs.current, boot.app_id, (unsigned)api, csr_bytes, csr_len,
	                         app_info, app_info_len, chain, err, sizeof(err));
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 500, r, "cannot issue the certificate: %s", err);
		decision = "error";
		goto out;
	}
	o = json_object();
	arr = json_array();
	r = o != NULL && arr != NULL ? CVM_OK : CVM_E_NOMEM;
	for (size_t i = 0; i < 3 && r == CVM_OK; i++)
		r = json_array_append_new(arr, json_string(chain[i])) == 0 ? CVM_OK : CVM_E_NOMEM;
	if (r == CVM_OK) {
		r = cvm_json_set(o, "certificate_chain", arr);
		arr = NULL;
	}
	if (r == CVM_OK)
		r = kms_audit(k, "SignCert", c, &bi, "allowed", "", "app-cert", k->epochs.current);
	if (r != CVM_OK) {
		json_decref(o);
		o = NULL;
		r = cvm_rpc_fail(c, 500, r,
		                 "cannot answer or record the decision: no certificate is released");
		decision = "error";
		goto out;
	}
	log_decision(k, c, "SignCert", "allowed", boot.app_id, k->epochs.current, "app-cert", "");
	*out = o;
out:
	if (r != CVM_OK)
		(void)deny(k, c, "SignCert", have_bi ? &bi : NULL, decision, k->epochs.current, r);
	json_decref(arr);
	for (size_t i = 0; i < 3; i++)
		free(chain[i]);
	cvm_csr_free(csr);
	free(csr_bytes);
	free(app_info);
	return r;
}

/* m_get_env_pubkey answers GetAppEnvEncryptPubKey (spec §3.2): public, no
 * client certificate; what makes the key trustworthy is the k256 root's
 * signature (legacy and signature_v1 with the timestamp), which clients
 * check against GetMeta.k256_pubkey (cvm app encrypt-env --kms-pubkey). */
static int m_get_env_pubkey(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct kms *k = ctx;
	uint8_t app_id[CVM_APP_ID_LEN], pub[32], sig[CVM_K256_RSIG_LEN], sig_v1[CVM_K256_RSIG_LEN];
	size_t n = 0;
	uint64_t ts = (uint64_t)time(NULL);
	char err[256] = "";
	json_t *o;
	int r = cvm_rpc_hex(c, "app_id", app_id, sizeof(app_id), &n);

	if (r != CVM_OK)
		return r;
	if (n != CVM_APP_ID_LEN)
		return cvm_rpc_fail(c, 400, CVM_E_FORMAT, "app_id must be 20 bytes (40 hex digits), not %zu",
		                    n);
	r = kms_keyproc_env_pubkey(&k->kp, k->epochs.current, app_id, ts, pub, sig, sig_v1, err, sizeof(err));
	if (r != CVM_OK)
		return cvm_rpc_fail(c, 500, r, "cannot sign the env key: %s", err);
	o = json_object();
	r = o != NULL ? CVM_OK : CVM_E_NOMEM;
	if (r == CVM_OK)
		r = cvm_json_set(o, "public_key", cvm_json_hex(pub, sizeof(pub)));
	if (r == CVM_OK)
		r = cvm_json_set(o, "signature", cvm_json_hex(sig, sizeof(sig)));
	if (r == CVM_OK)
		r = cvm_json_set(o, "timestamp", json_integer((json_int_t)ts));
	if (r == CVM_OK)
		r = cvm_json_set(o, "signature_v1", cvm_json_hex(sig_v1, sizeof(sig_v1)));
	if (r != CVM_OK) {
		json_decref(o);
		return cvm_rpc_fail(c, 500, r, "out of memory");
	}
	*out = o;
	return CVM_OK;
}

static const struct cvm_rpc_method kms_methods[] = {
    {"GetMeta", m_get_meta},      {"GetTempCaCert", m_get_temp_ca_cert},
    {"GetAppKey", m_get_app_key}, {"GetKmsKey", m_get_kms_key},
    {"SignCert", m_sign_cert},    {"GetAppEnvEncryptPubKey", m_get_env_pubkey},
};

static const struct cvm_rpc_mount kms_mounts[] = {
    {"/prpc/", "KMS.", kms_methods, COUNT(kms_methods), 0},
};

static void metrics(struct kms *k, struct cvm_http_resp *resp)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf),
	                 "# TYPE cvm_kms_app_key_total counter\n"
	                 "cvm_kms_app_key_total{decision=\"allowed\"} %llu\n"
	                 "cvm_kms_app_key_total{decision=\"denied\"} %llu\n"
	                 "cvm_kms_app_key_total{decision=\"error\"} %llu\n"
	                 "# TYPE cvm_kms_meta_total counter\ncvm_kms_meta_total %llu\n"
	                 "# TYPE cvm_kms_temp_ca_total counter\ncvm_kms_temp_ca_total %llu\n"
	                 "# TYPE cvm_kms_epoch gauge\ncvm_kms_epoch %u\n",
	                 (unsigned long long)k->n_app_key_ok, (unsigned long long)k->n_app_key_denied,
	                 (unsigned long long)k->n_app_key_error, (unsigned long long)k->n_meta,
	                 (unsigned long long)k->n_temp_ca, (unsigned)k->meta.epoch);

	cvm_http_resp_bytes(resp, 200, "text/plain; version=0.0.4", buf,
	                    n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0);
}

void kms_handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	struct kms *k = ctx;
	const struct cvm_rpc_api api = {"kms", kms_mounts, COUNT(kms_mounts), k};

	if (req->method == CVM_HTTP_GET && strcmp(req->path, "/health") == 0) {
		cvm_http_resp_bytes(resp, 200, "application/json", "{\"status\":\"ok\"}", 15);
		return;
	}
	if (req->method == CVM_HTTP_GET && strcmp(req->path, "/metrics") == 0) {
		metrics(k, resp);
		return;
	}
	cvm_rpc_handle(&api, req, resp);
}
