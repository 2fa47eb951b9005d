/* The agent's own identities, anchored where only the system writes
 * (STYLE.md, "Daemon structure"; include/cvmkit/evidence.h):
 *
 *  - its identity key: a P-256 key the agent makes on first start and keeps
 *    beside the runtime event log (identity_key), mode 0600, so that it has
 *    the log's lifetime: one boot on a real TDX guest (/run is a tmpfs),
 *    the simulator folder's life with --simulator. A restart of the agent
 *    within the boot finds the same key; a reboot makes a new one. The TLS
 *    listener of a later release presents it;
 *  - the TPM's attestation key (AK), when a TPM is configured.
 *
 * On TDX each is recorded once in RTMR3, before the agent serves any
 * request: the runtime events cvmkit.agent-key (SHA-256 of the key's SPKI)
 * and cvmkit.tpm-ak (the AK's TPM Name). EmitEvent refuses the "cvmkit."
 * namespace, so no app can add or repeat them; a verifier accepts only the
 * one event found among the system's events before the first app event. A
 * restart finds them in the log and records nothing; a log whose event
 * names another key fails closed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/secret.h>

#include "agent.h"
#include "daemon.h"

#define IDENTITY_FILE_DEFAULT "cvm-agentd-identity.pem" /* beside the runtime log */
#define IDENTITY_FILE_MAX 4096u                         /* a P-256 PKCS#8 PEM is ~240 bytes */

/* split_path makes `dir` and `base` of `path` (a relative path is in "."). */
static int split_path(const char *path, char *dir, size_t dir_cap, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		(void)snprintf(dir, dir_cap, ".");
		*base = path;
		return CVM_OK;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= dir_cap || slash[1] == '\0')
		return CVM_E_INVAL;
	memcpy(dir, path, n);
	dir[n] = '\0';
	*base = slash + 1;
	return CVM_OK;
}

/* create_key makes a new identity key and writes it as the key file `base`
 * in `dfd` (cvm_file_create_key: when another process made one first, that
 * one stays and is read). */
static int create_key(int dfd, const char *base, bool *created, char *err, size_t err_len)
{
	struct cvm_p256_keypair *kp = NULL;
	struct cvm_secret *pem = NULL;
	int r;

	*created = false;
	r = cvm_p256_keypair_generate(&kp);
	if (r == CVM_OK)
		r = cvm_p256_keypair_pkcs8_pem(kp, &pem);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot make the identity key: %s", cvm_strerror(r));
	else
		r = cvm_file_create_key(dfd, base, pem->p, pem->len, created, err, err_len);
	cvm_secret_free(pem);
	cvm_p256_keypair_free(kp);
	return r;
}

/* load_key reads the key file `base` in `dfd` under the key-file rule
 * (cvm_file_read_key: a regular file of ours that no one else may read or
 * write). */
static int load_key(struct agent *a, int dfd, const char *base, char *err, size_t err_len)
{
	const char *path = a->cfg.identity_key;
	struct cvm_secret *buf = NULL;
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	char why[512];
	int r;

	r = cvm_file_read_key(dfd, base, IDENTITY_FILE_MAX, &buf, why, sizeof(why));
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "the identity key %s: %s%s", path, why,
		               r == CVM_E_POLICY ? " (it must be a regular file of ours with mode 0600)"
		                                 : "");
		return r;
	}
	r = cvm_p256_keypair_from_pem((const char *)buf->p, buf->len, &a->identity);
	if (r == CVM_OK)
		r = cvm_p256_keypair_spki(a->identity, &spki, &spki_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len,
		               "cannot read the identity key %s: %s (delete it to make a new one)", path,
		               cvm_strerror(r));
		goto out;
	}
	cvm_sha256(spki, spki_len, a->identity_hash);
out:
	free(spki);
	cvm_secret_free(buf);
	return r;
}

