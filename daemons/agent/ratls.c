/* The agent's RA-TLS certificates (dstack's profile, spec §6.1) and its TLS
 * listener's certificate and context.
 *
 * Every certificate the agent issues comes from agent_ratls_cert: GetTlsKey,
 * /v1/IssueCert and Tappd.DeriveKey, and the TLS listener's certificate for
 * the identity key. With evidence it is lib/ratls's cvm_ratls_make in
 * dstack's profile: report data SHA-512("ratls-cert:" || SPKI DER) of the
 * certified key, the VersionedAttestation (1.8) that newer readers take
 * first and, on TDX, the quote (1.1) and the event log (1.2) that dstack
 * 0.5.x readers need; the app info (1.9) when the caller gives it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/tls.h>

#include "agent.h"
#include "daemon.h"

int agent_key_report_data(const struct cvm_p256_keypair *kp, uint8_t rd[64])
{
	return cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, kp, NULL, rd);
}

int agent_identity_report_data(const struct agent *a, uint8_t rd[64])
{
	if (a->identity == NULL)
		return CVM_E_INVAL;
	return agent_key_report_data(a->identity, rd);
}

int agent_ratls_cert(struct agent *a, struct cvm_cert_template *tpl, const struct cvm_p256_keypair *kp,
                     bool with_evidence, const uint8_t *app_info, size_t app_info_len,
                     const struct cvm_p256_keypair *issuer_key, const struct cvm_cert *issuer, char **out_pem,
                     size_t *out_len, char *err, size_t err_len)
{
	struct cvm_ratls_make_opts o;
	struct cvm_ratls_evidence rev;
	struct cvm_tee_evidence ev;
	struct cvm_va_event *events = NULL;
	size_t event_count = 0;
	uint8_t rd[64];
	int r;

	*out_pem = NULL;
	*out_len = 0;
	memset(&o, 0, sizeof(o));
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	o.common_name = tpl->common_name;
	o.organization = tpl->organization;
	o.alt_names = tpl->alt_names;
	o.alt_name_count = tpl->alt_name_count;
	o.not_before = tpl->not_before;
	o.not_after = tpl->not_after;
	o.server_auth = tpl->usage_server_auth;
	o.client_auth = tpl->usage_client_auth;
	o.legacy_tdx = true; /* dstack 0.5.x readers take the quote from 1.1 */
	o.app_info = app_info;
	o.app_info_len = app_info_len;
	if (!with_evidence) /* a plain certificate, with the 1.9 app info when asked */
		return cvm_ratls_make(&o, kp, NULL, issuer_key, issuer, out_pem, out_len);
	memset(&ev, 0, sizeof(ev));
	r = agent_key_report_data(kp, rd);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot bind the key");
		return r;
	}
	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot lock the runtime event log");
		return r;
	}
	r = cvm_tee_quote(a->tee, rd, &ev);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot attest the key");
		goto out;
	}
	events = agent_va_events(a, &event_count);
	if (events == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memset(&rev, 0, sizeof(rev));
	rev.tee = ev.platform == CVM_TEE_PLATFORM_TDX ? CVM_RATLS_TEE_TDX : CVM_RATLS_TEE_SNP;
	rev.quote = ev.data;
	rev.quote_len = ev.data_len;
	rev.events = ev.platform == CVM_TEE_PLATFORM_TDX ? events : NULL;
	rev.event_count = ev.platform == CVM_TEE_PLATFORM_TDX ? event_count : 0;
	rev.config = a->vm_config;
	/* under the lock: the events borrow from the runtime log */
	r = cvm_ratls_make(&o, kp, &rev, issuer_key, issuer, out_pem, out_len);
	if (r != CVM_OK && r != CVM_E_INVAL)
		(void)snprintf(err, err_len, "cannot make the RA-TLS certificate");
out:
	agent_rtlog_unlock(&a->rt);
	free(events);
	cvm_tee_evidence_cleanup(&ev);
	return r;
}

int agent_app_info(struct agent *a, uint8_t **out, size_t *out_len)
{
	static const char *const names[] = {"app-id", "compose-hash", "instance-id"};
	const struct agent_event *kp, *ev[3];
	struct cvm_ratls_app_info ai;
	struct cvm_tee_measurements m;
	uint8_t kp_hash[32], os[32], buf[48 * 4 + 32];
	size_t os_len = 0;
	int r;

	*out = NULL;
	*out_len = 0;
	memset(&ai, 0, sizeof(ai));
	r = agent_measurements(a, &m, ai.mr_aggregated);
	if (r != CVM_OK)
		return r;
	kp = agent_find_event(a, "key-provider");
	memset(kp_hash, 0, sizeof(kp_hash));
	if (kp != NULL)
		cvm_sha256(kp->payload, kp->payload_len, kp_hash);
	/* spec §5.5: mr_system = SHA-256(MRTD || RTMR0..2 || mr_key_provider) */
	memcpy(buf, m.mrtd, 48);
	memcpy(buf + 48, m.rtmr[0], 48);
	memcpy(buf + 96, m.rtmr[1], 48);
	memcpy(buf + 144, m.rtmr[2], 48);
	memcpy(buf + 192, kp_hash, 32);
	cvm_sha256(buf, sizeof(buf), ai.mr_system);
	cvm_sha256("", 0, ai.device_id);
	if (cvm_hex_decode(a->os_image_hash, strlen(a->os_image_hash), os, sizeof(os), &os_len) != CVM_OK)
		os_len = 0;
	for (size_t i = 0; i < 3; i++)
		ev[i] = agent_find_event(a, names[i]);
	ai.app_id = ev[0] != NULL ? ev[0]->payload : NULL;
	ai.app_id_len = ev[0] != NULL ? ev[0]->payload_len : 0;
	ai.compose_hash = ev[1] != NULL ? ev[1]->payload : NULL;
	ai.compose_hash_len = ev[1] != NULL ? ev[1]->payload_len : 0;
	ai.instance_id = ev[2] != NULL ? ev[2]->payload : NULL;
	ai.instance_id_len = ev[2] != NULL ? ev[2]->payload_len : 0;
	ai.os_image_hash = os;
	ai.os_image_hash_len = os_len;
	ai.key_provider_info = kp != NULL ? kp->payload : NULL;
	ai.key_provider_info_len = kp != NULL ? kp->payload_len : 0;
	return cvm_ratls_app_info_encode(&ai, out, out_len);
}

int agent_tls_ctx_new(struct agent *a, uint64_t lifetime_s, SSL_CTX **out, int64_t *not_after, char *err,
                      size_t err_len)
{
	struct cvm_cert_template tpl;
	char *pem = NULL;
	size_t pem_len = 0;
	int64_t now = (int64_t)time(NULL);
	int r;

	*out = NULL;
	*not_after = 0;
	cvm_cert_template_init(&tpl);
	tpl.common_name = "cvm-agentd";
	tpl.organization = "cvmkit";
	/* a few minutes of slack for a client whose clock is behind */
	tpl.not_before = now - 300;
	tpl.not_after = now + (int64_t)lifetime_s;
	tpl.usage_server_auth = true;
	r = agent_ratls_cert(a, &tpl, a->identity, true, NULL, 0, NULL, NULL, &pem, &pem_len, err, err_len);
	if (r != CVM_OK) {
		if (err[0] == '\0')
			(void)snprintf(err, err_len, "cannot make the TLS certificate: %s", cvm_strerror(r));
		return r;
	}
	r = cvm_tls_server_ctx_new(pem, a->identity, NULL, out);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot make the TLS context: %s", cvm_strerror(r));
	else
		*not_after = tpl.not_after;
	free(pem);
	return r;
}
