/* The KMS audit trail (issue 13 point 6; lib/audit): every decision of
 * cvm-kmsd (who asked, the measurements, the policy's answer, the keys
 * released or not, the epoch) is appended to a SQLite database, each record
 * chained to the one before it by SHA-256, so that a record removed, edited,
 * reordered or inserted anywhere but at the end is found by
 * cvm_audit_verify (`cvm kms audit verify`).
 *
 * The chain. Record n (seq n, counted from 1 with no gap) carries
 *
 *   hash_n = SHA-256(tag || u64be(n) || prev || encoding)
 *
 * where prev is hash_{n-1} (32 zero bytes for record 1), tag is the 24 bytes
 * CVM_AUDIT_TAG: the ASCII text "cvmkit kms audit v1" followed by five zero
 * bytes (the version is part of the tag, so a future encoding hashes under
 * another tag and cannot be confused with this one), and encoding is
 *
 *   u64be(time) || u32be(epoch) ||
 *   for each text field, in this order: u16be(length) || its bytes
 *     node, method, peer, tee, app_id, instance_id, compose_hash, device_id,
 *     mr_aggregated, os_image_hash, decision, reason, keys
 *
 * (lengths without the NUL; every field is length-prefixed, so no two
 * different records share an encoding). The database stores each record's
 * fields, prev and hash; verification recomputes every hash from the fields.
 *
 * What the chain does NOT show: it is keyless, so whoever can write the file
 * can rewrite the chain from any point on, and removing the LAST records
 * leaves a shorter chain that is still intact. Both change the head (seq,
 * hash of the last record). So cvm-kmsd logs the head after every append
 * (this module logs nothing), one line `event=audit_head seq=N head=HEX
 * [sig=HEX]`, to somewhere the KMS host cannot rewrite (journald forwarded
 * to a remote collector), and
 * `cvm kms audit verify DB --expect-head N:HEX` (cvm_audit_verify with
 * expect_head) checks that the log ends exactly there. A head copied off the
 * host can also carry a signed checkpoint (cvm_audit_checkpoint_sign: the
 * KMS's P-256 key signs tag || seq || head), so that a head found anywhere
 * can be checked on its own: whoever rewrites the file without the key
 * cannot make a checkpoint for the rewritten head. A checkpoint proves that
 * the key holder once saw that head, not that it is the latest: truncating
 * the log to an older signed head is only found with the latest head.
 *
 * The database (one table `audit`, STRICT; PRAGMA application_id
 * CVM_AUDIT_APPLICATION_ID, user_version 1):
 * - a new file is created with mode 0600; an existing one that group or
 *   others may write, or a symbolic link, is refused;
 * - journal_mode=WAL, so that `cvm kms audit verify` and `show` can read the
 *   live log while cvm-kmsd appends (readers do not block the writer);
 *   synchronous=FULL, because in WAL mode NORMAL makes a commit durable only
 *   at the next checkpoint: a power cut could then lose records of keys
 *   already released, whose heads were already logged (a false "truncated"
 *   alarm, and a real hole in the trail);
 * - each append is one transaction (BEGIN IMMEDIATE ... COMMIT) that re-reads
 *   the head inside it: if another writer changed the log since this handle
 *   last saw it, the append is refused (CVM_E_MISMATCH), not chained onto
 *   whatever is there now, and the handle stays refused until reopened.
 *   Only the head is re-read: an edit further back is found by verify (and
 *   by the next cvm_audit_open), not by append;
 * - a crash inside an append leaves the log as it was before it (an
 *   uncommitted WAL transaction is not part of the database). A COMMIT that
 *   fails with an I/O error may or may not have landed; the handle keeps its
 *   old head, so the next append sees a changed log and refuses (fail
 *   closed) rather than guessing;
 * - the schema must be exactly this module's (no extra table, index, view or
 *   trigger), and every connection runs with SQLite's defensive mode on,
 *   triggers and views off and trusted_schema off, so a database planted by
 *   someone else cannot run code through a trigger.
 * Every value read back is checked: column type, byte length against the
 * field's cap, no NUL, printable ASCII, hex where hex is expected.
 *
 * Values. Every text field is NUL-terminated, printable ASCII (0x20-0x7e)
 * and fits its array (the _MAX below counts characters without the NUL).
 * The ids and hashes are "" or lowercase hex of an even length. decision is
 * one of "allowed", "denied", "error". A value that breaks these rules is
 * refused by cvm_audit_append, never cut or escaped: the daemon passes
 * client-influenced strings (peer, reason), and a log line must not be able
 * to forge another. */
