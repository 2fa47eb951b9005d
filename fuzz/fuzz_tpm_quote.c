/* libFuzzer harness for the TPM structure wrappers: TPMS_ATTEST,
 * TPMT_SIGNATURE and the AK (TPM2B_PUBLIC / TPMT_PUBLIC / SPKI) through
 * tss2-mu, tpm2-tools' PCR files, PCR selection text, and quote
 * verification over all of them. Each parser sees the whole input; then the
 * input is also read as a framed triple
 *   u16be attest_len || attest || u16be sig_len || sig || AK
 * and verified with the quote's own extraData as the nonce. Whatever the
 * input: no crash, and every length a parser reports fits its field. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/tpm.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_attest(const struct cvm_tpm_attest *a)
{
	if (a->signer_len > sizeof(a->signer) || a->extra_len > sizeof(a->extra) ||
	    a->pcr_digest_len > sizeof(a->pcr_digest) || a->pcr_sel.count > CVM_TPM_SEL_MAX)
		__builtin_trap();
}

static void check_sig(const struct cvm_tpm_sig *s)
{
	if (s->sig_len > sizeof(s->sig) || s->r_len > sizeof(s->r) || s->s_len > sizeof(s->s))
		__builtin_trap();
}

static void whole(const uint8_t *data, size_t size)
{
	struct cvm_tpm_attest a;
	struct cvm_tpm_sig s;
	struct cvm_tpm_ak *ak = NULL;
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_pcrs *pcrs = malloc(sizeof(*pcrs));
	char text[256];

	if (cvm_tpm_attest_parse(data, size, &a) == CVM_OK) {
		check_attest(&a);
		if (pcrs != NULL && cvm_tpm_pcrs_parse_values(data, size, &a.pcr_sel, pcrs) == CVM_OK &&
		    pcrs->count > CVM_TPM_BANKS_MAX)
			__builtin_trap();
	}
	if (cvm_tpm_sig_parse(data, size, &s) == CVM_OK)
		check_sig(&s);
	if (cvm_tpm_ak_parse(data, size, &ak) == CVM_OK) {
		const struct cvm_tpm_public *p = cvm_tpm_ak_public(ak);

		if (p != NULL && p->name_len > sizeof(p->name))
			__builtin_trap();
		cvm_tpm_ak_free(ak);
	}
	if (pcrs != NULL && cvm_tpm_pcrs_parse_serialized(data, size, &sel, pcrs) == CVM_OK) {
		uint8_t *out = NULL;
		size_t out_len = 0;

		/* What parses writes back to the same length. */
		if (cvm_tpm_pcrs_write_serialized(&sel, pcrs, &out, &out_len) == CVM_OK && out_len != size)
			__builtin_trap();
		free(out);
	}
	free(pcrs);
	if (size < sizeof(text)) {
		memcpy(text, data, size);
		text[size] = '\0';
		if (cvm_tpm_pcr_sel_parse(text, &sel) == CVM_OK) {
			char back[256];

			cvm_tpm_pcr_sel_format(&sel, back, sizeof(back));
			if (back[0] == '\0')
				__builtin_trap();
		}
	}
}

static void framed(const uint8_t *data, size_t size)
{
	struct cvm_rd rd, attest, sig;
	struct cvm_tpm_attest a;
	struct cvm_tpm_ak *ak = NULL;
	struct cvm_tpm_quote q;
	struct cvm_tpm_pcrs *pcrs;
	struct cvm_report rep;

	cvm_rd_init(&rd, data, size);
	if (!cvm_rd_sub_u16be(&rd, &attest) || !cvm_rd_sub_u16be(&rd, &sig))
		return;
	if (cvm_tpm_attest_parse(attest.p, attest.len, &a) != CVM_OK || a.extra_len == 0)
		return;
	if (cvm_tpm_ak_parse(rd.p, rd.len, &ak) != CVM_OK)
		return;
	cvm_report_init(&rep);
	if (cvm_tpm_quote_authenticate(ak, attest.p, attest.len, sig.p, sig.len, a.extra, a.extra_len, &rep,
	                               &q) == CVM_OK) {
		check_attest(&q.attest);
		check_sig(&q.sig);
		pcrs = calloc(1, sizeof(*pcrs));
		if (pcrs != NULL && cvm_tpm_quote_check_pcrs(&q, pcrs, &rep) == CVM_OK)
			__builtin_trap(); /* an empty set cannot give a quoted digest */
		free(pcrs);
	}
	if (rep.count > CVM_REPORT_STEPS_MAX)
		__builtin_trap();
	cvm_tpm_ak_free(ak);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;

	if (!quiet) {
		/* tss2-mu logs every malformed input otherwise. */
		(void)setenv("TSS2_LOG", "all+none", 0);
		quiet = 1;
	}
	whole(data, size);
	framed(data, size);
	return 0;
}
