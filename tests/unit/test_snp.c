/* The SEV-SNP report parser against every real report in the vectors: every
 * field as the manifest states it, every truncation and an extra byte
 * rejected, single-bit flips never crash; TCB layouts (Milan/Genoa and
 * Turin), products, and the report detector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/snp.h>

#include "vectors.h"

static const char *const vector_dirs[] = {
    "snp/gosevguest-milan-vcek",
    "snp/trustee-milan-vcek",
    "snp/trustee-milan-vlek",
    "snp/trustee-azure-genoa-vcek",
};
#define VECTOR_COUNT (sizeof(vector_dirs) / sizeof(vector_dirs[0]))

static uint8_t *read_report(const char *dir, size_t *len)
{
	char rel[256];

	(void)snprintf(rel, sizeof(rel), "%s/report.bin", dir);
	return vector_read(rel, len);
}

static json_t *read_manifest(const char *dir)
{
	char rel[256];
	uint8_t *buf;
	size_t len;
	json_t *m;

	(void)snprintf(rel, sizeof(rel), "%s/manifest.json", dir);
	buf = vector_read(rel, &len);
	m = json_loadb((const char *)buf, len, 0, NULL);
	free(buf);
	assert_non_null(m);
	return m;
}

static void assert_hex(json_t *fields, const char *key, const uint8_t *got, size_t n)
{
	json_t *v = json_object_get(fields, key);
	char hex[2 * 72 + 1];

	assert_non_null(v);
	assert_true(n <= 72);
	cvm_hex_encode(got, n, hex);
	if (strcmp(hex, json_string_value(v)) != 0)
		fail_msg("%s: got %s, manifest says %s", key, hex, json_string_value(v));
}

static uint64_t hex_u64(json_t *v)
{
	assert_true(json_is_string(v));
	return strtoull(json_string_value(v), NULL, 16);
}

static void assert_tcb(json_t *fields, const char *key, const struct cvm_snp_tcb *t)
{
	json_t *o = json_object_get(fields, key);

	assert_non_null(o);
	assert_int_equal(t->raw, hex_u64(json_object_get(o, "raw_le_u64")));
	assert_int_equal(t->bootloader, json_integer_value(json_object_get(o, "bootloader")));
	assert_int_equal(t->tee, json_integer_value(json_object_get(o, "tee")));
	assert_int_equal(t->snp, json_integer_value(json_object_get(o, "snp")));
	assert_int_equal(t->microcode, json_integer_value(json_object_get(o, "microcode")));
	assert_false(t->has_fmc);
	assert_false(t->reserved_nonzero);
}

static void every_vector_parses_to_the_manifest_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < VECTOR_COUNT; i++) {
		struct cvm_snp_report r;
		json_t *m = read_manifest(vector_dirs[i]);
		json_t *f = json_object_get(m, "fields");
		size_t len;
		uint8_t *buf = read_report(vector_dirs[i], &len);
		const char *signer;

		assert_non_null(f);
		assert_int_equal(len, CVM_SNP_REPORT_LEN);
		assert_true(cvm_snp_report_looks_like(buf, len));
		assert_int_equal(cvm_snp_report_parse(buf, len, &r), CVM_OK);
		assert_false(r.reserved_nonzero);
		assert_int_equal(r.version, json_integer_value(json_object_get(f, "version")));
		assert_int_equal(r.guest_svn, json_integer_value(json_object_get(f, "guest_svn")));
		assert_int_equal(r.policy, hex_u64(json_object_get(f, "policy")));
		assert_int_equal(r.vmpl, json_integer_value(json_object_get(f, "vmpl")));
		assert_int_equal(r.sig_algo, json_integer_value(json_object_get(f, "signature_algo")));
		assert_int_equal(r.platform_info, hex_u64(json_object_get(f, "platform_info")));
		assert_int_equal(r.signer_info, hex_u64(json_object_get(f, "key_info")));
		signer = json_string_value(json_object_get(f, "signing_key"));
		assert_int_equal(r.signing_key,
		                 strcmp(signer, "VLEK") == 0 ? CVM_SNP_SIGNER_VLEK : CVM_SNP_SIGNER_VCEK);
		assert_hex(f, "family_id", r.family_id, sizeof(r.family_id));
		assert_hex(f, "image_id", r.image_id, sizeof(r.image_id));
		assert_hex(f, "report_data", r.report_data, sizeof(r.report_data));
		assert_hex(f, "measurement", r.measurement, sizeof(r.measurement));
		assert_hex(f, "host_data", r.host_data, sizeof(r.host_data));
		assert_hex(f, "id_key_digest", r.id_key_digest, sizeof(r.id_key_digest));
		assert_hex(f, "author_key_digest", r.author_key_digest, sizeof(r.author_key_digest));
		assert_hex(f, "report_id", r.report_id, sizeof(r.report_id));
		assert_hex(f, "report_id_ma", r.report_id_ma, sizeof(r.report_id_ma));
		assert_hex(f, "chip_id", r.chip_id, sizeof(r.chip_id));
		assert_hex(f, "signature_r_le", r.sig_r, sizeof(r.sig_r));
		assert_hex(f, "signature_s_le", r.sig_s, sizeof(r.sig_s));
		assert_tcb(f, "current_tcb", &r.current_tcb);
		assert_tcb(f, "reported_tcb", &r.reported_tcb);
		assert_tcb(f, "committed_tcb", &r.committed_tcb);
		assert_tcb(f, "launch_tcb", &r.launch_tcb);
		assert_int_equal(r.current_build, json_integer_value(json_object_get(f, "current_build")));
		assert_int_equal(r.current_minor, json_integer_value(json_object_get(f, "current_minor")));
		assert_int_equal(r.current_major, json_integer_value(json_object_get(f, "current_major")));
		assert_int_equal(r.committed_build,
		                 json_integer_value(json_object_get(f, "committed_build")));
		assert_int_equal(r.committed_minor,
		                 json_integer_value(json_object_get(f, "committed_minor")));
		assert_int_equal(r.committed_major,
		                 json_integer_value(json_object_get(f, "committed_major")));
		assert_int_equal(r.has_cpuid, json_object_get(f, "cpuid_fam_id") != NULL);
		if (r.has_cpuid) {
			assert_int_equal(r.cpuid_fam_id,
			                 json_integer_value(json_object_get(f, "cpuid_fam_id")));
			assert_int_equal(r.cpuid_mod_id,
			                 json_integer_value(json_object_get(f, "cpuid_mod_id")));
			assert_int_equal(r.cpuid_step, json_integer_value(json_object_get(f, "cpuid_step")));
			assert_string_equal(
			    cvm_snp_product_name(r.product),
			    json_string_value(json_object_get(json_object_get(m, "expected"), "product")));
		} else {
			assert_int_equal(r.product, CVM_SNP_PRODUCT_UNKNOWN);
		}
		assert_false(r.has_mit_vectors);
		assert_ptr_equal(r.signed_data.p, buf);
		assert_int_equal(r.signed_data.len, CVM_SNP_SIGNED_LEN);
		{
			uint8_t sig[96];

			assert_true(cvm_snp_report_sig_be(&r, sig));
			for (size_t k = 0; k < 48; k++) {
				assert_int_equal(sig[k], r.sig_r[47 - k]);
				assert_int_equal(sig[48 + k], r.sig_s[47 - k]);
			}
		}
		json_decref(m);
		free(buf);
	}
}

static void report_rejects_every_truncation_and_a_trailing_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < VECTOR_COUNT; i++) {
		struct cvm_snp_report r;
		size_t len;
		uint8_t *buf = read_report(vector_dirs[i], &len);
		uint8_t *longer = calloc(1, len + 1);

		assert_non_null(longer);
		for (size_t n = 0; n < len; n++) {
			assert_int_equal(cvm_snp_report_parse(buf, n, &r), CVM_E_TRUNCATED);
			assert_false(cvm_snp_report_looks_like(buf, n));
		}
		memcpy(longer, buf, len);
		assert_int_equal(cvm_snp_report_parse(longer, len + 1, &r), CVM_E_FORMAT);
		assert_false(cvm_snp_report_looks_like(longer, len + 1));
		free(longer);
		free(buf);
	}
}

/* Every single-bit flip parses or fails cleanly; a flip in a field the
 * parser decodes changes that field (the parse is a function of the bytes),
 * and a flip in a must-be-zero area is flagged. */
