/* TPMS_ATTEST, TPMT_SIGNATURE and TPMT_PUBLIC through tss2-mu.
 *
 * Untrusted bytes enter through struct cvm_rd: the input is capped before
 * tss2-mu sees it, the offset tss2-mu reports is consumed through the
 * reader (so it can never point past the input), and the input must then be
 * empty. The one size prefix read here by hand is TPM2B_PUBLIC's: tss2-mu
 * 3.2's Tss2_MU_TPM2B_PUBLIC_Unmarshal ignores the result of unmarshalling
 * the TPMT_PUBLIC inside it and does not bound that TPMT_PUBLIC by the size,
 * so cvmkit reads the size itself and hands tss2-mu exactly that many
 * bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/tpm.h>

#include "tpm_int.h"

struct cvm_tpm_ak {
	bool has_public;
	struct cvm_tpm_public pub;
	struct cvm_tpmsig_key *key;
};

/* mu_err maps a tss2-mu failure: the input ran out, or it was malformed. */
static int mu_err(TSS2_RC rc)
{
	return rc == TSS2_MU_RC_INSUFFICIENT_BUFFER ? CVM_E_TRUNCATED : CVM_E_FORMAT;
}

/* mu_done consumes the `off` bytes tss2-mu read and requires nothing after. */
static int mu_done(struct cvm_rd *rd, size_t off)
{
	if (!cvm_rd_skip(rd, off))
		return CVM_E_INTERNAL; /* tss2-mu claims to have read past the input */
	return cvm_rd_empty(rd) ? CVM_OK : CVM_E_FORMAT;
}

int cvm_tpm_attest_parse(const uint8_t *buf, size_t len, struct cvm_tpm_attest *out)
{
	TPMS_ATTEST a;
	struct cvm_rd rd;
	size_t off = 0;
	TSS2_RC rc;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > CVM_TPM_ATTEST_MAX)
		return CVM_E_TOO_LARGE;
	if (buf == NULL || len == 0)
		return CVM_E_TRUNCATED;
	cvm_rd_init(&rd, buf, len);
	memset(&a, 0, sizeof(a));
	rc = Tss2_MU_TPMS_ATTEST_Unmarshal(rd.p, rd.len, &off, &a);
	if (rc != TSS2_RC_SUCCESS)
		return mu_err(rc);
	r = mu_done(&rd, off);
	if (r != CVM_OK)
		return r;
	out->magic = a.magic;
	out->type = a.type;
	out->signer_len = a.qualifiedSigner.size;
	memcpy(out->signer, a.qualifiedSigner.name, out->signer_len);
	out->extra_len = a.extraData.size;
	memcpy(out->extra, a.extraData.buffer, out->extra_len);
	out->clock = a.clockInfo.clock;
	out->reset_count = a.clockInfo.resetCount;
	out->restart_count = a.clockInfo.restartCount;
	out->safe = a.clockInfo.safe != 0;
	out->firmware_version = a.firmwareVersion;
	if (a.type == TPM2_ST_ATTEST_QUOTE) {
		cvm_tpm_sel_from_tss(&a.attested.quote.pcrSelect, &out->pcr_sel);
		out->pcr_digest_len = a.attested.quote.pcrDigest.size;
		memcpy(out->pcr_digest, a.attested.quote.pcrDigest.buffer, out->pcr_digest_len);
	}
	return CVM_OK;
}

int cvm_tpm_sig_parse(const uint8_t *buf, size_t len, struct cvm_tpm_sig *out)
{
	TPMT_SIGNATURE s;
	struct cvm_rd rd;
	size_t off = 0;
	TSS2_RC rc;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > CVM_TPM_SIG_MAX)
		return CVM_E_TOO_LARGE;
	if (buf == NULL || len == 0)
		return CVM_E_TRUNCATED;
	cvm_rd_init(&rd, buf, len);
	memset(&s, 0, sizeof(s));
	rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(rd.p, rd.len, &off, &s);
	if (rc != TSS2_RC_SUCCESS)
		return mu_err(rc);
	r = mu_done(&rd, off);
	if (r != CVM_OK)
		return r;
	out->alg = s.sigAlg;
	switch (s.sigAlg) {
	case TPM2_ALG_RSASSA:
	case TPM2_ALG_RSAPSS:
		/* rsassa and rsapss share TPMS_SIGNATURE_RSA. */
		out->hash = s.signature.rsassa.hash;
		out->sig_len = s.signature.rsassa.sig.size;
		memcpy(out->sig, s.signature.rsassa.sig.buffer, out->sig_len);
		return CVM_OK;
	case TPM2_ALG_ECDSA:
		out->hash = s.signature.ecdsa.hash;
		out->r_len = s.signature.ecdsa.signatureR.size;
		memcpy(out->r, s.signature.ecdsa.signatureR.buffer, out->r_len);
		out->s_len = s.signature.ecdsa.signatureS.size;
		memcpy(out->s, s.signature.ecdsa.signatureS.buffer, out->s_len);
		return CVM_OK;
	default:
		return CVM_E_UNSUPPORTED;
	}
}

