/* The snapshot's file walk (docs/daemons/cvm-agentd.md, "The file walk"):
 * a digest of every regular file under the configured roots, served on the
 * TLS listener's SnapshotFiles for `cvm snapshot --files`.
 *
 * The walk runs in a thread of its own, not in a forked child. A child
 * would have to hand its result back through a file or a pipe, which the
 * agent would then parse again (one more parser of bytes the agent does not
 * control, and a second copy of the agent's keys in a process that reads
 * every file of the disk). The thread shares nothing with the event loop but
 * one job record: its counters under `walk_mu`, its result handed over when
 * it sets the state to done, after which only the event loop reads it. The
 * thread calls libc and cvm_digest_* (OpenSSL 3's digests are thread-safe),
 * never libevent, the logger or the agent's state; it blocks every signal,
 * so the loop's signal events stay on the loop's thread.
 *
 * Two passes: the first lists the regular files (its count and sizes are
 * the progress bar's total), sorted by path; the second hashes each one,
 * streamed in WALK_CHUNK reads. Nothing follows a symbolic link: directories
 * and files are opened with O_NOFOLLOW, entries are typed with lstat
 * semantics, and only regular files are hashed. A file that cannot be read
 * is listed as skipped with the reason, never dropped in silence. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>

#include "agent.h"
#include "daemon.h"

#define WALK_CHUNK ((size_t)64 * 1024)
#define WALK_PATH_MAX 4096u /* a guest path, bytes (Linux's PATH_MAX) */
#define WALK_DIRS_MAX ((size_t)1 << 22)

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

enum walk_state { WALK_IDLE, WALK_RUNNING, WALK_DONE, WALK_FAILED };

static const char *const state_names[] = {"idle", "running", "done", "failed"};

struct walk_file {
	char *path; /* the guest path (NUL-free) */
	uint64_t size;
	dev_t dev;
	ino_t ino;
	const char *why; /* skipped: why (static text); NULL: hashed */
	int err;         /* skipped: the errno, or 0 */
	uint8_t digest[CVM_DIGEST_MAX];
};

struct walk_list {
	char **items;
	size_t count, cap, max;
};

struct walk_job {
	/* Set before the thread starts, read-only afterwards. */
	uint64_t generation;
	char mount_root[AGENT_PATH_MAX]; /* "" for "/" */
	struct walk_list roots, excluded, state_dirs;
	uint16_t alg; /* a TPM_ALG_ID, as cvm_digest_* take it */
	uint64_t max_files, max_file_bytes, max_seconds;
	struct timespec t0;
	pthread_t thread;
	atomic_bool cancel;
	/* Under walk_mu. */
	enum walk_state state;
	const char *phase;
	uint64_t files_total, bytes_total, files_hashed, bytes_hashed, skipped, pruned, elapsed_ms;
	char error[320];
	/* The thread's until the state is done or failed; the loop's after. */
	struct walk_file *files;
	size_t count, cap;
	size_t *entries, *skips; /* indices into files */
	size_t entry_count, skip_count;
	bool logged; /* the loop logged the end */
};

static pthread_mutex_t walk_mu = PTHREAD_MUTEX_INITIALIZER;
static struct walk_job *walk_cur;
static uint64_t walk_generation;
static bool walk_atexit_set;

/* ---- the job's configuration -------------------------------------------------- */

