/* lib/acme without a network: base64url (RFC 4648 section 10), JWK
 * thumbprints (RFC 7638: its own RSA example, and the RFC 7517 A.2 P-256
 * key, whose thumbprint, key authorization and dns-01 value for RFC 8555's
 * example token were recomputed independently with python3's hashlib and
 * base64), the JWS (protected header, ES256 signature over exactly
 * protected "." payload), the renewal rule, and the response parsers on
 * RFC 8555's example shapes: what they accept, what they refuse, and every
 * truncation, an extra byte and every single-bit flip of each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/acme.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>

#include "acme/acme_int.h"

/* RFC 7517 appendix A.2, the P-256 private key: d (hex of its base64url
 * "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"), x and y. */
static const char rfc7517_d_hex[] = "f3bd0c07a81fb932781ed52752f60cc89a6be5e51934fe01938ddb55d8f77801";
static const char rfc7517_jwk[] =
    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","
    "\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\"}";
/* base64url(SHA-256(rfc7517_jwk)), by python3 hashlib. */
static const char rfc7517_thumbprint[] = "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s";
/* RFC 8555 section 8.3's example token, its key authorization with that
 * key, and base64url(SHA-256(key authorization)), by python3 hashlib. */
static const char rfc8555_token[] = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
static const char rfc8555_keyauth[] =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s";
static const char rfc8555_dns01[] = "1fCS1lh6WLuBWbvkmdEhdymEvTR8MuI63XqlRVleM9Q";

/* RFC 7638 section 3.1: the RSA key's required members in canonical form,
 * and the thumbprint the RFC gives. */
static const char rfc7638_json[] =
    "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":"
    "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPF"
    "FxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
    "FDW2Q"
    "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
    "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr"
    "3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\"}";
