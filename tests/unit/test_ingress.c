/* lib/ingress: dstack's SNI label cases (compat/gateway/sni-cases.json) and
 * its order-sensitive suffixes, routing by base domain, TXT names and
 * values; the ClientHello peek over real captured hellos (every prefix,
 * split records, bit flips) and hand-built ones; PROXY v1 and v2, parsed
 * and built. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

#include "vectors.h"

/* sni-cases.json writes its h2 doc example with a placeholder id. */
#define PLACEHOLDER "<app_id>"
#define SAMPLE_APP_ID "0123456789abcdef0123456789abcdef01234567"
#define SNI_CASES 9

static int parse(const char *label, struct cvm_ingress_dst *d, const char **why)
{
	return cvm_ingress_parse_subdomain(label, strlen(label), d, why);
}

/* subdomain_of writes the case's label with the placeholder replaced. */
static void subdomain_of(const char *s, char *buf, size_t cap)
{
	const char *p = strstr(s, PLACEHOLDER);

	if (p == NULL)
		assert_true(snprintf(buf, cap, "%s", s) < (int)cap);
	else
		assert_true(snprintf(buf, cap, "%.*s%s%s", (int)(p - s), s, SAMPLE_APP_ID,
		                     p + strlen(PLACEHOLDER)) < (int)cap);
}

static void check_case(const json_t *expect, const struct cvm_ingress_dst *d, int r, const char *label)
{
	const json_t *v;

	print_message("case %s\n", label);
	assert_int_equal(r == CVM_OK, json_is_true(json_object_get(expect, "ok")));
	if (r != CVM_OK) {
		assert_int_equal(r, CVM_E_FORMAT);
		return;
	}
	v = json_object_get(expect, "app_id");
	if (v != NULL)
		assert_string_equal(d->id, json_string_value(v));
	assert_int_equal(d->port, json_integer_value(json_object_get(expect, "port")));
	assert_int_equal(d->is_tls, json_is_true(json_object_get(expect, "is_tls")));
	v = json_object_get(expect, "is_h2");
	if (v != NULL)
		assert_int_equal(d->is_h2, json_is_true(v));
}

static void sni_cases_parse_as_dstack_does(void **state)
{
	size_t len, n = 0, i;
	uint8_t *raw = vector_read("compat/gateway/sni-cases.json", &len);
	json_t *doc = json_loadb((const char *)raw, len, 0, NULL), *c;
	const char *const bases[] = {"example.com"};

	(void)state;
	assert_non_null(doc);
	json_array_foreach(json_object_get(doc, "cases"), i, c)
	{
		const json_t *expect = json_object_get(c, "expect");
		char label[128], sni[160];
		struct cvm_ingress_dst d;
		struct cvm_ingress_route rt;
		const char *why = NULL;
		int r;

		subdomain_of(json_string_value(json_object_get(c, "subdomain")), label, sizeof(label));
		r = parse(label, &d, &why);
		check_case(expect, &d, r, label);
		if (r != CVM_OK)
			assert_non_null(why);
		/* the same through the router, under a base domain */
		assert_true(snprintf(sni, sizeof(sni), "%s.Example.COM", label) < (int)sizeof(sni));
		why = NULL;
		r = cvm_ingress_route(sni, strlen(sni), bases, 1, &rt, &why);
		check_case(expect, &rt.dst, r, sni);
		if (r == CVM_OK) {
			assert_int_equal(rt.kind, CVM_INGRESS_APP);
			assert_string_equal(rt.base, "example.com");
		}
		n++;
	}
	assert_int_equal(n, SNI_CASES);
	json_decref(doc);
	free(raw);
}

static void expect_refused(const char *label, const char *why_part)
{
	struct cvm_ingress_dst d;
	const char *why = NULL;

	print_message("refuse %s\n", label);
	assert_int_equal(parse(label, &d, &why), CVM_E_FORMAT);
	assert_non_null(why);
	if (why_part != NULL)
		assert_non_null(strstr(why, why_part));
	assert_int_equal(d.port, 0);
	assert_int_equal(d.id[0], '\0');
}

static void expect_dst(const char *label, const char *id, unsigned port, bool tls, bool h2)
{
	struct cvm_ingress_dst d;
	const char *why = NULL;

	print_message("parse %s\n", label);
	assert_int_equal(parse(label, &d, &why), CVM_OK);
	assert_string_equal(d.id, id);
	assert_int_equal(d.port, port);
	assert_int_equal(d.is_tls, tls);
	assert_int_equal(d.is_h2, h2);
}

