/* dstack's SignCert CSR (include/cvmkit/csr.h): decoding V1 and V2 with the
 * bounded reader, upgrading V1 to V2's fields, the signature check, and the
 * guest side's encoder. Layout and caps: csr.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/csr.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>

#include "core/core_lib.h"
#include "ratls_int.h"

/* ---- reading SCALE ------------------------------------------------------- */

struct sdec {
	const uint8_t *base; /* the CSR's first byte, for offsets in messages */
	char *err;
	size_t err_len;
};

static size_t at(const struct sdec *d, const struct cvm_rd *r)
{
	return (size_t)(r->p - d->base);
}

/* compact reads a SCALE compact integer in its one shortest form (what
 * parity-scale-codec accepts), at most 8 bytes of value. */
static int compact(struct sdec *d, struct cvm_rd *r, uint64_t *v, const char *what)
{
	size_t off = at(d, r);
	uint8_t b0;
	uint16_t v16;
	uint32_t v32;

	if (!cvm_rd_peek_u8(r, &b0))
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED, "at byte %zu: the CSR ends before %s",
		                 off, what);
	switch (b0 & 3u) {
	case 0:
		(void)cvm_rd_skip(r, 1);
		*v = b0 >> 2;
		return CVM_OK;
	case 1:
		if (!cvm_rd_u16le(r, &v16))
			break;
		*v = v16 >> 2;
		return *v < 64
		           ? RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                       "at byte %zu: %s is not in SCALE's shortest compact form", off, what)
		           : CVM_OK;
	case 2:
		if (!cvm_rd_u32le(r, &v32))
			break;
		*v = v32 >> 2;
		return *v < (1u << 14)
		           ? RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                       "at byte %zu: %s is not in SCALE's shortest compact form", off, what)
		           : CVM_OK;
	default: {
		size_t n = (size_t)(b0 >> 2) + 4;
		struct cvm_rd t = *r;
		const uint8_t *p;

		if (n > 8)
			return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
			                 "at byte %zu: %s is a %zu-byte compact integer (at most 8)", off,
			                 what, n);
		if (!cvm_rd_skip(&t, 1) || !cvm_rd_bytes(&t, &p, n))
			break;
		*r = t;
		*v = 0;
		for (size_t i = n; i > 0; i--)
			*v = (*v << 8) | p[i - 1];
		if (p[n - 1] == 0 || *v < ((uint64_t)1 << 30))
			return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
			                 "at byte %zu: %s is not in SCALE's shortest compact form", off,
			                 what);
		return CVM_OK;
	}
	}
	return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED, "at byte %zu: the CSR ends inside %s", off,
	                 what);
}

/* bytes reads a Vec<u8> of at most `max` bytes (a view into the input). */
static int bytes(struct sdec *d, struct cvm_rd *r, size_t max, struct cvm_rd *out, const char *what)
{
	size_t off = at(d, r);
	uint64_t n = 0;
	int rc = compact(d, r, &n, what);

	if (rc != CVM_OK)
		return rc;
	if (n > max)
		return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
		                 "at byte %zu: %s has %llu bytes (at most %zu)", off, what,
		                 (unsigned long long)n, max);
	if (!cvm_rd_sub(r, out, (size_t)n))
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
		                 "at byte %zu: %s announces %llu bytes, %zu are left", off, what,
		                 (unsigned long long)n, r->len);
	return CVM_OK;
}

/* text reads a String of at most `max` bytes into a new C string: UTF-8
 * without NUL (a Rust String may hold a NUL; a name in a certificate may
 * not). */
static int text(struct sdec *d, struct cvm_rd *r, size_t max, char **out, const char *what)
{
	struct cvm_rd s;
	size_t off;
	int rc;

	rc = bytes(d, r, max, &s, what);
	if (rc != CVM_OK)
		return rc;
	off = at(d, &s);
	if (!ratls_utf8_valid(s.p, s.len))
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "at byte %zu: %s is not UTF-8 text without NUL", off, what);
	*out = malloc(s.len + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	if (s.len != 0)
		memcpy(*out, s.p, s.len);
	(*out)[s.len] = '\0';
	return CVM_OK;
}

