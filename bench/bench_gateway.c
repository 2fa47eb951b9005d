/* bench_gateway: passthrough throughput through a TLS-routing proxy
 * (scripts/bench-gateway.sh runs it against cvm-gatewayd and haproxy in
 * the same run).
 *
 *   bench_gateway pass PROXY_PORT SNI SINK_PORT CONNECTIONS SECONDS
 *   bench_gateway register RPC_PORT CA_PEM DIR FIRST COUNT CONCURRENCY
 *
 * It listens on 127.0.0.1:SINK_PORT (the backend the proxy passes to),
 * opens CONNECTIONS connections to 127.0.0.1:PROXY_PORT, sends on each a
 * TLS ClientHello naming SNI (what the proxy routes by) and then streams
 * bytes as fast as the proxy takes them; the sink counts what arrives over
 * SECONDS after a one-second warm-up and prints one JSON line. Neither end
 * does TLS after the hello: the proxy's relay is what is measured, not the
 * client's or the app's ciphers.
 *
 * register: COUNT registrations (Gateway.RegisterCvm) by CONCURRENCY
 * threads, each a new mutual-TLS connection with its own CVM certificate
 * (DIR/c<i>.pem, DIR/k<i>.pem, i from FIRST) and WireGuard key
 * (DIR/w<i>.txt), as CVMs register: prints the registrations per second.
 * Every answer must be 200. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define CHUNK (256 * 1024)
#define CONNS_MAX 64

static atomic_ullong received;
static atomic_bool stop;
static uint8_t hello[512];
static size_t hello_len;

/* num reads a decimal in [0, max]; -1 when it is not one. */
static long num(const char *s, long max)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
		return -1;
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* make_hello writes a minimal TLS 1.2-style ClientHello with one cipher
 * suite and the server_name extension. */
static int make_hello(const char *sni)
{
	size_t n = strlen(sni), ext_len = 9 + n, body, off = 0;
	uint8_t *p = hello;

	if (n == 0 || n > 200)
		return -1;
	body = 2 + 32 + 1 + 4 + 2 + 2 + ext_len;
	p[off++] = 0x16;
	p[off++] = 3;
	p[off++] = 1;
	put16(p + off, body + 4);
	off += 2;
	p[off++] = 1; /* client_hello */
	p[off++] = 0;
	put16(p + off, body);
	off += 2;
	p[off++] = 3;
	p[off++] = 3;
	for (size_t i = 0; i < 32; i++)
		p[off++] = (uint8_t)(i * 7 + 1);
	p[off++] = 0;      /* session id */
	put16(p + off, 2); /* cipher suites */
	off += 2;
	p[off++] = 0x13; /* TLS_AES_128_GCM_SHA256 */
	p[off++] = 0x01;
	p[off++] = 1; /* compression methods */
	p[off++] = 0;
	put16(p + off, ext_len);
	off += 2;
	put16(p + off, 0); /* server_name */
	off += 2;
	put16(p + off, n + 5);
	off += 2;
	put16(p + off, n + 3);
	off += 2;
	p[off++] = 0; /* host_name */
	put16(p + off, n);
	off += 2;
	memcpy(p + off, sni, n);
	off += n;
	hello_len = off;
	return 0;
}

static void *sink_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t *buf = malloc(CHUNK);

	while (buf != NULL) {
		ssize_t n = recv(fd, buf, CHUNK, 0);

		if (n <= 0)
			break;
		atomic_fetch_add(&received, (unsigned long long)n);
	}
	free(buf);
	(void)close(fd);
	return NULL;
}

static void *sink_main(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		pthread_t th;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (pthread_create(&th, NULL, sink_conn, (void *)(intptr_t)fd) != 0)
			(void)close(fd);
		else
			(void)pthread_detach(th);
	}
}

