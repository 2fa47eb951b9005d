/* Worst-case inputs for the verification entry points (docs/cost.md): each
 * case builds the largest or most expensive input the entry point's caps
 * allow, runs the entry point on it a few times, and prints one JSON line:
 *   {"case": ..., "entry": ..., "input_bytes": N, "runs": N, "cpu_ms": per run,
 *    "wall_ms": per run, "result": cvm_strerror(...)}
 * Inputs are made here (keys, signatures and CRLs with OpenSSL); only the
 * public API of cvmkit is measured.
 *
 *   bench_worst_case [--case NAME] [--runs N]
 *
 * Cases: tpm_attest_20k, tpm_quote_max_selection, policy_max, tcb_info_max,
 * crl_max, ima_match_16m, ima_sig_per_entry, ima_sig_per_entry_p384,
 * ecdsa_each, evidence_max. Exit status: 0
 * ok (every case gave the result it should), 1 a case failed, 2 usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/err.h>
#include <cvmkit/evidence.h>
#include <cvmkit/ima.h>
#include <cvmkit/policy.h>
#include <cvmkit/tpm.h>
#include <cvmkit/verify.h>

#include "crypto/crypto_lib.h"

#define PROG "bench_worst_case"

static unsigned runs_wanted = 5;

static double clock_ms(clockid_t id)
{
	struct timespec t;

	(void)clock_gettime(id, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", PROG, what);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* report prints one case's line; `ok` says whether the result was the one
 * the case expects. */
static bool report(const char *name, const char *entry, size_t bytes, unsigned runs, double cpu, double wall,
                   int r, bool ok)
{
	printf("{\"case\": \"%s\", \"entry\": \"%s\", \"input_bytes\": %zu, \"runs\": %u, \"cpu_ms\": %.4f, "
	       "\"wall_ms\": %.4f, \"result\": \"%s\", \"ok\": %s}\n",
	       name, entry, bytes, runs, cpu / runs, wall / runs, cvm_strerror(r), ok ? "true" : "false");
	(void)fflush(stdout);
	return ok;
}

/* ---- a growable byte buffer ------------------------------------------------ */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *np;

		while (cap < b->len + n)
			cap *= 2;
		np = xmalloc(cap);
		if (b->len != 0)
			memcpy(np, b->p, b->len);
		free(b->p);
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_u8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put_u16be(struct buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(b, x, 2);
}

static void put_u32be(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	put(b, x, 4);
}

static void put_u32le(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	put(b, x, 4);
}

static void put_u64be(struct buf *b, uint64_t v)
{
	put_u32be(b, (uint32_t)(v >> 32));
	put_u32be(b, (uint32_t)v);
}

static void put_hex(struct buf *b, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		char x[2] = {digits[p[i] >> 4], digits[p[i] & 15]};

		put(b, x, 2);
	}
}

/* ---- keys and signatures --------------------------------------------------- */

static EVP_PKEY *gen(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	if (k == NULL)
		die("EVP_EC_gen failed");
	return k;
}

static size_t sign_der(EVP_PKEY *k, const EVP_MD *md, const uint8_t *msg, size_t len, uint8_t *der,
                       size_t cap)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = cap;

	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, md, NULL, k) != 1 ||
	    EVP_DigestSign(ctx, der, &n, msg, len) != 1)
		die("signing failed");
	EVP_MD_CTX_free(ctx);
	return n;
}

