/* The KMS root material: dstack's root files (spec §3.1) from a directory, in
 * dstack's layout or cvmkit's per-epoch one (include/cvmkit/kms.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/file.h>
#include <cvmkit/kms.h>
#include <cvmkit/tpm.h>

#include "core/core_lib.h"

#include "kms_int.h"

/* set_msg writes one sentence into `err` (core's cvm_err_set). */
#define set_msg(err, err_len, ...) ((void)cvm_err_set((err), (err_len), CVM_OK, __VA_ARGS__))

/* fail(err, err_len, r, fmt, ...) writes the message and evaluates to `r`. */
#define fail(err, err_len, r, ...) (set_msg((err), (err_len), __VA_ARGS__), (r))

static const char *const root_files[CVM_KMS_ROOT_COUNT] = {
    [CVM_KMS_ROOT_CA_KEY] = CVM_KMS_FILE_ROOT_CA_KEY,
    [CVM_KMS_ROOT_CA_CERT] = CVM_KMS_FILE_ROOT_CA_CERT,
    [CVM_KMS_ROOT_K256_KEY] = CVM_KMS_FILE_ROOT_K256_KEY,
    [CVM_KMS_ROOT_TMP_CA_KEY] = CVM_KMS_FILE_TMP_CA_KEY,
    [CVM_KMS_ROOT_TMP_CA_CERT] = CVM_KMS_FILE_TMP_CA_CERT,
    [CVM_KMS_ROOT_RPC_KEY] = CVM_KMS_FILE_RPC_KEY,
    [CVM_KMS_ROOT_RPC_CERT] = CVM_KMS_FILE_RPC_CERT,
};

/* The sealed copies' names (kms.h): the secret roots cvm_kms_bootstrap
 * makes; rpc.key is not a root and has none. */
static const char *const sealed_files[CVM_KMS_ROOT_COUNT] = {
    [CVM_KMS_ROOT_CA_KEY] = CVM_KMS_FILE_ROOT_CA_KEY_SEALED,
    [CVM_KMS_ROOT_K256_KEY] = CVM_KMS_FILE_ROOT_K256_KEY_SEALED,
    [CVM_KMS_ROOT_TMP_CA_KEY] = CVM_KMS_FILE_TMP_CA_KEY_SEALED,
};

const char *cvm_kms_root_file(enum cvm_kms_root root)
{
	if ((unsigned)root >= CVM_KMS_ROOT_COUNT)
		return NULL;
	return root_files[root];
}

const char *cvm_kms_root_sealed_file(enum cvm_kms_root root)
{
	if ((unsigned)root >= CVM_KMS_ROOT_COUNT)
		return NULL;
	return sealed_files[root];
}

bool cvm_kms_roots_sealed(const struct cvm_kms_roots *r, enum cvm_kms_root root)
{
	if (r == NULL || (unsigned)root >= CVM_KMS_ROOT_COUNT)
		return false;
	return r->sealed[root];
}

void cvm_kms_roots_free(struct cvm_kms_roots *r)
{
	if (r == NULL)
		return;
	cvm_p256_keypair_free(r->ca_key);
	cvm_p256_keypair_free(r->tmp_ca_key);
	cvm_p256_keypair_free(r->rpc_key);
	cvm_secret_free(r->k256_key);
	for (size_t i = 0; i < CVM_KMS_ROOT_COUNT; i++)
		free(r->path[i]);
	free(r->ca_cert_pem);
	cvm_certs_free(r->ca_cert, r->ca_cert != NULL ? 1 : 0);
	cvm_certs_free(r->tmp_ca_cert, r->tmp_ca_cert != NULL ? 1 : 0);
	cvm_certs_free(r->rpc_cert, r->rpc_cert != NULL ? 1 : 0);
	cvm_wipe(r, sizeof(*r));
	free(r);
}

uint32_t cvm_kms_roots_epoch(const struct cvm_kms_roots *r)
{
	return r != NULL ? r->epoch : 0;
}

bool cvm_kms_roots_has(const struct cvm_kms_roots *r, enum cvm_kms_root root)
{
	if (r == NULL || (unsigned)root >= CVM_KMS_ROOT_COUNT)
		return false;
	return r->has[root];
}

const char *cvm_kms_roots_path(const struct cvm_kms_roots *r, enum cvm_kms_root root)
{
	if (r == NULL || (unsigned)root >= CVM_KMS_ROOT_COUNT)
		return NULL;
	return r->path[root];
}

