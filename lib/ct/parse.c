/* RFC 6962 parsers and Merkle tree checks: the signed tree head, the
 * consistency proof, get-entries and the MerkleTreeLeaf in it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/ct.h>
#include <cvmkit/encoding.h>

#include "crypto/crypto_lib.h"

#define TLS_HASH_SHA256 4
#define TLS_SIG_RSA 1
#define TLS_SIG_ECDSA 3
#define TPM_ALG_SHA256 0x000bu

/* The entry's names are lib/crypto's, copied whole. */
_Static_assert(CVM_CT_NAME_LEN == CVM_CERT_NAME_LEN, "one name length");
_Static_assert(CVM_CT_NAMES_MAX <= CVM_CERT_NAMES_MAX, "lib/crypto reads as many names");

/* json_doc parses `len` bytes of JSON as one object, refusing duplicate keys
 * (two tree sizes in one answer are not an answer). */
static json_t *json_doc(const char *json, size_t len, size_t max)
{
	json_t *j;

	if (len > max)
		return NULL;
	j = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* get_u64 reads a JSON integer that must not be negative. */
static bool get_u64(const json_t *o, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* get_b64 decodes the base64 string at `key` (at most `max` bytes). */
static int get_b64(const json_t *o, const char *key, size_t max, uint8_t **out, size_t *out_len)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	*out_len = 0;
	if (!json_is_string(v))
		return CVM_E_FORMAT;
	/* Base64 is 4/3 of the bytes: refuse before decoding what cannot fit. */
	if (json_string_length(v) / 4 * 3 > max + 3)
		return CVM_E_TOO_LARGE;
	return cvm_base64_decode(json_string_value(v), json_string_length(v), max, out, out_len);
}

int cvm_ct_sth_parse(const char *json, size_t len, struct cvm_ct_sth *out)
{
	struct cvm_rd r, sig;
	uint8_t *hash = NULL, *ds = NULL;
	size_t hash_len = 0, ds_len = 0;
	json_t *j;
	int e;

	memset(out, 0, sizeof(*out));
	if (len > CVM_CT_STH_JSON_MAX)
		return CVM_E_TOO_LARGE;
	j = json_doc(json, len, CVM_CT_STH_JSON_MAX);
	if (j == NULL)
		return CVM_E_FORMAT;
	e = CVM_E_FORMAT;
	if (!get_u64(j, "tree_size", &out->tree_size) || !get_u64(j, "timestamp", &out->timestamp))
		goto out;
	e = get_b64(j, "sha256_root_hash", 64, &hash, &hash_len);
	if (e != CVM_OK)
		goto out;
	e = CVM_E_FORMAT;
	if (hash_len != 32)
		goto out;
	memcpy(out->root_hash, hash, 32);
	e = get_b64(j, "tree_head_signature", CVM_CT_SIG_MAX + 4, &ds, &ds_len);
	if (e != CVM_OK)
		goto out;
	cvm_rd_init(&r, ds, ds_len);
	e = CVM_E_FORMAT;
	if (!cvm_rd_u8(&r, &out->hash_alg) || !cvm_rd_u8(&r, &out->sig_alg) || !cvm_rd_sub_u16be(&r, &sig) ||
	    !cvm_rd_empty(&r) || sig.len == 0)
		goto out;
	e = CVM_E_TOO_LARGE;
	if (sig.len > CVM_CT_SIG_MAX)
		goto out;
	e = CVM_E_UNSUPPORTED;
	if (out->hash_alg != TLS_HASH_SHA256 ||
	    (out->sig_alg != TLS_SIG_ECDSA && out->sig_alg != TLS_SIG_RSA))
		goto out;
	memcpy(out->sig, sig.p, sig.len);
	out->sig_len = sig.len;
	e = CVM_OK;
out:
	if (e != CVM_OK)
		memset(out, 0, sizeof(*out));
	free(hash);
	free(ds);
	json_decref(j);
	return e;
}

int cvm_ct_sth_verify(const struct cvm_ct_sth *sth, const struct cvm_pubkey *log_key)
{
	uint8_t tbs[2 + 8 + 8 + 32], digest[32];
	struct cvm_wr w;
	uint8_t *p;
	size_t n;
	enum cvm_pubkey_type kt = cvm_pubkey_type(log_key);

	if (sth->hash_alg != TLS_HASH_SHA256 || (kt == CVM_PUBKEY_EC && sth->sig_alg != TLS_SIG_ECDSA) ||
	    (kt == CVM_PUBKEY_RSA && sth->sig_alg != TLS_SIG_RSA) || sth->sig_len > CVM_CT_SIG_MAX)
		return CVM_E_SIGNATURE;
	/* TreeHeadSignature: version v1 (0), signature_type tree_hash (1). */
	cvm_wr_init_fixed(&w, tbs, sizeof(tbs));
	cvm_wr_u8(&w, 0);
	cvm_wr_u8(&w, 1);
	cvm_wr_u32be(&w, (uint32_t)(sth->timestamp >> 32));
	cvm_wr_u32be(&w, (uint32_t)sth->timestamp);
	cvm_wr_u32be(&w, (uint32_t)(sth->tree_size >> 32));
	cvm_wr_u32be(&w, (uint32_t)sth->tree_size);
	cvm_wr_bytes(&w, sth->root_hash, 32);
	if (cvm_wr_finish(&w, &p, &n) != CVM_OK || n != sizeof(tbs))
		return CVM_E_INTERNAL;
	cvm_sha256(tbs, sizeof(tbs), digest);
	return cvm_pubkey_verify_digest(log_key, TPM_ALG_SHA256, digest, sizeof(digest), sth->sig,
	                                sth->sig_len) == CVM_OK
	           ? CVM_OK
	           : CVM_E_SIGNATURE;
}

int cvm_ct_proof_parse(const char *json, size_t len, uint8_t (*proof)[32], size_t *count)
{
	const json_t *arr, *v;
	json_t *j;
	size_t i;
	int e = CVM_E_FORMAT;

	*count = 0;
	if (len > CVM_CT_PROOF_JSON_MAX)
		return CVM_E_TOO_LARGE;
	j = json_doc(json, len, CVM_CT_PROOF_JSON_MAX);
	if (j == NULL)
		return CVM_E_FORMAT;
	arr = json_object_get(j, "consistency");
	if (!json_is_array(arr))
		goto out;
	if (json_array_size(arr) > CVM_CT_PROOF_MAX) {
		e = CVM_E_TOO_LARGE;
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		uint8_t *h = NULL;
		size_t h_len = 0;

		if (!json_is_string(v) || json_string_length(v) > 64 ||
		    cvm_base64_decode(json_string_value(v), json_string_length(v), 32, &h, &h_len) !=
		        CVM_OK ||
		    h_len != 32) {
			free(h);
			*count = 0;
			goto out;
		}
		memcpy(proof[i], h, 32);
		free(h);
		*count = i + 1;
	}
	e = CVM_OK;
out:
	json_decref(j);
	return e;
}

static void node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t buf[65];

	buf[0] = 0x01;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	cvm_sha256(buf, sizeof(buf), out);
}

