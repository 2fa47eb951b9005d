/* IMA runtime measurement lists: every real list replays to the PCR values
 * its manifest states; the quoted PCR 10 of the own QEMU/swtpm boot is
 * reached by a prefix of 507 of its 513 entries; the synthetic sm3 list is
 * rejected; truncations, trailing bytes and bit flips never crash and never
 * replay to the stated values; every template the kernel defines, both
 * encodings and both byte orders replay as the kernel extends them
 * (recomputed here with OpenSSL directly); reference sets and ima-sig
 * signatures (own RSA and EC keys) accept what they should and nothing
 * else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/ima.h>

#include "vectors.h"

static const uint16_t banks2[] = {CVM_DIGEST_SHA1, CVM_DIGEST_SHA256};

/* ---- helpers ------------------------------------------------------------ */

/* flip_stride: every bit, except under valgrind (every 61st, a prime, so
 * every bit position is still reached across bytes). */
static size_t flip_stride(void)
{
	const char *s = getenv("CVM_TEST_FLIP_STRIDE");
	long v = s != NULL ? strtol(s, NULL, 10) : getenv("CVM_UNDER_VALGRIND") != NULL ? 61 : 1;

	return v >= 1 && v <= 1000 ? (size_t)v : 1;
}

static json_t *manifest(void)
{
	char path[4096];
	json_error_t err;
	json_t *m = json_load_file(vector_path(path, sizeof(path), "ima/manifest.json"), 0, &err);

	if (m == NULL)
		fail_msg("%s: %s", path, err.text);
	return m;
}

static json_t *vector_by_name(json_t *m, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(m, "vectors"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
			return v;
	}
	fail_msg("vector %s not in ima/manifest.json", name);
	return NULL;
}

struct replayed {
	int r;
	uint64_t entries, violations;
	uint8_t pcr[2][CVM_DIGEST_MAX];
	char tmpl[64];
	char err[400];
};

/* replay_buf replays a whole list in memory with SHA-1 and SHA-256. */
static void replay_buf(const uint8_t *buf, size_t len, struct replayed *out)
{
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_replay *rp = NULL;
	struct cvm_ima_entry e;
	bool has = true;

	memset(out, 0, sizeof(*out));
	assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	assert_int_equal(cvm_ima_replay_new(banks2, 2, &rp), CVM_OK);
	while (has && out->r == CVM_OK) {
		out->r = cvm_ima_reader_next(rd, &e, &has);
		if (out->r != CVM_OK)
			(void)snprintf(out->err, sizeof(out->err), "%s", cvm_ima_reader_err(rd));
		else if (has)
			out->r = cvm_ima_replay_extend(rp, &e);
	}
	out->entries = cvm_ima_replay_entries(rp);
	out->violations = cvm_ima_replay_violations(rp);
	assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SHA1, 10, out->pcr[0], sizeof(out->pcr[0])),
	                 CVM_OK);
	assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SHA256, 10, out->pcr[1], sizeof(out->pcr[1])),
	                 CVM_OK);
	if (cvm_ima_replay_template_count(rp) > 0)
		(void)snprintf(out->tmpl, sizeof(out->tmpl), "%s", cvm_ima_replay_template_name(rp, 0));
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	cvm_hex_encode(p, n, out);
}

/* expected_pcr finds the PCR 10 value the manifest states for `bank`:
 * expected.stated when the source states one, else the cross-checked
 * replays (own_replay_check_*, which peer_evmctl matched). */
static const char *expected_pcr(const json_t *exp, const char *bank, const char *form)
{
	const json_t *stated = json_object_get(json_object_get(json_object_get(exp, "stated"), "pcrs"), bank);
	char key[64];

	if (stated != NULL && json_object_get(stated, "10") != NULL)
		return json_string_value(json_object_get(stated, "10"));
	(void)snprintf(key, sizeof(key), "own_replay_check_%s", form);
	(void)snprintf(key + 32, sizeof(key) - 32, "%s:10", bank);
	return json_string_value(
	    json_object_get(json_object_get(json_object_get(exp, key), "pcrs"), key + 32));
}

/* ---- real vectors ------------------------------------------------------- */

static void every_real_list_replays_to_its_manifest_values(void **state)
{
	json_t *m = manifest(), *v, *f;
	size_t i, j, lists = 0;

	(void)state;
	json_array_foreach(json_object_get(m, "vectors"), i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const json_t *exp = json_object_get(v, "expected");

		if (strcmp(name, "keylime-ima-log-sm3_256") == 0)
			continue; /* synthetic, negative only: see its own test */
		json_array_foreach(json_object_get(v, "files"), j, f)
		{
			const char *file = json_string_value(json_object_get(f, "file"));
			const char *form = strstr(file, "binary_runtime") != NULL  ? "binary"
			                   : strstr(file, "ascii_runtime") != NULL ? "ascii"
			                                                           : NULL;
			char rel[512], key[64], got[2 * CVM_DIGEST_MAX + 1];
			const json_t *own;
			struct replayed rp;
			uint8_t *buf;
			size_t len;

			if (form == NULL)
				continue;
			(void)snprintf(rel, sizeof(rel), "ima/%s", file);
			buf = vector_read(rel, &len);
			replay_buf(buf, len, &rp);
			free(buf);
			if (rp.r != CVM_OK)
				fail_msg("%s: %s (%s)", file, cvm_strerror(rp.r), rp.err);
			hex_of(rp.pcr[0], 20, got);
			assert_string_equal(got, expected_pcr(exp, "sha1", form));
			hex_of(rp.pcr[1], 32, got);
			assert_string_equal(got, expected_pcr(exp, "sha256", form));
			(void)snprintf(key, sizeof(key), "own_replay_check_%s", form);
			own = json_object_get(exp, key);
			assert_non_null(own);
			assert_int_equal(rp.entries, json_integer_value(json_object_get(own, "entries")));
			assert_int_equal(rp.violations,
			                 json_integer_value(json_object_get(own, "violations")));
			assert_string_equal(
			    rp.tmpl, json_string_value(json_array_get(json_object_get(own, "templates"), 0)));
			lists++;
		}
	}
	assert_int_equal(lists, 10); /* 3 binary + 7 ascii lists (the sm3 one aside) */
	json_decref(m);
}

static void keylime_zero_boot_aggregate_counts_as_a_violation(void **state)
{
	static const char *const logs[] = {"keylime-ima-log-sha1", "keylime-ima-log-sha384",
	                                   "keylime-ima-log-sha512"};
	struct cvm_ima_reader *rd;
	struct cvm_ima_entry e;
	bool has;

	(void)state;
	for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
		char rel[256];
		uint8_t *buf;
		size_t len;

		(void)snprintf(rel, sizeof(rel), "ima/%s/ascii_runtime_measurements", logs[i]);
		buf = vector_read(rel, &len);
		assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		assert_true(has);
		assert_true(e.is_violation);
		assert_int_equal(e.name.len, 14);
		assert_memory_equal(e.name.p, "boot_aggregate", 14);
		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		assert_true(has);
		assert_false(e.is_violation);
		cvm_ima_reader_free(rd);
		free(buf);
	}
}

static void synthetic_sm3_list_is_rejected(void **state)
{
	struct replayed rp;
	uint8_t *buf;
	size_t len;

	(void)state;
	buf = vector_read("ima/keylime-ima-log-sm3_256/ascii_runtime_measurements", &len);
	replay_buf(buf, len, &rp);
	assert_int_equal(rp.r, CVM_E_FORMAT);
	assert_int_equal(rp.entries, 0);
	assert_non_null(strstr(rp.err, "line 1: the template digest must be 40 hex digits"));
	free(buf);
}

