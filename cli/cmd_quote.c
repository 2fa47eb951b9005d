/* cvm quote: verify or show an Intel SGX/TDX DCAP quote or an AMD SEV-SNP
 * attestation report.
 *
 *   cvm quote verify QUOTE [--collateral DIR] [--at UNIX_SECONDS] [--policy FILE] [--root CERT]
 *                    [--type dcap|snp] [--json]
 *                    [--cache DIR --intel-url URL --amd-url URL --offline --refresh ...]
 *   cvm quote show QUOTE [--type dcap|snp] [--json]
 *
 * See docs/cli/cvm-quote.md. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/amd.h>
#include <cvmkit/collateral.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>
#include <cvmkit/snp.h>
#include <cvmkit/tee.h>
#include <cvmkit/verify.h>

#include "cli.h"
#include "collateral_opts.h"
#include "output.h"

#define CMD_VERIFY "quote verify"
#define CMD_SHOW "quote show"
#define REASON_MAX 1024

enum { OPT_AT = 0x200, OPT_POLICY, OPT_ROOT, OPT_TYPE };

/* The kind of evidence: detected from the file unless --type says. */
enum evidence_type { TYPE_AUTO = 0, TYPE_DCAP, TYPE_SNP };

static void usage(FILE *f)
{
	fprintf(f, "usage: cvm quote verify QUOTE [--collateral DIR] [--at UNIX_SECONDS] [--policy FILE]\n"
	           "                        [--root CERT] [--type dcap|snp] [--json]\n"
	           "                        [--cache DIR] [--intel-url URL] [--amd-url URL] [--offline]\n"
	           "                        [--refresh] [--refresh-after S] [--timeout MS] [--product NAME]\n"
	           "       cvm quote show QUOTE [--type dcap|snp] [--json]\n"
	           "\n"
	           "verify  checks a DCAP quote (SGX v3, TDX v4/v5) by Intel's rules (PCK chain and CRLs,\n"
	           "        QE report, QE identity, quote signature, TCB level) with the collateral in DIR,\n"
	           "        then appraises it with a policy (default: strict, see docs/policy.md).\n"
	           "  --collateral DIR   tcb_info.json, qe_identity.json, *_issuer_chain.pem, pck_crl.der,\n"
	           "                     root_ca_crl.der (as Intel's PCS serves them)\n"
	           "                     without it, the collateral comes from the cache (cvm collateral;\n"
	           "                     fetched when --intel-url/--amd-url or CVM_INTEL_URL/CVM_AMD_URL\n"
	           "                     name an upstream) and the verdict says from where and how old\n"
	           "  --cache DIR        the collateral cache (default: see 'cvm help collateral')\n"
	           "  --offline, --refresh, --refresh-after S, --timeout MS: as in 'cvm help collateral'\n"
	           "  --product NAME     Milan, Genoa or Turin: for SNP reports (v2) that do not say, when\n"
	           "                     the cache fetches their VCEK\n"
	           "  --at UNIX_SECONDS  verification time (default: now)\n"
	           "  --policy FILE      appraisal policy, JSON (default: UpToDate only, no advisories,\n"
	           "                     no debug, SEPT_VE_DISABLE required, MR_SERVICE_TD zero)\n"
	           "  --root CERT        trust anchor, DER or PEM (default: the built-in Intel SGX Root CA;\n"
	           "                     SNP: AMD's built-in ARK of the chain's product)\n"
	           "  --type dcap|snp    the kind of evidence (default: detected; a 1184-byte file with\n"
	           "                     an SNP report version is an SEV-SNP report)\n"
	           "        SEV-SNP reports (v2-v5) are checked by AMD's rules: ARK -> ASK -> VCEK or\n"
	           "        ARK -> ASVK -> VLEK anchored in a built-in ARK, AMD's CRL, the report\n"
	           "        signature, reported TCB and chip ID against the VCEK; DIR holds vcek.der or\n"
	           "        vlek.der, ask.pem or asvk.pem (or cert_chain.pem), optionally ark.pem, and\n"
	           "        crl.der, which the default policy requires (policy: snp.require_crl).\n"
	           "show    parses a quote or report and prints every field; it verifies nothing.\n"
	           "\n"
	           "Common options: -v (library messages), -q (verdict only), --json (one JSON object).\n"
	           "Exit codes: 0 accepted (show: parsed), 1 error, 2 usage, 3 rejected.\n");
}

