/* The integration tests' client of lib/chain (tests/integration/kms_chain.sh):
 *   chain_query selector SIGNATURE
 *       prints the 4-byte selector of SIGNATURE in hex
 *   chain_query app|kms URL KMS_CONTRACT APP_ID COMPOSE_HASH INSTANCE_ID
 *               DEVICE_ID MR_AGGREGATED MR_SYSTEM OS_IMAGE_HASH TCB_STATUS
 *               [ADVISORY_ID...]
 *       asks the DstackKms contract isAppAllowed / isKmsAllowed through
 *       cvm_chain_is_allowed; prints "allowed: REASON" (exit 0),
 *       "denied: REASON" (exit 3) or "error: WHY" (exit 1).
 * Byte fields are hex with or without 0x. */
#include <stdio.h>
#include <string.h>

#include <cvmkit/chain.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

static int hex_arg(const char *name, const char *s, uint8_t *out, size_t len)
{
	if (strncmp(s, "0x", 2) == 0)
		s += 2;
	if (cvm_hex_decode_exact(s, strlen(s), out, len) != CVM_OK) {
		fprintf(stderr, "chain_query: %s must be %zu bytes of hex\n", name, len);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cvm_chain_boot_info bi = {0};
	struct cvm_chain_client c = {0};
	uint8_t kms[CVM_CHAIN_ADDRESS_LEN], sel[CVM_CHAIN_SELECTOR_LEN];
	char hex[2 * CVM_CHAIN_SELECTOR_LEN + 1], reason[CVM_CHAIN_STRING_MAX + 1], err[1024] = "";
	bool ok = false;
	int r;

	if (argc == 3 && strcmp(argv[1], "selector") == 0) {
		cvm_chain_selector(argv[2], sel);
		cvm_hex_encode(sel, sizeof(sel), hex);
		printf("%s\n", hex);
		return 0;
	}
	if (argc < 12 || (strcmp(argv[1], "app") != 0 && strcmp(argv[1], "kms") != 0)) {
		fprintf(stderr,
		        "usage: chain_query selector SIG | chain_query app|kms URL KMS_CONTRACT APP_ID "
		        "COMPOSE_HASH INSTANCE_ID DEVICE_ID MR_AGGREGATED MR_SYSTEM OS_IMAGE_HASH TCB_STATUS "
		        "[ADVISORY_ID...]\n");
		return 2;
	}
	c.rpc_url = argv[2];
	c.timeout_ms = 5000;
	if (hex_arg("KMS_CONTRACT", argv[3], kms, sizeof(kms)) != 0 ||
	    hex_arg("APP_ID", argv[4], bi.app_id, sizeof(bi.app_id)) != 0 ||
	    hex_arg("COMPOSE_HASH", argv[5], bi.compose_hash, sizeof(bi.compose_hash)) != 0 ||
	    hex_arg("INSTANCE_ID", argv[6], bi.instance_id, sizeof(bi.instance_id)) != 0 ||
	    hex_arg("DEVICE_ID", argv[7], bi.device_id, sizeof(bi.device_id)) != 0 ||
	    hex_arg("MR_AGGREGATED", argv[8], bi.mr_aggregated, sizeof(bi.mr_aggregated)) != 0 ||
	    hex_arg("MR_SYSTEM", argv[9], bi.mr_system, sizeof(bi.mr_system)) != 0 ||
	    hex_arg("OS_IMAGE_HASH", argv[10], bi.os_image_hash, sizeof(bi.os_image_hash)) != 0)
		return 2;
	bi.tcb_status = argv[11];
	bi.advisory_ids = (const char *const *)(argv + 12);
	bi.advisory_count = (size_t)(argc - 12);
	r = cvm_chain_is_allowed(&c, kms, strcmp(argv[1], "app") == 0 ? CVM_CHAIN_APP : CVM_CHAIN_KMS, &bi,
	                         &ok, reason, sizeof(reason), err, sizeof(err));
	if (r != CVM_OK) {
		printf("error: %s (%s)\n", err, cvm_strerror(r));
		return 1;
	}
	printf("%s: %s\n", ok ? "allowed" : "denied", reason);
	return ok ? 0 : 3;
}
