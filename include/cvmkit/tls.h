/* Attested TLS over OpenSSL: an SSL_CTX that presents an RA-TLS
 * certificate, a client (or mutual) SSL_CTX whose verify callback checks the
 * peer's RA-TLS evidence with a cvm_ratls_verifier instead of the web PKI,
 * and the fresh, connection-bound attestation that a relay cannot pass.
 * Works with libcurl (CURLOPT_SSL_CTX_FUNCTION: cvm_tls_ctx_attach_verifier)
 * and libevent (bufferevent_openssl over an SSL from these contexts).
 * See docs/attested-tls.md.
 *
 * Lifetimes: a verifier given to a context is borrowed, not copied: it must
 * outlive that context and every SSL made from it (one verifier may serve
 * many contexts and threads). The key and chain are copied into the context
 * (OpenSSL takes its own reference) and may be freed after the call.
 *
 * The check: the contexts install OpenSSL's certificate-verification
 * callback (SSL_CTX_set_cert_verify_callback), which replaces OpenSSL's
 * chain verification: once per handshake, on the whole chain the peer sent
 * (leaf first, at most 8 certificates), cvm_ratls_verifier_check at the
 * current time decides; there is no trust store, no web PKI. Contexts are
 * TLS 1.3 only and resume no session (a resumed session would present no
 * certificate to check). */