static void report_bit_flips_never_crash_and_reserved_flips_are_flagged(void **state)
{
	(void)state;
	for (size_t i = 0; i < VECTOR_COUNT; i++) {
		struct cvm_snp_report orig, r;
		size_t len;
		uint8_t *buf = read_report(vector_dirs[i], &len);

		assert_int_equal(cvm_snp_report_parse(buf, len, &orig), CVM_OK);
		for (size_t bit = 0; bit < 8 * len; bit++) {
			size_t off = bit / 8;
			int rc;

			buf[off] ^= (uint8_t)(1u << (bit % 8));
			rc = cvm_snp_report_parse(buf, len, &r);
			if (off < 4) {
				/* the version: 2..5 parse, anything else is unsupported */
				assert_true(rc == CVM_OK || rc == CVM_E_UNSUPPORTED);
			} else {
				assert_int_equal(rc, CVM_OK);
				/* bytes 0x4C..0x4F, the reserved runs and the signature tail */
				if ((off >= 0x4c && off < 0x50) || (off >= 0x18b && off < 0x1a0) ||
				    off == 0x1eb || off == 0x1ef || (off >= 0x208 && off < 0x2a0) ||
				    off >= 0x390)
					assert_true(r.reserved_nonzero);
				else if (off >= 0x50 && off < 0x180)
					assert_memory_not_equal(&r, &orig,
					                        offsetof(struct cvm_snp_report, signed_data));
			}
			buf[off] ^= (uint8_t)(1u << (bit % 8));
		}
		free(buf);
	}
}

