/* lib/etcd's private interface: the response parsers (parse.c), which the
 * client (client.c), fuzz/fuzz_etcd_reply.c and tests/unit/test_etcd.c use. */
#ifndef CVM_ETCD_ETCD_INT_H
#define CVM_ETCD_ETCD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/etcd.h>

/* etcd_reply_error recognises the gateway's error object
 * {"error": "...", "message": "...", "code": N} (unary calls) or
 * {"error": {"grpc_code": N, "message": "..."}} (streams). It returns true
 * and fills `code` (the gRPC code) and `msg` (printable ASCII, cut to
 * `msg_len`) when `buf` is one; false for anything else. */
bool etcd_reply_error(const uint8_t *buf, size_t len, int *code, char *msg, size_t msg_len);

/* The parsers below take one whole response of `len` bytes, check every
 * field they use (a missing int64 is 0, as proto3 JSON omits zero values; a
 * present one must be a JSON string of a decimal int64; bytes fields must
 * be base64), fill their outputs (owned by the caller, freed by the
 * matching cleanup even on failure) and return 0, CVM_E_FORMAT or
 * CVM_E_TOO_LARGE with a sentence naming the field in `err`. */
int etcd_parse_range(const uint8_t *buf, size_t len, struct cvm_etcd_kvs *out, char *err, size_t err_len);
int etcd_parse_put(const uint8_t *buf, size_t len, struct cvm_etcd_kv *prev, int64_t *revision, char *err,
                   size_t err_len);
int etcd_parse_delete(const uint8_t *buf, size_t len, int64_t *deleted, int64_t *revision, char *err,
                      size_t err_len);
int etcd_parse_txn(const uint8_t *buf, size_t len, struct cvm_etcd_txn_result *out, char *err,
                   size_t err_len);
int etcd_parse_lease_grant(const uint8_t *buf, size_t len, int64_t *id, int64_t *ttl, char *err,
                           size_t err_len);
/* The keepalive reply is one line of a stream: {"result": {...}}. */
int etcd_parse_lease_keepalive(const uint8_t *buf, size_t len, int64_t *id, int64_t *ttl, char *err,
                               size_t err_len);
int etcd_parse_lease_ttl(const uint8_t *buf, size_t len, struct cvm_etcd_lease_info *out, char *err,
                         size_t err_len);
int etcd_parse_status(const uint8_t *buf, size_t len, uint64_t *member_id, uint64_t *leader_id, char *version,
                      size_t version_len, char *err, size_t err_len);
/* etcd_parse_auth returns the token in a new string (printable ASCII). */
int etcd_parse_auth(const uint8_t *buf, size_t len, char **token, char *err, size_t err_len);

/* struct etcd_watch_msg is one line of the /v3/watch stream. */
struct etcd_watch_msg {
	bool created, canceled;
	int64_t watch_id;
	int64_t revision; /* the header's */
	int64_t compact_revision;
	char cancel_reason[128];
	struct cvm_etcd_event *events;
	size_t event_count;
};
void etcd_watch_msg_cleanup(struct etcd_watch_msg *m);
int etcd_parse_watch_line(const uint8_t *buf, size_t len, struct etcd_watch_msg *out, char *err,
                          size_t err_len);

/* etcd_prefix_end writes the range_end of the prefix `p` (`len` bytes) to
 * `out` (len bytes): the prefix with its last byte below 0xff incremented
 * and the rest cut. Returns its length, or 0 for "every key" ("\0"). */
size_t etcd_prefix_end(const uint8_t *p, size_t len, uint8_t *out);

#endif