const char *cvm_kms_roots_ca_cert(const struct cvm_kms_roots *r)
{
	return r != NULL && r->has[CVM_KMS_ROOT_CA_CERT] ? r->ca_cert_pem : NULL;
}

int cvm_kms_roots_k256_public(const struct cvm_kms_roots *r, uint8_t out[CVM_K256_PUBKEY_LEN])
{
	memset(out, 0, CVM_K256_PUBKEY_LEN);
	if (r == NULL || !r->has[CVM_KMS_ROOT_K256_KEY])
		return CVM_E_INVAL;
	return cvm_k256_pubkey(r->k256_key->p, out);
}

/* exists says whether `name` is in `dfd` (anything, a dangling symbolic link
 * included: the reader then says what is wrong with it). */
static int exists(int dfd, const char *name, bool *out)
{
	struct stat st;

	*out = false;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		*out = true;
		return CVM_OK;
	}
	return errno == ENOENT ? CVM_OK : CVM_E_SYSTEM;
}

/* read_p256 loads a P-256 private key file (PEM) into `out`. */
static int read_p256(int dfd, const char *path, const char *name, struct cvm_p256_keypair **out, char *err,
                     size_t err_len)
{
	struct cvm_secret *pem = NULL;
	char why[256];
	int r;

	r = cvm_file_read_key(dfd, name, CVM_KMS_KEY_FILE_MAX, &pem, why, sizeof(why));
	if (r != CVM_OK)
		return fail(err, err_len, r, "%s", why);
	r = cvm_p256_keypair_from_pem((const char *)pem->p, pem->len, out);
	cvm_secret_free(pem);
	if (r == CVM_E_UNSUPPORTED)
		return fail(err, err_len, r,
		            "%s is not a P-256 private key: the KMS root keys are P-256 (prime256v1)", path);
	if (r != CVM_OK)
		return fail(err, err_len, r,
		            "%s is not a PEM private key (\"PRIVATE KEY\" or \"EC PRIVATE KEY\" block): %s",
		            path, cvm_strerror(r));
	return CVM_OK;
}

/* read_k256 loads root-k256.key: exactly the 32-byte raw scalar. */
static int read_k256(int dfd, const char *path, struct cvm_secret **out, char *err, size_t err_len)
{
	struct cvm_secret *k = NULL;
	char why[256];
	int r;

	r = cvm_file_read_key(dfd, CVM_KMS_FILE_ROOT_K256_KEY, CVM_KMS_KEY_FILE_MAX, &k, why, sizeof(why));
	if (r != CVM_OK)
		return fail(err, err_len, r, "%s", why);
	if (k->len != CVM_K256_SECKEY_LEN) {
		r = fail(err, err_len, CVM_E_FORMAT,
		         "%s holds %zu bytes: dstack's root-k256.key is the raw 32-byte secp256k1 secret",
		         path, k->len);
		goto out;
	}
	r = cvm_k256_seckey_check(k->p);
	if (r != CVM_OK) {
		r = fail(err, err_len, CVM_E_FORMAT,
		         "%s is not a valid secp256k1 secret (0 or not below the order)", path);
		goto out;
	}
	*out = k;
	k = NULL; /* transferred */
out:
	cvm_secret_free(k);
	return r;
}

/* read_cert loads one PEM certificate; a missing file is absent (*has false). */
static int read_cert(const char *path, bool *has, char **pem_out, struct cvm_cert ***out, char *err,
                     size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, count = 0;
	int r;

	*has = false;
	r = cvm_file_read(path, CVM_KMS_CERT_FILE_MAX, &buf, &len);
	if (r == CVM_E_SYSTEM && errno == ENOENT)
		return CVM_OK;
	if (r == CVM_E_TOO_LARGE)
		return fail(err, err_len, r, "%s is larger than %zu bytes: not a certificate", path,
		            CVM_KMS_CERT_FILE_MAX);
	if (r != CVM_OK)
		return fail(err, err_len, r, "cannot read %s: %s", path, strerror(errno));
	r = cvm_certs_parse_pem(buf, len, out, &count);
	if (r != CVM_OK) {
		r = fail(err, err_len, CVM_E_FORMAT, "%s is not a PEM certificate: %s", path,
		         cvm_strerror(r));
		goto out;
	}
	if (count != 1) {
		cvm_certs_free(*out, count);
		*out = NULL;
		r = fail(err, err_len, CVM_E_FORMAT, "%s holds %zu certificates: expected exactly one", path,
		         count);
		goto out;
	}
	*has = true;
	if (pem_out != NULL) {
		*pem_out = (char *)buf;
		buf = NULL; /* transferred */
	}
out:
	free(buf);
	return r;
}

