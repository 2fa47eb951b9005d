/* Certificate Transparency (RFC 6962, v1 logs): the parsers of what a log
 * answers, the Merkle tree checks, and a client of its HTTP API, for a
 * monitor that watches the certificates issued for a domain (`cvm ct
 * monitor`, cvm-gatewayd). Every answer of a log is untrusted: sizes are
 * capped (the _MAX below) and every byte is read through cvm_rd. */
#ifndef CVMKIT_CT_H
#define CVMKIT_CT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "crypto.h"
#include "err.h"

#define CVM_CT_STH_JSON_MAX ((size_t)16 * 1024)    /* bytes of a get-sth answer */
#define CVM_CT_PROOF_JSON_MAX ((size_t)64 * 1024)  /* bytes of a get-sth-consistency answer */
#define CVM_CT_ENTRIES_JSON_MAX ((size_t)32 << 20) /* bytes of a get-entries answer */
#define CVM_CT_SIG_MAX 1024u                       /* bytes of a tree head signature (RSA 4096 + DER slack) */
#define CVM_CT_PROOF_MAX 128u /* hashes of a consistency proof (2 * 64 is the most a tree can need) */
#define CVM_CT_LEAF_MAX ((size_t)512 * 1024) /* bytes of one leaf_input */
#define CVM_CT_EXTRA_MAX ((size_t)2 << 20)   /* bytes of one extra_data */
#define CVM_CT_BATCH_MAX 256u                /* entries asked for in one get-entries */
#define CVM_CT_NAMES_MAX 64u                 /* DNS names kept per entry */
#define CVM_CT_NAME_LEN 256u                 /* bytes of a name, NUL included */

/* struct cvm_ct_sth is a signed tree head (get-sth). */
struct cvm_ct_sth {
	uint64_t tree_size;
	uint64_t timestamp; /* milliseconds since the epoch */
	uint8_t root_hash[32];
	/* tree_head_signature: a DigitallySigned (RFC 5246 4.7) */
	uint8_t hash_alg, sig_alg; /* TLS HashAlgorithm (4: sha256), SignatureAlgorithm (1: rsa, 3: ecdsa) */
	uint8_t sig[CVM_CT_SIG_MAX];
	size_t sig_len;
};

/* cvm_ct_sth_parse reads a get-sth answer (`len` bytes of JSON: tree_size,
 * timestamp, sha256_root_hash, tree_head_signature). It verifies no
 * signature. Returns 0, CVM_E_FORMAT, CVM_E_TOO_LARGE (more than
 * CVM_CT_STH_JSON_MAX bytes, a longer signature) or CVM_E_UNSUPPORTED (a
 * hash other than SHA-256, a signature other than RSA or ECDSA). */
CVM_API CVM_MUST_CHECK int cvm_ct_sth_parse(const char *json, size_t len, struct cvm_ct_sth *out);

/* cvm_ct_sth_verify checks the tree head signature of `sth` with the log's
 * key `log_key`: the DigitallySigned over the TreeHeadSignature structure
 * (version v1, tree_hash, timestamp, tree_size, root hash), SHA-256 with
 * ECDSA or RSA PKCS#1 v1.5, whichever `log_key` is (a signature algorithm
 * that does not match the key fails). Returns 0 or CVM_E_SIGNATURE. */
CVM_API CVM_MUST_CHECK int cvm_ct_sth_verify(const struct cvm_ct_sth *sth, const struct cvm_pubkey *log_key);

/* cvm_ct_proof_parse reads a get-sth-consistency answer ({"consistency":
 * [base64 hashes]}) into `proof` (room for CVM_CT_PROOF_MAX hashes) and
 * sets *count. Returns 0, CVM_E_FORMAT or CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_ct_proof_parse(const char *json, size_t len, uint8_t (*proof)[32],
                                              size_t *count);

/* cvm_ct_consistency_verify checks that the tree of `size1` leaves and root
 * `root1` is a prefix of the tree of `size2` leaves and root `root2`
 * (RFC 9162 2.1.4.2, the same proofs as RFC 6962's). Equal sizes need an
 * empty proof and equal roots; a first size of 0 needs an empty proof.
 * Returns 0, CVM_E_INVAL (size1 > size2) or CVM_E_SIGNATURE (the proof does
 * not show it: the log rewrote its history, or lies). */
CVM_API CVM_MUST_CHECK int cvm_ct_consistency_verify(uint64_t size1, const uint8_t root1[32], uint64_t size2,
                                                     const uint8_t root2[32], const uint8_t (*proof)[32],
                                                     size_t count);

/* cvm_ct_leaf_hash writes SHA-256(0x00 || leaf), the Merkle hash of a leaf. */
CVM_API void cvm_ct_leaf_hash(const uint8_t *leaf, size_t len, uint8_t out[32]);

