/* The gateway's TLS server contexts: the wildcard certificate of the base
 * domains, one context whose ALPN picks HTTP/1.1 (the relay to the app is
 * plaintext HTTP/1.x) and one that accepts only h2 (names ending in 'g').
 * A reload (SIGHUP, a renewed certificate) builds new contexts and swaps
 * them in; connections that started keep theirs (an SSL holds a reference
 * on its context), so a reload drops nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cvmkit/err.h>

#include "gw.h"

struct gw_tls {
	pthread_rwlock_t lock;
	SSL_CTX *h1, *h2;
};

/* find_proto looks for the protocol `want` (length-prefixed) in the
 * client's ALPN list and points *out into that list. */
static bool find_proto(const unsigned char *in, unsigned in_len, const unsigned char *want,
                       const unsigned char **out, unsigned char *out_len)
{
	unsigned i = 0;

	while (i < in_len) {
		unsigned n = in[i];

		if (n == 0 || n > in_len - i - 1)
			return false; /* OpenSSL checked the list; be safe anyway */
		if (n == want[0] && memcmp(in + i + 1, want + 1, n) == 0) {
			*out = in + i + 1;
			*out_len = (unsigned char)n;
			return true;
		}
		i += n + 1;
	}
	return false;
}

/* alpn_h1 picks http/1.1 when the client offers it; a client that offers
 * only h2 gets no ALPN answer (and speaks HTTP/1.1 or gives up): the app
 * behind a plain name speaks HTTP/1.1. */
static int alpn_h1(SSL *ssl, const unsigned char **out, unsigned char *out_len, const unsigned char *in,
                   unsigned in_len, void *arg)
{
	(void)ssl;
	(void)arg;
	return find_proto(in, in_len, (const unsigned char *)"\x08http/1.1", out, out_len)
	           ? SSL_TLSEXT_ERR_OK
	           : SSL_TLSEXT_ERR_NOACK;
}

/* alpn_h2 accepts only h2: a client that does not offer it is refused with
 * the no_application_protocol alert (RFC 7301) rather than relayed to an
 * app that expects HTTP/2's preface. */
static int alpn_h2(SSL *ssl, const unsigned char **out, unsigned char *out_len, const unsigned char *in,
                   unsigned in_len, void *arg)
{
	(void)ssl;
	(void)arg;
	return find_proto(in, in_len, (const unsigned char *)"\x02h2", out, out_len)
	           ? SSL_TLSEXT_ERR_OK
	           : SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void ssl_err(char *err, size_t err_len, const char *what, const char *path)
{
	char e[256];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	(void)snprintf(err, err_len, "%s %s: %s", what, path, e);
	ERR_clear_error();
}

static SSL_CTX *make_ctx(const struct gw_conf *c, bool h2, char *err, size_t err_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		(void)snprintf(err, err_len, "cannot make a TLS context");
		return NULL;
	}
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* No server-side session cache: resumption goes through stateless
	 * tickets, whose key is per process (a restart invalidates them, which
	 * costs a full handshake, not a failure). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* One TLS 1.3 ticket per handshake (OpenSSL sends two by default):
	 * a client resumes with one, and each costs an encryption. */
	(void)SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1) {
		ssl_err(err, err_len, "[tls] cert: cannot load", c->cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_err(err, err_len, "[tls] key: cannot load", c->key_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		(void)snprintf(err, err_len, "[tls] key %s is not the key of the certificate %s", c->key_file,
		               c->cert_file);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_alpn_select_cb(ctx, h2 ? alpn_h2 : alpn_h1, NULL);
	return ctx;
}

int gw_tls_load(const struct gw_conf *c, struct gw_tls **out, char *err, size_t err_len)
{
	struct gw_tls *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (t == NULL)
		return CVM_E_NOMEM;
	if (pthread_rwlock_init(&t->lock, NULL) != 0) {
		free(t);
		return CVM_E_SYSTEM;
	}
	t->h1 = make_ctx(c, false, err, err_len);
	t->h2 = t->h1 == NULL ? NULL : make_ctx(c, true, err, err_len);
	if (t->h2 == NULL) {
		gw_tls_free(t);
		return CVM_E_FORMAT;
	}
	*out = t;
	return CVM_OK;
}

void gw_tls_free(struct gw_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->h1);
	SSL_CTX_free(t->h2);
	(void)pthread_rwlock_destroy(&t->lock);
	free(t);
}

SSL *gw_tls_new_ssl(struct gw_tls *t, bool h2)
{
	SSL *s;

	(void)pthread_rwlock_rdlock(&t->lock);
	s = SSL_new(h2 ? t->h2 : t->h1);
	(void)pthread_rwlock_unlock(&t->lock);
	return s;
}

void gw_tls_swap(struct gw_tls *t, struct gw_tls *fresh)
{
	SSL_CTX *h1, *h2;

	(void)pthread_rwlock_wrlock(&t->lock);
	h1 = t->h1;
	h2 = t->h2;
	t->h1 = fresh->h1;
	t->h2 = fresh->h2;
	(void)pthread_rwlock_unlock(&t->lock);
	fresh->h1 = h1;
	fresh->h2 = h2;
	gw_tls_free(fresh);
}
