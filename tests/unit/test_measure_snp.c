/* lib/measure: the SEV-SNP launch digest.
 *  - every SEV-SNP QEMU case of sev-snp-measure's tests/test_guest.py
 *    (tests/vectors/snp-measure/expected.json, over its two OVMF fixtures)
 *    gives the expected digest, and its firmware-only digest
 *    (--snp-ovmf-hash) too; the kernel case on the OVMF without kernel hashes
 *    is refused as upstream refuses it;
 *  - the metadata of both fixtures decodes to the sections edk2 declares;
 *  - Debian's OVMF.fd (package ovmf) has SEV metadata but no kernel hashes:
 *    it measures without a kernel and refuses one;
 *  - truncated, extended and bit-flipped metadata is refused cleanly or
 *    parses to other sections;
 *  - unknown vCPU models and vCPU counts are refused.
 * A test that needs Debian's OVMF and lacks it FAILS, naming the package. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/measure.h>

#include "vectors.h"

#define OVMF_FULL "/usr/share/ovmf/OVMF.fd"
#define DIR "snp-measure/"

static void hex48(const char *hex, uint8_t out[48])
{
	size_t n = 0;

	assert_non_null(hex);
	assert_int_equal(strlen(hex), 96);
	assert_int_equal(cvm_hex_decode(hex, 96, out, 48, &n), CVM_OK);
	assert_int_equal(n, 48);
}

static json_t *load_expected(void)
{
	size_t len = 0;
	uint8_t *buf = vector_read(DIR "expected.json", &len);
	json_t *root = json_loadb((const char *)buf, len, 0, NULL);

	free(buf);
	assert_non_null(root);
	return root;
}

static void upstream_cases_give_upstream_digests(void **state)
{
	json_t *root = load_expected(), *cases = json_object_get(root, "cases"), *c;
	size_t i, checked = 0, refused = 0;

	(void)state;
	assert_true(json_array_size(cases) >= 9);
	json_array_foreach(cases, i, c)
	{
		struct cvm_snp_measure_input in = {0};
		static struct cvm_snp_measure m;
		char path[256], err[256] = "";
		const char *append = json_string_value(json_object_get(c, "append"));
		uint8_t want[48];
		uint8_t *fw;
		size_t fw_len = 0;
		int r;

		(void)snprintf(path, sizeof(path), DIR "%s",
		               json_string_value(json_object_get(c, "firmware")));
		fw = vector_read(path, &fw_len);
		in.firmware = fw;
		in.firmware_len = fw_len;
		in.vcpus = (uint32_t)json_integer_value(json_object_get(c, "vcpus"));
		assert_int_equal(
		    cvm_snp_vcpu_sig(json_string_value(json_object_get(c, "vcpu_type")), &in.vcpu_sig),
		    CVM_OK);
		in.guest_features = (uint64_t)json_integer_value(json_object_get(c, "guest_features"));
		/* upstream's kernel and initrd are /dev/null: empty files */
		in.kernel_hashes = json_is_string(json_object_get(c, "kernel"));
		in.cmdline = append;
		in.cmdline_len = append ? strlen(append) : 0;
		r = cvm_snp_launch_digest(&in, &m, err, sizeof(err));
		if (json_object_get(c, "error") != NULL) {
			assert_int_equal(r, CVM_E_UNSUPPORTED);
			assert_non_null(strstr(err, "SNP_KERNEL_HASHES"));
			refused++;
		} else {
			if (r != CVM_OK)
				fail_msg("%s: %s", json_string_value(json_object_get(c, "test")), err);
			hex48(json_string_value(json_object_get(c, "digest")), want);
			assert_memory_equal(m.digest, want, 48);
			/* the last step's digest is the result */
			assert_true(m.step_count >= 2);
			assert_memory_equal(m.steps[m.step_count - 1].digest, want, 48);
			checked++;
		}
		free(fw);
	}
	assert_int_equal(checked, 8);
	assert_int_equal(refused, 1);
	json_decref(root);
}