static void quoted_pcr10_is_reached_by_a_prefix_of_507_entries(void **state)
{
	static const char *const files[] = {"ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements",
	                                    "ima/vm-ovmf-tpmcrb-imang/ascii_runtime_measurements"};
	json_t *m = manifest();
	const json_t *q =
	    json_object_get(json_object_get(vector_by_name(m, "vm-ovmf-tpmcrb-imang"), "expected"), "quote");
	const char *hex = json_string_value(json_object_get(json_object_get(q, "quoted_sha256"), "10"));
	json_int_t want_prefix =
	    json_integer_value(json_object_get(q, "quoted_pcr10_matches_ima_prefix_entries"));
	json_int_t want_total = json_integer_value(json_object_get(q, "total_ima_entries"));
	uint8_t want[32], other[32];

	(void)state;
	assert_int_equal(want_prefix, 507);
	assert_int_equal(cvm_hex_decode_exact(hex, strlen(hex), want, sizeof(want)), CVM_OK);
	for (size_t i = 0; i < 2; i++) {
		struct cvm_ima_reader *rd;
		struct cvm_ima_replay *rp;
		struct cvm_ima_entry e;
		uint8_t v[32];
		bool matched, has;
		size_t len, after = 0;
		uint8_t *buf = vector_read(files[i], &len);

		/* the reader-level search leaves the reader after the prefix */
		assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
		assert_int_equal(cvm_ima_replay_new(banks2, 2, &rp), CVM_OK);
		assert_int_equal(
		    cvm_ima_replay_until(rp, rd, CVM_DIGEST_SHA256, want, sizeof(want), &matched), CVM_OK);
		assert_true(matched);
		assert_int_equal(cvm_ima_replay_entries(rp), 507);
		assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SHA256, 10, v, sizeof(v)), CVM_OK);
		assert_memory_equal(v, want, sizeof(want));
		for (;;) {
			assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
			if (!has)
				break;
			after++;
		}
		assert_int_equal(after, (size_t)(want_total - want_prefix));
		/* a bank not replayed, or a value of the wrong size, is a caller error */
		assert_int_equal(cvm_ima_replay_until(rp, rd, CVM_DIGEST_SHA384, want, 48, &matched),
		                 CVM_E_INVAL);
		assert_int_equal(cvm_ima_replay_until(rp, rd, CVM_DIGEST_SHA256, want, 20, &matched),
		                 CVM_E_INVAL);
		cvm_ima_replay_free(rp);
		cvm_ima_reader_free(rd);

		/* a value no prefix reaches: the whole list is replayed */
		memcpy(other, want, sizeof(other));
		other[31] ^= 1;
		assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
		assert_int_equal(cvm_ima_replay_new(banks2, 2, &rp), CVM_OK);
		assert_int_equal(
		    cvm_ima_replay_until(rp, rd, CVM_DIGEST_SHA256, other, sizeof(other), &matched), CVM_OK);
		assert_false(matched);
		assert_int_equal(cvm_ima_replay_entries(rp), (uint64_t)want_total);
		cvm_ima_replay_free(rp);
		cvm_ima_reader_free(rd);
		free(buf);
	}
	json_decref(m);
}

static void ima_sig_vector_carries_one_v2_signature(void **state)
{
	struct cvm_ima_reader *rd;
	struct cvm_ima_entry e;
	struct cvm_ima_sig sig;
	size_t len, signed_entries = 0;
	bool has;
	uint8_t *buf = vector_read("ima/cosmian-ima-sig/binary_runtime_measurements", &len);

	(void)state;
	assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	for (;;) {
		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		if (!has)
			break;
		assert_int_equal(e.template_id, CVM_IMA_TEMPLATE_IMA_SIG);
		if (e.sig.len == 0)
			continue;
		signed_entries++;
		assert_int_equal(cvm_ima_sig_parse(e.sig, &sig), CVM_OK);
		assert_int_equal(sig.type, 3);
		assert_int_equal(sig.version, 2);
		assert_int_equal(sig.digest_alg, CVM_DIGEST_SHA256);
		assert_int_equal(sig.keyid, 0x577055f4);
		assert_int_equal(sig.value.len, 256);
		assert_int_equal(e.digest_alg, CVM_DIGEST_SHA256);
	}
	assert_int_equal(signed_entries, 1);
	cvm_ima_reader_free(rd);
	free(buf);
}

/* ---- truncation, trailing bytes, bit flips -------------------------------- */

/* entry_ends lists where each entry of a list ends (its byte offset). */
static size_t entry_ends(const uint8_t *buf, size_t len, size_t *ends, size_t cap)
{
	struct cvm_ima_reader *rd;
	struct cvm_ima_entry e;
	size_t n = 0, off = 0;
	bool has;

	assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	for (;;) {
		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		if (!has)
			break;
		if (cvm_ima_reader_format(rd) == CVM_IMA_FORMAT_ASCII) {
			while (off < len && buf[off] != '\n')
				off++;
			off++;
		} else {
			struct cvm_rd r;

			cvm_rd_init(&r, buf, len);
			assert_true(cvm_rd_skip(&r, off));
			assert_int_equal(cvm_ima_entry_parse_binary(&r, false, &e), CVM_OK);
			off = len - r.len;
		}
		assert_true(n < cap);
		ends[n++] = off;
	}
	cvm_ima_reader_free(rd);
	assert_int_equal(off, len);
	return n;
}

/* parse_only reads a list to its end or first error, without hashing. */
static int parse_only(const uint8_t *buf, size_t len, uint64_t *entries, char *err, size_t err_len)
{
	struct cvm_ima_reader *rd;
	struct cvm_ima_entry e;
	bool has = true;
	int r = CVM_OK;

	assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	while (has && r == CVM_OK)
		r = cvm_ima_reader_next(rd, &e, &has);
	*entries = cvm_ima_reader_count(rd);
	(void)snprintf(err, err_len, "%s", cvm_ima_reader_err(rd));
	cvm_ima_reader_free(rd);
	return r;
}

static void every_truncation_fails_or_replays_fewer_entries(void **state)
{
	static const char *const files[] = {
	    "ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements",
	    "ima/vm-ovmf-tpmcrb-imang/ascii_runtime_measurements",
	    "ima/cosmian-ima-sig/binary_runtime_measurements",
	    "ima/evmutils-boot-aggregate/ascii_runtime_measurements",
	};
	static size_t ends[4096];

	(void)state;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t len, n, k = 0, stride = flip_stride(), boundaries = 0;
		uint8_t *buf = vector_read(files[f], &len);
		struct replayed full, rp;

		replay_buf(buf, len, &full);
		assert_int_equal(full.r, CVM_OK);
		n = entry_ends(buf, len, ends, sizeof(ends) / sizeof(ends[0]));
		for (size_t cut = 0; cut < len; cut++) {
			bool boundary;
			uint8_t *t;

			while (k < n && ends[k] < cut)
				k++;
			boundary = cut == 0 || (k < n && ends[k] == cut);
			if (!boundary && cut % stride != 0)
				continue;
			/* the truncated list in its own allocation, so reading past it is caught */
			t = malloc(cut + 1);
			assert_non_null(t);
			memcpy(t, buf, cut);
			if (boundary) {
				/* a whole number of entries: a shorter list, never the full PCRs */
				replay_buf(t, cut, &rp);
				assert_int_equal(rp.r, CVM_OK);
				assert_int_equal(rp.entries, cut == 0 ? 0 : k + 1);
				assert_memory_not_equal(rp.pcr[1], full.pcr[1], 32);
				boundaries++;
			} else {
				/* Entries are decoded one by one, so the entries before
				 * the cut one need not be read again for every cut: the
				 * reader starts at the cut entry, except for a sample of
				 * cuts read from the start of the list. */
				size_t start = k == 0 || cut % 97 == 0 ? 0 : ends[k - 1];
				char err[400];
				uint64_t got;
				int r = parse_only(t + start, cut - start, &got, err, sizeof(err));

				if (r != CVM_E_TRUNCATED || strstr(err, "truncated") == NULL)
					fail_msg("%s cut at %zu: %s (%s)", files[f], cut, cvm_strerror(r),
					         err);
				assert_int_equal(got, start == 0 ? k : 0);
			}
			free(t);
		}
		assert_int_equal(boundaries, n); /* cut 0 and every end but the last */
		free(buf);
	}
}

static void one_trailing_byte_is_rejected(void **state)
{
	static const char *const files[] = {"ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements",
	                                    "ima/vm-ovmf-tpmcrb-imang/ascii_runtime_measurements"};

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		size_t len;
		uint8_t *buf = vector_read(files[f], &len);
		uint8_t *t = malloc(len + 1);
		struct replayed rp;

		assert_non_null(t);
		memcpy(t, buf, len);
		for (unsigned b = 0; b < 256; b += 51) {
			t[len] = (uint8_t)b;
			replay_buf(t, len + 1, &rp);
			assert_int_equal(rp.r, CVM_E_TRUNCATED);
			assert_int_equal(rp.entries, 513);
		}
		free(t);
		free(buf);
	}
}

