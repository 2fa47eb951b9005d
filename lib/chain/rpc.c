/* Ethereum JSON-RPC over libcurl: eth_call, one request at a time, with a
 * bounded reply, and the DstackKms authorization query built on it. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/chain.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

#include "chain_lib.h"

#define DEFAULT_TIMEOUT_MS 10000L
#define CONNECT_TIMEOUT_MS 5000L
/* A node's error message is quoted up to this many bytes. */
#define QUOTE_MAX 200

static void set_err(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* quote copies up to QUOTE_MAX bytes of the untrusted text `s` into `out`
 * (of QUOTE_MAX + 1 bytes), with every byte outside printable ASCII as '?'. */
static void quote(const char *s, char *out)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i < QUOTE_MAX; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f)
			out[i] = s[i];
		else
			out[i] = '?';
	}
	out[i] = '\0';
}

int cvm_chain_rpc_reply_parse(const uint8_t *buf, size_t len, uint64_t id, uint8_t **out, size_t *out_len,
                              char *err, size_t err_len)
{
	char q[QUOTE_MAX + 1];
	json_error_t jerr;
	json_t *root = NULL, *v, *result, *error;
	const char *hex;
	size_t hex_len, n = 0;
	uint8_t *bytes = NULL;
	int r;

	*out = NULL;
	*out_len = 0;
	if (len > (size_t)CVM_CHAIN_REPLY_MAX) {
		set_err(err, err_len, "the JSON-RPC reply is larger than %d bytes", CVM_CHAIN_REPLY_MAX);
		return CVM_E_TOO_LARGE;
	}
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		set_err(err, err_len, "the JSON-RPC reply is not a JSON object");
		r = CVM_E_FORMAT;
		goto out;
	}
	v = json_object_get(root, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
		set_err(err, err_len, "the reply is not JSON-RPC 2.0 (\"jsonrpc\" is not \"2.0\")");
		r = CVM_E_FORMAT;
		goto out;
	}
	v = json_object_get(root, "id");
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) != id) {
		set_err(err, err_len, "the reply's id is not the request's (%" PRIu64 ")", id);
		r = CVM_E_FORMAT;
		goto out;
	}
	result = json_object_get(root, "result");
	error = json_object_get(root, "error");
	if ((result == NULL) == (error == NULL)) {
		set_err(err, err_len, "the reply must hold exactly one of \"result\" and \"error\"");
		r = CVM_E_FORMAT;
		goto out;
	}
	if (error != NULL) {
		json_t *code = json_object_get(error, "code");
		json_t *msg = json_object_get(error, "message");

		if (!json_is_object(error) || !json_is_integer(code) || !json_is_string(msg)) {
			set_err(err, err_len, "the reply's \"error\" is not a JSON-RPC error object");
			r = CVM_E_FORMAT;
			goto out;
		}
		quote(json_string_value(msg), q);
		set_err(err, err_len, "the chain node answered error %" JSON_INTEGER_FORMAT ": %s",
		        json_integer_value(code), q);
		r = CVM_E_UPSTREAM;
		goto out;
	}
	if (!json_is_string(result)) {
		set_err(err, err_len, "the reply's \"result\" is not a string");
		r = CVM_E_FORMAT;
		goto out;
	}
	hex = json_string_value(result);
	hex_len = json_string_length(result);
	if (hex_len < 2 || hex[0] != '0' || (hex[1] != 'x' && hex[1] != 'X') || hex_len % 2 != 0) {
		set_err(err, err_len, "the reply's \"result\" is not 0x-prefixed hex of whole bytes");
		r = CVM_E_FORMAT;
		goto out;
	}
	if ((hex_len - 2) / 2 > (size_t)CVM_CHAIN_RETURN_MAX) {
		set_err(err, err_len, "the call's result is larger than %d bytes", CVM_CHAIN_RETURN_MAX);
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	/* One byte more than needed: malloc(0) may return NULL. */
	bytes = malloc((hex_len - 2) / 2 + 1);
	if (bytes == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = cvm_hex_decode(hex + 2, hex_len - 2, bytes, (hex_len - 2) / 2 + 1, &n);
	if (r != CVM_OK) {
		set_err(err, err_len, "the reply's \"result\" is not hex");
		r = CVM_E_FORMAT;
		goto out;
	}
	*out = bytes;
	*out_len = n;
	bytes = NULL; /* transferred */
out:
	free(bytes);
	json_decref(root);
	return r;
}

/* post sends `body` to the node and reads the reply into rp. */
static int post(const struct cvm_chain_client *c, const char *body, struct chain_reply *rp, char *err,
                size_t err_len)
{
	char errbuf[CURL_ERROR_SIZE] = "", origin[256];
	struct curl_slist *hdrs = NULL, *h;
	long timeout = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
	long status = 0;
	CURL *curl = NULL;
	CURLcode cc;
	int r;

	curl = curl_easy_init();
	h = curl_slist_append(hdrs, "Content-Type: application/json");
	if (curl == NULL || h == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	hdrs = h;
	/* clang-format off */
	if (curl_easy_setopt(curl, CURLOPT_URL, c->rpc_url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout < CONNECT_TIMEOUT_MS ? timeout : CONNECT_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERAGENT, "cvmkit-chain/0.1") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, chain_on_body) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, rp) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body) != CURLE_OK)
		cc = CURLE_FAILED_INIT;
	else
		cc = curl_easy_perform(curl);
	/* clang-format on */
	chain_url_origin(c->rpc_url, origin, sizeof(origin));
	if (rp->too_large) {
		set_err(err, err_len, "the chain node's reply is larger than %zu bytes", rp->body.max);
		r = CVM_E_UPSTREAM;
		goto out;
	}
	if (cc != CURLE_OK) {
		set_err(err, err_len, "the chain node %s cannot be reached: %s (is the node running?)",
		        origin, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		r = CVM_E_UPSTREAM;
		goto out;
	}
	(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		set_err(err, err_len, "the chain node %s answered HTTP %ld", origin, status);
		r = CVM_E_UPSTREAM;
		goto out;
	}
	r = CVM_OK;
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	return r;
}

