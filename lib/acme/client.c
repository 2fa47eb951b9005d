/* The ACME v2 protocol (RFC 8555) over libcurl: directory, nonces,
 * account, order, authorizations and challenges, finalization, download
 * and revocation. Each request is synchronous; waits for the server are
 * polls bounded by the configured time. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/acme.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>

#include "acme_int.h"

#define NONCE_MAX 256
#define CONTENT_TYPE_MAX 128
/* A Retry-After longer than this is cut to it (within the wait's bound). */
#define RETRY_AFTER_MAX 60
/* A failed nonce is retried this many times (RFC 8555, 6.5). */
#define BAD_NONCE_RETRIES 3
#define REQUEST_TIMEOUT_S 60L
#define CONNECT_TIMEOUT_S 15L
#define PROBLEM_CT "application/problem+json"
#define CHAIN_CT "application/pem-certificate-chain"

struct cvm_acme_client {
	struct cvm_acme_config cfg;
	const struct cvm_p256_keypair *key;
	CURL *curl;
	bool have_dir;
	struct acme_directory dir;
	char nonce[NONCE_MAX + 1];
	char *kid;
	char err[CVM_ACME_ERR_LEN];
};

struct resp {
	long status;
	struct cvm_wr body;
	bool body_too_large;
	char location[CVM_ACME_URL_MAX + 1];
	bool location_bad;
	char nonce[NONCE_MAX + 1];
	char content_type[CONTENT_TYPE_MAX + 1];
	long retry_after; /* seconds; -1: none */
	uint8_t *data;    /* the body once the request is over */
	size_t data_len;
};

static void resp_init(struct resp *rs, size_t max)
{
	memset(rs, 0, sizeof(*rs));
	cvm_wr_init(&rs->body, max);
	rs->retry_after = -1;
}

static void resp_cleanup(struct resp *rs)
{
	cvm_wr_cleanup(&rs->body);
	free(rs->data);
	memset(rs, 0, sizeof(*rs));
}

static void set_err(struct cvm_acme_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct cvm_acme_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static void progress(struct cvm_acme_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct cvm_acme_client *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (c->cfg.progress == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->cfg.progress(c->cfg.progress_ctx, line);
}

static bool scheme_allowed(const struct cvm_acme_client *c, const char *url)
{
	if (!acme_url_syntax_ok(url, strnlen(url, CVM_ACME_URL_MAX + 1)))
		return false;
	return strncmp(url, "https://", 8) == 0 || c->cfg.allow_insecure_http;
}

static double now_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct resp *rs = ctx;
	size_t len = size * n;

	if (len > rs->body.max - rs->body.len) {
		rs->body_too_large = true;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	cvm_wr_bytes(&rs->body, p, len);
	return rs->body.err ? 0 : len;
}

/* copy_value copies a header's value (white space trimmed) into out; false
 * when it does not fit or holds a control character. */
static bool copy_value(const char *v, size_t n, char *out, size_t out_len)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= out_len)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f)
			return false;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

static bool header_is(const char *line, size_t n, const char *name, const char **value, size_t *value_len)
{
	size_t k = strlen(name);

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return false;
	*value = line + k + 1;
	*value_len = n - k - 1;
	return true;
}

