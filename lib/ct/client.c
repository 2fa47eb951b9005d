/* A client of an RFC 6962 log's HTTP API (section 4) over libcurl. Every
 * answer is capped before it is parsed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include <cvmkit/bytes.h>
#include <cvmkit/ct.h>

#define URL_MAX 2048
#define CONNECT_TIMEOUT_S 10L

struct cvm_ct_client {
	CURL *curl;
	char base[URL_MAX];
	bool allow_http;
	unsigned timeout_s;
	char err[URL_MAX + 1024];
};

/* An answer collected in a bounded writer: more than `max` bytes ends the
 * transfer and is reported as such. */
struct body {
	struct cvm_wr w;
	size_t max;
	bool too_large;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t k = size * n;

	if (k > b->max - b->w.len) {
		b->too_large = true;
		return 0; /* ends the transfer */
	}
	cvm_wr_bytes(&b->w, p, k);
	return b->w.err ? 0 : k;
}

int cvm_ct_client_new(const char *url, bool allow_http, unsigned timeout_s, struct cvm_ct_client **out)
{
	struct cvm_ct_client *c;
	size_t n;

	*out = NULL;
	if (url == NULL || timeout_s == 0)
		return CVM_E_INVAL;
	if (strncmp(url, "https://", 8) != 0 && !(allow_http && strncmp(url, "http://", 7) == 0))
		return CVM_E_INVAL;
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n + 64 >= URL_MAX)
		return CVM_E_INVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	memcpy(c->base, url, n);
	c->allow_http = allow_http;
	c->timeout_s = timeout_s;
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		free(c);
		return CVM_E_NOMEM;
	}
	*out = c;
	return CVM_OK;
}

void cvm_ct_client_free(struct cvm_ct_client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	free(c);
}

const char *cvm_ct_client_error(const struct cvm_ct_client *c)
{
	return c->err[0] != '\0' ? c->err : "no error";
}

/* get fetches base + path into a new NUL-terminated buffer of at most `max`
 * bytes; anything but HTTP 200 is a failure (CVM_E_SYSTEM, c->err says). */
static int get(struct cvm_ct_client *c, const char *path, size_t max, char **out, size_t *out_len)
{
	char url[URL_MAX + 128], errbuf[CURL_ERROR_SIZE] = "";
	struct body b = {.max = max};
	long status = 0;
	CURLcode cc;
	char *text = NULL;
	int e;

	*out = NULL;
	*out_len = 0;
	c->err[0] = '\0';
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, path) >= sizeof(url))
		return CVM_E_INVAL;
	cvm_wr_init(&b.w, max + 1); /* + the NUL of cvm_wr_finish_str */
	curl_easy_reset(c->curl);
	if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, c->allow_http ? "http,https" : "https") !=
	        CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, (long)c->timeout_s) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "cvmkit-ct/0.1") != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b) != CURLE_OK) {
		snprintf(c->err, sizeof(c->err), "libcurl refused an option");
		cvm_wr_cleanup(&b.w);
		return CVM_E_SYSTEM;
	}
	cc = curl_easy_perform(c->curl);
	(void)curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	(void)curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
	if (b.too_large) {
		snprintf(c->err, sizeof(c->err), "GET %s: the answer is longer than %zu bytes", url, max);
		cvm_wr_cleanup(&b.w);
		return CVM_E_TOO_LARGE;
	}
	if (cc != CURLE_OK) {
		snprintf(c->err, sizeof(c->err), "GET %s: %s", url,
		         errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		cvm_wr_cleanup(&b.w);
		return CVM_E_SYSTEM;
	}
	if (status != 200) {
		snprintf(c->err, sizeof(c->err), "GET %s: HTTP status %ld", url, status);
		cvm_wr_cleanup(&b.w);
		return CVM_E_SYSTEM;
	}
	*out_len = b.w.len;
	e = cvm_wr_finish_str(&b.w, &text);
	if (e != CVM_OK) {
		snprintf(c->err, sizeof(c->err), "GET %s: out of memory", url);
		*out_len = 0;
		return e;
	}
	*out = text;
	return CVM_OK;
}

int cvm_ct_get_sth(struct cvm_ct_client *c, struct cvm_ct_sth *out)
{
	char *body;
	size_t len;
	int e;

	memset(out, 0, sizeof(*out));
	e = get(c, "/ct/v1/get-sth", CVM_CT_STH_JSON_MAX, &body, &len);
	if (e != CVM_OK)
		return e;
	e = cvm_ct_sth_parse(body, len, out);
	if (e != CVM_OK)
		snprintf(c->err, sizeof(c->err), "get-sth: the answer is not a signed tree head (%s)",
		         cvm_strerror(e));
	free(body);
	return e;
}

int cvm_ct_get_consistency(struct cvm_ct_client *c, uint64_t first, uint64_t second, uint8_t (*proof)[32],
                           size_t *count)
{
	char path[128], *body;
	size_t len;
	int e;

	*count = 0;
	snprintf(path, sizeof(path), "/ct/v1/get-sth-consistency?first=%" PRIu64 "&second=%" PRIu64, first,
	         second);
	e = get(c, path, CVM_CT_PROOF_JSON_MAX, &body, &len);
	if (e != CVM_OK)
		return e;
	e = cvm_ct_proof_parse(body, len, proof, count);
	if (e != CVM_OK)
		snprintf(c->err, sizeof(c->err), "get-sth-consistency: the answer is not a proof (%s)",
		         cvm_strerror(e));
	free(body);
	return e;
}

int cvm_ct_get_entries(struct cvm_ct_client *c, uint64_t start, uint64_t end, struct cvm_ct_raw **out,
                       size_t *count)
{
	char path[128], *body;
	size_t len;
	int e;

	*out = NULL;
	*count = 0;
	if (end < start)
		return CVM_E_INVAL;
	if (end - start >= CVM_CT_BATCH_MAX)
		end = start + CVM_CT_BATCH_MAX - 1;
	snprintf(path, sizeof(path), "/ct/v1/get-entries?start=%" PRIu64 "&end=%" PRIu64, start, end);
	e = get(c, path, CVM_CT_ENTRIES_JSON_MAX, &body, &len);
	if (e != CVM_OK)
		return e;
	e = cvm_ct_entries_parse(body, len, (size_t)(end - start + 1), out, count);
	if (e == CVM_OK && *count == 0) {
		/* Asked for entries below the tree size, a log owes one at least. */
		e = CVM_E_FORMAT;
	}
	if (e != CVM_OK)
		snprintf(c->err, sizeof(c->err), "get-entries %" PRIu64 "..%" PRIu64 ": a bad answer (%s)",
		         start, end, cvm_strerror(e));
	free(body);
	return e;
}
