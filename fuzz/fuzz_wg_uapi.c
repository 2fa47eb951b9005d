/* libFuzzer harness for lib/wg's readers of the WireGuard UAPI answers
 * (wireguard-go's "get=1" answer, and the "errno=N" answer to a set).
 *
 * Invariants: a "get" that parses ends with "errno=0\n\n" and leaves at
 * most CVM_WG_PEERS_MAX peers, each with at most CVM_WG_ALLOWED_IPS_MAX
 * allowed IPs of a known family and a cidr that fits it; the private key is
 * kept only when asked for (the first input byte's low bit); a set answer
 * that parses is exactly "errno=N\n\n" with N <= 4095; nothing leaks. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/secret.h>

#include "wg/wg_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_dev_builder b;
	bool want_private = size > 0 && (data[0] & 1) != 0;
	int r, e = -1;

	if (wg_b_init(&b, want_private) != CVM_OK)
		return 0;
	r = wg_uapi_parse_get(&b, data, size);
	if (r == CVM_OK) {
		const struct cvm_wg_device *d = b.dev;

		if (size < 9 || memcmp(data + size - 9, "errno=0\n\n", 9) != 0 ||
		    d->peer_count > CVM_WG_PEERS_MAX)
			__builtin_trap();
		for (size_t i = 0; i < d->peer_count; i++) {
			const struct cvm_wg_peer *p = &d->peers[i];

			if (p->allowed_ip_count > CVM_WG_ALLOWED_IPS_MAX ||
			    p->last_handshake_nsec >= 1000000000)
				__builtin_trap();
			for (size_t j = 0; j < p->allowed_ip_count; j++) {
				const struct cvm_wg_allowed_ip *a = &p->allowed_ips[j];

				if ((a->family != AF_INET && a->family != AF_INET6) ||
				    a->cidr > (a->family == AF_INET ? 32 : 128))
					__builtin_trap();
			}
		}
	}
	if (b.priv != NULL && (!want_private || b.priv->len != CVM_WG_KEY_LEN))
		__builtin_trap();
	wg_b_cleanup(&b);
	r = wg_uapi_parse_errno(data, size, &e);
	if (r == CVM_OK &&
	    (e < 0 || e > 4095 || size < 9 || data[size - 1] != '\n' || data[size - 2] != '\n'))
		__builtin_trap();
	return 0;
}
