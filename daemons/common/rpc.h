/* pRPC-style routing over HTTP/1.1, as dstack's services speak it (dstack
 * spec §1.2): each mount exposes POST and GET /<prefix><Method>, one path
 * segment; the request message is a JSON object taken from the body (empty
 * body: all defaults) or, for GET, from the query string; bytes fields are
 * lowercase hex; every field may be omitted and unknown fields are ignored;
 * errors are {"error": "..."} with status 400.
 *
 * What differs from dstack, on purpose: the protobuf encoding is not
 * spoken. dstack picks JSON only for a GET, a `json` query key or a JSON
 * Content-Type, and protobuf otherwise; here a request without those marks
 * is read as JSON too (an empty body is the default message), and a body
 * that is not JSON gets a 400 that says so. Replies are always JSON. */
#ifndef CVM_RPC_H
#define CVM_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <cvmkit/err.h>

#include "httpd.h"

#define CVM_RPC_METHOD_MAX 64     /* longest method name */
#define CVM_RPC_QUERY_ARGS_MAX 64 /* GET: at most this many key=value pairs */
#define CVM_RPC_ARRAY_MAX 64      /* GET: indices of key[N]=value below this */

/* struct cvm_rpc_call is one method call as a handler sees it. */
struct cvm_rpc_call {
	json_t *args;              /* the request message, always an object (borrowed) */
	bool from_query;           /* GET: every value is a string from the query */
	const char *method;        /* the method name after trimming */
	struct cvm_http_req *http; /* the HTTP request (peer for logs) */
	int status;                /* the status of an error reply; 400 unless set */
	char err[CVM_HTTPD_ERR_MAX];
};

/* cvm_rpc_fn runs a method. It returns 0 and sets *out to the reply (a new
 * reference; NULL means the JSON `null`, dstack's Empty), or a negative
 * CVM_E_* after cvm_rpc_fail. */
typedef int (*cvm_rpc_fn)(void *ctx, struct cvm_rpc_call *call, json_t **out);

struct cvm_rpc_method {
	const char *name;
	cvm_rpc_fn fn;
};

struct cvm_rpc_mount {
	const char *prefix; /* ends with '/': "/", "/v0/", "/prpc/" */
	const char *trim;   /* a method-name prefix removed first ("Tappd."), or NULL */
	const struct cvm_rpc_method *methods;
	size_t count;
	/* The status of "Service not found: <Method>" under this mount: 0 for
	 * 400 (dstack's v0 surfaces), 404 for dstack's v1 (docs/guest-api-v1.md
	 * "Status codes"). */
	int unknown_status;
};

struct cvm_rpc_api {
	const char *name; /* for messages: "dstack", "tappd" */
	const struct cvm_rpc_mount *mounts;
	size_t count;
	void *ctx; /* passed to every method */
};

/* cvm_rpc_handle answers `req` for `api` (a cvm_http_handler body): 404 for
 * a path no mount matches, 405 for methods other than GET and POST,
 * "Service not found: <Method>" for an unknown method under a mount (as
 * dstack: 400, or the mount's unknown_status), 400 for a body that is not a JSON object, else the method's
 * reply. */
void cvm_rpc_handle(const struct cvm_rpc_api *api, struct cvm_http_req *req, struct cvm_http_resp *resp);

/* cvm_rpc_fail sets the error message (and `status`, when not 0) and
 * returns `r`, so a handler can `return cvm_rpc_fail(call, 0, CVM_E_FORMAT,
 * "...")`. */
int cvm_rpc_fail(struct cvm_rpc_call *call, int status, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Argument getters. A missing key or a JSON null gives the default ("",
 * empty, false, absent) and 0. A value of the wrong type, bad hex or one over
 * its cap fails the call with a message naming the field and returns
 * CVM_E_FORMAT or CVM_E_TOO_LARGE. Strings are borrowed from the call and
 * NUL-free: a string holding "\u0000" is a 400. */
CVM_MUST_CHECK int cvm_rpc_str(struct cvm_rpc_call *call, const char *key, size_t max_len, const char **out,
                               size_t *out_len);
/* cvm_rpc_str_nul is cvm_rpc_str for a field that may hold NUL bytes (its
 * length is *out_len; it is still NUL-terminated after them). */
CVM_MUST_CHECK int cvm_rpc_str_nul(struct cvm_rpc_call *call, const char *key, size_t max_len,
                                   const char **out, size_t *out_len);
/* cvm_rpc_hex decodes a hex string (case-insensitive; leading "0x" prefixes
 * are dropped) of at most `cap` bytes into `buf`. */
CVM_MUST_CHECK int cvm_rpc_hex(struct cvm_rpc_call *call, const char *key, uint8_t *buf, size_t cap,
                               size_t *out_len);
/* cvm_rpc_hex_new is cvm_rpc_hex into a new buffer of at most `max` bytes
 * (the caller frees it; NULL when empty). */
CVM_MUST_CHECK int cvm_rpc_hex_new(struct cvm_rpc_call *call, const char *key, size_t max, uint8_t **out,
                                   size_t *out_len);
/* cvm_rpc_bool reads a JSON boolean (GET: "true" or "false"). */
CVM_MUST_CHECK int cvm_rpc_bool(struct cvm_rpc_call *call, const char *key, bool *out);
/* cvm_rpc_u64 reads an optional unsigned integer (GET: decimal). */
CVM_MUST_CHECK int cvm_rpc_u64(struct cvm_rpc_call *call, const char *key, bool *present, uint64_t *out);
/* cvm_rpc_str_array reads an array of at most `max_count` strings of at
 * most `max_len` bytes each into a new array of borrowed pointers (the
 * caller frees the array; NULL when empty). */
CVM_MUST_CHECK int cvm_rpc_str_array(struct cvm_rpc_call *call, const char *key, size_t max_count,
                                     size_t max_len, const char ***out, size_t *count);

/* cvm_json_hex returns a new JSON string of the lowercase hex of `p`, or
 * NULL when out of memory. */
json_t *cvm_json_hex(const uint8_t *p, size_t len);
/* cvm_json_set moves `v` into `o` under `key` (a NULL `v` is a failure).
 * Returns 0 or CVM_E_NOMEM; `v` is released either way. */
CVM_MUST_CHECK int cvm_json_set(json_t *o, const char *key, json_t *v);

#endif
