/* An IMA measurement list appraised against a TPM quote: the one place that
 * decides which entries a quote covers (cvm tpm verify and cvm evidence
 * verify both call it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ima.h>
#include <cvmkit/verify.h>

/* quoted_banks lists the distinct banks of the quote's selection that
 * cvmkit can hash, SHA-256 first when quoted (the bank reports name). */
static size_t quoted_banks(const struct cvm_tpm_pcr_sel *sel, uint16_t banks[CVM_IMA_BANKS_MAX])
{
	size_t n = 0;

	for (size_t i = 0; i < sel->count; i++) {
		bool seen = false;

		for (size_t j = 0; j < n; j++)
			seen |= banks[j] == sel->banks[i].alg;
		if (seen || n == CVM_IMA_BANKS_MAX || cvm_digest_len(sel->banks[i].alg) == 0)
			continue;
		banks[n++] = sel->banks[i].alg;
		if (sel->banks[i].alg == CVM_DIGEST_SHA256 && n > 1) {
			banks[n - 1] = banks[0];
			banks[0] = CVM_DIGEST_SHA256;
		}
	}
	return n;
}

static int reader_open(const uint8_t *ima, size_t ima_len, const char *ima_path, struct cvm_ima_reader **rd)
{
	if (ima_path != NULL)
		return cvm_ima_reader_open(ima_path, CVM_IMA_FORMAT_AUTO, rd);
	return cvm_ima_reader_new_mem(ima, ima_len, CVM_IMA_FORMAT_AUTO, rd);
}

static const char *list_name(const char *ima_path)
{
	return ima_path != NULL ? ima_path : "(in memory)";
}

/* replay_pass reads the whole list once: every entry parsed, its template
 * digest checked and extended, so a list that is broken after the quoted
 * prefix is refused too; gives the PCRs it extends and its length. */
static int replay_pass(const uint8_t *ima, size_t ima_len, const char *ima_path, const uint16_t *banks,
                       size_t nb, struct cvm_report *rep, uint32_t *mask, uint64_t *total)
{
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_replay *rp = NULL;
	struct cvm_ima_entry e;
	bool has = false;
	int r, saved = 0;

	r = reader_open(ima, ima_len, ima_path, &rd);
	if (r != CVM_OK) {
		saved = errno;
		cvm_report_add(rep, "ima", false, "cannot read the IMA list %s: %s", list_name(ima_path),
		               r == CVM_E_SYSTEM ? strerror(saved) : cvm_strerror(r));
		goto out;
	}
	r = cvm_ima_replay_new(banks, nb, &rp);
	if (r != CVM_OK)
		goto out;
	for (;;) {
		r = cvm_ima_reader_next(rd, &e, &has);
		if (r != CVM_OK || !has)
			break;
		r = cvm_ima_replay_extend(rp, &e);
		if (r != CVM_OK)
			break;
	}
	if (r != CVM_OK) {
		const char *why = cvm_ima_reader_err(rd);

		saved = errno;
		cvm_report_add(rep, "ima", false, "the IMA list %s does not replay: %s", list_name(ima_path),
		               why[0] != '\0' ? why : cvm_strerror(r));
		goto out;
	}
	*mask = cvm_ima_replay_pcr_mask(rp);
	*total = cvm_ima_replay_entries(rp);
out:
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
	if (r == CVM_E_SYSTEM)
		errno = saved;
	return r;
}

/* search_pass replays again from the start, the PCRs in `mask` at their
 * reset value over `cur` (the base), and stops at the first prefix (the
 * empty one included) whose PCR values give the quote's digest. */
static int search_pass(const struct cvm_tpm_quote *q, const uint8_t *ima, size_t ima_len,
                       const char *ima_path, const uint16_t *banks, size_t nb, uint32_t mask,
                       struct cvm_tpm_pcrs *cur, bool *matched, uint64_t *prefix, uint32_t *prefix_mask)
{
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_replay *rp = NULL;
	uint8_t zero[CVM_TPM_DIGEST_MAX];
	struct cvm_ima_entry e;
	bool has = false;
	int r;

