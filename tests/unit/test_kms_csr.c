/* unit.kms_csr: dstack's SignCert CSR (include/cvmkit/csr.h). dstack's own
 * golden SCALE encodings (tests/vectors/compat/csr), the guest's encoder
 * against them, decode -> signature round trips, V1's upgrade, every
 * truncation, extra byte and bit flip, the caps, the attestation check on
 * the simulated TEE (accepted; bound to another key, not replaying, without
 * an app id: refused), and the issued leaf read back with cvm_ratls_parse
 * and checked by `openssl verify` against the App CA and the root. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/csr.h>
#include <cvmkit/dcap.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/tee.h>

#include "crypto/crypto_lib.h"
#include "vectors.h"

#define NOW ((int64_t)1767225600) /* 2026-01-01: the simulated PKI's time */
#define GOLDEN "compat/csr/dstack-ra-tls-cert-rs/csr-v2-stable.bin"
#define GOLDEN_Q "compat/csr/dstack-ra-tls-cert-rs/csr-v2-stable-with-tdx-quote.bin"
/* In both golden CSRs: the SCALE of "please sign cert:" (18 bytes), the
 * 3-byte key 01 02 03 with its length (4 bytes), the config (25 bytes),
 * then the attestation to the end. */
#define GOLDEN_KEY_AT 18u
#define GOLDEN_CONFIG_AT 22u
#define GOLDEN_VA_AT 47u

static const uint8_t APP_ID[20] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                                   0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05};

/* ---- helpers ------------------------------------------------------------- */

/* scale_compact appends a SCALE compact length (the test's own writer). */
static void scale_compact(struct cvm_wr *w, size_t v)
{
	if (v < 64)
		cvm_wr_u8(w, (uint8_t)(v << 2));
	else if (v < (1u << 14))
		cvm_wr_u16le(w, (uint16_t)((v << 2) | 1u));
	else
		cvm_wr_u32le(w, (uint32_t)((v << 2) | 2u));
}

static void scale_bytes(struct cvm_wr *w, const void *p, size_t n)
{
	scale_compact(w, n);
	cvm_wr_bytes(w, p, n);
}

static uint8_t *wr_take(struct cvm_wr *w, size_t *len)
{
	uint8_t *out = NULL;

	assert_int_equal(cvm_wr_finish(w, &out, len), CVM_OK);
	cvm_wr_cleanup(w);
	return out;
}

/* der_sig turns r || s into a DER ECDSA-Sig-Value (written here again, so
 * that a bug in the library's encoder cannot hide behind itself). */
static size_t der_sig(const uint8_t rs[64], uint8_t out[72])
{
	uint8_t body[70];
	size_t n = 0;

	for (int k = 0; k < 2; k++) {
		const uint8_t *v = rs + 32 * k;
		size_t i = 0;

		while (i < 31 && v[i] == 0)
			i++;
		body[n++] = 0x02;
		body[n++] = (uint8_t)(32 - i + ((v[i] & 0x80) ? 1 : 0));
		if (v[i] & 0x80)
			body[n++] = 0;
		memcpy(body + n, v + i, 32 - i);
		n += 32 - i;
	}
	out[0] = 0x30;
	out[1] = (uint8_t)n;
	memcpy(out + 2, body, n);
	return n + 2;
}

/* minimal_va is the golden CSRs' attestation: V0, DstackTdx with an empty
 * quote, no events, zero report_data, empty config. */
static uint8_t *minimal_va(size_t *len)
{
	size_t n;
	uint8_t *g = vector_read(GOLDEN, &n), *out;

	assert_true(n > GOLDEN_VA_AT);
	*len = n - GOLDEN_VA_AT;
	out = malloc(*len);
	assert_non_null(out);
	memcpy(out, g + GOLDEN_VA_AT, *len);
	free(g);
	return out;
}

static void params_init(struct cvm_csr_params *p)
{
	static const char *const alt[] = {"app.example.com", "203.0.113.10"};

	memset(p, 0, sizeof(*p));
	p->org_name = "Example Org";
	p->subject = "app.example.com";
	p->alt_names = alt;
	p->alt_name_count = 2;
	p->usage_server_auth = true;
	p->usage_client_auth = true;
	p->ext_quote = true;
	p->has_not_after = true;
	p->not_after = (uint64_t)NOW + 3600;
}

/* ---- dstack's golden encodings -------------------------------------------- */

static void golden_v2_encodings_decode_to_dstacks_fields(void **state)
{
	static const char *const files[] = {GOLDEN, GOLDEN_Q};
	static const uint8_t key[3] = {1, 2, 3};

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		size_t len;
		uint8_t *buf = vector_read(files[f], &len);
		struct cvm_csr *c = NULL;
		struct cvm_va *va = NULL;
		char err[256];

		assert_int_equal(cvm_csr_decode(2, buf, len, &c, err, sizeof(err)), CVM_OK);
		assert_int_equal(c->version, 2);
		assert_null(c->org_name);
		assert_string_equal(c->subject, "test.example.com");
		assert_int_equal(c->alt_name_count, 0);
		assert_true(c->usage_server_auth);
		assert_false(c->usage_client_auth);
		assert_int_equal(c->ext_quote, f == 1);
		assert_false(c->ext_app_info);
		assert_false(c->has_not_before);
		assert_false(c->has_not_after);
		assert_int_equal(c->pubkey_der_len, 3);
		assert_memory_equal(c->pubkey_der, key, 3);
		assert_int_equal(c->encoded_len, len);
		assert_memory_equal(c->encoded, buf, len);
		/* the attestation is the rest, unprefixed */
		assert_int_equal(c->attestation_len, len - GOLDEN_VA_AT);
		assert_memory_equal(c->attestation, buf + GOLDEN_VA_AT, len - GOLDEN_VA_AT);
		assert_int_equal(cvm_va_decode(c->attestation, c->attestation_len, &va, err, sizeof(err)),
		                 CVM_OK);
		assert_int_equal(va->version, 0);
		assert_int_equal(va->variant, 0);
		assert_int_equal(va->quote_len, f == 1 ? 1 : 0);
		if (f == 1)
			assert_int_equal(va->quote[0], 9);
		cvm_va_free(va);
		/* a 3-byte "key" is no P-256 key: nothing verifies under it */
		assert_int_equal(
		    cvm_csr_check_signature(c, (const uint8_t *)"\x30\x06\x02\x01\x01\x02\x01\x01", 8),
		    CVM_E_UNSUPPORTED);
		cvm_csr_free(c);
		free(buf);
	}
}

/* The guest's encoder writes dstack's bytes: the golden CSR with only the
 * key (and its length) replaced by the real key's SPKI. */
