/* lib/core: the bounded reader and writer, hex and base64, capped file
 * reading, secret wiping, the report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/report.h>
#include <cvmkit/random.h>
#include <cvmkit/secret.h>

static void rd_short_input_fails_and_keeps_position(void **state)
{
	const uint8_t buf[3] = {1, 2, 3};
	struct cvm_rd r, sub;
	uint32_t v32;
	uint16_t v16;

	(void)state;
	cvm_rd_init(&r, buf, sizeof(buf));
	assert_false(cvm_rd_u32le(&r, &v32));
	assert_int_equal(r.len, 3);
	assert_true(cvm_rd_u16le(&r, &v16));
	assert_int_equal(v16, 0x0201);
	assert_false(cvm_rd_sub(&r, &sub, 2));
	assert_int_equal(r.len, 1);
	assert_false(cvm_rd_skip(&r, 2));
	assert_true(cvm_rd_skip(&r, 1));
	assert_true(cvm_rd_empty(&r));
}

static void rd_reads_every_byte_order(void **state)
{
	const uint8_t buf[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
	struct cvm_rd r;
	uint64_t v64;
	uint32_t v32;
	uint16_t v16;

	(void)state;
	cvm_rd_init(&r, buf, 8);
	assert_true(cvm_rd_u64le(&r, &v64));
	assert_true(v64 == 0x0807060504030201ull);
	cvm_rd_init(&r, buf, 8);
	assert_true(cvm_rd_u64be(&r, &v64));
	assert_true(v64 == 0x0102030405060708ull);
	cvm_rd_init(&r, buf, 8);
	assert_true(cvm_rd_u32be(&r, &v32) && cvm_rd_u16be(&r, &v16));
	assert_int_equal(v32, 0x01020304);
	assert_int_equal(v16, 0x0506);
}

static void rd_length_prefixed_child_moves_only_when_it_fits(void **state)
{
	const uint8_t ok[] = {0x02, 0x00, 0xaa, 0xbb, 0xcc};
	const uint8_t bad[] = {0x05, 0x00, 0x00, 0x00, 0xaa};
	struct cvm_rd r, sub;

	(void)state;
	cvm_rd_init(&r, ok, sizeof(ok));
	assert_true(cvm_rd_sub_u16le(&r, &sub));
	assert_int_equal(sub.len, 2);
	assert_int_equal(sub.p[1], 0xbb);
	assert_int_equal(r.len, 1);
	cvm_rd_init(&r, bad, sizeof(bad));
	assert_false(cvm_rd_sub_u32le(&r, &sub));
	assert_int_equal(r.len, sizeof(bad));
}

static void rd_asn1_accepts_der_and_rejects_non_minimal_lengths(void **state)
{
	const uint8_t good[] = {0x30, 0x03, 0x02, 0x01, 0x05};
	const uint8_t longform[] = {0x04, 0x81, 0x80};
	const uint8_t nonmin[] = {0x04, 0x81, 0x05, 1, 2, 3, 4, 5};
	const uint8_t indef[] = {0x30, 0x80, 0x00, 0x00};
	uint8_t big[3 + 0x80] = {0x04, 0x81, 0x80};
	struct cvm_rd r, seq, v;

	(void)state;
	cvm_rd_init(&r, good, sizeof(good));
	assert_true(cvm_rd_asn1(&r, &seq, CVM_ASN1_SEQUENCE));
	assert_true(cvm_rd_empty(&r));
	assert_false(cvm_rd_asn1(&seq, &v, CVM_ASN1_OCTET_STRING)); /* wrong tag */
	assert_true(cvm_rd_asn1(&seq, &v, CVM_ASN1_INTEGER));
	assert_int_equal(v.len, 1);
	cvm_rd_init(&r, longform, sizeof(longform));
	assert_false(cvm_rd_asn1(&r, &v, CVM_ASN1_OCTET_STRING)); /* truncated */
	cvm_rd_init(&r, big, sizeof(big));
	assert_true(cvm_rd_asn1(&r, &v, CVM_ASN1_OCTET_STRING));
	assert_int_equal(v.len, 0x80);
	cvm_rd_init(&r, nonmin, sizeof(nonmin));
	assert_false(cvm_rd_asn1(&r, &v, CVM_ASN1_OCTET_STRING));
	cvm_rd_init(&r, indef, sizeof(indef));
	assert_false(cvm_rd_asn1(&r, &v, CVM_ASN1_SEQUENCE));
}

