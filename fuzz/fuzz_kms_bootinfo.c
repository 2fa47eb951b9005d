/* libFuzzer harness for lib/kms's reader of bootstrap-info.json (untrusted
 * when a verifier reads it): whatever the input, the parser returns cleanly;
 * what it accepts has every length within its bounds and a compressed k256
 * point, gives a report_data, and writes back to text that parses to the
 * same fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/kms.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_kms_bootinfo bi, again;
	uint8_t rd[64];
	char err[256], *text = NULL;
	size_t text_len = 0;

	if (cvm_kms_bootinfo_parse(data, size, &bi, err, sizeof(err)) != CVM_OK) {
		if (bi.ca_pubkey != NULL || bi.attestation != NULL ||
		    strnlen(err, sizeof(err)) == sizeof(err))
			__builtin_trap();
		return 0;
	}
	if (bi.ca_pubkey_len == 0 || bi.ca_pubkey_len > CVM_KMS_SPKI_MAX || bi.attestation_len == 0 ||
	    bi.attestation_len > CVM_KMS_BOOTINFO_VA_MAX ||
	    (bi.k256_pubkey[0] != 2 && bi.k256_pubkey[0] != 3))
		__builtin_trap();
	if (cvm_kms_bootstrap_report_data(bi.ca_pubkey, bi.ca_pubkey_len, bi.k256_pubkey, rd) != CVM_OK)
		__builtin_trap();
	for (size_t i = 32; i < 64; i++)
		if (rd[i] != 0)
			__builtin_trap();
	if (cvm_kms_bootinfo_encode(&bi, &text, &text_len) != CVM_OK)
		__builtin_trap();
	if (cvm_kms_bootinfo_parse((const uint8_t *)text, text_len, &again, err, sizeof(err)) != CVM_OK ||
	    again.ca_pubkey_len != bi.ca_pubkey_len || again.attestation_len != bi.attestation_len ||
	    memcmp(again.ca_pubkey, bi.ca_pubkey, bi.ca_pubkey_len) != 0 ||
	    memcmp(again.k256_pubkey, bi.k256_pubkey, sizeof(bi.k256_pubkey)) != 0 ||
	    memcmp(again.attestation, bi.attestation, bi.attestation_len) != 0)
		__builtin_trap();
	cvm_kms_bootinfo_cleanup(&again);
	free(text);
	cvm_kms_bootinfo_cleanup(&bi);
	return 0;
}
