/* DCAP verification (the quote verdict, before any appraisal policy) against
 * every real TDX and SGX vector, at each vector's own verification time, plus
 * truncation and bit-flip checks over the signed regions of real quotes and
 * collateral. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/quote.h>

#include "vectors.h"

/* The table of tests/vectors/README.md: the quote verdict by Intel's rules. */
struct expect {
	const char *dir;
	int64_t at;
	bool ok;
	enum cvm_tcb_status status;
	const char *advisories[12];
	bool trailing; /* non-zero bytes follow the quote */
};

static const struct expect expects[] = {
    {.dir = "tdx/dcapqvl-tdx-v4-uptodate",
     .at = 1752919234,
     .ok = true,
     .status = CVM_TCB_UP_TO_DATE,
     .advisories = {NULL}},
    {.dir = "tdx/zkdcap-tdx-v4-outofdate",
     .at = 1737467060,
     .ok = true,
     .status = CVM_TCB_OUT_OF_DATE,
     .advisories = {"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986", NULL}},
    {.dir = "tdx/automata-tdx-v4-0625",
     .at = 1749095100,
     .ok = true,
     .status = CVM_TCB_OUT_OF_DATE,
     .advisories = {"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986", NULL}},
    {.dir = "tdx/automata-tdx-v5-alibaba",
     .at = 1749945600,
     .ok = true,
     .status = CVM_TCB_UP_TO_DATE,
     .advisories = {NULL}},
    {.dir = "tdx/dcapqvl-tdx-v5-nomatch",
     .at = 1774003274,
     .ok = false,
     .status = CVM_TCB_NONE,
     .advisories = {NULL}},
    {.dir = "tdx/gotdxguest-tdx-v4-spr-nomatch",
     .at = 1688173200,
     .ok = false,
     .status = CVM_TCB_NONE,
     .advisories = {NULL},
     .trailing = true},
    {.dir = "sgx/dcapqvl-sgx-v3-confswhardening",
     .at = 1752919277,
     .ok = true,
     .status = CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
     .advisories = {"INTEL-SA-00289", "INTEL-SA-00615", NULL}},
    {.dir = "sgx/dcapqvl-sgx-v3-2023collateral",
     .at = 1703117168,
     .ok = true,
     .status = CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
     .advisories = {"INTEL-SA-00289", "INTEL-SA-00615", NULL}},
    {.dir = "sgx/zkdcap-sgx-v3-swhardening",
     .at = 1737458686,
     .ok = true,
     .status = CVM_TCB_SW_HARDENING_NEEDED,
     .advisories = {"INTEL-SA-00334", "INTEL-SA-00615", NULL}},
    {.dir = "sgx/trustee-occlum-sgx-v3-0825",
     .at = 1755236700,
     .ok = true,
     .status = CVM_TCB_OUT_OF_DATE,
     .advisories = {"INTEL-SA-00586", "INTEL-SA-00614", "INTEL-SA-00615", "INTEL-SA-00657", "INTEL-SA-00730",
                    "INTEL-SA-00738", "INTEL-SA-00767", "INTEL-SA-00828", "INTEL-SA-00837", "INTEL-SA-00960",
                    NULL}},
};

static int verify_dir(const char *dir, int64_t at, struct cvm_report *rep, struct cvm_dcap_result *res)
{
	struct cvm_dcap_collateral *c = NULL;
	struct cvm_dcap_verified *v = NULL;
	char path[4096], rel[512];
	uint8_t *quote;
	size_t qlen;
	int r;

	(void)snprintf(rel, sizeof(rel), "%s/quote.bin", dir);
	quote = vector_read(rel, &qlen);
	r = cvm_dcap_collateral_load_dir(vector_path(path, sizeof(path), dir), &c, NULL, 0);
	assert_int_equal(r, CVM_OK);
	cvm_report_init(rep);
	r = cvm_dcap_collateral_authenticate(c, NULL, 0, at, rep, &v);
	if (r == CVM_OK)
		r = cvm_dcap_quote_authenticate(v, quote, qlen, at, rep, res);
	/* res borrows from quote: keep the verdict fields only */
	memset(&res->quote, 0, sizeof(res->quote));
	cvm_dcap_verified_free(v);
	cvm_dcap_collateral_free(c);
	free(quote);
	return r;
}

