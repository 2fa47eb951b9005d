/* Reference sets: known (path, digest) pairs, read from sha*sum-style text,
 * and the comparison of IMA entries with them. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/ima.h>

#include "ima_int.h"

#define NO_ITEM UINT32_MAX
#define ALG_NAME_MAX 16

struct ref_item {
	uint64_t hash;
	uint32_t next; /* next item in the bucket, or NO_ITEM */
	uint32_t path_len;
	size_t path_off;
	uint16_t alg;
	uint8_t digest_len;
	uint8_t digest[CVM_IMA_FILE_DIGEST_MAX];
};

struct cvm_ima_refset {
	struct ref_item *items;
	size_t count, cap;
	struct cvm_wr pool; /* path bytes, at most the input's length */
	uint32_t *buckets;
	size_t bucket_mask;
	size_t distinct;
};

void cvm_ima_refset_free(struct cvm_ima_refset *set)
{
	if (set == NULL)
		return;
	free(set->items);
	cvm_wr_cleanup(&set->pool);
	free(set->buckets);
	free(set);
}

size_t cvm_ima_refset_count(const struct cvm_ima_refset *set)
{
	return set->distinct;
}

/* FNV-1a: the keys come from the reference file, not from the list. */
static uint64_t path_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* grow makes room for `need` more elements of `size` bytes: a new block,
 * copied, the old one freed (lib/ never uses realloc). */
static bool grow(void **buf, size_t *cap, size_t len, size_t need, size_t size)
{
	size_t ncap = *cap != 0 ? *cap : 1024;
	void *nb;

	if (*cap - len >= need)
		return true;
	while (ncap - len < need) {
		if (ncap > SIZE_MAX / 2 / size)
			return false;
		ncap *= 2;
	}
	nb = malloc(ncap * size);
	if (nb == NULL)
		return false;
	if (len != 0)
		memcpy(nb, *buf, len * size);
	free(*buf);
	*buf = nb;
	*cap = ncap;
	return true;
}

/* parse_digest reads "<hex>" or "<alg>:<hex>". */
static int parse_digest(struct cvm_rd tok, struct ref_item *it)
{
	char name[ALG_NAME_MAX + 1];
	enum cvm_digest_alg alg;
	size_t colon = tok.len, n;
	struct cvm_rd hex = tok;

	for (size_t i = 0; i < tok.len; i++) {
		if (tok.p[i] == ':') {
			colon = i;
			break;
		}
	}
	if (colon != tok.len) {
		if (colon == 0 || colon > ALG_NAME_MAX)
			return CVM_E_FORMAT;
		memcpy(name, tok.p, colon);
		name[colon] = '\0';
		if (cvm_digest_from_name(name, &alg) != CVM_OK)
			return CVM_E_UNSUPPORTED;
		(void)cvm_rd_skip(&hex, colon + 1);
	} else {
		switch (tok.len) {
		case 40:
			alg = CVM_DIGEST_SHA1;
			break;
		case 64:
			alg = CVM_DIGEST_SHA256;
			break;
		case 96:
			alg = CVM_DIGEST_SHA384;
			break;
		case 128:
			alg = CVM_DIGEST_SHA512;
			break;
		default:
			return CVM_E_FORMAT;
		}
	}
	n = cvm_digest_len((uint16_t)alg);
	if (n == 0 || n > CVM_IMA_FILE_DIGEST_MAX ||
	    cvm_hex_decode_exact((const char *)hex.p, hex.len, it->digest, n) != CVM_OK)
		return CVM_E_FORMAT;
	it->alg = (uint16_t)alg;
	it->digest_len = (uint8_t)n;
	return CVM_OK;
}

/* add_path appends the path (unescaping "\\" and "\n" when `escaped`). */
static int add_path(struct cvm_ima_refset *set, struct cvm_rd path, bool escaped, struct ref_item *it)
{
	size_t start = set->pool.len, n = 0;

	if (path.len == 0 || path.len >= CVM_IMA_EVENT_NAME_MAX || cvm_rd_has_nul(&path))
		return CVM_E_FORMAT;
	for (size_t i = 0; i < path.len; i++) {
		uint8_t c = path.p[i];

		if (escaped && c == '\\') {
			if (i + 1 == path.len)
				return CVM_E_FORMAT;
			c = path.p[++i];
			if (c == 'n')
				c = '\n';
			else if (c != '\\')
				return CVM_E_FORMAT;
		}
		cvm_wr_u8(&set->pool, c);
		n++;
	}
	if (set->pool.err)
		return CVM_E_NOMEM;
	it->path_off = start;
	it->path_len = (uint32_t)n;
	it->hash = path_hash(set->pool.buf + start, n);
	return CVM_OK;
}

static int parse_line(struct cvm_ima_refset *set, struct cvm_rd line)
{
	struct ref_item it;
	struct cvm_rd tok;
	bool escaped = false;
	size_t sp = line.len;
	uint8_t c;
	int r;

	memset(&it, 0, sizeof(it));
	if (line.len > CVM_IMA_REF_LINE_MAX)
		return CVM_E_TOO_LARGE;
	if (line.len == 0 || line.p[0] == '#')
		return CVM_OK;
	if (line.p[0] == '\\') {
		escaped = true;
		(void)cvm_rd_skip(&line, 1);
	}
	for (size_t i = 0; i < line.len; i++) {
		if (line.p[i] == ' ') {
			sp = i;
			break;
		}
	}
	if (sp == line.len || !cvm_rd_sub(&line, &tok, sp) || !cvm_rd_skip(&line, 1))
		return CVM_E_FORMAT;
	/* coreutils writes " " (text mode) or "*" (binary mode) before the path */
	if (cvm_rd_peek_u8(&line, &c) && (c == ' ' || c == '*'))
		(void)cvm_rd_skip(&line, 1);
	r = parse_digest(tok, &it);
	if (r != CVM_OK)
		return r;
	if (set->count >= CVM_IMA_REF_ENTRIES_MAX)
		return CVM_E_TOO_LARGE;
	r = add_path(set, line, escaped, &it);
	if (r != CVM_OK)
		return r;
	if (!grow((void **)&set->items, &set->cap, set->count, 1, sizeof(*set->items)))
		return CVM_E_NOMEM;
	it.next = NO_ITEM;
	set->items[set->count++] = it;
	return CVM_OK;
}