/* flag reads a SCALE bool or Option tag: exactly 0 or 1. */
static int flag(struct sdec *d, struct cvm_rd *r, bool *out, const char *what)
{
	size_t off = at(d, r);
	uint8_t b;

	if (!cvm_rd_u8(r, &b))
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED, "at byte %zu: the CSR ends before %s",
		                 off, what);
	if (b > 1)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "at byte %zu: %s is %u, and SCALE allows only 0 or 1 there", off, what, b);
	*out = b == 1;
	return CVM_OK;
}

static int opt_u64(struct sdec *d, struct cvm_rd *r, bool *has, uint64_t *v, const char *what)
{
	int rc = flag(d, r, has, what);

	if (rc == CVM_OK && *has && !cvm_rd_u64le(r, v))
		rc = RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED, "at byte %zu: the CSR ends inside %s",
		               at(d, r), what);
	return rc;
}

static void *copy_of(const struct cvm_rd *s)
{
	uint8_t *p = malloc(s->len ? s->len : 1);

	if (p != NULL && s->len != 0)
		memcpy(p, s->p, s->len);
	return p;
}

/* The DER of a P-256 SubjectPublicKeyInfo up to its point: SEQUENCE {
 * SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING { 0 unused bits,
 * 04 (uncompressed) ... } }, what ring, rcgen and OpenSSL write for every
 * P-256 key (91 bytes in all). */
static const uint8_t P256_SPKI_PREFIX[27] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
#define P256_SPKI_LEN (sizeof(P256_SPKI_PREFIX) + 64)

/* p256_point takes the x || y of a P-256 SPKI in exactly that DER. */
static bool p256_point(const uint8_t *p, size_t len, uint8_t xy[64])
{
	struct cvm_rd r;
	const uint8_t *prefix;

	cvm_rd_init(&r, p, len);
	if (len != P256_SPKI_LEN || !cvm_rd_bytes(&r, &prefix, sizeof(P256_SPKI_PREFIX)) ||
	    memcmp(prefix, P256_SPKI_PREFIX, sizeof(P256_SPKI_PREFIX)) != 0)
		return false;
	return cvm_rd_copy(&r, xy, 64);
}

/* der_scalar reads one DER INTEGER of an ECDSA-Sig-Value into 32
 * big-endian bytes: positive, minimal (a leading zero only before a set
 * high bit), non-zero, at most 32 bytes of value. */
static bool der_scalar(struct cvm_rd *r, uint8_t out[32])
{
	struct cvm_rd v;
	uint8_t b0, b1;

	if (!cvm_rd_asn1(r, &v, CVM_ASN1_INTEGER) || !cvm_rd_peek_u8(&v, &b0))
		return false;
	if ((b0 & 0x80) != 0)
		return false; /* negative */
	if (b0 == 0) {
		struct cvm_rd t = v;

		if (!cvm_rd_skip(&t, 1) || !cvm_rd_peek_u8(&t, &b1) || (b1 & 0x80) == 0)
			return false; /* zero, or a leading zero that is not needed */
		v = t;
	}
	if (v.len > 32)
		return false;
	memset(out, 0, 32);
	return cvm_rd_copy(&v, out + 32 - v.len, v.len);
}

/* sig_rs reads a DER ECDSA-Sig-Value (exactly `len` bytes) as r || s. */
static bool sig_rs(const uint8_t *sig, size_t len, uint8_t rs[64])
{
	struct cvm_rd r, seq;

	cvm_rd_init(&r, sig, len);
	return cvm_rd_asn1(&r, &seq, 0x30) && cvm_rd_empty(&r) && der_scalar(&seq, rs) &&
	       der_scalar(&seq, rs + 32) && cvm_rd_empty(&seq);
}

