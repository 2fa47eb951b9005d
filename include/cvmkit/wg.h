/* WireGuard configuration without fork/exec (lib/wg, docs/wireguard.md).
 *
 * cvm-gatewayd registers one CVM per request; running `wg` for each (as
 * upstream dstack does, under a mutex) costs a process per registration and
 * serialises them. This module speaks to WireGuard directly:
 *
 *   - CVM_WG_KERNEL: the generic netlink family "wireguard"
 *     (linux/wireguard.h), WG_CMD_GET_DEVICE dumps and WG_CMD_SET_DEVICE;
 *   - CVM_WG_USERSPACE: the cross-platform UAPI text protocol that
 *     wireguard-go (and boringtun) serve on <dir>/<ifname>.sock;
 *   - CVM_WG_AUTO: the kernel family if it exists, else the socket.
 *
 * cvm_wg_set is incremental: only the peers listed change, so registering a
 * CVM is one small message however many peers the device holds.
 *
 * Thread-safety: a struct cvm_wg is used by one thread at a time (it holds
 * one socket and a sequence number); open one handle per thread. The key
 * and rtnetlink helpers hold no state and may be called from any thread. */
#ifndef CVMKIT_WG_H
#define CVMKIT_WG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "api.h"
#include "secret.h"

#define CVM_WG_KEY_LEN 32
/* base64 of 32 bytes: 43 characters and one '=' */
#define CVM_WG_KEY_B64_LEN 44
/* IFNAMSIZ - 1 */
#define CVM_WG_IFNAME_MAX 15
/* caps on what cvm_wg_get accepts from the kernel or a UAPI server */
#define CVM_WG_PEERS_MAX 100000
#define CVM_WG_ALLOWED_IPS_MAX 4096 /* per peer */
#define CVM_WG_UAPI_REPLY_MAX (64u << 20)
#define CVM_WG_UAPI_DIR_DEFAULT "/var/run/wireguard"
/* a UAPI server that neither reads nor answers for this long fails the call (CVM_E_SYSTEM, EAGAIN) */
#define CVM_WG_UAPI_TIMEOUT_S 5

enum cvm_wg_backend {
	CVM_WG_AUTO = 0,
	CVM_WG_KERNEL = 1,
	CVM_WG_USERSPACE = 2,
};

/* -- keys -- */

/* cvm_wg_key_generate returns a new private key (32 random bytes, clamped
 * as X25519 wants) in secret memory the caller frees with cvm_secret_free.
 * Returns 0, CVM_E_NOMEM or CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_wg_key_generate(struct cvm_secret **out);
/* cvm_wg_key_public writes the public key of `priv`. Returns 0 or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_wg_key_public(const uint8_t priv[CVM_WG_KEY_LEN], uint8_t out[CVM_WG_KEY_LEN]);
/* cvm_wg_key_from_base64 decodes exactly the standard base64 of 32 bytes:
 * 44 characters of the RFC 4648 alphabet ('+' and '/'), the last one '=',
 * and the unused low bits of the 43rd character zero. URL-safe characters,
 * missing padding, whitespace or anything after the '=' are CVM_E_FORMAT
 * (a key that two decoders read differently is a routing bug waiting to
 * happen). `len` is the length of `in`, which needs no NUL. The decoding
 * time does not depend on the key's bits. Returns 0 or CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_wg_key_from_base64(const char *in, size_t len, uint8_t out[CVM_WG_KEY_LEN]);
/* cvm_wg_key_to_base64 writes the 44 characters and a NUL. */
CVM_API void cvm_wg_key_to_base64(const uint8_t key[CVM_WG_KEY_LEN], char out[CVM_WG_KEY_B64_LEN + 1]);

/* -- configuration -- */

