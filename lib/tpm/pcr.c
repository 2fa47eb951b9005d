/* PCR selections (tpm2-tools' text syntax), PCR value sets, the composite
 * digest a quote signs, and tpm2-tools' two PCR file formats. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/tpm.h>

#include "tpm_int.h"

/* The selection text is short: 5 banks of "sha512:" and 24 numbers. */
#define SEL_TEXT_MAX 1024

/* tpm2-tools' "serialized" PCR file, as its structures lie in memory on
 * every Linux ABI it runs on: TPML_PCR_SELECTION (u32 count, then 16
 * TPMS_PCR_SELECTION of 8 bytes: u16 hash, u8 sizeofSelect, u8[4], one
 * byte of padding), a u32 count of TPML_DIGEST lists, and the lists (u32
 * count, then 8 TPM2B_DIGEST of 66 bytes: u16 size, u8[64]). */
#define SER_SEL_ENTRIES 16
#define SER_SEL_ENTRY_LEN 8
#define SER_SEL_LEN (4 + SER_SEL_ENTRIES * SER_SEL_ENTRY_LEN)
#define SER_LIST_DIGESTS 8
#define SER_DIGEST_LEN (2 + 64)
#define SER_LIST_LEN (4 + SER_LIST_DIGESTS * SER_DIGEST_LEN)
#define SER_LISTS_MAX 64

void cvm_tpm_sel_from_tss(const TPML_PCR_SELECTION *in, struct cvm_tpm_pcr_sel *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < in->count && i < CVM_TPM_SEL_MAX; i++) {
		const TPMS_PCR_SELECTION *s = &in->pcrSelections[i];
		uint32_t mask = 0;

		for (unsigned b = 0; b < s->sizeofSelect && b < sizeof(s->pcrSelect); b++)
			mask |= (uint32_t)s->pcrSelect[b] << (8 * b);
		out->banks[out->count].alg = s->hash;
		out->banks[out->count].mask = mask;
		out->count++;
	}
}

int cvm_tpm_sel_to_tss(const struct cvm_tpm_pcr_sel *in, TPML_PCR_SELECTION *out)
{
	memset(out, 0, sizeof(*out));
	if (in->count == 0 || in->count > TPM2_NUM_PCR_BANKS)
		return CVM_E_INVAL;
	for (size_t i = 0; i < in->count; i++) {
		TPMS_PCR_SELECTION *s = &out->pcrSelections[i];
		uint32_t mask = in->banks[i].mask;

		if ((mask >> CVM_TPM_PCR_COUNT) != 0)
			return CVM_E_INVAL;
		s->hash = in->banks[i].alg;
		s->sizeofSelect = 3;
		s->pcrSelect[0] = (uint8_t)(mask & 0xff);
		s->pcrSelect[1] = (uint8_t)((mask >> 8) & 0xff);
		s->pcrSelect[2] = (uint8_t)((mask >> 16) & 0xff);
	}
	out->count = (uint32_t)in->count;
	return CVM_OK;
}

/* ---- selection text ---------------------------------------------------- */

/* parse_uint reads a decimal PCR number (no sign, no leading '+'). */
static bool parse_pcr(const char **pp, unsigned *out)
{
	const char *p = *pp;
	unsigned v = 0;
	size_t digits = 0;

	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned)(*p - '0');
		p++;
		if (++digits > 2)
			return false;
	}
	if (digits == 0 || v >= CVM_TPM_PCR_COUNT)
		return false;
	*out = v;
	*pp = p;
	return true;
}

/* parse_list reads "all" or "N[-M](,N[-M])*" up to '+' or the end. */
static int parse_list(const char **pp, uint32_t *mask)
{
	const char *p = *pp;
	unsigned lo, hi;

	*mask = 0;
	if (strncmp(p, "all", 3) == 0 && (p[3] == '\0' || p[3] == '+')) {
		*mask = (1u << CVM_TPM_PCR_COUNT) - 1;
		*pp = p + 3;
		return CVM_OK;
	}
	for (;;) {
		if (!parse_pcr(&p, &lo))
			return CVM_E_FORMAT;
		hi = lo;
		if (*p == '-') {
			p++;
			if (!parse_pcr(&p, &hi) || hi < lo)
				return CVM_E_FORMAT;
		}
		for (unsigned i = lo; i <= hi; i++)
			*mask |= 1u << i;
		if (*p != ',')
			break;
		p++;
	}
	if (*p != '\0' && *p != '+')
		return CVM_E_FORMAT;
	*pp = p;
	return CVM_OK;
}

