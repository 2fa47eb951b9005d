/* libFuzzer harness for cvm_qe_identity_parse: whatever the input, the
 * parser returns cleanly, a result frees cleanly, and the signed span lies
 * inside the input. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/dcap.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_qe_identity *qe = NULL;
	struct cvm_rd span;
	uint8_t sig[64];
	int r;

	r = cvm_qe_identity_parse(data, size, &qe, &span, sig);
	if (r == CVM_OK) {
		uintptr_t lo = (uintptr_t)data, p = (uintptr_t)span.p;

		if (qe == NULL || qe->level_count == 0 || qe->level_count > CVM_TCB_LEVELS_MAX)
			__builtin_trap();
		if (span.p == NULL || p < lo || span.len > size || p - lo > size - span.len)
			__builtin_trap();
		if (span.p[0] != '{')
			__builtin_trap();
	} else if (qe != NULL || span.p != NULL) {
		__builtin_trap();
	}
	cvm_qe_identity_free(qe);
	return 0;
}