static const char rfc7638_thumbprint[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/* RFC 8555 7.1.1, 7.1.2, 7.1.3, 7.1.4 and 6.7 examples (compact; the
 * authorization pending, with both challenge types). The same files seed
 * fuzz/corpus/acme/. */
static const char ex_directory[] =
    "{\"newNonce\":\"https://example.com/acme/new-nonce\",\"newAccount\":\"https://example.com/acme/"
    "new-account\","
    "\"newOrder\":\"https://example.com/acme/new-order\",\"newAuthz\":\"https://example.com/acme/new-authz\","
    "\"revokeCert\":\"https://example.com/acme/revoke-cert\",\"keyChange\":\"https://example.com/acme/"
    "key-change\","
    "\"meta\":{\"termsOfService\":\"https://example.com/acme/terms/2017-5-30\",\"website\":\"https://"
    "www.example.com/\",\"caaIdentities\":[\"example.com\"],\"externalAccountRequired\":false}}";
static const char ex_account[] =
    "{\"status\":\"valid\",\"contact\":[\"mailto:cert-admin@example.org\"],"
    "\"termsOfServiceAgreed\":true,\"orders\":\"https://example.com/acme/orders/rzGoeA\"}";
static const char ex_order[] = "{\"status\":\"valid\",\"expires\":\"2016-01-20T14:09:07.99Z\","
                               "\"identifiers\":[{\"type\":\"dns\",\"value\":"
                               "\"www.example.org\"},{\"type\":\"dns\",\"value\":\"example.org\"}],"
                               "\"notBefore\":\"2016-01-01T00:00:00Z\","
                               "\"notAfter\":\"2016-01-08T00:00:00Z\",\"authorizations\":[\"https://"
                               "example.com/acme/authz/PAniVnsZcis\","
                               "\"https://example.com/acme/authz/r4HqLzrSrpI\"],\"finalize\":\"https://"
                               "example.com/acme/order/TOlocE8rfgo/"
                               "finalize\",\"certificate\":\"https://example.com/acme/cert/mAt3xBGaobw\"}";
static const char ex_authz[] =
    "{\"status\":\"pending\",\"expires\":\"2016-01-02T14:09:30Z\",\"identifier\":{\"type\":\"dns\",\"value\":"
    "\"www.example.org\"},\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://example.com/acme/chall/"
    "prV_B7yEyA4\",\"status\":\"pending\",\"token\":\"DGyRejmCefe7v4NfDGDKfA\"},{\"type\":\"dns-01\",\"url\":"
    "\"https://example.com/acme/chall/"
    "Rg5dV14Gh1Q\",\"status\":\"pending\",\"token\":\"DGyRejmCefe7v4NfDGDKfA\"}]}";
static const char ex_problem[] =
    "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"Some of the "
    "identifiers requested were rejected\"}";

/* The same shapes with only the members the parsers read: every bit flip
 * of these must fail or change what is parsed. */
static const char min_directory[] =
    "{\"newNonce\":\"https://a.example/n\",\"newAccount\":\"https://a.example/a\","
    "\"newOrder\":\"https://a.example/o\",\"revokeCert\":\"https://a.example/r\"}";
static const char min_order[] =
    "{\"status\":\"valid\",\"authorizations\":[\"https://a.example/z/1\"],"
    "\"finalize\":\"https://a.example/f\",\"certificate\":\"https://a.example/c\"}";
static const char min_authz[] =
    "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
    "\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://a.example/c\","
    "\"status\":\"pending\",\"token\":\"tok\"}]}";

static struct cvm_p256_keypair *rfc7517_key(void)
{
	uint8_t d[32];
	size_t n = 0;
	struct cvm_p256_keypair *kp = NULL;

	assert_int_equal(cvm_hex_decode(rfc7517_d_hex, strlen(rfc7517_d_hex), d, sizeof(d), &n), CVM_OK);
	assert_int_equal(cvm_p256_keypair_from_scalar(d, &kp), CVM_OK);
	return kp;
}

/* b64url_decode is the test's own decoder (the library has no need of one). */
static size_t b64url_decode(const char *s, uint8_t *out, size_t cap)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	for (; *s != '\0'; s++) {
		const char *p = strchr(alphabet, *s);

		assert_non_null(p);
		acc = acc << 6 | (uint32_t)(p - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			assert_true(n < cap);
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return n;
}

static void base64url_matches_rfc4648_vectors_and_uses_the_url_alphabet(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
	         {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff\xbf", "-_-_"}};
	char small[4];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = acme_b64url((const uint8_t *)v[i].in, strlen(v[i].in));

		assert_non_null(s);
		assert_string_equal(s, v[i].out);
		free(s);
	}
	/* A buffer one byte short (no room for the NUL) is refused. */
	assert_false(acme_b64url_to((const uint8_t *)"foo", 3, small, sizeof(small)));
}

static void rfc7638_rsa_example_thumbprint_is_reproduced(void **state)
{
	uint8_t h[32];
	char out[CVM_ACME_B64_SHA256_LEN + 1];

	(void)state;
	cvm_sha256(rfc7638_json, strlen(rfc7638_json), h);
	assert_true(acme_b64url_to(h, sizeof(h), out, sizeof(out)));
	assert_string_equal(out, rfc7638_thumbprint);
}

static void p256_jwk_is_canonical_and_its_thumbprint_matches_an_independent_computation(void **state)
{
	struct cvm_p256_keypair *kp = rfc7517_key();
	char jwk[ACME_JWK_JSON_LEN], tp[CVM_ACME_B64_SHA256_LEN + 1];

	(void)state;
	acme_jwk_json(kp, jwk);
	assert_string_equal(jwk, rfc7517_jwk);
	cvm_acme_jwk_thumbprint(kp, tp);
	assert_string_equal(tp, rfc7517_thumbprint);
	cvm_p256_keypair_free(kp);
}

static void key_authorization_and_dns01_value_match_an_independent_computation(void **state)
{
	struct cvm_p256_keypair *kp = rfc7517_key();
	char *ka = NULL;
	char txt[CVM_ACME_B64_SHA256_LEN + 1];

	(void)state;
	assert_int_equal(cvm_acme_key_authorization(kp, rfc8555_token, &ka), CVM_OK);
	assert_string_equal(ka, rfc8555_keyauth);
	cvm_acme_dns01_value(ka, txt);
	assert_string_equal(txt, rfc8555_dns01);
	free(ka);
	cvm_p256_keypair_free(kp);
}

static void key_authorization_refuses_tokens_that_are_not_base64url(void **state)
{
	struct cvm_p256_keypair *kp = rfc7517_key();
	const char *bad[] = {"", "a.b", "a/b", "a=b", "a b", "../x", "a\nb"};
	char long_token[ACME_TOKEN_MAX + 2];
	char *ka = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cvm_acme_key_authorization(kp, bad[i], &ka), CVM_E_INVAL);
		assert_null(ka);
	}
	memset(long_token, 'a', sizeof(long_token) - 1);
	long_token[sizeof(long_token) - 1] = '\0';
	assert_int_equal(cvm_acme_key_authorization(kp, long_token, &ka), CVM_E_INVAL);
	long_token[ACME_TOKEN_MAX] = '\0';
	assert_int_equal(cvm_acme_key_authorization(kp, long_token, &ka), CVM_OK);
	free(ka);
	cvm_p256_keypair_free(kp);
}

