/* Measured-boot event logs: TCG PC Client logs (binary_bios_measurements,
 * crypto-agile or SHA-1 only), TDX CC event logs (CCEL), dstack's RTMR3
 * runtime event log (JSON lines) and dstack's JSON event log (the array of
 * {imr, event_type, digest, event, event_payload} that GetQuote returns),
 * parsed event by event and replayed to register values per hash bank.
 *
 * A log is untrusted input. Parsing checks structure only: the replayed
 * values mean something only once they are compared with values the hardware
 * signed (a TPM quote's PCR digest, a TDX quote's RTMRs). Nothing here
 * verifies a signature.
 *
 * Memory stays flat in the size of the log: the parser holds one event at a
 * time (at most CVM_EVL_EVENT_MAX bytes when it reads a file descriptor) and
 * the replay state is a fixed-size struct. */
#ifndef CVMKIT_EVENTLOG_H
#define CVMKIT_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "crypto.h"
#include "err.h"

/* Caps on untrusted sizes and counts. */
#define CVM_EVL_EVENT_DATA_MAX ((size_t)1 << 20)  /* event data; the largest real events (dbx) are ~30 KiB */
#define CVM_EVL_BANKS_MAX 8u                      /* hash algorithms in a Spec ID event */
#define CVM_EVL_EVENTS_MAX ((uint64_t)1 << 26)    /* events in one log */
#define CVM_EVL_REGS_MAX 24u                      /* PCRs 0..23 (CCEL uses MR indices 0..4) */
#define CVM_EVL_CCEL_REGS 5u                      /* MR index 0 = MRTD, 1..4 = RTMR0..3 */
#define CVM_EVL_DSTACK_LINE_MAX ((size_t)1 << 20) /* one JSON line of the runtime log */
#define CVM_EVL_DSTACK_NAME_MAX 1024u             /* a runtime event name, in bytes */
#define CVM_EVL_DSTACK_JSON_EVENT_MAX ((size_t)1 << 20) /* one event object of a dstack JSON log */
#define CVM_EVL_DSTACK_DOC_MAX ((size_t)4 << 20)        /* a JSON object carrying "event_log" */
#define CVM_EVL_DSTACK_JSON_REGS 4u                     /* imr 0..3 = RTMR0..3 */
/* CVM_EVL_EVENT_MAX bounds one binary event: header, one digest per bank
 * and the data. */
#define CVM_EVL_EVENT_MAX (12u + CVM_EVL_BANKS_MAX * (2u + CVM_DIGEST_MAX) + 4u + CVM_EVL_EVENT_DATA_MAX)

/* Event types (TCG PC Client Platform Firmware Profile, section 10.4.1). */
#define CVM_EV_PREBOOT_CERT 0x00000000u
#define CVM_EV_POST_CODE 0x00000001u
#define CVM_EV_NO_ACTION 0x00000003u
#define CVM_EV_SEPARATOR 0x00000004u
#define CVM_EV_ACTION 0x00000005u
#define CVM_EV_EVENT_TAG 0x00000006u
#define CVM_EV_S_CRTM_CONTENTS 0x00000007u
#define CVM_EV_S_CRTM_VERSION 0x00000008u
#define CVM_EV_CPU_MICROCODE 0x00000009u
#define CVM_EV_PLATFORM_CONFIG_FLAGS 0x0000000Au
#define CVM_EV_TABLE_OF_DEVICES 0x0000000Bu
#define CVM_EV_COMPACT_HASH 0x0000000Cu
#define CVM_EV_IPL 0x0000000Du
#define CVM_EV_IPL_PARTITION_DATA 0x0000000Eu
#define CVM_EV_NONHOST_CODE 0x0000000Fu
#define CVM_EV_NONHOST_CONFIG 0x00000010u
#define CVM_EV_NONHOST_INFO 0x00000011u
#define CVM_EV_OMIT_BOOT_DEVICE_EVENTS 0x00000012u
#define CVM_EV_POST_CODE2 0x00000013u
#define CVM_EV_EFI_VARIABLE_DRIVER_CONFIG 0x80000001u
#define CVM_EV_EFI_VARIABLE_BOOT 0x80000002u
#define CVM_EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003u
#define CVM_EV_EFI_BOOT_SERVICES_DRIVER 0x80000004u
#define CVM_EV_EFI_RUNTIME_SERVICES_DRIVER 0x80000005u
#define CVM_EV_EFI_GPT_EVENT 0x80000006u
#define CVM_EV_EFI_ACTION 0x80000007u
#define CVM_EV_EFI_PLATFORM_FIRMWARE_BLOB 0x80000008u
#define CVM_EV_EFI_HANDOFF_TABLES 0x80000009u
#define CVM_EV_EFI_PLATFORM_FIRMWARE_BLOB2 0x8000000Au
#define CVM_EV_EFI_HANDOFF_TABLES2 0x8000000Bu
#define CVM_EV_EFI_VARIABLE_BOOT2 0x8000000Cu
#define CVM_EV_EFI_GPT_EVENT2 0x8000000Du
#define CVM_EV_EFI_HCRTM_EVENT 0x80000010u
#define CVM_EV_EFI_VARIABLE_AUTHORITY 0x800000E0u
#define CVM_EV_EFI_SPDM_FIRMWARE_BLOB 0x800000E1u
#define CVM_EV_EFI_SPDM_FIRMWARE_CONFIG 0x800000E2u
/* dstack's runtime events (not a TCG type): extended into RTMR3. */
#define CVM_EV_DSTACK_RUNTIME 0x08000001u
/* The register dstack's runtime events extend: RTMR3, which dstack numbers 3
 * (the CCEL numbers it MR index 4). */