/* pair_matches checks that `cert` certifies `key`: a signature by the key
 * verifies under the certificate's public key. */
static int pair_matches(const struct cvm_p256_keypair *key, const struct cvm_cert *cert, const char *key_path,
                        const char *cert_path, char *err, size_t err_len)
{
	static const uint8_t msg[] = "cvmkit kms root pair check";
	uint8_t sig[64];
	int r;

	r = cvm_p256_keypair_sign(key, msg, sizeof(msg) - 1, sig);
	if (r != CVM_OK)
		return fail(err, err_len, r, "cannot sign with %s: %s", key_path, cvm_strerror(r));
	r = cvm_cert_verify_p256(cert, msg, sizeof(msg) - 1, sig);
	if (r != CVM_OK)
		return fail(err, err_len, CVM_E_FORMAT,
		            "%s does not certify the key in %s: the two files belong to different keys",
		            cert_path, key_path);
	return CVM_OK;
}

static int join(const char *a, const char *b, char **out)
{
	size_t n = strlen(a) + 1 + strlen(b) + 1;

	*out = malloc(n);
	if (*out == NULL)
		return CVM_E_NOMEM;
	(void)snprintf(*out, n, "%s/%s", a, b);
	return CVM_OK;
}

/* any_root says whether `dfd` holds any root file of its own. */
static int any_root(int dfd, bool *out)
{
	bool e = false;
	int r;

	*out = false;
	for (size_t i = 0; i < CVM_KMS_ROOT_COUNT; i++) {
		r = exists(dfd, root_files[i], &e);
		if (r == CVM_OK && !e && sealed_files[i] != NULL)
			r = exists(dfd, sealed_files[i], &e);
		if (r != CVM_OK)
			return r;
		if (e) {
			*out = true;
			return CVM_OK;
		}
	}
	return CVM_OK;
}

/* open_epoch opens the folder that holds `epoch`'s roots and names it in
 * *base. */
static int open_epoch(const char *dir, uint32_t epoch, int *dfd_out, char **base, char *err, size_t err_len)
{
	char sub[32];
	bool top = false, has_sub = false;
	int dfd = -1, r;

	*dfd_out = -1;
	*base = NULL;
	(void)snprintf(sub, sizeof(sub), "epoch-%u", (unsigned)epoch);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail(err, err_len, CVM_E_SYSTEM, "cannot open the root directory %s: %s", dir,
		            strerror(errno));
	r = exists(dfd, sub, &has_sub);
	if (r != CVM_OK) {
		r = fail(err, err_len, r, "cannot look at %s/%s: %s", dir, sub, strerror(errno));
		goto out;
	}
	if (epoch == 0) {
		r = any_root(dfd, &top);
		if (r != CVM_OK) {
			r = fail(err, err_len, r, "cannot look into %s: %s", dir, strerror(errno));
			goto out;
		}
		if (top && has_sub) {
			r = fail(
			    err, err_len, CVM_E_POLICY,
			    "%s holds root files and an epoch-0 folder: epoch 0's roots must be in one place "
			    "(move them into %s/epoch-0 or remove that folder)",
			    dir, dir);
			goto out;
		}
		if (!has_sub) {
			*base = strdup(dir);
			r = *base != NULL ? CVM_OK : CVM_E_NOMEM;
			if (r == CVM_OK) {
				*dfd_out = dfd;
				dfd = -1; /* transferred */
			}
			goto out;
		}
	} else if (!has_sub) {
		errno = ENOENT;
		r = fail(err, err_len, CVM_E_SYSTEM, "no roots for epoch %u: %s/%s does not exist",
		         (unsigned)epoch, dir, sub);
		goto out;
	}
	*dfd_out = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dfd_out < 0) {
		r = fail(err, err_len, CVM_E_SYSTEM, "cannot open %s/%s (a directory, not a link): %s", dir,
		         sub, strerror(errno));
		goto out;
	}
	r = join(dir, sub, base);
	if (r != CVM_OK) {
		(void)close(*dfd_out);
		*dfd_out = -1;
	}
out:
	if (dfd >= 0)
		(void)close(dfd);
	return r;
}

/* read_sealed unseals the sealed copy of `root` (kms_int.h's payload: the
 * root's number, then its 32-byte scalar) into a P-256 key pair (`kp`) or
 * the k256 secret (`k256`). */
static int read_sealed(int dfd, enum cvm_kms_root root, const char *path, struct cvm_tpm *tpm,
                       struct cvm_p256_keypair **kp, struct cvm_secret **k256, char *err, size_t err_len)
{
	struct cvm_secret *blob = NULL, *plain = NULL, *k = NULL;
	char why[256];
	int r;

