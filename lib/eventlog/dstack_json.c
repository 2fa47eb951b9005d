/* dstack's JSON event log (specs/dstack.md, GetQuote and section 5.3): an
 * array of {"imr", "event_type", "digest", "event", "event_payload"} objects
 * (+ "version" and "preimage" on version-2 runtime events), the form
 * GetQuote and Tappd return (a JSON string in "event_log"), RA-TLS
 * certificates carry and dstack's verifier takes.
 *
 * Boot events (converted from the CCEL: imr = MR index - 1, the SHA-384
 * digest) extend their RTMR by the digest the log gives. Runtime events
 * (event_type 0x08000001, imr 3) extend RTMR3 by the digest computed from
 * their name and payload; when the log gives a digest too (dstack's agent
 * strips it from GetQuote replies), the two must be equal.
 *
 * The array is read one element at a time through the parser's bounded
 * input: jansson parses each element alone (at most
 * CVM_EVL_DSTACK_JSON_EVENT_MAX bytes), so memory stays flat in the number
 * of events. An object carrying the array (at most CVM_EVL_DSTACK_DOC_MAX
 * bytes) is parsed whole; its event_log text is then read the same way. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>

#include "eventlog_int.h"

#define JS_WINDOW_START 1024u
#define JS_WS_WINDOW 4096u

static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* js_peek skips JSON white space and lends the next byte; EVL_END at the
 * end of the input. */
static int js_peek(struct cvm_evl_parser *p, uint8_t *c)
{
	for (;;) {
		struct cvm_rd w;
		size_t ws = 0, have;
		uint8_t b = 0;
		int r = cvm_evl_want(p, JS_WS_WINDOW, &w);

		if (r != CVM_OK)
			return r;
		if (w.len == 0)
			return EVL_END;
		have = w.len;
		while (cvm_rd_u8(&w, &b) && is_ws(b))
			ws++;
		cvm_evl_consume(p, ws);
		if (ws < have) {
			*c = b;
			return CVM_OK;
		}
	}
}

/* ---- one event ---------------------------------------------------------- */

/* get_u32 reads member `key` of `o` as a JSON integer 0..UINT32_MAX. */
static bool get_u32(const json_t *o, const char *key, uint32_t *out)
{
	const json_t *v = json_object_get(o, key);
	json_int_t i;

	if (!json_is_integer(v))
		return false;
	i = json_integer_value(v);
	if (i < 0 || i > (json_int_t)UINT32_MAX)
		return false;
	*out = (uint32_t)i;
	return true;
}

/* get_hex decodes member `key` of `o` (a string of hex digits, either case)
 * into a new buffer of at most `max` bytes (`*out` NULL when empty).
 * Returns 0, CVM_E_FORMAT (not a string, not hex) or CVM_E_TOO_LARGE. */
static int get_hex(const json_t *o, const char *key, size_t max, uint8_t **out, size_t *out_len)
{
	const json_t *v = json_object_get(o, key);
	size_t n;
	uint8_t *b;
	int r;

	*out = NULL;
	*out_len = 0;
	if (!json_is_string(v))
		return CVM_E_FORMAT;
	n = json_string_length(v);
	if (n % 2 != 0)
		return CVM_E_FORMAT;
	if (n / 2 > max)
		return CVM_E_TOO_LARGE;
	if (n == 0)
		return CVM_OK;
	b = malloc(n / 2);
	if (b == NULL)
		return CVM_E_NOMEM;
	r = cvm_hex_decode(json_string_value(v), n, b, n / 2, out_len);
	if (r != CVM_OK || *out_len != n / 2) {
		free(b);
		*out_len = 0;
		return CVM_E_FORMAT;
	}
	*out = b;
	return CVM_OK;
}

static bool known_key(const char *key)
{
	static const char *const keys[] = {"imr",           "event_type", "digest",  "event",
	                                   "event_payload", "version",    "preimage"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i]) == 0)
			return true;
	}
	return false;
}

/* runtime_digest computes a runtime event's digest into p->dstack_digest
 * and checks it against what the log gives: the digest (`logged`, NULL if
 * none) and the preimage (NULL if none). */
