/* The refresh pass (collateral.h: cvm_cache_refresh_due): what a background
 * refresher runs, so that the handles that serve verifications never wait
 * on an upstream for an item they may still use. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/err.h>

#include "coll_int.h"
#include "core/core_lib.h"

#define REFRESH_KEYS_MAX 1024 /* items looked at in one pass */

struct due_list {
	const struct cvm_cache *c;
	int64_t now;
	struct cvm_cache_refresh *st;
	struct cvm_cache_key *keys;
	size_t count;
};

/* collect keeps the key of each item that is not current. */
static int collect(void *ctx, const struct cvm_cache_item *it)
{
	struct due_list *d = ctx;

	d->st->items++;
	if (coll_item_current(d->c, it, d->now))
		return 0;
	d->st->due++;
	if (d->now >= it->expires) {
		d->st->skipped++; /* nothing to keep serving: a request will fetch it */
		return 0;
	}
	if (it->key.kind == CVM_CACHE_PCK_CERTS && it->key.by_manifest) {
		/* the manifest is not kept: only cvm_cache_pck_certs, which
		 * is given it again, can fetch the list anew */
		d->st->skipped++;
		return 0;
	}
	if (d->count == REFRESH_KEYS_MAX)
		return 0; /* the next pass takes the rest */
	d->keys[d->count++] = it->key;
	return 0;
}

int cvm_cache_refresh_due(struct cvm_cache *c, int64_t now, struct cvm_cache_refresh *st, char *err,
                          size_t err_len)
{
	struct cvm_cache_refresh local;
	struct due_list d;
	int r;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (c == NULL || c->o.background_refresh)
		return cvm_err_set(err, err_len, CVM_E_INVAL,
		                   "the refresh pass needs a cache handle opened without background_refresh");
	memset(&d, 0, sizeof(d));
	d.c = c;
	d.now = now;
	d.st = st;
	d.keys = calloc(REFRESH_KEYS_MAX, sizeof(*d.keys));
	if (d.keys == NULL)
		return CVM_E_NOMEM;
	r = cvm_cache_list(c, collect, &d);
	if (r != CVM_OK) {
		free(d.keys);
		return cvm_err_set(err, err_len, r, "cannot list the cache %s: %s", c->dir, cvm_strerror(r));
	}
	for (size_t i = 0; i < d.count; i++) {
		const struct cvm_cache_key *k = &d.keys[i];
		const char *up = coll_key_is_amd(k->kind) ? c->amd_url : c->intel_url;
		struct cvm_cache_item *it = NULL;
		struct cvm_cache_info info;
		char why[256];

		if (up == NULL || c->o.offline) {
			st->skipped++;
			continue;
		}
		/* as a request would: one flight per item, the cached item kept
		 * when the upstream fails (source STALE, the reason in info) */
		r = cvm_cache_get(c, k, now, 0, &it, &info, why, sizeof(why));
		if (r == CVM_OK && info.source == CVM_CACHE_FROM_UPSTREAM) {
			st->refreshed++;
		} else if (r == CVM_OK && info.source == CVM_CACHE_FROM_DISK) {
			; /* another process refreshed it meanwhile */
		} else {
			st->failed++;
			if (err != NULL && err_len > 0)
				(void)cvm_err_set(err, err_len, r, "%s",
				                  r == CVM_OK ? info.upstream_err : why);
		}
		cvm_cache_item_free(it);
	}
	free(d.keys);
	return CVM_OK;
}
