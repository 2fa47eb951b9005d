/* A peek at a connection's TLS ClientHello (RFC 8446 §4.1.2, §5.1; RFC 6066
 * §3 server_name; RFC 7301 ALPN): enough for the gateway to route before it
 * decides whether to terminate TLS or pass the bytes through untouched.
 *
 * Two passes: the record layer first, which only needs the five-byte
 * headers and the handshake header, so that any prefix is answered
 * TRUNCATED (or FORMAT as soon as a header byte is wrong) without looking
 * at a half-received body; then the body, once it is whole. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

#include "ingress_int.h"

#define REC_HDR 5
#define REC_HANDSHAKE 0x16
#define REC_PAYLOAD_MAX 16384 /* TLSPlaintext.length: at most 2^14 */
#define HS_HDR 4
#define HS_CLIENT_HELLO 0x01
#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_SUPPORTED_VERSIONS 43
#define SNI_HOST_NAME 0
#define SESSION_ID_MAX 32

static bool rd_sub_u8(struct cvm_rd *r, struct cvm_rd *sub)
{
	struct cvm_rd save = *r;
	uint8_t n;

	if (!cvm_rd_u8(r, &n) || !cvm_rd_sub(r, sub, n)) {
		*r = save;
		return false;
	}
	return true;
}

/* One server_name entry, of type host_name, and a host name in it: several
 * entries are refused, as a name the gateway and the app could read
 * differently would route one way and be served another. */
static int parse_sni(struct cvm_rd ext, struct cvm_clienthello *out)
{
	struct cvm_rd list, name;
	uint8_t type;

	if (!cvm_rd_sub_u16be(&ext, &list) || !cvm_rd_empty(&ext) || !cvm_rd_u8(&list, &type) ||
	    !cvm_rd_sub_u16be(&list, &name) || !cvm_rd_empty(&list))
		return CVM_E_FORMAT;
	if (type != SNI_HOST_NAME || ingress_name_check((const char *)name.p, name.len, NULL) != CVM_OK)
		return CVM_E_FORMAT;
	memcpy(out->sni, name.p, name.len);
	out->sni[name.len] = '\0';
	out->sni_len = name.len;
	out->has_sni = true;
	return CVM_OK;
}

static int parse_alpn(struct cvm_rd ext, struct cvm_clienthello *out)
{
	struct cvm_rd list, proto;

	if (!cvm_rd_sub_u16be(&ext, &list) || !cvm_rd_empty(&ext) || cvm_rd_empty(&list))
		return CVM_E_FORMAT;
	while (!cvm_rd_empty(&list)) {
		if (!rd_sub_u8(&list, &proto) || proto.len == 0)
			return CVM_E_FORMAT;
		if (proto.len == 2 && memcmp(proto.p, "h2", 2) == 0)
			out->alpn_h2 = true;
		else if (proto.len == 8 && memcmp(proto.p, "http/1.1", 8) == 0)
			out->alpn_http11 = true;
		out->n_alpn++;
	}
	return CVM_OK;
}

static int parse_versions(struct cvm_rd ext, struct cvm_clienthello *out)
{
	struct cvm_rd list;
	uint16_t v;

	if (!rd_sub_u8(&ext, &list) || !cvm_rd_empty(&ext) || list.len < 2 || list.len % 2 != 0)
		return CVM_E_FORMAT;
	while (cvm_rd_u16be(&list, &v))
		if (v == 0x0304)
			out->tls13 = true;
	return CVM_OK;
}

/* parse_body reads the ClientHello body (after the handshake header). */
static int parse_body(const uint8_t *p, size_t n, struct cvm_clienthello *out)
{
	struct cvm_rd r, sid, suites, comp, exts, data;
	bool seen_sni = false, seen_alpn = false, seen_sv = false;
	uint16_t version, type;
	int rc;

	cvm_rd_init(&r, p, n);
	if (!cvm_rd_u16be(&r, &version) || !cvm_rd_skip(&r, 32) || !rd_sub_u8(&r, &sid) ||
	    !cvm_rd_sub_u16be(&r, &suites) || !rd_sub_u8(&r, &comp))
		return CVM_E_FORMAT;
	if (version >> 8 != 3 || sid.len > SESSION_ID_MAX || suites.len < 2 || suites.len % 2 != 0 ||
	    comp.len == 0)
		return CVM_E_FORMAT;
	/* extensions may be absent altogether (an SSL 3.0 / TLS 1.0 hello) */
	if (cvm_rd_empty(&r))
		return CVM_OK;
	if (!cvm_rd_sub_u16be(&r, &exts) || !cvm_rd_empty(&r))
		return CVM_E_FORMAT;
	while (!cvm_rd_empty(&exts)) {
		if (!cvm_rd_u16be(&exts, &type) || !cvm_rd_sub_u16be(&exts, &data))
			return CVM_E_FORMAT;
		rc = CVM_OK;
		switch (type) {
		case EXT_SERVER_NAME:
			rc = seen_sni ? CVM_E_FORMAT : parse_sni(data, out);
			seen_sni = true;
			break;
		case EXT_ALPN:
			rc = seen_alpn ? CVM_E_FORMAT : parse_alpn(data, out);
			seen_alpn = true;
			break;
		case EXT_SUPPORTED_VERSIONS:
			rc = seen_sv ? CVM_E_FORMAT : parse_versions(data, out);
			seen_sv = true;
			break;
		default:
			break;
		}
		if (rc != CVM_OK)
			return rc;
	}
	return CVM_OK;
}

