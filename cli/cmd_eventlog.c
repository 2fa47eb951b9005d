/* cvm eventlog: show or replay a measured-boot event log.
 *
 *   cvm eventlog show LOG [--format F] [--json]
 *   cvm eventlog replay LOG [--format F] [--json]
 *
 * LOG is a TCG PC Client log (binary_bios_measurements), a TDX CCEL,
 * dstack's runtime_events.log or dstack's JSON event log (bare, or in a
 * GetQuote reply); "-" reads stdin. Both commands stream the log: memory
 * does not grow with its size. See docs/cli/cvm-eventlog.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>

#include "cli.h"
#include "output.h"

#define CMD_SHOW "eventlog show"
#define CMD_REPLAY "eventlog replay"

enum { OPT_FORMAT = 0x200 };

static void usage(FILE *f)
{
	fprintf(f, "usage: cvm eventlog show LOG [--format FORMAT] [--json]\n"
	           "       cvm eventlog replay LOG [--format FORMAT] [--json]\n"
	           "\n"
	           "LOG is a TCG PC Client event log (binary_bios_measurements: crypto-agile or SHA-1),\n"
	           "a TDX CC event log (CCEL), dstack's runtime_events.log (JSON lines) or dstack's\n"
	           "JSON event log (an array, or a GetQuote reply carrying it); '-' is stdin.\n"
	           "show    prints every event: register, type, digests and a decoding of its data.\n"
	           "replay  extends every event into its register and prints the values per bank\n"
	           "        (PCR index; CCEL: MR index 1..4 = RTMR0..3; dstack: imr 0..3 = RTMR0..3;\n"
	           "        -v and --json: every register, the ones never extended at their reset value).\n"
	           "  --format FORMAT  auto (default), tcg2, tcg-sha1, ccel, dstack or dstack-json\n"
	           "\n"
	           "Nothing is verified: compare the values with a quote (TPM or TDX) to trust them.\n"
	           "Common options: -v, -q (show: no digests; replay: values only), --json.\n"
	           "Exit codes: 0 ok, 1 error (unreadable file), 2 usage, 3 malformed log.\n");
}

struct evl_args {
	const char *path;
	enum cvm_evl_format format;
};

static int parse_args(const char *cmd, int argc, char **argv, struct evl_args *a)
{
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, OPT_FORMAT},
	    CLI_COMMON_LONGOPTS,
	};
	int c;

	a->path = NULL;
	a->format = CVM_EVL_AUTO;
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
			return -1;
		case OPT_FORMAT:
			if (cvm_evl_format_from_name(optarg, &a->format) != CVM_OK) {
				cli_err(
				    cmd,
				    "unknown --format '%s'; expected auto, tcg2, tcg-sha1, ccel, dstack or "
				    "dstack-json",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		default:
			cli_bad_option(cmd, c, argv, "cvm help eventlog");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(cmd, "%s; usage: cvm %s LOG [--format FORMAT] [--json]",
		        argc - optind == 0 ? "no LOG file given" : "more than one LOG file given", cmd);
		return CLI_EXIT_USAGE;
	}
	a->path = argv[optind];
	return CLI_EXIT_OK;
}

static int open_log(const char *cmd, const char *path, int *fd)
{
	if (strcmp(path, "-") == 0) {
		*fd = STDIN_FILENO;
		return CLI_EXIT_OK;
	}
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		cli_err(cmd, "cannot open event log '%s': %s", path, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static void close_log(int fd)
{
	if (fd > STDIN_FILENO)
		(void)close(fd);
}

/* report_failure prints why the parser stopped and returns the exit code. */
static int report_failure(const char *cmd, const char *path, const struct cvm_evl_parser *p, int r,
                          int saved_errno)
{
	char why[256];

	out_sanitize(cvm_evl_parser_err(p), why, sizeof(why));
	if (r == CVM_E_SYSTEM)
		cli_err(cmd, "cannot read event log '%s': %s", path, strerror(saved_errno));
	else if (cli_exit_for(r) == CLI_EXIT_REJECTED)
		cli_err(cmd, "'%s' is not a valid event log: %s (%s)", path,
		        why[0] != '\0' ? why : cvm_strerror(r), cvm_strerror(r));
	else
		cli_err(cmd, "cannot read event log '%s': %s", path, why[0] != '\0' ? why : cvm_strerror(r));
	return cli_exit_for(r);
}

