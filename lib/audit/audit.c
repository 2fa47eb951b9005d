/* lib/audit: the KMS audit log in SQLite, a SHA-256 chain over its records
 * (include/cvmkit/audit.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <cvmkit/audit.h>
#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

#include "audit_int.h"
#include "core/core_lib.h"

#define AUDIT_ERR_LEN 512
/* How long an append waits for another connection's write lock (a
 * checkpoint, a second writer that is about to be refused). */
#define AUDIT_BUSY_MS 5000

/* The one table, exactly as SQLite keeps it in sqlite_schema (compared as
 * text: a log whose schema differs was not made by this module). Text
 * columns 2..14 are the text fields in encoding order (audit_int.h). */
static const char schema_sql[] =
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY NOT NULL, time INTEGER NOT NULL, node TEXT NOT NULL, "
    "method TEXT NOT NULL, peer TEXT NOT NULL, tee TEXT NOT NULL, app_id TEXT NOT NULL, "
    "instance_id TEXT NOT NULL, compose_hash TEXT NOT NULL, device_id TEXT NOT NULL, "
    "mr_aggregated TEXT NOT NULL, os_image_hash TEXT NOT NULL, decision TEXT NOT NULL, "
    "reason TEXT NOT NULL, keys TEXT NOT NULL, epoch INTEGER NOT NULL, prev BLOB NOT NULL, "
    "hash BLOB NOT NULL) STRICT";

#define COLUMNS                                                                                             \
	"seq, time, node, method, peer, tee, app_id, instance_id, compose_hash, device_id, mr_aggregated, " \
	"os_image_hash, decision, reason, keys, epoch, prev, hash"
/* Column indexes of the statements below. */
enum {
	COL_SEQ = 0,
	COL_TIME = 1,
	COL_TEXT = 2, /* the first text field */
	COL_EPOCH = COL_TEXT + CVM_AUDIT_TEXT_FIELDS,
	COL_PREV,
	COL_HASH,
	COL_COUNT,
};

static const char select_sql[] = "SELECT " COLUMNS " FROM audit ORDER BY seq";
static const char insert_sql[] =
    "INSERT INTO audit (" COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char head_sql[] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

struct cvm_audit {
	sqlite3 *db;
	uint64_t seq; /* the head this handle last wrote or read */
	uint8_t head[CVM_AUDIT_HASH_LEN];
	bool broken; /* another writer changed the log: refuse */
	char err[AUDIT_ERR_LEN];
};

typedef int (*audit_fn)(void *ctx, uint64_t seq, const struct cvm_audit_record *r,
                        const uint8_t hash[CVM_AUDIT_HASH_LEN]);

static void (*test_hook)(void);

void cvm_audit_set_test_hook(void (*fn)(void))
{
	test_hook = fn;
}

/* sql_fail turns a SQLite result into an error code and a sentence. */
static int sql_fail(sqlite3 *db, int rc, const char *what, char *err, size_t err_len)
{
	const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	int r;

	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		r = CVM_E_NOMEM;
		break;
	case SQLITE_NOTADB:
		r = CVM_E_FORMAT;
		break;
	case SQLITE_CORRUPT:
		r = CVM_E_MISMATCH;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		errno = EBUSY;
		r = CVM_E_SYSTEM;
		break;
	default:
		errno = db != NULL && sqlite3_system_errno(db) != 0 ? sqlite3_system_errno(db) : EIO;
		r = CVM_E_SYSTEM;
		break;
	}
	return cvm_err_set(err, err_len, r, "%s: %s", what, msg);
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t err_len)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return sql_fail(db, rc, sql, err, err_len);
	return CVM_OK;
}

