/* Sealing to a TPM (lib/tpm/seal.c) and the KMS's sealed roots (lib/kms).
 *
 * The blob parser's tests run everywhere, on a blob this file writes itself
 * from the format in include/cvmkit/tpm.h. The TPM tests start private
 * swtpm instances (Debian's swtpm, as tests/common/swtpm.sh does, on free
 * ports of 127.0.0.1); without swtpm they print why and the program exits
 * 77 (ctest: skipped) after the parser tests passed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <cvmkit/bytes.h>
#include <cvmkit/kms.h>
#include <cvmkit/secret.h>
#include <cvmkit/tpm.h>

/* ---- a blob written from the documented format ---------------------------- */

#define UNIQUE_OFF \
	(8 + 2 + 2 + 2 + 2 + 4 + 2 + 2 + 2) /* magic ver size type nameAlg attrs policy scheme usize */
#define PRIV_LEN 40

/* synth_blob writes "cvmseal\n" || 1 || TPM2B_PUBLIC (keyedhash, SHA-256,
 * fixedTPM|fixedParent|userWithAuth|noDA, no policy, NULL scheme, 32-byte
 * unique) || TPM2B_PRIVATE (PRIV_LEN bytes). */
static void synth_blob(uint8_t **out, size_t *out_len)
{
	struct cvm_wr w;

	cvm_wr_init(&w, 4096);
	cvm_wr_bytes(&w, "cvmseal\n", 8);
	cvm_wr_u16be(&w, 1);
	cvm_wr_u16be(&w, 2 + 2 + 4 + 2 + 2 + 2 + 32);
	cvm_wr_u16be(&w, 0x0008);                        /* TPM_ALG_KEYEDHASH */
	cvm_wr_u16be(&w, 0x000b);                        /* TPM_ALG_SHA256 */
	cvm_wr_u32be(&w, 0x2u | 0x10u | 0x40u | 0x400u); /* fixedTPM fixedParent userWithAuth noDA */
	cvm_wr_u16be(&w, 0);                             /* authPolicy */
	cvm_wr_u16be(&w, 0x0010);                        /* scheme TPM_ALG_NULL */
	cvm_wr_u16be(&w, 32);                            /* unique */
	for (int i = 0; i < 32; i++)
		cvm_wr_u8(&w, (uint8_t)(0xa0 + i));
	cvm_wr_u16be(&w, PRIV_LEN);
	for (int i = 0; i < PRIV_LEN; i++)
		cvm_wr_u8(&w, (uint8_t)i);
	assert_int_equal(cvm_wr_finish(&w, out, out_len), CVM_OK);
	assert_int_equal(*out_len, (size_t)UNIQUE_OFF + 32 + 2 + PRIV_LEN);
}

static void blob_written_from_the_format_passes_the_check(void **state)
{
	uint8_t *b = NULL;
	size_t n = 0;

	(void)state;
	synth_blob(&b, &n);
	assert_int_equal(cvm_tpm_seal_blob_check(b, n), CVM_OK);
	free(b);
}

static void blob_rejects_every_truncation_and_a_trailing_byte(void **state)
{
	uint8_t *b = NULL, *longer;
	size_t n = 0;

	(void)state;
	synth_blob(&b, &n);
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(cvm_tpm_seal_blob_check(b, i), CVM_OK);
	longer = malloc(n + 1);
	assert_non_null(longer);
	memcpy(longer, b, n);
	longer[n] = 0;
	assert_int_equal(cvm_tpm_seal_blob_check(longer, n + 1), CVM_E_FORMAT);
	assert_int_equal(cvm_tpm_seal_blob_check(NULL, 0), CVM_E_TRUNCATED);
	free(longer);
	free(b);
}

/* Every flip outside the two opaque buffers (unique, the private part) must
 * be refused; inside them the structure stays valid, and only the TPM can
 * tell (tpm_refuses_an_altered_private_or_public_part). */
