/* lib/etcd: the reply parsers on replies captured from etcd 3.4.23 (the
 * fuzz/corpus/etcd_reply seeds), every truncation and every bit flip of
 * them, fields of the wrong type named in the error, int64 edge cases, the
 * prefix range_end, and the client's argument checks and failover on
 * endpoints that refuse connections. tests/integration/etcd_cluster.sh runs
 * the client against a real 3-member cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cvmkit/err.h>
#include <cvmkit/etcd.h>

#include "etcd/etcd_int.h"

static const char range_reply[] =
    "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
    "\"revision\":\"2\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\","
    "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}],\"count\":\"1\"}";
static const char txn_reply[] =
    "{\"header\":{\"revision\":\"9\"},\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":"
    "{\"revision\":\"9\"}}},{\"response_delete_range\":{\"header\":{\"revision\":\"9\"},\"deleted\":\"1\"}},"
    "{\"response_range\":{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\"}]"
    ","
    "\"count\":\"1\"}}]}";
static const char watch_line[] =
    "{\"result\":{\"header\":{\"revision\":\"8\"},\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"dzE=\","
    "\"mod_revision\":\"8\"},\"prev_kv\":{\"key\":\"dzE=\",\"create_revision\":\"6\",\"mod_revision\":\"7\","
    "\"version\":\"2\",\"value\":\"Mg==\"}}]}}";
static const char ttl_reply[] =
    "{\"header\":{\"revision\":\"4\"},\"ID\":\"2324035883969806604\",\"TTL\":\"4\","
    "\"grantedTTL\":\"5\",\"keys\":[\"YQ==\"]}";

static void range_parses_the_captured_reply(void **state)
{
	struct cvm_etcd_kvs kvs;
	char err[CVM_ETCD_ERR_LEN];

	(void)state;
	assert_int_equal(
	    etcd_parse_range((const uint8_t *)range_reply, strlen(range_reply), &kvs, err, sizeof(err)),
	    CVM_OK);
	assert_int_equal(kvs.revision, 2);
	assert_int_equal(kvs.count, 1);
	assert_int_equal(kvs.kv_count, 1);
	assert_string_equal(kvs.kvs[0].key, "foo");
	assert_int_equal(kvs.kvs[0].value_len, 3);
	assert_memory_equal(kvs.kvs[0].value, "bar", 4); /* with its NUL */
	assert_int_equal(kvs.kvs[0].version, 1);
	assert_int_equal(kvs.kvs[0].lease, 0); /* left out: zero */
	cvm_etcd_kvs_cleanup(&kvs);
}

static void txn_and_watch_and_lease_parse(void **state)
{
	struct cvm_etcd_txn_result tr;
	struct etcd_watch_msg wm;
	struct cvm_etcd_lease_info li;
	char err[CVM_ETCD_ERR_LEN];

	(void)state;
	assert_int_equal(etcd_parse_txn((const uint8_t *)txn_reply, strlen(txn_reply), &tr, err, sizeof(err)),
	                 CVM_OK);
	assert_true(tr.succeeded);
	assert_int_equal(tr.result_count, 3);
	assert_int_equal(tr.results[0].type, CVM_ETCD_OP_PUT);
	assert_int_equal(tr.results[1].type, CVM_ETCD_OP_DELETE);
	assert_int_equal(tr.results[1].deleted, 1);
	assert_int_equal(tr.results[2].type, CVM_ETCD_OP_RANGE);
	assert_string_equal(tr.results[2].range.kvs[0].key, "a");
	cvm_etcd_txn_result_cleanup(&tr);
	assert_int_equal(
	    etcd_parse_watch_line((const uint8_t *)watch_line, strlen(watch_line), &wm, err, sizeof(err)),
	    CVM_OK);
	assert_int_equal(wm.event_count, 1);
	assert_int_equal(wm.events[0].type, CVM_ETCD_EVENT_DELETE);
	assert_string_equal(wm.events[0].kv.key, "w1");
	assert_string_equal((const char *)wm.events[0].prev_kv.value, "2");
	etcd_watch_msg_cleanup(&wm);
	assert_int_equal(
	    etcd_parse_lease_ttl((const uint8_t *)ttl_reply, strlen(ttl_reply), &li, err, sizeof(err)),
	    CVM_OK);
	assert_int_equal(li.id, 2324035883969806604LL);
	assert_int_equal(li.granted_ttl, 5);
	assert_int_equal(li.key_count, 1);
	assert_string_equal(li.keys[0], "a");
	cvm_etcd_lease_info_cleanup(&li);
}

