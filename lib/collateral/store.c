/* The cache directory: <dir>/items/<name with '/' as '+'> holds one item
 * record each; <dir>/locks/<same>.lock serialises fetches of one item
 * (flock: across processes and, since every fetch opens the file anew,
 * across handles of one process). Items are written to a temporary file
 * in items/, synced and renamed into place, so a reader sees the old
 * record or the new one, never a part. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/err.h>
#include <cvmkit/random.h>

#include "coll_int.h"
#include "core/core_lib.h"

/* item_path writes "<folder>/<file of k><suffix>" into `buf`. */
static int item_path(const struct cvm_cache_key *k, const char *folder, const char *suffix, char *buf,
                     size_t cap)
{
	char file[COLL_NAME_MAX];
	int r, n;

	r = coll_key_file(k, file, sizeof(file));
	if (r != CVM_OK)
		return r;
	n = snprintf(buf, cap, "%s/%s%s", folder, file, suffix);
	return n < 0 || (size_t)n >= cap ? CVM_E_TOO_LARGE : CVM_OK;
}

static bool same_key(const struct cvm_cache_key *a, const struct cvm_cache_key *b)
{
	char na[COLL_NAME_MAX], nb[COLL_NAME_MAX];

	if (cvm_cache_key_name(a, na, sizeof(na)) != CVM_OK ||
	    cvm_cache_key_name(b, nb, sizeof(nb)) != CVM_OK)
		return false;
	return strcmp(na, nb) == 0 && a->enc_ppid_len == b->enc_ppid_len &&
	       memcmp(a->enc_ppid, b->enc_ppid, a->enc_ppid_len) == 0;
}

int coll_store_read_file(struct cvm_cache *c, const char *file, struct cvm_cache_item **out)
{
	struct cvm_cache_item *it = NULL;
	uint8_t *buf = NULL;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd = -1, r;

	*out = NULL;
	fd = openat(c->dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? CVM_E_NOT_FOUND : CVM_E_SYSTEM;
	if (fstat(fd, &st) != 0) {
		r = CVM_E_SYSTEM;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > COLL_ITEM_MAX) {
		r = CVM_E_FORMAT;
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	if (buf == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n == 0 ? CVM_E_TRUNCATED : CVM_E_SYSTEM;
			goto out;
		}
		len += (size_t)n;
	}
	r = coll_item_decode(buf, len, &it);
	if (r != CVM_OK)
		goto out;
	*out = it;
	it = NULL; /* transferred */
out:
	cvm_cache_item_free(it);
	free(buf);
	if (fd >= 0)
		(void)close(fd);
	return r;
}

int coll_store_read(struct cvm_cache *c, const struct cvm_cache_key *k, struct cvm_cache_item **out)
{
	char file[COLL_NAME_MAX + 8];
	struct cvm_cache_item *it = NULL;
	int r;

	*out = NULL;
	r = item_path(k, "items", "", file, sizeof(file));
	if (r != CVM_OK)
		return r;
	r = coll_store_read_file(c, file, &it);
	if (r != CVM_OK)
		return r;
	/* A record under another item's name is not that item. */
	if (!same_key(&it->key, k)) {
		cvm_cache_item_free(it);
		return CVM_E_MISMATCH;
	}
	*out = it;
	return CVM_OK;
}

static bool write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

int coll_store_write(struct cvm_cache *c, const struct cvm_cache_item *it, char *err, size_t err_len)
{
	char file[COLL_NAME_MAX + 8], tmp[COLL_NAME_MAX + 64] = "";
	uint8_t *buf = NULL, rnd[8];
	size_t len = 0;
	int fd = -1, r, dfd = -1;

	r = item_path(&it->key, "items", "", file, sizeof(file));
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the item's key does not name an item");
	r = coll_item_encode(it, &buf, &len);
	if (r != CVM_OK)
		return cvm_err_set(err, err_len, r, "the item cannot be recorded: %s", cvm_strerror(r));
	r = cvm_random_bytes(rnd, sizeof(rnd));
	if (r != CVM_OK)
		goto out;
	(void)snprintf(tmp, sizeof(tmp), "items/.tmp.%ld.%02x%02x%02x%02x%02x%02x%02x%02x", (long)getpid(),
	               rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	fd = openat(c->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || !write_all(fd, buf, len) || fsync(fd) != 0) {
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot write %s/%s: %s", c->dir, tmp,
		                strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot write %s/%s: %s", c->dir, tmp,
		                strerror(errno));
		goto out;
	}
	fd = -1;
	if (renameat(c->dfd, tmp, c->dfd, file) != 0) {
		r = cvm_err_set(err, err_len, CVM_E_SYSTEM, "cannot rename %s into place in %s: %s", file,
		                c->dir, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	/* The rename is durable once the folder is synced. */
	dfd = openat(c->dfd, "items", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		(void)close(dfd);
	}
	r = CVM_OK;
out:
	if (fd >= 0)
		(void)close(fd);
	if (r != CVM_OK && tmp[0] != '\0')
		(void)unlinkat(c->dfd, tmp, 0);
	free(buf);
	return r;
}

int coll_store_lock(struct cvm_cache *c, const struct cvm_cache_key *k)
{
	char file[COLL_NAME_MAX + 16];
	int fd, r;

	r = item_path(k, "locks", ".lock", file, sizeof(file));
	if (r != CVM_OK)
		return r;
	fd = openat(c->dfd, file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return CVM_E_SYSTEM;
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			(void)close(fd);
			return CVM_E_SYSTEM;
		}
	}
	return fd;
}

void coll_store_unlock(int fd)
{
	if (fd < 0)
		return;
	(void)flock(fd, LOCK_UN);
	(void)close(fd);
}