int cvm_tpm_public_fill(const TPMT_PUBLIC *pub, const uint8_t *raw, size_t raw_len,
                        struct cvm_tpm_public *out)
{
	size_t hlen = cvm_digest_len(pub->nameAlg);
	int r;

	memset(out, 0, sizeof(*out));
	out->type = pub->type;
	out->name_alg = pub->nameAlg;
	out->attributes = pub->objectAttributes;
	switch (pub->type) {
	case TPM2_ALG_RSA:
		out->scheme = pub->parameters.rsaDetail.scheme.scheme;
		if (out->scheme != TPM2_ALG_NULL)
			out->scheme_hash = pub->parameters.rsaDetail.scheme.details.anySig.hashAlg;
		out->key_bits = pub->parameters.rsaDetail.keyBits;
		out->exponent = pub->parameters.rsaDetail.exponent;
		break;
	case TPM2_ALG_ECC:
		out->scheme = pub->parameters.eccDetail.scheme.scheme;
		if (out->scheme != TPM2_ALG_NULL)
			out->scheme_hash = pub->parameters.eccDetail.scheme.details.anySig.hashAlg;
		out->curve = pub->parameters.eccDetail.curveID;
		break;
	default:
		return CVM_E_UNSUPPORTED;
	}
	/* Name = nameAlg (big-endian) || H_nameAlg(marshaled TPMT_PUBLIC). */
	if (hlen == 0 || hlen + 2 > sizeof(out->name))
		return CVM_OK;
	out->name[0] = (uint8_t)(pub->nameAlg >> 8);
	out->name[1] = (uint8_t)(pub->nameAlg & 0xff);
	r = cvm_digest(pub->nameAlg, raw, raw_len, out->name + 2, sizeof(out->name) - 2);
	if (r != CVM_OK)
		return r;
	out->name_len = hlen + 2;
	return CVM_OK;
}

/* public_key builds the signing key a TPMT_PUBLIC describes. */
static int public_key(const TPMT_PUBLIC *pub, struct cvm_tpmsig_key **out)
{
	const TPM2B_PUBLIC_KEY_RSA *n;
	const TPMS_ECC_POINT *pt;
	int r;

	*out = NULL;
	switch (pub->type) {
	case TPM2_ALG_RSA:
		n = &pub->unique.rsa;
		if (pub->parameters.rsaDetail.keyBits < CVM_TPMSIG_RSA_BITS_MIN ||
		    pub->parameters.rsaDetail.keyBits > CVM_TPMSIG_RSA_BITS_MAX)
			return CVM_E_UNSUPPORTED;
		/* The modulus is exactly keyBits long. */
		if ((size_t)n->size * 8 != pub->parameters.rsaDetail.keyBits)
			return CVM_E_FORMAT;
		r = cvm_tpmsig_key_rsa(n->buffer, n->size, pub->parameters.rsaDetail.exponent, out);
		if (r != CVM_OK)
			return r;
		if (cvm_tpmsig_key_bits(*out) != pub->parameters.rsaDetail.keyBits) {
			cvm_tpmsig_key_free(*out);
			*out = NULL;
			return CVM_E_FORMAT;
		}
		return CVM_OK;
	case TPM2_ALG_ECC:
		pt = &pub->unique.ecc;
		return cvm_tpmsig_key_ecc(pub->parameters.eccDetail.curveID, pt->x.buffer, pt->x.size,
		                          pt->y.buffer, pt->y.size, out);
	default:
		return CVM_E_UNSUPPORTED;
	}
}

