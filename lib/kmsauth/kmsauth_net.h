/* lib/kmsauth's network side: the webhook client (libcurl) and the two
 * chain questions lib/chain has no helper for. */
#ifndef CVMKIT_KMSAUTH_NET_H
#define CVMKIT_KMSAUTH_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/chain.h>
#include <cvmkit/kmsauth.h>

/* AUTH_URL_MAX caps a webhook or node URL in bytes. */
#define AUTH_URL_MAX 2048

/* auth_webhook_decide POSTs `bi` to {base}/bootAuth/app|kms and reads the
 * answer into `d`: HTTP 2xx, a body of at most CVM_AUTH_REPLY_MAX bytes,
 * no redirect, within `timeout_ms` in all. */
int auth_webhook_decide(const char *base, unsigned timeout_ms, enum cvm_auth_kind kind,
                        const struct cvm_boot_info *bi, struct cvm_auth_decision *d, char *err,
                        size_t err_len);

/* auth_webhook_info GETs {base} and reads dstack's AuthApiInfoResponse. */
int auth_webhook_info(const char *base, unsigned timeout_ms, struct cvm_auth_info *out, char *err,
                      size_t err_len);

/* auth_chain_gateway_app_id asks the contract's gatewayAppId(). */
int auth_chain_gateway_app_id(const struct cvm_chain_client *c, const uint8_t contract[CVM_CHAIN_ADDRESS_LEN],
                              char *out, size_t out_len, char *err, size_t err_len);

/* auth_chain_id asks the node's eth_chainId. */
int auth_chain_id(const struct cvm_chain_client *c, uint64_t *out, char *err, size_t err_len);

#endif
