/* lib/chain: the contract ABI of on-chain authorization (AppBootInfo call
 * data; (bool, string) and (string) return values) against encodings laid
 * out by hand word by word from the Solidity ABI specification, selectors
 * against the values solc 0.8.28 lists for our contracts and the well-known
 * ERC-20 ones, the JSON-RPC reply parser, and the client failing closed on a
 * node that is down. tests/integration/kms_chain.sh runs the same code
 * against the contracts on a local chain. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <cvmkit/chain.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

/* from_hex decodes `hex` (white space ignored, for word-per-line layouts)
 * into a new buffer. */
static uint8_t *from_hex(const char *hex, size_t *len)
{
	size_t n = strlen(hex), k = 0;
	char *clean = malloc(n + 1);
	uint8_t *out = malloc(n / 2 + 1);

	assert_non_null(clean);
	assert_non_null(out);
	for (size_t i = 0; i < n; i++)
		if (hex[i] != ' ' && hex[i] != '\n')
			clean[k++] = hex[i];
	assert_int_equal(cvm_hex_decode(clean, k, out, n / 2 + 1, len), CVM_OK);
	free(clean);
	return out;
}

static void fill_boot_info(struct cvm_chain_boot_info *bi)
{
	memset(bi, 0, sizeof(*bi));
	memset(bi->app_id, 0x11, sizeof(bi->app_id));
	memset(bi->compose_hash, 0x22, sizeof(bi->compose_hash));
	memset(bi->instance_id, 0x33, sizeof(bi->instance_id));
	memset(bi->device_id, 0x44, sizeof(bi->device_id));
	memset(bi->mr_aggregated, 0x55, sizeof(bi->mr_aggregated));
	memset(bi->mr_system, 0x66, sizeof(bi->mr_system));
	memset(bi->os_image_hash, 0x77, sizeof(bi->os_image_hash));
	bi->tcb_status = "UpToDate";
}

#define W_11 "0000000000000000000000001111111111111111111111111111111111111111"
#define W_22 "2222222222222222222222222222222222222222222222222222222222222222"
#define W_33 "0000000000000000000000003333333333333333333333333333333333333333"
#define W_44 "4444444444444444444444444444444444444444444444444444444444444444"
#define W_55 "5555555555555555555555555555555555555555555555555555555555555555"
#define W_66 "6666666666666666666666666666666666666666666666666666666666666666"
#define W_77 "7777777777777777777777777777777777777777777777777777777777777777"
#define W(x) "00000000000000000000000000000000000000000000000000000000000000" x
#define W4(x) "000000000000000000000000000000000000000000000000000000000000" x
/* "UpToDate" and the two advisory ids, right-padded with zeros. */
#define W_UPTODATE "5570546f44617465000000000000000000000000000000000000000000000000"
#define W_SA837 "494e54454c2d53412d3030383337000000000000000000000000000000000000"
#define W_SA615 "494e54454c2d53412d3030363135000000000000000000000000000000000000"

static void selectors_match_solc_and_the_erc20_values(void **state)
{
	uint8_t sel[4];
	char hex[9];

	(void)state;
	cvm_chain_selector("transfer(address,uint256)", sel);
	cvm_hex_encode(sel, 4, hex);
	assert_string_equal(hex, "a9059cbb");
	cvm_chain_selector("balanceOf(address)", sel);
	cvm_hex_encode(sel, 4, hex);
	assert_string_equal(hex, "70a08231");
	/* solc 0.8.28's evm.methodIdentifiers for tests/chain/DstackKms.sol. */
	cvm_chain_selector(CVM_CHAIN_SIG_IS_APP_ALLOWED, sel);
	cvm_hex_encode(sel, 4, hex);
	assert_string_equal(hex, "1e079198");
	cvm_chain_selector(CVM_CHAIN_SIG_IS_KMS_ALLOWED, sel);
	cvm_hex_encode(sel, 4, hex);
	assert_string_equal(hex, "e067ec9d");
}

