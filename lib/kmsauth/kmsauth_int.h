/* lib/kmsauth internals, shared by its files and reachable from the unit
 * test and the fuzz harness (which link the static library). */
#ifndef CVMKIT_KMSAUTH_INT_H
#define CVMKIT_KMSAUTH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/kmsauth.h>

/* One allow list of fixed-size byte strings (hashes, devices, app ids). */
struct auth_list {
	uint8_t (*items)[32];
	size_t count;
};

struct auth_app {
	uint8_t app_id[20];
	struct auth_list compose_hashes, devices;
	bool allow_any_device;
};

/* struct auth_policy is a parsed auth-simple configuration. */
struct auth_policy {
	char gateway_app_id[64];
	char kms_contract_addr[64];
	char app_implementation[64];
	uint64_t chain_id;
	struct auth_list os_images;
	char **tcb_statuses;
	size_t tcb_status_count;
	char **advisory_ids;
	size_t advisory_count;
	struct auth_list kms_mrs, kms_devices;
	bool kms_allow_any_device;
	struct auth_app *apps;
	size_t app_count;
};

/* auth_policy_parse reads the `len` bytes at `buf` as an auth-simple
 * configuration into a new policy (auth_policy_free). Unknown keys, wrong
 * types, hex that is not of the field's size and lists over
 * CVM_AUTH_LIST_MAX are refused. Returns 0, CVM_E_FORMAT, CVM_E_TOO_LARGE or
 * CVM_E_NOMEM; `err` says what was wrong. */
int auth_policy_parse(const uint8_t *buf, size_t len, struct auth_policy **out, char *err, size_t err_len);
void auth_policy_free(struct auth_policy *p);

/* auth_policy_decide applies `p` to `bi` in auth-simple's order. Cannot fail. */
void auth_policy_decide(const struct auth_policy *p, enum cvm_auth_kind kind, const struct cvm_boot_info *bi,
                        struct cvm_auth_decision *d);

/* auth_webhook_reply_parse reads a bootAuth reply: a JSON object whose
 * isAllowed is a JSON boolean; reason and gatewayAppId strings when
 * present. Returns 0 or CVM_E_FORMAT / CVM_E_TOO_LARGE with `err`. */
int auth_webhook_reply_parse(const uint8_t *buf, size_t len, struct cvm_auth_decision *d, char *err,
                             size_t err_len);

/* auth_webhook_info_parse reads the GET {url} reply into `out`. */
int auth_webhook_info_parse(const uint8_t *buf, size_t len, struct cvm_auth_info *out, char *err,
                            size_t err_len);

/* auth_quote copies the untrusted string `s` into `out` (of `out_len`
 * bytes, at least 1), every byte outside printable ASCII as '?', cut to
 * fit. */
void auth_quote(const char *s, char *out, size_t out_len);

void auth_set_err(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* auth_is_simulated says whether `bi` comes from a simulated TEE. */
bool auth_is_simulated(const struct cvm_boot_info *bi);

#endif
