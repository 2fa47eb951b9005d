/* libFuzzer harness for lib/measure's readers of untrusted bytes: the TDVF
 * metadata of a firmware image (then MRTD, the CFV digest and the TD HOB
 * witness of what parsed), the TD HOB witness decoder and the PE/COFF
 * Authenticode reader, each given the whole input.
 *
 * Invariants: a parsed image has 1..CVM_TDVF_SECTIONS_MAX sections, its
 * descriptor inside the input, every section marked as in the image really
 * inside it, aligned, not wrapping; a failed parse leaves the output zeroed;
 * MRTD is computed only when every measured section is in the image; a
 * witness the parser made decodes again; nothing leaks. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/measure.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cvm_tdvf zero;
	static struct cvm_tdvf t;
	uint8_t d[48], w[CVM_TD_HOB_WITNESS_MAX];
	size_t wlen = 0;
	int r;

	r = cvm_tdvf_parse(data, size, &t, NULL, 0);
	if (r != CVM_OK) {
		if (memcmp(&t, &zero, sizeof(t)) != 0)
			__builtin_trap();
	} else {
		bool complete = true;
		uint64_t mem = 0;

		if (t.section_count == 0 || t.section_count > CVM_TDVF_SECTIONS_MAX || t.image_len != size ||
		    t.metadata_offset + 16 + 32 * t.section_count > size)
			__builtin_trap();
		for (size_t i = 0; i < t.section_count; i++) {
			const struct cvm_tdvf_section *s = &t.sections[i];

			if ((s->memory_address | s->memory_data_size) % 4096 != 0 ||
			    s->memory_address > UINT64_MAX - s->memory_data_size ||
			    (s->data_in_image && (uint64_t)s->data_offset + s->raw_data_size > size))
				__builtin_trap();
			if ((s->attributes & CVM_TDVF_ATTR_MR_EXTEND) != 0 && !s->data_in_image)
				complete = false;
			mem += s->memory_data_size;
		}
		/* MRTD hashes 128 bytes per page of the sections' memory (up to
		 * 4 GiB of it): only small layouts, to keep runs fast */
		if (mem <= (UINT64_C(16) << 20)) {
			r = cvm_tdvf_mrtd(&t, data, size, CVM_MRTD_SINGLE_PASS, d);
			if ((r == CVM_OK) != complete && r != CVM_E_NOMEM)
				__builtin_trap();
		}
		r = cvm_tdvf_cfv_digest(&t, data, size, d);
		if (r != CVM_OK && r != CVM_E_NOT_FOUND && r != CVM_E_FORMAT)
			__builtin_trap();
		if (cvm_tdvf_td_hob_witness(&t, w, sizeof(w), &wlen) == CVM_OK &&
		    cvm_td_hob_digest(w, wlen, UINT64_C(1) << 40, d) == CVM_E_FORMAT)
			__builtin_trap();
	}
	r = cvm_td_hob_digest(data, size, UINT64_C(0x80000000), d);
	if (r != CVM_OK && r != CVM_E_FORMAT && r != CVM_E_INVAL)
		__builtin_trap();
	r = cvm_pe_authenticode_sha384(data, size, d);
	if (r != CVM_OK && r != CVM_E_FORMAT && r != CVM_E_NOMEM && r != CVM_E_CRYPTO)
		__builtin_trap();
	return 0;
}