static bool same_path(const struct cvm_ima_refset *set, const struct ref_item *it, const uint8_t *p, size_t n)
{
	return it->path_len == n && (n == 0 || memcmp(set->pool.buf + it->path_off, p, n) == 0);
}

static bool same_digest(const struct ref_item *a, uint16_t alg, const uint8_t *d, size_t n)
{
	return a->alg == alg && a->digest_len == n && memcmp(a->digest, d, n) == 0;
}

/* build_index links every item into its bucket, dropping exact duplicates. */
static int build_index(struct cvm_ima_refset *set)
{
	size_t nb = 16;

	while (nb < 2 * set->count)
		nb *= 2;
	set->buckets = malloc(nb * sizeof(*set->buckets));
	if (set->buckets == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < nb; i++)
		set->buckets[i] = NO_ITEM;
	set->bucket_mask = nb - 1;
	for (size_t i = 0; i < set->count; i++) {
		struct ref_item *it = &set->items[i];
		uint32_t *head = &set->buckets[it->hash & set->bucket_mask];
		bool dup = false;

		for (uint32_t j = *head; j != NO_ITEM && !dup; j = set->items[j].next) {
			const struct ref_item *o = &set->items[j];

			dup = o->hash == it->hash &&
			      same_path(set, o, set->pool.buf + it->path_off, it->path_len) &&
			      same_digest(o, it->alg, it->digest, it->digest_len);
		}
		if (dup)
			continue;
		it->next = *head;
		*head = (uint32_t)i;
		set->distinct++;
	}
	return CVM_OK;
}

int cvm_ima_refset_parse(const uint8_t *buf, size_t len, struct cvm_ima_refset **out, size_t *bad_line)
{
	struct cvm_ima_refset *set = NULL;
	struct cvm_rd in, line;
	size_t lineno = 0;
	int r = CVM_OK;

	*out = NULL;
	if (bad_line != NULL)
		*bad_line = 0;
	if (buf == NULL && len != 0)
		return CVM_E_INVAL;
	set = calloc(1, sizeof(*set));
	if (set == NULL)
		return CVM_E_NOMEM;
	cvm_wr_init(&set->pool, len); /* paths are taken from the input */
	cvm_rd_init(&in, buf, len);
	while (!cvm_rd_empty(&in)) {
		size_t nl = in.len;

		for (size_t i = 0; i < in.len; i++) {
			if (in.p[i] == '\n') {
				nl = i;
				break;
			}
		}
		lineno++;
		if (!cvm_rd_sub(&in, &line, nl)) {
			r = CVM_E_INTERNAL;
			goto out;
		}
		(void)cvm_rd_skip(&in, 1);
		r = parse_line(set, line);
		if (r != CVM_OK) {
			if (bad_line != NULL)
				*bad_line = lineno;
			goto out;
		}
	}
	r = build_index(set);
	if (r != CVM_OK)
		goto out;
	*out = set;
	set = NULL; /* transferred */
out:
	cvm_ima_refset_free(set);
	return r;
}

const char *cvm_ima_ref_result_name(enum cvm_ima_ref_result r)
{
	switch (r) {
	case CVM_IMA_REF_MATCH:
		return "known";
	case CVM_IMA_REF_UNKNOWN_PATH:
		return "path not in the reference";
	case CVM_IMA_REF_UNKNOWN_DIGEST:
		return "digest not in the reference for this path";
	case CVM_IMA_REF_VIOLATION:
		return "violation (no digest)";
	case CVM_IMA_REF_UNDECODED:
		return "template not decoded";
	case CVM_IMA_REF_BOOT_AGGREGATE:
		return "boot_aggregate (PCRs 0-9, not a file)";
	}
	return "unknown";
}

enum cvm_ima_ref_result cvm_ima_refset_check(const struct cvm_ima_refset *set, const struct cvm_ima_entry *e)
{
	static const char boot_aggregate[] = "boot_aggregate";
	bool path_known = false;
	uint64_t h;

	if (e->template_id == CVM_IMA_TEMPLATE_OTHER)
		return CVM_IMA_REF_UNDECODED;
	if (e->name.len == sizeof(boot_aggregate) - 1 &&
	    memcmp(e->name.p, boot_aggregate, sizeof(boot_aggregate) - 1) == 0)
		return CVM_IMA_REF_BOOT_AGGREGATE;
	if (e->is_violation)
		return CVM_IMA_REF_VIOLATION;
	h = path_hash(e->name.p, e->name.len);
	for (uint32_t j = set->buckets[h & set->bucket_mask]; j != NO_ITEM; j = set->items[j].next) {
		const struct ref_item *it = &set->items[j];

		if (it->hash != h || !same_path(set, it, e->name.p, e->name.len))
			continue;
		path_known = true;
		if (e->digest_alg != 0 && same_digest(it, e->digest_alg, e->digest.p, e->digest.len))
			return CVM_IMA_REF_MATCH;
	}
	return path_known ? CVM_IMA_REF_UNKNOWN_DIGEST : CVM_IMA_REF_UNKNOWN_PATH;
}
