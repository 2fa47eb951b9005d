/* cvm-agentd: the guest agent. It serves dstack's v0 guest API (GetKey,
 * GetTlsKey, GetQuote, Attest, EmitEvent, Info, Sign, Verify, Version, plus
 * cvmkit's GetEvidence) on a unix socket, and the legacy Tappd API on a
 * second one, and a read-only RA-TLS listener for remote verifiers.
 * docs/daemons/cvm-agentd.md describes it for operators.
 *
 * Layout: main.c (arguments, config, lifecycle), agent.c (state: the TEE,
 * the app's keys and identity, boot measurements, runtime events and their
 * budgets), identity.c (the agent's own identity key and the system events
 * that anchor it and the TPM's AK in RTMR3), rtlog.c (the runtime event log
 * and RTMR3), evidence.c (event log JSON, VersionedAttestation, evidence
 * bundles), api.c (the method tables and JSON handlers), ratls.c (the TLS
 * listener's certificate), walk.c (the snapshot's file walk, on a thread of
 * its own), cosmian.c (Cosmian VM's read endpoints on the TLS listener). */
#ifndef CVM_AGENT_H
#define CVM_AGENT_H

/* The TLS listener's port when `[tls] listen` names a host alone (dstack's). */
#define AGENT_TLS_PORT_DEFAULT 5555u

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include <cvmkit/err.h>
#include <cvmkit/evidence.h>
#include <cvmkit/kdf.h>
#include <cvmkit/tee.h>
#include <cvmkit/tls.h>
#include <cvmkit/tpm.h>

#include "rpc.h"

#define AGENT_PATH_MAX 256
#define AGENT_TEXT_MAX 128

/* The dstack API level this agent implements (Version.version): SDK
 * clients compare it with the release that introduced a method. */
#define AGENT_API_VERSION "0.5.8"

/* Caps on what the agent keeps and serves. */
#define AGENT_EVENT_NAME_MAX 256u                         /* EmitEvent name, bytes */
#define AGENT_EVENT_PAYLOAD_MAX ((size_t)64 * 1024)       /* EmitEvent payload, bytes */
#define AGENT_RUNTIME_EVENTS_MAX 4096u                    /* events in the runtime log */
#define AGENT_RUNTIME_PAYLOAD_TOTAL ((size_t)1024 * 1024) /* payload bytes in the runtime log */
#define AGENT_RUNTIME_LOG_MAX ((size_t)4 * 1024 * 1024)   /* the log file */
#define AGENT_BOOT_EVENTS_MAX 4096u                       /* CCEL events kept */
#define AGENT_CCEL_MAX ((size_t)8 * 1024 * 1024)          /* the CCEL table file */
#define AGENT_APP_COMPOSE_MAX ((size_t)256 * 1024)        /* dstack's limit */
#define AGENT_SYS_CONFIG_MAX ((size_t)256 * 1024)
#define AGENT_IMA_LOG_MAX CVM_EVIDENCE_IMA_MAX /* the IMA list GetEvidence serves, bytes */
#define AGENT_NONCE_MIN CVM_EVIDENCE_NONCE_MIN
#define AGENT_NONCE_MAX CVM_EVIDENCE_NONCE_MAX

/* The part of the runtime log only the system may use, so that callers
 * filling it never lock the system out; and each caller's share by
 * default (caller_events_max, caller_payload_max). */
#define AGENT_SYSTEM_EVENTS_RESERVED 128u
#define AGENT_SYSTEM_PAYLOAD_RESERVED ((size_t)64 * 1024)
#define AGENT_APP_EVENTS_MAX (AGENT_RUNTIME_EVENTS_MAX - AGENT_SYSTEM_EVENTS_RESERVED)
#define AGENT_APP_PAYLOAD_MAX (AGENT_RUNTIME_PAYLOAD_TOTAL - AGENT_SYSTEM_PAYLOAD_RESERVED)
#define AGENT_CALLER_EVENTS_DEFAULT 1024u
#define AGENT_CALLER_PAYLOAD_DEFAULT ((size_t)256 * 1024)
#define AGENT_CALLERS_MAX 64u  /* uids with a budget of their own; later ones share one */
#define AGENT_RAW_UIDS_MAX 16u /* raw_report_data_uids entries */

