/* cvm_verify_ima_list: the one rule for which IMA entries a TPM quote covers
 * (lib/verify/ima_quote.c), on the real quote and list recorded from a VM,
 * and on quotes built here over chosen PCR values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/ima.h>
#include <cvmkit/report.h>
#include <cvmkit/tpm.h>
#include <cvmkit/verify.h>

#include "vectors.h"

#define VM "ima/vm-ovmf-tpmcrb-imang/"
#define VM_PREFIX 507 /* the entries the recorded quote covers (ima/manifest.json) */

/* The recorded quote, authenticated as a caller would. */
static void real_quote(struct cvm_tpm_quote *q, struct cvm_tpm_pcrs *pcrs)
{
	size_t ak_len, msg_len, sig_len, pcr_len, nonce_len;
	uint8_t *ak_buf = vector_read(VM "quote/ak.tpm2b_public", &ak_len);
	uint8_t *msg = vector_read(VM "quote/quote.msg", &msg_len);
	uint8_t *sig = vector_read(VM "quote/quote.sig", &sig_len);
	uint8_t *pcr_file = vector_read(VM "quote/quote.pcrs", &pcr_len);
	uint8_t *nonce_hex = vector_read(VM "quote/nonce.hex", &nonce_len);
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_ak *ak = NULL;
	uint8_t nonce[64];

	while (nonce_len > 0 && (nonce_hex[nonce_len - 1] == '\n' || nonce_hex[nonce_len - 1] == '\r'))
		nonce_len--;
	assert_int_equal(cvm_hex_decode_exact((const char *)nonce_hex, nonce_len, nonce, nonce_len / 2),
	                 CVM_OK);
	assert_int_equal(cvm_tpm_ak_parse(ak_buf, ak_len, &ak), CVM_OK);
	assert_int_equal(
	    cvm_tpm_quote_authenticate(ak, msg, msg_len, sig, sig_len, nonce, nonce_len / 2, NULL, q),
	    CVM_OK);
	assert_int_equal(cvm_tpm_pcrs_parse_serialized(pcr_file, pcr_len, &sel, pcrs), CVM_OK);
	assert_true(cvm_tpm_quote_pcrs_match(q, pcrs));
	cvm_tpm_ak_free(ak);
	free(ak_buf);
	free(msg);
	free(sig);
	free(pcr_file);
	free(nonce_hex);
}

static void real_quote_covers_the_first_507_entries_of_every_list_form(void **state)
{
	static const char *const files[] = {VM "binary_runtime_measurements",
	                                    VM "ascii_runtime_measurements"};
	struct cvm_tpm_quote q;
	struct cvm_tpm_pcrs base, out;
	struct cvm_ima_coverage cov;
	struct cvm_report rep;
	char path[4096];

	(void)state;
	real_quote(&q, &base);
	for (size_t i = 0; i < 2; i++) {
		size_t len;
		uint8_t *buf = vector_read(files[i], &len);
		struct cvm_tpm_pcrs other = base;

		cvm_report_init(&rep);
		assert_int_equal(cvm_verify_ima_list(&q, &base, buf, len, NULL, &rep, &out, &cov), CVM_OK);
		assert_true(cov.matched);
		assert_int_equal(cov.quoted_entries, VM_PREFIX);
		assert_true(cov.total_entries > VM_PREFIX); /* the list grew after the quote */
		assert_int_equal(cov.banks[0], CVM_DIGEST_SHA256);
		assert_true(cvm_tpm_quote_pcrs_match(&q, &out));
		assert_null(rep.failed);
		assert_string_equal(rep.steps[rep.count - 1].name, "ima");

		/* The same from the file. */
		assert_int_equal(cvm_verify_ima_list(&q, &base, NULL, 0,
		                                     vector_path(path, sizeof(path), files[i]), NULL, NULL,
		                                     &cov),
		                 CVM_OK);
		assert_int_equal(cov.quoted_entries, VM_PREFIX);

		/* The other PCRs must be the quoted ones: PCR 0 changed, no prefix matches. */
		other.banks[0].values[0][0] ^= 1;
		cvm_report_init(&rep);
		assert_int_equal(cvm_verify_ima_list(&q, &other, buf, len, NULL, &rep, NULL, &cov),
		                 CVM_E_MISMATCH);
		assert_false(cov.matched);
		assert_non_null(rep.failed);
		assert_non_null(strstr(rep.failed->detail, "no prefix"));
		free(buf);
	}
}

/* entry_offset returns where entry `n` of a binary IMA list starts:
 * pcr u32 || template digest[20] || name u32+bytes || data u32+bytes. */
static size_t entry_offset(const uint8_t *b, size_t len, size_t n)
{
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t nl, dl;

		assert_true(off + 28 <= len);
		memcpy(&nl, b + off + 24, 4);
		off += 28 + nl;
		memcpy(&dl, b + off, 4);
		off += 4 + dl;
	}
	return off;
}

