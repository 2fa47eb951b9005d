/* lib/audit: the KMS audit trail. Records appended through the API verify;
 * every kind of tampering done with SQLite's own API on the file (an edit of
 * any column of any record, a deleted, moved or forged record, a removed
 * tail, a changed schema) is found and names the first bad record; values
 * that are not printable ASCII or do not fit are refused; a second writer is
 * refused at its next append; a writer killed inside its transaction leaves
 * a log that verifies and accepts the next append. The hash itself is
 * recomputed independently (python3's hashlib) by integration.kms_audit_cli. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <cvmkit/audit.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>

#include "audit/audit_int.h"

#define RECORDS 5
/* The table's columns (lib/audit/audit.c), for the edits. */
static const char *const columns[] = {
    "seq",      "time",        "node",         "method",    "peer",          "tee",
    "app_id",   "instance_id", "compose_hash", "device_id", "mr_aggregated", "os_image_hash",
    "decision", "reason",      "keys",         "epoch",     "prev",          "hash",
};
#define COLUMN_COUNT (sizeof(columns) / sizeof(columns[0]))

struct fixture {
	char dir[64];
	char db[128];
	char copy[128];
	uint64_t seq;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	uint8_t heads[RECORDS + 1][CVM_AUDIT_HASH_LEN];
};

static struct fixture fx;

/* ---- helpers ------------------------------------------------------------------ */

static void set_text(char *dst, size_t size, const char *s)
{
	assert_true((size_t)snprintf(dst, size, "%s", s) < size);
}

/* make_record fills a realistic GetAppKey decision number `i`. */
static void make_record(struct cvm_audit_record *r, unsigned i)
{
	char hex[65];

	memset(r, 0, sizeof(*r));
	r->time = 1765000000 + (int64_t)i;
	set_text(r->node, sizeof(r->node), "kms-1");
	set_text(r->method, sizeof(r->method), i % 2 ? "GetAppKey" : "SignCert");
	(void)snprintf(r->peer, sizeof(r->peer), "10.0.0.%u:4430%u", i, i % 10);
	set_text(r->tee, sizeof(r->tee), "sim-tdx");
	(void)snprintf(hex, sizeof(hex), "%040x", i + 0xa0u);
	set_text(r->app_id, sizeof(r->app_id), hex);
	(void)snprintf(hex, sizeof(hex), "%040x", i + 0xb0u);
	set_text(r->instance_id, sizeof(r->instance_id), hex);
	(void)snprintf(hex, sizeof(hex), "%064x", i + 0xc0u);
	set_text(r->compose_hash, sizeof(r->compose_hash), hex);
	set_text(r->device_id, sizeof(r->device_id), hex);
	set_text(r->mr_aggregated, sizeof(r->mr_aggregated), hex);
	set_text(r->os_image_hash, sizeof(r->os_image_hash), "");
	if (i % 3 == 2) {
		set_text(r->decision, sizeof(r->decision), "denied");
		set_text(r->reason, sizeof(r->reason), "compose hash not allowed by the contract");
	} else {
		set_text(r->decision, sizeof(r->decision), "allowed");
		set_text(r->keys, sizeof(r->keys), "disk_crypt_key,env_crypt_key,k256_key");
	}
	r->epoch = i / 3;
}

static void copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	for (;;) {
		n = fread(buf, 1, sizeof(buf), in);
		if (n == 0)
			break;
		assert_int_equal(fwrite(buf, 1, n, out), n);
	}
	assert_int_equal(ferror(in), 0);
	assert_int_equal(fclose(in), 0);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(chmod(to, 0600), 0);
}

static void remove_db(const char *path)
{
	char side[160];

	(void)unlink(path);
	(void)snprintf(side, sizeof(side), "%s-wal", path);
	(void)unlink(side);
	(void)snprintf(side, sizeof(side), "%s-shm", path);
	(void)unlink(side);
	(void)snprintf(side, sizeof(side), "%s-journal", path);
	(void)unlink(side);
}

/* fresh_copy gives fx.copy: the fixture's log, closed (checkpointed). */
static void fresh_copy(void)
{
	remove_db(fx.copy);
	copy_file(fx.db, fx.copy);
}

/* raw_exec runs `sql` on `path` through SQLite directly: the attacker's tool. */
static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg != NULL ? msg : "?");
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* edit_column changes column `col` of record `seq` in `path` to another
 * value of the same type (one that append could have written). */
