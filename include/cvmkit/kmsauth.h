/* KMS authorization (issue 13 point 5, dstack spec §3.5, docs/kms-auth.md):
 * one interface a KMS asks "may this attested CVM (or this KMS node) have its
 * keys?", with three implementations (lib/kmsauth):
 *
 *   "policy"   a JSON file with dstack auth-simple's configuration and check
 *              order, re-read when it changes;
 *   "webhook"  dstack's auth API over HTTP(S): POST {url}/bootAuth/app|kms
 *              with the BootInfo JSON, GET {url} for its info;
 *   "chain"    eth_call to a DstackKms contract's isAppAllowed/isKmsAllowed
 *              and gatewayAppId() (lib/chain);
 *   "dev"      allow everything: refused unless `allow_dev` is set.
 *
 * Fail closed: cvm_auth_decide returns 0 only when the authorizer answered;
 * any error (timeout, node down, non-2xx, malformed answer or policy file)
 * is an error and the caller must refuse. A simulated TEE (a `tee_variant`
 * starting with CVM_AUTH_SIM_VARIANT_PREFIX) is refused by every
 * authorizer unless `allow_simulated_tee` is set.
 *
 * The module trusts what the caller put in the BootInfo: it verifies no
 * quote. The caller fills it from evidence it has verified. */
#ifndef CVMKIT_KMSAUTH_H
#define CVMKIT_KMSAUTH_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CVM_AUTH_SIM_VARIANT_PREFIX begins the tee_variant of cvmkit's simulated
 * TEEs ("cvmkit-sim-tdx", "cvmkit-sim-snp"): evidence that proves nothing
 * about hardware. dstack has no such variant. */
#define CVM_AUTH_SIM_VARIANT_PREFIX "cvmkit-sim-"
/* CVM_AUTH_POLICY_MAX caps the policy file in bytes (1 MiB). */
#define CVM_AUTH_POLICY_MAX 1048576
/* CVM_AUTH_LIST_MAX caps every list of the policy file (os images, hashes,
 * devices, apps, TCB statuses, advisory ids). */
#define CVM_AUTH_LIST_MAX 4096
/* CVM_AUTH_REPLY_MAX caps a webhook's reply body in bytes (64 KiB). */
#define CVM_AUTH_REPLY_MAX 65536
/* CVM_AUTH_KPI_MAX caps BootInfo.keyProviderInfo in bytes. */
#define CVM_AUTH_KPI_MAX 4096
/* CVM_AUTH_ADVISORIES_MAX caps BootInfo.advisoryIds; CVM_AUTH_ADVISORY_MAX
 * caps one advisory id in bytes. */
#define CVM_AUTH_ADVISORIES_MAX 256
#define CVM_AUTH_ADVISORY_MAX 128
/* CVM_AUTH_DEFAULT_TIMEOUT_MS is the whole-request deadline of the webhook
 * and chain authorizers when none is given. */
#define CVM_AUTH_DEFAULT_TIMEOUT_MS 3000u

/* struct cvm_boot_info is dstack's PolicyBootInfo: what a KMS knows about a
 * CVM once its attestation verified. Byte fields are raw. */
struct cvm_boot_info {
	/* "dstack-tdx", "dstack-gcp-tdx", "dstack-nitro-enclave",
	 * "dstack-amd-sev-snp", "dstack-aws-nitro-tpm", or cvmkit's simulated
	 * "cvmkit-sim-tdx" / "cvmkit-sim-snp"; NUL-terminated. */
	char tee_variant[32];
	uint8_t mr_aggregated[32], os_image_hash[32], mr_system[32], compose_hash[32], device_id[32];
	uint8_t app_id[20], instance_id[20];
	bool has_instance_id;             /* false: instanceId "" in JSON, zero address on chain */
	const uint8_t *key_provider_info; /* borrowed; NULL when key_provider_info_len is 0 */
	size_t key_provider_info_len;
	char tcb_status[32];             /* "UpToDate", "OutOfDate", ...; NUL-terminated */
	const char *const *advisory_ids; /* borrowed, NUL-terminated strings */
	size_t advisory_count;
	/* Set by cvm_boot_info_from_json (it owns the bytes the pointers above
	 * point to) and freed by cvm_boot_info_cleanup; NULL otherwise. */
	void *owned;
};

/* enum cvm_auth_kind names the question: bootAuth/app or bootAuth/kms. */
enum cvm_auth_kind {
	CVM_AUTH_APP = 1, /* may this app instance get its keys? */
	CVM_AUTH_KMS = 2, /* may this KMS node onboard (get the root keys)? */
};

/* struct cvm_auth_decision is an authorizer's answer: `allowed`, the
 * gateway app id to forward to the app (dstack's AppKeyResponse
 * .gateway_app_id), and the authorizer's reason (empty when a policy,
 * webhook or contract allows; "dev authorizer: ..." from dev), quoted as
 * printable ASCII. */
struct cvm_auth_decision {
	bool allowed;
	char gateway_app_id[64];
	char reason[256];
};

/* struct cvm_auth_info is what the KMS's GetMeta reports about its
 * authorizer (dstack's AuthApiInfoResponse). Strings are printable ASCII,
 * cut to fit. */
