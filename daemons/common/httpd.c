#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include <cvmkit/secret.h>

#include "httpd.h"

/* The limits below rest on how libevent 2.1 runs a server connection (read
 * in its release-2.1.12-stable http.c): the bufferevent's callback argument
 * is the evhttp_connection, the close callback runs whenever an incoming
 * connection is freed, evbuffer callbacks run synchronously, and a listener
 * disabled from its accept callback stops accepting at once. */
#if defined(LIBEVENT_VERSION_NUMBER) && /* (cppcheck reads no system header) */ \
    (LIBEVENT_VERSION_NUMBER < 0x02010c00 || LIBEVENT_VERSION_NUMBER >= 0x02020000)
#error "daemons/common/httpd.c is written against libevent 2.1 (2.1.12 or later 2.1)"
#endif

struct httpd_listener {
	struct cvm_httpd *h;
	struct evhttp_bound_socket *bound;
	struct event *retry; /* re-enables accepting after EMFILE */
	char unix_path[CVM_ADDR_PATH_MAX];
	dev_t dev;
	ino_t ino;
};

/* Where a connection is; each phase but NEW has its own deadline. */
enum conn_phase {
	PHASE_FREE = 0, /* the record is in the pool */
	PHASE_NEW,      /* accepted; conn_start runs next */
	PHASE_HEADERS,  /* request line and headers: header_timeout_s */
	PHASE_BODY,     /* body: body_timeout_s */
	PHASE_REPLY,    /* handled; the reply is written: reply_timeout_s */
};

static const char *const phase_names[] = {"free", "new", "headers", "body", "reply"};

/* A peer: a uid on unix sockets, an address on TCP. */
struct peer_key {
	int family; /* AF_UNIX, AF_INET or AF_INET6 */
	uint32_t uid;
	uint8_t addr[16];
};

struct httpd_peer {
	struct httpd_peer *next; /* in the server's list of peers, or its free list */
	struct peer_key key;
	unsigned conns; /* admitted connections */
	size_t held;    /* their bytes (see conn_account) */
};

struct httpd_conn {
	struct cvm_httpd *h;
	struct httpd_conn *next_free;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* known from conn_start on */
	struct httpd_stream *stream;     /* a streaming reply in progress, or NULL */
	struct evbuffer_cb_entry *in_cb, *out_cb;
	struct event *timer;     /* conn_start, then the deadline or a refusal */
	struct httpd_peer *peer; /* once admitted */
	enum conn_phase phase;
	int64_t deadline_us;  /* CLOCK_MONOTONIC */
	int64_t phase_us;     /* when the phase began */
	int64_t handshake_us; /* TLS: when the handshake must have finished (0: done or none) */
	/* Offsets in the input stream, from the connection's first byte. */
	uint64_t rx;         /* bytes added to the input buffer */
	uint64_t drained;    /* bytes libevent took out of it */
	uint64_t req_start;  /* `drained` when the current request began */
	uint64_t line_start; /* the header line being looked at */
	uint64_t scan;       /* where to look for its end */
	unsigned lines;      /* lines of the current request, its request line included */
	size_t held;         /* this connection's share of peer->held and h->held */
	int refuse_status;   /* not 0: refuse with it at the next chance */
	bool closing;        /* answered with "Connection: close" or an error page */
	bool tls;            /* a bufferevent_openssl: the socket carries TLS records */
	const char *refuse_reason;
	char refuse_msg[256];
	char peer_desc[96];
};

struct cvm_httpd {
	struct event_base *base;
	struct evhttp *http;
	cvm_http_handler handler;
	void *ctx;
	const char *name;
	size_t max_body, max_headers;
	unsigned timeout_s;
	unsigned header_timeout_s, body_timeout_s, reply_timeout_s;
	unsigned max_conns, max_conns_peer;
	size_t max_buffered, max_buffered_peer;
	bool allow_chunked;
	/* TLS: every connection accepted while tls_ctx is set is a TLS server
	 * connection from it (a reference of ours; cvm_httpd_set_tls). */
	SSL_CTX *tls_ctx;
	unsigned handshake_timeout_s;
	/* Set while our own reply is written into a connection's output buffer,
	 * so that out_cb can tell it from a page libevent writes by itself. */
	bool own_reply;
	bool rewriting;
	/* Connection records, allocated once: max_conns + CVM_HTTPD_REFUSE_SLOTS
	 * of them, and max_conns peer records (a peer exists only while it has
	 * an admitted connection). */
	size_t pool_count;
	struct httpd_conn *conns;
	struct httpd_conn *free_conns;
	struct httpd_peer *peer_pool;
	struct httpd_peer *free_peers;
	struct httpd_peer *peers;
	unsigned conn_count; /* admitted connections */
	size_t held;         /* bytes of all connections */
	bool paused;         /* no free record: accepting is off */
	bool closing;        /* in cvm_httpd_free: the listeners are gone */
	size_t listener_count;
	struct httpd_listener listeners[CVM_HTTPD_LISTENERS_MAX];
	/* The accept gate (cvm_httpd_set_accept_gate): `open` counts records
	 * in use; while `gated`, accepting is off and `probe` looks every
	 * GATE_PROBE_US whether the gate opened or connections wait that no
	 * one else takes. */
	cvm_httpd_gate gate;
	void *gate_ctx;
	struct event *probe;
	int64_t gate_off_until_us;
	unsigned open;
	unsigned probe_hits;
	bool gated;
};

/* The servers alive in this process. A listener's error callback gets the
 * evhttp server as its argument (libevent shares one argument between the
 * accept and error callbacks), so the listener record is found from it. */
static struct cvm_httpd *live[CVM_HTTPD_SERVERS_MAX];

const char *cvm_http_status_text(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

void cvm_http_resp_stream(struct cvm_http_resp *resp, const char *content_type, unsigned period_ms,
                          cvm_http_stream_fn fn, cvm_http_stream_done done, void *ctx)
{
	resp->status = 200;
	resp->content_type = content_type;
	resp->stream_fn = fn;
	resp->stream_done = done;
	resp->stream_ctx = ctx;
	resp->stream_period_ms = period_ms != 0 ? period_ms : 1000;
}

void cvm_http_resp_cleanup(struct cvm_http_resp *resp)
{
	/* a stream the server did not take (an error, or no server) */
	if (resp->stream_fn != NULL && resp->stream_done != NULL)
		resp->stream_done(resp->stream_ctx);
	resp->stream_fn = NULL;
	resp->stream_done = NULL;
	resp->stream_ctx = NULL;
	cvm_freezero(resp->body, resp->body_len);
	resp->body = NULL;
	resp->body_len = 0;
	resp->content_type = NULL;
	for (size_t i = 0; i < resp->header_count && i < CVM_HTTP_RESP_HEADERS_MAX; i++) {
		free(resp->header_values[i]);
		resp->header_values[i] = NULL;
		resp->header_names[i] = NULL;
	}
	resp->header_count = 0;
}

int cvm_http_resp_header(struct cvm_http_resp *resp, const char *name, const char *value)
{
	size_t n = strlen(value);
	char *v;

	if (resp->header_count >= CVM_HTTP_RESP_HEADERS_MAX || n > CVM_HTTP_RESP_HEADER_VALUE_MAX)
		return CVM_E_TOO_LARGE;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] >= 0x7f)
			return CVM_E_INVAL;
	}
	v = malloc(n + 1);
	if (v == NULL)
		return CVM_E_NOMEM;
	memcpy(v, value, n + 1);
	resp->header_names[resp->header_count] = name;
	resp->header_values[resp->header_count] = v;
	resp->header_count++;
	return CVM_OK;
}

/* A fixed last-resort body, used when even an error body cannot be made. */
static const char oom_body[] = "{\"error\":\"out of memory\"}";

static void resp_set_static(struct cvm_http_resp *resp, int status, const char *body)
{
	size_t n = strlen(body);

	cvm_http_resp_cleanup(resp);
	resp->status = status;
	resp->body = malloc(n + 1);
	if (resp->body == NULL)
		return; /* on_request sends oom_body for a NULL body */
	memcpy(resp->body, body, n + 1);
	resp->body_len = n;
}

void cvm_http_resp_json(struct cvm_http_resp *resp, int status, const json_t *v)
{
	size_t flags = JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
	char *s;

	cvm_http_resp_cleanup(resp);
	if (v == NULL) {
		resp_set_static(resp, status, "null");
		return;
	}
	s = json_dumps(v, flags);
	if (s == NULL) {
		resp_set_static(resp, 500, "{\"error\":\"cannot encode the reply\"}");
		(void)snprintf(resp->err, sizeof(resp->err), "cannot encode the reply");
		return;
	}
	resp->status = status;
	resp->body = s;
	resp->body_len = strlen(s);
}

void cvm_http_resp_bytes(struct cvm_http_resp *resp, int status, const char *content_type, const void *body,
                         size_t len)
{
	cvm_http_resp_cleanup(resp);
	/* one byte more, so an empty body is still a body */
	resp->body = malloc(len + 1);
	if (resp->body == NULL) {
		resp_set_static(resp, 500, oom_body);
		(void)snprintf(resp->err, sizeof(resp->err), "out of memory");
		return;
	}
	if (len != 0)
		memcpy(resp->body, body, len);
	resp->body[len] = '\0';
	resp->body_len = len;
	resp->status = status;
	resp->content_type = content_type;
}

void cvm_http_resp_error(struct cvm_http_resp *resp, int status, const char *fmt, ...)
{
	json_t *o;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(resp->err, sizeof(resp->err), fmt, ap);
	va_end(ap);
	for (char *p = resp->err; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	}
	o = json_pack("{s:s}", "error", resp->err);
	if (o == NULL) {
		resp_set_static(resp, status, oom_body);
		return;
	}
	cvm_http_resp_json(resp, status, o);
	json_decref(o);
}

