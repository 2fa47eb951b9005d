/* The local key provider: a random seed in a state directory, kept with the
 * file discipline of a private key, and dstack's seed-based derivation of a
 * full app key set from it (spec §3.7). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/file.h>
#include <cvmkit/kdf.h>
#include <cvmkit/random.h>

#include "core/core_lib.h"

#define SEED_MIN 16
#define SEED_MAX 1024

/* The local app CA: fixed names and validity, so that a seed always gives
 * the same CA apart from its signature. 1735689600 = 2025-01-01T00:00:00Z;
 * 253402300799 = 9999-12-31T23:59:59Z (RFC 5280 4.1.2.5: no expiry). */
#define LOCAL_CA_ORG "cvmkit"
#define LOCAL_CA_CN "cvmkit Local App CA"
#define LOCAL_CA_NOT_BEFORE INT64_C(1735689600)
#define LOCAL_CA_NOT_AFTER INT64_C(253402300799)
#define LOCAL_CA_PATH_LEN 1

/* set_msg writes one sentence into `err` (core's cvm_err_set). */
#define set_msg(err, err_len, ...) ((void)cvm_err_set((err), (err_len), CVM_OK, __VA_ARGS__))

/* fail(err, err_len, r, fmt, ...) writes the message and evaluates to `r`
 * (a macro: static analysers do not follow variadic calls). */
#define fail(err, err_len, r, ...) (set_msg((err), (err_len), __VA_ARGS__), (r))

static int local_ca_cert(const struct cvm_p256_keypair *ca, const uint8_t *spki, size_t spki_len, char **out)
{
	struct cvm_cert_template t;
	uint8_t serial[16], h[32];
	size_t pem_len = 0;

	/* serial: the key's fingerprint, positive and never zero */
	cvm_sha256(spki, spki_len, h);
	memcpy(serial, h, sizeof(serial));
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
	cvm_cert_template_init(&t);
	t.common_name = LOCAL_CA_CN;
	t.organization = LOCAL_CA_ORG;
	t.not_before = LOCAL_CA_NOT_BEFORE;
	t.not_after = LOCAL_CA_NOT_AFTER;
	t.is_ca = true;
	t.path_len = LOCAL_CA_PATH_LEN;
	t.serial = serial;
	t.serial_len = sizeof(serial);
	return cvm_cert_make(&t, ca, NULL, NULL, out, &pem_len);
}

int cvm_appkeys_from_seed(const uint8_t *seed, size_t seed_len, struct cvm_appkeys **out)
{
	struct cvm_appkeys *k = NULL;
	struct cvm_p256_keypair *ca = NULL;
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	int r = CVM_E_NOMEM;

	*out = NULL;
	if (seed == NULL || seed_len < SEED_MIN || seed_len > SEED_MAX)
		return CVM_E_INVAL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return CVM_E_NOMEM;
	k->key_provider = CVM_KEY_PROVIDER_LOCAL;
	k->k256_key = cvm_secret_new(CVM_K256_SECKEY_LEN);
	k->disk_crypt_key = cvm_secret_new(32);
	k->env_crypt_key = cvm_secret_new(0);
	k->gateway_app_id = strdup("");
	if (k->k256_key == NULL || k->disk_crypt_key == NULL || k->env_crypt_key == NULL ||
	    k->gateway_app_id == NULL)
		goto out;
	r = cvm_kdf_derive(seed, seed_len, (const uint8_t *)CVM_KDF_LABEL_SEED_K256,
	                   sizeof(CVM_KDF_LABEL_SEED_K256) - 1, k->k256_key->p, k->k256_key->len);
	if (r != CVM_OK)
		goto out;
	/* an invalid scalar has probability ~2^-128; dstack fails too */
	r = cvm_k256_seckey_check(k->k256_key->p);
	if (r != CVM_OK)
		goto out;
	r = cvm_kdf_dh_secret(seed, seed_len, (const uint8_t *)CVM_KDF_LABEL_SEED_DISK,
	                      sizeof(CVM_KDF_LABEL_SEED_DISK) - 1, k->disk_crypt_key->p);
	if (r != CVM_OK)
		goto out;
	r = cvm_kdf_derive_p256(seed, seed_len, (const uint8_t *)CVM_KDF_LABEL_SEED_CA_KEY,
	                        sizeof(CVM_KDF_LABEL_SEED_CA_KEY) - 1, &ca);
	if (r != CVM_OK)
		goto out;
	r = cvm_p256_keypair_pkcs8_pem(ca, &k->key_provider_key);
	if (r != CVM_OK)
		goto out;
	r = cvm_p256_keypair_spki(ca, &spki, &spki_len);
	if (r != CVM_OK)
		goto out;
	r = local_ca_cert(ca, spki, spki_len, &k->ca_cert);
	if (r != CVM_OK)
		goto out;
	k->key_provider_id = spki;
	k->key_provider_id_len = spki_len;
	spki = NULL; /* transferred */
	*out = k;
	k = NULL; /* transferred */
out:
	free(spki);
	cvm_p256_keypair_free(ca);
	cvm_appkeys_free(k);
	return r;
}