#define CVM_EVL_DSTACK_REG 3u

/* enum cvm_evl_format names the log formats. */
enum cvm_evl_format {
	CVM_EVL_AUTO = 0,        /* only as a parser argument: detect (see cvm_evl_parser_new_mem) */
	CVM_EVL_TCG_SHA1 = 1,    /* "tcg-sha1": TCG_PCR_EVENT records, SHA-1 only (TPM 1.2 style) */
	CVM_EVL_TCG2 = 2,        /* "tcg2": crypto-agile, a Spec ID Event03 then TCG_PCR_EVENT2 records */
	CVM_EVL_CCEL = 3,        /* "ccel": TDX CC event log, crypto-agile, MR index 1..4 = RTMR0..3 */
	CVM_EVL_DSTACK = 4,      /* "dstack-runtime": dstack's runtime_events.log, JSON lines */
	CVM_EVL_DSTACK_JSON = 5, /* "dstack-json": dstack's event log, a JSON array of
	                            {imr, event_type, digest, event, event_payload}, imr 0..3 = RTMR0..3 */
};

/* cvm_evl_format_name returns "tcg-sha1", "tcg2", "ccel", "dstack-runtime",
 * "dstack-json" or "auto" (static strings; "unknown" for any other value). */
CVM_API const char *cvm_evl_format_name(enum cvm_evl_format format);
/* cvm_evl_format_from_name accepts the names above and "dstack". Returns 0 or
 * CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_evl_format_from_name(const char *name, enum cvm_evl_format *out);

/* struct cvm_evl_digest is one digest of an event, borrowed from the parser. */
struct cvm_evl_digest {
	uint16_t alg; /* TPM_ALG_ID; possibly one cvmkit cannot compute */
	const uint8_t *p;
	size_t len;
};

/* enum cvm_evl_digest_source says where the digest an event extends comes
 * from, that is, what stands behind it. */
enum cvm_evl_digest_source {
	/* As the log gives it, not checked against the event data (binary logs;
	 * boot events of a dstack JSON log). Most such digests hash what the data
	 * describes (an image, a variable), not the data. */
	CVM_EVL_DIGEST_LOGGED = 0,
	/* A dstack runtime event whose log gives no digest (the runtime log,
	 * or a stripped GetQuote log): computed from its name and payload. */
	CVM_EVL_DIGEST_COMPUTED = 1,
	/* A dstack runtime event whose logged digest was computed again from
	 * its name and payload and found equal. */
	CVM_EVL_DIGEST_CHECKED = 2,
};

/* struct cvm_evl_event is one event as cvm_evl_parser_next returns it. Every
 * pointer borrows from the parser and is valid until its next call. */
