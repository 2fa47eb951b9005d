/* A TPM through tss2-esys over any TCTI tss2-tctildr loads: PCR reads, a
 * persistent attestation key, quotes. Everything the TPM returns that
 * cvmkit later relies on (the AK's public area, the quote) is checked by the
 * same parsers and verifier as evidence from anywhere else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <cvmkit/crypto.h>
#include <cvmkit/log.h>
#include <cvmkit/tpm.h>

#include "tpm_int.h"

/* Attempts at a consistent PCR read (the update counter did not move). */
#define PCR_READ_ATTEMPTS 4
/* TPM2_PCR_Read returns at most 8 values a call: 5 banks of 24 need 15. */
#define PCR_READ_CALLS_MAX 32

static int tpm_fail(struct cvm_tpm *t, const char *what, TSS2_RC rc)
{
	(void)snprintf(t->err, sizeof(t->err), "%s: %s (0x%x)", what, Tss2_RC_Decode(rc), (unsigned)rc);
	cvm_debug("%s", t->err);
	return CVM_E_TPM;
}

int cvm_tpm_open(const char *tcti, struct cvm_tpm **out, char *err, size_t err_len)
{
	struct cvm_tpm *t = NULL;
	TSS2_RC rc;
	int r = CVM_E_TPM;

	*out = NULL;
	if (err != NULL && err_len > 0)
		err[0] = '\0';
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return CVM_E_NOMEM;
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		if (err != NULL && err_len > 0)
			(void)snprintf(err, err_len, "cannot start the TCTI '%s': %s (0x%x)",
			               tcti != NULL ? tcti : "(default)", Tss2_RC_Decode(rc), (unsigned)rc);
		goto out;
	}
	rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		if (err != NULL && err_len > 0)
			(void)snprintf(err, err_len, "cannot talk to the TPM through '%s': %s (0x%x)",
			               tcti != NULL ? tcti : "(default)", Tss2_RC_Decode(rc), (unsigned)rc);
		goto out;
	}
	*out = t;
	t = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_tpm_close(t);
	return r;
}

void cvm_tpm_close(struct cvm_tpm *t)
{
	if (t == NULL)
		return;
	if (t->esys != NULL)
		Esys_Finalize(&t->esys);
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

const char *cvm_tpm_err(const struct cvm_tpm *t)
{
	return t->err;
}

/* ---- PCR read ---------------------------------------------------------- */

static bool sel_empty(const struct cvm_tpm_pcr_sel *s)
{
	for (size_t i = 0; i < s->count; i++) {
		if (s->banks[i].mask != 0)
			return false;
	}
	return true;
}

/* take_read stores what one TPM2_PCR_Read returned and clears it from
 * `left`. Returns the number of values taken, or a negative error. */
static int take_read(const TPML_PCR_SELECTION *got, const TPML_DIGEST *vals, struct cvm_tpm_pcr_sel *left,
                     struct cvm_tpm_pcrs *out)
{
	struct cvm_tpm_pcr_sel g;
	uint32_t k = 0;
	int taken = 0, r;

	cvm_tpm_sel_from_tss(got, &g);
	for (size_t i = 0; i < g.count; i++) {
		size_t dlen = cvm_digest_len(g.banks[i].alg);

		for (unsigned pcr = 0; pcr < 32; pcr++) {
			if ((g.banks[i].mask & (1u << pcr)) == 0)
				continue;
			if (k >= vals->count || pcr >= CVM_TPM_PCR_COUNT || vals->digests[k].size != dlen)
				return CVM_E_FORMAT;
			r = cvm_tpm_pcrs_set(out, g.banks[i].alg, pcr, vals->digests[k].buffer, dlen);
			if (r != CVM_OK)
				return r;
			for (size_t j = 0; j < left->count; j++) {
				if (left->banks[j].alg == g.banks[i].alg)
					left->banks[j].mask &= ~(1u << pcr);
			}
			k++;
			taken++;
		}
	}
	return k == vals->count ? taken : CVM_E_FORMAT;
}

static int pcr_read_once(struct cvm_tpm *t, const struct cvm_tpm_pcr_sel *sel, struct cvm_tpm_pcrs *out,
                         uint32_t *counter, bool *moved)
{
	struct cvm_tpm_pcr_sel left = *sel;
	TPML_PCR_SELECTION want;
	bool first = true;
	int r = CVM_OK;

	*moved = false;
	cvm_tpm_pcrs_init(out);
	for (int calls = 0; !sel_empty(&left); calls++) {
		TPML_PCR_SELECTION *got = NULL;
		TPML_DIGEST *vals = NULL;
		UINT32 ctr = 0;
		TSS2_RC rc;
		int n;

		if (calls == PCR_READ_CALLS_MAX)
			return CVM_E_INTERNAL;
		r = cvm_tpm_sel_to_tss(&left, &want);
		if (r != CVM_OK)
			return r;
		rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &want, &ctr, &got,
		                   &vals);
		if (rc != TSS2_RC_SUCCESS)
			return tpm_fail(t, "TPM2_PCR_Read", rc);
		n = take_read(got, vals, &left, out);
		Esys_Free(got);
		Esys_Free(vals);
		if (n < 0) {
			(void)snprintf(t->err, sizeof(t->err),
			               "TPM2_PCR_Read: the TPM's answer does not match its selection");
			return CVM_E_TPM;
		}
		if (n == 0) {
			char rest[128];

			/* The TPM returned nothing more: a bank it has not allocated. */
			cvm_tpm_pcr_sel_format(&left, rest, sizeof(rest));
			(void)snprintf(t->err, sizeof(t->err),
			               "the TPM has no values for %s (is the bank allocated?)", rest);
			return CVM_E_UNSUPPORTED;
		}
		if (!first && ctr != *counter) {
			*moved = true;
			return CVM_OK;
		}
		*counter = ctr;
		first = false;
	}
	return CVM_OK;
}

