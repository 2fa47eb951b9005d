/* SEV-SNP verification by AMD's rules: every real vector at its own time
 * (chain, signature, TCB and chip ID bindings, fields), single-bit flips in
 * the signed part rejected, the built-in ARKs, and with a test PKI
 * (tests/common/testamd.c): a self-made ARK rejected unless given as the
 * root, revocation, expiry, TCB, chip ID, product and signer mismatches, a
 * Turin chain with FMC, the warm path, and the policy's SNP checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/policy.h>
#include <cvmkit/snp.h>
#include <cvmkit/verify.h>

#include "testamd.h"
#include "vectors.h"

#define NOW ((int64_t)1750000000)

struct vec {
	const char *dir;
	int64_t at;
	enum cvm_snp_signer signer;
	enum cvm_snp_product product;
	struct cvm_snp_tcb tcb; /* bootloader, tee, snp, microcode (raw unused) */
};

static const struct vec vecs[] = {
    {"snp/gosevguest-milan-vcek",
     1664000000,
     CVM_SNP_SIGNER_VCEK,
     CVM_SNP_PRODUCT_MILAN,
     {.bootloader = 2, .tee = 0, .snp = 5, .microcode = 68}},
    {"snp/trustee-milan-vcek",
     1700000000,
     CVM_SNP_SIGNER_VCEK,
     CVM_SNP_PRODUCT_MILAN,
     {.bootloader = 3, .tee = 0, .snp = 8, .microcode = 115}},
    {"snp/trustee-milan-vlek",
     1740000000,
     CVM_SNP_SIGNER_VLEK,
     CVM_SNP_PRODUCT_MILAN,
     {.bootloader = 4, .tee = 0, .snp = 24, .microcode = 217}},
    {"snp/trustee-azure-genoa-vcek",
     1740000000,
     CVM_SNP_SIGNER_VCEK,
     CVM_SNP_PRODUCT_GENOA,
     {.bootloader = 10, .tee = 0, .snp = 23, .microcode = 84}},
};
#define VEC_COUNT (sizeof(vecs) / sizeof(vecs[0]))

static size_t flip_stride(void)
{
	const char *s = getenv("CVM_TEST_FLIP_STRIDE");
	long v = s != NULL ? strtol(s, NULL, 10) : getenv("CVM_UNDER_VALGRIND") != NULL ? 61 : 1;

	return v >= 1 && v <= 1000 ? (size_t)v : 1;
}

static void print_report(const struct cvm_report *rep)
{
	for (size_t i = 0; i < rep->count; i++)
		print_message("    %s %s: %s\n", rep->steps[i].ok ? "OK  " : "FAIL", rep->steps[i].name,
		              rep->steps[i].detail);
}

static struct cvm_amd_collateral *load_vec(const struct vec *v)
{
	struct cvm_amd_collateral *c = NULL;
	char path[4096], what[64];

	assert_int_equal(
	    cvm_amd_collateral_load_dir(vector_path(path, sizeof(path), v->dir), &c, what, sizeof(what)),
	    CVM_OK);
	return c;
}

static uint8_t *load_report(const struct vec *v, size_t *len)
{
	char rel[256];

	(void)snprintf(rel, sizeof(rel), "%s/report.bin", v->dir);
	return vector_read(rel, len);
}

/* ---- real vectors ------------------------------------------------------ */

static void every_vector_verifies_at_its_time(void **state)
{
	(void)state;
	for (size_t i = 0; i < VEC_COUNT; i++) {
		const struct vec *v = &vecs[i];
		struct cvm_amd_collateral *c = load_vec(v);
		struct cvm_amd_verified *ver = NULL;
		struct cvm_amd_result res;
		struct cvm_report rep;
		size_t len;
		uint8_t *buf = load_report(v, &len);
		const struct cvm_amd_vek *info;
		int r;

		cvm_report_init(&rep);
		r = cvm_amd_chain_authenticate(c, v->signer, NULL, 0, v->at, &rep, &ver);
		if (r == CVM_OK)
			r = cvm_amd_report_authenticate(ver, buf, len, v->at, &rep, &res);
		if (r != CVM_OK)
			print_report(&rep);
		assert_int_equal(r, CVM_OK);
		assert_null(rep.failed);
		assert_true(res.authentic);
		info = cvm_amd_verified_vek(ver);
		assert_true(info->root_builtin);
		assert_int_equal(info->kind, v->signer);
		assert_int_equal(res.product, v->product);
		assert_int_equal(res.reported_tcb.bootloader, v->tcb.bootloader);
		assert_int_equal(res.reported_tcb.tee, v->tcb.tee);
		assert_int_equal(res.reported_tcb.snp, v->tcb.snp);
		assert_int_equal(res.reported_tcb.microcode, v->tcb.microcode);
		assert_int_equal(info->tcb.raw, res.reported_tcb.raw);
		if (v->signer == CVM_SNP_SIGNER_VCEK) {
			assert_int_equal(info->hwid_len, 64);
			assert_memory_equal(info->hwid, res.report.chip_id, 64);
		} else {
			assert_int_equal(info->hwid_len, 0);
			assert_string_equal(info->csp_id, "CN=cc-us-east-2.amazonaws.com");
		}
		/* the same chain is outside its window long after */
		assert_int_equal(
		    cvm_amd_report_authenticate(ver, buf, len, info->valid_until + 1, NULL, &res),
		    CVM_E_EXPIRED);
		cvm_amd_verified_free(ver);
		/* ... and cold at a time the VCEK/VLEK is not valid yet */
		cvm_report_init(&rep);
		assert_int_equal(cvm_amd_chain_authenticate(c, v->signer, NULL, 0, 1500000000, &rep, &ver),
		                 CVM_E_EXPIRED);
		assert_null(ver);
		cvm_amd_collateral_free(c);
		free(buf);
	}
}

