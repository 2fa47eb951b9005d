/* HTTP/1.1 server glue over libevent's evhttp, shared by every cvmkit
 * daemon. One struct cvm_httpd serves one API (one handler) on any number of
 * listeners: unix stream sockets (path and mode configurable) and TCP.
 *
 * What it guarantees to the handler: the request line and headers are at
 * most `max_headers` bytes (and at most CVM_HTTPD_HEADER_LINES_MAX header
 * lines), the body at most `max_body` bytes, read in full before the handler
 * runs; the body's framing is unambiguous (one Content-Length made of digits,
 * or, where the API allows it, "Transfer-Encoding: chunked" alone; never both,
 * never a body on HEAD or TRACE, never a header name that is not an RFC 9110
 * token); anything else is answered 400 and the connection closed, so bytes a
 * proxy might read as a second request never reach the handler (no request
 * after a refusal or one of libevent's error pages does, on any connection).
 *
 * What it guarantees to other clients (the limits, STYLE.md "Daemon
 * structure"): every phase of a connection has an absolute deadline that a
 * trickling client cannot extend: the request line and headers within
 * `header_timeout_s` of the connection being ready for a request (accepted,
 * or the previous reply sent), the body within `body_timeout_s` of the end of
 * the headers, the reply within `reply_timeout_s` of the handler's answer.
 * A client cut in the middle of a request gets a 408 when its socket can take
 * it; an idle keep-alive connection is closed silently. Connections are
 * capped globally (`max_connections`) and per peer (`max_connections_per_peer`:
 * the SO_PEERCRED uid on unix sockets, the address on TCP); so are the bytes
 * held for requests and replies (`max_buffered`, `max_buffered_per_peer`: a
 * connection's unparsed input, the request being read or handled, and its
 * queued reply). A connection over a cap is refused at once with a 503 and a
 * JSON body (written without blocking, when the socket can take it) and
 * closed; other peers keep being served. Every refusal and cut is logged,
 * rate-limited (event=connection_refused, event=deadline). Memory is then
 * bounded: at most max_buffered bytes of request and reply data, plus a fixed
 * cost per connection (libevent's connection and buffers, at most
 * CVM_HTTPD_HEADER_LINES_MAX parsed headers), for at most max_connections +
 * CVM_HTTPD_REFUSE_SLOTS connections.
 *
 * What it guarantees to clients: every response carries Content-Length
 * (never chunked) and a JSON body, including the errors that libevent itself
 * produces (malformed requests: 400, bodies over the cap: 413), which are
 * rewritten from libevent's HTML pages (libevent 2.1 has no hook for them).
 *
 * How (libevent 2.1.12 has no hook at accept time or when headers end): the
 * server makes each connection's bufferevent (evhttp_set_bevcb) and keeps a
 * record for it from a preallocated pool; right after the accept, a zero-delay
 * event identifies the peer, applies the connection caps and registers a
 * close callback. Byte counts come from callbacks on the connection's input
 * and output buffers; the end of the headers (where the body deadline starts)
 * is found with libevent's own line search over the input, the way its parser
 * splits lines. libevent remains the only HTTP parser. */
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
struct ssl_st;
struct ssl_ctx_st;
struct json_t;

#define CVM_HTTPD_LISTENERS_MAX 8 /* per server */
#define CVM_HTTPD_SERVERS_MAX 8   /* per process */
#define CVM_HTTPD_BODY_MAX_DEFAULT ((size_t)1024 * 1024)
#define CVM_HTTPD_HEADERS_MAX_DEFAULT ((size_t)16 * 1024)
#define CVM_HTTPD_TIMEOUT_DEFAULT 30u /* inactivity, seconds (libevent's read/write timeout) */
#define CVM_HTTPD_HEADER_TIMEOUT_DEFAULT 10u
#define CVM_HTTPD_BODY_TIMEOUT_DEFAULT 30u
#define CVM_HTTPD_REPLY_TIMEOUT_DEFAULT 30u
#define CVM_HTTPD_HANDSHAKE_TIMEOUT_DEFAULT 10u /* TLS handshake, from the accept */
#define CVM_HTTPD_TIMEOUT_MAX 3600u
#define CVM_HTTPD_CONNECTIONS_DEFAULT 256u
#define CVM_HTTPD_CONNECTIONS_PER_PEER_DEFAULT 64u
#define CVM_HTTPD_CONNECTIONS_MAX 16384u
#define CVM_HTTPD_BUFFERED_DEFAULT ((size_t)32 * 1024 * 1024)
#define CVM_HTTPD_BUFFERED_PER_PEER_DEFAULT ((size_t)8 * 1024 * 1024)
#define CVM_HTTPD_BUFFERED_MAX ((size_t)1024 * 1024 * 1024)
/* Header lines per request (libevent has no count limit; each parsed
 * header costs about 100 bytes of heap however short its line). */
#define CVM_HTTPD_HEADER_LINES_MAX 100u
/* Records beyond max_connections, so that connections over the global cap
 * can still be answered 503 rather than dropped (they live only until that
 * answer is written, in the same loop iteration). */
