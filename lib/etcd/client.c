/* The etcd v3 client: requests to the gRPC-JSON gateway over one kept-alive
 * libcurl handle, failover across the endpoints, auth tokens, and the
 * streaming watch. docs/etcd.md says which requests are retried when. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/etcd.h>
#include <cvmkit/secret.h>

#include "core/core_lib.h"
#include "etcd_int.h"

#define DEFAULT_TIMEOUT_MS 5000L
#define CONNECT_TIMEOUT_MS 2000L
#define URL_MAX 1024
#define CRED_MAX 1024
/* Pause between two rounds over every endpoint, so that an election (etcd's
 * default election timeout is 1 s) can finish before the next round. */
#define ROUND_PAUSE_MS 100L

/* gRPC status codes that etcd's gateway puts in "code". */
#define GRPC_NOT_FOUND 5
#define GRPC_UNAVAILABLE 14
#define GRPC_UNAUTHENTICATED 16

struct cvm_etcd {
	char **endpoints;
	size_t n_endpoints, cur;
	long timeout_ms;
	char *ca_file, *cert_file, *key_file;
	char *user;
	struct cvm_secret *password; /* NUL-terminated */
	char *token;                 /* wiped on free and on replacement */
	size_t max_response;
	bool curl_ref; /* holds a curl_global_init reference */
	CURL *curl;
	struct cvm_wr body;
	bool too_large;
	char err[CVM_ETCD_ERR_LEN];
};

/* How a request may be retried on another endpoint once it was sent. */
enum retry {
	RETRY_ANY,  /* reads and lease keepalive/revoke/timetolive: repeating them is harmless */
	RETRY_SENT, /* put, delete, txn, grant: never resent once etcd may have applied them */
};

