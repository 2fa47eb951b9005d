/* The KMS side of SignCert (include/cvmkit/csr.h): verifying the
 * attestation a CSR carries for its key, with the boot-time measurements
 * dstack's BootInfo takes (cvm_ratls_check_va_key), and issuing the leaf
 * under the app's CA (cvm_ratls_issue_csr). docs/ratls.md ("SignCert")
 * says what the caller still has to check. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/csr.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/secret.h>

#include "core/core_lib.h"
#include "crypto/crypto_lib.h"
#include "ratls_int.h"

/* dstack's runtime event names (spec §5.2). */
#define EV_APP_ID "app-id"
#define EV_COMPOSE_HASH "compose-hash"
#define EV_INSTANCE_ID "instance-id"
#define EV_BOOT_MR_DONE "boot-mr-done"
#define EV_SYSTEM_READY "system-ready"

static int first(int rc, int r)
{
	return rc != CVM_OK ? rc : r;
}

/* struct rt_view is one runtime event, from either list of the attestation. */
struct rt_view {
	const char *name;
	const uint8_t *payload;
	size_t len;
	unsigned version;
};

/* rt_at gives runtime event `i`: from runtime_events when the attestation
 * has that list, else from the event log's RTMR3 runtime events. Both
 * replayed to the quoted RTMR3 before this is used (ratls_replay). */
static bool rt_at(const struct cvm_va *va, size_t i, struct rt_view *out)
{
	if (va->runtime_event_count != 0) {
		const struct cvm_va_runtime_event *e;

		if (i >= va->runtime_event_count)
			return false;
		e = &va->runtime_events[i];
		*out = (struct rt_view){e->event, e->payload, e->payload_len, e->version};
		return true;
	}
	for (size_t k = 0; k < va->event_count; k++) {
		const struct cvm_va_event *e = &va->events[k];

		if (e->imr != 3 || e->event_type != CVM_EV_DSTACK_RUNTIME)
			continue;
		if (i-- == 0) {
			*out = (struct rt_view){e->event, e->payload, e->payload_len, e->version};
			return true;
		}
	}
	return false;
}

/* take copies the payload of the first event `name` before system-ready
 * (dstack's find_event: later events are the app's own, EmitEvent's). */
static int take(const struct cvm_va *va, const char *name, uint8_t *dst, size_t cap, size_t *len, bool *found)
{
	struct rt_view e;

	*found = false;
	*len = 0;
	for (size_t i = 0; rt_at(va, i, &e); i++) {
		if (strcmp(e.name, EV_SYSTEM_READY) == 0)
			break;
		if (strcmp(e.name, name) != 0)
			continue;
		if (e.len > cap)
			return CVM_E_FORMAT;
		if (e.len != 0)
			memcpy(dst, e.payload, e.len);
		*len = e.len;
		*found = true;
		return CVM_OK;
	}
	return CVM_OK;
}

/* boot_info computes SignCert's boot-time AppInfo of a TDX attestation. */
static int boot_info(const struct cvm_va *va, const struct cvm_ratls_verdict *verdict,
                     struct cvm_ratls_boot_info *b, struct cvm_report *rep)
{
	struct cvm_quote q;
	struct rt_view e;
	uint8_t buf[48 * 8], zero[48];
	size_t n = 0, len = 0;
	bool found = false, extra;
	int rc;

	memset(b, 0, sizeof(*b));
	memset(zero, 0, sizeof(zero));
	b->tee_variant = cvm_va_variant_name(va->variant);
	if (cvm_quote_parse(va->quote, va->quote_len, &q) != CVM_OK || q.body_type == CVM_BODY_SGX)
		return CVM_E_FORMAT;

