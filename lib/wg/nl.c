/* The kernel backend's messages: WG_CMD_SET_DEVICE built with libmnl, the
 * WG_CMD_GET_DEVICE dump's replies read with lib/core's bounded reader
 * (netlink is host-endian, so fields are copied, never byte-swapped). */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/err.h>
#include <cvmkit/secret.h>

#include "wg_int.h"

static int msgs_push(struct wg_msgs *m, const uint8_t *buf, size_t len)
{
	uint8_t **nb;
	size_t *nl;
	uint8_t *copy;

	nb = wg_grow(m->buf, m->count * sizeof(*nb), (m->count + 1) * sizeof(*nb));
	if (nb == NULL)
		return CVM_E_NOMEM;
	m->buf = nb;
	nl = wg_grow(m->len, m->count * sizeof(*nl), (m->count + 1) * sizeof(*nl));
	if (nl == NULL)
		return CVM_E_NOMEM;
	m->len = nl;
	copy = malloc(len);
	if (copy == NULL)
		return CVM_E_NOMEM;
	memcpy(copy, buf, len);
	m->buf[m->count] = copy;
	m->len[m->count] = len;
	m->count++;
	return CVM_OK;
}

static struct nlmsghdr *msg_start(uint8_t *buf, uint16_t family, uint8_t cmd, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = WG_GENL_VERSION;
	return nlh;
}

/* put_peer_head adds what a peer says once, in its first message. */
static bool put_peer_head(struct nlmsghdr *nlh, size_t max, const struct cvm_wg_peer *p)
{
	uint32_t f = 0;

	if ((p->flags & CVM_WG_PEER_REMOVE) != 0)
		f |= WGPEER_F_REMOVE_ME;
	if ((p->flags & CVM_WG_PEER_REPLACE_ALLOWED_IPS) != 0)
		f |= WGPEER_F_REPLACE_ALLOWEDIPS;
	if ((p->flags & CVM_WG_PEER_UPDATE_ONLY) != 0)
		f |= WGPEER_F_UPDATE_ONLY;
	if (f != 0 && !mnl_attr_put_u32_check(nlh, max, WGPEER_A_FLAGS, f))
		return false;
	if (p->endpoint.sa.sa_family == AF_INET &&
	    !mnl_attr_put_check(nlh, max, WGPEER_A_ENDPOINT, sizeof(p->endpoint.in), &p->endpoint.in))
		return false;
	if (p->endpoint.sa.sa_family == AF_INET6 &&
	    !mnl_attr_put_check(nlh, max, WGPEER_A_ENDPOINT, sizeof(p->endpoint.in6), &p->endpoint.in6))
		return false;
	if ((p->flags & CVM_WG_PEER_HAS_KEEPALIVE) != 0 &&
	    !mnl_attr_put_u16_check(nlh, max, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
	                            p->persistent_keepalive))
		return false;
	return true;
}

static bool put_ip(struct nlmsghdr *nlh, size_t max, const struct cvm_wg_allowed_ip *a)
{
	struct nlattr *n = mnl_attr_nest_start_check(nlh, max, 0);

	if (n == NULL)
		return false;
	if (!mnl_attr_put_u16_check(nlh, max, WGALLOWEDIP_A_FAMILY, a->family) ||
	    !mnl_attr_put_check(nlh, max, WGALLOWEDIP_A_IPADDR, a->family == AF_INET ? 4 : 16, &a->addr) ||
	    !mnl_attr_put_u8_check(nlh, max, WGALLOWEDIP_A_CIDR_MASK, a->cidr)) {
		mnl_attr_nest_cancel(nlh, n);
		return false;
	}
	mnl_attr_nest_end(nlh, n);
	return true;
}

