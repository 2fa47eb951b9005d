/* dstack-verifier's POST /verify (verifier.h, docs/daemons/cvm-verifierd-dstack.md).
 *
 * The request is {"attestation": hex} (a VersionedAttestation) or
 * {"quote": hex, "event_log": JSON text, "vm_config": JSON text}, every field
 * optional (dstack's VerificationRequest); with an attestation the top-level
 * quote, event_log and vm_config are ignored. A body that is not such an
 * object gets 400; any other request gets 200 and a verdict, whose "reason"
 * names the first check that failed.
 *
 * The rule that matters: os_image_hash_verified is true only when the quote
 * verified and the image's measurement document, reached from the claimed
 * hash through its checksum file, gives the quote's MRTD, RTMR1 and RTMR2
 * (cvm_osimage_tdx_bind). A hash that is only claimed is never verified. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/osimage.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tee.h>
#include <cvmkit/verify.h>

#include "dstack_int.h"
#include "verifier.h"

#define REASON_MAX 512
#define MR ((size_t)48) /* a measurement register */
#define TD_ATTR_DEBUG 1u

/* struct dreq is the request, decoded. Strings borrow from the JSON. */
struct dreq {
	uint8_t *quote; /* NULL: absent */
	size_t quote_len;
	const char *event_log; /* NULL: absent */
	size_t event_log_len;
	const char *vm_config;
	size_t vm_config_len;
	uint8_t *attestation;
	size_t attestation_len;
	bool debug;
};

/* struct evidence is what the checks run on: a VersionedAttestation, decoded
 * (attestation form) or built from the quote form (`own` non-NULL). */
struct evidence {
	struct cvm_va *decoded;
	struct cvm_va built;
	uint8_t **own; /* the built form's buffers */
	size_t own_count;
	json_t *log; /* the built form's event log: the event names borrow from it */
	const struct cvm_va *va;
};

/* struct appinfo is what the runtime events before system-ready say. The
 * os-image-hash event is the KMS's answer, not the image's digest (the
 * answer's os_image_hash is vm_config's, verified or not by the OS image
 * check), so it is not read. */
struct appinfo {
	const uint8_t *app_id, *compose_hash, *instance_id, *key_provider;
	size_t app_id_len, compose_hash_len, instance_id_len, key_provider_len;
	bool has_app_id, has_compose_hash, has_instance_id, has_key_provider;
};

/* struct verdict is everything the answer reports. */
struct verdict {
	bool quote_verified, event_log_verified, os_image_hash_verified, report_data_ok;
	bool quote_evaluated; /* tcb_status is known */
	bool quote_parsed;
	struct cvm_dcap_result res;
	struct cvm_cache_info info;
	bool has_info;
	struct cvm_report rep;    /* the quote and the event log */
	struct cvm_report os_rep; /* the OS image binding (its own: its reason is its first failure) */
	struct cvm_va_check chk;
	struct appinfo app;
	uint8_t mr_system[32], mr_aggregated[32], device_id[32];
	uint8_t os_image_hash[32];
	bool has_os_image_hash;
	bool simulated;
	char reason[REASON_MAX]; /* the first failure, "" when valid */
};

