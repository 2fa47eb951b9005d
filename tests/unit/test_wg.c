/* lib/wg: the key codec, the genetlink messages cvm_wg_set builds (parsed
 * back with libmnl, attribute by attribute), the dump-reply and UAPI
 * parsers fed hand-built answers, truncated and bit-flipped. */
#include <errno.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cvmkit/err.h>
#include <cvmkit/secret.h>
#include <cvmkit/wg.h>

#include "wg/wg_int.h"

#define FAM 0x1d

/* ---- keys ---------------------------------------------------------------- */

static const char key_b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static void test_key_codec(void **state)
{
	uint8_t k[32], pub[32];
	char b[CVM_WG_KEY_B64_LEN + 1];
	/* wg pubkey of key_b64 (wireguard-tools 1.0.20210914) */
	static const uint8_t want_pub[32] = {0x8f, 0x40, 0xc5, 0xad, 0xb6, 0x8f, 0x25, 0x62, 0x4a, 0xe5, 0xb2,
	                                     0x14, 0xea, 0x76, 0x7a, 0x6e, 0xc9, 0x4d, 0x82, 0x9d, 0x3d, 0x7b,
	                                     0x5e, 0x1a, 0xd1, 0xba, 0x6f, 0x3e, 0x21, 0x38, 0x28, 0x5f};

	(void)state;
	assert_int_equal(cvm_wg_key_from_base64(key_b64, strlen(key_b64), k), CVM_OK);
	for (int i = 0; i < 32; i++)
		assert_int_equal(k[i], i);
	cvm_wg_key_to_base64(k, b);
	assert_string_equal(b, key_b64);
	assert_int_equal(cvm_wg_key_public(k, pub), CVM_OK);
	assert_memory_equal(pub, want_pub, 32);
	/* every byte value through the encoder and back */
	for (int v = 0; v < 256; v++) {
		memset(k, v, sizeof(k));
		k[0] = (uint8_t)(255 - v);
		cvm_wg_key_to_base64(k, b);
		assert_int_equal(strlen(b), 44);
		memset(pub, 0, sizeof(pub));
		assert_int_equal(cvm_wg_key_from_base64(b, 44, pub), CVM_OK);
		assert_memory_equal(pub, k, 32);
	}
}

static void test_key_codec_rejects(void **state)
{
	uint8_t k[32];
	char b[64];
	static const char *bad[] = {
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",    /* missing padding */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==",  /* one '=' too many */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", /* trailing newline */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=A",  /* trailing garbage */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",   /* unused bits set */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=",   /* URL-safe '-' */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd_h8=",   /* URL-safe '_' */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd h8=",   /* space */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==",   /* 31 bytes */
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A",   /* '=' replaced */
	    "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cvm_wg_key_from_base64(bad[i], strlen(bad[i]), k), CVM_E_FORMAT);
	/* any character outside the alphabet, at any place */
	for (int c = 0; c < 256; c++) {
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		          c == '+' || c == '/';

		memcpy(b, key_b64, 44);
		b[7] = (char)c;
		assert_int_equal(cvm_wg_key_from_base64(b, 44, k) == CVM_OK, ok);
	}
	assert_int_equal(cvm_wg_key_from_base64(NULL, 44, k), CVM_E_FORMAT);
}

static void test_key_generate(void **state)
{
	struct cvm_secret *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(cvm_wg_key_generate(&a), CVM_OK);
	assert_int_equal(cvm_wg_key_generate(&b), CVM_OK);
	assert_int_equal(a->len, 32);
	assert_int_equal(a->p[0] & 7, 0);
	assert_int_equal(a->p[31] & 0xc0, 0x40);
	assert_memory_not_equal(a->p, b->p, 32);
	cvm_secret_free(a);
	cvm_secret_free(b);
}

/* ---- SET messages, read back with libmnl ---------------------------------- */

struct attrs {
	const struct nlattr *a[WGDEVICE_A_MAX + 1 > WGPEER_A_MAX + 1 ? WGDEVICE_A_MAX + 1 : WGPEER_A_MAX + 1];
};

static int attr_cb(const struct nlattr *a, void *data)
{
	struct attrs *t = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type < sizeof(t->a) / sizeof(t->a[0]))
		t->a[type] = a;
	return MNL_CB_OK;
}