static void label_suffixes_follow_dstacks_order(void **state)
{
	char long_label[80];

	(void)state;
	/* pitfall 12: g is stripped before s */
	expect_refused("myapp-443sg", "gs not allowed");
	expect_refused("myapp-sg", "gs not allowed");
	expect_refused("myapp-443gs", "invalid port");
	expect_dst("myapp-g", "myapp", 80, false, true);
	expect_dst("myapp-443g", "myapp", 443, false, true);
	expect_dst("myapps", "myapps", 80, false, false);
	expect_dst("MyApp-8080", "myapp", 8080, false, false);
	/* the suffix letters are lower case (cvm_ingress_route lower-cases the name first) */
	expect_refused("myapp-8080S", "invalid port");
	expect_dst("gateway", "gateway", 80, false, false);
	expect_dst("health-s", "health", 443, true, false);
	expect_dst("a-1", "a", 1, false, false);
	expect_dst("a-65535s", "a", 65535, true, false);
	expect_dst("a-0080", "a", 80, false, false);
	expect_refused("-s", "empty id");
	expect_refused("", "empty id");
	expect_refused("myapp-", "nothing after");
	expect_refused("a-b-c", "more than one");
	expect_refused("a--1", "more than one");
	expect_refused("myapp-0", "invalid port");
	expect_refused("myapp-65536", "invalid port");
	expect_refused("myapp-100000", "invalid port");
	expect_refused("myapp-+80", "invalid port");
	expect_refused("myapp- 80", "invalid port");
	expect_refused("myapp-80 ", "invalid port");
	expect_refused("my_app", "character");
	expect_refused("my.app", "character");
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	expect_refused(long_label, "longer than 63");
	long_label[63] = '\0';
	expect_dst(long_label, long_label, 80, false, false);
	{
		/* a NUL inside the given length is refused, not a shorter id */
		struct cvm_ingress_dst d;

		assert_int_equal(cvm_ingress_parse_subdomain("ab\0c", 4, &d, NULL), CVM_E_FORMAT);
		assert_int_equal(cvm_ingress_parse_subdomain(NULL, 0, &d, NULL), CVM_E_INVAL);
	}
}

static void route_picks_app_or_custom(void **state)
{
	const char *const bases[] = {"apps.example.com", "*.Other.NET", "third.org."};
	struct cvm_ingress_route rt;
	const char *why = NULL;
	char big[300];

	(void)state;
#define ROUTE(s) cvm_ingress_route((s), strlen(s), bases, 3, &rt, &why)
	assert_int_equal(ROUTE("App1-443S.APPS.example.com"), CVM_OK);
	assert_int_equal(rt.kind, CVM_INGRESS_APP);
	assert_string_equal(rt.name, "app1-443s.apps.example.com");
	assert_string_equal(rt.base, "apps.example.com");
	assert_string_equal(rt.dst.id, "app1");
	assert_int_equal(rt.dst.port, 443);
	assert_true(rt.dst.is_tls);
	assert_int_equal(ROUTE("x.other.net"), CVM_OK);
	assert_int_equal(rt.kind, CVM_INGRESS_APP);
	assert_int_equal(ROUTE("x-50051g.third.org"), CVM_OK);
	assert_int_equal(rt.kind, CVM_INGRESS_APP);
	assert_true(rt.dst.is_h2);
	/* only the rest after the first label is compared: a deeper name is custom */
	assert_int_equal(ROUTE("a.b.apps.example.com"), CVM_OK);
	assert_int_equal(rt.kind, CVM_INGRESS_CUSTOM);
	assert_int_equal(rt.dst.port, 0);
	assert_int_equal(ROUTE("www.customer.io"), CVM_OK);
	assert_int_equal(rt.kind, CVM_INGRESS_CUSTOM);
	assert_string_equal(rt.name, "www.customer.io");
	/* a bad label under a base domain is an error that says where */
	assert_int_equal(ROUTE("a-1-2.apps.example.com"), CVM_E_FORMAT);
	assert_int_equal(rt.kind, CVM_INGRESS_APP);
	assert_string_equal(rt.base, "apps.example.com");
	assert_non_null(strstr(why, "more than one"));
	/* not host names */
	assert_int_equal(ROUTE("localhost"), CVM_E_FORMAT);
	assert_int_equal(ROUTE("a..b"), CVM_E_FORMAT);
	assert_int_equal(ROUTE(".a.b"), CVM_E_FORMAT);
	assert_int_equal(ROUTE("a.b."), CVM_E_FORMAT);
	assert_int_equal(ROUTE("a_b.c"), CVM_E_FORMAT);
	assert_int_equal(ROUTE("-a.c"), CVM_E_FORMAT);
	assert_int_equal(ROUTE("a-.c"), CVM_E_FORMAT);
	assert_int_equal(ROUTE(""), CVM_E_FORMAT);
	assert_int_equal(rt.kind, 0);
	assert_int_equal(cvm_ingress_route("a\0b.c", 5, bases, 3, &rt, &why), CVM_E_FORMAT);
	assert_non_null(strstr(why, "NUL"));
	/* 253 bytes pass, 254 do not */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (i % 50 == 49) ? '.' : 'a';
	assert_int_equal(cvm_ingress_route(big, 253, bases, 3, &rt, &why), CVM_OK);
	assert_int_equal(cvm_ingress_route(big, 254, bases, 3, &rt, &why), CVM_E_FORMAT);
	/* no base domain: every name is custom */
	assert_int_equal(cvm_ingress_route("a-80.apps.example.com", 21, NULL, 0, &rt, &why), CVM_OK);
	assert_int_equal(rt.kind, CVM_INGRESS_CUSTOM);
#undef ROUTE
}

