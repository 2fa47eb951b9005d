#include <errno.h>
#include <fcntl.h>
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
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include <cvmkit/secret.h>

#include "httpd.h"

struct httpd_listener {
	struct cvm_httpd *h;
	struct evhttp_bound_socket *bound;
	struct event *retry; /* re-enables accepting after EMFILE */
	char unix_path[CVM_ADDR_PATH_MAX];
	dev_t dev;
	ino_t ino;
};

struct cvm_httpd {
	struct event_base *base;
	struct evhttp *http;
	cvm_http_handler handler;
	void *ctx;
	const char *name;
	size_t max_body, max_headers;
	unsigned timeout_s;
	/* Set while our own reply is written into a connection's output buffer,
	 * so that out_cb can tell it from a page libevent writes by itself. */
	bool own_reply;
	bool rewriting;
	size_t listener_count;
	struct httpd_listener listeners[CVM_HTTPD_LISTENERS_MAX];
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
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

void cvm_http_resp_cleanup(struct cvm_http_resp *resp)
{
	cvm_freezero(resp->body, resp->body_len);
	resp->body = NULL;
	resp->body_len = 0;
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

static void send_resp(struct cvm_httpd *h, struct evhttp_request *er, struct cvm_http_resp *resp)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(er);
	struct evbuffer *out = evhttp_request_get_output_buffer(er);
	int status = resp->body != NULL ? resp->status : 500;
	size_t len = resp->body != NULL ? resp->body_len : sizeof(oom_body) - 1;
	char cl[24];
	int e;

	(void)snprintf(cl, sizeof(cl), "%zu", len);
	(void)evhttp_add_header(hdr, "Content-Type", "application/json");
	(void)evhttp_add_header(hdr, "Content-Length", cl);
	if (resp->allow != NULL)
		(void)evhttp_add_header(hdr, "Allow", resp->allow);
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

static void on_request(struct evhttp_request *er, void *arg)
{
	struct cvm_httpd *h = arg;
	struct cvm_http_req req;
	struct cvm_http_resp resp;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(er);
	struct evbuffer *in = evhttp_request_get_input_buffer(er);
	const char *raw_path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	char *path = NULL;
	size_t path_len = 0, in_len = evbuffer_get_length(in), sent = 0;
	int64_t t0 = now_us();
	char k1[CVM_KV_MAX], k2[CVM_KV_MAX], k3[CVM_KV_MAX];

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.er = er;
	req.method = method_of(evhttp_request_get_command(er), &req.method_name);
	req.query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	req.content_type = evhttp_find_header(evhttp_request_get_input_headers(er), "Content-Type");
	if (raw_path == NULL || raw_path[0] == '\0')
		raw_path = "/";
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
	if (resp.body == NULL && resp.status == 0)
		cvm_http_resp_error(&resp, 500, "the handler gave no reply");
	if (resp.body_len > CVM_HTTPD_REPLY_MAX)
		cvm_http_resp_error(&resp, 500, "the reply is too large");
send:
	sent = resp.body_len;
	send_resp(h, er, &resp);
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

static void rewrite_error_page(struct cvm_httpd *h, struct evbuffer *buf)
{
	size_t total = evbuffer_get_length(buf), skip = 0, body_len, hlen;
	const char *p, *end;
	char msg[256], head[256], kv[CVM_KV_MAX], prefix[4096];
	json_t *o = NULL;
	char *body = NULL;
	int status, n;

	/* libevent's pages are a few hundred bytes; anything big is not one. */
	if (total > 4096)
		return;
	p = (const char *)evbuffer_pullup(buf, -1);
	if (p == NULL)
		return;
	/* Leave any "100 Continue" interim responses in front alone. */
	while (total - skip >= 25 && memcmp(p + skip, "HTTP/1.", 7) == 0 &&
	       memcmp(p + skip + 8, " 100 ", 5) == 0) {
		end = find_crlf2(p + skip, total - skip);
		if (end == NULL)
			return;
		skip = (size_t)(end + 4 - p);
	}
	if (total - skip < 13 || memcmp(p + skip, "HTTP/1.", 7) != 0 || p[skip + 8] != ' ')
		return;
	end = find_crlf2(p + skip, total - skip);
	if (end == NULL)
		return;
	hlen = (size_t)(end + 4 - (p + skip));
	if (!header_size(p + skip, hlen - 2, "Content-Length", &body_len) || total - skip != hlen + body_len)
		return; /* not complete yet: wait for the next addition */
	status = (p[skip + 9] - '0') * 100 + (p[skip + 10] - '0') * 10 + (p[skip + 11] - '0');
	if (status < 400 || status > 599)
		return;
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
}

static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct cvm_httpd *h = arg;

	if (info->n_added == 0 || h->own_reply || h->rewriting)
		return;
	rewrite_error_page(h, buf);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (bev != NULL && evbuffer_add_cb(bufferevent_get_output(bev), out_cb, arg) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	return bev;
}

int cvm_httpd_new(struct event_base *base, const struct cvm_httpd_opts *opts, cvm_http_handler handler,
                  void *ctx, struct cvm_httpd **out)
{
	struct cvm_httpd *h;
	struct timeval tv;

	*out = NULL;
	if (base == NULL || opts == NULL || handler == NULL)
		return CVM_E_INVAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return CVM_E_NOMEM;
	h->base = base;
	h->handler = handler;
	h->ctx = ctx;
	h->name = opts->name != NULL ? opts->name : "http";
	h->max_body = opts->max_body != 0 ? opts->max_body : CVM_HTTPD_BODY_MAX_DEFAULT;
	h->max_headers = opts->max_headers != 0 ? opts->max_headers : CVM_HTTPD_HEADERS_MAX_DEFAULT;
	h->timeout_s = opts->timeout_s != 0 ? opts->timeout_s : CVM_HTTPD_TIMEOUT_DEFAULT;
	if (h->max_body > (size_t)INT32_MAX || h->max_headers > (size_t)INT32_MAX) {
		free(h);
		return CVM_E_INVAL;
	}
	h->http = evhttp_new(base);
	if (h->http == NULL) {
		free(h);
		return CVM_E_NOMEM;
	}
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
	for (size_t i = 0; i < CVM_HTTPD_SERVERS_MAX; i++) {
		if (live[i] == NULL) {
			live[i] = h;
			*out = h;
			return CVM_OK;
		}
	}
	evhttp_free(h->http);
	free(h);
	return CVM_E_TOO_LARGE;
}

static void retry_accept(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_listener *l = arg;

	(void)fd;
	(void)what;
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
	if (listen(fd, 128) != 0) {
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

void cvm_httpd_free(struct cvm_httpd *h)
{
	struct stat st;

	if (h == NULL)
		return;
	for (size_t i = 0; i < CVM_HTTPD_SERVERS_MAX; i++) {
		if (live[i] == h)
			live[i] = NULL;
	}
	/* Connections and listeners go with the evhttp object. */
	if (h->http != NULL)
		evhttp_free(h->http);
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
