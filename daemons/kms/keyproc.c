/* The key process of cvm-kmsd (kms.h): forked before any root is read, it
 * loads the roots, then answers fixed questions over a SOCK_SEQPACKET
 * socketpair until the channel closes.
 *
 * Messages, both ways, at most KP_MSG_MAX bytes, fields little-endian:
 *   request:  u8 op, then the op's fields
 *   answer:   i32 status (0 or a CVM_E_*), then the op's fields, or on an
 *             error a u32-prefixed one-line reason
 *   bytes and strings: u32 length, then the bytes (strings without NUL)
 * Every request is read with the bounded reader, and a request that does
 * not decode exactly (short, long, unknown op) gets CVM_E_FORMAT: the
 * network process is the less trusted side. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/csr.h>
#include <cvmkit/envcrypt.h>
#include <cvmkit/kms.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tpm.h>

#include "daemon.h"
#include "kms.h"

#define KP_REASON_MAX 256
#define KP_DOMAIN_MAX 253
#define KP_KEY_PEM_MAX 4096
#define KP_LIFETIME_MAX ((uint64_t)366 * 24 * 3600)

/* ---- encoding ----------------------------------------------------------- */

static void wr_blob(struct cvm_wr *w, const void *p, size_t n)
{
	cvm_wr_u32le(w, (uint32_t)n);
	if (n > 0)
		cvm_wr_bytes(w, p, n);
}

static bool rd_blob(struct cvm_rd *r, const uint8_t **p, size_t *n, size_t max)
{
	struct cvm_rd sub;

	if (!cvm_rd_sub_u32le(r, &sub) || sub.len > max)
		return false;
	*p = sub.p;
	*n = sub.len;
	return true;
}

/* error_answer makes the answer for a failed request. */
__attribute__((format(printf, 4, 5))) static int error_answer(int status, uint8_t **resp, size_t *resp_len,
                                                              const char *fmt, ...)
{
	char why[KP_REASON_MAX];
	struct cvm_wr w;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u32le(&w, (uint32_t)status);
	wr_blob(&w, why, strlen(why));
	return cvm_wr_finish(&w, resp, resp_len);
}

static struct cvm_kms_roots *roots_of(struct kp_state *st, uint32_t epoch)
{
	for (size_t i = 0; i < st->count; i++)
		if (cvm_kms_roots_epoch(st->roots[i]) == epoch)
			return st->roots[i];
	return NULL;
}

/* ---- the questions -------------------------------------------------------- */

static int op_meta(struct kp_state *st, struct cvm_rd *r, uint8_t **resp, size_t *resp_len)
{
	struct cvm_kms_roots *cur = st->roots[0];
	const char *ca = cvm_kms_roots_ca_cert(cur);
	uint8_t pub[CVM_K256_PUBKEY_LEN];
	struct cvm_secret *tkey = NULL;
	char *tcert = NULL;
	struct cvm_wr w;
	bool has_k = false;
	int rc;

	if (!cvm_rd_empty(r))
		return error_answer(CVM_E_FORMAT, resp, resp_len, "meta: trailing bytes");
	if (cvm_kms_roots_has(cur, CVM_KMS_ROOT_K256_KEY)) {
		rc = cvm_kms_roots_k256_public(cur, pub);
		if (rc != CVM_OK)
			return error_answer(rc, resp, resp_len, "meta: the k256 root's public key: %s",
			                    cvm_strerror(rc));
		has_k = true;
	}
	if (cvm_kms_roots_has(cur, CVM_KMS_ROOT_TMP_CA_KEY) &&
	    cvm_kms_roots_has(cur, CVM_KMS_ROOT_TMP_CA_CERT)) {
		rc = cvm_kms_roots_tmp_ca(cur, &tcert, &tkey);
		if (rc != CVM_OK)
			return error_answer(rc, resp, resp_len, "meta: the temp CA: %s", cvm_strerror(rc));
	}
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u32le(&w, 0);
	cvm_wr_u32le(&w, cvm_kms_roots_epoch(cur));
	wr_blob(&w, ca, ca != NULL ? strlen(ca) : 0);
	cvm_wr_u8(&w, has_k ? 1 : 0);
	cvm_wr_bytes(&w, has_k ? pub : (const uint8_t[CVM_K256_PUBKEY_LEN]){0}, CVM_K256_PUBKEY_LEN);
	wr_blob(&w, tcert, tcert != NULL ? strlen(tcert) : 0);
	wr_blob(&w, tkey != NULL ? tkey->p : NULL, tkey != NULL ? tkey->len : 0);
	free(tcert);
	cvm_secret_free(tkey);
	return cvm_wr_finish(&w, resp, resp_len);
}

