/* cvm measure: the expected TDX MRTD and RTMR0..2 of a VM, computed from
 * its firmware, kernel, initrd, command line and shape (dstack-mr's job).
 *
 *   cvm measure --firmware F --kernel K [--initrd I] [--cmdline S | --cmdline-file F]
 *               --memory SIZE [--cpus N] [--acpi-digests L,R,T | --acpi-from-log LOG]
 *               [--two-pass | --single-pass] [--quote Q] [--json] [--explain]
 *   cvm measure --image DIR --vm-config FILE [ACPI options] [--quote Q] ...
 *   cvm measure lite (--vm-config FILE --event-log LOG | GETQUOTE.json) [--quote Q] ...
 *   cvm measure diff A.json B.json
 *   cvm measure snp --firmware F [--kernel K ...] --vcpus N [--report R] ...
 *   cvm measure acpi-probe --probe-initrd F [--kernel K] [--qemu Q] [--out DIR] ... -- QEMU_ARGS...
 *   cvm measure probe-initrd OUT [--busybox PATH] [--kernel-dir DIR]
 *
 * See docs/cli/cvm-measure.md. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/measure.h>
#include <cvmkit/file.h>
#include <cvmkit/osimage.h>
#include <cvmkit/qemu.h>
#include <cvmkit/quote.h>
#include <cvmkit/snp.h>

#include "cli.h"
#include "output.h"

#define CMD "measure"
#define FILE_MAX ((size_t)64 << 20)
#define JSON_MAX ((size_t)16 << 20)

enum {
	OPT_FIRMWARE = 0x200,
	OPT_KERNEL,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CMDLINE_FILE,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_ACPI_DIGESTS,
	OPT_ACPI_LOG,
	OPT_TWO_PASS,
	OPT_SINGLE_PASS,
	OPT_QUOTE,
	OPT_EXPLAIN,
	OPT_IMAGE,
	OPT_VM_CONFIG,
	OPT_EVENT_LOG,
	OPT_ACPI_FILES,
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cvm measure --firmware OVMF.fd --kernel BZIMAGE [--initrd FILE]\n"
	    "                   [--cmdline STR | --cmdline-file FILE] --memory SIZE [--cpus N]\n"
	    "                   [--acpi-digests LOADER,RSDP,TABLES | --acpi-from-log LOG]\n"
	    "                   [--two-pass | --single-pass] [--quote QUOTE] [--json] [--explain]\n"
	    "       cvm measure --image DIR --vm-config FILE [ACPI options] [--quote QUOTE] ...\n"
	    "       cvm measure lite (--vm-config FILE --event-log LOG | GETQUOTE.json) [--quote QUOTE] ...\n"
	    "       cvm measure diff A.json B.json\n"
	    "       cvm measure snp --firmware OVMF.fd [--kernel K [--initrd I] [--cmdline S]] --vcpus N\n"
	    "                   [--vcpu-type EPYC-v4] [--report REPORT] [--json] [--explain]\n"
	    "       cvm measure acpi-probe --probe-initrd F [--kernel K] [--qemu PATH] [--out DIR]\n"
	    "                   [--work DIR] [--cache DIR] [--timeout S] -- QEMU_ARGS...\n"
	    "       cvm measure probe-initrd OUT [--busybox PATH] [--kernel-dir DIR]\n"
	    "\n"
	    "Computes the TDX MRTD and RTMR0..2 a VM will have: MRTD from the firmware's TDVF\n"
	    "sections (two pass: QEMU 8.x; single pass: QEMU >= 9, the default), RTMR1 from the\n"
	    "kernel as QEMU patches it (depends on memory and initrd size), RTMR2 from the command\n"
	    "line and the initrd, RTMR0 from the TD HOB, the firmware's variable store and QEMU's\n"
	    "ACPI tables, which only QEMU makes: give their three digests (hex, comma-separated) or\n"
	    "an event log (CCEL or dstack JSON) to take them from. Without them RTMR0 is not computed.\n"
	    "  --image DIR      a dstack image (metadata.json: bios, kernel, initrd, cmdline; the\n"
	    "                   measured command line gets \" initrd=initrd\"); --vm-config: dstack's\n"
	    "                   vm_config JSON (memory_size, cpu_count, qemu_version)\n"
	    "  lite             from vm_config.tdx_measurement (measurement.tdx.cbor) and the event log's\n"
	    "                   ACPI digests, as dstack's lite verification; a GetQuote reply (quote,\n"
	    "                   event_log, vm_config) gives all three\n"
	    "  --quote QUOTE    compare with a TDX quote (binary or hex): exit 3 when a register differs\n"
	    "  --explain        every event of every register: digest, what it is, where it came from\n"
	    "  diff A B         two --json outputs: which register and which input changed\n"
	    "  acpi-probe       boots QEMU_ARGS (the VM's QEMU arguments, rewritten to touch nothing of\n"
	    "                   the VM) with the probe initrd and writes QEMU's three ACPI blobs to DIR\n"
	    "                   (table-loader.bin, rsdp.bin, tables.bin) for --acpi-files\n"
	    "  probe-initrd     writes the probe initrd (static busybox, the kernel's qemu_fw_cfg.ko)\n"
	    "SIZE: bytes, or with K, M, G (2G = 2147483648).\n"
	    "Exit codes: 0 ok (diff: same), 1 error, 2 usage, 3 the quote differs (diff: different).\n");
}

struct args {
	const char *firmware, *kernel, *initrd, *cmdline, *cmdline_file;
	const char *acpi_digests, *acpi_log, *acpi_files, *quote, *image, *vm_config, *event_log;
	uint64_t memory;
	uint32_t cpus;
	int order; /* -1: not given */
	bool explain;
};

