/* secp256k1 ECDSA through libsecp256k1 (the only file that includes it):
 * RFC 6979 nonces, low-S signatures, recovery ids, strict SEC1 keys. */
#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <cvmkit/crypto.h>

/* One context for the process: created once, randomized for side-channel
 * blinding, then only read, which libsecp256k1 allows from any thread. */
static secp256k1_context *k256_ctx;
static pthread_once_t k256_once = PTHREAD_ONCE_INIT;

/* API misuse would otherwise abort() the process; the library never does,
 * so misuse becomes an ordinary failure return instead. */
static void k256_quiet_callback(const char *msg, void *data)
{
	(void)msg;
	(void)data;
}

static void k256_ctx_init(void)
{
	secp256k1_context *c;
	uint8_t seed[32];
	int blinded = 0;

	c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	if (c == NULL)
		return;
	secp256k1_context_set_illegal_callback(c, k256_quiet_callback, NULL);
	secp256k1_context_set_error_callback(c, k256_quiet_callback, NULL);
	/* Blinding is a hardening: without randomness (or if randomizing fails)
	 * the context works unblinded, as a fresh context does. */
	if (RAND_priv_bytes(seed, sizeof(seed)) == 1)
		blinded = secp256k1_context_randomize(c, seed);
	(void)blinded;
	ERR_clear_error();
	cvm_wipe(seed, sizeof(seed));
	k256_ctx = c;
}

static const secp256k1_context *k256(void)
{
	if (pthread_once(&k256_once, k256_ctx_init) != 0)
		return NULL;
	return k256_ctx;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* parse_pub accepts exactly the SEC1 forms dstack's k256 accepts. */
static int parse_pub(const secp256k1_context *ctx, const uint8_t *pub, size_t len, secp256k1_pubkey *out)
{
	if (pub == NULL)
		return CVM_E_FORMAT;
	if (!(len == CVM_K256_PUBKEY_LEN && (pub[0] == 0x02 || pub[0] == 0x03)) &&
	    !(len == CVM_K256_PUBKEY_FULL_LEN && pub[0] == 0x04))
		return CVM_E_FORMAT;
	if (secp256k1_ec_pubkey_parse(ctx, out, pub, len) != 1)
		return CVM_E_FORMAT;
	return CVM_OK;
}

static int serialize_compressed(const secp256k1_context *ctx, const secp256k1_pubkey *pk,
                                uint8_t out[CVM_K256_PUBKEY_LEN])
{
	size_t n = CVM_K256_PUBKEY_LEN;

	if (secp256k1_ec_pubkey_serialize(ctx, out, &n, pk, SECP256K1_EC_COMPRESSED) != 1 ||
	    n != CVM_K256_PUBKEY_LEN)
		return CVM_E_CRYPTO;
	return CVM_OK;
}

int cvm_k256_seckey_check(const uint8_t sk[CVM_K256_SECKEY_LEN])
{
	const secp256k1_context *ctx = k256();

	if (ctx == NULL)
		return CVM_E_CRYPTO;
	return secp256k1_ec_seckey_verify(ctx, sk) == 1 ? CVM_OK : CVM_E_FORMAT;
}

int cvm_k256_pubkey(const uint8_t sk[CVM_K256_SECKEY_LEN], uint8_t out[CVM_K256_PUBKEY_LEN])
{
	const secp256k1_context *ctx = k256();
	secp256k1_pubkey pk;

	memset(out, 0, CVM_K256_PUBKEY_LEN);
	if (ctx == NULL)
		return CVM_E_CRYPTO;
	if (secp256k1_ec_seckey_verify(ctx, sk) != 1)
		return CVM_E_FORMAT;
	if (secp256k1_ec_pubkey_create(ctx, &pk, sk) != 1)
		return CVM_E_CRYPTO;
	return serialize_compressed(ctx, &pk, out);
}

int cvm_k256_pubkey_parse(const uint8_t *pub, size_t len, uint8_t out[CVM_K256_PUBKEY_LEN])
{
	const secp256k1_context *ctx = k256();
	secp256k1_pubkey pk;
	int r;

	memset(out, 0, CVM_K256_PUBKEY_LEN);
	if (ctx == NULL)
		return CVM_E_CRYPTO;
	r = parse_pub(ctx, pub, len, &pk);
	if (r != CVM_OK)
		return r;
	return serialize_compressed(ctx, &pk, out);
}

int cvm_k256_sign(const uint8_t sk[CVM_K256_SECKEY_LEN], const uint8_t digest[32],
                  uint8_t out[CVM_K256_SIG_LEN])
{
	const secp256k1_context *ctx = k256();
	secp256k1_ecdsa_signature sig;

	memset(out, 0, CVM_K256_SIG_LEN);
	if (ctx == NULL)
		return CVM_E_CRYPTO;
	if (secp256k1_ec_seckey_verify(ctx, sk) != 1)
		return CVM_E_FORMAT;
	/* NULL nonce function = RFC 6979 with no extra data, as the k256 crate;
	 * libsecp256k1 always returns the low-S form. */
	if (secp256k1_ecdsa_sign(ctx, &sig, digest, sk, NULL, NULL) != 1 ||
	    secp256k1_ecdsa_signature_serialize_compact(ctx, out, &sig) != 1)
		return CVM_E_CRYPTO;
	return CVM_OK;
}

int cvm_k256_sign_recoverable(const uint8_t sk[CVM_K256_SECKEY_LEN], const uint8_t digest[32],
                              uint8_t out[CVM_K256_RSIG_LEN])
{
	const secp256k1_context *ctx = k256();
	secp256k1_ecdsa_recoverable_signature sig;
	int recid = -1;

	memset(out, 0, CVM_K256_RSIG_LEN);
	if (ctx == NULL)
		return CVM_E_CRYPTO;
	if (secp256k1_ec_seckey_verify(ctx, sk) != 1)
		return CVM_E_FORMAT;
	if (secp256k1_ecdsa_sign_recoverable(ctx, &sig, digest, sk, NULL, NULL) != 1 ||
	    secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, out, &recid, &sig) != 1 ||
	    recid < 0 || recid > 3) {
		memset(out, 0, CVM_K256_RSIG_LEN);
		return CVM_E_CRYPTO;
	}
	out[CVM_K256_SIG_LEN] = (uint8_t)recid;
	return CVM_OK;
}

