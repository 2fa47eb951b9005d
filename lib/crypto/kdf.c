/* HKDF-SHA256 through OpenSSL 3's EVP_KDF, and dstack's tagged SHA-512. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cvmkit/crypto.h>

#include "crypto_int.h"

int cvm_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                    const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
	/* OSSL_PARAM takes non-const pointers but only reads them; these empty
	 * buffers stand in for NULL inputs of length 0. */
	static uint8_t empty[1];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[5];
	char digest[] = "SHA256";
	int r = CVM_E_CRYPTO;

	if (out == NULL || out_len == 0 || out_len > (size_t)255 * 32 || (salt == NULL && salt_len != 0) ||
	    (ikm == NULL && ikm_len != 0) || (info == NULL && info_len != 0))
		return CVM_E_INVAL;
	cvm_wipe(out, out_len);
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	if (kdf == NULL)
		goto out;
	ctx = EVP_KDF_CTX_new(kdf);
	if (ctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	                                              ikm_len ? (void *)(uintptr_t)ikm : empty, ikm_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	                                              salt_len ? (void *)(uintptr_t)salt : empty, salt_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	                                              info_len ? (void *)(uintptr_t)info : empty, info_len);
	params[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, out_len, params) != 1) {
		cvm_wipe(out, out_len);
		goto out;
	}
	r = CVM_OK;
out:
	ERR_clear_error();
	EVP_KDF_CTX_free(ctx); /* cleanses the key material it copied */
	EVP_KDF_free(kdf);
	return r;
}

int cvm_sha512_tagged(const char *tag, const uint8_t *content, size_t len, uint8_t out[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, tag, strlen(tag)) == 1 && EVP_DigestUpdate(ctx, ":", 1) == 1 &&
	     (len == 0 || EVP_DigestUpdate(ctx, content, len) == 1) &&
	     EVP_DigestFinal_ex(ctx, out, NULL) == 1;
	if (!ok)
		memset(out, 0, 64);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? CVM_OK : CVM_E_CRYPTO;
}