#define CVM_HTTPD_REFUSE_SLOTS 32u
/* Longest JSON body a handler may return: far above any dstack reply
 * (a GetQuote with a full runtime event log is a few MiB). */
#define CVM_HTTPD_REPLY_MAX ((size_t)64 * 1024 * 1024)
#define CVM_HTTPD_ERR_MAX 512

/* struct cvm_httpd_opts configures a server; 0 (or false) means the
 * default for every field. */
struct cvm_httpd_opts {
	const char *name;   /* the API's name in log lines ("dstack", "tappd"); static */
	size_t max_body;    /* request body cap, bytes (0: CVM_HTTPD_BODY_MAX_DEFAULT) */
	size_t max_headers; /* request line + headers cap (0: default) */
	unsigned timeout_s; /* per-connection inactivity timeout, seconds (0: default) */
	/* Absolute deadlines, seconds (see the top of this file). */
	unsigned header_timeout_s;
	unsigned body_timeout_s;
	unsigned reply_timeout_s;
	/* Caps per server (see the top of this file). */
	unsigned max_connections;
	unsigned max_connections_per_peer;
	size_t max_buffered;
	size_t max_buffered_per_peer;
	/* Whether request bodies may come with "Transfer-Encoding: chunked"
	 * (default: no, only Content-Length). */
	bool allow_chunked;
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
	struct ssl_st *tls;        /* the connection's SSL on a TLS server (cvm_httpd_set_tls), else NULL */
	char peer[96];             /* filled lazily by cvm_http_req_peer */
};

struct evbuffer;

/* A streaming reply (cvm-vmmd's GET /logs?follow=1; see
 * cvm_http_resp_stream): `fn` appends what is new to `out` and returns
 * false to end the reply; `done` releases `ctx`, exactly once. */
typedef bool (*cvm_http_stream_fn)(void *ctx, struct evbuffer *out);
typedef void (*cvm_http_stream_done)(void *ctx);

/* Extra response headers per reply (cvm_http_resp_header). */
#define CVM_HTTP_RESP_HEADERS_MAX 6
#define CVM_HTTP_RESP_HEADER_VALUE_MAX ((size_t)64 * 1024)

/* struct cvm_http_resp is what the handler answers. The body is JSON (ASCII
 * only) unless `content_type` names another type (cvm_http_resp_bytes, for
 * the vendor APIs that serve DER, PEM or text), and is owned by the response
 * (freed by cvm_http_resp_cleanup), as are the extra headers' values. */
struct cvm_http_resp {
	int status;
	char *body;
	size_t body_len;
	const char *allow;                                   /* an Allow header for 405, or NULL */
	const char *content_type;                            /* static; NULL: application/json */
	const char *header_names[CVM_HTTP_RESP_HEADERS_MAX]; /* static */
	char *header_values[CVM_HTTP_RESP_HEADERS_MAX];      /* owned */
	size_t header_count;
	char err[CVM_HTTPD_ERR_MAX]; /* the error message when status != 200, for logs */
	/* A streaming reply (cvm_http_resp_stream), or NULL. */
	cvm_http_stream_fn stream_fn;
	cvm_http_stream_done stream_done;
	void *stream_ctx;
	unsigned stream_period_ms;
};

/* CVM_HTTPD_STREAM_OUTPUT_MAX: a stream waits while this much of its reply
 * is still queued for a client that does not read. */
#define CVM_HTTPD_STREAM_OUTPUT_MAX ((size_t)256 * 1024)

/* cvm_http_resp_stream makes the reply a stream: 200 with the static
 * `content_type`, chunked (HTTP/1.1; an HTTP/1.0 client gets the bytes until
 * the connection closes). Once the handler returns the server calls `fn` at
 * once and then every `period_ms` milliseconds; what it appends goes out as
 * one chunk; it is not called while more than CVM_HTTPD_STREAM_OUTPUT_MAX
 * bytes wait for the client. The stream ends when `fn` returns false (the
 * reply is completed and the connection serves the next request), when the
 * client goes away, or when the server is freed. A stream has no reply
 * deadline (its connection still counts against the connection caps);
 * `done(ctx)` is called exactly once, also when the reply is never started
 * (cvm_http_resp_cleanup without a server). */
void cvm_http_resp_stream(struct cvm_http_resp *resp, const char *content_type, unsigned period_ms,
                          cvm_http_stream_fn fn, cvm_http_stream_done done, void *ctx);

typedef void (*cvm_http_handler)(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp);

struct cvm_httpd;

/* cvm_httpd_opts_check checks that `opts` makes a server that can serve
 * (every value within its bounds; per-peer caps at most the global ones; a
 * peer's buffered cap large enough for one request of max_headers +
 * max_body bytes). On failure it writes one sentence naming the values into
 * `err`. Returns 0 or CVM_E_INVAL. */
CVM_MUST_CHECK int cvm_httpd_opts_check(const struct cvm_httpd_opts *opts, char *err, size_t err_len);