static void fail(struct verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	if (v->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	(void)vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* ---- the request ------------------------------------------------------- */

/* hex_field decodes a hex string of at most `max` bytes into a new buffer. */
static int hex_field(json_t *s, size_t max, uint8_t **out, size_t *out_len)
{
	const char *hex = json_string_value(s);
	size_t n = json_string_length(s);
	uint8_t *buf;
	int r;

	*out = NULL;
	*out_len = 0;
	if (n % 2 != 0 || n / 2 > max)
		return CVM_E_FORMAT;
	buf = malloc(n / 2 + 1);
	if (buf == NULL)
		return CVM_E_NOMEM;
	r = cvm_hex_decode_exact(hex, n, buf, n / 2);
	if (r != CVM_OK) {
		free(buf);
		return r;
	}
	*out = buf;
	*out_len = n / 2;
	return CVM_OK;
}

static void dreq_cleanup(struct dreq *q)
{
	free(q->quote);
	free(q->attestation);
	memset(q, 0, sizeof(*q));
}

/* dreq_parse reads `o`: every field optional, null reads as absent (serde's
 * Option), unknown fields ignored. Writes the 400 message to `err`. */
static int dreq_parse(json_t *o, struct dreq *q, char *err, size_t err_len)
{
	json_t *v;
	int r;

	memset(q, 0, sizeof(*q));
	v = json_object_get(o, "quote");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v)) {
			(void)snprintf(err, err_len, "\"quote\" must be a hex string");
			return CVM_E_FORMAT;
		}
		r = hex_field(v, CVM_QUOTE_MAX, &q->quote, &q->quote_len);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "\"quote\" is not hex (without 0x) of at most %zu bytes",
			               CVM_QUOTE_MAX);
			return r;
		}
	}
	v = json_object_get(o, "attestation");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v)) {
			(void)snprintf(err, err_len, "\"attestation\" must be a hex string");
			return CVM_E_FORMAT;
		}
		r = hex_field(v, CVM_VA_MAX, &q->attestation, &q->attestation_len);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len,
			               "\"attestation\" is not hex (without 0x) of at most %zu bytes",
			               CVM_VA_MAX);
			return r;
		}
	}
	v = json_object_get(o, "event_log");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) > DSTACK_EVENT_LOG_MAX) {
			(void)snprintf(err, err_len,
			               "\"event_log\" must be a string (the event log as JSON text) of at "
			               "most %zu bytes",
			               DSTACK_EVENT_LOG_MAX);
			return CVM_E_FORMAT;
		}
		q->event_log = json_string_value(v);
		q->event_log_len = json_string_length(v);
	}
	v = json_object_get(o, "vm_config");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) > DSTACK_VM_CONFIG_MAX) {
			(void)snprintf(err, err_len,
			               "\"vm_config\" must be a string (the VM config as JSON text) of at "
			               "most %zu bytes",
			               DSTACK_VM_CONFIG_MAX);
			return CVM_E_FORMAT;
		}
		q->vm_config = json_string_value(v);
		q->vm_config_len = json_string_length(v);
	}
	v = json_object_get(o, "debug");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			(void)snprintf(err, err_len, "\"debug\" must be true or false");
			return CVM_E_FORMAT;
		}
		q->debug = json_is_true(v);
	}
	return CVM_OK;
}

/* ---- the evidence ------------------------------------------------------ */

static void evidence_cleanup(struct evidence *e)
{
	cvm_va_free(e->decoded);
	for (size_t i = 0; i < e->own_count; i++)
		free(e->own[i]);
	free(e->own);
	free(e->built.events);
	free(e->built.runtime_events);
	json_decref(e->log);
	memset(e, 0, sizeof(*e));
}

/* own_hex decodes a hex string into a buffer the evidence owns. */
static int own_hex(struct evidence *e, json_t *s, size_t max, const uint8_t **out, size_t *out_len)
{
	uint8_t *buf = NULL;
	int r;

	r = hex_field(s, max, &buf, out_len);
	if (r != CVM_OK)
		return r;
	e->own[e->own_count++] = buf;
	*out = buf;
	return CVM_OK;
}

/* build_events reads the event log: [{imr, event_type, digest, event,
 * event_payload}, ...], digests and payloads in hex ("" when stripped).
 * Runtime events (type 0x08000001) become runtime events too, their digest
 * recomputed from name and payload (dstack's Attestation::from_tdx_quote). */
