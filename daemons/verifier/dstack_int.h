/* dstack's POST /verify inside cvm-verifierd: the parts of dstack.c that
 * the unit tests and the fuzz target reach (not a public interface). */
#ifndef CVM_VERIFIER_DSTACK_INT_H
#define CVM_VERIFIER_DSTACK_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cvmkit/collateral.h>
#include <cvmkit/dcap.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>

#include "verifier.h"

/* Caps on the request's fields (the body itself is capped by the server). */
#define DSTACK_EVENT_LOG_MAX ((size_t)4 * 1024 * 1024) /* the event_log JSON text */
#define DSTACK_EVENTS_MAX 4096u                        /* entries in it */
#define DSTACK_PAYLOAD_MAX ((size_t)256 * 1024)        /* one event's payload */
#define DSTACK_VM_CONFIG_MAX ((size_t)256 * 1024)      /* the vm_config JSON text */

/* dstack_quote_fn verifies a TDX quote by Intel's rules and the worker's
 * policy at `now` and fills `res` (as far as it got), `info` and `rep`;
 * `err` says why it failed when the cause is not a step of `rep`. It
 * returns 0 only when the quote is authentic and the policy accepts it. */
typedef int (*dstack_quote_fn)(struct vd_ctx *ctx, const uint8_t *quote, size_t len, int64_t now,
                               struct cvm_dcap_result *res, struct cvm_cache_info *info,
                               struct cvm_report *rep, char *err, size_t err_len);

/* dstack_quote_cache is the service's dstack_quote_fn: collateral from the
 * worker's cache (cvm_cache_dcap_warm), then cvm_verify_quote_warm. */
int dstack_quote_cache(struct vd_ctx *ctx, const uint8_t *quote, size_t len, int64_t now,
                       struct cvm_dcap_result *res, struct cvm_cache_info *info, struct cvm_report *rep,
                       char *err, size_t err_len);

/* dstack_verify is vd_dstack_verify with the quote verified by `quote_fn`
 * (vd_dstack_verify passes dstack_quote_cache). */
void dstack_verify(struct vd_ctx *ctx, const uint8_t *body, size_t len, struct cvm_http_resp *resp,
                   dstack_quote_fn quote_fn);

#endif