static void every_vector_passes_the_front_door_with_a_lenient_policy(void **state)
{
	(void)state;
	for (size_t i = 0; i < VEC_COUNT; i++) {
		const struct vec *v = &vecs[i];
		struct cvm_amd_collateral *c = load_vec(v);
		struct cvm_amd_result res;
		struct cvm_report rep;
		struct cvm_policy p;
		size_t len;
		uint8_t *buf = load_report(v, &len);
		int r;

		/* No real vector ships AMD's CRL: the policies below turn the
		 * CRL requirement off, saying so, and the default policy rejects
		 * every vector for that reason first. */
		cvm_policy_init(&p);
		p.allow_debug = true;
		p.snp.vmpl_any = true;
		p.snp.require_crl = false;
		cvm_report_init(&rep);
		r = cvm_verify_snp_report(buf, len, c, NULL, 0, v->at, &p, &rep, &res);
		if (r != CVM_OK)
			print_report(&rep);
		assert_int_equal(r, CVM_OK);
		assert_true(res.authentic);
		assert_false(res.crl_checked);
		/* the default policy: no CRL */
		cvm_policy_init(&p);
		cvm_report_init(&rep);
		r = cvm_verify_snp_report(buf, len, c, NULL, 0, v->at, &p, &rep, &res);
		assert_true(res.authentic);
		assert_int_equal(r, CVM_E_POLICY);
		assert_string_equal(rep.failed->name, "policy.crl");
		/* the default policy but the CRL: gosevguest is a debug guest, the
		 * VLEK one runs at VMPL 1 */
		p.snp.require_crl = false;
		cvm_report_init(&rep);
		r = cvm_verify_snp_report(buf, len, c, NULL, 0, v->at, &p, &rep, &res);
		assert_true(res.authentic);
		if (i == 0 || i == 2) {
			assert_int_equal(r, CVM_E_POLICY);
			assert_string_equal(rep.failed->name, i == 0 ? "policy.debug" : "policy.vmpl");
		} else {
			assert_int_equal(r, CVM_OK);
		}
		cvm_amd_collateral_free(c);
		free(buf);
	}
}

/* Every bit of the signed part (and of r and s) flipped: always rejected. */
static void every_bit_flip_in_a_signed_report_is_rejected(void **state)
{
	size_t stride = flip_stride();

	(void)state;
	for (size_t i = 0; i < VEC_COUNT; i++) {
		const struct vec *v = &vecs[i];
		struct cvm_amd_collateral *c = load_vec(v);
		struct cvm_amd_verified *ver = NULL;
		struct cvm_amd_result res;
		size_t len, flips = 0;
		uint8_t *buf = load_report(v, &len);

		assert_int_equal(cvm_amd_chain_authenticate(c, v->signer, NULL, 0, v->at, NULL, &ver),
		                 CVM_OK);
		assert_int_equal(cvm_amd_report_authenticate(ver, buf, len, v->at, NULL, &res), CVM_OK);
		for (size_t bit = 0; bit < 8 * len; bit += stride) {
			size_t off = bit / 8;
			int r;

			buf[off] ^= (uint8_t)(1u << (bit % 8));
			r = cvm_amd_report_authenticate(ver, buf, len, v->at, NULL, &res);
			buf[off] ^= (uint8_t)(1u << (bit % 8));
			if (r == CVM_OK)
				fail_msg("%s: flipping bit %zu of byte 0x%zx still verifies", v->dir, bit % 8,
				         off);
			assert_false(res.authentic);
			flips++;
		}
		print_message("%s: %zu flips over %zu bytes, all rejected\n", v->dir, flips, len);
		cvm_amd_verified_free(ver);
		cvm_amd_collateral_free(c);
		free(buf);
	}
}

/* Flips in the VCEK's signed certificate body: the chain never verifies. */
static void bit_flips_in_the_vcek_break_the_chain(void **state)
{
	const struct vec *v = &vecs[1];
	struct cvm_amd_collateral *c = load_vec(v);
	size_t stride = flip_stride() * 7, flips = 0;

	(void)state;
	for (size_t bit = 0; bit < 8 * c->vcek_len; bit += stride) {
		struct cvm_amd_verified *ver = NULL;
		size_t off = bit / 8;
		int r;

		c->vcek[off] ^= (uint8_t)(1u << (bit % 8));
		r = cvm_amd_chain_authenticate(c, v->signer, NULL, 0, v->at, NULL, &ver);
		c->vcek[off] ^= (uint8_t)(1u << (bit % 8));
		if (r == CVM_OK) {
			/* A flip in the unsigned outer signature-algorithm copy or the
			 * signature itself is caught by OpenSSL; anything that parses
			 * and verifies must be byte-identical in its signed part,
			 * which a flip cannot be. */
			fail_msg("flipping bit %zu of VCEK byte %zu still verifies", bit % 8, off);
		}
		assert_null(ver);
		flips++;
	}
	print_message("%zu VCEK flips, all rejected\n", flips);
	cvm_amd_collateral_free(c);
}

static void builtin_arks_are_amds(void **state)
{
	static const char *const fp[] = {
	    "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
	    "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
	    "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
	};
	static const char *const vec_ark[] = {"snp/trustee-milan-vcek/ark.pem",
	                                      "snp/trustee-azure-genoa-vcek/ark.pem"};
	size_t n = 0;
	const struct cvm_amd_ark *arks = cvm_amd_builtin_arks(&n);

	(void)state;
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		struct cvm_cert *c = NULL;
		uint8_t h[32];
		char hex[65], subj[256], want[64];
		unsigned bits = 0;

		cvm_sha256(arks[i].der, arks[i].der_len, h);
		cvm_hex_encode(h, 32, hex);
		assert_string_equal(hex, fp[i]);
		assert_int_equal(cvm_cert_parse(arks[i].der, arks[i].der_len, &c), CVM_OK);
		assert_int_equal(cvm_cert_check_issued(c, c), CVM_OK);
		assert_true(cvm_cert_signed_rsa_pss_sha384(c));
		assert_int_equal(cvm_cert_key_type(c, &bits), CVM_KEY_RSA);
		assert_int_equal(bits, 4096);
		cvm_cert_subject(c, subj, sizeof(subj));
		(void)snprintf(want, sizeof(want), "CN = %s", arks[i].name);
		assert_non_null(strstr(subj, want));
		if (i < 2) {
			struct cvm_cert *vc = NULL;
			size_t len;
			uint8_t *pem = vector_read(vec_ark[i], &len);

			assert_int_equal(cvm_cert_parse(pem, len, &vc), CVM_OK);
			assert_true(cvm_cert_equal(c, vc));
			cvm_cert_free(vc);
			free(pem);
		}
		cvm_cert_free(c);
	}
}

