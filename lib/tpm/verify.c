/* Quote verification: structure, then the AK and its signature over the
 * exact TPMS_ATTEST bytes, then the nonce, then the PCR digest. Every check
 * is a step in the report; the first failure is the result. */
#include <stdio.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/tpm.h>

#include "tpm_int.h"

#define AK_NEEDS (CVM_TPMA_FIXED_TPM | CVM_TPMA_RESTRICTED | CVM_TPMA_SIGN)

static const char *scheme_name(uint16_t alg)
{
	switch (alg) {
	case CVM_TPMSIG_RSASSA:
		return "rsassa";
	case CVM_TPMSIG_RSAPSS:
		return "rsapss";
	case CVM_TPMSIG_ECDSA:
		return "ecdsa";
	default:
		return "unknown";
	}
}

static const char *hash_name(uint16_t alg)
{
	const char *n = cvm_digest_name(alg);

	return n != NULL ? n : "unknown";
}

/* hex_short writes the first bytes of `p` in hex, with ".." if cut. */
static void hex_short(const uint8_t *p, size_t n, char out[2 * 16 + 3])
{
	size_t k = n < 16 ? n : 16;

	cvm_hex_encode(p, k, out);
	if (k < n)
		memcpy(out + 2 * k, "..", 3);
}

static int first(int r, int next)
{
	return r != CVM_OK ? r : next;
}

static int check_attest(const uint8_t *attest, size_t attest_len, struct cvm_tpm_attest *a,
                        struct cvm_report *rep)
{
	int r = cvm_tpm_attest_parse(attest, attest_len, a);

	if (r != CVM_OK) {
		cvm_report_add(rep, "attest", false, "the quote message is not a TPMS_ATTEST (%zu bytes): %s",
		               attest_len, cvm_strerror(r));
		return r;
	}
	if (a->magic != CVM_TPM_GENERATED_VALUE) {
		cvm_report_add(rep, "attest", false,
		               "magic is 0x%08x, not TPM_GENERATED_VALUE 0xff544347: the TPM did not make it",
		               a->magic);
		return CVM_E_FORMAT;
	}
	if (a->type != CVM_TPM_ST_ATTEST_QUOTE) {
		cvm_report_add(rep, "attest", false,
		               "type is 0x%04x, not TPM_ST_ATTEST_QUOTE 0x8018: not a quote", a->type);
		return CVM_E_UNSUPPORTED;
	}
	cvm_report_add(rep, "attest", true, "TPMS_ATTEST of a quote, %zu bytes, magic TPM_GENERATED_VALUE",
	               attest_len);
	return CVM_OK;
}

static int check_ak(const struct cvm_tpm_ak *ak, struct cvm_report *rep)
{
	const struct cvm_tpm_public *pub = cvm_tpm_ak_public(ak);
	char desc[32];

	cvm_tpm_ak_describe(ak, desc, sizeof(desc));
	if (pub == NULL) {
		cvm_report_add(rep, "ak", true,
		               "%s, given as a SubjectPublicKeyInfo: its TPM attributes cannot be checked",
		               desc);
		return CVM_OK;
	}
	if ((pub->attributes & AK_NEEDS) != AK_NEEDS || (pub->attributes & CVM_TPMA_DECRYPT) != 0) {
		cvm_report_add(rep, "ak", false,
		               "%s with attributes 0x%08x is not a restricted signing key fixed to its TPM "
		               "(needs fixedTPM, restricted, sign and not decrypt): it could sign data that "
		               "only looks like a quote",
		               desc, pub->attributes);
		return CVM_E_POLICY;
	}
	cvm_report_add(rep, "ak", true, "%s, restricted signing key (attributes 0x%08x)", desc,
	               pub->attributes);
	return CVM_OK;
}