/* parse_any runs the parser `which` and frees what it made. */
static int parse_any(int which, const uint8_t *p, size_t n, char *err, size_t err_len)
{
	struct cvm_etcd_kvs kvs;
	struct cvm_etcd_txn_result tr;
	struct etcd_watch_msg wm;
	struct cvm_etcd_lease_info li;
	int r;

	switch (which) {
	case 0:
		r = etcd_parse_range(p, n, &kvs, err, err_len);
		cvm_etcd_kvs_cleanup(&kvs);
		return r;
	case 1:
		r = etcd_parse_txn(p, n, &tr, err, err_len);
		cvm_etcd_txn_result_cleanup(&tr);
		return r;
	case 2:
		r = etcd_parse_watch_line(p, n, &wm, err, err_len);
		etcd_watch_msg_cleanup(&wm);
		return r;
	default:
		r = etcd_parse_lease_ttl(p, n, &li, err, err_len);
		cvm_etcd_lease_info_cleanup(&li);
		return r;
	}
}

static const char *const samples[] = {range_reply, txn_reply, watch_line, ttl_reply};

static void every_truncation_is_refused(void **state)
{
	char err[CVM_ETCD_ERR_LEN];

	(void)state;
	for (int w = 0; w < 4; w++) {
		size_t n = strlen(samples[w]);

		for (size_t cut = 0; cut < n; cut++) {
			uint8_t *p = malloc(cut + 1);

			assert_non_null(p);
			memcpy(p, samples[w], cut);
			if (parse_any(w, p, cut, err, sizeof(err)) == CVM_OK)
				fail_msg("parser %d accepted the first %zu of %zu bytes", w, cut, n);
			free(p);
		}
	}
}

/* Every single-bit flip: never a crash (ASan/valgrind runs of this test),
 * and a flip in a structural byte or a checked field is refused: at least
 * the flips of the quotes, braces and digits are caught, which is most. */
static void bit_flips_are_refused_or_harmless(void **state)
{
	char err[CVM_ETCD_ERR_LEN];

	(void)state;
	for (int w = 0; w < 4; w++) {
		size_t n = strlen(samples[w]), refused = 0;
		uint8_t *p = malloc(n);

		assert_non_null(p);
		for (size_t i = 0; i < n * 8; i++) {
			memcpy(p, samples[w], n);
			p[i / 8] ^= (uint8_t)(1u << (i % 8));
			if (parse_any(w, p, n, err, sizeof(err)) != CVM_OK) {
				refused++;
				assert_true(strlen(err) > 0);
			}
		}
		free(p);
		/* Flips inside unchecked fields (cluster_id, raft_term) and letters
		 * of field names that are then ignored pass; the rest must not. */
		if (refused * 2 < n * 8)
			fail_msg("parser %d refused only %zu of %zu bit flips", w, refused, n * 8);
	}
}

static void wrong_types_name_the_field(void **state)
{
	static const struct {
		const char *json, *field;
	} bad[] = {
	    {"{\"header\":{\"revision\":2}}", "header.revision"},
	    {"{\"header\":{},\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"x\"}],\"count\":\"1\"}",
	     "kvs[0].mod_revision"},
	    {"{\"header\":{},\"kvs\":[{\"key\":\"!!\"}],\"count\":\"1\"}", "key"},
	    {"{\"header\":{},\"kvs\":[{\"value\":\"YQ==\"}],\"count\":\"1\"}", "no \"key\""},
	    {"{\"header\":{},\"kvs\":{},\"count\":\"1\"}", "kvs is not an array"},
	    {"{\"kvs\":[]}", "no \"header\""},
	    {"{\"header\":{},\"kvs\":[{\"key\":\"YQ==\"}]}", "count"},
	    {"{\"header\":{},\"count\":\"9223372036854775808\"}", "count"},
	    {"{\"header\":{},\"count\":\"-\"}", "count"},
	    {"{\"header\":{},\"count\":\"1\",\"more\":\"yes\"}", "more"},
	    {"[1]", "not a JSON object"},
	    {"{\"header\":{},\"header\":{}}", "not JSON"},
	};
	struct cvm_etcd_kvs kvs;
	char err[CVM_ETCD_ERR_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = etcd_parse_range((const uint8_t *)bad[i].json, strlen(bad[i].json), &kvs, err,
		                         sizeof(err));

		cvm_etcd_kvs_cleanup(&kvs);
		if (r == CVM_OK || strstr(err, bad[i].field) == NULL)
			fail_msg("%s: r=%d err=%s", bad[i].json, r, err);
	}
}