/* A self-signed certificate for `key`, parsed by cvmkit. */
static struct cvm_cert *cert_for(EVP_PKEY *key)
{
	X509 *x = X509_new();
	struct cvm_cert *c = NULL;
	uint8_t *der = NULL;
	int n;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)"p384 test", -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_true(X509_sign(x, key, EVP_sha384()) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	assert_int_equal(cvm_cert_parse(der, (size_t)n, &c), CVM_OK);
	OPENSSL_free(der);
	X509_free(x);
	return c;
}

static void sign_raw(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[96])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[128];
	const uint8_t *p = der;
	size_t der_len = sizeof(der);
	ECDSA_SIG *es;
	const BIGNUM *r = NULL, *s = NULL;

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &der_len, msg, len), 1);
	es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	assert_non_null(es);
	ECDSA_SIG_get0(es, &r, &s);
	assert_int_equal(BN_bn2binpad(r, sig, 48), 48);
	assert_int_equal(BN_bn2binpad(s, sig + 48, 48), 48);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
}

/* The fixed-base P-384 verifier against OpenSSL's signer, over more keys
 * than its table cache holds (so tables are evicted and rebuilt). */
static void p384_verify_agrees_with_openssl(void **state)
{
	enum { KEYS = 6 };
	static const uint8_t order[48] = {
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
	    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73};
	EVP_PKEY *keys[KEYS];
	struct cvm_cert *certs[KEYS];
	uint8_t msg[200], sig[96];

	(void)state;
	for (size_t k = 0; k < KEYS; k++) {
		keys[k] = EVP_EC_gen("P-384");
		assert_non_null(keys[k]);
		certs[k] = cert_for(keys[k]);
	}
	for (size_t round = 0; round < 2; round++) {
		for (size_t k = 0; k < KEYS; k++) {
			size_t len = 1 + (size_t)(k * 37 + round * 11) % sizeof(msg);

			assert_int_equal(RAND_bytes(msg, (int)sizeof(msg)), 1);
			sign_raw(keys[k], msg, len, sig);
			assert_int_equal(cvm_cert_verify_p384(certs[k], msg, len, sig), CVM_OK);
			/* another key, another message, another r or s */
			assert_int_equal(cvm_cert_verify_p384(certs[(k + 1) % KEYS], msg, len, sig),
			                 CVM_E_SIGNATURE);
			msg[len - 1] ^= 0x80;
			assert_int_equal(cvm_cert_verify_p384(certs[k], msg, len, sig), CVM_E_SIGNATURE);
			msg[len - 1] ^= 0x80;
			sig[47] ^= 1;
			assert_int_equal(cvm_cert_verify_p384(certs[k], msg, len, sig), CVM_E_SIGNATURE);
			sig[47] ^= 1;
			sig[95] ^= 1;
			assert_int_equal(cvm_cert_verify_p384(certs[k], msg, len, sig), CVM_E_SIGNATURE);
			sig[95] ^= 1;
			/* r and s out of range */
			memcpy(sig + 48, order, 48);
			assert_int_equal(cvm_cert_verify_p384(certs[k], msg, len, sig), CVM_E_SIGNATURE);
			memset(sig, 0, 48);
			assert_int_equal(cvm_cert_verify_p384(certs[k], msg, len, sig), CVM_E_SIGNATURE);
		}
	}
	for (size_t k = 0; k < KEYS; k++) {
		cvm_cert_free(certs[k]);
		EVP_PKEY_free(keys[k]);
	}
	/* a P-256 key is not a VCEK's */
	{
		EVP_PKEY *k256 = EVP_EC_gen("P-256");
		struct cvm_cert *c;

		assert_non_null(k256);
		c = cert_for(k256);
		memset(sig, 1, sizeof(sig));
		assert_int_equal(cvm_cert_verify_p384(c, msg, 10, sig), CVM_E_UNSUPPORTED);
		assert_int_equal(cvm_cert_key_type(c, NULL), CVM_KEY_EC_P256);
		cvm_cert_free(c);
		EVP_PKEY_free(k256);
	}
}

/* ---- test PKI ---------------------------------------------------------- */

struct run {
	struct cvm_report rep;
	struct cvm_amd_result res;
	int r;
};

/* run_faulty builds the PKI of `o`, signs its report, injects `faults` and
 * verifies it (front door, lenient policy unless `p` is given) anchored in
 * the PKI's own ARK when `use_own_root` (else the built-in ARKs). */
static void run_faulty(const struct cvm_testamd_opts *o, unsigned faults, bool use_own_root,
                       const struct cvm_policy *p, struct run *out)
{
	struct cvm_testamd *pki = NULL;
	struct cvm_amd_collateral *c = NULL;
	uint8_t report[CVM_SNP_REPORT_LEN];
	const uint8_t *root = NULL;
	size_t root_len = 0;
	struct cvm_policy lenient;

	cvm_policy_init(&lenient);
	assert_int_equal(cvm_testamd_new(o, &pki), CVM_OK);
	assert_int_equal(cvm_testamd_report(pki, NULL, report), CVM_OK);
	assert_int_equal(cvm_testamd_collateral(pki, &c), CVM_OK);
	assert_int_equal(cvm_testamd_faults_apply(pki, faults, c, report), CVM_OK);
	if (use_own_root)
		cvm_testamd_ark_der(pki, &root, &root_len);
	cvm_report_init(&out->rep);
	out->r = cvm_verify_snp_report(report, sizeof(report), c, root, root_len, o->now,
	                               p != NULL ? p : &lenient, &out->rep, &out->res);
	cvm_amd_collateral_free(c);
	cvm_testamd_free(pki);
}

