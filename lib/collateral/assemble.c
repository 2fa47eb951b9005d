/* From cached items to what lib/dcap and lib/amd verify: cold (a new
 * collateral struct per call) and warm (verified collateral kept in the
 * handle, re-authenticated only when an item changed or the time left its
 * window; the items are looked at again at most once a second). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/quote.h>
#include <cvmkit/snp.h>

#include "coll_int.h"
#include "core/core_lib.h"

static int copy_out(const uint8_t *p, size_t n, uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (p == NULL)
		return CVM_OK;
	*out = malloc(n != 0 ? n : 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	memcpy(*out, p, n);
	*out_len = n;
	return CVM_OK;
}

/* merge folds one item's info into the call's. */
static void merge(struct cvm_cache_info *all, const struct cvm_cache_info *one)
{
	if (all == NULL)
		return;
	if (all->items == 0 || one->age_s > all->age_s)
		all->age_s = one->age_s;
	if (all->items == 0 || one->expires < all->expires)
		all->expires = one->expires;
	all->items += one->items;
	all->fetched += one->fetched;
	if (one->source == CVM_CACHE_FROM_STALE ||
	    (one->source == CVM_CACHE_FROM_UPSTREAM && all->source != CVM_CACHE_FROM_STALE) ||
	    all->source == CVM_CACHE_FROM_NONE)
		all->source = one->source;
	if (one->anchor[0] != '\0')
		memcpy(all->anchor, one->anchor, sizeof(all->anchor));
	if (one->upstream[0] != '\0')
		memcpy(all->upstream, one->upstream, sizeof(all->upstream));
	if (one->upstream_err[0] != '\0')
		memcpy(all->upstream_err, one->upstream_err, sizeof(all->upstream_err));
}

/* get_all gets every item of `need` into `items` (hashing their bytes
 * into `digest` when given). An AMD CRL the upstream does not have is left
 * out (items[i] NULL): revocation is then unchecked, which the verdict
 * says and the policy decides (snp.require_crl). */
static int get_all(struct cvm_cache *c, const struct cvm_cache_need *need, int64_t now, unsigned flags,
                   struct cvm_cache_item **items, struct cvm_cache_info *info, uint8_t digest[32], char *err,
                   size_t err_len)
{
	uint8_t acc[32] = {0}, h[32];
	int r;

	for (size_t i = 0; i < need->count; i++) {
		struct cvm_cache_info one;

		r = cvm_cache_get(c, &need->keys[i], now, flags, &items[i], &one, err, err_len);
		if (r == CVM_E_NOT_FOUND && need->keys[i].kind == CVM_CACHE_AMD_CRL) {
			items[i] = NULL;
			continue;
		}
		if (r != CVM_OK)
			return r;
		merge(info, &one);
		if (digest != NULL) {
			uint8_t buf[96];

			cvm_sha256(items[i]->body, items[i]->body_len, h);
			memcpy(buf, acc, 32);
			memcpy(buf + 32, h, 32);
			cvm_sha256(items[i]->issuer_chain != NULL ? (const uint8_t *)items[i]->issuer_chain
			                                          : (const uint8_t *)"",
			           items[i]->issuer_chain_len, h);
			memcpy(buf + 64, h, 32);
			cvm_sha256(buf, sizeof(buf), acc);
		}
	}
	if (digest != NULL)
		memcpy(digest, acc, 32);
	return CVM_OK;
}

static void items_free(struct cvm_cache_item **items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cvm_cache_item_free(items[i]);
		items[i] = NULL;
	}
}