static void blob_bit_flips_outside_the_opaque_parts_are_refused(void **state)
{
	uint8_t *b = NULL;
	size_t n = 0;

	(void)state;
	synth_blob(&b, &n);
	for (size_t i = 0; i < n; i++) {
		bool opaque = (i >= UNIQUE_OFF && i < UNIQUE_OFF + 32) || i >= UNIQUE_OFF + 32 + 2;

		for (int bit = 0; bit < 8; bit++) {
			int r;

			b[i] ^= (uint8_t)(1u << bit);
			r = cvm_tpm_seal_blob_check(b, n);
			b[i] ^= (uint8_t)(1u << bit);
			if (opaque)
				assert_int_equal(r, CVM_OK);
			else if (r == CVM_OK)
				fail_msg("a flip of bit %d of byte %zu was accepted", bit, i);
		}
	}
	free(b);
}

static void blob_of_another_version_or_shape_is_named(void **state)
{
	uint8_t *b = NULL;
	size_t n = 0;

	(void)state;
	synth_blob(&b, &n);
	b[9] = 2; /* version 2 */
	assert_int_equal(cvm_tpm_seal_blob_check(b, n), CVM_E_UNSUPPORTED);
	b[9] = 1;
	b[19] |= 0x20; /* sensitiveDataOrigin (0x20, in the attributes' last byte) */
	assert_int_equal(cvm_tpm_seal_blob_check(b, n), CVM_E_FORMAT);
	free(b);
	b = calloc(1, CVM_TPM_SEAL_BLOB_MAX + 1);
	assert_non_null(b);
	assert_int_equal(cvm_tpm_seal_blob_check(b, CVM_TPM_SEAL_BLOB_MAX + 1), CVM_E_TOO_LARGE);
	free(b);
}

/* ---- swtpm ----------------------------------------------------------------- */

struct swtpm {
	pid_t pid;
	char dir[64];
	char tcti[64];
};

static bool have_swtpm;

/* What a test started or made, so that its teardown ends and removes it
 * even when an assertion left the test early. */
#define LEFT_MAX 8
static pid_t left_pids[LEFT_MAX];
static char left_dirs[LEFT_MAX][64];

static void track_pid(pid_t pid)
{
	for (size_t i = 0; i < LEFT_MAX; i++) {
		if (left_pids[i] == 0) {
			left_pids[i] = pid;
			return;
		}
	}
	fail_msg("more than %d processes to track", LEFT_MAX);
}

static void untrack_pid(pid_t pid)
{
	for (size_t i = 0; i < LEFT_MAX; i++) {
		if (left_pids[i] == pid)
			left_pids[i] = 0;
	}
}

static void track_dir(const char *dir)
{
	for (size_t i = 0; i < LEFT_MAX; i++) {
		if (left_dirs[i][0] == '\0') {
			(void)snprintf(left_dirs[i], sizeof(left_dirs[i]), "%s", dir);
			return;
		}
	}
	fail_msg("more than %d folders to track", LEFT_MAX);
}

static void untrack_dir(const char *dir)
{
	for (size_t i = 0; i < LEFT_MAX; i++) {
		if (strcmp(left_dirs[i], dir) == 0)
			left_dirs[i][0] = '\0';
	}
}

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char sub[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		(void)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		rm_tree(sub);
	}
	(void)closedir(d);
	(void)rmdir(path);
}

/* free_port_pair returns P such that P and P+1 were free a moment ago. */
static int free_port_pair(void)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		struct sockaddr_in a;
		socklen_t alen = sizeof(a);
		int s1 = socket(AF_INET, SOCK_STREAM, 0), s2 = socket(AF_INET, SOCK_STREAM, 0), port = -1;

		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (s1 >= 0 && s2 >= 0 && bind(s1, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    getsockname(s1, (struct sockaddr *)&a, &alen) == 0 && ntohs(a.sin_port) < 65535) {
			port = ntohs(a.sin_port);
			a.sin_port = htons((uint16_t)(port + 1));
			if (bind(s2, (struct sockaddr *)&a, sizeof(a)) != 0)
				port = -1;
		}
		if (s1 >= 0)
			(void)close(s1);
		if (s2 >= 0)
			(void)close(s2);
		if (port > 0)
			return port;
	}
	return -1;
}

