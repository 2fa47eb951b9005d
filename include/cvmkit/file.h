#ifndef CVMKIT_FILE_H
#define CVMKIT_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "secret.h"

/* cvm_file_read reads the whole file at `path` into a new buffer (NUL
 * appended, not counted in out_len) that the caller frees. Files longer than
 * `max` bytes give CVM_E_TOO_LARGE; errors opening or reading give
 * CVM_E_SYSTEM with errno set. */
CVM_API CVM_MUST_CHECK int cvm_file_read(const char *path, size_t max, uint8_t **out, size_t *out_len);
/* cvm_file_write writes `len` bytes to `path` (created with `mode`) through a
 * temporary file and rename, so readers never see a partial file. */
CVM_API CVM_MUST_CHECK int cvm_file_write(const char *path, const void *buf, size_t len, unsigned mode);

/* Key files. A key file is a regular file owned by the effective uid that
 * grants no access to group or others; cvmkit refuses to read a key from
 * anything else, and creates key files with mode 0600 whatever the umask.
 *
 * cvm_file_read_key opens `name` relative to the directory `dfd` (AT_FDCWD
 * for an ordinary path) without following a final symbolic link and
 * without blocking (a FIFO in a key's place is refused, not waited on),
 * applies the key-file rule to the file it opened, and reads its at most
 * `max` bytes into new secret memory. On failure `err` (may be NULL) holds
 * one sentence naming `name` and what is wrong. Returns 0, CVM_E_POLICY (a
 * symbolic link, not a regular file, another owner, a mode that grants
 * access to others), CVM_E_TOO_LARGE, CVM_E_SYSTEM (errno set) or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_file_read_key(int dfd, const char *name, size_t max, struct cvm_secret **out,
                                             char *err, size_t err_len);
/* cvm_file_create_key writes the `len` bytes at `buf` as the new key file
 * `name` in the directory `dfd`: under a temporary name, mode 0600, synced,
 * then linked into place, so that no reader ever sees part of a key and an
 * existing file is never replaced. When another file already has the name
 * (another process made the key first) *created is false and that file
 * stays: the caller reads it. Returns 0 or CVM_E_SYSTEM (errno set; `err`
 * says what failed). */
CVM_API CVM_MUST_CHECK int cvm_file_create_key(int dfd, const char *name, const void *buf, size_t len,
                                               bool *created, char *err, size_t err_len);

#endif
