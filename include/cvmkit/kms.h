/* The KMS's root material and the app keys it derives from it (dstack's KMS,
 * spec §3.1-3.2; issue 13). This is the offline half of cvm-kmsd: what a KMS
 * holding these roots would release to an app, computed without any
 * attestation or policy. The derivations themselves are lib/kdf's
 * (cvm_kdf_*); this module loads the roots and puts the pieces together.
 *
 * Root directory layouts. Both use dstack's file names (spec §3.1):
 *   root-ca.key    P-256 root CA key, PEM ("PRIVATE KEY" or "EC PRIVATE KEY")
 *   root-ca.crt    its certificate, PEM (O=Dstack, CN=Dstack KMS CA)
 *   root-k256.key  secp256k1 root key, the raw 32-byte scalar
 *   tmp-ca.key     the client temp CA key, PEM; tmp-ca.crt its certificate
 *   rpc.key        the KMS TLS key, PEM; rpc.crt its certificate
 * - dstack's layout (a `core.cert_dir`, /etc/kms/certs): the files directly
 *   in DIR. They are epoch 0, and epoch 0's keys are dstack's, byte for byte.
 * - cvmkit's layout: DIR/epoch-<N>/ holds the roots of key epoch N (N a
 *   decimal number without leading zeros, 0 .. CVM_KMS_EPOCH_MAX) under the
 *   same names. Epoch N's app keys are dstack's derivations over epoch N's
 *   roots: a new epoch is new roots, nothing else changes. Epoch 0 may live
 *   in DIR/epoch-0/ instead of DIR; a DIR that has root files of its own AND
 *   an epoch-0/ folder is ambiguous and refused. (Announcing, rotating and
 *   revoking epochs is cvm-kmsd's job, later.)
 * Sealed roots: with a TPM (cvm-kmsd's [kms] tpm_tcti, cvm kms --tpm), the
 * secret roots are written sealed to it (cvm_tpm_seal, include/cvmkit/tpm.h)
 * instead of in the clear, under the same name with ".tpm" added:
 *   root-ca.key.tpm    the root CA's P-256 scalar, sealed
 *   root-k256.key.tpm  the secp256k1 root, sealed
 *   tmp-ca.key.tpm     the temp CA's P-256 scalar, sealed
 * Each is a cvm_tpm_seal blob (not secret, but mode 0600 like any key file)
 * over one byte, the root's enum cvm_kms_root value (a sealed file moved to
 * another root's name does not load), and the 32-byte scalar: a TPM seals at
 * most 128 bytes, so the PEM is not sealed but rebuilt (PKCS#8) from the
 * scalar. Certificates stay plain. A folder holding both a root's plain and
 * sealed file is ambiguous and refused; a sealed root loaded without a TPM
 * is refused with a message saying so. Once loaded, a sealed root is in
 * secret memory like any other. rpc.key has no sealed form (it is no root).
 * Every key file must be a regular file owned by the user, mode 0600 or
 * stricter (cvm_file_read_key's rule): a key that others could read is
 * refused, not loaded. A root whose file does not exist is absent: it is
 * recorded with a note and is not an error; a root that exists but cannot
 * be read or is malformed is an error (nothing is loaded), so a damaged root
 * never silently turns into "absent". Certificates are public and may have
 * any mode.
 *
 * Every private key is held in struct cvm_secret memory (directly, or
 * inside a struct cvm_p256_keypair) and wiped when freed. */
#ifndef CVMKIT_KMS_H
#define CVMKIT_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"
#include "kdf.h"
#include "secret.h"

/* CVM_KMS_EPOCH_MAX is the largest key epoch. */
#define CVM_KMS_EPOCH_MAX UINT32_C(1000000)
/* The root files, dstack's names (spec §3.1). */
#define CVM_KMS_FILE_ROOT_CA_KEY "root-ca.key"
#define CVM_KMS_FILE_ROOT_CA_CERT "root-ca.crt"
#define CVM_KMS_FILE_ROOT_K256_KEY "root-k256.key"
#define CVM_KMS_FILE_TMP_CA_KEY "tmp-ca.key"
#define CVM_KMS_FILE_TMP_CA_CERT "tmp-ca.crt"
#define CVM_KMS_FILE_RPC_KEY "rpc.key"
#define CVM_KMS_FILE_RPC_CERT "rpc.crt"
/* CVM_KMS_KEY_FILE_MAX bounds a key file; CVM_KMS_CERT_FILE_MAX a certificate. */
#define CVM_KMS_KEY_FILE_MAX ((size_t)16 * 1024)
#define CVM_KMS_CERT_FILE_MAX ((size_t)64 * 1024)

