/* dstack's encrypted environment (spec §4.4) and the KMS's signatures over
 * the key it is encrypted to (spec §3.2, GetAppEnvEncryptPubKey).
 *
 * A deployer encrypts an env list to the app's X25519 env public key; the
 * guest, given env_crypt_key by the KMS, decrypts it, keeps the names the
 * app allows and writes them for the app. Encryption gives confidentiality
 * only: anyone may encrypt to the public key, so an app must not treat what
 * it receives as coming from its owner (spec §4.4; docs/threat-model.md).
 *
 *   blob = eph_pub (32) || iv (12) || AES-256-GCM(key = X25519(eph, app_pub), plain) || tag (16)
 *   plain = {"env":[{"key":K,"value":V},...]} (UTF-8 JSON)
 *
 * The key is the raw X25519 shared secret (no KDF), and there is no
 * associated data: exactly what @phala/dstack-sdk's encryptEnvVars and
 * dstack-util's dh_decrypt do. */
#ifndef CVMKIT_ENVCRYPT_H
#define CVMKIT_ENVCRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "crypto.h"
#include "err.h"
#include "secret.h"

#define CVM_ENVCRYPT_PUBKEY_LEN 32
#define CVM_ENVCRYPT_IV_LEN 12
#define CVM_ENVCRYPT_TAG_LEN 16
/* The bytes a blob adds to its plaintext: eph_pub, IV and tag. */
#define CVM_ENVCRYPT_OVERHEAD (CVM_ENVCRYPT_PUBKEY_LEN + CVM_ENVCRYPT_IV_LEN + CVM_ENVCRYPT_TAG_LEN)
/* The largest plaintext sealed or opened: dstack's 1 MiB of names and values
 * plus 64 KiB for the JSON around them (1024 items cost about 30 KiB of
 * braces, quotes and names). A list at the total limit whose values need
 * many JSON escapes can exceed it: sealing it fails with CVM_E_TOO_LARGE. */
#define CVM_ENVCRYPT_PLAIN_MAX ((size_t)1024 * 1024 + (size_t)64 * 1024)
#define CVM_ENVCRYPT_BLOB_MAX (CVM_ENVCRYPT_PLAIN_MAX + CVM_ENVCRYPT_OVERHEAD)

/* dstack's limits on a decrypted env list (dstack-util parse_env_file.rs). */
#define CVM_ENV_ITEMS_MAX 1024
#define CVM_ENV_KEY_MAX 255
#define CVM_ENV_VALUE_MAX ((size_t)128 * 1024)
#define CVM_ENV_TOTAL_MAX ((size_t)1024 * 1024) /* sum of names and values kept */

/* cvm_envcrypt_seal encrypts the `plain_len` bytes at `plain` (at most
 * CVM_ENVCRYPT_PLAIN_MAX) to the X25519 public key `app_pub` with a fresh
 * ephemeral key and IV, and returns the blob in a new buffer (*out,
 * *out_len = plain_len + CVM_ENVCRYPT_OVERHEAD) that the caller frees; it
 * holds no secret. The ephemeral key and the shared secret are wiped. It does
 * not check that `app_pub` is the app's: that is what the KMS signature and
 * cvm_envcrypt_pubkey_verify are for. Returns 0, CVM_E_INVAL,
 * CVM_E_TOO_LARGE, CVM_E_FORMAT (`app_pub` is a low-order point: the shared
 * secret would be zero), CVM_E_NOMEM, CVM_E_SYSTEM (no randomness) or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_envcrypt_seal(const uint8_t app_pub[CVM_ENVCRYPT_PUBKEY_LEN],
                                             const uint8_t *plain, size_t plain_len, uint8_t **out,
                                             size_t *out_len);

/* cvm_envcrypt_open decrypts the blob of `len` bytes at `blob` with
 * `env_crypt_key` (the 32-byte raw X25519 secret the KMS releases; clamped
 * inside) into new secret memory (*plain; freed with cvm_secret_free). It
 * checks the structure only (the plaintext is not parsed). Returns 0,
 * CVM_E_INVAL (NULL arguments, a key that is not 32 bytes), CVM_E_TRUNCATED
 * (shorter than CVM_ENVCRYPT_OVERHEAD), CVM_E_TOO_LARGE (over
 * CVM_ENVCRYPT_BLOB_MAX), CVM_E_FORMAT (the shared secret is all zero: a
 * low-order ephemeral key, refused as dstack refuses it; or the ephemeral
 * key is not in canonical form, its top bit set or u >= 2^255 - 19, which
 * no honest sender makes and which X25519 would silently reduce, so that
 * the blob could be changed without failing; dstack accepts those),
 * CVM_E_SIGNATURE
 * (the tag does not verify: another key, or changed bytes), CVM_E_NOMEM or
 * CVM_E_CRYPTO. Nothing is returned on failure. */
