/* libFuzzer harness for cvm_quote_parse: whatever the input, the parser
 * returns cleanly, and every view it returns lies inside the input. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/quote.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_view(const struct cvm_rd *v, const uint8_t *data, size_t size)
{
	uintptr_t lo = (uintptr_t)data, p = (uintptr_t)v->p;

	if (v->len == 0)
		return;
	if (p < lo || v->len > size || p - lo > size - v->len)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_quote q;
	int r;

	r = cvm_quote_parse(data, size, &q);
	if (r == CVM_OK || q.trailing_garbage) {
		check_view(&q.signed_data, data, size);
		check_view(&q.qe_report_raw, data, size);
		check_view(&q.qe_auth_data, data, size);
		check_view(&q.pck_chain_pem, data, size);
		if (q.quote_len + q.padding_len != size || q.signed_data.p != data)
			__builtin_trap();
		if (q.qe_report_raw.len != CVM_SGX_REPORT_LEN)
			__builtin_trap();
	}
	return 0;
}