/* pragma_text runs a PRAGMA that answers one text row into `out`. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t out_len, char *err, size_t err_len)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	int rc, r;

	out[0] = '\0';
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_fail(db, rc, sql, err, err_len);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = sql_fail(db, rc, sql, err, err_len);
		goto out;
	}
	t = sqlite3_column_text(st, 0);
	if (t != NULL && (size_t)sqlite3_column_bytes(st, 0) < out_len)
		(void)snprintf(out, out_len, "%s", (const char *)t);
	r = CVM_OK;
out:
	sqlite3_finalize(st);
	return r;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t err_len)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	*out = 0;
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_fail(db, rc, sql, err, err_len);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || sqlite3_column_type(st, 0) != SQLITE_INTEGER) {
		r = rc == SQLITE_ROW ? cvm_err_set(err, err_len, CVM_E_FORMAT, "%s: not a number", sql)
		                     : sql_fail(db, rc, sql, err, err_len);
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
	r = CVM_OK;
out:
	sqlite3_finalize(st);
	return r;
}

/* check_file refuses what a log must not be: a symbolic link, not a regular
 * file, and (for the writer) a file that group or others may write. With
 * `create`, a missing file is created, mode 0600. */
static int check_file(const char *path, bool is_writer, bool create, char *err, size_t err_len)
{
	struct stat st;
	int fd;

	if (create) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			/* the umask may take bits away, never add them: make it exactly 0600 */
			if (fchmod(fd, 0600) != 0) {
				int e = errno;

				(void)close(fd);
				errno = e;
				return cvm_err_set(err, err_len, CVM_E_SYSTEM, "%s: cannot set mode 0600: %s",
				                   path, strerror(e));
			}
			(void)close(fd);
		} else if (errno != EEXIST) {
			return cvm_err_set(err, err_len, CVM_E_SYSTEM, "%s: cannot create the log: %s", path,
			                   strerror(errno));
		}
	}
	if (lstat(path, &st) != 0)
		return cvm_err_set(err, err_len, CVM_E_SYSTEM, "%s: %s", path, strerror(errno));
	if (S_ISLNK(st.st_mode))
		return cvm_err_set(err, err_len, CVM_E_POLICY,
		                   "%s is a symbolic link: name the log file itself", path);
	if (!S_ISREG(st.st_mode))
		return cvm_err_set(err, err_len, CVM_E_POLICY, "%s is not a regular file", path);
	if (is_writer && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return cvm_err_set(err, err_len, CVM_E_POLICY,
		                   "%s has mode %04o: group or others may write the audit log; "
		                   "chmod 600 it (and check that nobody changed it)",
		                   path, (unsigned)(st.st_mode & 07777));
	return CVM_OK;
}

/* db_open opens `path` with SQLite's defences on: no triggers or views run,
 * no untrusted schema function, no direct schema writes. */
static int db_open(const char *path, bool is_writer, sqlite3 **out, char *err, size_t err_len)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX;
	int rc, r;

	*out = NULL;
	flags |= is_writer ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
	rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		r = sql_fail(db, rc, path, err, err_len);
		goto out;
	}
	if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, (int *)NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, (int *)NULL) != SQLITE_OK) {
		r = cvm_err_set(err, err_len, CVM_E_INTERNAL,
		                "%s: cannot turn on SQLite's defensive settings", path);
		goto out;
	}
	rc = sqlite3_busy_timeout(db, AUDIT_BUSY_MS);
	if (rc != SQLITE_OK) {
		r = sql_fail(db, rc, path, err, err_len);
		goto out;
	}
	*out = db;
	db = NULL; /* transferred */
	r = CVM_OK;
out:
	sqlite3_close(db);
	return r;
}

/* check_schema checks that `db` is an audit log of this version: its
 * application id, user_version and exactly one schema object, our table. A
 * database with no schema at all and ids 0 is `*is_blank` (a new file). */
