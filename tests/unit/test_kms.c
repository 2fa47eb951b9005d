/* lib/kms: the KMS root material in dstack's and cvmkit's layouts and the
 * app keys derived from it, against spec §3.2's vectors, the compat vectors
 * (compat/kms/inline-vectors.json: K-D1, K-D2) and values computed
 * independently with Python cryptography 48 (P-256, PKCS#8, X25519, HKDF)
 * and @noble/curves (secp256k1, as in test_kdf.c); the App CA derived from
 * the dstack simulator's real test KMS root verifies the real RA-TLS chain
 * of compat/ratls/dstack-kvinwang-demo-server; absent roots are left out,
 * damaged or unsafe ones refused; epochs come from their own folders. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/kdf.h>
#include <cvmkit/kms.h>

#include "vectors.h"

/* spec §3.2 / K-D1: the root of dstack/ra-tls/src/kdf.rs's test */
#define DH_ROOT_SK "f57527cea4ab7ffb49af99b158cdc0e3ec06398f528349ea236b7d2afe19cec1"
/* the simulator fixture's ids (spec §2), as in test_kdf.c */
#define SIM_APP_ID "5bb4ff9a3837357f19dc176407a5709c62eb6c56"
#define SIM_INSTANCE_ID "1691ed1b47506cad7d08834668691d88246f5b1f"
/* R-D1's app id (compat/ratls/expectations.json) */
#define DEMO_APP_ID "9e8af4fc80bde3bea655a161280910c770c8d561"
#define KMS_VECTORS "compat/kms/inline-vectors.json"
#define SIM_APPKEYS "compat/kms/dstack-simulator/appkeys.json"
#define DEMO_CHAIN "compat/ratls/dstack-kvinwang-demo-server/server.crt"

/* ---- helpers ------------------------------------------------------------------ */

static void unhex(const char *hex, uint8_t *out, size_t len)
{
	assert_int_equal(strlen(hex), 2 * len);
	assert_int_equal(cvm_hex_decode_exact(hex, strlen(hex), out, len), CVM_OK);
}

static void assert_hex(const uint8_t *p, size_t len, const char *hex)
{
	char *got = cvm_hex_encode_new(p, len);

	assert_non_null(got);
	assert_string_equal(got, hex);
	free(got);
}

struct tmpdir {
	char path[64];
};

static void tmpdir_make(struct tmpdir *d)
{
	(void)snprintf(d->path, sizeof(d->path), "/tmp/cvm-test-kms-XXXXXX");
	assert_non_null(mkdtemp(d->path));
}

static void join(char *buf, size_t len, const char *dir, const char *name)
{
	assert_true((size_t)snprintf(buf, len, "%s/%s", dir, name) < len);
}

