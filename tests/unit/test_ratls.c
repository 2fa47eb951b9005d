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
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/evidence.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/snp.h>
#include <cvmkit/tee.h>

#include "ratls/ratls_int.h"
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

#define NOW ((int64_t)1767225600) /* 2026-01-01 */

/* pem_der turns one PEM certificate into DER (a copy). */
static uint8_t *pem_der(const char *pem, size_t pem_len, size_t *len)
{
	struct cvm_cert *c = NULL;
	const uint8_t *der;
	uint8_t *out;

	assert_int_equal(cvm_cert_parse((const uint8_t *)pem, pem_len, &c), CVM_OK);
	cvm_cert_der(c, &der, len);
	out = malloc(*len);
	assert_non_null(out);
	memcpy(out, der, *len);
	cvm_cert_free(c);
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
	/* a length of 1 in the 4-byte big-integer mode */
	static const uint8_t noncanon4[] = {0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x00};
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
	assert_int_equal(cvm_va_decode(noncanon4, sizeof(noncanon4), &va, err, sizeof(err)), CVM_E_FORMAT);
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

/* Variants 1 (GCP TDX: its TPM quote kept as carried), 2 and 4 (Nitro:
 * decoded, not verifiable) round trip. */
static void va_other_variants_round_trip(void **state)
{
	uint8_t tpm[128], doc[5] = {1, 2, 3, 4, 5}, quote[8] = {9, 9, 9}, *enc = NULL, *enc2 = NULL;
	size_t n = 0, enc_len, enc2_len, plat_at;
	struct cvm_va va, *back = NULL;
	char err[256];

	(void)state;
	/* TpmQuote: message, signature, one PCR value, ak_cert, platform, one TPM event */
	tpm[n++] = 3 << 2;
	memcpy(tpm + n, "msg", 3);
	n += 3;
	tpm[n++] = 2 << 2;
	tpm[n++] = 0xaa;
	tpm[n++] = 0xbb;
	tpm[n++] = 1 << 2;
	memcpy(tpm + n, "\x07\x00\x00\x00", 4);
	n += 4;
	tpm[n++] = 6 << 2;
	memcpy(tpm + n, "sha256", 6);
	n += 6;
	tpm[n++] = 32 << 2;
	memset(tpm + n, 0x77, 32);
	n += 32;
	tpm[n++] = 0; /* ak_cert: empty */
	plat_at = n;
	tpm[n++] = 1;      /* platform: Gcp */
	tpm[n++] = 1 << 2; /* one TPM event */
	memcpy(tpm + n, "\x00\x00\x00\x00", 4);
	n += 4;
	tpm[n++] = 4 << 2;
	memset(tpm + n, 0x55, 4);
	n += 4;
	memset(&va, 0, sizeof(va));
	va.variant = 1;
	va.tee = CVM_RATLS_TEE_TDX;
	va.quote = quote;
	va.quote_len = sizeof(quote);
	va.gcp_tpm_quote = tpm;
	va.gcp_tpm_quote_len = n;
	va.config = "";
	assert_int_equal(cvm_va_encode(&va, 0, &enc, &enc_len), CVM_OK);
	assert_int_equal(cvm_va_decode(enc, enc_len, &back, err, sizeof(err)), CVM_OK);
	assert_int_equal(back->variant, 1);
	assert_int_equal(back->tee, CVM_RATLS_TEE_TDX);
	assert_int_equal(back->gcp_tpm_quote_len, n);
	assert_memory_equal(back->gcp_tpm_quote, tpm, n);
	assert_int_equal(cvm_va_encode(back, 0, &enc2, &enc2_len), CVM_OK);
	assert_int_equal(enc2_len, enc_len);
	assert_memory_equal(enc2, enc, enc_len);
	free(enc2);
	/* V1 keeps no TPM quote: GCP TDX is V0 only */
	assert_int_equal(cvm_va_encode(back, 1, &enc2, &enc2_len), CVM_E_UNSUPPORTED);
	cvm_va_free(back);
	free(enc);
	/* a platform byte dstack does not define */
	tpm[plat_at] = 9;
	assert_int_equal(cvm_va_encode(&va, 0, &enc, &enc_len), CVM_OK);
	assert_int_equal(cvm_va_decode(enc, enc_len, &back, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "platform"));
	free(enc);
	for (unsigned variant = 2; variant <= 4; variant += 2) {
		for (unsigned version = 0; version < 2; version++) {
			memset(&va, 0, sizeof(va));
			va.variant = variant;
			va.quote = doc;
			va.quote_len = sizeof(doc);
			va.config = "{}";
			va.config_len = 2;
			assert_int_equal(cvm_va_encode(&va, version, &enc, &enc_len), CVM_OK);
			assert_int_equal(cvm_va_decode(enc, enc_len, &back, err, sizeof(err)), CVM_OK);
			assert_int_equal(back->variant, variant);
			assert_int_equal(back->tee, CVM_RATLS_TEE_NONE);
			assert_int_equal(back->quote_len, sizeof(doc));
			assert_memory_equal(back->quote, doc, sizeof(doc));
			cvm_va_free(back);
			free(enc);
		}
	}
}

/* ---- parsing certificates ------------------------------------------------ */

#define RD1 "compat/ratls/dstack-kvinwang-demo-server/server.crt"
#define RD3 "compat/ratls/cosmian-tee-tools-2.1.0/tdx-cert.ratls.pem"
#define RD4 "compat/ratls/cosmian-tee-tools-2.1.0/sgx-cert.ratls.pem"
#define RD5 "compat/ratls/cosmian-tee-tools-2.1.0/sev-cert.ratls.pem"
#define RD6 "compat/ratls/cosmian-tee-tools-1.6.2/sev-cert.ratls.pem"
#define RD2023 "compat/ratls/cosmian-tee-tools-2023/sev-cert.ratls.pem"

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
	if (format == 3) {
		/* its one entry: an AWS VLEK, named by its GUID */
		assert_non_null(info->snp_certs.vlek);
		assert_null(info->snp_certs.vcek);
		assert_null(info->snp_certs.ark);
		assert_int_equal(cvm_cert_parse(info->snp_certs.vlek, info->snp_certs.vlek_len, &c), CVM_OK);
		cvm_cert_free(c);
		cvm_ratls_info_free(info);
		return;
	}
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

/* tee-tools @ 5dd47678 (2023): report v2, the 2023 table form; the
 * measurement its test pins. */
static void parse_cosmian_sev_2023_tagged_table(void **state)
{
	(void)state;
	parse_sev(RD2023, 3,
	          "c2c84b9364fc9f0f54b04534768c860c6e0e386ad98b96e8b98eca46ac8971d05c531ba48373f054c880cfd1f4"
	          "a0a84e");
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
	static const char *const rels[] = {RD1, RD3, RD4, RD5, RD6, RD2023};

	(void)state;
	for (size_t v = 0; v < sizeof(rels) / sizeof(rels[0]); v++) {
		size_t len;
		uint8_t *der = cert_der(rels[v], 0, &len);
		struct cvm_ratls_info *info = NULL;
		char err[256];
		/* under valgrind (50-100 times slower), a sample */
		size_t step = getenv("CVM_UNDER_VALGRIND") != NULL ? 41 : len > 4000 ? 3 : 1;

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

/* Each RA-TLS extension of each vector, cut short and bit-flipped inside a
 * certificate remade around it (so X.509 still parses and the change
 * reaches our decoders): a clean error naming what is wrong, or a verdict,
 * and never a binding (the remade certificate has another key). */
static void parse_survives_each_extension_cut_and_flipped(void **state)
{
	static const char *const rels[] = {RD1, RD3, RD4, RD5, RD6, RD2023};
	static const char *const oids[] = {
	    "1.3.6.1.4.1.62397.1.1", "1.3.6.1.4.1.62397.1.2", "1.3.6.1.4.1.62397.1.3",
	    "1.3.6.1.4.1.62397.1.4", "1.3.6.1.4.1.62397.1.8", "1.3.6.1.4.1.62397.1.9",
	    "1.2.840.113741.1337.6", "1.2.840.113741.1337.7", "1.2.840.113741.1337.8"};
	struct cvm_p256_keypair *key = NULL;
	size_t checked = 0;
	/* every cut near both ends, a sample between; under valgrind (each cut
	 * signs a certificate, 50-100 times slower there) fewer of both */
	bool vg = getenv("CVM_UNDER_VALGRIND") != NULL;
	size_t edge = vg ? 8 : 64, mid = vg ? 997 : 97;

	(void)state;
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	for (size_t v = 0; v < sizeof(rels) / sizeof(rels[0]); v++) {
		struct cvm_cert_ext_spec exts[9];
		uint8_t *copies[9] = {NULL};
		size_t n_ext = 0, len;
		uint8_t *der = cert_der(rels[v], 0, &len);
		struct cvm_cert *c = NULL;

		assert_int_equal(cvm_cert_parse(der, len, &c), CVM_OK);
		for (size_t i = 0; i < sizeof(oids) / sizeof(oids[0]); i++) {
			struct cvm_rd val;

			if (cvm_cert_ext(c, oids[i], &val) != CVM_OK)
				continue;
			copies[n_ext] = malloc(val.len);
			assert_non_null(copies[n_ext]);
			memcpy(copies[n_ext], val.p, val.len);
			exts[n_ext] = (struct cvm_cert_ext_spec){oids[i], false, copies[n_ext], val.len};
			n_ext++;
		}
		assert_true(n_ext > 0);
		for (size_t e = 0; e < n_ext; e++) {
			size_t full = exts[e].value_len;

			for (size_t cut = 0; cut <= full;
			     cut += (cut < edge || cut + edge > full) ? 1 : mid) {
				for (int flip = 0; flip < 2; flip++) {
					struct cvm_cert_template t;
					struct cvm_ratls_info *info = NULL;
					char *pem = NULL, err[256];
					size_t pem_len, d_len;
					uint8_t *d, *b = copies[e];
					int rc;

					if (flip && cut == full)
						continue;
					if (flip)
						b[cut] ^= (uint8_t)(1u << (cut % 8));
					exts[e].value_len = flip ? full : cut;
					cvm_cert_template_init(&t);
					t.common_name = "cut";
					t.not_before = NOW;
					t.not_after = NOW + 60;
					t.exts = exts;
					t.ext_count = n_ext;
					rc = cvm_cert_make(&t, key, NULL, NULL, &pem, &pem_len);
					if (flip)
						b[cut] ^= (uint8_t)(1u << (cut % 8));
					exts[e].value_len = full;
					if (rc != CVM_OK)
						continue; /* an empty extension value */
					d = pem_der(pem, pem_len, &d_len);
					err[0] = 0;
					rc = cvm_ratls_parse(d, d_len, &info, err, sizeof(err));
					if (rc != CVM_OK) {
						assert_null(info);
						assert_true(err[0] != 0);
					} else {
						assert_false(info->binding);
						cvm_ratls_info_free(info);
					}
					checked++;
					free(d);
					free(pem);
				}
			}
		}
		for (size_t e = 0; e < n_ext; e++)
			free(copies[e]);
		cvm_cert_free(c);
		free(der);
	}
	assert_true(checked > (vg ? 100u : 1000u));
	cvm_p256_keypair_free(key);
}

/* ---- making and verifying, on the simulated TEE --------------------------- */

struct sim {
	char root[64]; /* parent, removed at the end */
	char dir[128];
	struct cvm_dcap_collateral *dcap;
	uint8_t *intel_root;
	size_t intel_root_len;
	struct cvm_amd_collateral *amd;
};

static void rm_rf(const char *path)
{
	struct stat st;
	struct dirent *e;
	char sub[1024];
	DIR *d;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		(void)unlink(path);
		return;
	}
	d = opendir(path);
	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			(void)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			rm_rf(sub);
		}
		closedir(d);
	}
	(void)rmdir(path);
}

