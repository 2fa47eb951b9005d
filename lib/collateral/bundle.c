/* Offline bundles (docs/collateral.md, "Bundle"): pack every unexpired
 * item into one file; import a bundle or a vectors-layout folder,
 * verifying every item at the given time against the handle's anchors,
 * and store all of them or none. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/amd.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/report.h>

#include "coll_int.h"
#include "core/core_lib.h"

static const uint8_t bundle_magic[8] = {'C', 'V', 'M', 'B', 'N', 'D', 'L', 0};
#define BUNDLE_VERSION 1u
#define BUNDLE_MAX ((size_t)256 * 1024 * 1024)
/* A bundle ends in the SHA-256 of all its other bytes: it detects a damaged
 * copy (a bit flip in transfer, a truncated file) before anything is read,
 * including the metadata (source, fetched_at) that no vendor signs. It is
 * no trust mechanism: anyone can recompute it, and every item is verified
 * by the vendors' signatures anyway. */
#define BUNDLE_DIGEST_LEN 32u

struct pack_ctx {
	struct cvm_wr w;
	int64_t now;
	size_t count;
	int r;
};

static int pack_one(void *ctx, const struct cvm_cache_item *it)
{
	struct pack_ctx *p = ctx;
	uint8_t *rec = NULL;
	size_t len = 0;

	if (p->now >= it->expires)
		return 0; /* expired items are not worth carrying */
	p->r = coll_item_encode(it, &rec, &len);
	if (p->r != CVM_OK)
		return 1;
	if (p->count >= COLL_BUNDLE_ITEMS_MAX) {
		free(rec);
		p->r = CVM_E_TOO_LARGE;
		return 1;
	}
	cvm_wr_u32le(&p->w, (uint32_t)len);
	cvm_wr_bytes(&p->w, rec, len);
	free(rec);
	p->count++;
	return 0;
}

static int write_atomic(const char *path, const uint8_t *buf, size_t len, char *err, size_t err_len)
{
	char tmp[4096];
	size_t off = 0;
	int fd, n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return cvm_err_set(err, err_len, CVM_E_INVAL, "the bundle path is too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot write %s: %s", tmp, strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off != len || fsync(fd) != 0) {
		(void)close(fd);
		(void)unlink(tmp);
		return cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot write %s: %s", tmp, strerror(errno));
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		(void)unlink(tmp);
		return cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot put the bundle in place at %s: %s",
		                   path, strerror(errno));
	}
	return CVM_OK;
}

int cvm_cache_pack(struct cvm_cache *c, const char *path, int64_t now, size_t *count, char *err,
                   size_t err_len)
{
	struct pack_ctx p;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (count != NULL)
		*count = 0;
	if (c == NULL || path == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no cache handle or no bundle path");
	memset(&p, 0, sizeof(p));
	p.now = now;
	cvm_wr_init(&p.w, BUNDLE_MAX);
	cvm_wr_bytes(&p.w, bundle_magic, sizeof(bundle_magic));
	cvm_wr_u32le(&p.w, BUNDLE_VERSION);
	cvm_wr_u32le(&p.w, 0); /* the count, set below */
	r = cvm_cache_list(c, pack_one, &p);
	if (r == 1)
		r = p.r;
	cvm_wr_zeros(&p.w, BUNDLE_DIGEST_LEN); /* the digest, computed below */
	if (r != CVM_OK) {
		cvm_wr_cleanup(&p.w);
		return cvm_err_set(err, err_len, r, "cannot pack the cache %s: %s", c->dir, cvm_strerror(r));
	}
	r = cvm_wr_finish(&p.w, &buf, &len);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the bundle is larger than %zu bytes", BUNDLE_MAX);
	/* The writer may move its buffer as it grows: the count goes in last,
	 * then the digest over everything before it (the writer reserved it). */
	buf[12] = (uint8_t)p.count;
	buf[13] = (uint8_t)(p.count >> 8);
	buf[14] = (uint8_t)(p.count >> 16);
	buf[15] = (uint8_t)(p.count >> 24);
	cvm_sha256(buf, len - BUNDLE_DIGEST_LEN, buf + len - BUNDLE_DIGEST_LEN);
	r = write_atomic(path, buf, len, err, err_len);
	free(buf);
	if (r == CVM_OK && count != NULL)
		*count = p.count;
	return r;
}

/* ---- import ------------------------------------------------------------- */

void coll_set_free(struct coll_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->count; i++)
		cvm_cache_item_free(s->items[i]);
	free(s);
}