/* ---- the seed file ---------------------------------------------------------- */

/* create_seed writes a new random seed as the key file CVM_LOCAL_SEED_FILE
 * (cvm_file_create_key). If another process linked one first, that one
 * wins and this call succeeds all the same: the caller then reads it. */
static int create_seed(int dfd, char *err, size_t err_len)
{
	struct cvm_secret *seed = NULL;
	char why[512];
	bool created = false;
	int r, saved;

	seed = cvm_secret_new(CVM_LOCAL_SEED_LEN);
	if (seed == NULL)
		return CVM_E_NOMEM;
	r = cvm_random_bytes(seed->p, seed->len);
	if (r == CVM_OK)
		r = cvm_file_create_key(dfd, CVM_LOCAL_SEED_FILE, seed->p, seed->len, &created, why,
		                        sizeof(why));
	else
		(void)snprintf(why, sizeof(why), "getrandom failed");
	saved = errno;
	cvm_secret_free(seed);
	if (r != CVM_OK) {
		(void)fail(err, err_len, r, "local provider: %s", why);
		errno = saved;
	}
	return r;
}

int cvm_appkeys_local_open(const char *state_dir, struct cvm_appkeys **out, char *err, size_t err_len)
{
	struct cvm_secret *seed = NULL;
	struct stat st;
	int dfd = -1, r = CVM_E_SYSTEM, saved = 0;

	*out = NULL;
	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (state_dir == NULL)
		return fail(err, err_len, CVM_E_INVAL, "local provider: no state directory");
	dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		saved = errno;
		r = fail(err, err_len, CVM_E_SYSTEM, "local provider: cannot open the state directory: %s",
		         strerror(saved));
		goto out;
	}
	if (fstat(dfd, &st) != 0) {
		saved = errno;
		goto out;
	}
	/* whoever may write the directory may swap the seed for their own */
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		r = fail(err, err_len, CVM_E_POLICY,
		         "local provider: the state directory has mode %03o: group or others may write it",
		         (unsigned)(st.st_mode & 0777));
		goto out;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		char why[512];

		r = cvm_file_read_key(dfd, CVM_LOCAL_SEED_FILE, CVM_LOCAL_SEED_LEN, &seed, why, sizeof(why));
		saved = errno;
		if (r == CVM_E_SYSTEM && saved == ENOENT && attempt == 0) {
			r = create_seed(dfd, err, err_len);
			if (r != CVM_OK) {
				saved = errno;
				goto out;
			}
			continue;
		}
		if (r == CVM_OK && seed->len != CVM_LOCAL_SEED_LEN) {
			(void)snprintf(why, sizeof(why), "%s is %zu bytes, not %d", CVM_LOCAL_SEED_FILE,
			               seed->len, CVM_LOCAL_SEED_LEN);
			r = CVM_E_FORMAT;
		}
		if (r == CVM_E_TOO_LARGE)
			r = CVM_E_FORMAT; /* a seed of the wrong size is never replaced */
		if (r != CVM_OK) {
			r = fail(err, err_len, r, "local provider: %s", why);
			goto out;
		}
		break;
	}
	r = cvm_appkeys_from_seed(seed->p, seed->len, out);
	if (r != CVM_OK)
		(void)fail(err, err_len, r, "local provider: cannot derive keys from the seed (%s)",
		           cvm_strerror(r));
out:
	cvm_secret_free(seed);
	if (dfd >= 0)
		close(dfd);
	if (r == CVM_E_SYSTEM)
		errno = saved;
	return r;
}