void cvm_csr_free(struct cvm_csr *c)
{
	if (c == NULL)
		return;
	free(c->org_name);
	free(c->subject);
	for (size_t i = 0; i < c->alt_name_count; i++)
		free(c->alt_names[i]);
	free(c->alt_names);
	free(c->pubkey_der);
	free(c->attestation);
	free(c->encoded);
	free(c);
}

/* config reads CertConfig (V1) or CertConfigV2 (V2). */
static int config(struct sdec *d, struct cvm_rd *r, unsigned version, struct cvm_csr *c)
{
	bool has_org = false;
	uint64_t n = 0;
	size_t off;
	int rc;

	rc = flag(d, r, &has_org, "the org_name option");
	if (rc == CVM_OK && has_org)
		rc = text(d, r, CVM_CSR_NAME_MAX, &c->org_name, "org_name");
	if (rc == CVM_OK)
		rc = text(d, r, CVM_CSR_NAME_MAX, &c->subject, "the subject");
	if (rc != CVM_OK)
		return rc;
	off = at(d, r);
	rc = compact(d, r, &n, "the count of subject_alt_names");
	if (rc != CVM_OK)
		return rc;
	if (n > CVM_CSR_ALT_NAMES_MAX)
		return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
		                 "at byte %zu: %llu subject alternative names (at most %u)", off,
		                 (unsigned long long)n, CVM_CSR_ALT_NAMES_MAX);
	if (n > r->len)
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
		                 "at byte %zu: %llu subject alternative names announced, %zu bytes are left",
		                 off, (unsigned long long)n, r->len);
	c->alt_names = calloc(n ? (size_t)n : 1, sizeof(*c->alt_names));
	if (c->alt_names == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < (size_t)n; i++) {
		rc = text(d, r, CVM_CSR_ALT_NAME_MAX, &c->alt_names[i], "a subject alternative name");
		if (rc != CVM_OK)
			return rc;
		c->alt_name_count = i + 1;
	}
	rc = flag(d, r, &c->usage_server_auth, "usage_server_auth");
	if (rc == CVM_OK)
		rc = flag(d, r, &c->usage_client_auth, "usage_client_auth");
	if (rc == CVM_OK)
		rc = flag(d, r, &c->ext_quote, "ext_quote");
	if (rc != CVM_OK || version == 1)
		return rc;
	rc = flag(d, r, &c->ext_app_info, "ext_app_info");
	if (rc == CVM_OK)
		rc = opt_u64(d, r, &c->has_not_before, &c->not_before, "not_before");
	if (rc == CVM_OK)
		rc = opt_u64(d, r, &c->has_not_after, &c->not_after, "not_after");
	return rc;
}

/* ---- V1: the quote and JSON log made into a V0 attestation --------------- */

/* struct up holds the copies the upgrade makes (the parser's views last
 * only until its next event). */
struct up {
	struct cvm_va_event *events;
	struct cvm_va_runtime_event *rt;
	size_t count, rt_count, cap;
	void **keep;
	size_t keep_count, keep_cap;
};

/* keep copies `n` bytes and a NUL after them. */
static const void *keep(struct up *u, const void *p, size_t n)
{
	uint8_t *q;

	if (u->keep_count == u->keep_cap) {
		size_t cap = u->keep_cap ? 2 * u->keep_cap : 64;
		void **k = calloc(cap, sizeof(*k));

		if (k == NULL)
			return NULL;
		if (u->keep_count != 0)
			memcpy(k, u->keep, u->keep_count * sizeof(*k));
		free(u->keep);
		u->keep = k;
		u->keep_cap = cap;
	}
	q = malloc(n + 1);
	if (q == NULL)
		return NULL;
	if (n != 0)
		memcpy(q, p, n);
	q[n] = 0;
	u->keep[u->keep_count++] = q;
	return q;
}

