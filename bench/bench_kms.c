/* bench_kms: cvm-kmsd's GetAppKey end to end, as a CVM asks for its keys
 * (scripts/bench-kms.sh starts the KMS and the simulated CVMs).
 *
 * One request = a new TCP connection, a TLS 1.3 handshake in which the
 * client checks the KMS's RA-TLS certificate and presents its own (mutual
 * RA-TLS; the KMS checks it with its warm verifier), POST
 * /prpc/KMS.<method>, the whole answer read, the connection closed. Every
 * answer must be 200 with the fields the method returns, or the run fails.
 * `--threads T` runs T clients at once; latencies of every request give p50
 * and p99, requests over wall time the rate.
 *
 *   --in-process ROOT_DIR   instead: cvm_kms_app_keys in a loop (the
 *                           derivation alone, what a key process does)
 *
 * Output: one JSON line. */
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/file.h>
#include <cvmkit/kms.h>
#include <cvmkit/policy.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tls.h>

#define THREADS_MAX 16
#define REPLY_MAX (256 * 1024)

struct opts {
	const char *host, *port, *method, *cert, *key, *collateral, *root[2], *ca, *in_process;
	size_t root_count;
	unsigned count, threads;
};

struct shared {
	const struct opts *o;
	SSL_CTX *ctx;
	double *lat; /* ms, one per request */
	unsigned next;
	int failed;
	char why[256];
	pthread_mutex_t mu;
};

