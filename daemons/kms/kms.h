/* cvm-kmsd internals (docs/daemons/cvm-kmsd.md).
 *
 * Two processes, in the OpenSSH style of privilege separation:
 *  - the key process (keyproc.c) loads the root material and holds it in
 *    secret memory; it answers only a few fixed questions ("the app keys
 *    of epoch E for app A, instance I", "sign the RPC certificate", "the
 *    public metadata") over a SOCK_SEQPACKET socketpair, each message
 *    bounded and read with the bounded reader;
 *  - the network process (everything else) does TLS, HTTP, attestation,
 *    authorization and the audit trail, and never maps a root key: it asks
 *    the key process for a derivation only after a request is verified and
 *    authorized. The key process is forked before any root is read. */
#ifndef CVM_KMS_DAEMON_H
#define CVM_KMS_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cvmkit/err.h>
#include <cvmkit/kdf.h>
#include <cvmkit/kms.h>
#include <cvmkit/kmsauth.h>
#include <cvmkit/secret.h>

#define KMS_STR_MAX 512
/* Epochs whose roots a node keeps loaded at once: the current one and the
 * previous ones still in their grace period. */
#define KMS_EPOCHS_MAX 8u

/* ---- the key process ---------------------------------------------------- */

/* Largest message either way (a certificate chain with evidence is the
 * biggest: a quote and an event log, some KiB). */
#define KP_MSG_MAX ((size_t)256 * 1024)
/* The largest SignCert CSR (a quote and an event log fit many times over). */
#define KMS_CSR_MAX ((size_t)192 * 1024)

enum kp_op {
	KP_META = 1,       /* -> public metadata (struct kp_meta) */
	KP_APP_KEYS = 2,   /* epoch, app_id, instance_id -> the app keys */
	KP_RPC_CERT = 3,   /* rpc key PEM, domain, VersionedAttestation -> chain PEM */
	KP_KMS_KEYS = 4,   /* -> every loaded epoch's roots, for a node that onboards (GetKmsKey) */
	KP_ENV_PUBKEY = 6, /* epoch, app_id, timestamp -> env public key, signature, signature_v1 */
	KP_SIGN_CSR = 5, /* epoch, attested app_id, api_version, CSR -> [leaf, App CA, root CA] (SignCert) */
};

struct kp_config {
	const char *root_dir;
	uint32_t epochs[KMS_EPOCHS_MAX]; /* the epochs to load; epochs[0] is the current one */
	size_t epoch_count;
	const char *user; /* drop to this user after loading ("": stay) */
	/* the TPM the sealed roots are unsealed on ([kms] tpm_tcti; NULL or "":
	 * none): opened in the key process only, closed once the roots are loaded */
	const char *tpm_tcti;
};

struct kms_keyproc {
	pid_t pid;
	int fd;
};

/* kms_keyproc_start forks the key process, which loads the roots of every
 * epoch in `c` and then serves; it reports whether loading worked before
 * this returns (a root that does not load stops the daemon at start). */
CVM_MUST_CHECK int kms_keyproc_start(const struct kp_config *c, struct kms_keyproc *kp, char *err,
                                     size_t err_len);
/* kms_keyproc_stop closes the channel and reaps the process. */
void kms_keyproc_stop(struct kms_keyproc *kp);

/* struct kp_meta is what the network process may know of the roots. */
struct kp_meta {
	uint32_t epoch; /* current */
	char *ca_cert_pem;
	uint8_t k256_public[CVM_K256_PUBKEY_LEN];
	bool has_k256;
	char *tmp_ca_cert_pem;         /* NULL when there is no temp CA */
	struct cvm_secret *tmp_ca_key; /* PEM; dstack hands it to anyone */
};
CVM_MUST_CHECK int kms_keyproc_meta(struct kms_keyproc *kp, struct kp_meta *out, char *err, size_t err_len);
void kp_meta_cleanup(struct kp_meta *m);

