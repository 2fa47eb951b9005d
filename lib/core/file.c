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

int cvm_file_read_key(int dfd, const char *name, size_t max, struct cvm_secret **out, char *err,
                      size_t err_len)
{
	struct cvm_secret *s = NULL;
	struct stat st;
	size_t len = 0;
	int fd, r, saved = 0;

	*out = NULL;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		saved = errno;
		if (saved == ELOOP)
			return cvm_err_set(err, err_len, CVM_E_POLICY, "%s is a symbolic link", name);
		(void)cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot open %s: %s", name, strerror(saved));
		errno = saved;
		return CVM_E_SYSTEM;
	}
	if (fstat(fd, &st) != 0) {
		saved = errno;
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot examine %s: %s", name, strerror(saved));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = cvm_err_set(err, err_len, CVM_E_POLICY, "%s is not a regular file", name);
		goto out;
	}
	if (st.st_uid != geteuid()) {
		r = cvm_err_set(err, err_len, CVM_E_POLICY, "%s is owned by uid %u, not by us (uid %u)", name,
		                (unsigned)st.st_uid, (unsigned)geteuid());
		goto out;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		r = cvm_err_set(err, err_len, CVM_E_POLICY,
		                "%s has mode %03o, which grants access to group or others (chmod 600)", name,
		                (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > max) {
		r = cvm_err_set(err, err_len, CVM_E_TOO_LARGE, "%s is %lld bytes, more than %zu", name,
		                (long long)st.st_size, max);
		goto out;
	}
	/* One byte more than the size, to notice a file that grew. */
	s = cvm_secret_new((size_t)st.st_size + 1);
	if (s == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, s->p + len, s->len - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot read %s: %s", name,
			                strerror(saved));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == s->len) {
			r = cvm_err_set(err, err_len, CVM_E_TOO_LARGE, "%s grew while it was read", name);
			goto out;
		}
	}
	s->len = len; /* the free still wipes every byte of the pages */
	*out = s;
	s = NULL; /* transferred */
	r = CVM_OK;
out:
	cvm_secret_free(s);
	(void)close(fd);
	if (r == CVM_E_SYSTEM)
		errno = saved;
	return r;
}

int cvm_file_create_key(int dfd, const char *name, const void *buf, size_t len, bool *created, char *err,
                        size_t err_len)
{
	const uint8_t *p = buf;
	char tmp[4096];
	int fd, n, saved = 0, r = CVM_E_SYSTEM;

	*created = false;
	n = snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld", name, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp) || strchr(name, '/') != NULL) {
		errno = EINVAL;
		return cvm_err_set(err, err_len, CVM_E_SYSTEM, "%s is not a file name", name);
	}
	(void)unlinkat(dfd, tmp, 0); /* a leftover of a crashed process with our pid: never reused */
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		saved = errno;
		(void)cvm_err_set(err, err_len, r, "cannot create %s: %s", name, strerror(saved));
		errno = saved;
		return r;
	}
	/* the umask can only remove bits; make the mode exactly 0600 */
	if (fchmod(fd, 0600) != 0)
		goto fail;
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (linkat(dfd, tmp, dfd, name, 0) != 0) {
		if (errno != EEXIST)
			goto fail;
	} else {
		*created = true;
	}
	(void)fsync(dfd);
	r = CVM_OK;
	goto out;
fail:
	saved = errno;
	(void)cvm_err_set(err, err_len, r, "cannot write %s: %s", name, strerror(saved));
out:
	(void)close(fd);
	(void)unlinkat(dfd, tmp, 0);
	if (r != CVM_OK)
		errno = saved;
	return r;
}
