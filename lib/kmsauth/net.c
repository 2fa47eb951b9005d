/* The webhook client over libcurl, and the chain's gatewayAppId() and
 * eth_chainId. One easy handle per request, so concurrent decisions share
 * nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/chain.h>
#include <cvmkit/err.h>
#include <cvmkit/kmsauth.h>

#include "chain/chain_lib.h"
#include "kmsauth_int.h"
#include "kmsauth_net.h"

#define CONNECT_TIMEOUT_MS 2000L

/* http sends one request to `url` (`body` NULL: GET, else a JSON POST) and
 * returns the 2xx reply's body (NUL-terminated, at most `max` bytes) in a
 * new buffer. `what` names the peer in errors ("the webhook"). No proxy:
 * the proxy environment variables libcurl would honour do not get to route
 * an authorization question elsewhere (the configuration names the peer). */
static int http(const char *url, const char *body, unsigned timeout_ms, size_t max, const char *what,
                uint8_t **out, size_t *out_len, char *err, size_t err_len)
{
	char errbuf[CURL_ERROR_SIZE] = "", origin[256];
	struct curl_slist *hdrs = NULL, *h;
	struct chain_reply rp = {0};
	long timeout = (long)timeout_ms, status = 0;
	CURL *curl = NULL;
	CURLcode cc;
	int r;

	*out = NULL;
	*out_len = 0;
	cvm_wr_init(&rp.body, max);
	chain_url_origin(url, origin, sizeof(origin));
	curl = curl_easy_init();
	h = curl_slist_append(hdrs, "Content-Type: application/json");
	if (curl == NULL || h == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	hdrs = h;
	/* clang-format off */
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout < CONNECT_TIMEOUT_MS ? timeout : CONNECT_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERAGENT, "cvmkit-kmsauth/0.1") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, chain_on_body) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &rp) != CURLE_OK ||
	    (body != NULL && curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body) != CURLE_OK))
		cc = CURLE_FAILED_INIT;
	else
		cc = curl_easy_perform(curl);
	/* clang-format on */
	if (rp.too_large) {
		auth_set_err(err, err_len, "%s %s answered more than %zu bytes", what, origin, max);
		r = CVM_E_UPSTREAM;
		goto out;
	}
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		auth_set_err(err, err_len, "%s %s did not answer within %u ms", what, origin, timeout_ms);
		r = CVM_E_UPSTREAM;
		goto out;
	}
	if (cc != CURLE_OK) {
		auth_set_err(err, err_len, "%s %s cannot be reached: %s (is it running?)", what, origin,
		             errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		r = CVM_E_UPSTREAM;
		goto out;
	}
	(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		auth_set_err(err, err_len, "%s %s answered HTTP %ld%s", what, origin, status,
		             status >= 300 && status < 400 ? " (a redirect: not followed)" : "");
		r = CVM_E_UPSTREAM;
		goto out;
	}
	r = cvm_wr_finish(&rp.body, out, out_len);
out:
	cvm_wr_cleanup(&rp.body);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	return r;
}

/* join writes base + path into a new string. */
static char *join(const char *base, const char *path)
{
	size_t n = strlen(base) + strlen(path) + 1;
	char *s = malloc(n);

	if (s != NULL)
		(void)snprintf(s, n, "%s%s", base, path);
	return s;
}

