/* Internal interface of lib/eventlog: the parser's state (shared by the
 * source, format and replay code) and a test seam for the read buffer. */
#ifndef CVM_EVENTLOG_INT_H
#define CVM_EVENTLOG_INT_H

#include <cvmkit/eventlog.h>

#define EVL_BUF_INIT ((size_t)64 * 1024)
#define EVL_WHY_MAX 256

/* Internal result of the readers: an event, or the end of the log. */
#define EVL_END 1

struct json_t;

/* Fields are ordered by size (clang-tidy's padding check). */
struct cvm_evl_parser {
	/* Input: a memory view (fd < 0) or a file descriptor read through
	 * buf[pos..end), which grows to at most cap_max bytes. */
	const uint8_t *mem;
	size_t mem_len;
	uint8_t *buf;
	size_t cap, cap_max, pos, end;
	uint64_t off;     /* log offset of the current position */
	uint64_t err_off; /* where the event at fault starts, once err is set */

	size_t hdr_len;       /* shortest event header: the shortest padding a full header's check sees */
	size_t event_hdr_max; /* longest header of a crypto-agile event with every bank */

	/* dstack runtime log and JSON event log: the current event's payload;
	 * the JSON object a dstack event log came in (kept while its text is
	 * read), that log re-serialised when it came as an array, and the
	 * object's length in the input. */
	uint8_t *payload;
	struct json_t *doc;
	char *doc_text;
	uint64_t doc_len;

	struct cvm_digest_ctx *ctx[CVM_EVL_BANKS_MAX];
	struct cvm_evl_replay replay;

	int fd;
	enum cvm_evl_format want; /* as the caller asked */
	int err;                  /* sticky: once set, every call returns it */
	int js_state;             /* dstack JSON array reader: EVL_JS_* */
	bool eof;
	bool started, done;
	bool reg0_extended; /* an event extended register 0 (StartupLocality must come first) */

	/* dstack logs: the digest the current event extends, and its name. */
	uint8_t dstack_digest[48];
	char why[EVL_WHY_MAX];
	char name[CVM_EVL_DSTACK_NAME_MAX + 1];
};

/* cvm_evl_parser_new_fd_cap is cvm_evl_parser_new_fd with the buffer's
 * starting size given (tests force refills and growth with a tiny one). */
CVM_MUST_CHECK int cvm_evl_parser_new_fd_cap(int fd, enum cvm_evl_format format, size_t initial_cap,
                                             struct cvm_evl_parser **out);

/* cvm_evl_fail records `err`, the offset and a reason (prefixed with "at
 * byte <off>: "); returns err. */
int cvm_evl_fail(struct cvm_evl_parser *p, int err, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* cvm_evl_want makes the next `n` bytes available in `w` without consuming
 * them; `w` is shorter than n only at the end of the input. Pointers into an
 * earlier `w` are invalid after a call. Returns 0 or an error already
 * recorded with cvm_evl_fail (CVM_E_INTERNAL when n exceeds the buffer's
 * cap). */
int cvm_evl_want(struct cvm_evl_parser *p, size_t n, struct cvm_rd *w);
/* cvm_evl_consume moves past `n` bytes that cvm_evl_want made available. */
void cvm_evl_consume(struct cvm_evl_parser *p, size_t n);

/* cvm_evl_dstack_line parses one runtime-log line (without its newline) into
 * ev's name, payload, version and digest, using p's buffers. Returns 0 or an
 * error already recorded with cvm_evl_fail. */
int cvm_evl_dstack_line(struct cvm_evl_parser *p, struct cvm_rd line, uint64_t off, struct cvm_evl_event *ev);

/* States of the dstack JSON array reader. */
enum { EVL_JS_OPEN = 0, EVL_JS_FIRST, EVL_JS_ELEM, EVL_JS_NEXT, EVL_JS_DONE };

/* cvm_evl_json_detect decides, for an input whose first byte is '{' read
 * with CVM_EVL_AUTO, between dstack's runtime log (JSON lines) and one JSON
 * object that carries a dstack event log in "event_log". Returns 1 (the
 * object is loaded and the parser now reads its event_log), 0 (runtime
 * lines) or an error already recorded. */
int cvm_evl_json_detect(struct cvm_evl_parser *p);
/* cvm_evl_json_open starts a dstack JSON event log: an array, or (first
 * byte '{') an object carrying it in "event_log". Returns 0 or an error
 * already recorded. */
int cvm_evl_json_open(struct cvm_evl_parser *p);
/* cvm_evl_json_next reads the next event of the array into `ev` (register,
 * type, digest, name, payload, digest source) and checks a runtime event's
 * digest. Returns 0, EVL_END at the closing ']' (white space only after
 * it), or an error already recorded. */
int cvm_evl_json_next(struct cvm_evl_parser *p, struct cvm_evl_event *ev);
/* cvm_evl_json_cleanup frees what the JSON reader holds. */
void cvm_evl_json_cleanup(struct cvm_evl_parser *p);

#endif