struct cvm_auth_info {
	char status[16];            /* "ok" */
	char kms_contract_addr[64]; /* 0x + 40 hex; the zero address when none */
	char gateway_app_id[64];
	char app_implementation[64]; /* 0x + 40 hex; the zero address when none */
	char eth_rpc_url[128];       /* chain: scheme, host and port only; "" otherwise */
	uint64_t chain_id;           /* 0 when none */
};

struct cvm_auth; /* one configured authorizer */

struct cvm_auth_opts {
	const char *type;        /* "policy", "webhook", "chain" or "dev" */
	const char *policy_path; /* policy: the auth-simple JSON file */
	const char *webhook_url; /* webhook: base URL, http:// or https:// */
	unsigned timeout_ms;     /* webhook, chain: whole-request deadline (0: CVM_AUTH_DEFAULT_TIMEOUT_MS) */
	const char *chain_rpc_url; /* chain: the node's URL, http:// or https:// */
	const char *kms_contract;  /* chain: the DstackKms address, 0x + 40 hex */
	/* dev: the gateway app id to answer (NULL: ""); chain: the same, or
	 * NULL to ask the contract's gatewayAppId() on every decision. */
	const char *gateway_app_id;
	bool allow_dev;           /* "dev" is refused unless this is true */
	bool allow_simulated_tee; /* accept CVM_AUTH_SIM_VARIANT_PREFIX variants */
};

/* cvm_auth_new checks `o` and makes an authorizer the caller frees with
 * cvm_auth_free. "policy" reads and checks the file now (a missing or
 * malformed file is an error); "webhook" and "chain" check their URL and
 * address but contact nobody. Returns 0, CVM_E_INVAL (bad options; "dev"
 * without allow_dev), CVM_E_FORMAT / CVM_E_TOO_LARGE / CVM_E_SYSTEM (policy
 * file) or CVM_E_NOMEM; `err` (of `err_len` bytes) says what was wrong. */
CVM_API CVM_MUST_CHECK int cvm_auth_new(const struct cvm_auth_opts *o, struct cvm_auth **out, char *err,
                                        size_t err_len);

/* cvm_auth_free frees `a`; NULL is a no-op. */
CVM_API void cvm_auth_free(struct cvm_auth *a);

/* cvm_auth_type names the authorizer's type ("policy", "webhook", "chain",
 * "dev"). */
CVM_API const char *cvm_auth_type(const struct cvm_auth *a);

/* cvm_auth_decide asks `a` whether `bi` may have what `kind` names. It
 * returns 0 when the authorizer answered, with `d->allowed` either way;
 * otherwise an error with `d->allowed` false and `err` saying why (never a
 * URL path or credential): the caller must refuse. Safe to call from
 * several threads at once. Returns 0, CVM_E_INVAL, CVM_E_FORMAT (malformed
 * policy file, webhook answer or contract answer), CVM_E_TOO_LARGE,
 * CVM_E_SYSTEM (policy file unreadable), CVM_E_UPSTREAM (webhook or chain
 * node unreachable, timed out, non-2xx, revert), CVM_E_NOT_FOUND (no
 * contract) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_auth_decide(struct cvm_auth *a, enum cvm_auth_kind kind,
                                           const struct cvm_boot_info *bi, struct cvm_auth_decision *d,
                                           char *err, size_t err_len);

/* cvm_auth_info fills `out` with what GetMeta reports: webhook: its GET
 * {url} answer; chain: the contract address, the node's origin, its chain
 * id (eth_chainId) and the gateway app id; policy: the file's
 * kmsContractAddr, chainId, appImplementation and gatewayAppId; dev: the
 * configured gateway app id. Returns as cvm_auth_decide. */
CVM_API CVM_MUST_CHECK int cvm_auth_info(struct cvm_auth *a, struct cvm_auth_info *out, char *err,
                                         size_t err_len);

/* cvm_boot_info_to_json writes `bi` as dstack's webhook speaks it: one
 * compact JSON object with the keys teeVariant, mrAggregated, osImageHash,
 * mrSystem, appId, composeHash, instanceId, deviceId, keyProviderInfo,
 * tcbStatus, advisoryIds in that order, byte fields as lowercase hex
 * without 0x, instanceId "" when !has_instance_id. `*out` is a new string
 * the caller frees. Returns 0, CVM_E_INVAL (a string not NUL-terminated
 * within its field, a NULL advisory), CVM_E_TOO_LARGE or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_boot_info_to_json(const struct cvm_boot_info *bi, char **out);

/* cvm_boot_info_from_json reads the `len` bytes at `json` as one BootInfo
 * object: every key above present, exactly once, no other key; byte fields
 * as hex of their exact length (with or without 0x, either case;
 * instanceId "" or 20 bytes; keyProviderInfo up to CVM_AUTH_KPI_MAX bytes);
 * strings without control characters that fit their fields. On success `bi`
 * owns its pointers until cvm_boot_info_cleanup. Returns 0, CVM_E_FORMAT,
 * CVM_E_TOO_LARGE or CVM_E_NOMEM; `err` says which field was wrong. */
CVM_API CVM_MUST_CHECK int cvm_boot_info_from_json(const char *json, size_t len, struct cvm_boot_info *bi,
                                                   char *err, size_t err_len);

/* cvm_boot_info_cleanup frees what cvm_boot_info_from_json allocated and
 * zeroes `bi`; a zeroed `bi` is a no-op. */
CVM_API void cvm_boot_info_cleanup(struct cvm_boot_info *bi);

#endif
