/* libFuzzer harness for lib/tls's client side: cvm_tls_reply_parse (the
 * answer of a peer cvmkit calls: a KMS, an agent's TLS listener) and
 * cvm_tls_target_parse (a KMS list). The first byte picks the cap and
 * whether the peer closed; the rest is the answer. An accepted answer's
 * body lies inside the input and the cap; a target, when accepted, has a
 * host, a port of digits and a prefix that starts with '/' or is empty. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/tls.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = {16, 512, 4096, 1 << 20};
	struct cvm_tls_target t;
	size_t off = 0, len = 0, max;
	bool closed;
	char *text;
	int status = 0, r;

	if (size == 0)
		return 0;
	max = caps[data[0] & 3];
	closed = (data[0] & 4) != 0;
	r = cvm_tls_reply_parse(data + 1, size - 1, closed, max, &status, &off, &len);
	if (r == CVM_OK) {
		if (status < 100 || status > 599 || off > size - 1 || len > size - 1 - off || off + len > max)
			abort();
	} else if (r != CVM_E_TRUNCATED && r != CVM_E_FORMAT && r != CVM_E_TOO_LARGE) {
		abort();
	}
	if (r == CVM_E_TRUNCATED && closed)
		abort(); /* after the close nothing more can come */
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (cvm_tls_target_parse(text, &t) == CVM_OK) {
		if (t.host[0] == '\0' || t.port[0] == '\0' ||
		    strspn(t.port, "0123456789") != strlen(t.port) ||
		    (t.prefix[0] != '\0' && t.prefix[0] != '/'))
			abort();
	}
	free(text);
	return 0;
}