int agent_identity_open(struct agent *a, char *err, size_t err_len)
{
	char dir[AGENT_PATH_MAX], hex[65], k[CVM_KV_MAX];
	const char *base = NULL;
	struct stat st;
	bool created = false;
	int dfd = -1, r;

	if (a->cfg.identity_key[0] == '\0') {
		r = split_path(a->cfg.runtime_log, dir, sizeof(dir), &base);
		if (r == CVM_OK) {
			int n = snprintf(a->cfg.identity_key, sizeof(a->cfg.identity_key), "%s/%s", dir,
			                 IDENTITY_FILE_DEFAULT);

			r = n < 0 || (size_t)n >= sizeof(a->cfg.identity_key) ? CVM_E_TOO_LARGE : CVM_OK;
		}
		if (r != CVM_OK) {
			(void)snprintf(err, err_len,
			               "no place for the identity key beside %s: set identity_key",
			               a->cfg.runtime_log);
			return r;
		}
	}
	r = split_path(a->cfg.identity_key, dir, sizeof(dir), &base);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "identity_key '%s' is not a file path", a->cfg.identity_key);
		return r;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		(void)snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
		return CVM_E_SYSTEM;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &st) != 0) {
		(void)snprintf(err, err_len, "cannot open %s: %s", dir, strerror(errno));
		r = CVM_E_SYSTEM;
		goto out;
	}
	/* whoever may write the directory may swap the key for their own */
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		(void)snprintf(err, err_len,
		               "the identity key's folder %s has mode %03o: group or others may write it",
		               dir, (unsigned)(st.st_mode & 0777));
		r = CVM_E_POLICY;
		goto out;
	}
	if (faccessat(dfd, base, F_OK, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
		r = create_key(dfd, base, &created, err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	r = load_key(a, dfd, base, err, err_len);
	if (r != CVM_OK)
		goto out;
	cvm_hex_encode(a->identity_hash, sizeof(a->identity_hash), hex);
	cvm_daemon_log(CVM_LOG_INFO, "identity", "key=%s created=%s spki_sha256=%s",
	               cvm_kv(a->cfg.identity_key, k), created ? "yes" : "no", hex);
out:
	if (dfd >= 0)
		(void)close(dfd);
	return r;
}

/* ---- the system's events in RTMR3 ------------------------------------------ */

/* struct sys_event is what the log says about one system event name. */
struct sys_event {
	size_t count;    /* events of that name */
	size_t first;    /* the first one's index */
	size_t boundary; /* the first app event's index (rt.count: none) */
};

static void scan(const struct agent *a, const char *name, struct sys_event *s)
{
	s->count = 0;
	s->first = 0;
	s->boundary = agent_system_boundary(a);
	for (size_t i = 0; i < a->rt.count; i++) {
		if (strcmp(a->rt.ev[i].name, name) != 0)
			continue;
		if (s->count++ == 0)
			s->first = i;
	}
}

/* record_key anchors the identity key. Another key recorded is fatal: the
 * key file was replaced or lost, and nothing can prove this agent's
 * identity until the VM reboots. Not being able to record is logged. */
static int record_key(struct agent *a, char *err, size_t err_len)
{
	const char *name = CVM_EVIDENCE_EVENT_AGENT_KEY, *why;
	struct sys_event s;
	char k[CVM_KV_MAX];
	int r;

	scan(a, name, &s);
	if (s.count == 0 && s.boundary == a->rt.count) {
		r = agent_emit_event_locked(a, name, a->identity_hash, sizeof(a->identity_hash), err,
		                            err_len);
		if (r == CVM_OK)
			cvm_daemon_log(CVM_LOG_INFO, "system_event", "name=%s recorded=yes index=%zu", name,
			               a->rt.count - 1);
		return r;
	}
	if (s.count == 1 && s.first < s.boundary) {
		const struct agent_event *e = &a->rt.ev[s.first];

		if (e->payload_len != sizeof(a->identity_hash) ||
		    memcmp(e->payload, a->identity_hash, sizeof(a->identity_hash)) != 0) {
			(void)snprintf(
			    err, err_len,
			    "RTMR3 recorded another identity key for the agent in this boot (%s, event "
			    "%zu) than the one in %s: that file was replaced or lost since, and this "
			    "agent cannot prove its identity until the VM reboots",
			    name, s.first, a->cfg.identity_key);
			return CVM_E_MISMATCH;
		}
		cvm_daemon_log(CVM_LOG_INFO, "system_event", "name=%s recorded=earlier index=%zu", name,
		               s.first);
		return CVM_OK;
	}
	why = s.count == 0  ? "app events already follow the system's in RTMR3, so the key can no longer "
	                      "be recorded before them"
	      : s.count > 1 ? "RTMR3 holds more than one such event"
	                    : "RTMR3's event comes after an app event";
	cvm_daemon_log(CVM_LOG_ERROR, "identity_unanchored", "name=%s reason=%s", name, cvm_kv(why, k));
	return CVM_OK;
}

/* record_ak anchors the TPM's AK, or says in a->ak_problem why GetEvidence
 * cannot vouch for one. */
static int record_ak(struct agent *a, char *err, size_t err_len)
{
	const char *name = CVM_EVIDENCE_EVENT_TPM_AK;
	char hex1[2 * CVM_TPM_NAME_MAX + 1], hex2[2 * CVM_TPM_NAME_MAX + 1], k[CVM_KV_MAX];
	struct sys_event s;
	int r;

	scan(a, name, &s);
	if (s.count == 1 && s.first < s.boundary) {
		const struct agent_event *e = &a->rt.ev[s.first];

		if (e->payload_len == 0 || e->payload_len > sizeof(a->ak_recorded)) {
			(void)snprintf(a->ak_problem, sizeof(a->ak_problem),
			               "RTMR3's %s event holds %zu bytes, not a TPM Name", name,
			               e->payload_len);
			goto problem;
		}
		memcpy(a->ak_recorded, e->payload, e->payload_len);
		a->ak_recorded_len = e->payload_len;
		if (a->ak_name_len != 0 && (a->ak_name_len != e->payload_len ||
		                            memcmp(a->ak_name, e->payload, e->payload_len) != 0)) {
			cvm_hex_encode(a->ak_name, a->ak_name_len, hex1);
			cvm_hex_encode(e->payload, e->payload_len, hex2);
			cvm_daemon_log(CVM_LOG_ERROR, "ak_mismatch",
			               "ak_handle=0x%08x ak_name=%s recorded=%s index=%zu", a->tpm_ak_handle,
			               hex1, hex2, s.first);
		} else {
			cvm_daemon_log(CVM_LOG_INFO, "system_event", "name=%s recorded=earlier index=%zu",
			               name, s.first);
		}
		return CVM_OK;
	}
	if (s.count == 0 && s.boundary == a->rt.count && a->ak_name_len != 0) {
		r = agent_emit_event_locked(a, name, a->ak_name, a->ak_name_len, err, err_len);
		if (r != CVM_OK)
			return r;
		memcpy(a->ak_recorded, a->ak_name, a->ak_name_len);
		a->ak_recorded_len = a->ak_name_len;
		cvm_daemon_log(CVM_LOG_INFO, "system_event", "name=%s recorded=yes index=%zu", name,
		               a->rt.count - 1);
		return CVM_OK;
	}
	if (s.count == 0 && s.boundary == a->rt.count)
		(void)snprintf(
		    a->ak_problem, sizeof(a->ak_problem),
		    "the TPM was unreachable when the agent started, so its attestation key is not "
		    "recorded in RTMR3 and a verifier would reject every TPM quote; restart the "
		    "agent once the TPM works, before any app emits an event");
	else if (s.count == 0)
		(void)snprintf(a->ak_problem, sizeof(a->ak_problem),
		               "the TPM's attestation key is not recorded in RTMR3, and app events already "
		               "follow the system's there (the agent ran without this TPM earlier in this "
		               "boot), so it can no longer be and a verifier would reject every TPM quote; "
		               "reboot the VM with the TPM configured");
	else
		(void)snprintf(
		    a->ak_problem, sizeof(a->ak_problem),
		    "RTMR3 holds %s (something other than the agent extended RTMR3), so a verifier "
		    "would reject every TPM quote until the VM reboots",
		    s.count > 1 ? "more than one " CVM_EVIDENCE_EVENT_TPM_AK " event"
		                : "its " CVM_EVIDENCE_EVENT_TPM_AK " event after an app event");
problem:
	cvm_daemon_log(CVM_LOG_ERROR, "ak_unrecorded", "reason=%s", cvm_kv(a->ak_problem, k));
	return CVM_OK;
}

int agent_record_system_events(struct agent *a, char *err, size_t err_len)
{
	int r;

	a->ak_recorded_len = 0;
	a->ak_problem[0] = '\0';
	if (a->tee_info.platform != CVM_TEE_PLATFORM_TDX)
		return CVM_OK; /* no runtime register: the SNP caller rule binds instead */
	r = agent_rtlog_lock(&a->rt, LOCK_EX);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot lock the runtime event log: %s", cvm_strerror(r));
		return r;
	}
	r = record_key(a, err, err_len);
	if (r == CVM_OK && a->has_tpm)
		r = record_ak(a, err, err_len);
	agent_rtlog_unlock(&a->rt);
	return r;
}
