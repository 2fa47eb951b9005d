/* On-chain authorization (dstack's auth-eth, spec §3.5; docs/chain.md): the
 * Ethereum contract ABI for the calls a KMS makes, and a JSON-RPC client for
 * eth_call over libcurl (lib/chain).
 *
 * A KMS asks a DstackKms contract `isAppAllowed(AppBootInfo)` (or
 * `isKmsAllowed(AppBootInfo)` for a KMS node that onboards) with a read-only
 * eth_call and releases keys only when the answer decodes to (true, reason).
 * Everything the node sends back is untrusted: the JSON reply is read under
 * a byte cap, the ABI words through the bounded reader, and only canonical
 * encodings are accepted. Every failure (node down, timeout, HTTP error,
 * JSON-RPC error or revert, malformed answer) is an error, never an
 * "allowed": callers fail closed.
 *
 * The module trusts the node it talks to for the chain's state: it checks no
 * block proof. Point it at a node you run or trust (docs/threat-model.md). */
#ifndef CVMKIT_CHAIN_H
#define CVMKIT_CHAIN_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CVM_CHAIN_ADDRESS_LEN 20
#define CVM_CHAIN_WORD_LEN 32
#define CVM_CHAIN_SELECTOR_LEN 4
/* CVM_CHAIN_STRING_MAX caps a string of AppBootInfo (tcbStatus, an advisory
 * id) and the reason a contract gives, in bytes. */
#define CVM_CHAIN_STRING_MAX 1024
/* CVM_CHAIN_ADVISORIES_MAX caps AppBootInfo.advisoryIds. */
#define CVM_CHAIN_ADVISORIES_MAX 256
/* CVM_CHAIN_RETURN_MAX caps the ABI bytes of one eth_call's result (64 KiB). */
#define CVM_CHAIN_RETURN_MAX 65536
/* CVM_CHAIN_REPLY_MAX caps the JSON-RPC reply body read from the node: the
 * hex of CVM_CHAIN_RETURN_MAX bytes plus room for the envelope. */
#define CVM_CHAIN_REPLY_MAX 135168 /* 2 * CVM_CHAIN_RETURN_MAX + 4096 */
/* CVM_CHAIN_URL_MAX caps the node's URL. */
#define CVM_CHAIN_URL_MAX 2048

/* struct cvm_chain_boot_info is dstack's AppBootInfo tuple
 * (address appId, bytes32 composeHash, address instanceId, bytes32 deviceId,
 * bytes32 mrAggregated, bytes32 mrSystem, bytes32 osImageHash,
 * string tcbStatus, string[] advisoryIds). dstack's auth-eth maps its 20-byte
 * app and instance ids to addresses and left-pads shorter byte fields into
 * bytes32; the caller does the same. Strings are borrowed and NUL-terminated. */
struct cvm_chain_boot_info {
	uint8_t app_id[CVM_CHAIN_ADDRESS_LEN];
	uint8_t compose_hash[CVM_CHAIN_WORD_LEN];
	uint8_t instance_id[CVM_CHAIN_ADDRESS_LEN];
	uint8_t device_id[CVM_CHAIN_WORD_LEN];
	uint8_t mr_aggregated[CVM_CHAIN_WORD_LEN];
	uint8_t mr_system[CVM_CHAIN_WORD_LEN];
	uint8_t os_image_hash[CVM_CHAIN_WORD_LEN];
	const char *tcb_status;
	const char *const *advisory_ids;
	size_t advisory_count;
};

/* The canonical signatures of the two DstackKms functions. */
#define CVM_CHAIN_BOOT_INFO_TUPLE "(address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[])"
#define CVM_CHAIN_SIG_IS_APP_ALLOWED "isAppAllowed(" CVM_CHAIN_BOOT_INFO_TUPLE ")"
#define CVM_CHAIN_SIG_IS_KMS_ALLOWED "isKmsAllowed(" CVM_CHAIN_BOOT_INFO_TUPLE ")"

/* enum cvm_chain_query names which DstackKms function to ask. */
enum cvm_chain_query {
	CVM_CHAIN_APP = 0, /* isAppAllowed: may this app instance get its keys? */
	CVM_CHAIN_KMS = 1, /* isKmsAllowed: may this KMS node onboard? */
};

/* cvm_chain_selector writes the 4-byte function selector of the canonical
 * signature `sig` (its first 4 bytes of Keccak-256) to `out`. It does not
 * check that `sig` is canonical (no spaces, full type names). */
CVM_API void cvm_chain_selector(const char *sig, uint8_t out[CVM_CHAIN_SELECTOR_LEN]);

