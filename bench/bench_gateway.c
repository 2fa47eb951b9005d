/* bench_gateway: passthrough throughput through a TLS-routing proxy
 * (scripts/bench-gateway.sh runs it against cvm-gatewayd and haproxy in
 * the same run).
 *
 *   bench_gateway pass PROXY_PORT SNI SINK_PORT CONNECTIONS SECONDS
 *
 * It listens on 127.0.0.1:SINK_PORT (the backend the proxy passes to),
 * opens CONNECTIONS connections to 127.0.0.1:PROXY_PORT, sends on each a
 * TLS ClientHello naming SNI (what the proxy routes by) and then streams
 * bytes as fast as the proxy takes them; the sink counts what arrives over
 * SECONDS after a one-second warm-up and prints one JSON line. Neither end
 * does TLS after the hello: the proxy's relay is what is measured, not the
 * client's or the app's ciphers. */
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

#define CHUNK (256 * 1024)
#define CONNS_MAX 64

static atomic_ullong received;
static atomic_bool stop;
static uint8_t hello[512];
static size_t hello_len;

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

int main(int argc, char **argv)
{
	pthread_t sink, clients[CONNS_MAX];
	struct sockaddr_in sa;
	int lfd, one = 1, conns, seconds;
	uint16_t proxy_port, sink_port;
	unsigned long long start_bytes, end_bytes;
	double t0, t1;

	if (argc != 7 || strcmp(argv[1], "pass") != 0) {
		(void)fprintf(stderr,
		              "usage: bench_gateway pass PROXY_PORT SNI SINK_PORT CONNECTIONS SECONDS\n");
		return 2;
	}
	proxy_port = (uint16_t)atoi(argv[2]);
	sink_port = (uint16_t)atoi(argv[4]);
	conns = atoi(argv[5]);
	seconds = atoi(argv[6]);
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
