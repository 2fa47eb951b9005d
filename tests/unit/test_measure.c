/* lib/measure: expected TDX MRTD and RTMR0..2.
 *  - Debian's OVMF_CODE.fd (package ovmf) has TDVF metadata: a BFV that ends
 *    at 4 GiB, a CFV, a TD_HOB and TEMP_MEM sections; as a split image its
 *    BFV data lies beyond the file, and MRTD refuses it;
 *  - MRTD of the whole OVMF.fd equals an independent computation written here
 *    with OpenSSL over the raw metadata offsets, is deterministic, and the
 *    single-pass and two-pass orders differ;
 *  - the TD HOB witness encodes the dstack vector (inline-vectors.json
 *    td-hob-witness-v1) and Debian's OVMF gives the same bytes, whose TD HOB
 *    at 2 GiB is the digest in the fixture's event log;
 *  - the tdx-lite fixture (measurement CBOR + the ACPI digests of its event
 *    log) reproduces the quote's MRTD and RTMR0..2, every RTMR0..2 event
 *    equal to the log's;
 *  - truncated, extended and bit-flipped firmware metadata is refused
 *    cleanly or parses to different sections;
 *  - command line and EFI variable digests against OpenSSL; QEMU's initrd
 *    placement at 2 GiB equals the high-memory one; the Authenticode digest
 *    of a small PE built here equals edk2's rule computed with OpenSSL (the
 *    real kernel is checked against osslsigncode in
 *    integration.measure_authenticode).
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
#include <openssl/evp.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/file.h>
#include <cvmkit/measure.h>
#include <cvmkit/quote.h>

#include "vectors.h"

#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE.fd"
#define OVMF_FULL "/usr/share/ovmf/OVMF.fd"
#define FIXTURE "compat/verifier/dstack-verifier-fixtures/tdx-lite-getquote.json"
#define MR_VECTORS "compat/dstack-mr/inline-vectors.json"

static uint8_t *read_ovmf(const char *path, size_t *len)
{
	uint8_t *buf = NULL;

	if (cvm_file_read(path, CVM_TDVF_IMAGE_MAX, &buf, len) != CVM_OK)
		fail_msg("%s is missing: install Debian's ovmf package (scripts/setup.sh)", path);
	return buf;
}

static void sha384_ossl(const void *p, size_t n, uint8_t out[48])
{
	unsigned len = 0;

	assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha384(), NULL), 1);
	assert_int_equal(len, 48);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void hex_to(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(cvm_hex_decode_exact(hex, strlen(hex), out, n), CVM_OK);
}

/* ---- TDVF metadata ----------------------------------------------------- */

static void tdvf_parses_debian_ovmf_code_fd(void **state)
{
	struct cvm_tdvf t;
	size_t len = 0;
	uint8_t *fw = read_ovmf(OVMF_CODE, &len);
	char err[256];
	bool bfv = false, cfv = false, hob = false, temp = false;

	(void)state;
	assert_int_equal(cvm_tdvf_parse(fw, len, &t, err, sizeof(err)), CVM_OK);
	assert_int_equal(t.version, 1);
	assert_int_equal(t.section_count, 6);
	for (size_t i = 0; i < t.section_count; i++) {
		const struct cvm_tdvf_section *s = &t.sections[i];

		if (s->type == CVM_TDVF_BFV) {
			bfv = true;
			assert_int_equal(s->memory_address + s->memory_data_size, 0x100000000ull);
			assert_true((s->attributes & CVM_TDVF_ATTR_MR_EXTEND) != 0);
			assert_int_equal(s->raw_data_size, s->memory_data_size);
			/* the split CODE file lacks the VARS part the offsets count */
			assert_false(s->data_in_image);
		}
		if (s->type == CVM_TDVF_CFV) {
			cfv = true;
			assert_int_equal(s->attributes & CVM_TDVF_ATTR_MR_EXTEND, 0);
		}
		if (s->type == CVM_TDVF_TD_HOB) {
			hob = true;
			assert_int_equal(s->memory_address, 0x809000);
		}
		temp |= s->type == CVM_TDVF_TEMP_MEM;
	}
	assert_true(bfv && cfv && hob && temp);
	assert_false(t.data_complete);
	assert_string_equal(cvm_tdvf_section_type_name(CVM_TDVF_TD_HOB), "TD_HOB");
	free(fw);
}

static void mrtd_refuses_a_split_code_image(void **state)
{
	struct cvm_tdvf t;
	size_t len = 0;
	uint8_t *fw = read_ovmf(OVMF_CODE, &len), m[48];

	(void)state;
	assert_int_equal(cvm_tdvf_parse(fw, len, &t, NULL, 0), CVM_OK);
	assert_int_equal(cvm_tdvf_mrtd(&t, fw, len, CVM_MRTD_TWO_PASS, m), CVM_E_FORMAT);
	/* and a parse result used with another image is refused */
	assert_int_equal(cvm_tdvf_mrtd(&t, fw, len - 1, CVM_MRTD_TWO_PASS, m), CVM_E_INVAL);
	free(fw);
}

