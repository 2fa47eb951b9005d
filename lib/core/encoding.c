#include <stdlib.h>
#include <string.h>

#include <cvmkit/encoding.h>
#include <cvmkit/secret.h>

static const char hexdig[] = "0123456789abcdef";

void cvm_hex_encode(const uint8_t *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hexdig[in[i] >> 4];
		out[2 * i + 1] = hexdig[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

char *cvm_hex_encode_new(const uint8_t *in, size_t len)
{
	char *s;

	if (len > (SIZE_MAX - 1) / 2)
		return NULL;
	s = malloc(2 * len + 1);
	if (s != NULL)
		cvm_hex_encode(in, len, s);
	return s;
}

/* Branch-free nibble decode: returns 0..15, or a value > 15 for a non-hex byte. */
static unsigned hex_nibble(unsigned char c)
{
	unsigned d = (unsigned)c - '0';
	unsigned l = ((unsigned)c | 0x20u) - 'a';
	unsigned dmask = (unsigned)-(d < 10);
	unsigned lmask = (unsigned)-(l < 6);

	return (d & dmask) | ((l + 10) & lmask) | (~(dmask | lmask) & 0x100u);
}

int cvm_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
	unsigned bad = 0;

	*out_len = 0;
	if (hex_len % 2 != 0)
		return CVM_E_FORMAT;
	if (hex_len / 2 > out_cap)
		return CVM_E_TOO_LARGE;
	for (size_t i = 0; i < hex_len / 2; i++) {
		unsigned hi = hex_nibble((unsigned char)hex[2 * i]);
		unsigned lo = hex_nibble((unsigned char)hex[2 * i + 1]);

		bad |= (hi | lo) & 0x100u;
		out[i] = (uint8_t)((hi << 4) | (lo & 0xfu));
	}
	if (bad != 0) {
		cvm_wipe(out, hex_len / 2);
		return CVM_E_FORMAT;
	}
	*out_len = hex_len / 2;
	return CVM_OK;
}

int cvm_hex_decode_exact(const char *hex, size_t hex_len, uint8_t *out, size_t out_len)
{
	size_t n;

	if (hex_len != 2 * out_len)
		return CVM_E_FORMAT;
	return cvm_hex_decode(hex, hex_len, out, out_len, &n);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cvm_base64_encode_new(const uint8_t *in, size_t len)
{
	const char pad = '=';
	size_t olen, j = 0;
	char *s;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	olen = (len + 2) / 3 * 4;
	s = malloc(olen + 1);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		s[j++] = b64[(v >> 18) & 63];
		s[j++] = b64[(v >> 12) & 63];
		s[j++] = pad;
		s[j++] = pad;
		if (i + 1 < len)
			s[j - 2] = b64[(v >> 6) & 63];
		if (i + 2 < len)
			s[j - 1] = b64[v & 63];
	}
	s[j] = '\0';
	return s;
}

static int b64_val(unsigned char c)
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

int cvm_base64_decode(const char *in, size_t in_len, size_t max, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = NULL;
	uint32_t acc = 0;
	size_t n = 0, bits = 0, pad = 0;
	int r = CVM_E_FORMAT;

	*out = NULL;
	*out_len = 0;
	while (in_len > 0 && in[in_len - 1] == '=' && pad < 2) {
		in_len--;
		pad++;
	}
	if (in_len % 4 == 1 || (pad != 0 && (in_len + pad) % 4 != 0))
		return CVM_E_FORMAT;
	if (in_len / 4 > max / 3 + 1)
		return CVM_E_TOO_LARGE;
	buf = malloc(in_len / 4 * 3 + 3);
	if (buf == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < in_len; i++) {
		int v = b64_val((unsigned char)in[i]);

		if (v < 0)
			goto out;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero (canonical encoding). */
	if ((acc & ((1u << bits) - 1)) != 0)
		goto out;
	if (n > max) {
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	*out = buf;
	*out_len = n;
	buf = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_freezero(buf, in_len / 4 * 3 + 3);
	return r;
}

/* ---- PEM (RFC 7468 "strict" encapsulation) ------------------------------
 * The one reader of "-----BEGIN <label>-----" blocks in cvmkit: certificates,
 * CRLs, public and private keys all come through here; what a block holds is
 * parsed by the caller, once. */

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
