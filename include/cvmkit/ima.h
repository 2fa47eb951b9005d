/* Linux IMA runtime measurement lists: parsing (binary and ascii), PCR
 * replay for any TPM bank, prefix matching against a quoted PCR value,
 * comparison with a reference set of (path, digest) pairs, and ima-sig
 * signature checks.
 *
 * Formats (Linux security/integrity/ima/ima_fs.c):
 *  - binary (`binary_runtime_measurements`): per entry u32 pcr, 20-byte
 *    SHA-1 template digest, u32 template name length, template name, then
 *    u32 template data length and the template data (the `ima` template has
 *    no data length: its 20-byte digest and a u32-length name follow). The
 *    integers are in the writer's byte order: little-endian on x86 and with
 *    ima_canonical_fmt; big-endian lists are detected from the first PCR
 *    index.
 *  - ascii (`ascii_runtime_measurements`): one line per entry,
 *    "<pcr> <sha1 template digest hex> <template name> <fields...>\n".
 *
 * The template data of every template but `ima` is a sequence of fields,
 * each u32 length || bytes, and the template digest of a bank is that bank's
 * hash over those bytes. For `ima` it is the hash over the 20-byte digest and
 * the name zero-padded to 256 bytes. A violation (the kernel could not
 * measure a file, e.g. it was open for writing) is logged with an all-zero
 * template digest and extended into every bank as all-0xff bytes.
 *
 * Nothing here trusts the list: it is evidence until a replay reaches a PCR
 * value that a verified TPM quote holds. */
#ifndef CVMKIT_IMA_H
#define CVMKIT_IMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

/* Hard caps. A list that exceeds one is rejected with CVM_E_TOO_LARGE. */
#define CVM_IMA_PCR_COUNT 24             /* PCR indices 0..23 */
#define CVM_IMA_PCR 10                   /* IMA's default PCR (CONFIG_IMA_MEASURE_PCR_IDX) */
#define CVM_IMA_TEMPLATE_NAME_MAX 64     /* bytes of a template name */
#define CVM_IMA_EVENT_NAME_MAX 4096      /* bytes of an event name field, with its NUL (PATH_MAX) */
#define CVM_IMA_EVENT_DATA_MAX 65536     /* bytes of any other template field (sig, buf, modsig) */
#define CVM_IMA_TEMPLATE_DATA_MAX 131072 /* bytes of one entry's template data */
#define CVM_IMA_FIELDS_MAX 16            /* fields of one entry's template data */
#define CVM_IMA_FILE_DIGEST_MAX 64       /* bytes of a file digest (SHA-512) */
#define CVM_IMA_ENTRIES_MAX 100000000ULL /* entries in one list */
/* CVM_IMA_ENTRY_MAX is the longest binary entry the caps allow. */
#define CVM_IMA_ENTRY_MAX (4 + 20 + 4 + CVM_IMA_TEMPLATE_NAME_MAX + 4 + CVM_IMA_TEMPLATE_DATA_MAX)
/* CVM_IMA_LINE_MAX is the longest ascii line (hex doubles the data). */
#define CVM_IMA_LINE_MAX (2 * CVM_IMA_TEMPLATE_DATA_MAX + 1024)
/* CVM_IMA_BANKS_MAX is the number of banks a replay can compute at once. */
#define CVM_IMA_BANKS_MAX 5

/* enum cvm_ima_format is how a list is encoded. */
enum cvm_ima_format {
	CVM_IMA_FORMAT_AUTO = 0, /* decide from the first bytes */
	CVM_IMA_FORMAT_BINARY = 1,
	CVM_IMA_FORMAT_ASCII = 2,
};

