/* Hex and base64, bounded and constant-time where the input may be secret. */
#ifndef CVMKIT_ENCODING_H
#define CVMKIT_ENCODING_H

#include <stddef.h>
#include <stdint.h>

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

#endif