/* enum cvm_kms_root names one root file. */
enum cvm_kms_root {
	CVM_KMS_ROOT_CA_KEY = 0, /* root-ca.key: disk, env and App CA keys */
	CVM_KMS_ROOT_CA_CERT,    /* root-ca.crt: the App CA certificate's issuer */
	CVM_KMS_ROOT_K256_KEY,   /* root-k256.key: the app k256 key and its signature */
	CVM_KMS_ROOT_TMP_CA_KEY,
	CVM_KMS_ROOT_TMP_CA_CERT,
	CVM_KMS_ROOT_RPC_KEY,
	CVM_KMS_ROOT_RPC_CERT,
	CVM_KMS_ROOT_COUNT,
};

/* The sealed copies' names (above). */
#define CVM_KMS_FILE_ROOT_CA_KEY_SEALED "root-ca.key.tpm"
#define CVM_KMS_FILE_ROOT_K256_KEY_SEALED "root-k256.key.tpm"
#define CVM_KMS_FILE_TMP_CA_KEY_SEALED "tmp-ca.key.tpm"

/* cvm_kms_root_file returns the static file name of `root`, or NULL. */
CVM_API const char *cvm_kms_root_file(enum cvm_kms_root root);
/* cvm_kms_root_sealed_file returns the static name of `root`'s sealed copy,
 * or NULL when it has none (certificates, rpc.key) or `root` is bad. */
CVM_API const char *cvm_kms_root_sealed_file(enum cvm_kms_root root);

struct cvm_tpm;

/* struct cvm_kms_roots is the root material of one epoch, loaded from a
 * directory; opaque. */
struct cvm_kms_roots;

/* cvm_kms_roots_load loads the roots of `epoch` from `dir` in either layout
 * above. Absent roots are recorded (cvm_kms_roots_has is false for them). It
 * checks that root-ca.key's public key is root-ca.crt's, and the same for
 * the temp CA and rpc pairs, when both files of a pair are present, and
 * that root-k256.key is a valid secp256k1 scalar. On failure `err` (when
 * err_len > 0) holds one sentence naming the file and what is wrong, never
 * any key bytes. Returns 0, CVM_E_INVAL (epoch over CVM_KMS_EPOCH_MAX, NULL
 * arguments), CVM_E_POLICY (a key file others may read, a symbolic link, an
 * ambiguous layout), CVM_E_FORMAT (a malformed root or a mismatched pair),
 * CVM_E_UNSUPPORTED (a key on another curve), CVM_E_TOO_LARGE, CVM_E_SYSTEM
 * (errno set; ENOENT when the epoch's directory does not exist) or
 * CVM_E_NOMEM. A directory with no root file at all loads (every root
 * absent). */
CVM_API CVM_MUST_CHECK int cvm_kms_roots_load(const char *dir, uint32_t epoch, struct cvm_kms_roots **out,
                                              char *err, size_t err_len);
/* cvm_kms_roots_load_tpm is cvm_kms_roots_load that also loads sealed roots
 * (above), unsealing them on `tpm` (borrowed; used only during the call).
 * With `tpm` NULL it is cvm_kms_roots_load: a sealed root is then
 * CVM_E_POLICY ("... is sealed to a TPM: set [kms] tpm_tcti"). Both a plain
 * and a sealed file for one root is CVM_E_POLICY. A sealed root that this
 * TPM cannot unseal (another TPM, a cleared owner hierarchy, a damaged
 * file) is CVM_E_TPM, one of another shape CVM_E_FORMAT; nothing is then
 * loaded. Plain files in the folder load as before. */
CVM_API CVM_MUST_CHECK int cvm_kms_roots_load_tpm(const char *dir, uint32_t epoch, struct cvm_tpm *tpm,
                                                  struct cvm_kms_roots **out, char *err, size_t err_len);