/* Each simulated platform is made once per MRTD byte (its key generation is
 * the slow part, above all under valgrind) and copied for every test that
 * asks for it, so each test still starts from its own, untouched state. */
static char sim_templates[256][64]; /* the template's root for a byte, "" while none */

static void copy_tree(const char *from, const char *to)
{
	struct stat st;
	char a[1024], b[1024];

	assert_int_equal(lstat(from, &st), 0);
	if (S_ISDIR(st.st_mode)) {
		struct dirent *e;
		DIR *d;

		assert_int_equal(mkdir(to, st.st_mode & 07777), 0);
		d = opendir(from);
		assert_non_null(d);
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			(void)snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
			(void)snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
			copy_tree(a, b);
		}
		closedir(d);
	} else {
		uint8_t *buf = NULL;
		size_t len = 0, done = 0;
		int fd;

		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(cvm_file_read(from, (size_t)64 * 1024 * 1024, &buf, &len), CVM_OK);
		fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
		assert_true(fd >= 0);
		while (done < len) {
			ssize_t n = write(fd, buf + done, len - done);

			assert_true(n > 0);
			done += (size_t)n;
		}
		assert_int_equal(close(fd), 0);
		free(buf);
	}
}

static void sim_up(struct sim *s, uint8_t mrtd_byte)
{
	char *tpl = sim_templates[mrtd_byte];
	char path[256], what[256];

	memset(s, 0, sizeof(*s));
	if (tpl[0] == '\0') {
		struct cvm_tee_sim_opts o;

		(void)snprintf(tpl, sizeof(sim_templates[0]), "/tmp/cvm-ratls-tpl-XXXXXX");
		assert_non_null(mkdtemp(tpl));
		(void)snprintf(path, sizeof(path), "%s/p", tpl);
		cvm_tee_sim_opts_init(&o, NOW);
		memset(o.mrtd, mrtd_byte, sizeof(o.mrtd));
		memset(o.snp_measurement, mrtd_byte, sizeof(o.snp_measurement));
		o.with_snp = true;
		assert_int_equal(cvm_tee_sim_init(path, &o), CVM_OK);
	}
	(void)snprintf(s->root, sizeof(s->root), "/tmp/cvm-ratls-XXXXXX");
	assert_non_null(mkdtemp(s->root));
	(void)snprintf(s->dir, sizeof(s->dir), "%s/p", s->root);
	(void)snprintf(path, sizeof(path), "%s/p", tpl);
	copy_tree(path, s->dir);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx", s->dir);
	assert_int_equal(cvm_dcap_collateral_load_dir(path, &s->dcap, what, sizeof(what)), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx/intel_sgx_root_ca.der", s->dir);
	assert_int_equal(cvm_file_read(path, 65536, &s->intel_root, &s->intel_root_len), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/snp", s->dir);
	assert_int_equal(cvm_amd_collateral_load_dir(path, &s->amd, what, sizeof(what)), CVM_OK);
}

static int remove_sim_templates(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sim_templates) / sizeof(sim_templates[0]); i++) {
		if (sim_templates[i][0] != '\0')
			rm_rf(sim_templates[i]);
	}
	return 0;
}

static void sim_down(struct sim *s)
{
	cvm_dcap_collateral_free(s->dcap);
	cvm_amd_collateral_free(s->amd);
	free(s->intel_root);
	rm_rf(s->root);
}

/* struct made is a certificate made on the simulator, with what it took. */
struct made {
	uint8_t *der;
	size_t len;
	uint8_t *quote;
	size_t quote_len;
};

/* make_on_sim quotes `key`'s binding on the simulated platform and issues
 * the certificate; `events` (TDX) is the log to carry. */
