/* cvm quote: verify or show an Intel SGX/TDX DCAP quote.
 *
 *   cvm quote verify QUOTE --collateral DIR [--at UNIX_SECONDS] [--policy FILE] [--root CERT] [--json]
 *   cvm quote show QUOTE [--json]
 *
 * See docs/cli/cvm-quote.md. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>
#include <cvmkit/verify.h>

#include "cli.h"
#include "output.h"

#define CMD_VERIFY "quote verify"
#define CMD_SHOW "quote show"
#define REASON_MAX 1024

enum { OPT_COLLATERAL = 0x200, OPT_AT, OPT_POLICY, OPT_ROOT };

static void usage(FILE *f)
{
	fprintf(f, "usage: cvm quote verify QUOTE --collateral DIR [--at UNIX_SECONDS] [--policy FILE]\n"
	           "                        [--root CERT] [--json]\n"
	           "       cvm quote show QUOTE [--json]\n"
	           "\n"
	           "verify  checks a DCAP quote (SGX v3, TDX v4/v5) by Intel's rules (PCK chain and CRLs,\n"
	           "        QE report, QE identity, quote signature, TCB level) with the collateral in DIR,\n"
	           "        then appraises it with a policy (default: strict, see docs/policy.md).\n"
	           "  --collateral DIR   tcb_info.json, qe_identity.json, *_issuer_chain.pem, pck_crl.der,\n"
	           "                     root_ca_crl.der (as Intel's PCS serves them)\n"
	           "  --at UNIX_SECONDS  verification time (default: now)\n"
	           "  --policy FILE      appraisal policy, JSON (default: UpToDate only, no advisories,\n"
	           "                     no debug, SEPT_VE_DISABLE required, MR_SERVICE_TD zero)\n"
	           "  --root CERT        trust anchor, DER or PEM (default: the built-in Intel SGX Root CA)\n"
	           "show    parses a quote and prints every field; it verifies nothing.\n"
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
	const char *collateral_dir;
	const char *policy_path;
	const char *root_path;
	int64_t at;
	bool at_set;
	uint8_t *quote;
	size_t quote_len;
	uint8_t *root;
	size_t root_len;
	struct cvm_dcap_collateral *coll;
	struct cvm_policy policy;
	struct cvm_report rep;
	struct cvm_dcap_result res;
	char reason[REASON_MAX];
};

static bool parse_at(const char *s, int64_t *out)
{
	char *end = NULL;
	long long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return false;
	*out = (int64_t)v;
	return true;
}

/* load_root reads a DER or PEM certificate and hands back its DER. */
static int load_root(const char *path, uint8_t **out, size_t *out_len)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end_marker[] = "-----END CERTIFICATE-----";
	uint8_t *buf = NULL;
	char *b64 = NULL;
	size_t len = 0, n = 0;
	const char *p, *e;
	int r, rc = CLI_EXIT_ERROR;

	*out = NULL;
	*out_len = 0;
	r = cvm_file_read(path, (size_t)CVM_DCAP_CERT_MAX, &buf, &len);
	if (r == CVM_E_SYSTEM) {
		cli_err(CMD_VERIFY, "cannot read --root certificate '%s': %s", path, strerror(errno));
		goto out;
	}
	if (r != CVM_OK) {
		cli_err(CMD_VERIFY, "cannot read --root certificate '%s': %s", path, cvm_strerror(r));
		goto out;
	}
	if (len > 0 && buf[0] == 0x30) {
		*out = buf;
		*out_len = len;
		buf = NULL; /* transferred */
		rc = CLI_EXIT_OK;
		goto out;
	}
	/* PEM: the file is NUL-terminated by cvm_file_read. */
	p = strstr((const char *)buf, begin);
	e = p != NULL ? strstr(p, end_marker) : NULL;
	if (p == NULL || e == NULL) {
		cli_err(CMD_VERIFY,
		        "--root '%s' is neither a DER certificate (starting with byte 0x30) nor a PEM "
		        "'BEGIN CERTIFICATE' block",
		        path);
		goto out;
	}
	p += sizeof(begin) - 1;
	b64 = malloc((size_t)(e - p) + 1);
	if (b64 == NULL) {
		cli_err(CMD_VERIFY, "out of memory");
		goto out;
	}
	for (; p < e; p++) {
		if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
			b64[n++] = *p;
	}
	r = cvm_base64_decode(b64, n, (size_t)CVM_DCAP_CERT_MAX, out, out_len);
	if (r != CVM_OK || *out_len == 0 || (*out)[0] != 0x30) {
		free(*out);
		*out = NULL;
		*out_len = 0;
		cli_err(CMD_VERIFY,
		        "--root '%s': the PEM block does not hold a DER certificate (bad base64?)", path);
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	free(b64);
	free(buf);
	return rc;
}