/* enum cvm_ima_template names the templates whose fields are decoded. */
enum cvm_ima_template {
	CVM_IMA_TEMPLATE_OTHER = 0,      /* binary only: fields kept, not decoded */
	CVM_IMA_TEMPLATE_IMA = 1,        /* d|n: SHA-1 file digest, name */
	CVM_IMA_TEMPLATE_IMA_NG = 2,     /* d-ng|n-ng */
	CVM_IMA_TEMPLATE_IMA_SIG = 3,    /* d-ng|n-ng|sig */
	CVM_IMA_TEMPLATE_IMA_BUF = 4,    /* d-ng|n-ng|buf */
	CVM_IMA_TEMPLATE_IMA_MODSIG = 5, /* d-ng|n-ng|sig|d-modsig|modsig */
	CVM_IMA_TEMPLATE_IMA_NGV2 = 6,   /* d-ngv2|n-ng */
	CVM_IMA_TEMPLATE_IMA_SIGV2 = 7,  /* d-ngv2|n-ng|sig */
};

/* cvm_ima_template_name returns the kernel's name of `t` ("ima-ng", ...),
 * or "other". The string is static. */
CVM_API const char *cvm_ima_template_name(enum cvm_ima_template t);

/* struct cvm_ima_entry is one decoded entry. Every view borrows from the
 * buffer the entry was parsed from (for a reader: valid until its next call).
 * Views that a template does not have are empty. */
struct cvm_ima_entry {
	uint32_t pcr;                /* PCR index, < CVM_IMA_PCR_COUNT */
	uint8_t template_digest[20]; /* SHA-1, as the list carries it */
	bool is_violation;           /* template_digest is all zero */
	enum cvm_ima_template template_id;
	struct cvm_rd template_name; /* no NUL; may be empty (custom template) */
	/* template_data: the bytes the template digest covers, except for the
	 * `ima` template, whose digest covers `digest` and `name` padded to 256
	 * bytes. Binary: borrowed from the list; ascii: rebuilt from the fields. */
	struct cvm_rd template_data;
	size_t field_count; /* fields in template_data (`ima`: 2) */
	/* Decoded fields (template_id != OTHER). */
	uint16_t digest_alg;         /* TPM_ALG_ID of the file digest; 0 when cvmkit does not know it */
	struct cvm_rd digest_algo;   /* the algorithm's name as logged ("sha256"; "sha1" for `ima`) */
	struct cvm_rd digest_type;   /* d-ngv2 only: "ima" or "verity" */
	struct cvm_rd digest;        /* the file (or buffer) digest */
	struct cvm_rd name;          /* event name, without its NUL */
	struct cvm_rd sig;           /* sig field (ima-sig, ima-sigv2, ima-modsig) */
	struct cvm_rd buf;           /* buf field (ima-buf) */
	uint16_t modsig_digest_alg;  /* ima-modsig: d-modsig algorithm, 0 if unknown or none */
	struct cvm_rd modsig_digest; /* ima-modsig: d-modsig digest */
	struct cvm_rd modsig;        /* ima-modsig: the appended PKCS#7 signature */
};

/* cvm_ima_entry_parse_binary decodes one binary entry from the front of `in`
 * and advances `in` past it; on failure `in` is unchanged. Integers are
 * big-endian when `big_endian`. `e`'s views borrow from `in`. Length fields
 * are checked against their caps before the bytes they announce, so an
 * oversized field gives CVM_E_TOO_LARGE even when the input is short.
 * Returns 0, CVM_E_TRUNCATED (the input ends inside the entry: a streaming
 * caller may supply more bytes and retry), CVM_E_TOO_LARGE or CVM_E_FORMAT (a
 * PCR index >= CVM_IMA_PCR_COUNT, fields that do not fill the template data
 * exactly, a malformed digest or name field). An `ima` entry is read with a
 * 20-byte SHA-1 digest: its binary form has no length to tell an MD5 one
 * (ima_hash=md5) apart, and those are not supported. It does not check the
 * template digest: cvm_ima_replay_extend does. */
CVM_API CVM_MUST_CHECK int cvm_ima_entry_parse_binary(struct cvm_rd *in, bool big_endian,
                                                      struct cvm_ima_entry *e);

