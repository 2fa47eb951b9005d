/* GetAppEnvEncryptPubKey, proxied to the KMS ([vmm] kms_urls, the KMSs as
 * the host reaches them, else [cvm] kms_urls, the guests' view; in order), as
 * dstack's VMM does: the deployer (the web UI, `cvm app encrypt-env`) needs
 * the app's env public key, and the KMS signs it. The KMS's TLS certificate
 * is not checked, as dstack's clients do not check it either: what
 * authenticates the answer is the KMS's k256 signature over (app id,
 * timestamp, key), which the deployer checks against the KMS key it pins
 * (docs/cli/cvm-app.md). cvm-vmmd passes the answer on as it came, after
 * checking that it is a JSON object with a public key.
 *
 * The call blocks the daemon's one thread for at most VMM_KMS_TIMEOUT_S per
 * URL (docs/daemons/cvm-vmmd.md says so): a KMS that does not answer delays
 * other requests by that much, no more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/err.h>

#include "vmm.h"

#define VMM_KMS_TIMEOUT_S 10L
#define VMM_KMS_CONNECT_S 3L
#define VMM_KMS_ANSWER_MAX ((size_t)64 * 1024)

struct answer {
	char *buf;
	size_t len;
	bool too_large;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct answer *a = ctx;
	size_t got = size * n;
	char *nb;

	if (got > VMM_KMS_ANSWER_MAX - a->len) {
		a->too_large = true;
		return 0;
	}
	nb = realloc(a->buf, a->len + got + 1);
	if (nb == NULL)
		return 0;
	a->buf = nb;
	memcpy(a->buf + a->len, p, got);
	a->len += got;
	a->buf[a->len] = '\0';
	return got;
}

/* ask_one POSTs {"app_id": hex} to one KMS; on success *out is the answer. */
static int ask_one(const char *base, const char *app_id_hex, json_t **out, char *err, size_t err_len)
{
	char url[VMM_URL_MAX + 64], body[96];
	struct curl_slist *hdrs = NULL;
	struct answer a = {0};
	json_error_t je;
	long status = 0;
	CURLcode cr;
	CURL *c;
	json_t *j;
	size_t n = strlen(base);

	while (n > 0 && base[n - 1] == '/')
		n--;
	(void)snprintf(url, sizeof(url), "%.*s/prpc/KMS.GetAppEnvEncryptPubKey?json", (int)n, base);
	(void)snprintf(body, sizeof(body), "{\"app_id\":\"%s\"}", app_id_hex);
	c = curl_easy_init();
	hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (c == NULL || hdrs == NULL) {
		curl_slist_free_all(hdrs);
		if (c != NULL)
			curl_easy_cleanup(c);
		(void)snprintf(err, err_len, "out of memory");
		return CVM_E_NOMEM;
	}
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, VMM_KMS_CONNECT_S) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, VMM_KMS_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a) != CURLE_OK)
		cr = CURLE_FAILED_INIT;
	else
		cr = curl_easy_perform(c);
	if (cr == CURLE_OK)
		(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (cr != CURLE_OK) {
		(void)snprintf(err, err_len, "%.200s: %s", base,
		               a.too_large ? "the answer is larger than 64 KiB" : curl_easy_strerror(cr));
		free(a.buf);
		return CVM_E_SYSTEM;
	}
	j = a.buf != NULL ? json_loadb(a.buf, a.len, JSON_REJECT_DUPLICATES, &je) : NULL;
	free(a.buf);
	if (status != 200 || !json_is_object(j) || !json_is_string(json_object_get(j, "public_key"))) {
		(void)snprintf(err, err_len, "%.200s answered %ld%s", base, status,
		               status == 200 ? " without a public_key" : "");
		json_decref(j);
		return CVM_E_FORMAT;
	}
	*out = j;
	return CVM_OK;
}

int vmm_kms_env_pubkey(const struct vmm_conf *c, const char *app_id_hex, json_t **out, char *err,
                       size_t err_len)
{
	char why[VMM_KMS_URLS_ERR];
	size_t used = 0;
	int r = CVM_E_INVAL;

	*out = NULL;
	if (c->host_kms_url_count == 0) {
		(void)snprintf(err, err_len, "no KMS is configured ([vmm] kms_urls or [cvm] kms_urls)");
		return CVM_E_INVAL;
	}
	why[0] = '\0';
	for (size_t i = 0; i < c->host_kms_url_count; i++) {
		char one[320];

		r = ask_one(c->host_kms_urls[i], app_id_hex, out, one, sizeof(one));
		if (r == CVM_OK)
			return CVM_OK;
		if (used < sizeof(why)) {
			int w = snprintf(why + used, sizeof(why) - used, "%s%s", used != 0 ? "; " : "", one);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	(void)snprintf(err, err_len, "no KMS gave the env key: %s", why);
	return r;
}
