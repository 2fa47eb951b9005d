/* An etcd v3 client over etcd's gRPC-JSON gateway (POST /v3/..., HTTP/1.1
 * through libcurl), for the cluster state of cvm-gatewayd. docs/etcd.md
 * describes what it does and its failover semantics.
 *
 * A client (struct cvm_etcd) is used by one thread at a time: it keeps one
 * libcurl handle, its kept-alive connection, the current endpoint, the auth
 * token and the last error sentence. Give each thread a client of its own.
 *
 * Keys are NUL-terminated strings (no NUL inside); values are bytes. Every
 * kv a call returns is owned by the result it is in and freed by that
 * result's _cleanup. Every response is read up to opts.max_response bytes
 * and checked field by field: a missing field or one of the wrong type is
 * CVM_E_FORMAT, and cvm_etcd_errmsg names it. An error etcd answered is
 * CVM_E_UPSTREAM (or CVM_E_NOT_FOUND for a lease etcd does not know), with
 * etcd's message quoted. */
#ifndef CVMKIT_ETCD_H
#define CVMKIT_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define CVM_ETCD_RESPONSE_MAX_DEFAULT 4194304 /* 4 MiB */
#define CVM_ETCD_ENDPOINTS_MAX 16
/* etcd's own cap on a request (--max-request-bytes, 1.5 MiB by default). */
#define CVM_ETCD_KEY_MAX 1572864   /* 1.5 MiB */
#define CVM_ETCD_VALUE_MAX 1572864 /* 1.5 MiB */
/* etcd's default --max-txn-ops. */
#define CVM_ETCD_TXN_OPS_MAX 128
/* The most kvs (or lease keys, or watch events) one response may hold. */
#define CVM_ETCD_KVS_MAX 1000000
#define CVM_ETCD_ERR_LEN 256

struct cvm_etcd_opts {
	const char *const *endpoints; /* "http://127.0.0.1:2379", "https://..." */
	size_t n_endpoints;
	long timeout_ms;             /* per request; 0: 5000 */
	const char *ca_file;         /* https: the CA of the members' certificates */
	const char *cert_file;       /* https: client certificate (PEM), or NULL */
	const char *key_file;        /* https: its private key (PEM), or NULL */
	const char *user, *password; /* etcd auth, or NULL */
	size_t max_response;         /* 0: CVM_ETCD_RESPONSE_MAX_DEFAULT */
};

struct cvm_etcd;

/* cvm_etcd_new checks `opts` and makes a client; it connects on the first
 * request. The strings of `opts` are copied (the password into secret
 * memory). It takes a reference on libcurl's global state (curl_global_init;
 * cvm_etcd_free drops it). Returns 0, CVM_E_INVAL (with no client to ask, the reason is
 * not kept: check the endpoints are http(s) URLs, at most
 * CVM_ETCD_ENDPOINTS_MAX) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_etcd_new(const struct cvm_etcd_opts *opts, struct cvm_etcd **out);
/* cvm_etcd_free closes the connection and wipes the password and token.
 * NULL is a no-op. */
CVM_API void cvm_etcd_free(struct cvm_etcd *cl);
/* cvm_etcd_errmsg returns the sentence that says why the last call failed
 * ("" after a success); it lives until the next call on `cl`. */
CVM_API const char *cvm_etcd_errmsg(const struct cvm_etcd *cl);
/* cvm_etcd_endpoint returns the endpoint the client talks to now. */
CVM_API const char *cvm_etcd_endpoint(const struct cvm_etcd *cl);

struct cvm_etcd_kv {
	char *key; /* key_len bytes and a NUL */
	size_t key_len;
	uint8_t *value; /* value_len bytes and a NUL (NULL for keys_only) */
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};
CVM_API void cvm_etcd_kv_cleanup(struct cvm_etcd_kv *kv);

/* struct cvm_etcd_kvs is the result of a range. */
struct cvm_etcd_kvs {
	struct cvm_etcd_kv *kvs;
	size_t kv_count;
	int64_t count;    /* keys in the range (more than kv_count when limited) */
	bool more;        /* the limit cut the range */
	int64_t revision; /* the store's revision the range was read at */
};
CVM_API void cvm_etcd_kvs_cleanup(struct cvm_etcd_kvs *kvs);

/* cvm_etcd_get reads one key. A missing key is not an error: *found is
 * false and `out` is zeroed. `revision` (may be NULL) gets the store's. */
