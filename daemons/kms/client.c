/* Who a verified client is (kms.h): the evidence of its RA-TLS
 * certificate, already checked by the client verifier in the handshake,
 * read again for the app identity events, and the BootInfo the
 * authorization policy judges (dstack's PolicyBootInfo, spec §3.5): the
 * quote's TD report (mr_system, mr_aggregated), the PCK certificate's PPID
 * (device_id), the TCB status and advisories, the identity events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/csr.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/kmsauth.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tls.h>

#include "daemon.h"
#include "httpd.h"
#include "kms.h"
#include "rpc.h"

/* struct app_ident is what the client's evidence says about the app: the
 * first of each of dstack's identity events in RTMR3 (copied: a legacy
 * event log is read event by event). A field whose event is absent or has
 * a payload of another size is left unset. */

static void ident_event(struct app_ident *a, const char *name, const uint8_t *p, size_t n)
{
	if (strcmp(name, "app-id") == 0 && !a->has_app_id) {
		a->has_app_id = n == CVM_APP_ID_LEN;
		a->bad_size |= n != CVM_APP_ID_LEN;
		if (a->has_app_id)
			memcpy(a->app_id, p, n);
	} else if (strcmp(name, "compose-hash") == 0 && !a->has_compose_hash) {
		a->has_compose_hash = n == 32;
		a->bad_size |= n != 32;
		if (a->has_compose_hash)
			memcpy(a->compose_hash, p, n);
	} else if (strcmp(name, "instance-id") == 0 && !a->has_instance_id) {
		/* dstack's no_instance_id: an empty payload */
		a->has_instance_id = n == CVM_INSTANCE_ID_LEN;
		a->bad_size |= n != 0 && n != CVM_INSTANCE_ID_LEN;
		if (a->has_instance_id)
			memcpy(a->instance_id, p, n);
	} else if (strcmp(name, "key-provider") == 0 && !a->has_key_provider && n <= KP_INFO_MAX) {
		a->has_key_provider = true;
		memcpy(a->key_provider, p, n);
		a->key_provider_len = n;
	} else if (strcmp(name, "cvmkit.agent-key") == 0) {
		a->has_agent_key_event = true;
	}
}

/* ident_read reads the identity from a VersionedAttestation's events, or
 * from a legacy certificate's dstack JSON event log. Both were checked by
 * the client verifier (replayed to the quote's RTMR3) before this runs. */
int kms_ident_read(const struct cvm_ratls_info *info, struct app_ident *a)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	bool more = true;
	int r;

	memset(a, 0, sizeof(*a));
	if (info->attestation != NULL) {
		const struct cvm_va *va = info->attestation;

		for (size_t i = 0; i < va->event_count; i++) {
			const struct cvm_va_event *e = &va->events[i];

			if (e->imr == 3 && e->event_type == CVM_EV_DSTACK_RUNTIME && e->event != NULL)
				ident_event(a, e->event, e->payload, e->payload_len);
		}
		return CVM_OK;
	}
	if (info->event_log_json == NULL)
		return CVM_E_NOT_FOUND;
	r = cvm_evl_parser_new_mem(info->event_log_json, info->event_log_json_len, CVM_EVL_DSTACK_JSON, &p);
	while (r == CVM_OK) {
		r = cvm_evl_parser_next(p, &ev, &more);
		if (r != CVM_OK || !more)
			break;
		if (ev.reg == 3 && ev.type == CVM_EV_DSTACK_RUNTIME && ev.name != NULL)
			ident_event(a, ev.name, ev.data.p, ev.data.len);
	}
	cvm_evl_parser_free(p);
	return r;
}

/* peer_info parses the client's leaf certificate again for its evidence
 * (the verdict keeps verdicts, not the parsed certificate). */
static int peer_info(SSL *ssl, struct cvm_ratls_info **out, char *err, size_t err_len)
{
	X509 *peer = SSL_get1_peer_certificate(ssl);
	unsigned char *der = NULL;
	int len, r;

	*out = NULL;
	if (peer == NULL)
		return CVM_E_INVAL;
	len = i2d_X509(peer, &der);
	X509_free(peer);
	if (len <= 0)
		return CVM_E_CRYPTO;
	r = cvm_ratls_parse(der, (size_t)len, out, err, err_len);
	OPENSSL_free(der);
	return r;
}

/* attested_client returns the client's verified evidence, or fails the
 * call with the reason. */
int kms_attested_client(struct kms *k, struct cvm_rpc_call *c, struct cvm_ratls_verdict *verdict,
                        struct cvm_ratls_info **info, struct app_ident *id)
{
	const struct cvm_ratls_verdict *v = c->http->tls != NULL ? cvm_tls_peer_verdict(c->http->tls) : NULL;
	char err[256] = "";
	int r;