static void txt_names_and_values(void **state)
{
	char names[2][CVM_INGRESS_NAME_MAX + 32];
	struct cvm_ingress_dst d;
	const char *why = NULL;

	(void)state;
	assert_int_equal(cvm_ingress_txt_names("WWW.Customer.io", NULL, names), CVM_OK);
	assert_string_equal(names[0], "_dstack-app-address.www.customer.io");
	assert_string_equal(names[1], "_dstack-app-address-wildcard.customer.io");
	assert_int_equal(cvm_ingress_txt_names("a.io", "_tapp-address", names), CVM_OK);
	assert_string_equal(names[0], "_tapp-address.a.io");
	assert_string_equal(names[1], "_tapp-address-wildcard.io");
	assert_int_equal(cvm_ingress_txt_names("localhost", NULL, names), CVM_E_FORMAT);
	assert_int_equal(cvm_ingress_txt_names("a.io", "bad.prefix", names), CVM_E_INVAL);
	assert_int_equal(cvm_ingress_txt_names("a.io", "", names), CVM_E_INVAL);
	assert_int_equal(cvm_ingress_txt_names("a.io", "_much-too-long-prefix-x", names), CVM_E_INVAL);

	assert_int_equal(cvm_ingress_parse_txt("ABC123:8443", 11, &d, &why), CVM_OK);
	assert_string_equal(d.id, "abc123");
	assert_int_equal(d.port, 8443);
	assert_true(d.is_tls);
	assert_false(d.is_h2);
#define TXT_BAD(s) assert_int_equal(cvm_ingress_parse_txt((s), strlen(s), &d, &why), CVM_E_FORMAT)
	TXT_BAD("abc");
	TXT_BAD(":443");
	TXT_BAD("abc:");
	TXT_BAD("abc:0");
	TXT_BAD("abc:+1");
	TXT_BAD("abc: 1");
	TXT_BAD("abc:80:1");
	TXT_BAD("a-b:80");
	TXT_BAD("abc:65536");
#undef TXT_BAD
	assert_int_equal(d.port, 0);
}

/* --- ClientHello ------------------------------------------------------------------- */

struct hello_vector {
	const char *file;
	const char *sni; /* NULL: none */
	size_t n_alpn;
	bool tls13;
};

static const struct hello_vector hellos[] = {
    {"clienthello/local-captures/openssl-tls13-sni-alpn.bin", "myapp-8080s.example.com", 2, true},
    {"clienthello/local-captures/openssl-tls12-sni-alpn.bin", "myapp-443s.example.com", 2, false},
    {"clienthello/local-captures/openssl-tls13-nosni.bin", NULL, 0, true},
    {"clienthello/local-captures/python3-ssl-sni-alpn.bin", "Gateway.Example.COM", 2, true},
};
#define HELLO_COUNT (sizeof(hellos) / sizeof(hellos[0]))

static void check_hello(const struct hello_vector *v, const struct cvm_clienthello *ch)
{
	assert_int_equal(ch->has_sni, v->sni != NULL);
	if (v->sni != NULL) {
		assert_string_equal(ch->sni, v->sni);
		assert_int_equal(ch->sni_len, strlen(v->sni));
	}
	assert_int_equal(ch->n_alpn, v->n_alpn);
	assert_int_equal(ch->alpn_h2, v->n_alpn != 0);
	assert_int_equal(ch->alpn_http11, v->n_alpn != 0);
	assert_int_equal(ch->tls13, v->tls13);
}

static void captured_hellos_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < HELLO_COUNT; i++) {
		size_t len, need = 99;
		uint8_t *b = vector_read(hellos[i].file, &len), *more;
		struct cvm_clienthello ch;

		print_message("%s\n", hellos[i].file);
		assert_int_equal(cvm_clienthello_parse(b, len, &ch, &need), CVM_OK);
		check_hello(&hellos[i], &ch);
		assert_int_equal(ch.record_bytes, len);
		assert_int_equal(need, 0);
		/* what follows the hello's records is not looked at */
		more = malloc(len + 3);
		assert_non_null(more);
		memcpy(more, b, len);
		memcpy(more + len, "\x17\x03\x03", 3);
		assert_int_equal(cvm_clienthello_parse(more, len + 3, &ch, NULL), CVM_OK);
		assert_int_equal(ch.record_bytes, len);
		/* a record that goes on past the hello is refused */
		more[3] = (uint8_t)((len - 5 + 1) >> 8);
		more[4] = (uint8_t)(len - 5 + 1);
		assert_int_equal(cvm_clienthello_parse(more, len + 1, &ch, NULL), CVM_E_FORMAT);
		free(more);
		free(b);
	}
}