static int make_on_sim(const struct sim *s, enum cvm_ratls_profile profile, enum cvm_tee_platform platform,
                       const struct cvm_p256_keypair *key, const struct cvm_va_event *events,
                       size_t event_count, struct made *m)
{
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_ratls_evidence rev;
	struct cvm_ratls_make_opts o;
	uint8_t rd[64];
	char *pem = NULL;
	size_t pem_len;
	const char *alt[1] = {"ratls.test"};
	int rc;

	memset(m, 0, sizeof(*m));
	assert_int_equal(cvm_ratls_report_data(profile, key, NULL, rd), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(s->dir, platform, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	memset(&rev, 0, sizeof(rev));
	rev.tee = platform == CVM_TEE_PLATFORM_TDX ? CVM_RATLS_TEE_TDX : CVM_RATLS_TEE_SNP;
	rev.quote = ev.data;
	rev.quote_len = ev.data_len;
	rev.snp_certs = platform == CVM_TEE_PLATFORM_SNP ? s->amd : NULL;
	rev.events = events;
	rev.event_count = event_count;
	rev.config = "{\"name\":\"test\"}";
	memset(&o, 0, sizeof(o));
	o.profile = profile;
	o.common_name = "ratls test";
	o.alt_names = alt;
	o.alt_name_count = 1;
	o.not_before = NOW - 60;
	o.not_after = NOW + CVM_RATLS_LIFETIME_DEFAULT;
	o.server_auth = true;
	o.legacy_tdx = true;
	rc = cvm_ratls_make(&o, key, &rev, NULL, NULL, &pem, &pem_len);
	if (rc == CVM_OK) {
		m->der = pem_der(pem, pem_len, &m->len);
		m->quote = malloc(ev.data_len);
		assert_non_null(m->quote);
		memcpy(m->quote, ev.data, ev.data_len);
		m->quote_len = ev.data_len;
	}
	free(pem);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	return rc;
}

static void made_free(struct made *m)
{
	free(m->der);
	free(m->quote);
}

static struct cvm_ratls_verifier *sim_verifier(const struct sim *s, const struct cvm_policy *pol,
                                               bool with_amd, bool require_system_key)
{
	struct cvm_ratls_verifier_opts o;
	struct cvm_ratls_verifier *v = NULL;

	memset(&o, 0, sizeof(o));
	o.policy = pol;
	o.dcap = s->dcap;
	o.amd = with_amd ? s->amd : NULL;
	o.intel_root_der = s->intel_root;
	o.intel_root_der_len = s->intel_root_len;
	o.amd_root_der = s->amd->ark;
	o.amd_root_der_len = s->amd->ark_len;
	o.require_system_key = require_system_key;
	assert_int_equal(cvm_ratls_verifier_new(&o, NOW, &v), CVM_OK);
	return v;
}

static bool step_failed(const struct cvm_report *rep, const char *name)
{
	for (size_t i = 0; i < rep->count; i++)
		if (strcmp(rep->steps[i].name, name) == 0 && !rep->steps[i].ok)
			return true;
	return false;
}

static void round_trip(enum cvm_ratls_profile profile, enum cvm_tee_platform platform, bool with_amd)
{
	struct sim s;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_ratls_info *info = NULL;
	struct cvm_report rep;
	struct cvm_policy pol;
	struct made m;
	const uint8_t *ders[1];
	char err[256];

	sim_up(&s, 0x42);
	cvm_policy_init(&pol);
	if (profile == CVM_RATLS_PROFILE_DSTACK && platform == CVM_TEE_PLATFORM_SNP && !with_amd)
		pol.snp.require_crl = false;
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(make_on_sim(&s, profile, platform, key, NULL, 0, &m), CVM_OK);
	assert_int_equal(cvm_ratls_parse(m.der, m.len, &info, err, sizeof(err)), CVM_OK);
	assert_int_equal(info->profile, profile);
	assert_int_equal(info->tee, platform == CVM_TEE_PLATFORM_TDX ? CVM_RATLS_TEE_TDX : CVM_RATLS_TEE_SNP);
	assert_true(info->binding);
	assert_int_equal(info->quote_len, m.quote_len);
	assert_memory_equal(info->quote, m.quote, m.quote_len);
	if (profile == CVM_RATLS_PROFILE_DSTACK)
		assert_non_null(info->attestation);
	if (profile == CVM_RATLS_PROFILE_DSTACK && platform == CVM_TEE_PLATFORM_TDX)
		assert_non_null(info->event_log_json); /* legacy_tdx: 1.1 + 1.2 as well */
	if (profile == CVM_RATLS_PROFILE_COSMIAN && platform == CVM_TEE_PLATFORM_SNP) {
		assert_int_equal(info->cosmian_sev_format, 2);
		assert_non_null(info->snp_certs.vcek);
	}
	cvm_ratls_info_free(info);

	v = sim_verifier(&s, &pol, with_amd, false);
	ders[0] = m.der;
	if (cvm_ratls_verifier_check(v, ders, &m.len, 1, NOW + 60, &verdict, &rep) != CVM_OK)
		fail_msg("%s", cvm_report_reason(&rep));
	assert_true(verdict.evidence_verified);
	assert_true(verdict.binding);
	assert_true(verdict.simulated);
	assert_false(verdict.cached);
	assert_int_equal(verdict.replayed,
	                 platform == CVM_TEE_PLATFORM_TDX && profile == CVM_RATLS_PROFILE_DSTACK);
	/* the same chain again: from the cache */
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &m.len, 1, NOW + 61, &verdict, &rep), CVM_OK);
	assert_true(verdict.cached);
	assert_true(verdict.binding);
	/* the cache does not extend a certificate's life */
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &m.len, 1, NOW + 2 * CVM_RATLS_LIFETIME_DEFAULT,
	                                          &verdict, &rep),
	                 CVM_E_EXPIRED);
	assert_false(verdict.cached);
	cvm_ratls_verifier_free(v);
	made_free(&m);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

static void make_verify_dstack_tdx(void **state)
{
	(void)state;
	round_trip(CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_TDX, false);
}

static void make_verify_dstack_snp(void **state)
{
	(void)state;
	round_trip(CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_SNP, true);
}

/* dstack SNP without AMD collateral: the VCEK, ASK and ARK of the 1.8
 * attestation's cert_chain, anchored in the given root (the simulator's
 * ARK). They carry no CRL, so the policy must waive it. */
