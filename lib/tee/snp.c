/* AMD SEV-SNP guest backend: attestation reports through configfs-tsm
 * (provider "sev_guest"; auxblob holds the certificate table) or through
 * /dev/sev-guest (SNP_GET_EXT_REPORT, falling back to SNP_GET_REPORT). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/ioctl.h>

#include <cvmkit/bytes.h>
#include <cvmkit/log.h>

#include "tee_int.h"

/* The sev-guest ABI (include/uapi/linux/sev-guest.h), written out so that
 * its layout is checked here rather than assumed. */
struct snp_report_req {
	uint8_t user_data[CVM_TEE_REPORT_DATA_LEN];
	uint32_t vmpl;
	uint8_t rsvd[28];
};
_Static_assert(sizeof(struct snp_report_req) == 96, "snp_report_req layout");

struct snp_report_resp {
	uint8_t data[4000];
};

struct snp_guest_request_ioctl {
	uint8_t msg_version;
	uint64_t req_data;
	uint64_t resp_data;
	uint64_t exitinfo2; /* bits 63:32 VMM error, 31:0 firmware error */
};
_Static_assert(sizeof(struct snp_guest_request_ioctl) == 32, "snp_guest_request_ioctl layout");

struct snp_ext_report_req {
	struct snp_report_req data;
	uint64_t certs_address;
	uint32_t certs_len;
};
_Static_assert(sizeof(struct snp_ext_report_req) == 112, "snp_ext_report_req layout");

#define SNP_GET_REPORT _IOWR('S', 0x0, struct snp_guest_request_ioctl)
#define SNP_GET_EXT_REPORT _IOWR('S', 0x2, struct snp_guest_request_ioctl)
#define SNP_VMM_ERR_INVALID_LEN 1u
#define SNP_CERTS_FIRST_LEN ((size_t)16 * 1024) /* four pages, what hosts usually need */
#define SNP_MSG_REPORT_RSP_HDR 32u              /* status, report_size, reserved[24] */

/* parse_resp takes the report out of a MSG_REPORT_RSP (SEV-SNP firmware ABI,
 * table "MSG_REPORT_RSP"): status 0, then a report of the size it says. */
static int parse_resp(const struct snp_report_resp *resp, struct cvm_tee_evidence *out)
{
	struct cvm_rd rd;
	const uint8_t *report;
	uint32_t status, size;

	cvm_rd_init(&rd, resp->data, sizeof(resp->data));
	if (!cvm_rd_u32le(&rd, &status) || !cvm_rd_u32le(&rd, &size) ||
	    !cvm_rd_skip(&rd, SNP_MSG_REPORT_RSP_HDR - 8u))
		return CVM_E_INTERNAL;
	if (status != 0) {
		cvm_debug("SNP firmware answered MSG_REPORT_RSP status 0x%x", status);
		errno = EIO;
		return CVM_E_SYSTEM;
	}
	if (size != TEE_SNP_REPORT_LEN || !cvm_rd_bytes(&rd, &report, size)) {
		cvm_debug("SNP report of %u bytes, expected %u", size, TEE_SNP_REPORT_LEN);
		return CVM_E_FORMAT;
	}
	out->data = malloc(size);
	if (out->data == NULL)
		return CVM_E_NOMEM;
	memcpy(out->data, report, size);
	out->data_len = size;
	return CVM_OK;
}

static int quote_ioctl(struct cvm_tee_dev *tee, const uint8_t rd[CVM_TEE_REPORT_DATA_LEN],
                       struct cvm_tee_evidence *out)
{
	struct snp_ext_report_req ext;
	struct snp_guest_request_ioctl g;
	struct snp_report_resp *resp = NULL;
	uint8_t *certs = NULL;
	size_t certs_cap = SNP_CERTS_FIRST_LEN;
	int r = CVM_E_INTERNAL;