/* ref_mrtd computes MRTD with OpenSSL straight from the descriptor at
 * `meta` (no code under test). */
static void ref_mrtd(const uint8_t *fw, size_t len, size_t meta, bool two_pass, uint8_t out[48])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint32_t n = le32(fw + meta + 12);
	unsigned olen = 0;

	assert_non_null(c);
	assert_int_equal(EVP_DigestInit_ex(c, EVP_sha384(), NULL), 1);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *s = fw + meta + 16 + 32 * i;
		uint32_t off = le32(s), attr = le32(s + 28);
		uint64_t gpa = le64(s + 8), pages = le64(s + 16) / 4096;

		for (int pass = 0; pass < (two_pass ? 2 : 1); pass++) {
			for (uint64_t p = 0; p < pages; p++) {
				uint8_t b[128];

				if ((!two_pass || pass == 0) && (attr & 2) == 0) {
					memset(b, 0, sizeof(b));
					memcpy(b, "MEM.PAGE.ADD", 12);
					for (int k = 0; k < 8; k++)
						b[16 + k] = (uint8_t)((gpa + p * 4096) >> (8 * k));
					EVP_DigestUpdate(c, b, sizeof(b));
				}
				if ((!two_pass || pass == 1) && (attr & 1) != 0) {
					for (int ch = 0; ch < 16; ch++) {
						memset(b, 0, sizeof(b));
						memcpy(b, "MR.EXTEND", 9);
						for (int k = 0; k < 8; k++)
							b[16 + k] =
							    (uint8_t)((gpa + p * 4096 + (uint64_t)ch * 256) >>
							              (8 * k));
						EVP_DigestUpdate(c, b, sizeof(b));
						assert_true(off + p * 4096 + (uint64_t)ch * 256 + 256 <= len);
						EVP_DigestUpdate(c, fw + off + p * 4096 + ch * 256, 256);
					}
				}
			}
		}
	}
	assert_int_equal(EVP_DigestFinal_ex(c, out, &olen), 1);
	EVP_MD_CTX_free(c);
}

static void mrtd_of_ovmf_fd_matches_an_independent_computation(void **state)
{
	struct cvm_tdvf t;
	size_t len = 0;
	uint8_t *fw = read_ovmf(OVMF_FULL, &len), two[48], two2[48], single[48], ref[48];

	(void)state;
	assert_int_equal(cvm_tdvf_parse(fw, len, &t, NULL, 0), CVM_OK);
	assert_true(t.data_complete);
	assert_int_equal(cvm_tdvf_mrtd(&t, fw, len, CVM_MRTD_TWO_PASS, two), CVM_OK);
	assert_int_equal(cvm_tdvf_mrtd(&t, fw, len, CVM_MRTD_TWO_PASS, two2), CVM_OK);
	assert_memory_equal(two, two2, 48);
	assert_int_equal(cvm_tdvf_mrtd(&t, fw, len, CVM_MRTD_SINGLE_PASS, single), CVM_OK);
	assert_memory_not_equal(two, single, 48);
	ref_mrtd(fw, len, (size_t)t.metadata_offset, true, ref);
	assert_memory_equal(two, ref, 48);
	ref_mrtd(fw, len, (size_t)t.metadata_offset, false, ref);
	assert_memory_equal(single, ref, 48);
	/* one byte of the BFV changes MRTD */
	fw[t.sections[0].data_offset + 5000] ^= 1;
	assert_int_equal(cvm_tdvf_mrtd(&t, fw, len, CVM_MRTD_TWO_PASS, two2), CVM_OK);
	assert_memory_not_equal(two, two2, 48);
	free(fw);
}

static void cfv_digest_is_the_sha384_of_the_vars_part(void **state)
{
	struct cvm_tdvf t;
	size_t len = 0, vlen = 0;
	uint8_t *fw = read_ovmf(OVMF_FULL, &len), *vars = NULL, d[48], ref[48];

	(void)state;
	assert_int_equal(cvm_tdvf_parse(fw, len, &t, NULL, 0), CVM_OK);
	assert_int_equal(cvm_tdvf_cfv_digest(&t, fw, len, d), CVM_OK);
	if (cvm_file_read("/usr/share/OVMF/OVMF_VARS.fd", 1 << 22, &vars, &vlen) != CVM_OK)
		fail_msg("/usr/share/OVMF/OVMF_VARS.fd is missing: install Debian's ovmf package");
	sha384_ossl(vars, vlen, ref);
	assert_memory_equal(d, ref, 48);
	free(vars);
	free(fw);
}

/* ---- TD HOB witness ---------------------------------------------------- */

