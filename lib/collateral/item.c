/* The item record: how one item is kept on disk and inside a bundle
 * (docs/collateral.md, "Item record"). Every byte read back goes through
 * the bounded reader; lengths are checked against what remains and against
 * the kind's cap, strings must hold no NUL and fit their field. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/err.h>
#include <cvmkit/secret.h>

#include "coll_int.h"

static const uint8_t item_magic[8] = {'C', 'V', 'M', 'I', 'T', 'E', 'M', 0};
/* Version 2 added the key's by_manifest and manifest_hash (PCK_CERTS). */
#define ITEM_VERSION 2u

void cvm_cache_item_free(struct cvm_cache_item *it)
{
	if (it == NULL)
		return;
	free(it->body);
	free(it->issuer_chain);
	free(it);
}

static void wr_str16(struct cvm_wr *w, const char *s, size_t field)
{
	size_t n = strnlen(s, field);

	if (n >= field) {
		w->err = true; /* not NUL-terminated in its field */
		return;
	}
	cvm_wr_u16le(w, (uint16_t)n);
	cvm_wr_bytes(w, s, n);
}

int coll_item_encode(const struct cvm_cache_item *it, uint8_t **out, size_t *out_len)
{
	const struct cvm_cache_key *k = &it->key;
	struct cvm_wr w;

	*out = NULL;
	*out_len = 0;
	if (!coll_key_valid(k) || it->body == NULL || it->body_len == 0 ||
	    it->body_len > coll_key_body_max(k->kind) || it->issuer_chain_len > COLL_CHAIN_MAX ||
	    (it->issuer_chain == NULL && it->issuer_chain_len != 0))
		return CVM_E_INVAL;
	cvm_wr_init(&w, COLL_ITEM_MAX);
	cvm_wr_bytes(&w, item_magic, sizeof(item_magic));
	cvm_wr_u32le(&w, ITEM_VERSION);
	cvm_wr_u32le(&w, (uint32_t)k->kind);
	cvm_wr_u8(&w, (uint8_t)k->tee);
	cvm_wr_u8(&w, (uint8_t)k->update);
	cvm_wr_bytes(&w, k->fmspc, sizeof(k->fmspc));
	cvm_wr_u8(&w, (uint8_t)k->ca);
	cvm_wr_u16le(&w, (uint16_t)k->enc_ppid_len);
	cvm_wr_bytes(&w, k->enc_ppid, k->enc_ppid_len);
	cvm_wr_bytes(&w, k->cpusvn, sizeof(k->cpusvn));
	cvm_wr_u16le(&w, k->pcesvn);
	cvm_wr_bytes(&w, k->pceid, sizeof(k->pceid));
	cvm_wr_u8(&w, (uint8_t)k->product);
	cvm_wr_u8(&w, (uint8_t)k->signer);
	cvm_wr_u8(&w, (uint8_t)k->hwid_len);
	cvm_wr_bytes(&w, k->hwid, k->hwid_len);
	cvm_wr_u64le(&w, k->tcb);
	cvm_wr_u8(&w, k->by_manifest ? 1 : 0);
	cvm_wr_bytes(&w, k->manifest_hash, sizeof(k->manifest_hash));
	wr_str16(&w, it->tcbm, sizeof(it->tcbm));
	wr_str16(&w, it->fmspc, sizeof(it->fmspc));
	wr_str16(&w, it->ca_type, sizeof(it->ca_type));
	wr_str16(&w, it->source, sizeof(it->source));
	wr_str16(&w, it->anchor, sizeof(it->anchor));
	cvm_wr_u64le(&w, (uint64_t)it->fetched_at);
	cvm_wr_u64le(&w, (uint64_t)it->issued_at);
	cvm_wr_u64le(&w, (uint64_t)it->next_update);
	cvm_wr_u64le(&w, (uint64_t)it->expires);
	cvm_wr_u32le(&w, (uint32_t)it->body_len);
	cvm_wr_bytes(&w, it->body, it->body_len);
	cvm_wr_u32le(&w, (uint32_t)it->issuer_chain_len);
	if (it->issuer_chain_len != 0)
		cvm_wr_bytes(&w, it->issuer_chain, it->issuer_chain_len);
	return cvm_wr_finish(&w, out, out_len);
}

/* rd_str16 reads a u16le-prefixed string into a field of `cap` bytes. */
static bool rd_str16(struct cvm_rd *r, char *out, size_t cap)
{
	struct cvm_rd s;

	if (!cvm_rd_sub_u16le(r, &s) || s.len >= cap || cvm_rd_has_nul(&s))
		return false;
	memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return true;
}

static bool rd_i64(struct cvm_rd *r, int64_t *v)
{
	uint64_t u;

	if (!cvm_rd_u64le(r, &u))
		return false;
	*v = (int64_t)u;
	return true;
}