static void wr_grows_to_max_then_fails_once(void **state)
{
	struct cvm_wr w;
	uint8_t *out;
	size_t len;

	(void)state;
	cvm_wr_init(&w, 100);
	for (int i = 0; i < 25; i++)
		cvm_wr_u32le(&w, (uint32_t)i);
	assert_int_equal(cvm_wr_finish(&w, &out, &len), CVM_OK);
	assert_int_equal(len, 100);
	assert_int_equal(out[4], 1);
	free(out);

	cvm_wr_init(&w, 10);
	cvm_wr_u64le(&w, 1);
	cvm_wr_u32le(&w, 2); /* 12 > 10: sticky error */
	cvm_wr_u8(&w, 3);
	assert_int_equal(cvm_wr_finish(&w, &out, &len), CVM_E_TOO_LARGE);
	assert_null(out);
}

static void wr_fixed_buffer_and_text(void **state)
{
	uint8_t buf[8];
	struct cvm_wr w;
	uint8_t *out;
	size_t len;
	char *s;

	(void)state;
	cvm_wr_init_fixed(&w, buf, sizeof(buf));
	cvm_wr_u16be(&w, 0x0102);
	cvm_wr_str(&w, "abc");
	assert_int_equal(cvm_wr_finish(&w, &out, &len), CVM_OK);
	assert_ptr_equal(out, buf);
	assert_int_equal(len, 5);
	assert_memory_equal(buf,
	                    "\x01\x02"
	                    "abc",
	                    5);
	cvm_wr_init(&w, 1024);
	cvm_wr_fmt(&w, "%s-%d-", "x", 42);
	for (int i = 0; i < 40; i++)
		cvm_wr_fmt(&w, "%s", "0123456789"); /* longer than the 256-byte fast path in total */
	cvm_wr_fmt(&w, "%300s", "y");               /* one call longer than the fast path */
	assert_int_equal(cvm_wr_finish_str(&w, &s), CVM_OK);
	assert_int_equal(strlen(s), 5 + 400 + 300);
	assert_memory_equal(s, "x-42-0123", 9);
	free(s);
}

static void wr_text_cuts_with_an_ellipsis_and_stays_terminated(void **state)
{
	char buf[16], big[600];
	struct cvm_wr w;
	uint8_t *p;

	(void)state;
	cvm_wr_init_text(&w, buf, sizeof(buf));
	assert_string_equal(buf, "");
	cvm_wr_str(&w, "step ");
	cvm_wr_fmt(&w, "%d ok", 7);
	assert_string_equal(buf, "step 7 ok");
	assert_false(cvm_wr_text_cut(&w));
	cvm_wr_str(&w, "; and more");                /* 19 bytes: does not fit in 15 */
	assert_string_equal(buf, "step 7 ok; a..."); /* what fits, then the mark */
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	assert_true(cvm_wr_text_cut(&w));
	cvm_wr_str(&w, "x"); /* dropped after a cut */
	assert_string_equal(buf, "step 7 ok; a...");

	/* Exactly full is not a cut; one more byte is. */
	cvm_wr_init_text(&w, buf, 4);
	cvm_wr_str(&w, "abc");
	assert_string_equal(buf, "abc");
	assert_false(cvm_wr_text_cut(&w));
	cvm_wr_u8(&w, 'd');
	assert_string_equal(buf, "...");
	assert_true(cvm_wr_text_cut(&w));

	/* A long format (past the 256-byte fast path) that fits, then one that does not. */
	cvm_wr_init_text(&w, big, sizeof(big));
	cvm_wr_fmt(&w, "%300s", "y");
	assert_int_equal(strlen(big), 300);
	assert_false(cvm_wr_text_cut(&w));
	cvm_wr_fmt(&w, "%400s", "z");
	assert_int_equal(strlen(big), sizeof(big) - 1);
	assert_string_equal(big + sizeof(big) - 4, "...");
	assert_true(cvm_wr_text_cut(&w));

	/* Two-byte buffer: room for one character, no room for a mark. */
	cvm_wr_init_text(&w, buf, 2);
	cvm_wr_str(&w, "ab");
	assert_string_equal(buf, "a");
	assert_true(cvm_wr_text_cut(&w));

	/* cvm_wr_reserve hands out room to fill, and fails stickily past the end. */
	cvm_wr_init_fixed(&w, big, 8);
	p = cvm_wr_reserve(&w, 6);
	assert_non_null(p);
	assert_ptr_equal(p, (uint8_t *)big);
	assert_null(cvm_wr_reserve(&w, 3));
	assert_null(cvm_wr_reserve(&w, 1)); /* sticky */
}

