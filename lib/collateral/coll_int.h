/* Internal interfaces of lib/collateral: between key.c (names, URLs),
 * item.c (the on-disk item and bundle record format), store.c (the cache
 * directory, locks, atomic writes), fetch.c (libcurl), verify.c (verify
 * before store), cache.c (get, put, assembly, warm path), need.c and
 * bundle.c. Not part of the public API. */
#ifndef CVM_COLLATERAL_COLL_INT_H
#define CVM_COLLATERAL_COLL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/collateral.h>

#define COLL_NAME_MAX 256                            /* an item's name ("amd/vcek/Turin/<16 hex>/<16 hex>") */
#define COLL_URL_MAX 2048                            /* an encrypted PPID is 768 hex digits */
#define COLL_CHAIN_MAX ((size_t)64 * 1024)           /* a PEM issuer chain (in a header, URL-encoded: 3x) */
#define COLL_HEADER_MAX ((size_t)3 * COLL_CHAIN_MAX) /* one response header line */
#define COLL_ITEM_MAX ((size_t)5 * 1024 * 1024)      /* one item record: body cap + chain + metadata */
#define COLL_BUNDLE_ITEMS_MAX 4096
#define COLL_WARM_MAX 8 /* warm verified collateral kept per handle */
/* A pckcerts answer: CVM_CACHE_PCK_CERTS_MAX entries of a URL-encoded PEM
 * certificate (about 4 KiB each) and its TCB. */
#define COLL_PCK_CERTS_BODY_MAX ((size_t)2 * 1024 * 1024)

/* The anchor a handle verifies against for one vendor. */
struct coll_anchor {
	const uint8_t *der; /* NULL: built in */
	size_t der_len;
	char name[96];
};

struct coll_warm {
	bool used;
	bool amd;
	uint8_t key[32];   /* AMD: SHA-256 of the report's chip identity, TCB and product */
	uint8_t *chain;    /* DCAP: the PCK chain as the quotes carry it, compared byte for byte */
	size_t chain_len;  /* (hashing it was a tenth of a warm lookup) */
	int tee;           /* DCAP: the quotes' TEE */
	uint8_t items[32]; /* SHA-256 over the bodies and chains of the items it was made from */
	struct cvm_dcap_verified *dv;
	struct cvm_amd_verified *av;
	struct cvm_cache_info info;
	int64_t checked_at; /* when the items were last looked at (verification time) */
	int64_t looked_ms;  /* ... and then by the monotonic clock: looked at again after a
	                       second of real time, even when verifications use a fixed time */
	int64_t until;      /* the verified window's end */
	uint64_t lru;
};

struct cvm_cache {
	char *dir;
	int dfd; /* the cache directory */
	struct cvm_cache_opts o;
	char *intel_url, *amd_url, *api_key, *tls_ca_file;
	uint8_t *intel_root, *amd_root;
	struct coll_anchor intel, amd;
	void *curl; /* CURL *, made on first use */
	struct coll_warm warm[COLL_WARM_MAX];
	/* During an import: the items being imported, which the others verify
	 * against (a VCEK against its chain) before anything is stored. */
	struct cvm_cache_item **pending;
	size_t pending_count;
	/* During cvm_cache_pck_certs: the POST body of a fetch by platform
	 * manifest, for the key whose manifest_hash it hashes to. */
	const char *post_body;
	size_t post_len;
	uint64_t lru;
};

/* COLL_REFETCH_MIN_S: an item fetched less than this ago (or than
 * refresh_s, when shorter) counts as current, however close to its next
 * update: the upstream had nothing newer a moment ago. */
#define COLL_REFETCH_MIN_S 300
/* coll_item_current: unexpired, and young enough and not close to its next
 * update (or fetched moments ago). cache.c */
bool coll_item_current(const struct cvm_cache *c, const struct cvm_cache_item *it, int64_t now);

/* key.c */
bool coll_key_valid(const struct cvm_cache_key *k);
/* coll_key_body_max is the body cap of `k`'s kind. */
size_t coll_key_body_max(enum cvm_cache_kind kind);
bool coll_key_is_amd(enum cvm_cache_kind kind);
/* coll_key_file writes the file name of `k` in the items folder (its name
 * with '/' as '+'). */
CVM_MUST_CHECK int coll_key_file(const struct cvm_cache_key *k, char *buf, size_t cap);

/* item.c: an item record (docs/collateral.md) */
CVM_MUST_CHECK int coll_item_encode(const struct cvm_cache_item *it, uint8_t **out, size_t *out_len);
/* coll_item_decode parses exactly `len` bytes into a new item. */
CVM_MUST_CHECK int coll_item_decode(const uint8_t *buf, size_t len, struct cvm_cache_item **out);
CVM_MUST_CHECK int coll_item_dup(const struct cvm_cache_item *it, struct cvm_cache_item **out);