static int build_events(struct evidence *e, const char *text, size_t len, char *why, size_t why_len)
{
	struct cvm_va *va = &e->built;
	json_error_t jerr;
	json_t *log = NULL;
	size_t n;
	int r = CVM_E_FORMAT;

	log = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (log == NULL || !json_is_array(log)) {
		(void)snprintf(why, why_len, "event_log is not a JSON array");
		goto out;
	}
	n = json_array_size(log);
	if (n > DSTACK_EVENTS_MAX) {
		(void)snprintf(why, why_len, "event_log has %zu events, more than the %u allowed", n,
		               DSTACK_EVENTS_MAX);
		goto out;
	}
	va->events = calloc(n + 1, sizeof(*va->events));
	va->runtime_events = calloc(n + 1, sizeof(*va->runtime_events));
	e->own = calloc(2 * n + 1, sizeof(*e->own));
	if (va->events == NULL || va->runtime_events == NULL || e->own == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *ev = json_array_get(log, i);
		json_t *imr = json_object_get(ev, "imr"), *type = json_object_get(ev, "event_type");
		json_t *digest = json_object_get(ev, "digest"), *name = json_object_get(ev, "event");
		json_t *payload = json_object_get(ev, "event_payload");
		struct cvm_va_event *out = &va->events[va->event_count];

		if (!json_is_object(ev) || !json_is_integer(imr) || !json_is_integer(type) ||
		    json_integer_value(imr) < 0 || json_integer_value(imr) > 3 ||
		    json_integer_value(type) < 0 || json_integer_value(type) > (json_int_t)UINT32_MAX ||
		    !json_is_string(digest) || !json_is_string(name) || !json_is_string(payload) ||
		    strlen(json_string_value(name)) != json_string_length(name) ||
		    json_string_length(name) > CVM_EVL_DSTACK_NAME_MAX) {
			(void)snprintf(why, why_len,
			               "event_log entry %zu is not {imr 0..3, event_type, digest, event, "
			               "event_payload} with hex digest and payload",
			               i);
			r = CVM_E_FORMAT; /* r held the previous entry's CVM_OK */
			goto out;
		}
		out->imr = (uint32_t)json_integer_value(imr);
		out->event_type = (uint32_t)json_integer_value(type);
		out->event = json_string_value(name);
		r = own_hex(e, digest, 48, &out->digest, &out->digest_len);
		if (r == CVM_OK)
			r = own_hex(e, payload, DSTACK_PAYLOAD_MAX, &out->payload, &out->payload_len);
		if (r != CVM_OK || (out->digest_len != 0 && out->digest_len != 48)) {
			(void)snprintf(
			    why, why_len,
			    "event_log entry %zu: digest (48 bytes or empty) or payload (at most %zu "
			    "bytes) is not hex",
			    i, DSTACK_PAYLOAD_MAX);
			r = r == CVM_E_NOMEM ? r : CVM_E_FORMAT;
			goto out;
		}
		va->event_count++;
		if (out->event_type == CVM_EV_DSTACK_RUNTIME) {
			struct cvm_va_runtime_event *rt = &va->runtime_events[va->runtime_event_count++];

			rt->event = out->event;
			rt->payload = out->payload;
			rt->payload_len = out->payload_len;
		}
	}
	e->log = log;
	log = NULL; /* transferred */
	r = CVM_OK;
out:
	json_decref(log);
	return r;
}

/* evidence_build turns the request into a VersionedAttestation. A failure
 * here is a verification failure (`v->reason`), not a bad request. */
static int evidence_build(const struct dreq *q, struct evidence *e, struct verdict *v)
{
	struct cvm_quote quote;
	char why[200];
	int r;

	memset(e, 0, sizeof(*e));
	if (q->attestation != NULL) {
		r = cvm_va_decode(q->attestation, q->attestation_len, &e->decoded, why, sizeof(why));
		if (r != CVM_OK) {
			fail(v, "the attestation is not a VersionedAttestation: %s", why);
			return r;
		}
		e->va = e->decoded;
		return CVM_OK;
	}
	if (q->quote == NULL) {
		fail(v, "the request has neither an attestation nor a quote: send {\"attestation\": hex} or "
		        "{\"quote\": hex, \"event_log\": ..., \"vm_config\": ...}");
		return CVM_E_INVAL;
	}
	/* dstack takes report_data from the quote in this form */
	if (cvm_quote_parse(q->quote, q->quote_len, &quote) == CVM_OK && quote.tee == CVM_TEE_TDX)
		memcpy(e->built.report_data, quote.body.td.report_data, 64);
	e->built.version = 0;
	e->built.variant = 0;
	e->built.tee = CVM_RATLS_TEE_TDX;
	e->built.quote = q->quote;
	e->built.quote_len = q->quote_len;
	e->built.config = q->vm_config;
	e->built.config_len = q->vm_config_len;
	if (q->event_log == NULL) {
		fail(v, "the request has a quote but no event_log");
		return CVM_E_INVAL;
	}
	r = build_events(e, q->event_log, q->event_log_len, why, sizeof(why));
	if (r != CVM_OK) {
		fail(v, "%s", why);
		return r;
	}
	e->va = &e->built;
	return CVM_OK;
}