int coll_bundle_parse(const uint8_t *buf, size_t len, struct coll_set *s, char *err, size_t err_len)
{
	struct cvm_rd r, rec;
	const uint8_t *magic;
	uint8_t digest[32];
	uint32_t version, count;
	int rc;

	if (len < 16 + BUNDLE_DIGEST_LEN)
		return cvm_err_set(err, err_len, CVM_E_TRUNCATED,
		                   "the bundle is %zu bytes, shorter than a bundle's header and digest", len);
	cvm_sha256(buf, len - BUNDLE_DIGEST_LEN, digest);
	if (memcmp(digest, buf + len - BUNDLE_DIGEST_LEN, BUNDLE_DIGEST_LEN) != 0)
		return cvm_err_set(
		    err, err_len, CVM_E_FORMAT,
		    "the bundle is damaged: the SHA-256 at its end does not match its contents "
		    "(copy it again, or pack it again)");
	cvm_rd_init(&r, buf, len - BUNDLE_DIGEST_LEN);
	if (!cvm_rd_bytes(&r, &magic, sizeof(bundle_magic)) ||
	    memcmp(magic, bundle_magic, sizeof(bundle_magic)) != 0)
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "not a cvmkit collateral bundle (bad magic)");
	if (!cvm_rd_u32le(&r, &version) || !cvm_rd_u32le(&r, &count))
		return cvm_err_set(err, err_len, CVM_E_TRUNCATED, "the bundle ends inside its header");
	if (version != BUNDLE_VERSION)
		return cvm_err_set(err, err_len, CVM_E_UNSUPPORTED,
		                   "bundle version %u is not supported (this cvmkit reads %u)", version,
		                   BUNDLE_VERSION);
	if (count > COLL_BUNDLE_ITEMS_MAX)
		return cvm_err_set(err, err_len, CVM_E_TOO_LARGE, "the bundle claims %u items, more than %u",
		                   count, COLL_BUNDLE_ITEMS_MAX);
	for (uint32_t i = 0; i < count; i++) {
		if (!cvm_rd_sub_u32le(&r, &rec))
			return cvm_err_set(err, err_len, CVM_E_TRUNCATED,
			                   "the bundle ends inside item %u of %u", i + 1, count);
		rc = coll_item_decode(rec.p, rec.len, &s->items[s->count]);
		if (rc != CVM_OK)
			return cvm_err_set(err, err_len, rc == CVM_E_TRUNCATED ? CVM_E_FORMAT : rc,
			                   "item %u of the bundle is malformed: %s", i + 1, cvm_strerror(rc));
		s->count++;
	}
	if (!cvm_rd_empty(&r))
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the bundle has bytes after its last item");
	return CVM_OK;
}

static int add_item(struct coll_set *s, const struct cvm_cache_key *k, const uint8_t *body, size_t body_len,
                    const uint8_t *chain, size_t chain_len, const char *source, int64_t now)
{
	struct cvm_cache_item *it;

	if (s->count >= COLL_BUNDLE_ITEMS_MAX)
		return CVM_E_TOO_LARGE;
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return CVM_E_NOMEM;
	s->items[s->count++] = it;
	it->key = *k;
	it->body = malloc(body_len);
	if (it->body == NULL)
		return CVM_E_NOMEM;
	memcpy(it->body, body, body_len);
	it->body_len = body_len;
	if (chain != NULL && chain_len > 0) {
		if (memchr(chain, 0, chain_len) != NULL)
			return CVM_E_FORMAT;
		it->issuer_chain = malloc(chain_len + 1);
		if (it->issuer_chain == NULL)
			return CVM_E_NOMEM;
		memcpy(it->issuer_chain, chain, chain_len);
		it->issuer_chain[chain_len] = '\0';
		it->issuer_chain_len = chain_len;
	}
	(void)snprintf(it->source, sizeof(it->source), "%s", source);
	it->fetched_at = now;
	return CVM_OK;
}