static void print_report(const struct cvm_report *rep)
{
	for (size_t i = 0; i < rep->count; i++)
		print_message("    %s %s: %s\n", rep->steps[i].ok ? "OK  " : "FAIL", rep->steps[i].name,
		              rep->steps[i].detail);
}

static void every_vector_gives_the_stated_quote_verdict(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
		const struct expect *e = &expects[i];
		struct cvm_report rep;
		struct cvm_dcap_result res;
		size_t n = 0;
		int r;

		memset(&res, 0, sizeof(res));
		r = verify_dir(e->dir, e->at, &rep, &res);
		print_message("%s: r=%d status=%s advisories=%zu\n", e->dir, r,
		              cvm_tcb_status_name(res.tcb_status), res.advisory_count);
		if ((r == CVM_OK) != e->ok || res.tcb_status != e->status ||
		    (!e->ok && r != CVM_E_TCB && !e->trailing))
			print_report(&rep);
		assert_int_equal(r == CVM_OK, e->ok);
		assert_int_equal(res.tcb_status, e->status);
		if (!e->ok) {
			bool tcb_failed = false;

			/* gotdxguest's quote file has test bytes appended: rejected
			 * for its structure first, and its TCB level fails too. */
			assert_int_equal(r, e->trailing ? CVM_E_FORMAT : CVM_E_TCB);
			assert_non_null(rep.failed);
			assert_string_equal(rep.failed->name, e->trailing ? "quote" : "tcb_level");
			for (size_t j = 0; j < rep.count; j++)
				tcb_failed |= strcmp(rep.steps[j].name, "tcb_level") == 0 && !rep.steps[j].ok;
			assert_true(tcb_failed);
			continue;
		}
		while (e->advisories[n] != NULL)
			n++;
		assert_int_equal(res.advisory_count, n);
		for (size_t j = 0; j < n; j++)
			assert_string_equal(res.advisory_ids[j], e->advisories[j]);
	}
}

static struct cvm_cert *root_cert(void)
{
	static struct cvm_cert *root;

	if (root == NULL)
		assert_int_equal(
		    cvm_cert_parse(cvm_intel_sgx_root_ca_der, cvm_intel_sgx_root_ca_der_len, &root), CVM_OK);
	return root;
}

static uint8_t *saved_chain;
static size_t saved_chain_len;

/* flip_stride is 1 (every bit) unless CVM_TEST_FLIP_STRIDE says otherwise.
 * Under valgrind (CVM_UNDER_VALGRIND, set by scripts/valgrind-unit.sh) every
 * bit would take hours: every 61st bit there (61 is prime, so over the
 * regions every bit position is still reached); the plain and sanitizer runs
 * cover every bit. */
static size_t flip_stride(void)
{
	const char *s = getenv("CVM_TEST_FLIP_STRIDE");
	long v = s != NULL ? strtol(s, NULL, 10) : getenv("CVM_UNDER_VALGRIND") != NULL ? 61 : 1;

	return v >= 1 && v <= 1000 ? (size_t)v : 1;
}

struct region {
	const char *name;
	size_t off, len;
};

/* same_certs is true when the PEM text at p decodes to the certificates of
 * saved_chain, give or take the copy of the root at its end (PEM framing
 * carries no signed bytes; a framing flip can make OpenSSL's reader drop the
 * last certificate, which the verifier does not need: the root is built in). */