/* ---- the checks -------------------------------------------------------- */

int dstack_quote_cache(struct vd_ctx *ctx, const uint8_t *quote, size_t len, int64_t now,
                       struct cvm_dcap_result *res, struct cvm_cache_info *info, struct cvm_report *rep,
                       char *err, size_t err_len)
{
	struct cvm_dcap_verified *dv = NULL;
	int r;

	if (ctx->cache == NULL) {
		(void)snprintf(err, err_len, "this service has no collateral cache to verify the quote with");
		return CVM_E_NOT_FOUND;
	}
	r = cvm_cache_dcap_warm(ctx->cache, quote, len, now, &dv, info, rep, err, err_len);
	if (r != CVM_OK)
		return r;
	return cvm_verify_quote_warm(dv, quote, len, now, &ctx->policy, rep, res);
}

/* app_info_read takes the first of each event before system-ready. */
static void app_info_read(const struct cvm_va *va, struct appinfo *a)
{
	memset(a, 0, sizeof(*a));
	for (size_t i = 0; i < va->runtime_event_count; i++) {
		const struct cvm_va_runtime_event *e = &va->runtime_events[i];

		if (strcmp(e->event, "system-ready") == 0)
			break;
		if (strcmp(e->event, "app-id") == 0 && !a->has_app_id) {
			a->has_app_id = true;
			a->app_id = e->payload;
			a->app_id_len = e->payload_len;
		} else if (strcmp(e->event, "compose-hash") == 0 && !a->has_compose_hash) {
			a->has_compose_hash = true;
			a->compose_hash = e->payload;
			a->compose_hash_len = e->payload_len;
		} else if (strcmp(e->event, "instance-id") == 0 && !a->has_instance_id) {
			a->has_instance_id = true;
			a->instance_id = e->payload;
			a->instance_id_len = e->payload_len;
		} else if (strcmp(e->event, "key-provider") == 0 && !a->has_key_provider) {
			a->has_key_provider = true;
			a->key_provider = e->payload;
			a->key_provider_len = e->payload_len;
		}
	}
}

/* check_os_image applies the rule of this file's head. The binding is
 * computed (and reported as steps) even when the quote did not verify, but
 * is only ever true on a verified quote. */