static char *pem_pubkey(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out;
	long n;

	if (b == NULL || PEM_write_bio_PUBKEY(b, k) != 1)
		die("PEM_write_bio_PUBKEY failed");
	n = BIO_get_mem_data(b, &p);
	out = xmalloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

/* ---- TPM quotes -------------------------------------------------------------- */

/* attest_with writes a quote's TPMS_ATTEST with `count` selection entries
 * (banks cycled through `algs`, all 24 PCRs each) and `digest`. */
static void attest_with(struct buf *b, const uint8_t *nonce, size_t nonce_len, uint32_t count,
                        const uint16_t *algs, size_t nalgs, const uint8_t *digest, size_t digest_len)
{
	put_u32be(b, CVM_TPM_GENERATED_VALUE);
	put_u16be(b, CVM_TPM_ST_ATTEST_QUOTE);
	put_u16be(b, 34); /* qualifiedSigner: a SHA-256 name */
	put_u16be(b, CVM_DIGEST_SHA256);
	for (int i = 0; i < 32; i++)
		put_u8(b, (uint8_t)i);
	put_u16be(b, (uint16_t)nonce_len);
	put(b, nonce, nonce_len);
	put_u64be(b, 1000);        /* clock */
	put_u32be(b, 1);           /* resetCount */
	put_u32be(b, 0);           /* restartCount */
	put_u8(b, 1);              /* safe */
	put_u64be(b, 0x20190823u); /* firmwareVersion */
	put_u32be(b, count);
	for (uint32_t i = 0; i < count; i++) {
		put_u16be(b, algs[i % nalgs]);
		put_u8(b, 3);
		put_u8(b, 0xff);
		put_u8(b, 0xff);
		put_u8(b, 0xff);
	}
	put_u16be(b, (uint16_t)digest_len);
	put(b, digest, digest_len);
}

/* tpmt_signature_ecdsa marshals a TPMT_SIGNATURE (ECDSA, SHA-256). */
static void tpmt_signature_ecdsa(struct buf *b, const uint8_t *der, size_t der_len)
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r = NULL, *ss = NULL;
	uint8_t rb[32], sb[32];

	if (s == NULL)
		die("d2i_ECDSA_SIG failed");
	ECDSA_SIG_get0(s, &r, &ss);
	if (BN_bn2binpad(r, rb, 32) != 32 || BN_bn2binpad(ss, sb, 32) != 32)
		die("BN_bn2binpad failed");
	ECDSA_SIG_free(s);
	put_u16be(b, CVM_TPMSIG_ECDSA);
	put_u16be(b, CVM_DIGEST_SHA256);
	put_u16be(b, 32);
	put(b, rb, 32);
	put_u16be(b, 32);
	put(b, sb, 32);
}

/* dstack's verifier spent 4.66 s on a crafted 20 KB TPM quote (a selection
 * list of thousands of entries). The same shape here: 20 KB of TPMS_ATTEST,
 * 3,400 selection entries. */
static bool case_tpm_attest_20k(void)
{
	static const uint16_t algs[] = {CVM_DIGEST_SHA256};
	static const uint8_t nonce[32] = {1};
	EVP_PKEY *k = gen("P-256");
	struct buf a = {0}, s = {0};
	struct cvm_tpm_ak *ak = NULL;
	uint8_t digest[32] = {0}, der[80];
	size_t pem_len, der_len;
	char *pem = pem_pubkey(k, &pem_len);
	double c0, w0;
	int r = CVM_OK;

	if (cvm_tpm_ak_parse((const uint8_t *)pem, pem_len, &ak) != CVM_OK)
		die("cvm_tpm_ak_parse failed");
	attest_with(&a, nonce, sizeof(nonce), 3400, algs, 1, digest, sizeof(digest));
	der_len = sign_der(k, EVP_sha256(), a.p, a.len, der, sizeof(der));
	tpmt_signature_ecdsa(&s, der, der_len);
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ms(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < 1000; i++)
		r = cvm_tpm_quote_authenticate(ak, a.p, a.len, s.p, s.len, nonce, sizeof(nonce), NULL, NULL);
	report("tpm_attest_20k", "cvm_tpm_quote_authenticate", a.len, 1000,
	       clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0, clock_ms(CLOCK_MONOTONIC) - w0, r,
	       r == CVM_E_TOO_LARGE);
	cvm_tpm_ak_free(ak);
	free(pem);
	free(a.p);
	free(s.p);
	EVP_PKEY_free(k);
	return r == CVM_E_TOO_LARGE;
}

/* The most a quote within the caps makes cvmkit do: CVM_TPM_SEL_MAX
 * selection entries of all 24 PCRs over the five banks, so the composite
 * digest covers 16 x 24 values; a valid ECDSA signature; the PCR values
 * checked. */
