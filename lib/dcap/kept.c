/* Parsing signed collateral (the frame common to TCB info and QE identity),
 * and keeping what was parsed by its exact bytes.
 *
 * A verifier meets the same TCB info and QE identity bodies with every quote
 * until Intel issues new ones, and decoding one with jansson costs more than
 * checking its signature. Once a body's signature verified under Intel's
 * TCB Signing certificate (its issuer chain and role checked first), the
 * verifier keeps its decoded form here (cvm_tcb_info_keep,
 * cvm_qe_identity_keep), and a later cvm_tcb_info_parse or
 * cvm_qe_identity_parse of the very same bytes takes it instead of decoding
 * again. That saves decoding only: the signature over the signed bytes, the
 * issuer chain with its roles, and the dates are checked by every
 * verification as before, so a body kept after one verification cannot
 * carry a forged signer past the next. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dcap/collateral_int.h"
#include "dcap_int.h"

#define KEPT_MAX 8 /* a few FMSPCs' TCB infos and the QE identities */

struct kept {
	enum cvm_coll_kind kind;
	uint8_t *body;
	size_t len;
	void *obj;
	size_t span_off, span_len;
	uint8_t sig[64];
};

static struct kept kept[KEPT_MAX]; /* most recently used first */
static size_t kept_count;
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;

static void obj_release(enum cvm_coll_kind kind, void *obj)
{
	if (kind == CVM_COLL_TCB_INFO)
		cvm_tcb_info_free(obj);
	else
		cvm_qe_identity_free(obj);
}

/* obj_decode makes a new object of `kind` from the decoded JSON value. */
static int obj_decode(enum cvm_coll_kind kind, const json_t *o, void **out)
{
	void *obj = calloc(1, kind == CVM_COLL_TCB_INFO ? sizeof(struct cvm_tcb_info)
	                                                : sizeof(struct cvm_qe_identity));
	int r;

	*out = NULL;
	if (obj == NULL)
		return CVM_E_NOMEM;
	if (kind == CVM_COLL_TCB_INFO) {
		((struct cvm_tcb_info *)obj)->refs = 1;
		r = cvm_tcb_info_decode(o, obj);
	} else {
		((struct cvm_qe_identity *)obj)->refs = 1;
		r = cvm_qe_identity_decode(o, obj);
	}
	if (r != CVM_OK) {
		obj_release(kind, obj);
		return r;
	}
	*out = obj;
	return CVM_OK;
}

int cvm_coll_parse(enum cvm_coll_kind kind, const uint8_t *body, size_t len, void **out,
                   struct cvm_rd *signed_part, uint8_t signature[64])
{
	struct cvm_rd span;
	uint8_t sig[64];
	json_t *o = NULL;
	int r = CVM_OK;

	if (out == NULL)
		return CVM_E_INVAL;
	if (signed_part != NULL)
		cvm_rd_init(signed_part, NULL, 0);
	if (signature != NULL)
		memset(signature, 0, 64);
	*out = cvm_coll_kept_take(kind, body, len, &span, sig);
	if (*out == NULL) {
		r = cvm_coll_load_signed(body, len, kind == CVM_COLL_TCB_INFO ? "tcbInfo" : "enclaveIdentity",
		                         &o, &span, sig);
		if (r == CVM_OK)
			r = obj_decode(kind, o, out);
		json_decref(o);
	}
	if (r != CVM_OK)
		return r;
	if (signed_part != NULL)
		*signed_part = span;
	if (signature != NULL)
		memcpy(signature, sig, sizeof(sig));
	return CVM_OK;
}

static void obj_ref(enum cvm_coll_kind kind, void *obj)
{
	int *refs = kind == CVM_COLL_TCB_INFO ? &((struct cvm_tcb_info *)obj)->refs
	                                      : &((struct cvm_qe_identity *)obj)->refs;

	__atomic_add_fetch(refs, 1, __ATOMIC_ACQ_REL);
}

void *cvm_coll_kept_take(enum cvm_coll_kind kind, const uint8_t *body, size_t len, struct cvm_rd *span,
                         uint8_t sig[64])
{
	void *obj = NULL;

	(void)pthread_mutex_lock(&kept_mu);
	for (size_t i = 0; i < kept_count; i++) {
		struct kept k = kept[i];

		if (k.kind != kind || k.len != len || memcmp(k.body, body, len) != 0)
			continue;
		for (size_t j = i; j > 0; j--)
			kept[j] = kept[j - 1];
		kept[0] = k;
		obj_ref(kind, k.obj);
		obj = k.obj;
		cvm_rd_init(span, body + k.span_off, k.span_len);
		memcpy(sig, k.sig, 64);
		break;
	}
	(void)pthread_mutex_unlock(&kept_mu);
	return obj;
}

void cvm_coll_kept_put(enum cvm_coll_kind kind, void *obj, const uint8_t *body, size_t len,
                       const struct cvm_rd *span, const uint8_t sig[64])
{
	struct kept k = {kind, NULL, len, obj, 0, 0, {0}}, old = {0};

	if (obj == NULL || span->p < body || span->len > len || (size_t)(span->p - body) > len - span->len)
		return;
	k.body = malloc(len != 0 ? len : 1);
	if (k.body == NULL)
		return;
	memcpy(k.body, body, len);
	k.span_off = (size_t)(span->p - body);
	k.span_len = span->len;
	memcpy(k.sig, sig, 64);
	(void)pthread_mutex_lock(&kept_mu);
	for (size_t i = 0; i < kept_count; i++) {
		if (kept[i].kind == kind && kept[i].len == len && memcmp(kept[i].body, body, len) == 0) {
			(void)pthread_mutex_unlock(&kept_mu);
			free(k.body);
			return; /* already kept */
		}
	}
	if (kept_count == KEPT_MAX)
		old = kept[--kept_count];
	for (size_t j = kept_count; j > 0; j--)
		kept[j] = kept[j - 1];
	obj_ref(kind, obj);
	kept[0] = k;
	kept_count++;
	(void)pthread_mutex_unlock(&kept_mu);
	if (old.obj != NULL)
		obj_release(old.kind, old.obj);
	free(old.body);
}

void cvm_tcb_info_keep(struct cvm_tcb_info *ti, const uint8_t *body, size_t len,
                       const struct cvm_rd *signed_part, const uint8_t signature[64])
{
	cvm_coll_kept_put(CVM_COLL_TCB_INFO, ti, body, len, signed_part, signature);
}

void cvm_qe_identity_keep(struct cvm_qe_identity *qe, const uint8_t *body, size_t len,
                          const struct cvm_rd *signed_part, const uint8_t signature[64])
{
	cvm_coll_kept_put(CVM_COLL_QE_IDENTITY, qe, body, len, signed_part, signature);
}