/* first_cert_has reports whether the first certificate of `pem` has a
 * subject containing `what`. */
static bool first_cert_has(const uint8_t *pem, size_t len, const char *what)
{
	struct cvm_cert **certs = NULL;
	size_t n = 0;
	char subj[256] = "";
	bool yes = false;

	if (cvm_certs_parse_pem(pem, len, &certs, &n) == CVM_OK && n > 0) {
		cvm_cert_subject(certs[0], subj, sizeof(subj));
		yes = strstr(subj, what) != NULL;
	}
	cvm_certs_free(certs, n);
	return yes;
}

static int dir_dcap(const char *dir, struct coll_set *s, const char *source, int64_t now, char *err,
                    size_t err_len)
{
	struct cvm_dcap_collateral *d = NULL;
	struct cvm_tcb_info *ti = NULL;
	struct cvm_qe_identity *qe = NULL;
	struct cvm_cache_key k;
	struct cvm_rd span;
	uint8_t sig[64];
	int r;

	r = cvm_dcap_collateral_load_dir(dir, &d, err, err_len);
	if (r != CVM_OK)
		return r;
	if (d->root_ca_crl == NULL || d->pck_crl == NULL || d->tcb_info == NULL || d->qe_identity == NULL) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "%s lacks one of root_ca_crl.der, pck_crl.der, tcb_info.json, "
		                "qe_identity.json",
		                dir);
		goto out;
	}
	cvm_cache_key_init(&k, CVM_CACHE_ROOT_CRL);
	r = add_item(s, &k, d->root_ca_crl, d->root_ca_crl_len, NULL, 0, source, now);
	if (r != CVM_OK)
		goto out;
	cvm_cache_key_init(&k, CVM_CACHE_PCK_CRL);
	k.ca = first_cert_has(d->pck_crl_issuer_chain, d->pck_crl_issuer_chain_len, "Platform CA")
	           ? CVM_CACHE_CA_PLATFORM
	           : CVM_CACHE_CA_PROCESSOR;
	r = add_item(s, &k, d->pck_crl, d->pck_crl_len, d->pck_crl_issuer_chain, d->pck_crl_issuer_chain_len,
	             source, now);
	if (r != CVM_OK)
		goto out;
	/* What the TCB info and the identity are for comes from their bodies
	 * (verified below, before anything is stored). */
	r = cvm_tcb_info_parse(d->tcb_info, d->tcb_info_len, &ti, &span, sig);
	if (r != CVM_OK) {
		r = cvm_err_set(err, err_len, r, "%s/tcb_info.json is not a TCB info: %s", dir,
		                cvm_strerror(r));
		goto out;
	}
	cvm_cache_key_init(&k, CVM_CACHE_TCB_INFO);
	k.tee = ti->tee == CVM_TEE_TDX ? CVM_CACHE_TDX : CVM_CACHE_SGX;
	memcpy(k.fmspc, ti->fmspc, sizeof(k.fmspc));
	r = add_item(s, &k, d->tcb_info, d->tcb_info_len, d->tcb_info_issuer_chain,
	             d->tcb_info_issuer_chain_len, source, now);
	if (r != CVM_OK)
		goto out;
	r = cvm_qe_identity_parse(d->qe_identity, d->qe_identity_len, &qe, &span, sig);
	if (r != CVM_OK) {
		r = cvm_err_set(err, err_len, r, "%s/qe_identity.json is not an enclave identity: %s", dir,
		                cvm_strerror(r));
		goto out;
	}
	if (strcmp(qe->id, "QVE") == 0) {
		cvm_cache_key_init(&k, CVM_CACHE_QVE_ID);
	} else {
		cvm_cache_key_init(&k, CVM_CACHE_QE_ID);
		k.tee = strcmp(qe->id, "TD_QE") == 0 ? CVM_CACHE_TDX : CVM_CACHE_SGX;
	}
	r = add_item(s, &k, d->qe_identity, d->qe_identity_len, d->qe_identity_issuer_chain,
	             d->qe_identity_issuer_chain_len, source, now);
