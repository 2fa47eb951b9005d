/* Streaming reader over an IMA measurement list: a file, a descriptor or
 * memory. A descriptor is read through one fixed window, so memory stays
 * flat whatever the list's size. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cvmkit/ima.h>
#include <cvmkit/secret.h>

#include "ima_int.h"

/* The window holds the longest line or entry the caps allow, plus room to
 * read in large blocks. */
#define WINDOW_LEN (CVM_IMA_LINE_MAX + 1 + 65536)
#define ERR_MAX 320

struct cvm_ima_reader {
	int fd;
	bool own_fd;
	const uint8_t *data; /* the window (memory mode: the whole list) */
	uint8_t *buf;        /* owned window (descriptor mode) */
	size_t start, end;   /* unread bytes are data[start, end) */
	uint64_t base;       /* list offset of data[0] */
	bool eof;
	enum cvm_ima_format fmt;
	bool big_endian;
	bool detected;
	uint64_t count;
	uint8_t *scratch; /* ascii: rebuilt template data */
	int sticky;       /* first error, returned again by later calls */
	char err[ERR_MAX];
};

static int reader_new(enum cvm_ima_format fmt, struct cvm_ima_reader **out)
{
	struct cvm_ima_reader *rd;

	*out = NULL;
	if (fmt != CVM_IMA_FORMAT_AUTO && fmt != CVM_IMA_FORMAT_BINARY && fmt != CVM_IMA_FORMAT_ASCII)
		return CVM_E_INVAL;
	rd = calloc(1, sizeof(*rd));
	if (rd == NULL)
		return CVM_E_NOMEM;
	rd->fd = -1;
	rd->fmt = fmt;
	*out = rd;
	return CVM_OK;
}

int cvm_ima_reader_new_mem(const uint8_t *buf, size_t len, enum cvm_ima_format fmt,
                           struct cvm_ima_reader **out)
{
	struct cvm_ima_reader *rd = NULL;
	int r;

	*out = NULL;
	if (buf == NULL && len != 0)
		return CVM_E_INVAL;
	r = reader_new(fmt, &rd);
	if (r != CVM_OK)
		return r;
	rd->data = buf;
	rd->end = buf == NULL ? 0 : len;
	rd->eof = true;
	*out = rd;
	return CVM_OK;
}

int cvm_ima_reader_new_fd(int fd, enum cvm_ima_format fmt, struct cvm_ima_reader **out)
{
	struct cvm_ima_reader *rd = NULL;
	int r;

	*out = NULL;
	if (fd < 0)
		return CVM_E_INVAL;
	r = reader_new(fmt, &rd);
	if (r != CVM_OK)
		return r;
	rd->buf = malloc(WINDOW_LEN);
	if (rd->buf == NULL) {
		cvm_ima_reader_free(rd);
		return CVM_E_NOMEM;
	}
	rd->data = rd->buf;
	rd->fd = fd;
	*out = rd;
	return CVM_OK;
}

int cvm_ima_reader_open(const char *path, enum cvm_ima_format fmt, struct cvm_ima_reader **out)
{
	struct cvm_ima_reader *rd = NULL;
	int fd, r, saved;

	*out = NULL;
	if (path == NULL)
		return CVM_E_INVAL;
	if (strcmp(path, "-") == 0)
		return cvm_ima_reader_new_fd(STDIN_FILENO, fmt, out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CVM_E_SYSTEM;
	r = cvm_ima_reader_new_fd(fd, fmt, &rd);
	if (r != CVM_OK) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return r;
	}
	rd->own_fd = true;
	*out = rd;
	return CVM_OK;
}

void cvm_ima_reader_free(struct cvm_ima_reader *rd)
{
	if (rd == NULL)
		return;
	if (rd->own_fd && rd->fd >= 0)
		(void)close(rd->fd);
	free(rd->buf);
	free(rd->scratch);
	free(rd);
}

enum cvm_ima_format cvm_ima_reader_format(const struct cvm_ima_reader *rd)
{
	return rd->detected ? rd->fmt : CVM_IMA_FORMAT_AUTO;
}

