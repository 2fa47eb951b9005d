/* Keccak-256 as Ethereum and dstack use it (lib/crypto/keccak.c).
 *
 * This is NOT SHA3-256. Both run the same Keccak-f[1600] permutation with a
 * 136-byte rate, but FIPS 202 appends the domain bits 01 before the pad10*1
 * padding (first pad byte 0x06) while the original Keccak submission, which
 * Ethereum froze before FIPS 202 was published, pads with 0x01. The two give
 * unrelated digests: Keccak-256("") = c5d24601...5d85a470, SHA3-256("") =
 * a7ffc6f8...f8434a. OpenSSL 3.0 (Debian 12) and the other Debian C
 * libraries offer only SHA3, so cvmkit carries this small implementation,
 * checked against the standard Keccak-256 vectors in tests/unit/test_keccak.c.
 *
 * It is written for clarity, not speed: about 5 µs per 136-byte block (25
 * MB/s) on the 2-core development machine, which is small beside the
 * secp256k1 signature that follows every use in cvmkit. Only the message
 * length, never its contents, changes the control flow or memory access. */
#ifndef CVMKIT_KECCAK_H
#define CVMKIT_KECCAK_H

#include "api.h"

#include <stddef.h>
#include <stdint.h>

#define CVM_KECCAK256_LEN 32
/* CVM_KECCAK256_RATE is the sponge rate in bytes: (1600 - 2 * 256) / 8. */
#define CVM_KECCAK256_RATE 136

/* struct cvm_keccak256_ctx is an incremental Keccak-256 in caller-owned
 * storage. Its fields are private; it needs no cleanup beyond
 * cvm_keccak256_final, which wipes it. */
struct cvm_keccak256_ctx {
	uint64_t state[25];
	uint8_t buf[CVM_KECCAK256_RATE];
	size_t buf_len;
};

/* cvm_keccak256_init starts an empty message in `ctx`. */
CVM_API void cvm_keccak256_init(struct cvm_keccak256_ctx *ctx);
/* cvm_keccak256_update absorbs the `len` bytes at `p` (NULL is allowed when
 * `len` is 0). */
CVM_API void cvm_keccak256_update(struct cvm_keccak256_ctx *ctx, const void *p, size_t len);
/* cvm_keccak256_final writes the 32-byte digest of everything absorbed since
 * cvm_keccak256_init to `out` and wipes `ctx`. Call cvm_keccak256_init again
 * to hash another message. */
CVM_API void cvm_keccak256_final(struct cvm_keccak256_ctx *ctx, uint8_t out[CVM_KECCAK256_LEN]);

/* cvm_keccak256 hashes the `len` bytes at `p` in one call. */
CVM_API void cvm_keccak256(const void *p, size_t len, uint8_t out[CVM_KECCAK256_LEN]);

#endif