static void list_free(struct walk_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* list_add appends a copy of the `n` bytes at `p`; at most l->max items
 * (AGENT_WALK_LIST_MAX when 0). */
static int list_add(struct walk_list *l, const char *p, size_t n)
{
	size_t max = l->max != 0 ? l->max : AGENT_WALK_LIST_MAX;
	char *copy;

	if (l->count >= max)
		return CVM_E_TOO_LARGE;
	if (l->count == l->cap) {
		size_t cap = l->cap != 0 ? l->cap * 2 : 16;
		char **nb = calloc(cap, sizeof(*nb));

		if (nb == NULL)
			return CVM_E_NOMEM;
		if (l->count != 0)
			memcpy(nb, l->items, l->count * sizeof(*nb));
		free(l->items);
		l->items = nb;
		l->cap = cap;
	}
	copy = strndup(p, n);
	if (copy == NULL)
		return CVM_E_NOMEM;
	l->items[l->count++] = copy;
	return CVM_OK;
}

/* path_ok accepts an absolute path without "." or ".." components, empty
 * components or a trailing slash ("/" itself excepted). */
static bool path_ok(const char *p, size_t n)
{
	if (n == 0 || p[0] != '/' || n >= WALK_PATH_MAX)
		return false;
	if (n == 1)
		return true;
	if (p[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n;) {
		size_t k = i + 1;

		while (k < n && p[k] != '/')
			k++;
		if (k == i + 1 || (k == i + 2 && p[i + 1] == '.') ||
		    (k == i + 3 && p[i + 1] == '.' && p[i + 2] == '.'))
			return false;
		i = k;
	}
	return true;
}

/* list_parse splits a space-separated list of paths into `l`. */
static int list_parse(struct walk_list *l, const char *s, const char *key, char *err, size_t err_len)
{
	while (*s != '\0') {
		size_t n = 0;
		int r;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		while (s[n] != '\0' && s[n] != ' ' && s[n] != '\t' && s[n] != ',')
			n++;
		if (n == 0)
			break;
		if (!path_ok(s, n)) {
			(void)snprintf(err, err_len,
			               "[snapshot] %s: '%.*s' is not an absolute path without '.', '..', "
			               "'//' or a trailing '/'",
			               key, (int)(n > 200 ? 200 : n), s);
			return CVM_E_INVAL;
		}
		r = list_add(l, s, n);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "[snapshot] %s: %s (at most %u paths)", key,
			               cvm_strerror(r), AGENT_WALK_LIST_MAX);
			return r;
		}
		s += n;
	}
	return CVM_OK;
}

/* add_dir_of adds the folder of the file `path` (a state file of the agent)
 * to the host paths the walk never enters. */
static int add_dir_of(struct walk_list *l, const char *path, bool is_dir)
{
	char dir[AGENT_PATH_MAX], *abs;
	const char *slash = strrchr(path, '/');
	size_t n = strlen(path);
	int r;

	if (!is_dir) {
		if (slash == NULL) {
			path = ".";
			n = 1;
		} else {
			n = (size_t)(slash - path);
		}
	}
	if (n == 0 || n >= sizeof(dir))
		return CVM_OK; /* a file in "/": never exclude the whole disk */
	memcpy(dir, path, n);
	dir[n] = '\0';
	/* by its real name, as the walk meets it (a relative path, a link) */
	abs = realpath(dir, NULL);
	if (abs == NULL)
		return CVM_OK; /* not there: nothing to leave out */
	r = strcmp(abs, "/") == 0 ? CVM_OK : list_add(l, abs, strlen(abs));
	free(abs);
	return r;
}

static void job_free(struct walk_job *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < j->count; i++)
		free(j->files[i].path);
	free(j->files);
	free(j->entries);
	free(j->skips);
	list_free(&j->roots);
	list_free(&j->excluded);
	list_free(&j->state_dirs);
	free(j);
}

