/* lib/tls: attested TLS over OpenSSL. In-process TLS 1.3 handshakes over a
 * socketpair (the server in a thread) between contexts from
 * cvm_tls_server_ctx_new / cvm_tls_client_ctx_new, with RA-TLS identities
 * quoted by the simulated TEE (TDX and SNP, dstack and Cosmian profiles):
 * what the verify callback accepts and refuses, mutual RA-TLS, the fresh
 * connection-bound attestation, and libcurl (CURLOPT_SSL_CTX_FUNCTION with
 * cvm_tls_ctx_attach_verifier) against tests/common/ratls_server.c, the
 * libevent + bufferevent_openssl server. tests/integration/ratls_relay.sh
 * runs a real relay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/random.h>
#include <cvmkit/secret.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tls.h>

#include "ratls_ident.h"

/* ---- fixture: one simulated platform for the whole file ------------------ */

static char sim_dir[320];
static char tmp_dir[256];
static struct cvm_ratls_verifier *verifier; /* anchored in sim_dir's mock roots */
static char verifier_err[512];              /* why the simulator's verifier could not be made */
static pid_t server_pid;                    /* a ratls_server this file started, 0 when none */

static void stop_server(void)
{
	int st;

	if (server_pid > 0) {
		(void)kill(server_pid, SIGTERM);
		(void)waitpid(server_pid, &st, 0);
	}
	server_pid = 0;
}