CVM_API CVM_MUST_CHECK int cvm_etcd_get(struct cvm_etcd *cl, const char *key, struct cvm_etcd_kv *out,
                                        bool *found, int64_t *revision);

struct cvm_etcd_range_opts {
	int64_t limit;    /* 0: no limit */
	int64_t revision; /* 0: the newest */
	bool keys_only;
	bool count_only;
};
/* cvm_etcd_range_prefix reads every key that starts with `prefix` ("" for
 * every key), in key order. `ro` may be NULL. */
CVM_API CVM_MUST_CHECK int cvm_etcd_range_prefix(struct cvm_etcd *cl, const char *prefix,
                                                 const struct cvm_etcd_range_opts *ro,
                                                 struct cvm_etcd_kvs *out);

/* cvm_etcd_put writes `key` = `value` attached to `lease` (0: none). With
 * `prev` non-NULL it asks for the previous kv: prev->key is NULL when there
 * was none. `revision` (may be NULL) gets the new revision. */
CVM_API CVM_MUST_CHECK int cvm_etcd_put(struct cvm_etcd *cl, const char *key, const void *value,
                                        size_t value_len, int64_t lease, struct cvm_etcd_kv *prev,
                                        int64_t *revision);

/* cvm_etcd_delete deletes `key`, or every key under it with `is_prefix`;
 * `deleted` (may be NULL) gets how many. */
CVM_API CVM_MUST_CHECK int cvm_etcd_delete(struct cvm_etcd *cl, const char *key, bool is_prefix,
                                           int64_t *deleted);

enum cvm_etcd_target {
	CVM_ETCD_TARGET_VERSION,
	CVM_ETCD_TARGET_CREATE,
	CVM_ETCD_TARGET_MOD,
	CVM_ETCD_TARGET_VALUE,
	CVM_ETCD_TARGET_LEASE,
};
enum cvm_etcd_cmp_result {
	CVM_ETCD_EQUAL,
	CVM_ETCD_NOT_EQUAL,
	CVM_ETCD_GREATER,
	CVM_ETCD_LESS,
};
/* struct cvm_etcd_cmp compares `target` of `key` (or of every key under it
 * with `is_prefix`) with `number` (VERSION, CREATE, MOD, LEASE) or with
 * `value` (VALUE). A missing key has version, create and mod revision 0. */
struct cvm_etcd_cmp {
	const char *key;
	bool is_prefix;
	enum cvm_etcd_target target;
	enum cvm_etcd_cmp_result result;
	int64_t number;
	const void *value;
	size_t value_len;
};
enum cvm_etcd_op_type {
	CVM_ETCD_OP_PUT,
	CVM_ETCD_OP_DELETE,
	CVM_ETCD_OP_RANGE,
};
struct cvm_etcd_op {
	enum cvm_etcd_op_type type;
	const char *key;
	bool is_prefix;    /* DELETE and RANGE */
	const void *value; /* PUT */
	size_t value_len;
	int64_t lease; /* PUT */
};
struct cvm_etcd_txn {
	const struct cvm_etcd_cmp *cmps;
	size_t n_cmps;
	const struct cvm_etcd_op *success, *failure;
	size_t n_success, n_failure;
};
struct cvm_etcd_op_result {
	enum cvm_etcd_op_type type;
	struct cvm_etcd_kvs range; /* RANGE */
	int64_t deleted;           /* DELETE */
};
struct cvm_etcd_txn_result {
	bool succeeded;                     /* every compare held: the success ops ran */
	int64_t revision;                   /* the store's revision after the transaction */
	struct cvm_etcd_op_result *results; /* one per op of the branch that ran */
	size_t result_count;
};
CVM_API void cvm_etcd_txn_result_cleanup(struct cvm_etcd_txn_result *res);

/* cvm_etcd_txn runs the transaction: if every compare holds, the success
 * ops, otherwise the failure ops, atomically. A compare that fails is not
 * an error (out->succeeded is false). An IP lease: compare CREATE of
 * "ip/<addr>" EQUAL 0, success put. Not retried once sent (docs/etcd.md). */
CVM_API CVM_MUST_CHECK int cvm_etcd_txn(struct cvm_etcd *cl, const struct cvm_etcd_txn *txn,
                                        struct cvm_etcd_txn_result *out);

/* cvm_etcd_lease_grant asks for a lease of `ttl` seconds: its id and the
 * TTL etcd granted (granted_ttl may be NULL). */
