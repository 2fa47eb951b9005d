/* dstack's VersionedAttestation (spec dstack.md §5.6): V0 in SCALE, decoded
 * by hand with the bounded reader, and V1 in MessagePack (rmp_serde's
 * to_vec_named shape), read with msgpack-c after a bounded pre-scan of the
 * whole input with cvm_rd: msgpack-c allocates what a container's header
 * announces before it reads the elements, so no header reaches it before
 * the pre-scan has checked that the bytes for every element exist, that
 * the nesting stays shallow and that the objects stay few. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/err.h>
#include <cvmkit/ratls.h>
#include <cvmkit/secret.h>

#include "core/core_lib.h"
#include "ratls_int.h"

/* The most msgpack objects a V1 attestation may hold (a TDX quote as an
 * array of integers is about 5,000; each object costs msgpack-c 24 bytes). */
#define MP_OBJECTS_MAX ((size_t)1 << 20)

/* struct va_own is a decoded attestation with the memory it owns: every
 * byte string and text is copied into one arena (text NUL-terminated). */
struct va_own {
	struct cvm_va va; /* first: cvm_va_free takes the struct cvm_va */
	uint8_t *arena;
	size_t arena_cap, arena_len;
	const uint8_t **chain;
	size_t *chain_len;
};

struct dec {
	struct va_own *o;
	size_t total; /* the input's length, for offsets */
	char *err;
	size_t err_len;
};

static size_t at(const struct dec *d, const struct cvm_rd *r)
{
	return d->total - r->len;
}

/* arena_put copies `n` bytes (and a NUL when `nul`) into the arena, which was
 * sized for the worst case of the input (every byte plus one NUL per length
 * prefix), so it never runs out on input the decoder accepted so far. */
static uint8_t *arena_put(struct va_own *o, const uint8_t *p, size_t n, bool nul)
{
	uint8_t *dst;
	size_t need = n + (nul ? 1 : 0);

	if (o->arena_cap - o->arena_len < need)
		return NULL;
	dst = o->arena + o->arena_len;
	if (n != 0)
		memcpy(dst, p, n);
	if (nul)
		dst[n] = 0;
	o->arena_len += need;
	return dst;
}

/* ratls_utf8_valid is true when `n` bytes are well-formed UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF) without NUL: Rust's
 * String is UTF-8 and our callers want C strings. */
bool ratls_utf8_valid(const uint8_t *p, size_t n)
{
	struct cvm_rd r;
	uint32_t cp;

	cvm_rd_init(&r, p, n);
	while (!cvm_rd_empty(&r)) {
		if (!cvm_rd_utf8(&r, &cp) || cp == 0)
			return false;
	}
	return true;
}

static struct va_own *own_new(size_t in_len)
{
	struct va_own *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	o->arena_cap = 2 * in_len + 1;
	o->arena = malloc(o->arena_cap);
	if (o->arena == NULL) {
		free(o);
		return NULL;
	}
	/* "" for absent texts */
	o->arena[0] = 0;
	o->arena_len = 1;
	o->va.config = (const char *)o->arena;
	return o;
}

void cvm_va_free(struct cvm_va *va)
{
	struct va_own *o = (struct va_own *)va;

	if (o == NULL)
		return;
	free(o->va.events);
	free(o->va.runtime_events);
	free(o->chain);
	free(o->chain_len);
	free(o->arena);
	free(o);
}

/* ---- V0: SCALE ---------------------------------------------------------- */

/* sc_compact reads a SCALE compact integer in its one canonical (shortest)
 * form, as parity-scale-codec requires. */
static int sc_compact(struct dec *d, struct cvm_rd *r, uint64_t *v, const char *what)
{
	uint8_t b0;
	uint16_t v16;
	uint32_t v32;
	size_t off = at(d, r);

	if (!cvm_rd_peek_u8(r, &b0))
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED, "at byte %zu: the input ends before %s",
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
		if (*v < 64)
			goto noncanon;
		return CVM_OK;
	case 2:
		if (!cvm_rd_u32le(r, &v32))
			break;
		*v = v32 >> 2;
		if (*v < (1u << 14))
			goto noncanon;
		return CVM_OK;
	default: {
		size_t n = (size_t)(b0 >> 2) + 4;
		struct cvm_rd t = *r;
		const uint8_t *p;

		if (n > 8)
			return RATLS_ERR(
			    d->err, d->err_len, CVM_E_TOO_LARGE,
			    "at byte %zu: %s is a %zu-byte compact integer (at most 8 are handled)", off,
			    what, n);
		if (!cvm_rd_skip(&t, 1) || !cvm_rd_bytes(&t, &p, n))
			break;
		*r = t;
		*v = 0;
		for (size_t i = n; i > 0; i--)
			*v = (*v << 8) | p[i - 1];
		if (p[n - 1] == 0 || *v < ((uint64_t)1 << 30))
			goto noncanon;
		return CVM_OK;
	}
	}
	return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED, "at byte %zu: the input ends inside %s", off,
	                 what);
noncanon:
	return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
	                 "at byte %zu: %s is not in SCALE's shortest compact form", off, what);
}

/* sc_len reads a compact length of elements of at least `min_elem` bytes
 * each, and checks that they fit in what remains. */
static int sc_len(struct dec *d, struct cvm_rd *r, size_t min_elem, size_t *n, const char *what)
{
	uint64_t v = 0;
	size_t off = at(d, r);
	int rc = sc_compact(d, r, &v, what);

	if (rc != CVM_OK)
		return rc;
	if (v > r->len / (min_elem ? min_elem : 1))
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
		                 "at byte %zu: %s announces %llu elements, more than the %zu bytes left hold",
		                 off, what, (unsigned long long)v, r->len);
	*n = (size_t)v;
	return CVM_OK;
}

static int sc_bytes(struct dec *d, struct cvm_rd *r, const uint8_t **p, size_t *n, const char *what)
{
	const uint8_t *src;
	int rc = sc_len(d, r, 1, n, what);

	if (rc != CVM_OK)
		return rc;
	if (!cvm_rd_bytes(r, &src, *n))
		return CVM_E_INTERNAL;
	*p = arena_put(d->o, src, *n, false);
	return *p != NULL ? CVM_OK : CVM_E_INTERNAL;
}

static int sc_str(struct dec *d, struct cvm_rd *r, const char **s, size_t *n, const char *what)
{
	const uint8_t *src;
	size_t off;
	int rc = sc_len(d, r, 1, n, what);

	if (rc != CVM_OK)
		return rc;
	off = at(d, r);
	if (!cvm_rd_bytes(r, &src, *n))
		return CVM_E_INTERNAL;
	if (!ratls_utf8_valid(src, *n))
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "at byte %zu: %s is not UTF-8 text without NUL", off, what);
	*s = (const char *)arena_put(d->o, src, *n, true);
	return *s != NULL ? CVM_OK : CVM_E_INTERNAL;
}

