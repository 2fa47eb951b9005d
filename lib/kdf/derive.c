/* dstack's key derivations and signature chains (spec §1.3, §3.2, §4.3):
 * GetKey, Sign, Verify, GetTlsKey's key, the KMS-side app keys and the
 * identities. Everything secret lives in a struct cvm_secret or is wiped
 * under the function's out: label. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/encoding.h>
#include <cvmkit/kdf.h>
#include <cvmkit/keccak.h>
#include <cvmkit/random.h>

/* info prefix of CVM_GETKEY_SEPARATE_CURVES: 0xFF never starts UTF-8. */
static const uint8_t separate_prefix[] = "\xff"
                                         "cvmkit-getkey-v1";

/* same_str compares a (pointer, length) string with a C literal. */
static bool same_str(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len == n && (n == 0 || memcmp(s, lit, n) == 0);
}

/* ---- HKDF-based derivations ------------------------------------------------ */

int cvm_kdf_derive(const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                   size_t out_len)
{
	return cvm_hkdf_sha256((const uint8_t *)CVM_KDF_SALT, sizeof(CVM_KDF_SALT) - 1, ikm, ikm_len, info,
	                       info_len, out, out_len);
}

int cvm_kdf_derive_p256(const uint8_t *sk, size_t sk_len, const uint8_t *info, size_t info_len,
                        struct cvm_p256_keypair **out)
{
	uint8_t d[CVM_P256_SCALAR_LEN];
	int r;

	*out = NULL;
	r = cvm_kdf_derive(sk, sk_len, info, info_len, d, sizeof(d));
	if (r != CVM_OK)
		goto out;
	r = cvm_p256_keypair_from_scalar(d, out);
out:
	cvm_wipe(d, sizeof(d));
	return r;
}

int cvm_kdf_dh_secret(const uint8_t *sk, size_t sk_len, const uint8_t *info, size_t info_len, uint8_t out[32])
{
	struct cvm_p256_keypair *kp = NULL;
	uint8_t der[CVM_P256_PKCS8_DER_LEN];
	int r;

	memset(out, 0, 32);
	r = cvm_kdf_derive_p256(sk, sk_len, info, info_len, &kp);
	if (r != CVM_OK)
		goto out;
	/* dstack hashes the canonical PKCS#8 DER, not the scalar: keep it exact. */
	cvm_p256_keypair_pkcs8(kp, der);
	cvm_sha256(der, sizeof(der), out);
out:
	cvm_wipe(der, sizeof(der));
	cvm_p256_keypair_free(kp);
	return r;
}

/* ---- GetKey ---------------------------------------------------------------- */

int cvm_key_alg_parse(const char *name, size_t len, enum cvm_key_alg *out)
{
	*out = 0;
	if (name == NULL && len != 0)
		return CVM_E_INVAL;
	if (len == 0 || same_str(name, len, "secp256k1") || same_str(name, len, "k256")) {
		*out = CVM_KEY_ALG_SECP256K1;
		return CVM_OK;
	}
	if (same_str(name, len, "ed25519")) {
		*out = CVM_KEY_ALG_ED25519;
		return CVM_OK;
	}
	return CVM_E_UNSUPPORTED;
}

const char *cvm_key_alg_name(enum cvm_key_alg alg)
{
	switch (alg) {
	case CVM_KEY_ALG_SECP256K1:
		return "secp256k1";
	case CVM_KEY_ALG_ED25519:
		return "ed25519";
	}
	return NULL;
}

void cvm_kdf_chain_message_digest(const char *purpose, size_t purpose_len, const uint8_t *pub, size_t pub_len,
                                  uint8_t out[32])
{
	struct cvm_keccak256_ctx ctx;
	char hex[2 * CVM_K256_PUBKEY_FULL_LEN + 1];

	if (pub_len > CVM_K256_PUBKEY_FULL_LEN)
		pub_len = CVM_K256_PUBKEY_FULL_LEN; /* callers check; never overrun hex[] */
	cvm_hex_encode(pub, pub_len, hex);
	cvm_keccak256_init(&ctx);
	cvm_keccak256_update(&ctx, purpose, purpose_len);
	cvm_keccak256_update(&ctx, ":", 1);
	cvm_keccak256_update(&ctx, hex, 2 * pub_len);
	cvm_keccak256_final(&ctx, out);
}

static bool appkeys_usable(const struct cvm_appkeys *keys)
{
	return keys != NULL && keys->k256_key != NULL && keys->k256_key->len == CVM_K256_SECKEY_LEN &&
	       (keys->k256_signature_len == 0 || keys->k256_signature_len == CVM_K256_RSIG_LEN);
}