/* check_jws parses a JWS made by acme_jws, checks its header, and checks
 * its signature over exactly protected "." payload. */
static void check_jws(const char *jws, const struct cvm_p256_keypair *kp, const char *kid,
                      const char *payload)
{
	json_t *o = json_loads(jws, JSON_REJECT_DUPLICATES, NULL), *h;
	const char *prot, *pay, *sig_b;
	uint8_t buf[1024], sig[64], xy[64];
	struct cvm_p256_key *pub = NULL;
	char *input;
	size_t n;

	assert_non_null(o);
	assert_int_equal(json_object_size(o), 3);
	prot = json_string_value(json_object_get(o, "protected"));
	pay = json_string_value(json_object_get(o, "payload"));
	sig_b = json_string_value(json_object_get(o, "signature"));
	assert_non_null(prot);
	assert_non_null(pay);
	assert_non_null(sig_b);
	n = b64url_decode(pay, buf, sizeof(buf));
	assert_int_equal(n, strlen(payload));
	assert_memory_equal(buf, payload, n);
	n = b64url_decode(prot, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	h = json_loads((const char *)buf, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(h, "nonce")), "nonce-1");
	assert_string_equal(json_string_value(json_object_get(h, "url")), "https://a.example/o");
	if (kid != NULL) {
		assert_string_equal(json_string_value(json_object_get(h, "kid")), kid);
		assert_null(json_object_get(h, "jwk"));
		assert_int_equal(json_object_size(h), 4);
	} else {
		char *jwk = json_dumps(json_object_get(h, "jwk"), JSON_COMPACT | JSON_SORT_KEYS);

		assert_null(json_object_get(h, "kid"));
		assert_string_equal(jwk, rfc7517_jwk);
		free(jwk);
	}
	json_decref(h);
	assert_int_equal(b64url_decode(sig_b, sig, sizeof(sig)), 64);
	cvm_p256_keypair_public(kp, xy);
	assert_int_equal(cvm_p256_key_new(xy, &pub), CVM_OK);
	n = strlen(prot) + 1 + strlen(pay);
	input = malloc(n + 1);
	assert_non_null(input);
	(void)snprintf(input, n + 1, "%s.%s", prot, pay);
	assert_int_equal(cvm_p256_verify(pub, (const uint8_t *)input, n, sig), CVM_OK);
	/* The signature covers the payload: another payload fails. */
	input[n - 1] ^= 1;
	assert_int_equal(cvm_p256_verify(pub, (const uint8_t *)input, n, sig), CVM_E_SIGNATURE);
	free(input);
	cvm_p256_key_free(pub);
	json_decref(o);
}

static void jws_names_the_jwk_or_the_kid_and_signs_protected_dot_payload(void **state)
{
	struct cvm_p256_keypair *kp = rfc7517_key();
	char *jws = NULL;

	(void)state;
	assert_int_equal(acme_jws(kp, NULL, "nonce-1", "https://a.example/o", "{\"a\":1}", &jws), CVM_OK);
	check_jws(jws, kp, NULL, "{\"a\":1}");
	free(jws);
	assert_int_equal(
	    acme_jws(kp, "https://a.example/acct/1", "nonce-1", "https://a.example/o", "{}", &jws), CVM_OK);
	check_jws(jws, kp, "https://a.example/acct/1", "{}");
	free(jws);
	/* POST-as-GET: the payload is the empty string. */
	assert_int_equal(
	    acme_jws(kp, "https://a.example/acct/1", "nonce-1", "https://a.example/o", NULL, &jws), CVM_OK);
	check_jws(jws, kp, "https://a.example/acct/1", "");
	free(jws);
	cvm_p256_keypair_free(kp);
}