#ifndef CVMKIT_AUDIT_H
#define CVMKIT_AUDIT_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CVM_AUDIT_TAG is the domain-separation tag (CVM_AUDIT_TAG_LEN bytes,
 * five of them trailing zeros). */
#define CVM_AUDIT_TAG "cvmkit kms audit v1\0\0\0\0\0"
#define CVM_AUDIT_TAG_LEN 24
/* CVM_AUDIT_VERSION is the record encoding and schema version (user_version). */
#define CVM_AUDIT_VERSION 1
/* CVM_AUDIT_APPLICATION_ID is SQLite's application_id of an audit log ("cvma"). */
#define CVM_AUDIT_APPLICATION_ID 0x63766d61
#define CVM_AUDIT_HASH_LEN 32

/* The caps of the text fields, in characters (the arrays hold one more). */
#define CVM_AUDIT_NODE_MAX 63
#define CVM_AUDIT_METHOD_MAX 31
#define CVM_AUDIT_PEER_MAX 95
#define CVM_AUDIT_TEE_MAX 31
#define CVM_AUDIT_ID_MAX 40   /* app_id, instance_id: 20 bytes in hex */
#define CVM_AUDIT_HASH_MAX 64 /* compose_hash, device_id, mr_aggregated, os_image_hash */
#define CVM_AUDIT_DECISION_MAX 15
#define CVM_AUDIT_REASON_MAX 255
#define CVM_AUDIT_KEYS_MAX 127

/* struct cvm_audit_record is one KMS decision. */
struct cvm_audit_record {
	int64_t time;                          /* Unix seconds; 0: cvm_audit_append sets now */
	char node[CVM_AUDIT_NODE_MAX + 1];     /* the KMS node's name */
	char method[CVM_AUDIT_METHOD_MAX + 1]; /* "GetAppKey", "SignCert", "Bootstrap", ... */
	char peer[CVM_AUDIT_PEER_MAX + 1];     /* the client's address */
	char tee[CVM_AUDIT_TEE_MAX + 1];       /* "tdx", "snp", "sim-tdx", ... or "" */
	char app_id[CVM_AUDIT_ID_MAX + 1];     /* hex or "" (same for the five below) */
	char instance_id[CVM_AUDIT_ID_MAX + 1];
	char compose_hash[CVM_AUDIT_HASH_MAX + 1];
	char device_id[CVM_AUDIT_HASH_MAX + 1];
	char mr_aggregated[CVM_AUDIT_HASH_MAX + 1];
	char os_image_hash[CVM_AUDIT_HASH_MAX + 1];
	char decision[CVM_AUDIT_DECISION_MAX + 1]; /* "allowed", "denied" or "error" */
	char reason[CVM_AUDIT_REASON_MAX + 1];     /* the policy's or verifier's reason ("" when allowed) */
	char keys[CVM_AUDIT_KEYS_MAX + 1];         /* comma-separated names of the keys released, or "" */
	uint32_t epoch;                            /* the key epoch */
};

/* struct cvm_audit_filter selects records for cvm_audit_each; a zero
 * filter selects all. */
struct cvm_audit_filter {
	const char *app_id;   /* NULL: any; else records whose app_id equals it (hex, either case) */
	int64_t since;        /* records with time >= since (0: any) */
	const char *decision; /* NULL: any; else records with this decision */
};