static void a_changed_entry_is_rejected_inside_and_after_the_covered_prefix(void **state)
{
	struct cvm_tpm_quote q;
	struct cvm_tpm_pcrs base;
	struct cvm_ima_coverage cov;
	struct cvm_report rep;
	size_t len;
	uint8_t *buf = vector_read(VM "binary_runtime_measurements", &len);

	(void)state;
	real_quote(&q, &base);
	/* a byte of entry 100's file data (inside the prefix), then of the
	 * last entry (outside it): its template digest no longer matches */
	for (size_t k = 0; k < 2; k++) {
		size_t at = k == 0 ? entry_offset(buf, len, 100) : len - 5;

		buf[at + (k == 0 ? 60 : 0)] ^= 0x01;
		cvm_report_init(&rep);
		assert_int_not_equal(cvm_verify_ima_list(&q, &base, buf, len, NULL, &rep, NULL, &cov),
		                     CVM_OK);
		assert_false(cov.matched);
		assert_non_null(rep.failed);
		buf[at + (k == 0 ? 60 : 0)] ^= 0x01;
	}
	/* a list cut after the covered prefix: cut inside an entry, refused; cut
	 * between two entries, still the same covered prefix of a shorter list */
	{
		uint64_t whole;

		assert_int_equal(cvm_verify_ima_list(&q, &base, buf, len, NULL, NULL, NULL, &cov), CVM_OK);
		whole = cov.total_entries;
		for (size_t cut = 1; cut < 4000; cut += 37) {
			int r = cvm_verify_ima_list(&q, &base, buf, len - cut, NULL, NULL, NULL, &cov);

			if (r == CVM_OK) {
				assert_int_equal(cov.quoted_entries, VM_PREFIX);
				assert_true(cov.total_entries < whole);
			} else {
				assert_false(cov.matched);
			}
		}
		/* cut inside the covered prefix: the quoted value is never reached */
		assert_int_not_equal(cvm_verify_ima_list(&q, &base, buf,
		                                         entry_offset(buf, len, VM_PREFIX - 1), NULL, NULL,
		                                         NULL, &cov),
		                     CVM_OK);
	}
	free(buf);
}

/* synth_quote makes a quote (as cvm_tpm_quote_authenticate would leave it)
 * over `sel` and the values in `pcrs`, hashed with SHA-256. */
static void synth_quote(struct cvm_tpm_quote *q, const char *sel, const struct cvm_tpm_pcrs *pcrs)
{
	memset(q, 0, sizeof(*q));
	q->sig.hash = CVM_DIGEST_SHA256;
	assert_int_equal(cvm_tpm_pcr_sel_parse(sel, &q->attest.pcr_sel), CVM_OK);
	assert_int_equal(cvm_tpm_pcrs_digest(&q->attest.pcr_sel, pcrs, CVM_DIGEST_SHA256,
	                                     q->attest.pcr_digest, sizeof(q->attest.pcr_digest),
	                                     &q->attest.pcr_digest_len, NULL, 0),
	                 CVM_OK);
}

/* replay_to sets `out` to the PCR values after the first `n` entries of the
 * list in banks `banks` (PCRs no entry extends: zero, as IMA's start). */
static void replay_to(const uint8_t *buf, size_t len, size_t n, const uint16_t *banks, size_t nb,
                      struct cvm_tpm_pcrs *out)
{
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_replay *rp = NULL;
	struct cvm_ima_entry e;
	uint8_t v[CVM_TPM_DIGEST_MAX];
	bool has;

	cvm_tpm_pcrs_init(out);
	assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	assert_int_equal(cvm_ima_replay_new(banks, nb, &rp), CVM_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		assert_true(has);
		assert_int_equal(cvm_ima_replay_extend(rp, &e), CVM_OK);
	}
	for (size_t b = 0; b < nb; b++)
		for (unsigned pcr = 0; pcr < CVM_TPM_PCR_COUNT; pcr++) {
			assert_int_equal(cvm_ima_replay_pcr(rp, banks[b], pcr, v, sizeof(v)), CVM_OK);
			assert_int_equal(cvm_tpm_pcrs_set(out, banks[b], pcr, v, cvm_digest_len(banks[b])),
			                 CVM_OK);
		}
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
}