uint64_t cvm_ima_reader_count(const struct cvm_ima_reader *rd)
{
	return rd->count;
}

const char *cvm_ima_reader_err(const struct cvm_ima_reader *rd)
{
	return rd->err;
}

/* fill moves the unread bytes to the front of the window and reads once
 * more into the rest. Returns 0 (possibly setting eof), CVM_E_SYSTEM, or
 * CVM_E_INTERNAL when the window is full of one unfinished entry or line
 * (which the caps rule out). */
static int fill(struct cvm_ima_reader *rd)
{
	size_t left = rd->end - rd->start;
	ssize_t n;

	if (rd->eof)
		return CVM_OK;
	if (rd->start != 0) {
		if (left != 0)
			memmove(rd->buf, rd->buf + rd->start, left);
		rd->base += rd->start;
		rd->start = 0;
		rd->end = left;
	}
	if (rd->end == WINDOW_LEN)
		return CVM_E_INTERNAL; /* the caps keep every entry and line smaller */
	for (;;) {
		n = read(rd->fd, rd->buf + rd->end, WINDOW_LEN - rd->end);
		if (n >= 0)
			break;
		if (errno != EINTR)
			return CVM_E_SYSTEM;
	}
	if (n == 0)
		rd->eof = true;
	rd->end += (size_t)n;
	return CVM_OK;
}

/* fail records the first error with its place in the list. */
static int fail(struct cvm_ima_reader *rd, int r, const char *why)
{
	uint64_t at = rd->base + rd->start;

	if (rd->fmt == CVM_IMA_FORMAT_ASCII)
		(void)snprintf(rd->err, sizeof(rd->err), "line %llu: %s", (unsigned long long)rd->count + 1,
		               why);
	else
		(void)snprintf(rd->err, sizeof(rd->err), "entry %llu at byte %llu: %s",
		               (unsigned long long)rd->count + 1, (unsigned long long)at, why);
	rd->sticky = r;
	return r;
}

/* window is the view of the unread bytes. */
static struct cvm_rd window(const struct cvm_ima_reader *rd)
{
	struct cvm_rd w;

	cvm_rd_init(&w, rd->data, rd->end);
	(void)cvm_rd_skip(&w, rd->start);
	return w;
}

/* detect picks the format and, for binary lists, the byte order from the
 * first bytes: an ascii list starts with the PCR index in decimal, a binary
 * one with a u32 PCR index below 24 in one byte order or the other. */
static int detect(struct cvm_ima_reader *rd)
{
	uint32_t le, be;
	struct cvm_rd w;
	uint8_t first;
	int r;

	while (rd->end - rd->start < 4 && !rd->eof) {
		r = fill(rd);
		if (r != CVM_OK)
			return r;
	}
	rd->detected = true;
	if (rd->end == rd->start) {
		if (rd->fmt == CVM_IMA_FORMAT_AUTO)
			rd->fmt = CVM_IMA_FORMAT_BINARY;
		return CVM_OK;
	}
	w = window(rd);
	if (!cvm_rd_peek_u8(&w, &first))
		return CVM_E_INTERNAL;
	if (rd->fmt == CVM_IMA_FORMAT_AUTO)
		rd->fmt = first >= '0' && first <= '9' ? CVM_IMA_FORMAT_ASCII : CVM_IMA_FORMAT_BINARY;
	if (rd->fmt == CVM_IMA_FORMAT_ASCII) {
		rd->scratch = malloc(CVM_IMA_TEMPLATE_DATA_MAX);
		return rd->scratch == NULL ? CVM_E_NOMEM : CVM_OK;
	}
	if (w.len >= 4) {
		struct cvm_rd w2 = w;

		if (cvm_rd_u32le(&w, &le) && cvm_rd_u32be(&w2, &be))
			rd->big_endian = le >= CVM_IMA_PCR_COUNT && be < CVM_IMA_PCR_COUNT;
	}
	return CVM_OK;
}

