/* Fetching one item over libcurl: timeouts, retries with exponential
 * backoff and jitter (connection errors, timeouts, 5xx, 429), Retry-After
 * honoured up to retry_after_max_s, 404 as CVM_E_NOT_FOUND without retry,
 * other 4xx refused without retry; bounded bodies and headers; issuer
 * chains URL-decoded from the vendors' headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include <cvmkit/bytes.h>
#include <cvmkit/err.h>
#include <cvmkit/random.h>
#include <cvmkit/secret.h>

#include "coll_int.h"
#include "core/core_lib.h"

struct resp {
	struct cvm_wr body;
	bool body_too_large;
	bool header_bad;
	char *chain; /* the raw (URL-encoded) issuer chain header value */
	size_t chain_len;
	char tcbm[64], fmspc[13], ca_type[16];
	long retry_after; /* seconds, -1 none */
};

/* The headers that carry an issuer chain, by kind; Intel's v4 API names
 * the TCB info chain TCB-Info-Issuer-Chain (SGX-TCB-Info-Issuer-Chain
 * before, and some PCCS versions still send it). */
static bool chain_header(const char *name, size_t n, enum cvm_cache_kind kind)
{
	static const struct {
		const char *name;
		enum cvm_cache_kind kind;
	} h[] = {
	    {"TCB-Info-Issuer-Chain", CVM_CACHE_TCB_INFO},
	    {"SGX-TCB-Info-Issuer-Chain", CVM_CACHE_TCB_INFO},
	    {"SGX-Enclave-Identity-Issuer-Chain", CVM_CACHE_QE_ID},
	    {"SGX-Enclave-Identity-Issuer-Chain", CVM_CACHE_QVE_ID},
	    {"SGX-PCK-CRL-Issuer-Chain", CVM_CACHE_PCK_CRL},
	    {"SGX-PCK-Certificate-Issuer-Chain", CVM_CACHE_PCK_CERT},
	    {"SGX-PCK-Certificate-Issuer-Chain", CVM_CACHE_PCK_CERTS},
	};

	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
		if (h[i].kind == kind && strlen(h[i].name) == n && strncasecmp(h[i].name, name, n) == 0)
			return true;
	return false;
}

struct hdr_ctx {
	struct resp *rs;
	enum cvm_cache_kind kind;
	int64_t now;
};

static bool copy_value(const char *v, size_t n, char *out, size_t cap)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
			return false;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

long coll_retry_after(const char *v, int64_t now)
{
	long s = 0;
	size_t i = 0;
	time_t t;

	for (; v[i] >= '0' && v[i] <= '9'; i++) {
		if (i >= 9)
			return 999999999L;
		s = s * 10 + (v[i] - '0');
	}
	if (i > 0 && v[i] == '\0')
		return s;
	if (i > 0)
		return -1;
	t = curl_getdate(v, NULL); /* an HTTP-date */
	if (t == (time_t)-1)
		return -1;
	return (int64_t)t <= now ? 0 : (long)((int64_t)t - now);
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct hdr_ctx *h = ctx;
	struct resp *rs = h->rs;
	size_t len = size * n;
	const char *colon;
	size_t name_len, vlen;
	const char *v;
	char tmp[64];

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue): forget the last one's. */
		free(rs->chain);
		rs->chain = NULL;
		rs->chain_len = 0;
		rs->tcbm[0] = rs->fmspc[0] = rs->ca_type[0] = '\0';
		rs->retry_after = -1;
		return len;
	}
	if (len > COLL_HEADER_MAX) {
		rs->header_bad = true;
		return 0;
	}
	colon = memchr(p, ':', len);
	if (colon == NULL)
		return len;
	name_len = (size_t)(colon - p);
	v = colon + 1;
	vlen = len - name_len - 1;
	if (chain_header(p, name_len, h->kind)) {
		free(rs->chain);
		rs->chain = malloc(vlen + 1);
		if (rs->chain == NULL || !copy_value(v, vlen, rs->chain, vlen + 1)) {
			rs->header_bad = true;
			return 0;
		}
		rs->chain_len = strlen(rs->chain);
	} else if (name_len == 8 && strncasecmp(p, "SGX-TCBm", 8) == 0) {
		if (!copy_value(v, vlen, rs->tcbm, sizeof(rs->tcbm)))
			rs->header_bad = true;
	} else if (name_len == 9 && strncasecmp(p, "SGX-FMSPC", 9) == 0) {
		if (!copy_value(v, vlen, rs->fmspc, sizeof(rs->fmspc)))
			rs->header_bad = true;
	} else if (name_len == 27 && strncasecmp(p, "SGX-PCK-Certificate-CA-Type", 27) == 0) {
		if (!copy_value(v, vlen, rs->ca_type, sizeof(rs->ca_type)))
			rs->header_bad = true;
	} else if (name_len == 11 && strncasecmp(p, "Retry-After", 11) == 0) {
		if (copy_value(v, vlen, tmp, sizeof(tmp)))
			rs->retry_after = coll_retry_after(tmp, h->now);
	}
	return rs->header_bad ? 0 : len;
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

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool coll_url_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return false;
			hi = hexval(in[i + 1]);
			lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0 || o + 1 >= cap)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*out_len = o;
	return true;
}