int cvm_k256_verify(const uint8_t *pub, size_t pub_len, const uint8_t digest[32],
                    const uint8_t sig[CVM_K256_SIG_LEN])
{
	const secp256k1_context *ctx = k256();
	secp256k1_ecdsa_signature s;
	secp256k1_pubkey pk;
	int r;

	if (ctx == NULL)
		return CVM_E_CRYPTO;
	r = parse_pub(ctx, pub, pub_len, &pk);
	if (r != CVM_OK)
		return r;
	/* parse_compact refuses r or s >= n; a zero r or s parses but is no
	 * signature at all, which k256 also reports as malformed. */
	if (all_zero(sig, 32) || all_zero(sig + 32, 32) ||
	    secp256k1_ecdsa_signature_parse_compact(ctx, &s, sig) != 1)
		return CVM_E_FORMAT;
	/* secp256k1_ecdsa_verify rejects high-S signatures by itself. */
	return secp256k1_ecdsa_verify(ctx, &s, digest, &pk) == 1 ? CVM_OK : CVM_E_SIGNATURE;
}

int cvm_k256_recover(const uint8_t digest[32], const uint8_t sig[CVM_K256_RSIG_LEN],
                     uint8_t out[CVM_K256_PUBKEY_LEN])
{
	const secp256k1_context *ctx = k256();
	secp256k1_ecdsa_recoverable_signature rs;
	secp256k1_ecdsa_signature plain;
	secp256k1_pubkey pk;

	memset(out, 0, CVM_K256_PUBKEY_LEN);
	if (ctx == NULL)
		return CVM_E_CRYPTO;
	if (sig[CVM_K256_SIG_LEN] > 3 || all_zero(sig, 32) || all_zero(sig + 32, 32) ||
	    secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &rs, sig, sig[CVM_K256_SIG_LEN]) != 1)
		return CVM_E_FORMAT;
	/* Recovery works for either S; accept only the low-S form that every
	 * honest signer (libsecp256k1, k256) produces, so a signature has one
	 * encoding. normalize() returns 1 when it had to lower S. */
	if (secp256k1_ecdsa_recoverable_signature_convert(ctx, &plain, &rs) != 1 ||
	    secp256k1_ecdsa_signature_normalize(ctx, NULL, &plain) != 0)
		return CVM_E_SIGNATURE;
	if (secp256k1_ecdsa_recover(ctx, &pk, &rs, digest) != 1)
		return CVM_E_SIGNATURE;
	return serialize_compressed(ctx, &pk, out);
}