static int job_new(const struct agent *a, struct walk_job **out, char *err, size_t err_len)
{
	const struct agent_config *c = &a->cfg;
	struct walk_job *j;
	const char *mr = c->walk_mount_root;
	int r = CVM_OK;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return CVM_E_NOMEM;
	atomic_init(&j->cancel, false);
	if (mr[0] != '\0' && strcmp(mr, "/") != 0) {
		if (!path_ok(mr, strlen(mr)) || strlen(mr) >= sizeof(j->mount_root)) {
			(void)snprintf(err, err_len, "[snapshot] mount_root '%.200s' is not an absolute path",
			               mr);
			r = CVM_E_INVAL;
			goto out;
		}
		memcpy(j->mount_root, mr, strlen(mr) + 1);
	}
	r = list_parse(&j->roots, c->walk_roots[0] != '\0' ? c->walk_roots : "/", "roots", err, err_len);
	if (r == CVM_OK && strcmp(c->walk_exclude, "none") != 0)
		r = list_parse(&j->excluded,
		               c->walk_exclude[0] != '\0' ? c->walk_exclude : AGENT_WALK_EXCLUDE_DEFAULT,
		               "exclude", err, err_len);
	if (r != CVM_OK)
		goto out;
	if (j->roots.count == 0) {
		(void)snprintf(err, err_len, "[snapshot] roots is empty");
		r = CVM_E_INVAL;
		goto out;
	}
	/* The agent's own state changes while it runs (the runtime log, the
	 * simulator's registers): never part of a reference set. */
	r = add_dir_of(&j->state_dirs, c->runtime_log, false);
	if (r == CVM_OK && c->identity_key[0] != '\0')
		r = add_dir_of(&j->state_dirs, c->identity_key, false);
	if (r == CVM_OK && c->key_state[0] != '\0')
		r = add_dir_of(&j->state_dirs, c->key_state, true);
	if (r == CVM_OK && c->simulator[0] != '\0')
		r = add_dir_of(&j->state_dirs, c->simulator, true);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot note the agent's state folders: %s", cvm_strerror(r));
		goto out;
	}
	if (c->walk_algo[0] == '\0') {
		j->alg = CVM_DIGEST_SHA256;
	} else {
		enum cvm_digest_alg alg = CVM_DIGEST_SHA256;

		r = cvm_digest_from_name(c->walk_algo, &alg);
		j->alg = (uint16_t)alg;
		if (r != CVM_OK || alg == CVM_DIGEST_SM3_256) {
			(void)snprintf(
			    err, err_len,
			    "[snapshot] algo '%.32s' is not sha1, sha256, sha384 or sha512 (use the "
			    "IMA list's file hash algorithm)",
			    c->walk_algo);
			r = CVM_E_INVAL;
			goto out;
		}
	}
	j->max_files = c->walk_max_files != 0 ? c->walk_max_files : AGENT_WALK_FILES_DEFAULT;
	j->max_file_bytes =
	    c->walk_max_file_bytes != 0 ? c->walk_max_file_bytes : AGENT_WALK_FILE_BYTES_DEFAULT;
	j->max_seconds = c->walk_max_seconds != 0 ? c->walk_max_seconds : AGENT_WALK_SECONDS_DEFAULT;
	j->state = WALK_RUNNING;
	j->phase = "listing";
	*out = j;
	j = NULL;
out:
	job_free(j);
	return r;
}

/* ---- the thread ------------------------------------------------------------- */

static uint64_t elapsed_ms(const struct walk_job *j)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - j->t0.tv_sec) * 1000u + (uint64_t)(t.tv_nsec / 1000000) -
	       (uint64_t)(j->t0.tv_nsec / 1000000);
}

/* stop says whether the walk must end now (cancelled, or over its time),
 * with the reason in j->error for the time cap. */
static bool stop(struct walk_job *j)
{
	uint64_t ms;

	if (atomic_load(&j->cancel))
		return true;
	ms = elapsed_ms(j);
	if (ms / 1000u < j->max_seconds)
		return false;
	pthread_mutex_lock(&walk_mu);
	(void)snprintf(j->error, sizeof(j->error),
	               "the walk took longer than [snapshot] max_seconds (%llu s) and stopped; no file "
	               "set was made (raise max_seconds or narrow roots)",
	               (unsigned long long)j->max_seconds);
	pthread_mutex_unlock(&walk_mu);
	return true;
}