/* Byte-by-byte delivery: every prefix is TRUNCATED, with a `need` that is
 * past what was given and never past the whole. */
static void every_prefix_is_truncated(const uint8_t *b, size_t len)
{
	for (size_t n = 0; n < len; n++) {
		struct cvm_clienthello ch;
		size_t need = 0;

		assert_int_equal(cvm_clienthello_parse(b, n, &ch, &need), CVM_E_TRUNCATED);
		assert_true(need > n);
		assert_true(need <= len);
		assert_false(ch.has_sni);
		assert_int_equal(ch.record_bytes, 0);
	}
}

static void hello_prefixes_are_truncated(void **state)
{
	(void)state;
	for (size_t i = 0; i < HELLO_COUNT; i++) {
		size_t len;
		uint8_t *b = vector_read(hellos[i].file, &len);

		every_prefix_is_truncated(b, len);
		free(b);
	}
}

/* split_hello rewrites a one-record hello as two records, the first with
 * `first` bytes of the handshake message. */
static uint8_t *split_hello(const uint8_t *b, size_t len, size_t first, size_t *out_len)
{
	size_t msg = len - 5, second = msg - first;
	uint8_t *s = malloc(len + 5);

	assert_non_null(s);
	memcpy(s, b, 3);
	s[3] = (uint8_t)(first >> 8);
	s[4] = (uint8_t)first;
	memcpy(s + 5, b + 5, first);
	memcpy(s + 5 + first, b, 3);
	s[5 + first + 3] = (uint8_t)(second >> 8);
	s[5 + first + 4] = (uint8_t)second;
	memcpy(s + 10 + first, b + 5 + first, second);
	*out_len = len + 5;
	return s;
}

static void hello_split_across_records(void **state)
{
	(void)state;
	for (size_t i = 0; i < HELLO_COUNT; i++) {
		size_t len;
		uint8_t *b = vector_read(hellos[i].file, &len);

		/* every split point, header split included */
		for (size_t first = 1; first < len - 5; first++) {
			struct cvm_clienthello ch;
			size_t slen;
			uint8_t *s = split_hello(b, len, first, &slen);

			assert_int_equal(cvm_clienthello_parse(s, slen, &ch, NULL), CVM_OK);
			check_hello(&hellos[i], &ch);
			assert_int_equal(ch.record_bytes, slen);
			if (first == 2 || first == 100)
				every_prefix_is_truncated(s, slen);
			/* another record type between the two is refused */
			s[5 + first] = 0x15;
			assert_int_equal(cvm_clienthello_parse(s, slen, &ch, NULL), CVM_E_FORMAT);
			free(s);
		}
		free(b);
	}
}

static void hello_bit_flips_never_lie(void **state)
{
	size_t refused = 0, parsed = 0;

	(void)state;
	for (size_t i = 0; i < HELLO_COUNT; i++) {
		size_t len;
		uint8_t *b = vector_read(hellos[i].file, &len);

		for (size_t bit = 0; bit < len * 8; bit++) {
			struct cvm_clienthello ch;
			size_t need = 0;
			int r;

			b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			r = cvm_clienthello_parse(b, len, &ch, &need);
			b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_true(r == CVM_OK || r == CVM_E_FORMAT || r == CVM_E_TRUNCATED ||
			            r == CVM_E_TOO_LARGE);
			if (r != CVM_OK) {
				refused++;
				assert_false(ch.has_sni);
				continue;
			}
			parsed++;
			assert_true(ch.record_bytes <= len);
			assert_int_equal(strlen(ch.sni), ch.sni_len);
			if (ch.has_sni)
				assert_int_equal(cvm_ingress_name_check(ch.sni, ch.sni_len, NULL), CVM_OK);
		}
		free(b);
	}
	/* headers and lengths are everywhere: most flips are refused, the
	 * random and key shares are not */
	assert_true(refused > 0);
	assert_true(parsed > 0);
}

/* build_hello writes a one-record ClientHello with the given extensions
 * block (NULL: none at all). */
