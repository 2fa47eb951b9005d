/* bench_ratls: the cost of attested TLS, in one run, on one thread.
 *
 *   plain   TLS 1.3 handshakes, P-256 server certificate without evidence,
 *           client without verification callback
 *   warm    RA-TLS handshakes: the client's verify callback checks the
 *           server's evidence through a verifier with warm collateral and its
 *           verdict cache on (the certificate repeats, as a long-running
 *           client's peer does)
 *   cold    RA-TLS handshakes with every check missing the cache: the
 *           verifier keeps one verdict and the server alternates between two
 *           RA-TLS certificates, so the evidence is verified on every
 *           handshake (each iteration asserts the verdict was not cached)
 *   fresh   the fresh attestation over an established RA-TLS connection:
 *           exporter on both sides, a simulated quote over it, the
 *           VersionedAttestation encoded, cvm_ratls_check_fresh (ms)
 *
 * Both ends of each handshake run in this thread over an in-memory BIO pair
 * (no sockets, no threads): the figures are the handshake's CPU cost, both
 * sides together. Evidence comes from the simulated TEE (a temporary
 * platform). Prints one JSON line per run and one with the ratios; see
 * bench/README.md. */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/random.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tls.h>

#include "ratls_ident.h"

#define PROG "bench_ratls"
#define COUNT_MAX 10000000ul
#define ROUNDS 10ul

static double now_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* handshake runs one TLS handshake between fresh SSLs of `sc` and `cc`
 * over a BIO pair. On success *cli and *srv are the connected SSLs (the
 * caller frees them, or passes NULL to have them freed here). */
static bool handshake(SSL_CTX *sc, SSL_CTX *cc, SSL **cli_out, SSL **srv_out)
{
	SSL *c = SSL_new(cc), *s = SSL_new(sc);
	BIO *cb = NULL, *sb = NULL;
	bool cdone = false, sdone = false, ok = false;

	if (c == NULL || s == NULL || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
		goto out;
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 32 && !(cdone && sdone); i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(c);
			if (r == 1)
				cdone = true;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				goto out;
		}
		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1)
				sdone = true;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				goto out;
		}
	}
	ok = cdone && sdone;
out:
	ERR_clear_error();
	if (ok && cli_out != NULL) {
		*cli_out = c;
		*srv_out = s;
		return true;
	}
	SSL_free(c);
	SSL_free(s);
	return ok;
}

static void line(const char *mode, unsigned long n, double secs, const char *extra)
{
	printf("{\"mode\": \"%s\", \"count\": %lu, \"seconds\": %.6f, \"per_second\": %.1f, \"ms_each\": "
	       "%.3f%s}\n",
	       mode, n, secs, (double)n / secs, secs * 1e3 / (double)n, extra);
	(void)fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [--count N] [--fresh-count N] [--platform tdx|snp] [--profile dstack|cosmian]\n"
	        "  N handshakes in each of the plain, warm and cold runs (default 2000), and N fresh\n"
	        "  attestations (default 200); evidence from a temporary simulated TEE.\n",
	        PROG);
}