/* unmeasured marks the bytes no template digest covers, where a flip may
 * leave every PCR unchanged as it would in the kernel: binary template
 * names (a renamed template is an undecoded one, with the same data) and the
 * fields of violation entries (extended as 0xff.. whatever they hold). */
static uint8_t *unmeasured(const uint8_t *buf, size_t len)
{
	uint8_t *mask = calloc(len + 1, 1), scratch[CVM_IMA_TEMPLATE_DATA_MAX];
	struct cvm_ima_entry e;
	struct cvm_rd r;
	size_t off = 0;

	assert_non_null(mask);
	if (len > 0 && buf[0] >= '0' && buf[0] <= '9') {
		while (off < len) {
			size_t end = off, sp = 0, field = 0;

			while (end < len && buf[end] != '\n')
				end++;
			assert_int_equal(cvm_ima_entry_parse_ascii((const char *)buf + off, end - off,
			                                           scratch, sizeof(scratch), &e),
			                 CVM_OK);
			for (size_t i = off; i < end && field == 0; i++) {
				if (buf[i] == ' ' && ++sp == 3)
					field = i + 1;
			}
			if (e.is_violation)
				memset(mask + field, 1, end - field);
			off = end + 1;
		}
		return mask;
	}
	cvm_rd_init(&r, buf, len);
	while (!cvm_rd_empty(&r)) {
		assert_int_equal(cvm_ima_entry_parse_binary(&r, false, &e), CVM_OK);
		memset(mask + (e.template_name.p - buf), 1, e.template_name.len);
		if (e.is_violation && e.template_data.len != 0)
			memset(mask + (e.template_data.p - buf), 1, e.template_data.len);
	}
	return mask;
}

static bool is_hex_letter(uint8_t c)
{
	return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* flip_all flips every bit (stride aside) of `len` bytes and replays:
 * never a crash, and never the unflipped PCR values unless the byte is one
 * no digest covers (or, in ascii, a hex letter changed case: the same
 * value). */
static void flip_all(const uint8_t *buf, size_t len, const char *what)
{
	struct replayed full, rp;
	size_t stride = flip_stride(), same = 0, tried = 0, first_same = 0;
	uint8_t *t = malloc(len), *mask = unmeasured(buf, len);
	bool ascii = len > 0 && buf[0] >= '0' && buf[0] <= '9';

	assert_non_null(t);
	replay_buf(buf, len, &full);
	assert_int_equal(full.r, CVM_OK);
	memcpy(t, buf, len);
	for (size_t bit = 0; bit < 8 * len; bit += stride) {
		size_t at = bit / 8;

		if (mask[at] || (ascii && bit % 8 == 5 && is_hex_letter(buf[at])))
			continue;
		tried++;
		t[at] ^= (uint8_t)(1u << (bit % 8));
		replay_buf(t, len, &rp);
		if (rp.r == CVM_OK && memcmp(rp.pcr[0], full.pcr[0], 20) == 0 &&
		    memcmp(rp.pcr[1], full.pcr[1], 32) == 0 && same++ == 0)
			first_same = bit;
		t[at] ^= (uint8_t)(1u << (bit % 8));
	}
	if (same != 0)
		fail_msg("%s: %zu bit flips replay to the original PCR values (first: bit %zu)", what, same,
		         first_same);
	assert_true(tried > 0);
	free(mask);
	free(t);
}

/* The first entries of each real list (every bit), and the whole list of
 * the own boot with a coarse stride: a flip in the PCR index moves the
 * extend to another PCR, anywhere else the template digest check or the
 * parser catches it. */
static void no_bit_flip_crashes_or_replays_to_the_same_pcrs(void **state)
{
	static const char *const files[] = {
	    "ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements",
	    "ima/vm-ovmf-tpmcrb-imang/ascii_runtime_measurements",
	    "ima/cosmian-ima-sig/binary_runtime_measurements",
	    "ima/cosmian-ima-ng-violations/binary_runtime_measurements",
	    "ima/keylime-ima-log-sha384/ascii_runtime_measurements",
	    "ima/rustkeylime-small/ascii_runtime_measurements",
	};
	static size_t ends[4096];

	(void)state;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t len, n;
		uint8_t *buf = vector_read(files[f], &len);

		n = entry_ends(buf, len, ends, sizeof(ends) / sizeof(ends[0]));
		flip_all(buf, ends[n < 4 ? n - 1 : 3], files[f]);
		free(buf);
	}
}

/* The signed entry of the ima-sig vector: any flip in it breaks the
 * template digest. */
static void flips_in_the_signed_entry_are_caught(void **state)
{
	size_t len, n, start = 0, which = SIZE_MAX;
	uint8_t *buf = vector_read("ima/cosmian-ima-sig/binary_runtime_measurements", &len);
	static size_t ends[4096];
	struct cvm_ima_entry e;
	struct cvm_rd r;
	uint8_t *t;

	(void)state;
	n = entry_ends(buf, len, ends, sizeof(ends) / sizeof(ends[0]));
	for (size_t i = 0; i < n && which == SIZE_MAX; i++) {
		size_t s = i == 0 ? 0 : ends[i - 1];

		cvm_rd_init(&r, buf, len);
		assert_true(cvm_rd_skip(&r, s));
		assert_int_equal(cvm_ima_entry_parse_binary(&r, false, &e), CVM_OK);
		if (e.sig.len != 0) {
			which = i;
			start = s;
		}
	}
	assert_int_not_equal(which, SIZE_MAX);
	t = malloc(ends[which] - start);
	assert_non_null(t);
	memcpy(t, buf + start, ends[which] - start);
	flip_all(t, ends[which] - start, "signed entry");
	free(t);
	free(buf);
}

/* ---- own lists: every template, both encodings, both byte orders ----------- */

struct builder {
	struct cvm_wr w;
	bool be;
};

static void put_u32(struct builder *b, uint32_t v)
{
	if (b->be)
		cvm_wr_u32be(&b->w, v);
	else
		cvm_wr_u32le(&b->w, v);
}

static void put_field(struct cvm_wr *w, bool be, const void *p, size_t n)
{
	if (be)
		cvm_wr_u32be(w, (uint32_t)n);
	else
		cvm_wr_u32le(w, (uint32_t)n);
	cvm_wr_bytes(w, p, n);
}

/* put_entry appends a binary entry whose template digest is SHA-1 over the
 * template data (computed here with OpenSSL). */
static void put_entry(struct builder *b, uint32_t pcr, const char *tname, const uint8_t *td, size_t td_len,
                      bool violation)
{
	uint8_t d[20] = {0};

	if (!violation)
		SHA1(td, td_len, d);
	put_u32(b, pcr);
	cvm_wr_bytes(&b->w, d, sizeof(d));
	put_u32(b, (uint32_t)strlen(tname));
	cvm_wr_str(&b->w, tname);
	put_u32(b, (uint32_t)td_len);
	cvm_wr_bytes(&b->w, td, td_len);
}

/* d_ng writes a d-ng field value ("<algo>:\0<digest>"). */
static size_t d_ng(uint8_t *out, const char *prefix, const uint8_t *dig, size_t n)
{
	size_t pl = strlen(prefix);

	memcpy(out, prefix, pl);
	out[pl] = ':';
	out[pl + 1] = 0;
	memcpy(out + pl + 2, dig, n);
	return pl + 2 + n;
}

/* td_build makes template data from fields given as (pointer, length). */
static size_t td_build(uint8_t *out, size_t cap, bool be, size_t nf, const uint8_t *const *f,
                       const size_t *fl)
{
	struct cvm_wr w;
	uint8_t *p;
	size_t n;

	cvm_wr_init_fixed(&w, out, cap);
	for (size_t i = 0; i < nf; i++)
		put_field(&w, be, f[i], fl[i]);
	assert_int_equal(cvm_wr_finish(&w, &p, &n), CVM_OK);
	return n;
}

