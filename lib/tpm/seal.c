/* Sealing a small secret to a TPM (include/cvmkit/tpm.h): a keyed-hash
 * sealed data object under the owner hierarchy's SRK, made again from its
 * template every time, and cvmkit's blob format around its public and
 * private parts.
 *
 * The blob comes back from disk: it enters through struct cvm_rd, is capped
 * before tss2-mu sees a byte, and the object it describes must be exactly
 * what cvm_tpm_seal makes (a blob of another shape is refused before the TPM
 * is asked). Whether the private part is intact, and was made by this TPM,
 * only the TPM can tell: TPM2_Load checks its integrity HMAC, keyed by the
 * SRK's seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include <cvmkit/bytes.h>
#include <cvmkit/log.h>
#include <cvmkit/secret.h>
#include <cvmkit/tpm.h>

#include "core/core_lib.h"
#include "tpm_int.h"

static const uint8_t seal_magic[8] = {'c', 'v', 'm', 's', 'e', 'a', 'l', '\n'};

#define SEAL_ATTRS \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA)

_Static_assert(CVM_TPM_SEAL_SECRET_MAX <= sizeof(((TPM2B_SENSITIVE_DATA *)0)->buffer), "secret fits");

/* struct sealed is a parsed blob. */
struct sealed {
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
};

/* seal_fail records a failed TPM command in `t` and in `err`. */
static int seal_fail(struct cvm_tpm *t, const char *what, TSS2_RC rc, char *err, size_t err_len)
{
	(void)snprintf(t->err, sizeof(t->err), "%s: %s (0x%x)", what, Tss2_RC_Decode(rc), (unsigned)rc);
	cvm_debug("%s", t->err);
	(void)cvm_err_set(err, err_len, 0, "%s", t->err);
	return CVM_E_TPM;
}

static void seal_template(TPM2B_PUBLIC *t)
{
	TPMT_PUBLIC *p = &t->publicArea;

	memset(t, 0, sizeof(*t));
	p->type = TPM2_ALG_KEYEDHASH;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = SEAL_ATTRS;
	p->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
}

/* public_is_sealed is true when `p` is an object cvm_tpm_seal makes: the
 * TPM fills in only unique (the digest of the seed and the data). */
static bool public_is_sealed(const TPMT_PUBLIC *p)
{
	return p->type == TPM2_ALG_KEYEDHASH && p->nameAlg == TPM2_ALG_SHA256 &&
	       p->objectAttributes == SEAL_ATTRS && p->authPolicy.size == 0 &&
	       p->parameters.keyedHashDetail.scheme.scheme == TPM2_ALG_NULL && p->unique.keyedHash.size == 32;
}

static void flush(struct cvm_tpm *t, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, *h);
	*h = ESYS_TR_NONE;
}

/* make_srk re-creates the SRK from its fixed template. */
static int make_srk(struct cvm_tpm *t, ESYS_TR *srk, char *err, size_t err_len)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION none;
	TSS2_RC rc;

	*srk = ESYS_TR_NONE;
	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&none, 0, sizeof(none));
	cvm_tpm_parent_template(CVM_TPM_PARENT_SRK, &tmpl);
	rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	                        &sens, &tmpl, &outside, &none, srk, NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return seal_fail(t, "TPM2_CreatePrimary(SRK)", rc, err, err_len);
	return CVM_OK;
}

/* start_session starts an HMAC session salted with the SRK (its seed is
 * sent encrypted to the SRK, so a TCTI in the middle cannot learn the
 * session key) whose parameters are encrypted as `attrs` asks. */
