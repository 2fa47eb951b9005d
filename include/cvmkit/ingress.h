/* The gateway's ingress: what a connection's first bytes and its TLS server
 * name say about where it goes (dstack spec §7.1).
 *
 *  - Names. An SNI `<label>.<base>` whose `<base>` is one of the gateway's
 *    wildcard domains routes to an app: `<label>` is `<id>[-[port][s|g]]`
 *    (dstack's parse_dst_info, with its order: a trailing `g` is taken
 *    first, then a trailing `s`; both is an error). Any other name is a
 *    custom domain, whose app the TXT record `_dstack-app-address.<sni>`
 *    (then `_dstack-app-address-wildcard.<parent>`) names as
 *    "<app_id>:<port>".
 *  - The TLS ClientHello, peeked (never consumed): its SNI, ALPN offers and
 *    whether it offers TLS 1.3. It may span several handshake records.
 *  - The PROXY protocol header (haproxy's proxy-protocol.txt, v1 text and
 *    v2 binary) that a load balancer in front of the gateway sends, and its
 *    writer for the gateway's own connections to apps.
 *
 * Everything here parses untrusted bytes and decides nothing: whether an id
 * exists, and whether a port is allowed, is the gateway's business. */
#ifndef CVMKIT_INGRESS_H
#define CVMKIT_INGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "api.h"

#define CVM_INGRESS_ID_MAX 63    /* one DNS label */
#define CVM_INGRESS_NAME_MAX 253 /* a DNS name without its trailing dot */
/* The TXT prefix dstack's gateway looks up by default (app_address_ns_prefix). */
#define CVM_INGRESS_TXT_PREFIX "_dstack-app-address"
/* The longest TXT prefix cvm_ingress_txt_names takes (one DNS label). */
#define CVM_INGRESS_PREFIX_MAX 21

/* struct cvm_ingress_dst is a parsed `<id>[-[port][s|g]]` label or TXT value. */
struct cvm_ingress_dst {
	char id[CVM_INGRESS_ID_MAX + 1]; /* app id, instance id, or "gateway"/"health"; lower case */
	uint16_t port;                   /* 1..65535; default 443 with `s`, else 80 */
	bool is_tls;                     /* 's': TLS passthrough (the app terminates TLS) */
	bool is_h2;                      /* 'g': the gateway terminates TLS, ALPN h2 only */
};

/* cvm_ingress_parse_subdomain parses the `len` bytes of `label` (the SNI
 * label before the first '.', no NUL needed) into `out` (zeroed first, and
 * on failure). The id is one or more ASCII letters and digits (returned in
 * lower case); one '-' may follow with a decimal port (1..65535, no sign, no
 * space) and then `s` or `g`; "myapp-s" is port 443 with TLS, "myapps" the
 * id "myapps". Unlike dstack it refuses a label that ends in '-' (no DNS
 * label does) and port 0. Returns 0, or CVM_E_FORMAT with *why (if `why` is
 * not NULL) a static English reason; CVM_E_INVAL for NULL arguments. It
 * does not check that the id names an app. */
CVM_API CVM_MUST_CHECK int cvm_ingress_parse_subdomain(const char *label, size_t len,
                                                       struct cvm_ingress_dst *out, const char **why);

/* cvm_ingress_name_check checks that the `len` bytes at `name` are a host
 * name as DNS and SNI carry it: 1..253 bytes, dot-separated labels of 1..63
 * ASCII letters, digits and '-', no label starting or ending with '-', no
 * trailing dot. Returns 0 or CVM_E_FORMAT with *why set (if not NULL). */
CVM_API CVM_MUST_CHECK int cvm_ingress_name_check(const char *name, size_t len, const char **why);

enum cvm_ingress_kind {
	CVM_INGRESS_APP = 1,    /* <label>.<one of the base domains> */
	CVM_INGRESS_CUSTOM = 2, /* any other name: its app comes from a TXT record */
};

struct cvm_ingress_route {
	enum cvm_ingress_kind kind;
	struct cvm_ingress_dst dst;          /* kind APP */
	char base[CVM_INGRESS_NAME_MAX + 1]; /* the matched base domain, lower case (APP) */
	char name[CVM_INGRESS_NAME_MAX + 1]; /* the SNI, lower case */
};

/* cvm_ingress_route routes the SNI `sni` (`len` bytes): it checks the name
 * (cvm_ingress_name_check; a name of one label is refused too), lower-cases
 * it into out->name and splits it at the first '.'. When the rest equals one
 * of the `n_base` base domains (case-insensitive; a leading "*." and a
 * trailing '.' of a base domain are ignored) the label is parsed (kind
 * APP), else the kind is CUSTOM and out->dst is zero. Returns 0;
 * CVM_E_FORMAT with *why set when the name is not a host name or its label
 * does not parse (for a bad label out->kind is APP and name and base are
 * set, so that the caller can say under which domain it was refused; for a
 * bad name out is zero); CVM_E_INVAL for NULL arguments. */
CVM_API CVM_MUST_CHECK int cvm_ingress_route(const char *sni, size_t len, const char *const *base_domains,
                                             size_t n_base, struct cvm_ingress_route *out, const char **why);

