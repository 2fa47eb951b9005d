/* Attested TLS over OpenSSL: an SSL_CTX that presents an RA-TLS
 * certificate, a client (or mutual) SSL_CTX whose verify callback checks the
 * peer's RA-TLS evidence with a cvm_ratls_verifier instead of the web PKI,
 * and the fresh, connection-bound attestation that a relay cannot pass.
 * Works with libcurl (CURLOPT_SSL_CTX_FUNCTION: cvm_tls_ctx_attach_verifier)
 * and libevent (bufferevent_openssl over an SSL from these contexts). */
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

/* cvm_tls_fresh_nonce computes `bound` on an established TLS 1.3 connection. */
CVM_API CVM_MUST_CHECK int cvm_tls_fresh_nonce(SSL *ssl, const uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN],
                                               uint8_t out[CVM_TLS_FRESH_BOUND_LEN]);

/* cvm_tls_server_ctx_new makes a TLS 1.3-only server context presenting
 * the certificate chain `chain_pem` (leaf first) for `key`. With `client_verifier`
 * not NULL it requires a client certificate and checks it (mutual RA-TLS). */
CVM_API CVM_MUST_CHECK int cvm_tls_server_ctx_new(const char *chain_pem, const struct cvm_p256_keypair *key,
                                                  struct cvm_ratls_verifier *client_verifier, SSL_CTX **out);

/* cvm_tls_client_ctx_new makes a TLS 1.3-only client context that verifies
 * the server's RA-TLS chain with `v` in the verify callback (no web PKI);
 * with `chain_pem`/`key` it presents a client certificate (mutual). */
CVM_API CVM_MUST_CHECK int cvm_tls_client_ctx_new(struct cvm_ratls_verifier *v, const char *chain_pem,
                                                  const struct cvm_p256_keypair *key, SSL_CTX **out);

/* cvm_tls_ctx_attach_verifier gives an existing context (e.g. libcurl's, in
 * its CURLOPT_SSL_CTX_FUNCTION) the RA-TLS verify callback of `v`. */
CVM_API CVM_MUST_CHECK int cvm_tls_ctx_attach_verifier(SSL_CTX *ctx, struct cvm_ratls_verifier *v);

/* cvm_tls_peer_verdict returns the verdict the callback reached for the
 * peer of `ssl` (NULL before the handshake or when it failed), and
 * cvm_tls_peer_error the one-line reason of a failed check. */
CVM_API const struct cvm_ratls_verdict *cvm_tls_peer_verdict(const SSL *ssl);
CVM_API const char *cvm_tls_peer_error(const SSL *ssl);

#endif