static void up_cleanup(struct up *u)
{
	for (size_t i = 0; i < u->keep_count; i++)
		free(u->keep[i]);
	free(u->keep);
	free(u->events);
	free(u->rt);
}

static bool up_grow(struct up *u)
{
	size_t cap = u->cap ? 2 * u->cap : 32;
	struct cvm_va_event *e;
	struct cvm_va_runtime_event *t;

	if (cap > RATLS_VA_EVENTS_MAX)
		cap = RATLS_VA_EVENTS_MAX;
	e = calloc(cap, sizeof(*e));
	t = calloc(cap, sizeof(*t));
	if (e == NULL || t == NULL) {
		free(e);
		free(t);
		return false;
	}
	if (u->count != 0)
		memcpy(e, u->events, u->count * sizeof(*e));
	if (u->rt_count != 0)
		memcpy(t, u->rt, u->rt_count * sizeof(*t));
	free(u->events);
	free(u->rt);
	u->events = e;
	u->rt = t;
	u->cap = cap;
	return true;
}

/* upgrade makes V2's attestation from a V1 CSR's quote and event log, as
 * dstack's Attestation::from_tdx_quote does. */
static int upgrade(struct sdec *d, const struct cvm_rd *quote, const struct cvm_rd *log, struct cvm_csr *c)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	struct cvm_quote q;
	struct cvm_va va;
	struct up u;
	bool has = true;
	size_t i = 0;
	int rc;

	memset(&u, 0, sizeof(u));
	if (cvm_quote_parse(quote->p, quote->len, &q) != CVM_OK || q.body_type == CVM_BODY_SGX)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "the V1 CSR's quote is not a TDX quote (dstack's upgrade to V2 needs "
		                 "one)");
	while (i < log->len &&
	       (log->p[i] == ' ' || log->p[i] == '\t' || log->p[i] == '\n' || log->p[i] == '\r'))
		i++;
	if (i == log->len || log->p[i] != '[')
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "the V1 CSR's event log is not a JSON array of dstack's events");
	rc = cvm_evl_parser_new_mem(log->p, log->len, CVM_EVL_DSTACK_JSON, &p);
	if (rc != CVM_OK)
		return rc;
	while (has) {
		struct cvm_va_event *e;

		rc = cvm_evl_parser_next(p, &ev, &has);
		if (rc != CVM_OK) {
			rc = RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT, "the V1 CSR's event log: %s",
			               cvm_evl_parser_err(p));
			goto out;
		}
		if (!has)
			break;
		if (u.count == RATLS_VA_EVENTS_MAX) {
			rc = RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
			               "the V1 CSR's event log has more than %u events", RATLS_VA_EVENTS_MAX);
			goto out;
		}
		if (u.count == u.cap && !up_grow(&u)) {
			rc = CVM_E_NOMEM;
			goto out;
		}
		e = &u.events[u.count];
		e->imr = ev.reg;
		e->event_type = ev.type;
		e->event = keep(&u, ev.name != NULL ? ev.name : "", ev.name != NULL ? strlen(ev.name) : 0);
		e->payload = keep(&u, ev.data.p, ev.data.len);
		e->payload_len = ev.data.len;
		if (ev.digest_count != 0) {
			e->digest = keep(&u, ev.digests[0].p, ev.digests[0].len);
			e->digest_len = ev.digests[0].len;
		} else {
			e->digest = keep(&u, "", 0);
		}
		if (e->event == NULL || e->payload == NULL || e->digest == NULL) {
			rc = CVM_E_NOMEM;
			goto out;
		}
		if (ev.type == CVM_EV_DSTACK_RUNTIME) {
			u.rt[u.rt_count].event = e->event;
			u.rt[u.rt_count].payload = e->payload;
			u.rt[u.rt_count].payload_len = e->payload_len;
			u.rt_count++;
		}
		u.count++;
	}
	memset(&va, 0, sizeof(va));
	va.version = 0;
	va.variant = 0;
	va.tee = CVM_RATLS_TEE_TDX;
	va.quote = quote->p;
	va.quote_len = quote->len;
	va.events = u.events;
	va.event_count = u.count;
	va.runtime_events = u.rt;
	va.runtime_event_count = u.rt_count;
	memcpy(va.report_data, q.body.td.report_data, sizeof(va.report_data));
	va.config = "";
	va.config_len = 0;
	rc = cvm_va_encode(&va, 0, &c->attestation, &c->attestation_len);
	if (rc != CVM_OK)
		rc = RATLS_ERR(d->err, d->err_len, rc,
		               "the V1 CSR's evidence cannot be made an attestation (%s)", cvm_strerror(rc));
