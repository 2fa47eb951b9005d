/* The cvm_tee front: opening and detecting a backend, dispatch, and the
 * kernel-facing file and ioctl calls every backend shares. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/file.h>
#include <cvmkit/log.h>
#include <cvmkit/secret.h>

#include "tee_int.h"

/* ---- paths and attributes --------------------------------------------- */

int tee_path(const struct cvm_tee_dev *tee, char *buf, size_t cap, const char *rel)
{
	int n = snprintf(buf, cap, "%s%s", tee->root, rel);

	return n < 0 || (size_t)n >= cap ? CVM_E_INVAL : CVM_OK;
}

bool tee_exists(const struct cvm_tee_dev *tee, const char *rel)
{
	char path[TEE_PATH_MAX];
	struct stat st;

	if (tee_path(tee, path, sizeof(path), rel) != CVM_OK)
		return false;
	return stat(path, &st) == 0;
}

int tee_attr_read(const struct cvm_tee_dev *tee, const char *path, size_t max, uint8_t **out, size_t *out_len)
{
	int err = 0;

	*out = NULL;
	*out_len = 0;
	if (tee->sys.before_read != NULL)
		tee->sys.before_read(tee->sys.ctx, path, &err);
	if (err != 0) {
		errno = err;
		return CVM_E_SYSTEM;
	}
	return cvm_file_read(path, max, out, out_len);
}

int tee_attr_write(const struct cvm_tee_dev *tee, const char *path, const void *buf, size_t len)
{
	ssize_t n;
	int fd, err = 0;

	/* No O_TRUNC or O_CREAT: configfs and sysfs attributes exist and take
	 * one whole write at offset 0; a binary attribute is handed to the
	 * driver when the file is closed, so close's result counts. */
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return CVM_E_SYSTEM;
	do {
		n = write(fd, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != len) {
		err = n < 0 ? errno : EIO;
		(void)close(fd);
		errno = err;
		return CVM_E_SYSTEM;
	}
	if (close(fd) != 0)
		return CVM_E_SYSTEM;
	if (tee->sys.after_write != NULL)
		tee->sys.after_write(tee->sys.ctx, path, &err);
	if (err != 0) {
		errno = err;
		return CVM_E_SYSTEM;
	}
	return CVM_OK;
}

int tee_attr_read_ulong(const struct cvm_tee_dev *tee, const char *path, unsigned long *out)
{
	uint8_t *buf = NULL;
	size_t len = 0, i = 0;
	unsigned long v = 0;
	int r;

	*out = 0;
	r = tee_attr_read(tee, path, 64, &buf, &len);
	if (r != CVM_OK)
		return r;
	r = CVM_E_FORMAT;
	if (len == 0)
		goto out;
	for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (v > (~0ul - 9u) / 10u)
			goto out;
		v = v * 10u + (unsigned long)(buf[i] - '0');
	}
	/* digits, then at most one newline */
	if (i == 0 || (i != len && !(i + 1 == len && buf[i] == '\n')))
		goto out;
	*out = v;
	r = CVM_OK;
out:
	free(buf);
	return r;
}

int tee_ioctl(const struct cvm_tee_dev *tee, const char *rel, unsigned long request, void *arg)
{
	char path[TEE_PATH_MAX];
	int fd, rc, err;

	if (tee_path(tee, path, sizeof(path), rel) != CVM_OK)
		return CVM_E_INVAL;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return CVM_E_SYSTEM;
	do {
		if (tee->sys.ioctl != NULL)
			rc = tee->sys.ioctl(tee->sys.ctx, fd, request, arg);
		else
			rc = ioctl(fd, request, arg);
	} while (rc < 0 && errno == EINTR);
	err = errno;
	(void)close(fd);
	errno = err;
	return rc == 0 ? CVM_OK : CVM_E_SYSTEM;
}

/* ---- opening ------------------------------------------------------------ */

static int tee_new(const char *root, const struct cvm_tee_sys *sys, struct cvm_tee_dev **out)
{
	struct cvm_tee_dev *tee;
	size_t n;

	*out = NULL;
	if (root == NULL)
		root = "";
	n = strlen(root);
	while (n > 0 && root[n - 1] == '/')
		n--;
	if (n >= TEE_PATH_MAX - 256)
		return CVM_E_INVAL;
	tee = calloc(1, sizeof(*tee));
	if (tee == NULL)
		return CVM_E_NOMEM;
	memcpy(tee->root, root, n);
	tee->root[n] = '\0';
	if (sys != NULL)
		tee->sys = *sys;
	*out = tee;
	return CVM_OK;
}

int cvm_tee_open_sys(const char *root, enum cvm_tee_platform platform, const struct cvm_tee_sys *sys,
                     struct cvm_tee_dev **out)
{
	struct cvm_tee_dev *tee = NULL;
	int r;