static bool case_tpm_quote_max_selection(void)
{
	static const uint16_t algs[] = {CVM_DIGEST_SHA512, CVM_DIGEST_SHA384, CVM_DIGEST_SHA256,
	                                CVM_DIGEST_SHA1, CVM_DIGEST_SM3_256};
	static const uint8_t nonce[32] = {2};
	EVP_PKEY *k = gen("P-256");
	struct buf a = {0}, s = {0};
	struct cvm_tpm_ak *ak = NULL;
	struct cvm_tpm_pcrs *pcrs = xmalloc(sizeof(*pcrs));
	struct cvm_tpm_pcr_sel sel;
	uint8_t digest[64], der[80], v[64];
	size_t pem_len, der_len, digest_len = 0;
	char *pem = pem_pubkey(k, &pem_len);
	unsigned count = CVM_TPM_SEL_MAX, n = 200;
	double c0, w0;
	int r = CVM_OK;

	if (cvm_tpm_ak_parse((const uint8_t *)pem, pem_len, &ak) != CVM_OK)
		die("cvm_tpm_ak_parse failed");
	cvm_tpm_pcrs_init(pcrs);
	for (size_t b = 0; b < 5; b++)
		for (unsigned i = 0; i < CVM_TPM_PCR_COUNT; i++) {
			memset(v, (int)(b * 24 + i), sizeof(v));
			if (cvm_tpm_pcrs_set(pcrs, algs[b], i, v, cvm_digest_len(algs[b])) != CVM_OK)
				die("cvm_tpm_pcrs_set failed");
		}
	/* cvmkit may refuse a bank listed twice: then the most it takes is one
	 * entry per bank. */
	for (;; count = 5) {
		sel.count = count;
		for (unsigned i = 0; i < count; i++) {
			sel.banks[i].alg = algs[i % 5];
			sel.banks[i].mask = 0xffffff;
		}
		if (cvm_tpm_pcrs_digest(&sel, pcrs, CVM_DIGEST_SHA256, digest, sizeof(digest), &digest_len,
		                        NULL, 0) != CVM_OK)
			die("cvm_tpm_pcrs_digest failed");
		a.len = s.len = 0;
		attest_with(&a, nonce, sizeof(nonce), count, algs, 5, digest, digest_len);
		der_len = sign_der(k, EVP_sha256(), a.p, a.len, der, sizeof(der));
		tpmt_signature_ecdsa(&s, der, der_len);
		r = cvm_tpm_quote_authenticate_pcrs(ak, a.p, a.len, s.p, s.len, nonce, sizeof(nonce), pcrs,
		                                    NULL, NULL);
		if (r == CVM_OK || count == 5)
			break;
		fprintf(stderr, "%s: %u selection entries: %s; trying one per bank\n", PROG, count,
		        cvm_strerror(r));
	}
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ms(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < n; i++)
		r = cvm_tpm_quote_authenticate_pcrs(ak, a.p, a.len, s.p, s.len, nonce, sizeof(nonce), pcrs,
		                                    NULL, NULL);
	report(count == CVM_TPM_SEL_MAX ? "tpm_quote_max_selection" : "tpm_quote_max_selection_distinct",
	       "cvm_tpm_quote_authenticate_pcrs", a.len, n, clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0,
	       clock_ms(CLOCK_MONOTONIC) - w0, r, r == CVM_OK);
	cvm_tpm_ak_free(ak);
	free(pcrs);
	free(pem);
	free(a.p);
	free(s.p);
	EVP_PKEY_free(k);
	return r == CVM_OK;
}

/* ---- policy ---------------------------------------------------------------- */

static bool case_policy_max(void)
{
	struct buf b = {0};
	struct cvm_policy *p = xmalloc(sizeof(*p));
	char err[256];
	double c0, w0;
	int r = CVM_OK;

	puts_(&b,
	      "{\"accepted_tcb_statuses\": [\"UpToDate\", \"SWHardeningNeeded\", \"ConfigurationNeeded\", "
	      "\"ConfigurationAndSWHardeningNeeded\", \"OutOfDate\", \"OutOfDateConfigurationNeeded\"],\n"
	      "\"accepted_advisory_ids\": [");
	for (unsigned i = 0; i < CVM_POLICY_ADVISORIES_MAX; i++) {
		char id[40];

		(void)snprintf(id, sizeof(id), "%s\"INTEL-SA-%05u\"", i ? ", " : "", i);
		puts_(&b, id);
	}
	puts_(&b, "],\n\"allow_debug\": false,\n\"report_data\": \"");
	for (int i = 0; i < 128; i++)
		puts_(&b, "0");
	puts_(&b, "\"");
	while (b.len < CVM_POLICY_JSON_MAX - 2)
		puts_(&b, " ");
	puts_(&b, "}");
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ms(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < runs_wanted * 20; i++) {
		cvm_policy_init(p);
		r = cvm_policy_parse_json((const char *)b.p, b.len, p, err, sizeof(err));
	}
	if (r != CVM_OK)
		fprintf(stderr, "%s: policy_max: %s\n", PROG, err);
	report("policy_max", "cvm_policy_parse_json", b.len, runs_wanted * 20,
	       clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0, clock_ms(CLOCK_MONOTONIC) - w0, r, r == CVM_OK);
	free(p);
	free(b.p);
	return r == CVM_OK;
}

/* ---- DCAP collateral --------------------------------------------------------- */

/* A TDX TCB info (version 3, Intel's layout) with as many TCB levels as fit
 * in CVM_DCAP_JSON_MAX, each with advisories. */
