/* Attested TLS over OpenSSL (include/cvmkit/tls.h): TLS 1.3-only contexts
 * whose peer check is an RA-TLS verifier, not the web PKI, and the TLS
 * exporter value that binds the fresh attestation to one connection.
 *
 * The peer check is OpenSSL's certificate-verification callback
 * (SSL_CTX_set_cert_verify_callback), which replaces X509_verify_cert for
 * the peer's chain: it runs exactly once per handshake, on the whole chain
 * the peer sent, and its answer is the only one. The per-depth verify
 * callback of SSL_CTX_set_verify would run inside X509_verify_cert, after
 * OpenSSL built a chain to a trust store we do not have (dstack's legacy
 * CAs lack keyCertSign, Cosmian's certificates are self-signed); making it
 * override every depth's error and act at depth 0 relies on OpenSSL calling
 * it at depth 0 on every path, which a replacement of the whole check does
 * not. SSL_CTX_set_verify still sets the mode: without SSL_VERIFY_PEER a
 * failed check would not abort the handshake. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cvmkit/err.h>
#include <cvmkit/log.h>
#include <cvmkit/report.h>
#include <cvmkit/tls.h>

#include "crypto/crypto_lib.h"

/* The most certificates we take from a peer, and from a chain_pem. RA-TLS
 * chains are a leaf and at most a few CAs. */
#define TLS_CHAIN_MAX 8u
/* The longest chain_pem we read: a leaf whose extensions carry a
 * VersionedAttestation (at most CVM_VA_MAX) and the legacy quote and event
 * log beside it, in base64, and a few CAs. */
#define TLS_CHAIN_PEM_MAX ((size_t)32 * 1024 * 1024)
#define TLS_ERR_MAX 400u

/* struct peer_state is what the check found for one SSL's peer, kept in
 * the SSL's ex_data (freed with the SSL). */
struct peer_state {
	bool ok;
	struct cvm_ratls_verdict verdict;
	char err[TLS_ERR_MAX];
};

static pthread_once_t index_once = PTHREAD_ONCE_INIT;
static int peer_index = -1;

static void peer_state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void index_init(void)
{
	peer_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, peer_state_free);
}

static int state_index(void)
{
	(void)pthread_once(&index_once, index_init);
	return peer_index;
}

/* clear_verdict_spans clears the spans of the verdict that borrow from the
 * bytes the verifier parsed, which are gone once the check returns: the
 * copied fields (measurements, TCB, flags) stay. */
static void clear_verdict_spans(struct cvm_ratls_verdict *v)
{
	memset(&v->dcap.quote.signed_data, 0, sizeof(v->dcap.quote.signed_data));
	memset(&v->dcap.quote.qe_report_raw, 0, sizeof(v->dcap.quote.qe_report_raw));
	memset(&v->dcap.quote.qe_auth_data, 0, sizeof(v->dcap.quote.qe_auth_data));
	memset(&v->dcap.quote.pck_chain_pem, 0, sizeof(v->dcap.quote.pck_chain_pem));
	memset(&v->amd.report.signed_data, 0, sizeof(v->amd.report.signed_data));
}

/* check_chain runs the verifier over the chain the peer sent (leaf first)
 * and fills `st`. Returns 0 only when the verifier accepted it. */