static void firmware_digest_is_upstreams_ovmf_hash(void **state)
{
	json_t *root = load_expected();
	struct cvm_snp_measure_input in = {0};
	static struct cvm_snp_measure m;
	uint8_t want[48];
	size_t len = 0;
	uint8_t *fw = vector_read(DIR "ovmf_AmdSev_suffix.bin", &len);

	(void)state;
	hex48(json_string_value(
	          json_object_get(json_object_get(root, "firmware_digest"), "ovmf_AmdSev_suffix.bin")),
	      want);
	in.firmware = fw;
	in.firmware_len = len;
	in.vcpus = 1;
	in.guest_features = 1;
	assert_int_equal(cvm_snp_launch_digest(&in, &m, NULL, 0), CVM_OK);
	assert_memory_equal(m.firmware_digest, want, 48);
	assert_string_equal(m.steps[0].what, "firmware");
	assert_memory_equal(m.steps[0].digest, want, 48);
	/* other guest features change the VMSA and so the digest, not the
	 * firmware part */
	{
		static struct cvm_snp_measure m2;

		in.guest_features = 0x21;
		assert_int_equal(cvm_snp_launch_digest(&in, &m2, NULL, 0), CVM_OK);
		assert_memory_equal(m2.firmware_digest, want, 48);
		assert_memory_not_equal(m2.digest, m.digest, 48);
	}
	free(fw);
	json_decref(root);
}

static void fixture_metadata_is_edk2s_layout(void **state)
{
	static const struct cvm_snp_fw_section amdsev[] = {
	    {0x800000, 0x9000, CVM_SNP_SEC_MEM},  {0x80a000, 0x3000, CVM_SNP_SEC_MEM},
	    {0x80d000, 0x1000, CVM_SNP_SECRETS},  {0x80e000, 0x1000, CVM_SNP_CPUID},
	    {0x80f000, 0x1000, CVM_SNP_SVSM_CAA}, {0x810000, 0x1000, CVM_SNP_KERNEL_HASHES},
	    {0x811000, 0xf000, CVM_SNP_SEC_MEM},
	};
	struct cvm_snp_fw f;
	size_t len = 0;
	uint8_t *fw = vector_read(DIR "ovmf_AmdSev_suffix.bin", &len);

	(void)state;
	assert_int_equal(cvm_snp_fw_parse(fw, len, &f, NULL, 0), CVM_OK);
	assert_int_equal(f.gpa, 0xfffff000u);
	assert_int_equal(f.reset_eip, 0x80b004);
	assert_int_equal(f.hashes_gpa, 0x810c00);
	assert_int_equal(f.section_count, 7);
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(f.sections[i].gpa, amdsev[i].gpa);
		assert_int_equal(f.sections[i].size, amdsev[i].size);
		assert_int_equal(f.sections[i].type, amdsev[i].type);
	}
	free(fw);
	fw = vector_read(DIR "ovmf_OvmfX64_suffix.bin", &len);
	assert_int_equal(cvm_snp_fw_parse(fw, len, &f, NULL, 0), CVM_OK);
	assert_int_equal(f.hashes_gpa, 0);
	assert_int_equal(f.section_count, 6);
	assert_int_equal(f.sections[5].type, CVM_SNP_SEC_MEM);
	free(fw);
}

static void debian_ovmf_has_snp_metadata_without_kernel_hashes(void **state)
{
	struct cvm_snp_measure_input in = {0};
	static struct cvm_snp_measure m;
	struct cvm_snp_fw f;
	char err[256] = "";
	uint8_t *fw = NULL;
	size_t len = 0;

	(void)state;
	if (cvm_file_read(OVMF_FULL, CVM_TDVF_IMAGE_MAX, &fw, &len) != CVM_OK)
		fail_msg("%s is missing: install Debian's ovmf package (scripts/setup.sh)", OVMF_FULL);
	assert_int_equal(cvm_snp_fw_parse(fw, len, &f, err, sizeof(err)), CVM_OK);
	assert_int_equal(f.gpa, 0x100000000u - len);
	assert_int_not_equal(f.reset_eip, 0);
	assert_true(f.section_count >= 4);
	for (size_t i = 0; i < f.section_count; i++)
		assert_int_not_equal(f.sections[i].type, CVM_SNP_KERNEL_HASHES);
	in.firmware = fw;
	in.firmware_len = len;
	in.vcpus = 2;
	assert_int_equal(cvm_snp_vcpu_sig("EPYC-v4", &in.vcpu_sig), CVM_OK);
	in.guest_features = 1;
	assert_int_equal(cvm_snp_launch_digest(&in, &m, err, sizeof(err)), CVM_OK);
	/* firmware, the sections, the BSP and the AP */
	assert_int_equal(m.step_count, 1 + f.section_count + 2);
	in.kernel_hashes = true;
	assert_int_equal(cvm_snp_launch_digest(&in, &m, err, sizeof(err)), CVM_E_UNSUPPORTED);
	assert_non_null(strstr(err, "AmdSev"));
	free(fw);
}

static bool same_fw(const struct cvm_snp_fw *a, const struct cvm_snp_fw *b)
{
	return a->section_count == b->section_count && a->reset_eip == b->reset_eip &&
	       a->hashes_gpa == b->hashes_gpa &&
	       memcmp(a->sections, b->sections, sizeof(a->sections[0]) * a->section_count) == 0;
}