static bool parse_size(const char *s, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return false;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return false;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	else if (*end != '\0')
		return false;
	if (shift != 0 && end[1] != '\0')
		return false;
	if (v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return *out != 0;
}

static int parse_args(const char *cmd, int argc, char **argv, struct args *a, bool *done)
{
	static const struct option longopts[] = {
	    {"firmware", required_argument, NULL, OPT_FIRMWARE},
	    {"kernel", required_argument, NULL, OPT_KERNEL},
	    {"initrd", required_argument, NULL, OPT_INITRD},
	    {"cmdline", required_argument, NULL, OPT_CMDLINE},
	    {"cmdline-file", required_argument, NULL, OPT_CMDLINE_FILE},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"acpi-digests", required_argument, NULL, OPT_ACPI_DIGESTS},
	    {"acpi-from-log", required_argument, NULL, OPT_ACPI_LOG},
	    {"acpi-files", required_argument, NULL, OPT_ACPI_FILES},
	    {"two-pass", no_argument, NULL, OPT_TWO_PASS},
	    {"single-pass", no_argument, NULL, OPT_SINGLE_PASS},
	    {"quote", required_argument, NULL, OPT_QUOTE},
	    {"explain", no_argument, NULL, OPT_EXPLAIN},
	    {"image", required_argument, NULL, OPT_IMAGE},
	    {"vm-config", required_argument, NULL, OPT_VM_CONFIG},
	    {"event-log", required_argument, NULL, OPT_EVENT_LOG},
	    CLI_COMMON_LONGOPTS,
	};
	uint64_t n;
	int c;

	memset(a, 0, sizeof(*a));
	a->order = -1;
	*done = false;
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case 'h':
			usage(stdout);
			*done = true;
			return CLI_EXIT_OK;
		case OPT_FIRMWARE:
			a->firmware = optarg;
			break;
		case OPT_KERNEL:
			a->kernel = optarg;
			break;
		case OPT_INITRD:
			a->initrd = optarg;
			break;
		case OPT_CMDLINE:
			a->cmdline = optarg;
			break;
		case OPT_CMDLINE_FILE:
			a->cmdline_file = optarg;
			break;
		case OPT_MEMORY:
			if (!parse_size(optarg, &a->memory)) {
				cli_err(cmd, "--memory '%s' is not a size (bytes, or with K, M, G: 2G)",
				        optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_CPUS:
			if (!parse_size(optarg, &n) || n > 4096) {
				cli_err(cmd, "--cpus '%s' is not a count of 1..4096", optarg);
				return CLI_EXIT_USAGE;
			}
			a->cpus = (uint32_t)n;
			break;
		case OPT_ACPI_DIGESTS:
			a->acpi_digests = optarg;
			break;
		case OPT_ACPI_LOG:
			a->acpi_log = optarg;
			break;
		case OPT_ACPI_FILES:
			a->acpi_files = optarg;
			break;
		case OPT_TWO_PASS:
		case OPT_SINGLE_PASS:
			if (a->order != -1) {
				cli_err(cmd, "give --two-pass or --single-pass once");
				return CLI_EXIT_USAGE;
			}
			a->order = c == OPT_TWO_PASS ? CVM_MRTD_TWO_PASS : CVM_MRTD_SINGLE_PASS;
			break;
		case OPT_QUOTE:
			a->quote = optarg;
			break;
		case OPT_EXPLAIN:
			a->explain = true;
			break;
		case OPT_IMAGE:
			a->image = optarg;
			break;
		case OPT_VM_CONFIG:
			a->vm_config = optarg;
			break;
		case OPT_EVENT_LOG:
			a->event_log = optarg;
			break;
		default:
			cli_bad_option(cmd, c, argv, "cvm help measure");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	if ((a->acpi_digests != NULL) + (a->acpi_log != NULL) + (a->acpi_files != NULL) > 1) {
		cli_err(cmd, "give one of --acpi-digests, --acpi-files and --acpi-from-log");
		return CLI_EXIT_USAGE;
	}
	if (a->cmdline != NULL && a->cmdline_file != NULL) {
		cli_err(cmd, "give --cmdline or --cmdline-file, not both");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* ---- inputs ------------------------------------------------------------- */

static int load_acpi(const char *cmd, const struct args *a, struct cvm_measure_acpi *acpi, bool *has)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc, r;

	*has = false;
	memset(acpi, 0, sizeof(*acpi));
	if (a->acpi_digests != NULL) {
		const char *s = a->acpi_digests;
		uint8_t *dst[3] = {acpi->loader, acpi->rsdp, acpi->tables};

		for (int i = 0; i < 3; i++) {
			const char *e = strchr(s, ',');
			size_t n = e != NULL ? (size_t)(e - s) : strlen(s);

			if ((i < 2) != (e != NULL) || cvm_hex_decode_exact(s, n, dst[i], 48) != CVM_OK) {
				cli_err(cmd,
				        "--acpi-digests takes three SHA-384 digests in hex, comma-separated "
				        "(loader,rsdp,tables)");
				return CLI_EXIT_USAGE;
			}
			s = e != NULL ? e + 1 : s + n;
		}
		(void)snprintf(acpi->source, sizeof(acpi->source), "--acpi-digests");
		*has = true;
		return CLI_EXIT_OK;
	}
	if (a->acpi_files != NULL) {
		char *list = strdup(a->acpi_files), *tok, *comma;
		uint8_t *dst[3] = {acpi->loader, acpi->rsdp, acpi->tables};
		int i = 0;

		if (list == NULL)
			return CLI_EXIT_ERROR;
		rc = CLI_EXIT_OK;
		for (tok = list; tok != NULL && rc == CLI_EXIT_OK; tok = comma) {
			comma = strchr(tok, ',');
			if (comma != NULL)
				*comma++ = '\0';
			if (i == 3 || tok[0] == '\0') {
				rc = CLI_EXIT_USAGE;
				break;
			}
			rc = cli_read_file(cmd, "ACPI blob", tok, JSON_MAX, &buf, &len);
			if (rc == CLI_EXIT_OK)
				cvm_sha384(buf, len, dst[i++]);
			free(buf);
			buf = NULL;
		}
		free(list);
		if (rc == CLI_EXIT_OK && i != 3)
			rc = CLI_EXIT_USAGE;
		if (rc == CLI_EXIT_USAGE)
			cli_err(cmd,
			        "--acpi-files takes three files, comma-separated: QEMU's etc/table-loader, "
			        "etc/acpi/rsdp and etc/acpi/tables");
		if (rc != CLI_EXIT_OK)
			return rc;
		(void)snprintf(acpi->source, sizeof(acpi->source),
		               "computed: SHA-384 of the --acpi-files blobs");
		*has = true;
		return CLI_EXIT_OK;
	}
	if (a->acpi_log == NULL)
		return CLI_EXIT_OK;
	rc = cli_read_file(cmd, "event log", a->acpi_log, JSON_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_measure_acpi_from_eventlog(buf, len, acpi);
	free(buf);
	if (r != CVM_OK) {
		cli_err(cmd, "cannot take the ACPI digests from '%s': %s", a->acpi_log,
		        r == CVM_E_NOT_FOUND
		            ? "it has fewer than three EV_PLATFORM_CONFIG_FLAGS events in RTMR0"
		            : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	*has = true;
	return CLI_EXIT_OK;
}

/* load_quote reads a TDX quote, binary or hex. */
static int load_quote(const char *cmd, const char *path, struct cvm_quote *q, uint8_t **keep)
{
	uint8_t *buf = NULL, *bin = NULL;
	size_t len = 0, n = 0;
	int rc, r;

	*keep = NULL;
	rc = cli_read_file(cmd, "quote", path, JSON_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	bin = malloc(len / 2 + 1);
	if (bin != NULL && cvm_hex_decode((const char *)buf, len, bin, len / 2 + 1, &n) == CVM_OK) {
		free(buf);
		buf = bin;
		len = n;
	} else {
		free(bin);
	}
	r = cvm_quote_parse(buf, len, q);
	if (r != CVM_OK || q->tee != CVM_TEE_TDX) {
		cli_err(cmd, "'%s' is not a TDX quote: %s", path,
		        r != CVM_OK ? cvm_strerror(r) : "another TEE");
		free(buf);
		return CLI_EXIT_ERROR;
	}
	*keep = buf;
	return CLI_EXIT_OK;
}

/* ---- output ------------------------------------------------------------- */

static const char *const reg_names[3] = {"rtmr0", "rtmr1", "rtmr2"};

static void print_hex_line(const char *name, const uint8_t *p)
{
	char hex[97];

	cvm_hex_encode(p, 48, hex);
	printf("%-6s %s\n", name, hex);
}

static void print_text(const struct cvm_measure *m, bool explain)
{
	char hex[97];

	print_hex_line("MRTD", m->mrtd);
	if (explain)
		printf("       from %s\n", m->mrtd_source);
	for (int r = 0; r < 3; r++) {
		char name[8];

		(void)snprintf(name, sizeof(name), "RTMR%d", r);
		if (m->rtmr[r].count == 0) {
			printf("%-6s (not computed: give the ACPI digests: --acpi-digests, --acpi-files or "
			       "--acpi-from-log)\n",
			       name);
			continue;
		}
		print_hex_line(name, m->rtmr[r].value);
		if (!explain)
			continue;
		for (size_t i = 0; i < m->rtmr[r].count; i++) {
			const struct cvm_measure_event *e = &m->rtmr[r].events[i];

			cvm_hex_encode(e->digest, 48, hex);
			printf("  [%2zu] %s\n       %s\n       from %s\n", i, hex, e->what, e->source);
		}
	}
}

static json_t *measure_json(const struct cvm_measure *m, json_t *inputs)
{
	json_t *o = json_object(), *evs = json_object();
	int bad = o == NULL || evs == NULL;

	bad |= out_jset_hex(o, "mrtd", m->mrtd, 48);
	bad |= out_jset_str(o, "mrtd_source", m->mrtd_source);
	for (int r = 0; r < 3 && !bad; r++) {
		json_t *list = json_array();

		if (m->rtmr[r].count == 0)
			bad |= out_jset(o, reg_names[r], json_null());
		else
			bad |= out_jset_hex(o, reg_names[r], m->rtmr[r].value, 48);
		bad |= list == NULL;
		for (size_t i = 0; i < m->rtmr[r].count && !bad; i++) {
			json_t *e = json_object();

			bad |= e == NULL;
			bad |= out_jset_hex(e, "digest", m->rtmr[r].events[i].digest, 48);
			bad |= out_jset_str(e, "what", m->rtmr[r].events[i].what);
			bad |= out_jset_str(e, "source", m->rtmr[r].events[i].source);
			bad |= json_array_append_new(list, e) != 0;
		}
		bad |= out_jset(evs, reg_names[r], list);
	}
	bad |= out_jset(o, "events", evs);
	bad |= out_jset(o, "inputs", inputs);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* compare_quote prints the comparison with a quote and returns 0 or 3. */
static int compare_quote(const struct cvm_measure *m, const struct cvm_quote *q, json_t *o)
{
	const struct cvm_tdx_report *td = &q->body.td;
	bool same = memcmp(m->mrtd, td->mr_td, 48) == 0;
	json_t *cmp = json_object();

	(void)out_jset(cmp, "mrtd", json_boolean(same));
	if (!cli_opts.json)
		printf("quote: MRTD %s\n", same ? "matches" : "DIFFERS");
	for (int r = 0; r < 3; r++) {
		bool eq;

		if (m->rtmr[r].count == 0) {
			(void)out_jset(cmp, reg_names[r], json_null());
			continue;
		}
		eq = memcmp(m->rtmr[r].value, td->rtmr[r], 48) == 0;
		same &= eq;
		(void)out_jset(cmp, reg_names[r], json_boolean(eq));
		if (!cli_opts.json)
			printf("quote: RTMR%d %s\n", r, eq ? "matches" : "DIFFERS");
	}
	(void)out_jset(o, "quote_matches", cmp);
	return same ? CLI_EXIT_OK : CLI_EXIT_REJECTED;
}

/* finish prints the result and compares it with a quote: `qb` (a quote's
 * bytes, e.g. from a GetQuote reply) or the --quote file. */
static int finish(const struct cvm_measure *m, json_t *inputs, const struct args *a, const uint8_t *qb,
                  size_t qlen)
{
	struct cvm_quote q;
	uint8_t *qbuf = NULL;
	json_t *o = measure_json(m, inputs);
	int rc = CLI_EXIT_OK, r;

	if (o == NULL) {
		cli_err(CMD, "out of memory");
		return CLI_EXIT_ERROR;
	}
	if (!cli_opts.json)
		print_text(m, a->explain);
	if (a->quote != NULL) {
		rc = load_quote(CMD, a->quote, &q, &qbuf);
		if (rc == CLI_EXIT_OK)
			rc = compare_quote(m, &q, o);
	} else if (qb != NULL) {
		r = cvm_quote_parse(qb, qlen, &q);
		if (r != CVM_OK || q.tee != CVM_TEE_TDX) {
			cli_err(CMD, "the reply's quote is not a TDX quote: %s",
			        r != CVM_OK ? cvm_strerror(r) : "another TEE");
			rc = CLI_EXIT_ERROR;
		} else {
			rc = compare_quote(m, &q, o);
		}
	}
	if (cli_opts.json && (rc == CLI_EXIT_OK || rc == CLI_EXIT_REJECTED) && out_json_print(o) != 0)
		rc = CLI_EXIT_ERROR;
	free(qbuf);
	json_decref(o);
	return rc;
}

static json_t *inputs_json(uint64_t memory, uint32_t cpus, int order, const char *kind)
{
	json_t *in = json_object();

	if (in == NULL)
		return NULL;
	(void)out_jset_str(in, "kind", kind);
	(void)out_jset_int(in, "memory_size", (long long)memory);
	(void)out_jset_int(in, "cpu_count", (long long)cpus);
	(void)out_jset_str(in, "mrtd_order", order == CVM_MRTD_TWO_PASS ? "two_pass" : "single_pass");
	return in;
}

/* ---- the full computation ---------------------------------------------- */

struct files {
	uint8_t *fw, *kernel, *initrd, *cmdline;
	size_t fw_len, kernel_len, initrd_len, cmdline_len;
};

static void files_free(struct files *f)
{
	free(f->fw);
	free(f->kernel);
	free(f->initrd);
	free(f->cmdline);
}

static int run_full(const struct args *a, struct files *f, const char *cmdline, size_t cmdline_len,
                    uint64_t memory, uint32_t cpus, int order, const char *kind, json_t *doc_check)
{
	struct cvm_measure_input in;
	struct cvm_measure_acpi acpi;
	struct cvm_measure *m = NULL;
	char err[320];
	bool has_acpi = false;
	json_t *inputs;
	int rc, r;

	rc = load_acpi(CMD, a, &acpi, &has_acpi);
	if (rc != CLI_EXIT_OK)
		return rc;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return CLI_EXIT_ERROR;
	memset(&in, 0, sizeof(in));
	in.firmware = f->fw;
	in.firmware_len = f->fw_len;
	in.kernel = f->kernel;
	in.kernel_len = f->kernel_len;
	in.initrd = f->initrd;
	in.initrd_len = f->initrd_len;
	in.cmdline = cmdline;
	in.cmdline_len = cmdline_len;
	in.memory_size = memory;
	in.cpu_count = cpus;
	in.order = (enum cvm_mrtd_order)order;
	in.variant = CVM_OVMF_PRE202505;
	in.acpi = has_acpi ? &acpi : NULL;
	r = cvm_measure_tdx(&in, m, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD, "%s (%s)", err[0] != '\0' ? err : "cannot compute the measurements",
		        cvm_strerror(r));
		free(m);
		return CLI_EXIT_ERROR;
	}
	inputs = inputs_json(memory, cpus, order, kind);
	if (inputs != NULL) {
		uint8_t d[48];

		cvm_sha384(f->fw, f->fw_len, d);
		(void)out_jset_hex(inputs, "firmware_sha384", d, 48);
		cvm_sha384(f->kernel, f->kernel_len, d);
		(void)out_jset_hex(inputs, "kernel_sha384", d, 48);
		(void)out_jset_int(inputs, "initrd_len", (long long)f->initrd_len);
		if (f->initrd != NULL) {
			cvm_sha384(f->initrd, f->initrd_len, d);
			(void)out_jset_hex(inputs, "initrd_sha384", d, 48);
		}
		{
			/* the command line as text (sanitised), for diff */
			char *cl = strndup(cmdline, cmdline_len);

			if (cl != NULL)
				(void)out_jset_str(inputs, "cmdline", cl);
			free(cl);
		}
		(void)out_jset_str(inputs, "acpi_source", has_acpi ? acpi.source : NULL);
		if (doc_check != NULL)
			(void)out_jset(inputs, "image_document", json_incref(doc_check));
	}
	rc = finish(m, inputs, a, NULL, 0);
	free(m);
	return rc;
}

static int cmd_full(const struct args *a)
{
	struct files f = {0};
	int rc;

	if (a->firmware == NULL || a->kernel == NULL || a->memory == 0) {
		cli_err(CMD,
		        "--firmware, --kernel and --memory are required (or --image DIR --vm-config FILE, "
		        "or 'cvm measure lite'); see 'cvm help measure'");
		return CLI_EXIT_USAGE;
	}
	rc = cli_read_file(CMD, "firmware", a->firmware, CVM_TDVF_IMAGE_MAX, &f.fw, &f.fw_len);
	if (rc == CLI_EXIT_OK)
		rc =
		    cli_read_file(CMD, "kernel", a->kernel, CVM_MEASURE_KERNEL_MAX, &f.kernel, &f.kernel_len);
	if (rc == CLI_EXIT_OK && a->initrd != NULL)
		rc = cli_read_file(CMD, "initrd", a->initrd, (size_t)UINT32_MAX, &f.initrd, &f.initrd_len);
	if (rc == CLI_EXIT_OK && a->cmdline_file != NULL) {
		rc = cli_read_file(CMD, "command line", a->cmdline_file, CVM_MEASURE_CMDLINE_MAX, &f.cmdline,
		                   &f.cmdline_len);
		/* a file's final newline is not part of the command line */
		while (rc == CLI_EXIT_OK && f.cmdline_len > 0 && f.cmdline[f.cmdline_len - 1] == '\n')
			f.cmdline_len--;
	}
	if (rc == CLI_EXIT_OK) {
		const char *cl =
		    a->cmdline_file != NULL ? (const char *)f.cmdline : (a->cmdline ? a->cmdline : "");
		size_t cl_len = a->cmdline_file != NULL ? f.cmdline_len : strlen(cl);

		rc = run_full(a, &f, cl, cl_len, a->memory, a->cpus,
		              a->order != -1 ? a->order : CVM_MRTD_SINGLE_PASS, "files", NULL);
	}
	files_free(&f);
	return rc;
}

static int load_vm_config(const char *path, struct cvm_measure_vm *vm)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[256];
	int rc, r;

	rc = cli_read_file(CMD, "vm_config", path, JSON_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_measure_vm_config_parse((const char *)buf, len, vm, err, sizeof(err));
	free(buf);
	if (r != CVM_OK) {
		cli_err(CMD, "'%s': %s", path, err);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static int image_path(const char *dir, json_t *meta, const char *key, char *out, size_t cap)
{
	const char *v = json_string_value(json_object_get(meta, key));

	if (v == NULL || strchr(v, '/') != NULL || strcmp(v, "..") == 0) {
		cli_err(CMD, "%s/metadata.json: \"%s\" is missing or not a file name", dir, key);
		return CLI_EXIT_ERROR;
	}
	if ((size_t)snprintf(out, cap, "%s/%s", dir, v) >= cap) {
		cli_err(CMD, "%s/%s: path too long", dir, v);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* check_document compares the image's measurement.tdx.cbor, when it has
 * one, with its files; prints a line per field (text) and sets `*out` to
 * the JSON of the check. */
static int check_document(const char *dir, const struct files *f, const char *cmdline, json_t **out, bool *ok)
{
	static const char *const names[] = {"mrtd.two_pass",  "mrtd.single_pass", "kernel_authenticode",
	                                    "cmdline_sha384", "initrd_sha384",    "td_hob"};
	struct cvm_measure_input in;
	struct cvm_measure_doc_check c;
	uint8_t *doc = NULL;
	size_t doc_len = 0;
	char path[4096], err[320];
	bool vals[6], present[6];
	FILE *probe;
	int r;

	*out = NULL;
	*ok = true;
	(void)snprintf(path, sizeof(path), "%s/measurement.tdx.cbor", dir);
	probe = fopen(path, "rb");
	if (probe == NULL)
		return CLI_EXIT_OK; /* an image without the document */
	(void)fclose(probe);
	if (cli_read_file(CMD, "measurement document", path, CVM_OSIMAGE_TDX_MAX, &doc, &doc_len) !=
	    CLI_EXIT_OK)
		return CLI_EXIT_ERROR;
	memset(&in, 0, sizeof(in));
	in.firmware = f->fw;
	in.firmware_len = f->fw_len;
	in.kernel = f->kernel;
	in.kernel_len = f->kernel_len;
	in.initrd = f->initrd;
	in.initrd_len = f->initrd_len;
	in.cmdline = cmdline;
	in.cmdline_len = strlen(cmdline);
	r = cvm_measure_check_document(&in, doc, doc_len, &c, err, sizeof(err));
	free(doc);
	if (r != CVM_OK) {
		cli_err(CMD, "%s: %s (%s)", path, err[0] != '\0' ? err : "cannot check it", cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	vals[0] = c.mrtd_two_pass;
	vals[1] = c.mrtd_single_pass;
	vals[2] = c.kernel_authenticode;
	vals[3] = c.cmdline;
	vals[4] = c.initrd;
	vals[5] = c.td_hob;
	present[0] = c.has_two_pass;
	present[1] = c.has_single_pass;
	present[2] = present[3] = present[4] = true;
	present[5] = c.has_td_hob;
	*out = json_object();
	for (int i = 0; i < 6; i++) {
		if (!present[i])
			continue;
		if (*out != NULL)
			(void)out_jset(*out, names[i], json_boolean(vals[i]));
		if (!cli_opts.json)
			printf("image document: %s %s\n", names[i],
			       vals[i] ? "matches the files" : "DIFFERS from the files");
	}
	*ok = c.all;
	return CLI_EXIT_OK;
}

static int measure_image(const struct args *a)
{
	struct cvm_measure_vm vm;
	struct files f = {0};
	char path[4096], *cmdline = NULL;
	uint8_t *meta_buf = NULL;
	size_t meta_len = 0;
	json_t *meta = NULL, *doc_check = NULL;
	const char *base;
	bool doc_ok = true;
	int rc;

	if (a->vm_config == NULL) {
		cli_err(CMD, "--image needs --vm-config FILE (dstack's vm_config: memory_size, cpu_count, "
		             "qemu_version)");
		return CLI_EXIT_USAGE;
	}
	rc = load_vm_config(a->vm_config, &vm);
	if (rc != CLI_EXIT_OK)
		return rc;
	(void)snprintf(path, sizeof(path), "%s/metadata.json", a->image);
	rc = cli_read_file(CMD, "image metadata", path, JSON_MAX, &meta_buf, &meta_len);
	if (rc == CLI_EXIT_OK) {
		meta = json_loadb((const char *)meta_buf, meta_len, 0, NULL);
		base = json_string_value(json_object_get(meta, "cmdline"));
		if (!json_is_object(meta) || base == NULL) {
			cli_err(CMD, "%s: not a dstack image metadata.json with a \"cmdline\"", path);
			rc = CLI_EXIT_ERROR;
		}
	}
	if (rc == CLI_EXIT_OK)
		rc = image_path(a->image, meta, "bios", path, sizeof(path));
	if (rc == CLI_EXIT_OK)
		rc = cli_read_file(CMD, "firmware", path, CVM_TDVF_IMAGE_MAX, &f.fw, &f.fw_len);
	if (rc == CLI_EXIT_OK)
		rc = image_path(a->image, meta, "kernel", path, sizeof(path));
	if (rc == CLI_EXIT_OK)
		rc = cli_read_file(CMD, "kernel", path, CVM_MEASURE_KERNEL_MAX, &f.kernel, &f.kernel_len);
	if (rc == CLI_EXIT_OK)
		rc = image_path(a->image, meta, "initrd", path, sizeof(path));
	if (rc == CLI_EXIT_OK)
		rc = cli_read_file(CMD, "initrd", path, (size_t)UINT32_MAX, &f.initrd, &f.initrd_len);
	if (rc == CLI_EXIT_OK) {
		/* dstack measures the image's command line plus OVMF's "initrd=initrd" */
		size_t n = strlen(base) + sizeof(" initrd=initrd");

		cmdline = malloc(n);
		if (cmdline == NULL) {
			rc = CLI_EXIT_ERROR;
		} else {
			(void)snprintf(cmdline, n, "%s initrd=initrd", base);
			rc = check_document(a->image, &f, cmdline, &doc_check, &doc_ok);
			if (rc == CLI_EXIT_OK)
				rc = run_full(a, &f, cmdline, strlen(cmdline), vm.memory_size, vm.cpu_count,
				              a->order != -1 ? a->order : (int)vm.order, "image", doc_check);
			if (rc == CLI_EXIT_OK && doc_check != NULL && !doc_ok)
				rc = CLI_EXIT_REJECTED;
		}
	}
	json_decref(doc_check);
	free(cmdline);
	json_decref(meta);
	free(meta_buf);
	files_free(&f);
	cvm_measure_vm_cleanup(&vm);
	return rc;
}

/* ---- lite ---------------------------------------------------------------- */

static int cmd_lite(int argc, char **argv)
{
	struct args a;
	struct cvm_measure_vm vm;
	struct cvm_measure_acpi acpi;
	struct cvm_measure *m = NULL;
	uint8_t *doc = NULL, *qbin = NULL, sum[32], listed[32];
	size_t doc_len = 0, qbin_len = 0;
	json_t *root = NULL, *inputs = NULL;
	char err[320];
	bool done, vm_ok = false, hash_ok = false, listed_ok = false;
	int rc, r;

	rc = parse_args("measure lite", argc, argv, &a, &done);
	if (rc != CLI_EXIT_OK || done)
		return rc;
	memset(&vm, 0, sizeof(vm));
	if (argc - optind == 1) {
		/* a GetQuote reply: quote, event_log, vm_config */
		const char *vmc;

		rc = cli_read_file(CMD, "GetQuote reply", argv[optind], JSON_MAX, &doc, &doc_len);
		if (rc != CLI_EXIT_OK)
			return rc;
		root = json_loadb((const char *)doc, doc_len, 0, NULL);
		vmc = json_string_value(json_object_get(root, "vm_config"));
		if (vmc == NULL) {
			cli_err(CMD, "'%s' is not a GetQuote reply with a vm_config string", argv[optind]);
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		r = cvm_measure_vm_config_parse(vmc, strlen(vmc), &vm, err, sizeof(err));
		if (r != CVM_OK) {
			cli_err(CMD, "'%s': %s", argv[optind], err);
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		vm_ok = true;
		r = cvm_measure_acpi_from_eventlog(doc, doc_len, &acpi);
		if (r != CVM_OK) {
			cli_err(CMD, "'%s': cannot take the three ACPI digests from its event_log: %s",
			        argv[optind], cvm_strerror(r));
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		if (a.quote == NULL && json_is_string(json_object_get(root, "quote"))) {
			/* compare with the reply's own quote */
			const char *qh = json_string_value(json_object_get(root, "quote"));
			size_t ql = json_string_length(json_object_get(root, "quote"));

			qbin = malloc(ql / 2 + 1);
			if (qbin == NULL || cvm_hex_decode(qh, ql, qbin, ql / 2 + 1, &qbin_len) != CVM_OK) {
				cli_err(CMD, "'%s': \"quote\" is not hex", argv[optind]);
				rc = CLI_EXIT_ERROR;
				goto out;
			}
		}
	} else if (argc - optind == 0 && a.vm_config != NULL && a.event_log != NULL) {
		rc = load_vm_config(a.vm_config, &vm);
		if (rc != CLI_EXIT_OK)
			goto out;
		vm_ok = true;
		a.acpi_log = a.event_log;
		a.acpi_digests = NULL;
		rc = load_acpi(CMD, &a, &acpi, &done);
		if (rc != CLI_EXIT_OK)
			goto out;
	} else {
		cli_err(CMD, "lite takes --vm-config FILE --event-log LOG, or one GetQuote reply JSON");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (vm.measurement == NULL) {
		cli_err(
		    CMD,
		    "the vm_config has no tdx_measurement (measurement.tdx.cbor): not a lite attestation");
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	r = cvm_measure_lite(vm.measurement, vm.measurement_len, vm.memory_size,
	                     a.order != -1 ? (enum cvm_mrtd_order)a.order : vm.order, &acpi, m, err,
	                     sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD, "%s (%s)", err[0] != '\0' ? err : "cannot compute", cvm_strerror(r));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	inputs = inputs_json(vm.memory_size, vm.cpu_count, a.order != -1 ? a.order : (int)vm.order, "lite");
	if (inputs != NULL) {
		(void)out_jset_str(inputs, "mrtd_order_source",
		                   a.order != -1 ? "command line" : vm.order_source);
		(void)out_jset_str(inputs, "acpi_source", acpi.source);
	}
	/* the document's binding to the image hash, as dstack checks it */
	if (vm.checksum_file != NULL && vm.has_os_image_hash) {
		cvm_sha256(vm.checksum_file, vm.checksum_file_len, sum);
		hash_ok = memcmp(sum, vm.os_image_hash, 32) == 0;
		cvm_sha256(vm.measurement, vm.measurement_len, sum);
		r = cvm_osimage_checksum_find(vm.checksum_file, vm.checksum_file_len, "measurement.tdx.cbor",
		                              listed);
		listed_ok = r == CVM_OK && memcmp(sum, listed, 32) == 0;
		(void)out_jset(inputs, "checksum_file_is_os_image_hash", json_boolean(hash_ok));
		(void)out_jset(inputs, "measurement_listed_in_checksum_file", json_boolean(listed_ok));
	}
	rc = finish(m, inputs, &a, qbin, qbin_len);
	inputs = NULL;
	if (!cli_opts.json && vm.checksum_file != NULL && vm.has_os_image_hash)
		printf("image: SHA-256 of the checksum file %s os_image_hash; it %s measurement.tdx.cbor\n",
		       hash_ok ? "is" : "is NOT", listed_ok ? "lists" : "does NOT list");
	else if (!cli_opts.json)
		printf(
		    "image: the vm_config has no checksum_file or os_image_hash: the document is bound to no "
		    "image hash\n");
	/* registers that match prove nothing about an image the document is
	 * not bound to */
	if (rc == CLI_EXIT_OK && (qbin != NULL || a.quote != NULL) && !(hash_ok && listed_ok))
		rc = CLI_EXIT_REJECTED;
out:
	json_decref(inputs);
	json_decref(root);
	if (vm_ok)
		cvm_measure_vm_cleanup(&vm);
	free(m);
	free(qbin);
	free(doc);
	return rc;
}

/* ---- diff ---------------------------------------------------------------- */

/* hint names the input behind an event that changed. */
static const char *hint(int reg, const char *what)
{
	if (reg == 0 && strncmp(what, "TD HOB", 6) == 0)
		return "the TD HOB changed: memory size changed, or the firmware's accepted ranges";
	if (reg == 0 && strncmp(what, "CFV", 3) == 0)
		return "the firmware's variable store (CFV) changed: another OVMF build";
	if (reg == 0 && strncmp(what, "ACPI", 4) == 0)
		return "QEMU's ACPI tables changed: vCPU count, memory, devices (NICs, GPUs, disks) or QEMU "
		       "version";
	if (reg == 0)
		return "an OVMF boot variable changed: another OVMF variant";
	if (reg == 1 && strncmp(what, "kernel", 6) == 0)
		return "kernel authenticode changed (QEMU patches the setup header: memory size or initrd "
		       "size "
		       "changed?), or another kernel";
	if (reg == 1)
		return "an OVMF boot event changed: another OVMF";
	if (reg == 2 && strncmp(what, "kernel command line", 19) == 0)
		return "the kernel command line changed (dstack: rootfs hash and size are in it)";
	if (reg == 2)
		return "the initrd changed";
	return "";
}

static int cmd_diff(int argc, char **argv)
{
	json_t *j[2] = {NULL, NULL};
	int rc = CLI_EXIT_OK, differ = 0;
	const char *mrtd[2];

	if (argc != 3 || argv[1][0] == '-') {
		if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return CLI_EXIT_OK;
		}
		cli_err("measure diff", "takes two files, the --json outputs of 'cvm measure'");
		return CLI_EXIT_USAGE;
	}
	for (int i = 0; i < 2; i++) {
		json_error_t je;

		j[i] = json_load_file(argv[1 + i], JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(j[i]) || !json_is_string(json_object_get(j[i], "mrtd"))) {
			cli_err("measure diff", "'%s' is not a 'cvm measure --json' output: %s", argv[1 + i],
			        j[i] == NULL ? je.text : "no \"mrtd\"");
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		mrtd[i] = json_string_value(json_object_get(j[i], "mrtd"));
	}
	if (strcmp(mrtd[0], mrtd[1]) != 0) {
		const json_t *o0 = json_object_get(json_object_get(j[0], "inputs"), "mrtd_order"),
		             *o1 = json_object_get(json_object_get(j[1], "inputs"), "mrtd_order");

		differ = 1;
		printf("MRTD differs: %s\n", json_equal(o0, o1)
		                                 ? "the firmware changed"
		                                 : "the MRTD order changed (QEMU 8.x two pass vs "
		                                   "QEMU >= 9 single pass), or the firmware");
	}
	for (int r = 0; r < 3; r++) {
		const json_t *v0 = json_object_get(j[0], reg_names[r]),
		             *v1 = json_object_get(j[1], reg_names[r]);
		const json_t *e0 = json_object_get(json_object_get(j[0], "events"), reg_names[r]),
		             *e1 = json_object_get(json_object_get(j[1], "events"), reg_names[r]);
		bool named = false;

		if (json_equal(v0, v1))
			continue;
		differ = 1;
		if (!json_is_string(v0) || !json_is_string(v1)) {
			printf("RTMR%d differs: computed in one output only (ACPI digests given to one)\n",
			       r);
			continue;
		}
		for (size_t i = 0; i < json_array_size(e0) && i < json_array_size(e1); i++) {
			const json_t *a0 = json_array_get(e0, i), *a1 = json_array_get(e1, i);
			const char *what = json_string_value(json_object_get(a0, "what"));

			if (json_equal(json_object_get(a0, "digest"), json_object_get(a1, "digest")))
				continue;
			printf("RTMR%d differs: event %zu (%s): %s\n", r, i, what != NULL ? what : "?",
			       hint(r, what != NULL ? what : ""));
			named = true;
		}
		if (!named)
			printf("RTMR%d differs: the event lists differ in length\n", r);
	}
	{
		json_t *i0 = json_object_get(j[0], "inputs"), *i1 = json_object_get(j[1], "inputs");
		const char *key;
		json_t *v;

		json_object_foreach(i0, key, v)
		{
			if (!json_equal(v, json_object_get(i1, key))) {
				char *s0 = json_dumps(v, JSON_ENCODE_ANY),
				     *s1 = json_dumps(json_object_get(i1, key), JSON_ENCODE_ANY);

				printf("input %s: %s -> %s\n", key, s0 != NULL ? s0 : "?",
				       s1 != NULL ? s1 : "(absent)");
				free(s0);
				free(s1);
			}
		}
	}
	if (!differ)
		printf("same: MRTD and RTMR0..2 are equal\n");
	rc = differ ? CLI_EXIT_REJECTED : CLI_EXIT_OK;
out:
	json_decref(j[0]);
	json_decref(j[1]);
	return rc;
}

/* cmd_authenticode prints the Authenticode SHA-384 of PE files as they are
 * (no QEMU patch): what OVMF extends for an EFI application it loads. */
static int cmd_authenticode(int argc, char **argv)
{
	int rc = CLI_EXIT_OK;

	if (argc < 2 || argv[1][0] == '-') {
		cli_err("measure authenticode", "takes one or more PE/COFF files");
		return CLI_EXIT_USAGE;
	}
	for (int i = 1; i < argc && rc == CLI_EXIT_OK; i++) {
		uint8_t *buf = NULL, d[48];
		size_t len = 0;
		char hex[97];
		int r;

		rc = cli_read_file("measure authenticode", "PE file", argv[i], CVM_MEASURE_KERNEL_MAX, &buf,
		                   &len);
		if (rc != CLI_EXIT_OK)
			break;
		r = cvm_pe_authenticode_sha384(buf, len, d);
		free(buf);
		if (r != CVM_OK) {
			cli_err("measure authenticode", "'%s' is not a PE/COFF image cvmkit can hash: %s",
			        argv[i], cvm_strerror(r));
			rc = CLI_EXIT_ERROR;
			break;
		}
		cvm_hex_encode(d, 48, hex);
		printf("%s  %s\n", hex, argv[i]);
	}
	return rc;
}

/* The ACPI probe (docs/cli/cvm-measure.md, "Getting the ACPI tables: the
 * probe"): lib/qemu does the work. */
#define PROBE_KERNEL_DIR "/var/cache/cvmkit/guest-kernel/current"
#define PROBE_PATH_LEN 4096

enum {
	OPT_P_INITRD = 0x300,
	OPT_P_KERNEL,
	OPT_P_QEMU,
	OPT_P_OUT,
	OPT_P_WORK,
	OPT_P_CACHE,
	OPT_P_TIMEOUT,
	OPT_P_BUSYBOX,
	OPT_P_KERNEL_DIR,
};

/* glob_one finds the one file matching `pattern`. */
static int glob_one(const char *cmd, const char *what, const char *pattern, char *out, size_t cap)
{
	glob_t g;
	int rc = CLI_EXIT_ERROR;

	memset(&g, 0, sizeof(g));
	if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0)
		cli_err(cmd, "no %s (%s): give it explicitly", what, pattern);
	else if (g.gl_pathc > 1)
		cli_err(cmd, "%zu files match %s (%s): give the one to use", (size_t)g.gl_pathc, what,
		        pattern);
	else if ((size_t)snprintf(out, cap, "%s", g.gl_pathv[0]) >= cap)
		cli_err(cmd, "the path of the %s is too long", what);
	else
		rc = CLI_EXIT_OK;
	globfree(&g);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 ? 0 : -1;
}

static void probe_print_blob(json_t *o, const char *key, const char *dir, const char *name, const uint8_t *p,
                             size_t len)
{
	uint8_t d384[48], d256[32];
	char path[PROBE_PATH_LEN], hex[97];

	cvm_sha384(p, len, d384);
	cvm_sha256(p, len, d256);
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (o != NULL) {
		json_t *b = json_object();

		if (b == NULL || out_jset_str(b, "path", path) != 0 ||
		    out_jset_int(b, "len", (long long)len) != 0 || out_jset_hex(b, "sha384", d384, 48) != 0 ||
		    out_jset_hex(b, "sha256", d256, 32) != 0 || out_jset(o, key, b) != 0)
			return;
		return;
	}
	cvm_hex_encode(d384, 48, hex);
	printf("%-17s %7zu bytes  sha384 %s\n", name, len, hex);
}

static int cmd_acpi_probe(int argc, char **argv)
{
	static const char *const cmd = "measure acpi-probe";
	static const struct option longopts[] = {
	    {"probe-initrd", required_argument, NULL, OPT_P_INITRD},
	    {"kernel", required_argument, NULL, OPT_P_KERNEL},
	    {"qemu", required_argument, NULL, OPT_P_QEMU},
	    {"out", required_argument, NULL, OPT_P_OUT},
	    {"work", required_argument, NULL, OPT_P_WORK},
	    {"cache", required_argument, NULL, OPT_P_CACHE},
	    {"timeout", required_argument, NULL, OPT_P_TIMEOUT},
	    CLI_COMMON_LONGOPTS,
	};
	const char *initrd = NULL, *kernel = NULL, *qemu = NULL, *out = ".", *work = NULL, *cache = NULL;
	char kernel_buf[PROBE_PATH_LEN], work_buf[64], path[PROBE_PATH_LEN], err[4096] = "";
	struct cvm_qemu_probe_opts po;
	struct cvm_qemu_acpi acpi;
	struct cvm_measure_acpi dig;
	const uint8_t *blobs[3];
	size_t lens[3];
	static const char *const names[3] = {"table-loader.bin", "rsdp.bin", "tables.bin"};
	static const char *const keys[3] = {"table_loader", "rsdp", "tables"};
	char hex[3][97];
	uint64_t timeout = 0;
	bool own_work = false;
	json_t *o = NULL;
	int c, r, rc = CLI_EXIT_ERROR;

	memset(&acpi, 0, sizeof(acpi));
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, "+:vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case OPT_P_INITRD:
			initrd = optarg;
			break;
		case OPT_P_KERNEL:
			kernel = optarg;
			break;
		case OPT_P_QEMU:
			qemu = optarg;
			break;
		case OPT_P_OUT:
			out = optarg;
			break;
		case OPT_P_WORK:
			work = optarg;
			break;
		case OPT_P_CACHE:
			cache = optarg;
			break;
		case OPT_P_TIMEOUT:
			if (!parse_size(optarg, &timeout) || timeout > 3600) {
				cli_err(cmd, "--timeout '%s' is not a number of seconds (1..3600)", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		default:
			cli_bad_option(cmd, c, argv, "cvm help measure");
			return CLI_EXIT_USAGE;
		}
	}
	if (initrd == NULL) {
		cli_err(cmd, "--probe-initrd is required (make it with 'cvm measure probe-initrd')");
		return CLI_EXIT_USAGE;
	}
	if (optind >= argc) {
		cli_err(cmd, "give the VM's QEMU arguments after '--' (without the program name)");
		return CLI_EXIT_USAGE;
	}
	if (kernel == NULL) {
		if (glob_one(cmd, "guest kernel", PROBE_KERNEL_DIR "/boot/vmlinuz-*", kernel_buf,
		             sizeof(kernel_buf)) != CLI_EXIT_OK)
			return CLI_EXIT_ERROR;
		kernel = kernel_buf;
	}
	if (work == NULL) {
		const char *tmp = getenv("TMPDIR");

		if ((size_t)snprintf(work_buf, sizeof(work_buf), "%s/cvm-acpi-probe.XXXXXX",
		                     tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp") >= sizeof(work_buf) ||
		    mkdtemp(work_buf) == NULL) {
			cli_err(cmd, "cannot create a work dir: %s", strerror(errno));
			return CLI_EXIT_ERROR;
		}
		work = work_buf;
		own_work = true;
	}
	if (cli_opts.verbose > 0) {
		struct cvm_qemu_probe_cmd pc;

		r = cvm_qemu_probe_cmd_make((const char *const *)(argv + optind), (size_t)(argc - optind),
		                            kernel, initrd, work, &pc, err, sizeof(err));
		if (r == CVM_OK) {
			fprintf(stderr, "cvm %s: probe command line: %s", cmd,
			        qemu != NULL ? qemu : "qemu-system-x86_64");
			for (size_t i = 0; i < pc.count; i++)
				fprintf(stderr, " '%s'", pc.args[i]);
			fprintf(stderr, "\n");
			cvm_qemu_probe_cmd_cleanup(&pc);
		}
	}
	memset(&po, 0, sizeof(po));
	po.qemu = qemu;
	po.args = (const char *const *)(argv + optind);
	po.arg_count = (size_t)(argc - optind);
	po.kernel = kernel;
	po.initrd = initrd;
	po.work_dir = work;
	po.timeout_s = (unsigned)timeout;
	po.cache_dir = cache;
	r = cvm_qemu_acpi_probe(&po, &acpi, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(cmd, "the probe failed (%s): %s", cvm_strerror(r), err);
		if (own_work)
			cli_err(cmd, "its files are kept in %s", work);
		return CLI_EXIT_ERROR;
	}
	if (own_work)
		(void)nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	blobs[0] = acpi.loader;
	blobs[1] = acpi.rsdp;
	blobs[2] = acpi.tables;
	lens[0] = acpi.loader_len;
	lens[1] = acpi.rsdp_len;
	lens[2] = acpi.tables_len;
	if (mkdir(out, 0755) != 0 && errno != EEXIST) {
		cli_err(cmd, "cannot create '%s': %s", out, strerror(errno));
		goto done;
	}
	for (int i = 0; i < 3; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", out, names[i]) >= sizeof(path) ||
		    cvm_file_write(path, blobs[i], lens[i], 0644) != CVM_OK) {
			cli_err(cmd, "cannot write '%s/%s': %s", out, names[i], strerror(errno));
			goto done;
		}
	}
	cvm_qemu_acpi_digests(&acpi, &dig);
	cvm_hex_encode(dig.loader, 48, hex[0]);
	cvm_hex_encode(dig.rsdp, 48, hex[1]);
	cvm_hex_encode(dig.tables, 48, hex[2]);
	if (cli_opts.json) {
		o = json_object();
		if (o == NULL)
			goto done;
		for (int i = 0; i < 3; i++)
			probe_print_blob(o, keys[i], out, names[i], blobs[i], lens[i]);
		(void)snprintf(path, sizeof(path), "%s,%s,%s", hex[0], hex[1], hex[2]);
		if (out_jset_str(o, "acpi_digests", path) != 0 ||
		    out_jset_str(o, "cache_key", acpi.cache_key) != 0 ||
		    out_jset(o, "from_cache", json_boolean(acpi.from_cache)) != 0)
			goto done;
		(void)snprintf(path, sizeof(path), "%s/%s,%s/%s,%s/%s", out, names[0], out, names[1], out,
		               names[2]);
		if (out_jset_str(o, "acpi_files", path) != 0 || out_json_print(o) != 0)
			goto done;
	} else {
		for (int i = 0; i < 3; i++)
			probe_print_blob(NULL, keys[i], out, names[i], blobs[i], lens[i]);
		if (!cli_opts.quiet && acpi.from_cache)
			printf("(from the cache: key %s)\n", acpi.cache_key);
		printf("--acpi-files %s/%s,%s/%s,%s/%s\n", out, names[0], out, names[1], out, names[2]);
	}
	rc = CLI_EXIT_OK;
done:
	json_decref(o);
	cvm_qemu_acpi_cleanup(&acpi);
	return rc;
}

static int cmd_probe_initrd(int argc, char **argv)
{
	static const char *const cmd = "measure probe-initrd";
	static const struct option longopts[] = {
	    {"busybox", required_argument, NULL, OPT_P_BUSYBOX},
	    {"kernel-dir", required_argument, NULL, OPT_P_KERNEL_DIR},
	    CLI_COMMON_LONGOPTS,
	};
	const char *busybox = "/bin/busybox", *kdir = PROBE_KERNEL_DIR;
	char pattern[PROBE_PATH_LEN], module[PROBE_PATH_LEN];
	int c, r;

	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case OPT_P_BUSYBOX:
			busybox = optarg;
			break;
		case OPT_P_KERNEL_DIR:
			kdir = optarg;
			break;
		default:
			cli_bad_option(cmd, c, argv, "cvm help measure");
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_err(cmd, "give one output file (the initrd to write)");
		return CLI_EXIT_USAGE;
	}
	if ((size_t)snprintf(pattern, sizeof(pattern),
	                     "%s/lib/modules/*/kernel/drivers/firmware/qemu_fw_cfg.ko",
	                     kdir) >= sizeof(pattern)) {
		cli_err(cmd, "--kernel-dir is too long");
		return CLI_EXIT_USAGE;
	}
	if (glob_one(cmd, "qemu_fw_cfg.ko module of the guest kernel (uncompressed)", pattern, module,
	             sizeof(module)) != CLI_EXIT_OK)
		return CLI_EXIT_ERROR;
	r = cvm_qemu_probe_initrd_write(busybox, module, argv[optind]);
	if (r != CVM_OK) {
		cli_err(cmd, "cannot write the probe initrd '%s' from '%s' and '%s': %s%s", argv[optind],
		        busybox, module, cvm_strerror(r),
		        r == CVM_E_INVAL
		            ? " (busybox must be a static ELF binary, the module an uncompressed .ko)"
		            : "");
		return CLI_EXIT_ERROR;
	}
	if (!cli_opts.quiet)
		printf("%s: probe initrd with %s and %s\n", argv[optind], busybox, module);
	return CLI_EXIT_OK;
}

/* ---- SEV-SNP -------------------------------------------------------------- */

static void snp_usage(FILE *f)
{
	fprintf(f, "usage: cvm measure snp --firmware OVMF.fd [--kernel K [--initrd I] [--cmdline S]]\n"
	           "                       --vcpus N [--vcpu-type EPYC-v4] [--guest-features 0x1]\n"
	           "                       [--report REPORT] [--json] [--explain]\n"
	           "\n"
	           "Computes the SEV-SNP launch digest (the report's MEASUREMENT) of a guest QEMU launches\n"
	           "with this OVMF (-bios), -kernel/-initrd/-append with kernel-hashes=on, N vCPUs of the\n"
	           "given model, as sev-snp-measure --mode snp --vmm-type QEMU does. Without --kernel the\n"
	           "kernel hashes page is measured as zeroes (no -kernel). The guest policy, host data and\n"
	           "ID block are not part of it.\n"
	           "\n"
	           "  --vcpu-type NAME     QEMU's CPU model (EPYC, EPYC-v1..v4, EPYC-Rome*, EPYC-Milan*,\n"
	           "                       EPYC-Genoa*, EPYC-Turin); default EPYC-v4, as cvm-vmmd launches\n"
	           "  --guest-features X   the VMSA's SEV_FEATURES: 0x1 (default, SNP only), 0x21 when the\n"
	           "                       host kernel enables DebugSwap (Linux >= 6.8 does by default)\n"
	           "  --report REPORT      compare with an SEV-SNP report's MEASUREMENT (binary or hex):\n"
	           "                       exit 3 when it differs. Its signature is not checked here:\n"
	           "                       'cvm quote verify' does that.\n"
	           "\n"
	           "Exit codes: 0 ok, 1 error, 2 usage, 3 the report differs.\n");
}

enum {
	OPT_VCPUS = 0x300,
	OPT_VCPU_TYPE,
	OPT_GUEST_FEATURES,
	OPT_REPORT,
};

struct snp_args {
	const char *firmware, *kernel, *initrd, *cmdline, *vcpu_type, *report;
	uint32_t vcpus;
	uint64_t guest_features;
	bool explain;
};

static int snp_parse_args(int argc, char **argv, struct snp_args *a, bool *done)
{
	static const struct option longopts[] = {
	    {"firmware", required_argument, NULL, OPT_FIRMWARE},
	    {"kernel", required_argument, NULL, OPT_KERNEL},
	    {"initrd", required_argument, NULL, OPT_INITRD},
	    {"cmdline", required_argument, NULL, OPT_CMDLINE},
	    {"vcpus", required_argument, NULL, OPT_VCPUS},
	    {"vcpu-type", required_argument, NULL, OPT_VCPU_TYPE},
	    {"guest-features", required_argument, NULL, OPT_GUEST_FEATURES},
	    {"report", required_argument, NULL, OPT_REPORT},
	    {"explain", no_argument, NULL, OPT_EXPLAIN},
	    CLI_COMMON_LONGOPTS,
	};
	const char *cmd = CMD " snp";
	char *end;
	unsigned long long v;
	int c;

	memset(a, 0, sizeof(*a));
	a->vcpu_type = "EPYC-v4";
	a->guest_features = 0x1;
	*done = false;
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case 'h':
			snp_usage(stdout);
			*done = true;
			return CLI_EXIT_OK;
		case OPT_FIRMWARE:
			a->firmware = optarg;
			break;
		case OPT_KERNEL:
			a->kernel = optarg;
			break;
		case OPT_INITRD:
			a->initrd = optarg;
			break;
		case OPT_CMDLINE:
			a->cmdline = optarg;
			break;
		case OPT_VCPUS:
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || v == 0 || v > CVM_SNP_VCPUS_MAX) {
				cli_err(cmd, "--vcpus '%s' is not a count from 1 to %u", optarg,
				        CVM_SNP_VCPUS_MAX);
				return CLI_EXIT_USAGE;
			}
			a->vcpus = (uint32_t)v;
			break;
		case OPT_VCPU_TYPE:
			a->vcpu_type = optarg;
			break;
		case OPT_GUEST_FEATURES:
			errno = 0;
			v = strtoull(optarg, &end, 0);
			if (errno != 0 || end == optarg || *end != '\0') {
				cli_err(cmd, "--guest-features '%s' is not a number (0x1, 0x21)", optarg);
				return CLI_EXIT_USAGE;
			}
			a->guest_features = v;
			break;
		case OPT_REPORT:
			a->report = optarg;
			break;
		case OPT_EXPLAIN:
			a->explain = true;
			break;
		default:
			cli_bad_option(cmd, c, argv, "cvm measure snp --help");
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 0) {
		cli_err(cmd, "unexpected argument '%s'; see 'cvm measure snp --help'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (a->firmware == NULL || a->vcpus == 0) {
		cli_err(cmd, "give --firmware and --vcpus; see 'cvm measure snp --help'");
		return CLI_EXIT_USAGE;
	}
	if (a->kernel == NULL && (a->initrd != NULL || a->cmdline != NULL)) {
		cli_err(cmd, "--initrd and --cmdline are measured with a kernel only: give --kernel too");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* snp_report_measurement reads an SEV-SNP report (binary, or hex text) and
 * takes its MEASUREMENT; the signature is not checked. */
static int snp_report_measurement(const char *path, uint8_t out[48])
{
	const char *cmd = CMD " snp";
	struct cvm_snp_report rep;
	uint8_t *buf = NULL, *bin = NULL;
	size_t len = 0, n = 0;
	int rc, r;

	rc = cli_read_file(cmd, "report", path, JSON_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	bin = malloc(len / 2 + 1);
	if (bin != NULL && cvm_hex_decode((const char *)buf, len, bin, len / 2 + 1, &n) == CVM_OK) {
		free(buf);
		buf = bin;
		len = n;
	} else {
		free(bin);
	}
	r = cvm_snp_report_parse(buf, len, &rep);
	if (r != CVM_OK) {
		cli_err(cmd, "'%s' is not an SEV-SNP attestation report: %s", path, cvm_strerror(r));
		free(buf);
		return CLI_EXIT_ERROR;
	}
	memcpy(out, rep.measurement, 48);
	free(buf);
	return CLI_EXIT_OK;
}

static json_t *snp_json(const struct cvm_snp_measure *m, const struct snp_args *a, uint32_t sig)
{
	json_t *o = json_object(), *in = json_object(), *steps = json_array();
	char hex[97];

	if (o == NULL || in == NULL || steps == NULL) {
		json_decref(o);
		json_decref(in);
		json_decref(steps);
		return NULL;
	}
	cvm_hex_encode(m->digest, 48, hex);
	(void)out_jset(o, "measurement", json_string(hex));
	cvm_hex_encode(m->firmware_digest, 48, hex);
	(void)out_jset(o, "firmware_digest", json_string(hex));
	(void)out_jset(in, "vcpus", json_integer(a->vcpus));
	(void)out_jset(in, "vcpu_type", json_string(a->vcpu_type));
	(void)out_jset(in, "vcpu_sig", json_integer(sig));
	(void)out_jset(in, "guest_features", json_integer((json_int_t)a->guest_features));
	(void)out_jset(in, "kernel_hashes", json_boolean(a->kernel != NULL));
	(void)out_jset(in, "vmm", json_string("QEMU"));
	(void)out_jset(o, "inputs", in);
	for (size_t i = 0; i < m->step_count; i++) {
		const struct cvm_snp_measure_step *s = &m->steps[i];
		json_t *e = json_object();

		if (e == NULL)
			continue;
		cvm_hex_encode(s->digest, 48, hex);
		(void)out_jset(e, "what", json_string(s->what));
		(void)out_jset(e, "source", json_string(s->source));
		(void)out_jset(e, "gpa", json_integer((json_int_t)s->gpa));
		(void)out_jset(e, "pages", json_integer((json_int_t)s->pages));
		(void)out_jset(e, "digest_after", json_string(hex));
		(void)json_array_append_new(steps, e);
	}
	(void)out_jset(o, "steps", steps);
	return o;
}

static int cmd_snp(int argc, char **argv)
{
	const char *cmd = CMD " snp";
	struct snp_args a;
	struct cvm_snp_measure_input in = {0};
	static struct cvm_snp_measure m;
	uint8_t *fw = NULL, *kernel = NULL, *initrd = NULL, want[48];
	size_t fw_len = 0, kernel_len = 0, initrd_len = 0;
	char err[256] = "", hex[97];
	json_t *o = NULL;
	bool done;
	int rc, r;

	rc = snp_parse_args(argc, argv, &a, &done);
	if (rc != CLI_EXIT_OK || done)
		return rc;
	if (cvm_snp_vcpu_sig(a.vcpu_type, &in.vcpu_sig) != CVM_OK) {
		cli_err(cmd,
		        "--vcpu-type '%s' is not a CPU model this table knows (EPYC, EPYC-v1..v4, EPYC-IBPB, "
		        "EPYC-Rome[-v1..v3], EPYC-Milan[-v1,-v2], EPYC-Genoa[-v1], EPYC-Turin)",
		        a.vcpu_type);
		return CLI_EXIT_USAGE;
	}
	rc = cli_read_file(cmd, "firmware", a.firmware, CVM_TDVF_IMAGE_MAX, &fw, &fw_len);
	if (rc == CLI_EXIT_OK && a.kernel != NULL)
		rc = cli_read_file(cmd, "kernel", a.kernel, CVM_MEASURE_KERNEL_MAX, &kernel, &kernel_len);
	if (rc == CLI_EXIT_OK && a.initrd != NULL)
		rc = cli_read_file(cmd, "initrd", a.initrd, CVM_MEASURE_KERNEL_MAX, &initrd, &initrd_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (a.cmdline != NULL && strlen(a.cmdline) > CVM_MEASURE_CMDLINE_MAX) {
		cli_err(cmd, "--cmdline is longer than %zu bytes", CVM_MEASURE_CMDLINE_MAX);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	in.firmware = fw;
	in.firmware_len = fw_len;
	in.kernel_hashes = a.kernel != NULL;
	in.kernel = kernel;
	in.kernel_len = kernel_len;
	in.initrd = initrd;
	in.initrd_len = initrd_len;
	in.cmdline = a.cmdline;
	in.cmdline_len = a.cmdline != NULL ? strlen(a.cmdline) : 0;
	in.vcpus = a.vcpus;
	in.guest_features = a.guest_features;
	r = cvm_snp_launch_digest(&in, &m, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(cmd, "%s: %s", a.firmware, err[0] != '\0' ? err : cvm_strerror(r));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	o = snp_json(&m, &a, in.vcpu_sig);
	if (o == NULL) {
		cli_err(cmd, "out of memory");
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	if (!cli_opts.json) {
		cvm_hex_encode(m.digest, 48, hex);
		printf("MEASUREMENT %s\n", hex);
		if (a.explain) {
			for (size_t i = 0; i < m.step_count; i++) {
				const struct cvm_snp_measure_step *s = &m.steps[i];

				cvm_hex_encode(s->digest, 48, hex);
				printf("  [%2zu] %-18s gpa 0x%" PRIx64 ", %" PRIu64 " page(s)\n       %s\n"
				       "       digest after: %s\n",
				       i, s->what, s->gpa, s->pages, s->source, hex);
			}
		}
	}
	if (a.report != NULL) {
		bool same;

		rc = snp_report_measurement(a.report, want);
		if (rc != CLI_EXIT_OK)
			goto out;
		same = memcmp(want, m.digest, 48) == 0;
		(void)out_jset(o, "report_matches", json_boolean(same));
		if (!cli_opts.json) {
			cvm_hex_encode(want, 48, hex);
			printf("report: MEASUREMENT %s (%s)\n", same ? "matches" : "DIFFERS", hex);
		}
		rc = same ? CLI_EXIT_OK : CLI_EXIT_REJECTED;
	}
	if (cli_opts.json && out_json_print(o) != 0)
		rc = CLI_EXIT_ERROR;
out:
	json_decref(o);
	free(fw);
	free(kernel);
	free(initrd);
	return rc;
}

int cmd_measure(int argc, char **argv)
{
	struct args a;
	bool done;
	int rc;

	if (argc >= 2 && strcmp(argv[1], "lite") == 0)
		return cmd_lite(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "diff") == 0)
		return cmd_diff(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "snp") == 0)
		return cmd_snp(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "authenticode") == 0)
		return cmd_authenticode(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "acpi-probe") == 0)
		return cmd_acpi_probe(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "probe-initrd") == 0)
		return cmd_probe_initrd(argc - 1, argv + 1);
	rc = parse_args(CMD, argc, argv, &a, &done);
	if (rc != CLI_EXIT_OK || done)
		return rc;
	if (argc - optind != 0) {
		cli_err(CMD, "unexpected argument '%s'; see 'cvm help measure'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (a.image != NULL)
		return measure_image(&a);
	return cmd_full(&a);
}
