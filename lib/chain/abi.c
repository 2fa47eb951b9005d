/* The Solidity contract ABI for the calls of on-chain authorization: the
 * AppBootInfo tuple as call data, and the (bool, string) and (string) return
 * values, canonical encodings only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/chain.h>
#include <cvmkit/err.h>
#include <cvmkit/keccak.h>

#define WORD ((size_t)CVM_CHAIN_WORD_LEN)
/* AppBootInfo's head: 9 words (7 static fields, 2 offsets). */
#define BOOT_INFO_HEAD_WORDS 9

void cvm_chain_selector(const char *sig, uint8_t out[CVM_CHAIN_SELECTOR_LEN])
{
	uint8_t h[CVM_KECCAK256_LEN];

	cvm_keccak256(sig, strlen(sig), h);
	memcpy(out, h, CVM_CHAIN_SELECTOR_LEN);
}

/* padded is `n` rounded up to whole words; `n` is capped far below SIZE_MAX. */
static size_t padded(size_t n)
{
	return (n + WORD - 1) / WORD * WORD;
}

static void wr_uint(struct cvm_wr *w, uint64_t v)
{
	uint8_t word[WORD] = {0};

	for (size_t i = 0; i < 8; i++)
		word[WORD - 1 - i] = (uint8_t)(v >> (8 * i));
	cvm_wr_bytes(w, word, sizeof(word));
}

static void wr_left_padded(struct cvm_wr *w, const uint8_t *p, size_t n)
{
	cvm_wr_zeros(w, WORD - n);
	cvm_wr_bytes(w, p, n);
}

/* wr_string writes a string's tail: its length word, its bytes, zero padding. */
static void wr_string(struct cvm_wr *w, const char *s, size_t n)
{
	wr_uint(w, n);
	cvm_wr_bytes(w, s, n);
	cvm_wr_zeros(w, padded(n) - n);
}

int cvm_chain_encode_boot_call(enum cvm_chain_query query, const struct cvm_chain_boot_info *bi,
                               uint8_t **out, size_t *out_len)
{
	uint8_t sel[CVM_CHAIN_SELECTOR_LEN];
	size_t tcb_len, adv_len[CVM_CHAIN_ADVISORIES_MAX];
	size_t tail, adv_tail;
	struct cvm_wr w;
	int r;

	*out = NULL;
	*out_len = 0;
	if (bi == NULL || bi->tcb_status == NULL || (bi->advisory_ids == NULL && bi->advisory_count != 0) ||
	    (query != CVM_CHAIN_APP && query != CVM_CHAIN_KMS))
		return CVM_E_INVAL;
	if (bi->advisory_count > CVM_CHAIN_ADVISORIES_MAX)
		return CVM_E_TOO_LARGE;
	tcb_len = strnlen(bi->tcb_status, CVM_CHAIN_STRING_MAX + 1);
	if (tcb_len > CVM_CHAIN_STRING_MAX)
		return CVM_E_TOO_LARGE;
	/* The advisory array's tail: its count word, one offset word per
	 * string, then each string's length word and padded bytes. */
	adv_tail = WORD + bi->advisory_count * WORD;
	for (size_t i = 0; i < bi->advisory_count; i++) {
		if (bi->advisory_ids[i] == NULL)
			return CVM_E_INVAL;
		adv_len[i] = strnlen(bi->advisory_ids[i], CVM_CHAIN_STRING_MAX + 1);
		if (adv_len[i] > CVM_CHAIN_STRING_MAX)
			return CVM_E_TOO_LARGE;
		adv_tail += WORD + padded(adv_len[i]);
	}

	cvm_chain_selector(
	    query == CVM_CHAIN_APP ? CVM_CHAIN_SIG_IS_APP_ALLOWED : CVM_CHAIN_SIG_IS_KMS_ALLOWED, sel);
	tail = BOOT_INFO_HEAD_WORDS * WORD + WORD + padded(tcb_len) + adv_tail;
	cvm_wr_init(&w, CVM_CHAIN_SELECTOR_LEN + WORD + tail);
	cvm_wr_bytes(&w, sel, sizeof(sel));
	/* The one argument is a dynamic tuple: its offset, from the start of
	 * the arguments. */
	wr_uint(&w, WORD);
	wr_left_padded(&w, bi->app_id, sizeof(bi->app_id));
	cvm_wr_bytes(&w, bi->compose_hash, sizeof(bi->compose_hash));
	wr_left_padded(&w, bi->instance_id, sizeof(bi->instance_id));
	cvm_wr_bytes(&w, bi->device_id, sizeof(bi->device_id));
	cvm_wr_bytes(&w, bi->mr_aggregated, sizeof(bi->mr_aggregated));
	cvm_wr_bytes(&w, bi->mr_system, sizeof(bi->mr_system));
	cvm_wr_bytes(&w, bi->os_image_hash, sizeof(bi->os_image_hash));
	/* Offsets of the two dynamic members, from the start of the tuple. */
	wr_uint(&w, BOOT_INFO_HEAD_WORDS * WORD);
	wr_uint(&w, BOOT_INFO_HEAD_WORDS * WORD + WORD + padded(tcb_len));
	wr_string(&w, bi->tcb_status, tcb_len);
	wr_uint(&w, bi->advisory_count);
	/* Offsets of the strings, from just after the count word. */
	{
		size_t off = bi->advisory_count * WORD;

		for (size_t i = 0; i < bi->advisory_count; i++) {
			wr_uint(&w, off);
			off += WORD + padded(adv_len[i]);
		}
	}
	for (size_t i = 0; i < bi->advisory_count; i++)
		wr_string(&w, bi->advisory_ids[i], adv_len[i]);
	r = cvm_wr_finish(&w, out, out_len);
	cvm_wr_cleanup(&w);
	return r;
}

