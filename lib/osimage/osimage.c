/* OS image measurement documents (osimage.h). The CBOR document is read by
 * libcbor after a bounded pre-scan of its structure with cvm_rd: libcbor
 * allocates what a container's header announces before it reads the
 * elements (a 30-byte input announcing 2^31 elements asks for 16 GiB), so
 * no header reaches it before the pre-scan has checked that the bytes for
 * every element exist, that the nesting stays shallow and that the items
 * stay few. The checksum file is read by the bounded reader. */
#include <cbor.h>
#include <stdio.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/osimage.h>

#define MEASUREMENT_NAME "measurement.tdx.cbor"
#define CBOR_DEPTH_MAX 8u   /* the document nests three deep */
#define CBOR_ITEMS_MAX 256u /* it holds about 20 items */

/* The keys this parser knows, one bit each (a key seen twice is an error). */
enum {
	K_VERSION = 1u << 0,
	K_IMAGE = 1u << 1,
	K_TDVF = 1u << 2,
	K_KERNEL = 1u << 3,
	K_CMDLINE = 1u << 4,
	K_INITRD = 1u << 5,
	K_OVMF = 1u << 6,
	K_MRTD = 1u << 7,
	K_TD_HOB = 1u << 8,
	K_SINGLE = 1u << 9,
	K_TWO = 1u << 10,
};

struct cbor_ctx {
	struct cvm_osimage_tdx *out;
	unsigned seen;
	char *err;
	size_t err_len;
};

static int fail(struct cbor_ctx *c, const char *what)
{
	if (c->err != NULL && c->err_len != 0)
		(void)snprintf(c->err, c->err_len, "measurement document: %s", what);
	return CVM_E_FORMAT;
}

/* key_is compares a definite text-string key with `name`. */
static bool key_is(cbor_item_t *key, const char *name)
{
	size_t n = strlen(name);

	return cbor_isa_string(key) && cbor_string_is_definite(key) && cbor_string_length(key) == n &&
	       memcmp(cbor_string_handle(key), name, n) == 0;
}

static int take_key(struct cbor_ctx *c, unsigned bit, const char *name)
{
	char what[80];

	if ((c->seen & bit) != 0) {
		(void)snprintf(what, sizeof(what), "\"%s\" appears twice", name);
		return fail(c, what);
	}
	c->seen |= bit;
	return CVM_OK;
}

/* digest48 copies a definite 48-byte byte string. */
static int digest48(struct cbor_ctx *c, cbor_item_t *v, const char *name, uint8_t out[48])
{
	char what[96];

	if (!cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v) || cbor_bytestring_length(v) != 48) {
		(void)snprintf(what, sizeof(what), "\"%s\" is not a 48-byte byte string", name);
		return fail(c, what);
	}
	memcpy(out, cbor_bytestring_handle(v), 48);
	return CVM_OK;
}