static void put_key(uint8_t k[32], uint8_t v)
{
	memset(k, v, 32);
}

static void test_nl_set_small(void **state)
{
	struct cvm_secret *priv = cvm_secret_new(32);
	struct cvm_wg_allowed_ip ips[2];
	struct cvm_wg_peer peers[2];
	struct cvm_wg_device d;
	struct wg_msgs m;
	const struct nlmsghdr *nlh;
	const struct genlmsghdr *g;
	struct attrs dev = {0}, p0 = {0}, p1 = {0};
	struct nlattr *pa, *ipn; /* non-const: libmnl's macro casts them to char * */
	int n;

	(void)state;
	assert_non_null(priv);
	memset(priv->p, 0x11, 32);
	memset(&d, 0, sizeof(d));
	memset(peers, 0, sizeof(peers));
	memset(ips, 0, sizeof(ips));
	d.flags = CVM_WG_DEV_HAS_PRIVATE_KEY | CVM_WG_DEV_HAS_LISTEN_PORT | CVM_WG_DEV_HAS_FWMARK |
	          CVM_WG_DEV_REPLACE_PEERS;
	d.private_key = priv;
	d.listen_port = 51820;
	d.fwmark = 0x51;
	d.peers = peers;
	d.peer_count = 2;
	put_key(peers[0].public_key, 0xa0);
	peers[0].flags = CVM_WG_PEER_REPLACE_ALLOWED_IPS | CVM_WG_PEER_HAS_KEEPALIVE;
	peers[0].persistent_keepalive = 25;
	peers[0].endpoint.in.sin_family = AF_INET;
	peers[0].endpoint.in.sin_port = htons(4242);
	peers[0].endpoint.in.sin_addr.s_addr = htonl(0xc0000202);
	ips[0].family = AF_INET;
	ips[0].cidr = 32;
	ips[0].addr.v4.s_addr = htonl(0x0a000002);
	ips[1].family = AF_INET6;
	ips[1].cidr = 64;
	inet_pton(AF_INET6, "fd00::", &ips[1].addr.v6);
	peers[0].allowed_ips = ips;
	peers[0].allowed_ip_count = 2;
	put_key(peers[1].public_key, 0xb1);
	peers[1].flags = CVM_WG_PEER_REMOVE;

	assert_int_equal(wg_nl_build_set(FAM, "wg0", &d, 7, WG_NL_BUF, &m), CVM_OK);
	assert_int_equal(m.count, 1);
	nlh = (const struct nlmsghdr *)m.buf[0];
	assert_int_equal(nlh->nlmsg_len, m.len[0]);
	assert_int_equal(nlh->nlmsg_type, FAM);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	assert_int_equal(nlh->nlmsg_seq, 7);
	g = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(g->cmd, WG_CMD_SET_DEVICE);
	assert_int_equal(g->version, WG_GENL_VERSION);
	assert_int_equal(mnl_attr_parse(nlh, sizeof(*g), attr_cb, &dev), MNL_CB_OK);
	assert_string_equal(mnl_attr_get_str(dev.a[WGDEVICE_A_IFNAME]), "wg0");
	assert_int_equal(mnl_attr_get_payload_len(dev.a[WGDEVICE_A_PRIVATE_KEY]), 32);
	assert_memory_equal(mnl_attr_get_payload(dev.a[WGDEVICE_A_PRIVATE_KEY]), priv->p, 32);
	assert_int_equal(mnl_attr_get_u16(dev.a[WGDEVICE_A_LISTEN_PORT]), 51820);
	assert_int_equal(mnl_attr_get_u32(dev.a[WGDEVICE_A_FWMARK]), 0x51);
	assert_int_equal(mnl_attr_get_u32(dev.a[WGDEVICE_A_FLAGS]), WGDEVICE_F_REPLACE_PEERS);
	assert_non_null(dev.a[WGDEVICE_A_PEERS]);
	assert_true((dev.a[WGDEVICE_A_PEERS]->nla_type & NLA_F_NESTED) != 0);
	n = 0;
	mnl_attr_for_each_nested(pa, dev.a[WGDEVICE_A_PEERS])
	{
		assert_true((pa->nla_type & NLA_F_NESTED) != 0);
		assert_int_equal(mnl_attr_parse_nested(pa, attr_cb, n == 0 ? &p0 : &p1), MNL_CB_OK);
		n++;
	}
	assert_int_equal(n, 2);
	assert_memory_equal(mnl_attr_get_payload(p0.a[WGPEER_A_PUBLIC_KEY]), peers[0].public_key, 32);
	assert_int_equal(mnl_attr_get_u32(p0.a[WGPEER_A_FLAGS]), WGPEER_F_REPLACE_ALLOWEDIPS);
	assert_int_equal(mnl_attr_get_u16(p0.a[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]), 25);
	assert_int_equal(mnl_attr_get_payload_len(p0.a[WGPEER_A_ENDPOINT]), sizeof(struct sockaddr_in));
	assert_memory_equal(mnl_attr_get_payload(p0.a[WGPEER_A_ENDPOINT]), &peers[0].endpoint.in,
	                    sizeof(struct sockaddr_in));
	n = 0;
	mnl_attr_for_each_nested(ipn, p0.a[WGPEER_A_ALLOWEDIPS])
	{
		struct attrs ia = {0};

		assert_int_equal(mnl_attr_parse_nested(ipn, attr_cb, &ia), MNL_CB_OK);
		assert_int_equal(mnl_attr_get_u16(ia.a[WGALLOWEDIP_A_FAMILY]), ips[n].family);
		assert_int_equal(mnl_attr_get_u8(ia.a[WGALLOWEDIP_A_CIDR_MASK]), ips[n].cidr);
		assert_int_equal(mnl_attr_get_payload_len(ia.a[WGALLOWEDIP_A_IPADDR]),
		                 ips[n].family == AF_INET ? 4 : 16);
		assert_memory_equal(mnl_attr_get_payload(ia.a[WGALLOWEDIP_A_IPADDR]), &ips[n].addr,
		                    ips[n].family == AF_INET ? 4 : 16);
		n++;
	}
	assert_int_equal(n, 2);
	assert_int_equal(mnl_attr_get_u32(p1.a[WGPEER_A_FLAGS]), WGPEER_F_REMOVE_ME);
	assert_null(p1.a[WGPEER_A_ALLOWEDIPS]);
	assert_null(p1.a[WGPEER_A_ENDPOINT]);
	wg_msgs_free(&m);

	/* incremental: one peer, nothing of the device but its name */
	d.flags = 0;
	d.peers = &peers[1];
	d.peer_count = 1;
	assert_int_equal(wg_nl_build_set(FAM, "wg0", &d, 1, WG_NL_BUF, &m), CVM_OK);
	assert_int_equal(m.count, 1);
	assert_true(m.len[0] < 100);
	memset(&dev, 0, sizeof(dev));
	assert_int_equal(mnl_attr_parse((const struct nlmsghdr *)m.buf[0], 4, attr_cb, &dev), MNL_CB_OK);
	assert_null(dev.a[WGDEVICE_A_PRIVATE_KEY]);
	assert_null(dev.a[WGDEVICE_A_FLAGS]);
	assert_null(dev.a[WGDEVICE_A_LISTEN_PORT]);
	wg_msgs_free(&m);

	/* bad arguments */
	ips[0].cidr = 33;
	d.peers = peers;
	assert_int_equal(wg_nl_build_set(FAM, "wg0", &d, 1, WG_NL_BUF, &m), CVM_E_INVAL);
	cvm_secret_free(priv);
}