static int rm_rf(const char *dir)
{
	pid_t pid = fork();
	int st = 0;

	if (pid == 0) {
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR");
	int r;

	(void)state;
	(void)signal(SIGPIPE, SIG_IGN);
	(void)snprintf(tmp_dir, sizeof(tmp_dir), "%s/cvm-test-tls-XXXXXX", base != NULL ? base : "/tmp");
	if (mkdtemp(tmp_dir) == NULL)
		return -1;
	(void)snprintf(sim_dir, sizeof(sim_dir), "%s/sim", tmp_dir);
	if (ratls_sim_init(sim_dir, (int64_t)time(NULL)) != CVM_OK)
		return -1;
	r = ratls_sim_verifier(sim_dir, 0, (int64_t)time(NULL), &verifier, verifier_err,
	                       sizeof(verifier_err));
	if (r != CVM_OK) {
		print_error("cannot make the simulator's RA-TLS verifier: %s\n", verifier_err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	stop_server(); /* a failed assertion left it running */
	cvm_ratls_verifier_free(verifier);
	return rm_rf(tmp_dir);
}

static void ident(enum cvm_tee_platform p, enum cvm_ratls_profile prof, bool client, struct ratls_ident *id)
{
	struct ratls_ident_opts o;
	char why[512] = "";
	int r;

	memset(&o, 0, sizeof(o));
	o.sim_dir = sim_dir;
	o.platform = p;
	o.profile = prof;
	o.client = client;
	r = ratls_ident_make(&o, id, why, sizeof(why));
	if (r != CVM_OK)
		fail_msg("RA-TLS identity: %s", why);
}

/* plain_ident is a key and a self-signed certificate without evidence. */
static void plain_ident(struct cvm_p256_keypair **key, char **pem)
{
	static const char *const names[] = {"localhost"};
	struct cvm_cert_template t;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(cvm_p256_keypair_generate(key), CVM_OK);
	cvm_cert_template_init(&t);
	t.common_name = "localhost";
	t.alt_names = names;
	t.alt_name_count = 1;
	t.not_before = now - 60;
	t.not_after = now + 3600;
	t.usage_server_auth = true;
	assert_int_equal(cvm_cert_make(&t, *key, NULL, NULL, pem, &len), CVM_OK);
}

/* ---- one connection: a server thread and a client over a socketpair ------ */

struct side {
	SSL_CTX *ctx;
	struct ratls_ident *id; /* server: answers the fresh request with it; NULL: no answer */
	SSL *ssl;
	int fd;
	bool ok; /* handshake (and, for the server, the fresh answer) done */
	bool has_verdict;
	struct cvm_ratls_verdict verdict;
	char err[512];
	uint8_t bound[CVM_TLS_FRESH_BOUND_LEN];
	uint8_t *va; /* client: the server's fresh answer */
	size_t va_len;
};

static void record_peer(struct side *s)
{
	const struct cvm_ratls_verdict *v = cvm_tls_peer_verdict(s->ssl);
	const char *e = cvm_tls_peer_error(s->ssl);

	s->has_verdict = v != NULL;
	if (v != NULL)
		s->verdict = *v;
	if (e != NULL)
		(void)snprintf(s->err, sizeof(s->err), "%s", e);
}

static bool read_full(SSL *ssl, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		int n = SSL_read(ssl, (uint8_t *)buf + got, (int)(len - got));

		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* The server: handshake; then read the client's 32-byte nonce and answer
 * with a 4-byte big-endian length and the VersionedAttestation. */
static void *server_main(void *arg)
{
	struct side *s = arg;
	uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN], hdr[4], *va = NULL;
	size_t va_len = 0;

	s->ssl = SSL_new(s->ctx);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
		return NULL;
	if (SSL_accept(s->ssl) != 1) {
		record_peer(s);
		ERR_clear_error();
		return NULL;
	}
	record_peer(s);
	if (s->id == NULL || !read_full(s->ssl, nonce, sizeof(nonce))) {
		s->ok = s->id == NULL;
		return NULL;
	}
	if (cvm_tls_fresh_nonce(s->ssl, nonce, s->bound) != CVM_OK ||
	    ratls_fresh_answer(s->id, s->bound, &va, &va_len) != CVM_OK)
		return NULL;
	hdr[0] = (uint8_t)(va_len >> 24);
	hdr[1] = (uint8_t)(va_len >> 16);
	hdr[2] = (uint8_t)(va_len >> 8);
	hdr[3] = (uint8_t)va_len;
	s->ok = SSL_write(s->ssl, hdr, 4) == 4 && SSL_write(s->ssl, va, (int)va_len) == (int)va_len;
	free(va);
	return NULL;
}

/* connect_pair runs one connection. With a server identity the client asks
 * for the fresh answer with `nonce` (random when NULL). */
static void connect_pair(struct side *srv, struct side *cli, const uint8_t *nonce)
{
	uint8_t n[CVM_TLS_FRESH_NONCE_LEN], hdr[4];
	pthread_t th;
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	srv->fd = fds[0];
	cli->fd = fds[1];
	assert_int_equal(pthread_create(&th, NULL, server_main, srv), 0);
	cli->ssl = SSL_new(cli->ctx);
	assert_non_null(cli->ssl);
	assert_int_equal(SSL_set_fd(cli->ssl, cli->fd), 1);
	if (SSL_connect(cli->ssl) == 1) {
		record_peer(cli);
		if (nonce == NULL) {
			assert_int_equal(cvm_random_bytes(n, sizeof(n)), CVM_OK);
			nonce = n;
		}
		if (srv->id != NULL) {
			/* In TLS 1.3 the client finishes before the server has
			 * checked its certificate: a refusal shows up here. */
			if (SSL_write(cli->ssl, nonce, CVM_TLS_FRESH_NONCE_LEN) ==
			        (int)CVM_TLS_FRESH_NONCE_LEN &&
			    read_full(cli->ssl, hdr, 4)) {
				cli->va_len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
				              (size_t)hdr[2] << 8 | hdr[3];
				assert_true(cli->va_len <= CVM_VA_MAX);
				cli->va = malloc(cli->va_len);
				assert_non_null(cli->va);
				cli->ok = read_full(cli->ssl, cli->va, cli->va_len);
				assert_int_equal(cvm_tls_fresh_nonce(cli->ssl, nonce, cli->bound), CVM_OK);
			}
		} else {
			cli->ok = true;
		}
	} else {
		record_peer(cli);
	}
	ERR_clear_error();
	(void)shutdown(cli->fd, SHUT_RDWR);
	assert_int_equal(pthread_join(th, NULL), 0);
	ERR_clear_error();
}

static void side_cleanup(struct side *s)
{
	SSL_free(s->ssl);
	if (s->fd > 0)
		(void)close(s->fd);
	free(s->va);
	s->ssl = NULL;
	s->fd = -1;
	s->va = NULL;
	s->va_len = 0;
	s->ok = false;
	s->has_verdict = false;
	s->err[0] = '\0';
}

/* leaf_der is the DER of the first certificate of a PEM chain. */
static uint8_t *leaf_der(const char *pem, size_t *len)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int n;

	assert_non_null(x);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	X509_free(x);
	BIO_free(b);
	return der;
}

/* ---- tests that need no verifier ------------------------------------------ */

/* A plain TLS 1.3 client (no verification: these tests look at the
 * exporter only). */
static SSL_CTX *plain_client(int version)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	assert_non_null(c);
	assert_int_equal(SSL_CTX_set_min_proto_version(c, version), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(c, version), 1);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	return c;
}

static void fresh_bound_is_equal_at_both_ends_and_differs_per_connection_and_nonce(void **state)
{
	struct cvm_p256_keypair *key = NULL;
	char *pem = NULL;
	struct side srv, cli;
	uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN], other[CVM_TLS_FRESH_NONCE_LEN];
	uint8_t b1s[64], b1c[64], b1c_other[64], b2c[64];

	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	plain_ident(&key, &pem);
	assert_int_equal(cvm_tls_server_ctx_new(pem, key, NULL, &srv.ctx), CVM_OK);
	cli.ctx = plain_client(TLS1_3_VERSION);
	memset(nonce, 0x11, sizeof(nonce));
	memset(other, 0x22, sizeof(other));

	connect_pair(&srv, &cli, NULL);
	assert_true(cli.ok);
	assert_int_equal(cvm_tls_fresh_nonce(srv.ssl, nonce, b1s), CVM_OK);
	assert_int_equal(cvm_tls_fresh_nonce(cli.ssl, nonce, b1c), CVM_OK);
	assert_int_equal(cvm_tls_fresh_nonce(cli.ssl, other, b1c_other), CVM_OK);
	assert_memory_equal(b1s, b1c, 64);
	assert_memory_not_equal(b1c, b1c_other, 64);
	side_cleanup(&srv);
	side_cleanup(&cli);

	connect_pair(&srv, &cli, NULL);
	assert_true(cli.ok);
	assert_int_equal(cvm_tls_fresh_nonce(cli.ssl, nonce, b2c), CVM_OK);
	assert_memory_not_equal(b1c, b2c, 64);
	side_cleanup(&srv);
	side_cleanup(&cli);

	SSL_CTX_free(srv.ctx);
	SSL_CTX_free(cli.ctx);
	free(pem);
	cvm_p256_keypair_free(key);
}