static bool same_certs(const uint8_t *p, size_t len)
{
	struct cvm_cert **a = NULL, **b = NULL;
	size_t na = 0, nb = 0;
	bool same = false;

	if (cvm_certs_parse_pem(saved_chain, saved_chain_len, &a, &na) == CVM_OK &&
	    cvm_certs_parse_pem(p, len, &b, &nb) == CVM_OK && (nb == na || nb + 1 == na)) {
		same = nb + 1 != na || cvm_cert_equal(a[na - 1], root_cert());
		for (size_t i = 0; i < nb; i++)
			same = same && cvm_cert_equal(a[i], b[i]);
	}

	cvm_certs_free(a, na);
	cvm_certs_free(b, nb);
	return same;
}

/* Flip every bit of every region the quote's signatures and hashes cover;
 * verification must reject each one. */
static void flip_quote_regions(const char *dir, int64_t at)
{
	struct cvm_dcap_collateral *c = NULL;
	struct cvm_dcap_verified *v = NULL;
	struct cvm_dcap_result res;
	struct cvm_quote q;
	char path[4096], rel[512];
	size_t qlen, stride = flip_stride(), flips = 0, framing = 0;
	uint8_t *buf;
	struct cvm_rd orig_chain;

	(void)snprintf(rel, sizeof(rel), "%s/quote.bin", dir);
	buf = vector_read(rel, &qlen);
	assert_int_equal(cvm_dcap_collateral_load_dir(vector_path(path, sizeof(path), dir), &c, NULL, 0),
	                 CVM_OK);
	assert_int_equal(cvm_dcap_collateral_authenticate(c, NULL, 0, at, NULL, &v), CVM_OK);
	assert_int_equal(cvm_quote_parse(buf, qlen, &q), CVM_OK);
	assert_int_equal(cvm_dcap_quote_authenticate(v, buf, qlen, at, NULL, &res), CVM_OK);
	orig_chain = q.pck_chain_pem;
	saved_chain = malloc(orig_chain.len);
	assert_non_null(saved_chain);
	memcpy(saved_chain, orig_chain.p, orig_chain.len);
	saved_chain_len = orig_chain.len;
	{
		const struct region regions[] = {
		    {"header and body", 0, q.signed_data.len},
		    {"quote signature", (size_t)(q.signature - buf), 0}, /* filled below */
		    {"QE report", (size_t)(q.qe_report_raw.p - buf), q.qe_report_raw.len},
		    {"QE authentication data", (size_t)(q.qe_auth_data.p - buf), q.qe_auth_data.len},
		    {"PCK chain", (size_t)(q.pck_chain_pem.p - buf), q.pck_chain_pem.len},
		};
		/* The signature, key and QE report signature are copied into q,
		 * so find them in the buffer: right after the u32 length. */
		size_t sig_off = q.signed_data.len + 4;
		const struct region fixed[] = {
		    {"quote signature", sig_off, 64},
		    {"attestation key", sig_off + 64, 64},
		    {"QE report signature", (size_t)(q.qe_report_raw.p - buf) + 384, 64},
		};

		for (size_t k = 0; k < 5 + 3; k++) {
			const struct region *rg = k < 5 ? &regions[k] : &fixed[k - 5];

			if (k == 1)
				continue;
			/* The PEM chain is long and each flip re-verifies the whole
			 * chain: every 13th bit (13 and 8 are coprime, so every bit
			 * position and every byte is hit). */
			size_t step = k == 4 ? stride * 13 : stride;

			for (size_t bit = 0; bit < rg->len * 8; bit += step) {
				size_t at_byte = rg->off + bit / 8;
				int r;

				buf[at_byte] ^= (uint8_t)(1u << (bit % 8));
				r = cvm_dcap_quote_authenticate(v, buf, qlen, at, NULL, &res);
				/* PEM framing is not signed: a flip that OpenSSL's PEM
				 * reader tolerates must leave the certificates as they
				 * were. */
				if (r == CVM_OK && !(k == 4 && same_certs(buf + rg->off, rg->len)))
					fail_msg("%s: flipping bit %zu of the %s verified", dir, bit,
					         rg->name);
				framing += r == CVM_OK;
				buf[at_byte] ^= (uint8_t)(1u << (bit % 8));
				flips++;
			}
		}
	}
	print_message(
	    "%s: %zu single-bit flips rejected, %zu that only touched PEM framing (same certificates)\n", dir,
	    flips - framing, framing);
	assert_int_equal(cvm_dcap_quote_authenticate(v, buf, qlen, at, NULL, &res), CVM_OK);
	cvm_dcap_verified_free(v);
	cvm_dcap_collateral_free(c);
	free(saved_chain);
	saved_chain = NULL;
	free(buf);
}