static long parse_retry_after(const char *v)
{
	long s = 0;
	size_t i = 0;
	time_t t;

	for (; v[i] >= '0' && v[i] <= '9'; i++) {
		if (i >= 9)
			return RETRY_AFTER_MAX;
		s = s * 10 + (v[i] - '0');
	}
	if (i > 0 && v[i] == '\0')
		return s;
	t = curl_getdate(v, NULL); /* an HTTP-date */
	if (t == (time_t)-1)
		return -1;
	s = (long)(t - time(NULL));
	return s < 0 ? 0 : s;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct resp *rs = ctx;
	size_t len = size * n;
	const char *v;
	size_t vlen;
	char tmp[64];

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue): forget the last one's headers. */
		rs->location[0] = '\0';
		rs->location_bad = false;
		rs->nonce[0] = '\0';
		rs->content_type[0] = '\0';
		rs->retry_after = -1;
		return len;
	}
	if (header_is(p, len, "Replay-Nonce", &v, &vlen)) {
		if (!copy_value(v, vlen, rs->nonce, sizeof(rs->nonce)) ||
		    !acme_token_ok(rs->nonce, strlen(rs->nonce)))
			rs->nonce[0] = '\0';
	} else if (header_is(p, len, "Location", &v, &vlen)) {
		if (!copy_value(v, vlen, rs->location, sizeof(rs->location))) {
			rs->location[0] = '\0';
			rs->location_bad = true;
		}
	} else if (header_is(p, len, "Content-Type", &v, &vlen)) {
		if (!copy_value(v, vlen, rs->content_type, sizeof(rs->content_type)))
			rs->content_type[0] = '\0';
	} else if (header_is(p, len, "Retry-After", &v, &vlen)) {
		if (copy_value(v, vlen, tmp, sizeof(tmp)))
			rs->retry_after = parse_retry_after(tmp);
	}
	return len;
}

static bool content_type_is(const struct resp *rs, const char *type)
{
	size_t n = strlen(type);

	return strncasecmp(rs->content_type, type, n) == 0 &&
	       (rs->content_type[n] == '\0' || rs->content_type[n] == ';' || rs->content_type[n] == ' ');
}

/* http sends one request and fills `rs`. */
static int http(struct cvm_acme_client *c, const char *method, const char *url, const char *body,
                const char *accept, struct resp *rs)
{
	struct curl_slist *hdrs = NULL, *h;
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	int r;

	if (!scheme_allowed(c, url)) {
		set_err(c, "refusing the URL '%.200s': ACME needs https (or a well-formed URL)", url);
		return CVM_E_POLICY;
	}
	curl_easy_reset(c->curl);
	h = curl_slist_append(hdrs, accept != NULL ? accept : "Accept: application/json");
	if (h == NULL)
		return CVM_E_NOMEM;
	hdrs = h;
	if (body != NULL) {
		h = curl_slist_append(hdrs, "Content-Type: application/jose+json");
		if (h == NULL) {
			curl_slist_free_all(hdrs);
			return CVM_E_NOMEM;
		}
		hdrs = h;
	}
	cc = CURLE_OK;
	/* clang-format off */
	if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, c->cfg.allow_insecure_http ? "http,https" : "https") != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    (c->cfg.ca_bundle != NULL && curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->cfg.ca_bundle) != CURLE_OK) ||
	    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "cvmkit-acme/" "0.1") != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, rs) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, rs) != CURLE_OK)
		cc = CURLE_FAILED_INIT;
	/* clang-format on */
	if (cc == CURLE_OK && strcmp(method, "HEAD") == 0)
		cc = curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
	if (cc == CURLE_OK && body != NULL)
		cc = curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	if (cc == CURLE_OK)
		cc = curl_easy_perform(c->curl);
	(void)curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	if (rs->body_too_large) {
		set_err(c, "the answer of %.200s is larger than %zu bytes", url, rs->body.max);
		return CVM_E_TOO_LARGE;
	}
	if (cc != CURLE_OK) {
		set_err(c, "cannot reach %.200s: %s", url,
		        errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		return CVM_E_SYSTEM;
	}
	if (curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &rs->status) != CURLE_OK)
		rs->status = 0;
	r = cvm_wr_finish(&rs->body, &rs->data, &rs->data_len);
	cvm_wr_init(&rs->body, 0);
	if (r != CVM_OK) {
		set_err(c, "out of memory reading %.200s", url);
		return r;
	}
	if (rs->nonce[0] != '\0')
		memcpy(c->nonce, rs->nonce, sizeof(c->nonce));
	return CVM_OK;
}

static int get_nonce(struct cvm_acme_client *c)
{
	struct resp rs;
	int r;

	resp_init(&rs, 0);
	r = http(c, "HEAD", c->dir.new_nonce, NULL, NULL, &rs);
	if (r == CVM_OK && (rs.status != 200 && rs.status != 204)) {
		set_err(c, "the server's newNonce answered HTTP %ld", rs.status);
		r = CVM_E_POLICY;
	}
	if (r == CVM_OK && c->nonce[0] == '\0') {
		set_err(c, "the server's newNonce gave no usable Replay-Nonce");
		r = CVM_E_FORMAT;
	}
	resp_cleanup(&rs);
	return r;
}