/* The KMS key provider ([kms]; kms.c). */
#define AGENT_KMS_URLS_MAX 8u
#define AGENT_KMS_URL_MAX 256u
#define AGENT_KMS_TIMEOUT_DEFAULT 30u
#define AGENT_BOOT_HOOK_TIMEOUT_DEFAULT 300u /* [boot] hook_timeout, seconds */

/* The TLS listener's defaults ([tls]; docs/daemons/cvm-agentd.md). Its
 * requests are small ({"nonce": hex32} at most), so are its caps. */
#define AGENT_TLS_PORT_DEFAULT 5555u
#define AGENT_TLS_LIFETIME_HOURS_DEFAULT 12u
/* GetTlsKey, IssueCert, Tappd.DeriveKey: a certificate without not_after is
 * valid for this long (hours, not dstack's ten years; `[dstack] cert_lifetime_hours`). */
#define AGENT_CERT_LIFETIME_HOURS_DEFAULT 12u
#define AGENT_CERT_LIFETIME_HOURS_MAX 8784u
#define AGENT_TLS_LIFETIME_HOURS_MAX 720u /* 30 days */
#define AGENT_TLS_CONNECTIONS_DEFAULT 64u
#define AGENT_TLS_CONNECTIONS_PER_PEER_DEFAULT 8u
#define AGENT_TLS_BODY_DEFAULT 4096u
#define AGENT_TLS_HEADERS_DEFAULT 8192u
#define AGENT_TLS_HANDSHAKE_TIMEOUT_DEFAULT 10u

/* The file walk's defaults and caps ([snapshot]; docs/daemons/cvm-agentd.md,
 * "The file walk"). The excluded trees change while the guest runs or are
 * not part of its disk: kernel views (/proc /sys /dev), runtime state
 * (/run), scratch and caches (/tmp /var/tmp /var/cache), logs (/var/log),
 * fsck's leftovers (/lost+found) and removable or ad-hoc mounts (/media
 * /mnt). The agent's own state folders are always left out too. */
#define AGENT_WALK_EXCLUDE_DEFAULT \
	"/proc /sys /dev /run /tmp /var/tmp /var/cache /var/log /lost+found /media /mnt"
#define AGENT_WALK_LIST_MAX 32u           /* roots, excluded trees */
#define AGENT_WALK_FILES_DEFAULT 1000000u /* max_files */
#define AGENT_WALK_FILES_MAX 20000000u
#define AGENT_WALK_FILE_BYTES_DEFAULT ((uint64_t)4 * 1024 * 1024 * 1024) /* max_file_bytes */
#define AGENT_WALK_SECONDS_DEFAULT 3600u                                 /* max_seconds */
#define AGENT_WALK_SECONDS_MAX 86400u
#define AGENT_WALK_PAGE_ENTRIES 4096u               /* (path, digest) pairs per SnapshotFiles page */
#define AGENT_WALK_PAGE_BYTES ((size_t)1024 * 1024) /* of escaped paths per page, about */
#define AGENT_WALK_SKIPS_LISTED 256u                /* skipped files named (all are counted) */

/* struct agent_config is everything main.c reads from the command line and
 * the config file. Strings are "" when unset. */
struct agent_config {
	char config_file[AGENT_PATH_MAX];
	char user[AGENT_TEXT_MAX];
	char log_level[16];
	char simulator[AGENT_PATH_MAX]; /* a `cvm sim init` folder: use the simulated TEE */
	char platform[16];              /* "tdx" (default) or "snp": what the simulator acts as */
	char appkeys[AGENT_PATH_MAX];   /* dstack .appkeys.json */
	char key_state[AGENT_PATH_MAX]; /* cvmkit local key provider folder (when no appkeys) */
	char app_compose[AGENT_PATH_MAX];
	char sys_config[AGENT_PATH_MAX];
	char instance_info[AGENT_PATH_MAX]; /* dstack's .instance_info: {"app_id": hex} from the host */
	char runtime_log[AGENT_PATH_MAX];
	char ccel[AGENT_PATH_MAX];
	char ima_log[AGENT_PATH_MAX];  /* "none": off; "": the kernel's list when present */
	char tpm_tcti[AGENT_PATH_MAX]; /* tss2-tctildr "name:config"; "": no TPM */
	char tpm_pcrs[AGENT_TEXT_MAX]; /* the PCRs GetEvidence quotes; "": sha256:0-10 */
	char tpm_ak_handle[24];        /* persistent AK handle; "": 0x81000100 */