static int dcap_build(struct cvm_cache_item *const *items, struct cvm_dcap_collateral **out)
{
	struct cvm_dcap_collateral *d;
	int r = CVM_OK;

	*out = NULL;
	for (size_t i = 0; i < 4; i++)
		if (items[i] == NULL)
			return CVM_E_INTERNAL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return CVM_E_NOMEM;
	/* need_quote's order: root CA CRL, PCK CRL, TCB info, QE identity. */
	if (copy_out(items[0]->body, items[0]->body_len, &d->root_ca_crl, &d->root_ca_crl_len) != CVM_OK ||
	    copy_out(items[1]->body, items[1]->body_len, &d->pck_crl, &d->pck_crl_len) != CVM_OK ||
	    copy_out((const uint8_t *)items[1]->issuer_chain, items[1]->issuer_chain_len,
	             &d->pck_crl_issuer_chain, &d->pck_crl_issuer_chain_len) != CVM_OK ||
	    copy_out(items[2]->body, items[2]->body_len, &d->tcb_info, &d->tcb_info_len) != CVM_OK ||
	    copy_out((const uint8_t *)items[2]->issuer_chain, items[2]->issuer_chain_len,
	             &d->tcb_info_issuer_chain, &d->tcb_info_issuer_chain_len) != CVM_OK ||
	    copy_out(items[3]->body, items[3]->body_len, &d->qe_identity, &d->qe_identity_len) != CVM_OK ||
	    copy_out((const uint8_t *)items[3]->issuer_chain, items[3]->issuer_chain_len,
	             &d->qe_identity_issuer_chain, &d->qe_identity_issuer_chain_len) != CVM_OK)
		r = CVM_E_NOMEM;
	if (r != CVM_OK) {
		cvm_dcap_collateral_free(d);
		return r;
	}
	*out = d;
	return CVM_OK;
}

static int dcap_get(struct cvm_cache *c, const uint8_t *quote, size_t len, int64_t now, unsigned flags,
                    struct cvm_dcap_collateral **out, struct cvm_cache_info *info, uint8_t digest[32],
                    char *err, size_t err_len)
{
	struct cvm_cache_need need;
	struct cvm_cache_item *items[CVM_CACHE_NEED_MAX] = {NULL};
	int r;

	*out = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (c == NULL)
		return CVM_E_INVAL;
	r = cvm_cache_need_quote(quote, len, &need, err, err_len);
	if (r != CVM_OK)
		return r;
	r = get_all(c, &need, now, flags, items, info, digest, err, err_len);
	if (r == CVM_OK)
		r = dcap_build(items, out);
	items_free(items, need.count);
	return r;
}

int cvm_cache_dcap(struct cvm_cache *c, const uint8_t *quote, size_t len, int64_t now, unsigned flags,
                   struct cvm_dcap_collateral **out, struct cvm_cache_info *info, char *err, size_t err_len)
{
	if (out == NULL)
		return CVM_E_INVAL;
	return dcap_get(c, quote, len, now, flags, out, info, NULL, err, err_len);
}

static int amd_get(struct cvm_cache *c, const uint8_t *report, size_t len, enum cvm_snp_product product,
                   const uint8_t *vlek, size_t vlek_len, int64_t now, unsigned flags,
                   struct cvm_amd_collateral **out, struct cvm_cache_info *info, uint8_t digest[32],
                   char *err, size_t err_len)
{
	struct cvm_cache_need need;
	struct cvm_cache_item *items[CVM_CACHE_NEED_MAX] = {NULL};
	struct cvm_amd_collateral *a = NULL;
	size_t i = 0;
	int r;

	*out = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (c == NULL)
		return CVM_E_INVAL;
	r = cvm_cache_need_report(report, len, product, &need, err, err_len);
	if (r != CVM_OK)
		return r;
	if (need.keys[0].kind != CVM_CACHE_VCEK && vlek == NULL) {
		r = cvm_err_set(err, err_len, CVM_E_NOT_FOUND,
		                "the report is signed by a VLEK, which no upstream serves: give the VLEK");
		goto out;
	}
	r = get_all(c, &need, now, flags, items, info, digest, err, err_len);
	if (r != CVM_OK)
		goto out;
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (need.keys[0].kind == CVM_CACHE_VCEK)
		r = copy_out(items[i++]->body, items[0]->body_len, &a->vcek, &a->vcek_len);
	else
		r = copy_out(vlek, vlek_len, &a->vlek, &a->vlek_len);
	if (r == CVM_OK)
		r = copy_out(items[i]->body, items[i]->body_len, &a->cert_chain, &a->cert_chain_len);
	i++;
	if (r == CVM_OK && items[i] != NULL)
		r = copy_out(items[i]->body, items[i]->body_len, &a->crl, &a->crl_len);
	if (r != CVM_OK)
		goto out;
	*out = a;
	a = NULL; /* transferred */
out:
	cvm_amd_collateral_free(a);
	items_free(items, need.count);
	return r;
}