static void fresh_bound_refuses_tls12_and_an_unfinished_handshake(void **state)
{
	struct cvm_p256_keypair *key = NULL;
	char *pem = NULL;
	struct side srv, cli;
	uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN] = {0}, out[64];
	SSL *fresh;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	plain_ident(&key, &pem);
	/* A TLS 1.2 pair, made without lib/tls (whose contexts refuse 1.2). */
	srv.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(srv.ctx);
	assert_int_equal(SSL_CTX_set_max_proto_version(srv.ctx, TLS1_2_VERSION), 1);
	{
		BIO *b = BIO_new_mem_buf(pem, -1);
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		struct cvm_secret *kp = NULL;
		BIO *kb;
		EVP_PKEY *pk;

		assert_int_equal(cvm_p256_keypair_pkcs8_pem(key, &kp), CVM_OK);
		kb = BIO_new_mem_buf(kp->p, (int)kp->len);
		pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
		assert_int_equal(SSL_CTX_use_certificate(srv.ctx, x), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(srv.ctx, pk), 1);
		EVP_PKEY_free(pk);
		BIO_free(kb);
		cvm_secret_free(kp);
		X509_free(x);
		BIO_free(b);
	}
	cli.ctx = plain_client(TLS1_2_VERSION);
	connect_pair(&srv, &cli, NULL);
	assert_true(cli.ok);
	assert_int_equal(SSL_version(cli.ssl), TLS1_2_VERSION);
	assert_int_equal(cvm_tls_fresh_nonce(cli.ssl, nonce, out), CVM_E_UNSUPPORTED);
	fresh = SSL_new(cli.ctx);
	assert_non_null(fresh);
	assert_int_equal(cvm_tls_fresh_nonce(fresh, nonce, out), CVM_E_INVAL);
	assert_int_equal(cvm_tls_fresh_nonce(NULL, nonce, out), CVM_E_INVAL);
	SSL_free(fresh);
	side_cleanup(&srv);
	side_cleanup(&cli);
	SSL_CTX_free(srv.ctx);
	SSL_CTX_free(cli.ctx);
	free(pem);
	cvm_p256_keypair_free(key);
}

static void server_context_speaks_tls13_only(void **state)
{
	struct cvm_p256_keypair *key = NULL;
	char *pem = NULL;
	struct side srv, cli;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	plain_ident(&key, &pem);
	assert_int_equal(cvm_tls_server_ctx_new(pem, key, NULL, &srv.ctx), CVM_OK);
	cli.ctx = plain_client(TLS1_2_VERSION);
	connect_pair(&srv, &cli, NULL);
	assert_false(cli.ok);
	side_cleanup(&srv);
	side_cleanup(&cli);
	SSL_CTX_free(srv.ctx);
	SSL_CTX_free(cli.ctx);
	free(pem);
	cvm_p256_keypair_free(key);
}

static void contexts_refuse_bad_arguments(void **state)
{
	struct cvm_p256_keypair *key = NULL, *other = NULL;
	char *pem = NULL;
	SSL_CTX *ctx = (SSL_CTX *)1;

	(void)state;
	plain_ident(&key, &pem);
	assert_int_equal(cvm_p256_keypair_generate(&other), CVM_OK);
	/* a key that is not the certificate's */
	assert_int_equal(cvm_tls_server_ctx_new(pem, other, NULL, &ctx), CVM_E_INVAL);
	assert_null(ctx);
	/* text without a certificate */
	assert_int_equal(cvm_tls_server_ctx_new("not a certificate", key, NULL, &ctx), CVM_E_FORMAT);
	assert_int_equal(cvm_tls_server_ctx_new(NULL, key, NULL, &ctx), CVM_E_INVAL);
	assert_int_equal(cvm_tls_server_ctx_new(pem, NULL, NULL, &ctx), CVM_E_INVAL);
	/* a client must verify: no verifier, no context */
	assert_int_equal(cvm_tls_client_ctx_new(NULL, NULL, NULL, &ctx), CVM_E_INVAL);
	assert_null(ctx);
	assert_int_equal(cvm_tls_ctx_attach_verifier(NULL, NULL), CVM_E_INVAL);
	/* nothing before a handshake */
	assert_null(cvm_tls_peer_verdict(NULL));
	assert_null(cvm_tls_peer_error(NULL));
	assert_int_equal(ERR_peek_error(), 0);
	free(pem);
	cvm_p256_keypair_free(key);
	cvm_p256_keypair_free(other);
}