static void make_verify_dstack_snp_with_its_own_chain(void **state)
{
	struct sim s;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_ratls_verifier_opts o;
	struct cvm_ratls_verifier *v = NULL;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	struct cvm_policy pol;
	struct made m;
	const uint8_t *ders[1];

	(void)state;
	round_trip(CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_SNP, false);
	/* the ARK among the blobs is never an anchor by itself: with AMD's
	 * own ARKs as the anchors, the simulator's chain fails */
	sim_up(&s, 0x42);
	cvm_policy_init(&pol);
	pol.snp.require_crl = false;
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(make_on_sim(&s, CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_SNP, key, NULL, 0, &m),
	                 CVM_OK);
	memset(&o, 0, sizeof(o));
	o.policy = &pol;
	assert_int_equal(cvm_ratls_verifier_new(&o, NOW, &v), CVM_OK);
	ders[0] = m.der;
	assert_int_not_equal(cvm_ratls_verifier_check(v, ders, &m.len, 1, NOW + 60, &verdict, &rep), CVM_OK);
	assert_false(verdict.evidence_verified);
	assert_true(verdict.binding);
	cvm_ratls_verifier_free(v);
	made_free(&m);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

static void make_verify_cosmian_tdx(void **state)
{
	(void)state;
	round_trip(CVM_RATLS_PROFILE_COSMIAN, CVM_TEE_PLATFORM_TDX, false);
}

/* Cosmian SEV without AMD collateral: the certificate's own chain, anchored
 * in the given root (the simulator's ARK). */
static void make_verify_cosmian_snp_with_its_own_chain(void **state)
{
	(void)state;
	round_trip(CVM_RATLS_PROFILE_COSMIAN, CVM_TEE_PLATFORM_SNP, false);
}

/* Without evidence (dstack only) a certificate carries just the extensions
 * given: parsed as the dstack profile with no TEE and no binding; Cosmian
 * needs evidence. */
static void make_without_evidence_carries_only_the_given_extensions(void **state)
{
	static const uint8_t app_id[20] = {0x9e, 0x8a, 0xf4, 0xfc};
	struct cvm_p256_keypair *key = NULL;
	struct cvm_ratls_make_opts o;
	struct cvm_ratls_info *info = NULL;
	char *pem = NULL, err[256];
	size_t pem_len, len;
	uint8_t *der;

	(void)state;
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	memset(&o, 0, sizeof(o));
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	o.common_name = "plain";
	o.not_before = NOW;
	o.not_after = NOW + 3600;
	o.app_id = app_id;
	o.usage = "app:custom";
	assert_int_equal(cvm_ratls_make(&o, key, NULL, NULL, NULL, &pem, &pem_len), CVM_OK);
	der = pem_der(pem, pem_len, &len);
	assert_int_equal(cvm_ratls_parse(der, len, &info, err, sizeof(err)), CVM_OK);
	assert_int_equal(info->profile, CVM_RATLS_PROFILE_DSTACK);
	assert_int_equal(info->tee, CVM_RATLS_TEE_NONE);
	assert_null(info->quote);
	assert_false(info->binding);
	assert_true(info->has_app_id);
	assert_memory_equal(info->app_id, app_id, 20);
	assert_string_equal(info->usage, "app:custom");
	cvm_ratls_info_free(info);
	free(der);
	free(pem);
	o.profile = CVM_RATLS_PROFILE_COSMIAN;
	assert_int_equal(cvm_ratls_make(&o, key, NULL, NULL, NULL, &pem, &pem_len), CVM_E_INVAL);
	assert_null(pem);
	cvm_p256_keypair_free(key);
}

static void make_refuses_evidence_for_another_key(void **state)
{
	struct sim s;
	struct cvm_p256_keypair *a = NULL, *b = NULL;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_ratls_evidence rev;
	struct cvm_ratls_make_opts o;
	uint8_t rd[64];
	char *pem = NULL;
	size_t pem_len;

	(void)state;
	sim_up(&s, 0x42);
	assert_int_equal(cvm_p256_keypair_generate(&a), CVM_OK);
	assert_int_equal(cvm_p256_keypair_generate(&b), CVM_OK);
	assert_int_equal(cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, a, NULL, rd), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	memset(&rev, 0, sizeof(rev));
	rev.tee = CVM_RATLS_TEE_TDX;
	rev.quote = ev.data;
	rev.quote_len = ev.data_len;
	memset(&o, 0, sizeof(o));
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	o.common_name = "x";
	o.not_before = NOW;
	o.not_after = NOW + 3600;
	assert_int_equal(cvm_ratls_make(&o, b, &rev, NULL, NULL, &pem, &pem_len), CVM_E_INVAL);
	assert_null(pem);
	/* the other profile's binding of the same key is another value too */
	o.profile = CVM_RATLS_PROFILE_COSMIAN;
	assert_int_equal(cvm_ratls_make(&o, a, &rev, NULL, NULL, &pem, &pem_len), CVM_E_INVAL);
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	assert_int_equal(cvm_ratls_make(&o, a, &rev, NULL, NULL, &pem, &pem_len), CVM_OK);
	free(pem);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	cvm_p256_keypair_free(a);
	cvm_p256_keypair_free(b);
	sim_down(&s);
}

/* A certificate for key B that carries key A's evidence (made by hand with
 * cvm_cert_make and A's extension) is rejected at the binding. */
static void verify_rejects_evidence_that_binds_another_key(void **state)
{
	static const char *const oids[] = {"1.3.6.1.4.1.62397.1.8", "1.2.840.113741.1337.8"};
	static const enum cvm_ratls_profile profiles[] = {CVM_RATLS_PROFILE_DSTACK,
	                                                  CVM_RATLS_PROFILE_COSMIAN};
	struct sim s;
	struct cvm_policy pol;

	(void)state;
	sim_up(&s, 0x42);
	cvm_policy_init(&pol);
	for (size_t p = 0; p < 2; p++) {
		struct cvm_p256_keypair *a = NULL, *b = NULL;
		struct cvm_ratls_verifier *v = sim_verifier(&s, &pol, false, false);
		struct cvm_ratls_verdict verdict;
		struct cvm_report rep;
		struct cvm_cert *ca = NULL;
		struct cvm_cert_template t;
		struct cvm_cert_ext_spec ext;
		struct cvm_rd val;
		struct made m;
		char *pem = NULL;
		size_t pem_len, len;
		uint8_t *der;
		const uint8_t *ders[1];

		assert_int_equal(cvm_p256_keypair_generate(&a), CVM_OK);
		assert_int_equal(cvm_p256_keypair_generate(&b), CVM_OK);
		assert_int_equal(make_on_sim(&s, profiles[p], CVM_TEE_PLATFORM_TDX, a, NULL, 0, &m), CVM_OK);
		assert_int_equal(cvm_cert_parse(m.der, m.len, &ca), CVM_OK);
		assert_int_equal(cvm_cert_ext(ca, oids[p], &val), CVM_OK);
		ext.oid = oids[p];
		ext.critical = false;
		ext.value = val.p;
		ext.value_len = val.len;
		cvm_cert_template_init(&t);
		t.common_name = "ratls test";
		t.not_before = NOW - 60;
		t.not_after = NOW + 3600;
		t.exts = &ext;
		t.ext_count = 1;
		assert_int_equal(cvm_cert_make(&t, b, NULL, NULL, &pem, &pem_len), CVM_OK);
		der = pem_der(pem, pem_len, &len);
		ders[0] = der;
		assert_int_equal(cvm_ratls_verifier_check(v, ders, &len, 1, NOW + 60, &verdict, &rep),
		                 CVM_E_MISMATCH);
		assert_true(verdict.evidence_verified);
		assert_false(verdict.binding);
		assert_string_equal(rep.failed->name, "binding");
		/* and not cached: a second try fails the same way */
		assert_int_equal(cvm_ratls_verifier_check(v, ders, &len, 1, NOW + 60, &verdict, &rep),
		                 CVM_E_MISMATCH);
		assert_false(verdict.cached);
		free(der);
		free(pem);
		cvm_cert_free(ca);
		made_free(&m);
		cvm_ratls_verifier_free(v);
		cvm_p256_keypair_free(a);
		cvm_p256_keypair_free(b);
	}
	sim_down(&s);
}

static void verify_rejects_expired_and_not_yet_valid(void **state)
{
	struct sim s;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	struct cvm_policy pol;
	struct made m;
	const uint8_t *ders[1];

	(void)state;
	sim_up(&s, 0x42);
	cvm_policy_init(&pol);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(make_on_sim(&s, CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_TDX, key, NULL, 0, &m),
	                 CVM_OK);
	v = sim_verifier(&s, &pol, false, false);
	ders[0] = m.der;
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &m.len, 1, NOW - 120, &verdict, &rep),
	                 CVM_E_EXPIRED);
	assert_string_equal(rep.failed->name, "validity");
	assert_non_null(strstr(rep.failed->detail, "not yet valid"));
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &m.len, 1, NOW + CVM_RATLS_LIFETIME_DEFAULT + 1,
	                                          &verdict, &rep),
	                 CVM_E_EXPIRED);
	assert_non_null(strstr(rep.failed->detail, "expired"));
	/* inside the window it verifies */
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &m.len, 1, NOW, &verdict, &rep), CVM_OK);
	cvm_ratls_verifier_free(v);
	made_free(&m);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

/* R-D1's chain [leaf, App CA, KMS CA]: its CAs lack keyCertSign (dstack
 * before 0.5.8), so the chain is accepted only with allow_legacy_ca, which
 * the verdict names. Its quote has no collateral here: the evidence fails,
 * the chain step is judged on its own. */