static void renewal_is_due_in_the_last_part_of_the_lifetime_or_the_last_days(void **state)
{
	const int64_t day = 86400, nb = 1000000, na = nb + 90 * day;

	(void)state;
	/* default 1/3: due when less than 30 of 90 days remain */
	assert_false(cvm_acme_renewal_due(nb, na, nb, 0, 0, 0));
	assert_false(cvm_acme_renewal_due(nb, na, na - 30 * day, 0, 0, 0));
	assert_true(cvm_acme_renewal_due(nb, na, na - 30 * day + 1, 0, 0, 0));
	/* 1/2 */
	assert_false(cvm_acme_renewal_due(nb, na, na - 45 * day, 0, 1, 2));
	assert_true(cvm_acme_renewal_due(nb, na, na - 45 * day + 1, 0, 1, 2));
	/* --days 10 */
	assert_false(cvm_acme_renewal_due(nb, na, na - 10 * day, 10 * day, 0, 0));
	assert_true(cvm_acme_renewal_due(nb, na, na - 10 * day + 1, 10 * day, 0, 0));
	/* expired, not yet valid is not "due" by itself, a broken window is */
	assert_true(cvm_acme_renewal_due(nb, na, na, 0, 0, 0));
	assert_true(cvm_acme_renewal_due(nb, na, na + 1, 0, 0, 0));
	assert_false(cvm_acme_renewal_due(nb, na, nb - day, 0, 0, 0));
	assert_true(cvm_acme_renewal_due(na, nb, nb - day, 0, 0, 0));
	/* no overflow at the ends of int64 */
	assert_false(cvm_acme_renewal_due(INT64_MIN, INT64_MAX, 0, 0, 0, 0));
	assert_true(cvm_acme_renewal_due(INT64_MIN, INT64_MAX, INT64_MAX - 1, 0, 0, 0));
}

static int parse_dir(const char *s, struct acme_directory *d)
{
	return acme_parse_directory((const uint8_t *)s, strlen(s), d);
}

static void directory_parses_the_rfc_example_and_refuses_bad_urls(void **state)
{
	struct acme_directory d;
	const char *bad[] = {
	    /* no newNonce */
	    "{\"newAccount\":\"https://a.example/a\",\"newOrder\":\"https://a.example/o\"}",
	    /* not a URL, another scheme, a space, a control character */
	    "{\"newNonce\":\"nonce\",\"newAccount\":\"https://a.example/a\",\"newOrder\":\"https://a.example/"
	    "o\"}",
	    "{\"newNonce\":\"ftp://a.example/n\",\"newAccount\":\"https://a.example/"
	    "a\",\"newOrder\":\"https://a.example/o\"}",
	    "{\"newNonce\":\"https://a.example/ "
	    "n\",\"newAccount\":\"https://a.example/a\",\"newOrder\":\"https://a.example/o\"}",
	    "{\"newNonce\":\"https://a.example/\\u0001\",\"newAccount\":\"https://a.example/"
	    "a\",\"newOrder\":\"https://a.example/o\"}",
	    "{\"newNonce\":\"https:///n\",\"newAccount\":\"https://a.example/a\",\"newOrder\":\"https://"
	    "a.example/o\"}",
	    /* a mistyped member, a duplicate member, not an object, no JSON */
	    "{\"newNonce\":7,\"newAccount\":\"https://a.example/a\",\"newOrder\":\"https://a.example/o\"}",
	    "{\"newNonce\":\"https://a.example/n\",\"newNonce\":\"https://a.example/"
	    "n\",\"newAccount\":\"https://a.example/a\",\"newOrder\":\"https://a.example/o\"}",
	    "[\"https://a.example/n\"]",
	    "",
	};

	(void)state;
	assert_int_equal(parse_dir(ex_directory, &d), CVM_OK);
	assert_string_equal(d.new_nonce, "https://example.com/acme/new-nonce");
	assert_string_equal(d.new_account, "https://example.com/acme/new-account");
	assert_string_equal(d.new_order, "https://example.com/acme/new-order");
	assert_string_equal(d.revoke_cert, "https://example.com/acme/revoke-cert");
	assert_string_equal(d.key_change, "https://example.com/acme/key-change");
	acme_directory_cleanup(&d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_dir(bad[i], &d), CVM_E_FORMAT);
		assert_null(d.new_nonce);
	}
}

