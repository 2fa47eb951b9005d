/* libFuzzer harness for lib/ingress's PROXY protocol reader (v1 and v2).
 *
 * Invariants: a failed parse leaves the output zero and consumed 0; a
 * parsed header lies inside the input, its TLV span inside the header; an
 * INET/INET6 header built again from what was parsed parses to the same
 * addresses, in both versions. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cvm_proxy_hdr zero;
	struct cvm_proxy_hdr h, back;
	uint8_t buf[256];
	size_t used = 0, len, used2;
	int r;

	r = cvm_proxy_parse(data, size, &h, &used);
	if (r != CVM_OK) {
		if ((r != CVM_E_TRUNCATED && r != CVM_E_FORMAT) || used != 0 ||
		    memcmp(&h, &zero, sizeof(h)) != 0)
			__builtin_trap();
		return 0;
	}
	if (used == 0 || used > size || (h.version != 1 && h.version != 2))
		__builtin_trap();
	if (h.tlvs_len != 0 && (h.tlvs < data || (size_t)(h.tlvs - data) + h.tlvs_len > used))
		__builtin_trap();
	for (int version = 1; version <= 2; version++) {
		if (cvm_proxy_build(&h, version, buf, sizeof(buf), &len) != CVM_OK)
			__builtin_trap();
		if (cvm_proxy_parse(buf, len, &back, &used2) != CVM_OK || used2 != len ||
		    back.family != h.family)
			__builtin_trap();
		if (h.family != 0 && (memcmp(&back.src, &h.src, sizeof(h.src)) != 0 ||
		                      memcmp(&back.dst, &h.dst, sizeof(h.dst)) != 0))
			__builtin_trap();
	}
	return 0;
}
