/* Ed25519 (RFC 8032) and X25519 (RFC 7748) over raw 32-byte keys, through
 * OpenSSL's EVP_PKEY_ED25519 / EVP_PKEY_X25519. OpenSSL cleanses the private
 * key it copies when the EVP_PKEY is freed. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cvmkit/crypto.h>

#include "crypto_int.h"

static EVP_PKEY *raw_private(int type, const uint8_t key[32])
{
	EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(type, NULL, key, 32);

	ERR_clear_error();
	return pkey;
}

static int raw_public_of(EVP_PKEY *pkey, uint8_t out[32])
{
	size_t n = 32;

	if (EVP_PKEY_get_raw_public_key(pkey, out, &n) != 1 || n != 32) {
		ERR_clear_error();
		memset(out, 0, 32);
		return CVM_E_CRYPTO;
	}
	return CVM_OK;
}

int cvm_ed25519_pubkey(const uint8_t seed[CVM_ED25519_SEED_LEN], uint8_t out[CVM_ED25519_PUBKEY_LEN])
{
	EVP_PKEY *pkey = raw_private(EVP_PKEY_ED25519, seed);
	int r;

	memset(out, 0, CVM_ED25519_PUBKEY_LEN);
	if (pkey == NULL)
		return CVM_E_CRYPTO;
	r = raw_public_of(pkey, out);
	EVP_PKEY_free(pkey);
	return r;
}

int cvm_ed25519_sign(const uint8_t seed[CVM_ED25519_SEED_LEN], const uint8_t *msg, size_t len,
                     uint8_t out[CVM_ED25519_SIG_LEN])
{
	static const uint8_t empty[1];
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *ctx = NULL;
	size_t n = CVM_ED25519_SIG_LEN;
	int r = CVM_E_CRYPTO;

	memset(out, 0, CVM_ED25519_SIG_LEN);
	if (msg == NULL && len != 0)
		return CVM_E_INVAL;
	pkey = raw_private(EVP_PKEY_ED25519, seed);
	ctx = EVP_MD_CTX_new();
	if (pkey == NULL || ctx == NULL)
		goto out;
	/* Ed25519 is one-shot: no digest, EVP_DigestSign over the whole message. */
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, out, &n, len ? msg : empty, len) != 1 || n != CVM_ED25519_SIG_LEN) {
		memset(out, 0, CVM_ED25519_SIG_LEN);
		goto out;
	}
	r = CVM_OK;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return r;
}

int cvm_ed25519_verify(const uint8_t pub[CVM_ED25519_PUBKEY_LEN], const uint8_t *msg, size_t len,
                       const uint8_t sig[CVM_ED25519_SIG_LEN])
{
	static const uint8_t empty[1];
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *ctx = NULL;
	int r = CVM_E_SIGNATURE;

	if (msg == NULL && len != 0)
		return CVM_E_INVAL;
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, CVM_ED25519_PUBKEY_LEN);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (pkey == NULL)
		goto out;
	/* OpenSSL also rejects S >= L (RFC 8032 section 5.1.7), as ed25519-dalek. */
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, CVM_ED25519_SIG_LEN, len ? msg : empty, len) == 1)
		r = CVM_OK;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return r;
}

int cvm_x25519_pubkey(const uint8_t sk[CVM_X25519_KEY_LEN], uint8_t out[CVM_X25519_KEY_LEN])
{
	EVP_PKEY *pkey = raw_private(EVP_PKEY_X25519, sk);
	int r;

	memset(out, 0, CVM_X25519_KEY_LEN);
	if (pkey == NULL)
		return CVM_E_CRYPTO;
	r = raw_public_of(pkey, out);
	EVP_PKEY_free(pkey);
	return r;
}

int cvm_x25519(const uint8_t sk[CVM_X25519_KEY_LEN], const uint8_t peer[CVM_X25519_KEY_LEN],
               uint8_t out[CVM_X25519_KEY_LEN])
{
	static const uint8_t zero[CVM_X25519_KEY_LEN];
	EVP_PKEY *mine = NULL, *theirs = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = CVM_X25519_KEY_LEN;
	int r = CVM_E_CRYPTO;

	memset(out, 0, CVM_X25519_KEY_LEN);
	mine = raw_private(EVP_PKEY_X25519, sk);
	theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, CVM_X25519_KEY_LEN);
	if (mine == NULL || theirs == NULL)
		goto out;
	ctx = EVP_PKEY_CTX_new(mine, NULL);
	if (ctx == NULL)
		goto out;
	/* OpenSSL itself fails the derivation on an all-zero result; the
	 * explicit check below keeps that promise whatever the version does. */
	if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, theirs) != 1 ||
	    EVP_PKEY_derive(ctx, out, &n) != 1 || n != CVM_X25519_KEY_LEN) {
		r = CVM_E_FORMAT;
		goto out;
	}
	if (cvm_ct_equal(out, zero, CVM_X25519_KEY_LEN)) {
		r = CVM_E_FORMAT;
		goto out;
	}
	r = CVM_OK;
out:
	if (r != CVM_OK)
		cvm_wipe(out, CVM_X25519_KEY_LEN);
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(theirs);
	EVP_PKEY_free(mine);
	return r;
}
