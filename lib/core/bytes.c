/* Bounded reader and writer. Every bounds check compares lengths, never
 * pointers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/secret.h>

#include "core_lib.h"

void cvm_rd_init(struct cvm_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p == NULL ? 0 : len;
}

bool cvm_rd_empty(const struct cvm_rd *r)
{
	return r->len == 0;
}

bool cvm_rd_bytes(struct cvm_rd *r, const uint8_t **out, size_t n)
{
	if (r->len < n)
		return false;
	*out = r->p;
	/* An empty view may have a NULL pointer: NULL + 0 is undefined in C. */
	if (n != 0) {
		r->p += n;
		r->len -= n;
	}
	return true;
}

bool cvm_rd_copy(struct cvm_rd *r, void *dst, size_t n)
{
	const uint8_t *p;

	if (!cvm_rd_bytes(r, &p, n))
		return false;
	if (n != 0)
		memcpy(dst, p, n);
	return true;
}

bool cvm_rd_skip(struct cvm_rd *r, size_t n)
{
	const uint8_t *p;

	return cvm_rd_bytes(r, &p, n);
}

bool cvm_rd_sub(struct cvm_rd *r, struct cvm_rd *sub, size_t n)
{
	const uint8_t *p;

	if (!cvm_rd_bytes(r, &p, n))
		return false;
	sub->p = p;
	sub->len = n;
	return true;
}

bool cvm_rd_u8(struct cvm_rd *r, uint8_t *v)
{
	const uint8_t *p;

	if (!cvm_rd_bytes(r, &p, 1))
		return false;
	*v = p[0];
	return true;
}

bool cvm_rd_peek_u8(const struct cvm_rd *r, uint8_t *v)
{
	if (r->len < 1)
		return false;
	*v = r->p[0];
	return true;
}

static bool rd_uint_le(struct cvm_rd *r, size_t n, uint64_t *v)
{
	const uint8_t *p;
	uint64_t x = 0;

	if (!cvm_rd_bytes(r, &p, n))
		return false;
	for (size_t i = n; i > 0; i--)
		x = (x << 8) | p[i - 1];
	*v = x;
	return true;
}

static bool rd_uint_be(struct cvm_rd *r, size_t n, uint64_t *v)
{
	const uint8_t *p;
	uint64_t x = 0;

	if (!cvm_rd_bytes(r, &p, n))
		return false;
	for (size_t i = 0; i < n; i++)
		x = (x << 8) | p[i];
	*v = x;
	return true;
}

bool cvm_rd_u16le(struct cvm_rd *r, uint16_t *v)
{
	uint64_t x;

	if (!rd_uint_le(r, 2, &x))
		return false;
	*v = (uint16_t)x;
	return true;
}

bool cvm_rd_u32le(struct cvm_rd *r, uint32_t *v)
{
	uint64_t x;

	if (!rd_uint_le(r, 4, &x))
		return false;
	*v = (uint32_t)x;
	return true;
}

bool cvm_rd_u64le(struct cvm_rd *r, uint64_t *v)
{
	return rd_uint_le(r, 8, v);
}

bool cvm_rd_u16be(struct cvm_rd *r, uint16_t *v)
{
	uint64_t x;

	if (!rd_uint_be(r, 2, &x))
		return false;
	*v = (uint16_t)x;
	return true;
}

bool cvm_rd_u32be(struct cvm_rd *r, uint32_t *v)
{
	uint64_t x;

	if (!rd_uint_be(r, 4, &x))
		return false;
	*v = (uint32_t)x;
	return true;
}

bool cvm_rd_u64be(struct cvm_rd *r, uint64_t *v)
{
	return rd_uint_be(r, 8, v);
}

/* Length-prefixed children: the view is only moved if the whole child fits. */
bool cvm_rd_sub_u16le(struct cvm_rd *r, struct cvm_rd *sub)
{
	struct cvm_rd tmp = *r;
	uint16_t n;

	if (!cvm_rd_u16le(&tmp, &n) || !cvm_rd_sub(&tmp, sub, n))
		return false;
	*r = tmp;
	return true;
}

bool cvm_rd_sub_u16be(struct cvm_rd *r, struct cvm_rd *sub)
{
	struct cvm_rd tmp = *r;
	uint16_t n;

	if (!cvm_rd_u16be(&tmp, &n) || !cvm_rd_sub(&tmp, sub, n))
		return false;
	*r = tmp;
	return true;
}

bool cvm_rd_sub_u32le(struct cvm_rd *r, struct cvm_rd *sub)
{
	struct cvm_rd tmp = *r;
	uint32_t n;

	if (!cvm_rd_u32le(&tmp, &n) || !cvm_rd_sub(&tmp, sub, n))
		return false;
	*r = tmp;
	return true;
}