#ifndef CVMKIT_TLS_H
#define CVMKIT_TLS_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratls.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/* The fresh attestation: the client picks a 32-byte nonce; both sides
 * compute bound = TLS exporter (RFC 8446 §7.5) with label
 * CVM_TLS_FRESH_LABEL, context = the client's nonce, 64 bytes. The server
 * quotes over cvm_ratls_fresh_report_data(bound) and answers with a
 * VersionedAttestation; the client checks it with cvm_ratls_check_fresh.
 * A relay terminates one TLS session and opens another: the two sessions'
 * exporters differ, so the answer cannot match.
 *
 * On the wire (cvm-agentd's TLS listener, `cvm cert ratls fetch`), over the
 * same TLS connection, HTTP/1.1:
 *   POST /FreshAttest  {"nonce": "<64 hex digits: the 32-byte nonce>"}
 *   200 {"attestation": "<hex of the VersionedAttestation V0>"}
 */
#define CVM_TLS_FRESH_LABEL "EXPORTER-cvmkit-fresh-attestation-v1"
#define CVM_TLS_FRESH_NONCE_LEN 32u
#define CVM_TLS_FRESH_BOUND_LEN 64u

/* cvm_tls_fresh_nonce computes `bound` on an established TLS 1.3 connection.
 * Returns 0, CVM_E_INVAL (no SSL, or the handshake has not finished),
 * CVM_E_UNSUPPORTED (not TLS 1.3) or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_tls_fresh_nonce(SSL *ssl, const uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN],
                                               uint8_t out[CVM_TLS_FRESH_BOUND_LEN]);

/* cvm_tls_server_ctx_new makes a TLS 1.3-only server context presenting
 * the certificate chain `chain_pem` (leaf first) for `key`. With `client_verifier`
 * not NULL it requires a client certificate and checks it (mutual RA-TLS).
 * It sends no session tickets. Returns 0, CVM_E_INVAL (a key that is not
 * the leaf's), CVM_E_FORMAT (no PEM certificate), CVM_E_TOO_LARGE, CVM_E_NOMEM
 * or CVM_E_CRYPTO; *out is freed with SSL_CTX_free. */
CVM_API CVM_MUST_CHECK int cvm_tls_server_ctx_new(const char *chain_pem, const struct cvm_p256_keypair *key,
                                                  struct cvm_ratls_verifier *client_verifier, SSL_CTX **out);

/* cvm_tls_client_ctx_new makes a TLS 1.3-only client context that verifies
 * the server's RA-TLS chain with `v` in the verify callback (no web PKI);
 * with `chain_pem`/`key` it presents a client certificate (mutual). `v` is
 * required (CVM_E_INVAL without it). Returns as cvm_tls_server_ctx_new. */
CVM_API CVM_MUST_CHECK int cvm_tls_client_ctx_new(struct cvm_ratls_verifier *v, const char *chain_pem,
                                                  const struct cvm_p256_keypair *key, SSL_CTX **out);

/* cvm_tls_ctx_attach_verifier gives an existing context (e.g. libcurl's, in
 * its CURLOPT_SSL_CTX_FUNCTION) the RA-TLS verify callback of `v`, with
 * SSL_VERIFY_PEER (a server context then requires a client certificate),
 * TLS 1.3 only and no session cache. With libcurl's CURLOPT_SSL_VERIFYPEER
 * on, the callback's result is what libcurl sees. */
CVM_API CVM_MUST_CHECK int cvm_tls_ctx_attach_verifier(SSL_CTX *ctx, struct cvm_ratls_verifier *v);

/* cvm_tls_ctx_client_cert_optional makes a server context from
 * cvm_tls_server_ctx_new (with a client verifier) accept clients that send
 * no certificate, as dstack's KMS does for its public methods; a client
 * certificate that is sent is still checked, and a failed check still
 * aborts the handshake. The server must then require a verdict
 * (cvm_tls_peer_verdict not NULL) wherever the client must be attested.
 * Returns 0 or CVM_E_INVAL (no verifier attached). */
CVM_API CVM_MUST_CHECK int cvm_tls_ctx_client_cert_optional(SSL_CTX *ctx);

/* cvm_tls_peer_verdict returns the verdict the callback reached for the
 * peer of `ssl` (NULL before the handshake or when it failed), valid as long
 * as `ssl`; its spans into the parsed evidence are cleared, its copied
 * fields are kept. cvm_tls_peer_error is the one-line reason of a failed
 * check (NULL when no check failed). */
CVM_API const struct cvm_ratls_verdict *cvm_tls_peer_verdict(const SSL *ssl);
CVM_API const char *cvm_tls_peer_error(const SSL *ssl);

/* ==== a client of an HTTP/1.1 JSON RPC over TLS (lib/tls/client.c) ==========
 * What cvmkit's own clients of an attested peer share (cvm-agentd asking a
 * KMS for its keys, cvm-kmsd onboarding from another node, the `cvm` CLI): a
 * target, a TCP connection with timeouts, one POST and one bounded answer.
 * The TLS session and its verifier are the caller's (the contexts above). */

#define CVM_TLS_HOST_MAX 256u
#define CVM_TLS_PORT_MAX 8u
#define CVM_TLS_PREFIX_MAX 256u
#define CVM_TLS_REPLY_HEADERS_MAX ((size_t)16 * 1024) /* status line and headers */

/* struct cvm_tls_target is a peer to call: HOST:PORT, or an https URL
 * (dstack's kms_urls, "https://kms.example:8000" or "https://h/kms"),
 * whose path becomes `prefix` ("" or "/kms", no trailing slash). */
struct cvm_tls_target {
	char host[CVM_TLS_HOST_MAX]; /* an IPv6 address without its brackets */
	char port[CVM_TLS_PORT_MAX];
	char prefix[CVM_TLS_PREFIX_MAX];
};

/* cvm_tls_target_parse reads "HOST:PORT", "[V6]:PORT" or
 * "https://HOST[:PORT][/PATH]" (port 443 when absent; no query, fragment
 * or user info). Returns 0 or CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_tls_target_parse(const char *text, struct cvm_tls_target *out);

/* cvm_tls_dial connects a TCP socket to the target (each address
 * getaddrinfo gives, in order) with send and receive timeouts of
 * `timeout_s` and no Nagle delay. Returns the socket, or -1 with `err`
 * ("cannot resolve ...", "cannot connect to HOST:PORT: why"). */
CVM_API int cvm_tls_dial(const struct cvm_tls_target *t, unsigned timeout_s, char *err, size_t err_len);

/* cvm_tls_write_all writes `len` bytes. Returns true when all went. */
CVM_API bool cvm_tls_write_all(SSL *ssl, const void *p, size_t len);

/* cvm_tls_post_json sends one "POST PATH HTTP/1.1" with a JSON body, in one
 * write, asking the peer to close after its answer. Returns true when sent. */
CVM_API bool cvm_tls_post_json(SSL *ssl, const char *host, const char *path, const char *body);

/* cvm_tls_reply_parse reads an HTTP/1.1 answer from the `len` bytes at
 * `buf`; `closed` says the peer closed after them. With a complete answer
 * it sets *status and the body's span (*body_off, *body_len) and returns 0.
 * Returns CVM_E_TRUNCATED while more bytes are needed (an answer without
 * Content-Length ends at the close), CVM_E_FORMAT (not an HTTP/1.1 status
 * line, a repeated or malformed Content-Length, a truncated answer after
 * the close) or CVM_E_TOO_LARGE (headers over CVM_TLS_REPLY_HEADERS_MAX, or
 * a body that cannot fit in `max` bytes with them). */
CVM_API CVM_MUST_CHECK int cvm_tls_reply_parse(const uint8_t *buf, size_t len, bool closed, size_t max,
                                               int *status, size_t *body_off, size_t *body_len);

/* cvm_tls_read_reply reads one answer of at most `max` bytes (headers
 * included) and gives its status and a NUL-terminated copy of its body
 * (*body, malloc'd, free it with cvm_freezero: it may hold keys); its
 * scratch buffer is wiped. Returns 0, CVM_E_SYSTEM (nothing came: the
 * connection failed or timed out), CVM_E_TRUNCATED, CVM_E_FORMAT,
 * CVM_E_TOO_LARGE or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tls_read_reply(SSL *ssl, size_t max, int *status, uint8_t **body,
                                              size_t *body_len);

#endif