static void check_os_image(const struct cvm_va *va, const struct cvm_tdx_report *td, struct verdict *v)
{
	struct cvm_osimage_tdx_evidence ev;
	json_error_t jerr;
	json_t *cfg = NULL, *m, *cs, *ms, *h, *sp;
	uint8_t *checksum = NULL, *doc = NULL;
	size_t checksum_len = 0, doc_len = 0;
	const char *variant;
	int r;

	if (va->config == NULL || va->config_len == 0) {
		fail(v, "os image: the request has no vm_config, so no image hash to verify");
		goto out;
	}
	cfg = json_loadb(va->config, va->config_len, JSON_REJECT_DUPLICATES, &jerr);
	if (cfg == NULL || !json_is_object(cfg)) {
		fail(v, "os image: vm_config is not a JSON object");
		goto out;
	}
	h = json_object_get(cfg, "os_image_hash");
	if (!json_is_string(h) || cvm_hex_decode_exact(json_string_value(h), json_string_length(h),
	                                               v->os_image_hash, 32) != CVM_OK) {
		fail(v, "os image: vm_config has no os_image_hash (64 hex digits)");
		goto out;
	}
	v->has_os_image_hash = true;
	if (v->chk.snp_parsed || va->tee != CVM_RATLS_TEE_TDX) {
		fail(v, "os image: cvmkit verifies the OS image of dstack TDX guests only (tdx-lite); this "
		        "platform's image binding is not verified");
		goto out;
	}
	variant = json_string_value(json_object_get(cfg, "tdx_attestation_variant"));
	m = json_object_get(cfg, "tdx_measurement");
	if (variant == NULL || strcmp(variant, "lite") != 0 || !json_is_object(m)) {
		fail(v,
		     "os image: vm_config carries no tdx-lite measurement (tdx_attestation_variant \"lite\" "
		     "with tdx_measurement); cvmkit does not download images, so the image hash is not "
		     "verified");
		goto out;
	}
	cs = json_object_get(m, "checksum_file");
	ms = json_object_get(m, "measurement");
	sp = json_object_get(cfg, "qemu_single_pass_add_pages");
	if (!json_is_string(cs) || !json_is_string(ms) ||
	    (sp != NULL && !json_is_null(sp) && !json_is_boolean(sp))) {
		fail(v, "os image: tdx_measurement needs checksum_file and measurement (base64)");
		goto out;
	}
	r = cvm_base64_decode(json_string_value(cs), json_string_length(cs), CVM_OSIMAGE_CHECKSUMS_MAX,
	                      &checksum, &checksum_len);
	if (r == CVM_OK)
		r = cvm_base64_decode(json_string_value(ms), json_string_length(ms), CVM_OSIMAGE_TDX_MAX,
		                      &doc, &doc_len);
	if (r != CVM_OK) {
		fail(v,
		     "os image: tdx_measurement.checksum_file or .measurement is not base64 within its cap");
		goto out;
	}
	memset(&ev, 0, sizeof(ev));
	ev.os_image_hash = v->os_image_hash;
	ev.checksum_file = checksum;
	ev.checksum_file_len = checksum_len;
	ev.measurement = doc;
	ev.measurement_len = doc_len;
	ev.single_pass = json_is_true(sp);
	ev.mrtd = td->mr_td;
	for (unsigned i = 0; i < 3; i++)
		ev.rtmr[i] = td->rtmr[i];
	r = cvm_osimage_tdx_bind(&ev, NULL, &v->os_rep);
	if (r != CVM_OK) {
		fail(v, "os image: %s",
		     cvm_report_reason(&v->os_rep) != NULL ? cvm_report_reason(&v->os_rep) : cvm_strerror(r));
		goto out;
	}
	/* Bound to the quote's registers; true only if those are authentic. */
	v->os_image_hash_verified = v->quote_verified;
	if (!v->quote_verified)
		fail(v, "os image: the measurement document matches the quote, but the quote did not verify");
out:
	free(checksum);
	free(doc);
	json_decref(cfg);
}