int cvm_tpm_pcr_read(struct cvm_tpm *t, const struct cvm_tpm_pcr_sel *sel, struct cvm_tpm_pcrs *out,
                     uint32_t *update_counter)
{
	uint32_t ctr = 0;
	bool moved = false;
	int r;

	cvm_tpm_pcrs_init(out);
	if (update_counter != NULL)
		*update_counter = 0;
	t->err[0] = '\0';
	if (sel->count == 0 || sel->count > CVM_TPM_SEL_MAX)
		return CVM_E_INVAL;
	for (size_t i = 0; i < sel->count; i++) {
		if (cvm_digest_len(sel->banks[i].alg) == 0 || (sel->banks[i].mask >> CVM_TPM_PCR_COUNT) != 0)
			return CVM_E_INVAL;
	}
	for (int attempt = 0; attempt < PCR_READ_ATTEMPTS; attempt++) {
		r = pcr_read_once(t, sel, out, &ctr, &moved);
		if (r != CVM_OK) {
			cvm_tpm_pcrs_init(out);
			return r;
		}
		if (!moved) {
			if (update_counter != NULL)
				*update_counter = ctr;
			return CVM_OK;
		}
	}
	cvm_tpm_pcrs_init(out);
	(void)snprintf(t->err, sizeof(t->err), "the PCRs kept changing while they were read (%d attempts)",
	               PCR_READ_ATTEMPTS);
	return CVM_E_TPM;
}

/* ---- keys -------------------------------------------------------------- */

#define AK_ATTRS                                                                            \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
	 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

static void ak_template(enum cvm_tpm_ak_type type, TPM2B_PUBLIC *t)
{
	TPMT_PUBLIC *p = &t->publicArea;

	memset(t, 0, sizeof(*t));
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = AK_ATTRS;
	switch (type) {
	case CVM_TPM_AK_ECC_P256:
	case CVM_TPM_AK_ECC_P384:
		p->type = TPM2_ALG_ECC;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
		p->parameters.eccDetail.scheme.details.ecdsa.hashAlg =
		    type == CVM_TPM_AK_ECC_P256 ? TPM2_ALG_SHA256 : TPM2_ALG_SHA384;
		p->parameters.eccDetail.curveID =
		    type == CVM_TPM_AK_ECC_P256 ? TPM2_ECC_NIST_P256 : TPM2_ECC_NIST_P384;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		break;
	case CVM_TPM_AK_RSA_RSASSA:
	case CVM_TPM_AK_RSA_RSAPSS:
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme =
		    type == CVM_TPM_AK_RSA_RSASSA ? TPM2_ALG_RSASSA : TPM2_ALG_RSAPSS;
		p->parameters.rsaDetail.scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
		p->parameters.rsaDetail.keyBits = 2048;
		p->parameters.rsaDetail.exponent = 0;
		break;
	}
}