	char identity_key[AGENT_PATH_MAX];         /* "": beside the runtime log */
	char raw_report_data_uids[AGENT_TEXT_MAX]; /* SEV-SNP: "" (root, our uid), "none" or a list */
	uint64_t caller_events_max;                /* each caller's share of the runtime log */
	uint64_t caller_payload_max;
	char port_file[AGENT_PATH_MAX];
	bool measure_app;
	bool separate_curves;
	uint64_t max_body;
	uint64_t timeout;
	char dstack_listen[AGENT_PATH_MAX];
	unsigned dstack_mode;
	char dstack_tcp[AGENT_TEXT_MAX];
	bool allow_remote_tcp;
	char tappd_listen[AGENT_PATH_MAX];
	unsigned tappd_mode;
	/* [tls]: the read-only TLS listener (off while tls_listen is "") */
	char tls_listen[AGENT_TEXT_MAX]; /* HOST:PORT, or a HOST alone: AGENT_TLS_PORT_DEFAULT */
	char tls_port_file[AGENT_PATH_MAX];
	bool cosmian_api; /* Cosmian VM's read endpoints (cosmian.c) */
	uint64_t tls_lifetime_hours;
	uint64_t cert_lifetime_hours; /* GetTlsKey and friends without not_after */
	uint64_t tls_max_connections, tls_max_connections_per_peer;
	uint64_t tls_max_body, tls_max_headers;
	uint64_t tls_handshake_timeout;
	/* [snapshot]: the file walk (walk.c); "" and 0 are the defaults */
	char walk_mount_root[AGENT_PATH_MAX]; /* the guest's / as the agent sees it */
	char walk_roots[AGENT_PATH_MAX];      /* guest paths, space-separated */
	char walk_exclude[AGENT_PATH_MAX];    /* guest paths, space-separated; "none" */
	char walk_algo[16];
	uint64_t walk_max_files, walk_max_file_bytes, walk_max_seconds;
	bool walk_disable;
	/* [kms]: the KMS key provider (kms.c) */
	char kms_urls[1024]; /* "": sys-config's kms_urls when app-compose asks for a KMS */
	char kms_collateral[AGENT_PATH_MAX];
	char kms_intel_root[AGENT_PATH_MAX], kms_amd_root[AGENT_PATH_MAX];
	char kms_policy[AGENT_PATH_MAX];
	char kms_disk_key_file[AGENT_PATH_MAX]; /* "": not written */
	char kms_encrypted_env[AGENT_PATH_MAX]; /* the host's sealed environment */
	char kms_env_file[AGENT_PATH_MAX];      /* "": not written */
	uint64_t kms_timeout;                   /* seconds per KMS */
	bool kms_allow_simulated;               /* a KMS on a simulated TEE (tests) */
	/* [boot]: the guest's boot hooks (boot.c); "": none */
	char boot_storage_hook[AGENT_PATH_MAX];
	char boot_app_hook[AGENT_PATH_MAX];
	char boot_channel[AGENT_PATH_MAX]; /* boot-progress/boot-error lines for the host */
	uint64_t boot_hook_timeout;        /* seconds per hook */
};

/* struct agent_event is one event of the log the agent serves: boot events
 * from the CCEL (RTMR0..2, digest only) and runtime events (RTMR3). */
struct agent_event {
	uint32_t imr;
	uint32_t type;
	uint8_t digest[48];
	char *name; /* runtime events: the name; boot events: "" */
	uint8_t *payload;
	size_t payload_len;
};

/* struct agent_caller is who asks the agent to do something: the uid of a
 * unix socket peer (SO_PEERCRED), or nobody known (TCP, tests). */
struct agent_caller {
	bool has_uid;
	uid_t uid;
};

/* struct agent_quota is what one caller (or the callers without a uid of
 * their own) has put into the runtime log since the agent started. */
struct agent_quota {
	bool has_uid;
	uid_t uid;
	size_t events;
	size_t payload;
};

/* struct agent_rtlog is the runtime event log: a JSON-lines file in dstack's
 * format, a lock file beside it, and the events in memory (reloaded when
 * another writer changed the file). */
struct agent_rtlog {
	char path[AGENT_PATH_MAX];
	int lock_fd;
	struct agent_event *ev;
	size_t count, cap;
	size_t payload_total;
	dev_t dev;
	ino_t ino;
	off_t size;
	uint64_t generation; /* bumped whenever the events change */
};