static void verify_accepts_a_legacy_ca_chain_only_when_allowed(void **state)
{
	size_t len[3];
	uint8_t *der[3];
	const uint8_t *ders[3];
	const uint8_t *ca[1];
	struct cvm_ratls_verifier_opts o;
	struct cvm_ratls_verifier *v = NULL;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	struct cvm_policy pol;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		der[i] = cert_der(RD1, i, &len[i]);
		ders[i] = der[i];
	}
	ca[0] = der[2];
	cvm_policy_init(&pol);
	for (int allow = 0; allow < 2; allow++) {
		memset(&o, 0, sizeof(o));
		o.policy = &pol;
		o.ca_der = ca;
		o.ca_der_len = &len[2];
		o.ca_count = 1;
		o.allow_legacy_ca = allow != 0;
		o.ignore_validity = true;
		assert_int_equal(cvm_ratls_verifier_new(&o, NOW, &v), CVM_OK);
		assert_int_not_equal(cvm_ratls_verifier_check(v, ders, len, 3, NOW, &verdict, &rep), CVM_OK);
		assert_true(verdict.binding);
		assert_true(verdict.replayed);
		assert_true(verdict.legacy_ca);
		assert_int_equal(verdict.chain_verified, allow != 0);
		assert_int_equal(step_failed(&rep, "chain"), allow == 0);
		/* a leaf whose signature the App CA did not make fails the chain */
		der[0][len[0] - 1] ^= 0x01;
		assert_int_not_equal(cvm_ratls_verifier_check(v, ders, len, 3, NOW, &verdict, &rep), CVM_OK);
		assert_false(verdict.chain_verified);
		assert_true(step_failed(&rep, "chain"));
		der[0][len[0] - 1] ^= 0x01;
		/* a chain that stops short of the CA, or is out of order, fails */
		assert_int_not_equal(cvm_ratls_verifier_check(v, ders, len, 1, NOW, &verdict, &rep), CVM_OK);
		assert_false(verdict.chain_verified);
		assert_true(step_failed(&rep, "chain"));
		cvm_ratls_verifier_free(v);
	}
	/* tmp-ca.crt is a CA, but not the issuer */
	{
		size_t tl;
		uint8_t *tmp = cert_der("compat/ratls/dstack-kvinwang-demo-server/tmp-ca.crt", 0, &tl);

		ca[0] = tmp;
		o.ca_der_len = &tl;
		assert_int_equal(cvm_ratls_verifier_new(&o, NOW, &v), CVM_OK);
		assert_int_not_equal(cvm_ratls_verifier_check(v, ders, len, 3, NOW, &verdict, &rep), CVM_OK);
		assert_false(verdict.chain_verified);
		cvm_ratls_verifier_free(v);
		free(tmp);
	}
	for (size_t i = 0; i < 3; i++)
		free(der[i]);
}

/* A real TDX quote (dcap-qvl's, with its collateral) in a dstack
 * certificate: the evidence verifies, the binding does not (the quote was
 * made for another key), and the check as a whole fails naming it. */
static void verify_real_tdx_quote_in_a_certificate(void **state)
{
	const int64_t at = 1752919234;
	struct cvm_dcap_collateral *coll = NULL;
	struct cvm_ratls_verifier_opts o;
	struct cvm_ratls_verifier *v = NULL;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	struct cvm_policy pol;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_cert_template t;
	struct cvm_cert_ext_spec ext;
	struct cvm_quote q;
	struct cvm_va va;
	uint8_t *quote, *va_bytes = NULL, *val, *der;
	size_t quote_len, va_len, der_len, pem_len;
	const uint8_t *ders[1];
	char *pem = NULL, what[256], dir[VECTOR_PATH_MAX];

	(void)state;
	quote = vector_read("tdx/dcapqvl-tdx-v4-uptodate/quote.bin", &quote_len);
	assert_int_equal(cvm_quote_parse(quote, quote_len, &q), CVM_OK);
	memset(&va, 0, sizeof(va));
	va.tee = CVM_RATLS_TEE_TDX;
	va.quote = quote;
	va.quote_len = quote_len;
	memcpy(va.report_data, q.body.td.report_data, 64);
	va.config = "";
	assert_int_equal(cvm_va_encode(&va, 0, &va_bytes, &va_len), CVM_OK);
	/* DER OCTET STRING around it (length in two bytes) */
	assert_true(va_len > 255 && va_len < 65536);
	val = malloc(va_len + 4);
	assert_non_null(val);
	val[0] = 0x04;
	val[1] = 0x82;
	val[2] = (uint8_t)(va_len >> 8);
	val[3] = (uint8_t)va_len;
	memcpy(val + 4, va_bytes, va_len);
	ext.oid = "1.3.6.1.4.1.62397.1.8";
	ext.critical = false;
	ext.value = val;
	ext.value_len = va_len + 4;
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	cvm_cert_template_init(&t);
	t.common_name = "real quote";
	t.not_before = at - 3600;
	t.not_after = at + 3600;
	t.exts = &ext;
	t.ext_count = 1;
	assert_int_equal(cvm_cert_make(&t, key, NULL, NULL, &pem, &pem_len), CVM_OK);
	der = pem_der(pem, pem_len, &der_len);

	assert_int_equal(
	    cvm_dcap_collateral_load_dir(vector_path(dir, sizeof(dir), "tdx/dcapqvl-tdx-v4-uptodate"), &coll,
	                                 what, sizeof(what)),
	    CVM_OK);
	cvm_policy_init(&pol);
	memset(&o, 0, sizeof(o));
	o.policy = &pol;
	o.dcap = coll;
	assert_int_equal(cvm_ratls_verifier_new(&o, at, &v), CVM_OK);
	ders[0] = der;
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &der_len, 1, at, &verdict, &rep), CVM_E_MISMATCH);
	assert_true(verdict.evidence_verified);
	assert_false(verdict.simulated);
	assert_int_equal(verdict.dcap.tcb_status, CVM_TCB_UP_TO_DATE);
	assert_false(verdict.binding);
	assert_string_equal(rep.failed->name, "binding");
	cvm_ratls_verifier_free(v);
	cvm_dcap_collateral_free(coll);
	cvm_p256_keypair_free(key);
	free(der);
	free(pem);
	free(val);
	free(va_bytes);
	free(quote);
}

/* fresh_answer quotes SHA-512("cvmkit-tls-fresh:" || bound) on `s` and
 * wraps it in a V0 VersionedAttestation. */