static void boot_call_encodes_the_tuple_word_by_word(void **state)
{
	/* isAppAllowed(AppBootInfo) with two advisories, laid out by hand: the
	 * tuple's offset; the 7 static fields; the offsets of tcbStatus (9
	 * words in: 0x120) and advisoryIds (0x120 + length word + 1 data word =
	 * 0x160), both from the tuple's start; "UpToDate"; the array's count,
	 * its two string offsets from after the count (0x40, 0x80); each
	 * string's length (14) and padded bytes. */
	static const char want_hex[] =
	    "1e079198\n" W("20") "\n" W_11 "\n" W_22 "\n" W_33 "\n" W_44 "\n" W_55 "\n" W_66 "\n" W_77
	                         "\n" W4("0120") "\n" W4("0160") "\n" W("08") "\n" W_UPTODATE "\n" W(
	                             "02") "\n" W("40") "\n" W("80") "\n" W("0e") "\n" W_SA837
	                                                                          "\n" W("0e") "\n" W_SA615;
	static const char *const adv[] = {"INTEL-SA-00837", "INTEL-SA-00615"};
	struct cvm_chain_boot_info bi;
	uint8_t *got = NULL, *want;
	size_t got_len = 0, want_len = 0;

	(void)state;
	want = from_hex(want_hex, &want_len);
	fill_boot_info(&bi);
	bi.advisory_ids = adv;
	bi.advisory_count = 2;
	assert_int_equal(cvm_chain_encode_boot_call(CVM_CHAIN_APP, &bi, &got, &got_len), CVM_OK);
	assert_int_equal(got_len, 4 + 19 * 32);
	assert_int_equal(want_len, got_len);
	assert_memory_equal(got, want, got_len);
	free(got);
	free(want);
}

static void boot_call_without_advisories_ends_at_the_empty_array(void **state)
{
	static const char want_hex[] = "e067ec9d" W("20") W_11 W_22 W_33 W_44 W_55 W_66 W_77 W4("0120")
	    W4("0160") W("08") W_UPTODATE W("00");
	struct cvm_chain_boot_info bi;
	uint8_t *got = NULL, *want;
	size_t got_len = 0, want_len = 0;

	(void)state;
	want = from_hex(want_hex, &want_len);
	fill_boot_info(&bi);
	assert_int_equal(cvm_chain_encode_boot_call(CVM_CHAIN_KMS, &bi, &got, &got_len), CVM_OK);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, got_len);
	free(got);
	free(want);
}

static void boot_call_refuses_missing_and_oversized_fields(void **state)
{
	static char big[CVM_CHAIN_STRING_MAX + 2];
	const char *adv[] = {NULL};
	struct cvm_chain_boot_info bi;
	uint8_t *got = NULL;
	size_t got_len = 0;

	(void)state;
	fill_boot_info(&bi);
	bi.tcb_status = NULL;
	assert_int_equal(cvm_chain_encode_boot_call(CVM_CHAIN_APP, &bi, &got, &got_len), CVM_E_INVAL);
	fill_boot_info(&bi);
	bi.advisory_ids = adv;
	bi.advisory_count = 1;
	assert_int_equal(cvm_chain_encode_boot_call(CVM_CHAIN_APP, &bi, &got, &got_len), CVM_E_INVAL);
	fill_boot_info(&bi);
	bi.advisory_count = CVM_CHAIN_ADVISORIES_MAX + 1;
	bi.advisory_ids = adv;
	assert_int_equal(cvm_chain_encode_boot_call(CVM_CHAIN_APP, &bi, &got, &got_len), CVM_E_TOO_LARGE);
	memset(big, 'a', sizeof(big) - 1);
	fill_boot_info(&bi);
	bi.tcb_status = big;
	assert_int_equal(cvm_chain_encode_boot_call(CVM_CHAIN_APP, &bi, &got, &got_len), CVM_E_TOO_LARGE);
	assert_null(got);
	assert_int_equal(got_len, 0);
}

/* (false, "the compose hash is not allowed"): 31 bytes. */
#define DENIED W("00") W("40") W("1f") "74686520636f6d706f73652068617368206973206e6f7420616c6c6f77656400"

static void bool_string_decodes_the_contract_answer(void **state)
{
	static const char allowed_hex[] = W("01") W("40") W("00");
	uint8_t *b;
	size_t n;
	char reason[64];
	bool ok = true;

	(void)state;
	b = from_hex(DENIED, &n);
	assert_int_equal(cvm_chain_decode_bool_string(b, n, &ok, reason, sizeof(reason)), CVM_OK);
	assert_false(ok);
	assert_string_equal(reason, "the compose hash is not allowed");
	free(b);
	b = from_hex(allowed_hex, &n);
	assert_int_equal(cvm_chain_decode_bool_string(b, n, &ok, reason, sizeof(reason)), CVM_OK);
	assert_true(ok);
	assert_string_equal(reason, "");
	free(b);
}

