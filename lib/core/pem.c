/* PEM framing (RFC 7468 "strict" encapsulation): the one reader of
 * "-----BEGIN <label>-----" blocks in cvmkit. Certificates, CRLs, public and
 * private keys all come through here; what the block holds is parsed by the
 * caller, once. */
#include <string.h>

#include <cvmkit/encoding.h>

#define PEM_BEGIN "-----BEGIN "
#define PEM_END "-----END "
#define PEM_DASHES "-----"

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void skip_space(struct cvm_rd *in)
{
	while (in->len != 0 && is_space(in->p[0]))
		(void)cvm_rd_skip(in, 1);
}

/* take_line_end consumes spaces or tabs, then an end of line (or the end
 * of the input). */
static bool take_line_end(struct cvm_rd *in)
{
	while (in->len != 0 && (in->p[0] == ' ' || in->p[0] == '\t'))
		(void)cvm_rd_skip(in, 1);
	if (in->len == 0)
		return true;
	if (in->p[0] == '\r')
		(void)cvm_rd_skip(in, 1);
	return in->len == 0 || (in->p[0] == '\n' && cvm_rd_skip(in, 1));
}

/* take_marker reads "-----BEGIN " or "-----END " (`kind`), a label of
 * printable characters other than '-', and "-----". */
static bool take_marker(struct cvm_rd *in, const char *kind, struct cvm_rd *label)
{
	size_t k = strlen(kind), n = 0;

	if (in->len < k || memcmp(in->p, kind, k) != 0)
		return false;
	while (k + n < in->len && in->p[k + n] >= 0x20 && in->p[k + n] < 0x7f && in->p[k + n] != '-')
		n++;
	if (n == 0 || in->len - k - n < sizeof(PEM_DASHES) - 1 ||
	    memcmp(in->p + k + n, PEM_DASHES, sizeof(PEM_DASHES) - 1) != 0)
		return false;
	cvm_rd_init(label, in->p + k, n);
	return cvm_rd_skip(in, k + n + sizeof(PEM_DASHES) - 1);
}

bool cvm_pem_starts(const uint8_t *p, size_t len)
{
	struct cvm_rd in;

	cvm_rd_init(&in, p, len);
	skip_space(&in);
	return in.len >= sizeof(PEM_BEGIN) - 1 && memcmp(in.p, PEM_BEGIN, sizeof(PEM_BEGIN) - 1) == 0;
}

int cvm_pem_next(struct cvm_rd *in, struct cvm_pem_block *out)
{
	struct cvm_rd r = *in, end_label;
	const uint8_t *body;

	memset(out, 0, sizeof(*out));
	skip_space(&r);
	if (!take_marker(&r, PEM_BEGIN, &out->label) || !take_line_end(&r))
		return CVM_E_FORMAT;
	body = r.p;
	/* The body runs to the next '-': base64 has none, and a header line
	 * ("Proc-Type: ...") has a ':' that cvm_pem_decode refuses. */
	while (r.len != 0 && r.p[0] != '-')
		(void)cvm_rd_skip(&r, 1);
	cvm_rd_init(&out->body, body, (size_t)(r.p - body));
	if (!take_marker(&r, PEM_END, &end_label) || end_label.len != out->label.len ||
	    memcmp(end_label.p, out->label.p, end_label.len) != 0 || !take_line_end(&r))
		return CVM_E_FORMAT;
	*in = r;
	return CVM_OK;
}

bool cvm_pem_label_is(const struct cvm_pem_block *b, const char *label)
{
	size_t n = strlen(label);

	return b->label.len == n && memcmp(b->label.p, label, n) == 0;
}

size_t cvm_pem_decoded_max(const struct cvm_pem_block *b)
{
	return b->body.len / 4 * 3 + 3;
}

static int b64_val(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int cvm_pem_decode(const struct cvm_pem_block *b, uint8_t *out, size_t out_cap, size_t *out_len)
{
	uint32_t acc = 0;
	size_t n = 0, bits = 0, chars = 0, pad = 0;

	*out_len = 0;
	for (size_t i = 0; i < b->body.len; i++) {
		uint8_t c = b->body.p[i];
		int v;

		if (is_space(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64_val(c);
		if (v < 0 || pad != 0) /* not base64, or data after the padding */
			return CVM_E_FORMAT;
		chars++;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == out_cap)
				return CVM_E_TOO_LARGE;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Whole groups of four, padding only to complete the last, and the
	 * leftover bits zero: the canonical encoding, nothing else. */
	if (chars == 0 || chars % 4 == 1 || pad > 2 || (pad != 0 && (chars + pad) % 4 != 0) ||
	    (acc & ((1u << bits) - 1)) != 0)
		return CVM_E_FORMAT;
	*out_len = n;
	return CVM_OK;
}