static void run_pki(const struct cvm_testamd_opts *o, bool use_own_root, const struct cvm_policy *p,
                    struct run *out)
{
	run_faulty(o, 0, use_own_root, p, out);
}

static void expect_fail(const struct run *run, int r, const char *step)
{
	if (run->r != r || run->rep.failed == NULL || strcmp(run->rep.failed->name, step) != 0) {
		print_report(&run->rep);
		fail_msg("expected %s at step %s, got %s at %s", cvm_strerror(r), step, cvm_strerror(run->r),
		         run->rep.failed != NULL ? run->rep.failed->name : "(none)");
	}
	assert_false(run->res.authentic && r != CVM_E_POLICY);
}

static void expect_ok(const struct run *run)
{
	if (run->r != CVM_OK)
		print_report(&run->rep);
	assert_int_equal(run->r, CVM_OK);
	assert_true(run->res.authentic);
}

static void self_made_ark_is_rejected_unless_it_is_the_root(void **state)
{
	static const enum cvm_snp_product products[] = {CVM_SNP_PRODUCT_MILAN, CVM_SNP_PRODUCT_GENOA,
	                                                CVM_SNP_PRODUCT_TURIN};
	struct cvm_testamd_opts o;
	struct run run;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		for (int signer = 0; signer < 2; signer++) {
			cvm_testamd_opts_init(&o, products[i], (enum cvm_snp_signer)signer, NOW);
			run_pki(&o, false, NULL, &run);
			expect_fail(&run, CVM_E_CHAIN, "ark");
			assert_non_null(
			    strstr(run.rep.failed->detail, "not one of AMD's ARKs built into cvmkit"));
			run_pki(&o, true, NULL, &run);
			expect_ok(&run);
			assert_false(run.res.root_builtin);
			assert_int_equal(run.res.product, products[i]);
		}
	}
	/* without the ARK in the collateral, the issuer name points at the
	 * real ARK-Milan, whose key did not sign the self-made ASK */
	{
		struct cvm_testamd *pki = NULL;
		struct cvm_amd_collateral *c = NULL;
		struct cvm_amd_verified *ver = NULL;
		struct cvm_report rep;

		cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
		assert_int_equal(cvm_testamd_new(&o, &pki), CVM_OK);
		assert_int_equal(cvm_testamd_collateral(pki, &c), CVM_OK);
		free(c->ark);
		c->ark = NULL;
		cvm_report_init(&rep);
		assert_int_not_equal(
		    cvm_amd_chain_authenticate(c, CVM_SNP_SIGNER_VCEK, NULL, 0, NOW, &rep, &ver), CVM_OK);
		assert_null(ver);
		assert_string_equal(rep.failed->name, "ask");
		cvm_amd_collateral_free(c);
		cvm_testamd_free(pki);
	}
}

static void a_root_that_is_not_the_chains_ark_is_rejected(void **state)
{
	struct cvm_testamd_opts o;
	struct cvm_testamd *pki = NULL;
	struct cvm_amd_collateral *c = NULL;
	struct cvm_amd_verified *ver = NULL;
	struct cvm_report rep;
	size_t n = 0;
	const struct cvm_amd_ark *arks = cvm_amd_builtin_arks(&n);

	(void)state;
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	assert_int_equal(cvm_testamd_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_testamd_collateral(pki, &c), CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(
	    cvm_amd_chain_authenticate(c, CVM_SNP_SIGNER_VCEK, arks[0].der, arks[0].der_len, NOW, &rep, &ver),
	    CVM_E_CHAIN);
	assert_string_equal(rep.failed->name, "ark");
	cvm_amd_collateral_free(c);
	cvm_testamd_free(pki);
}

static void revoked_intermediate_is_rejected(void **state)
{
	struct cvm_testamd_opts o;
	struct run run;

	(void)state;
	for (int signer = 0; signer < 2; signer++) {
		cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, (enum cvm_snp_signer)signer, NOW);
		run_pki(&o, true, NULL, &run);
		expect_ok(&run); /* the CRL lists another serial */
		o.revoke_intermediate = true;
		run_pki(&o, true, NULL, &run);
		expect_fail(&run, CVM_E_REVOKED, "crl");
		assert_non_null(strstr(run.rep.failed->detail, signer == 0 ? "the ASK" : "the ASVK"));
	}
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	run_faulty(&o, CVM_TESTAMD_FAULT_CRL_WRONG_KEY, true, NULL, &run);
	expect_fail(&run, CVM_E_SIGNATURE, "crl");
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.crl.to = NOW - 60;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_EXPIRED, "crl");
}

/* Each certificate of the chain in the role AMD gives it: a changed copy of
 * one certificate, re-signed by its own issuer so that only the change is
 * wrong, must be rejected at its step (the control cases verify). */
struct role_case {
	const char *what;
	enum cvm_snp_signer signer;
	enum cvm_mockamd_cert which;
	const char *cn, *bc, *ku; /* NULL: kept; "": removed */
	const char *step;         /* NULL: the report verifies */
};