static void bool_string_rejects_every_truncation_and_an_extra_byte(void **state)
{
	static const char allowed_hex[] =
	    W("01") W("40") W("02") "6f6b000000000000000000000000000000000000000000000000000000000000";
	uint8_t *b, *longer;
	size_t n;
	char reason[64];
	bool ok;

	(void)state;
	b = from_hex(allowed_hex, &n);
	for (size_t k = 0; k < n; k++) {
		ok = true;
		assert_int_not_equal(cvm_chain_decode_bool_string(b, k, &ok, reason, sizeof(reason)), CVM_OK);
		assert_false(ok);
	}
	longer = malloc(n + 1);
	assert_non_null(longer);
	memcpy(longer, b, n);
	longer[n] = 0;
	ok = true;
	assert_int_equal(cvm_chain_decode_bool_string(longer, n + 1, &ok, reason, sizeof(reason)),
	                 CVM_E_FORMAT);
	assert_false(ok);
	free(longer);
	free(b);
}

static void bool_string_never_reads_a_flipped_answer_as_the_same_allow(void **state)
{
	/* Every single-bit flip of (true, "ok") fails, or decodes to a
	 * different bool or reason: no flip is read as the same allow. */
	static const char allowed_hex[] =
	    W("01") W("40") W("02") "6f6b000000000000000000000000000000000000000000000000000000000000";
	uint8_t *b;
	size_t n;
	char reason[64];
	bool ok;

	(void)state;
	b = from_hex(allowed_hex, &n);
	for (size_t bit = 0; bit < n * 8; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (cvm_chain_decode_bool_string(b, n, &ok, reason, sizeof(reason)) == CVM_OK)
			assert_true(!ok || strcmp(reason, "ok") != 0);
		else
			assert_false(ok);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(b);
}

static void bool_string_rejects_non_canonical_words(void **state)
{
	static const char *const bad[] = {
	    W("02") W("40") W("00"),         /* bool 2 */
	    W("01") W("60") W("00") W("00"), /* offset 0x60 */
	    "0100000000000000000000000000000000000000000000000000000000000001" W("40") W("00"), /* high bit */
	    W("01") W("40")
	        W("01") "41ff000000000000000000000000000000000000000000000000000000000000", /* padding */
	    W("01") W("40")
	        W("01") "0a00000000000000000000000000000000000000000000000000000000000000", /* newline */
	    W("01") W("40") W4("0401"),                                                     /* too long */
	};
	uint8_t *b;
	size_t n;
	char reason[64];
	bool ok;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = from_hex(bad[i], &n);
		ok = true;
		assert_int_not_equal(cvm_chain_decode_bool_string(b, n, &ok, reason, sizeof(reason)), CVM_OK);
		assert_false(ok);
		free(b);
	}
}

static void string_decodes_and_cuts_to_the_buffer(void **state)
{
	static const char any_hex[] =
	    W("20") W("03") "616e790000000000000000000000000000000000000000000000000000000000";
	uint8_t *b;
	size_t n;
	char out[8], tiny[3];

	(void)state;
	b = from_hex(any_hex, &n);
	assert_int_equal(cvm_chain_decode_string(b, n, out, sizeof(out)), CVM_OK);
	assert_string_equal(out, "any");
	assert_int_equal(cvm_chain_decode_string(b, n, tiny, sizeof(tiny)), CVM_OK);
	assert_string_equal(tiny, "an");
	assert_int_not_equal(cvm_chain_decode_string(b, n - 1, out, sizeof(out)), CVM_OK);
	free(b);
}

static int parse(const char *json, uint64_t id, uint8_t **out, size_t *out_len, char *err, size_t err_len)
{
	return cvm_chain_rpc_reply_parse((const uint8_t *)json, strlen(json), id, out, out_len, err, err_len);
}

static void rpc_reply_returns_the_result_bytes(void **state)
{
	uint8_t *out = NULL;
	size_t n = 0;
	char err[256];

	(void)state;
	assert_int_equal(
	    parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x01ff\"}", 7, &out, &n, err, sizeof(err)),
	    CVM_OK);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 0x01);
	assert_int_equal(out[1], 0xff);
	free(out);
	assert_int_equal(
	    parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x\"}", 7, &out, &n, err, sizeof(err)), CVM_OK);
	assert_non_null(out);
	assert_int_equal(n, 0);
	free(out);
}

static void rpc_reply_turns_a_node_error_into_upstream_with_its_message(void **state)
{
	uint8_t *out = NULL;
	size_t n = 0;
	char err[256];

	(void)state;
	assert_int_equal(
	    parse(
	        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":3,\"message\":\"execution reverted\\n\"}}",
	        1, &out, &n, err, sizeof(err)),
	    CVM_E_UPSTREAM);
	assert_null(out);
	assert_string_equal(err, "the chain node answered error 3: execution reverted?");
}

