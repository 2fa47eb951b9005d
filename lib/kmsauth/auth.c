/* The authorizer: options, the policy file kept current, and the dispatch
 * to the policy, webhook, chain and dev implementations. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cvmkit/chain.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/kmsauth.h>

#include "chain/chain_lib.h"
#include "kmsauth_int.h"
#include "kmsauth_net.h"

enum auth_type { T_POLICY, T_WEBHOOK, T_CHAIN, T_DEV };

struct cvm_auth {
	enum auth_type type;
	unsigned timeout_ms;
	bool allow_simulated_tee;
	char *url;            /* webhook base URL or chain node URL */
	char *gateway_app_id; /* dev, chain: NULL when not configured */
	uint8_t contract[CVM_CHAIN_ADDRESS_LEN];
	/* policy: the file, and what was read from it last. */
	char *path;
	pthread_mutex_t lock;
	bool lock_ready;
	struct auth_policy *policy; /* NULL while the file is malformed */
	char policy_err[256];       /* why, when policy is NULL */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool stat_valid;
};

static const char *const type_names[] = {"policy", "webhook", "chain", "dev"};

const char *cvm_auth_type(const struct cvm_auth *a)
{
	return a != NULL ? type_names[a->type] : "none";
}

void cvm_auth_free(struct cvm_auth *a)
{
	if (a == NULL)
		return;
	if (a->lock_ready)
		(void)pthread_mutex_destroy(&a->lock);
	auth_policy_free(a->policy);
	free(a->path);
	free(a->url);
	free(a->gateway_app_id);
	free(a);
}

/* policy_refresh re-reads the file when its inode, size or mtime changed
 * since the last read. Called with a->lock held. A file that cannot be
 * read or parsed drops the old policy: from then on every decision fails,
 * with the reason, until the file is fixed (never an older allow list). */
static void policy_refresh(struct cvm_auth *a)
{
	struct auth_policy *p = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	char why[200] = "";
	const char *what = "is malformed";
	int r;

	if (stat(a->path, &st) != 0) {
		auth_set_err(a->policy_err, sizeof(a->policy_err), "the policy file cannot be read: %s",
		             strerror(errno));
		auth_policy_free(a->policy);
		a->policy = NULL;
		a->stat_valid = false;
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		/* A FIFO or a device could block or never end. */
		auth_set_err(a->policy_err, sizeof(a->policy_err), "the policy file is not a regular file");
		auth_policy_free(a->policy);
		a->policy = NULL;
		a->stat_valid = false;
		return;
	}
	if (a->stat_valid && st.st_dev == a->dev && st.st_ino == a->ino && st.st_size == a->size &&
	    st.st_mtim.tv_sec == a->mtime.tv_sec && st.st_mtim.tv_nsec == a->mtime.tv_nsec)
		return;
	r = cvm_file_read(a->path, CVM_AUTH_POLICY_MAX, &buf, &len);
	if (r == CVM_OK)
		(void)auth_policy_parse(buf, len, &p, why, sizeof(why)); /* p stays NULL on failure */
	else if (r == CVM_E_TOO_LARGE)
		(void)snprintf(why, sizeof(why), "it is larger than %d bytes", CVM_AUTH_POLICY_MAX);
	else {
		what = "cannot be read";
		(void)snprintf(why, sizeof(why), "%s", cvm_strerror(r));
	}
	free(buf);
	auth_policy_free(a->policy);
	a->policy = p;
	if (p == NULL)
		auth_set_err(a->policy_err, sizeof(a->policy_err), "the policy file %s (%s)", what, why);
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	a->size = st.st_size;
	a->mtime = st.st_mtim;
	a->stat_valid = true;
}

static bool addr_ok(const char *s, uint8_t out[CVM_CHAIN_ADDRESS_LEN])
{
	size_t l = strnlen(s, 64);

	return l == 42 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
	       cvm_hex_decode_exact(s + 2, 40, out, CVM_CHAIN_ADDRESS_LEN) == CVM_OK;
}