/* TdxEvent: u32 imr, u32 event_type, Vec<u8> digest, String event, Vec<u8>
 * event_payload (at least 4 + 4 + 1 + 1 + 1 bytes). */
static int sc_events(struct dec *d, struct cvm_rd *r)
{
	size_t n, len;
	int rc = sc_len(d, r, 11, &n, "the event log's length");

	if (rc != CVM_OK)
		return rc;
	if (n > RATLS_VA_EVENTS_MAX)
		return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
		                 "the event log has %zu events (at most %u are accepted)", n,
		                 RATLS_VA_EVENTS_MAX);
	d->o->va.events = calloc(n ? n : 1, sizeof(*d->o->va.events));
	if (d->o->va.events == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct cvm_va_event *e = &d->o->va.events[i];

		if (!cvm_rd_u32le(r, &e->imr) || !cvm_rd_u32le(r, &e->event_type))
			return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
			                 "at byte %zu: the input ends inside event %zu", at(d, r), i);
		rc = sc_bytes(d, r, &e->digest, &e->digest_len, "an event's digest");
		if (rc == CVM_OK)
			rc = sc_str(d, r, &e->event, &len, "an event's name");
		if (rc == CVM_OK && len > RATLS_EVENT_NAME_MAX)
			rc = RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
			               "event %zu's name has %zu bytes (at most %u)", i, len,
			               RATLS_EVENT_NAME_MAX);
		if (rc == CVM_OK)
			rc = sc_bytes(d, r, &e->payload, &e->payload_len, "an event's payload");
		if (rc != CVM_OK)
			return rc;
		d->o->va.event_count = i + 1;
	}
	return CVM_OK;
}

/* sc_skip_tpm_quote checks the structure of a dstack TpmQuote (tpm-types):
 * Vec<u8> message, Vec<u8> signature, Vec<PcrValue{u32, String, Vec<u8>}>,
 * Vec<u8> ak_cert, Platform (u8 0..3), Vec<TpmEvent{u32, Vec<u8>}>. */
static int sc_skip_tpm_quote(struct dec *d, struct cvm_rd *r)
{
	const uint8_t *p;
	const char *s;
	size_t n, len;
	uint8_t platform;
	uint32_t u;
	int rc;

	for (int i = 0; i < 2; i++) {
		rc = sc_bytes(d, r, &p, &len, "the TPM quote");
		if (rc != CVM_OK)
			return rc;
	}
	rc = sc_len(d, r, 6, &n, "the TPM quote's PCR values");
	for (size_t i = 0; rc == CVM_OK && i < n; i++) {
		if (!cvm_rd_u32le(r, &u))
			return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
			                 "at byte %zu: the input ends inside a PCR value", at(d, r));
		rc = sc_str(d, r, &s, &len, "a PCR value's algorithm");
		if (rc == CVM_OK)
			rc = sc_bytes(d, r, &p, &len, "a PCR value");
	}
	if (rc == CVM_OK)
		rc = sc_bytes(d, r, &p, &len, "the TPM AK certificate");
	if (rc != CVM_OK)
		return rc;
	if (!cvm_rd_u8(r, &platform))
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
		                 "at byte %zu: the input ends before the TPM quote's platform", at(d, r));
	if (platform > 3)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "at byte %zu: the TPM quote's platform %u is not one of dstack's 0..3",
		                 at(d, r) - 1, platform);
	rc = sc_len(d, r, 5, &n, "the TPM event log");
	for (size_t i = 0; rc == CVM_OK && i < n; i++) {
		if (!cvm_rd_u32le(r, &u))
			return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
			                 "at byte %zu: the input ends inside a TPM event", at(d, r));
		rc = sc_bytes(d, r, &p, &len, "a TPM event's digest");
	}
	return rc;
}

static int sc_snp(struct dec *d, struct cvm_rd *r)
{
	struct va_own *o = d->o;
	size_t n;
	int rc = sc_bytes(d, r, &o->va.quote, &o->va.quote_len, "the SNP report");

	if (rc == CVM_OK)
		rc = sc_len(d, r, 1, &n, "the SNP certificate chain");
	if (rc != CVM_OK)
		return rc;
	if (n > RATLS_VA_CHAIN_MAX)
		return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
		                 "the SNP certificate chain has %zu blobs (at most %u)", n,
		                 RATLS_VA_CHAIN_MAX);
	o->chain = calloc(n ? n : 1, sizeof(*o->chain));
	o->chain_len = calloc(n ? n : 1, sizeof(*o->chain_len));
	if (o->chain == NULL || o->chain_len == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		rc = sc_bytes(d, r, &o->chain[i], &o->chain_len[i], "an SNP certificate");
		if (rc != CVM_OK)
			return rc;
	}
	o->va.snp_chain = o->chain;
	o->va.snp_chain_len = o->chain_len;
	o->va.snp_chain_count = n;
	return sc_str(d, r, &o->va.mr_config, &o->va.mr_config_len, "the SNP mr_config document");
}

