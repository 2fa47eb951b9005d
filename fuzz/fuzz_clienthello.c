/* libFuzzer harness for lib/ingress's ClientHello peek.
 *
 * Invariants: the answer is one of 0, TRUNCATED, FORMAT, TOO_LARGE; a
 * failed parse leaves the output zero; a parsed hello's records lie inside
 * the input, its SNI is a host name of sni_len bytes, and every proper
 * prefix of those records is TRUNCATED with a `need` past the prefix and
 * not past the records (checked on a few prefixes, to stay fast). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cvm_clienthello zero;
	struct cvm_clienthello ch, again;
	size_t need = 0;
	int r;

	r = cvm_clienthello_parse(data, size, &ch, &need);
	if (r != CVM_OK) {
		if (r != CVM_E_TRUNCATED && r != CVM_E_FORMAT && r != CVM_E_TOO_LARGE)
			__builtin_trap();
		if (memcmp(&ch, &zero, sizeof(ch)) != 0)
			__builtin_trap();
		if (r == CVM_E_TRUNCATED && need <= size)
			__builtin_trap();
		return 0;
	}
	if (ch.record_bytes == 0 || ch.record_bytes > size || need != 0)
		__builtin_trap();
	if (strlen(ch.sni) != ch.sni_len || ch.has_sni != (ch.sni_len != 0))
		__builtin_trap();
	if (ch.has_sni && cvm_ingress_name_check(ch.sni, ch.sni_len, NULL) != CVM_OK)
		__builtin_trap();
	for (size_t n = 0; n < ch.record_bytes; n += 1 + ch.record_bytes / 7) {
		if (cvm_clienthello_parse(data, n, &again, &need) != CVM_E_TRUNCATED || need <= n ||
		    need > ch.record_bytes)
			__builtin_trap();
	}
	return 0;
}
