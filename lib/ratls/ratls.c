/* Placeholder bodies of the RA-TLS API (issue 10): replaced by the real
 * implementation in this module. */
#include <cvmkit/err.h>
#include <cvmkit/ratls.h>

const char *cvm_ratls_profile_name(enum cvm_ratls_profile p)
{
	(void)p;
	return "none";
}

const char *cvm_ratls_tee_name(enum cvm_ratls_tee t)
{
	(void)t;
	return "none";
}

int cvm_va_decode(const uint8_t *buf, size_t len, struct cvm_va **out, char *err, size_t err_len)
{
	(void)buf;
	(void)len;
	(void)out;
	(void)err;
	(void)err_len;
	return CVM_E_UNSUPPORTED;
}

void cvm_va_free(struct cvm_va *va)
{
	(void)va;
}

int cvm_va_encode(const struct cvm_va *va, unsigned version, uint8_t **out, size_t *out_len)
{
	(void)va;
	(void)version;
	(void)out;
	(void)out_len;
	return CVM_E_UNSUPPORTED;
}

int cvm_ratls_parse(const uint8_t *der, size_t len, struct cvm_ratls_info **out, char *err, size_t err_len)
{
	(void)der;
	(void)len;
	(void)out;
	(void)err;
	(void)err_len;
	return CVM_E_UNSUPPORTED;
}

void cvm_ratls_info_free(struct cvm_ratls_info *info)
{
	(void)info;
}

int cvm_ratls_report_data(enum cvm_ratls_profile profile, const struct cvm_p256_keypair *key,
                          const uint8_t extra[32], uint8_t out[64])
{
	(void)profile;
	(void)key;
	(void)extra;
	(void)out;
	return CVM_E_UNSUPPORTED;
}

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