static int decode_v0(struct dec *d, struct cvm_rd *r)
{
	struct va_own *o = d->o;
	uint8_t tag, variant;
	size_t n, len;
	int rc;

	if (!cvm_rd_u8(r, &tag) || !cvm_rd_u8(r, &variant))
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
		                 "the input ends before the quote variant");
	o->va.version = 0;
	o->va.variant = variant;
	switch (variant) {
	case 0: /* DstackTdx(TdxQuote) */
	case 1: /* DstackGcpTdx(TdxQuote, TpmQuote) */
		o->va.tee = CVM_RATLS_TEE_TDX;
		rc = sc_bytes(d, r, &o->va.quote, &o->va.quote_len, "the TDX quote");
		if (rc == CVM_OK)
			rc = sc_events(d, r);
		if (rc == CVM_OK && variant == 1) {
			const uint8_t *start = r->p;
			size_t before = r->len;

			rc = sc_skip_tpm_quote(d, r);
			if (rc == CVM_OK) {
				o->va.gcp_tpm_quote = arena_put(o, start, before - r->len, false);
				o->va.gcp_tpm_quote_len = before - r->len;
				if (o->va.gcp_tpm_quote == NULL)
					rc = CVM_E_INTERNAL;
			}
		}
		break;
	case 2: /* DstackNitroEnclave(Vec<u8>) */
	case 4: /* DstackAwsNitroTpm(Vec<u8>) */
		rc = sc_bytes(d, r, &o->va.quote, &o->va.quote_len, "the Nitro attestation document");
		break;
	case 3: /* DstackAmdSevSnp(SnpQuote) */
		o->va.tee = CVM_RATLS_TEE_SNP;
		rc = sc_snp(d, r);
		break;
	default:
		return RATLS_ERR(d->err, d->err_len, CVM_E_UNSUPPORTED,
		                 "at byte 1: quote variant %u is not one of dstack's 0..4", variant);
	}
	if (rc != CVM_OK)
		return rc;
	rc = sc_len(d, r, 2, &n, "the runtime events' length");
	if (rc != CVM_OK)
		return rc;
	if (n > RATLS_VA_EVENTS_MAX)
		return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE, "%zu runtime events (at most %u)", n,
		                 RATLS_VA_EVENTS_MAX);
	o->va.runtime_events = calloc(n ? n : 1, sizeof(*o->va.runtime_events));
	if (o->va.runtime_events == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct cvm_va_runtime_event *e = &o->va.runtime_events[i];

		rc = sc_str(d, r, &e->event, &len, "a runtime event's name");
		if (rc == CVM_OK && len > RATLS_EVENT_NAME_MAX)
			rc = RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
			               "runtime event %zu's name has %zu bytes (at most %u)", i, len,
			               RATLS_EVENT_NAME_MAX);
		if (rc == CVM_OK)
			rc = sc_bytes(d, r, &e->payload, &e->payload_len, "a runtime event's payload");
		if (rc != CVM_OK)
			return rc;
		o->va.runtime_event_count = i + 1;
	}
	if (!cvm_rd_copy(r, o->va.report_data, sizeof(o->va.report_data)))
		return RATLS_ERR(d->err, d->err_len, CVM_E_TRUNCATED,
		                 "at byte %zu: the input ends inside report_data", at(d, r));
	rc = sc_str(d, r, &o->va.config, &o->va.config_len, "the config");
	if (rc != CVM_OK)
		return rc;
	if (!cvm_rd_empty(r))
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "at byte %zu: %zu bytes follow the V0 attestation", at(d, r), r->len);
	return CVM_OK;
}

/* ---- V1: MessagePack ---------------------------------------------------- */

/* mp_scan walks one msgpack object with the bounded reader: every length
 * within what remains, every container's elements at least one byte each,
 * nesting at most RATLS_MSGPACK_DEPTH_MAX, objects at most MP_OBJECTS_MAX. */
static int mp_scan(struct cvm_rd *r, unsigned depth, size_t *objects)
{
	uint8_t b, b8;
	uint16_t b16;
	uint32_t b32;
	size_t skip = 0, count = 0;
	bool is_map = false, has_count = false;

	if (depth > RATLS_MSGPACK_DEPTH_MAX)
		return CVM_E_TOO_LARGE;
	if (++*objects > MP_OBJECTS_MAX)
		return CVM_E_TOO_LARGE;
	if (!cvm_rd_u8(r, &b))
		return CVM_E_TRUNCATED;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return CVM_OK;
	if (b >= 0x80 && b <= 0x8f) {
		count = b & 0x0fu;
		is_map = has_count = true;
	} else if (b >= 0x90 && b <= 0x9f) {
		count = b & 0x0fu;
		has_count = true;
	} else if (b >= 0xa0 && b <= 0xbf) {
		skip = b & 0x1fu;
	} else {
		switch (b) {
		case 0xc4: /* bin 8 */
		case 0xd9: /* str 8 */
			if (!cvm_rd_u8(r, &b8))
				return CVM_E_TRUNCATED;
			skip = b8;
			break;
		case 0xc5:
		case 0xda:
			if (!cvm_rd_u16be(r, &b16))
				return CVM_E_TRUNCATED;
			skip = b16;
			break;
		case 0xc6:
		case 0xdb:
			if (!cvm_rd_u32be(r, &b32))
				return CVM_E_TRUNCATED;
			skip = b32;
			break;
		case 0xc7: /* ext 8/16/32: length, type byte, data */
			if (!cvm_rd_u8(r, &b8))
				return CVM_E_TRUNCATED;
			skip = (size_t)b8 + 1;
			break;
		case 0xc8:
			if (!cvm_rd_u16be(r, &b16))
				return CVM_E_TRUNCATED;
			skip = (size_t)b16 + 1;
			break;
		case 0xc9:
			if (!cvm_rd_u32be(r, &b32))
				return CVM_E_TRUNCATED;
			skip = (size_t)b32 + 1;
			break;
		case 0xca:
			skip = 4;
			break;
		case 0xcb:
			skip = 8;
			break;
		case 0xcc:
		case 0xd0:
			skip = 1;
			break;
		case 0xcd:
		case 0xd1:
			skip = 2;
			break;
		case 0xce:
		case 0xd2:
			skip = 4;
			break;
		case 0xcf:
		case 0xd3:
			skip = 8;
			break;
		case 0xd4:
			skip = 2;
			break;
		case 0xd5:
			skip = 3;
			break;
		case 0xd6:
			skip = 5;
			break;
		case 0xd7:
			skip = 9;
			break;
		case 0xd8:
			skip = 17;
			break;
		case 0xdc:
		case 0xde:
			if (!cvm_rd_u16be(r, &b16))
				return CVM_E_TRUNCATED;
			count = b16;
			has_count = true;
			is_map = b == 0xde;
			break;
		case 0xdd:
		case 0xdf:
			if (!cvm_rd_u32be(r, &b32))
				return CVM_E_TRUNCATED;
			count = b32;
			has_count = true;
			is_map = b == 0xdf;
			break;
		default: /* 0xc1: never used */
			return CVM_E_FORMAT;
		}
	}
	if (!has_count)
		return cvm_rd_skip(r, skip) ? CVM_OK : CVM_E_TRUNCATED;
	if (count > r->len / (is_map ? 2 : 1))
		return CVM_E_TRUNCATED;
	for (size_t i = 0; i < count * (is_map ? 2 : 1); i++) {
		int rc = mp_scan(r, depth + 1, objects);

		if (rc != CVM_OK)
			return rc;
	}
	return CVM_OK;
}

/* mp_get finds the value of `key` in a map (NULL when absent; a key present
 * twice is an error, as serde's derive says "duplicate field"). */
static int mp_get(struct dec *d, const msgpack_object *map, const char *key, const msgpack_object **out,
                  const char *where)
{
	size_t klen = strlen(key);

	*out = NULL;
	if (map->type != MSGPACK_OBJECT_MAP)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT, "%s is not a map", where);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;

		if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != klen ||
		    memcmp(k->via.str.ptr, key, klen) != 0)
			continue;
		if (*out != NULL)
			return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT, "%s has the key \"%s\" twice",
			                 where, key);
		*out = &map->via.map.ptr[i].val;
	}
	return CVM_OK;
}