struct cvm_evl_event {
	uint64_t seq;    /* 0 for the first event (the Spec ID event of a crypto-agile log) */
	uint64_t offset; /* byte offset of the event (dstack runtime log: of its line; dstack JSON log:
	                    of its object, in the event_log text when the replay is_wrapped) */
	uint64_t len;    /* bytes the event takes in the log (dstack runtime log: with its newline) */
	/* PCR index; CCEL: MR index (1..4 = RTMR0..3); dstack runtime log: 3
	 * (RTMR3); dstack JSON log: imr (0..3 = RTMR0..3). An EV_NO_ACTION event
	 * (never extended) keeps any index the log writes, 0xffffffff included:
	 * range-check it before use. */
	uint32_t reg;
	uint32_t type;       /* CVM_EV_* */
	bool is_header;      /* the Spec ID Event03 of a crypto-agile log (digest_count 0) */
	size_t digest_count; /* each digest is of a bank of the replay (dstack JSON EV_NO_ACTION: 0 or 1) */
	struct cvm_evl_digest digests[CVM_EVL_BANKS_MAX];
	struct cvm_rd data; /* event data; dstack: the decoded payload (a JSON log may strip it: empty) */
	/* dstack: the event name (NUL-terminated, no NUL inside; "" for most
	 * boot events of a JSON log); NULL in binary logs. */
	const char *name;
	unsigned dstack_version;                  /* dstack runtime events: 1 or 2 (digest rule); else 0 */
	enum cvm_evl_digest_source digest_source; /* of digests[] */
};

/* struct cvm_evl_bank is one hash bank of a replay. Registers that no event
 * extended keep their reset value: zero, except TCG PCRs 17..22 (all ones, as
 * after TPM2_Startup without a dynamic launch) and PCR 0 after a
 * StartupLocality event (zero but the last byte, which holds the
 * locality). */
struct cvm_evl_bank {
	uint16_t alg;      /* TPM_ALG_ID */
	uint16_t len;      /* digest length in bytes */
	bool supported;    /* cvmkit computes this algorithm; if false, reg[] is not meaningful */
	uint32_t extended; /* bit i: register i was extended at least once */
	uint32_t partial;  /* bit i: an event extended register i without a digest for this bank,
	                      so reg[i] of this bank is NOT the register's value */
	uint8_t reg[CVM_EVL_REGS_MAX][CVM_DIGEST_MAX];
};

/* struct cvm_evl_replay is the state of a replay: register values per bank. */
struct cvm_evl_replay {
	enum cvm_evl_format format;
	uint64_t event_count;  /* events, counting the Spec ID event */
	uint64_t bytes_parsed; /* bytes up to the end of the last event (padding excluded;
	                          dstack JSON log: the whole input) */
	uint64_t padding_len;  /* trailing 0x00 or 0xff bytes after the last event */
	uint32_t reg_count;    /* registers of the format: 24 (TCG), 5 (CCEL), 4 (dstack) */
	/* dstack JSON log only: it came in the "event_log" member of a JSON
	 * object (a GetQuote reply, ...); event offsets count in that text. */
	bool is_wrapped;
	/* Events extended, by the source of their digest (EV_NO_ACTION events
	 * are not extended and not counted). */
	uint64_t digests_logged;
	uint64_t digests_computed;
	uint64_t digests_checked;
	int startup_locality; /* -1, or the locality of a StartupLocality event (0, 3 or 4) */
	size_t bank_count;
	struct cvm_evl_bank banks[CVM_EVL_BANKS_MAX];
};

/* struct cvm_evl_parser reads a log one event at a time and replays each
 * event it returns. */
struct cvm_evl_parser;