static int check_schema(sqlite3 *db, bool *is_blank, char *err, size_t err_len)
{
	sqlite3_stmt *st = NULL;
	int64_t app_id, version;
	size_t objects = 0;
	int rc, r;

	*is_blank = false;
	r = pragma_int(db, "PRAGMA application_id", &app_id, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = pragma_int(db, "PRAGMA user_version", &version, err, err_len);
	if (r != CVM_OK)
		goto out;
	rc = sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_schema", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_fail(db, rc, "read the schema", err, err_len);
		goto out;
	}
	for (;;) {
		const unsigned char *type, *name, *sql;

		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			r = sql_fail(db, rc, "read the schema", err, err_len);
			goto out;
		}
		objects++;
		type = sqlite3_column_text(st, 0);
		name = sqlite3_column_text(st, 1);
		sql = sqlite3_column_text(st, 2);
		if (app_id != CVM_AUDIT_APPLICATION_ID)
			continue; /* reported below */
		if (type == NULL || name == NULL || sql == NULL || strcmp((const char *)type, "table") != 0 ||
		    strcmp((const char *)name, "audit") != 0 || strcmp((const char *)sql, schema_sql) != 0) {
			char what[128];

			(void)snprintf(what, sizeof(what), "%s '%s'",
			               type != NULL ? (const char *)type : "object",
			               name != NULL ? (const char *)name : "");
			for (char *c = what; *c != '\0'; c++)
				if (*c < 0x20 || *c > 0x7e)
					*c = '?';
			r = cvm_err_set(err, err_len, CVM_E_MISMATCH,
			                "the log's schema was changed: %s is not cvmkit's audit table", what);
			goto out;
		}
	}
	if (app_id == 0 && version == 0 && objects == 0) {
		*is_blank = true;
		r = CVM_OK;
		goto out;
	}
	if (app_id != CVM_AUDIT_APPLICATION_ID) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "not a cvmkit audit log (SQLite application_id %lld, expected %d)",
		                (long long)app_id, CVM_AUDIT_APPLICATION_ID);
		goto out;
	}
	if (version != CVM_AUDIT_VERSION) {
		r = cvm_err_set(err, err_len, CVM_E_UNSUPPORTED,
		                "audit log version %lld: this cvmkit reads version %d", (long long)version,
		                CVM_AUDIT_VERSION);
		goto out;
	}
	if (objects != 1) {
		r = cvm_err_set(err, err_len, CVM_E_MISMATCH,
		                "the log's schema was changed: its audit table is gone");
		goto out;
	}
	r = CVM_OK;
out:
	sqlite3_finalize(st);
	return r;
}

/* ---- reading records ---------------------------------------------------------- */

static int col_text(sqlite3_stmt *st, int col, uint64_t seq, const char *name, char *dst, size_t size,
                    char *err, size_t err_len)
{
	const unsigned char *p;
	struct cvm_rd rd;
	int n;

	if (sqlite3_column_type(st, col) != SQLITE_TEXT)
		return cvm_err_set(err, err_len, CVM_E_MISMATCH, "record %llu: column %s is not text",
		                   (unsigned long long)seq, name);
	p = sqlite3_column_text(st, col);
	n = sqlite3_column_bytes(st, col);
	if (p == NULL)
		return CVM_E_NOMEM;
	if (n < 0 || (size_t)n >= size)
		return cvm_err_set(err, err_len, CVM_E_MISMATCH,
		                   "record %llu: column %s holds %d bytes, more than its %zu",
		                   (unsigned long long)seq, name, n, size - 1);
	cvm_rd_init(&rd, p, (size_t)n);
	if (cvm_rd_has_nul(&rd))
		return cvm_err_set(err, err_len, CVM_E_MISMATCH, "record %llu: column %s holds a NUL byte",
		                   (unsigned long long)seq, name);
	if (!cvm_rd_copy(&rd, dst, (size_t)n))
		return CVM_E_INTERNAL;
	dst[n] = '\0';
	return CVM_OK;
}

static int col_hash(sqlite3_stmt *st, int col, uint64_t seq, const char *name,
                    uint8_t out[CVM_AUDIT_HASH_LEN], char *err, size_t err_len)
{
	const void *p;
	struct cvm_rd rd;

	if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, col) != CVM_AUDIT_HASH_LEN)
		return cvm_err_set(err, err_len, CVM_E_MISMATCH,
		                   "record %llu: column %s is not a %d-byte hash", (unsigned long long)seq,
		                   name, CVM_AUDIT_HASH_LEN);
	p = sqlite3_column_blob(st, col);
	if (p == NULL)
		return CVM_E_NOMEM;
	cvm_rd_init(&rd, p, CVM_AUDIT_HASH_LEN);
	if (!cvm_rd_copy(&rd, out, CVM_AUDIT_HASH_LEN))
		return CVM_E_INTERNAL;
	return CVM_OK;
}

