/* lib/crypto's issuing interface (crypto/crypto_lib.h), which the simulator's
 * mock PKIs and the tests' broken variants are made with: keys of each kind,
 * raw signatures checked by the library's verifiers and by OpenSSL,
 * certificates and CRLs that carry exactly what they were told (wrong
 * signers included), edits, PEM, the extension checks behind the simulated
 * marker, and key files no one else may read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>

#include "crypto/crypto_lib.h"
#include "sim/mock_int.h"
#include "sim/mockpki_lib.h"

#define NOW ((int64_t)1767225600) /* 2026-01-01T00:00:00Z */
#define YEAR ((int64_t)365 * 24 * 3600)
#define OID_TEST "1.3.6.1.4.1.55555.1.2"

/* ---- helpers ---------------------------------------------------------------- */

static struct cvm_privkey *gen(enum cvm_privkey_type type)
{
	struct cvm_privkey *k = NULL;

	assert_int_equal(cvm_privkey_generate(type, CVM_PRIVKEY_RSA_BITS_MIN, &k), CVM_OK);
	assert_non_null(k);
	assert_int_equal(cvm_privkey_type(k), type);
	return k;
}

static enum cvm_sig_alg alg_of(const struct cvm_privkey *k)
{
	return cvm_privkey_type(k) == CVM_PRIVKEY_RSA ? CVM_SIG_RSA_PSS_SHA384 : CVM_SIG_ECDSA_SHA256;
}

/* ca issues a self-signed CA certificate "CN=<cn>" for `k`. */
static struct cvm_cert *ca(struct cvm_privkey *k, const char *cn)
{
	const struct cvm_name_attr name[] = {{"CN", cn}, {"O", "cvmkit tests"}, {"C", "US"}};
	const struct cvm_issue_ext exts[] = {
	    {.oid = "subjectKeyIdentifier", .conf = "hash"},
	    {.oid = "keyUsage", .conf = "critical,keyCertSign,cRLSign"},
	    {.oid = "basicConstraints", .conf = "critical,CA:TRUE"},
	};
	const struct cvm_issue_cert spec = {
	    .subject = name,
	    .subject_count = 3,
	    .serial = 1,
	    .not_before = NOW - YEAR,
	    .not_after = NOW + YEAR,
	    .exts = exts,
	    .ext_count = 3,
	    .sig_alg = alg_of(k),
	};
	struct cvm_cert *c = NULL;

	assert_int_equal(cvm_issue_cert(&spec, k, NULL, k, &c), CVM_OK);
	return c;
}

/* leaf issues "CN=<cn>" for `k` with serial `serial` under `issuer`, signed
 * by `signer`, with a digital-signature key usage and an extension OID_TEST
 * holding DER NULL. */
static struct cvm_cert *leaf(struct cvm_privkey *k, const char *cn, uint64_t serial,
                             const struct cvm_cert *issuer, struct cvm_privkey *signer)
{
	static const uint8_t der_null[] = {0x05, 0x00};
	const struct cvm_name_attr name[] = {{"CN", cn}};
	const struct cvm_issue_ext exts[] = {
	    {.oid = "authorityKeyIdentifier", .conf = "keyid:always"},
	    {.oid = "keyUsage", .conf = "critical,digitalSignature"},
	    {.oid = OID_TEST, .critical = false, .der = der_null, .der_len = sizeof(der_null)},
	};
	const struct cvm_issue_cert spec = {
	    .subject = name,
	    .subject_count = 1,
	    .serial = serial,
	    .not_before = NOW - 60,
	    .not_after = NOW + 60,
	    .exts = exts,
	    .ext_count = 3,
	    .sig_alg = alg_of(signer),
	};
	struct cvm_cert *c = NULL;

	assert_int_equal(cvm_issue_cert(&spec, k, issuer, signer, &c), CVM_OK);
	return c;
}

/* OpenSSL's own RSASSA-PSS (SHA-384, MGF1 SHA-384, 48-byte salt) check of
 * `sig` under the key of certificate `c`. */
static bool openssl_pss_ok(const struct cvm_cert *c, const uint8_t *msg, size_t len, const uint8_t *sig,
                           size_t sig_len)
{
	const uint8_t *der, *p;
	size_t der_len;
	X509 *x;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok;

	cvm_cert_der(c, &der, &der_len);
	p = der;
	x = d2i_X509(NULL, &p, (long)der_len);
	assert_non_null(x);
	assert_non_null(ctx);
	ok = EVP_DigestVerifyInit(ctx, &pctx, EVP_sha384(), NULL, X509_get0_pubkey(x)) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) == 1 &&
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) == 1 &&
	     EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	X509_free(x);
	return ok;
}

