/* AES-256-GCM with a 12-byte IV, no associated data and a 16-byte tag
 * appended to the ciphertext, through OpenSSL's EVP interface: the AEAD of
 * dstack's encrypted environment (lib/envcrypt). */
#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cvmkit/secret.h>

#include "crypto_lib.h"

int cvm_aes256gcm_seal(const uint8_t key[CVM_AES256GCM_KEY_LEN], const uint8_t iv[CVM_AES256GCM_IV_LEN],
                       const uint8_t *plain, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	int n = 0;
	int r = CVM_E_CRYPTO;

	if (key == NULL || iv == NULL || out == NULL || (plain == NULL && len != 0))
		return CVM_E_INVAL;
	if (len > (size_t)INT_MAX - CVM_AES256GCM_TAG_LEN)
		return CVM_E_TOO_LARGE;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto out;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CVM_AES256GCM_IV_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv) != 1)
		goto out;
	if (len != 0 && (EVP_EncryptUpdate(ctx, out, &n, plain, (int)len) != 1 || (size_t)n != len))
		goto out;
	if (EVP_EncryptFinal_ex(ctx, out + len, &n) != 1 || n != 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CVM_AES256GCM_TAG_LEN, out + len) != 1)
		goto out;
	r = CVM_OK;
out:
	if (r != CVM_OK)
		cvm_wipe(out, len + CVM_AES256GCM_TAG_LEN);
	ERR_clear_error();
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int cvm_aes256gcm_open(const uint8_t key[CVM_AES256GCM_KEY_LEN], const uint8_t iv[CVM_AES256GCM_IV_LEN],
                       const uint8_t *sealed, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t tag[CVM_AES256GCM_TAG_LEN];
	size_t ct_len;
	int n = 0;
	int r = CVM_E_CRYPTO;

	if (key == NULL || iv == NULL || sealed == NULL || (out == NULL && len > CVM_AES256GCM_TAG_LEN))
		return CVM_E_INVAL;
	if (len < CVM_AES256GCM_TAG_LEN)
		return CVM_E_TRUNCATED;
	if (len > (size_t)INT_MAX)
		return CVM_E_TOO_LARGE;
	ct_len = len - CVM_AES256GCM_TAG_LEN;
	memcpy(tag, sealed + ct_len, sizeof(tag));
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto out;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CVM_AES256GCM_IV_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, iv) != 1)
		goto out;
	if (ct_len != 0 && (EVP_DecryptUpdate(ctx, out, &n, sealed, (int)ct_len) != 1 || (size_t)n != ct_len))
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CVM_AES256GCM_TAG_LEN, tag) != 1)
		goto out;
	/* The tag is checked here, after the whole ciphertext went through:
	 * nothing in `out` may be used before this says yes. */
	if (EVP_DecryptFinal_ex(ctx, out == NULL ? tag : out + ct_len, &n) != 1) {
		r = CVM_E_SIGNATURE;
		goto out;
	}
	r = CVM_OK;
out:
	if (r != CVM_OK && out != NULL)
		cvm_wipe(out, ct_len);
	ERR_clear_error();
	EVP_CIPHER_CTX_free(ctx);
	return r;
}