static void write_file(const char *dir, const char *name, const void *p, size_t len, mode_t mode)
{
	char path[256];
	int fd;

	join(path, sizeof(path), dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* rm_tree removes a test folder: its files and epoch-N folders. */
static void rm_tree(const char *dir)
{
	static const char *const names[] = {CVM_KMS_FILE_ROOT_CA_KEY,   CVM_KMS_FILE_ROOT_CA_CERT,
	                                    CVM_KMS_FILE_ROOT_K256_KEY, CVM_KMS_FILE_TMP_CA_KEY,
	                                    CVM_KMS_FILE_TMP_CA_CERT,   CVM_KMS_FILE_RPC_KEY,
	                                    CVM_KMS_FILE_RPC_CERT};
	static const char *const subs[] = {"epoch-0", "epoch-1", "epoch-2"};
	char path[256];

	for (size_t s = 0; s < sizeof(subs) / sizeof(subs[0]); s++) {
		char sub[256];

		join(sub, sizeof(sub), dir, subs[s]);
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			join(path, sizeof(path), sub, names[i]);
			(void)unlink(path);
		}
		(void)rmdir(sub);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		join(path, sizeof(path), dir, names[i]);
		(void)unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
}

/* pem_of_der wraps a PKCS#8 DER as a "PRIVATE KEY" block (64 columns). */
static char *pem_of_der(const uint8_t *der, size_t len)
{
	char *b64 = cvm_base64_encode_new(der, len), *pem;
	size_t n, o = 0;

	assert_non_null(b64);
	n = strlen(b64);
	pem = calloc(1, n + n / 64 + 128);
	assert_non_null(pem);
	o += (size_t)snprintf(pem + o, 64, "-----BEGIN PRIVATE KEY-----\n");
	for (size_t i = 0; i < n; i += 64)
		o += (size_t)snprintf(pem + o, 80, "%.64s\n", b64 + i);
	(void)snprintf(pem + o, 64, "-----END PRIVATE KEY-----\n");
	free(b64);
	return pem;
}

/* write_root_ca_sk writes root-ca.key holding the P-256 scalar `hex`. */
static void write_root_ca_sk(const char *dir, const char *hex)
{
	uint8_t d[32];
	struct cvm_p256_keypair *kp = NULL;
	struct cvm_secret *pem = NULL;

	unhex(hex, d, 32);
	assert_int_equal(cvm_p256_keypair_from_scalar(d, &kp), CVM_OK);
	assert_int_equal(cvm_p256_keypair_pkcs8_pem(kp, &pem), CVM_OK);
	write_file(dir, CVM_KMS_FILE_ROOT_CA_KEY, pem->p, pem->len, 0600);
	cvm_secret_free(pem);
	cvm_p256_keypair_free(kp);
}

/* write_k256_counting writes root-k256.key = 01 02 .. 20 (+ `bump` on the
 * last byte), test_kdf.c's root. */
static void write_k256_counting(const char *dir, uint8_t bump)
{
	uint8_t root[32];

	for (size_t i = 0; i < 32; i++)
		root[i] = (uint8_t)(i + 1);
	root[31] = (uint8_t)(root[31] + bump);
	write_file(dir, CVM_KMS_FILE_ROOT_K256_KEY, root, sizeof(root), 0600);
}

static json_t *load_json(const char *rel)
{
	size_t len = 0;
	uint8_t *raw = vector_read(rel, &len);
	json_error_t je;
	json_t *j = json_loadb((const char *)raw, len, 0, &je);

	free(raw);
	assert_non_null(j);
	return j;
}

/* kms_vector returns the inline vector `id` of compat/kms (borrowed from `all`). */
static json_t *kms_vector(json_t *all, const char *id)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(all, "vectors"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0)
			return v;
	}
	fail_msg("%s has no vector %s", KMS_VECTORS, id);
	return NULL;
}

/* sim_root_dir makes a dstack-layout folder from the simulator's
 * appkeys.json: its KMS CA key as root-ca.key, ca_cert as root-ca.crt. */
static void sim_root_dir(struct tmpdir *d)
{
	json_t *ak = load_json(SIM_APPKEYS);
	const char *key = json_string_value(
	    json_object_get(json_object_get(json_object_get(ak, "key_provider"), "None"), "key"));
	const char *cert = json_string_value(json_object_get(ak, "ca_cert"));

	assert_non_null(key);
	assert_non_null(cert);
	tmpdir_make(d);
	write_file(d->path, CVM_KMS_FILE_ROOT_CA_KEY, key, strlen(key), 0600);
	write_file(d->path, CVM_KMS_FILE_ROOT_CA_CERT, cert, strlen(cert), 0644);
	json_decref(ak);
}

/* ---- vectors ------------------------------------------------------------------ */

static void dh_secret_reproduces_the_compat_kdf_rs_vector(void **state)
{
	json_t *all = load_json(KMS_VECTORS), *v = kms_vector(all, "kms-derive-dh-secret-kdfrs");
	json_t *in = json_object_get(v, "input"), *part;
	const char *der_hex = json_string_value(json_object_get(in, "root_key_pkcs8_der_hex"));
	uint8_t der[138], out[32], info[64];
	size_t info_len = 0, i;
	struct cvm_kms_roots *roots = NULL;
	struct tmpdir d;
	char *pem;

	(void)state;
	assert_non_null(der_hex);
	unhex(der_hex, der, sizeof(der));
	json_array_foreach(json_object_get(in, "context_parts_utf8"), i, part)
	{
		size_t n = strlen(json_string_value(part));

		assert_true(info_len + n <= sizeof(info));
		memcpy(info + info_len, json_string_value(part), n);
		info_len += n;
	}
	/* the root goes through the loader as dstack's root-ca.key would */
	pem = pem_of_der(der, sizeof(der));
	tmpdir_make(&d);
	write_file(d.path, CVM_KMS_FILE_ROOT_CA_KEY, pem, strlen(pem), 0600);
	assert_int_equal(cvm_kms_roots_load(d.path, 0, &roots, NULL, 0), CVM_OK);
	assert_true(cvm_kms_roots_has(roots, CVM_KMS_ROOT_CA_KEY));
	/* the scalar of that PKCS#8 (offset 36), and derive_dh_secret over the parts */
	assert_int_equal(cvm_kdf_dh_secret(der + 36, 32, info, info_len, out), CVM_OK);
	assert_hex(out, 32, json_string_value(json_object_get(json_object_get(v, "expect"), "secret_hex")));
	assert_hex(der + 36, 32, DH_ROOT_SK);
	cvm_kms_roots_free(roots);
	rm_tree(d.path);
	free(pem);
	json_decref(all);
}

