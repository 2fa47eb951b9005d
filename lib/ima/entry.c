/* IMA measurement list entries: the binary decoder, the ascii decoder (which
 * rebuilds the template data the binary list would carry) and the template
 * field decoders both share. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/ima.h>

#include "ima_int.h"

/* The kernel's IMA_EVENT_NAME_LEN_MAX: the `ima` template's name field. */
#define IMA_OLD_NAME_MAX 255
/* Longest "<type>:<algo>" prefix of a d-ng / d-ngv2 field we accept. */
#define DIGEST_PREFIX_MAX 40

enum field_kind { F_D_NG, F_D_NGV2, F_N_NG, F_SIG, F_BUF, F_D_MODSIG, F_MODSIG };

struct tmpl {
	const char *name;
	size_t name_len;
	size_t nfields;
	enum cvm_ima_template id;
	enum field_kind f[5];
};

/* The templates of security/integrity/ima/ima_template.c whose fields we
 * decode ("ima" is handled apart: its binary form is not a field list). */
static const struct tmpl tmpls[] = {
    {"ima-ng", 6, 2, CVM_IMA_TEMPLATE_IMA_NG, {F_D_NG, F_N_NG}},
    {"ima-sig", 7, 3, CVM_IMA_TEMPLATE_IMA_SIG, {F_D_NG, F_N_NG, F_SIG}},
    {"ima-buf", 7, 3, CVM_IMA_TEMPLATE_IMA_BUF, {F_D_NG, F_N_NG, F_BUF}},
    {"ima-modsig", 10, 5, CVM_IMA_TEMPLATE_IMA_MODSIG, {F_D_NG, F_N_NG, F_SIG, F_D_MODSIG, F_MODSIG}},
    {"ima-ngv2", 8, 2, CVM_IMA_TEMPLATE_IMA_NGV2, {F_D_NGV2, F_N_NG}},
    {"ima-sigv2", 9, 3, CVM_IMA_TEMPLATE_IMA_SIGV2, {F_D_NGV2, F_N_NG, F_SIG}},
};
#define TMPL_COUNT (sizeof(tmpls) / sizeof(tmpls[0]))

static const char name_ima[] = "ima";
static const char algo_sha1[] = "sha1";

const char *cvm_ima_template_name(enum cvm_ima_template t)
{
	if (t == CVM_IMA_TEMPLATE_IMA)
		return name_ima;
	for (size_t i = 0; i < TMPL_COUNT; i++) {
		if (tmpls[i].id == t)
			return tmpls[i].name;
	}
	return "other";
}

void ima_why(char *why, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, IMA_WHY_MAX, fmt, ap);
	va_end(ap);
}

void ima_sanitize(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t j = 0;

	if (cap == 0)
		return;
	for (size_t i = 0; i < n && j + 1 < cap; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f)
			out[j++] = (char)p[i];
		else
			out[j++] = '?';
	}
	out[j] = '\0';
}

static bool rd_eqn(const struct cvm_rd *r, const char *s, size_t n)
{
	return r->len == n && (n == 0 || memcmp(r->p, s, n) == 0);
}

static bool rd_eq(const struct cvm_rd *r, const char *s)
{
	return rd_eqn(r, s, strlen(s));
}

/* find_tmpl returns the template called `name`, or NULL. */
static const struct tmpl *find_tmpl(const struct cvm_rd *name)
{
	for (size_t i = 0; i < TMPL_COUNT; i++) {
		if (rd_eqn(name, tmpls[i].name, tmpls[i].name_len))
			return &tmpls[i];
	}
	return NULL;
}

/* rd_u32 reads a u32 in the list's byte order: one reader call per field
 * (this runs several times per entry of lists with millions of them). */