static int runtime_digest(struct cvm_evl_parser *p, const json_t *o, uint64_t off, unsigned long long idx,
                          const uint8_t *logged, size_t payload_len, unsigned ver, struct cvm_evl_event *ev)
{
	uint8_t *pre = NULL, hpre[48];
	size_t pre_len = 0;
	int r;

	r = cvm_evl_dstack_digest(p->name, p->payload, payload_len, ver, p->dstack_digest);
	if (r != CVM_OK)
		return cvm_evl_fail(p, r, off, "event %llu: cannot compute the runtime event digest", idx);
	if (json_object_get(o, "preimage") != NULL) {
		/* The bytes dstack hashes (version 1: type:name:payload; version 2:
		 * the JCS text). Equal hashes stand for equal bytes. */
		r = get_hex(o, "preimage", CVM_EVL_DSTACK_JSON_EVENT_MAX, &pre, &pre_len);
		if (r == CVM_E_NOMEM)
			return cvm_evl_fail(p, r, off, "event %llu: out of memory", idx);
		if (r != CVM_OK)
			return cvm_evl_fail(p, CVM_E_FORMAT, off, "event %llu: preimage is not a hex string",
			                    idx);
		r = cvm_digest(CVM_DIGEST_SHA384, pre, pre_len, hpre, sizeof(hpre));
		free(pre);
		if (r != CVM_OK)
			return cvm_evl_fail(p, r, off, "event %llu: cannot hash the preimage", idx);
		if (memcmp(hpre, p->dstack_digest, sizeof(hpre)) != 0)
			return cvm_evl_fail(p, CVM_E_FORMAT, off,
			                    "event %llu: preimage is not what dstack hashes for this runtime "
			                    "event's name and payload (version %u)",
			                    idx, ver);
	}
	ev->digest_source = CVM_EVL_DIGEST_COMPUTED;
	if (logged != NULL) {
		if (memcmp(logged, p->dstack_digest, 48) != 0)
			return cvm_evl_fail(p, CVM_E_FORMAT, off,
			                    "event %llu: digest is not the SHA-384 dstack computes from this "
			                    "runtime event's name and payload (version %u)",
			                    idx, ver);
		ev->digest_source = CVM_EVL_DIGEST_CHECKED;
	}
	ev->digest_count = 1;
	ev->digests[0].alg = CVM_DIGEST_SHA384;
	ev->digests[0].p = p->dstack_digest;
	ev->digests[0].len = 48;
	return CVM_OK;
}

