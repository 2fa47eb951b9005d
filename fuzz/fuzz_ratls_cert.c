/* libFuzzer harness for cvm_ratls_parse: whatever the certificate, the
 * parser returns cleanly and says why when it fails; what it returns is
 * consistent (a binding needs evidence of a TEE, a quote lies inside what
 * the extension could hold, a Cosmian SEV table comes with its format). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/ratls.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_ratls_info *info = NULL;
	char err[256];
	int rc;

	rc = cvm_ratls_parse(data, size, &info, err, sizeof(err));
	if (rc != CVM_OK) {
		if (info != NULL || err[0] == 0)
			__builtin_trap();
		return 0;
	}
	if (info == NULL || info->quote_len > size || (info->quote == NULL) != (info->quote_len == 0))
		__builtin_trap();
	if (info->binding && info->tee == CVM_RATLS_TEE_NONE)
		__builtin_trap();
	if (info->profile == CVM_RATLS_PROFILE_NONE && (info->quote != NULL || info->attestation != NULL))
		__builtin_trap();
	if ((info->cosmian_sev_format != 0) !=
	    (info->profile == CVM_RATLS_PROFILE_COSMIAN && info->tee == CVM_RATLS_TEE_SNP))
		__builtin_trap();
	if (memchr(info->usage, 0, sizeof(info->usage)) == NULL)
		__builtin_trap();
	cvm_ratls_info_free(info);
	return 0;
}
