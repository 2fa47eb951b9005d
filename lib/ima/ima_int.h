/* Internal to lib/ima: the entry decoders with a reason for the failure, so
 * the reader can say what is wrong, not only that something is. */
#ifndef CVM_IMA_INT_H
#define CVM_IMA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/ima.h>

/* IMA_WHY_MAX is the size of a failure reason buffer. */
#define IMA_WHY_MAX 200

/* ima_parse_binary is cvm_ima_entry_parse_binary that also writes a reason
 * for any failure but CVM_E_TRUNCATED into `why` (IMA_WHY_MAX bytes; NULL
 * allowed). */
int ima_parse_binary(struct cvm_rd *in, bool big_endian, struct cvm_ima_entry *e, char *why);
/* ima_parse_ascii is cvm_ima_entry_parse_ascii with a reason. */
int ima_parse_ascii(const char *line, size_t line_len, uint8_t *scratch, size_t scratch_len,
                    struct cvm_ima_entry *e, char *why);

/* ima_why writes a formatted reason into `why` when it is not NULL. */
void ima_why(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ima_sanitize copies up to `n` bytes of `p` into `out` (`cap` bytes),
 * replacing non-printable bytes with '?', for messages that quote input. */
void ima_sanitize(const uint8_t *p, size_t n, char *out, size_t cap);

#endif
