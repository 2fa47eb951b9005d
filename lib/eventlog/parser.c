/* Event log parser: one event at a time, from memory or from a file
 * descriptor through a bounded buffer, each event replayed as it is
 * returned.
 *
 * Layout (TCG PC Client Platform Firmware Profile 2.0, section 10):
 *   TCG_PCR_EVENT  := u32 pcr || u32 type || digest[20] || u32 size || data
 *   TCG_PCR_EVENT2 := u32 pcr || u32 type || u32 count
 *                     || count * (u16 alg || digest[size of alg]) || u32 size || data
 * A crypto-agile log starts with a TCG_PCR_EVENT whose data is the Spec ID
 * Event03 (it lists the banks and their digest sizes); TCG_PCR_EVENT2 records
 * follow. A TDX CCEL has the same layout with MR indices in place of PCRs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventlog_int.h"

#define TCG1_HDR_LEN 32u /* TCG_PCR_EVENT up to its data */
#define TCG2_HDR_MIN 12u /* pcr, type, digest count */
#define EVL_TCG_REGS 24u
#define EVL_DSTACK_REGS 4u
#define EVL_LINE_START 256u

static const char spec_id_sig[16] = "Spec ID Event03";
static const char locality_sig[16] = "StartupLocality";

int cvm_evl_fail(struct cvm_evl_parser *p, int err, uint64_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	p->err = err;
	p->err_off = off;
	/* Every reason starts with where: the start of the event at fault. */
	n = snprintf(p->why, sizeof(p->why), "at byte %llu%s: ", (unsigned long long)off,
	             p->replay.is_wrapped ? " of event_log" : "");
	if (n < 0 || (size_t)n >= sizeof(p->why))
		return err;
	va_start(ap, fmt);
	(void)vsnprintf(p->why + n, sizeof(p->why) - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

/* ---- input -------------------------------------------------------------- */

static int src_grow(struct cvm_evl_parser *p, size_t n)
{
	size_t cap = p->cap;
	uint8_t *nb;

	while (cap < n)
		cap = cap > p->cap_max / 2 ? p->cap_max : cap * 2;
	if (cap < n)
		return CVM_E_INTERNAL;
	nb = malloc(cap);
	if (nb == NULL)
		return CVM_E_NOMEM;
	if (p->end > p->pos)
		memcpy(nb, p->buf + p->pos, p->end - p->pos);
	free(p->buf);
	p->buf = nb;
	p->end -= p->pos;
	p->pos = 0;
	p->cap = cap;
	return CVM_OK;
}

int cvm_evl_want(struct cvm_evl_parser *p, size_t n, struct cvm_rd *w)
{
	struct cvm_rd rest;
	int r;

	cvm_rd_init(w, NULL, 0);
	if (p->fd < 0) {
		cvm_rd_init(&rest, p->mem, p->mem_len);
		(void)cvm_rd_skip(&rest, p->pos);
		if (!cvm_rd_sub(&rest, w, n < rest.len ? n : rest.len))
			return CVM_E_INTERNAL;
		return CVM_OK;
	}
	if (n > p->cap_max)
		return CVM_E_INTERNAL;
	while (p->end - p->pos < n && !p->eof) {
		ssize_t got;

		if (p->cap - p->pos < n) {
			if (n > p->cap) {
				r = src_grow(p, n);
				if (r != CVM_OK)
					return cvm_evl_fail(p, r, p->off, "out of memory");
			} else {
				memmove(p->buf, p->buf + p->pos, p->end - p->pos);
				p->end -= p->pos;
				p->pos = 0;
			}
		}
		got = read(p->fd, p->buf + p->end, p->cap - p->end);
		if (got < 0) {
			int saved = errno;

			if (saved == EINTR)
				continue;
			(void)cvm_evl_fail(p, CVM_E_SYSTEM, p->off, "cannot read the log");
			errno = saved; /* for the caller of CVM_E_SYSTEM */
			return CVM_E_SYSTEM;
		}
		if (got == 0)
			p->eof = true;
		p->end += (size_t)got;
	}
	cvm_rd_init(w, p->buf + p->pos, p->end - p->pos < n ? p->end - p->pos : n);
	return CVM_OK;
}

void cvm_evl_consume(struct cvm_evl_parser *p, size_t n)
{
	p->pos += n;
	p->off += n;
}

/* pad_byte is true when the first min(n, w.len) bytes of `w` (at least one)
 * are all 0x00 or all 0xff; the byte goes to *pad. */
static bool pad_byte(struct cvm_rd w, size_t n, uint8_t *pad)
{
	uint8_t first, b;

	if (!cvm_rd_u8(&w, &first) || (first != 0x00 && first != 0xff))
		return false;
	for (size_t i = 1; i < n && cvm_rd_u8(&w, &b); i++) {
		if (b != first)
			return false;
	}
	*pad = first;
	return true;
}

/* pad_rest consumes the rest of the input, which must be `pad` bytes
 * (compared a block at a time: a CCEL area is mostly padding). */
static int pad_rest(struct cvm_evl_parser *p, uint8_t pad)
{
	uint8_t block[256];
	uint64_t start = p->off;
	struct cvm_rd w;
	const uint8_t *q;
	size_t n, done;
	int r;

	memset(block, pad, sizeof(block));
	for (;;) {
		r = cvm_evl_want(p, p->fd < 0 ? p->mem_len : p->cap, &w);
		if (r != CVM_OK)
			return r;
		n = w.len;
		if (n == 0)
			break;
		for (done = 0; done < n;) {
			size_t k = n - done < sizeof(block) ? n - done : sizeof(block);

			if (!cvm_rd_bytes(&w, &q, k))
				return CVM_E_INTERNAL;
			if (memcmp(q, block, k) != 0) {
				struct cvm_rd bad;
				uint8_t b;

				cvm_rd_init(&bad, q, k); /* find the byte to report */
				while (cvm_rd_u8(&bad, &b) && b == pad)
					done++;
				return cvm_evl_fail(
				    p, CVM_E_FORMAT, start,
				    "the 0x%02x padding after the last event holds another byte "
				    "at byte %llu (padding runs to the end of the log)",
				    pad, (unsigned long long)p->off + done);
			}
			done += k;
		}
		cvm_evl_consume(p, n);
	}
	p->replay.padding_len = p->off - start;
	return EVL_END;
}

/* boundary looks at the start of a binary event: EVL_END at the end of the
 * input or when padding runs to the end, 0 when an event follows. Padding
 * is one run of 0x00 bytes, or of 0xff bytes, of any length, to the end of
 * the input: a CCEL copied out of a machine may keep fewer padding bytes
 * than an event header. Fewer bytes than a header that are not such a run
 * are a cut event (read_tcg1/read_tcg2 say so). */
static int boundary(struct cvm_evl_parser *p, struct cvm_rd w)
{
	uint8_t pad;

	if (w.len == 0)
		return EVL_END;
	if (pad_byte(w, p->hdr_len, &pad))
		return pad_rest(p, pad);
	return CVM_OK;
}

/* ---- replay ------------------------------------------------------------- */

struct bankdef {
	uint16_t alg;
	uint16_t len;
};

static int replay_setup(struct cvm_evl_parser *p, enum cvm_evl_format format, const struct bankdef *defs,
                        size_t count)
{
	struct cvm_evl_replay *rp = &p->replay;
	int r;

	rp->format = format;
	rp->startup_locality = -1;
	rp->reg_count = format == CVM_EVL_CCEL          ? CVM_EVL_CCEL_REGS
	                : format == CVM_EVL_DSTACK      ? EVL_DSTACK_REGS
	                : format == CVM_EVL_DSTACK_JSON ? CVM_EVL_DSTACK_JSON_REGS
	                                                : EVL_TCG_REGS;
	rp->bank_count = count;
	p->hdr_len = format == CVM_EVL_TCG_SHA1 ? TCG1_HDR_LEN : TCG2_HDR_MIN;
	p->event_hdr_max = TCG2_HDR_MIN + 4;
	for (size_t i = 0; i < count; i++) {
		struct cvm_evl_bank *b = &rp->banks[i];

		b->alg = defs[i].alg;
		b->len = defs[i].len;
		b->supported = cvm_digest_len(b->alg) == b->len;
		p->event_hdr_max += 2u + b->len;
		if (b->supported) {
			r = cvm_digest_ctx_new(b->alg, &p->ctx[i]);
			if (r != CVM_OK)
				return cvm_evl_fail(p, r, p->off, "cannot set up the %s digest",
				                    cvm_digest_name(b->alg));
		}
		/* TPM 2.0 resets PCRs 17..22 to all ones (until a dynamic launch). */
		if (rp->reg_count == EVL_TCG_REGS) {
			for (uint32_t reg = 17; reg <= 22; reg++)
				memset(b->reg[reg], 0xff, b->len);
		}
	}
	return CVM_OK;
}

/* startup_locality applies a StartupLocality EV_NO_ACTION event: PCR 0
 * starts at the locality the firmware started the TPM from. Only a TCG
 * log's record in PCR 0 counts (the PC Client profile logs it there); one
 * under another index is an EV_NO_ACTION event like any other, recorded and
 * not applied. */
static int startup_locality(struct cvm_evl_parser *p, const struct cvm_evl_event *ev)
{
	struct cvm_evl_replay *rp = &p->replay;
	struct cvm_rd d = ev->data;
	const uint8_t *sig;
	uint8_t loc;

	if ((rp->format != CVM_EVL_TCG2 && rp->format != CVM_EVL_TCG_SHA1) || ev->is_header || ev->reg != 0)
		return CVM_OK;
	if (!cvm_rd_bytes(&d, &sig, sizeof(locality_sig)) ||
	    memcmp(sig, locality_sig, sizeof(locality_sig)) != 0)
		return CVM_OK;
	if (!cvm_rd_u8(&d, &loc) || !cvm_rd_empty(&d))
		return cvm_evl_fail(p, CVM_E_FORMAT, ev->offset,
		                    "StartupLocality event data of %zu bytes (must be 17)", ev->data.len);
	if (loc != 0 && loc != 3 && loc != 4)
		return cvm_evl_fail(p, CVM_E_FORMAT, ev->offset,
		                    "StartupLocality %u in the event data (must be 0, 3 or 4)", loc);
	if (rp->startup_locality >= 0)
		return cvm_evl_fail(p, CVM_E_FORMAT, ev->offset, "a second StartupLocality event");
	if (p->reg0_extended)
		return cvm_evl_fail(p, CVM_E_FORMAT, ev->offset,
		                    "a StartupLocality event after PCR 0 was extended");
	rp->startup_locality = loc;
	for (size_t i = 0; i < rp->bank_count; i++) {
		struct cvm_evl_bank *b = &rp->banks[i];

		memset(b->reg[0], 0, b->len);
		b->reg[0][b->len - 1] = loc;
	}
	return CVM_OK;
}

static int replay_apply(struct cvm_evl_parser *p, const struct cvm_evl_event *ev)
{
	struct cvm_evl_replay *rp = &p->replay;
	uint32_t bit;
	int r;

	/* Never extended, whatever its index (check_reg does not range-check it). */
	if (ev->type == CVM_EV_NO_ACTION)
		return startup_locality(p, ev);
	if (ev->reg >= rp->reg_count || ev->reg >= CVM_EVL_REGS_MAX)
		return CVM_E_INTERNAL; /* check_reg let an index through */
	bit = 1u << ev->reg;
	for (size_t i = 0; i < rp->bank_count; i++) {
		struct cvm_evl_bank *b = &rp->banks[i];
		const struct cvm_evl_digest *d = NULL;

		for (size_t j = 0; j < ev->digest_count; j++) {
			if (ev->digests[j].alg == b->alg)
				d = &ev->digests[j];
		}
		if (d == NULL) {
			b->partial |= bit;
			continue;
		}
		b->extended |= bit;
		if (!b->supported)
			continue;
		r = cvm_digest_extend(p->ctx[i], b->reg[ev->reg], d->p);
		if (r != CVM_OK)
			return cvm_evl_fail(p, r, ev->offset, "cannot compute %s", cvm_digest_name(b->alg));
	}
	switch (ev->digest_source) {
	case CVM_EVL_DIGEST_COMPUTED:
		rp->digests_computed++;
		break;
	case CVM_EVL_DIGEST_CHECKED:
		rp->digests_checked++;
		break;
	default:
		rp->digests_logged++;
	}
	if (ev->reg == 0)
		p->reg0_extended = true;
	return CVM_OK;
}

/* check_reg checks the register index of the event at ev->offset against
 * the format. EV_NO_ACTION events are never extended: their index is
 * recorded as the log writes it (some firmware writes 0xffffffff). */
static int check_reg(struct cvm_evl_parser *p, const struct cvm_evl_event *ev)
{
	if (ev->type == CVM_EV_NO_ACTION)
		return CVM_OK;
	switch (p->replay.format) {
	case CVM_EVL_CCEL:
		if (ev->reg >= CVM_EVL_CCEL_REGS)
			return cvm_evl_fail(p, CVM_E_FORMAT, ev->offset,
			                    "MR index %u (a CCEL has 0..4; only EV_NO_ACTION events may have "
			                    "another)",
			                    ev->reg);
		if (ev->reg == 0)
			return cvm_evl_fail(p, CVM_E_FORMAT, ev->offset,
			                    "MR index 0: an event extends MRTD, which no event can extend");
		return CVM_OK;
	case CVM_EVL_DSTACK_JSON:
		if (ev->reg >= CVM_EVL_DSTACK_JSON_REGS)
			return cvm_evl_fail(p, CVM_E_FORMAT, ev->offset,
			                    "event %llu: imr %u (RTMR0..3 are imr 0..3; only EV_NO_ACTION "
			                    "events may have another)",
			                    (unsigned long long)p->replay.event_count, ev->reg);
		return CVM_OK;
	default:
		if (ev->reg >= EVL_TCG_REGS)
			return cvm_evl_fail(p, CVM_E_FORMAT, ev->offset,
			                    "PCR index %u (a TCG log has 0..23; only EV_NO_ACTION events may "
			                    "have another)",
			                    ev->reg);
		return CVM_OK;
	}
}

/* ---- TCG_PCR_EVENT ------------------------------------------------------ */

static int read_tcg1(struct cvm_evl_parser *p, struct cvm_evl_event *ev)
{
	struct cvm_rd w, rd;
	uint32_t size;
	size_t total;
	int r;

	r = cvm_evl_want(p, TCG1_HDR_LEN, &w);
	if (r != CVM_OK)
		return r;
	if (p->started) {
		r = boundary(p, w);
		if (r != CVM_OK)
			return r;
	} else if (w.len == 0) {
		return cvm_evl_fail(p, CVM_E_TRUNCATED, p->off, "the log is empty");
	}
	ev->offset = p->off;
	rd = w;
	if (!cvm_rd_u32le(&rd, &ev->reg) || !cvm_rd_u32le(&rd, &ev->type) || !cvm_rd_skip(&rd, 20) ||
	    !cvm_rd_u32le(&rd, &size))
		return cvm_evl_fail(p, CVM_E_TRUNCATED, p->off,
		                    "the log ends inside an event header (%zu of %u bytes)", w.len,
		                    TCG1_HDR_LEN);
	if (size > CVM_EVL_EVENT_DATA_MAX)
		return cvm_evl_fail(p, CVM_E_TOO_LARGE, p->off,
		                    "event size %u bytes (event data at most %zu)", size,
		                    CVM_EVL_EVENT_DATA_MAX);
	total = TCG1_HDR_LEN + (size_t)size;
	r = cvm_evl_want(p, total, &w);
	if (r != CVM_OK)
		return r;
	if (w.len < total)
		return cvm_evl_fail(p, CVM_E_TRUNCATED, p->off,
		                    "the log ends inside an event's data (%zu of %zu bytes)", w.len, total);
	rd = w;
	if (!cvm_rd_skip(&rd, 8) || !cvm_rd_bytes(&rd, &ev->digests[0].p, 20) || !cvm_rd_skip(&rd, 4) ||
	    !cvm_rd_sub(&rd, &ev->data, size))
		return CVM_E_INTERNAL;
	ev->digest_count = 1;
	ev->digests[0].alg = CVM_DIGEST_SHA1;
	ev->digests[0].len = 20;
	ev->len = total;
	cvm_evl_consume(p, total);
	return CVM_OK;
}

/* ---- TCG_PCR_EVENT2 ----------------------------------------------------- */

static int read_tcg2(struct cvm_evl_parser *p, struct cvm_evl_event *ev)
{
	const struct cvm_evl_replay *rp = &p->replay;
	size_t doff[CVM_EVL_BANKS_MAX];
	struct cvm_rd w, rd;
	uint32_t count, size, seen = 0;
	size_t hdr, total;
	int r;

	r = cvm_evl_want(p, p->event_hdr_max, &w);
	if (r != CVM_OK)
		return r;
	r = boundary(p, w);
	if (r != CVM_OK)
		return r;
	ev->offset = p->off;
	rd = w;
	if (!cvm_rd_u32le(&rd, &ev->reg) || !cvm_rd_u32le(&rd, &ev->type) || !cvm_rd_u32le(&rd, &count))
		goto truncated;
	if (count == 0 || count > rp->bank_count)
		return cvm_evl_fail(p, CVM_E_FORMAT, p->off,
		                    "digest count %u (an event has 1 to %zu digests: the Spec ID event lists "
		                    "%zu banks)",
		                    count, rp->bank_count, rp->bank_count);
	for (uint32_t i = 0; i < count; i++) {
		uint16_t alg;
		size_t b;

		if (!cvm_rd_u16le(&rd, &alg))
			goto truncated;
		for (b = 0; b < rp->bank_count && rp->banks[b].alg != alg; b++)
			;
		if (b == rp->bank_count)
			return cvm_evl_fail(p, CVM_E_FORMAT, p->off,
			                    "digest algorithm 0x%04x, which the Spec ID event does not list",
			                    alg);
		if ((seen & (1u << b)) != 0)
			return cvm_evl_fail(
			    p, CVM_E_FORMAT, p->off,
			    "digest algorithm 0x%04x twice in one event (two %s digests)", alg,
			    cvm_digest_name(alg) != NULL ? cvm_digest_name(alg) : "same-algorithm");
		seen |= 1u << b;
		ev->digests[i].alg = alg;
		ev->digests[i].len = rp->banks[b].len;
		doff[i] = w.len - rd.len;
		if (!cvm_rd_skip(&rd, rp->banks[b].len))
			goto truncated;
	}
	if (!cvm_rd_u32le(&rd, &size))
		goto truncated;
	if (size > CVM_EVL_EVENT_DATA_MAX)
		return cvm_evl_fail(p, CVM_E_TOO_LARGE, p->off,
		                    "event size %u bytes (event data at most %zu)", size,
		                    CVM_EVL_EVENT_DATA_MAX);
	hdr = w.len - rd.len;
	total = hdr + (size_t)size;
	r = cvm_evl_want(p, total, &w);
	if (r != CVM_OK)
		return r;
	if (w.len < total)
		return cvm_evl_fail(p, CVM_E_TRUNCATED, p->off,
		                    "the log ends inside an event's data (%zu of %zu bytes)", w.len, total);
	/* The buffer may have moved: take every view again from `w`. */
	for (uint32_t i = 0; i < count; i++) {
		rd = w;
		if (!cvm_rd_skip(&rd, doff[i]) || !cvm_rd_bytes(&rd, &ev->digests[i].p, ev->digests[i].len))
			return CVM_E_INTERNAL;
	}
	rd = w;
	if (!cvm_rd_skip(&rd, hdr) || !cvm_rd_sub(&rd, &ev->data, size))
		return CVM_E_INTERNAL;
	ev->digest_count = count;
	ev->len = total;
	cvm_evl_consume(p, total);
	return CVM_OK;
truncated:
	return cvm_evl_fail(p, CVM_E_TRUNCATED, p->off,
	                    "the log ends inside an event header (%zu bytes left)", w.len);
}

/* ---- the first event ---------------------------------------------------- */

/* spec_id parses a Spec ID Event03 into bank definitions. */
static int spec_id(struct cvm_evl_parser *p, struct cvm_rd d, uint64_t off, struct bankdef *defs,
                   size_t *count)
{
	uint32_t n;
	uint8_t vendor_len;

	*count = 0;
	/* signature, platformClass, specVersionMinor/Major, specErrata, uintnSize */
	if (!cvm_rd_skip(&d, 16 + 4 + 4) || !cvm_rd_u32le(&d, &n))
		return cvm_evl_fail(p, CVM_E_FORMAT, off, "the Spec ID event is too short");
	if (n == 0)
		return cvm_evl_fail(p, CVM_E_FORMAT, off, "the Spec ID event lists no hash algorithm");
	if (n > CVM_EVL_BANKS_MAX)
		return cvm_evl_fail(p, CVM_E_TOO_LARGE, off,
		                    "the Spec ID event lists %u algorithms (at most %u)", n,
		                    CVM_EVL_BANKS_MAX);
	for (uint32_t i = 0; i < n; i++) {
		uint16_t alg, len;

		if (!cvm_rd_u16le(&d, &alg) || !cvm_rd_u16le(&d, &len))
			return cvm_evl_fail(p, CVM_E_FORMAT, off,
			                    "the Spec ID event is too short for %u algorithms", n);
		for (size_t j = 0; j < i; j++) {
			if (defs[j].alg == alg)
				return cvm_evl_fail(p, CVM_E_FORMAT, off,
				                    "the Spec ID event lists algorithm 0x%04x twice", alg);
		}
		if (cvm_digest_len(alg) != 0 && cvm_digest_len(alg) != len)
			return cvm_evl_fail(p, CVM_E_FORMAT, off,
			                    "the Spec ID event gives %s a digest size of %u bytes",
			                    cvm_digest_name(alg), len);
		if (len == 0 || len > CVM_DIGEST_MAX)
			return cvm_evl_fail(p, CVM_E_UNSUPPORTED, off,
			                    "algorithm 0x%04x has %u-byte digests (cvmkit holds 1..%u)", alg,
			                    len, CVM_DIGEST_MAX);
		defs[i].alg = alg;
		defs[i].len = len;
	}
	if (!cvm_rd_u8(&d, &vendor_len) || !cvm_rd_skip(&d, vendor_len))
		return cvm_evl_fail(p, CVM_E_FORMAT, off, "the Spec ID event's vendor info is cut short");
	if (!cvm_rd_empty(&d))
		return cvm_evl_fail(p, CVM_E_FORMAT, off, "%zu bytes follow the Spec ID event's vendor info",
		                    d.len);
	*count = n;
	return CVM_OK;
}

static bool is_spec_id(const struct cvm_evl_event *ev)
{
	struct cvm_rd d = ev->data;
	const uint8_t *sig;

	return ev->type == CVM_EV_NO_ACTION && cvm_rd_bytes(&d, &sig, sizeof(spec_id_sig)) &&
	       memcmp(sig, spec_id_sig, sizeof(spec_id_sig)) == 0;
}

static int read_dstack(struct cvm_evl_parser *p, struct cvm_evl_event *ev);

static int read_json(struct cvm_evl_parser *p, struct cvm_evl_event *ev)
{
	int r = cvm_evl_json_next(p, ev);

	if (r == CVM_OK)
		r = check_reg(p, ev);
	return r;
}

/* start_json sets up the replay of a dstack JSON log (SHA-384, RTMR0..3)
 * and reads its first event. */
static int start_json(struct cvm_evl_parser *p, struct cvm_evl_event *ev)
{
	static const struct bankdef sha384 = {CVM_DIGEST_SHA384, 48};
	int r = replay_setup(p, CVM_EVL_DSTACK_JSON, &sha384, 1);

	if (r != CVM_OK)
		return r;
	p->started = true;
	return read_json(p, ev);
}

static int read_first(struct cvm_evl_parser *p, struct cvm_evl_event *ev)
{
	struct bankdef defs[CVM_EVL_BANKS_MAX];
	static const struct bankdef sha1 = {CVM_DIGEST_SHA1, 20};
	static const struct bankdef sha384 = {CVM_DIGEST_SHA384, 48};
	enum cvm_evl_format f;
	struct cvm_rd w;
	size_t count;
	uint8_t first = 0, pad;
	int r;

	r = cvm_evl_want(p, TCG1_HDR_LEN, &w);
	if (r != CVM_OK)
		return r;
	if (w.len == 0 && p->want != CVM_EVL_DSTACK)
		return cvm_evl_fail(p, CVM_E_TRUNCATED, 0, "the log is empty");
	(void)cvm_rd_peek_u8(&w, &first);
	if (p->want == CVM_EVL_DSTACK_JSON || (p->want == CVM_EVL_AUTO && first == '[')) {
		r = cvm_evl_json_open(p);
		if (r != CVM_OK)
			return r;
		return start_json(p, ev);
	}
	if (p->want == CVM_EVL_AUTO && first == '{') {
		r = cvm_evl_json_detect(p);
		if (r < 0)
			return r;
		if (r == 1)
			return start_json(p, ev);
	}
	if (p->want == CVM_EVL_DSTACK || (p->want == CVM_EVL_AUTO && first == '{')) {
		r = replay_setup(p, CVM_EVL_DSTACK, &sha384, 1);
		if (r != CVM_OK)
			return r;
		p->started = true;
		return read_dstack(p, ev);
	}
	if (w.len < TCG1_HDR_LEN)
		return cvm_evl_fail(p, CVM_E_TRUNCATED, 0,
		                    "the log ends inside its first event header (%zu of %u bytes)", w.len,
		                    TCG1_HDR_LEN);
	if (pad_byte(w, TCG1_HDR_LEN, &pad))
		return cvm_evl_fail(p, CVM_E_FORMAT, 0,
		                    "the log starts with 0x%02x padding: it holds no event", pad);
	r = read_tcg1(p, ev);
	if (r != CVM_OK)
		return r;
	p->started = true;
	if (!is_spec_id(ev)) {
		if (p->want != CVM_EVL_AUTO && p->want != CVM_EVL_TCG_SHA1)
			return cvm_evl_fail(
			    p, CVM_E_FORMAT, 0,
			    "the log does not start with a Spec ID Event03: it is not %s but a "
			    "SHA-1 (tcg-sha1) log",
			    cvm_evl_format_name(p->want));
		r = replay_setup(p, CVM_EVL_TCG_SHA1, &sha1, 1);
		if (r != CVM_OK)
			return r;
		return check_reg(p, ev);
	}
	if (p->want == CVM_EVL_TCG_SHA1)
		return cvm_evl_fail(
		    p, CVM_E_FORMAT, 0,
		    "the log starts with a Spec ID Event03: it is crypto-agile, not tcg-sha1");
	r = spec_id(p, ev->data, 0, defs, &count);
	if (r != CVM_OK)
		return r;
	f = p->want;
	if (f == CVM_EVL_AUTO)
		f = count == 1 && defs[0].alg == CVM_DIGEST_SHA384 ? CVM_EVL_CCEL : CVM_EVL_TCG2;
	r = replay_setup(p, f, defs, count);
	if (r != CVM_OK)
		return r;
	/* Its 20-byte digest field is no digest of any bank: not reported. */
	ev->is_header = true;
	ev->digest_count = 0;
	memset(&ev->digests[0], 0, sizeof(ev->digests[0]));
	return check_reg(p, ev);
}

/* ---- dstack runtime log (JSON lines) ------------------------------------ */

static bool blank(struct cvm_rd line)
{
	uint8_t c;

	while (cvm_rd_u8(&line, &c)) {
		if (c != ' ' && c != '\t' && c != '\r')
			return false;
	}
	return true;
}

static int read_dstack(struct cvm_evl_parser *p, struct cvm_evl_event *ev)
{
	for (;;) {
		uint64_t start = p->off;
		size_t n = EVL_LINE_START, scanned = 0, line_len = 0, take = 0;
		struct cvm_rd w, line;
		bool found = false;
		int r;

		for (;;) {
			r = cvm_evl_want(p, n, &w);
			if (r != CVM_OK)
				return r;
			for (size_t i = scanned; i < w.len && !found; i++) {
				if (w.p[i] == '\n') {
					found = true;
					line_len = i;
					take = i + 1;
				}
			}
			if (found)
				break;
			if (w.len < n) { /* the input ends: a last line without newline */
				if (w.len == 0)
					return EVL_END;
				line_len = take = w.len;
				break;
			}
			if (n > CVM_EVL_DSTACK_LINE_MAX)
				return cvm_evl_fail(p, CVM_E_TOO_LARGE, start, "a line longer than %zu bytes",
				                    CVM_EVL_DSTACK_LINE_MAX);
			scanned = w.len;
			n = n > CVM_EVL_DSTACK_LINE_MAX / 2 ? CVM_EVL_DSTACK_LINE_MAX + 1 : n * 2;
		}
		if (!cvm_rd_sub(&w, &line, line_len))
			return CVM_E_INTERNAL;
		if (blank(line)) {
			cvm_evl_consume(p, take);
			continue;
		}
		r = cvm_evl_dstack_line(p, line, start, ev);
		if (r != CVM_OK)
			return r;
		ev->offset = start;
		ev->len = take;
		cvm_evl_consume(p, take);
		return CVM_OK;
	}
}

/* ---- public ------------------------------------------------------------- */

static int parser_new(int fd, const uint8_t *buf, size_t len, enum cvm_evl_format format, size_t cap,
                      struct cvm_evl_parser **out)
{
	struct cvm_evl_parser *p;

	*out = NULL;
	if ((unsigned)format > (unsigned)CVM_EVL_DSTACK_JSON)
		return CVM_E_INVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return CVM_E_NOMEM;
	p->fd = fd;
	p->mem = buf;
	p->mem_len = buf == NULL ? 0 : len;
	p->want = format;
	p->replay.startup_locality = -1;
	if (fd >= 0) {
		/* The most any reader asks for at once; the buffer grows only as far
		 * as the log needs. */
		p->cap_max = CVM_EVL_EVENT_MAX;
		if (p->cap_max < CVM_EVL_DSTACK_LINE_MAX + 1)
			p->cap_max = CVM_EVL_DSTACK_LINE_MAX + 1;
		if (p->cap_max < CVM_EVL_DSTACK_JSON_EVENT_MAX)
			p->cap_max = CVM_EVL_DSTACK_JSON_EVENT_MAX;
		if (p->cap_max < CVM_EVL_DSTACK_DOC_MAX + 1)
			p->cap_max = CVM_EVL_DSTACK_DOC_MAX + 1;
		p->cap = cap == 0 ? 1 : cap;
		p->buf = malloc(p->cap);
		if (p->buf == NULL) {
			free(p);
			return CVM_E_NOMEM;
		}
	}
	*out = p;
	return CVM_OK;
}

int cvm_evl_parser_new_mem(const uint8_t *buf, size_t len, enum cvm_evl_format format,
                           struct cvm_evl_parser **out)
{
	return parser_new(-1, buf, len, format, 0, out);
}

int cvm_evl_parser_new_fd_cap(int fd, enum cvm_evl_format format, size_t initial_cap,
                              struct cvm_evl_parser **out)
{
	*out = NULL;
	if (fd < 0)
		return CVM_E_INVAL;
	return parser_new(fd, NULL, 0, format, initial_cap, out);
}

int cvm_evl_parser_new_fd(int fd, enum cvm_evl_format format, struct cvm_evl_parser **out)
{
	return cvm_evl_parser_new_fd_cap(fd, format, EVL_BUF_INIT, out);
}

void cvm_evl_parser_free(struct cvm_evl_parser *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < CVM_EVL_BANKS_MAX; i++)
		cvm_digest_ctx_free(p->ctx[i]);
	cvm_evl_json_cleanup(p);
	free(p->payload);
	free(p->buf);
	free(p);
}

int cvm_evl_parser_next(struct cvm_evl_parser *p, struct cvm_evl_event *ev, bool *has_event)
{
	struct cvm_evl_replay *rp = &p->replay;
	uint64_t start = p->off;
	int r;

	*has_event = false;
	memset(ev, 0, sizeof(*ev));
	if (p->err != CVM_OK)
		return p->err;
	if (p->done)
		return CVM_OK;
	if (!p->started) {
		r = read_first(p, ev);
	} else if (rp->format == CVM_EVL_TCG_SHA1) {
		r = read_tcg1(p, ev);
		if (r == CVM_OK)
			r = check_reg(p, ev);
	} else if (rp->format == CVM_EVL_DSTACK) {
		r = read_dstack(p, ev);
	} else if (rp->format == CVM_EVL_DSTACK_JSON) {
		r = read_json(p, ev);
	} else {
		r = read_tcg2(p, ev);
		if (r == CVM_OK)
			r = check_reg(p, ev);
	}
	if (r == EVL_END) {
		p->done = true;
		if (rp->format == CVM_EVL_DSTACK_JSON)
			rp->bytes_parsed = rp->is_wrapped ? p->doc_len : p->off;
		return CVM_OK;
	}
	if (r == CVM_OK && rp->event_count >= CVM_EVL_EVENTS_MAX)
		r = cvm_evl_fail(p, CVM_E_TOO_LARGE, ev->offset, "more than %llu events",
		                 (unsigned long long)CVM_EVL_EVENTS_MAX);
	if (r == CVM_OK) {
		ev->seq = rp->event_count;
		r = replay_apply(p, ev);
	}
	if (r != CVM_OK) {
		if (p->err == CVM_OK)
			(void)cvm_evl_fail(p, r, start, "%s", cvm_strerror(r));
		memset(ev, 0, sizeof(*ev));
		return p->err;
	}
	rp->event_count++;
	rp->bytes_parsed = rp->is_wrapped ? p->doc_len : p->off;
	*has_event = true;
	return CVM_OK;
}

enum cvm_evl_format cvm_evl_parser_format(const struct cvm_evl_parser *p)
{
	return p->started ? p->replay.format : CVM_EVL_AUTO;
}

const struct cvm_evl_replay *cvm_evl_parser_replay(const struct cvm_evl_parser *p)
{
	return &p->replay;
}

uint64_t cvm_evl_parser_error_offset(const struct cvm_evl_parser *p)
{
	return p->err != CVM_OK ? p->err_off : p->off;
}

const char *cvm_evl_parser_err(const struct cvm_evl_parser *p)
{
	return p->err != CVM_OK ? p->why : "";
}