/* cvm_kms_roots_sealed is true when `root` was loaded from its sealed copy. */
CVM_API bool cvm_kms_roots_sealed(const struct cvm_kms_roots *r, enum cvm_kms_root root);
/* cvm_kms_roots_free wipes and frees `r`; NULL is a no-op. */
CVM_API void cvm_kms_roots_free(struct cvm_kms_roots *r);
/* cvm_kms_roots_epoch returns the epoch `r` holds (0 for NULL). */
CVM_API uint32_t cvm_kms_roots_epoch(const struct cvm_kms_roots *r);
/* cvm_kms_roots_has is true when the file of `root` was loaded. */
CVM_API bool cvm_kms_roots_has(const struct cvm_kms_roots *r, enum cvm_kms_root root);
/* cvm_kms_roots_path returns the path a root was looked for at ("DIR/name"
 * or "DIR/epoch-N/name"); it lives as long as `r`. NULL for a bad `root`. */
CVM_API const char *cvm_kms_roots_path(const struct cvm_kms_roots *r, enum cvm_kms_root root);
/* cvm_kms_roots_ca_cert returns root-ca.crt's PEM text (NUL-terminated,
 * owned by `r`), or NULL when it is absent. */
CVM_API const char *cvm_kms_roots_ca_cert(const struct cvm_kms_roots *r);
/* cvm_kms_roots_k256_public writes the compressed SEC1 public key of
 * root-k256.key (what GetMeta calls k256_pubkey). Returns 0, CVM_E_INVAL
 * (the root is absent) or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kms_roots_k256_public(const struct cvm_kms_roots *r,
                                                     uint8_t out[CVM_K256_PUBKEY_LEN]);

/* Bits of struct cvm_kms_app_keys.present. */
#define CVM_KMS_KEY_DISK (1u << 0)        /* disk_crypt_key */
#define CVM_KMS_KEY_ENV (1u << 1)         /* env_crypt_key, env_crypt_public_key */
#define CVM_KMS_KEY_K256 (1u << 2)        /* k256_key, k256_public_key, k256_signature */
#define CVM_KMS_KEY_APP_CA (1u << 3)      /* app_ca_key, app_ca_public_key */
#define CVM_KMS_KEY_APP_CA_CERT (1u << 4) /* app_ca_cert */

/* CVM_KMS_P256_PUBKEY_LEN is a compressed SEC1 P-256 public key. */
#define CVM_KMS_P256_PUBKEY_LEN 33

/* The App CA certificate that cvm_kms_app_keys issues: dstack's profile
 * (spec §3.2, §6.3): O=Dstack, CN=Dstack App CA, CA with path length 0, the
 * app-id extension (1.3.6.1.4.1.62397.1.3) and the special usage "app:ca"
 * (1.3.6.1.4.1.62397.1.4), signed by the root CA key. Its validity is the
 * root CA certificate's and its serial the first 16 bytes of SHA-256 of the
 * App CA's SPKI, so only the ECDSA signature differs between two calls. */
#define CVM_KMS_APP_CA_ORG "Dstack"
#define CVM_KMS_APP_CA_CN "Dstack App CA"
#define CVM_KMS_USAGE_APP_CA "app:ca"

/* struct cvm_kms_app_keys is every key a KMS with the given roots releases
 * to an app (spec §3.2-3.3). A field is meaningful only when its bit is in
 * `present`; the secrets of absent keys are NULL. Clean it with
 * cvm_kms_app_keys_cleanup, which wipes everything. */
struct cvm_kms_app_keys {
	uint32_t epoch;
	unsigned present; /* CVM_KMS_KEY_* */
	/* derive_dh_secret(root CA, app_id || instance_id || "app-disk-crypt-key"), 32 bytes */
	struct cvm_secret *disk_crypt_key;
	/* derive_dh_secret(root CA, app_id || "env-encrypt-key"): the raw X25519
	 * secret, 32 bytes, and X25519(secret, 9) */
	struct cvm_secret *env_crypt_key;
	uint8_t env_crypt_public_key[CVM_X25519_KEY_LEN];
	/* HKDF(root k256, app_id || "app-key"), 32 bytes; its compressed SEC1
	 * public key; the root's recoverable signature r || s || v over
	 * keccak256("dstack-kms-issued" ":" app_id || k256_public_key) */
	struct cvm_secret *k256_key;
	uint8_t k256_public_key[CVM_K256_PUBKEY_LEN];
	uint8_t k256_signature[CVM_K256_RSIG_LEN];
	/* derive_p256(root CA, app_id || "app-ca"): the App CA key as PKCS#8
	 * PEM text (no NUL) and its compressed SEC1 public key */
	struct cvm_secret *app_ca_key;
	uint8_t app_ca_public_key[CVM_KMS_P256_PUBKEY_LEN];
	/* the App CA certificate (PEM, NUL-terminated), when root-ca.crt is present */
	char *app_ca_cert;
};