static int op_app_keys(struct kp_state *st, struct cvm_rd *r, uint8_t **resp, size_t *resp_len)
{
	struct cvm_kms_app_keys k;
	struct cvm_kms_roots *roots;
	uint8_t app_id[CVM_APP_ID_LEN];
	const uint8_t *iid = NULL;
	size_t iid_len = 0;
	uint32_t epoch;
	struct cvm_wr w;
	const unsigned need = CVM_KMS_KEY_DISK | CVM_KMS_KEY_ENV | CVM_KMS_KEY_K256;
	int rc;

	if (!cvm_rd_u32le(r, &epoch) || !cvm_rd_copy(r, app_id, sizeof(app_id)) ||
	    !rd_blob(r, &iid, &iid_len, CVM_INSTANCE_ID_LEN) || !cvm_rd_empty(r) ||
	    (iid_len != 0 && iid_len != CVM_INSTANCE_ID_LEN))
		return error_answer(CVM_E_FORMAT, resp, resp_len, "app keys: a malformed request");
	roots = roots_of(st, epoch);
	if (roots == NULL)
		return error_answer(CVM_E_NOT_FOUND, resp, resp_len, "app keys: epoch %u is not loaded",
		                    (unsigned)epoch);
	memset(&k, 0, sizeof(k));
	rc = cvm_kms_app_keys_some(roots, app_id, iid, iid_len, epoch, need, &k);
	if (rc == CVM_OK && (k.present & need) != need)
		rc = CVM_E_NOT_FOUND;
	if (rc != CVM_OK) {
		cvm_kms_app_keys_cleanup(&k);
		return error_answer(rc, resp, resp_len, "app keys: %s",
		                    rc == CVM_E_NOT_FOUND
		                        ? "this epoch lacks the root CA key or the k256 root"
		                        : cvm_strerror(rc));
	}
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u32le(&w, 0);
	cvm_wr_u32le(&w, epoch);
	cvm_wr_bytes(&w, k.disk_crypt_key->p, 32);
	cvm_wr_bytes(&w, k.env_crypt_key->p, 32);
	cvm_wr_bytes(&w, k.env_crypt_public_key, 32);
	cvm_wr_bytes(&w, k.k256_key->p, 32);
	cvm_wr_bytes(&w, k.k256_signature, CVM_K256_RSIG_LEN);
	cvm_kms_app_keys_cleanup(&k);
	return cvm_wr_finish(&w, resp, resp_len);
}

static int op_rpc_cert(struct kp_state *st, struct cvm_rd *r, uint8_t **resp, size_t *resp_len)
{
	const uint8_t *key_pem, *domain, *va_bytes;
	size_t key_len, domain_len, va_len, chain_len = 0;
	struct cvm_p256_keypair *kp = NULL;
	struct cvm_ratls_evidence ev, *evp = NULL;
	struct cvm_va *va = NULL;
	char dom[KP_DOMAIN_MAX + 1], why[KP_REASON_MAX] = "";
	char *chain = NULL;
	uint64_t lifetime;
	struct cvm_wr w;
	int rc;

	if (!rd_blob(r, &key_pem, &key_len, KP_KEY_PEM_MAX) ||
	    !rd_blob(r, &domain, &domain_len, KP_DOMAIN_MAX) || !rd_blob(r, &va_bytes, &va_len, KP_MSG_MAX) ||
	    !cvm_rd_u64le(r, &lifetime) || !cvm_rd_empty(r) || domain_len == 0 ||
	    memchr(domain, '\0', domain_len) != NULL || lifetime == 0 || lifetime > KP_LIFETIME_MAX)
		return error_answer(CVM_E_FORMAT, resp, resp_len, "rpc cert: a malformed request");
	memcpy(dom, domain, domain_len);
	dom[domain_len] = '\0';
	rc = cvm_p256_keypair_from_pem((const char *)key_pem, key_len, &kp);
	if (rc != CVM_OK)
		return error_answer(rc, resp, resp_len, "rpc cert: the key does not parse");
	memset(&ev, 0, sizeof(ev));
	if (va_len > 0) {
		rc = cvm_va_decode(va_bytes, va_len, &va, why, sizeof(why));
		if (rc != CVM_OK) {
			cvm_p256_keypair_free(kp);
			return error_answer(rc, resp, resp_len,
			                    "rpc cert: the attestation does not decode: %s", why);
		}
		ev.tee = va->tee;
		ev.quote = va->quote;
		ev.quote_len = va->quote_len;
		ev.events = va->events;
		ev.event_count = va->event_count;
		ev.config = va->config;
		evp = &ev;
	}
	rc = cvm_kms_issue_rpc_cert(st->roots[0], kp, dom, evp, (int64_t)time(NULL), (int64_t)lifetime,
	                            &chain, &chain_len);
	cvm_va_free(va);
	cvm_p256_keypair_free(kp);
	if (rc != CVM_OK)
		return error_answer(rc, resp, resp_len, "rpc cert: cannot issue it: %s", cvm_strerror(rc));
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u32le(&w, 0);
	wr_blob(&w, chain, chain_len);
	free(chain);
	return cvm_wr_finish(&w, resp, resp_len);
}