static bool port_open(int port)
{
	struct sockaddr_in a;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (s < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	(void)close(s);
	return ok;
}

static void swtpm_stop(struct swtpm *s)
{
	if (s->pid > 0) {
		(void)kill(s->pid, SIGTERM);
		(void)waitpid(s->pid, NULL, 0);
		untrack_pid(s->pid);
		s->pid = 0;
	}
}

/* swtpm_start starts a swtpm with its state in a new folder (or `dir`'s,
 * when it is set: the same TPM again). */
static void swtpm_start(struct swtpm *s)
{
	if (s->dir[0] == '\0') {
		(void)snprintf(s->dir, sizeof(s->dir), "/tmp/cvm-test-swtpm-XXXXXX");
		assert_non_null(mkdtemp(s->dir));
		track_dir(s->dir);
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		int port = free_port_pair();
		char server[96], ctrl[96], state[96], logp[96];

		assert_true(port > 0);
		(void)snprintf(server, sizeof(server), "type=tcp,port=%d,bindaddr=127.0.0.1", port);
		(void)snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%d,bindaddr=127.0.0.1", port + 1);
		(void)snprintf(state, sizeof(state), "dir=%s", s->dir);
		(void)snprintf(logp, sizeof(logp), "%s/swtpm.log", s->dir);
		s->pid = fork();
		assert_true(s->pid >= 0);
		if (s->pid == 0) {
			int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

			if (fd >= 0) {
				(void)dup2(fd, 1);
				(void)dup2(fd, 2);
			}
			execlp("swtpm", "swtpm", "socket", "--tpm2", "--server", server, "--ctrl", ctrl,
			       "--flags", "not-need-init,startup-clear", "--tpmstate", state, (char *)NULL);
			_exit(127);
		}
		track_pid(s->pid);
		/* up to 10 s for the server port to accept connections */
		for (int i = 0; i < 100; i++) {
			struct timespec ts = {0, 100 * 1000 * 1000};

			if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
				untrack_pid(s->pid);
				s->pid = 0;
				break;
			}
			if (port_open(port)) {
				(void)snprintf(s->tcti, sizeof(s->tcti), "swtpm:host=127.0.0.1,port=%d",
				               port);
				return;
			}
			(void)nanosleep(&ts, NULL);
		}
		swtpm_stop(s);
	}
	fail_msg("swtpm did not start (see %s/swtpm.log)", s->dir);
}

static void swtpm_destroy(struct swtpm *s)
{
	swtpm_stop(s);
	if (s->dir[0] != '\0') {
		rm_tree(s->dir);
		untrack_dir(s->dir);
	}
	s->dir[0] = '\0';
}

/* teardown ends the swtpm instances and removes the folders a test left. */
static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < LEFT_MAX; i++) {
		if (left_pids[i] > 0) {
			(void)kill(left_pids[i], SIGTERM);
			(void)waitpid(left_pids[i], NULL, 0);
			left_pids[i] = 0;
		}
	}
	for (size_t i = 0; i < LEFT_MAX; i++) {
		if (left_dirs[i][0] != '\0') {
			rm_tree(left_dirs[i]);
			left_dirs[i][0] = '\0';
		}
	}
	return 0;
}

static struct cvm_tpm *open_tpm(const struct swtpm *s)
{
	struct cvm_tpm *t = NULL;
	char err[256];

	if (cvm_tpm_open(s->tcti, &t, err, sizeof(err)) != CVM_OK)
		fail_msg("cvm_tpm_open(%s): %s", s->tcti, err);
	return t;
}

/* ---- sealing on a TPM --------------------------------------------------- */