out:
	cvm_tcb_info_free(ti);
	cvm_qe_identity_free(qe);
	cvm_dcap_collateral_free(d);
	return r;
}

/* add_chain_crl adds a product's cert_chain for `signer` (ASK or ASVK, then
 * ARK) and, when the folder has one, its CRL. */
static int add_chain_crl(struct coll_set *s, enum cvm_snp_product product, enum cvm_snp_signer signer,
                         const uint8_t *chain, size_t chain_len, const struct cvm_amd_collateral *a,
                         const char *source, int64_t now)
{
	struct cvm_cache_key k;
	int r;

	cvm_cache_key_init(&k, CVM_CACHE_AMD_CHAIN);
	k.product = product;
	k.signer = signer;
	r = add_item(s, &k, chain, chain_len, NULL, 0, source, now);
	if (r != CVM_OK || a->crl == NULL)
		return r;
	k.kind = CVM_CACHE_AMD_CRL;
	return add_item(s, &k, a->crl, a->crl_len, NULL, 0, source, now);
}

static int dir_amd(const char *dir, struct coll_set *s, const char *source, int64_t now,
                   const struct cvm_cache *c, char *err, size_t err_len)
{
	struct cvm_amd_collateral *a = NULL;
	struct cvm_amd_item_info info;
	struct cvm_report rep;
	struct cvm_cache_key k;
	const uint8_t *chain;
	size_t chain_len;
	int r;

	r = cvm_amd_collateral_load_dir(dir, &a, err, err_len);
	if (r != CVM_OK)
		return r;
	if (a->vcek == NULL && a->vlek != NULL) {
		/* A VLEK folder: the ASVK chain (and CRL) is collateral; the VLEK
		 * itself is not (no KDS serves it by chip: a verifier is handed
		 * it with the report). */
		chain = a->cert_chain != NULL ? a->cert_chain : a->asvk;
		chain_len = a->cert_chain != NULL ? a->cert_chain_len : a->asvk_len;
		if (chain == NULL) {
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "%s has a VLEK but no cert_chain.pem (or asvk.pem) to import", dir);
			goto out;
		}
		cvm_report_init(&rep);
		r = cvm_amd_item_authenticate(CVM_AMD_ITEM_CHAIN, CVM_SNP_SIGNER_VLEK, chain, chain_len, NULL,
		                              0, c->amd.der, c->amd.der_len, now, &rep, &info);
		if (r != CVM_OK) {
			r = cvm_err_set(err, err_len, r, "%s: the ASVK chain does not verify: %s", dir,
			                cvm_report_reason(&rep));
			goto out;
		}
		r = add_chain_crl(s, info.product, CVM_SNP_SIGNER_VLEK, chain, chain_len, a, source, now);
		goto out;
	}
	chain = a->cert_chain != NULL ? a->cert_chain : a->ask;
	chain_len = a->cert_chain != NULL ? a->cert_chain_len : a->ask_len;
	if (chain == NULL || a->vcek == NULL) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "%s has no cert_chain.pem (or ask.pem) and VCEK or VLEK to import", dir);
		goto out;
	}
	/* The chain names its product, the VCEK its chip and TCB: read from
	 * the certificates as they verify (they are verified again, as items,
	 * before anything is stored). */
	cvm_report_init(&rep);
	r = cvm_amd_item_authenticate(CVM_AMD_ITEM_VCEK, CVM_SNP_SIGNER_VCEK, a->vcek, a->vcek_len, chain,
	                              chain_len, c->amd.der, c->amd.der_len, now, &rep, &info);
	if (r != CVM_OK) {
		r = cvm_err_set(err, err_len, r, "%s: the VCEK does not verify: %s", dir,
		                cvm_report_reason(&rep));
		goto out;
	}
	r = add_chain_crl(s, info.product, CVM_SNP_SIGNER_VCEK, chain, chain_len, a, source, now);
	if (r != CVM_OK)
		goto out;
	cvm_cache_key_init(&k, CVM_CACHE_VCEK);
	k.product = info.product;
	k.hwid_len = info.vek.hwid_len;
	memcpy(k.hwid, info.vek.hwid, info.vek.hwid_len);
	k.tcb = cvm_snp_tcb_encode(&info.vek.tcb, info.product);
	r = add_item(s, &k, a->vcek, a->vcek_len, NULL, 0, source, now);