static int start_session(struct cvm_tpm *t, ESYS_TR srk, TPMA_SESSION attrs, ESYS_TR *out, char *err,
                         size_t err_len)
{
	TPMT_SYM_DEF sym;
	ESYS_TR s = ESYS_TR_NONE;
	TSS2_RC rc;

	*out = ESYS_TR_NONE;
	memset(&sym, 0, sizeof(sym));
	sym.algorithm = TPM2_ALG_AES;
	sym.keyBits.aes = 128;
	sym.mode.aes = TPM2_ALG_CFB;
	rc = Esys_StartAuthSession(t->esys, srk, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
	                           TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &s);
	if (rc != TSS2_RC_SUCCESS)
		return seal_fail(t, "TPM2_StartAuthSession(salted)", rc, err, err_len);
	rc = Esys_TRSess_SetAttributes(t->esys, s, attrs, 0xff);
	if (rc != TSS2_RC_SUCCESS) {
		flush(t, &s);
		return seal_fail(t, "Esys_TRSess_SetAttributes", rc, err, err_len);
	}
	*out = s;
	return CVM_OK;
}

/* scrub overwrites what tpm2-tss kept of a secret it carried. ESYS
 * encrypts and decrypts parameters in place in its one command buffer,
 * which cvmkit cannot reach and which is freed without being wiped: the
 * Unseal response (and its plaintext) stays there until another command
 * overwrites it. TPM2_StirRandom with 128 zero bytes (a harmless command:
 * it adds nothing but zeros to the TPM's entropy) is marshalled into that
 * buffer from its start, over the first 140 bytes, which covers an
 * unsealed secret of up to 124 bytes (cvmkit's KMS seals 33). Best
 * effort: the TPM's answer is not needed. */
static void scrub(struct cvm_tpm *t)
{
	TPM2B_SENSITIVE_DATA zeros;

	memset(&zeros, 0, sizeof(zeros));
	zeros.size = CVM_TPM_SEAL_SECRET_MAX;
	(void)Esys_StirRandom(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &zeros);
}

/* scrub_create overwrites ESYS's copy of TPM2_Create's inputs (the
 * TPM2B_SENSITIVE_CREATE, the secret in the clear), which it keeps inside
 * its context (freed unwiped) until another command's inputs replace them:
 * a TPM2_CreatePrimary of the SRK, whose sensitive part is empty, takes
 * their place (measured with tpm2-tss 3.2: unit.tpm_seal's
 * tpm_leaves_no_plaintext_in_process_memory). */
static void scrub_create(struct cvm_tpm *t)
{
	char keep[sizeof(t->err)];
	ESYS_TR srk = ESYS_TR_NONE;

	memcpy(keep, t->err, sizeof(keep));
	if (make_srk(t, &srk, NULL, 0) == CVM_OK)
		flush(t, &srk);
	scrub(t);
	memcpy(t->err, keep, sizeof(keep));
}

static int write_blob(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, uint8_t **blob, size_t *blob_len)
{
	uint8_t buf[CVM_TPM_SEAL_BLOB_MAX];
	size_t off = 0;
	struct cvm_wr w;

	cvm_wr_init(&w, CVM_TPM_SEAL_BLOB_MAX);
	cvm_wr_bytes(&w, seal_magic, sizeof(seal_magic));
	cvm_wr_u16be(&w, CVM_TPM_SEAL_VERSION);
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS) {
		cvm_wr_cleanup(&w);
		return CVM_E_TOO_LARGE;
	}
	cvm_wr_bytes(&w, buf, off);
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS) {
		cvm_wr_cleanup(&w);
		return CVM_E_TOO_LARGE;
	}
	cvm_wr_bytes(&w, buf, off);
	return cvm_wr_finish(&w, blob, blob_len);
}

