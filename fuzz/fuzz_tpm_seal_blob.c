/* libFuzzer harness for the sealed-blob parser (lib/tpm/seal.c): what
 * cvm-kmsd reads from root-ca.key.tpm and its siblings before it asks the
 * TPM to load them. Whatever the input: no crash; an accepted blob is
 * within the cap, starts with the magic and version 1, and is still
 * accepted (the parser keeps no state); every proper prefix of an accepted
 * blob is refused (its last field is length-prefixed, nothing may trail). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/tpm.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (cvm_tpm_seal_blob_check(data, size) != CVM_OK)
		return 0;
	if (size > CVM_TPM_SEAL_BLOB_MAX || size < 10 || memcmp(data, "cvmseal\n", 8) != 0 || data[8] != 0 ||
	    data[9] != CVM_TPM_SEAL_VERSION)
		__builtin_trap();
	if (cvm_tpm_seal_blob_check(data, size) != CVM_OK)
		__builtin_trap();
	if (cvm_tpm_seal_blob_check(data, size - 1) == CVM_OK)
		__builtin_trap();
	return 0;
}
