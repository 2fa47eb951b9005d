/* libFuzzer harness for lib/osimage: measurement.tdx.cbor (libcbor) and the
 * sha256sum checksum file. The input goes to both parsers whole.
 *
 * Invariants: a parsed document has the three image digests and at least
 * one MRTD, a td_hob within its array and a NUL-terminated ovmf name; a
 * failed parse leaves the output zeroed; a checksum found was listed (the
 * file holds its 64 hex digits); nothing leaks. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/osimage.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cvm_osimage_tdx zero;
	struct cvm_osimage_tdx doc;
	uint8_t sum[32];
	char hex[65];
	char err[160];
	bool seen = false;
	int r;

	r = cvm_osimage_tdx_parse(data, size, &doc, err, sizeof(err));
	if (r == CVM_OK) {
		if ((!doc.has_single_pass && !doc.has_two_pass) || doc.td_hob_len > sizeof(doc.td_hob) ||
		    memchr(doc.ovmf, 0, sizeof(doc.ovmf)) == NULL)
			__builtin_trap();
	} else if (memcmp(&doc, &zero, sizeof(doc)) != 0 || memchr(err, 0, sizeof(err)) == NULL) {
		__builtin_trap();
	}
	r = cvm_osimage_checksum_find(data, size, "measurement.tdx.cbor", sum);
	if (r == CVM_OK) {
		cvm_hex_encode(sum, 32, hex);
		/* the digest is listed in lower or upper case: compare case-blind */
		for (size_t i = 0; i + 64 <= size && !seen; i++)
			seen = strncasecmp((const char *)data + i, hex, 64) == 0;
		if (!seen)
			__builtin_trap();
	}
	return 0;
}