/* rd_uint reads a word holding an unsigned integer that fits `max`; false on
 * truncation or a larger value. */
static bool rd_uint(struct cvm_rd *r, uint64_t max, uint64_t *v)
{
	struct cvm_rd hi;
	uint64_t x;

	if (!cvm_rd_sub(r, &hi, WORD - 8) || !cvm_rd_u64be(r, &x))
		return false;
	if (!cvm_rd_all_zero(&hi) || x > max)
		return false;
	*v = x;
	return true;
}

/* decode_string_tail reads the canonical string tail that `r` holds (length
 * word, bytes, zero padding, nothing after) into out. */
static int decode_string_tail(struct cvm_rd *r, char *out, size_t out_len)
{
	const uint8_t *p;
	struct cvm_rd pad;
	uint64_t n;

	if (r->len < WORD)
		return CVM_E_TRUNCATED;
	if (!rd_uint(r, UINT64_MAX, &n))
		return CVM_E_FORMAT;
	if (n > CVM_CHAIN_STRING_MAX)
		return CVM_E_TOO_LARGE;
	if (!cvm_rd_bytes(r, &p, (size_t)n) || !cvm_rd_sub(r, &pad, padded((size_t)n) - (size_t)n))
		return CVM_E_TRUNCATED;
	if (!cvm_rd_all_zero(&pad) || !cvm_rd_empty(r))
		return CVM_E_FORMAT;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return CVM_E_FORMAT;
	if (n >= out_len)
		n = out_len - 1;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return CVM_OK;
}

int cvm_chain_decode_bool_string(const uint8_t *buf, size_t len, bool *is_allowed, char *reason,
                                 size_t reason_len)
{
	struct cvm_rd r;
	uint64_t b, off;
	int ret;

	*is_allowed = false;
	if (reason_len == 0)
		return CVM_E_INVAL;
	reason[0] = '\0';
	cvm_rd_init(&r, buf, len);
	if (len < 2 * WORD)
		return CVM_E_TRUNCATED;
	if (!rd_uint(&r, 1, &b) || !rd_uint(&r, 2 * WORD, &off) || off != 2 * WORD)
		return CVM_E_FORMAT;
	ret = decode_string_tail(&r, reason, reason_len);
	if (ret != CVM_OK) {
		reason[0] = '\0';
		return ret;
	}
	*is_allowed = b == 1;
	return CVM_OK;
}

int cvm_chain_decode_string(const uint8_t *buf, size_t len, char *out, size_t out_len)
{
	struct cvm_rd r;
	uint64_t off;
	int ret;

	if (out_len == 0)
		return CVM_E_INVAL;
	out[0] = '\0';
	cvm_rd_init(&r, buf, len);
	if (len < WORD)
		return CVM_E_TRUNCATED;
	if (!rd_uint(&r, WORD, &off) || off != WORD)
		return CVM_E_FORMAT;
	ret = decode_string_tail(&r, out, out_len);
	if (ret != CVM_OK)
		out[0] = '\0';
	return ret;
}
