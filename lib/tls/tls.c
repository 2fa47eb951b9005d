/* Placeholder bodies of the attested-TLS API (issue 10): replaced by the
 * real implementation in this module. */
#include <cvmkit/err.h>
#include <cvmkit/tls.h>

int cvm_tls_fresh_nonce(SSL *ssl, const uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN],
                        uint8_t out[CVM_TLS_FRESH_BOUND_LEN])
{
	(void)ssl;
	(void)nonce;
	(void)out;
	return CVM_E_UNSUPPORTED;
}

int cvm_tls_server_ctx_new(const char *chain_pem, const struct cvm_p256_keypair *key,
                           struct cvm_ratls_verifier *client_verifier, SSL_CTX **out)
{
	(void)chain_pem;
	(void)key;
	(void)client_verifier;
	(void)out;
	return CVM_E_UNSUPPORTED;
}

int cvm_tls_client_ctx_new(struct cvm_ratls_verifier *v, const char *chain_pem,
                           const struct cvm_p256_keypair *key, SSL_CTX **out)
{
	(void)v;
	(void)chain_pem;
	(void)key;
	(void)out;
	return CVM_E_UNSUPPORTED;
}

int cvm_tls_ctx_attach_verifier(SSL_CTX *ctx, struct cvm_ratls_verifier *v)
{
	(void)ctx;
	(void)v;
	return CVM_E_UNSUPPORTED;
}

const struct cvm_ratls_verdict *cvm_tls_peer_verdict(const SSL *ssl)
{
	(void)ssl;
	return NULL;
}

const char *cvm_tls_peer_error(const SSL *ssl)
{
	(void)ssl;
	return NULL;
}