static const struct role_case role_cases[] = {
    {"a VCEK with a key usage for signing only", CVM_SNP_SIGNER_VCEK, CVM_MOCKAMD_VEK, NULL, NULL,
     "critical,digitalSignature", NULL},
    {"a VCEK named otherwise", CVM_SNP_SIGNER_VCEK, CVM_MOCKAMD_VEK, "SEV-Milan-VCEK", NULL, NULL, "vcek"},
    {"a VCEK that is a CA", CVM_SNP_SIGNER_VCEK, CVM_MOCKAMD_VEK, NULL, "critical,CA:TRUE", NULL, "vcek"},
    {"a VCEK that may sign certificates", CVM_SNP_SIGNER_VCEK, CVM_MOCKAMD_VEK, NULL, NULL,
     "critical,digitalSignature,keyCertSign", "vcek"},
    {"a VLEK named as a VCEK", CVM_SNP_SIGNER_VLEK, CVM_MOCKAMD_VEK, "SEV-VCEK", NULL, NULL, "vlek"},
    {"an ASK without key usage", CVM_SNP_SIGNER_VCEK, CVM_MOCKAMD_INTERMEDIATE, NULL, NULL, "", "ask"},
    {"an ASVK without key usage", CVM_SNP_SIGNER_VLEK, CVM_MOCKAMD_INTERMEDIATE, NULL, NULL, "", "asvk"},
    {"an ARK that may not sign CRLs", CVM_SNP_SIGNER_VCEK, CVM_MOCKAMD_ARK, NULL, NULL,
     "critical,keyCertSign", "crl"},
};

static bool run_role_case(const struct role_case *rc)
{
	struct cvm_testamd_opts o;
	struct cvm_testamd *pki = NULL;
	struct cvm_amd_collateral *c = NULL;
	struct cvm_policy lenient;
	uint8_t report[CVM_SNP_REPORT_LEN];
	const uint8_t *root;
	size_t root_len;
	uint8_t **slot;
	size_t *slot_len;
	struct run out;
	bool vlek = rc->signer == CVM_SNP_SIGNER_VLEK, ok;

	cvm_policy_init(&lenient);
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, rc->signer, NOW);
	assert_int_equal(cvm_testamd_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_testamd_report(pki, NULL, report), CVM_OK);
	assert_int_equal(cvm_testamd_collateral(pki, &c), CVM_OK);
	switch (rc->which) {
	case CVM_MOCKAMD_VEK:
		slot = vlek ? &c->vlek : &c->vcek;
		slot_len = vlek ? &c->vlek_len : &c->vcek_len;
		break;
	case CVM_MOCKAMD_INTERMEDIATE:
		slot = vlek ? &c->asvk : &c->ask;
		slot_len = vlek ? &c->asvk_len : &c->ask_len;
		break;
	default:
		slot = &c->ark;
		slot_len = &c->ark_len;
		break;
	}
	assert_int_equal(cvm_testamd_cert_variant(pki, rc->which, rc->cn, rc->bc, rc->ku, slot, slot_len),
	                 CVM_OK);
	root = c->ark; /* the root given explicitly is the collateral's ARK, changed or not */
	root_len = c->ark_len;
	cvm_report_init(&out.rep);
	out.r = cvm_verify_snp_report(report, sizeof(report), c, root, root_len, NOW, &lenient, &out.rep,
	                              &out.res);
	if (rc->step == NULL)
		ok = out.r == CVM_OK && out.res.authentic;
	else
		ok = out.r == CVM_E_CHAIN && out.rep.failed != NULL &&
		     strcmp(out.rep.failed->name, rc->step) == 0 && !out.res.authentic;
	if (!ok)
		print_message("  FAIL: %s: %s at step %s (%s); expected %s%s\n", rc->what,
		              cvm_strerror(out.r), out.rep.failed != NULL ? out.rep.failed->name : "(none)",
		              out.rep.failed != NULL ? out.rep.failed->detail : "",
		              rc->step != NULL ? "a chain failure at step " : "acceptance",
		              rc->step != NULL ? rc->step : "");
	cvm_amd_collateral_free(c);
	cvm_testamd_free(pki);
	return ok;
}

static void chain_certificates_must_hold_amds_roles(void **state)
{
	size_t bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(role_cases) / sizeof(role_cases[0]); i++)
		bad += !run_role_case(&role_cases[i]);
	if (bad != 0)
		fail_msg("%zu of %zu changed chains did not get the verdict they must", bad,
		         sizeof(role_cases) / sizeof(role_cases[0]));
}

static void expired_certificates_are_rejected(void **state)
{
	struct cvm_testamd_opts o;
	struct run run;

	(void)state;
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_GENOA, CVM_SNP_SIGNER_VCEK, NOW);
	o.vek.to = NOW - 1;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_EXPIRED, "vcek");
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_GENOA, CVM_SNP_SIGNER_VCEK, NOW);
	o.vek.from = NOW + 10;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_EXPIRED, "vcek");
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_GENOA, CVM_SNP_SIGNER_VLEK, NOW);
	o.intermediate.to = NOW - 1;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_EXPIRED, "asvk");
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_GENOA, CVM_SNP_SIGNER_VCEK, NOW);
	o.ark.to = NOW - 1;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_EXPIRED, "ark");
}

static void tcb_mismatch_is_rejected(void **state)
{
	struct cvm_testamd_opts o;
	struct run run;
	struct cvm_snp_tcb t;

	(void)state;
	for (int k = 0; k < 5; k++) {
		cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_TURIN, CVM_SNP_SIGNER_VCEK, NOW);
		t = o.tcb;
		if (k == 0)
			t.bootloader++;
		else if (k == 1)
			t.tee++;
		else if (k == 2)
			t.snp--;
		else if (k == 3)
			t.microcode++;
		else
			t.fmc++;
		o.report.reported_tcb = cvm_snp_tcb_encode(&t, CVM_SNP_PRODUCT_TURIN);
		run_pki(&o, true, NULL, &run);
		expect_fail(&run, CVM_E_TCB, "reported_tcb");
	}
	/* a reserved byte of the layout set */
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.report.reported_tcb |= 1ull << 16;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_TCB, "reported_tcb");
}

