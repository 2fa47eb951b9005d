/* Bounded reader (cvm_rd) and writer (cvm_wr): the only way untrusted bytes
 * are read and the only place that does pointer arithmetic on them. */
#ifndef CVMKIT_BYTES_H
#define CVMKIT_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* struct cvm_rd is a read-only view of untrusted bytes. Getters return false
 * and leave the view unchanged when fewer bytes remain than they need. */
struct cvm_rd {
	const uint8_t *p;
	size_t len;
};

CVM_API void cvm_rd_init(struct cvm_rd *r, const void *p, size_t len);
CVM_API bool cvm_rd_empty(const struct cvm_rd *r);
CVM_API bool cvm_rd_bytes(struct cvm_rd *r, const uint8_t **out, size_t n);
CVM_API bool cvm_rd_copy(struct cvm_rd *r, void *dst, size_t n);
CVM_API bool cvm_rd_skip(struct cvm_rd *r, size_t n);
CVM_API bool cvm_rd_sub(struct cvm_rd *r, struct cvm_rd *sub, size_t n);
CVM_API bool cvm_rd_sub_u16le(struct cvm_rd *r, struct cvm_rd *sub);
CVM_API bool cvm_rd_sub_u16be(struct cvm_rd *r, struct cvm_rd *sub); /* TPM2B */
CVM_API bool cvm_rd_sub_u32le(struct cvm_rd *r, struct cvm_rd *sub);
CVM_API bool cvm_rd_u8(struct cvm_rd *r, uint8_t *v);
CVM_API bool cvm_rd_u16le(struct cvm_rd *r, uint16_t *v);
CVM_API bool cvm_rd_u32le(struct cvm_rd *r, uint32_t *v);
CVM_API bool cvm_rd_u64le(struct cvm_rd *r, uint64_t *v);
CVM_API bool cvm_rd_u16be(struct cvm_rd *r, uint16_t *v);
CVM_API bool cvm_rd_u32be(struct cvm_rd *r, uint32_t *v);
CVM_API bool cvm_rd_u64be(struct cvm_rd *r, uint64_t *v);
/* cvm_rd_peek_u8 reads the next byte without consuming it. */
CVM_API bool cvm_rd_peek_u8(const struct cvm_rd *r, uint8_t *v);
/* cvm_rd_all_zero is true when every remaining byte is zero (or none remain). */
CVM_API bool cvm_rd_all_zero(const struct cvm_rd *r);
/* cvm_rd_has_nul is true when the view contains a zero byte. */
CVM_API bool cvm_rd_has_nul(const struct cvm_rd *r);

/* cvm_rd_asn1 reads one DER TLV whose tag is `tag` (a single tag byte, as
 * BoringSSL's CBS_get_asn1) and returns its contents in `out`. Only
 * definite-length DER with minimal length encoding is accepted. */
CVM_API bool cvm_rd_asn1(struct cvm_rd *r, struct cvm_rd *out, uint8_t tag);
/* cvm_rd_asn1_any reads one TLV of any single-byte tag. */
CVM_API bool cvm_rd_asn1_any(struct cvm_rd *r, struct cvm_rd *out, uint8_t *tag);

#define CVM_ASN1_INTEGER 0x02
#define CVM_ASN1_OCTET_STRING 0x04
#define CVM_ASN1_OID 0x06
#define CVM_ASN1_ENUMERATED 0x0a
#define CVM_ASN1_SEQUENCE 0x30

/* struct cvm_wr builds bytes, growable up to `max` or over a fixed buffer.
 * Errors are sticky and reported once by cvm_wr_finish. Growth wipes the old
 * block, so secrets may be written. In text mode (cvm_wr_init_text) it
 * writes a C string into a fixed buffer instead, and cuts rather than fails. */
struct cvm_wr {
	uint8_t *buf;
	size_t len, cap, max;
	bool fixed, err, text;
};

CVM_API void cvm_wr_init(struct cvm_wr *w, size_t max);
CVM_API void cvm_wr_init_fixed(struct cvm_wr *w, void *buf, size_t cap);
/* cvm_wr_init_text makes `buf` (`cap` bytes, at least 1) a bounded text:
 * after every write it holds a NUL-terminated string. A write that does not
 * fit is cut, the text then ends in "..." (when cap is at least 4) so a
 * reader knows something is missing, and later writes are dropped
 * (cvm_wr_text_cut tells). Nothing is allocated; cvm_wr_finish is not needed. */
CVM_API void cvm_wr_init_text(struct cvm_wr *w, char *buf, size_t cap);
/* cvm_wr_text_cut is true when a text writer had to cut (or any writer failed). */
CVM_API bool cvm_wr_text_cut(const struct cvm_wr *w);
/* cvm_wr_reserve appends `n` bytes and returns where they start, for the
 * caller to fill (BoringSSL's CBB_add_space), or NULL when they do not fit
 * (the error is then sticky). The pointer is valid until the next write. */
CVM_API uint8_t *cvm_wr_reserve(struct cvm_wr *w, size_t n);
CVM_API void cvm_wr_bytes(struct cvm_wr *w, const void *p, size_t n);
CVM_API void cvm_wr_zeros(struct cvm_wr *w, size_t n);
CVM_API void cvm_wr_u8(struct cvm_wr *w, uint8_t v);
CVM_API void cvm_wr_u16le(struct cvm_wr *w, uint16_t v);
CVM_API void cvm_wr_u32le(struct cvm_wr *w, uint32_t v);
CVM_API void cvm_wr_u64le(struct cvm_wr *w, uint64_t v);
CVM_API void cvm_wr_u16be(struct cvm_wr *w, uint16_t v);
CVM_API void cvm_wr_u32be(struct cvm_wr *w, uint32_t v);
CVM_API void cvm_wr_str(struct cvm_wr *w, const char *s);
/* cvm_wr_fmt appends printf-style text (no NUL). */
CVM_API void cvm_wr_fmt(struct cvm_wr *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cvm_wr_finish hands the bytes to the caller (growable mode: caller frees;
 * fixed mode: *out points into the caller's buffer). Returns CVM_E_TOO_LARGE
 * or CVM_E_NOMEM if any write failed; the writer is then cleaned up. */
CVM_API CVM_MUST_CHECK int cvm_wr_finish(struct cvm_wr *w, uint8_t **out, size_t *out_len);
/* cvm_wr_finish_str is cvm_wr_finish plus a terminating NUL (not counted). */
CVM_API CVM_MUST_CHECK int cvm_wr_finish_str(struct cvm_wr *w, char **out);
CVM_API void cvm_wr_cleanup(struct cvm_wr *w);

#endif