/* ---- RA-TLS handshakes (need lib/ratls) ------------------------------------ */

static void ratls_round_trip_tdx_and_snp_in_both_profiles_with_a_fresh_answer(void **state)
{
	static const struct {
		enum cvm_tee_platform p;
		enum cvm_ratls_profile prof;
	} cases[] = {
	    {CVM_TEE_PLATFORM_TDX, CVM_RATLS_PROFILE_DSTACK},
	    {CVM_TEE_PLATFORM_TDX, CVM_RATLS_PROFILE_COSMIAN},
	    {CVM_TEE_PLATFORM_SNP, CVM_RATLS_PROFILE_DSTACK},
	    {CVM_TEE_PLATFORM_SNP, CVM_RATLS_PROFILE_COSMIAN},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ratls_ident id;
		struct side srv, cli;
		struct cvm_ratls_verdict fv;
		uint8_t *leaf;
		size_t leaf_len;

		print_message("%s, %s profile\n", cases[i].p == CVM_TEE_PLATFORM_TDX ? "TDX" : "SNP",
		              cvm_ratls_profile_name(cases[i].prof));
		memset(&srv, 0, sizeof(srv));
		memset(&cli, 0, sizeof(cli));
		ident(cases[i].p, cases[i].prof, false, &id);
		assert_int_equal(cvm_tls_server_ctx_new(id.chain_pem, id.key, NULL, &srv.ctx), CVM_OK);
		assert_int_equal(cvm_tls_client_ctx_new(verifier, NULL, NULL, &cli.ctx), CVM_OK);
		srv.id = &id;
		connect_pair(&srv, &cli, NULL);
		if (!cli.ok)
			fail_msg("handshake or fresh answer failed: %s", cli.err);
		assert_true(srv.ok);
		assert_true(cli.has_verdict);
		assert_int_equal(cli.verdict.profile, cases[i].prof);
		assert_int_equal(cli.verdict.tee,
		                 cases[i].p == CVM_TEE_PLATFORM_TDX ? CVM_RATLS_TEE_TDX : CVM_RATLS_TEE_SNP);
		assert_true(cli.verdict.evidence_verified);
		assert_true(cli.verdict.binding);
		assert_true(cli.verdict.simulated);
		assert_false(srv.has_verdict); /* no client certificate asked */
		/* the fresh answer binds this very connection */
		assert_memory_equal(srv.bound, cli.bound, 64);
		leaf = leaf_der(id.chain_pem, &leaf_len);
		assert_int_equal(cvm_ratls_check_fresh(verifier, leaf, leaf_len, cli.va, cli.va_len,
		                                       cli.bound, (int64_t)time(NULL), &fv, NULL),
		                 CVM_OK);
		OPENSSL_free(leaf);
		side_cleanup(&srv);
		side_cleanup(&cli);
		SSL_CTX_free(srv.ctx);
		SSL_CTX_free(cli.ctx);
		ratls_ident_cleanup(&id);
	}
}

static void fresh_answer_of_another_connection_is_refused_as_a_relay(void **state)
{
	struct ratls_ident id;
	struct side srv, cli;
	struct cvm_ratls_verdict fv;
	uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN], first_bound[64], *first_va, *leaf;
	size_t first_va_len, leaf_len;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	ident(CVM_TEE_PLATFORM_TDX, CVM_RATLS_PROFILE_DSTACK, false, &id);
	assert_int_equal(cvm_tls_server_ctx_new(id.chain_pem, id.key, NULL, &srv.ctx), CVM_OK);
	assert_int_equal(cvm_tls_client_ctx_new(verifier, NULL, NULL, &cli.ctx), CVM_OK);
	srv.id = &id;
	/* The same nonce on both connections: only the exporter tells them
	 * apart. */
	memset(nonce, 0x5a, sizeof(nonce));
	connect_pair(&srv, &cli, nonce);
	assert_true(cli.ok);
	memcpy(first_bound, cli.bound, 64);
	first_va = cli.va;
	first_va_len = cli.va_len;
	cli.va = NULL;
	side_cleanup(&srv);
	side_cleanup(&cli);
	/* A second connection: the first one's answer does not bind it (as a
	 * relay's answer, made for the relay's own session, does not). */
	connect_pair(&srv, &cli, nonce);
	assert_true(cli.ok);
	assert_memory_not_equal(first_bound, cli.bound, 64);
	leaf = leaf_der(id.chain_pem, &leaf_len);
	assert_int_equal(cvm_ratls_check_fresh(verifier, leaf, leaf_len, first_va, first_va_len, cli.bound,
	                                       (int64_t)time(NULL), &fv, NULL),
	                 CVM_E_MISMATCH);
	/* and the answer checks against the bound it was made for */
	assert_int_equal(cvm_ratls_check_fresh(verifier, leaf, leaf_len, first_va, first_va_len, first_bound,
	                                       (int64_t)time(NULL), &fv, NULL),
	                 CVM_OK);
	OPENSSL_free(leaf);
	free(first_va);
	side_cleanup(&srv);
	side_cleanup(&cli);
	SSL_CTX_free(srv.ctx);
	SSL_CTX_free(cli.ctx);
	ratls_ident_cleanup(&id);
}