/* cvm_ima_entry_parse_ascii decodes one ascii line (`line_len` bytes
 * without its '\n') and rebuilds the template data into `scratch`
 * (`scratch_len` bytes; CVM_IMA_TEMPLATE_DATA_MAX always suffices). `e`'s
 * views borrow from `line` and `scratch`. A name may contain spaces: fields
 * after the name are taken from the end of the line. Returns 0,
 * CVM_E_FORMAT, CVM_E_TOO_LARGE or CVM_E_UNSUPPORTED (a template whose
 * fields cvmkit does not know: ascii lists cannot be replayed without them).
 * It does not check the template digest. */
CVM_API CVM_MUST_CHECK int cvm_ima_entry_parse_ascii(const char *line, size_t line_len, uint8_t *scratch,
                                                     size_t scratch_len, struct cvm_ima_entry *e);

/* struct cvm_ima_reader streams the entries of one list from a file, a file
 * descriptor or memory, holding at most one read window (about
 * 2 * CVM_IMA_LINE_MAX bytes) whatever the list's size. */
struct cvm_ima_reader;

/* cvm_ima_reader_open opens `path` ("-" is standard input). The caller frees
 * *out with cvm_ima_reader_free. Returns 0, CVM_E_SYSTEM (errno set) or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_ima_reader_open(const char *path, enum cvm_ima_format fmt,
                                               struct cvm_ima_reader **out);
/* cvm_ima_reader_new_fd reads from `fd`, which stays the caller's (not
 * closed by cvm_ima_reader_free). */
CVM_API CVM_MUST_CHECK int cvm_ima_reader_new_fd(int fd, enum cvm_ima_format fmt,
                                                 struct cvm_ima_reader **out);
/* cvm_ima_reader_new_mem reads the `len` bytes at `buf`, which must outlive
 * the reader (entries borrow from it). */
CVM_API CVM_MUST_CHECK int cvm_ima_reader_new_mem(const uint8_t *buf, size_t len, enum cvm_ima_format fmt,
                                                  struct cvm_ima_reader **out);
/* cvm_ima_reader_free closes what the reader opened and frees it; NULL is a
 * no-op. */
CVM_API void cvm_ima_reader_free(struct cvm_ima_reader *rd);

/* cvm_ima_reader_next decodes the next entry into `e` and sets *has_entry,
 * or clears *has_entry at the clean end of the list. `e` is valid until the
 * next call. A list that ends inside an entry or an ascii line without its
 * '\n' is CVM_E_TRUNCATED; more than CVM_IMA_ENTRIES_MAX entries is
 * CVM_E_TOO_LARGE. After an error, cvm_ima_reader_err says where and what,
 * and every later call returns the same error. Returns 0, CVM_E_SYSTEM or
 * any error of the entry parsers. */
CVM_API CVM_MUST_CHECK int cvm_ima_reader_next(struct cvm_ima_reader *rd, struct cvm_ima_entry *e,
                                               bool *has_entry);
/* cvm_ima_reader_format is the list's format once the first bytes were read
 * (CVM_IMA_FORMAT_AUTO before). */
CVM_API enum cvm_ima_format cvm_ima_reader_format(const struct cvm_ima_reader *rd);
/* cvm_ima_reader_count is the number of entries returned so far. */
CVM_API uint64_t cvm_ima_reader_count(const struct cvm_ima_reader *rd);
/* cvm_ima_reader_err describes the last failure in one sentence ("entry
 * 12 at byte 3456: ..."), or returns "" when there was none. The string
 * lives in the reader until its next call. */
CVM_API const char *cvm_ima_reader_err(const struct cvm_ima_reader *rd);

/* struct cvm_ima_replay recomputes PCR values from entries, for one to
 * CVM_IMA_BANKS_MAX banks at once, for every PCR index an entry names. */
struct cvm_ima_replay;