const char *cvm_http_req_peer(struct cvm_http_req *req)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char *addr = NULL;
	ev_uint16_t port = 0;
	int fd;

	if (req->peer[0] != '\0')
		return req->peer;
	(void)snprintf(req->peer, sizeof(req->peer), "-");
	if (req->er == NULL)
		return req->peer;
	evcon = evhttp_request_get_connection(req->er);
	if (evcon == NULL)
		return req->peer;
	bev = evhttp_connection_get_bufferevent(evcon);
	fd = bev == NULL ? -1 : bufferevent_getfd(bev);
	memset(&ss, 0, sizeof(ss));
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX) {
		struct ucred uc;
		socklen_t ul = sizeof(uc);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0)
			(void)snprintf(req->peer, sizeof(req->peer), "unix:pid=%ld,uid=%lu", (long)uc.pid,
			               (unsigned long)uc.uid);
		else
			(void)snprintf(req->peer, sizeof(req->peer), "unix");
		return req->peer;
	}
	evhttp_connection_get_peer(evcon, &addr, &port);
	if (addr != NULL)
		(void)snprintf(req->peer, sizeof(req->peer), "%.64s:%u", addr, (unsigned)port);
	return req->peer;
}

bool cvm_http_req_peer_uid(struct cvm_http_req *req, uid_t *uid)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss), ul;
	struct ucred uc;
	int fd;

	if (req->er == NULL)
		return false;
	evcon = evhttp_request_get_connection(req->er);
	bev = evcon == NULL ? NULL : evhttp_connection_get_bufferevent(evcon);
	fd = bev == NULL ? -1 : bufferevent_getfd(bev);
	memset(&ss, 0, sizeof(ss));
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 || ss.ss_family != AF_UNIX)
		return false;
	ul = sizeof(uc);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0)
		return false;
	*uid = uc.uid;
	return true;
}

static enum cvm_http_method method_of(enum evhttp_cmd_type t, const char **name)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		*name = "GET";
		return CVM_HTTP_GET;
	case EVHTTP_REQ_POST:
		*name = "POST";
		return CVM_HTTP_POST;
	case EVHTTP_REQ_HEAD:
		*name = "HEAD";
		return CVM_HTTP_HEAD;
	case EVHTTP_REQ_PUT:
		*name = "PUT";
		break;
	case EVHTTP_REQ_DELETE:
		*name = "DELETE";
		break;
	case EVHTTP_REQ_OPTIONS:
		*name = "OPTIONS";
		break;
	case EVHTTP_REQ_TRACE:
		*name = "TRACE";
		break;
	case EVHTTP_REQ_CONNECT:
		*name = "CONNECT";
		break;
	case EVHTTP_REQ_PATCH:
		*name = "PATCH";
		break;
	default:
		*name = "?";
		break;
	}
	return CVM_HTTP_OTHER;
}

static int64_t now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* wipe_body is the evbuffer cleanup of a reply body handed to libevent by
 * reference: replies may carry keys (GetKey, GetTlsKey), so the body is
 * wiped once libevent has written it, and never copied into libevent's own
 * (unwiped) buffers. */
static void wipe_body(const void *data, size_t len, void *extra)
{
	void *p;

	(void)extra;
	memcpy(&p, &data, sizeof(p)); /* drop const without a cast-qual warning */
	cvm_freezero(p, len);
}

/* Request framing (RFC 9112 section 6.3). libevent reads a body by the
 * first Content-Length header, or chunked when the first Transfer-Encoding
 * is exactly "chunked" (and then ignores Content-Length); a header name with
 * a space before its colon is no Content-Length to it, and it reads no body
 * on HEAD and TRACE. A proxy in front may read the same bytes otherwise and
 * see a second request in what libevent takes as a body, or the other way
 * round. Every such request is refused and its connection closed. */
static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

int cvm_httpd_check_framing(const struct evkeyvalq *headers, bool may_have_body, bool allow_chunked,
                            char *err, size_t err_len)
{
	const struct evkeyval *kv;
	const char *cl = NULL, *te = NULL;
	unsigned cl_count = 0, te_count = 0;
	size_t n;

	err[0] = '\0';
	for (kv = headers->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		if (kv->key[0] == '\0') {
			(void)snprintf(err, err_len, "a header has an empty name");
			return CVM_E_FORMAT;
		}
		for (const char *p = kv->key; *p != '\0'; p++) {
			if (!is_tchar((unsigned char)*p)) {
				(void)snprintf(
				    err, err_len,
				    "a header name holds a character other than letters, digits and "
				    "!#$%%&'*+-.^_`|~ (no space before the colon)");
				return CVM_E_FORMAT;
			}
		}
		if (evutil_ascii_strcasecmp(kv->key, "Content-Length") == 0) {
			cl = kv->value;
			cl_count++;
		} else if (evutil_ascii_strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			te = kv->value;
			te_count++;
		}
	}
	if (cl_count > 1) {
		(void)snprintf(err, err_len,
		               "more than one Content-Length header: the body's length is ambiguous");
		return CVM_E_FORMAT;
	}
	if (te_count > 1) {
		(void)snprintf(err, err_len, "more than one Transfer-Encoding header");
		return CVM_E_FORMAT;
	}
	if (cl != NULL && te != NULL) {
		(void)snprintf(
		    err, err_len,
		    "Content-Length together with Transfer-Encoding: the body's framing is ambiguous");
		return CVM_E_FORMAT;
	}
	if (cl != NULL) {
		n = strlen(cl);
		if (n == 0 || n > 19 || strspn(cl, "0123456789") != n) {
			(void)snprintf(err, err_len,
			               "Content-Length is not a decimal number of at most 19 digits");
			return CVM_E_FORMAT;
		}
		if (!may_have_body && strspn(cl, "0") != n) {
			(void)snprintf(err, err_len, "a HEAD or TRACE request cannot carry a body");
			return CVM_E_FORMAT;
		}
	}
	if (te != NULL) {
		if (!may_have_body) {
			(void)snprintf(err, err_len, "a HEAD or TRACE request cannot carry a body");
			return CVM_E_FORMAT;
		}
		if (!allow_chunked) {
			(void)snprintf(
			    err, err_len,
			    "Transfer-Encoding is not accepted here: send the body with Content-Length");
			return CVM_E_FORMAT;
		}
		if (evutil_ascii_strcasecmp(te, "chunked") != 0) {
			(void)snprintf(err, err_len, "Transfer-Encoding must be exactly \"chunked\"");
			return CVM_E_FORMAT;
		}
	}
	return CVM_OK;
}

/* ---- Limits: peers, byte counts, deadlines, refusals ----
 *
 * A connection's record lives from make_bev (libevent asks for the
 * bufferevent of a connection it just accepted) to on_close (libevent frees
 * the connection). In between: conn_start (zero delay after the accept: the
 * peer, the connection caps, the close callback), then one request after
 * another: conn_begin_request (headers phase), scan_headers (body phase from
 * the end of the headers), on_request (reply phase), on_complete (the next
 * request). One timer per record carries the current deadline; a refusal
 * decided inside a libevent callback (where the connection must not be
 * freed) is carried out by the same timer, activated at once. */

static int64_t deadline_after(unsigned seconds)
{
	return now_us() + (int64_t)seconds * 1000000;
}

static void conn_arm(struct httpd_conn *c, enum conn_phase phase, unsigned seconds)
{
	struct timeval tv;

	c->phase = phase;
	c->phase_us = now_us();
	c->deadline_us = deadline_after(seconds);
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = 0;
	/* Without a timer there is no deadline: then end the connection now. */
	if (evtimer_add(c->timer, &tv) != 0) {
		c->deadline_us = 0;
		event_active(c->timer, EV_TIMEOUT, 1);
	}
}

