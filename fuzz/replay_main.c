/* Runs LLVMFuzzerTestOneInput over every file in the folders or files named
 * on the command line: corpora and crash reproducers as regression tests.
 * Each input is timed: one that takes longer than the bound fails the run,
 * as libFuzzer's -timeout fails a fuzzing run, so that an input as slow as
 * the 20 KB TPM quote that kept dstack's verifier busy for 4.66 s can never
 * sit in a corpus unnoticed. The bound is CVM_REPLAY_INPUT_MS milliseconds
 * (default 1000: the slowest seed takes 0.05 s here, 0.27 s under ASan;
 * docs/cost.md), five times that in a sanitizer build. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cvmkit/file.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A harness may define it, as for libFuzzer; it runs once, untimed. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

struct run {
	unsigned count;
	double bound_ms;
	double slowest_ms;
	char slowest[4096];
};

static double now_ms(void)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int run_file(const char *path, struct run *run)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	double t0, ms;

	if (cvm_file_read(path, 16u << 20, &buf, &len) != CVM_OK) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		return 1;
	}
	t0 = now_ms();
	(void)LLVMFuzzerTestOneInput(buf, len);
	ms = now_ms() - t0;
	free(buf);
	run->count++;
	if (ms > run->slowest_ms) {
		run->slowest_ms = ms;
		(void)snprintf(run->slowest, sizeof(run->slowest), "%s", path);
	}
	if (ms > run->bound_ms) {
		fprintf(stderr,
		        "replay: %s took %.0f ms, over the bound of %.0f ms per input: a slow input is a "
		        "finding (see docs/cost.md); raise CVM_REPLAY_INPUT_MS only for a slower machine\n",
		        path, ms, run->bound_ms);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run run = {0, 1000, 0, ""};
	const char *b = getenv("CVM_REPLAY_INPUT_MS");
	int bad = 0;

	if (b != NULL) {
		char *end = NULL;
		double v = strtod(b, &end);

		if (end == b || *end != '\0' || !(v > 0)) {
			fprintf(stderr,
			        "replay: CVM_REPLAY_INPUT_MS=%s is not a positive number of milliseconds\n",
			        b);
			return 1;
		}
		run.bound_ms = v;
	}
	if (SANITIZED)
		run.bound_ms *= 5;
	if (LLVMFuzzerInitialize != NULL)
		(void)LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: no such file or folder\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i], &run);
			continue;
		}
		d = opendir(argv[i]);
		if (d == NULL)
			return 1;
		while ((e = readdir(d)) != NULL) {
			char path[4096];

			if (e->d_name[0] == '.')
				continue;
			(void)snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			bad |= run_file(path, &run);
		}
		closedir(d);
	}
	if (run.count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	printf("replayed %u inputs; the slowest took %.1f ms (bound %.0f ms): %s\n", run.count,
	       run.slowest_ms, run.bound_ms, run.slowest);
	return bad;
}