static void edit_column(const char *path, uint64_t seq, const char *col)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char sql[160];
	int type;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	(void)snprintf(sql, sizeof(sql), "SELECT %s FROM audit WHERE seq = %llu", col,
	               (unsigned long long)seq);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	type = sqlite3_column_type(st, 0);
	if (type == SQLITE_INTEGER) {
		sqlite3_int64 v = sqlite3_column_int64(st, 0);

		assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
		(void)snprintf(sql, sizeof(sql), "UPDATE audit SET %s = ? WHERE seq = %llu", col,
		               (unsigned long long)seq);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		/* seq: move the record past the end; others: one more */
		assert_int_equal(sqlite3_bind_int64(st, 1, strcmp(col, "seq") == 0 ? v + 100 : v + 1),
		                 SQLITE_OK);
	} else if (type == SQLITE_BLOB) {
		uint8_t b[CVM_AUDIT_HASH_LEN];

		assert_int_equal(sqlite3_column_bytes(st, 0), CVM_AUDIT_HASH_LEN);
		memcpy(b, sqlite3_column_blob(st, 0), sizeof(b));
		b[31] ^= 0x01;
		assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
		(void)snprintf(sql, sizeof(sql), "UPDATE audit SET %s = ? WHERE seq = %llu", col,
		               (unsigned long long)seq);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_bind_blob(st, 1, b, sizeof(b), SQLITE_TRANSIENT), SQLITE_OK);
	} else {
		char v[300];

		assert_int_equal(type, SQLITE_TEXT);
		set_text(v, sizeof(v), (const char *)sqlite3_column_text(st, 0));
		assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
		if (strcmp(col, "decision") == 0)
			set_text(v, sizeof(v), strcmp(v, "allowed") == 0 ? "denied" : "allowed");
		else if (v[0] == '\0')
			set_text(v, sizeof(v), "00"); /* hex and text alike */
		else
			v[0] = v[0] == '0' ? '1' : (v[0] == 'a' ? 'b' : (char)(v[0] == '1' ? '0' : 'a'));
		(void)snprintf(sql, sizeof(sql), "UPDATE audit SET %s = ? WHERE seq = %llu", col,
		               (unsigned long long)seq);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_bind_text(st, 1, v, -1, SQLITE_TRANSIENT), SQLITE_OK);
	}
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* expect_tampered verifies `path` and wants CVM_E_MISMATCH at `bad`, with an
 * explanation that names the record. */
static void expect_tampered(const char *path, const uint8_t *head, uint64_t seq, uint64_t bad,
                            const char *what)
{
	uint64_t count = 99, bad_seq = 0;
	char err[512], name[32];
	int r;

	r = cvm_audit_verify(path, head, seq, &count, NULL, &bad_seq, err, sizeof(err));
	if (r != CVM_E_MISMATCH || bad_seq != bad)
		fail_msg("%s: verify returned %d, bad record %llu (want %d at %llu): %s", what, r,
		         (unsigned long long)bad_seq, CVM_E_MISMATCH, (unsigned long long)bad, err);
	assert_true(count <= bad || bad == 0);
	(void)snprintf(name, sizeof(name), "record %llu", (unsigned long long)bad);
	if (bad != 0 && strstr(err, name) == NULL && strstr(err, "records") == NULL)
		fail_msg("%s: the explanation '%s' does not name %s", what, err, name);
}