static bool peer_key_equal(const struct peer_key *a, const struct peer_key *b)
{
	return a->family == b->family && a->uid == b->uid && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* peer_identify fills `key` and a description for logs from the socket. */
static int peer_identify(int fd, struct peer_key *key, char *desc, size_t desc_len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	memset(key, 0, sizeof(*key));
	memset(&ss, 0, sizeof(ss));
	(void)snprintf(desc, desc_len, "-");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return CVM_E_SYSTEM;
	if (ss.ss_family == AF_UNIX) {
		struct ucred uc;
		socklen_t ul = sizeof(uc);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0 || ul != sizeof(uc))
			return CVM_E_SYSTEM;
		key->family = AF_UNIX;
		key->uid = (uint32_t)uc.uid;
		(void)snprintf(desc, desc_len, "unix:pid=%ld,uid=%lu", (long)uc.pid, (unsigned long)uc.uid);
		return CVM_OK;
	}
	sl = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return CVM_E_SYSTEM;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		key->family = AF_INET;
		memcpy(key->addr, &sin->sin_addr, 4);
		if (inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)) == NULL)
			return CVM_E_SYSTEM;
		(void)snprintf(desc, desc_len, "%s:%u", a, (unsigned)ntohs(sin->sin_port));
		return CVM_OK;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		/* An IPv4 client on a dual-stack socket is the same peer as on
		 * an IPv4 socket. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			key->family = AF_INET;
			memcpy(key->addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			key->family = AF_INET6;
			memcpy(key->addr, &sin6->sin6_addr, 16);
		}
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a)) == NULL)
			return CVM_E_SYSTEM;
		(void)snprintf(desc, desc_len, "[%s]:%u", a, (unsigned)ntohs(sin6->sin6_port));
		return CVM_OK;
	}
	return CVM_E_UNSUPPORTED;
}

static struct httpd_peer *peer_find(struct cvm_httpd *h, const struct peer_key *key)
{
	for (struct httpd_peer *p = h->peers; p != NULL; p = p->next) {
		if (peer_key_equal(&p->key, key))
			return p;
	}
	return NULL;
}

/* peer_put returns a peer without connections to the free list. */
static void peer_put(struct cvm_httpd *h, struct httpd_peer *p)
{
	for (struct httpd_peer **pp = &h->peers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	memset(p, 0, sizeof(*p));
	p->next = h->free_peers;
	h->free_peers = p;
}

static void add_held(size_t *total, size_t old_n, size_t new_n)
{
	if (new_n >= old_n)
		*total += new_n - old_n;
	else
		*total -= old_n - new_n;
}

/* conn_account recomputes the bytes a connection holds: its unparsed
 * input, the request being read or handled (what libevent took from the
 * input for it; at most max_headers + max_body stay in memory, whatever the
 * chunk framing or a lingering 413 discarded), and its queued output (the
 * reply, until the socket took it). */
static void conn_account(struct httpd_conn *c)
{
	struct cvm_httpd *h = c->h;
	uint64_t consumed = c->drained - c->req_start;
	size_t cap = h->max_headers + h->max_body;
	size_t held = evbuffer_get_length(bufferevent_get_input(c->bev)) +
	              (consumed < (uint64_t)cap ? (size_t)consumed : cap) +
	              evbuffer_get_length(bufferevent_get_output(c->bev));

	add_held(&h->held, c->held, held);
	if (c->peer != NULL)
		add_held(&c->peer->held, c->held, held);
	c->held = held;
}

static void conn_refuse(struct httpd_conn *c, const char *reason, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* conn_refuse decides to refuse the connection; the timer does it, right
 * after the libevent callback that is running (on_request answers instead
 * when the request is complete by then). */
static void conn_refuse(struct httpd_conn *c, const char *reason, int status, const char *fmt, ...)
{
	va_list ap;

	if (c->refuse_status != 0)
		return;
	c->refuse_status = status;
	c->refuse_reason = reason;
	va_start(ap, fmt);
	(void)vsnprintf(c->refuse_msg, sizeof(c->refuse_msg), fmt, ap);
	va_end(ap);
	(void)evtimer_del(c->timer);
	event_active(c->timer, EV_TIMEOUT, 1);
}

static void check_buffered(struct httpd_conn *c)
{
	struct cvm_httpd *h = c->h;

	if (c->peer == NULL || c->refuse_status != 0)
		return;
	if (c->peer->held > h->max_buffered_peer)
		conn_refuse(c, "peer_buffered", 503,
		            "this client holds more than %zu bytes of requests and replies on this server "
		            "(max_buffered_per_peer); try again later",
		            h->max_buffered_peer);
	else if (h->held > h->max_buffered)
		conn_refuse(
		    c, "buffered", 503,
		    "the server holds more than %zu bytes of requests and replies (max_buffered); try "
		    "again later",
		    h->max_buffered);
}

/* scan_headers finds where the request line and headers end, for the body
 * deadline, with libevent's line rule: a line ends at LF (one CR before it
 * is dropped), the first line is the request line, and the headers end at
 * an empty line or one starting with NUL (libevent's parser stops at
 * `*line == '\0'`). It only chooses the deadline: libevent parses. A scan
 * resumes where the last one stopped, so each byte is searched once. */
static void scan_headers(struct httpd_conn *c, struct evbuffer *buf)
{
	struct cvm_httpd *h = c->h;
	uint64_t end = c->drained + evbuffer_get_length(buf);
	struct evbuffer_ptr at, lf;
	unsigned char first[2];
	uint64_t line_len;
	bool ends;

	if (c->line_start < c->drained)
		c->line_start = c->scan = c->drained; /* cannot happen: resynchronise */
	while (c->phase == PHASE_HEADERS && c->scan < end) {
		if (evbuffer_ptr_set(buf, &at, (size_t)(c->scan - c->drained), EVBUFFER_PTR_SET) != 0)
			return;
		lf = evbuffer_search(buf, "\n", 1, &at);
		if (lf.pos < 0) {
			c->scan = end;
			return;
		}
		line_len = c->drained + (uint64_t)lf.pos - c->line_start;
		memset(first, 0, sizeof(first));
		if (line_len != 0 && (evbuffer_ptr_set(buf, &at, (size_t)(c->line_start - c->drained),
		                                       EVBUFFER_PTR_SET) != 0 ||
		                      evbuffer_copyout_from(buf, &at, first, line_len < 2 ? 1 : 2) < 0))
			return;
		ends = line_len == 0 || (line_len == 1 && first[0] == '\r') || first[0] == '\0';
		c->line_start = c->scan = c->drained + (uint64_t)lf.pos + 1;
		if (c->lines++ == 0)
			continue; /* the request line */
		if (ends) {
			conn_arm(c, PHASE_BODY, h->body_timeout_s);
			return;
		}
		if (c->lines - 1 > CVM_HTTPD_HEADER_LINES_MAX) {
			conn_refuse(c, "header_lines", 431, "more than %u header lines",
			            CVM_HTTPD_HEADER_LINES_MAX);
			return;
		}
	}
}

static void conn_begin_request(struct httpd_conn *c)
{
	c->req_start = c->drained;
	c->line_start = c->scan = c->drained;
	c->lines = 0;
	conn_arm(c, PHASE_HEADERS, c->h->header_timeout_s);
	conn_account(c);
	scan_headers(c, bufferevent_get_input(c->bev));
}

static void in_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct httpd_conn *c = arg;

	c->rx += info->n_added;
	c->drained += info->n_deleted;
	if (c->phase == PHASE_HEADERS && info->n_added != 0)
		scan_headers(c, buf);
	conn_account(c);
	if (info->n_added != 0)
		check_buffered(c);
}

static void accepting_set(struct cvm_httpd *h, bool on)
{
	if (h->closing)
		return;
	for (size_t i = 0; i < h->listener_count; i++) {
		struct evconnlistener *lev = evhttp_bound_socket_get_listener(h->listeners[i].bound);

		if (on)
			(void)evconnlistener_enable(lev);
		else
			(void)evconnlistener_disable(lev);
	}
}

/* GATE_PROBE_US: how often a gated server looks again; GATE_OVERRIDE_US:
 * how long it ignores its gate after finding connections that waited two
 * probes (the servers that should take them are busy or stuck). */
#define GATE_PROBE_US 50000L
#define GATE_OVERRIDE_US 1000000

static void gate_set(struct cvm_httpd *h, bool gated)
{
	struct timeval tv = {0, GATE_PROBE_US};

	if (gated == h->gated)
		return;
	h->gated = gated;
	h->probe_hits = 0;
	if (gated) {
		accepting_set(h, false);
		if (evtimer_add(h->probe, &tv) != 0)
			gate_set(h, false); /* never stay closed without a probe */
	} else {
		(void)evtimer_del(h->probe);
		if (!h->paused)
			accepting_set(h, true);
	}
}

/* gate_eval asks the gate whether this server should take more connections
 * with `open` records in use (the gate also learns the count from it). */
static void gate_eval(struct cvm_httpd *h)
{
	bool ok;

	if (h->gate == NULL || h->closing)
		return;
	ok = h->gate(h->gate_ctx, h->open);
	if (now_us() < h->gate_off_until_us)
		ok = true;
	gate_set(h, !ok);
}

/* gate_probe runs every GATE_PROBE_US while gated: the gate may have opened
 * (the other servers took connections); and a listening socket that stays
 * readable over two probes holds connections no other server takes. */
static void gate_probe(evutil_socket_t fd, short what, void *arg)
{
	struct cvm_httpd *h = arg;
	struct pollfd pf[CVM_HTTPD_LISTENERS_MAX];
	struct timeval tv = {0, GATE_PROBE_US};
	nfds_t n = 0;

	(void)fd;
	(void)what;
	if (!h->gated || h->closing)
		return;
	if (h->gate(h->gate_ctx, h->open)) {
		gate_set(h, false);
		return;
	}
	for (size_t i = 0; i < h->listener_count; i++) {
		pf[n].fd = evconnlistener_get_fd(evhttp_bound_socket_get_listener(h->listeners[i].bound));
		pf[n].events = POLLIN;
		pf[n].revents = 0;
		n++;
	}
	if (n > 0 && poll(pf, n, 0) > 0) {
		if (++h->probe_hits >= 2) {
			h->gate_off_until_us = now_us() + GATE_OVERRIDE_US;
			cvm_daemon_log_limited(CVM_LOG_DEBUG, "accept_gate_override", "api=%s open=%u",
			                       h->name, h->open);
			gate_set(h, false);
			return;
		}
	} else {
		h->probe_hits = 0;
	}
	if (evtimer_add(h->probe, &tv) != 0)
		gate_set(h, false);
}

/* conn_release returns the record to the pool, with its counts. */
static void stream_abort(struct httpd_stream *s);

static void conn_release(struct httpd_conn *c)
{
	struct cvm_httpd *h = c->h;
	struct event *timer = c->timer;
	struct httpd_stream *s = c->stream;

	/* the client went away (or the server is freed) during a stream.
	 * When the client went away, libevent detached the unfinished request
	 * from the connection and left it to us: evhttp_send_reply_end frees
	 * a detached request. Otherwise the connection frees it. */
	c->stream = NULL;
	stream_abort(s);
	if (c->in_cb != NULL)
		(void)evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	if (c->out_cb != NULL)
		(void)evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
	(void)evtimer_del(timer);
	h->held -= c->held;
	if (c->peer != NULL) {
		c->peer->held -= c->held;
		c->peer->conns--;
		h->conn_count--;
		if (c->peer->conns == 0)
			peer_put(h, c->peer);
	}
	memset(c, 0, sizeof(*c));
	c->h = h;
	c->timer = timer;
	c->next_free = h->free_conns;
	h->free_conns = c;
	h->open--;
	if (h->paused) {
		h->paused = false;
		if (!h->gated)
			accepting_set(h, true);
	}
	gate_eval(h);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	conn_release(arg);
}

/* direct_reply writes a whole response straight to the socket, without
 * blocking, when nothing else is queued for it (a reply being written is
 * never interleaved); a socket that cannot take it all gets a truncated one.
 * It first reads what the client sent that will never be parsed: closing a
 * TCP socket over unread data resets the connection, which can destroy the
 * answer before the client reads it. */
static void direct_reply(struct httpd_conn *c, int status, const char *msg)
{
	static uint8_t scratch[16384];
	char buf[1024], kv[CVM_KV_MAX];
	json_t *o;
	char *body = NULL;
	int fd = bufferevent_getfd(c->bev), n;

	/* A TLS connection cannot take plaintext (and the handshake may not be
	 * done): it is closed without an answer. */
	if (c->tls || fd < 0 || evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
		return;
	for (int i = 0; i < 8; i++) {
		if (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0)
			break;
	}
	o = json_pack("{s:s}", "error", msg);
	body = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	if (body == NULL)
		return;
	n = snprintf(buf, sizeof(buf),
	             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	             "Connection: close\r\n\r\n%s",
	             status, cvm_http_status_text(status), strlen(body), body);
	free(body);
	if (n > 0 && (size_t)n < sizeof(buf) && send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		cvm_daemon_log(CVM_LOG_DEBUG, "direct_reply_failed", "api=%s peer=%s errno=%d", c->h->name,
		               cvm_kv(c->peer_desc, kv), errno);
}

/* conn_close answers `status` (0: nothing) and frees the connection; its
 * close callback returns the record. Only from the timer. */
static void conn_close(struct httpd_conn *c, int status, const char *msg)
{
	if (status != 0)
		direct_reply(c, status, msg);
	evhttp_connection_free(c->evcon);
}

static void log_refusal(const struct httpd_conn *c, const char *reason, int status, const char *msg)
{
	char k1[CVM_KV_MAX], k2[CVM_KV_MAX];

	cvm_daemon_log_limited(CVM_LOG_WARN, "connection_refused",
	                       "api=%s peer=%s reason=%s status=%d connections=%u buffered=%zu error=%s",
	                       c->h->name, cvm_kv(c->peer_desc, k1), reason, status, c->h->conn_count,
	                       c->h->held, cvm_kv(msg, k2));
}

/* conn_start runs right after the accept: it finds the evhttp connection
 * (the bufferevent's callback argument), identifies the peer and admits the
 * connection or refuses it. */
static void conn_start(struct httpd_conn *c)
{
	struct cvm_httpd *h = c->h;
	struct bufferevent *bev = c->bev;
	bufferevent_data_cb readcb = NULL;
	void *cbarg = NULL;
	struct httpd_peer *p;
	struct peer_key key;
	char msg[256];

	bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
	if (readcb == NULL || cbarg == NULL ||
	    evhttp_connection_get_bufferevent((struct evhttp_connection *)cbarg) != bev) {
		/* evhttp could not set the connection up and freed it already
		 * (its callbacks are gone): only our reference keeps it. */
		conn_release(c);
		(void)bufferevent_decref(bev);
		return;
	}
	c->evcon = cbarg;
	evhttp_connection_set_closecb(c->evcon, on_close, c);
	{
		/* A reply goes out in several writes (OpenSSL's records over TLS;
		 * evhttp's head and a large body in plain TCP): without TCP_NODELAY
		 * the last segment waits for the client's delayed ACK, 40 ms per
		 * exchange (measured: cvm-vmmd's Status of 50 VMs, 18-29 KB, took
		 * 44 ms). A unix socket refuses the option, which changes nothing. */
		int one = 1;

		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	(void)bufferevent_decref(bev); /* evhttp's reference remains */
	if (peer_identify(bufferevent_getfd(bev), &key, c->peer_desc, sizeof(c->peer_desc)) != CVM_OK) {
		(void)snprintf(msg, sizeof(msg), "cannot identify the client (errno %d)", errno);
		log_refusal(c, "peer_unknown", 503, msg);
		conn_close(c, 503, msg);
		return;
	}
	p = peer_find(h, &key);
	if (h->conn_count >= h->max_conns) {
		(void)snprintf(msg, sizeof(msg),
		               "the server has %u connections open, its maximum (max_connections); try again "
		               "later",
		               h->max_conns);
		log_refusal(c, "connections", 503, msg);
		conn_close(c, 503, msg);
		return;
	}
	if (p != NULL && p->conns >= h->max_conns_peer) {
		(void)snprintf(msg, sizeof(msg),
		               "this client has %u connections open, the most one client may have "
		               "(max_connections_per_peer); try again later",
		               p->conns);
		log_refusal(c, "peer_connections", 503, msg);
		conn_close(c, 503, msg);
		return;
	}
	if (p == NULL) {
		/* Never empty: peers with connections <= admitted connections
		 * < max_conns = records in the peer pool. */
		p = h->free_peers;
		h->free_peers = p->next;
		p->key = key;
		p->next = h->peers;
		h->peers = p;
	}
	p->conns++;
	p->held += c->held;
	h->conn_count++;
	c->peer = p;
	/* Back-pressure rather than memory: while a reply is written libevent
	 * keeps reading what the client pipelines. Room for one whole request
	 * (libevent needs a whole chunk in the buffer before it takes it). */
	bufferevent_setwatermark(bev, EV_READ, 0, h->max_headers + h->max_body + 4096);
	conn_begin_request(c);
	if (c->tls && h->handshake_timeout_s < h->header_timeout_s) {
		/* the handshake has a deadline of its own, inside the header one */
		struct timeval tv = {(time_t)h->handshake_timeout_s, 0};

		c->handshake_us = deadline_after(h->handshake_timeout_s);
		if (evtimer_add(c->timer, &tv) != 0)
			event_active(c->timer, EV_TIMEOUT, 1);
	}
}

/* handshake_late is true when a TLS connection's handshake deadline has
 * passed before its handshake finished. */
static bool handshake_late(struct httpd_conn *c)
{
	SSL *ssl;

	if (c->handshake_us == 0)
		return false;
	ssl = bufferevent_openssl_get_ssl(c->bev);
	if (ssl != NULL && SSL_is_init_finished(ssl)) {
		c->handshake_us = 0;
		return false;
	}
	return now_us() + 1000 >= c->handshake_us;
}

static void conn_expire(struct httpd_conn *c)
{
	struct cvm_httpd *h = c->h;
	unsigned limit = c->phase == PHASE_HEADERS ? h->header_timeout_s
	                 : c->phase == PHASE_BODY  ? h->body_timeout_s
	                                           : h->reply_timeout_s;
	bool partial = c->rx > c->req_start;
	int status = 0;
	char msg[256], k1[CVM_KV_MAX];

	/* A client cut in the middle of a request is told why; an idle
	 * keep-alive connection is closed silently (a 408 there could be read
	 * as the answer to a request the client is sending just now). */
	if ((c->phase == PHASE_HEADERS && partial) || c->phase == PHASE_BODY) {
		status = 408;
		(void)snprintf(msg, sizeof(msg), "the request %s did not arrive within %u s (%s)",
		               c->phase == PHASE_HEADERS ? "line and headers" : "body", limit,
		               c->phase == PHASE_HEADERS ? "header_timeout" : "body_timeout");
	}
	if (c->phase != PHASE_HEADERS || partial)
		cvm_daemon_log_limited(
		    CVM_LOG_INFO, "deadline",
		    "api=%s peer=%s phase=%s limit_s=%u elapsed_ms=%lld bytes=%llu status=%d", h->name,
		    cvm_kv(c->peer_desc, k1), phase_names[c->phase], limit,
		    (long long)((now_us() - c->phase_us) / 1000), (unsigned long long)(c->rx - c->req_start),
		    status);
	conn_close(c, status, status != 0 ? msg : NULL);
}

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_conn *c = arg;
	int64_t left;

	(void)fd;
	(void)what;
	if (c->phase == PHASE_NEW) {
		conn_start(c);
		return;
	}
	if (c->refuse_status != 0) {
		log_refusal(c, c->refuse_reason, c->refuse_status, c->refuse_msg);
		conn_close(c, c->refuse_status, c->refuse_msg);
		return;
	}
	if (c->closing && c->phase == PHASE_REPLY) {
		conn_close(c, 0, NULL); /* the reply is out (on_complete) or late */
		return;
	}
	if (handshake_late(c)) {
		char k1[CVM_KV_MAX];

		cvm_daemon_log_limited(CVM_LOG_INFO, "deadline",
		                       "api=%s peer=%s phase=handshake limit_s=%u status=0", c->h->name,
		                       cvm_kv(c->peer_desc, k1), c->h->handshake_timeout_s);
		conn_close(c, 0, NULL);
		return;
	}
	left = c->deadline_us - now_us();
	if (c->handshake_us != 0 && c->handshake_us < c->deadline_us)
		left = c->handshake_us - now_us();
	if (c->deadline_us != 0 && left > 1000) {
		/* early (libevent's clock is cached): wait for the rest */
		struct timeval tv = {(time_t)(left / 1000000), (suseconds_t)(left % 1000000)};

		if (evtimer_add(c->timer, &tv) == 0)
			return;
	}
	conn_expire(c);
}

/* conn_of finds the record of a connection libevent hands us a request on. */
static struct httpd_conn *conn_of(struct cvm_httpd *h, const struct evhttp_connection *evcon)
{
	for (size_t i = 0; evcon != NULL && i < h->pool_count; i++) {
		if (h->conns[i].phase >= PHASE_HEADERS && h->conns[i].evcon == evcon)
			return &h->conns[i];
	}
	return NULL;
}

/* send_resp queues the reply; with `close`, libevent closes the connection
 * once it is written, and reads nothing more from it. */
static void send_resp(struct cvm_httpd *h, struct evhttp_request *er, struct cvm_http_resp *resp, bool close)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(er);
	struct evbuffer *out = evhttp_request_get_output_buffer(er);
	int status = resp->body != NULL ? resp->status : 500;
	size_t len = resp->body != NULL ? resp->body_len : sizeof(oom_body) - 1;
	char cl[24];
	int e;

	(void)snprintf(cl, sizeof(cl), "%zu", len);
	(void)evhttp_add_header(hdr, "Content-Type",
	                        resp->body != NULL && resp->content_type != NULL ? resp->content_type
	                                                                         : "application/json");
	(void)evhttp_add_header(hdr, "Content-Length", cl);
	if (resp->allow != NULL)
		(void)evhttp_add_header(hdr, "Allow", resp->allow);
	for (size_t i = 0; resp->body != NULL && i < resp->header_count && i < CVM_HTTP_RESP_HEADERS_MAX; i++)
		(void)evhttp_add_header(hdr, resp->header_names[i], resp->header_values[i]);
	if (close)
		(void)evhttp_add_header(hdr, "Connection", "close");
	if (resp->body != NULL) {
		e = evbuffer_add_reference(out, resp->body, len, wipe_body, NULL);
		if (e == 0) {
			resp->body = NULL; /* libevent owns it now */
			resp->body_len = 0;
		}
	} else {
		e = evbuffer_add(out, oom_body, len);
	}
	if (e != 0) {
		/* Cannot even queue the body: libevent's own error page (made JSON
		 * by out_cb) closes the connection. */
		evhttp_clear_headers(hdr);
		evhttp_send_error(er, 500, NULL);
		return;
	}
	h->own_reply = true;
	evhttp_send_reply(er, status, cvm_http_status_text(status), NULL);
	h->own_reply = false;
}

static void on_complete(struct evhttp_request *er, void *arg)
{
	struct httpd_conn *c = arg;

	(void)er;
	if (c->closing) {
		/* libevent did not close it (CONNECT): the timer does, now */
		(void)evtimer_del(c->timer);
		event_active(c->timer, EV_TIMEOUT, 1);
		return;
	}
	conn_begin_request(c);
}

/* check_limits answers what a complete request gets before its handler
 * runs: a refusal decided while it was read, a framing error, or a peer
 * over its byte cap. Each closes the connection. Returns true if `resp` is
 * set. */
static bool check_limits(struct httpd_conn *c, struct evhttp_request *er, struct cvm_http_resp *resp)
{
	struct cvm_httpd *h = c->h;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(er);
	char err[CVM_HTTPD_ERR_MAX];

	/* Logged by on_request as event=request_rejected. libevent keeps the
	 * connection of a CONNECT request open whatever its reply says: a
	 * request after a refusal is never handled. */
	if (c->closing) {
		cvm_http_resp_error(resp, 400, "this connection is closing after an error; open a new one");
		return true;
	}
	if (c->refuse_status != 0) {
		(void)evtimer_del(c->timer); /* answered here instead */
		cvm_http_resp_error(resp, c->refuse_status, "%s", c->refuse_msg);
		c->refuse_status = 0;
		return true;
	}
	if (cvm_httpd_check_framing(evhttp_request_get_input_headers(er),
	                            cmd != EVHTTP_REQ_HEAD && cmd != EVHTTP_REQ_TRACE, h->allow_chunked, err,
	                            sizeof(err)) != CVM_OK) {
		cvm_http_resp_error(resp, 400, "%s", err);
		return true;
	}
	if (c->peer->held > h->max_buffered_peer) {
		cvm_http_resp_error(resp, 503,
		                    "this client holds more than %zu bytes of requests and replies on this "
		                    "server (max_buffered_per_peer); try again later",
		                    h->max_buffered_peer);
		return true;
	}
	if (h->held > h->max_buffered) {
		cvm_http_resp_error(resp, 503,
		                    "the server holds more than %zu bytes of requests and replies "
		                    "(max_buffered); try again later",
		                    h->max_buffered);
		return true;
	}
	return false;
}

/* A streaming reply in progress on a connection (cvm_http_resp_stream). */
struct httpd_stream {
	struct httpd_conn *c;
	struct evhttp_request *er;
	struct event *tick;
	cvm_http_stream_fn fn;
	cvm_http_stream_done done;
	void *ctx;
	unsigned period_ms;
};

static void stream_free(struct httpd_stream *s)
{
	if (s == NULL)
		return;
	if (s->tick != NULL)
		event_free(s->tick);
	if (s->done != NULL)
		s->done(s->ctx);
	free(s);
}

static void stream_abort(struct httpd_stream *s)
{
	if (s != NULL && evhttp_request_get_connection(s->er) == NULL)
		evhttp_send_reply_end(s->er);
	stream_free(s);
}

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_stream *s = arg;
	struct httpd_conn *c = s->c;
	struct cvm_httpd *h = c->h;
	struct timeval tv = {(time_t)(s->period_ms / 1000), (suseconds_t)((s->period_ms % 1000) * 1000)};
	struct evbuffer *chunk;
	bool more = true;

	(void)fd;
	(void)what;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) <= CVM_HTTPD_STREAM_OUTPUT_MAX) {
		chunk = evbuffer_new();
		more = chunk != NULL && s->fn(s->ctx, chunk);
		if (chunk != NULL && evbuffer_get_length(chunk) != 0) {
			h->own_reply = true;
			evhttp_send_reply_chunk(s->er, chunk);
			h->own_reply = false;
		}
		if (chunk != NULL)
			evbuffer_free(chunk);
	}
	if (more && evtimer_add(s->tick, &tv) == 0)
		return;
	/* The end: the rest must leave within the reply deadline; the
	 * connection may be freed inside evhttp_send_reply_end (HTTP/1.0). */
	c->stream = NULL;
	conn_arm(c, PHASE_REPLY, h->reply_timeout_s);
	h->own_reply = true;
	evhttp_send_reply_end(s->er);
	h->own_reply = false;
	stream_free(s);
}

