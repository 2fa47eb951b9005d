/* lib/audit: signed checkpoints, a KMS key's ECDSA P-256 signature over a
 * head (include/cvmkit/audit.h). */
#include <stdint.h>
#include <string.h>

#include <cvmkit/audit.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>

_Static_assert(sizeof(CVM_AUDIT_CHECKPOINT_TAG) - 1 == CVM_AUDIT_CHECKPOINT_TAG_LEN,
               "the checkpoint tag's length");

/* checkpoint_message writes tag || u64be(seq) || head. */
static void checkpoint_message(uint64_t seq, const uint8_t head[CVM_AUDIT_HASH_LEN],
                               uint8_t out[CVM_AUDIT_CHECKPOINT_MSG_LEN])
{
	struct cvm_wr w;

	cvm_wr_init_fixed(&w, out, CVM_AUDIT_CHECKPOINT_MSG_LEN);
	cvm_wr_bytes(&w, CVM_AUDIT_CHECKPOINT_TAG, CVM_AUDIT_CHECKPOINT_TAG_LEN);
	cvm_wr_u32be(&w, (uint32_t)(seq >> 32));
	cvm_wr_u32be(&w, (uint32_t)seq);
	cvm_wr_bytes(&w, head, CVM_AUDIT_HASH_LEN);
}

int cvm_audit_checkpoint_sign(const struct cvm_p256_keypair *key, uint64_t seq,
                              const uint8_t head[CVM_AUDIT_HASH_LEN],
                              uint8_t sig[CVM_AUDIT_CHECKPOINT_SIG_LEN])
{
	uint8_t msg[CVM_AUDIT_CHECKPOINT_MSG_LEN];

	if (sig != NULL)
		memset(sig, 0, CVM_AUDIT_CHECKPOINT_SIG_LEN);
	if (key == NULL || head == NULL || sig == NULL)
		return CVM_E_INVAL;
	checkpoint_message(seq, head, msg);
	return cvm_p256_keypair_sign(key, msg, sizeof(msg), sig);
}

int cvm_audit_checkpoint_verify(const struct cvm_cert *cert, uint64_t seq,
                                const uint8_t head[CVM_AUDIT_HASH_LEN],
                                const uint8_t sig[CVM_AUDIT_CHECKPOINT_SIG_LEN])
{
	uint8_t msg[CVM_AUDIT_CHECKPOINT_MSG_LEN];

	if (cert == NULL || head == NULL || sig == NULL)
		return CVM_E_INVAL;
	checkpoint_message(seq, head, msg);
	return cvm_cert_verify_p256(cert, msg, sizeof(msg), sig);
}
