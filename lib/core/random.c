#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

#include <cvmkit/random.h>
#include <cvmkit/secret.h>

int cvm_random_bytes(void *p, size_t n)
{
	uint8_t *b = p;
	size_t got = 0;

	while (got < n) {
		ssize_t k = getrandom(b + got, n - got, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int saved = k < 0 ? errno : EIO;

			cvm_wipe(p, n);
			errno = saved;
			return CVM_E_SYSTEM;
		}
		got += (size_t)k;
	}
	return CVM_OK;
}