/* cvm_chain_encode_boot_call encodes the call data of `query` with `bi`:
 * selector || abi.encode(AppBootInfo), into a new buffer the caller frees.
 * Returns 0, CVM_E_INVAL (NULL tcb_status or advisory id, advisory_ids NULL
 * with a count), CVM_E_TOO_LARGE (a string over CVM_CHAIN_STRING_MAX, more
 * than CVM_CHAIN_ADVISORIES_MAX advisories) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_chain_encode_boot_call(enum cvm_chain_query query,
                                                      const struct cvm_chain_boot_info *bi, uint8_t **out,
                                                      size_t *out_len);

/* cvm_chain_decode_bool_string decodes the `len` ABI bytes at `buf` as the
 * return value (bool, string) and accepts only the canonical encoding: a
 * bool word of 0 or 1, the string at offset 0x40, zero padding, no trailing
 * byte, a string of at most CVM_CHAIN_STRING_MAX bytes with no control
 * character. On success `*is_allowed` is the bool and `reason` (of
 * `reason_len` bytes, at least 1) holds the string, cut to fit with a NUL.
 * On failure `*is_allowed` is false and `reason` is empty. Returns 0,
 * CVM_E_TRUNCATED, CVM_E_FORMAT or CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_chain_decode_bool_string(const uint8_t *buf, size_t len, bool *is_allowed,
                                                        char *reason, size_t reason_len);

/* cvm_chain_decode_string decodes the `len` ABI bytes at `buf` as the return
 * value (string) (for example DstackKms.gatewayAppId()), canonical only as
 * above, into `out` (of `out_len` bytes, at least 1), cut to fit with a NUL.
 * Returns 0, CVM_E_TRUNCATED, CVM_E_FORMAT or CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_chain_decode_string(const uint8_t *buf, size_t len, char *out, size_t out_len);

/* cvm_chain_rpc_reply_parse reads the `len` bytes at `buf` as the JSON-RPC
 * 2.0 reply to the request with id `id` whose result is one hex byte string
 * ("0x..."), and returns its bytes (at most CVM_CHAIN_RETURN_MAX) in a new
 * buffer the caller frees (non-NULL even when empty). A reply with an
 * "error" member gives CVM_E_UPSTREAM with its code and message in `err`.
 * Returns 0, CVM_E_FORMAT (not JSON-RPC 2.0, wrong id, bad hex),
 * CVM_E_TOO_LARGE, CVM_E_UPSTREAM or CVM_E_NOMEM; `err` (of `err_len`
 * bytes) says what was wrong. */
CVM_API CVM_MUST_CHECK int cvm_chain_rpc_reply_parse(const uint8_t *buf, size_t len, uint64_t id,
                                                     uint8_t **out, size_t *out_len, char *err,
                                                     size_t err_len);

/* struct cvm_chain_client names the node: an http:// or https:// URL and a
 * total time limit per call (0: 10 s). */
struct cvm_chain_client {
	const char *rpc_url;
	long timeout_ms;
};

/* cvm_chain_eth_call sends eth_call({to, data}, "latest") to the node and
 * returns the result's bytes in a new buffer the caller frees. It fails
 * (CVM_E_UPSTREAM, with the reason in `err`) when the node cannot be
 * reached, times out, answers a non-200 status, a body over
 * CVM_CHAIN_REPLY_MAX, or a JSON-RPC error (a revert included); CVM_E_FORMAT
 * when the reply is malformed; CVM_E_INVAL on a bad URL or arguments. */
CVM_API CVM_MUST_CHECK int cvm_chain_eth_call(const struct cvm_chain_client *c,
                                              const uint8_t to[CVM_CHAIN_ADDRESS_LEN], const uint8_t *data,
                                              size_t data_len, uint8_t **out, size_t *out_len, char *err,
                                              size_t err_len);

/* cvm_chain_is_allowed asks the DstackKms contract at `kms_contract`
 * `query` with `bi` and decodes its answer. It returns 0 only when the call
 * succeeded and decoded; `*is_allowed` is then the contract's answer and
 * `reason` its reason. On any error `*is_allowed` is false, `reason` empty,
 * and `err` says why: the caller must refuse (fail closed). An empty result
 * (no code at that address) is CVM_E_NOT_FOUND. Other returns as
 * cvm_chain_eth_call and cvm_chain_decode_bool_string. */
CVM_API CVM_MUST_CHECK int cvm_chain_is_allowed(const struct cvm_chain_client *c,
                                                const uint8_t kms_contract[CVM_CHAIN_ADDRESS_LEN],
                                                enum cvm_chain_query query,
                                                const struct cvm_chain_boot_info *bi, bool *is_allowed,
                                                char *reason, size_t reason_len, char *err, size_t err_len);

#endif