static void every_bit_flip_in_signed_quote_regions_is_rejected(void **state)
{
	(void)state;
	flip_quote_regions("tdx/dcapqvl-tdx-v4-uptodate", 1752919234);
	flip_quote_regions("tdx/automata-tdx-v5-alibaba", 1749945600);
	flip_quote_regions("sgx/zkdcap-sgx-v3-swhardening", 1737458686);
}

enum flip_kind { FLIP_TCB_INFO, FLIP_QE_IDENTITY, FLIP_PEM, FLIP_DER };

/* same_signed_json is true when a flipped PCS body still carries the same
 * signed bytes and signature (a flip of a hex digit's case in the signature,
 * or of whitespace outside the signed object). */
static bool same_signed_json(enum flip_kind kind, const uint8_t *orig, size_t orig_len, const uint8_t *p,
                             size_t len)
{
	struct cvm_rd s1, s2;
	uint8_t g1[64], g2[64];
	bool same = false;

	if (kind == FLIP_TCB_INFO) {
		struct cvm_tcb_info *t1 = NULL, *t2 = NULL;

		if (cvm_tcb_info_parse(orig, orig_len, &t1, &s1, g1) == CVM_OK &&
		    cvm_tcb_info_parse(p, len, &t2, &s2, g2) == CVM_OK)
			same = s1.len == s2.len && memcmp(s1.p, s2.p, s1.len) == 0 && memcmp(g1, g2, 64) == 0;
		cvm_tcb_info_free(t1);
		cvm_tcb_info_free(t2);
	} else {
		struct cvm_qe_identity *t1 = NULL, *t2 = NULL;

		if (cvm_qe_identity_parse(orig, orig_len, &t1, &s1, g1) == CVM_OK &&
		    cvm_qe_identity_parse(p, len, &t2, &s2, g2) == CVM_OK)
			same = s1.len == s2.len && memcmp(s1.p, s2.p, s1.len) == 0 && memcmp(g1, g2, 64) == 0;
		cvm_qe_identity_free(t1);
		cvm_qe_identity_free(t2);
	}
	return same;
}

static void flip_file(const char *dir, int64_t at, const char *file, enum flip_kind kind, size_t field_off,
                      size_t len_off)
{
	struct cvm_dcap_collateral *c = NULL;
	struct cvm_dcap_verified *v = NULL;
	char path[4096];
	size_t stride = flip_stride() * 7, flips = 0, harmless = 0;

	assert_int_equal(cvm_dcap_collateral_load_dir(vector_path(path, sizeof(path), dir), &c, NULL, 0),
	                 CVM_OK);
	assert_int_equal(cvm_dcap_collateral_authenticate(c, NULL, 0, at, NULL, &v), CVM_OK);
	cvm_dcap_verified_free(v);
	{
		uint8_t *p = *(uint8_t **)(void *)((char *)c + field_off);
		size_t n = *(const size_t *)(const void *)((const char *)c + len_off);

		uint8_t *orig = malloc(n);

		assert_non_null(orig);
		memcpy(orig, p, n);
		if (kind == FLIP_PEM) {
			saved_chain = orig;
			saved_chain_len = n;
		}
		for (size_t bit = 0; bit < n * 8; bit += stride) {
			bool same = false;
			int r;

			p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			v = NULL;
			r = cvm_dcap_collateral_authenticate(c, NULL, 0, at, NULL, &v);
			cvm_dcap_verified_free(v);
			/* Only a flip that leaves the signed content as it was
			 * (PEM framing, the case of a signature hex digit) may pass. */
			if (r == CVM_OK) {
				if (kind == FLIP_PEM)
					same = same_certs(p, n);
				else if (kind != FLIP_DER)
					same = same_signed_json(kind, orig, n, p, n);
				if (!same)
					fail_msg("%s/%s: flipping bit %zu verified", dir, file, bit);
				harmless++;
			}
			p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			flips++;
		}
		free(orig);
		saved_chain = NULL;
	}
	print_message(
	    "%s/%s: %zu single-bit flips (every %zu-th bit): %zu rejected, %zu left the signed content "
	    "unchanged\n",
	    dir, file, flips, stride, flips - harmless, harmless);
	cvm_dcap_collateral_free(c);
}

