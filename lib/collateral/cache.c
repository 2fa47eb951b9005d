/* The cache handle: open, get (current, refreshed, or stale), put, list,
 * and the assembly of what lib/dcap and lib/amd verify, cold and warm. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/quote.h>
#include <cvmkit/secret.h>

#include "coll_int.h"
#include "core/core_lib.h"

static char *dup_opt(const char *s, bool *bad)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*bad = true;
	return d;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n, bool *bad)
{
	uint8_t *d;

	if (p == NULL)
		return NULL;
	d = malloc(n != 0 ? n : 1);
	if (d == NULL)
		*bad = true;
	else
		memcpy(d, p, n);
	return d;
}

static int mkdir_at(int dfd, const char *name)
{
	struct stat st;

	if (mkdirat(dfd, name, 0755) == 0)
		return CVM_OK;
	if (errno == EEXIST && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return CVM_OK;
	return CVM_E_SYSTEM;
}

static bool base_ok(const char *url)
{
	size_t n;

	if (url == NULL)
		return true;
	n = strlen(url);
	return (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) && n < 512 &&
	       url[n - 1] != '/';
}

int cvm_cache_open(const struct cvm_cache_opts *o, struct cvm_cache **out, char *err, size_t err_len)
{
	struct cvm_cache *c = NULL;
	bool bad = false;
	int r;

	*out = NULL;
	if (o == NULL || o->dir == NULL || o->dir[0] == '\0')
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no cache directory given (opts.dir)");
	if (!base_ok(o->intel_url) || !base_ok(o->amd_url))
		return cvm_err_set(err, err_len, CVM_E_INVAL,
		                   "an upstream URL must start with http:// or https:// and end without '/' "
		                   "(e.g. https://api.trustedservices.intel.com)");
	if ((o->intel_root_der != NULL && o->intel_root_der_len == 0) ||
	    (o->amd_root_der != NULL && o->amd_root_der_len == 0))
		return cvm_err_set(err, err_len, CVM_E_INVAL, "a configured root has no bytes");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	c->dfd = -1;
	c->o = *o;
	c->dir = dup_opt(o->dir, &bad);
	c->intel_url = dup_opt(o->intel_url, &bad);
	c->amd_url = dup_opt(o->amd_url, &bad);
	c->api_key = dup_opt(o->intel_api_key, &bad);
	c->tls_ca_file = dup_opt(o->tls_ca_file, &bad);
	c->intel_root = dup_bytes(o->intel_root_der, o->intel_root_der_len, &bad);
	c->amd_root = dup_bytes(o->amd_root_der, o->amd_root_der_len, &bad);
	if (bad) {
		r = CVM_E_NOMEM;
		goto out;
	}
	/* The copies stand for the caller's strings from now on. */
	c->o.dir = c->dir;
	c->o.intel_url = c->intel_url;
	c->o.amd_url = c->amd_url;
	c->o.intel_api_key = c->api_key;
	c->o.tls_ca_file = c->tls_ca_file;
	c->o.intel_root_der = c->intel_root;
	c->o.amd_root_der = c->amd_root;
	c->o.intel_root_name = NULL;
	c->o.amd_root_name = NULL;
	c->o.connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 5000;
	c->o.timeout_ms = o->timeout_ms ? o->timeout_ms : 15000;
	c->o.retries = o->retries ? o->retries : 3;
	c->o.backoff_ms = o->backoff_ms ? o->backoff_ms : 250;
	c->o.backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 8000;
	c->o.retry_after_max_s = o->retry_after_max_s ? o->retry_after_max_s : 60;
	c->o.refresh_s = o->refresh_s ? o->refresh_s : 86400;
	c->o.refresh_ahead_s = o->refresh_ahead_s ? o->refresh_ahead_s : 7 * 86400;
	c->intel.der = c->intel_root;
	c->intel.der_len = o->intel_root_der_len;
	(void)snprintf(c->intel.name, sizeof(c->intel.name), "%s",
	               c->intel_root == NULL        ? "Intel SGX Root CA (built in)"
	               : o->intel_root_name != NULL ? o->intel_root_name
	                                            : "Intel root (configured)");
	c->amd.der = c->amd_root;
	c->amd.der_len = o->amd_root_der_len;
	(void)snprintf(c->amd.name, sizeof(c->amd.name), "%s",
	               c->amd_root == NULL        ? "AMD ARK (built in)"
	               : o->amd_root_name != NULL ? o->amd_root_name
	                                          : "AMD root (configured)");
	if (mkdir(c->dir, 0755) != 0 && errno != EEXIST) {
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot make the cache directory %s: %s", c->dir,
		                strerror(errno));
		goto out;
	}
	c->dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dfd < 0) {
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot open the cache directory %s: %s", c->dir,
		                strerror(errno));
		goto out;
	}
	if (mkdir_at(c->dfd, "items") != CVM_OK || mkdir_at(c->dfd, "locks") != CVM_OK) {
		r = cvm_err_set(
		    err, err_len, CVM_E_SYSTEM,
		    "cannot make items/ and locks/ in the cache directory %s: %s (is it writable?)", c->dir,
		    strerror(errno));
		goto out;
	}
	*out = c;
	c = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_cache_close(c);
	return r;
}

