/* cvm: the cvmkit command-line tool. The full command set is the table
 * below; there is no other registration. */
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/log.h>

#include "cli.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

struct cli_common cli_opts;

struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static int cmd_help(int argc, char **argv);

static const struct cli_cmd cli_cmds[] = {
    {"quote", cmd_quote, "Verify or show an Intel SGX/TDX DCAP quote or an AMD SEV-SNP report"},
    {"eventlog", cmd_eventlog, "Show or replay a TCG, CCEL or dstack runtime event log"},
    {"sim", cmd_sim, "Simulated TEE for development: mock PKI, quotes, RTMRs"},
    {"tpm", cmd_tpm, "Make, verify and read TPM 2.0 quotes and PCRs"},
    {"ima", cmd_ima, "Show, replay and check an IMA runtime measurement list"},
    {"evidence", cmd_evidence, "Verify an evidence bundle: TEE quote, TPM quote, IMA list, bound to a nonce"},
    {"cert", cmd_cert, "RA-TLS certificates (make, show, verify, fetch) and ACME certificates"},
    {"attestation", cmd_attestation,
     "Show or verify dstack's VersionedAttestation (SCALE V0, MessagePack V1)"},
    {"collateral", cmd_collateral, "Fetch, list, pack and import the verified collateral cache"},
    {"image", cmd_image, "Build the guest image: kernel, initramfs, read-only ext4 root (docs/vm.md)"},
    {"snapshot", cmd_snapshot, "Record a known-good VM from its agent's evidence over RA-TLS; show, diff"},
    {"verify", cmd_verify, "Verify a running VM over RA-TLS against a snapshot (fresh nonce, TEE, TPM, IMA)"},
    {"kms", cmd_kms, "The KMS: derive keys offline, ask a cvm-kmsd (meta, app-key)"},
    {"app", cmd_app,
     "An app: check its app-compose (hash, MRCONFIGID); encrypt its env to the KMS-signed key; decrypt"},
    {"measure", cmd_measure,
     "Expected TDX MRTD and RTMR0-2 from firmware, kernel, initrd, cmdline (dstack-mr); lite; diff"},
    {"vm", cmd_vm, "Deploy and manage VMs on a cvm-vmmd: deploy, ls, logs, start, stop, rm, upgrade"},
    {"gateway", cmd_gateway, "The gateway: show how a name is routed"},
    {"ct", cmd_ct,
     "Certificate Transparency: monitor a log for certificates of keys the gateway never quoted"},
    {"help", cmd_help, "Show help for a command"},
};

#define CLI_CMD_COUNT (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

void cli_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	if (cmd != NULL && cmd[0] != '\0')
		(void)fprintf(stderr, "%s %s: ", CLI_PROG, cmd);
	else
		(void)fprintf(stderr, "%s: ", CLI_PROG);
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputc('\n', stderr);
}

/* expected_list writes "'a', 'b' or 'c'" for the subcommands. */
static void expected_list(const struct cli_sub *subs, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int k = snprintf(buf + used, len - used, "%s'%s'", i == 0 ? "" : (i + 1 == n ? " or " : ", "),
		                 subs[i].name);

		if (k < 0)
			break;
		used += (size_t)k;
	}
}

int cli_exit_for(int r)
{
	switch (r) {
	case CVM_OK:
		return CLI_EXIT_OK;
	case CVM_E_NOMEM:
	case CVM_E_INTERNAL:
	case CVM_E_INVAL:
	case CVM_E_SYSTEM:
		return CLI_EXIT_ERROR;
	default:
		return CLI_EXIT_REJECTED;
	}
}