static bool under(const char *p, const char *tree)
{
	size_t n = strlen(tree);

	if (n == 1 && tree[0] == '/')
		return true;
	return strncmp(p, tree, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* host_path writes where the guest path `p` is for the agent. */
static bool host_path(const struct walk_job *j, const char *p, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s", j->mount_root, p);

	return n > 0 && (size_t)n < cap;
}

/* pruned says whether the walk leaves the folder at guest path `p` (host
 * path `hp`) out: an excluded tree, the agent's state, a kernel file
 * system (/proc, /sys and their kind, wherever they are mounted). */
static bool is_pruned(const struct walk_job *j, const char *p, const char *hp, int fd)
{
	struct statfs sf;

	for (size_t i = 0; i < j->excluded.count; i++)
		if (under(p, j->excluded.items[i]))
			return true;
	for (size_t i = 0; i < j->state_dirs.count; i++)
		if (under(hp, j->state_dirs.items[i]))
			return true;
	if (fd >= 0 && fstatfs(fd, &sf) == 0) {
		switch ((unsigned long)sf.f_type) {
		case PROC_SUPER_MAGIC:
		case SYSFS_MAGIC:
		case DEVPTS_SUPER_MAGIC:
		case CGROUP_SUPER_MAGIC:
		case CGROUP2_SUPER_MAGIC:
		case DEBUGFS_MAGIC:
		case SECURITYFS_MAGIC:
		case TRACEFS_MAGIC:
		case BPF_FS_MAGIC:
			return true;
		default:
			break;
		}
	}
	return false;
}

/* add_file appends a listed file (or a skipped one, `why` set). Returns
 * CVM_E_TOO_LARGE past max_files (its message in j->error). */
static int add_file(struct walk_job *j, const char *p, const struct stat *st, const char *why, int err)
{
	struct walk_file *f;

	if (j->count >= j->max_files) {
		pthread_mutex_lock(&walk_mu);
		(void)snprintf(j->error, sizeof(j->error),
		               "more than [snapshot] max_files (%llu) files under the roots; no file set was "
		               "made (raise max_files or narrow roots)",
		               (unsigned long long)j->max_files);
		pthread_mutex_unlock(&walk_mu);
		return CVM_E_TOO_LARGE;
	}
	if (j->count == j->cap) {
		size_t cap = j->cap != 0 ? j->cap * 2 : 1024;
		struct walk_file *nb;

		if (cap > SIZE_MAX / sizeof(*nb))
			return CVM_E_NOMEM;
		nb = calloc(cap, sizeof(*nb));
		if (nb == NULL)
			return CVM_E_NOMEM;
		if (j->count != 0)
			memcpy(nb, j->files, j->count * sizeof(*nb));
		free(j->files);
		j->files = nb;
		j->cap = cap;
	}
	f = &j->files[j->count];
	memset(f, 0, sizeof(*f));
	f->path = strdup(p);
	if (f->path == NULL)
		return CVM_E_NOMEM;
	f->why = why;
	f->err = err;
	if (st != NULL) {
		f->size = (uint64_t)st->st_size;
		f->dev = st->st_dev;
		f->ino = st->st_ino;
	}
	j->count++;
	pthread_mutex_lock(&walk_mu);
	if (why == NULL) {
		j->files_total++;
		j->bytes_total += f->size;
	} else {
		j->skipped++;
	}
	pthread_mutex_unlock(&walk_mu);
	return CVM_OK;
}

static int join_path(const char *dir, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);

	return n > 0 && (size_t)n < cap ? CVM_OK : CVM_E_TOO_LARGE;
}

/* list_dir lists one folder: regular files to j->files, folders to
 * `stack`. */
static int list_dir(struct walk_job *j, const char *p, struct walk_list *stack)
{
	char hp[AGENT_PATH_MAX + WALK_PATH_MAX], cp[WALK_PATH_MAX], chp[AGENT_PATH_MAX + WALK_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int fd, r = CVM_OK;

	if (!host_path(j, p, hp, sizeof(hp)))
		return add_file(j, p, NULL, "path too long", 0);
	fd = open(hp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return add_file(j, p, NULL, "folder cannot be opened", errno);
	if (is_pruned(j, p, hp, fd)) {
		(void)close(fd);
		pthread_mutex_lock(&walk_mu);
		j->pruned++;
		pthread_mutex_unlock(&walk_mu);
		return CVM_OK;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		r = add_file(j, p, NULL, "folder cannot be read", errno);
		(void)close(fd);
		return r;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				r = add_file(j, p, NULL, "folder cannot be read to the end", errno);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (join_path(p, de->d_name, cp, sizeof(cp)) != CVM_OK) {
			r = add_file(j, p, NULL, "holds a path longer than 4095 bytes", 0);
			if (r != CVM_OK)
				break;
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			r = add_file(j, cp, NULL, "vanished or cannot be examined", errno);
		} else if (S_ISDIR(st.st_mode)) {
			bool pruned = host_path(j, cp, chp, sizeof(chp)) && is_pruned(j, cp, chp, -1);

			if (pruned) {
				pthread_mutex_lock(&walk_mu);
				j->pruned++;
				pthread_mutex_unlock(&walk_mu);
			} else {
				r = list_add(stack, cp, strlen(cp));
				if (r == CVM_E_TOO_LARGE) {
					pthread_mutex_lock(&walk_mu);
					(void)snprintf(
					    j->error, sizeof(j->error),
					    "more than %zu folders wait to be walked; no file set was made "
					    "(narrow roots)",
					    (size_t)WALK_DIRS_MAX);
					pthread_mutex_unlock(&walk_mu);
				}
			}
		} else if (S_ISREG(st.st_mode)) {
			r = add_file(j, cp, &st, NULL, 0);
		}
		/* symbolic links, devices, FIFOs and sockets: not files to hash */
		if (r != CVM_OK)
			break;
	}
	(void)closedir(d);
	return r;
}

/* list_root lists the tree at `root` depth-first, with an explicit stack
 * (a deep tree must not exhaust the thread's stack or its descriptors). */
static int list_root(struct walk_job *j, const char *root)
{
	struct walk_list stack = {NULL, 0, 0, WALK_DIRS_MAX};
	int r;

	r = list_add(&stack, root, strlen(root));
	while (r == CVM_OK && stack.count > 0) {
		char *p = stack.items[--stack.count];

		if (stop(j))
			r = CVM_E_SYSTEM;
		else
			r = list_dir(j, p, &stack);
		free(p);
	}
	list_free(&stack);
	return r;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct walk_file *)a)->path, ((const struct walk_file *)b)->path);
}

