/* Placeholder bodies for include/cvmkit/collateral.h; the implementation
 * replaces this file. */
#include <string.h>

#include <cvmkit/collateral.h>
#include <cvmkit/err.h>

void cvm_cache_key_init(struct cvm_cache_key *k, enum cvm_cache_kind kind)
{
	memset(k, 0, sizeof(*k));
	k->kind = kind;
}

int cvm_cache_key_name(const struct cvm_cache_key *k, char *buf, size_t cap)
{
	(void)k, (void)buf, (void)cap;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_key_url(const struct cvm_cache_key *k, const char *base, char *buf, size_t cap)
{
	(void)k, (void)base, (void)buf, (void)cap;
	return CVM_E_UNSUPPORTED;
}

void cvm_cache_item_free(struct cvm_cache_item *it)
{
	(void)it;
}

const char *cvm_cache_source_name(enum cvm_cache_source s)
{
	(void)s;
	return "none";
}

int cvm_cache_open(const struct cvm_cache_opts *o, struct cvm_cache **out, char *err, size_t err_len)
{
	(void)o, (void)out, (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}

void cvm_cache_close(struct cvm_cache *c)
{
	(void)c;
}

int cvm_cache_get(struct cvm_cache *c, const struct cvm_cache_key *k, int64_t now, unsigned flags,
                  struct cvm_cache_item **out, struct cvm_cache_info *info, char *err, size_t err_len)
{
	(void)c, (void)k, (void)now, (void)flags, (void)out, (void)info, (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_put(struct cvm_cache *c, const struct cvm_cache_item *it, int64_t now, char *err,
                  size_t err_len)
{
	(void)c, (void)it, (void)now, (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_need_quote(const uint8_t *quote, size_t len, struct cvm_cache_need *out, char *err,
                         size_t err_len)
{
	(void)quote, (void)len, (void)out, (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_need_report(const uint8_t *report, size_t len, enum cvm_snp_product product,
                          struct cvm_cache_need *out, char *err, size_t err_len)
{
	(void)report, (void)len, (void)product, (void)out, (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_dcap(struct cvm_cache *c, const uint8_t *quote, size_t len, int64_t now, unsigned flags,
                   struct cvm_dcap_collateral **out, struct cvm_cache_info *info, char *err, size_t err_len)
{
	(void)c, (void)quote, (void)len, (void)now, (void)flags, (void)out, (void)info, (void)err,
	    (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_amd(struct cvm_cache *c, const uint8_t *report, size_t len, enum cvm_snp_product product,
                  const uint8_t *vlek, size_t vlek_len, int64_t now, unsigned flags,
                  struct cvm_amd_collateral **out, struct cvm_cache_info *info, char *err, size_t err_len)
{
	(void)c, (void)report, (void)len, (void)product, (void)vlek, (void)vlek_len, (void)now, (void)flags,
	    (void)out, (void)info, (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_dcap_warm(struct cvm_cache *c, const uint8_t *quote, size_t len, int64_t now,
                        struct cvm_dcap_verified **out, struct cvm_cache_info *info, struct cvm_report *rep,
                        char *err, size_t err_len)
{
	(void)c, (void)quote, (void)len, (void)now, (void)out, (void)info, (void)rep, (void)err,
	    (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_amd_warm(struct cvm_cache *c, const uint8_t *report, size_t len, enum cvm_snp_product product,
                       int64_t now, struct cvm_amd_verified **out, struct cvm_cache_info *info,
                       struct cvm_report *rep, char *err, size_t err_len)
{
	(void)c, (void)report, (void)len, (void)product, (void)now, (void)out, (void)info, (void)rep,
	    (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_list(struct cvm_cache *c, cvm_cache_list_fn fn, void *ctx)
{
	(void)c, (void)fn, (void)ctx;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_pack(struct cvm_cache *c, const char *path, int64_t now, size_t *count, char *err,
                   size_t err_len)
{
	(void)c, (void)path, (void)now, (void)count, (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_cache_import(struct cvm_cache *c, const char *path, int64_t now, size_t *count, char *err,
                     size_t err_len)
{
	(void)c, (void)path, (void)now, (void)count, (void)err, (void)err_len;
	return CVM_E_UNSUPPORTED;
}