static int load_collateral(struct verify_ctx *v)
{
	char what[256] = "";
	int r;

	r = cvm_dcap_collateral_load_dir(v->collateral_dir, &v->coll, what, sizeof(what));
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	if (r == CVM_E_SYSTEM)
		cli_err(CMD_VERIFY, "cannot load collateral from '%s': %s%s%s", v->collateral_dir, what,
		        what[0] != '\0' ? ": " : "", strerror(errno));
	else
		cli_err(CMD_VERIFY, "cannot load collateral from '%s': %s%s%s", v->collateral_dir, what,
		        what[0] != '\0' ? ": " : "", cvm_strerror(r));
	fprintf(stderr, "cvm quote verify: --collateral needs a folder with tcb_info.json, qe_identity.json, "
	                "tcb_info_issuer_chain.pem, qe_identity_issuer_chain.pem, pck_crl_issuer_chain.pem, "
	                "pck_crl.der and root_ca_crl.der\n");
	return CLI_EXIT_ERROR;
}

/* exit_for maps a verification result to the documented exit codes: a
 * broken run is an error (1), anything the evidence caused is a rejection. */
static int exit_for(int r)
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

/* build_reason is the first failure, then the names of any other failed
 * steps, so one sentence says everything that went wrong. */
static void build_reason(struct verify_ctx *v, int r)
{
	const struct cvm_report *rep = &v->rep;
	size_t len, others = 0;
	char clean[CVM_REPORT_DETAIL_MAX];

	v->reason[0] = '\0';
	if (r == CVM_OK)
		return;
	if (rep->failed == NULL) {
		(void)snprintf(v->reason, sizeof(v->reason), "%s", cvm_strerror(r));
		return;
	}
	out_sanitize(rep->failed->detail, clean, sizeof(clean));
	(void)snprintf(v->reason, sizeof(v->reason), "%s", clean);
	for (size_t i = 0; i < rep->count && i < CVM_REPORT_STEPS_MAX; i++) {
		const struct cvm_step *s = &rep->steps[i];
		char name[CVM_REPORT_NAME_MAX];

		if (s->ok || s == rep->failed)
			continue;
		out_sanitize(s->name, name, sizeof(name));
		len = strlen(v->reason);
		(void)snprintf(v->reason + len, sizeof(v->reason) - len, "%s%s",
		               others == 0 ? " (also failed: " : ", ", name);
		others++;
	}
	len = strlen(v->reason);
	if (others != 0 && len + 1 < sizeof(v->reason))
		(void)snprintf(v->reason + len, sizeof(v->reason) - len, ")");
}

