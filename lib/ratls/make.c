/* Making RA-TLS certificates (in progress). */
#include <cvmkit/err.h>
#include <cvmkit/ratls.h>

int cvm_ratls_make(const struct cvm_ratls_make_opts *o, const struct cvm_p256_keypair *key,
                   const struct cvm_ratls_evidence *ev, const struct cvm_p256_keypair *issuer_key,
                   const struct cvm_cert *issuer, char **out_pem, size_t *out_len)
{
	(void)o;
	(void)key;
	(void)ev;
	(void)issuer_key;
	(void)issuer;
	(void)out_pem;
	(void)out_len;
	return CVM_E_UNSUPPORTED;
}
