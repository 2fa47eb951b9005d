/* libFuzzer harness for lib/audit's readers of untrusted bytes: the
 * `--expect-head SEQ:HEX` parser, the record rules (a record built from raw
 * bytes, as a careless caller could pass one), and the whole reader of an
 * audit log, fed database files (inputs that start with SQLite's header are
 * written to a file and verified, then walked). Whatever the input: nothing
 * crashes; a parsed head prints back as the input; a record that passes the
 * rules is NUL-terminated printable ASCII in every field and hashes the same
 * twice; verify returns a documented code, reports a first bad record no
 * further than one past the intact ones, and when it says intact the walk
 * passes exactly that many records, consecutive from 1, each passing the
 * rules. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cvmkit/audit.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

#include "audit/audit_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char db[96];

static void remove_files(void)
{
	char side[128];

	(void)unlink(db);
	(void)snprintf(side, sizeof(side), "%s-wal", db);
	(void)unlink(side);
	(void)snprintf(side, sizeof(side), "%s-shm", db);
	(void)unlink(side);
	(void)snprintf(side, sizeof(side), "%s-journal", db);
	(void)unlink(side);
}

static void cleanup(void)
{
	remove_files();
	(void)rmdir(dir);
}

static void check_head(const uint8_t *data, size_t size)
{
	char in[256], out[256], hex[2 * CVM_AUDIT_HASH_LEN + 1];
	uint8_t head[CVM_AUDIT_HASH_LEN];
	uint64_t seq;
	size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;

	memcpy(in, data, n);
	in[n] = '\0';
	if (cvm_audit_head_parse(in, &seq, head) != CVM_OK)
		return;
	cvm_hex_encode(head, sizeof(head), hex);
	(void)snprintf(out, sizeof(out), "%llu:%s", (unsigned long long)seq, hex);
	if (strcasecmp(in, out) != 0 || seq > (uint64_t)INT64_MAX)
		__builtin_trap();
}

static void check_fields(const struct cvm_audit_record *r)
{
	struct cvm_audit_record copy = *r;

	for (size_t i = 0; i < CVM_AUDIT_TEXT_FIELDS; i++) {
		size_t cap;
		const char *s = cvm_audit_field(&copy, i, &cap);
		size_t n = strnlen(s, cap);

		if (n == cap)
			__builtin_trap();
		for (size_t k = 0; k < n; k++)
			if ((unsigned char)s[k] < 0x20 || (unsigned char)s[k] > 0x7e)
				__builtin_trap();
	}
}

static void check_record(const uint8_t *data, size_t size)
{
	struct cvm_audit_record r;
	uint8_t prev[CVM_AUDIT_HASH_LEN] = {0}, a[CVM_AUDIT_HASH_LEN], b[CVM_AUDIT_HASH_LEN];

	memset(&r, 0, sizeof(r));
	memcpy(&r, data, size < sizeof(r) ? size : sizeof(r));
	if (cvm_audit_record_check(&r, NULL, 0) != CVM_OK)
		return;
	check_fields(&r);
	if (cvm_audit_record_hash(1, prev, &r, a) != CVM_OK ||
	    cvm_audit_record_hash(1, prev, &r, b) != CVM_OK || memcmp(a, b, sizeof(a)) != 0)
		__builtin_trap();
}

struct walk {
	uint64_t next;
};

static int on_record(void *ctx, uint64_t seq, const struct cvm_audit_record *r, const uint8_t hash[32])
{
	struct walk *w = ctx;

	(void)hash;
	if (seq != w->next || cvm_audit_record_check(r, NULL, 0) != CVM_OK)
		__builtin_trap();
	check_fields(r);
	w->next++;
	return 0;
}

static void check_log(const uint8_t *data, size_t size)
{
	uint8_t head[CVM_AUDIT_HASH_LEN];
	uint64_t count = 0, bad = 0;
	struct walk w = {1};
	char err[512];
	FILE *f;
	int r, e;

	if (dir[0] == '\0') {
		(void)snprintf(dir, sizeof(dir), "/tmp/cvm-fuzz-audit-XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
		(void)snprintf(db, sizeof(db), "%s/log.db", dir);
		(void)atexit(cleanup);
	}
	remove_files();
	f = fopen(db, "wb");
	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	r = cvm_audit_verify(db, NULL, 0, &count, head, &bad, err, sizeof(err));
	if (r != CVM_OK && r != CVM_E_MISMATCH && r != CVM_E_FORMAT && r != CVM_E_UNSUPPORTED &&
	    r != CVM_E_SYSTEM && r != CVM_E_NOMEM)
		__builtin_trap();
	if (r == CVM_E_MISMATCH && bad > count + 1)
		__builtin_trap();
	e = cvm_audit_each(db, NULL, on_record, &w, err, sizeof(err));
	/* the walk sees what verify saw: the same file, the same checks */
	if (e != r || (r == CVM_OK && w.next != count + 1))
		__builtin_trap();
	remove_files();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char magic[] = "SQLite format 3";

	check_head(data, size);
	check_record(data, size);
	if (size >= 512 && memcmp(data, magic, sizeof(magic)) == 0)
		check_log(data, size);
	return 0;
}