/* fail_http sets the error of a request `what` that the server refused,
 * with its problem document when it sent one; *type_out gets its type. */
static void fail_http(struct cvm_acme_client *c, const char *what, const struct resp *rs, char *type_out,
                      size_t type_len)
{
	char sentence[CVM_ACME_ERR_LEN - 64];

	if (type_out != NULL && type_len != 0)
		type_out[0] = '\0';
	if (content_type_is(rs, PROBLEM_CT) || content_type_is(rs, "application/json")) {
		if (acme_parse_problem(rs->data, rs->data_len, sentence, sizeof(sentence), type_out,
		                       type_len) == CVM_OK) {
			set_err(c, "%s: the CA answered HTTP %ld, %s", what, rs->status, sentence);
			return;
		}
	}
	set_err(c, "%s: the CA answered HTTP %ld without a problem document", what, rs->status);
}

static int ensure_dir(struct cvm_acme_client *c)
{
	struct resp rs;
	int r;

	if (c->have_dir)
		return CVM_OK;
	resp_init(&rs, CVM_ACME_JSON_MAX);
	r = http(c, "GET", c->cfg.directory_url, NULL, NULL, &rs);
	if (r != CVM_OK)
		goto out;
	if (rs.status != 200) {
		fail_http(c, "reading the directory", &rs, NULL, 0);
		r = CVM_E_POLICY;
		goto out;
	}
	r = acme_parse_directory(rs.data, rs.data_len, &c->dir);
	if (r != CVM_OK) {
		set_err(c, "the directory at %.200s is not an ACME directory (%s)", c->cfg.directory_url,
		        cvm_strerror(r));
		goto out;
	}
	c->have_dir = true;
out:
	resp_cleanup(&rs);
	return r;
}

/* post sends a JWS-signed POST of `payload` (NULL: POST-as-GET) to `url`,
 * retrying a refused nonce. A status of 400 or more sets the error
 * (`what`) and gives CVM_E_POLICY; *problem (may be NULL) gets the problem
 * type. */
static int post(struct cvm_acme_client *c, const char *what, const char *url, const char *payload,
                bool use_kid, const char *accept, size_t max, struct resp *rs, char *problem,
                size_t problem_len)
{
	char type[128];
	char *jws = NULL;
	int r = CVM_E_INTERNAL;

	if (problem != NULL && problem_len != 0)
		problem[0] = '\0';
	for (int attempt = 0; attempt <= BAD_NONCE_RETRIES; attempt++) {
		resp_cleanup(rs);
		resp_init(rs, max);
		if (c->nonce[0] == '\0') {
			r = get_nonce(c);
			if (r != CVM_OK)
				return r;
		}
		r = acme_jws(c->key, use_kid ? c->kid : NULL, c->nonce, url, payload, &jws);
		c->nonce[0] = '\0'; /* used */
		if (r != CVM_OK) {
			set_err(c, "%s: cannot sign the request (%s)", what, cvm_strerror(r));
			return r;
		}
		r = http(c, "POST", url, jws, accept, rs);
		free(jws);
		jws = NULL;
		if (r != CVM_OK)
			return r;
		if (rs->status < 400)
			return CVM_OK;
		fail_http(c, what, rs, type, sizeof(type));
		if (problem != NULL)
			(void)snprintf(problem, problem_len, "%s", type);
		if (strcmp(type, "badNonce") != 0 || attempt == BAD_NONCE_RETRIES)
			return CVM_E_POLICY;
		/* RFC 8555 6.5: the error carries a fresh nonce; http() kept it. */
		progress(c, "the CA refused the nonce (badNonce); retrying with a fresh one");
	}
	return CVM_E_POLICY;
}

int cvm_acme_client_new(const struct cvm_acme_config *cfg, const struct cvm_p256_keypair *account_key,
                        struct cvm_acme_client **out)
{
	struct cvm_acme_client *c;