struct agent {
	struct agent_config cfg;
	struct cvm_tee_dev *tee;
	struct cvm_tee_info tee_info;
	struct cvm_appkeys *keys;
	unsigned getkey_flags;
	uint32_t tpm_ak_handle; /* GetEvidence's AK */
	char *app_compose;      /* the raw file text, "" when none */
	size_t app_compose_len;
	char *app_name;
	bool no_instance_id;
	bool has_app_id; /* the host named the app id (.instance_info): app_id below */
	uint8_t app_id[20];
	/* the instance id seed of an earlier boot (.instance_info's
	 * instance_id_seed, kept by the host), and this boot's */
	bool has_instance_seed;
	uint8_t instance_seed[CVM_INSTANCE_ID_LEN];
	bool public_tcbinfo;   /* app-compose's public_tcbinfo: the TLS listener's Info shows the documents */
	bool has_tpm;          /* GetEvidence adds a TPM quote */
	bool raw_uids_default; /* SEV-SNP: root and the agent's uid get raw report data */
	char *vm_config;       /* sys-config's vm_config text, "" when none */
	char *sys_config_text; /* the sys-config file, NULL when none */
	char os_image_hash[65];
	char cloud_vendor[64], cloud_product[64];
	/* TDX values that do not change for the TD's life (from one quote) */
	uint8_t mr_config_id[48], mr_owner[48], mr_owner_config[48];
	struct agent_event *boot;
	size_t boot_count;
	struct agent_rtlog rt;
	/* GetQuote's event_log string, rebuilt when the runtime log changes */
	char *quote_log;
	uint64_t quote_log_gen;
	/* GetEvidence's optional parts (agent_evidence_open; has_tpm and
	 * tpm_ak_handle sit above, in what would be padding) */
	struct cvm_tpm_pcr_sel tpm_sel;
	char ima_path[AGENT_PATH_MAX]; /* "" when no IMA list is served */
	/* Below: the agent's identities (identity.c), the EmitEvent budgets and
	 * the SEV-SNP caller rule (agent.c); words first, then byte arrays, so
	 * that nothing is padded (raw_uids_default sits above, beside has_tpm).
	 * ak_name: the AK as the TPM showed it at start (length 0: unreachable);
	 * ak_recorded: on TDX, the AK Name RTMR3 recorded (length 0: none usable,
	 * ak_problem says why), the only one GetEvidence serves; identity: the
	 * agent's identity key, identity_hash SHA-256 of its SPKI. */
	size_t ak_name_len, ak_recorded_len;
	struct cvm_p256_keypair *identity;
	size_t quota_count;
	struct agent_quota quota[AGENT_CALLERS_MAX];
	struct agent_quota quota_shared; /* the callers without a uid of their own */
	size_t raw_uid_count;
	uid_t raw_uids[AGENT_RAW_UIDS_MAX];
	uint8_t ak_name[CVM_TPM_NAME_MAX];
	uint8_t ak_recorded[CVM_TPM_NAME_MAX];
	char ak_problem[320];
	uint8_t identity_hash[32];
	/* the KMS key provider (kms.c): kms_mode when the keys come from a
	 * KMS; kms_measure when this start measured the boot and must record
	 * the provider; the list, the one that answered and the pinned root CA */
	bool kms_mode, kms_measure;
	/* this start ran the storage hook and recorded system-ready (boot.c) */
	bool boot_storage_done;
	size_t kms_url_count, kms_used, kms_pin_len;
	char kms_urls[AGENT_KMS_URLS_MAX][AGENT_KMS_URL_MAX];
	uint8_t kms_pin[512];
	struct cvm_ratls_verifier *kms_verifier; /* of the KMSs' certificates */
	SSL_CTX *kms_ctx;                        /* presents the identity key's certificate */
	int64_t kms_ctx_until;                   /* renew kms_ctx from then */
};

/* agent_config_defaults fills the built-in defaults (dstack's paths). */
void agent_config_defaults(struct agent_config *c);

/* agent_open sets the agent up from its config: the TEE, the app's keys,
 * app-compose and sys-config, the CCEL, the runtime log (measuring the app
 * into RTMR3 on a fresh log when measure_app is set). On failure `err`
 * says why. Returns 0 or a negative CVM_E_*. */
CVM_MUST_CHECK int agent_open(struct agent *a, char *err, size_t err_len);
/* agent_close releases everything agent_open made (safe after a failure). */
void agent_close(struct agent *a);