void coll_resp_cleanup(struct coll_resp *rs)
{
	free(rs->body);
	free(rs->chain);
	memset(rs, 0, sizeof(*rs));
}

static void resp_reset(struct resp *rs, size_t max)
{
	cvm_wr_cleanup(&rs->body);
	free(rs->chain);
	memset(rs, 0, sizeof(*rs));
	cvm_wr_init(&rs->body, max);
	rs->retry_after = -1;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* backoff_ms is the wait before retry `attempt` (1-based): the base doubled
 * per retry up to the cap, then a uniform jitter over its upper half. */
static uint64_t backoff_ms(const struct cvm_cache *c, unsigned attempt)
{
	uint64_t ms = c->o.backoff_ms;
	uint32_t rnd = 0;

	for (unsigned i = 1; i < attempt && ms < c->o.backoff_max_ms; i++)
		ms *= 2;
	if (ms > c->o.backoff_max_ms)
		ms = c->o.backoff_max_ms;
	if (cvm_random_bytes(&rnd, sizeof(rnd)) != CVM_OK)
		rnd = 0;
	return ms / 2 + (ms / 2 + 1) * rnd / UINT32_MAX;
}

/* one_try sends one GET; *status is the HTTP status (0: no answer). */
static CURLcode one_try(struct cvm_cache *c, const struct cvm_cache_key *k, const char *url, struct resp *rs,
                        long *status, char *errbuf)
{
	CURL *curl = c->curl;
	struct curl_slist *hdrs = NULL, *h;
	struct hdr_ctx hc = {rs, k->kind, (int64_t)time(NULL)};
	char key_hdr[256];
	CURLcode cc = CURLE_OK;
	bool post = k->kind == CVM_CACHE_PCK_CERTS && k->by_manifest;

	*status = 0;
	curl_easy_reset(curl);
	if ((k->kind == CVM_CACHE_PCK_CERT || k->kind == CVM_CACHE_PCK_CERTS) && c->api_key != NULL) {
		(void)snprintf(key_hdr, sizeof(key_hdr), "Ocp-Apim-Subscription-Key: %s", c->api_key);
		h = curl_slist_append(hdrs, key_hdr);
		cvm_wipe(key_hdr, sizeof(key_hdr));
		if (h == NULL)
			return CURLE_OUT_OF_MEMORY;
		hdrs = h;
	}
	if (post) {
		/* by platform manifest: the JSON body cvm_cache_pck_certs made */
		if (c->post_body == NULL) {
			curl_slist_free_all(hdrs);
			return CURLE_FAILED_INIT;
		}
		h = curl_slist_append(hdrs, "Content-Type: application/json");
		if (h == NULL) {
			curl_slist_free_all(hdrs);
			return CURLE_OUT_OF_MEMORY;
		}
		hdrs = h;
		if (curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->post_len) !=
		        CURLE_OK ||
		    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->post_body) != CURLE_OK)
			cc = CURLE_FAILED_INIT;
	}
	/* clang-format off */
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    (c->tls_ca_file != NULL && curl_easy_setopt(curl, CURLOPT_CAINFO, c->tls_ca_file) != CURLE_OK) ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)c->o.timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)c->o.connect_timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERAGENT, "cvmkit-collateral/0.1") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, rs) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &hc) != CURLE_OK)
		cc = CURLE_FAILED_INIT;
	/* clang-format on */
	if (cc == CURLE_OK)
		cc = curl_easy_perform(curl);
	if (cc == CURLE_OK && curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status) != CURLE_OK)
		*status = 0;
	(void)curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	return cc;
}

