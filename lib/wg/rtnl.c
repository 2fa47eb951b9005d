/* rtnetlink helpers for a WireGuard interface (libmnl), so that nothing
 * runs `ip`. */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/err.h>
#include <cvmkit/log.h>
#include <cvmkit/wg.h>

#include "wg_int.h"

struct rt {
	struct mnl_socket *nl;
	uint32_t portid, seq;
};

static int rt_open(struct rt *rt)
{
	rt->nl = mnl_socket_open(NETLINK_ROUTE);
	if (rt->nl == NULL)
		return CVM_E_SYSTEM;
	if (mnl_socket_bind(rt->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(rt->nl);
		rt->nl = NULL;
		return CVM_E_SYSTEM;
	}
	rt->portid = mnl_socket_get_portid(rt->nl);
	rt->seq = (uint32_t)time(NULL);
	return CVM_OK;
}

static void rt_close(struct rt *rt)
{
	if (rt->nl != NULL)
		mnl_socket_close(rt->nl);
}

static int rt_talk(struct rt *rt, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	uint8_t buf[WG_NL_BUF];
	ssize_t n;
	int r;

	nlh->nlmsg_seq = ++rt->seq;
	if (mnl_socket_sendto(rt->nl, nlh, nlh->nlmsg_len) < 0)
		return CVM_E_SYSTEM;
	do {
		n = mnl_socket_recvfrom(rt->nl, buf, sizeof(buf));
		if (n < 0)
			return CVM_E_SYSTEM;
		r = mnl_cb_run(buf, (size_t)n, rt->seq, rt->portid, cb, data);
	} while (r > MNL_CB_STOP);
	return r < 0 ? CVM_E_SYSTEM : CVM_OK;
}

static int ifindex_of(const char *ifname, unsigned *out)
{
	*out = if_nametoindex(ifname);
	if (*out == 0) {
		cvm_error("no interface %s: create it first (wireguard-go %s, or cvm_wg_link_create)", ifname,
		          ifname);
		return CVM_E_NOT_FOUND;
	}
	return CVM_OK;
}

int cvm_wg_link_create(const char *ifname)
{
	uint8_t buf[WG_NL_BUF];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nlattr *li;
	struct rt rt;
	int r;

	if (ifname == NULL || strnlen(ifname, IFNAMSIZ) >= IFNAMSIZ)
		return CVM_E_INVAL;
	r = rt_open(&rt);
	if (r != CVM_OK)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
	mnl_attr_nest_end(nlh, li);
	r = rt_talk(&rt, nlh, NULL, NULL);
	if (r == CVM_E_SYSTEM && errno == EOPNOTSUPP) {
		cvm_error("cannot create %s: the kernel has no wireguard module (modprobe wireguard, or run "
		          "wireguard-go %s)",
		          ifname, ifname);
		r = CVM_E_NOT_FOUND;
	}
	rt_close(&rt);
	return r;
}

int cvm_wg_link_set_up(const char *ifname, bool up)
{
	uint8_t buf[WG_NL_BUF];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct rt rt;
	unsigned idx;
	int r;

	r = ifindex_of(ifname, &idx);
	if (r != CVM_OK)
		return r;
	r = rt_open(&rt);
	if (r != CVM_OK)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)idx;
	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = up ? IFF_UP : 0;
	r = rt_talk(&rt, nlh, NULL, NULL);
	rt_close(&rt);
	return r;
}

static int addr_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

int cvm_wg_addr_add(const char *ifname, int family, const void *addr, uint8_t prefix)
{
	uint8_t buf[WG_NL_BUF];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	struct rt rt;
	unsigned idx;
	int r, alen = addr_len(family);

	if (alen == 0 || addr == NULL || prefix > alen * 8)
		return CVM_E_INVAL;
	r = ifindex_of(ifname, &idx);
	if (r != CVM_OK)
		return r;
	r = rt_open(&rt);
	if (r != CVM_OK)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_index = idx;
	mnl_attr_put(nlh, IFA_LOCAL, (size_t)alen, addr);
	mnl_attr_put(nlh, IFA_ADDRESS, (size_t)alen, addr);
	r = rt_talk(&rt, nlh, NULL, NULL);
	rt_close(&rt);
	return r;
}

