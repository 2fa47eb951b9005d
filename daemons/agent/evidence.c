/* What the agent hands out as evidence: the event log as JSON, dstack's
 * VersionedAttestation (SCALE, V0), Info's tcb_info and cvmkit's evidence
 * bundle. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>

#include "agent.h"

/* The largest VersionedAttestation we build: a quote, the CCEL and the
 * runtime log, all capped well below this. */
#define ATTESTATION_MAX ((size_t)32 * 1024 * 1024)

static json_t *event_json(const struct agent_event *e, bool with_payload)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if (cvm_json_set(o, "imr", json_integer(e->imr)) != CVM_OK ||
	    cvm_json_set(o, "event_type", json_integer(e->type)) != CVM_OK ||
	    cvm_json_set(o, "digest", cvm_json_hex(e->digest, sizeof(e->digest))) != CVM_OK ||
	    cvm_json_set(o, "event", json_string(e->name)) != CVM_OK ||
	    cvm_json_set(o, "event_payload",
	                 with_payload ? cvm_json_hex(e->payload, e->payload_len) : json_string("")) !=
	        CVM_OK) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *agent_event_log_json(const struct agent *a, bool with_boot_payloads)
{
	json_t *arr = json_array();

	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < a->boot_count; i++) {
		if (json_array_append_new(arr, event_json(&a->boot[i], with_boot_payloads)) != 0)
			goto fail;
	}
	/* Runtime events keep their digests, unlike dstack's agent, so that a
	 * client can replay RTMR3 from this log alone (the SDK's replayRtmrs). */
	for (size_t i = 0; i < a->rt.count; i++) {
		if (json_array_append_new(arr, event_json(&a->rt.ev[i], true)) != 0)
			goto fail;
	}
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

const char *agent_quote_log(struct agent *a)
{
	json_t *arr;
	char *s;

	if (a->quote_log != NULL && a->quote_log_gen == a->rt.generation)
		return a->quote_log;
	arr = agent_event_log_json(a, false);
	s = arr == NULL ? NULL : json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	json_decref(arr);
	if (s == NULL)
		return NULL;
	free(a->quote_log);
	a->quote_log = s;
	a->quote_log_gen = a->rt.generation;
	return s;
}

/* SCALE (Parity's codec) as dstack's VersionedAttestation uses it. */
static void scale_compact(struct cvm_wr *w, uint64_t n)
{
	if (n < ((uint64_t)1 << 6)) {
		cvm_wr_u8(w, (uint8_t)(n << 2));
	} else if (n < ((uint64_t)1 << 14)) {
		cvm_wr_u16le(w, (uint16_t)((n << 2) | 1));
	} else if (n < ((uint64_t)1 << 30)) {
		cvm_wr_u32le(w, (uint32_t)((n << 2) | 2));
	} else {
		uint8_t m = 4;

		while (m < 8 && (n >> (8 * m)) != 0)
			m++;
		cvm_wr_u8(w, (uint8_t)(((m - 4u) << 2) | 3u));
		for (uint8_t i = 0; i < m; i++)
			cvm_wr_u8(w, (uint8_t)(n >> (8 * i)));
	}
}

static void scale_bytes(struct cvm_wr *w, const void *p, size_t n)
{
	scale_compact(w, n);
	cvm_wr_bytes(w, p, n);
}

static void scale_tdx_event(struct cvm_wr *w, const struct agent_event *e)
{
	cvm_wr_u32le(w, e->imr);
	cvm_wr_u32le(w, e->type);
	scale_bytes(w, e->digest, sizeof(e->digest));
	scale_bytes(w, e->name, strlen(e->name));
	scale_bytes(w, e->payload, e->payload_len);
}

int agent_versioned_attestation(const struct agent *a, const uint8_t *quote, size_t quote_len,
                                const uint8_t report_data[64], uint8_t **out, size_t *out_len)
{
	struct cvm_wr w;

	*out = NULL;
	*out_len = 0;
	cvm_wr_init(&w, ATTESTATION_MAX);
	cvm_wr_u8(&w, 0x00); /* VersionedAttestation::V0 */
	cvm_wr_u8(&w, 0x00); /* quote variant DstackTdx */
	scale_bytes(&w, quote, quote_len);
	scale_compact(&w, a->boot_count + a->rt.count);
	for (size_t i = 0; i < a->boot_count; i++)
		scale_tdx_event(&w, &a->boot[i]);
	for (size_t i = 0; i < a->rt.count; i++)
		scale_tdx_event(&w, &a->rt.ev[i]);
	scale_compact(&w, a->rt.count);
	for (size_t i = 0; i < a->rt.count; i++) {
		scale_bytes(&w, a->rt.ev[i].name, strlen(a->rt.ev[i].name));
		scale_bytes(&w, a->rt.ev[i].payload, a->rt.ev[i].payload_len);
	}
	cvm_wr_bytes(&w, report_data, 64);
	scale_bytes(&w, a->vm_config, strlen(a->vm_config));
	return cvm_wr_finish(&w, out, out_len);
}

int agent_measurements(struct agent *a, struct cvm_tee_measurements *m, uint8_t mr_aggregated[32])
{
	uint8_t buf[48 * 8], zero[48];
	size_t n = 0;
	int r;

	memset(m, 0, sizeof(*m));
	r = cvm_tee_measurements(a->tee, m);
	if (r != CVM_OK)
		return r;
	memset(zero, 0, sizeof(zero));
	memcpy(buf + n, m->mrtd, 48);
	n += 48;
	for (unsigned i = 0; i < 4; i++) {
		memcpy(buf + n, m->rtmr[i], 48);
		n += 48;
	}
	/* spec §5.5: the three owner fields enter only when one is not zero */
	if (memcmp(a->mr_config_id, zero, 48) != 0 || memcmp(a->mr_owner, zero, 48) != 0 ||
	    memcmp(a->mr_owner_config, zero, 48) != 0) {
		memcpy(buf + n, a->mr_config_id, 48);
		memcpy(buf + n + 48, a->mr_owner, 48);
		memcpy(buf + n + 96, a->mr_owner_config, 48);
		n += 144;
	}
	cvm_sha256(buf, n, mr_aggregated);
	return CVM_OK;
}

