/* bench_eventlog: event log replay speed and memory, and the large logs to
 * measure them on. Uses the public API only; see bench/README.md.
 *
 *   bench_eventlog --make SRC --events N --out FILE
 *       writes a log of N events built from the real log SRC: SRC's first
 *       event (the Spec ID event of a crypto-agile log), then SRC's other
 *       events, byte for byte, over and over (EV_NO_ACTION events are left
 *       out: a second StartupLocality would make the log invalid). Each
 *       event stays a valid event; the log is valid for any parser.
 *   bench_eventlog --log FILE [--count K]
 *       replays FILE K times through cvm_evl_replay_fd (one untimed run
 *       first) and prints one JSON line: events per second, and the
 *       process's maximum resident set size. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/file.h>

#define PROG "bench_eventlog"
#define SRC_MAX ((size_t)16 << 20)
#define COUNT_MAX 1000000ul
#define EVENTS_MAX 50000000ul

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s --make SRC --events N --out FILE\n"
	        "       %s --log FILE [--count K]\n",
	        PROG, PROG);
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > max)
		return false;
	*out = v;
	return true;
}

struct span {
	uint64_t off, len;
};

static int make_log(const char *src, unsigned long events, const char *out_path)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	struct span *body = NULL, head = {0, 0};
	size_t n = 0, cap = 0, len = 0;
	uint8_t *buf = NULL;
	bool has_event = true;
	FILE *out = NULL;
	unsigned long written = 0;
	int r, rc = 1;

	r = cvm_file_read(src, SRC_MAX, &buf, &len);
	if (r != CVM_OK) {
		fprintf(stderr, "%s: cannot read %s: %s\n", PROG, src,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	r = cvm_evl_parser_new_mem(buf, len, CVM_EVL_AUTO, &p);
	while (r == CVM_OK) {
		r = cvm_evl_parser_next(p, &ev, &has_event);
		if (r != CVM_OK || !has_event)
			break;
		if (ev.seq == 0) {
			head.off = ev.offset;
			head.len = ev.len;
			continue;
		}
		if (ev.type == CVM_EV_NO_ACTION)
			continue;
		if (n == cap) {
			struct span *nb = malloc((cap == 0 ? 64 : 2 * cap) * sizeof(*nb));

			if (nb == NULL) {
				r = CVM_E_NOMEM;
				break;
			}
			if (n != 0)
				memcpy(nb, body, n * sizeof(*nb));
			free(body);
			body = nb;
			cap = cap == 0 ? 64 : 2 * cap;
		}
		body[n].off = ev.offset;
		body[n].len = ev.len;
		n++;
	}
	if (r != CVM_OK || n == 0 || cvm_evl_parser_format(p) == CVM_EVL_DSTACK) {
		fprintf(stderr, "%s: %s is not a binary event log with events to repeat: %s\n", PROG, src,
		        r != CVM_OK ? cvm_evl_parser_err(p) : "no event besides the first");
		goto out;
	}
	out = fopen(out_path, "wb");
	if (out == NULL) {
		fprintf(stderr, "%s: cannot create %s: %s\n", PROG, out_path, strerror(errno));
		goto out;
	}
	if (fwrite(buf + head.off, 1, head.len, out) != head.len)
		goto write_error;
	written = 1;
	for (size_t i = 0; written < events; i = (i + 1) % n, written++) {
		if (fwrite(buf + body[i].off, 1, body[i].len, out) != body[i].len)
			goto write_error;
	}
	if (fclose(out) != 0) {
		out = NULL;
		goto write_error;
	}
	out = NULL;
	printf("{\"mode\": \"make\", \"source\": \"%s\", \"events\": %lu, \"distinct\": %zu}\n", src, written,
	       n + 1);
	rc = 0;
	goto out;
write_error:
	fprintf(stderr, "%s: cannot write %s: %s\n", PROG, out_path, strerror(errno));
out:
	if (out != NULL)
		(void)fclose(out);
	cvm_evl_parser_free(p);
	free(body);
	free(buf);
	return rc;
}

static double now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int replay_once(const char *path, struct cvm_evl_replay *rp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return CVM_E_SYSTEM;
	r = cvm_evl_replay_fd(fd, CVM_EVL_AUTO, rp);
	(void)close(fd);
	return r;
}

static int replay_log(const char *path, unsigned long count)
{
	struct cvm_evl_replay *rp = malloc(sizeof(*rp));
	struct rusage ru;
	double t0, secs;
	uint64_t events;
	int r, rc = 1;

	if (rp == NULL)
		return 1;
	r = replay_once(path, rp); /* untimed: page cache, library set-up */
	if (r != CVM_OK) {
		fprintf(stderr, "%s: %s does not replay: %s\n", PROG, path,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		printf("{\"mode\": \"replay\", \"ok\": false}\n");
		goto out;
	}
	events = rp->event_count;
	t0 = now();
	for (unsigned long i = 0; i < count; i++) {
		r = replay_once(path, rp);
		if (r != CVM_OK || rp->event_count != events) {
			fprintf(stderr, "%s: iteration %lu failed: %s\n", PROG, i, cvm_strerror(r));
			printf("{\"mode\": \"replay\", \"ok\": false}\n");
			goto out;
		}
	}
	secs = now() - t0;
	(void)getrusage(RUSAGE_SELF, &ru);
	printf("{\"mode\": \"replay\", \"format\": \"%s\", \"events\": %" PRIu64 ", \"bytes\": %" PRIu64
	       ", \"count\": %lu, \"seconds\": %.6f, \"events_per_second\": %.1f, \"max_rss_kb\": %ld, "
	       "\"ok\": true}\n",
	       cvm_evl_format_name(rp->format), events, rp->bytes_parsed + rp->padding_len, count, secs,
	       secs > 0 ? (double)events * (double)count / secs : 0.0, ru.ru_maxrss);
	rc = 0;
out:
	free(rp);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"make", required_argument, NULL, 'm'},
	    {"events", required_argument, NULL, 'n'},
	    {"out", required_argument, NULL, 'o'},
	    {"log", required_argument, NULL, 'l'},
	    {"count", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *src = NULL, *out = NULL, *log = NULL;
	unsigned long events = 0, count = 1;
	int c;

	for (;;) {
		c = getopt_long(argc, argv, "h", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'm':
			src = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'l':
			log = optarg;
			break;
		case 'n':
			if (!parse_ulong(optarg, EVENTS_MAX, &events)) {
				fprintf(stderr, "%s: --events must be 1..%lu\n", PROG, EVENTS_MAX);
				return 2;
			}
			break;
		case 'c':
			if (!parse_ulong(optarg, COUNT_MAX, &count)) {
				fprintf(stderr, "%s: --count must be 1..%lu\n", PROG, COUNT_MAX);
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
	if (optind != argc || (src == NULL) == (log == NULL) ||
	    (src != NULL && (out == NULL || events == 0))) {
		usage(stderr);
		return 2;
	}
	if (src != NULL)
		return make_log(src, events, out);
	return replay_log(log, count);
}