static int mp_need(struct dec *d, const msgpack_object *map, const char *key, const msgpack_object **out,
                   const char *where)
{
	int rc = mp_get(d, map, key, out, where);

	if (rc == CVM_OK && *out == NULL)
		rc = RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT, "%s lacks \"%s\"", where, key);
	return rc;
}

/* mp_bytes reads a Vec<u8>: an array of integers 0..255 (serde's default
 * for Vec<u8>) or a bin (serde_bytes and serde_human_bytes). */
static int mp_bytes(struct dec *d, const msgpack_object *v, const uint8_t **p, size_t *n, const char *what)
{
	uint8_t *dst;

	if (v->type == MSGPACK_OBJECT_BIN) {
		*p = arena_put(d->o, (const uint8_t *)v->via.bin.ptr, v->via.bin.size, false);
		*n = v->via.bin.size;
		return *p != NULL ? CVM_OK : CVM_E_INTERNAL;
	}
	if (v->type != MSGPACK_OBJECT_ARRAY)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "%s is neither bytes nor an array of bytes", what);
	*n = v->via.array.size;
	dst = arena_put(d->o, NULL, 0, false);
	if (dst == NULL || d->o->arena_cap - d->o->arena_len < *n)
		return CVM_E_INTERNAL;
	for (size_t i = 0; i < *n; i++) {
		const msgpack_object *e = &v->via.array.ptr[i];

		if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > 255)
			return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
			                 "%s holds an element (index %zu) that is not a byte", what, i);
		dst[i] = (uint8_t)e->via.u64;
	}
	d->o->arena_len += *n;
	*p = dst;
	return CVM_OK;
}

static int mp_str(struct dec *d, const msgpack_object *v, const char **s, size_t *n, const char *what)
{
	if (v->type != MSGPACK_OBJECT_STR)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT, "%s is not a string", what);
	if (!ratls_utf8_valid((const uint8_t *)v->via.str.ptr, v->via.str.size))
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT, "%s is not UTF-8 text without NUL", what);
	*n = v->via.str.size;
	*s = (const char *)arena_put(d->o, (const uint8_t *)v->via.str.ptr, *n, true);
	return *s != NULL ? CVM_OK : CVM_E_INTERNAL;
}

static int mp_u32(struct dec *d, const msgpack_object *v, uint32_t *out, const char *what)
{
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > UINT32_MAX)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT, "%s is not an unsigned 32-bit integer",
		                 what);
	*out = (uint32_t)v->via.u64;
	return CVM_OK;
}

static bool mp_is(const msgpack_object *v, const char *s)
{
	size_t n = strlen(s);

	return v->type == MSGPACK_OBJECT_STR && v->via.str.size == n && memcmp(v->via.str.ptr, s, n) == 0;
}

/* mp_version reads an optional event "version" (1 or 2). */
static int mp_version(struct dec *d, const msgpack_object *map, unsigned *out, const char *where)
{
	const msgpack_object *v;
	uint32_t ver = 1;
	int rc = mp_get(d, map, "version", &v, where);

	*out = 1;
	if (rc != CVM_OK || v == NULL)
		return rc;
	rc = mp_u32(d, v, &ver, "an event's version");
	if (rc == CVM_OK && ver != 1 && ver != 2)
		rc = RATLS_ERR(d->err, d->err_len, CVM_E_UNSUPPORTED, "an event's version %u is not 1 or 2",
		               ver);
	*out = ver;
	return rc;
}

static int mp_tdx_events(struct dec *d, const msgpack_object *arr)
{
	struct va_own *o = d->o;
	int rc = CVM_OK;

	if (arr->type != MSGPACK_OBJECT_ARRAY)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT, "platform.data.event_log is not an array");
	if (arr->via.array.size > RATLS_VA_EVENTS_MAX)
		return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
		                 "the event log has %u events (at most %u)", arr->via.array.size,
		                 RATLS_VA_EVENTS_MAX);
	o->va.events = calloc(arr->via.array.size ? arr->via.array.size : 1, sizeof(*o->va.events));
	if (o->va.events == NULL)
		return CVM_E_NOMEM;
	for (uint32_t i = 0; rc == CVM_OK && i < arr->via.array.size; i++) {
		const msgpack_object *m = &arr->via.array.ptr[i], *v;
		struct cvm_va_event *e = &o->va.events[i];
		size_t len;

		rc = mp_need(d, m, "imr", &v, "an event");
		if (rc == CVM_OK)
			rc = mp_u32(d, v, &e->imr, "an event's imr");
		if (rc == CVM_OK)
			rc = mp_need(d, m, "event_type", &v, "an event");
		if (rc == CVM_OK)
			rc = mp_u32(d, v, &e->event_type, "an event's event_type");
		if (rc == CVM_OK)
			rc = mp_get(d, m, "digest", &v, "an event");
		if (rc == CVM_OK && v != NULL)
			rc = mp_bytes(d, v, &e->digest, &e->digest_len, "an event's digest");
		if (rc == CVM_OK)
			rc = mp_need(d, m, "event", &v, "an event");
		if (rc == CVM_OK)
			rc = mp_str(d, v, &e->event, &len, "an event's name");
		if (rc == CVM_OK && len > RATLS_EVENT_NAME_MAX)
			rc = RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE, "an event's name has %zu bytes",
			               len);
		if (rc == CVM_OK)
			rc = mp_need(d, m, "event_payload", &v, "an event");
		if (rc == CVM_OK)
			rc = mp_bytes(d, v, &e->payload, &e->payload_len, "an event's payload");
		if (rc == CVM_OK)
			rc = mp_version(d, m, &e->version, "an event");
		if (rc == CVM_OK)
			o->va.event_count = i + 1u;
	}
	return rc;
}

