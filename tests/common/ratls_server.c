/* ratls_server: a small HTTPS server for the attested-TLS tests (libevent's
 * evhttp over bufferevent_openssl, with an SSL from cvm_tls_server_ctx_new).
 * It makes a key and an RA-TLS certificate quoted by the simulated TEE in
 * --sim DIR and serves, on 127.0.0.1:
 *
 *   GET  /hello         200 "hello\n" (with --mutual: "hello <tee> client\n")
 *   POST /FreshAttest   {"nonce": hex} -> {"attestation": hex(VA V0)} whose
 *                       report_data binds this TLS connection's exporter
 *
 * Options: --sim DIR (required), --platform tdx|snp, --profile
 * dstack|cosmian, --mutual (require and verify an RA-TLS client certificate
 * against the simulator's roots), --port-file FILE (the bound port, written
 * once listening), --chain-out FILE and --key-out FILE (the certificate and
 * its private key, for the relay test: its attacker holds the server's key).
 * Not a daemon: a test tool (bounded requests, one process, no privileges). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/secret.h>
#include <cvmkit/tls.h>

#include "ratls_ident.h"

#define BODY_MAX 1024
#define HEADERS_MAX 4096
#define TIMEOUT_S 10

struct server {
	struct ratls_ident id;
	SSL_CTX *ctx;
	bool mutual;
};

static void reply(struct evhttp_request *req, int code, const char *type, const char *body)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	(void)evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	(void)evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, code, NULL, b);
	evbuffer_free(b);
}

static void reply_err(struct evhttp_request *req, int code, const char *msg)
{
	char body[256];

	(void)snprintf(body, sizeof(body), "{\"error\": \"%s\"}\n", msg);
	reply(req, code, "application/json", body);
}

static SSL *ssl_of(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c != NULL ? evhttp_connection_get_bufferevent(c) : NULL;

	return bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
}

static void on_hello(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	const struct cvm_ratls_verdict *v;
	char body[128];

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		reply_err(req, 405, "GET only");
		return;
	}
	if (!s->mutual) {
		reply(req, 200, "text/plain", "hello\n");
		return;
	}
	v = cvm_tls_peer_verdict(ssl_of(req));
	if (v == NULL) { /* cannot happen: the handshake required it */
		reply_err(req, 403, "no verified client");
		return;
	}
	(void)snprintf(body, sizeof(body), "hello %s client\n", cvm_ratls_tee_name(v->tee));
	reply(req, 200, "text/plain", body);
}

static void on_fresh(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char buf[BODY_MAX + 1];
	uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN], bound[CVM_TLS_FRESH_BOUND_LEN], *va = NULL;
	size_t va_len = 0, body_len;
	json_t *o = NULL, *n;
	char *hex = NULL, *body = NULL;
	json_error_t jerr;
	int r;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_err(req, 405, "POST only");
		return;
	}
	if (len > BODY_MAX) {
		reply_err(req, 413, "body too large");
		return;
	}
	if (evbuffer_remove(in, buf, len) != (int)len) {
		reply_err(req, 500, "cannot read the body");
		return;
	}
	buf[len] = '\0';
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	n = o != NULL ? json_object_get(o, "nonce") : NULL;
	if (!json_is_string(n) || cvm_hex_decode_exact(json_string_value(n), json_string_length(n), nonce,
	                                               sizeof(nonce)) != CVM_OK) {
		reply_err(req, 400, "the body must be {\\\"nonce\\\": 64 hex digits}");
		goto out;
	}
	r = cvm_tls_fresh_nonce(ssl_of(req), nonce, bound);
	if (r == CVM_OK)
		r = ratls_fresh_answer(&s->id, bound, &va, &va_len);
	if (r != CVM_OK) {
		fprintf(stderr, "ratls_server: fresh attestation: %s\n", cvm_strerror(r));
		reply_err(req, 500, "cannot make the fresh attestation");
		goto out;
	}
	hex = cvm_hex_encode_new(va, va_len);
	body_len = hex != NULL ? strlen(hex) + 32 : 0;
	body = hex != NULL ? malloc(body_len) : NULL;
	if (body == NULL) {
		reply_err(req, 500, "out of memory");
		goto out;
	}
	(void)snprintf(body, body_len, "{\"attestation\": \"%s\"}\n", hex);
	reply(req, 200, "application/json", body);
out:
	free(body);
	free(hex);
	free(va);
	json_decref(o);
}

static void on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	reply_err(req, 404, "no such route: GET /hello, POST /FreshAttest");
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct server *s = arg;
	SSL *ssl = SSL_new(s->ctx);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