static void *client_main(void *arg)
{
	uint16_t port = (uint16_t)(uintptr_t)arg;
	struct sockaddr_in sa;
	uint8_t *buf = calloc(1, CHUNK);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (buf == NULL || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		(void)fprintf(stderr, "bench_gateway: cannot connect to port %u: %s\n", (unsigned)port,
		              strerror(errno));
		exit(1);
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (send(fd, hello, hello_len, MSG_NOSIGNAL) != (ssize_t)hello_len) {
		(void)fprintf(stderr, "bench_gateway: the proxy closed the connection at the hello\n");
		exit(1);
	}
	while (!atomic_load(&stop)) {
		if (send(fd, buf, CHUNK, MSG_NOSIGNAL) < 0) {
			(void)fprintf(stderr, "bench_gateway: the proxy closed a connection: %s\n",
			              strerror(errno));
			exit(1);
		}
	}
	(void)close(fd);
	free(buf);
	return NULL;
}

/* --- register --- */

static const char *reg_dir;
static uint16_t reg_port;
static SSL_CTX *reg_base;
static atomic_int reg_next, reg_done, reg_failed;
static int reg_first, reg_end;

static bool read_text(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(out, 1, cap - 1, f);
	(void)fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	return n > 0;
}

static bool register_one(int i)
{
	char path[600], key[128], body[200], req[512], resp[2048];
	struct sockaddr_in sa;
	SSL *ssl = NULL;
	int fd = -1, n, len = 0;
	bool ok = false;

	(void)snprintf(path, sizeof(path), "%s/w%d.txt", reg_dir, i);
	if (!read_text(path, key, sizeof(key)))
		return false;
	ssl = SSL_new(reg_base);
	(void)snprintf(path, sizeof(path), "%s/c%d.pem", reg_dir, i);
	if (ssl == NULL || SSL_use_certificate_chain_file(ssl, path) != 1)
		goto out;
	(void)snprintf(path, sizeof(path), "%s/k%d.pem", reg_dir, i);
	if (SSL_use_PrivateKey_file(ssl, path, SSL_FILETYPE_PEM) != 1)
		goto out;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(reg_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_connect(ssl) != 1)
		goto out;
	n = snprintf(body, sizeof(body), "{\"client_public_key\":\"%s\"}", key);
	n = snprintf(
	    req, sizeof(req),
	    "POST /prpc/Gateway.RegisterCvm HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
	    "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
	    n, body);
	if (SSL_write(ssl, req, n) != n)
		goto out;
	while (len < (int)sizeof(resp) - 1 &&
	       (n = SSL_read(ssl, resp + len, (int)sizeof(resp) - 1 - len)) > 0)
		len += n;
	resp[len] = '\0';
	ok = strncmp(resp, "HTTP/1.1 200", 12) == 0;
	if (!ok)
		(void)fprintf(stderr, "bench_gateway: registration %d: %.200s\n", i, resp);
out:
	SSL_free(ssl);
	if (fd >= 0)
		(void)close(fd);
	ERR_clear_error();
	return ok;
}

static void *register_main(void *arg)
{
	(void)arg;
	for (;;) {
		int i = atomic_fetch_add(&reg_next, 1);

		if (i >= reg_end)
			return NULL;
		if (register_one(i))
			atomic_fetch_add(&reg_done, 1);
		else
			atomic_fetch_add(&reg_failed, 1);
	}
}

static int run_register(int argc, char **argv)
{
	pthread_t th[CONNS_MAX];
	int count, conc;
	double t0, t1;

	if (argc != 8) {
		(void)fprintf(stderr,
		              "usage: bench_gateway register RPC_PORT CA_PEM DIR FIRST COUNT CONCURRENCY\n");
		return 2;
	}
	reg_port = (uint16_t)num(argv[2], 65535);
	reg_dir = argv[4];
	reg_first = (int)num(argv[5], 10000000);
	count = (int)num(argv[6], 10000000);
	conc = (int)num(argv[7], CONNS_MAX);
	if (count < 1 || conc < 1 || reg_first < 0 || num(argv[2], 65535) < 1) {
		(void)fprintf(stderr, "bench_gateway: COUNT >= 1, CONCURRENCY 1..%d\n", CONNS_MAX);
		return 2;
	}
	reg_base = SSL_CTX_new(TLS_client_method());
	if (reg_base == NULL || SSL_CTX_load_verify_locations(reg_base, argv[3], NULL) != 1) {
		(void)fprintf(stderr, "bench_gateway: cannot load %s\n", argv[3]);
		return 1;
	}
	SSL_CTX_set_verify(reg_base, SSL_VERIFY_PEER, NULL);
	atomic_store(&reg_next, reg_first);
	reg_end = reg_first + count;
	t0 = now_s();
	for (int i = 0; i < conc; i++)
		if (pthread_create(&th[i], NULL, register_main, NULL) != 0)
			return 1;
	for (int i = 0; i < conc; i++)
		(void)pthread_join(th[i], NULL);
	t1 = now_s();
	(void)printf(
	    "{\"mode\":\"register\",\"concurrency\":%d,\"registrations\":%d,\"failed\":%d,\"seconds\":%.3f,"
	    "\"per_s\":%.0f}\n",
	    conc, atomic_load(&reg_done), atomic_load(&reg_failed), t1 - t0,
	    (double)atomic_load(&reg_done) / (t1 - t0));
	SSL_CTX_free(reg_base);
	return atomic_load(&reg_failed) == 0 ? 0 : 1;
}

/* --- renew: registrations on kept connections ---
 *
 * Each of CONCURRENCY threads is one CVM (identity FIRST + thread) on one
 * kept-alive mutual-TLS connection, registering again and again with a
 * fresh WireGuard key each time (a key change: the old peer goes, the new
 * one comes): the registration path itself, without a TLS handshake per
 * call, as upstream's load test measured it. */

static atomic_int renew_left;

static bool read_reply(SSL *ssl, char *buf, size_t cap)
{
	size_t len = 0, body = 0, need = 0;
	char *end = NULL;

	for (;;) {
		int n = SSL_read(ssl, buf + len, (int)(cap - 1 - len));

		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strstr(buf, "Content-Length: ");

			if (cl == NULL)
				return false;
			body = (size_t)strtoul(cl + 16, NULL, 10);
			need = (size_t)(end + 4 - buf) + body;
		}
		if (end != NULL && len >= need)
			return strncmp(buf, "HTTP/1.1 200", 12) == 0;
		if (len >= cap - 1)
			return false;
	}
}

