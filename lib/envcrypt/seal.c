/* The encrypted environment's blob (spec §4.4): ephemeral X25519, then
 * AES-256-GCM keyed with the raw shared secret, no associated data. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/envcrypt.h>
#include <cvmkit/random.h>

#include "crypto/crypto_lib.h"

_Static_assert(CVM_ENVCRYPT_PUBKEY_LEN == CVM_X25519_KEY_LEN, "X25519 keys");
_Static_assert(CVM_ENVCRYPT_IV_LEN == CVM_AES256GCM_IV_LEN, "GCM IV");
_Static_assert(CVM_ENVCRYPT_TAG_LEN == CVM_AES256GCM_TAG_LEN, "GCM tag");
_Static_assert(CVM_X25519_KEY_LEN == CVM_AES256GCM_KEY_LEN, "the shared secret is the AES key");

int cvm_envcrypt_seal(const uint8_t app_pub[CVM_ENVCRYPT_PUBKEY_LEN], const uint8_t *plain, size_t plain_len,
                      uint8_t **out, size_t *out_len)
{
	uint8_t eph[CVM_X25519_KEY_LEN];
	uint8_t shared[CVM_X25519_KEY_LEN];
	uint8_t *blob = NULL;
	size_t blob_len;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (app_pub == NULL || out == NULL || out_len == NULL || (plain == NULL && plain_len != 0))
		return CVM_E_INVAL;
	if (plain_len > CVM_ENVCRYPT_PLAIN_MAX)
		return CVM_E_TOO_LARGE;
	blob_len = plain_len + CVM_ENVCRYPT_OVERHEAD;
	blob = malloc(blob_len);
	if (blob == NULL)
		return CVM_E_NOMEM;
	r = cvm_random_bytes(eph, sizeof(eph));
	if (r != CVM_OK)
		goto out;
	r = cvm_x25519_pubkey(eph, blob);
	if (r != CVM_OK)
		goto out;
	/* cvm_x25519 refuses a low-order app_pub (all-zero shared secret). */
	r = cvm_x25519(eph, app_pub, shared);
	if (r != CVM_OK)
		goto out;
	r = cvm_random_bytes(blob + CVM_ENVCRYPT_PUBKEY_LEN, CVM_ENVCRYPT_IV_LEN);
	if (r != CVM_OK)
		goto out;
	r = cvm_aes256gcm_seal(shared, blob + CVM_ENVCRYPT_PUBKEY_LEN, plain, plain_len,
	                       blob + CVM_ENVCRYPT_PUBKEY_LEN + CVM_ENVCRYPT_IV_LEN);
	if (r != CVM_OK)
		goto out;
	*out = blob;
	*out_len = blob_len;
	blob = NULL; /* transferred */
out:
	cvm_wipe(eph, sizeof(eph));
	cvm_wipe(shared, sizeof(shared));
	free(blob);
	return r;
}

/* canonical_u is true when the little-endian X25519 u-coordinate `u` is
 * below 2^255 - 19 with its top bit clear. X25519 ignores the top bit and
 * reduces u mod p, so without this check a changed top bit, or u + p, would
 * open to the same plaintext: a blob could be altered without failing. */
static bool canonical_u(const uint8_t u[CVM_X25519_KEY_LEN])
{
	if ((u[31] & 0x80u) != 0)
		return false;
	if (u[31] != 0x7fu || u[0] < 0xedu)
		return true;
	for (size_t i = 1; i < 31; i++)
		if (u[i] != 0xffu)
			return true;
	return false;
}

int cvm_envcrypt_open(const struct cvm_secret *env_crypt_key, const uint8_t *blob, size_t len,
                      struct cvm_secret **plain)
{
	uint8_t shared[CVM_X25519_KEY_LEN];
	const uint8_t *eph_pub, *iv, *sealed;
	struct cvm_secret *p = NULL;
	struct cvm_rd rd;
	size_t sealed_len;
	int r;

	if (plain != NULL)
		*plain = NULL;
	if (env_crypt_key == NULL || plain == NULL || blob == NULL)
		return CVM_E_INVAL;
	if (env_crypt_key->len != CVM_X25519_KEY_LEN)
		return CVM_E_INVAL;
	if (len > CVM_ENVCRYPT_BLOB_MAX)
		return CVM_E_TOO_LARGE;
	cvm_rd_init(&rd, blob, len);
	if (!cvm_rd_bytes(&rd, &eph_pub, CVM_ENVCRYPT_PUBKEY_LEN) ||
	    !cvm_rd_bytes(&rd, &iv, CVM_ENVCRYPT_IV_LEN) || rd.len < CVM_ENVCRYPT_TAG_LEN)
		return CVM_E_TRUNCATED;
	sealed_len = rd.len;
	if (!cvm_rd_bytes(&rd, &sealed, sealed_len) || !cvm_rd_empty(&rd))
		return CVM_E_INTERNAL;
	if (!canonical_u(eph_pub))
		return CVM_E_FORMAT;
	r = cvm_x25519(env_crypt_key->p, eph_pub, shared);
	if (r != CVM_OK)
		goto out;
	p = cvm_secret_new(sealed_len - CVM_ENVCRYPT_TAG_LEN);
	if (p == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = cvm_aes256gcm_open(shared, iv, sealed, sealed_len, p->p);
	if (r != CVM_OK)
		goto out;
	*plain = p;
	p = NULL; /* transferred */
out:
	cvm_wipe(shared, sizeof(shared));
	cvm_secret_free(p);
	return r;
}