	r = cvm_file_read_key(dfd, sealed_files[root], CVM_TPM_SEAL_BLOB_MAX, &blob, why, sizeof(why));
	if (r != CVM_OK)
		return fail(err, err_len, r, "%s", why);
	r = cvm_tpm_unseal(tpm, blob->p, blob->len, &plain, why, sizeof(why));
	if (r != CVM_OK) {
		r = fail(
		    err, err_len, r,
		    "cannot unseal %s with this TPM: %s (a sealed root opens only on the TPM that sealed "
		    "it, with the owner hierarchy it had then)",
		    path, why);
		goto out;
	}
	if (plain->len != KMS_SEALED_LEN || plain->p[0] != (uint8_t)root) {
		r = fail(err, err_len, CVM_E_FORMAT,
		         "%s unseals to something else than this root's key (%zu bytes, for root %u): was "
		         "another root's file moved here?",
		         path, plain->len, plain->len > 0 ? (unsigned)plain->p[0] : 0u);
		goto out;
	}
	if (root == CVM_KMS_ROOT_K256_KEY) {
		if (cvm_k256_seckey_check(plain->p + 1) != CVM_OK) {
			r = fail(err, err_len, CVM_E_FORMAT,
			         "%s does not hold a valid secp256k1 secret (0 or not below the order)",
			         path);
			goto out;
		}
		k = cvm_secret_new(CVM_K256_SECKEY_LEN);
		if (k == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		memcpy(k->p, plain->p + 1, CVM_K256_SECKEY_LEN);
		*k256 = k;
		k = NULL; /* transferred */
	} else {
		r = cvm_p256_keypair_from_scalar(plain->p + 1, kp);
		if (r != CVM_OK) {
			r = fail(err, err_len, r, "%s does not hold a valid P-256 key: %s", path,
			         cvm_strerror(r));
			goto out;
		}
	}
out:
	cvm_secret_free(k);
	cvm_secret_free(plain);
	cvm_secret_free(blob);
	return r;
}

/* load_key loads the key file of `root` (or its sealed copy, with `tpm`)
 * unless it is absent. */
static int load_key(struct cvm_kms_roots *k, int dfd, const char *base, enum cvm_kms_root root,
                    struct cvm_tpm *tpm, char *err, size_t err_len)
{
	bool e = false, sealed = false;
	char *spath = NULL;
	int r;

