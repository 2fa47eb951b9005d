/* libFuzzer harness for dstack's 1.9 AppInfo check (MessagePack array
 * form): whatever the input, the check returns cleanly, and says why when it
 * refuses. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/ratls.h>

#include "ratls/ratls_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];

	struct cvm_ratls_app_ids ids;
	int a, b;

	err[0] = 0;
	a = ratls_app_info_check(data, size, err, sizeof(err));
	if (a != CVM_OK && err[0] == 0)
		__builtin_trap();
	/* cvm-gatewayd reads the ids with the same check first: the two agree
	 * on what is well formed, and the copies stay in their buffers. */
	b = cvm_ratls_app_info_ids(data, size, &ids, err, sizeof(err));
	if ((a != CVM_OK ? b != a : (b != CVM_OK && b != CVM_E_TOO_LARGE)) ||
	    ids.app_id_len > sizeof(ids.app_id) || ids.instance_id_len > sizeof(ids.instance_id) ||
	    ids.compose_hash_len > sizeof(ids.compose_hash))
		__builtin_trap();
	return 0;
}
