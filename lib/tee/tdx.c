/* Intel TDX guest backend: quotes through configfs-tsm (the kernel's
 * GetQuote path), registers and RTMR extension through the tdx_guest
 * measurements folder (Linux 6.16+) or /dev/tdx_guest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/ioctl.h>

#include <cvmkit/bytes.h>
#include <cvmkit/log.h>
#include <cvmkit/quote.h>
#include <cvmkit/secret.h>

#include "tee_int.h"

/* The tdx_guest ABI (include/uapi/linux/tdx-guest.h). Debian's kernel
 * headers predate it, so the layouts are written out and checked here. */
struct tdx_report_req {
	uint8_t reportdata[CVM_TEE_REPORT_DATA_LEN];
	uint8_t tdreport[TEE_TDREPORT_LEN];
};
_Static_assert(sizeof(struct tdx_report_req) == 1088, "tdx_report_req layout");

struct tdx_extend_rtmr_req {
	uint8_t data[CVM_TEE_MR_LEN];
	uint8_t index;
};
_Static_assert(sizeof(struct tdx_extend_rtmr_req) == 49, "tdx_extend_rtmr_req layout");

#define TDX_CMD_GET_REPORT0 _IOWR('T', 1, struct tdx_report_req)
/* TDX_CMD_EXTEND_RTMR never reached mainline; kernels that carry it define
 * it as _IOW or, in older releases, _IOR. */
#define TDX_CMD_EXTEND_RTMR _IOW('T', 3, struct tdx_extend_rtmr_req)
#define TDX_CMD_EXTEND_RTMR_OLD _IOR('T', 3, struct tdx_extend_rtmr_req)

static int tdx_quote(struct cvm_tee_dev *tee, const uint8_t rd[CVM_TEE_REPORT_DATA_LEN],
                     struct cvm_tee_evidence *out)
{
	struct tee_tsm_req req = {.provider = "tdx_guest", .inblob = rd};

	if ((tee->info.interfaces & CVM_TEE_IF_TSM_REPORT) == 0)
		return CVM_E_UNSUPPORTED;
	return tee_tsm_report(tee, &req, out);
}

static int mr_path(const struct cvm_tee_dev *tee, char *buf, size_t cap, const char *name)
{
	char rel[128];
	int n = snprintf(rel, sizeof(rel), "%s/%s", TEE_TDX_MR_DIR, name);

	if (n < 0 || (size_t)n >= sizeof(rel))
		return CVM_E_INTERNAL;
	return tee_path(tee, buf, cap, rel);
}

static int rtmr_name(unsigned index, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "rtmr%u:sha384", index);

	return n < 0 || (size_t)n >= cap ? CVM_E_INTERNAL : CVM_OK;
}

static int tdx_extend(struct cvm_tee_dev *tee, unsigned index, const uint8_t digest[CVM_TEE_MR_LEN])
{
	struct tdx_extend_rtmr_req req;
	char path[TEE_PATH_MAX], name[32];
	int r;

	if (tee->info.interfaces & CVM_TEE_IF_TDX_MEASUREMENTS) {
		r = rtmr_name(index, name, sizeof(name));
		if (r == CVM_OK)
			r = mr_path(tee, path, sizeof(path), name);
		if (r != CVM_OK)
			return r;
		return tee_attr_write(tee, path, digest, CVM_TEE_MR_LEN);
	}
	if ((tee->info.interfaces & CVM_TEE_IF_TDX_GUEST) == 0)
		return CVM_E_UNSUPPORTED;
	memset(&req, 0, sizeof(req));
	memcpy(req.data, digest, sizeof(req.data));
	req.index = (uint8_t)index;
	r = tee_ioctl(tee, TEE_TDX_GUEST_DEV, TDX_CMD_EXTEND_RTMR, &req);
	if (r == CVM_E_SYSTEM && errno == ENOTTY)
		r = tee_ioctl(tee, TEE_TDX_GUEST_DEV, TDX_CMD_EXTEND_RTMR_OLD, &req);
	if (r == CVM_E_SYSTEM && errno == ENOTTY) {
		cvm_debug("this kernel's tdx_guest cannot extend RTMRs (no measurements folder, no ioctl)");
		r = CVM_E_UNSUPPORTED;
	}
	return r;
}

