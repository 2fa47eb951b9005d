/* libFuzzer harness for dstack's 1.9 AppInfo check (MessagePack array
 * form): whatever the input, the check returns cleanly, and says why when it
 * refuses. */
#include <stddef.h>
#include <stdint.h>

#include "ratls/ratls_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];

	err[0] = 0;
	if (ratls_app_info_check(data, size, err, sizeof(err)) != CVM_OK && err[0] == 0)
		__builtin_trap();
	return 0;
}
