/* The userspace backend's text protocol (wireguard-go's UAPI, served on
 * <dir>/<ifname>.sock): "set=1" / "get=1" requests of key=value lines ended
 * by an empty line, answered with "errno=N" and an empty line. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/secret.h>

#include "wg_int.h"

static void put_hex(struct cvm_wr *w, const char *key, const uint8_t *k)
{
	static const char hex[] = "0123456789abcdef";
	char line[CVM_WG_KEY_LEN * 2];

	for (size_t i = 0; i < CVM_WG_KEY_LEN; i++) {
		line[2 * i] = hex[k[i] >> 4];
		line[2 * i + 1] = hex[k[i] & 15];
	}
	cvm_wr_str(w, key);
	cvm_wr_u8(w, '=');
	cvm_wr_bytes(w, line, sizeof(line));
	cvm_wr_u8(w, '\n');
	cvm_wipe(line, sizeof(line));
}

int wg_uapi_build_set(const struct cvm_wg_device *d, char **out, size_t *out_len)
{
	struct cvm_wr w;
	uint8_t *buf = NULL;
	int r;

	*out = NULL;
	*out_len = 0;
	r = wg_check_device(d);
	if (r != CVM_OK)
		return r;
	cvm_wr_init(&w, CVM_WG_UAPI_REPLY_MAX);
	cvm_wr_str(&w, "set=1\n");
	if ((d->flags & CVM_WG_DEV_HAS_PRIVATE_KEY) != 0)
		put_hex(&w, "private_key", d->private_key->p);
	if ((d->flags & CVM_WG_DEV_HAS_LISTEN_PORT) != 0)
		cvm_wr_fmt(&w, "listen_port=%u\n", (unsigned)d->listen_port);
	if ((d->flags & CVM_WG_DEV_HAS_FWMARK) != 0)
		cvm_wr_fmt(&w, "fwmark=%" PRIu32 "\n", d->fwmark);
	if ((d->flags & CVM_WG_DEV_REPLACE_PEERS) != 0)
		cvm_wr_str(&w, "replace_peers=true\n");
	for (size_t i = 0; i < d->peer_count; i++) {
		const struct cvm_wg_peer *p = &d->peers[i];
		char a[INET6_ADDRSTRLEN];

		put_hex(&w, "public_key", p->public_key);
		if ((p->flags & CVM_WG_PEER_REMOVE) != 0) {
			cvm_wr_str(&w, "remove=true\n");
			continue;
		}
		if ((p->flags & CVM_WG_PEER_UPDATE_ONLY) != 0)
			cvm_wr_str(&w, "update_only=true\n");
		if (p->endpoint.sa.sa_family == AF_INET) {
			inet_ntop(AF_INET, &p->endpoint.in.sin_addr, a, sizeof(a));
			cvm_wr_fmt(&w, "endpoint=%s:%u\n", a, (unsigned)ntohs(p->endpoint.in.sin_port));
		} else if (p->endpoint.sa.sa_family == AF_INET6) {
			inet_ntop(AF_INET6, &p->endpoint.in6.sin6_addr, a, sizeof(a));
			cvm_wr_fmt(&w, "endpoint=[%s]:%u\n", a, (unsigned)ntohs(p->endpoint.in6.sin6_port));
		}
		if ((p->flags & CVM_WG_PEER_HAS_KEEPALIVE) != 0)
			cvm_wr_fmt(&w, "persistent_keepalive_interval=%u\n",
			           (unsigned)p->persistent_keepalive);
		if ((p->flags & CVM_WG_PEER_REPLACE_ALLOWED_IPS) != 0)
			cvm_wr_str(&w, "replace_allowed_ips=true\n");
		for (size_t j = 0; j < p->allowed_ip_count; j++) {
			const struct cvm_wg_allowed_ip *ip = &p->allowed_ips[j];

			inet_ntop(ip->family, &ip->addr, a, sizeof(a));
			cvm_wr_fmt(&w, "allowed_ip=%s/%u\n", a, (unsigned)ip->cidr);
		}
	}
	cvm_wr_u8(&w, '\n');
	r = cvm_wr_finish(&w, &buf, out_len);
	if (r != CVM_OK)
		goto out;
	*out = (char *)buf;
	buf = NULL; /* transferred */