static void tcb_layouts_decode_and_encode(void **state)
{
	struct cvm_snp_tcb t;

	(void)state;
	/* Milan/Genoa: bl [0], tee [1], snp [6], ucode [7] */
	cvm_snp_tcb_decode(0x7308000000000003ull, CVM_SNP_PRODUCT_MILAN, &t);
	assert_int_equal(t.bootloader, 3);
	assert_int_equal(t.tee, 0);
	assert_int_equal(t.snp, 8);
	assert_int_equal(t.microcode, 115);
	assert_false(t.has_fmc);
	assert_false(t.reserved_nonzero);
	assert_int_equal(cvm_snp_tcb_encode(&t, CVM_SNP_PRODUCT_MILAN), 0x7308000000000003ull);
	/* Turin: fmc [0], bl [1], tee [2], snp [3], ucode [7] */
	cvm_snp_tcb_decode(0x4800000003020105ull, CVM_SNP_PRODUCT_TURIN, &t);
	assert_true(t.has_fmc);
	assert_int_equal(t.fmc, 5);
	assert_int_equal(t.bootloader, 1);
	assert_int_equal(t.tee, 2);
	assert_int_equal(t.snp, 3);
	assert_int_equal(t.microcode, 0x48);
	assert_false(t.reserved_nonzero);
	assert_int_equal(cvm_snp_tcb_encode(&t, CVM_SNP_PRODUCT_TURIN), 0x4800000003020105ull);
	/* reserved bytes of each layout */
	cvm_snp_tcb_decode(0x0000000100000000ull, CVM_SNP_PRODUCT_TURIN, &t);
	assert_true(t.reserved_nonzero);
	cvm_snp_tcb_decode(0x0000000100000000ull, CVM_SNP_PRODUCT_GENOA, &t);
	assert_true(t.reserved_nonzero);
	cvm_snp_tcb_decode(0x0001000000000000ull, CVM_SNP_PRODUCT_GENOA, &t);
	assert_false(t.reserved_nonzero);
	assert_int_equal(t.snp, 1);
}