static int parse_mrtd(struct cbor_ctx *c, cbor_item_t *m)
{
	struct cbor_pair *p;
	int r;

	if (!cbor_isa_map(m) || !cbor_map_is_definite(m))
		return fail(c, "\"tdvf.mrtd\" is not a map");
	p = cbor_map_handle(m);
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		if (key_is(p[i].key, "single_pass")) {
			r = take_key(c, K_SINGLE, "single_pass");
			if (r == CVM_OK)
				r = digest48(c, p[i].value, "tdvf.mrtd.single_pass",
				             c->out->mrtd_single_pass);
			c->out->has_single_pass = r == CVM_OK;
		} else if (key_is(p[i].key, "two_pass")) {
			r = take_key(c, K_TWO, "two_pass");
			if (r == CVM_OK)
				r = digest48(c, p[i].value, "tdvf.mrtd.two_pass", c->out->mrtd_two_pass);
			c->out->has_two_pass = r == CVM_OK;
		} else {
			r = CVM_OK;
		}
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

static int parse_image(struct cbor_ctx *c, cbor_item_t *m)
{
	struct cbor_pair *p;
	int r;

	if (!cbor_isa_map(m) || !cbor_map_is_definite(m))
		return fail(c, "\"image\" is not a map");
	p = cbor_map_handle(m);
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		if (key_is(p[i].key, "kernel_authenticode")) {
			r = take_key(c, K_KERNEL, "kernel_authenticode");
			if (r == CVM_OK)
				r = digest48(c, p[i].value, "image.kernel_authenticode",
				             c->out->kernel_authenticode);
		} else if (key_is(p[i].key, "cmdline_sha384")) {
			r = take_key(c, K_CMDLINE, "cmdline_sha384");
			if (r == CVM_OK)
				r = digest48(c, p[i].value, "image.cmdline_sha384", c->out->cmdline_sha384);
		} else if (key_is(p[i].key, "initrd_sha384")) {
			r = take_key(c, K_INITRD, "initrd_sha384");
			if (r == CVM_OK)
				r = digest48(c, p[i].value, "image.initrd_sha384", c->out->initrd_sha384);
		} else {
			r = CVM_OK;
		}
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

static int parse_tdvf(struct cbor_ctx *c, cbor_item_t *m)
{
	struct cbor_pair *p;
	int r;

	if (!cbor_isa_map(m) || !cbor_map_is_definite(m))
		return fail(c, "\"tdvf\" is not a map");
	p = cbor_map_handle(m);
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		cbor_item_t *v = p[i].value;

		if (key_is(p[i].key, "ovmf")) {
			r = take_key(c, K_OVMF, "ovmf");
			if (r != CVM_OK)
				return r;
			if (!cbor_isa_string(v) || !cbor_string_is_definite(v) ||
			    cbor_string_length(v) >= sizeof(c->out->ovmf) ||
			    memchr(cbor_string_handle(v), 0, cbor_string_length(v)) != NULL)
				return fail(c, "\"tdvf.ovmf\" is not a short text string");
			memcpy(c->out->ovmf, cbor_string_handle(v), cbor_string_length(v));
			c->out->ovmf[cbor_string_length(v)] = '\0';
		} else if (key_is(p[i].key, "mrtd")) {
			r = take_key(c, K_MRTD, "mrtd");
			if (r == CVM_OK)
				r = parse_mrtd(c, v);
			if (r != CVM_OK)
				return r;
		} else if (key_is(p[i].key, "td_hob")) {
			r = take_key(c, K_TD_HOB, "td_hob");
			if (r != CVM_OK)
				return r;
			if (!cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v) ||
			    cbor_bytestring_length(v) > sizeof(c->out->td_hob))
				return fail(c, "\"tdvf.td_hob\" is not a byte string of at most 64 bytes");
			memcpy(c->out->td_hob, cbor_bytestring_handle(v), cbor_bytestring_length(v));
			c->out->td_hob_len = cbor_bytestring_length(v);
		}
	}
	return CVM_OK;
}

struct scan {
	unsigned items;
};

/* cbor_arg reads the argument of an initial byte (RFC 8949 3.1); only
 * definite lengths: an indefinite one (31) and the reserved 28..30 fail. */
static bool cbor_arg(struct cvm_rd *r, uint8_t ai, uint64_t *out)
{
	uint8_t b8;
	uint16_t b16;
	uint32_t b32;

	if (ai < 24) {
		*out = ai;
		return true;
	}
	switch (ai) {
	case 24:
		if (!cvm_rd_u8(r, &b8))
			return false;
		*out = b8;
		return true;
	case 25:
		if (!cvm_rd_u16be(r, &b16))
			return false;
		*out = b16;
		return true;
	case 26:
		if (!cvm_rd_u32be(r, &b32))
			return false;
		*out = b32;
		return true;
	case 27:
		return cvm_rd_u64be(r, out);
	default:
		return false;
	}
}

/* cbor_scan checks one data item: every length within the bytes left, every
 * container's element count no larger than the bytes left (each element
 * takes one byte at least), nesting and item count capped. */
