/* Wiping, constant-time comparison, and secret memory laid out as
 * libsodium's sodium_malloc lays it out:
 *
 *   | guard page | data pages: ... canary | the len bytes | guard page |
 *
 * The mapping is the secret's alone (nothing else shares its pages), so
 * MADV_DONTDUMP and mlock apply to whole pages that hold nothing but the
 * secret, and munlock and munmap at free never touch another object's
 * pages. The data ends where the second guard page begins, so a read or
 * write past the end faults at once; the canary just before the data
 * catches a write below it when the secret is freed. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cvmkit/log.h>
#include <cvmkit/random.h>
#include <cvmkit/secret.h>

#define CANARY_LEN 16

static uint8_t canary[CANARY_LEN];
static size_t page_len;
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

void cvm_wipe(void *p, size_t n)
{
	if (p != NULL && n != 0)
		explicit_bzero(p, n);
}

void cvm_freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	cvm_wipe(p, n);
	free(p);
}

bool cvm_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= (uint8_t)(x[i] ^ y[i]);
	return acc == 0;
}

static void secret_init(void)
{
	long pg = sysconf(_SC_PAGESIZE);

	page_len = pg >= 4096 ? (size_t)pg : 4096;
	if (cvm_random_bytes(canary, sizeof(canary)) != CVM_OK) {
		/* A fixed canary still catches accidental writes below a
		 * secret; only a deliberate one could forge it. */
		memset(canary, 0xd0, sizeof(canary));
		cvm_debug("getrandom failed (errno %d): the secret canary is a fixed value", errno);
	}
}

/* lock_pages calls mlock or munlock through syscall(2): AddressSanitizer's
 * runtime replaces mlock() with a no-op that reports success, which would
 * make is_locked lie in the sanitizer builds. */
static bool lock_pages(void *p, size_t len, bool lock)
{
	return syscall(lock ? SYS_mlock : SYS_munlock, p, len) == 0;
}

struct cvm_secret *cvm_secret_new(size_t len)
{
	struct cvm_secret *s;
	uint8_t *map, *data;
	size_t data_len, map_len;
	int e;

	(void)pthread_once(&secret_once, secret_init);
	if (len > SIZE_MAX - CANARY_LEN - 4 * page_len) {
		errno = ENOMEM;
		return NULL;
	}
	data_len = (len + CANARY_LEN + page_len - 1) / page_len * page_len;
	map_len = data_len + 2 * page_len;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	/* All of it inaccessible, then the data pages opened: the guard pages
	 * are never readable, not even for a moment. */
	map = mmap(NULL, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		e = errno;
		free(s);
		errno = e;
		return NULL;
	}
	data = map + page_len;
	/* MADV_DONTDUMP cannot fail on whole pages of a private anonymous
	 * mapping (Linux 3.4 and later); if it does, the promise that the
	 * secret stays out of core dumps cannot be kept, so fail. */
	if (mprotect(data, data_len, PROT_READ | PROT_WRITE) != 0 ||
	    madvise(data, data_len, MADV_DONTDUMP) != 0) {
		e = errno;
		(void)munmap(map, map_len);
		free(s);
		errno = e;
		return NULL;
	}
	/* Locking is best effort, as in libsodium: RLIMIT_MEMLOCK (64 KiB to
	 * 8 MiB by default for a process without CAP_IPC_LOCK) may forbid it.
	 * The secret is then still wiped, guarded and left out of core dumps,
	 * but the kernel may write it to swap. */
	s->is_locked = lock_pages(data, data_len, true);
	if (!s->is_locked)
		cvm_debug(
		    "mlock of %zu bytes failed (errno %d; RLIMIT_MEMLOCK?): this secret may be swapped out",
		    data_len, errno);
	s->map = map;
	s->map_len = map_len;
	s->len = len;
	s->p = data + data_len - len;
	memcpy(s->p - CANARY_LEN, canary, CANARY_LEN);
	return s;
}

void cvm_secret_free(struct cvm_secret *s)
{
	uint8_t *data;
	size_t data_len;

	if (s == NULL)
		return;
	data = s->map + page_len;
	data_len = s->map_len - 2 * page_len;
	/* The canary is where cvm_secret_new put it, right before p. A broken
	 * canary, or a struct whose fields no longer describe a mapping, is
	 * memory corruption: no caller can handle that, and going on (wiping,
	 * unmapping, returning) would act on corrupt state. This is the
	 * library's one deliberate abort besides broken invariants. */
	if (s->p < data + CANARY_LEN || s->p > data + data_len ||
	    !cvm_ct_equal(s->p - CANARY_LEN, canary, CANARY_LEN))
		abort();
	cvm_wipe(data, data_len);
	if (s->is_locked)
		(void)lock_pages(data, data_len, false);
	(void)munmap(s->map, s->map_len);
	cvm_wipe(s, sizeof(*s));
	free(s);
}
