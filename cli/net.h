/* The CLI's HTTP/1.1-over-TLS client pieces, shared by the commands that
 * talk to a TLS peer themselves (cvm cert ratls fetch, cvm snapshot, cvm
 * verify): a TCP connection with timeouts, a full write, and one bounded
 * answer read. The TLS session itself is the caller's (lib/tls and its
 * RA-TLS verifier). */
#ifndef CVM_CLI_NET_H
#define CVM_CLI_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define CLI_NET_HEADERS_MAX ((size_t)16 * 1024) /* an answer's status line and headers */

/* cli_net_dial connects a TCP socket to HOST:PORT (every address
 * getaddrinfo gives, in order) with send and receive timeouts of
 * `timeout_s`. On failure it prints "cvm <cmd>: cannot resolve ..." or
 * "cannot connect to <what>: <why><hint>" and returns -1. */
int cli_net_dial(const char *cmd, const char *host, const char *port, const char *what, const char *hint,
                 unsigned timeout_s);

/* cli_net_write_all writes all `len` bytes, or returns false. */
bool cli_net_write_all(SSL *ssl, const char *p, size_t len);

/* cli_net_post_json sends "POST PATH" with the JSON `body` to HOST (one
 * request, Connection: close), or returns false. */
bool cli_net_post_json(SSL *ssl, const char *host, const char *path, const char *body);

/* cli_net_close ends a connection: TLS close_notify, then frees the session
 * and its context and closes the socket (each may be NULL or -1), leaving
 * no OpenSSL error behind. */
void cli_net_close(SSL *ssl, SSL_CTX *ctx, int fd);

/* cli_net_read_reply reads one HTTP/1.1 answer of at most `max` bytes in all:
 * its status code into *status, and its body, framed by its one
 * Content-Length or, without one, ending at the peer's close, into a new
 * NUL-terminated buffer (*body, *body_len). Nothing after the answer is read.
 * Returns 0, CVM_E_FORMAT (not an HTTP/1.1 status line, a repeated or bad
 * Content-Length), CVM_E_TOO_LARGE, CVM_E_TRUNCATED (the peer closed inside
 * the answer), CVM_E_SYSTEM (nothing came: a timeout or a reset) or
 * CVM_E_NOMEM. */
int cli_net_read_reply(SSL *ssl, size_t max, int *status, uint8_t **body, size_t *body_len);

#endif