/* cvm_ingress_txt_names writes the TXT names to look up for the custom
 * domain `sni` (NUL-terminated), in order: "<prefix>.<sni>", then
 * "<prefix>-wildcard.<parent of sni>". `prefix` NULL is
 * CVM_INGRESS_TXT_PREFIX; a prefix is 1..CVM_INGRESS_PREFIX_MAX letters,
 * digits, '-' and '_'. The names are lower case. Returns 0, CVM_E_FORMAT
 * when sni is not a host name of two labels or more, CVM_E_INVAL for a bad
 * prefix. A result longer than 253 bytes is written all the same: DNS will
 * not find it. */
CVM_API CVM_MUST_CHECK int cvm_ingress_txt_names(const char *sni, const char *prefix,
                                                 char out[2][CVM_INGRESS_NAME_MAX + 32]);

/* cvm_ingress_parse_txt parses a TXT value "<app_id>:<port>" (`len` bytes,
 * no quotes, no spaces) into `out`, with is_tls true: custom domains are
 * passed through to the app, which holds their certificate. The id is as in
 * cvm_ingress_parse_subdomain, the port 1..65535. Returns 0, or
 * CVM_E_FORMAT with *why set. */
CVM_API CVM_MUST_CHECK int cvm_ingress_parse_txt(const char *txt, size_t len, struct cvm_ingress_dst *out,
                                                 const char **why);

#define CVM_CLIENTHELLO_MAX 16384 /* bytes of handshake message we accept */

struct cvm_clienthello {
	bool has_sni;
	char sni[CVM_INGRESS_NAME_MAX + 1]; /* as sent (checked by cvm_ingress_name_check) */
	size_t sni_len;
	bool alpn_h2, alpn_http11; /* the ALPN list offers "h2", "http/1.1" */
	size_t n_alpn;             /* protocols in the ALPN list (0: no ALPN extension) */
	bool tls13;                /* supported_versions lists 0x0304 */
	size_t record_bytes;       /* bytes of the buffer the ClientHello's records took */
};

/* cvm_clienthello_parse peeks at the first TLS record(s) of a connection,
 * the `len` bytes at `buf`, without consuming them. Returns 0 when the whole
 * ClientHello is in `buf` (it may span several handshake records; bytes
 * after its last record are not looked at) and fills `out`;
 * CVM_E_TRUNCATED when more bytes are needed (*need, if `need` is not NULL,
 * is then the total length that is needed at least, or 0 when it is not yet
 * known); CVM_E_FORMAT when the bytes are not a TLS ClientHello (HTTP, an
 * SSLv2 hello, another record type between its records, a second
 * server_name entry, an SNI that is not a host name, a repeated server_name,
 * ALPN or supported_versions extension, trailing bytes in its last record);
 * CVM_E_TOO_LARGE when the handshake message is over CVM_CLIENTHELLO_MAX.
 * Every proper prefix of a ClientHello's records is TRUNCATED (the body
 * is checked once it is whole), never a partial answer; out is zero unless
 * 0 is returned. It checks no cipher suite, and nothing about the handshake
 * beyond the ClientHello. */
CVM_API CVM_MUST_CHECK int cvm_clienthello_parse(const uint8_t *buf, size_t len, struct cvm_clienthello *out,
                                                 size_t *need);

/* The v1 header's longest line (proxy-protocol.txt: 107 bytes with CRLF), and the
 * v2 header's fixed part; a v2 header is at most CVM_PROXY_V2_HDR + 65535 bytes,
 * so a reader that buffers that much always gets an answer other than TRUNCATED. */
#define CVM_PROXY_V1_MAX 107
#define CVM_PROXY_V2_HDR 16

struct cvm_proxy_hdr {
	int version; /* 1 or 2 */
	int family;  /* AF_INET, AF_INET6, AF_UNSPEC (LOCAL, UNKNOWN, v2 UNSPEC and UNIX) */
	struct sockaddr_storage src, dst; /* sockaddr_in/_in6 with the ports, for AF_INET/AF_INET6 */
	bool is_local;                    /* v2 LOCAL: a health check from the proxy itself */
	const uint8_t *tlvs;              /* v2: the TLV bytes after the addresses, borrowed from buf */
	size_t tlvs_len;                  /* checked to be a whole sequence of type, u16be len, value */
	size_t n_tlv;
};

/* cvm_proxy_parse reads a PROXY protocol header (v1 or v2) at the start of
 * `buf`. Returns 0 with *consumed the header's length (the connection's own
 * bytes follow); CVM_E_TRUNCATED when every byte given is a prefix of a
 * header that may still come; CVM_E_FORMAT otherwise (not a PROXY header, a
 * v1 line over CVM_PROXY_V1_MAX bytes, bad addresses or ports, v2 DGRAM, a
 * v2 address block or TLV that does not fit). `out` is zero unless 0 is
 * returned. v2 TLVs are checked for structure only (not their CRC32C). */
CVM_API CVM_MUST_CHECK int cvm_proxy_parse(const uint8_t *buf, size_t len, struct cvm_proxy_hdr *out,
                                           size_t *consumed);

/* cvm_proxy_build writes a PROXY header of `version` (1 or 2) for `h`
 * (h->family AF_INET or AF_INET6 with src and dst of that family, or
 * AF_UNSPEC: v1 "UNKNOWN", v2 LOCAL) into `out` (`cap` bytes), without
 * TLVs, and sets *len. Returns 0, CVM_E_TOO_LARGE when cap is too small,
 * CVM_E_INVAL for a bad version, family or address. */
CVM_API CVM_MUST_CHECK int cvm_proxy_build(const struct cvm_proxy_hdr *h, int version, uint8_t *out,
                                           size_t cap, size_t *len);

#endif