int cvm_tpm_pcr_sel_parse(const char *s, struct cvm_tpm_pcr_sel *out)
{
	const char *p = s;
	int r;

	memset(out, 0, sizeof(*out));
	if (s == NULL || strnlen(s, SEL_TEXT_MAX + 1) > SEL_TEXT_MAX || *s == '\0')
		return CVM_E_FORMAT;
	for (;;) {
		const char *colon = strchr(p, ':');
		char name[16];
		size_t nlen;
		enum cvm_digest_alg alg;
		uint32_t mask;

		if (colon == NULL)
			return CVM_E_FORMAT;
		nlen = (size_t)(colon - p);
		if (nlen == 0 || nlen >= sizeof(name) || memchr(p, '+', nlen) != NULL)
			return CVM_E_FORMAT;
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		r = cvm_digest_from_name(name, &alg);
		if (r != CVM_OK)
			return CVM_E_UNSUPPORTED;
		for (size_t i = 0; i < out->count; i++) {
			if (out->banks[i].alg == (uint16_t)alg)
				return CVM_E_FORMAT;
		}
		if (out->count == CVM_TPM_BANKS_MAX)
			return CVM_E_FORMAT;
		p = colon + 1;
		r = parse_list(&p, &mask);
		if (r != CVM_OK)
			return r;
		out->banks[out->count].alg = (uint16_t)alg;
		out->banks[out->count].mask = mask;
		out->count++;
		if (*p == '\0')
			break;
		p++; /* '+' */
	}
	return CVM_OK;
}

/* struct text appends to a fixed buffer, keeping what fits. */
struct text {
	char *buf;
	size_t len, used;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->used + 1 >= t->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	t->used += (size_t)n < t->len - t->used ? (size_t)n : t->len - t->used - 1;
}

uint32_t cvm_tpm_pcr_sel_mask(const struct cvm_tpm_pcr_sel *sel, uint16_t alg)
{
	uint32_t m = 0;

	for (size_t i = 0; i < sel->count; i++)
		if (sel->banks[i].alg == alg)
			m |= sel->banks[i].mask;
	return m;
}

void cvm_tpm_pcr_sel_format(const struct cvm_tpm_pcr_sel *sel, char *buf, size_t len)
{
	struct text t = {buf, len, 0};

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < sel->count && i < CVM_TPM_SEL_MAX; i++) {
		const char *name = cvm_digest_name(sel->banks[i].alg);
		uint32_t mask = sel->banks[i].mask;
		bool first = true;

		if (i > 0)
			text_add(&t, "+");
		if (name != NULL)
			text_add(&t, "%s", name);
		else
			text_add(&t, "0x%04x", sel->banks[i].alg);
		text_add(&t, ":");
		for (unsigned b = 0; b < 32; b++) {
			unsigned e = b;

			if ((mask & (1u << b)) == 0)
				continue;
			while (e + 1 < 32 && (mask & (1u << (e + 1))) != 0)
				e++;
			text_add(&t, first ? "%u" : ",%u", b);
			if (e > b)
				text_add(&t, e == b + 1 ? ",%u" : "-%u", e);
			first = false;
			b = e;
		}
		if (first)
			text_add(&t, "none");
	}
}

/* ---- value sets -------------------------------------------------------- */

void cvm_tpm_pcrs_init(struct cvm_tpm_pcrs *p)
{
	memset(p, 0, sizeof(*p));
}

/* bank_index returns the bank of `alg`, or CVM_TPM_BANKS_MAX when absent. */
static size_t bank_index(const struct cvm_tpm_pcrs *p, uint16_t alg)
{
	for (size_t i = 0; i < p->count && i < CVM_TPM_BANKS_MAX; i++) {
		if (p->banks[i].alg == alg)
			return i;
	}
	return CVM_TPM_BANKS_MAX;
}