CVM_API CVM_MUST_CHECK int cvm_envcrypt_open(const struct cvm_secret *env_crypt_key, const uint8_t *blob,
                                             size_t len, struct cvm_secret **plain);

/* ---- env lists ---------------------------------------------------------- */

/* struct cvm_env_var is one name and value. Both point into the list's
 * secret memory and are NUL-terminated; neither contains a NUL byte. */
struct cvm_env_var {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
};

/* struct cvm_env_list is an env list whose names and values live in one
 * block of secret memory (struct cvm_secret), wiped by cvm_env_list_free.
 * `skipped` names the items a filter dropped (names only, never values; in
 * ordinary heap memory, as dstack logs them), each NUL-terminated and cut
 * to CVM_ENV_KEY_MAX bytes. Read the public fields; the rest belongs to
 * lib/envcrypt. */
struct cvm_env_list {
	struct cvm_env_var *vars;
	size_t count;
	char **skipped;
	size_t skipped_count;
	struct cvm_secret *store; /* the names and values */
	size_t store_used;
};

/* cvm_env_list_new returns an empty list with room for `store_len` bytes
 * of names and values (each plus a NUL), or NULL (out of memory). */
CVM_API struct cvm_env_list *cvm_env_list_new(size_t store_len);
/* cvm_env_list_free wipes and frees `l`; NULL is a no-op. */
CVM_API void cvm_env_list_free(struct cvm_env_list *l);

/* cvm_env_key_ok is true when the `len` bytes at `key` match dstack's name
 * rule ^[a-zA-Z_][a-zA-Z0-9_]*$ and are at most CVM_ENV_KEY_MAX bytes. */
CVM_API bool cvm_env_key_ok(const char *key, size_t len);

/* cvm_env_list_add appends KEY=VALUE (copied into the list's secret
 * memory). The name must pass cvm_env_key_ok, the value be valid UTF-8
 * with no NUL byte and at most CVM_ENV_VALUE_MAX bytes, and the list stay
 * within CVM_ENV_ITEMS_MAX items and CVM_ENV_TOTAL_MAX bytes. A name
 * already present is CVM_E_FORMAT (this function never replaces). Returns
 * 0, CVM_E_INVAL, CVM_E_FORMAT, CVM_E_TOO_LARGE (a limit, or the list's
 * store is full) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_env_list_add(struct cvm_env_list *l, const char *key, size_t key_len,
                                            const char *value, size_t value_len);

/* struct cvm_env_allowed is the set of names an app accepts (dstack's
 * app-compose `allowed_envs`): `count` names of `names`, NUL-terminated. */
struct cvm_env_allowed {
	const char *const *names;
	size_t count;
};