/* cvm_kms_app_keys derives into `out` every key that `roots` can give the
 * app `app_id` (20 bytes) for the instance `instance_id` (`instance_id_len`
 * 0 or 20 bytes; 0 is dstack's no_instance_id, whose disk key is derived
 * with an empty instance id, as dstack does). `epoch` must be the roots'
 * epoch (CVM_E_INVAL otherwise: a caller never gets one epoch's keys while
 * believing they are another's). Keys whose root is absent are left out
 * (their bit is clear); that is not an error, and a call with no root at
 * all returns 0 with `present` 0. Outputs are cleared at entry. Returns 0,
 * CVM_E_INVAL, CVM_E_FORMAT (a derived scalar out of range: about 2^-32
 * per P-256 key, as in dstack, where the KMS fails the same request),
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kms_app_keys(const struct cvm_kms_roots *roots,
                                            const uint8_t app_id[CVM_APP_ID_LEN], const uint8_t *instance_id,
                                            size_t instance_id_len, uint32_t epoch,
                                            struct cvm_kms_app_keys *out);
/* CVM_KMS_KEYS_ALL asks cvm_kms_app_keys_some for every key. */
#define CVM_KMS_KEYS_ALL \
	(CVM_KMS_KEY_DISK | CVM_KMS_KEY_ENV | CVM_KMS_KEY_K256 | CVM_KMS_KEY_APP_CA | CVM_KMS_KEY_APP_CA_CERT)
/* cvm_kms_app_keys_some is cvm_kms_app_keys that may skip the App CA key
 * and certificate (their derivation and signature are most of the cost):
 * without CVM_KMS_KEY_APP_CA or CVM_KMS_KEY_APP_CA_CERT in `want` neither
 * is made. The other keys are always derived (they share the work). */
CVM_API CVM_MUST_CHECK int cvm_kms_app_keys_some(const struct cvm_kms_roots *roots,
                                                 const uint8_t app_id[CVM_APP_ID_LEN],
                                                 const uint8_t *instance_id, size_t instance_id_len,
                                                 uint32_t epoch, unsigned want, struct cvm_kms_app_keys *out);
/* cvm_kms_app_keys_cleanup wipes `k` and frees what it holds; safe on a
 * zeroed or already-cleaned struct. */
CVM_API void cvm_kms_app_keys_cleanup(struct cvm_kms_app_keys *k);

/* ---- cvm-kmsd's operations on root material ---------------------------- */

/* The root certificates cvm_kms_bootstrap makes (dstack's names, spec §3.1). */
#define CVM_KMS_ROOT_CA_CN "Dstack KMS CA"
#define CVM_KMS_TMP_CA_CN "Dstack Client Temp CA"
#define CVM_KMS_ROOT_CA_YEARS 20
/* The special usage of the KMS's RPC certificate (what dstack guests require). */
#define CVM_KMS_USAGE_RPC "kms:rpc"