/* read_row decodes the current row (its seq already checked) into `r`,
 * `prev` and `hash`. Any column of the wrong type or size is CVM_E_MISMATCH. */
static int read_row(sqlite3_stmt *st, uint64_t seq, struct cvm_audit_record *r,
                    uint8_t prev[CVM_AUDIT_HASH_LEN], uint8_t hash[CVM_AUDIT_HASH_LEN], char *err,
                    size_t err_len)
{
	int64_t v;
	int ret;

	memset(r, 0, sizeof(*r));
	if (sqlite3_column_type(st, COL_TIME) != SQLITE_INTEGER || sqlite3_column_int64(st, COL_TIME) < 0)
		return cvm_err_set(err, err_len, CVM_E_MISMATCH, "record %llu: column time is not a time",
		                   (unsigned long long)seq);
	r->time = sqlite3_column_int64(st, COL_TIME);
	for (size_t i = 0; i < CVM_AUDIT_TEXT_FIELDS; i++) {
		size_t size;
		char *dst = cvm_audit_field(r, i, &size);

		ret = col_text(st, COL_TEXT + (int)i, seq, cvm_audit_field_name(i), dst, size, err, err_len);
		if (ret != CVM_OK)
			return ret;
	}
	v = sqlite3_column_int64(st, COL_EPOCH);
	if (sqlite3_column_type(st, COL_EPOCH) != SQLITE_INTEGER || v < 0 || v > (int64_t)UINT32_MAX)
		return cvm_err_set(err, err_len, CVM_E_MISMATCH, "record %llu: column epoch is not an epoch",
		                   (unsigned long long)seq);
	r->epoch = (uint32_t)v;
	ret = col_hash(st, COL_PREV, seq, "prev", prev, err, err_len);
	if (ret != CVM_OK)
		return ret;
	return col_hash(st, COL_HASH, seq, "hash", hash, err, err_len);
}

static bool filter_match(const struct cvm_audit_filter *f, const struct cvm_audit_record *r)
{
	if (f == NULL)
		return true;
	if (f->app_id != NULL && strcasecmp(f->app_id, r->app_id) != 0)
		return false;
	if (r->time < f->since)
		return false;
	if (f->decision != NULL && strcmp(f->decision, r->decision) != 0)
		return false;
	return true;
}

struct walk {
	uint64_t count;                   /* records intact so far */
	uint8_t head[CVM_AUDIT_HASH_LEN]; /* the last one's hash */
	uint64_t bad_seq;                 /* on CVM_E_MISMATCH: the first bad or missing record */
};

/* walk_log reads every record in seq order and checks the chain, calling
 * `fn` (may be NULL) for those `f` selects. Returns 0, CVM_E_MISMATCH
 * (w->bad_seq and `err` say where and what), fn's non-zero value, or
 * another error. The caller holds a read transaction. */