void cvm_cache_close(struct cvm_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < COLL_WARM_MAX; i++) {
		cvm_dcap_verified_free(c->warm[i].dv);
		cvm_amd_verified_free(c->warm[i].av);
		free(c->warm[i].chain);
	}
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	if (c->dfd >= 0)
		(void)close(c->dfd);
	free(c->dir);
	free(c->intel_url);
	free(c->amd_url);
	if (c->api_key != NULL)
		cvm_freezero(c->api_key, strlen(c->api_key));
	free(c->tls_ca_file);
	free(c->intel_root);
	free(c->amd_root);
	free(c);
}

static int source_rank(enum cvm_cache_source s)
{
	return s == CVM_CACHE_FROM_STALE      ? 3
	       : s == CVM_CACHE_FROM_UPSTREAM ? 2
	       : s == CVM_CACHE_FROM_DISK     ? 1
	                                      : 0;
}

void coll_info_add(struct cvm_cache_info *info, const struct cvm_cache_item *it, enum cvm_cache_source src,
                   int64_t now)
{
	int64_t age;

	if (info == NULL || it == NULL)
		return;
	age = now - it->fetched_at;
	if (info->items == 0 || age > info->age_s)
		info->age_s = age;
	if (info->items == 0 || it->expires < info->expires)
		info->expires = it->expires;
	info->items++;
	if (source_rank(src) > source_rank(info->source))
		info->source = src;
	(void)snprintf(info->anchor, sizeof(info->anchor), "%s", it->anchor);
}

bool coll_item_current(const struct cvm_cache *c, const struct cvm_cache_item *it, int64_t now)
{
	int64_t age = now - it->fetched_at;
	int64_t again = c->o.refresh_s < COLL_REFETCH_MIN_S ? (int64_t)c->o.refresh_s : COLL_REFETCH_MIN_S;

	if (now >= it->expires)
		return false;
	if (age < (int64_t)c->o.refresh_s && now < it->next_update - (int64_t)c->o.refresh_ahead_s)
		return true;
	/* Fetched moments ago (by the call this one waited for, another
	 * process or the refresher) and still close to its next update: the
	 * upstream had nothing newer, and asking it again at once would only
	 * load it (every waiter of a single flight would fetch again). */
	return age >= 0 && age < again;
}

static bool is_current(const struct cvm_cache *c, const struct cvm_cache_item *it, int64_t now)
{
	return coll_item_current(c, it, now);
}

static const char *upstream_of(const struct cvm_cache *c, enum cvm_cache_kind kind)
{
	return coll_key_is_amd(kind) ? c->amd_url : c->intel_url;
}

