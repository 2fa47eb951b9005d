/* lib/audit: the rules a record's values follow and its canonical encoding
 * (include/cvmkit/audit.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cvmkit/audit.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

#include "audit_int.h"
#include "core/core_lib.h"

enum field_kind {
	FIELD_TEXT,     /* printable ASCII */
	FIELD_HEX,      /* "" or lowercase hex of an even length */
	FIELD_DECISION, /* "allowed", "denied" or "error" */
};

struct field {
	const char *name;
	size_t offset, size;
	enum field_kind kind;
};

#define FIELD(m, k)                                                                                    \
	{                                                                                              \
#m, offsetof(struct cvm_audit_record, m), sizeof(((struct cvm_audit_record *)0)->m), k \
	}

/* The text fields in the order they are encoded (the file comment of
 * include/cvmkit/audit.h); changing it changes every hash. */
static const struct field fields[] = {
    FIELD(node, FIELD_TEXT),         FIELD(method, FIELD_TEXT),       FIELD(peer, FIELD_TEXT),
    FIELD(tee, FIELD_TEXT),          FIELD(app_id, FIELD_HEX),        FIELD(instance_id, FIELD_HEX),
    FIELD(compose_hash, FIELD_HEX),  FIELD(device_id, FIELD_HEX),     FIELD(mr_aggregated, FIELD_HEX),
    FIELD(os_image_hash, FIELD_HEX), FIELD(decision, FIELD_DECISION), FIELD(reason, FIELD_TEXT),
    FIELD(keys, FIELD_TEXT),
};

#define FIELD_COUNT (sizeof(fields) / sizeof(fields[0]))
_Static_assert(sizeof(CVM_AUDIT_TAG) - 1 == CVM_AUDIT_TAG_LEN, "the record tag's length");
_Static_assert(FIELD_COUNT == CVM_AUDIT_TEXT_FIELDS, "audit_int.h counts the text fields");

const char *cvm_audit_field_name(size_t i)
{
	return i < FIELD_COUNT ? fields[i].name : NULL;
}

char *cvm_audit_field(struct cvm_audit_record *r, size_t i, size_t *size)
{
	if (i >= FIELD_COUNT) {
		*size = 0;
		return NULL;
	}
	*size = fields[i].size;
	return (char *)r + fields[i].offset;
}

static const char *field_text(const struct cvm_audit_record *r, const struct field *f)
{
	return (const char *)r + f->offset;
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int check_field(const struct cvm_audit_record *r, const struct field *f, char *err, size_t err_len)
{
	const char *s = field_text(r, f);
	const char *nul = memchr(s, '\0', f->size);
	size_t len;

	if (nul == NULL)
		return cvm_err_set(err, err_len, CVM_E_TOO_LARGE, "%s is longer than %zu characters", f->name,
		                   f->size - 1);
	len = (size_t)(nul - s);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e)
			return cvm_err_set(
			    err, err_len, CVM_E_INVAL,
			    "%s has the byte 0x%02x at offset %zu: only printable ASCII is allowed", f->name,
			    c, i);
		if (f->kind == FIELD_HEX && !is_lower_hex(s[i]))
			return cvm_err_set(
			    err, err_len, CVM_E_INVAL,
			    "%s has '%c' at offset %zu: expected lowercase hex digits or nothing", f->name,
			    s[i], i);
	}
	if (f->kind == FIELD_HEX && len % 2 != 0)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "%s has an odd number of hex digits (%zu)",
		                   f->name, len);
	if (f->kind == FIELD_DECISION && strcmp(s, "allowed") != 0 && strcmp(s, "denied") != 0 &&
	    strcmp(s, "error") != 0)
		return cvm_err_set(err, err_len, CVM_E_INVAL,
		                   "decision '%s' is not one of allowed, denied, error", s);
	return CVM_OK;
}

int cvm_audit_record_check(const struct cvm_audit_record *r, char *err, size_t err_len)
{
	int ret;

	if (err_len > 0)
		err[0] = '\0';
	if (r == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no record");
	if (r->time < 0)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "time %lld is before 1970", (long long)r->time);
	for (size_t i = 0; i < FIELD_COUNT; i++) {
		ret = check_field(r, &fields[i], err, err_len);
		if (ret != CVM_OK)
			return ret;
	}
	return CVM_OK;
}

int cvm_audit_record_hash(uint64_t seq, const uint8_t prev[CVM_AUDIT_HASH_LEN],
                          const struct cvm_audit_record *r, uint8_t out[CVM_AUDIT_HASH_LEN])
{
	uint8_t buf[CVM_AUDIT_ENCODING_MAX];
	struct cvm_wr w;
	uint8_t *p = NULL;
	size_t len = 0;
	int ret;

	cvm_wr_init_fixed(&w, buf, sizeof(buf));
	cvm_wr_bytes(&w, CVM_AUDIT_TAG, CVM_AUDIT_TAG_LEN);
	cvm_wr_u32be(&w, (uint32_t)(seq >> 32));
	cvm_wr_u32be(&w, (uint32_t)seq);
	cvm_wr_bytes(&w, prev, CVM_AUDIT_HASH_LEN);
	/* time >= 0 (cvm_audit_record_check), so the cast keeps its value */
	cvm_wr_u32be(&w, (uint32_t)((uint64_t)r->time >> 32));
	cvm_wr_u32be(&w, (uint32_t)(uint64_t)r->time);
	cvm_wr_u32be(&w, r->epoch);
	for (size_t i = 0; i < FIELD_COUNT; i++) {
		const char *s = field_text(r, &fields[i]);
		const char *nul = memchr(s, '\0', fields[i].size);
		size_t n;

		if (nul == NULL || fields[i].size > UINT16_MAX)
			return CVM_E_INTERNAL;
		n = (size_t)(nul - s);
		cvm_wr_u16be(&w, (uint16_t)n);
		cvm_wr_bytes(&w, s, n);
	}
	ret = cvm_wr_finish(&w, &p, &len);
	if (ret != CVM_OK)
		return CVM_E_INTERNAL;
	cvm_sha256(p, len, out);
	return CVM_OK;
}

int cvm_audit_head_parse(const char *s, uint64_t *seq, uint8_t head[CVM_AUDIT_HASH_LEN])
{
	const char *colon;
	uint64_t v = 0;
	size_t digits;

	if (s == NULL || seq == NULL || head == NULL)
		return CVM_E_FORMAT;
	*seq = 0;
	memset(head, 0, CVM_AUDIT_HASH_LEN);
	colon = strchr(s, ':');
	if (colon == NULL)
		return CVM_E_FORMAT;
	digits = (size_t)(colon - s);
	if (digits == 0 || digits > 19 || (s[0] == '0' && digits > 1))
		return CVM_E_FORMAT;
	for (size_t i = 0; i < digits; i++) {
		if (s[i] < '0' || s[i] > '9')
			return CVM_E_FORMAT;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	/* 19 digits cannot overflow 64 bits; SQLite's seqs stop at 2^63-1 */
	if (v > (uint64_t)INT64_MAX)
		return CVM_E_FORMAT;
	if (strlen(colon + 1) != (size_t)2 * CVM_AUDIT_HASH_LEN ||
	    cvm_hex_decode_exact(colon + 1, (size_t)2 * CVM_AUDIT_HASH_LEN, head, CVM_AUDIT_HASH_LEN) !=
	        CVM_OK)
		return CVM_E_FORMAT;
	*seq = v;
	return CVM_OK;
}