/* ---- shared helpers ---------------------------------------------------- */

static int read_quote(const char *cmd, const char *path, uint8_t **buf, size_t *len)
{
	int r;

	r = cvm_file_read(path, (size_t)CVM_QUOTE_MAX, buf, len);
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	if (r == CVM_E_SYSTEM)
		cli_err(cmd, "cannot read quote file '%s': %s", path, strerror(errno));
	else if (r == CVM_E_TOO_LARGE)
		cli_err(cmd,
		        "quote file '%s' is larger than %zu bytes; a DCAP quote is about 5 KiB: is it the "
		        "right file?",
		        path, (size_t)CVM_QUOTE_MAX);
	else
		cli_err(cmd, "cannot read quote file '%s': %s", path, cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

static const char *tee_label(const struct cvm_quote *q)
{
	return q->tee == CVM_TEE_TDX ? "TDX" : q->tee == CVM_TEE_SGX ? "SGX" : "unknown TEE";
}

static const char *body_label(const struct cvm_quote *q)
{
	switch (q->body_type) {
	case CVM_BODY_SGX:
		return "SGX enclave report";
	case CVM_BODY_TD10:
		return "TD 1.0 body";
	case CVM_BODY_TD15:
		return "TD 1.5 body";
	}
	return "unknown body";
}

/* quote_known is true once the quote structure was parsed. */
static bool quote_known(const struct cvm_quote *q)
{
	return q->version != 0 && (q->tee == CVM_TEE_TDX || q->tee == CVM_TEE_SGX);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* ---- verify ------------------------------------------------------------ */

struct verify_ctx {
	const char *quote_path;
	const char *policy_path;
	const char *root_path;
	int64_t at;
	bool at_set;
	uint8_t *quote;
	size_t quote_len;
	uint8_t *root;
	size_t root_len;
	struct cvm_dcap_collateral *coll_dcap;
	struct cvm_policy policy;
	struct cvm_report rep;
	struct cvm_dcap_result res;
	char reason[REASON_MAX];
	bool is_snp;
	struct cvm_amd_collateral *amd;
	struct cvm_amd_result snp;
	bool simulated;       /* anchored in, or carrying, a cvmkit simulator root */
	struct cli_coll coll; /* --collateral DIR, or the cache */
};

/* summary writes "TDX, TCB UpToDate, no advisories" as far as it is known. */
static void summary(const struct verify_ctx *v, char *buf, size_t cap)
{
	const struct cvm_dcap_result *res = &v->res;
	struct cvm_wr w;

	cvm_wr_init_text(&w, buf, cap);
	if (!quote_known(&res->quote))
		return;
	cvm_wr_str(&w, tee_label(&res->quote));
	if (res->tcb_status == CVM_TCB_NONE)
		return;
	cvm_wr_fmt(&w, ", TCB %s, ", cvm_tcb_status_name(res->tcb_status));
	if (res->advisory_count == 0) {
		cvm_wr_str(&w, "no advisories");
		return;
	}
	cvm_wr_fmt(&w, "advisor%s ", res->advisory_count == 1 ? "y" : "ies");
	for (size_t i = 0; i < res->advisory_count && i < CVM_ADVISORIES_MAX; i++) {
		char id[CVM_ADVISORY_ID_MAX];

		memcpy(id, res->advisory_ids[i], sizeof(id));
		id[sizeof(id) - 1] = '\0';
		out_sanitize(id, id, sizeof(id));
		cvm_wr_fmt(&w, "%s%s", i ? ", " : "", id);
	}
}

static void print_text(const struct verify_ctx *v, int r)
{
	char sum[2048];

	summary(v, sum, sizeof(sum));
	if (!cli_opts.quiet) {
		if (cli_opts.verbose > 0 && quote_known(&v->res.quote)) {
			printf("%s quote v%u, %s (parsed fields; see the steps for what verified):\n",
			       tee_label(&v->res.quote), v->res.quote.version, body_label(&v->res.quote));
			if (v->res.quote.tee == CVM_TEE_TDX)
				out_tdx_report_text(stdout, "  ", &v->res.quote.body.td);
			else
				out_sgx_report_text(stdout, "  ", &v->res.quote.body.sgx);
		}
		out_steps(stdout, &v->rep);
	}
	if (v->coll.from_cache)
		cli_cache_info_text(&v->coll.info);
	out_verdict_text(r == CVM_OK, v->reason, sum);
}

static const char *status_or_null(enum cvm_tcb_status s)
{
	return s == CVM_TCB_NONE ? NULL : cvm_tcb_status_name(s);
}

static int print_json(const struct verify_ctx *v, int r)
{
	const struct cvm_dcap_result *res = &v->res;
	const struct cvm_quote *q = &res->quote;
	bool known = quote_known(q);
	json_t *o = json_object(), *adv = NULL, *pck = NULL;
	char t[32];
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_jset(o, "simulated", json_boolean(v->simulated));
	bad |= out_verdict_json(o, r == CVM_OK, v->reason, NULL);
	bad |= out_jset_int(o, "verify_at", v->at);
	bad |= out_jset_str(o, "tee", known ? out_tee_name(q) : NULL);
	bad |= out_jset(o, "quote_version", known ? json_integer(q->version) : json_null());
	bad |= out_jset_str(o, "body", known ? out_body_name(q) : NULL);
	bad |= out_jset_str(o, "tcb_status", status_or_null(res->tcb_status));
	adv = json_array();
	for (size_t i = 0; adv != NULL && i < res->advisory_count && i < CVM_ADVISORIES_MAX; i++) {
		char id[CVM_ADVISORY_ID_MAX];

		memcpy(id, res->advisory_ids[i], sizeof(id));
		id[sizeof(id) - 1] = '\0';
		out_sanitize(id, id, sizeof(id));
		bad |= json_array_append_new(adv, json_string(id));
	}
	bad |= out_jset(o, "advisory_ids", adv);
	bad |= out_jset_str(o, "platform_status", status_or_null(res->platform_status));
	bad |= out_jset_str(o, "qe_status", status_or_null(res->qe_status));
	if (known && q->tee == CVM_TEE_TDX)
		bad |= out_jset_str(o, "module_status", status_or_null(res->module_status));
	out_time(res->tcb_date, t);
	bad |= out_jset_str(o, "tcb_date", res->tcb_date != 0 ? t : NULL);
	bad |= out_jset(o, "tcb_eval_num",
	                res->tcb_eval_num != 0 ? json_integer(res->tcb_eval_num) : json_null());
	out_time(res->collateral_expiry, t);
	bad |= out_jset_str(o, "collateral_expiry", res->collateral_expiry != 0 ? t : NULL);
	/* The PCK certificate is known once its FMSPC was read (none is zero). */
	if (!all_zero(res->fmspc, sizeof(res->fmspc))) {
		bad |= out_jset_hex(o, "fmspc", res->fmspc, sizeof(res->fmspc));
		pck = json_object();
		if (pck != NULL) {
			bad |= out_jset_hex(pck, "fmspc", res->fmspc, sizeof(res->fmspc));
			bad |= out_jset_hex(pck, "pce_id", res->pce_id, sizeof(res->pce_id));
			bad |= out_jset_hex(pck, "cpu_svn", res->cpu_svn, sizeof(res->cpu_svn));
			bad |= out_jset_int(pck, "pce_svn", res->pce_svn);
		}
		bad |= out_jset(o, "pck", pck);
	} else {
		bad |= out_jset(o, "fmspc", json_null());
		bad |= out_jset(o, "pck", json_null());
	}
	if (known) {
		bad |= out_jset_int(o, "quote_len", (long long)q->quote_len);
		bad |= out_jset_int(o, "padding_len", (long long)q->padding_len);
		bad |= out_json_body(o, q);
	}
	if (v->coll.from_cache)
		bad |= cli_cache_info_json(o, &v->coll.info);
	bad |= out_jset(o, "steps", out_json_steps(&v->rep));
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

/* ---- verify: SEV-SNP ---------------------------------------------------- */

static bool parse_type(const char *s, enum evidence_type *out)
{
	if (strcmp(s, "snp") == 0) {
		*out = TYPE_SNP;
		return true;
	}
	if (strcmp(s, "dcap") == 0 || strcmp(s, "tdx") == 0 || strcmp(s, "sgx") == 0) {
		*out = TYPE_DCAP;
		return true;
	}
	return false;
}

static const char *snp_signer_name(enum cvm_snp_signer s)
{
	return s == CVM_SNP_SIGNER_VLEK ? "vlek" : s == CVM_SNP_SIGNER_VCEK ? "vcek" : NULL;
}

/* snp_tcb_status is "UpToDate" when every AMD check passed (chain, CRL,
 * signature, product, TCB and chip ID bindings), else the name of the
 * first check that failed; the appraisal policy does not change it (as the
 * TCB status of a DCAP quote is Intel's verdict, not the policy's). */
static const char *snp_tcb_status(const struct verify_ctx *v, char *buf, size_t cap)
{
	if (v->snp.authentic)
		return "UpToDate";
	if (v->rep.failed == NULL)
		return NULL;
	out_sanitize(v->rep.failed->name, buf, cap);
	return buf;
}

/* snp_summary writes "SEV-SNP v3, Milan, VLEK, TCB UpToDate: ..." as far as
 * it is known. */
static void snp_summary(const struct verify_ctx *v, char *buf, size_t cap)
{
	const struct cvm_amd_result *res = &v->snp;
	struct cvm_wr w;

	cvm_wr_init_text(&w, buf, cap);
	if (!res->parsed)
		return;
	cvm_wr_fmt(&w, "SEV-SNP v%u", res->report.version);
	if (res->product != CVM_SNP_PRODUCT_UNKNOWN)
		cvm_wr_fmt(&w, ", %s", cvm_snp_product_name(res->product));
	if (res->report.signing_key == CVM_SNP_SIGNER_VCEK || res->report.signing_key == CVM_SNP_SIGNER_VLEK)
		cvm_wr_fmt(&w, ", %s", res->report.signing_key == CVM_SNP_SIGNER_VLEK ? "VLEK" : "VCEK");
	if (res->authentic) {
		char tcb[96];

		out_snp_tcb_text(&res->reported_tcb, tcb, sizeof(tcb));
		cvm_wr_fmt(&w, ", TCB UpToDate: %s", tcb);
	}
}

static void snp_print_text(const struct verify_ctx *v, int r)
{
	char sum[512];

	snp_summary(v, sum, sizeof(sum));
	if (!cli_opts.quiet) {
		if (cli_opts.verbose > 0 && v->snp.parsed) {
			printf("SEV-SNP report v%u (parsed fields; see the steps for what verified):\n",
			       v->snp.report.version);
			out_snp_report_text(stdout, "  ", &v->snp.report);
		}
		out_steps(stdout, &v->rep);
	}
	if (v->coll.from_cache)
		cli_cache_info_text(&v->coll.info);
	out_verdict_text(r == CVM_OK, v->reason, sum);
}

static int snp_print_json(const struct verify_ctx *v, int r)
{
	const struct cvm_amd_result *res = &v->snp;
	json_t *o = json_object();
	char status[CVM_REPORT_NAME_MAX], t[32];
	bool known_product = res->product != CVM_SNP_PRODUCT_UNKNOWN;
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_jset(o, "simulated", json_boolean(v->simulated));
	bad |= out_verdict_json(o, r == CVM_OK, v->reason, NULL);
	bad |= out_jset_int(o, "verify_at", v->at);
	bad |= out_jset_str(o, "tee", "snp");
	bad |= out_jset_str(o, "tcb_status", snp_tcb_status(v, status, sizeof(status)));
	bad |= out_jset(o, "authentic", json_boolean(res->authentic));
	bad |= out_jset_str(
	    o, "signer", res->parsed ? snp_signer_name((enum cvm_snp_signer)res->report.signing_key) : NULL);
	bad |= out_jset_str(o, "product", known_product ? cvm_snp_product_name(res->product) : NULL);
	bad |= out_jset_str(o, "product_name", res->product_name[0] != '\0' ? res->product_name : NULL);
	bad |= out_jset(o, "root_builtin", known_product ? json_boolean(res->root_builtin) : json_null());
	out_time(res->chain_expiry, t);
	bad |= out_jset_str(o, "chain_expiry", known_product && res->chain_expiry != INT64_MAX ? t : NULL);
	bad |= out_jset(o, "certified_tcb", known_product ? out_json_snp_tcb(&res->vek_tcb) : json_null());
	if (res->parsed) {
		bad |= out_json_snp_report(o, &res->report);
		/* The reported TCB as the chain's product lays it out. */
		if (known_product)
			bad |= out_jset(o, "reported_tcb", out_json_snp_tcb(&res->reported_tcb));
	} else {
		bad |= out_jset(o, "report_version", json_null());
		bad |= out_jset(o, "reported_tcb", json_null());
		bad |= out_jset(o, "measurement", json_null());
		bad |= out_jset(o, "report_data", json_null());
		bad |= out_jset(o, "chip_id", json_null());
		bad |= out_jset(o, "policy", json_null());
	}
	if (v->coll.from_cache)
		bad |= cli_cache_info_json(o, &v->coll.info);
	bad |= out_jset(o, "steps", out_json_steps(&v->rep));
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

static int quote_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"at", required_argument, NULL, OPT_AT},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"type", required_argument, NULL, OPT_TYPE},
	    CLI_COLL_LONGOPTS,
	    CLI_COMMON_LONGOPTS,
	};
	enum evidence_type type = TYPE_AUTO;
	struct verify_ctx *v;
	char perr[512];
	int c, k, r, rc = CLI_EXIT_ERROR;

	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		cli_err(CMD_VERIFY, "out of memory");
		return CLI_EXIT_ERROR;
	}
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		k = cli_coll_option(CMD_VERIFY, &v->coll, c, optarg);
		if (k < 0) {
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		if (k > 0)
			continue;
		switch (c) {
		case OPT_AT:
			if (!cli_parse_time(optarg, &v->at)) {
				cli_err(CMD_VERIFY,
				        "--at '%s': expected Unix seconds (a non-negative integer)", optarg);
				rc = CLI_EXIT_USAGE;
				goto out;
			}
			v->at_set = true;
			break;
		case OPT_POLICY:
			v->policy_path = optarg;
			break;
		case OPT_ROOT:
			v->root_path = optarg;
			break;
		case OPT_TYPE:
			if (!parse_type(optarg, &type)) {
				cli_err(CMD_VERIFY, "--type '%s': expected dcap or snp", optarg);
				rc = CLI_EXIT_USAGE;
				goto out;
			}
			break;
		case 'h':
			usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			cli_bad_option(CMD_VERIFY, c, argv, "cvm help quote");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(CMD_VERIFY, "%s; usage: cvm quote verify QUOTE [--collateral DIR] [options]",
		        argc - optind == 0 ? "no QUOTE file given" : "more than one QUOTE file given");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	v->quote_path = argv[optind];
	rc = cli_coll_check(CMD_VERIFY, &v->coll);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (!v->at_set)
		v->at = (int64_t)time(NULL);

	rc = read_quote(CMD_VERIFY, v->quote_path, &v->quote, &v->quote_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	v->is_snp =
	    type == TYPE_SNP || (type == TYPE_AUTO && cvm_snp_report_looks_like(v->quote, v->quote_len));
	cvm_policy_init(&v->policy);
	if (v->policy_path != NULL) {
		r = cvm_policy_load_file(v->policy_path, &v->policy, perr, sizeof(perr));
		if (r != CVM_OK) {
			cli_err(CMD_VERIFY, "policy file '%s': %s; fix it (see docs/policy.md)",
			        v->policy_path, perr);
			goto out;
		}
	}
	if (v->root_path != NULL) {
		rc = cli_load_cert(CMD_VERIFY, "--root certificate", v->root_path, &v->root, &v->root_len);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	rc = cli_coll_load(CMD_VERIFY, &v->coll, v->quote_path, v->is_snp, v->quote, v->quote_len, v->at,
	                   v->root, v->root_len, &v->coll_dcap, &v->amd);
	if (rc != CLI_EXIT_OK)
		goto out;

	cvm_report_init(&v->rep);
	if (v->is_snp)
		r = cvm_verify_snp_report(v->quote, v->quote_len, v->amd, v->root, v->root_len, v->at,
		                          &v->policy, &v->rep, &v->snp);
	else
		r = cvm_verify_quote(v->quote, v->quote_len, v->coll_dcap, v->root, v->root_len, v->at,
		                     &v->policy, &v->rep, &v->res);
	rc = cli_exit_for(r);
	out_verdict_reason(&v->rep, r, v->reason, sizeof(v->reason));
	/* Evidence from `cvm sim` says so in the first line, whatever the
	 * verdict: a simulator root as anchor, one in the quote's chain, or
	 * (SNP reports carry no certificate) one among the collateral's ARK
	 * and chains. */
	v->simulated = cvm_tee_is_simulated_root(v->root, v->root_len) ||
	               cvm_tee_evidence_is_simulated(v->quote, v->quote_len, NULL, 0) ||
	               out_amd_simulated(v->amd);
	if (v->simulated && !cli_opts.json)
		printf("%s\n", CVM_TEE_SIMULATED_BANNER);
	if (cli_opts.json) {
		if ((v->is_snp ? snp_print_json(v, r) : print_json(v, r)) != 0) {
			cli_err(CMD_VERIFY, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else if (v->is_snp) {
		snp_print_text(v, r);
	} else {
		print_text(v, r);
	}
	if (rc == CLI_EXIT_ERROR)
		cli_err(CMD_VERIFY, "verification could not run to the end: %s", cvm_strerror(r));
out:
	cvm_dcap_collateral_free(v->coll_dcap);
	cvm_amd_collateral_free(v->amd);
	free(v->root);
	free(v->quote);
	free(v);
	return rc;
}

/* ---- show -------------------------------------------------------------- */

static void show_text(const char *path, size_t file_len, const struct cvm_quote *q)
{
	const char *ind = "  ";
	size_t certs = out_pem_cert_count(q->pck_chain_pem);

	printf("quote: %s v%u, %s, %zu bytes", tee_label(q), q->version, body_label(q), q->quote_len);
	if (q->padding_len != 0)
		printf(" (+ %zu trailing bytes%s)", q->padding_len,
		       q->trailing_garbage ? ", NOT all zero: verify rejects this file" : " of zero padding");
	printf("\n");
	if (cli_opts.quiet)
		return;
	printf("file: %s (%zu bytes)\n", path, file_len);
	printf("note: parsed only; no signature, certificate, CRL or TCB check was made "
	       "(use 'cvm quote verify')\n");
	printf("header:\n");
	out_field(stdout, ind, "version", "%u", q->version);
	out_field(stdout, ind, "att_key_type", "%u%s", q->att_key_type,
	          q->att_key_type == CVM_ATT_KEY_ECDSA_P256 ? " (ECDSA-P256)" : "");
	out_field(stdout, ind, "tee_type", "0x%08" PRIx32 " (%s)", q->tee_type, tee_label(q));
	out_field(stdout, ind, "qe_svn", "%u", q->qe_svn);
	out_field(stdout, ind, "pce_svn", "%u", q->pce_svn);
	out_field_hex(stdout, ind, "qe_vendor_id", q->qe_vendor_id, sizeof(q->qe_vendor_id));
	out_field_hex(stdout, ind, "user_data", q->user_data, sizeof(q->user_data));
	printf("body (%s):\n", out_body_name(q) != NULL ? out_body_name(q) : "?");
	if (q->tee == CVM_TEE_TDX)
		out_tdx_report_text(stdout, ind, &q->body.td);
	else
		out_sgx_report_text(stdout, ind, &q->body.sgx);
	printf("signature data:\n");
	out_field_hex(stdout, ind, "signature", q->signature, sizeof(q->signature));
	out_field_hex(stdout, ind, "attest_key", q->attest_key, sizeof(q->attest_key));
	printf("  qe_report:\n");
	out_sgx_report_text(stdout, "    ", &q->qe_report);
	out_field_hex(stdout, ind, "qe_report_sig", q->qe_report_sig, sizeof(q->qe_report_sig));
	out_field_hex(stdout, ind, "qe_auth_data", q->qe_auth_data.p, q->qe_auth_data.len);
	out_field(stdout, ind, "cert_data_type", "%u (PCK certificate chain)%s", q->cert_data_type,
	          q->outer_cert_data_type == CVM_CERT_DATA_QE_REPORT ? ", inside type 6 (QE report data)"
	                                                             : "");
	out_field(stdout, ind, "pck_chain", "%zu certificate%s, %zu bytes of PEM", certs,
	          certs == 1 ? "" : "s", q->pck_chain_pem.len);
	if (cli_opts.verbose > 0 && out_pem_printable(q->pck_chain_pem))
		printf("%.*s\n", (int)q->pck_chain_pem.len, (const char *)q->pck_chain_pem.p);
}

static int show_json(size_t file_len, const struct cvm_quote *q)
{
	json_t *o = json_object(), *hdr = json_object(), *sig = json_object();
	int bad = 0;

	if (o == NULL || hdr == NULL || sig == NULL) {
		json_decref(o);
		json_decref(hdr);
		json_decref(sig);
		return -1;
	}
	bad |= out_jset(o, "verified", json_false());
	bad |= out_jset_str(o, "note", "parsed only; no signature, certificate, CRL or TCB check was made");
	bad |= out_jset_int(o, "file_len", (long long)file_len);
	bad |= out_jset_int(o, "quote_len", (long long)q->quote_len);
	bad |= out_jset_int(o, "padding_len", (long long)q->padding_len);
	bad |= out_jset(o, "trailing_garbage", json_boolean(q->trailing_garbage));
	bad |= out_jset_str(o, "tee", out_tee_name(q));
	bad |= out_jset_int(o, "quote_version", q->version);
	bad |= out_jset_str(o, "body", out_body_name(q));
	bad |= out_jset_int(hdr, "version", q->version);
	bad |= out_jset_int(hdr, "att_key_type", q->att_key_type);
	bad |= out_jset_int(hdr, "tee_type", q->tee_type);
	bad |= out_jset_int(hdr, "qe_svn", q->qe_svn);
	bad |= out_jset_int(hdr, "pce_svn", q->pce_svn);
	bad |= out_jset_hex(hdr, "qe_vendor_id", q->qe_vendor_id, sizeof(q->qe_vendor_id));
	bad |= out_jset_hex(hdr, "user_data", q->user_data, sizeof(q->user_data));
	bad |= out_jset(o, "header", hdr);
	bad |= out_json_body(o, q);
	bad |= out_jset_hex(sig, "signature", q->signature, sizeof(q->signature));
	bad |= out_jset_hex(sig, "attest_key", q->attest_key, sizeof(q->attest_key));
	bad |= out_jset(sig, "qe_report", out_json_sgx_report(&q->qe_report));
	bad |= out_jset_hex(sig, "qe_report_sig", q->qe_report_sig, sizeof(q->qe_report_sig));
	bad |= out_jset_hex(sig, "qe_auth_data", q->qe_auth_data.p, q->qe_auth_data.len);
	bad |= out_jset_int(sig, "cert_data_type", q->cert_data_type);
	bad |= out_jset_int(sig, "outer_cert_data_type", q->outer_cert_data_type);
	bad |= out_jset_int(sig, "pck_chain_pem_len", (long long)q->pck_chain_pem.len);
	bad |= out_jset_int(sig, "pck_chain_cert_count", (long long)out_pem_cert_count(q->pck_chain_pem));
	if (out_pem_printable(q->pck_chain_pem)) {
		size_t n = q->pck_chain_pem.len;

		/* A trailing NUL terminator is not part of the text. */
		while (n > 0 && q->pck_chain_pem.p[n - 1] == 0)
			n--;
		bad |= out_jset(sig, "pck_chain_pem", json_stringn((const char *)q->pck_chain_pem.p, n));
	}
	bad |= out_jset(o, "signature_data", sig);
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

/* ---- show: SEV-SNP ------------------------------------------------------ */

static void snp_show_text(const char *path, size_t file_len, const struct cvm_snp_report *r)
{
	printf("report: SEV-SNP v%u, %u bytes, signed by %s%s\n", r->version, CVM_SNP_REPORT_LEN,
	       r->signing_key == CVM_SNP_SIGNER_VLEK   ? "a VLEK"
	       : r->signing_key == CVM_SNP_SIGNER_VCEK ? "a VCEK"
	                                               : "no key",
	       r->has_cpuid ? "" : " (no CPUID fields before v3)");
	if (cli_opts.quiet)
		return;
	printf("file: %s (%zu bytes)\n", path, file_len);
	printf("note: parsed only; no signature, certificate, CRL or TCB check was made "
	       "(use 'cvm quote verify')\n");
	out_snp_report_text(stdout, "  ", r);
}

static int snp_show_json(size_t file_len, const struct cvm_snp_report *r)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_jset(o, "verified", json_false());
	bad |= out_jset_str(o, "note", "parsed only; no signature, certificate, CRL or TCB check was made");
	bad |= out_jset_int(o, "file_len", (long long)file_len);
	bad |= out_jset_str(o, "tee", "snp");
	bad |= out_jset_str(o, "product_from_cpuid",
	                    r->product != CVM_SNP_PRODUCT_UNKNOWN ? cvm_snp_product_name(r->product) : NULL);
	bad |= out_json_snp_report(o, r);
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

static int snp_show(const char *path, const uint8_t *buf, size_t len)
{
	struct cvm_snp_report r;
	int rc;

	rc = cvm_snp_report_parse(buf, len, &r);
	if (rc != CVM_OK) {
		cli_err(CMD_SHOW,
		        "'%s' is not an SEV-SNP report cvmkit can read (%zu bytes; a report is %u): %s", path,
		        len, CVM_SNP_REPORT_LEN, cvm_strerror(rc));
		return CLI_EXIT_ERROR;
	}
	if (r.reserved_nonzero)
		cli_err(CMD_SHOW,
		        "warning: in '%s', %s is not as the ABI requires; 'cvm quote verify' rejects it",
		        path, r.reserved_what);
	if (cli_opts.json) {
		if (snp_show_json(len, &r) != 0) {
			cli_err(CMD_SHOW, "cannot write the JSON output");
			return CLI_EXIT_ERROR;
		}
		return CLI_EXIT_OK;
	}
	snp_show_text(path, len, &r);
	return CLI_EXIT_OK;
}

static int quote_show(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"type", required_argument, NULL, OPT_TYPE},
	    CLI_COLL_LONGOPTS,
	    CLI_COMMON_LONGOPTS,
	};
	enum evidence_type type = TYPE_AUTO;
	struct cvm_quote q;
	uint8_t *buf = NULL;
	size_t len = 0;
	int c, r, rc;

	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		if (c == 'h') {
			usage(stdout);
			return CLI_EXIT_OK;
		}
		if (c == OPT_TYPE && parse_type(optarg, &type))
			continue;
		if (c == OPT_TYPE) {
			cli_err(CMD_SHOW, "--type '%s': expected dcap or snp", optarg);
			return CLI_EXIT_USAGE;
		}
		if (c == ':') {
			cli_err(CMD_SHOW, "option '%s' needs a value; see 'cvm help quote'",
			        argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
		cli_err(CMD_SHOW, "unknown option '%s'; see 'cvm help quote'", argv[optind - 1]);
		return CLI_EXIT_USAGE;
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(CMD_SHOW, "%s; usage: cvm quote show QUOTE [--json]",
		        argc - optind == 0 ? "no QUOTE file given" : "more than one QUOTE file given");
		return CLI_EXIT_USAGE;
	}
	rc = read_quote(CMD_SHOW, argv[optind], &buf, &len);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (type == TYPE_SNP || (type == TYPE_AUTO && cvm_snp_report_looks_like(buf, len))) {
		rc = snp_show(argv[optind], buf, len);
		goto out;
	}
	r = cvm_quote_parse(buf, len, &q);
	if (r == CVM_E_FORMAT && q.trailing_garbage) {
		/* The quote proper is complete: show it, and say why verify
		 * would reject the file. */
		cli_err(CMD_SHOW,
		        "warning: %zu bytes that are not zero padding follow the %zu-byte quote in '%s'; "
		        "'cvm quote verify' rejects it",
		        q.padding_len, q.quote_len, argv[optind]);
		r = CVM_OK;
	}
	if (r != CVM_OK) {
		cli_err(CMD_SHOW, "'%s' is not a DCAP quote cvmkit can read: %s", argv[optind],
		        cvm_strerror(r));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	if (cli_opts.json) {
		if (show_json(len, &q) != 0) {
			cli_err(CMD_SHOW, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else {
		show_text(argv[optind], len, &q);
	}
out:
	free(buf);
	return rc;
}

/* ---- dispatch ---------------------------------------------------------- */

int cmd_quote(int argc, char **argv)
{
	static const struct cli_sub subs[] = {{"verify", quote_verify}, {"show", quote_show}};

	return cli_dispatch("quote", subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}