static size_t build_hello(uint8_t *out, size_t cap, const uint8_t *ext, size_t ext_len, bool with_ext)
{
	size_t body = 2 + 32 + 1 + 2 + 4 + 2 + (with_ext ? 2 + ext_len : 0), n = 0;

	assert_true(body + 9 <= cap);
	out[n++] = 0x16;
	out[n++] = 3;
	out[n++] = 1;
	out[n++] = (uint8_t)((body + 4) >> 8);
	out[n++] = (uint8_t)(body + 4);
	out[n++] = 1;
	out[n++] = 0;
	out[n++] = (uint8_t)(body >> 8);
	out[n++] = (uint8_t)body;
	out[n++] = 3;
	out[n++] = 3;
	memset(out + n, 0x5a, 32);
	n += 32;
	out[n++] = 0; /* session id */
	out[n++] = 0;
	out[n++] = 4;
	memcpy(out + n, "\x13\x01\x13\x02", 4);
	n += 4;
	out[n++] = 1;
	out[n++] = 0;
	if (with_ext) {
		out[n++] = (uint8_t)(ext_len >> 8);
		out[n++] = (uint8_t)ext_len;
		memcpy(out + n, ext, ext_len);
		n += ext_len;
	}
	return n;
}

/* sni_ext writes a server_name extension with `count` entries of `name`. */
static size_t sni_ext(uint8_t *e, const char *name, size_t name_len, unsigned count, uint8_t type)
{
	size_t entry = 3 + name_len, list = entry * count, n = 0;

	e[n++] = 0;
	e[n++] = 0;
	e[n++] = (uint8_t)((list + 2) >> 8);
	e[n++] = (uint8_t)(list + 2);
	e[n++] = (uint8_t)(list >> 8);
	e[n++] = (uint8_t)list;
	for (unsigned i = 0; i < count; i++) {
		e[n++] = type;
		e[n++] = (uint8_t)(name_len >> 8);
		e[n++] = (uint8_t)name_len;
		memcpy(e + n, name, name_len);
		n += name_len;
	}
	return n;
}

static int hello_with(const uint8_t *ext, size_t ext_len, struct cvm_clienthello *ch)
{
	uint8_t buf[1024];
	size_t n = build_hello(buf, sizeof(buf), ext, ext_len, true);

	return cvm_clienthello_parse(buf, n, ch, NULL);
}