int cvm_cache_amd(struct cvm_cache *c, const uint8_t *report, size_t len, enum cvm_snp_product product,
                  const uint8_t *vlek, size_t vlek_len, int64_t now, unsigned flags,
                  struct cvm_amd_collateral **out, struct cvm_cache_info *info, char *err, size_t err_len)
{
	if (out == NULL)
		return CVM_E_INVAL;
	return amd_get(c, report, len, product, vlek, vlek_len, now, flags, out, info, NULL, err, err_len);
}

/* ---- warm --------------------------------------------------------------- */

static struct coll_warm *warm_find(struct cvm_cache *c, const uint8_t key[32])
{
	for (size_t i = 0; i < COLL_WARM_MAX; i++)
		if (c->warm[i].used && c->warm[i].amd && memcmp(c->warm[i].key, key, 32) == 0)
			return &c->warm[i];
	return NULL;
}

/* warm_find_chain finds the DCAP entry of a platform's quotes: all of them
 * carry the same PCK chain, which names the collateral (FMSPC, CA, TEE)
 * without parsing a certificate. */
static struct coll_warm *warm_find_chain(struct cvm_cache *c, int tee, const uint8_t *chain, size_t len)
{
	for (size_t i = 0; i < COLL_WARM_MAX; i++) {
		const struct coll_warm *w = &c->warm[i];

		if (w->used && !w->amd && w->tee == tee && w->chain_len == len &&
		    memcmp(w->chain, chain, len) == 0)
			return &c->warm[i];
	}
	return NULL;
}

static struct coll_warm *warm_slot(struct cvm_cache *c)
{
	struct coll_warm *w = &c->warm[0];

	for (size_t i = 0; i < COLL_WARM_MAX; i++) {
		if (!c->warm[i].used)
			return &c->warm[i];
		if (c->warm[i].lru < w->lru)
			w = &c->warm[i];
	}
	cvm_dcap_verified_free(w->dv);
	cvm_amd_verified_free(w->av);
	free(w->chain);
	memset(w, 0, sizeof(*w));
	return w;
}

/* warm_hit says whether `w` may answer at `now` without looking at the
 * items: looked at less than a second ago, and inside its window. */
static int64_t mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool warm_hit(const struct coll_warm *w, int64_t now)
{
	return w != NULL && now >= w->checked_at && now - w->checked_at < 1 && now <= w->until &&
	       mono_ms() - w->looked_ms < 1000;
}

static void warm_info(struct cvm_cache *c, struct coll_warm *w, int64_t now, struct cvm_cache_info *info)
{
	w->lru = ++c->lru;
	if (info == NULL)
		return;
	*info = w->info;
	info->age_s += now - w->checked_at;
	if (info->source == CVM_CACHE_FROM_UPSTREAM)
		info->source = CVM_CACHE_FROM_DISK; /* fetched by an earlier call */
	info->fetched = 0;
}

int cvm_cache_dcap_warm(struct cvm_cache *c, const uint8_t *quote, size_t len, int64_t now,
                        struct cvm_dcap_verified **out, struct cvm_cache_info *info, struct cvm_report *rep,
                        char *err, size_t err_len)
{
	struct cvm_dcap_collateral *coll = NULL;
	struct cvm_dcap_verified *dv = NULL;
	struct cvm_cache_info got;
	struct cvm_quote q;
	struct coll_warm *w;
	uint8_t digest[32], *chain = NULL;
	int r;

	if (out != NULL)
		*out = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (c == NULL || out == NULL || quote == NULL)
		return CVM_E_INVAL;
	r = cvm_quote_parse(quote, len, &q);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the quote cannot be parsed: %s", cvm_strerror(r));
	w = warm_find_chain(c, (int)q.tee, q.pck_chain_pem.p, q.pck_chain_pem.len);
	if (warm_hit(w, now)) {
		warm_info(c, w, now, info);
		*out = w->dv;
		return CVM_OK;
	}
	r = dcap_get(c, quote, len, now, 0, &coll, &got, digest, err, err_len);
	if (r != CVM_OK)
		return r;
	if (w != NULL && memcmp(w->items, digest, 32) == 0 && now >= w->checked_at && now <= w->until) {
		cvm_dcap_collateral_free(coll);
		w->checked_at = now;
		w->looked_ms = mono_ms();
		w->info = got;
		warm_info(c, w, now, info);
		*out = w->dv;
		return CVM_OK;
	}
	r = cvm_dcap_collateral_authenticate(coll, c->intel.der, c->intel.der_len, now, rep, &dv);
	cvm_dcap_collateral_free(coll);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the cached collateral does not verify: %s",
		                   rep != NULL && cvm_report_reason(rep) != NULL ? cvm_report_reason(rep)
		                                                                 : cvm_strerror(r));
	if (w == NULL) {
		chain = malloc(q.pck_chain_pem.len + 1); /* + 1: never malloc(0) */
		if (chain == NULL) {
			cvm_dcap_verified_free(dv);
			return CVM_E_NOMEM;
		}
		memcpy(chain, q.pck_chain_pem.p, q.pck_chain_pem.len);
		w = warm_slot(c);
		w->chain = chain;
		w->chain_len = q.pck_chain_pem.len;
		w->tee = (int)q.tee;
	}
	cvm_dcap_verified_free(w->dv);
	w->dv = dv;
	w->used = true;
	w->amd = false;
	memcpy(w->items, digest, 32);
	w->checked_at = now;
	w->looked_ms = mono_ms();
	w->until = got.expires;
	w->info = got;
	w->lru = ++c->lru;
	if (info != NULL)
		*info = got;
	*out = dv;
	return CVM_OK;
}

