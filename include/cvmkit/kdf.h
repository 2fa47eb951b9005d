/* Keys: dstack-compatible key derivation, signature chains, app keys and the
 * key providers that hold them, plus the primitives they need (HKDF-SHA256,
 * secp256k1 with recovery ids, Ed25519, X25519, P-256 key pairs and
 * certificates). docs/keys.md explains the scheme with its test vectors.
 *
 * Layers: the primitives (cvm_hkdf_*, cvm_k256_*, cvm_ed25519_*,
 * cvm_x25519*, cvm_p256_keypair_*, cvm_cert_make) are declared in crypto.h
 * and live in lib/crypto, the only code that includes OpenSSL or
 * libsecp256k1. The dstack logic (cvm_appkeys_*, cvm_kdf_*) lives in lib/kdf
 * and sees only byte arrays.
 *
 * Conventions of this header:
 *  - every secret that outlives a call is held in a struct cvm_secret (or a
 *    struct whose _free/_cleanup wipes it); functions that write a secret
 *    into a caller buffer say so, and the caller wipes it (cvm_wipe);
 *  - byte strings that come from a request (a path, a purpose) are passed as
 *    pointer + length and may contain any byte, NUL included;
 *  - outputs are cleared at entry, so they hold nothing useful on failure;
 *  - all functions are safe to call from several threads at once unless
 *    stated otherwise.
 *
 * KNOWN DSTACK PITFALL, kept for compatibility: key reuse across curves.
 * dstack's GetKey derives K = HKDF(app key, path) without the algorithm, so
 * GetKey(path, "secp256k1") and GetKey(path, "ed25519") return the SAME 32
 * secret bytes, used as a secp256k1 scalar by one and as an Ed25519 seed by
 * the other. A weakness found in the use of one curve (a biased nonce, a
 * fault) then exposes the key of the other, and anyone who obtains one key
 * holds the other. cvm_kdf_get_key reproduces this by default, because
 * SDK clients and already-deployed apps depend on the exact bytes; pass
 * CVM_GETKEY_SEPARATE_CURVES to derive per-curve keys instead (a different,
 * cvmkit-only derivation; see there). tests/unit/test_kdf.c shows both.
 * dstack's v1 guest API fixes the pitfall itself: its derivation
 * (cvm_kdf_v1_get_key) binds the algorithm into the HKDF info. */
#ifndef CVMKIT_KDF_H
#define CVMKIT_KDF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"
#include "secret.h"

/* ---- sizes ---------------------------------------------------------------- */

#define CVM_KDF_KEY_LEN 32 /* a derived GetKey key */
#define CVM_APP_ID_LEN 20
#define CVM_INSTANCE_ID_LEN 20
#define CVM_REPORT_DATA_LEN 64

/* ---- labels (one per purpose; dstack's exact bytes) ------------------------ */

/* CVM_KDF_SALT is the HKDF salt of every dstack derivation. */
#define CVM_KDF_SALT "RATLS"
/* KMS derivations from the root keys (spec §3.2); info = the listed parts. */
#define CVM_KDF_LABEL_APP_K256 "app-key"            /* root_k256: app_id || label */
#define CVM_KDF_LABEL_APP_CA "app-ca"               /* root CA key: app_id || label */
#define CVM_KDF_LABEL_DISK "app-disk-crypt-key"     /* root CA key: app_id || instance_id || label */
#define CVM_KDF_LABEL_ENV "env-encrypt-key"         /* root CA key: app_id || label */
#define CVM_KDF_K256_ISSUED_TAG "dstack-kms-issued" /* keccak256(tag ":" app_id pubkey) */
/* Seed-based providers (dstack's gen_app_keys_from_seed, spec §3.7). */
#define CVM_KDF_LABEL_SEED_CA_KEY "app-key"    /* P-256 key of the app CA */
#define CVM_KDF_LABEL_SEED_DISK "app-disk-key" /* P-256 key whose PKCS#8 hashes to disk_crypt_key */
#define CVM_KDF_LABEL_SEED_K256 "app-k256-key" /* the app k256 key */
/* Sign and Worker.GetAttestationForAppKey use GetKey(path, purpose). */
#define CVM_KDF_SIGN_PATH "vms"
#define CVM_KDF_SIGN_PURPOSE "signing"

