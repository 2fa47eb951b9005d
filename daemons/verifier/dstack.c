/* dstack-verifier's POST /verify (verifier.h). Placeholder. */
#include "verifier.h"

void vd_dstack_verify(struct vd_ctx *ctx, const uint8_t *body, size_t len, struct cvm_http_resp *resp)
{
	(void)ctx, (void)body, (void)len;
	cvm_http_resp_error(resp, 501, "POST /verify is not implemented yet");
}
