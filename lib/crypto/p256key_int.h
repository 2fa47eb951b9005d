/* Internal layout of struct cvm_p256_keypair, shared by lib/crypto files. */
#ifndef CVM_P256KEY_INT_H
#define CVM_P256KEY_INT_H

#include <openssl/evp.h>

#include <cvmkit/crypto.h>

struct cvm_p256_keypair {
	EVP_PKEY *pkey;       /* OpenSSL's copy, for signing */
	struct cvm_secret *d; /* the scalar, big-endian, 32 bytes */
	uint8_t pub[65];      /* 04 || x || y */
};

#endif