static uint8_t *fresh_answer(const struct sim *s, const uint8_t bound[64], size_t *len)
{
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_va va;
	uint8_t rd[64], *out = NULL;

	assert_int_equal(cvm_ratls_fresh_report_data(bound, rd), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(s->dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	memset(&va, 0, sizeof(va));
	va.tee = CVM_RATLS_TEE_TDX;
	va.quote = ev.data;
	va.quote_len = ev.data_len;
	memcpy(va.report_data, rd, 64);
	va.config = "";
	assert_int_equal(cvm_va_encode(&va, 0, &out, len), CVM_OK);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	return out;
}

static void fresh_check_binds_the_connection_and_the_instance(void **state)
{
	struct sim s, other;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	struct cvm_policy pol;
	struct made m, m2;
	uint8_t bound[64], bound2[64], *ans, *ans2, tagged[64], plain[64];
	size_t ans_len, ans2_len;

	(void)state;
	sim_up(&s, 0x42);
	sim_up(&other, 0x43);
	cvm_policy_init(&pol);
	memset(bound, 0x11, sizeof(bound));
	memset(bound2, 0x22, sizeof(bound2));
	/* the tag keeps the fresh binding apart from the certificate's */
	assert_int_equal(cvm_ratls_fresh_report_data(bound, tagged), CVM_OK);
	assert_int_equal(cvm_sha512_tagged("ratls-cert", bound, 64, plain), CVM_OK);
	assert_memory_not_equal(tagged, plain, 64);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(make_on_sim(&s, CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_TDX, key, NULL, 0, &m),
	                 CVM_OK);
	v = sim_verifier(&s, &pol, false, false);
	ans = fresh_answer(&s, bound, &ans_len);
	if (cvm_ratls_check_fresh(v, m.der, m.len, ans, ans_len, bound, NOW + 60, &verdict, &rep) != CVM_OK)
		fail_msg("%s", cvm_report_reason(&rep));
	assert_true(verdict.evidence_verified);
	assert_true(verdict.binding);
	assert_true(verdict.replayed);
	/* the answer for another connection: a relay */
	assert_int_equal(
	    cvm_ratls_check_fresh(v, m.der, m.len, ans, ans_len, bound2, NOW + 60, &verdict, &rep),
	    CVM_E_MISMATCH);
	assert_string_equal(rep.failed->name, "binding");
	assert_non_null(strstr(rep.failed->detail, "relay"));
	/* an answer from this instance for a leaf from another one */
	assert_int_equal(
	    make_on_sim(&other, CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_TDX, key, NULL, 0, &m2), CVM_OK);
	assert_int_equal(
	    cvm_ratls_check_fresh(v, m2.der, m2.len, ans, ans_len, bound, NOW + 60, &verdict, &rep),
	    CVM_E_MISMATCH);
	assert_string_equal(rep.failed->name, "instance");
	/* an answer from the other instance: its quote does not verify here */
	ans2 = fresh_answer(&other, bound, &ans2_len);
	assert_int_not_equal(
	    cvm_ratls_check_fresh(v, m.der, m.len, ans2, ans2_len, bound, NOW + 60, &verdict, &rep), CVM_OK);
	assert_false(verdict.evidence_verified);
	free(ans);
	free(ans2);
	made_free(&m);
	made_free(&m2);
	cvm_ratls_verifier_free(v);
	cvm_p256_keypair_free(key);
	sim_down(&s);
	sim_down(&other);
}

/* The system key: RTMR3 holds one cvmkit.agent-key event naming key A. A
 * certificate for A has system_key; one for B (any guest process can get a
 * quote over its own key) has not, and is rejected under
 * require_system_key. */
static void system_key_is_the_key_the_system_recorded(void **state)
{
	struct sim s;
	struct cvm_p256_keypair *a = NULL, *b = NULL;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_ratls_verifier *v, *strict;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	struct cvm_policy pol;
	struct cvm_va_event events[2];
	struct made ma, mb;
	uint8_t *spki = NULL, hash[32], d[2][48];
	size_t spki_len;
	const uint8_t *ders[1];

	(void)state;
	sim_up(&s, 0x42);
	cvm_policy_init(&pol);
	assert_int_equal(cvm_p256_keypair_generate(&a), CVM_OK);
	assert_int_equal(cvm_p256_keypair_generate(&b), CVM_OK);
	assert_int_equal(cvm_p256_keypair_spki(a, &spki, &spki_len), CVM_OK);
	cvm_sha256(spki, spki_len, hash);
	free(spki);
	/* the system's events, then an app event */
	memset(events, 0, sizeof(events));
	events[0] = (struct cvm_va_event){.imr = 3,
	                                  .event_type = 0x08000001,
	                                  .event = CVM_EVIDENCE_EVENT_AGENT_KEY,
	                                  .payload = hash,
	                                  .payload_len = 32};
	events[1] = (struct cvm_va_event){.imr = 3,
	                                  .event_type = 0x08000001,
	                                  .event = "app-event",
	                                  .payload = (const uint8_t *)"x",
	                                  .payload_len = 1};
	rt_digest_v1(events[0].event, hash, 32, d[0]);
	rt_digest_v1(events[1].event, events[1].payload, 1, d[1]);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	assert_int_equal(cvm_tee_extend(tee, 3, d[0]), CVM_OK);
	assert_int_equal(cvm_tee_extend(tee, 3, d[1]), CVM_OK);
	cvm_tee_free(tee);
	assert_int_equal(make_on_sim(&s, CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_TDX, a, events, 2, &ma),
	                 CVM_OK);
	assert_int_equal(make_on_sim(&s, CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_TDX, b, events, 2, &mb),
	                 CVM_OK);
	v = sim_verifier(&s, &pol, false, false);
	strict = sim_verifier(&s, &pol, false, true);
	ders[0] = ma.der;
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &ma.len, 1, NOW + 60, &verdict, &rep), CVM_OK);
	assert_true(verdict.replayed);
	assert_true(verdict.system_key);
	assert_int_equal(cvm_ratls_verifier_check(strict, ders, &ma.len, 1, NOW + 60, &verdict, &rep),
	                 CVM_OK);
	assert_true(verdict.system_key);
	ders[0] = mb.der;
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &mb.len, 1, NOW + 60, &verdict, &rep), CVM_OK);
	assert_true(verdict.replayed);
	assert_false(verdict.system_key);
	assert_int_equal(cvm_ratls_verifier_check(strict, ders, &mb.len, 1, NOW + 60, &verdict, &rep),
	                 CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "system_key");
	/* a log that leaves out the app event does not replay to RTMR3 */
	made_free(&mb);
	assert_int_equal(make_on_sim(&s, CVM_RATLS_PROFILE_DSTACK, CVM_TEE_PLATFORM_TDX, a, events, 1, &mb),
	                 CVM_OK);
	ders[0] = mb.der;
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &mb.len, 1, NOW + 60, &verdict, &rep),
	                 CVM_E_MISMATCH);
	assert_false(verdict.replayed);
	assert_false(verdict.system_key);
	assert_string_equal(rep.failed->name, "replay");
	made_free(&ma);
	made_free(&mb);
	cvm_ratls_verifier_free(v);
	cvm_ratls_verifier_free(strict);
	cvm_p256_keypair_free(a);
	cvm_p256_keypair_free(b);
	sim_down(&s);
}

/* cert_with_va makes a dstack certificate by hand whose 1.8 attestation
 * holds the simulator's quote for `key` and the lists given. */
static uint8_t *cert_with_va(const struct sim *s, const struct cvm_p256_keypair *key,
                             const struct cvm_va_event *events, size_t event_count,
                             const struct cvm_va_runtime_event *rt, size_t rt_count, size_t *len)
{
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_cert_template t;
	struct cvm_cert_ext_spec ext;
	struct cvm_va va;
	uint8_t rd[64], *bytes = NULL, *val, *der;
	size_t n, pem_len;
	char *pem = NULL;

	assert_int_equal(cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, key, NULL, rd), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(s->dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	memset(&va, 0, sizeof(va));
	va.tee = CVM_RATLS_TEE_TDX;
	va.quote = ev.data;
	va.quote_len = ev.data_len;
	va.events = (struct cvm_va_event *)(uintptr_t)events;
	va.event_count = event_count;
	va.runtime_events = (struct cvm_va_runtime_event *)(uintptr_t)rt;
	va.runtime_event_count = rt_count;
	memcpy(va.report_data, rd, 64);
	va.config = "";
	assert_int_equal(cvm_va_encode(&va, 0, &bytes, &n), CVM_OK);
	assert_true(n > 255 && n < 65536);
	val = malloc(n + 4);
	assert_non_null(val);
	val[0] = 0x04;
	val[1] = 0x82;
	val[2] = (uint8_t)(n >> 8);
	val[3] = (uint8_t)n;
	memcpy(val + 4, bytes, n);
	ext.oid = "1.3.6.1.4.1.62397.1.8";
	ext.critical = false;
	ext.value = val;
	ext.value_len = n + 4;
	cvm_cert_template_init(&t);
	t.common_name = "by hand";
	t.not_before = NOW - 60;
	t.not_after = NOW + 3600;
	t.exts = &ext;
	t.ext_count = 1;
	assert_int_equal(cvm_cert_make(&t, key, NULL, NULL, &pem, &pem_len), CVM_OK);
	der = pem_der(pem, pem_len, len);
	free(pem);
	free(val);
	free(bytes);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	return der;
}

/* Each list of runtime events the attestation gives must replay to the
 * quoted RTMR3 (here zero: the simulator's RTMR3 was never extended). */
static void replay_checks_each_runtime_event_list(void **state)
{
	struct sim s;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	struct cvm_policy pol;
	const struct cvm_va_event ev = {.imr = 3,
	                                .event_type = 0x08000001,
	                                .event = "app-id",
	                                .payload = (const uint8_t *)"abc",
	                                .payload_len = 3};
	const struct cvm_va_runtime_event rt = {
	    .event = "app-id", .payload = (const uint8_t *)"abc", .payload_len = 3};
	const uint8_t *ders[1];
	uint8_t *der;
	size_t len;

	(void)state;
	sim_up(&s, 0x42);
	cvm_policy_init(&pol);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	v = sim_verifier(&s, &pol, false, false);
	/* neither list: RTMR3 is zero, as quoted */
	der = cert_with_va(&s, key, NULL, 0, NULL, 0, &len);
	ders[0] = der;
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &len, 1, NOW + 60, &verdict, &rep), CVM_OK);
	assert_true(verdict.replayed);
	free(der);
	/* an event in event_log that RTMR3 never saw */
	der = cert_with_va(&s, key, &ev, 1, NULL, 0, &len);
	ders[0] = der;
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &len, 1, NOW + 60, &verdict, &rep),
	                 CVM_E_MISMATCH);
	assert_string_equal(rep.failed->name, "replay");
	free(der);
	/* the same in runtime_events */
	der = cert_with_va(&s, key, NULL, 0, &rt, 1, &len);
	ders[0] = der;
	assert_int_equal(cvm_ratls_verifier_check(v, ders, &len, 1, NOW + 60, &verdict, &rep),
	                 CVM_E_MISMATCH);
	assert_string_equal(rep.failed->name, "replay");
	free(der);
	cvm_ratls_verifier_free(v);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