static void random_bytes_fill_the_buffer_and_differ(void **state)
{
	uint8_t a[64], b[64], zero[64];

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(zero, 0, sizeof(zero));
	assert_int_equal(cvm_random_bytes(a, sizeof(a)), CVM_OK);
	assert_int_equal(cvm_random_bytes(b, sizeof(b)), CVM_OK);
	/* 512 random bits equal to zero or to each other: never in practice. */
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(cvm_random_bytes(a, 0), CVM_OK);
}

static void pem_blocks_are_framed_strictly_and_decoded_canonically(void **state)
{
	static const char two[] =
	    "\n  -----BEGIN CERTIFICATE----- \r\nAQID\r\nBA==\r\n-----END CERTIFICATE-----\r\n"
	    "-----BEGIN X509 CRL-----\nBQYH\n-----END X509 CRL-----";
	struct cvm_pem_block b;
	struct cvm_rd in, keep;
	uint8_t out[8];
	size_t n;

	(void)state;
	assert_true(cvm_pem_starts((const uint8_t *)two, strlen(two)));
	assert_false(cvm_pem_starts((const uint8_t *)"x-----BEGIN ", 12));
	cvm_rd_init(&in, two, strlen(two));
	assert_int_equal(cvm_pem_next(&in, &b), CVM_OK);
	assert_true(cvm_pem_label_is(&b, "CERTIFICATE"));
	assert_false(cvm_pem_label_is(&b, "CERTIFICAT"));
	assert_true(cvm_pem_decoded_max(&b) >= 4);
	assert_int_equal(cvm_pem_decode(&b, out, sizeof(out), &n), CVM_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "\x01\x02\x03\x04", 4);
	assert_int_equal(cvm_pem_decode(&b, out, 3, &n), CVM_E_TOO_LARGE);
	assert_int_equal(cvm_pem_next(&in, &b), CVM_OK);
	assert_true(cvm_pem_label_is(&b, "X509 CRL"));
	assert_int_equal(cvm_pem_decode(&b, out, sizeof(out), &n), CVM_OK);
	assert_int_equal(n, 3);
	assert_true(cvm_rd_empty(&in));

	/* every cut of the text: the blocks that are whole, then a failure that
	 * leaves the reader where it was */
	for (size_t cut = 0; cut < strlen(two); cut++) {
		size_t blocks = 0;

		cvm_rd_init(&in, two, cut);
		for (;;) {
			keep = in;
			if (cvm_pem_next(&in, &b) != CVM_OK) {
				assert_ptr_equal(in.p, keep.p);
				assert_int_equal(in.len, keep.len);
				break;
			}
			blocks++;
		}
		assert_true(blocks <= 2);
		assert_true(blocks < 2 || cut >= strlen(two) - 1);
	}

	/* refused framing: another END label, no END, text before, a header */
	{
		static const char *const bad[] = {
		    "-----BEGIN CERTIFICATE-----\nAQID\n-----END X509 CRL-----\n",
		    "-----BEGIN CERTIFICATE-----\nAQID\n",
		    "text\n-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n",
		    "-----BEGIN CERTIFICATE----- x\nAQID\n-----END CERTIFICATE-----\n",
		    "-----BEGIN -----\nAQID\n-----END -----\n",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			cvm_rd_init(&in, bad[i], strlen(bad[i]));
			assert_int_equal(cvm_pem_next(&in, &b), CVM_E_FORMAT);
		}
	}
	/* refused bodies: a header line, not base64, padding in the middle,
	 * non-zero leftover bits, a lone character, an empty body */
	{
		static const char *const bad[] = {
		    "Proc-Type: 4,ENCRYPTED\nAQID", "AQ!D", "AQ==AQID", "AR==", "AQIDB", "", "===="};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char text[160];

			(void)snprintf(text, sizeof(text), "-----BEGIN K-----\n%s\n-----END K-----\n",
			               bad[i]);
			cvm_rd_init(&in, text, strlen(text));
			if (cvm_pem_next(&in, &b) == CVM_OK)
				assert_int_equal(cvm_pem_decode(&b, out, sizeof(out), &n), CVM_E_FORMAT);
		}
	}
}

