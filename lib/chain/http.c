/* The HTTP pieces of lib/chain's client, shared with lib/kmsauth's webhook
 * client (chain_lib.h). */
#include <stdio.h>
#include <string.h>

#include "chain_lib.h"

bool chain_url_ok(const char *url, size_t max)
{
	size_t n = strnlen(url, max + 1), scheme;

	if (n > max)
		return false;
	if (strncmp(url, "http://", 7) == 0)
		scheme = 7;
	else if (strncmp(url, "https://", 8) == 0)
		scheme = 8;
	else
		return false;
	if (url[scheme] == '\0')
		return false; /* no host */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return false;
	return true;
}

void chain_url_origin(const char *url, char *out, size_t out_len)
{
	const char *sep = strstr(url, "://"), *host, *at;
	size_t n;

	if (sep == NULL) {
		(void)snprintf(out, out_len, "(bad URL)");
		return;
	}
	host = sep + 3;
	n = strcspn(host, "/?#");
	at = memchr(host, '@', n);
	if (at != NULL) {
		n -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	(void)snprintf(out, out_len, "%.*s%.*s", (int)(sep + 3 - url), url, (int)n, host);
}

size_t chain_on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct chain_reply *rp = ctx;
	size_t len = size * n;

	if (len > rp->body.max - rp->body.len) {
		rp->too_large = true;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	cvm_wr_bytes(&rp->body, p, len);
	return rp->body.err ? 0 : len;
}