/* cvm_ima_replay_new starts a replay of the banks `banks` (TPM_ALG_IDs,
 * `bank_count` of them, no duplicates) with every PCR at zero. The caller
 * frees *out with cvm_ima_replay_free. Returns 0, CVM_E_INVAL (no bank,
 * too many, a duplicate), CVM_E_UNSUPPORTED (an algorithm cvmkit does not
 * hash), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_ima_replay_new(const uint16_t *banks, size_t bank_count,
                                              struct cvm_ima_replay **out);
CVM_API void cvm_ima_replay_free(struct cvm_ima_replay *rp);

/* cvm_ima_replay_extend checks one entry and extends it into its PCR in
 * every bank, as the kernel does (ima_pcr_extend, ima_calc_field_array_hash):
 *  - a violation (all-zero template digest) extends all-0xff bytes;
 *  - otherwise the SHA-1 over the template data must equal the logged
 *    template digest (else CVM_E_MISMATCH and nothing is extended); the
 *    SHA-1 bank extends that digest and every other bank extends its own
 *    hash over the same template data.
 * On failure the replay is unchanged. Returns 0, CVM_E_MISMATCH,
 * CVM_E_TOO_LARGE (more than CVM_IMA_ENTRIES_MAX entries) or CVM_E_CRYPTO.
 * It does not look at file digests, names or signatures. */
CVM_API CVM_MUST_CHECK int cvm_ima_replay_extend(struct cvm_ima_replay *rp, const struct cvm_ima_entry *e);

/* cvm_ima_replay_pcr writes the current value of PCR `pcr` in bank `bank`
 * (cvm_digest_len(bank) bytes) to `out`, which holds `out_len` bytes.
 * Returns 0, CVM_E_INVAL (bank not replayed, pcr out of range, out_len too
 * small). */
CVM_API CVM_MUST_CHECK int cvm_ima_replay_pcr(const struct cvm_ima_replay *rp, uint16_t bank, uint32_t pcr,
                                              uint8_t *out, size_t out_len);
/* cvm_ima_replay_pcr_mask has bit i set when an entry extended PCR i. */
CVM_API uint32_t cvm_ima_replay_pcr_mask(const struct cvm_ima_replay *rp);
/* cvm_ima_replay_entries / _violations count the entries extended so far. */
CVM_API uint64_t cvm_ima_replay_entries(const struct cvm_ima_replay *rp);
CVM_API uint64_t cvm_ima_replay_violations(const struct cvm_ima_replay *rp);
/* cvm_ima_replay_bank_count and _bank list the replayed banks in order. */
CVM_API size_t cvm_ima_replay_bank_count(const struct cvm_ima_replay *rp);
CVM_API uint16_t cvm_ima_replay_bank(const struct cvm_ima_replay *rp, size_t i);
/* cvm_ima_replay_template_count and _template_name list the distinct
 * template names met so far, in order of first use (at most 16; later new
 * names are counted in cvm_ima_replay_templates_dropped). The string is a
 * NUL-terminated copy owned by the replay. */
CVM_API size_t cvm_ima_replay_template_count(const struct cvm_ima_replay *rp);
CVM_API const char *cvm_ima_replay_template_name(const struct cvm_ima_replay *rp, size_t i);
CVM_API uint64_t cvm_ima_replay_templates_dropped(const struct cvm_ima_replay *rp);

/* cvm_ima_replay_until reads entries from `rd` and extends them into `rp`
 * until PCR 10 of bank `bank` equals the `want_len` bytes at `want`: it
 * compares before the first entry and after each one, and stops at the
 * first match. This is how a list that grew after a TPM quote is accepted:
 * the quoted value must be reached by some prefix. On a match *matched is
 * true, `rp` holds the state after the prefix (cvm_ima_replay_entries is its
 * length) and `rd` is positioned right after it, so the caller may go on
 * reading (and extending) the entries the quote does not cover. At the end
 * of the list without a match, *matched is false and `rp` holds the whole
 * list. Errors of the reader or of cvm_ima_replay_extend end the replay
 * (cvm_ima_reader_err describes reader errors). Returns 0, CVM_E_INVAL
 * (bank not replayed, want_len not its digest length) or those errors.
 * It does not check entries that extend other PCRs (an IMA policy may name
 * any): PCR 10 does not cover them, so a caller that trusts the prefix must
 * compare every PCR in cvm_ima_replay_pcr_mask with the quote too. */
