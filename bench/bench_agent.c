/* bench_agent: requests per second and latency percentiles of cvm-agentd
 * over its unix socket, with keep-alive connections (wrk cannot speak to a
 * unix socket, so this is a small client of our own).
 *
 *   bench_agent --socket PATH [--method GetQuote] [--clients 1] [--requests 2000] [--warmup 100]
 *
 * Each client is a thread with one connection that sends one request, reads
 * the whole reply (status line, headers, Content-Length body), checks it is
 * 200 with a JSON body, and sends the next. Latency is measured per request
 * (CLOCK_MONOTONIC); throughput is all requests over the wall time from the
 * common start to the last reply. Prints one JSON line. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX ((size_t)8 * 1024 * 1024)
#define CLIENTS_MAX 256

struct client {
	const char *socket_path;
	const char *request;
	size_t request_len;
	unsigned warmup, count;
	uint64_t *lat_ns;
	pthread_barrier_t *start;
	char *buf;
	bool ok;
	char err[160];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* exchange sends the request and reads one complete reply into c->buf. */
static bool exchange(struct client *c, int fd)
{
	size_t off = 0, len = 0, head = 0, body = 0;
	const char *end, *cl;

	while (off < c->request_len) {
		ssize_t n = write(fd, c->request + off, c->request_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)snprintf(c->err, sizeof(c->err), "write: %s", strerror(errno));
			return false;
		}
		off += (size_t)n;
	}
	for (;;) {
		ssize_t n;

		if (head != 0 && len >= head + body)
			break;
		if (len == REPLY_MAX) {
			(void)snprintf(c->err, sizeof(c->err), "reply too large");
			return false;
		}
		n = read(fd, c->buf + len, REPLY_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)snprintf(c->err, sizeof(c->err), "read: %s",
			               n == 0 ? "connection closed" : strerror(errno));
			return false;
		}
		len += (size_t)n;
		if (head == 0) {
			c->buf[len < REPLY_MAX ? len : REPLY_MAX - 1] = '\0';
			end = strstr(c->buf, "\r\n\r\n");
			if (end == NULL)
				continue;
			head = (size_t)(end - c->buf) + 4;
			cl = strcasestr(c->buf, "\r\nContent-Length:");
			if (cl == NULL || cl > end) {
				(void)snprintf(c->err, sizeof(c->err), "reply without Content-Length");
				return false;
			}
			body = strtoul(cl + 17, NULL, 10);
			if (strncmp(c->buf, "HTTP/1.1 200 ", 13) != 0) {
				(void)snprintf(c->err, sizeof(c->err), "status: %.40s", c->buf);
				return false;
			}
		}
	}
	if (len != head + body || body == 0 || (c->buf[head] != '{' && c->buf[head] != 'n')) {
		(void)snprintf(c->err, sizeof(c->err), "unexpected reply framing");
		return false;
	}
	return true;
}

static void *run_client(void *arg)
{
	struct client *c = arg;
	int fd = connect_unix(c->socket_path);

	c->ok = false;
	if (fd < 0) {
		(void)snprintf(c->err, sizeof(c->err), "connect %s: %s", c->socket_path, strerror(errno));
		(void)pthread_barrier_wait(c->start);
		return NULL;
	}
	for (unsigned i = 0; i < c->warmup; i++) {
		if (!exchange(c, fd))
			goto done;
	}
	(void)pthread_barrier_wait(c->start);
	for (unsigned i = 0; i < c->count; i++) {
		uint64_t t0 = now_ns();

		if (!exchange(c, fd))
			goto out;
		c->lat_ns[i] = now_ns() - t0;
	}
	c->ok = true;
	goto out;
done:
	(void)pthread_barrier_wait(c->start);
out:
	(void)close(fd);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	(void)fprintf(f, "usage: bench_agent --socket PATH [--method GetQuote|GetKey|Version] [--clients N]\n"
	                 "                   [--requests N] [--warmup N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"method", required_argument, NULL, 'm'},
	    {"clients", required_argument, NULL, 'c'},
	    {"requests", required_argument, NULL, 'n'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *method = "GetQuote", *body;
	unsigned clients = 1, count = 2000, warmup = 100;
	struct client *cl = NULL;
	pthread_t *th = NULL;
	pthread_barrier_t start;
	uint64_t *all = NULL, t0, wall;
	char request[512];
	size_t total;
	bool ok = true;
	int opt, n, rc = 1;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'm':
			method = optarg;
			break;
		case 'c':
			clients = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			count = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			warmup = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sock == NULL || clients == 0 || clients > CLIENTS_MAX || count == 0) {
		usage(stderr);
		return 2;
	}
	if (strcmp(method, "GetQuote") == 0)
		body = "{\"report_data\":\"0011223344556677\"}";
	else if (strcmp(method, "GetKey") == 0)
		body = "{\"path\":\"/bench\",\"purpose\":\"signing\",\"algorithm\":\"secp256k1\"}";
	else if (strcmp(method, "Version") == 0)
		body = "{}";
	else {
		(void)fprintf(stderr, "bench_agent: unknown method %s\n", method);
		return 2;
	}
	n = snprintf(request, sizeof(request),
	             "POST /%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
	             "application/json\r\nContent-Length: %zu\r\n"
	             "\r\n%s",
	             method, strlen(body), body);
	if (n < 0 || (size_t)n >= sizeof(request))
		return 1;
	cl = calloc(clients, sizeof(*cl));
	th = calloc(clients, sizeof(*th));
	all = calloc((size_t)clients * count, sizeof(*all));
	if (cl == NULL || th == NULL || all == NULL || pthread_barrier_init(&start, NULL, clients + 1) != 0)
		goto out;
	for (unsigned i = 0; i < clients; i++) {
		cl[i] = (struct client){
		    sock,   request,           (size_t)n, warmup, count, all + (size_t)i * count,
		    &start, malloc(REPLY_MAX), false,     ""};
		if (cl[i].buf == NULL || pthread_create(&th[i], NULL, run_client, &cl[i]) != 0) {
			(void)fprintf(stderr, "bench_agent: cannot start client %u\n", i);
			exit(1);
		}
	}
	(void)pthread_barrier_wait(&start);
	t0 = now_ns();
	for (unsigned i = 0; i < clients; i++)
		(void)pthread_join(th[i], NULL);
	wall = now_ns() - t0;
	for (unsigned i = 0; i < clients; i++) {
		if (!cl[i].ok) {
			(void)fprintf(stderr, "bench_agent: client %u: %s\n", i, cl[i].err);
			ok = false;
		}
		free(cl[i].buf);
	}
	total = (size_t)clients * count;
	qsort(all, total, sizeof(*all), cmp_u64);
	(void)printf(
	    "{\"method\": \"%s\", \"clients\": %u, \"requests\": %zu, \"seconds\": %.6f, "
	    "\"per_second\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"ok\": %s}\n",
	    method, clients, total, (double)wall / 1e9, (double)total / ((double)wall / 1e9),
	    (double)all[total / 2] / 1e3, (double)all[(total * 99) / 100] / 1e3, (double)all[total - 1] / 1e3,
	    ok ? "true" : "false");
	rc = ok ? 0 : 1;
	(void)pthread_barrier_destroy(&start);
out:
	free(all);
	free(th);
	free(cl);
	return rc;
}
