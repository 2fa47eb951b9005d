/* cvm tpm: TPM 2.0 quotes and PCRs.
 *
 *   cvm tpm quote   [--tcti T] --pcrs SEL [--nonce HEX] --out DIR [--ak-handle H]
 *                   [--ak-type TYPE] [--parent ek|srk] [--json]
 *   cvm tpm verify  --ak FILE --attest FILE --sig FILE --nonce HEX
 *                   (--pcrs FILE | --eventlog FILE | --no-pcr-check) [--ima FILE] [--json]
 *   cvm tpm pcrread [--tcti T] [--pcrs SEL] [--out FILE] [--json]
 *
 * See docs/cli/cvm-tpm.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/report.h>
#include <cvmkit/random.h>
#include <cvmkit/tpm.h>

#include "cli.h"
#include "output.h"
#include "tpm.h"

void tpm_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cvm tpm quote [--tcti TCTI] --pcrs SEL [--nonce HEX] --out DIR [--ak-handle H]\n"
	    "                     [--ak-type TYPE] [--parent ek|srk] [--json]\n"
	    "       cvm tpm verify --ak FILE --attest FILE --sig FILE --nonce HEX\n"
	    "                      (--pcrs FILE | --eventlog FILE | --no-pcr-check) [--ima FILE] [--json]\n"
	    "       cvm tpm pcrread [--tcti TCTI] [--pcrs SEL] [--out FILE] [--json]\n"
	    "\n"
	    "quote    makes (or loads) a persistent attestation key and has the TPM quote the PCRs\n"
	    "         SEL with the nonce; writes quote.msg, quote.sig, quote.pcrs, pcrs.json, ak.pub,\n"
	    "         ak.pem and nonce.hex into DIR (tpm2-tools formats).\n"
	    "  --tcti TCTI        device:/dev/tpmrm0, swtpm:host=127.0.0.1,port=2321, ... (default:\n"
	    "                     $TPM2TOOLS_TCTI, else tss2-tctildr's default)\n"
	    "  --pcrs SEL         PCR selection, e.g. sha256:0,1,10 or sha1:0-7+sha256:all\n"
	    "  --nonce HEX        qualifying data, 1 to 64 bytes (default: 32 random bytes)\n"
	    "  --ak-handle H      persistent handle of the AK (default 0x81000100)\n"
	    "  --ak-type TYPE     ecc-p256 (default), ecc-p384, rsa-rsassa, rsa-rsapss\n"
	    "  --parent P         ek (default) or srk: the primary key the AK is created under\n"
	    "verify   checks a quote: AK attributes, signature, nonce, and the PCR digest against\n"
	    "         PCR values from a file or replayed from logs.\n"
	    "  --ak FILE          the AK: TPM2B_PUBLIC, TPMT_PUBLIC, or PEM/DER public key\n"
	    "  --attest FILE      the TPMS_ATTEST (tpm2_quote -m)\n"
	    "  --sig FILE         the TPMT_SIGNATURE (tpm2_quote -s)\n"
	    "  --nonce HEX        the nonce the quote must carry\n"
	    "  --pcrs FILE        PCR values: JSON, or tpm2-tools' serialized or values format\n"
	    "  --eventlog FILE    replay a TCG event log (binary_bios_measurements) for the PCRs\n"
	    "  --ima FILE         replay an IMA log for the PCRs it extends, accepting the\n"
	    "                     shortest prefix that makes the quote match\n"
	    "  --no-pcr-check     check signature and nonce only (says so in the verdict)\n"
	    "pcrread  reads PCRs (default sha256:all); --out writes tpm2-tools' serialized format.\n"
	    "\n"
	    "Common options: -v (library messages), -q (verdict only), --json (one JSON object).\n"
	    "Exit codes: 0 accepted/done, 1 error, 2 usage, 3 rejected.\n");
}

/* ---- shared helpers ---------------------------------------------------- */

/* quiet_tss keeps tpm2-tss from printing its own messages unless asked to
 * (-vv) or unless the user set TSS2_LOG. */
static void quiet_tss(void)
{
	if (getenv("TSS2_LOG") == NULL && cli_opts.verbose < 2)
		(void)setenv("TSS2_LOG", "all+none", 0);
}

static const char *default_tcti(const char *tcti)
{
	const char *env;

	if (tcti != NULL)
		return tcti;
	env = getenv("TPM2TOOLS_TCTI");
	if (env != NULL && env[0] != '\0')
		return env;
	return NULL;
}

