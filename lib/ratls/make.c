/* Making RA-TLS certificates (cvm_ratls_make) through cvm_cert_make: the
 * dstack profile (1.8 VersionedAttestation V0 for every TEE; for TDX also
 * 1.1 + 1.2 when asked; 1.3/1.4/1.9 when given) and Cosmian's (the raw quote
 * under the TEE's OID, self-signed). The evidence must already bind the
 * certificate's key: this is checked, never assumed. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/amd.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/ratls.h>

#include "ratls_int.h"

#define MAKE_EXTS_MAX 6

/* der_octets wraps `n` bytes in a DER OCTET STRING. */
static int der_octets(const uint8_t *p, size_t n, uint8_t **out, size_t *out_len)
{
	struct cvm_wr w;

	cvm_wr_init(&w, CVM_RATLS_CERT_MAX);
	cvm_wr_u8(&w, CVM_ASN1_OCTET_STRING);
	if (n < 0x80) {
		cvm_wr_u8(&w, (uint8_t)n);
	} else if (n <= 0xff) {
		cvm_wr_u8(&w, 0x81);
		cvm_wr_u8(&w, (uint8_t)n);
	} else if (n <= 0xffff) {
		cvm_wr_u8(&w, 0x82);
		cvm_wr_u16be(&w, (uint16_t)n);
	} else if (n <= 0xffffff) {
		cvm_wr_u8(&w, 0x83);
		cvm_wr_u8(&w, (uint8_t)(n >> 16));
		cvm_wr_u16be(&w, (uint16_t)n);
	} else {
		cvm_wr_cleanup(&w);
		return CVM_E_TOO_LARGE;
	}
	cvm_wr_bytes(&w, p, n);
	return cvm_wr_finish(&w, out, out_len);
}

/* event_log_json writes the full TDX event log as dstack's legacy 1.2 JSON
 * (a JSON array of TdxEvent, bytes in hex); runtime events get their V1
 * digest when they carry none. */
static int event_log_json(const struct cvm_ratls_evidence *ev, uint8_t **out, size_t *out_len)
{
	json_t *arr = json_array();
	char *text = NULL;
	int rc = CVM_OK;

	*out = NULL;
	if (arr == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < ev->event_count && rc == CVM_OK; i++) {
		const struct cvm_va_event *e = &ev->events[i];
		uint8_t d[48];
		const uint8_t *dig = e->digest;
		size_t dig_len = e->digest_len;
		char *dh = NULL, *ph = NULL;
		json_t *o;

		if (e->event_type == CVM_EV_DSTACK_RUNTIME && dig_len == 0) {
			rc = cvm_evl_dstack_digest(e->event != NULL ? e->event : "", e->payload,
			                           e->payload_len, e->version == 2 ? 2 : 1, d);
			dig = d;
			dig_len = sizeof(d);
		}
		if (rc != CVM_OK)
			break;
		dh = cvm_hex_encode_new(dig, dig_len);
		ph = cvm_hex_encode_new(e->payload, e->payload_len);
		o = dh != NULL && ph != NULL
		        ? json_pack("{s:I,s:I,s:s,s:s,s:s}", "imr", (json_int_t)e->imr, "event_type",
		                    (json_int_t)e->event_type, "digest", dh, "event",
		                    e->event != NULL ? e->event : "", "event_payload", ph)
		        : NULL;
		if (o == NULL || json_array_append_new(arr, o) != 0)
			rc = CVM_E_NOMEM;
		free(dh);
		free(ph);
	}
	if (rc == CVM_OK) {
		text = json_dumps(arr, JSON_COMPACT);
		if (text == NULL)
			rc = CVM_E_NOMEM;
	}
	json_decref(arr);
	if (rc != CVM_OK)
		return rc;
	*out = (uint8_t *)text;
	*out_len = strlen(text);
	return CVM_OK;
}

/* snp_chain_blobs gives the DER of the VCEK (or VLEK), ASK and ARK given,
 * for the SNP VersionedAttestation's cert_chain. */