static void run_checks(struct vd_ctx *ctx, const struct cvm_va *va, struct verdict *v,
                       dstack_quote_fn quote_fn)
{
	const struct cvm_tdx_report *td = NULL;
	char err[320];
	int r;

	cvm_va_check(va, &v->chk);
	if (va->tee == CVM_RATLS_TEE_SNP) {
		fail(v,
		     "quote: SEV-SNP attestations are not verified by POST /verify in this version; use POST "
		     "/cvmkit/v1/verify");
		return;
	}
	if (va->tee != CVM_RATLS_TEE_TDX || !v->chk.quote_parsed) {
		fail(v, "quote: not a TDX quote (%s)", cvm_va_variant_name(va->variant));
		return;
	}
	v->quote_parsed = true;
	td = &v->chk.quote.body.td;
	v->simulated =
	    vd_chain_is_simulated(ctx, v->chk.quote.pck_chain_pem.p, v->chk.quote.pck_chain_pem.len);

	/* 1. The quote, by Intel's rules and the policy. */
	err[0] = '\0';
	r = quote_fn(ctx, va->quote, va->quote_len, vd_now(ctx), &v->res, &v->info, &v->rep, err,
	             sizeof(err));
	v->has_info = true;
	v->quote_evaluated = v->res.authentic;
	if (r != CVM_OK) {
		const char *why = cvm_report_reason(&v->rep);

		fail(v, "quote: %s", err[0] != '\0' ? err : why != NULL ? why : cvm_strerror(r));
	} else if ((cvm_td_attributes(td) & TD_ATTR_DEBUG) != 0) {
		fail(v, "quote: the TD runs in debug mode (TD_ATTRIBUTES.DEBUG): its memory is readable by "
		        "the host");
	} else {
		v->quote_verified = true;
	}
	cvm_report_add(&v->rep, "quote", v->quote_verified, "%s",
	               v->quote_verified ? "verified" : "not verified");

	/* 2. The event log: RTMR3 from the runtime events, the log's own digests. */
	if (!v->chk.log_ok) {
		fail(v, "event log: %s", v->chk.log_why);
	} else if (!v->chk.runtime_ok) {
		fail(v, "event log: a runtime event's digest cannot be computed");
	} else if (!v->chk.runtime_matches) {
		fail(v, "event log: the runtime events do not replay to the quote's RTMR3");
	}
	cvm_report_add(&v->rep, "rtmr3 replay", v->chk.log_ok && v->chk.runtime_matches, "%s",
	               v->chk.runtime_matches ? "the runtime events replay to the quote's RTMR3"
	                                      : "the runtime events do not replay to the quote's RTMR3");
	for (unsigned i = 0; i < 3; i++) {
		bool covered = (v->chk.covered & (1u << i)) != 0, same = (v->chk.mismatch & (1u << i)) == 0;

		cvm_report_add(&v->rep,
		               i == 0   ? "rtmr0 replay"
		               : i == 1 ? "rtmr1 replay"
		                        : "rtmr2 replay",
		               covered && same, "%s",
		               !covered ? "not replayable from the log (digests stripped or no events)"
		               : same   ? "the log's digests replay to the quote's value"
		                        : "the log's digests do not replay to the quote's value");
	}
	v->event_log_verified = v->quote_verified && v->chk.log_ok && v->chk.runtime_matches;

	/* 3. report_data: the attestation's must be the quote's. */
	v->report_data_ok = v->chk.report_data_matches;
	if (!v->report_data_ok)
		fail(v, "report_data: the attestation's report_data is not the quote's");

	/* 4. App info, mr_system and mr_aggregated (values as read; they mean
	 * something only when is_valid is true). */
	app_info_read(va, &v->app);
	cvm_dstack_aggregate(td, v->app.has_key_provider ? v->app.key_provider : NULL,
	                     v->app.key_provider_len, v->mr_system, v->mr_aggregated);
	if (v->quote_verified)
		cvm_sha256(v->res.ppid, sizeof(v->res.ppid), v->device_id);
	else
		cvm_sha256("", 0, v->device_id);

	/* 5. The OS image. */
	check_os_image(va, td, v);
}

/* ---- the answer -------------------------------------------------------- */

static int jset(json_t *o, const char *k, json_t *v)
{
	return v == NULL ? -1 : json_object_set_new(o, k, v);
}

static json_t *jhex(const uint8_t *p, size_t n)
{
	char *s = cvm_hex_encode_new(p, n);
	json_t *j;

	if (s == NULL)
		return NULL;
	j = json_string(s);
	free(s);
	return j;
}

/* key_provider parses the key-provider payload {"name", "id"}; NULL when
 * absent or of another shape (the answer then has null). */
static json_t *key_provider(const struct appinfo *a)
{
	json_t *kp, *name, *id, *o;
	json_error_t jerr;

	if (!a->has_key_provider)
		return NULL;
	kp = json_loadb((const char *)a->key_provider, a->key_provider_len, JSON_REJECT_DUPLICATES, &jerr);
	name = json_object_get(kp, "name");
	id = json_object_get(kp, "id");
	if (!json_is_string(name) || !json_is_string(id)) {
		json_decref(kp);
		return NULL;
	}
	o = json_object();
	if (o != NULL && (jset(o, "name", json_copy(name)) != 0 || jset(o, "id", json_copy(id)) != 0)) {
		json_decref(o);
		o = NULL;
	}
	json_decref(kp);
	return o;
}

