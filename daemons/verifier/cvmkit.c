/* cvmkit's own verify call (verifier.h). Placeholder. */
#include "verifier.h"

void vd_cvmkit_verify(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	(void)ctx, (void)req;
	cvm_http_resp_error(resp, 501, "POST /cvmkit/v1/verify is not implemented yet");
}
