/* The KMS's own evidence: a VersionedAttestation from the guest agent that
 * runs beside it in the same CVM (dstack's KMS does the same through its
 * local agent), over that agent's unix socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/encoding.h>

#include "kms.h"

#define SELF_REPLY_MAX ((size_t)4 * 1024 * 1024)
#define SELF_TIMEOUT_MS 30000L

struct buf {
	char *p;
	size_t len;
	bool over;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;
	char *q;

	if (len > SELF_REPLY_MAX - b->len) {
		b->over = true;
		return 0;
	}
	q = realloc(b->p, b->len + len + 1);
	if (q == NULL)
		return 0;
	memcpy(q + b->len, p, len);
	b->p = q;
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

int kms_self_attest(const char *agent, const uint8_t report_data[64], uint8_t **va, size_t *va_len, char *err,
                    size_t err_len)
{
	char body[160], hex[129];
	struct curl_slist *hdr = NULL;
	struct buf b = {NULL, 0, false};
	json_error_t jerr;
	json_t *root = NULL, *att;
	long status = 0;
	CURLcode cr;
	CURL *c;
	int r = CVM_E_UPSTREAM;

	*va = NULL;
	*va_len = 0;
	if (strncmp(agent, "unix:", 5) != 0 || agent[5] == '\0') {
		(void)snprintf(err, err_len, "the agent address must be unix:/path");
		return CVM_E_INVAL;
	}
	cvm_hex_encode(report_data, 64, hex);
	(void)snprintf(body, sizeof(body), "{\"report_data\":\"%s\"}", hex);
	c = curl_easy_init();
	if (c == NULL)
		return CVM_E_NOMEM;
	hdr = curl_slist_append(NULL, "Content-Type: application/json");
	(void)curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, agent + 5);
	(void)curl_easy_setopt(c, CURLOPT_URL, "http://localhost/Attest");
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, SELF_TIMEOUT_MS);
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	cr = curl_easy_perform(c);
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (cr != CURLE_OK) {
		(void)snprintf(err, err_len, "the guest agent at %s does not answer: %s", agent,
		               b.over ? "its answer is too large" : curl_easy_strerror(cr));
		goto out;
	}
	root = json_loadb(b.p != NULL ? b.p : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
	if (status != 200 || root == NULL) {
		(void)snprintf(err, err_len, "the guest agent at %s answered %ld%s", agent, status,
		               root == NULL ? " and no JSON" : "");
		goto out;
	}
	att = json_object_get(root, "attestation");
	if (!json_is_string(att) || json_string_length(att) % 2 != 0 || json_string_length(att) == 0) {
		(void)snprintf(err, err_len, "the guest agent's answer has no attestation");
		goto out;
	}
	*va_len = json_string_length(att) / 2;
	*va = malloc(*va_len);
	if (*va == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = cvm_hex_decode_exact(json_string_value(att), json_string_length(att), *va, *va_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "the guest agent's attestation is not hex");
		free(*va);
		*va = NULL;
		*va_len = 0;
	}
out:
	json_decref(root);
	free(b.p);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return r;
}