static char *tmpdir(void)
{
	static char dir[64];

	(void)snprintf(dir, sizeof(dir), "/tmp/cvm-test-issue-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void path_of(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

/* ---- keys and raw signatures ------------------------------------------------- */

static void keys_of_each_kind_are_made_and_bad_arguments_refused(void **state)
{
	struct cvm_privkey *k = NULL;
	uint8_t xy[64];

	(void)state;
	k = gen(CVM_PRIVKEY_P256);
	assert_int_equal(cvm_privkey_p256_public(k, xy), CVM_OK);
	assert_ptr_equal(cvm_privkey_dup(k), k);
	cvm_privkey_free(k); /* the second reference */
	assert_int_equal(cvm_privkey_type(k), CVM_PRIVKEY_P256);
	cvm_privkey_free(k);
	k = gen(CVM_PRIVKEY_P384);
	assert_int_equal(cvm_privkey_p256_public(k, xy), CVM_E_INVAL);
	cvm_privkey_free(k);
	cvm_privkey_free(NULL);
	assert_null(cvm_privkey_dup(NULL));

	assert_int_equal(cvm_privkey_generate(CVM_PRIVKEY_RSA, 1024, &k), CVM_E_INVAL);
	assert_null(k);
	assert_int_equal(cvm_privkey_generate(CVM_PRIVKEY_RSA, 8192, &k), CVM_E_INVAL);
	assert_int_equal(cvm_privkey_generate((enum cvm_privkey_type)0, 0, &k), CVM_E_INVAL);
	assert_int_equal(cvm_privkey_generate((enum cvm_privkey_type)99, 0, &k), CVM_E_INVAL);
	assert_null(k);
}

static void raw_signatures_verify_under_the_certified_key_and_nowhere_else(void **state)
{
	static const uint8_t msg[] = "what an Intel QE or an AMD firmware signs";
	struct cvm_privkey *p256 = gen(CVM_PRIVKEY_P256), *p384 = gen(CVM_PRIVKEY_P384);
	struct cvm_privkey *rsa = gen(CVM_PRIVKEY_RSA);
	struct cvm_cert *c256 = ca(p256, "P-256"), *crsa = ca(rsa, "RSA");
	struct cvm_cert *v384 = leaf(p384, "P-384", 7, crsa, rsa);
	uint8_t sig[512];
	size_t len = 0;

	(void)state;

	assert_int_equal(
	    cvm_privkey_sign(p256, CVM_SIG_ECDSA_SHA256, msg, sizeof(msg), sig, sizeof(sig), &len), CVM_OK);
	assert_int_equal(len, 64);
	assert_int_equal(cvm_cert_verify_p256(c256, msg, sizeof(msg), sig), CVM_OK);
	sig[40] ^= 1;
	assert_int_equal(cvm_cert_verify_p256(c256, msg, sizeof(msg), sig), CVM_E_SIGNATURE);
	assert_int_equal(cvm_mock_sign_p256(p256, msg, sizeof(msg), sig), CVM_OK);
	assert_int_equal(cvm_cert_verify_p256(c256, msg, sizeof(msg), sig), CVM_OK);
	assert_int_equal(cvm_cert_verify_p256(c256, msg, sizeof(msg) - 1, sig), CVM_E_SIGNATURE);

	assert_int_equal(
	    cvm_privkey_sign(p384, CVM_SIG_ECDSA_SHA384, msg, sizeof(msg), sig, sizeof(sig), &len), CVM_OK);
	assert_int_equal(len, 96);
	assert_int_equal(cvm_cert_verify_p384(v384, msg, sizeof(msg), sig), CVM_OK);
	sig[95] ^= 0x80;
	assert_int_equal(cvm_cert_verify_p384(v384, msg, sizeof(msg), sig), CVM_E_SIGNATURE);

	assert_int_equal(
	    cvm_privkey_sign(rsa, CVM_SIG_RSA_PSS_SHA384, msg, sizeof(msg), sig, sizeof(sig), &len), CVM_OK);
	assert_int_equal(len, CVM_PRIVKEY_RSA_BITS_MIN / 8);
	assert_true(openssl_pss_ok(crsa, msg, sizeof(msg), sig, len));
	sig[0] ^= 1;
	assert_false(openssl_pss_ok(crsa, msg, sizeof(msg), sig, len));

	/* an algorithm not for the key, a buffer too small, a message with no bytes */
	assert_int_equal(
	    cvm_privkey_sign(p256, CVM_SIG_RSA_PSS_SHA384, msg, sizeof(msg), sig, sizeof(sig), &len),
	    CVM_E_INVAL);
	assert_int_equal(
	    cvm_privkey_sign(rsa, CVM_SIG_ECDSA_SHA256, msg, sizeof(msg), sig, sizeof(sig), &len),
	    CVM_E_INVAL);
	assert_int_equal(
	    cvm_privkey_sign(p384, (enum cvm_sig_alg)0, msg, sizeof(msg), sig, sizeof(sig), &len),
	    CVM_E_INVAL);
	assert_int_equal(cvm_privkey_sign(p384, CVM_SIG_ECDSA_SHA384, msg, sizeof(msg), sig, 95, &len),
	                 CVM_E_INVAL);
	assert_int_equal(cvm_privkey_sign(rsa, CVM_SIG_RSA_PSS_SHA384, msg, sizeof(msg), sig, 255, &len),
	                 CVM_E_INVAL);
	assert_int_equal(cvm_privkey_sign(p256, CVM_SIG_ECDSA_SHA256, NULL, 0, sig, 64, &len), CVM_OK);
	assert_int_equal(cvm_cert_verify_p256(c256, NULL, 0, sig), CVM_OK);
	assert_int_equal(cvm_mock_sign_p256(p384, msg, sizeof(msg), sig), CVM_E_INVAL);

	cvm_cert_free(v384);
	cvm_cert_free(crsa);
	cvm_cert_free(c256);
	cvm_privkey_free(rsa);
	cvm_privkey_free(p384);
	cvm_privkey_free(p256);
}

/* ---- certificates -------------------------------------------------------------- */

static void an_issued_certificate_carries_what_its_spec_says(void **state)
{
	struct cvm_privkey *root_key = gen(CVM_PRIVKEY_RSA), *k = gen(CVM_PRIVKEY_P384);
	struct cvm_cert *root = ca(root_key, "Test Root"),
	                *c = leaf(k, "Test Leaf", 0x5eed000000000001ull, root, root_key);
	const struct cvm_name_attr root_name[] = {{"CN", "Test Root"}, {"O", "cvmkit tests"}, {"C", "US"}};
	const struct cvm_name_attr leaf_name[] = {{"CN", "Test Leaf"}};
	char buf[256];
	struct cvm_rd ext;
	uint32_t ku = 0;
	unsigned bits = 0;

	(void)state;
	assert_true(cvm_cert_subject_is(root, root_name, 3));
	assert_true(cvm_cert_subject_is(c, leaf_name, 1));
	assert_false(cvm_cert_subject_is(c, root_name, 3));
	cvm_cert_issuer(c, buf, sizeof(buf));
	assert_non_null(strstr(buf, "CN = Test Root"));
	cvm_cert_serial(c, buf, sizeof(buf));
	assert_string_equal(buf, "5EED000000000001");
	assert_int_equal(cvm_cert_not_before(c), NOW - 60);
	assert_int_equal(cvm_cert_not_after(c), NOW + 60);
	assert_true(cvm_cert_is_ca(root));
	assert_false(cvm_cert_is_ca(c));
	assert_true(cvm_cert_key_usage(c, &ku));
	assert_int_equal(ku, CVM_KU_DIGITAL_SIGNATURE);
	assert_true(cvm_cert_key_usage(root, &ku));
	assert_int_equal(ku, CVM_KU_KEY_CERT_SIGN | CVM_KU_CRL_SIGN);
	assert_int_equal(cvm_cert_ext(c, OID_TEST, &ext), CVM_OK);
	assert_int_equal(ext.len, 2);
	assert_int_equal(ext.p[0], 0x05);
	assert_int_equal(cvm_cert_key_type(c, &bits), CVM_KEY_EC_P384);
	assert_int_equal(cvm_cert_key_type(root, &bits), CVM_KEY_RSA);
	assert_int_equal(bits, CVM_PRIVKEY_RSA_BITS_MIN);
	assert_true(cvm_cert_signed_rsa_pss_sha384(c));
	assert_true(cvm_cert_signed_rsa_pss_sha384(root));
	assert_true(cvm_privkey_matches_cert(k, c));
	assert_false(cvm_privkey_matches_cert(root_key, c));
	assert_int_equal(cvm_cert_check_issued(c, root), CVM_OK);
	assert_int_equal(cvm_cert_check_issued(root, root), CVM_OK);
	assert_int_equal(cvm_cert_check_issued(c, c), CVM_E_CHAIN);

	cvm_cert_free(c);
	cvm_cert_free(root);
	cvm_privkey_free(k);
	cvm_privkey_free(root_key);
}

static void a_certificate_signed_by_a_key_its_issuer_does_not_hold_fails_its_check(void **state)
{
	struct cvm_privkey *root_key = gen(CVM_PRIVKEY_P256), *other = gen(CVM_PRIVKEY_P256);
	struct cvm_privkey *k = gen(CVM_PRIVKEY_P256);
	struct cvm_cert *root = ca(root_key, "Root"), *good = leaf(k, "Leaf", 2, root, root_key);
	struct cvm_cert *forged = leaf(k, "Leaf", 2, root, other);

	(void)state;
	assert_int_equal(cvm_cert_check_issued(good, root), CVM_OK);
	/* the name and the key identifier say "root", the signature does not */
	assert_int_equal(cvm_cert_check_issued(forged, root), CVM_E_SIGNATURE);
	cvm_cert_free(forged);
	cvm_cert_free(good);
	cvm_cert_free(root);
	cvm_privkey_free(k);
	cvm_privkey_free(other);
	cvm_privkey_free(root_key);
}

static void a_bad_certificate_spec_is_refused(void **state)
{
	static const uint8_t der_null[] = {0x05, 0x00};
	const struct cvm_name_attr name[] = {{"CN", "x"}};
	const struct cvm_name_attr unknown[] = {{"NOT-AN-ATTRIBUTE", "x"}};
	const struct cvm_issue_ext bad_exts[][1] = {
	    {{.oid = "basicConstraints", .conf = "critical,CA:TRUE", .der = der_null, .der_len = 2}},
	    {{.oid = "basicConstraints"}},
	    {{.oid = NULL, .conf = "critical,CA:TRUE"}},
	    {{.oid = "notAnExtension", .conf = "critical,CA:TRUE"}},
	    {{.oid = "basicConstraints", .conf = "critical,CA:MAYBE"}},
	    {{.oid = "1.2.x.4", .der = der_null, .der_len = 2}},
	    {{.oid = OID_TEST, .der = NULL, .der_len = 2, .conf = NULL}},
	};
	struct cvm_issue_cert spec = {
	    .subject = name,
	    .subject_count = 1,
	    .serial = 1,
	    .not_before = NOW,
	    .not_after = NOW + 1,
	    .sig_alg = CVM_SIG_ECDSA_SHA256,
	};
	struct cvm_privkey *k = gen(CVM_PRIVKEY_P256);
	struct cvm_cert *c = NULL;

	(void)state;
	assert_int_equal(cvm_issue_cert(&spec, k, NULL, k, &c), CVM_OK);
	cvm_cert_free(c);
	for (size_t i = 0; i < sizeof(bad_exts) / sizeof(bad_exts[0]); i++) {
		spec.exts = bad_exts[i];
		spec.ext_count = 1;
		assert_int_equal(cvm_issue_cert(&spec, k, NULL, k, &c), CVM_E_INVAL);
		assert_null(c);
	}
	spec.exts = NULL;
	spec.ext_count = 1;
	assert_int_equal(cvm_issue_cert(&spec, k, NULL, k, &c), CVM_E_INVAL);
	spec.ext_count = 0;
	spec.sig_alg = CVM_SIG_RSA_PSS_SHA384; /* not an EC key's */
	assert_int_equal(cvm_issue_cert(&spec, k, NULL, k, &c), CVM_E_INVAL);
	spec.sig_alg = CVM_SIG_ECDSA_SHA256;
	spec.subject_count = 0;
	assert_int_equal(cvm_issue_cert(&spec, k, NULL, k, &c), CVM_E_INVAL);
	spec.subject_count = CVM_ISSUE_NAME_MAX + 1;
	assert_int_equal(cvm_issue_cert(&spec, k, NULL, k, &c), CVM_E_INVAL);
	spec.subject = unknown;
	spec.subject_count = 1;
	assert_int_equal(cvm_issue_cert(&spec, k, NULL, k, &c), CVM_E_INVAL);
	assert_null(c);
	cvm_privkey_free(k);
}

static void an_edit_changes_what_it_names_and_keeps_the_rest(void **state)
{
	struct cvm_privkey *root_key = gen(CVM_PRIVKEY_RSA), *k = gen(CVM_PRIVKEY_P384);
	struct cvm_privkey *other = gen(CVM_PRIVKEY_RSA);
	struct cvm_cert *root = ca(root_key, "Root"), *c = leaf(k, "Leaf", 9, root, root_key);
	struct cvm_cert *e1 = NULL, *e2 = NULL;
	const struct cvm_name_attr renamed[] = {{"CN", "Renamed"}};
	const struct cvm_issue_ext changes[] = {
	    {.oid = "keyUsage"},                                     /* removed */
	    {.oid = "basicConstraints", .conf = "critical,CA:TRUE"}, /* added */
	};
	struct cvm_issue_edit e = {.subject = renamed,
	                           .subject_count = 1,
	                           .exts = changes,
	                           .ext_count = 2,
	                           .sig_alg = CVM_SIG_RSA_PSS_SHA384};
	char buf[256];
	struct cvm_rd ext;
	uint32_t ku;

	(void)state;
	assert_int_equal(cvm_issue_cert_edit(c, &e, root, root_key, &e1), CVM_OK);
	assert_true(cvm_cert_subject_is(e1, renamed, 1));
	cvm_cert_issuer(e1, buf, sizeof(buf));
	assert_non_null(strstr(buf, "CN = Root"));
	assert_false(cvm_cert_key_usage(e1, &ku));
	assert_true(cvm_cert_claims_ca(e1));
	assert_int_equal(cvm_cert_ext(e1, OID_TEST, &ext), CVM_OK); /* kept */
	cvm_cert_serial(e1, buf, sizeof(buf));
	assert_string_equal(buf, "09");
	assert_int_equal(cvm_cert_not_after(e1), cvm_cert_not_after(c));
	assert_true(cvm_privkey_matches_cert(k, e1));
	assert_int_equal(cvm_cert_check_issued(e1, root), CVM_OK); /* signed again by the issuer */

	/* a self-issued certificate renamed: its issuer name follows */
	e.exts = NULL;
	e.ext_count = 0;
	assert_int_equal(cvm_issue_cert_edit(root, &e, NULL, root_key, &e2), CVM_OK);
	cvm_cert_issuer(e2, buf, sizeof(buf));
	assert_string_equal(buf, "CN = Renamed");
	assert_int_equal(cvm_cert_check_issued(e2, e2), CVM_OK);
	assert_int_equal(cvm_cert_check_issued(c, e2), CVM_E_CHAIN);
	/* an edit signed by a key its issuer does not hold */
	cvm_cert_free(e2);
	e2 = NULL;
	e.subject = NULL;
	assert_int_equal(cvm_issue_cert_edit(c, &e, root, k, &e2), CVM_E_INVAL); /* PSS is not for P-384 */
	assert_null(e2);
	assert_int_equal(cvm_issue_cert_edit(c, &e, root, other, &e2), CVM_OK);
	assert_int_equal(cvm_cert_check_issued(e2, root), CVM_E_SIGNATURE);

	cvm_cert_free(e2);
	cvm_cert_free(e1);
	cvm_cert_free(c);
	cvm_cert_free(root);
	cvm_privkey_free(other);
	cvm_privkey_free(k);
	cvm_privkey_free(root_key);
}

/* ---- CRLs ------------------------------------------------------------------------ */

static void an_issued_crl_lists_its_serials_and_checks_only_under_its_signer(void **state)
{
	const uint64_t revoked[] = {5, 0xdeadbeef00000001ull};
	struct cvm_privkey *root_key = gen(CVM_PRIVKEY_RSA), *k = gen(CVM_PRIVKEY_P256);
	struct cvm_privkey *other = gen(CVM_PRIVKEY_RSA);
	struct cvm_cert *root = ca(root_key, "Root"), *listed = leaf(k, "Listed", 5, root, root_key);
	struct cvm_cert *not_listed = leaf(k, "Not listed", 6, root, root_key);
	struct cvm_issue_crl spec = {
	    .this_update = NOW - 100,
	    .next_update = NOW + 100,
	    .revoked = revoked,
	    .revoked_count = 2,
	    .number = 3,
	    .authority_key_id = true,
	    .sig_alg = CVM_SIG_RSA_PSS_SHA384,
	};
	uint8_t *der = NULL, *forged = NULL, *again = NULL;
	size_t len = 0, forged_len = 0, again_len = 0;
	struct cvm_crl *crl = NULL;

	(void)state;
	assert_int_equal(cvm_issue_crl(&spec, root, root_key, &der, &len), CVM_OK);
	assert_int_equal(der[len], 0); /* a NUL after it */
	assert_int_equal(cvm_crl_parse(der, len, &crl), CVM_OK);
	assert_int_equal(cvm_crl_this_update(crl), NOW - 100);
	assert_int_equal(cvm_crl_next_update(crl), NOW + 100);
	assert_true(cvm_crl_revokes(crl, listed));
	assert_false(cvm_crl_revokes(crl, not_listed));
	assert_true(cvm_crl_signed_rsa_pss_sha384(crl));
	assert_int_equal(cvm_crl_check_issued(crl, root), CVM_OK);
	cvm_crl_free(crl);

	/* the same CRL signed by a key the root does not hold */
	assert_int_equal(cvm_issue_crl_resign(der, len, other, CVM_SIG_RSA_PSS_SHA384, &forged, &forged_len),
	                 CVM_OK);
	assert_int_equal(cvm_crl_parse(forged, forged_len, &crl), CVM_OK);
	assert_true(cvm_crl_revokes(crl, listed));
	assert_int_equal(cvm_crl_check_issued(crl, root), CVM_E_SIGNATURE);
	cvm_crl_free(crl);
	/* and signed again by the root's key: it checks again */
	assert_int_equal(
	    cvm_issue_crl_resign(forged, forged_len, root_key, CVM_SIG_RSA_PSS_SHA384, &again, &again_len),
	    CVM_OK);
	assert_int_equal(cvm_crl_parse(again, again_len, &crl), CVM_OK);
	assert_int_equal(cvm_crl_check_issued(crl, root), CVM_OK);
	cvm_crl_free(crl);
	free(again);
	again = NULL;

	/* what is not one DER CRL, or an algorithm not for the key */
	assert_int_equal(
	    cvm_issue_crl_resign(der, len - 1, root_key, CVM_SIG_RSA_PSS_SHA384, &again, &again_len),
	    CVM_E_FORMAT);
	assert_int_equal(cvm_issue_crl_resign(der, len + 1, root_key, CVM_SIG_RSA_PSS_SHA384, &again,
	                                      &again_len), /* the NUL */
	                 CVM_E_FORMAT);
	assert_int_equal(cvm_issue_crl_resign(NULL, 0, root_key, CVM_SIG_RSA_PSS_SHA384, &again, &again_len),
	                 CVM_E_FORMAT);
	assert_int_equal(cvm_issue_crl_resign(der, len, root_key, CVM_SIG_ECDSA_SHA256, &again, &again_len),
	                 CVM_E_INVAL);
	assert_null(again);
	spec.revoked_count = CVM_ISSUE_REVOKED_MAX + 1;
	assert_int_equal(cvm_issue_crl(&spec, root, root_key, &again, &again_len), CVM_E_INVAL);
	assert_null(again);

	free(forged);
	free(der);
	cvm_cert_free(not_listed);
	cvm_cert_free(listed);
	cvm_cert_free(root);
	cvm_privkey_free(other);
	cvm_privkey_free(k);
	cvm_privkey_free(root_key);
}

/* ---- PEM and the marker checks ----------------------------------------------------- */

static void pem_chains_parse_back_and_marker_checks_find_their_extension(void **state)
{
	struct cvm_privkey *k = gen(CVM_PRIVKEY_P256);
	struct cvm_cert *root = ca(k, "Root"), *c = leaf(k, "Leaf", 3, root, k), *chain[2] = {root, c};
	struct cvm_cert **parsed = NULL;
	const uint8_t *der;
	uint8_t *pem = NULL, *longer = NULL, garbage[] = "-----BEGIN CERTIFICATE-----\nAAAA\n";
	size_t pem_len = 0, der_len, n = 0;

	(void)state;
	assert_int_equal(cvm_certs_pem(chain, 2, &pem, &pem_len), CVM_OK);
	assert_int_equal(pem[pem_len], 0);
	assert_int_equal(strlen((const char *)pem), pem_len);
	assert_int_equal(cvm_certs_parse_pem(pem, pem_len, &parsed, &n), CVM_OK);
	assert_int_equal(n, 2);
	assert_true(cvm_cert_equal(parsed[0], root));
	assert_true(cvm_cert_equal(parsed[1], c));
	cvm_certs_free(parsed, n);
	assert_int_equal(cvm_certs_pem(chain, 0, &longer, &n), CVM_E_INVAL);

	/* only the leaf carries OID_TEST */
	cvm_cert_der(c, &der, &der_len);
	assert_true(cvm_cert_der_has_ext(der, der_len, OID_TEST));
	assert_false(cvm_cert_der_has_ext(der, der_len, "1.2.3.4"));
	assert_false(cvm_cert_der_has_ext(der, der_len - 1, OID_TEST));
	longer = malloc(der_len + 1);
	assert_non_null(longer);
	memcpy(longer, der, der_len);
	longer[der_len] = 0;
	assert_false(cvm_cert_der_has_ext(longer, der_len + 1, OID_TEST)); /* a byte after it */
	free(longer);
	cvm_cert_der(root, &der, &der_len);
	assert_false(cvm_cert_der_has_ext(der, der_len, OID_TEST));
	assert_false(cvm_cert_der_has_ext(NULL, 0, OID_TEST));

	assert_true(cvm_certs_pem_any_has_ext(pem, pem_len, OID_TEST, 8));
	assert_false(cvm_certs_pem_any_has_ext(pem, pem_len, OID_TEST, 1)); /* the root comes first */
	assert_false(cvm_certs_pem_any_has_ext(garbage, sizeof(garbage) - 1, OID_TEST, 8));
	assert_false(cvm_certs_pem_any_has_ext(pem, pem_len, "not an oid", 8));

	free(pem);
	cvm_cert_free(c);
	cvm_cert_free(root);
	cvm_privkey_free(k);
}

/* ---- key files ---------------------------------------------------------------------- */

/* write_openssl_key writes `pkey` as PEM (PKCS#8, encrypted when `pass`)
 * with `mode`. */
static void write_openssl_key(EVP_PKEY *pkey, const char *path, const char *pass, unsigned mode)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, pkey, pass != NULL ? EVP_aes_256_cbc() : NULL,
	                                               (const char *)pass,
	                                               pass != NULL ? (int)strlen(pass) : 0, NULL, NULL),
	                 1);
	n = BIO_get_mem_data(b, &p);
	assert_true(n > 0);
	assert_int_equal(cvm_file_write(path, p, (size_t)n, mode), CVM_OK);
	BIO_free(b);
}

