/* Devices read back from the kernel or a UAPI server, built with caps. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/secret.h>

#include "wg_int.h"

void *wg_grow(void *old, size_t old_len, size_t new_len)
{
	uint8_t *n;

	if (new_len < old_len)
		return NULL;
	n = malloc(new_len == 0 ? 1 : new_len);
	if (n == NULL)
		return NULL;
	if (old_len != 0)
		memcpy(n, old, old_len);
	cvm_freezero(old, old_len);
	return n;
}

int wg_b_init(struct wg_dev_builder *b, bool want_private)
{
	memset(b, 0, sizeof(*b));
	b->want_private = want_private;
	b->dev = calloc(1, sizeof(*b->dev));
	return b->dev == NULL ? CVM_E_NOMEM : CVM_OK;
}

struct cvm_wg_peer *wg_b_last_peer(struct wg_dev_builder *b)
{
	if (b->dev == NULL || b->dev->peer_count == 0)
		return NULL;
	return &b->dev->peers[b->dev->peer_count - 1];
}

int wg_b_add_peer(struct wg_dev_builder *b, const uint8_t pub[CVM_WG_KEY_LEN])
{
	struct cvm_wg_device *d = b->dev;
	struct cvm_wg_peer *p;

	if (d->peer_count >= CVM_WG_PEERS_MAX)
		return CVM_E_TOO_LARGE;
	if (d->peer_count == b->peer_cap) {
		size_t cap = b->peer_cap == 0 ? 16 : b->peer_cap * 2;
		struct cvm_wg_peer *np;

		if (cap > CVM_WG_PEERS_MAX)
			cap = CVM_WG_PEERS_MAX;
		np = wg_grow(d->peers, b->peer_cap * sizeof(*np), cap * sizeof(*np));
		if (np == NULL)
			return CVM_E_NOMEM;
		d->peers = np;
		b->peer_cap = cap;
	}
	p = &d->peers[d->peer_count++];
	memset(p, 0, sizeof(*p));
	memcpy(p->public_key, pub, CVM_WG_KEY_LEN);
	p->endpoint.sa.sa_family = AF_UNSPEC;
	b->ip_cap = 0;
	return CVM_OK;
}

int wg_b_add_ip(struct wg_dev_builder *b, const struct cvm_wg_allowed_ip *ip)
{
	struct cvm_wg_peer *p = wg_b_last_peer(b);

	if (p == NULL)
		return CVM_E_FORMAT;
	if ((ip->family != AF_INET && ip->family != AF_INET6) ||
	    ip->cidr > (ip->family == AF_INET ? 32 : 128))
		return CVM_E_FORMAT;
	if (p->allowed_ip_count >= CVM_WG_ALLOWED_IPS_MAX)
		return CVM_E_TOO_LARGE;
	if (p->allowed_ip_count == b->ip_cap) {
		size_t cap = b->ip_cap == 0 ? 4 : b->ip_cap * 2;
		struct cvm_wg_allowed_ip *n;

		if (cap > CVM_WG_ALLOWED_IPS_MAX)
			cap = CVM_WG_ALLOWED_IPS_MAX;
		n = wg_grow(p->allowed_ips, b->ip_cap * sizeof(*n), cap * sizeof(*n));
		if (n == NULL)
			return CVM_E_NOMEM;
		p->allowed_ips = n;
		b->ip_cap = cap;
	}
	p->allowed_ips[p->allowed_ip_count++] = *ip;
	return CVM_OK;
}

int wg_b_set_private(struct wg_dev_builder *b, const uint8_t key[CVM_WG_KEY_LEN])
{
	/* the UAPI reports no public key of the device: it follows from this one */
	if (cvm_wg_key_public(key, b->dev->public_key) != CVM_OK)
		return CVM_E_CRYPTO;
	b->dev->flags |= CVM_WG_DEV_HAS_PUBLIC_KEY;
	if (!b->want_private)
		return CVM_OK; /* not asked for: the caller wipes its copy */
	if (b->priv == NULL) {
		b->priv = cvm_secret_new(CVM_WG_KEY_LEN);
		if (b->priv == NULL)
			return CVM_E_NOMEM;
	}
	memcpy(b->priv->p, key, CVM_WG_KEY_LEN);
	return CVM_OK;
}

void wg_b_cleanup(struct wg_dev_builder *b)
{
	cvm_wg_device_free(b->dev);
	cvm_secret_free(b->priv);
	memset(b, 0, sizeof(*b));
}

void cvm_wg_device_free(struct cvm_wg_device *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->peer_count; i++)
		free(d->peers[i].allowed_ips);
	free(d->peers);
	free(d);
}

int wg_check_device(const struct cvm_wg_device *d)
{
	if ((d->flags & CVM_WG_DEV_HAS_PRIVATE_KEY) != 0 &&
	    (d->private_key == NULL || d->private_key->len != CVM_WG_KEY_LEN))
		return CVM_E_INVAL;
	if (d->peer_count != 0 && d->peers == NULL)
		return CVM_E_INVAL;
	for (size_t i = 0; i < d->peer_count; i++) {
		const struct cvm_wg_peer *p = &d->peers[i];
		sa_family_t f = p->endpoint.sa.sa_family;

		if (f != AF_UNSPEC && f != AF_INET && f != AF_INET6)
			return CVM_E_INVAL;
		if (p->allowed_ip_count != 0 && p->allowed_ips == NULL)
			return CVM_E_INVAL;
		for (size_t j = 0; j < p->allowed_ip_count; j++) {
			const struct cvm_wg_allowed_ip *a = &p->allowed_ips[j];

			if ((a->family != AF_INET && a->family != AF_INET6) ||
			    a->cidr > (a->family == AF_INET ? 32 : 128))
				return CVM_E_INVAL;
		}
	}
	return CVM_OK;
}

void wg_msgs_free(struct wg_msgs *m)
{
	for (size_t i = 0; i < m->count; i++)
		cvm_freezero(m->buf[i], m->len[i]);
	free(m->buf);
	free(m->len);
	memset(m, 0, sizeof(*m));
}
