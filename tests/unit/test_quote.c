/* The DCAP quote parser against every real TDX and SGX quote: every field
 * equals what a peer parser extracted (manifest key_fields), every
 * truncation fails, trailing bytes are rejected unless they are zero
 * padding, and no single-bit flip crashes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/quote.h>

#include "vectors.h"

static const char *const quote_dirs[] = {
    "tdx/dcapqvl-tdx-v4-uptodate",
    "tdx/zkdcap-tdx-v4-outofdate",
    "tdx/automata-tdx-v4-0625",
    "tdx/automata-tdx-v5-alibaba",
    "tdx/dcapqvl-tdx-v5-nomatch",
    "tdx/gotdxguest-tdx-v4-spr-nomatch",
    "sgx/dcapqvl-sgx-v3-confswhardening",
    "sgx/dcapqvl-sgx-v3-2023collateral",
    "sgx/zkdcap-sgx-v3-swhardening",
    "sgx/trustee-occlum-sgx-v3-0825",
    "sgx/trustee-occlum-sgx-v3-tcbinfov2",
};
#define N_QUOTES (sizeof(quote_dirs) / sizeof(quote_dirs[0]))

static uint8_t *load_quote(const char *dir, size_t *len)
{
	char rel[512];

	(void)snprintf(rel, sizeof(rel), "%s/quote.bin", dir);
	return vector_read(rel, len);
}

static json_t *load_manifest(const char *dir)
{
	char rel[512], path[4096];
	json_error_t err;
	json_t *m;

	(void)snprintf(rel, sizeof(rel), "%s/manifest.json", dir);
	m = json_load_file(vector_path(path, sizeof(path), rel), 0, &err);
	if (m == NULL)
		fail_msg("%s: %s", path, err.text);
	return m;
}

static void check_hex(const json_t *fields, const char *key, const uint8_t *v, size_t n)
{
	const char *want = json_string_value(json_object_get(fields, key));
	char got[2 * 128 + 1];

	assert_non_null(want);
	assert_true(n <= 128);
	cvm_hex_encode(v, n, got);
	if (strcasecmp(want, got) != 0)
		fail_msg("%s: want %s, got %s", key, want, got);
}

static void every_real_quote_parses_to_the_peer_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_QUOTES; i++) {
		struct cvm_quote q;
		size_t len;
		uint8_t *buf = load_quote(quote_dirs[i], &len);
		json_t *m = load_manifest(quote_dirs[i]);
		json_t *kf = json_object_get(m, "key_fields");
		json_t *hdr = json_object_get(kf, "header"), *f = json_object_get(kf, "fields");
		int r = cvm_quote_parse(buf, len, &q);

		print_message("%s: %s\n", quote_dirs[i], cvm_strerror(r));
		/* gotdxguest's file has test bytes appended after the quote */
		if (strstr(quote_dirs[i], "gotdxguest") != NULL) {
			assert_int_equal(r, CVM_E_FORMAT);
			assert_true(q.trailing_garbage);
		} else {
			assert_int_equal(r, CVM_OK);
		}
		assert_int_equal(q.version, json_integer_value(json_object_get(hdr, "version")));
		assert_int_equal(q.att_key_type,
		                 json_integer_value(json_object_get(hdr, "attestation_key_type")));
		assert_int_equal(q.qe_svn, json_integer_value(json_object_get(hdr, "qe_svn")));
		assert_int_equal(q.pce_svn, json_integer_value(json_object_get(hdr, "pce_svn")));
		check_hex(hdr, "qe_vendor_id", q.qe_vendor_id, 16);
		assert_int_equal(q.signed_data.len, json_integer_value(json_object_get(kf, "signed_length")));
		if (q.tee == CVM_TEE_SGX) {
			const struct cvm_sgx_report *s = &q.body.sgx;

			assert_string_equal(json_string_value(json_object_get(f, "body")), "sgx");
			check_hex(f, "mr_enclave", s->mr_enclave, 32);
			check_hex(f, "mr_signer", s->mr_signer, 32);
			check_hex(f, "attributes", s->attributes, 16);
			check_hex(f, "cpu_svn", s->cpu_svn, 16);
			check_hex(f, "report_data", s->report_data, 64);
			assert_int_equal(s->isv_prod_id,
			                 json_integer_value(json_object_get(f, "isv_prod_id")));
			assert_int_equal(s->isv_svn, json_integer_value(json_object_get(f, "isv_svn")));
			assert_int_equal(s->misc_select,
			                 json_integer_value(json_object_get(f, "misc_select")));
		} else {
			const struct cvm_tdx_report *t = &q.body.td;
			char rt[8];

			assert_string_equal(json_string_value(json_object_get(f, "body")),
			                    q.body_type == CVM_BODY_TD15 ? "td15" : "td10");
			check_hex(f, "tee_tcb_svn", t->tee_tcb_svn, 16);
			check_hex(f, "mr_seam", t->mr_seam, 48);
			check_hex(f, "mr_signer_seam", t->mr_signer_seam, 48);
			check_hex(f, "seam_attributes", t->seam_attributes, 8);
			check_hex(f, "td_attributes", t->td_attributes, 8);
			check_hex(f, "xfam", t->xfam, 8);
			check_hex(f, "mr_td", t->mr_td, 48);
			check_hex(f, "mr_config_id", t->mr_config_id, 48);
			check_hex(f, "mr_owner", t->mr_owner, 48);
			check_hex(f, "mr_owner_config", t->mr_owner_config, 48);
			for (int k = 0; k < 4; k++) {
				(void)snprintf(rt, sizeof(rt), "rtmr%d", k);
				check_hex(f, rt, t->rtmr[k], 48);
			}
			check_hex(f, "report_data", t->report_data, 64);
			if (q.body_type == CVM_BODY_TD15) {
				check_hex(f, "tee_tcb_svn2", t->tee_tcb_svn2, 16);
				check_hex(f, "mr_service_td", t->mr_service_td, 48);
			}
		}
		assert_int_equal(q.cert_data_type, CVM_CERT_DATA_PCK_CHAIN);
		assert_true(q.pck_chain_pem.len > 1000);
		json_decref(m);
		free(buf);
	}
}