	rc = take(va, EV_APP_ID, b->app_id, sizeof(b->app_id), &len, &found);
	if (rc != CVM_OK || !found || len != sizeof(b->app_id)) {
		cvm_report_add(
		    rep, "boot_info", false,
		    "the attestation has no 20-byte app-id runtime event before system-ready: no app "
		    "id to issue the certificate for");
		return CVM_E_FORMAT;
	}
	rc =
	    take(va, EV_COMPOSE_HASH, b->compose_hash, sizeof(b->compose_hash), &b->compose_hash_len, &found);
	if (rc == CVM_OK)
		rc = take(va, EV_INSTANCE_ID, b->instance_id, sizeof(b->instance_id), &b->instance_id_len,
		          &found);
	if (rc != CVM_OK) {
		cvm_report_add(rep, "boot_info", false,
		               "the compose-hash or instance-id event has more than %u bytes",
		               CVM_RATLS_BOOT_VALUE_MAX);
		return rc;
	}

	/* RTMR3 at boot time: the runtime events up to and including
	 * boot-mr-done (all of them when there is none, as dstack) */
	memset(b->rtmr3_boot, 0, sizeof(b->rtmr3_boot));
	for (size_t i = 0; rt_at(va, i, &e); i++) {
		uint8_t d[48], two[96];

		rc = cvm_evl_dstack_digest(e.name, e.payload, e.len, e.version == 2 ? 2 : 1, d);
		if (rc != CVM_OK)
			return rc;
		memcpy(two, b->rtmr3_boot, 48);
		memcpy(two + 48, d, 48);
		rc = cvm_digest(CVM_DIGEST_SHA384, two, sizeof(two), b->rtmr3_boot, 48);
		if (rc != CVM_OK)
			return rc;
		if (strcmp(e.name, EV_BOOT_MR_DONE) == 0) {
			b->boot_mr_done = true;
			break;
		}
	}

	/* mr_system: key_provider_info is ignored at boot time (32 zero bytes) */
	memcpy(buf, q.body.td.mr_td, 48);
	memcpy(buf + 48, q.body.td.rtmr[0], 48);
	memcpy(buf + 96, q.body.td.rtmr[1], 48);
	memcpy(buf + 144, q.body.td.rtmr[2], 48);
	memset(buf + 192, 0, 32);
	cvm_sha256(buf, 224, b->mr_system);
	memcpy(buf + 192, b->rtmr3_boot, 48);
	n = 240;
	extra = memcmp(q.body.td.mr_config_id, zero, 48) != 0 || memcmp(q.body.td.mr_owner, zero, 48) != 0 ||
	        memcmp(q.body.td.mr_owner_config, zero, 48) != 0;
	if (extra) {
		memcpy(buf + 240, q.body.td.mr_config_id, 48);
		memcpy(buf + 288, q.body.td.mr_owner, 48);
		memcpy(buf + 336, q.body.td.mr_owner_config, 48);
		n = 384;
	}
	cvm_sha256(buf, n, b->mr_aggregated);
	cvm_sha256(verdict->dcap.ppid, sizeof(verdict->dcap.ppid), b->device_id);
	cvm_report_add(
	    rep, "boot_info", true, "app id, compose hash and the boot-time measurements (RTMR3 %s)",
	    b->boot_mr_done ? "replayed up to boot-mr-done" : "replayed whole: no boot-mr-done event");
	return CVM_OK;
}

int cvm_ratls_check_va_key(struct cvm_ratls_verifier *v, const uint8_t *va_buf, size_t va_len,
                           const uint8_t *spki_der, size_t spki_len, int64_t at,
                           struct cvm_ratls_verdict *out, struct cvm_report *rep,
                           struct cvm_ratls_boot_info *boot)
{
	struct cvm_va *va = NULL;
	struct cvm_ratls_info view;
	struct cvm_ratls_boot_info b;
	uint8_t want[64], got[64], key_hash[32];
	int64_t expiry;
	char why[256];
	int rc, r;

	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (boot != NULL)
		memset(boot, 0, sizeof(*boot));
	if (rep != NULL)
		cvm_report_init(rep);
	if (v == NULL || va_buf == NULL || spki_der == NULL || spki_len == 0 || spki_len > CVM_CSR_PUBKEY_MAX)
		return CVM_E_INVAL;
	rc = cvm_va_decode(va_buf, va_len, &va, why, sizeof(why));
	if (rc != CVM_OK) {
		cvm_report_add(rep, "parse", false, "the CSR's attestation: %s", why);
		return rc;
	}
	out->profile = CVM_RATLS_PROFILE_DSTACK;
	out->tee = va->tee;
	if (va->tee != CVM_RATLS_TEE_TDX || va->variant != 0) {
		cvm_report_add(
		    rep, "parse", false,
		    "the CSR's attestation is %s: SignCert here takes dstack-tdx attestations only",
		    cvm_va_variant_name(va->variant));
		rc = CVM_E_UNSUPPORTED;
		goto out;
	}
	cvm_report_add(rep, "parse", true, "a %s attestation (V%u)", cvm_va_variant_name(va->variant),
	               va->version);

