/* libFuzzer harness for lib/wg's reader of the kernel's WG_CMD_GET_DEVICE
 * dump replies (one datagram of netlink messages, family 0x1d, sequence 9,
 * as the seeds were made).
 *
 * Invariants: a parse that succeeds leaves at most CVM_WG_PEERS_MAX peers,
 * each with at most CVM_WG_ALLOWED_IPS_MAX allowed IPs of a known family and
 * a cidr that fits it, and a handshake nsec below one second; the private
 * key is kept only when asked for (the first input byte's low bit), and is
 * then 32 bytes; nothing leaks. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/err.h>
#include <cvmkit/secret.h>

#include "wg/wg_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct wg_dev_builder *b)
{
	const struct cvm_wg_device *d = b->dev;

	if (d->peer_count > CVM_WG_PEERS_MAX)
		__builtin_trap();
	for (size_t i = 0; i < d->peer_count; i++) {
		const struct cvm_wg_peer *p = &d->peers[i];

		if (p->allowed_ip_count > CVM_WG_ALLOWED_IPS_MAX || p->last_handshake_nsec < 0 ||
		    p->last_handshake_nsec >= 1000000000 || p->last_handshake_sec < 0)
			__builtin_trap();
		for (size_t j = 0; j < p->allowed_ip_count; j++) {
			const struct cvm_wg_allowed_ip *a = &p->allowed_ips[j];

			if ((a->family != AF_INET && a->family != AF_INET6) ||
			    a->cidr > (a->family == AF_INET ? 32 : 128))
				__builtin_trap();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_dev_builder b;
	bool want_private = size > 0 && (data[0] & 1) != 0, done = false;
	int r;

	if (wg_b_init(&b, want_private) != CVM_OK)
		return 0;
	r = wg_nl_parse_get(&b, 0x1d, 9, data, size, &done);
	if (r != CVM_OK && done)
		__builtin_trap();
	if (r == CVM_OK)
		check(&b);
	if (b.priv != NULL && (!want_private || b.priv->len != CVM_WG_KEY_LEN))
		__builtin_trap();
	wg_b_cleanup(&b);
	return 0;
}