/* A long peer list goes in several messages, each within the size, the
 * device's fields and REPLACE_PEERS in the first only, and a peer whose
 * allowed IPs overflow continues (key, no flags) in the next message. */
static void test_nl_set_split(void **state)
{
	enum { NPEERS = 300, BIGIPS = 3000 };
	struct cvm_wg_peer *peers = calloc(NPEERS, sizeof(*peers));
	struct cvm_wg_allowed_ip *ips = calloc(BIGIPS, sizeof(*ips));
	size_t seen_ips = 0, peer_entries = 0;
	uint8_t last[32] = {0};
	size_t distinct = 0;
	struct cvm_wg_device d;
	struct wg_msgs m;

	(void)state;
	assert_non_null(peers);
	assert_non_null(ips);
	for (size_t i = 0; i < BIGIPS; i++) {
		ips[i].family = AF_INET;
		ips[i].cidr = 32;
		ips[i].addr.v4.s_addr = htonl(0x0a000000u + (uint32_t)i);
	}
	for (size_t i = 0; i < NPEERS; i++) {
		peers[i].public_key[0] = (uint8_t)(i >> 8);
		peers[i].public_key[1] = (uint8_t)i;
		peers[i].public_key[2] = 1;
		peers[i].flags = CVM_WG_PEER_REPLACE_ALLOWED_IPS;
		peers[i].allowed_ips = ips;
		peers[i].allowed_ip_count = i == 5 ? BIGIPS : 1;
	}
	memset(&d, 0, sizeof(d));
	d.flags = CVM_WG_DEV_REPLACE_PEERS | CVM_WG_DEV_HAS_LISTEN_PORT;
	d.listen_port = 1;
	d.peers = peers;
	d.peer_count = NPEERS;
	assert_int_equal(wg_nl_build_set(FAM, "wg-split", &d, 100, 4096, &m), CVM_OK);
	assert_true(m.count > 10);
	for (size_t i = 0; i < m.count; i++) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)m.buf[i];
		struct attrs dev = {0};
		struct nlattr *pa;
		bool first_peer = true;

		assert_true(m.len[i] <= 4096);
		assert_int_equal(nlh->nlmsg_len, m.len[i]);
		assert_int_equal(nlh->nlmsg_seq, 100 + i);
		assert_true(mnl_nlmsg_ok(nlh, (int)m.len[i]));
		assert_int_equal(mnl_attr_parse(nlh, 4, attr_cb, &dev), MNL_CB_OK);
		assert_string_equal(mnl_attr_get_str(dev.a[WGDEVICE_A_IFNAME]), "wg-split");
		assert_int_equal(dev.a[WGDEVICE_A_FLAGS] != NULL, i == 0);
		assert_int_equal(dev.a[WGDEVICE_A_LISTEN_PORT] != NULL, i == 0);
		assert_non_null(dev.a[WGDEVICE_A_PEERS]);
		mnl_attr_for_each_nested(pa, dev.a[WGDEVICE_A_PEERS])
		{
			struct attrs p = {0};
			struct nlattr *ipn;
			bool cont;

			assert_int_equal(mnl_attr_parse_nested(pa, attr_cb, &p), MNL_CB_OK);
			cont = memcmp(mnl_attr_get_payload(p.a[WGPEER_A_PUBLIC_KEY]), last, 32) == 0;
			/* only the first peer of a message may continue the last one */
			assert_true(!cont || first_peer);
			assert_int_equal(p.a[WGPEER_A_FLAGS] != NULL, !cont);
			if (!cont)
				distinct++;
			memcpy(last, mnl_attr_get_payload(p.a[WGPEER_A_PUBLIC_KEY]), 32);
			/* a peer whose head filled the message has no allowed IPs in it */
			if (p.a[WGPEER_A_ALLOWEDIPS] != NULL) {
				mnl_attr_for_each_nested(ipn, p.a[WGPEER_A_ALLOWEDIPS]) seen_ips++;
			}
			peer_entries++;
			first_peer = false;
		}
	}
	assert_int_equal(distinct, NPEERS);
	assert_true(peer_entries > NPEERS);
	assert_int_equal(seen_ips, NPEERS - 1 + BIGIPS);
	wg_msgs_free(&m);
	free(peers);
	free(ips);
}