/* agent_quote asks the TEE for evidence over `report_data` under the
 * runtime log's shared lock, with the runtime events current at that
 * moment in a->rt. */
CVM_MUST_CHECK int agent_quote(struct agent *a, const uint8_t report_data[64], struct cvm_tee_evidence *out);

/* agent_emit_event appends a runtime event to the log and extends RTMR3
 * under the log's exclusive lock; when the extension fails the line is
 * removed again. `caller` NULL is the agent itself, which may use the
 * system's names (cvm_evidence_is_system_event) and the whole log; any
 * other caller may not, stays out of the room kept for the system, and
 * within its own share (caller_events_max, caller_payload_max). On failure
 * `err` says why: CVM_E_INVAL, CVM_E_POLICY (a system name),
 * CVM_E_TOO_LARGE (a payload, share or room exceeded) and
 * CVM_E_UNSUPPORTED (no RTMR3) are the caller's (400); others are ours.
 * Returns 0 or a negative CVM_E_*. */
CVM_MUST_CHECK int agent_emit_event(struct agent *a, const char *name, size_t name_len,
                                    const uint8_t *payload, size_t payload_len,
                                    const struct agent_caller *caller, char *err, size_t err_len);
/* agent_emit_event_locked is agent_emit_event for the agent itself, with the
 * runtime log's lock already held exclusively and the name checked. */
CVM_MUST_CHECK int agent_emit_event_locked(struct agent *a, const char *name, const uint8_t *payload,
                                           size_t payload_len, char *err, size_t err_len);

/* agent_raw_report_data_allowed is true when `caller` may have its
 * report_data put into an SEV-SNP report unchanged (raw_report_data_uids). */
bool agent_raw_report_data_allowed(const struct agent *a, const struct agent_caller *caller);
/* agent_caller_report_data turns a caller's report data into what the TEE
 * signs for it: unchanged on TDX (RTMR3 anchors the agent's identities) and
 * for the uids agent_raw_report_data_allowed names, else
 * cvm_evidence_caller_report_data. Returns 0 or CVM_E_CRYPTO. */
CVM_MUST_CHECK int agent_caller_report_data(const struct agent *a, const struct agent_caller *caller,
                                            uint8_t rd[64]);

/* kms.c */
/* agent_kms_settle reads whether the app's keys come from a KMS (the
 * [kms] urls, or app-compose's kms_enabled / key_provider "kms" with
 * sys-config's kms_urls) and app-compose's pin (key_provider_id). Returns
 * 0 or a negative CVM_E_* with `err`. */
CVM_MUST_CHECK int agent_kms_settle(struct agent *a, char *err, size_t err_len);
/* agent_kms_open, in KMS mode, gets the keys from the first KMS of the list
 * that gives them over mutual RA-TLS (the identity key's certificate),
 * records os-image-hash, key-provider and system-ready when this start
 * measured the boot (else checks the recorded key-provider), and writes
 * the disk key and the decrypted environment where [kms] says. */
CVM_MUST_CHECK int agent_kms_open(struct agent *a, char *err, size_t err_len);
/* agent_kms_sign has a KMS of the list (the one that gave the keys first)
 * sign a certificate for `kp` with `p` (KMS.SignCert, a V2 CSR carrying
 * the key's attestation), from a KMS of the same root; *chain is the
 * answer's certificate_chain (leaf, App CA, root CA). TDX only. Blocks for
 * at most [kms] timeout per KMS. Returns 0 or a negative CVM_E_* with
 * `err`. */
struct cvm_csr_params;
CVM_MUST_CHECK int agent_kms_sign(struct agent *a, const struct cvm_p256_keypair *kp,
                                  const struct cvm_csr_params *p, json_t **chain, char *err, size_t err_len);
/* agent_kms_write_disk_key writes the disk key (the LUKS passphrase: the
 * key's lowercase hex) to [kms] disk_key_file, mode 0600, when one is set.
 * Returns 0 or a negative CVM_E_* with `err`. */
CVM_MUST_CHECK int agent_kms_write_disk_key(struct agent *a, char *err, size_t err_len);
/* agent_kms_write_env decrypts [kms] encrypted_env, when it is there, with
 * the app's env key and writes app-compose's allowed_envs of it to [kms]
 * env_file (mode 0600) in dstack's NAME=VALUE form. Returns 0 or a
 * negative CVM_E_* with `err`. */
