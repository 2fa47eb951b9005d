/* lib/crypto/keccak.c: Keccak-256 (Ethereum's, not SHA3-256) against the
 * standard vectors, across the 136-byte rate boundary, incrementally at
 * every split point, and side by side with OpenSSL's SHA3-256 to show that
 * the two differ only by their padding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include <cvmkit/encoding.h>
#include <cvmkit/keccak.h>

static void assert_digest(const uint8_t d[32], const char *hex)
{
	char got[65];

	cvm_hex_encode(d, 32, got);
	assert_string_equal(got, hex);
}

static void keccak256_matches_the_standard_vectors(void **state)
{
	/* The empty string and "abc" are the values Ethereum tooling lists;
	 * the fox sentences are the usual Keccak-256 examples; the million
	 * 'a' is the long-message vector. Cross-checked with @noble/hashes. */
	static const struct {
		const char *msg;
		const char *hex;
	} v[] = {
	    {"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
	    {"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
	    {"The quick brown fox jumps over the lazy dog",
	     "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"},
	    {"The quick brown fox jumps over the lazy dog.",
	     "578951e24efd62a3d63a86f7cd19aaa53c898fe287d2552133220370240b572d"},
	};
	uint8_t d[32];
	uint8_t *million;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		cvm_keccak256(v[i].msg, strlen(v[i].msg), d);
		assert_digest(d, v[i].hex);
	}
	million = malloc(1000000);
	assert_non_null(million);
	memset(million, 'a', 1000000);
	cvm_keccak256(million, 1000000, d);
	assert_digest(d, "fadae6b49f129bbb812be8407b7b2894f34aecf6dbd1f9b0f0c7e9853098fc96");
	free(million);
}

static void keccak256_crosses_the_rate_boundary(void **state)
{
	/* 200 bytes of 0xa3 (the FIPS 202 bit-length example, over one block)
	 * and counting bytes one short of, at, and one past one and two blocks:
	 * 136 bytes is exactly one block, so the padding takes a whole block. */
	static const struct {
		size_t len;
		const char *hex;
	} seq[] = {
	    {135, "cbdfd9dee5faad3818d6b06f95a219fd290b0e1706f6a82e5a595b9ce9faca62"},
	    {136, "7ce759f1ab7f9ce437719970c26b0a66ff11fe3e38e17df89cf5d29c7d7f807e"},
	    {137, "ac73d4fae68b8453f764007c1a20ce95994187861f0c3227a3a8e99a73a3b1db"},
	    {271, "7c974895b2a88303ff2dc6b58f438ceb0b298cac91099ac0539cc0f477506191"},
	    {272, "fdf2ec49e749960d3c8521a0219af8d03e30e2b3bf19bd16150ee0eaf133d66e"},
	    {273, "4f707289a9c3ccd0c4a51f2f17339f5dd171d371c04ff7783b735b5b22682eaf"},
	};
	uint8_t buf[300], d[32];

	(void)state;
	memset(buf, 0xa3, 200);
	cvm_keccak256(buf, 200, d);
	assert_digest(d, "3a57666b048777f2c953dc4456f45a2588e1cb6f2da760122d530ac2ce607d4a");
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		cvm_keccak256(buf, seq[i].len, d);
		assert_digest(d, seq[i].hex);
	}
}

static void keccak256_incremental_equals_one_shot_at_every_split(void **state)
{
	uint8_t msg[300], one[32], inc[32];
	struct cvm_keccak256_ctx ctx;

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + 3);
	cvm_keccak256(msg, sizeof(msg), one);
	for (size_t split = 0; split <= sizeof(msg); split++) {
		cvm_keccak256_init(&ctx);
		cvm_keccak256_update(&ctx, msg, split);
		cvm_keccak256_update(&ctx, NULL, 0);
		cvm_keccak256_update(&ctx, msg + split, sizeof(msg) - split);
		cvm_keccak256_final(&ctx, inc);
		assert_memory_equal(one, inc, 32);
	}
	/* byte by byte */
	cvm_keccak256_init(&ctx);
	for (size_t i = 0; i < sizeof(msg); i++)
		cvm_keccak256_update(&ctx, msg + i, 1);
	cvm_keccak256_final(&ctx, inc);
	assert_memory_equal(one, inc, 32);
}

static void keccak256_final_wipes_the_context(void **state)
{
	static const struct cvm_keccak256_ctx zero;
	struct cvm_keccak256_ctx ctx;
	uint8_t d[32];

	(void)state;
	cvm_keccak256_init(&ctx);
	cvm_keccak256_update(&ctx, "secret material", 15);
	cvm_keccak256_final(&ctx, d);
	assert_memory_equal(&ctx, &zero, sizeof(ctx));
}

static void keccak256_is_not_sha3_256(void **state)
{
	/* Same permutation and rate, different padding byte (0x01 vs 0x06): the
	 * digests are unrelated. OpenSSL's SHA3-256 gives the FIPS 202 values. */
	static const char *msgs[] = {"", "abc"};
	static const char *sha3[] = {"a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a",
	                             "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"};
	uint8_t k[32], s[32];
	unsigned n = 0;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(EVP_Digest(msgs[i], strlen(msgs[i]), s, &n, EVP_sha3_256(), NULL), 1);
		assert_int_equal(n, 32);
		assert_digest(s, sha3[i]);
		cvm_keccak256(msgs[i], strlen(msgs[i]), k);
		assert_memory_not_equal(k, s, 32);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(keccak256_matches_the_standard_vectors),
	    cmocka_unit_test(keccak256_crosses_the_rate_boundary),
	    cmocka_unit_test(keccak256_incremental_equals_one_shot_at_every_split),
	    cmocka_unit_test(keccak256_final_wipes_the_context),
	    cmocka_unit_test(keccak256_is_not_sha3_256),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