static void chip_id_mismatch_is_rejected_unless_masked(void **state)
{
	struct cvm_testamd_opts o;
	struct run run;

	(void)state;
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.report.chip_id[63] ^= 1;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_MISMATCH, "chip_id");
	o.report.signer_info |= 2u; /* MASK_CHIP_KEY */
	memset(o.report.chip_id, 0, sizeof(o.report.chip_id));
	run_pki(&o, true, NULL, &run);
	expect_ok(&run);
	/* Turin: an 8-byte hwID; the rest of the chip ID must be zero */
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_TURIN, CVM_SNP_SIGNER_VCEK, NOW);
	run_pki(&o, true, NULL, &run);
	expect_ok(&run);
	assert_true(run.res.reported_tcb.has_fmc);
	assert_int_equal(run.res.reported_tcb.fmc, 1);
	o.report.chip_id[20] = 1;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_MISMATCH, "chip_id");
}

static void product_and_signer_mismatches_are_rejected(void **state)
{
	struct cvm_testamd_opts o;
	struct run run;

	(void)state;
	/* a Genoa CPUID under a Milan chain */
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.report.cpuid_mod_id = 0x11;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_MISMATCH, "product");
	/* an unknown CPUID */
	o.report.cpuid_fam_id = 0x17;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_UNSUPPORTED, "product");
	/* a VCEK whose product name is another product's */
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.product_name = "Genoa-B1";
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_MISMATCH, "vcek");
	/* the stepping in the name is not compared (AMD's KDS gets it wrong) */
	o.product_name = "Milan-B1";
	run_pki(&o, true, NULL, &run);
	expect_ok(&run);
	/* a report that says VLEK, with only a VCEK chain */
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.report.signer_info = (uint32_t)CVM_SNP_SIGNER_VLEK << 2;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_CHAIN, "vlek");
	/* an unsigned report */
	o.report.signer_info = (uint32_t)CVM_SNP_SIGNER_NONE << 2;
	run_pki(&o, true, NULL, &run);
	expect_fail(&run, CVM_E_SIGNATURE, "report.parse");
	/* a bad signature */
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	run_faulty(&o, CVM_TESTAMD_FAULT_REPORT_SIG, true, NULL, &run);
	expect_fail(&run, CVM_E_SIGNATURE, "report_signature");
	/* a v5 report with mitigation vectors, and a v2 one, verify */
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_GENOA, CVM_SNP_SIGNER_VCEK, NOW);
	o.report.version = 5;
	o.report.launch_mit_vector = 0x3;
	o.report.current_mit_vector = 0x7;
	run_pki(&o, true, NULL, &run);
	expect_ok(&run);
	assert_true(run.res.report.has_mit_vectors);
	assert_int_equal(run.res.report.current_mit_vector, 7);
	o.report.version = 2;
	run_pki(&o, true, NULL, &run);
	expect_ok(&run);
	assert_false(run.res.report.has_cpuid);
}

static void warm_path_reuses_the_chain(void **state)
{
	struct cvm_testamd_opts o;
	struct cvm_testamd *pki = NULL;
	struct cvm_amd_collateral *c = NULL;
	struct cvm_amd_verified *ver = NULL;
	struct cvm_amd_result res;
	struct cvm_report rep;
	struct cvm_policy p;
	uint8_t report[CVM_SNP_REPORT_LEN];
	const uint8_t *root;
	size_t root_len;

	(void)state;
	cvm_policy_init(&p);
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VLEK, NOW);
	assert_int_equal(cvm_testamd_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_testamd_collateral(pki, &c), CVM_OK);
	cvm_testamd_ark_der(pki, &root, &root_len);
	assert_int_equal(cvm_amd_chain_authenticate(c, CVM_SNP_SIGNER_VLEK, root, root_len, NOW, NULL, &ver),
	                 CVM_OK);
	for (uint32_t svn = 0; svn < 3; svn++) {
		o.report.guest_svn = svn;
		assert_int_equal(cvm_testamd_report(pki, &o.report, report), CVM_OK);
		cvm_report_init(&rep);
		assert_int_equal(cvm_verify_snp_report_warm(ver, report, sizeof(report), NOW, &p, &rep, &res),
		                 CVM_OK);
		assert_int_equal(res.report.guest_svn, svn);
	}
	/* a VCEK-signed report against the VLEK chain */
	o.report.signer_info = 0;
	assert_int_equal(cvm_testamd_report(pki, &o.report, report), CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_snp_report_warm(ver, report, sizeof(report), NOW, &p, &rep, &res),
	                 CVM_E_MISMATCH);
	assert_string_equal(rep.failed->name, "report");
	/* outside the chain's window */
	cvm_report_init(&rep);
	assert_int_equal(
	    cvm_verify_snp_report_warm(ver, report, sizeof(report), NOW + 40 * 86400, &p, &rep, &res),
	    CVM_E_EXPIRED);
	assert_string_equal(rep.failed->name, "collateral");
	cvm_amd_verified_free(ver);
	cvm_amd_collateral_free(c);
	cvm_testamd_free(pki);
}

/* As for DCAP: an ARK given explicitly that expires before the rest of the
 * chain and the CRL ends every warm use of that chain when it expires. */
static void warm_path_rejects_once_the_given_ark_expired(void **state)
{
	struct cvm_testamd_opts o;
	struct cvm_testamd *pki = NULL;
	struct cvm_amd_collateral *c = NULL;
	struct cvm_amd_verified *ver = NULL;
	struct cvm_amd_result res;
	struct cvm_report rep;
	struct cvm_policy p;
	uint8_t report[CVM_SNP_REPORT_LEN];
	const uint8_t *root;
	size_t root_len;
	const int64_t ark_end = NOW + 10 * 86400;

	(void)state;
	cvm_policy_init(&p);
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_GENOA, CVM_SNP_SIGNER_VCEK, NOW);
	o.ark.to = ark_end; /* the ASK, VCEK and CRL last longer */
	assert_int_equal(cvm_testamd_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_testamd_collateral(pki, &c), CVM_OK);
	assert_int_equal(cvm_testamd_report(pki, NULL, report), CVM_OK);
	cvm_testamd_ark_der(pki, &root, &root_len);
	cvm_report_init(&rep);
	assert_int_equal(cvm_amd_chain_authenticate(c, CVM_SNP_SIGNER_VCEK, root, root_len, NOW, &rep, &ver),
	                 CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_snp_report_warm(ver, report, sizeof(report), ark_end, &p, &rep, &res),
	                 CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_snp_report_warm(ver, report, sizeof(report), ark_end + 1, &p, &rep, &res),
	                 CVM_E_EXPIRED);
	assert_string_equal(rep.failed->name, "collateral");
	assert_false(res.authentic);
	/* the cold path says the same */
	cvm_report_init(&rep);
	assert_int_equal(
	    cvm_verify_snp_report(report, sizeof(report), c, root, root_len, ark_end + 1, &p, &rep, &res),
	    CVM_E_EXPIRED);
	assert_string_equal(rep.failed->name, "ark");
	cvm_amd_verified_free(ver);
	cvm_amd_collateral_free(c);
	cvm_testamd_free(pki);
}