static void metadata_refuses_truncations_extensions_and_bit_flips(void **state)
{
	static const struct cvm_snp_fw zero;
	struct cvm_snp_fw good, f;
	size_t len = 0, flagged = 0;
	uint8_t *fw = vector_read(DIR "ovmf_AmdSev_suffix.bin", &len), *big;

	(void)state;
	assert_int_equal(cvm_snp_fw_parse(fw, len, &good, NULL, 0), CVM_OK);
	/* any cut: not whole pages, or (at a page) no table */
	for (size_t n = 0; n < len; n++) {
		assert_int_not_equal(cvm_snp_fw_parse(fw, n, &f, NULL, 0), CVM_OK);
		assert_memory_equal(&f, &zero, sizeof(f));
	}
	/* a page more in front moves nothing that is read from the end; a byte
	 * more is not whole pages */
	big = calloc(1, len + 4096);
	assert_non_null(big);
	memcpy(big + 4096, fw, len);
	assert_int_equal(cvm_snp_fw_parse(big, len + 4096, &f, NULL, 0), CVM_OK);
	assert_true(same_fw(&f, &good));
	assert_int_equal(f.gpa, 0xffffe000u);
	assert_int_equal(cvm_snp_fw_parse(big, len + 1, &f, NULL, 0), CVM_E_FORMAT);
	free(big);
	/* every bit of the metadata and the GUID table: refused, or other data */
	for (size_t off = 0; off < len; off++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			int r;

			fw[off] ^= (uint8_t)(1u << bit);
			r = cvm_snp_fw_parse(fw, len, &f, NULL, 0);
			if (r != CVM_OK) {
				assert_memory_equal(&f, &zero, sizeof(f));
				flagged++;
			} else if (same_fw(&f, &good)) {
				/* the header and the sections are all read; only the
				 * header's length may grow (it need only cover them) */
				size_t rel = off - (size_t)good.metadata_offset;
				bool in_meta = off >= good.metadata_offset &&
				               rel < 16 + 12 * good.section_count && !(rel >= 4 && rel < 8);

				if (in_meta)
					print_error("byte 0x%zx bit %u of the metadata flipped unnoticed\n",
					            off, bit);

				assert_false(in_meta);
			}
			fw[off] ^= (uint8_t)(1u << bit);
		}
	}
	assert_true(flagged > 100);
	free(fw);
}

static void refuses_unknown_models_and_bad_counts(void **state)
{
	struct cvm_snp_measure_input in = {0};
	static struct cvm_snp_measure m;
	uint32_t sig = 1;
	size_t len = 0;
	uint8_t *fw = vector_read(DIR "ovmf_AmdSev_suffix.bin", &len);

	(void)state;
	assert_int_equal(cvm_snp_vcpu_sig("EPYC-v4", &sig), CVM_OK);
	assert_int_equal(sig, 0x800f12);
	assert_int_equal(cvm_snp_vcpu_sig("EPYC-Milan", &sig), CVM_OK);
	assert_int_equal(sig, 0xa00f11);
	assert_int_equal(cvm_snp_vcpu_sig("EPYC-Genoa", &sig), CVM_OK);
	assert_int_equal(sig, 0xa10f10);
	assert_int_equal(cvm_snp_vcpu_sig("Skylake-Server", &sig), CVM_E_NOT_FOUND);
	assert_int_equal(sig, 0);
	assert_int_equal(cvm_snp_vcpu_sig("epyc-v4", &sig), CVM_E_NOT_FOUND);
	in.firmware = fw;
	in.firmware_len = len;
	in.vcpus = 0;
	assert_int_equal(cvm_snp_launch_digest(&in, &m, NULL, 0), CVM_E_INVAL);
	in.vcpus = CVM_SNP_VCPUS_MAX + 1;
	assert_int_equal(cvm_snp_launch_digest(&in, &m, NULL, 0), CVM_E_INVAL);
	in.vcpus = CVM_SNP_VCPUS_MAX;
	assert_int_equal(cvm_snp_launch_digest(&in, &m, NULL, 0), CVM_OK);
	assert_int_equal(m.steps[m.step_count - 1].pages, CVM_SNP_VCPUS_MAX - 1);
	free(fw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(upstream_cases_give_upstream_digests),
	    cmocka_unit_test(firmware_digest_is_upstreams_ovmf_hash),
	    cmocka_unit_test(fixture_metadata_is_edk2s_layout),
	    cmocka_unit_test(debian_ovmf_has_snp_metadata_without_kernel_hashes),
	    cmocka_unit_test(metadata_refuses_truncations_extensions_and_bit_flips),
	    cmocka_unit_test(refuses_unknown_models_and_bad_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