CVM_API CVM_MUST_CHECK int cvm_ima_replay_until(struct cvm_ima_replay *rp, struct cvm_ima_reader *rd,
                                                uint16_t bank, const uint8_t *want, size_t want_len,
                                                bool *matched);

/* ---- reference sets ----------------------------------------------------- */

/* Reference file caps. */
#define CVM_IMA_REF_LINE_MAX 8192         /* bytes of one line */
#define CVM_IMA_REF_ENTRIES_MAX 16000000u /* (path, digest) pairs */

/* struct cvm_ima_refset is a set of known (path, digest) pairs. Its text
 * format (docs/cli/cvm-ima.md), one pair per line:
 *   <hex digest> <path>            as sha1sum/sha256sum/sha384sum/sha512sum
 *                                  print it (two spaces, or " *"); the length
 *                                  gives the algorithm (64 hex = SHA-256)
 *   <alg>:<hex digest> <path>      explicit algorithm: sha1, sha256, sha384,
 *                                  sha512, sm3 (or sm3_256)
 * The path is the rest of the line (it may hold spaces); a line that starts
 * with '\' has a path with "\\" and "\n" escapes, as coreutils writes it.
 * Blank lines and lines starting with '#' are ignored. A path may appear on
 * several lines: any of its digests matches. */
struct cvm_ima_refset;

/* cvm_ima_refset_parse reads the text format from `len` bytes at `buf`. The
 * caller frees *out with cvm_ima_refset_free. On CVM_E_FORMAT,
 * CVM_E_TOO_LARGE or CVM_E_UNSUPPORTED, *bad_line (if not NULL) is the
 * 1-based line at fault. Returns 0 or those errors, or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_ima_refset_parse(const uint8_t *buf, size_t len, struct cvm_ima_refset **out,
                                                size_t *bad_line);
CVM_API void cvm_ima_refset_free(struct cvm_ima_refset *set);
/* cvm_ima_refset_count is the number of distinct (path, digest) pairs. */
CVM_API size_t cvm_ima_refset_count(const struct cvm_ima_refset *set);

/* enum cvm_ima_ref_result is what a reference set says of one entry. */
enum cvm_ima_ref_result {
	CVM_IMA_REF_MATCH = 0,          /* path known, digest one of its digests */
	CVM_IMA_REF_UNKNOWN_PATH = 1,   /* path not in the set */
	CVM_IMA_REF_UNKNOWN_DIGEST = 2, /* path known, digest (or algorithm) not among its digests */
	CVM_IMA_REF_VIOLATION = 3,      /* violation entry: no file digest to compare */
	CVM_IMA_REF_UNDECODED = 4,      /* a template whose fields cvmkit does not decode */
	CVM_IMA_REF_BOOT_AGGREGATE = 5, /* the boot_aggregate entry: a digest of PCRs 0-9, not a file */
};

/* cvm_ima_refset_check compares one entry with the set: its event name as
 * the path, and its file digest with its algorithm. Entries named
 * "boot_aggregate" and violations are not looked up (they measure no file).
 * It checks no template digest and no signature. */
CVM_API enum cvm_ima_ref_result cvm_ima_refset_check(const struct cvm_ima_refset *set,
                                                     const struct cvm_ima_entry *e);
/* cvm_ima_ref_result_name returns a short static description of `r`. */
CVM_API const char *cvm_ima_ref_result_name(enum cvm_ima_ref_result r);

/* ---- ima-sig signatures --------------------------------------------------- */