static void key_files_follow_the_key_file_rule(void **state)
{
	char dir[] = "/tmp/cvm-keyfile.XXXXXX", path[128], err[512];
	struct cvm_secret *s = NULL;
	bool created = false;
	int dfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	(void)snprintf(path, sizeof(path), "%s/k", dir);

	/* created once with mode 0600, never replaced */
	umask(022);
	assert_int_equal(cvm_file_create_key(dfd, "k", "secret1", 7, &created, err, sizeof(err)), CVM_OK);
	assert_true(created);
	assert_int_equal(cvm_file_create_key(dfd, "k", "secret2", 7, &created, err, sizeof(err)), CVM_OK);
	assert_false(created);
	assert_int_equal(cvm_file_read_key(dfd, "k", 64, &s, err, sizeof(err)), CVM_OK);
	assert_int_equal(s->len, 7);
	assert_memory_equal(s->p, "secret1", 7);
	cvm_secret_free(s);
	s = NULL;
	assert_int_equal(cvm_file_read_key(AT_FDCWD, path, 64, &s, NULL, 0), CVM_OK); /* by path */
	cvm_secret_free(s);
	s = NULL;
	assert_int_equal(cvm_file_read_key(dfd, "k", 6, &s, err, sizeof(err)), CVM_E_TOO_LARGE);

	/* a mode that lets others in */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(cvm_file_read_key(dfd, "k", 64, &s, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "mode 640"));
	assert_int_equal(chmod(path, 0600), 0);
	/* another owner (root can arrange it) */
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(cvm_file_read_key(dfd, "k", 64, &s, err, sizeof(err)), CVM_E_POLICY);
		assert_non_null(strstr(err, "owned by uid 65534"));
		assert_int_equal(chown(path, 0, 0), 0);
	}
	/* a symbolic link and a FIFO (refused at once, not waited on) */
	assert_int_equal(symlinkat("k", dfd, "link"), 0);
	assert_int_equal(cvm_file_read_key(dfd, "link", 64, &s, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(mkfifoat(dfd, "fifo", 0600), 0);
	assert_int_equal(cvm_file_read_key(dfd, "fifo", 64, &s, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(cvm_file_read_key(dfd, "none", 64, &s, err, sizeof(err)), CVM_E_SYSTEM);
	assert_null(s);

	assert_int_equal(unlinkat(dfd, "fifo", 0), 0);
	assert_int_equal(unlinkat(dfd, "link", 0), 0);
	assert_int_equal(unlinkat(dfd, "k", 0), 0);
	assert_int_equal(close(dfd), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void hex_round_trip_and_rejects_bad_digits(void **state)
{
	const uint8_t in[4] = {0x00, 0xab, 0x7f, 0xff};
	uint8_t out[4];
	char hex[9];
	size_t n;

	(void)state;
	cvm_hex_encode(in, 4, hex);
	assert_string_equal(hex, "00ab7fff");
	assert_int_equal(cvm_hex_decode("00AB7fFF", 8, out, sizeof(out), &n), CVM_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(out, in, 4);
	assert_int_equal(cvm_hex_decode("0g", 2, out, sizeof(out), &n), CVM_E_FORMAT);
	assert_int_equal(cvm_hex_decode("abc", 3, out, sizeof(out), &n), CVM_E_FORMAT);
	assert_int_equal(cvm_hex_decode("0011223344", 10, out, sizeof(out), &n), CVM_E_TOO_LARGE);
	assert_int_equal(cvm_hex_decode_exact("0011", 4, out, 3), CVM_E_FORMAT);
	assert_int_equal(cvm_hex_decode("::", 2, out, 4, &n), CVM_E_FORMAT); /* ':' is '9'+1 */
	assert_int_equal(cvm_hex_decode("@`", 2, out, 4, &n), CVM_E_FORMAT); /* 'A'-1, 'a'-1 */
}

static void base64_round_trip_and_rejects_non_canonical(void **state)
{
	const char *vec[][2] = {
	    {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}};
	uint8_t *out;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		char *enc = cvm_base64_encode_new((const uint8_t *)vec[i][0], strlen(vec[i][0]));

		assert_string_equal(enc, vec[i][1]);
		free(enc);
		assert_int_equal(cvm_base64_decode(vec[i][1], strlen(vec[i][1]), 64, &out, &n), CVM_OK);
		assert_int_equal(n, strlen(vec[i][0]));
		assert_memory_equal(out, vec[i][0], n);
		free(out);
	}
	assert_int_equal(cvm_base64_decode("Zh==", 4, 64, &out, &n),
	                 CVM_E_FORMAT); /* non-zero leftover bits */
	assert_int_equal(cvm_base64_decode("Z", 1, 64, &out, &n), CVM_E_FORMAT);
	assert_int_equal(cvm_base64_decode("Zm9v!", 5, 64, &out, &n), CVM_E_FORMAT);
	assert_int_equal(cvm_base64_decode("Zm9vYmFy", 8, 3, &out, &n), CVM_E_TOO_LARGE);
}

static void file_read_is_capped(void **state)
{
	char path[] = "/tmp/cvm-test-XXXXXX";
	int fd = mkstemp(path);
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);
	assert_int_equal(cvm_file_read(path, 10, &buf, &len), CVM_OK);
	assert_int_equal(len, 10);
	assert_int_equal(buf[10], 0); /* NUL appended, not counted */
	free(buf);
	assert_int_equal(cvm_file_read(path, 9, &buf, &len), CVM_E_TOO_LARGE);
	assert_null(buf);
	assert_int_equal(cvm_file_write(path, "ab", 2, 0600), CVM_OK);
	assert_int_equal(cvm_file_read(path, 9, &buf, &len), CVM_OK);
	assert_int_equal(len, 2);
	free(buf);
	unlink(path);
	assert_int_equal(cvm_file_read(path, 9, &buf, &len), CVM_E_SYSTEM);
	assert_int_equal(cvm_file_read("/tmp", 9, &buf, &len), CVM_E_SYSTEM);
}

static void secrets_are_wiped_and_compared_in_constant_time(void **state)
{
	struct cvm_secret *s = cvm_secret_new(32);
	uint8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5};

	(void)state;
	assert_non_null(s);
	assert_int_equal(s->len, 32);
	memset(s->p, 0x5a, s->len);
	cvm_secret_free(s);
	cvm_secret_free(NULL);
	assert_true(cvm_ct_equal(a, a, 4));
	assert_false(cvm_ct_equal(a, b, 4));
	cvm_wipe(a, sizeof(a));
	assert_true(a[0] == 0 && a[3] == 0);
}

static void report_keeps_the_first_failure_even_when_full(void **state)
{
	struct cvm_report *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	cvm_report_init(r);
	for (int i = 0; i < CVM_REPORT_STEPS_MAX + 5; i++)
		cvm_report_add(r, "step", true, "ok %d", i);
	assert_null(cvm_report_reason(r));
	cvm_report_add(r, "bad", false, "broken %s", "thing");
	assert_int_equal(r->count, CVM_REPORT_STEPS_MAX);
	assert_string_equal(cvm_report_reason(r), "broken thing");
	assert_string_equal(r->failed->name, "bad");
	cvm_report_add(NULL, "x", false, "ignored");
	free(r);
}

static void every_error_code_has_a_message(void **state)
{
	(void)state;
	for (int e = 0; e >= CVM_E_MISMATCH; e--)
		assert_string_not_equal(cvm_strerror(e), "unknown error");
	assert_string_equal(cvm_strerror(-999), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rd_short_input_fails_and_keeps_position),
	    cmocka_unit_test(rd_reads_every_byte_order),
	    cmocka_unit_test(rd_length_prefixed_child_moves_only_when_it_fits),
	    cmocka_unit_test(rd_asn1_accepts_der_and_rejects_non_minimal_lengths),
	    cmocka_unit_test(wr_grows_to_max_then_fails_once),
	    cmocka_unit_test(wr_fixed_buffer_and_text),
	    cmocka_unit_test(wr_text_cuts_with_an_ellipsis_and_stays_terminated),
	    cmocka_unit_test(random_bytes_fill_the_buffer_and_differ),
	    cmocka_unit_test(pem_blocks_are_framed_strictly_and_decoded_canonically),
	    cmocka_unit_test(key_files_follow_the_key_file_rule),
	    cmocka_unit_test(hex_round_trip_and_rejects_bad_digits),
	    cmocka_unit_test(base64_round_trip_and_rejects_non_canonical),
	    cmocka_unit_test(file_read_is_capped),
	    cmocka_unit_test(secrets_are_wiped_and_compared_in_constant_time),
	    cmocka_unit_test(report_keeps_the_first_failure_even_when_full),
	    cmocka_unit_test(every_error_code_has_a_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