out:
	cvm_evl_parser_free(p);
	up_cleanup(&u);
	return rc;
}

/* ---- decoding ------------------------------------------------------------ */

int cvm_csr_decode(unsigned api_version, const uint8_t *buf, size_t len, struct cvm_csr **out, char *err,
                   size_t err_len)
{
	struct sdec d = {buf, err, err_len};
	struct cvm_csr *c = NULL;
	struct cvm_rd r, s, quote, log;
	char *confirm = NULL;
	size_t off;
	int rc;

	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (out == NULL)
		return CVM_E_INVAL;
	*out = NULL;
	if (buf == NULL)
		return RATLS_ERR(err, err_len, CVM_E_INVAL, "no CSR");
	if (api_version != 1 && api_version != 2)
		return RATLS_ERR(err, err_len, CVM_E_INVAL,
		                 "api_version %u is not 1 or 2 (dstack's CertSigningRequestV1, V2)",
		                 api_version);
	if (len > CVM_CSR_MAX)
		return RATLS_ERR(err, err_len, CVM_E_TOO_LARGE, "the CSR has %zu bytes (at most %zu)", len,
		                 CVM_CSR_MAX);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	c->version = api_version;
	cvm_rd_init(&r, buf, len);

	/* the confirm string: anything else is not a CSR for a certificate */
	rc = text(&d, &r, 64, &confirm, "the confirm string");
	if (rc != CVM_OK)
		goto out;
	if (strcmp(confirm, CVM_CSR_CONFIRM) != 0) {
		rc = RATLS_ERR(err, err_len, CVM_E_FORMAT, "the confirm string is not \"%s\"",
		               CVM_CSR_CONFIRM);
		goto out;
	}

	/* the key's type is cvm_csr_check_signature's to check, as dstack's
	 * verify does: its golden encodings carry a 3-byte "key" */
	rc = bytes(&d, &r, CVM_CSR_PUBKEY_MAX, &s, "the public key");
	if (rc != CVM_OK)
		goto out;
	c->pubkey_der = copy_of(&s);
	c->pubkey_der_len = s.len;
	if (c->pubkey_der == NULL) {
		rc = CVM_E_NOMEM;
		goto out;
	}

	rc = config(&d, &r, api_version, c);
	if (rc != CVM_OK)
		goto out;

	if (api_version == 2) {
		struct cvm_va *va = NULL;

		/* the attestation is the rest, unprefixed */
		if (cvm_rd_empty(&r)) {
			rc = RATLS_ERR(err, err_len, CVM_E_TRUNCATED,
			               "at byte %zu: the CSR has no attestation", at(&d, &r));
			goto out;
		}
		char why[200] = "";

		off = at(&d, &r);
		rc = cvm_va_decode(r.p, r.len, &va, why, sizeof(why));
		cvm_va_free(va);
		if (rc != CVM_OK) {
			rc = RATLS_ERR(err, err_len, rc, "the attestation (from byte %zu): %s", off, why);
			goto out;
		}
		c->attestation = copy_of(&r);
		c->attestation_len = r.len;
		if (c->attestation == NULL) {
			rc = CVM_E_NOMEM;
			goto out;
		}
	} else {
		rc = bytes(&d, &r, CVM_CSR_V1_QUOTE_MAX, &quote, "the quote");
		if (rc == CVM_OK)
			rc = bytes(&d, &r, CVM_CSR_V1_EVENT_LOG_MAX, &log, "the event log");
		if (rc != CVM_OK)
			goto out;
		if (!cvm_rd_empty(&r)) {
			rc = RATLS_ERR(err, err_len, CVM_E_FORMAT, "at byte %zu: %zu bytes follow the V1 CSR",
			               at(&d, &r), r.len);
			goto out;
		}
		rc = upgrade(&d, &quote, &log, c);
		if (rc != CVM_OK)
			goto out;
	}

	cvm_rd_init(&s, buf, len);
	c->encoded = copy_of(&s);
	c->encoded_len = len;
	if (c->encoded == NULL) {
		rc = CVM_E_NOMEM;
		goto out;
	}
	*out = c;
	c = NULL;
	rc = CVM_OK;
out:
	free(confirm);
	cvm_csr_free(c);
	return rc;
}

