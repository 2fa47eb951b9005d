/* libFuzzer harness for the event log parser (TCG, CCEL, dstack runtime
 * and JSON logs): whatever the input, parsing and replay return cleanly;
 * every view of a binary event lies inside the input and inside the event;
 * digests have their bank's length; only EV_NO_ACTION events have an index
 * outside the format's registers; a successful replay accounts for every
 * byte; the decoders for people stay inside their buffers.
 * fuzz_dstack_eventlog.c checks dstack's JSON log further. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/eventlog.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_in(const uint8_t *p, size_t len, const uint8_t *lo, size_t size)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)lo;

	if (len == 0)
		return;
	if (a < b || len > size || a - b > size - len)
		__builtin_trap();
}

static void run(const uint8_t *data, size_t size, enum cvm_evl_format format)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	struct cvm_evl_efi_var var;
	char text[CVM_EVL_DESCRIBE_MAX];
	bool has_event = true;
	int r = CVM_OK;

	if (cvm_evl_parser_new_mem(data, size, format, &p) != CVM_OK)
		return;
	while (has_event) {
		const struct cvm_evl_replay *rp;

		r = cvm_evl_parser_next(p, &ev, &has_event);
		if (r != CVM_OK || !has_event)
			break;
		rp = cvm_evl_parser_replay(p);
		if ((!rp->is_wrapped && ev.offset + ev.len > size) || ev.digest_count > rp->bank_count ||
		    (ev.reg >= rp->reg_count && ev.type != CVM_EV_NO_ACTION))
			__builtin_trap();
		if (ev.name == NULL) {
			/* Binary event: its data and digests lie inside it. */
			check_in(ev.data.p, ev.data.len, data + ev.offset, (size_t)ev.len);
			for (size_t i = 0; i < ev.digest_count; i++)
				check_in(ev.digests[i].p, ev.digests[i].len, data + ev.offset,
				         (size_t)ev.len);
		} else if (strlen(ev.name) > CVM_EVL_DSTACK_NAME_MAX ||
		           (ev.digest_count != 0 && ev.digests[0].len != 48)) {
			__builtin_trap();
		}
		for (size_t i = 0; i < ev.digest_count; i++) {
			const struct cvm_evl_bank *b = cvm_evl_replay_bank(rp, ev.digests[i].alg);

			if (b == NULL || b->len != ev.digests[i].len)
				__builtin_trap();
		}
		cvm_evl_event_describe(&ev, text, sizeof(text));
		if (strlen(text) >= sizeof(text))
			__builtin_trap();
		if (cvm_evl_efi_var_parse(ev.data, &var) == CVM_OK) {
			check_in(var.name.p, var.name.len, ev.data.p, ev.data.len);
			check_in(var.value.p, var.value.len, ev.data.p, ev.data.len);
			cvm_evl_utf16_text(var.name, text, 7);
		}
	}
	if (r == CVM_OK) {
		const struct cvm_evl_replay *rp = cvm_evl_parser_replay(p);

		if (rp->bytes_parsed + rp->padding_len != size && rp->format != CVM_EVL_DSTACK)
			__builtin_trap();
	}
	cvm_evl_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, CVM_EVL_AUTO);
	/* A crypto-agile log read as the other crypto-agile format too; JSON
	 * as the format it is not detected as. */
	if (size > 0 && data[0] != '{' && data[0] != '[')
		run(data, size, size % 2 == 0 ? CVM_EVL_TCG2 : CVM_EVL_CCEL);
	else if (size > 0)
		run(data, size, data[0] == '{' ? CVM_EVL_DSTACK_JSON : CVM_EVL_DSTACK);
	return 0;
}