/* getkey_info returns the HKDF info for `path`: the path itself (dstack), or
 * the separated form in a new buffer `*owned` that the caller frees. */
static int getkey_info(const char *path, size_t path_len, enum cvm_key_alg alg, unsigned flags,
                       const uint8_t **info, size_t *info_len, uint8_t **owned)
{
	struct cvm_wr w;
	const char *name = cvm_key_alg_name(alg);

	*owned = NULL;
	if ((flags & CVM_GETKEY_SEPARATE_CURVES) == 0) {
		*info = (const uint8_t *)path;
		*info_len = path_len;
		return CVM_OK;
	}
	if (path_len > SIZE_MAX - 64)
		return CVM_E_TOO_LARGE;
	cvm_wr_init(&w, path_len + 64);
	cvm_wr_bytes(&w, separate_prefix, sizeof(separate_prefix) - 1);
	cvm_wr_u8(&w, 0);
	cvm_wr_str(&w, name);
	cvm_wr_u8(&w, 0);
	cvm_wr_bytes(&w, path, path_len);
	if (cvm_wr_finish(&w, owned, info_len) != CVM_OK)
		return CVM_E_NOMEM;
	*info = *owned;
	return CVM_OK;
}

int cvm_kdf_get_key(const struct cvm_appkeys *keys, const char *path, size_t path_len, const char *purpose,
                    size_t purpose_len, enum cvm_key_alg alg, unsigned flags, struct cvm_getkey *out)
{
	struct cvm_secret *key = NULL;
	const uint8_t *info = NULL;
	uint8_t *owned = NULL;
	size_t info_len = 0;
	uint8_t digest[32];
	int r;

	memset(out, 0, sizeof(*out));
	if (!appkeys_usable(keys) || (path == NULL && path_len != 0) ||
	    (purpose == NULL && purpose_len != 0) || (flags & ~CVM_GETKEY_SEPARATE_CURVES) != 0 ||
	    cvm_key_alg_name(alg) == NULL)
		return CVM_E_INVAL;
	key = cvm_secret_new(CVM_KDF_KEY_LEN);
	if (key == NULL)
		return CVM_E_NOMEM;
	r = getkey_info(path, path_len, alg, flags, &info, &info_len, &owned);
	if (r != CVM_OK)
		goto out;
	r = cvm_kdf_derive(keys->k256_key->p, keys->k256_key->len, info, info_len, key->p, key->len);
	if (r != CVM_OK)
		goto out;
	if (alg == CVM_KEY_ALG_SECP256K1) {
		r = cvm_k256_pubkey(key->p, out->public_key);
		out->public_key_len = CVM_K256_PUBKEY_LEN;
	} else {
		r = cvm_ed25519_pubkey(key->p, out->public_key);
		out->public_key_len = CVM_ED25519_PUBKEY_LEN;
	}
	if (r != CVM_OK)
		goto out;
	cvm_kdf_chain_message_digest(purpose, purpose_len, out->public_key, out->public_key_len, digest);
	r = cvm_k256_sign_recoverable(keys->k256_key->p, digest, out->chain0);
	if (r != CVM_OK)
		goto out;
	memcpy(out->chain1, keys->k256_signature, keys->k256_signature_len);
	out->chain1_len = keys->k256_signature_len;
	out->key = key;
	key = NULL; /* transferred */
out:
	free(owned);
	cvm_secret_free(key);
	if (r != CVM_OK)
		cvm_getkey_cleanup(out);
	return r;
}

void cvm_getkey_cleanup(struct cvm_getkey *g)
{
	if (g == NULL)
		return;
	cvm_secret_free(g->key);
	cvm_wipe(g, sizeof(*g));
}

int cvm_kdf_chain_verify(const char *purpose, size_t purpose_len, const uint8_t *pub, size_t pub_len,
                         const uint8_t chain0[CVM_K256_RSIG_LEN], const uint8_t *chain1,
                         const uint8_t app_id[CVM_APP_ID_LEN], const uint8_t kms_pub[CVM_K256_PUBKEY_LEN],
                         uint8_t app_pub[CVM_K256_PUBKEY_LEN])
{
	uint8_t digest[32];
	int r;

	memset(app_pub, 0, CVM_K256_PUBKEY_LEN);
	if ((purpose == NULL && purpose_len != 0) || pub == NULL || pub_len == 0 ||
	    pub_len > CVM_K256_PUBKEY_FULL_LEN || chain0 == NULL ||
	    (chain1 != NULL && (app_id == NULL || kms_pub == NULL)))
		return CVM_E_INVAL;
	cvm_kdf_chain_message_digest(purpose, purpose_len, pub, pub_len, digest);
	r = cvm_k256_recover(digest, chain0, app_pub);
	if (r != CVM_OK)
		goto out;
	if (chain1 != NULL)
		r = cvm_kdf_k256_check_issued(kms_pub, app_id, app_pub, chain1);
out:
	if (r != CVM_OK)
		memset(app_pub, 0, CVM_K256_PUBKEY_LEN);
	return r;
}