/* hash_file streams one file into its digest; a file that cannot be read
 * is marked skipped. Returns CVM_E_SYSTEM when the walk must stop. */
static int hash_file(struct walk_job *j, struct cvm_digest_ctx *dc, struct walk_file *f, uint8_t *buf)
{
	char hp[AGENT_PATH_MAX + WALK_PATH_MAX];
	struct stat st;
	uint64_t total = 0;
	int fd, r = CVM_OK;

	if (f->size > j->max_file_bytes) {
		f->why = "larger than [snapshot] max_file_bytes";
		return CVM_OK;
	}
	if (!host_path(j, f->path, hp, sizeof(hp))) {
		f->why = "path too long";
		return CVM_OK;
	}
	fd = open(hp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		f->err = errno;
		f->why = "cannot be opened";
		return CVM_OK;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != f->dev || st.st_ino != f->ino) {
		f->why = "replaced during the walk";
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, WALK_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			f->err = errno;
			f->why = "cannot be read";
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > j->max_file_bytes) {
			f->why = "grew past [snapshot] max_file_bytes during the walk";
			goto out;
		}
		r = cvm_digest_update(dc, buf, (size_t)n);
		if (r != CVM_OK) {
			f->why = "the digest failed";
			r = CVM_OK;
			goto out;
		}
		pthread_mutex_lock(&walk_mu);
		j->bytes_hashed += (uint64_t)n;
		pthread_mutex_unlock(&walk_mu);
		if (stop(j)) {
			r = CVM_E_SYSTEM;
			goto out;
		}
	}
	r = cvm_digest_final(dc, f->digest, sizeof(f->digest));
	if (r != CVM_OK) {
		f->why = "the digest failed";
		r = CVM_OK;
	}
out:
	(void)close(fd);
	if (f->why != NULL) {
		uint8_t scratch[CVM_DIGEST_MAX];

		/* start the next file afresh; a failure here fails that file too */
		if (cvm_digest_final(dc, scratch, sizeof(scratch)) != CVM_OK)
			r = CVM_E_CRYPTO;
	}
	return r;
}

static void finish(struct walk_job *j, int r)
{
	pthread_mutex_lock(&walk_mu);
	j->elapsed_ms = elapsed_ms(j);
	if (r == CVM_OK) {
		j->state = WALK_DONE;
	} else {
		j->state = WALK_FAILED;
		if (j->error[0] == '\0')
			(void)snprintf(j->error, sizeof(j->error), "%s",
			               atomic_load(&j->cancel) ? "the agent is stopping" : cvm_strerror(r));
	}
	j->phase = "";
	pthread_mutex_unlock(&walk_mu);
}

static void *walk_main(void *arg)
{
	struct walk_job *j = arg;
	struct cvm_digest_ctx *dc = NULL;
	uint8_t *buf = NULL;
	int r = CVM_OK;

	for (size_t i = 0; r == CVM_OK && i < j->roots.count; i++)
		r = list_root(j, j->roots.items[i]);
	if (r != CVM_OK)
		goto out;
	if (j->count > 1)
		qsort(j->files, j->count, sizeof(*j->files), cmp_file);
	/* Two roots that overlap list a file twice: keep one. */
	for (size_t i = 1; i < j->count; i++) {
		if (strcmp(j->files[i].path, j->files[i - 1].path) != 0 || j->files[i].why != NULL)
			continue;
		j->files[i].why = "duplicate";
		pthread_mutex_lock(&walk_mu);
		j->files_total--;
		j->bytes_total -= j->files[i].size;
		pthread_mutex_unlock(&walk_mu);
	}
	pthread_mutex_lock(&walk_mu);
	j->phase = "hashing";
	pthread_mutex_unlock(&walk_mu);
	buf = malloc(WALK_CHUNK);
	r = buf == NULL ? CVM_E_NOMEM : cvm_digest_ctx_new(j->alg, &dc);
	for (size_t i = 0; r == CVM_OK && i < j->count; i++) {
		struct walk_file *f = &j->files[i];

		if (f->why != NULL)
			continue;
		r = hash_file(j, dc, f, buf);
		pthread_mutex_lock(&walk_mu);
		if (f->why == NULL)
			j->files_hashed++;
		else
			j->skipped++;
		pthread_mutex_unlock(&walk_mu);
	}
	if (r != CVM_OK)
		goto out;
	j->entries = calloc(j->count + 1, sizeof(size_t));
	j->skips = calloc(j->count + 1, sizeof(size_t));
	if (j->entries == NULL || j->skips == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < j->count; i++) {
		if (j->files[i].why == NULL)
			j->entries[j->entry_count++] = i;
		else if (strcmp(j->files[i].why, "duplicate") != 0)
			j->skips[j->skip_count++] = i;
	}
out:
	cvm_digest_ctx_free(dc);
	free(buf);
	finish(j, r);
	return NULL;
}