/* ==== app keys (lib/kdf) ==================================================== */

/* enum cvm_key_provider says where an app's keys come from. Each has the tag
 * that dstack's `.appkeys.json` uses for it and the name that the
 * `key-provider` runtime event carries (cvm_key_provider_name). */
enum cvm_key_provider {
	CVM_KEY_PROVIDER_NONE = 1,  /* "None" / "none": a random seed per boot (nothing persists) */
	CVM_KEY_PROVIDER_LOCAL_SGX, /* "Local" / "local-sgx": dstack's SGX local key provider */
	CVM_KEY_PROVIDER_TPM,       /* "Tpm" / "tpm": a TPM-sealed seed */
	CVM_KEY_PROVIDER_KMS,       /* "Kms" / "kms": issued by a KMS after attestation */
	CVM_KEY_PROVIDER_LOCAL,     /* "CvmkitLocal" / "local": cvmkit's seed file in a state
	                             * directory (cvm_appkeys_local_open); unattested, for
	                             * development and single-host use. dstack cannot read
	                             * this tag. */
};

/* cvm_key_provider_name returns the static key-provider event name of `p`
 * ("none", "local-sgx", "tpm", "kms", "local"), or NULL for another value. */
CVM_API const char *cvm_key_provider_name(enum cvm_key_provider p);

/* Limits of the appkeys.json parser. */
#define CVM_APPKEYS_JSON_MAX ((size_t)64 * 1024) /* whole file */
#define CVM_APPKEYS_PEM_MAX ((size_t)16 * 1024)  /* ca_cert, key, tmp_ca_key, tmp_ca_cert */
#define CVM_APPKEYS_TEXT_MAX ((size_t)2048)      /* gateway_app_id, url */
#define CVM_APPKEYS_ID_MAX ((size_t)1024)        /* key provider id (mr, pubkey) in bytes */

/* struct cvm_appkeys is everything an app's keys consist of: the contents of
 * dstack's `.appkeys.json` (spec §2, §3.4). Make one with
 * cvm_appkeys_parse_json, cvm_appkeys_load, cvm_appkeys_from_seed or
 * cvm_appkeys_local_open; free it with cvm_appkeys_free, which wipes every
 * secret. All fields are owned. */
struct cvm_appkeys {
	/* The app's secp256k1 key (32 bytes, a valid scalar): the root of every
	 * GetKey derivation and the signer of signature_chain[0]. */
	struct cvm_secret *k256_key;
	/* The KMS root's recoverable signature over the app key,
	 * keccak256("dstack-kms-issued" ":" app_id || compressed app pubkey),
	 * r || s || v; k256_signature_len is 65, or 0 when no KMS issued the key. */
	uint8_t k256_signature[CVM_K256_RSIG_LEN];
	size_t k256_signature_len;
	/* The LUKS key (32 bytes; the guest passes its lowercase hex as the
	 * passphrase) and the X25519 secret of the encrypted environment (32
	 * bytes, or len 0 when the provider gives none: every non-KMS one). */
	struct cvm_secret *disk_crypt_key;
	struct cvm_secret *env_crypt_key;
	/* Which gateway app may route to this app ("any": no check); may be "". */
	char *gateway_app_id;
	/* The CA certificate(s) that app TLS certificates chain to, PEM; may be "". */
	char *ca_cert;
	enum cvm_key_provider key_provider;
	/* The provider's P-256 private key, PKCS#8 PEM text (no NUL): the app CA
	 * key for None/Local/Tpm/cvmkit-local, the KMS temp CA key for Kms. */
	struct cvm_secret *key_provider_key;
	/* The provider identity that the key-provider event carries: the SGX
	 * measurement (Local), the key's SPKI DER (Tpm, cvmkit-local), the KMS
	 * root CA SPKI DER (Kms), nothing for None. NULL when empty. */
	uint8_t *key_provider_id;
	size_t key_provider_id_len;
	char *kms_url;         /* Kms only, else NULL */
	char *kms_tmp_ca_cert; /* Kms only, else NULL: PEM */
};

