/* Making a KMS's root material (cvm-kmsd bootstrap, rotate) and the
 * certificates cvm-kmsd issues with it at start (include/cvmkit/kms.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/file.h>
#include <cvmkit/kms.h>
#include <cvmkit/random.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tpm.h>

#include "core/core_lib.h"
#include "crypto/crypto_lib.h"
#include "kms_int.h"

#define YEAR_S ((int64_t)365 * 24 * 3600)

/* write_key writes a new key file; an existing one is an error here (the
 * folder was checked empty: something else is writing it). */
static int write_key(int dfd, const char *dir, const char *name, const void *buf, size_t len, char *err,
                     size_t err_len)
{
	bool created = false;
	char why[256] = "";
	int r = cvm_file_create_key(dfd, name, buf, len, &created, why, sizeof(why));

	if (r != CVM_OK) {
		(void)cvm_err_set(err, err_len, 0, "cannot write %s/%s: %s", dir, name, why);
		return r;
	}
	if (!created) {
		(void)cvm_err_set(
		    err, err_len, 0,
		    "%s/%s appeared while bootstrapping: another process is writing these roots", dir, name);
		return CVM_E_POLICY;
	}
	return CVM_OK;
}

/* p256_scalar takes the scalar out of the canonical PKCS#8 encoding
 * (crypto.h: the scalar follows a fixed 36-byte prefix). */
static int p256_scalar(const struct cvm_p256_keypair *kp, uint8_t d[32])
{
	static const uint8_t prefix[36] = {0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06,
	                                   0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
	                                   0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
	                                   0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20};
	uint8_t der[CVM_P256_PKCS8_DER_LEN];
	int r = CVM_OK;

	cvm_p256_keypair_pkcs8(kp, der);
	if (memcmp(der, prefix, sizeof(prefix)) != 0)
		r = CVM_E_INTERNAL;
	else
		memcpy(d, der + sizeof(prefix), 32);
	cvm_wipe(der, sizeof(der));
	return r;
}

/* write_root_key writes the key of `root`: without a TPM, `plain` (the
 * file's bytes) under the root's name; with one, the root's number and
 * `scalar` sealed to it, under the sealed name (kms_int.h). */
static int write_root_key(int dfd, const char *dir, enum cvm_kms_root root, struct cvm_tpm *tpm,
                          const void *plain, size_t plain_len, const uint8_t scalar[32], char *err,
                          size_t err_len)
{
	uint8_t payload[KMS_SEALED_LEN];
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	char why[256] = "";
	int r;

	if (tpm == NULL)
		return write_key(dfd, dir, cvm_kms_root_file(root), plain, plain_len, err, err_len);
	payload[0] = (uint8_t)root;
	memcpy(payload + 1, scalar, 32);
	r = cvm_tpm_seal(tpm, payload, sizeof(payload), &blob, &blob_len, why, sizeof(why));
	cvm_wipe(payload, sizeof(payload));
	if (r != CVM_OK) {
		(void)cvm_err_set(err, err_len, 0, "cannot seal %s/%s to the TPM: %s", dir,
		                  cvm_kms_root_sealed_file(root), why);
		return r;
	}
	r = write_key(dfd, dir, cvm_kms_root_sealed_file(root), blob, blob_len, err, err_len);
	free(blob);
	return r;
}

static int write_cert(int dfd, const char *dir, const char *name, const char *pem, char *err, size_t err_len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	size_t len = strlen(pem), off = 0;

	if (fd < 0) {
		(void)cvm_err_set(err, err_len, 0, "cannot create %s/%s: %s", dir, name, strerror(errno));
		return CVM_E_SYSTEM;
	}
	while (off < len) {
		ssize_t n = write(fd, pem + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)cvm_err_set(err, err_len, 0, "cannot write %s/%s: %s", dir, name,
			                  strerror(errno));
			(void)close(fd);
			return CVM_E_SYSTEM;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		(void)cvm_err_set(err, err_len, 0, "cannot write %s/%s: %s", dir, name, strerror(errno));
		return CVM_E_SYSTEM;
	}
	return CVM_OK;
}

/* make_ca makes a P-256 CA key and its self-signed certificate (or one
 * issued by `issuer`), and writes both. */