static double now_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints, *res = NULL;
	int fd = -1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
	if (fd >= 0) {
		int one = 1;

		/* the request follows the handshake's last flight: without this,
		 * Nagle holds it until that flight is acknowledged (delayed ACK) */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		(void)close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* one_request returns NULL or why it failed. */
static const char *one_request(struct shared *s, char *buf)
{
	char req[256];
	SSL *ssl = NULL;
	int fd, n, len = 0;
	const char *why = NULL;

	fd = dial(s->o->host, s->o->port);
	if (fd < 0)
		return "cannot connect";
	ssl = SSL_new(s->ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
		why = "the TLS handshake failed";
		goto out;
	}
	n = snprintf(req, sizeof(req),
	             "POST /prpc/KMS.%s?json HTTP/1.1\r\nHost: kms\r\nContent-Type: application/json\r\n"
	             "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
	             s->o->method);
	if (SSL_write(ssl, req, n) != n) {
		why = "cannot send";
		goto out;
	}
	for (;;) {
		n = SSL_read(ssl, buf + len, REPLY_MAX - 1 - len);
		if (n <= 0)
			break;
		len += n;
		if (len >= REPLY_MAX - 1)
			break;
	}
	buf[len] = '\0';
	if (len < 12 || strncmp(buf, "HTTP/1.1 200", 12) != 0)
		why = "the answer is not 200";
	else if (strcmp(s->o->method, "GetAppKey") == 0 && strstr(buf, "\"disk_crypt_key\":\"") == NULL)
		why = "the answer has no disk_crypt_key";
	else if (strcmp(s->o->method, "GetMeta") == 0 && strstr(buf, "\"k256_pubkey\"") == NULL)
		why = "the answer has no k256_pubkey";
	cvm_wipe(buf, (size_t)len);
out:
	if (ssl != NULL) {
		(void)SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	(void)close(fd);
	ERR_clear_error();
	return why;
}

static void *worker(void *arg)
{
	struct shared *s = arg;
	char *buf = malloc(REPLY_MAX);

	if (buf == NULL)
		return NULL;
	for (;;) {
		unsigned i;
		double t0;
		const char *why;

		pthread_mutex_lock(&s->mu);
		i = s->next++;
		pthread_mutex_unlock(&s->mu);
		if (i >= s->o->count || s->failed)
			break;
		t0 = now_s();
		why = one_request(s, buf);
		s->lat[i] = (now_s() - t0) * 1000.0;
		if (why != NULL) {
			pthread_mutex_lock(&s->mu);
			if (!s->failed)
				(void)snprintf(s->why, sizeof(s->why), "request %u: %s", i, why);
			s->failed = 1;
			pthread_mutex_unlock(&s->mu);
			break;
		}
	}
	free(buf);
	return NULL;
}

static uint8_t *read_der(const char *path, size_t *len)
{
	uint8_t *buf = NULL;
	struct cvm_cert **certs = NULL;
	size_t n = 0;
	const uint8_t *d;
	uint8_t *out;

	if (cvm_file_read(path, 1 << 20, &buf, len) != CVM_OK)
		return NULL;
	if (cvm_certs_parse_pem(buf, *len, &certs, &n) != CVM_OK || n == 0)
		return buf; /* DER already */
	cvm_cert_der(certs[0], &d, len);
	out = malloc(*len);
	if (out != NULL)
		memcpy(out, d, *len);
	cvm_certs_free(certs, n);
	free(buf);
	return out;
}

static int make_ctx(const struct opts *o, struct cvm_ratls_verifier **v, SSL_CTX **ctx)
{
	struct cvm_ratls_verifier_opts vo;
	struct cvm_policy pol;
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_p256_keypair *kp = NULL;
	uint8_t *root[2] = {NULL, NULL}, *ca = NULL, *chain = NULL, *keyb = NULL;
	size_t root_len[2] = {0, 0}, ca_len = 0, chain_len = 0, key_len = 0;
	char path[4096], err[256];
	int r;

	cvm_policy_init(&pol);
	memset(&vo, 0, sizeof(vo));
	vo.policy = &pol;
	(void)snprintf(path, sizeof(path), "%s/tdx", o->collateral);
	r = cvm_dcap_collateral_load_dir(path, &dcap, err, sizeof(err));
	if (r == CVM_OK) {
		(void)snprintf(path, sizeof(path), "%s/snp", o->collateral);
		r = cvm_amd_collateral_load_dir(path, &amd, err, sizeof(err));
	}
	for (size_t i = 0; i < o->root_count && r == CVM_OK; i++) {
		struct cvm_cert *c = NULL;

		root[i] = read_der(o->root[i], &root_len[i]);
		if (root[i] == NULL || cvm_cert_parse(root[i], root_len[i], &c) != CVM_OK) {
			r = CVM_E_FORMAT;
			break;
		}
		if (cvm_cert_key_type(c, NULL) == CVM_KEY_RSA) {
			vo.amd_root_der = root[i];
			vo.amd_root_der_len = root_len[i];
		} else {
			vo.intel_root_der = root[i];
			vo.intel_root_der_len = root_len[i];
		}
		cvm_cert_free(c);
	}
	if (r == CVM_OK && o->ca != NULL) {
		ca = read_der(o->ca, &ca_len);
		r = ca != NULL ? CVM_OK : CVM_E_FORMAT;
	}
	if (r == CVM_OK) {
		const uint8_t *cas[1] = {ca};

		vo.dcap = dcap;
		vo.amd = amd;
		vo.ca_der = ca != NULL ? cas : NULL;
		vo.ca_der_len = ca != NULL ? &ca_len : NULL;
		vo.ca_count = ca != NULL ? 1 : 0;
		r = cvm_ratls_verifier_new(&vo, (int64_t)time(NULL), v);
	}
	if (r == CVM_OK && o->cert != NULL) {
		r = cvm_file_read(o->cert, 1 << 20, &chain, &chain_len);
		if (r == CVM_OK)
			r = cvm_file_read(o->key, 1 << 16, &keyb, &key_len);
		if (r == CVM_OK)
			r = cvm_p256_keypair_from_pem((const char *)keyb, key_len, &kp);
		if (r == CVM_OK) {
			uint8_t *t = realloc(chain, chain_len + 1);

			r = t != NULL ? CVM_OK : CVM_E_NOMEM;
			if (t != NULL) {
				chain = t;
				chain[chain_len] = '\0';
			}
		}
	}
	if (r == CVM_OK)
		r = cvm_tls_client_ctx_new(*v, (const char *)chain, kp, ctx);
	if (r != CVM_OK)
		(void)fprintf(stderr, "bench_kms: cannot set up the client: %s\n", cvm_strerror(r));
	free(root[0]);
	free(root[1]);
	free(ca);
	free(chain);
	if (keyb != NULL)
		cvm_freezero(keyb, key_len);
	cvm_p256_keypair_free(kp);
	cvm_dcap_collateral_free(dcap);
	cvm_amd_collateral_free(amd);
	return r;
}

static int in_process(const struct opts *o)
{
	struct cvm_kms_roots *roots = NULL;
	struct cvm_kms_app_keys k;
	uint8_t app_id[CVM_APP_ID_LEN] = {0x11}, iid[CVM_INSTANCE_ID_LEN] = {0x22};
	char err[256] = "";
	double t0, t;
	int r = cvm_kms_roots_load(o->in_process, 0, &roots, err, sizeof(err));

	if (r != CVM_OK) {
		(void)fprintf(stderr, "bench_kms: %s\n", err);
		return 1;
	}
	t0 = now_s();
	for (unsigned i = 0; i < o->count && r == CVM_OK; i++) {
		app_id[1] = (uint8_t)i;
		memset(&k, 0, sizeof(k));
		r = cvm_kms_app_keys_some(roots, app_id, iid, sizeof(iid), 0,
		                          CVM_KMS_KEY_DISK | CVM_KMS_KEY_ENV | CVM_KMS_KEY_K256, &k);
		cvm_kms_app_keys_cleanup(&k);
	}
	t = now_s() - t0;
	cvm_kms_roots_free(roots);
	(void)printf("{\"run\": \"in-process\", \"what\": \"cvm_kms_app_keys_some (GetAppKey's keys)\", "
	             "\"count\": %u, \"seconds\": %.6f, "
	             "\"per_second\": %.1f, \"ok\": %s}\n",
	             o->count, t, (double)o->count / t, r == CVM_OK ? "true" : "false");
	return r == CVM_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"target", required_argument, NULL, 't'},
	    {"method", required_argument, NULL, 'm'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"collateral", required_argument, NULL, 'C'},
	    {"root", required_argument, NULL, 'r'},
	    {"ca", required_argument, NULL, 'a'},
	    {"count", required_argument, NULL, 'n'},
	    {"threads", required_argument, NULL, 'T'},
	    {"in-process", required_argument, NULL, 'I'},
	    {NULL, 0, NULL, 0},
	};
	static char target[300];
	struct opts o;
	struct shared s;
	struct cvm_ratls_verifier *v = NULL;
	pthread_t th[THREADS_MAX];
	double t0, wall;
	char *colon;
	int opt;

	memset(&o, 0, sizeof(o));
	o.method = "GetAppKey";
	o.count = 1000;
	o.threads = 1;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 't':
			(void)snprintf(target, sizeof(target), "%s", optarg);
			colon = strrchr(target, ':');
			if (colon == NULL)
				return 2;
			*colon = '\0';
			o.host = target;
			o.port = colon + 1;
			break;
		case 'm':
			o.method = optarg;
			break;
		case 'c':
			o.cert = optarg;
			break;
		case 'k':
			o.key = optarg;
			break;
		case 'C':
			o.collateral = optarg;
			break;
		case 'r':
			if (o.root_count < 2)
				o.root[o.root_count++] = optarg;
			break;
		case 'a':
			o.ca = optarg;
			break;
		case 'n':
			o.count = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'T':
			o.threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'I':
			o.in_process = optarg;
			break;
		default:
			return 2;
		}
	}
	if (o.count == 0 || o.threads == 0 || o.threads > THREADS_MAX)
		return 2;
	if (o.in_process != NULL)
		return in_process(&o);
	if (o.host == NULL || o.collateral == NULL || (o.cert == NULL) != (o.key == NULL))
		return 2;
	memset(&s, 0, sizeof(s));
	s.o = &o;
	pthread_mutex_init(&s.mu, NULL);
	if (make_ctx(&o, &v, &s.ctx) != CVM_OK)
		return 1;
	s.lat = calloc(o.count, sizeof(double));
	if (s.lat == NULL)
		return 1;
	/* warm-up: the KMS's verifier and both sides' caches */
	{
		char *buf = malloc(REPLY_MAX);
		const char *why = buf != NULL ? one_request(&s, buf) : "out of memory";

		free(buf);
		if (why != NULL) {
			(void)printf("{\"run\": \"%s\", \"ok\": false, \"why\": \"warm-up: %s\"}\n", o.method,
			             why);
			return 1;
		}
	}
	t0 = now_s();
	for (unsigned i = 0; i < o.threads; i++)
		(void)pthread_create(&th[i], NULL, worker, &s);
	for (unsigned i = 0; i < o.threads; i++)
		(void)pthread_join(th[i], NULL);
	wall = now_s() - t0;
	if (s.failed) {
		(void)printf("{\"run\": \"%s\", \"ok\": false, \"why\": \"%s\"}\n", o.method, s.why);
		return 1;
	}
	qsort(s.lat, o.count, sizeof(double), cmp_d);
	(void)printf(
	    "{\"run\": \"%s\", \"mutual\": %s, \"threads\": %u, \"count\": %u, \"seconds\": %.6f, "
	    "\"per_second\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"ok\": true}\n",
	    o.method, o.cert != NULL ? "true" : "false", o.threads, o.count, wall, (double)o.count / wall,
	    s.lat[o.count / 2], s.lat[(size_t)((double)o.count * 0.99)], s.lat[o.count - 1]);
	SSL_CTX_free(s.ctx);
	cvm_ratls_verifier_free(v);
	free(s.lat);
	return 0;
}
