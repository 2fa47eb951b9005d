/* MRCONFIGID, layouts 1-3 (include/cvmkit/app.h; specs/dstack.md §5.7).
 *
 * Matched against Dstack-TEE/dstack at 312dc605 (branch next, 2026-08-07):
 * dstack/dstack-types/src/mr_config.rs (MrConfig::to_mr_config_id,
 * MrConfigV3 and its JCS form) and dstack/vmm/src/app/mr_config.rs (which
 * fields the VMM fills). MrConfigV3 serialises with serde_jcs and
 * skip_serializing_none: the members sorted by name, absent options left
 * out, byte strings as lowercase hex (serde_human_bytes), version the
 * number 3, key_provider KeyProviderKind's snake_case name. Upstream's own
 * test vector (mr_config_v3_generates_jcs_but_hashes_document_bytes) is in
 * tests/unit/test_app.c. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/app.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/keccak.h>

#include "core/core_lib.h"
#include "crypto/crypto_lib.h"

/* The domain tag and its NUL: "dstack-mr-config-v3:" || 0x00. */
static const char V3_TAG[] = "dstack-mr-config-v3:";

const char *cvm_app_kp_name(enum cvm_app_kp kp)
{
	switch (kp) {
	case CVM_APP_KP_NONE:
		return "none";
	case CVM_APP_KP_LOCAL:
		return "local";
	case CVM_APP_KP_KMS:
		return "kms";
	case CVM_APP_KP_TPM:
		return "tpm";
	}
	return "unknown";
}

void cvm_app_mrconfig_v3_hash(const char *doc, size_t doc_len, uint8_t out[32])
{
	cvm_sha256_two(V3_TAG, sizeof(V3_TAG), doc != NULL ? doc : "", doc != NULL ? doc_len : 0, out);
}

/* put_hex appends `"name":"<lowercase hex>"` (n <= CVM_APP_KP_ID_MAX),
 * with a comma before it unless it is the first member. */
static void put_hex(struct cvm_wr *w, bool *first, const char *name, const uint8_t *p, size_t n)
{
	char hex[2 * CVM_APP_KP_ID_MAX + 1];

	if (!*first)
		cvm_wr_u8(w, ',');
	*first = false;
	cvm_hex_encode(p, n, hex);
	cvm_wr_fmt(w, "\"%s\":\"", name);
	cvm_wr_bytes(w, hex, 2 * n);
	cvm_wr_u8(w, '"');
}

/* v3_document writes MrConfigV3's JCS text: members in name order. */
static int v3_document(const struct cvm_app_mrconfig_in *in, char **out, size_t *out_len)
{
	struct cvm_wr w;
	bool first = true;
	const char *kp = cvm_app_kp_name(in->key_provider);
	uint8_t *text = NULL;
	int r;

	cvm_wr_init(&w, 4096 + 2 * in->key_provider_id_len);
	cvm_wr_u8(&w, '{');
	if (in->app_id != NULL)
		put_hex(&w, &first, "app_id", in->app_id, CVM_APP_ID_BYTES);
	put_hex(&w, &first, "compose_hash", in->compose_hash, 32);
	if (in->gpu_policy_hash != NULL)
		put_hex(&w, &first, "gpu_policy_hash", in->gpu_policy_hash, 32);
	if (in->has_init_script_hashes) {
		cvm_wr_str(&w, ",\"init_script_hashes\":[");
		for (size_t i = 0; i < in->n_init_script_hashes; i++) {
			char hex[65];

			cvm_hex_encode(in->init_script_hashes[i], 32, hex);
			cvm_wr_fmt(&w, "%s\"%s\"", i == 0 ? "" : ",", hex);
		}
		cvm_wr_u8(&w, ']');
	}
	if (in->instance_id != NULL)
		put_hex(&w, &first, "instance_id", in->instance_id, CVM_APP_ID_BYTES);
	cvm_wr_str(&w, ",\"key_provider\":");
	cvm_jcs_string(&w, kp, strlen(kp));
	if (in->key_provider_id_len != 0)
		put_hex(&w, &first, "key_provider_id", in->key_provider_id, in->key_provider_id_len);
	cvm_wr_str(&w, ",\"version\":3}");
	cvm_wr_u8(&w, '\0');
	r = cvm_wr_finish(&w, &text, out_len);
	if (r != CVM_OK) {
		cvm_wr_cleanup(&w);
		return r == CVM_E_TOO_LARGE ? CVM_E_NOMEM : r;
	}
	(*out_len)--; /* the NUL */
	*out = (char *)text;
	return CVM_OK;
}

