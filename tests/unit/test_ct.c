/* lib/ct without a network: Merkle consistency proofs (a tree and its
 * RFC 6962 SUBPROOF built here, every pair of sizes up to 20 leaves: each
 * proof verifies, and every bit flip, a missing or an extra hash, and a
 * wrong root fail), signed tree heads (signed here with a fresh P-256 key:
 * a change to any signed field or the signature fails, and the signature
 * algorithm must match the key), log entries (the seeds of
 * fuzz/corpus/ct_entry, made by tests/common/ct_log_server.py's leaf
 * writer: an x509_entry with SANs, one with only a CN, a precert_entry;
 * every truncation, a trailing byte and every single-bit flip of the
 * framing), get-entries' caps and the domain match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ct.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>

#define LEAVES_MAX 20

/* ---- a reference Merkle tree (RFC 6962 2.1) ---- */

static void node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t b[65];

	b[0] = 1;
	memcpy(b + 1, l, 32);
	memcpy(b + 33, r, 32);
	cvm_sha256(b, sizeof(b), out);
}

static size_t split(size_t n)
{
	size_t k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

static void mth(uint8_t (*h)[32], size_t n, uint8_t out[32])
{
	uint8_t l[32], r[32];
	size_t k;

	if (n == 1) {
		memcpy(out, h[0], 32);
		return;
	}
	k = split(n);
	mth(h, k, l);
	mth(h + k, n - k, r);
	node(l, r, out);
}

static void subproof(size_t m, uint8_t (*h)[32], size_t n, bool b, uint8_t (*p)[32], size_t *count)
{
	size_t k;

	if (m == n) {
		if (!b)
			mth(h, n, p[(*count)++]);
		return;
	}
	k = split(n);
	if (m <= k) {
		subproof(m, h, k, b, p, count);
		mth(h + k, n - k, p[(*count)++]);
	} else {
		subproof(m - k, h + k, n - k, false, p, count);
		mth(h, k, p[(*count)++]);
	}
}

static void test_consistency(void **state)
{
	uint8_t leaves[LEAVES_MAX][32], r1[32], r2[32], p[CVM_CT_PROOF_MAX][32];
	size_t m, n, count, i, bit;

	(void)state;
	for (i = 0; i < LEAVES_MAX; i++) {
		uint8_t b = (uint8_t)i;

		cvm_ct_leaf_hash(&b, 1, leaves[i]);
	}
	for (n = 1; n <= LEAVES_MAX; n++) {
		mth(leaves, n, r2);
		for (m = 1; m <= n; m++) {
			mth(leaves, m, r1);
			count = 0;
			if (m < n)
				subproof(m, leaves, n, true, p, &count);
			assert_int_equal(
			    cvm_ct_consistency_verify(m, r1, n, r2, (const uint8_t(*)[32])p, count), CVM_OK);
			/* The wrong roots, either one. */
			r1[0] ^= 1;
			assert_int_not_equal(
			    cvm_ct_consistency_verify(m, r1, n, r2, (const uint8_t(*)[32])p, count), CVM_OK);
			r1[0] ^= 1;
			r2[31] ^= 0x80;
			assert_int_not_equal(
			    cvm_ct_consistency_verify(m, r1, n, r2, (const uint8_t(*)[32])p, count), CVM_OK);
			r2[31] ^= 0x80;
			if (count == 0)
				continue;
			/* A proof one hash short or one hash long. */
			assert_int_not_equal(
			    cvm_ct_consistency_verify(m, r1, n, r2, (const uint8_t(*)[32])p, count - 1),
			    CVM_OK);
			memcpy(p[count], p[0], 32);
			assert_int_not_equal(
			    cvm_ct_consistency_verify(m, r1, n, r2, (const uint8_t(*)[32])p, count + 1),
			    CVM_OK);
			/* Every bit of every hash. */
			for (i = 0; i < count; i++)
				for (bit = 0; bit < 256; bit += 7) {
					p[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
					assert_int_not_equal(
					    cvm_ct_consistency_verify(m, r1, n, r2, (const uint8_t(*)[32])p,
					                              count),
					    CVM_OK);
					p[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
				}
			/* The proof of another first size. */
			if (m > 1)
				assert_int_not_equal(cvm_ct_consistency_verify(
				                         m - 1, r1, n, r2, (const uint8_t(*)[32])p, count),
				                     CVM_OK);
		}
	}
	/* A shrinking tree is not a proof's business: the caller's error. */
	assert_int_equal(cvm_ct_consistency_verify(3, r1, 2, r2, NULL, 0), CVM_E_INVAL);
}

/* ---- signed tree heads ---- */

/* der_sig turns r || s into an ECDSA-Sig-Value. */
static size_t der_int(const uint8_t *v, uint8_t *out)
{
	size_t i = 0, n;

	while (i < 31 && v[i] == 0)
		i++;
	n = 32 - i;
	out[0] = 0x02;
	if (v[i] & 0x80) {
		out[1] = (uint8_t)(n + 1);
		out[2] = 0;
		memcpy(out + 3, v + i, n);
		return n + 3;
	}
	out[1] = (uint8_t)n;
	memcpy(out + 2, v + i, n);
	return n + 2;
}

static size_t der_sig(const uint8_t rs[64], uint8_t out[72])
{
	size_t n = 2;

	n += der_int(rs, out + n);
	n += der_int(rs + 32, out + n);
	out[0] = 0x30;
	out[1] = (uint8_t)(n - 2);
	return n;
}

struct sth_fix {
	struct cvm_p256_keypair *kp;
	struct cvm_pubkey *pub;
};

static char *sth_json(struct cvm_p256_keypair *kp, uint64_t size, uint64_t ts, const uint8_t root[32],
                      uint8_t sig_alg)
{
	uint8_t tbs[50], rs[64], ds[4 + 72];
	char *root64, *ds64, *out;
	size_t n, i;

	tbs[0] = 0;
	tbs[1] = 1;
	for (i = 0; i < 8; i++) {
		tbs[2 + i] = (uint8_t)(ts >> (56 - 8 * i));
		tbs[10 + i] = (uint8_t)(size >> (56 - 8 * i));
	}
	memcpy(tbs + 18, root, 32);
	assert_int_equal(cvm_p256_keypair_sign(kp, tbs, sizeof(tbs), rs), CVM_OK);
	n = der_sig(rs, ds + 4);
	ds[0] = 4;
	ds[1] = sig_alg;
	ds[2] = 0;
	ds[3] = (uint8_t)n;
	root64 = cvm_base64_encode_new(root, 32);
	ds64 = cvm_base64_encode_new(ds, n + 4);
	assert_non_null(root64);
	assert_non_null(ds64);
	out = malloc(1024);
	assert_non_null(out);
	snprintf(out, 1024,
	         "{\"tree_size\":%llu,\"timestamp\":%llu,\"sha256_root_hash\":\"%s\",\"tree_head_signature\":"
	         "\"%s\"}",
	         (unsigned long long)size, (unsigned long long)ts, root64, ds64);
	free(root64);
	free(ds64);
	return out;
}

static void test_sth(void **state)
{
	struct cvm_p256_keypair *kp = NULL, *other = NULL;
	struct cvm_pubkey *pub = NULL;
	struct cvm_ct_sth sth;
	uint8_t root[32], *spki = NULL;
	size_t spki_len = 0, i, len;
	char *j;

	(void)state;
	memset(root, 0xab, sizeof(root));
	assert_int_equal(cvm_p256_keypair_generate(&kp), CVM_OK);
	assert_int_equal(cvm_p256_keypair_generate(&other), CVM_OK);
	assert_int_equal(cvm_p256_keypair_spki(kp, &spki, &spki_len), CVM_OK);
	assert_int_equal(cvm_pubkey_parse(spki, spki_len, &pub), CVM_OK);

	j = sth_json(kp, 1234567, 1700000000123, root, 3);
	len = strlen(j);
	assert_int_equal(cvm_ct_sth_parse(j, len, &sth), CVM_OK);
	assert_int_equal(sth.tree_size, 1234567);
	assert_int_equal(sth.timestamp, 1700000000123);
	assert_memory_equal(sth.root_hash, root, 32);
	assert_int_equal(cvm_ct_sth_verify(&sth, pub), CVM_OK);
	/* Every signed field, and the signature. */
	sth.tree_size ^= 1;
	assert_int_equal(cvm_ct_sth_verify(&sth, pub), CVM_E_SIGNATURE);
	sth.tree_size ^= 1;
	sth.timestamp ^= (uint64_t)1 << 40;
	assert_int_equal(cvm_ct_sth_verify(&sth, pub), CVM_E_SIGNATURE);
	sth.timestamp ^= (uint64_t)1 << 40;
	for (i = 0; i < (size_t)32 * 8; i += 5) {
		sth.root_hash[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(cvm_ct_sth_verify(&sth, pub), CVM_E_SIGNATURE);
		sth.root_hash[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	for (i = 0; i < sth.sig_len * 8; i += 3) {
		sth.sig[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(cvm_ct_sth_verify(&sth, pub), CVM_E_SIGNATURE);
		sth.sig[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	assert_int_equal(cvm_ct_sth_verify(&sth, pub), CVM_OK);
	/* The algorithm byte must name the key's algorithm. */
	sth.sig_alg = 1;
	assert_int_equal(cvm_ct_sth_verify(&sth, pub), CVM_E_SIGNATURE);
	/* Every truncation of the JSON fails and leaves nothing. */
	for (i = 0; i < len; i++) {
		assert_int_not_equal(cvm_ct_sth_parse(j, i, &sth), CVM_OK);
		assert_int_equal(sth.tree_size, 0);
		assert_int_equal(sth.sig_len, 0);
	}
	free(j);
	/* Another key's signature. */
	j = sth_json(other, 5, 6, root, 3);
	assert_int_equal(cvm_ct_sth_parse(j, strlen(j), &sth), CVM_OK);
	assert_int_equal(cvm_ct_sth_verify(&sth, pub), CVM_E_SIGNATURE);
	free(j);
	/* An unknown signature algorithm, a negative size, a short root. */
	j = sth_json(kp, 5, 6, root, 2);
	assert_int_equal(cvm_ct_sth_parse(j, strlen(j), &sth), CVM_E_UNSUPPORTED);
	free(j);
	j = "{\"tree_size\":-1,\"timestamp\":1,\"sha256_root_hash\":\"AAAA\",\"tree_head_signature\":"
	    "\"BAMAAQA=\"}";
	assert_int_equal(cvm_ct_sth_parse(j, strlen(j), &sth), CVM_E_FORMAT);
	j = "{\"tree_size\":1,\"timestamp\":1,\"sha256_root_hash\":\"AAAA\",\"tree_head_signature\":"
	    "\"BAMAAQA=\"}";
	assert_int_equal(cvm_ct_sth_parse(j, strlen(j), &sth), CVM_E_FORMAT);
	/* Two tree sizes in one answer. */
	j = "{\"tree_size\":1,\"tree_size\":2}";
	assert_int_equal(cvm_ct_sth_parse(j, strlen(j), &sth), CVM_E_FORMAT);
	cvm_pubkey_free(pub);
	free(spki);
	cvm_p256_keypair_free(kp);
	cvm_p256_keypair_free(other);
}

/* ---- entries ---- */

static uint8_t *seed(const char *name, size_t *len)
{
	char path[1024];
	uint8_t *buf = NULL;

	snprintf(path, sizeof(path), "%s/fuzz/corpus/ct_entry/%s", CVM_SOURCE_DIR, name);
	assert_int_equal(cvm_file_read(path, 1 << 20, &buf, len), CVM_OK);
	return buf;
}

/* check_mutations: every truncation fails and owns nothing; a trailing
 * byte is refused; a flip of any bit of the framing (version, leaf type,
 * entry type, lengths) is refused; flips inside the certificate never
 * crash and never leak. */
static void check_mutations(uint8_t *buf, size_t len, size_t framing_end)
{
	struct cvm_ct_entry e;
	uint8_t *longer;
	size_t i, bit;

	for (i = 0; i < len; i++) {
		assert_int_not_equal(cvm_ct_entry_parse(buf, i, &e), CVM_OK);
		assert_null(e.spki);
		cvm_ct_entry_cleanup(&e);
	}
	longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, buf, len);
	longer[len] = 0;
	assert_int_equal(cvm_ct_entry_parse(longer, len + 1, &e), CVM_E_FORMAT);
	cvm_ct_entry_cleanup(&e);
	free(longer);
	for (i = 0; i < len; i++)
		for (bit = 0; bit < 8; bit++) {
			int r;

			/* The timestamp (bytes 2..9) is free-form. */
			if (i >= 2 && i < 10)
				continue;
			buf[i] ^= (uint8_t)(1u << bit);
			r = cvm_ct_entry_parse(buf, len, &e);
			if (i < 2 || (i >= 10 && i < framing_end))
				assert_int_not_equal(r, CVM_OK);
			cvm_ct_entry_cleanup(&e);
			buf[i] ^= (uint8_t)(1u << bit);
		}
	assert_int_equal(cvm_ct_entry_parse(buf, len, &e), CVM_OK);
	cvm_ct_entry_cleanup(&e);
}

static void test_entries(void **state)
{
	struct cvm_ct_entry e;
	struct cvm_ct_raw *raw = NULL;
	uint8_t *buf, h[32];
	size_t len, count;
	char *js;

	(void)state;
	buf = seed("x509-san.bin", &len);
	assert_int_equal(cvm_ct_entry_parse(buf, len, &e), CVM_OK);
	assert_false(e.is_precert);
	assert_int_equal(e.name_count, 2);
	assert_string_equal(e.names[0], "*.gw.test");
	assert_string_equal(e.names[1], "gw.test");
	assert_string_equal(e.serial, "01");
	assert_non_null(strstr(e.issuer, "Fuzz CA"));
	cvm_sha256(e.spki, e.spki_len, h);
	assert_memory_equal(h, e.spki_sha256, 32);
	cvm_ct_leaf_hash(buf, len, h);
	assert_memory_equal(h, e.leaf_hash, 32);
	cvm_ct_entry_cleanup(&e);
	/* version 1 byte, leaf type 1, timestamp 8, entry type 2, length 3 */
	check_mutations(buf, len, 15);
	free(buf);

	buf = seed("x509-cn-only.bin", &len);
	assert_int_equal(cvm_ct_entry_parse(buf, len, &e), CVM_OK);
	assert_int_equal(e.name_count, 1);
	assert_string_equal(e.names[0], "cn-only.gw.test");
	cvm_ct_entry_cleanup(&e);
	free(buf);

	buf = seed("precert.bin", &len);
	assert_int_equal(cvm_ct_entry_parse(buf, len, &e), CVM_OK);
	assert_true(e.is_precert);
	assert_int_equal(e.issuer_key_hash[0], 0x11);
	assert_int_equal(e.name_count, 1);
	assert_string_equal(e.names[0], "pre.gw.test");
	assert_string_equal(e.serial, "03");
	assert_non_null(e.spki);
	cvm_ct_entry_cleanup(&e);
	/* ... then issuer_key_hash 32 bytes and the TBS length 3 */
	check_mutations(buf, len, 12);
	free(buf);

	/* get-entries: two entries, fewer than asked is fine, more is not. */
	buf = seed("get-entries.json", &len);
	js = (char *)buf;
	assert_int_equal(cvm_ct_entries_parse(js, len, 4, &raw, &count), CVM_OK);
	assert_int_equal(count, 2);
	assert_int_equal(cvm_ct_entry_parse(raw[1].leaf, raw[1].leaf_len, &e), CVM_OK);
	assert_string_equal(e.names[0], "cn-only.gw.test");
	cvm_ct_entry_cleanup(&e);
	cvm_ct_raw_free(raw, count);
	assert_int_equal(cvm_ct_entries_parse(js, len, 1, &raw, &count), CVM_E_TOO_LARGE);
	assert_null(raw);
	assert_int_equal(count, 0);
	free(buf);
	js = "{\"entries\":[{\"leaf_input\":\"AAAA\"}]}";
	assert_int_equal(cvm_ct_entries_parse(js, strlen(js), 4, &raw, &count), CVM_E_FORMAT);
	assert_null(raw);
	js = "{\"entries\":[{\"leaf_input\":\"AAAA\",\"extra_data\":\"!!\"}]}";
	assert_int_not_equal(cvm_ct_entries_parse(js, strlen(js), 4, &raw, &count), CVM_OK);
	assert_null(raw);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(cvm_ct_name_covers("gw.test", "gw.test"));
	assert_true(cvm_ct_name_covers("GW.Test.", "gw.test"));
	assert_true(cvm_ct_name_covers("*.gw.test", "gw.test"));
	assert_true(cvm_ct_name_covers("a-1234s.gw.test", "gw.test"));
	assert_true(cvm_ct_name_covers("*.x.gw.test", "gw.test"));
	assert_true(cvm_ct_name_covers("*.test", "gw.test"));
	assert_false(cvm_ct_name_covers("*.other", "gw.test"));
	assert_false(cvm_ct_name_covers("evilgw.test", "gw.test"));
	assert_false(cvm_ct_name_covers("gw.test.evil", "gw.test"));
	assert_false(cvm_ct_name_covers("*.gw.test", "x.y.gw.test.example"));
	assert_false(cvm_ct_name_covers("test", "gw.test"));
	assert_false(cvm_ct_name_covers("", "gw.test"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_consistency),
	    cmocka_unit_test(test_sth),
	    cmocka_unit_test(test_entries),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