#define FIELD(f) offsetof(struct cvm_dcap_collateral, f)
#define FIELD_LEN(f) offsetof(struct cvm_dcap_collateral, f##_len)

static void bit_flips_in_signed_collateral_are_rejected(void **state)
{
	const char *dir = "tdx/dcapqvl-tdx-v4-uptodate";
	int64_t at = 1752919234;

	(void)state;
	flip_file(dir, at, "tcb_info.json", FLIP_TCB_INFO, FIELD(tcb_info), FIELD_LEN(tcb_info));
	flip_file(dir, at, "qe_identity.json", FLIP_QE_IDENTITY, FIELD(qe_identity), FIELD_LEN(qe_identity));
	flip_file(dir, at, "pck_crl.der", FLIP_DER, FIELD(pck_crl), FIELD_LEN(pck_crl));
	flip_file(dir, at, "root_ca_crl.der", FLIP_DER, FIELD(root_ca_crl), FIELD_LEN(root_ca_crl));
	flip_file(dir, at, "tcb_info_issuer_chain.pem", FLIP_PEM, FIELD(tcb_info_issuer_chain),
	          FIELD_LEN(tcb_info_issuer_chain));
	flip_file(dir, at, "pck_crl_issuer_chain.pem", FLIP_PEM, FIELD(pck_crl_issuer_chain),
	          FIELD_LEN(pck_crl_issuer_chain));
}

/* Collateral verified once (warm) must not carry a quote past its window. */
static void warm_collateral_is_rechecked_against_the_time(void **state)
{
	const char *dir = "tdx/dcapqvl-tdx-v4-uptodate";
	const int64_t at = 1752919234;
	struct cvm_dcap_collateral *c = NULL;
	struct cvm_dcap_verified *v = NULL;
	struct cvm_dcap_result res;
	struct cvm_report rep;
	char path[4096];
	size_t qlen;
	uint8_t *buf = vector_read("tdx/dcapqvl-tdx-v4-uptodate/quote.bin", &qlen);

	(void)state;
	assert_int_equal(cvm_dcap_collateral_load_dir(vector_path(path, sizeof(path), dir), &c, NULL, 0),
	                 CVM_OK);
	assert_int_equal(cvm_dcap_collateral_authenticate(c, NULL, 0, at, NULL, &v), CVM_OK);
	assert_int_equal(cvm_dcap_quote_authenticate(v, buf, qlen, at, NULL, &res), CVM_OK);
	assert_true(res.collateral_expiry >= at);
	cvm_report_init(&rep);
	assert_int_equal(cvm_dcap_quote_authenticate(v, buf, qlen, res.collateral_expiry + 1, &rep, &res),
	                 CVM_E_EXPIRED);
	assert_string_equal(rep.failed->name, "collateral");
	cvm_report_init(&rep);
	assert_int_equal(cvm_dcap_quote_authenticate(v, buf, qlen, 1600000000, &rep, &res), CVM_E_EXPIRED);
	/* and the cold path names the first expired item */
	cvm_dcap_verified_free(v);
	v = NULL;
	cvm_report_init(&rep);
	assert_int_equal(cvm_dcap_collateral_authenticate(c, NULL, 0, at + 40 * 86400, &rep, &v),
	                 CVM_E_EXPIRED);
	assert_non_null(strstr(cvm_report_reason(&rep), "expired"));
	cvm_dcap_collateral_free(c);
	free(buf);
}