/* The EK policy of the TCG EK Credential Profile: PolicySecret(TPM_RH_ENDORSEMENT). */
static const uint8_t ek_policy[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                                      0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                                      0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

void cvm_tpm_parent_template(enum cvm_tpm_parent parent, TPM2B_PUBLIC *t)
{
	TPMT_PUBLIC *p = &t->publicArea;

	memset(t, 0, sizeof(*t));
	p->type = TPM2_ALG_ECC;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	if (parent == CVM_TPM_PARENT_EK) {
		p->objectAttributes |= TPMA_OBJECT_ADMINWITHPOLICY;
		p->authPolicy.size = sizeof(ek_policy);
		memcpy(p->authPolicy.buffer, ek_policy, sizeof(ek_policy));
	} else {
		p->objectAttributes |= TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA;
	}
	p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->parameters.eccDetail.symmetric.keyBits.aes = 128;
	p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	p->unique.ecc.x.size = 32;
	p->unique.ecc.y.size = 32;
}

/* ek_session starts a policy session satisfying the EK's policy. */
static int ek_session(struct cvm_tpm *t, ESYS_TR *out)
{
	TPMT_SYM_DEF sym;
	ESYS_TR s = ESYS_TR_NONE;
	TSS2_RC rc;

	*out = ESYS_TR_NONE;
	memset(&sym, 0, sizeof(sym));
	sym.algorithm = TPM2_ALG_NULL;
	rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                           ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &s);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(t, "TPM2_StartAuthSession", rc);
	rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, s, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                       ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		(void)Esys_FlushContext(t->esys, s);
		return tpm_fail(t, "TPM2_PolicySecret(endorsement)", rc);
	}
	*out = s;
	return CVM_OK;
}

static void flush(struct cvm_tpm *t, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, *h);
	*h = ESYS_TR_NONE;
}

/* parent_auth is the session that authorizes use of the parent. */
static int parent_auth(struct cvm_tpm *t, enum cvm_tpm_parent parent, ESYS_TR *session, ESYS_TR *auth)
{
	int r;

	*session = ESYS_TR_NONE;
	*auth = ESYS_TR_PASSWORD;
	if (parent != CVM_TPM_PARENT_EK)
		return CVM_OK;
	r = ek_session(t, session);
	if (r != CVM_OK)
		return r;
	*auth = *session;
	return CVM_OK;
}

/* marshal_public writes a TPM2B_PUBLIC into a new buffer. */
static int marshal_public(const TPM2B_PUBLIC *pub, uint8_t **out, size_t *out_len)
{
	uint8_t buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;

	*out = NULL;
	*out_len = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS || off == 0)
		return CVM_E_INTERNAL;
	*out = malloc(off);
	if (*out == NULL)
		return CVM_E_NOMEM;
	memcpy(*out, buf, off);
	*out_len = off;
	return CVM_OK;
}

/* public_matches is true when `pub` is an AK of `type`. */
static bool public_matches(const TPMT_PUBLIC *pub, enum cvm_tpm_ak_type type)
{
	TPM2B_PUBLIC want;
	const TPMT_PUBLIC *w = &want.publicArea;

	ak_template(type, &want);
	if (pub->type != w->type)
		return false;
	if (pub->type == TPM2_ALG_ECC)
		return pub->parameters.eccDetail.curveID == w->parameters.eccDetail.curveID &&
		       pub->parameters.eccDetail.scheme.scheme == w->parameters.eccDetail.scheme.scheme &&
		       pub->parameters.eccDetail.scheme.details.anySig.hashAlg ==
		           w->parameters.eccDetail.scheme.details.anySig.hashAlg;
	return pub->parameters.rsaDetail.keyBits == w->parameters.rsaDetail.keyBits &&
	       pub->parameters.rsaDetail.scheme.scheme == w->parameters.rsaDetail.scheme.scheme &&
	       pub->parameters.rsaDetail.scheme.details.anySig.hashAlg ==
	           w->parameters.rsaDetail.scheme.details.anySig.hashAlg;
}

