/* lib/measure's internal helpers, shared by its files. */
#ifndef CVM_MEASURE_INT_H
#define CVM_MEASURE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/bytes.h>

/* measure_errf writes a message to `err` (NULL or 0 bytes: nothing). */
void measure_errf(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* measure_view makes `out` the `n` bytes at offset `off` of `buf`, or fails
 * when they are not all inside it. */
bool measure_view(const uint8_t *buf, size_t len, uint64_t off, uint64_t n, struct cvm_rd *out);

/* measure_ovmf_table walks OVMF's GUIDed table (it ends 32 bytes before
 * the end of the firmware with its own length and GUID; each entry, read
 * backwards, is its data, a u16 length of the whole entry and a GUID) and
 * calls `visit` for each entry, the last one first, with its GUID and its
 * data. A visit that returns other than CVM_OK stops the walk:
 * MEASURE_TABLE_STOP ends it with CVM_OK (found), an error is returned.
 * `no_table` says what a firmware without the table is (the message of
 * CVM_E_NOT_FOUND). Returns 0, CVM_E_NOT_FOUND, CVM_E_FORMAT (a table that
 * lies outside the image or a cut entry) or the visit's error. */
#define MEASURE_TABLE_STOP 1
typedef int (*measure_table_visit)(void *ctx, const uint8_t guid[16], const struct cvm_rd *data, char *err,
                                   size_t err_len);
int measure_ovmf_table(const uint8_t *fw, size_t len, const char *no_table, measure_table_visit visit,
                       void *ctx, char *err, size_t err_len);

static inline void measure_put_u64le(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
