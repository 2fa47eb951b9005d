/* Internal interface of lib/eventlog: the parser's state (shared by the
 * source, format and replay code) and a test seam for the read buffer. */
#ifndef CVM_EVENTLOG_INT_H
#define CVM_EVENTLOG_INT_H

#include <cvmkit/eventlog.h>

#define EVL_BUF_INIT ((size_t)64 * 1024)
#define EVL_WHY_MAX 200

struct cvm_evl_parser {
	/* Input: a memory view (fd < 0) or a file descriptor read through
	 * buf[pos..end), which grows to at most cap_max bytes. */
	int fd;
	const uint8_t *mem;
	size_t mem_len;
	uint8_t *buf;
	size_t cap, cap_max, pos, end;
	bool eof;
	uint64_t off; /* log offset of the current position */

	enum cvm_evl_format want; /* as the caller asked */
	bool started, done;
	int err; /* sticky: once set, every call returns it */
	uint64_t err_off;
	char why[EVL_WHY_MAX];

	size_t hdr_len;       /* shortest event header: the least padding that ends a log */
	size_t event_hdr_max; /* longest header of a crypto-agile event with every bank */
	bool reg0_extended;   /* an event extended register 0 (StartupLocality must come first) */
	struct cvm_evl_replay replay;
	struct cvm_digest_ctx *ctx[CVM_EVL_BANKS_MAX];

	/* dstack runtime log: the current event's name, payload and digest. */
	char name[CVM_EVL_DSTACK_NAME_MAX + 1];
	uint8_t *payload;
	uint8_t dstack_digest[48];
};

/* cvm_evl_parser_new_fd_cap is cvm_evl_parser_new_fd with the buffer's
 * starting size given (tests force refills and growth with a tiny one). */
CVM_MUST_CHECK int cvm_evl_parser_new_fd_cap(int fd, enum cvm_evl_format format, size_t initial_cap,
                                             struct cvm_evl_parser **out);

/* cvm_evl_fail records `err`, the offset and a reason; returns err. */
int cvm_evl_fail(struct cvm_evl_parser *p, int err, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* cvm_evl_dstack_line parses one runtime-log line (without its newline) into
 * ev's name, payload, version and digest, using p's buffers. Returns 0 or an
 * error already recorded with cvm_evl_fail. */
int cvm_evl_dstack_line(struct cvm_evl_parser *p, struct cvm_rd line, uint64_t off, struct cvm_evl_event *ev);

#endif