/* persistent_exists asks the TPM whether `handle` holds an object. */
static int persistent_exists(struct cvm_tpm *t, uint32_t handle, bool *exists)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = TPM2_NO;
	TSS2_RC rc;

	*exists = false;
	rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, handle,
	                        1, &more, &cap);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(t, "TPM2_GetCapability(handles)", rc);
	*exists = cap->data.handles.count > 0 && cap->data.handles.handle[0] == handle;
	Esys_Free(cap);
	return CVM_OK;
}

static int existing_ak(struct cvm_tpm *t, const struct cvm_tpm_ak_opts *o, uint8_t **pub, size_t *pub_len)
{
	TPM2B_PUBLIC *out_pub = NULL;
	ESYS_TR obj = ESYS_TR_NONE;
	TPMA_OBJECT attrs;
	TSS2_RC rc;
	int r;

	rc = Esys_TR_FromTPMPublic(t->esys, o->handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &obj);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(t, "TPM2_ReadPublic(AK)", rc);
	rc = Esys_ReadPublic(t->esys, obj, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &out_pub, NULL, NULL);
	(void)Esys_TR_Close(t->esys, &obj);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(t, "TPM2_ReadPublic(AK)", rc);
	attrs = out_pub->publicArea.objectAttributes;
	if ((attrs & AK_ATTRS) != AK_ATTRS || (attrs & TPMA_OBJECT_DECRYPT) != 0) {
		(void)snprintf(t->err, sizeof(t->err),
		               "the key at 0x%08x (attributes 0x%08x) is not a restricted signing key",
		               o->handle, (unsigned)attrs);
		r = CVM_E_POLICY;
		goto out;
	}
	if (o->type_set && !public_matches(&out_pub->publicArea, o->type)) {
		(void)snprintf(t->err, sizeof(t->err),
		               "the AK at 0x%08x is of another type than the one asked for", o->handle);
		r = CVM_E_MISMATCH;
		goto out;
	}
	r = marshal_public(out_pub, pub, pub_len);
out:
	Esys_Free(out_pub);
	return r;
}

static int create_ak(struct cvm_tpm *t, const struct cvm_tpm_ak_opts *o, uint8_t **pub, size_t *pub_len)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PUBLIC tmpl, ptmpl;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION none;
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *apub = NULL;
	ESYS_TR parent = ESYS_TR_NONE, ak = ESYS_TR_NONE, persisted = ESYS_TR_NONE;
	ESYS_TR session = ESYS_TR_NONE, auth = ESYS_TR_PASSWORD;
	TSS2_RC rc;
	int r;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&none, 0, sizeof(none));
	ak_template(o->type, &tmpl);
	cvm_tpm_parent_template(o->parent, &ptmpl);
	rc = Esys_CreatePrimary(t->esys,
	                        o->parent == CVM_TPM_PARENT_EK ? ESYS_TR_RH_ENDORSEMENT : ESYS_TR_RH_OWNER,
	                        ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &ptmpl, &outside, &none,
	                        &parent, NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(
		    t, o->parent == CVM_TPM_PARENT_EK ? "TPM2_CreatePrimary(EK)" : "TPM2_CreatePrimary(SRK)",
		    rc);
		goto out;
	}
	r = parent_auth(t, o->parent, &session, &auth);
	if (r != CVM_OK)
		goto out;
	rc = Esys_Create(t->esys, parent, auth, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &none,
	                 &priv, &apub, NULL, NULL, NULL);
	flush(t, &session);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "TPM2_Create(AK)", rc);
		goto out;
	}
	r = parent_auth(t, o->parent, &session, &auth);
	if (r != CVM_OK)
		goto out;
	rc = Esys_Load(t->esys, parent, auth, ESYS_TR_NONE, ESYS_TR_NONE, priv, apub, &ak);
	flush(t, &session);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "TPM2_Load(AK)", rc);
		goto out;
	}
	rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	                       o->handle, &persisted);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "TPM2_EvictControl(AK)", rc);
		goto out;
	}
	(void)Esys_TR_Close(t->esys, &persisted);
	r = marshal_public(apub, pub, pub_len);