static const char *alg_name(uint16_t alg, char buf[16])
{
	const char *n = cvm_digest_name(alg);

	if (n != NULL)
		return n;
	(void)snprintf(buf, 16, "alg_0x%04x", alg);
	return buf;
}

/* reg_label writes how people name a register of the format; an index out
 * of the format's range (an EV_NO_ACTION event's) is named as written. */
static void reg_label(enum cvm_evl_format f, uint32_t reg, char *buf, size_t cap)
{
	if (f == CVM_EVL_CCEL && reg >= 1 && reg <= 4)
		(void)snprintf(buf, cap, "MR %u (RTMR%u)", reg, reg - 1);
	else if (f == CVM_EVL_CCEL && reg == 0)
		(void)snprintf(buf, cap, "MR 0 (MRTD)");
	else if (f == CVM_EVL_CCEL)
		(void)snprintf(buf, cap, "MR %u", reg);
	else if ((f == CVM_EVL_DSTACK || f == CVM_EVL_DSTACK_JSON) && reg <= 3)
		(void)snprintf(buf, cap, "RTMR%u", reg);
	else if (f == CVM_EVL_DSTACK || f == CVM_EVL_DSTACK_JSON)
		(void)snprintf(buf, cap, "imr %u", reg);
	else
		(void)snprintf(buf, cap, "PCR %u", reg);
}

/* declared is true for the registers the format's log speaks for: PCRs
 * 0..23 of a TCG log, RTMR0..3 (MR index 1..4) of a CCEL, RTMR0..3 of a
 * dstack JSON log, RTMR3 of dstack's runtime log. */
static bool declared(enum cvm_evl_format f, uint32_t reg)
{
	switch (f) {
	case CVM_EVL_CCEL:
		return reg >= 1 && reg <= 4;
	case CVM_EVL_DSTACK:
		return reg == CVM_EVL_DSTACK_REG;
	default:
		return true;
	}
}

/* reportable is true when the replay has a value of `reg` in bank `b` worth
 * printing: extended, computed, and not missing any digest. */
static bool reportable(const struct cvm_evl_bank *b, uint32_t reg)
{
	uint32_t bit = 1u << reg;

	return b->supported && (b->extended & bit) != 0 && (b->partial & bit) == 0;
}

/* warn_banks says which values a replay cannot give. */
static void warn_banks(const char *cmd, const struct cvm_evl_replay *rp)
{
	char ab[16];

	for (size_t i = 0; i < rp->bank_count; i++) {
		const struct cvm_evl_bank *b = &rp->banks[i];

		if (!b->supported && b->extended != 0)
			cli_err(
			    cmd,
			    "warning: bank %s: cvmkit cannot compute this algorithm; its values are omitted",
			    alg_name(b->alg, ab));
		for (uint32_t reg = 0; reg < rp->reg_count; reg++) {
			if (b->supported && (b->partial & (1u << reg)) != 0)
				cli_err(
				    cmd,
				    "warning: bank %s, register %u: an event has no %s digest; the value is "
				    "omitted",
				    alg_name(b->alg, ab), reg, alg_name(b->alg, ab));
		}
	}
}

static json_t *replay_pcrs_json(const struct cvm_evl_replay *rp)
{
	json_t *pcrs = json_object();
	char ab[16], key[16];
	int bad = 0;

	if (pcrs == NULL)
		return NULL;
	for (size_t i = 0; i < rp->bank_count; i++) {
		const struct cvm_evl_bank *b = &rp->banks[i];
		json_t *bank = NULL;

		for (uint32_t reg = 0; reg < rp->reg_count; reg++) {
			if (!reportable(b, reg))
				continue;
			if (bank == NULL)
				bank = json_object();
			(void)snprintf(key, sizeof(key), "%u", reg);
			bad |= out_jset_hex(bank, key, b->reg[reg], b->len);
		}
		if (bank != NULL)
			bad |= out_jset(pcrs, alg_name(b->alg, ab), bank);
	}
	if (bad != 0) {
		json_decref(pcrs);
		return NULL;
	}
	return pcrs;
}

/* replay_registers_json lists every register of every bank the log
 * declares, extended or at its reset value:
 * {bank: {index: {"name", "value", "extended"}}}; "value" is null where
 * cvmkit cannot give it: a bank it cannot compute, or an event extended the
 * register without this bank's digest (warn_banks says which). */