static bool case_tcb_info_max(void)
{
	static const char head[] =
	    "{\"tcbInfo\":{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"2025-06-19T10:16:03Z\","
	    "\"nextUpdate\":\"2025-07-19T10:16:03Z\",\"fmspc\":\"B0C06F000000\",\"pceId\":\"0000\","
	    "\"tcbType\":0,"
	    "\"tcbEvaluationDataNumber\":17,\"tdxModule\":{\"mrsigner\":"
	    "\"00000000000000000000000000000000000000000"
	    "0000000000000000000000000000000000000000000000000000000\",\"attributes\":\"0000000000000000\","
	    "\"attributesMask\":\"FFFFFFFFFFFFFFFF\"},\"tcbLevels\":[";
	static const char level[] =
	    "{\"tcb\":{\"sgxtcbcomponents\":[{\"svn\":2},{\"svn\":2},{\"svn\":2},{\"svn\":2},{\"svn\":3},{"
	    "\"svn\":1},"
	    "{\"svn\":0},{\"svn\":5},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
	    "{\"svn\":0},"
	    "{\"svn\":0}],\"pcesvn\":%u,\"tdxtcbcomponents\":[{\"svn\":5},{\"svn\":0},{\"svn\":3},{\"svn\":0}"
	    ",{\"svn\":0},"
	    "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
	    "{\"svn\":0},"
	    "{\"svn\":0},{\"svn\":0}]},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"OutOfDate\","
	    "\"advisoryIDs\":[\"INTEL-SA-00837\",\"INTEL-SA-00960\",\"INTEL-SA-00982\",\"INTEL-SA-00986\"]}";
	struct buf b = {0};
	struct cvm_tcb_info *ti = NULL;
	struct cvm_rd span;
	uint8_t sig[64];
	unsigned levels = 0;
	double c0, w0;
	int r = CVM_OK;

	puts_(&b, head);
	for (;;) {
		char one[2048];
		int n = snprintf(one, sizeof(one), level, 65535 - levels);

		/* the closing text and the signature need about 180 bytes */
		if (n < 0 || b.len + (size_t)n + 200 > CVM_DCAP_JSON_MAX || levels == CVM_TCB_LEVELS_MAX)
			break;
		if (levels != 0)
			puts_(&b, ",");
		put(&b, one, (size_t)n);
		levels++;
	}
	puts_(&b, "]},\"signature\":\"");
	for (int i = 0; i < 128; i++)
		puts_(&b, "a");
	puts_(&b, "\"}");
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ms(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < runs_wanted * 4; i++) {
		r = cvm_tcb_info_parse(b.p, b.len, &ti, &span, sig);
		cvm_tcb_info_free(ti);
		ti = NULL;
	}
	fprintf(stderr, "%s: tcb_info_max: %u TCB levels\n", PROG, levels);
	report("tcb_info_max", "cvm_tcb_info_parse", b.len, runs_wanted * 4,
	       clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0, clock_ms(CLOCK_MONOTONIC) - w0, r, r == CVM_OK);
	free(b.p);
	return r == CVM_OK;
}

/* A PCK CRL as large as CVM_DCAP_CRL_MAX allows (about 100,000 revoked
 * serials), signed with P-256: parsed, its signature checked under its
 * issuer, and a certificate looked up in it (OpenSSL sorts the list at the
 * first lookup). */
static bool case_crl_max(void)
{
	EVP_PKEY *k = gen("P-256");
	X509 *ca = X509_new();
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	unsigned char *der = NULL, *ca_der = NULL;
	struct cvm_cert *cca = NULL;
	int der_len, ca_len, r = CVM_OK;
	unsigned count = 0;
	double c0, w0;

	if (ca == NULL || crl == NULL || t == NULL || X509_set_version(ca, 2) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(ca), "CN", MBSTRING_ASC,
	                               (const unsigned char *)"worst-case CRL issuer", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(ca, X509_get_subject_name(ca)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(ca), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(ca), 3600) == NULL || X509_set_pubkey(ca, k) != 1 ||
	    X509_sign(ca, k, EVP_sha256()) == 0)
		die("making the CRL issuer failed");
	if (X509_CRL_set_version(crl, 1) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1 || X509_gmtime_adj(t, 0) == NULL ||
	    X509_CRL_set1_lastUpdate(crl, t) != 1 || X509_CRL_set1_nextUpdate(crl, t) != 1)
		die("making the CRL failed");
	/* each entry: SEQUENCE { INTEGER (16 bytes), UTCTime } = 35 bytes */
	while ((size_t)count * 35 < CVM_DCAP_CRL_MAX - 4096) {
		X509_REVOKED *rev = X509_REVOKED_new();
		ASN1_INTEGER *serial = ASN1_INTEGER_new();
		BIGNUM *bn = BN_new();

		if (rev == NULL || serial == NULL || bn == NULL ||
		    BN_set_word(bn, 0x1000000000000000ull + count) != 1 || BN_lshift(bn, bn, 60) != 1 ||
		    BN_to_ASN1_INTEGER(bn, serial) == NULL ||
		    X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
		    X509_REVOKED_set_revocationDate(rev, t) != 1 || X509_CRL_add0_revoked(crl, rev) != 1)
			die("adding a revoked serial failed");
		ASN1_INTEGER_free(serial);
		BN_free(bn);
		count++;
	}
	if (X509_CRL_sign(crl, k, EVP_sha256()) == 0)
		die("signing the CRL failed");
	der_len = i2d_X509_CRL(crl, &der);
	ca_len = i2d_X509(ca, &ca_der);
	if (der_len <= 0 || ca_len <= 0 || (size_t)der_len > CVM_DCAP_CRL_MAX ||
	    cvm_cert_parse(ca_der, (size_t)ca_len, &cca) != CVM_OK)
		die("the CRL or its issuer does not encode");
	fprintf(stderr, "%s: crl_max: %u revoked serials\n", PROG, count);
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ms(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < runs_wanted; i++) {
		struct cvm_crl *c = NULL;

		r = cvm_crl_parse(der, (size_t)der_len, &c);
		if (r == CVM_OK)
			r = cvm_crl_check_issued(c, cca);
		if (r == CVM_OK && cvm_crl_revokes(c, cca))
			r = CVM_E_INTERNAL; /* the issuer's own serial is not listed */
		cvm_crl_free(c);
	}
	report("crl_max", "cvm_crl_parse + cvm_crl_check_issued + cvm_crl_revokes", (size_t)der_len,
	       runs_wanted, clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0, clock_ms(CLOCK_MONOTONIC) - w0, r,
	       r == CVM_OK);
	OPENSSL_free(der);
	OPENSSL_free(ca_der);
	cvm_cert_free(cca);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	X509_free(ca);
	EVP_PKEY_free(k);
	return r == CVM_OK;
}

