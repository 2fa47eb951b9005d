#ifndef CVMKIT_SECRET_H
#define CVMKIT_SECRET_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* cvm_wipe clears `n` bytes in a way the compiler cannot remove. */
CVM_API void cvm_wipe(void *p, size_t n);
/* cvm_freezero wipes then frees; NULL is a no-op. */
CVM_API void cvm_freezero(void *p, size_t n);
/* cvm_ct_equal compares in time independent of the contents. */
CVM_API bool cvm_ct_equal(const void *a, const void *b, size_t n);

/* struct cvm_secret holds key material: locked in memory where possible,
 * excluded from core dumps, wiped on free. It has no print helper. */
struct cvm_secret {
	uint8_t *p;
	size_t len;
};

/* cvm_secret_new returns a zeroed secret of `len` bytes, or NULL. */
CVM_API struct cvm_secret *cvm_secret_new(size_t len);
CVM_API void cvm_secret_free(struct cvm_secret *s);

#endif