/* ---- GET replies ---------------------------------------------------------- */

/* build_reply writes what the kernel would answer to a dump: two messages
 * (the second peer's allowed IPs split over both), then NLMSG_DONE. */
static size_t build_reply(uint8_t *buf, size_t cap, uint32_t seq)
{
	uint8_t k[32];
	size_t off = 0;
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	struct nlattr *peers, *p, *ips, *ip;
	struct sockaddr_in6 sin6;
	int64_t ts[2] = {1700000000, 123456789};
	uint32_t a4;

	memset(buf, 0, cap);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = FAM;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = WG_CMD_GET_DEVICE;
	g->version = 1;
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 4);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	memset(k, 0, 32);
	k[0] = 1;
	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, 32, k);
	memset(k, 0x22, 32);
	mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, 32, k);
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	p = mnl_attr_nest_start(nlh, 0);
	memset(k, 0xa1, 32);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, k);
	memset(k, 0, 32);
	mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, 32, k);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(51821);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin6), &sin6);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), ts);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 1000);
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 2000);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	ip = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	a4 = htonl(0x0a000002);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, &a4);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 32);
	mnl_attr_nest_end(nlh, ip);
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, p);
	p = mnl_attr_nest_start(nlh, 0);
	memset(k, 0xb2, 32);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, k);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	ip = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	a4 = htonl(0x0a000003);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, &a4);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 32);
	mnl_attr_nest_end(nlh, ip);
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, p);
	mnl_attr_nest_end(nlh, peers);
	off += nlh->nlmsg_len;
	/* the second message: the same peer, more allowed IPs */
	nlh = mnl_nlmsg_put_header(buf + off);
	nlh->nlmsg_type = FAM;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = WG_CMD_GET_DEVICE;
	g->version = 1;
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	p = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, k);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	ip = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET6);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 16, &sin6.sin6_addr);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 128);
	mnl_attr_nest_end(nlh, ip);
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, p);
	mnl_attr_nest_end(nlh, peers);
	off += nlh->nlmsg_len;
	nlh = mnl_nlmsg_put_header(buf + off);
	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = seq;
	mnl_nlmsg_put_extra_header(nlh, 4);
	off += nlh->nlmsg_len;
	assert_true(off <= cap);
	return off;
}