int cli_dispatch(const char *cmd, const struct cli_sub *subs, size_t n, void (*usage)(FILE *out), int argc,
                 char **argv)
{
	char expected[256];

	expected_list(subs, n, expected, sizeof(expected));
	if (argc < 2) {
		cli_err(cmd, "no subcommand given; expected %s", expected);
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(argc - 1, argv + 1);
	cli_err(cmd, "unknown subcommand '%s'; expected %s (see '%s help %s')", argv[1], expected, CLI_PROG,
	        cmd);
	return CLI_EXIT_USAGE;
}

bool cli_common_option(int c)
{
	switch (c) {
	case 'v':
		cli_opts.verbose++;
		return true;
	case 'q':
		cli_opts.quiet = true;
		return true;
	case CLI_OPT_JSON:
		cli_opts.json = true;
		return true;
	default:
		return false;
	}
}

static void log_to_stderr(enum cvm_log_level level, const char *func, const char *msg, void *ctx)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	(void)ctx;
	fprintf(stderr, "%s: %s: %s: %s\n", CLI_PROG, (unsigned)level < 4 ? names[level] : "log", func, msg);
}

void cli_apply_verbosity(void)
{
	if (cli_opts.verbose <= 0)
		return;
	cvm_log_set_handler(log_to_stderr, cli_opts.verbose >= 2 ? CVM_LOG_DEBUG : CVM_LOG_INFO, NULL);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [-v] [-q] [--json] COMMAND [ARGS]\n"
	        "       %s help COMMAND | --help | --version\n"
	        "\n"
	        "Commands:\n",
	        CLI_PROG, CLI_PROG);
	for (size_t i = 0; i < CLI_CMD_COUNT; i++)
		fprintf(f, "  %-12s %s\n", cli_cmds[i].name, cli_cmds[i].summary);
	fprintf(f, "\n"
	           "Common options (before or after the command):\n"
	           "  -v, --verbose   print library messages to stderr (twice: debug messages)\n"
	           "  -q, --quiet     print only the verdict or the error\n"
	           "      --json      print one JSON object on stdout\n"
	           "\n"
	           "Exit codes: 0 accepted/success, 1 error, 2 usage, 3 evidence rejected.\n"
	           "See 'cvm help COMMAND' and docs/cli/cvm.md.\n");
}

static const struct cli_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < CLI_CMD_COUNT; i++) {
		if (strcmp(cli_cmds[i].name, name) == 0)
			return &cli_cmds[i];
	}
	return NULL;
}

static int cmd_help(int argc, char **argv)
{
	const struct cli_cmd *c;
	char help_flag[] = "--help";
	char *sub[3];

	if (argc < 2) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (argc > 2) {
		cli_err("help", "expected one command name, got %d arguments; try 'cvm help quote'",
		        argc - 1);
		return CLI_EXIT_USAGE;
	}
	c = find_cmd(argv[1]);
	if (c == NULL) {
		cli_err("help", "unknown command '%s'; run 'cvm --help' for the list", argv[1]);
		return CLI_EXIT_USAGE;
	}
	if (c->run == cmd_help) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	sub[0] = argv[1];
	sub[1] = help_flag;
	sub[2] = NULL;
	return c->run(2, sub);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"verbose", no_argument, NULL, 'v'},       {"quiet", no_argument, NULL, 'q'},
	    {"json", no_argument, NULL, CLI_OPT_JSON}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
	};
	const struct cli_cmd *cmd;
	int c;

	/* A peer that closes while cvm writes (an RA-TLS server, an upstream)
	 * gives a write error and a message, not a silent death by SIGPIPE. */
	(void)signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	/* '+': stop at the command name; its own options follow it. */
	for (;;) {
		c = getopt_long(argc, argv, "+:vqhV", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case 'V':
			printf("%s (cvmkit) %s\n", CLI_PROG, CVM_VERSION_STRING);
			return CLI_EXIT_OK;
		default:
			cli_err(NULL, "unknown option '%s'; run 'cvm --help' for usage", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_err(NULL, "no command given; run 'cvm --help' for the list");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd = find_cmd(argv[optind]);
	if (cmd == NULL) {
		cli_err(NULL, "unknown command '%s'; run 'cvm --help' for the list", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	/* Commands run their own getopt_long from a clean state. */
	argc -= optind;
	argv += optind;
	optind = 0;
	return cmd->run(argc, argv);
}