static bool gateway_ok(const char *s)
{
	size_t l = strnlen(s, 64);

	if (l >= 64)
		return false;
	for (size_t i = 0; i < l; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

int cvm_auth_new(const struct cvm_auth_opts *o, struct cvm_auth **out, char *err, size_t err_len)
{
	struct cvm_auth *a = NULL;
	int r;

	*out = NULL;
	auth_set_err(err, err_len, "%s", "");
	if (o == NULL || o->type == NULL) {
		auth_set_err(err, err_len, "no authorizer type given (policy, webhook, chain or dev)");
		return CVM_E_INVAL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return CVM_E_NOMEM;
	a->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : CVM_AUTH_DEFAULT_TIMEOUT_MS;
	a->allow_simulated_tee = o->allow_simulated_tee;
	if (o->gateway_app_id != NULL) {
		if (!gateway_ok(o->gateway_app_id)) {
			auth_set_err(err, err_len,
			             "the gateway app id must be printable ASCII of at most 63 bytes");
			r = CVM_E_INVAL;
			goto out;
		}
		a->gateway_app_id = strdup(o->gateway_app_id);
		if (a->gateway_app_id == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
	}
	if (strcmp(o->type, "policy") == 0) {
		a->type = T_POLICY;
		if (o->policy_path == NULL || o->policy_path[0] == '\0') {
			auth_set_err(err, err_len, "the policy authorizer needs the path of its policy file");
			r = CVM_E_INVAL;
			goto out;
		}
		a->path = strdup(o->policy_path);
		if (a->path == NULL || pthread_mutex_init(&a->lock, NULL) != 0) {
			r = CVM_E_NOMEM;
			goto out;
		}
		a->lock_ready = true;
		policy_refresh(a);
		if (a->policy == NULL) {
			auth_set_err(err, err_len, "%s: %s", o->policy_path, a->policy_err);
			r = CVM_E_FORMAT;
			goto out;
		}
	} else if (strcmp(o->type, "webhook") == 0) {
		a->type = T_WEBHOOK;
		if (o->webhook_url == NULL || !chain_url_ok(o->webhook_url, AUTH_URL_MAX)) {
			auth_set_err(err, err_len,
			             "the webhook URL must be http:// or https:// (at most %d bytes, "
			             "no space or control character)",
			             AUTH_URL_MAX);
			r = CVM_E_INVAL;
			goto out;
		}
		a->url = strdup(o->webhook_url);
		if (a->url == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		/* bootAuth/... is appended: drop one trailing slash. */
		if (a->url[strlen(a->url) - 1] == '/')
			a->url[strlen(a->url) - 1] = '\0';
	} else if (strcmp(o->type, "chain") == 0) {
		a->type = T_CHAIN;
		if (o->chain_rpc_url == NULL || !chain_url_ok(o->chain_rpc_url, AUTH_URL_MAX)) {
			auth_set_err(err, err_len, "the chain node's URL must be http:// or https://");
			r = CVM_E_INVAL;
			goto out;
		}
		if (o->kms_contract == NULL || !addr_ok(o->kms_contract, a->contract)) {
			auth_set_err(err, err_len,
			             "the DstackKms contract address must be 0x and 40 hex digits");
			r = CVM_E_INVAL;
			goto out;
		}
		a->url = strdup(o->chain_rpc_url);
		if (a->url == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
	} else if (strcmp(o->type, "dev") == 0) {
		a->type = T_DEV;
		if (!o->allow_dev) {
			auth_set_err(err, err_len,
			             "the dev authorizer allows every CVM, attested or not; it is refused "
			             "unless explicitly enabled for development (allow_dev)");
			r = CVM_E_INVAL;
			goto out;
		}
	} else {
		auth_set_err(err, err_len, "unknown authorizer type (want policy, webhook, chain or dev)");
		r = CVM_E_INVAL;
		goto out;
	}
	*out = a;
	a = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_auth_free(a);
	return r;
}

static bool boot_info_ok(const struct cvm_boot_info *bi)
{
	if (memchr(bi->tee_variant, '\0', sizeof(bi->tee_variant)) == NULL ||
	    memchr(bi->tcb_status, '\0', sizeof(bi->tcb_status)) == NULL ||
	    (bi->advisory_ids == NULL && bi->advisory_count != 0) ||
	    (bi->key_provider_info == NULL && bi->key_provider_info_len != 0) ||
	    bi->advisory_count > CVM_AUTH_ADVISORIES_MAX || bi->key_provider_info_len > CVM_AUTH_KPI_MAX)
		return false;
	for (size_t i = 0; i < bi->advisory_count; i++)
		if (bi->advisory_ids[i] == NULL ||
		    strnlen(bi->advisory_ids[i], CVM_AUTH_ADVISORY_MAX + 1) > CVM_AUTH_ADVISORY_MAX)
			return false;
	return true;
}

static int decide_chain(struct cvm_auth *a, enum cvm_auth_kind kind, const struct cvm_boot_info *bi,
                        struct cvm_auth_decision *d, char *err, size_t err_len)
{
	struct cvm_chain_client c = {.rpc_url = a->url, .timeout_ms = (long)a->timeout_ms};
	struct cvm_chain_boot_info cb = {0};
	bool allowed = false;
	char reason[sizeof(d->reason)] = "";
	int r;

	memcpy(cb.app_id, bi->app_id, sizeof(cb.app_id));
	memcpy(cb.compose_hash, bi->compose_hash, sizeof(cb.compose_hash));
	if (bi->has_instance_id)
		memcpy(cb.instance_id, bi->instance_id, sizeof(cb.instance_id));
	memcpy(cb.device_id, bi->device_id, sizeof(cb.device_id));
	memcpy(cb.mr_aggregated, bi->mr_aggregated, sizeof(cb.mr_aggregated));
	memcpy(cb.mr_system, bi->mr_system, sizeof(cb.mr_system));
	memcpy(cb.os_image_hash, bi->os_image_hash, sizeof(cb.os_image_hash));
	cb.tcb_status = bi->tcb_status;
	cb.advisory_ids = bi->advisory_ids;
	cb.advisory_count = bi->advisory_count;
	r = cvm_chain_is_allowed(&c, a->contract, kind == CVM_AUTH_KMS ? CVM_CHAIN_KMS : CVM_CHAIN_APP, &cb,
	                         &allowed, reason, sizeof(reason), err, err_len);
	if (r != CVM_OK)
		return r;
	if (a->gateway_app_id != NULL)
		(void)snprintf(d->gateway_app_id, sizeof(d->gateway_app_id), "%s", a->gateway_app_id);
	else {
		r = auth_chain_gateway_app_id(&c, a->contract, d->gateway_app_id, sizeof(d->gateway_app_id),
		                              err, err_len);
		if (r != CVM_OK)
			return r;
	}
	auth_quote(reason, d->reason, sizeof(d->reason));
	d->allowed = allowed;
	return CVM_OK;
}

int cvm_auth_decide(struct cvm_auth *a, enum cvm_auth_kind kind, const struct cvm_boot_info *bi,
                    struct cvm_auth_decision *d, char *err, size_t err_len)
{
	char variant[sizeof(bi->tee_variant)];
	int r;

	if (d == NULL)
		return CVM_E_INVAL;
	memset(d, 0, sizeof(*d));
	auth_set_err(err, err_len, "%s", "");
	if (a == NULL || bi == NULL || (kind != CVM_AUTH_APP && kind != CVM_AUTH_KMS) || !boot_info_ok(bi)) {
		auth_set_err(err, err_len,
		             "bad arguments to cvm_auth_decide (BootInfo strings unterminated or "
		             "over their caps?)");
		return CVM_E_INVAL;
	}
	/* No dstack authorizer sees the TEE variant (auth-simple and the
	 * contracts ignore it): the simulated-TEE rule is checked here, first,
	 * for every type. */
	if (auth_is_simulated(bi) && !a->allow_simulated_tee) {
		auth_quote(bi->tee_variant, variant, sizeof(variant));
		(void)snprintf(d->reason, sizeof(d->reason),
		               "the TEE is simulated (%s) and this authorizer does not accept simulated TEEs",
		               variant);
		if (a->gateway_app_id != NULL)
			(void)snprintf(d->gateway_app_id, sizeof(d->gateway_app_id), "%s", a->gateway_app_id);
		return CVM_OK;
	}
	switch (a->type) {
	case T_POLICY:
		(void)pthread_mutex_lock(&a->lock);
		policy_refresh(a);
		if (a->policy == NULL) {
			auth_set_err(err, err_len, "%s; every decision is refused until it is fixed",
			             a->policy_err);
			r = CVM_E_FORMAT;
		} else {
			auth_policy_decide(a->policy, kind, bi, d);
			r = CVM_OK;
		}
		(void)pthread_mutex_unlock(&a->lock);
		return r;
	case T_WEBHOOK:
		r = auth_webhook_decide(a->url, a->timeout_ms, kind, bi, d, err, err_len);
		if (r != CVM_OK)
			memset(d, 0, sizeof(*d));
		return r;
	case T_CHAIN:
		r = decide_chain(a, kind, bi, d, err, err_len);
		if (r != CVM_OK)
			memset(d, 0, sizeof(*d));
		return r;
	case T_DEV:
		d->allowed = true;
		(void)snprintf(d->gateway_app_id, sizeof(d->gateway_app_id), "%s",
		               a->gateway_app_id != NULL ? a->gateway_app_id : "");
		(void)snprintf(d->reason, sizeof(d->reason), "dev authorizer: every CVM is allowed");
		return CVM_OK;
	}
	return CVM_E_INTERNAL;
}

int cvm_auth_info(struct cvm_auth *a, struct cvm_auth_info *out, char *err, size_t err_len)
{
	int r = CVM_OK;

	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	auth_set_err(err, err_len, "%s", "");
	if (a == NULL)
		return CVM_E_INVAL;
	(void)snprintf(out->status, sizeof(out->status), "ok");
	(void)snprintf(out->kms_contract_addr, sizeof(out->kms_contract_addr), "0x%040x", 0);
	(void)snprintf(out->app_implementation, sizeof(out->app_implementation), "0x%040x", 0);
	switch (a->type) {
	case T_POLICY:
		(void)pthread_mutex_lock(&a->lock);
		policy_refresh(a);
		if (a->policy == NULL) {
			auth_set_err(err, err_len, "%s", a->policy_err);
			r = CVM_E_FORMAT;
		} else {
			(void)snprintf(out->kms_contract_addr, sizeof(out->kms_contract_addr), "%s",
			               a->policy->kms_contract_addr);
			(void)snprintf(out->app_implementation, sizeof(out->app_implementation), "%s",
			               a->policy->app_implementation);
			(void)snprintf(out->gateway_app_id, sizeof(out->gateway_app_id), "%s",
			               a->policy->gateway_app_id);
			out->chain_id = a->policy->chain_id;
		}
		(void)pthread_mutex_unlock(&a->lock);
		break;
	case T_WEBHOOK:
		r = auth_webhook_info(a->url, a->timeout_ms, out, err, err_len);
		break;
	case T_CHAIN: {
		struct cvm_chain_client c = {.rpc_url = a->url, .timeout_ms = (long)a->timeout_ms};
		char hex[2 * CVM_CHAIN_ADDRESS_LEN + 1];

		cvm_hex_encode(a->contract, sizeof(a->contract), hex);
		(void)snprintf(out->kms_contract_addr, sizeof(out->kms_contract_addr), "0x%s", hex);
		chain_url_origin(a->url, out->eth_rpc_url, sizeof(out->eth_rpc_url));
		r = auth_chain_id(&c, &out->chain_id, err, err_len);
		if (r == CVM_OK && a->gateway_app_id != NULL)
			(void)snprintf(out->gateway_app_id, sizeof(out->gateway_app_id), "%s",
			               a->gateway_app_id);
		else if (r == CVM_OK)
			r = auth_chain_gateway_app_id(&c, a->contract, out->gateway_app_id,
			                              sizeof(out->gateway_app_id), err, err_len);
		break;
	}
	case T_DEV:
		(void)snprintf(out->gateway_app_id, sizeof(out->gateway_app_id), "%s",
		               a->gateway_app_id != NULL ? a->gateway_app_id : "");
		break;
	}
	if (r != CVM_OK) {
		memset(out, 0, sizeof(*out));
	}
	return r;
}