static void test_nl_get_parse(void **state)
{
	uint8_t buf[4096], k[32], pub1[32];
	size_t len = build_reply(buf, sizeof(buf), 9);
	struct wg_dev_builder b;
	const struct cvm_wg_device *d;
	bool done = false;

	(void)state;
	assert_int_equal(wg_b_init(&b, false), CVM_OK);
	assert_int_equal(wg_nl_parse_get(&b, FAM, 9, buf, len, &done), CVM_OK);
	assert_true(done);
	d = b.dev;
	assert_null(b.priv); /* not asked for */
	memset(k, 0, 32);
	k[0] = 1;
	assert_int_equal(cvm_wg_key_public(k, pub1), CVM_OK);
	assert_true((d->flags & CVM_WG_DEV_HAS_PUBLIC_KEY) != 0);
	memset(k, 0x22, 32);
	assert_memory_equal(d->public_key, k, 32); /* the kernel's attribute comes after the private key */
	assert_int_equal(d->listen_port, 51820);
	assert_int_equal(d->peer_count, 2);
	assert_int_equal(d->peers[0].endpoint.sa.sa_family, AF_INET6);
	assert_int_equal(ntohs(d->peers[0].endpoint.in6.sin6_port), 51821);
	assert_int_equal(d->peers[0].last_handshake_sec, 1700000000);
	assert_int_equal(d->peers[0].last_handshake_nsec, 123456789);
	assert_int_equal(d->peers[0].rx_bytes, 1000);
	assert_int_equal(d->peers[0].tx_bytes, 2000);
	assert_int_equal(d->peers[0].persistent_keepalive, 25);
	assert_int_equal(d->peers[0].allowed_ip_count, 1);
	assert_int_equal(d->peers[1].allowed_ip_count, 2); /* coalesced over two messages */
	assert_int_equal(d->peers[1].allowed_ips[1].family, AF_INET6);
	assert_int_equal(d->peers[1].allowed_ips[1].cidr, 128);
	assert_int_equal(d->peers[1].endpoint.sa.sa_family, AF_UNSPEC);
	wg_b_cleanup(&b);

	/* asked for: the private key comes back in secret memory */
	assert_int_equal(wg_b_init(&b, true), CVM_OK);
	assert_int_equal(wg_nl_parse_get(&b, FAM, 9, buf, len, &done), CVM_OK);
	assert_non_null(b.priv);
	assert_int_equal(b.priv->p[0], 1);
	wg_b_cleanup(&b);

	/* another request's sequence number, another family */
	assert_int_equal(wg_b_init(&b, false), CVM_OK);
	assert_int_equal(wg_nl_parse_get(&b, FAM, 10, buf, len, &done), CVM_E_FORMAT);
	wg_b_cleanup(&b);
	assert_int_equal(wg_b_init(&b, false), CVM_OK);
	assert_int_equal(wg_nl_parse_get(&b, FAM + 1, 9, buf, len, &done), CVM_E_FORMAT);
	wg_b_cleanup(&b);
}

