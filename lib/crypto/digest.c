/* Message digests by TPM algorithm ID, through OpenSSL. Each EVP algorithm is
 * fetched from the provider once and kept for the life of the process:
 * implicit fetches on every EVP_DigestInit cost more than hashing a PCR
 * extend's 64 or 96 bytes.
 *
 * The incremental contexts of SHA-1 and the SHA-2 family use OpenSSL's
 * low-level SHA*_Init/Update/Final (deprecated in 3.0, still shipped and
 * tested there). OpenSSL 3.0's EVP_DigestInit_ex frees and allocates the
 * provider context for every message, which is most of the cost of hashing a
 * 100-byte IMA template or a PCR extend: replaying an IMA list went from
 * 4.7x to about 7x evmctl's speed with this. SM3 stays on EVP. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cvmkit/secret.h>

#include "crypto_int.h"

struct digest_desc {
	uint16_t alg;
	size_t len;
	const char *name; /* cvmkit's (and tpm2-tools') name */
	const char *ossl; /* OpenSSL's fetch name */
	EVP_MD *md;       /* fetched once, never freed */
};

static struct digest_desc digests[] = {
    {CVM_DIGEST_SHA1, 20, "sha1", "SHA1", NULL},       {CVM_DIGEST_SHA256, 32, "sha256", "SHA256", NULL},
    {CVM_DIGEST_SHA384, 48, "sha384", "SHA384", NULL}, {CVM_DIGEST_SHA512, 64, "sha512", "SHA512", NULL},
    {CVM_DIGEST_SM3_256, 32, "sm3_256", "SM3", NULL},
};

struct cvm_digest_ctx {
	struct digest_desc *d;
	EVP_MD_CTX *mctx; /* SM3 only */
	union {
		SHA_CTX sha1;
		SHA256_CTX sha256;
		SHA512_CTX sha512; /* also SHA-384 */
	} s;
	bool fresh; /* no bytes added since the last (re)start */
};

/* ll_init starts a low-level context; false for SM3 (EVP). */
static bool ll_init(struct cvm_digest_ctx *ctx)
{
	switch (ctx->d->alg) {
	case CVM_DIGEST_SHA1:
		return SHA1_Init(&ctx->s.sha1) == 1;
	case CVM_DIGEST_SHA256:
		return SHA256_Init(&ctx->s.sha256) == 1;
	case CVM_DIGEST_SHA384:
		return SHA384_Init(&ctx->s.sha512) == 1;
	case CVM_DIGEST_SHA512:
		return SHA512_Init(&ctx->s.sha512) == 1;
	default:
		return false;
	}
}

static bool is_ll(const struct cvm_digest_ctx *ctx)
{
	return ctx->mctx == NULL;
}

static struct digest_desc *desc_of(uint16_t alg)
{
	for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++)
		if (digests[i].alg == alg)
			return &digests[i];
	return NULL;
}

/* desc_md returns the fetched EVP_MD of `d`, fetching it on first use. */
static const EVP_MD *desc_md(struct digest_desc *d)
{
	EVP_MD *md = __atomic_load_n(&d->md, __ATOMIC_ACQUIRE);
	EVP_MD *expected = NULL;

	if (md != NULL)
		return md;
	md = EVP_MD_fetch(NULL, d->ossl, NULL);
	if (md == NULL)
		return NULL;
	/* First caller wins; a racing second one frees its copy. */
	if (!__atomic_compare_exchange_n(&d->md, &expected, md, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		EVP_MD_free(md);
		md = expected;
	}
	return md;
}

size_t cvm_digest_len(uint16_t alg)
{
	const struct digest_desc *d = desc_of(alg);

	return d == NULL ? 0 : d->len;
}

const char *cvm_digest_name(uint16_t alg)
{
	const struct digest_desc *d = desc_of(alg);

	return d == NULL ? NULL : d->name;
}

int cvm_digest_from_name(const char *name, enum cvm_digest_alg *out)
{
	*out = CVM_DIGEST_SHA256;
	if (name == NULL)
		return CVM_E_UNSUPPORTED;
	if (strcasecmp(name, "sm3") == 0) {
		*out = CVM_DIGEST_SM3_256;
		return CVM_OK;
	}
	for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
		if (strcasecmp(name, digests[i].name) == 0) {
			*out = (enum cvm_digest_alg)digests[i].alg;
			return CVM_OK;
		}
	}
	return CVM_E_UNSUPPORTED;
}

int cvm_digest(uint16_t alg, const void *p, size_t n, uint8_t *out, size_t out_len)
{
	struct digest_desc *d = desc_of(alg);
	const EVP_MD *md;
	unsigned int len = 0;

	if (out != NULL)
		memset(out, 0, out_len);
	if (d == NULL)
		return CVM_E_UNSUPPORTED;
	if (out_len < d->len)
		return CVM_E_INVAL;
	md = desc_md(d);
	if (md == NULL)
		return CVM_E_CRYPTO;
	if (EVP_Digest(p, n, out, &len, md, NULL) != 1 || len != d->len)
		return CVM_E_CRYPTO;
	return CVM_OK;
}

