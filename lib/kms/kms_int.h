/* lib/kms internals: the loaded roots of one epoch. */
#ifndef CVM_KMS_INT_H
#define CVM_KMS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmkit/crypto.h>
#include <cvmkit/kms.h>
#include <cvmkit/secret.h>

struct cvm_kms_roots {
	uint32_t epoch;
	bool has[CVM_KMS_ROOT_COUNT];
	bool sealed[CVM_KMS_ROOT_COUNT];     /* loaded from its sealed copy */
	char *path[CVM_KMS_ROOT_COUNT];      /* where each root was looked for */
	struct cvm_p256_keypair *ca_key;     /* root-ca.key (scalar in secret memory) */
	struct cvm_secret *k256_key;         /* root-k256.key, 32 bytes */
	struct cvm_p256_keypair *tmp_ca_key; /* tmp-ca.key */
	struct cvm_p256_keypair *rpc_key;    /* rpc.key */
	char *ca_cert_pem;                   /* root-ca.crt as read (NUL-terminated) */
	struct cvm_cert **ca_cert;           /* one certificate each, or NULL */
	struct cvm_cert **tmp_ca_cert;
	struct cvm_cert **rpc_cert;
};

/* A sealed root's payload (what cvm_tpm_seal seals): the root's number
 * (enum cvm_kms_root, one byte, so that a sealed file moved to another
 * root's name is refused) and its 32-byte big-endian scalar. A TPM seals at
 * most 128 bytes: a PEM does not fit, and is rebuilt from the scalar. */
#define KMS_SEALED_LEN (1 + 32)

/* kms_epochs_save checks and writes DIR/epochs.json (mode 0600). */
int kms_epochs_save(const char *dir, const struct cvm_kms_epochs *t, char *err, size_t err_len);

#endif