/* cvm_kms_bootstrap makes the root material of key epoch `epoch` in
 * DIR/epoch-<N>/ (cvmkit's layout; DIR and the folder are made mode 0700):
 * a P-256 root CA (root-ca.key, PKCS#8 PEM; root-ca.crt self-signed, O=Dstack,
 * CN=Dstack KMS CA, CA with path length 1, valid from an hour before `now` for
 * CVM_KMS_ROOT_CA_YEARS years), the secp256k1 root (root-k256.key, raw 32
 * bytes) and the client temp CA dstack guests still use (tmp-ca.key,
 * tmp-ca.crt, CN=Dstack Client Temp CA, path length 0). Keys from the
 * system's random source, written mode 0600 by cvm_file_create_key. Roots
 * are never made twice: an existing epoch folder, or (epoch 0) root files at
 * the top of DIR in dstack's layout, is CVM_E_POLICY and nothing changes.
 * The RPC key is not a root: cvm-kmsd makes a new one at every start
 * (cvm_kms_issue_rpc_cert). On failure `err` says what and where. Returns 0,
 * CVM_E_INVAL, CVM_E_POLICY, CVM_E_TOO_LARGE, CVM_E_SYSTEM (errno set),
 * CVM_E_NOMEM or CVM_E_CRYPTO; a failure part way leaves a partial folder
 * that cvm_kms_roots_load refuses or reports as absent roots, never roots
 * that differ from what was written. */
CVM_API CVM_MUST_CHECK int cvm_kms_bootstrap(const char *dir, uint32_t epoch, int64_t now, char *err,
                                             size_t err_len);
/* cvm_kms_bootstrap_tpm is cvm_kms_bootstrap that, with `tpm` (borrowed;
 * NULL: plain files), writes root-ca.key, root-k256.key and tmp-ca.key
 * sealed to it (root-ca.key.tpm etc., above) and no plaintext key file, then
 * loads the folder back through the TPM to check that it unseals. Also
 * CVM_E_TPM. */
CVM_API CVM_MUST_CHECK int cvm_kms_bootstrap_tpm(const char *dir, uint32_t epoch, int64_t now,
                                                 struct cvm_tpm *tpm, char *err, size_t err_len);

/* cvm_kms_roots_tmp_ca gives the temp CA's certificate (PEM, NUL-terminated,
 * the caller frees it) and key (PKCS#8 PEM in a new secret): what dstack's
 * GetTempCaCert hands to anyone, so that dstack guests can make their
 * client certificates. Returns 0, CVM_E_INVAL (absent), CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kms_roots_tmp_ca(const struct cvm_kms_roots *r, char **cert_pem,
                                                struct cvm_secret **key_pem);

struct cvm_ratls_evidence;

/* cvm_kms_issue_rpc_cert issues the KMS's TLS certificate for `key` under
 * the root CA: dstack's profile for rpc.crt (CN and DNS SAN `domain`, the
 * special usage CVM_KMS_USAGE_RPC, serverAuth), carrying `ev`, the KMS's own
 * evidence for this key (cvm_ratls_report_data of the dstack profile), or
 * none when `ev` is NULL; valid from a minute before `now` for `lifetime`
 * seconds, never past the root CA's end. *chain_pem is the leaf followed by
 * root-ca.crt (NUL-terminated; the caller frees it), *chain_len its length.
 * Returns 0, CVM_E_INVAL (no root CA, evidence that does not bind `key`), or
 * cvm_ratls_make's errors. */
CVM_API CVM_MUST_CHECK int cvm_kms_issue_rpc_cert(const struct cvm_kms_roots *r,
                                                  const struct cvm_p256_keypair *key, const char *domain,
                                                  const struct cvm_ratls_evidence *ev, int64_t now,
                                                  int64_t lifetime, char **chain_pem, size_t *chain_len);

/* cvm_kms_roots_k256_secret borrows the secp256k1 root (32 bytes, valid as
 * long as `r`), for the signatures cvm-kmsd's key process makes with it
 * (GetAppEnvEncryptPubKey). Nothing outside that process may call it: the
 * network-facing process never holds root material. Returns 0 or
 * CVM_E_INVAL (absent). */
CVM_API CVM_MUST_CHECK int cvm_kms_roots_k256_secret(const struct cvm_kms_roots *r,
                                                     const struct cvm_secret **out);

/* ---- key epochs (DIR/epochs.json) ---------------------------------------- */

/* A root directory's epoch table says which epoch is current (new keys come
 * from it), which earlier ones stay readable until the end of their grace
 * period (so that a disk encrypted under one can be opened and re-keyed),
 * and which are revoked (never served again). The file, mode 0600:
 *   {"current": N, "epochs": [{"epoch": 0, "state": "grace", "until": T},
 *                             {"epoch": 1, "state": "current"}, ...]}
 * with T in Unix seconds. A directory without the file is epoch 0 alone,
 * current: a dstack root folder, whose clients see dstack's exact keys. */