/* ---- the event loop's side ------------------------------------------------------ */

static void walk_atexit(void)
{
	struct walk_job *j;

	pthread_mutex_lock(&walk_mu);
	j = walk_cur;
	walk_cur = NULL;
	pthread_mutex_unlock(&walk_mu);
	if (j == NULL)
		return;
	atomic_store(&j->cancel, true);
	(void)pthread_join(j->thread, NULL);
	job_free(j);
}

int agent_walk_start(struct agent *a, bool *already, char *err, size_t err_len)
{
	struct walk_job *j = NULL, *old;
	sigset_t all, saved;
	int r, e;

	*already = false;
	if (a->cfg.walk_disable) {
		(void)snprintf(err, err_len, "the file walk is off on this agent ([snapshot] disable_walk)");
		return CVM_E_UNSUPPORTED;
	}
	pthread_mutex_lock(&walk_mu);
	old = walk_cur;
	if (old != NULL && old->state == WALK_RUNNING) {
		pthread_mutex_unlock(&walk_mu);
		*already = true;
		return CVM_OK;
	}
	walk_cur = NULL;
	pthread_mutex_unlock(&walk_mu);
	if (old != NULL) {
		(void)pthread_join(old->thread, NULL); /* done or failed: it has returned or is returning */
		job_free(old);
	}
	r = job_new(a, &j, err, err_len);
	if (r != CVM_OK)
		return r;
	j->generation = ++walk_generation;
	(void)clock_gettime(CLOCK_MONOTONIC, &j->t0);
	if (!walk_atexit_set) {
		if (atexit(walk_atexit) != 0) {
			job_free(j);
			(void)snprintf(err, err_len, "cannot register the walk's cleanup");
			return CVM_E_INTERNAL;
		}
		walk_atexit_set = true;
	}
	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &saved);
	e = pthread_create(&j->thread, NULL, walk_main, j);
	(void)pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (e != 0) {
		job_free(j);
		(void)snprintf(err, err_len, "cannot start the walk's thread: %s", strerror(e));
		return CVM_E_SYSTEM;
	}
	pthread_mutex_lock(&walk_mu);
	walk_cur = j;
	pthread_mutex_unlock(&walk_mu);
	cvm_daemon_log(CVM_LOG_INFO, "walk_start", "generation=%llu roots=%zu excluded=%zu algo=%s",
	               (unsigned long long)j->generation, j->roots.count, j->excluded.count,
	               cvm_digest_name(j->alg));
	return CVM_OK;
}

/* escape_path writes a path as the snapshot writes IMA paths: bytes outside
 * 0x21..0x7e, and the backslash, as \xNN. */
static json_t *escape_path(const char *p)
{
	size_t n = strlen(p), o = 0;
	char *s = malloc(4 * n + 1);
	json_t *v;

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch > 0x20 && ch < 0x7f && ch != '\\') {
			s[o++] = (char)ch;
		} else {
			static const char hex[] = "0123456789abcdef";

			s[o++] = '\\';
			s[o++] = 'x';
			s[o++] = hex[ch >> 4];
			s[o++] = hex[ch & 15];
		}
	}
	v = json_stringn(s, o);
	free(s);
	return v;
}