/* ---- IMA ------------------------------------------------------------------- */

/* ima_ng_entry appends one binary ima-ng (or ima-sig with `sig`) entry for
 * path `name` with file digest `fd` (SHA-256). */
static void ima_entry(struct buf *b, const char *name, const uint8_t fd[32], const uint8_t *sig,
                      size_t sig_len)
{
	static const char algo[] = "sha256:";
	struct buf td = {0};
	uint8_t tdig[20];
	const char *tmpl = sig != NULL ? "ima-sig" : "ima-ng";

	put_u32le(&td, (uint32_t)(sizeof(algo) + 32));
	put(&td, algo, sizeof(algo)); /* with its NUL */
	put(&td, fd, 32);
	put_u32le(&td, (uint32_t)strlen(name) + 1);
	put(&td, name, strlen(name) + 1);
	if (sig != NULL) {
		put_u32le(&td, (uint32_t)sig_len);
		put(&td, sig, sig_len);
	}
	SHA1(td.p, td.len, tdig);
	put_u32le(b, 10);
	put(b, tdig, sizeof(tdig));
	put_u32le(b, (uint32_t)strlen(tmpl));
	put(b, tmpl, strlen(tmpl));
	put_u32le(b, (uint32_t)td.len);
	put(b, td.p, td.len);
	free(td.p);
}

/* A 16 MiB list (the evidence bundle's cap) of the smallest ima-ng
 * entries, against a quote of PCR 10 at a value no prefix reaches: the
 * appraisal replays every entry twice (once to check the whole list, once
 * to search for the quoted value). */
static bool case_ima_match_16m(void)
{
	struct buf b = {0};
	uint8_t fd[32] = {0}, want[32];
	struct cvm_tpm_quote q;
	struct cvm_tpm_pcrs pcrs;
	struct cvm_ima_coverage cov;
	unsigned n = 0;
	double c0, w0;
	int r = CVM_OK;

	while (b.len < CVM_EVIDENCE_IMA_MAX - 256) {
		memcpy(fd, &n, sizeof(n));
		ima_entry(&b, "/a", fd, NULL, 0);
		n++;
	}
	/* a quote (as cvm_tpm_quote_authenticate leaves it) of sha256:10 */
	memset(&q, 0, sizeof(q));
	memset(want, 0x5a, sizeof(want));
	cvm_tpm_pcrs_init(&pcrs);
	q.sig.hash = CVM_DIGEST_SHA256;
	if (cvm_tpm_pcr_sel_parse("sha256:10", &q.attest.pcr_sel) != CVM_OK ||
	    cvm_tpm_pcrs_set(&pcrs, CVM_DIGEST_SHA256, 10, want, sizeof(want)) != CVM_OK ||
	    cvm_tpm_pcrs_digest(&q.attest.pcr_sel, &pcrs, CVM_DIGEST_SHA256, q.attest.pcr_digest,
	                        sizeof(q.attest.pcr_digest), &q.attest.pcr_digest_len, NULL, 0) != CVM_OK) {
		free(b.p);
		return false;
	}
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ms(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < 3; i++)
		r = cvm_verify_ima_list(&q, NULL, b.p, b.len, NULL, NULL, NULL, &cov);
	fprintf(stderr, "%s: ima_match_16m: %u entries, %llu replayed\n", PROG, n,
	        (unsigned long long)cov.total_entries);
	report("ima_match_16m", "cvm_verify_ima_list", b.len, 3, clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0,
	       clock_ms(CLOCK_MONOTONIC) - w0, r, r == CVM_E_MISMATCH && cov.total_entries == n);
	free(b.p);
	return r == CVM_E_MISMATCH && cov.total_entries == n;
}