struct cvm_wg_allowed_ip {
	sa_family_t family; /* AF_INET or AF_INET6 */
	uint8_t cidr;       /* <= 32 or <= 128 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

union cvm_wg_endpoint {
	struct sockaddr sa; /* sa_family AF_UNSPEC: none / unchanged */
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

enum cvm_wg_peer_flags {
	CVM_WG_PEER_REMOVE = 1u << 0,              /* set: remove this peer */
	CVM_WG_PEER_REPLACE_ALLOWED_IPS = 1u << 1, /* set: allowed_ips replace the peer's */
	CVM_WG_PEER_UPDATE_ONLY = 1u << 2,         /* set: change the peer only if it exists */
	CVM_WG_PEER_HAS_KEEPALIVE = 1u << 3,       /* set: persistent_keepalive is meant */
};

struct cvm_wg_peer {
	uint8_t public_key[CVM_WG_KEY_LEN];
	uint32_t flags; /* enum cvm_wg_peer_flags (set only) */
	union cvm_wg_endpoint endpoint;
	uint16_t persistent_keepalive; /* seconds, 0 = off */
	/* get only */
	int64_t last_handshake_sec; /* 0: never */
	int64_t last_handshake_nsec;
	uint64_t rx_bytes, tx_bytes;
	/* set: added to (or, with REPLACE_ALLOWED_IPS, replacing) the peer's */
	struct cvm_wg_allowed_ip *allowed_ips;
	size_t allowed_ip_count;
};

enum cvm_wg_device_flags {
	CVM_WG_DEV_HAS_PRIVATE_KEY = 1u << 0,
	CVM_WG_DEV_HAS_LISTEN_PORT = 1u << 1,
	CVM_WG_DEV_HAS_FWMARK = 1u << 2,
	CVM_WG_DEV_REPLACE_PEERS = 1u << 3,  /* set: the peers below replace all */
	CVM_WG_DEV_HAS_PUBLIC_KEY = 1u << 4, /* get: the device has a key */
};

struct cvm_wg_device {
	uint32_t flags; /* enum cvm_wg_device_flags */
	/* set only (borrowed; CVM_WG_KEY_LEN bytes); cvm_wg_get never fills it */
	const struct cvm_secret *private_key;
	uint8_t public_key[CVM_WG_KEY_LEN]; /* get only */
	uint16_t listen_port;
	uint32_t fwmark;
	struct cvm_wg_peer *peers;
	size_t peer_count;
};

struct cvm_wg;

/* cvm_wg_open returns a handle on the WireGuard interface `ifname` (at
 * most CVM_WG_IFNAME_MAX characters) through backend `b`. `uapi_dir` is the
 * folder of the UAPI sockets (NULL: CVM_WG_UAPI_DIR_DEFAULT); the kernel
 * backend ignores it. It checks that the interface exists (the kernel
 * answers a GET, or the socket accepts a connection) and logs what to do
 * when not. Returns 0, CVM_E_INVAL, CVM_E_NOT_FOUND (no such interface or
 * no such backend), CVM_E_NOMEM or CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_wg_open(const char *ifname, enum cvm_wg_backend b, const char *uapi_dir,
                                       struct cvm_wg **out);
/* cvm_wg_close closes the handle; NULL is a no-op. */
CVM_API void cvm_wg_close(struct cvm_wg *h);
/* cvm_wg_backend returns the backend the handle uses (never AUTO). */
CVM_API enum cvm_wg_backend cvm_wg_backend(const struct cvm_wg *h);

/* cvm_wg_set applies `d` to the device: the device fields its flags name,
 * then each listed peer (peers not listed are untouched unless
 * CVM_WG_DEV_REPLACE_PEERS). A peer list too long for one netlink message
 * goes in several, as the kernel expects. Returns 0, CVM_E_INVAL (a bad
 * family or cidr, a private key that is not 32 bytes), CVM_E_FORMAT (the
 * other side sent an unreadable answer), CVM_E_SYSTEM (errno: what the
 * kernel or the UAPI server refused with) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_wg_set(struct cvm_wg *h, const struct cvm_wg_device *d);

/* cvm_wg_get reads the device: listen port, fwmark, public key, and each
 * peer with its endpoint, last handshake, counters, keepalive and allowed
 * IPs. The private key the kernel or server reports is wiped, never
 * returned (cvm_wg_get_private_key asks for it). The caller frees `*out`
 * with cvm_wg_device_free. Returns 0, CVM_E_FORMAT / CVM_E_TRUNCATED (the
 * answer is malformed), CVM_E_TOO_LARGE (more than CVM_WG_PEERS_MAX peers or
 * CVM_WG_ALLOWED_IPS_MAX allowed IPs on a peer), CVM_E_SYSTEM or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_wg_get(struct cvm_wg *h, struct cvm_wg_device **out);
/* cvm_wg_get_private_key returns the device's private key in secret
 * memory, or CVM_E_NOT_FOUND when it has none. */
CVM_API CVM_MUST_CHECK int cvm_wg_get_private_key(struct cvm_wg *h, struct cvm_secret **out);
/* cvm_wg_device_free frees what cvm_wg_get returned; NULL is a no-op. */
CVM_API void cvm_wg_device_free(struct cvm_wg_device *d);

/* -- interfaces, addresses, routes (rtnetlink; no `ip`) -- */

/* cvm_wg_link_create creates a kernel WireGuard interface (RTM_NEWLINK,
 * kind "wireguard"). CVM_E_NOT_FOUND when the kernel has no wireguard
 * module; wireguard-go creates its own interface instead. */
CVM_API CVM_MUST_CHECK int cvm_wg_link_create(const char *ifname);
/* cvm_wg_link_set_up sets the interface up (`up`) or down. */
CVM_API CVM_MUST_CHECK int cvm_wg_link_set_up(const char *ifname, bool up);
/* cvm_wg_addr_add adds `addr`/`prefix` (family AF_INET or AF_INET6, `addr`
 * a struct in_addr or in6_addr) to the interface. An address already there
 * is not an error. */
CVM_API CVM_MUST_CHECK int cvm_wg_addr_add(const char *ifname, int family, const void *addr, uint8_t prefix);
/* cvm_wg_addr_flush removes every address of `family` (AF_UNSPEC: both)
 * from the interface. */
CVM_API CVM_MUST_CHECK int cvm_wg_addr_flush(const char *ifname, int family);
/* cvm_wg_route_add adds a route to `dst`/`prefix` through the interface
 * (scope link). A route already there is not an error. */
CVM_API CVM_MUST_CHECK int cvm_wg_route_add(const char *ifname, int family, const void *dst, uint8_t prefix);

#endif