/* struct kp_app_keys is what GetAppKey releases. */
struct kp_app_keys {
	uint32_t epoch;
	struct cvm_secret *disk_crypt_key; /* 32 bytes */
	struct cvm_secret *env_crypt_key;  /* 32 bytes */
	struct cvm_secret *k256_key;       /* 32 bytes */
	uint8_t k256_signature[CVM_K256_RSIG_LEN];
	uint8_t env_crypt_public_key[32];
};
CVM_MUST_CHECK int kms_keyproc_app_keys(struct kms_keyproc *kp, uint32_t epoch,
                                        const uint8_t app_id[CVM_APP_ID_LEN], const uint8_t *instance_id,
                                        size_t instance_id_len, struct kp_app_keys *out, char *err,
                                        size_t err_len);
void kp_app_keys_cleanup(struct kp_app_keys *k);

/* kms_keyproc_rpc_cert asks the key process to issue the RPC certificate
 * for `key_pem` (the network process's fresh TLS key), carrying the
 * VersionedAttestation `va` (may be empty). *chain is the PEM chain. */
CVM_MUST_CHECK int kms_keyproc_rpc_cert(struct kms_keyproc *kp, const struct cvm_secret *key_pem,
                                        const char *domain, const uint8_t *va, size_t va_len,
                                        uint64_t lifetime_s, char **chain, char *err, size_t err_len);

/* kms_keyproc_sign_csr has the key process issue the leaf of a CSR whose
 * signature, attestation and authorization the caller checked, for the app
 * `app_id` read from that attestation, with the 1.9 `app_info` the caller
 * encoded from it when the CSR asks for it (else NULL). chain[] gets the
 * PEM leaf, App CA and root CA certificates (the caller frees them). */
CVM_MUST_CHECK int kms_keyproc_sign_csr(struct kms_keyproc *kp, uint32_t epoch,
                                        const uint8_t app_id[CVM_APP_ID_LEN], unsigned api,
                                        const uint8_t *csr, size_t csr_len, const uint8_t *app_info,
                                        size_t app_info_len, char *chain[3], char *err, size_t err_len);

/* kms_keyproc_env_pubkey gets an app's env public key and the k256 root's
 * signatures over it (GetAppEnvEncryptPubKey). */
CVM_MUST_CHECK int kms_keyproc_env_pubkey(struct kms_keyproc *kp, uint32_t epoch,
                                          const uint8_t app_id[CVM_APP_ID_LEN], uint64_t ts, uint8_t pub[32],
                                          uint8_t sig[CVM_K256_RSIG_LEN], uint8_t sig_v1[CVM_K256_RSIG_LEN],
                                          char *err, size_t err_len);

/* struct kp_kms_keys is every loaded epoch's roots (GetKmsKey). */
struct kp_epoch_roots {
	uint32_t epoch;
	struct cvm_secret *ca_key_pem, *k256, *tmp_ca_key_pem; /* tmp: NULL when absent */
	char *ca_cert_pem, *tmp_ca_cert_pem;
};
struct kp_kms_keys {
	size_t count;
	struct kp_epoch_roots e[KMS_EPOCHS_MAX];
};
CVM_MUST_CHECK int kms_keyproc_kms_keys(struct kms_keyproc *kp, struct kp_kms_keys *out, char *err,
                                        size_t err_len);
void kp_kms_keys_cleanup(struct kp_kms_keys *k);

/* The key process's state, and kp_handle, which answers one request
 * message: exported for the fuzz target of the request decoder. */
struct kp_state {
	struct cvm_kms_roots *roots[KMS_EPOCHS_MAX]; /* roots[0]: the current epoch */
	size_t count;
};
CVM_MUST_CHECK int kp_state_load(const struct kp_config *c, struct kp_state *st, char *err, size_t err_len);
void kp_state_cleanup(struct kp_state *st);
CVM_MUST_CHECK int kp_handle(struct kp_state *st, const uint8_t *msg, size_t len, uint8_t **resp,
                             size_t *resp_len);

/* ---- the network process -------------------------------------------------- */

struct cvm_ratls_verifier;
struct cvm_audit;

/* struct kms holds the network process's state; every field is set at
 * start and read-only while serving. */
