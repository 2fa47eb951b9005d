/* cvmkit/app.h: app-compose files and what they commit to (dstack spec §4,
 * §5.7). An app-compose.json is checked against dstack's schema (unknown
 * keys, wrong types and impossible values refused with the key's name);
 * its compose_hash is the SHA-256 of the exact bytes, never of a
 * re-serialisation; the app id a KMS-less deployment gets is the hash's
 * first 20 bytes; MRCONFIGID binds the compose hash (and, from layout 2, the
 * app id and key provider) into the TD's launch configuration. */
#ifndef CVMKIT_APP_H
#define CVMKIT_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CVM_APP_COMPOSE_MAX ((size_t)256 * 1024) /* dstack 0.5.5's limit */
#define CVM_APP_ID_BYTES 20u
#define CVM_APP_MRCONFIGID_LEN 48u
#define CVM_APP_KP_ID_MAX 1024u     /* key_provider_id bytes (a KMS root CA's SPKI DER) */
#define CVM_APP_ENVS_MAX 1024u      /* allowed_envs names, dstack's env limit */
#define CVM_APP_INIT_SCRIPTS_MAX 5u /* init_script entries (dstack's MAX_INIT_SCRIPTS) */
#define CVM_APP_DEPTH_MAX 32u       /* nesting of arrays and objects (dstack's files use 4) */

/* The key provider, with MRCONFIGID v2's byte values. */
enum cvm_app_kp {
	CVM_APP_KP_NONE = 0,
	CVM_APP_KP_LOCAL = 1,
	CVM_APP_KP_KMS = 2,
	CVM_APP_KP_TPM = 3,
};

/* A parsed app-compose file. Strings are NUL-terminated copies owned by the
 * struct; what the file leaves out holds dstack's default. manifest_version,
 * name and runner are required (dstack's guest refuses a file without them);
 * only CVM_APP_PARSE_LAX lets them default (2, "", "docker-compose"). */
struct cvm_app_compose {
	uint8_t compose_hash[32];                 /* SHA-256 of the file's bytes */
	uint8_t default_app_id[CVM_APP_ID_BYTES]; /* compose_hash[0..20] */
	int manifest_version;                     /* 2 or 3 ("3" as a string counts) */
	char *name;                               /* "" when absent */
	char *runner;                             /* "docker-compose" (default), "bash", "nerdctl-compose" */
	char *docker_compose_file;                /* NULL when absent */
	enum cvm_app_kp key_provider;             /* key_provider, else from the booleans */
	bool key_provider_explicit;               /* key_provider was given */
	uint8_t *key_provider_id;                 /* NULL when absent or empty */
	size_t key_provider_id_len;
	/* The booleans as the file says them (false when absent); gateway_enabled
	 * also from the legacy tproxy_enabled and features ["tproxy-net"]. */
	bool kms_enabled, gateway_enabled, local_key_provider_enabled;
	bool public_logs, public_sysinfo, public_tcbinfo, no_instance_id, secure_time;
	bool has_allowed_envs; /* allowed_envs present (possibly empty) */
	char **allowed_envs;   /* has_allowed_envs: n_allowed_envs names */
	size_t n_allowed_envs;
	char *storage_fs;            /* NULL when absent ("zfs" upstream's default) */
	uint64_t swap_size;          /* bytes; 0 when absent */
	int event_log_version;       /* 1 unless the file says 2 */
	bool public_tcbinfo_given;   /* (defaults: public_tcbinfo and secure_time true) */
	char **init_scripts;         /* init_script: a string counts as one entry */
	size_t n_init_scripts;       /* 0..CVM_APP_INIT_SCRIPTS_MAX */
	bool has_requirements;       /* requirements present (manifest_version 3) */
	uint8_t gpu_policy_hash[32]; /* SHA-256(JCS(requirements.gpu_policy, else {})) */
	size_t n_unknown_keys;       /* top-level keys only LAX accepted */
};

/* The byte layouts an app-compose file comes in; the compose hash covers
 * the exact bytes, so the same settings in another layout is another app. */
enum cvm_app_layout {
	CVM_APP_LAYOUT_OTHER = 0,   /* any other spacing */
	CVM_APP_LAYOUT_COMPACT = 1, /* no white space between tokens (SDK-normalised files, A-D1) */
	CVM_APP_LAYOUT_VMM_CLI = 2, /* json.dumps(indent=4): what dstack's vmm-cli.py compose writes */
};

/* Flags for cvm_app_compose_parse. */
/* CVM_APP_PARSE_LAX accepts what a newer dstack's file may hold: unknown
 * keys and members, missing required keys (defaulted), and skips the checks
 * that need the whole file (docker_compose_file or bash_script for the
 * runner, snapshotter only with nerdctl-compose, manifest_version "3" for
 * requirements and several init scripts). Known keys are still checked for
 * type and value. Default: all of it refused. */
#define CVM_APP_PARSE_LAX 1u

/* cvm_app_compose_parse checks `len` bytes of an app-compose file (at most
 * CVM_APP_COMPOSE_MAX) and fills *out (free with cvm_app_compose_free). It
 * refuses, with the key's name and what to do in `err`: text that is not one
 * JSON object, duplicate keys, unknown keys (unless CVM_APP_PARSE_LAX), a key
 * of the wrong type, a manifest_version other than 2 or 3, an unknown runner
 * or key_provider, a key_provider contradicting the booleans, a
 * key_provider_id that is not hex, allowed_envs names that are not
 * ^[A-Za-z_][A-Za-z0-9_]*$ or repeat. CVM_E_FORMAT for bad input. */