static const uint8_t secret33[33] = {7,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void tpm_round_trip_returns_the_secret_and_blobs_differ(void **state)
{
	struct swtpm s;
	struct cvm_tpm *t;
	struct cvm_secret *out = NULL;
	uint8_t *b1 = NULL, *b2 = NULL, big[CVM_TPM_SEAL_SECRET_MAX + 1];
	size_t n1 = 0, n2 = 0;
	char err[256];

	(void)state;
	memset(&s, 0, sizeof(s));
	memset(big, 0x5a, sizeof(big));
	swtpm_start(&s);
	t = open_tpm(&s);
	assert_int_equal(cvm_tpm_seal(t, secret33, sizeof(secret33), &b1, &n1, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_tpm_seal(t, secret33, sizeof(secret33), &b2, &n2, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_tpm_seal_blob_check(b1, n1), CVM_OK);
	/* a fresh seed every time: the blob says nothing about the secret */
	assert_true(n1 != n2 || memcmp(b1, b2, n1) != 0);
	assert_null(memmem(b1, n1, secret33 + 1, 32));
	free(b2);
	b2 = NULL;
	assert_int_equal(cvm_tpm_unseal(t, b1, n1, &out, err, sizeof(err)), CVM_OK);
	assert_int_equal(out->len, sizeof(secret33));
	assert_memory_equal(out->p, secret33, sizeof(secret33));
	cvm_secret_free(out);
	out = NULL;
	/* the largest secret a TPM seals, and one byte more */
	assert_int_equal(cvm_tpm_seal(t, big, CVM_TPM_SEAL_SECRET_MAX, &b2, &n2, err, sizeof(err)), CVM_OK);
	free(b2);
	b2 = NULL;
	assert_int_equal(cvm_tpm_seal(t, big, sizeof(big), &b2, &n2, err, sizeof(err)), CVM_E_INVAL);
	assert_null(b2);
	assert_int_equal(cvm_tpm_seal(t, big, 0, &b2, &n2, err, sizeof(err)), CVM_E_INVAL);
	free(b1);
	cvm_tpm_close(t);
	swtpm_destroy(&s);
}

static void tpm_another_tpm_cannot_unseal(void **state)
{
	struct swtpm s1, s2;
	struct cvm_tpm *t1, *t2;
	struct cvm_secret *out = NULL;
	uint8_t *b = NULL;
	size_t n = 0;
	char err[256];

	(void)state;
	memset(&s1, 0, sizeof(s1));
	memset(&s2, 0, sizeof(s2));
	swtpm_start(&s1);
	swtpm_start(&s2);
	t1 = open_tpm(&s1);
	t2 = open_tpm(&s2);
	assert_int_equal(cvm_tpm_seal(t1, secret33, sizeof(secret33), &b, &n, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_tpm_unseal(t2, b, n, &out, err, sizeof(err)), CVM_E_TPM);
	assert_null(out);
	assert_non_null(strstr(err, "TPM2_Load"));
	/* the same TPM, restarted from its state, still can */
	cvm_tpm_close(t1);
	swtpm_stop(&s1);
	swtpm_start(&s1);
	t1 = open_tpm(&s1);
	assert_int_equal(cvm_tpm_unseal(t1, b, n, &out, err, sizeof(err)), CVM_OK);
	assert_memory_equal(out->p, secret33, sizeof(secret33));
	cvm_secret_free(out);
	free(b);
	cvm_tpm_close(t1);
	cvm_tpm_close(t2);
	swtpm_destroy(&s1);
	swtpm_destroy(&s2);
}

static void tpm_refuses_an_altered_private_or_public_part(void **state)
{
	struct swtpm s;
	struct cvm_tpm *t;
	struct cvm_secret *out = NULL;
	uint8_t *b = NULL;
	size_t n = 0;
	char err[256];

	(void)state;
	memset(&s, 0, sizeof(s));
	swtpm_start(&s);
	t = open_tpm(&s);
	assert_int_equal(cvm_tpm_seal(t, secret33, sizeof(secret33), &b, &n, err, sizeof(err)), CVM_OK);
	/* the private part ends the blob: its last byte, then one in its middle */
	b[n - 1] ^= 0x01;
	assert_int_equal(cvm_tpm_seal_blob_check(b, n), CVM_OK);
	assert_int_equal(cvm_tpm_unseal(t, b, n, &out, err, sizeof(err)), CVM_E_TPM);
	assert_null(out);
	b[n - 1] ^= 0x01;
	b[n - 40] ^= 0x80;
	assert_int_equal(cvm_tpm_unseal(t, b, n, &out, err, sizeof(err)), CVM_E_TPM);
	b[n - 40] ^= 0x80;
	/* the public unique field (the object's name changes) */
	b[UNIQUE_OFF] ^= 0x01;
	assert_int_equal(cvm_tpm_unseal(t, b, n, &out, err, sizeof(err)), CVM_E_TPM);
	b[UNIQUE_OFF] ^= 0x01;
	assert_int_equal(cvm_tpm_unseal(t, b, n, &out, err, sizeof(err)), CVM_OK);
	cvm_secret_free(out);
	free(b);
	cvm_tpm_close(t);
	swtpm_destroy(&s);
}

/* The scan below reads every anonymous mapping of the process: under
 * AddressSanitizer that includes its redzones and shadow, so it is skipped
 * there (the plain build runs it). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
/* count_in_memory counts the copies of the `n` bytes at `pat` in the
 * process's readable anonymous mappings (heap, stacks, mmap'd memory),
 * other than `pat` itself. */
static int count_in_memory(const uint8_t *pat, size_t n)
{
	FILE *m = fopen("/proc/self/maps", "r");
	char line[512];
	int hits = 0;

	assert_non_null(m);
	while (fgets(line, sizeof(line), m) != NULL) {
		unsigned long a, b, off;
		char perms[8], dev[16];
		unsigned long inode;
		int used = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &a, &b, perms, &off, dev, &inode, &used) <
		        6 ||
		    perms[0] != 'r' || perms[1] != 'w' || inode != 0)
			continue;
		if (strstr(line, "[v") != NULL) /* [vvar], [vsyscall] */
			continue;
		for (const uint8_t *p = (const uint8_t *)a; p + n <= (const uint8_t *)b;) {
			const uint8_t *q = memmem(p, (size_t)((const uint8_t *)b - p), pat, n);

			if (q == NULL)
				break;
			if (q != pat)
				hits++;
			p = q + 1;
		}
	}
	(void)fclose(m);
	return hits;
}
#endif

/* Sealing and unsealing leave no copy of the secret in the process's
 * memory once the caller's own copies are gone: tpm2-tss keeps the
 * plaintext in buffers cvmkit cannot free (seal.c's scrub). */
static void tpm_leaves_no_plaintext_in_process_memory(void **state)
{
#ifdef UNDER_ASAN
	(void)state;
	(void)printf(
	    "SKIP: tpm_leaves_no_plaintext_in_process_memory searches every anonymous mapping, "
	    "which under AddressSanitizer includes its shadow and redzones; the plain build runs it\n");
	skip();
#else
	struct swtpm s;
	struct cvm_tpm *t;
	struct cvm_secret *out = NULL;
	uint8_t *secret = malloc(33), *b = NULL, want[24];
	size_t n = 0;
	char err[256];

	(void)state;
	if (getenv("CVM_UNDER_VALGRIND") != NULL) {
		(void)printf(
		    "SKIP: tpm_leaves_no_plaintext_in_process_memory reads freed and unallocated heap, "
		    "which memcheck reports; the plain build runs it\n");
		free(secret);
		skip();
	}
	assert_non_null(secret);
	for (int i = 0; i < 33; i++)
		secret[i] = (uint8_t)(0x3c ^ (i * 13));
	/* `want` is the pattern to look for, with its first byte flipped while
	 * nothing is being searched, so that it is not a copy itself */
	memcpy(want, secret + 5, sizeof(want));
	want[0] ^= 0xa5;
	memset(&s, 0, sizeof(s));
	swtpm_start(&s);
	t = open_tpm(&s);
	assert_int_equal(cvm_tpm_seal(t, secret, 33, &b, &n, err, sizeof(err)), CVM_OK);
	cvm_wipe(secret, 33);
	free(secret);
	want[0] ^= 0xa5;
	assert_int_equal(count_in_memory(want, sizeof(want)), 0);
	want[0] ^= 0xa5;
	assert_int_equal(cvm_tpm_unseal(t, b, n, &out, err, sizeof(err)), CVM_OK);
	cvm_secret_free(out);
	want[0] ^= 0xa5;
	assert_int_equal(count_in_memory(want, sizeof(want)), 0);
	want[0] ^= 0xa5;
	cvm_tpm_close(t);
	want[0] ^= 0xa5;
	assert_int_equal(count_in_memory(want, sizeof(want)), 0);
	free(b);
	swtpm_destroy(&s);
#endif
}

/* ---- the KMS's sealed roots ---------------------------------------------- */

static bool file_exists(const char *dir, const char *name)
{
	char p[256];
	struct stat st;

	(void)snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static void read_all(const char *dir, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	char p[256];
	FILE *f;

	(void)snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "rb");
	assert_non_null(f);
	*len = fread(buf, 1, cap, f);
	assert_int_equal(fclose(f), 0);
}

static void kms_sealed_roots_load_only_through_the_tpm(void **state)
{
	static const uint8_t app_id[CVM_APP_ID_LEN] = {1, 2, 3};
	struct swtpm s;
	struct cvm_tpm *t;
	struct cvm_kms_roots *roots = NULL, *again = NULL;
	struct cvm_kms_app_keys k1, k2;
	char dir[64], ep[128], err[512];
	uint8_t buf[4096];
	size_t len = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	memset(&k1, 0, sizeof(k1));
	memset(&k2, 0, sizeof(k2));
	swtpm_start(&s);
	t = open_tpm(&s);
	(void)snprintf(dir, sizeof(dir), "/tmp/cvm-test-kmsseal-XXXXXX");
	assert_non_null(mkdtemp(dir));
	track_dir(dir);
	(void)snprintf(ep, sizeof(ep), "%s/epoch-0", dir);
	assert_int_equal(cvm_kms_bootstrap_tpm(dir, 0, (int64_t)time(NULL), t, err, sizeof(err)), CVM_OK);
	/* sealed copies only; certificates plain */
	assert_true(file_exists(ep, CVM_KMS_FILE_ROOT_CA_KEY_SEALED));
	assert_true(file_exists(ep, CVM_KMS_FILE_ROOT_K256_KEY_SEALED));
	assert_true(file_exists(ep, CVM_KMS_FILE_TMP_CA_KEY_SEALED));
	assert_false(file_exists(ep, CVM_KMS_FILE_ROOT_CA_KEY));
	assert_false(file_exists(ep, CVM_KMS_FILE_ROOT_K256_KEY));
	assert_false(file_exists(ep, CVM_KMS_FILE_TMP_CA_KEY));
	assert_true(file_exists(ep, CVM_KMS_FILE_ROOT_CA_CERT));
	/* loaded through the TPM, twice: the same keys */
	assert_int_equal(cvm_kms_roots_load_tpm(dir, 0, t, &roots, err, sizeof(err)), CVM_OK);
	assert_true(cvm_kms_roots_sealed(roots, CVM_KMS_ROOT_CA_KEY));
	assert_true(cvm_kms_roots_sealed(roots, CVM_KMS_ROOT_K256_KEY));
	assert_true(cvm_kms_roots_has(roots, CVM_KMS_ROOT_TMP_CA_KEY));
	assert_false(cvm_kms_roots_sealed(roots, CVM_KMS_ROOT_CA_CERT));
	assert_non_null(strstr(cvm_kms_roots_path(roots, CVM_KMS_ROOT_CA_KEY), ".tpm"));
	assert_int_equal(cvm_kms_roots_load_tpm(dir, 0, t, &again, err, sizeof(err)), CVM_OK);
	assert_int_equal(cvm_kms_app_keys(roots, app_id, NULL, 0, 0, &k1), CVM_OK);
	assert_int_equal(cvm_kms_app_keys(again, app_id, NULL, 0, 0, &k2), CVM_OK);
	assert_int_equal(k1.present, CVM_KMS_KEYS_ALL);
	assert_memory_equal(k1.k256_key->p, k2.k256_key->p, 32);
	assert_memory_equal(k1.disk_crypt_key->p, k2.disk_crypt_key->p, 32);
	cvm_kms_roots_free(again);
	again = NULL;
	/* no sealed file holds the k256 root's bytes in the clear */
	{
		const struct cvm_secret *k256 = NULL;

		assert_int_equal(cvm_kms_roots_k256_secret(roots, &k256), CVM_OK);
		read_all(ep, CVM_KMS_FILE_ROOT_K256_KEY_SEALED, buf, sizeof(buf), &len);
		assert_null(memmem(buf, len, k256->p, 32));
	}
	/* without a TPM: refused, and the message says what to set */
	assert_int_equal(cvm_kms_roots_load(dir, 0, &again, err, sizeof(err)), CVM_E_POLICY);
	assert_null(again);
	assert_non_null(strstr(err, "root-ca.key.tpm is sealed to a TPM: set [kms] tpm_tcti"));
	/* a plain copy beside the sealed one: ambiguous */
	{
		char p[256];
		int fd;

		(void)snprintf(p, sizeof(p), "%s/%s", ep, CVM_KMS_FILE_ROOT_K256_KEY);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, buf, 32), 32);
		assert_int_equal(close(fd), 0);
		assert_int_equal(cvm_kms_roots_load_tpm(dir, 0, t, &again, err, sizeof(err)), CVM_E_POLICY);
		assert_non_null(strstr(err, "both exist"));
		assert_int_equal(unlink(p), 0);
	}
	/* another root's sealed file under the k256 root's name */
	{
		char a[256], b[256], c[256];

		(void)snprintf(a, sizeof(a), "%s/%s", ep, CVM_KMS_FILE_ROOT_K256_KEY_SEALED);
		(void)snprintf(b, sizeof(b), "%s/k256.saved", ep);
		(void)snprintf(c, sizeof(c), "%s/%s", ep, CVM_KMS_FILE_TMP_CA_KEY_SEALED);
		assert_int_equal(rename(a, b), 0);
		assert_int_equal(link(c, a), 0);
		assert_int_equal(cvm_kms_roots_load_tpm(dir, 0, t, &again, err, sizeof(err)), CVM_E_FORMAT);
		assert_non_null(strstr(err, "another root"));
		assert_int_equal(unlink(a), 0);
		assert_int_equal(rename(b, a), 0);
	}
	/* onboarding's import, sealed: the same keys in a new folder */
	{
		struct cvm_secret *ca_pem = NULL, *tmp_key = NULL;
		const struct cvm_secret *k256 = NULL;
		struct cvm_kms_root_files f;
		char dir2[64], *tmp_cert = NULL;

		assert_int_equal(cvm_kms_roots_ca_key_pem(roots, &ca_pem), CVM_OK);
		assert_int_equal(cvm_kms_roots_k256_secret(roots, &k256), CVM_OK);
		assert_int_equal(cvm_kms_roots_tmp_ca(roots, &tmp_cert, &tmp_key), CVM_OK);
		memset(&f, 0, sizeof(f));
		f.epoch = 0;
		f.ca_key_pem = ca_pem->p;
		f.ca_key_pem_len = ca_pem->len;
		f.ca_cert_pem = cvm_kms_roots_ca_cert(roots);
		f.k256 = k256->p;
		f.tmp_ca_key_pem = tmp_key->p;
		f.tmp_ca_key_pem_len = tmp_key->len;
		f.tmp_ca_cert_pem = tmp_cert;
		(void)snprintf(dir2, sizeof(dir2), "/tmp/cvm-test-kmsseal-XXXXXX");
		assert_non_null(mkdtemp(dir2));
		track_dir(dir2);
		assert_int_equal(cvm_kms_roots_import_tpm(dir2, &f, t, err, sizeof(err)), CVM_OK);
		(void)snprintf(ep, sizeof(ep), "%s/epoch-0", dir2);
		assert_false(file_exists(ep, CVM_KMS_FILE_ROOT_CA_KEY));
		assert_true(file_exists(ep, CVM_KMS_FILE_ROOT_CA_KEY_SEALED));
		assert_int_equal(cvm_kms_roots_load_tpm(dir2, 0, t, &again, err, sizeof(err)), CVM_OK);
		cvm_kms_app_keys_cleanup(&k2);
		assert_int_equal(cvm_kms_app_keys(again, app_id, NULL, 0, 0, &k2), CVM_OK);
		assert_memory_equal(k1.k256_key->p, k2.k256_key->p, 32);
		assert_memory_equal(k1.env_crypt_key->p, k2.env_crypt_key->p, 32);
		assert_memory_equal(k1.app_ca_public_key, k2.app_ca_public_key, sizeof(k1.app_ca_public_key));
		cvm_kms_roots_free(again);
		again = NULL;
		cvm_secret_free(ca_pem);
		cvm_secret_free(tmp_key);
		free(tmp_cert);
		rm_tree(dir2);
		untrack_dir(dir2);
	}
	/* a new TPM (its state gone): the roots do not load */
	cvm_tpm_close(t);
	swtpm_destroy(&s);
	swtpm_start(&s);
	t = open_tpm(&s);
	assert_int_equal(cvm_kms_roots_load_tpm(dir, 0, t, &again, err, sizeof(err)), CVM_E_TPM);
	assert_null(again);
	assert_non_null(strstr(err, "cannot unseal"));
	cvm_kms_app_keys_cleanup(&k1);
	cvm_kms_app_keys_cleanup(&k2);
	cvm_kms_roots_free(roots);
	cvm_tpm_close(t);
	swtpm_destroy(&s);
	rm_tree(dir);
	untrack_dir(dir);
}