/* summary writes "(TDX, TCB UpToDate, no advisories)" as far as it is known. */
static void summary(const struct verify_ctx *v, char *buf, size_t cap)
{
	const struct cvm_dcap_result *res = &v->res;
	size_t len;

	buf[0] = '\0';
	if (!quote_known(&res->quote))
		return;
	if (res->tcb_status == CVM_TCB_NONE) {
		(void)snprintf(buf, cap, " (%s)", tee_label(&res->quote));
		return;
	}
	(void)snprintf(buf, cap, " (%s, TCB %s, ", tee_label(&res->quote),
	               cvm_tcb_status_name(res->tcb_status));
	len = strlen(buf);
	if (res->advisory_count == 0) {
		(void)snprintf(buf + len, cap - len, "no advisories)");
		return;
	}
	(void)snprintf(buf + len, cap - len, "advisor%s ", res->advisory_count == 1 ? "y" : "ies");
	for (size_t i = 0; i < res->advisory_count && i < CVM_ADVISORIES_MAX; i++) {
		char id[CVM_ADVISORY_ID_MAX];

		memcpy(id, res->advisory_ids[i], sizeof(id));
		id[sizeof(id) - 1] = '\0';
		out_sanitize(id, id, sizeof(id));
		len = strlen(buf);
		(void)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", id);
	}
	len = strlen(buf);
	(void)snprintf(buf + len, cap - len, ")");
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
	if (r == CVM_OK)
		printf("verdict: accepted%s\n", sum);
	else
		printf("verdict: rejected: %s%s\n", v->reason, sum);
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
	bad |= out_jset_str(o, "verdict", r == CVM_OK ? "accepted" : "rejected");
	bad |= out_jset_str(o, "reason", r == CVM_OK ? NULL : v->reason);
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
	bad |= out_jset(o, "steps", out_json_steps(&v->rep));
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

static int quote_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"collateral", required_argument, NULL, OPT_COLLATERAL},
	    {"at", required_argument, NULL, OPT_AT},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"json", no_argument, NULL, CLI_OPT_JSON},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct verify_ctx *v;
	char perr[512];
	int c, r, rc = CLI_EXIT_ERROR;

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
		switch (c) {
		case OPT_COLLATERAL:
			v->collateral_dir = optarg;
			break;
		case OPT_AT:
			if (!parse_at(optarg, &v->at)) {
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
		case 'h':
			usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		case ':':
			cli_err(CMD_VERIFY, "option '%s' needs a value; see 'cvm help quote'",
			        argv[optind - 1]);
			rc = CLI_EXIT_USAGE;
			goto out;
		default:
			cli_err(CMD_VERIFY, "unknown option '%s'; see 'cvm help quote'", argv[optind - 1]);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(CMD_VERIFY, "%s; usage: cvm quote verify QUOTE --collateral DIR [options]",
		        argc - optind == 0 ? "no QUOTE file given" : "more than one QUOTE file given");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	v->quote_path = argv[optind];
	if (v->collateral_dir == NULL) {
		cli_err(CMD_VERIFY,
		        "--collateral DIR is required (a folder with tcb_info.json, qe_identity.json, "
		        "the issuer chains and CRLs)");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (!v->at_set)
		v->at = (int64_t)time(NULL);

	rc = read_quote(CMD_VERIFY, v->quote_path, &v->quote, &v->quote_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
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
		rc = load_root(v->root_path, &v->root, &v->root_len);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	rc = load_collateral(v);
	if (rc != CLI_EXIT_OK)
		goto out;

	cvm_report_init(&v->rep);
	r = cvm_verify_quote(v->quote, v->quote_len, v->coll, v->root, v->root_len, v->at, &v->policy,
	                     &v->rep, &v->res);
	rc = exit_for(r);
	build_reason(v, r);
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
	cvm_dcap_collateral_free(v->coll);
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

static int quote_show(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, CLI_OPT_JSON},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
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
	if (argc < 2) {
		cli_err("quote", "no subcommand given; expected 'verify' or 'show'");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "verify") == 0)
		return quote_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return quote_show(argc - 1, argv + 1);
	cli_err("quote", "unknown subcommand '%s'; expected 'verify' or 'show' (see 'cvm help quote')",
	        argv[1]);
	return CLI_EXIT_USAGE;
}