CVM_MUST_CHECK int agent_kms_write_env(struct agent *a, char *err, size_t err_len);
/* agent_kms_close frees the KMS client's context and verifier. */
void agent_kms_close(struct agent *a);

/* identity.c */
/* agent_identity_open loads the agent's P-256 identity key from
 * cfg.identity_key, or makes one there (mode 0600, owner only), and keeps it
 * with the SHA-256 of its SPKI. Returns 0 or a negative CVM_E_* with `err`. */
CVM_MUST_CHECK int agent_identity_open(struct agent *a, char *err, size_t err_len);
/* agent_record_system_events anchors the agent's identity key and, with a
 * TPM, the AK in RTMR3 (TDX): an event each, recorded before any app event
 * and never twice (a restart finds them in the log). A recorded identity
 * key other than ours stops the agent; an AK problem is kept in
 * a->ak_problem for GetEvidence. Returns 0 or a negative CVM_E_* with
 * `err`. */
CVM_MUST_CHECK int agent_record_system_events(struct agent *a, char *err, size_t err_len);

/* agent_system_boundary returns the index of the first runtime event that
 * is not the system's (a->rt.count when there is none). */
size_t agent_system_boundary(const struct agent *a);

/* agent_find_event returns the payload of the first runtime event named
 * `name` before system-ready (as dstack's consumers read app info), or
 * NULL. */
const struct agent_event *agent_find_event(const struct agent *a, const char *name);

/* rtlog.c */
CVM_MUST_CHECK int agent_rtlog_open(struct agent_rtlog *l, const char *path, char *err, size_t err_len);
void agent_rtlog_close(struct agent_rtlog *l);
/* agent_rtlog_lock takes the lock file (LOCK_SH or LOCK_EX) and reloads
 * the events when the file changed; agent_rtlog_unlock releases it. */
CVM_MUST_CHECK int agent_rtlog_lock(struct agent_rtlog *l, int how);
void agent_rtlog_unlock(struct agent_rtlog *l);
/* agent_rtlog_append writes one line for (name, payload) with the lock held
 * exclusively and remembers the event; *undo_size is the file size to
 * truncate back to. */
CVM_MUST_CHECK int agent_rtlog_append(struct agent_rtlog *l, const char *name, const uint8_t *payload,
                                      size_t payload_len, const uint8_t digest[48], off_t *undo_size);
/* agent_rtlog_undo removes the last event again (the extension failed). */
void agent_rtlog_undo(struct agent_rtlog *l, off_t size);
/* agent_rtlog_replay computes RTMR3 from the runtime events. */
void agent_rtlog_replay(const struct agent_rtlog *l, uint8_t out[48]);

/* evidence.c */
/* agent_event_log_json builds the event log as a JSON array: boot events
 * then runtime events, every digest present; `with_boot_payloads` keeps the
 * boot events' data (Info's tcb_info) or empties it (GetQuote, as dstack). */
json_t *agent_event_log_json(const struct agent *a, bool with_boot_payloads);
/* agent_quote_log returns GetQuote's event_log string (cached). */
const char *agent_quote_log(struct agent *a);
/* agent_va_events returns the event log (boot events, then runtime events)
 * as lib/ratls's events, borrowing from `a` (valid while the runtime log's
 * lock is held); *count is their number. The caller frees the array. NULL
 * when out of memory. */
struct cvm_va_event *agent_va_events(const struct agent *a, size_t *count);
/* agent_va_encode encodes dstack's VersionedAttestation (spec §5.6) of the
 * evidence `quote` made on `platform` over `report_data`, with the agent's
 * event log, runtime events and vm_config, through lib/ratls's cvm_va_encode
 * (version 0: SCALE, 1: MessagePack). Call it under the runtime log's lock.
 * The caller frees *out. */
CVM_MUST_CHECK int agent_va_encode(const struct agent *a, enum cvm_tee_platform platform,
                                   const uint8_t *quote, size_t quote_len, const uint8_t report_data[64],
                                   unsigned version, uint8_t **out, size_t *out_len);
/* agent_mr_aggregated computes Info's mr_aggregated (spec §5.5) from the
 * current registers. */
CVM_MUST_CHECK int agent_measurements(struct agent *a, struct cvm_tee_measurements *m,
                                      uint8_t mr_aggregated[32]);