static int op_kms_keys(struct kp_state *st, struct cvm_rd *r, uint8_t **resp, size_t *resp_len)
{
	struct cvm_wr w;
	int rc = CVM_OK;

	if (!cvm_rd_empty(r))
		return error_answer(CVM_E_FORMAT, resp, resp_len, "kms keys: trailing bytes");
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u32le(&w, 0);
	cvm_wr_u32le(&w, (uint32_t)st->count);
	for (size_t i = 0; i < st->count && rc == CVM_OK; i++) {
		const struct cvm_kms_roots *roots = st->roots[i];
		const struct cvm_secret *k256 = NULL;
		struct cvm_secret *ca_key = NULL, *tkey = NULL;
		const char *ca_cert = cvm_kms_roots_ca_cert(roots);
		char *tcert = NULL;

		rc = cvm_kms_roots_ca_key_pem(roots, &ca_key);
		if (rc == CVM_OK)
			rc = cvm_kms_roots_k256_secret(roots, &k256);
		if (rc == CVM_OK && ca_cert == NULL)
			rc = CVM_E_NOT_FOUND;
		if (rc == CVM_OK && cvm_kms_roots_has(roots, CVM_KMS_ROOT_TMP_CA_KEY) &&
		    cvm_kms_roots_has(roots, CVM_KMS_ROOT_TMP_CA_CERT))
			rc = cvm_kms_roots_tmp_ca(roots, &tcert, &tkey);
		if (rc == CVM_OK) {
			cvm_wr_u32le(&w, cvm_kms_roots_epoch(roots));
			wr_blob(&w, ca_key->p, ca_key->len);
			wr_blob(&w, ca_cert, strlen(ca_cert));
			cvm_wr_bytes(&w, k256->p, CVM_K256_SECKEY_LEN);
			wr_blob(&w, tkey != NULL ? tkey->p : NULL, tkey != NULL ? tkey->len : 0);
			wr_blob(&w, tcert, tcert != NULL ? strlen(tcert) : 0);
		}
		cvm_secret_free(ca_key);
		cvm_secret_free(tkey);
		free(tcert);
	}
	if (rc != CVM_OK) {
		cvm_wr_cleanup(&w);
		return error_answer(rc, resp, resp_len, "kms keys: epoch roots incomplete: %s",
		                    cvm_strerror(rc));
	}
	return cvm_wr_finish(&w, resp, resp_len);
}

/* op_sign_csr issues the leaf of an already verified and authorized CSR
 * under the app's CA (derived here: it never leaves this process). The
 * request names the app id the network process read from the verified
 * attestation; the CSR is decoded again here, with the bounded reader. */
static int op_sign_csr(struct kp_state *st, struct cvm_rd *r, uint8_t **resp, size_t *resp_len)
{
	struct cvm_kms_app_keys k;
	struct cvm_kms_roots *roots;
	struct cvm_p256_keypair *ca = NULL;
	struct cvm_cert **ca_cert = NULL;
	struct cvm_csr *csr = NULL;
	uint8_t app_id[CVM_APP_ID_LEN];
	const uint8_t *csr_bytes, *app_info;
	size_t csr_len, app_info_len, n = 0, leaf_len = 0;
	uint32_t epoch, api;
	char why[256] = "", *leaf = NULL;
	const char *root_pem;
	struct cvm_wr w;
	int rc;

	memset(&k, 0, sizeof(k));
	if (!cvm_rd_u32le(r, &epoch) || !cvm_rd_copy(r, app_id, sizeof(app_id)) || !cvm_rd_u32le(r, &api) ||
	    !rd_blob(r, &csr_bytes, &csr_len, CVM_CSR_MAX) ||
	    !rd_blob(r, &app_info, &app_info_len, KP_MSG_MAX) || !cvm_rd_empty(r))
		return error_answer(CVM_E_FORMAT, resp, resp_len, "sign: a malformed request");
	roots = roots_of(st, epoch);
	if (roots == NULL)
		return error_answer(CVM_E_NOT_FOUND, resp, resp_len, "sign: epoch %u is not loaded",
		                    (unsigned)epoch);
	rc = cvm_csr_decode(api, csr_bytes, csr_len, &csr, why, sizeof(why));
	if (rc != CVM_OK)
		return error_answer(rc, resp, resp_len, "sign: the CSR does not decode: %s", why);
	rc = cvm_kms_app_keys_some(roots, app_id, NULL, 0, epoch,
	                           CVM_KMS_KEY_APP_CA | CVM_KMS_KEY_APP_CA_CERT, &k);
	if (rc == CVM_OK && (k.present & CVM_KMS_KEY_APP_CA_CERT) == 0)
		rc = CVM_E_NOT_FOUND;
	if (rc == CVM_OK)
		rc = cvm_p256_keypair_from_pem((const char *)k.app_ca_key->p, k.app_ca_key->len, &ca);
	if (rc == CVM_OK)
		rc = cvm_certs_parse_pem((const uint8_t *)k.app_ca_cert, strlen(k.app_ca_cert), &ca_cert, &n);
	if (rc == CVM_OK && n != 1)
		rc = CVM_E_INTERNAL;
	if (rc == CVM_OK)
		rc = cvm_ratls_issue_csr(csr, app_id, NULL, app_info_len > 0 ? app_info : NULL, app_info_len,
		                         ca, ca_cert[0], (int64_t)time(NULL), &leaf, &leaf_len);
	root_pem = cvm_kms_roots_ca_cert(roots);
	if (rc == CVM_OK && root_pem == NULL)
		rc = CVM_E_NOT_FOUND;
	if (rc != CVM_OK) {
		rc = error_answer(rc, resp, resp_len, "sign: cannot issue the certificate: %s",
		                  cvm_strerror(rc));
		goto out;
	}
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u32le(&w, 0);
	wr_blob(&w, leaf, leaf_len);
	wr_blob(&w, k.app_ca_cert, strlen(k.app_ca_cert));
	wr_blob(&w, root_pem, strlen(root_pem));
	rc = cvm_wr_finish(&w, resp, resp_len);
out:
	free(leaf);
	cvm_certs_free(ca_cert, n);
	cvm_p256_keypair_free(ca);
	cvm_kms_app_keys_cleanup(&k);
	cvm_csr_free(csr);
	return rc;
}