static bool swtpm_found(void)
{
	const char *path = getenv("PATH");
	char buf[4096], *save = NULL, *dir;

	if (path == NULL || strlen(path) >= sizeof(buf))
		return false;
	memcpy(buf, path, strlen(path) + 1);
	for (dir = strtok_r(buf, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		char p[4200];

		(void)snprintf(p, sizeof(p), "%s/swtpm", dir);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

int main(void)
{
	const struct CMUnitTest parse_tests[] = {
	    cmocka_unit_test(blob_written_from_the_format_passes_the_check),
	    cmocka_unit_test(blob_rejects_every_truncation_and_a_trailing_byte),
	    cmocka_unit_test(blob_bit_flips_outside_the_opaque_parts_are_refused),
	    cmocka_unit_test(blob_of_another_version_or_shape_is_named),
	};
	const struct CMUnitTest tpm_tests[] = {
	    cmocka_unit_test_teardown(tpm_round_trip_returns_the_secret_and_blobs_differ, teardown),
	    cmocka_unit_test_teardown(tpm_another_tpm_cannot_unseal, teardown),
	    cmocka_unit_test_teardown(tpm_refuses_an_altered_private_or_public_part, teardown),
	    cmocka_unit_test_teardown(tpm_leaves_no_plaintext_in_process_memory, teardown),
	    cmocka_unit_test_teardown(kms_sealed_roots_load_only_through_the_tpm, teardown),
	};
	int r;

	/* tpm2-tss logs its own errors (the refused loads) to stderr: quiet them */
	(void)setenv("TSS2_LOG", "all+none", 0);
	r = cmocka_run_group_tests_name("seal blob", parse_tests, NULL, NULL);
	if (r != 0)
		return r;
	have_swtpm = swtpm_found();
	if (!have_swtpm) {
		(void)printf(
		    "SKIP: swtpm is not installed (Debian package swtpm, installed by scripts/setup.sh): "
		    "the TPM sealing tests did not run\n");
		return 77;
	}
	return cmocka_run_group_tests_name("seal on swtpm", tpm_tests, NULL, NULL);
}