struct kms {
	struct kms_keyproc kp;
	struct kp_meta meta;
	struct cvm_kms_epochs epochs;               /* the table read at start */
	struct cvm_ratls_verifier *client_verifier; /* checks client RA-TLS certificates */
	const char *node_name;
	bool serve_temp_ca;        /* GetTempCaCert (dstack guests need it) */
	bool accept_dstack_guests; /* clients without cvm-agentd's key event */
	bool simulated_ok;         /* accept evidence from the simulated TEE */
	struct cvm_auth *auth;     /* the authorization policy; NULL: [auth] type none, nobody is allowed */
	const char *auth_type;     /* "none", "dev", "policy", "webhook", "chain" */
	struct cvm_auth_info auth_info;   /* for GetMeta, read at start */
	struct cvm_kms_bootinfo bootinfo; /* the current epoch's bootstrap-info.json, for GetMeta */
	bool has_bootinfo;                /* ... when there is one */
	struct cvm_audit *audit;          /* the audit log; NULL: [audit] db = none */
	char gateway_app_id[64];
	char self_variant[32];
	/* counters for /metrics */
	uint64_t n_app_key_ok, n_app_key_denied, n_app_key_error, n_meta, n_temp_ca;
};

/* struct app_ident is what a client's evidence says about the app: the
 * first of each of dstack's identity events in RTMR3 (copied: a legacy
 * event log is read event by event). A field whose event is absent or has
 * a payload of another size is left unset. */
#define KP_INFO_MAX 1024u
struct app_ident {
	uint8_t app_id[CVM_APP_ID_LEN], compose_hash[32], instance_id[CVM_INSTANCE_ID_LEN];
	uint8_t key_provider[KP_INFO_MAX];
	size_t key_provider_len;
	bool has_app_id, has_compose_hash, has_instance_id, has_key_provider;
	bool bad_size; /* an identity event with a payload of the wrong size */
	bool has_agent_key_event;
};

struct cvm_ratls_info;
struct cvm_ratls_verdict;
struct cvm_ratls_boot_info;
struct cvm_rpc_call;

/* kms_ident_read reads the identity from a certificate's VersionedAttestation
 * or legacy JSON event log (client.c). */
CVM_MUST_CHECK int kms_ident_read(const struct cvm_ratls_info *info, struct app_ident *a);
/* kms_attested_client gives the verified client of an attested method: its
 * verdict (from the handshake), its certificate's evidence and the app
 * identity; it refuses (the call fails with the reason) a client without a
 * certificate (401), one from the simulated TEE unless allowed, one whose
 * identity cannot be read, and a key that is not the agent's (403). */
CVM_MUST_CHECK int kms_attested_client(struct kms *k, struct cvm_rpc_call *c,
                                       struct cvm_ratls_verdict *verdict, struct cvm_ratls_info **info,
                                       struct app_ident *id);
/* kms_pem_boot_info checks this node's own RA-TLS certificate (the first
 * of `pem`) with `verifier` at the current time and fills `v`, *info (the
 * caller frees it with cvm_ratls_info_free), `id` and `bi` (borrowing from
 * all three, with `adv`: keep them in scope while `bi` is used). On failure `why` says what (*verified tells
 * whether the evidence itself was accepted). For self-authorization and Onboard.GetAttestationInfo. */
CVM_MUST_CHECK int kms_pem_boot_info(struct cvm_ratls_verifier *verifier, const char *pem,
                                     struct cvm_ratls_verdict *v, struct cvm_ratls_info **info,
                                     struct app_ident *id, struct cvm_boot_info *bi, const char **adv,
                                     bool *verified, char *why, size_t why_len);
/* kms_boot_info fills `bi` for the policy from a verified client (TDX
 * only); `adv` (CVM_AUTH_ADVISORIES_MAX entries) holds the advisory ids it
 * points to, borrowed from `v`. */
CVM_MUST_CHECK int kms_boot_info(const struct cvm_ratls_verdict *v, const struct cvm_ratls_info *info,
                                 const struct app_ident *id, struct cvm_boot_info *bi, const char **adv,
                                 char *err, size_t err_len);
/* kms_boot_info_csr fills `bi` from SignCert's boot-time values. */
void kms_boot_info_csr(const struct cvm_ratls_verdict *v, const struct cvm_ratls_boot_info *boot,
                       const uint8_t *va_config, size_t va_config_len, struct cvm_boot_info *bi,
                       const char **adv);