static void products_from_cpuid_and_names(void **state)
{
	(void)state;
	assert_int_equal(cvm_snp_product_from_cpuid(0x19, 0x01), CVM_SNP_PRODUCT_MILAN);
	assert_int_equal(cvm_snp_product_from_cpuid(0x19, 0x11), CVM_SNP_PRODUCT_GENOA);
	assert_int_equal(cvm_snp_product_from_cpuid(0x19, 0xa0), CVM_SNP_PRODUCT_GENOA); /* Bergamo/Siena */
	assert_int_equal(cvm_snp_product_from_cpuid(0x1a, 0x02), CVM_SNP_PRODUCT_TURIN);
	assert_int_equal(cvm_snp_product_from_cpuid(0x1a, 0x50), CVM_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(cvm_snp_product_from_cpuid(0x17, 0x31), CVM_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(cvm_snp_product_parse("Milan-B0", 8), CVM_SNP_PRODUCT_MILAN);
	assert_int_equal(cvm_snp_product_parse("Genoa", 5), CVM_SNP_PRODUCT_GENOA);
	assert_int_equal(cvm_snp_product_parse("Turin-B1", 8), CVM_SNP_PRODUCT_TURIN);
	assert_int_equal(cvm_snp_product_parse("Milan-", 6), CVM_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(cvm_snp_product_parse("Milano", 6), CVM_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(cvm_snp_product_parse("Mila", 4), CVM_SNP_PRODUCT_UNKNOWN);
	assert_string_equal(cvm_snp_product_name(CVM_SNP_PRODUCT_TURIN), "Turin");
}

static void detector_tells_dcap_quotes_from_snp_reports(void **state)
{
	uint8_t buf[CVM_SNP_REPORT_LEN] = {0};
	struct cvm_snp_report r;

	(void)state;
	/* a DCAP quote header: u16 version 4, u16 key type 2 */
	buf[0] = 4;
	buf[2] = 2;
	assert_false(cvm_snp_report_looks_like(buf, sizeof(buf)));
	buf[2] = 0;
	assert_true(cvm_snp_report_looks_like(buf, sizeof(buf)));
	buf[0] = 6;
	assert_false(cvm_snp_report_looks_like(buf, sizeof(buf)));
	assert_int_equal(cvm_snp_report_parse(buf, sizeof(buf), &r), CVM_E_UNSUPPORTED);
	buf[0] = 5;
	assert_int_equal(cvm_snp_report_parse(buf, sizeof(buf), &r), CVM_OK);
	assert_true(r.has_mit_vectors);
	assert_true(r.reserved_nonzero); /* POLICY bit 17 is clear */
	assert_false(cvm_snp_report_looks_like(NULL, 0));
	assert_int_equal(cvm_snp_report_parse(NULL, 0, &r), CVM_E_INVAL);
}

static void signature_with_high_bytes_is_refused(void **state)
{
	struct cvm_snp_report r;
	uint8_t sig[96];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.sig_r[0] = 1;
	assert_true(cvm_snp_report_sig_be(&r, sig));
	assert_int_equal(sig[47], 1);
	r.sig_s[48] = 1;
	assert_false(cvm_snp_report_sig_be(&r, sig));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_vector_parses_to_the_manifest_fields),
	    cmocka_unit_test(report_rejects_every_truncation_and_a_trailing_byte),
	    cmocka_unit_test(report_bit_flips_never_crash_and_reserved_flips_are_flagged),
	    cmocka_unit_test(tcb_layouts_decode_and_encode),
	    cmocka_unit_test(products_from_cpuid_and_names),
	    cmocka_unit_test(detector_tells_dcap_quotes_from_snp_reports),
	    cmocka_unit_test(signature_with_high_bytes_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