/* cvm_appkeys_parse_json reads dstack's `.appkeys.json` (spec §2): a JSON
 * object with exactly the keys disk_crypt_key (hex, 32 bytes), env_crypt_key
 * (optional; hex, 0 or 32 bytes), k256_key (hex, 32 bytes, a valid scalar),
 * k256_signature (hex, 0 or 65 bytes, v <= 3), gateway_app_id (string),
 * ca_cert (string: "" or PEM certificates) and key_provider (an object with
 * one tag: {"None": {key}}, {"Local": {key, mr}}, {"Tpm": {key, pubkey}},
 * {"Kms": {url, pubkey, tmp_ca_key, tmp_ca_cert}} or {"CvmkitLocal":
 * {key, id}}; every key a P-256 PEM private key, every id hex). Unknown or
 * duplicate keys are errors, so a misspelt key never silently goes missing
 * (dstack itself ignores unknown keys). Hex may be upper or lower case, with
 * no 0x prefix. It checks no signature: see cvm_kdf_k256_check_issued.
 *
 * On error, a one-sentence reason naming the field (never any of its value)
 * goes to `err` when err_len > 0. Every copy of the input that cvmkit makes
 * and every string jansson decoded is wiped before return; jansson's own
 * scratch buffers are wiped only after cvm_kdf_json_wipe_on_free. Returns 0,
 * CVM_E_FORMAT, CVM_E_UNSUPPORTED (unknown provider tag), CVM_E_TOO_LARGE or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_appkeys_parse_json(const char *json, size_t len, struct cvm_appkeys **out,
                                                  char *err, size_t err_len);
/* cvm_appkeys_load reads and parses the file at `path` (at most
 * CVM_APPKEYS_JSON_MAX bytes). It refuses, with CVM_E_POLICY, a file that is
 * not a regular file or whose mode grants any access to group or others
 * (chmod 600 fixes it). Returns what cvm_appkeys_parse_json returns, or
 * CVM_E_SYSTEM (errno set) when the file cannot be read. */
CVM_API CVM_MUST_CHECK int cvm_appkeys_load(const char *path, struct cvm_appkeys **out, char *err,
                                            size_t err_len);
/* cvm_appkeys_to_json writes `k` in the format cvm_appkeys_parse_json reads
 * (compact JSON, keys in dstack's order) into a new secret (no NUL). It
 * checks lengths, not contents (a PEM field is written as it is). Returns 0,
 * CVM_E_INVAL (a field out of range, a Kms provider without kms_url or
 * kms_tmp_ca_cert) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_appkeys_to_json(const struct cvm_appkeys *k, struct cvm_secret **out);
/* cvm_appkeys_free wipes and frees `k`; NULL is a no-op. */
CVM_API void cvm_appkeys_free(struct cvm_appkeys *k);

/* cvm_appkeys_from_seed derives a full key set from a provider seed, as
 * dstack's gen_app_keys_from_seed does for its non-KMS providers (spec §3.7),
 * and marks it CVM_KEY_PROVIDER_LOCAL:
 *   k256_key       = HKDF(seed, "app-k256-key")                (a valid scalar)
 *   app CA key     = derive_p256(seed, "app-key")    -> key_provider_key (PEM)
 *   disk_crypt_key = SHA-256(PKCS#8 DER of derive_p256(seed, "app-disk-key"))
 *   ca_cert        = self-signed "O=cvmkit, CN=cvmkit Local App CA", CA with
 *                    path length 1, by the app CA key, valid from
 *                    2025-01-01 to 9999-12-31 (RFC 5280's "no expiry"), serial
 *                    from SHA-256 of the SPKI
 *   key_provider_id = SPKI DER of the app CA key
 *   env_crypt_key, k256_signature and gateway_app_id empty.
 * (HKDF here is cvm_kdf_derive: salt "RATLS".) `seed` is at least 16 bytes.
 * The same seed always gives the same keys (the certificate's signature
 * differs). Returns 0, CVM_E_INVAL, CVM_E_CRYPTO or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_appkeys_from_seed(const uint8_t *seed, size_t seed_len,
                                                 struct cvm_appkeys **out);

/* CVM_LOCAL_SEED_FILE is the seed file's name in the state directory. */
#define CVM_LOCAL_SEED_FILE "app-seed"
#define CVM_LOCAL_SEED_LEN 32