/* read_mr reads one 48-byte register file of the measurements folder. */
static int read_mr(const struct cvm_tee_dev *tee, const char *name, uint8_t out[CVM_TEE_MR_LEN])
{
	char path[TEE_PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = mr_path(tee, path, sizeof(path), name);
	if (r != CVM_OK)
		return r;
	r = tee_attr_read(tee, path, CVM_TEE_MR_LEN, &buf, &len);
	if (r == CVM_E_TOO_LARGE)
		r = CVM_E_FORMAT;
	if (r != CVM_OK)
		return r;
	if (len != CVM_TEE_MR_LEN)
		r = CVM_E_FORMAT;
	else
		memcpy(out, buf, CVM_TEE_MR_LEN);
	free(buf);
	return r;
}

static int measurements_sysfs(const struct cvm_tee_dev *tee, struct cvm_tee_measurements *out)
{
	char name[32];
	int r;

	r = read_mr(tee, "mrtd:sha384", out->mrtd);
	for (unsigned i = 0; i < CVM_TEE_RTMR_COUNT && r == CVM_OK; i++) {
		r = rtmr_name(i, name, sizeof(name));
		if (r == CVM_OK)
			r = read_mr(tee, name, out->rtmr[i]);
	}
	return r;
}

/* measurements_tdreport takes MRTD and the RTMRs from a TDREPORT (its TDINFO
 * part); the report's MAC is not checked here. */
static int measurements_tdreport(const struct cvm_tee_dev *tee, struct cvm_tee_measurements *out)
{
	struct tdx_report_req *req;
	struct cvm_rd rd;
	int r;

	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return CVM_E_NOMEM;
	r = tee_ioctl(tee, TEE_TDX_GUEST_DEV, TDX_CMD_GET_REPORT0, req);
	if (r != CVM_OK)
		goto out;
	cvm_rd_init(&rd, req->tdreport, sizeof(req->tdreport));
	if (!cvm_rd_skip(&rd, TEE_TDREPORT_MRTD) || !cvm_rd_copy(&rd, out->mrtd, sizeof(out->mrtd)) ||
	    !cvm_rd_skip(&rd, TEE_TDREPORT_RTMR0 - TEE_TDREPORT_MRTD - CVM_TEE_MR_LEN)) {
		r = CVM_E_INTERNAL;
		goto out;
	}
	for (unsigned i = 0; i < CVM_TEE_RTMR_COUNT; i++) {
		if (!cvm_rd_copy(&rd, out->rtmr[i], CVM_TEE_MR_LEN)) {
			r = CVM_E_INTERNAL;
			goto out;
		}
	}
out:
	free(req);
	return r;
}

/* measurements_quote takes them from a quote's TD body, when only
 * configfs-tsm is there. */
static int measurements_quote(struct cvm_tee_dev *tee, struct cvm_tee_measurements *out)
{
	static const uint8_t zero[CVM_TEE_REPORT_DATA_LEN];
	struct cvm_tee_evidence ev;
	struct cvm_quote *q;
	int r;

	memset(&ev, 0, sizeof(ev));
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return CVM_E_NOMEM;
	r = tdx_quote(tee, zero, &ev);
	if (r != CVM_OK)
		goto out;
	r = cvm_quote_parse(ev.data, ev.data_len, q);
	if (r == CVM_OK && q->tee != CVM_TEE_TDX)
		r = CVM_E_FORMAT;
	if (r != CVM_OK)
		goto out;
	memcpy(out->mrtd, q->body.td.mr_td, sizeof(out->mrtd));
	memcpy(out->rtmr, q->body.td.rtmr, sizeof(out->rtmr));
out:
	cvm_tee_evidence_cleanup(&ev);
	free(q);
	return r;
}

static int tdx_measurements(struct cvm_tee_dev *tee, struct cvm_tee_measurements *out)
{
	if (tee->info.interfaces & CVM_TEE_IF_TDX_MEASUREMENTS)
		return measurements_sysfs(tee, out);
	if (tee->info.interfaces & CVM_TEE_IF_TDX_GUEST)
		return measurements_tdreport(tee, out);
	if (tee->info.interfaces & CVM_TEE_IF_TSM_REPORT)
		return measurements_quote(tee, out);
	return CVM_E_UNSUPPORTED;
}

static const struct tee_ops tdx_ops = {
    .quote = tdx_quote,
    .extend = tdx_extend,
    .measurements = tdx_measurements,
    .free_priv = NULL,
};

int tee_tdx_attach(struct cvm_tee_dev *tee)
{
	struct cvm_tee_info *info = &tee->info;

	memset(info, 0, sizeof(*info));
	info->platform = CVM_TEE_PLATFORM_TDX;
	if (tee_exists(tee, TEE_TSM_REPORT_DIR))
		info->interfaces |= CVM_TEE_IF_TSM_REPORT;
	if (tee_exists(tee, TEE_TDX_GUEST_DEV))
		info->interfaces |= CVM_TEE_IF_TDX_GUEST;
	if (tee_exists(tee, TEE_TDX_MR_DIR))
		info->interfaces |= CVM_TEE_IF_TDX_MEASUREMENTS;
	if ((info->interfaces & (CVM_TEE_IF_TDX_GUEST | CVM_TEE_IF_TDX_MEASUREMENTS)) == 0) {
		/* configfs-tsm alone could be any provider: not a TDX guest we
		 * can recognise without making a report entry */
		if ((info->interfaces & CVM_TEE_IF_TSM_REPORT) == 0)
			return CVM_E_UNSUPPORTED;
	}
	(void)snprintf(info->provider, sizeof(info->provider), "tdx_guest");
	(void)snprintf(info->description, sizeof(info->description),
	               "Intel TDX guest (quotes:%s; registers:%s)",
	               (info->interfaces & CVM_TEE_IF_TSM_REPORT) ? " configfs-tsm" : " none",
	               (info->interfaces & CVM_TEE_IF_TDX_MEASUREMENTS) ? " tdx_guest measurements"
	               : (info->interfaces & CVM_TEE_IF_TDX_GUEST)      ? " /dev/tdx_guest"
	                                                                : " from quotes");
	tee->ops = &tdx_ops;
	return CVM_OK;
}