/* bundle.c: a set of items (the items of a bundle or a folder). */
struct coll_set {
	struct cvm_cache_item *items[COLL_BUNDLE_ITEMS_MAX];
	size_t count;
};
/* coll_bundle_parse splits the bundle `buf` into the items of `s` (a
 * zeroed set; on error it may hold the items parsed so far). */
CVM_MUST_CHECK int coll_bundle_parse(const uint8_t *buf, size_t len, struct coll_set *s, char *err,
                                     size_t err_len);
void coll_set_free(struct coll_set *s);

/* store.c */
CVM_MUST_CHECK int coll_store_read(struct cvm_cache *c, const struct cvm_cache_key *k,
                                   struct cvm_cache_item **out);
/* coll_store_read_file reads the record `file` (relative to the cache
 * directory). */
CVM_MUST_CHECK int coll_store_read_file(struct cvm_cache *c, const char *file, struct cvm_cache_item **out);
CVM_MUST_CHECK int coll_store_write(struct cvm_cache *c, const struct cvm_cache_item *it, char *err,
                                    size_t err_len);
/* coll_store_lock takes the item's lock file (flock, exclusive, waiting);
 * returns the descriptor or a negative CVM_E_*. */
int coll_store_lock(struct cvm_cache *c, const struct cvm_cache_key *k);
void coll_store_unlock(int fd);

/* fetch.c */
struct coll_resp {
	uint8_t *body;
	size_t body_len;
	char *chain; /* URL-decoded issuer chain header, NUL-terminated */
	size_t chain_len;
	char tcbm[64], fmspc[13], ca_type[16];
};
void coll_resp_cleanup(struct coll_resp *rs);
/* coll_fetch gets `url` with the handle's timeouts and retries into `rs`.
 * Returns 0, CVM_E_NOT_FOUND (404), CVM_E_UPSTREAM, CVM_E_TOO_LARGE,
 * CVM_E_NOMEM; `err` says why. */
CVM_MUST_CHECK int coll_fetch(struct cvm_cache *c, const struct cvm_cache_key *k, const char *url,
                              struct coll_resp *rs, char *err, size_t err_len);
/* coll_retry_after parses a Retry-After value (seconds or an HTTP-date) to
 * seconds from `now`; -1 if malformed. */
long coll_retry_after(const char *v, int64_t now);
/* coll_url_decode decodes %XX escapes of `in` into `out` (cap bytes with
 * the NUL); false on a malformed escape, a NUL byte or no room. */
bool coll_url_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len);

/* verify.c: verifies `it` (key, body, chain) at `now` against the
 * handle's anchor and fills its dates and anchor. */
CVM_MUST_CHECK int coll_verify(struct cvm_cache *c, struct cvm_cache_item *it, int64_t now, unsigned flags,
                               char *err, size_t err_len);

/* coll_pending_find returns the pending item named like `k`, or NULL. */
const struct cvm_cache_item *coll_pending_find(const struct cvm_cache *c, const struct cvm_cache_key *k);

/* pckcerts.c: a pckcerts answer, parsed (certificates URL-decoded). */
struct coll_pck_entry {
	uint8_t tcb_svn[16];
	uint16_t pcesvn;
	uint8_t tcbm[18];  /* CPUSVN, PCESVN little-endian */
	char tcbm_hex[37]; /* as sent */
	char *pem;         /* NULL: "Not available" */
	size_t pem_len;
};
struct coll_pck_list {
	size_t count, available;
	struct coll_pck_entry e[CVM_CACHE_PCK_CERTS_MAX];
};
/* coll_pck_list_parse checks the structure of a pckcerts answer (sizes
 * first, then jansson) and makes a new list. It verifies nothing. */
CVM_MUST_CHECK int coll_pck_list_parse(const uint8_t *body, size_t len, struct coll_pck_list **out, char *err,
                                       size_t err_len);
void coll_pck_list_free(struct coll_pck_list *l);
/* coll_pck_certs_verify verifies every certificate of the pckcerts item
 * `it` by lib/dcap's PCK certificate check and compares its SGX extension
 * with the answer's headers, the key's PCE ID and the TCB it is listed
 * under; fills its dates and anchor. */
CVM_MUST_CHECK int coll_pck_certs_verify(struct cvm_cache *c, struct cvm_cache_item *it,
                                         const uint8_t *root_crl, size_t root_crl_len, int64_t now,
                                         const char *name, char *err, size_t err_len);

/* cache.c */
void coll_info_add(struct cvm_cache_info *info, const struct cvm_cache_item *it, enum cvm_cache_source src,
                   int64_t now);

#endif
