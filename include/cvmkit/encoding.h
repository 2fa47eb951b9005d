/* Hex and base64, bounded and constant-time where the input may be secret. */
#ifndef CVMKIT_ENCODING_H
#define CVMKIT_ENCODING_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

/* cvm_hex_encode writes 2*len lowercase hex digits and a NUL to `out`, which
 * must hold 2*len+1 bytes. */
CVM_API void cvm_hex_encode(const uint8_t *in, size_t len, char *out);
/* cvm_hex_encode_new returns a new NUL-terminated lowercase hex string, or NULL. */
CVM_API char *cvm_hex_encode_new(const uint8_t *in, size_t len);
/* cvm_hex_decode decodes exactly `hex_len` hex digits (either case) into
 * `out`, which must hold hex_len/2 bytes; `out_cap` is checked. Returns 0,
 * CVM_E_FORMAT (odd length, non-hex digit) or CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_cap,
                                          size_t *out_len);
/* cvm_hex_decode_exact requires hex_len == 2*out_len. */
CVM_API CVM_MUST_CHECK int cvm_hex_decode_exact(const char *hex, size_t hex_len, uint8_t *out,
                                                size_t out_len);

/* cvm_base64_decode decodes standard base64 (padding optional, no
 * whitespace) into a new buffer the caller frees. */
CVM_API CVM_MUST_CHECK int cvm_base64_decode(const char *in, size_t in_len, size_t max, uint8_t **out,
                                             size_t *out_len);
/* cvm_base64_encode_new returns a new NUL-terminated base64 string, or NULL. */
CVM_API char *cvm_base64_encode_new(const uint8_t *in, size_t len);

/* PEM (RFC 7468): the one reader of PEM blocks in cvmkit.
 * struct cvm_pem_block is a block as cvm_pem_next finds it: its label
 * ("CERTIFICATE", "X509 CRL", "PRIVATE KEY", ...) and its base64 body with
 * its line breaks, both borrowed from the input. */
struct cvm_pem_block {
	struct cvm_rd label;
	struct cvm_rd body;
};

/* cvm_pem_starts is true when the text, after white space, opens a PEM
 * block ("-----BEGIN "). It checks nothing else. */
CVM_API bool cvm_pem_starts(const uint8_t *p, size_t len);
/* cvm_pem_next reads the PEM block at the start of `in` (after white
 * space): "-----BEGIN <label>-----", spaces or tabs, a line end; the body;
 * "-----END <label>-----" with the same label, spaces or tabs, a line end
 * or the end of the input. Lines may end in LF or CRLF. On success `in`
 * has moved past the block; on failure (no block here, a missing or
 * different END line) it has not moved. The body is not decoded: see
 * cvm_pem_decode, which also refuses RFC 1421 headers. Returns 0 or
 * CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_pem_next(struct cvm_rd *in, struct cvm_pem_block *out);
/* cvm_pem_label_is is true when the block's label is exactly `label`. */
CVM_API bool cvm_pem_label_is(const struct cvm_pem_block *b, const char *label);
/* cvm_pem_decoded_max is an upper bound of the bytes the body decodes to. */
CVM_API size_t cvm_pem_decoded_max(const struct cvm_pem_block *b);
/* cvm_pem_decode decodes the block's base64 body (white space between the
 * characters skipped; canonical base64 only: whole groups, padding only at
 * the end, zero leftover bits) into the `out_cap` bytes at `out`. It writes
 * as it decodes, so on failure `out` may hold part of the result: a caller
 * decoding a key into secret memory wipes it. Returns 0, CVM_E_FORMAT (not
 * base64, an empty body, a header line) or CVM_E_TOO_LARGE (more than
 * out_cap bytes). */
CVM_API CVM_MUST_CHECK int cvm_pem_decode(const struct cvm_pem_block *b, uint8_t *out, size_t out_cap,
                                          size_t *out_len);

#endif