static int mp_platform(struct dec *d, const msgpack_object *pl)
{
	struct va_own *o = d->o;
	const msgpack_object *kind, *data, *v;
	int rc = mp_need(d, pl, "kind", &kind, "platform");

	if (rc == CVM_OK)
		rc = mp_need(d, pl, "data", &data, "platform");
	if (rc != CVM_OK)
		return rc;
	if (mp_is(kind, "tdx") || mp_is(kind, "gcp-tdx")) {
		o->va.variant = mp_is(kind, "tdx") ? 0 : 1;
		o->va.tee = CVM_RATLS_TEE_TDX;
		rc = mp_need(d, data, "quote", &v, "platform.data");
		if (rc == CVM_OK)
			rc = mp_bytes(d, v, &o->va.quote, &o->va.quote_len, "platform.data.quote");
		if (rc == CVM_OK)
			rc = mp_need(d, data, "event_log", &v, "platform.data");
		if (rc == CVM_OK)
			rc = mp_tdx_events(d, v);
		return rc;
	}
	if (mp_is(kind, "nitro-enclave") || mp_is(kind, "aws-nitro-tpm")) {
		bool enclave = mp_is(kind, "nitro-enclave");

		o->va.variant = enclave ? 2 : 4;
		rc = mp_need(d, data, enclave ? "nsm_quote" : "attestation_doc", &v, "platform.data");
		if (rc == CVM_OK)
			rc = mp_bytes(d, v, &o->va.quote, &o->va.quote_len, "the Nitro attestation document");
		return rc;
	}
	if (mp_is(kind, "sev-snp")) {
		o->va.variant = 3;
		o->va.tee = CVM_RATLS_TEE_SNP;
		rc = mp_need(d, data, "report", &v, "platform.data");
		if (rc == CVM_OK)
			rc = mp_bytes(d, v, &o->va.quote, &o->va.quote_len, "platform.data.report");
		if (rc == CVM_OK)
			rc = mp_need(d, data, "cert_chain", &v, "platform.data");
		if (rc != CVM_OK)
			return rc;
		if (v->type != MSGPACK_OBJECT_ARRAY)
			return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
			                 "platform.data.cert_chain is not an array");
		if (v->via.array.size > RATLS_VA_CHAIN_MAX)
			return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
			                 "the SNP certificate chain has %u blobs (at most %u)",
			                 v->via.array.size, RATLS_VA_CHAIN_MAX);
		o->chain = calloc(v->via.array.size + 1u, sizeof(*o->chain));
		o->chain_len = calloc(v->via.array.size + 1u, sizeof(*o->chain_len));
		if (o->chain == NULL || o->chain_len == NULL)
			return CVM_E_NOMEM;
		for (uint32_t i = 0; rc == CVM_OK && i < v->via.array.size; i++)
			rc = mp_bytes(d, &v->via.array.ptr[i], &o->chain[i], &o->chain_len[i],
			              "an SNP certificate");
		o->va.snp_chain = o->chain;
		o->va.snp_chain_len = o->chain_len;
		o->va.snp_chain_count = v->via.array.size;
		if (rc == CVM_OK)
			rc = mp_need(d, data, "mr_config", &v, "platform.data");
		if (rc == CVM_OK)
			rc = mp_str(d, v, &o->va.mr_config, &o->va.mr_config_len, "platform.data.mr_config");
		return rc;
	}
	return RATLS_ERR(d->err, d->err_len, CVM_E_UNSUPPORTED, "platform.kind is not one dstack defines");
}

static int mp_stack(struct dec *d, const msgpack_object *st)
{
	struct va_own *o = d->o;
	const msgpack_object *kind, *data, *v;
	const uint8_t *rd;
	size_t rd_len;
	bool pod;
	int rc = mp_need(d, st, "kind", &kind, "stack");

	if (rc == CVM_OK)
		rc = mp_need(d, st, "data", &data, "stack");
	if (rc != CVM_OK)
		return rc;
	if (!mp_is(kind, "dstack") && !mp_is(kind, "dstack-pod"))
		return RATLS_ERR(d->err, d->err_len, CVM_E_UNSUPPORTED,
		                 "stack.kind is neither \"dstack\" nor \"dstack-pod\"");
	pod = mp_is(kind, "dstack-pod");
	rc = mp_need(d, data, "report_data", &v, "stack.data");
	if (rc == CVM_OK)
		rc = mp_bytes(d, v, &rd, &rd_len, "stack.data.report_data");
	if (rc != CVM_OK)
		return rc;
	if (rd_len != sizeof(o->va.report_data))
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "stack.data.report_data has %zu bytes, not 64", rd_len);
	memcpy(o->va.report_data, rd, rd_len);
	rc = mp_need(d, data, "runtime_events", &v, "stack.data");
	if (rc != CVM_OK)
		return rc;
	if (v->type != MSGPACK_OBJECT_ARRAY)
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "stack.data.runtime_events is not an array");
	if (v->via.array.size > RATLS_VA_EVENTS_MAX)
		return RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE, "%u runtime events (at most %u)",
		                 v->via.array.size, RATLS_VA_EVENTS_MAX);
	o->va.runtime_events = calloc(v->via.array.size + 1u, sizeof(*o->va.runtime_events));
	if (o->va.runtime_events == NULL)
		return CVM_E_NOMEM;
	for (uint32_t i = 0; rc == CVM_OK && i < v->via.array.size; i++) {
		const msgpack_object *m = &v->via.array.ptr[i], *f;
		struct cvm_va_runtime_event *e = &o->va.runtime_events[i];
		size_t len;

		rc = mp_need(d, m, "event", &f, "a runtime event");
		if (rc == CVM_OK)
			rc = mp_str(d, f, &e->event, &len, "a runtime event's name");
		if (rc == CVM_OK && len > RATLS_EVENT_NAME_MAX)
			rc = RATLS_ERR(d->err, d->err_len, CVM_E_TOO_LARGE,
			               "a runtime event's name has %zu bytes", len);
		if (rc == CVM_OK)
			rc = mp_need(d, m, "payload", &f, "a runtime event");
		if (rc == CVM_OK)
			rc = mp_bytes(d, f, &e->payload, &e->payload_len, "a runtime event's payload");
		if (rc == CVM_OK)
			rc = mp_version(d, m, &e->version, "a runtime event");
		if (rc == CVM_OK)
			o->va.runtime_event_count = i + 1u;
	}
	if (rc == CVM_OK)
		rc = mp_need(d, data, "config", &v, "stack.data");
	if (rc == CVM_OK)
		rc = mp_str(d, v, &o->va.config, &o->va.config_len, "stack.data.config");
	if (rc == CVM_OK && pod) {
		rc = mp_need(d, data, "report_data_payload", &v, "stack.data");
		if (rc == CVM_OK)
			rc = mp_str(d, v, &o->va.report_data_payload, &o->va.report_data_payload_len,
			            "stack.data.report_data_payload");
	}
	return rc;
}

/* mp_is_bytes is true for a bin or an array of integers 0..255. */
static bool mp_is_bytes(const msgpack_object *v, size_t want)
{
	if (v->type == MSGPACK_OBJECT_BIN)
		return want == 0 || v->via.bin.size == want;
	if (v->type != MSGPACK_OBJECT_ARRAY || (want != 0 && v->via.array.size != want))
		return false;
	for (uint32_t i = 0; i < v->via.array.size; i++)
		if (v->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    v->via.array.ptr[i].via.u64 > 255)
			return false;
	return true;
}