int cvm_tpm_pcrs_set(struct cvm_tpm_pcrs *p, uint16_t alg, unsigned index, const uint8_t *value, size_t len)
{
	struct cvm_tpm_pcr_bank *b;
	size_t i, dlen = cvm_digest_len(alg);

	if (dlen == 0)
		return CVM_E_UNSUPPORTED;
	if (index >= CVM_TPM_PCR_COUNT || len != dlen)
		return CVM_E_INVAL;
	i = bank_index(p, alg);
	if (i == CVM_TPM_BANKS_MAX) {
		if (p->count >= CVM_TPM_BANKS_MAX)
			return CVM_E_TOO_LARGE;
		i = p->count++;
		memset(&p->banks[i], 0, sizeof(p->banks[i]));
		p->banks[i].alg = alg;
	}
	b = &p->banks[i];
	memcpy(b->values[index], value, len);
	b->valid |= 1u << index;
	return CVM_OK;
}

const uint8_t *cvm_tpm_pcrs_get(const struct cvm_tpm_pcrs *p, uint16_t alg, unsigned index)
{
	size_t i = bank_index(p, alg);

	if (i == CVM_TPM_BANKS_MAX || index >= CVM_TPM_PCR_COUNT || (p->banks[i].valid & (1u << index)) == 0)
		return NULL;
	return p->banks[i].values[index];
}

/* sel_check fails on a bank cvmkit does not know or a PCR above 23. */
static int sel_check(const struct cvm_tpm_pcr_sel *sel)
{
	if (sel->count > CVM_TPM_SEL_MAX)
		return CVM_E_UNSUPPORTED;
	for (size_t i = 0; i < sel->count; i++) {
		if (cvm_digest_len(sel->banks[i].alg) == 0 || (sel->banks[i].mask >> CVM_TPM_PCR_COUNT) != 0)
			return CVM_E_UNSUPPORTED;
	}
	return CVM_OK;
}

int cvm_tpm_pcrs_digest(const struct cvm_tpm_pcr_sel *sel, const struct cvm_tpm_pcrs *pcrs, uint16_t hash,
                        uint8_t *out, size_t out_cap, size_t *out_len, char *missing, size_t missing_len)
{
	struct cvm_digest_ctx *ctx = NULL;
	size_t hlen = cvm_digest_len(hash);
	int r;

	*out_len = 0;
	if (missing != NULL && missing_len > 0)
		missing[0] = '\0';
	if (hlen == 0)
		return CVM_E_UNSUPPORTED;
	if (out_cap < hlen)
		return CVM_E_INVAL;
	r = sel_check(sel);
	if (r != CVM_OK)
		return r;
	r = cvm_digest_ctx_new(hash, &ctx);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < sel->count; i++) {
		uint16_t alg = sel->banks[i].alg;

		for (unsigned pcr = 0; pcr < CVM_TPM_PCR_COUNT; pcr++) {
			const uint8_t *v;

			if ((sel->banks[i].mask & (1u << pcr)) == 0)
				continue;
			v = cvm_tpm_pcrs_get(pcrs, alg, pcr);
			if (v == NULL) {
				if (missing != NULL && missing_len > 0)
					(void)snprintf(missing, missing_len, "%s:%u", cvm_digest_name(alg),
					               pcr);
				r = CVM_E_INVAL;
				goto out;
			}
			r = cvm_digest_update(ctx, v, cvm_digest_len(alg));
			if (r != CVM_OK)
				goto out;
		}
	}
	r = cvm_digest_final(ctx, out, out_cap);
	if (r == CVM_OK)
		*out_len = hlen;
out:
	cvm_digest_ctx_free(ctx);
	return r;
}

/* ---- tpm2-tools PCR files ---------------------------------------------- */

/* take_values reads the values `sel` selects from `next`, a callback over
 * the file's digests in order. */