static int snp_chain_blobs(const struct cvm_amd_collateral *c, uint8_t *der[3], size_t der_len[3],
                           size_t *count)
{
	const uint8_t *src[3];
	size_t src_len[3];

	*count = 0;
	if (c == NULL)
		return CVM_OK;
	src[0] = c->vcek != NULL ? c->vcek : c->vlek;
	src_len[0] = c->vcek != NULL ? c->vcek_len : c->vlek_len;
	src[1] = c->ask;
	src_len[1] = c->ask_len;
	src[2] = c->ark;
	src_len[2] = c->ark_len;
	for (size_t i = 0; i < 3; i++) {
		struct cvm_cert *cert = NULL;
		const uint8_t *d;
		size_t n;

		if (src[i] == NULL)
			continue;
		if (cvm_cert_parse(src[i], src_len[i], &cert) != CVM_OK)
			return CVM_E_INVAL;
		cvm_cert_der(cert, &d, &n);
		der[*count] = malloc(n);
		if (der[*count] == NULL) {
			cvm_cert_free(cert);
			return CVM_E_NOMEM;
		}
		memcpy(der[*count], d, n);
		der_len[(*count)++] = n;
		cvm_cert_free(cert);
	}
	return CVM_OK;
}

/* make_va encodes the dstack 1.8 VersionedAttestation V0 of `ev`: for TDX,
 * boot events keep their digests and lose their payloads (a verifier
 * replays RTMR0..2 from the digests), runtime events stay complete (it
 * recomputes their digests and replays RTMR3). */
static int make_va(const struct cvm_ratls_evidence *ev, const uint8_t rd[64], uint8_t **out, size_t *out_len)
{
	struct cvm_va va;
	struct cvm_va_event *events = NULL;
	struct cvm_va_runtime_event *rt = NULL;
	uint8_t *chain[3] = {NULL, NULL, NULL};
	size_t chain_len[3] = {0, 0, 0}, rt_count = 0;
	int rc;

	memset(&va, 0, sizeof(va));
	va.quote = ev->quote;
	va.quote_len = ev->quote_len;
	memcpy(va.report_data, rd, 64);
	va.config = ev->config != NULL ? ev->config : "";
	va.config_len = strlen(va.config);
	if (ev->tee == CVM_RATLS_TEE_TDX) {
		va.variant = 0;
		va.tee = CVM_RATLS_TEE_TDX;
		events = calloc(ev->event_count + 1, sizeof(*events));
		rt = calloc(ev->event_count + 1, sizeof(*rt));
		if (events == NULL || rt == NULL) {
			rc = CVM_E_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < ev->event_count; i++) {
			events[i] = ev->events[i];
			if (events[i].event == NULL)
				events[i].event = "";
			if (events[i].imr < 3) {
				events[i].payload = NULL;
				events[i].payload_len = 0;
			} else if (events[i].event_type == CVM_EV_DSTACK_RUNTIME) {
				rt[rt_count].event = events[i].event;
				rt[rt_count].payload = events[i].payload;
				rt[rt_count].payload_len = events[i].payload_len;
				rt[rt_count++].version = events[i].version;
			}
		}
		va.events = events;
		va.event_count = ev->event_count;
		va.runtime_events = rt;
		va.runtime_event_count = rt_count;
	} else if (ev->tee == CVM_RATLS_TEE_SNP) {
		size_t n = 0;

		va.variant = 3;
		va.tee = CVM_RATLS_TEE_SNP;
		rc = snp_chain_blobs(ev->snp_certs, chain, chain_len, &n);
		if (rc != CVM_OK)
			goto out;
		va.snp_chain = (const uint8_t *const *)chain;
		va.snp_chain_len = chain_len;
		va.snp_chain_count = n;
		va.mr_config = "";
	} else {
		rc = CVM_E_UNSUPPORTED; /* dstack defines no SGX attestation */
		goto out;
	}
	rc = cvm_va_encode(&va, 0, out, out_len);
out:
	for (size_t i = 0; i < 3; i++)
		free(chain[i]);
	free(events);
	free(rt);
	return rc;
}