/* cvm_appkeys_local_open is the local key provider: it opens
 * `state_dir`/app-seed, creating it first with 32 random bytes (getrandom)
 * and mode 0600 if it does not exist (written to a temporary name, synced and
 * linked into place, so a crash never leaves a short seed and two racing
 * callers end up with the same seed), and returns cvm_appkeys_from_seed of
 * it. One state directory serves one app.
 *
 * It refuses, with CVM_E_POLICY and a reason in `err`: a seed that is not a
 * regular file, a symbolic link, a file owned by another user, a mode that
 * grants any access to group or others, and a state directory that group or
 * others may write. A seed of the wrong size gives CVM_E_FORMAT (it is never
 * replaced). Returns 0, those, CVM_E_SYSTEM (errno set), CVM_E_INVAL or
 * CVM_E_NOMEM. The seed never leaves the call: only derived keys do. */
CVM_API CVM_MUST_CHECK int cvm_appkeys_local_open(const char *state_dir, struct cvm_appkeys **out, char *err,
                                                  size_t err_len);

/* cvm_kdf_json_wipe_on_free makes jansson wipe every block it frees, for
 * the whole process (json_set_alloc_funcs), so that the scratch buffers its
 * parser fills while reading appkeys.json do not linger in freed memory. A
 * daemon that holds keys calls it once at startup, before any thread starts
 * and before any JSON value exists; it is not undone. */
CVM_API void cvm_kdf_json_wipe_on_free(void);

/* ==== dstack derivations (lib/kdf) ========================================== */

/* cvm_kdf_derive is dstack's derive_key: HKDF-SHA256 with salt "RATLS", the
 * given IKM and info, `out_len` bytes. Multi-part infos are the plain
 * concatenation of the parts. Returns 0, CVM_E_INVAL or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kdf_derive(const uint8_t *ikm, size_t ikm_len, const uint8_t *info,
                                          size_t info_len, uint8_t *out, size_t out_len);
/* cvm_kdf_derive_p256 is dstack's derive_p256: the 32 bytes of
 * cvm_kdf_derive(sk, info) used directly as a P-256 scalar. Returns 0,
 * CVM_E_FORMAT (the scalar is 0 or >= n: probability about 2^-32, then no key
 * exists for this input, as in dstack), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kdf_derive_p256(const uint8_t *sk, size_t sk_len, const uint8_t *info,
                                               size_t info_len, struct cvm_p256_keypair **out);
/* cvm_kdf_dh_secret is dstack's derive_dh_secret: SHA-256 of the canonical
 * PKCS#8 DER of cvm_kdf_derive_p256(sk, info). `out` is secret. */
CVM_API CVM_MUST_CHECK int cvm_kdf_dh_secret(const uint8_t *sk, size_t sk_len, const uint8_t *info,
                                             size_t info_len, uint8_t out[32]);

/* -- GetKey -- */

enum cvm_key_alg {
	CVM_KEY_ALG_SECP256K1 = 1,
	CVM_KEY_ALG_ED25519 = 2,
};

/* cvm_key_alg_parse maps a GetKey `algorithm` string: "", "secp256k1" and
 * "k256" to CVM_KEY_ALG_SECP256K1, "ed25519" to CVM_KEY_ALG_ED25519 (exact,
 * case-sensitive). Anything else, "secp256k1_prehashed" included, gives
 * CVM_E_UNSUPPORTED (dstack answers "Unsupported algorithm"). */
CVM_API CVM_MUST_CHECK int cvm_key_alg_parse(const char *name, size_t len, enum cvm_key_alg *out);
/* cvm_key_alg_name returns "secp256k1" or "ed25519" (static), or NULL. */
CVM_API const char *cvm_key_alg_name(enum cvm_key_alg alg);

/* CVM_GETKEY_SEPARATE_CURVES derives a different key per curve (cvmkit
 * only, off by default; see the pitfall at the top of this header): info =
 * 0xFF || "cvmkit-getkey-v1" || 0x00 || algorithm name || 0x00 || path. The
 * leading 0xFF can start no UTF-8 string, so no dstack path (a JSON string)
 * can produce the same info. The signature chain is formed as usual. */
#define CVM_GETKEY_SEPARATE_CURVES (1u << 0)

