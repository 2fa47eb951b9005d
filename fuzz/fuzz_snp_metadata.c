/* libFuzzer harness for lib/measure's reader of OVMF's SEV metadata (the
 * GUID table at the end of a firmware image and the "ASEV" sections it
 * points at), then the SEV-SNP launch digest of what parsed, with and
 * without kernel hashes.
 *
 * Invariants: a parsed image has 1..CVM_SNP_FW_SECTIONS_MAX sections of
 * known types, each a non-empty run of 4 KiB pages below 4 GiB, its header
 * inside the input; a failed parse leaves the output zeroed; the digest of
 * a parsed image succeeds without a kernel (given a reset vector for the
 * AP), and with one exactly when the image has kernel hashes it can place;
 * nothing leaks. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/measure.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cvm_snp_fw zero;
	static struct cvm_snp_fw f;
	static struct cvm_snp_measure m;
	struct cvm_snp_measure_input in = {0};
	size_t hash_pages = 0;
	bool hashes_outside = false;
	int r;

	r = cvm_snp_fw_parse(data, size, &f, NULL, 0);
	if (r != CVM_OK) {
		if (memcmp(&f, &zero, sizeof(f)) != 0)
			__builtin_trap();
		return 0;
	}
	if (f.section_count == 0 || f.section_count > CVM_SNP_FW_SECTIONS_MAX || f.image_len != size ||
	    size % 4096 != 0 || f.metadata_offset + 16 + 12 * f.section_count > size ||
	    f.gpa != (UINT64_C(1) << 32) - size)
		__builtin_trap();
	for (size_t i = 0; i < f.section_count; i++) {
		const struct cvm_snp_fw_section *s = &f.sections[i];

		if (s->gpa % 4096 != 0 || s->size % 4096 != 0 || s->size == 0 ||
		    (uint64_t)s->gpa + s->size > (UINT64_C(1) << 32) ||
		    strcmp(cvm_snp_section_type_name(s->type), "unknown") == 0)
			__builtin_trap();
		/* a kernel can be measured when every SNP_KERNEL_HASHES page
		 * holds the hash table (the library checks each one) */
		if (s->type == CVM_SNP_KERNEL_HASHES) {
			hash_pages++;
			if (f.hashes_gpa < s->gpa || (uint64_t)f.hashes_gpa + 176 > (uint64_t)s->gpa + 4096 ||
			    f.hashes_gpa == 0)
				hashes_outside = true;
		}
	}
	in.firmware = data;
	in.firmware_len = size;
	in.vcpus = f.reset_eip != 0 ? 2 : 1;
	in.vcpu_sig = 0x800f12;
	in.guest_features = 1;
	/* the zero-page sections cost one SHA-384 per 4 KiB of their (up to
	 * 4 GiB) memory: only small layouts, to keep runs fast */
	{
		uint64_t pages = 0;

		for (size_t i = 0; i < f.section_count; i++)
			pages += f.sections[i].size / 4096;
		if (pages > 4096)
			return 0;
	}
	if (cvm_snp_launch_digest(&in, &m, NULL, 0) != CVM_OK)
		__builtin_trap();
	in.kernel_hashes = true;
	in.cmdline = "console=ttyS0";
	in.cmdline_len = 13;
	r = cvm_snp_launch_digest(&in, &m, NULL, 0);
	if ((r == CVM_OK) != (hash_pages > 0 && !hashes_outside))
		__builtin_trap();
	return 0;
}
