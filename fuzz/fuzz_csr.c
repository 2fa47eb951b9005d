/* libFuzzer harness for cvm_csr_decode: every input is decoded as a V1 and
 * as a V2 CSR. Whatever it is, the decoder returns cleanly and hands out
 * nothing on failure; a CSR it accepts keeps the exact input bytes as what
 * the signature covers, holds its fields within their caps, carries an
 * attestation that decodes (V2: the input's tail, byte for byte), and no
 * fixed signature verifies under it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/csr.h>
#include <cvmkit/ratls.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A well-formed DER ECDSA-Sig-Value (r = s = 1): never a valid signature. */
static const uint8_t ONE_SIG[8] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};

static void check(const struct cvm_csr *c, unsigned version, const uint8_t *data, size_t size)
{
	struct cvm_va *va = NULL;
	char err[256];

	if (c->version != version || c->encoded_len != size || memcmp(c->encoded, data, size) != 0)
		__builtin_trap();
	if (c->subject == NULL || strlen(c->subject) > CVM_CSR_NAME_MAX ||
	    (c->org_name != NULL && strlen(c->org_name) > CVM_CSR_NAME_MAX) ||
	    c->alt_name_count > CVM_CSR_ALT_NAMES_MAX || c->pubkey_der_len > CVM_CSR_PUBKEY_MAX)
		__builtin_trap();
	for (size_t i = 0; i < c->alt_name_count; i++)
		if (strlen(c->alt_names[i]) > CVM_CSR_ALT_NAME_MAX)
			__builtin_trap();
	if (version == 2 &&
	    (c->attestation_len > size ||
	     memcmp(c->attestation, data + size - c->attestation_len, c->attestation_len) != 0))
		__builtin_trap();
	if (version == 1 && (c->ext_app_info || c->has_not_before || c->has_not_after))
		__builtin_trap();
	if (cvm_va_decode(c->attestation, c->attestation_len, &va, err, sizeof(err)) != CVM_OK)
		__builtin_trap();
	cvm_va_free(va);
	if (cvm_csr_check_signature(c, ONE_SIG, sizeof(ONE_SIG)) == CVM_OK)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (unsigned version = 1; version <= 2; version++) {
		struct cvm_csr *c = NULL;
		char err[256];

		if (cvm_csr_decode(version, data, size, &c, err, sizeof(err)) != CVM_OK) {
			if (c != NULL)
				__builtin_trap();
			continue;
		}
		check(c, version, data, size);
		cvm_csr_free(c);
	}
	return 0;
}
