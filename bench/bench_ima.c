/* IMA replay speed and memory (scripts/bench-ima.sh runs it beside evmctl).
 *
 *   bench_ima gen --from LOG --entries N --out FILE
 *       writes a binary list of N entries made from the entries of LOG (a
 *       binary list), cycled: copy k > 0 of an entry gets the name
 *       "<name>.<k>" and a recomputed template digest, so every entry is
 *       valid and every name unique; violations stay violations.
 *   bench_ima replay --log FILE [--banks sha1,sha256] [--pcrs-dir DIR]
 *       streams FILE through cvm_ima_reader / cvm_ima_replay, timed, and
 *       prints one JSON line: entries, seconds, per_second, max_rss_kb, the
 *       PCR 10 values. --pcrs-dir writes DIR/pcr-<bank> in the "PCR-NN: hex"
 *       form evmctl ima_measurement --pcrs reads.
 * Exit status: 0 ok, 1 error, 2 usage. Only the public API is used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/ima.h>

#define SOURCE_MAX ((size_t)64 << 20)

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_ima gen --from LOG --entries N --out FILE\n"
	           "       bench_ima replay --log FILE [--banks sha1,sha256] [--pcrs-dir DIR]\n");
}

static double now(void)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long max_rss_kb(void)
{
	struct rusage u;

	return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_maxrss : -1;
}

static void put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* write_entry writes one binary entry with a fresh name. */
static int write_entry(FILE *out, const struct cvm_ima_entry *e, unsigned long long copy)
{
	static uint8_t td[CVM_IMA_TEMPLATE_DATA_MAX + 64];
	char name[CVM_IMA_EVENT_NAME_MAX + 32];
	uint8_t hdr[4 + 20 + 4], d[20], len4[4];
	struct cvm_rd in = e->template_data, f;
	size_t n = 0, name_len, field = 0;
	uint32_t flen;

	name_len = (size_t)snprintf(name, sizeof(name), "%.*s", (int)e->name.len, (const char *)e->name.p);
	if (copy != 0)
		name_len += (size_t)snprintf(name + name_len, sizeof(name) - name_len, ".%llu", copy);
	if (e->template_id == CVM_IMA_TEMPLATE_IMA) {
		uint8_t pad[20 + 256] = {0};

		if (name_len > 255)
			return -1;
		memcpy(pad, e->digest.p, 20);
		memcpy(pad + 20, name, name_len);
		if (cvm_digest(CVM_DIGEST_SHA1, pad, sizeof(pad), d, sizeof(d)) != CVM_OK)
			return -1;
		memcpy(td, e->digest.p, 20);
		put_u32le(td + 20, (uint32_t)name_len);
		memcpy(td + 24, name, name_len);
		n = 24 + name_len;
	} else {
		if (e->template_id == CVM_IMA_TEMPLATE_OTHER)
			return -1;
		/* the same fields, the name (field 2) replaced */
		while (!cvm_rd_empty(&in)) {
			if (!cvm_rd_u32le(&in, &flen) || !cvm_rd_sub(&in, &f, flen))
				return -1;
			if (field++ == 1) {
				f.p = (const uint8_t *)name;
				f.len = name_len + 1; /* with its NUL */
			}
			if (n + 4 + f.len > sizeof(td))
				return -1;
			put_u32le(td + n, (uint32_t)f.len);
			memcpy(td + n + 4, f.p, f.len);
			n += 4 + f.len;
		}
		if (cvm_digest(CVM_DIGEST_SHA1, td, n, d, sizeof(d)) != CVM_OK)
			return -1;
	}
	put_u32le(hdr, e->pcr);
	if (e->is_violation)
		memset(hdr + 4, 0, 20);
	else
		memcpy(hdr + 4, d, 20);
	put_u32le(hdr + 24, (uint32_t)e->template_name.len);
	put_u32le(len4, (uint32_t)n);
	if (fwrite(hdr, 1, sizeof(hdr), out) != sizeof(hdr) ||
	    fwrite(e->template_name.p, 1, e->template_name.len, out) != e->template_name.len)
		return -1;
	if (e->template_id != CVM_IMA_TEMPLATE_IMA && fwrite(len4, 1, 4, out) != 4)
		return -1;
	return fwrite(td, 1, n, out) == n ? 0 : -1;
}

