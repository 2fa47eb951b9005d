/* The CLI's connection pieces, shared by the commands that talk to a TLS
 * peer themselves (cvm cert ratls fetch, cvm snapshot, cvm verify, cvm
 * kms): lib/tls's client (include/cvmkit/tls.h: the request and the
 * bounded answer) with the CLI's messages. The TLS session itself is the
 * caller's (lib/tls and its RA-TLS verifier). */
#ifndef CVM_CLI_NET_H
#define CVM_CLI_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <cvmkit/tls.h>

/* cli_net_dial connects a TCP socket to HOST:PORT (every address
 * getaddrinfo gives, in order) with send and receive timeouts of
 * `timeout_s`. On failure it prints "cvm <cmd>: cannot resolve ..." or
 * "cannot connect to <what>: <why><hint>" and returns -1. */
int cli_net_dial(const char *cmd, const char *host, const char *port, const char *what, const char *hint,
                 unsigned timeout_s);

/* A libcurl answer collected in memory (CURLOPT_WRITEFUNCTION
 * cli_reply_collect, CURLOPT_WRITEDATA the struct): at most `max` bytes,
 * NUL-terminated; a longer answer sets `too_large` and ends the transfer.
 * The caller frees `buf`. */
struct cli_reply {
	char *buf;
	size_t len, max;
	bool too_large;
};
size_t cli_reply_collect(char *p, size_t size, size_t n, void *ctx);

/* cli_net_close ends a connection: TLS close_notify, then frees the session
 * and its context and closes the socket (each may be NULL or -1), leaving
 * no OpenSSL error behind. */
void cli_net_close(SSL *ssl, SSL_CTX *ctx, int fd);

#endif