/* ---- the decoders inside the extensions ----------------------------------- */

/* AppInfo in rmp_serde's array form: 8 byte strings, then optionally the
 * init script hashes. */
static size_t app_info(uint8_t *out, bool ninth, uint8_t mr_len)
{
	static const uint8_t lens[8] = {20, 32, 20, 32, 32, 32, 32, 5};
	size_t n = 0;

	out[n++] = ninth ? 0x99 : 0x98;
	for (size_t i = 0; i < 8; i++) {
		uint8_t l = (i == 4 || i == 5) ? mr_len : lens[i];

		out[n++] = 0xc4;
		out[n++] = l;
		memset(out + n, (int)(0x10 + i), l);
		n += l;
	}
	if (ninth)
		out[n++] = 0xc0;
	return n;
}

static void app_info_check_accepts_dstack_shape_only(void **state)
{
	uint8_t buf[512];
	size_t n;
	char err[256];

	(void)state;
	n = app_info(buf, false, 32);
	assert_int_equal(ratls_app_info_check(buf, n, err, sizeof(err)), CVM_OK);
	n = app_info(buf, true, 32);
	assert_int_equal(ratls_app_info_check(buf, n, err, sizeof(err)), CVM_OK);
	/* mr_system of 31 bytes */
	n = app_info(buf, false, 31);
	assert_int_equal(ratls_app_info_check(buf, n, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "mr_system"));
	/* every truncation, one extra byte */
	n = app_info(buf, true, 32);
	for (size_t k = 0; k < n; k++)
		assert_int_not_equal(ratls_app_info_check(buf, k, err, sizeof(err)), CVM_OK);
	buf[n] = 0;
	assert_int_not_equal(ratls_app_info_check(buf, n + 1, err, sizeof(err)), CVM_OK);
	/* a map is the named form, not what dstack writes in 1.9 */
	assert_int_equal(ratls_app_info_check((const uint8_t *)"\x80", 1, err, sizeof(err)), CVM_E_FORMAT);
}

/* The SEV extensions of R-D5 (tee-tools 2.x), R-D6 (1.6.2) and 2023: every
 * truncation of the table fails cleanly, bit flips never crash. */
static void cosmian_sev_tables_survive_truncation_and_flips(void **state)
{
	static const char *const rels[] = {RD5, RD6, RD2023};
	static const unsigned formats[] = {2, 1, 3};

	(void)state;
	for (size_t v = 0; v < 3; v++) {
		size_t len;
		uint8_t *der = cert_der(rels[v], 0, &len), *buf;
		struct cvm_cert *c = NULL;
		struct cvm_amd_collateral certs;
		struct cvm_rd ext;
		const uint8_t *report;
		unsigned format;
		char err[256];

		assert_int_equal(cvm_cert_parse(der, len, &c), CVM_OK);
		assert_int_equal(cvm_cert_ext(c, "1.2.840.113741.1337.7", &ext), CVM_OK);
		buf = malloc(ext.len + 1);
		assert_non_null(buf);
		memcpy(buf, ext.p, ext.len);
		assert_int_equal(cosmian_sev_parse(buf, ext.len, &report, &certs, &format, err, sizeof(err)),
		                 CVM_OK);
		assert_int_equal(format, formats[v]);
		cosmian_certs_cleanup(&certs);
		for (size_t n = 0; n < ext.len; n++) {
			assert_int_not_equal(
			    cosmian_sev_parse(buf, n, &report, &certs, &format, err, sizeof(err)), CVM_OK);
			assert_null(certs.vcek);
			assert_true(err[0] != 0);
		}
		buf[ext.len] = 0;
		assert_int_not_equal(
		    cosmian_sev_parse(buf, ext.len + 1, &report, &certs, &format, err, sizeof(err)), CVM_OK);
		for (size_t i = 1184; i < ext.len; i++) {
			buf[i] ^= (uint8_t)(1u << (i % 8));
			if (cosmian_sev_parse(buf, ext.len, &report, &certs, &format, err, sizeof(err)) ==
			    CVM_OK)
				cosmian_certs_cleanup(&certs);
			buf[i] ^= (uint8_t)(1u << (i % 8));
		}
		free(buf);
		cvm_cert_free(c);
		free(der);
	}
}

/* A dstack certificate with 1.3, 1.4 and 1.9 from cvm_ratls_make reads back;
 * a malformed 1.9 is refused when making. */
static void make_carries_app_id_usage_and_app_info(void **state)
{
	struct sim s;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_ratls_evidence rev;
	struct cvm_ratls_make_opts o;
	struct cvm_ratls_info *info = NULL;
	uint8_t rd[64], ai[512], app_id[20], *der;
	size_t ai_len, pem_len, der_len;
	char *pem = NULL, err[256];

	(void)state;
	sim_up(&s, 0x42);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, key, NULL, rd), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	memset(&rev, 0, sizeof(rev));
	rev.tee = CVM_RATLS_TEE_SNP;
	rev.quote = ev.data;
	rev.quote_len = ev.data_len;
	memset(app_id, 0x9e, sizeof(app_id));
	ai_len = app_info(ai, true, 32);
	memset(&o, 0, sizeof(o));
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	o.common_name = "app";
	o.not_before = NOW;
	o.not_after = NOW + 3600;
	o.app_id = app_id;
	o.usage = "app:custom";
	o.app_info = ai;
	o.app_info_len = ai_len;
	assert_int_equal(cvm_ratls_make(&o, key, &rev, NULL, NULL, &pem, &pem_len), CVM_OK);
	der = pem_der(pem, pem_len, &der_len);
	assert_int_equal(cvm_ratls_parse(der, der_len, &info, err, sizeof(err)), CVM_OK);
	assert_true(info->has_app_id);
	assert_memory_equal(info->app_id, app_id, 20);
	assert_string_equal(info->usage, "app:custom");
	assert_int_equal(info->app_info_len, ai_len);
	assert_memory_equal(info->app_info, ai, ai_len);
	assert_true(info->binding);
	assert_int_equal(info->attestation->variant, 3);
	cvm_ratls_info_free(info);
	free(der);
	free(pem);
	pem = NULL;
	ai[0] = 0x97; /* 7 fields */
	assert_int_equal(cvm_ratls_make(&o, key, &rev, NULL, NULL, &pem, &pem_len), CVM_E_INVAL);
	assert_null(pem);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