int ratls_app_info_check(const uint8_t *buf, size_t len, char *err, size_t err_len)
{
	static const char *const names[] = {"app_id",        "compose_hash",     "instance_id",
	                                    "device_id",     "mr_system",        "mr_aggregated",
	                                    "os_image_hash", "key_provider_info"};
	struct cvm_rd r;
	msgpack_unpacked up;
	const msgpack_object *a;
	size_t objects = 0, off = 0;
	int rc;

	if (len == 0 || len > RATLS_APP_INFO_MAX)
		return RATLS_ERR(err, err_len, CVM_E_TOO_LARGE, "extension 1.9 (app info) has %zu bytes",
		                 len);
	cvm_rd_init(&r, buf, len);
	rc = mp_scan(&r, 0, &objects);
	if (rc != CVM_OK || !cvm_rd_empty(&r))
		return RATLS_ERR(err, err_len, rc != CVM_OK ? rc : CVM_E_FORMAT,
		                 "extension 1.9 (app info) is not one well-formed MessagePack value");
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
		rc = RATLS_ERR(err, err_len, CVM_E_FORMAT, "extension 1.9 (app info) does not unpack");
		goto out;
	}
	a = &up.data;
	if (a->type != MSGPACK_OBJECT_ARRAY || (a->via.array.size != 8 && a->via.array.size != 9)) {
		rc = RATLS_ERR(err, err_len, CVM_E_FORMAT,
		               "extension 1.9 (app info) is not an array of 8 or 9 fields (AppInfo)");
		goto out;
	}
	for (uint32_t i = 0; i < 8; i++) {
		if (!mp_is_bytes(&a->via.array.ptr[i], i == 4 || i == 5 ? 32 : 0)) {
			rc = RATLS_ERR(err, err_len, CVM_E_FORMAT, "extension 1.9 (app info): %s is not %s",
			               names[i], i == 4 || i == 5 ? "32 bytes" : "a byte string");
			goto out;
		}
	}
	if (a->via.array.size == 9) {
		const msgpack_object *h = &a->via.array.ptr[8];
		bool ok = h->type == MSGPACK_OBJECT_NIL || h->type == MSGPACK_OBJECT_ARRAY;

		for (uint32_t i = 0; ok && h->type == MSGPACK_OBJECT_ARRAY && i < h->via.array.size; i++)
			ok = mp_is_bytes(&h->via.array.ptr[i], 0);
		if (!ok) {
			rc = RATLS_ERR(err, err_len, CVM_E_FORMAT,
			               "extension 1.9 (app info): init_script_hashes is neither nil nor a "
			               "list of hashes");
			goto out;
		}
	}
	rc = CVM_OK;
out:
	msgpack_unpacked_destroy(&up);
	return rc;
}

int cvm_ratls_app_info_ids(const uint8_t *buf, size_t len, struct cvm_ratls_app_ids *out, char *err,
                           size_t err_len)
{
	msgpack_unpacked up;
	const msgpack_object *a;
	size_t off = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = ratls_app_info_check(buf, len, err, err_len);
	if (rc != CVM_OK)
		return rc;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
		msgpack_unpacked_destroy(&up);
		return RATLS_ERR(err, err_len, CVM_E_FORMAT, "extension 1.9 (app info) does not unpack");
	}
	a = &up.data; /* checked above: an array of 8 or 9, byte strings first */
	{
		const msgpack_object *f[3] = {&a->via.array.ptr[0], &a->via.array.ptr[1],
		                              &a->via.array.ptr[2]};
		uint8_t *dst[3] = {out->app_id, out->compose_hash, out->instance_id};
		size_t *dlen[3] = {&out->app_id_len, &out->compose_hash_len, &out->instance_id_len};
		static const char *const names[3] = {"app_id", "compose_hash", "instance_id"};

		for (size_t i = 0; i < 3; i++) {
			const char *p =
			    f[i]->type == MSGPACK_OBJECT_BIN ? f[i]->via.bin.ptr : f[i]->via.str.ptr;
			uint32_t n =
			    f[i]->type == MSGPACK_OBJECT_BIN ? f[i]->via.bin.size : f[i]->via.str.size;

			if (n > CVM_RATLS_APP_ID_FIELD_MAX) {
				rc = RATLS_ERR(err, err_len, CVM_E_TOO_LARGE,
				               "extension 1.9 (app info): %s has %u bytes, more than %u",
				               names[i], (unsigned)n, (unsigned)CVM_RATLS_APP_ID_FIELD_MAX);
				break;
			}
			if (n > 0)
				memcpy(dst[i], p, n);
			*dlen[i] = n;
		}
	}
	msgpack_unpacked_destroy(&up);
	return rc;
}

/* pack_bin packs `n` bytes as MessagePack bin (serde's bytes under
 * rmp_serde); returns 0 or -1. */
static int pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	if (msgpack_pack_bin(pk, n) != 0)
		return -1;
	return n == 0 ? 0 : msgpack_pack_bin_body(pk, p, n);
}

int cvm_ratls_app_info_encode(const struct cvm_ratls_app_info *in, uint8_t **out, size_t *out_len)
{
	const size_t max = CVM_RATLS_APP_INFO_FIELD_MAX;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	*out = NULL;
	*out_len = 0;
	if (in->app_id_len > max || in->compose_hash_len > max || in->instance_id_len > max ||
	    in->os_image_hash_len > max || in->key_provider_info_len > max)
		return CVM_E_INVAL;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_array(&pk, 8) != 0 || pack_bin(&pk, in->app_id, in->app_id_len) != 0 ||
	    pack_bin(&pk, in->compose_hash, in->compose_hash_len) != 0 ||
	    pack_bin(&pk, in->instance_id, in->instance_id_len) != 0 ||
	    pack_bin(&pk, in->device_id, 32) != 0 || pack_bin(&pk, in->mr_system, 32) != 0 ||
	    pack_bin(&pk, in->mr_aggregated, 32) != 0 ||
	    pack_bin(&pk, in->os_image_hash, in->os_image_hash_len) != 0 ||
	    pack_bin(&pk, in->key_provider_info, in->key_provider_info_len) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return CVM_E_NOMEM;
	}
	*out = (uint8_t *)sb.data; /* malloc'd by msgpack_sbuffer_write */
	*out_len = sb.size;
	return CVM_OK;
}

