/* libFuzzer harness for the Cosmian SEV extension (report and certificate
 * table, tee-tools 1.6.2, 2.x and the 2023 form): whatever the input, the parser returns
 * cleanly; on success the report is the first 1184 bytes, the format is one
 * of the three, and every certificate it kept fits inside the input. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/amd.h>

#include "ratls/ratls_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_amd_collateral certs;
	const uint8_t *report = NULL;
	unsigned format = 0;
	char err[256];

	if (cosmian_sev_parse(data, size, &report, &certs, &format, err, sizeof(err)) != CVM_OK) {
		if (certs.vcek != NULL || certs.ask != NULL || certs.ark != NULL || err[0] == 0)
			__builtin_trap();
		return 0;
	}
	if (report != data || size < RATLS_SNP_REPORT_LEN || (format < 1 || format > 3))
		__builtin_trap();
	if (certs.vcek_len + certs.vlek_len + certs.ask_len + certs.ark_len + certs.crl_len > size)
		__builtin_trap();
	cosmian_certs_cleanup(&certs);
	return 0;
}