/* struct cvm_getkey is a GetKey result. Clean it with cvm_getkey_cleanup. */
struct cvm_getkey {
	struct cvm_secret *key;                  /* 32 bytes: secp256k1 scalar or Ed25519 seed */
	uint8_t public_key[CVM_K256_PUBKEY_LEN]; /* compressed secp256k1 (33) or raw Ed25519 (32) */
	size_t public_key_len;
	uint8_t chain0[CVM_K256_RSIG_LEN]; /* signature_chain[0] */
	uint8_t chain1[CVM_K256_RSIG_LEN]; /* signature_chain[1] = k256_signature */
	size_t chain1_len;                 /* 65, or 0 (dstack then returns "") */
};

/* cvm_kdf_get_key is the agent's GetKey (spec §1.3):
 *   key      = HKDF-SHA256(salt "RATLS", IKM = keys->k256_key, info = path, 32)
 *   chain[0] = ECDSA-secp256k1 by keys->k256_key (RFC 6979, low-S, r||s||v)
 *              over keccak256(purpose || ":" || lowerhex(public_key))
 *   chain[1] = keys->k256_signature
 * `purpose` does not enter the key, only the chain. For secp256k1 a derived
 * value that is not a valid scalar gives CVM_E_FORMAT (probability about
 * 2^-128; dstack fails the same way). With flags 0 the result is byte-for-
 * byte dstack's; see CVM_GETKEY_SEPARATE_CURVES. Returns 0, CVM_E_INVAL
 * (NULL keys or pointers, unknown flags), CVM_E_FORMAT, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kdf_get_key(const struct cvm_appkeys *keys, const char *path, size_t path_len,
                                           const char *purpose, size_t purpose_len, enum cvm_key_alg alg,
                                           unsigned flags, struct cvm_getkey *out);
/* cvm_getkey_cleanup wipes `g` and frees its key; safe on a zeroed or
 * already-cleaned struct. */
CVM_API void cvm_getkey_cleanup(struct cvm_getkey *g);

/* cvm_kdf_chain_message_digest writes keccak256(purpose || ":" ||
 * lowerhex(pub)): the digest that signature_chain[0] signs. */
CVM_API void cvm_kdf_chain_message_digest(const char *purpose, size_t purpose_len, const uint8_t *pub,
                                          size_t pub_len, uint8_t out[32]);

/* cvm_kdf_chain_verify checks a GetKey signature chain as dstack's README
 * describes: it recovers the app key from `chain0` over the chain message of
 * (`purpose`, `pub`) and writes it to `app_pub`; then, when `chain1` is not
 * NULL, requires it to be the KMS issuance of that app key for `app_id` by
 * `kms_pub` (compressed, required with chain1). Returns 0, CVM_E_SIGNATURE or
 * CVM_E_FORMAT. With chain1 NULL, only the caller's comparison of `app_pub`
 * with a key it trusts makes the result mean anything. */
CVM_API CVM_MUST_CHECK int cvm_kdf_chain_verify(const char *purpose, size_t purpose_len, const uint8_t *pub,
                                                size_t pub_len, const uint8_t chain0[CVM_K256_RSIG_LEN],
                                                const uint8_t *chain1, const uint8_t app_id[CVM_APP_ID_LEN],
                                                const uint8_t kms_pub[CVM_K256_PUBKEY_LEN],
                                                uint8_t app_pub[CVM_K256_PUBKEY_LEN]);

/* cvm_kdf_dip1_report_data writes the 64-byte report_data of
 * Worker.GetAttestationForAppKey for GetKey("vms", "signing", alg)'s public
 * key: "dip1::secp256k1c-pk:" + base64url(33-byte key) (exactly 64 bytes) or
 * "dip1::ed25519-pk:" + base64url(32-byte key), zero-padded. */
CVM_API CVM_MUST_CHECK int cvm_kdf_dip1_report_data(const struct cvm_appkeys *keys, enum cvm_key_alg alg,
                                                    uint8_t out[CVM_REPORT_DATA_LEN]);

/* -- GetKey, guest API v1 -- */

