/* `cvm kms bootstrap|rotate|revoke-epoch|epochs --root-dir DIR`: the
 * operator's work on a KMS's root directory (docs/cli/cvm-kms.md). They act
 * on the files; a running cvm-kmsd takes a change at its next start. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/kms.h>
#include <cvmkit/tpm.h>

#include "cli.h"

struct admin {
	const char *cmd;
	const char *root_dir;
	const char *tpm_tcti; /* --tpm: seal new roots to this TPM */
	int64_t grace_s;
	bool json;
};

static void admin_usage(FILE *f, const char *sub)
{
	(void)fprintf(f,
	              "usage: %s kms %s --root-dir DIR%s%s\n"
	              "  bootstrap     make the roots of epoch 0 (once; nothing is ever overwritten)\n"
	              "  rotate        make a new epoch's roots and make it current; the old epoch stays\n"
	              "                readable for --grace SECONDS (default 30 days; 0 revokes it now)\n"
	              "  revoke-epoch  never release keys of epoch N again\n"
	              "  epochs        list the epochs and their states\n"
	              "  --tpm TCTI    (bootstrap, rotate) seal the new secret roots to this TPM (a tss2\n"
	              "                TCTI: device:/dev/tpmrm0, swtpm:host=...,port=...): root-ca.key.tpm,\n"
	              "                root-k256.key.tpm, tmp-ca.key.tpm, and no plaintext key file\n"
	              "A running cvm-kmsd takes a change at its next start.\n"
	              "Exit: 0 done, 1 error, 2 usage, 3 refused (roots exist, the current epoch).\n",
	              CLI_PROG, sub,
	              strcmp(sub, "rotate") == 0 || strcmp(sub, "bootstrap") == 0 ? " [--tpm TCTI]" : "",
	              strcmp(sub, "rotate") == 0         ? " [--grace SECONDS]"
	              : strcmp(sub, "revoke-epoch") == 0 ? " N"
	              : strcmp(sub, "epochs") == 0       ? " [--json]"
	                                                 : "");
}

