/* lib/wg internals: message builders and reply parsers, apart from the
 * sockets so that the unit tests and fuzzers drive them directly. */
#ifndef CVM_WG_INT_H
#define CVM_WG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/wg.h>

/* one netlink datagram: libmnl's MNL_SOCKET_BUFFER_SIZE is a sysconf() call, not a constant */
#define WG_NL_BUF 8192

/* wg_grow returns a block of new_len bytes holding the first old_len bytes
 * of `old`, which it wipes and frees (never realloc: the UAPI answer it grows
 * holds the private key); NULL, with `old` untouched, when out of memory. */
void *wg_grow(void *old, size_t old_len, size_t new_len);

/* A device under construction from untrusted replies, with every count capped. */
struct wg_dev_builder {
	struct cvm_wg_device *dev;
	size_t peer_cap;
	size_t ip_cap; /* of the last peer */
	bool want_private;
	struct cvm_secret *priv; /* only when want_private */
};
int wg_b_init(struct wg_dev_builder *b, bool want_private);
int wg_b_add_peer(struct wg_dev_builder *b, const uint8_t pub[CVM_WG_KEY_LEN]);
int wg_b_add_ip(struct wg_dev_builder *b, const struct cvm_wg_allowed_ip *ip);
int wg_b_set_private(struct wg_dev_builder *b, const uint8_t key[CVM_WG_KEY_LEN]);
struct cvm_wg_peer *wg_b_last_peer(struct wg_dev_builder *b);
void wg_b_cleanup(struct wg_dev_builder *b);
int wg_check_device(const struct cvm_wg_device *d);

/* A list of netlink messages, freed (and wiped: the first may hold the private key) together. */
struct wg_msgs {
	uint8_t **buf;
	size_t *len;
	size_t count;
};
void wg_msgs_free(struct wg_msgs *m);

/* wg_nl_build_set builds the WG_CMD_SET_DEVICE messages for `d`, none
 * longer than `msg_max` bytes, with sequence numbers from `seq` on. */
int wg_nl_build_set(uint16_t family, const char *ifname, const struct cvm_wg_device *d, uint32_t seq,
                    size_t msg_max, struct wg_msgs *out);
/* wg_nl_build_get writes the WG_CMD_GET_DEVICE dump request into `buf`. */
size_t wg_nl_build_get(uint16_t family, const char *ifname, uint32_t seq, uint8_t *buf, size_t cap);
/* wg_nl_parse_get parses one datagram of the dump's replies into `b`:
 * CVM_OK with *done set at NLMSG_DONE; CVM_E_SYSTEM (errno) at an error
 * message; CVM_E_FORMAT / CVM_E_TRUNCATED / CVM_E_TOO_LARGE otherwise. */
int wg_nl_parse_get(struct wg_dev_builder *b, uint16_t family, uint32_t seq, const uint8_t *buf, size_t len,
                    bool *done);

/* wg_uapi_build_set writes the UAPI "set=1" request, ended by its empty line. */
int wg_uapi_build_set(const struct cvm_wg_device *d, char **out, size_t *out_len);
/* wg_uapi_parse_get parses a complete "get=1" answer (up to and including
 * the empty line after errno=N). A non-zero errno gives CVM_E_SYSTEM. */
int wg_uapi_parse_get(struct wg_dev_builder *b, const uint8_t *buf, size_t len);
/* wg_uapi_parse_errno parses the answer to a "set=1": exactly "errno=N\n\n". */
int wg_uapi_parse_errno(const uint8_t *buf, size_t len, int *err);

#endif