out:
	cvm_wr_cleanup(&w);
	return r;
}

/* -- answers: untrusted -- */

#define LINE_MAX_LEN 256

/* next_line takes one line without its '\n' (required). */
static bool next_line(struct cvm_rd *in, struct cvm_rd *line)
{
	const uint8_t *nl = memchr(in->p, '\n', in->len < LINE_MAX_LEN ? in->len : LINE_MAX_LEN);

	if (in->len == 0 || nl == NULL)
		return false;
	if (!cvm_rd_sub(in, line, (size_t)(nl - in->p)) || !cvm_rd_skip(in, 1))
		return false;
	return true;
}

/* split cuts "key=value" into NUL-terminated copies (bounded by LINE_MAX_LEN). */
static bool split(struct cvm_rd line, char key[LINE_MAX_LEN], char val[LINE_MAX_LEN])
{
	const uint8_t *eq;
	size_t kl;

	if (cvm_rd_has_nul(&line))
		return false;
	eq = memchr(line.p, '=', line.len);
	if (eq == NULL)
		return false;
	kl = (size_t)(eq - line.p);
	if (kl == 0 || !cvm_rd_copy(&line, key, kl) || !cvm_rd_skip(&line, 1))
		return false;
	key[kl] = '\0';
	val[line.len] = '\0';
	return cvm_rd_copy(&line, val, line.len);
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

static bool parse_hexkey(const char *s, uint8_t out[CVM_WG_KEY_LEN])
{
	return strlen(s) == (size_t)2 * CVM_WG_KEY_LEN &&
	       cvm_hex_decode_exact(s, (size_t)2 * CVM_WG_KEY_LEN, out, CVM_WG_KEY_LEN) == 0;
}

static bool parse_endpoint(const char *s, union cvm_wg_endpoint *e)
{
	char host[LINE_MAX_LEN];
	const char *colon = strrchr(s, ':');
	uint64_t port;
	size_t hl;

	if (colon == NULL || !parse_u64(colon + 1, 65535, &port))
		return false;
	hl = (size_t)(colon - s);
	memset(e, 0, sizeof(*e));
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
		e->in6.sin6_family = AF_INET6;
		e->in6.sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &e->in6.sin6_addr) == 1;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	e->in.sin_family = AF_INET;
	e->in.sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &e->in.sin_addr) == 1;
}

static bool parse_allowed_ip(const char *s, struct cvm_wg_allowed_ip *a)
{
	char host[LINE_MAX_LEN];
	const char *slash = strchr(s, '/');
	uint64_t cidr;
	size_t hl;

	if (slash == NULL)
		return false;
	hl = (size_t)(slash - s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &a->addr.v4) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, host, &a->addr.v6) == 1)
		a->family = AF_INET6;
	else
		return false;
	if (!parse_u64(slash + 1, a->family == AF_INET ? 32 : 128, &cidr))
		return false;
	a->cidr = (uint8_t)cidr;
	return true;
}

int wg_uapi_parse_errno(const uint8_t *buf, size_t len, int *err)
{
	char key[LINE_MAX_LEN], val[LINE_MAX_LEN];
	struct cvm_rd in, line, empty;
	uint64_t e;

	*err = 0;
	cvm_rd_init(&in, buf, len);
	if (!next_line(&in, &line) || !next_line(&in, &empty))
		return CVM_E_TRUNCATED;
	if (!cvm_rd_empty(&empty) || !cvm_rd_empty(&in) || !split(line, key, val) ||
	    strcmp(key, "errno") != 0 || !parse_u64(val, 4095, &e))
		return CVM_E_FORMAT;
	*err = (int)e;
	return CVM_OK;
}