/* base64url_nopad writes the unpadded URL-safe base64 of `in` and returns
 * its length; `out` holds (len * 4 + 2) / 3 bytes. */
static size_t base64url_nopad(const uint8_t *in, size_t len, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t j = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[j++] = alphabet[(v >> 18) & 63];
		out[j++] = alphabet[(v >> 12) & 63];
		if (i + 1 < len)
			out[j++] = alphabet[(v >> 6) & 63];
		if (i + 2 < len)
			out[j++] = alphabet[v & 63];
	}
	return j;
}

int cvm_kdf_dip1_report_data(const struct cvm_appkeys *keys, enum cvm_key_alg alg,
                             uint8_t out[CVM_REPORT_DATA_LEN])
{
	static const char ed_prefix[] = "dip1::ed25519-pk:";
	static const char k1_prefix[] = "dip1::secp256k1c-pk:";
	struct cvm_getkey g;
	const char *prefix = alg == CVM_KEY_ALG_ED25519 ? ed_prefix : k1_prefix;
	size_t n = alg == CVM_KEY_ALG_ED25519 ? sizeof(ed_prefix) - 1 : sizeof(k1_prefix) - 1;
	char b64[(CVM_K256_PUBKEY_LEN * 4 + 2) / 3];
	size_t b64_len;
	int r;

	memset(out, 0, CVM_REPORT_DATA_LEN);
	r = cvm_kdf_get_key(keys, CVM_KDF_SIGN_PATH, sizeof(CVM_KDF_SIGN_PATH) - 1, CVM_KDF_SIGN_PURPOSE,
	                    sizeof(CVM_KDF_SIGN_PURPOSE) - 1, alg, 0, &g);
	if (r != CVM_OK)
		return r;
	b64_len = base64url_nopad(g.public_key, g.public_key_len, b64);
	cvm_getkey_cleanup(&g);
	/* 20 + 44 = 64 and 17 + 43 = 60: both fit, which the check keeps true */
	if (n + b64_len > CVM_REPORT_DATA_LEN)
		return CVM_E_INTERNAL;
	memcpy(out, prefix, n);
	memcpy(out + n, b64, b64_len);
	return CVM_OK;
}

/* ---- Sign and Verify ------------------------------------------------------- */

int cvm_sign_alg_parse(const char *name, size_t len, enum cvm_sign_alg *out)
{
	*out = 0;
	if (name == NULL && len != 0)
		return CVM_E_INVAL;
	if (same_str(name, len, "ed25519"))
		*out = CVM_SIGN_ED25519;
	else if (same_str(name, len, "secp256k1") || same_str(name, len, "k256"))
		*out = CVM_SIGN_SECP256K1;
	else if (same_str(name, len, "secp256k1_prehashed"))
		*out = CVM_SIGN_SECP256K1_PREHASHED;
	else
		return CVM_E_UNSUPPORTED;
	return CVM_OK;
}