static int write_key(const struct cvm_p256_keypair *key, const char *path)
{
	struct cvm_secret *pem = NULL;
	int r;

	r = cvm_p256_keypair_pkcs8_pem(key, &pem);
	if (r != CVM_OK)
		return r;
	r = cvm_file_write(path, pem->p, pem->len, 0600);
	cvm_secret_free(pem);
	return r;
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)event_base_loopbreak(arg);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ratls_server --sim DIR [--platform tdx|snp] [--profile dstack|cosmian] [--mutual]\n"
	        "                    [--port-file FILE] [--chain-out FILE] [--key-out FILE]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"sim", required_argument, NULL, 's'},       {"platform", required_argument, NULL, 'p'},
	    {"profile", required_argument, NULL, 'P'},   {"mutual", no_argument, NULL, 'm'},
	    {"port-file", required_argument, NULL, 'o'}, {"chain-out", required_argument, NULL, 'c'},
	    {"key-out", required_argument, NULL, 'k'},   {NULL, 0, NULL, 0},
	};
	struct ratls_ident_opts io;
	struct server s;
	struct cvm_ratls_verifier *cv = NULL;
	struct event_base *base = NULL;
	struct evhttp *http = NULL;
	struct evhttp_bound_socket *sock;
	struct event *term = NULL;
	const char *port_file = NULL, *chain_out = NULL, *key_out = NULL;
	char why[512] = "", port[16];
	int c, r, rc = 1;

	memset(&s, 0, sizeof(s));
	memset(&io, 0, sizeof(io));
	io.platform = CVM_TEE_PLATFORM_TDX;
	io.profile = CVM_RATLS_PROFILE_DSTACK;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			io.sim_dir = optarg;
			break;
		case 'p':
			if (!ratls_ident_platform(optarg, &io)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'P':
			if (!ratls_ident_profile(optarg, &io)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'm':
			s.mutual = true;
			break;
		case 'o':
			port_file = optarg;
			break;
		case 'c':
			chain_out = optarg;
			break;
		case 'k':
			key_out = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (io.sim_dir == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	(void)signal(SIGPIPE, SIG_IGN);
	r = ratls_ident_make(&io, &s.id, why, sizeof(why));
	if (r != CVM_OK) {
		fprintf(stderr, "ratls_server: cannot make the RA-TLS identity: %s\n", why);
		goto out;
	}
	if (s.mutual) {
		r = ratls_sim_verifier(io.sim_dir, 0, (int64_t)time(NULL), &cv, why, sizeof(why));
		if (r != CVM_OK) {
			fprintf(stderr, "ratls_server: cannot make the client verifier: %s\n", why);
			goto out;
		}
	}
	r = cvm_tls_server_ctx_new(s.id.chain_pem, s.id.key, cv, &s.ctx);
	if (r != CVM_OK) {
		fprintf(stderr, "ratls_server: cvm_tls_server_ctx_new: %s\n", cvm_strerror(r));
		goto out;
	}
	if (chain_out != NULL && cvm_file_write(chain_out, s.id.chain_pem, s.id.chain_len, 0644) != CVM_OK) {
		fprintf(stderr, "ratls_server: cannot write %s\n", chain_out);
		goto out;
	}
	if (key_out != NULL && write_key(s.id.key, key_out) != CVM_OK) {
		fprintf(stderr, "ratls_server: cannot write %s\n", key_out);
		goto out;
	}
	base = event_base_new();
	http = base != NULL ? evhttp_new(base) : NULL;
	if (http == NULL) {
		fprintf(stderr, "ratls_server: libevent: out of memory\n");
		goto out;
	}
	/* SIGTERM ends the loop, so that the exit path (and a sanitizer's
	 * leak check) runs. */
	term = evsignal_new(base, SIGTERM, on_term, base);
	if (term == NULL || event_add(term, NULL) != 0) {
		fprintf(stderr, "ratls_server: cannot catch SIGTERM\n");
		goto out;
	}
	evhttp_set_max_body_size(http, BODY_MAX);
	evhttp_set_max_headers_size(http, HEADERS_MAX);
	evhttp_set_timeout(http, TIMEOUT_S);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_bevcb(http, make_bev, &s);
	(void)evhttp_set_cb(http, "/hello", on_hello, &s);
	(void)evhttp_set_cb(http, "/FreshAttest", on_fresh, &s);
	evhttp_set_gencb(http, on_other, &s);
	sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	if (sock == NULL) {
		fprintf(stderr, "ratls_server: cannot listen on 127.0.0.1: %s\n", strerror(errno));
		goto out;
	}
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) != 0) {
			fprintf(stderr, "ratls_server: getsockname: %s\n", strerror(errno));
			goto out;
		}
		(void)snprintf(port, sizeof(port), "%u\n", (unsigned)ntohs(sin->sin_port));
	}
	if (port_file != NULL && cvm_file_write(port_file, port, strlen(port), 0644) != CVM_OK) {
		fprintf(stderr, "ratls_server: cannot write %s\n", port_file);
		goto out;
	}
	fprintf(stderr, "ratls_server: listening on 127.0.0.1:%s", port);
	(void)event_base_dispatch(base);
	rc = 0;
out:
	if (term != NULL)
		event_free(term);
	if (http != NULL)
		evhttp_free(http);
	if (base != NULL)
		event_base_free(base);
	SSL_CTX_free(s.ctx);
	cvm_ratls_verifier_free(cv);
	ratls_ident_cleanup(&s.id);
	return rc;
}