int cvm_digest_ctx_new(uint16_t alg, struct cvm_digest_ctx **out)
{
	struct cvm_digest_ctx *ctx = NULL;
	struct digest_desc *d = desc_of(alg);
	const EVP_MD *md;
	int r;

	*out = NULL;
	if (d == NULL)
		return CVM_E_UNSUPPORTED;
	md = desc_md(d);
	if (md == NULL)
		return CVM_E_CRYPTO;
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return CVM_E_NOMEM;
	ctx->d = d;
	if (!ll_init(ctx)) {
		ctx->mctx = EVP_MD_CTX_new();
		if (ctx->mctx == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		if (EVP_DigestInit_ex(ctx->mctx, md, NULL) != 1) {
			r = CVM_E_CRYPTO;
			goto out;
		}
	}
	ctx->fresh = true;
	*out = ctx;
	ctx = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_digest_ctx_free(ctx);
	return r;
}

void cvm_digest_ctx_free(struct cvm_digest_ctx *ctx)
{
	if (ctx == NULL)
		return;
	EVP_MD_CTX_free(ctx->mctx);
	cvm_wipe(&ctx->s, sizeof(ctx->s));
	free(ctx);
}

enum cvm_digest_alg cvm_digest_ctx_alg(const struct cvm_digest_ctx *ctx)
{
	return (enum cvm_digest_alg)ctx->d->alg;
}

int cvm_digest_update(struct cvm_digest_ctx *ctx, const void *p, size_t n)
{
	if (n == 0)
		return CVM_OK;
	ctx->fresh = false;
	if (is_ll(ctx)) {
		int ok;

		switch (ctx->d->alg) {
		case CVM_DIGEST_SHA1:
			ok = SHA1_Update(&ctx->s.sha1, p, n);
			break;
		case CVM_DIGEST_SHA256:
			ok = SHA256_Update(&ctx->s.sha256, p, n);
			break;
		default: /* SHA-384 and SHA-512 share the update */
			ok = SHA512_Update(&ctx->s.sha512, p, n);
			break;
		}
		return ok == 1 ? CVM_OK : CVM_E_CRYPTO;
	}
	if (EVP_DigestUpdate(ctx->mctx, p, n) != 1)
		return CVM_E_CRYPTO;
	return CVM_OK;
}

/* restart begins a new message with the same (already fetched) algorithm;
 * OpenSSL keeps the provider context, so this is cheap. */
static int restart(struct cvm_digest_ctx *ctx)
{
	if (is_ll(ctx)) {
		if (!ll_init(ctx))
			return CVM_E_CRYPTO;
	} else if (EVP_DigestInit_ex(ctx->mctx, ctx->d->md, NULL) != 1) {
		return CVM_E_CRYPTO;
	}
	ctx->fresh = true;
	return CVM_OK;
}

int cvm_digest_final(struct cvm_digest_ctx *ctx, uint8_t *out, size_t out_len)
{
	unsigned int len = 0;
	int r;

	if (out_len < ctx->d->len)
		return CVM_E_INVAL;
	if (is_ll(ctx)) {
		int ok;

		switch (ctx->d->alg) {
		case CVM_DIGEST_SHA1:
			ok = SHA1_Final(out, &ctx->s.sha1);
			break;
		case CVM_DIGEST_SHA256:
			ok = SHA256_Final(out, &ctx->s.sha256);
			break;
		case CVM_DIGEST_SHA384:
			ok = SHA384_Final(out, &ctx->s.sha512);
			break;
		default:
			ok = SHA512_Final(out, &ctx->s.sha512);
			break;
		}
		r = restart(ctx);
		return ok == 1 ? r : CVM_E_CRYPTO;
	}
	if (EVP_DigestFinal_ex(ctx->mctx, out, &len) != 1 || len != ctx->d->len) {
		(void)restart(ctx);
		return CVM_E_CRYPTO;
	}
	r = restart(ctx);
	return r;
}

int cvm_digest_extend(struct cvm_digest_ctx *ctx, uint8_t *reg, const uint8_t *digest)
{
	uint8_t buf[2 * CVM_DIGEST_MAX];
	size_t n = ctx->d->len;
	int r;

	/* Copy first so that reg and digest may alias, and hash in one update. */
	memcpy(buf, reg, n);
	memcpy(buf + n, digest, n);
	if (!ctx->fresh) {
		r = restart(ctx);
		if (r != CVM_OK)
			return r;
	}
	r = cvm_digest_update(ctx, buf, 2 * n);
	if (r != CVM_OK)
		return r;
	return cvm_digest_final(ctx, reg, n);
}
