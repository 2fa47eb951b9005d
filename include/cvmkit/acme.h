/* An ACME v2 client (RFC 8555) over libcurl: accounts with an ES256 (P-256)
 * key, orders for DNS names, http-01 and dns-01 challenges answered through
 * a caller's solver, finalization with a CSR whose key never leaves the
 * caller, the certificate chain's download, revocation, and the renewal
 * rule. The server is not trusted beyond what RFC 8555 gives it: every
 * response body is capped and parsed with bounds, every URL it names must
 * be https (unless the caller allows http for tests), and its errors
 * ("problem documents", RFC 7807) become one sentence in
 * cvm_acme_client_error. */
#ifndef CVMKIT_ACME_H
#define CVMKIT_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"

/* Caps on what the server sends. */
#define CVM_ACME_JSON_MAX ((size_t)64 * 1024)   /* a JSON response body */
#define CVM_ACME_CHAIN_MAX ((size_t)256 * 1024) /* a PEM certificate chain */
#define CVM_ACME_URL_MAX 2048                   /* a URL the server names */
#define CVM_ACME_NAMES_MAX 64                   /* names in one order (CVM_CERT_ALT_NAMES_MAX) */
#define CVM_ACME_ERR_LEN 512                    /* cvm_acme_client_error's sentence */
/* The default bound of each wait for the server (an authorization, an
 * order), in seconds. */
#define CVM_ACME_POLL_TIMEOUT_DEFAULT 300
/* A JWK thumbprint (RFC 7638, SHA-256) in base64url without padding, and a
 * dns-01 TXT value, which has the same form: 43 characters. */
#define CVM_ACME_B64_SHA256_LEN 43

/* struct cvm_acme_config says where the CA is and how to reach it. Every
 * pointer is borrowed for the client's life. */
struct cvm_acme_config {
	const char *directory_url; /* https://.../directory */
	const char *ca_bundle;     /* PEM roots for the ACME server's own TLS; NULL: the system's */
	bool allow_insecure_http;  /* TESTS ONLY: accept http:// URLs */
	unsigned poll_timeout_s;   /* bound of each wait; 0: CVM_ACME_POLL_TIMEOUT_DEFAULT */
	/* progress, when set, receives one line (no newline) per long step:
	 * each poll of an authorization or an order. */
	void (*progress)(void *ctx, const char *line);
	void *progress_ctx;
};

struct cvm_acme_client;

/* cvm_acme_client_new makes a client for the directory `cfg` names, acting
 * with `account_key` (borrowed: it must outlive the client). It fetches
 * nothing yet. Returns 0, CVM_E_INVAL (no directory URL, or one that is not
 * https without allow_insecure_http), CVM_E_NOMEM or CVM_E_SYSTEM (libcurl
 * did not start). */
CVM_API CVM_MUST_CHECK int cvm_acme_client_new(const struct cvm_acme_config *cfg,
                                               const struct cvm_p256_keypair *account_key,
                                               struct cvm_acme_client **out);
/* cvm_acme_client_free frees `c`; NULL is a no-op. */
CVM_API void cvm_acme_client_free(struct cvm_acme_client *c);
/* cvm_acme_client_error is one sentence about the last failure of `c`
 * (what failed, and the server's problem type and detail when it sent one),
 * or "" when nothing failed. It stays valid until the next call on `c`. */
CVM_API const char *cvm_acme_client_error(const struct cvm_acme_client *c);
/* cvm_acme_account_url is the account's URL ("kid") once
 * cvm_acme_account succeeded, else NULL. */
CVM_API const char *cvm_acme_account_url(const struct cvm_acme_client *c);

/* cvm_acme_account finds or registers the account of the client's key.
 * With `only_existing`, it only looks it up (onlyReturnExisting) and fails
 * with CVM_E_POLICY when the CA knows no account for the key. Otherwise it
 * registers the key, agreeing to the CA's terms of service, with contact
 * "mailto:<email>" when `email` is not NULL (or finds the existing account).
 * Returns 0, CVM_E_POLICY (the CA refused), CVM_E_FORMAT (a malformed
 * answer), CVM_E_TOO_LARGE, CVM_E_SYSTEM (the network), CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_acme_account(struct cvm_acme_client *c, const char *email, bool only_existing);

enum cvm_acme_challenge_type {
	CVM_ACME_HTTP_01 = 1,
	CVM_ACME_DNS_01 = 2,
};

/* struct cvm_acme_solver answers one kind of challenge. For http-01,
 * present must serve `value` (the key authorization) as the body of
 * http://<domain>/.well-known/acme-challenge/<token>; for dns-01 it must put
 * `value` in a TXT record of _acme-challenge.<domain>. present returns 0
 * when done (any other value aborts the order); cleanup undoes it and is
 * called once for every successful present. `token` is checked to be
 * base64url text before present sees it. */