int cvm_cache_amd_warm(struct cvm_cache *c, const uint8_t *report, size_t len, enum cvm_snp_product product,
                       int64_t now, struct cvm_amd_verified **out, struct cvm_cache_info *info,
                       struct cvm_report *rep, char *err, size_t err_len)
{
	struct cvm_amd_collateral *coll = NULL;
	struct cvm_amd_verified *av = NULL;
	struct cvm_cache_need need;
	struct cvm_cache_info got;
	struct coll_warm *w;
	uint8_t key[32], digest[32];
	int r;

	if (out != NULL)
		*out = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (c == NULL || out == NULL || report == NULL)
		return CVM_E_INVAL;
	r = cvm_cache_need_report(report, len, product, &need, err, err_len);
	if (r != CVM_OK)
		return r;
	if (need.keys[0].kind != CVM_CACHE_VCEK)
		return cvm_err_set(
		    err, err_len, CVM_E_NOT_FOUND,
		    "the report is signed by a VLEK, which no upstream serves: use cvm_cache_amd "
		    "with the VLEK");
	{
		uint8_t buf[64 + 8 + 2];

		memcpy(buf, need.keys[0].hwid, 64);
		for (size_t i = 0; i < 8; i++)
			buf[64 + i] = (uint8_t)(need.keys[0].tcb >> (8 * i));
		buf[72] = (uint8_t)need.keys[0].product;
		buf[73] = (uint8_t)need.keys[0].hwid_len;
		cvm_sha256(buf, sizeof(buf), key);
	}
	w = warm_find(c, key);
	if (warm_hit(w, now)) {
		warm_info(c, w, now, info);
		*out = w->av;
		return CVM_OK;
	}
	r = amd_get(c, report, len, product, NULL, 0, now, 0, &coll, &got, digest, err, err_len);
	if (r != CVM_OK)
		return r;
	if (w != NULL && memcmp(w->items, digest, 32) == 0 && now >= w->checked_at && now <= w->until) {
		cvm_amd_collateral_free(coll);
		w->checked_at = now;
		w->looked_ms = mono_ms();
		w->info = got;
		warm_info(c, w, now, info);
		*out = w->av;
		return CVM_OK;
	}
	r = cvm_amd_chain_authenticate(coll, CVM_SNP_SIGNER_VCEK, c->amd.der, c->amd.der_len, now, rep, &av);
	cvm_amd_collateral_free(coll);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the cached collateral does not verify: %s",
		                   rep != NULL && cvm_report_reason(rep) != NULL ? cvm_report_reason(rep)
		                                                                 : cvm_strerror(r));
	if (w == NULL)
		w = warm_slot(c);
	cvm_amd_verified_free(w->av);
	w->av = av;
	w->used = true;
	w->amd = true;
	memcpy(w->key, key, 32);
	memcpy(w->items, digest, 32);
	w->checked_at = now;
	w->looked_ms = mono_ms();
	w->until = got.expires < cvm_amd_verified_vek(av)->valid_until
	               ? got.expires
	               : cvm_amd_verified_vek(av)->valid_until;
	w->info = got;
	w->lru = ++c->lru;
	if (info != NULL)
		*info = got;
	*out = av;
	return CVM_OK;
}
