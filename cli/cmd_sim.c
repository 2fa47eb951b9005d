/* cvm sim: the simulated TEE (development without TDX or SNP hardware).
 *
 *   cvm sim init DIR [--mrtd HEX] [--snp-measurement HEX] [--snp-product NAME] [--debug]
 *                    [--at UNIX_SECONDS]
 *   cvm sim launch PLATFORM DIR [--measurement FILE] [--mrtd HEX] [--rtmr0..2 HEX]
 *                    [--mrconfigid HEX] [--snp-measurement HEX] [--snp-host-data HEX]
 *   cvm sim quote DIR --report-data HEX --out FILE [--snp]
 *   cvm sim extend DIR --rtmr N --digest HEX
 *   cvm sim show DIR [--json]
 *   cvm sim refresh DIR [--at UNIX_SECONDS]
 *
 * See docs/cli/cvm-sim.md and docs/simulator.md. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/snp.h>
#include <cvmkit/tee.h>

#include "cli.h"
#include "output.h"

enum {
	OPT_MRTD = 0x200,
	OPT_DEBUG,
	OPT_AT,
	OPT_REPORT_DATA,
	OPT_OUT,
	OPT_SNP,
	OPT_RTMR,
	OPT_DIGEST,
	OPT_SNP_MEASUREMENT,
	OPT_SNP_PRODUCT,
	OPT_TCB_OUT_OF_DATE,
	OPT_RTMR0,
	OPT_RTMR1,
	OPT_RTMR2,
	OPT_MRCONFIGID,
	OPT_SNP_HOST_DATA,
	OPT_MEASUREMENT,
};

struct sim_args {
	const char *cmd;      /* "sim init", ... for messages */
	const char *platform; /* launch: the platform folder, before DIR */
	const char *dir;
	const char *mrtd_hex;
	const char *snp_measurement_hex;
	enum cvm_snp_product snp_product;
	const char *report_data_hex;
	const char *out_path;
	const char *digest_hex;
	const char *rtmr_init_hex[3]; /* --rtmr0..2 */
	const char *mrconfigid_hex, *snp_host_data_hex;
	const char *measurement_path; /* launch --measurement */
	long rtmr;
	int64_t at;
	bool at_set, is_debug, snp, rtmr_set, tcb_out_of_date;
	bool with_platform; /* takes PLATFORM DIR, not DIR */
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cvm sim init DIR [--mrtd HEX] [--snp-measurement HEX] [--snp-product NAME] [--debug]\n"
	    "                         [--tcb-out-of-date] [--at UNIX_SECONDS] [--rtmr0 HEX] [--rtmr1 HEX]\n"
	    "                         [--rtmr2 HEX] [--mrconfigid HEX] [--snp-host-data HEX]\n"
	    "       cvm sim launch PLATFORM DIR [--measurement FILE] [--mrtd HEX] [--rtmr0 HEX]\n"
	    "                         [--rtmr1 HEX] [--rtmr2 HEX] [--mrconfigid HEX]\n"
	    "                         [--snp-measurement HEX] [--snp-host-data HEX]\n"
	    "       cvm sim quote DIR --report-data HEX --out FILE [--snp]\n"
	    "       cvm sim extend DIR --rtmr N --digest HEX\n"
	    "       cvm sim show DIR [--json]\n"
	    "       cvm sim refresh DIR [--at UNIX_SECONDS]\n"
	    "\n"
	    "A simulated TEE for development without hardware. Its evidence verifies ONLY with\n"
	    "the simulator's own roots (cvm quote verify --root DIR/collateral/tdx/intel_sgx_root_ca.der,\n"
	    "or --root DIR/collateral/snp/ark.pem for SEV-SNP reports) and every verdict over it says\n"
	    "SIMULATED. Its keys are in DIR: it proves nothing.\n"
	    "\n"
	    "init     make a simulated platform in DIR (new or empty): mock Intel and AMD PKIs,\n"
	    "         collateral in DIR/collateral/tdx and DIR/collateral/snp, RTMRs at zero\n"
	    "  --mrtd HEX              the TD's MRTD, 48 bytes (default: random)\n"
	    "  --snp-measurement HEX   the SEV-SNP guest's MEASUREMENT, 48 bytes (default: random)\n"
	    "  --snp-product NAME      milan, genoa or turin (default: milan)\n"
	    "  --debug                 set the TD attribute DEBUG and the SNP guest policy DEBUG\n"
	    "  --tcb-out-of-date       a TDX platform whose TCB level is OutOfDate (an old PCE SVN),\n"
	    "                          with advisories: the default policy rejects its quotes\n"
	    "  --at UNIX_SECONDS       centre the mock PKIs' validity on this time (default: now)\n"
	    "  --rtmr0/1/2 HEX         RTMR0..2 as the launch left them, 48 bytes each (default:\n"
	    "                          zero); a dev VM's host gives what 'cvm measure' computed\n"
	    "  --mrconfigid HEX        the TD's MRCONFIGID, 48 bytes (default: zero)\n"
	    "  --snp-host-data HEX     the SEV-SNP guest's HOST_DATA, 32 bytes (default: zero)\n"
	    "launch   make in DIR (new or empty) the simulator of one VM launched on the platform\n"
	    "         PLATFORM: its keys and collateral copied (so PLATFORM/collateral verifies the\n"
	    "         VM's evidence), its templates re-signed with this launch's registers; one\n"
	    "         host platform, many VMs. PLATFORM is only read. DIR is a platform itself.\n"
	    "  --measurement FILE      MRTD and RTMR0..2 from what 'cvm measure --json' printed\n"
	    "                          (a null register stays zero); the options below override it\n"
	    "  --mrtd HEX              the TD's MRTD, 48 bytes (default: the platform's)\n"
	    "  --rtmr0/1/2 HEX         RTMR0..2 as the launch left them, 48 bytes each (default: zero)\n"
	    "  --mrconfigid HEX        the TD's MRCONFIGID, 48 bytes (default: zero)\n"
	    "  --snp-measurement HEX   the SEV-SNP guest's MEASUREMENT (default: the platform's)\n"
	    "  --snp-host-data HEX     the SEV-SNP guest's HOST_DATA, 32 bytes (default: zero)\n"
	    "quote    write a TDX v4 quote over REPORT_DATA (up to 64 bytes, zero-padded), or with\n"
	    "         --snp an SEV-SNP attestation report (version 3, signed by the mock VCEK)\n"
	    "extend   extend RTMR N (0-3) with a 48-byte digest: RTMR := SHA-384(RTMR || digest)\n"
	    "show     print the platform and its registers\n"
	    "refresh  re-sign the collateral (CRLs, TCB info, QE identity) around now or --at\n"
	    "\n"
	    "Exit codes: 0 success, 1 error, 2 usage.\n");
}

