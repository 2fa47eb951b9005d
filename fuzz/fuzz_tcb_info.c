/* libFuzzer harness for cvm_tcb_info_parse: whatever the input, the parser
 * returns cleanly, a result frees cleanly, and the signed span lies inside
 * the input. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/dcap.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_tcb_info *ti = NULL;
	struct cvm_rd span;
	uint8_t sig[64];
	int r;

	r = cvm_tcb_info_parse(data, size, &ti, &span, sig);
	if (r == CVM_OK) {
		uintptr_t lo = (uintptr_t)data, p = (uintptr_t)span.p;

		if (ti == NULL || ti->level_count == 0 || ti->level_count > CVM_TCB_LEVELS_MAX)
			__builtin_trap();
		if (span.p == NULL || p < lo || span.len > size || p - lo > size - span.len)
			__builtin_trap();
		if (span.p[0] != '{')
			__builtin_trap();
	} else if (ti != NULL || span.p != NULL) {
		__builtin_trap();
	}
	cvm_tcb_info_free(ti);
	return 0;
}