/* ---- the signature ------------------------------------------------------- */

int cvm_csr_check_signature(const struct cvm_csr *c, const uint8_t *sig, size_t sig_len)
{
	struct cvm_p256_key *k = NULL;
	uint8_t xy[64], rs[64];
	int rc;

	if (c == NULL || sig == NULL || c->pubkey_der == NULL || c->encoded == NULL)
		return CVM_E_INVAL;
	if (!p256_point(c->pubkey_der, c->pubkey_der_len, xy))
		return CVM_E_UNSUPPORTED;
	if (sig_len > CVM_CSR_SIG_MAX || !sig_rs(sig, sig_len, rs))
		return CVM_E_SIGNATURE;
	rc = cvm_p256_key_new(xy, &k);
	if (rc == CVM_E_FORMAT)
		return CVM_E_UNSUPPORTED; /* not a point of the curve */
	if (rc != CVM_OK)
		return rc;
	rc = cvm_p256_verify(k, c->encoded, c->encoded_len, rs);
	cvm_p256_key_free(k);
	return rc == CVM_OK ? CVM_OK : CVM_E_SIGNATURE;
}

/* ---- making one (the guest side) ------------------------------------------ */

static bool text_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, max + 1);
	return n <= max && ratls_utf8_valid((const uint8_t *)s, n);
}

/* der_int appends a DER INTEGER of the 32-byte big-endian unsigned `v`. */
static void der_int(struct cvm_wr *w, const uint8_t v[32])
{
	size_t i = 0;
	bool pad;

	while (i < 31 && v[i] == 0)
		i++;
	pad = (v[i] & 0x80) != 0;
	cvm_wr_u8(w, 0x02);
	cvm_wr_u8(w, (uint8_t)(32 - i + (pad ? 1 : 0)));
	if (pad)
		cvm_wr_u8(w, 0);
	cvm_wr_bytes(w, v + i, 32 - i);
}

/* sig_der writes r || s as an ASN.1 DER ECDSA-Sig-Value (ring's
 * ECDSA_P256_SHA256_ASN1, what dstack sends). */
static int sig_der(const uint8_t rs[64], uint8_t **out, size_t *out_len)
{
	uint8_t body[80];
	struct cvm_wr b, w;
	int rc;

	cvm_wr_init_fixed(&b, body, sizeof(body));
	der_int(&b, rs);
	der_int(&b, rs + 32);
	if (b.err)
		return CVM_E_INTERNAL;
	cvm_wr_init(&w, CVM_CSR_SIG_MAX);
	cvm_wr_u8(&w, 0x30);
	cvm_wr_u8(&w, (uint8_t)b.len);
	cvm_wr_bytes(&w, body, b.len);
	rc = cvm_wr_finish(&w, out, out_len);
	cvm_wr_cleanup(&w);
	return rc;
}