int tpm_parse_nonce(const char *cmd, const char *hex, uint8_t *out, size_t *out_len)
{
	size_t n = strlen(hex);

	if (n >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
		hex += 2;
		n -= 2;
	}
	if (n == 0 || n % 2 != 0 || n / 2 > CVM_TPM_DATA_MAX - 2 ||
	    cvm_hex_decode(hex, n, out, CVM_TPM_DATA_MAX, out_len) != CVM_OK) {
		cli_err(cmd, "--nonce: expected 2 to 128 hex digits (1 to 64 bytes), got '%.80s'", hex);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static int parse_sel(const char *cmd, const char *s, struct cvm_tpm_pcr_sel *sel)
{
	int r = cvm_tpm_pcr_sel_parse(s, sel);

	if (r == CVM_OK)
		return CLI_EXIT_OK;
	cli_err(
	    cmd,
	    "--pcrs '%.80s': %s; expected BANK:LIST[+BANK:LIST], e.g. sha256:0,1,10 or sha1:0-7+sha256:all "
	    "(banks sha1, sha256, sha384, sha512, sm3_256; PCRs 0-23)",
	    s, r == CVM_E_UNSUPPORTED ? "unknown bank" : "malformed selection");
	return CLI_EXIT_USAGE;
}

const char *tpm_scheme_name(uint16_t alg)
{
	switch (alg) {
	case CVM_TPMSIG_RSASSA:
		return "rsassa";
	case CVM_TPMSIG_RSAPSS:
		return "rsapss";
	case CVM_TPMSIG_ECDSA:
		return "ecdsa";
	default:
		return "null";
	}
}

const char *tpm_bank_name(uint16_t alg)
{
	const char *n = cvm_digest_name(alg);

	return n != NULL ? n : "unknown";
}

/* json_pcrs returns {"sha256": {"0": "hex", ...}, ...} for the values `sel`
 * selects (all values held when `sel` is NULL). */
json_t *tpm_json_pcrs(const struct cvm_tpm_pcrs *p, const struct cvm_tpm_pcr_sel *sel)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	for (size_t b = 0; b < p->count; b++) {
		const struct cvm_tpm_pcr_bank *bank = &p->banks[b];
		uint32_t mask = bank->valid;
		json_t *jb;

		if (sel != NULL) {
			mask = 0;
			for (size_t i = 0; i < sel->count; i++) {
				if (sel->banks[i].alg == bank->alg)
					mask |= sel->banks[i].mask;
			}
			mask &= bank->valid;
		}
		if (mask == 0)
			continue;
		jb = json_object();
		for (unsigned i = 0; jb != NULL && i < CVM_TPM_PCR_COUNT; i++) {
			char key[4];

			if ((mask & (1u << i)) == 0)
				continue;
			(void)snprintf(key, sizeof(key), "%u", i);
			bad |= out_jset_hex(jb, key, bank->values[i], cvm_digest_len(bank->alg));
		}
		bad |= out_jset(o, tpm_bank_name(bank->alg), jb);
	}
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void print_pcrs_text(const struct cvm_tpm_pcrs *p)
{
	for (size_t b = 0; b < p->count; b++) {
		const struct cvm_tpm_pcr_bank *bank = &p->banks[b];
		char hex[2 * CVM_TPM_DIGEST_MAX + 1];

		if (bank->valid == 0)
			continue;
		printf("%s:\n", tpm_bank_name(bank->alg));
		for (unsigned i = 0; i < CVM_TPM_PCR_COUNT; i++) {
			if ((bank->valid & (1u << i)) == 0)
				continue;
			cvm_hex_encode(bank->values[i], cvm_digest_len(bank->alg), hex);
			printf("  %2u: %s\n", i, hex);
		}
	}
}

static int open_tpm(const char *cmd, const char *tcti, struct cvm_tpm **t)
{
	char err[512];
	int r;

	r = cvm_tpm_open(default_tcti(tcti), t, err, sizeof(err));
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	cli_err(cmd, "%s", r == CVM_E_TPM ? err : cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

static int tpm_error(const char *cmd, const char *what, struct cvm_tpm *t, int r)
{
	const char *why = cvm_tpm_err(t);

	cli_err(cmd, "%s: %s", what, why[0] != '\0' ? why : cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

static int write_out(const char *cmd, const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4096];
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		cli_err(cmd, "--out '%.80s...': path too long", dir);
		return CLI_EXIT_ERROR;
	}
	r = cvm_file_write(path, buf, len, 0644);
	if (r != CVM_OK) {
		cli_err(cmd, "cannot write '%s': %s", path,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* ---- pcrread ----------------------------------------------------------- */

static int tpm_pcrread(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"tcti", required_argument, NULL, OPT_TCTI},
	    {"pcrs", required_argument, NULL, OPT_PCRS},
	    {"out", required_argument, NULL, OPT_OUT},
	    CLI_COMMON_LONGOPTS,
	};
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_pcrs *pcrs = NULL;
	struct cvm_tpm *t = NULL;
	const char *tcti = NULL, *sel_text = "sha256:all", *out = NULL;
	uint8_t *ser = NULL;
	size_t ser_len = 0;
	uint32_t counter = 0;
	int c, r, rc = CLI_EXIT_ERROR;

	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_TCTI:
			tcti = optarg;
			break;
		case OPT_PCRS:
			sel_text = optarg;
			break;
		case OPT_OUT:
			out = optarg;
			break;
		case 'h':
			tpm_usage(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD_PCRREAD, c, argv, "cvm help tpm");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	if (optind != argc) {
		cli_err(CMD_PCRREAD, "unexpected argument '%s'; see 'cvm help tpm'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	rc = parse_sel(CMD_PCRREAD, sel_text, &sel);
	if (rc != CLI_EXIT_OK)
		return rc;
	quiet_tss();
	pcrs = malloc(sizeof(*pcrs));
	if (pcrs == NULL) {
		cli_err(CMD_PCRREAD, "out of memory");
		return CLI_EXIT_ERROR;
	}
	rc = open_tpm(CMD_PCRREAD, tcti, &t);
	if (rc != CLI_EXIT_OK)
		goto out;
	r = cvm_tpm_pcr_read(t, &sel, pcrs, &counter);
	if (r != CVM_OK) {
		rc = tpm_error(CMD_PCRREAD, "cannot read the PCRs", t, r);
		goto out;
	}
	if (out != NULL) {
		r = cvm_tpm_pcrs_write_serialized(&sel, pcrs, &ser, &ser_len);
		if (r != CVM_OK) {
			cli_err(CMD_PCRREAD, "cannot encode the PCR file: %s", cvm_strerror(r));
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		r = cvm_file_write(out, ser, ser_len, 0644);
		if (r != CVM_OK) {
			cli_err(CMD_PCRREAD, "cannot write '%s': %s", out,
			        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
			rc = CLI_EXIT_ERROR;
			goto out;
		}
	}
	if (cli_opts.json) {
		json_t *o = json_object();
		int bad = o == NULL;

		if (o != NULL) {
			bad |= out_jset_int(o, "update_counter", counter);
			bad |= out_jset(o, "pcrs", tpm_json_pcrs(pcrs, NULL));
		}
		if (bad == 0)
			bad = out_json_print(o);
		json_decref(o);
		if (bad != 0) {
			cli_err(CMD_PCRREAD, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
			goto out;
		}
	} else if (!cli_opts.quiet) {
		print_pcrs_text(pcrs);
	}
	rc = CLI_EXIT_OK;
out:
	free(ser);
	free(pcrs);
	cvm_tpm_close(t);
	return rc;
}

/* ---- quote ------------------------------------------------------------- */

struct quote_ctx {
	const char *tcti, *sel_text, *out_dir;
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_ak_opts ak_opts;
	uint8_t nonce[CVM_TPM_DATA_MAX];
	size_t nonce_len;
	struct cvm_tpm *t;
	uint8_t *ak_pub, *attest, *sig, *ser;
	size_t ak_pub_len, attest_len, sig_len, ser_len;
	char *ak_pem;
	struct cvm_tpm_ak *ak;
	struct cvm_tpm_pcrs pcrs;
	struct cvm_tpm_quote q;
	bool created;
};

static bool parse_ak_type(const char *s, enum cvm_tpm_ak_type *out)
{
	static const struct {
		const char *name;
		enum cvm_tpm_ak_type type;
	} types[] = {
	    {"ecc-p256", CVM_TPM_AK_ECC_P256}, {"ecc", CVM_TPM_AK_ECC_P256},
	    {"ecc-p384", CVM_TPM_AK_ECC_P384}, {"rsa-rsassa", CVM_TPM_AK_RSA_RSASSA},
	    {"rsa", CVM_TPM_AK_RSA_RSASSA},    {"rsa-rsapss", CVM_TPM_AK_RSA_RSAPSS},
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(s, types[i].name) == 0) {
			*out = types[i].type;
			return true;
		}
	}
	return false;
}

static bool parse_handle(const char *s, uint32_t *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || v < 0x81000000ul || v > 0x817ffffful)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* quote_once quotes, reads the PCRs back and checks the quote with them;
 * *raced is set when the PCRs changed in between. */
static int quote_once(struct quote_ctx *x, bool *raced)
{
	struct cvm_report rep;
	int r;

	*raced = false;
	free(x->attest);
	free(x->sig);
	x->attest = x->sig = NULL;
	r = cvm_tpm_quote_create(x->t, x->ak_opts.handle, &x->sel, x->nonce, x->nonce_len, &x->attest,
	                         &x->attest_len, &x->sig, &x->sig_len);
	if (r != CVM_OK)
		return tpm_error(CMD_QUOTE, "the TPM did not quote", x->t, r);
	r = cvm_tpm_pcr_read(x->t, &x->sel, &x->pcrs, NULL);
	if (r != CVM_OK)
		return tpm_error(CMD_QUOTE, "cannot read the PCRs back", x->t, r);
	cvm_report_init(&rep);
	r = cvm_tpm_quote_authenticate_pcrs(x->ak, x->attest, x->attest_len, x->sig, x->sig_len, x->nonce,
	                                    x->nonce_len, &x->pcrs, &rep, &x->q);
	if (r == CVM_E_MISMATCH && rep.failed != NULL && strcmp(rep.failed->name, "pcr_digest") == 0) {
		*raced = true;
		return CLI_EXIT_OK;
	}
	if (r != CVM_OK) {
		cli_err(CMD_QUOTE, "the TPM's quote does not verify: %s",
		        rep.failed != NULL ? rep.failed->detail : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static int quote_write(struct quote_ctx *x)
{
	char hex[2 * CVM_TPM_DATA_MAX + 2];
	json_t *pj = NULL;
	char *pj_text = NULL;
	int rc, r;

	if (mkdir(x->out_dir, 0755) != 0 && errno != EEXIST) {
		cli_err(CMD_QUOTE, "cannot create --out folder '%s': %s", x->out_dir, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	r = cvm_tpm_pcrs_write_serialized(&x->sel, &x->pcrs, &x->ser, &x->ser_len);
	if (r != CVM_OK) {
		cli_err(CMD_QUOTE, "cannot encode the PCR file: %s", cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	pj = tpm_json_pcrs(&x->pcrs, &x->sel);
	pj_text = pj != NULL ? json_dumps(pj, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
	json_decref(pj);
	if (pj_text == NULL) {
		cli_err(CMD_QUOTE, "out of memory");
		return CLI_EXIT_ERROR;
	}
	cvm_hex_encode(x->nonce, x->nonce_len, hex);
	hex[2 * x->nonce_len] = '\n';
	rc = write_out(CMD_QUOTE, x->out_dir, "quote.msg", x->attest, x->attest_len);
	if (rc == CLI_EXIT_OK)
		rc = write_out(CMD_QUOTE, x->out_dir, "quote.sig", x->sig, x->sig_len);
	if (rc == CLI_EXIT_OK)
		rc = write_out(CMD_QUOTE, x->out_dir, "quote.pcrs", x->ser, x->ser_len);
	if (rc == CLI_EXIT_OK)
		rc = write_out(CMD_QUOTE, x->out_dir, "pcrs.json", pj_text, strlen(pj_text));
	if (rc == CLI_EXIT_OK)
		rc = write_out(CMD_QUOTE, x->out_dir, "ak.pub", x->ak_pub, x->ak_pub_len);
	if (rc == CLI_EXIT_OK)
		rc = write_out(CMD_QUOTE, x->out_dir, "ak.pem", x->ak_pem, strlen(x->ak_pem));
	if (rc == CLI_EXIT_OK)
		rc = write_out(CMD_QUOTE, x->out_dir, "nonce.hex", hex, 2 * x->nonce_len + 1);
	free(pj_text);
	return rc;
}

static int quote_print(const struct quote_ctx *x)
{
	const struct cvm_tpm_public *pub = cvm_tpm_ak_public(x->ak);
	const struct cvm_tpm_attest *a = &x->q.attest;
	char sel[SEL_TEXT], desc[32], hex[2 * CVM_TPM_DIGEST_MAX + 1], nonce[2 * CVM_TPM_DATA_MAX + 1];
	int bad = 0;

	cvm_tpm_pcr_sel_format(&a->pcr_sel, sel, sizeof(sel));
	cvm_tpm_ak_describe(x->ak, desc, sizeof(desc));
	cvm_hex_encode(a->pcr_digest, a->pcr_digest_len, hex);
	cvm_hex_encode(x->nonce, x->nonce_len, nonce);
	if (cli_opts.json) {
		json_t *o = json_object();

		if (o == NULL)
			return -1;
		bad |= out_jset_str(o, "out", x->out_dir);
		bad |= out_jset_int(o, "ak_handle", x->ak_opts.handle);
		bad |= out_jset(o, "ak_created", json_boolean(x->created));
		bad |= out_jset_str(o, "ak_type", desc);
		bad |= out_jset_hex(o, "ak_name", pub != NULL ? pub->name : NULL,
		                    pub != NULL ? pub->name_len : 0);
		bad |= out_jset_str(o, "scheme", tpm_scheme_name(x->q.sig.alg));
		bad |= out_jset_str(o, "hash", tpm_bank_name(x->q.sig.hash));
		bad |= out_jset_str(o, "pcr_selection", sel);
		bad |= out_jset_hex(o, "pcr_digest", a->pcr_digest, a->pcr_digest_len);
		bad |= out_jset_hex(o, "nonce", x->nonce, x->nonce_len);
		bad |= out_jset_int(o, "reset_count", a->reset_count);
		bad |= out_jset_int(o, "restart_count", a->restart_count);
		bad |= out_jset_int(o, "clock", (long long)a->clock);
		bad |= out_jset(o, "pcrs", tpm_json_pcrs(&x->pcrs, &x->sel));
		if (bad == 0)
			bad = out_json_print(o);
		json_decref(o);
		return bad;
	}
	printf("quote of %s by AK 0x%08x (%s, %s/%s%s), written to %s\n", sel, x->ak_opts.handle, desc,
	       tpm_scheme_name(x->q.sig.alg), tpm_bank_name(x->q.sig.hash), x->created ? ", created now" : "",
	       x->out_dir);
	if (cli_opts.quiet)
		return 0;
	printf("  nonce:         %s\n", nonce);
	printf("  pcr digest:    %s\n", hex);
	printf("  reset count:   %u, restart count %u, clock %llu ms\n", a->reset_count, a->restart_count,
	       (unsigned long long)a->clock);
	if (pub != NULL && pub->name_len != 0) {
		char name[2 * CVM_TPM_NAME_MAX + 1];

		cvm_hex_encode(pub->name, pub->name_len, name);
		printf("  ak name:       %s\n", name);
	}
	if (cli_opts.verbose > 0)
		print_pcrs_text(&x->pcrs);
	return 0;
}

static int tpm_quote(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"tcti", required_argument, NULL, OPT_TCTI},
	    {"pcrs", required_argument, NULL, OPT_PCRS},
	    {"nonce", required_argument, NULL, OPT_NONCE},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"ak-handle", required_argument, NULL, OPT_AK_HANDLE},
	    {"ak-type", required_argument, NULL, OPT_AK_TYPE},
	    {"parent", required_argument, NULL, OPT_PARENT},
	    CLI_COMMON_LONGOPTS,
	};
	struct quote_ctx *x;
	const char *nonce_hex = NULL;
	bool raced = false;
	int c, r, rc = CLI_EXIT_USAGE;

	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		cli_err(CMD_QUOTE, "out of memory");
		return CLI_EXIT_ERROR;
	}
	x->ak_opts.handle = CVM_TPM_AK_HANDLE_DEFAULT;
	x->ak_opts.type = CVM_TPM_AK_ECC_P256;
	x->ak_opts.parent = CVM_TPM_PARENT_EK;
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_TCTI:
			x->tcti = optarg;
			break;
		case OPT_PCRS:
			x->sel_text = optarg;
			break;
		case OPT_NONCE:
			nonce_hex = optarg;
			break;
		case OPT_OUT:
			x->out_dir = optarg;
			break;
		case OPT_AK_HANDLE:
			if (!parse_handle(optarg, &x->ak_opts.handle)) {
				cli_err(
				    CMD_QUOTE,
				    "--ak-handle '%.40s': expected a persistent handle 0x81000000-0x817fffff",
				    optarg);
				goto out;
			}
			break;
		case OPT_AK_TYPE:
			if (!parse_ak_type(optarg, &x->ak_opts.type)) {
				cli_err(CMD_QUOTE,
				        "--ak-type '%.40s': expected ecc-p256, ecc-p384, rsa-rsassa or "
				        "rsa-rsapss",
				        optarg);
				goto out;
			}
			x->ak_opts.type_set = true;
			break;
		case OPT_PARENT:
			if (strcmp(optarg, "srk") == 0) {
				x->ak_opts.parent = CVM_TPM_PARENT_SRK;
			} else if (strcmp(optarg, "ek") == 0) {
				x->ak_opts.parent = CVM_TPM_PARENT_EK;
			} else {
				cli_err(CMD_QUOTE, "--parent '%.40s': expected srk or ek", optarg);
				goto out;
			}
			break;
		case 'h':
			tpm_usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			cli_bad_option(CMD_QUOTE, c, argv, "cvm help tpm");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	cli_apply_verbosity();
	if (optind != argc) {
		cli_err(CMD_QUOTE, "unexpected argument '%s'; see 'cvm help tpm'", argv[optind]);
		goto out;
	}
	if (x->sel_text == NULL || x->out_dir == NULL) {
		cli_err(CMD_QUOTE,
		        "--pcrs SEL and --out DIR are required (e.g. --pcrs sha256:0-7,10 --out quote/)");
		goto out;
	}
	rc = parse_sel(CMD_QUOTE, x->sel_text, &x->sel);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (nonce_hex != NULL) {
		rc = tpm_parse_nonce(CMD_QUOTE, nonce_hex, x->nonce, &x->nonce_len);
		if (rc != CLI_EXIT_OK)
			goto out;
	} else {
		if (cvm_random_bytes(x->nonce, NONCE_DEFAULT_LEN) != CVM_OK) {
			cli_err(CMD_QUOTE, "cannot make a random nonce: %s", strerror(errno));
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		x->nonce_len = NONCE_DEFAULT_LEN;
	}
	quiet_tss();
	rc = open_tpm(CMD_QUOTE, x->tcti, &x->t);
	if (rc != CLI_EXIT_OK)
		goto out;
	r = cvm_tpm_ak_ensure(x->t, &x->ak_opts, &x->ak_pub, &x->ak_pub_len, &x->created);
	if (r != CVM_OK) {
		rc = tpm_error(CMD_QUOTE, "no attestation key", x->t, r);
		goto out;
	}
	r = cvm_tpm_ak_parse(x->ak_pub, x->ak_pub_len, &x->ak);
	if (r == CVM_OK)
		r = cvm_tpm_ak_pem(x->ak, &x->ak_pem);
	if (r != CVM_OK) {
		cli_err(CMD_QUOTE, "the AK's public area cannot be used: %s", cvm_strerror(r));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	for (int i = 0; i < QUOTE_ATTEMPTS; i++) {
		rc = quote_once(x, &raced);
		if (rc != CLI_EXIT_OK || !raced)
			break;
	}
	if (rc != CLI_EXIT_OK)
		goto out;
	if (raced) {
		cli_err(CMD_QUOTE, "the PCRs changed between the quote and reading them back, %d times",
		        QUOTE_ATTEMPTS);
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	rc = quote_write(x);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (quote_print(x) != 0) {
		cli_err(CMD_QUOTE, "cannot write the output");
		rc = CLI_EXIT_ERROR;
	}
out:
	cvm_tpm_close(x->t);
	cvm_tpm_ak_free(x->ak);
	free(x->ak_pub);
	free(x->ak_pem);
	free(x->attest);
	free(x->sig);
	free(x->ser);
	free(x);
	return rc;
}

/* ---- dispatch ---------------------------------------------------------- */

int cmd_tpm(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"quote", tpm_quote}, {"verify", tpm_verify}, {"pcrread", tpm_pcrread}};

	return cli_dispatch("tpm", subs, sizeof(subs) / sizeof(subs[0]), tpm_usage, argc, argv);
}