out:
	cvm_amd_collateral_free(a);
	return r;
}

static bool exists_in(const char *dir, const char *name)
{
	char p[4096];
	struct stat st;
	int n = snprintf(p, sizeof(p), "%s/%s", dir, name);

	return n > 0 && (size_t)n < sizeof(p) && stat(p, &st) == 0;
}

/* rank orders the verification: anchors' own items (root CA CRL, AMD
 * chains) before the items checked against them. */
static int rank(enum cvm_cache_kind k)
{
	return k == CVM_CACHE_ROOT_CRL || k == CVM_CACHE_AMD_CHAIN ? 0 : 1;
}

int cvm_cache_import(struct cvm_cache *c, const char *path, int64_t now, size_t *count, char *err,
                     size_t err_len)
{
	struct coll_set *s = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	char source[256], name[COLL_NAME_MAX];
	struct stat st;
	int r;

	if (count != NULL)
		*count = 0;
	if (c == NULL || path == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no cache handle or no path");
	if (stat(path, &st) != 0)
		return cvm_err_set(err, err_len, CVM_E_SYSTEM, "%s: %s", path, strerror(errno));
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CVM_E_NOMEM;
	if (S_ISDIR(st.st_mode)) {
		(void)snprintf(source, sizeof(source), "dir:%s", path);
		if (exists_in(path, "tcb_info.json"))
			r = dir_dcap(path, s, source, now, err, err_len);
		else if (exists_in(path, "vcek.der") || exists_in(path, "vcek.pem") ||
		         exists_in(path, "vlek.der") || exists_in(path, "vlek.pem"))
			r = dir_amd(path, s, source, now, c, err, err_len);
		else
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "%s holds neither DCAP collateral (tcb_info.json, ...) nor a VCEK or "
			                "VLEK with its chain",
			                path);
	} else {
		(void)snprintf(source, sizeof(source), "bundle:%s", path);
		r = cvm_file_read_err(path, BUNDLE_MAX, &buf, &len, err, err_len);
		if (r == CVM_OK)
			r = coll_bundle_parse(buf, len, s, err, err_len);
		for (size_t i = 0; r == CVM_OK && i < s->count; i++)
			(void)snprintf(s->items[i]->source, sizeof(s->items[i]->source), "%s", source);
	}
	if (r != CVM_OK)
		goto out;
	/* Verify everything first, each against the handle's anchors and the
	 * other items of the set; store only when all verified. */
	c->pending = s->items;
	c->pending_count = s->count;
	for (int pass = 0; pass < 2 && r == CVM_OK; pass++) {
		for (size_t i = 0; i < s->count; i++) {
			if (rank(s->items[i]->key.kind) != pass)
				continue;
			r = coll_verify(c, s->items[i], now, CVM_CACHE_NO_FETCH, err, err_len);
			if (r != CVM_OK) {
				if (cvm_cache_key_name(&s->items[i]->key, name, sizeof(name)) != CVM_OK)
					name[0] = '\0';
				(void)name;
				break;
			}
		}
	}
	c->pending = NULL;
	c->pending_count = 0;
	if (r != CVM_OK)
		goto out;
	for (size_t i = 0; i < s->count; i++) {
		int lock = coll_store_lock(c, &s->items[i]->key);

		if (lock < 0) {
			r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot lock an item in %s", c->dir);
			goto out;
		}
		r = coll_store_write(c, s->items[i], err, err_len);
		coll_store_unlock(lock);
		if (r != CVM_OK)
			goto out;
		if (c->o.progress != NULL)
			c->o.progress(c->o.progress_ctx, i + 1, s->count, s->items[i]->source);
	}
	if (count != NULL)
		*count = s->count;
out:
	free(buf);
	coll_set_free(s);
	return r;
}