static void the_shortest_matching_prefix_is_the_covered_part(void **state)
{
	static const uint16_t sha256[] = {CVM_DIGEST_SHA256};
	static const uint16_t two[] = {CVM_DIGEST_SHA1, CVM_DIGEST_SHA256};
	struct cvm_tpm_quote q;
	struct cvm_tpm_pcrs at;
	struct cvm_ima_coverage cov;
	struct cvm_report rep;
	size_t len;
	uint8_t *buf = vector_read(VM "binary_runtime_measurements", &len);

	(void)state;
	/* a quote taken after 100 entries */
	replay_to(buf, len, 100, sha256, 1, &at);
	synth_quote(&q, "sha256:10", &at);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, NULL, NULL, &cov), CVM_OK);
	assert_int_equal(cov.quoted_entries, 100);
	assert_int_equal(cov.pcr_mask, 1u << 10);

	/* a quote taken before any entry: the empty prefix */
	replay_to(buf, len, 0, sha256, 1, &at);
	synth_quote(&q, "sha256:10", &at);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, NULL, NULL, &cov), CVM_OK);
	assert_int_equal(cov.quoted_entries, 0);

	/* two banks, both checked */
	replay_to(buf, len, 42, two, 2, &at);
	memset(&q, 0, sizeof(q));
	synth_quote(&q, "sha1:10+sha256:10", &at);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, NULL, NULL, &cov), CVM_OK);
	assert_int_equal(cov.quoted_entries, 42);
	assert_int_equal(cov.bank_count, 2);
	assert_int_equal(cov.banks[0], CVM_DIGEST_SHA256);
	at.banks[0].values[10][3] ^= 1; /* the SHA-1 bank disagrees: no prefix gives both */
	synth_quote(&q, "sha1:10+sha256:10", &at);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, NULL, NULL, &cov), CVM_E_MISMATCH);

	/* a quote that does not select PCR 10 covers nothing */
	replay_to(buf, len, 100, sha256, 1, &at);
	synth_quote(&q, "sha256:0", &at);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, &rep, NULL, &cov), CVM_E_MISMATCH);
	assert_non_null(strstr(rep.failed->detail, "PCR 10"));

	/* a quoted PCR without a value (no base) cannot match */
	synth_quote(&q, "sha256:0,10", &at);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, NULL, NULL, &cov), CVM_E_MISMATCH);
	free(buf);
}

static void entries_extending_an_unquoted_pcr_are_not_vouched_for(void **state)
{
	static const uint16_t sha256[] = {CVM_DIGEST_SHA256};
	struct cvm_tpm_quote q;
	struct cvm_tpm_pcrs at;
	struct cvm_ima_coverage cov;
	struct cvm_report rep;
	size_t len;
	uint8_t *buf = vector_read(VM "binary_runtime_measurements", &len);
	size_t at5 = entry_offset(buf, len, 5);
	uint32_t pcr11 = 11;

	(void)state;
	/* entry 5 measured into PCR 11 (the index is outside the template digest) */
	memcpy(buf + at5, &pcr11, 4);
	replay_to(buf, len, 100, sha256, 1, &at);
	/* PCR 10 alone is quoted: entry 5 is covered by nothing */
	synth_quote(&q, "sha256:10", &at);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, &rep, NULL, &cov), CVM_E_MISMATCH);
	assert_false(cov.matched);
	assert_non_null(strstr(rep.failed->detail, "does not cover"));
	/* PCR 10 and 11 quoted: every entry of the prefix is vouched for */
	synth_quote(&q, "sha256:10,11", &at);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, NULL, NULL, &cov), CVM_OK);
	assert_int_equal(cov.quoted_entries, 100);
	assert_int_equal(cov.pcr_mask, (1u << 10) | (1u << 11));
	/* the prefix that ends before entry 5 needs no PCR 11 */
	replay_to(buf, len, 5, sha256, 1, &at);
	synth_quote(&q, "sha256:10", &at);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, buf, len, NULL, NULL, NULL, &cov), CVM_OK);
	assert_int_equal(cov.quoted_entries, 5);
	free(buf);
}

static void bad_arguments_and_unreadable_files_are_errors(void **state)
{
	struct cvm_tpm_quote q;
	struct cvm_tpm_pcrs pcrs;
	struct cvm_ima_coverage cov;
	struct cvm_report rep;

	(void)state;
	cvm_tpm_pcrs_init(&pcrs);
	memset(&q, 0, sizeof(q));
	assert_int_equal(cvm_verify_ima_list(NULL, NULL, (const uint8_t *)"", 0, NULL, NULL, NULL, &cov),
	                 CVM_E_INVAL);
	assert_int_equal(cvm_verify_ima_list(&q, NULL, NULL, 0, NULL, NULL, NULL, &cov), CVM_E_INVAL);
	real_quote(&q, &pcrs);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_ima_list(&q, &pcrs, NULL, 0, "/nonexistent/ima", &rep, NULL, &cov),
	                 CVM_E_SYSTEM);
	assert_non_null(strstr(rep.failed->detail, "/nonexistent/ima"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(real_quote_covers_the_first_507_entries_of_every_list_form),
	    cmocka_unit_test(a_changed_entry_is_rejected_inside_and_after_the_covered_prefix),
	    cmocka_unit_test(the_shortest_matching_prefix_is_the_covered_part),
	    cmocka_unit_test(entries_extending_an_unquoted_pcr_are_not_vouched_for),
	    cmocka_unit_test(bad_arguments_and_unreadable_files_are_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
