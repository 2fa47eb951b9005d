/* bench_quote_verify: how many DCAP quotes or SEV-SNP reports per second
 * cvmkit verifies, cold (everything from the collateral bytes on every call:
 * for SNP the whole chain ARK -> ASK -> VCEK, CRL and report) or warm
 * (collateral or chain verified once, then only the quote or report).
 * Prints one JSON line; see bench/README.md. Uses the public API only. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/amd.h>
#include <cvmkit/dcap.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>
#include <cvmkit/snp.h>
#include <cvmkit/verify.h>

#define PROG "bench_quote_verify"
#define COUNT_MAX 100000000ul

enum mode { MODE_COLD, MODE_WARM };

struct opts {
	const char *quote_path;
	const char *collateral_dir;
	const char *root_path;
	int64_t at;
	bool at_set;
	unsigned long count;
	enum mode mode;
	bool mode_set;
	const char *type; /* "dcap", "snp" or NULL: detected from the file */
};

/* One kind of evidence. The loop in main() knows nothing about DCAP: a later
 * `--type snp` adds a second table entry with its own setup, one iteration
 * and cleanup, and reuses the options, the timing and the output. */
struct bench_ctx {
	const struct opts *o;
	uint8_t *evidence;
	size_t evidence_len;
	uint8_t *root;
	size_t root_len;
	struct cvm_dcap_collateral *coll;
	struct cvm_dcap_verified *verified; /* warm mode only */
	struct cvm_policy policy;
	struct cvm_report rep;
	struct cvm_dcap_result res;
	/* SEV-SNP */
	struct cvm_amd_collateral *amd;
	struct cvm_amd_verified *chain; /* warm mode only */
	struct cvm_amd_result snp;
	const char *status; /* verdict of the last iteration, a static string */
};

struct bench_type {
	const char *name;
	/* setup loads the inputs and does the untimed work of `mode`; on error
	 * it writes one sentence into `err`. */
	int (*setup)(struct bench_ctx *c, char *err, size_t err_len);
	/* iter verifies once; 0 only if the evidence verified and was accepted. */
	int (*iter)(struct bench_ctx *c);
	/* why returns a description of the last failed iteration. */
	const char *(*why)(const struct bench_ctx *c);
	void (*cleanup)(struct bench_ctx *c);
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s --quote FILE --collateral DIR --at UNIX_SECONDS --count N --mode cold|warm\n"
	        "       [--root CERT_DER] [--type dcap|snp]\n"
	        "\n"
	        "Verifies the quote N times (after one untimed warm-up) and prints one JSON line:\n"
	        "  {\"mode\": ..., \"count\": N, \"seconds\": S, \"per_second\": R, \"ok\": ..., "
	        "\"tcb_status\": ...}\n"
	        "  cold: every call verifies the collateral (chains, CRLs, signatures, JSON) and the quote\n"
	        "  warm: the collateral is verified once, untimed; every call verifies only the quote\n"
	        "  --collateral DIR  a folder laid out as the vectors' tdx/* and sgx/* (tcb_info.json, ...)\n"
	        "  --at T            verification time, Unix seconds (use the vector's verify_at_unix)\n"
	        "  --root CERT_DER   trust anchor (default: the built-in Intel SGX Root CA; SNP: AMD's ARK)\n"
	        "  --type dcap|snp   kind of evidence (default: an SNP report if the file is one)\n"
	        "  SNP: --quote is the 1184-byte report, --collateral a folder as the vectors' snp/*;\n"
	        "  cold verifies the whole chain (ASK, VCEK, CRL) and the report every call, warm\n"
	        "  verifies the chain once per VCEK, untimed, then only the report\n"
	        "The policy accepts every TCB status, advisory and TD/enclave attribute: it measures\n"
	        "verification. Exit status: 0 every iteration succeeded, 1 an error or a failed\n"
	        "iteration, 2 usage.\n",
	        PROG);
}

static double now_seconds(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

static bool parse_count(const char *s, unsigned long *out)
{
	char *end = NULL;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > COUNT_MAX)
		return false;
	*out = v;
	return true;
}

/* policy_accept_all keeps the strict defaults' shape but lets every TCB
 * status, advisory and attribute through, so that a run measures the cost of
 * verification rather than stopping at an appraisal choice. */