static json_t *app_info_json(const struct verdict *v)
{
	const struct cvm_tdx_report *td = &v->chk.quote.body.td;
	static const char *const rtmr[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	bad |= jset(o, "app_id", jhex(v->app.app_id, v->app.app_id_len));
	bad |= jset(o, "compose_hash", jhex(v->app.compose_hash, v->app.compose_hash_len));
	bad |= jset(o, "instance_id", jhex(v->app.instance_id, v->app.instance_id_len));
	bad |= jset(o, "device_id", jhex(v->device_id, 32));
	bad |= jset(o, "mrtd", jhex(td->mr_td, 48));
	for (unsigned i = 0; i < 4; i++)
		bad |= jset(o, rtmr[i], jhex(td->rtmr[i], 48));
	bad |= jset(o, "mr_system", jhex(v->mr_system, 32));
	bad |= jset(o, "mr_aggregated", jhex(v->mr_aggregated, 32));
	bad |= jset(o, "os_image_hash", jhex(v->os_image_hash, v->has_os_image_hash ? 32 : 0));
	bad |= jset(o, "key_provider_info", jhex(v->app.key_provider, v->app.key_provider_len));
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *advisories(const struct verdict *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && v->quote_evaluated && i < v->res.advisory_count; i++)
		if (json_array_append_new(a, json_string(v->res.advisory_ids[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* boot_info is the KMS BootInfo shape: camelCase, tcbStatus "" when empty. */
static json_t *boot_info_json(const struct verdict *v, const char *variant)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	bad |= jset(o, "teeVariant", json_string(variant));
	bad |= jset(o, "mrAggregated", jhex(v->mr_aggregated, 32));
	bad |= jset(o, "osImageHash", jhex(v->os_image_hash, v->has_os_image_hash ? 32 : 0));
	bad |= jset(o, "mrSystem", jhex(v->mr_system, 32));
	bad |= jset(o, "appId", jhex(v->app.app_id, v->app.app_id_len));
	bad |= jset(o, "composeHash", jhex(v->app.compose_hash, v->app.compose_hash_len));
	bad |= jset(o, "instanceId", jhex(v->app.instance_id, v->app.instance_id_len));
	bad |= jset(o, "deviceId", jhex(v->device_id, 32));
	bad |= jset(o, "keyProviderInfo", jhex(v->app.key_provider, v->app.key_provider_len));
	bad |= jset(o, "tcbStatus",
	            json_string(v->quote_evaluated ? cvm_tcb_status_name(v->res.tcb_status) : ""));
	bad |= jset(o, "advisoryIds", advisories(v));
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* steps_json lists the steps of `rep`, then those of `more`. */
static json_t *steps_json(const struct cvm_report *rep, const struct cvm_report *more)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < rep->count + more->count; i++) {
		const struct cvm_step *st = i < rep->count ? &rep->steps[i] : &more->steps[i - rep->count];
		json_t *s = json_object();

		if (s == NULL || jset(s, "name", json_string(st->name)) != 0 ||
		    jset(s, "ok", json_boolean(st->ok)) != 0 ||
		    jset(s, "detail", json_string(st->detail)) != 0 || json_array_append_new(a, s) != 0) {
			json_decref(s);
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *answer_json(struct vd_ctx *ctx, const struct evidence *e, const struct verdict *v,
                           bool is_valid)
{
	const char *variant = e->va != NULL ? cvm_va_variant_name(e->va->variant) : NULL;
	char anchor[256];
	json_t *o = json_object(), *d = json_object(), *col;
	int bad = 0;

	if (o == NULL || d == NULL) {
		json_decref(o);
		json_decref(d);
		return NULL;
	}
	bad |= jset(d, "quote_verified", json_boolean(v->quote_verified));
	bad |= jset(d, "event_log_verified", json_boolean(v->event_log_verified));
	bad |= jset(d, "os_image_hash_verified", json_boolean(v->os_image_hash_verified));
	/* cvmkit checks no ACPI table contents (RTMR0 is not recomputed). */
	bad |= jset(d, "acpi_tables_verified", json_false());
	/* These come from the image's metadata.json, which the lite variant lacks. */
	bad |= jset(d, "os_image_is_dev", json_null());
	bad |= jset(d, "os_image_version", json_null());
	bad |=
	    jset(d, "tee_variant", variant != NULL && v->quote_parsed ? json_string(variant) : json_null());
	bad |= jset(d, "report_data",
	            v->quote_parsed ? jhex(v->chk.quote.body.td.report_data, 64) : json_null());
	bad |= jset(d, "tcb_status",
	            v->quote_evaluated ? json_string(cvm_tcb_status_name(v->res.tcb_status)) : json_null());
	bad |= jset(d, "advisory_ids", advisories(v));
	if (v->quote_parsed) {
		json_t *kp = key_provider(&v->app);

		bad |= jset(d, "key_provider", kp != NULL ? kp : json_null());
		bad |= jset(d, "app_info", app_info_json(v));
		bad |= jset(d, "boot_info", boot_info_json(v, variant));
	} else {
		bad |= jset(d, "key_provider", json_null());
		bad |= jset(d, "app_info", json_null());
	}
	/* cvmkit's additions (dstack's clients ignore unknown fields). */
	vd_anchor_name(ctx, "tdx", anchor, sizeof(anchor));
	bad |= jset(d, "trust_anchor", json_string(anchor));
	if (v->has_info) {
		/* the same object as POST /cvmkit/v1/verify's (cvmkit.c) */
		col = json_object();
		if (col != NULL) {
			bad |= jset(col, "source", json_string(cvm_cache_source_name(v->info.source)));
			bad |= jset(col, "age_seconds", json_integer(v->info.age_s));
			bad |= jset(col, "stale", json_boolean(v->info.source == CVM_CACHE_FROM_STALE));
			bad |= jset(col, "expires", json_integer(v->info.expires));
			bad |= jset(col, "expires_in", json_integer(v->info.expires - vd_now(ctx)));
			bad |= jset(col, "upstream_error",
			            v->info.upstream_err[0] != '\0' ? json_string(v->info.upstream_err)
			                                            : json_null());
		}
		bad |= jset(d, "collateral", col);
	}
	bad |= jset(d, "simulated", json_boolean(v->simulated));
	bad |= jset(d, "steps", steps_json(&v->rep, &v->os_rep));

	bad |= jset(o, "is_valid", json_boolean(is_valid));
	bad |= jset(o, "details", d);
	bad |= jset(o, "reason", is_valid ? json_null() : json_string(v->reason));
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

void dstack_verify(struct vd_ctx *ctx, const uint8_t *body, size_t len, struct cvm_http_resp *resp,
                   dstack_quote_fn quote_fn)
{
	struct dreq q;
	struct evidence e;
	struct verdict *v = NULL;
	json_error_t jerr;
	json_t *req = NULL, *ans = NULL;
	char err[200];
	bool is_valid;

	memset(&q, 0, sizeof(q));
	memset(&e, 0, sizeof(e));
	req = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL || !json_is_object(req)) {
		cvm_http_resp_error(
		    resp, 400,
		    "the body must be a JSON object: {\"attestation\": hex} or {\"quote\": hex, "
		    "\"event_log\": string, \"vm_config\": string}");
		vd_metrics_verification(ctx, VD_API_DSTACK, VD_ERROR);
		goto out;
	}
	if (dreq_parse(req, &q, err, sizeof(err)) != CVM_OK) {
		cvm_http_resp_error(resp, 400, "%s", err);
		vd_metrics_verification(ctx, VD_API_DSTACK, VD_ERROR);
		goto out;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		cvm_http_resp_error(resp, 500, "out of memory");
		goto out;
	}
	cvm_report_init(&v->rep);
	cvm_report_init(&v->os_rep);
	if (evidence_build(&q, &e, v) == CVM_OK)
		run_checks(ctx, e.va, v, quote_fn);
	if (v->has_info)
		vd_metrics_collateral(ctx, &v->info);
	is_valid =
	    v->quote_verified && v->event_log_verified && v->report_data_ok && v->os_image_hash_verified;
	if (!is_valid && v->reason[0] == '\0')
		fail(v, "verification failed");
	ans = answer_json(ctx, &e, v, is_valid);
	if (ans == NULL) {
		cvm_http_resp_error(resp, 500, "cannot build the answer (out of memory)");
		goto out;
	}
	cvm_http_resp_json(resp, 200, ans);
	vd_metrics_verification(ctx, VD_API_DSTACK, is_valid ? VD_OK : VD_REJECTED);
out:
	json_decref(ans);
	free(v);
	evidence_cleanup(&e);
	dreq_cleanup(&q);
	json_decref(req);
}

void vd_dstack_verify(struct vd_ctx *ctx, const uint8_t *body, size_t len, struct cvm_http_resp *resp)
{
	dstack_verify(ctx, body, len, resp, dstack_quote_cache);
}
