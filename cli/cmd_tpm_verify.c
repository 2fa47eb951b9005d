/* cvm tpm verify: a TPM 2.0 quote checked against an attestation key, a
 * nonce and PCR values from a file or replayed from the firmware event log
 * and the IMA list (cvm_verify_ima_list). See docs/cli/cvm-tpm.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/file.h>
#include <cvmkit/report.h>
#include <cvmkit/tpm.h>
#include <cvmkit/verify.h>

#include "cli.h"
#include "output.h"
#include "tpm.h"

struct verify_ctx {
	const char *ak_path, *attest_path, *sig_path, *pcrs_path, *evl_path, *ima_path;
	bool no_pcr_check;
	uint8_t nonce[CVM_TPM_DATA_MAX];
	size_t nonce_len;
	uint8_t *ak_buf, *attest, *sig;
	size_t ak_len, attest_len, sig_len;
	struct cvm_tpm_ak *ak;
	struct cvm_tpm_quote q;
	struct cvm_tpm_pcrs pcrs;
	struct cvm_report rep;
	bool quote_ok;   /* signature and nonce verified */
	bool pcrs_known; /* pcrs holds the values compared */
	uint64_t ima_prefix, ima_total;
	bool ima_matched;
	char reason[1024];
};

/* load_bank reads one bank of a JSON PCR file: {"0": "hex", ...}. */
static int load_bank(const char *name, json_t *bank, struct cvm_tpm_pcrs *out, char *why, size_t why_len)
{
	enum cvm_digest_alg alg;
	char clean[40];
	void *it;

	out_sanitize(name, clean, sizeof(clean));
	if (cvm_digest_from_name(name, &alg) != CVM_OK || !json_is_object(bank)) {
		(void)snprintf(why, why_len, "'%s' is not a bank (sha1, sha256, ...) of PCR values", clean);
		return CVM_E_FORMAT;
	}
	for (it = json_object_iter(bank); it != NULL; it = json_object_iter_next(bank, it)) {
		const char *key = json_object_iter_key(it);
		const char *hex = json_string_value(json_object_iter_value(it));
		uint8_t d[CVM_TPM_DIGEST_MAX];
		char *end = NULL, ckey[24];
		unsigned long idx;
		size_t hlen;

		out_sanitize(key, ckey, sizeof(ckey));
		errno = 0;
		idx = strtoul(key, &end, 10);
		if (errno != 0 || end == key || *end != '\0' || key[0] < '0' || key[0] > '9' ||
		    idx >= CVM_TPM_PCR_COUNT) {
			(void)snprintf(why, why_len, "%s: '%s' is not a PCR index 0-23", clean, ckey);
			return CVM_E_FORMAT;
		}
		if (hex == NULL) {
			(void)snprintf(why, why_len, "%s:%lu: expected a hex string", clean, idx);
			return CVM_E_FORMAT;
		}
		if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
			hex += 2;
		hlen = strlen(hex);
		if (hlen != 2 * cvm_digest_len((uint16_t)alg) ||
		    cvm_hex_decode_exact(hex, hlen, d, hlen / 2) != CVM_OK ||
		    cvm_tpm_pcrs_set(out, (uint16_t)alg, (unsigned)idx, d, hlen / 2) != CVM_OK) {
			(void)snprintf(why, why_len, "%s:%lu: expected %zu hex digits", clean, idx,
			               2 * cvm_digest_len((uint16_t)alg));
			return CVM_E_FORMAT;
		}
	}
	return CVM_OK;
}

/* load_pcrs_json reads {"sha256": {"0": "hex"}} or {"pcrs": {...}}. */
static int load_pcrs_json(const uint8_t *buf, size_t len, struct cvm_tpm_pcrs *out, char *why, size_t why_len)
{
	json_error_t jerr;
	json_t *root, *banks;
	void *it;
	int r = CVM_E_FORMAT;

	cvm_tpm_pcrs_init(out);
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		char text[JSON_ERROR_TEXT_LENGTH];

		out_sanitize(jerr.text, text, sizeof(text));
		(void)snprintf(why, why_len, "not JSON (line %d: %s)", jerr.line, text);
		return CVM_E_FORMAT;
	}
	banks = json_object_get(root, "pcrs");
	if (banks == NULL)
		banks = root;
	if (!json_is_object(banks)) {
		(void)snprintf(why, why_len, "expected an object of banks");
		goto out;
	}
	for (it = json_object_iter(banks); it != NULL; it = json_object_iter_next(banks, it)) {
		r = load_bank(json_object_iter_key(it), json_object_iter_value(it), out, why, why_len);
		if (r != CVM_OK)
			goto out;
	}
	r = CVM_OK;
out:
	json_decref(root);
	return r;
}