static void test_nl_get_error(void **state)
{
	uint8_t buf[64];
	struct nlmsghdr *nlh;
	struct wg_dev_builder b;
	int32_t e = -ENODEV;
	bool done = true;

	(void)state;
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = 3;
	memcpy(mnl_nlmsg_put_extra_header(nlh, 20), &e, 4);
	assert_int_equal(wg_b_init(&b, false), CVM_OK);
	errno = 0;
	assert_int_equal(wg_nl_parse_get(&b, FAM, 3, buf, nlh->nlmsg_len, &done), CVM_E_SYSTEM);
	assert_int_equal(errno, ENODEV);
	assert_false(done);
	wg_b_cleanup(&b);
}

static void test_nl_get_truncated_flipped(void **state)
{
	uint8_t buf[4096], m[4096];
	size_t len = build_reply(buf, sizeof(buf), 9);
	struct wg_dev_builder b;
	bool done;
	int r;

	(void)state;
	/* a strict prefix never reaches NLMSG_DONE */
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(wg_b_init(&b, false), CVM_OK);
		done = false;
		r = wg_nl_parse_get(&b, FAM, 9, buf, n, &done);
		assert_false(r == CVM_OK && done);
		wg_b_cleanup(&b);
	}
	/* a flipped bit: an error, or a device within the caps */
	for (size_t bit = 0; bit < len * 8; bit++) {
		memcpy(m, buf, len);
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(wg_b_init(&b, false), CVM_OK);
		r = wg_nl_parse_get(&b, FAM, 9, m, len, &done);
		if (r == CVM_OK) {
			assert_true(b.dev->peer_count <= 3);
			for (size_t i = 0; i < b.dev->peer_count; i++)
				assert_true(b.dev->peers[i].allowed_ip_count <= 3);
		} else {
			assert_true(r == CVM_E_FORMAT || r == CVM_E_TRUNCATED || r == CVM_E_SYSTEM);
		}
		assert_null(b.priv);
		wg_b_cleanup(&b);
	}
}

/* ---- UAPI ------------------------------------------------------------------ */

static const char uapi_answer[] =
    "private_key=0100000000000000000000000000000000000000000000000000000000000000\n"
    "listen_port=51820\n"
    "fwmark=7\n"
    "public_key=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\n"
    "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
    "protocol_version=1\n"
    "endpoint=[2001:db8::1]:51821\n"
    "last_handshake_time_sec=1700000000\n"
    "last_handshake_time_nsec=5\n"
    "tx_bytes=2000\n"
    "rx_bytes=1000\n"
    "persistent_keepalive_interval=25\n"
    "allowed_ip=10.0.0.2/32\n"
    "allowed_ip=fd00::/64\n"
    "public_key=b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2\n"
    "endpoint=192.0.2.2:1\n"
    "some_future_key=1\n"
    "errno=0\n"
    "\n";

static void test_uapi_parse(void **state)
{
	struct wg_dev_builder b;
	const struct cvm_wg_device *d;
	uint8_t k[32], pub[32];

	(void)state;
	assert_int_equal(wg_b_init(&b, false), CVM_OK);
	assert_int_equal(wg_uapi_parse_get(&b, (const uint8_t *)uapi_answer, strlen(uapi_answer)), CVM_OK);
	d = b.dev;
	assert_null(b.priv);
	memset(k, 0, 32);
	k[0] = 1;
	assert_int_equal(cvm_wg_key_public(k, pub), CVM_OK);
	assert_memory_equal(d->public_key, pub, 32); /* derived: the UAPI reports none */
	assert_int_equal(d->listen_port, 51820);
	assert_int_equal(d->fwmark, 7);
	assert_int_equal(d->peer_count, 2);
	assert_int_equal(d->peers[0].public_key[0], 0xa1);
	assert_int_equal(d->peers[0].endpoint.sa.sa_family, AF_INET6);
	assert_int_equal(ntohs(d->peers[0].endpoint.in6.sin6_port), 51821);
	assert_int_equal(d->peers[0].last_handshake_sec, 1700000000);
	assert_int_equal(d->peers[0].last_handshake_nsec, 5);
	assert_int_equal(d->peers[0].rx_bytes, 1000);
	assert_int_equal(d->peers[0].tx_bytes, 2000);
	assert_int_equal(d->peers[0].persistent_keepalive, 25);
	assert_int_equal(d->peers[0].allowed_ip_count, 2);
	assert_int_equal(d->peers[0].allowed_ips[1].family, AF_INET6);
	assert_int_equal(d->peers[0].allowed_ips[1].cidr, 64);
	assert_int_equal(d->peers[1].endpoint.sa.sa_family, AF_INET);
	assert_int_equal(ntohs(d->peers[1].endpoint.in.sin_port), 1);
	wg_b_cleanup(&b);
}