#define CVM_KMS_FILE_EPOCHS "epochs.json"
#define CVM_KMS_EPOCHS_MAX 64u
#define CVM_KMS_EPOCHS_FILE_MAX ((size_t)64 * 1024)

enum cvm_kms_epoch_state {
	CVM_KMS_EPOCH_CURRENT = 0,
	CVM_KMS_EPOCH_GRACE = 1,
	CVM_KMS_EPOCH_REVOKED = 2,
};

struct cvm_kms_epoch {
	uint32_t epoch;
	enum cvm_kms_epoch_state state;
	int64_t until; /* GRACE: readable before this Unix time */
};

struct cvm_kms_epochs {
	uint32_t current;
	size_t count;
	struct cvm_kms_epoch e[CVM_KMS_EPOCHS_MAX];
};

/* cvm_kms_epoch_state_name is "current", "grace", "revoked" ("unknown"). */
CVM_API const char *cvm_kms_epoch_state_name(enum cvm_kms_epoch_state s);
/* cvm_kms_epochs_load reads DIR's epoch table (or the implied one without
 * the file). It checks that exactly one epoch is current and is "current",
 * that no epoch is listed twice and that a grace period has an end.
 * Returns 0, CVM_E_FORMAT, CVM_E_TOO_LARGE, CVM_E_SYSTEM, CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_kms_epochs_load(const char *dir, struct cvm_kms_epochs *out, char *err,
                                               size_t err_len);
/* cvm_kms_epoch_readable is true when keys of `epoch` may be released at
 * `now`: it is current, or in its grace period. */
CVM_API bool cvm_kms_epoch_readable(const struct cvm_kms_epochs *t, uint32_t epoch, int64_t now);
/* cvm_kms_rotate makes the roots of a new epoch (one past the highest
 * listed, cvm_kms_bootstrap) and makes it current; the current one enters a
 * grace period of `grace_s` seconds (0: it is revoked at once). The new
 * epoch goes to *new_epoch. A running cvm-kmsd takes the change at its next
 * start. Returns 0 or the errors of the functions it calls. */
CVM_API CVM_MUST_CHECK int cvm_kms_rotate(const char *dir, int64_t now, int64_t grace_s, uint32_t *new_epoch,
                                          char *err, size_t err_len);
/* cvm_kms_rotate_tpm is cvm_kms_rotate whose new roots are sealed to `tpm`
 * (cvm_kms_bootstrap_tpm; NULL: plain files). */
CVM_API CVM_MUST_CHECK int cvm_kms_rotate_tpm(const char *dir, int64_t now, int64_t grace_s,
                                              struct cvm_tpm *tpm, uint32_t *new_epoch, char *err,
                                              size_t err_len);
/* cvm_kms_revoke_epoch marks `epoch` revoked: no key of it is released
 * again. Its root files stay (delete its folder to destroy them). The
 * current epoch cannot be revoked (CVM_E_POLICY: rotate first); an epoch
 * not in the table is CVM_E_NOT_FOUND. */
CVM_API CVM_MUST_CHECK int cvm_kms_revoke_epoch(const char *dir, uint32_t epoch, char *err, size_t err_len);

/* ---- replication (GetKmsKey, onboarding) ----------------------------------- */

/* cvm_kms_roots_ca_key_pem writes the root CA key as PKCS#8 PEM into a new
 * secret: what a KMS hands to a new node it has verified and authorized
 * (GetKmsKey). Returns 0, CVM_E_INVAL (absent), CVM_E_NOMEM, CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kms_roots_ca_key_pem(const struct cvm_kms_roots *r, struct cvm_secret **out);

/* struct cvm_kms_root_files is one epoch's roots as a node receives them
 * when it onboards; every pointer is borrowed. */
struct cvm_kms_root_files {
	uint32_t epoch;
	const uint8_t *ca_key_pem; /* PKCS#8 PEM */
	size_t ca_key_pem_len;
	const char *ca_cert_pem;       /* NUL-terminated */
	const uint8_t *k256;           /* CVM_K256_SECKEY_LEN bytes */
	const uint8_t *tmp_ca_key_pem; /* both temp CA fields, or neither */
	size_t tmp_ca_key_pem_len;
	const char *tmp_ca_cert_pem;
};