int wg_nl_build_set(uint16_t family, const char *ifname, const struct cvm_wg_device *d, uint32_t seq,
                    size_t msg_max, struct wg_msgs *out)
{
	uint8_t *buf = NULL;
	size_t pi = 0, ii = 0;
	bool first = true, peer_started = false;
	int r;

	memset(out, 0, sizeof(*out));
	r = wg_check_device(d);
	if (r != CVM_OK)
		return r;
	if (msg_max < 256 || msg_max > UINT32_MAX)
		return CVM_E_INVAL;
	buf = calloc(1, msg_max);
	if (buf == NULL)
		return CVM_E_NOMEM;
	do {
		struct nlmsghdr *nlh =
		    msg_start(buf, family, WG_CMD_SET_DEVICE, NLM_F_REQUEST | NLM_F_ACK, seq++);
		struct nlattr *peers = NULL;
		size_t progress = 0;
		bool full = false;

		if (!mnl_attr_put_strz_check(nlh, msg_max, WGDEVICE_A_IFNAME, ifname)) {
			r = CVM_E_INVAL;
			goto out;
		}
		if (first) {
			if ((d->flags & CVM_WG_DEV_HAS_PRIVATE_KEY) != 0)
				mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, CVM_WG_KEY_LEN, d->private_key->p);
			if ((d->flags & CVM_WG_DEV_HAS_LISTEN_PORT) != 0)
				mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, d->listen_port);
			if ((d->flags & CVM_WG_DEV_HAS_FWMARK) != 0)
				mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, d->fwmark);
			/* the kernel replaces the peers at the first message that says so:
			 * only the first may, or later messages would undo earlier ones */
			if ((d->flags & CVM_WG_DEV_REPLACE_PEERS) != 0)
				mnl_attr_put_u32(nlh, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
			progress++;
		}
		if (pi < d->peer_count)
			peers = mnl_attr_nest_start_check(nlh, msg_max, WGDEVICE_A_PEERS);
		for (; peers != NULL && pi < d->peer_count; pi++) {
			const struct cvm_wg_peer *p = &d->peers[pi];
			struct nlattr *pn = mnl_attr_nest_start_check(nlh, msg_max, 0);
			struct nlattr *ips = NULL;
			size_t added = 0;
			bool head_now;

			if (pn == NULL ||
			    !mnl_attr_put_check(nlh, msg_max, WGPEER_A_PUBLIC_KEY, CVM_WG_KEY_LEN,
			                        p->public_key) ||
			    (!peer_started && !put_peer_head(nlh, msg_max, p))) {
				if (pn != NULL)
					mnl_attr_nest_cancel(nlh, pn);
				break; /* the message is full: this peer starts the next */
			}
			head_now = !peer_started;
			peer_started = true;
			if (ii < p->allowed_ip_count)
				ips = mnl_attr_nest_start_check(nlh, msg_max, WGPEER_A_ALLOWEDIPS);
			if (ips == NULL && ii < p->allowed_ip_count)
				full = true;
			for (; ips != NULL && ii < p->allowed_ip_count; ii++) {
				if (!put_ip(nlh, msg_max, &p->allowed_ips[ii])) {
					full = true;
					break;
				}
				added++;
			}
			if (ips != NULL && added == 0)
				mnl_attr_nest_cancel(nlh, ips);
			else if (ips != NULL)
				mnl_attr_nest_end(nlh, ips);
			mnl_attr_nest_end(nlh, pn);
			if (head_now || added > 0)
				progress++;
			if (full)
				break; /* this peer goes on in the next message */
			ii = 0;
			peer_started = false;
		}
		if (peers != NULL)
			mnl_attr_nest_end(nlh, peers);
		/* a message that carries nothing new would repeat for ever */
		if (progress == 0) {
			r = CVM_E_INTERNAL;
			goto out;
		}
		r = msgs_push(out, buf, nlh->nlmsg_len);
		if (r != CVM_OK)
			goto out;
		cvm_wipe(buf, msg_max);
		first = false;
	} while (pi < d->peer_count);
	r = CVM_OK;
out:
	cvm_freezero(buf, msg_max);
	if (r != CVM_OK)
		wg_msgs_free(out);
	return r;
}