/* ima-sig entries, each with an ECDSA P-256 signature (v2) a keyring key
 * verifies: the cost of cvm_ima_sig_check per entry, which a caller that
 * checks every entry pays once per entry (docs/cost.md extrapolates it to
 * a 16 MiB list). */
static bool ima_sig_per_entry(const char *name, const char *curve, const EVP_MD *md)
{
	enum { N = 1000 };
	EVP_PKEY *k = gen(curve);
	struct cvm_ima_keyring *kr = NULL;
	struct cvm_pubkey *pk = NULL;
	struct cvm_ima_reader *rd = NULL;
	struct buf b = {0};
	uint8_t skid[20], fd[32], der[128], sigfield[160];
	size_t pem_len;
	char *pem = pem_pubkey(k, &pem_len);
	unsigned valid = 0, entries = 0;
	double c0, w0;
	int r = CVM_OK;

	if (cvm_ima_keyring_new(&kr) != CVM_OK ||
	    cvm_ima_keyring_add(kr, (const uint8_t *)pem, pem_len) != CVM_OK ||
	    cvm_pubkey_parse((const uint8_t *)pem, pem_len, &pk) != CVM_OK)
		die("the IMA keyring failed");
	cvm_pubkey_spki_sha1(pk, skid);
	for (unsigned i = 0; i < N; i++) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
		size_t dl = sizeof(der);

		memset(fd, 0, sizeof(fd));
		memcpy(fd, &i, sizeof(i));
		/* v2: the signature is over the file digest itself */
		if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(ctx, md) != 1 ||
		    EVP_PKEY_sign(ctx, der, &dl, fd, sizeof(fd)) != 1)
			die("signing a file digest failed");
		EVP_PKEY_CTX_free(ctx);
		sigfield[0] = 3; /* EVM_IMA_XATTR_DIGSIG */
		sigfield[1] = 2; /* version 2 */
		sigfield[2] = 4; /* HASH_ALGO_SHA256 */
		memcpy(sigfield + 3, skid + 16, 4);
		sigfield[7] = (uint8_t)(dl >> 8);
		sigfield[8] = (uint8_t)dl;
		memcpy(sigfield + 9, der, dl);
		ima_entry(&b, "/usr/bin/x", fd, sigfield, 9 + dl);
	}
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ms(CLOCK_MONOTONIC);
	if (cvm_ima_reader_new_mem(b.p, b.len, CVM_IMA_FORMAT_AUTO, &rd) != CVM_OK)
		die("cvm_ima_reader_new_mem failed");
	for (;;) {
		struct cvm_ima_entry e;
		enum cvm_ima_sig_status st;
		uint32_t keyid = 0;
		bool has = false;

		r = cvm_ima_reader_next(rd, &e, &has);
		if (r != CVM_OK || !has)
			break;
		entries++;
		r = cvm_ima_sig_check(kr, &e, &st, &keyid);
		if (r != CVM_OK)
			break;
		valid += st == CVM_IMA_SIG_VALID;
	}
	cvm_ima_reader_free(rd);
	fprintf(stderr, "%s: %s: %u entries, %u signatures valid, %zu bytes each\n", PROG, name, entries,
	        valid, b.len / N);
	report(name, "cvm_ima_reader_next + cvm_ima_sig_check (per entry)", b.len / N, entries,
	       clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0, clock_ms(CLOCK_MONOTONIC) - w0, r,
	       r == CVM_OK && valid == N);
	cvm_ima_keyring_free(kr);
	cvm_pubkey_free(pk);
	free(pem);
	free(b.p);
	EVP_PKEY_free(k);
	return r == CVM_OK && valid == N;
}

static bool case_ima_sig_per_entry(void)
{
	return ima_sig_per_entry("ima_sig_per_entry_p256", "P-256", EVP_sha256());
}

/* The same with a P-384 key over the same SHA-256 file digests: OpenSSL 3.0
 * has no optimised P-384, so each check costs about ten times more. */