/* cvm_kms_roots_import writes `f` as DIR/epoch-<N>/ (keys mode 0600, as
 * cvm_kms_bootstrap does) and loads the result back to check it (the key is
 * the certificate's, the k256 secret is valid). An existing epoch folder is
 * CVM_E_POLICY: roots are never overwritten. Returns 0 or the errors of
 * cvm_kms_bootstrap and cvm_kms_roots_load. */
CVM_API CVM_MUST_CHECK int cvm_kms_roots_import(const char *dir, const struct cvm_kms_root_files *f,
                                                char *err, size_t err_len);
/* cvm_kms_roots_import_tpm is cvm_kms_roots_import that, with `tpm`
 * (borrowed; NULL: plain files), writes the keys sealed to it (their PEM is
 * parsed first: a key that is not P-256 makes no folder) and checks the
 * result through the TPM. */
CVM_API CVM_MUST_CHECK int cvm_kms_roots_import_tpm(const char *dir, const struct cvm_kms_root_files *f,
                                                    struct cvm_tpm *tpm, char *err, size_t err_len);
/* cvm_kms_epochs_save checks the table (as cvm_kms_epochs_load does) and
 * writes DIR/epochs.json, mode 0600, atomically. */
CVM_API CVM_MUST_CHECK int cvm_kms_epochs_save(const char *dir, const struct cvm_kms_epochs *t, char *err,
                                               size_t err_len);

/* ---- the bootstrap attestation (bootstrap-info.json) --------------------- */

/* When cvm-kmsd makes its roots inside a CVM, the guest agent beside it
 * attests their public halves, so that anyone can check that the roots
 * were generated inside an attested CVM (dstack's Onboard.Bootstrap, spec
 * §3.2 "Bootstrap attestation"). The evidence is a VersionedAttestation
 * (the agent's Attest) over
 *   report_data = keccak256("dstack-kms-genereted-keys-v1:" || hex(root CA
 *                 SPKI DER) || ";" || hex(compressed k256 root public key)
 *                 || ";") || 32 zero bytes
 * ("genereted" is dstack's spelling, kept byte for byte; hex is lowercase).
 * It is kept beside the epoch's roots as bootstrap-info.json, public, mode
 * 0644, in dstack's form: one JSON object with exactly the keys
 *   {"ca_pubkey": HEX, "k256_pubkey": HEX, "attestation": HEX}
 * (root CA SPKI DER; 33-byte compressed SEC1 point; the VersionedAttestation
 * bytes), each hex lowercase without 0x, which is how dstack's prpc serde
 * writes `bytes` fields. */
#define CVM_KMS_FILE_BOOTINFO "bootstrap-info.json"
#define CVM_KMS_BOOTINFO_TAG "dstack-kms-genereted-keys-v1:"
/* CVM_KMS_BOOTINFO_FILE_MAX bounds the file; CVM_KMS_BOOTINFO_VA_MAX the
 * attestation in it; CVM_KMS_SPKI_MAX the root CA's SPKI (P-256: 91 bytes). */
#define CVM_KMS_BOOTINFO_FILE_MAX ((size_t)4 * 1024 * 1024)
#define CVM_KMS_BOOTINFO_VA_MAX ((size_t)2 * 1024 * 1024 - 64)
#define CVM_KMS_SPKI_MAX ((size_t)512)

/* cvm_kms_bootstrap_report_data writes the 64-byte report_data above for
 * the root CA's SPKI DER (`ca_spki_len` 1..CVM_KMS_SPKI_MAX bytes) and the
 * k256 root's compressed public key. Nothing is checked about either key.
 * Returns 0 or CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_kms_bootstrap_report_data(const uint8_t *ca_spki, size_t ca_spki_len,
                                                         const uint8_t k256_pub[CVM_K256_PUBKEY_LEN],
                                                         uint8_t out[64]);

/* struct cvm_kms_bootinfo is a bootstrap-info.json, decoded; its buffers
 * are owned (cvm_kms_bootinfo_cleanup). */
struct cvm_kms_bootinfo {
	uint8_t *ca_pubkey; /* the root CA's SPKI DER */
	size_t ca_pubkey_len;
	uint8_t k256_pubkey[CVM_K256_PUBKEY_LEN];
	uint8_t *attestation; /* a VersionedAttestation, not yet decoded */
	size_t attestation_len;
};