static void app_keys_from_a_dstack_dir_match_independent_values(void **state)
{
	uint8_t app_id[20], inst[20], kms_pub[33];
	struct cvm_kms_app_keys k;
	struct cvm_kms_roots *roots = NULL;
	struct tmpdir d;

	(void)state;
	tmpdir_make(&d);
	write_root_ca_sk(d.path, DH_ROOT_SK);
	write_k256_counting(d.path, 0);
	unhex(SIM_APP_ID, app_id, 20);
	unhex(SIM_INSTANCE_ID, inst, 20);
	assert_int_equal(cvm_kms_roots_load(d.path, 0, &roots, NULL, 0), CVM_OK);
	assert_int_equal(cvm_kms_roots_epoch(roots), 0);
	assert_int_equal(cvm_kms_app_keys(roots, app_id, inst, 20, 0, &k), CVM_OK);
	assert_int_equal(k.present,
	                 CVM_KMS_KEY_DISK | CVM_KMS_KEY_ENV | CVM_KMS_KEY_K256 | CVM_KMS_KEY_APP_CA);
	assert_null(k.app_ca_cert); /* no root-ca.crt: no certificate */
	/* Python cryptography 48 (test_kdf.c's dh_secret_and_kms_keys_match_dstack) */
	assert_hex(k.disk_crypt_key->p, 32,
	           "f6fe5ab7893178666e7489553ac4ad84f416278cbec0c3aa3d4bebc0db8e8558");
	assert_hex(k.env_crypt_key->p, 32,
	           "9076d1704969285e45b388ef690eb02b00e0136271d687a4a1ea2ead67c33f5d");
	assert_hex(k.env_crypt_public_key, 32,
	           "4a4d30b8973c08c75b404d5d2f433aaa3baaee0d85389fbd2ce29d09c28a0019");
	assert_hex(k.app_ca_public_key, 33,
	           "026ee85f83e1f1678b0783d912539f5a04c08a42096461578d608b3ba79044f21a");
	/* @noble/curves (test_kdf.c's kms_app_key_issuance_and_chain_match_independent_values) */
	assert_hex(k.k256_key->p, 32, "2bb47ea2f92feae0e3c700d9332d5a4c4bb886f2d5d693198653931b19b310aa");
	assert_hex(k.k256_public_key, 33,
	           "036ed0aeb938a928b823a68afc1d366894cf5398ccc5cad137e73ff0e5cc501416");
	assert_hex(
	    k.k256_signature, 65,
	    "ac1faee283f6c59ad2f38f0ced98c74f3db32f6a7b2696f50f83a526d5bdf9a173991ea4de557b8a53ec5f6400b26a97"
	    "4f1dead4497c1bc1f01f855300ed28f901");
	assert_int_equal(cvm_kms_roots_k256_public(roots, kms_pub), CVM_OK);
	assert_hex(kms_pub, 33, "0284bf7562262bbd6940085748f3be6afa52ae317155181ece31b66351ccffa4b0");
	assert_int_equal(cvm_kdf_k256_check_issued(kms_pub, app_id, k.k256_public_key, k.k256_signature),
	                 CVM_OK);
	cvm_kms_app_keys_cleanup(&k);

	/* no instance id (dstack's no_instance_id): app_id || "app-disk-crypt-key"
	 * (Python cryptography); the other keys do not depend on it */
	assert_int_equal(cvm_kms_app_keys(roots, app_id, NULL, 0, 0, &k), CVM_OK);
	assert_hex(k.disk_crypt_key->p, 32,
	           "f0d1eda4832d2f10d22f393889e8fc8323782a3793ecd5ad15f4d30db028ea5f");
	assert_hex(k.env_crypt_key->p, 32,
	           "9076d1704969285e45b388ef690eb02b00e0136271d687a4a1ea2ead67c33f5d");
	cvm_kms_app_keys_cleanup(&k);
	/* an instance id is 0 or 20 bytes; the epoch is the roots' */
	assert_int_equal(cvm_kms_app_keys(roots, app_id, inst, 19, 0, &k), CVM_E_INVAL);
	assert_int_equal(k.present, 0);
	assert_int_equal(cvm_kms_app_keys(roots, app_id, inst, 20, 1, &k), CVM_E_INVAL);
	assert_int_equal(k.present, 0);
	assert_null(k.disk_crypt_key);
	cvm_kms_roots_free(roots);
	rm_tree(d.path);
}

