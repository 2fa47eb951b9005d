/* dstack's guest API v1 key derivation and key claim (docs/guest-api-v1.md
 * of Dstack-TEE/dstack; kdf.h gives the construction). Every input field is
 * length-prefixed, so no domain can be read as another. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/kdf.h>
#include <cvmkit/keccak.h>

/* same_str compares a (pointer, length) string with a C literal. */
static bool same_str(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len == n && (n == 0 || memcmp(s, lit, n) == 0);
}

int cvm_key_alg_parse_v1(const char *name, size_t len, enum cvm_key_alg *out)
{
	*out = 0;
	if (len == 0)
		return CVM_E_INVAL;
	if (name == NULL)
		return CVM_E_INVAL;
	if (same_str(name, len, "secp256k1")) {
		*out = CVM_KEY_ALG_SECP256K1;
		return CVM_OK;
	}
	if (same_str(name, len, "ed25519")) {
		*out = CVM_KEY_ALG_ED25519;
		return CVM_OK;
	}
	return CVM_E_UNSUPPORTED;
}

/* wr_lp appends LP(x) = uint32_be(len(x)) || x. */
static void wr_lp(struct cvm_wr *w, const void *p, size_t n)
{
	cvm_wr_u32be(w, (uint32_t)n);
	cvm_wr_bytes(w, p, n);
}

/* keccak_lp feeds LP(x) to a keccak256 context. */
static void keccak_lp(struct cvm_keccak256_ctx *k, const void *p, size_t n)
{
	uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};

	cvm_keccak256_update(k, be, sizeof(be));
	cvm_keccak256_update(k, p, n);
}

int cvm_kdf_v1_derive(const uint8_t root[CVM_K256_SECKEY_LEN], const char *domain, size_t domain_len,
                      enum cvm_key_alg alg, uint8_t out[CVM_KDF_KEY_LEN])
{
	static const char tag[] = CVM_KDF_V1_KEY_TAG, salt[] = CVM_KDF_V1_SALT;
	const char *name = cvm_key_alg_name(alg);
	struct cvm_wr w;
	uint8_t *info = NULL;
	size_t info_len = 0;
	int r;

	if (out != NULL)
		memset(out, 0, CVM_KDF_KEY_LEN);
	if (root == NULL || out == NULL || name == NULL || (domain == NULL && domain_len != 0))
		return CVM_E_INVAL;
	if (domain_len > CVM_KDF_V1_DOMAIN_MAX)
		return CVM_E_TOO_LARGE;
	cvm_wr_init(&w, CVM_KDF_V1_DOMAIN_MAX + 64);
	wr_lp(&w, tag, sizeof(tag) - 1);
	wr_lp(&w, name, strlen(name));
	wr_lp(&w, domain, domain_len);
	r = cvm_wr_finish(&w, &info, &info_len);
	if (r != CVM_OK)
		return r;
	r = cvm_hkdf_sha256((const uint8_t *)salt, sizeof(salt) - 1, root, CVM_K256_SECKEY_LEN, info,
	                    info_len, out, CVM_KDF_KEY_LEN);
	if (r != CVM_OK)
		memset(out, 0, CVM_KDF_KEY_LEN);
	free(info);
	return r;
}

int cvm_kdf_v1_claim_digest(enum cvm_key_alg alg, const char *domain, size_t domain_len, const uint8_t *pub,
                            size_t pub_len, uint8_t out[32])
{
	static const char tag[] = CVM_KDF_V1_CLAIM_TAG;
	const char *name = cvm_key_alg_name(alg);
	struct cvm_keccak256_ctx k;

	memset(out, 0, 32);
	if (name == NULL || (domain == NULL && domain_len != 0) || domain_len > CVM_KDF_V1_DOMAIN_MAX ||
	    pub == NULL || pub_len == 0 || pub_len > CVM_K256_PUBKEY_FULL_LEN)
		return CVM_E_INVAL;
	cvm_keccak256_init(&k);
	keccak_lp(&k, tag, sizeof(tag) - 1);
	keccak_lp(&k, name, strlen(name));
	keccak_lp(&k, domain != NULL ? domain : "", domain_len);
	keccak_lp(&k, pub, pub_len);
	cvm_keccak256_final(&k, out);
	return CVM_OK;
}

int cvm_kdf_v1_get_key(const struct cvm_appkeys *keys, const char *domain, size_t domain_len,
                       enum cvm_key_alg alg, struct cvm_getkey *out)
{
	struct cvm_secret *key = NULL;
	uint8_t digest[32];
	int r;

	memset(out, 0, sizeof(*out));
	if (keys == NULL || keys->k256_key == NULL || keys->k256_key->len != CVM_K256_SECKEY_LEN ||
	    (keys->k256_signature_len != 0 && keys->k256_signature_len != CVM_K256_RSIG_LEN) ||
	    cvm_key_alg_name(alg) == NULL || (domain == NULL && domain_len != 0))
		return CVM_E_INVAL;
	key = cvm_secret_new(CVM_KDF_KEY_LEN);
	if (key == NULL)
		return CVM_E_NOMEM;
	r = cvm_kdf_v1_derive(keys->k256_key->p, domain, domain_len, alg, key->p);
	if (r != CVM_OK)
		goto out;
	if (alg == CVM_KEY_ALG_SECP256K1) {
		/* a value out of range fails: folding it would give two domains one key */
		r = cvm_k256_seckey_check(key->p);
		if (r == CVM_OK)
			r = cvm_k256_pubkey(key->p, out->public_key);
		out->public_key_len = CVM_K256_PUBKEY_LEN;
	} else {
		r = cvm_ed25519_pubkey(key->p, out->public_key);
		out->public_key_len = CVM_ED25519_PUBKEY_LEN;
	}
	if (r != CVM_OK)
		goto out;
	r = cvm_kdf_v1_claim_digest(alg, domain, domain_len, out->public_key, out->public_key_len, digest);
	if (r == CVM_OK)
		r = cvm_k256_sign_recoverable(keys->k256_key->p, digest, out->chain0);
	if (r != CVM_OK)
		goto out;
	memcpy(out->chain1, keys->k256_signature, keys->k256_signature_len);
	out->chain1_len = keys->k256_signature_len;
	out->key = key;
	key = NULL; /* transferred */
out:
	cvm_secret_free(key);
	if (r != CVM_OK)
		cvm_getkey_cleanup(out);
	return r;
}

int cvm_kdf_v1_chain_verify(enum cvm_key_alg alg, const char *domain, size_t domain_len, const uint8_t *pub,
                            size_t pub_len, const uint8_t *chain0, const uint8_t *chain1,
                            const uint8_t *app_id, const uint8_t *kms_pub, uint8_t *app_pub)
{
	uint8_t digest[32];
	int r;

	memset(app_pub, 0, CVM_K256_PUBKEY_LEN);
	if (chain0 == NULL || (chain1 != NULL && (app_id == NULL || kms_pub == NULL)))
		return CVM_E_INVAL;
	r = cvm_kdf_v1_claim_digest(alg, domain, domain_len, pub, pub_len, digest);
	if (r != CVM_OK)
		return r;
	r = cvm_k256_recover(digest, chain0, app_pub);
	if (r == CVM_OK && chain1 != NULL)
		r = cvm_kdf_k256_check_issued(kms_pub, app_id, app_pub, chain1);
	if (r != CVM_OK)
		memset(app_pub, 0, CVM_K256_PUBKEY_LEN);
	return r;
}