static void td_hob_witness_encodes_the_dstack_vector(void **state)
{
	size_t jlen = 0, wlen = 0;
	uint8_t *j = vector_read(MR_VECTORS, &jlen), w[CVM_TD_HOB_WITNESS_MAX];
	json_t *root = json_loadb((const char *)j, jlen, 0, NULL), *vec = NULL, *v;
	struct cvm_tdvf t;
	size_t i;
	char hex[2 * CVM_TD_HOB_WITNESS_MAX + 1];

	(void)state;
	assert_non_null(root);
	json_array_foreach(json_object_get(root, "vectors"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "id")), "td-hob-witness-v1") == 0)
			vec = v;
	}
	assert_non_null(vec);
	memset(&t, 0, sizeof(t));
	json_array_foreach(json_object_get(json_object_get(vec, "input"), "sections"), i, v)
	{
		struct cvm_tdvf_section *s = &t.sections[t.section_count++];
		const char *type = json_string_value(json_object_get(v, "type"));

		s->memory_address =
		    strtoull(json_string_value(json_object_get(v, "memory_address")), NULL, 16);
		s->memory_data_size =
		    strtoull(json_string_value(json_object_get(v, "memory_data_size")), NULL, 16);
		s->type = strcmp(type, "TD_HOB") == 0 ? CVM_TDVF_TD_HOB : CVM_TDVF_TEMP_MEM;
	}
	assert_int_equal(t.section_count, 4);
	assert_int_equal(cvm_tdvf_td_hob_witness(&t, w, sizeof(w), &wlen), CVM_OK);
	cvm_hex_encode(w, wlen, hex);
	assert_string_equal(
	    hex, json_string_value(json_object_get(json_object_get(vec, "expect"), "td_hob_witness_v1_hex")));
	/* too small a buffer, two TD_HOBs, overlapping ranges: refused */
	assert_int_equal(cvm_tdvf_td_hob_witness(&t, w, 5, &wlen), CVM_E_TOO_LARGE);
	t.sections[0].type = CVM_TDVF_TD_HOB;
	assert_int_equal(cvm_tdvf_td_hob_witness(&t, w, sizeof(w), &wlen), CVM_E_FORMAT);
	t.sections[0].type = CVM_TDVF_TEMP_MEM;
	t.sections[0].memory_address = 0x80c000;
	assert_int_equal(cvm_tdvf_td_hob_witness(&t, w, sizeof(w), &wlen), CVM_E_FORMAT);
	json_decref(root);
	free(j);
}

static void debian_ovmf_has_the_same_td_hob_witness(void **state)
{
	struct cvm_tdvf t;
	size_t len = 0, wlen = 0;
	uint8_t *fw = read_ovmf(OVMF_CODE, &len), w[CVM_TD_HOB_WITNESS_MAX], want[12];

	(void)state;
	hex_to("80100904000609020b021010", want, sizeof(want));
	assert_int_equal(cvm_tdvf_parse(fw, len, &t, NULL, 0), CVM_OK);
	assert_int_equal(cvm_tdvf_td_hob_witness(&t, w, sizeof(w), &wlen), CVM_OK);
	assert_int_equal(wlen, sizeof(want));
	assert_memory_equal(w, want, sizeof(want));
	free(fw);
}

/* Debian's OVMF accepts the same ranges as dstack's: the TD HOB computed from
 * its metadata for 2 GiB is the one the tdx-lite fixture's OVMF measured. */
static void debian_ovmf_td_hob_at_2g_is_the_fixture_logs(void **state)
{
	struct cvm_tdvf t;
	size_t len = 0, wlen = 0;
	uint8_t *fw = read_ovmf(OVMF_CODE, &len), w[CVM_TD_HOB_WITNESS_MAX], d[48], want[48];

	(void)state;
	hex_to("0b8772e5b0b41b83e6044a68397e02f49fb47066b4fbe4917ea2c45c64f323fdacbb37948f821ebaf8bc9c938ba8a"
	       "749",
	       want, 48);
	assert_int_equal(cvm_tdvf_parse(fw, len, &t, NULL, 0), CVM_OK);
	assert_int_equal(cvm_tdvf_td_hob_witness(&t, w, sizeof(w), &wlen), CVM_OK);
	assert_int_equal(cvm_td_hob_digest(w, wlen, 2147483648ull, d), CVM_OK);
	assert_memory_equal(d, want, 48);
	free(fw);
}

static void td_hob_digest_refuses_bad_witnesses(void **state)
{
	uint8_t w[12], d[48], d2[48];

	(void)state;
	hex_to("80100904000609020b021010", w, sizeof(w));
	assert_int_equal(cvm_td_hob_digest(w, sizeof(w), 0x80000000ull, d), CVM_OK);
	assert_int_equal(cvm_td_hob_digest(w, sizeof(w), 0x100000000ull, d2), CVM_OK);
	assert_memory_not_equal(d, d2, 48);
	for (size_t n = 0; n < sizeof(w); n++)
		assert_int_not_equal(cvm_td_hob_digest(w, n, 0x80000000ull, d2), CVM_OK);
	/* memory smaller than the accepted ranges */
	assert_int_equal(cvm_td_hob_digest(w, sizeof(w), 0x100000, d2), CVM_E_INVAL);
	/* a varint longer than 64 bits */
	{
		static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		                              0xff, 0xff, 0x7f, 0,    1,    0,    1};

		assert_int_equal(cvm_td_hob_digest(big, sizeof(big), 0x80000000ull, d2), CVM_E_FORMAT);
	}
}