int cvm_tpm_seal(struct cvm_tpm *t, const uint8_t *secret, size_t len, uint8_t **blob, size_t *blob_len,
                 char *err, size_t err_len)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION none;
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	ESYS_TR srk = ESYS_TR_NONE, session = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	if (blob != NULL)
		*blob = NULL;
	if (blob_len != NULL)
		*blob_len = 0;
	(void)cvm_err_set(err, err_len, 0, "%s", "");
	if (t == NULL || secret == NULL || blob == NULL || blob_len == NULL || len == 0 ||
	    len > CVM_TPM_SEAL_SECRET_MAX) {
		(void)cvm_err_set(err, err_len, 0, "a TPM seals 1 to %d bytes", CVM_TPM_SEAL_SECRET_MAX);
		return CVM_E_INVAL;
	}
	t->err[0] = '\0';
	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&none, 0, sizeof(none));
	seal_template(&tmpl);
	r = make_srk(t, &srk, err, err_len);
	if (r != CVM_OK)
		goto out;
	/* decrypt: the TPM2B_SENSITIVE_CREATE (the secret) is sent encrypted */
	r = start_session(t, srk, TPMA_SESSION_DECRYPT | TPMA_SESSION_CONTINUESESSION, &session, err,
	                  err_len);
	if (r != CVM_OK)
		goto out;
	sens.sensitive.data.size = (UINT16)len;
	memcpy(sens.sensitive.data.buffer, secret, len);
	rc = Esys_Create(t->esys, srk, session, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &none,
	                 &priv, &pub, NULL, NULL, NULL);
	scrub_create(t);
	if (rc != TSS2_RC_SUCCESS) {
		r = seal_fail(t, "TPM2_Create(sealed data)", rc, err, err_len);
		goto out;
	}
	if (!public_is_sealed(&pub->publicArea)) {
		(void)cvm_err_set(err, err_len, 0,
		                  "the TPM made an object of another shape than the template asked for");
		r = CVM_E_TPM;
		goto out;
	}
	r = write_blob(pub, priv, blob, blob_len);
	if (r != CVM_OK)
		(void)cvm_err_set(err, err_len, 0, "the sealed object does not fit in %d bytes",
		                  CVM_TPM_SEAL_BLOB_MAX);
out:
	cvm_wipe(&sens, sizeof(sens));
	flush(t, &session);
	flush(t, &srk);
	Esys_Free(priv);
	Esys_Free(pub);
	return r;
}

/* parse_blob reads a blob into `s`. */
static int parse_blob(const uint8_t *blob, size_t blob_len, struct sealed *s)
{
	const uint8_t *magic = NULL;
	struct cvm_rd rd, pub, priv;
	uint16_t version = 0;
	size_t off = 0;
	TSS2_RC rc;

	memset(s, 0, sizeof(*s));
	if (blob_len > CVM_TPM_SEAL_BLOB_MAX)
		return CVM_E_TOO_LARGE;
	if (blob == NULL)
		return CVM_E_TRUNCATED;
	cvm_rd_init(&rd, blob, blob_len);
	if (!cvm_rd_bytes(&rd, &magic, sizeof(seal_magic)))
		return CVM_E_TRUNCATED;
	if (memcmp(magic, seal_magic, sizeof(seal_magic)) != 0)
		return CVM_E_FORMAT;
	if (!cvm_rd_u16be(&rd, &version))
		return CVM_E_TRUNCATED;
	if (version != CVM_TPM_SEAL_VERSION)
		return CVM_E_UNSUPPORTED;
	/* TPM2B_PUBLIC: the size read here, the TPMT_PUBLIC bounded by it (see
	 * attest.c: tss2-mu 3.2's TPM2B_PUBLIC unmarshaller does not bound it) */
	if (!cvm_rd_sub_u16be(&rd, &pub) || !cvm_rd_sub_u16be(&rd, &priv))
		return CVM_E_TRUNCATED;
	if (!cvm_rd_empty(&rd))
		return CVM_E_FORMAT;
	if (pub.len == 0 || priv.len == 0)
		return CVM_E_FORMAT;
	if (priv.len > sizeof(s->priv.buffer))
		return CVM_E_TOO_LARGE;
	rc = Tss2_MU_TPMT_PUBLIC_Unmarshal(pub.p, pub.len, &off, &s->pub.publicArea);
	if (rc != TSS2_RC_SUCCESS)
		return rc == TSS2_MU_RC_INSUFFICIENT_BUFFER ? CVM_E_TRUNCATED : CVM_E_FORMAT;
	if (!cvm_rd_skip(&pub, off))
		return CVM_E_INTERNAL; /* tss2-mu claims to have read past the input */
	if (!cvm_rd_empty(&pub))
		return CVM_E_FORMAT;
	s->pub.size = (UINT16)(off);
	if (!public_is_sealed(&s->pub.publicArea))
		return CVM_E_FORMAT;
	s->priv.size = (UINT16)priv.len;
	if (!cvm_rd_copy(&priv, s->priv.buffer, priv.len))
		return CVM_E_INTERNAL;
	return CVM_OK;
}