/* The name and key-usage reads the chain checks rely on, over Intel's own
 * certificates: every TCB issuer chain of the vectors holds the TCB Signing
 * certificate (an end entity for digital signature and non-repudiation)
 * and the root (a CA for certificates and CRLs), named exactly as Intel
 * names them; a name with an attribute missing, moved or changed is not. */
static void intel_certificates_read_with_the_names_and_usages_pinned(void **state)
{
	const struct cvm_name_attr tcb[] = {{"CN", "Intel SGX TCB Signing"},
	                                    {"O", "Intel Corporation"},
	                                    {"L", "Santa Clara"},
	                                    {"ST", "CA"},
	                                    {"C", "US"}};
	const struct cvm_name_attr moved[] = {{"O", "Intel Corporation"},
	                                      {"CN", "Intel SGX TCB Signing"},
	                                      {"L", "Santa Clara"},
	                                      {"ST", "CA"},
	                                      {"C", "US"}};
	const struct cvm_name_attr other[] = {{"CN", "Intel SGX TCB Signing"},
	                                      {"O", "Intel Corporation"},
	                                      {"L", "Santa Clara"},
	                                      {"ST", "CA"},
	                                      {"C", "DE"}};
	uint32_t ku = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
		struct cvm_cert **certs = NULL;
		size_t n = 0, len = 0;
		char rel[512];
		uint8_t *pem;

		(void)snprintf(rel, sizeof(rel), "%s/tcb_info_issuer_chain.pem", expects[i].dir);
		pem = vector_read(rel, &len);
		assert_int_equal(cvm_certs_parse_pem(pem, len, &certs, &n), CVM_OK);
		assert_int_equal(n, 2);
		assert_true(cvm_cert_subject_is(certs[0], tcb, 5));
		assert_false(cvm_cert_subject_is(certs[0], tcb, 4));
		assert_false(cvm_cert_subject_is(certs[0], moved, 5));
		assert_false(cvm_cert_subject_is(certs[0], other, 5));
		assert_false(cvm_cert_subject_is(certs[1], tcb, 5));
		assert_true(cvm_cert_key_usage(certs[0], &ku));
		assert_int_equal(ku, CVM_KU_DIGITAL_SIGNATURE | CVM_KU_NON_REPUDIATION);
		assert_false(cvm_cert_claims_ca(certs[0]));
		assert_false(cvm_cert_is_ca(certs[0]));
		assert_true(cvm_cert_key_usage(certs[1], &ku));
		assert_int_equal(ku, CVM_KU_KEY_CERT_SIGN | CVM_KU_CRL_SIGN);
		assert_true(cvm_cert_claims_ca(certs[1]));
		assert_true(cvm_cert_is_ca(certs[1]));
		assert_true(cvm_cert_equal(certs[1], root_cert()));
		cvm_certs_free(certs, n);
		free(pem);
	}
}