static void app_info_encode_writes_dstacks_array_of_bins_byte_for_byte(void **state)
{
	uint8_t app_id[20], compose[32], *out = NULL, big[CVM_RATLS_APP_INFO_FIELD_MAX + 1];
	size_t len = 0, off = 0;
	struct cvm_ratls_app_info ai;

	(void)state;
	memset(app_id, 0x11, sizeof(app_id));
	memset(compose, 0x22, sizeof(compose));
	memset(&ai, 0, sizeof(ai));
	ai.app_id = app_id;
	ai.app_id_len = sizeof(app_id);
	ai.compose_hash = compose;
	ai.compose_hash_len = sizeof(compose);
	memset(ai.device_id, 0x33, 32);
	memset(ai.mr_system, 0x44, 32);
	memset(ai.mr_aggregated, 0x55, 32);
	ai.key_provider_info = (const uint8_t *)"{}";
	ai.key_provider_info_len = 2;
	assert_int_equal(cvm_ratls_app_info_encode(&ai, &out, &len), CVM_OK);
	/* fixarray(8), then bin8 per field: len, bytes (instance id and OS image
	 * hash empty) */
	assert_int_equal(len, 1 + (2 + 20) + (2 + 32) + 2 + 3 * (2 + 32) + 2 + (2 + 2));
	assert_int_equal(out[off++], 0x98);
	assert_int_equal(out[off++], 0xc4);
	assert_int_equal(out[off++], 20);
	assert_memory_equal(out + off, app_id, 20);
	off += 20;
	assert_int_equal(out[off++], 0xc4);
	assert_int_equal(out[off++], 32);
	assert_memory_equal(out + off, compose, 32);
	off += 32;
	assert_int_equal(out[off++], 0xc4);
	assert_int_equal(out[off++], 0);
	for (int v = 0x33; v <= 0x55; v += 0x11) {
		assert_int_equal(out[off++], 0xc4);
		assert_int_equal(out[off++], 32);
		for (size_t i = 0; i < 32; i++)
			assert_int_equal(out[off + i], v);
		off += 32;
	}
	assert_int_equal(out[off++], 0xc4);
	assert_int_equal(out[off++], 0);
	assert_int_equal(out[off++], 0xc4);
	assert_int_equal(out[off++], 2);
	assert_memory_equal(out + off, "{}", 2);
	/* and it is what the checker and a certificate take */
	{
		struct cvm_ratls_make_opts o;
		struct cvm_p256_keypair *kp = NULL;
		char *pem = NULL;
		size_t pem_len = 0;

		assert_int_equal(cvm_p256_keypair_generate(&kp), CVM_OK);
		memset(&o, 0, sizeof(o));
		o.profile = CVM_RATLS_PROFILE_DSTACK;
		o.common_name = "app-info";
		o.not_before = 1700000000;
		o.not_after = 1800000000;
		o.app_info = out;
		o.app_info_len = len;
		assert_int_equal(cvm_ratls_make(&o, kp, NULL, NULL, NULL, &pem, &pem_len), CVM_OK);
		free(pem);
		cvm_p256_keypair_free(kp);
	}
	free(out);
	/* a field over the cap is refused */
	memset(big, 0, sizeof(big));
	ai.compose_hash = big;
	ai.compose_hash_len = sizeof(big);
	assert_int_equal(cvm_ratls_app_info_encode(&ai, &out, &len), CVM_E_INVAL);
	assert_null(out);
}

/* cvm_ratls_app_info_ids (what cvm-gatewayd registers a CVM by) reads back
 * what cvm_ratls_app_info_encode wrote, refuses an id over its cap, and
 * refuses what the checker refuses. */
static void app_info_ids_read_back_and_refuse(void **state)
{
	uint8_t app_id[20], inst[20], compose[32], *out = NULL, big[65];
	struct cvm_ratls_app_info ai;
	struct cvm_ratls_app_ids ids;
	char err[256];
	size_t len = 0;

	(void)state;
	memset(app_id, 0xab, sizeof(app_id));
	memset(inst, 0x01, sizeof(inst));
	memset(compose, 0x22, sizeof(compose));
	memset(&ai, 0, sizeof(ai));
	ai.app_id = app_id;
	ai.app_id_len = sizeof(app_id);
	ai.instance_id = inst;
	ai.instance_id_len = sizeof(inst);
	ai.compose_hash = compose;
	ai.compose_hash_len = sizeof(compose);
	assert_int_equal(cvm_ratls_app_info_encode(&ai, &out, &len), CVM_OK);
	assert_int_equal(cvm_ratls_app_info_ids(out, len, &ids, err, sizeof(err)), CVM_OK);
	assert_int_equal(ids.app_id_len, 20);
	assert_memory_equal(ids.app_id, app_id, 20);
	assert_int_equal(ids.instance_id_len, 20);
	assert_memory_equal(ids.instance_id, inst, 20);
	assert_int_equal(ids.compose_hash_len, 32);
	assert_memory_equal(ids.compose_hash, compose, 32);
	/* every truncation is refused */
	for (size_t n = 0; n < len; n++)
		assert_int_not_equal(cvm_ratls_app_info_ids(out, n, &ids, err, sizeof(err)), CVM_OK);
	free(out);
	/* an instance id longer than the copy holds */
	memset(big, 0x07, sizeof(big));
	ai.instance_id = big;
	ai.instance_id_len = sizeof(big);
	assert_int_equal(cvm_ratls_app_info_encode(&ai, &out, &len), CVM_OK);
	assert_int_equal(cvm_ratls_app_info_ids(out, len, &ids, err, sizeof(err)), CVM_E_TOO_LARGE);
	assert_non_null(strstr(err, "instance_id"));
	free(out);
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
	    cmocka_unit_test(va_other_variants_round_trip),
	    cmocka_unit_test(parse_rd1_dstack_tdx_legacy_extensions),
	    cmocka_unit_test(parse_rd1_ca_certificates_carry_app_id_and_usage),
	    cmocka_unit_test(parse_rd3_cosmian_tdx_drops_the_padding),
	    cmocka_unit_test(parse_rd4_cosmian_sgx_measurements),
	    cmocka_unit_test(parse_rd5_cosmian_sev_tee_tools_2),
	    cmocka_unit_test(parse_rd6_cosmian_sev_tee_tools_1_6_2),
	    cmocka_unit_test(parse_cosmian_sev_2023_tagged_table),
	    cmocka_unit_test(parse_survives_truncated_and_flipped_extensions),
	    cmocka_unit_test(parse_survives_each_extension_cut_and_flipped),
	    cmocka_unit_test(make_verify_dstack_tdx),
	    cmocka_unit_test(make_verify_dstack_snp),
	    cmocka_unit_test(make_verify_dstack_snp_with_its_own_chain),
	    cmocka_unit_test(make_verify_cosmian_tdx),
	    cmocka_unit_test(make_verify_cosmian_snp_with_its_own_chain),
	    cmocka_unit_test(make_refuses_evidence_for_another_key),
	    cmocka_unit_test(make_without_evidence_carries_only_the_given_extensions),
	    cmocka_unit_test(verify_rejects_evidence_that_binds_another_key),
	    cmocka_unit_test(verify_rejects_expired_and_not_yet_valid),
	    cmocka_unit_test(verify_accepts_a_legacy_ca_chain_only_when_allowed),
	    cmocka_unit_test(verify_real_tdx_quote_in_a_certificate),
	    cmocka_unit_test(fresh_check_binds_the_connection_and_the_instance),
	    cmocka_unit_test(system_key_is_the_key_the_system_recorded),
	    cmocka_unit_test(replay_checks_each_runtime_event_list),
	    cmocka_unit_test(app_info_check_accepts_dstack_shape_only),
	    cmocka_unit_test(cosmian_sev_tables_survive_truncation_and_flips),
	    cmocka_unit_test(make_carries_app_id_usage_and_app_info),
	    cmocka_unit_test(app_info_encode_writes_dstacks_array_of_bins_byte_for_byte),
	    cmocka_unit_test(app_info_ids_read_back_and_refuse),
	};

	return cmocka_run_group_tests(tests, NULL, remove_sim_templates);
}