/* struct cvm_ct_entry is one log entry, parsed. */
struct cvm_ct_entry {
	uint64_t timestamp; /* the TimestampedEntry's, milliseconds */
	bool is_precert;
	uint8_t leaf_hash[32];
	uint8_t issuer_key_hash[32]; /* precerts only */
	/* of the certificate (or the precertificate's TBSCertificate) */
	char names[CVM_CT_NAMES_MAX][CVM_CT_NAME_LEN]; /* lowercase, printable (see cvm_cert_dns_names) */
	size_t name_count;
	bool names_cut;   /* more names than CVM_CT_NAMES_MAX */
	char serial[132]; /* hex */
	char issuer[256]; /* one line */
	uint8_t *spki;    /* DER SubjectPublicKeyInfo, owned */
	size_t spki_len;
	uint8_t spki_sha256[32];
};

/* cvm_ct_entry_parse reads a leaf_input (`len` bytes, a MerkleTreeLeaf v1
 * with a TimestampedEntry of an x509_entry or a precert_entry; extensions
 * are skipped) and the certificate in it: its names, serial, issuer and
 * public key. A precertificate's TBSCertificate is read as a certificate
 * with no valid signature. Nothing is verified: no signature, no chain, no
 * SCT. Call cvm_ct_entry_cleanup afterwards, whatever it returned. Returns
 * 0, CVM_E_TRUNCATED, CVM_E_FORMAT (also trailing bytes, a certificate that
 * does not parse), CVM_E_UNSUPPORTED (another version or entry type),
 * CVM_E_TOO_LARGE or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_ct_entry_parse(const uint8_t *leaf, size_t len, struct cvm_ct_entry *out);
CVM_API void cvm_ct_entry_cleanup(struct cvm_ct_entry *e);

/* struct cvm_ct_raw is one entry of a get-entries answer, decoded. */
struct cvm_ct_raw {
	uint8_t *leaf; /* owned */
	size_t leaf_len;
	size_t extra_len; /* extra_data is decoded to check it, then dropped */
};

/* cvm_ct_entries_parse reads a get-entries answer ({"entries": [{leaf_input,
 * extra_data}]}) into a new array *out of *count entries (at most `max`,
 * itself at most CVM_CT_BATCH_MAX), freed with cvm_ct_raw_free. A log may
 * return fewer entries than asked, never more. Returns 0, CVM_E_FORMAT or
 * CVM_E_TOO_LARGE (more entries than `max`, a bigger leaf or extra_data),
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_ct_entries_parse(const char *json, size_t len, size_t max,
                                                struct cvm_ct_raw **out, size_t *count);
CVM_API void cvm_ct_raw_free(struct cvm_ct_raw *r, size_t count);

/* cvm_ct_name_covers is true when a certificate for `name` (a DNS name, maybe
 * a wildcard "*.x") can serve `domain` or a name under it: equal, a
 * subdomain, a wildcard over either, or a wildcard covering `domain` itself
 * ("*.test" covers "gw.test"). Case-insensitive. */
CVM_API bool cvm_ct_name_covers(const char *name, const char *domain);

/* ---- the client (libcurl) ---- */

/* struct cvm_ct_client talks to one log. Opaque; not thread-safe. */
struct cvm_ct_client;

/* cvm_ct_client_new makes a client of the log at `url` (its base: the
 * methods are url + "/ct/v1/<method>"), with `timeout_s` seconds per
 * request. Plain http is refused unless `allow_http` (tests). Returns 0,
 * CVM_E_INVAL or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_ct_client_new(const char *url, bool allow_http, unsigned timeout_s,
                                             struct cvm_ct_client **out);
CVM_API void cvm_ct_client_free(struct cvm_ct_client *c);
/* cvm_ct_client_error is a sentence about the last failure (transport or
 * HTTP status), for messages. */
CVM_API const char *cvm_ct_client_error(const struct cvm_ct_client *c);

/* cvm_ct_get_sth fetches and parses the log's signed tree head (not
 * verified). Returns what cvm_ct_sth_parse returns, or CVM_E_SYSTEM (the
 * request failed: see cvm_ct_client_error). */
CVM_API CVM_MUST_CHECK int cvm_ct_get_sth(struct cvm_ct_client *c, struct cvm_ct_sth *out);
/* cvm_ct_get_consistency fetches the proof between tree sizes `first` and
 * `second` (not verified). */
CVM_API CVM_MUST_CHECK int cvm_ct_get_consistency(struct cvm_ct_client *c, uint64_t first, uint64_t second,
                                                  uint8_t (*proof)[32], size_t *count);
/* cvm_ct_get_entries fetches entries `start`..`end` (inclusive; at most
 * CVM_CT_BATCH_MAX of them are asked for); the log may answer with fewer
 * (at least one), which the caller pages over. */
CVM_API CVM_MUST_CHECK int cvm_ct_get_entries(struct cvm_ct_client *c, uint64_t start, uint64_t end,
                                              struct cvm_ct_raw **out, size_t *count);

#endif
