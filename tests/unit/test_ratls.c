/* lib/ratls: RA-TLS certificates (dstack and Cosmian profiles) and dstack's
 * VersionedAttestation.
 *  - the real VersionedAttestation (V-D1) decodes to what its manifest
 *    states and re-encodes to the identical bytes; V1 round trips;
 *  - every certificate of tests/vectors/compat/ratls parses with the profile,
 *    TEE, binding and measurements its manifest states;
 *  - every truncation and bit flip of each extension's bytes gives a clean
 *    error or a verdict, never a crash.
 * Expected digests are computed here with OpenSSL directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/snp.h>

#include "vectors.h"

/* ---- helpers ------------------------------------------------------------ */

static void hex_to(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void assert_hex(const uint8_t *got, const char *hex)
{
	size_t n = strlen(hex) / 2;
	uint8_t *want = malloc(n);

	assert_non_null(want);
	hex_to(hex, want, n);
	assert_memory_equal(got, want, n);
	free(want);
}

static void sha384_ossl(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[48])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned n = 0;

	assert_non_null(c);
	assert_int_equal(EVP_DigestInit_ex(c, EVP_sha384(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(c, a, alen), 1);
	if (blen != 0)
		assert_int_equal(EVP_DigestUpdate(c, b, blen), 1);
	assert_int_equal(EVP_DigestFinal_ex(c, out, &n), 1);
	EVP_MD_CTX_free(c);
}

/* rt_digest_v1 is dstack's V1 runtime-event digest, by OpenSSL. */
static void rt_digest_v1(const char *name, const uint8_t *payload, size_t len, uint8_t out[48])
{
	size_t nl = strlen(name);
	size_t total = 4 + 1 + nl + 1 + len;
	uint8_t *buf = malloc(total);

	assert_non_null(buf);
	buf[0] = 0x01;
	buf[1] = 0x00;
	buf[2] = 0x00;
	buf[3] = 0x08;
	buf[4] = ':';
	memcpy(buf + 5, name, nl);
	buf[5 + nl] = ':';
	if (len != 0)
		memcpy(buf + 6 + nl, payload, len);
	sha384_ossl(buf, total, NULL, 0, out);
	free(buf);
}

/* cert_der reads the `index`th certificate of a PEM vector as DER. */
static uint8_t *cert_der(const char *rel, size_t index, size_t *len)
{
	size_t pem_len, count = 0;
	uint8_t *pem = vector_read(rel, &pem_len);
	struct cvm_cert **certs = NULL;
	const uint8_t *der;
	uint8_t *out;

	assert_int_equal(cvm_certs_parse_pem(pem, pem_len, &certs, &count), CVM_OK);
	assert_true(index < count);
	cvm_cert_der(certs[index], &der, len);
	out = malloc(*len);
	assert_non_null(out);
	memcpy(out, der, *len);
	cvm_certs_free(certs, count);
	free(pem);
	return out;
}

/* ---- VersionedAttestation ------------------------------------------------ */

#define VD1 "compat/versioned-attestation/dstack-simulator/attestation.bin"

static void va_vd1_decodes_as_its_manifest_states(void **state)
{
	static const char *const names[] = {"system-preparing", "app-id",       "compose-hash",
	                                    "instance-id",      "boot-mr-done", "os-image-hash",
	                                    "key-provider",     "storage-fs",   "system-ready"};
	size_t len;
	uint8_t *buf = vector_read(VD1, &len);
	struct cvm_va *va = NULL;
	struct cvm_quote q;
	uint8_t zero[64] = {0}, rtmr3[48] = {0}, d[48];
	char err[256];

	(void)state;
	assert_int_equal(len, 9504);
	assert_int_equal(cvm_va_decode(buf, len, &va, err, sizeof(err)), CVM_OK);
	assert_int_equal(va->version, 0);
	assert_int_equal(va->variant, 0);
	assert_int_equal(va->tee, CVM_RATLS_TEE_TDX);
	assert_int_equal(va->quote_len, 5010);
	assert_int_equal(va->event_count, 33);
	assert_int_equal(va->runtime_event_count, 9);
	for (size_t i = 0; i < 9; i++)
		assert_string_equal(va->runtime_events[i].event, names[i]);
	assert_hex(va->runtime_events[1].payload, "5bb4ff9a3837357f19dc176407a5709c62eb6c56");
	assert_int_equal(va->runtime_events[1].payload_len, 20);
	assert_memory_equal(va->report_data, zero, 64);
	assert_true(va->config_len > 0 && va->config[0] == '{');
	assert_int_equal(strlen(va->config), va->config_len);
	/* boot events: imr 0..2 without names; RTMR3 events carry them */
	for (size_t i = 0; i < va->event_count; i++) {
		assert_true(va->events[i].imr <= 3);
		assert_int_equal(va->events[i].digest_len, 48);
		if (va->events[i].imr < 3)
			assert_string_equal(va->events[i].event, "");
		else
			assert_int_equal(va->events[i].event_type, 0x08000001);
	}
	/* the runtime events replay to the quote's RTMR3 (V1 digests) */
	for (size_t i = 0; i < va->runtime_event_count; i++) {
		rt_digest_v1(va->runtime_events[i].event, va->runtime_events[i].payload,
		             va->runtime_events[i].payload_len, d);
		sha384_ossl(rtmr3, 48, d, 48, rtmr3);
	}
	assert_hex(rtmr3, "f28a1490ee924e9396c2ccf2d93ad536b83cbe159a1d45024d1fd7acdcc102145efcfcd0cfa2094164"
	                  "46c70226affadf");
	assert_int_equal(cvm_quote_parse(va->quote, va->quote_len, &q), CVM_OK);
	assert_memory_equal(q.body.td.rtmr[3], rtmr3, 48);
	assert_memory_equal(q.body.td.report_data, zero, 64);
	cvm_va_free(va);
	free(buf);
}

static void va_vd1_reencodes_to_the_identical_bytes(void **state)
{
	size_t len, out_len;
	uint8_t *buf = vector_read(VD1, &len), *out = NULL;
	struct cvm_va *va = NULL;
	char err[256];

	(void)state;
	assert_int_equal(cvm_va_decode(buf, len, &va, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_va_encode(va, 0, &out, &out_len), CVM_OK);
	assert_int_equal(out_len, len);
	assert_memory_equal(out, buf, len);
	free(out);
	cvm_va_free(va);
	free(buf);
}

/* same_va compares two decoded attestations field by field. */
static void same_va(const struct cvm_va *a, const struct cvm_va *b)
{
	assert_int_equal(a->variant, b->variant);
	assert_int_equal(a->tee, b->tee);
	assert_int_equal(a->quote_len, b->quote_len);
	assert_memory_equal(a->quote, b->quote, a->quote_len);
	assert_int_equal(a->event_count, b->event_count);
	for (size_t i = 0; i < a->event_count; i++) {
		assert_int_equal(a->events[i].imr, b->events[i].imr);
		assert_int_equal(a->events[i].event_type, b->events[i].event_type);
		assert_int_equal(a->events[i].digest_len, b->events[i].digest_len);
		if (a->events[i].digest_len != 0)
			assert_memory_equal(a->events[i].digest, b->events[i].digest,
			                    a->events[i].digest_len);
		assert_string_equal(a->events[i].event, b->events[i].event);
		assert_int_equal(a->events[i].payload_len, b->events[i].payload_len);
		if (a->events[i].payload_len != 0)
			assert_memory_equal(a->events[i].payload, b->events[i].payload,
			                    a->events[i].payload_len);
	}
	assert_int_equal(a->runtime_event_count, b->runtime_event_count);
	for (size_t i = 0; i < a->runtime_event_count; i++) {
		assert_string_equal(a->runtime_events[i].event, b->runtime_events[i].event);
		assert_int_equal(a->runtime_events[i].payload_len, b->runtime_events[i].payload_len);
	}
	assert_memory_equal(a->report_data, b->report_data, 64);
	assert_int_equal(a->config_len, b->config_len);
	assert_memory_equal(a->config, b->config, a->config_len);
	assert_int_equal(a->snp_chain_count, b->snp_chain_count);
	for (size_t i = 0; i < a->snp_chain_count; i++) {
		assert_int_equal(a->snp_chain_len[i], b->snp_chain_len[i]);
		assert_memory_equal(a->snp_chain[i], b->snp_chain[i], a->snp_chain_len[i]);
	}
	assert_int_equal(a->mr_config_len, b->mr_config_len);
}

static void va_v1_round_trips_for_tdx_and_snp(void **state)
{
	size_t len, v1_len, v0_len;
	uint8_t *buf = vector_read(VD1, &len), *v1 = NULL, *v0 = NULL;
	struct cvm_va *va = NULL, *back = NULL;
	char err[256];
	uint8_t report[1184], c1[3] = {1, 2, 3}, c2[2] = {0xfe, 0xff};
	const uint8_t *chain[2] = {c1, c2};
	size_t chain_len[2] = {3, 2};
	struct cvm_va_runtime_event rt[1] = {
	    {.event = "app-id", .payload = c1, .payload_len = 3, .version = 2}};
	struct cvm_va snp = {.variant = 3,
	                     .tee = CVM_RATLS_TEE_SNP,
	                     .quote = report,
	                     .quote_len = sizeof(report),
	                     .runtime_events = rt,
	                     .runtime_event_count = 1,
	                     .config = "{}",
	                     .config_len = 2,
	                     .snp_chain = chain,
	                     .snp_chain_len = chain_len,
	                     .snp_chain_count = 2,
	                     .mr_config = "{\"version\":3}",
	                     .mr_config_len = 13};

	(void)state;
	/* TDX: the real V0 attestation as V1, and back */
	assert_int_equal(cvm_va_decode(buf, len, &va, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_va_encode(va, 1, &v1, &v1_len), CVM_OK);
	assert_true(v1[0] >= 0x80 && v1[0] <= 0x8f);
	assert_int_equal(cvm_va_decode(v1, v1_len, &back, err, sizeof(err)), CVM_OK);
	assert_int_equal(back->version, 1);
	same_va(va, back);
	assert_int_equal(cvm_va_encode(back, 0, &v0, &v0_len), CVM_OK);
	assert_int_equal(v0_len, len);
	assert_memory_equal(v0, buf, len);
	cvm_va_free(back);
	free(v1);
	free(v0);
	/* SNP, with a V2 runtime event (V1 carries its version) */
	for (size_t i = 0; i < sizeof(report); i++)
		report[i] = (uint8_t)(i * 7);
	memset(snp.report_data, 0x5a, 64);
	assert_int_equal(cvm_va_encode(&snp, 1, &v1, &v1_len), CVM_OK);
	assert_int_equal(cvm_va_decode(v1, v1_len, &back, err, sizeof(err)), CVM_OK);
	same_va(&snp, back);
	assert_int_equal(back->runtime_events[0].version, 2);
	assert_string_equal(back->mr_config, "{\"version\":3}");
	cvm_va_free(back);
	free(v1);
	/* and V0 for SNP */
	assert_int_equal(cvm_va_encode(&snp, 0, &v0, &v0_len), CVM_OK);
	assert_int_equal(v0[1], 3);
	assert_int_equal(cvm_va_decode(v0, v0_len, &back, err, sizeof(err)), CVM_OK);
	same_va(&snp, back);
	cvm_va_free(back);
	free(v0);
	cvm_va_free(va);
	free(buf);
}

/* The V1 keys are upstream's (dstack-attest/src/v1.rs, rmp_serde
 * to_vec_named): the encoding holds each as a msgpack string. */
static void va_v1_uses_upstream_field_names(void **state)
{
	static const char *const keys[] = {"version",     "platform",       "kind",          "data",
	                                   "quote",       "event_log",      "imr",           "event_type",
	                                   "digest",      "event",          "event_payload", "stack",
	                                   "report_data", "runtime_events", "payload",       "config"};
	size_t len, v1_len;
	uint8_t *buf = vector_read(VD1, &len), *v1 = NULL;
	struct cvm_va *va = NULL;
	char err[256];

	(void)state;
	assert_int_equal(cvm_va_decode(buf, len, &va, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_va_encode(va, 1, &v1, &v1_len), CVM_OK);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		size_t n = strlen(keys[i]);
		bool found = false;

		for (size_t j = 0; j + n + 1 <= v1_len && !found; j++)
			found = v1[j] == (0xa0 | n) && memcmp(v1 + j + 1, keys[i], n) == 0;
		assert_true(found);
	}
	/* the top map: {version: 1, platform: {kind: "tdx", ...}} */
	assert_int_equal(v1[0], 0x83);
	assert_int_equal(v1[1], 0xa7);
	assert_memory_equal(v1 + 2, "version", 7);
	assert_int_equal(v1[9], 0x01);
	free(v1);
	cvm_va_free(va);
	free(buf);
}

static void va_rejects_every_truncation_and_an_extra_byte(void **state)
{
	size_t len;
	uint8_t *buf = vector_read(VD1, &len), *longer;
	struct cvm_va *va = NULL;
	char err[256];

	(void)state;
	for (size_t n = 0; n < len; n++) {
		assert_int_not_equal(cvm_va_decode(buf, n, &va, err, sizeof(err)), CVM_OK);
		assert_null(va);
		assert_true(err[0] != 0);
	}
	longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, buf, len);
	longer[len] = 0;
	assert_int_equal(cvm_va_decode(longer, len + 1, &va, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "follow"));
	free(longer);
	free(buf);
}

static void va_bit_flips_fail_cleanly_or_decode_differently(void **state)
{
	size_t len, out_len;
	uint8_t *buf = vector_read(VD1, &len), *out;
	struct cvm_va *va = NULL;
	char err[256];

	(void)state;
	/* every bit of the first 200 bytes and of the tail; a sample elsewhere */
	for (size_t i = 0; i < len; i += (i < 200 || i + 200 > len) ? 1 : 37) {
		for (int b = 0; b < 8; b++) {
			buf[i] ^= (uint8_t)(1u << b);
			if (cvm_va_decode(buf, len, &va, err, sizeof(err)) == CVM_OK) {
				/* what decoded re-encodes to the flipped bytes: nothing was lost */
				if (cvm_va_encode(va, 0, &out, &out_len) == CVM_OK) {
					assert_int_equal(out_len, len);
					assert_memory_equal(out, buf, len);
					free(out);
				}
				cvm_va_free(va);
			} else {
				assert_null(va);
			}
			buf[i] ^= (uint8_t)(1u << b);
		}
	}
	free(buf);
}

static void va_rejects_crafted_malformed_inputs(void **state)
{
	/* a non-canonical compact length (1 written in two bytes) */
	static const uint8_t noncanon[] = {0x00, 0x00, 0x05, 0x00};
	/* a length far beyond the input */
	static const uint8_t huge[] = {0x00, 0x00, 0xfe, 0xff, 0xff, 0xff};
	/* variant 7 */
	static const uint8_t variant[] = {0x00, 0x07};
	/* msgpack nested 20 deep */
	uint8_t deep[21];
	/* an array announcing 2^32-1 elements */
	static const uint8_t wide[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff};
	struct cvm_va *va = NULL;
	char err[256];

	(void)state;
	assert_int_equal(cvm_va_decode(noncanon, sizeof(noncanon), &va, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "shortest"));
	assert_int_equal(cvm_va_decode(huge, sizeof(huge), &va, err, sizeof(err)), CVM_E_TRUNCATED);
	assert_int_equal(cvm_va_decode(variant, sizeof(variant), &va, err, sizeof(err)), CVM_E_UNSUPPORTED);
	deep[0] = 0x81;
	for (size_t i = 1; i < sizeof(deep); i++)
		deep[i] = 0x91;
	assert_int_equal(cvm_va_decode(deep, sizeof(deep), &va, err, sizeof(err)), CVM_E_TOO_LARGE);
	assert_int_equal(cvm_va_decode(wide, sizeof(wide), &va, err, sizeof(err)), CVM_E_TRUNCATED);
	assert_int_equal(cvm_va_decode((const uint8_t *)"\x01", 1, &va, err, sizeof(err)), CVM_E_UNSUPPORTED);
	assert_null(va);
}

/* ---- parsing certificates ------------------------------------------------ */

#define RD1 "compat/ratls/dstack-kvinwang-demo-server/server.crt"
#define RD3 "compat/ratls/cosmian-tee-tools-2.1.0/tdx-cert.ratls.pem"
#define RD4 "compat/ratls/cosmian-tee-tools-2.1.0/sgx-cert.ratls.pem"
#define RD5 "compat/ratls/cosmian-tee-tools-2.1.0/sev-cert.ratls.pem"
#define RD6 "compat/ratls/cosmian-tee-tools-1.6.2/sev-cert.ratls.pem"

static struct cvm_ratls_info *parse_vector(const char *rel)
{
	size_t len;
	uint8_t *der = cert_der(rel, 0, &len);
	struct cvm_ratls_info *info = NULL;
	char err[256];
	int rc = cvm_ratls_parse(der, len, &info, err, sizeof(err));

	if (rc != CVM_OK)
		fail_msg("%s: %s", rel, err);
	free(der);
	return info;
}

static void parse_rd1_dstack_tdx_legacy_extensions(void **state)
{
	struct cvm_ratls_info *info = parse_vector(RD1);
	struct cvm_evl_replay rep;
	struct cvm_quote q;

	(void)state;
	assert_int_equal(info->profile, CVM_RATLS_PROFILE_DSTACK);
	assert_int_equal(info->tee, CVM_RATLS_TEE_TDX);
	assert_null(info->attestation);
	assert_int_equal(info->quote_len, 5006);
	assert_hex(info->report_data, "745bdaefd61bd789cf1c42a80f6b9b1aba8a59afd09a604db364d703d04efb3e972065"
	                              "de2fcff71d9e47971618f6636398b70dbe52905f1cf62bbf2bb503dcdd");
	assert_memory_equal(info->report_data, info->expected_report_data, 64);
	assert_true(info->binding);
	assert_true(info->has_app_id);
	assert_hex(info->app_id, "9e8af4fc80bde3bea655a161280910c770c8d561");
	assert_string_equal(info->usage, "app:custom");
	assert_null(info->app_info);
	/* 27 events whose RTMR0..3 replay equals the quote */
	assert_non_null(info->event_log_json);
	assert_int_equal(
	    cvm_evl_replay(info->event_log_json, info->event_log_json_len, CVM_EVL_DSTACK_JSON, &rep),
	    CVM_OK);
	assert_int_equal(rep.event_count, 27);
	assert_int_equal(cvm_quote_parse(info->quote, info->quote_len, &q), CVM_OK);
	for (uint32_t i = 0; i < 4; i++) {
		const uint8_t *v;
		size_t vlen;

		assert_int_equal(cvm_evl_replay_value(&rep, CVM_DIGEST_SHA384, i, &v, &vlen), CVM_OK);
		assert_int_equal(vlen, 48);
		assert_memory_equal(v, q.body.td.rtmr[i], 48);
	}
	assert_hex(q.body.td.rtmr[3], "0e8bd1f57ea89006a8803684f1322d76fdbe226b7c16d1f3ad24387ffad5f14208d23a"
	                              "8a1f2b5edfa939a387ed909ed6");
	cvm_ratls_info_free(info);
}

static void parse_rd1_ca_certificates_carry_app_id_and_usage(void **state)
{
	size_t len;
	uint8_t *der = cert_der(RD1, 1, &len);
	struct cvm_ratls_info *info = NULL;
	char err[256];

	(void)state;
	assert_int_equal(cvm_ratls_parse(der, len, &info, err, sizeof(err)), CVM_OK);
	assert_int_equal(info->profile, CVM_RATLS_PROFILE_DSTACK);
	assert_int_equal(info->tee, CVM_RATLS_TEE_NONE);
	assert_null(info->quote);
	assert_false(info->binding);
	assert_string_equal(info->usage, "app:ca");
	assert_true(info->has_app_id);
	cvm_ratls_info_free(info);
	free(der);
	der = cert_der(RD1, 2, &len); /* the KMS CA: no RA-TLS extension at all */
	assert_int_equal(cvm_ratls_parse(der, len, &info, err, sizeof(err)), CVM_OK);
	assert_int_equal(info->profile, CVM_RATLS_PROFILE_NONE);
	cvm_ratls_info_free(info);
	free(der);
}

static void parse_rd3_cosmian_tdx_drops_the_padding(void **state)
{
	struct cvm_ratls_info *info = parse_vector(RD3);
	struct cvm_quote q;

	(void)state;
	assert_int_equal(info->profile, CVM_RATLS_PROFILE_COSMIAN);
	assert_int_equal(info->tee, CVM_RATLS_TEE_TDX);
	assert_true(info->quote_len < 8192);
	assert_int_equal(cvm_quote_parse(info->quote, info->quote_len, &q), CVM_OK);
	assert_int_equal(q.padding_len, 0);
	assert_true(info->binding);
	assert_memory_equal(info->report_data, info->expected_report_data, 32);
	cvm_ratls_info_free(info);
}

static void parse_rd4_cosmian_sgx_measurements(void **state)
{
	struct cvm_ratls_info *info = parse_vector(RD4);
	struct cvm_quote q;

	(void)state;
	assert_int_equal(info->profile, CVM_RATLS_PROFILE_COSMIAN);
	assert_int_equal(info->tee, CVM_RATLS_TEE_SGX);
	assert_int_equal(info->quote_len, 4734);
	assert_int_equal(cvm_quote_parse(info->quote, info->quote_len, &q), CVM_OK);
	assert_hex(q.body.sgx.mr_enclave, "72009e6e7ddebcb7a8cf6b000b40aa20fd15d2c4fd524e85e80df6e8e0841d10");
	assert_hex(q.body.sgx.mr_signer, "c1c161d0dd996e8a9847de67ea2c00226761f7715a2c422d3012ac10795a1ef5");
	assert_true(info->binding);
	cvm_ratls_info_free(info);
}

static void parse_sev(const char *rel, unsigned format, const char *measurement)
{
	struct cvm_ratls_info *info = parse_vector(rel);
	struct cvm_snp_report r;
	struct cvm_cert *c = NULL;

	assert_int_equal(info->profile, CVM_RATLS_PROFILE_COSMIAN);
	assert_int_equal(info->tee, CVM_RATLS_TEE_SNP);
	assert_int_equal(info->cosmian_sev_format, format);
	assert_int_equal(info->quote_len, 1184);
	assert_int_equal(cvm_snp_report_parse(info->quote, info->quote_len, &r), CVM_OK);
	assert_hex(r.measurement, measurement);
	assert_true(info->binding);
	/* the table's VCEK, ASK and ARK are certificates */
	assert_non_null(info->snp_certs.vcek);
	assert_non_null(info->snp_certs.ask);
	assert_non_null(info->snp_certs.ark);
	assert_int_equal(cvm_cert_parse(info->snp_certs.vcek, info->snp_certs.vcek_len, &c), CVM_OK);
	cvm_cert_free(c);
	assert_int_equal(cvm_cert_parse(info->snp_certs.ark, info->snp_certs.ark_len, &c), CVM_OK);
	cvm_cert_free(c);
	cvm_ratls_info_free(info);
}

static void parse_rd5_cosmian_sev_tee_tools_2(void **state)
{
	(void)state;
	parse_sev(RD5, 2,
	          "12068361369cf9179bb6ac08572b7e15ed0bc8abb698cb04d4f584f7ff512a4c2081c1f5b105351dbd45c035a7"
	          "d6a3a5");
}

static void parse_rd6_cosmian_sev_tee_tools_1_6_2(void **state)
{
	(void)state;
	parse_sev(RD6, 1,
	          "59ead9b42664d54fda54f707670386f61b1d3bd34e2da8c8f9ac067e617a0aae4623304a4aa98bb30756affb4b"
	          "6c0a05");
}

/* For each vector, every truncation and every bit flip of each RA-TLS
 * extension value (found in the DER by its bytes, then changed in place:
 * the certificate still parses as X.509) gives a clean error or a verdict
 * whose binding is false or whose quote is unchanged. */
static void parse_survives_truncated_and_flipped_extensions(void **state)
{
	static const char *const rels[] = {RD1, RD3, RD4, RD5, RD6};

	(void)state;
	for (size_t v = 0; v < sizeof(rels) / sizeof(rels[0]); v++) {
		size_t len;
		uint8_t *der = cert_der(rels[v], 0, &len);
		struct cvm_ratls_info *info = NULL;
		char err[256];
		size_t step = len > 4000 ? 3 : 1;

		for (size_t i = 0; i < len; i += step) {
			uint8_t bit = (uint8_t)(1u << (i % 8));

			der[i] ^= bit;
			if (cvm_ratls_parse(der, len, &info, err, sizeof(err)) == CVM_OK)
				cvm_ratls_info_free(info);
			else
				assert_true(err[0] != 0);
			der[i] ^= bit;
		}
		for (size_t n = 0; n < len; n += step) {
			assert_int_not_equal(cvm_ratls_parse(der, n, &info, err, sizeof(err)), CVM_OK);
			assert_null(info);
		}
		free(der);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(va_vd1_decodes_as_its_manifest_states),
	    cmocka_unit_test(va_vd1_reencodes_to_the_identical_bytes),
	    cmocka_unit_test(va_v1_round_trips_for_tdx_and_snp),
	    cmocka_unit_test(va_v1_uses_upstream_field_names),
	    cmocka_unit_test(va_rejects_every_truncation_and_an_extra_byte),
	    cmocka_unit_test(va_bit_flips_fail_cleanly_or_decode_differently),
	    cmocka_unit_test(va_rejects_crafted_malformed_inputs),
	    cmocka_unit_test(parse_rd1_dstack_tdx_legacy_extensions),
	    cmocka_unit_test(parse_rd1_ca_certificates_carry_app_id_and_usage),
	    cmocka_unit_test(parse_rd3_cosmian_tdx_drops_the_padding),
	    cmocka_unit_test(parse_rd4_cosmian_sgx_measurements),
	    cmocka_unit_test(parse_rd5_cosmian_sev_tee_tools_2),
	    cmocka_unit_test(parse_rd6_cosmian_sev_tee_tools_1_6_2),
	    cmocka_unit_test(parse_survives_truncated_and_flipped_extensions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