/* stream_start takes over `resp`'s stream on `c`. Returns false (and
 * leaves the stream in `resp`) when it cannot. */
static bool stream_start(struct cvm_httpd *h, struct httpd_conn *c, struct evhttp_request *er,
                         struct cvm_http_resp *resp)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(er);
	struct httpd_stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return false;
	s->tick = evtimer_new(h->base, stream_tick, s);
	if (s->tick == NULL) {
		free(s);
		return false;
	}
	s->c = c;
	s->er = er;
	s->fn = resp->stream_fn;
	s->done = resp->stream_done;
	s->ctx = resp->stream_ctx;
	s->period_ms = resp->stream_period_ms;
	resp->stream_fn = NULL; /* transferred */
	resp->stream_done = NULL;
	resp->stream_ctx = NULL;
	(void)evhttp_add_header(hdr, "Content-Type",
	                        resp->content_type != NULL ? resp->content_type : "application/octet-stream");
	for (size_t i = 0; i < resp->header_count && i < CVM_HTTP_RESP_HEADERS_MAX; i++)
		(void)evhttp_add_header(hdr, resp->header_names[i], resp->header_values[i]);
	/* no reply deadline while streaming: the stream ends with the client */
	(void)evtimer_del(c->timer);
	c->deadline_us = 0;
	c->stream = s;
	h->own_reply = true;
	evhttp_send_reply_start(er, 200, cvm_http_status_text(200));
	h->own_reply = false;
	event_active(s->tick, EV_TIMEOUT, 1);
	return true;
}