static void hand_built_hellos(void **state)
{
	struct cvm_clienthello ch;
	uint8_t buf[1024], ext[700];
	char name[300];
	size_t n, e;

	(void)state;
	/* no extensions at all (a TLS 1.0-era hello) */
	n = build_hello(buf, sizeof(buf), NULL, 0, false);
	assert_int_equal(cvm_clienthello_parse(buf, n, &ch, NULL), CVM_OK);
	assert_false(ch.has_sni);
	assert_false(ch.tls13);
	/* one name: fine; two entries, two extensions, other types: refused */
	e = sni_ext(ext, "a.example", 9, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_OK);
	assert_string_equal(ch.sni, "a.example");
	e = sni_ext(ext, "a.example", 9, 2, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	e = sni_ext(ext, "a.example", 9, 1, 0);
	e += sni_ext(ext + e, "b.example", 9, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	e = sni_ext(ext, "a.example", 9, 1, 1);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	/* names that are not host names */
	e = sni_ext(ext, "a\0.example", 10, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	e = sni_ext(ext, "a..example", 10, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	e = sni_ext(ext, "a.example.", 10, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	e = sni_ext(ext, "", 0, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	e = sni_ext(ext, "a b.example", 11, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	for (size_t i = 0; i < sizeof(name); i++)
		name[i] = (i % 60 == 59) ? '.' : 'x';
	e = sni_ext(ext, name, 253, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_OK);
	assert_int_equal(ch.sni_len, 253);
	e = sni_ext(ext, name, 254, 1, 0);
	assert_int_equal(hello_with(ext, e, &ch), CVM_E_FORMAT);
	/* an empty server_name extension (what servers answer) */
	assert_int_equal(hello_with((const uint8_t *)"\x00\x00\x00\x00", 4, &ch), CVM_E_FORMAT);
	/* ALPN: "h2" only; an empty list; an empty protocol; two ALPN extensions */
	assert_int_equal(hello_with((const uint8_t *)"\x00\x10\x00\x05\x00\x03\x02h2", 9, &ch), CVM_OK);
	assert_true(ch.alpn_h2);
	assert_false(ch.alpn_http11);
	assert_int_equal(ch.n_alpn, 1);
	assert_int_equal(hello_with((const uint8_t *)"\x00\x10\x00\x02\x00\x00", 6, &ch), CVM_E_FORMAT);
	assert_int_equal(hello_with((const uint8_t *)"\x00\x10\x00\x03\x00\x01\x00", 7, &ch), CVM_E_FORMAT);
	assert_int_equal(
	    hello_with((const uint8_t *)"\x00\x10\x00\x05\x00\x03\x02h2\x00\x10\x00\x05\x00\x03\x02h2", 18,
	               &ch),
	    CVM_E_FORMAT);
	/* supported_versions: odd and empty lists */
	assert_int_equal(hello_with((const uint8_t *)"\x00\x2b\x00\x03\x02\x03\x04", 7, &ch), CVM_OK);
	assert_true(ch.tls13);
	assert_int_equal(hello_with((const uint8_t *)"\x00\x2b\x00\x02\x01\x03", 6, &ch), CVM_E_FORMAT);
	assert_int_equal(hello_with((const uint8_t *)"\x00\x2b\x00\x01\x00", 5, &ch), CVM_E_FORMAT);
	/* an extension that runs past the block */
	assert_int_equal(hello_with((const uint8_t *)"\x00\x17\x00\x09\x00", 5, &ch), CVM_E_FORMAT);
	/* a bigger handshake length than the record says, then trailing bytes */
	n = build_hello(buf, sizeof(buf), NULL, 0, false);
	buf[8]++;
	assert_int_equal(cvm_clienthello_parse(buf, n, &ch, NULL), CVM_E_TRUNCATED);
	buf[8] -= 2;
	assert_int_equal(cvm_clienthello_parse(buf, n, &ch, NULL), CVM_E_FORMAT);
}

static void not_hellos_are_refused_at_once(void **state)
{
	struct cvm_clienthello ch;
	size_t need = 0;
	/* 16 03 01, length 0x4005 (> 2^14) */
	static const uint8_t big_record[] = {0x16, 3, 1, 0x40, 0x01};
	/* a handshake message of 16385 bytes; then exactly the cap */
	static const uint8_t too_large[] = {0x16, 3, 1, 0x40, 0x00, 1, 0, 0x40, 0x01};
	static const uint8_t at_cap[] = {0x16, 3, 1, 0x40, 0x00, 1, 0, 0x40, 0x00};
	static const uint8_t server_hello[] = {0x16, 3, 3, 0, 4, 2, 0, 0, 0};
	static const uint8_t sslv2[] = {0x80, 0x2e, 0x01, 0x00, 0x02};
	static const uint8_t empty_record[] = {0x16, 3, 1, 0, 0};

	(void)state;
	assert_int_equal(cvm_clienthello_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &ch, NULL),
	                 CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse((const uint8_t *)"G", 1, &ch, NULL), CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse(sslv2, sizeof(sslv2), &ch, NULL), CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse(server_hello, sizeof(server_hello), &ch, NULL), CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse(server_hello, 6, &ch, NULL), CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse(big_record, sizeof(big_record), &ch, NULL), CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse(empty_record, sizeof(empty_record), &ch, NULL), CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse((const uint8_t *)"\x16\x02", 2, &ch, NULL), CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse((const uint8_t *)"\x16\x03\x05", 3, &ch, NULL), CVM_E_FORMAT);
	assert_int_equal(cvm_clienthello_parse(too_large, sizeof(too_large), &ch, NULL), CVM_E_TOO_LARGE);
	assert_int_equal(cvm_clienthello_parse(at_cap, sizeof(at_cap), &ch, &need), CVM_E_TRUNCATED);
	/* this record, then another header and the rest of the message */
	assert_int_equal(need, 5 + 16384 + 5 + 4);
	assert_int_equal(cvm_clienthello_parse(NULL, 0, &ch, &need), CVM_E_TRUNCATED);
	assert_true(need >= 5);
	assert_int_equal(cvm_clienthello_parse(NULL, 0, NULL, NULL), CVM_E_INVAL);
}

/* --- PROXY protocol --------------------------------------------------------------------- */

static void addr_is(const struct sockaddr_storage *ss, int family, const char *addr, unsigned port)
{
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(ss->ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		assert_non_null(inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf)));
		assert_int_equal(ntohs(s->sin_port), port);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		assert_non_null(inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf)));
		assert_int_equal(ntohs(s->sin6_port), port);
	}
	assert_string_equal(buf, addr);
}

static void proxy_prefixes_are_truncated(const uint8_t *b, size_t len)
{
	for (size_t n = 0; n < len; n++) {
		struct cvm_proxy_hdr h;
		size_t used = 9;

		assert_int_equal(cvm_proxy_parse(b, n, &h, &used), CVM_E_TRUNCATED);
		assert_int_equal(used, 0);
		assert_int_equal(h.version, 0);
	}
}

static void proxy_v1(void **state)
{
	static const char tcp4[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
	static const char tcp6[] = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
	static const char unknown[] = "PROXY UNKNOWN\r\n";
	static const char unknown_more[] = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n\x16";
	static const char *const bad[] = {
	    "PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",
	    "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",
	    "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
	    "PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
	    "PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
	    "PROXY TCP4 ::1 ::1 1 2\r\n",
	    "PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
	    "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
	    "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
	    "PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
	    "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX",
	    "PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n",
	    "PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n",
	    "PROXY \r\n",
	    "PROXy TCP4",
	    "GET / HTTP/1.1\r\n",
	};
	struct cvm_proxy_hdr h;
	char longline[200];
	size_t used;

	(void)state;
	assert_int_equal(cvm_proxy_parse((const uint8_t *)tcp4, strlen(tcp4), &h, &used), CVM_OK);
	assert_int_equal(used, strlen("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"));
	assert_int_equal(h.version, 1);
	assert_int_equal(h.family, AF_INET);
	addr_is(&h.src, AF_INET, "192.168.0.1", 56324);
	addr_is(&h.dst, AF_INET, "192.168.0.11", 443);
	proxy_prefixes_are_truncated((const uint8_t *)tcp4, used);

	assert_int_equal(cvm_proxy_parse((const uint8_t *)tcp6, strlen(tcp6), &h, &used), CVM_OK);
	assert_int_equal(used, strlen(tcp6));
	assert_int_equal(h.family, AF_INET6);
	addr_is(&h.src, AF_INET6, "2001:db8::1", 0);
	addr_is(&h.dst, AF_INET6, "::1", 65535);

	assert_int_equal(cvm_proxy_parse((const uint8_t *)unknown, strlen(unknown), &h, &used), CVM_OK);
	assert_int_equal(h.family, AF_UNSPEC);
	assert_int_equal(used, strlen(unknown));
	assert_int_equal(cvm_proxy_parse((const uint8_t *)unknown_more, strlen(unknown_more), &h, &used),
	                 CVM_OK);
	assert_int_equal(used, strlen(unknown_more) - 1);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("bad v1 %zu\n", i);
		assert_int_equal(cvm_proxy_parse((const uint8_t *)bad[i], strlen(bad[i]), &h, &used),
		                 CVM_E_FORMAT);
		assert_int_equal(used, 0);
	}
	/* the line is at most 107 bytes with its CRLF */
	memcpy(longline, "PROXY UNKNOWN ", 14);
	memset(longline + 14, 'x', sizeof(longline) - 14);
	memcpy(longline + 105, "\r\n", 2);
	assert_int_equal(cvm_proxy_parse((const uint8_t *)longline, 107, &h, &used), CVM_OK);
	assert_int_equal(used, 107);
	longline[105] = 'x';
	memcpy(longline + 106, "\r\n", 2);
	assert_int_equal(cvm_proxy_parse((const uint8_t *)longline, 108, &h, &used), CVM_E_FORMAT);
	assert_int_equal(cvm_proxy_parse((const uint8_t *)longline, 106, &h, &used), CVM_E_FORMAT);
	assert_int_equal(cvm_proxy_parse((const uint8_t *)longline, 105, &h, &used), CVM_E_TRUNCATED);
}

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static void proxy_v2(void **state)
{
	uint8_t b[128], *p = b;
	struct cvm_proxy_hdr h;
	size_t used, len;

	(void)state;
	/* PROXY, INET STREAM, 10.0.0.1:1234 -> 10.0.0.2:443, an ALPN TLV and a NOOP */
	memcpy(p, v2_sig, 12);
	p += 12;
	memcpy(p, "\x21\x11\x00\x14", 4);
	p += 4;
	memcpy(p, "\x0a\x00\x00\x01\x0a\x00\x00\x02\x04\xd2\x01\xbb", 12);
	p += 12;
	memcpy(p, "\x01\x00\x02h2\x04\x00\x00", 8);
	p += 8;
	len = (size_t)(p - b);
	b[len] = 0x16; /* the connection's own bytes follow */
	assert_int_equal(cvm_proxy_parse(b, len + 1, &h, &used), CVM_OK);
	assert_int_equal(used, len);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.family, AF_INET);
	assert_false(h.is_local);
	addr_is(&h.src, AF_INET, "10.0.0.1", 1234);
	addr_is(&h.dst, AF_INET, "10.0.0.2", 443);
	assert_int_equal(h.n_tlv, 2);
	assert_int_equal(h.tlvs_len, 8);
	assert_ptr_equal(h.tlvs, b + 28);
	proxy_prefixes_are_truncated(b, len);
	/* a TLV that runs past the block */
	b[30]++;
	assert_int_equal(cvm_proxy_parse(b, len, &h, &used), CVM_E_FORMAT);
	b[30]--;
	/* version 1 in the binary form, command 2, DGRAM, family 4 */
	b[12] = 0x11;
	assert_int_equal(cvm_proxy_parse(b, len, &h, &used), CVM_E_FORMAT);
	b[12] = 0x22;
	assert_int_equal(cvm_proxy_parse(b, len, &h, &used), CVM_E_FORMAT);
	b[12] = 0x21;
	b[13] = 0x12;
	assert_int_equal(cvm_proxy_parse(b, len, &h, &used), CVM_E_FORMAT);
	b[13] = 0x41;
	assert_int_equal(cvm_proxy_parse(b, len, &h, &used), CVM_E_FORMAT);
	/* an INET6 family with 20 bytes of block: the addresses do not fit */
	b[13] = 0x21;
	assert_int_equal(cvm_proxy_parse(b, len, &h, &used), CVM_E_FORMAT);
	b[13] = 0x11;
	/* LOCAL: the block is ignored, whatever it holds */
	b[12] = 0x20;
	assert_int_equal(cvm_proxy_parse(b, len, &h, &used), CVM_OK);
	assert_true(h.is_local);
	assert_int_equal(h.family, AF_UNSPEC);
	assert_int_equal(used, len);
	/* a signature with one wrong byte */
	b[5] = 0;
	assert_int_equal(cvm_proxy_parse(b, len, &h, &used), CVM_E_FORMAT);
	assert_int_equal(cvm_proxy_parse(b, 5, &h, &used), CVM_E_TRUNCATED);
	assert_int_equal(cvm_proxy_parse(b, 6, &h, &used), CVM_E_FORMAT);
}

static void proxy_build_round_trips(void **state)
{
	struct cvm_proxy_hdr in, got;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&in.src, *d4 = (struct sockaddr_in *)&in.dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&in.src, *d6 = (struct sockaddr_in6 *)&in.dst;
	uint8_t buf[128];
	size_t len, used;

	(void)state;
	for (int version = 1; version <= 2; version++) {
		memset(&in, 0, sizeof(in));
		in.family = AF_INET;
		s4->sin_family = d4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, "203.0.113.7", &s4->sin_addr), 1);
		assert_int_equal(inet_pton(AF_INET, "10.4.0.2", &d4->sin_addr), 1);
		s4->sin_port = htons(61000);
		d4->sin_port = htons(8080);
		assert_int_equal(cvm_proxy_build(&in, version, buf, sizeof(buf), &len), CVM_OK);
		assert_int_equal(cvm_proxy_parse(buf, len, &got, &used), CVM_OK);
		assert_int_equal(used, len);
		assert_int_equal(got.version, version);
		addr_is(&got.src, AF_INET, "203.0.113.7", 61000);
		addr_is(&got.dst, AF_INET, "10.4.0.2", 8080);
		if (version == 1)
			assert_memory_equal(buf, "PROXY TCP4 203.0.113.7 10.4.0.2 61000 8080\r\n", len);
		assert_int_equal(cvm_proxy_build(&in, version, buf, len - 1, &len), CVM_E_TOO_LARGE);
		assert_int_equal(len, 0);

		memset(&in, 0, sizeof(in));
		in.family = AF_INET6;
		s6->sin6_family = d6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", &s6->sin6_addr), 1);
		assert_int_equal(inet_pton(AF_INET6, "fd00::2", &d6->sin6_addr), 1);
		s6->sin6_port = htons(1);
		d6->sin6_port = htons(443);
		assert_int_equal(cvm_proxy_build(&in, version, buf, sizeof(buf), &len), CVM_OK);
		assert_int_equal(cvm_proxy_parse(buf, len, &got, &used), CVM_OK);
		assert_int_equal(used, len);
		addr_is(&got.src, AF_INET6, "2001:db8::7", 1);
		addr_is(&got.dst, AF_INET6, "fd00::2", 443);
		/* a family the addresses do not have */
		in.family = AF_INET;
		assert_int_equal(cvm_proxy_build(&in, version, buf, sizeof(buf), &len), CVM_E_INVAL);

		memset(&in, 0, sizeof(in));
		in.family = AF_UNSPEC;
		assert_int_equal(cvm_proxy_build(&in, version, buf, sizeof(buf), &len), CVM_OK);
		assert_int_equal(cvm_proxy_parse(buf, len, &got, &used), CVM_OK);
		assert_int_equal(got.family, AF_UNSPEC);
		assert_int_equal(got.is_local, version == 2);
	}
	assert_int_equal(cvm_proxy_build(&in, 3, buf, sizeof(buf), &len), CVM_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sni_cases_parse_as_dstack_does),
	    cmocka_unit_test(label_suffixes_follow_dstacks_order),
	    cmocka_unit_test(route_picks_app_or_custom),
	    cmocka_unit_test(txt_names_and_values),
	    cmocka_unit_test(captured_hellos_parse),
	    cmocka_unit_test(hello_prefixes_are_truncated),
	    cmocka_unit_test(hello_split_across_records),
	    cmocka_unit_test(hello_bit_flips_never_lie),
	    cmocka_unit_test(hand_built_hellos),
	    cmocka_unit_test(not_hellos_are_refused_at_once),
	    cmocka_unit_test(proxy_v1),
	    cmocka_unit_test(proxy_v2),
	    cmocka_unit_test(proxy_build_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
