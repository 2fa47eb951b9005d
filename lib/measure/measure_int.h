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

static inline void measure_put_u64le(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
