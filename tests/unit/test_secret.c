/* lib/core/secret.c: secret memory as libsodium's sodium_malloc lays it out.
 * Everything is checked from outside, as the kernel sees it: the mappings
 * and their flags in /proc/self/maps and /proc/self/smaps, faults in forked
 * children, and the bytes a secret's pages hold when they are unmapped. */
#include <errno.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <cvmkit/secret.h>

/* ---- what the kernel says about an address ------------------------------- */

struct vma {
	uintptr_t lo, hi;
	char perms[5];
	char flags[256]; /* VmFlags from smaps, " rd wr ... " with spaces around */
};

/* vma_at finds the mapping that holds `addr` in /proc/self/smaps; false when
 * none does. */
static bool vma_at(const void *addr, struct vma *out)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, found = false;
	uintptr_t a = (uintptr_t)addr;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			if (found)
				break; /* the next mapping: ours is complete */
			in = a >= lo && a < hi;
			if (in) {
				found = true;
				out->lo = lo;
				out->hi = hi;
				memcpy(out->perms, perms, sizeof(out->perms));
				out->flags[0] = '\0';
			}
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			size_t n = strcspn(line + 8, "\n");

			if (n > sizeof(out->flags) - 2)
				n = sizeof(out->flags) - 2;
			memcpy(out->flags, line + 8, n);
			out->flags[n] = ' ';
			out->flags[n + 1] = '\0';
		}
	}
	fclose(f);
	return found;
}

static bool has_flag(const struct vma *v, const char *flag)
{
	char want[8];

	(void)snprintf(want, sizeof(want), " %s ", flag);
	return strstr(v->flags, want) != NULL;
}

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* The data pages of a secret: from the page of its canary (16 bytes before
 * p) to the end of its last byte (a page boundary). */
static uintptr_t data_lo(const struct cvm_secret *s)
{
	return ((uintptr_t)s->p - 16) / page() * page();
}

static uintptr_t data_hi(const struct cvm_secret *s)
{
	return ((uintptr_t)s->p + s->len + page() - 1) / page() * page();
}

static bool cap_ipc_lock(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return false;
	return (d[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32))) != 0;
}

/* locked_kib is VmLck from /proc/self/status. */
static unsigned long locked_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long kib = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmLck: %lu kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* mlock_permitted: would mlock of `len` more bytes succeed in this process
 * (CAP_IPC_LOCK, or room left under RLIMIT_MEMLOCK)? */
static bool mlock_permitted(size_t len)
{
	struct rlimit rl;

	if (cap_ipc_lock())
		return true;
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	return rl.rlim_cur == RLIM_INFINITY || locked_kib() * 1024 + len <= rl.rlim_cur;
}

static const size_t sizes[] = {0, 1, 15, 16, 17, 31, 32, 4079, 4080, 4081, 4096, 4097, 10000, 65536};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* ---- the layout --------------------------------------------------------- */

static void secret_is_zero_and_ends_where_a_guard_page_begins(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSIZES; i++) {
		struct cvm_secret *s = cvm_secret_new(sizes[i]);
		struct vma data, before, after;

		assert_non_null(s);
		assert_int_equal(s->len, sizes[i]);
		for (size_t k = 0; k < s->len; k++)
			assert_int_equal(s->p[k], 0);
		/* the last byte is the last byte of a page */
		assert_int_equal(((uintptr_t)s->p + s->len) % page(), 0);
		assert_true(vma_at((const void *)data_lo(s), &data));
		assert_string_equal(data.perms, "rw-p");
		assert_true(data.lo == data_lo(s) && data.hi == data_hi(s));
		/* the pages right before and right after: inaccessible */
		assert_true(vma_at((const void *)(data_lo(s) - 1), &before));
		assert_string_equal(before.perms, "---p");
		assert_true(vma_at((const void *)data_hi(s), &after));
		assert_string_equal(after.perms, "---p");
		memset(s->p, 0xa5, s->len);
		cvm_secret_free(s);
	}
	cvm_secret_free(NULL);
}