json_t *agent_tcb_info(struct agent *a)
{
	struct cvm_tee_measurements m;
	const struct agent_event *ch = agent_find_event(a, "compose-hash");
	uint8_t agg[32], dev[32];
	json_t *o = NULL;
	char name[8];

	if (agent_measurements(a, &m, agg) != CVM_OK)
		return NULL;
	cvm_sha256("", 0, dev);
	o = json_object();
	if (o == NULL)
		return NULL;
	if (cvm_json_set(o, "mrtd", cvm_json_hex(m.mrtd, 48)) != CVM_OK)
		goto fail;
	for (unsigned i = 0; i < 4; i++) {
		(void)snprintf(name, sizeof(name), "rtmr%u", i);
		if (cvm_json_set(o, name, cvm_json_hex(m.rtmr[i], 48)) != CVM_OK)
			goto fail;
	}
	if (cvm_json_set(o, "mr_aggregated", cvm_json_hex(agg, 32)) != CVM_OK ||
	    cvm_json_set(o, "os_image_hash", json_string(a->os_image_hash)) != CVM_OK ||
	    cvm_json_set(o, "compose_hash",
	                 ch != NULL ? cvm_json_hex(ch->payload, ch->payload_len) : json_string("")) !=
	        CVM_OK ||
	    cvm_json_set(o, "device_id", cvm_json_hex(dev, 32)) != CVM_OK ||
	    cvm_json_set(o, "event_log", agent_event_log_json(a, true)) != CVM_OK ||
	    cvm_json_set(o, "app_compose", json_stringn(a->app_compose, a->app_compose_len)) != CVM_OK)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *ima_log(const struct agent *a)
{
	const char *path = a->cfg.ima_log;
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *v;

	if (path[0] == '\0') {
		if (a->cfg.simulator[0] != '\0')
			return json_null();
		path = "/sys/kernel/security/ima/binary_runtime_measurements";
	}
	if (cvm_file_read(path, AGENT_IMA_LOG_MAX, &buf, &len) != CVM_OK)
		return json_null();
	v = cvm_json_hex(buf, len);
	free(buf);
	return v;
}

int agent_evidence(struct agent *a, const uint8_t *nonce, size_t nonce_len, json_t **out, char *err,
                   size_t err_len)
{
	struct cvm_tee_evidence ev;
	uint8_t rd[64];
	json_t *o = NULL, *log = NULL;
	int r;

	*out = NULL;
	memset(&ev, 0, sizeof(ev));
	if (nonce_len < AGENT_NONCE_MIN || nonce_len > AGENT_NONCE_MAX) {
		(void)snprintf(err, err_len, "nonce must be %u to %u bytes", AGENT_NONCE_MIN,
		               AGENT_NONCE_MAX);
		return CVM_E_INVAL;
	}
	memset(rd, 0, sizeof(rd));
	memcpy(rd, nonce, nonce_len);
	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot lock the runtime event log: %s", cvm_strerror(r));
		return r;
	}
	r = cvm_tee_quote(a->tee, rd, &ev);
	if (r == CVM_OK) {
		log = agent_event_log_json(a, true);
		if (log == NULL)
			r = CVM_E_NOMEM;
	}
	agent_rtlog_unlock(&a->rt);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot get evidence from the TEE: %s",
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	o = json_object();
	if (o == NULL || cvm_json_set(o, "version", json_integer(1)) != CVM_OK ||
	    cvm_json_set(o, "platform", json_string(ev.platform == CVM_TEE_PLATFORM_SNP ? "snp" : "tdx")) !=
	        CVM_OK ||
	    cvm_json_set(o, "simulated", json_boolean(ev.is_simulated)) != CVM_OK ||
	    cvm_json_set(o, "nonce", cvm_json_hex(nonce, nonce_len)) != CVM_OK ||
	    cvm_json_set(o, "report_data", cvm_json_hex(rd, sizeof(rd))) != CVM_OK ||
	    cvm_json_set(o, "quote", cvm_json_hex(ev.data, ev.data_len)) != CVM_OK ||
	    cvm_json_set(o, "snp_cert_table",
	                 ev.aux != NULL ? cvm_json_hex(ev.aux, ev.aux_len) : json_null()) != CVM_OK ||
	    cvm_json_set(o, "event_log", json_null()) != CVM_OK ||
	    cvm_json_set(o, "vm_config", json_string(a->vm_config)) != CVM_OK ||
	    cvm_json_set(o, "app_compose", json_stringn(a->app_compose, a->app_compose_len)) != CVM_OK ||
	    cvm_json_set(o, "tpm", json_null()) != CVM_OK ||
	    cvm_json_set(o, "ima_log", ima_log(a)) != CVM_OK) {
		(void)snprintf(err, err_len, "out of memory");
		r = CVM_E_NOMEM;
		goto out;
	}
	/* replaces the placeholder in place, keeping the key order; the
	 * reference is taken even when it fails */
	r = json_object_set_new(o, "event_log", log) == 0 ? CVM_OK : CVM_E_NOMEM;
	log = NULL;
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "out of memory");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(log);
	json_decref(o);
	cvm_tee_evidence_cleanup(&ev);
	return r;
}