size_t wg_nl_build_get(uint16_t family, const char *ifname, uint32_t seq, uint8_t *buf, size_t cap)
{
	struct nlmsghdr *nlh;

	if (cap < WG_NL_BUF)
		return 0;
	nlh = msg_start(buf, family, WG_CMD_GET_DEVICE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	return nlh->nlmsg_len;
}

/* -- the dump's replies: untrusted, read with struct cvm_rd -- */

/* nla_next takes one attribute: its type without the NLA_F_* bits, and its
 * payload. The padding after the last attribute may be missing. */
static bool nla_next(struct cvm_rd *r, uint16_t *type, struct cvm_rd *payload)
{
	uint16_t len, t;
	size_t pad;

	if (!cvm_rd_copy(r, &len, sizeof(len)) || !cvm_rd_copy(r, &t, sizeof(t)) || len < 4 ||
	    !cvm_rd_sub(r, payload, (size_t)len - 4))
		return false;
	pad = (size_t)((4 - (len & 3)) & 3);
	if (r->len < pad)
		pad = r->len;
	(void)cvm_rd_skip(r, pad);
	*type = (uint16_t)(t & NLA_TYPE_MASK);
	return true;
}

static bool nla_exact(const struct cvm_rd *p, void *dst, size_t n)
{
	struct cvm_rd c = *p;

	return p->len == n && cvm_rd_copy(&c, dst, n);
}

static int parse_ip(struct wg_dev_builder *b, struct cvm_rd ipr)
{
	struct cvm_wg_allowed_ip a;
	struct cvm_rd v, addr = {0};
	uint16_t type, fam = 0;
	uint8_t cidr = 0;
	bool has_fam = false, has_cidr = false;

	memset(&a, 0, sizeof(a));
	while (!cvm_rd_empty(&ipr)) {
		if (!nla_next(&ipr, &type, &v))
			return CVM_E_TRUNCATED;
		if (type == WGALLOWEDIP_A_FAMILY) {
			if (!nla_exact(&v, &fam, sizeof(fam)))
				return CVM_E_FORMAT;
			has_fam = true;
		} else if (type == WGALLOWEDIP_A_IPADDR) {
			addr = v;
		} else if (type == WGALLOWEDIP_A_CIDR_MASK) {
			if (!nla_exact(&v, &cidr, 1))
				return CVM_E_FORMAT;
			has_cidr = true;
		}
	}
	if (!has_fam || !has_cidr || (fam != AF_INET && fam != AF_INET6))
		return CVM_E_FORMAT;
	a.family = (sa_family_t)fam;
	a.cidr = cidr;
	if (!nla_exact(&addr, &a.addr, fam == AF_INET ? 4 : 16))
		return CVM_E_FORMAT;
	return wg_b_add_ip(b, &a);
}

static int parse_peer(struct wg_dev_builder *b, struct cvm_rd pr, bool first_in_msg)
{
	struct cvm_rd scan = pr, v;
	uint8_t pub[CVM_WG_KEY_LEN];
	struct cvm_wg_peer *p;
	uint16_t type;
	bool has_pub = false;
	int r;

	while (!cvm_rd_empty(&scan)) {
		if (!nla_next(&scan, &type, &v))
			return CVM_E_TRUNCATED;
		if (type == WGPEER_A_PUBLIC_KEY) {
			if (!nla_exact(&v, pub, sizeof(pub)))
				return CVM_E_FORMAT;
			has_pub = true;
		}
	}
	if (!has_pub)
		return CVM_E_FORMAT;
	p = wg_b_last_peer(b);
	/* a peer whose allowed IPs did not fit goes on, under the same key, as
	 * the first peer of the next message */
	if (!(first_in_msg && p != NULL && memcmp(p->public_key, pub, sizeof(pub)) == 0)) {
		r = wg_b_add_peer(b, pub);
		if (r != CVM_OK)
			return r;
		p = wg_b_last_peer(b);
	}
	while (!cvm_rd_empty(&pr)) {
		(void)nla_next(&pr, &type, &v); /* checked by the scan */
		switch (type) {
		case WGPEER_A_ENDPOINT: {
			uint16_t fam;
			struct cvm_rd f = v;

			if (!cvm_rd_copy(&f, &fam, sizeof(fam)))
				return CVM_E_FORMAT;
			memset(&p->endpoint, 0, sizeof(p->endpoint));
			if (fam == AF_INET && nla_exact(&v, &p->endpoint.in, sizeof(p->endpoint.in)))
				break;
			if (fam == AF_INET6 && nla_exact(&v, &p->endpoint.in6, sizeof(p->endpoint.in6)))
				break;
			return CVM_E_FORMAT;
		}
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			if (!nla_exact(&v, &p->persistent_keepalive, sizeof(p->persistent_keepalive)))
				return CVM_E_FORMAT;
			break;
		case WGPEER_A_LAST_HANDSHAKE_TIME: {
			int64_t ts[2];

			if (!nla_exact(&v, ts, sizeof(ts)) || ts[0] < 0 || ts[1] < 0 || ts[1] >= 1000000000)
				return CVM_E_FORMAT;
			p->last_handshake_sec = ts[0];
			p->last_handshake_nsec = ts[1];
			break;
		}
		case WGPEER_A_RX_BYTES:
			if (!nla_exact(&v, &p->rx_bytes, sizeof(p->rx_bytes)))
				return CVM_E_FORMAT;
			break;
		case WGPEER_A_TX_BYTES:
			if (!nla_exact(&v, &p->tx_bytes, sizeof(p->tx_bytes)))
				return CVM_E_FORMAT;
			break;
		case WGPEER_A_ALLOWEDIPS:
			while (!cvm_rd_empty(&v)) {
				struct cvm_rd ip;
				uint16_t t2;

				if (!nla_next(&v, &t2, &ip))
					return CVM_E_TRUNCATED;
				r = parse_ip(b, ip);
				if (r != CVM_OK)
					return r;
			}
			break;
		default:
			break; /* preshared key (not returned), protocol version, newer attributes */
		}
	}
	return CVM_OK;
}

static int parse_device(struct wg_dev_builder *b, struct cvm_rd a)
{
	struct cvm_wg_device *d = b->dev;
	struct cvm_rd v;
	uint16_t type;
	int r;

	while (!cvm_rd_empty(&a)) {
		if (!nla_next(&a, &type, &v))
			return CVM_E_TRUNCATED;
		switch (type) {
		case WGDEVICE_A_PRIVATE_KEY: {
			uint8_t k[CVM_WG_KEY_LEN];

			if (!nla_exact(&v, k, sizeof(k)))
				return CVM_E_FORMAT;
			r = wg_b_set_private(b, k);
			cvm_wipe(k, sizeof(k));
			if (r != CVM_OK)
				return r;
			break;
		}
		case WGDEVICE_A_PUBLIC_KEY:
			if (!nla_exact(&v, d->public_key, sizeof(d->public_key)))
				return CVM_E_FORMAT;
			d->flags |= CVM_WG_DEV_HAS_PUBLIC_KEY;
			break;
		case WGDEVICE_A_LISTEN_PORT:
			if (!nla_exact(&v, &d->listen_port, sizeof(d->listen_port)))
				return CVM_E_FORMAT;
			d->flags |= CVM_WG_DEV_HAS_LISTEN_PORT;
			break;
		case WGDEVICE_A_FWMARK:
			if (!nla_exact(&v, &d->fwmark, sizeof(d->fwmark)))
				return CVM_E_FORMAT;
			d->flags |= CVM_WG_DEV_HAS_FWMARK;
			break;
		case WGDEVICE_A_PEERS: {
			bool first = true;

			while (!cvm_rd_empty(&v)) {
				struct cvm_rd pr;
				uint16_t t2;

				if (!nla_next(&v, &t2, &pr))
					return CVM_E_TRUNCATED;
				r = parse_peer(b, pr, first);
				if (r != CVM_OK)
					return r;
				first = false;
			}
			break;
		}
		default:
			break;
		}
	}
	return CVM_OK;
}

int wg_nl_parse_get(struct wg_dev_builder *b, uint16_t family, uint32_t seq, const uint8_t *buf, size_t len,
                    bool *done)
{
	struct cvm_rd in;
	int r;

	*done = false;
	cvm_rd_init(&in, buf, len);
	if (cvm_rd_empty(&in))
		return CVM_E_TRUNCATED;
	while (!cvm_rd_empty(&in)) {
		struct cvm_rd body;
		uint32_t mlen, mseq, pid;
		uint16_t type, flags;
		size_t pad;

		if (!cvm_rd_copy(&in, &mlen, sizeof(mlen)) || !cvm_rd_copy(&in, &type, sizeof(type)) ||
		    !cvm_rd_copy(&in, &flags, sizeof(flags)) || !cvm_rd_copy(&in, &mseq, sizeof(mseq)) ||
		    !cvm_rd_copy(&in, &pid, sizeof(pid)) || mlen < 16 ||
		    !cvm_rd_sub(&in, &body, (size_t)mlen - 16))
			return CVM_E_TRUNCATED;
		pad = (size_t)((4 - (mlen & 3)) & 3);
		if (!cvm_rd_skip(&in, pad < in.len ? pad : in.len))
			return CVM_E_INTERNAL;
		if (mseq != seq)
			return CVM_E_FORMAT;
		if (type == NLMSG_DONE) {
			/* the last message of the dump: nothing may follow it */
			if (!cvm_rd_empty(&in))
				return CVM_E_FORMAT;
			*done = true;
			return CVM_OK;
		}
		if (type == NLMSG_ERROR) {
			int32_t e;

			if (!cvm_rd_copy(&body, &e, sizeof(e)))
				return CVM_E_TRUNCATED;
			if (e == 0) { /* the ACK of the dump: the end */
				*done = true;
				return CVM_OK;
			}
			if (e > 0 || e < -4095)
				return CVM_E_FORMAT;
			errno = -e;
			return CVM_E_SYSTEM;
		}
		if (type != family)
			return CVM_E_FORMAT;
		{
			uint8_t cmd;

			if (!cvm_rd_copy(&body, &cmd, 1) || !cvm_rd_skip(&body, 3))
				return CVM_E_TRUNCATED;
			if (cmd != WG_CMD_GET_DEVICE)
				return CVM_E_FORMAT;
		}
		r = parse_device(b, body);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}
