/* libFuzzer harness for the collateral bundle parser (coll_bundle_parse,
 * what cvm_cache_import reads before it verifies anything): whatever the
 * input, it returns cleanly, never holds more items than its cap, every
 * item it parsed has a body within the input, and the set frees cleanly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cvmkit/collateral.h>
#include <cvmkit/err.h>

#include "collateral/coll_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coll_set *s = calloc(1, sizeof(*s));
	char err[256];
	int r;

	if (s == NULL)
		return 0;
	r = coll_bundle_parse(data, size, s, err, sizeof(err));
	if (s->count > COLL_BUNDLE_ITEMS_MAX)
		__builtin_trap();
	for (size_t i = 0; i < s->count; i++)
		if (s->items[i] == NULL || s->items[i]->body_len == 0 || s->items[i]->body_len > size)
			__builtin_trap();
	if (r == CVM_OK && size < 16)
		__builtin_trap();
	coll_set_free(s);
	return 0;
}