static void every_parser_refuses_a_body_over_its_cap(void **state)
{
	size_t n = CVM_ACME_JSON_MAX + 1;
	char *big = malloc(n);
	struct acme_directory d;
	struct acme_order o;
	struct acme_authz a;
	struct acme_account acct;
	char msg[128];

	(void)state;
	assert_non_null(big);
	/* a valid JSON object, padded with spaces to one byte over the cap */
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(acme_parse_directory((const uint8_t *)big, n, &d), CVM_E_TOO_LARGE);
	assert_int_equal(acme_parse_order((const uint8_t *)big, n, &o), CVM_E_TOO_LARGE);
	assert_int_equal(acme_parse_authz((const uint8_t *)big, n, &a), CVM_E_TOO_LARGE);
	assert_int_equal(acme_parse_account((const uint8_t *)big, n, &acct), CVM_E_TOO_LARGE);
	assert_int_equal(acme_parse_problem((const uint8_t *)big, n, msg, sizeof(msg), NULL, 0),
	                 CVM_E_TOO_LARGE);
	/* at the cap it is read (and lacks members) */
	assert_int_equal(acme_parse_directory((const uint8_t *)big + 1, n - 1, &d), CVM_E_FORMAT);
	free(big);
}

static void account_needs_a_known_status(void **state)
{
	struct acme_account a;

	(void)state;
	assert_int_equal(acme_parse_account((const uint8_t *)ex_account, strlen(ex_account), &a), CVM_OK);
	assert_int_equal(a.status, ACME_ST_VALID);
	assert_int_equal(acme_parse_account((const uint8_t *)"{\"status\":\"pending\"}", 20, &a),
	                 CVM_E_FORMAT);
	assert_int_equal(acme_parse_account((const uint8_t *)"{\"status\":\"VALID\"}", 18, &a), CVM_E_FORMAT);
	assert_int_equal(acme_parse_account((const uint8_t *)"{}", 2, &a), CVM_E_FORMAT);
}

static int parse_order(const char *s, struct acme_order *o)
{
	return acme_parse_order((const uint8_t *)s, strlen(s), o);
}

static void order_parses_the_rfc_example_and_checks_its_members(void **state)
{
	struct acme_order o;
	char many[CVM_ACME_NAMES_MAX * 32 + 256];
	size_t n = 0;

	(void)state;
	assert_int_equal(parse_order(ex_order, &o), CVM_OK);
	assert_int_equal(o.status, ACME_ST_VALID);
	assert_int_equal(o.authorization_count, 2);
	assert_string_equal(o.authorizations[1], "https://example.com/acme/authz/r4HqLzrSrpI");
	assert_string_equal(o.finalize, "https://example.com/acme/order/TOlocE8rfgo/finalize");
	assert_string_equal(o.certificate, "https://example.com/acme/cert/mAt3xBGaobw");
	assert_null(o.error);
	acme_order_cleanup(&o);
	/* an invalid order keeps the CA's reason as one sentence */
	assert_int_equal(parse_order("{\"status\":\"invalid\",\"authorizations\":[\"https://a.example/z\"],"
	                             "\"finalize\":\"https://a.example/f\",\"error\":{\"type\":"
	                             "\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"no\"}}",
	                             &o),
	                 CVM_OK);
	assert_string_equal(o.error, "rejectedIdentifier: no");
	acme_order_cleanup(&o);
	/* a valid order must name its certificate */
	assert_int_equal(parse_order("{\"status\":\"valid\",\"authorizations\":[\"https://a.example/z\"],"
	                             "\"finalize\":\"https://a.example/f\"}",
	                             &o),
	                 CVM_E_FORMAT);
	/* no authorizations, an authorization that is no URL, an unknown status */
	assert_int_equal(
	    parse_order("{\"status\":\"pending\",\"authorizations\":[],\"finalize\":\"https://a.example/f\"}",
	                &o),
	    CVM_E_FORMAT);
	assert_int_equal(
	    parse_order(
	        "{\"status\":\"pending\",\"authorizations\":[\"/z/1\"],\"finalize\":\"https://a.example/f\"}",
	        &o),
	    CVM_E_FORMAT);
	assert_int_equal(parse_order("{\"status\":\"revoked\",\"authorizations\":[\"https://a.example/z\"],"
	                             "\"finalize\":\"https://a.example/f\"}",
	                             &o),
	                 CVM_E_FORMAT);
	/* more authorizations than names an order may hold */
	n += (size_t)snprintf(many + n, sizeof(many) - n, "{\"status\":\"pending\",\"authorizations\":[");
	for (int i = 0; i <= CVM_ACME_NAMES_MAX; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%s\"https://a.example/z/%d\"",
		                      i ? "," : "", i);
	(void)snprintf(many + n, sizeof(many) - n, "],\"finalize\":\"https://a.example/f\"}");
	assert_int_equal(parse_order(many, &o), CVM_E_TOO_LARGE);
	assert_null(o.authorizations);
}