/* load_pcrs reads --pcrs: JSON, tpm2-tools serialized, or tpm2-tools values
 * over the quote's own selection. */
static int load_pcrs(struct verify_ctx *v)
{
	uint8_t *buf = NULL;
	size_t len = 0, i = 0;
	struct cvm_tpm_pcr_sel sel;
	char why[256] = "";
	const char *fmt;
	int r, rc;

	rc = cli_read_file(CMD_VERIFY, "PCR file", v->pcrs_path, JSON_FILE_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r'))
		i++;
	if (i < len && buf[i] == '{') {
		fmt = "JSON";
		r = load_pcrs_json(buf, len, &v->pcrs, why, sizeof(why));
	} else {
		fmt = "tpm2-tools serialized";
		r = cvm_tpm_pcrs_parse_serialized(buf, len, &sel, &v->pcrs);
		if (r != CVM_OK) {
			fmt = "tpm2-tools values";
			r = cvm_tpm_pcrs_parse_values(buf, len, &v->q.attest.pcr_sel, &v->pcrs);
		}
		if (r != CVM_OK)
			(void)snprintf(
			    why, sizeof(why),
			    "neither JSON, nor tpm2-tools' serialized format, nor the %zu bytes of values "
			    "the quoted selection needs",
			    len);
	}
	free(buf);
	if (r != CVM_OK) {
		cli_err(CMD_VERIFY, "--pcrs '%s': %s", v->pcrs_path, why);
		return CLI_EXIT_ERROR;
	}
	cvm_report_add(&v->rep, "pcr_source", true, "PCR values from '%s' (%s)", v->pcrs_path, fmt);
	return CLI_EXIT_OK;
}

/* load_eventlog replays the event log for every quoted PCR it can give. */
static int load_eventlog(struct verify_ctx *v)
{
	struct cvm_evl_replay *rp;
	const struct cvm_tpm_pcr_sel *sel = &v->q.attest.pcr_sel;
	int fd, r;

	rp = malloc(sizeof(*rp));
	if (rp == NULL) {
		cli_err(CMD_VERIFY, "out of memory");
		return CLI_EXIT_ERROR;
	}
	fd = open(v->evl_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_err(CMD_VERIFY, "cannot read event log '%s': %s", v->evl_path, strerror(errno));
		free(rp);
		return CLI_EXIT_ERROR;
	}
	r = cvm_evl_replay_fd(fd, CVM_EVL_AUTO, rp);
	(void)close(fd);
	if (r != CVM_OK) {
		cvm_report_add(&v->rep, "pcr_source", false, "the event log '%s' does not replay: %s",
		               v->evl_path, cvm_strerror(r));
		free(rp);
		return CLI_EXIT_REJECTED;
	}
	for (size_t i = 0; i < sel->count; i++) {
		for (unsigned pcr = 0; pcr < CVM_TPM_PCR_COUNT; pcr++) {
			const uint8_t *val;
			size_t vlen;

			if ((sel->banks[i].mask & (1u << pcr)) == 0)
				continue;
			if (cvm_evl_replay_value(rp, sel->banks[i].alg, pcr, &val, &vlen) != CVM_OK)
				continue; /* the PCR digest step names what is missing */
			if (cvm_tpm_pcrs_set(&v->pcrs, sel->banks[i].alg, pcr, val, vlen) != CVM_OK)
				continue;
		}
	}
	cvm_report_add(&v->rep, "pcr_source", true, "event log '%s' replayed: %s, %llu events", v->evl_path,
	               cvm_evl_format_name(rp->format), (unsigned long long)rp->event_count);
	free(rp);
	return CLI_EXIT_OK;
}

/* load_ima appraises the IMA list against the quote (the library's one rule,
 * cvm_verify_ima_list), over the PCR values known so far. */
static int load_ima(struct verify_ctx *v)
{
	struct cvm_ima_coverage cov;
	int r;

	r = cvm_verify_ima_list(&v->q, &v->pcrs, NULL, 0, v->ima_path, &v->rep, &v->pcrs, &cov);
	v->ima_matched = cov.matched;
	v->ima_prefix = cov.quoted_entries;
	v->ima_total = cov.total_entries;
	if (r == CVM_E_SYSTEM) {
		cli_err(CMD_VERIFY, "cannot read IMA log '%s': %s", v->ima_path, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	if (r == CVM_E_NOMEM || r == CVM_E_INVAL)
		return CLI_EXIT_ERROR;
	return r == CVM_OK ? CLI_EXIT_OK : CLI_EXIT_REJECTED;
}

static json_t *json_attest(const struct cvm_tpm_quote *q)
{
	const struct cvm_tpm_attest *a = &q->attest;
	json_t *o = json_object();
	char sel[SEL_TEXT];
	int bad = 0;

	if (o == NULL)
		return NULL;
	cvm_tpm_pcr_sel_format(&a->pcr_sel, sel, sizeof(sel));
	bad |= out_jset_int(o, "magic", a->magic);
	bad |= out_jset_int(o, "type", a->type);
	bad |= out_jset_hex(o, "qualified_signer", a->signer, a->signer_len);
	bad |= out_jset_hex(o, "extra_data", a->extra, a->extra_len);
	bad |= out_jset_int(o, "clock", (long long)a->clock);
	bad |= out_jset_int(o, "reset_count", a->reset_count);
	bad |= out_jset_int(o, "restart_count", a->restart_count);
	bad |= out_jset(o, "safe", json_boolean(a->safe));
	bad |= out_jset_int(o, "firmware_version", (long long)a->firmware_version);
	bad |= out_jset_str(o, "pcr_selection", sel);
	bad |= out_jset_hex(o, "pcr_digest", a->pcr_digest, a->pcr_digest_len);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int verify_print(struct verify_ctx *v, int r)
{
	char sel[SEL_TEXT], desc[32], sum[SEL_TEXT + 128];
	const struct cvm_tpm_public *pub = v->ak != NULL ? cvm_tpm_ak_public(v->ak) : NULL;
	const char *note =
	    v->no_pcr_check && r == CVM_OK ? "signature and nonce only: PCR values NOT checked" : NULL;
	int bad = 0;

	cvm_tpm_pcr_sel_format(&v->q.attest.pcr_sel, sel, sizeof(sel));
	if (cli_opts.json) {
		json_t *o = json_object(), *ak = json_object(), *ima = NULL;

		if (o == NULL || ak == NULL) {
			json_decref(o);
			json_decref(ak);
			return -1;
		}
		cvm_tpm_ak_describe(v->ak, desc, sizeof(desc));
		bad |= out_verdict_json(o, r == CVM_OK, v->reason, NULL);
		bad |= out_jset(o, "pcrs_checked", json_boolean(!v->no_pcr_check && r == CVM_OK));
		bad |= out_jset_str(o, "note", note);
		bad |= out_jset_str(ak, "key", desc);
		if (pub != NULL) {
			bad |= out_jset_int(ak, "attributes", pub->attributes);
			bad |= out_jset_hex(ak, "name", pub->name, pub->name_len);
		}
		bad |= out_jset(o, "ak", ak);
		bad |= out_jset(o, "attest", v->q.attest.magic != 0 ? json_attest(&v->q) : json_null());
		bad |= out_jset_str(o, "scheme", v->q.sig.alg != 0 ? tpm_scheme_name(v->q.sig.alg) : NULL);
		bad |= out_jset_str(o, "hash", v->q.sig.alg != 0 ? tpm_bank_name(v->q.sig.hash) : NULL);
		if (v->ima_path != NULL) {
			ima = json_object();
			if (ima != NULL) {
				bad |= out_jset(ima, "matched", json_boolean(v->ima_matched));
				bad |= out_jset_int(ima, "quoted_entries", (long long)v->ima_prefix);
				bad |= out_jset_int(ima, "total_entries", (long long)v->ima_total);
			}
			bad |= out_jset(o, "ima", ima);
		}
		bad |= out_jset(o, "pcrs",
		                v->pcrs_known ? tpm_json_pcrs(&v->pcrs, &v->q.attest.pcr_sel) : json_null());
		bad |= out_jset(o, "steps", out_json_steps(&v->rep));
		if (bad == 0)
			bad = out_json_print(o);
		json_decref(o);
		return bad;
	}
	if (!cli_opts.quiet)
		out_steps(stdout, &v->rep);
	if (r == CVM_OK)
		(void)snprintf(sum, sizeof(sum), "TPM quote of %s, resetCount %u, restartCount %u%s%s", sel,
		               v->q.attest.reset_count, v->q.attest.restart_count, note != NULL ? "; " : "",
		               note != NULL ? note : "");
	out_verdict_text(r == CVM_OK, v->reason, r == CVM_OK ? sum : NULL);
	return 0;
}

static int verify_run(struct verify_ctx *v, int *result)
{
	int r, rc;

	*result = CVM_E_INTERNAL;
	rc = cli_read_file(CMD_VERIFY, "AK file", v->ak_path, CVM_TPM_AK_FILE_MAX, &v->ak_buf, &v->ak_len);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_tpm_ak_parse(v->ak_buf, v->ak_len, &v->ak);
	if (r != CVM_OK) {
		cli_err(CMD_VERIFY,
		        "--ak '%s' is not an attestation key cvmkit can use (%s): expected a TPM2B_PUBLIC or "
		        "TPMT_PUBLIC of an RSA 2048-4096 or ECC P-256/P-384 key, or a PEM/DER public key",
		        v->ak_path, cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	rc = cli_read_file(CMD_VERIFY, "quote message", v->attest_path, CVM_TPM_ATTEST_MAX, &v->attest,
	                   &v->attest_len);
	if (rc == CLI_EXIT_OK)
		rc = cli_read_file(CMD_VERIFY, "signature", v->sig_path, CVM_TPM_SIG_MAX, &v->sig,
		                   &v->sig_len);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_tpm_quote_authenticate(v->ak, v->attest, v->attest_len, v->sig, v->sig_len, v->nonce,
	                               v->nonce_len, &v->rep, &v->q);
	*result = r;
	if (r != CVM_OK || v->no_pcr_check)
		return CLI_EXIT_OK;
	v->quote_ok = true;
	cvm_tpm_pcrs_init(&v->pcrs);
	if (v->pcrs_path != NULL)
		rc = load_pcrs(v);
	else
		rc = load_eventlog(v);
	if (rc == CLI_EXIT_OK && v->ima_path != NULL)
		rc = load_ima(v);
	if (rc == CLI_EXIT_REJECTED) {
		*result = CVM_E_MISMATCH;
		return CLI_EXIT_OK;
	}
	if (rc != CLI_EXIT_OK)
		return rc;
	v->pcrs_known = true;
	*result = cvm_tpm_quote_check_pcrs(&v->q, &v->pcrs, &v->rep);
	return CLI_EXIT_OK;
}

int tpm_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"ak", required_argument, NULL, OPT_AK},
	    {"attest", required_argument, NULL, OPT_ATTEST},
	    {"sig", required_argument, NULL, OPT_SIG},
	    {"nonce", required_argument, NULL, OPT_NONCE},
	    {"pcrs", required_argument, NULL, OPT_PCRS},
	    {"eventlog", required_argument, NULL, OPT_EVENTLOG},
	    {"ima", required_argument, NULL, OPT_IMA},
	    {"no-pcr-check", no_argument, NULL, OPT_NO_PCR_CHECK},
	    CLI_COMMON_LONGOPTS,
	};
	struct verify_ctx *v;
	const char *nonce_hex = NULL;
	int c, r = CVM_E_INTERNAL, rc = CLI_EXIT_USAGE;

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
		case OPT_AK:
			v->ak_path = optarg;
			break;
		case OPT_ATTEST:
			v->attest_path = optarg;
			break;
		case OPT_SIG:
			v->sig_path = optarg;
			break;
		case OPT_NONCE:
			nonce_hex = optarg;
			break;
		case OPT_PCRS:
			v->pcrs_path = optarg;
			break;
		case OPT_EVENTLOG:
			v->evl_path = optarg;
			break;
		case OPT_IMA:
			v->ima_path = optarg;
			break;
		case OPT_NO_PCR_CHECK:
			v->no_pcr_check = true;
			break;
		case 'h':
			tpm_usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			cli_bad_option(CMD_VERIFY, c, argv, "cvm help tpm");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	cli_apply_verbosity();
	if (optind != argc) {
		cli_err(CMD_VERIFY, "unexpected argument '%s'; see 'cvm help tpm'", argv[optind]);
		goto out;
	}
	if (v->ak_path == NULL || v->attest_path == NULL || v->sig_path == NULL || nonce_hex == NULL) {
		cli_err(CMD_VERIFY, "--ak, --attest, --sig and --nonce are required");
		goto out;
	}
	if ((v->pcrs_path != NULL) + (v->evl_path != NULL) + v->no_pcr_check != 1 ||
	    (v->no_pcr_check && v->ima_path != NULL)) {
		cli_err(CMD_VERIFY,
		        "give exactly one of --pcrs FILE, --eventlog FILE (either with --ima FILE if "
		        "you like) and --no-pcr-check");
		goto out;
	}
	rc = tpm_parse_nonce(CMD_VERIFY, nonce_hex, v->nonce, &v->nonce_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	cvm_report_init(&v->rep);
	rc = verify_run(v, &r);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = cli_exit_for(r);
	out_verdict_reason(&v->rep, r, v->reason, sizeof(v->reason));
	if (verify_print(v, r) != 0) {
		cli_err(CMD_VERIFY, "cannot write the output");
		rc = CLI_EXIT_ERROR;
	}
	if (rc == CLI_EXIT_ERROR)
		cli_err(CMD_VERIFY, "verification could not run to the end: %s", v->reason);
out:
	cvm_tpm_ak_free(v->ak);
	free(v->ak_buf);
	free(v->attest);
	free(v->sig);
	free(v);
	return rc;
}