/* struct cvm_ima_sig is a decoded IMA signature (the security.ima xattr of
 * type EVM_IMA_XATTR_DIGSIG, format v2 or v3). */
struct cvm_ima_sig {
	uint8_t type;        /* 3: EVM_IMA_XATTR_DIGSIG */
	uint8_t version;     /* 2 or 3 */
	uint8_t hash_algo;   /* the kernel's enum hash_algo */
	uint16_t digest_alg; /* the same as a TPM_ALG_ID, 0 if cvmkit does not support it */
	uint32_t keyid;      /* last 4 bytes of the signer's key identifier */
	struct cvm_rd value; /* the signature: RSA PKCS#1 v1.5, or a DER ECDSA-Sig-Value */
};

/* cvm_ima_sig_parse decodes a sig field. Returns 0, CVM_E_FORMAT (short,
 * or the length field disagrees with the bytes present) or
 * CVM_E_UNSUPPORTED (another type or version). */
CVM_API CVM_MUST_CHECK int cvm_ima_sig_parse(struct cvm_rd field, struct cvm_ima_sig *out);

/* struct cvm_ima_keyring holds the public keys signatures are checked with,
 * each with its IMA key id: the last 4 bytes of the certificate's
 * subjectKeyIdentifier when it has one (the kernel's lookup), and of the
 * SHA-1 over the subjectPublicKey bits (evmctl's). */
#define CVM_IMA_KEYS_MAX 64
struct cvm_ima_keyring;
CVM_API CVM_MUST_CHECK int cvm_ima_keyring_new(struct cvm_ima_keyring **out);
CVM_API void cvm_ima_keyring_free(struct cvm_ima_keyring *kr);
/* cvm_ima_keyring_add parses one RSA or EC key (PEM or DER, public key or
 * certificate; see cvm_pubkey_parse) and adds it. A certificate's chain,
 * validity and usage are not checked. Returns 0, CVM_E_TOO_LARGE (more than
 * CVM_IMA_KEYS_MAX keys) or the errors of cvm_pubkey_parse. */
CVM_API CVM_MUST_CHECK int cvm_ima_keyring_add(struct cvm_ima_keyring *kr, const uint8_t *buf, size_t len);
/* cvm_ima_keyring_count is the number of keys held. */
CVM_API size_t cvm_ima_keyring_count(const struct cvm_ima_keyring *kr);

/* enum cvm_ima_sig_status is the outcome of one signature check. */
enum cvm_ima_sig_status {
	CVM_IMA_SIG_NONE = 0,        /* the entry carries no signature */
	CVM_IMA_SIG_VALID = 1,       /* verified with a key of the keyring */
	CVM_IMA_SIG_INVALID = 2,     /* a key with its key id exists and the signature does not verify */
	CVM_IMA_SIG_NO_KEY = 3,      /* no key of the keyring has its key id */
	CVM_IMA_SIG_MALFORMED = 4,   /* the sig field does not decode */
	CVM_IMA_SIG_UNSUPPORTED = 5, /* another type or version, or a hash algorithm cvmkit lacks */
};
CVM_API const char *cvm_ima_sig_status_name(enum cvm_ima_sig_status s);

/* cvm_ima_sig_check checks the signature in `e`'s sig field over its file
 * digest with the key of `kr` whose key id matches: v2 signs the file
 * digest itself; v3 signs the hash of (type, hash_algo, file digest). The
 * signature's hash algorithm must be the file digest's. *keyid is the
 * signature's key id (0 when none). Returns 0 with *status set, or
 * CVM_E_NOMEM / CVM_E_CRYPTO. It says nothing of the file's contents: only
 * that the logged digest was signed. */
CVM_API CVM_MUST_CHECK int cvm_ima_sig_check(const struct cvm_ima_keyring *kr, const struct cvm_ima_entry *e,
                                             enum cvm_ima_sig_status *status, uint32_t *keyid);

#endif