static void on_request(struct evhttp_request *er, void *arg)
{
	struct cvm_httpd *h = arg;
	struct cvm_http_req req;
	struct cvm_http_resp resp;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(er);
	struct evbuffer *in = evhttp_request_get_input_buffer(er);
	const char *raw_path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct httpd_conn *c = conn_of(h, evhttp_request_get_connection(er));
	char *path = NULL;
	size_t path_len = 0, in_len = evbuffer_get_length(in), sent = 0;
	int64_t t0 = now_us();
	bool close = true, refused;
	char k1[CVM_KV_MAX], k2[CVM_KV_MAX], k3[CVM_KV_MAX];

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.er = er;
	req.tls = c != NULL && c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	req.method = method_of(evhttp_request_get_command(er), &req.method_name);
	req.query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	req.content_type = evhttp_find_header(evhttp_request_get_input_headers(er), "Content-Type");
	if (raw_path == NULL || raw_path[0] == '\0')
		raw_path = "/";
	if (c == NULL) {
		/* Every connection has a record from its accept on. */
		cvm_http_resp_error(&resp, 500, "internal error: a connection without limits");
		goto send;
	}
	refused = check_limits(c, er, &resp); /* before the deadline: it may cancel the timer */
	conn_arm(c, PHASE_REPLY, h->reply_timeout_s);
	evhttp_request_set_on_complete_cb(er, on_complete, c);
	if (refused)
		goto send;
	close = false;
	path = evhttp_uridecode(raw_path, 0, &path_len);
	if (path == NULL) {
		cvm_http_resp_error(&resp, 500, "out of memory");
		goto send;
	}
	req.path = path;
	if (strlen(path) != path_len) {
		req.path = "?";
		cvm_http_resp_error(&resp, 400, "the request path contains a NUL byte");
		goto send;
	}
	/* libevent enforces the cap while reading; checked again here so the
	 * handler's contract does not rest on libevent alone. */
	if (in_len > h->max_body) {
		cvm_http_resp_error(&resp, 413, "request body too large (at most %zu bytes)", h->max_body);
		goto send;
	}
	if (in_len != 0) {
		req.body = evbuffer_pullup(in, -1);
		if (req.body == NULL) {
			cvm_http_resp_error(&resp, 500, "out of memory");
			goto send;
		}
		req.body_len = in_len;
	}
	h->handler(h->ctx, &req, &resp);
	if (resp.stream_fn != NULL && resp.status == 200 && resp.body == NULL && c != NULL && !c->closing &&
	    stream_start(h, c, er, &resp)) {
		if (cvm_daemon_log_enabled(CVM_LOG_DEBUG))
			cvm_daemon_log(CVM_LOG_DEBUG, "request",
			               "api=%s method=%s path=%s status=200 stream=yes", h->name,
			               req.method_name, cvm_kv(req.path, k1));
		cvm_http_resp_cleanup(&resp);
		free(path);
		return;
	}
	if (resp.stream_fn != NULL && resp.body == NULL)
		cvm_http_resp_error(&resp, 500, "cannot start the streaming reply");
	if (resp.body == NULL && resp.status == 0)
		cvm_http_resp_error(&resp, 500, "the handler gave no reply");
	if (resp.body_len > CVM_HTTPD_REPLY_MAX)
		cvm_http_resp_error(&resp, 500, "the reply is too large");
send:
	sent = resp.body_len;
	if (c != NULL && close)
		c->closing = true;
	send_resp(h, er, &resp, close);
	if (resp.status >= 400)
		cvm_daemon_log_limited(CVM_LOG_INFO, "request_rejected",
		                       "api=%s method=%s path=%s status=%d peer=%s error=%s", h->name,
		                       req.method_name != NULL ? req.method_name : "?",
		                       cvm_kv(req.path != NULL ? req.path : raw_path, k1), resp.status,
		                       cvm_kv(cvm_http_req_peer(&req), k2), cvm_kv(resp.err, k3));
	else if (cvm_daemon_log_enabled(CVM_LOG_DEBUG))
		cvm_daemon_log(
		    CVM_LOG_DEBUG, "request", "api=%s method=%s path=%s status=%d bytes=%zu us=%lld", h->name,
		    req.method_name, cvm_kv(req.path, k1), resp.status, sent, (long long)(now_us() - t0));
	cvm_http_resp_cleanup(&resp);
	free(path);
}