static int uapi_try(const char *s)
{
	struct wg_dev_builder b;
	int r;

	assert_int_equal(wg_b_init(&b, false), CVM_OK);
	r = wg_uapi_parse_get(&b, (const uint8_t *)s, strlen(s));
	wg_b_cleanup(&b);
	return r;
}

static void test_uapi_rejects(void **state)
{
	char big[1024];
	int e;

	(void)state;
	errno = 0;
	assert_int_equal(uapi_try("errno=19\n\n"), CVM_E_SYSTEM);
	assert_int_equal(errno, 19);
	assert_int_equal(uapi_try("errno=0\n\n"), CVM_OK);
	assert_int_equal(uapi_try("errno=0\n"), CVM_E_TRUNCATED);
	assert_int_equal(uapi_try("errno=0\n\nx"), CVM_E_FORMAT);
	assert_int_equal(uapi_try("errno=00\n\n"), CVM_E_FORMAT);
	assert_int_equal(uapi_try("errno=99999\n\n"), CVM_E_FORMAT);
	assert_int_equal(uapi_try("allowed_ip=10.0.0.1/32\nerrno=0\n\n"), CVM_E_FORMAT);
	assert_int_equal(uapi_try("public_key=a1\nerrno=0\n\n"), CVM_E_FORMAT);
	assert_int_equal(
	    uapi_try("public_key=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\n"
	             "allowed_ip=10.0.0.1/33\nerrno=0\n\n"),
	    CVM_E_FORMAT);
	assert_int_equal(
	    uapi_try("public_key=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\n"
	             "endpoint=1.2.3.4:65536\nerrno=0\n\n"),
	    CVM_E_FORMAT);
	assert_int_equal(
	    uapi_try("public_key=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\n"
	             "last_handshake_time_nsec=1000000000\nerrno=0\n\n"),
	    CVM_E_FORMAT);
	assert_int_equal(uapi_try("listen_port=-1\nerrno=0\n\n"), CVM_E_FORMAT);
	assert_int_equal(uapi_try("noequals\nerrno=0\n\n"), CVM_E_FORMAT);
	/* a line longer than any the protocol has */
	memset(big, 'a', sizeof(big));
	memcpy(big, "x=", 2);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(uapi_try(big), CVM_E_TRUNCATED);
	/* the answer to a set */
	assert_int_equal(wg_uapi_parse_errno((const uint8_t *)"errno=0\n\n", 9, &e), CVM_OK);
	assert_int_equal(e, 0);
	assert_int_equal(wg_uapi_parse_errno((const uint8_t *)"errno=22\n\n", 10, &e), CVM_OK);
	assert_int_equal(e, 22);
	assert_int_equal(wg_uapi_parse_errno((const uint8_t *)"errno=22\n", 9, &e), CVM_E_TRUNCATED);
	assert_int_equal(wg_uapi_parse_errno((const uint8_t *)"errnox=2\n\n", 10, &e), CVM_E_FORMAT);
}