static void policy_accept_all(struct cvm_policy *p)
{
	cvm_policy_init(p);
	p->accepted_tcb_statuses = UINT32_MAX;
	p->accept_any_advisory = true;
	p->allow_debug = true;
	p->require_sept_ve_disable = false;
	p->require_zero_mr_service_td = false;
	p->allow_reserved_attributes = true;
}

/* errstr describes `r`, with the system's reason when errno holds it. */
static const char *errstr(int r)
{
	return r == CVM_E_SYSTEM && errno != 0 ? strerror(errno) : cvm_strerror(r);
}

static void policy_accept_all_snp(struct cvm_policy *p)
{
	policy_accept_all(p);
	p->snp.vmpl_any = true;
	p->snp.allow_migration_agent = true;
	p->snp.allow_smt = true;
	/* the real vectors ship no AMD CRL (a CRL, when given, is still checked) */
	p->snp.require_crl = false;
}

static int snp_setup(struct bench_ctx *c, char *err, size_t err_len)
{
	char what[256] = "";
	struct cvm_snp_report r;
	int rc;

	rc = cvm_file_read(c->o->quote_path, (size_t)CVM_QUOTE_MAX, &c->evidence, &c->evidence_len);
	if (rc != CVM_OK) {
		snprintf(err, err_len, "%s: %s", c->o->quote_path, errstr(rc));
		return rc;
	}
	if (c->o->root_path != NULL) {
		rc = cvm_file_read(c->o->root_path, (size_t)CVM_AMD_CERT_MAX, &c->root, &c->root_len);
		if (rc != CVM_OK) {
			snprintf(err, err_len, "%s: %s", c->o->root_path, errstr(rc));
			return rc;
		}
	}
	rc = cvm_amd_collateral_load_dir(c->o->collateral_dir, &c->amd, what, sizeof(what));
	if (rc != CVM_OK) {
		snprintf(err, err_len, "%s/%s: %s", c->o->collateral_dir, what, errstr(rc));
		return rc;
	}
	policy_accept_all_snp(&c->policy);
	rc = cvm_snp_report_parse(c->evidence, c->evidence_len, &r);
	if (rc != CVM_OK) {
		snprintf(err, err_len, "%s is not an SEV-SNP report: %s", c->o->quote_path, cvm_strerror(rc));
		return rc;
	}
	if (c->o->mode == MODE_WARM) {
		cvm_report_init(&c->rep);
		rc = cvm_amd_chain_authenticate(c->amd, (enum cvm_snp_signer)r.signing_key, c->root,
		                                c->root_len, c->o->at, &c->rep, &c->chain);
		if (rc != CVM_OK) {
			const char *reason = cvm_report_reason(&c->rep);

			snprintf(err, err_len, "the chain does not verify: %s%s%s", cvm_strerror(rc),
			         reason != NULL ? ": " : "", reason != NULL ? reason : "");
			return rc;
		}
	}
	return CVM_OK;
}

static int snp_iter(struct bench_ctx *c)
{
	int r;

	cvm_report_init(&c->rep);
	if (c->o->mode == MODE_WARM)
		r = cvm_verify_snp_report_warm(c->chain, c->evidence, c->evidence_len, c->o->at, &c->policy,
		                               &c->rep, &c->snp);
	else
		r = cvm_verify_snp_report(c->evidence, c->evidence_len, c->amd, c->root, c->root_len,
		                          c->o->at, &c->policy, &c->rep, &c->snp);
	c->status = c->snp.authentic ? "UpToDate" : "None";
	if (r == CVM_OK && !c->snp.authentic)
		r = CVM_E_INTERNAL; /* 0 without an authentic verdict would be a library bug */
	return r;
}

static void snp_cleanup(struct bench_ctx *c)
{
	cvm_amd_verified_free(c->chain);
	c->chain = NULL;
	cvm_amd_collateral_free(c->amd);
	c->amd = NULL;
	free(c->root);
	c->root = NULL;
	free(c->evidence);
	c->evidence = NULL;
}