static int check_chain(struct cvm_ratls_verifier *v, X509_STORE_CTX *xs, struct peer_state *st)
{
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs);
	unsigned char *der[TLS_CHAIN_MAX] = {NULL};
	size_t der_len[TLS_CHAIN_MAX] = {0};
	const uint8_t *cder[TLS_CHAIN_MAX] = {NULL};
	struct cvm_report *rep = NULL;
	size_t count = 0;
	int n, first = 0, r;

	if (leaf == NULL) {
		(void)snprintf(st->err, sizeof(st->err), "the peer sent no certificate");
		r = CVM_E_FORMAT;
		goto out;
	}
	n = sent == NULL ? 0 : sk_X509_num(sent);
	/* OpenSSL passes the whole chain the peer sent, the leaf first, as the
	 * untrusted certificates: skip that copy of the leaf. */
	if (n > 0 && X509_cmp(sk_X509_value(sent, 0), leaf) == 0)
		first = 1;
	if (n - first + 1 > (int)TLS_CHAIN_MAX) {
		(void)snprintf(st->err, sizeof(st->err),
		               "the peer sent %d certificates, more than the %u allowed", n - first + 1,
		               TLS_CHAIN_MAX);
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	for (int i = -1; i < n; i++) {
		X509 *c = i < 0 ? leaf : sk_X509_value(sent, i);
		int len;

		if (i >= 0 && i < first)
			continue;
		len = i2d_X509(c, &der[count]);
		if (len <= 0) {
			(void)snprintf(st->err, sizeof(st->err), "cannot encode the peer's certificate %zu",
			               count);
			r = CVM_E_CRYPTO;
			goto out;
		}
		der_len[count] = (size_t)len;
		cder[count] = der[count];
		count++;
	}
	rep = malloc(sizeof(*rep));
	if (rep == NULL) {
		(void)snprintf(st->err, sizeof(st->err), "out of memory checking the peer's certificate");
		r = CVM_E_NOMEM;
		goto out;
	}
	cvm_report_init(rep);
	r = cvm_ratls_verifier_check(v, cder, der_len, count, (int64_t)time(NULL), &st->verdict, rep);
	clear_verdict_spans(&st->verdict);
	if (r != CVM_OK) {
		const char *why = cvm_report_reason(rep);

		(void)snprintf(st->err, sizeof(st->err), "the peer's RA-TLS certificate was rejected: %s",
		               why != NULL ? why : cvm_strerror(r));
		goto out;
	}
	st->ok = true;
out:
	for (size_t i = 0; i < count; i++)
		OPENSSL_free(der[i]);
	free(rep);
	return r;
}

/* verify_peer is the certificate-verification callback: 1 accepts the
 * peer, 0 aborts the handshake. */