static bool rd_u32(struct cvm_rd *r, bool be, uint32_t *v)
{
	const uint8_t *p;

	if (!cvm_rd_bytes(r, &p, 4))
		return false;
	if (be)
		*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	else
		*v = (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
	return true;
}

/* is_zero20 is true for an all-zero 20-byte template digest (a violation). */
static bool is_zero20(const uint8_t p[20])
{
	static const uint8_t zero[20];

	return memcmp(p, zero, sizeof(zero)) == 0;
}

/* index_of returns the first index of byte `c` in `r`, or r->len. */
static size_t index_of(const struct cvm_rd *r, uint8_t c)
{
	for (size_t i = 0; i < r->len; i++) {
		if (r->p[i] == c)
			return i;
	}
	return r->len;
}

/* The kernel's names (crypto/hash_info.c hash_algo_name) of the algorithms
 * cvmkit hashes, and "sm3_256" as some tools write it. Exact, lower case: an
 * entry is decoded on every replay, so no case folding per entry. */
static const struct {
	const char *name;
	size_t len;
	size_t digest_len;
	uint16_t alg;
} algo_names[] = {
    {"sha256", 6, 32, CVM_DIGEST_SHA256}, {"sha1", 4, 20, CVM_DIGEST_SHA1},
    {"sha384", 6, 48, CVM_DIGEST_SHA384}, {"sha512", 6, 64, CVM_DIGEST_SHA512},
    {"sm3", 3, 32, CVM_DIGEST_SM3_256},   {"sm3_256", 7, 32, CVM_DIGEST_SM3_256},
};

static uint16_t algo_by_name(const struct cvm_rd *a)
{
	for (size_t i = 0; i < sizeof(algo_names) / sizeof(algo_names[0]); i++) {
		if (rd_eqn(a, algo_names[i].name, algo_names[i].len))
			return algo_names[i].alg;
	}
	return 0;
}

static bool name_char_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* decode_digest decodes a d-ng field ("<algo>:\0<digest>"), a d-ngv2 field
 * ("<type>:<algo>:\0<digest>") or an empty d-modsig field. */
static int decode_digest(struct cvm_rd f, bool v2, bool may_be_empty, uint16_t *alg, struct cvm_rd *algo,
                         struct cvm_rd *type, struct cvm_rd *digest, const char *what, char *why)
{
	struct cvm_rd prefix, a;
	uint16_t known;
	size_t nul, colon, want;
	uint8_t c;

	*alg = 0;
	if (f.len == 0 && may_be_empty)
		return CVM_OK;
	/* Fast path, taken by nearly every entry: "<known algorithm>:\0" and a
	 * digest of its length. Anything else takes the general path below. */
	for (size_t i = 0; !v2 && i < sizeof(algo_names) / sizeof(algo_names[0]); i++) {
		size_t n = algo_names[i].len, dl = algo_names[i].digest_len;

		if (f.len == n + 2 + dl && memcmp(f.p, algo_names[i].name, n) == 0 && f.p[n] == ':' &&
		    f.p[n + 1] == 0) {
			*alg = algo_names[i].alg;
			if (!cvm_rd_sub(&f, algo, n) || !cvm_rd_skip(&f, 2))
				return CVM_E_INTERNAL;
			*digest = f;
			return CVM_OK;
		}
	}
	nul = index_of(&f, 0);
	if (nul == f.len || nul < 2 || nul > DIGEST_PREFIX_MAX || f.p[nul - 1] != ':') {
		ima_why(why, "%s field does not start with '<algorithm>:' and a NUL byte", what);
		return CVM_E_FORMAT;
	}
	if (!cvm_rd_sub(&f, &prefix, nul - 1) || !cvm_rd_skip(&f, 2)) /* ":\0" */
		return CVM_E_INTERNAL;
	a = prefix;
	if (v2) {
		colon = index_of(&prefix, ':');
		if (colon == prefix.len || colon == 0) {
			ima_why(why, "%s field has no '<type>:' before its algorithm", what);
			return CVM_E_FORMAT;
		}
		if (!cvm_rd_sub(&a, type, colon) || !cvm_rd_skip(&a, 1))
			return CVM_E_INTERNAL;
		if (!rd_eq(type, "ima") && !rd_eq(type, "verity")) {
			ima_why(why, "%s digest type is neither 'ima' nor 'verity'", what);
			return CVM_E_FORMAT;
		}
	}
	if (a.len == 0) {
		ima_why(why, "%s field has an empty algorithm name", what);
		return CVM_E_FORMAT;
	}
	for (size_t i = 0; i < a.len; i++) {
		c = a.p[i];
		if (!name_char_ok(c)) {
			ima_why(why, "%s algorithm name holds byte 0x%02x", what, c);
			return CVM_E_FORMAT;
		}
	}
	if (f.len == 0 || f.len > CVM_IMA_FILE_DIGEST_MAX) {
		ima_why(why, "%s digest is %zu bytes (1 to %d expected)", what, f.len,
		        CVM_IMA_FILE_DIGEST_MAX);
		return CVM_E_FORMAT;
	}
	known = algo_by_name(&a);
	if (known != 0) {
		want = cvm_digest_len((uint16_t)known);
		if (want != f.len) {
			ima_why(why, "%s digest is %zu bytes, %.*s has %zu", what, f.len, (int)a.len,
			        (const char *)a.p, want);
			return CVM_E_FORMAT;
		}
		*alg = known;
	}
	*algo = a;
	*digest = f;
	return CVM_OK;
}

/* decode_name decodes an n-ng field: the name and its terminating NUL. */
static int decode_name(struct cvm_rd f, struct cvm_rd *name, char *why)
{
	if (f.len > CVM_IMA_EVENT_NAME_MAX) {
		ima_why(why, "event name field is %zu bytes (cap %d)", f.len, CVM_IMA_EVENT_NAME_MAX);
		return CVM_E_TOO_LARGE;
	}
	if (f.len == 0 || f.p[f.len - 1] != 0) {
		ima_why(why, "event name field does not end with a NUL byte");
		return CVM_E_FORMAT;
	}
	if (!cvm_rd_sub(&f, name, f.len - 1))
		return CVM_E_INTERNAL;
	if (cvm_rd_has_nul(name)) {
		ima_why(why, "event name holds a NUL byte before its end");
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

static int decode_blob(struct cvm_rd f, struct cvm_rd *out, const char *what, char *why)
{
	if (f.len > CVM_IMA_EVENT_DATA_MAX) {
		ima_why(why, "%s field is %zu bytes (cap %d)", what, f.len, CVM_IMA_EVENT_DATA_MAX);
		return CVM_E_TOO_LARGE;
	}
	*out = f;
	return CVM_OK;
}

/* decode_fields splits template data into its u32-length fields and, for a
 * known template, decodes them into `e`. */
static int decode_fields(const struct tmpl *t, struct cvm_rd data, bool be, struct cvm_ima_entry *e,
                         char *why)
{
	struct cvm_rd f[CVM_IMA_FIELDS_MAX];
	size_t n = 0;
	uint32_t flen;
	int r = CVM_OK;

	while (!cvm_rd_empty(&data)) {
		if (n == CVM_IMA_FIELDS_MAX) {
			ima_why(why, "template data holds more than %d fields", CVM_IMA_FIELDS_MAX);
			return CVM_E_TOO_LARGE;
		}
		if (!rd_u32(&data, be, &flen)) {
			ima_why(why, "template data ends inside the length of field %zu", n + 1);
			return CVM_E_FORMAT;
		}
		if (!cvm_rd_sub(&data, &f[n], flen)) {
			ima_why(why, "field %zu announces %u bytes, %zu remain in the template data", n + 1,
			        flen, data.len);
			return CVM_E_FORMAT;
		}
		n++;
	}
	e->field_count = n;
	if (t == NULL)
		return CVM_OK;
	if (n != t->nfields) {
		ima_why(why, "template %s has %zu fields, the entry holds %zu", t->name, t->nfields, n);
		return CVM_E_FORMAT;
	}
	for (size_t i = 0; i < n && r == CVM_OK; i++) {
		switch (t->f[i]) {
		case F_D_NG:
		case F_D_NGV2:
			r = decode_digest(f[i], t->f[i] == F_D_NGV2, false, &e->digest_alg, &e->digest_algo,
			                  &e->digest_type, &e->digest, "digest", why);
			break;
		case F_N_NG:
			r = decode_name(f[i], &e->name, why);
			break;
		case F_SIG:
			r = decode_blob(f[i], &e->sig, "sig", why);
			break;
		case F_BUF:
			r = decode_blob(f[i], &e->buf, "buf", why);
			break;
		case F_D_MODSIG: {
			struct cvm_rd algo, type;

			r = decode_digest(f[i], false, true, &e->modsig_digest_alg, &algo, &type,
			                  &e->modsig_digest, "d-modsig", why);
			break;
		}
		case F_MODSIG:
			r = decode_blob(f[i], &e->modsig, "modsig", why);
			break;
		}
	}
	return r;
}

/* decode_ima decodes the `ima` template's binary form: a 20-byte SHA-1
 * digest, then a u32-length name without NUL. */
static int decode_ima(struct cvm_rd *r, bool be, struct cvm_ima_entry *e, char *why)
{
	struct cvm_rd start = *r, d, name;
	uint32_t name_len;

	if (!cvm_rd_sub(r, &d, 20) || !rd_u32(r, be, &name_len))
		return CVM_E_TRUNCATED;
	if (name_len > IMA_OLD_NAME_MAX) {
		ima_why(why, "an 'ima' template name is at most %d bytes, this one %u", IMA_OLD_NAME_MAX,
		        name_len);
		return CVM_E_FORMAT;
	}
	if (!cvm_rd_sub(r, &name, name_len))
		return CVM_E_TRUNCATED;
	if (cvm_rd_has_nul(&name)) {
		ima_why(why, "event name holds a NUL byte");
		return CVM_E_FORMAT;
	}
	if (!cvm_rd_sub(&start, &e->template_data, start.len - r->len))
		return CVM_E_INTERNAL;
	e->field_count = 2;
	e->digest_alg = CVM_DIGEST_SHA1;
	cvm_rd_init(&e->digest_algo, algo_sha1, sizeof(algo_sha1) - 1);
	e->digest = d;
	e->name = name;
	return CVM_OK;
}

/* entry_reset empties `e`: every view {NULL, 0}, as cvm_rd_init(NULL, 0)
 * makes it. */
static void entry_reset(struct cvm_ima_entry *e)
{
	memset(e, 0, sizeof(*e));
}

int ima_parse_binary(struct cvm_rd *in, bool big_endian, struct cvm_ima_entry *e, char *why)
{
	struct cvm_rd r = *in, tname, tdata;
	const struct tmpl *t;
	uint32_t pcr, name_len, data_len;
	int rc;

	entry_reset(e);
	if (!rd_u32(&r, big_endian, &pcr))
		return CVM_E_TRUNCATED;
	if (pcr >= CVM_IMA_PCR_COUNT) {
		ima_why(why, "PCR index %u (at most %d)", pcr, CVM_IMA_PCR_COUNT - 1);
		return CVM_E_FORMAT;
	}
	if (!cvm_rd_copy(&r, e->template_digest, sizeof(e->template_digest)) ||
	    !rd_u32(&r, big_endian, &name_len))
		return CVM_E_TRUNCATED;
	if (name_len > CVM_IMA_TEMPLATE_NAME_MAX) {
		ima_why(why, "template name length %u exceeds the cap of %d bytes", name_len,
		        CVM_IMA_TEMPLATE_NAME_MAX);
		return CVM_E_TOO_LARGE;
	}
	if (!cvm_rd_sub(&r, &tname, name_len))
		return CVM_E_TRUNCATED;
	t = find_tmpl(&tname);
	for (size_t i = 0; t == NULL && i < tname.len; i++) {
		if (tname.p[i] < 0x21 || tname.p[i] > 0x7e) {
			ima_why(why, "template name holds byte 0x%02x", tname.p[i]);
			return CVM_E_FORMAT;
		}
	}
	e->pcr = pcr;
	e->template_name = tname;
	e->is_violation = is_zero20(e->template_digest);
	if (rd_eqn(&tname, name_ima, sizeof(name_ima) - 1)) {
		e->template_id = CVM_IMA_TEMPLATE_IMA;
		rc = decode_ima(&r, big_endian, e, why);
		if (rc != CVM_OK)
			return rc;
		*in = r;
		return CVM_OK;
	}
	if (!rd_u32(&r, big_endian, &data_len))
		return CVM_E_TRUNCATED;
	if (data_len > CVM_IMA_TEMPLATE_DATA_MAX) {
		ima_why(why, "template data length %u exceeds the cap of %d bytes", data_len,
		        CVM_IMA_TEMPLATE_DATA_MAX);
		return CVM_E_TOO_LARGE;
	}
	if (!cvm_rd_sub(&r, &tdata, data_len))
		return CVM_E_TRUNCATED;
	e->template_id = t != NULL ? t->id : CVM_IMA_TEMPLATE_OTHER;
	e->template_data = tdata;
	rc = decode_fields(t, tdata, big_endian, e, why);
	if (rc != CVM_OK)
		return rc;
	*in = r;
	return CVM_OK;
}

int cvm_ima_entry_parse_binary(struct cvm_rd *in, bool big_endian, struct cvm_ima_entry *e)
{
	return ima_parse_binary(in, big_endian, e, NULL);
}

/* ---- ascii ---------------------------------------------------------------- */

/* The ascii decoder rebuilds template data into our own memory (not input)
 * with a fixed-size writer (struct cvm_wr over the caller's scratch buffer). */

/* wr_hex decodes the hex text `h` into the buffer. */
static int wr_hex(struct cvm_wr *s, const struct cvm_rd *h, const char *what, char *why)
{
	uint8_t *q;
	size_t n;
	int r;

	if (h->len % 2 != 0) {
		ima_why(why, "%s field has an odd number of hex digits", what);
		return CVM_E_FORMAT;
	}
	q = cvm_wr_reserve(s, h->len / 2);
	if (q == NULL)
		return CVM_E_TOO_LARGE;
	r = cvm_hex_decode((const char *)h->p, h->len, q, h->len / 2, &n);
	if (r != CVM_OK) {
		ima_why(why, "%s field is not hex", what);
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

/* rd_token takes the bytes up to the next space (consumed, not returned);
 * false when there is no space. */
static bool rd_token(struct cvm_rd *r, struct cvm_rd *tok)
{
	size_t sp = index_of(r, ' ');

	if (sp == r->len)
		return false;
	return cvm_rd_sub(r, tok, sp) && cvm_rd_skip(r, 1);
}

/* rd_rsplit takes the bytes after the last space of `r` into `last` and
 * shortens `r` to what precedes that space; false when there is no space. */
static bool rd_rsplit(struct cvm_rd *r, struct cvm_rd *last)
{
	struct cvm_rd head = *r;
	size_t i = r->len;

	while (i > 0 && r->p[i - 1] != ' ')
		i--;
	if (i == 0)
		return false;
	if (!cvm_rd_sub(&head, r, i - 1) || !cvm_rd_skip(&head, 1))
		return false;
	*last = head;
	return true;
}

static bool is_hex_text(const struct cvm_rd *h)
{
	for (size_t i = 0; i < h->len; i++) {
		uint8_t c = h->p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return h->len % 2 == 0;
}

/* ascii_digest rebuilds a d-ng / d-ngv2 / d-modsig field from
 * "<prefix>:<hex>" (empty text: an empty field). */
static int ascii_digest(struct cvm_wr *s, const struct cvm_rd *tok, const char *what, char *why)
{
	struct cvm_rd t = *tok, prefix, hex;
	size_t colon = t.len, len_at;
	uint8_t *lenp;
	int r;

	if (t.len == 0) {
		cvm_wr_u32le(s, 0);
		return CVM_OK;
	}
	while (colon > 0 && t.p[colon - 1] != ':')
		colon--;
	if (colon < 2 || colon > DIGEST_PREFIX_MAX) {
		ima_why(why, "%s field is not '<algorithm>:<hex digest>'", what);
		return CVM_E_FORMAT;
	}
	if (!cvm_rd_sub(&t, &prefix, colon) || !cvm_rd_sub(&t, &hex, t.len))
		return CVM_E_INTERNAL;
	if (hex.len == 0 || hex.len > (size_t)2 * CVM_IMA_FILE_DIGEST_MAX) {
		ima_why(why, "%s field has %zu hex digits (2 to %zu expected)", what, hex.len,
		        (size_t)2 * CVM_IMA_FILE_DIGEST_MAX);
		return CVM_E_FORMAT;
	}
	/* length, then "<prefix>:" (colon included), NUL, digest bytes */
	len_at = s->len;
	cvm_wr_u32le(s, 0);
	cvm_wr_bytes(s, prefix.p, prefix.len);
	cvm_wr_bytes(s, (const uint8_t *)"", 1);
	r = wr_hex(s, &hex, what, why);
	if (r != CVM_OK || s->err)
		return r != CVM_OK ? r : CVM_E_TOO_LARGE;
	lenp = s->buf + len_at;
	{
		size_t flen = s->len - len_at - 4;

		lenp[0] = (uint8_t)flen;
		lenp[1] = (uint8_t)(flen >> 8);
		lenp[2] = (uint8_t)(flen >> 16);
		lenp[3] = (uint8_t)(flen >> 24);
	}
	return CVM_OK;
}

static int ascii_blob(struct cvm_wr *s, const struct cvm_rd *hex, const char *what, char *why)
{
	if (hex->len / 2 > CVM_IMA_EVENT_DATA_MAX) {
		ima_why(why, "%s field is %zu bytes (cap %d)", what, hex->len / 2, CVM_IMA_EVENT_DATA_MAX);
		return CVM_E_TOO_LARGE;
	}
	cvm_wr_u32le(s, (uint32_t)(hex->len / 2));
	return wr_hex(s, hex, what, why);
}

static int ascii_name(struct cvm_wr *s, const struct cvm_rd *name, char *why)
{
	if (name->len + 1 > CVM_IMA_EVENT_NAME_MAX) {
		ima_why(why, "event name is %zu bytes (cap %d with its NUL)", name->len,
		        CVM_IMA_EVENT_NAME_MAX);
		return CVM_E_TOO_LARGE;
	}
	cvm_wr_u32le(s, (uint32_t)(name->len + 1));
	cvm_wr_bytes(s, name->p, name->len);
	cvm_wr_bytes(s, (const uint8_t *)"", 1);
	return CVM_OK;
}

/* ascii_fields rebuilds a field-list template from the text after the
 * template name: the first token is the digest, the last `t->nfields - 2`
 * tokens are the fields after the name, and the name is what is between
 * (it may hold spaces). */
static int ascii_fields(const struct tmpl *t, struct cvm_rd rest, struct cvm_wr *s, char *why)
{
	struct cvm_rd dig, name, tail[3];
	size_t ntail = t->nfields - 2;
	int r;

	if (!rd_token(&rest, &dig)) {
		ima_why(why, "no event name after the digest field");
		return CVM_E_FORMAT;
	}
	for (size_t i = 0; i < ntail; i++) {
		struct cvm_rd keep = rest;

		if (!rd_rsplit(&rest, &tail[ntail - 1 - i]) ||
		    (t->f[2 + ntail - 1 - i] != F_D_MODSIG && !is_hex_text(&tail[ntail - 1 - i]))) {
			/* Lists copied by hand may lose the trailing space that an
			 * empty last field leaves: a lone sig field may be absent. */
			if (ntail == 1 && t->f[2] == F_SIG) {
				rest = keep;
				cvm_rd_init(&tail[0], NULL, 0);
				break;
			}
			ima_why(why, "template %s needs %zu hex fields after the event name", t->name, ntail);
			return CVM_E_FORMAT;
		}
	}
	name = rest;
	r = ascii_digest(s, &dig, "digest", why);
	if (r == CVM_OK)
		r = ascii_name(s, &name, why);
	for (size_t i = 0; i < ntail && r == CVM_OK; i++) {
		if (t->f[2 + i] == F_D_MODSIG)
			r = ascii_digest(s, &tail[i], "d-modsig", why);
		else
			r = ascii_blob(s, &tail[i],
			               t->f[2 + i] == F_SIG   ? "sig"
			               : t->f[2 + i] == F_BUF ? "buf"
			                                      : "modsig",
			               why);
	}
	if (r == CVM_OK && s->err) {
		ima_why(why, "template data exceeds %zu bytes", s->cap);
		r = CVM_E_TOO_LARGE;
	}
	return r;
}

/* ascii_ima rebuilds the `ima` template: "<sha1 hex> <name>" becomes the
 * binary form (digest, u32le name length, name). */
static int ascii_ima(struct cvm_rd rest, struct cvm_wr *s, char *why)
{
	struct cvm_rd dig;
	int r;

	if (!rd_token(&rest, &dig) || dig.len != 40) {
		ima_why(why, "an 'ima' entry needs a 40-digit SHA-1 file digest and a name");
		return CVM_E_FORMAT;
	}
	r = wr_hex(s, &dig, "digest", why);
	if (r != CVM_OK)
		return r;
	if (rest.len > IMA_OLD_NAME_MAX) {
		ima_why(why, "an 'ima' template name is at most %d bytes, this one %zu", IMA_OLD_NAME_MAX,
		        rest.len);
		return CVM_E_FORMAT;
	}
	cvm_wr_u32le(s, (uint32_t)rest.len);
	cvm_wr_bytes(s, rest.p, rest.len);
	return s->err ? CVM_E_TOO_LARGE : CVM_OK;
}

int ima_parse_ascii(const char *line, size_t line_len, uint8_t *scratch, size_t scratch_len,
                    struct cvm_ima_entry *e, char *why)
{
	struct cvm_rd r, pcr_tok, dig_tok, tname, data;
	const struct tmpl *t = NULL;
	struct cvm_wr s;
	uint32_t pcr = 0;
	uint8_t digest[20];
	bool is_ima;
	int rc;

	entry_reset(e);
	cvm_wr_init_fixed(&s, scratch, scratch_len);
	cvm_rd_init(&r, line, line_len);
	if (line_len != 0 && line[line_len - 1] == '\r') {
		ima_why(why, "the line ends with a carriage return: convert CRLF line ends to LF");
		return CVM_E_FORMAT;
	}
	if (!rd_token(&r, &pcr_tok) || pcr_tok.len == 0 || pcr_tok.len > 2) {
		ima_why(why, "a line starts with a PCR index (1 or 2 digits) and a space");
		return CVM_E_FORMAT;
	}
	for (size_t i = 0; i < pcr_tok.len; i++) {
		if (pcr_tok.p[i] < '0' || pcr_tok.p[i] > '9') {
			ima_why(why, "the PCR index is not a decimal number");
			return CVM_E_FORMAT;
		}
		pcr = pcr * 10 + (uint32_t)(pcr_tok.p[i] - '0');
	}
	if (pcr >= CVM_IMA_PCR_COUNT) {
		ima_why(why, "PCR index %u (at most %d)", pcr, CVM_IMA_PCR_COUNT - 1);
		return CVM_E_FORMAT;
	}
	if (!rd_token(&r, &dig_tok)) {
		ima_why(why, "no template digest after the PCR index");
		return CVM_E_FORMAT;
	}
	if (dig_tok.len != 2 * sizeof(digest) ||
	    cvm_hex_decode_exact((const char *)dig_tok.p, dig_tok.len, digest, sizeof(digest)) != CVM_OK) {
		ima_why(why,
		        "the template digest must be 40 hex digits (SHA-1, as the kernel logs it), got %zu "
		        "characters",
		        dig_tok.len);
		return CVM_E_FORMAT;
	}
	if (!rd_token(&r, &tname) || tname.len == 0 || tname.len > CVM_IMA_TEMPLATE_NAME_MAX) {
		ima_why(why, "no template name followed by its fields");
		return CVM_E_FORMAT;
	}
	is_ima = rd_eqn(&tname, name_ima, sizeof(name_ima) - 1);
	if (!is_ima) {
		t = find_tmpl(&tname);
		if (t == NULL) {
			char n[CVM_IMA_TEMPLATE_NAME_MAX + 1];

			ima_sanitize(tname.p, tname.len, n, sizeof(n));
			ima_why(why,
			        "template '%s' cannot be rebuilt from the ascii list (known: ima, ima-ng, "
			        "ima-sig, ima-buf, ima-modsig, ima-ngv2, ima-sigv2)",
			        n);
			return CVM_E_UNSUPPORTED;
		}
	}
	rc = is_ima ? ascii_ima(r, &s, why) : ascii_fields(t, r, &s, why);
	if (rc != CVM_OK)
		return rc;
	cvm_rd_init(&data, scratch, s.len);
	e->pcr = pcr;
	memcpy(e->template_digest, digest, sizeof(digest));
	e->is_violation = is_zero20(digest);
	e->template_name = tname;
	if (is_ima) {
		e->template_id = CVM_IMA_TEMPLATE_IMA;
		rc = decode_ima(&data, false, e, why);
		if (rc == CVM_OK && !cvm_rd_empty(&data))
			rc = CVM_E_INTERNAL;
		return rc;
	}
	e->template_id = t->id;
	e->template_data = data;
	return decode_fields(t, data, false, e, why);
}

int cvm_ima_entry_parse_ascii(const char *line, size_t line_len, uint8_t *scratch, size_t scratch_len,
                              struct cvm_ima_entry *e)
{
	return ima_parse_ascii(line, line_len, scratch, scratch_len, e, NULL);
}