struct digest_src {
	struct cvm_rd lists;  /* remaining TPML_DIGEST lists (serialized) */
	struct cvm_rd list;   /* current list's remaining TPM2B_DIGESTs */
	uint32_t list_left;   /* digests left in the current list */
	struct cvm_rd values; /* "values" format */
	bool serialized;
};

static int src_next(struct digest_src *src, size_t want, const uint8_t **out)
{
	uint16_t size;
	uint32_t count;

	if (!src->serialized)
		return cvm_rd_bytes(&src->values, out, want) ? CVM_OK : CVM_E_TRUNCATED;
	while (src->list_left == 0) {
		if (!cvm_rd_sub(&src->lists, &src->list, SER_LIST_LEN))
			return CVM_E_FORMAT; /* fewer values than selected */
		if (!cvm_rd_u32le(&src->list, &count))
			return CVM_E_TRUNCATED;
		if (count > SER_LIST_DIGESTS)
			return CVM_E_FORMAT;
		src->list_left = count;
	}
	if (!cvm_rd_u16le(&src->list, &size))
		return CVM_E_TRUNCATED;
	if (size != want || !cvm_rd_bytes(&src->list, out, want) || !cvm_rd_skip(&src->list, 64 - want))
		return CVM_E_FORMAT;
	src->list_left--;
	return CVM_OK;
}

static int take_values(struct digest_src *src, const struct cvm_tpm_pcr_sel *sel, struct cvm_tpm_pcrs *out)
{
	int r;

	r = sel_check(sel);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < sel->count; i++) {
		uint16_t alg = sel->banks[i].alg;
		size_t dlen = cvm_digest_len(alg);

		for (unsigned pcr = 0; pcr < CVM_TPM_PCR_COUNT; pcr++) {
			const uint8_t *v;

			if ((sel->banks[i].mask & (1u << pcr)) == 0)
				continue;
			r = src_next(src, dlen, &v);
			if (r != CVM_OK)
				return r;
			r = cvm_tpm_pcrs_set(out, alg, pcr, v, dlen);
			if (r != CVM_OK)
				return r == CVM_E_TOO_LARGE ? CVM_E_UNSUPPORTED : r;
		}
	}
	/* No values may be left over. */
	if (src->serialized ? (src->list_left != 0 || !cvm_rd_empty(&src->lists))
	                    : !cvm_rd_empty(&src->values))
		return CVM_E_FORMAT;
	return CVM_OK;
}

int cvm_tpm_pcrs_parse_serialized(const uint8_t *buf, size_t len, struct cvm_tpm_pcr_sel *sel,
                                  struct cvm_tpm_pcrs *out)
{
	struct digest_src src;
	struct cvm_rd rd, e;
	uint32_t count, lists;

	memset(sel, 0, sizeof(*sel));
	cvm_tpm_pcrs_init(out);
	memset(&src, 0, sizeof(src));
	if (len > CVM_TPM_PCRS_FILE_MAX)
		return CVM_E_TOO_LARGE;
	cvm_rd_init(&rd, buf, len);
	if (!cvm_rd_u32le(&rd, &count))
		return CVM_E_TRUNCATED;
	if (count == 0 || count > SER_SEL_ENTRIES)
		return CVM_E_FORMAT;
	for (uint32_t i = 0; i < SER_SEL_ENTRIES; i++) {
		uint16_t hash;
		uint8_t size, bytes[4];
		uint32_t mask = 0;

		if (!cvm_rd_sub(&rd, &e, SER_SEL_ENTRY_LEN))
			return CVM_E_TRUNCATED;
		if (i >= count)
			continue; /* unused entries: whatever memory held */
		if (!cvm_rd_u16le(&e, &hash) || !cvm_rd_u8(&e, &size) ||
		    !cvm_rd_copy(&e, bytes, sizeof(bytes)))
			return CVM_E_TRUNCATED;
		if (size > sizeof(bytes))
			return CVM_E_FORMAT;
		for (unsigned b = 0; b < size; b++)
			mask |= (uint32_t)bytes[b] << (8 * b);
		sel->banks[i].alg = hash;
		sel->banks[i].mask = mask;
	}
	sel->count = count;
	if (!cvm_rd_u32le(&rd, &lists))
		return CVM_E_TRUNCATED;
	if (lists > SER_LISTS_MAX)
		return CVM_E_FORMAT;
	if (rd.len != (size_t)lists * SER_LIST_LEN)
		return rd.len < (size_t)lists * SER_LIST_LEN ? CVM_E_TRUNCATED : CVM_E_FORMAT;
	src.serialized = true;
	src.lists = rd;
	return take_values(&src, sel, out);
}