bool cvm_rd_all_zero(const struct cvm_rd *r)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < r->len; i++)
		acc |= r->p[i];
	return acc == 0;
}

bool cvm_rd_has_nul(const struct cvm_rd *r)
{
	return r->len != 0 && memchr(r->p, 0, r->len) != NULL;
}

bool cvm_rd_asn1_any(struct cvm_rd *r, struct cvm_rd *out, uint8_t *tag)
{
	struct cvm_rd tmp = *r;
	uint8_t t, l0;
	size_t len = 0;

	if (!cvm_rd_u8(&tmp, &t) || !cvm_rd_u8(&tmp, &l0))
		return false;
	if ((t & 0x1f) == 0x1f) /* high tag numbers: not used by the formats we read */
		return false;
	if (l0 < 0x80) {
		len = l0;
	} else {
		size_t nbytes = l0 & 0x7fu;
		uint8_t b;

		/* DER: no indefinite length, at most 4 length bytes, minimal. */
		if (nbytes == 0 || nbytes > 4)
			return false;
		for (size_t i = 0; i < nbytes; i++) {
			if (!cvm_rd_u8(&tmp, &b))
				return false;
			if (i == 0 && b == 0)
				return false;
			len = (len << 8) | b;
		}
		if (len < 0x80)
			return false;
	}
	if (!cvm_rd_sub(&tmp, out, len))
		return false;
	*tag = t;
	*r = tmp;
	return true;
}

bool cvm_rd_asn1(struct cvm_rd *r, struct cvm_rd *out, uint8_t tag)
{
	struct cvm_rd tmp = *r, body;
	uint8_t t;

	if (!cvm_rd_asn1_any(&tmp, &body, &t) || t != tag)
		return false;
	*out = body;
	*r = tmp;
	return true;
}

/* ---- writer ---- */

void cvm_wr_init(struct cvm_wr *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->max = max;
}

void cvm_wr_init_fixed(struct cvm_wr *w, void *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	w->max = cap;
	w->fixed = true;
}

void cvm_wr_init_text(struct cvm_wr *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = (uint8_t *)buf;
	w->cap = cap;
	w->max = cap;
	w->fixed = true;
	w->text = true;
	if (cap != 0)
		buf[0] = '\0';
	else
		w->err = true;
}

bool cvm_wr_text_cut(const struct cvm_wr *w)
{
	return w->err;
}

/* text_add appends what fits of `n` bytes to a text writer, keeps the NUL,
 * and marks a cut with "...". */
static void text_add(struct cvm_wr *w, const void *p, size_t n)
{
	size_t room, k;

	if (w->err)
		return;
	room = w->cap - 1 - w->len;
	k = n < room ? n : room;
	if (k != 0)
		memcpy(w->buf + w->len, p, k);
	w->len += k;
	w->buf[w->len] = '\0';
	if (k < n) {
		w->err = true;
		if (w->cap >= 4) {
			memcpy(w->buf + w->cap - 4, "...", 4);
			w->len = w->cap - 1;
		}
	}
}

/* Grows to fit `need` more bytes: copy, wipe, free; never realloc(). */
static bool wr_grow(struct cvm_wr *w, size_t need)
{
	size_t cap = w->cap != 0 ? w->cap : (w->max < 64 ? w->max : 64);
	uint8_t *nb;

	if (w->fixed || need > w->max || w->len > w->max - need)
		return false;
	while (cap - w->len < need)
		cap = cap > w->max / 2 ? w->max : cap * 2;
	nb = malloc(cap);
	if (nb == NULL)
		return false;
	if (w->len != 0)
		memcpy(nb, w->buf, w->len);
	cvm_freezero(w->buf, w->cap);
	w->buf = nb;
	w->cap = cap;
	return true;
}