CVM_API CVM_MUST_CHECK int cvm_etcd_lease_grant(struct cvm_etcd *cl, int64_t ttl, int64_t *id,
                                                int64_t *granted_ttl);
/* cvm_etcd_lease_keepalive renews lease `id` once: *ttl gets the TTL left,
 * 0 when the lease is gone (expired or revoked; not an error). */
CVM_API CVM_MUST_CHECK int cvm_etcd_lease_keepalive(struct cvm_etcd *cl, int64_t id, int64_t *ttl);
/* cvm_etcd_lease_revoke revokes lease `id` and deletes its keys.
 * CVM_E_NOT_FOUND if etcd does not know the lease. */
CVM_API CVM_MUST_CHECK int cvm_etcd_lease_revoke(struct cvm_etcd *cl, int64_t id);

struct cvm_etcd_lease_info {
	int64_t id;
	int64_t ttl;         /* seconds left; -1 when the lease is gone */
	int64_t granted_ttl; /* 0 when gone */
	char **keys;         /* with_keys: the keys attached, NUL-terminated */
	size_t key_count;
};
CVM_API void cvm_etcd_lease_info_cleanup(struct cvm_etcd_lease_info *info);
/* cvm_etcd_lease_timetolive reads what is left of lease `id`, with the keys
 * attached to it if `with_keys`. A lease that is gone has ttl -1. */
CVM_API CVM_MUST_CHECK int cvm_etcd_lease_timetolive(struct cvm_etcd *cl, int64_t id, bool with_keys,
                                                     struct cvm_etcd_lease_info *out);

/* cvm_etcd_status asks the endpoint in use for its status: the member's id,
 * the leader's id (0: none) and the server's version string (may be NULL;
 * a buffer of at least 32 bytes). Retried on the next endpoint on failure. */
CVM_API CVM_MUST_CHECK int cvm_etcd_status(struct cvm_etcd *cl, uint64_t *member_id, uint64_t *leader_id,
                                           char *version, size_t version_len);

/* cvm_etcd_compact discards the history before `revision` (etcd keeps
 * every revision until compacted; the daemon compacts periodically). A
 * watch from before it then ends with CVM_E_EXPIRED. */
CVM_API CVM_MUST_CHECK int cvm_etcd_compact(struct cvm_etcd *cl, int64_t revision);

enum cvm_etcd_event_type {
	CVM_ETCD_EVENT_PUT,
	CVM_ETCD_EVENT_DELETE,
};
struct cvm_etcd_event {
	enum cvm_etcd_event_type type;
	struct cvm_etcd_kv kv;      /* a DELETE's kv has the key and mod_revision only */
	struct cvm_etcd_kv prev_kv; /* with prev_kv, when there was one (key non-NULL) */
};
/* cvm_etcd_watch_fn gets the events of one revision (one put or delete, or
 * every change of one transaction), revision after revision; they are
 * freed when it returns. A non-zero return ends the watch, which
 * then returns 0. */
typedef int (*cvm_etcd_watch_fn)(void *arg, const struct cvm_etcd_event *events, size_t count);

struct cvm_etcd_watch_opts {
	bool is_prefix;
	bool prev_kv;
	int64_t start_revision;   /* 0: from the next change */
	const volatile int *stop; /* may be NULL: set to non-zero to end the watch */
	long timeout_ms;          /* 0: none; the watch returns 0 when it passes */
};
/* cvm_etcd_watch watches `key` (or every key under it) and calls `fn` for
 * the events as etcd streams them, until `fn` returns non-zero, *stop is
 * set or the timeout passes (then it returns 0). When the stream breaks it
 * reconnects, to the next endpoint if the one in use fails, and resumes at
 * the revision after the last event it delivered: no event is lost or
 * repeated. `next_revision` (may be NULL) gets that revision. Returns
 * CVM_E_EXPIRED when the revision to resume from was compacted
 * (*next_revision is then etcd's compact revision: re-read the range and
 * watch from its revision), CVM_E_UPSTREAM when no endpoint answers. The
 * watch uses a connection of its own; `cl` is busy until it returns. */
CVM_API CVM_MUST_CHECK int cvm_etcd_watch(struct cvm_etcd *cl, const char *key,
                                          const struct cvm_etcd_watch_opts *wo, cvm_etcd_watch_fn fn,
                                          void *arg, int64_t *next_revision);

#endif