/* js_event fills `ev` from one event object `o` at `off`. */
static int js_event(struct cvm_evl_parser *p, json_t *o, uint64_t off, struct cvm_evl_event *ev)
{
	unsigned long long idx = (unsigned long long)p->replay.event_count;
	const json_t *name = json_object_get(o, "event"), *version = json_object_get(o, "version");
	uint8_t *digest = NULL, *payload = NULL;
	size_t digest_len = 0, payload_len = 0, name_len;
	unsigned ver = 1;
	int r;

	for (void *it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
		if (!known_key(json_object_iter_key(it))) {
			r = cvm_evl_fail(p, CVM_E_FORMAT, off,
			                 "event %llu: a member other than imr, event_type, digest, event, "
			                 "event_payload, version and preimage",
			                 idx);
			goto out;
		}
	}
	if (!get_u32(o, "imr", &ev->reg)) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off,
		                 "event %llu: imr is missing or not an integer 0..2^32-1", idx);
		goto out;
	}
	if (!get_u32(o, "event_type", &ev->type)) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off,
		                 "event %llu: event_type is missing or not an integer 0..2^32-1", idx);
		goto out;
	}
	if (!json_is_string(name)) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off,
		                 "event %llu: event (the name) is missing or not a string", idx);
		goto out;
	}
	name_len = json_string_length(name);
	if (name_len > CVM_EVL_DSTACK_NAME_MAX) {
		r = cvm_evl_fail(p, CVM_E_TOO_LARGE, off, "event %llu: event name of %zu bytes (at most %u)",
		                 idx, name_len, CVM_EVL_DSTACK_NAME_MAX);
		goto out;
	}
	if (memchr(json_string_value(name), 0, name_len) != NULL) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off, "event %llu: event name holds a NUL character", idx);
		goto out;
	}
	if (version != NULL) {
		if (!json_is_integer(version) || json_integer_value(version) < 1) {
			r = cvm_evl_fail(p, CVM_E_FORMAT, off,
			                 "event %llu: version is not a positive integer", idx);
			goto out;
		}
		if (json_integer_value(version) > 2) {
			r = cvm_evl_fail(
			    p, CVM_E_UNSUPPORTED, off,
			    "event %llu: version %lld (cvmkit knows runtime event versions 1 and 2)", idx,
			    (long long)json_integer_value(version));
			goto out;
		}
		ver = (unsigned)json_integer_value(version);
	}
	/* dstack requires event_payload; a stripped one is "". */
	if (json_object_get(o, "event_payload") == NULL) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off, "event %llu: event_payload is missing", idx);
		goto out;
	}
	r = get_hex(o, "event_payload", CVM_EVL_EVENT_DATA_MAX, &payload, &payload_len);
	if (r == CVM_E_TOO_LARGE) {
		r = cvm_evl_fail(p, r, off, "event %llu: event_payload of more than %zu bytes", idx,
		                 CVM_EVL_EVENT_DATA_MAX);
		goto out;
	}
	if (r == CVM_E_NOMEM) {
		r = cvm_evl_fail(p, r, off, "event %llu: out of memory", idx);
		goto out;
	}
	if (r != CVM_OK) {
		r = cvm_evl_fail(p, r, off, "event %llu: event_payload is not a hex string", idx);
		goto out;
	}
	/* digest: absent or "" (stripped), else one SHA-384 digest. */
	if (json_object_get(o, "digest") != NULL) {
		r = get_hex(o, "digest", 48, &digest, &digest_len);
		if (r == CVM_E_NOMEM) {
			r = cvm_evl_fail(p, r, off, "event %llu: out of memory", idx);
			goto out;
		}
		if (r != CVM_OK || (digest_len != 0 && digest_len != 48)) {
			r = cvm_evl_fail(p, CVM_E_FORMAT, off,
			                 "event %llu: digest is not \"\" or 96 hex digits (a SHA-384 digest)",
			                 idx);
			goto out;
		}
	}
	memcpy(p->name, json_string_value(name), name_len);
	p->name[name_len] = '\0';
	free(p->payload);
	p->payload = payload;
	payload = NULL; /* transferred */
	ev->name = p->name;
	cvm_rd_init(&ev->data, p->payload, payload_len);
	ev->offset = off;
	if (ev->type == CVM_EV_DSTACK_RUNTIME) {
		if (ev->reg != CVM_EVL_DSTACK_REG) {
			r = cvm_evl_fail(
			    p, CVM_E_FORMAT, off,
			    "event %llu: imr %u for a runtime event (type 0x08000001), which dstack "
			    "extends into RTMR3 (imr 3) only",
			    idx, ev->reg);
			goto out;
		}
		ev->dstack_version = ver;
		r = runtime_digest(p, o, off, idx, digest, payload_len, ver, ev);
		goto out;
	}
	if (json_object_get(o, "preimage") != NULL) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off,
		                 "event %llu: preimage on an event that is not a runtime event", idx);
		goto out;
	}
	/* RTMR3 holds runtime events only: a logged digest there would carry a
	 * name and payload that nothing binds. */
	if (ev->reg == CVM_EVL_DSTACK_REG && ev->type != CVM_EV_NO_ACTION) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off,
		                 "event %llu: event_type 0x%08x in imr 3, where dstack logs runtime events "
		                 "(type 0x08000001) only",
		                 idx, ev->type);
		goto out;
	}
	ev->digest_source = CVM_EVL_DIGEST_LOGGED;
	if (digest_len != 0) {
		memcpy(p->dstack_digest, digest, 48);
		ev->digest_count = 1;
		ev->digests[0].alg = CVM_DIGEST_SHA384;
		ev->digests[0].p = p->dstack_digest;
		ev->digests[0].len = 48;
	} else if (ev->type != CVM_EV_NO_ACTION) {
		r = cvm_evl_fail(p, CVM_E_FORMAT, off,
		                 "event %llu: digest is missing from a boot event (imr %u): only runtime "
		                 "events can be computed again",
		                 idx, ev->reg);
		goto out;
	}
	r = CVM_OK;
out:
	free(digest);
	free(payload);
	return r;
}