static bool case_ima_sig_per_entry_p384(void)
{
	return ima_sig_per_entry("ima_sig_per_entry_p384", "P-384", EVP_sha256());
}

/* ---- ECDSA, one verification ------------------------------------------------- */

/* p384_cert wraps a P-384 key in a certificate cvmkit parses. */
static struct cvm_cert *p384_cert(EVP_PKEY *k)
{
	X509 *x = X509_new();
	struct cvm_cert *c = NULL;
	unsigned char *der = NULL;
	int n;

	if (x == NULL || X509_set_version(x, 2) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                               (const unsigned char *)"p384", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 60) == NULL || X509_set_pubkey(x, k) != 1 ||
	    X509_sign(x, k, EVP_sha384()) == 0)
		die("making a P-384 certificate failed");
	n = i2d_X509(x, &der);
	if (n <= 0 || cvm_cert_parse(der, (size_t)n, &c) != CVM_OK)
		die("parsing a P-384 certificate failed");
	OPENSSL_free(der);
	X509_free(x);
	return c;
}

static void raw_rs(const uint8_t *der, size_t der_len, size_t n, uint8_t *rs)
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r = NULL, *ss = NULL;

	if (s == NULL)
		die("d2i_ECDSA_SIG failed");
	ECDSA_SIG_get0(s, &r, &ss);
	if (BN_bn2binpad(r, rs, (int)n) != (int)n || BN_bn2binpad(ss, rs + n, (int)n) != (int)n)
		die("BN_bn2binpad failed");
	ECDSA_SIG_free(s);
}

/* One ECDSA verification under each path: P-256 plain and kept (with its
 * table), P-384 plain and kept, and what building a table costs (the 8th
 * kept use). Every verification has this fixed cost whatever the input. */
static bool case_ecdsa_each(void)
{
	static const uint8_t msg[] = "a report or quote body";
	EVP_PKEY *k2 = gen("P-256"), *k3 = gen("P-384");
	struct cvm_p256_key *pk = NULL;
	struct cvm_cert *c3 = p384_cert(k3);
	uint8_t der[128], xy[65], rs2[64], rs3[96];
	size_t der_len, xy_len = 0, n = 400;
	bool ok = true;
	double c0, w0, b0;
	int r = CVM_OK;

	if (EVP_PKEY_get_octet_string_param(k2, "encoded-pub-key", xy, sizeof(xy), &xy_len) != 1 ||
	    xy_len != 65 || cvm_p256_key_new(xy + 1, &pk) != CVM_OK)
		die("the P-256 key failed");
	der_len = sign_der(k2, EVP_sha256(), msg, sizeof(msg), der, sizeof(der));
	raw_rs(der, der_len, 32, rs2);
	der_len = sign_der(k3, EVP_sha384(), msg, sizeof(msg), der, sizeof(der));
	raw_rs(der, der_len, 48, rs3);
	for (int kind = 0; kind < 4; kind++) {
		static const char *const names[] = {"ecdsa_p256_plain", "ecdsa_p256_kept", "ecdsa_p384_plain",
		                                    "ecdsa_p384_kept"};
		static const char *const entries[] = {"cvm_p256_verify", "cvm_p256_verify_kept",
		                                      "cvm_cert_verify_p384", "cvm_cert_verify_p384_kept"};
		double build = 0;

		/* kept: the first 8 uses (the 8th builds the table) are timed apart */
		if (kind == 1 || kind == 3) {
			b0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
			for (int i = 0; i < 8; i++)
				r = kind == 1 ? cvm_p256_verify_kept(pk, msg, sizeof(msg), rs2)
				              : cvm_cert_verify_p384_kept(c3, msg, sizeof(msg), rs3);
			build = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - b0;
		}
		c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
		w0 = clock_ms(CLOCK_MONOTONIC);
		for (size_t i = 0; i < n; i++) {
			switch (kind) {
			case 0:
				r = cvm_p256_verify(pk, msg, sizeof(msg), rs2);
				break;
			case 1:
				r = cvm_p256_verify_kept(pk, msg, sizeof(msg), rs2);
				break;
			case 2:
				r = cvm_cert_verify_p384(c3, msg, sizeof(msg), rs3);
				break;
			default:
				r = cvm_cert_verify_p384_kept(c3, msg, sizeof(msg), rs3);
				break;
			}
		}
		ok &= report(names[kind], entries[kind], sizeof(msg), (unsigned)n,
		             clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0, clock_ms(CLOCK_MONOTONIC) - w0, r,
		             r == CVM_OK);
		if (kind == 1 || kind == 3)
			fprintf(stderr,
			        "%s: %s: the first 8 kept uses (the 8th builds the table, %s build) took "
			        "%.1f ms CPU\n",
			        PROG, names[kind], cvm_ecdsa_fast() ? "fast" : "EVP", build);
	}
	cvm_p256_key_free(pk);
	cvm_cert_free(c3);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	return ok;
}