/* agent_tcb_info builds Info's tcb_info object. */
json_t *agent_tcb_info(struct agent *a);
/* agent_evidence_open settles GetEvidence's TPM and IMA parts from the
 * config: the IMA list's path, the PCR selection and AK handle (bad values
 * are errors in `err`), and a first contact with the TPM that creates the
 * AK when missing. A TPM that cannot be reached is logged, not fatal: each
 * GetEvidence tries again and fails with the reason. */
CVM_MUST_CHECK int agent_evidence_open(struct agent *a, char *err, size_t err_len);
/* agent_evidence builds GetEvidence's reply for `nonce`: the TEE quote, the
 * event log and, when configured, the TPM quote and the IMA list, bound to
 * the nonce as include/cvmkit/evidence.h defines. A configured part that
 * fails fails the whole call, with `err` naming the part. */
CVM_MUST_CHECK int agent_evidence(struct agent *a, const uint8_t *nonce, size_t nonce_len, json_t **out,
                                  char *err, size_t err_len);

/* agent_tpm_quote_raw has the AK quote PCR `pcr` of the SHA-256 bank with
 * `qdata` (1 to CVM_TPM_DATA_MAX bytes) as the qualifying data as it is, for
 * Cosmian VM's GET /quote/tpm (cosmian.c); on TDX the AK must be the one
 * RTMR3 recorded, as for GetEvidence. `out` holds TPMS_ATTEST, the
 * TPMT_SIGNATURE and the AK's TPM2B_PUBLIC; free it with
 * agent_tpm_raw_cleanup. On failure `err` says why. */
struct agent_tpm_raw {
	uint8_t *attest, *sig, *ak_pub;
	size_t attest_len, sig_len, ak_pub_len;
};
CVM_MUST_CHECK int agent_tpm_quote_raw(struct agent *a, unsigned pcr, const uint8_t *qdata, size_t qdata_len,
                                       struct agent_tpm_raw *out, char *err, size_t err_len);
void agent_tpm_raw_cleanup(struct agent_tpm_raw *q);

/* cosmian.c */
/* agent_cosmian_serve answers Cosmian VM's read endpoints (GET /quote/tee,
 * /quote/tpm, /ima/ascii, /ima/binary; GET and DELETE /snapshot) on the TLS
 * listener and returns true, or returns false for any other path. */
bool agent_cosmian_serve(struct agent *a, struct cvm_http_req *req, struct cvm_http_resp *resp);

/* ratls.c */
/* agent_key_report_data writes dstack's RA-TLS report data of `kp`:
 * SHA-512("ratls-cert:" || SPKI DER). */
CVM_MUST_CHECK int agent_key_report_data(const struct cvm_p256_keypair *kp, uint8_t rd[64]);
/* agent_identity_report_data is agent_key_report_data of the identity key. */
CVM_MUST_CHECK int agent_identity_report_data(const struct agent *a, uint8_t rd[64]);
/* agent_ratls_cert makes the certificate `tpl` describes (its extensions are
 * set here) for `kp`, signed by `issuer_key`/`issuer` or self-signed when
 * both are NULL, carrying, with `with_evidence`, the TEE's evidence over
 * agent_key_report_data(kp) in dstack's RA-TLS profile (1.1 quote, 1.2 event
 * log, 1.8 VersionedAttestation on TDX), and the 1.9 `app_info` when not
 * NULL. *out_pem is
 * malloc'd. Returns 0 or a negative CVM_E_* (CVM_E_INVAL: the template)
 * with `err` set for the others. */
CVM_MUST_CHECK int agent_ratls_cert(struct agent *a, struct cvm_cert_template *tpl,
                                    const struct cvm_p256_keypair *kp, bool with_evidence,
                                    const uint8_t *app_info, size_t app_info_len,
                                    const struct cvm_p256_keypair *issuer_key, const struct cvm_cert *issuer,
                                    char **out_pem, size_t *out_len, char *err, size_t err_len);
/* agent_app_info encodes dstack's AppInfo for the RA-TLS 1.9 extension
 * (spec §6.1: rmp_serde's array form, bytes as bin): app_id, compose_hash,
 * instance_id (the runtime events), device_id (SHA-256 of ""), mr_system,
 * mr_aggregated (spec §5.5), os_image_hash, key_provider_info. Call it under
 * the runtime log's lock. *out is malloc'd. */