static void *renew_main(void *arg)
{
	int id = (int)(intptr_t)arg;
	char path[600], req[512], body[200], resp[4096], key[64];
	struct sockaddr_in sa;
	SSL *ssl = SSL_new(reg_base);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)snprintf(path, sizeof(path), "%s/c%d.pem", reg_dir, id);
	if (ssl == NULL || SSL_use_certificate_chain_file(ssl, path) != 1)
		goto fail;
	(void)snprintf(path, sizeof(path), "%s/k%d.pem", reg_dir, id);
	if (SSL_use_PrivateKey_file(ssl, path, SSL_FILETYPE_PEM) != 1)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(reg_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_connect(ssl) != 1)
		goto fail;
	while (atomic_fetch_sub(&renew_left, 1) > 0) {
		uint8_t raw[32];
		static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		int n;

		if (getentropy(raw, sizeof(raw)) != 0)
			goto fail;
		for (int i = 0, o = 0; i < 30; i += 3) {
			uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];

			key[o++] = b64[v >> 18];
			key[o++] = b64[(v >> 12) & 63];
			key[o++] = b64[(v >> 6) & 63];
			key[o++] = b64[v & 63];
		}
		{
			uint32_t v = (uint32_t)raw[30] << 16 | (uint32_t)raw[31] << 8;

			key[40] = b64[v >> 18];
			key[41] = b64[(v >> 12) & 63];
			key[42] = b64[(v >> 6) & 63];
			key[43] = '=';
			key[44] = '\0';
		}
		n = snprintf(body, sizeof(body), "{\"client_public_key\":\"%s\"}", key);
		n = snprintf(req, sizeof(req),
		             "POST /prpc/Gateway.RegisterCvm HTTP/1.1\r\nHost: gw\r\nContent-Type: "
		             "application/json\r\nContent-Length: %d\r\n\r\n%s",
		             n, body);
		if (SSL_write(ssl, req, n) != n || !read_reply(ssl, resp, sizeof(resp))) {
			(void)fprintf(stderr, "bench_gateway: renewal by identity %d: %.200s\n", id, resp);
			atomic_fetch_add(&reg_failed, 1);
			break;
		}
		atomic_fetch_add(&reg_done, 1);
	}
	SSL_free(ssl);
	(void)close(fd);
	return NULL;
fail:
	(void)fprintf(stderr, "bench_gateway: identity %d cannot connect\n", id);
	atomic_fetch_add(&reg_failed, 1);
	SSL_free(ssl);
	if (fd >= 0)
		(void)close(fd);
	return NULL;
}