struct addr_list {
	unsigned idx;
	int family;
	struct {
		uint8_t family, prefix;
		uint8_t a[16];
	} * v;
	size_t n, cap;
	bool nomem;
};

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_list *l = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct nlattr *a;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa) || ifa->ifa_index != l->idx ||
	    (l->family != AF_UNSPEC && ifa->ifa_family != l->family))
		return MNL_CB_OK;
/* libmnl's macro computes an int from pointer differences */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
	mnl_attr_for_each(a, nlh, sizeof(*ifa))
	{
		int alen = addr_len(ifa->ifa_family);

		if (mnl_attr_get_type(a) != IFA_LOCAL &&
		    !(mnl_attr_get_type(a) == IFA_ADDRESS && ifa->ifa_family == AF_INET6))
			continue;
		if (alen == 0 || mnl_attr_get_payload_len(a) != (uint16_t)alen)
			continue;
		if (l->n == l->cap) {
			size_t cap = l->cap == 0 ? 8 : l->cap * 2;
			void *nv =
			    cap > 65536 ? NULL : wg_grow(l->v, l->cap * sizeof(*l->v), cap * sizeof(*l->v));

			if (nv == NULL) {
				l->nomem = true;
				return MNL_CB_ERROR;
			}
			l->v = nv;
			l->cap = cap;
		}
		l->v[l->n].family = ifa->ifa_family;
		l->v[l->n].prefix = ifa->ifa_prefixlen;
		memcpy(l->v[l->n].a, mnl_attr_get_payload(a), (size_t)alen);
		l->n++;
		break;
	}
#pragma GCC diagnostic pop
	return MNL_CB_OK;
}

int cvm_wg_addr_flush(const char *ifname, int family)
{
	uint8_t buf[WG_NL_BUF];
	struct addr_list l;
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	struct rt rt;
	int r;

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return CVM_E_INVAL;
	memset(&l, 0, sizeof(l));
	l.family = family;
	r = ifindex_of(ifname, &l.idx);
	if (r != CVM_OK)
		return r;
	r = rt_open(&rt);
	if (r != CVM_OK)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	r = rt_talk(&rt, nlh, addr_cb, &l);
	if (l.nomem)
		r = CVM_E_NOMEM;
	for (size_t i = 0; r == CVM_OK && i < l.n; i++) {
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = RTM_DELADDR;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
		ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
		ifa->ifa_family = l.v[i].family;
		ifa->ifa_prefixlen = l.v[i].prefix;
		ifa->ifa_index = l.idx;
		mnl_attr_put(nlh, IFA_LOCAL, (size_t)addr_len(l.v[i].family), l.v[i].a);
		r = rt_talk(&rt, nlh, NULL, NULL);
	}
	free(l.v);
	rt_close(&rt);
	return r;
}

int cvm_wg_route_add(const char *ifname, int family, const void *dst, uint8_t prefix)
{
	uint8_t buf[WG_NL_BUF];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	struct rt rt;
	unsigned idx;
	int r, alen = addr_len(family);

	if (alen == 0 || dst == NULL || prefix > alen * 8)
		return CVM_E_INVAL;
	r = ifindex_of(ifname, &idx);
	if (r != CVM_OK)
		return r;
	r = rt_open(&rt);
	if (r != CVM_OK)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_dst_len = prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_DST, (size_t)alen, dst);
	mnl_attr_put_u32(nlh, RTA_OIF, idx);
	r = rt_talk(&rt, nlh, NULL, NULL);
	rt_close(&rt);
	return r;
}