static void made_csr_is_dstacks_encoding_byte_for_byte(void **state)
{
	static const char *const files[] = {GOLDEN, GOLDEN_Q};

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		struct cvm_p256_keypair *key = NULL;
		struct cvm_csr_params p;
		struct cvm_wr w;
		size_t glen, spki_len, csr_len, sig_len, want_len;
		uint8_t *g = vector_read(files[f], &glen), *spki = NULL, *csr = NULL, *sig = NULL, *want;

		assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
		assert_int_equal(cvm_p256_keypair_spki(key, &spki, &spki_len), CVM_OK);
		memset(&p, 0, sizeof(p));
		p.subject = "test.example.com";
		p.usage_server_auth = true;
		p.ext_quote = f == 1;
		assert_int_equal(cvm_csr_make_signed(&p, key, g + GOLDEN_VA_AT, glen - GOLDEN_VA_AT, &csr,
		                                     &csr_len, &sig, &sig_len),
		                 CVM_OK);
		cvm_wr_init(&w, 4096);
		cvm_wr_bytes(&w, g, GOLDEN_KEY_AT);
		scale_bytes(&w, spki, spki_len);
		cvm_wr_bytes(&w, g + GOLDEN_CONFIG_AT, glen - GOLDEN_CONFIG_AT);
		want = wr_take(&w, &want_len);
		assert_int_equal(csr_len, want_len);
		assert_memory_equal(csr, want, want_len);
		free(want);
		free(csr);
		free(sig);
		free(spki);
		free(g);
		cvm_p256_keypair_free(key);
	}
}

/* ---- round trips and signatures ------------------------------------------- */

static void made_csr_decodes_to_its_params_and_its_signature_verifies(void **state)
{
	struct cvm_p256_keypair *key = NULL;
	struct cvm_csr_params p;
	struct cvm_csr *c = NULL;
	uint8_t *va, *csr = NULL, *sig = NULL, *spki = NULL;
	size_t va_len, csr_len, sig_len, spki_len;
	char err[256];

	(void)state;
	va = minimal_va(&va_len);
	params_init(&p);
	p.ext_app_info = true;
	p.has_not_before = true;
	p.not_before = (uint64_t)NOW - 60;
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(cvm_csr_make_signed(&p, key, va, va_len, &csr, &csr_len, &sig, &sig_len), CVM_OK);
	assert_true(sig_len <= CVM_CSR_SIG_MAX);
	assert_int_equal(cvm_csr_decode(2, csr, csr_len, &c, err, sizeof(err)), CVM_OK);
	assert_string_equal(c->org_name, "Example Org");
	assert_string_equal(c->subject, "app.example.com");
	assert_int_equal(c->alt_name_count, 2);
	assert_string_equal(c->alt_names[0], "app.example.com");
	assert_string_equal(c->alt_names[1], "203.0.113.10");
	assert_true(c->usage_server_auth && c->usage_client_auth && c->ext_quote && c->ext_app_info);
	assert_true(c->has_not_before && c->has_not_after);
	assert_int_equal(c->not_before, (uint64_t)NOW - 60);
	assert_int_equal(c->not_after, (uint64_t)NOW + 3600);
	assert_int_equal(cvm_p256_keypair_spki(key, &spki, &spki_len), CVM_OK);
	assert_int_equal(c->pubkey_der_len, spki_len);
	assert_memory_equal(c->pubkey_der, spki, spki_len);
	assert_int_equal(c->attestation_len, va_len);
	assert_memory_equal(c->attestation, va, va_len);
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_OK);
	/* a byte more or less of signature */
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len - 1), CVM_E_SIGNATURE);
	assert_int_equal(cvm_csr_check_signature(c, sig, 0), CVM_E_SIGNATURE);
	cvm_csr_free(c);
	free(spki);
	free(csr);
	free(sig);
	free(va);
	cvm_p256_keypair_free(key);
}

/* The signature must be by the CSR's own key: another key's signature over
 * the very same bytes does not verify, nor does its key's own CSR's. */
static void csr_signed_by_another_key_is_refused(void **state)
{
	struct cvm_p256_keypair *a = NULL, *b = NULL;
	struct cvm_csr_params p;
	struct cvm_csr *c = NULL;
	uint8_t *va, *csr = NULL, *sig = NULL, *csr_b = NULL, *sig_b = NULL, rs[64], der[72];
	size_t va_len, csr_len, sig_len, csr_b_len, sig_b_len, der_len;
	char err[256];

	(void)state;
	va = minimal_va(&va_len);
	params_init(&p);
	assert_int_equal(cvm_p256_keypair_generate(&a), CVM_OK);
	assert_int_equal(cvm_p256_keypair_generate(&b), CVM_OK);
	assert_int_equal(cvm_csr_make_signed(&p, a, va, va_len, &csr, &csr_len, &sig, &sig_len), CVM_OK);
	assert_int_equal(cvm_csr_make_signed(&p, b, va, va_len, &csr_b, &csr_b_len, &sig_b, &sig_b_len),
	                 CVM_OK);
	assert_int_equal(cvm_csr_decode(2, csr, csr_len, &c, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_OK);
	assert_int_equal(cvm_p256_keypair_sign(b, csr, csr_len, rs), CVM_OK);
	der_len = der_sig(rs, der);
	assert_int_equal(cvm_csr_check_signature(c, der, der_len), CVM_E_SIGNATURE);
	assert_int_equal(cvm_csr_check_signature(c, sig_b, sig_b_len), CVM_E_SIGNATURE);
	/* and A's own key over its bytes, encoded by the test: verifies */
	assert_int_equal(cvm_p256_keypair_sign(a, csr, csr_len, rs), CVM_OK);
	der_len = der_sig(rs, der);
	assert_int_equal(cvm_csr_check_signature(c, der, der_len), CVM_OK);
	cvm_csr_free(c);
	free(csr);
	free(sig);
	free(csr_b);
	free(sig_b);
	free(va);
	cvm_p256_keypair_free(a);
	cvm_p256_keypair_free(b);
}

/* The signature is strict DER (as ring's ECDSA_P256_SHA256_ASN1) and the key
 * the one DER form of a P-256 SPKI: a padded integer, a byte after the
 * signature, another curve's or a compressed key do not verify. */
static void signature_and_key_must_be_strict_der(void **state)
{
	struct cvm_p256_keypair *key = NULL;
	struct cvm_csr_params p;
	struct cvm_csr *c = NULL;
	uint8_t *va, *csr = NULL, *sig = NULL, rs[64], der[72], bad[80];
	size_t va_len, csr_len, sig_len, der_len;
	char err[256];

	(void)state;
	va = minimal_va(&va_len);
	params_init(&p);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(cvm_csr_make_signed(&p, key, va, va_len, &csr, &csr_len, &sig, &sig_len), CVM_OK);
	assert_int_equal(cvm_csr_decode(2, csr, csr_len, &c, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_OK);
	/* a byte after the SEQUENCE */
	memcpy(bad, sig, sig_len);
	bad[sig_len] = 0;
	assert_int_equal(cvm_csr_check_signature(c, bad, sig_len + 1), CVM_E_SIGNATURE);
	/* r with a leading zero it does not need: the same numbers, not DER */
	assert_int_equal(cvm_p256_keypair_sign(key, csr, csr_len, rs), CVM_OK);
	rs[0] &= 0x7f; /* a high bit clear, so that a 00 before it is not minimal */
	der_len = der_sig(rs, der);
	assert_int_equal(der[2], 0x02);
	bad[0] = 0x30;
	bad[1] = (uint8_t)(der[1] + 1);
	bad[2] = 0x02;
	bad[3] = (uint8_t)(der[3] + 1);
	bad[4] = 0x00;
	memcpy(bad + 5, der + 4, der_len - 4);
	assert_int_equal(cvm_csr_check_signature(c, bad, der_len + 1), CVM_E_SIGNATURE);
	/* the key: compressed (02/03 and x only), or cut */
	c->pubkey_der[26] = 0x02;
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_E_UNSUPPORTED);
	c->pubkey_der[26] = 0x04;
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_OK);
	c->pubkey_der_len = 59;
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_E_UNSUPPORTED);
	cvm_csr_free(c);
	free(csr);
	free(sig);
	free(va);
	cvm_p256_keypair_free(key);
}