/* The bug this replaces: madvise(MADV_DONTDUMP) on a malloc'd pointer (not
 * page-aligned) failed with EINVAL, unnoticed, and the secret went into core
 * dumps. */
static void secret_pages_are_left_out_of_core_dumps_and_locked(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSIZES; i++) {
		struct cvm_secret *s;
		struct vma v;
		bool may_lock = mlock_permitted((sizes[i] + 16 + page() - 1) / page() * page());

		s = cvm_secret_new(sizes[i]);
		assert_non_null(s);
		assert_true(vma_at((const void *)data_lo(s), &v));
		if (!has_flag(&v, "dd"))
			fail_msg("secret of %zu bytes: no dd in VmFlags:%s", sizes[i], v.flags);
		assert_int_equal(has_flag(&v, "lo"), s->is_locked);
		if (may_lock)
			assert_true(s->is_locked);
		cvm_secret_free(s);
	}
	print_message("mlock is %s in this process\n",
	              cap_ipc_lock() ? "allowed (CAP_IPC_LOCK)" : "limited by RLIMIT_MEMLOCK");
}

/* A process that may lock nothing (no CAP_IPC_LOCK, RLIMIT_MEMLOCK 0) still
 * gets its secret: unlocked, but guarded and left out of core dumps. */
static void secret_is_still_made_when_mlock_is_forbidden(void **state)
{
	int status = 0;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];
		struct rlimit zero = {0, 0};
		struct cvm_secret *s;
		struct vma v;

		memset(d, 0, sizeof(d));
		if (syscall(SYS_capget, &h, d) != 0)
			_exit(10);
		d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
		if (syscall(SYS_capset, &h, d) != 0 || cap_ipc_lock())
			_exit(11);
		if (setrlimit(RLIMIT_MEMLOCK, &zero) != 0)
			_exit(12);
		s = cvm_secret_new(100);
		if (s == NULL)
			_exit(13);
		if (s->is_locked)
			_exit(14);
		if (!vma_at(s->p, &v) || !has_flag(&v, "dd") || has_flag(&v, "lo"))
			_exit(15);
		memset(s->p, 7, s->len);
		cvm_secret_free(s);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- faults and the canary ---------------------------------------------- */

enum poke { WRITE_AFTER, READ_AFTER, WRITE_BEFORE_DATA, SMASH_CANARY };

/* in_child allocates a secret of `len` bytes in a child, does `what` and
 * frees it; returns the child's wait status. */
static int in_child(size_t len, enum poke what)
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction dfl;
		struct cvm_secret *s = cvm_secret_new(len);
		volatile uint8_t *p;

		/* The default action, whatever a sanitizer installed. */
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		(void)sigaction(SIGSEGV, &dfl, NULL);
		(void)sigaction(SIGABRT, &dfl, NULL);
		if (s == NULL)
			_exit(20);
		p = s->p;
		switch (what) {
		case WRITE_AFTER:
			p[len] = 1;
			break;
		case READ_AFTER:
			if (p[len] == 0x42)
				_exit(21);
			break;
		case WRITE_BEFORE_DATA:
			*(volatile uint8_t *)data_lo(s) = 1; /* the data pages begin here: fine */
			*((volatile uint8_t *)data_lo(s) - 1) = 1;
			break;
		case SMASH_CANARY:
			p[-1] ^= 1;
			break;
		}
		cvm_secret_free(s);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void reading_or_writing_past_a_secret_faults(void **state)
{
	static const size_t lens[] = {0, 1, 17, 4080, 4096, 5000};

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		int st = in_child(lens[i], WRITE_AFTER);

		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGSEGV);
		st = in_child(lens[i], READ_AFTER);
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGSEGV);
		st = in_child(lens[i], WRITE_BEFORE_DATA);
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGSEGV);
	}
}