int coll_item_decode(const uint8_t *buf, size_t len, struct cvm_cache_item **out)
{
	struct cvm_cache_item *it = NULL;
	struct cvm_cache_key *k;
	struct cvm_rd r, body, chain, ppid, hwid;
	const uint8_t *magic;
	uint32_t version, kind;
	uint8_t tee, update, ca, product, signer, hwid_len, by_manifest = 0;
	int rc;

	*out = NULL;
	if (len > COLL_ITEM_MAX)
		return CVM_E_TOO_LARGE;
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return CVM_E_NOMEM;
	k = &it->key;
	cvm_rd_init(&r, buf, len);
	if (!cvm_rd_bytes(&r, &magic, sizeof(item_magic)) || !cvm_rd_u32le(&r, &version)) {
		rc = CVM_E_TRUNCATED;
		goto out;
	}
	if (memcmp(magic, item_magic, sizeof(item_magic)) != 0) {
		rc = CVM_E_FORMAT;
		goto out;
	}
	if (version != 1 && version != ITEM_VERSION) {
		rc = CVM_E_UNSUPPORTED;
		goto out;
	}
	rc = CVM_E_TRUNCATED;
	if (!cvm_rd_u32le(&r, &kind) || !cvm_rd_u8(&r, &tee) || !cvm_rd_u8(&r, &update) ||
	    !cvm_rd_copy(&r, k->fmspc, sizeof(k->fmspc)) || !cvm_rd_u8(&r, &ca) ||
	    !cvm_rd_sub_u16le(&r, &ppid) || !cvm_rd_copy(&r, k->cpusvn, sizeof(k->cpusvn)) ||
	    !cvm_rd_u16le(&r, &k->pcesvn) || !cvm_rd_copy(&r, k->pceid, sizeof(k->pceid)) ||
	    !cvm_rd_u8(&r, &product) || !cvm_rd_u8(&r, &signer) || !cvm_rd_u8(&r, &hwid_len) ||
	    !cvm_rd_sub(&r, &hwid, hwid_len) || !cvm_rd_u64le(&r, &k->tcb))
		goto out;
	if (version >= 2 &&
	    (!cvm_rd_u8(&r, &by_manifest) || !cvm_rd_copy(&r, k->manifest_hash, sizeof(k->manifest_hash))))
		goto out;
	if (!rd_str16(&r, it->tcbm, sizeof(it->tcbm)) || !rd_str16(&r, it->fmspc, sizeof(it->fmspc)) ||
	    !rd_str16(&r, it->ca_type, sizeof(it->ca_type)) ||
	    !rd_str16(&r, it->source, sizeof(it->source)) || !rd_str16(&r, it->anchor, sizeof(it->anchor)) ||
	    !rd_i64(&r, &it->fetched_at) || !rd_i64(&r, &it->issued_at) || !rd_i64(&r, &it->next_update) ||
	    !rd_i64(&r, &it->expires) || !cvm_rd_sub_u32le(&r, &body) || !cvm_rd_sub_u32le(&r, &chain))
		goto out;
	rc = CVM_E_FORMAT;
	if (!cvm_rd_empty(&r))
		goto out;
	if (ppid.len > sizeof(k->enc_ppid) || hwid.len > sizeof(k->hwid) || kind > CVM_CACHE_PCK_CERTS ||
	    by_manifest > 1)
		goto out;
	k->by_manifest = by_manifest == 1;
	k->kind = (enum cvm_cache_kind)kind;
	k->tee = (enum cvm_cache_tee)tee;
	k->update = (enum cvm_cache_update)update;
	k->ca = (enum cvm_cache_ca)ca;
	k->product = (enum cvm_snp_product)product;
	k->signer = (enum cvm_snp_signer)signer;
	memcpy(k->enc_ppid, ppid.p, ppid.len);
	k->enc_ppid_len = ppid.len;
	memcpy(k->hwid, hwid.p, hwid.len);
	k->hwid_len = hwid.len;
	if (!coll_key_valid(k) || body.len == 0 || body.len > coll_key_body_max(k->kind) ||
	    chain.len > COLL_CHAIN_MAX || cvm_rd_has_nul(&chain))
		goto out;
	rc = CVM_E_NOMEM;
	it->body = malloc(body.len);
	if (it->body == NULL)
		goto out;
	memcpy(it->body, body.p, body.len);
	it->body_len = body.len;
	if (chain.len != 0) {
		it->issuer_chain = malloc(chain.len + 1);
		if (it->issuer_chain == NULL)
			goto out;
		memcpy(it->issuer_chain, chain.p, chain.len);
		it->issuer_chain[chain.len] = '\0';
		it->issuer_chain_len = chain.len;
	}
	*out = it;
	it = NULL; /* transferred */
	rc = CVM_OK;
out:
	cvm_cache_item_free(it);
	return rc;
}

int coll_item_dup(const struct cvm_cache_item *it, struct cvm_cache_item **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	r = coll_item_encode(it, &buf, &len);
	if (r == CVM_OK)
		r = coll_item_decode(buf, len, out);
	free(buf);
	return r;
}