static json_t *list_json(const struct walk_list *l)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < l->count; i++) {
		if (json_array_append_new(arr, escape_path(l->items[i])) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *digest_json(const struct walk_job *j, const struct walk_file *f)
{
	char text[16 + 2 * CVM_DIGEST_MAX + 1];
	size_t dl = cvm_digest_len(j->alg);
	int n = snprintf(text, sizeof(text), "%s:", cvm_digest_name(j->alg));

	if (n <= 0 || (size_t)n + 2 * dl >= sizeof(text))
		return NULL;
	cvm_hex_encode(f->digest, dl, text + n);
	return json_string(text);
}

static json_t *skip_json(const struct walk_file *f)
{
	char why[160];
	json_t *o = json_object();

	if (f->err != 0)
		(void)snprintf(why, sizeof(why), "%s: %s", f->why, strerror(f->err));
	else
		(void)snprintf(why, sizeof(why), "%s", f->why);
	if (o == NULL || cvm_json_set(o, "path", escape_path(f->path)) != CVM_OK ||
	    cvm_json_set(o, "reason", json_string(why)) != CVM_OK) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* page_json adds the entries from `offset` on, at most `limit` of them and
 * AGENT_WALK_PAGE_BYTES of text, and next_offset (null at the end). */
static int page_json(const struct walk_job *j, json_t *o, uint64_t offset, uint64_t limit)
{
	json_t *arr = json_array(), *skips = json_array();
	size_t bytes = 0, i = offset < j->entry_count ? (size_t)offset : j->entry_count;
	int r;

	if (arr == NULL || skips == NULL) {
		json_decref(arr);
		json_decref(skips);
		return CVM_E_NOMEM;
	}
	for (; i < j->entry_count && (uint64_t)json_array_size(arr) < limit && bytes < AGENT_WALK_PAGE_BYTES;
	     i++) {
		const struct walk_file *f = &j->files[j->entries[i]];
		json_t *e = json_object();

		if (e == NULL || json_array_append_new(arr, e) != 0 ||
		    cvm_json_set(e, "path", escape_path(f->path)) != CVM_OK ||
		    cvm_json_set(e, "digest", digest_json(j, f)) != CVM_OK) {
			json_decref(arr);
			json_decref(skips);
			return CVM_E_NOMEM;
		}
		bytes += 4 * strlen(f->path) + (size_t)2 * CVM_DIGEST_MAX + 32;
	}
	/* The skipped files come with the first page, up to a cap; the count
	 * is always whole. */
	for (size_t k = 0; offset == 0 && k < j->skip_count && k < AGENT_WALK_SKIPS_LISTED; k++) {
		if (json_array_append_new(skips, skip_json(&j->files[j->skips[k]])) != 0) {
			json_decref(arr);
			json_decref(skips);
			return CVM_E_NOMEM;
		}
	}
	r = cvm_json_set(o, "entries", arr);
	if (r == CVM_OK)
		r = cvm_json_set(o, "skipped_entries", skips);
	else
		json_decref(skips);
	if (r == CVM_OK)
		r = cvm_json_set(o, "next_offset",
		                 i < j->entry_count ? json_integer((json_int_t)i) : json_null());
	return r;
}

int agent_walk_status(struct agent *a, const struct agent_walk_query *q, json_t **out, int *status, char *err,
                      size_t err_len)
{
	struct walk_job *j;
	json_t *o = NULL;
	enum walk_state st = WALK_IDLE;
	int r = CVM_OK;

	(void)a;
	*out = NULL;
	*status = 500;
	o = json_object();
	if (o == NULL)
		return CVM_E_NOMEM;
	/* Only the loop changes walk_cur, so j stays valid here; its counters
	 * are read under the lock. */
	pthread_mutex_lock(&walk_mu);
	j = walk_cur;
	if (j != NULL) {
		st = j->state;
		r |= cvm_json_set(o, "generation", json_integer((json_int_t)j->generation));
		r |= cvm_json_set(o, "phase", json_string(j->phase));
		r |= cvm_json_set(o, "files_total", json_integer((json_int_t)j->files_total));
		r |= cvm_json_set(o, "bytes_total", json_integer((json_int_t)j->bytes_total));
		r |= cvm_json_set(o, "files_hashed", json_integer((json_int_t)j->files_hashed));
		r |= cvm_json_set(o, "bytes_hashed", json_integer((json_int_t)j->bytes_hashed));
		r |= cvm_json_set(o, "skipped", json_integer((json_int_t)j->skipped));
		r |= cvm_json_set(o, "pruned_folders", json_integer((json_int_t)j->pruned));
		r |= cvm_json_set(
		    o, "elapsed_ms",
		    json_integer((json_int_t)(st == WALK_RUNNING ? elapsed_ms(j) : j->elapsed_ms)));
		if (st == WALK_FAILED)
			r |= cvm_json_set(o, "error", json_string(j->error));
	}
	pthread_mutex_unlock(&walk_mu);
	r |= cvm_json_set(o, "state", json_string(state_names[st]));
	r |= cvm_json_set(o, "already_running", json_boolean(q->already_running));
	if (j != NULL) {
		r |= cvm_json_set(o, "algo", json_string(cvm_digest_name(j->alg)));
		r |= cvm_json_set(o, "roots", list_json(&j->roots));
		r |= cvm_json_set(o, "excluded", list_json(&j->excluded));
	}
	if (r != CVM_OK) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (j != NULL && st != WALK_RUNNING && !j->logged) {
		j->logged = true;
		cvm_daemon_log(st == WALK_DONE ? CVM_LOG_INFO : CVM_LOG_WARN, "walk_end",
		               "generation=%llu state=%s files=%zu skipped=%zu ms=%llu",
		               (unsigned long long)j->generation, state_names[st], j->entry_count,
		               j->skip_count, (unsigned long long)j->elapsed_ms);
	}
	if (q->want_entries) {
		if (j == NULL || st != WALK_DONE) {
			(void)snprintf(
			    err, err_len,
			    "no file set to page through: the walk is %s (ask again when it is done)",
			    state_names[st]);
			*status = 409;
			r = CVM_E_INVAL;
			goto out;
		}
		if (q->has_generation && q->generation != j->generation) {
			(void)snprintf(
			    err, err_len,
			    "the walk was started again (generation %llu, not %llu): take the file set "
			    "again",
			    (unsigned long long)j->generation, (unsigned long long)q->generation);
			*status = 409;
			r = CVM_E_INVAL;
			goto out;
		}
		r = cvm_json_set(o, "count", json_integer((json_int_t)j->entry_count));
		if (r == CVM_OK)
			r = page_json(j, o, q->offset,
			              q->limit != 0 && q->limit < AGENT_WALK_PAGE_ENTRIES
			                  ? q->limit
			                  : AGENT_WALK_PAGE_ENTRIES);
		if (r != CVM_OK)
			goto out;
	}
	*out = o;
	o = NULL;
	*status = 200;
out:
	json_decref(o);
	return r;
}

/* pair_path is a path as a JSON string: as it is when it is UTF-8 (Cosmian
 * VM's filehashes hold the names as they are), else escaped as the
 * snapshot writes paths. */
static json_t *pair_path(const char *p)
{
	json_t *v = json_string(p);

	return v != NULL ? v : escape_path(p);
}

int agent_walk_pairs(struct agent *a, json_t *arr, const char **state, char *err, size_t err_len)
{
	struct walk_job *j;
	enum walk_state st = WALK_IDLE;
	size_t dl;

	(void)a;
	pthread_mutex_lock(&walk_mu);
	j = walk_cur;
	if (j != NULL) {
		st = j->state;
		if (st == WALK_FAILED)
			(void)snprintf(err, err_len, "%s", j->error);
	}
	pthread_mutex_unlock(&walk_mu);
	*state = state_names[st];
	if (st != WALK_DONE)
		return CVM_OK;
	/* done: the thread has finished with the job, only the loop reads it */
	dl = cvm_digest_len(j->alg);
	for (size_t i = 0; i < j->entry_count; i++) {
		const struct walk_file *f = &j->files[j->entries[i]];
		char hex[2 * CVM_DIGEST_MAX + 1];
		json_t *pair;

		cvm_hex_encode(f->digest, dl, hex);
		pair = json_pack("[o, s]", pair_path(f->path), hex);
		if (pair == NULL || json_array_append_new(arr, pair) != 0)
			return CVM_E_NOMEM;
	}
	return CVM_OK;
}

int agent_walk_clear(struct agent *a)
{
	struct walk_job *old;

	(void)a;
	pthread_mutex_lock(&walk_mu);
	old = walk_cur;
	if (old != NULL && old->state == WALK_RUNNING) {
		pthread_mutex_unlock(&walk_mu);
		return CVM_E_INVAL;
	}
	walk_cur = NULL;
	pthread_mutex_unlock(&walk_mu);
	if (old != NULL) {
		(void)pthread_join(old->thread, NULL);
		job_free(old);
	}
	return CVM_OK;
}