static int dcap_setup(struct bench_ctx *c, char *err, size_t err_len)
{
	char what[256] = "";
	int r;

	r = cvm_file_read(c->o->quote_path, (size_t)CVM_QUOTE_MAX, &c->evidence, &c->evidence_len);
	if (r != CVM_OK) {
		snprintf(err, err_len, "%s: %s", c->o->quote_path, errstr(r));
		goto out;
	}
	if (c->o->root_path != NULL) {
		r = cvm_file_read(c->o->root_path, (size_t)CVM_DCAP_CERT_MAX, &c->root, &c->root_len);
		if (r != CVM_OK) {
			snprintf(err, err_len, "%s: %s", c->o->root_path, errstr(r));
			goto out;
		}
	}
	r = cvm_dcap_collateral_load_dir(c->o->collateral_dir, &c->coll, what, sizeof(what));
	if (r != CVM_OK) {
		/* `what` may be a file name or a path: print a path either way. */
		if (what[0] == '\0')
			snprintf(err, err_len, "%s: %s", c->o->collateral_dir, errstr(r));
		else if (strchr(what, '/') != NULL)
			snprintf(err, err_len, "%s: %s", what, errstr(r));
		else
			snprintf(err, err_len, "%s/%s: %s", c->o->collateral_dir, what, errstr(r));
		goto out;
	}
	policy_accept_all(&c->policy);
	if (c->o->mode == MODE_WARM) {
		cvm_report_init(&c->rep);
		r = cvm_dcap_collateral_authenticate(c->coll, c->root, c->root_len, c->o->at, &c->rep,
		                                     &c->verified);
		if (r != CVM_OK) {
			const char *reason = cvm_report_reason(&c->rep);

			snprintf(err, err_len, "collateral does not verify: %s%s%s", cvm_strerror(r),
			         reason != NULL ? ": " : "", reason != NULL ? reason : "");
			goto out;
		}
	}
	r = CVM_OK;
out:
	return r;
}

static int dcap_iter(struct bench_ctx *c)
{
	int r;

	cvm_report_init(&c->rep);
	if (c->o->mode == MODE_WARM)
		r = cvm_verify_quote_warm(c->verified, c->evidence, c->evidence_len, c->o->at, &c->policy,
		                          &c->rep, &c->res);
	else
		r = cvm_verify_quote(c->evidence, c->evidence_len, c->coll, c->root, c->root_len, c->o->at,
		                     &c->policy, &c->rep, &c->res);
	c->status = cvm_tcb_status_name(c->res.tcb_status);
	if (r == CVM_OK && !c->res.authentic)
		r = CVM_E_INTERNAL; /* 0 without an authentic verdict would be a library bug */
	return r;
}

static const char *dcap_why(const struct bench_ctx *c)
{
	const char *reason = cvm_report_reason(&c->rep);

	return reason != NULL ? reason : "(no failed step recorded)";
}

static void dcap_cleanup(struct bench_ctx *c)
{
	cvm_dcap_verified_free(c->verified);
	c->verified = NULL;
	cvm_dcap_collateral_free(c->coll);
	c->coll = NULL;
	free(c->root);
	c->root = NULL;
	free(c->evidence);
	c->evidence = NULL;
}

static const struct bench_type bench_dcap = {
    .name = "dcap",
    .setup = dcap_setup,
    .iter = dcap_iter,
    .why = dcap_why,
    .cleanup = dcap_cleanup,
};

static const struct bench_type bench_snp = {
    .name = "snp",
    .setup = snp_setup,
    .iter = snp_iter,
    .why = dcap_why,
    .cleanup = snp_cleanup,
};