/* cvm_evl_parser_new_mem makes a parser over the `len` bytes at `buf`, which
 * must outlive it. With CVM_EVL_AUTO the format is taken from the log: '['
 * as first byte is a dstack JSON event log; '{' is one too when the first
 * line is a JSON object with an "event_log" member, or when the first line
 * is no JSON text of its own and the whole input is such an object, and a
 * dstack runtime log otherwise; a first event that is a Spec ID Event03
 * makes a crypto-agile log, which is a CCEL when SHA-384 is its only bank and
 * "tcg2" otherwise; anything else is "tcg-sha1". A format given explicitly
 * must match the log (a CCEL may be read as "tcg2" and the other way round;
 * CVM_EVL_DSTACK_JSON takes an array or an object carrying it). The caller frees the parser with
 * cvm_evl_parser_free. Returns 0, CVM_E_INVAL (unknown format) or CVM_E_NOMEM; the log itself is read by
 * cvm_evl_parser_next. */
CVM_API CVM_MUST_CHECK int cvm_evl_parser_new_mem(const uint8_t *buf, size_t len, enum cvm_evl_format format,
                                                  struct cvm_evl_parser **out);
/* cvm_evl_parser_new_fd makes a parser that reads `fd` (not closed by the
 * parser) to its end through a buffer that grows to at most
 * CVM_EVL_EVENT_MAX bytes, whatever the log's size. Returns 0, CVM_E_INVAL
 * (fd < 0, unknown format) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_evl_parser_new_fd(int fd, enum cvm_evl_format format,
                                                 struct cvm_evl_parser **out);
/* cvm_evl_parser_free frees `p`; NULL is a no-op. */
CVM_API void cvm_evl_parser_free(struct cvm_evl_parser *p);

/* cvm_evl_parser_next reads the next event into `ev` and extends the
 * replay with it; `*has_event` is false (and 0 returned) at the end of the
 * log. Binary logs end at the end of the input or at trailing padding: one
 * run of 0x00 bytes, or of 0xff bytes, of any length, to the end of the
 * input (a CCEL copied out of a machine may keep fewer padding bytes than an
 * event header). Other bytes after the last event are a cut or malformed
 * event, an error; a log cut between two events (or where what is left of
 * the cut event is such a run) is read as the shorter log it then is. Once
 * it has failed, the parser keeps returning the same error.
 *
 * Structure checked: every length against what remains and against its
 * _MAX; the Spec ID event (signature, 1..CVM_EVL_BANKS_MAX distinct
 * algorithms, the digest size of every known algorithm, no bytes after the
 * vendor info); digests per event (1..bank count, each of a bank, none
 * twice); the register index of every event that extends one (PCR 0..23;
 * CCEL MR index 1..4; dstack imr 0..3); EV_NO_ACTION events are never
 * extended and keep any index (0xffffffff included); at most one
 * StartupLocality record in PCR 0, before PCR 0 is extended, with locality
 * 0, 3 or 4 (TCG logs; elsewhere, and under another index, it is an
 * EV_NO_ACTION event like any other). dstack lines: a JSON object with
 * exactly "event" (a string without NUL, at most CVM_EVL_DSTACK_NAME_MAX
 * bytes), "payload" (standard base64) and optionally "version" (1 or 2);
 * blank lines are skipped. dstack JSON events: an object with exactly "imr",
 * "event_type" (integers 0..2^32-1), "event" (as a line's), "event_payload"
 * (hex) and optionally "digest" ("" or a SHA-384 digest in hex), "version"
 * (1 or 2), "preimage" (hex); a runtime event (type CVM_EV_DSTACK_RUNTIME)
 * only in imr 3 and the only type there besides EV_NO_ACTION, extended by
 * the digest computed from name and payload, which must equal the logged
 * digest and hash of the preimage when they are given; other events need a
 * digest and are extended by it; at most CVM_EVL_DSTACK_JSON_EVENT_MAX bytes
 * per event, CVM_EVL_DSTACK_DOC_MAX for an object carrying the array.
 * Not checked: what events mean (event data is decoded only for display, by
 * cvm_evl_event_describe), and that a binary or boot event's digest is the
 * hash of its data (for most types it is not: it hashes what the data
 * describes); ev->digest_source says which digests were checked.
 *
 * Returns 0, CVM_E_TRUNCATED, CVM_E_FORMAT, CVM_E_TOO_LARGE,
 * CVM_E_UNSUPPORTED (a digest size cvmkit cannot hold, a dstack event
 * version other than 1 and 2), CVM_E_SYSTEM
 * (read() failed; errno is kept), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_evl_parser_next(struct cvm_evl_parser *p, struct cvm_evl_event *ev,
                                               bool *has_event);

/* cvm_evl_parser_format is the log's format, known after the first event
 * (CVM_EVL_AUTO before). */