/* cosmian_value is the raw extnValue of Cosmian's profile: the TDX quote
 * zero-padded to the 8192 bytes Cosmian's buffer has, the SGX quote as is,
 * or the SNP report with its certificate table (tee-tools 2.x). */
static int cosmian_value(const struct cvm_ratls_evidence *ev, uint8_t **out, size_t *out_len)
{
	struct cvm_wr w;

	if (ev->tee == CVM_RATLS_TEE_SNP)
		return cosmian_sev_encode(ev->quote, ev->quote_len, ev->snp_certs, out, out_len);
	if (ev->tee == CVM_RATLS_TEE_TDX && ev->quote_len > RATLS_COSMIAN_TDX_BUF)
		return CVM_E_TOO_LARGE; /* Cosmian reads at most its 8192-byte buffer */
	cvm_wr_init(&w, CVM_RATLS_CERT_MAX);
	cvm_wr_bytes(&w, ev->quote, ev->quote_len);
	if (ev->tee == CVM_RATLS_TEE_TDX && ev->quote_len < RATLS_COSMIAN_TDX_BUF)
		cvm_wr_zeros(&w, RATLS_COSMIAN_TDX_BUF - ev->quote_len);
	return cvm_wr_finish(&w, out, out_len);
}

/* check_evidence checks that `ev` is evidence cvm_ratls_make can carry and
 * that its report_data binds `key` as the profile defines it, which it
 * writes to `want`. */
static int check_evidence(const struct cvm_ratls_make_opts *o, const struct cvm_p256_keypair *key,
                          const struct cvm_ratls_evidence *ev, uint8_t want[64])
{
	uint8_t got[64];
	int rc;

	if (ev->quote == NULL || ev->quote_len == 0 || (ev->events == NULL && ev->event_count != 0))
		return CVM_E_INVAL;
	if (ev->tee != CVM_RATLS_TEE_TDX && ev->tee != CVM_RATLS_TEE_SNP &&
	    !(ev->tee == CVM_RATLS_TEE_SGX && o->profile == CVM_RATLS_PROFILE_COSMIAN))
		return CVM_E_UNSUPPORTED;
	if (ev->quote_len > CVM_RATLS_CERT_MAX / 2 || ev->event_count > RATLS_VA_EVENTS_MAX)
		return CVM_E_TOO_LARGE;
	/* the evidence must bind this key, as the profile defines it */
	rc = cvm_ratls_report_data(o->profile, key, o->cosmian_extra, want);
	if (rc != CVM_OK)
		return rc;
	if (!va_quote_report_data(ev->tee, ev->quote, ev->quote_len, got))
		return CVM_E_INVAL;
	if (memcmp(got, want,
	           o->profile == CVM_RATLS_PROFILE_COSMIAN && o->cosmian_extra == NULL ? 32 : 64) != 0)
		return CVM_E_INVAL;

	return CVM_OK;
}