/* kernel_extend recomputes a bank the kernel's way, independently of lib/ima. */
static void kernel_extend(const EVP_MD *md, uint8_t *pcr, const uint8_t *td, size_t td_len, bool violation)
{
	uint8_t d[64], buf[128];
	size_t n = (size_t)EVP_MD_get_size(md);
	unsigned int l;

	if (violation)
		memset(d, 0xff, n);
	else
		assert_int_equal(EVP_Digest(td, td_len, d, &l, md, NULL), 1);
	memcpy(buf, pcr, n);
	memcpy(buf + n, d, n);
	assert_int_equal(EVP_Digest(buf, 2 * n, pcr, &l, md, NULL), 1);
}

static void replay_owned(const uint8_t *buf, size_t len, enum cvm_ima_format fmt, uint8_t sha1[20],
                         uint8_t sha256[32], uint64_t *entries)
{
	struct cvm_ima_reader *rd;
	struct cvm_ima_replay *rp;
	struct cvm_ima_entry e;
	bool has;
	int r;

	assert_int_equal(cvm_ima_reader_new_mem(buf, len, fmt, &rd), CVM_OK);
	assert_int_equal(cvm_ima_replay_new(banks2, 2, &rp), CVM_OK);
	for (;;) {
		r = cvm_ima_reader_next(rd, &e, &has);
		if (r != CVM_OK)
			fail_msg("%s", cvm_ima_reader_err(rd));
		if (!has)
			break;
		assert_int_equal(cvm_ima_replay_extend(rp, &e), CVM_OK);
	}
	*entries = cvm_ima_replay_entries(rp);
	assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SHA1, 10, sha1, 20), CVM_OK);
	assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SHA256, 10, sha256, 32), CVM_OK);
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
}

static void every_template_replays_as_the_kernel_extends_it(void **state)
{
	static const char *const names[] = {"ima-ng",   "ima-sig",   "ima-buf", "ima-modsig",
	                                    "ima-ngv2", "ima-sigv2", "ima"};
	const EVP_MD *md1 = EVP_sha1(), *md256 = EVP_sha256();

	(void)state;
	for (int be = 0; be < 2; be++) {
		struct builder b;
		uint8_t want1[20] = {0}, want256[32] = {0}, got1[20], got256[32], *list;
		uint8_t fd[64], dng[96], dng2[96], sig[40], buf_f[16], mdig[64], td[1024], imatd[20 + 256];
		char ascii[8192];
		size_t list_len, dl, dl2, al = 0;
		uint64_t n;

		memset(fd, 0x5a, sizeof(fd));
		memset(sig, 0x03, sizeof(sig));
		memset(buf_f, 0xb0, sizeof(buf_f));
		memset(mdig, 0x77, sizeof(mdig));
		b.be = be != 0;
		cvm_wr_init(&b.w, 1 << 20);
		dl = d_ng(dng, "sha256", fd, 32);
		dl2 = d_ng(dng2, "verity:sha512", fd, 64);
		for (size_t t = 0; t < sizeof(names) / sizeof(names[0]); t++) {
			const uint8_t *f[5];
			size_t fl[5], nf = 0, tl;
			char hex[2 * 128 + 1];

			if (strcmp(names[t], "ima") == 0) {
				/* d (20 bytes) and the name padded to 256, no lengths */
				static const char nm[] = "/sbin/init";

				memset(imatd, 0, sizeof(imatd));
				memcpy(imatd, fd, 20);
				memcpy(imatd + 20, nm, sizeof(nm) - 1);
				put_u32(&b, 10);
				{
					uint8_t d[20];

					SHA1(imatd, sizeof(imatd), d);
					cvm_wr_bytes(&b.w, d, 20);
					kernel_extend(md1, want1, imatd, sizeof(imatd), false);
					kernel_extend(md256, want256, imatd, sizeof(imatd), false);
					hex_of(d, 20, hex);
					al += (size_t)snprintf(ascii + al, sizeof(ascii) - al, "10 %s ima ",
					                       hex);
				}
				put_u32(&b, 3);
				cvm_wr_str(&b.w, "ima");
				cvm_wr_bytes(&b.w, fd, 20);
				put_u32(&b, sizeof(nm) - 1);
				cvm_wr_bytes(&b.w, nm, sizeof(nm) - 1);
				hex_of(fd, 20, hex);
				al += (size_t)snprintf(ascii + al, sizeof(ascii) - al, "%s %s\n", hex, nm);
				continue;
			}
			f[nf] = strstr(names[t], "v2") != NULL ? dng2 : dng;
			fl[nf++] = strstr(names[t], "v2") != NULL ? dl2 : dl;
			f[nf] = (const uint8_t *)"/usr/bin/with space\0";
			fl[nf++] = 20;
			if (strstr(names[t], "sig") != NULL) {
				f[nf] = sig;
				fl[nf++] = sizeof(sig);
			}
			if (strcmp(names[t], "ima-buf") == 0) {
				f[nf] = buf_f;
				fl[nf++] = sizeof(buf_f);
			}
			if (strcmp(names[t], "ima-modsig") == 0) {
				static uint8_t dm[80];
				size_t dml = d_ng(dm, "sha256", mdig, 32);

				f[nf] = dm;
				fl[nf++] = dml;
				f[nf] = buf_f;
				fl[nf++] = sizeof(buf_f);
			}
			tl = td_build(td, sizeof(td), b.be, nf, f, fl);
			put_entry(&b, 10, names[t], td, tl, false);
			/* the ascii list is little-endian: rebuild its template data so */
			tl = td_build(td, sizeof(td), false, nf, f, fl);
			{
				uint8_t d[20];

				SHA1(td, tl, d);
				hex_of(d, 20, hex);
			}
			al += (size_t)snprintf(ascii + al, sizeof(ascii) - al, "10 %s %s %s:", hex, names[t],
			                       strstr(names[t], "v2") != NULL ? "verity:sha512" : "sha256");
			hex_of(fd, strstr(names[t], "v2") != NULL ? 64 : 32, hex);
			al += (size_t)snprintf(ascii + al, sizeof(ascii) - al, "%s /usr/bin/with space", hex);
			if (strstr(names[t], "sig") != NULL) {
				hex_of(sig, sizeof(sig), hex);
				al += (size_t)snprintf(ascii + al, sizeof(ascii) - al, " %s", hex);
			}
			if (strcmp(names[t], "ima-buf") == 0 || strcmp(names[t], "ima-modsig") == 0) {
				if (strcmp(names[t], "ima-modsig") == 0) {
					hex_of(mdig, 32, hex);
					al += (size_t)snprintf(ascii + al, sizeof(ascii) - al, " sha256:%s",
					                       hex);
				}
				hex_of(buf_f, sizeof(buf_f), hex);
				al += (size_t)snprintf(ascii + al, sizeof(ascii) - al, " %s", hex);
			}
			al += (size_t)snprintf(ascii + al, sizeof(ascii) - al, "\n");
			if (!b.be) {
				kernel_extend(md1, want1, td, tl, false);
				kernel_extend(md256, want256, td, tl, false);
			} else {
				uint8_t tdbe[1024];
				size_t tlbe = td_build(tdbe, sizeof(tdbe), true, nf, f, fl);

				kernel_extend(md1, want1, tdbe, tlbe, false);
				kernel_extend(md256, want256, tdbe, tlbe, false);
			}
		}
		/* a violation, extended as 0xff.. */
		{
			const uint8_t *f[2] = {dng, (const uint8_t *)"/tmp/open-for-write\0"};
			size_t fl[2] = {dl, 20};
			size_t tl = td_build(td, sizeof(td), b.be, 2, f, fl);

			put_entry(&b, 10, "ima-ng", td, tl, true);
			kernel_extend(md1, want1, td, tl, true);
			kernel_extend(md256, want256, td, tl, true);
			al += (size_t)snprintf(
			    ascii + al, sizeof(ascii) - al,
			    "10 0000000000000000000000000000000000000000 ima-ng sha256:%064d "
			    "/tmp/open-for-write\n",
			    0);
		}
		assert_int_equal(cvm_wr_finish(&b.w, &list, &list_len), CVM_OK);
		replay_owned(list, list_len, CVM_IMA_FORMAT_AUTO, got1, got256, &n);
		assert_int_equal(n, 8);
		assert_memory_equal(got1, want1, 20);
		assert_memory_equal(got256, want256, 32);
		if (!b.be) {
			/* the ascii form of the same list replays to the same values
			 * (the violation's digest differs, which a violation ignores) */
			replay_owned((const uint8_t *)ascii, al, CVM_IMA_FORMAT_AUTO, got1, got256, &n);
			assert_int_equal(n, 8);
			assert_memory_equal(got1, want1, 20);
			assert_memory_equal(got256, want256, 32);
		}
		free(list);
	}
}