/* cvm_kms_bootinfo_encode writes `bi` as bootstrap-info.json text (compact
 * JSON in dstack's key order, no trailing newline, NUL-terminated; the
 * caller frees *out). Returns 0, CVM_E_INVAL (a length out of bounds),
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_kms_bootinfo_encode(const struct cvm_kms_bootinfo *bi, char **out,
                                                   size_t *out_len);
/* cvm_kms_bootinfo_parse decodes `len` bytes (untrusted: at most
 * CVM_KMS_BOOTINFO_FILE_MAX) of bootstrap-info.json into `out` (cleared at
 * entry). It requires one JSON object with exactly the three keys, each a
 * string of hex digits (either case; no 0x) of the right length: ca_pubkey
 * 1..CVM_KMS_SPKI_MAX bytes, k256_pubkey 33 bytes starting 02 or 03,
 * attestation 1..CVM_KMS_BOOTINFO_VA_MAX bytes. It verifies nothing (see
 * cvm_kms_bootinfo_verify). On failure `err` says what is wrong. Returns 0,
 * CVM_E_FORMAT, CVM_E_TOO_LARGE, CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_kms_bootinfo_parse(const uint8_t *buf, size_t len,
                                                  struct cvm_kms_bootinfo *out, char *err, size_t err_len);
/* cvm_kms_bootinfo_load reads and parses the file at `path`. Returns
 * cvm_kms_bootinfo_parse's errors, or CVM_E_SYSTEM (errno set; ENOENT when
 * there is no file). */
CVM_API CVM_MUST_CHECK int cvm_kms_bootinfo_load(const char *path, struct cvm_kms_bootinfo *out, char *err,
                                                 size_t err_len);
/* cvm_kms_bootinfo_cleanup frees what `bi` holds; safe on a zeroed struct. */
CVM_API void cvm_kms_bootinfo_cleanup(struct cvm_kms_bootinfo *bi);

/* cvm_kms_bootinfo_path writes where the bootstrap-info.json of `epoch`
 * lives in the root directory `dir`: beside that epoch's roots, i.e.
 * DIR/epoch-<N>/ when that folder exists, else (epoch 0 only: dstack's
 * layout) DIR itself. Returns 0, CVM_E_INVAL, CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_kms_bootinfo_path(const char *dir, uint32_t epoch, char *out, size_t out_cap);

/* cvm_kms_cert_spki writes the SPKI DER of the certificate `cert` (PEM,
 * the first one, or DER; `cert_len` bytes) into a new buffer the caller
 * frees: the ca_pubkey that root-ca.crt must have. Returns 0, CVM_E_FORMAT,
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_kms_cert_spki(const uint8_t *cert, size_t cert_len, uint8_t **spki,
                                             size_t *spki_len);

struct cvm_ratls_verifier;
struct cvm_ratls_verdict;
struct cvm_report;

/* cvm_kms_bootinfo_verify checks a parsed bootstrap-info.json: its
 * attestation verifies with `v`'s collateral and policy at Unix time `at`
 * (cvm_ratls_check_va: quote, event-log replay) over
 * cvm_kms_bootstrap_report_data(bi->ca_pubkey, bi->k256_pubkey), and, when
 * given, `ca_spki` (the SPKI of the root-ca.crt the verifier trusts) equals
 * bi->ca_pubkey and `k256_pub` (33 bytes) equals bi->k256_pubkey. Without
 * them, it proves only that SOME attested CVM made the keys named in the
 * file. `out` and `rep` (may be NULL) say how far it got. Returns 0 only
 * when everything holds; CVM_E_MISMATCH when a key differs or the
 * attestation is over other keys; the verifier's errors otherwise. */
CVM_API CVM_MUST_CHECK int cvm_kms_bootinfo_verify(const struct cvm_kms_bootinfo *bi,
                                                   struct cvm_ratls_verifier *v, int64_t at,
                                                   const uint8_t *ca_spki, size_t ca_spki_len,
                                                   const uint8_t *k256_pub, struct cvm_ratls_verdict *out,
                                                   struct cvm_report *rep);

#endif