CVM_API enum cvm_evl_format cvm_evl_parser_format(const struct cvm_evl_parser *p);
/* cvm_evl_parser_replay is the replay of the events returned so far
 * (borrowed; valid until the parser is freed). */
CVM_API const struct cvm_evl_replay *cvm_evl_parser_replay(const struct cvm_evl_parser *p);
/* cvm_evl_parser_error_offset is the byte offset where the event at fault
 * starts (padding: where it starts) when cvm_evl_parser_next failed, or
 * where the next event starts. */
CVM_API uint64_t cvm_evl_parser_error_offset(const struct cvm_evl_parser *p);
/* cvm_evl_parser_err explains the last failure in one English sentence
 * fragment that starts "at byte N: " (N = cvm_evl_parser_error_offset;
 * "at byte N of event_log: " for a dstack JSON log carried in an object) and
 * names the field at fault; "" when there is none. The text quotes no input
 * bytes. */
CVM_API const char *cvm_evl_parser_err(const struct cvm_evl_parser *p);

/* cvm_evl_replay replays a whole log (the `len` bytes at `buf`) into `out`:
 * for each bank the Spec ID event lists (SHA-1 for tcg-sha1, SHA-384 for
 * dstack), register values after every event in order, EV_NO_ACTION events
 * excepted, with reg := H(reg || digest). This is the function to compare a
 * log with a TPM quote: read the PCR values of the quote's bank with
 * cvm_evl_replay_value, or compute the quote's pcrDigest with
 * cvm_evl_replay_pcr_digest, and compare with what the TPM signed. A TDX
 * CCEL replays to RTMR0..3 at MR index 1..4; a dstack runtime log to RTMR3
 * at index 3 (CVM_EVL_DSTACK_REG); a dstack JSON log to RTMR0..3 at imr
 * 0..3: compare all four with the TDX quote's.
 * It checks what cvm_evl_parser_next checks; it does not check that the log
 * is the one the quote covers (that is the comparison). On failure `out` is
 * zeroed. Returns 0 or an error of cvm_evl_parser_next. */
CVM_API CVM_MUST_CHECK int cvm_evl_replay(const uint8_t *buf, size_t len, enum cvm_evl_format format,
                                          struct cvm_evl_replay *out);
/* cvm_evl_replay_fd is cvm_evl_replay reading `fd` to its end, in memory
 * bounded by CVM_EVL_EVENT_MAX whatever the log's size. */
CVM_API CVM_MUST_CHECK int cvm_evl_replay_fd(int fd, enum cvm_evl_format format, struct cvm_evl_replay *out);

/* cvm_evl_replay_bank finds the bank of algorithm `alg`, or NULL. */
CVM_API const struct cvm_evl_bank *cvm_evl_replay_bank(const struct cvm_evl_replay *r, uint16_t alg);
/* cvm_evl_replay_value lends the value of register `reg` in bank `alg`
 * (`*out_len` bytes, valid as long as `r`), extended or at its reset value.
 * Returns 0, CVM_E_INVAL (reg >= r->reg_count), CVM_E_UNSUPPORTED (no such
 * bank, or cvmkit cannot compute its algorithm) or CVM_E_FORMAT (the bank
 * lacks a digest of an event that extended this register). */
CVM_API CVM_MUST_CHECK int cvm_evl_replay_value(const struct cvm_evl_replay *r, uint16_t alg, uint32_t reg,
                                                const uint8_t **out, size_t *out_len);

/* struct cvm_evl_pcr_select is one bank of a TPML_PCR_SELECTION: algorithm and
 * a bit mask of PCRs (bit i = PCR i). */