	/* the quote, with the verifier's collateral and policy */
	rc = ratls_evidence(v, va->tee, va->quote, va->quote_len, NULL, at, out, &expiry, rep);

	/* the binding to the CSR's key: both the quote's report_data and the
	 * attestation's must be SHA-512("ratls-cert:" || SPKI DER) */
	r = cvm_sha512_tagged(RATLS_TAG_CERT, spki_der, spki_len, want);
	if (r == CVM_OK && !va_quote_report_data(va->tee, va->quote, va->quote_len, got))
		r = CVM_E_FORMAT;
	if (r == CVM_OK && (!cvm_ct_equal(got, want, 64) || !cvm_ct_equal(va->report_data, want, 64))) {
		cvm_report_add(
		    rep, "binding", false,
		    "the attestation's report_data does not bind the CSR's public key: it was made "
		    "for another key");
		r = CVM_E_MISMATCH;
	} else if (r == CVM_OK) {
		out->binding = true;
		cvm_report_add(rep, "binding", true, "the quote binds the CSR's public key");
	}
	rc = first(rc, r);

	/* the event log and runtime events replay to the quoted RTMR3 */
	memset(&view, 0, sizeof(view));
	view.profile = CVM_RATLS_PROFILE_DSTACK;
	view.tee = va->tee;
	view.quote = va->quote;
	view.quote_len = va->quote_len;
	view.attestation = va;
	cvm_sha256(spki_der, spki_len, key_hash);
	rc = first(rc, ratls_replay(&view, key_hash, out, rep));

	/* what BootInfo takes, from what verified */
	if (rc == CVM_OK) {
		rc = boot_info(va, out, &b, rep);
		if (rc == CVM_OK && boot != NULL)
			*boot = b;
	}
out:
	ratls_unborrow(out);
	cvm_va_free(va);
	return rc;
}

/* ---- issuing ------------------------------------------------------------- */

static bool usage_ok(const char *u)
{
	size_t n = strnlen(u, 64);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return false;
	return true;
}

/* octet_string writes DER(OCTET STRING(v)), an RA-TLS extension's value. */
static int octet_string(const uint8_t *v, size_t len, uint8_t **out, size_t *out_len)
{
	struct cvm_wr w;
	int rc;

	cvm_wr_init(&w, len + 16);
	cvm_wr_u8(&w, 0x04);
	if (len < 0x80) {
		cvm_wr_u8(&w, (uint8_t)len);
	} else {
		uint8_t n = 0;

		for (size_t t = len; t != 0; t >>= 8)
			n++;
		cvm_wr_u8(&w, (uint8_t)(0x80u | n));
		for (uint8_t i = n; i > 0; i--)
			cvm_wr_u8(&w, (uint8_t)(len >> (8u * (i - 1u))));
	}
	cvm_wr_bytes(&w, v, len);
	rc = cvm_wr_finish(&w, out, out_len);
	cvm_wr_cleanup(&w);
	return rc;
}