/* set_err_field copies `s` into a fixed field, cut to fit. */
static void set_err_field(char *dst, size_t cap, const char *s)
{
	size_t n = strnlen(s, cap - 1);

	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* fetch_verified fetches `k` from its upstream, verifies it and stores it. */
static int fetch_verified(struct cvm_cache *c, const struct cvm_cache_key *k, const char *name, int64_t now,
                          unsigned flags, struct cvm_cache_item **out, char *err, size_t err_len)
{
	struct coll_resp rs;
	struct cvm_cache_item *it = NULL;
	char url[COLL_URL_MAX];
	int r;

	*out = NULL;
	if (k->kind == CVM_CACHE_PCK_CERTS && k->by_manifest && c->post_body == NULL)
		return cvm_err_set(err, err_len, CVM_E_NOT_FOUND,
		                   "%s is fetched by its platform manifest, which this call does not have "
		                   "(cvm_cache_pck_certs; cvm collateral fetch --platform-manifest)",
		                   name);
	r = cvm_cache_key_url(k, upstream_of(c, k->kind), url, sizeof(url));
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "cannot make the URL of %s", name);
	if (c->o.progress != NULL)
		c->o.progress(c->o.progress_ctx, 0, 1, name);
	r = coll_fetch(c, k, url, &rs, err, err_len);
	if (r != CVM_OK)
		return r;
	it = calloc(1, sizeof(*it));
	if (it == NULL) {
		coll_resp_cleanup(&rs);
		return CVM_E_NOMEM;
	}
	it->key = *k;
	it->body = rs.body;
	it->body_len = rs.body_len;
	it->issuer_chain = rs.chain;
	it->issuer_chain_len = rs.chain_len;
	rs.body = NULL;
	rs.chain = NULL; /* transferred */
	memcpy(it->tcbm, rs.tcbm, sizeof(it->tcbm));
	memcpy(it->fmspc, rs.fmspc, sizeof(it->fmspc));
	memcpy(it->ca_type, rs.ca_type, sizeof(it->ca_type));
	set_err_field(it->source, sizeof(it->source), url); /* a PCK cert URL is cut */
	it->fetched_at = now;
	coll_resp_cleanup(&rs);
	r = coll_verify(c, it, now, flags, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = coll_store_write(c, it, err, err_len);
	if (r != CVM_OK)
		goto out;
	if (c->o.progress != NULL)
		c->o.progress(c->o.progress_ctx, 1, 1, name);
	*out = it;
	it = NULL; /* transferred */
out:
	cvm_cache_item_free(it);
	return r;
}

int cvm_cache_get(struct cvm_cache *c, const struct cvm_cache_key *k, int64_t now, unsigned flags,
                  struct cvm_cache_item **out, struct cvm_cache_info *info, char *err, size_t err_len)
{
	struct cvm_cache_item *cached = NULL, *fresh = NULL, *got = NULL;
	char name[COLL_NAME_MAX], why[256] = "";
	const char *up;
	enum cvm_cache_source src = CVM_CACHE_FROM_DISK;
	int lock = -1, r;

	if (out != NULL)
		*out = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (c == NULL || out == NULL || cvm_cache_key_name(k, name, sizeof(name)) != CVM_OK)
		return cvm_err_set(err, err_len, CVM_E_INVAL,
		                   "no cache handle, no output or a key that names no item");
	up = upstream_of(c, k->kind);
	if (info != NULL && up != NULL)
		set_err_field(info->upstream, sizeof(info->upstream), up);
	r = coll_store_read(c, k, &cached);
	if (r != CVM_OK)
		cached = NULL; /* absent, or unreadable: as if not cached */
	if (cached != NULL && (flags & CVM_CACHE_REFRESH) == 0 && is_current(c, cached, now)) {
		got = cached;
		cached = NULL;
		goto done;
	}
	/* A refresher keeps the items current: a call never waits on an
	 * upstream for an item it may still use. */
	if (cached != NULL && (flags & CVM_CACHE_REFRESH) == 0 && c->o.background_refresh &&
	    now < cached->expires) {
		got = cached;
		cached = NULL;
		goto done;
	}
	if (c->o.offline || (flags & CVM_CACHE_NO_FETCH) != 0 || up == NULL) {
		if (cached != NULL && now < cached->expires) {
			got = cached; /* nothing better can be had: served as cached */
			cached = NULL;
			goto done;
		}
		if (cached != NULL)
			r = cvm_err_set(
			    err, err_len, CVM_E_EXPIRED,
			    "%s is cached but expired, and %s: refresh the cache (cvm collateral fetch) or "
			    "import a newer bundle",
			    name, up == NULL ? "no upstream is configured" : "fetching is off");
		else
			r = cvm_err_set(err, err_len, CVM_E_NOT_FOUND, "%s is not cached and %s", name,
			                up == NULL ? "no upstream is configured" : "fetching is off");
		goto out;
	}
	/* One fetch per item: whoever holds the lock fetches; the others find
	 * its result when they get the lock. */
	lock = coll_store_lock(c, k);
	if (lock < 0) {
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot lock %s in %s: %s", name, c->dir,
		                strerror(errno));
		goto out;
	}
	if (coll_store_read(c, k, &fresh) == CVM_OK && is_current(c, fresh, now) &&
	    ((flags & CVM_CACHE_REFRESH) == 0 || cached == NULL || fresh->fetched_at != cached->fetched_at ||
	     fresh->body_len != cached->body_len)) {
		src = cached == NULL || fresh->fetched_at != cached->fetched_at ? CVM_CACHE_FROM_UPSTREAM
		                                                                : CVM_CACHE_FROM_DISK;
		got = fresh;
		fresh = NULL;
		goto done;
	}
	if (fresh != NULL) {
		cvm_cache_item_free(cached);
		cached = fresh; /* the newest record, for the stale path */
		fresh = NULL;
	}
	r = fetch_verified(c, k, name, now, flags, &got, why, sizeof(why));
	if (r == CVM_OK) {
		src = CVM_CACHE_FROM_UPSTREAM;
		if (info != NULL)
			info->fetched++;
		goto done;
	}
	if (cached != NULL && now < cached->expires) {
		if (info != NULL)
			set_err_field(info->upstream_err, sizeof(info->upstream_err), why);
		got = cached;
		cached = NULL;
		src = CVM_CACHE_FROM_STALE;
		goto done;
	}
	r = cvm_err_set(err, err_len, r, "%s%s", why,
	                cached != NULL ? " (and the cached item has expired)" : "");
	goto out;
done:
	coll_info_add(info, got, src, now);
	*out = got;
	got = NULL; /* transferred */
	r = CVM_OK;
out:
	coll_store_unlock(lock);
	cvm_cache_item_free(got);
	cvm_cache_item_free(fresh);
	cvm_cache_item_free(cached);
	return r;
}

