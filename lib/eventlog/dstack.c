/* dstack's RTMR3 runtime events: the digest rule and the JSON-lines log
 * (/run/log/dstack/runtime_events.log, one {"event","payload"[,"version"]}
 * object per line; see specs/dstack.md section 5.3). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>

#include "core/core_lib.h"
#include "eventlog_int.h"

int cvm_evl_dstack_digest(const char *name, const uint8_t *payload, size_t payload_len, unsigned version,
                          uint8_t out[48])
{
	static const uint8_t type_le[4] = {0x01, 0x00, 0x00, 0x08}; /* u32le(0x08000001) */
	static const char hex[] = "0123456789abcdef";
	struct cvm_digest_ctx *ctx = NULL;
	struct cvm_wr w;
	uint8_t *text = NULL;
	size_t name_len, text_len = 0;
	int r;

	memset(out, 0, 48);
	cvm_wr_init(&w, 0);
	if (name == NULL || (payload == NULL && payload_len != 0))
		return CVM_E_INVAL;
	name_len = strnlen(name, CVM_EVL_DSTACK_NAME_MAX + 1);
	if (name_len > CVM_EVL_DSTACK_NAME_MAX)
		return CVM_E_INVAL;
	if (version == 1) {
		r = cvm_digest_ctx_new(CVM_DIGEST_SHA384, &ctx);
		if (r != CVM_OK)
			goto out;
		r = cvm_digest_update(ctx, type_le, sizeof(type_le));
		if (r == CVM_OK)
			r = cvm_digest_update(ctx, ":", 1);
		if (r == CVM_OK)
			r = cvm_digest_update(ctx, name, name_len);
		if (r == CVM_OK)
			r = cvm_digest_update(ctx, ":", 1);
		if (r == CVM_OK)
			r = cvm_digest_update(ctx, payload, payload_len);
		if (r == CVM_OK)
			r = cvm_digest_final(ctx, out, 48);
		goto out;
	}
	if (version != 2)
		return CVM_E_INVAL;
	/* Keys sorted as JCS sorts them: name, payload, type. */
	cvm_wr_init(&w, 64 + 6 * name_len + 2 * payload_len);
	cvm_wr_str(&w, "{\"name\":");
	cvm_jcs_string(&w, name, name_len);
	cvm_wr_str(&w, ",\"payload\":\"");
	for (size_t i = 0; i < payload_len; i++) {
		cvm_wr_u8(&w, (uint8_t)hex[payload[i] >> 4]);
		cvm_wr_u8(&w, (uint8_t)hex[payload[i] & 15]);
	}
	cvm_wr_str(&w, "\",\"type\":134217729}");
	r = cvm_wr_finish(&w, &text, &text_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_digest(CVM_DIGEST_SHA384, text, text_len, out, 48);
out:
	cvm_wr_cleanup(&w);
	cvm_digest_ctx_free(ctx);
	free(text);
	return r;
}

int cvm_evl_dstack_line(struct cvm_evl_parser *p, struct cvm_rd line, uint64_t off, struct cvm_evl_event *ev)
{
	json_error_t jerr;
	json_t *o = NULL, *name, *payload, *version;
	uint8_t *data = NULL;
	size_t data_len = 0, name_len;
	unsigned ver = 1;
	int r;

	o = json_loadb((const char *)line.p, line.len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o)) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off,
		                 "a line is not a JSON object (near byte %d of the line)",
		                 o == NULL ? jerr.position : 0);
		goto out;
	}
	for (void *it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
		const char *key = json_object_iter_key(it);

		if (strcmp(key, "event") != 0 && strcmp(key, "payload") != 0 && strcmp(key, "version") != 0) {
			r = cvm_evl_fail(
			    p, CVM_E_FORMAT, off,
			    "a line has a key other than \"event\", \"payload\" and \"version\"");
			goto out;
		}
	}
	name = json_object_get(o, "event");
	payload = json_object_get(o, "payload");
	version = json_object_get(o, "version");
	if (!json_is_string(name) || !json_is_string(payload)) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off, "a line lacks the string \"event\" or \"payload\"");
		goto out;
	}
	name_len = json_string_length(name);
	if (name_len > CVM_EVL_DSTACK_NAME_MAX) {
		r = cvm_evl_fail(p, CVM_E_TOO_LARGE, off, "an event name of %zu bytes (at most %u)", name_len,
		                 CVM_EVL_DSTACK_NAME_MAX);
		goto out;
	}
	if (memchr(json_string_value(name), 0, name_len) != NULL) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off, "an event name holds a NUL character");
		goto out;
	}
	if (version != NULL) {
		if (!json_is_integer(version) || json_integer_value(version) < 1) {
			r = cvm_evl_fail(p, CVM_E_FORMAT, off, "\"version\" is not a positive integer");
			goto out;
		}
		if (json_integer_value(version) > 2) {
			r = cvm_evl_fail(p, CVM_E_UNSUPPORTED, off,
			                 "runtime event version %lld (cvmkit knows 1 and 2)",
			                 (long long)json_integer_value(version));
			goto out;
		}
		ver = (unsigned)json_integer_value(version);
	}
	r = cvm_base64_decode(json_string_value(payload), json_string_length(payload),
	                      CVM_EVL_DSTACK_LINE_MAX, &data, &data_len);
	if (r != CVM_OK) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off, "\"payload\" is not standard base64");
		goto out;
	}
	memcpy(p->name, json_string_value(name), name_len);
	p->name[name_len] = '\0';
	r = cvm_evl_dstack_digest(p->name, data, data_len, ver, p->dstack_digest);
	if (r != CVM_OK) {
		r = cvm_evl_fail(p, r, off, "cannot compute the runtime event digest");
		goto out;
	}
	free(p->payload);
	p->payload = data;
	data = NULL; /* transferred */
	ev->reg = CVM_EVL_DSTACK_REG;
	ev->type = CVM_EV_DSTACK_RUNTIME;
	ev->digest_count = 1;
	ev->digests[0].alg = CVM_DIGEST_SHA384;
	ev->digests[0].p = p->dstack_digest;
	ev->digests[0].len = sizeof(p->dstack_digest);
	cvm_rd_init(&ev->data, p->payload, data_len);
	ev->name = p->name;
	ev->dstack_version = ver;
	ev->digest_source = CVM_EVL_DIGEST_COMPUTED;
out:
	free(data);
	json_decref(o);
	return r;
}