	*matched = false;
	memset(zero, 0, sizeof(zero));
	for (size_t b = 0; b < nb; b++) {
		for (unsigned pcr = 0; pcr < CVM_TPM_PCR_COUNT; pcr++) {
			if ((mask & (1u << pcr)) == 0)
				continue;
			r = cvm_tpm_pcrs_set(cur, banks[b], pcr, zero, cvm_digest_len(banks[b]));
			if (r != CVM_OK)
				return r;
		}
	}
	r = reader_open(ima, ima_len, ima_path, &rd);
	if (r == CVM_OK)
		r = cvm_ima_replay_new(banks, nb, &rp);
	if (r != CVM_OK)
		goto out;
	*matched = cvm_tpm_quote_pcrs_match(q, cur);
	while (!*matched) {
		r = cvm_ima_reader_next(rd, &e, &has);
		if (r != CVM_OK || !has)
			break;
		r = cvm_ima_replay_extend(rp, &e);
		for (size_t b = 0; r == CVM_OK && b < nb; b++) {
			uint8_t val[CVM_TPM_DIGEST_MAX];

			r = cvm_ima_replay_pcr(rp, banks[b], e.pcr, val, sizeof(val));
			if (r == CVM_OK)
				r = cvm_tpm_pcrs_set(cur, banks[b], e.pcr, val, cvm_digest_len(banks[b]));
		}
		if (r != CVM_OK)
			break;
		*matched = cvm_tpm_quote_pcrs_match(q, cur);
	}
	*prefix = cvm_ima_replay_entries(rp);
	*prefix_mask = cvm_ima_replay_pcr_mask(rp);
out:
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
	return r;
}

int cvm_verify_ima_list(const struct cvm_tpm_quote *q, const struct cvm_tpm_pcrs *base, const uint8_t *ima,
                        size_t ima_len, const char *ima_path, struct cvm_report *rep,
                        struct cvm_tpm_pcrs *out, struct cvm_ima_coverage *res)
{
	struct cvm_tpm_pcrs *cur = NULL;
	uint32_t mask = 0, prefix_mask = 0, uncovered = 0;
	uint64_t prefix = 0;
	bool matched = false;
	int r;

	memset(res, 0, sizeof(*res));
	if (q == NULL || (ima == NULL && ima_len != 0) || (ima == NULL && ima_path == NULL))
		return CVM_E_INVAL;
	res->bank_count = quoted_banks(&q->attest.pcr_sel, res->banks);
	if (res->bank_count == 0) {
		cvm_report_add(rep, "ima", false, "the TPM quote covers no PCR bank cvmkit can replay");
		return CVM_E_MISMATCH;
	}
	/* Pass 1: the whole list, and which PCRs it extends. */
	r = replay_pass(ima, ima_len, ima_path, res->banks, res->bank_count, rep, &mask, &res->total_entries);
	if (r != CVM_OK)
		return r;
	mask |= 1u << CVM_IMA_PCR;
	res->pcr_mask = mask;
	if ((cvm_tpm_pcr_sel_mask(&q->attest.pcr_sel, res->banks[0]) & (1u << CVM_IMA_PCR)) == 0) {
		cvm_report_add(rep, "ima", false,
		               "the TPM quote does not cover PCR 10: the IMA list is not covered");
		return CVM_E_MISMATCH;
	}
	cur = malloc(sizeof(*cur));
	if (cur == NULL)
		return CVM_E_NOMEM;
	if (base != NULL)
		*cur = *base;
	else
		cvm_tpm_pcrs_init(cur);
	/* Pass 2: the shortest prefix that gives the quoted digest. */
	r = search_pass(q, ima, ima_len, ima_path, res->banks, res->bank_count, mask, cur, &matched, &prefix,
	                &prefix_mask);
	if (r != CVM_OK) {
		cvm_report_add(rep, "ima", false, "the IMA list %s does not replay: %s", list_name(ima_path),
		               cvm_strerror(r));
		goto out;
	}
	if (!matched) {
		cvm_report_add(
		    rep, "ima", false,
		    "no prefix of the %llu entries of the IMA list %s gives the quoted PCR digest: the "
		    "list is not the one measured (or the other PCR values are not the quoted ones)",
		    (unsigned long long)res->total_entries, list_name(ima_path));
		r = CVM_E_MISMATCH;
		goto out;
	}
	/* An entry of the covered prefix that extends a PCR the quote does not
	 * select in every replayed bank is vouched for by nothing. */
	for (size_t b = 0; b < res->bank_count; b++)
		uncovered |= prefix_mask & ~cvm_tpm_pcr_sel_mask(&q->attest.pcr_sel, res->banks[b]);
	if (uncovered != 0) {
		cvm_report_add(
		    rep, "ima", false,
		    "entries of the quoted prefix extend PCRs the quote does not cover (mask 0x%06x): "
		    "they are not vouched for; quote those PCRs too",
		    uncovered);
		r = CVM_E_MISMATCH;
		goto out;
	}
	res->matched = true;
	res->quoted_entries = prefix;
	cvm_report_add(rep, "ima", true,
	               "the quote (%s%s) covers the first %llu of the %llu entries of the IMA list",
	               cvm_digest_name(res->banks[0]), res->bank_count > 1 ? " and more banks" : "",
	               (unsigned long long)prefix, (unsigned long long)res->total_entries);
	if (out != NULL)
		*out = *cur;
	r = CVM_OK;
out:
	free(cur);
	return r;
}