static int check_sig(const struct cvm_tpm_ak *ak, const uint8_t *attest, size_t attest_len,
                     const struct cvm_tpm_sig *s, struct cvm_report *rep)
{
	const struct cvm_tpm_public *pub = cvm_tpm_ak_public(ak);
	const struct cvm_tpmsig_key *key = cvm_tpm_ak_key(ak);
	bool is_ecc = cvm_tpmsig_key_type(key) == CVM_TPMSIG_KEY_ECC;
	int r;

	if (s->hash != CVM_DIGEST_SHA256 && s->hash != CVM_DIGEST_SHA384) {
		cvm_report_add(rep, "signature", false,
		               "%s with hash %s (0x%04x): cvmkit verifies SHA-256 and SHA-384",
		               scheme_name(s->alg), hash_name(s->hash), s->hash);
		return CVM_E_UNSUPPORTED;
	}
	if (is_ecc != (s->alg == CVM_TPMSIG_ECDSA)) {
		cvm_report_add(rep, "signature", false, "an %s signature cannot come from this %s key",
		               scheme_name(s->alg), is_ecc ? "ECC" : "RSA");
		return CVM_E_SIGNATURE;
	}
	/* A key with a scheme signs with that scheme only. */
	if (pub != NULL && pub->scheme != TPM2_ALG_NULL &&
	    (pub->scheme != s->alg || pub->scheme_hash != s->hash)) {
		cvm_report_add(rep, "signature", false,
		               "the AK signs with %s/%s only, the signature is %s/%s",
		               scheme_name(pub->scheme), hash_name(pub->scheme_hash), scheme_name(s->alg),
		               hash_name(s->hash));
		return CVM_E_SIGNATURE;
	}
	if (is_ecc)
		r = cvm_tpmsig_verify_ecdsa(key, s->hash, attest, attest_len, s->r, s->r_len, s->s, s->s_len);
	else
		r = cvm_tpmsig_verify_rsa(key, s->alg, s->hash, attest, attest_len, s->sig, s->sig_len);
	if (r != CVM_OK) {
		cvm_report_add(rep, "signature", false,
		               "the %s/%s signature over the TPMS_ATTEST does not verify with the AK",
		               scheme_name(s->alg), hash_name(s->hash));
		return r;
	}
	cvm_report_add(rep, "signature", true, "%s/%s signature by the AK over the TPMS_ATTEST",
	               scheme_name(s->alg), hash_name(s->hash));
	return CVM_OK;
}

static int check_nonce(const struct cvm_tpm_attest *a, const uint8_t *nonce, size_t nonce_len,
                       struct cvm_report *rep)
{
	char got[2 * 16 + 3], want[2 * 16 + 3];

	hex_short(a->extra, a->extra_len, got);
	hex_short(nonce, nonce_len, want);
	if (a->extra_len != nonce_len || memcmp(a->extra, nonce, nonce_len) != 0) {
		cvm_report_add(rep, "nonce", false,
		               "qualifying data is %s (%zu bytes), the nonce is %s (%zu bytes): not this "
		               "challenge's quote",
		               a->extra_len != 0 ? got : "empty", a->extra_len, want, nonce_len);
		return CVM_E_MISMATCH;
	}
	cvm_report_add(rep, "nonce", true, "qualifying data equals the nonce %s", want);
	return CVM_OK;
}

static int check_selection(const struct cvm_tpm_quote *q, struct cvm_report *rep)
{
	const struct cvm_tpm_attest *a = &q->attest;
	unsigned selected = 0;
	char sel[256];

	cvm_tpm_pcr_sel_format(&a->pcr_sel, sel, sizeof(sel));
	for (size_t i = 0; i < a->pcr_sel.count; i++)
		selected += (unsigned)__builtin_popcount(a->pcr_sel.banks[i].mask);
	if (selected == 0) {
		cvm_report_add(rep, "pcr_selection", false, "the quote selects no PCR");
		return CVM_E_FORMAT;
	}
	for (size_t i = 0; i < a->pcr_sel.count; i++) {
		if (cvm_digest_len(a->pcr_sel.banks[i].alg) == 0) {
			cvm_report_add(rep, "pcr_selection", false,
			               "quoted bank 0x%04x is not a hash cvmkit knows",
			               a->pcr_sel.banks[i].alg);
			return CVM_E_UNSUPPORTED;
		}
		if ((a->pcr_sel.banks[i].mask >> CVM_TPM_PCR_COUNT) != 0) {
			cvm_report_add(rep, "pcr_selection", false, "the quote selects PCRs above 23 (%s)",
			               sel);
			return CVM_E_UNSUPPORTED;
		}
	}
	if (a->pcr_digest_len != cvm_digest_len(q->sig.hash)) {
		cvm_report_add(rep, "pcr_selection", false,
		               "the PCR digest is %zu bytes, a %s digest (the signature's hash) is %zu",
		               a->pcr_digest_len, hash_name(q->sig.hash), cvm_digest_len(q->sig.hash));
		return CVM_E_FORMAT;
	}
	cvm_report_add(rep, "pcr_selection", true, "quoted PCRs %s, digest by %s", sel,
	               hash_name(q->sig.hash));
	return CVM_OK;
}

int cvm_tpm_quote_authenticate(const struct cvm_tpm_ak *ak, const uint8_t *attest, size_t attest_len,
                               const uint8_t *sig, size_t sig_len, const uint8_t *nonce, size_t nonce_len,
                               struct cvm_report *rep, struct cvm_tpm_quote *out)
{
	struct cvm_tpm_quote q;
	int r, ret = CVM_OK;