/* struct cvm_audit is an open log; opaque. One thread at a time. */
struct cvm_audit;

/* cvm_audit_record_check tells whether `r` may be appended (the rules in the
 * file comment). On failure `err` (when err_len > 0) names the field and what
 * is wrong. Returns 0, CVM_E_INVAL (not printable ASCII, not hex, an unknown
 * decision, a negative time, NULL) or CVM_E_TOO_LARGE (no NUL inside the
 * field's array). */
CVM_API CVM_MUST_CHECK int cvm_audit_record_check(const struct cvm_audit_record *r, char *err,
                                                  size_t err_len);

/* cvm_audit_open opens the log at `path`; with `create`, a missing file is
 * created (mode 0600) as an empty log, without it a missing file is an
 * error. An existing log's whole chain is verified first (as by
 * cvm_audit_verify without expect_head): cvm-kmsd never appends to a broken
 * log. On failure `err` (when err_len > 0) holds one sentence. The caller
 * frees `*out` with cvm_audit_close. Returns 0, CVM_E_INVAL, CVM_E_SYSTEM
 * (errno set: the file cannot be opened or created), CVM_E_POLICY (a
 * symbolic link, or a file group or others may write), CVM_E_FORMAT (not an
 * audit log: SQLite refuses it, or another application id or schema),
 * CVM_E_UNSUPPORTED (another version), CVM_E_MISMATCH (the chain is broken)
 * or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_audit_open(const char *path, bool create, struct cvm_audit **out, char *err,
                                          size_t err_len);
/* cvm_audit_append checks `r` (cvm_audit_record_check), sets its time to now
 * when it is 0, and appends it as record seq+1 in one transaction, after
 * re-reading the head inside it. On success `*seq_out` and `head_out` (each
 * may be NULL) hold the new head, which the caller should log. Returns 0,
 * CVM_E_INVAL / CVM_E_TOO_LARGE (a bad record: nothing written),
 * CVM_E_MISMATCH (another writer changed the log: refused, now and for every
 * later append through `a`), CVM_E_SYSTEM (SQLite could not write: busy,
 * disk full, I/O error) or CVM_E_NOMEM. cvm_audit_error tells why. */
CVM_API CVM_MUST_CHECK int cvm_audit_append(struct cvm_audit *a, const struct cvm_audit_record *r,
                                            uint64_t *seq_out, uint8_t head_out[CVM_AUDIT_HASH_LEN]);
/* cvm_audit_head gives the head this handle last wrote or read: the last
 * record's seq and hash, or 0 and 32 zero bytes for an empty log. It does
 * not read the database. Returns 0 or CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_audit_head(struct cvm_audit *a, uint64_t *seq,
                                          uint8_t head[CVM_AUDIT_HASH_LEN]);
/* cvm_audit_error returns the sentence that explains the last failure of
 * `a` ("" when none); it lives until the next call on `a`. */
CVM_API const char *cvm_audit_error(const struct cvm_audit *a);
/* cvm_audit_close closes `a`; NULL is a no-op. */
CVM_API void cvm_audit_close(struct cvm_audit *a);

/* cvm_audit_verify reads the log at `path` (read-only, one consistent
 * snapshot even while a writer appends) and checks every record: its format,
 * seq consecutive from 1, prev equal to the previous record's hash, hash
 * recomputed from its fields. With `expect_head` non-NULL it also checks that
 * the log ends exactly at (expect_seq, expect_head): fewer records (a removed
 * tail), more (a record added after that head) or another hash are all
 * failures. An empty log is intact (head 0 and zero hash). On return `*count`
 * and `head` (each may be NULL) hold the number of records found intact and
 * the hash of the last of them; on CVM_E_MISMATCH `*bad_seq` (may be NULL)
 * is the seq of the first bad or missing record and `err` says what is
 * wrong with it. Returns 0 (intact), CVM_E_MISMATCH (tampered or damaged),
 * CVM_E_SYSTEM (errno set), CVM_E_FORMAT (not an audit log),
 * CVM_E_UNSUPPORTED, CVM_E_POLICY (a symbolic link), CVM_E_INVAL or
 * CVM_E_NOMEM. It checks no signature: the head is only as good as where
 * the caller took it from. */
