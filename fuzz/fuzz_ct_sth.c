/* libFuzzer harness for lib/ct's readers of tree heads and proofs: the
 * input is read as a get-sth answer, whose signature is then checked with
 * a fixed key, and as a get-sth-consistency answer, whose proof is then
 * checked between tree sizes taken from the input.
 *
 * Invariants: a failed parse leaves the STH zeroed; a parsed one has a
 * signature of 1..CVM_CT_SIG_MAX bytes, SHA-256 and RSA or ECDSA; a
 * proof has at most CVM_CT_PROOF_MAX hashes; equal sizes with different
 * roots never verify; nothing leaks. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ct.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The log's key: the P-256 generator as a public key (private key 1).
 * The harness exercises the verifier on whatever the input holds; it does
 * not claim that no input verifies. */
static const char log_key_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaxfR8uEsQkf4vOblY6RA8ncDfYEt\n"
                                  "6zOg9KE5RdiYwpZP40Li/hp/m47n60p8D54WK84zV2sxXs7LtkBoN79R9Q==\n"
                                  "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cvm_ct_sth zero;
	static struct cvm_ct_sth sth;
	static uint8_t proof[CVM_CT_PROOF_MAX][32];
	static struct cvm_pubkey *key;
	size_t count = 0;
	int r;

	if (key == NULL &&
	    cvm_pubkey_parse((const uint8_t *)log_key_pem, sizeof(log_key_pem) - 1, &key) != CVM_OK)
		__builtin_trap();
	r = cvm_ct_sth_parse((const char *)data, size, &sth);
	if (r != CVM_OK) {
		if (sth.tree_size != 0 || sth.timestamp != 0 || sth.sig_len != 0 || sth.hash_alg != 0 ||
		    sth.sig_alg != 0 || memcmp(sth.root_hash, zero.root_hash, 32) != 0)
			__builtin_trap();
	} else {
		if (sth.sig_len == 0 || sth.sig_len > CVM_CT_SIG_MAX || sth.hash_alg != 4 ||
		    (sth.sig_alg != 1 && sth.sig_alg != 3))
			__builtin_trap();
		r = cvm_ct_sth_verify(&sth, key);
		(void)r; /* either verdict is fine; the call must not crash */
	}
	r = cvm_ct_proof_parse((const char *)data, size, proof, &count);
	if (r == CVM_OK) {
		uint8_t a[32] = {0}, b[32] = {1};
		uint64_t s1 = size, s2 = size + (size & 7);

		if (count > CVM_CT_PROOF_MAX)
			__builtin_trap();
		if (cvm_ct_consistency_verify(s1, a, s1, b, (const uint8_t(*)[32])proof, count) == CVM_OK)
			__builtin_trap();
		r = cvm_ct_consistency_verify(s1, proof[0], s2, count > 1 ? proof[1] : b,
		                              (const uint8_t(*)[32])proof, count);
		(void)r;
	} else if (count != 0) {
		__builtin_trap();
	}
	return 0;
}