/* dstack's v1 guest API (docs/guest-api-v1.md of Dstack-TEE/dstack, 0.6.0)
 * derives its keys differently from v0, on purpose:
 *   key   = HKDF-SHA256(salt "dstack-guest-v1", IKM = keys->k256_key,
 *                       info = LP("dstack-guest-v1-key") || LP(algorithm) || LP(domain), 32)
 *   claim = LP("dstack-guest-v1-key-claim") || LP(algorithm) || LP(domain) || LP(public_key)
 *   chain[0] = recoverable ECDSA-secp256k1 by keys->k256_key (RFC 6979,
 *              low-S, r || s || v) over keccak256(claim)
 *   chain[1] = keys->k256_signature (the KMS's link, as in v0)
 * where LP(x) = uint32_be(len(x)) || x, `algorithm` is the canonical name
 * ("secp256k1" or "ed25519") and `public_key` the raw bytes (compressed
 * secp256k1, 33, or Ed25519, 32). The algorithm is in the info, so the two
 * curves never share a secret: v1 fixes the pitfall described at the top of
 * this header. The own salt keeps every v1 key out of reach of a v0 path.
 * The length prefixes make any domain (NUL, ':' and '/' included) safe. */
#define CVM_KDF_V1_SALT "dstack-guest-v1"
#define CVM_KDF_V1_KEY_TAG "dstack-guest-v1-key"
#define CVM_KDF_V1_CLAIM_TAG "dstack-guest-v1-key-claim"
/* CVM_KDF_V1_DOMAIN_MAX bounds a v1 domain (cvmkit's limit; dstack's is the
 * request size). */
#define CVM_KDF_V1_DOMAIN_MAX ((size_t)4096)

/* cvm_key_alg_parse_v1 maps a v1 `algorithm`: exactly "secp256k1" or
 * "ed25519". There is no default and no alias: "" gives CVM_E_INVAL (dstack
 * answers "algorithm is required, use `secp256k1` or `ed25519`"), any other
 * value, "k256" and "secp256k1_prehashed" included, CVM_E_UNSUPPORTED
 * ("unsupported algorithm `X`, use `secp256k1` or `ed25519`"). */
CVM_API CVM_MUST_CHECK int cvm_key_alg_parse_v1(const char *name, size_t len, enum cvm_key_alg *out);

/* cvm_kdf_v1_derive writes the 32-byte v1 key of (`domain`, `alg`) under the
 * app root key `root` (32 bytes) to `out`, which is secret: the caller wipes
 * it. It does not check that the bytes are a valid secp256k1 scalar. Returns
 * 0, CVM_E_INVAL, CVM_E_TOO_LARGE (domain over CVM_KDF_V1_DOMAIN_MAX),
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kdf_v1_derive(const uint8_t root[CVM_K256_SECKEY_LEN], const char *domain,
                                             size_t domain_len, enum cvm_key_alg alg,
                                             uint8_t out[CVM_KDF_KEY_LEN]);

/* cvm_kdf_v1_claim_digest writes keccak256 of the v1 key claim of (`alg`,
 * `domain`, `pub`): what chain[0] signs. Returns 0 or CVM_E_INVAL (an
 * unknown alg, NULL pointers, a domain over CVM_KDF_V1_DOMAIN_MAX or a `pub`
 * longer than CVM_K256_PUBKEY_FULL_LEN). */
CVM_API CVM_MUST_CHECK int cvm_kdf_v1_claim_digest(enum cvm_key_alg alg, const char *domain,
                                                   size_t domain_len, const uint8_t *pub, size_t pub_len,
                                                   uint8_t out[32]);

/* cvm_kdf_v1_get_key is the v1 GetKey: the key, its public key and the
 * two-link chain above, into `out` (clean it with cvm_getkey_cleanup). A
 * secp256k1 value that is not a valid scalar gives CVM_E_FORMAT (about
 * 2^-128; the caller picks another domain; dstack fails the same way, it
 * never folds the value into range). Returns 0, CVM_E_INVAL, CVM_E_TOO_LARGE,
 * CVM_E_FORMAT, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kdf_v1_get_key(const struct cvm_appkeys *keys, const char *domain,
                                              size_t domain_len, enum cvm_key_alg alg,
                                              struct cvm_getkey *out);

/* cvm_kdf_v1_chain_verify recovers the app root key from `chain0` (65 bytes,
 * r || s || v) over the v1 claim of (`alg`, `domain`, `pub`) into `app_pub`
 * (33 bytes) and, when `chain1` (65 bytes) is not NULL, requires it to be
 * the KMS issuance of that key for `app_id` (20 bytes) by `kms_pub`
 * (compressed, 33 bytes): the relying party's steps 2 to 5 of
 * docs/guest-api-v1.md. Returns 0, CVM_E_SIGNATURE, CVM_E_FORMAT or
 * CVM_E_INVAL. With chain1 NULL only the caller's comparison of `app_pub`
 * with a key it trusts gives the result a meaning. */