/* libevent answers some requests by itself, before any handler runs: a
 * malformed request line or headers (400), a body over the cap (413), an
 * Expect other than 100-continue (417). It writes an HTML page with
 * "Connection: close". libevent 2.1 offers no hook to change that page
 * (2.2's evhttp_set_errorcb does), so the page is replaced here, in the
 * connection's output buffer, before any of it reaches the socket: libevent
 * composes a whole response synchronously and writes it from the event loop
 * later, and it starts a response only once the previous one has left the
 * buffer. Our own replies are recognised by h->own_reply. The parsing below
 * reads libevent's own output, not client input. */
static const char *error_page_message(int status, const struct cvm_httpd *h, char *buf, size_t len)
{
	switch (status) {
	case 400:
		(void)snprintf(
		    buf, len,
		    "malformed HTTP request (request line, headers or body framing; request line and "
		    "headers at most %zu bytes)",
		    h->max_headers);
		break;
	case 413:
		(void)snprintf(buf, len, "request body too large (at most %zu bytes)", h->max_body);
		break;
	case 417:
		(void)snprintf(buf, len, "unsupported Expect header (only 100-continue)");
		break;
	case 501:
		(void)snprintf(buf, len, "HTTP method not implemented");
		break;
	default:
		(void)snprintf(buf, len, "HTTP error %d", status);
		break;
	}
	return buf;
}

static const char *find_crlf2(const char *p, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++) {
		if (memcmp(p + i, "\r\n\r\n", 4) == 0)
			return p + i;
	}
	return NULL;
}

/* header_value finds "\r\nName: value" in the header block [p, p+n). */
static bool header_size(const char *p, size_t n, const char *name, size_t *out)
{
	size_t nl = strlen(name);

	*out = 0;
	for (size_t i = 0; i + 2 + nl + 2 <= n; i++) {
		if (p[i] != '\r' || p[i + 1] != '\n' || strncasecmp(p + i + 2, name, nl) != 0 ||
		    p[i + 2 + nl] != ':')
			continue;
		i += 2 + nl + 1;
		while (i < n && p[i] == ' ')
			i++;
		if (i >= n || p[i] < '0' || p[i] > '9')
			return false;
		while (i < n && p[i] >= '0' && p[i] <= '9') {
			if (*out > 100000000)
				return false;
			*out = *out * 10 + (size_t)(p[i] - '0');
			i++;
		}
		return true;
	}
	return false;
}

/* rewrite_error_page returns true when `buf` holds one of libevent's error
 * pages, or its start (replaced once complete, when it can be). */
static bool rewrite_error_page(struct cvm_httpd *h, struct evbuffer *buf)
{
	size_t total = evbuffer_get_length(buf), skip = 0, body_len, hlen;
	const char *p, *end;
	char msg[256], head[256], kv[CVM_KV_MAX], prefix[4096];
	json_t *o = NULL;
	char *body = NULL;
	int status, n;

	/* libevent's pages are a few hundred bytes; anything big is not one. */
	if (total > 4096)
		return false;
	p = (const char *)evbuffer_pullup(buf, -1);
	if (p == NULL)
		return false;
	/* Leave any "100 Continue" interim responses in front alone. */
	while (total - skip >= 25 && memcmp(p + skip, "HTTP/1.", 7) == 0 &&
	       memcmp(p + skip + 8, " 100 ", 5) == 0) {
		end = find_crlf2(p + skip, total - skip);
		if (end == NULL)
			return false;
		skip = (size_t)(end + 4 - p);
	}
	if (total - skip < 13 || memcmp(p + skip, "HTTP/1.", 7) != 0 || p[skip + 8] != ' ')
		return false;
	status = (p[skip + 9] - '0') * 100 + (p[skip + 10] - '0') * 10 + (p[skip + 11] - '0');
	if (status < 400 || status > 599)
		return false;
	/* An error page from here on. Not complete yet: wait for the next
	 * addition. A page without Content-Length (libevent's answer to a
	 * CONNECT request: no body is announced, one follows) cannot be told
	 * complete and goes out as libevent wrote it. */
	end = find_crlf2(p + skip, total - skip);
	if (end == NULL)
		return true;
	hlen = (size_t)(end + 4 - (p + skip));
	if (!header_size(p + skip, hlen - 2, "Content-Length", &body_len) || total - skip != hlen + body_len)
		return true;
	o = json_pack("{s:s}", "error", error_page_message(status, h, msg, sizeof(msg)));
	body = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	if (body == NULL)
		goto out;
	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	             "Connection: close\r\n\r\n",
	             status, cvm_http_status_text(status), strlen(body));
	if (n < 0 || (size_t)n >= sizeof(head))
		goto out;
	/* bufferevent_socket freezes the front of its output buffer (only the
	 * socket writer drains it); nothing of this page was written yet, so
	 * thaw it for the replacement. If it cannot be replaced whole, the
	 * HTML page goes out as it is. */
	h->rewriting = true;
	(void)evbuffer_unfreeze(buf, 1);
	memcpy(prefix, p, skip); /* interim responses, kept in front */
	if (evbuffer_drain(buf, total) == 0) {
		(void)evbuffer_add(buf, prefix, skip);
		(void)evbuffer_add(buf, head, (size_t)n);
		(void)evbuffer_add(buf, body, strlen(body));
	}
	(void)evbuffer_freeze(buf, 1);
	h->rewriting = false;
	cvm_daemon_log_limited(CVM_LOG_INFO, "request_rejected", "api=%s status=%d error=%s by=libevent",
	                       h->name, status, cvm_kv(msg, kv));
out:
	free(body);
	json_decref(o);
	return true;
}

static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct httpd_conn *c = arg;
	struct cvm_httpd *h = c->h;

	/* After an error page nothing more is handled on the connection
	 * (libevent keeps a CONNECT request's connection open). */
	if (info->n_added != 0 && !h->own_reply && !h->rewriting && rewrite_error_page(h, buf))
		c->closing = true;
	conn_account(c);
}

/* orphan_close ends a connection that got no record (see make_bev). */
static void orphan_close(evutil_socket_t fd, short what, void *arg)
{
	struct bufferevent *bev = arg;
	bufferevent_data_cb readcb = NULL;
	void *cbarg = NULL;

	(void)fd;
	(void)what;
	bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
	if (readcb != NULL && cbarg != NULL &&
	    evhttp_connection_get_bufferevent((struct evhttp_connection *)cbarg) == bev)
		evhttp_connection_free(cbarg);
	(void)bufferevent_decref(bev);
}

/* make_bev is libevent's request for the bufferevent of a connection it has
 * just accepted (the socket is set on it afterwards). The connection gets a
 * record and its byte counters here; conn_start, right after the accept,
 * does the rest. Taking the last free record stops accepting until one is
 * returned, so a record is always there; if not (a broken invariant), the
 * connection is closed unanswered rather than served without limits. */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct cvm_httpd *h = arg;
	struct httpd_conn *c = h->free_conns;
	struct bufferevent *bev = NULL;
	struct timeval zero = {0, 0};
	SSL *ssl = NULL;

	if (h->tls_ctx != NULL) {
		ssl = SSL_new(h->tls_ctx);
		if (ssl == NULL)
			return NULL;
		/* the bufferevent owns the SSL from here on (BEV_OPT_CLOSE_ON_FREE) */
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
		                                     BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			SSL_free(ssl);
			return NULL;
		}
		/* a peer that closes without close_notify ends its connection, as
		 * over plain TCP */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL)
		return NULL;     /* libevent then fails to allocate too, or serves it with its own timeouts */
	bufferevent_incref(bev); /* until conn_start or orphan_close has looked */
	if (c == NULL) {
		cvm_daemon_log_limited(CVM_LOG_ERROR, "connection_refused",
		                       "api=%s reason=no_record status=0 error=\"internal: no free record\"",
		                       h->name);
		if (event_base_once(base, -1, EV_TIMEOUT, orphan_close, bev, &zero) != 0) {
			(void)bufferevent_decref(bev);
			bufferevent_free(bev);
			return NULL;
		}
		return bev;
	}
	c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), in_cb, c);
	c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), out_cb, c);
	if (c->in_cb == NULL || c->out_cb == NULL) {
		(void)bufferevent_decref(bev);
		bufferevent_free(bev);
		return NULL;
	}
	h->free_conns = c->next_free;
	c->next_free = NULL;
	c->bev = bev;
	c->tls = ssl != NULL;
	c->phase = PHASE_NEW;
	c->phase_us = now_us();
	event_active(c->timer, EV_TIMEOUT, 1);
	h->open++;
	if (h->free_conns == NULL) {
		h->paused = true;
		accepting_set(h, false);
		cvm_daemon_log_limited(CVM_LOG_WARN, "accept_paused", "api=%s records=%zu", h->name,
		                       h->pool_count);
	}
	gate_eval(h);
	return bev;
}