int cvm_app_mrconfigid(unsigned layout, const struct cvm_app_mrconfig_in *in,
                       uint8_t out[CVM_APP_MRCONFIGID_LEN], char **doc, char *err, size_t err_len)
{
	struct cvm_keccak256_ctx k;
	uint8_t kp_byte, digest[32];
	char *text = NULL;
	size_t text_len = 0;
	int r;

	memset(out, 0, CVM_APP_MRCONFIGID_LEN);
	if (doc != NULL)
		*doc = NULL;
	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (in == NULL || in->compose_hash == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "MRCONFIGID: no compose hash given");
	if (in->key_provider != CVM_APP_KP_NONE && in->key_provider != CVM_APP_KP_LOCAL &&
	    in->key_provider != CVM_APP_KP_KMS && in->key_provider != CVM_APP_KP_TPM)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "MRCONFIGID: unknown key provider %d",
		                   (int)in->key_provider);
	if (in->key_provider_id_len > CVM_APP_KP_ID_MAX ||
	    (in->key_provider_id == NULL && in->key_provider_id_len != 0))
		return cvm_err_set(err, err_len, CVM_E_INVAL,
		                   "MRCONFIGID: key_provider_id must be at most %u bytes", CVM_APP_KP_ID_MAX);
	switch (layout) {
	case 1:
		out[0] = 1;
		memcpy(out + 1, in->compose_hash, 32);
		return CVM_OK;
	case 2:
		if (in->app_id == NULL)
			return cvm_err_set(err, err_len, CVM_E_INVAL, "MRCONFIGID layout 2 needs the app id");
		kp_byte = (uint8_t)in->key_provider;
		cvm_keccak256_init(&k);
		cvm_keccak256_update(&k, in->compose_hash, 32);
		cvm_keccak256_update(&k, in->app_id, CVM_APP_ID_BYTES);
		cvm_keccak256_update(&k, &kp_byte, 1);
		cvm_keccak256_update(&k, in->key_provider_id, in->key_provider_id_len);
		cvm_keccak256_final(&k, digest);
		out[0] = 2;
		memcpy(out + 1, digest, 32);
		return CVM_OK;
	case 3:
		if (in->has_init_script_hashes && in->n_init_script_hashes != 0 &&
		    (in->init_script_hashes == NULL || in->n_init_script_hashes > CVM_APP_INIT_SCRIPTS_MAX))
			return cvm_err_set(err, err_len, CVM_E_INVAL,
			                   "MRCONFIGID layout 3: at most %u init script hashes",
			                   CVM_APP_INIT_SCRIPTS_MAX);
		r = v3_document(in, &text, &text_len);
		if (r != CVM_OK)
			return cvm_err_set(err, err_len, r, "MRCONFIGID layout 3: out of memory");
		cvm_app_mrconfig_v3_hash(text, text_len, digest);
		out[0] = 3;
		memcpy(out + 1, digest, 32);
		if (doc != NULL)
			*doc = text;
		else
			free(text);
		return CVM_OK;
	default:
		return cvm_err_set(err, err_len, CVM_E_INVAL, "MRCONFIGID layout %u: only 1, 2 and 3 exist",
		                   layout);
	}
}

int cvm_app_compose_mrconfigid(const struct cvm_app_compose *c, unsigned layout, const uint8_t *app_id,
                               const uint8_t *instance_id, bool is_gpu, uint8_t out[CVM_APP_MRCONFIGID_LEN],
                               char **doc, char *err, size_t err_len)
{
	uint8_t init_hashes[CVM_APP_INIT_SCRIPTS_MAX][32];
	struct cvm_app_mrconfig_in in = {0};

	if (c == NULL) {
		memset(out, 0, CVM_APP_MRCONFIGID_LEN);
		if (doc != NULL)
			*doc = NULL;
		return cvm_err_set(err, err_len, CVM_E_INVAL, "MRCONFIGID: no app-compose given");
	}
	in.compose_hash = c->compose_hash;
	in.app_id = app_id != NULL ? app_id : c->default_app_id;
	in.key_provider = c->key_provider;
	in.key_provider_id = c->key_provider_id;
	in.key_provider_id_len = c->key_provider_id_len;
	in.instance_id = instance_id;
	in.gpu_policy_hash = is_gpu ? c->gpu_policy_hash : NULL;
	/* dstack's VMM pins the init scripts from manifest_version 3 on (older
	 * guests would not check them). */
	if (c->manifest_version >= 3 && c->n_init_scripts <= CVM_APP_INIT_SCRIPTS_MAX) {
		for (size_t i = 0; i < c->n_init_scripts; i++)
			cvm_sha256(c->init_scripts[i], strlen(c->init_scripts[i]), init_hashes[i]);
		in.has_init_script_hashes = true;
		in.init_script_hashes = (const uint8_t(*)[32])init_hashes;
		in.n_init_script_hashes = c->n_init_scripts;
	}
	return cvm_app_mrconfigid(layout, &in, out, doc, err, err_len);
}

unsigned cvm_app_compose_tdx_layout(const struct cvm_app_compose *c)
{
	return c != NULL && c->key_provider_id_len != 0 ? 3 : 1;
}
