/* libFuzzer harness for cvm_evidence_parse: whatever the input, parsing
 * returns cleanly, with a NUL-terminated reason and no bundle on error; a
 * parsed bundle's accessors agree with each other and its PCR values stay
 * within the caps. Verification needs collateral and is covered by the unit
 * and integration tests. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/evidence.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_evidence *ev = NULL;
	const struct cvm_tpm_pcrs *pcrs;
	char why[256];
	int r;

	memset(why, 'x', sizeof(why));
	r = cvm_evidence_parse(data, size, &ev, why, sizeof(why));
	if (memchr(why, '\0', sizeof(why)) == NULL)
		__builtin_trap();
	if (r != CVM_OK) {
		if (ev != NULL || (r != CVM_E_NOMEM && why[0] == '\0'))
			__builtin_trap();
		return 0;
	}
	pcrs = cvm_evidence_pcrs(ev);
	if ((pcrs != NULL) != cvm_evidence_has_tpm(ev))
		__builtin_trap();
	if (pcrs != NULL) {
		if (pcrs->count > CVM_TPM_BANKS_MAX)
			__builtin_trap();
		for (size_t b = 0; b < pcrs->count; b++) {
			if (cvm_digest_len(pcrs->banks[b].alg) == 0 ||
			    (pcrs->banks[b].valid >> CVM_TPM_PCR_COUNT) != 0)
				__builtin_trap();
		}
	}
	if (cvm_evidence_platform(ev) != CVM_EVIDENCE_TDX && cvm_evidence_platform(ev) != CVM_EVIDENCE_SNP)
		__builtin_trap();
	cvm_evidence_free(ev);
	return 0;
}