/* js_element parses the array element at the current position. */
static int js_element(struct cvm_evl_parser *p, struct cvm_evl_event *ev)
{
	unsigned long long idx = (unsigned long long)p->replay.event_count;
	uint64_t start = p->off;
	size_t n = JS_WINDOW_START;
	json_error_t jerr;
	json_t *o = NULL;
	struct cvm_rd w;
	int r;

	for (;;) {
		r = cvm_evl_want(p, n, &w);
		if (r != CVM_OK)
			return r;
		o = json_loadb((const char *)w.p, w.len, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
		               &jerr);
		if (o != NULL)
			break;
		/* A failure before the end of the window is in the text; one at its
		 * end may be the window's cut: try a larger one. */
		if (w.len < n || (jerr.position >= 0 && (size_t)jerr.position + 4 < w.len)) {
			bool cut = w.len < n && jerr.position >= 0 && (size_t)jerr.position >= w.len;

			return cvm_evl_fail(p, cut ? CVM_E_TRUNCATED : CVM_E_FORMAT, start,
			                    "event %llu is not a JSON object (%s near byte %d of it)", idx,
			                    cut ? "the log ends" : "bad JSON", jerr.position);
		}
		if (n >= CVM_EVL_DSTACK_JSON_EVENT_MAX)
			return cvm_evl_fail(p, CVM_E_TOO_LARGE, start,
			                    "event %llu: its JSON text runs past %zu bytes", idx,
			                    CVM_EVL_DSTACK_JSON_EVENT_MAX);
		n = n > CVM_EVL_DSTACK_JSON_EVENT_MAX / 2 ? CVM_EVL_DSTACK_JSON_EVENT_MAX : 2 * n;
	}
	if (!json_is_object(o) || jerr.position <= 0 || (size_t)jerr.position > w.len) {
		json_decref(o);
		return cvm_evl_fail(p, CVM_E_FORMAT, start, "event %llu is not a JSON object", idx);
	}
	memset(ev, 0, sizeof(*ev));
	r = js_event(p, o, start, ev);
	json_decref(o);
	if (r != CVM_OK)
		return r;
	ev->len = (uint64_t)jerr.position;
	cvm_evl_consume(p, (size_t)jerr.position);
	return CVM_OK;
}

/* ---- the array ---------------------------------------------------------- */

int cvm_evl_json_next(struct cvm_evl_parser *p, struct cvm_evl_event *ev)
{
	unsigned long long idx = (unsigned long long)p->replay.event_count;
	uint8_t c = 0;
	int r;

	for (;;) {
		r = js_peek(p, &c);
		if (r == EVL_END) {
			if (p->js_state == EVL_JS_DONE)
				return EVL_END;
			return cvm_evl_fail(p, CVM_E_TRUNCATED, p->off,
			                    p->js_state == EVL_JS_OPEN
			                        ? "the event log is empty (a JSON array was expected)"
			                        : "the event log ends before the closing ] of its array");
		}
		if (r != CVM_OK)
			return r;
		switch (p->js_state) {
		case EVL_JS_OPEN:
			if (c != '[')
				return cvm_evl_fail(
				    p, CVM_E_FORMAT, p->off,
				    "the event log is not a JSON array (it must start with [)");
			cvm_evl_consume(p, 1);
			p->js_state = EVL_JS_FIRST;
			break;
		case EVL_JS_FIRST:
		case EVL_JS_NEXT:
			if (c == ']') {
				cvm_evl_consume(p, 1);
				p->js_state = EVL_JS_DONE;
			} else if (p->js_state == EVL_JS_FIRST) {
				p->js_state = EVL_JS_ELEM;
			} else if (c == ',') {
				cvm_evl_consume(p, 1);
				p->js_state = EVL_JS_ELEM;
			} else {
				return cvm_evl_fail(
				    p, CVM_E_FORMAT, p->off,
				    "after event %llu: neither , nor the closing ] of the array", idx - 1);
			}
			break;
		case EVL_JS_ELEM:
			if (c != '{')
				return cvm_evl_fail(p, CVM_E_FORMAT, p->off,
				                    "event %llu is not a JSON object", idx);
			r = js_element(p, ev);
			if (r == CVM_OK)
				p->js_state = EVL_JS_NEXT;
			return r;
		default:
			return cvm_evl_fail(
			    p, CVM_E_FORMAT, p->off,
			    "bytes other than white space after the closing ] of the event log");
		}
	}
}

/* ---- an object that carries the array ----------------------------------- */

/* doc_load reads the whole input as one JSON object with an "event_log"
 * member (a JSON string holding the array, or the array) and switches the
 * parser's input to that array's text. With `quiet` (detection), an input
 * that is not such an object returns 0 without failing; otherwise 1. */