static int gen(const char *from, unsigned long long count, const char *out_path)
{
	struct cvm_ima_entry *src = NULL;
	struct cvm_ima_reader *rd = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, n = 0, cap = 0;
	FILE *out = NULL;
	bool has;
	int rc = 1;

	if (cvm_file_read(from, SOURCE_MAX, &buf, &len) != CVM_OK ||
	    cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_BINARY, &rd) != CVM_OK) {
		fprintf(stderr, "bench_ima: cannot read %s\n", from);
		goto out;
	}
	for (;;) {
		struct cvm_ima_entry e;

		if (cvm_ima_reader_next(rd, &e, &has) != CVM_OK) {
			fprintf(stderr, "bench_ima: %s: %s (a binary list is needed)\n", from,
			        cvm_ima_reader_err(rd));
			goto out;
		}
		if (!has)
			break;
		if (n == cap) {
			struct cvm_ima_entry *ns;

			cap = cap != 0 ? 2 * cap : 1024;
			ns = calloc(cap, sizeof(*ns));
			if (ns == NULL)
				goto out;
			if (n != 0)
				memcpy(ns, src, n * sizeof(*ns));
			free(src);
			src = ns;
		}
		src[n++] = e; /* binary: the views borrow from buf, which stays */
	}
	if (n == 0) {
		fprintf(stderr, "bench_ima: %s has no entries\n", from);
		goto out;
	}
	out = fopen(out_path, "wb");
	if (out == NULL) {
		perror(out_path);
		goto out;
	}
	for (unsigned long long i = 0; i < count; i++) {
		if (write_entry(out, &src[i % n], i / n) != 0) {
			fprintf(stderr, "bench_ima: cannot write entry %llu\n", i + 1);
			goto out;
		}
	}
	rc = 0;
out:
	if (out != NULL && fclose(out) != 0)
		rc = 1;
	cvm_ima_reader_free(rd);
	free(src);
	free(buf);
	return rc;
}

static int parse_banks(const char *s, uint16_t *banks, size_t *count)
{
	char buf[128], *save = NULL, *tok;
	enum cvm_digest_alg a;

	(void)snprintf(buf, sizeof(buf), "%s", s);
	*count = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (cvm_digest_from_name(tok, &a) != CVM_OK || *count == CVM_IMA_BANKS_MAX)
			return -1;
		banks[(*count)++] = (uint16_t)a;
	}
	return *count == 0 ? -1 : 0;
}

static int write_pcrs(const char *dir, uint16_t bank, const uint8_t *v)
{
	char path[4096], hex[2 * CVM_DIGEST_MAX + 1], zero[2 * CVM_DIGEST_MAX + 1];
	size_t n = cvm_digest_len(bank);
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/pcr-%s", dir, cvm_digest_name(bank));
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	cvm_hex_encode(v, n, hex);
	memset(zero, '0', 2 * n);
	zero[2 * n] = '\0';
	for (int i = 0; i < CVM_IMA_PCR_COUNT; i++)
		fprintf(f, "PCR-%02d: %s\n", i, i == CVM_IMA_PCR ? hex : zero);
	return fclose(f) == 0 ? 0 : -1;
}