static bool parse_product(const char *s, enum cvm_snp_product *out)
{
	static const struct {
		const char *name;
		enum cvm_snp_product p;
	} names[] = {
	    {"milan", CVM_SNP_PRODUCT_MILAN},
	    {"genoa", CVM_SNP_PRODUCT_GENOA},
	    {"turin", CVM_SNP_PRODUCT_TURIN},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].p;
			return true;
		}
	}
	return false;
}

static bool parse_rtmr(const char *s, long *out)
{
	if (s[0] < '0' || s[0] > '3' || s[1] != '\0')
		return false;
	*out = s[0] - '0';
	return true;
}

/* hex_arg decodes a hex option into exactly `len` bytes (`pad`: fewer bytes
 * are allowed and zero-padded on the right). */
static int hex_arg(const char *cmd, const char *opt, const char *hex, uint8_t *out, size_t len, bool pad)
{
	size_t n = strlen(hex), got = 0;
	int r;

	if (n >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
		hex += 2;
		n -= 2;
	}
	memset(out, 0, len);
	r = cvm_hex_decode(hex, n, out, len, &got);
	if (r == CVM_OK && !pad && got != len)
		r = CVM_E_FORMAT;
	if (r != CVM_OK) {
		cli_err(cmd, "%s: expected %s%zu bytes of hex (%zu digits)%s", opt, pad ? "up to " : "", len,
		        2 * len, r == CVM_E_TOO_LARGE ? ", got more" : "");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* parse_args reads the options of one subcommand; `allowed` lists the
 * option codes it takes. */
static int parse_args(int argc, char **argv, struct sim_args *a, const int *allowed, size_t n_allowed)
{
	static const struct option longopts[] = {
	    {"mrtd", required_argument, NULL, OPT_MRTD},
	    {"snp-measurement", required_argument, NULL, OPT_SNP_MEASUREMENT},
	    {"snp-product", required_argument, NULL, OPT_SNP_PRODUCT},
	    {"debug", no_argument, NULL, OPT_DEBUG},
	    {"tcb-out-of-date", no_argument, NULL, OPT_TCB_OUT_OF_DATE},
	    {"at", required_argument, NULL, OPT_AT},
	    {"report-data", required_argument, NULL, OPT_REPORT_DATA},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"snp", no_argument, NULL, OPT_SNP},
	    {"rtmr", required_argument, NULL, OPT_RTMR},
	    {"digest", required_argument, NULL, OPT_DIGEST},
	    {"rtmr0", required_argument, NULL, OPT_RTMR0},
	    {"rtmr1", required_argument, NULL, OPT_RTMR1},
	    {"rtmr2", required_argument, NULL, OPT_RTMR2},
	    {"mrconfigid", required_argument, NULL, OPT_MRCONFIGID},
	    {"snp-host-data", required_argument, NULL, OPT_SNP_HOST_DATA},
	    {"measurement", required_argument, NULL, OPT_MEASUREMENT},
	    CLI_COMMON_LONGOPTS,
	};
	int c;

	opterr = 0;
	optind = 0;
	for (;;) {
		bool ok = false;

		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		if (c == 'h') {
			usage(stdout);
			return -1;
		}
		if (c == ':') {
			cli_err(a->cmd, "option '%s' needs a value; see 'cvm help sim'", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
		for (size_t i = 0; i < n_allowed; i++)
			ok = ok || allowed[i] == c;
		if (!ok) {
			cli_err(a->cmd, "unknown option '%s' here; see 'cvm help sim'", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
		switch (c) {
		case OPT_MRTD:
			a->mrtd_hex = optarg;
			break;
		case OPT_SNP_MEASUREMENT:
			a->snp_measurement_hex = optarg;
			break;
		case OPT_SNP_PRODUCT:
			if (!parse_product(optarg, &a->snp_product)) {
				cli_err(a->cmd, "--snp-product '%s': expected milan, genoa or turin", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_DEBUG:
			a->is_debug = true;
			break;
		case OPT_TCB_OUT_OF_DATE:
			a->tcb_out_of_date = true;
			break;
		case OPT_AT:
			if (!cli_parse_time(optarg, &a->at) || a->at == 0) {
				cli_err(a->cmd, "--at '%s': expected Unix seconds (a positive integer)",
				        optarg);
				return CLI_EXIT_USAGE;
			}
			a->at_set = true;
			break;
		case OPT_REPORT_DATA:
			a->report_data_hex = optarg;
			break;
		case OPT_OUT:
			a->out_path = optarg;
			break;
		case OPT_SNP:
			a->snp = true;
			break;
		case OPT_RTMR:
			if (!parse_rtmr(optarg, &a->rtmr)) {
				cli_err(a->cmd, "--rtmr '%s': expected 0, 1, 2 or 3", optarg);
				return CLI_EXIT_USAGE;
			}
			a->rtmr_set = true;
			break;
		case OPT_DIGEST:
			a->digest_hex = optarg;
			break;
		case OPT_RTMR0:
		case OPT_RTMR1:
		case OPT_RTMR2:
			a->rtmr_init_hex[c - OPT_RTMR0] = optarg;
			break;
		case OPT_MRCONFIGID:
			a->mrconfigid_hex = optarg;
			break;
		case OPT_SNP_HOST_DATA:
			a->snp_host_data_hex = optarg;
			break;
		case OPT_MEASUREMENT:
			a->measurement_path = optarg;
			break;
		default:
			break;
		}
	}
	cli_apply_verbosity();
	if (a->with_platform) {
		if (argc - optind != 2) {
			cli_err(a->cmd,
			        "expected a platform folder PLATFORM and a new folder DIR, got %d %s; "
			        "see 'cvm help sim'",
			        argc - optind, argc - optind == 1 ? "folder" : "folders");
			return CLI_EXIT_USAGE;
		}
		a->platform = argv[optind++];
	} else if (argc - optind != 1) {
		cli_err(a->cmd, "%s; see 'cvm help sim'",
		        argc - optind == 0 ? "no simulator folder DIR given" : "more than one DIR given");
		return CLI_EXIT_USAGE;
	}
	a->dir = argv[optind];
	if (!a->at_set)
		a->at = (int64_t)time(NULL);
	return CLI_EXIT_OK;
}

/* lib_err explains a library failure on the folder. */
static int lib_err(const struct sim_args *a, const char *what, int r)
{
	if (r == CVM_E_SYSTEM)
		cli_err(a->cmd, "%s '%s': %s", what, a->dir, strerror(errno));
	else if (r == CVM_E_FORMAT)
		cli_err(a->cmd,
		        "%s '%s': not a simulator folder, or a damaged one (make one with 'cvm sim init')",
		        what, a->dir);
	else
		cli_err(a->cmd, "%s '%s': %s", what, a->dir, cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

static int sim_init(int argc, char **argv)
{
	static const int allowed[] = {OPT_MRTD,  OPT_SNP_MEASUREMENT, OPT_SNP_PRODUCT,  OPT_DEBUG,
	                              OPT_AT,    OPT_TCB_OUT_OF_DATE, OPT_RTMR0,        OPT_RTMR1,
	                              OPT_RTMR2, OPT_MRCONFIGID,      OPT_SNP_HOST_DATA};
	static const char *const rtmr_opt[3] = {"--rtmr0", "--rtmr1", "--rtmr2"};
	struct sim_args a = {.cmd = "sim init", .snp_product = CVM_SNP_PRODUCT_MILAN};
	struct cvm_tee_sim_opts o;
	char hex[2 * CVM_TEE_MR_LEN + 1];
	int rc, r;

	rc = parse_args(argc, argv, &a, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	cvm_tee_sim_opts_init(&o, a.at);
	if (a.mrtd_hex != NULL) {
		rc = hex_arg(a.cmd, "--mrtd", a.mrtd_hex, o.mrtd, sizeof(o.mrtd), false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (a.snp_measurement_hex != NULL) {
		rc = hex_arg(a.cmd, "--snp-measurement", a.snp_measurement_hex, o.snp_measurement,
		             sizeof(o.snp_measurement), false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	for (size_t i = 0; i < 3; i++) {
		if (a.rtmr_init_hex[i] == NULL)
			continue;
		rc = hex_arg(a.cmd, rtmr_opt[i], a.rtmr_init_hex[i], o.rtmr_init[i], sizeof(o.rtmr_init[i]),
		             false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (a.mrconfigid_hex != NULL) {
		rc = hex_arg(a.cmd, "--mrconfigid", a.mrconfigid_hex, o.mr_config_id, sizeof(o.mr_config_id),
		             false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (a.snp_host_data_hex != NULL) {
		rc = hex_arg(a.cmd, "--snp-host-data", a.snp_host_data_hex, o.snp_host_data,
		             sizeof(o.snp_host_data), false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	o.snp_product = a.snp_product;
	o.is_debug = a.is_debug;
	o.tcb_out_of_date = a.tcb_out_of_date;
	r = cvm_tee_sim_init(a.dir, &o);
	if (r == CVM_E_INVAL) {
		cli_err(a.cmd, "'%s' exists and is not empty: give a new or empty folder", a.dir);
		return CLI_EXIT_ERROR;
	}
	if (r != CVM_OK)
		return lib_err(&a, "cannot make a simulated platform in", r);
	if (!cli_opts.quiet) {
		cvm_hex_encode(o.mrtd, sizeof(o.mrtd), hex);
		printf("simulated platform made in %s (SIMULATED TEE: not hardware)\n", a.dir);
		printf("  mrtd:       %s\n", hex);
		printf("  collateral: %s/collateral/tdx (root: intel_sgx_root_ca.der, a mock)\n", a.dir);
		printf("  verify:     cvm quote verify QUOTE --collateral %s/collateral/tdx --root "
		       "%s/collateral/tdx/intel_sgx_root_ca.der\n",
		       a.dir, a.dir);
		cvm_hex_encode(o.snp_measurement, sizeof(o.snp_measurement), hex);
		printf("  snp:        %s, measurement %s\n", cvm_snp_product_name(o.snp_product), hex);
		printf("  collateral: %s/collateral/snp (root: ark.pem, a mock)\n", a.dir);
		printf("  verify:     cvm quote verify REPORT --collateral %s/collateral/snp --root "
		       "%s/collateral/snp/ark.pem\n",
		       a.dir, a.dir);
	}
	return CLI_EXIT_OK;
}

static int sim_quote(int argc, char **argv)
{
	static const int allowed[] = {OPT_REPORT_DATA, OPT_OUT, OPT_SNP};
	struct sim_args a = {.cmd = "sim quote"};
	uint8_t rd[CVM_TEE_REPORT_DATA_LEN];
	struct cvm_tee_evidence ev;
	struct cvm_tee_dev *tee = NULL;
	int rc, r;

	memset(&ev, 0, sizeof(ev));
	rc = parse_args(argc, argv, &a, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (a.report_data_hex == NULL || a.out_path == NULL) {
		cli_err(a.cmd, "--report-data HEX and --out FILE are required");
		return CLI_EXIT_USAGE;
	}
	rc = hex_arg(a.cmd, "--report-data", a.report_data_hex, rd, sizeof(rd), true);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_tee_open_sim(a.dir, a.snp ? CVM_TEE_PLATFORM_SNP : CVM_TEE_PLATFORM_TDX, &tee);
	if (r == CVM_E_UNSUPPORTED && a.snp) {
		cli_err(
		    a.cmd,
		    "'%s' has no SEV-SNP platform (made by an older cvm); make a new one with 'cvm sim init'",
		    a.dir);
		return CLI_EXIT_ERROR;
	}
	if (r != CVM_OK)
		return lib_err(&a, "cannot open the simulated platform", r);
	rc = CLI_EXIT_ERROR;
	r = cvm_tee_quote(tee, rd, &ev);
	if (r != CVM_OK) {
		lib_err(&a, "cannot make a quote with", r);
		goto out;
	}
	r = cvm_file_write(a.out_path, ev.data, ev.data_len, 0644);
	if (r != CVM_OK) {
		cli_err(a.cmd, "cannot write '%s': %s", a.out_path,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	if (!cli_opts.quiet)
		printf("wrote a SIMULATED %s of %zu bytes to %s\n", a.snp ? "SNP report" : "TDX quote",
		       ev.data_len, a.out_path);
	rc = CLI_EXIT_OK;
out:
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	return rc;
}

static int sim_extend(int argc, char **argv)
{
	static const int allowed[] = {OPT_RTMR, OPT_DIGEST};
	struct sim_args a = {.cmd = "sim extend"};
	uint8_t digest[CVM_TEE_MR_LEN];
	struct cvm_tee_measurements m;
	struct cvm_tee_dev *tee = NULL;
	char hex[2 * CVM_TEE_MR_LEN + 1];
	int rc, r;

	rc = parse_args(argc, argv, &a, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (!a.rtmr_set || a.digest_hex == NULL) {
		cli_err(a.cmd, "--rtmr N and --digest HEX are required");
		return CLI_EXIT_USAGE;
	}
	rc = hex_arg(a.cmd, "--digest", a.digest_hex, digest, sizeof(digest), false);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_tee_open_sim(a.dir, CVM_TEE_PLATFORM_TDX, &tee);
	if (r != CVM_OK)
		return lib_err(&a, "cannot open the simulated platform", r);
	rc = CLI_EXIT_ERROR;
	r = cvm_tee_extend(tee, (unsigned)a.rtmr, digest);
	if (r != CVM_OK) {
		lib_err(&a, "cannot extend an RTMR of", r);
		goto out;
	}
	r = cvm_tee_measurements(tee, &m);
	if (r != CVM_OK) {
		lib_err(&a, "cannot read the registers of", r);
		goto out;
	}
	cvm_hex_encode(m.rtmr[a.rtmr], CVM_TEE_MR_LEN, hex);
	if (!cli_opts.quiet)
		printf("rtmr%ld: %s\n", a.rtmr, hex);
	rc = CLI_EXIT_OK;
out:
	cvm_tee_free(tee);
	return rc;
}

/* snp_half opens the SEV-SNP half of the platform and reads its
 * measurements; `*have` is false (and 0 returned) when it has none. */
static int snp_half(const struct sim_args *a, struct cvm_tee_info *info, struct cvm_tee_measurements *m,
                    bool *have)
{
	struct cvm_tee_dev *tee = NULL;
	int r;

	*have = false;
	r = cvm_tee_open_sim(a->dir, CVM_TEE_PLATFORM_SNP, &tee);
	if (r == CVM_E_UNSUPPORTED)
		return CVM_OK;
	if (r != CVM_OK)
		return r;
	cvm_tee_info(tee, info);
	r = cvm_tee_measurements(tee, m);
	cvm_tee_free(tee);
	*have = r == CVM_OK;
	return r;
}

/* The JSON of 'cvm measure --json': a few KiB, more with many events. */
#define MEASUREMENT_JSON_MAX ((size_t)1024 * 1024)

/* measurement_reg decodes the register `key` of a 'cvm measure --json'
 * document into `out`: 48 bytes of hex, or null (the register measured no
 * event) or absent when `optional`, which leaves `out` as it is. */
static int measurement_reg(const char *cmd, const char *path, json_t *doc, const char *key, bool optional,
                           uint8_t out[CVM_TEE_MR_LEN])
{
	json_t *v = json_object_get(doc, key);
	const char *hex;

	if (optional && (v == NULL || json_is_null(v)))
		return CLI_EXIT_OK;
	hex = json_string_value(v);
	if (hex == NULL || cvm_hex_decode_exact(hex, json_string_length(v), out, CVM_TEE_MR_LEN) != CVM_OK) {
		cli_err(cmd,
		        "--measurement '%s': \"%s\" is %s, expected %zu hex digits as 'cvm measure --json' "
		        "prints",
		        path, key, v == NULL ? "missing" : "malformed", 2 * (size_t)CVM_TEE_MR_LEN);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* read_measurement takes MRTD and RTMR0..2 from the output of 'cvm measure
 * --json' at `path`. */
static int read_measurement(const char *cmd, const char *path, struct cvm_tee_sim_launch *l)
{
	static const char *const regs[3] = {"rtmr0", "rtmr1", "rtmr2"};
	json_t *doc = NULL;
	json_error_t jerr;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	rc = cli_read_file(cmd, "--measurement file", path, MEASUREMENT_JSON_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	doc = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!json_is_object(doc)) {
		cli_err(cmd,
		        "--measurement '%s': not a JSON object (line %d: %s); give what 'cvm measure --json' "
		        "printed",
		        path, jerr.line, doc == NULL ? jerr.text : "not an object");
		json_decref(doc);
		return CLI_EXIT_ERROR;
	}
	rc = measurement_reg(cmd, path, doc, "mrtd", false, l->mrtd);
	for (size_t i = 0; i < 3 && rc == CLI_EXIT_OK; i++)
		rc = measurement_reg(cmd, path, doc, regs[i], true, l->rtmr_init[i]);
	json_decref(doc);
	return rc;
}

/* dir_is_used is true when `dir` exists and is not an empty folder. */
static bool dir_is_used(const char *dir)
{
	struct dirent *e;
	bool used = false;
	DIR *d;

	d = opendir(dir);
	if (d == NULL)
		return errno != ENOENT;
	for (;;) {
		e = readdir(d);
		if (e == NULL)
			break;
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			used = true;
			break;
		}
	}
	(void)closedir(d);
	return used;
}

static int sim_launch(int argc, char **argv)
{
	static const int allowed[] = {OPT_MEASUREMENT,     OPT_MRTD,         OPT_RTMR0,
	                              OPT_RTMR1,           OPT_RTMR2,        OPT_MRCONFIGID,
	                              OPT_SNP_MEASUREMENT, OPT_SNP_HOST_DATA};
	static const char *const rtmr_opt[3] = {"--rtmr0", "--rtmr1", "--rtmr2"};
	struct sim_args a = {.cmd = "sim launch", .with_platform = true};
	struct cvm_tee_measurements m, sm;
	struct cvm_tee_info sinfo;
	struct cvm_tee_sim_launch l;
	struct cvm_tee_dev *tee = NULL;
	bool have_snp = false;
	int rc, r;

	memset(&l, 0, sizeof(l));
	rc = parse_args(argc, argv, &a, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	/* the options name single registers: they override the file */
	if (a.measurement_path != NULL) {
		rc = read_measurement(a.cmd, a.measurement_path, &l);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (a.mrtd_hex != NULL) {
		rc = hex_arg(a.cmd, "--mrtd", a.mrtd_hex, l.mrtd, sizeof(l.mrtd), false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	for (size_t i = 0; i < 3; i++) {
		if (a.rtmr_init_hex[i] == NULL)
			continue;
		rc = hex_arg(a.cmd, rtmr_opt[i], a.rtmr_init_hex[i], l.rtmr_init[i], sizeof(l.rtmr_init[i]),
		             false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (a.mrconfigid_hex != NULL) {
		rc = hex_arg(a.cmd, "--mrconfigid", a.mrconfigid_hex, l.mr_config_id, sizeof(l.mr_config_id),
		             false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (a.snp_measurement_hex != NULL) {
		rc = hex_arg(a.cmd, "--snp-measurement", a.snp_measurement_hex, l.snp_measurement,
		             sizeof(l.snp_measurement), false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (a.snp_host_data_hex != NULL) {
		rc = hex_arg(a.cmd, "--snp-host-data", a.snp_host_data_hex, l.snp_host_data,
		             sizeof(l.snp_host_data), false);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	r = cvm_tee_sim_launch(a.platform, a.dir, &l);
	if (r == CVM_E_INVAL && dir_is_used(a.dir)) {
		cli_err(a.cmd, "'%s' exists and is not empty: give a new or empty folder", a.dir);
		return CLI_EXIT_ERROR;
	}
	if (r == CVM_E_INVAL) {
		cli_err(a.cmd,
		        "the keys in '%s/keys' are refused: a key file grants access to group or others "
		        "(chmod 600 them)",
		        a.platform);
		return CLI_EXIT_ERROR;
	}
	if (r == CVM_E_FORMAT || r == CVM_E_UNSUPPORTED) {
		cli_err(a.cmd, "'%s' is not a simulated platform%s (make one with 'cvm sim init')",
		        a.platform, r == CVM_E_FORMAT ? ", or a damaged one" : " this cvm knows");
		return CLI_EXIT_ERROR;
	}
	if (r != CVM_OK) {
		cli_err(a.cmd, "cannot launch from '%s' into '%s': %s", a.platform, a.dir,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	if (cli_opts.quiet)
		return CLI_EXIT_OK;
	/* what the launched folder now says, read back through the library */
	r = cvm_tee_open_sim(a.dir, CVM_TEE_PLATFORM_TDX, &tee);
	if (r == CVM_OK)
		r = cvm_tee_measurements(tee, &m);
	cvm_tee_free(tee);
	if (r == CVM_OK)
		r = snp_half(&a, &sinfo, &sm, &have_snp);
	if (r != CVM_OK)
		return lib_err(&a, "launched, but cannot read back", r);
	printf("simulated VM launched in %s on the platform %s (SIMULATED TEE: not hardware)\n", a.dir,
	       a.platform);
	out_field_hex(stdout, "  ", "mrtd", m.mrtd, sizeof(m.mrtd));
	for (unsigned i = 0; i < 3; i++) {
		char name[8];

		(void)snprintf(name, sizeof(name), "rtmr%u", i);
		out_field_hex(stdout, "  ", name, m.rtmr[i], sizeof(m.rtmr[i]));
	}
	out_field_hex(stdout, "  ", "mrconfigid", l.mr_config_id, sizeof(l.mr_config_id));
	if (have_snp) {
		out_field_hex(stdout, "  ", "snp measurement", sm.measurement, sizeof(sm.measurement));
		out_field_hex(stdout, "  ", "snp host_data", sm.host_data, sizeof(sm.host_data));
	}
	out_field(stdout, "  ", "verify tdx",
	          "cvm quote verify QUOTE --collateral %s/collateral/tdx --root "
	          "%s/collateral/tdx/intel_sgx_root_ca.der",
	          a.platform, a.platform);
	if (have_snp)
		out_field(
		    stdout, "  ", "verify snp",
		    "cvm quote verify REPORT --collateral %s/collateral/snp --root %s/collateral/snp/ark.pem",
		    a.platform, a.platform);
	return CLI_EXIT_OK;
}

static int sim_show(int argc, char **argv)
{
	static const int allowed[] = {CLI_OPT_JSON};
	struct sim_args a = {.cmd = "sim show"};
	struct cvm_tee_measurements m, sm;
	struct cvm_tee_info info, sinfo;
	struct cvm_tee_dev *tee = NULL;
	json_t *o = NULL, *rtmrs = NULL, *snp = NULL;
	bool have_snp = false;
	int rc, r, bad = 0;

	rc = parse_args(argc, argv, &a, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	r = cvm_tee_open_sim(a.dir, CVM_TEE_PLATFORM_TDX, &tee);
	if (r != CVM_OK)
		return lib_err(&a, "cannot open the simulated platform", r);
	rc = CLI_EXIT_ERROR;
	cvm_tee_info(tee, &info);
	r = cvm_tee_measurements(tee, &m);
	if (r == CVM_OK)
		r = snp_half(&a, &sinfo, &sm, &have_snp);
	if (r != CVM_OK) {
		lib_err(&a, "cannot read the registers of", r);
		goto out;
	}
	if (!cli_opts.json) {
		printf("%s\n", CVM_TEE_SIMULATED_BANNER);
		printf("platform: %s\n", info.description);
		out_field_hex(stdout, "  ", "mrtd", m.mrtd, sizeof(m.mrtd));
		for (unsigned i = 0; i < CVM_TEE_RTMR_COUNT; i++) {
			char name[8];

			(void)snprintf(name, sizeof(name), "rtmr%u", i);
			out_field_hex(stdout, "  ", name, m.rtmr[i], sizeof(m.rtmr[i]));
		}
		if (have_snp) {
			printf("platform: %s\n", sinfo.description);
			out_field_hex(stdout, "  ", "measurement", sm.measurement, sizeof(sm.measurement));
			out_field_hex(stdout, "  ", "host_data", sm.host_data, sizeof(sm.host_data));
		}
		rc = CLI_EXIT_OK;
		goto out;
	}
	o = json_object();
	rtmrs = json_array();
	if (o == NULL || rtmrs == NULL) {
		json_decref(rtmrs);
		cli_err(a.cmd, "out of memory");
		goto out;
	}
	bad |= out_jset(o, "simulated", json_true());
	bad |= out_jset_str(o, "platform", "tdx");
	bad |= out_jset_str(o, "description", info.description);
	bad |= out_jset_hex(o, "mrtd", m.mrtd, sizeof(m.mrtd));
	for (unsigned i = 0; i < CVM_TEE_RTMR_COUNT; i++)
		bad |= json_array_append_new(rtmrs, out_json_hex(m.rtmr[i], sizeof(m.rtmr[i])));
	bad |= out_jset(o, "rtmr", rtmrs);
	if (have_snp) {
		snp = json_object();
		if (snp == NULL) {
			bad = 1;
		} else {
			bad |= out_jset_str(snp, "description", sinfo.description);
			bad |= out_jset_hex(snp, "measurement", sm.measurement, sizeof(sm.measurement));
			bad |= out_jset_hex(snp, "host_data", sm.host_data, sizeof(sm.host_data));
		}
	}
	bad |= out_jset(o, "snp", have_snp ? snp : json_null());
	if (bad == 0)
		bad = out_json_print(o);
	if (bad != 0) {
		cli_err(a.cmd, "cannot write the JSON output");
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	json_decref(o);
	cvm_tee_free(tee);
	return rc;
}

static int sim_refresh(int argc, char **argv)
{
	static const int allowed[] = {OPT_AT};
	struct sim_args a = {.cmd = "sim refresh"};
	int rc, r;

	rc = parse_args(argc, argv, &a, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	r = cvm_tee_sim_refresh(a.dir, a.at);
	if (r != CVM_OK)
		return lib_err(&a, "cannot refresh the collateral of", r);
	if (!cli_opts.quiet)
		printf("re-signed the collateral in %s/collateral\n", a.dir);
	return CLI_EXIT_OK;
}

int cmd_sim(int argc, char **argv)
{
	static const struct cli_sub subs[] = {{"init", sim_init},   {"launch", sim_launch},
	                                      {"quote", sim_quote}, {"extend", sim_extend},
	                                      {"show", sim_show},   {"refresh", sim_refresh}};

	return cli_dispatch("sim", subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}