	*info = NULL;
	memset(id, 0, sizeof(*id));
	memset(verdict, 0, sizeof(*verdict));
	if (v == NULL)
		return cvm_rpc_fail(c, 401, CVM_E_POLICY,
		                    "%s needs mutual RA-TLS: connect with your CVM's RA-TLS client "
		                    "certificate",
		                    c->method);
	if (v->simulated && !k->simulated_ok)
		return cvm_rpc_fail(c, 403, CVM_E_POLICY,
		                    "the client's evidence comes from the simulated TEE, which this KMS does "
		                    "not accept ([attestation] allow_simulated)");
	*verdict = *v;
	r = peer_info(c->http->tls, info, err, sizeof(err));
	if (r != CVM_OK)
		return cvm_rpc_fail(c, 400, r, "the client certificate does not parse: %s", err);
	if (kms_ident_read(*info, id) != CVM_OK) {
		cvm_ratls_info_free(*info);
		*info = NULL;
		return cvm_rpc_fail(c, 400, CVM_E_UNSUPPORTED,
		                    "the client certificate carries no event log cvm-kmsd can read the app's "
		                    "identity from (dstack's 1.8 attestation or 1.2 event log extension)");
	}
	/* A cvmkit guest records its agent's key before any app runs: only
	 * that key may ask for the app's keys, not a key some process inside
	 * the CVM made and had quoted. */
	if (!v->system_key && (id->has_agent_key_event || !k->accept_dstack_guests)) {
		cvm_ratls_info_free(*info);
		*info = NULL;
		return cvm_rpc_fail(
		    c, 403, CVM_E_POLICY,
		    id->has_agent_key_event
		        ? "the client certificate's key is not the key cvm-agentd recorded in "
		          "RTMR3 (cvmkit.agent-key): any process inside the CVM can have a key "
		          "quoted, so only the agent's key gets app keys"
		        : "the client records no cvm-agentd key (a dstack guest) and this KMS "
		          "does not accept dstack guests ([kms] accept_dstack_guests)");
	}
	return CVM_OK;
}

/* os_image_hash reads vm_config's os_image_hash: the image the host says it
 * booted, a claim (dstack's KMS takes it the same way unless it recomputes
 * the measurements from the image). Zero when absent. */
/* advisories points `adv` at the verdict's advisory ids; returns how many
 * (bounded by both the verdict's and BootInfo's caps). */
static size_t advisories(const struct cvm_ratls_verdict *v, const char **adv)
{
	size_t n = v->dcap.advisory_count;

	if (n > CVM_ADVISORIES_MAX)
		n = CVM_ADVISORIES_MAX;
	if (n > CVM_AUTH_ADVISORIES_MAX)
		n = CVM_AUTH_ADVISORIES_MAX;
	for (size_t i = 0; i < n; i++)
		adv[i] = v->dcap.advisory_ids[i];
	return n;
}

static void config_os_image_hash(const char *config, size_t len, uint8_t out[32])
{
	json_error_t jerr;
	json_t *o;
	const char *h;

	memset(out, 0, 32);
	if (config == NULL || len == 0 || len > 65536)
		return;
	o = json_loadb(config, len, 0, &jerr);
	h = json_string_value(json_object_get(o, "os_image_hash"));
	if (h != NULL && strlen(h) == 64 && cvm_hex_decode_exact(h, 64, out, 32) != CVM_OK)
		memset(out, 0, 32);
	json_decref(o);
}

static void os_image_hash(const struct cvm_ratls_info *info, uint8_t out[32])
{
	const struct cvm_va *va = info->attestation;

	if (va == NULL) {
		memset(out, 0, 32);
		return;
	}
	config_os_image_hash(va->config, va->config_len, out);
}