static void mutual_ratls_checks_the_client_and_refuses_one_without_a_certificate(void **state)
{
	struct ratls_ident sid, cid;
	struct side srv, cli;
	SSL_CTX *anon = NULL;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	ident(CVM_TEE_PLATFORM_TDX, CVM_RATLS_PROFILE_DSTACK, false, &sid);
	ident(CVM_TEE_PLATFORM_SNP, CVM_RATLS_PROFILE_DSTACK, true, &cid);
	assert_int_equal(cvm_tls_server_ctx_new(sid.chain_pem, sid.key, verifier, &srv.ctx), CVM_OK);
	assert_int_equal(cvm_tls_client_ctx_new(verifier, cid.chain_pem, cid.key, &cli.ctx), CVM_OK);
	srv.id = &sid;
	connect_pair(&srv, &cli, NULL);
	if (!cli.ok)
		fail_msg("mutual handshake failed: client: %s; server: %s", cli.err, srv.err);
	assert_true(srv.has_verdict);
	assert_int_equal(srv.verdict.tee, CVM_RATLS_TEE_SNP);
	assert_true(srv.verdict.binding);
	assert_true(cli.has_verdict);
	assert_int_equal(cli.verdict.tee, CVM_RATLS_TEE_TDX);
	side_cleanup(&srv);
	side_cleanup(&cli);

	/* A client that verifies the server but has no certificate. */
	assert_int_equal(cvm_tls_client_ctx_new(verifier, NULL, NULL, &anon), CVM_OK);
	SSL_CTX_free(cli.ctx);
	cli.ctx = anon;
	connect_pair(&srv, &cli, NULL);
	assert_false(cli.ok);
	assert_false(srv.ok);
	assert_false(srv.has_verdict);
	side_cleanup(&srv);
	side_cleanup(&cli);

	SSL_CTX_free(anon);
	SSL_CTX_free(srv.ctx);
	ratls_ident_cleanup(&sid);
	ratls_ident_cleanup(&cid);
}

/* refused_at_handshake connects a verifying client to a server presenting
 * `id` and returns the client's reason. */
static void refused_at_handshake(struct ratls_ident *id, char *why, size_t why_len)
{
	struct side srv, cli;

	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	assert_int_equal(cvm_tls_server_ctx_new(id->chain_pem, id->key, NULL, &srv.ctx), CVM_OK);
	assert_int_equal(cvm_tls_client_ctx_new(verifier, NULL, NULL, &cli.ctx), CVM_OK);
	connect_pair(&srv, &cli, NULL);
	assert_false(cli.ok);
	assert_false(cli.has_verdict);
	assert_null(cvm_tls_peer_verdict(cli.ssl));
	assert_true(cli.err[0] != '\0');
	(void)snprintf(why, why_len, "%s", cli.err);
	side_cleanup(&srv);
	side_cleanup(&cli);
	SSL_CTX_free(srv.ctx);
	SSL_CTX_free(cli.ctx);
}

static void certificate_whose_evidence_binds_another_key_is_refused_at_the_handshake(void **state)
{
	struct cvm_p256_keypair *other = NULL;
	struct ratls_ident_opts o;
	struct ratls_ident id;
	char why[512];

	(void)state;
	assert_int_equal(cvm_p256_keypair_generate(&other), CVM_OK);
	memset(&o, 0, sizeof(o));
	o.sim_dir = sim_dir;
	o.platform = CVM_TEE_PLATFORM_TDX;
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	o.bind = other;
	if (ratls_ident_make(&o, &id, why, sizeof(why)) != CVM_OK)
		fail_msg("%s", why);
	refused_at_handshake(&id, why, sizeof(why));
	print_message("refused: %s\n", why);
	assert_non_null(strstr(why, "does not bind the certificate's key"));
	ratls_ident_cleanup(&id);
	cvm_p256_keypair_free(other);
}

