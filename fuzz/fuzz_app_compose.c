/* libFuzzer harness for lib/app: app-compose files (strict and lax), their
 * layout, and MRCONFIGID from what parsed.
 *
 * Invariants: a parse either succeeds with the SHA-256 of the input as its
 * compose hash and the first 20 bytes as its default app id, or fails with
 * no output and a message; strict acceptance implies lax acceptance; every
 * layout is computed without reading past the input; layouts 1-3 succeed
 * for a parsed file, each with its layout byte first and 15 zero bytes
 * last, and the layout 3 document hashes to what the MRCONFIGID holds. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/app.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ids(const struct cvm_app_compose *c)
{
	struct cvm_app_mrconfig_in in = {0};
	uint8_t id[CVM_APP_MRCONFIGID_LEN], h[32];
	static const uint8_t zero[15];
	char *doc = NULL, err[256];

	in.compose_hash = c->compose_hash;
	in.app_id = c->default_app_id;
	in.key_provider = c->key_provider;
	in.key_provider_id = c->key_provider_id;
	in.key_provider_id_len = c->key_provider_id_len;
	in.gpu_policy_hash = c->gpu_policy_hash;
	for (unsigned layout = 1; layout <= 3; layout++) {
		if (cvm_app_mrconfigid(layout, &in, id, layout == 3 ? &doc : NULL, err, sizeof(err)) !=
		        CVM_OK ||
		    id[0] != layout || memcmp(id + 33, zero, sizeof(zero)) != 0)
			__builtin_trap();
	}
	if (doc == NULL)
		__builtin_trap();
	cvm_app_mrconfig_v3_hash(doc, strlen(doc), h);
	if (memcmp(h, id + 1, 32) != 0)
		__builtin_trap();
	free(doc);
	doc = NULL;
	/* the VMM's inputs: init scripts (manifest 3) and gpu_policy_hash */
	if (cvm_app_compose_mrconfigid(c, 3, NULL, c->default_app_id, true, id, &doc, err, sizeof(err)) !=
	        CVM_OK ||
	    doc == NULL || strstr(doc, "gpu_policy_hash") == NULL || id[0] != 3)
		__builtin_trap();
	free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_app_compose *c = NULL, *lax = NULL;
	uint8_t h[32];
	char err[512];
	bool nl;
	int r, rl;

	err[0] = 'x';
	r = cvm_app_compose_parse(data, size, 0, &c, err, sizeof(err));
	if (r == CVM_OK) {
		cvm_sha256(data, size, h);
		if (c == NULL || memcmp(c->compose_hash, h, 32) != 0 ||
		    memcmp(c->default_app_id, h, 20) != 0 || c->name == NULL || c->runner == NULL ||
		    c->n_init_scripts > CVM_APP_INIT_SCRIPTS_MAX || c->n_allowed_envs > CVM_APP_ENVS_MAX ||
		    c->key_provider_id_len > CVM_APP_KP_ID_MAX)
			__builtin_trap();
		check_ids(c);
	} else if (c != NULL || memchr(err, 0, sizeof(err)) == NULL || err[0] == '\0') {
		__builtin_trap();
	}
	rl = cvm_app_compose_parse(data, size, CVM_APP_PARSE_LAX, &lax, err, sizeof(err));
	if (r == CVM_OK && rl != CVM_OK)
		__builtin_trap();
	(void)cvm_app_compose_layout(data, size, &nl);
	cvm_app_compose_free(lax);
	cvm_app_compose_free(c);
	return 0;
}