struct cvm_acme_solver {
	enum cvm_acme_challenge_type type;
	int (*present)(void *ctx, const char *domain, const char *token, const char *value);
	void (*cleanup)(void *ctx, const char *domain, const char *token, const char *value);
	void *ctx;
};

/* cvm_acme_issue orders a certificate for the `name_count` DNS names
 * (cvm_dns_name_ok, different from each other, 1..CVM_ACME_NAMES_MAX),
 * answers each pending authorization with `solver`, waits for the order
 * (polling with the server's Retry-After, each wait bounded), finalizes it
 * with a CSR of `cert_key` (only the CSR goes out) and downloads the chain.
 * It checks that the chain parses, that its first certificate holds the key
 * of `cert_key`. cvm_acme_account must have succeeded. *chain_pem is a new
 * NUL-terminated PEM text (the leaf first) that the caller frees. Returns 0,
 * CVM_E_POLICY (the CA refused: a failed challenge, a rejected order),
 * CVM_E_EXPIRED (a wait ran out of time), CVM_E_MISMATCH (a chain for
 * another key), CVM_E_INVAL, CVM_E_FORMAT, CVM_E_TOO_LARGE, CVM_E_SYSTEM,
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_acme_issue(struct cvm_acme_client *c, const char *const *names,
                                          size_t name_count, const struct cvm_acme_solver *solver,
                                          const struct cvm_p256_keypair *cert_key, char **chain_pem,
                                          size_t *chain_len);

/* cvm_acme_revoke asks the CA to revoke the certificate `cert_der` (DER),
 * signed by the account key (cvm_acme_account must have succeeded), with the
 * RFC 5280 CRLReason `reason` (0..10, not 7; 0: unspecified). Returns 0,
 * CVM_E_POLICY (the CA refused; "alreadyRevoked" among others, named in
 * cvm_acme_client_error), CVM_E_INVAL, CVM_E_FORMAT, CVM_E_SYSTEM,
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_acme_revoke(struct cvm_acme_client *c, const uint8_t *cert_der, size_t len,
                                           int reason);

/* -- Pure helpers (no network) -- */

/* cvm_acme_jwk_thumbprint writes the RFC 7638 SHA-256 thumbprint of the
 * public JWK of `kp` ({"crv":"P-256","kty":"EC","x":...,"y":...}) in
 * base64url without padding, and a NUL. */
CVM_API void cvm_acme_jwk_thumbprint(const struct cvm_p256_keypair *kp,
                                     char out[CVM_ACME_B64_SHA256_LEN + 1]);
/* cvm_acme_key_authorization writes token "." thumbprint (RFC 8555, 8.1)
 * into a new NUL-terminated string the caller frees. `token` must be
 * base64url text of 1..256 characters. Returns 0, CVM_E_INVAL or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_acme_key_authorization(const struct cvm_p256_keypair *kp, const char *token,
                                                      char **out);
/* cvm_acme_dns01_value writes base64url(SHA-256(key_authorization)), the
 * TXT value of a dns-01 challenge (RFC 8555, 8.4), and a NUL. */
CVM_API void cvm_acme_dns01_value(const char *key_authorization, char out[CVM_ACME_B64_SHA256_LEN + 1]);
/* cvm_acme_renewal_due is true when a certificate valid from `not_before`
 * to `not_after` should be renewed at `now` (all Unix seconds): with
 * `before_s` > 0, when less than `before_s` seconds remain; otherwise when
 * less than part_num/part_den of its lifetime remains (1/3 when part_den is
 * 0). An expired or malformed window is always due. */
CVM_API bool cvm_acme_renewal_due(int64_t not_before, int64_t not_after, int64_t now, int64_t before_s,
                                  unsigned part_num, unsigned part_den);

#endif