static int make_ca(int dfd, const char *dir, enum cvm_kms_root key_root, const char *cert_name,
                   const char *cn, int path_len, int64_t now, int64_t years, struct cvm_tpm *tpm, char *err,
                   size_t err_len)
{
	struct cvm_p256_keypair *kp = NULL;
	struct cvm_secret *pem = NULL;
	struct cvm_cert_template t;
	uint8_t d[32];
	char *cert = NULL;
	size_t cert_len = 0;
	int r;

	memset(d, 0, sizeof(d));
	r = cvm_p256_keypair_generate(&kp);
	if (r == CVM_OK)
		r = cvm_p256_keypair_pkcs8_pem(kp, &pem);
	if (r == CVM_OK && tpm != NULL)
		r = p256_scalar(kp, d);
	if (r != CVM_OK) {
		(void)cvm_err_set(err, err_len, 0, "cannot make the %s key: %s", cn, cvm_strerror(r));
		goto out;
	}
	cvm_cert_template_init(&t);
	t.common_name = cn;
	t.organization = CVM_KMS_APP_CA_ORG;
	t.not_before = now - 3600; /* clocks of verifiers that lag a little */
	t.not_after = now + years * YEAR_S;
	t.is_ca = true;
	t.path_len = path_len;
	r = cvm_cert_make(&t, kp, NULL, NULL, &cert, &cert_len);
	if (r != CVM_OK) {
		(void)cvm_err_set(err, err_len, 0, "cannot make the %s certificate: %s", cn, cvm_strerror(r));
		goto out;
	}
	r = write_root_key(dfd, dir, key_root, tpm, pem->p, pem->len, d, err, err_len);
	if (r == CVM_OK)
		r = write_cert(dfd, dir, cert_name, cert, err, err_len);
out:
	cvm_wipe(d, sizeof(d));
	free(cert);
	cvm_secret_free(pem);
	cvm_p256_keypair_free(kp);
	return r;
}

/* new_epoch_dir makes DIR (0700, when missing) and the new, empty folder
 * DIR/epoch-<N> (0700) and opens it: *dfd, its path in `path`. An existing
 * epoch folder, or for epoch 0 root files at the top of DIR (dstack's
 * layout), is CVM_E_POLICY: roots are never made or written twice. */