static void decoded_fields_borrow_from_the_entry(void **state)
{
	static const char line[] =
	    "10 e8b1b4d2a5c2d4a6e5b1c39f7ffd2bbcfa3f3bb8 ima-modsig sha256:"
	    "0101010101010101010101010101010101010101010101010101010101010101 /a b "
	    "030204aabbccdd0001ff sha512:"
	    "02020202020202020202020202020202020202020202020202020202020202020202020202020202"
	    "020202020202020202020202020202020202020202020202 3082";
	uint8_t scratch[1024];
	struct cvm_ima_entry e;
	struct cvm_ima_sig sig;

	(void)state;
	assert_int_equal(cvm_ima_entry_parse_ascii(line, strlen(line), scratch, sizeof(scratch), &e), CVM_OK);
	assert_int_equal(e.template_id, CVM_IMA_TEMPLATE_IMA_MODSIG);
	assert_int_equal(e.field_count, 5);
	assert_int_equal(e.digest_alg, CVM_DIGEST_SHA256);
	assert_int_equal(e.name.len, 4);
	assert_memory_equal(e.name.p, "/a b", 4);
	assert_int_equal(e.sig.len, 10);
	assert_int_equal(e.modsig_digest_alg, CVM_DIGEST_SHA512);
	assert_int_equal(e.modsig.len, 2);
	assert_int_equal(cvm_ima_sig_parse(e.sig, &sig), CVM_OK);
	assert_int_equal(sig.keyid, 0xaabbccdd);
	assert_int_equal(sig.value.len, 1);
	assert_string_equal(cvm_ima_template_name(e.template_id), "ima-modsig");
	/* the rebuilt template data is exactly the fields */
	assert_ptr_equal(e.template_data.p, scratch);
}

/* ---- malformed lists: clear errors ---------------------------------------- */

struct bad_case {
	const char *what;
	int want;
	const char *msg;
};

static void reader_error(const uint8_t *buf, size_t len, int want, const char *msg)
{
	struct cvm_ima_reader *rd;
	struct cvm_ima_entry e;
	bool has = true;
	int r = CVM_OK;

	assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	while (has && r == CVM_OK)
		r = cvm_ima_reader_next(rd, &e, &has);
	if (r != want || strstr(cvm_ima_reader_err(rd), msg) == NULL)
		fail_msg("want %s with '%s', got %s: '%s'", cvm_strerror(want), msg, cvm_strerror(r),
		         cvm_ima_reader_err(rd));
	/* errors are sticky */
	assert_int_equal(cvm_ima_reader_next(rd, &e, &has), want);
	cvm_ima_reader_free(rd);
}