static bool size_ok(size_t v, size_t min, size_t max)
{
	return v >= min && v <= max;
}

/* opts_resolve fills `o` from `opts` with the defaults for zeros. */
static void opts_resolve(const struct cvm_httpd_opts *opts, struct cvm_httpd_opts *o)
{
	*o = *opts;
	o->max_body = o->max_body != 0 ? o->max_body : CVM_HTTPD_BODY_MAX_DEFAULT;
	o->max_headers = o->max_headers != 0 ? o->max_headers : CVM_HTTPD_HEADERS_MAX_DEFAULT;
	o->timeout_s = o->timeout_s != 0 ? o->timeout_s : CVM_HTTPD_TIMEOUT_DEFAULT;
	o->header_timeout_s =
	    o->header_timeout_s != 0 ? o->header_timeout_s : CVM_HTTPD_HEADER_TIMEOUT_DEFAULT;
	o->body_timeout_s = o->body_timeout_s != 0 ? o->body_timeout_s : CVM_HTTPD_BODY_TIMEOUT_DEFAULT;
	o->reply_timeout_s = o->reply_timeout_s != 0 ? o->reply_timeout_s : CVM_HTTPD_REPLY_TIMEOUT_DEFAULT;
	o->max_connections = o->max_connections != 0 ? o->max_connections : CVM_HTTPD_CONNECTIONS_DEFAULT;
	o->max_connections_per_peer = o->max_connections_per_peer != 0
	                                  ? o->max_connections_per_peer
	                                  : CVM_HTTPD_CONNECTIONS_PER_PEER_DEFAULT;
	o->max_buffered = o->max_buffered != 0 ? o->max_buffered : CVM_HTTPD_BUFFERED_DEFAULT;
	o->max_buffered_per_peer =
	    o->max_buffered_per_peer != 0 ? o->max_buffered_per_peer : CVM_HTTPD_BUFFERED_PER_PEER_DEFAULT;
}

int cvm_httpd_opts_check(const struct cvm_httpd_opts *opts, char *err, size_t err_len)
{
	struct cvm_httpd_opts o;

	err[0] = '\0';
	if (opts == NULL) {
		(void)snprintf(err, err_len, "no options");
		return CVM_E_INVAL;
	}
	opts_resolve(opts, &o);
	if (o.max_body > (size_t)INT32_MAX || o.max_headers > (size_t)INT32_MAX) {
		(void)snprintf(err, err_len, "max_body and max_headers must be at most %d bytes", INT32_MAX);
		return CVM_E_INVAL;
	}
	if (o.timeout_s > CVM_HTTPD_TIMEOUT_MAX || o.header_timeout_s > CVM_HTTPD_TIMEOUT_MAX ||
	    o.body_timeout_s > CVM_HTTPD_TIMEOUT_MAX || o.reply_timeout_s > CVM_HTTPD_TIMEOUT_MAX) {
		(void)snprintf(err, err_len, "timeouts must be 1 to %u seconds", CVM_HTTPD_TIMEOUT_MAX);
		return CVM_E_INVAL;
	}
	if (o.max_connections > CVM_HTTPD_CONNECTIONS_MAX || o.max_connections_per_peer > o.max_connections) {
		(void)snprintf(
		    err, err_len,
		    "max_connections (%u) must be at most %u, and max_connections_per_peer (%u) at "
		    "most max_connections",
		    o.max_connections, CVM_HTTPD_CONNECTIONS_MAX, o.max_connections_per_peer);
		return CVM_E_INVAL;
	}
	if (!size_ok(o.max_buffered, 1, CVM_HTTPD_BUFFERED_MAX) || o.max_buffered_per_peer > o.max_buffered) {
		(void)snprintf(
		    err, err_len,
		    "max_buffered (%zu) must be at most %zu bytes, and max_buffered_per_peer (%zu) at "
		    "most max_buffered",
		    o.max_buffered, CVM_HTTPD_BUFFERED_MAX, o.max_buffered_per_peer);
		return CVM_E_INVAL;
	}
	/* One request of the largest size, with its reply starting, must fit. */
	if (o.max_buffered_per_peer < o.max_headers + o.max_body + 4096) {
		(void)snprintf(
		    err, err_len,
		    "max_buffered_per_peer (%zu) must be at least max_body + max_headers + 4096 (%zu) "
		    "bytes, or no request of the largest size could be read",
		    o.max_buffered_per_peer, o.max_headers + o.max_body + 4096);
		return CVM_E_INVAL;
	}
	return CVM_OK;
}