CVM_MUST_CHECK int agent_app_info(struct agent *a, uint8_t **out, size_t *out_len);
/* agent_tls_ctx_new makes the TLS listener's context: a self-signed RA-TLS
 * certificate for the agent's identity key, valid from now (minus 5 min)
 * for `lifetime_s`, served TLS 1.3-only (cvm_tls_server_ctx_new).
 * *not_after is its expiry. */
CVM_MUST_CHECK int agent_tls_ctx_new(struct agent *a, uint64_t lifetime_s, SSL_CTX **out, int64_t *not_after,
                                     char *err, size_t err_len);

/* walk.c: the snapshot's file walk */
/* struct agent_walk_query is what a SnapshotFiles call asks besides the
 * status: a page of the finished walk's entries. */
struct agent_walk_query {
	bool already_running; /* the start found a walk running (echoed) */
	bool want_entries;
	uint64_t offset, limit; /* limit 0: AGENT_WALK_PAGE_ENTRIES */
	bool has_generation;
	uint64_t generation; /* the walk the caller pages through */
};
/* agent_walk_start starts a walk of [snapshot] roots in a thread, unless
 * one runs (then *already is set and nothing changes); a finished walk's
 * result is dropped. Returns 0, or CVM_E_INVAL (the config; `err` says
 * what), CVM_E_UNSUPPORTED (disable_walk) or another CVM_E_* with `err`. */
CVM_MUST_CHECK int agent_walk_start(struct agent *a, bool *already, char *err, size_t err_len);
/* agent_walk_status builds SnapshotFiles' reply: the walk's state and
 * counters and, when q->want_entries, a page of the finished walk's
 * (path, digest) pairs. On failure *status is the HTTP status (409: no
 * finished walk, or another generation) and `err` says why. */
CVM_MUST_CHECK int agent_walk_status(struct agent *a, const struct agent_walk_query *q, json_t **out,
                                     int *status, char *err, size_t err_len);
/* agent_walk_pairs sets *state to the walk's ("idle", "running", "done",
 * "failed": then `err` holds its error) and, when it is done, appends its
 * (path, hex digest) pairs to `arr` as two-element arrays (Cosmian VM's
 * filehashes). Returns 0 or CVM_E_NOMEM. */
CVM_MUST_CHECK int agent_walk_pairs(struct agent *a, json_t *arr, const char **state, char *err,
                                    size_t err_len);
/* agent_walk_clear drops the finished walk's result; CVM_E_INVAL while a
 * walk runs. */
CVM_MUST_CHECK int agent_walk_clear(struct agent *a);

/* api.c: the two APIs the agent serves. */
extern const struct cvm_rpc_mount agent_dstack_mounts[];
extern const size_t agent_dstack_mount_count;
extern const struct cvm_rpc_mount agent_tappd_mounts[];
extern const size_t agent_tappd_mount_count;
/* The TLS listener's read-only surface: Info, Version, Attest (of the
 * certificate key) and FreshAttest; everything else is 404. */
extern const struct cvm_rpc_mount agent_tls_mounts[];
extern const size_t agent_tls_mount_count;

/* boot.c */
/* agent_boot_storage, when [boot] storage_hook is set, runs it (argument:
 * the disk key file, written before) for at most [boot] hook_timeout and
 * records storage-fs with the file system name it prints. `locked`: the
 * caller holds the runtime log's lock. A failure is reported to the host
 * channel as a boot-error; then no system-ready may follow. Returns 0 or a
 * negative CVM_E_* with `err`. */
CVM_MUST_CHECK int agent_boot_storage(struct agent *a, bool locked, char *err, size_t err_len);
/* agent_boot_app starts [boot] app_hook when this start ran the storage
 * hook: a detached watcher runs it with the timeout and reports a failure
 * as a boot-error. Returns 0, or CVM_E_SYSTEM when it could not start. */
CVM_MUST_CHECK int agent_boot_app(struct agent *a);
/* agent_boot_report writes {"event":EVENT,"payload":PAYLOAD} and a newline
 * to [boot] channel when one is set; it never blocks and never fails the
 * caller (a write error is logged). */
void agent_boot_report(const struct agent *a, const char *event, const char *payload);
/* agent_boot_instance_info writes {"event":"instance-info","payload":{
 * "app_id","instance_id","compose_hash" (hex, from RTMR3's events; absent
 * when the event is), "app_name"}} to [boot] channel when this start ran
 * the storage hook. */
void agent_boot_instance_info(const struct agent *a);

#endif