static int walk_log(sqlite3 *db, const struct cvm_audit_filter *f, audit_fn fn, void *ctx, struct walk *w,
                    char *err, size_t err_len)
{
	struct cvm_audit_record rec;
	uint8_t prev[CVM_AUDIT_HASH_LEN], hash[CVM_AUDIT_HASH_LEN], want[CVM_AUDIT_HASH_LEN];
	sqlite3_stmt *st = NULL;
	char why[AUDIT_ERR_LEN];
	int rc, r;

	memset(w, 0, sizeof(*w));
	rc = sqlite3_prepare_v2(db, select_sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_fail(db, rc, "read the records", err, err_len);
		goto out;
	}
	for (;;) {
		uint64_t expect = w->count + 1;
		int64_t seq;

		w->bad_seq = expect;
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			r = sql_fail(db, rc, "read the records", why, sizeof(why));
			if (r == CVM_E_MISMATCH)
				(void)cvm_err_set(err, err_len, r,
				                  "the database is damaged after record %llu: %s",
				                  (unsigned long long)w->count, why);
			else
				(void)cvm_err_set(err, err_len, r, "%s", why);
			goto out;
		}
		seq = sqlite3_column_int64(st, COL_SEQ);
		if (sqlite3_column_type(st, COL_SEQ) != SQLITE_INTEGER || seq < 1) {
			r = cvm_err_set(
			    err, err_len, CVM_E_MISMATCH,
			    "record %llu: a record with seq %lld comes before it, but seqs start at 1 "
			    "(a record was inserted)",
			    (unsigned long long)expect, (long long)seq);
			goto out;
		}
		if ((uint64_t)seq != expect) {
			r = cvm_err_set(err, err_len, CVM_E_MISMATCH,
			                "record %llu is missing (the next one is %lld): records were removed",
			                (unsigned long long)expect, (long long)seq);
			goto out;
		}
		r = read_row(st, expect, &rec, prev, hash, err, err_len);
		if (r != CVM_OK)
			goto out;
		r = cvm_audit_record_check(&rec, why, sizeof(why));
		if (r != CVM_OK) {
			r = cvm_err_set(err, err_len, CVM_E_MISMATCH,
			                "record %llu: %s (append never writes that)",
			                (unsigned long long)expect, why);
			goto out;
		}
		if (memcmp(prev, w->head, CVM_AUDIT_HASH_LEN) != 0) {
			r = cvm_err_set(
			    err, err_len, CVM_E_MISMATCH,
			    "record %llu: its prev is not the hash of record %llu: a record before it was "
			    "removed, replaced or moved",
			    (unsigned long long)expect, (unsigned long long)w->count);
			goto out;
		}
		r = cvm_audit_record_hash(expect, w->head, &rec, want);
		if (r != CVM_OK)
			goto out;
		if (memcmp(want, hash, CVM_AUDIT_HASH_LEN) != 0) {
			r = cvm_err_set(
			    err, err_len, CVM_E_MISMATCH,
			    "record %llu: its fields do not match its hash: the record was edited (a field, "
			    "its seq or its hash)",
			    (unsigned long long)expect);
			goto out;
		}
		w->count = expect;
		memcpy(w->head, hash, CVM_AUDIT_HASH_LEN);
		if (fn != NULL && filter_match(f, &rec)) {
			r = fn(ctx, expect, &rec, hash);
			if (r != 0)
				goto out;
		}
	}
	w->bad_seq = 0;
	r = CVM_OK;
out:
	sqlite3_finalize(st);
	return r;
}

/* read_log opens `path` read-only and walks it in one read transaction. */
static int read_log(const char *path, const struct cvm_audit_filter *f, audit_fn fn, void *ctx,
                    struct walk *w, char *err, size_t err_len)
{
	sqlite3 *db = NULL;
	bool is_blank, in_txn = false;
	int r;

