/* What lib/acme's files share: the response parsers (tested by unit.acme
 * and fuzz_acme through this header), base64url and the JWS maker. */
#ifndef CVM_ACME_INT_H
#define CVM_ACME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/acme.h>

/* Caps on lists in responses. */
#define ACME_CHALLENGES_MAX 16
#define ACME_TOKEN_MAX 256
#define ACME_STATUS_TEXT_MAX 32
/* A problem's detail as it goes into a sentence. */
#define ACME_DETAIL_MAX 300

enum acme_status {
	ACME_ST_UNKNOWN = 0,
	ACME_ST_PENDING,
	ACME_ST_READY,
	ACME_ST_PROCESSING,
	ACME_ST_VALID,
	ACME_ST_INVALID,
	ACME_ST_DEACTIVATED,
	ACME_ST_EXPIRED,
	ACME_ST_REVOKED,
};

/* Every string below is a new NUL-terminated copy (freed by the matching
 * _cleanup); every URL has passed acme_url_syntax_ok. */
struct acme_directory {
	char *new_nonce;
	char *new_account;
	char *new_order;
	char *revoke_cert; /* optional */
	char *key_change;  /* optional */
};

struct acme_account {
	enum acme_status status;
};

struct acme_order {
	enum acme_status status;
	char **authorizations;
	size_t authorization_count;
	char *finalize;
	char *certificate; /* NULL until the order is valid */
	char *error;       /* the problem's sentence, or NULL */
};

struct acme_challenge {
	char *type; /* "http-01", "dns-01", or any other (kept, not used) */
	char *url;
	char *token; /* NULL for a type without one; base64url when present */
	enum acme_status status;
	char *error;
};

struct acme_authz {
	enum acme_status status;
	char *domain; /* the "dns" identifier's value */
	bool wildcard;
	struct acme_challenge challenges[ACME_CHALLENGES_MAX];
	size_t challenge_count;
};

/* acme_status_name is the RFC 8555 spelling of `s` ("pending", ...). */
const char *acme_status_name(enum acme_status s);
/* acme_url_syntax_ok is true when `s` is 9..CVM_ACME_URL_MAX printable
 * ASCII characters without spaces, starting with "https://" or "http://"
 * (the client decides whether http is allowed). */
bool acme_url_syntax_ok(const char *s, size_t len);
/* acme_token_ok is true when `s` is 1..ACME_TOKEN_MAX base64url characters. */
bool acme_token_ok(const char *s, size_t len);

/* The parsers read a JSON body of `len` bytes (at most CVM_ACME_JSON_MAX,
 * an object, no duplicate keys). On failure the output is empty. They
 * return 0, CVM_E_FORMAT (malformed JSON, a missing or mistyped member, a
 * bad URL or token), CVM_E_TOO_LARGE (a body, string or list over its cap)
 * or CVM_E_NOMEM. */
int acme_parse_directory(const uint8_t *buf, size_t len, struct acme_directory *out);
void acme_directory_cleanup(struct acme_directory *d);
int acme_parse_account(const uint8_t *buf, size_t len, struct acme_account *out);
int acme_parse_order(const uint8_t *buf, size_t len, struct acme_order *out);
void acme_order_cleanup(struct acme_order *o);
int acme_parse_authz(const uint8_t *buf, size_t len, struct acme_authz *out);
void acme_authz_cleanup(struct acme_authz *a);
/* acme_parse_problem writes one sentence for a problem document (RFC 7807:
 * "type" and "detail", both optional) into `out` (always NUL-terminated):
 * the type without its "urn:ietf:params:acme:error:" prefix, then the
 * detail with any non-printable character replaced by '?', cut at
 * ACME_DETAIL_MAX. `type_out` (may be NULL) receives the short type.
 * Returns 0 or CVM_E_FORMAT/CVM_E_TOO_LARGE (then `out` says the body was
 * not a problem document). */
int acme_parse_problem(const uint8_t *buf, size_t len, char *out, size_t out_len, char *type_out,
                       size_t type_len);

/* acme_b64url writes the unpadded base64url encoding of `len` bytes and a
 * NUL into a new string, or returns NULL (out of memory). */
char *acme_b64url(const uint8_t *p, size_t len);
/* acme_b64url_to writes it into `out`, which holds out_len bytes; false
 * when it does not fit. */
bool acme_b64url_to(const uint8_t *p, size_t len, char *out, size_t out_len);
/* acme_jwk_json writes the public JWK of `kp` with its members in
 * lexicographic order and no white space (the RFC 7638 form) and a NUL
 * into `out`. */
#define ACME_JWK_JSON_LEN 128
void acme_jwk_json(const struct cvm_p256_keypair *kp, char out[ACME_JWK_JSON_LEN]);
/* acme_jws makes the flattened JWS JSON (RFC 7515, 7.2.2; RFC 8555, 6.2)
 * of `payload` (NULL: the empty payload of a POST-as-GET) for `url` with
 * `nonce`, ES256 by `kp`, identified by `kid` or, when kid is NULL, by its
 * JWK. *out is a new NUL-terminated string. Returns 0, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
int acme_jws(const struct cvm_p256_keypair *kp, const char *kid, const char *nonce, const char *url,
             const char *payload, char **out);

#endif