int coll_fetch(struct cvm_cache *c, const struct cvm_cache_key *k, const char *url, struct coll_resp *out,
               char *err, size_t err_len)
{
	struct resp rs;
	char errbuf[CURL_ERROR_SIZE];
	size_t max = coll_key_body_max(k->kind);
	long status = 0;
	int r = CVM_E_UPSTREAM;

	memset(out, 0, sizeof(*out));
	memset(&rs, 0, sizeof(rs));
	if (c->curl == NULL) {
		c->curl = curl_easy_init();
		if (c->curl == NULL)
			return cvm_err_set(err, err_len, CVM_E_NOMEM, "cannot start libcurl");
	}
	for (unsigned attempt = 0;; attempt++) {
		CURLcode cc;
		bool retry;
		uint64_t wait;

		resp_reset(&rs, max);
		errbuf[0] = '\0';
		cc = one_try(c, k, url, &rs, &status, errbuf);
		if (rs.body_too_large) {
			r = cvm_err_set(err, err_len, CVM_E_TOO_LARGE,
			                "%.200s: the answer is larger than %zu bytes", url, max);
			goto out;
		}
		if (rs.header_bad) {
			r = cvm_err_set(err, err_len, CVM_E_UPSTREAM,
			                "%.200s: a response header is too long or holds control characters",
			                url);
			goto out;
		}
		if (cc == CURLE_OK && status == 200)
			break;
		if (cc == CURLE_OK && status == 404) {
			r = cvm_err_set(err, err_len, CVM_E_NOT_FOUND,
			                "%.200s: the upstream has no such item (HTTP 404)", url);
			goto out;
		}
		retry = cc != CURLE_OK || status == 429 || status >= 500;
		if (cc != CURLE_OK)
			(void)cvm_err_set(err, err_len, CVM_E_UPSTREAM, "cannot reach %.200s: %s", url,
			                  errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		else
			(void)cvm_err_set(err, err_len, CVM_E_UPSTREAM, "%.200s answered HTTP %ld", url,
			                  status);
		if (!retry || attempt >= c->o.retries) {
			if (retry && attempt > 0 && err != NULL && err_len > 0) {
				size_t n = strlen(err);

				(void)snprintf(err + n, err_len - n, " (after %u tries)", attempt + 1);
			}
			r = CVM_E_UPSTREAM;
			goto out;
		}
		wait = backoff_ms(c, attempt + 1);
		if (rs.retry_after >= 0) {
			if ((unsigned long)rs.retry_after > c->o.retry_after_max_s) {
				r = cvm_err_set(
				    err, err_len, CVM_E_UPSTREAM,
				    "%.200s answered HTTP %ld and asks to retry after %ld s, longer than "
				    "the %u s allowed (retry_after_max_s)",
				    url, status, rs.retry_after, c->o.retry_after_max_s);
				goto out;
			}
			if ((uint64_t)rs.retry_after * 1000 > wait)
				wait = (uint64_t)rs.retry_after * 1000;
		}
		sleep_ms(wait);
	}
	r = cvm_wr_finish(&rs.body, &out->body, &out->body_len);
	cvm_wr_init(&rs.body, 0);
	if (r != CVM_OK)
		goto out;
	if (out->body_len == 0) {
		r = cvm_err_set(err, err_len, CVM_E_UPSTREAM, "%.200s answered an empty body", url);
		goto out;
	}
	if (rs.chain != NULL) {
		out->chain = malloc(rs.chain_len + 1);
		if (out->chain == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		if (!coll_url_decode(rs.chain, rs.chain_len, out->chain, rs.chain_len + 1, &out->chain_len) ||
		    out->chain_len > COLL_CHAIN_MAX) {
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "%.200s: the issuer chain header is not a URL-encoded PEM chain",
			                url);
			goto out;
		}
	}
	memcpy(out->tcbm, rs.tcbm, sizeof(out->tcbm));
	memcpy(out->fmspc, rs.fmspc, sizeof(out->fmspc));
	memcpy(out->ca_type, rs.ca_type, sizeof(out->ca_type));
	if (err != NULL && err_len > 0)
		err[0] = '\0';
	r = CVM_OK;
out:
	if (r != CVM_OK)
		coll_resp_cleanup(out);
	cvm_wr_cleanup(&rs.body);
	free(rs.chain);
	return r;
}
