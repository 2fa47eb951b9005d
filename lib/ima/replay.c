/* PCR replay of IMA measurement lists, as the kernel extends them
 * (security/integrity/ima/ima_queue.c ima_pcr_extend, ima_crypto.c
 * ima_calc_field_array_hash): the SHA-1 bank takes the logged template
 * digest, every other bank its own hash over the same template data, and a
 * violation extends all-0xff bytes into every bank. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ima.h>

#include "ima_int.h"

/* The `ima` template hashes its name zero-padded to IMA_EVENT_NAME_LEN_MAX + 1. */
#define IMA_OLD_NAME_FIELD 256
#define TEMPLATES_MAX 16

struct bank {
	uint16_t alg;
	size_t len;
	struct cvm_digest_ctx *ctx;
	uint8_t pcr[CVM_IMA_PCR_COUNT][CVM_DIGEST_MAX];
};

struct cvm_ima_replay {
	struct bank banks[CVM_IMA_BANKS_MAX];
	size_t bank_count;
	struct cvm_digest_ctx *sha1; /* the template digest check */
	bool own_sha1;               /* false when it is the SHA-1 bank's context */
	uint64_t entries, violations, dropped;
	uint32_t pcr_mask;
	char templates[TEMPLATES_MAX][CVM_IMA_TEMPLATE_NAME_MAX + 1];
	size_t template_lens[TEMPLATES_MAX];
	size_t template_count;
	size_t last_template; /* index of the last entry's template name */
};

void cvm_ima_replay_free(struct cvm_ima_replay *rp)
{
	if (rp == NULL)
		return;
	for (size_t i = 0; i < rp->bank_count; i++)
		cvm_digest_ctx_free(rp->banks[i].ctx);
	if (rp->own_sha1)
		cvm_digest_ctx_free(rp->sha1);
	free(rp);
}

int cvm_ima_replay_new(const uint16_t *banks, size_t bank_count, struct cvm_ima_replay **out)
{
	struct cvm_ima_replay *rp = NULL;
	int r;

	*out = NULL;
	if (banks == NULL || bank_count == 0 || bank_count > CVM_IMA_BANKS_MAX)
		return CVM_E_INVAL;
	for (size_t i = 0; i < bank_count; i++) {
		if (cvm_digest_len(banks[i]) == 0)
			return CVM_E_UNSUPPORTED;
		for (size_t j = 0; j < i; j++) {
			if (banks[j] == banks[i])
				return CVM_E_INVAL;
		}
	}
	rp = calloc(1, sizeof(*rp));
	if (rp == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < bank_count; i++) {
		struct bank *b = &rp->banks[i];

		b->alg = banks[i];
		b->len = cvm_digest_len(banks[i]);
		r = cvm_digest_ctx_new(banks[i], &b->ctx);
		if (r != CVM_OK)
			goto out;
		rp->bank_count++;
		if (b->alg == CVM_DIGEST_SHA1)
			rp->sha1 = b->ctx;
	}
	if (rp->sha1 == NULL) {
		r = cvm_digest_ctx_new(CVM_DIGEST_SHA1, &rp->sha1);
		if (r != CVM_OK)
			goto out;
		rp->own_sha1 = true;
	}
	rp->last_template = TEMPLATES_MAX;
	*out = rp;
	rp = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_ima_replay_free(rp);
	return r;
}

/* template_hash hashes what the template digest covers with `ctx`. */
static int template_hash(struct cvm_digest_ctx *ctx, const struct cvm_ima_entry *e, uint8_t *out,
                         size_t out_len)
{
	static const uint8_t zeros[IMA_OLD_NAME_FIELD];
	int r;

	if (e->template_id == CVM_IMA_TEMPLATE_IMA) {
		/* ima_calc_field_array_hash_tfm: no field lengths; the 20-byte
		 * digest, then the name padded with zeros (its NUL included). */
		if (e->digest.len != 20 || e->name.len >= IMA_OLD_NAME_FIELD)
			return CVM_E_INTERNAL;
		r = cvm_digest_update(ctx, e->digest.p, e->digest.len);
		if (r == CVM_OK)
			r = cvm_digest_update(ctx, e->name.p, e->name.len);
		if (r == CVM_OK)
			r = cvm_digest_update(ctx, zeros, IMA_OLD_NAME_FIELD - e->name.len);
	} else {
		r = cvm_digest_update(ctx, e->template_data.p, e->template_data.len);
	}
	if (r != CVM_OK)
		return r;
	return cvm_digest_final(ctx, out, out_len);
}

/* note_template remembers the entry's template name (the common case, the
 * same name as the entry before, costs one comparison). */
