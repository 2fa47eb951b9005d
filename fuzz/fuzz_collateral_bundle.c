/* libFuzzer harness for the collateral bundle parser (coll_bundle_parse,
 * what cvm_cache_import reads before it verifies anything): whatever the
 * input, it returns cleanly, never holds more items than its cap, every
 * item it parsed has a body within the input, and the set frees cleanly.
 * A bundle ends in the SHA-256 of its other bytes; the harness parses the
 * input as given (the digest check) and then with the right digest
 * appended, so that mutations reach the records behind it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>

#include <cvmkit/collateral.h>
#include <cvmkit/err.h>

#include "collateral/coll_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const uint8_t *data, size_t size)
{
	struct coll_set *s = calloc(1, sizeof(*s));
	char err[256];
	int r;

	if (s == NULL)
		return;
	r = coll_bundle_parse(data, size, s, err, sizeof(err));
	if (s->count > COLL_BUNDLE_ITEMS_MAX)
		__builtin_trap();
	for (size_t i = 0; i < s->count; i++)
		if (s->items[i] == NULL || s->items[i]->body_len == 0 || s->items[i]->body_len > size)
			__builtin_trap();
	if (r == CVM_OK && size < 16 + 32)
		__builtin_trap();
	coll_set_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *sealed;

	parse(data, size);
	sealed = malloc(size + 32);
	if (sealed == NULL)
		return 0;
	if (size > 0)
		memcpy(sealed, data, size);
	cvm_sha256(data, size, sealed + size);
	parse(sealed, size + 32);
	free(sealed);
	return 0;
}