static void expired_certificate_is_refused_at_the_handshake(void **state)
{
	struct ratls_ident_opts o;
	struct ratls_ident id;
	int64_t now = (int64_t)time(NULL);
	char why[512];

	(void)state;
	memset(&o, 0, sizeof(o));
	o.sim_dir = sim_dir;
	o.platform = CVM_TEE_PLATFORM_TDX;
	o.profile = CVM_RATLS_PROFILE_DSTACK;
	o.not_before = now - 7200;
	o.not_after = now - 3600;
	if (ratls_ident_make(&o, &id, why, sizeof(why)) != CVM_OK)
		fail_msg("%s", why);
	refused_at_handshake(&id, why, sizeof(why));
	print_message("refused: %s\n", why);
	assert_non_null(strstr(why, "expired"));
	ratls_ident_cleanup(&id);
}

/* ---- libcurl against the libevent server ------------------------------------ */

struct curl_ctx_arg {
	struct cvm_ratls_verifier *v;
	const struct ratls_ident *client; /* presented as the client certificate, or NULL */
	int attached;
};

/* use_ident gives an OpenSSL context the certificate and key of `id` (what
 * a libcurl user does with its own RA-TLS client identity). */
static bool use_ident(SSL_CTX *ctx, const struct ratls_ident *id)
{
	BIO *cb = BIO_new_mem_buf(id->chain_pem, (int)id->chain_len), *kb = NULL;
	X509 *x = cb != NULL ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	struct cvm_secret *kp = NULL;
	EVP_PKEY *pk = NULL;
	bool ok = false;

	if (x != NULL && cvm_p256_keypair_pkcs8_pem(id->key, &kp) == CVM_OK) {
		kb = BIO_new_mem_buf(kp->p, (int)kp->len);
		pk = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
		ok = pk != NULL && SSL_CTX_use_certificate(ctx, x) == 1 &&
		     SSL_CTX_use_PrivateKey(ctx, pk) == 1;
	}
	EVP_PKEY_free(pk);
	BIO_free(kb);
	cvm_secret_free(kp);
	X509_free(x);
	BIO_free(cb);
	return ok;
}

static CURLcode attach_cb(CURL *curl, void *sslctx, void *arg)
{
	struct curl_ctx_arg *a = arg;

	(void)curl;
	a->attached = cvm_tls_ctx_attach_verifier(sslctx, a->v);
	if (a->attached == CVM_OK && a->client != NULL && !use_ident(sslctx, a->client))
		a->attached = CVM_E_CRYPTO;
	return a->attached == CVM_OK ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

/* struct curl_body collects the answer and, while the transfer runs (the
 * only time libcurl lends its SSL), the verdict of the connection. */
struct curl_body {
	CURL *c;
	char buf[256];
	bool has_verdict;
	struct cvm_ratls_verdict verdict;
};

static size_t body_cb(char *p, size_t size, size_t n, void *arg)
{
	struct curl_body *b = arg;
	size_t have = strlen(b->buf), add = size * n;
	struct curl_tlssessioninfo *ti = NULL;

	if (!b->has_verdict && curl_easy_getinfo(b->c, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK && ti != NULL &&
	    ti->backend == CURLSSLBACKEND_OPENSSL && ti->internals != NULL) {
		const struct cvm_ratls_verdict *v = cvm_tls_peer_verdict(ti->internals);

		if (v != NULL) {
			b->verdict = *v;
			b->has_verdict = true;
		}
	}
	if (have + add >= sizeof(b->buf))
		return 0;
	memcpy(b->buf + have, p, add);
	b->buf[have + add] = '\0';
	return add;
}

static CURLcode curl_get_as(const char *url, struct cvm_ratls_verifier *v, const struct ratls_ident *client,
                            long verify_peer, char *body)
{
	struct curl_ctx_arg a = {v, client, -1};
	struct curl_body b;
	CURLcode cc;

	memset(&b, 0, sizeof(b));
	b.c = curl_easy_init();
	assert_non_null(b.c);
	assert_int_equal(curl_easy_setopt(b.c, CURLOPT_URL, url), CURLE_OK);
	assert_int_equal(curl_easy_setopt(b.c, CURLOPT_SSL_VERIFYPEER, verify_peer), CURLE_OK);
	assert_int_equal(curl_easy_setopt(b.c, CURLOPT_SSL_CTX_FUNCTION, attach_cb), CURLE_OK);
	assert_int_equal(curl_easy_setopt(b.c, CURLOPT_SSL_CTX_DATA, &a), CURLE_OK);
	assert_int_equal(curl_easy_setopt(b.c, CURLOPT_WRITEFUNCTION, body_cb), CURLE_OK);
	assert_int_equal(curl_easy_setopt(b.c, CURLOPT_WRITEDATA, &b), CURLE_OK);
	assert_int_equal(curl_easy_setopt(b.c, CURLOPT_TIMEOUT, 20L), CURLE_OK);
	cc = curl_easy_perform(b.c);
	assert_int_equal(a.attached, CVM_OK);
	if (cc == CURLE_OK) {
		/* The connection libcurl used carried the verifier's verdict. */
		assert_true(b.has_verdict);
		assert_int_equal(b.verdict.tee, CVM_RATLS_TEE_TDX);
		assert_true(b.verdict.binding);
	}
	(void)snprintf(body, 256, "%s", b.buf);
	curl_easy_cleanup(b.c);
	return cc;
}

static CURLcode curl_get(const char *url, struct cvm_ratls_verifier *v, long verify_peer, char *body)
{
	return curl_get_as(url, v, NULL, verify_peer, body);
}

/* start_server runs ratls_server on the simulator (with `mutual`: it
 * requires a client RA-TLS certificate) and writes its /hello URL. */
static void start_server(bool mutual, char *url, size_t url_len)
{
	char port_file[512], bin[512];
	uint8_t *port = NULL;
	size_t port_len = 0;
	pid_t pid;

	stop_server();
	(void)snprintf(port_file, sizeof(port_file), "%s/port-%d", tmp_dir, mutual ? 1 : 0);
	(void)snprintf(bin, sizeof(bin), "%s/tests/ratls_server", CVM_BINARY_DIR);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (mutual)
			execl(bin, bin, "--sim", sim_dir, "--port-file", port_file, "--mutual", (char *)NULL);
		else
			execl(bin, bin, "--sim", sim_dir, "--port-file", port_file, (char *)NULL);
		_exit(127);
	}
	server_pid = pid;
	for (int i = 0; i < 300 && cvm_file_read(port_file, 16, &port, &port_len) != CVM_OK; i++)
		(void)usleep(100 * 1000);
	if (port == NULL)
		fail_msg("ratls_server did not start");
	(void)snprintf(url, url_len, "https://localhost:%.*s/hello", (int)strcspn((char *)port, "\n"),
	               (char *)port);
	free(port);
}

static void libcurl_with_attached_verifier_talks_to_the_libevent_server(void **state)
{
	char url[128], body[256], other_dir[512], why[512];
	struct cvm_ratls_verifier *other = NULL;

	(void)state;
	start_server(false, url, sizeof(url));
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);

	/* CURLOPT_SSL_VERIFYPEER on (libcurl's default): the callback decides,
	 * no CA bundle knows this server. */
	assert_int_equal(curl_get(url, verifier, 1L, body), CURLE_OK);
	assert_string_equal(body, "hello\n");
	assert_int_equal(curl_get(url, verifier, 0L, body), CURLE_OK);
	assert_string_equal(body, "hello\n");

	/* A verifier anchored in another simulated platform refuses the
	 * server, with CURLOPT_SSL_VERIFYPEER on and off. */
	(void)snprintf(other_dir, sizeof(other_dir), "%s/other-sim", tmp_dir);
	assert_int_equal(ratls_sim_init(other_dir, (int64_t)time(NULL)), CVM_OK);
	if (ratls_sim_verifier(other_dir, 0, (int64_t)time(NULL), &other, why, sizeof(why)) != CVM_OK)
		fail_msg("%s", why);
	assert_int_not_equal(curl_get(url, other, 1L, body), CURLE_OK);
	assert_string_equal(body, "");
	assert_int_not_equal(curl_get(url, other, 0L, body), CURLE_OK);
	assert_string_equal(body, "");

	cvm_ratls_verifier_free(other);
	curl_global_cleanup();
	stop_server();
}