int cvm_chain_eth_call(const struct cvm_chain_client *c, const uint8_t to[CVM_CHAIN_ADDRESS_LEN],
                       const uint8_t *data, size_t data_len, uint8_t **out, size_t *out_len, char *err,
                       size_t err_len)
{
	static uint64_t next_id = 1;
	char to_hex[2 * CVM_CHAIN_ADDRESS_LEN + 1];
	char *data_hex = NULL, *body = NULL;
	struct chain_reply rp = {0};
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	uint64_t id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	struct cvm_wr w;
	int r;

	*out = NULL;
	*out_len = 0;
	set_err(err, err_len, "%s", "");
	cvm_wr_init(&w, (size_t)2 * CVM_CHAIN_RETURN_MAX + 512);
	cvm_wr_init(&rp.body, CVM_CHAIN_REPLY_MAX);
	if (c == NULL || c->rpc_url == NULL || !chain_url_ok(c->rpc_url, CVM_CHAIN_URL_MAX) ||
	    (data == NULL && data_len != 0) || data_len > (size_t)CVM_CHAIN_RETURN_MAX) {
		set_err(err, err_len,
		        "the chain node's URL must be http:// or https:// and the call data at most %d bytes",
		        CVM_CHAIN_RETURN_MAX);
		r = CVM_E_INVAL;
		goto out;
	}
	cvm_hex_encode(to, CVM_CHAIN_ADDRESS_LEN, to_hex);
	data_hex = cvm_hex_encode_new(data, data_len);
	if (data_hex == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	cvm_wr_fmt(&w,
	           "{\"jsonrpc\":\"2.0\",\"id\":%" PRIu64
	           ",\"method\":\"eth_call\",\"params\":[{\"to\":\"0x%s\",\"data\":\"0x%s\"},\"latest\"]}",
	           id, to_hex, data_hex);
	r = cvm_wr_finish_str(&w, &body);
	if (r != CVM_OK)
		goto out;
	r = post(c, body, &rp, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_wr_finish(&rp.body, &raw, &raw_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_chain_rpc_reply_parse(raw, raw_len, id, out, out_len, err, err_len);
out:
	free(raw);
	free(body);
	free(data_hex);
	cvm_wr_cleanup(&rp.body);
	cvm_wr_cleanup(&w);
	return r;
}

int cvm_chain_is_allowed(const struct cvm_chain_client *c, const uint8_t kms_contract[CVM_CHAIN_ADDRESS_LEN],
                         enum cvm_chain_query query, const struct cvm_chain_boot_info *bi, bool *is_allowed,
                         char *reason, size_t reason_len, char *err, size_t err_len)
{
	uint8_t *data = NULL, *ret = NULL;
	size_t data_len = 0, ret_len = 0;
	char to_hex[2 * CVM_CHAIN_ADDRESS_LEN + 1];
	int r;

	*is_allowed = false;
	if (reason_len == 0)
		return CVM_E_INVAL;
	reason[0] = '\0';
	r = cvm_chain_encode_boot_call(query, bi, &data, &data_len);
	if (r != CVM_OK) {
		set_err(err, err_len, "the boot info cannot be encoded: %s", cvm_strerror(r));
		goto out;
	}
	r = cvm_chain_eth_call(c, kms_contract, data, data_len, &ret, &ret_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	if (ret_len == 0) {
		cvm_hex_encode(kms_contract, CVM_CHAIN_ADDRESS_LEN, to_hex);
		set_err(err, err_len, "no contract answers at 0x%s on the chain node (empty eth_call result)",
		        to_hex);
		r = CVM_E_NOT_FOUND;
		goto out;
	}
	r = cvm_chain_decode_bool_string(ret, ret_len, is_allowed, reason, reason_len);
	if (r != CVM_OK)
		set_err(err, err_len, "the contract's answer is not an ABI-encoded (bool, string): %s",
		        cvm_strerror(r));
out:
	free(ret);
	free(data);
	return r;
}
