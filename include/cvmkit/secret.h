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

/* struct cvm_secret holds key material in pages of its own, as libsodium's
 * sodium_malloc keeps it: the `len` bytes at `p` end exactly where an
 * inaccessible guard page begins (a read or write past the end faults), a
 * second guard page lies before the data, and a random canary sits right
 * before `p`. The data pages are excluded from core dumps (MADV_DONTDUMP)
 * and locked in memory (mlock) when the process may lock them; `is_locked`
 * says whether it could (RLIMIT_MEMLOCK can forbid it, which does not fail
 * the allocation). No page is shared with anything else, so unlocking and
 * unmapping one secret never touches another. `p` has no alignment beyond
 * a byte's. A caller may lower `len` to the bytes it used; cvm_secret_free
 * wipes every byte of the data pages whatever `len` says. The type has no
 * print helper. The fields after `is_locked` belong to lib/core/secret.c. */
struct cvm_secret {
	uint8_t *p;
	size_t len;
	bool is_locked;
	uint8_t *map;   /* the whole mapping: guard, data pages, guard */
	size_t map_len; /* its length in bytes */
};

/* cvm_secret_new returns a zeroed secret of `len` bytes (0 is allowed: `p`
 * then points at the guard page), or NULL with errno set (ENOMEM: out of
 * memory or address space, or `len` too large; or the errno of a failed
 * mmap, mprotect or madvise). */
CVM_API struct cvm_secret *cvm_secret_new(size_t len);
/* cvm_secret_free checks the canary, wipes the data pages, unlocks and
 * unmaps them; NULL is a no-op. A changed canary means that something wrote
 * below the secret's first byte: memory is corrupt, so the process aborts
 * (as libsodium's sodium_free does) rather than run on in that state. */
CVM_API void cvm_secret_free(struct cvm_secret *s);

#endif