static void set_errf(struct cvm_etcd *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_errf(struct cvm_etcd *cl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(cl->err, sizeof(cl->err), fmt, ap);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool endpoint_ok(const char *url)
{
	size_t n = strnlen(url, URL_MAX + 1), scheme;

	if (n > URL_MAX)
		return false;
	if (strncmp(url, "http://", 7) == 0)
		scheme = 7;
	else if (strncmp(url, "https://", 8) == 0)
		scheme = 8;
	else
		return false;
	if (url[scheme] == '\0')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return false;
	return true;
}

static bool dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return true;
	if (strnlen(s, CRED_MAX + 1) > CRED_MAX)
		return false;
	*out = strdup(s);
	return *out != NULL;
}

static void drop_token(struct cvm_etcd *cl)
{
	if (cl->token != NULL)
		cvm_freezero(cl->token, strlen(cl->token));
	cl->token = NULL;
}

void cvm_etcd_free(struct cvm_etcd *cl)
{
	if (cl == NULL)
		return;
	for (size_t i = 0; i < cl->n_endpoints; i++)
		free(cl->endpoints[i]);
	free(cl->endpoints);
	free(cl->ca_file);
	free(cl->cert_file);
	free(cl->key_file);
	free(cl->user);
	cvm_secret_free(cl->password);
	drop_token(cl);
	if (cl->curl != NULL)
		curl_easy_cleanup(cl->curl);
	if (cl->curl_ref)
		curl_global_cleanup();
	cvm_wr_cleanup(&cl->body);
	free(cl);
}

int cvm_etcd_new(const struct cvm_etcd_opts *opts, struct cvm_etcd **out)
{
	struct cvm_etcd *cl = NULL;
	size_t plen;
	int r = CVM_E_INVAL;

	*out = NULL;
	if (opts == NULL || opts->endpoints == NULL || opts->n_endpoints == 0 ||
	    opts->n_endpoints > CVM_ETCD_ENDPOINTS_MAX || opts->timeout_ms < 0 ||
	    (opts->user == NULL) != (opts->password == NULL))
		return CVM_E_INVAL;
	for (size_t i = 0; i < opts->n_endpoints; i++)
		if (opts->endpoints[i] == NULL || !endpoint_ok(opts->endpoints[i]))
			return CVM_E_INVAL;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return CVM_E_NOMEM;
	cl->endpoints = calloc(opts->n_endpoints, sizeof(*cl->endpoints));
	if (cl->endpoints == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < opts->n_endpoints; i++) {
		/* Strip one trailing '/': paths start with one. */
		size_t n = strlen(opts->endpoints[i]);

		if (n > 0 && opts->endpoints[i][n - 1] == '/')
			n--;
		cl->endpoints[i] = strndup(opts->endpoints[i], n);
		if (cl->endpoints[i] == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		cl->n_endpoints = i + 1;
	}
	cl->timeout_ms = opts->timeout_ms != 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	cl->max_response = opts->max_response != 0 ? opts->max_response : CVM_ETCD_RESPONSE_MAX_DEFAULT;
	if (!dup_opt(opts->ca_file, &cl->ca_file) || !dup_opt(opts->cert_file, &cl->cert_file) ||
	    !dup_opt(opts->key_file, &cl->key_file) || !dup_opt(opts->user, &cl->user))
		goto out; /* too long, or out of memory: both are the caller's to see */
	if (opts->password != NULL) {
		plen = strnlen(opts->password, CRED_MAX + 1);
		if (plen > CRED_MAX)
			goto out;
		cl->password = cvm_secret_new(plen + 1);
		if (cl->password == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		memcpy(cl->password->p, opts->password, plen);
		cl->password->p[plen] = '\0';
	}
	/* Reference-counted and thread-safe in libcurl >= 7.84 (Debian 12 has
	 * 7.88): clients may be made and freed in many threads at once. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		r = CVM_E_NOMEM;
		goto out;
	}
	cl->curl_ref = true;
	cl->curl = curl_easy_init();
	if (cl->curl == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	*out = cl;
	cl = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_etcd_free(cl);
	return r;
}

const char *cvm_etcd_errmsg(const struct cvm_etcd *cl)
{
	return cl->err;
}

const char *cvm_etcd_endpoint(const struct cvm_etcd *cl)
{
	return cl->endpoints[cl->cur];
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct cvm_etcd *cl = ctx;
	size_t len = size * n;

	if (len > cl->body.max - cl->body.len) {
		cl->too_large = true;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	cvm_wr_bytes(&cl->body, p, len);
	return cl->body.err ? 0 : len;
}

/* setup_tls applies the TLS options shared by requests and watches. */
static void setup_common(struct cvm_etcd *cl, CURL *c)
{
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                       cl->timeout_ms < CONNECT_TIMEOUT_MS ? cl->timeout_ms : CONNECT_TIMEOUT_MS);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	(void)curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	if (cl->ca_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_CAINFO, cl->ca_file);
	if (cl->cert_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_SSLCERT, cl->cert_file);
	if (cl->key_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_SSLKEY, cl->key_file);
}

static struct curl_slist *make_headers(const struct cvm_etcd *cl)
{
	struct curl_slist *h = NULL, *t;
	struct cvm_wr w;
	char *auth = NULL;

	t = curl_slist_append(h, "Content-Type: application/json");
	if (t == NULL)
		return NULL;
	h = t;
	/* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
	t = curl_slist_append(h, "Expect:");
	if (t == NULL)
		goto fail;
	h = t;
	if (cl->token != NULL) {
		cvm_wr_init(&w, 8192);
		cvm_wr_fmt(&w, "Authorization: %s", cl->token);
		if (cvm_wr_finish_str(&w, &auth) != CVM_OK)
			goto fail;
		t = curl_slist_append(h, auth);
		cvm_freezero(auth, strlen(auth));
		if (t == NULL)
			goto fail;
		h = t;
	}
	return h;
fail:
	curl_slist_free_all(h);
	return NULL;
}

static bool has(const char *msg, const char *what)
{
	return strstr(msg, what) != NULL;
}

enum outcome {
	OUT_DONE,   /* 200: the body is the reply */
	OUT_ERROR,  /* a final error: cl->err says it */
	OUT_NEXT,   /* not applied: try the next endpoint */
	OUT_MAYBE,  /* sent and maybe applied: retry only a RETRY_ANY request */
	OUT_REAUTH, /* the token expired: authenticate and send again */
};

/* attempt sends `body` to `path` of the current endpoint once. */
static enum outcome attempt(struct cvm_etcd *cl, const char *path, const char *body, size_t body_len, int *r)
{
	char url[URL_MAX + 64], msg[CVM_ETCD_ERR_LEN - 64];
	struct curl_slist *hdrs;
	CURLcode cc;
	long status = 0, sent = 0;
	bool is_stream = strcmp(path, "/v3/lease/keepalive") == 0;
	int code = 0;

	*r = CVM_OK;
	(void)snprintf(url, sizeof(url), "%s%s", cl->endpoints[cl->cur], path);
	hdrs = make_headers(cl);
	if (hdrs == NULL) {
		*r = CVM_E_NOMEM;
		return OUT_ERROR;
	}
	cvm_wr_cleanup(&cl->body);
	cvm_wr_init(&cl->body, cl->max_response);
	cl->too_large = false;
	setup_common(cl, cl->curl);
	(void)curl_easy_setopt(cl->curl, CURLOPT_URL, url);
	(void)curl_easy_setopt(cl->curl, CURLOPT_HTTPHEADER, hdrs);
	(void)curl_easy_setopt(cl->curl, CURLOPT_POST, 1L);
	(void)curl_easy_setopt(cl->curl, CURLOPT_POSTFIELDS, body);
	(void)curl_easy_setopt(cl->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	(void)curl_easy_setopt(cl->curl, CURLOPT_TIMEOUT_MS, cl->timeout_ms);
	(void)curl_easy_setopt(cl->curl, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(cl->curl, CURLOPT_WRITEDATA, cl);
	cc = curl_easy_perform(cl->curl);
	(void)curl_easy_setopt(cl->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	(void)curl_easy_getinfo(cl->curl, CURLINFO_RESPONSE_CODE, &status);
	(void)curl_easy_getinfo(cl->curl, CURLINFO_REQUEST_SIZE, &sent);
	if (cl->too_large) {
		set_errf(cl, "the etcd reply from %s is larger than %zu bytes (max_response)",
		         cl->endpoints[cl->cur], cl->max_response);
		*r = CVM_E_TOO_LARGE;
		return OUT_ERROR;
	}
	if (cc != CURLE_OK) {
		set_errf(cl, "etcd at %s: %s", cl->endpoints[cl->cur], curl_easy_strerror(cc));
		*r = CVM_E_UPSTREAM;
		if (cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CERTPROBLEM ||
		    cc == CURLE_OUT_OF_MEMORY)
			return OUT_ERROR;
		/* Nothing of the request left: it cannot have been applied. */
		return sent == 0 ? OUT_NEXT : OUT_MAYBE;
	}
	/* A streaming call (keepalive) answers 200 and puts its error in the
	 * stream: {"error": {...}}. Only there is a 200 reply checked for one. */
	if (status == 200 &&
	    !(is_stream && etcd_reply_error(cl->body.buf, cl->body.len, &code, msg, sizeof(msg))))
		return OUT_DONE;
	*r = CVM_E_UPSTREAM;
	if (status != 200 && !etcd_reply_error(cl->body.buf, cl->body.len, &code, msg, sizeof(msg))) {
		set_errf(cl, "etcd at %s answered HTTP %ld without an etcd error", cl->endpoints[cl->cur],
		         status);
		return status >= 500 ? OUT_MAYBE : OUT_ERROR;
	}
	set_errf(cl, "etcd at %s: %s (code %d)", cl->endpoints[cl->cur], msg, code);
	if (code == GRPC_UNAUTHENTICATED && has(msg, "invalid auth token") && cl->user != NULL)
		return OUT_REAUTH;
	/* etcd refuses before proposing when its member knows no leader. */
	if (has(msg, "no leader") || has(msg, "not capable") || has(msg, "too many requests"))
		return OUT_NEXT;
	if (code == GRPC_UNAVAILABLE || status >= 500 || has(msg, "leader changed") ||
	    has(msg, "request timed out"))
		return OUT_MAYBE;
	if (code == GRPC_NOT_FOUND)
		*r = CVM_E_NOT_FOUND;
	return OUT_ERROR;
}

static int request_body(struct cvm_etcd *cl, const char *path, const char *body, size_t body_len,
                        enum retry retry);

/* authenticate trades the user's password for a token. The request body
 * holds the password: it is built in a cvm_wr, which wipes as it grows, and
 * wiped when sent (jansson would leave copies behind). */
static int authenticate(struct cvm_etcd *cl)
{
	struct cvm_wr w;
	char *body = NULL, *token = NULL;
	size_t body_len;
	int r;

	drop_token(cl);
	cvm_wr_init(&w, (size_t)16 * CRED_MAX);
	cvm_wr_str(&w, "{\"name\":");
	cvm_jcs_string(&w, cl->user, strlen(cl->user));
	cvm_wr_str(&w, ",\"password\":");
	cvm_jcs_string(&w, (const char *)cl->password->p, strlen((const char *)cl->password->p));
	cvm_wr_str(&w, "}");
	r = cvm_wr_finish_str(&w, &body);
	cvm_wr_cleanup(&w);
	if (r != CVM_OK)
		return r;
	body_len = strlen(body);
	r = request_body(cl, "/v3/auth/authenticate", body, body_len, RETRY_ANY);
	cvm_freezero(body, body_len);
	if (r != CVM_OK)
		return r;
	r = etcd_parse_auth(cl->body.buf, cl->body.len, &token, cl->err, sizeof(cl->err));
	if (r != CVM_OK)
		return r;
	cl->token = token;
	return CVM_OK;
}

/* request_body sends `body` to `path`, failing over across the endpoints
 * (docs/etcd.md), and leaves a 200 reply in cl->body. */
static int request_body(struct cvm_etcd *cl, const char *path, const char *body, size_t body_len,
                        enum retry retry)
{
	size_t tries = 0;
	int64_t deadline = now_ms() + cl->timeout_ms;
	bool reauthed = false, is_auth = strcmp(path, "/v3/auth/authenticate") == 0;
	enum outcome o = OUT_ERROR;
	int r = CVM_E_UPSTREAM;

	cl->err[0] = '\0';
	if (cl->user != NULL && cl->token == NULL && !is_auth) {
		r = authenticate(cl);
		if (r != CVM_OK)
			return r;
	}
	for (;;) {
		o = attempt(cl, path, body, body_len, &r);
		if (o == OUT_DONE || o == OUT_ERROR)
			break;
		if (o == OUT_REAUTH) {
			/* etcd refused the token before doing anything: send again. */
			if (reauthed || is_auth)
				break;
			reauthed = true;
			r = authenticate(cl);
			if (r != CVM_OK)
				break;
			continue;
		}
		if (o == OUT_MAYBE && retry == RETRY_SENT) {
			/* Sending it again could apply it twice. */
			char why[CVM_ETCD_ERR_LEN];

			(void)snprintf(why, sizeof(why), "%s", cl->err);
			set_errf(cl, "%.180s; the request may have been applied: read the state back", why);
			r = CVM_E_UPSTREAM;
			cl->cur = (cl->cur + 1) % cl->n_endpoints;
			break;
		}
		cl->cur = (cl->cur + 1) % cl->n_endpoints;
		tries++;
		if (tries % cl->n_endpoints == 0) {
			if (now_ms() >= deadline) {
				char why[CVM_ETCD_ERR_LEN];

				(void)snprintf(why, sizeof(why), "%s", cl->err);
				set_errf(cl,
				         "no etcd endpoint of %zu served the request in %ld ms; last: %.170s",
				         cl->n_endpoints, cl->timeout_ms, why);
				break;
			}
			sleep_ms(ROUND_PAUSE_MS);
		}
	}
	if (r == CVM_OK && o == OUT_DONE)
		cl->err[0] = '\0';
	return r;
}

static int request(struct cvm_etcd *cl, const char *path, json_t *req, enum retry retry)
{
	char *body = json_dumps(req, JSON_COMPACT);
	int r;

	if (body == NULL)
		return CVM_E_NOMEM;
	r = request_body(cl, path, body, strlen(body), retry);
	free(body);
	return r;
}

static int set_b64(json_t *o, const char *name, const void *p, size_t n)
{
	char *s = cvm_base64_encode_new(p, n);
	int r;

	if (s == NULL)
		return CVM_E_NOMEM;
	r = json_object_set_new(o, name, json_string(s)) == 0 ? CVM_OK : CVM_E_NOMEM;
	free(s);
	return r;
}

static int set_i64(json_t *o, const char *name, int64_t v)
{
	char s[24];

	(void)snprintf(s, sizeof(s), "%" PRId64, v);
	return json_object_set_new(o, name, json_string(s)) == 0 ? CVM_OK : CVM_E_NOMEM;
}

static int set_true(json_t *o, const char *name)
{
	return json_object_set_new(o, name, json_true()) == 0 ? CVM_OK : CVM_E_NOMEM;
}

/* key_range sets "key" and, for a prefix, "range_end". */
static int key_range(json_t *o, const char *key, bool is_prefix)
{
	size_t n = strnlen(key, CVM_ETCD_KEY_MAX + 1);
	uint8_t *end;
	size_t end_len;
	int r;

	if (n > CVM_ETCD_KEY_MAX || (n == 0 && !is_prefix))
		return CVM_E_INVAL;
	/* etcd wants "key" set: "\0" with range_end "\0" is every key. */
	r = n == 0 ? set_b64(o, "key", "", 1) : set_b64(o, "key", key, n);
	if (r != CVM_OK || !is_prefix)
		return r;
	end = malloc(n + 1);
	if (end == NULL)
		return CVM_E_NOMEM;
	end_len = etcd_prefix_end((const uint8_t *)key, n, end);
	if (end_len == 0)
		r = set_b64(o, "range_end", "", 1);
	else
		r = set_b64(o, "range_end", end, end_len);
	free(end);
	return r;
}

static int check_value(const void *value, size_t value_len)
{
	return (value == NULL && value_len != 0) || value_len > CVM_ETCD_VALUE_MAX ? CVM_E_INVAL : CVM_OK;
}

static int put_body(json_t *o, const char *key, const void *value, size_t value_len, int64_t lease)
{
	int r = check_value(value, value_len);

	if (r == CVM_OK)
		r = key_range(o, key, false);
	if (r == CVM_OK)
		r = set_b64(o, "value", value_len != 0 ? value : "", value_len);
	if (r == CVM_OK && lease != 0)
		r = set_i64(o, "lease", lease);
	return r;
}

static int invalid(struct cvm_etcd *cl, const char *what)
{
	set_errf(cl, "%s", what);
	return CVM_E_INVAL;
}

int cvm_etcd_get(struct cvm_etcd *cl, const char *key, struct cvm_etcd_kv *out, bool *found,
                 int64_t *revision)
{
	struct cvm_etcd_kvs kvs;
	json_t *req;
	int r;

	memset(out, 0, sizeof(*out));
	*found = false;
	if (revision != NULL)
		*revision = 0;
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = key_range(req, key, false);
	if (r == CVM_E_INVAL)
		r = invalid(cl, "the key is empty or longer than CVM_ETCD_KEY_MAX");
	if (r == CVM_OK)
		r = request(cl, "/v3/kv/range", req, RETRY_ANY);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	r = etcd_parse_range(cl->body.buf, cl->body.len, &kvs, cl->err, sizeof(cl->err));
	if (r == CVM_OK && kvs.kv_count > 1)
		r = cvm_err_set(cl->err, sizeof(cl->err), CVM_E_FORMAT, "etcd answered %zu kvs for one key",
		                kvs.kv_count);
	if (r == CVM_OK && kvs.kv_count == 1 &&
	    (kvs.kvs[0].key_len != strlen(key) || memcmp(kvs.kvs[0].key, key, kvs.kvs[0].key_len) != 0))
		r = cvm_err_set(cl->err, sizeof(cl->err), CVM_E_FORMAT,
		                "etcd answered another key than asked");
	if (r == CVM_OK) {
		if (revision != NULL)
			*revision = kvs.revision;
		if (kvs.kv_count == 1) {
			*out = kvs.kvs[0];
			memset(&kvs.kvs[0], 0, sizeof(kvs.kvs[0])); /* transferred */
			*found = true;
		}
	}
	cvm_etcd_kvs_cleanup(&kvs);
	return r;
}

int cvm_etcd_range_prefix(struct cvm_etcd *cl, const char *prefix, const struct cvm_etcd_range_opts *ro,
                          struct cvm_etcd_kvs *out)
{
	json_t *req;
	int r;

	memset(out, 0, sizeof(*out));
	if (ro != NULL && (ro->limit < 0 || ro->revision < 0))
		return invalid(cl, "the range's limit and revision must not be negative");
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = key_range(req, prefix, true);
	if (r == CVM_E_INVAL)
		r = invalid(cl, "the prefix is longer than CVM_ETCD_KEY_MAX");
	if (r == CVM_OK && ro != NULL && ro->limit != 0)
		r = set_i64(req, "limit", ro->limit);
	if (r == CVM_OK && ro != NULL && ro->revision != 0)
		r = set_i64(req, "revision", ro->revision);
	if (r == CVM_OK && ro != NULL && ro->keys_only)
		r = set_true(req, "keys_only");
	if (r == CVM_OK && ro != NULL && ro->count_only)
		r = set_true(req, "count_only");
	if (r == CVM_OK)
		r = request(cl, "/v3/kv/range", req, RETRY_ANY);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	r = etcd_parse_range(cl->body.buf, cl->body.len, out, cl->err, sizeof(cl->err));
	if (r != CVM_OK)
		cvm_etcd_kvs_cleanup(out);
	return r;
}

int cvm_etcd_put(struct cvm_etcd *cl, const char *key, const void *value, size_t value_len, int64_t lease,
                 struct cvm_etcd_kv *prev, int64_t *revision)
{
	json_t *req;
	int64_t rev = 0;
	int r;

	if (prev != NULL)
		memset(prev, 0, sizeof(*prev));
	if (revision != NULL)
		*revision = 0;
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = put_body(req, key, value, value_len, lease);
	if (r == CVM_E_INVAL)
		r = invalid(cl, "the key is empty or too long, or the value too long");
	if (r == CVM_OK && prev != NULL)
		r = set_true(req, "prev_kv");
	if (r == CVM_OK)
		r = request(cl, "/v3/kv/put", req, RETRY_SENT);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	r = etcd_parse_put(cl->body.buf, cl->body.len, prev, &rev, cl->err, sizeof(cl->err));
	if (r != CVM_OK)
		cvm_etcd_kv_cleanup(prev);
	else if (revision != NULL)
		*revision = rev;
	return r;
}

int cvm_etcd_delete(struct cvm_etcd *cl, const char *key, bool is_prefix, int64_t *deleted)
{
	json_t *req;
	int64_t n = 0, rev = 0;
	int r;

	if (deleted != NULL)
		*deleted = 0;
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = key_range(req, key, is_prefix);
	if (r == CVM_E_INVAL)
		r = invalid(cl, "the key is empty or longer than CVM_ETCD_KEY_MAX");
	if (r == CVM_OK)
		r = request(cl, "/v3/kv/deleterange", req, RETRY_SENT);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	r = etcd_parse_delete(cl->body.buf, cl->body.len, &n, &rev, cl->err, sizeof(cl->err));
	if (r == CVM_OK && deleted != NULL)
		*deleted = n;
	return r;
}

static const char *const target_names[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const target_fields[] = {"version", "create_revision", "mod_revision", "value", "lease"};
static const char *const result_names[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};

static int add_cmp(json_t *arr, const struct cvm_etcd_cmp *c)
{
	json_t *o = json_object();
	int r;

	if (o == NULL || json_array_append_new(arr, o) != 0)
		return CVM_E_NOMEM;
	if ((unsigned)c->target > CVM_ETCD_TARGET_LEASE || (unsigned)c->result > CVM_ETCD_LESS ||
	    c->key == NULL)
		return CVM_E_INVAL;
	r = key_range(o, c->key, c->is_prefix);
	if (r == CVM_OK && json_object_set_new(o, "target", json_string(target_names[c->target])) != 0)
		r = CVM_E_NOMEM;
	if (r == CVM_OK && json_object_set_new(o, "result", json_string(result_names[c->result])) != 0)
		r = CVM_E_NOMEM;
	if (r != CVM_OK)
		return r;
	if (c->target == CVM_ETCD_TARGET_VALUE) {
		r = check_value(c->value, c->value_len);
		if (r == CVM_OK)
			r = set_b64(o, "value", c->value_len != 0 ? c->value : "", c->value_len);
		return r;
	}
	return set_i64(o, target_fields[c->target], c->number);
}

static int add_op(json_t *arr, const struct cvm_etcd_op *op)
{
	json_t *o = json_object(), *inner = json_object();
	const char *name;
	int r;

	if (o == NULL || inner == NULL || json_array_append_new(arr, o) != 0) {
		json_decref(inner);
		return CVM_E_NOMEM;
	}
	if (op->key == NULL) {
		json_decref(inner);
		return CVM_E_INVAL;
	}
	switch (op->type) {
	case CVM_ETCD_OP_PUT:
		name = "request_put";
		r = put_body(inner, op->key, op->value, op->value_len, op->lease);
		break;
	case CVM_ETCD_OP_DELETE:
		name = "request_delete_range";
		r = key_range(inner, op->key, op->is_prefix);
		break;
	case CVM_ETCD_OP_RANGE:
		name = "request_range";
		r = key_range(inner, op->key, op->is_prefix);
		break;
	default:
		json_decref(inner);
		return CVM_E_INVAL;
	}
	if (json_object_set_new(o, name, inner) != 0)
		return CVM_E_NOMEM;
	return r;
}

int cvm_etcd_txn(struct cvm_etcd *cl, const struct cvm_etcd_txn *txn, struct cvm_etcd_txn_result *out)
{
	json_t *req = NULL, *cmps, *succ, *fail;
	int r = CVM_OK;

	memset(out, 0, sizeof(*out));
	if (txn == NULL || (txn->n_cmps != 0 && txn->cmps == NULL) ||
	    (txn->n_success != 0 && txn->success == NULL) || (txn->n_failure != 0 && txn->failure == NULL) ||
	    txn->n_cmps > CVM_ETCD_TXN_OPS_MAX || txn->n_success > CVM_ETCD_TXN_OPS_MAX ||
	    txn->n_failure > CVM_ETCD_TXN_OPS_MAX)
		return invalid(cl,
		               "the transaction has a NULL list or more than CVM_ETCD_TXN_OPS_MAX entries");
	req = json_object();
	cmps = json_array();
	succ = json_array();
	fail = json_array();
	if (req == NULL || json_object_set_new(req, "compare", cmps) != 0 ||
	    json_object_set_new(req, "success", succ) != 0 ||
	    json_object_set_new(req, "failure", fail) != 0) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < txn->n_cmps && r == CVM_OK; i++)
		r = add_cmp(cmps, &txn->cmps[i]);
	for (size_t i = 0; i < txn->n_success && r == CVM_OK; i++)
		r = add_op(succ, &txn->success[i]);
	for (size_t i = 0; i < txn->n_failure && r == CVM_OK; i++)
		r = add_op(fail, &txn->failure[i]);
	if (r == CVM_E_INVAL) {
		r = invalid(cl,
		            "a compare or op of the transaction has no key, a bad type or a too long value");
		goto out;
	}
	if (r != CVM_OK)
		goto out;
	r = request(cl, "/v3/kv/txn", req, RETRY_SENT);
	if (r != CVM_OK)
		goto out;
	r = etcd_parse_txn(cl->body.buf, cl->body.len, out, cl->err, sizeof(cl->err));
	if (r == CVM_OK && out->result_count != (out->succeeded ? txn->n_success : txn->n_failure))
		r = cvm_err_set(cl->err, sizeof(cl->err), CVM_E_FORMAT,
		                "etcd answered %zu op results for a branch of %zu ops", out->result_count,
		                out->succeeded ? txn->n_success : txn->n_failure);
	for (size_t i = 0; r == CVM_OK && i < out->result_count; i++) {
		const struct cvm_etcd_op *ops = out->succeeded ? txn->success : txn->failure;

		if (out->results[i].type != ops[i].type)
			r = cvm_err_set(cl->err, sizeof(cl->err), CVM_E_FORMAT,
			                "etcd answered op result %zu of another type than its op", i);
	}
out:
	if (r != CVM_OK)
		cvm_etcd_txn_result_cleanup(out);
	json_decref(req);
	return r;
}

int cvm_etcd_lease_grant(struct cvm_etcd *cl, int64_t ttl, int64_t *id, int64_t *granted_ttl)
{
	json_t *req;
	int64_t got_id = 0, got_ttl = 0;
	int r;

	*id = 0;
	if (granted_ttl != NULL)
		*granted_ttl = 0;
	if (ttl <= 0)
		return invalid(cl, "a lease's TTL must be positive");
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = set_i64(req, "TTL", ttl);
	if (r == CVM_OK)
		r = request(cl, "/v3/lease/grant", req, RETRY_SENT);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	r = etcd_parse_lease_grant(cl->body.buf, cl->body.len, &got_id, &got_ttl, cl->err, sizeof(cl->err));
	if (r != CVM_OK)
		return r;
	*id = got_id;
	if (granted_ttl != NULL)
		*granted_ttl = got_ttl;
	return CVM_OK;
}

int cvm_etcd_lease_keepalive(struct cvm_etcd *cl, int64_t id, int64_t *ttl)
{
	json_t *req;
	int64_t got_id = 0, got_ttl = 0;
	int r;

	*ttl = 0;
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = set_i64(req, "ID", id);
	if (r == CVM_OK)
		r = request(cl, "/v3/lease/keepalive", req, RETRY_ANY);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	r = etcd_parse_lease_keepalive(cl->body.buf, cl->body.len, &got_id, &got_ttl, cl->err,
	                               sizeof(cl->err));
	if (r == CVM_OK && got_id != id)
		r = cvm_err_set(cl->err, sizeof(cl->err), CVM_E_FORMAT,
		                "etcd's keepalive reply is for lease %" PRId64 ", not %" PRId64, got_id, id);
	if (r == CVM_OK)
		*ttl = got_ttl;
	return r;
}

int cvm_etcd_lease_revoke(struct cvm_etcd *cl, int64_t id)
{
	json_t *req;
	int64_t rev, none;
	int r;

	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = set_i64(req, "ID", id);
	if (r == CVM_OK)
		r = request(cl, "/v3/lease/revoke", req, RETRY_ANY);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	/* The reply is a header only: check it is one. */
	return etcd_parse_delete(cl->body.buf, cl->body.len, &none, &rev, cl->err, sizeof(cl->err));
}

int cvm_etcd_lease_timetolive(struct cvm_etcd *cl, int64_t id, bool with_keys,
                              struct cvm_etcd_lease_info *out)
{
	json_t *req;
	int r;

	memset(out, 0, sizeof(*out));
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = set_i64(req, "ID", id);
	if (r == CVM_OK && with_keys)
		r = set_true(req, "keys");
	if (r == CVM_OK)
		r = request(cl, "/v3/lease/timetolive", req, RETRY_ANY);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	r = etcd_parse_lease_ttl(cl->body.buf, cl->body.len, out, cl->err, sizeof(cl->err));
	if (r != CVM_OK)
		cvm_etcd_lease_info_cleanup(out);
	return r;
}

int cvm_etcd_status(struct cvm_etcd *cl, uint64_t *member_id, uint64_t *leader_id, char *version,
                    size_t version_len)
{
	json_t *req;
	int r;

	*member_id = 0;
	*leader_id = 0;
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = request(cl, "/v3/maintenance/status", req, RETRY_ANY);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	return etcd_parse_status(cl->body.buf, cl->body.len, member_id, leader_id, version, version_len,
	                         cl->err, sizeof(cl->err));
}

int cvm_etcd_compact(struct cvm_etcd *cl, int64_t revision)
{
	json_t *req;
	int64_t rev, none;
	int r;

	if (revision <= 0)
		return invalid(cl, "the compaction revision must be positive");
	req = json_object();
	if (req == NULL)
		return CVM_E_NOMEM;
	r = set_i64(req, "revision", revision);
	if (r == CVM_OK)
		r = request(cl, "/v3/kv/compaction", req, RETRY_ANY);
	json_decref(req);
	if (r != CVM_OK)
		return r;
	return etcd_parse_delete(cl->body.buf, cl->body.len, &none, &rev, cl->err, sizeof(cl->err));
}

/* The watch. */

struct watch {
	struct cvm_etcd *cl;
	cvm_etcd_watch_fn fn;
	void *arg;
	const volatile int *stop;
	int64_t deadline; /* 0: none */
	struct cvm_wr line;
	int64_t next_rev; /* where a reconnect resumes; 0: from now */
	bool created, ended;
	bool reauth; /* etcd refused the token: authenticate and reconnect */
	int r;       /* a final error seen in the stream */
	int64_t compact_revision;
};

/* watch_line handles one line of the stream; false stops the transfer. */
static bool watch_line(struct watch *w, const uint8_t *p, size_t n)
{
	struct etcd_watch_msg m;
	char msg[160];
	int code, r;

	if (n == 0)
		return true;
	if (etcd_reply_error(p, n, &code, msg, sizeof(msg))) {
		set_errf(w->cl, "etcd at %s ended the watch: %s (code %d)", cvm_etcd_endpoint(w->cl), msg,
		         code);
		/* A member without a leader: another one may have one. */
		if (code != GRPC_UNAVAILABLE && !has(msg, "no leader"))
			w->r = CVM_E_UPSTREAM;
		return false;
	}
	r = etcd_parse_watch_line(p, n, &m, w->cl->err, sizeof(w->cl->err));
	if (r != CVM_OK) {
		w->r = r;
		etcd_watch_msg_cleanup(&m);
		return false;
	}
	if (m.canceled) {
		if (m.compact_revision > 0) {
			w->compact_revision = m.compact_revision;
			set_errf(w->cl,
			         "the watch's revision %" PRId64 " was compacted (compact revision %" PRId64
			         "): read the range again and watch from its revision",
			         w->next_rev, m.compact_revision);
			w->r = CVM_E_EXPIRED;
		} else {
			set_errf(w->cl, "etcd canceled the watch: %s",
			         m.cancel_reason[0] ? m.cancel_reason : "(no reason)");
			/* etcd 3.4 cancels a watch whose token expired this way. */
			if (has(m.cancel_reason, "invalid auth token") && w->cl->user != NULL)
				w->reauth = true;
			else
				w->r = CVM_E_UPSTREAM;
		}
		etcd_watch_msg_cleanup(&m);
		return false;
	}
	if (m.created) {
		w->created = true;
		/* Watching from "now": a reconnect resumes after this revision. */
		if (w->next_rev == 0)
			w->next_rev = m.revision + 1;
	}
	/* One call per revision (a transaction's events share one), so that a
	 * callback that stops leaves next_rev right after what it was given.
	 * Anything older than next_rev is dropped: no event is seen twice. */
	for (size_t i = 0; i < m.event_count && !w->ended;) {
		size_t j = i + 1;
		int64_t rev = m.events[i].kv.mod_revision;

		while (j < m.event_count && m.events[j].kv.mod_revision == rev)
			j++;
		if (rev >= w->next_rev) {
			w->next_rev = rev + 1;
			if (w->fn(w->arg, m.events + i, j - i) != 0)
				w->ended = true;
		}
		i = j;
	}
	etcd_watch_msg_cleanup(&m);
	return !w->ended;
}

static size_t on_watch(char *p, size_t size, size_t n, void *ctx)
{
	struct watch *w = ctx;
	size_t len = size * n, i = 0;

	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);
		size_t take = nl != NULL ? (size_t)(nl - (p + i)) : len - i;

		if (take > w->line.max - w->line.len) {
			set_errf(w->cl,
			         "a line of etcd's watch stream is longer than %zu bytes (max_response)",
			         w->line.max);
			w->r = CVM_E_TOO_LARGE;
			return 0;
		}
		cvm_wr_bytes(&w->line, p + i, take);
		if (w->line.err) {
			w->r = CVM_E_NOMEM;
			return 0;
		}
		i += take;
		if (nl == NULL)
			break;
		i++; /* the newline */
		if (!watch_line(w, w->line.buf, w->line.len))
			return 0;
		w->line.len = 0;
	}
	return len;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct watch *w = ctx;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	if (w->stop != NULL && *w->stop != 0)
		return 1;
	if (w->deadline != 0 && now_ms() >= w->deadline)
		return 1;
	return 0;
}

static bool watch_over(const struct watch *w)
{
	return w->ended || (w->stop != NULL && *w->stop != 0) ||
	       (w->deadline != 0 && now_ms() >= w->deadline);
}

/* watch_once streams one watch from the current endpoint until it breaks. */
static int watch_once(struct watch *w, const char *key, const struct cvm_etcd_watch_opts *wo)
{
	struct cvm_etcd *cl = w->cl;
	char url[URL_MAX + 64], *body = NULL;
	json_t *req = json_object(), *cr = json_object();
	struct curl_slist *hdrs = NULL;
	CURL *c = NULL;
	CURLcode cc;
	int r;

	if (req == NULL || cr == NULL || json_object_set_new(req, "create_request", cr) != 0) {
		json_decref(cr);
		json_decref(req);
		return CVM_E_NOMEM;
	}
	r = key_range(cr, key, wo->is_prefix);
	if (r == CVM_OK && w->next_rev != 0)
		r = set_i64(cr, "start_revision", w->next_rev);
	if (r == CVM_OK && wo->prev_kv)
		r = set_true(cr, "prev_kv");
	if (r == CVM_OK) {
		body = json_dumps(req, JSON_COMPACT);
		if (body == NULL)
			r = CVM_E_NOMEM;
	}
	json_decref(req);
	if (r != CVM_OK)
		return r;
	hdrs = make_headers(cl);
	c = curl_easy_init();
	if (hdrs == NULL || c == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	(void)snprintf(url, sizeof(url), "%s/v3/watch", cl->endpoints[cl->cur]);
	setup_common(cl, c);
	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_watch);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
	(void)curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	(void)curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	(void)curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	w->line.len = 0;
	w->created = false;
	w->reauth = false;
	cc = curl_easy_perform(c);
	if (w->r != CVM_OK || watch_over(w)) {
		r = w->r;
		goto out;
	}
	set_errf(cl, "the watch stream from %s broke: %s", cl->endpoints[cl->cur],
	         cc == CURLE_OK ? "the server ended it" : curl_easy_strerror(cc));
	r = CVM_E_UPSTREAM;
out:
	if (c != NULL)
		curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(body);
	return r;
}

int cvm_etcd_watch(struct cvm_etcd *cl, const char *key, const struct cvm_etcd_watch_opts *wo,
                   cvm_etcd_watch_fn fn, void *arg, int64_t *next_revision)
{
	struct watch w;
	size_t fails = 0;
	int reauths = 0, r;

	if (next_revision != NULL)
		*next_revision = 0;
	if (wo == NULL || fn == NULL || key == NULL || wo->start_revision < 0 || wo->timeout_ms < 0)
		return invalid(cl, "the watch needs a key, options and a callback");
	memset(&w, 0, sizeof(w));
	w.cl = cl;
	w.fn = fn;
	w.arg = arg;
	w.stop = wo->stop;
	w.deadline = wo->timeout_ms != 0 ? now_ms() + wo->timeout_ms : 0;
	w.next_rev = wo->start_revision;
	cvm_wr_init(&w.line, cl->max_response);
	cl->err[0] = '\0';
	if (cl->user != NULL && cl->token == NULL) {
		r = authenticate(cl);
		if (r != CVM_OK)
			goto out;
	}
	for (;;) {
		r = watch_once(&w, key, wo);
		if (r != CVM_E_UPSTREAM || w.r != CVM_OK || watch_over(&w))
			break;
		if (w.reauth) {
			if (reauths++ > 0) /* a fresh token refused too */
				break;
			r = authenticate(cl);
			if (r != CVM_OK)
				break;
			continue;
		}
		reauths = 0;
		/* The stream broke without a final word from etcd: resume at
		 * next_rev, on the same member if it had accepted the watch (a
		 * restart of the stream), else on the next one. */
		if (w.created) {
			fails = 0;
		} else {
			cl->cur = (cl->cur + 1) % cl->n_endpoints;
			fails++;
		}
		if (fails >= 3 * cl->n_endpoints) {
			char why[CVM_ETCD_ERR_LEN];

			(void)snprintf(why, sizeof(why), "%s", cl->err);
			set_errf(cl, "no etcd endpoint accepts the watch; last: %.190s", why);
			break;
		}
		if (fails != 0 && fails % cl->n_endpoints == 0)
			sleep_ms(ROUND_PAUSE_MS * 2);
		else if (w.created)
			sleep_ms(10);
	}
	if (watch_over(&w) && w.r == CVM_OK)
		r = CVM_OK;
out:
	if (next_revision != NULL)
		*next_revision = r == CVM_E_EXPIRED ? w.compact_revision : w.next_rev;
	cvm_wr_cleanup(&w.line);
	return r;
}