/* cvm_httpd_new makes a server on `base` that answers every request with
 * `handler(ctx, ...)`. It listens nowhere yet. It logs its limits as one
 * event=http_limits line. The caller frees it with cvm_httpd_free. Returns 0,
 * CVM_E_NOMEM or CVM_E_INVAL (see cvm_httpd_opts_check). */
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

/* cvm_httpd_set_tls makes every connection the server accepts from now on a
 * TLS server connection from `ctx` (libevent's bufferevent_openssl; the
 * server keeps a reference of its own, so the caller may free `ctx`, and a
 * later call replaces it for new connections only: certificate renewal).
 * The limits above apply to TLS connections as they are (their byte counts
 * are of decrypted data); in addition the handshake must finish within
 * `handshake_timeout_s` of the accept (0: the default; it also lies within
 * the header deadline). A TLS connection refused over a cap, or cut at a
 * deadline, is closed without an answer (nothing can be written before the
 * handshake). Handlers find the connection's SSL in cvm_http_req.tls.
 * Returns 0, CVM_E_INVAL or CVM_E_INTERNAL. */
CVM_MUST_CHECK int cvm_httpd_set_tls(struct cvm_httpd *h, struct ssl_ctx_st *ctx,
                                     unsigned handshake_timeout_s);

/* cvm_httpd_socket_open makes a listening socket on `addr` as
 * cvm_httpd_listen would, without a server: for daemons that open their
 * sockets once and hand them to worker processes (cvm_httpd_listen_fd). A
 * unix socket file is the caller's to remove. The bound TCP port goes to
 * *bound_port (may be NULL). Returns the descriptor (close-on-exec,
 * non-blocking), or CVM_E_SYSTEM (errno says why) or CVM_E_INVAL. */
CVM_MUST_CHECK int cvm_httpd_socket_open(const struct cvm_addr *addr, unsigned mode, uint16_t *bound_port);

/* cvm_httpd_listen_fd makes `h` accept connections on the listening socket
 * `fd` (from cvm_httpd_socket_open, possibly shared with other processes
 * that accept on it too). The server owns `fd` from then on, also on
 * failure. Returns 0, CVM_E_TOO_LARGE, CVM_E_NOMEM or CVM_E_INVAL. */
CVM_MUST_CHECK int cvm_httpd_listen_fd(struct cvm_httpd *h, int fd);

/* cvm_httpd_gate says whether a server with `open` connections (accepted
 * and not yet closed) should accept more; see cvm_httpd_set_accept_gate. */
typedef bool (*cvm_httpd_gate)(void *ctx, unsigned open);

/* cvm_httpd_set_accept_gate shares accepting with other processes that
 * accept on the same listening sockets (prefork workers): libevent accepts
 * every waiting connection in one go, so without a gate the worker that
 * wakes first takes a whole burst and the others idle. The server calls
 * `gate` each time its count of open connections changes (so the gate can
 * publish it) and stops accepting while the gate says no. While stopped it
 * asks again every 50 ms, and a listening socket that stays readable over
 * two such looks (connections that no other worker takes: they are busy
 * or stuck) makes it accept regardless for a second. Returns 0,
 * CVM_E_INVAL (no gate, or one is set) or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_httpd_set_accept_gate(struct cvm_httpd *h, cvm_httpd_gate gate, void *ctx);

/* cvm_httpd_free closes the listeners and open connections and removes the
 * unix socket files it created. NULL is a no-op. */
void cvm_httpd_free(struct cvm_httpd *h);

struct evkeyvalq;

/* cvm_httpd_check_framing decides whether the request headers `headers`
 * frame the body unambiguously (see the top of this file). `may_have_body`
 * is false for HEAD and TRACE, for which libevent reads no body. On failure
 * it writes the reason, one sentence for the client, into `err`. Returns 0
 * or CVM_E_FORMAT. It reads the headers only. */
CVM_MUST_CHECK int cvm_httpd_check_framing(const struct evkeyvalq *headers, bool may_have_body,
                                           bool allow_chunked, char *err, size_t err_len);

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
/* cvm_http_resp_bytes sets a response with `status`, a copy of the `len`
 * bytes at `body` and the static Content-Type `content_type` (a vendor API's
 * DER, PEM or text answer). On an allocation failure the response becomes a
 * 500 error. */
void cvm_http_resp_bytes(struct cvm_http_resp *resp, int status, const char *content_type, const void *body,
                         size_t len);
/* cvm_http_resp_header adds the header `name` (static, an RFC 9110 token)
 * with a copy of `value`, which must be printable ASCII (no CR, LF or other
 * control byte) of at most CVM_HTTP_RESP_HEADER_VALUE_MAX bytes. Returns 0,
 * CVM_E_INVAL (a value that could split the header), CVM_E_TOO_LARGE (too
 * many headers, or too long) or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_http_resp_header(struct cvm_http_resp *resp, const char *name, const char *value);
/* cvm_http_resp_cleanup frees the body and the extra headers; the response
 * may be reused. */
void cvm_http_resp_cleanup(struct cvm_http_resp *resp);

/* cvm_http_status_text is the reason phrase for the codes cvmkit uses. */
const char *cvm_http_status_text(int status);

#endif