/* ---- the evidence bundle ------------------------------------------------------ */

/* A bundle as large as CVM_EVIDENCE_JSON_MAX: the IMA list at its cap
 * (16 MiB, hex) and CVM_EVIDENCE_EVENTS_MAX runtime events whose payloads
 * take the rest. cvm_evidence_parse reads all of it before any signature
 * is checked. */
static bool case_evidence_max(void)
{
	struct buf b = {0};
	struct cvm_evidence *ev = NULL;
	uint8_t *ima = xmalloc(CVM_EVIDENCE_IMA_MAX), d[48] = {0};
	size_t payload;
	char why[256];
	double c0, w0;
	int r = CVM_OK;

	memset(ima, 0x11, CVM_EVIDENCE_IMA_MAX);
	/* what is left for the events, in payload bytes (hex: two characters each) */
	payload =
	    (CVM_EVIDENCE_JSON_MAX - 2 * CVM_EVIDENCE_IMA_MAX - 4096) / CVM_EVIDENCE_EVENTS_MAX / 2 - 200;
	puts_(&b, "{\"version\":1,\"platform\":\"tdx\",\"simulated\":false,\"nonce\":"
	          "\"000102030405060708090a0b0c0d0e0f\","
	          "\"quote\":\"");
	for (int i = 0; i < 5000; i++)
		puts_(&b, "00");
	puts_(&b, "\",\"event_log\":[");
	for (unsigned i = 0; i < CVM_EVIDENCE_EVENTS_MAX; i++) {
		uint8_t *p = xmalloc(payload);

		memset(p, (int)i, payload);
		puts_(&b, i ? ",{\"imr\":3,\"event_type\":134217729,\"digest\":\""
		            : "{\"imr\":3,\"event_type\":134217729,\"digest\":\"");
		put_hex(&b, d, sizeof(d));
		puts_(&b, "\",\"event\":\"app-event\",\"event_payload\":\"");
		put_hex(&b, p, payload);
		puts_(&b, "\"}");
		free(p);
	}
	puts_(&b, "],\"ima_log\":\"");
	put_hex(&b, ima, CVM_EVIDENCE_IMA_MAX);
	puts_(&b, "\"}");
	c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ms(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < 2; i++) {
		r = cvm_evidence_parse(b.p, b.len, &ev, why, sizeof(why));
		cvm_evidence_free(ev);
		ev = NULL;
	}
	if (r != CVM_OK)
		fprintf(stderr, "%s: evidence_max: %s\n", PROG, why);
	report("evidence_max", "cvm_evidence_parse", b.len, 2, clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0,
	       clock_ms(CLOCK_MONOTONIC) - w0, r, r == CVM_OK && b.len <= CVM_EVIDENCE_JSON_MAX);
	free(ima);
	free(b.p);
	return r == CVM_OK;
}

static const struct {
	const char *name;
	bool (*run)(void);
} cases[] = {
    {"tpm_attest_20k", case_tpm_attest_20k},
    {"tpm_quote_max_selection", case_tpm_quote_max_selection},
    {"policy_max", case_policy_max},
    {"tcb_info_max", case_tcb_info_max},
    {"crl_max", case_crl_max},
    {"ima_match_16m", case_ima_match_16m},
    {"ima_sig_per_entry", case_ima_sig_per_entry},
    {"ima_sig_per_entry_p384", case_ima_sig_per_entry_p384},
    {"ecdsa_each", case_ecdsa_each},
    {"evidence_max", case_evidence_max},
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"case", required_argument, NULL, 'c'},
	    {"runs", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *only = NULL;
	bool all_ok = true, found = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			only = optarg;
			break;
		case 'n': {
			char *end = NULL;
			unsigned long v = strtoul(optarg, &end, 10);

			if (end == optarg || *end != '\0' || v == 0 || v > 1000) {
				fprintf(stderr, "%s: --runs is 1 to 1000\n", PROG);
				return 2;
			}
			runs_wanted = (unsigned)v;
			break;
		}
		case 'h':
			printf("usage: %s [--case NAME] [--runs N]\n", PROG);
			return 0;
		default:
			fprintf(stderr, "usage: %s [--case NAME] [--runs N]\n", PROG);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: %s [--case NAME] [--runs N]\n", PROG);
		return 2;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (only != NULL && strcmp(only, cases[i].name) != 0)
			continue;
		found = true;
		all_ok &= cases[i].run();
	}
	if (!found) {
		fprintf(stderr, "%s: no case named %s\n", PROG, only);
		return 2;
	}
	return all_ok ? 0 : 1;
}