static int new_epoch_dir(const char *dir, uint32_t epoch, char *path, size_t path_cap, int *dfd, char *err,
                         size_t err_len)
{
	char sub[32];
	int top, e, r = CVM_OK;

	*dfd = -1;
	(void)snprintf(sub, sizeof(sub), "epoch-%u", (unsigned)epoch);
	if ((size_t)snprintf(path, path_cap, "%s/%s", dir, sub) >= path_cap) {
		(void)cvm_err_set(err, err_len, 0, "the root directory's path is too long");
		return CVM_E_TOO_LARGE;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		(void)cvm_err_set(err, err_len, 0, "cannot make the root directory %s: %s", dir,
		                  strerror(errno));
		return CVM_E_SYSTEM;
	}
	top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0) {
		(void)cvm_err_set(err, err_len, 0, "cannot open the root directory %s: %s", dir,
		                  strerror(errno));
		return CVM_E_SYSTEM;
	}
	if (epoch == 0) {
		/* dstack's layout keeps epoch 0 at the top: never a second epoch 0 */
		struct stat st;

		if (fstatat(top, CVM_KMS_FILE_ROOT_CA_KEY, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
		    fstatat(top, CVM_KMS_FILE_ROOT_K256_KEY, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
		    fstatat(top, CVM_KMS_FILE_ROOT_CA_KEY_SEALED, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
		    fstatat(top, CVM_KMS_FILE_ROOT_K256_KEY_SEALED, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			(void)cvm_err_set(
			    err, err_len, 0,
			    "%s already holds epoch 0's roots in dstack's layout: nothing was made (roots "
			    "are "
			    "made once; a new epoch is `rotate`)",
			    dir);
			r = CVM_E_POLICY;
			goto out;
		}
	}
	if (mkdirat(top, sub, 0700) != 0) {
		e = errno;
		if (e == EEXIST)
			(void)cvm_err_set(
			    err, err_len, 0,
			    "%s already exists: the roots of epoch %u were made before, and are never made "
			    "twice (nothing was changed)",
			    path, (unsigned)epoch);
		else
			(void)cvm_err_set(err, err_len, 0, "cannot make %s: %s", path, strerror(e));
		r = e == EEXIST ? CVM_E_POLICY : CVM_E_SYSTEM;
		goto out;
	}
	*dfd = openat(top, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dfd < 0) {
		(void)cvm_err_set(err, err_len, 0, "cannot open %s: %s", path, strerror(errno));
		r = CVM_E_SYSTEM;
	}
out:
	(void)close(top);
	return r;
}

/* sync_dir makes the new epoch folder's entry durable in DIR. */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		(void)close(fd);
	}
}

int cvm_kms_bootstrap(const char *dir, uint32_t epoch, int64_t now, char *err, size_t err_len)
{
	return cvm_kms_bootstrap_tpm(dir, epoch, now, NULL, err, err_len);
}

/* check_sealed loads what was just sealed back, so that a TPM that seals
 * but cannot unseal is found now, not at the next start. */
static int check_sealed(const char *dir, uint32_t epoch, struct cvm_tpm *tpm, char *err, size_t err_len)
{
	struct cvm_kms_roots *check = NULL;
	int r = cvm_kms_roots_load_tpm(dir, epoch, tpm, &check, err, err_len);

	cvm_kms_roots_free(check);
	return r;
}

int cvm_kms_bootstrap_tpm(const char *dir, uint32_t epoch, int64_t now, struct cvm_tpm *tpm, char *err,
                          size_t err_len)
{
	char path[4096];
	uint8_t k256[CVM_K256_SECKEY_LEN];
	int dfd = -1, r;

	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (dir == NULL || epoch > CVM_KMS_EPOCH_MAX || now <= 0) {
		(void)cvm_err_set(err, err_len, 0, "bad arguments");
		return CVM_E_INVAL;
	}
	r = new_epoch_dir(dir, epoch, path, sizeof(path), &dfd, err, err_len);
	if (r != CVM_OK)
		return r;
	r = make_ca(dfd, path, CVM_KMS_ROOT_CA_KEY, CVM_KMS_FILE_ROOT_CA_CERT, CVM_KMS_ROOT_CA_CN, 1, now,
	            CVM_KMS_ROOT_CA_YEARS, tpm, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = make_ca(dfd, path, CVM_KMS_ROOT_TMP_CA_KEY, CVM_KMS_FILE_TMP_CA_CERT, CVM_KMS_TMP_CA_CN, 0, now,
	            CVM_KMS_ROOT_CA_YEARS, tpm, err, err_len);
	if (r != CVM_OK)
		goto out;
	do {
		r = cvm_random_bytes(k256, sizeof(k256));
		if (r != CVM_OK) {
			(void)cvm_err_set(err, err_len, 0, "cannot draw the secp256k1 root: %s",
			                  cvm_strerror(r));
			goto out;
		}
	} while (cvm_k256_seckey_check(k256) != CVM_OK);
	r = write_root_key(dfd, path, CVM_KMS_ROOT_K256_KEY, tpm, k256, sizeof(k256), k256, err, err_len);
	if (r == CVM_OK && fsync(dfd) != 0) {
		(void)cvm_err_set(err, err_len, 0, "cannot sync %s: %s", path, strerror(errno));
		r = CVM_E_SYSTEM;
	}
out:
	cvm_wipe(k256, sizeof(k256));
	if (dfd >= 0)
		(void)close(dfd);
	if (r == CVM_OK)
		sync_dir(dir);
	if (r == CVM_OK && tpm != NULL)
		r = check_sealed(dir, epoch, tpm, err, err_len);
	return r;
}

int cvm_kms_roots_tmp_ca(const struct cvm_kms_roots *r, char **cert_pem, struct cvm_secret **key_pem)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	int rc;

	if (cert_pem != NULL)
		*cert_pem = NULL;
	if (key_pem != NULL)
		*key_pem = NULL;
	if (r == NULL || cert_pem == NULL || key_pem == NULL || !r->has[CVM_KMS_ROOT_TMP_CA_KEY] ||
	    !r->has[CVM_KMS_ROOT_TMP_CA_CERT])
		return CVM_E_INVAL;
	rc = cvm_certs_pem(r->tmp_ca_cert, 1, &pem, &len);
	if (rc != CVM_OK)
		return rc;
	*cert_pem = malloc(len + 1);
	if (*cert_pem == NULL) {
		free(pem);
		return CVM_E_NOMEM;
	}
	memcpy(*cert_pem, pem, len);
	(*cert_pem)[len] = '\0';
	free(pem);
	rc = cvm_p256_keypair_pkcs8_pem(r->tmp_ca_key, key_pem);
	if (rc != CVM_OK) {
		free(*cert_pem);
		*cert_pem = NULL;
	}
	return rc;
}

int cvm_kms_issue_rpc_cert(const struct cvm_kms_roots *r, const struct cvm_p256_keypair *key,
                           const char *domain, const struct cvm_ratls_evidence *ev, int64_t now,
                           int64_t lifetime, char **chain_pem, size_t *chain_len)
{
	const char *alt[1];
	struct cvm_ratls_make_opts o;
	char *leaf = NULL;
	size_t leaf_len = 0, ca_len;
	int rc;

	if (chain_pem != NULL)
		*chain_pem = NULL;
	if (chain_len != NULL)
		*chain_len = 0;
	if (r == NULL || key == NULL || domain == NULL || domain[0] == '\0' || chain_pem == NULL ||
	    chain_len == NULL || lifetime <= 0 || !r->has[CVM_KMS_ROOT_CA_KEY] ||
	    !r->has[CVM_KMS_ROOT_CA_CERT])
		return CVM_E_INVAL;
	alt[0] = domain;
	memset(&o, 0, sizeof(o));
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	o.common_name = domain;
	o.alt_names = alt;
	o.alt_name_count = 1;
	o.not_before = now - 60;
	o.not_after = now + lifetime;
	if (o.not_after > cvm_cert_not_after(r->ca_cert[0]))
		o.not_after = cvm_cert_not_after(r->ca_cert[0]);
	o.server_auth = true;
	o.legacy_tdx = ev != NULL && ev->tee == CVM_RATLS_TEE_TDX;
	o.usage = CVM_KMS_USAGE_RPC;
	rc = cvm_ratls_make(&o, key, ev, r->ca_key, r->ca_cert[0], &leaf, &leaf_len);
	if (rc != CVM_OK)
		return rc;
	ca_len = strlen(r->ca_cert_pem);
	*chain_pem = malloc(leaf_len + 1 + ca_len + 1);
	if (*chain_pem == NULL) {
		free(leaf);
		return CVM_E_NOMEM;
	}
	memcpy(*chain_pem, leaf, leaf_len);
	*chain_len = leaf_len;
	if (leaf_len > 0 && leaf[leaf_len - 1] != '\n')
		(*chain_pem)[(*chain_len)++] = '\n';
	memcpy(*chain_pem + *chain_len, r->ca_cert_pem, ca_len);
	*chain_len += ca_len;
	(*chain_pem)[*chain_len] = '\0';
	free(leaf);
	return CVM_OK;
}

int cvm_kms_roots_k256_secret(const struct cvm_kms_roots *r, const struct cvm_secret **out)
{
	if (out != NULL)
		*out = NULL;
	if (r == NULL || out == NULL || !r->has[CVM_KMS_ROOT_K256_KEY])
		return CVM_E_INVAL;
	*out = r->k256_key;
	return CVM_OK;
}

int cvm_kms_roots_ca_key_pem(const struct cvm_kms_roots *r, struct cvm_secret **out)
{
	if (out != NULL)
		*out = NULL;
	if (r == NULL || out == NULL || !r->has[CVM_KMS_ROOT_CA_KEY])
		return CVM_E_INVAL;
	return cvm_p256_keypair_pkcs8_pem(r->ca_key, out);
}

int cvm_kms_roots_import(const char *dir, const struct cvm_kms_root_files *f, char *err, size_t err_len)
{
	return cvm_kms_roots_import_tpm(dir, f, NULL, err, err_len);
}

/* pem_scalar reads a P-256 PEM key's scalar (for sealing an imported root). */
static int pem_scalar(const uint8_t *pem, size_t len, uint8_t d[32], char *err, size_t err_len)
{
	struct cvm_p256_keypair *kp = NULL;
	int r = cvm_p256_keypair_from_pem((const char *)pem, len, &kp);

	if (r != CVM_OK) {
		(void)cvm_err_set(err, err_len, 0, "an imported root CA key is not a P-256 PEM key: %s",
		                  cvm_strerror(r));
		return r;
	}
	r = p256_scalar(kp, d);
	cvm_p256_keypair_free(kp);
	return r;
}

int cvm_kms_roots_import_tpm(const char *dir, const struct cvm_kms_root_files *f, struct cvm_tpm *tpm,
                             char *err, size_t err_len)
{
	struct cvm_kms_roots *check = NULL;
	char path[4096];
	uint8_t ca_d[32], tmp_d[32];
	int dfd = -1, r;

	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (dir == NULL || f == NULL || f->epoch > CVM_KMS_EPOCH_MAX || f->ca_key_pem == NULL ||
	    f->ca_cert_pem == NULL || f->k256 == NULL ||
	    (f->tmp_ca_key_pem == NULL) != (f->tmp_ca_cert_pem == NULL))
		return CVM_E_INVAL;
	memset(ca_d, 0, sizeof(ca_d));
	memset(tmp_d, 0, sizeof(tmp_d));
	if (tpm != NULL) {
		/* before anything is made: a key that cannot be sealed leaves no folder */
		r = pem_scalar(f->ca_key_pem, f->ca_key_pem_len, ca_d, err, err_len);
		if (r == CVM_OK && f->tmp_ca_key_pem != NULL)
			r = pem_scalar(f->tmp_ca_key_pem, f->tmp_ca_key_pem_len, tmp_d, err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	r = new_epoch_dir(dir, f->epoch, path, sizeof(path), &dfd, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = write_root_key(dfd, path, CVM_KMS_ROOT_CA_KEY, tpm, f->ca_key_pem, f->ca_key_pem_len, ca_d, err,
	                   err_len);
	if (r == CVM_OK)
		r = write_cert(dfd, path, CVM_KMS_FILE_ROOT_CA_CERT, f->ca_cert_pem, err, err_len);
	if (r == CVM_OK)
		r = write_root_key(dfd, path, CVM_KMS_ROOT_K256_KEY, tpm, f->k256, CVM_K256_SECKEY_LEN,
		                   f->k256, err, err_len);
	if (r == CVM_OK && f->tmp_ca_key_pem != NULL)
		r = write_root_key(dfd, path, CVM_KMS_ROOT_TMP_CA_KEY, tpm, f->tmp_ca_key_pem,
		                   f->tmp_ca_key_pem_len, tmp_d, err, err_len);
	if (r == CVM_OK && f->tmp_ca_cert_pem != NULL)
		r = write_cert(dfd, path, CVM_KMS_FILE_TMP_CA_CERT, f->tmp_ca_cert_pem, err, err_len);
	if (r == CVM_OK && fsync(dfd) != 0) {
		(void)cvm_err_set(err, err_len, 0, "cannot sync %s: %s", path, strerror(errno));
		r = CVM_E_SYSTEM;
	}
	/* What was written must load as roots: pairs that match, a valid k256. */
	if (r == CVM_OK)
		r = cvm_kms_roots_load_tpm(dir, f->epoch, tpm, &check, err, err_len);
	if (r == CVM_OK && (!cvm_kms_roots_has(check, CVM_KMS_ROOT_CA_KEY) ||
	                    !cvm_kms_roots_has(check, CVM_KMS_ROOT_CA_CERT) ||
	                    !cvm_kms_roots_has(check, CVM_KMS_ROOT_K256_KEY))) {
		(void)cvm_err_set(err, err_len, 0, "%s: the imported roots do not load", path);
		r = CVM_E_FORMAT;
	}
	cvm_kms_roots_free(check);
	if (dfd >= 0)
		(void)close(dfd);
	if (r == CVM_OK)
		sync_dir(dir);
out:
	cvm_wipe(ca_d, sizeof(ca_d));
	cvm_wipe(tmp_d, sizeof(tmp_d));
	return r;
}

int cvm_kms_epochs_save(const char *dir, const struct cvm_kms_epochs *t, char *err, size_t err_len)
{
	return kms_epochs_save(dir, t, err, err_len);
}