/* kms_decide asks the policy (decide.c): 0 and d->allowed set when it
 * answered; an error (fail closed) when it could not, or when there is no
 * policy. */
CVM_MUST_CHECK int kms_decide(struct kms *k, enum cvm_auth_kind kind, const struct cvm_boot_info *bi,
                              struct cvm_auth_decision *d, char *err, size_t err_len);
/* kms_audit appends one decision to the audit log and logs the new head
 * (event=audit_head). `bi` may be NULL (nothing known of the client).
 * Returns 0 or the error of the append (logged as event=audit_failed; the
 * caller then releases nothing). */
int kms_audit(struct kms *k, const char *method, struct cvm_rpc_call *c, const struct cvm_boot_info *bi,
              const char *decision, const char *reason, const char *keys, uint32_t epoch);

/* kms_handle answers one HTTP request (a cvm_http_handler). */
struct cvm_http_req;
struct cvm_http_resp;
void kms_handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp);

/* kms_attested_cert makes a self-signed RA-TLS certificate (dstack's
 * profile) for `kp`, valid for `lifetime_s`, with the evidence the guest
 * agent at `agent` gives over its binding; for a server (serverAuth) or a
 * client (clientAuth). *pem is malloc'd (onboard.c). */
CVM_MUST_CHECK int kms_attested_cert(const char *agent, const struct cvm_p256_keypair *kp, const char *cn,
                                     bool server, int64_t lifetime_s, char **pem, char *err, size_t err_len);

/* struct kms_onboard_conf is what the Onboard service needs (onboard_svc.c):
 * the node's settings, its verifier and policy (the source's judge, and
 * its own in GetAttestationInfo), and main.c's bootstrap and onboarding
 * (run in the service's child process). */
struct kms_onboard_conf {
	const char *listen, *port_file, *node_name, *domain, *root_dir, *agent, *identity_key;
	const char *eth_rpc_url, *kms_contract; /* GetAttestationInfo's, "" when not on chain */
	struct cvm_ratls_verifier *verifier;
	struct cvm_auth *auth;
	int (*bootstrap)(const void *ctx, char *err, size_t err_len); /* makes the roots of epoch 0 */
	/* loads the roots of `epoch` (with the node's TPM when they are sealed) */
	int (*load_roots)(const void *ctx, uint32_t epoch, struct cvm_kms_roots **out, char *err,
	                  size_t err_len);
	/* takes them from the running node `from` (kms_onboard with the node's TPM) */
	int (*onboard)(const void *ctx, const char *from, struct cvm_ratls_verifier *v, struct cvm_auth *auth,
	               char *err, size_t err_len);
	const void *ctx;
	int (*write_port)(const char *path, uint16_t port);
};

/* kms_roots_present tells from the public files (the epoch table, a root
 * CA certificate) whether `dir` holds a node's roots, reading no key. */
bool kms_roots_present(const char *dir);

/* kms_onboard_serve serves the Onboard service until Onboard.Finish
 * (returns 0: the roots are there) or a signal (CVM_E_SYSTEM, errno
 * EINTR); on failure `err` says why. */
CVM_MUST_CHECK int kms_onboard_serve(const struct kms_onboard_conf *c, char *err, size_t err_len);

/* kms_onboard fetches the roots of the running node `from` (HOST:PORT)
 * into the empty `root_dir` (onboard.c), sealed to `tpm` when it is not
 * NULL ([kms] tpm_tcti; cvm_kms_roots_import_tpm). */
struct cvm_tpm;
CVM_MUST_CHECK int kms_onboard(const char *from, const char *root_dir, const char *agent,
                               const char *identity_key, struct cvm_ratls_verifier *v, struct cvm_auth *auth,
                               struct cvm_tpm *tpm, char *err, size_t err_len);

/* kms_self_attest asks the local guest agent at `agent` (unix:/path) for a
 * VersionedAttestation over `report_data` (POST /Attest). */
CVM_MUST_CHECK int kms_self_attest(const char *agent, const uint8_t report_data[64], uint8_t **va,
                                   size_t *va_len, char *err, size_t err_len);

#endif