int cvm_httpd_new(struct event_base *base, const struct cvm_httpd_opts *opts, cvm_http_handler handler,
                  void *ctx, struct cvm_httpd **out)
{
	struct cvm_httpd *h = NULL;
	struct cvm_httpd_opts o;
	struct timeval tv;
	char err[512], kv[CVM_KV_MAX];
	int r = CVM_E_NOMEM;

	*out = NULL;
	if (base == NULL || opts == NULL || handler == NULL)
		return CVM_E_INVAL;
	if (cvm_httpd_opts_check(opts, err, sizeof(err)) != CVM_OK)
		return CVM_E_INVAL;
	opts_resolve(opts, &o);
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return CVM_E_NOMEM;
	h->base = base;
	h->handler = handler;
	h->ctx = ctx;
	h->name = o.name != NULL ? o.name : "http";
	h->max_body = o.max_body;
	h->max_headers = o.max_headers;
	h->timeout_s = o.timeout_s;
	h->header_timeout_s = o.header_timeout_s;
	h->body_timeout_s = o.body_timeout_s;
	h->reply_timeout_s = o.reply_timeout_s;
	h->max_conns = o.max_connections;
	h->max_conns_peer = o.max_connections_per_peer;
	h->max_buffered = o.max_buffered;
	h->max_buffered_peer = o.max_buffered_per_peer;
	h->allow_chunked = o.allow_chunked;
	h->pool_count = (size_t)h->max_conns + CVM_HTTPD_REFUSE_SLOTS;
	h->conns = calloc(h->pool_count, sizeof(*h->conns));
	h->peer_pool = calloc(h->max_conns, sizeof(*h->peer_pool));
	if (h->conns == NULL || h->peer_pool == NULL)
		goto fail;
	for (size_t i = h->pool_count; i-- > 0;) {
		struct httpd_conn *c = &h->conns[i];

		c->h = h;
		c->timer = evtimer_new(base, conn_timer, c);
		if (c->timer == NULL)
			goto fail;
		c->next_free = h->free_conns;
		h->free_conns = c;
	}
	for (size_t i = h->max_conns; i-- > 0;) {
		h->peer_pool[i].next = h->free_peers;
		h->free_peers = &h->peer_pool[i];
	}
	h->http = evhttp_new(base);
	if (h->http == NULL)
		goto fail;
	evhttp_set_max_body_size(h->http, (ev_ssize_t)h->max_body);
	evhttp_set_max_headers_size(h->http, (ev_ssize_t)h->max_headers);
	tv.tv_sec = (time_t)h->timeout_s;
	tv.tv_usec = 0;
	evhttp_set_timeout_tv(h->http, &tv);
	/* Every method reaches our handler, which answers 405 in JSON. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	                                        EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	/* Read and discard an oversized body before answering 413, so that a
	 * client that writes its whole request before reading sees the answer
	 * rather than a reset. */
	(void)evhttp_set_flags(h->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_gencb(h->http, on_request, h);
	evhttp_set_bevcb(h->http, make_bev, h);
	r = CVM_E_TOO_LARGE;
	for (size_t i = 0; i < CVM_HTTPD_SERVERS_MAX; i++) {
		if (live[i] == NULL) {
			live[i] = h;
			cvm_daemon_log(
			    CVM_LOG_INFO, "http_limits",
			    "api=%s max_connections=%u max_connections_per_peer=%u max_buffered=%zu "
			    "max_buffered_per_peer=%zu max_body=%zu max_headers=%zu header_timeout_s=%u "
			    "body_timeout_s=%u reply_timeout_s=%u timeout_s=%u chunked=%s",
			    cvm_kv(h->name, kv), h->max_conns, h->max_conns_peer, h->max_buffered,
			    h->max_buffered_peer, h->max_body, h->max_headers, h->header_timeout_s,
			    h->body_timeout_s, h->reply_timeout_s, h->timeout_s,
			    h->allow_chunked ? "yes" : "no");
			*out = h;
			return CVM_OK;
		}
	}
fail:
	cvm_httpd_free(h);
	return r;
}

int cvm_httpd_set_tls(struct cvm_httpd *h, SSL_CTX *ctx, unsigned handshake_timeout_s)
{
	if (h == NULL || ctx == NULL || handshake_timeout_s > CVM_HTTPD_TIMEOUT_MAX)
		return CVM_E_INVAL;
	if (SSL_CTX_up_ref(ctx) != 1)
		return CVM_E_INTERNAL;
	SSL_CTX_free(h->tls_ctx); /* connections made from it keep their own reference */
	h->tls_ctx = ctx;
	h->handshake_timeout_s =
	    handshake_timeout_s != 0 ? handshake_timeout_s : CVM_HTTPD_HANDSHAKE_TIMEOUT_DEFAULT;
	return CVM_OK;
}

static void retry_accept(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_listener *l = arg;

	(void)fd;
	(void)what;
	if (!l->h->paused && !l->h->gated) /* else a free record or the gate turns accepting on */
		(void)evconnlistener_enable(evhttp_bound_socket_get_listener(l->bound));
}

static struct httpd_listener *listener_of(struct evconnlistener *lev, const void *http)
{
	for (size_t i = 0; i < CVM_HTTPD_SERVERS_MAX; i++) {
		if (live[i] == NULL || live[i]->http != http)
			continue;
		for (size_t j = 0; j < live[i]->listener_count; j++) {
			if (evhttp_bound_socket_get_listener(live[i]->listeners[j].bound) == lev)
				return &live[i]->listeners[j];
		}
	}
	return NULL;
}

/* accept() failed with something other than EAGAIN/EINTR: typically EMFILE
 * or ENFILE. The listening socket stays readable, so without a pause the
 * loop would spin; stop accepting for a moment instead. */
static void accept_error(struct evconnlistener *lev, void *arg)
{
	struct httpd_listener *l = listener_of(lev, arg);
	struct timeval tv = {0, 200000};
	int e = errno;

	if (l == NULL) {
		(void)evconnlistener_disable(lev); /* cannot happen; never spin */
		return;
	}

	cvm_daemon_log_limited(CVM_LOG_WARN, "accept_error", "api=%s errno=%d error=\"%s\" pause_ms=200",
	                       l->h->name, e, strerror(e));
	(void)evconnlistener_disable(lev);
	(void)evtimer_add(l->retry, &tv);
}

static int unix_socket_open(const struct cvm_addr *addr, unsigned mode, struct httpd_listener *l)
{
	struct sockaddr_un sa;
	struct stat st;
	char dir[CVM_ADDR_PATH_MAX];
	char *slash;
	mode_t old;
	int fd = -1, e, r = CVM_E_SYSTEM;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, addr->path, strlen(addr->path) + 1);
	memcpy(dir, addr->path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return CVM_E_SYSTEM;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return CVM_E_SYSTEM;
	if (lstat(addr->path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			goto out;
		}
		/* A socket someone still answers on belongs to a running daemon. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			goto out;
		e = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		(void)close(probe);
		if (e == 0) {
			errno = EADDRINUSE;
			goto out;
		}
		if (unlink(addr->path) != 0)
			goto out;
	}
	/* Bind with no access for anyone, then open up to `mode`: the socket
	 * is never reachable with looser permissions than asked for. */
	old = umask(0777);
	e = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	(void)umask(old);
	if (e != 0)
		goto out;
	if (chmod(addr->path, (mode_t)mode) != 0 || lstat(addr->path, &st) != 0) {
		e = errno;
		(void)unlink(addr->path);
		errno = e;
		goto out;
	}
	/* The kernel's largest backlog, as for TCP (see cvm_httpd_listen). */
	if (listen(fd, SOMAXCONN) != 0) {
		e = errno;
		(void)unlink(addr->path);
		errno = e;
		goto out;
	}
	memcpy(l->unix_path, addr->path, sizeof(l->unix_path));
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	r = fd;
	fd = -1;
out:
	if (fd >= 0) {
		e = errno;
		(void)close(fd);
		errno = e;
	}
	return r;
}

int cvm_httpd_listen(struct cvm_httpd *h, const struct cvm_addr *addr, unsigned mode, uint16_t *bound_port)
{
	struct httpd_listener *l;
	struct evconnlistener *lev;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	if (bound_port != NULL)
		*bound_port = 0;
	if (h == NULL || addr == NULL || mode > 0777)
		return CVM_E_INVAL;
	if (h->listener_count == CVM_HTTPD_LISTENERS_MAX)
		return CVM_E_TOO_LARGE;
	l = &h->listeners[h->listener_count];
	memset(l, 0, sizeof(*l));
	l->h = h;
	l->retry = evtimer_new(h->base, retry_accept, l);
	if (l->retry == NULL)
		return CVM_E_NOMEM;
	if (addr->kind == CVM_ADDR_UNIX) {
		fd = unix_socket_open(addr, mode, l);
		if (fd < 0)
			goto fail;
		l->bound = evhttp_accept_socket_with_handle(h->http, fd);
		if (l->bound == NULL) {
			(void)unlink(l->unix_path);
			(void)close(fd);
			errno = ENOMEM;
			goto fail;
		}
	} else if (addr->kind == CVM_ADDR_TCP) {
		l->bound = evhttp_bind_socket_with_handle(h->http, addr->host, addr->port);
		if (l->bound == NULL) {
			if (errno == 0)
				errno = EADDRNOTAVAIL;
			goto fail;
		}
		fd = evhttp_bound_socket_get_fd(l->bound);
		/* libevent listens with a backlog of 128. Under a connection
		 * flood a full queue drops other clients' SYNs (retried after
		 * 1 s, 3 s, ...) before the caps can tell peers apart: let the
		 * kernel queue as many as it allows; each is accepted and, if
		 * over a cap, refused at once. */
		(void)listen(fd, SOMAXCONN);
		memset(&ss, 0, sizeof(ss));
		if (bound_port != NULL && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET)
				*bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				*bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	} else {
		event_free(l->retry);
		return CVM_E_INVAL;
	}
	lev = evhttp_bound_socket_get_listener(l->bound);
	evconnlistener_set_error_cb(lev, accept_error);
	h->listener_count++;
	return CVM_OK;
fail:
	event_free(l->retry);
	l->retry = NULL;
	return CVM_E_SYSTEM;
}

int cvm_httpd_socket_open(const struct cvm_addr *addr, unsigned mode, uint16_t *bound_port)
{
	struct httpd_listener scratch;
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[8];
	int fd = -1, e, one = 1, r = CVM_E_SYSTEM;

	if (bound_port != NULL)
		*bound_port = 0;
	if (addr == NULL || mode > 0777)
		return CVM_E_INVAL;
	if (addr->kind == CVM_ADDR_UNIX) {
		memset(&scratch, 0, sizeof(scratch));
		return unix_socket_open(addr, mode, &scratch);
	}
	if (addr->kind != CVM_ADDR_TCP)
		return CVM_E_INVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	(void)snprintf(port, sizeof(port), "%u", addr->port);
	if (getaddrinfo(addr->host[0] != '\0' ? addr->host : NULL, port, &hints, &ai) != 0 || ai == NULL) {
		errno = EADDRNOTAVAIL;
		return CVM_E_SYSTEM;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto out;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0)
		goto out;
	memset(&ss, 0, sizeof(ss));
	if (bound_port != NULL && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			*bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			*bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	r = fd;
	fd = -1;
out:
	e = errno;
	if (fd >= 0)
		(void)close(fd);
	freeaddrinfo(ai);
	errno = e;
	return r;
}

int cvm_httpd_listen_fd(struct cvm_httpd *h, int fd)
{
	struct httpd_listener *l;

	if (h == NULL || fd < 0) {
		if (fd >= 0)
			(void)close(fd);
		return CVM_E_INVAL;
	}
	if (h->listener_count == CVM_HTTPD_LISTENERS_MAX) {
		(void)close(fd);
		return CVM_E_TOO_LARGE;
	}
	l = &h->listeners[h->listener_count];
	memset(l, 0, sizeof(*l));
	l->h = h;
	l->retry = evtimer_new(h->base, retry_accept, l);
	if (l->retry == NULL) {
		(void)close(fd);
		return CVM_E_NOMEM;
	}
	(void)evutil_make_socket_nonblocking(fd);
	l->bound = evhttp_accept_socket_with_handle(h->http, fd);
	if (l->bound == NULL) {
		(void)close(fd);
		event_free(l->retry);
		l->retry = NULL;
		return CVM_E_NOMEM;
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(l->bound), accept_error);
	h->listener_count++;
	return CVM_OK;
}

void cvm_httpd_free(struct cvm_httpd *h)
{
	struct stat st;

	if (h == NULL)
		return;
	for (size_t i = 0; i < CVM_HTTPD_SERVERS_MAX; i++) {
		if (live[i] == h)
			live[i] = NULL;
	}
	/* Connections and listeners go with the evhttp object; their close
	 * callbacks return the records (accepting stays off: the listeners go
	 * first). */
	h->closing = true;
	if (h->http != NULL)
		evhttp_free(h->http);
	for (size_t i = 0; h->conns != NULL && i < h->pool_count; i++) {
		struct httpd_conn *c = &h->conns[i];

		/* Accepted in this loop iteration, not started: evhttp freed the
		 * connection without a close callback; only our reference is
		 * left. */
		if (c->phase == PHASE_NEW) {
			struct bufferevent *bev = c->bev;

			conn_release(c);
			(void)bufferevent_decref(bev);
		}
		if (c->timer != NULL)
			event_free(c->timer);
	}
	if (h->probe != NULL)
		event_free(h->probe);
	free(h->conns);
	free(h->peer_pool);
	SSL_CTX_free(h->tls_ctx);
	for (size_t i = 0; i < h->listener_count; i++) {
		struct httpd_listener *l = &h->listeners[i];

		if (l->retry != NULL)
			event_free(l->retry);
		/* Remove only the socket we made, not one a successor bound since. */
		if (l->unix_path[0] != '\0' && lstat(l->unix_path, &st) == 0 && st.st_dev == l->dev &&
		    st.st_ino == l->ino)
			(void)unlink(l->unix_path);
	}
	free(h);
}

int cvm_httpd_set_accept_gate(struct cvm_httpd *h, cvm_httpd_gate gate, void *ctx)
{
	if (h == NULL || gate == NULL || h->gate != NULL)
		return CVM_E_INVAL;
	h->probe = evtimer_new(h->base, gate_probe, h);
	if (h->probe == NULL)
		return CVM_E_NOMEM;
	h->gate = gate;
	h->gate_ctx = ctx;
	gate_eval(h);
	return CVM_OK;
}