static int next_binary(struct cvm_ima_reader *rd, struct cvm_ima_entry *e, bool *has_entry)
{
	char why[IMA_WHY_MAX] = "";
	struct cvm_rd in;
	int r;

	for (;;) {
		if (rd->start == rd->end && rd->eof)
			return CVM_OK;
		in = window(rd);
		r = ima_parse_binary(&in, rd->big_endian, e, why);
		if (r == CVM_OK) {
			rd->start = rd->end - in.len;
			*has_entry = true;
			return CVM_OK;
		}
		if (r != CVM_E_TRUNCATED)
			return fail(rd, r, why);
		if (rd->eof) {
			(void)snprintf(why, sizeof(why),
			               "the list ends inside the entry (%zu bytes left): truncated",
			               rd->end - rd->start);
			return fail(rd, r, why);
		}
		r = fill(rd);
		if (r != CVM_OK)
			return fail(rd, r, r == CVM_E_SYSTEM ? "read error" : "the read window is full");
	}
}

/* line_len finds the '\n' that ends the line at the front of `w`, looking
 * from byte `from` on; false when there is none yet. */
static bool line_len(const struct cvm_rd *w, size_t from, size_t *len)
{
	struct cvm_rd rest = *w;
	const uint8_t *nl;

	if (!cvm_rd_skip(&rest, from))
		return false;
	nl = memchr(rest.p, '\n', rest.len);
	if (nl == NULL)
		return false;
	*len = from + (size_t)(nl - rest.p); /* both point into `rest` */
	return true;
}

static int next_ascii(struct cvm_ima_reader *rd, struct cvm_ima_entry *e, bool *has_entry)
{
	char why[IMA_WHY_MAX] = "";
	struct cvm_rd w;
	size_t len = 0, scanned = 0;
	int r;

	for (;;) {
		w = window(rd);
		if (w.len == 0 && rd->eof)
			return CVM_OK;
		if (line_len(&w, scanned, &len))
			break;
		if (w.len > CVM_IMA_LINE_MAX) {
			(void)snprintf(why, sizeof(why), "the line is longer than %d bytes",
			               CVM_IMA_LINE_MAX);
			return fail(rd, CVM_E_TOO_LARGE, why);
		}
		if (rd->eof)
			return fail(rd, CVM_E_TRUNCATED, "the last line has no newline: truncated");
		scanned = w.len;
		r = fill(rd);
		if (r != CVM_OK)
			return fail(rd, r, r == CVM_E_SYSTEM ? "read error" : "the read window is full");
	}
	if (len > CVM_IMA_LINE_MAX) {
		(void)snprintf(why, sizeof(why), "the line is longer than %d bytes", CVM_IMA_LINE_MAX);
		return fail(rd, CVM_E_TOO_LARGE, why);
	}
	r = ima_parse_ascii((const char *)w.p, len, rd->scratch, CVM_IMA_TEMPLATE_DATA_MAX, e, why);
	if (r != CVM_OK)
		return fail(rd, r, why);
	rd->start += len + 1;
	*has_entry = true;
	return CVM_OK;
}

int cvm_ima_reader_next(struct cvm_ima_reader *rd, struct cvm_ima_entry *e, bool *has_entry)
{
	int r;

	*has_entry = false;
	if (rd->sticky != CVM_OK)
		return rd->sticky;
	rd->err[0] = '\0';
	if (!rd->detected) {
		r = detect(rd);
		if (r != CVM_OK)
			return fail(rd, r, r == CVM_E_SYSTEM ? "read error" : "out of memory");
	}
	if (rd->count >= CVM_IMA_ENTRIES_MAX) {
		if (rd->start == rd->end && rd->eof)
			return CVM_OK;
		return fail(rd, CVM_E_TOO_LARGE, "the list holds more entries than CVM_IMA_ENTRIES_MAX");
	}
	if (rd->fmt == CVM_IMA_FORMAT_ASCII)
		r = next_ascii(rd, e, has_entry);
	else
		r = next_binary(rd, e, has_entry);
	if (r == CVM_OK && *has_entry)
		rd->count++;
	return r;
}