static void app_ca_from_the_simulator_root_verifies_the_real_ratls_chain(void **state)
{
	json_t *all = load_json(KMS_VECTORS),
	       *v = kms_vector(all, "kms-app-ca-derivation-verifies-real-cert");
	json_t *expect = json_object_get(v, "expect");
	const char *app_hex = json_string_value(json_object_get(json_object_get(v, "input"), "app_id_hex"));
	struct cvm_cert **chain = NULL, **mine = NULL, **root = NULL;
	struct cvm_p256_keypair *ca = NULL;
	struct cvm_kms_roots *roots = NULL;
	struct cvm_kms_app_keys k;
	uint8_t app_id[20], der[138], sig[64];
	size_t chain_len = 0, n = 0, root_n = 0, len = 0;
	uint8_t *pem = vector_read(DEMO_CHAIN, &len);
	struct tmpdir d;

	(void)state;
	assert_string_equal(app_hex, DEMO_APP_ID);
	unhex(app_hex, app_id, 20);
	assert_int_equal(cvm_certs_parse_pem(pem, len, &chain, &chain_len), CVM_OK);
	assert_int_equal(chain_len, 3); /* leaf, Dstack App CA, Dstack KMS CA */
	sim_root_dir(&d);
	assert_int_equal(cvm_kms_roots_load(d.path, 0, &roots, NULL, 0), CVM_OK);
	/* the simulator's root certificate holds the key of the real chain's KMS
	 * CA: it verifies the real App CA certificate (not the same certificate:
	 * its validity differs) */
	assert_non_null(cvm_kms_roots_ca_cert(roots));
	assert_int_equal(cvm_certs_parse_pem((const uint8_t *)cvm_kms_roots_ca_cert(roots),
	                                     strlen(cvm_kms_roots_ca_cert(roots)), &mine, &n),
	                 CVM_OK);
	assert_int_equal(cvm_cert_check_issued(chain[1], mine[0]), CVM_OK);
	root = mine;
	root_n = n;

	assert_int_equal(cvm_kms_app_keys(roots, app_id, NULL, 0, 0, &k), CVM_OK);
	assert_true((k.present & (CVM_KMS_KEY_APP_CA | CVM_KMS_KEY_APP_CA_CERT)) ==
	            (CVM_KMS_KEY_APP_CA | CVM_KMS_KEY_APP_CA_CERT));
	assert_int_equal(k.present & CVM_KMS_KEY_K256, 0); /* appkeys.json holds no k256 root */
	/* K-D2: the scalar (it starts with 00) and the public key */
	assert_hex(k.app_ca_public_key, 33,
	           json_string_value(json_object_get(expect, "app_ca_pubkey_compressed_hex")));
	assert_int_equal(cvm_p256_keypair_from_pem((const char *)k.app_ca_key->p, k.app_ca_key->len, &ca),
	                 CVM_OK);
	cvm_p256_keypair_pkcs8(ca, der);
	assert_hex(der + 36, 32, json_string_value(json_object_get(expect, "app_ca_scalar_hex")));
	assert_true(json_is_true(json_object_get(expect, "leaf_signature_verifies")));
	/* the real App CA certificate certifies the derived key ... */
	assert_int_equal(cvm_p256_keypair_sign(ca, (const uint8_t *)"x", 1, sig), CVM_OK);
	assert_int_equal(cvm_cert_verify_p256(chain[1], (const uint8_t *)"x", 1, sig), CVM_OK);
	/* ... and the derived App CA certificate issued the real leaf, and is
	 * itself issued by the KMS CA (the simulator's certificate of it: the
	 * chain's own copy lacks keyCertSign, compat README surprise 2) */
	assert_int_equal(
	    cvm_certs_parse_pem((const uint8_t *)k.app_ca_cert, strlen(k.app_ca_cert), &mine, &n), CVM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(cvm_cert_check_issued(chain[0], mine[0]), CVM_OK);
	assert_int_equal(cvm_cert_check_issued(mine[0], root[0]), CVM_OK);
	assert_true(cvm_cert_is_ca(mine[0]));
	cvm_certs_free(mine, n);
	cvm_kms_app_keys_cleanup(&k);
	cvm_p256_keypair_free(ca);

	/* another app's App CA does not verify the leaf */
	app_id[19] ^= 1;
	assert_int_equal(cvm_kms_app_keys(roots, app_id, NULL, 0, 0, &k), CVM_OK);
	assert_int_equal(
	    cvm_certs_parse_pem((const uint8_t *)k.app_ca_cert, strlen(k.app_ca_cert), &mine, &n), CVM_OK);
	assert_int_equal(cvm_cert_check_issued(chain[0], mine[0]), CVM_E_SIGNATURE);
	cvm_certs_free(mine, n);
	cvm_kms_app_keys_cleanup(&k);

	cvm_kms_roots_free(roots);
	rm_tree(d.path);
	cvm_certs_free(root, root_n);
	cvm_certs_free(chain, chain_len);
	free(pem);
	json_decref(all);
}

/* ---- absent, damaged and unsafe roots ------------------------------------------ */

static void absent_roots_are_reported_and_the_rest_derived(void **state)
{
	struct cvm_kms_roots *roots = NULL;
	struct cvm_kms_app_keys k;
	uint8_t app_id[20], pub[33];
	struct tmpdir d;
	char path[256];

	(void)state;
	unhex(SIM_APP_ID, app_id, 20);
	tmpdir_make(&d);
	/* nothing at all: loads, every root absent, nothing derived */
	assert_int_equal(cvm_kms_roots_load(d.path, 0, &roots, NULL, 0), CVM_OK);
	for (int i = 0; i < CVM_KMS_ROOT_COUNT; i++) {
		assert_false(cvm_kms_roots_has(roots, (enum cvm_kms_root)i));
		join(path, sizeof(path), d.path, cvm_kms_root_file((enum cvm_kms_root)i));
		assert_string_equal(cvm_kms_roots_path(roots, (enum cvm_kms_root)i), path);
	}
	assert_null(cvm_kms_roots_ca_cert(roots));
	assert_int_equal(cvm_kms_roots_k256_public(roots, pub), CVM_E_INVAL);
	assert_int_equal(cvm_kms_app_keys(roots, app_id, NULL, 0, 0, &k), CVM_OK);
	assert_int_equal(k.present, 0);
	cvm_kms_roots_free(roots);

	/* only the k256 root: the k256 keys, nothing of the CA */
	write_k256_counting(d.path, 0);
	assert_int_equal(cvm_kms_roots_load(d.path, 0, &roots, NULL, 0), CVM_OK);
	assert_true(cvm_kms_roots_has(roots, CVM_KMS_ROOT_K256_KEY));
	assert_false(cvm_kms_roots_has(roots, CVM_KMS_ROOT_CA_KEY));
	assert_int_equal(cvm_kms_app_keys(roots, app_id, NULL, 0, 0, &k), CVM_OK);
	assert_int_equal(k.present, CVM_KMS_KEY_K256);
	assert_null(k.disk_crypt_key);
	assert_null(k.env_crypt_key);
	assert_null(k.app_ca_key);
	assert_hex(k.k256_key->p, 32, "2bb47ea2f92feae0e3c700d9332d5a4c4bb886f2d5d693198653931b19b310aa");
	cvm_kms_app_keys_cleanup(&k);
	cvm_kms_roots_free(roots);
	rm_tree(d.path);
}

/* load_fails loads `dir` and requires `want`, with a message naming `needle`. */
static void load_fails(const char *dir, int want, const char *needle)
{
	struct cvm_kms_roots *roots = (struct cvm_kms_roots *)1;
	char err[512];

	assert_int_equal(cvm_kms_roots_load(dir, 0, &roots, err, sizeof(err)), want);
	assert_null(roots);
	if (strstr(err, needle) == NULL)
		fail_msg("message \"%s\" does not name \"%s\"", err, needle);
}

static void damaged_or_unsafe_roots_are_refused_not_skipped(void **state)
{
	static const char not_pem[] = "not a key\n";
	uint8_t short_k256[31] = {1}, zero_k256[32] = {0};
	struct tmpdir d, sim;
	char path[256], target[256];

	(void)state;
	tmpdir_make(&d);
	/* a root CA key that others may read */
	write_root_ca_sk(d.path, DH_ROOT_SK);
	join(path, sizeof(path), d.path, CVM_KMS_FILE_ROOT_CA_KEY);
	assert_int_equal(chmod(path, 0644), 0);
	load_fails(d.path, CVM_E_POLICY, CVM_KMS_FILE_ROOT_CA_KEY);
	/* a symbolic link in its place */
	assert_int_equal(unlink(path), 0);
	join(target, sizeof(target), d.path, "elsewhere");
	assert_int_equal(symlink(target, path), 0);
	load_fails(d.path, CVM_E_POLICY, CVM_KMS_FILE_ROOT_CA_KEY);
	assert_int_equal(unlink(path), 0);
	/* not a PEM key */
	write_file(d.path, CVM_KMS_FILE_ROOT_CA_KEY, not_pem, sizeof(not_pem) - 1, 0600);
	load_fails(d.path, CVM_E_FORMAT, CVM_KMS_FILE_ROOT_CA_KEY);
	assert_int_equal(unlink(path), 0);
	/* a k256 root of 31 bytes, and one that is no valid scalar */
	write_file(d.path, CVM_KMS_FILE_ROOT_K256_KEY, short_k256, sizeof(short_k256), 0600);
	load_fails(d.path, CVM_E_FORMAT, "31 bytes");
	write_file(d.path, CVM_KMS_FILE_ROOT_K256_KEY, zero_k256, sizeof(zero_k256), 0600);
	load_fails(d.path, CVM_E_FORMAT, "not a valid secp256k1 secret");
	rm_tree(d.path);

	/* a root-ca.crt that does not certify root-ca.key: the simulator's
	 * certificate next to another key */
	sim_root_dir(&sim);
	write_root_ca_sk(sim.path, DH_ROOT_SK);
	load_fails(sim.path, CVM_E_FORMAT, "does not certify the key in");
	/* a certificate file that is no certificate */
	write_root_ca_sk(sim.path, DH_ROOT_SK);
	write_file(sim.path, CVM_KMS_FILE_ROOT_CA_CERT, not_pem, sizeof(not_pem) - 1, 0644);
	load_fails(sim.path, CVM_E_FORMAT, CVM_KMS_FILE_ROOT_CA_CERT);
	rm_tree(sim.path);
	/* a directory that does not exist */
	load_fails("/nonexistent/cvm-kms-roots", CVM_E_SYSTEM, "/nonexistent/cvm-kms-roots");
}

/* ---- epochs -------------------------------------------------------------------- */

static void epochs_come_from_their_own_folders(void **state)
{
	struct cvm_kms_roots *r0 = NULL, *r1 = NULL, *again = NULL;
	struct cvm_kms_app_keys k0, k1, k;
	uint8_t app_id[20];
	struct tmpdir d;
	char sub[256];
	char err[512];

	(void)state;
	unhex(SIM_APP_ID, app_id, 20);
	tmpdir_make(&d);
	write_root_ca_sk(d.path, DH_ROOT_SK);
	write_k256_counting(d.path, 0);
	join(sub, sizeof(sub), d.path, "epoch-1");
	assert_int_equal(mkdir(sub, 0700), 0);
	write_root_ca_sk(sub, "0000000000000000000000000000000000000000000000000000000000000007");
	write_k256_counting(sub, 1);

	assert_int_equal(cvm_kms_roots_load(d.path, 0, &r0, NULL, 0), CVM_OK);
	assert_int_equal(cvm_kms_roots_load(d.path, 1, &r1, NULL, 0), CVM_OK);
	assert_int_equal(cvm_kms_roots_epoch(r1), 1);
	assert_non_null(strstr(cvm_kms_roots_path(r1, CVM_KMS_ROOT_CA_KEY), "/epoch-1/root-ca.key"));
	assert_int_equal(cvm_kms_app_keys(r0, app_id, NULL, 0, 0, &k0), CVM_OK);
	assert_int_equal(cvm_kms_app_keys(r1, app_id, NULL, 0, 1, &k1), CVM_OK);
	assert_int_equal(k1.epoch, 1);
	/* epoch 0 is dstack's key; epoch 1 derives every key anew from its roots */
	assert_hex(k0.env_crypt_key->p, 32,
	           "9076d1704969285e45b388ef690eb02b00e0136271d687a4a1ea2ead67c33f5d");
	assert_memory_not_equal(k0.disk_crypt_key->p, k1.disk_crypt_key->p, 32);
	assert_memory_not_equal(k0.env_crypt_key->p, k1.env_crypt_key->p, 32);
	assert_memory_not_equal(k0.k256_key->p, k1.k256_key->p, 32);
	assert_memory_not_equal(k0.app_ca_public_key, k1.app_ca_public_key, 33);
	/* the roots of one epoch never give another epoch's keys */
	assert_int_equal(cvm_kms_app_keys(r1, app_id, NULL, 0, 0, &k), CVM_E_INVAL);
	assert_int_equal(cvm_kms_app_keys(r0, app_id, NULL, 0, 1, &k), CVM_E_INVAL);
	cvm_kms_roots_free(r1);

	/* an epoch without its folder, and one over the maximum */
	assert_int_equal(cvm_kms_roots_load(d.path, 2, &again, err, sizeof(err)), CVM_E_SYSTEM);
	assert_non_null(strstr(err, "epoch-2 does not exist"));
	assert_int_equal(cvm_kms_roots_load(d.path, CVM_KMS_EPOCH_MAX + 1, &again, err, sizeof(err)),
	                 CVM_E_INVAL);

	/* epoch 0 in epoch-0/ gives the same keys as at the top ... */
	join(sub, sizeof(sub), d.path, "epoch-0");
	assert_int_equal(mkdir(sub, 0700), 0);
	load_fails(d.path, CVM_E_POLICY, "epoch-0"); /* ... but not both at once */
	write_root_ca_sk(sub, DH_ROOT_SK);
	write_k256_counting(sub, 0);
	join(sub, sizeof(sub), d.path, CVM_KMS_FILE_ROOT_CA_KEY);
	assert_int_equal(unlink(sub), 0);
	join(sub, sizeof(sub), d.path, CVM_KMS_FILE_ROOT_K256_KEY);
	assert_int_equal(unlink(sub), 0);
	assert_int_equal(cvm_kms_roots_load(d.path, 0, &again, NULL, 0), CVM_OK);
	assert_int_equal(cvm_kms_app_keys(again, app_id, NULL, 0, 0, &k), CVM_OK);
	assert_memory_equal(k.disk_crypt_key->p, k0.disk_crypt_key->p, 32);
	assert_memory_equal(k.k256_signature, k0.k256_signature, 65);
	cvm_kms_app_keys_cleanup(&k);
	cvm_kms_roots_free(again);

	cvm_kms_app_keys_cleanup(&k0);
	cvm_kms_app_keys_cleanup(&k1);
	cvm_kms_app_keys_cleanup(&k1); /* twice is safe */
	cvm_kms_roots_free(r0);
	rm_tree(d.path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(dh_secret_reproduces_the_compat_kdf_rs_vector),
	    cmocka_unit_test(app_keys_from_a_dstack_dir_match_independent_values),
	    cmocka_unit_test(app_ca_from_the_simulator_root_verifies_the_real_ratls_chain),
	    cmocka_unit_test(absent_roots_are_reported_and_the_rest_derived),
	    cmocka_unit_test(damaged_or_unsafe_roots_are_refused_not_skipped),
	    cmocka_unit_test(epochs_come_from_their_own_folders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
