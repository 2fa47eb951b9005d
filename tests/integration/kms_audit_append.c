/* kms_audit_append DB N [PEER]: appends N made-up KMS decisions to the audit
 * log DB through lib/audit (created when missing) and prints, after each,
 * the line cvm-kmsd logs: `event=audit_head seq=N head=HEX`. Record i is
 * allowed unless i % 3 == 0 (denied, with a reason), its app id is
 * i in hex, its time 1765000000 + i. PEER (default "10.0.0.1:443") is the
 * client address of every record. With $CVM_AUDIT_SIGN_KEY naming a P-256
 * key (PEM), each line also carries ` sig=HEX`, the head's signed
 * checkpoint. For integration.kms_audit_cli. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/audit.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>

/* load_key reads the PEM key at `path`. */
static struct cvm_p256_keypair *load_key(const char *path)
{
	struct cvm_p256_keypair *kp = NULL;
	char pem[8192];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(pem, 1, sizeof(pem), f);
	(void)fclose(f);
	if (n == 0 || n == sizeof(pem) || cvm_p256_keypair_from_pem(pem, n, &kp) != CVM_OK)
		return NULL;
	return kp;
}

int main(int argc, char **argv)
{
	struct cvm_p256_keypair *key = NULL;
	uint8_t sig[CVM_AUDIT_CHECKPOINT_SIG_LEN];
	char sig_hex[2 * CVM_AUDIT_CHECKPOINT_SIG_LEN + 1];
	const char *key_path = getenv("CVM_AUDIT_SIGN_KEY");
	struct cvm_audit *a = NULL;
	struct cvm_audit_record r;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	char err[512], hex[2 * CVM_AUDIT_HASH_LEN + 1];
	uint64_t seq = 0;
	long n;
	int rc = 1;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: kms_audit_append DB N [PEER]\n");
		return 2;
	}
	n = strtol(argv[2], NULL, 10);
	if (n < 0 || n > 100000) {
		fprintf(stderr, "kms_audit_append: N '%s' is not 0..100000\n", argv[2]);
		return 2;
	}
	if (key_path != NULL) {
		key = load_key(key_path);
		if (key == NULL) {
			fprintf(stderr, "kms_audit_append: cannot load the P-256 key %s\n", key_path);
			return 1;
		}
	}
	if (cvm_audit_open(argv[1], true, &a, err, sizeof(err)) != CVM_OK) {
		cvm_p256_keypair_free(key);
		fprintf(stderr, "kms_audit_append: %s\n", err);
		return 1;
	}
	for (long i = 1; i <= n; i++) {
		unsigned k;

		if (cvm_audit_head(a, &seq, head) != CVM_OK)
			goto out;
		k = (unsigned)seq + 1;
		memset(&r, 0, sizeof(r));
		r.time = 1765000000 + (int64_t)k;
		(void)snprintf(r.node, sizeof(r.node), "kms-test");
		(void)snprintf(r.method, sizeof(r.method), "%s", k % 2 ? "GetAppKey" : "SignCert");
		(void)snprintf(r.peer, sizeof(r.peer), "%s", argc == 4 ? argv[3] : "10.0.0.1:443");
		(void)snprintf(r.tee, sizeof(r.tee), "sim-tdx");
		(void)snprintf(r.app_id, sizeof(r.app_id), "%040x", k);
		(void)snprintf(r.instance_id, sizeof(r.instance_id), "%040x", k + 1000);
		(void)snprintf(r.compose_hash, sizeof(r.compose_hash), "%064x", k * 7);
		(void)snprintf(r.mr_aggregated, sizeof(r.mr_aggregated), "%064x", k * 11);
		if (k % 3 == 0) {
			(void)snprintf(r.decision, sizeof(r.decision), "denied");
			(void)snprintf(r.reason, sizeof(r.reason), "compose hash \"%064x\" is not allowed",
			               k * 7);
		} else {
			(void)snprintf(r.decision, sizeof(r.decision), "allowed");
			(void)snprintf(r.keys, sizeof(r.keys), "disk_crypt_key,env_crypt_key,k256_key");
		}
		r.epoch = k / 4;
		if (cvm_audit_append(a, &r, &seq, head) != CVM_OK) {
			fprintf(stderr, "kms_audit_append: %s\n", cvm_audit_error(a));
			goto out;
		}
		cvm_hex_encode(head, sizeof(head), hex);
		printf("event=audit_head seq=%llu head=%s", (unsigned long long)seq, hex);
		if (key != NULL) {
			if (cvm_audit_checkpoint_sign(key, seq, head, sig) != CVM_OK) {
				fprintf(stderr, "kms_audit_append: cannot sign the checkpoint\n");
				goto out;
			}
			cvm_hex_encode(sig, sizeof(sig), sig_hex);
			printf(" sig=%s", sig_hex);
		}
		printf("\n");
	}
	rc = 0;
out:
	cvm_audit_close(a);
	cvm_p256_keypair_free(key);
	return rc;
}