	memset(w, 0, sizeof(*w));
	r = check_file(path, false, false, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = db_open(path, false, &db, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = exec(db, "BEGIN", err, err_len);
	if (r != CVM_OK)
		goto out;
	in_txn = true;
	r = check_schema(db, &is_blank, err, err_len);
	if (r == CVM_OK && is_blank)
		r = cvm_err_set(err, err_len, CVM_E_FORMAT, "%s is an empty database, not an audit log",
		                path);
	if (r != CVM_OK)
		goto out;
	r = walk_log(db, f, fn, ctx, w, err, err_len);
out:
	if (in_txn)
		(void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return r;
}

/* ---- the public API ----------------------------------------------------------- */

int cvm_audit_open(const char *path, bool create, struct cvm_audit **out, char *err, size_t err_len)
{
	struct cvm_audit *a = NULL;
	struct walk w;
	char mode[16];
	bool is_blank, in_txn = false;
	int r;

	if (err_len > 0)
		err[0] = '\0';
	if (out == NULL)
		return CVM_E_INVAL;
	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no audit log path");
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return CVM_E_NOMEM;
	r = check_file(path, true, create, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = db_open(path, true, &a->db, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = exec(a->db, "BEGIN IMMEDIATE", err, err_len);
	if (r != CVM_OK)
		goto out;
	in_txn = true;
	r = check_schema(a->db, &is_blank, err, err_len);
	if (r != CVM_OK)
		goto out;
	if (is_blank && !create) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT, "%s is an empty database, not an audit log",
		                path);
		goto out;
	}
	if (is_blank) {
		char sql[64];

		r = exec(a->db, schema_sql, err, err_len);
		if (r != CVM_OK)
			goto out;
		(void)snprintf(sql, sizeof(sql), "PRAGMA application_id=%d", CVM_AUDIT_APPLICATION_ID);
		r = exec(a->db, sql, err, err_len);
		if (r != CVM_OK)
			goto out;
		(void)snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", CVM_AUDIT_VERSION);
		r = exec(a->db, sql, err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	r = walk_log(a->db, NULL, NULL, NULL, &w, err, err_len);
	if (r == CVM_E_MISMATCH) {
		char why[AUDIT_ERR_LEN];

		(void)snprintf(why, sizeof(why), "%s", err_len > 0 ? err : "");
		r = cvm_err_set(err, err_len, CVM_E_MISMATCH,
		                "%s: the audit log is broken, refusing to append to it: %s", path, why);
	}
	if (r != CVM_OK)
		goto out;
	r = exec(a->db, "COMMIT", err, err_len);
	if (r != CVM_OK)
		goto out;
	in_txn = false;
	/* Only now that the file is known to be ours. WAL: readers (verify,
	 * show) see a consistent snapshot while the daemon appends. FULL: every
	 * commit is on disk before append returns (the header says why NORMAL
	 * is not enough). */
	r = pragma_text(a->db, "PRAGMA journal_mode=WAL", mode, sizeof(mode), err, err_len);
	if (r != CVM_OK)
		goto out;
	if (strcmp(mode, "wal") != 0) {
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM,
		                "%s: SQLite cannot use WAL mode here (journal mode %s)", path, mode);
		goto out;
	}
	r = exec(a->db, "PRAGMA synchronous=FULL", err, err_len);
	if (r != CVM_OK)
		goto out;
	a->seq = w.count;
	memcpy(a->head, w.head, CVM_AUDIT_HASH_LEN);
	*out = a;
	a = NULL; /* transferred */
out:
	if (in_txn)
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	cvm_audit_close(a);
	return r;
}

/* read_head reads the last record's seq and hash inside the caller's
 * transaction (0 and zeros when there is none). */
static int read_head(struct cvm_audit *a, uint64_t *seq, uint8_t head[CVM_AUDIT_HASH_LEN])
{
	sqlite3_stmt *st = NULL;
	int64_t v;
	int rc, r;

	*seq = 0;
	memset(head, 0, CVM_AUDIT_HASH_LEN);
	rc = sqlite3_prepare_v2(a->db, head_sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_fail(a->db, rc, "read the head", a->err, sizeof(a->err));
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = CVM_OK;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(a->db, rc, "read the head", a->err, sizeof(a->err));
		goto out;
	}
	v = sqlite3_column_int64(st, 0);
	if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || v < 1) {
		r = cvm_err_set(a->err, sizeof(a->err), CVM_E_MISMATCH, "the last record has seq %lld",
		                (long long)v);
		goto out;
	}
	*seq = (uint64_t)v;
	r = col_hash(st, 1, *seq, "hash", head, a->err, sizeof(a->err));
out:
	sqlite3_finalize(st);
	return r;
}

static int insert(struct cvm_audit *a, uint64_t seq, const struct cvm_audit_record *r,
                  const uint8_t hash[CVM_AUDIT_HASH_LEN])
{
	struct cvm_audit_record copy = *r; /* cvm_audit_field takes a mutable record */
	sqlite3_stmt *st = NULL;
	int rc, ret;

	rc = sqlite3_prepare_v2(a->db, insert_sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		ret = sql_fail(a->db, rc, "prepare the insert", a->err, sizeof(a->err));
		goto out;
	}
	rc = sqlite3_bind_int64(st, COL_SEQ + 1, (sqlite3_int64)seq);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, COL_TIME + 1, r->time);
	for (size_t i = 0; i < CVM_AUDIT_TEXT_FIELDS && rc == SQLITE_OK; i++) {
		size_t size;
		const char *s = cvm_audit_field(&copy, i, &size);

		rc = sqlite3_bind_text(st, COL_TEXT + (int)i + 1, s, -1, SQLITE_STATIC);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, COL_EPOCH + 1, r->epoch);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(st, COL_PREV + 1, a->head, CVM_AUDIT_HASH_LEN, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(st, COL_HASH + 1, hash, CVM_AUDIT_HASH_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		ret = sql_fail(a->db, rc, "bind the record", a->err, sizeof(a->err));
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		ret = sql_fail(a->db, rc, "insert the record", a->err, sizeof(a->err));
		goto out;
	}
	ret = CVM_OK;
out:
	sqlite3_finalize(st);
	return ret;
}

int cvm_audit_append(struct cvm_audit *a, const struct cvm_audit_record *r, uint64_t *seq_out,
                     uint8_t head_out[CVM_AUDIT_HASH_LEN])
{
	struct cvm_audit_record rec;
	uint8_t hash[CVM_AUDIT_HASH_LEN], cur[CVM_AUDIT_HASH_LEN];
	uint64_t cur_seq;
	bool in_txn = false;
	int ret;

	if (seq_out != NULL)
		*seq_out = 0;
	if (head_out != NULL)
		memset(head_out, 0, CVM_AUDIT_HASH_LEN);
	if (a == NULL)
		return CVM_E_INVAL;
	a->err[0] = '\0';
	if (a->broken)
		return cvm_err_set(
		    a->err, sizeof(a->err), CVM_E_MISMATCH,
		    "this handle saw another writer change the log and refuses to append; reopen "
		    "the log (which verifies it) after finding out who wrote to it");
	ret = cvm_audit_record_check(r, a->err, sizeof(a->err));
	if (ret != CVM_OK)
		return ret;
	if (a->seq >= (uint64_t)INT64_MAX)
		return cvm_err_set(a->err, sizeof(a->err), CVM_E_TOO_LARGE,
		                   "the log is full (2^63-1 records)");
	rec = *r;
	if (rec.time == 0)
		rec.time = (int64_t)time(NULL);
	if (rec.time < 0)
		return cvm_err_set(a->err, sizeof(a->err), CVM_E_SYSTEM, "the system clock is before 1970");
	ret = exec(a->db, "BEGIN IMMEDIATE", a->err, sizeof(a->err));
	if (ret != CVM_OK)
		goto out;
	in_txn = true;
	/* Re-read the head under the write lock: another writer (a second
	 * daemon, a hand edit) must not have our record chained onto its own. */
	ret = read_head(a, &cur_seq, cur);
	if (ret == CVM_OK && (cur_seq != a->seq || memcmp(cur, a->head, CVM_AUDIT_HASH_LEN) != 0))
		ret =
		    cvm_err_set(a->err, sizeof(a->err), CVM_E_MISMATCH,
		                "the log changed under this handle: it ends at record %llu, this handle last "
		                "wrote record %llu (another writer, or an edit); refusing to append",
		                (unsigned long long)cur_seq, (unsigned long long)a->seq);
	if (ret == CVM_E_MISMATCH)
		a->broken = true;
	if (ret != CVM_OK)
		goto out;
	ret = cvm_audit_record_hash(a->seq + 1, a->head, &rec, hash);
	if (ret != CVM_OK)
		goto out;
	ret = insert(a, a->seq + 1, &rec, hash);
	if (ret != CVM_OK)
		goto out;
	if (test_hook != NULL)
		test_hook();
	ret = exec(a->db, "COMMIT", a->err, sizeof(a->err));
	if (ret != CVM_OK)
		goto out;
	in_txn = false;
	a->seq++;
	memcpy(a->head, hash, CVM_AUDIT_HASH_LEN);
	if (seq_out != NULL)
		*seq_out = a->seq;
	if (head_out != NULL)
		memcpy(head_out, hash, CVM_AUDIT_HASH_LEN);
out:
	if (in_txn)
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int cvm_audit_head(struct cvm_audit *a, uint64_t *seq, uint8_t head[CVM_AUDIT_HASH_LEN])
{
	if (a == NULL || seq == NULL || head == NULL)
		return CVM_E_INVAL;
	*seq = a->seq;
	memcpy(head, a->head, CVM_AUDIT_HASH_LEN);
	return CVM_OK;
}

const char *cvm_audit_error(const struct cvm_audit *a)
{
	return a != NULL ? a->err : "";
}

void cvm_audit_close(struct cvm_audit *a)
{
	if (a == NULL)
		return;
	sqlite3_close(a->db);
	free(a);
}

int cvm_audit_verify(const char *path, const uint8_t *expect_head, uint64_t expect_seq, uint64_t *count,
                     uint8_t head[CVM_AUDIT_HASH_LEN], uint64_t *bad_seq, char *err, size_t err_len)
{
	struct walk w;
	int r;

	if (err_len > 0)
		err[0] = '\0';
	if (count != NULL)
		*count = 0;
	if (head != NULL)
		memset(head, 0, CVM_AUDIT_HASH_LEN);
	if (bad_seq != NULL)
		*bad_seq = 0;
	if (path == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no audit log path");
	r = read_log(path, NULL, NULL, NULL, &w, err, err_len);
	if (r == CVM_OK && expect_head != NULL) {
		char want[2 * CVM_AUDIT_HASH_LEN + 1], got[2 * CVM_AUDIT_HASH_LEN + 1];

		cvm_hex_encode(expect_head, CVM_AUDIT_HASH_LEN, want);
		cvm_hex_encode(w.head, CVM_AUDIT_HASH_LEN, got);
		if (w.count < expect_seq) {
			w.bad_seq = w.count + 1;
			r = cvm_err_set(
			    err, err_len, CVM_E_MISMATCH,
			    "the log ends at record %llu but the expected head is record %llu: records "
			    "%llu to %llu were removed",
			    (unsigned long long)w.count, (unsigned long long)expect_seq,
			    (unsigned long long)w.count + 1, (unsigned long long)expect_seq);
		} else if (w.count > expect_seq) {
			w.bad_seq = expect_seq + 1;
			r = cvm_err_set(
			    err, err_len, CVM_E_MISMATCH,
			    "the log goes on past the expected head (record %llu) to record %llu: records "
			    "were added after it (or that head is not the latest one logged)",
			    (unsigned long long)expect_seq, (unsigned long long)w.count);
		} else if (memcmp(w.head, expect_head, CVM_AUDIT_HASH_LEN) != 0) {
			w.bad_seq = expect_seq;
			r = cvm_err_set(
			    err, err_len, CVM_E_MISMATCH,
			    "record %llu has the hash %s, not the expected %s: the log was rewritten",
			    (unsigned long long)expect_seq, got, want);
		}
	}
	if (count != NULL)
		*count = w.count;
	if (head != NULL)
		memcpy(head, w.head, CVM_AUDIT_HASH_LEN);
	if (bad_seq != NULL && r == CVM_E_MISMATCH)
		*bad_seq = w.bad_seq;
	return r;
}

int cvm_audit_each(const char *path, const struct cvm_audit_filter *f,
                   int (*fn)(void *ctx, uint64_t seq, const struct cvm_audit_record *r,
                             const uint8_t hash[CVM_AUDIT_HASH_LEN]),
                   void *ctx, char *err, size_t err_len)
{
	struct walk w;

	if (err_len > 0)
		err[0] = '\0';
	if (path == NULL || fn == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no audit log path or callback");
	return read_log(path, f, fn, ctx, &w, err, err_len);
}
