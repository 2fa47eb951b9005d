/* libFuzzer harness for lib/etcd's reply parsers (lib/etcd/parse.c): range,
 * put, delete, txn, lease grant/keepalive/timetolive, status, authenticate,
 * watch lines and error objects, all fed the same bytes (seeds captured
 * from etcd 3.4.23). Whatever the input, each returns cleanly; on success
 * every kv it returns has its key and value NUL-terminated at their
 * lengths, every count stays under its cap and watch events are in order. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/err.h>

#include "etcd/etcd_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_kv(const struct cvm_etcd_kv *kv)
{
	if (kv->key == NULL || kv->key[kv->key_len] != '\0' || kv->key_len > CVM_ETCD_KEY_MAX)
		__builtin_trap();
	if (kv->value != NULL && (kv->value[kv->value_len] != '\0' || kv->value_len > CVM_ETCD_VALUE_MAX))
		__builtin_trap();
}

static void check_kvs(const struct cvm_etcd_kvs *kvs)
{
	if (kvs->kv_count > CVM_ETCD_KVS_MAX || kvs->count < (int64_t)kvs->kv_count)
		__builtin_trap();
	for (size_t i = 0; i < kvs->kv_count; i++)
		check_kv(&kvs->kvs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CVM_ETCD_ERR_LEN], msg[128], version[32], *token = NULL;
	struct cvm_etcd_kvs kvs;
	struct cvm_etcd_kv kv;
	struct cvm_etcd_txn_result tr;
	struct cvm_etcd_lease_info li;
	struct etcd_watch_msg wm;
	int64_t a, b;
	uint64_t m, l;
	int code;

	if (etcd_parse_range(data, size, &kvs, err, sizeof(err)) == CVM_OK)
		check_kvs(&kvs);
	cvm_etcd_kvs_cleanup(&kvs);
	if (etcd_parse_put(data, size, &kv, &a, err, sizeof(err)) == CVM_OK && kv.key != NULL)
		check_kv(&kv);
	cvm_etcd_kv_cleanup(&kv);
	if (etcd_parse_delete(data, size, &a, &b, err, sizeof(err)) == CVM_OK && a < 0)
		__builtin_trap();
	if (etcd_parse_txn(data, size, &tr, err, sizeof(err)) == CVM_OK) {
		if (tr.result_count > CVM_ETCD_TXN_OPS_MAX)
			__builtin_trap();
		for (size_t i = 0; i < tr.result_count; i++)
			check_kvs(&tr.results[i].range);
	}
	cvm_etcd_txn_result_cleanup(&tr);
	if (etcd_parse_lease_grant(data, size, &a, &b, err, sizeof(err)) == CVM_OK && (a == 0 || b <= 0))
		__builtin_trap();
	if (etcd_parse_lease_keepalive(data, size, &a, &b, err, sizeof(err)) == CVM_OK && b < 0)
		__builtin_trap();
	if (etcd_parse_lease_ttl(data, size, &li, err, sizeof(err)) == CVM_OK) {
		for (size_t i = 0; i < li.key_count; i++)
			if (li.keys[i] == NULL)
				__builtin_trap();
	}
	cvm_etcd_lease_info_cleanup(&li);
	if (etcd_parse_status(data, size, &m, &l, version, sizeof(version), err, sizeof(err)) == CVM_OK &&
	    strlen(version) >= sizeof(version))
		__builtin_trap();
	if (etcd_parse_auth(data, size, &token, err, sizeof(err)) == CVM_OK &&
	    (token == NULL || token[0] == '\0'))
		__builtin_trap();
	free(token);
	if (etcd_parse_watch_line(data, size, &wm, err, sizeof(err)) == CVM_OK) {
		for (size_t i = 0; i < wm.event_count; i++) {
			check_kv(&wm.events[i].kv);
			if (i > 0 && wm.events[i].kv.mod_revision < wm.events[i - 1].kv.mod_revision)
				__builtin_trap();
		}
	}
	etcd_watch_msg_cleanup(&wm);
	if (etcd_reply_error(data, size, &code, msg, sizeof(msg)) && (code < 0 || strlen(msg) >= sizeof(msg)))
		__builtin_trap();
	if (strnlen(err, sizeof(err)) >= sizeof(err))
		__builtin_trap();
	return 0;
}