static int doc_load(struct cvm_evl_parser *p, bool quiet)
{
	json_error_t jerr;
	json_t *doc = NULL, *el;
	struct cvm_rd w;
	const char *text;
	size_t text_len;
	int r;

	r = cvm_evl_want(p, CVM_EVL_DSTACK_DOC_MAX + 1, &w);
	if (r != CVM_OK)
		return r;
	if (w.len > CVM_EVL_DSTACK_DOC_MAX) {
		if (quiet)
			return 0;
		return cvm_evl_fail(p, CVM_E_TOO_LARGE, 0,
		                    "a JSON object carrying an event log of more than %zu bytes",
		                    CVM_EVL_DSTACK_DOC_MAX);
	}
	doc = json_loadb((const char *)w.p, w.len, JSON_REJECT_DUPLICATES, &jerr);
	el = json_object_get(doc, "event_log");
	if (el == NULL) {
		json_decref(doc);
		if (quiet)
			return 0;
		if (doc == NULL)
			return cvm_evl_fail(
			    p, CVM_E_FORMAT, 0,
			    "the log is neither a JSON array nor one JSON object (near byte %d)",
			    jerr.position);
		return cvm_evl_fail(
		    p, CVM_E_FORMAT, 0,
		    "a JSON object without \"event_log\" (the dstack event log it should carry)");
	}
	if (json_is_string(el)) {
		text = json_string_value(el);
		text_len = json_string_length(el);
	} else if (json_is_array(el)) {
		/* Offsets then count in this compact text: the object's own text
		 * gives no position to its members. */
		p->doc_text = json_dumps(el, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (p->doc_text == NULL) {
			json_decref(doc);
			return cvm_evl_fail(p, CVM_E_NOMEM, 0, "out of memory");
		}
		text = p->doc_text;
		text_len = strlen(p->doc_text);
	} else {
		json_decref(doc);
		return cvm_evl_fail(p, CVM_E_FORMAT, 0,
		                    "\"event_log\" is neither a JSON string nor a JSON array");
	}
	p->doc = doc;
	p->doc_len = p->off + w.len; /* with the white space before it */
	p->replay.is_wrapped = true;
	/* From here on the input is the event_log text, in memory; the file
	 * (read to its end above) is done with. */
	free(p->buf);
	p->buf = NULL;
	p->cap = p->pos = p->end = 0;
	p->eof = true;
	p->fd = -1;
	p->mem = (const uint8_t *)text;
	p->mem_len = text_len;
	p->off = 0;
	return 1;
}

int cvm_evl_json_open(struct cvm_evl_parser *p)
{
	uint8_t c = 0;
	int r;

	p->js_state = EVL_JS_OPEN;
	r = js_peek(p, &c);
	if (r == EVL_END)
		return cvm_evl_fail(p, CVM_E_TRUNCATED, p->off, "the log is empty");
	if (r != CVM_OK)
		return r;
	if (c != '{')
		return CVM_OK; /* an array, or cvm_evl_json_next says what it is not */
	r = doc_load(p, false);
	return r < 0 ? r : CVM_OK;
}

int cvm_evl_json_detect(struct cvm_evl_parser *p)
{
	size_t n = JS_WINDOW_START, line_len = 0;
	json_t *o;
	struct cvm_rd w;
	bool whole = false;
	int r;

	p->js_state = EVL_JS_OPEN;
	/* The first line: a runtime log's first event, or (all of) a compact
	 * object, or the start of an object spread over lines. */
	for (;;) {
		struct cvm_rd s;
		uint8_t b = 0;
		bool nl = false;

		r = cvm_evl_want(p, n, &w);
		if (r != CVM_OK)
			return r;
		s = w;
		line_len = 0;
		while (cvm_rd_u8(&s, &b) && b != '\n')
			line_len++;
		nl = b == '\n' && line_len < w.len;
		if (nl || w.len < n) {
			whole = true;
			break;
		}
		if (n > CVM_EVL_DSTACK_LINE_MAX)
			break;
		n = n > CVM_EVL_DSTACK_LINE_MAX / 2 ? CVM_EVL_DSTACK_LINE_MAX + 1 : 2 * n;
	}
	if (whole) {
		o = json_loadb((const char *)w.p, line_len, JSON_REJECT_DUPLICATES, NULL);
		if (json_is_object(o)) {
			bool carries = json_object_get(o, "event_log") != NULL;

			json_decref(o);
			if (!carries)
				return 0; /* a runtime log line */
			return doc_load(p, false);
		}
		json_decref(o);
	}
	/* The first line is no JSON text of its own: one object over several
	 * lines, or a broken runtime log (whose reader then says so). */
	r = doc_load(p, true);
	return r;
}

void cvm_evl_json_cleanup(struct cvm_evl_parser *p)
{
	json_decref(p->doc);
	p->doc = NULL;
	free(p->doc_text);
	p->doc_text = NULL;
}