int wg_uapi_parse_get(struct wg_dev_builder *b, const uint8_t *buf, size_t len)
{
	char key[LINE_MAX_LEN], val[LINE_MAX_LEN];
	struct cvm_wg_device *d = b->dev;
	struct cvm_rd in, line;
	int r = CVM_OK;

	if (len > CVM_WG_UAPI_REPLY_MAX)
		return CVM_E_TOO_LARGE;
	cvm_rd_init(&in, buf, len);
	for (;;) {
		struct cvm_wg_peer *p = wg_b_last_peer(b);
		uint64_t v;

		if (!next_line(&in, &line))
			return CVM_E_TRUNCATED;
		if (!split(line, key, val))
			return CVM_E_FORMAT;
		if (strcmp(key, "errno") == 0) {
			struct cvm_rd empty;

			if (!parse_u64(val, 4095, &v))
				return CVM_E_FORMAT;
			if (!next_line(&in, &empty))
				return CVM_E_TRUNCATED;
			if (!cvm_rd_empty(&empty) || !cvm_rd_empty(&in))
				return CVM_E_FORMAT;
			if (v != 0) {
				errno = (int)v;
				return CVM_E_SYSTEM;
			}
			return CVM_OK;
		}
		if (strcmp(key, "private_key") == 0) {
			uint8_t k[CVM_WG_KEY_LEN];

			if (p != NULL || !parse_hexkey(val, k))
				r = CVM_E_FORMAT;
			else
				r = wg_b_set_private(b, k);
			cvm_wipe(k, sizeof(k));
		} else if (strcmp(key, "listen_port") == 0 && p == NULL) {
			if (!parse_u64(val, 65535, &v))
				return CVM_E_FORMAT;
			d->listen_port = (uint16_t)v;
			d->flags |= CVM_WG_DEV_HAS_LISTEN_PORT;
		} else if (strcmp(key, "fwmark") == 0 && p == NULL) {
			if (!parse_u64(val, UINT32_MAX, &v))
				return CVM_E_FORMAT;
			d->fwmark = (uint32_t)v;
			d->flags |= CVM_WG_DEV_HAS_FWMARK;
		} else if (strcmp(key, "public_key") == 0) {
			uint8_t k[CVM_WG_KEY_LEN];

			if (!parse_hexkey(val, k))
				return CVM_E_FORMAT;
			r = wg_b_add_peer(b, k);
		} else if (p == NULL) {
			return CVM_E_FORMAT; /* a peer key before any peer */
		} else if (strcmp(key, "preshared_key") == 0 || strcmp(key, "protocol_version") == 0) {
			/* not returned */
		} else if (strcmp(key, "endpoint") == 0) {
			if (!parse_endpoint(val, &p->endpoint))
				return CVM_E_FORMAT;
		} else if (strcmp(key, "last_handshake_time_sec") == 0) {
			if (!parse_u64(val, INT64_MAX, &v))
				return CVM_E_FORMAT;
			p->last_handshake_sec = (int64_t)v;
		} else if (strcmp(key, "last_handshake_time_nsec") == 0) {
			if (!parse_u64(val, 999999999, &v))
				return CVM_E_FORMAT;
			p->last_handshake_nsec = (int64_t)v;
		} else if (strcmp(key, "rx_bytes") == 0) {
			if (!parse_u64(val, UINT64_MAX, &p->rx_bytes))
				return CVM_E_FORMAT;
		} else if (strcmp(key, "tx_bytes") == 0) {
			if (!parse_u64(val, UINT64_MAX, &p->tx_bytes))
				return CVM_E_FORMAT;
		} else if (strcmp(key, "persistent_keepalive_interval") == 0) {
			if (!parse_u64(val, 65535, &v))
				return CVM_E_FORMAT;
			p->persistent_keepalive = (uint16_t)v;
		} else if (strcmp(key, "allowed_ip") == 0) {
			struct cvm_wg_allowed_ip a;

			if (!parse_allowed_ip(val, &a))
				return CVM_E_FORMAT;
			r = wg_b_add_ip(b, &a);
		}
		/* any other key: a newer server's; ignored as wg(8) ignores it */
		if (r != CVM_OK)
			return r;
	}
}