static int replay(const char *path, const char *bank_list, const char *pcrs_dir)
{
	uint16_t banks[CVM_IMA_BANKS_MAX];
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_replay *rp = NULL;
	struct cvm_ima_entry e;
	size_t bank_count = 0;
	double t0, c0, secs, cpu;
	bool has;
	int r, rc = 1;

	if (parse_banks(bank_list, banks, &bank_count) != 0) {
		fprintf(stderr, "bench_ima: --banks '%s'\n", bank_list);
		return 2;
	}
	t0 = now();
	c0 = cpu_now();
	if (cvm_ima_reader_open(path, CVM_IMA_FORMAT_AUTO, &rd) != CVM_OK ||
	    cvm_ima_replay_new(banks, bank_count, &rp) != CVM_OK) {
		fprintf(stderr, "bench_ima: cannot open %s\n", path);
		goto out;
	}
	for (;;) {
		r = cvm_ima_reader_next(rd, &e, &has);
		if (r != CVM_OK) {
			fprintf(stderr, "bench_ima: %s: %s\n", path, cvm_ima_reader_err(rd));
			goto out;
		}
		if (!has)
			break;
		r = cvm_ima_replay_extend(rp, &e);
		if (r != CVM_OK) {
			fprintf(stderr, "bench_ima: entry %llu: %s\n",
			        (unsigned long long)cvm_ima_reader_count(rd), cvm_strerror(r));
			goto out;
		}
	}
	secs = now() - t0;
	cpu = cpu_now() - c0;
	printf(
	    "{\"entries\": %llu, \"violations\": %llu, \"seconds\": %.6f, \"per_second\": %.1f, "
	    "\"cpu_seconds\": %.6f, \"per_cpu_second\": %.1f, \"max_rss_kb\": %ld, \"ok\": true, \"pcrs\": {",
	    (unsigned long long)cvm_ima_replay_entries(rp), (unsigned long long)cvm_ima_replay_violations(rp),
	    secs, secs > 0 ? (double)cvm_ima_replay_entries(rp) / secs : 0.0, cpu,
	    cpu > 0 ? (double)cvm_ima_replay_entries(rp) / cpu : 0.0, max_rss_kb());
	for (size_t i = 0; i < bank_count; i++) {
		uint8_t v[CVM_DIGEST_MAX];
		char hex[2 * CVM_DIGEST_MAX + 1];

		if (cvm_ima_replay_pcr(rp, banks[i], CVM_IMA_PCR, v, sizeof(v)) != CVM_OK)
			goto out;
		cvm_hex_encode(v, cvm_digest_len(banks[i]), hex);
		printf("%s\"%s\": \"%s\"", i ? ", " : "", cvm_digest_name(banks[i]), hex);
		if (pcrs_dir != NULL && write_pcrs(pcrs_dir, banks[i], v) != 0) {
			fprintf(stderr, "bench_ima: cannot write %s/pcr-%s\n", pcrs_dir,
			        cvm_digest_name(banks[i]));
			goto out;
		}
	}
	printf("}}\n");
	rc = 0;
out:
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
	return rc;
}

int main(int argc, char **argv)
{
	const char *from = NULL, *out = NULL, *log = NULL, *banks = "sha1,sha256", *pcrs_dir = NULL;
	unsigned long long entries = 0;
	char *end = NULL;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (strcmp(argv[i], "--from") == 0)
			from = argv[++i];
		else if (strcmp(argv[i], "--out") == 0)
			out = argv[++i];
		else if (strcmp(argv[i], "--log") == 0)
			log = argv[++i];
		else if (strcmp(argv[i], "--banks") == 0)
			banks = argv[++i];
		else if (strcmp(argv[i], "--pcrs-dir") == 0)
			pcrs_dir = argv[++i];
		else if (strcmp(argv[i], "--entries") == 0) {
			entries = strtoull(argv[++i], &end, 10);
			if (end == NULL || *end != '\0' || entries == 0) {
				usage(stderr);
				return 2;
			}
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (strcmp(argv[1], "gen") == 0 && from != NULL && out != NULL && entries != 0)
		return gen(from, entries, out);
	if (strcmp(argv[1], "replay") == 0 && log != NULL)
		return replay(log, banks, pcrs_dir);
	usage(stderr);
	return 2;
}