/* parse_tpmt unmarshals a TPMT_PUBLIC that fills `rd` exactly. */
static int parse_tpmt(struct cvm_rd *rd, TPMT_PUBLIC *pub)
{
	size_t off = 0;
	TSS2_RC rc;

	memset(pub, 0, sizeof(*pub));
	if (cvm_rd_empty(rd))
		return CVM_E_TRUNCATED;
	rc = Tss2_MU_TPMT_PUBLIC_Unmarshal(rd->p, rd->len, &off, pub);
	if (rc != TSS2_RC_SUCCESS)
		return mu_err(rc);
	return mu_done(rd, off);
}

/* looks_tpm2b is true when the first two bytes (big-endian) count exactly
 * the rest: a TPM2B_PUBLIC. A bare TPMT_PUBLIC starts with its type (0x0001
 * or 0x0023), which would count 1 or 35 bytes, too few for any key. */
static bool looks_tpm2b(const uint8_t *buf, size_t len)
{
	struct cvm_rd rd;
	uint16_t size;

	cvm_rd_init(&rd, buf, len);
	return cvm_rd_u16be(&rd, &size) && size == rd.len;
}

int cvm_tpm_ak_parse(const uint8_t *buf, size_t len, struct cvm_tpm_ak **out)
{
	struct cvm_tpm_ak *ak = NULL;
	TPMT_PUBLIC pub;
	struct cvm_rd rd, body;
	int r;

	*out = NULL;
	if (buf == NULL || len == 0)
		return CVM_E_TRUNCATED;
	if (len > CVM_TPM_AK_FILE_MAX)
		return CVM_E_TOO_LARGE;
	ak = calloc(1, sizeof(*ak));
	if (ak == NULL)
		return CVM_E_NOMEM;
	/* A SubjectPublicKeyInfo starts with a SEQUENCE tag or a PEM line. */
	if (buf[0] == CVM_ASN1_SEQUENCE || buf[0] == '-') {
		r = cvm_tpmsig_key_spki(buf, len, &ak->key);
		if (r != CVM_OK)
			goto out;
		*out = ak;
		ak = NULL; /* transferred */
		goto out;
	}
	if (len > CVM_TPM_PUBLIC_MAX) {
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	cvm_rd_init(&rd, buf, len);
	if (looks_tpm2b(buf, len)) {
		if (!cvm_rd_sub_u16be(&rd, &body)) {
			r = CVM_E_INTERNAL;
			goto out;
		}
	} else {
		body = rd;
	}
	{
		struct cvm_rd raw = body;

		r = parse_tpmt(&body, &pub);
		if (r != CVM_OK)
			goto out;
		r = cvm_tpm_public_fill(&pub, raw.p, raw.len, &ak->pub);
		if (r != CVM_OK)
			goto out;
	}
	ak->has_public = true;
	r = public_key(&pub, &ak->key);
	if (r != CVM_OK)
		goto out;
	*out = ak;
	ak = NULL; /* transferred */
out:
	cvm_tpm_ak_free(ak);
	return r;
}

void cvm_tpm_ak_free(struct cvm_tpm_ak *ak)
{
	if (ak == NULL)
		return;
	cvm_tpmsig_key_free(ak->key);
	free(ak);
}

const struct cvm_tpm_public *cvm_tpm_ak_public(const struct cvm_tpm_ak *ak)
{
	return ak->has_public ? &ak->pub : NULL;
}

void cvm_tpm_ak_describe(const struct cvm_tpm_ak *ak, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (cvm_tpmsig_key_type(ak->key) == CVM_TPMSIG_KEY_RSA)
		(void)snprintf(buf, len, "RSA %u", cvm_tpmsig_key_bits(ak->key));
	else
		(void)snprintf(buf, len, "ECC NIST P-%u", cvm_tpmsig_key_bits(ak->key));
}

int cvm_tpm_ak_pem(const struct cvm_tpm_ak *ak, char **out)
{
	return cvm_tpmsig_key_pem(ak->key, out);
}

const struct cvm_tpmsig_key *cvm_tpm_ak_key(const struct cvm_tpm_ak *ak)
{
	return ak->key;
}
