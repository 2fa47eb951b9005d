/* libFuzzer harness for cvm_snp_report_parse: whatever the input, the parser
 * returns cleanly; a parsed report is exactly CVM_SNP_REPORT_LEN bytes, its
 * signed view is the first 0x2A0 of them, and its TCB fields decode the same
 * way again. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/snp.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_snp_report r;
	struct cvm_snp_tcb t;
	uint8_t sig[96];
	int rc;

	rc = cvm_snp_report_parse(data, size, &r);
	if (cvm_snp_report_looks_like(data, size) != (rc == CVM_OK))
		__builtin_trap();
	if (rc != CVM_OK)
		return 0;
	if (size != CVM_SNP_REPORT_LEN || r.signed_data.p != data || r.signed_data.len != CVM_SNP_SIGNED_LEN)
		__builtin_trap();
	if (r.version < 2 || r.version > 5 || r.has_cpuid != (r.version >= 3))
		__builtin_trap();
	cvm_snp_tcb_decode(r.reported_tcb.raw, r.product, &t);
	if (t.bootloader != r.reported_tcb.bootloader || t.microcode != r.reported_tcb.microcode)
		__builtin_trap();
	if (!t.reserved_nonzero && cvm_snp_tcb_encode(&t, r.product) != t.raw)
		__builtin_trap();
	(void)cvm_snp_report_sig_be(&r, sig);
	return 0;
}