static void malformed_binary_lists_give_clear_errors(void **state)
{
	uint8_t dig[32] = {1}, dng[64], td[512];
	size_t dl = d_ng(dng, "sha256", dig, 32);
	struct builder b;
	uint8_t *list;
	size_t len;

	(void)state;
	/* PCR index out of range */
	{
		const uint8_t *f[2] = {dng, (const uint8_t *)"/x\0"};
		size_t fl[2] = {dl, 3};
		size_t tl = td_build(td, sizeof(td), false, 2, f, fl);

		b.be = false;
		cvm_wr_init(&b.w, 4096);
		put_entry(&b, 24, "ima-ng", td, tl, false);
		assert_int_equal(cvm_wr_finish(&b.w, &list, &len), CVM_OK);
		reader_error(list, len, CVM_E_FORMAT, "entry 1 at byte 0: PCR index 24");
		free(list);
	}
	/* template name over its cap, with the input ending right after the length */
	{
		uint8_t e[28] = {10};

		e[24] = 65;
		reader_error(e, sizeof(e), CVM_E_TOO_LARGE, "template name length 65 exceeds the cap");
	}
	/* template data length over its cap, short input */
	{
		b.be = false;
		cvm_wr_init(&b.w, 4096);
		put_u32(&b, 10);
		cvm_wr_zeros(&b.w, 19);
		cvm_wr_u8(&b.w, 1);
		put_u32(&b, 6);
		cvm_wr_str(&b.w, "ima-ng");
		put_u32(&b, CVM_IMA_TEMPLATE_DATA_MAX + 1);
		assert_int_equal(cvm_wr_finish(&b.w, &list, &len), CVM_OK);
		reader_error(list, len, CVM_E_TOO_LARGE, "template data length 131073 exceeds the cap");
		free(list);
	}
	/* field-level faults */
	{
		static const struct {
			const char *name;
			size_t nf;
			const char *f[3];
			size_t fl[3];
			const char *msg;
		} cases[] = {
		    {"no NUL after the name",
		     2,
		     {"sha256:\0ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "/x"},
		     {40, 2},
		     "does not end with a NUL"},
		    {"NUL inside the name",
		     2,
		     {"sha256:\0ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "/x\0y\0"},
		     {40, 5},
		     "NUL byte before its end"},
		    {"no algorithm prefix",
		     2,
		     {"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "/x\0"},
		     {32, 3},
		     "does not start with '<algorithm>:'"},
		    {"short sha256 digest",
		     2,
		     {"sha256:\0ABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "/x\0"},
		     {39, 3},
		     "digest is 31 bytes, sha256 has 32"},
		    {"too few fields",
		     1,
		     {"sha256:\0ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"},
		     {40},
		     "template ima-ng has 2 fields, the entry holds 1"},
		    {"bad algorithm bytes",
		     2,
		     {"SHA-256:\0ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "/x\0"},
		     {41, 3},
		     "algorithm name holds byte 0x53"},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const uint8_t *f[3];
			size_t tl;

			for (size_t j = 0; j < cases[i].nf; j++)
				f[j] = (const uint8_t *)cases[i].f[j];
			tl = td_build(td, sizeof(td), false, cases[i].nf, f, cases[i].fl);
			b.be = false;
			cvm_wr_init(&b.w, 4096);
			put_entry(&b, 10, "ima-ng", td, tl, false);
			assert_int_equal(cvm_wr_finish(&b.w, &list, &len), CVM_OK);
			reader_error(list, len, CVM_E_FORMAT, cases[i].msg);
			free(list);
		}
	}
	/* a field length past the template data */
	{
		uint8_t bad[8] = {200, 0, 0, 0, 'a', 'b', 'c', 'd'};

		b.be = false;
		cvm_wr_init(&b.w, 4096);
		put_entry(&b, 10, "ima-ng", bad, sizeof(bad), false);
		assert_int_equal(cvm_wr_finish(&b.w, &list, &len), CVM_OK);
		reader_error(list, len, CVM_E_FORMAT, "field 1 announces 200 bytes, 4 remain");
		free(list);
	}
	/* a template digest that does not match: the replay says so */
	{
		const uint8_t *f[2] = {dng, (const uint8_t *)"/x\0"};
		size_t fl[2] = {dl, 3};
		size_t tl = td_build(td, sizeof(td), false, 2, f, fl);
		struct replayed rp;

		b.be = false;
		cvm_wr_init(&b.w, 4096);
		put_entry(&b, 10, "ima-ng", td, tl, false);
		assert_int_equal(cvm_wr_finish(&b.w, &list, &len), CVM_OK);
		list[10] ^= 1;
		replay_buf(list, len, &rp);
		assert_int_equal(rp.r, CVM_E_MISMATCH);
		assert_int_equal(rp.entries, 0);
		free(list);
	}
}

static void unknown_templates_replay_in_binary_but_not_in_ascii(void **state)
{
	uint8_t td[64];
	const uint8_t *f[2] = {(const uint8_t *)"abc", (const uint8_t *)"de"};
	size_t fl[2] = {3, 2}, tl = td_build(td, sizeof(td), false, 2, f, fl), len;
	uint8_t want1[20] = {0}, want256[32] = {0}, got1[20], got256[32], *list;
	static const char ascii[] = "10 0123456789012345678901234567890123456789 my-tmpl abc de\n";
	struct builder b;
	uint64_t n;

	(void)state;
	b.be = false;
	cvm_wr_init(&b.w, 4096);
	put_entry(&b, 10, "my-tmpl", td, tl, false);
	assert_int_equal(cvm_wr_finish(&b.w, &list, &len), CVM_OK);
	kernel_extend(EVP_sha1(), want1, td, tl, false);
	kernel_extend(EVP_sha256(), want256, td, tl, false);
	replay_owned(list, len, CVM_IMA_FORMAT_BINARY, got1, got256, &n);
	assert_int_equal(n, 1);
	assert_memory_equal(got1, want1, 20);
	assert_memory_equal(got256, want256, 32);
	free(list);
	reader_error((const uint8_t *)ascii, sizeof(ascii) - 1, CVM_E_UNSUPPORTED,
	             "template 'my-tmpl' cannot be rebuilt");
}

static void malformed_ascii_lines_give_clear_errors(void **state)
{
	static const struct {
		const char *line;
		int want;
		const char *msg;
	} cases[] = {
	    {"1x 0123456789012345678901234567890123456789 ima-ng "
	     "sha1:0123456789012345678901234567890123456789 /x\n",
	     CVM_E_FORMAT, "line 1: the PCR index is not a decimal number"},
	    {"24 0123456789012345678901234567890123456789 ima-ng "
	     "sha1:0123456789012345678901234567890123456789 /x\n",
	     CVM_E_FORMAT, "PCR index 24"},
	    {"10 0123456789012345678901234567890123456789 ima-ng "
	     "sha1:0123456789012345678901234567890123456789\n",
	     CVM_E_FORMAT, "no event name after the digest field"},
	    {"10 012345678901234567890123456789012345678g ima-ng "
	     "sha1:0123456789012345678901234567890123456789 /x\n",
	     CVM_E_FORMAT, "the template digest must be 40 hex digits"},
	    {"10 0123456789012345678901234567890123456789 ima-ng "
	     "sha1:012345678901234567890123456789012345678 /x\n",
	     CVM_E_FORMAT, "odd number of hex digits"},
	    {"10 0123456789012345678901234567890123456789 ima-ng "
	     "sha256:0123456789012345678901234567890123456789 /x\n",
	     CVM_E_FORMAT, "digest is 20 bytes, sha256 has 32"},
	    {"10 0123456789012345678901234567890123456789 ima-buf "
	     "sha1:0123456789012345678901234567890123456789 kexec zz\n",
	     CVM_E_FORMAT, "template ima-buf needs 1 hex fields after the event name"},
	    {"10 0123456789012345678901234567890123456789 ima-ng "
	     "sha1:0123456789012345678901234567890123456789 /x",
	     CVM_E_TRUNCATED, "the last line has no newline"},
	    {"10 0123456789012345678901234567890123456789 ima-ng "
	     "sha1:0123456789012345678901234567890123456789 /x\r\n",
	     CVM_E_FORMAT, "carriage return"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		reader_error((const uint8_t *)cases[i].line, strlen(cases[i].line), cases[i].want,
		             cases[i].msg);
}

/* ---- streaming ------------------------------------------------------------ */

/* A list several times larger than the reader's window, read through a file
 * descriptor, replays as it does from memory. */
static void a_descriptor_reader_streams_lists_larger_than_its_window(void **state)
{
	size_t len, copies = 8;
	uint8_t *one = vector_read("ima/cosmian-ima-ng-violations/binary_runtime_measurements", &len);
	uint8_t *all = malloc(len * copies);
	char path[] = "/tmp/cvm-test-ima-XXXXXX";
	struct replayed mem;
	struct cvm_ima_reader *rd;
	struct cvm_ima_replay *rp;
	struct cvm_ima_entry e;
	uint8_t v[32];
	bool has;
	int fd;

	(void)state;
	assert_non_null(all);
	for (size_t i = 0; i < copies; i++)
		memcpy(all + i * len, one, len);
	replay_buf(all, len * copies, &mem);
	assert_int_equal(mem.r, CVM_OK);
	assert_int_equal(mem.entries, 2127 * copies);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, all, len * copies), (ssize_t)(len * copies));
	(void)close(fd);
	assert_int_equal(cvm_ima_reader_open(path, CVM_IMA_FORMAT_BINARY, &rd), CVM_OK);
	assert_int_equal(cvm_ima_replay_new(banks2, 2, &rp), CVM_OK);
	for (;;) {
		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		if (!has)
			break;
		assert_int_equal(cvm_ima_replay_extend(rp, &e), CVM_OK);
	}
	assert_int_equal(cvm_ima_replay_entries(rp), mem.entries);
	assert_int_equal(cvm_ima_replay_violations(rp), 256 * copies);
	assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SHA256, 10, v, sizeof(v)), CVM_OK);
	assert_memory_equal(v, mem.pcr[1], 32);
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
	(void)unlink(path);
	assert_int_equal(cvm_ima_reader_open("/nonexistent/ima", CVM_IMA_FORMAT_AUTO, &rd), CVM_E_SYSTEM);
	assert_null(rd);
	free(all);
	free(one);
}

static void replay_rejects_bad_bank_lists(void **state)
{
	static const uint16_t dup[] = {CVM_DIGEST_SHA256, CVM_DIGEST_SHA256};
	static const uint16_t unknown[] = {0x0099};
	static const uint16_t all[] = {CVM_DIGEST_SHA1,   CVM_DIGEST_SHA256,  CVM_DIGEST_SHA384,
	                               CVM_DIGEST_SHA512, CVM_DIGEST_SM3_256, CVM_DIGEST_SHA1};
	struct cvm_ima_replay *rp;
	uint8_t v[64];

	(void)state;
	assert_int_equal(cvm_ima_replay_new(dup, 2, &rp), CVM_E_INVAL);
	assert_int_equal(cvm_ima_replay_new(unknown, 1, &rp), CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_ima_replay_new(all, 6, &rp), CVM_E_INVAL);
	assert_int_equal(cvm_ima_replay_new(all, 0, &rp), CVM_E_INVAL);
	assert_int_equal(cvm_ima_replay_new(all, 5, &rp), CVM_OK);
	assert_int_equal(cvm_ima_replay_bank_count(rp), 5);
	assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SM3_256, 10, v, sizeof(v)), CVM_OK);
	assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SHA512, 24, v, sizeof(v)), CVM_E_INVAL);
	assert_int_equal(cvm_ima_replay_pcr(rp, CVM_DIGEST_SHA512, 10, v, 32), CVM_E_INVAL);
	cvm_ima_replay_free(rp);
	cvm_ima_replay_free(NULL);
}

/* ---- reference sets --------------------------------------------------------- */