static int parse_authz(const char *s, struct acme_authz *a)
{
	return acme_parse_authz((const uint8_t *)s, strlen(s), a);
}

static void authorization_parses_the_rfc_example_and_checks_tokens_and_identifiers(void **state)
{
	struct acme_authz a;
	char many[ACME_CHALLENGES_MAX * 96 + 256];
	size_t n = 0;

	(void)state;
	assert_int_equal(parse_authz(ex_authz, &a), CVM_OK);
	assert_int_equal(a.status, ACME_ST_PENDING);
	assert_string_equal(a.domain, "www.example.org");
	assert_false(a.wildcard);
	assert_int_equal(a.challenge_count, 2);
	assert_string_equal(a.challenges[0].type, "http-01");
	assert_string_equal(a.challenges[1].type, "dns-01");
	assert_string_equal(a.challenges[1].url, "https://example.com/acme/chall/Rg5dV14Gh1Q");
	assert_string_equal(a.challenges[0].token, "DGyRejmCefe7v4NfDGDKfA");
	acme_authz_cleanup(&a);
	/* a wildcard, a challenge type we do not use (no token), a failed challenge's reason */
	assert_int_equal(
	    parse_authz("{\"status\":\"invalid\",\"wildcard\":true,\"identifier\":{\"type\":\"dns\","
	                "\"value\":\"a.example\"},\"challenges\":[{\"type\":\"x-99\",\"url\":\"https://"
	                "a.example/c\",\"status\":\"pending\"},{\"type\":\"dns-01\",\"url\":\"https://"
	                "a.example/d\",\"status\":\"invalid\",\"token\":\"t\",\"error\":{\"type\":\"urn:"
	                "ietf:params:acme:error:unauthorized\",\"detail\":\"bad TXT\"}}]}",
	                &a),
	    CVM_OK);
	assert_true(a.wildcard);
	assert_null(a.challenges[0].token);
	assert_string_equal(a.challenges[1].error, "unauthorized: bad TXT");
	acme_authz_cleanup(&a);
	/* tokens that could leave the challenge path, or are missing */
	assert_int_equal(
	    parse_authz("{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                "\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://a.example/c\","
	                "\"status\":\"pending\",\"token\":\"../../etc/passwd\"}]}",
	                &a),
	    CVM_E_FORMAT);
	assert_int_equal(
	    parse_authz("{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                "\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://a.example/c\","
	                "\"status\":\"pending\"}]}",
	                &a),
	    CVM_E_FORMAT);
	/* an identifier that is not a DNS name, or not of type dns */
	assert_int_equal(
	    parse_authz("{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a b\"},"
	                "\"challenges\":[]}",
	                &a),
	    CVM_E_FORMAT);
	assert_int_equal(
	    parse_authz("{\"status\":\"pending\",\"identifier\":{\"type\":\"ip\",\"value\":\"10.0.0.1\"},"
	                "\"challenges\":[]}",
	                &a),
	    CVM_E_UNSUPPORTED);
	/* too many challenges */
	n += (size_t)snprintf(
	    many + n, sizeof(many) - n,
	    "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	    "\"challenges\":[");
	for (int i = 0; i <= ACME_CHALLENGES_MAX; i++)
		n += (size_t)snprintf(
		    many + n, sizeof(many) - n,
		    "%s{\"type\":\"x\",\"url\":\"https://a.example/%d\",\"status\":\"pending\"}",
		    i ? "," : "", i);
	(void)snprintf(many + n, sizeof(many) - n, "]}");
	assert_int_equal(parse_authz(many, &a), CVM_E_TOO_LARGE);
	assert_int_equal(a.challenge_count, 0);
}

