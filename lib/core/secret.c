#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cvmkit/secret.h>

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

struct cvm_secret *cvm_secret_new(size_t len)
{
	struct cvm_secret *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->p = calloc(1, len ? len : 1);
	if (s->p == NULL) {
		free(s);
		return NULL;
	}
	s->len = len;
	/* Best effort, as libsodium's sodium_mlock: failure is not fatal. */
	(void)mlock(s->p, s->len);
	(void)madvise(s->p, s->len, MADV_DONTDUMP);
	return s;
}

void cvm_secret_free(struct cvm_secret *s)
{
	if (s == NULL)
		return;
	cvm_wipe(s->p, s->len);
	(void)munlock(s->p, s->len);
	free(s->p);
	free(s);
}