out:
	flush(t, &session);
	flush(t, &ak);
	flush(t, &parent);
	Esys_Free(priv);
	Esys_Free(apub);
	return r;
}

int cvm_tpm_ak_ensure(struct cvm_tpm *t, const struct cvm_tpm_ak_opts *o, uint8_t **pub, size_t *pub_len,
                      bool *created)
{
	bool exists = false;
	int r;

	*pub = NULL;
	*pub_len = 0;
	*created = false;
	t->err[0] = '\0';
	if (o->handle < 0x81000000u || o->handle > 0x817fffffu) {
		(void)snprintf(t->err, sizeof(t->err),
		               "0x%08x is not an owner persistent handle (0x81000000-0x817fffff)", o->handle);
		return CVM_E_INVAL;
	}
	if (o->type > CVM_TPM_AK_RSA_RSAPSS || o->parent > CVM_TPM_PARENT_SRK)
		return CVM_E_INVAL;
	r = persistent_exists(t, o->handle, &exists);
	if (r != CVM_OK)
		return r;
	if (exists)
		return existing_ak(t, o, pub, pub_len);
	r = create_ak(t, o, pub, pub_len);
	if (r == CVM_OK)
		*created = true;
	return r;
}

/* ---- quote ------------------------------------------------------------- */

int cvm_tpm_quote_create(struct cvm_tpm *t, uint32_t ak_handle, const struct cvm_tpm_pcr_sel *sel,
                         const uint8_t *nonce, size_t nonce_len, uint8_t **attest, size_t *attest_len,
                         uint8_t **sig, size_t *sig_len)
{
	TPM2B_DATA qd;
	TPMT_SIG_SCHEME scheme;
	TPML_PCR_SELECTION tsel;
	TPM2B_ATTEST *quoted = NULL;
	TPMT_SIGNATURE *signature = NULL;
	ESYS_TR ak = ESYS_TR_NONE;
	uint8_t sbuf[sizeof(TPMT_SIGNATURE)];
	size_t off = 0;
	TSS2_RC rc;
	int r;

	*attest = NULL;
	*attest_len = 0;
	*sig = NULL;
	*sig_len = 0;
	t->err[0] = '\0';
	memset(&qd, 0, sizeof(qd));
	memset(&scheme, 0, sizeof(scheme));
	if (nonce == NULL || nonce_len == 0 || nonce_len > sizeof(qd.buffer))
		return CVM_E_INVAL;
	r = cvm_tpm_sel_to_tss(sel, &tsel);
	if (r != CVM_OK)
		return r;
	qd.size = (UINT16)nonce_len;
	memcpy(qd.buffer, nonce, nonce_len);
	scheme.scheme = TPM2_ALG_NULL; /* the AK's own scheme */
	rc = Esys_TR_FromTPMPublic(t->esys, ak_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ak);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(t, "TPM2_ReadPublic(AK)", rc);
	rc = Esys_Quote(t->esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd, &scheme, &tsel,
	                &quoted, &signature);
	(void)Esys_TR_Close(t->esys, &ak);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "TPM2_Quote", rc);
		goto out;
	}
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(signature, sbuf, sizeof(sbuf), &off) != TSS2_RC_SUCCESS ||
	    off == 0 || quoted->size == 0) {
		r = CVM_E_INTERNAL;
		goto out;
	}
	*attest = malloc(quoted->size);
	*sig = malloc(off);
	if (*attest == NULL || *sig == NULL) {
		free(*attest);
		free(*sig);
		*attest = NULL;
		*sig = NULL;
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(*attest, quoted->attestationData, quoted->size);
	*attest_len = quoted->size;
	memcpy(*sig, sbuf, off);
	*sig_len = off;
	r = CVM_OK;
out:
	Esys_Free(quoted);
	Esys_Free(signature);
	return r;
}
