/* Verifying RA-TLS certificates (in progress). */
#include <cvmkit/err.h>
#include <cvmkit/ratls.h>

int cvm_ratls_verifier_new(const struct cvm_ratls_verifier_opts *o, int64_t at,
                           struct cvm_ratls_verifier **out)
{
	(void)o;
	(void)at;
	(void)out;
	return CVM_E_UNSUPPORTED;
}

void cvm_ratls_verifier_free(struct cvm_ratls_verifier *v)
{
	(void)v;
}

int cvm_ratls_verifier_check(struct cvm_ratls_verifier *v, const uint8_t *const *der, const size_t *der_len,
                             size_t count, int64_t at, struct cvm_ratls_verdict *out, struct cvm_report *rep)
{
	(void)v;
	(void)der;
	(void)der_len;
	(void)count;
	(void)at;
	(void)out;
	(void)rep;
	return CVM_E_UNSUPPORTED;
}

int cvm_ratls_fresh_report_data(const uint8_t bound[64], uint8_t out[64])
{
	(void)bound;
	(void)out;
	return CVM_E_UNSUPPORTED;
}

int cvm_ratls_check_fresh(struct cvm_ratls_verifier *v, const uint8_t *leaf_der, size_t leaf_len,
                          const uint8_t *va, size_t va_len, const uint8_t bound[64], int64_t at,
                          struct cvm_ratls_verdict *out, struct cvm_report *rep)
{
	(void)v;
	(void)leaf_der;
	(void)leaf_len;
	(void)va;
	(void)va_len;
	(void)bound;
	(void)at;
	(void)out;
	(void)rep;
	return CVM_E_UNSUPPORTED;
}