/* print_result writes the JSON line; false if stdout failed (the result is lost). */
static bool print_result(const struct opts *o, unsigned long done, double seconds, bool ok,
                         const char *status)
{
	double rate = seconds > 0 ? (double)done / seconds : 0;

	printf(
	    "{\"type\": \"%s\", \"mode\": \"%s\", \"count\": %lu, \"seconds\": %.6f, \"per_second\": %.1f, "
	    "\"ok\": %s, \"tcb_status\": \"%s\"}\n",
	    o->type, o->mode == MODE_WARM ? "warm" : "cold", done, seconds, rate, ok ? "true" : "false",
	    status != NULL ? status : "None");
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: cannot write the result: %s\n", PROG, strerror(errno));
		return false;
	}
	return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"quote", required_argument, NULL, 'q'},
	    {"collateral", required_argument, NULL, 'c'},
	    {"at", required_argument, NULL, 'a'},
	    {"count", required_argument, NULL, 'n'},
	    {"mode", required_argument, NULL, 'm'},
	    {"root", required_argument, NULL, 'r'},
	    {"type", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	for (;;) {
		ch = getopt_long(argc, argv, "h", longopts, NULL);
		if (ch == -1)
			break;
		switch (ch) {
		case 'q':
			o->quote_path = optarg;
			break;
		case 'c':
			o->collateral_dir = optarg;
			break;
		case 'r':
			o->root_path = optarg;
			break;
		case 't':
			if (strcmp(optarg, "dcap") != 0 && strcmp(optarg, "snp") != 0) {
				fprintf(stderr, "%s: --type is dcap or snp, not \"%s\"\n", PROG, optarg);
				return 2;
			}
			o->type = optarg;
			break;
		case 'a':
			if (!parse_i64(optarg, &o->at)) {
				fprintf(stderr, "%s: --at wants Unix seconds, not \"%s\"\n", PROG, optarg);
				return 2;
			}
			o->at_set = true;
			break;
		case 'n':
			if (!parse_count(optarg, &o->count)) {
				fprintf(stderr, "%s: --count wants a number from 1 to %lu, not \"%s\"\n",
				        PROG, COUNT_MAX, optarg);
				return 2;
			}
			break;
		case 'm':
			if (strcmp(optarg, "cold") == 0) {
				o->mode = MODE_COLD;
			} else if (strcmp(optarg, "warm") == 0) {
				o->mode = MODE_WARM;
			} else {
				fprintf(stderr, "%s: --mode is cold or warm, not \"%s\"\n", PROG, optarg);
				return 2;
			}
			o->mode_set = true;
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
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", PROG, argv[optind]);
		usage(stderr);
		return 2;
	}
	if (o->quote_path == NULL || o->collateral_dir == NULL || !o->at_set || o->count == 0 ||
	    !o->mode_set) {
		fprintf(stderr, "%s: --quote, --collateral, --at, --count and --mode are required\n", PROG);
		usage(stderr);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	const struct bench_type *t = &bench_dcap;
	struct bench_ctx *c = NULL;
	struct opts o;
	char err[512] = "";
	unsigned long i;
	double t0, t1;
	int ret;
	int r;

	ret = parse_args(argc, argv, &o);
	if (ret != -1)
		return ret;
	ret = 1;
	if (o.type == NULL) {
		uint8_t *buf = NULL;
		size_t len = 0;

		/* Detect the kind from the file; an unreadable one fails in setup. */
		if (cvm_file_read(o.quote_path, (size_t)CVM_QUOTE_MAX, &buf, &len) == CVM_OK &&
		    cvm_snp_report_looks_like(buf, len))
			o.type = "snp";
		else
			o.type = "dcap";
		free(buf);
	}
	if (strcmp(o.type, "snp") == 0)
		t = &bench_snp;
	/* The context holds a report and a result of several KiB each. */
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		fprintf(stderr, "%s: out of memory\n", PROG);
		goto out;
	}
	c->o = &o;
	r = t->setup(c, err, sizeof(err));
	if (r != CVM_OK) {
		fprintf(stderr, "%s: %s\n", PROG, err);
		goto out;
	}

	/* Untimed warm-up: faults in code and data, and fills the library's
	 * caches exactly as the first real call in a long-running verifier would. */
	r = t->iter(c);
	if (r != CVM_OK) {
		fprintf(stderr, "%s: the warm-up verification failed (%s): %s\n", PROG, cvm_strerror(r),
		        t->why(c));
		(void)print_result(&o, 0, 0, false, c->status);
		goto out;
	}

	t0 = now_seconds();
	for (i = 0; i < o.count; i++) {
		r = t->iter(c);
		if (r != CVM_OK)
			break;
	}
	t1 = now_seconds();
	if (r != CVM_OK) {
		fprintf(stderr,
		        "%s: iteration %lu of %lu failed (%s): %s; a benchmark of failures is meaningless\n",
		        PROG, i + 1, o.count, cvm_strerror(r), t->why(c));
		(void)print_result(&o, i, t1 - t0, false, c->status);
		goto out;
	}
	if (print_result(&o, o.count, t1 - t0, true, c->status))
		ret = 0;
out:
	if (c != NULL) {
		t->cleanup(c);
		free(c);
	}
	return ret;
}
