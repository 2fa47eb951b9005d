/* Handles on a WireGuard interface and the I/O of both backends. */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/err.h>
#include <cvmkit/log.h>
#include <cvmkit/secret.h>

#include "wg_int.h"

struct cvm_wg {
	enum cvm_wg_backend backend;
	char ifname[CVM_WG_IFNAME_MAX + 1];
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct mnl_socket *nl;
	uint16_t family;
	uint32_t seq, portid;
};

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *a;

/* libmnl's macro computes an int from pointer differences */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr))
	{
		if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && mnl_attr_validate(a, MNL_TYPE_U16) >= 0)
			*(uint16_t *)data = mnl_attr_get_u16(a);
	}
#pragma GCC diagnostic pop
	return MNL_CB_OK;
}

/* nl_talk sends one request and runs the replies to the ACK through `cb`. */
static int nl_talk(struct cvm_wg *h, const void *req, size_t len, uint32_t seq, mnl_cb_t cb, void *data)
{
	uint8_t buf[WG_NL_BUF];
	ssize_t n;
	int r;

	if (mnl_socket_sendto(h->nl, req, len) < 0)
		return CVM_E_SYSTEM;
	do {
		n = mnl_socket_recvfrom(h->nl, buf, sizeof(buf));
		if (n < 0)
			return CVM_E_SYSTEM;
		r = mnl_cb_run(buf, (size_t)n, seq, h->portid, cb, data);
	} while (r > MNL_CB_STOP);
	return r < 0 ? CVM_E_SYSTEM : CVM_OK;
}