/* op_env_pubkey answers GetAppEnvEncryptPubKey: the app's env public key
 * and the k256 root's two signatures over it (legacy and v1, at the
 * network process's timestamp). Public data: no policy is asked. */
static int op_env_pubkey(struct kp_state *st, struct cvm_rd *r, uint8_t **resp, size_t *resp_len)
{
	struct cvm_kms_app_keys k;
	struct cvm_kms_roots *roots;
	const struct cvm_secret *k256 = NULL;
	uint8_t app_id[CVM_APP_ID_LEN], sig[CVM_K256_RSIG_LEN], sig_v1[CVM_K256_RSIG_LEN];
	uint64_t ts;
	uint32_t epoch;
	struct cvm_wr w;
	int rc;

	if (!cvm_rd_u32le(r, &epoch) || !cvm_rd_copy(r, app_id, sizeof(app_id)) || !cvm_rd_u64le(r, &ts) ||
	    !cvm_rd_empty(r))
		return error_answer(CVM_E_FORMAT, resp, resp_len, "env key: a malformed request");
	roots = roots_of(st, epoch);
	if (roots == NULL)
		return error_answer(CVM_E_NOT_FOUND, resp, resp_len, "env key: epoch %u is not loaded",
		                    (unsigned)epoch);
	memset(&k, 0, sizeof(k));
	rc = cvm_kms_app_keys_some(roots, app_id, NULL, 0, epoch, CVM_KMS_KEY_ENV, &k);
	if (rc == CVM_OK && (k.present & CVM_KMS_KEY_ENV) == 0)
		rc = CVM_E_NOT_FOUND;
	if (rc == CVM_OK)
		rc = cvm_kms_roots_k256_secret(roots, &k256);
	if (rc == CVM_OK)
		rc = cvm_envcrypt_pubkey_sign(k256->p, app_id, k.env_crypt_public_key, ts, sig, sig_v1);
	if (rc != CVM_OK) {
		cvm_kms_app_keys_cleanup(&k);
		return error_answer(rc, resp, resp_len, "env key: %s",
		                    rc == CVM_E_NOT_FOUND
		                        ? "this epoch lacks the root CA key or the k256 root"
		                        : cvm_strerror(rc));
	}
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u32le(&w, 0);
	cvm_wr_bytes(&w, k.env_crypt_public_key, 32);
	cvm_wr_bytes(&w, sig, sizeof(sig));
	cvm_wr_bytes(&w, sig_v1, sizeof(sig_v1));
	cvm_kms_app_keys_cleanup(&k);
	return cvm_wr_finish(&w, resp, resp_len);
}

int kp_handle(struct kp_state *st, const uint8_t *msg, size_t len, uint8_t **resp, size_t *resp_len)
{
	struct cvm_rd r;
	uint8_t op;

	*resp = NULL;
	*resp_len = 0;
	cvm_rd_init(&r, msg, len);
	if (!cvm_rd_u8(&r, &op))
		return error_answer(CVM_E_FORMAT, resp, resp_len, "an empty request");
	switch (op) {
	case KP_META:
		return op_meta(st, &r, resp, resp_len);
	case KP_APP_KEYS:
		return op_app_keys(st, &r, resp, resp_len);
	case KP_RPC_CERT:
		return op_rpc_cert(st, &r, resp, resp_len);
	case KP_KMS_KEYS:
		return op_kms_keys(st, &r, resp, resp_len);
	case KP_SIGN_CSR:
		return op_sign_csr(st, &r, resp, resp_len);
	case KP_ENV_PUBKEY:
		return op_env_pubkey(st, &r, resp, resp_len);
	default:
		return error_answer(CVM_E_FORMAT, resp, resp_len, "unknown request %u", (unsigned)op);
	}
}

/* ---- the process ---------------------------------------------------------- */

int kp_state_load(const struct kp_config *c, struct kp_state *st, char *err, size_t err_len)
{
	struct cvm_tpm *tpm = NULL;
	char why[256] = "";
	int rc = CVM_OK;

	memset(st, 0, sizeof(*st));
	if (c->tpm_tcti != NULL && c->tpm_tcti[0] != '\0') {
		rc = cvm_tpm_open(c->tpm_tcti, &tpm, why, sizeof(why));
		if (rc != CVM_OK) {
			(void)snprintf(err, err_len, "[kms] tpm_tcti: %s",
			               why[0] != '\0' ? why : cvm_strerror(rc));
			return rc;
		}
	}
	for (size_t i = 0; i < c->epoch_count && i < KMS_EPOCHS_MAX && rc == CVM_OK; i++) {
		rc = cvm_kms_roots_load_tpm(c->root_dir, c->epochs[i], tpm, &st->roots[i], err, err_len);
		if (rc == CVM_OK)
			st->count++;
	}
	/* the roots are in secret memory now: the TPM is not needed again */
	cvm_tpm_close(tpm);
	if (rc == CVM_OK && (st->count == 0 || !cvm_kms_roots_has(st->roots[0], CVM_KMS_ROOT_CA_KEY))) {
		(void)snprintf(
		    err, err_len,
		    "epoch %u has no root CA key (%s): run `cvm-kmsd bootstrap` or restore the roots",
		    (unsigned)c->epochs[0],
		    st->count > 0 ? cvm_kms_roots_path(st->roots[0], CVM_KMS_ROOT_CA_KEY) : c->root_dir);
		rc = CVM_E_NOT_FOUND;
	}
	if (rc != CVM_OK)
		kp_state_cleanup(st);
	return rc;
}