static int verify_peer(X509_STORE_CTX *xs, void *arg)
{
	struct cvm_ratls_verifier *v = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	int idx = state_index();
	struct peer_state *st;
	int r;

	if (ssl == NULL || idx < 0 || v == NULL) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	st = SSL_get_ex_data(ssl, idx);
	if (st == NULL) {
		st = malloc(sizeof(*st));
		if (st == NULL || SSL_set_ex_data(ssl, idx, st) != 1) {
			free(st);
			X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
			return 0;
		}
	}
	/* A fresh state for every check: nothing of an earlier one survives. */
	memset(st, 0, sizeof(*st));
	r = check_chain(v, xs, st);
	if (r != CVM_OK) {
		cvm_debug("%s", st->err);
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	/* Accepted: libcurl (and others) read SSL_get_verify_result after the
	 * handshake, which is this context's error. */
	X509_STORE_CTX_set_error(xs, X509_V_OK);
	return 1;
}

/* tls13_only makes `ctx` speak TLS 1.3 only (the exporter the fresh
 * attestation uses is bound to the whole handshake only there) and keeps
 * no session to resume: a resumed session presents no certificate, so the
 * peer would go unchecked. */
static int tls13_only(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
		return CVM_E_CRYPTO;
	(void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return CVM_OK;
}

static int attach(SSL_CTX *ctx, struct cvm_ratls_verifier *v)
{
	if (state_index() < 0)
		return CVM_E_CRYPTO;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_peer, v);
	return CVM_OK;
}

/* use_chain loads the PEM chain (leaf first) and its key into `ctx`. */
static int use_chain(SSL_CTX *ctx, const char *chain_pem, const struct cvm_p256_keypair *key)
{
	size_t len = strnlen(chain_pem, TLS_CHAIN_PEM_MAX + 1);
	BIO *bio = NULL;
	X509 *c = NULL;
	unsigned count = 0;
	int r;

	if (len > TLS_CHAIN_PEM_MAX) {
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	bio = BIO_new_mem_buf(chain_pem, (int)len);
	if (bio == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (;;) {
		c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (c == NULL) {
			unsigned long e = ERR_peek_last_error();

			/* The end of the text, after at least the leaf. */
			if (count > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				break;
			r = CVM_E_FORMAT;
			goto out;
		}
		if (++count > TLS_CHAIN_MAX) {
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		if (count == 1) {
			if (SSL_CTX_use_certificate(ctx, c) != 1) {
				r = CVM_E_CRYPTO;
				goto out;
			}
			X509_free(c);
		} else if (SSL_CTX_add0_chain_cert(ctx, c) != 1) {
			r = CVM_E_CRYPTO;
			goto out;
		}
		c = NULL; /* transferred (or freed) */
	}
	if (SSL_CTX_use_PrivateKey(ctx, cvm_p256_keypair_evp_pkey(key)) != 1) {
		r = CVM_E_INVAL; /* not a key for this certificate */
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		r = CVM_E_INVAL;
		goto out;
	}
	r = CVM_OK;
out:
	X509_free(c);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

int cvm_tls_fresh_nonce(SSL *ssl, const uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN],
                        uint8_t out[CVM_TLS_FRESH_BOUND_LEN])
{
	static const char label[] = CVM_TLS_FRESH_LABEL;

	if (ssl == NULL || nonce == NULL || out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, CVM_TLS_FRESH_BOUND_LEN);
	if (!SSL_is_init_finished(ssl))
		return CVM_E_INVAL;
	/* TLS 1.2's exporter is not bound to the whole handshake without the
	 * extended master secret: only 1.3's. */
	if (SSL_version(ssl) != TLS1_3_VERSION)
		return CVM_E_UNSUPPORTED;
	if (SSL_export_keying_material(ssl, out, CVM_TLS_FRESH_BOUND_LEN, label, sizeof(label) - 1, nonce,
	                               CVM_TLS_FRESH_NONCE_LEN, 1) != 1) {
		ERR_clear_error();
		return CVM_E_CRYPTO;
	}
	return CVM_OK;
}

int cvm_tls_server_ctx_new(const char *chain_pem, const struct cvm_p256_keypair *key,
                           struct cvm_ratls_verifier *client_verifier, SSL_CTX **out)
{
	SSL_CTX *ctx = NULL;
	int r;

	if (out == NULL)
		return CVM_E_INVAL;
	*out = NULL;
	if (chain_pem == NULL || key == NULL)
		return CVM_E_INVAL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = tls13_only(ctx);
	if (r != CVM_OK)
		goto out;
	/* TLS 1.3 tickets would let a client resume without a certificate. */
	if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
		r = CVM_E_CRYPTO;
		goto out;
	}
	r = use_chain(ctx, chain_pem, key);
	if (r != CVM_OK)
		goto out;
	if (client_verifier != NULL) {
		r = attach(ctx, client_verifier);
		if (r != CVM_OK)
			goto out;
	}
	*out = ctx;
	ctx = NULL; /* transferred */
out:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

int cvm_tls_client_ctx_new(struct cvm_ratls_verifier *v, const char *chain_pem,
                           const struct cvm_p256_keypair *key, SSL_CTX **out)
{
	SSL_CTX *ctx = NULL;
	int r;

	if (out == NULL)
		return CVM_E_INVAL;
	*out = NULL;
	if (v == NULL || (chain_pem == NULL) != (key == NULL))
		return CVM_E_INVAL;
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = tls13_only(ctx);
	if (r != CVM_OK)
		goto out;
	if (chain_pem != NULL) {
		r = use_chain(ctx, chain_pem, key);
		if (r != CVM_OK)
			goto out;
	}
	r = attach(ctx, v);
	if (r != CVM_OK)
		goto out;
	*out = ctx;
	ctx = NULL; /* transferred */
out:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

int cvm_tls_ctx_attach_verifier(SSL_CTX *ctx, struct cvm_ratls_verifier *v)
{
	int r;

	if (ctx == NULL || v == NULL)
		return CVM_E_INVAL;
	r = tls13_only(ctx);
	if (r == CVM_OK)
		r = attach(ctx, v);
	ERR_clear_error();
	return r;
}

int cvm_tls_ctx_client_cert_optional(SSL_CTX *ctx)
{
	if (ctx == NULL || (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) == 0)
		return CVM_E_INVAL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return CVM_OK;
}

static const struct peer_state *state_of(const SSL *ssl)
{
	int idx = state_index();

	if (ssl == NULL || idx < 0)
		return NULL;
	return SSL_get_ex_data(ssl, idx);
}

const struct cvm_ratls_verdict *cvm_tls_peer_verdict(const SSL *ssl)
{
	const struct peer_state *st = state_of(ssl);

	/* Only a completed handshake whose check passed has a verdict: a
	 * failed handshake, or one still running, has none. */
	if (st == NULL || !st->ok || !SSL_is_init_finished(ssl))
		return NULL;
	return &st->verdict;
}

const char *cvm_tls_peer_error(const SSL *ssl)
{
	const struct peer_state *st = state_of(ssl);

	if (st == NULL || st->ok)
		return NULL;
	return st->err;
}
