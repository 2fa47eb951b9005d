/* lib/chain's library-internal interface (for the modules that depend on
 * it, lib/kmsauth): the HTTP pieces every libcurl client of an
 * authorization peer needs. */
#ifndef CVM_CHAIN_LIB_H
#define CVM_CHAIN_LIB_H

#include <stdbool.h>
#include <stddef.h>

#include <cvmkit/bytes.h>

/* chain_url_ok accepts an http:// or https:// URL of at most `max` bytes
 * with a host and no space or control character. */
bool chain_url_ok(const char *url, size_t max);

/* chain_url_origin writes the scheme, host and port of the checked URL
 * `url` to `out` (of `out_len` bytes): URLs may carry credentials in their
 * user part or path (node API keys), and error messages end up in logs. */
void chain_url_origin(const char *url, char *out, size_t out_len);

/* struct chain_reply collects a reply body of at most body.max bytes
 * (cvm_wr_init(&body, max)); chain_on_body is its CURLOPT_WRITEFUNCTION:
 * a body over the cap sets too_large and stops the transfer. */
struct chain_reply {
	struct cvm_wr body;
	bool too_large;
};
size_t chain_on_body(char *p, size_t size, size_t n, void *ctx);

#endif