	*out = NULL;
	if (cfg == NULL || account_key == NULL || cfg->directory_url == NULL)
		return CVM_E_INVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	c->cfg = *cfg;
	c->key = account_key;
	if (c->cfg.poll_timeout_s == 0)
		c->cfg.poll_timeout_s = CVM_ACME_POLL_TIMEOUT_DEFAULT;
	if (!scheme_allowed(c, cfg->directory_url)) {
		free(c);
		return CVM_E_INVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(c);
		return CVM_E_SYSTEM;
	}
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		curl_global_cleanup();
		free(c);
		return CVM_E_SYSTEM;
	}
	*out = c;
	return CVM_OK;
}

void cvm_acme_client_free(struct cvm_acme_client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	curl_global_cleanup();
	acme_directory_cleanup(&c->dir);
	free(c->kid);
	free(c);
}

const char *cvm_acme_client_error(const struct cvm_acme_client *c)
{
	return c->err;
}

const char *cvm_acme_account_url(const struct cvm_acme_client *c)
{
	return c->kid;
}

int cvm_acme_account(struct cvm_acme_client *c, const char *email, bool only_existing)
{
	struct acme_account acct;
	struct resp rs;
	json_t *p = NULL;
	char *payload = NULL, *contact = NULL;
	char type[128];
	int r;

	c->err[0] = '\0';
	resp_init(&rs, CVM_ACME_JSON_MAX);
	r = ensure_dir(c);
	if (r != CVM_OK)
		goto out;
	if (only_existing) {
		p = json_pack("{s:b}", "onlyReturnExisting", 1);
	} else if (email != NULL) {
		size_t n = strlen(email);

		if (n == 0 || n > 254 || strchr(email, '@') == NULL ||
		    strpbrk(email, ",:?&/ \t\r\n") != NULL) {
			set_err(c, "the e-mail address '%.100s' is not one address", email);
			r = CVM_E_INVAL;
			goto out;
		}
		contact = malloc(n + 8);
		if (contact == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		(void)snprintf(contact, n + 8, "mailto:%s", email);
		p = json_pack("{s:b,s:[s]}", "termsOfServiceAgreed", 1, "contact", contact);
	} else {
		p = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	}
	payload = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
	if (payload == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = post(c, only_existing ? "looking up the account" : "creating the account", c->dir.new_account,
	         payload, false, NULL, CVM_ACME_JSON_MAX, &rs, type, sizeof(type));
	if (r == CVM_E_POLICY && strcmp(type, "accountDoesNotExist") == 0) {
		set_err(c, "the CA knows no account for this account key (accountDoesNotExist); run "
		           "`cvm cert acme issue` first, which creates it");
		goto out;
	}
	if (r != CVM_OK)
		goto out;
	if (rs.status != 200 && rs.status != 201) {
		set_err(c, "creating the account: the CA answered HTTP %ld, not 200 or 201", rs.status);
		r = CVM_E_FORMAT;
		goto out;
	}
	if (rs.location[0] == '\0' || !scheme_allowed(c, rs.location)) {
		set_err(c, "the CA's account answer has no usable Location (the account URL)");
		r = CVM_E_FORMAT;
		goto out;
	}
	r = acme_parse_account(rs.data, rs.data_len, &acct);
	if (r != CVM_OK) {
		set_err(c, "the CA's account object is malformed (%s)", cvm_strerror(r));
		goto out;
	}
	if (acct.status != ACME_ST_VALID) {
		set_err(c, "the account is %s, not valid: use another account key",
		        acme_status_name(acct.status));
		r = CVM_E_POLICY;
		goto out;
	}
	free(c->kid);
	c->kid = strdup(rs.location);
	if (c->kid == NULL)
		r = CVM_E_NOMEM;
out:
	json_decref(p);
	free(payload);
	free(contact);
	resp_cleanup(&rs);
	return r;
}

/* wait_next sleeps before the next poll: the server's Retry-After (at most
 * RETRY_AFTER_MAX) or 1 s, never past `deadline`. False when the deadline
 * has passed. */
static bool wait_next(double deadline, long retry_after)
{
	double now = now_s(), wait = retry_after >= 1 ? (double)retry_after : 1.0;
	struct timespec ts;

	if (now >= deadline)
		return false;
	if (wait > RETRY_AFTER_MAX)
		wait = RETRY_AFTER_MAX;
	if (now + wait > deadline)
		wait = deadline - now;
	ts.tv_sec = (time_t)wait;
	ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return true;
}

static int fetch_authz(struct cvm_acme_client *c, const char *url, struct acme_authz *a, long *retry_after)
{
	struct resp rs;
	int r;

	resp_init(&rs, CVM_ACME_JSON_MAX);
	r = post(c, "reading an authorization", url, NULL, true, NULL, CVM_ACME_JSON_MAX, &rs, NULL, 0);
	if (r == CVM_OK) {
		r = acme_parse_authz(rs.data, rs.data_len, a);
		if (r != CVM_OK)
			set_err(c, "the authorization at %.200s is malformed (%s)", url, cvm_strerror(r));
	}
	if (retry_after != NULL)
		*retry_after = rs.retry_after;
	resp_cleanup(&rs);
	return r;
}

static int fetch_order(struct cvm_acme_client *c, const char *url, struct acme_order *o, long *retry_after)
{
	struct resp rs;
	int r;

	resp_init(&rs, CVM_ACME_JSON_MAX);
	r = post(c, "reading the order", url, NULL, true, NULL, CVM_ACME_JSON_MAX, &rs, NULL, 0);
	if (r == CVM_OK) {
		r = acme_parse_order(rs.data, rs.data_len, o);
		if (r != CVM_OK)
			set_err(c, "the order at %.200s is malformed (%s)", url, cvm_strerror(r));
	}
	if (retry_after != NULL)
		*retry_after = rs.retry_after;
	resp_cleanup(&rs);
	return r;
}

static const char *chal_name(enum cvm_acme_challenge_type t)
{
	return t == CVM_ACME_DNS_01 ? "dns-01" : "http-01";
}

/* authz_is_ours is true when the authorization is for one of the `n`
 * names ordered: a CA may not make the solver act for another name (a
 * dns-01 hook would change that name's DNS). */
static bool authz_is_ours(const struct acme_authz *a, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		bool wild = strncmp(name, "*.", 2) == 0;

		if (wild != a->wildcard)
			continue;
		if (strcasecmp(wild ? name + 2 : name, a->domain) == 0)
			return true;
	}
	return false;
}

/* solve answers one authorization with the solver and waits for it. */
static int solve(struct cvm_acme_client *c, const char *authz_url, const char *const *names,
                 size_t name_count, const struct cvm_acme_solver *s)
{
	struct acme_authz a;
	const struct acme_challenge *ch = NULL;
	struct resp rs;
	char *keyauth = NULL, *domain = NULL, *token = NULL;
	char txt[CVM_ACME_B64_SHA256_LEN + 1];
	const char *value = NULL;
	bool presented = false;
	double start, deadline;
	int r;

	memset(&a, 0, sizeof(a));
	resp_init(&rs, CVM_ACME_JSON_MAX);
	r = fetch_authz(c, authz_url, &a, NULL);
	if (r != CVM_OK)
		goto out;
	if (!authz_is_ours(&a, names, name_count)) {
		set_err(c, "the CA asks to authorize %s%s, which was not ordered: refusing to answer for it",
		        a.wildcard ? "*." : "", a.domain);
		r = CVM_E_POLICY;
		goto out;
	}
	if (a.status == ACME_ST_VALID)
		goto out; /* reused from an earlier order */
	if (a.status != ACME_ST_PENDING) {
		set_err(c, "the authorization of %s is %s: the CA will not validate it", a.domain,
		        acme_status_name(a.status));
		r = CVM_E_POLICY;
		goto out;
	}
	for (size_t i = 0; i < a.challenge_count; i++)
		if (strcmp(a.challenges[i].type, chal_name(s->type)) == 0)
			ch = &a.challenges[i];
	if (ch == NULL) {
		set_err(c, "the CA offers no %s challenge for %s%s", chal_name(s->type),
		        a.wildcard ? "*." : "", a.domain);
		r = CVM_E_POLICY;
		goto out;
	}
	r = cvm_acme_key_authorization(c->key, ch->token, &keyauth);
	if (r != CVM_OK)
		goto out;
	value = keyauth;
	if (s->type == CVM_ACME_DNS_01) {
		cvm_acme_dns01_value(keyauth, txt);
		value = txt;
	}
	domain = strdup(a.domain);
	token = strdup(ch->token);
	if (domain == NULL || token == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (s->present(s->ctx, domain, token, value) != 0) {
		set_err(c, "could not present the %s challenge for %s", chal_name(s->type), domain);
		r = CVM_E_SYSTEM;
		goto out;
	}
	presented = true;
	r = post(c, "answering the challenge", ch->url, "{}", true, NULL, CVM_ACME_JSON_MAX, &rs, NULL, 0);
	if (r != CVM_OK)
		goto out;
	start = now_s();
	deadline = start + c->cfg.poll_timeout_s;
	for (;;) {
		long retry = -1;

		acme_authz_cleanup(&a);
		r = fetch_authz(c, authz_url, &a, &retry);
		if (r != CVM_OK)
			goto out;
		if (a.status == ACME_ST_VALID)
			break;
		if (a.status != ACME_ST_PENDING) {
			const char *why = NULL;

			for (size_t i = 0; i < a.challenge_count; i++)
				if (a.challenges[i].error != NULL)
					why = a.challenges[i].error;
			set_err(c, "the CA did not validate %s (authorization %s): %s", domain,
			        acme_status_name(a.status), why != NULL ? why : "no reason given");
			r = CVM_E_POLICY;
			goto out;
		}
		progress(c, "waiting for the CA to validate %s (%s, %.0f s)", domain, chal_name(s->type),
		         now_s() - start);
		if (!wait_next(deadline, retry)) {
			set_err(c, "the CA did not validate %s within %u s", domain, c->cfg.poll_timeout_s);
			r = CVM_E_EXPIRED;
			goto out;
		}
	}
out:
	if (presented && s->cleanup != NULL)
		s->cleanup(s->ctx, domain, token, value);
	free(keyauth);
	free(domain);
	free(token);
	acme_authz_cleanup(&a);
	resp_cleanup(&rs);
	return r;
}

/* wait_order polls the order at `url` while it is `busy` (pending or
 * processing), and gives its next state in `o`. */
static int wait_order(struct cvm_acme_client *c, const char *url, enum acme_status busy, const char *step,
                      struct acme_order *o)
{
	double start = now_s(), deadline = start + c->cfg.poll_timeout_s;
	long retry = -1;
	int r;

	for (;;) {
		acme_order_cleanup(o);
		r = fetch_order(c, url, o, &retry);
		if (r != CVM_OK)
			return r;
		if (o->status != busy)
			return CVM_OK;
		progress(c, "waiting for the order (%s, %s, %.0f s)", step, acme_status_name(o->status),
		         now_s() - start);
		if (!wait_next(deadline, retry)) {
			set_err(c, "the order stayed %s for %u s (%s)", acme_status_name(busy),
			        c->cfg.poll_timeout_s, step);
			return CVM_E_EXPIRED;
		}
	}
}

static int order_state_error(struct cvm_acme_client *c, const struct acme_order *o, const char *step)
{
	set_err(c, "the order is %s %s%s%s", acme_status_name(o->status), step, o->error != NULL ? ": " : "",
	        o->error != NULL ? o->error : "");
	return CVM_E_POLICY;
}

/* check_chain checks the downloaded chain and that its leaf holds `key`. */
static int check_chain(struct cvm_acme_client *c, const uint8_t *pem, size_t len,
                       const struct cvm_p256_keypair *key)
{
	static const char probe[] = "cvmkit acme: does the leaf hold the key?";
	struct cvm_cert **certs = NULL;
	size_t count = 0;
	uint8_t sig[64];
	int r;

	if (memchr(pem, '\0', len) != NULL) {
		set_err(c, "the certificate chain holds a NUL byte");
		return CVM_E_FORMAT;
	}
	r = cvm_certs_parse_pem(pem, len, &certs, &count);
	if (r != CVM_OK) {
		set_err(c, "the certificate chain does not parse as PEM certificates (%s)", cvm_strerror(r));
		return r;
	}
	r = cvm_p256_keypair_sign(key, (const uint8_t *)probe, sizeof(probe) - 1, sig);
	if (r == CVM_OK &&
	    cvm_cert_verify_p256(certs[0], (const uint8_t *)probe, sizeof(probe) - 1, sig) != 0) {
		set_err(c, "the CA's certificate is not for the key of the request");
		r = CVM_E_MISMATCH;
	}
	cvm_certs_free(certs, count);
	return r;
}

static int make_order_payload(const char *const *names, size_t n, char **out)
{
	json_t *ids = json_array(), *p = NULL;
	int r = CVM_E_NOMEM;

	*out = NULL;
	if (ids == NULL)
		return r;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "dns", "value", names[i])) != 0)
			goto out;
	p = json_pack("{s:O}", "identifiers", ids);
	if (p == NULL)
		goto out;
	*out = json_dumps(p, JSON_COMPACT);
	if (*out != NULL)
		r = CVM_OK;
