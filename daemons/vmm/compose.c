/* The one place cvm-vmmd asks about app-compose files: lib/app
 * (include/cvmkit/app.h) checks them against dstack's schema and computes
 * what they commit to.
 *
 * MRCONFIGID: layout 1 (0x01 || compose_hash) when the file pins no key
 * provider, layout 2 (keccak256 over compose_hash, app id, key provider and
 * key_provider_id) when it pins one, as dstack 0.5.x's VMM does. dstack
 * 0.6 uses layout 3 there, whose JCS document the guest must be handed in
 * sys-config's mr_config to check it; cvm-vmmd does not write that document
 * yet, so it stays with layout 2, which the guest can recompute from what
 * it measures. SEV-SNP's HOST_DATA is layout 3's document hash, as dstack's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/app.h>
#include <cvmkit/err.h>

#include "vmm.h"

int vmm_compose_check(const uint8_t *buf, size_t len, uint8_t hash[32], char *err, size_t err_len)
{
	struct cvm_app_compose *c = NULL;
	char why[512] = "";
	int r;

	memset(hash, 0, 32);
	if (len == 0) {
		(void)snprintf(err, err_len, "compose_file is empty: give the app-compose.json text");
		return CVM_E_FORMAT;
	}
	if (len > CVM_APP_COMPOSE_MAX) {
		(void)snprintf(err, err_len, "compose_file is larger than %zu bytes (dstack's limit)",
		               CVM_APP_COMPOSE_MAX);
		return CVM_E_TOO_LARGE;
	}
	r = cvm_app_compose_parse(buf, len, 0, &c, why, sizeof(why));
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "compose_file: %s", why[0] != '\0' ? why : cvm_strerror(r));
		return r;
	}
	memcpy(hash, c->compose_hash, 32);
	cvm_app_compose_free(c);
	return CVM_OK;
}

int vmm_compose_ids(const uint8_t *buf, size_t len, const uint8_t *app_id, uint8_t mrconfigid[48],
                    uint8_t host_data[32], char *err, size_t err_len)
{
	struct cvm_app_compose *c = NULL;
	uint8_t v3[CVM_APP_MRCONFIGID_LEN];
	char why[512] = "", *doc = NULL;
	int r;

	memset(mrconfigid, 0, 48);
	memset(host_data, 0, 32);
	r = cvm_app_compose_parse(buf, len, 0, &c, why, sizeof(why));
	if (r == CVM_OK)
		r = cvm_app_compose_mrconfigid(c, c->key_provider_id_len != 0 ? 2 : 1, app_id, NULL, false,
		                               mrconfigid, NULL, why, sizeof(why));
	if (r == CVM_OK)
		r = cvm_app_compose_mrconfigid(c, 3, app_id, NULL, false, v3, &doc, why, sizeof(why));
	if (r == CVM_OK)
		cvm_app_mrconfig_v3_hash(doc, strlen(doc), host_data);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "compose_file: %s", why[0] != '\0' ? why : cvm_strerror(r));
	free(doc);
	cvm_app_compose_free(c);
	return r;
}