/* ---- the lite vector ---------------------------------------------------- */

/* The boot log of a computed launch (what a dev VM's simulated TEE
 * carries) replays to the registers, and gives its ACPI digests back. */
static void ccel_of_a_launch_replays_to_its_registers(void **state)
{
	size_t jlen = 0, len = 0;
	uint8_t *j = vector_read(FIXTURE, &jlen), *log = NULL, *copy;
	json_t *root = json_loadb((const char *)j, jlen, 0, NULL);
	const char *vmc;
	struct cvm_measure_vm vm;
	struct cvm_measure_acpi acpi, back;
	struct cvm_measure *m = calloc(1, sizeof(*m));
	struct cvm_evl_replay *rp = calloc(1, sizeof(*rp));
	char err[256];

	(void)state;
	assert_non_null(root);
	assert_non_null(m);
	assert_non_null(rp);
	vmc = json_string_value(json_object_get(root, "vm_config"));
	assert_int_equal(cvm_measure_vm_config_parse(vmc, strlen(vmc), &vm, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_measure_acpi_from_eventlog(j, jlen, &acpi), CVM_OK);
	assert_int_equal(cvm_measure_lite(vm.measurement, vm.measurement_len, vm.memory_size, vm.order, &acpi,
	                                  m, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(cvm_measure_ccel(m, &log, &len), CVM_OK);
	assert_int_equal(cvm_evl_replay(log, len, CVM_EVL_CCEL, rp), CVM_OK);
	for (uint32_t r = 0; r < 3; r++) {
		const uint8_t *v = NULL;
		size_t vlen = 0;

		assert_int_equal(cvm_evl_replay_value(rp, CVM_DIGEST_SHA384, r + 1, &v, &vlen), CVM_OK);
		assert_int_equal(vlen, 48);
		assert_memory_equal(v, m->rtmr[r].value, 48);
	}
	assert_int_equal(cvm_measure_acpi_from_eventlog(log, len, &back), CVM_OK);
	assert_memory_equal(back.loader, acpi.loader, 48);
	assert_memory_equal(back.rsdp, acpi.rsdp, 48);
	assert_memory_equal(back.tables, acpi.tables, 48);
	/* a flipped digest byte replays to another RTMR0 */
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, log, len);
	for (size_t i = 0; i + 48 <= len; i++) { /* the TD HOB event's digest */
		if (memcmp(log + i, m->rtmr[0].events[0].digest, 48) == 0) {
			memcpy(copy, log, len);
			copy[i] ^= 1;
			break;
		}
	}
	assert_int_equal(cvm_evl_replay(copy, len, CVM_EVL_CCEL, rp), CVM_OK);
	{
		const uint8_t *v = NULL;
		size_t vlen = 0;

		assert_int_equal(cvm_evl_replay_value(rp, CVM_DIGEST_SHA384, 1, &v, &vlen), CVM_OK);
		assert_memory_not_equal(v, m->rtmr[0].value, 48);
	}
	free(copy);
	free(log);
	cvm_measure_vm_cleanup(&vm);
	json_decref(root);
	free(j);
	free(rp);
	free(m);
}

static void lite_fixture_reproduces_the_quote(void **state)
{
	size_t jlen = 0, qlen = 0;
	uint8_t *j = vector_read(FIXTURE, &jlen), *qb = NULL;
	json_t *root = json_loadb((const char *)j, jlen, 0, NULL), *evs, *e;
	const char *qhex, *vmc;
	struct cvm_measure_vm vm;
	struct cvm_measure_acpi acpi;
	struct cvm_measure *m = calloc(1, sizeof(*m));
	struct cvm_quote *q = calloc(1, sizeof(*q));
	size_t counts[3] = {0}, i;
	char err[256];

	(void)state;
	assert_non_null(root);
	assert_non_null(m);
	assert_non_null(q);
	qhex = json_string_value(json_object_get(root, "quote"));
	qlen = strlen(qhex) / 2;
	qb = malloc(qlen);
	assert_non_null(qb);
	hex_to(qhex, qb, qlen);
	assert_int_equal(cvm_quote_parse(qb, qlen, q), CVM_OK);

	vmc = json_string_value(json_object_get(root, "vm_config"));
	assert_int_equal(cvm_measure_vm_config_parse(vmc, strlen(vmc), &vm, err, sizeof(err)), CVM_OK);
	assert_int_equal(vm.memory_size, 2147483648ull);
	assert_int_equal(vm.order, CVM_MRTD_TWO_PASS); /* QEMU 8.2.2 */
	assert_non_null(vm.measurement);

	assert_int_equal(cvm_measure_acpi_from_eventlog(j, jlen, &acpi), CVM_OK);
	assert_int_equal(cvm_measure_lite(vm.measurement, vm.measurement_len, vm.memory_size, vm.order, &acpi,
	                                  m, err, sizeof(err)),
	                 CVM_OK);
	assert_memory_equal(m->mrtd, q->body.td.mr_td, 48);
	for (int r = 0; r < 3; r++)
		assert_memory_equal(m->rtmr[r].value, q->body.td.rtmr[r], 48);

	/* every event, in order, is the log's */
	evs = json_loads(json_string_value(json_object_get(root, "event_log")), 0, NULL);
	assert_non_null(evs);
	json_array_foreach(evs, i, e)
	{
		json_int_t imr = json_integer_value(json_object_get(e, "imr"));
		uint8_t d[48];

		if (imr > 2)
			continue;
		hex_to(json_string_value(json_object_get(e, "digest")), d, 48);
		assert_true(counts[imr] < m->rtmr[imr].count);
		assert_memory_equal(d, m->rtmr[imr].events[counts[imr]].digest, 48);
		/* and the event type TDVF logged it with (cvm_measure_ccel's) */
		assert_int_equal((uint32_t)json_integer_value(json_object_get(e, "event_type")),
		                 m->rtmr[imr].events[counts[imr]].type);
		counts[imr]++;
	}
	for (int r = 0; r < 3; r++)
		assert_int_equal(counts[r], m->rtmr[r].count);

	/* the other MRTD order gives another MRTD; a memory size the kernel
	 * digest does not hold for is refused */
	assert_int_equal(cvm_measure_lite(vm.measurement, vm.measurement_len, vm.memory_size,
	                                  CVM_MRTD_SINGLE_PASS, &acpi, m, err, sizeof(err)),
	                 CVM_OK);
	assert_memory_not_equal(m->mrtd, q->body.td.mr_td, 48);
	assert_int_equal(cvm_measure_lite(vm.measurement, vm.measurement_len, 3ull << 29, vm.order, &acpi, m,
	                                  err, sizeof(err)),
	                 CVM_E_INVAL);
	/* 4 GiB: RTMR0 (the TD HOB) changes, RTMR1/2 do not */
	assert_int_equal(cvm_measure_lite(vm.measurement, vm.measurement_len, 4ull << 30, vm.order, &acpi, m,
	                                  err, sizeof(err)),
	                 CVM_OK);
	assert_memory_not_equal(m->rtmr[0].value, q->body.td.rtmr[0], 48);
	assert_memory_equal(m->rtmr[1].value, q->body.td.rtmr[1], 48);

	cvm_measure_vm_cleanup(&vm);
	json_decref(evs);
	json_decref(root);
	free(q);
	free(m);
	free(qb);
	free(j);
}

static void acpi_digests_come_from_a_ccel_too(void **state)
{
	size_t len = 0, jlen = 0, i, k = 0;
	uint8_t *log = vector_read("eventlog/ccel-coco-CCEL_data_ovmf/eventlog.bin", &len);
	uint8_t *j = vector_read("eventlog/ccel-coco-CCEL_data_ovmf/trustee_parsed_out.json", &jlen);
	json_t *root = json_loadb((const char *)j, jlen, 0, NULL), *e;
	struct cvm_measure_acpi acpi;
	const uint8_t *got[3];

	(void)state;
	assert_non_null(root);
	assert_int_equal(cvm_measure_acpi_from_eventlog(log, len, &acpi), CVM_OK);
	got[0] = acpi.loader;
	got[1] = acpi.rsdp;
	got[2] = acpi.tables;
	/* trustee's parse of the same log: the EV_PLATFORM_CONFIG_FLAGS of MR 1 */
	json_array_foreach(json_object_get(root, "uefi_event_logs"), i, e)
	{
		uint8_t d[48];

		if (strcmp(json_string_value(json_object_get(e, "type_name")), "EV_PLATFORM_CONFIG_FLAGS") !=
		        0 ||
		    json_integer_value(json_object_get(e, "index")) != 1 || k >= 3)
			continue;
		hex_to(json_string_value(
		           json_object_get(json_array_get(json_object_get(e, "digests"), 0), "digest")),
		       d, 48);
		assert_memory_equal(got[k], d, 48);
		k++;
	}
	assert_int_equal(k, 3);
	/* a log without them */
	assert_int_equal(cvm_measure_acpi_from_eventlog((const uint8_t *)"[]", 2, &acpi), CVM_E_NOT_FOUND);
	json_decref(root);
	free(j);
	free(log);
}

static void vm_config_gives_memory_and_the_mrtd_order_as_dstack_reads_it(void **state)
{
	static const struct {
		const char *json;
		int rc;
		enum cvm_mrtd_order order;
	} cases[] = {
	    {"{\"memory_size\":2147483648,\"cpu_count\":2,\"qemu_version\":\"8.2.2\"}", CVM_OK,
	     CVM_MRTD_TWO_PASS},
	    {"{\"memory_size\":2147483648,\"cpu_count\":2,\"qemu_version\":\"9.1.0\"}", CVM_OK,
	     CVM_MRTD_SINGLE_PASS},
	    {"{\"memory_size\":2147483648,\"cpu_count\":2}", CVM_OK, CVM_MRTD_SINGLE_PASS},
	    /* dstack-mr passes this field as its two-pass switch */
	    {"{\"memory_size\":1,\"cpu_count\":1,\"qemu_version\":\"9.1.0\",\"qemu_single_pass_add_pages\":"
	     "true}",
	     CVM_OK, CVM_MRTD_TWO_PASS},
	    {"{\"memory_size\":1,\"cpu_count\":1,\"qemu_version\":\"7.2.0\"}", CVM_E_UNSUPPORTED, 0},
	    {"{\"memory_size\":1,\"cpu_count\":1,\"qemu_version\":\"9.x\"}", CVM_E_FORMAT, 0},
	    {"{\"cpu_count\":1}", CVM_E_FORMAT, 0},
	    {"{\"memory_size\":1,\"cpu_count\":0}", CVM_E_FORMAT, 0},
	    {"{\"memory_size\":1,\"cpu_count\":1,\"tdx_measurement\":{\"measurement\":\"!\"}}", CVM_E_FORMAT,
	     0},
	    {"[1]", CVM_E_FORMAT, 0},
	    {"{\"memory_size\":1,", CVM_E_FORMAT, 0},
	};
	struct cvm_measure_vm vm;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r =
		    cvm_measure_vm_config_parse(cases[i].json, strlen(cases[i].json), &vm, err, sizeof(err));

		assert_int_equal(r, cases[i].rc);
		if (r == CVM_OK)
			assert_int_equal(vm.order, cases[i].order);
		else
			assert_true(err[0] != '\0');
		cvm_measure_vm_cleanup(&vm);
	}
}

/* ---- malformed firmware ------------------------------------------------ */

static bool same_tdvf(const struct cvm_tdvf *a, const struct cvm_tdvf *b)
{
	if (a->section_count != b->section_count || a->metadata_offset != b->metadata_offset)
		return false;
	for (size_t i = 0; i < a->section_count; i++) {
		const struct cvm_tdvf_section *x = &a->sections[i], *y = &b->sections[i];

		if (x->data_offset != y->data_offset || x->raw_data_size != y->raw_data_size ||
		    x->memory_address != y->memory_address || x->memory_data_size != y->memory_data_size ||
		    x->type != y->type || x->attributes != y->attributes)
			return false;
	}
	return true;
}

static void tdvf_refuses_truncations_extensions_and_bit_flips(void **state)
{
	static const struct cvm_tdvf zero;
	struct cvm_tdvf good, t;
	size_t len = 0;
	uint8_t *fw = read_ovmf(OVMF_CODE, &len), *big;
	size_t tail = 0x900; /* the metadata (0x840 from the end) and the GUID table */

	(void)state;
	assert_int_equal(cvm_tdvf_parse(fw, len, &good, NULL, 0), CVM_OK);
	/* every cut of the last bytes, and a sample of shorter ones */
	for (size_t n = 0; n < len; n += (n + tail < len ? 4093 : 1)) {
		assert_int_not_equal(cvm_tdvf_parse(fw, n, &t, NULL, 0), CVM_OK);
		assert_memory_equal(&t, &zero, sizeof(t));
	}
	big = malloc(len + 1);
	assert_non_null(big);
	memcpy(big, fw, len);
	big[len] = 0;
	assert_int_not_equal(cvm_tdvf_parse(big, len + 1, &t, NULL, 0), CVM_OK);
	free(big);
	/* every bit of the metadata region: refused, or other sections */
	for (size_t off = len - tail; off < len; off++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			int r;

			fw[off] ^= (uint8_t)(1u << bit);
			r = cvm_tdvf_parse(fw, len, &t, NULL, 0);
			if (r == CVM_OK && same_tdvf(&t, &good)) {
				/* only bytes no field covers may flip unnoticed: not the
				 * descriptor, the sections or the table's GUIDs and lengths */
				bool in_desc = off >= good.metadata_offset &&
				               off < good.metadata_offset + 16 + 32 * good.section_count;

				assert_false(in_desc);
			}
			fw[off] ^= (uint8_t)(1u << bit);
		}
	}
	free(fw);
}