/* ---- policy ------------------------------------------------------------ */

static void policy_rejects_debug_and_each_snp_setting(void **state)
{
	struct cvm_testamd_opts o;
	struct cvm_policy p;
	struct run run;
	char err[256];

	(void)state;
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.report.policy |= CVM_SNP_POLICY_DEBUG;
	cvm_policy_init(&p);
	run_pki(&o, true, &p, &run);
	expect_fail(&run, CVM_E_POLICY, "policy.debug");
	assert_true(run.res.authentic);
	p.allow_debug = true;
	run_pki(&o, true, &p, &run);
	expect_ok(&run);
	assert_int_equal(cvm_policy_parse_json("{\"snp\":{\"allow_debug\":false}}",
	                                       strlen("{\"snp\":{\"allow_debug\":false}}"), &p, err,
	                                       sizeof(err)),
	                 CVM_OK);
	run_pki(&o, true, &p, &run);
	expect_fail(&run, CVM_E_POLICY, "policy.debug");

	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.report.policy |= CVM_SNP_POLICY_MIGRATE_MA;
	cvm_policy_init(&p);
	run_pki(&o, true, &p, &run);
	expect_fail(&run, CVM_E_POLICY, "policy.migration_agent");
	p.snp.allow_migration_agent = true;
	run_pki(&o, true, &p, &run);
	expect_ok(&run);

	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	cvm_policy_init(&p);
	p.snp.allow_smt = false;
	run_pki(&o, true, &p, &run);
	expect_fail(&run, CVM_E_POLICY, "policy.smt");

	o.report.vmpl = 2;
	cvm_policy_init(&p);
	run_pki(&o, true, &p, &run);
	expect_fail(&run, CVM_E_POLICY, "policy.vmpl");
	assert_int_equal(cvm_policy_parse_json("{\"snp\":{\"vmpl\":2}}", strlen("{\"snp\":{\"vmpl\":2}}"), &p,
	                                       err, sizeof(err)),
	                 CVM_OK);
	run_pki(&o, true, &p, &run);
	expect_ok(&run);

	{
		const char *j = "{\"snp\":{\"min_tcb\":{\"bootloader\":3,\"snp\":9},\"min_guest_svn\":4}}";

		cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
		cvm_policy_init(&p);
		assert_int_equal(cvm_policy_parse_json(j, strlen(j), &p, err, sizeof(err)), CVM_OK);
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.min_tcb");
		assert_non_null(strstr(run.rep.failed->detail, "snp 8 < 9"));
		p.snp.min_snp.v = 8;
		run_pki(&o, true, &p, &run);
		expect_ok(&run);
		p.snp.min_guest_svn = 5;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.guest_svn");
	}
	{
		char j[512], hex[97];
		int n;

		cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
		cvm_hex_encode(o.report.measurement, 48, hex);
		n = snprintf(j, sizeof(j), "{\"snp\":{\"measurement\":\"%s\"}}", hex);
		cvm_policy_init(&p);
		assert_int_equal(cvm_policy_parse_json(j, (size_t)n, &p, err, sizeof(err)), CVM_OK);
		run_pki(&o, true, &p, &run);
		expect_ok(&run);
		p.snp.measurement.v[0] ^= 1;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.measurement");
		cvm_policy_init(&p);
		p.snp.host_data.set = true;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.host_data");
		cvm_policy_init(&p);
		p.report_data.set = true;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.report_data");
		cvm_policy_init(&p);
		p.snp.family_id.set = true;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.family_id");
		cvm_policy_init(&p);
		p.snp.image_id.set = true;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.image_id");
		cvm_policy_init(&p);
		p.snp.id_key_digest.set = true;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.id_key_digest");
		cvm_policy_init(&p);
		p.snp.author_key_digest.set = true;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.author_key_digest");
		/* a TDX expectation on an SNP report */
		cvm_policy_init(&p);
		p.mr_td.set = true;
		run_pki(&o, true, &p, &run);
		expect_fail(&run, CVM_E_POLICY, "policy.tee");
	}
}

/* snp.require_crl (default true): a chain whose revocation was not checked
 * against AMD's CRL is rejected by policy, cold and warm, unless the policy
 * turns the requirement off; with the CRL it is accepted. */