int cvm_tpm_seal_blob_check(const uint8_t *blob, size_t blob_len)
{
	struct sealed s;

	return parse_blob(blob, blob_len, &s);
}

static const char *blob_why(int r)
{
	switch (r) {
	case CVM_E_TRUNCATED:
		return "the sealed blob is cut short";
	case CVM_E_UNSUPPORTED:
		return "the sealed blob is of another version than this cvmkit reads";
	case CVM_E_TOO_LARGE:
		return "the sealed blob is larger than any cvmkit writes";
	default:
		return "the sealed blob is malformed, or not one cvmkit made";
	}
}

int cvm_tpm_unseal(struct cvm_tpm *t, const uint8_t *blob, size_t blob_len, struct cvm_secret **out,
                   char *err, size_t err_len)
{
	struct sealed s;
	TPM2B_SENSITIVE_DATA *data = NULL;
	ESYS_TR srk = ESYS_TR_NONE, obj = ESYS_TR_NONE, session = ESYS_TR_NONE;
	struct cvm_secret *sec = NULL;
	TSS2_RC rc;
	int r;

	if (out != NULL)
		*out = NULL;
	(void)cvm_err_set(err, err_len, 0, "%s", "");
	if (t == NULL || out == NULL)
		return CVM_E_INVAL;
	t->err[0] = '\0';
	r = parse_blob(blob, blob_len, &s);
	if (r != CVM_OK) {
		(void)cvm_err_set(err, err_len, 0, "%s", blob_why(r));
		return r;
	}
	r = make_srk(t, &srk, err, err_len);
	if (r != CVM_OK)
		goto out;
	rc = Esys_Load(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &s.priv, &s.pub, &obj);
	if (rc != TSS2_RC_SUCCESS) {
		r = seal_fail(t, "TPM2_Load(sealed data)", rc, err, err_len);
		goto out;
	}
	/* encrypt: the TPM returns the secret encrypted under the session key */
	r = start_session(t, srk, TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, &session, err,
	                  err_len);
	if (r != CVM_OK)
		goto out;
	rc = Esys_Unseal(t->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE, &data);
	scrub(t);
	if (rc != TSS2_RC_SUCCESS) {
		r = seal_fail(t, "TPM2_Unseal", rc, err, err_len);
		goto out;
	}
	if (data->size == 0 || data->size > CVM_TPM_SEAL_SECRET_MAX) {
		(void)cvm_err_set(err, err_len, 0, "the TPM unsealed %u bytes: cvmkit seals 1 to %d",
		                  (unsigned)data->size, CVM_TPM_SEAL_SECRET_MAX);
		r = CVM_E_TPM;
		goto out;
	}
	sec = cvm_secret_new(data->size);
	if (sec == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(sec->p, data->buffer, data->size);
	*out = sec;
	sec = NULL; /* transferred */
	r = CVM_OK;
out:
	if (data != NULL) {
		cvm_wipe(data, sizeof(*data));
		Esys_Free(data);
	}
	cvm_secret_free(sec);
	flush(t, &session);
	flush(t, &obj);
	flush(t, &srk);
	cvm_wipe(&s, sizeof(s));
	return r;
}