int cvm_ratls_issue_csr(const struct cvm_csr *c, const uint8_t app_id[20], const char *usage,
                        const uint8_t *app_info, size_t app_info_len, const struct cvm_p256_keypair *ca_key,
                        const struct cvm_cert *ca_cert, int64_t now, char **pem, size_t *pem_len)
{
	struct cvm_cert_template t;
	struct cvm_cert_ext_spec exts[4];
	uint8_t *val[4] = {NULL, NULL, NULL, NULL};
	size_t val_len[4] = {0, 0, 0, 0}, n = 0;
	int64_t nb, na, cap;
	int rc;

	if (pem == NULL || pem_len == NULL)
		return CVM_E_INVAL;
	*pem = NULL;
	*pem_len = 0;
	if (c == NULL || app_id == NULL || ca_key == NULL || ca_cert == NULL || now < 0 ||
	    now > INT64_MAX - CVM_CSR_LIFETIME_MAX || c->pubkey_der == NULL)
		return CVM_E_INVAL;
	if (usage == NULL)
		usage = CVM_CSR_USAGE_DEFAULT;
	if (!usage_ok(usage))
		return CVM_E_INVAL;
	if (c->ext_app_info && (app_info == NULL || app_info_len == 0 || app_info_len > RATLS_APP_INFO_MAX ||
	                        ratls_app_info_check(app_info, app_info_len, NULL, 0) != CVM_OK))
		return CVM_E_INVAL;
	if (c->ext_quote && (c->attestation == NULL || c->attestation_len == 0))
		return CVM_E_INVAL;

	/* validity: the CSR's wishes, inside the CA's window and the cap */
	cap = now + CVM_CSR_LIFETIME_MAX;
	nb = c->has_not_before ? (c->not_before > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)c->not_before)
	                       : now;
	na =
	    c->has_not_after ? (c->not_after > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)c->not_after) : cap;
	if (nb < cvm_cert_not_before(ca_cert))
		nb = cvm_cert_not_before(ca_cert);
	if (na > cvm_cert_not_after(ca_cert))
		na = cvm_cert_not_after(ca_cert);
	if (na > cap)
		na = cap;
	if (nb >= na)
		return CVM_E_INVAL;

	/* the extensions, each DER(OCTET STRING(value)) (spec §6.1) */
	rc = octet_string(app_id, 20, &val[n], &val_len[n]);
	if (rc != CVM_OK)
		goto out;
	exts[n] = (struct cvm_cert_ext_spec){RATLS_OID_DSTACK_APP_ID, false, val[n], val_len[n]};
	n++;
	if (c->ext_app_info) {
		rc = octet_string(app_info, app_info_len, &val[n], &val_len[n]);
		if (rc != CVM_OK)
			goto out;
		exts[n] = (struct cvm_cert_ext_spec){RATLS_OID_DSTACK_APP_INFO, false, val[n], val_len[n]};
		n++;
	}
	rc = octet_string((const uint8_t *)usage, strlen(usage), &val[n], &val_len[n]);
	if (rc != CVM_OK)
		goto out;
	exts[n] = (struct cvm_cert_ext_spec){RATLS_OID_DSTACK_USAGE, false, val[n], val_len[n]};
	n++;
	if (c->ext_quote) {
		rc = octet_string(c->attestation, c->attestation_len, &val[n], &val_len[n]);
		if (rc != CVM_OK)
			goto out;
		exts[n] = (struct cvm_cert_ext_spec){RATLS_OID_DSTACK_ATTESTATION, false, val[n], val_len[n]};
		n++;
	}

	cvm_cert_template_init(&t);
	t.common_name = c->subject;
	t.organization = c->org_name;
	t.alt_names = (const char *const *)c->alt_names;
	t.alt_name_count = c->alt_name_count;
	t.not_before = nb;
	t.not_after = na;
	t.usage_server_auth = c->usage_server_auth;
	t.usage_client_auth = c->usage_client_auth;
	t.exts = exts;
	t.ext_count = n;
	rc = cvm_cert_make_spki(&t, c->pubkey_der, c->pubkey_der_len, ca_key, ca_cert, pem, pem_len);
out:
	for (size_t i = 0; i < 4; i++)
		free(val[i]);
	return rc;
}