struct cvm_evl_pcr_select {
	uint16_t alg;
	uint32_t mask;
};
/* cvm_evl_replay_pcr_digest computes a TPM quote's pcrDigest from the
 * replay: H_hash_alg over the selected registers' values, bank by bank in
 * the order of `sel`, registers in increasing index within a bank (the
 * order TPM2_Quote uses). Registers the log never extended count with their
 * reset value, so a quote over a register that other software extends
 * (PCR 10 of IMA) will not match: compose that digest yourself from
 * cvm_evl_replay_value and the other replay. Writes cvm_digest_len(hash_alg)
 * bytes to `out` (`out_len` bytes). Returns 0, CVM_E_INVAL (a register
 * beyond reg_count, out_len too small, no selection), or an error of
 * cvm_evl_replay_value or cvm_digest. */
CVM_API CVM_MUST_CHECK int cvm_evl_replay_pcr_digest(const struct cvm_evl_replay *r,
                                                     const struct cvm_evl_pcr_select *sel, size_t sel_count,
                                                     uint16_t hash_alg, uint8_t *out, size_t out_len);

/* cvm_evl_dstack_digest computes the SHA-384 digest dstack extends into
 * RTMR3 for the runtime event `name` (NUL-terminated) with `payload`:
 * version 1: SHA-384(u32le(0x08000001) || ":" || name || ":" || payload);
 * version 2: SHA-384 of the RFC 8785 (JCS) text
 * {"name":<name>,"payload":"<lowercase hex>","type":134217729}.
 * Returns 0, CVM_E_INVAL (version not 1 or 2, name longer than
 * CVM_EVL_DSTACK_NAME_MAX), CVM_E_NOMEM or CVM_E_CRYPTO. It does not check
 * that `name` is valid UTF-8 (version 2 copies its bytes as they are). */
CVM_API CVM_MUST_CHECK int cvm_evl_dstack_digest(const char *name, const uint8_t *payload, size_t payload_len,
                                                 unsigned version, uint8_t out[48]);

/* Decoding for people. */

/* cvm_evl_type_name returns the TCG name of an event type ("EV_SEPARATOR",
 * "EV_EFI_VARIABLE_BOOT", ...; "DSTACK_RUNTIME_EVENT" for
 * CVM_EV_DSTACK_RUNTIME), or NULL when the type is not known. */
CVM_API const char *cvm_evl_type_name(uint32_t type);

/* struct cvm_evl_efi_var is a decoded UEFI_VARIABLE_DATA (the data of
 * EV_EFI_VARIABLE_* events); the views borrow from the event data. */
struct cvm_evl_efi_var {
	uint8_t guid[16];   /* VariableName: the vendor GUID, as stored (mixed endian) */
	struct cvm_rd name; /* UnicodeName: UTF-16LE, 2 * name_chars bytes */
	size_t name_chars;
	struct cvm_rd value; /* VariableData */
	size_t trailing_len; /* bytes after VariableData (some shim builds log 6 extra bytes) */
};
/* cvm_evl_efi_var_parse decodes `data` as UEFI_VARIABLE_DATA: the two
 * lengths must fit in `data`; bytes left after them are counted in
 * trailing_len, not refused (real shim logs have them). Returns 0,
 * CVM_E_TRUNCATED or CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_evl_efi_var_parse(struct cvm_rd data, struct cvm_evl_efi_var *out);
/* cvm_evl_guid_format writes a GUID in registry format
 * ("8be4df61-93ca-11d2-aa0d-00e098032b8c") and a NUL to `out`. */
CVM_API void cvm_evl_guid_format(const uint8_t guid[16], char out[37]);
/* cvm_evl_utf16_text writes UTF-16LE `in` as printable ASCII to `out`
 * (`cap` bytes, always NUL-terminated, cut with "..." if too long),
 * stopping at a NUL character; other characters become \uXXXX. */
CVM_API void cvm_evl_utf16_text(struct cvm_rd in, char *out, size_t cap);

#define CVM_EVL_DESCRIBE_MAX 512u
/* cvm_evl_event_describe writes a one-line description of `ev` for people
 * (strings, EFI variable names and values, boot entries, image paths,
 * firmware blobs, Spec ID banks, runtime event names) to `out` (`cap` bytes,
 * always NUL-terminated; cut with "..." at cap). The text is printable
 * ASCII: other bytes of the log are escaped. It never fails: data it cannot
 * decode is described by its length. */
CVM_API void cvm_evl_event_describe(const struct cvm_evl_event *ev, char *out, size_t cap);

#endif