void cvm_ct_leaf_hash(const uint8_t *leaf, size_t len, uint8_t out[32])
{
	static const uint8_t zero = 0x00;

	cvm_sha256_two(&zero, 1, leaf, len, out);
}

int cvm_ct_consistency_verify(uint64_t size1, const uint8_t root1[32], uint64_t size2,
                              const uint8_t root2[32], const uint8_t (*proof)[32], size_t count)
{
	uint64_t fn, sn;
	uint8_t fr[32], sr[32];
	size_t i = 0;

	if (size1 > size2)
		return CVM_E_INVAL;
	if (size1 == size2)
		return count == 0 && memcmp(root1, root2, 32) == 0 ? CVM_OK : CVM_E_SIGNATURE;
	if (size1 == 0)
		return count == 0 ? CVM_OK : CVM_E_SIGNATURE;
	if (count == 0 || count > CVM_CT_PROOF_MAX)
		return CVM_E_SIGNATURE;
	/* RFC 9162 2.1.4.2: a first tree of 2^k leaves is a node of the second
	 * one, its root the proof's implicit first element. */
	if ((size1 & (size1 - 1)) == 0) {
		memcpy(fr, root1, 32);
	} else {
		memcpy(fr, proof[0], 32);
		i = 1;
	}
	memcpy(sr, fr, 32);
	fn = size1 - 1;
	sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < count; i++) {
		if (sn == 0)
			return CVM_E_SIGNATURE;
		if ((fn & 1) || fn == sn) {
			node_hash(proof[i], fr, fr);
			node_hash(proof[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			node_hash(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, root1, 32) != 0 || memcmp(sr, root2, 32) != 0)
		return CVM_E_SIGNATURE;
	return CVM_OK;
}

/* ---- entries -------------------------------------------------------------- */

static bool rd_sub_u24(struct cvm_rd *r, struct cvm_rd *sub)
{
	struct cvm_rd save = *r;
	uint8_t hi;
	uint16_t lo;

	if (!cvm_rd_u8(r, &hi) || !cvm_rd_u16be(r, &lo) || !cvm_rd_sub(r, sub, ((size_t)hi << 16) | lo)) {
		*r = save;
		return false;
	}
	return true;
}

static void wr_der_len(struct cvm_wr *w, size_t n)
{
	if (n < 0x80) {
		cvm_wr_u8(w, (uint8_t)n);
	} else if (n <= 0xff) {
		cvm_wr_u8(w, 0x81);
		cvm_wr_u8(w, (uint8_t)n);
	} else if (n <= 0xffff) {
		cvm_wr_u8(w, 0x82);
		cvm_wr_u16be(w, (uint16_t)n);
	} else {
		cvm_wr_u8(w, 0x83);
		cvm_wr_u8(w, (uint8_t)(n >> 16));
		cvm_wr_u16be(w, (uint16_t)n);
	}
}

/* precert_wrap makes a Certificate of a precert_entry's TBSCertificate, so
 * that the one X.509 parser reads it: SEQUENCE { tbs, the TBS's own
 * signature AlgorithmIdentifier, an empty BIT STRING }. The signature is
 * not there to verify; only the names and the key are read. */
static int precert_wrap(const struct cvm_rd *tbs_in, uint8_t **out, size_t *out_len)
{
	struct cvm_rd tbs = *tbs_in, body, x, alg_start;
	uint8_t tag;
	size_t body_len;
	struct cvm_wr w;

	if (!cvm_rd_asn1(&tbs, &body, CVM_ASN1_SEQUENCE) || !cvm_rd_empty(&tbs))
		return CVM_E_FORMAT;
	/* [0] EXPLICIT version (optional), serialNumber, then signature. */
	if (!cvm_rd_peek_u8(&body, &tag))
		return CVM_E_FORMAT;
	if (tag == 0xa0 && !cvm_rd_asn1(&body, &x, 0xa0))
		return CVM_E_FORMAT;
	if (!cvm_rd_asn1(&body, &x, CVM_ASN1_INTEGER))
		return CVM_E_FORMAT;
	alg_start = body;
	if (!cvm_rd_asn1(&body, &x, CVM_ASN1_SEQUENCE))
		return CVM_E_FORMAT;
	body_len = tbs_in->len + (alg_start.len - body.len) + 3;
	cvm_wr_init(&w, CVM_CT_LEAF_MAX + 64);
	cvm_wr_u8(&w, CVM_ASN1_SEQUENCE);
	wr_der_len(&w, body_len);
	cvm_wr_bytes(&w, tbs_in->p, tbs_in->len);
	cvm_wr_bytes(&w, alg_start.p, alg_start.len - body.len);
	cvm_wr_bytes(&w, (const uint8_t[]){0x03, 0x01, 0x00}, 3);
	return cvm_wr_finish(&w, out, out_len);
}

int cvm_ct_entry_parse(const uint8_t *leaf, size_t len, struct cvm_ct_entry *out)
{
	struct cvm_rd r, cert, ext;
	uint8_t version, leaf_type;
	uint16_t entry_type;
	uint8_t *wrapped = NULL;
	size_t wrapped_len = 0;
	struct cvm_cert *c = NULL;
	char(*names)[CVM_CERT_NAME_LEN] = NULL;
	int e;

	memset(out, 0, sizeof(*out));
	if (len > CVM_CT_LEAF_MAX)
		return CVM_E_TOO_LARGE;
	cvm_ct_leaf_hash(leaf, len, out->leaf_hash);
	cvm_rd_init(&r, leaf, len);
	if (!cvm_rd_u8(&r, &version) || !cvm_rd_u8(&r, &leaf_type))
		return CVM_E_TRUNCATED;
	if (version != 0 || leaf_type != 0)
		return CVM_E_UNSUPPORTED;
	if (!cvm_rd_u64be(&r, &out->timestamp) || !cvm_rd_u16be(&r, &entry_type))
		return CVM_E_TRUNCATED;
	if (entry_type == 0) {
		if (!rd_sub_u24(&r, &cert))
			return CVM_E_TRUNCATED;
	} else if (entry_type == 1) {
		out->is_precert = true;
		if (!cvm_rd_copy(&r, out->issuer_key_hash, 32) || !rd_sub_u24(&r, &cert))
			return CVM_E_TRUNCATED;
	} else {
		return CVM_E_UNSUPPORTED;
	}
	if (!cvm_rd_sub_u16be(&r, &ext))
		return CVM_E_TRUNCATED;
	if (!cvm_rd_empty(&r) || cert.len == 0)
		return CVM_E_FORMAT;
	if (out->is_precert) {
		e = precert_wrap(&cert, &wrapped, &wrapped_len);
		if (e != CVM_OK)
			return e;
		e = cvm_cert_parse(wrapped, wrapped_len, &c);
	} else {
		e = cvm_cert_parse(cert.p, cert.len, &c);
	}
	if (e != CVM_OK) {
		e = e == CVM_E_NOMEM ? e : CVM_E_FORMAT;
		goto out;
	}
	names = calloc(CVM_CT_NAMES_MAX, sizeof(*names));
	e = CVM_E_NOMEM;
	if (names == NULL)
		goto out;
	e = cvm_cert_dns_names(c, names, CVM_CT_NAMES_MAX, &out->name_count, &out->names_cut);
	if (e != CVM_OK)
		goto out;
	memcpy(out->names, names, sizeof(out->names));
	cvm_cert_serial(c, out->serial, sizeof(out->serial));
	cvm_cert_issuer(c, out->issuer, sizeof(out->issuer));
	e = cvm_cert_spki(c, &out->spki, &out->spki_len);
	if (e != CVM_OK)
		goto out;
	cvm_sha256(out->spki, out->spki_len, out->spki_sha256);
out:
	free(names);
	cvm_cert_free(c);
	free(wrapped);
	if (e != CVM_OK) {
		uint8_t lh[32];

		memcpy(lh, out->leaf_hash, 32);
		cvm_ct_entry_cleanup(out);
		memcpy(out->leaf_hash, lh, 32);
	}
	return e;
}

void cvm_ct_entry_cleanup(struct cvm_ct_entry *e)
{
	if (e == NULL)
		return;
	free(e->spki);
	memset(e, 0, sizeof(*e));
}

int cvm_ct_entries_parse(const char *json, size_t len, size_t max, struct cvm_ct_raw **out, size_t *count)
{
	const json_t *arr, *v;
	struct cvm_ct_raw *items = NULL;
	json_t *j;
	size_t i, n = 0;
	int e = CVM_E_FORMAT;

	*out = NULL;
	*count = 0;
	if (len > CVM_CT_ENTRIES_JSON_MAX)
		return CVM_E_TOO_LARGE;
	if (max > CVM_CT_BATCH_MAX)
		max = CVM_CT_BATCH_MAX;
	j = json_doc(json, len, CVM_CT_ENTRIES_JSON_MAX);
	if (j == NULL)
		return CVM_E_FORMAT;
	arr = json_object_get(j, "entries");
	if (!json_is_array(arr))
		goto out;
	if (json_array_size(arr) > max) {
		e = CVM_E_TOO_LARGE;
		goto out;
	}
	items = calloc(json_array_size(arr) + 1, sizeof(*items));
	if (items == NULL) {
		e = CVM_E_NOMEM;
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		uint8_t *extra = NULL;

		if (!json_is_object(v)) {
			e = CVM_E_FORMAT;
			goto out;
		}
		e = get_b64(v, "leaf_input", CVM_CT_LEAF_MAX, &items[i].leaf, &items[i].leaf_len);
		n = i + 1;
		if (e == CVM_OK)
			e = get_b64(v, "extra_data", CVM_CT_EXTRA_MAX, &extra, &items[i].extra_len);
		free(extra);
		if (e != CVM_OK)
			goto out;
	}
	*out = items;
	*count = n;
	items = NULL;
	e = CVM_OK;
out:
	cvm_ct_raw_free(items, n);
	json_decref(j);
	return e;
}

void cvm_ct_raw_free(struct cvm_ct_raw *r, size_t count)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < count; i++)
		free(r[i].leaf);
	free(r);
}

/* ---- names ---------------------------------------------------------------- */

static bool ends_with_label(const char *s, size_t s_len, const char *suffix, size_t suf_len)
{
	/* s is "<something>." + suffix */
	return s_len > suf_len + 1 && s[s_len - suf_len - 1] == '.' &&
	       strncasecmp(s + s_len - suf_len, suffix, suf_len) == 0;
}

bool cvm_ct_name_covers(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n == 0 || d == 0)
		return false;
	/* A trailing dot is the same name. */
	if (name[n - 1] == '.')
		n--;
	if (domain[d - 1] == '.')
		d--;
	if (n == d && strncasecmp(name, domain, d) == 0)
		return true;
	/* www.gw.test, *.gw.test, *.x.gw.test */
	if (ends_with_label(name, n, domain, d))
		return true;
	/* *.test covers gw.test: the wildcard's parent is the domain's parent. */
	if (n > 2 && name[0] == '*' && name[1] == '.') {
		const char *dot = memchr(domain, '.', d);

		if (dot != NULL && (size_t)(domain + d - (dot + 1)) == n - 2 &&
		    strncasecmp(dot + 1, name + 2, n - 2) == 0)
			return true;
	}
	return false;
}