static void policy_requires_amds_crl_by_default(void **state)
{
	struct cvm_testamd_opts o;
	struct cvm_testamd *pki = NULL;
	struct cvm_amd_collateral *c = NULL;
	struct cvm_amd_verified *ver = NULL;
	struct cvm_amd_result res;
	struct cvm_report rep;
	struct cvm_policy p;
	uint8_t report[CVM_SNP_REPORT_LEN];
	const uint8_t *root;
	size_t root_len;
	struct run run;

	(void)state;
	cvm_policy_init(&p);
	assert_true(p.snp.require_crl);
	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_TURIN, CVM_SNP_SIGNER_VCEK, NOW);
	run_pki(&o, true, &p, &run);
	expect_ok(&run);
	assert_true(run.res.crl_checked);
	o.with_crl = false;
	run_pki(&o, true, &p, &run);
	expect_fail(&run, CVM_E_POLICY, "policy.crl");
	assert_true(run.res.authentic);
	assert_false(run.res.crl_checked);
	assert_non_null(strstr(run.rep.failed->detail, "snp.require_crl"));
	p.snp.require_crl = false;
	run_pki(&o, true, &p, &run);
	expect_ok(&run);

	/* warm: the chain authenticated without a CRL */
	cvm_policy_init(&p);
	assert_int_equal(cvm_testamd_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_testamd_collateral(pki, &c), CVM_OK);
	assert_null(c->crl);
	assert_int_equal(cvm_testamd_report(pki, NULL, report), CVM_OK);
	cvm_testamd_ark_der(pki, &root, &root_len);
	assert_int_equal(cvm_amd_chain_authenticate(c, CVM_SNP_SIGNER_VCEK, root, root_len, NOW, NULL, &ver),
	                 CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_snp_report_warm(ver, report, sizeof(report), NOW, &p, &rep, &res),
	                 CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "policy.crl");
	p.snp.require_crl = false;
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_snp_report_warm(ver, report, sizeof(report), NOW, &p, &rep, &res),
	                 CVM_OK);
	cvm_amd_verified_free(ver);
	cvm_amd_collateral_free(c);
	cvm_testamd_free(pki);
}

static void policy_file_snp_section_is_strict(void **state)
{
	static const struct {
		const char *json;
		const char *err;
	} bad[] = {
	    {"{\"snp\":{\"alow_debug\":true}}", "snp.alow_debug: unknown key"},
	    {"{\"snp\":{\"vmpl\":4}}", "snp.vmpl"},
	    {"{\"snp\":{\"vmpl\":\"none\"}}", "snp.vmpl"},
	    {"{\"snp\":{\"min_tcb\":{\"snp\":256}}}", "snp.min_tcb.snp"},
	    {"{\"snp\":{\"min_tcb\":{\"ucode\":1}}}", "snp.min_tcb.ucode: unknown key"},
	    {"{\"snp\":{\"measurement\":\"00\"}}", "snp.measurement: expected 96 hex digits"},
	    {"{\"snp\":{\"host_data\":1}}", "snp.host_data"},
	    {"{\"snp\":[]}", "snp: expected an object"},
	    {"{\"snp\":{\"require_crl\":\"no\"}}", "snp.require_crl"},
	    {"{\"snp\":{\"family_id\":\"00000000000000000000000000000000\"},\"tdx\":{\"mr_td\":"
	     "\"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	     "000\"}}",
	     "no evidence can match"},
	};
	struct cvm_policy p;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cvm_policy_init(&p);
		assert_int_equal(
		    cvm_policy_parse_json(bad[i].json, strlen(bad[i].json), &p, err, sizeof(err)),
		    CVM_E_FORMAT);
		if (strstr(err, bad[i].err) == NULL)
			fail_msg("policy %s: error '%s' does not say '%s'", bad[i].json, err, bad[i].err);
	}
	cvm_policy_init(&p);
	assert_false(p.snp.allow_debug_set);
	assert_true(p.snp.allow_smt);
	assert_int_equal(p.snp.vmpl, 0);
	assert_true(p.snp.require_crl);
	{
		const char *j = "{\"snp\":{\"vmpl\":\"any\",\"allow_smt\":false,\"min_tcb\":{\"fmc\":2},"
		                "\"require_crl\":false}}";

		assert_int_equal(cvm_policy_parse_json(j, strlen(j), &p, err, sizeof(err)), CVM_OK);
		assert_false(p.snp.require_crl);
		assert_true(p.snp.vmpl_any);
		assert_false(p.snp.allow_smt);
		assert_true(p.snp.min_fmc.set);
		assert_int_equal(p.snp.min_fmc.v, 2);
	}
}

static void collateral_folder_errors_name_the_file_and_why(void **state)
{
	struct cvm_amd_collateral *c = NULL;
	char err[4352], dir[] = "/tmp/cvm-amd-coll.XXXXXX", path[4352];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(cvm_amd_collateral_load_dir(dir, &c, err, sizeof(err)), CVM_E_FORMAT);
	assert_null(c);
	assert_non_null(strstr(err, "holds no vcek.der, vcek.pem, vlek.der or vlek.pem"));
	(void)snprintf(path, sizeof(path), "%s/vcek.der", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs("x", f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(cvm_amd_collateral_load_dir(dir, &c, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "holds no ask.pem and no cert_chain.pem"));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(collateral_folder_errors_name_the_file_and_why),
	    cmocka_unit_test(every_vector_verifies_at_its_time),
	    cmocka_unit_test(every_vector_passes_the_front_door_with_a_lenient_policy),
	    cmocka_unit_test(every_bit_flip_in_a_signed_report_is_rejected),
	    cmocka_unit_test(bit_flips_in_the_vcek_break_the_chain),
	    cmocka_unit_test(builtin_arks_are_amds),
	    cmocka_unit_test(p384_verify_agrees_with_openssl),
	    cmocka_unit_test(self_made_ark_is_rejected_unless_it_is_the_root),
	    cmocka_unit_test(a_root_that_is_not_the_chains_ark_is_rejected),
	    cmocka_unit_test(revoked_intermediate_is_rejected),
	    cmocka_unit_test(chain_certificates_must_hold_amds_roles),
	    cmocka_unit_test(expired_certificates_are_rejected),
	    cmocka_unit_test(tcb_mismatch_is_rejected),
	    cmocka_unit_test(chip_id_mismatch_is_rejected_unless_masked),
	    cmocka_unit_test(product_and_signer_mismatches_are_rejected),
	    cmocka_unit_test(warm_path_reuses_the_chain),
	    cmocka_unit_test(warm_path_rejects_once_the_given_ark_expired),
	    cmocka_unit_test(policy_rejects_debug_and_each_snp_setting),
	    cmocka_unit_test(policy_requires_amds_crl_by_default),
	    cmocka_unit_test(policy_file_snp_section_is_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