int cvm_tpm_pcrs_parse_values(const uint8_t *buf, size_t len, const struct cvm_tpm_pcr_sel *sel,
                              struct cvm_tpm_pcrs *out)
{
	struct digest_src src;

	cvm_tpm_pcrs_init(out);
	memset(&src, 0, sizeof(src));
	if (len > CVM_TPM_PCRS_FILE_MAX)
		return CVM_E_TOO_LARGE;
	cvm_rd_init(&src.values, buf, len);
	return take_values(&src, sel, out);
}

int cvm_tpm_pcrs_write_serialized(const struct cvm_tpm_pcr_sel *sel, const struct cvm_tpm_pcrs *pcrs,
                                  uint8_t **out, size_t *out_len)
{
	struct cvm_wr w;
	size_t total = 0, lists, written = 0;
	int r;

	*out = NULL;
	*out_len = 0;
	r = sel_check(sel);
	if (r != CVM_OK)
		return r;
	if (sel->count == 0)
		return CVM_E_INVAL;
	for (size_t i = 0; i < sel->count; i++)
		total += (size_t)__builtin_popcount(sel->banks[i].mask);
	lists = (total + SER_LIST_DIGESTS - 1) / SER_LIST_DIGESTS;
	if (lists > SER_LISTS_MAX)
		return CVM_E_INVAL;
	cvm_wr_init(&w, CVM_TPM_PCRS_FILE_MAX);
	cvm_wr_u32le(&w, (uint32_t)sel->count);
	for (size_t i = 0; i < SER_SEL_ENTRIES; i++) {
		uint32_t mask = i < sel->count ? sel->banks[i].mask : 0;

		cvm_wr_u16le(&w, i < sel->count ? sel->banks[i].alg : 0);
		cvm_wr_u8(&w, i < sel->count ? 3 : 0);
		cvm_wr_u8(&w, (uint8_t)(mask & 0xff));
		cvm_wr_u8(&w, (uint8_t)((mask >> 8) & 0xff));
		cvm_wr_u8(&w, (uint8_t)((mask >> 16) & 0xff));
		cvm_wr_zeros(&w, 2); /* pcrSelect[3], padding */
	}
	cvm_wr_u32le(&w, (uint32_t)lists);
	for (size_t i = 0; i < sel->count; i++) {
		uint16_t alg = sel->banks[i].alg;
		size_t dlen = cvm_digest_len(alg);

		for (unsigned pcr = 0; pcr < CVM_TPM_PCR_COUNT; pcr++) {
			const uint8_t *v;

			if ((sel->banks[i].mask & (1u << pcr)) == 0)
				continue;
			v = cvm_tpm_pcrs_get(pcrs, alg, pcr);
			if (v == NULL) {
				cvm_wr_cleanup(&w);
				return CVM_E_INVAL;
			}
			if (written % SER_LIST_DIGESTS == 0) {
				size_t left = total - written;

				cvm_wr_u32le(&w,
				             (uint32_t)(left < SER_LIST_DIGESTS ? left : SER_LIST_DIGESTS));
			}
			cvm_wr_u16le(&w, (uint16_t)dlen);
			cvm_wr_bytes(&w, v, dlen);
			cvm_wr_zeros(&w, 64 - dlen);
			written++;
		}
	}
	/* Pad the last list to its 8 slots. */
	if (written % SER_LIST_DIGESTS != 0)
		cvm_wr_zeros(&w, (SER_LIST_DIGESTS - written % SER_LIST_DIGESTS) * SER_DIGEST_LEN);
	return cvm_wr_finish(&w, out, out_len);
}