static void problem_becomes_one_printable_sentence(void **state)
{
	char msg[CVM_ACME_ERR_LEN], type[64];
	static const char utf8[] = "{\"type\":\"t\",\"detail\":\"caf\\u00e9\"}";
	static const char ctl[] = "{\"type\":\"x:y\",\"detail\":\"a\\u001b[31mb\\nc\"}";
	char long_detail[2048];
	int n;

	(void)state;
	assert_int_equal(acme_parse_problem((const uint8_t *)ex_problem, strlen(ex_problem), msg, sizeof(msg),
	                                    type, sizeof(type)),
	                 CVM_OK);
	assert_string_equal(msg, "malformed: Some of the identifiers requested were rejected");
	assert_string_equal(type, "malformed");
	/* control characters in the detail do not reach a terminal */
	assert_int_equal(
	    acme_parse_problem((const uint8_t *)ctl, strlen(ctl), msg, sizeof(msg), type, sizeof(type)),
	    CVM_OK);
	assert_string_equal(msg, "x:y: a?[31mb?c");
	/* and neither do bytes outside ASCII (UTF-8 e-acute is two bytes) */
	assert_int_equal(acme_parse_problem((const uint8_t *)utf8, strlen(utf8), msg, sizeof(msg), NULL, 0),
	                 CVM_OK);
	assert_string_equal(msg, "t: caf??");
	/* a long detail is cut */
	n = snprintf(long_detail, sizeof(long_detail), "{\"type\":\"t\",\"detail\":\"");
	memset(long_detail + n, 'd', 1000);
	(void)snprintf(long_detail + n + 1000, sizeof(long_detail) - (size_t)n - 1000, "\"}");
	assert_int_equal(
	    acme_parse_problem((const uint8_t *)long_detail, strlen(long_detail), msg, sizeof(msg), NULL, 0),
	    CVM_OK);
	assert_int_equal(strlen(msg), 3 + ACME_DETAIL_MAX);
	/* not a problem document */
	assert_int_not_equal(
	    acme_parse_problem((const uint8_t *)"<html>", 6, msg, sizeof(msg), type, sizeof(type)), CVM_OK);
	assert_string_equal(msg, "the server's error body is not a problem document");
	assert_string_equal(type, "");
	assert_int_not_equal(
	    acme_parse_problem((const uint8_t *)"{\"type\":\"a b\"}", 14, msg, sizeof(msg), NULL, 0), CVM_OK);
}

/* summary writes what a parser made of `buf` (or its error) as text, so
 * that two parses can be compared. */
enum kind { K_DIRECTORY, K_ORDER, K_AUTHZ };

static int summary(enum kind k, const uint8_t *buf, size_t len, char *out, size_t cap)
{
	struct acme_directory d;
	struct acme_order o;
	struct acme_authz a;
	size_t n = 0;
	int r;

	out[0] = '\0';
	switch (k) {
	case K_DIRECTORY:
		r = acme_parse_directory(buf, len, &d);
		if (r == CVM_OK) {
			(void)snprintf(out, cap, "%s|%s|%s|%s|%s", d.new_nonce, d.new_account, d.new_order,
			               d.revoke_cert ? d.revoke_cert : "-",
			               d.key_change ? d.key_change : "-");
			acme_directory_cleanup(&d);
		}
		return r;
	case K_ORDER:
		r = acme_parse_order(buf, len, &o);
		if (r == CVM_OK) {
			n += (size_t)snprintf(out + n, cap - n, "%d|%s|%s|%s", (int)o.status, o.finalize,
			                      o.certificate ? o.certificate : "-", o.error ? o.error : "-");
			for (size_t i = 0; i < o.authorization_count && n < cap; i++)
				n += (size_t)snprintf(out + n, cap - n, "|%s", o.authorizations[i]);
			acme_order_cleanup(&o);
		}
		return r;
	case K_AUTHZ:
		r = acme_parse_authz(buf, len, &a);
		if (r == CVM_OK) {
			n += (size_t)snprintf(out + n, cap - n, "%d|%s|%d", (int)a.status, a.domain,
			                      (int)a.wildcard);
			for (size_t i = 0; i < a.challenge_count && n < cap; i++)
				n += (size_t)snprintf(out + n, cap - n, "|%s,%s,%s,%d,%s",
				                      a.challenges[i].type, a.challenges[i].url,
				                      a.challenges[i].token ? a.challenges[i].token : "-",
				                      (int)a.challenges[i].status,
				                      a.challenges[i].error ? a.challenges[i].error : "-");
			acme_authz_cleanup(&a);
		}
		return r;
	}
	return CVM_E_INTERNAL;
}

