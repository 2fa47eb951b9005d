/* libFuzzer harness for dstack's JSON event log (lib/eventlog/dstack_json.c):
 * the input is read as the log (an array, or an object carrying it), and
 * again as the "event_log" string of a GetQuote-like object. Whatever the
 * input, parsing returns cleanly, and on every event:
 *  - only EV_NO_ACTION events have an imr outside 0..3, and runtime events
 *    are in imr 3, the only type there besides EV_NO_ACTION;
 *  - a runtime event's digest is the one computed again here from its name,
 *    payload and version, and says so (computed or checked); other events
 *    extend by a logged digest;
 *  - the replay equals RTMR0..3 extended here from the events' digests. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/eventlog.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *data, size_t size, enum cvm_evl_format format)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	char text[CVM_EVL_DESCRIBE_MAX];
	uint8_t mr[4][48], buf[96], d[48];
	bool has_event = true;
	int r = CVM_OK;

	memset(mr, 0, sizeof(mr));
	if (cvm_evl_parser_new_mem(data, size, format, &p) != CVM_OK)
		return;
	while (has_event) {
		const struct cvm_evl_replay *rp;

		r = cvm_evl_parser_next(p, &ev, &has_event);
		if (r != CVM_OK || !has_event)
			break;
		rp = cvm_evl_parser_replay(p);
		if (rp->format != CVM_EVL_DSTACK_JSON) {
			cvm_evl_parser_free(p);
			return; /* AUTO found another format: fuzz_eventlog covers it */
		}
		if (ev.name == NULL || strlen(ev.name) > CVM_EVL_DSTACK_NAME_MAX || ev.digest_count > 1 ||
		    (!rp->is_wrapped && ev.offset + ev.len > size))
			__builtin_trap();
		cvm_evl_event_describe(&ev, text, sizeof(text));
		if (strlen(text) >= sizeof(text))
			__builtin_trap();
		if (ev.type == CVM_EV_NO_ACTION)
			continue;
		if (ev.reg > 3 || ev.digest_count != 1 || ev.digests[0].len != 48 ||
		    ev.digests[0].alg != CVM_DIGEST_SHA384)
			__builtin_trap();
		if (ev.type == CVM_EV_DSTACK_RUNTIME) {
			if (ev.reg != 3 || (ev.digest_source != CVM_EVL_DIGEST_COMPUTED &&
			                    ev.digest_source != CVM_EVL_DIGEST_CHECKED))
				__builtin_trap();
			if (cvm_evl_dstack_digest(ev.name, ev.data.p, ev.data.len, ev.dstack_version, d) !=
			        CVM_OK ||
			    memcmp(d, ev.digests[0].p, 48) != 0)
				__builtin_trap();
		} else if (ev.reg == 3 || ev.digest_source != CVM_EVL_DIGEST_LOGGED) {
			__builtin_trap();
		}
		memcpy(buf, mr[ev.reg], 48);
		memcpy(buf + 48, ev.digests[0].p, 48);
		if (cvm_digest(CVM_DIGEST_SHA384, buf, sizeof(buf), mr[ev.reg], 48) != CVM_OK)
			__builtin_trap();
	}
	if (r == CVM_OK && cvm_evl_parser_format(p) == CVM_EVL_DSTACK_JSON) {
		const struct cvm_evl_replay *rp = cvm_evl_parser_replay(p);

		if (rp->bytes_parsed != size || rp->reg_count != 4)
			__builtin_trap();
		for (uint32_t i = 0; i < 4; i++) {
			if (memcmp(rp->banks[0].reg[i], mr[i], 48) != 0)
				__builtin_trap();
		}
	}
	cvm_evl_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *o;
	char *doc;

	run(data, size, CVM_EVL_DSTACK_JSON);
	run(data, size, CVM_EVL_AUTO);
	/* The same bytes as the event_log string of a reply. */
	o = json_pack("{s:s%}", "event_log", (const char *)data, size);
	if (o == NULL)
		return 0; /* not UTF-8 without NUL: no JSON string holds it */
	doc = json_dumps(o, JSON_COMPACT);
	if (doc != NULL)
		run((const uint8_t *)doc, strlen(doc), CVM_EVL_AUTO);
	free(doc);
	json_decref(o);
	return 0;
}