static void
libcurl_with_a_client_certificate_passes_the_mutual_libevent_server_and_without_is_refused(void **state)
{
	struct ratls_ident cid;
	char url[128], body[256];

	(void)state;
	ident(CVM_TEE_PLATFORM_SNP, CVM_RATLS_PROFILE_DSTACK, true, &cid);
	start_server(true, url, sizeof(url));
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	/* The server's handler reads the verdict its verify callback reached
	 * on our certificate. */
	assert_int_equal(curl_get_as(url, verifier, &cid, 1L, body), CURLE_OK);
	assert_string_equal(body, "hello snp client\n");
	/* Without a client certificate the server ends the handshake. */
	assert_int_not_equal(curl_get(url, verifier, 1L, body), CURLE_OK);
	assert_string_equal(body, "");
	curl_global_cleanup();
	stop_server();
	ratls_ident_cleanup(&cid);
}

/* ---- the client side: targets and answers ---------------------------------- */

static void target_parse_takes_host_port_brackets_and_https_urls_and_nothing_else(void **state)
{
	static const char *const bad[] = {
	    "",           "kms",           "kms:",          "kms:0",       "kms:65536",
	    "kms:12a",    ":8000",         "http://kms:80", "ftp://kms",   "https://",
	    "https://:1", "https://u@kms", "kms:80/x",      "a:b:c",       "[::1",
	    "[]:80",      "[::1]x",        "https://kms?x", "kms:80#frag", "k ms:80",
	};
	struct cvm_tls_target t;

	(void)state;
	assert_int_equal(cvm_tls_target_parse("kms.example:8000", &t), CVM_OK);
	assert_string_equal(t.host, "kms.example");
	assert_string_equal(t.port, "8000");
	assert_string_equal(t.prefix, "");
	assert_int_equal(cvm_tls_target_parse("[::1]:8443", &t), CVM_OK);
	assert_string_equal(t.host, "::1");
	assert_string_equal(t.port, "8443");
	assert_int_equal(cvm_tls_target_parse("https://kms.example", &t), CVM_OK);
	assert_string_equal(t.port, "443");
	assert_int_equal(cvm_tls_target_parse("HTTPS://kms.example:9/kms/v1/", &t), CVM_OK);
	assert_string_equal(t.host, "kms.example");
	assert_string_equal(t.port, "9");
	assert_string_equal(t.prefix, "/kms/v1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cvm_tls_target_parse(bad[i], &t) != CVM_E_INVAL)
			fail_msg("'%s' was accepted", bad[i]);
}

static int reply(const char *text, bool closed, size_t max, int *status, size_t *off, size_t *len)
{
	return cvm_tls_reply_parse((const uint8_t *)text, strlen(text), closed, max, status, off, len);
}

static void reply_parse_frames_by_content_length_or_close_and_refuses_ambiguity(void **state)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing";
	size_t off = 0, len = 0;
	int status = 0;

	(void)state;
	assert_int_equal(reply(ok, false, 4096, &status, &off, &len), CVM_OK);
	assert_int_equal(status, 200);
	assert_int_equal(len, 2);
	assert_memory_equal(ok + off, "{}", 2);
	/* every cut short of the body is "more, please"; after a close, an error */
	for (size_t cut = 0; cut < sizeof("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") - 1; cut++) {
		assert_int_equal(
		    cvm_tls_reply_parse((const uint8_t *)ok, cut, false, 4096, &status, &off, &len),
		    CVM_E_TRUNCATED);
		assert_int_equal(
		    cvm_tls_reply_parse((const uint8_t *)ok, cut, true, 4096, &status, &off, &len),
		    CVM_E_FORMAT);
	}
	/* no Content-Length: the body ends at the close */
	assert_int_equal(reply("HTTP/1.1 403 Forbidden\r\n\r\nno", false, 4096, &status, &off, &len),
	                 CVM_E_TRUNCATED);
	assert_int_equal(reply("HTTP/1.1 403 Forbidden\r\n\r\nno", true, 4096, &status, &off, &len), CVM_OK);
	assert_int_equal(status, 403);
	assert_int_equal(len, 2);
	/* ... and never past the cap, closed or not (found by fuzz_tls_reply) */
	assert_int_equal(reply("HTTP/1.1 200 OK\r\n\r\n0123456789", true, 24, &status, &off, &len),
	                 CVM_E_TOO_LARGE);
	assert_int_equal(reply("HTTP/1.1 200 OK\r\n\r\n0123456789", false, 24, &status, &off, &len),
	                 CVM_E_TOO_LARGE);
	/* two lengths, a bad length, not HTTP/1.1, a body over the cap */
	assert_int_equal(reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}", false,
	                       4096, &status, &off, &len),
	                 CVM_E_FORMAT);
	assert_int_equal(
	    reply("HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n{}", false, 4096, &status, &off, &len),
	    CVM_E_FORMAT);
	assert_int_equal(
	    reply("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", false, 4096, &status, &off, &len),
	    CVM_E_FORMAT);
	assert_int_equal(
	    reply("HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}", false, 4096, &status, &off, &len),
	    CVM_E_FORMAT);
	assert_int_equal(
	    reply("HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n{}", false, 4096, &status, &off, &len),
	    CVM_E_TOO_LARGE);
	assert_int_equal(reply("HTTP/1.1 200 OK\r\nContent-Length: 184467440737095516150\r\n\r\n", false,
	                       4096, &status, &off, &len),
	                 CVM_E_FORMAT);
	assert_int_equal(status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fresh_bound_is_equal_at_both_ends_and_differs_per_connection_and_nonce),
	    cmocka_unit_test(fresh_bound_refuses_tls12_and_an_unfinished_handshake),
	    cmocka_unit_test(server_context_speaks_tls13_only),
	    cmocka_unit_test(contexts_refuse_bad_arguments),
	    cmocka_unit_test(ratls_round_trip_tdx_and_snp_in_both_profiles_with_a_fresh_answer),
	    cmocka_unit_test(fresh_answer_of_another_connection_is_refused_as_a_relay),
	    cmocka_unit_test(mutual_ratls_checks_the_client_and_refuses_one_without_a_certificate),
	    cmocka_unit_test(certificate_whose_evidence_binds_another_key_is_refused_at_the_handshake),
	    cmocka_unit_test(expired_certificate_is_refused_at_the_handshake),
	    cmocka_unit_test(libcurl_with_attached_verifier_talks_to_the_libevent_server),
	    cmocka_unit_test(
	        libcurl_with_a_client_certificate_passes_the_mutual_libevent_server_and_without_is_refused),
	    cmocka_unit_test(target_parse_takes_host_port_brackets_and_https_urls_and_nothing_else),
	    cmocka_unit_test(reply_parse_frames_by_content_length_or_close_and_refuses_ambiguity),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