static bool parse_count(const char *s, unsigned long *out)
{
	char *end = NULL;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > COUNT_MAX)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"count", required_argument, NULL, 'n'},    {"fresh-count", required_argument, NULL, 'f'},
	    {"platform", required_argument, NULL, 'p'}, {"profile", required_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	unsigned long count = 2000, fresh_count = 200;
	struct ratls_ident_opts io;
	struct ratls_ident id1, id2;
	struct cvm_p256_keypair *pkey = NULL;
	struct cvm_ratls_verifier *warm_v = NULL, *cold_v = NULL;
	SSL_CTX *plain_s = NULL, *plain_c = NULL, *ra_s1 = NULL, *ra_s2 = NULL, *warm_c = NULL,
	        *cold_c = NULL;
	char *plain_pem = NULL, tmp[] = "/tmp/cvm-bench-ratls-XXXXXX", sim[64], why[512] = "", extra[128];
	uint8_t *leaf = NULL;
	size_t leaf_len = 0;
	double t0, plain_t = 0, warm_t = 0, cold_t = 0, fresh_t = 0;
	int c, rc = 1;

	memset(&io, 0, sizeof(io));
	memset(&id1, 0, sizeof(id1));
	memset(&id2, 0, sizeof(id2));
	io.platform = CVM_TEE_PLATFORM_TDX;
	io.profile = CVM_RATLS_PROFILE_DSTACK;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (!parse_count(optarg, &count)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'f':
			if (!parse_count(optarg, &fresh_count)) {
				usage(stderr);
				return 2;
			}
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
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (mkdtemp(tmp) == NULL) {
		perror(PROG ": mkdtemp");
		return 1;
	}
	(void)snprintf(sim, sizeof(sim), "%s/sim", tmp);
	if (ratls_sim_init(sim, (int64_t)time(NULL)) != CVM_OK) {
		fprintf(stderr, "%s: cannot make the simulated TEE\n", PROG);
		goto out;
	}
	io.sim_dir = sim;

	/* plain: a P-256 certificate without evidence, a client that checks
	 * nothing. */
	{
		static const char *const names[] = {"localhost"};
		struct cvm_cert_template t;
		size_t len = 0;
		int64_t now = (int64_t)time(NULL);

		cvm_cert_template_init(&t);
		t.common_name = "localhost";
		t.alt_names = names;
		t.alt_name_count = 1;
		t.not_before = now - 60;
		t.not_after = now + 3600;
		t.usage_server_auth = true;
		if (cvm_p256_keypair_generate(&pkey) != CVM_OK ||
		    cvm_cert_make(&t, pkey, NULL, NULL, &plain_pem, &len) != CVM_OK ||
		    cvm_tls_server_ctx_new(plain_pem, pkey, NULL, &plain_s) != CVM_OK) {
			fprintf(stderr, "%s: cannot make the plain server\n", PROG);
			goto out;
		}
		plain_c = SSL_CTX_new(TLS_client_method());
		if (plain_c == NULL || SSL_CTX_set_min_proto_version(plain_c, TLS1_3_VERSION) != 1) {
			fprintf(stderr, "%s: cannot make the plain client\n", PROG);
			goto out;
		}
		SSL_CTX_set_verify(plain_c, SSL_VERIFY_NONE, NULL);
		(void)SSL_CTX_set_session_cache_mode(plain_c, SSL_SESS_CACHE_OFF);
	}
	if (ratls_ident_make(&io, &id1, why, sizeof(why)) != CVM_OK ||
	    ratls_ident_make(&io, &id2, why, sizeof(why)) != CVM_OK) {
		fprintf(stderr, "%s: cannot make the RA-TLS certificates: %s\n", PROG, why);
		goto out;
	}
	if (ratls_sim_verifier(sim, 0, (int64_t)time(NULL), &warm_v, why, sizeof(why)) != CVM_OK ||
	    ratls_sim_verifier(sim, 1, (int64_t)time(NULL), &cold_v, why, sizeof(why)) != CVM_OK) {
		fprintf(stderr, "%s: cannot make the verifiers: %s\n", PROG, why);
		goto out;
	}
	if (cvm_tls_server_ctx_new(id1.chain_pem, id1.key, NULL, &ra_s1) != CVM_OK ||
	    cvm_tls_server_ctx_new(id2.chain_pem, id2.key, NULL, &ra_s2) != CVM_OK ||
	    cvm_tls_client_ctx_new(warm_v, NULL, NULL, &warm_c) != CVM_OK ||
	    cvm_tls_client_ctx_new(cold_v, NULL, NULL, &cold_c) != CVM_OK) {
		fprintf(stderr, "%s: cannot make the RA-TLS contexts\n", PROG);
		goto out;
	}

	/* Warm-up, untimed: one handshake of each kind. */
	if (!handshake(plain_s, plain_c, NULL, NULL) || !handshake(ra_s1, warm_c, NULL, NULL) ||
	    !handshake(ra_s2, cold_c, NULL, NULL)) {
		fprintf(stderr, "%s: the warm-up handshakes failed\n", PROG);
		goto out;
	}

	/* The three runs are interleaved in ROUNDS rounds, so that a change
	 * of the machine's load (it is shared) falls on all three alike. */
	for (unsigned long round = 0; round < ROUNDS; round++) {
		unsigned long lo = count * round / ROUNDS, hi = count * (round + 1) / ROUNDS;

		t0 = now_s();
		for (unsigned long i = lo; i < hi; i++)
			if (!handshake(plain_s, plain_c, NULL, NULL)) {
				fprintf(stderr, "%s: plain handshake %lu failed\n", PROG, i);
				goto out;
			}
		plain_t += now_s() - t0;

		t0 = now_s();
		for (unsigned long i = lo; i < hi; i++)
			if (!handshake(ra_s1, warm_c, NULL, NULL)) {
				fprintf(stderr, "%s: RA-TLS (warm) handshake %lu failed\n", PROG, i);
				goto out;
			}
		warm_t += now_s() - t0;

		/* The warm-up checked ra_s2's certificate last; the
		 * certificate presented alternates with the global index i
		 * (ra_s1 first), so the one-verdict cache never holds it
		 * (asserted below). */
		t0 = now_s();
		for (unsigned long i = lo; i < hi; i++) {
			SSL *cs = NULL, *ss = NULL;
			const struct cvm_ratls_verdict *v;
			bool cached;

			if (!handshake((i & 1) == 0 ? ra_s1 : ra_s2, cold_c, &cs, &ss)) {
				fprintf(stderr, "%s: RA-TLS (cold) handshake %lu failed\n", PROG, i);
				goto out;
			}
			v = cvm_tls_peer_verdict(cs);
			cached = v == NULL || v->cached;
			SSL_free(cs);
			SSL_free(ss);
			if (cached) {
				fprintf(stderr, "%s: RA-TLS (cold) handshake %lu was served from the cache\n",
				        PROG, i);
				goto out;
			}
		}
		cold_t += now_s() - t0;
	}
	line("plain", count, plain_t, "");
	line("ratls_warm", count, warm_t, "");
	line("ratls_cold", count, cold_t, "");

	{
		BIO *b = BIO_new_mem_buf(id1.chain_pem, -1);
		X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		unsigned char *d = NULL;
		int n = x != NULL ? i2d_X509(x, &d) : -1;

		X509_free(x);
		BIO_free(b);
		if (n <= 0) {
			fprintf(stderr, "%s: cannot read the certificate\n", PROG);
			goto out;
		}
		leaf = d;
		leaf_len = (size_t)n;
	}
	{
		SSL *cs = NULL, *ss = NULL;

		if (!handshake(ra_s1, warm_c, &cs, &ss)) {
			fprintf(stderr, "%s: the fresh run's handshake failed\n", PROG);
			goto out;
		}
		t0 = now_s();
		for (unsigned long i = 0; i < fresh_count; i++) {
			uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN], cb[64], sb[64], *va = NULL;
			size_t va_len = 0;
			struct cvm_ratls_verdict fv;
			int r;

			r = cvm_random_bytes(nonce, sizeof(nonce));
			if (r == CVM_OK)
				r = cvm_tls_fresh_nonce(ss, nonce, sb);
			if (r == CVM_OK)
				r = ratls_fresh_answer(&id1, sb, &va, &va_len);
			if (r == CVM_OK)
				r = cvm_tls_fresh_nonce(cs, nonce, cb);
			if (r == CVM_OK)
				r = cvm_ratls_check_fresh(warm_v, leaf, leaf_len, va, va_len, cb,
				                          (int64_t)time(NULL), &fv, NULL);
			free(va);
			if (r != CVM_OK) {
				fprintf(stderr, "%s: fresh attestation %lu failed: %s\n", PROG, i,
				        cvm_strerror(r));
				SSL_free(cs);
				SSL_free(ss);
				goto out;
			}
		}
		fresh_t = now_s() - t0;
		SSL_free(cs);
		SSL_free(ss);
		line("fresh", fresh_count, fresh_t, "");
	}
	(void)snprintf(extra, sizeof(extra), "%.3f", warm_t / plain_t);
	printf(
	    "{\"platform\": \"%s\", \"profile\": \"%s\", \"warm_over_plain\": %s, \"cold_over_plain\": %.3f, "
	    "\"fresh_ms\": %.3f, \"target_warm_over_plain\": 1.3, \"met\": %s}\n",
	    io.platform == CVM_TEE_PLATFORM_SNP ? "snp" : "tdx", cvm_ratls_profile_name(io.profile), extra,
	    cold_t / plain_t, fresh_t * 1e3 / (double)fresh_count,
	    warm_t / plain_t <= 1.3 ? "true" : "false");
	rc = 0;
out:
	OPENSSL_free(leaf);
	SSL_CTX_free(plain_s);
	SSL_CTX_free(plain_c);
	SSL_CTX_free(ra_s1);
	SSL_CTX_free(ra_s2);
	SSL_CTX_free(warm_c);
	SSL_CTX_free(cold_c);
	cvm_ratls_verifier_free(warm_v);
	cvm_ratls_verifier_free(cold_v);
	ratls_ident_cleanup(&id1);
	ratls_ident_cleanup(&id2);
	cvm_p256_keypair_free(pkey);
	free(plain_pem);
	{
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			execlp("rm", "rm", "-rf", tmp, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			(void)waitpid(pid, &st, 0);
	}
	return rc;
}
