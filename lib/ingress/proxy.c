/* The PROXY protocol, versions 1 (one text line) and 2 (binary), as
 * haproxy's doc/proxy-protocol.txt defines them: a load balancer in front of
 * the gateway tells it the client's address, and the gateway tells an app
 * (port_policy pp=true) the same. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

#define V1_SIG_LEN (sizeof(v1_sig) - 1)
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_AF_UNSPEC 0x0
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_AF_UNIX 0x3
#define V2_STREAM 0x1
#define V2_DGRAM 0x2
#define V2_INET_LEN 12
#define V2_INET6_LEN 36
#define V2_UNIX_LEN 216

/* is_prefix: the `n` bytes at p match the start of `sig`. */
static bool is_prefix(const uint8_t *p, size_t n, const uint8_t *sig, size_t sig_len)
{
	return memcmp(p, sig, n < sig_len ? n : sig_len) == 0;
}

/* v1_port reads a port: 0..65535 in decimal, without leading zeros. */
static bool v1_port(const char *s, size_t n, uint16_t *out)
{
	uint32_t v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static bool v1_addr(int family, const char *s, size_t n, uint16_t port, struct sockaddr_storage *ss)
{
	char tmp[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		if (inet_pton(AF_INET, tmp, &sin.sin_addr) != 1)
			return false;
		memcpy(ss, &sin, sizeof(sin));
	} else {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(port);
		if (inet_pton(AF_INET6, tmp, &sin6.sin6_addr) != 1)
			return false;
		memcpy(ss, &sin6, sizeof(sin6));
	}
	return true;
}

/* next_token splits the line at single spaces: the token at *at, up to the
 * next space or the end; *at moves past the space. */
static bool next_token(const char *line, size_t n, size_t *at, const char **tok, size_t *tok_len)
{
	size_t start = *at, i;

	if (start >= n)
		return false;
	i = start;
	while (i < n && line[i] != ' ')
		i++;
	*tok = line + start;
	*tok_len = i - start;
	*at = i < n ? i + 1 : i;
	return *tok_len > 0 && !(i < n && i + 1 == n); /* no empty token, no trailing space */
}

static int parse_v1(const uint8_t *buf, size_t len, struct cvm_proxy_hdr *out, size_t *consumed)
{
	const char *line = (const char *)buf, *proto, *t[4];
	size_t n = 0, at = V1_SIG_LEN, proto_len, t_len[4];
	uint16_t sport, dport;
	int family;

	/* the line ends at the first CRLF; only printable ASCII before it */
	for (;;) {
		if (n >= len)
			return len >= CVM_PROXY_V1_MAX ? CVM_E_FORMAT : CVM_E_TRUNCATED;
		if (buf[n] == '\r')
			break;
		if (buf[n] < 0x20 || buf[n] > 0x7e || n + 3 > CVM_PROXY_V1_MAX)
			return CVM_E_FORMAT;
		n++;
	}
	if (n + 1 >= len)
		return CVM_E_TRUNCATED;
	if (buf[n + 1] != '\n')
		return CVM_E_FORMAT;
	if (!next_token(line, n, &at, &proto, &proto_len))
		return CVM_E_FORMAT;
	if (proto_len == 7 && memcmp(proto, "UNKNOWN", 7) == 0) {
		/* whatever follows UNKNOWN is to be ignored (the spec's words) */
		out->version = 1;
		out->family = AF_UNSPEC;
		*consumed = n + 2;
		return CVM_OK;
	}
	if (proto_len == 4 && memcmp(proto, "TCP4", 4) == 0)
		family = AF_INET;
	else if (proto_len == 4 && memcmp(proto, "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return CVM_E_FORMAT;
	for (size_t i = 0; i < 4; i++)
		if (!next_token(line, n, &at, &t[i], &t_len[i]))
			return CVM_E_FORMAT;
	if (at != n || !v1_port(t[2], t_len[2], &sport) || !v1_port(t[3], t_len[3], &dport) ||
	    !v1_addr(family, t[0], t_len[0], sport, &out->src) ||
	    !v1_addr(family, t[1], t_len[1], dport, &out->dst))
		return CVM_E_FORMAT;
	out->version = 1;
	out->family = family;
	*consumed = n + 2;
	return CVM_OK;
}

static int parse_v2(const uint8_t *buf, size_t len, struct cvm_proxy_hdr *out, size_t *consumed)
{
	struct cvm_rd r, block, tlvs;
	uint8_t ver_cmd, fam, cmd, af, proto;
	uint16_t body_len;

	cvm_rd_init(&r, buf, len);
	if (!cvm_rd_skip(&r, sizeof(v2_sig)) || !cvm_rd_u8(&r, &ver_cmd))
		return CVM_E_TRUNCATED;
	if (ver_cmd >> 4 != 2)
		return CVM_E_FORMAT;
	cmd = ver_cmd & 0x0f;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return CVM_E_FORMAT;
	if (!cvm_rd_u8(&r, &fam))
		return CVM_E_TRUNCATED;
	af = fam >> 4;
	proto = fam & 0x0f;
	if (af > V2_AF_UNIX || proto > V2_DGRAM)
		return CVM_E_FORMAT;
	if (!cvm_rd_u16be(&r, &body_len) || !cvm_rd_sub(&r, &block, body_len))
		return CVM_E_TRUNCATED;
	out->version = 2;
	out->family = AF_UNSPEC;
	*consumed = CVM_PROXY_V2_HDR + body_len;
	if (cmd == V2_CMD_LOCAL) {
		/* the receiver must ignore the address block of a LOCAL header */
		out->is_local = true;
		return CVM_OK;
	}
	if (proto == V2_DGRAM)
		return CVM_E_FORMAT; /* the gateway relays streams only */
	if (af == V2_AF_INET) {
		struct sockaddr_in s, d;

		memset(&s, 0, sizeof(s));
		memset(&d, 0, sizeof(d));
		s.sin_family = d.sin_family = AF_INET;
		/* the address and port bytes are in network order, as sockaddr keeps them */
		if (!cvm_rd_copy(&block, &s.sin_addr, 4) || !cvm_rd_copy(&block, &d.sin_addr, 4) ||
		    !cvm_rd_copy(&block, &s.sin_port, 2) || !cvm_rd_copy(&block, &d.sin_port, 2))
			return CVM_E_FORMAT;
		memcpy(&out->src, &s, sizeof(s));
		memcpy(&out->dst, &d, sizeof(d));
		out->family = AF_INET;
	} else if (af == V2_AF_INET6) {
		struct sockaddr_in6 s, d;

		memset(&s, 0, sizeof(s));
		memset(&d, 0, sizeof(d));
		s.sin6_family = d.sin6_family = AF_INET6;
		if (!cvm_rd_copy(&block, &s.sin6_addr, 16) || !cvm_rd_copy(&block, &d.sin6_addr, 16) ||
		    !cvm_rd_copy(&block, &s.sin6_port, 2) || !cvm_rd_copy(&block, &d.sin6_port, 2))
			return CVM_E_FORMAT;
		memcpy(&out->src, &s, sizeof(s));
		memcpy(&out->dst, &d, sizeof(d));
		out->family = AF_INET6;
	} else if (af == V2_AF_UNIX) {
		/* unix socket paths say nothing the gateway can use: skipped */
		if (!cvm_rd_skip(&block, V2_UNIX_LEN))
			return CVM_E_FORMAT;
	}
	/* UNSPEC: the whole block is TLVs (none is defined for it; still checked) */
	tlvs = block;
	while (!cvm_rd_empty(&block)) {
		struct cvm_rd value;
		uint8_t type;

		if (!cvm_rd_u8(&block, &type) || !cvm_rd_sub_u16be(&block, &value))
			return CVM_E_FORMAT;
		out->n_tlv++;
	}
	out->tlvs = tlvs.len != 0 ? tlvs.p : NULL;
	out->tlvs_len = tlvs.len;
	return CVM_OK;
}

int cvm_proxy_parse(const uint8_t *buf, size_t len, struct cvm_proxy_hdr *out, size_t *consumed)
{
	int r;

	if (consumed != NULL)
		*consumed = 0;
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (out == NULL || consumed == NULL || (buf == NULL && len != 0))
		return CVM_E_INVAL;
	if (len == 0)
		return CVM_E_TRUNCATED;
	if (is_prefix(buf, len, (const uint8_t *)v1_sig, V1_SIG_LEN)) {
		if (len <= V1_SIG_LEN)
			return CVM_E_TRUNCATED;
		r = parse_v1(buf, len, out, consumed);
	} else if (is_prefix(buf, len, v2_sig, sizeof(v2_sig))) {
		r = parse_v2(buf, len, out, consumed);
	} else {
		return CVM_E_FORMAT;
	}
	if (r != CVM_OK) {
		memset(out, 0, sizeof(*out));
		*consumed = 0;
	}
	return r;
}

static int build_v1(const struct cvm_proxy_hdr *h, struct cvm_wr *w)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	uint16_t sp, dp;

	if (h->family == AF_UNSPEC) {
		cvm_wr_str(w, "PROXY UNKNOWN\r\n");
		return CVM_OK;
	}
	if (h->family == AF_INET) {
		struct sockaddr_in a, b;

		memcpy(&a, &h->src, sizeof(a));
		memcpy(&b, &h->dst, sizeof(b));
		if (inet_ntop(AF_INET, &a.sin_addr, s, sizeof(s)) == NULL ||
		    inet_ntop(AF_INET, &b.sin_addr, d, sizeof(d)) == NULL)
			return CVM_E_INVAL;
		sp = ntohs(a.sin_port);
		dp = ntohs(b.sin_port);
	} else {
		struct sockaddr_in6 a, b;

		memcpy(&a, &h->src, sizeof(a));
		memcpy(&b, &h->dst, sizeof(b));
		if (inet_ntop(AF_INET6, &a.sin6_addr, s, sizeof(s)) == NULL ||
		    inet_ntop(AF_INET6, &b.sin6_addr, d, sizeof(d)) == NULL)
			return CVM_E_INVAL;
		sp = ntohs(a.sin6_port);
		dp = ntohs(b.sin6_port);
	}
	cvm_wr_fmt(w, "PROXY %s %s %s %u %u\r\n", h->family == AF_INET ? "TCP4" : "TCP6", s, d, (unsigned)sp,
	           (unsigned)dp);
	return CVM_OK;
}

static void build_v2(const struct cvm_proxy_hdr *h, struct cvm_wr *w)
{
	cvm_wr_bytes(w, v2_sig, sizeof(v2_sig));
	if (h->family == AF_UNSPEC) {
		cvm_wr_u8(w, 0x20 | V2_CMD_LOCAL);
		cvm_wr_u8(w, 0x00);
		cvm_wr_u16be(w, 0);
	} else if (h->family == AF_INET) {
		struct sockaddr_in a, b;

		memcpy(&a, &h->src, sizeof(a));
		memcpy(&b, &h->dst, sizeof(b));
		cvm_wr_u8(w, 0x20 | V2_CMD_PROXY);
		cvm_wr_u8(w, V2_AF_INET << 4 | V2_STREAM);
		cvm_wr_u16be(w, V2_INET_LEN);
		cvm_wr_bytes(w, &a.sin_addr, 4);
		cvm_wr_bytes(w, &b.sin_addr, 4);
		cvm_wr_bytes(w, &a.sin_port, 2);
		cvm_wr_bytes(w, &b.sin_port, 2);
	} else {
		struct sockaddr_in6 a, b;

		memcpy(&a, &h->src, sizeof(a));
		memcpy(&b, &h->dst, sizeof(b));
		cvm_wr_u8(w, 0x20 | V2_CMD_PROXY);
		cvm_wr_u8(w, V2_AF_INET6 << 4 | V2_STREAM);
		cvm_wr_u16be(w, V2_INET6_LEN);
		cvm_wr_bytes(w, &a.sin6_addr, 16);
		cvm_wr_bytes(w, &b.sin6_addr, 16);
		cvm_wr_bytes(w, &a.sin6_port, 2);
		cvm_wr_bytes(w, &b.sin6_port, 2);
	}
}

int cvm_proxy_build(const struct cvm_proxy_hdr *h, int version, uint8_t *out, size_t cap, size_t *len)
{
	struct cvm_wr w;
	int r = CVM_OK;

	if (len != NULL)
		*len = 0;
	if (h == NULL || out == NULL || len == NULL || (version != 1 && version != 2))
		return CVM_E_INVAL;
	if (h->family != AF_UNSPEC && h->family != AF_INET && h->family != AF_INET6)
		return CVM_E_INVAL;
	if (h->family != AF_UNSPEC && (h->src.ss_family != h->family || h->dst.ss_family != h->family))
		return CVM_E_INVAL;
	cvm_wr_init_fixed(&w, out, cap);
	if (version == 1)
		r = build_v1(h, &w);
	else
		build_v2(h, &w);
	if (r != CVM_OK)
		return r;
	if (w.err)
		return CVM_E_TOO_LARGE;
	*len = w.len;
	return CVM_OK;
}
