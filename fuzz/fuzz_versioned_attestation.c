/* libFuzzer harness for cvm_va_decode: whatever the input, the decoder
 * returns cleanly; an attestation it accepts re-encodes in its own version
 * and decodes again to the same fields, and a V0 one re-encodes to exactly
 * the input (SCALE has one encoding per value, and the decoder insists on
 * the shortest compact lengths). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/ratls.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_va *va = NULL, *again = NULL;
	uint8_t *enc = NULL;
	size_t enc_len = 0;
	char err[256];

	if (cvm_va_decode(data, size, &va, err, sizeof(err)) != CVM_OK) {
		if (va != NULL)
			__builtin_trap();
		return 0;
	}
	if (va->quote_len > size || va->config == NULL || strlen(va->config) != va->config_len)
		__builtin_trap();
	/* GCP TDX in V1 keeps no TPM quote to re-encode */
	if (cvm_va_encode(va, va->version, &enc, &enc_len) == CVM_OK) {
		if (va->version == 0 && (enc_len != size || memcmp(enc, data, size) != 0))
			__builtin_trap();
		if (cvm_va_decode(enc, enc_len, &again, err, sizeof(err)) != CVM_OK)
			__builtin_trap();
		if (again->variant != va->variant || again->quote_len != va->quote_len ||
		    again->event_count != va->event_count ||
		    again->runtime_event_count != va->runtime_event_count ||
		    memcmp(again->report_data, va->report_data, 64) != 0 ||
		    again->config_len != va->config_len)
			__builtin_trap();
		cvm_va_free(again);
		free(enc);
	} else if (!(va->version == 1 && va->variant == 1)) {
		__builtin_trap();
	}
	cvm_va_free(va);
	return 0;
}