	r = exists(dfd, root_files[root], &e);
	if (r != CVM_OK)
		return fail(err, err_len, r, "cannot look at %s: %s", k->path[root], strerror(errno));
	if (sealed_files[root] != NULL) {
		r = join(base, sealed_files[root], &spath);
		if (r != CVM_OK)
			return r;
		r = exists(dfd, sealed_files[root], &sealed);
		if (r != CVM_OK) {
			r = fail(err, err_len, r, "cannot look at %s: %s", spath, strerror(errno));
			goto out;
		}
	}
	if (e && sealed) {
		r = fail(err, err_len, CVM_E_POLICY,
		         "%s and %s both exist: a root is kept once, sealed or not (keep the one this node "
		         "uses and move the other away)",
		         k->path[root], spath);
		goto out;
	}
	if (sealed && tpm == NULL) {
		r = fail(
		    err, err_len, CVM_E_POLICY,
		    "%s is sealed to a TPM: set [kms] tpm_tcti (cvm kms: --tpm TCTI) to the TPM that sealed "
		    "it",
		    spath);
		goto out;
	}
	if (sealed) {
		free(k->path[root]);
		k->path[root] = spath;
		spath = NULL; /* transferred */
		if (root == CVM_KMS_ROOT_CA_KEY)
			r = read_sealed(dfd, root, k->path[root], tpm, &k->ca_key, NULL, err, err_len);
		else if (root == CVM_KMS_ROOT_TMP_CA_KEY)
			r = read_sealed(dfd, root, k->path[root], tpm, &k->tmp_ca_key, NULL, err, err_len);
		else
			r = read_sealed(dfd, root, k->path[root], tpm, NULL, &k->k256_key, err, err_len);
		if (r == CVM_OK) {
			k->has[root] = true;
			k->sealed[root] = true;
		}
		goto out;
	}
	free(spath);
	spath = NULL;
	if (!e)
		return CVM_OK;
	switch (root) {
	case CVM_KMS_ROOT_CA_KEY:
		r = read_p256(dfd, k->path[root], root_files[root], &k->ca_key, err, err_len);
		break;
	case CVM_KMS_ROOT_TMP_CA_KEY:
		r = read_p256(dfd, k->path[root], root_files[root], &k->tmp_ca_key, err, err_len);
		break;
	case CVM_KMS_ROOT_RPC_KEY:
		r = read_p256(dfd, k->path[root], root_files[root], &k->rpc_key, err, err_len);
		break;
	case CVM_KMS_ROOT_K256_KEY:
		r = read_k256(dfd, k->path[root], &k->k256_key, err, err_len);
		break;
	default:
		return CVM_E_INTERNAL;
	}
	if (r == CVM_OK)
		k->has[root] = true;
out:
	free(spath);
	return r;
}

int cvm_kms_roots_load(const char *dir, uint32_t epoch, struct cvm_kms_roots **out, char *err, size_t err_len)
{
	return cvm_kms_roots_load_tpm(dir, epoch, NULL, out, err, err_len);
}

int cvm_kms_roots_load_tpm(const char *dir, uint32_t epoch, struct cvm_tpm *tpm, struct cvm_kms_roots **out,
                           char *err, size_t err_len)
{
	struct cvm_kms_roots *k = NULL;
	char *base = NULL;
	int dfd = -1, r;

	if (out != NULL)
		*out = NULL;
	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (dir == NULL || out == NULL)
		return CVM_E_INVAL;
	if (epoch > CVM_KMS_EPOCH_MAX)
		return fail(err, err_len, CVM_E_INVAL, "epoch %u is over the largest, %u", (unsigned)epoch,
		            (unsigned)CVM_KMS_EPOCH_MAX);
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return CVM_E_NOMEM;
	k->epoch = epoch;
	r = open_epoch(dir, epoch, &dfd, &base, err, err_len);
	if (r != CVM_OK)
		goto out;
	for (size_t i = 0; i < CVM_KMS_ROOT_COUNT; i++) {
		r = join(base, root_files[i], &k->path[i]);
		if (r != CVM_OK)
			goto out;
	}
	r = load_key(k, dfd, base, CVM_KMS_ROOT_CA_KEY, tpm, err, err_len);
	if (r == CVM_OK)
		r = load_key(k, dfd, base, CVM_KMS_ROOT_K256_KEY, tpm, err, err_len);
	if (r == CVM_OK)
		r = load_key(k, dfd, base, CVM_KMS_ROOT_TMP_CA_KEY, tpm, err, err_len);
	if (r == CVM_OK)
		r = load_key(k, dfd, base, CVM_KMS_ROOT_RPC_KEY, tpm, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = read_cert(k->path[CVM_KMS_ROOT_CA_CERT], &k->has[CVM_KMS_ROOT_CA_CERT], &k->ca_cert_pem,
	              &k->ca_cert, err, err_len);
	if (r == CVM_OK)
		r = read_cert(k->path[CVM_KMS_ROOT_TMP_CA_CERT], &k->has[CVM_KMS_ROOT_TMP_CA_CERT], NULL,
		              &k->tmp_ca_cert, err, err_len);
	if (r == CVM_OK)
		r = read_cert(k->path[CVM_KMS_ROOT_RPC_CERT], &k->has[CVM_KMS_ROOT_RPC_CERT], NULL,
		              &k->rpc_cert, err, err_len);
	if (r != CVM_OK)
		goto out;
	if (k->ca_key != NULL && k->ca_cert != NULL)
		r = pair_matches(k->ca_key, k->ca_cert[0], k->path[CVM_KMS_ROOT_CA_KEY],
		                 k->path[CVM_KMS_ROOT_CA_CERT], err, err_len);
	if (r == CVM_OK && k->tmp_ca_key != NULL && k->tmp_ca_cert != NULL)
		r = pair_matches(k->tmp_ca_key, k->tmp_ca_cert[0], k->path[CVM_KMS_ROOT_TMP_CA_KEY],
		                 k->path[CVM_KMS_ROOT_TMP_CA_CERT], err, err_len);
	if (r == CVM_OK && k->rpc_key != NULL && k->rpc_cert != NULL)
		r = pair_matches(k->rpc_key, k->rpc_cert[0], k->path[CVM_KMS_ROOT_RPC_KEY],
		                 k->path[CVM_KMS_ROOT_RPC_CERT], err, err_len);
	if (r != CVM_OK)
		goto out;
	*out = k;
	k = NULL; /* transferred */
out:
	if (dfd >= 0)
		(void)close(dfd);
	free(base);
	cvm_kms_roots_free(k);
	return r;
}