static uint8_t *wr_reserve(struct cvm_wr *w, size_t n)
{
	uint8_t *p;

	static uint8_t nothing[1]; /* for n == 0: never written, and no NULL + 0 */

	if (w->err)
		return NULL;
	if (n == 0)
		return nothing;
	if (w->text) { /* the last byte is the NUL's */
		if (n > w->cap - 1 - w->len) {
			w->err = true;
			return NULL;
		}
		p = w->buf + w->len;
		w->len += n;
		w->buf[w->len] = '\0';
		return p;
	}
	/* The limit holds whatever the capacity (the first block may be larger). */
	if (n > w->max - w->len || (w->cap - w->len < n && !wr_grow(w, n))) {
		w->err = true;
		return NULL;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

uint8_t *cvm_wr_reserve(struct cvm_wr *w, size_t n)
{
	return wr_reserve(w, n);
}

void cvm_wr_bytes(struct cvm_wr *w, const void *p, size_t n)
{
	uint8_t *d;

	if (w->text) {
		text_add(w, p, n);
		return;
	}
	d = wr_reserve(w, n);
	if (d != NULL && n != 0)
		memcpy(d, p, n);
}

void cvm_wr_zeros(struct cvm_wr *w, size_t n)
{
	uint8_t *d = wr_reserve(w, n);

	if (d != NULL && n != 0)
		memset(d, 0, n);
}

void cvm_wr_u8(struct cvm_wr *w, uint8_t v)
{
	cvm_wr_bytes(w, &v, 1);
}

static void wr_uint_le(struct cvm_wr *w, uint64_t v, size_t n)
{
	uint8_t b[8];

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	cvm_wr_bytes(w, b, n);
}

static void wr_uint_be(struct cvm_wr *w, uint64_t v, size_t n)
{
	uint8_t b[8];

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	cvm_wr_bytes(w, b, n);
}

void cvm_wr_u16le(struct cvm_wr *w, uint16_t v)
{
	wr_uint_le(w, v, 2);
}

void cvm_wr_u32le(struct cvm_wr *w, uint32_t v)
{
	wr_uint_le(w, v, 4);
}

void cvm_wr_u64le(struct cvm_wr *w, uint64_t v)
{
	wr_uint_le(w, v, 8);
}

void cvm_wr_u16be(struct cvm_wr *w, uint16_t v)
{
	wr_uint_be(w, v, 2);
}

void cvm_wr_u32be(struct cvm_wr *w, uint32_t v)
{
	wr_uint_be(w, v, 4);
}

void cvm_wr_str(struct cvm_wr *w, const char *s)
{
	cvm_wr_bytes(w, s, strlen(s));
}

void cvm_wr_fmt(struct cvm_wr *w, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		w->err = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		cvm_wr_bytes(w, small, (size_t)n);
		return;
	}
	if (w->text) {
		if (w->err)
			return;
		/* Format in place: what fits stays; a cut is marked. */
		va_start(ap, fmt);
		(void)vsnprintf((char *)w->buf + w->len, w->cap - w->len, fmt, ap);
		va_end(ap);
		if ((size_t)n <= w->cap - 1 - w->len) {
			w->len += (size_t)n;
			return;
		}
		w->len = w->cap - 1;
		text_add(w, "", 1); /* one byte more than fits: marks the cut */
		return;
	}
	{
		uint8_t *d = wr_reserve(w, (size_t)n + 1);

		if (d == NULL)
			return;
		va_start(ap, fmt);
		(void)vsnprintf((char *)d, (size_t)n + 1, fmt, ap);
		va_end(ap);
		w->len--; /* drop the NUL */
	}
}

int cvm_wr_finish(struct cvm_wr *w, uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (w->err) {
		cvm_wr_cleanup(w);
		return CVM_E_TOO_LARGE;
	}
	*out = w->buf;
	*out_len = w->len;
	w->buf = NULL; /* transferred */
	w->len = w->cap = 0;
	return CVM_OK;
}

int cvm_wr_finish_str(struct cvm_wr *w, char **out)
{
	uint8_t *b;
	size_t n;
	int r;

	*out = NULL;
	cvm_wr_u8(w, 0);
	r = cvm_wr_finish(w, &b, &n);
	if (r != CVM_OK)
		return r;
	*out = (char *)b;
	return CVM_OK;
}

void cvm_wr_cleanup(struct cvm_wr *w)
{
	if (!w->fixed)
		cvm_freezero(w->buf, w->cap);
	else if (w->buf != NULL)
		cvm_wipe(w->buf, w->cap);
	w->buf = NULL;
	w->len = w->cap = 0;
}

bool cvm_rd_utf8(struct cvm_rd *r, uint32_t *cp)
{
	uint8_t b, c;
	unsigned more;
	uint32_t v, min;

	if (!cvm_rd_u8(r, &b))
		return false;
	if (b < 0x80) {
		*cp = b;
		return true;
	}
	if ((b & 0xe0) == 0xc0) {
		more = 1;
		v = b & 0x1fu;
		min = 0x80;
	} else if ((b & 0xf0) == 0xe0) {
		more = 2;
		v = b & 0x0fu;
		min = 0x800;
	} else if ((b & 0xf8) == 0xf0) {
		more = 3;
		v = b & 0x07u;
		min = 0x10000;
	} else {
		return false;
	}
	while (more-- > 0) {
		if (!cvm_rd_u8(r, &c) || (c & 0xc0) != 0x80)
			return false;
		v = (v << 6) | (c & 0x3fu);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return false;
	*cp = v;
	return true;
}