static void test_uapi_truncated_flipped(void **state)
{
	size_t len = strlen(uapi_answer);
	uint8_t m[sizeof(uapi_answer)];
	struct wg_dev_builder b;
	int r;

	(void)state;
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(wg_b_init(&b, false), CVM_OK);
		r = wg_uapi_parse_get(&b, (const uint8_t *)uapi_answer, n);
		assert_int_not_equal(r, CVM_OK);
		wg_b_cleanup(&b);
	}
	for (size_t bit = 0; bit < len * 8; bit++) {
		memcpy(m, uapi_answer, len);
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(wg_b_init(&b, false), CVM_OK);
		r = wg_uapi_parse_get(&b, m, len);
		if (r == CVM_OK)
			assert_true(b.dev->peer_count <= 3);
		assert_null(b.priv);
		wg_b_cleanup(&b);
	}
}

static void test_uapi_build(void **state)
{
	struct cvm_secret *priv = cvm_secret_new(32);
	struct cvm_wg_allowed_ip ip = {.family = AF_INET, .cidr = 24};
	struct cvm_wg_peer p[2];
	struct cvm_wg_device d;
	char *out = NULL;
	size_t len = 0;
	static const char want[] =
	    "set=1\n"
	    "private_key=1111111111111111111111111111111111111111111111111111111111111111\n"
	    "listen_port=51820\n"
	    "replace_peers=true\n"
	    "public_key=a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0\n"
	    "endpoint=[2001:db8::1]:4242\n"
	    "persistent_keepalive_interval=0\n"
	    "replace_allowed_ips=true\n"
	    "allowed_ip=10.1.0.0/24\n"
	    "public_key=b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1\n"
	    "remove=true\n"
	    "\n";

	(void)state;
	assert_non_null(priv);
	memset(priv->p, 0x11, 32);
	memset(p, 0, sizeof(p));
	memset(&d, 0, sizeof(d));
	inet_pton(AF_INET, "10.1.0.0", &ip.addr.v4);
	put_key(p[0].public_key, 0xa0);
	p[0].flags = CVM_WG_PEER_REPLACE_ALLOWED_IPS | CVM_WG_PEER_HAS_KEEPALIVE;
	p[0].endpoint.in6.sin6_family = AF_INET6;
	p[0].endpoint.in6.sin6_port = htons(4242);
	inet_pton(AF_INET6, "2001:db8::1", &p[0].endpoint.in6.sin6_addr);
	p[0].allowed_ips = &ip;
	p[0].allowed_ip_count = 1;
	put_key(p[1].public_key, 0xb1);
	p[1].flags = CVM_WG_PEER_REMOVE;
	d.flags = CVM_WG_DEV_HAS_PRIVATE_KEY | CVM_WG_DEV_HAS_LISTEN_PORT | CVM_WG_DEV_REPLACE_PEERS;
	d.private_key = priv;
	d.listen_port = 51820;
	d.peers = p;
	d.peer_count = 2;
	assert_int_equal(wg_uapi_build_set(&d, &out, &len), CVM_OK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	cvm_freezero(out, len);
	cvm_secret_free(priv);
}

static void test_open_missing(void **state)
{
	struct cvm_wg *h = (struct cvm_wg *)1;

	(void)state;
	assert_int_equal(cvm_wg_open("cvmkit-none0", CVM_WG_USERSPACE, "/nonexistent", &h), CVM_E_NOT_FOUND);
	assert_null(h);
	assert_int_equal(cvm_wg_open("0123456789abcdef", CVM_WG_AUTO, NULL, &h), CVM_E_INVAL);
	assert_int_equal(cvm_wg_open("a/b", CVM_WG_USERSPACE, NULL, &h), CVM_E_INVAL);
	assert_int_equal(cvm_wg_open("", CVM_WG_USERSPACE, NULL, &h), CVM_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_codec),
	    cmocka_unit_test(test_key_codec_rejects),
	    cmocka_unit_test(test_key_generate),
	    cmocka_unit_test(test_nl_set_small),
	    cmocka_unit_test(test_nl_set_split),
	    cmocka_unit_test(test_nl_get_parse),
	    cmocka_unit_test(test_nl_get_error),
	    cmocka_unit_test(test_nl_get_truncated_flipped),
	    cmocka_unit_test(test_uapi_parse),
	    cmocka_unit_test(test_uapi_rejects),
	    cmocka_unit_test(test_uapi_truncated_flipped),
	    cmocka_unit_test(test_uapi_build),
	    cmocka_unit_test(test_open_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