int cvm_cache_put(struct cvm_cache *c, const struct cvm_cache_item *it, int64_t now, char *err,
                  size_t err_len)
{
	struct cvm_cache_item *copy = NULL;
	int lock = -1, r;

	if (c == NULL || it == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no cache handle or no item");
	r = coll_item_dup(it, &copy);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the item is malformed: %s", cvm_strerror(r));
	r = coll_verify(c, copy, now, CVM_CACHE_NO_FETCH, err, err_len);
	if (r != CVM_OK)
		goto out;
	lock = coll_store_lock(c, &copy->key);
	if (lock < 0) {
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot lock the item in %s", c->dir);
		goto out;
	}
	r = coll_store_write(c, copy, err, err_len);
out:
	coll_store_unlock(lock);
	cvm_cache_item_free(copy);
	return r;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int cvm_cache_list(struct cvm_cache *c, cvm_cache_list_fn fn, void *ctx)
{
	struct dirent **names = NULL;
	char file[COLL_NAME_MAX + 8];
	int n, r = CVM_OK, fd;

	if (c == NULL || fn == NULL)
		return CVM_E_INVAL;
	fd = openat(c->dfd, "items", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return CVM_E_SYSTEM;
	(void)close(fd);
	{
		char path[4096];

		(void)snprintf(path, sizeof(path), "%s/items", c->dir);
		n = scandir(path, &names, visible, name_cmp);
	}
	if (n < 0)
		return CVM_E_SYSTEM;
	for (int i = 0; i < n; i++) {
		struct cvm_cache_item *it = NULL;

		if (r == CVM_OK && strlen(names[i]->d_name) < COLL_NAME_MAX) {
			(void)snprintf(file, sizeof(file), "items/%s", names[i]->d_name);
			if (coll_store_read_file(c, file, &it) == CVM_OK)
				r = fn(ctx, it);
			cvm_cache_item_free(it);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int cvm_cache_pck_certs(struct cvm_cache *c, const uint8_t *manifest, size_t manifest_len,
                        const uint8_t *enc_ppid, size_t enc_ppid_len, const uint8_t pceid[2], int64_t now,
                        unsigned flags, struct cvm_cache_key *key, struct cvm_cache_item **out,
                        struct cvm_cache_info *info, char *err, size_t err_len)
{
	struct cvm_cache_key k;
	struct cvm_wr w;
	uint8_t *body = NULL;
	size_t body_len = 0;
	int r;

	if (out != NULL)
		*out = NULL;
	if (key != NULL)
		cvm_cache_key_init(key, CVM_CACHE_NONE);
	if (c == NULL || out == NULL || pceid == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no cache handle, output or PCE ID");
	cvm_cache_key_init(&k, CVM_CACHE_PCK_CERTS);
	memcpy(k.pceid, pceid, sizeof(k.pceid));
	if (manifest != NULL) {
		if (manifest_len == 0 || manifest_len > CVM_CACHE_MANIFEST_MAX)
			return cvm_err_set(err, err_len, manifest_len == 0 ? CVM_E_INVAL : CVM_E_TOO_LARGE,
			                   "the platform manifest has %zu bytes (1 to %zu allowed)",
			                   manifest_len, CVM_CACHE_MANIFEST_MAX);
		k.by_manifest = true;
		cvm_sha256(manifest, manifest_len, k.manifest_hash);
		/* {"platformManifest": HEX, "pceid": HEX}, as Intel's PCS takes it */
		cvm_wr_init(&w, 2 * manifest_len + 64);
		cvm_wr_str(&w, "{\"platformManifest\":\"");
		for (size_t i = 0; i < manifest_len; i++) {
			static const char up[] = "0123456789ABCDEF";
			char two[2] = {up[manifest[i] >> 4], up[manifest[i] & 15]};

			cvm_wr_bytes(&w, two, sizeof(two));
		}
		cvm_wr_fmt(&w, "\",\"pceid\":\"%02X%02X\"}", pceid[0], pceid[1]);
		r = cvm_wr_finish(&w, &body, &body_len);
		if (r != CVM_OK)
			return r;
	} else {
		if (enc_ppid == NULL || enc_ppid_len != CVM_CACHE_PPID_MAX)
			return cvm_err_set(err, err_len, CVM_E_INVAL,
			                   "give a platform manifest or a %u-byte encrypted PPID",
			                   (unsigned)CVM_CACHE_PPID_MAX);
		memcpy(k.enc_ppid, enc_ppid, enc_ppid_len);
		k.enc_ppid_len = enc_ppid_len;
	}
	if (key != NULL)
		*key = k;
	c->post_body = (const char *)body;
	c->post_len = body_len;
	r = cvm_cache_get(c, &k, now, flags, out, info, err, err_len);
	c->post_body = NULL;
	c->post_len = 0;
	free(body);
	return r;
}