static void writing_below_a_secret_aborts_when_it_is_freed(void **state)
{
	static const size_t lens[] = {0, 1, 32, 4080, 5000};

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		int st = in_child(lens[i], SMASH_CANARY);

		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGABRT);
	}
}

/* ---- free ------------------------------------------------------------------ */

/* munmap is interposed here (the test binary's definition comes before
 * libc's for every caller outside libc, cvmkit included): when the watched
 * pages are unmapped, it records whether they held only zeros. */
static uintptr_t watch_lo, watch_hi;
static int watch_unmapped, watch_all_zero;

int munmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;

	if (watch_lo != 0 && a <= watch_lo && watch_hi <= a + len) {
		const volatile uint8_t *p = (const volatile uint8_t *)watch_lo;
		uint8_t acc = 0;

		for (size_t i = 0; i < watch_hi - watch_lo; i++)
			acc |= p[i];
		watch_unmapped++;
		watch_all_zero = acc == 0;
	}
	return (int)syscall(SYS_munmap, addr, len);
}

static void free_wipes_every_data_page_then_unmaps_them(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSIZES; i++) {
		struct cvm_secret *s = cvm_secret_new(sizes[i]);
		unsigned char vec[1];
		uintptr_t lo;
		struct vma v;

		assert_non_null(s);
		lo = data_lo(s);
		memset(s->p, 0x5a, s->len);
		/* the bytes before the canary too: free wipes whole pages */
		memset((void *)lo, 0x3c, (size_t)((uintptr_t)s->p - 16 - lo));
		if (s->len > 1)
			s->len /= 2; /* a caller that used fewer bytes */
		watch_lo = lo;
		watch_hi = data_hi(&(struct cvm_secret){.p = s->p, .len = sizes[i]});
		watch_unmapped = 0;
		cvm_secret_free(s);
		watch_lo = watch_hi = 0;
		assert_int_equal(watch_unmapped, 1);
		assert_true(watch_all_zero);
		/* gone: the page is no longer mapped at all */
		assert_int_equal(mincore((void *)lo, page(), vec), -1);
		assert_int_equal(errno, ENOMEM);
		assert_false(vma_at((const void *)lo, &v));
	}
}

/* Many secrets side by side: none shares a page with another, so that
 * unlocking or unmapping one leaves the others locked and intact. */
static void secrets_never_share_a_page(void **state)
{
	enum { N = 48 };
	struct cvm_secret *s[N];
	struct vma v;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		s[i] = cvm_secret_new(sizes[i % NSIZES] + i);
		assert_non_null(s[i]);
		memset(s[i]->p, (int)(i + 1), s[i]->len);
	}
	for (size_t i = 0; i < N; i++)
		for (size_t j = i + 1; j < N; j++)
			assert_true(data_hi(s[i]) <= data_lo(s[j]) - page() ||
			            data_hi(s[j]) <= data_lo(s[i]) - page());
	for (size_t i = 0; i < N; i += 2) {
		cvm_secret_free(s[i]);
		s[i] = NULL;
	}
	for (size_t i = 1; i < N; i += 2) {
		for (size_t k = 0; k < s[i]->len; k++)
			assert_int_equal(s[i]->p[k], (uint8_t)(i + 1));
		assert_true(vma_at(s[i]->p - (s[i]->len == 0), &v));
		assert_true(has_flag(&v, "dd"));
		assert_int_equal(has_flag(&v, "lo"), s[i]->is_locked);
		cvm_secret_free(s[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(secret_is_zero_and_ends_where_a_guard_page_begins),
	    cmocka_unit_test(secret_pages_are_left_out_of_core_dumps_and_locked),
	    cmocka_unit_test(secret_is_still_made_when_mlock_is_forbidden),
	    cmocka_unit_test(reading_or_writing_past_a_secret_faults),
	    cmocka_unit_test(writing_below_a_secret_aborts_when_it_is_freed),
	    cmocka_unit_test(free_wipes_every_data_page_then_unmaps_them),
	    cmocka_unit_test(secrets_never_share_a_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