	resp = calloc(1, sizeof(*resp));
	if (resp == NULL)
		return CVM_E_NOMEM;
	memset(&ext, 0, sizeof(ext));
	memcpy(ext.data.user_data, rd, sizeof(ext.data.user_data));
	ext.data.vmpl = tee->privlevel_set ? tee->privlevel : 0u;
	/* At most two rounds: the host tells how large its certificates are. */
	for (int round = 0; round < 2; round++) {
		free(certs);
		certs = calloc(1, certs_cap);
		if (certs == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		ext.certs_address = (uint64_t)(uintptr_t)certs;
		ext.certs_len = (uint32_t)certs_cap;
		memset(&g, 0, sizeof(g));
		g.msg_version = 1;
		g.req_data = (uint64_t)(uintptr_t)&ext;
		g.resp_data = (uint64_t)(uintptr_t)resp;
		r = tee_ioctl(tee, TEE_SEV_GUEST_DEV, SNP_GET_EXT_REPORT, &g);
		if (r == CVM_OK || (g.exitinfo2 >> 32) != SNP_VMM_ERR_INVALID_LEN)
			break;
		if (ext.certs_len <= certs_cap || ext.certs_len > CVM_TEE_AUX_MAX) {
			cvm_debug("the host wants a %u-byte certificate buffer", ext.certs_len);
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		certs_cap = ext.certs_len;
	}
	if (r == CVM_E_SYSTEM && errno == ENOTTY) {
		/* kernels without extended reports: the report alone */
		struct snp_report_req plain;

		memcpy(&plain, &ext.data, sizeof(plain));
		memset(&g, 0, sizeof(g));
		g.msg_version = 1;
		g.req_data = (uint64_t)(uintptr_t)&plain;
		g.resp_data = (uint64_t)(uintptr_t)resp;
		ext.certs_len = 0;
		r = tee_ioctl(tee, TEE_SEV_GUEST_DEV, SNP_GET_REPORT, &g);
	}
	if (r != CVM_OK) {
		cvm_debug("sev-guest ioctl failed: firmware error 0x%x, VMM error 0x%x",
		          (unsigned)g.exitinfo2, (unsigned)(g.exitinfo2 >> 32));
		goto out;
	}
	r = parse_resp(resp, out);
	if (r != CVM_OK)
		goto out;
	if (ext.certs_len > 0 && ext.certs_len <= certs_cap) {
		out->aux = certs;
		out->aux_len = ext.certs_len;
		certs = NULL; /* transferred */
	}
out:
	free(certs);
	free(resp);
	return r;
}

static int snp_quote(struct cvm_tee_dev *tee, const uint8_t rd[CVM_TEE_REPORT_DATA_LEN],
                     struct cvm_tee_evidence *out)
{
	struct tee_tsm_req req = {.provider = "sev_guest", .inblob = rd, .want_aux = true};
	int r;

	if (tee->info.interfaces & CVM_TEE_IF_TSM_REPORT) {
		req.set_privlevel = tee->privlevel_set;
		req.privlevel = tee->privlevel;
		r = tee_tsm_report(tee, &req, out);
		if (r != CVM_OK)
			return r;
		if (out->data_len != TEE_SNP_REPORT_LEN) {
			cvm_debug("sev_guest outblob of %zu bytes, expected %u", out->data_len,
			          TEE_SNP_REPORT_LEN);
			return CVM_E_FORMAT;
		}
		return CVM_OK;
	}
	if (tee->info.interfaces & CVM_TEE_IF_SEV_GUEST)
		return quote_ioctl(tee, rd, out);
	return CVM_E_UNSUPPORTED;
}

static int snp_measurements(struct cvm_tee_dev *tee, struct cvm_tee_measurements *out)
{
	static const uint8_t zero[CVM_TEE_REPORT_DATA_LEN];
	struct cvm_tee_evidence ev;
	struct cvm_rd rd;
	int r;

	r = cvm_tee_quote(tee, zero, &ev);
	if (r != CVM_OK)
		return r;
	cvm_rd_init(&rd, ev.data, ev.data_len);
	if (!cvm_rd_skip(&rd, TEE_SNP_MEASUREMENT) ||
	    !cvm_rd_copy(&rd, out->measurement, sizeof(out->measurement)) ||
	    !cvm_rd_skip(&rd, TEE_SNP_HOST_DATA - TEE_SNP_MEASUREMENT - CVM_TEE_MR_LEN) ||
	    !cvm_rd_copy(&rd, out->host_data, sizeof(out->host_data)))
		r = CVM_E_FORMAT;
	cvm_tee_evidence_cleanup(&ev);
	return r;
}

static const struct tee_ops snp_ops = {
    .quote = snp_quote,
    .extend = NULL,
    .measurements = snp_measurements,
    .free_priv = NULL,
};

int tee_snp_attach(struct cvm_tee_dev *tee)
{
	struct cvm_tee_info *info = &tee->info;

	memset(info, 0, sizeof(*info));
	info->platform = CVM_TEE_PLATFORM_SNP;
	if (tee_exists(tee, TEE_TSM_REPORT_DIR))
		info->interfaces |= CVM_TEE_IF_TSM_REPORT;
	if (tee_exists(tee, TEE_SEV_GUEST_DEV))
		info->interfaces |= CVM_TEE_IF_SEV_GUEST;
	if (info->interfaces == 0)
		return CVM_E_UNSUPPORTED;
	(void)snprintf(info->provider, sizeof(info->provider), "sev_guest");
	(void)snprintf(info->description, sizeof(info->description), "AMD SEV-SNP guest (reports: %s)",
	               (info->interfaces & CVM_TEE_IF_TSM_REPORT) ? "configfs-tsm" : "/dev/sev-guest");
	tee->ops = &snp_ops;
	return CVM_OK;
}