static int decode_v1(struct dec *d, const uint8_t *buf, size_t len)
{
	struct cvm_rd r;
	msgpack_unpacked up;
	const msgpack_object *root, *v;
	size_t objects = 0, off = 0;
	int rc;

	cvm_rd_init(&r, buf, len);
	rc = mp_scan(&r, 0, &objects);
	if (rc == CVM_E_TOO_LARGE)
		return RATLS_ERR(
		    d->err, d->err_len, rc,
		    "the V1 MessagePack nests deeper than %u levels or holds more than %zu objects",
		    RATLS_MSGPACK_DEPTH_MAX, MP_OBJECTS_MAX);
	if (rc != CVM_OK)
		return RATLS_ERR(d->err, d->err_len, rc,
		                 "at byte %zu: the V1 MessagePack is malformed or ends early", len - r.len);
	if (!cvm_rd_empty(&r))
		return RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		                 "at byte %zu: %zu bytes follow the V1 attestation", len - r.len, r.len);
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
		rc = RATLS_ERR(d->err, d->err_len, CVM_E_FORMAT,
		               "msgpack-c could not read the V1 attestation");
		goto out;
	}
	root = &up.data;
	d->o->va.version = 1;
	rc = mp_need(d, root, "version", &v, "the V1 attestation");
	if (rc != CVM_OK)
		goto out;
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1) {
		rc =
		    RATLS_ERR(d->err, d->err_len, CVM_E_UNSUPPORTED, "the V1 attestation's version is not 1");
		goto out;
	}
	rc = mp_need(d, root, "platform", &v, "the V1 attestation");
	if (rc == CVM_OK)
		rc = mp_platform(d, v);
	if (rc == CVM_OK)
		rc = mp_need(d, root, "stack", &v, "the V1 attestation");
	if (rc == CVM_OK)
		rc = mp_stack(d, v);
out:
	msgpack_unpacked_destroy(&up);
	return rc;
}

int cvm_va_decode(const uint8_t *buf, size_t len, struct cvm_va **out, char *err, size_t err_len)
{
	struct dec d = {.err = err, .err_len = err_len, .total = len};
	struct cvm_rd r;
	int rc;

	*out = NULL;
	if (err != NULL && err_len != 0)
		err[0] = 0;
	if (buf == NULL && len != 0)
		return RATLS_ERR(err, err_len, CVM_E_INVAL, "no attestation given");
	if (len == 0)
		return RATLS_ERR(err, err_len, CVM_E_TRUNCATED, "the attestation is empty");
	if (len > CVM_VA_MAX)
		return RATLS_ERR(err, err_len, CVM_E_TOO_LARGE, "the attestation has %zu bytes (at most %zu)",
		                 len, CVM_VA_MAX);
	if (buf[0] != 0x00 && !(buf[0] >= 0x80 && buf[0] <= 0x8f) && buf[0] != 0xde && buf[0] != 0xdf)
		return RATLS_ERR(err, err_len, CVM_E_UNSUPPORTED,
		                 "at byte 0: 0x%02x is neither V0 (0x00) nor a MessagePack map (V1)", buf[0]);
	d.o = own_new(len);
	if (d.o == NULL)
		return RATLS_ERR(err, err_len, CVM_E_NOMEM, "out of memory for a %zu-byte attestation", len);
	if (buf[0] == 0x00) {
		cvm_rd_init(&r, buf, len);
		rc = decode_v0(&d, &r);
	} else {
		rc = decode_v1(&d, buf, len);
	}
	if (rc == CVM_E_INTERNAL)
		rc = RATLS_ERR(err, err_len, CVM_E_INTERNAL,
		               "the decoder's arena overflowed (a bug in cvmkit)");
	if (rc != CVM_OK)
		goto out;
	*out = &d.o->va;
	d.o = NULL; /* transferred */
out:
	if (rc != CVM_OK && err != NULL && err_len != 0 && err[0] == 0)
		(void)RATLS_ERR(err, err_len, rc, "the attestation cannot be read: %s", cvm_strerror(rc));
	cvm_va_free(d.o != NULL ? &d.o->va : NULL);
	return rc;
}

/* ---- encoding ------------------------------------------------------------ */

void ratls_sc_put_compact(struct cvm_wr *w, uint64_t v)
{
	if (v < 64) {
		cvm_wr_u8(w, (uint8_t)(v << 2));
	} else if (v < (1u << 14)) {
		cvm_wr_u16le(w, (uint16_t)((v << 2) | 1u));
	} else if (v < ((uint64_t)1 << 30)) {
		cvm_wr_u32le(w, (uint32_t)((v << 2) | 2u));
	} else {
		uint8_t n = 4;

		while (n < 8 && (v >> (8u * n)) != 0)
			n++;
		cvm_wr_u8(w, (uint8_t)(((n - 4u) << 2) | 3u));
		for (uint8_t i = 0; i < n; i++)
			cvm_wr_u8(w, (uint8_t)(v >> (8u * i)));
	}
}

void ratls_sc_put_bytes(struct cvm_wr *w, const void *p, size_t n)
{
	ratls_sc_put_compact(w, n);
	cvm_wr_bytes(w, p, n);
}

