/* libFuzzer harness for the certificate and CRL readers: a PEM chain
 * (cvm_certs_parse_pem: lib/crypto's own PEM framing), a DER or PEM
 * certificate and a CRL. Whatever the input, each returns cleanly and frees
 * cleanly; a chain that parses has 1..CVM_CHAIN_CERTS_MAX certificates, and
 * its signatures (the P-256 fast path included) are checked without harm. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_cert **certs = NULL, *c = NULL;
	struct cvm_crl *crl = NULL;
	size_t n = 0, verified = 0;

	if (cvm_certs_parse_pem(data, size, &certs, &n) == CVM_OK) {
		if (certs == NULL || n == 0 || n > CVM_CHAIN_CERTS_MAX)
			__builtin_trap();
		for (size_t i = 0; i < n; i++)
			verified += cvm_cert_check_issued(certs[i], certs[i + 1 < n ? i + 1 : i]) == CVM_OK;
		cvm_certs_free(certs, n);
	} else if (certs != NULL || n != 0) {
		__builtin_trap();
	}
	if (cvm_cert_parse(data, size, &c) == CVM_OK) {
		if (c == NULL)
			__builtin_trap();
		verified += cvm_cert_check_issued(c, c) == CVM_OK;
		cvm_cert_free(c);
	}
	if (cvm_crl_parse(data, size, &crl) == CVM_OK) {
		if (crl == NULL)
			__builtin_trap();
		cvm_crl_free(crl);
	}
	if (verified > CVM_CHAIN_CERTS_MAX + 1)
		__builtin_trap();
	return 0;
}