static void reference_sets_list_every_unknown_entry(void **state)
{
	size_t len, bad_line = 0, unknown_path = 0, unknown_digest = 0, matched = 0, boot = 0;
	uint8_t *buf = vector_read("ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements", &len);
	struct cvm_ima_refset *set;
	struct cvm_ima_reader *rd;
	struct cvm_ima_entry e;
	struct cvm_wr w;
	uint8_t *text;
	size_t text_len;
	uint64_t i = 0;
	bool has;

	(void)state;
	/* the reference: every entry of the list but #5 and #9, #12 with a
	 * wrong digest, #20 in binary-mode sha256sum form, #30 with an
	 * explicit algorithm; plus comments, a blank line and duplicates */
	cvm_wr_init(&w, 1 << 20);
	cvm_wr_str(&w, "# reference for the own boot\n\n");
	assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	for (;;) {
		char hex[65];

		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		if (!has)
			break;
		i++;
		if (i == 5 || i == 9)
			continue;
		hex_of(e.digest.p, e.digest.len, hex);
		if (i == 12)
			hex[0] = hex[0] == '0' ? '1' : '0';
		cvm_wr_fmt(&w, "%s%s%s%.*s\n", i == 30 ? "sha256:" : "", hex,
		           i == 20   ? " *"
		           : i == 30 ? " "
		                     : "  ",
		           (int)e.name.len, (const char *)e.name.p);
		if (i == 40)
			cvm_wr_fmt(&w, "%s  %.*s\n", hex, (int)e.name.len, (const char *)e.name.p);
	}
	cvm_ima_reader_free(rd);
	cvm_wr_str(
	    &w, "\\0000000000000000000000000000000000000000000000000000000000000000  /with\\nnewline\\\\\n");
	assert_int_equal(cvm_wr_finish(&w, &text, &text_len), CVM_OK);
	assert_int_equal(cvm_ima_refset_parse(text, text_len, &set, &bad_line), CVM_OK);
	assert_int_equal(cvm_ima_refset_count(set), 512); /* 513 - 2 + the escaped one; the duplicate once */

	assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	i = 0;
	for (;;) {
		enum cvm_ima_ref_result r;

		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		if (!has)
			break;
		i++;
		r = cvm_ima_refset_check(set, &e);
		switch (r) {
		case CVM_IMA_REF_MATCH:
			matched++;
			break;
		case CVM_IMA_REF_UNKNOWN_PATH:
			unknown_path++;
			assert_true(i == 5 || i == 9);
			break;
		case CVM_IMA_REF_UNKNOWN_DIGEST:
			unknown_digest++;
			assert_int_equal(i, 12);
			break;
		case CVM_IMA_REF_BOOT_AGGREGATE:
			boot++;
			assert_int_equal(i, 1);
			break;
		default:
			fail_msg("entry %llu: %s", (unsigned long long)i, cvm_ima_ref_result_name(r));
		}
	}
	assert_int_equal(unknown_path, 2);
	assert_int_equal(unknown_digest, 1);
	assert_int_equal(boot, 1);
	assert_int_equal(matched, 509);
	cvm_ima_reader_free(rd);
	cvm_ima_refset_free(set);
	free(text);
	free(buf);
}

static void malformed_reference_files_name_the_line(void **state)
{
	static const struct {
		const char *text;
		int want;
		size_t line;
	} cases[] = {
	    {"# ok\nzz  /x\n", CVM_E_FORMAT, 2},
	    {"0123456789012345678901234567890123456789\n", CVM_E_FORMAT, 1},
	    {"md5:0123456789abcdef0123456789abcdef /x\n", CVM_E_UNSUPPORTED, 1},
	    {"sha1:01234567890123456789012345678901234567 /x\n", CVM_E_FORMAT, 1},
	    {"\\0123456789012345678901234567890123456789  /bad\\escape\n", CVM_E_FORMAT, 1},
	    {"0123456789012345678901234567890123456789  \n", CVM_E_FORMAT, 1},
	};
	struct cvm_ima_refset *set;
	size_t line;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(
		    cvm_ima_refset_parse((const uint8_t *)cases[i].text, strlen(cases[i].text), &set, &line),
		    cases[i].want);
		assert_null(set);
		assert_int_equal(line, cases[i].line);
	}
	/* an empty reference is a valid, empty set */
	assert_int_equal(cvm_ima_refset_parse((const uint8_t *)"", 0, &set, &line), CVM_OK);
	assert_int_equal(cvm_ima_refset_count(set), 0);
	cvm_ima_refset_free(set);
}

/* ---- ima-sig signatures with own keys -------------------------------------- */

static uint8_t *key_pem(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	uint8_t *out;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n);
	assert_non_null(out);
	memcpy(out, p, (size_t)n);
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static uint32_t key_id(EVP_PKEY *k)
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits;
	int bits_len;
	uint8_t sha1[20];

	assert_int_equal(X509_PUBKEY_set(&xpk, k), 1);
	assert_int_equal(X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, xpk), 1);
	SHA1(bits, (size_t)bits_len, sha1);
	X509_PUBKEY_free(xpk);
	return (uint32_t)sha1[16] << 24 | (uint32_t)sha1[17] << 16 | (uint32_t)sha1[18] << 8 | sha1[19];
}

/* sign_digest signs `n` digest bytes as IMA's v2 does (the digest itself). */
static size_t sign_digest(EVP_PKEY *k, const EVP_MD *md, const uint8_t *dig, size_t n, uint8_t *sig,
                          size_t cap)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	size_t l = cap;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, md), 1);
	if (EVP_PKEY_is_a(k, "RSA"))
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, 1 /* RSA_PKCS1_PADDING */), 1);
	assert_int_equal(EVP_PKEY_sign(c, sig, &l, dig, n), 1);
	EVP_PKEY_CTX_free(c);
	return l;
}

/* sig_entry builds an ima-sig entry for `name` with a file digest and a
 * signature header (type 3, `version`, hash algo 4 = sha256). */
static void sig_entry(struct cvm_ima_entry *e, uint8_t *store, size_t cap, const uint8_t dig[32],
                      uint8_t version, uint32_t keyid, const uint8_t *sig, size_t sig_len)
{
	uint8_t dng[64], sf[600];
	size_t dl = d_ng(dng, "sha256", dig, 32), tl;
	const uint8_t *f[3] = {dng, (const uint8_t *)"/usr/bin/signed\0", sf};
	size_t fl[3] = {dl, 16, 9 + sig_len};
	struct builder b;
	uint8_t *list, td[1024];
	size_t len;
	struct cvm_rd r;

	sf[0] = 3;
	sf[1] = version;
	sf[2] = 4;
	sf[3] = (uint8_t)(keyid >> 24);
	sf[4] = (uint8_t)(keyid >> 16);
	sf[5] = (uint8_t)(keyid >> 8);
	sf[6] = (uint8_t)keyid;
	sf[7] = (uint8_t)(sig_len >> 8);
	sf[8] = (uint8_t)sig_len;
	memcpy(sf + 9, sig, sig_len);
	tl = td_build(td, sizeof(td), false, 3, f, fl);
	b.be = false;
	cvm_wr_init(&b.w, 4096);
	put_entry(&b, 10, "ima-sig", td, tl, false);
	assert_int_equal(cvm_wr_finish(&b.w, &list, &len), CVM_OK);
	assert_true(len <= cap);
	memcpy(store, list, len);
	free(list);
	cvm_rd_init(&r, store, len);
	assert_int_equal(cvm_ima_entry_parse_binary(&r, false, e), CVM_OK);
	assert_true(cvm_rd_empty(&r));
}

static enum cvm_ima_sig_status check(const struct cvm_ima_keyring *kr, const struct cvm_ima_entry *e)
{
	enum cvm_ima_sig_status st;
	uint32_t keyid;

	assert_int_equal(cvm_ima_sig_check(kr, e, &st, &keyid), CVM_OK);
	return st;
}