static void mutate_all(enum kind k, const char *vec, bool flips_must_change)
{
	size_t len = strlen(vec);
	uint8_t *buf = malloc(len + 1);
	char want[4096], got[4096];

	assert_non_null(buf);
	assert_int_equal(summary(k, (const uint8_t *)vec, len, want, sizeof(want)), CVM_OK);
	/* every truncation */
	for (size_t n = 0; n < len; n++) {
		memcpy(buf, vec, n);
		assert_int_not_equal(summary(k, buf, n, got, sizeof(got)), CVM_OK);
	}
	/* one extra byte */
	memcpy(buf, vec, len);
	buf[len] = 'x';
	assert_int_not_equal(summary(k, buf, len + 1, got, sizeof(got)), CVM_OK);
	/* every single-bit flip: fails, or parses to something else */
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(buf, vec, len);
			buf[i] ^= (uint8_t)(1u << b);
			if (summary(k, buf, len, got, sizeof(got)) == CVM_OK && flips_must_change) {
				if (strcmp(got, want) == 0)
					fail_msg(
					    "flipping bit %d of byte %zu ('%c') parses to the same result", b,
					    i, vec[i]);
			}
		}
	}
	free(buf);
}

static void directory_rejects_every_truncation_an_extra_byte_and_unseen_bit_flips(void **state)
{
	(void)state;
	mutate_all(K_DIRECTORY, min_directory, true);
	mutate_all(K_DIRECTORY, ex_directory, false);
}

static void order_rejects_every_truncation_an_extra_byte_and_unseen_bit_flips(void **state)
{
	(void)state;
	mutate_all(K_ORDER, min_order, true);
	mutate_all(K_ORDER, ex_order, false);
}

static void authorization_rejects_every_truncation_an_extra_byte_and_unseen_bit_flips(void **state)
{
	(void)state;
	mutate_all(K_AUTHZ, min_authz, true);
	mutate_all(K_AUTHZ, ex_authz, false);
}

static void client_refuses_a_directory_that_is_not_https_unless_told(void **state)
{
	struct cvm_p256_keypair *kp = rfc7517_key();
	struct cvm_acme_config cfg;
	struct cvm_acme_client *c = NULL;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.directory_url = "http://127.0.0.1:1/dir";
	assert_int_equal(cvm_acme_client_new(&cfg, kp, &c), CVM_E_INVAL);
	assert_null(c);
	cfg.directory_url = "https://127.0.0.1:1/dir x";
	assert_int_equal(cvm_acme_client_new(&cfg, kp, &c), CVM_E_INVAL);
	cfg.directory_url = "http://127.0.0.1:1/dir";
	cfg.allow_insecure_http = true;
	assert_int_equal(cvm_acme_client_new(&cfg, kp, &c), CVM_OK);
	assert_string_equal(cvm_acme_client_error(c), "");
	assert_null(cvm_acme_account_url(c));
	cvm_acme_client_free(c);
	cvm_p256_keypair_free(kp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(base64url_matches_rfc4648_vectors_and_uses_the_url_alphabet),
	    cmocka_unit_test(rfc7638_rsa_example_thumbprint_is_reproduced),
	    cmocka_unit_test(p256_jwk_is_canonical_and_its_thumbprint_matches_an_independent_computation),
	    cmocka_unit_test(key_authorization_and_dns01_value_match_an_independent_computation),
	    cmocka_unit_test(key_authorization_refuses_tokens_that_are_not_base64url),
	    cmocka_unit_test(jws_names_the_jwk_or_the_kid_and_signs_protected_dot_payload),
	    cmocka_unit_test(renewal_is_due_in_the_last_part_of_the_lifetime_or_the_last_days),
	    cmocka_unit_test(directory_parses_the_rfc_example_and_refuses_bad_urls),
	    cmocka_unit_test(every_parser_refuses_a_body_over_its_cap),
	    cmocka_unit_test(account_needs_a_known_status),
	    cmocka_unit_test(order_parses_the_rfc_example_and_checks_its_members),
	    cmocka_unit_test(authorization_parses_the_rfc_example_and_checks_tokens_and_identifiers),
	    cmocka_unit_test(problem_becomes_one_printable_sentence),
	    cmocka_unit_test(directory_rejects_every_truncation_an_extra_byte_and_unseen_bit_flips),
	    cmocka_unit_test(order_rejects_every_truncation_an_extra_byte_and_unseen_bit_flips),
	    cmocka_unit_test(authorization_rejects_every_truncation_an_extra_byte_and_unseen_bit_flips),
	    cmocka_unit_test(client_refuses_a_directory_that_is_not_https_unless_told),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