out:
	json_decref(ids);
	json_decref(p);
	return r;
}

int cvm_acme_issue(struct cvm_acme_client *c, const char *const *names, size_t name_count,
                   const struct cvm_acme_solver *solver, const struct cvm_p256_keypair *cert_key,
                   char **chain_pem, size_t *chain_len)
{
	struct acme_order o;
	struct resp rs;
	char *payload = NULL, *order_url = NULL, *csr_b = NULL, *chain = NULL;
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	json_t *fin = NULL;
	int r;

	*chain_pem = NULL;
	*chain_len = 0;
	c->err[0] = '\0';
	memset(&o, 0, sizeof(o));
	resp_init(&rs, CVM_ACME_JSON_MAX);
	if (c->kid == NULL || solver == NULL || solver->present == NULL || cert_key == NULL ||
	    (solver->type != CVM_ACME_HTTP_01 && solver->type != CVM_ACME_DNS_01)) {
		set_err(c, "no account, solver or certificate key");
		r = CVM_E_INVAL;
		goto out;
	}
	if (name_count == 0 || name_count > CVM_ACME_NAMES_MAX || names == NULL) {
		set_err(c, "an order needs 1 to %d names", CVM_ACME_NAMES_MAX);
		r = CVM_E_INVAL;
		goto out;
	}
	/* The CSR checks the names (syntax, no repeats) before anything goes out. */
	r = cvm_csr_make(cert_key, names, name_count, &csr, &csr_len);
	if (r != CVM_OK) {
		set_err(c,
		        "cannot make a certificate request for these names (%s): each must be a DNS name, "
		        "given once",
		        cvm_strerror(r));
		goto out;
	}
	r = make_order_payload(names, name_count, &payload);
	if (r != CVM_OK)
		goto out;
	r = post(c, "creating the order", c->dir.new_order, payload, true, NULL, CVM_ACME_JSON_MAX, &rs, NULL,
	         0);
	if (r != CVM_OK)
		goto out;
	if (rs.status != 201 || rs.location[0] == '\0' || !scheme_allowed(c, rs.location)) {
		set_err(c, "the CA's new order has no usable Location (HTTP %ld)", rs.status);
		r = CVM_E_FORMAT;
		goto out;
	}
	order_url = strdup(rs.location);
	if (order_url == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = acme_parse_order(rs.data, rs.data_len, &o);
	if (r != CVM_OK) {
		set_err(c, "the CA's new order is malformed (%s)", cvm_strerror(r));
		goto out;
	}
	if (o.status == ACME_ST_INVALID) {
		r = order_state_error(c, &o, "from the start");
		goto out;
	}
	if (o.authorization_count > name_count) {
		set_err(c, "the CA's order holds %zu authorizations for %zu names", o.authorization_count,
		        name_count);
		r = CVM_E_FORMAT;
		goto out;
	}
	for (size_t i = 0; i < o.authorization_count; i++) {
		r = solve(c, o.authorizations[i], names, name_count, solver);
		if (r != CVM_OK)
			goto out;
	}
	r = wait_order(c, order_url, ACME_ST_PENDING, "authorizations", &o);
	if (r != CVM_OK)
		goto out;
	if (o.status != ACME_ST_READY) {
		r = order_state_error(c, &o, "after its authorizations, not ready");
		goto out;
	}
	csr_b = acme_b64url(csr, csr_len);
	fin = csr_b != NULL ? json_pack("{s:s}", "csr", csr_b) : NULL;
	free(payload);
	payload = fin != NULL ? json_dumps(fin, JSON_COMPACT) : NULL;
	if (payload == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = post(c, "finalizing the order", o.finalize, payload, true, NULL, CVM_ACME_JSON_MAX, &rs, NULL, 0);
	if (r != CVM_OK)
		goto out;
	r = wait_order(c, order_url, ACME_ST_PROCESSING, "finalization", &o);
	if (r == CVM_OK && o.status == ACME_ST_READY)
		r = wait_order(c, order_url, ACME_ST_READY, "finalization", &o);
	if (r != CVM_OK)
		goto out;
	if (o.status != ACME_ST_VALID) {
		r = order_state_error(c, &o, "after finalization, not valid");
		goto out;
	}
	r = post(c, "downloading the certificate", o.certificate, NULL, true, "Accept: " CHAIN_CT,
	         CVM_ACME_CHAIN_MAX, &rs, NULL, 0);
	if (r != CVM_OK)
		goto out;
	if (rs.status != 200 || !content_type_is(&rs, CHAIN_CT)) {
		set_err(c, "the certificate download answered HTTP %ld with '%.60s', not %s", rs.status,
		        rs.content_type, CHAIN_CT);
		r = CVM_E_FORMAT;
		goto out;
	}
	r = check_chain(c, rs.data, rs.data_len, cert_key);
	if (r != CVM_OK)
		goto out;
	chain = malloc(rs.data_len + 1);
	if (chain == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(chain, rs.data, rs.data_len);
	chain[rs.data_len] = '\0';
	*chain_pem = chain;
	*chain_len = rs.data_len;
	chain = NULL; /* transferred */
out:
	json_decref(fin);
	free(payload);
	free(order_url);
	free(csr);
	free(csr_b);
	free(chain);
	acme_order_cleanup(&o);
	resp_cleanup(&rs);
	return r;
}

int cvm_acme_revoke(struct cvm_acme_client *c, const uint8_t *cert_der, size_t len, int reason)
{
	struct resp rs;
	json_t *p = NULL;
	char *payload = NULL, *cert_b = NULL;
	int r;

	c->err[0] = '\0';
	resp_init(&rs, CVM_ACME_JSON_MAX);
	if (c->kid == NULL || cert_der == NULL || len == 0 || len > CVM_CERT_DER_MAX || reason < 0 ||
	    reason > 10 || reason == 7) {
		set_err(c, "no account, no certificate, or a reason outside 0..10 (7 is unused)");
		r = CVM_E_INVAL;
		goto out;
	}
	r = ensure_dir(c);
	if (r != CVM_OK)
		goto out;
	if (c->dir.revoke_cert == NULL) {
		set_err(c, "the CA's directory has no revokeCert");
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	cert_b = acme_b64url(cert_der, len);
	p = cert_b != NULL ? json_pack("{s:s,s:i}", "certificate", cert_b, "reason", reason) : NULL;
	payload = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
	if (payload == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = post(c, "revoking the certificate", c->dir.revoke_cert, payload, true, NULL, CVM_ACME_JSON_MAX,
	         &rs, NULL, 0);
	if (r == CVM_OK && rs.status != 200) {
		set_err(c, "revoking the certificate: the CA answered HTTP %ld, not 200", rs.status);
		r = CVM_E_FORMAT;
	}
out:
	json_decref(p);
	free(payload);
	free(cert_b);
	resp_cleanup(&rs);
	return r;
}