int cvm_kdf_sign(const struct cvm_appkeys *keys, enum cvm_sign_alg alg, const uint8_t *data, size_t len,
                 unsigned flags, struct cvm_sign_result *out)
{
	struct cvm_getkey g;
	uint8_t digest[32];
	int r;

	memset(out, 0, sizeof(*out));
	memset(&g, 0, sizeof(g));
	if (data == NULL && len != 0)
		return CVM_E_INVAL;
	if (alg != CVM_SIGN_ED25519 && alg != CVM_SIGN_SECP256K1 && alg != CVM_SIGN_SECP256K1_PREHASHED)
		return CVM_E_INVAL;
	if (alg == CVM_SIGN_SECP256K1_PREHASHED && len != 32)
		return CVM_E_INVAL;
	r = cvm_kdf_get_key(keys, CVM_KDF_SIGN_PATH, sizeof(CVM_KDF_SIGN_PATH) - 1, CVM_KDF_SIGN_PURPOSE,
	                    sizeof(CVM_KDF_SIGN_PURPOSE) - 1,
	                    alg == CVM_SIGN_ED25519 ? CVM_KEY_ALG_ED25519 : CVM_KEY_ALG_SECP256K1, flags, &g);
	if (r != CVM_OK)
		goto out;
	switch (alg) {
	case CVM_SIGN_ED25519:
		r = cvm_ed25519_sign(g.key->p, data, len, out->signature);
		break;
	case CVM_SIGN_SECP256K1:
		cvm_sha256(data, len, digest);
		r = cvm_k256_sign(g.key->p, digest, out->signature);
		break;
	case CVM_SIGN_SECP256K1_PREHASHED:
		r = cvm_k256_sign(g.key->p, data, out->signature);
		break;
	}
	if (r != CVM_OK)
		goto out;
	memcpy(out->public_key, g.public_key, g.public_key_len);
	out->public_key_len = g.public_key_len;
	memcpy(out->chain0, g.chain0, sizeof(out->chain0));
	memcpy(out->chain1, g.chain1, g.chain1_len);
	out->chain1_len = g.chain1_len;
out:
	cvm_getkey_cleanup(&g);
	if (r != CVM_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

int cvm_kdf_verify(enum cvm_sign_alg alg, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len,
                   const uint8_t *pub, size_t pub_len)
{
	uint8_t digest[32];

	if ((data == NULL && len != 0) || sig == NULL || pub == NULL)
		return CVM_E_FORMAT;
	switch (alg) {
	case CVM_SIGN_ED25519:
		if (pub_len != CVM_ED25519_PUBKEY_LEN || sig_len != CVM_ED25519_SIG_LEN)
			return CVM_E_FORMAT;
		return cvm_ed25519_verify(pub, data, len, sig);
	case CVM_SIGN_SECP256K1:
		if (sig_len != CVM_K256_SIG_LEN)
			return CVM_E_FORMAT;
		cvm_sha256(data, len, digest);
		return cvm_k256_verify(pub, pub_len, digest, sig);
	case CVM_SIGN_SECP256K1_PREHASHED:
		if (sig_len != CVM_K256_SIG_LEN || len != 32)
			return CVM_E_FORMAT;
		return cvm_k256_verify(pub, pub_len, data, sig);
	}
	return CVM_E_INVAL;
}

/* ---- GetTlsKey ------------------------------------------------------------- */

int cvm_kdf_tls_key_new(struct cvm_p256_keypair **out)
{
	uint8_t seed[32];
	int r = CVM_E_INTERNAL;

	*out = NULL;
	/* dstack fails the call when the derived scalar is out of range (about
	 * 2^-32); a fresh seed is as good, so try again instead. */
	for (int tries = 0; tries < 8; tries++) {
		r = cvm_random_bytes(seed, sizeof(seed));
		if (r != CVM_OK)
			break;
		r = cvm_kdf_derive_p256(seed, sizeof(seed), NULL, 0, out);
		if (r != CVM_E_FORMAT)
			break;
	}
	cvm_wipe(seed, sizeof(seed));
	return r;
}

/* ---- KMS side ---------------------------------------------------------------- */

int cvm_kdf_app_k256_key(const uint8_t root_k256[CVM_K256_SECKEY_LEN], const uint8_t app_id[CVM_APP_ID_LEN],
                         struct cvm_secret **out)
{
	uint8_t info[CVM_APP_ID_LEN + sizeof(CVM_KDF_LABEL_APP_K256) - 1];
	struct cvm_secret *key = NULL;
	int r;

	*out = NULL;
	memcpy(info, app_id, CVM_APP_ID_LEN);
	memcpy(info + CVM_APP_ID_LEN, CVM_KDF_LABEL_APP_K256, sizeof(CVM_KDF_LABEL_APP_K256) - 1);
	key = cvm_secret_new(CVM_K256_SECKEY_LEN);
	if (key == NULL)
		return CVM_E_NOMEM;
	r = cvm_kdf_derive(root_k256, CVM_K256_SECKEY_LEN, info, sizeof(info), key->p, key->len);
	if (r != CVM_OK)
		goto out;
	r = cvm_k256_seckey_check(key->p);
	if (r != CVM_OK)
		goto out;
	*out = key;
	key = NULL; /* transferred */
out:
	cvm_secret_free(key);
	return r;
}

void cvm_kdf_k256_issued_digest(const uint8_t app_id[CVM_APP_ID_LEN],
                                const uint8_t app_pub[CVM_K256_PUBKEY_LEN], uint8_t out[32])
{
	struct cvm_keccak256_ctx ctx;

	cvm_keccak256_init(&ctx);
	cvm_keccak256_update(&ctx, CVM_KDF_K256_ISSUED_TAG, sizeof(CVM_KDF_K256_ISSUED_TAG) - 1);
	cvm_keccak256_update(&ctx, ":", 1);
	cvm_keccak256_update(&ctx, app_id, CVM_APP_ID_LEN);
	cvm_keccak256_update(&ctx, app_pub, CVM_K256_PUBKEY_LEN);
	cvm_keccak256_final(&ctx, out);
}

int cvm_kdf_k256_issue(const uint8_t root_k256[CVM_K256_SECKEY_LEN], const uint8_t app_id[CVM_APP_ID_LEN],
                       const uint8_t app_pub[CVM_K256_PUBKEY_LEN], uint8_t sig[CVM_K256_RSIG_LEN])
{
	uint8_t digest[32];

	cvm_kdf_k256_issued_digest(app_id, app_pub, digest);
	return cvm_k256_sign_recoverable(root_k256, digest, sig);
}

int cvm_kdf_k256_check_issued(const uint8_t kms_pub[CVM_K256_PUBKEY_LEN],
                              const uint8_t app_id[CVM_APP_ID_LEN],
                              const uint8_t app_pub[CVM_K256_PUBKEY_LEN],
                              const uint8_t sig[CVM_K256_RSIG_LEN])
{
	uint8_t digest[32], signer[CVM_K256_PUBKEY_LEN];
	int r;

	cvm_kdf_k256_issued_digest(app_id, app_pub, digest);
	r = cvm_k256_recover(digest, sig, signer);
	if (r != CVM_OK)
		return r;
	return memcmp(signer, kms_pub, CVM_K256_PUBKEY_LEN) == 0 ? CVM_OK : CVM_E_SIGNATURE;
}

int cvm_kdf_disk_crypt_key(const uint8_t root_ca_sk[CVM_P256_SCALAR_LEN],
                           const uint8_t app_id[CVM_APP_ID_LEN],
                           const uint8_t instance_id[CVM_INSTANCE_ID_LEN], uint8_t out[32])
{
	uint8_t info[CVM_APP_ID_LEN + CVM_INSTANCE_ID_LEN + sizeof(CVM_KDF_LABEL_DISK) - 1];

	memcpy(info, app_id, CVM_APP_ID_LEN);
	memcpy(info + CVM_APP_ID_LEN, instance_id, CVM_INSTANCE_ID_LEN);
	memcpy(info + CVM_APP_ID_LEN + CVM_INSTANCE_ID_LEN, CVM_KDF_LABEL_DISK,
	       sizeof(CVM_KDF_LABEL_DISK) - 1);
	return cvm_kdf_dh_secret(root_ca_sk, CVM_P256_SCALAR_LEN, info, sizeof(info), out);
}

int cvm_kdf_env_crypt_key(const uint8_t root_ca_sk[CVM_P256_SCALAR_LEN], const uint8_t app_id[CVM_APP_ID_LEN],
                          uint8_t out[32])
{
	uint8_t info[CVM_APP_ID_LEN + sizeof(CVM_KDF_LABEL_ENV) - 1];

	memcpy(info, app_id, CVM_APP_ID_LEN);
	memcpy(info + CVM_APP_ID_LEN, CVM_KDF_LABEL_ENV, sizeof(CVM_KDF_LABEL_ENV) - 1);
	return cvm_kdf_dh_secret(root_ca_sk, CVM_P256_SCALAR_LEN, info, sizeof(info), out);
}

/* ---- identities ---------------------------------------------------------------- */

void cvm_kdf_app_id_from_compose_hash(const uint8_t compose_hash[32], uint8_t out[CVM_APP_ID_LEN])
{
	memcpy(out, compose_hash, CVM_APP_ID_LEN);
}

void cvm_kdf_instance_id(const uint8_t seed[CVM_INSTANCE_ID_LEN], const uint8_t app_id[CVM_APP_ID_LEN],
                         const uint8_t *binding, uint8_t out[CVM_INSTANCE_ID_LEN])
{
	uint8_t buf[CVM_INSTANCE_ID_LEN + CVM_APP_ID_LEN + 32];
	uint8_t h[32];
	size_t n = 0;

	memcpy(buf, seed, CVM_INSTANCE_ID_LEN);
	n += CVM_INSTANCE_ID_LEN;
	memcpy(buf + n, app_id, CVM_APP_ID_LEN);
	n += CVM_APP_ID_LEN;
	if (binding != NULL) {
		memcpy(buf + n, binding, 32);
		n += 32;
	}
	cvm_sha256(buf, n, h);
	memcpy(out, h, CVM_INSTANCE_ID_LEN);
}