void kp_state_cleanup(struct kp_state *st)
{
	for (size_t i = 0; i < st->count; i++)
		cvm_kms_roots_free(st->roots[i]);
	memset(st, 0, sizeof(*st));
}

/* log_roots says, per loaded epoch, which secret roots came sealed from the
 * TPM and which from plain files (names only, never key bytes). */
static void log_roots(const struct kp_config *c, const struct kp_state *st)
{
	static const enum cvm_kms_root keys[] = {CVM_KMS_ROOT_CA_KEY, CVM_KMS_ROOT_K256_KEY,
	                                         CVM_KMS_ROOT_TMP_CA_KEY, CVM_KMS_ROOT_RPC_KEY};

	for (size_t i = 0; i < st->count; i++) {
		char sealed[128] = "", plain[128] = "";

		for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
			char *dst = cvm_kms_roots_sealed(st->roots[i], keys[j]) ? sealed : plain;
			size_t used = strlen(dst);

			if (!cvm_kms_roots_has(st->roots[i], keys[j]))
				continue;
			(void)snprintf(dst + used, sizeof(sealed) - used, "%s%s", used > 0 ? "," : "",
			               cvm_kms_root_file(keys[j]));
		}
		cvm_daemon_log(CVM_LOG_INFO, "roots_loaded", "epoch=%u tpm=%s sealed=%s plain=%s",
		               (unsigned)cvm_kms_roots_epoch(st->roots[i]),
		               c->tpm_tcti != NULL && c->tpm_tcti[0] != '\0' ? "on" : "off",
		               sealed[0] != '\0' ? sealed : "none", plain[0] != '\0' ? plain : "none");
	}
}

static void kp_main(const struct kp_config *c, int fd) __attribute__((noreturn));
static void kp_main(const struct kp_config *c, int fd)
{
	static uint8_t msg[KP_MSG_MAX];
	struct kp_state st;
	char err[512] = "";
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	int rc = CVM_OK;

	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	(void)prctl(PR_SET_NAME, "cvm-kmsd-keys");
	(void)signal(SIGINT, SIG_IGN); /* the network process decides when to stop */
	memset(&st, 0, sizeof(st));
	rc = kp_state_load(c, &st, err, sizeof(err));
	if (rc == CVM_OK && c->user != NULL && c->user[0] != '\0') {
		rc = cvm_daemon_drop_privileges(c->user);
		if (rc != CVM_OK)
			(void)snprintf(err, sizeof(err), "cannot switch the key process to user %s", c->user);
	}
	/* the start report: status, then the reason */
	{
		struct cvm_wr w;

		cvm_wr_init(&w, 1024);
		cvm_wr_u32le(&w, (uint32_t)rc);
		wr_blob(&w, err, strlen(err));
		if (cvm_wr_finish(&w, &resp, &resp_len) == CVM_OK)
			(void)send(fd, resp, resp_len, MSG_NOSIGNAL);
		free(resp);
		resp = NULL;
	}
	if (rc != CVM_OK)
		_exit(1);
	log_roots(c, &st);
	for (;;) {
		ssize_t n = recv(fd, msg, sizeof(msg), MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((size_t)n > sizeof(msg))
			rc = error_answer(CVM_E_TOO_LARGE, &resp, &resp_len, "a request over %zu bytes",
			                  sizeof(msg));
		else
			rc = kp_handle(&st, msg, (size_t)n, &resp, &resp_len);
		cvm_wipe(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg));
		if (rc != CVM_OK) /* out of memory: nothing to say */
			break;
		if (send(fd, resp, resp_len, MSG_NOSIGNAL) < 0) {
			cvm_freezero(resp, resp_len);
			break;
		}
		cvm_freezero(resp, resp_len);
		resp = NULL;
	}
	kp_state_cleanup(&st);
	_exit(0);
}

/* exchange sends a request and reads the answer into `buf`; returns the
 * answer's length or a CVM_E_*. */