static void ima_sig_signatures_verify_with_the_right_key_only(void **state)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct cvm_ima_keyring *right, *wrong;
	struct cvm_ima_entry e;
	uint8_t dig[32], sig[512], store[2048], v3[32], id[2 + 32], *pem;
	size_t n, pem_len, stride = flip_stride(), bad = 0;
	EVP_PKEY *keys[2];

	(void)state;
	assert_non_null(rsa);
	assert_non_null(ec);
	assert_non_null(other);
	keys[0] = rsa;
	keys[1] = ec;
	SHA256((const uint8_t *)"file contents", 13, dig);
	assert_int_equal(cvm_ima_keyring_new(&right), CVM_OK);
	assert_int_equal(cvm_ima_keyring_new(&wrong), CVM_OK);
	for (size_t i = 0; i < 2; i++) {
		pem = key_pem(keys[i], &pem_len);
		assert_int_equal(cvm_ima_keyring_add(right, pem, pem_len), CVM_OK);
		free(pem);
	}
	pem = key_pem(other, &pem_len);
	assert_int_equal(cvm_ima_keyring_add(wrong, pem, pem_len), CVM_OK);
	free(pem);
	assert_int_equal(cvm_ima_keyring_count(right), 2);

	for (size_t i = 0; i < 2; i++) {
		uint32_t kid = key_id(keys[i]);

		/* v2: the file digest itself is signed */
		n = sign_digest(keys[i], EVP_sha256(), dig, sizeof(dig), sig, sizeof(sig));
		sig_entry(&e, store, sizeof(store), dig, 2, kid, sig, n);
		assert_int_equal(check(right, &e), CVM_IMA_SIG_VALID);
		assert_int_equal(check(wrong, &e), CVM_IMA_SIG_NO_KEY);
		/* the signature names the other key: it is found and fails */
		sig_entry(&e, store, sizeof(store), dig, 2, key_id(keys[1 - i]), sig, n);
		assert_int_equal(check(right, &e), CVM_IMA_SIG_INVALID);
		/* a signature over another digest */
		dig[0] ^= 1;
		sig_entry(&e, store, sizeof(store), dig, 2, kid, sig, n);
		assert_int_equal(check(right, &e), CVM_IMA_SIG_INVALID);
		dig[0] ^= 1;
		/* every flip of the signature value: never valid */
		for (size_t bit = 0; bit < 8 * n; bit += stride) {
			sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			sig_entry(&e, store, sizeof(store), dig, 2, kid, sig, n);
			if (check(right, &e) == CVM_IMA_SIG_VALID)
				bad++;
			sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		/* v3: the hash of (type, hash algo, digest) is signed */
		id[0] = 3;
		id[1] = 4;
		memcpy(id + 2, dig, 32);
		SHA256(id, sizeof(id), v3);
		n = sign_digest(keys[i], EVP_sha256(), v3, sizeof(v3), sig, sizeof(sig));
		sig_entry(&e, store, sizeof(store), dig, 3, kid, sig, n);
		assert_int_equal(check(right, &e), CVM_IMA_SIG_VALID);
		/* ... and is not a v2 signature */
		sig_entry(&e, store, sizeof(store), dig, 2, kid, sig, n);
		assert_int_equal(check(right, &e), CVM_IMA_SIG_INVALID);
	}
	assert_int_equal(bad, 0);
	/* header faults */
	sig_entry(&e, store, sizeof(store), dig, 1, 0, sig, 4);
	assert_int_equal(check(right, &e), CVM_IMA_SIG_UNSUPPORTED);
	{
		struct cvm_ima_sig s;
		struct cvm_rd r;
		static const uint8_t short_hdr[] = {3, 2, 4, 0, 0};
		static const uint8_t long_size[] = {3, 2, 4, 1, 2, 3, 4, 0, 9, 0xaa};

		cvm_rd_init(&r, short_hdr, sizeof(short_hdr));
		assert_int_equal(cvm_ima_sig_parse(r, &s), CVM_E_FORMAT);
		cvm_rd_init(&r, long_size, sizeof(long_size));
		assert_int_equal(cvm_ima_sig_parse(r, &s), CVM_E_FORMAT);
	}
	/* the real ima-sig vector's signature is from a key we do not hold */
	{
		size_t len;
		uint8_t *buf = vector_read("ima/cosmian-ima-sig/binary_runtime_measurements", &len);
		struct cvm_ima_reader *rd;
		bool has;
		size_t no_key = 0, none = 0;

		assert_int_equal(cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
		for (;;) {
			assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
			if (!has)
				break;
			switch (check(right, &e)) {
			case CVM_IMA_SIG_NONE:
				none++;
				break;
			case CVM_IMA_SIG_NO_KEY:
				no_key++;
				break;
			default:
				fail_msg("unexpected signature status");
			}
		}
		assert_int_equal(no_key, 1);
		assert_int_equal(none, 400);
		cvm_ima_reader_free(rd);
		free(buf);
	}
	cvm_ima_keyring_free(right);
	cvm_ima_keyring_free(wrong);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other);
}

/* A certificate's subjectKeyIdentifier is a key id too (the kernel's). */
static void certificates_are_found_by_their_subject_key_identifier(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	struct cvm_ima_keyring *kr;
	struct cvm_pubkey *pk;
	struct cvm_ima_entry e;
	uint8_t dig[32] = {9}, sig[256], store[2048], *der = NULL;
	const uint8_t *skid;
	size_t n, skid_len;
	int der_len;

	(void)state;
	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "01020304050607080910aabbccdd");
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, k, EVP_sha384()) > 0);
	der_len = i2d_X509(x, &der);
	assert_true(der_len > 0);

	assert_int_equal(cvm_pubkey_parse(der, (size_t)der_len, &pk), CVM_OK);
	assert_int_equal(cvm_pubkey_type(pk), CVM_PUBKEY_EC);
	assert_int_equal(cvm_pubkey_bits(pk), 384);
	assert_true(cvm_pubkey_skid(pk, &skid, &skid_len));
	assert_int_equal(skid_len, 14);
	cvm_pubkey_free(pk);

	assert_int_equal(cvm_ima_keyring_new(&kr), CVM_OK);
	assert_int_equal(cvm_ima_keyring_add(kr, der, (size_t)der_len), CVM_OK);
	n = sign_digest(k, EVP_sha256(), dig, sizeof(dig), sig, sizeof(sig));
	sig_entry(&e, store, sizeof(store), dig, 2, 0xaabbccdd, sig, n);
	assert_int_equal(check(kr, &e), CVM_IMA_SIG_VALID);
	sig_entry(&e, store, sizeof(store), dig, 2, key_id(k), sig, n);
	assert_int_equal(check(kr, &e), CVM_IMA_SIG_VALID);
	cvm_ima_keyring_free(kr);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void pubkey_parse_refuses_what_it_cannot_use(void **state)
{
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct cvm_pubkey *pk;
	uint8_t *pem, *der = NULL, *longer;
	size_t pem_len;
	int der_len;

	(void)state;
	assert_non_null(small);
	assert_non_null(ed);
	pem = key_pem(small, &pem_len);
	assert_int_equal(cvm_pubkey_parse(pem, pem_len, &pk), CVM_E_UNSUPPORTED);
	assert_null(pk);
	free(pem);
	pem = key_pem(ed, &pem_len);
	assert_int_equal(cvm_pubkey_parse(pem, pem_len, &pk), CVM_E_UNSUPPORTED);
	free(pem);
	assert_int_equal(cvm_pubkey_parse((const uint8_t *)"not a key", 9, &pk), CVM_E_FORMAT);
	assert_int_equal(cvm_pubkey_parse(NULL, 0, &pk), CVM_E_FORMAT);
	der_len = i2d_PUBKEY(ed, &der);
	assert_true(der_len > 0);
	longer = malloc((size_t)der_len + 1);
	assert_non_null(longer);
	memcpy(longer, der, (size_t)der_len);
	longer[der_len] = 0;
	assert_int_equal(cvm_pubkey_parse(longer, (size_t)der_len + 1, &pk), CVM_E_FORMAT);
	free(longer);
	OPENSSL_free(der);
	EVP_PKEY_free(small);
	EVP_PKEY_free(ed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_real_list_replays_to_its_manifest_values),
	    cmocka_unit_test(keylime_zero_boot_aggregate_counts_as_a_violation),
	    cmocka_unit_test(synthetic_sm3_list_is_rejected),
	    cmocka_unit_test(quoted_pcr10_is_reached_by_a_prefix_of_507_entries),
	    cmocka_unit_test(ima_sig_vector_carries_one_v2_signature),
	    cmocka_unit_test(every_truncation_fails_or_replays_fewer_entries),
	    cmocka_unit_test(one_trailing_byte_is_rejected),
	    cmocka_unit_test(no_bit_flip_crashes_or_replays_to_the_same_pcrs),
	    cmocka_unit_test(flips_in_the_signed_entry_are_caught),
	    cmocka_unit_test(every_template_replays_as_the_kernel_extends_it),
	    cmocka_unit_test(decoded_fields_borrow_from_the_entry),
	    cmocka_unit_test(malformed_binary_lists_give_clear_errors),
	    cmocka_unit_test(unknown_templates_replay_in_binary_but_not_in_ascii),
	    cmocka_unit_test(malformed_ascii_lines_give_clear_errors),
	    cmocka_unit_test(a_descriptor_reader_streams_lists_larger_than_its_window),
	    cmocka_unit_test(replay_rejects_bad_bank_lists),
	    cmocka_unit_test(reference_sets_list_every_unknown_entry),
	    cmocka_unit_test(malformed_reference_files_name_the_line),
	    cmocka_unit_test(ima_sig_signatures_verify_with_the_right_key_only),
	    cmocka_unit_test(certificates_are_found_by_their_subject_key_identifier),
	    cmocka_unit_test(pubkey_parse_refuses_what_it_cannot_use),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