/* need_at_least is the smallest total length that could hold the rest of
 * the message once the record that ends at `rec_end` is in: nothing more
 * when it completes the message, else one more record header and the
 * handshake bytes still missing (`hs` are those the records up to rec_end
 * hold; while the length is unknown, the rest of its header and one byte,
 * or nothing when the record holds the whole header, as it may hold all). */
static size_t need_at_least(size_t rec_end, size_t hs, size_t want)
{
	size_t missing;

	if (want != 0)
		missing = want - hs;
	else
		missing = hs < HS_HDR ? HS_HDR - hs + 1 : 0; /* the body is not empty */
	return missing == 0 ? rec_end : rec_end + REC_HDR + missing;
}

int cvm_clienthello_parse(const uint8_t *buf, size_t len, struct cvm_clienthello *out, size_t *need)
{
	uint8_t hs_hdr[HS_HDR];
	size_t pos = 0, have = 0, want = 0, hs_hdr_n = 0, n_rec = 0;
	uint8_t *msg = NULL;
	const uint8_t *body;
	int r;

	if (need != NULL)
		*need = 0;
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (out == NULL || (buf == NULL && len != 0))
		return CVM_E_INVAL;
	/* Pass 1: the records. `have` counts handshake bytes seen, `want` is
	 * the message's length once its header is known. */
	for (;;) {
		size_t avail = len - pos, reclen, got;

		if (avail >= 1 && buf[pos] != REC_HANDSHAKE)
			return CVM_E_FORMAT; /* HTTP, SSLv2 (high bit set), an alert, data */
		if (avail >= 2 && buf[pos + 1] != 3)
			return CVM_E_FORMAT;
		if (avail >= 3 && buf[pos + 2] > 4)
			return CVM_E_FORMAT;
		if (avail < REC_HDR) {
			/* the next record may carry all that is missing */
			if (need != NULL)
				*need = need_at_least(pos, have, want);
			return CVM_E_TRUNCATED;
		}
		reclen = (size_t)buf[pos + 3] << 8 | buf[pos + 4];
		/* an empty handshake record is forbidden (RFC 8446 §5.1) */
		if (reclen == 0 || reclen > REC_PAYLOAD_MAX)
			return CVM_E_FORMAT;
		got = avail - REC_HDR < reclen ? avail - REC_HDR : reclen;
		for (size_t i = 0; i < got && hs_hdr_n < HS_HDR; i++)
			hs_hdr[hs_hdr_n++] = buf[pos + REC_HDR + i];
		if (hs_hdr_n >= 1 && hs_hdr[0] != HS_CLIENT_HELLO)
			return CVM_E_FORMAT;
		if (hs_hdr_n == HS_HDR && want == 0) {
			size_t hlen = (size_t)hs_hdr[1] << 16 | (size_t)hs_hdr[2] << 8 | hs_hdr[3];

			if (hlen > CVM_CLIENTHELLO_MAX)
				return CVM_E_TOO_LARGE;
			if (hlen == 0)
				return CVM_E_FORMAT;
			want = HS_HDR + hlen;
		}
		/* a record that goes on past the ClientHello holds another
		 * handshake message, which no client sends before the server's */
		if (want != 0 && have + reclen > want)
			return CVM_E_FORMAT;
		if (got < reclen) {
			if (need != NULL)
				*need = need_at_least(pos + REC_HDR + reclen, have + reclen, want);
			return CVM_E_TRUNCATED;
		}
		have += reclen;
		pos += REC_HDR + reclen;
		n_rec++;
		if (want != 0 && have == want)
			break;
	}
	/* Pass 2: the body, gathered when it spans records. */
	if (n_rec == 1) {
		body = buf + REC_HDR + HS_HDR;
	} else {
		size_t at = 0;

		msg = malloc(want);
		if (msg == NULL)
			return CVM_E_NOMEM;
		for (size_t p = 0; p < pos;) {
			size_t reclen = (size_t)buf[p + 3] << 8 | buf[p + 4];

			memcpy(msg + at, buf + p + REC_HDR, reclen);
			at += reclen;
			p += REC_HDR + reclen;
		}
		body = msg + HS_HDR;
	}
	r = parse_body(body, want - HS_HDR, out);
	free(msg);
	if (r != CVM_OK) {
		memset(out, 0, sizeof(*out));
		return r;
	}
	out->record_bytes = pos;
	return CVM_OK;
}