CVM_API CVM_MUST_CHECK int cvm_audit_verify(const char *path, const uint8_t *expect_head, uint64_t expect_seq,
                                            uint64_t *count, uint8_t head[CVM_AUDIT_HASH_LEN],
                                            uint64_t *bad_seq, char *err, size_t err_len);

/* cvm_audit_each calls `fn` for every record of the log at `path` that `f`
 * (may be NULL) selects, in seq order, with the record and its hash. It
 * checks the chain as it goes, exactly as cvm_audit_verify does, and stops at
 * the first bad record (CVM_E_MISMATCH, `err` says what is wrong): records
 * after a break are never passed to `fn`. A non-zero return of `fn` stops the
 * walk and is returned. Other returns as cvm_audit_verify. */
CVM_API CVM_MUST_CHECK int cvm_audit_each(const char *path, const struct cvm_audit_filter *f,
                                          int (*fn)(void *ctx, uint64_t seq, const struct cvm_audit_record *r,
                                                    const uint8_t hash[CVM_AUDIT_HASH_LEN]),
                                          void *ctx, char *err, size_t err_len);

/* A signed checkpoint: ECDSA P-256 with SHA-256 over
 *   CVM_AUDIT_CHECKPOINT_TAG (32 bytes: "cvmkit kms audit checkpoint v1"
 *   and two zero bytes) || u64be(seq) || head,
 * the signature as r || s (32 bytes each, big-endian). */
#define CVM_AUDIT_CHECKPOINT_TAG "cvmkit kms audit checkpoint v1\0\0"
#define CVM_AUDIT_CHECKPOINT_TAG_LEN 32
#define CVM_AUDIT_CHECKPOINT_MSG_LEN (CVM_AUDIT_CHECKPOINT_TAG_LEN + 8 + CVM_AUDIT_HASH_LEN)
#define CVM_AUDIT_CHECKPOINT_SIG_LEN 64

struct cvm_p256_keypair;
struct cvm_cert;

/* cvm_audit_checkpoint_sign signs the head (seq, head) with `key` (the
 * KMS's P-256 key, e.g. its rpc.key) into `sig`. The nonce is random: two
 * signatures of one head differ, both verify. Returns 0, CVM_E_INVAL or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_audit_checkpoint_sign(const struct cvm_p256_keypair *key, uint64_t seq,
                                                     const uint8_t head[CVM_AUDIT_HASH_LEN],
                                                     uint8_t sig[CVM_AUDIT_CHECKPOINT_SIG_LEN]);
/* cvm_audit_checkpoint_verify checks `sig` over (seq, head) under the P-256
 * key of `cert`. It checks the signature only: not the certificate's chain,
 * validity or who it names (the caller chose the certificate), and not that
 * the log ends at that head (cvm_audit_verify with expect_head does).
 * Returns 0, CVM_E_SIGNATURE, CVM_E_UNSUPPORTED (not a P-256 key) or
 * CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_audit_checkpoint_verify(const struct cvm_cert *cert, uint64_t seq,
                                                       const uint8_t head[CVM_AUDIT_HASH_LEN],
                                                       const uint8_t sig[CVM_AUDIT_CHECKPOINT_SIG_LEN]);

/* cvm_audit_head_parse reads a head written as "SEQ:HEX" (what
 * `--expect-head` takes: the seq in decimal, 1 to 2^63-1, no sign or leading
 * zero, then 64 hex digits) into `seq` and `head`. Returns 0 or
 * CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_audit_head_parse(const char *s, uint64_t *seq,
                                                uint8_t head[CVM_AUDIT_HASH_LEN]);

#endif