CVM_API CVM_MUST_CHECK int cvm_app_compose_parse(const uint8_t *buf, size_t len, unsigned flags,
                                                 struct cvm_app_compose **out, char *err, size_t err_len);
CVM_API void cvm_app_compose_free(struct cvm_app_compose *c);

/* cvm_app_compose_layout tells which layout the `len` bytes of a JSON text
 * (one that cvm_app_compose_parse accepted) are in, by their white space
 * alone: tokens are never re-encoded. *trailing_newline (may be NULL) says
 * whether the text ends with white space after the closing brace (vmm-cli
 * writes none, editors often add one). */
CVM_API enum cvm_app_layout cvm_app_compose_layout(const uint8_t *buf, size_t len, bool *trailing_newline);

/* cvm_app_compose_hash writes SHA-256 of the exact bytes (no parsing). */
CVM_API void cvm_app_compose_hash(const uint8_t *buf, size_t len, uint8_t out[32]);

/* cvm_app_kp_name is "none", "local", "kms" or "tpm" (dstack's
 * KeyProviderKind names, as app-compose and MrConfigV3 spell them). */
CVM_API const char *cvm_app_kp_name(enum cvm_app_kp kp);

/* The inputs of MRCONFIGID (spec §5.7). app_id is the deployment's app id
 * (the default one when the deployment gives none). Layout 3's document
 * carries app_id, key_provider_id, instance_id, gpu_policy_hash and
 * init_script_hashes only when given (dstack's VMM: gpu_policy_hash for GPU
 * launches, init_script_hashes, possibly empty, from manifest_version 3). */
struct cvm_app_mrconfig_in {
	const uint8_t *compose_hash; /* 32 bytes */
	const uint8_t *app_id;       /* 20 bytes, or NULL (layout 3 omits it) */
	enum cvm_app_kp key_provider;
	const uint8_t *key_provider_id; /* may be NULL with len 0 */
	size_t key_provider_id_len;
	const uint8_t *instance_id;              /* 20 bytes or NULL (layout 3 only) */
	const uint8_t *gpu_policy_hash;          /* 32 bytes or NULL (layout 3 only) */
	bool has_init_script_hashes;             /* layout 3: carry init_script_hashes */
	const uint8_t (*init_script_hashes)[32]; /* SHA-256 of each init script, in order */
	size_t n_init_script_hashes;             /* 0..CVM_APP_INIT_SCRIPTS_MAX */
};

/* cvm_app_mrconfigid writes the 48-byte MRCONFIGID of `layout` 1, 2 or 3:
 *   1: 0x01 || compose_hash || 0^15
 *   2: 0x02 || keccak256(compose_hash || app_id || kp_byte || key_provider_id) || 0^15
 *   3: 0x03 || SHA-256("dstack-mr-config-v3:" || 0x00 || document) || 0^15
 * For layout 3 it also returns the JCS document (malloc'd, NUL-terminated)
 * in *doc when doc is not NULL: what sys-config's mr_config carries, and
 * whose hash is SEV-SNP's HOST_DATA (cvm_app_mrconfig_v3_hash). Returns 0,
 * CVM_E_INVAL (an unknown layout, a missing input: layout 2 needs app_id,
 * an unknown key provider, a key_provider_id over CVM_APP_KP_ID_MAX, too
 * many init script hashes) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_app_mrconfigid(unsigned layout, const struct cvm_app_mrconfig_in *in,
                                              uint8_t out[CVM_APP_MRCONFIGID_LEN], char **doc, char *err,
                                              size_t err_len);

/* cvm_app_mrconfig_v3_hash writes SHA-256("dstack-mr-config-v3:" || 0x00 || doc). */
CVM_API void cvm_app_mrconfig_v3_hash(const char *doc, size_t doc_len, uint8_t out[32]);

/* cvm_app_compose_mrconfigid is cvm_app_mrconfigid with the inputs dstack's
 * VMM takes from a parsed file (dstack/vmm/src/app/mr_config.rs): its
 * compose hash, key provider and key_provider_id; `app_id` (NULL: the
 * default app id); for layout 3 `instance_id` (NULL: none; dstack derives
 * it from a random seed unless no_instance_id), gpu_policy_hash when
 * `is_gpu` (a launch with GPUs), and from manifest_version 3 the SHA-256 of
 * each init script, in order. Same returns as cvm_app_mrconfigid. */
CVM_API CVM_MUST_CHECK int cvm_app_compose_mrconfigid(const struct cvm_app_compose *c, unsigned layout,
                                                      const uint8_t *app_id, const uint8_t *instance_id,
                                                      bool is_gpu, uint8_t out[CVM_APP_MRCONFIGID_LEN],
                                                      char **doc, char *err, size_t err_len);

/* cvm_app_compose_tdx_layout is the layout dstack's VMM (0.6) gives a TDX
 * guest for this file: 1 when key_provider_id is empty, else 3 (0.5.x
 * VMMs used 2 there). SEV-SNP guests always get layout 3's hash as
 * HOST_DATA. */
CVM_API unsigned cvm_app_compose_tdx_layout(const struct cvm_app_compose *c);

#ifdef __cplusplus
}
#endif

#endif