static json_t *replay_registers_json(const struct cvm_evl_replay *rp)
{
	json_t *regs = json_object();
	char ab[16], key[16], label[32];
	int bad = 0;

	if (regs == NULL)
		return NULL;
	for (size_t i = 0; i < rp->bank_count; i++) {
		const struct cvm_evl_bank *b = &rp->banks[i];
		json_t *bank = json_object();

		for (uint32_t reg = 0; reg < rp->reg_count && bank != NULL; reg++) {
			uint32_t bit = 1u << reg;
			json_t *r;

			if (!declared(rp->format, reg))
				continue;
			r = json_object();
			reg_label(rp->format, reg, label, sizeof(label));
			(void)snprintf(key, sizeof(key), "%u", reg);
			bad |= out_jset_str(r, "name", label);
			if (b->supported && (b->partial & bit) == 0)
				bad |= out_jset_hex(r, "value", b->reg[reg], b->len);
			else
				bad |= out_jset(r, "value", json_null());
			/* Extended by some event, even one without this bank's digest. */
			bad |= out_jset(r, "extended", json_boolean(((b->extended | b->partial) & bit) != 0));
			bad |= out_jset(bank, key, r);
		}
		bad |= out_jset(regs, alg_name(b->alg, ab), bank);
	}
	if (bad != 0) {
		json_decref(regs);
		return NULL;
	}
	return regs;
}

/* replay_digests_json counts the extended events by where their digest
 * came from: {"logged", "computed", "checked"}. */