static int exchange(struct kms_keyproc *kp, const uint8_t *req, size_t req_len, uint8_t *buf, size_t cap,
                    size_t *len)
{
	struct pollfd p = {.fd = kp->fd, .events = POLLIN};
	ssize_t n;

	if (send(kp->fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len)
		return CVM_E_SYSTEM;
	/* the key process answers in milliseconds; 10 s means it is stuck */
	if (poll(&p, 1, 10000) != 1)
		return CVM_E_SYSTEM;
	n = recv(kp->fd, buf, cap, MSG_TRUNC);
	if (n <= 0 || (size_t)n > cap)
		return n <= 0 ? CVM_E_SYSTEM : CVM_E_TOO_LARGE;
	*len = (size_t)n;
	return CVM_OK;
}

/* call runs one request; on success `r` reads the answer's fields from the
 * static buffer (wiped by the caller with call_done). */
static uint8_t answer[KP_MSG_MAX];
static size_t answer_len;

static int call(struct kms_keyproc *kp, struct cvm_wr *w, struct cvm_rd *r, char *err, size_t err_len)
{
	uint8_t *req = NULL;
	size_t req_len = 0;
	uint32_t status;
	int rc = cvm_wr_finish(w, &req, &req_len);

	if (rc != CVM_OK) {
		(void)snprintf(err, err_len, "the request does not fit");
		return rc;
	}
	rc = exchange(kp, req, req_len, answer, sizeof(answer), &answer_len);
	cvm_freezero(req, req_len);
	if (rc != CVM_OK) {
		(void)snprintf(err, err_len, "the key process does not answer (%s)", strerror(errno));
		return rc;
	}
	cvm_rd_init(r, answer, answer_len);
	if (!cvm_rd_u32le(r, &status)) {
		(void)snprintf(err, err_len, "the key process's answer is malformed");
		return CVM_E_INTERNAL;
	}
	if (status != 0) {
		const uint8_t *why = NULL;
		size_t why_len = 0;

		if (!rd_blob(r, &why, &why_len, KP_REASON_MAX))
			why_len = 0;
		(void)snprintf(err, err_len, "%.*s", (int)why_len, why_len > 0 ? (const char *)why : "");
		rc = (int)status;
		return rc < 0 ? rc : CVM_E_INTERNAL;
	}
	return CVM_OK;
}

static void call_done(void)
{
	cvm_wipe(answer, answer_len);
	answer_len = 0;
}

int kms_keyproc_start(const struct kp_config *c, struct kms_keyproc *kp, char *err, size_t err_len)
{
	int sv[2];
	uint8_t buf[1024];
	size_t len = 0;
	struct pollfd p;
	struct cvm_rd r;
	uint32_t status;
	const uint8_t *why = NULL;
	size_t why_len = 0;
	ssize_t n;

	kp->pid = -1;
	kp->fd = -1;
	if (c->epoch_count == 0 || c->epoch_count > KMS_EPOCHS_MAX) {
		(void)snprintf(err, err_len, "no epoch to load");
		return CVM_E_INVAL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		(void)snprintf(err, err_len, "socketpair: %s", strerror(errno));
		return CVM_E_SYSTEM;
	}
	kp->pid = fork();
	if (kp->pid < 0) {
		(void)snprintf(err, err_len, "fork: %s", strerror(errno));
		(void)close(sv[0]);
		(void)close(sv[1]);
		return CVM_E_SYSTEM;
	}
	if (kp->pid == 0) {
		(void)close(sv[0]);
		kp_main(c, sv[1]);
	}
	(void)close(sv[1]);
	kp->fd = sv[0];
	p.fd = kp->fd;
	p.events = POLLIN;
	p.revents = 0;
	/* loading roots reads a few files; a minute means something hangs */
	if (poll(&p, 1, 60000) != 1 || (n = recv(kp->fd, buf, sizeof(buf), 0)) <= 0) {
		(void)snprintf(err, err_len, "the key process did not start");
		kms_keyproc_stop(kp);
		return CVM_E_SYSTEM;
	}
	len = (size_t)n;
	cvm_rd_init(&r, buf, len);
	if (!cvm_rd_u32le(&r, &status) || !rd_blob(&r, &why, &why_len, sizeof(buf))) {
		(void)snprintf(err, err_len, "the key process's start report is malformed");
		kms_keyproc_stop(kp);
		return CVM_E_INTERNAL;
	}
	if (status != 0) {
		(void)snprintf(err, err_len, "%.*s", (int)why_len, (const char *)why);
		kms_keyproc_stop(kp);
		return (int)status < 0 ? (int)status : CVM_E_INTERNAL;
	}
	return CVM_OK;
}

void kms_keyproc_stop(struct kms_keyproc *kp)
{
	if (kp->fd >= 0)
		(void)close(kp->fd);
	kp->fd = -1;
	if (kp->pid > 0) {
		int st;

		while (waitpid(kp->pid, &st, 0) < 0 && errno == EINTR) {
		}
	}
	kp->pid = -1;
}

void kp_meta_cleanup(struct kp_meta *m)
{
	free(m->ca_cert_pem);
	free(m->tmp_ca_cert_pem);
	cvm_secret_free(m->tmp_ca_key);
	memset(m, 0, sizeof(*m));
}

static char *dup_blob(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		if (n > 0)
			memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

int kms_keyproc_meta(struct kms_keyproc *kp, struct kp_meta *out, char *err, size_t err_len)
{
	const uint8_t *ca, *tc, *tk;
	size_t ca_len, tc_len, tk_len;
	struct cvm_wr w;
	struct cvm_rd r;
	uint8_t has_k;
	int rc;

	memset(out, 0, sizeof(*out));
	cvm_wr_init(&w, 16);
	cvm_wr_u8(&w, KP_META);
	rc = call(kp, &w, &r, err, err_len);
	if (rc != CVM_OK)
		return rc;
	rc = CVM_E_INTERNAL;
	if (!cvm_rd_u32le(&r, &out->epoch) || !rd_blob(&r, &ca, &ca_len, KP_MSG_MAX) ||
	    !cvm_rd_u8(&r, &has_k) || !cvm_rd_copy(&r, out->k256_public, CVM_K256_PUBKEY_LEN) ||
	    !rd_blob(&r, &tc, &tc_len, KP_MSG_MAX) || !rd_blob(&r, &tk, &tk_len, KP_KEY_PEM_MAX) ||
	    !cvm_rd_empty(&r)) {
		(void)snprintf(err, err_len, "the key process's metadata is malformed");
		goto out;
	}
	out->has_k256 = has_k != 0;
	out->ca_cert_pem = dup_blob(ca, ca_len);
	if (tc_len > 0) {
		out->tmp_ca_cert_pem = dup_blob(tc, tc_len);
		out->tmp_ca_key = cvm_secret_new(tk_len);
		if (out->tmp_ca_key != NULL)
			memcpy(out->tmp_ca_key->p, tk, tk_len);
	}
	if (out->ca_cert_pem == NULL ||
	    (tc_len > 0 && (out->tmp_ca_cert_pem == NULL || out->tmp_ca_key == NULL))) {
		rc = CVM_E_NOMEM;
		goto out;
	}
	rc = CVM_OK;
out:
	call_done();
	if (rc != CVM_OK)
		kp_meta_cleanup(out);
	return rc;
}

void kp_app_keys_cleanup(struct kp_app_keys *k)
{
	cvm_secret_free(k->disk_crypt_key);
	cvm_secret_free(k->env_crypt_key);
	cvm_secret_free(k->k256_key);
	cvm_wipe(k, sizeof(*k));
}

int kms_keyproc_app_keys(struct kms_keyproc *kp, uint32_t epoch, const uint8_t app_id[CVM_APP_ID_LEN],
                         const uint8_t *instance_id, size_t instance_id_len, struct kp_app_keys *out,
                         char *err, size_t err_len)
{
	struct cvm_wr w;
	struct cvm_rd r;
	int rc;

	memset(out, 0, sizeof(*out));
	cvm_wr_init(&w, 128);
	cvm_wr_u8(&w, KP_APP_KEYS);
	cvm_wr_u32le(&w, epoch);
	cvm_wr_bytes(&w, app_id, CVM_APP_ID_LEN);
	wr_blob(&w, instance_id, instance_id_len);
	rc = call(kp, &w, &r, err, err_len);
	if (rc != CVM_OK)
		return rc;
	out->disk_crypt_key = cvm_secret_new(32);
	out->env_crypt_key = cvm_secret_new(32);
	out->k256_key = cvm_secret_new(32);
	if (out->disk_crypt_key == NULL || out->env_crypt_key == NULL || out->k256_key == NULL) {
		rc = CVM_E_NOMEM;
	} else if (!cvm_rd_u32le(&r, &out->epoch) || !cvm_rd_copy(&r, out->disk_crypt_key->p, 32) ||
	           !cvm_rd_copy(&r, out->env_crypt_key->p, 32) ||
	           !cvm_rd_copy(&r, out->env_crypt_public_key, 32) ||
	           !cvm_rd_copy(&r, out->k256_key->p, 32) ||
	           !cvm_rd_copy(&r, out->k256_signature, CVM_K256_RSIG_LEN) || !cvm_rd_empty(&r) ||
	           out->epoch != epoch) {
		(void)snprintf(err, err_len, "the key process's app keys are malformed");
		rc = CVM_E_INTERNAL;
	}
	call_done();
	if (rc != CVM_OK)
		kp_app_keys_cleanup(out);
	return rc;
}

int kms_keyproc_rpc_cert(struct kms_keyproc *kp, const struct cvm_secret *key_pem, const char *domain,
                         const uint8_t *va, size_t va_len, uint64_t lifetime_s, char **chain, char *err,
                         size_t err_len)
{
	const uint8_t *pem;
	size_t pem_len;
	struct cvm_wr w;
	struct cvm_rd r;
	int rc;

	*chain = NULL;
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u8(&w, KP_RPC_CERT);
	wr_blob(&w, key_pem->p, key_pem->len);
	wr_blob(&w, domain, strlen(domain));
	wr_blob(&w, va, va_len);
	cvm_wr_u64le(&w, lifetime_s);
	rc = call(kp, &w, &r, err, err_len);
	if (rc != CVM_OK)
		return rc;
	if (!rd_blob(&r, &pem, &pem_len, KP_MSG_MAX) || !cvm_rd_empty(&r)) {
		(void)snprintf(err, err_len, "the key process's certificate answer is malformed");
		rc = CVM_E_INTERNAL;
	} else if ((*chain = dup_blob(pem, pem_len)) == NULL) {
		rc = CVM_E_NOMEM;
	}
	call_done();
	return rc;
}

void kp_kms_keys_cleanup(struct kp_kms_keys *k)
{
	for (size_t i = 0; i < k->count; i++) {
		cvm_secret_free(k->e[i].ca_key_pem);
		cvm_secret_free(k->e[i].k256);
		cvm_secret_free(k->e[i].tmp_ca_key_pem);
		free(k->e[i].ca_cert_pem);
		free(k->e[i].tmp_ca_cert_pem);
	}
	memset(k, 0, sizeof(*k));
}

static struct cvm_secret *secret_of(const uint8_t *p, size_t n)
{
	struct cvm_secret *s = cvm_secret_new(n);

	if (s != NULL && n > 0)
		memcpy(s->p, p, n);
	return s;
}

int kms_keyproc_kms_keys(struct kms_keyproc *kp, struct kp_kms_keys *out, char *err, size_t err_len)
{
	struct cvm_wr w;
	struct cvm_rd r;
	uint32_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	cvm_wr_init(&w, 16);
	cvm_wr_u8(&w, KP_KMS_KEYS);
	rc = call(kp, &w, &r, err, err_len);
	if (rc != CVM_OK)
		return rc;
	if (!cvm_rd_u32le(&r, &n) || n == 0 || n > KMS_EPOCHS_MAX) {
		rc = CVM_E_INTERNAL;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct kp_epoch_roots *e = &out->e[i];
		const uint8_t *ck, *cc, *k256, *tk, *tc;
		size_t ck_len, cc_len, tk_len, tc_len;

		if (!cvm_rd_u32le(&r, &e->epoch) || !rd_blob(&r, &ck, &ck_len, KP_KEY_PEM_MAX) ||
		    !rd_blob(&r, &cc, &cc_len, KP_MSG_MAX) || !cvm_rd_bytes(&r, &k256, CVM_K256_SECKEY_LEN) ||
		    !rd_blob(&r, &tk, &tk_len, KP_KEY_PEM_MAX) || !rd_blob(&r, &tc, &tc_len, KP_MSG_MAX)) {
			rc = CVM_E_INTERNAL;
			goto out;
		}
		out->count++;
		e->ca_key_pem = secret_of(ck, ck_len);
		e->k256 = secret_of(k256, CVM_K256_SECKEY_LEN);
		e->ca_cert_pem = dup_blob(cc, cc_len);
		if (tk_len > 0) {
			e->tmp_ca_key_pem = secret_of(tk, tk_len);
			e->tmp_ca_cert_pem = dup_blob(tc, tc_len);
		}
		if (e->ca_key_pem == NULL || e->k256 == NULL || e->ca_cert_pem == NULL ||
		    (tk_len > 0 && (e->tmp_ca_key_pem == NULL || e->tmp_ca_cert_pem == NULL))) {
			rc = CVM_E_NOMEM;
			goto out;
		}
	}
	if (!cvm_rd_empty(&r))
		rc = CVM_E_INTERNAL;
out:
	if (rc == CVM_E_INTERNAL)
		(void)snprintf(err, err_len, "the key process's roots answer is malformed");
	call_done();
	if (rc != CVM_OK)
		kp_kms_keys_cleanup(out);
	return rc;
}

int kms_keyproc_sign_csr(struct kms_keyproc *kp, uint32_t epoch, const uint8_t app_id[CVM_APP_ID_LEN],
                         unsigned api, const uint8_t *csr, size_t csr_len, const uint8_t *app_info,
                         size_t app_info_len, char *chain[3], char *err, size_t err_len)
{
	struct cvm_wr w;
	struct cvm_rd r;
	int rc;

	chain[0] = chain[1] = chain[2] = NULL;
	cvm_wr_init(&w, KP_MSG_MAX);
	cvm_wr_u8(&w, KP_SIGN_CSR);
	cvm_wr_u32le(&w, epoch);
	cvm_wr_bytes(&w, app_id, CVM_APP_ID_LEN);
	cvm_wr_u32le(&w, api);
	wr_blob(&w, csr, csr_len);
	wr_blob(&w, app_info, app_info != NULL ? app_info_len : 0);
	rc = call(kp, &w, &r, err, err_len);
	if (rc != CVM_OK)
		return rc;
	for (size_t i = 0; i < 3 && rc == CVM_OK; i++) {
		const uint8_t *p;
		size_t n;

		if (!rd_blob(&r, &p, &n, KP_MSG_MAX))
			rc = CVM_E_INTERNAL;
		else if ((chain[i] = dup_blob(p, n)) == NULL)
			rc = CVM_E_NOMEM;
	}
	if (rc == CVM_OK && !cvm_rd_empty(&r))
		rc = CVM_E_INTERNAL;
	if (rc == CVM_E_INTERNAL)
		(void)snprintf(err, err_len, "the key process's certificate answer is malformed");
	call_done();
	if (rc != CVM_OK)
		for (size_t i = 0; i < 3; i++) {
			free(chain[i]);
			chain[i] = NULL;
		}
	return rc;
}

int kms_keyproc_env_pubkey(struct kms_keyproc *kp, uint32_t epoch, const uint8_t app_id[CVM_APP_ID_LEN],
                           uint64_t ts, uint8_t pub[32], uint8_t sig[CVM_K256_RSIG_LEN],
                           uint8_t sig_v1[CVM_K256_RSIG_LEN], char *err, size_t err_len)
{
	struct cvm_wr w;
	struct cvm_rd r;
	int rc;

	cvm_wr_init(&w, 64);
	cvm_wr_u8(&w, KP_ENV_PUBKEY);
	cvm_wr_u32le(&w, epoch);
	cvm_wr_bytes(&w, app_id, CVM_APP_ID_LEN);
	cvm_wr_u64le(&w, ts);
	rc = call(kp, &w, &r, err, err_len);
	if (rc != CVM_OK)
		return rc;
	if (!cvm_rd_copy(&r, pub, 32) || !cvm_rd_copy(&r, sig, CVM_K256_RSIG_LEN) ||
	    !cvm_rd_copy(&r, sig_v1, CVM_K256_RSIG_LEN) || !cvm_rd_empty(&r)) {
		(void)snprintf(err, err_len, "the key process's env key answer is malformed");
		rc = CVM_E_INTERNAL;
	}
	call_done();
	return rc;
}