static void sc_put_str(struct cvm_wr *w, const char *s)
{
	ratls_sc_put_bytes(w, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

static int encode_v0(const struct cvm_va *va, uint8_t **out, size_t *out_len)
{
	struct cvm_wr w;

	if (va->variant > 4 || (va->variant == 1 && va->gcp_tpm_quote == NULL))
		return CVM_E_UNSUPPORTED;
	cvm_wr_init(&w, CVM_VA_MAX);
	cvm_wr_u8(&w, 0);
	cvm_wr_u8(&w, (uint8_t)va->variant);
	switch (va->variant) {
	case 0:
	case 1:
		ratls_sc_put_bytes(&w, va->quote, va->quote_len);
		ratls_sc_put_compact(&w, va->event_count);
		for (size_t i = 0; i < va->event_count; i++) {
			const struct cvm_va_event *e = &va->events[i];

			cvm_wr_u32le(&w, e->imr);
			cvm_wr_u32le(&w, e->event_type);
			ratls_sc_put_bytes(&w, e->digest, e->digest_len);
			sc_put_str(&w, e->event);
			ratls_sc_put_bytes(&w, e->payload, e->payload_len);
		}
		if (va->variant == 1)
			cvm_wr_bytes(&w, va->gcp_tpm_quote, va->gcp_tpm_quote_len);
		break;
	case 3:
		ratls_sc_put_bytes(&w, va->quote, va->quote_len);
		ratls_sc_put_compact(&w, va->snp_chain_count);
		for (size_t i = 0; i < va->snp_chain_count; i++)
			ratls_sc_put_bytes(&w, va->snp_chain[i], va->snp_chain_len[i]);
		ratls_sc_put_bytes(&w, va->mr_config != NULL ? va->mr_config : "", va->mr_config_len);
		break;
	default:
		ratls_sc_put_bytes(&w, va->quote, va->quote_len);
		break;
	}
	ratls_sc_put_compact(&w, va->runtime_event_count);
	for (size_t i = 0; i < va->runtime_event_count; i++) {
		sc_put_str(&w, va->runtime_events[i].event);
		ratls_sc_put_bytes(&w, va->runtime_events[i].payload, va->runtime_events[i].payload_len);
	}
	cvm_wr_bytes(&w, va->report_data, sizeof(va->report_data));
	ratls_sc_put_bytes(&w, va->config != NULL ? va->config : "", va->config != NULL ? va->config_len : 0);
	return cvm_wr_finish(&w, out, out_len);
}

static void mp_put_str(msgpack_packer *pk, const char *s, size_t n)
{
	(void)msgpack_pack_str(pk, n);
	(void)msgpack_pack_str_body(pk, s, n);
}

static void mp_put_cstr(msgpack_packer *pk, const char *s)
{
	mp_put_str(pk, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* mp_put_vec writes a Vec<u8> as serde does without serde_bytes: an array of
 * integers. */
static void mp_put_vec(msgpack_packer *pk, const uint8_t *p, size_t n)
{
	(void)msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		(void)msgpack_pack_uint8(pk, p[i]);
}

static void mp_put_bin(msgpack_packer *pk, const uint8_t *p, size_t n)
{
	(void)msgpack_pack_bin(pk, n);
	(void)msgpack_pack_bin_body(pk, n != 0 ? (const void *)p : "", n);
}

/* wr_write is msgpack-c's write callback into a struct cvm_wr, whose sticky
 * error and cap cvm_wr_finish reports. */
static int wr_write(void *data, const char *buf, size_t len)
{
	struct cvm_wr *w = data;

	cvm_wr_bytes(w, buf, len);
	return w->err ? -1 : 0;
}

static int encode_v1(const struct cvm_va *va, uint8_t **out, size_t *out_len)
{
	struct cvm_wr w;
	msgpack_packer pk;
	const char *kind;

	switch (va->variant) {
	case 0:
		kind = "tdx";
		break;
	case 2:
		kind = "nitro-enclave";
		break;
	case 3:
		kind = "sev-snp";
		break;
	case 4:
		kind = "aws-nitro-tpm";
		break;
	default: /* gcp-tdx: its TPM quote is only kept in V0's SCALE form */
		return CVM_E_UNSUPPORTED;
	}
	cvm_wr_init(&w, CVM_VA_MAX);
	msgpack_packer_init(&pk, &w, wr_write);
	(void)msgpack_pack_map(&pk, 3);
	mp_put_cstr(&pk, "version");
	(void)msgpack_pack_uint64(&pk, 1);
	mp_put_cstr(&pk, "platform");
	(void)msgpack_pack_map(&pk, 2);
	mp_put_cstr(&pk, "kind");
	mp_put_cstr(&pk, kind);
	mp_put_cstr(&pk, "data");
	switch (va->variant) {
	case 0:
		(void)msgpack_pack_map(&pk, 2);
		mp_put_cstr(&pk, "quote");
		mp_put_vec(&pk, va->quote, va->quote_len);
		mp_put_cstr(&pk, "event_log");
		(void)msgpack_pack_array(&pk, va->event_count);
		for (size_t i = 0; i < va->event_count; i++) {
			const struct cvm_va_event *e = &va->events[i];
			bool v2 = e->version == 2;

			(void)msgpack_pack_map(&pk, v2 ? 6 : 5);
			mp_put_cstr(&pk, "imr");
			(void)msgpack_pack_uint32(&pk, e->imr);
			mp_put_cstr(&pk, "event_type");
			(void)msgpack_pack_uint32(&pk, e->event_type);
			mp_put_cstr(&pk, "digest");
			mp_put_bin(&pk, e->digest, e->digest_len);
			mp_put_cstr(&pk, "event");
			mp_put_cstr(&pk, e->event);
			mp_put_cstr(&pk, "event_payload");
			mp_put_bin(&pk, e->payload, e->payload_len);
			if (v2) {
				mp_put_cstr(&pk, "version");
				(void)msgpack_pack_uint32(&pk, 2);
			}
		}
		break;
	case 3:
		(void)msgpack_pack_map(&pk, 3);
		mp_put_cstr(&pk, "report");
		mp_put_vec(&pk, va->quote, va->quote_len);
		mp_put_cstr(&pk, "cert_chain");
		(void)msgpack_pack_array(&pk, va->snp_chain_count);
		for (size_t i = 0; i < va->snp_chain_count; i++)
			mp_put_vec(&pk, va->snp_chain[i], va->snp_chain_len[i]);
		mp_put_cstr(&pk, "mr_config");
		mp_put_str(&pk, va->mr_config != NULL ? va->mr_config : "", va->mr_config_len);
		break;
	default:
		(void)msgpack_pack_map(&pk, 1);
		mp_put_cstr(&pk, va->variant == 2 ? "nsm_quote" : "attestation_doc");
		mp_put_vec(&pk, va->quote, va->quote_len);
		break;
	}
	mp_put_cstr(&pk, "stack");
	(void)msgpack_pack_map(&pk, 2);
	mp_put_cstr(&pk, "kind");
	mp_put_cstr(&pk, va->report_data_payload != NULL ? "dstack-pod" : "dstack");
	mp_put_cstr(&pk, "data");
	(void)msgpack_pack_map(&pk, va->report_data_payload != NULL ? 4 : 3);
	mp_put_cstr(&pk, "report_data");
	mp_put_vec(&pk, va->report_data, sizeof(va->report_data));
	mp_put_cstr(&pk, "runtime_events");
	(void)msgpack_pack_array(&pk, va->runtime_event_count);
	for (size_t i = 0; i < va->runtime_event_count; i++) {
		const struct cvm_va_runtime_event *e = &va->runtime_events[i];
		bool v2 = e->version == 2;

		(void)msgpack_pack_map(&pk, v2 ? 3 : 2);
		mp_put_cstr(&pk, "event");
		mp_put_cstr(&pk, e->event);
		mp_put_cstr(&pk, "payload");
		mp_put_bin(&pk, e->payload, e->payload_len);
		if (v2) {
			mp_put_cstr(&pk, "version");
			(void)msgpack_pack_uint32(&pk, 2);
		}
	}
	mp_put_cstr(&pk, "config");
	mp_put_str(&pk, va->config != NULL ? va->config : "", va->config != NULL ? va->config_len : 0);
	if (va->report_data_payload != NULL) {
		mp_put_cstr(&pk, "report_data_payload");
		mp_put_str(&pk, va->report_data_payload, va->report_data_payload_len);
	}
	return cvm_wr_finish(&w, out, out_len);
}

int cvm_va_encode(const struct cvm_va *va, unsigned version, uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (va == NULL || (va->quote == NULL && va->quote_len != 0) ||
	    (va->events == NULL && va->event_count != 0) ||
	    (va->runtime_events == NULL && va->runtime_event_count != 0) ||
	    (va->variant == 3 && va->snp_chain_count != 0 &&
	     (va->snp_chain == NULL || va->snp_chain_len == NULL)))
		return CVM_E_INVAL;
	if (version == 0)
		return encode_v0(va, out, out_len);
	if (version == 1)
		return encode_v1(va, out, out_len);
	return CVM_E_INVAL;
}