static int run_renew(int argc, char **argv)
{
	pthread_t th[CONNS_MAX];
	int count, conc, first;
	double t0, t1;

	if (argc != 8) {
		(void)fprintf(stderr,
		              "usage: bench_gateway renew RPC_PORT CA_PEM DIR FIRST COUNT CONCURRENCY\n");
		return 2;
	}
	reg_port = (uint16_t)num(argv[2], 65535);
	reg_dir = argv[4];
	first = (int)num(argv[5], 10000000);
	count = (int)num(argv[6], 10000000);
	conc = (int)num(argv[7], CONNS_MAX);
	if (count < 1 || conc < 1 || first < 0 || num(argv[2], 65535) < 1) {
		(void)fprintf(stderr, "bench_gateway: COUNT >= 1, CONCURRENCY 1..%d\n", CONNS_MAX);
		return 2;
	}
	reg_base = SSL_CTX_new(TLS_client_method());
	if (reg_base == NULL || SSL_CTX_load_verify_locations(reg_base, argv[3], NULL) != 1) {
		(void)fprintf(stderr, "bench_gateway: cannot load %s\n", argv[3]);
		return 1;
	}
	SSL_CTX_set_verify(reg_base, SSL_VERIFY_PEER, NULL);
	atomic_store(&renew_left, count);
	t0 = now_s();
	for (int i = 0; i < conc; i++)
		if (pthread_create(&th[i], NULL, renew_main, (void *)(intptr_t)(first + i)) != 0)
			return 1;
	for (int i = 0; i < conc; i++)
		(void)pthread_join(th[i], NULL);
	t1 = now_s();
	(void)printf(
	    "{\"mode\":\"renew\",\"concurrency\":%d,\"registrations\":%d,\"failed\":%d,\"seconds\":%.3f,"
	    "\"per_s\":%.0f}\n",
	    conc, atomic_load(&reg_done), atomic_load(&reg_failed), t1 - t0,
	    (double)atomic_load(&reg_done) / (t1 - t0));
	SSL_CTX_free(reg_base);
	return atomic_load(&reg_failed) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	pthread_t sink, clients[CONNS_MAX];
	struct sockaddr_in sa;
	int lfd, one = 1, conns, seconds;
	uint16_t proxy_port, sink_port;
	unsigned long long start_bytes, end_bytes;
	double t0, t1;

	if (argc >= 2 && strcmp(argv[1], "register") == 0)
		return run_register(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "renew") == 0)
		return run_renew(argc, argv);
	if (argc != 7 || strcmp(argv[1], "pass") != 0) {
		(void)fprintf(stderr,
		              "usage: bench_gateway pass PROXY_PORT SNI SINK_PORT CONNECTIONS SECONDS\n");
		return 2;
	}
	proxy_port = (uint16_t)num(argv[2], 65535);
	sink_port = (uint16_t)num(argv[4], 65535);
	conns = (int)num(argv[5], CONNS_MAX);
	seconds = (int)num(argv[6], 86400);
	if (conns < 1 || conns > CONNS_MAX || seconds < 1 || make_hello(argv[3]) != 0) {
		(void)fprintf(stderr,
		              "bench_gateway: 1..%d connections, >= 1 second, an SNI of 1..200 bytes\n",
		              CONNS_MAX);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(sink_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 128) != 0 ||
	    pthread_create(&sink, NULL, sink_main, (void *)(intptr_t)lfd) != 0) {
		(void)fprintf(stderr, "bench_gateway: cannot listen on port %u: %s\n", (unsigned)sink_port,
		              strerror(errno));
		return 1;
	}
	for (int i = 0; i < conns; i++)
		if (pthread_create(&clients[i], NULL, client_main, (void *)(uintptr_t)proxy_port) != 0)
			return 1;
	(void)sleep(1);
	start_bytes = atomic_load(&received);
	t0 = now_s();
	(void)sleep((unsigned)seconds);
	end_bytes = atomic_load(&received);
	t1 = now_s();
	atomic_store(&stop, true);
	if (end_bytes == start_bytes) {
		(void)fprintf(stderr,
		              "bench_gateway: nothing reached the sink: the proxy did not pass the bytes\n");
		return 1;
	}
	(void)printf(
	    "{\"mode\":\"pass\",\"connections\":%d,\"seconds\":%.2f,\"bytes\":%llu,\"mib_per_s\":%.1f}\n",
	    conns, t1 - t0, end_bytes - start_bytes,
	    (double)(end_bytes - start_bytes) / (t1 - t0) / 1048576.0);
	(void)fflush(stdout);
	_exit(0); /* the client threads are blocked in send */
}
