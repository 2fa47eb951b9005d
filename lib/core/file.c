#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/file.h>
#include <cvmkit/secret.h>

#include "core_lib.h"

int cvm_file_read(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap;
	struct stat st;
	int fd = -1, r = CVM_E_SYSTEM, saved;

	*out = NULL;
	*out_len = 0;
	if (path == NULL || max == SIZE_MAX)
		return CVM_E_INVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CVM_E_SYSTEM;
	if (fstat(fd, &st) != 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto out;
	}
	/* Regular files: size known up front. Others (pipes, sysfs): read until EOF. */
	if (S_ISREG(st.st_mode) && st.st_size > 0) {
		if ((uint64_t)st.st_size > max) {
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		cap = (size_t)st.st_size + 1;
	} else {
		cap = 4096 < max + 1 ? 4096 : max + 1;
	}
	buf = malloc(cap);
	if (buf == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len == cap - 1) {
			size_t ncap;
			uint8_t *nb;

			if (len >= max) {
				/* One more byte tells "exactly max" from "more than max". */
				uint8_t probe;

				n = read(fd, &probe, 1);
				if (n == 0)
					break;
				r = n < 0 ? CVM_E_SYSTEM : CVM_E_TOO_LARGE;
				goto out;
			}
			ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
			nb = malloc(ncap);
			if (nb == NULL) {
				r = CVM_E_NOMEM;
				goto out;
			}
			memcpy(nb, buf, len);
			cvm_freezero(buf, cap);
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	*out = buf;
	*out_len = len;
	buf = NULL; /* transferred */
	r = CVM_OK;
out:
	saved = errno;
	if (buf != NULL)
		cvm_freezero(buf, cap);
	if (fd >= 0)
		close(fd);
	errno = saved;
	return r;
}

int cvm_file_write(const char *path, const void *buf, size_t len, unsigned mode)
{
	char tmp[4096];
	const uint8_t *p = buf;
	int fd, n, saved;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return CVM_E_INVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return CVM_E_SYSTEM;
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		fd = -1;
		goto fail;
	}
	return CVM_OK;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return CVM_E_SYSTEM;
}

int cvm_err_set(char *err, size_t err_len, int r, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return r;
	va_start(ap, fmt);
	(void)vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return r;
}

int cvm_file_read_err(const char *path, size_t max, uint8_t **out, size_t *out_len, char *err, size_t err_len)
{
	int r = cvm_file_read(path, max, out, out_len);
	int saved = errno;

	if (r == CVM_E_SYSTEM)
		(void)cvm_err_set(err, err_len, r, "%s: %s", path, strerror(saved));
	else if (r == CVM_E_TOO_LARGE)
		(void)cvm_err_set(err, err_len, r, "%s is larger than %zu bytes", path, max);
	else if (r != CVM_OK)
		(void)cvm_err_set(err, err_len, r, "%s: %s", path, cvm_strerror(r));
	errno = saved;
	return r;
}
