/* Random bytes for keys, nonces and serial numbers. */
#ifndef CVMKIT_RANDOM_H
#define CVMKIT_RANDOM_H

#include <stddef.h>

#include "err.h"

/* cvm_random_bytes fills `n` bytes at `p` from the kernel's CSPRNG
 * (getrandom(2), blocking until the pool is initialised, retried on EINTR
 * and short reads). It is the one source of randomness in cvmkit. Returns 0,
 * or CVM_E_SYSTEM (errno says why) with `p` wiped. */
CVM_API CVM_MUST_CHECK int cvm_random_bytes(void *p, size_t n);

#endif