int cvm_ratls_make(const struct cvm_ratls_make_opts *o, const struct cvm_p256_keypair *key,
                   const struct cvm_ratls_evidence *ev, const struct cvm_p256_keypair *issuer_key,
                   const struct cvm_cert *issuer, char **out_pem, size_t *out_len)
{
	struct cvm_cert_ext_spec exts[MAKE_EXTS_MAX];
	uint8_t *vals[MAKE_EXTS_MAX] = {NULL};
	size_t val_len[MAKE_EXTS_MAX] = {0}, n = 0;
	struct cvm_cert_template t;
	uint8_t want[64], *raw = NULL;
	size_t raw_len = 0;
	int rc;

	*out_pem = NULL;
	*out_len = 0;
	if (o == NULL || key == NULL || (issuer == NULL) != (issuer_key == NULL))
		return CVM_E_INVAL;
	if (o->profile != CVM_RATLS_PROFILE_DSTACK && o->profile != CVM_RATLS_PROFILE_COSMIAN)
		return CVM_E_INVAL;
	if (o->profile == CVM_RATLS_PROFILE_COSMIAN && issuer != NULL)
		return CVM_E_INVAL; /* Cosmian's certificates are always self-signed */
	/* Without evidence (dstack only): 1.3, 1.4 and 1.9 alone. */
	if (ev == NULL && o->profile != CVM_RATLS_PROFILE_DSTACK)
		return CVM_E_INVAL;
	if (ev != NULL)
		rc = check_evidence(o, key, ev, want);
	else
		rc = CVM_OK;
	if (rc != CVM_OK)
		return rc;

	if (o->profile == CVM_RATLS_PROFILE_DSTACK && ev != NULL) {
		rc = make_va(ev, want, &raw, &raw_len);
		if (rc == CVM_OK)
			rc = der_octets(raw, raw_len, &vals[n], &val_len[n]);
		if (rc != CVM_OK)
			goto out;
		exts[n++].oid = RATLS_OID_DSTACK_ATTESTATION;
		free(raw);
		raw = NULL;
		if (ev->tee == CVM_RATLS_TEE_TDX && o->legacy_tdx) {
			rc = der_octets(ev->quote, ev->quote_len, &vals[n], &val_len[n]);
			if (rc != CVM_OK)
				goto out;
			exts[n++].oid = RATLS_OID_DSTACK_QUOTE;
			rc = event_log_json(ev, &raw, &raw_len);
			if (rc == CVM_OK)
				rc = der_octets(raw, raw_len, &vals[n], &val_len[n]);
			if (rc != CVM_OK)
				goto out;
			exts[n++].oid = RATLS_OID_DSTACK_EVENT_LOG;
		}
	}
	if (o->profile == CVM_RATLS_PROFILE_DSTACK) {
		if (o->app_id != NULL) {
			rc = der_octets(o->app_id, 20, &vals[n], &val_len[n]);
			if (rc != CVM_OK)
				goto out;
			exts[n++].oid = RATLS_OID_DSTACK_APP_ID;
		}
		if (o->usage != NULL) {
			size_t ul = strlen(o->usage);

			if (ul == 0 || ul >= sizeof(((struct cvm_ratls_info *)NULL)->usage)) {
				rc = CVM_E_INVAL;
				goto out;
			}
			rc = der_octets((const uint8_t *)o->usage, ul, &vals[n], &val_len[n]);
			if (rc != CVM_OK)
				goto out;
			exts[n++].oid = RATLS_OID_DSTACK_USAGE;
		}
		if (o->app_info != NULL) {
			rc = ratls_app_info_check(o->app_info, o->app_info_len, NULL, 0);
			if (rc != CVM_OK) {
				rc = CVM_E_INVAL;
				goto out;
			}
			rc = der_octets(o->app_info, o->app_info_len, &vals[n], &val_len[n]);
			if (rc != CVM_OK)
				goto out;
			exts[n++].oid = RATLS_OID_DSTACK_APP_INFO;
		}
	} else {
		rc = cosmian_value(ev, &vals[n], &val_len[n]);
		if (rc != CVM_OK)
			goto out;
		exts[n++].oid = ev->tee == CVM_RATLS_TEE_TDX   ? RATLS_OID_COSMIAN_TDX
		                : ev->tee == CVM_RATLS_TEE_SGX ? RATLS_OID_COSMIAN_SGX
		                                               : RATLS_OID_COSMIAN_SEV;
	}
	for (size_t i = 0; i < n; i++) {
		exts[i].critical = false;
		exts[i].value = vals[i];
		exts[i].value_len = val_len[i];
	}
	cvm_cert_template_init(&t);
	t.common_name = o->common_name;
	t.organization = o->organization;
	t.alt_names = o->alt_names;
	t.alt_name_count = o->alt_name_count;
	t.not_before = o->not_before;
	t.not_after = o->not_after;
	t.usage_server_auth = o->server_auth;
	t.usage_client_auth = o->client_auth;
	t.exts = exts;
	t.ext_count = n;
	rc = cvm_cert_make(&t, key, issuer_key, issuer, out_pem, out_len);
out:
	for (size_t i = 0; i < MAKE_EXTS_MAX; i++)
		free(vals[i]);
	free(raw);
	return rc;
}
