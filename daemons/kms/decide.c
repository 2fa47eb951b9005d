/* cvm-kmsd's decisions (kms.h): the authorization policy's answer, fail
 * closed, and the audit record of every decision, written before any key
 * leaves. */
#include <stdio.h>
#include <string.h>

#include <cvmkit/audit.h>
#include <cvmkit/encoding.h>
#include <cvmkit/kmsauth.h>

#include "daemon.h"
#include "httpd.h"
#include "kms.h"
#include "rpc.h"

int kms_decide(struct kms *k, enum cvm_auth_kind kind, const struct cvm_boot_info *bi,
               struct cvm_auth_decision *d, char *err, size_t err_len)
{
	memset(d, 0, sizeof(*d));
	if (k->auth == NULL) {
		(void)snprintf(err, err_len, "no authorization policy is configured ([auth] type = none)");
		return CVM_E_POLICY;
	}
	return cvm_auth_decide(k->auth, kind, bi, d, err, err_len);
}

/* printable copies `s` into `out` as printable ASCII (others become '?'),
 * cut to fit: the audit log refuses anything else. */
static void printable(char *out, size_t cap, const char *s)
{
	size_t i = 0;

	for (; s != NULL && s[i] != '\0' && i + 1 < cap; i++) {
		out[i] = s[i];
		if (s[i] < 0x20 || s[i] >= 0x7f)
			out[i] = '?';
	}
	out[i] = '\0';
}

int kms_audit(struct kms *k, const char *method, struct cvm_rpc_call *c, const struct cvm_boot_info *bi,
              const char *decision, const char *reason, const char *keys, uint32_t epoch)
{
	struct cvm_audit_record rec;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	char hex[2 * CVM_AUDIT_HASH_LEN + 1];
	uint64_t seq = 0;
	int r;

	if (k->audit == NULL)
		return CVM_OK;
	memset(&rec, 0, sizeof(rec));
	printable(rec.node, sizeof(rec.node), k->node_name);
	printable(rec.method, sizeof(rec.method), method);
	printable(rec.peer, sizeof(rec.peer), c != NULL ? cvm_http_req_peer(c->http) : "-");
	printable(rec.decision, sizeof(rec.decision), decision);
	printable(rec.reason, sizeof(rec.reason), reason);
	printable(rec.keys, sizeof(rec.keys), keys);
	rec.epoch = epoch;
	if (bi != NULL) {
		printable(rec.tee, sizeof(rec.tee), bi->tee_variant);
		cvm_hex_encode(bi->app_id, sizeof(bi->app_id), rec.app_id);
		if (bi->has_instance_id)
			cvm_hex_encode(bi->instance_id, sizeof(bi->instance_id), rec.instance_id);
		cvm_hex_encode(bi->compose_hash, sizeof(bi->compose_hash), rec.compose_hash);
		cvm_hex_encode(bi->device_id, sizeof(bi->device_id), rec.device_id);
		cvm_hex_encode(bi->mr_aggregated, sizeof(bi->mr_aggregated), rec.mr_aggregated);
		cvm_hex_encode(bi->os_image_hash, sizeof(bi->os_image_hash), rec.os_image_hash);
	}
	r = cvm_audit_append(k->audit, &rec, &seq, head);
	if (r != CVM_OK) {
		char kv[CVM_KV_MAX];

		cvm_daemon_log(CVM_LOG_ERROR, "audit_failed", "method=%s decision=%s reason=%s", method,
		               decision, cvm_kv(cvm_audit_error(k->audit), kv));
		return r;
	}
	cvm_hex_encode(head, sizeof(head), hex);
	cvm_daemon_log(CVM_LOG_INFO, "audit_head", "seq=%llu head=%s", (unsigned long long)seq, hex);
	return CVM_OK;
}
