/* cvm evidence: verify a cvmkit evidence bundle (cvm-agentd's GetEvidence).
 *
 *   cvm evidence verify BUNDLE --nonce HEX --collateral DIR [--root CERT] [--policy FILE]
 *                       [--at UNIX_SECONDS] [--require-tpm] [--require-ima] [--json]
 *
 * See docs/cli/cvm-evidence.md. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/evidence.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/report.h>
#include <cvmkit/tee.h>

#include "cli.h"
#include "output.h"

#define CMD_VERIFY "evidence verify"

enum {
	OPT_NONCE = 0x200,
	OPT_COLLATERAL,
	OPT_ROOT,
	OPT_POLICY,
	OPT_AT,
	OPT_REQUIRE_TPM,
	OPT_REQUIRE_IMA,
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cvm evidence verify BUNDLE --nonce HEX --collateral DIR [--root CERT] [--policy FILE]\n"
	    "                           [--at UNIX_SECONDS] [--require-tpm] [--require-ima] [--json]\n"
	    "\n"
	    "verify  checks an evidence bundle from cvm-agentd's GetEvidence (BUNDLE: a file, or - for\n"
	    "        standard input): the nonce; the TDX quote (or SEV-SNP report) by the vendor's rules\n"
	    "        and the policy; that report_data binds the nonce and the TPM attestation key; the\n"
	    "        event log against RTMR0..3; on TDX, that RTMR3 recorded that AK before any app\n"
	    "        event; the TPM quote (signature, qualifying data, PCR values); and that a prefix\n"
	    "        of the IMA list replays to the quoted PCR 10.\n"
	    "  --nonce HEX        the nonce sent with GetEvidence (8 to 64 bytes)\n"
	    "  --collateral DIR   DCAP collateral (TDX), or vcek/ask files (SEV-SNP), as cvm quote verify\n"
	    "  --root CERT        trust anchor, DER or PEM (default: the vendor's built-in root)\n"
	    "  --policy FILE      appraisal policy for the TEE quote (docs/policy.md; default strict)\n"
	    "  --at UNIX_SECONDS  verification time (default: now)\n"
	    "  --require-tpm      reject a bundle without a TPM quote\n"
	    "  --require-ima      reject a bundle without an IMA list the TPM quote covers\n"
	    "\n"
	    "Common options: -v (library messages), -q (verdict only), --json (one JSON object).\n"
	    "Exit codes: 0 accepted, 1 error, 2 usage, 3 rejected.\n");
}

struct verify_ctx {
	const char *bundle_path, *nonce_hex, *collateral_dir, *root_path, *policy_path;
	int64_t at;
	bool at_set;
	uint8_t nonce[CVM_EVIDENCE_NONCE_MAX];
	size_t nonce_len;
	uint8_t *bundle, *root;
	size_t bundle_len, root_len;
	struct cvm_evidence *ev;
	struct cvm_dcap_collateral *dcap;
	struct cvm_amd_collateral *amd;
	struct cvm_policy policy;
	struct cvm_evidence_opts opts;
	struct cvm_evidence_result res;
	struct cvm_report rep;
	bool simulated;
	char reason[1024];
};

static int load_collateral(struct verify_ctx *v)
{
	char what[4352] = "";
	int r;

	if (cvm_evidence_platform(v->ev) == CVM_EVIDENCE_SNP) {
		r = cvm_amd_collateral_load_dir(v->collateral_dir, &v->amd, what, sizeof(what));
		v->opts.amd = v->amd;
	} else {
		r = cvm_dcap_collateral_load_dir(v->collateral_dir, &v->dcap, what, sizeof(what));
		v->opts.dcap = v->dcap;
	}
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	cli_err(CMD_VERIFY, "cannot load collateral from '%s': %s (see 'cvm help quote' for the files)",
	        v->collateral_dir, what[0] != '\0' ? what : cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

static json_t *json_tpm(const struct verify_ctx *v)
{
	const struct cvm_tpm_attest *a = &v->res.tpm.attest;
	char sel[256];
	json_t *o;
	int bad = 0;

	if (!v->res.has_tpm)
		return json_null();
	o = json_object();
	if (o == NULL)
		return NULL;
	cvm_tpm_pcr_sel_format(&a->pcr_sel, sel, sizeof(sel));
	bad |= out_jset(o, "verified", json_boolean(v->res.tpm_verified));
	bad |= out_jset_hex(o, "ak_name", v->res.ak_name, v->res.ak_name_len);
	bad |= out_jset(o, "ak_recorded", json_boolean(v->res.ak_recorded));
	bad |= out_jset_str(o, "pcr_selection", a->magic != 0 ? sel : NULL);
	bad |= out_jset_hex(o, "pcr_digest", a->pcr_digest, a->pcr_digest_len);
	bad |= out_jset_int(o, "reset_count", a->reset_count);
	bad |= out_jset_int(o, "restart_count", a->restart_count);
	bad |= out_jset_int(o, "clock", (long long)a->clock);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *json_ima(const struct verify_ctx *v)
{
	json_t *o;
	int bad = 0;

	if (!v->res.has_ima)
		return json_null();
	o = json_object();
	if (o == NULL)
		return NULL;
	bad |= out_jset(o, "verified", json_boolean(v->res.ima_verified));
	bad |= out_jset_str(o, "bank", v->res.ima_bank != 0 ? cvm_digest_name(v->res.ima_bank) : NULL);
	bad |= out_jset_int(o, "quoted_entries", (long long)v->res.ima_quoted_entries);
	bad |= out_jset_int(o, "total_entries", (long long)v->res.ima_total_entries);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int print_json(const struct verify_ctx *v, int r)
{
	const bool tdx = v->res.platform == CVM_EVIDENCE_TDX;
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_verdict_json(o, r == CVM_OK, v->reason, NULL);
	bad |= out_jset(o, "simulated", json_boolean(v->simulated));
	bad |= out_jset_str(o, "platform", tdx ? "tdx" : "snp");
	bad |= out_jset(o, "tee_verified", json_boolean(v->res.tee_verified));
	bad |= out_jset_str(o, "tcb_status",
	                    tdx && v->res.tee_verified ? cvm_tcb_status_name(v->res.dcap.tcb_status) : NULL);
	bad |= out_jset(o, "bound", json_boolean(v->res.bound));
	bad |= out_jset_int(o, "event_count", (long long)v->res.event_count);
	bad |= out_jset(o, "rtmrs_replayed", json_boolean(v->res.rtmrs_replayed));
	bad |= out_jset(o, "tpm", json_tpm(v));
	bad |= out_jset(o, "ima", json_ima(v));
	bad |= out_jset(o, "steps", out_json_steps(&v->rep));
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

static void print_text(const struct verify_ctx *v, int r)
{
	char name[2 * CVM_TPM_NAME_MAX + 1], sel[256], sum[128] = "";

	if (!cli_opts.quiet) {
		out_steps(stdout, &v->rep);
		if (v->res.tpm_verified) {
			cvm_hex_encode(v->res.ak_name, v->res.ak_name_len, name);
			cvm_tpm_pcr_sel_format(&v->res.tpm.attest.pcr_sel, sel, sizeof(sel));
			printf("tpm: quote of %s by AK %s%s, resetCount %u, restartCount %u\n", sel, name,
			       v->res.ak_recorded ? " (recorded in RTMR3 by the system)"
			                          : " (bound by report_data in the agent's domain)",
			       v->res.tpm.attest.reset_count, v->res.tpm.attest.restart_count);
		} else if (!v->res.has_tpm) {
			printf("tpm: none in the bundle\n");
		}
		if (v->res.ima_verified)
			printf("ima: PCR 10 (%s) covers the first %llu of %llu entries%s\n",
			       cvm_digest_name(v->res.ima_bank),
			       (unsigned long long)v->res.ima_quoted_entries,
			       (unsigned long long)v->res.ima_total_entries,
			       v->res.ima_quoted_entries < v->res.ima_total_entries
			           ? "; the later ones were measured after the quote and are NOT covered"
			           : "");
		else if (v->res.has_ima && r == CVM_OK)
			printf("ima: present but NOT verified (no TPM quote covers it)\n");
	}
	if (r == CVM_OK)
		(void)snprintf(sum, sizeof(sum), "%s%s%s",
		               v->res.platform == CVM_EVIDENCE_TDX ? "TDX" : "SEV-SNP",
		               v->res.tpm_verified ? ", TPM quote bound" : ", no TPM",
		               v->res.ima_verified ? ", IMA list covered" : "");
	out_verdict_text(r == CVM_OK, v->reason, sum);
}

static int parse_args(struct verify_ctx *v, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"nonce", required_argument, NULL, OPT_NONCE},
	    {"collateral", required_argument, NULL, OPT_COLLATERAL},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"at", required_argument, NULL, OPT_AT},
	    {"require-tpm", no_argument, NULL, OPT_REQUIRE_TPM},
	    {"require-ima", no_argument, NULL, OPT_REQUIRE_IMA},
	    CLI_COMMON_LONGOPTS,
	};
	int c;

	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_NONCE:
			v->nonce_hex = optarg;
			break;
		case OPT_COLLATERAL:
			v->collateral_dir = optarg;
			break;
		case OPT_ROOT:
			v->root_path = optarg;
			break;
		case OPT_POLICY:
			v->policy_path = optarg;
			break;
		case OPT_AT:
			if (!cli_parse_time(optarg, &v->at)) {
				cli_err(CMD_VERIFY, "--at '%.40s': expected Unix seconds", optarg);
				return CLI_EXIT_USAGE;
			}
			v->at_set = true;
			break;
		case OPT_REQUIRE_TPM:
			v->opts.require_tpm = true;
			break;
		case OPT_REQUIRE_IMA:
			v->opts.require_ima = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			cli_bad_option(CMD_VERIFY, c, argv, "cvm help evidence");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(CMD_VERIFY, "expected one BUNDLE file; usage: cvm evidence verify BUNDLE --nonce HEX "
		                    "--collateral DIR [options]");
		return CLI_EXIT_USAGE;
	}
	v->bundle_path = argv[optind];
	if (v->nonce_hex == NULL || v->collateral_dir == NULL) {
		cli_err(CMD_VERIFY, "--nonce HEX and --collateral DIR are required");
		return CLI_EXIT_USAGE;
	}
	if (cvm_hex_decode(v->nonce_hex, strlen(v->nonce_hex), v->nonce, sizeof(v->nonce), &v->nonce_len) !=
	        CVM_OK ||
	    v->nonce_len < CVM_EVIDENCE_NONCE_MIN) {
		cli_err(CMD_VERIFY, "--nonce: expected %u to %u bytes of hex", CVM_EVIDENCE_NONCE_MIN,
		        CVM_EVIDENCE_NONCE_MAX);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static int evidence_verify(int argc, char **argv)
{
	struct verify_ctx *v;
	char why[512];
	int r, rc;

	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		cli_err(CMD_VERIFY, "out of memory");
		return CLI_EXIT_ERROR;
	}
	rc = parse_args(v, argc, argv);
	if (rc != CLI_EXIT_OK) {
		rc = rc < 0 ? CLI_EXIT_OK : rc;
		goto out;
	}
	if (!v->at_set)
		v->at = (int64_t)time(NULL);
	cvm_policy_init(&v->policy);
	if (v->policy_path != NULL) {
		r = cvm_policy_load_file(v->policy_path, &v->policy, why, sizeof(why));
		if (r != CVM_OK) {
			cli_err(CMD_VERIFY, "policy file '%s': %s; fix it (see docs/policy.md)",
			        v->policy_path, why);
			rc = CLI_EXIT_ERROR;
			goto out;
		}
	}
	if (v->root_path != NULL) {
		rc = cli_load_cert(CMD_VERIFY, "--root certificate", v->root_path, &v->root, &v->root_len);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	rc = cli_read_file(CMD_VERIFY, "bundle", v->bundle_path, CVM_EVIDENCE_JSON_MAX, &v->bundle,
	                   &v->bundle_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	cvm_report_init(&v->rep);
	r = cvm_evidence_parse(v->bundle, v->bundle_len, &v->ev, why, sizeof(why));
	if (r != CVM_OK) {
		out_sanitize(why, v->reason, sizeof(v->reason));
		cvm_report_add(&v->rep, "evidence.parse", false, "the bundle does not parse: %s", v->reason);
		out_verdict_reason(&v->rep, r, v->reason, sizeof(v->reason));
		rc = r == CVM_E_NOMEM ? CLI_EXIT_ERROR : CLI_EXIT_REJECTED;
		if (cli_opts.json) {
			if (print_json(v, r) != 0)
				rc = CLI_EXIT_ERROR;
		} else {
			out_verdict_text(r == CVM_OK, v->reason, NULL);
		}
		goto out;
	}
	rc = load_collateral(v);
	if (rc != CLI_EXIT_OK)
		goto out;
	v->opts.nonce = v->nonce;
	v->opts.nonce_len = v->nonce_len;
	v->opts.root_der = v->root;
	v->opts.root_der_len = v->root_len;
	v->opts.at = v->at;
	v->opts.policy = &v->policy;
	r = cvm_evidence_verify(v->ev, &v->opts, &v->rep, &v->res);
	rc = cli_exit_for(r);
	out_verdict_reason(&v->rep, r, v->reason, sizeof(v->reason));
	/* Simulated evidence says so first, whatever the verdict. */
	v->simulated =
	    cvm_evidence_claims_simulated(v->ev) || cvm_tee_is_simulated_root(v->root, v->root_len);
	if (v->simulated && !cli_opts.json)
		printf("%s\n", CVM_TEE_SIMULATED_BANNER);
	if (cli_opts.json) {
		if (print_json(v, r) != 0) {
			cli_err(CMD_VERIFY, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else {
		print_text(v, r);
	}
	if (rc == CLI_EXIT_ERROR)
		cli_err(CMD_VERIFY, "verification could not run to the end: %s", cvm_strerror(r));
out:
	cvm_evidence_free(v->ev);
	cvm_dcap_collateral_free(v->dcap);
	cvm_amd_collateral_free(v->amd);
	free(v->bundle);
	free(v->root);
	free(v);
	return rc;
}

int cmd_evidence(int argc, char **argv)
{
	static const struct cli_sub subs[] = {{"verify", evidence_verify}};

	return cli_dispatch("evidence", subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}