static json_t *replay_digests_json(const struct cvm_evl_replay *rp)
{
	json_t *o = json_object();
	int bad = 0;

	bad |= out_jset_int(o, "logged", (long long)rp->digests_logged);
	bad |= out_jset_int(o, "computed", (long long)rp->digests_computed);
	bad |= out_jset_int(o, "checked", (long long)rp->digests_checked);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* replay_json_add sets the replay's keys of the JSON output in `o`. */
static int replay_json_add(json_t *o, const struct cvm_evl_replay *rp)
{
	int bad = 0;

	bad |= out_jset(o, "pcrs", replay_pcrs_json(rp));
	bad |= out_jset(o, "registers", replay_registers_json(rp));
	bad |= out_jset(o, "digests", replay_digests_json(rp));
	return bad;
}

static void replay_text(FILE *f, const struct cvm_evl_replay *rp)
{
	char ab[16], label[32], hex[2 * CVM_DIGEST_MAX + 1];
	bool all = cli_opts.verbose > 0;

	if (!cli_opts.quiet) {
		fprintf(f, "format: %s, %" PRIu64 " events, %" PRIu64 " bytes",
		        cvm_evl_format_name(rp->format), rp->event_count, rp->bytes_parsed);
		if (rp->is_wrapped)
			fprintf(f, " (the event_log of a JSON object)");
		if (rp->padding_len != 0)
			fprintf(f, " + %" PRIu64 " bytes of padding", rp->padding_len);
		if (rp->startup_locality >= 0)
			fprintf(f, ", StartupLocality %d", rp->startup_locality);
		(void)fputc('\n', f);
		if (rp->format == CVM_EVL_DSTACK || rp->format == CVM_EVL_DSTACK_JSON)
			fprintf(f,
			        "digests: %" PRIu64 " runtime checked against name and payload, %" PRIu64
			        " runtime computed (none in the log), %" PRIu64 " as logged (not checked)\n",
			        rp->digests_checked, rp->digests_computed, rp->digests_logged);
	}
	for (size_t i = 0; i < rp->bank_count; i++) {
		const struct cvm_evl_bank *b = &rp->banks[i];
		bool any = false;

		for (uint32_t reg = 0; reg < rp->reg_count; reg++) {
			bool ext = (b->extended & (1u << reg)) != 0;

			if (all ? !declared(rp->format, reg) || !b->supported ||
			              (b->partial & (1u << reg)) != 0
			        : !reportable(b, reg))
				continue;
			if (!any)
				fprintf(f, "%s:\n", alg_name(b->alg, ab));
			any = true;
			reg_label(rp->format, reg, label, sizeof(label));
			cvm_hex_encode(b->reg[reg], b->len, hex);
			fprintf(f, "  %-13s %s%s\n", label, hex, ext ? "" : "  (not extended: reset value)");
		}
	}
}

static int eventlog_replay(int argc, char **argv)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	struct evl_args a;
	bool has_event = true;
	json_t *o = NULL;
	int fd = -1, r, rc;

	rc = parse_args(CMD_REPLAY, argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	rc = open_log(CMD_REPLAY, a.path, &fd);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_evl_parser_new_fd(fd, a.format, &p);
	if (r != CVM_OK) {
		cli_err(CMD_REPLAY, "%s", cvm_strerror(r));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	while (has_event) {
		r = cvm_evl_parser_next(p, &ev, &has_event);
		if (r != CVM_OK) {
			rc = report_failure(CMD_REPLAY, a.path, p, r, errno);
			goto out;
		}
	}
	warn_banks(CMD_REPLAY, cvm_evl_parser_replay(p));
	if (!cli_opts.json) {
		replay_text(stdout, cvm_evl_parser_replay(p));
		goto out;
	}
	o = json_object();
	if (o == NULL || out_jset_str(o, "format", cvm_evl_format_name(cvm_evl_parser_format(p))) != 0 ||
	    out_jset_int(o, "events", (long long)cvm_evl_parser_replay(p)->event_count) != 0 ||
	    replay_json_add(o, cvm_evl_parser_replay(p)) != 0 || out_json_print(o) != 0) {
		cli_err(CMD_REPLAY, "cannot write the JSON output");
		rc = CLI_EXIT_ERROR;
	}
out:
	json_decref(o);
	cvm_evl_parser_free(p);
	close_log(fd);
	return rc;
}

/* ---- show --------------------------------------------------------------- */

static void show_event_text(enum cvm_evl_format f, const struct cvm_evl_event *ev)
{
	char desc[CVM_EVL_DESCRIBE_MAX], label[32], tn[24], ab[16], hex[2 * CVM_DIGEST_MAX + 1];
	const char *type = cvm_evl_type_name(ev->type);

	if (type == NULL) {
		(void)snprintf(tn, sizeof(tn), "type 0x%08x", ev->type);
		type = tn;
	}
	reg_label(f, ev->reg, label, sizeof(label));
	cvm_evl_event_describe(ev, desc, sizeof(desc));
	printf("%5" PRIu64 "  %-13s %-33s %s\n", ev->seq, label, type, desc);
	if (cli_opts.quiet)
		return;
	if (cli_opts.verbose > 0)
		printf("       offset %" PRIu64 ", %" PRIu64 " bytes, %zu bytes of data\n", ev->offset,
		       ev->len, ev->data.len);
	for (size_t i = 0; i < ev->digest_count && i < CVM_EVL_BANKS_MAX; i++) {
		cvm_hex_encode(ev->digests[i].p, ev->digests[i].len, hex);
		printf("       %-8s %s%s\n", alg_name(ev->digests[i].alg, ab), hex,
		       ev->digest_source == CVM_EVL_DIGEST_CHECKED    ? "  (checked: name and payload)"
		       : ev->digest_source == CVM_EVL_DIGEST_COMPUTED ? "  (computed: not in the log)"
		                                                      : "");
	}
}

static const char *digest_source_name(enum cvm_evl_digest_source s)
{
	switch (s) {
	case CVM_EVL_DIGEST_COMPUTED:
		return "computed";
	case CVM_EVL_DIGEST_CHECKED:
		return "checked";
	default:
		return "logged";
	}
}

static json_t *event_json(const struct cvm_evl_event *ev)
{
	char desc[CVM_EVL_DESCRIBE_MAX], ab[16];
	json_t *o = json_object(), *d = json_object();
	int bad = 0;

	if (o == NULL || d == NULL) {
		json_decref(o);
		json_decref(d);
		return NULL;
	}
	cvm_evl_event_describe(ev, desc, sizeof(desc));
	bad |= out_jset_int(o, "seq", (long long)ev->seq);
	bad |= out_jset_int(o, "offset", (long long)ev->offset);
	bad |= out_jset_int(o, "index", ev->reg);
	bad |= out_jset_int(o, "type", ev->type);
	bad |= out_jset_str(o, "type_name", cvm_evl_type_name(ev->type));
	for (size_t i = 0; i < ev->digest_count && i < CVM_EVL_BANKS_MAX; i++)
		bad |=
		    out_jset_hex(d, alg_name(ev->digests[i].alg, ab), ev->digests[i].p, ev->digests[i].len);
	bad |= out_jset(o, "digests", d);
	bad |= out_jset_str(o, "digest_source", digest_source_name(ev->digest_source));
	if (ev->name != NULL)
		bad |= out_jset_str(o, "name", ev->name);
	if (ev->dstack_version != 0)
		bad |= out_jset_int(o, "version", ev->dstack_version);
	bad |= out_jset_int(o, "data_len", (long long)ev->data.len);
	bad |= out_jset_hex(o, "data", ev->data.p, ev->data.len);
	bad |= out_jset_str(o, "description", desc);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The JSON of show is streamed: {"events": [ one object per line ],
 * then the summary keys}, so memory stays flat however long the log. */
static int dump_compact(const json_t *o)
{
	return json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_SORT_KEYS);
}

static int show_json_tail(const struct cvm_evl_parser *p, int r)
{
	const struct cvm_evl_replay *rp = cvm_evl_parser_replay(p);
	json_t *o = json_object(), *err;
	char why[256];
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_jset_str(o, "format", cvm_evl_format_name(cvm_evl_parser_format(p)));
	bad |= out_jset_int(o, "event_count", (long long)rp->event_count);
	if (r == CVM_OK) {
		bad |= out_jset_int(o, "bytes_parsed", (long long)rp->bytes_parsed);
		bad |= out_jset_int(o, "padding_len", (long long)rp->padding_len);
		bad |= replay_json_add(o, rp);
	} else {
		err = json_object();
		out_sanitize(cvm_evl_parser_err(p), why, sizeof(why));
		bad |= out_jset_str(err, "error", cvm_strerror(r));
		bad |= out_jset_str(err, "detail", why);
		bad |= out_jset_int(err, "offset", (long long)cvm_evl_parser_error_offset(p));
		bad |= out_jset(o, "error", err);
	}
	/* Close the events array, then the summary keys of the object. */
	(void)fputs("\n],\n", stdout);
	if (bad == 0) {
		char *s = json_dumps(o, JSON_INDENT(1) | JSON_ENSURE_ASCII | JSON_SORT_KEYS);

		if (s == NULL) {
			bad = -1;
		} else {
			/* s is "{\n ...\n}": print it without its opening brace and newline. */
			(void)fputs(s[0] != '\0' && s[1] == '\n' ? s + 2 : s + 1, stdout);
			(void)fputc('\n', stdout);
			free(s);
		}
	}
	json_decref(o);
	return bad;
}

static int eventlog_show(int argc, char **argv)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	struct evl_args a;
	bool has_event = true, first = true;
	int fd = -1, r = CVM_OK, rc, saved_errno = 0;

	rc = parse_args(CMD_SHOW, argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	rc = open_log(CMD_SHOW, a.path, &fd);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_evl_parser_new_fd(fd, a.format, &p);
	if (r != CVM_OK) {
		cli_err(CMD_SHOW, "%s", cvm_strerror(r));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	if (cli_opts.json)
		(void)fputs("{\"events\": [", stdout);
	for (;;) {
		r = cvm_evl_parser_next(p, &ev, &has_event);
		saved_errno = errno;
		if (r != CVM_OK || !has_event)
			break;
		if (cli_opts.json) {
			json_t *o = event_json(&ev);

			(void)fputs(first ? "\n" : ",\n", stdout);
			if (o == NULL || dump_compact(o) != 0) {
				json_decref(o);
				cli_err(CMD_SHOW, "cannot write the JSON output");
				rc = CLI_EXIT_ERROR;
				goto out;
			}
			json_decref(o);
		} else {
			if (first && !cli_opts.quiet)
				printf("format: %s\n", cvm_evl_format_name(cvm_evl_parser_format(p)));
			show_event_text(cvm_evl_parser_format(p), &ev);
		}
		first = false;
	}
	if (cli_opts.json) {
		if (show_json_tail(p, r) != 0) {
			cli_err(CMD_SHOW, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
			goto out;
		}
	} else if (r == CVM_OK && !cli_opts.quiet) {
		printf("\n");
		replay_text(stdout, cvm_evl_parser_replay(p));
	}
	if (r != CVM_OK) {
		rc = report_failure(CMD_SHOW, a.path, p, r, saved_errno);
		goto out;
	}
	warn_banks(CMD_SHOW, cvm_evl_parser_replay(p));
out:
	cvm_evl_parser_free(p);
	close_log(fd);
	return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

int cmd_eventlog(int argc, char **argv)
{
	static const struct cli_sub subs[] = {{"show", eventlog_show}, {"replay", eventlog_replay}};

	return cli_dispatch("eventlog", subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}
