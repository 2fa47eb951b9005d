/* lib/core's library-internal interface, for the modules above it. Not part
 * of the public API and not exported. */
#ifndef CVM_CORE_CORE_LIB_H
#define CVM_CORE_CORE_LIB_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <cvmkit/err.h>

/* cvm_file_read_err is cvm_file_read that, on failure, also writes one
 * sentence naming `path` and what went wrong into `err` (may be NULL):
 * "<path>: No such file or directory", "<path> is larger than N bytes".
 * errno is kept for CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_file_read_err(const char *path, size_t max, uint8_t **out, size_t *out_len, char *err,
                                     size_t err_len);
/* cvm_err_set writes a printf-style sentence into `err` (may be NULL; cut
 * to `err_len`) and returns `r`. */
__attribute__((format(printf, 4, 5))) int cvm_err_set(char *err, size_t err_len, int r, const char *fmt, ...);

/* cvm_jcs_string appends the `len` bytes at `s` (UTF-8, checked by the
 * caller) as an RFC 8785 (JCS) string: quotes, the escapes ECMAScript's
 * JSON.stringify uses (\" \\ \b \f \n \r \t, \u00xx for the other
 * control characters, lowercase hex) and every other byte as it is. */
struct cvm_wr;
void cvm_jcs_string(struct cvm_wr *w, const char *s, size_t len);

/* cvm_rd_utf8 reads one well-formed UTF-8 code point (RFC 3629: no overlong
 * form, no surrogate, nothing above U+10FFFF) from the bounded reader. False,
 * with the reader somewhere inside the sequence, on anything else. */
struct cvm_rd;
bool cvm_rd_utf8(struct cvm_rd *r, uint32_t *cp);

#endif
