/* Whole-log replay and what callers read from a replay: register values and
 * a TPM quote's PCR digest. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eventlog_int.h"

static const char *const format_names[] = {
    [CVM_EVL_AUTO] = "auto", [CVM_EVL_TCG_SHA1] = "tcg-sha1",     [CVM_EVL_TCG2] = "tcg2",
    [CVM_EVL_CCEL] = "ccel", [CVM_EVL_DSTACK] = "dstack-runtime", [CVM_EVL_DSTACK_JSON] = "dstack-json",
};

const char *cvm_evl_format_name(enum cvm_evl_format format)
{
	if ((unsigned)format >= sizeof(format_names) / sizeof(format_names[0]))
		return "unknown";
	return format_names[format];
}

int cvm_evl_format_from_name(const char *name, enum cvm_evl_format *out)
{
	*out = CVM_EVL_AUTO;
	if (name == NULL)
		return CVM_E_INVAL;
	if (strcasecmp(name, "dstack") == 0) {
		*out = CVM_EVL_DSTACK;
		return CVM_OK;
	}
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcasecmp(name, format_names[i]) == 0) {
			*out = (enum cvm_evl_format)i;
			return CVM_OK;
		}
	}
	return CVM_E_INVAL;
}

/* replay_all reads every event of `p` and copies the replay to `out`. */
static int replay_all(struct cvm_evl_parser *p, struct cvm_evl_replay *out)
{
	struct cvm_evl_event ev;
	bool has_event = true;
	int r = CVM_OK;

	while (has_event) {
		r = cvm_evl_parser_next(p, &ev, &has_event);
		if (r != CVM_OK)
			break;
	}
	if (r == CVM_OK)
		*out = p->replay;
	return r;
}

int cvm_evl_replay(const uint8_t *buf, size_t len, enum cvm_evl_format format, struct cvm_evl_replay *out)
{
	struct cvm_evl_parser *p = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = cvm_evl_parser_new_mem(buf, len, format, &p);
	if (r != CVM_OK)
		goto out;
	r = replay_all(p, out);
out:
	cvm_evl_parser_free(p);
	return r;
}

int cvm_evl_replay_fd(int fd, enum cvm_evl_format format, struct cvm_evl_replay *out)
{
	struct cvm_evl_parser *p = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = cvm_evl_parser_new_fd(fd, format, &p);
	if (r != CVM_OK)
		goto out;
	r = replay_all(p, out);
out:
	cvm_evl_parser_free(p);
	return r;
}

const struct cvm_evl_bank *cvm_evl_replay_bank(const struct cvm_evl_replay *r, uint16_t alg)
{
	for (size_t i = 0; i < r->bank_count && i < CVM_EVL_BANKS_MAX; i++) {
		if (r->banks[i].alg == alg)
			return &r->banks[i];
	}
	return NULL;
}

int cvm_evl_replay_value(const struct cvm_evl_replay *r, uint16_t alg, uint32_t reg, const uint8_t **out,
                         size_t *out_len)
{
	const struct cvm_evl_bank *b;

	*out = NULL;
	*out_len = 0;
	if (reg >= r->reg_count || reg >= CVM_EVL_REGS_MAX)
		return CVM_E_INVAL;
	b = cvm_evl_replay_bank(r, alg);
	if (b == NULL || !b->supported)
		return CVM_E_UNSUPPORTED;
	if ((b->partial & (1u << reg)) != 0)
		return CVM_E_FORMAT;
	*out = b->reg[reg];
	*out_len = b->len;
	return CVM_OK;
}

int cvm_evl_replay_pcr_digest(const struct cvm_evl_replay *r, const struct cvm_evl_pcr_select *sel,
                              size_t sel_count, uint16_t hash_alg, uint8_t *out, size_t out_len)
{
	struct cvm_digest_ctx *ctx = NULL;
	int rc;

	if (out != NULL)
		memset(out, 0, out_len);
	if (sel == NULL || sel_count == 0 || sel_count > CVM_EVL_BANKS_MAX)
		return CVM_E_INVAL;
	if (cvm_digest_len(hash_alg) == 0)
		return CVM_E_UNSUPPORTED;
	if (out_len < cvm_digest_len(hash_alg))
		return CVM_E_INVAL;
	rc = cvm_digest_ctx_new(hash_alg, &ctx);
	if (rc != CVM_OK)
		goto out;
	for (size_t i = 0; i < sel_count; i++) {
		if (sel[i].mask == 0 || (r->reg_count < 32 && (sel[i].mask >> r->reg_count) != 0)) {
			rc = CVM_E_INVAL;
			goto out;
		}
		for (uint32_t reg = 0; reg < r->reg_count; reg++) {
			const uint8_t *v;
			size_t vlen;

			if ((sel[i].mask & (1u << reg)) == 0)
				continue;
			rc = cvm_evl_replay_value(r, sel[i].alg, reg, &v, &vlen);
			if (rc != CVM_OK)
				goto out;
			rc = cvm_digest_update(ctx, v, vlen);
			if (rc != CVM_OK)
				goto out;
		}
	}
	rc = cvm_digest_final(ctx, out, out_len);
out:
	cvm_digest_ctx_free(ctx);
	return rc;
}
