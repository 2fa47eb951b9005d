/* The KMS side of GetAppEnvEncryptPubKey, for integration.kms_env_sdk
 * until cvm-kmsd serves it: from a KMS root folder (dstack's cert_dir
 * layout) it derives the app's env public key (lib/kms) and signs it with
 * the root k256 key (cvm_envcrypt_pubkey_sign), printing the JSON answer
 * dstack's KMS gives; or GetMeta's k256_pubkey.
 *   usage: kms_env_sign ROOT_DIR APP_ID_HEX TIMESTAMP
 *          kms_env_sign --meta ROOT_DIR */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/encoding.h>
#include <cvmkit/envcrypt.h>
#include <cvmkit/file.h>
#include <cvmkit/kms.h>

static void print_hex(const char *name, const uint8_t *p, size_t n, const char *sep)
{
	printf("\"%s\":\"", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\"%s", sep);
}

int main(int argc, char **argv)
{
	struct cvm_kms_roots *roots = NULL;
	struct cvm_kms_app_keys keys = {0};
	struct cvm_secret *k256 = NULL;
	uint8_t app_id[20], pub[CVM_K256_PUBKEY_LEN], sig[65], sig_v1[65];
	char err[512], path[1024];
	uint64_t ts;
	char *end = NULL;
	int rc = 1;

	if (argc == 3 && strcmp(argv[1], "--meta") == 0) {
		if (cvm_kms_roots_load(argv[2], 0, &roots, err, sizeof(err)) != CVM_OK ||
		    cvm_kms_roots_k256_public(roots, pub) != CVM_OK) {
			fprintf(stderr, "kms_env_sign: %s: no k256 root: %s\n", argv[2], err);
			goto out;
		}
		printf("{");
		print_hex("k256_pubkey", pub, sizeof(pub), "}\n");
		rc = 0;
		goto out;
	}
	if (argc != 4 || strlen(argv[2]) != 40 || cvm_hex_decode_exact(argv[2], 40, app_id, 20) != CVM_OK) {
		fprintf(stderr, "usage: kms_env_sign ROOT_DIR APP_ID_HEX TIMESTAMP | --meta ROOT_DIR\n");
		return 2;
	}
	errno = 0;
	ts = strtoull(argv[3], &end, 10);
	if (errno != 0 || *end != '\0') {
		fprintf(stderr, "kms_env_sign: bad timestamp\n");
		return 2;
	}
	if (cvm_kms_roots_load(argv[1], 0, &roots, err, sizeof(err)) != CVM_OK ||
	    cvm_kms_app_keys(roots, app_id, NULL, 0, 0, &keys) != CVM_OK ||
	    (keys.present & CVM_KMS_KEY_ENV) == 0) {
		fprintf(stderr, "kms_env_sign: %s: cannot derive the env key: %s\n", argv[1], err);
		goto out;
	}
	(void)snprintf(path, sizeof(path), "%s/root-k256.key", argv[1]);
	if (cvm_file_read_key(AT_FDCWD, path, 32, &k256, err, sizeof(err)) != CVM_OK || k256->len != 32) {
		fprintf(stderr, "kms_env_sign: %s\n", err);
		goto out;
	}
	if (cvm_envcrypt_pubkey_sign(k256->p, app_id, keys.env_crypt_public_key, ts, sig, sig_v1) != CVM_OK) {
		fprintf(stderr, "kms_env_sign: signing failed\n");
		goto out;
	}
	printf("{");
	print_hex("public_key", keys.env_crypt_public_key, 32, ",");
	print_hex("signature", sig, 65, ",");
	printf("\"timestamp\":%" PRIu64 ",", ts);
	print_hex("signature_v1", sig_v1, 65, "}\n");
	rc = 0;
out:
	cvm_secret_free(k256);
	cvm_kms_app_keys_cleanup(&keys);
	cvm_kms_roots_free(roots);
	return rc;
}