	*out = NULL;
	if (platform != CVM_TEE_PLATFORM_TDX && platform != CVM_TEE_PLATFORM_SNP)
		return CVM_E_INVAL;
	r = tee_new(root, sys, &tee);
	if (r != CVM_OK)
		return r;
	r = platform == CVM_TEE_PLATFORM_TDX ? tee_tdx_attach(tee) : tee_snp_attach(tee);
	if (r != CVM_OK) {
		cvm_tee_free(tee);
		return r;
	}
	*out = tee;
	return CVM_OK;
}

int cvm_tee_open(const char *root, enum cvm_tee_platform platform, struct cvm_tee_dev **out)
{
	return cvm_tee_open_sys(root, platform, NULL, out);
}

int cvm_tee_detect_sys(const char *root, const struct cvm_tee_sys *sys, struct cvm_tee_dev **out)
{
	struct cvm_tee_dev *probe = NULL;
	char provider[32];
	int r;

	*out = NULL;
	r = tee_new(root, sys, &probe);
	if (r != CVM_OK)
		return r;
	/* The device nodes name the platform without side effects; configfs-tsm
	 * needs a throw-away report entry to show its provider. */
	if (tee_exists(probe, TEE_TDX_GUEST_DEV) || tee_exists(probe, TEE_TDX_MR_DIR)) {
		r = cvm_tee_open_sys(root, CVM_TEE_PLATFORM_TDX, sys, out);
	} else if (tee_exists(probe, TEE_SEV_GUEST_DEV)) {
		r = cvm_tee_open_sys(root, CVM_TEE_PLATFORM_SNP, sys, out);
	} else if (tee_exists(probe, TEE_TSM_REPORT_DIR)) {
		r = tee_tsm_provider(probe, provider, sizeof(provider));
		if (r == CVM_OK && strcmp(provider, "tdx_guest") == 0)
			r = cvm_tee_open_sys(root, CVM_TEE_PLATFORM_TDX, sys, out);
		else if (r == CVM_OK && strcmp(provider, "sev_guest") == 0)
			r = cvm_tee_open_sys(root, CVM_TEE_PLATFORM_SNP, sys, out);
		else if (r == CVM_OK)
			r = CVM_E_UNSUPPORTED;
	} else {
		r = CVM_E_UNSUPPORTED;
	}
	cvm_tee_free(probe);
	return r;
}

int cvm_tee_detect(const char *root, struct cvm_tee_dev **out)
{
	return cvm_tee_detect_sys(root, NULL, out);
}

void cvm_tee_free(struct cvm_tee_dev *tee)
{
	if (tee == NULL)
		return;
	if (tee->ops != NULL && tee->ops->free_priv != NULL)
		tee->ops->free_priv(tee->priv);
	cvm_freezero(tee, sizeof(*tee));
}

/* ---- dispatch ----------------------------------------------------------- */

void cvm_tee_info(const struct cvm_tee_dev *tee, struct cvm_tee_info *out)
{
	*out = tee->info;
}

int cvm_tee_set_privlevel(struct cvm_tee_dev *tee, unsigned level)
{
	if (tee->info.platform != CVM_TEE_PLATFORM_SNP)
		return CVM_E_UNSUPPORTED;
	if (level > 3)
		return CVM_E_INVAL;
	/* The kernel's floor is checked when a report is made: every entry
	 * shows it, and the kernel refuses a lower level anyway. */
	tee->privlevel = level;
	tee->privlevel_set = true;
	return CVM_OK;
}

void cvm_tee_evidence_cleanup(struct cvm_tee_evidence *e)
{
	if (e == NULL)
		return;
	free(e->data);
	free(e->aux);
	memset(e, 0, sizeof(*e));
}

int cvm_tee_quote(struct cvm_tee_dev *tee, const uint8_t report_data[CVM_TEE_REPORT_DATA_LEN],
                  struct cvm_tee_evidence *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (tee->ops == NULL || tee->ops->quote == NULL)
		return CVM_E_UNSUPPORTED;
	r = tee->ops->quote(tee, report_data, out);
	if (r != CVM_OK) {
		cvm_tee_evidence_cleanup(out);
		return r;
	}
	out->platform = tee->info.platform;
	out->is_simulated = tee->info.is_simulated;
	return CVM_OK;
}

int cvm_tee_extend(struct cvm_tee_dev *tee, unsigned index, const uint8_t digest[CVM_TEE_MR_LEN])
{
	if (tee->info.platform != CVM_TEE_PLATFORM_TDX || tee->ops == NULL || tee->ops->extend == NULL)
		return CVM_E_UNSUPPORTED;
	if (index >= CVM_TEE_RTMR_COUNT)
		return CVM_E_INVAL;
	return tee->ops->extend(tee, index, digest);
}

int cvm_tee_measurements(struct cvm_tee_dev *tee, struct cvm_tee_measurements *out)
{
	memset(out, 0, sizeof(*out));
	if (tee->ops == NULL || tee->ops->measurements == NULL)
		return CVM_E_UNSUPPORTED;
	out->platform = tee->info.platform;
	return tee->ops->measurements(tee, out);
}