	memset(&q, 0, sizeof(q));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (ak == NULL || attest == NULL || sig == NULL || nonce == NULL || nonce_len == 0 ||
	    nonce_len > CVM_TPM_DATA_MAX) {
		cvm_report_add(rep, "input", false,
		               "an AK, the quote message, the signature and a nonce of 1 to %d "
		               "bytes are needed",
		               CVM_TPM_DATA_MAX);
		return CVM_E_INVAL;
	}
	r = check_attest(attest, attest_len, &q.attest, rep);
	if (r != CVM_OK) {
		ret = r;
		goto out;
	}
	r = cvm_tpm_sig_parse(sig, sig_len, &q.sig);
	if (r != CVM_OK) {
		cvm_report_add(rep, "signature", false,
		               "the signature is not a TPMT_SIGNATURE cvmkit verifies (%zu bytes): %s",
		               sig_len,
		               r == CVM_E_UNSUPPORTED ? "a scheme other than RSASSA, RSAPSS and ECDSA"
		                                      : cvm_strerror(r));
		ret = r;
		goto out;
	}
	ret = first(ret, check_ak(ak, rep));
	ret = first(ret, check_sig(ak, attest, attest_len, &q.sig, rep));
	ret = first(ret, check_nonce(&q.attest, nonce, nonce_len, rep));
	ret = first(ret, check_selection(&q, rep));
	cvm_report_add(
	    rep, "clock", true,
	    "resetCount %u, restartCount %u, clock %llu ms, safe %s, firmware 0x%016llx (not checked)",
	    q.attest.reset_count, q.attest.restart_count, (unsigned long long)q.attest.clock,
	    q.attest.safe ? "yes" : "no", (unsigned long long)q.attest.firmware_version);
out:
	if (out != NULL)
		*out = q;
	return ret;
}

/* pcr_digest computes the digest of `pcrs` over the quote's selection. */
static int pcr_digest(const struct cvm_tpm_quote *q, const struct cvm_tpm_pcrs *pcrs, uint8_t *out,
                      size_t *out_len, char *missing, size_t missing_len)
{
	return cvm_tpm_pcrs_digest(&q->attest.pcr_sel, pcrs, q->sig.hash, out, CVM_TPM_DIGEST_MAX, out_len,
	                           missing, missing_len);
}

bool cvm_tpm_quote_pcrs_match(const struct cvm_tpm_quote *q, const struct cvm_tpm_pcrs *pcrs)
{
	uint8_t d[CVM_TPM_DIGEST_MAX];
	size_t dlen = 0;

	if (pcr_digest(q, pcrs, d, &dlen, NULL, 0) != CVM_OK)
		return false;
	return dlen == q->attest.pcr_digest_len && memcmp(d, q->attest.pcr_digest, dlen) == 0;
}

int cvm_tpm_quote_check_pcrs(const struct cvm_tpm_quote *q, const struct cvm_tpm_pcrs *pcrs,
                             struct cvm_report *rep)
{
	uint8_t d[CVM_TPM_DIGEST_MAX];
	char missing[32], sel[256], got[2 * 16 + 3], want[2 * 16 + 3];
	size_t dlen = 0;
	int r;

	cvm_tpm_pcr_sel_format(&q->attest.pcr_sel, sel, sizeof(sel));
	r = pcr_digest(q, pcrs, d, &dlen, missing, sizeof(missing));
	if (r == CVM_E_INVAL) {
		cvm_report_add(rep, "pcr_digest", false, "no value was given for quoted PCR %s", missing);
		return r;
	}
	if (r != CVM_OK) {
		cvm_report_add(rep, "pcr_digest", false, "cannot compute the digest of %s: %s", sel,
		               cvm_strerror(r));
		return r;
	}
	hex_short(d, dlen, got);
	hex_short(q->attest.pcr_digest, q->attest.pcr_digest_len, want);
	if (dlen != q->attest.pcr_digest_len || memcmp(d, q->attest.pcr_digest, dlen) != 0) {
		cvm_report_add(
		    rep, "pcr_digest", false,
		    "the given values of %s hash to %s, the quote says %s: the PCRs differ from the quoted "
		    "ones",
		    sel, got, want);
		return CVM_E_MISMATCH;
	}
	cvm_report_add(rep, "pcr_digest", true, "the given values of %s hash to the quoted digest %s", sel,
	               want);
	return CVM_OK;
}

int cvm_tpm_quote_authenticate_pcrs(const struct cvm_tpm_ak *ak, const uint8_t *attest, size_t attest_len,
                                    const uint8_t *sig, size_t sig_len, const uint8_t *nonce,
                                    size_t nonce_len, const struct cvm_tpm_pcrs *pcrs, struct cvm_report *rep,
                                    struct cvm_tpm_quote *out)
{
	struct cvm_tpm_quote q;
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (pcrs == NULL) {
		cvm_report_add(rep, "input", false, "PCR values are needed to verify a quote");
		return CVM_E_INVAL;
	}
	r = cvm_tpm_quote_authenticate(ak, attest, attest_len, sig, sig_len, nonce, nonce_len, rep, &q);
	if (r == CVM_OK)
		r = cvm_tpm_quote_check_pcrs(&q, pcrs, rep);
	if (out != NULL)
		*out = q;
	return r;
}