static void builtin_root_is_intels(void **state)
{
	uint8_t h[32];
	char hex[65];

	(void)state;
	cvm_sha256(cvm_intel_sgx_root_ca_der, cvm_intel_sgx_root_ca_der_len, h);
	cvm_hex_encode(h, sizeof(h), hex);
	assert_string_equal(hex, "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
}

/* Verifications from several threads at once share the process-wide caches
 * (parsed certificates, CRLs, TCB infos, QE identities) and P-256 tables,
 * which are filled and replaced while they run: every verdict stays the
 * table's. */
#define THREADS 4
#define NVEC (sizeof(expects) / sizeof(expects[0]))

struct loaded {
	struct cvm_dcap_collateral *coll[NVEC];
	uint8_t *quote[NVEC];
	size_t quote_len[NVEC];
	size_t rounds;
	size_t wrong, done;
};

static void *verify_all(void *p)
{
	struct loaded *l = p;

	for (size_t round = 0; round < l->rounds; round++) {
		for (size_t i = 0; i < NVEC; i++) {
			const struct expect *e = &expects[i];
			struct cvm_dcap_verified *v = NULL;
			struct cvm_dcap_result res;
			struct cvm_report rep;
			int r;

			memset(&res, 0, sizeof(res));
			cvm_report_init(&rep);
			r = cvm_dcap_collateral_authenticate(l->coll[i], NULL, 0, e->at, &rep, &v);
			if (r == CVM_OK)
				r = cvm_dcap_quote_authenticate(v, l->quote[i], l->quote_len[i], e->at, &rep,
				                                &res);
			if ((r == CVM_OK) != e->ok || res.tcb_status != e->status)
				l->wrong++;
			cvm_dcap_verified_free(v);
			l->done++;
		}
	}
	return NULL;
}

static void vectors_verify_alike_from_many_threads(void **state)
{
	struct loaded l[THREADS];
	pthread_t th[THREADS];
	char path[4096], rel[512];

	(void)state;
	memset(l, 0, sizeof(l));
	for (size_t i = 0; i < NVEC; i++) {
		(void)snprintf(rel, sizeof(rel), "%s/quote.bin", expects[i].dir);
		l[0].quote[i] = vector_read(rel, &l[0].quote_len[i]);
		assert_int_equal(cvm_dcap_collateral_load_dir(vector_path(path, sizeof(path), expects[i].dir),
		                                              &l[0].coll[i], NULL, 0),
		                 CVM_OK);
	}
	for (size_t t = 0; t < THREADS; t++) {
		memcpy(l[t].coll, l[0].coll, sizeof(l[0].coll));
		memcpy(l[t].quote, l[0].quote, sizeof(l[0].quote));
		memcpy(l[t].quote_len, l[0].quote_len, sizeof(l[0].quote_len));
		/* 12 rounds: past the 8th use of each key, so tables are built
		 * while other threads verify (3 under valgrind, for time) */
		l[t].rounds = getenv("CVM_UNDER_VALGRIND") != NULL ? 3 : 12;
		assert_int_equal(pthread_create(&th[t], NULL, verify_all, &l[t]), 0);
	}
	for (size_t t = 0; t < THREADS; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		print_message("thread %zu: %zu verifications, %zu with another verdict\n", t, l[t].done,
		              l[t].wrong);
		assert_int_equal(l[t].wrong, 0);
		assert_int_equal(l[t].done, l[t].rounds * NVEC);
	}
	for (size_t i = 0; i < NVEC; i++) {
		cvm_dcap_collateral_free(l[0].coll[i]);
		free(l[0].quote[i]);
	}
}

static void collateral_folder_errors_name_the_file_and_why(void **state)
{
	struct cvm_dcap_collateral *c = NULL;
	char err[4352], dir[] = "/tmp/cvm-dcap-coll.XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	err[0] = 'x';
	assert_int_equal(cvm_dcap_collateral_load_dir(dir, &c, err, sizeof(err)), CVM_E_SYSTEM);
	assert_null(c);
	assert_non_null(strstr(err, "/tcb_info.json: No such file or directory"));
	assert_int_equal(cvm_dcap_collateral_load_dir(NULL, &c, err, sizeof(err)), CVM_E_INVAL);
	assert_non_null(strstr(err, "no collateral folder"));
	/* NULL is allowed for err */
	assert_int_equal(cvm_dcap_collateral_load_dir(dir, &c, NULL, 0), CVM_E_SYSTEM);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(builtin_root_is_intels),
	    cmocka_unit_test(collateral_folder_errors_name_the_file_and_why),
	    cmocka_unit_test(intel_certificates_read_with_the_names_and_usages_pinned),
	    cmocka_unit_test(every_vector_gives_the_stated_quote_verdict),
	    cmocka_unit_test(warm_collateral_is_rechecked_against_the_time),
	    cmocka_unit_test(every_bit_flip_in_signed_quote_regions_is_rejected),
	    cmocka_unit_test(bit_flips_in_signed_collateral_are_rejected),
	    cmocka_unit_test(vectors_verify_alike_from_many_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
