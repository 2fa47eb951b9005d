/* libFuzzer harness for lib/collateral's parsers of untrusted bytes: the
 * first byte picks one.
 *   0: the item record (coll_item_decode, what the cache reads back from
 *      disk): a record that parses re-encodes to exactly the input (the
 *      format has one encoding per version; a version-1 record re-encodes
 *      as version 2, which must decode to the same), with a valid key and
 *      bounded fields;
 *   1: the URL decoding of an issuer chain response header;
 *   2: a Retry-After value (seconds or an HTTP-date). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/collateral.h>
#include <cvmkit/err.h>

#include "collateral/coll_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_cache_item *it = NULL;
	uint8_t *again = NULL;
	size_t again_len = 0;

	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (coll_item_decode(data + 1, size - 1, &it) != CVM_OK) {
			if (it != NULL)
				__builtin_trap();
			return 0;
		}
		if (it->body_len == 0 || it->body_len > size || it->issuer_chain_len > size ||
		    (it->issuer_chain != NULL && strlen(it->issuer_chain) != it->issuer_chain_len))
			__builtin_trap();
		if (coll_item_encode(it, &again, &again_len) != CVM_OK)
			__builtin_trap();
		if (size - 1 >= 12 && data[9] == 1) {
			/* version 1: the key gained by_manifest and manifest_hash */
			struct cvm_cache_item *v2 = NULL;
			uint8_t *third = NULL;
			size_t third_len = 0;

			if (again_len != size - 1 + 33 || coll_item_decode(again, again_len, &v2) != CVM_OK ||
			    coll_item_encode(v2, &third, &third_len) != CVM_OK || third_len != again_len ||
			    memcmp(third, again, again_len) != 0)
				__builtin_trap();
			free(third);
			cvm_cache_item_free(v2);
		} else if (again_len != size - 1 || memcmp(again, data + 1, again_len) != 0) {
			__builtin_trap();
		}
		free(again);
		cvm_cache_item_free(it);
		return 0;
	case 1: {
		char *out = malloc(size);
		size_t n = 0;

		if (out == NULL)
			return 0;
		if (coll_url_decode((const char *)data + 1, size - 1, out, size, &n) &&
		    (n >= size || strlen(out) != n))
			__builtin_trap();
		free(out);
		return 0;
	}
	default: {
		char v[64];
		size_t n = size - 1 < sizeof(v) - 1 ? size - 1 : sizeof(v) - 1;

		memcpy(v, data + 1, n);
		v[n] = '\0';
		if (coll_retry_after(v, 1700000000) < -1)
			__builtin_trap();
		return 0;
	}
	}
}