static void int64_edges(void **state)
{
	const char ok[] =
	    "{\"header\":{\"revision\":\"9223372036854775807\"},\"count\":\"-9223372036854775808\"}";
	struct cvm_etcd_kvs kvs;
	char err[CVM_ETCD_ERR_LEN];

	(void)state;
	assert_int_equal(etcd_parse_range((const uint8_t *)ok, strlen(ok), &kvs, err, sizeof(err)), CVM_OK);
	assert_true(kvs.revision == INT64_MAX);
	assert_true(kvs.count == INT64_MIN);
	cvm_etcd_kvs_cleanup(&kvs);
}

static void errors_and_prefix_end(void **state)
{
	const char e1[] =
	    "{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no leader\",\"code\":14}";
	const char e2[] =
	    "{\"error\":{\"grpc_code\":16,\"http_code\":401,\"message\":\"invalid auth token\"}}";
	uint8_t out[4];
	char msg[64];
	int code;

	(void)state;
	assert_true(etcd_reply_error((const uint8_t *)e1, strlen(e1), &code, msg, sizeof(msg)));
	assert_int_equal(code, 14);
	assert_string_equal(msg, "etcdserver: no leader");
	assert_true(etcd_reply_error((const uint8_t *)e2, strlen(e2), &code, msg, sizeof(msg)));
	assert_int_equal(code, 16);
	assert_false(
	    etcd_reply_error((const uint8_t *)range_reply, strlen(range_reply), &code, msg, sizeof(msg)));
	assert_int_equal(etcd_prefix_end((const uint8_t *)"ab", 2, out), 2);
	assert_memory_equal(out, "ac", 2);
	assert_int_equal(etcd_prefix_end((const uint8_t *)"a\xff", 2, out), 1);
	assert_memory_equal(out, "b", 1);
	assert_int_equal(etcd_prefix_end((const uint8_t *)"\xff\xff", 2, out), 0);
}

static void client_checks_arguments_and_fails_over_dead_endpoints(void **state)
{
	/* Port 1 on loopback refuses connections: nothing is ever sent. */
	const char *const dead[] = {"http://127.0.0.1:1", "http://127.0.0.1:1/"};
	const char *const bad[] = {"ftp://127.0.0.1:1"};
	struct cvm_etcd_opts o = {.endpoints = dead, .n_endpoints = 2, .timeout_ms = 300};
	struct cvm_etcd *cl = NULL;
	struct cvm_etcd_kv kv;
	bool found;

	(void)state;
	o.endpoints = bad;
	o.n_endpoints = 1;
	assert_int_equal(cvm_etcd_new(&o, &cl), CVM_E_INVAL);
	o.endpoints = dead;
	o.n_endpoints = 0;
	assert_int_equal(cvm_etcd_new(&o, &cl), CVM_E_INVAL);
	o.n_endpoints = 2;
	o.user = "root"; /* without a password */
	assert_int_equal(cvm_etcd_new(&o, &cl), CVM_E_INVAL);
	o.user = NULL;
	assert_int_equal(cvm_etcd_new(&o, &cl), CVM_OK);
	assert_int_equal(cvm_etcd_get(cl, "k", &kv, &found, NULL), CVM_E_UPSTREAM);
	assert_false(found);
	assert_non_null(strstr(cvm_etcd_errmsg(cl), "127.0.0.1:1"));
	/* A put that never left is not "maybe applied". */
	assert_int_equal(cvm_etcd_put(cl, "k", "v", 1, 0, NULL, NULL), CVM_E_UPSTREAM);
	assert_null(strstr(cvm_etcd_errmsg(cl), "may have been applied"));
	assert_int_equal(cvm_etcd_put(cl, "", "v", 1, 0, NULL, NULL), CVM_E_INVAL);
	cvm_etcd_free(cl);
	cvm_etcd_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(range_parses_the_captured_reply),
	    cmocka_unit_test(txn_and_watch_and_lease_parse),
	    cmocka_unit_test(every_truncation_is_refused),
	    cmocka_unit_test(bit_flips_are_refused_or_harmless),
	    cmocka_unit_test(wrong_types_name_the_field),
	    cmocka_unit_test(int64_edges),
	    cmocka_unit_test(errors_and_prefix_end),
	    cmocka_unit_test(client_checks_arguments_and_fails_over_dead_endpoints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