/* write_legacy_key writes `pkey` in its type-specific DER (SEC1 for EC,
 * PKCS#1 for RSA) framed as "<label>", with `headers` lines before the body. */
static void write_legacy_key(EVP_PKEY *pkey, const char *path, const char *label, const char *headers)
{
	unsigned char *der = NULL;
	char *b64, text[8192];
	int n = i2d_PrivateKey(pkey, &der);

	assert_true(n > 0);
	b64 = cvm_base64_encode_new(der, (size_t)n);
	assert_non_null(b64);
	n = snprintf(text, sizeof(text), "-----BEGIN %s-----\n%s%s\n-----END %s-----\n", label, headers, b64,
	             label);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	assert_int_equal(cvm_file_write(path, text, (size_t)n, 0600), CVM_OK);
	OPENSSL_clear_free(der, 0);
	free(b64);
}

static void keys_saved_as_pem_load_again_unless_others_may_read_them(void **state)
{
	const enum cvm_privkey_type types[] = {CVM_PRIVKEY_P256, CVM_PRIVKEY_P384, CVM_PRIVKEY_RSA};
	char *dir = tmpdir(), path[256], other[256], big[256], sub[256];
	struct cvm_privkey *k = NULL, *back = NULL;
	struct cvm_cert *c = NULL;
	struct stat st;
	EVP_PKEY *pkey;
	uint8_t *zeros;

	(void)state;
	path_of(path, sizeof(path), dir, "key.pem");
	path_of(other, sizeof(other), dir, "other.pem");
	path_of(big, sizeof(big), dir, "big.pem");
	path_of(sub, sizeof(sub), dir, "sub");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		k = gen(types[i]);
		c = ca(k, "Key");
		assert_int_equal(cvm_privkey_save_pem(k, path), CVM_OK);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(cvm_privkey_load_pem(path, &back), CVM_OK);
		assert_int_equal(cvm_privkey_type(back), types[i]);
		assert_true(cvm_privkey_matches_cert(back, c));
		cvm_privkey_free(back);
		back = NULL;
		/* group or others with any access: refused, whatever the bytes */
		assert_int_equal(chmod(path, 0640), 0);
		assert_int_equal(cvm_privkey_load_pem(path, &back), CVM_E_INVAL);
		assert_int_equal(chmod(path, 0604), 0);
		assert_int_equal(cvm_privkey_load_pem(path, &back), CVM_E_INVAL);
		assert_int_equal(chmod(path, 0610), 0);
		assert_int_equal(cvm_privkey_load_pem(path, &back), CVM_E_INVAL);
		assert_null(back);
		assert_int_equal(unlink(path), 0);
		cvm_cert_free(c);
		cvm_privkey_free(k);
	}

	/* an encrypted key is refused without asking anyone for a passphrase */
	pkey = EVP_EC_gen("P-256");
	assert_non_null(pkey);
	write_openssl_key(pkey, other, "a passphrase", 0600);
	assert_int_equal(cvm_privkey_load_pem(other, &back), CVM_E_FORMAT);
	/* SEC1 ("EC PRIVATE KEY") loads; with legacy encryption headers it does not */
	write_legacy_key(pkey, other, "EC PRIVATE KEY", "");
	assert_int_equal(cvm_privkey_load_pem(other, &back), CVM_OK);
	assert_int_equal(cvm_privkey_type(back), CVM_PRIVKEY_P256);
	cvm_privkey_free(back);
	back = NULL;
	write_legacy_key(pkey, other, "EC PRIVATE KEY",
	                 "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n");
	assert_int_equal(cvm_privkey_load_pem(other, &back), CVM_E_FORMAT);
	write_legacy_key(pkey, other, "RSA PRIVATE KEY", ""); /* an EC key under an RSA label */
	assert_int_equal(cvm_privkey_load_pem(other, &back), CVM_E_FORMAT);
	EVP_PKEY_free(pkey);
	/* PKCS#1 ("RSA PRIVATE KEY") loads */
	pkey = EVP_RSA_gen(2048);
	assert_non_null(pkey);
	write_legacy_key(pkey, other, "RSA PRIVATE KEY", "");
	assert_int_equal(cvm_privkey_load_pem(other, &back), CVM_OK);
	assert_int_equal(cvm_privkey_type(back), CVM_PRIVKEY_RSA);
	cvm_privkey_free(back);
	back = NULL;
	EVP_PKEY_free(pkey);
	/* keys of other kinds */
	pkey = EVP_EC_gen("P-521");
	assert_non_null(pkey);
	write_openssl_key(pkey, other, NULL, 0600);
	assert_int_equal(cvm_privkey_load_pem(other, &back), CVM_E_UNSUPPORTED);
	EVP_PKEY_free(pkey);
	pkey = EVP_RSA_gen(1024);
	assert_non_null(pkey);
	write_openssl_key(pkey, other, NULL, 0600);
	assert_int_equal(cvm_privkey_load_pem(other, &back), CVM_E_UNSUPPORTED);
	EVP_PKEY_free(pkey);
	/* no key, too many bytes, not a regular file, no file */
	assert_int_equal(cvm_file_write(other, "not a key\n", 10, 0600), CVM_OK);
	assert_int_equal(cvm_privkey_load_pem(other, &back), CVM_E_FORMAT);
	zeros = calloc(1, CVM_PRIVKEY_FILE_MAX + 1);
	assert_non_null(zeros);
	assert_int_equal(cvm_file_write(big, zeros, CVM_PRIVKEY_FILE_MAX + 1, 0600), CVM_OK);
	free(zeros);
	assert_int_equal(cvm_privkey_load_pem(big, &back), CVM_E_TOO_LARGE);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(cvm_privkey_load_pem(sub, &back), CVM_E_INVAL);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(mkfifo(sub, 0600), 0); /* refused at once, not waited on */
	assert_int_equal(cvm_privkey_load_pem(sub, &back), CVM_E_INVAL);
	assert_int_equal(cvm_privkey_load_pem(path, &back), CVM_E_SYSTEM); /* removed above */
	assert_null(back);

	assert_int_equal(unlink(sub), 0);
	assert_int_equal(unlink(big), 0);
	assert_int_equal(unlink(other), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* The mock PKI's folder: a key file replaced by a key of another kind does
 * not load, even with a certificate for that key issued by the right CA. */
static void a_mock_pki_folder_with_a_key_of_another_kind_does_not_load(void **state)
{
	struct cvm_mockpki_opts o;
	struct cvm_mockpki *pki = NULL, *back = NULL;
	struct cvm_privkey *p384 = gen(CVM_PRIVKEY_P384);
	struct cvm_cert *pck = NULL;
	struct cvm_name_attr name[CVM_MOCK_NAME_MAX];
	struct cvm_mock_cert spec = {
	    .name = name,
	    .name_count = cvm_mock_intel_name("Intel SGX PCK Certificate", name),
	    .serial = 77,
	    .not_before = NOW - YEAR,
	    .not_after = NOW + YEAR,
	    .basic_constraints = "critical,CA:FALSE",
	    .key_usage = "critical,digitalSignature,nonRepudiation",
	    .key_ids = true,
	};
	char *dir = tmpdir(), path[256];
	const char *const names[] = {"root", "pck_ca", "pck", "tcb_signer"};

	(void)state;
	cvm_mockpki_opts_init(&o, CVM_TEE_TDX, NOW);
	assert_int_equal(cvm_mockpki_new(&o, &pki), CVM_OK);
	assert_int_equal(cvm_mockpki_save_keys(pki, dir), CVM_OK);
	assert_int_equal(cvm_mockpki_load(&o, dir, &back), CVM_OK);
	cvm_mockpki_free(back);
	back = NULL;
	assert_int_equal(cvm_mock_cert_issue(&spec, p384, cvm_mockpki_x509(pki, CVM_MOCKPKI_PCK_CA),
	                                     cvm_mockpki_key(pki, CVM_MOCKPKI_PCK_CA), &pck),
	                 CVM_OK);
	assert_int_equal(cvm_cert_check_issued(pck, cvm_mockpki_x509(pki, CVM_MOCKPKI_PCK_CA)), CVM_OK);
	path_of(path, sizeof(path), dir, "pck.key");
	assert_int_equal(cvm_privkey_save_pem(p384, path), CVM_OK);
	path_of(path, sizeof(path), dir, "pck.pem");
	assert_int_equal(cvm_mock_cert_save(pck, path), CVM_OK);
	assert_int_equal(cvm_mockpki_load(&o, dir, &back), CVM_E_FORMAT);
	assert_null(back);
	cvm_cert_free(pck);

	cvm_mockpki_free(pki);
	cvm_privkey_free(p384);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char file[32];

		(void)snprintf(file, sizeof(file), "%s.key", names[i]);
		path_of(path, sizeof(path), dir, file);
		assert_int_equal(unlink(path), 0);
		(void)snprintf(file, sizeof(file), "%s.pem", names[i]);
		path_of(path, sizeof(path), dir, file);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(keys_of_each_kind_are_made_and_bad_arguments_refused),
	    cmocka_unit_test(raw_signatures_verify_under_the_certified_key_and_nowhere_else),
	    cmocka_unit_test(an_issued_certificate_carries_what_its_spec_says),
	    cmocka_unit_test(a_certificate_signed_by_a_key_its_issuer_does_not_hold_fails_its_check),
	    cmocka_unit_test(a_bad_certificate_spec_is_refused),
	    cmocka_unit_test(an_edit_changes_what_it_names_and_keeps_the_rest),
	    cmocka_unit_test(an_issued_crl_lists_its_serials_and_checks_only_under_its_signer),
	    cmocka_unit_test(pem_chains_parse_back_and_marker_checks_find_their_extension),
	    cmocka_unit_test(keys_saved_as_pem_load_again_unless_others_may_read_them),
	    cmocka_unit_test(a_mock_pki_folder_with_a_key_of_another_kind_does_not_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