CVM_API CVM_MUST_CHECK int cvm_kdf_v1_chain_verify(enum cvm_key_alg alg, const char *domain,
                                                   size_t domain_len, const uint8_t *pub, size_t pub_len,
                                                   const uint8_t *chain0, const uint8_t *chain1,
                                                   const uint8_t *app_id, const uint8_t *kms_pub,
                                                   uint8_t *app_pub);

/* -- Sign and Verify -- */

enum cvm_sign_alg {
	CVM_SIGN_ED25519 = 1,
	CVM_SIGN_SECP256K1,           /* ECDSA over SHA-256(data) */
	CVM_SIGN_SECP256K1_PREHASHED, /* ECDSA over data, which is a 32-byte digest */
};

/* cvm_sign_alg_parse maps a Sign/Verify `algorithm`: "ed25519",
 * "secp256k1", "k256" (= secp256k1), "secp256k1_prehashed". Anything else,
 * "" included, gives CVM_E_UNSUPPORTED. */
CVM_API CVM_MUST_CHECK int cvm_sign_alg_parse(const char *name, size_t len, enum cvm_sign_alg *out);

/* struct cvm_sign_result is a Sign result; it holds no secret. */
struct cvm_sign_result {
	uint8_t signature[64];                   /* Ed25519, or secp256k1 r || s (not recoverable) */
	uint8_t public_key[CVM_K256_PUBKEY_LEN]; /* raw Ed25519 (32) or compressed secp256k1 (33) */
	size_t public_key_len;
	uint8_t chain0[CVM_K256_RSIG_LEN]; /* GetKey("vms", "signing", alg).chain[0] */
	uint8_t chain1[CVM_K256_RSIG_LEN]; /* k256_signature */
	size_t chain1_len;                 /* 65 or 0 */
};

/* cvm_kdf_sign is the agent's Sign (spec §1.3): it signs `data` with
 * GetKey("vms", "signing", alg)'s key. dstack's response is {signature,
 * signature_chain: [signature, chain0, chain1], public_key}. `flags` is
 * passed to the GetKey derivation (0 for dstack's keys). Returns 0,
 * CVM_E_INVAL (prehashed data that is not 32 bytes: dstack answers "Pre-hashed
 * signing requires a 32-byte digest, but received N bytes"), or what
 * cvm_kdf_get_key returns. */
CVM_API CVM_MUST_CHECK int cvm_kdf_sign(const struct cvm_appkeys *keys, enum cvm_sign_alg alg,
                                        const uint8_t *data, size_t len, unsigned flags,
                                        struct cvm_sign_result *out);

/* cvm_kdf_verify is the agent's Verify (spec §1.3): it needs no key of
 * ours. Ed25519: `pub` 32 bytes, `sig` 64. secp256k1: `pub` SEC1 33 or 65
 * bytes, `sig` r || s (64), high-S rejected; over SHA-256(data), or over
 * `data` itself (exactly 32 bytes) when prehashed. Returns 0 (valid: true),
 * CVM_E_SIGNATURE (valid: false), or CVM_E_FORMAT for a malformed key,
 * signature or digest (dstack answers HTTP 400); CVM_E_INVAL for an `alg`
 * outside the enum. An Ed25519 key that is not a point gives CVM_E_SIGNATURE
 * rather than CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_kdf_verify(enum cvm_sign_alg alg, const uint8_t *data, size_t len,
                                          const uint8_t *sig, size_t sig_len, const uint8_t *pub,
                                          size_t pub_len);

/* -- GetTlsKey -- */

/* cvm_kdf_tls_key_new makes GetTlsKey's key: 32 random bytes, then
 * cvm_kdf_derive_p256 with an empty info (spec §1.3); it is not
 * deterministic. Export it with cvm_p256_keypair_pkcs8_pem and certify it
 * with cvm_cert_make. */
