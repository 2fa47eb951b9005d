/* HTTP/1.1 server glue over libevent's evhttp, shared by every cvmkit
 * daemon. One struct cvm_httpd serves one API (one handler) on any number of
 * listeners: unix stream sockets (path and mode configurable) and TCP.
 *
 * What it guarantees to the handler: the request line and headers are at
 * most `max_headers` bytes and the body at most `max_body` bytes, read in full
 * before the handler runs; every connection is closed after `timeout_s`
 * seconds without progress. What it guarantees to clients: every response
 * carries Content-Length (never chunked) and a JSON body, including the
 * errors that libevent itself produces (malformed requests: 400, bodies over
 * the cap: 413), which are rewritten from libevent's HTML pages (libevent
 * 2.1 has no hook for them). */
#ifndef CVM_HTTPD_H
#define CVM_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cvmkit/err.h>

#include "daemon.h"

struct event_base;
struct evhttp_request;
struct json_t;

#define CVM_HTTPD_LISTENERS_MAX 8 /* per server */
#define CVM_HTTPD_SERVERS_MAX 8   /* per process */
#define CVM_HTTPD_BODY_MAX_DEFAULT ((size_t)1024 * 1024)
#define CVM_HTTPD_HEADERS_MAX_DEFAULT ((size_t)16 * 1024)
#define CVM_HTTPD_TIMEOUT_DEFAULT 30u
/* Longest JSON body a handler may return: far above any dstack reply
 * (a GetQuote with a full runtime event log is a few MiB). */
#define CVM_HTTPD_REPLY_MAX ((size_t)64 * 1024 * 1024)
#define CVM_HTTPD_ERR_MAX 512

struct cvm_httpd_opts {
	const char *name;   /* the API's name in log lines ("dstack", "tappd"); static */
	size_t max_body;    /* request body cap, bytes (0: CVM_HTTPD_BODY_MAX_DEFAULT) */
	size_t max_headers; /* request line + headers cap (0: default) */
	unsigned timeout_s; /* per-connection idle deadline (0: default) */
};

enum cvm_http_method { CVM_HTTP_OTHER = 0, CVM_HTTP_GET, CVM_HTTP_POST, CVM_HTTP_HEAD };

/* struct cvm_http_req is one complete request as a handler sees it. Every
 * pointer is borrowed for the duration of the handler call. All of it is
 * untrusted client input. */
struct cvm_http_req {
	enum cvm_http_method method;
	const char *method_name;  /* as sent, for logs */
	const char *path;         /* percent-decoded; never contains NUL */
	const char *query;        /* raw (still percent-encoded) query without '?', or NULL */
	const char *content_type; /* the Content-Type header, or NULL */
	const uint8_t *body;      /* NULL when body_len is 0 */
	size_t body_len;
	struct evhttp_request *er; /* NULL outside a server (fuzzing, tests) */
	char peer[96];             /* filled lazily by cvm_http_req_peer */
};

/* struct cvm_http_resp is what the handler answers. The body is always JSON
 * (ASCII only) and owned by the response (freed by cvm_http_resp_cleanup). */
struct cvm_http_resp {
	int status;
	char *body;
	size_t body_len;
	const char *allow;           /* an Allow header for 405, or NULL */
	char err[CVM_HTTPD_ERR_MAX]; /* the error message when status != 200, for logs */
};

typedef void (*cvm_http_handler)(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp);

struct cvm_httpd;

/* cvm_httpd_new makes a server on `base` that answers every request with
 * `handler(ctx, ...)`. It listens nowhere yet. The caller frees it with
 * cvm_httpd_free. Returns 0, CVM_E_NOMEM or CVM_E_INVAL. */
CVM_MUST_CHECK int cvm_httpd_new(struct event_base *base, const struct cvm_httpd_opts *opts,
                                 cvm_http_handler handler, void *ctx, struct cvm_httpd **out);

/* cvm_httpd_listen opens a listener on `addr`. A unix socket is created with
 * file mode `mode` (its parent directory is made, mode 0755, when missing); a
 * stale socket file is replaced, but a live socket (another daemon answers)
 * or any other kind of file at that path is an error. For TCP, `mode` is
 * ignored and the bound port (useful with port 0) is stored in *bound_port
 * when it is not NULL. Returns 0, CVM_E_TOO_LARGE (too many listeners),
 * CVM_E_SYSTEM (errno says why) or CVM_E_INVAL. */
CVM_MUST_CHECK int cvm_httpd_listen(struct cvm_httpd *h, const struct cvm_addr *addr, unsigned mode,
                                    uint16_t *bound_port);

/* cvm_httpd_free closes the listeners and open connections and removes the
 * unix socket files it created. NULL is a no-op. */
void cvm_httpd_free(struct cvm_httpd *h);

/* cvm_http_req_peer describes the client: "unix:pid=P,uid=U" for unix
 * sockets (SO_PEERCRED), "ADDR:PORT" for TCP, "-" without a connection. */
const char *cvm_http_req_peer(struct cvm_http_req *req);

/* cvm_http_req_peer_uid stores the client process's uid (SO_PEERCRED) in
 * *uid and returns true when the request came over a unix socket; false for
 * TCP and without a connection. */
bool cvm_http_req_peer_uid(struct cvm_http_req *req, uid_t *uid);

/* cvm_http_resp_json sets a response with `status` and the compact,
 * ASCII-only, order-preserving encoding of `v` (NULL: the JSON `null`). It
 * does not take `v`. On an encoding failure the response becomes a 500
 * error. */
void cvm_http_resp_json(struct cvm_http_resp *resp, int status, const struct json_t *v);
/* cvm_http_resp_error sets `status` and the body {"error": "<message>"}.
 * The message is made printable ASCII (other bytes become '?'). */
void cvm_http_resp_error(struct cvm_http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* cvm_http_resp_cleanup frees the body; the response may be reused. */
void cvm_http_resp_cleanup(struct cvm_http_resp *resp);

/* cvm_http_status_text is the reason phrase for the codes cvmkit uses. */
const char *cvm_http_status_text(int status);

#endif