static int setup(void **state)
{
	struct cvm_audit *a = NULL;
	struct cvm_audit_record r;
	char err[512];

	(void)state;
	memset(&fx, 0, sizeof(fx));
	(void)snprintf(fx.dir, sizeof(fx.dir), "/tmp/cvm-test-audit-XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	(void)snprintf(fx.db, sizeof(fx.db), "%s/audit.db", fx.dir);
	(void)snprintf(fx.copy, sizeof(fx.copy), "%s/copy.db", fx.dir);
	if (cvm_audit_open(fx.db, true, &a, err, sizeof(err)) != CVM_OK)
		fail_msg("open: %s", err);
	for (unsigned i = 1; i <= RECORDS; i++) {
		make_record(&r, i);
		if (cvm_audit_append(a, &r, &fx.seq, fx.head) != CVM_OK)
			fail_msg("append %u: %s", i, cvm_audit_error(a));
		assert_int_equal(fx.seq, i);
		memcpy(fx.heads[i], fx.head, CVM_AUDIT_HASH_LEN);
	}
	cvm_audit_close(a);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	/* the test's own mkdtemp folder, nothing else */
	(void)snprintf(cmd, sizeof(cmd), "%s/audit.db", fx.dir);
	remove_db(cmd);
	remove_db(fx.copy);
	(void)snprintf(cmd, sizeof(cmd), "%s/other.db", fx.dir);
	remove_db(cmd);
	(void)snprintf(cmd, sizeof(cmd), "%s/link.db", fx.dir);
	(void)unlink(cmd);
	assert_int_equal(rmdir(fx.dir), 0);
	return 0;
}

/* ---- tests -------------------------------------------------------------------- */

static void appended_records_verify_and_chain_to_the_returned_head(void **state)
{
	struct cvm_audit *a = NULL;
	uint8_t head[CVM_AUDIT_HASH_LEN], prev[CVM_AUDIT_HASH_LEN] = {0}, want[CVM_AUDIT_HASH_LEN];
	struct cvm_audit_record r;
	uint64_t count = 0, seq = 0, bad = 7;
	char err[512];

	(void)state;
	assert_int_equal(cvm_audit_verify(fx.db, NULL, 0, &count, head, &bad, err, sizeof(err)), CVM_OK);
	assert_int_equal(count, RECORDS);
	assert_int_equal(bad, 0);
	assert_memory_equal(head, fx.head, CVM_AUDIT_HASH_LEN);
	assert_int_equal(cvm_audit_verify(fx.db, fx.head, RECORDS, &count, head, &bad, err, sizeof(err)),
	                 CVM_OK);
	/* each head is hash_n over hash_{n-1}, the chain the header defines */
	for (unsigned i = 1; i <= RECORDS; i++) {
		make_record(&r, i);
		assert_int_equal(cvm_audit_record_hash(i, prev, &r, want), CVM_OK);
		assert_memory_equal(want, fx.heads[i], CVM_AUDIT_HASH_LEN);
		memcpy(prev, want, sizeof(prev));
	}
	/* reopening reads the same head; time 0 becomes now */
	assert_int_equal(cvm_audit_open(fx.db, false, &a, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_audit_head(a, &seq, head), CVM_OK);
	assert_int_equal(seq, RECORDS);
	assert_memory_equal(head, fx.head, CVM_AUDIT_HASH_LEN);
	cvm_audit_close(a);
	fresh_copy();
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_OK);
	make_record(&r, 9);
	r.time = 0;
	assert_int_equal(cvm_audit_append(a, &r, &seq, head), CVM_OK);
	assert_int_equal(seq, RECORDS + 1);
	cvm_audit_close(a);
	assert_int_equal(cvm_audit_verify(fx.copy, head, RECORDS + 1, &count, NULL, NULL, err, sizeof(err)),
	                 CVM_OK);
}

static void an_empty_log_verifies_with_head_zero(void **state)
{
	struct cvm_audit *a = NULL;
	uint8_t zero[CVM_AUDIT_HASH_LEN] = {0}, head[CVM_AUDIT_HASH_LEN];
	uint64_t count = 9, seq = 9;
	char err[512];

	(void)state;
	remove_db(fx.copy);
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_E_SYSTEM);
	assert_non_null(strstr(err, fx.copy));
	assert_int_equal(cvm_audit_open(fx.copy, true, &a, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_audit_head(a, &seq, head), CVM_OK);
	assert_int_equal(seq, 0);
	assert_memory_equal(head, zero, sizeof(zero));
	cvm_audit_close(a);
	assert_int_equal(cvm_audit_verify(fx.copy, zero, 0, &count, head, NULL, err, sizeof(err)), CVM_OK);
	assert_int_equal(count, 0);
	expect_tampered(fx.copy, fx.head, RECORDS, 1, "an empty log against a head of 5");
}

static void editing_any_column_of_any_record_is_detected(void **state)
{
	(void)state;
	for (uint64_t seq = 1; seq <= RECORDS; seq++) {
		for (size_t c = 0; c < COLUMN_COUNT; c++) {
			char what[64];

			(void)snprintf(what, sizeof(what), "record %llu column %s", (unsigned long long)seq,
			               columns[c]);
			fresh_copy();
			edit_column(fx.copy, seq, columns[c]);
			/* the chain alone finds it, no expected head needed */
			expect_tampered(fx.copy, NULL, 0, seq, what);
		}
	}
}

static void a_changed_column_type_or_size_is_detected(void **state)
{
	uint8_t big[4000];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	(void)state;
	/* STRICT keeps the types, not the sizes: the reader checks those
	 * itself. A 4000-byte reason (its array holds 256, the whole record
	 * about 1200: without the check it would overflow the stack) and a
	 * 33-byte hash. */
	fresh_copy();
	memset(big, 'x', sizeof(big));
	assert_int_equal(sqlite3_open(fx.copy, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE audit SET reason = ? WHERE seq = 3", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 1, (const char *)big, (int)sizeof(big), SQLITE_STATIC),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	expect_tampered(fx.copy, NULL, 0, 3, "an over-long reason");

	fresh_copy();
	assert_int_equal(sqlite3_open(fx.copy, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE audit SET hash = ? WHERE seq = 2", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_bind_blob(st, 1, big, 33, SQLITE_STATIC), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	expect_tampered(fx.copy, NULL, 0, 2, "a 33-byte hash");

	/* a NUL inside a text value, and a byte that is not ASCII */
	fresh_copy();
	raw_exec(fx.copy, "UPDATE audit SET peer = 'a' || char(0) || 'b' WHERE seq = 4");
	expect_tampered(fx.copy, NULL, 0, 4, "a NUL in peer");
	fresh_copy();
	raw_exec(fx.copy, "UPDATE audit SET node = 'kms-' || char(233) WHERE seq = 1");
	expect_tampered(fx.copy, NULL, 0, 1, "a non-ASCII node");
}

static void deleting_or_moving_records_is_detected(void **state)
{
	(void)state;
	fresh_copy();
	raw_exec(fx.copy, "DELETE FROM audit WHERE seq = 3");
	expect_tampered(fx.copy, NULL, 0, 3, "record 3 deleted");

	/* deleted and the rest renumbered: the gap is gone, the chain is not */
	fresh_copy();
	raw_exec(fx.copy, "DELETE FROM audit WHERE seq = 2; UPDATE audit SET seq = seq - 1 WHERE seq > 2");
	expect_tampered(fx.copy, NULL, 0, 2, "record 2 deleted, the rest renumbered");

	/* two records swapped */
	fresh_copy();
	raw_exec(fx.copy, "UPDATE audit SET seq = 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; "
	                  "UPDATE audit SET seq = 3 WHERE seq = 100");
	expect_tampered(fx.copy, NULL, 0, 2, "records 2 and 3 swapped");

	/* the first record deleted */
	fresh_copy();
	raw_exec(fx.copy, "DELETE FROM audit WHERE seq = 1");
	expect_tampered(fx.copy, NULL, 0, 1, "record 1 deleted");
}

static void a_removed_tail_is_found_only_with_the_expected_head(void **state)
{
	uint64_t count = 0;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	char err[512];

	(void)state;
	fresh_copy();
	raw_exec(fx.copy, "DELETE FROM audit WHERE seq > 3");
	/* the chain alone cannot tell (the header says so) ... */
	assert_int_equal(cvm_audit_verify(fx.copy, NULL, 0, &count, head, NULL, err, sizeof(err)), CVM_OK);
	assert_int_equal(count, 3);
	assert_memory_equal(head, fx.heads[3], CVM_AUDIT_HASH_LEN);
	/* ... the head the daemon logged can */
	expect_tampered(fx.copy, fx.head, RECORDS, 4, "records 4 and 5 removed");
	/* a head from the wrong log, at the right seq */
	fresh_copy();
	expect_tampered(fx.copy, fx.heads[4], RECORDS, RECORDS, "another hash at seq 5");
}

static void a_forged_record_is_detected(void **state)
{
	struct cvm_audit_record r;
	uint8_t hash[CVM_AUDIT_HASH_LEN];
	char hex[2 * CVM_AUDIT_HASH_LEN + 1], prev_hex[2 * CVM_AUDIT_HASH_LEN + 1], sql[4096];
	uint64_t count = 0;
	char err[512];

	(void)state;
	make_record(&r, 6);
	cvm_hex_encode(fx.head, CVM_AUDIT_HASH_LEN, prev_hex);

	/* a record added at the end with a made-up hash */
	fresh_copy();
	(void)snprintf(
	    sql, sizeof(sql),
	    "INSERT INTO audit SELECT 6, time, node, method, peer, tee, app_id, instance_id, "
	    "compose_hash, device_id, mr_aggregated, os_image_hash, decision, reason, keys, epoch, "
	    "x'%s', randomblob(32) FROM audit WHERE seq = 5",
	    prev_hex);
	raw_exec(fx.copy, sql);
	expect_tampered(fx.copy, NULL, 0, 6, "a record with a made-up hash");

	/* a record before the first one */
	fresh_copy();
	raw_exec(fx.copy,
	         "INSERT INTO audit SELECT 0, time, node, method, peer, tee, app_id, instance_id, "
	         "compose_hash, device_id, mr_aggregated, os_image_hash, decision, reason, keys, epoch, "
	         "prev, hash FROM audit WHERE seq = 1");
	expect_tampered(fx.copy, NULL, 0, 1, "a record with seq 0");

	/* a record whose hash the forger computed correctly: the chain is
	 * keyless, so only the logged head finds it */
	fresh_copy();
	assert_int_equal(cvm_audit_record_hash(6, fx.head, &r, hash), CVM_OK);
	cvm_hex_encode(hash, CVM_AUDIT_HASH_LEN, hex);
	(void)snprintf(
	    sql, sizeof(sql),
	    "INSERT INTO audit VALUES (6, %lld, '%s', '%s', '%s', '%s', '%s', '%s', '%s', '%s', '%s', "
	    "'%s', '%s', '%s', '%s', %u, x'%s', x'%s')",
	    (long long)r.time, r.node, r.method, r.peer, r.tee, r.app_id, r.instance_id, r.compose_hash,
	    r.device_id, r.mr_aggregated, r.os_image_hash, r.decision, r.reason, r.keys, (unsigned)r.epoch,
	    prev_hex, hex);
	raw_exec(fx.copy, sql);
	assert_int_equal(cvm_audit_verify(fx.copy, NULL, 0, &count, NULL, NULL, err, sizeof(err)), CVM_OK);
	assert_int_equal(count, 6);
	expect_tampered(fx.copy, fx.head, RECORDS, RECORDS + 1, "a correctly chained forged record");
}

static void bad_values_are_refused_and_nothing_is_written(void **state)
{
	struct cvm_audit *a = NULL;
	struct cvm_audit_record r;
	uint64_t seq = 0, count = 0;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	char err[512];

	(void)state;
	fresh_copy();
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_OK);
	/* every text field: a control byte, a byte over 0x7e, no NUL in the array */
	for (size_t i = 0; i < CVM_AUDIT_TEXT_FIELDS; i++) {
		static const char bad[] = {'\n', 0x1b, (char)0x80, (char)0xff};
		size_t size;
		char *f;

		for (size_t b = 0; b < sizeof(bad); b++) {
			make_record(&r, 1);
			f = cvm_audit_field(&r, i, &size);
			f[0] = bad[b];
			f[1] = '\0';
			assert_int_equal(cvm_audit_append(a, &r, &seq, head), CVM_E_INVAL);
			assert_int_equal(seq, 0);
			assert_non_null(strstr(cvm_audit_error(a), cvm_audit_field_name(i)));
		}
		make_record(&r, 1);
		f = cvm_audit_field(&r, i, &size);
		memset(f, 'a', size); /* 'a' is hex too: only the length is wrong */
		assert_int_equal(cvm_audit_append(a, &r, &seq, head), CVM_E_TOO_LARGE);
		assert_non_null(strstr(cvm_audit_error(a), cvm_audit_field_name(i)));
	}
	/* hex fields: uppercase, an odd length, a non-hex digit */
	make_record(&r, 1);
	r.app_id[0] = 'A';
	assert_int_equal(cvm_audit_append(a, &r, NULL, NULL), CVM_E_INVAL);
	make_record(&r, 1);
	set_text(r.compose_hash, sizeof(r.compose_hash), "abc");
	assert_int_equal(cvm_audit_append(a, &r, NULL, NULL), CVM_E_INVAL);
	make_record(&r, 1);
	set_text(r.device_id, sizeof(r.device_id), "zz");
	assert_int_equal(cvm_audit_append(a, &r, NULL, NULL), CVM_E_INVAL);
	/* an unknown decision, a time before 1970 */
	make_record(&r, 1);
	set_text(r.decision, sizeof(r.decision), "maybe");
	assert_int_equal(cvm_audit_append(a, &r, NULL, NULL), CVM_E_INVAL);
	make_record(&r, 1);
	r.time = -1;
	assert_int_equal(cvm_audit_append(a, &r, NULL, NULL), CVM_E_INVAL);
	assert_int_equal(cvm_audit_append(a, NULL, NULL, NULL), CVM_E_INVAL);
	/* a value at its cap is fine */
	make_record(&r, 1);
	memset(r.reason, '~', CVM_AUDIT_REASON_MAX);
	r.reason[CVM_AUDIT_REASON_MAX] = '\0';
	assert_int_equal(cvm_audit_append(a, &r, &seq, head), CVM_OK);
	assert_int_equal(seq, RECORDS + 1);
	cvm_audit_close(a);
	assert_int_equal(cvm_audit_verify(fx.copy, head, RECORDS + 1, &count, NULL, NULL, err, sizeof(err)),
	                 CVM_OK);
}

static void a_second_writer_is_refused_at_its_next_append(void **state)
{
	struct cvm_audit *a = NULL, *b = NULL;
	struct cvm_audit_record r;
	uint64_t seq = 0, count = 0;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	char err[512];

	(void)state;
	fresh_copy();
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_audit_open(fx.copy, false, &b, err, sizeof(err)), CVM_OK);
	make_record(&r, 6);
	assert_int_equal(cvm_audit_append(a, &r, &seq, head), CVM_OK);
	assert_int_equal(seq, 6);
	/* b last saw record 5: it must not chain onto a's record 6 */
	make_record(&r, 7);
	assert_int_equal(cvm_audit_append(b, &r, &seq, NULL), CVM_E_MISMATCH);
	assert_int_equal(seq, 0);
	assert_non_null(strstr(cvm_audit_error(b), "changed under this handle"));
	/* and stays refused, even though its view could be refreshed */
	assert_int_equal(cvm_audit_append(b, &r, NULL, NULL), CVM_E_MISMATCH);
	cvm_audit_close(b);
	/* the first writer goes on */
	assert_int_equal(cvm_audit_append(a, &r, &seq, head), CVM_OK);
	assert_int_equal(seq, 7);
	/* a hand edit that removes the last record is caught the same way */
	raw_exec(fx.copy, "DELETE FROM audit WHERE seq = 7");
	make_record(&r, 8);
	assert_int_equal(cvm_audit_append(a, &r, NULL, NULL), CVM_E_MISMATCH);
	cvm_audit_close(a);
	assert_int_equal(cvm_audit_verify(fx.copy, NULL, 0, &count, NULL, NULL, err, sizeof(err)), CVM_OK);
	assert_int_equal(count, 6);
}

static void die_inside_the_transaction(void)
{
	(void)raise(SIGKILL);
}

static void a_crash_inside_an_append_leaves_a_verifiable_log(void **state)
{
	struct cvm_audit *a = NULL;
	struct cvm_audit_record r;
	uint64_t seq = 0, count = 0;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	char err[512];
	int status = 0;
	pid_t pid;

	(void)state;
	fresh_copy();
	for (int round = 0; round < 3; round++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct cvm_audit *c = NULL;

			if (cvm_audit_open(fx.copy, false, &c, NULL, 0) != CVM_OK)
				_exit(2);
			make_record(&r, 6);
			cvm_audit_set_test_hook(die_inside_the_transaction);
			if (cvm_audit_append(c, &r, NULL, NULL) != CVM_OK)
				_exit(4);
			_exit(3); /* not reached: the hook kills the process */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		/* the half-done record is not there, and the log is intact */
		assert_int_equal(
		    cvm_audit_verify(fx.copy, fx.head, RECORDS, &count, NULL, NULL, err, sizeof(err)),
		    CVM_OK);
		assert_int_equal(count, RECORDS);
	}
	/* and takes the next record as record 6 */
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_OK);
	make_record(&r, 6);
	assert_int_equal(cvm_audit_append(a, &r, &seq, head), CVM_OK);
	assert_int_equal(seq, RECORDS + 1);
	cvm_audit_close(a);
	assert_int_equal(cvm_audit_verify(fx.copy, head, RECORDS + 1, &count, NULL, NULL, err, sizeof(err)),
	                 CVM_OK);
}

static void the_file_is_0600_and_unsafe_files_are_refused(void **state)
{
	struct cvm_audit *a = NULL;
	struct stat st;
	char err[512], link[128];
	mode_t old;

	(void)state;
	remove_db(fx.copy);
	old = umask(0);
	assert_int_equal(cvm_audit_open(fx.copy, true, &a, err, sizeof(err)), CVM_OK);
	(void)umask(old);
	cvm_audit_close(a);
	assert_int_equal(stat(fx.copy, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* a log that group or others may write */
	assert_int_equal(chmod(fx.copy, 0620), 0);
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "0620"));
	assert_int_equal(chmod(fx.copy, 0602), 0);
	assert_int_equal(cvm_audit_open(fx.copy, true, &a, err, sizeof(err)), CVM_E_POLICY);
	assert_int_equal(chmod(fx.copy, 0640), 0); /* others may read: not refused */
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_OK);
	cvm_audit_close(a);
	/* a symbolic link, for the writer and the verifier */
	(void)snprintf(link, sizeof(link), "%s/link.db", fx.dir);
	assert_int_equal(symlink(fx.db, link), 0);
	assert_int_equal(cvm_audit_open(link, false, &a, err, sizeof(err)), CVM_E_POLICY);
	assert_int_equal(cvm_audit_verify(link, NULL, 0, NULL, NULL, NULL, err, sizeof(err)), CVM_E_POLICY);
	assert_int_equal(unlink(link), 0);
}

static void foreign_or_altered_databases_are_refused(void **state)
{
	struct cvm_audit *a = NULL;
	char err[512], other[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int fd;

	(void)state;
	/* another application's database: refused, and left as it was (not
	 * switched to WAL) */
	(void)snprintf(other, sizeof(other), "%s/other.db", fx.dir);
	remove_db(other);
	raw_exec(other, "CREATE TABLE t (x TEXT)");
	assert_int_equal(chmod(other, 0600), 0);
	assert_int_equal(cvm_audit_open(other, true, &a, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "not a cvmkit audit log"));
	assert_int_equal(cvm_audit_verify(other, NULL, 0, NULL, NULL, NULL, err, sizeof(err)), CVM_E_FORMAT);
	assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "delete");
	assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	/* a file that is not SQLite at all */
	remove_db(other);
	fd = open(other, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(
	    write(fd, "not a database, just text that is long enough to have a header......", 68), 68);
	assert_int_equal(close(fd), 0);
	assert_int_equal(cvm_audit_open(other, false, &a, err, sizeof(err)), CVM_E_FORMAT);
	assert_int_equal(cvm_audit_verify(other, NULL, 0, NULL, NULL, NULL, err, sizeof(err)), CVM_E_FORMAT);
	/* an empty file without create is not a log */
	remove_db(other);
	fd = open(other, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(cvm_audit_open(other, false, &a, err, sizeof(err)), CVM_E_FORMAT);
	assert_int_equal(cvm_audit_verify(other, NULL, 0, NULL, NULL, NULL, err, sizeof(err)), CVM_E_FORMAT);
	/* our log with a trigger added: the schema check refuses it (the
	 * trigger would delete every new record) */
	fresh_copy();
	raw_exec(fx.copy, "CREATE TRIGGER t AFTER INSERT ON audit BEGIN DELETE FROM audit; END");
	expect_tampered(fx.copy, NULL, 0, 0, "a trigger added");
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_E_MISMATCH);
	assert_non_null(strstr(err, "trigger 't'"));
	/* our table with a column added (its SQL text differs) */
	fresh_copy();
	raw_exec(fx.copy, "ALTER TABLE audit ADD COLUMN note TEXT");
	assert_int_equal(cvm_audit_verify(fx.copy, NULL, 0, NULL, NULL, NULL, err, sizeof(err)),
	                 CVM_E_MISMATCH);
	assert_non_null(strstr(err, "table 'audit' is not cvmkit's audit table"));
	/* another version */
	fresh_copy();
	raw_exec(fx.copy, "PRAGMA user_version = 2");
	assert_int_equal(cvm_audit_verify(fx.copy, NULL, 0, NULL, NULL, NULL, err, sizeof(err)),
	                 CVM_E_UNSUPPORTED);
	/* a broken log is not opened for appending */
	fresh_copy();
	edit_column(fx.copy, 2, "reason");
	assert_int_equal(cvm_audit_open(fx.copy, false, &a, err, sizeof(err)), CVM_E_MISMATCH);
	assert_non_null(strstr(err, "record 2"));
	assert_null(a);
}

struct seen {
	uint64_t seq[16];
	size_t count;
	int stop_at;
};

static int collect(void *ctx, uint64_t seq, const struct cvm_audit_record *r, const uint8_t hash[32])
{
	struct seen *s = ctx;

	assert_true(r->decision[0] != '\0');
	assert_non_null(hash);
	assert_true(s->count < 16);
	s->seq[s->count++] = seq;
	return s->stop_at != 0 && (uint64_t)s->stop_at == seq ? 42 : 0;
}

static void each_filters_and_stops_at_the_first_bad_record(void **state)
{
	struct cvm_audit_filter f;
	struct seen s;
	struct cvm_audit_record r;
	char err[512];

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(cvm_audit_each(fx.db, NULL, collect, &s, err, sizeof(err)), CVM_OK);
	assert_int_equal(s.count, RECORDS);
	/* by app id (either case), by decision, by time */
	make_record(&r, 4);
	memset(&f, 0, sizeof(f));
	for (char *c = r.app_id; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	f.app_id = r.app_id;
	memset(&s, 0, sizeof(s));
	assert_int_equal(cvm_audit_each(fx.db, &f, collect, &s, err, sizeof(err)), CVM_OK);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.seq[0], 4);
	memset(&f, 0, sizeof(f));
	f.decision = "denied";
	memset(&s, 0, sizeof(s));
	assert_int_equal(cvm_audit_each(fx.db, &f, collect, &s, err, sizeof(err)), CVM_OK);
	assert_int_equal(s.count, 2); /* 2 and 5 */
	assert_int_equal(s.seq[0], 2);
	assert_int_equal(s.seq[1], 5);
	memset(&f, 0, sizeof(f));
	f.since = 1765000000 + 4;
	memset(&s, 0, sizeof(s));
	assert_int_equal(cvm_audit_each(fx.db, &f, collect, &s, err, sizeof(err)), CVM_OK);
	assert_int_equal(s.count, 2);
	/* the callback stops the walk */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(cvm_audit_each(fx.db, NULL, collect, &s, err, sizeof(err)), 42);
	assert_int_equal(s.count, 2);
	/* a bad record ends the walk: nothing after it is shown */
	fresh_copy();
	edit_column(fx.copy, 3, "keys");
	memset(&s, 0, sizeof(s));
	assert_int_equal(cvm_audit_each(fx.copy, NULL, collect, &s, err, sizeof(err)), CVM_E_MISMATCH);
	assert_int_equal(s.count, 2);
	assert_non_null(strstr(err, "record 3"));
}

static void hashes_commit_to_every_field_and_its_boundaries(void **state)
{
	struct cvm_audit_record r, t;
	uint8_t zero[CVM_AUDIT_HASH_LEN] = {0}, base[CVM_AUDIT_HASH_LEN], h[CVM_AUDIT_HASH_LEN];

	(void)state;
	make_record(&r, 1);
	assert_int_equal(cvm_audit_record_hash(1, zero, &r, base), CVM_OK);
	assert_int_equal(cvm_audit_record_hash(2, zero, &r, h), CVM_OK);
	assert_memory_not_equal(h, base, sizeof(h));
	assert_int_equal(cvm_audit_record_hash(1, fx.head, &r, h), CVM_OK);
	assert_memory_not_equal(h, base, sizeof(h));
	t = r;
	t.time++;
	assert_int_equal(cvm_audit_record_hash(1, zero, &t, h), CVM_OK);
	assert_memory_not_equal(h, base, sizeof(h));
	t = r;
	t.epoch++;
	assert_int_equal(cvm_audit_record_hash(1, zero, &t, h), CVM_OK);
	assert_memory_not_equal(h, base, sizeof(h));
	/* a character moved from one field to the next changes the hash (the
	 * lengths are encoded) */
	for (size_t i = 0; i + 1 < CVM_AUDIT_TEXT_FIELDS; i++) {
		size_t sa, sb;
		char *fa, *fb;

		memset(&t, 0, sizeof(t));
		set_text(t.decision, sizeof(t.decision), "error");
		assert_int_equal(cvm_audit_record_hash(1, zero, &t, base), CVM_OK);
		fa = cvm_audit_field(&t, i, &sa);
		fb = cvm_audit_field(&t, i + 1, &sb);
		if (strcmp(cvm_audit_field_name(i), "decision") == 0 ||
		    strcmp(cvm_audit_field_name(i + 1), "decision") == 0)
			continue;
		set_text(fa, sa, "ab");
		assert_int_equal(cvm_audit_record_hash(1, zero, &t, base), CVM_OK);
		set_text(fa, sa, "a");
		set_text(fb, sb, "b");
		assert_int_equal(cvm_audit_record_hash(1, zero, &t, h), CVM_OK);
		assert_memory_not_equal(h, base, sizeof(h));
	}
}

/* make_cert gives a self-signed certificate of a fresh P-256 key. */
static struct cvm_cert *make_cert(struct cvm_p256_keypair **key)
{
	struct cvm_cert_template t;
	struct cvm_cert *cert = NULL;
	char *pem = NULL;
	size_t len = 0;

	assert_int_equal(cvm_p256_keypair_generate(key), CVM_OK);
	cvm_cert_template_init(&t);
	t.common_name = "kms-1 audit";
	t.not_before = 1700000000;
	t.not_after = 2000000000;
	assert_int_equal(cvm_cert_make(&t, *key, NULL, NULL, &pem, &len), CVM_OK);
	assert_int_equal(cvm_cert_parse((const uint8_t *)pem, len, &cert), CVM_OK);
	free(pem);
	return cert;
}

static void a_checkpoint_verifies_only_for_its_head_and_key(void **state)
{
	struct cvm_p256_keypair *key = NULL, *other_key = NULL;
	struct cvm_cert *cert, *other;
	uint8_t sig[CVM_AUDIT_CHECKPOINT_SIG_LEN], sig2[CVM_AUDIT_CHECKPOINT_SIG_LEN],
	    head[CVM_AUDIT_HASH_LEN];

	(void)state;
	cert = make_cert(&key);
	other = make_cert(&other_key);
	assert_int_equal(cvm_audit_checkpoint_sign(key, RECORDS, fx.head, sig), CVM_OK);
	assert_int_equal(cvm_audit_checkpoint_verify(cert, RECORDS, fx.head, sig), CVM_OK);
	/* another seq, another head, another key, a flipped bit: all refused */
	assert_int_equal(cvm_audit_checkpoint_verify(cert, RECORDS - 1, fx.head, sig), CVM_E_SIGNATURE);
	assert_int_equal(cvm_audit_checkpoint_verify(cert, RECORDS, fx.heads[RECORDS - 1], sig),
	                 CVM_E_SIGNATURE);
	assert_int_equal(cvm_audit_checkpoint_verify(other, RECORDS, fx.head, sig), CVM_E_SIGNATURE);
	for (size_t i = 0; i < sizeof(sig); i += 7) {
		memcpy(sig2, sig, sizeof(sig));
		sig2[i] ^= 0x10;
		assert_int_not_equal(cvm_audit_checkpoint_verify(cert, RECORDS, fx.head, sig2), CVM_OK);
	}
	memcpy(head, fx.head, sizeof(head));
	head[0] ^= 1;
	assert_int_not_equal(cvm_audit_checkpoint_verify(cert, RECORDS, head, sig), CVM_OK);
	/* a seq that differs only in its high half (the encoding is 64 bits) */
	assert_int_equal(cvm_audit_checkpoint_sign(key, RECORDS + (UINT64_C(1) << 32), fx.head, sig2),
	                 CVM_OK);
	assert_int_equal(cvm_audit_checkpoint_verify(cert, RECORDS, fx.head, sig2), CVM_E_SIGNATURE);
	assert_int_equal(cvm_audit_checkpoint_verify(NULL, RECORDS, fx.head, sig), CVM_E_INVAL);
	assert_int_equal(cvm_audit_checkpoint_sign(NULL, RECORDS, fx.head, sig), CVM_E_INVAL);
	cvm_cert_free(cert);
	cvm_cert_free(other);
	cvm_p256_keypair_free(key);
	cvm_p256_keypair_free(other_key);
}

static void head_parse_takes_seq_colon_64_hex_digits(void **state)
{
	static const char *const bad[] = {
	    "",
	    ":",
	    "5",
	    "5:",
	    "-5:0000000000000000000000000000000000000000000000000000000000000000",
	    "+5:0000000000000000000000000000000000000000000000000000000000000000",
	    "05:0000000000000000000000000000000000000000000000000000000000000000",
	    " 5:0000000000000000000000000000000000000000000000000000000000000000",
	    "5:000000000000000000000000000000000000000000000000000000000000000",
	    "5:00000000000000000000000000000000000000000000000000000000000000000",
	    "5:000000000000000000000000000000000000000000000000000000000000000g",
	    "5:0000000000000000000000000000000000000000000000000000000000000000 ",
	    "9223372036854775808:0000000000000000000000000000000000000000000000000000000000000000",
	    "99999999999999999999:0000000000000000000000000000000000000000000000000000000000000000",
	};
	uint8_t head[CVM_AUDIT_HASH_LEN];
	uint64_t seq = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cvm_audit_head_parse(bad[i], &seq, head) != CVM_E_FORMAT)
			fail_msg("'%s' was accepted", bad[i]);
	assert_int_equal(
	    cvm_audit_head_parse(
	        "9223372036854775807:00000000000000000000000000000000000000000000000000000000000000ff", &seq,
	        head),
	    CVM_OK);
	assert_int_equal(seq, INT64_MAX);
	assert_int_equal(head[31], 0xff);
	assert_int_equal(
	    cvm_audit_head_parse("0:ABCDEF0000000000000000000000000000000000000000000000000000000000", &seq,
	                         head),
	    CVM_OK);
	assert_int_equal(seq, 0);
	assert_int_equal(head[0], 0xab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(appended_records_verify_and_chain_to_the_returned_head),
	    cmocka_unit_test(an_empty_log_verifies_with_head_zero),
	    cmocka_unit_test(editing_any_column_of_any_record_is_detected),
	    cmocka_unit_test(a_changed_column_type_or_size_is_detected),
	    cmocka_unit_test(deleting_or_moving_records_is_detected),
	    cmocka_unit_test(a_removed_tail_is_found_only_with_the_expected_head),
	    cmocka_unit_test(a_forged_record_is_detected),
	    cmocka_unit_test(bad_values_are_refused_and_nothing_is_written),
	    cmocka_unit_test(a_second_writer_is_refused_at_its_next_append),
	    cmocka_unit_test(a_crash_inside_an_append_leaves_a_verifiable_log),
	    cmocka_unit_test(the_file_is_0600_and_unsafe_files_are_refused),
	    cmocka_unit_test(foreign_or_altered_databases_are_refused),
	    cmocka_unit_test(each_filters_and_stops_at_the_first_bad_record),
	    cmocka_unit_test(hashes_commit_to_every_field_and_its_boundaries),
	    cmocka_unit_test(head_parse_takes_seq_colon_64_hex_digits),
	    cmocka_unit_test(a_checkpoint_verifies_only_for_its_head_and_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
