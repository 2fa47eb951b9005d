/* Shared counters (verifier.h). Placeholder: the server replaces this file. */
#include "verifier.h"

void vd_metrics_verification(struct vd_ctx *ctx, enum vd_api api, enum vd_result result)
{
	(void)ctx, (void)api, (void)result;
}

void vd_metrics_collateral(struct vd_ctx *ctx, const struct cvm_cache_info *info)
{
	(void)ctx, (void)info;
}