static int kernel_open(struct cvm_wg *h)
{
	uint8_t buf[WG_NL_BUF];
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	int r;

	h->nl = mnl_socket_open(NETLINK_GENERIC);
	if (h->nl == NULL || mnl_socket_bind(h->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return CVM_E_SYSTEM;
	h->portid = mnl_socket_get_portid(h->nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++h->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	r = nl_talk(h, nlh, nlh->nlmsg_len, h->seq, family_cb, &h->family);
	if (r == CVM_E_SYSTEM && errno == ENOENT)
		return CVM_E_NOT_FOUND;
	if (r == CVM_OK && h->family == 0)
		return CVM_E_NOT_FOUND;
	return r;
}

static const struct timeval uapi_timeout = {.tv_sec = CVM_WG_UAPI_TIMEOUT_S};

static int uapi_connect(const struct cvm_wg *h, int *out)
{
	struct sockaddr_un sun;
	int fd;

	*out = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, h->sock_path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CVM_E_SYSTEM;
	/* a server that stops answering must not hang the gateway's registrations */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &uapi_timeout, sizeof(uapi_timeout)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &uapi_timeout, sizeof(uapi_timeout)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return CVM_E_SYSTEM;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return (e == ENOENT || e == ECONNREFUSED) ? CVM_E_NOT_FOUND : CVM_E_SYSTEM;
	}
	*out = fd;
	return CVM_OK;
}

/* uapi_call sends `req` and reads the answer up to its closing empty line
 * (the server may keep the connection open), at most max bytes. */
static int uapi_call(const struct cvm_wg *h, const char *req, size_t req_len, size_t max, uint8_t **out,
                     size_t *out_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = -1, r;

	*out = NULL;
	*out_len = 0;
	r = uapi_connect(h, &fd);
	if (r != CVM_OK)
		return r;
	for (size_t off = 0; off < req_len;) {
		ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = CVM_E_SYSTEM;
			goto out;
		}
		off += (size_t)n;
	}
	for (;;) {
		ssize_t n;

		if (len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n')
			break;
		if (cap - len < 4096) {
			size_t ncap = cap == 0 ? 16384 : cap * 2;
			uint8_t *nb;

			if (cap >= max) {
				r = CVM_E_TOO_LARGE;
				goto out;
			}
			if (ncap > max)
				ncap = max;
			nb = wg_grow(buf, cap, ncap);
			if (nb == NULL) {
				r = CVM_E_NOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = CVM_E_SYSTEM;
			goto out;
		}
		if (n == 0) {
			r = CVM_E_TRUNCATED;
			goto out;
		}
		len += (size_t)n;
	}
	*out = buf;
	*out_len = len;
	buf = NULL; /* transferred */
	r = CVM_OK;
out:
	/* a get answer holds the private key */
	cvm_freezero(buf, cap);
	close(fd);
	return r;
}

int cvm_wg_open(const char *ifname, enum cvm_wg_backend b, const char *uapi_dir, struct cvm_wg **out)
{
	struct cvm_wg *h = NULL;
	size_t n;
	int r, fd = -1;

	*out = NULL;
	if (ifname == NULL)
		return CVM_E_INVAL;
	n = strnlen(ifname, CVM_WG_IFNAME_MAX + 1);
	if (n == 0 || n > CVM_WG_IFNAME_MAX || strchr(ifname, '/') != NULL ||
	    (b != CVM_WG_AUTO && b != CVM_WG_KERNEL && b != CVM_WG_USERSPACE))
		return CVM_E_INVAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return CVM_E_NOMEM;
	memcpy(h->ifname, ifname, n);
	if (uapi_dir == NULL)
		uapi_dir = CVM_WG_UAPI_DIR_DEFAULT;
	if ((size_t)snprintf(h->sock_path, sizeof(h->sock_path), "%s/%s.sock", uapi_dir, ifname) >=
	    sizeof(h->sock_path)) {
		r = CVM_E_INVAL;
		goto out;
	}
	h->seq = (uint32_t)time(NULL);
	if (b != CVM_WG_USERSPACE) {
		r = kernel_open(h);
		if (r == CVM_OK) {
			struct cvm_wg_device *d = NULL;

			h->backend = CVM_WG_KERNEL;
			/* the family exists: does the interface? */
			r = cvm_wg_get(h, &d);
			cvm_wg_device_free(d);
			if (r == CVM_E_SYSTEM && (errno == ENODEV || errno == ENOENT || errno == EOPNOTSUPP))
				r = CVM_E_NOT_FOUND;
			if (r == CVM_OK || b == CVM_WG_KERNEL)
				goto done;
		} else if (b == CVM_WG_KERNEL) {
			goto done;
		}
		if (h->nl != NULL)
			mnl_socket_close(h->nl);
		h->nl = NULL;
	}
	h->backend = CVM_WG_USERSPACE;
	r = uapi_connect(h, &fd);
	if (fd >= 0)
		close(fd);
done:
	if (r == CVM_E_NOT_FOUND)
		cvm_error(
		    "no WireGuard interface %s (%s): start `wireguard-go %s` or load the wireguard kernel "
		    "module and create it",
		    ifname, h->backend == CVM_WG_KERNEL ? "netlink" : h->sock_path, ifname);
	else if (r != CVM_OK)
		cvm_error_r(r, "open WireGuard interface %s", ifname);
	if (r != CVM_OK)
		goto out;
	*out = h;
	h = NULL; /* transferred */
out:
	cvm_wg_close(h);
	return r;
}

void cvm_wg_close(struct cvm_wg *h)
{
	if (h == NULL)
		return;
	if (h->nl != NULL)
		mnl_socket_close(h->nl);
	free(h);
}

enum cvm_wg_backend cvm_wg_backend(const struct cvm_wg *h)
{
	return h->backend;
}

static int kernel_set(struct cvm_wg *h, const struct cvm_wg_device *d)
{
	struct wg_msgs m;
	uint32_t seq = h->seq + 1;
	int r;

	r = wg_nl_build_set(h->family, h->ifname, d, seq, WG_NL_BUF, &m);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < m.count; i++) {
		r = nl_talk(h, m.buf[i], m.len[i], seq + (uint32_t)i, NULL, NULL);
		if (r != CVM_OK)
			break;
	}
	h->seq = seq + (uint32_t)m.count;
	wg_msgs_free(&m);
	return r;
}

static int kernel_get(struct cvm_wg *h, struct wg_dev_builder *b)
{
	uint8_t req[WG_NL_BUF];
	uint8_t *buf = NULL;
	size_t len;
	bool done = false;
	uint32_t seq = ++h->seq;
	int r;

	len = wg_nl_build_get(h->family, h->ifname, seq, req, sizeof(req));
	if (mnl_socket_sendto(h->nl, req, len) < 0)
		return CVM_E_SYSTEM;
	buf = malloc(WG_NL_BUF);
	if (buf == NULL)
		return CVM_E_NOMEM;
	do {
		ssize_t n = mnl_socket_recvfrom(h->nl, buf, WG_NL_BUF);

		if (n < 0) {
			r = CVM_E_SYSTEM;
			break;
		}
		r = wg_nl_parse_get(b, h->family, seq, buf, (size_t)n, &done);
	} while (r == CVM_OK && !done);
	/* replies may carry the private key */
	cvm_freezero(buf, WG_NL_BUF);
	return r;
}

int cvm_wg_set(struct cvm_wg *h, const struct cvm_wg_device *d)
{
	char *req = NULL;
	uint8_t *ans = NULL;
	size_t req_len = 0, ans_len = 0;
	int r, e = 0;

	if (h->backend == CVM_WG_KERNEL) {
		r = kernel_set(h, d);
		goto out;
	}
	r = wg_uapi_build_set(d, &req, &req_len);
	if (r != CVM_OK)
		goto out;
	r = uapi_call(h, req, req_len, 4096, &ans, &ans_len);
	if (r != CVM_OK)
		goto out;
	r = wg_uapi_parse_errno(ans, ans_len, &e);
	if (r == CVM_OK && e != 0) {
		errno = e;
		r = CVM_E_SYSTEM;
	}
out:
	if (r != CVM_OK)
		cvm_error_r(r, "configure WireGuard interface %s", h->ifname);
	cvm_freezero(req, req_len);
	free(ans);
	return r;
}

static int get_any(struct cvm_wg *h, bool want_private, struct wg_dev_builder *b)
{
	uint8_t *ans = NULL;
	size_t ans_len = 0;
	int r;

	r = wg_b_init(b, want_private);
	if (r != CVM_OK)
		return r;
	if (h->backend == CVM_WG_KERNEL)
		return kernel_get(h, b);
	r = uapi_call(h, "get=1\n\n", 7, CVM_WG_UAPI_REPLY_MAX, &ans, &ans_len);
	if (r != CVM_OK)
		return r;
	r = wg_uapi_parse_get(b, ans, ans_len);
	cvm_freezero(ans, ans_len);
	return r;
}

int cvm_wg_get(struct cvm_wg *h, struct cvm_wg_device **out)
{
	struct wg_dev_builder b;
	int r;

	*out = NULL;
	r = get_any(h, false, &b);
	if (r == CVM_OK) {
		*out = b.dev;
		b.dev = NULL; /* transferred */
	}
	wg_b_cleanup(&b);
	return r;
}

int cvm_wg_get_private_key(struct cvm_wg *h, struct cvm_secret **out)
{
	struct wg_dev_builder b;
	int r;

	*out = NULL;
	r = get_any(h, true, &b);
	if (r == CVM_OK && b.priv == NULL)
		r = CVM_E_NOT_FOUND;
	if (r == CVM_OK) {
		*out = b.priv;
		b.priv = NULL; /* transferred */
	}
	wg_b_cleanup(&b);
	return r;
}