/* ---- kernel side ------------------------------------------------------- */

static void cmdline_digest_is_utf16le_with_a_nul(void **state)
{
	static const uint8_t a16[] = {'a', 0, ' ', 0, 0xe9, 0, 0x3d, 0xd8, 0x00, 0xde, 0, 0};
	uint8_t d[48], ref[48];

	(void)state;
	/* "a é😀" */
	assert_int_equal(cvm_measure_cmdline_digest("a \xc3\xa9\xf0\x9f\x98\x80", 8, d), CVM_OK);
	sha384_ossl(a16, sizeof(a16), ref);
	assert_memory_equal(d, ref, 48);
	assert_int_equal(cvm_measure_cmdline_digest("\xc3", 1, d), CVM_E_FORMAT);
	assert_int_equal(cvm_measure_cmdline_digest("\xc0\xaf", 2, d), CVM_E_FORMAT);
	assert_int_equal(cvm_measure_cmdline_digest("a\0b", 3, d), CVM_E_FORMAT);
	assert_int_equal(cvm_measure_cmdline_digest("", 0, d), CVM_OK);
	sha384_ossl(a16 + 10, 2, ref);
	assert_memory_equal(d, ref, 48);
}

static void efi_variable_digest_matches_the_event_log(void **state)
{
	/* SecureBoot's digest in the tdx-lite fixture's RTMR0 */
	static const uint8_t global[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
	                                   0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
	uint8_t d[48], want[48];

	(void)state;
	hex_to("9dc3a1f80bcec915391dcda5ffbb15e7419f77eab462bbf72b42166fb70d50325e37b36f93537a863769bcf9bedae"
	       "6fb",
	       want, 48);
	cvm_efi_variable_digest(global, "SecureBoot", d);
	assert_memory_equal(d, want, 48);
}

static uint32_t initrd_addr(const uint8_t *k)
{
	return le32(k + 0x218);
}

static void qemu_places_the_initrd_alike_at_2g_and_high_memory(void **state)
{
	uint8_t k[5][0x1000];
	static const uint64_t mem[5] = {0x80000000ull - 0x1000, 0x80000000ull, 0xB0000000ull - 0x1000,
	                                0xB0000000ull, 0xF0000000ull};

	(void)state;
	for (int i = 0; i < 5; i++) {
		memset(k[i], 0, sizeof(k[i]));
		k[i][0x206] = 0x0c; /* protocol 2.12 */
		k[i][0x207] = 0x02;
		k[i][0x211] = 0x01; /* LOADED_HIGH */
		k[i][0x236] = 0x40; /* XLF_CAN_BE_LOADED_ABOVE_4G */
		assert_int_equal(cvm_measure_qemu_patch_kernel(k[i], sizeof(k[i]), 0x100000, mem[i],
		                                               CVM_MEASURE_QEMU_ACPI_DATA_SIZE),
		                 CVM_OK);
		assert_int_equal(k[i][0x210], 0xb0);
		assert_int_equal(le32(k[i] + 0x21c), 0x100000);
		assert_int_equal(le32(k[i] + 0x228), 0x20000);
	}
	assert_int_not_equal(initrd_addr(k[0]), initrd_addr(k[1]));
	assert_int_not_equal(initrd_addr(k[2]), initrd_addr(k[3]));
	assert_int_equal(initrd_addr(k[1]), initrd_addr(k[3]));
	assert_int_equal(initrd_addr(k[3]), initrd_addr(k[4]));
	/* 2 GiB - 0x28000 - 1, minus the initrd, 4 KiB aligned */
	assert_int_equal(initrd_addr(k[1]), (0x80000000u - 0x28000u - 1u - 0x100000u) & ~4095u);
	/* an initrd larger than the memory, a short kernel: refused */
	assert_int_equal(cvm_measure_qemu_patch_kernel(k[0], sizeof(k[0]), 0x7fff0000u, 0x40000000ull,
	                                               CVM_MEASURE_QEMU_ACPI_DATA_SIZE),
	                 CVM_E_INVAL);
	assert_int_equal(cvm_measure_qemu_patch_kernel(k[0], 0xfff, 1, 0x80000000ull, 0x28000), CVM_E_FORMAT);
}

/* make_pe builds a small PE32+ image: two sections listed out of file
 * order, 0x80 bytes after them, then a 0x100-byte certificate table. */
#define PE_OPT 0x58u
#define PE_CERTDIR (PE_OPT + 112u + 4u * 8u)
#define PE_LEN 0x780u
static void make_pe(uint8_t *pe)
{
	memset(pe, 0, PE_LEN);
	for (size_t i = 0x200; i < PE_LEN; i++)
		pe[i] = (uint8_t)(i * 7 + 3);
	pe[0] = 'M';
	pe[1] = 'Z';
	pe[0x3c] = 0x40;
	memcpy(pe + 0x40, "PE\0\0", 4);
	pe[0x44] = 0x64; /* machine x86-64 */
	pe[0x45] = 0x86;
	pe[0x46] = 2;      /* sections */
	pe[0x54] = 240;    /* SizeOfOptionalHeader */
	pe[PE_OPT] = 0x0b; /* PE32+ */
	pe[PE_OPT + 1] = 0x02;
	pe[PE_OPT + 60 + 1] = 0x02;                      /* SizeOfHeaders 0x200 */
	memcpy(pe + PE_OPT + 64, "\xef\xbe\xad\xde", 4); /* CheckSum */
	pe[PE_OPT + 108] = 16;                           /* NumberOfRvaAndSizes */
	pe[PE_CERTDIR] = 0x80;                           /* certificate table at 0x680, 0x100 bytes */
	pe[PE_CERTDIR + 1] = 0x06;
	pe[PE_CERTDIR + 5] = 0x01;
	/* section table at 0x148: A at 0x400, then B at 0x200 (0x200 bytes each) */
	pe[0x148 + 16 + 1] = 0x02;
	pe[0x148 + 20 + 1] = 0x04;
	pe[0x148 + 40 + 16 + 1] = 0x02;
	pe[0x148 + 40 + 20 + 1] = 0x02;
}

static void authenticode_follows_edk2_on_a_small_pe(void **state)
{
	uint8_t pe[PE_LEN], d[48], d2[48], ref[48];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned n = 0;

	(void)state;
	make_pe(pe);
	assert_int_equal(cvm_pe_authenticode_sha384(pe, sizeof(pe), d), CVM_OK);
	/* headers without CheckSum and the certificate entry, B, A, the 0x80
	 * bytes after them; not the certificate table */
	assert_non_null(c);
	assert_int_equal(EVP_DigestInit_ex(c, EVP_sha384(), NULL), 1);
	EVP_DigestUpdate(c, pe, PE_OPT + 64);
	EVP_DigestUpdate(c, pe + PE_OPT + 68, PE_CERTDIR - (PE_OPT + 68));
	EVP_DigestUpdate(c, pe + PE_CERTDIR + 8, 0x200 - (PE_CERTDIR + 8));
	EVP_DigestUpdate(c, pe + 0x200, 0x400);
	EVP_DigestUpdate(c, pe + 0x600, 0x80);
	assert_int_equal(EVP_DigestFinal_ex(c, ref, &n), 1);
	EVP_MD_CTX_free(c);
	assert_memory_equal(d, ref, 48);
	/* CheckSum and the certificate table do not count; a section byte and
	 * the trailing data do */
	pe[PE_OPT + 64] ^= 0xff;
	pe[0x700] ^= 0xff;
	assert_int_equal(cvm_pe_authenticode_sha384(pe, sizeof(pe), d2), CVM_OK);
	assert_memory_equal(d, d2, 48);
	pe[0x300] ^= 1;
	assert_int_equal(cvm_pe_authenticode_sha384(pe, sizeof(pe), d2), CVM_OK);
	assert_memory_not_equal(d, d2, 48);
	make_pe(pe);
	pe[0x650] ^= 1;
	assert_int_equal(cvm_pe_authenticode_sha384(pe, sizeof(pe), d2), CVM_OK);
	assert_memory_not_equal(d, d2, 48);
	/* every truncation fails (the certificate table would end past it) */
	make_pe(pe);
	for (size_t len = 0; len < sizeof(pe); len++)
		assert_int_equal(cvm_pe_authenticode_sha384(pe, len, d2), CVM_E_FORMAT);
	/* a section past the end of the file */
	pe[0x148 + 20 + 1] = 0x07;
	assert_int_equal(cvm_pe_authenticode_sha384(pe, sizeof(pe), d2), CVM_E_FORMAT);
}

static void authenticode_refuses_what_is_not_pe(void **state)
{
	uint8_t buf[0x400] = {0}, d[48];

	(void)state;
	assert_int_equal(cvm_pe_authenticode_sha384(buf, sizeof(buf), d), CVM_E_FORMAT);
	buf[0x3c] = 0x80;
	memcpy(buf + 0x80, "PE\0\0", 4);
	assert_int_equal(cvm_pe_authenticode_sha384(buf, sizeof(buf), d),
	                 CVM_E_FORMAT); /* no optional header */
	buf[0x3c] = 0xfe;
	buf[0x3d] = 0xff; /* e_lfanew past the end */
	assert_int_equal(cvm_pe_authenticode_sha384(buf, sizeof(buf), d), CVM_E_FORMAT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tdvf_parses_debian_ovmf_code_fd),
	    cmocka_unit_test(mrtd_refuses_a_split_code_image),
	    cmocka_unit_test(mrtd_of_ovmf_fd_matches_an_independent_computation),
	    cmocka_unit_test(cfv_digest_is_the_sha384_of_the_vars_part),
	    cmocka_unit_test(td_hob_witness_encodes_the_dstack_vector),
	    cmocka_unit_test(debian_ovmf_has_the_same_td_hob_witness),
	    cmocka_unit_test(debian_ovmf_td_hob_at_2g_is_the_fixture_logs),
	    cmocka_unit_test(td_hob_digest_refuses_bad_witnesses),
	    cmocka_unit_test(lite_fixture_reproduces_the_quote),
	    cmocka_unit_test(ccel_of_a_launch_replays_to_its_registers),
	    cmocka_unit_test(acpi_digests_come_from_a_ccel_too),
	    cmocka_unit_test(vm_config_gives_memory_and_the_mrtd_order_as_dstack_reads_it),
	    cmocka_unit_test(tdvf_refuses_truncations_extensions_and_bit_flips),
	    cmocka_unit_test(cmdline_digest_is_utf16le_with_a_nul),
	    cmocka_unit_test(efi_variable_digest_matches_the_event_log),
	    cmocka_unit_test(qemu_places_the_initrd_alike_at_2g_and_high_memory),
	    cmocka_unit_test(authenticode_follows_edk2_on_a_small_pe),
	    cmocka_unit_test(authenticode_refuses_what_is_not_pe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
