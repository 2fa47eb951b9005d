/* SHA256() and SHA384() go through EVP_Q_digest in OpenSSL 3.0, which
 * fetches the algorithm from the provider on every call (a few microseconds
 * for a 1 KB message); the low-level contexts do not (see digest.c). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/err.h>
#include <openssl/sha.h>

#include "crypto_int.h"

void cvm_sha256(const void *p, size_t n, uint8_t out[32])
{
	SHA256_CTX c;

	(void)SHA256_Init(&c);
	(void)SHA256_Update(&c, p, n);
	(void)SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}

void cvm_sha256_two(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t out[32])
{
	SHA256_CTX c;

	(void)SHA256_Init(&c);
	(void)SHA256_Update(&c, a, a_len);
	(void)SHA256_Update(&c, b, b_len);
	(void)SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}

void cvm_sha384(const void *p, size_t n, uint8_t out[48])
{
	SHA512_CTX c;

	(void)SHA384_Init(&c);
	(void)SHA384_Update(&c, p, n);
	(void)SHA384_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}

bool cvm_asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	static ASN1_TIME *epoch;
	int days = 0, secs = 0;

	if (epoch == NULL) {
		ASN1_TIME *e = ASN1_TIME_set(NULL, 0);

		if (e == NULL)
			return false;
		/* First caller wins; a racing second one frees its copy. */
		if (!__atomic_compare_exchange_n(&epoch, &(ASN1_TIME *){NULL}, e, false, __ATOMIC_ACQ_REL,
		                                 __ATOMIC_ACQUIRE))
			ASN1_TIME_free(e);
	}
	if (t == NULL || ASN1_TIME_diff(&days, &secs, epoch, t) != 1)
		return false;
	*out = (int64_t)days * 86400 + secs;
	return true;
}
