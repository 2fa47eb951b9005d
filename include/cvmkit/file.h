#ifndef CVMKIT_FILE_H
#define CVMKIT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* cvm_file_read reads the whole file at `path` into a new buffer (NUL
 * appended, not counted in out_len) that the caller frees. Files longer than
 * `max` bytes give CVM_E_TOO_LARGE; errors opening or reading give
 * CVM_E_SYSTEM with errno set. */
CVM_API CVM_MUST_CHECK int cvm_file_read(const char *path, size_t max, uint8_t **out, size_t *out_len);
/* cvm_file_write writes `len` bytes to `path` (created with `mode`) through a
 * temporary file and rename, so readers never see a partial file. */
CVM_API CVM_MUST_CHECK int cvm_file_write(const char *path, const void *buf, size_t len, unsigned mode);

#endif
