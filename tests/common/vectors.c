#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <cvmkit/file.h>

#include "vectors.h"

/* What a test that lacks a vector of the repository says. */
#define RESTORE_HINT                                                                                    \
	"the repository's tests/vectors must hold it (git checkout -- tests/vectors restores a clone; " \
	"tests/vectors/SOURCES.md says where each vector comes from)"

const char *vectors_dir(void)
{
	return CVM_REPO_VECTORS_DIR;
}

const char *vectors_extra_dir(void)
{
	const char *d = getenv("CVM_VECTORS_DIR");

	if (d == NULL)
		d = CVM_EXTRA_VECTORS_DIR;
	return d[0] != '\0' ? d : NULL;
}

/* join writes "a/b" into buf (VECTOR_PATH_MAX bytes); a longer path fails
 * the test rather than being cut. */
static void join(char *buf, const char *a, const char *b)
{
	int n = snprintf(buf, VECTOR_PATH_MAX, "%s/%s", a, b);

	if (n < 0 || (size_t)n >= VECTOR_PATH_MAX)
		fail_msg("vector path %s/%s is longer than %d bytes", a, b, VECTOR_PATH_MAX - 1);
}

const char *vector_path(char *buf, size_t len, const char *rel)
{
	char path[VECTOR_PATH_MAX];
	struct stat st;

	if (rel[0] == '/') {
		if (strlen(rel) >= sizeof(path))
			fail_msg("vector path %s is longer than %d bytes", rel, VECTOR_PATH_MAX - 1);
		memcpy(path, rel, strlen(rel) + 1);
	} else {
		join(path, vectors_dir(), rel);
	}
	if (strlen(path) >= len)
		fail_msg("vector path %s does not fit the caller's %zu bytes", path, len);
	memcpy(buf, path, strlen(path) + 1);
	if (stat(buf, &st) != 0) {
		if (rel[0] == '/')
			fail_msg("vector %s: %s", buf, strerror(errno));
		fail_msg("vector %s is missing (%s: %s): %s", rel, buf, strerror(errno), RESTORE_HINT);
	}
	return buf;
}

uint8_t *vector_read(const char *rel, size_t *len)
{
	char path[VECTOR_PATH_MAX];
	uint8_t *buf = NULL;
	int r;

	r = cvm_file_read(vector_path(path, sizeof(path), rel), 16u << 20, &buf, len);
	if (r != CVM_OK)
		fail_msg("cannot read vector %s (%s): %s", rel, path, cvm_strerror(r));
	return buf;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vector_folder *)a)->name, ((const struct vector_folder *)b)->name);
}

/* has_name says whether one of the first `n` folders is called `name`. */
static bool has_name(const struct vector_folder *f, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].name, name) == 0)
			return true;
	return false;
}

/* add_folders appends the folders <root>/<kind>/<x> to *f (*n used, *cap
 * allocated), leaving out a name among the first `keep` entries, sorts what
 * it added and returns how many it added. A missing <root>/<kind> adds
 * nothing when `may_lack_kind`, and fails the test otherwise. */
static size_t add_folders(const char *root, const char *kind, const char *need, bool is_extra, size_t keep,
                          bool may_lack_kind, struct vector_folder **f, size_t *n, size_t *cap)
{
	char kdir[VECTOR_PATH_MAX];
	size_t first = *n;
	struct dirent *e;
	DIR *d;

	join(kdir, root, kind);
	d = opendir(kdir);
	if (d == NULL) {
		if (may_lack_kind && errno == ENOENT)
			return 0;
		if (is_extra)
			fail_msg("cannot read %s (the extra vectors, CVM_VECTORS_DIR): %s", kdir,
			         strerror(errno));
		else
			fail_msg("cannot read %s: %s: %s", kdir, strerror(errno), RESTORE_HINT);
		return 0; /* not reached: fail_msg() leaves the test */
	}
	for (e = readdir(d); e != NULL; e = readdir(d)) {
		struct vector_folder *v;
		char file[VECTOR_PATH_MAX];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (*n == *cap) {
			size_t grown = *cap == 0 ? 16 : 2 * *cap;
			struct vector_folder *nf = realloc(*f, grown * sizeof(*nf));

			assert_non_null(nf);
			*f = nf;
			*cap = grown;
		}
		v = &(*f)[*n];
		memset(v, 0, sizeof(*v));
		join(v->dir, kdir, e->d_name);
		if (stat(v->dir, &st) != 0 || !S_ISDIR(st.st_mode))
			continue; /* kind-level files such as tdx/manifest.json */
		join(v->name, kind, e->d_name);
		if (has_name(*f, keep, v->name))
			continue; /* tests/vectors has its own copy */
		join(file, v->dir, need);
		if (stat(file, &st) != 0)
			fail_msg("vector folder %s (%s) has no %s: every %s/ folder needs one%s", v->name,
			         v->dir, need, kind,
			         is_extra ? " (an extra folder follows the layout of tests/vectors)"
			                  : "; " RESTORE_HINT);
		v->is_extra = is_extra;
		(*n)++;
	}
	closedir(d);
	if (*n > first)
		qsort(*f + first, *n - first, sizeof(**f), name_cmp);
	return *n - first;
}

size_t vector_folders(const char *kind, const char *need, struct vector_folder **out)
{
	const char *extra = vectors_extra_dir();
	struct vector_folder *f = NULL;
	size_t n = 0, cap = 0, own, more = 0;

	own = add_folders(vectors_dir(), kind, need, false, 0, false, &f, &n, &cap);
	if (own == 0)
		fail_msg("%s/%s holds no vector folder: %s", vectors_dir(), kind, RESTORE_HINT);
	if (extra != NULL) {
		struct stat st;

		if (stat(extra, &st) != 0 || !S_ISDIR(st.st_mode))
			fail_msg("CVM_VECTORS_DIR=%s (the extra vectors) is not a folder: name a folder in "
			         "the layout of tests/vectors, or set it empty for none",
			         extra);
		more = add_folders(extra, kind, need, true, own, true, &f, &n, &cap);
		print_message("vectors: %zu %s/ folders from tests/vectors, %zu more from %s\n", own, kind,
		              more, extra);
	}
	*out = f;
	return n;
}