static void note_template(struct cvm_ima_replay *rp, const struct cvm_ima_entry *e)
{
	const struct cvm_rd *n = &e->template_name;

	if (rp->last_template < rp->template_count) {
		size_t i = rp->last_template;

		if (rp->template_lens[i] == n->len &&
		    (n->len == 0 || memcmp(rp->templates[i], n->p, n->len) == 0))
			return;
	}
	for (size_t i = 0; i < rp->template_count; i++) {
		if (rp->template_lens[i] == n->len &&
		    (n->len == 0 || memcmp(rp->templates[i], n->p, n->len) == 0)) {
			rp->last_template = i;
			return;
		}
	}
	if (rp->template_count == TEMPLATES_MAX || n->len > CVM_IMA_TEMPLATE_NAME_MAX) {
		rp->dropped++;
		return;
	}
	if (n->len != 0)
		memcpy(rp->templates[rp->template_count], n->p, n->len);
	rp->templates[rp->template_count][n->len] = '\0';
	rp->template_lens[rp->template_count] = n->len;
	rp->last_template = rp->template_count++;
}

int cvm_ima_replay_extend(struct cvm_ima_replay *rp, const struct cvm_ima_entry *e)
{
	uint8_t d[CVM_IMA_BANKS_MAX][CVM_DIGEST_MAX];
	uint8_t sha1[CVM_DIGEST_MAX];
	int r;

	if (e->pcr >= CVM_IMA_PCR_COUNT)
		return CVM_E_INVAL;
	if (rp->entries >= CVM_IMA_ENTRIES_MAX)
		return CVM_E_TOO_LARGE;
	if (e->is_violation) {
		for (size_t i = 0; i < rp->bank_count; i++)
			memset(d[i], 0xff, rp->banks[i].len);
	} else {
		r = template_hash(rp->sha1, e, sha1, sizeof(sha1));
		if (r != CVM_OK)
			return r;
		if (memcmp(sha1, e->template_digest, sizeof(e->template_digest)) != 0)
			return CVM_E_MISMATCH;
		for (size_t i = 0; i < rp->bank_count; i++) {
			struct bank *b = &rp->banks[i];

			if (b->alg == CVM_DIGEST_SHA1) {
				memcpy(d[i], e->template_digest, sizeof(e->template_digest));
				continue;
			}
			r = template_hash(b->ctx, e, d[i], sizeof(d[i]));
			if (r != CVM_OK)
				return r;
		}
	}
	for (size_t i = 0; i < rp->bank_count; i++) {
		struct bank *b = &rp->banks[i];

		r = cvm_digest_extend(b->ctx, b->pcr[e->pcr], d[i]);
		if (r != CVM_OK)
			return r;
	}
	rp->entries++;
	if (e->is_violation)
		rp->violations++;
	rp->pcr_mask |= 1u << e->pcr;
	note_template(rp, e);
	return CVM_OK;
}

static const struct bank *find_bank(const struct cvm_ima_replay *rp, uint16_t alg)
{
	for (size_t i = 0; i < rp->bank_count; i++) {
		if (rp->banks[i].alg == alg)
			return &rp->banks[i];
	}
	return NULL;
}

int cvm_ima_replay_pcr(const struct cvm_ima_replay *rp, uint16_t bank, uint32_t pcr, uint8_t *out,
                       size_t out_len)
{
	const struct bank *b = find_bank(rp, bank);

	if (b == NULL || pcr >= CVM_IMA_PCR_COUNT || out_len < b->len)
		return CVM_E_INVAL;
	memcpy(out, b->pcr[pcr], b->len);
	return CVM_OK;
}

uint32_t cvm_ima_replay_pcr_mask(const struct cvm_ima_replay *rp)
{
	return rp->pcr_mask;
}

uint64_t cvm_ima_replay_entries(const struct cvm_ima_replay *rp)
{
	return rp->entries;
}

uint64_t cvm_ima_replay_violations(const struct cvm_ima_replay *rp)
{
	return rp->violations;
}

size_t cvm_ima_replay_bank_count(const struct cvm_ima_replay *rp)
{
	return rp->bank_count;
}

uint16_t cvm_ima_replay_bank(const struct cvm_ima_replay *rp, size_t i)
{
	return i < rp->bank_count ? rp->banks[i].alg : 0;
}

size_t cvm_ima_replay_template_count(const struct cvm_ima_replay *rp)
{
	return rp->template_count;
}

const char *cvm_ima_replay_template_name(const struct cvm_ima_replay *rp, size_t i)
{
	return i < rp->template_count ? rp->templates[i] : NULL;
}

uint64_t cvm_ima_replay_templates_dropped(const struct cvm_ima_replay *rp)
{
	return rp->dropped;
}

int cvm_ima_replay_until(struct cvm_ima_replay *rp, struct cvm_ima_reader *rd, uint16_t bank,
                         const uint8_t *want, size_t want_len, bool *matched)
{
	const struct bank *b = find_bank(rp, bank);
	struct cvm_ima_entry e;
	bool has;
	int r;

	*matched = false;
	if (b == NULL || want == NULL || want_len != b->len)
		return CVM_E_INVAL;
	for (;;) {
		if (memcmp(b->pcr[CVM_IMA_PCR], want, b->len) == 0) {
			*matched = true;
			return CVM_OK;
		}
		r = cvm_ima_reader_next(rd, &e, &has);
		if (r != CVM_OK)
			return r;
		if (!has)
			return CVM_OK;
		r = cvm_ima_replay_extend(rp, &e);
		if (r != CVM_OK)
			return r;
	}
}