int cvm_csr_make_signed(const struct cvm_csr_params *p, const struct cvm_p256_keypair *key,
                        const uint8_t *attestation, size_t attestation_len, uint8_t **csr, size_t *csr_len,
                        uint8_t **sig, size_t *sig_len)
{
	struct cvm_va *va = NULL;
	struct cvm_wr w;
	uint8_t *spki = NULL, *enc = NULL, rs[64];
	size_t spki_len = 0, enc_len = 0;
	int rc;

	if (csr == NULL || csr_len == NULL || sig == NULL || sig_len == NULL)
		return CVM_E_INVAL;
	*csr = NULL;
	*csr_len = 0;
	*sig = NULL;
	*sig_len = 0;
	if (p == NULL || key == NULL || attestation == NULL || attestation_len == 0 ||
	    attestation_len > CVM_VA_MAX)
		return CVM_E_INVAL;
	if ((p->org_name != NULL && !text_ok(p->org_name, CVM_CSR_NAME_MAX)) ||
	    !text_ok(p->subject, CVM_CSR_NAME_MAX) || p->alt_name_count > CVM_CSR_ALT_NAMES_MAX ||
	    (p->alt_name_count != 0 && p->alt_names == NULL))
		return CVM_E_INVAL;
	for (size_t i = 0; i < p->alt_name_count; i++)
		if (!text_ok(p->alt_names[i], CVM_CSR_ALT_NAME_MAX))
			return CVM_E_INVAL;
	if (p->has_not_before && p->has_not_after && p->not_before >= p->not_after)
		return CVM_E_INVAL;
	/* what the KMS will decode must decode here */
	rc = cvm_va_decode(attestation, attestation_len, &va, NULL, 0);
	cvm_va_free(va);
	if (rc != CVM_OK)
		return CVM_E_INVAL;
	rc = cvm_p256_keypair_spki(key, &spki, &spki_len);
	if (rc != CVM_OK)
		return rc;

	cvm_wr_init(&w, CVM_CSR_MAX);
	ratls_sc_put_bytes(&w, CVM_CSR_CONFIRM, strlen(CVM_CSR_CONFIRM));
	ratls_sc_put_bytes(&w, spki, spki_len);
	cvm_wr_u8(&w, p->org_name != NULL ? 1 : 0);
	if (p->org_name != NULL)
		ratls_sc_put_bytes(&w, p->org_name, strlen(p->org_name));
	ratls_sc_put_bytes(&w, p->subject, strlen(p->subject));
	ratls_sc_put_compact(&w, p->alt_name_count);
	for (size_t i = 0; i < p->alt_name_count; i++)
		ratls_sc_put_bytes(&w, p->alt_names[i], strlen(p->alt_names[i]));
	cvm_wr_u8(&w, p->usage_server_auth ? 1 : 0);
	cvm_wr_u8(&w, p->usage_client_auth ? 1 : 0);
	cvm_wr_u8(&w, p->ext_quote ? 1 : 0);
	cvm_wr_u8(&w, p->ext_app_info ? 1 : 0);
	cvm_wr_u8(&w, p->has_not_before ? 1 : 0);
	if (p->has_not_before)
		cvm_wr_u64le(&w, p->not_before);
	cvm_wr_u8(&w, p->has_not_after ? 1 : 0);
	if (p->has_not_after)
		cvm_wr_u64le(&w, p->not_after);
	cvm_wr_bytes(&w, attestation, attestation_len);
	rc = cvm_wr_finish(&w, &enc, &enc_len);
	cvm_wr_cleanup(&w);
	if (rc != CVM_OK)
		goto out;
	rc = cvm_p256_keypair_sign(key, enc, enc_len, rs);
	if (rc != CVM_OK)
		goto out;
	rc = sig_der(rs, sig, sig_len);
	if (rc != CVM_OK)
		goto out;
	*csr = enc;
	*csr_len = enc_len;
	enc = NULL;
out:
	free(enc);
	free(spki);
	return rc;
}