int auth_webhook_decide(const char *base, unsigned timeout_ms, enum cvm_auth_kind kind,
                        const struct cvm_boot_info *bi, struct cvm_auth_decision *d, char *err,
                        size_t err_len)
{
	char *json = NULL, *url = NULL;
	uint8_t *body = NULL;
	size_t body_len = 0;
	int r;

	memset(d, 0, sizeof(*d));
	r = cvm_boot_info_to_json(bi, &json);
	if (r != CVM_OK) {
		auth_set_err(err, err_len, "the BootInfo cannot be written as JSON: %s", cvm_strerror(r));
		goto out;
	}
	url = join(base, kind == CVM_AUTH_KMS ? "/bootAuth/kms" : "/bootAuth/app");
	if (url == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = http(url, json, timeout_ms, CVM_AUTH_REPLY_MAX, "the webhook", &body, &body_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = auth_webhook_reply_parse(body, body_len, d, err, err_len);
out:
	free(body);
	free(url);
	free(json);
	return r;
}

int auth_webhook_info(const char *base, unsigned timeout_ms, struct cvm_auth_info *out, char *err,
                      size_t err_len)
{
	uint8_t *body = NULL;
	size_t body_len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	r = http(base, NULL, timeout_ms, CVM_AUTH_REPLY_MAX, "the webhook", &body, &body_len, err, err_len);
	if (r == CVM_OK)
		r = auth_webhook_info_parse(body, body_len, out, err, err_len);
	free(body);
	return r;
}

int auth_chain_gateway_app_id(const struct cvm_chain_client *c, const uint8_t contract[CVM_CHAIN_ADDRESS_LEN],
                              char *out, size_t out_len, char *err, size_t err_len)
{
	uint8_t sel[CVM_CHAIN_SELECTOR_LEN];
	char s[CVM_CHAIN_STRING_MAX + 1];
	uint8_t *ret = NULL;
	size_t ret_len = 0, n;
	int r;

	out[0] = '\0';
	cvm_chain_selector("gatewayAppId()", sel);
	r = cvm_chain_eth_call(c, contract, sel, sizeof(sel), &ret, &ret_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_chain_decode_string(ret, ret_len, s, sizeof(s));
	if (r != CVM_OK) {
		auth_set_err(err, err_len, "the contract's gatewayAppId() is not an ABI string: %s",
		             cvm_strerror(r));
		goto out;
	}
	n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] >= 0x7f) {
			r = CVM_E_FORMAT;
			break;
		}
	}
	if (r != CVM_OK || n >= out_len) {
		auth_set_err(err, err_len,
		             "the contract's gatewayAppId() is not printable ASCII of at most %zu bytes",
		             out_len - 1);
		r = CVM_E_FORMAT;
		goto out;
	}
	memcpy(out, s, n + 1);
out:
	free(ret);
	return r;
}

int auth_chain_id(const struct cvm_chain_client *c, uint64_t *out, char *err, size_t err_len)
{
	static const char body[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\",\"params\":[]}";
	json_error_t jerr;
	json_t *root = NULL, *v;
	uint8_t *buf = NULL;
	size_t len = 0, l;
	const char *s;
	uint64_t id = 0;
	int r;

	*out = 0;
	r = http(c->rpc_url, body, (unsigned)c->timeout_ms, 4096, "the chain node", &buf, &len, err, err_len);
	if (r != CVM_OK)
		goto out;
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	v = json_object_get(root, "result");
	if (!json_is_object(root) || !json_is_integer(json_object_get(root, "id")) ||
	    json_integer_value(json_object_get(root, "id")) != 1 || !json_is_string(v)) {
		auth_set_err(err, err_len, "the chain node's eth_chainId answer is not a JSON-RPC result");
		r = CVM_E_FORMAT;
		goto out;
	}
	s = json_string_value(v);
	l = json_string_length(v);
	if (l < 3 || l > 18 || s[0] != '0' || s[1] != 'x') {
		auth_set_err(err, err_len,
		             "the chain node's chain id is not a 0x quantity of at most 64 bits");
		r = CVM_E_FORMAT;
		goto out;
	}
	for (size_t i = 2; i < l; i++) {
		char ch = s[i];
		unsigned dgt;

		if (ch >= '0' && ch <= '9')
			dgt = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			dgt = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			dgt = (unsigned)(ch - 'A' + 10);
		else {
			auth_set_err(err, err_len, "the chain node's chain id is not hex");
			r = CVM_E_FORMAT;
			goto out;
		}
		id = id << 4 | dgt;
	}
	*out = id;
out:
	json_decref(root);
	free(buf);
	return r;
}