/* cvm_env_list_from_json parses the decrypted plaintext `json` (`len`
 * bytes, at most CVM_ENVCRYPT_PLAIN_MAX), {"env":[{"key":K,"value":V},...]},
 * the way dstack's guest does (dstack-util parse_env_file.rs):
 *  - the top level is an object with an "env" array of objects, each with
 *    string "key" and "value"; other members are ignored; a member named
 *    twice in one object is refused; so is the old bare array [...];
 *  - at most CVM_ENV_ITEMS_MAX items, counted before filtering;
 *  - with `allowed` (may be NULL: keep every item), an item whose name is not
 *    in the set is skipped unchecked, its name recorded in (*out)->skipped;
 *    a set with count 0 skips everything, as dstack does with an empty
 *    allowed_envs;
 *  - each kept item passes cvm_env_key_ok, a value of at most
 *    CVM_ENV_VALUE_MAX bytes, and the kept names and values sum to at most
 *    CVM_ENV_TOTAL_MAX bytes;
 *  - a name given twice keeps its last value, and the list comes out
 *    sorted by name (byte order), as dstack's BTreeMap does.
 * Unlike dstack, a string holding a NUL character (\u0000) is refused
 * (CVM_E_FORMAT): it cannot be passed through an environment. jansson
 * parses, so its allocations hold plaintext: a process that keeps secrets
 * calls cvm_kdf_json_wipe_on_free (include/cvmkit/kdf.h) first. Returns 0,
 * CVM_E_INVAL, CVM_E_FORMAT, CVM_E_TOO_LARGE or CVM_E_NOMEM; `err` (may be
 * NULL) then holds one sentence that names the offending item by index and,
 * when its name is valid, by name, never by value. */
CVM_API CVM_MUST_CHECK int cvm_env_list_from_json(const char *json, size_t len,
                                                  const struct cvm_env_allowed *allowed,
                                                  struct cvm_env_list **out, char *err, size_t err_len);

/* cvm_env_list_from_dotenv parses an env file (`len` bytes, at most
 * CVM_ENVCRYPT_PLAIN_MAX), what `cvm app encrypt-env` reads:
 *  - lines end at \n; a \r before it is dropped; spaces and tabs around a
 *    line are ignored;
 *  - an empty line, or one whose first character is '#', is skipped (a '#'
 *    later in a line is part of the value);
 *  - every other line is NAME=VALUE: NAME (spaces and tabs around it
 *    ignored) passes cvm_env_key_ok; VALUE is the rest of the line, spaces
 *    and tabs around it removed;
 *  - quoting: when VALUE begins and ends with the same quote character (')
 *    or ("), and is at least two bytes long, that one pair is removed and
 *    what is between is kept byte for byte (no escapes, so a value cannot
 *    span lines); a VALUE that begins with a quote and does not end with it
 *    is refused; quotes elsewhere are ordinary bytes;
 *  - a line without '=', a name given twice, a NUL byte, invalid UTF-8
 *    and dstack's limits are refused, with the line number in `err`.
 * dstack's vmm-cli.py skips lines without '=', keeps quotes as part of the
 * value and lets the last of two names win; this parser refuses what it
 * would have to guess at. The list keeps the file's order. Returns 0,
 * CVM_E_INVAL, CVM_E_FORMAT, CVM_E_TOO_LARGE or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_env_list_from_dotenv(const char *text, size_t len, struct cvm_env_list **out,
                                                    char *err, size_t err_len);

/* The JSON forms of a list. */
enum cvm_env_json {
	/* {"env":[{"key":K,"value":V},...]}: the plaintext that is sealed, byte
	 * for byte what the SDK's JSON.stringify({env}) makes of the same list */
	CVM_ENV_JSON_SEALED = 0,
	/* {"K":"V",...}: dstack's .decrypted-env.json (serde_json of its map) */
	CVM_ENV_JSON_MAP,
};

/* cvm_env_list_to_json writes `l` in list order as compact JSON (escapes:
 * \" \\ \b \f \n \r \t and \u00XX for the other control characters; other
 * bytes as they are) into new secret memory (*out, no NUL counted in its
 * len). Returns 0, CVM_E_INVAL, CVM_E_TOO_LARGE (over
 * CVM_ENVCRYPT_PLAIN_MAX) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_env_list_to_json(const struct cvm_env_list *l, enum cvm_env_json form,
                                                struct cvm_secret **out);

/* cvm_env_list_format_shell writes `l` in list order as dstack's
 * .decrypted-env (dstack-util parse_env_file.rs convert_env_to_str), one
 * "NAME=VALUE\n" per item, into new secret memory. VALUE is written as it
 * is, unless it holds a space, tab, newline or one of | & ; < > ( ) $ ` \ "
 * ': then newline becomes \n, and " $ ` get a backslash before them, and
 * the whole is put in double quotes. As in dstack, a backslash and a
 * carriage return are not escaped, so a value ending in a backslash or
 * holding \r does not read back the same in a shell or systemd's
 * EnvironmentFile: keep such values out of env lists. Returns 0,
 * CVM_E_INVAL, CVM_E_TOO_LARGE or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_env_list_format_shell(const struct cvm_env_list *l, struct cvm_secret **out);

/* ---- the KMS's signatures over an app's env public key (spec §3.2) ------ */