static void rpc_reply_rejects_malformed_envelopes(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":\"0x\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"0x\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":\"0x\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x\",\"error\":{\"code\":1,\"message\":\"x\"}}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x\",\"result\":\"0x01\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"01\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x0\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0xzz\"}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":true}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"reverted\"}",
	};
	uint8_t *out = NULL;
	size_t n = 0;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i], 1, &out, &n, err, sizeof(err)), CVM_E_FORMAT);
		assert_null(out);
		assert_true(err[0] != '\0');
	}
}

static void rpc_reply_refuses_a_result_over_the_cap(void **state)
{
	size_t hex = 2 * (CVM_CHAIN_RETURN_MAX + 1);
	char *json = malloc(hex + 64);
	uint8_t *out = NULL;
	size_t n = 0;
	char err[256];
	int k;

	(void)state;
	assert_non_null(json);
	k = snprintf(json, 64, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x");
	memset(json + k, '0', hex);
	memcpy(json + (size_t)k + hex, "\"}", 3);
	assert_int_equal(parse(json, 1, &out, &n, err, sizeof(err)), CVM_E_TOO_LARGE);
	assert_null(out);
	free(json);
}

static void is_allowed_fails_closed_when_the_node_is_down(void **state)
{
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	struct cvm_chain_boot_info bi;
	struct cvm_chain_client c;
	uint8_t kms[CVM_CHAIN_ADDRESS_LEN] = {0x5f};
	char url[96], reason[64] = "x", err[512] = "";
	bool ok = true;
	int s;

	(void)state;
	/* A loopback port that was free a moment ago and has no listener. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	close(s);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
	c.rpc_url = url;
	c.timeout_ms = 3000;
	fill_boot_info(&bi);
	assert_int_equal(
	    cvm_chain_is_allowed(&c, kms, CVM_CHAIN_APP, &bi, &ok, reason, sizeof(reason), err, sizeof(err)),
	    CVM_E_UPSTREAM);
	assert_false(ok);
	assert_string_equal(reason, "");
	assert_non_null(strstr(err, "cannot be reached"));
	/* A node URL's user part and path (where providers put API keys) stay
	 * out of the error, which ends up in logs. */
	snprintf(url, sizeof(url), "http://u:pw-SECRET@127.0.0.1:%u/v3/KEY-SECRET",
	         (unsigned)ntohs(a.sin_port));
	ok = true;
	assert_int_equal(
	    cvm_chain_is_allowed(&c, kms, CVM_CHAIN_APP, &bi, &ok, reason, sizeof(reason), err, sizeof(err)),
	    CVM_E_UPSTREAM);
	assert_false(ok);
	assert_null(strstr(err, "SECRET"));
	snprintf(url, sizeof(url), "the chain node http://127.0.0.1:%u cannot be reached",
	         (unsigned)ntohs(a.sin_port));
	assert_non_null(strstr(err, url));
	c.rpc_url = "file:///etc/passwd";
	ok = true;
	assert_int_equal(
	    cvm_chain_is_allowed(&c, kms, CVM_CHAIN_APP, &bi, &ok, reason, sizeof(reason), err, sizeof(err)),
	    CVM_E_INVAL);
	assert_false(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(selectors_match_solc_and_the_erc20_values),
	    cmocka_unit_test(boot_call_encodes_the_tuple_word_by_word),
	    cmocka_unit_test(boot_call_without_advisories_ends_at_the_empty_array),
	    cmocka_unit_test(boot_call_refuses_missing_and_oversized_fields),
	    cmocka_unit_test(bool_string_decodes_the_contract_answer),
	    cmocka_unit_test(bool_string_rejects_every_truncation_and_an_extra_byte),
	    cmocka_unit_test(bool_string_never_reads_a_flipped_answer_as_the_same_allow),
	    cmocka_unit_test(bool_string_rejects_non_canonical_words),
	    cmocka_unit_test(string_decodes_and_cuts_to_the_buffer),
	    cmocka_unit_test(rpc_reply_returns_the_result_bytes),
	    cmocka_unit_test(rpc_reply_turns_a_node_error_into_upstream_with_its_message),
	    cmocka_unit_test(rpc_reply_rejects_malformed_envelopes),
	    cmocka_unit_test(rpc_reply_refuses_a_result_over_the_cap),
	    cmocka_unit_test(is_allowed_fails_closed_when_the_node_is_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