static void every_truncation_of_a_real_quote_fails(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_QUOTES; i++) {
		struct cvm_quote q;
		size_t len;
		uint8_t *buf = load_quote(quote_dirs[i], &len);

		if (cvm_quote_parse(buf, len, &q) != CVM_OK && !q.trailing_garbage)
			fail_msg("%s does not parse", quote_dirs[i]);
		for (size_t n = 0; n < q.quote_len; n++) {
			struct cvm_quote t;
			int r = cvm_quote_parse(buf, n, &t);

			if (r == CVM_OK)
				fail_msg("%s: the %zu-byte prefix parsed", quote_dirs[i], n);
		}
		free(buf);
	}
}

static void zero_padding_is_accepted_and_any_other_trailing_byte_rejected(void **state)
{
	size_t len;
	uint8_t *buf = load_quote("tdx/dcapqvl-tdx-v4-uptodate", &len);
	uint8_t *big = calloc(1, len + 100);
	struct cvm_quote q;
	size_t qlen;

	(void)state;
	assert_non_null(big);
	memcpy(big, buf, len);
	assert_int_equal(cvm_quote_parse(buf, len, &q), CVM_OK);
	qlen = q.quote_len; /* this file already carries some zero padding */
	assert_int_equal(cvm_quote_parse(big, len + 100, &q), CVM_OK);
	assert_int_equal(q.quote_len, qlen);
	assert_int_equal(q.padding_len, len + 100 - qlen);
	for (size_t k = len; k < len + 100; k += 33) {
		big[k] = 0x01;
		assert_int_equal(cvm_quote_parse(big, len + 100, &q), CVM_E_FORMAT);
		assert_true(q.trailing_garbage);
		big[k] = 0;
	}
	/* one extra non-zero byte */
	big[qlen] = 0xff;
	assert_int_equal(cvm_quote_parse(big, qlen + 1, &q), CVM_E_FORMAT);
	assert_int_equal(cvm_quote_parse(big, qlen, &q), CVM_OK);
	free(big);
	free(buf);
}

/* A flipped bit must never crash the parser; where it still parses, some
 * field must differ (the parser does not ignore any byte). */
static void every_single_bit_flip_is_parsed_safely(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_QUOTES; i++) {
		struct cvm_quote ref, q;
		size_t len;
		uint8_t *buf = load_quote(quote_dirs[i], &len);

		int r0 = cvm_quote_parse(buf, len, &ref);

		assert_true(r0 == CVM_OK || ref.trailing_garbage);
		for (size_t bit = 0; bit < ref.quote_len * 8; bit++) {
			int r;

			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			r = cvm_quote_parse(buf, len, &q);
			if (r == CVM_OK || q.trailing_garbage) {
				/* the same bytes at the same offsets: the signed spans
				 * and the decoded fields must reflect the flip */
				assert_true(q.quote_len <= len);
				assert_true(q.signed_data.p == buf);
			}
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		free(buf);
	}
}

static void unsupported_versions_and_key_types_are_named(void **state)
{
	size_t len;
	uint8_t *buf = load_quote("tdx/dcapqvl-tdx-v4-uptodate", &len);
	struct cvm_quote q;

	(void)state;
	buf[0] = 6; /* version 6 */
	assert_int_equal(cvm_quote_parse(buf, len, &q), CVM_E_UNSUPPORTED);
	buf[0] = 4;
	buf[2] = 3; /* ECDSA P-384 attestation key */
	assert_int_equal(cvm_quote_parse(buf, len, &q), CVM_E_UNSUPPORTED);
	buf[2] = 2;
	buf[4] = 0x7f; /* unknown TEE type */
	assert_int_equal(cvm_quote_parse(buf, len, &q), CVM_E_FORMAT);
	buf[4] = 0x81;
	assert_int_equal(cvm_quote_parse(buf, len, &q), CVM_OK);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_real_quote_parses_to_the_peer_fields),
	    cmocka_unit_test(every_truncation_of_a_real_quote_fails),
	    cmocka_unit_test(zero_padding_is_accepted_and_any_other_trailing_byte_rejected),
	    cmocka_unit_test(every_single_bit_flip_is_parsed_safely),
	    cmocka_unit_test(unsupported_versions_and_key_types_are_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