/* The domain of both messages. */
#define CVM_ENVCRYPT_SIG_DOMAIN "dstack-env-encrypt-pubkey"
/* How far in the future a signature_v1 timestamp may be (clock skew), in
 * seconds: the SDK's 60. */
#define CVM_ENVCRYPT_SKEW_MAX 60u
/* The SDK's default maximum age of a signature_v1, in seconds. */
#define CVM_ENVCRYPT_MAX_AGE_DEFAULT 300u

/* cvm_envcrypt_pubkey_digest writes the keccak256 digest the KMS signs:
 *   legacy (`v1` false): keccak256("dstack-env-encrypt-pubkey" ":" || app_id || pub)
 *   v1:                  keccak256("dstack-env-encrypt-pubkey" ":" || app_id || u64be(timestamp) || pub)
 * `timestamp` is ignored for the legacy form. */
CVM_API void cvm_envcrypt_pubkey_digest(const uint8_t app_id[20], const uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN],
                                        bool v1, uint64_t timestamp, uint8_t out[32]);

/* cvm_envcrypt_pubkey_sign makes GetAppEnvEncryptPubKey's two signatures
 * with the KMS's root k256 scalar: `sig` (legacy, no timestamp) and
 * `sig_v1` (with `timestamp`, Unix seconds), each r || s || v with v the
 * recovery id 0 or 1, as dstack's KMS sends them. Returns 0, CVM_E_INVAL,
 * CVM_E_FORMAT (not a valid scalar) or CVM_E_CRYPTO; on failure both
 * outputs are zero. */
CVM_API CVM_MUST_CHECK int cvm_envcrypt_pubkey_sign(const uint8_t root_k256[CVM_K256_SECKEY_LEN],
                                                    const uint8_t app_id[20],
                                                    const uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN],
                                                    uint64_t timestamp, uint8_t sig[CVM_K256_RSIG_LEN],
                                                    uint8_t sig_v1[CVM_K256_RSIG_LEN]);

/* cvm_envcrypt_pubkey_verify returns 0 only when the KMS whose k256 public
 * key is `kms_k256_pub` (compressed SEC1, GetMeta's k256_pubkey) vouched
 * that `pub` is the env public key of `app_id`:
 *  - max_age_s > 0 (the normal case): `sig_v1` must be given and recover to
 *    the KMS key over the v1 digest with `timestamp`, and `timestamp` must be
 *    at most max_age_s before `now` and at most CVM_ENVCRYPT_SKEW_MAX after
 *    it (the SDK's rule). The legacy `sig` is not looked at: it carries no
 *    time, so an old answer could be replayed with it.
 *  - max_age_s == 0 (asked for explicitly: a KMS that predates
 *    signature_v1): no freshness. `sig_v1`, when given, is checked (age
 *    ignored); otherwise the legacy `sig` must recover to the KMS key.
 * Either signature may be NULL. On failure `err` (may be NULL) holds one
 * sentence saying what did not hold. Returns 0, CVM_E_INVAL (NULL key,
 * app_id or pub; no signature to check), CVM_E_FORMAT (`kms_k256_pub` is
 * not a point), CVM_E_SIGNATURE (a signature that does not recover, or
 * recovers to another key) or CVM_E_POLICY (no signature_v1 with max_age_s
 * > 0; a stale or future timestamp). */
CVM_API CVM_MUST_CHECK int cvm_envcrypt_pubkey_verify(const uint8_t kms_k256_pub[CVM_K256_PUBKEY_LEN],
                                                      const uint8_t app_id[20],
                                                      const uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN],
                                                      const uint8_t *sig, const uint8_t *sig_v1,
                                                      uint64_t timestamp, uint64_t now, uint64_t max_age_s,
                                                      char *err, size_t err_len);

#endif