int kms_boot_info(const struct cvm_ratls_verdict *v, const struct cvm_ratls_info *info,
                  const struct app_ident *id, struct cvm_boot_info *bi, const char **adv, char *err,
                  size_t err_len)
{
	struct cvm_quote q;
	int r;

	memset(bi, 0, sizeof(*bi));
	if (v->tee != CVM_RATLS_TEE_TDX || info->quote == NULL) {
		(void)snprintf(err, err_len,
		               "only TDX guests are authorized by cvm-kmsd so far (this one is %s)",
		               cvm_ratls_tee_name(v->tee));
		return CVM_E_UNSUPPORTED;
	}
	r = cvm_quote_parse(info->quote, info->quote_len, &q);
	if (r != CVM_OK || q.body_type == CVM_BODY_SGX) {
		(void)snprintf(err, err_len, "the client's quote does not parse as a TD quote");
		return r != CVM_OK ? r : CVM_E_FORMAT;
	}
	(void)snprintf(bi->tee_variant, sizeof(bi->tee_variant), "%s",
	               v->simulated ? CVM_AUTH_SIM_VARIANT_PREFIX "tdx" : "dstack-tdx");
	cvm_dstack_aggregate(&q.body.td, id->has_key_provider ? id->key_provider : NULL, id->key_provider_len,
	                     bi->mr_system, bi->mr_aggregated);
	os_image_hash(info, bi->os_image_hash);
	cvm_sha256(v->dcap.ppid, sizeof(v->dcap.ppid), bi->device_id);
	memcpy(bi->app_id, id->app_id, sizeof(bi->app_id));
	memcpy(bi->compose_hash, id->compose_hash, sizeof(bi->compose_hash));
	bi->has_instance_id = id->has_instance_id;
	if (id->has_instance_id)
		memcpy(bi->instance_id, id->instance_id, sizeof(bi->instance_id));
	bi->key_provider_info = id->has_key_provider && id->key_provider_len > 0 ? id->key_provider : NULL;
	bi->key_provider_info_len = bi->key_provider_info != NULL ? id->key_provider_len : 0;
	(void)snprintf(bi->tcb_status, sizeof(bi->tcb_status), "%s", cvm_tcb_status_name(v->dcap.tcb_status));
	bi->advisory_count = advisories(v, adv);
	bi->advisory_ids = adv;
	return CVM_OK;
}

void kms_boot_info_csr(const struct cvm_ratls_verdict *v, const struct cvm_ratls_boot_info *boot,
                       const uint8_t *va_config, size_t va_config_len, struct cvm_boot_info *bi,
                       const char **adv)
{
	memset(bi, 0, sizeof(*bi));
	(void)snprintf(bi->tee_variant, sizeof(bi->tee_variant), "%s",
	               v->simulated ? CVM_AUTH_SIM_VARIANT_PREFIX "tdx" : "dstack-tdx");
	memcpy(bi->mr_aggregated, boot->mr_aggregated, 32);
	memcpy(bi->mr_system, boot->mr_system, 32);
	memcpy(bi->device_id, boot->device_id, 32);
	memcpy(bi->app_id, boot->app_id, sizeof(bi->app_id));
	if (boot->compose_hash_len == sizeof(bi->compose_hash))
		memcpy(bi->compose_hash, boot->compose_hash, sizeof(bi->compose_hash));
	bi->has_instance_id = boot->instance_id_len == sizeof(bi->instance_id);
	if (bi->has_instance_id)
		memcpy(bi->instance_id, boot->instance_id, sizeof(bi->instance_id));
	config_os_image_hash((const char *)va_config, va_config_len, bi->os_image_hash);
	(void)snprintf(bi->tcb_status, sizeof(bi->tcb_status), "%s", cvm_tcb_status_name(v->dcap.tcb_status));
	bi->advisory_count = advisories(v, adv);
	bi->advisory_ids = adv;
}

int kms_pem_boot_info(struct cvm_ratls_verifier *verifier, const char *pem, struct cvm_ratls_verdict *v,
                      struct cvm_ratls_info **info, struct app_ident *id, struct cvm_boot_info *bi,
                      const char **adv, bool *verified, char *why, size_t why_len)
{
	struct cvm_cert **certs = NULL;
	const uint8_t *der;
	size_t n = 0, der_len;
	int r;

	*info = NULL;
	*verified = false;
	memset(v, 0, sizeof(*v));
	r = cvm_certs_parse_pem((const uint8_t *)pem, strlen(pem), &certs, &n);
	if (r != CVM_OK || n == 0) {
		(void)snprintf(why, why_len, "the certificate does not parse");
		cvm_certs_free(certs, n);
		return r != CVM_OK ? r : CVM_E_INTERNAL;
	}
	cvm_cert_der(certs[0], &der, &der_len);
	r = cvm_ratls_verifier_check(verifier, &der, &der_len, 1, (int64_t)time(NULL), v, NULL);
	if (r != CVM_OK) {
		(void)snprintf(why, why_len,
		               "this node's own evidence does not verify with [attestation] collateral and "
		               "policy (%s)",
		               cvm_strerror(r));
		goto out;
	}
	*verified = true;
	r = cvm_ratls_parse(der, der_len, info, why, why_len);
	if (r == CVM_OK)
		r = kms_ident_read(*info, id);
	if (r == CVM_OK)
		r = kms_boot_info(v, *info, id, bi, adv, why, why_len);
	if (r != CVM_OK && why[0] == '\0')
		(void)snprintf(why, why_len, "%s", cvm_strerror(r));
out:
	cvm_certs_free(certs, n);
	return r;
}