/* ---- malformed input ------------------------------------------------------ */

static void decode_refuses_every_truncation_and_an_extra_byte(void **state)
{
	static const char *const files[] = {GOLDEN, GOLDEN_Q};

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		size_t len;
		uint8_t *buf = vector_read(files[f], &len), *more;
		struct cvm_csr *c = NULL;
		char err[256];

		for (size_t n = 0; n < len; n++) {
			assert_int_not_equal(cvm_csr_decode(2, buf, n, &c, err, sizeof(err)), CVM_OK);
			assert_null(c);
			assert_true(err[0] != '\0');
		}
		more = malloc(len + 1);
		assert_non_null(more);
		memcpy(more, buf, len);
		more[len] = 0;
		assert_int_not_equal(cvm_csr_decode(2, more, len + 1, &c, err, sizeof(err)), CVM_OK);
		assert_null(c);
		free(more);
		free(buf);
	}
}

/* Every single-bit flip of a signed CSR either fails to decode or no longer
 * verifies: nothing in it is outside the signature. */
static void every_bit_flip_is_refused_or_breaks_the_signature(void **state)
{
	struct cvm_p256_keypair *key = NULL;
	struct cvm_csr_params p;
	uint8_t *va, *csr = NULL, *sig = NULL;
	size_t va_len, csr_len, sig_len, decoded = 0;

	(void)state;
	va = minimal_va(&va_len);
	params_init(&p);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(cvm_csr_make_signed(&p, key, va, va_len, &csr, &csr_len, &sig, &sig_len), CVM_OK);
	for (size_t i = 0; i < csr_len * 8; i++) {
		struct cvm_csr *c = NULL;
		char err[256];

		csr[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (cvm_csr_decode(2, csr, csr_len, &c, err, sizeof(err)) == CVM_OK) {
			decoded++;
			assert_int_not_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_OK);
			cvm_csr_free(c);
		}
		csr[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	/* the names, flags and report_data take most flips and still decode */
	assert_true(decoded > 0);
	free(csr);
	free(sig);
	free(va);
	cvm_p256_keypair_free(key);
}

/* build_v2 writes a V2 CSR field by field (the test's own writer), so that
 * each cap and rule can be crossed on purpose. */
struct v2_fields {
	const char *confirm;
	size_t key_len;
	size_t subject_len;
	size_t alt_count;
	uint8_t flag_byte; /* usage_server_auth's byte */
	bool subject_nul;
	bool long_compact; /* the subject's length in a 2-byte compact */
};

static uint8_t *build_v2(const struct v2_fields *f, size_t *len)
{
	struct cvm_wr w;
	uint8_t *key = calloc(1, f->key_len ? f->key_len : 1), *va;
	char *subject = malloc(f->subject_len + 1);
	size_t va_len;

	assert_non_null(key);
	assert_non_null(subject);
	memset(subject, 'a', f->subject_len);
	subject[f->subject_len] = 0;
	if (f->subject_nul && f->subject_len > 1)
		subject[1] = 0;
	cvm_wr_init(&w, 1 << 20);
	scale_bytes(&w, f->confirm, strlen(f->confirm));
	scale_bytes(&w, key, f->key_len);
	cvm_wr_u8(&w, 0); /* org_name None */
	if (f->long_compact) {
		cvm_wr_u16le(&w, (uint16_t)((f->subject_len << 2) | 1u));
		cvm_wr_bytes(&w, subject, f->subject_len);
	} else {
		scale_bytes(&w, subject, f->subject_len);
	}
	scale_compact(&w, f->alt_count);
	for (size_t i = 0; i < f->alt_count; i++)
		scale_bytes(&w, "a.example", 9);
	cvm_wr_u8(&w, f->flag_byte);
	cvm_wr_u8(&w, 0);
	cvm_wr_u8(&w, 0);
	cvm_wr_u8(&w, 0);
	cvm_wr_u8(&w, 0);
	cvm_wr_u8(&w, 0);
	va = minimal_va(&va_len);
	cvm_wr_bytes(&w, va, va_len);
	free(va);
	free(key);
	free(subject);
	return wr_take(&w, len);
}

static void v2_fields_ok(struct v2_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->confirm = CVM_CSR_CONFIRM;
	f->key_len = 91;
	f->subject_len = 16;
	f->flag_byte = 1;
}

static int decode_v2(const struct v2_fields *f)
{
	struct cvm_csr *c = NULL;
	size_t len;
	uint8_t *buf = build_v2(f, &len);
	char err[256];
	int rc = cvm_csr_decode(2, buf, len, &c, err, sizeof(err));

	if (rc != CVM_OK)
		assert_null(c);
	cvm_csr_free(c);
	free(buf);
	return rc;
}

static void decode_holds_every_cap_and_rule(void **state)
{
	struct v2_fields f;

	(void)state;
	v2_fields_ok(&f);
	assert_int_equal(decode_v2(&f), CVM_OK);
	/* the confirm string, exactly */
	f.confirm = "please sign cert!";
	assert_int_equal(decode_v2(&f), CVM_E_FORMAT);
	f.confirm = "please sign cert: ";
	assert_int_equal(decode_v2(&f), CVM_E_FORMAT);
	f.confirm = "please sign cert";
	assert_int_equal(decode_v2(&f), CVM_E_FORMAT);
	f.confirm = "";
	assert_int_equal(decode_v2(&f), CVM_E_FORMAT);
	v2_fields_ok(&f);
	/* caps: the key, the subject, the SAN count */
	f.key_len = CVM_CSR_PUBKEY_MAX;
	assert_int_equal(decode_v2(&f), CVM_OK);
	f.key_len = CVM_CSR_PUBKEY_MAX + 1;
	assert_int_equal(decode_v2(&f), CVM_E_TOO_LARGE);
	v2_fields_ok(&f);
	f.subject_len = CVM_CSR_NAME_MAX;
	assert_int_equal(decode_v2(&f), CVM_OK);
	f.subject_len = CVM_CSR_NAME_MAX + 1;
	assert_int_equal(decode_v2(&f), CVM_E_TOO_LARGE);
	v2_fields_ok(&f);
	f.alt_count = CVM_CSR_ALT_NAMES_MAX;
	assert_int_equal(decode_v2(&f), CVM_OK);
	f.alt_count = CVM_CSR_ALT_NAMES_MAX + 1;
	assert_int_equal(decode_v2(&f), CVM_E_TOO_LARGE);
	/* SCALE's rules: bools are 0 or 1, compact lengths are shortest */
	v2_fields_ok(&f);
	f.flag_byte = 2;
	assert_int_equal(decode_v2(&f), CVM_E_FORMAT);
	v2_fields_ok(&f);
	f.long_compact = true; /* 16 in two bytes */
	assert_int_equal(decode_v2(&f), CVM_E_FORMAT);
	f.subject_len = 64; /* 64 needs two bytes: canonical */
	assert_int_equal(decode_v2(&f), CVM_OK);
	/* text without NUL */
	v2_fields_ok(&f);
	f.subject_nul = true;
	assert_int_equal(decode_v2(&f), CVM_E_FORMAT);
	/* the api version and the whole size */
	{
		struct cvm_csr *c = NULL;
		size_t len;
		uint8_t *buf;

		v2_fields_ok(&f);
		buf = build_v2(&f, &len);
		assert_int_equal(cvm_csr_decode(3, buf, len, &c, NULL, 0), CVM_E_INVAL);
		assert_int_equal(cvm_csr_decode(0, buf, len, &c, NULL, 0), CVM_E_INVAL);
		assert_int_equal(cvm_csr_decode(2, buf, CVM_CSR_MAX + 1, &c, NULL, 0), CVM_E_TOO_LARGE);
		assert_null(c);
		free(buf);
	}
}

static void make_refuses_what_decode_would_refuse(void **state)
{
	struct cvm_p256_keypair *key = NULL;
	struct cvm_csr_params p;
	uint8_t *va, *csr = NULL, *sig = NULL, junk[4] = {0x07, 0, 0, 0};
	size_t va_len, csr_len, sig_len;
	char big[CVM_CSR_NAME_MAX + 2];

	(void)state;
	va = minimal_va(&va_len);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	params_init(&p);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	p.subject = big;
	assert_int_equal(cvm_csr_make_signed(&p, key, va, va_len, &csr, &csr_len, &sig, &sig_len),
	                 CVM_E_INVAL);
	params_init(&p);
	p.has_not_before = true;
	p.not_before = p.not_after;
	assert_int_equal(cvm_csr_make_signed(&p, key, va, va_len, &csr, &csr_len, &sig, &sig_len),
	                 CVM_E_INVAL);
	params_init(&p);
	assert_int_equal(cvm_csr_make_signed(&p, key, junk, sizeof(junk), &csr, &csr_len, &sig, &sig_len),
	                 CVM_E_INVAL);
	assert_int_equal(cvm_csr_make_signed(&p, key, NULL, 0, &csr, &csr_len, &sig, &sig_len), CVM_E_INVAL);
	assert_null(csr);
	assert_null(sig);
	free(va);
	cvm_p256_keypair_free(key);
}

/* ---- the simulated TEE ---------------------------------------------------- */

struct sim {
	char root[64];
	char dir[128];
	struct cvm_dcap_collateral *dcap;
	uint8_t *intel_root;
	size_t intel_root_len;
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

static void sim_up(struct sim *s)
{
	struct cvm_tee_sim_opts o;
	char path[256], what[256];

	memset(s, 0, sizeof(*s));
	(void)snprintf(s->root, sizeof(s->root), "/tmp/cvm-kms-csr-XXXXXX");
	assert_non_null(mkdtemp(s->root));
	(void)snprintf(s->dir, sizeof(s->dir), "%s/p", s->root);
	cvm_tee_sim_opts_init(&o, NOW);
	o.with_snp = false;
	assert_int_equal(cvm_tee_sim_init(s->dir, &o), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx", s->dir);
	assert_int_equal(cvm_dcap_collateral_load_dir(path, &s->dcap, what, sizeof(what)), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx/intel_sgx_root_ca.der", s->dir);
	assert_int_equal(cvm_file_read(path, 65536, &s->intel_root, &s->intel_root_len), CVM_OK);
}

static void sim_down(struct sim *s)
{
	cvm_dcap_collateral_free(s->dcap);
	free(s->intel_root);
	rm_rf(s->root);
}

static struct cvm_ratls_verifier *sim_verifier(const struct sim *s, const struct cvm_policy *pol)
{
	struct cvm_ratls_verifier_opts o;
	struct cvm_ratls_verifier *v = NULL;

	memset(&o, 0, sizeof(o));
	o.policy = pol;
	o.dcap = s->dcap;
	o.intel_root_der = s->intel_root;
	o.intel_root_der_len = s->intel_root_len;
	assert_int_equal(cvm_ratls_verifier_new(&o, NOW, &v), CVM_OK);
	return v;
}

/* The guest's runtime events, dstack's boot order (spec §5.2), then an app
 * event after system-ready that claims another app id. */
#define EVENTS 9
static const uint8_t COMPOSE[32] = {0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
                                    0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5,
                                    0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf};
static const uint8_t INSTANCE[20] = {0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
                                     0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf2, 0xf3};
static const uint8_t OTHER_APP[20] = {0x66};

struct guest {
	struct cvm_va_runtime_event ev[EVENTS];
	size_t count;
	uint8_t *quote;
	size_t quote_len;
	uint8_t rtmr3_boot[48]; /* the replay to boot-mr-done, computed here */
};

static void guest_events(struct guest *g, bool with_app_id)
{
	size_t n = 0;

	memset(g, 0, sizeof(*g));
	g->ev[n++] = (struct cvm_va_runtime_event){"system-preparing", (const uint8_t *)"", 0, 1};
	if (with_app_id)
		g->ev[n++] = (struct cvm_va_runtime_event){"app-id", APP_ID, sizeof(APP_ID), 1};
	g->ev[n++] = (struct cvm_va_runtime_event){"compose-hash", COMPOSE, sizeof(COMPOSE), 1};
	g->ev[n++] = (struct cvm_va_runtime_event){"instance-id", INSTANCE, sizeof(INSTANCE), 1};
	g->ev[n++] = (struct cvm_va_runtime_event){"boot-mr-done", (const uint8_t *)"", 0, 1};
	g->ev[n++] = (struct cvm_va_runtime_event){
	    "key-provider", (const uint8_t *)"{\"name\":\"kms\",\"id\":\"ab\"}", 24, 1};
	g->ev[n++] = (struct cvm_va_runtime_event){"system-ready", (const uint8_t *)"", 0, 1};
	g->ev[n++] = (struct cvm_va_runtime_event){"app-id", OTHER_APP, sizeof(OTHER_APP), 1};
	g->count = n;
}

/* guest_quote extends the simulated RTMR3 with the events and quotes the
 * dstack binding of `key`. */
static void guest_quote(const struct sim *s, struct guest *g, const struct cvm_p256_keypair *key)
{
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	uint8_t rd[64], d[48], two[96];
	bool done = false;

	memset(g->rtmr3_boot, 0, 48);
	assert_int_equal(cvm_tee_open_sim(s->dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	for (size_t i = 0; i < g->count; i++) {
		assert_int_equal(
		    cvm_evl_dstack_digest(g->ev[i].event, g->ev[i].payload, g->ev[i].payload_len, 1, d),
		    CVM_OK);
		assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_OK);
		if (!done) {
			memcpy(two, g->rtmr3_boot, 48);
			memcpy(two + 48, d, 48);
			assert_int_equal(cvm_digest(CVM_DIGEST_SHA384, two, 96, g->rtmr3_boot, 48), CVM_OK);
			done = strcmp(g->ev[i].event, "boot-mr-done") == 0;
		}
	}
	assert_int_equal(cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, key, NULL, rd), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	g->quote = malloc(ev.data_len);
	assert_non_null(g->quote);
	memcpy(g->quote, ev.data, ev.data_len);
	g->quote_len = ev.data_len;
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
}

/* guest_va encodes the V0 attestation: the quote, the runtime events,
 * the quote's report_data. */
static uint8_t *guest_va(struct guest *g, size_t *len)
{
	struct cvm_va va;
	struct cvm_quote q;
	uint8_t *out = NULL;

	assert_int_equal(cvm_quote_parse(g->quote, g->quote_len, &q), CVM_OK);
	memset(&va, 0, sizeof(va));
	va.tee = CVM_RATLS_TEE_TDX;
	va.quote = g->quote;
	va.quote_len = g->quote_len;
	va.runtime_events = g->ev;
	va.runtime_event_count = g->count;
	memcpy(va.report_data, q.body.td.report_data, 64);
	va.config = "";
	assert_int_equal(cvm_va_encode(&va, 0, &out, len), CVM_OK);
	return out;
}

static void expect_boot_info(const struct guest *g, const struct cvm_ratls_boot_info *b)
{
	struct cvm_quote q;
	uint8_t buf[240], want[32];

	assert_string_equal(b->tee_variant, "dstack-tdx");
	/* the first app-id before system-ready, never the app's later one */
	assert_memory_equal(b->app_id, APP_ID, 20);
	assert_int_equal(b->compose_hash_len, 32);
	assert_memory_equal(b->compose_hash, COMPOSE, 32);
	assert_int_equal(b->instance_id_len, 20);
	assert_memory_equal(b->instance_id, INSTANCE, 20);
	assert_true(b->boot_mr_done);
	assert_memory_equal(b->rtmr3_boot, g->rtmr3_boot, 48);
	assert_int_equal(cvm_quote_parse(g->quote, g->quote_len, &q), CVM_OK);
	/* the full RTMR3 differs (events after boot-mr-done) */
	assert_memory_not_equal(b->rtmr3_boot, q.body.td.rtmr[3], 48);
	memcpy(buf, q.body.td.mr_td, 48);
	memcpy(buf + 48, q.body.td.rtmr[0], 48);
	memcpy(buf + 96, q.body.td.rtmr[1], 48);
	memcpy(buf + 144, q.body.td.rtmr[2], 48);
	memset(buf + 192, 0, 32);
	cvm_sha256(buf, 224, want);
	assert_memory_equal(b->mr_system, want, 32);
	memcpy(buf + 192, g->rtmr3_boot, 48);
	assert_true(cvm_rd_all_zero(&(struct cvm_rd){q.body.td.mr_config_id, 48}));
	assert_true(cvm_rd_all_zero(&(struct cvm_rd){q.body.td.mr_owner, 48}));
	assert_true(cvm_rd_all_zero(&(struct cvm_rd){q.body.td.mr_owner_config, 48}));
	cvm_sha256(buf, 240, want);
	assert_memory_equal(b->mr_aggregated, want, 32);
}

static void check_va_key_accepts_the_csr_attestation_and_gives_boot_info(void **state)
{
	struct sim s;
	struct guest g;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_csr_params p;
	struct cvm_csr *c = NULL;
	struct cvm_policy pol;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_ratls_boot_info boot;
	struct cvm_report rep;
	uint8_t *va, *csr = NULL, *sig = NULL;
	size_t va_len, csr_len, sig_len;
	char err[256];

	(void)state;
	sim_up(&s);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	guest_events(&g, true);
	guest_quote(&s, &g, key);
	va = guest_va(&g, &va_len);
	params_init(&p);
	assert_int_equal(cvm_csr_make_signed(&p, key, va, va_len, &csr, &csr_len, &sig, &sig_len), CVM_OK);
	/* the KMS side */
	assert_int_equal(cvm_csr_decode(2, csr, csr_len, &c, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_OK);
	cvm_policy_init(&pol);
	v = sim_verifier(&s, &pol);
	if (cvm_ratls_check_va_key(v, c->attestation, c->attestation_len, c->pubkey_der, c->pubkey_der_len,
	                           NOW + 60, &verdict, &rep, &boot) != CVM_OK)
		fail_msg("%s", cvm_report_reason(&rep));
	assert_true(verdict.evidence_verified);
	assert_true(verdict.binding);
	assert_true(verdict.simulated);
	expect_boot_info(&g, &boot);
	cvm_ratls_verifier_free(v);
	cvm_csr_free(c);
	free(csr);
	free(sig);
	free(va);
	free(g.quote);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

static void check_va_key_refuses_an_attestation_bound_to_another_key(void **state)
{
	struct sim s;
	struct guest g;
	struct cvm_p256_keypair *a = NULL, *b = NULL;
	struct cvm_policy pol;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_ratls_boot_info boot;
	struct cvm_report rep;
	uint8_t *va, *spki_a = NULL, *spki_b = NULL;
	size_t va_len, spki_a_len, spki_b_len;

	(void)state;
	sim_up(&s);
	assert_int_equal(cvm_p256_keypair_generate(&a), CVM_OK);
	assert_int_equal(cvm_p256_keypair_generate(&b), CVM_OK);
	assert_int_equal(cvm_p256_keypair_spki(a, &spki_a, &spki_a_len), CVM_OK);
	assert_int_equal(cvm_p256_keypair_spki(b, &spki_b, &spki_b_len), CVM_OK);
	guest_events(&g, true);
	guest_quote(&s, &g, a);
	va = guest_va(&g, &va_len);
	cvm_policy_init(&pol);
	v = sim_verifier(&s, &pol);
	/* A's attestation in a CSR for B's key: a relayed attestation */
	assert_int_equal(
	    cvm_ratls_check_va_key(v, va, va_len, spki_b, spki_b_len, NOW + 60, &verdict, &rep, &boot),
	    CVM_E_MISMATCH);
	assert_true(verdict.evidence_verified);
	assert_false(verdict.binding);
	assert_true(cvm_rd_all_zero(&(struct cvm_rd){boot.app_id, 20}));
	/* for A: accepted */
	assert_int_equal(
	    cvm_ratls_check_va_key(v, va, va_len, spki_a, spki_a_len, NOW + 60, &verdict, &rep, &boot),
	    CVM_OK);
	cvm_ratls_verifier_free(v);
	free(va);
	free(spki_a);
	free(spki_b);
	free(g.quote);
	cvm_p256_keypair_free(a);
	cvm_p256_keypair_free(b);
	sim_down(&s);
}

/* Runtime events that do not replay to the quoted RTMR3 (an app id the
 * guest did not measure), and an attestation without an app id, are
 * refused. */
static void check_va_key_refuses_unmeasured_or_missing_app_id(void **state)
{
	struct sim s;
	struct guest g;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_policy pol;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_ratls_boot_info boot;
	struct cvm_report rep;
	uint8_t *va, *spki = NULL;
	size_t va_len, spki_len;

	(void)state;
	sim_up(&s);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(cvm_p256_keypair_spki(key, &spki, &spki_len), CVM_OK);
	guest_events(&g, true);
	guest_quote(&s, &g, key);
	g.ev[1].payload = OTHER_APP; /* claims another app than it measured */
	va = guest_va(&g, &va_len);
	cvm_policy_init(&pol);
	v = sim_verifier(&s, &pol);
	assert_int_equal(
	    cvm_ratls_check_va_key(v, va, va_len, spki, spki_len, NOW + 60, &verdict, &rep, &boot),
	    CVM_E_MISMATCH);
	free(va);
	free(g.quote);
	cvm_ratls_verifier_free(v);
	sim_down(&s);

	sim_up(&s);
	guest_events(&g, false);
	guest_quote(&s, &g, key);
	va = guest_va(&g, &va_len);
	v = sim_verifier(&s, &pol);
	assert_int_equal(
	    cvm_ratls_check_va_key(v, va, va_len, spki, spki_len, NOW + 60, &verdict, &rep, &boot),
	    CVM_E_FORMAT);
	assert_true(verdict.binding);
	cvm_ratls_verifier_free(v);
	free(va);
	free(g.quote);
	free(spki);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

/* ---- V1 ------------------------------------------------------------------- */

/* v1_log writes the events as dstack's JSON event log (imr 3, runtime type). */
static char *v1_log(const struct guest *g)
{
	struct cvm_wr w;
	char *out = NULL;

	cvm_wr_init(&w, 1 << 16);
	cvm_wr_str(&w, "[");
	for (size_t i = 0; i < g->count; i++) {
		uint8_t d[48];

		assert_int_equal(
		    cvm_evl_dstack_digest(g->ev[i].event, g->ev[i].payload, g->ev[i].payload_len, 1, d),
		    CVM_OK);
		cvm_wr_fmt(&w, "%s{\"imr\":3,\"event_type\":134217729,\"digest\":\"", i ? "," : "");
		for (size_t k = 0; k < 48; k++)
			cvm_wr_fmt(&w, "%02x", d[k]);
		cvm_wr_fmt(&w, "\",\"event\":\"%s\",\"event_payload\":\"", g->ev[i].event);
		for (size_t k = 0; k < g->ev[i].payload_len; k++)
			cvm_wr_fmt(&w, "%02x", g->ev[i].payload[k]);
		cvm_wr_str(&w, "\"}");
	}
	cvm_wr_str(&w, "]");
	assert_int_equal(cvm_wr_finish_str(&w, &out), CVM_OK);
	cvm_wr_cleanup(&w);
	return out;
}

static uint8_t *build_v1(const uint8_t *spki, size_t spki_len, const uint8_t *quote, size_t quote_len,
                         const char *log, bool extra, size_t *len)
{
	struct cvm_wr w;

	cvm_wr_init(&w, 1 << 20);
	scale_bytes(&w, CVM_CSR_CONFIRM, strlen(CVM_CSR_CONFIRM));
	scale_bytes(&w, spki, spki_len);
	cvm_wr_u8(&w, 1);
	scale_bytes(&w, "Org", 3);
	scale_bytes(&w, "v1.example.com", 14);
	scale_compact(&w, 1);
	scale_bytes(&w, "v1.example.com", 14);
	cvm_wr_u8(&w, 1); /* server */
	cvm_wr_u8(&w, 0); /* client */
	cvm_wr_u8(&w, 1); /* ext_quote */
	scale_bytes(&w, quote, quote_len);
	scale_bytes(&w, log, strlen(log));
	if (extra)
		cvm_wr_u8(&w, 0);
	return wr_take(&w, len);
}

static void v1_csr_is_upgraded_to_v2_and_its_attestation_verifies(void **state)
{
	struct sim s;
	struct guest g;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_csr *c = NULL;
	struct cvm_va *va = NULL;
	struct cvm_policy pol;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_ratls_boot_info boot;
	struct cvm_report rep;
	uint8_t *spki = NULL, *csr, rs[64], der[72];
	size_t spki_len, csr_len, der_len;
	char *log, err[256];

	(void)state;
	sim_up(&s);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	assert_int_equal(cvm_p256_keypair_spki(key, &spki, &spki_len), CVM_OK);
	guest_events(&g, true);
	guest_quote(&s, &g, key);
	log = v1_log(&g);
	csr = build_v1(spki, spki_len, g.quote, g.quote_len, log, false, &csr_len);
	assert_int_equal(cvm_csr_decode(1, csr, csr_len, &c, err, sizeof(err)), CVM_OK);
	assert_int_equal(c->version, 1);
	assert_string_equal(c->org_name, "Org");
	assert_string_equal(c->subject, "v1.example.com");
	assert_int_equal(c->alt_name_count, 1);
	assert_true(c->usage_server_auth && !c->usage_client_auth && c->ext_quote);
	assert_false(c->ext_app_info || c->has_not_before || c->has_not_after);
	assert_int_equal(c->encoded_len, csr_len);
	/* the signature covers the V1 bytes */
	assert_int_equal(cvm_p256_keypair_sign(key, csr, csr_len, rs), CVM_OK);
	der_len = der_sig(rs, der);
	assert_int_equal(cvm_csr_check_signature(c, der, der_len), CVM_OK);
	/* the upgrade: a V0 DstackTdx attestation with the quote, the log's
	 * events and its runtime events, the quote's report_data, no config */
	assert_int_equal(cvm_va_decode(c->attestation, c->attestation_len, &va, err, sizeof(err)), CVM_OK);
	assert_int_equal(va->version, 0);
	assert_int_equal(va->variant, 0);
	assert_int_equal(va->quote_len, g.quote_len);
	assert_memory_equal(va->quote, g.quote, g.quote_len);
	assert_int_equal(va->event_count, g.count);
	assert_int_equal(va->runtime_event_count, g.count);
	for (size_t i = 0; i < g.count; i++) {
		assert_string_equal(va->runtime_events[i].event, g.ev[i].event);
		assert_int_equal(va->runtime_events[i].payload_len, g.ev[i].payload_len);
		assert_int_equal(va->events[i].digest_len, 48);
	}
	assert_int_equal(va->config_len, 0);
	cvm_va_free(va);
	cvm_policy_init(&pol);
	v = sim_verifier(&s, &pol);
	if (cvm_ratls_check_va_key(v, c->attestation, c->attestation_len, c->pubkey_der, c->pubkey_der_len,
	                           NOW + 60, &verdict, &rep, &boot) != CVM_OK)
		fail_msg("%s", cvm_report_reason(&rep));
	expect_boot_info(&g, &boot);
	cvm_ratls_verifier_free(v);
	cvm_csr_free(c);
	free(csr);

	/* a byte after the event log: refused (dstack ignores it) */
	csr = build_v1(spki, spki_len, g.quote, g.quote_len, log, true, &csr_len);
	assert_int_equal(cvm_csr_decode(1, csr, csr_len, &c, err, sizeof(err)), CVM_E_FORMAT);
	assert_null(c);
	free(csr);
	/* every truncation */
	csr = build_v1(spki, spki_len, g.quote, g.quote_len, log, false, &csr_len);
	for (size_t n = 0; n < csr_len; n += (n < 400 || n + 400 > csr_len) ? 1 : 97) {
		assert_int_not_equal(cvm_csr_decode(1, csr, n, &c, err, sizeof(err)), CVM_OK);
		assert_null(c);
	}
	/* the V1 bytes read as V2: refused (the quote is no attestation) */
	assert_int_not_equal(cvm_csr_decode(2, csr, csr_len, &c, err, sizeof(err)), CVM_OK);
	free(csr);
	/* a quote that is not a TDX quote, a log that is not a JSON array */
	csr = build_v1(spki, spki_len, (const uint8_t *)"\x09", 1, log, false, &csr_len);
	assert_int_equal(cvm_csr_decode(1, csr, csr_len, &c, err, sizeof(err)), CVM_E_FORMAT);
	free(csr);
	csr = build_v1(spki, spki_len, g.quote, g.quote_len, "{}", false, &csr_len);
	assert_int_equal(cvm_csr_decode(1, csr, csr_len, &c, err, sizeof(err)), CVM_E_FORMAT);
	free(csr);
	free(log);
	free(spki);
	free(g.quote);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

/* ---- issuing --------------------------------------------------------------- */

struct cas {
	struct cvm_p256_keypair *root_key, *app_key;
	struct cvm_cert *root, *app;
	char *root_pem, *app_pem;
	size_t root_pem_len, app_pem_len;
};

static void cas_up(struct cas *k, int64_t now)
{
	struct cvm_cert_template t;

	memset(k, 0, sizeof(*k));
	assert_int_equal(cvm_p256_keypair_generate(&k->root_key), CVM_OK);
	assert_int_equal(cvm_p256_keypair_generate(&k->app_key), CVM_OK);
	cvm_cert_template_init(&t);
	t.common_name = "Dstack KMS CA";
	t.organization = "Dstack";
	t.is_ca = true;
	t.not_before = now - 86400;
	t.not_after = now + 2 * 365 * 86400;
	assert_int_equal(cvm_cert_make(&t, k->root_key, NULL, NULL, &k->root_pem, &k->root_pem_len), CVM_OK);
	assert_int_equal(cvm_cert_parse((const uint8_t *)k->root_pem, k->root_pem_len, &k->root), CVM_OK);
	t.common_name = "Dstack App CA";
	t.path_len = 0;
	assert_int_equal(cvm_cert_make(&t, k->app_key, k->root_key, k->root, &k->app_pem, &k->app_pem_len),
	                 CVM_OK);
	assert_int_equal(cvm_cert_parse((const uint8_t *)k->app_pem, k->app_pem_len, &k->app), CVM_OK);
}

static void cas_down(struct cas *k)
{
	cvm_cert_free(k->root);
	cvm_cert_free(k->app);
	free(k->root_pem);
	free(k->app_pem);
	cvm_p256_keypair_free(k->root_key);
	cvm_p256_keypair_free(k->app_key);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* openssl_verify runs `openssl verify -CAfile root -untrusted app leaf`
 * and returns its exit status. */
static int openssl_verify(const char *dir, const char *root_pem, const char *app_pem, const char *leaf_pem)
{
	char root[256], app[256], leaf[256];
	int status = -1;
	pid_t pid;

	(void)snprintf(root, sizeof(root), "%s/root.pem", dir);
	(void)snprintf(app, sizeof(app), "%s/app.pem", dir);
	(void)snprintf(leaf, sizeof(leaf), "%s/leaf.pem", dir);
	write_file(root, root_pem, strlen(root_pem));
	write_file(app, app_pem, strlen(app_pem));
	write_file(leaf, leaf_pem, strlen(leaf_pem));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) {
			(void)dup2(null, 1);
			(void)dup2(null, 2);
		}
		execlp("openssl", "openssl", "verify", "-CAfile", root, "-untrusted", app, leaf,
		       (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 127); /* openssl is there */
	return WEXITSTATUS(status);
}

static uint8_t *leaf_der(const char *pem, size_t pem_len, size_t *len)
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

/* The whole SignCert path on the simulator: the guest's CSR, the KMS's
 * checks, the leaf issued for the ATTESTED app id (the CSR names none),
 * read back, and verified by openssl against the App CA and the root. */
static void issued_leaf_carries_the_attested_app_id_and_verifies_with_openssl(void **state)
{
	struct sim s;
	struct guest g;
	struct cas k, other;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_csr_params p;
	struct cvm_csr *c = NULL;
	struct cvm_policy pol;
	struct cvm_ratls_verifier *v;
	struct cvm_ratls_verdict verdict;
	struct cvm_ratls_boot_info boot;
	struct cvm_report rep;
	struct cvm_ratls_info *info = NULL;
	struct cvm_cert *leaf = NULL;
	uint8_t *va, *csr = NULL, *sig = NULL, *der, *spki = NULL, *leaf_spki = NULL;
	size_t va_len, csr_len, sig_len, der_len, pem_len, spki_len;
	int64_t now = (int64_t)time(NULL);
	char *pem = NULL, err[256], dir[64];

	(void)state;
	sim_up(&s);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	guest_events(&g, true);
	guest_quote(&s, &g, key);
	va = guest_va(&g, &va_len);
	params_init(&p);
	p.has_not_after = false;
	assert_int_equal(cvm_csr_make_signed(&p, key, va, va_len, &csr, &csr_len, &sig, &sig_len), CVM_OK);
	assert_int_equal(cvm_csr_decode(2, csr, csr_len, &c, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_csr_check_signature(c, sig, sig_len), CVM_OK);
	cvm_policy_init(&pol);
	v = sim_verifier(&s, &pol);
	assert_int_equal(cvm_ratls_check_va_key(v, c->attestation, c->attestation_len, c->pubkey_der,
	                                        c->pubkey_der_len, NOW + 60, &verdict, &rep, &boot),
	                 CVM_OK);
	cas_up(&k, now);
	assert_int_equal(
	    cvm_ratls_issue_csr(c, boot.app_id, NULL, NULL, 0, k.app_key, k.app, now, &pem, &pem_len),
	    CVM_OK);
	der = leaf_der(pem, pem_len, &der_len);
	assert_int_equal(cvm_ratls_parse(der, der_len, &info, err, sizeof(err)), CVM_OK);
	assert_int_equal(info->profile, CVM_RATLS_PROFILE_DSTACK);
	assert_true(info->has_app_id);
	assert_memory_equal(info->app_id, APP_ID, 20);
	assert_string_equal(info->usage, CVM_CSR_USAGE_DEFAULT);
	assert_non_null(info->attestation); /* ext_quote: carried over */
	assert_true(info->binding);         /* ... and it binds the leaf's key */
	assert_null(info->app_info);
	cvm_ratls_info_free(info);
	/* the leaf is for the CSR's key, with its names, usages and a capped life */
	assert_int_equal(cvm_cert_parse(der, der_len, &leaf), CVM_OK);
	assert_int_equal(cvm_p256_keypair_spki(key, &spki, &spki_len), CVM_OK);
	assert_int_equal(cvm_cert_spki(leaf, &leaf_spki, &der_len), CVM_OK);
	assert_int_equal(der_len, spki_len);
	assert_memory_equal(leaf_spki, spki, spki_len);
	assert_int_equal(cvm_cert_not_before(leaf), now);
	assert_int_equal(cvm_cert_not_after(leaf), now + CVM_CSR_LIFETIME_MAX);
	assert_false(cvm_cert_is_ca(leaf));
	assert_int_equal(cvm_cert_check_issued(leaf, k.app), CVM_OK);
	/* openssl: the chain verifies; against another root it does not */
	(void)snprintf(dir, sizeof(dir), "%s", s.root);
	assert_int_equal(openssl_verify(dir, k.root_pem, k.app_pem, pem), 0);
	cas_up(&other, now);
	assert_int_not_equal(openssl_verify(dir, other.root_pem, k.app_pem, pem), 0);
	cas_down(&other);
	cvm_cert_free(leaf);
	free(leaf_spki);
	free(spki);
	free(der);
	free(pem);
	cas_down(&k);
	cvm_ratls_verifier_free(v);
	cvm_csr_free(c);
	free(csr);
	free(sig);
	free(va);
	free(g.quote);
	cvm_p256_keypair_free(key);
	sim_down(&s);
}

static void issue_clamps_validity_and_refuses_what_it_cannot_honour(void **state)
{
	struct cas k;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_csr_params p;
	struct cvm_csr *c = NULL;
	struct cvm_cert *leaf = NULL;
	struct cvm_ratls_info *info = NULL;
	uint8_t *va, *csr = NULL, *sig = NULL, *der;
	size_t va_len, csr_len, sig_len, pem_len, der_len;
	int64_t now = NOW;
	char *pem = NULL, err[256];

	(void)state;
	cas_up(&k, now);
	va = minimal_va(&va_len);
	assert_int_equal(cvm_p256_keypair_generate(&key), CVM_OK);
	params_init(&p);
	p.ext_quote = false;
	p.has_not_before = true;
	p.not_before = 1;                               /* before the CA */
	p.not_after = (uint64_t)now + 10 * 365 * 86400; /* after the cap and the CA */
	assert_int_equal(cvm_csr_make_signed(&p, key, va, va_len, &csr, &csr_len, &sig, &sig_len), CVM_OK);
	assert_int_equal(cvm_csr_decode(2, csr, csr_len, &c, err, sizeof(err)), CVM_OK);
	assert_int_equal(
	    cvm_ratls_issue_csr(c, APP_ID, "app:test", NULL, 0, k.app_key, k.app, now, &pem, &pem_len),
	    CVM_OK);
	assert_int_equal(cvm_cert_parse((const uint8_t *)pem, pem_len, &leaf), CVM_OK);
	assert_int_equal(cvm_cert_not_before(leaf), cvm_cert_not_before(k.app));
	assert_int_equal(cvm_cert_not_after(leaf), now + CVM_CSR_LIFETIME_MAX);
	der = leaf_der(pem, pem_len, &der_len);
	assert_int_equal(cvm_ratls_parse(der, der_len, &info, err, sizeof(err)), CVM_OK);
	assert_string_equal(info->usage, "app:test");
	assert_null(info->attestation); /* no ext_quote: no attestation */
	cvm_ratls_info_free(info);
	free(der);
	cvm_cert_free(leaf);
	free(pem);
	pem = NULL;
	/* a window that ends before the CA's begins: empty, refused */
	c->not_after = 2;
	assert_int_equal(cvm_ratls_issue_csr(c, APP_ID, NULL, NULL, 0, k.app_key, k.app, now, &pem, &pem_len),
	                 CVM_E_INVAL);
	c->not_after = (uint64_t)now + 3600;
	/* a usage that is not printable ASCII, a CA key that is not the CA's */
	assert_int_equal(
	    cvm_ratls_issue_csr(c, APP_ID, "app custom", NULL, 0, k.app_key, k.app, now, &pem, &pem_len),
	    CVM_E_INVAL);
	assert_int_equal(
	    cvm_ratls_issue_csr(c, APP_ID, NULL, NULL, 0, k.root_key, k.app, now, &pem, &pem_len),
	    CVM_E_INVAL);
	/* app info asked for and not given, or not dstack's AppInfo */
	c->ext_app_info = true;
	assert_int_equal(cvm_ratls_issue_csr(c, APP_ID, NULL, NULL, 0, k.app_key, k.app, now, &pem, &pem_len),
	                 CVM_E_INVAL);
	assert_int_equal(cvm_ratls_issue_csr(c, APP_ID, NULL, (const uint8_t *)"\x90", 1, k.app_key, k.app,
	                                     now, &pem, &pem_len),
	                 CVM_E_INVAL);
	c->ext_app_info = false;
	/* a CSR key that is not P-256: no certificate */
	c->pubkey_der[c->pubkey_der_len - 1] ^= 1; /* off the curve */
	assert_int_equal(cvm_ratls_issue_csr(c, APP_ID, NULL, NULL, 0, k.app_key, k.app, now, &pem, &pem_len),
	                 CVM_E_INVAL);
	assert_null(pem);
	cvm_csr_free(c);
	free(csr);
	free(sig);
	free(va);
	cvm_p256_keypair_free(key);
	cas_down(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(golden_v2_encodings_decode_to_dstacks_fields),
	    cmocka_unit_test(made_csr_is_dstacks_encoding_byte_for_byte),
	    cmocka_unit_test(made_csr_decodes_to_its_params_and_its_signature_verifies),
	    cmocka_unit_test(csr_signed_by_another_key_is_refused),
	    cmocka_unit_test(signature_and_key_must_be_strict_der),
	    cmocka_unit_test(decode_refuses_every_truncation_and_an_extra_byte),
	    cmocka_unit_test(every_bit_flip_is_refused_or_breaks_the_signature),
	    cmocka_unit_test(decode_holds_every_cap_and_rule),
	    cmocka_unit_test(make_refuses_what_decode_would_refuse),
	    cmocka_unit_test(check_va_key_accepts_the_csr_attestation_and_gives_boot_info),
	    cmocka_unit_test(check_va_key_refuses_an_attestation_bound_to_another_key),
	    cmocka_unit_test(check_va_key_refuses_unmeasured_or_missing_app_id),
	    cmocka_unit_test(v1_csr_is_upgraded_to_v2_and_its_attestation_verifies),
	    cmocka_unit_test(issued_leaf_carries_the_attested_app_id_and_verifies_with_openssl),
	    cmocka_unit_test(issue_clamps_validity_and_refuses_what_it_cannot_honour),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