/* parse reads the options; returns -1 after --help, else a CLI_EXIT_*. */
static int parse(int argc, char **argv, struct admin *a, const char *sub, int positional)
{
	static const struct option opts[] = {
	    {"root-dir", required_argument, NULL, 'd'}, {"grace", required_argument, NULL, 'g'},
	    {"tpm", required_argument, NULL, 't'},      {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	char *end;
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			a->root_dir = optarg;
			break;
		case 'g':
			a->grace_s = (int64_t)strtoll(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' ||
			    a->grace_s > (int64_t)3650 * 86400) {
				cli_err(a->cmd, "--grace takes seconds, 0 to 3650 days");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'j':
			a->json = true;
			break;
		case 't':
			if (strcmp(sub, "bootstrap") != 0 && strcmp(sub, "rotate") != 0) {
				cli_err(a->cmd, "--tpm is for bootstrap and rotate");
				return CLI_EXIT_USAGE;
			}
			a->tpm_tcti = optarg;
			break;
		case 'h':
			admin_usage(stdout, sub);
			return -1;
		default:
			admin_usage(stderr, sub);
			return CLI_EXIT_USAGE;
		}
	}
	if (a->root_dir == NULL || argc - optind != positional) {
		admin_usage(stderr, sub);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static const char *time_text(int64_t t)
{
	static char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, sizeof(buf), "%lld", (long long)t);
	return buf;
}

static int exit_for(int r)
{
	return r == CVM_E_POLICY || r == CVM_E_NOT_FOUND ? CLI_EXIT_REJECTED : CLI_EXIT_ERROR;
}

/* open_tpm opens --tpm's TPM (*out NULL without --tpm). */
static int open_tpm(const struct admin *a, struct cvm_tpm **out)
{
	char err[256] = "";
	int r;

	*out = NULL;
	if (a->tpm_tcti == NULL)
		return CVM_OK;
	r = cvm_tpm_open(a->tpm_tcti, out, err, sizeof(err));
	if (r != CVM_OK)
		cli_err(a->cmd, "--tpm: %s", err[0] != '\0' ? err : cvm_strerror(r));
	return r;
}

int cli_kms_bootstrap(int argc, char **argv)
{
	struct admin a = {.cmd = "kms bootstrap"};
	struct cvm_tpm *tpm = NULL;
	char err[512] = "";
	int rc = parse(argc, argv, &a, "bootstrap", 0), r;

	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (open_tpm(&a, &tpm) != CVM_OK)
		return CLI_EXIT_ERROR;
	r = cvm_kms_bootstrap_tpm(a.root_dir, 0, (int64_t)time(NULL), tpm, err, sizeof(err));
	cvm_tpm_close(tpm);
	if (r != CVM_OK) {
		cli_err(a.cmd, "%s", err[0] != '\0' ? err : cvm_strerror(r));
		return exit_for(r);
	}
	(void)printf("made the roots of epoch 0 in %s/epoch-0\n", a.root_dir);
	return CLI_EXIT_OK;
}

int cli_kms_rotate(int argc, char **argv)
{
	struct admin a = {.cmd = "kms rotate", .grace_s = (int64_t)30 * 86400};
	struct cvm_tpm *tpm = NULL;
	char err[512] = "";
	uint32_t epoch = 0;
	int rc = parse(argc, argv, &a, "rotate", 0), r;

	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (open_tpm(&a, &tpm) != CVM_OK)
		return CLI_EXIT_ERROR;
	r = cvm_kms_rotate_tpm(a.root_dir, (int64_t)time(NULL), a.grace_s, tpm, &epoch, err, sizeof(err));
	cvm_tpm_close(tpm);
	if (r != CVM_OK) {
		cli_err(a.cmd, "%s", err[0] != '\0' ? err : cvm_strerror(r));
		return exit_for(r);
	}
	(void)printf("epoch %u is current (roots in %s/epoch-%u); the previous epoch %s\n", (unsigned)epoch,
	             a.root_dir, (unsigned)epoch,
	             a.grace_s > 0 ? "is readable during its grace period" : "is revoked");
	return CLI_EXIT_OK;
}

int cli_kms_revoke_epoch(int argc, char **argv)
{
	struct admin a = {.cmd = "kms revoke-epoch"};
	char err[512] = "", *end;
	unsigned long n;
	int rc = parse(argc, argv, &a, "revoke-epoch", 1), r;

	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	n = strtoul(argv[optind], &end, 10);
	if (argv[optind][0] < '0' || argv[optind][0] > '9' || *end != '\0' || n > CVM_KMS_EPOCH_MAX) {
		cli_err(a.cmd, "'%s' is not an epoch", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	r = cvm_kms_revoke_epoch(a.root_dir, (uint32_t)n, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(a.cmd, "%s", err[0] != '\0' ? err : cvm_strerror(r));
		return exit_for(r);
	}
	(void)printf("epoch %lu is revoked\n", n);
	return CLI_EXIT_OK;
}

int cli_kms_epochs(int argc, char **argv)
{
	struct admin a = {.cmd = "kms epochs"};
	struct cvm_kms_epochs t;
	char err[512] = "";
	int64_t now = (int64_t)time(NULL);
	int rc = parse(argc, argv, &a, "epochs", 0), r;

	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	r = cvm_kms_epochs_load(a.root_dir, &t, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(a.cmd, "%s", err[0] != '\0' ? err : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	if (a.json)
		(void)printf("{\"current\": %u, \"epochs\": [", (unsigned)t.current);
	for (size_t i = 0; i < t.count; i++) {
		const struct cvm_kms_epoch *e = &t.e[i];
		bool readable = cvm_kms_epoch_readable(&t, e->epoch, now);

		if (a.json)
			(void)printf(
			    "%s{\"epoch\": %u, \"state\": \"%s\", \"until\": %lld, \"readable\": %s}",
			    i > 0 ? ", " : "", (unsigned)e->epoch, cvm_kms_epoch_state_name(e->state),
			    (long long)e->until, readable ? "true" : "false");
		else if (e->state == CVM_KMS_EPOCH_GRACE)
			(void)printf("epoch %u: grace, %s %s\n", (unsigned)e->epoch,
			             readable ? "readable until" : "ended at", time_text(e->until));
		else
			(void)printf("epoch %u: %s\n", (unsigned)e->epoch,
			             cvm_kms_epoch_state_name(e->state));
	}
	if (a.json)
		(void)printf("]}\n");
	return CLI_EXIT_OK;
}