static bool cbor_scan(struct cvm_rd *r, struct scan *s, unsigned depth)
{
	uint8_t ib, major, ai;
	uint64_t arg, n;

	if (depth > CBOR_DEPTH_MAX || ++s->items > CBOR_ITEMS_MAX || !cvm_rd_u8(r, &ib))
		return false;
	major = (uint8_t)(ib >> 5);
	ai = (uint8_t)(ib & 0x1f);
	if (major == 7) /* simple values and floats: the argument is the value */
		return cbor_arg(r, ai, &arg);
	if (!cbor_arg(r, ai, &arg))
		return false;
	switch (major) {
	case 0:
	case 1:
		return true;
	case 2:
	case 3:
		return arg <= r->len && cvm_rd_skip(r, (size_t)arg);
	case 4:
	case 5:
		n = major == 5 ? 2 : 1;
		if (arg > r->len / n)
			return false;
		for (uint64_t i = 0; i < arg * n; i++)
			if (!cbor_scan(r, s, depth + 1))
				return false;
		return true;
	default: /* 6: a tag and its item */
		return cbor_scan(r, s, depth + 1);
	}
}

int cvm_osimage_tdx_parse(const uint8_t *buf, size_t len, struct cvm_osimage_tdx *out, char *err,
                          size_t err_len)
{
	struct cbor_ctx c = {.out = out, .err = err, .err_len = err_len};
	struct cbor_load_result res;
	struct scan sc = {0};
	struct cvm_rd rd;
	cbor_item_t *root = NULL;
	struct cbor_pair *p;
	int r;

	memset(out, 0, sizeof(*out));
	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (len > CVM_OSIMAGE_TDX_MAX) {
		if (err != NULL && err_len != 0)
			(void)snprintf(err, err_len,
			               "measurement document: %zu bytes, more than the %zu allowed", len,
			               CVM_OSIMAGE_TDX_MAX);
		return CVM_E_TOO_LARGE;
	}
	if (len == 0)
		return fail(&c, "empty");
	cvm_rd_init(&rd, buf, len);
	if (!cbor_scan(&rd, &sc, 0) || !cvm_rd_empty(&rd))
		return fail(&c,
		            "not one well-formed CBOR item of definite lengths within the document's bounds");
	root = cbor_load(buf, len, &res);
	if (root == NULL || res.error.code != CBOR_ERR_NONE) {
		r = res.error.code == CBOR_ERR_MEMERROR ? CVM_E_NOMEM : fail(&c, "not well-formed CBOR");
		goto out;
	}
	if (res.read != len) {
		r = fail(&c, "bytes follow the CBOR item");
		goto out;
	}
	if (!cbor_isa_map(root) || !cbor_map_is_definite(root)) {
		r = fail(&c, "not a CBOR map");
		goto out;
	}
	p = cbor_map_handle(root);
	r = CVM_OK;
	for (size_t i = 0; i < cbor_map_size(root) && r == CVM_OK; i++) {
		cbor_item_t *v = p[i].value;

		if (key_is(p[i].key, "version")) {
			r = take_key(&c, K_VERSION, "version");
			if (r == CVM_OK && (!cbor_isa_uint(v)))
				r = fail(&c, "\"version\" is not an unsigned integer");
			if (r == CVM_OK)
				out->version = cbor_get_int(v);
		} else if (key_is(p[i].key, "image")) {
			r = take_key(&c, K_IMAGE, "image");
			if (r == CVM_OK)
				r = parse_image(&c, v);
		} else if (key_is(p[i].key, "tdvf")) {
			r = take_key(&c, K_TDVF, "tdvf");
			if (r == CVM_OK)
				r = parse_tdvf(&c, v);
		}
	}
	if (r != CVM_OK)
		goto out;
	if ((c.seen & (K_KERNEL | K_CMDLINE | K_INITRD)) != (K_KERNEL | K_CMDLINE | K_INITRD)) {
		r = fail(&c, "image.kernel_authenticode, cmdline_sha384 and initrd_sha384 are required");
		goto out;
	}
	if (!out->has_single_pass && !out->has_two_pass) {
		r = fail(&c, "tdvf.mrtd has neither single_pass nor two_pass");
		goto out;
	}
out:
	if (root != NULL)
		cbor_decref(&root);
	if (r != CVM_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

int cvm_osimage_checksum_find(const uint8_t *file, size_t len, const char *name, uint8_t out[32])
{
	struct cvm_rd rd;
	size_t name_len = strlen(name);
	bool found = false;

	memset(out, 0, 32);
	if (len > CVM_OSIMAGE_CHECKSUMS_MAX)
		return CVM_E_TOO_LARGE;
	cvm_rd_init(&rd, file, len);
	while (!cvm_rd_empty(&rd)) {
		struct cvm_rd line = rd;
		const uint8_t *hex, *lp;
		size_t n = 0;
		uint8_t sep1, sep2, d[32];

		/* one line: up to '\n' (the last line may lack it) */
		while (n < rd.len && rd.p[n] != '\n')
			n++;
		if (!cvm_rd_sub(&rd, &line, n))
			return CVM_E_FORMAT;
		if (!cvm_rd_empty(&rd) && !cvm_rd_skip(&rd, 1))
			return CVM_E_FORMAT;
		if (!cvm_rd_bytes(&line, &hex, 64) || !cvm_rd_u8(&line, &sep1) || !cvm_rd_u8(&line, &sep2) ||
		    sep1 != ' ' || (sep2 != ' ' && sep2 != '*') || cvm_rd_empty(&line) ||
		    cvm_rd_has_nul(&line))
			return CVM_E_FORMAT;
		if (cvm_hex_decode_exact((const char *)hex, 64, d, sizeof(d)) != CVM_OK)
			return CVM_E_FORMAT;
		if (line.len != name_len || !cvm_rd_bytes(&line, &lp, name_len) ||
		    memcmp(lp, name, name_len) != 0)
			continue;
		if (found)
			return CVM_E_FORMAT;
		memcpy(out, d, 32);
		found = true;
	}
	return found ? CVM_OK : CVM_E_NOT_FOUND;
}

static void extend(uint8_t reg[48], const uint8_t digest[48])
{
	uint8_t buf[96];

	memcpy(buf, reg, 48);
	memcpy(buf + 48, digest, 48);
	cvm_sha384(buf, sizeof(buf), reg);
}

/* extend_text extends SHA-384 of a fixed string: OVMF's EV_EFI_ACTION and
 * separator events in RTMR1. */
static void extend_text(uint8_t reg[48], const void *s, size_t n)
{
	uint8_t d[48];

	cvm_sha384(s, n, d);
	extend(reg, d);
}

static void hex48(const uint8_t *p, char out[97])
{
	cvm_hex_encode(p, 48, out);
}

int cvm_osimage_tdx_bind(const struct cvm_osimage_tdx_evidence *ev, struct cvm_osimage_tdx *out,
                         struct cvm_report *rep)
{
	static const uint8_t separator[4] = {0, 0, 0, 0};
	static const char calling[] = "Calling EFI Application from Boot Option";
	static const char exit_inv[] = "Exit Boot Services Invocation";
	static const char exit_ok[] = "Exit Boot Services Returned with Success";
	struct cvm_osimage_tdx doc;
	uint8_t h[32], listed[32], rtmr1[48] = {0}, rtmr2[48] = {0};
	char err[160], a[97], b[97];
	const uint8_t *mrtd;
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (ev->os_image_hash == NULL || ev->checksum_file == NULL || ev->measurement == NULL ||
	    ev->mrtd == NULL || ev->rtmr[1] == NULL || ev->rtmr[2] == NULL) {
		cvm_report_add(
		    rep, "os image", false,
		    "the binding needs the image hash, its checksum file and measurement document, "
		    "and the quote's MRTD, RTMR1 and RTMR2");
		return CVM_E_INVAL;
	}
	if (ev->checksum_file_len > CVM_OSIMAGE_CHECKSUMS_MAX) {
		cvm_report_add(rep, "os checksum file", false, "%zu bytes, more than the %zu allowed",
		               ev->checksum_file_len, CVM_OSIMAGE_CHECKSUMS_MAX);
		return CVM_E_TOO_LARGE;
	}
	cvm_sha256(ev->checksum_file, ev->checksum_file_len, h);
	if (memcmp(h, ev->os_image_hash, 32) != 0) {
		cvm_hex_encode(h, 32, a);
		cvm_report_add(
		    rep, "os checksum file", false,
		    "SHA-256 of the checksum file is %s, not the claimed os_image_hash: the file is "
		    "not this image's",
		    a);
		return CVM_E_POLICY;
	}
	cvm_report_add(rep, "os checksum file", true, "SHA-256 of the checksum file is os_image_hash");

	r = cvm_osimage_checksum_find(ev->checksum_file, ev->checksum_file_len, MEASUREMENT_NAME, listed);
	if (r != CVM_OK) {
		cvm_report_add(
		    rep, "os measurement listed", false,
		    r == CVM_E_NOT_FOUND
		        ? "the checksum file does not list " MEASUREMENT_NAME
		        : "the checksum file is not in sha256sum format, or lists " MEASUREMENT_NAME
		          " twice");
		return r == CVM_E_NOT_FOUND ? CVM_E_POLICY : r;
	}
	if (ev->measurement_len > CVM_OSIMAGE_TDX_MAX) {
		cvm_report_add(rep, "os measurement listed", false,
		               "the document has %zu bytes, more than %zu", ev->measurement_len,
		               CVM_OSIMAGE_TDX_MAX);
		return CVM_E_TOO_LARGE;
	}
	cvm_sha256(ev->measurement, ev->measurement_len, h);
	if (memcmp(h, listed, 32) != 0) {
		cvm_report_add(
		    rep, "os measurement listed", false,
		    "SHA-256 of the measurement document is not the digest the checksum file lists "
		    "for " MEASUREMENT_NAME ": it describes another image");
		return CVM_E_POLICY;
	}
	cvm_report_add(rep, "os measurement listed", true, "the checksum file lists the document's SHA-256");

	r = cvm_osimage_tdx_parse(ev->measurement, ev->measurement_len, &doc, err, sizeof(err));
	if (r != CVM_OK) {
		cvm_report_add(rep, "os measurement", false, "%s", err);
		return r;
	}
	cvm_report_add(rep, "os measurement", true, "version %llu, ovmf %s", (unsigned long long)doc.version,
	               doc.ovmf[0] != '\0' ? doc.ovmf : "(not named)");

	if (ev->single_pass ? !doc.has_single_pass : !doc.has_two_pass) {
		cvm_report_add(rep, "os mrtd", false, "the document has no %s MRTD, which this boot needs",
		               ev->single_pass ? "single_pass" : "two_pass");
		return CVM_E_POLICY;
	}
	mrtd = ev->single_pass ? doc.mrtd_single_pass : doc.mrtd_two_pass;
	if (memcmp(mrtd, ev->mrtd, 48) != 0) {
		hex48(ev->mrtd, a);
		hex48(mrtd, b);
		cvm_report_add(rep, "os mrtd", false, "the quote's MRTD %s is not the image's %s MRTD %s", a,
		               ev->single_pass ? "single_pass" : "two_pass", b);
		return CVM_E_POLICY;
	}
	cvm_report_add(rep, "os mrtd", true, "the quote's MRTD is the image's %s MRTD",
	               ev->single_pass ? "single_pass" : "two_pass");

	extend(rtmr1, doc.kernel_authenticode);
	extend_text(rtmr1, calling, sizeof(calling) - 1);
	extend_text(rtmr1, separator, sizeof(separator));
	extend_text(rtmr1, exit_inv, sizeof(exit_inv) - 1);
	extend_text(rtmr1, exit_ok, sizeof(exit_ok) - 1);
	if (memcmp(rtmr1, ev->rtmr[1], 48) != 0) {
		hex48(ev->rtmr[1], a);
		hex48(rtmr1, b);
		cvm_report_add(rep, "os rtmr1", false,
		               "the quote's RTMR1 %s is not %s, computed from the image's kernel digest", a,
		               b);
		return CVM_E_POLICY;
	}
	cvm_report_add(rep, "os rtmr1", true, "RTMR1 is the image's kernel and OVMF's boot events");

	extend(rtmr2, doc.cmdline_sha384);
	extend(rtmr2, doc.initrd_sha384);
	if (memcmp(rtmr2, ev->rtmr[2], 48) != 0) {
		hex48(ev->rtmr[2], a);
		hex48(rtmr2, b);
		cvm_report_add(
		    rep, "os rtmr2", false,
		    "the quote's RTMR2 %s is not %s, computed from the image's command line and initrd", a,
		    b);
		return CVM_E_POLICY;
	}
	cvm_report_add(rep, "os rtmr2", true, "RTMR2 is the image's command line and initrd");
	if (out != NULL)
		*out = doc;
	return CVM_OK;
}