CVM_API CVM_MUST_CHECK int cvm_kdf_tls_key_new(struct cvm_p256_keypair **out);

/* -- KMS side (spec §3.2) -- */

/* cvm_kdf_app_k256_key derives an app's k256 key from the KMS root
 * secp256k1 key: HKDF(root_k256, app_id || "app-key"), a valid scalar. */
CVM_API CVM_MUST_CHECK int cvm_kdf_app_k256_key(const uint8_t root_k256[CVM_K256_SECKEY_LEN],
                                                const uint8_t app_id[CVM_APP_ID_LEN],
                                                struct cvm_secret **out);
/* cvm_kdf_k256_issued_digest writes keccak256("dstack-kms-issued" || ":" ||
 * app_id || app_pub): what k256_signature signs. */
CVM_API void cvm_kdf_k256_issued_digest(const uint8_t app_id[CVM_APP_ID_LEN],
                                        const uint8_t app_pub[CVM_K256_PUBKEY_LEN], uint8_t out[32]);
/* cvm_kdf_k256_issue makes k256_signature: the root key's recoverable
 * signature over cvm_kdf_k256_issued_digest. */
CVM_API CVM_MUST_CHECK int cvm_kdf_k256_issue(const uint8_t root_k256[CVM_K256_SECKEY_LEN],
                                              const uint8_t app_id[CVM_APP_ID_LEN],
                                              const uint8_t app_pub[CVM_K256_PUBKEY_LEN],
                                              uint8_t sig[CVM_K256_RSIG_LEN]);
/* cvm_kdf_k256_check_issued returns 0 when `sig` recovers to `kms_pub` over
 * cvm_kdf_k256_issued_digest(app_id, app_pub), else CVM_E_SIGNATURE (or
 * CVM_E_FORMAT for a malformed signature). */
CVM_API CVM_MUST_CHECK int cvm_kdf_k256_check_issued(const uint8_t kms_pub[CVM_K256_PUBKEY_LEN],
                                                     const uint8_t app_id[CVM_APP_ID_LEN],
                                                     const uint8_t app_pub[CVM_K256_PUBKEY_LEN],
                                                     const uint8_t sig[CVM_K256_RSIG_LEN]);
/* cvm_kdf_disk_crypt_key = derive_dh_secret(root_ca_sk, app_id ||
 * instance_id || "app-disk-crypt-key"); cvm_kdf_env_crypt_key =
 * derive_dh_secret(root_ca_sk, app_id || "env-encrypt-key"). `root_ca_sk` is
 * the 32-byte P-256 scalar of the KMS root CA key; outputs are secret. */
CVM_API CVM_MUST_CHECK int cvm_kdf_disk_crypt_key(const uint8_t root_ca_sk[CVM_P256_SCALAR_LEN],
                                                  const uint8_t app_id[CVM_APP_ID_LEN],
                                                  const uint8_t instance_id[CVM_INSTANCE_ID_LEN],
                                                  uint8_t out[32]);
CVM_API CVM_MUST_CHECK int cvm_kdf_env_crypt_key(const uint8_t root_ca_sk[CVM_P256_SCALAR_LEN],
                                                 const uint8_t app_id[CVM_APP_ID_LEN], uint8_t out[32]);

/* -- identities (spec §4.3) -- */

/* cvm_kdf_app_id_from_compose_hash writes the default app_id: the first 20
 * bytes of the compose hash. */
CVM_API void cvm_kdf_app_id_from_compose_hash(const uint8_t compose_hash[32], uint8_t out[CVM_APP_ID_LEN]);
/* cvm_kdf_instance_id writes SHA-256(seed || app_id [|| binding])[0..20],
 * where `binding` (NULL for none, as on bare-metal TDX) is the 32-byte
 * platform binding (SHA-256 of a vTPM AK or NitroTPM EK public area). */
CVM_API void cvm_kdf_instance_id(const uint8_t seed[CVM_INSTANCE_ID_LEN],
                                 const uint8_t app_id[CVM_APP_ID_LEN], const uint8_t *binding,
                                 uint8_t out[CVM_INSTANCE_ID_LEN]);

#endif
