/* cvm attestation: decode or verify dstack's VersionedAttestation (SCALE V0
 * or MessagePack V1, as binary or hex text).
 *
 *   cvm attestation show FILE [--json]
 *   cvm attestation verify FILE [--collateral DIR] [--root CERT] [--policy FILE] [--at T]
 *                          [--report-data HEX] [--json]
 *
 * The decoding and the replay of the event log live here and serve `cvm cert
 * ratls show` too (cli_va_*, output.h). See docs/cli/cvm-attestation.md. */
#include <ctype.h>
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
#include <cvmkit/eventlog.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/snp.h>
#include <cvmkit/tee.h>
#include <cvmkit/verify.h>

#include "cli.h"
#include "output.h"

#define CMD_SHOW "attestation show"
#define CMD_VERIFY "attestation verify"
#define REASON_MAX 1024
#define RTMRS 4u

enum { OPT_COLLATERAL = 0x200, OPT_AT, OPT_POLICY, OPT_ROOT, OPT_REPORT_DATA };

static void usage(FILE *f)
{
	fprintf(f, "usage: cvm attestation show FILE [--json]\n"
	           "       cvm attestation verify FILE [--collateral DIR] [--root CERT] [--policy FILE]\n"
	           "                              [--at UNIX_SECONDS] [--report-data HEX] [--json]\n"
	           "\n"
	           "FILE is dstack's VersionedAttestation (the guest API's Attest answer, the RA-TLS\n"
	           "extension 1.3.6.1.4.1.62397.1.8): SCALE V0 or MessagePack V1, binary or hex text\n"
	           "(detected).\n"
	           "show    decodes it: platform, quote or report with its measurements, report data,\n"
	           "        event log and its replay to the RTMRs, runtime events, the config document\n"
	           "        and its hash, MRCONFIGID (TDX) or HOST_DATA (SEV-SNP); it verifies nothing.\n"
	           "verify  checks the quote (TDX) or report (SEV-SNP) with the collateral in DIR and a\n"
	           "        policy, that the event log replays to the quoted RTMRs, that the runtime events\n"
	           "        replay to RTMR3, and that the report data is the quote's (and HEX, if given).\n"
	           "  --collateral DIR   as for 'cvm quote verify' (without it the quote cannot be\n"
	           "                     verified and the attestation is rejected)\n"
	           "  --root CERT        trust anchor, DER or PEM (a simulated root must be given here)\n"
	           "  --policy FILE      appraisal policy, JSON (default: strict, see docs/policy.md)\n"
	           "  --at UNIX_SECONDS  verification time (default: now)\n"
	           "  --report-data HEX  the 64 bytes (128 hex digits) the report data must be\n"
	           "\n"
	           "Common options: -v (library messages), -q (verdict only), --json (one JSON object).\n"
	           "Exit codes: 0 accepted (show: decoded), 1 error, 2 usage, 3 rejected.\n");
}

/* ---- shared with cvm cert ratls show ------------------------------------ */

static const char *const rtmr_names[RTMRS] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};

static bool printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

/* replay_text writes "RTMR0..3 all match" or which differ or are not covered. */
static void replay_text(const struct cvm_va_check *c, char *buf, size_t cap)
{
	struct cvm_wr w;
	bool any = false;

	cvm_wr_init_text(&w, buf, cap);
	if (!c->log_ok) {
		cvm_wr_fmt(&w, "cannot replay: %s", c->log_why);
		return;
	}
	if (!c->quote_parsed) {
		cvm_wr_str(&w, "no TDX quote to compare with");
		return;
	}
	for (unsigned i = 0; i < RTMRS; i++) {
		const char *state = (c->stripped & (1u << i)) != 0  ? "not replayable (digests stripped)"
		                    : (c->covered & (1u << i)) == 0 ? "no events"
		                    : (c->mismatch & (1u << i)) != 0 && i == 3 ? "DIFFERS from the quote"
		                    : (c->mismatch & (1u << i)) != 0
		                        ? "differs from the quote (a stripped log?)"
		                        : "matches the quote";
		cvm_wr_fmt(&w, "%sRTMR%u %s", any ? ", " : "", i, state);
		any = true;
	}
}

static void payload_text(const uint8_t *p, size_t n, char *buf, size_t cap)
{
	if (n == 0) {
		(void)snprintf(buf, cap, "(empty)");
		return;
	}
	if (printable(p, n)) {
		(void)snprintf(buf, cap, "\"%.*s\"", (int)(n > 200 ? 200 : n), (const char *)p);
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < n && 2 * i + 3 < cap; i++)
		(void)snprintf(buf + 2 * i, cap - 2 * i, "%02x", p[i]);
}

void cli_va_text(FILE *f, const char *in, const struct cvm_va *va, const struct cvm_va_check *c)
{
	char buf[640], name[CVM_EVL_DSTACK_NAME_MAX + 1];

	out_field(f, in, "encoding", "V%u (%s)", va->version, va->version == 0 ? "SCALE" : "MessagePack");
	out_field(f, in, "platform", "%s (variant %u)", cvm_va_variant_name(va->variant), va->variant);
	out_field(f, in, "quote", "%zu bytes%s", va->quote_len,
	          c->quote_parsed ? ", TDX quote"
	          : c->snp_parsed ? ", SEV-SNP report"
	                          : "");
	out_field_hex(f, in, "report_data", va->report_data, sizeof(va->report_data));
	if (c->quote_parsed || c->snp_parsed)
		out_field(f, in, "report_data", "%s the quote's REPORTDATA",
		          c->report_data_matches ? "equals" : "DIFFERS from");
	out_field(f, in, "event_log", "%zu events", va->event_count);
	if (va->event_count != 0) {
		replay_text(c, buf, sizeof(buf));
		out_field(f, in, "event_log replay", "%s", buf);
	}
	out_field(f, in, "runtime_events", "%zu", va->runtime_event_count);
	for (size_t i = 0; i < va->runtime_event_count; i++) {
		const struct cvm_va_runtime_event *e = &va->runtime_events[i];

		out_sanitize(e->event, name, sizeof(name));
		payload_text(e->payload, e->payload_len, buf, sizeof(buf));
		(void)fprintf(f, "%s  %-18s %s\n", in, name, buf);
	}
	if (c->quote_parsed)
		out_field(f, in, "runtime replay", "RTMR3 %s",
		          !c->runtime_ok       ? "cannot be computed"
		          : c->runtime_matches ? "matches the quote"
		                               : "DIFFERS from the quote");
	if (va->config != NULL) {
		out_field(f, in, "config", "%zu bytes of JSON", va->config_len);
		out_field_hex(f, in, "config sha256", c->config_sha256, sizeof(c->config_sha256));
	} else {
		out_field(f, in, "config", "none");
	}
	if (c->quote_parsed) {
		out_field_hex(f, in, "mr_config_id", c->quote.body.td.mr_config_id, 48);
		if (c->mr_config_layout == 0)
			out_field(f, in, "mr_config_id", "all zero (not used)");
		else if (c->mr_config_layout == 1)
			out_field(f, in, "mr_config_id", "layout 1: 01 || compose hash; %s",
			          !c->has_compose_hash      ? "no compose-hash event to compare with"
			          : c->compose_hash_matches ? "equals the compose-hash event"
			                                    : "DIFFERS from the compose-hash event");
		else if (c->mr_config_layout == 3)
			out_field(f, in, "mr_config_id",
			          "layout 3: 03 || SHA-256 of the mr_config document; %s",
			          !c->has_mr_config_doc      ? "the document is not carried"
			          : c->mr_config_doc_matches ? "equals the carried document's"
			                                     : "DIFFERS from the carried document's");
		else
			out_field(f, in, "mr_config_id", "layout %u (not decoded by cvm)",
			          c->mr_config_layout);
	}
	if (c->snp_parsed) {
		out_field_hex(f, in, "host_data", c->snp.host_data, sizeof(c->snp.host_data));
		out_field(
		    f, in, "host_data", "%s",
		    !c->has_mr_config_doc ? "no mr_config document carried to compare with"
		    : c->mr_config_doc_matches
		        ? "equals SHA-256(\"dstack-mr-config-v3:\" || 00 || the mr_config document)"
		        : "DIFFERS from SHA-256(\"dstack-mr-config-v3:\" || 00 || the mr_config document)");
	}
}

static json_t *json_events(const struct cvm_va *va)
{
	json_t *a = json_array();
	char name[CVM_EVL_DSTACK_NAME_MAX + 1];

	for (size_t i = 0; a != NULL && i < va->event_count; i++) {
		const struct cvm_va_event *e = &va->events[i];
		json_t *o = json_object();
		int bad = 0;

		if (o == NULL) {
			json_decref(a);
			return NULL;
		}
		out_sanitize(e->event, name, sizeof(name));
		bad |= out_jset_int(o, "imr", e->imr);
		bad |= out_jset_int(o, "event_type", e->event_type);
		bad |= out_jset_hex(o, "digest", e->digest, e->digest_len);
		bad |= out_jset_str(o, "event", name);
		bad |= out_jset_hex(o, "event_payload", e->payload, e->payload_len);
		if (bad != 0 || json_array_append_new(a, o) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *json_runtime_events(const struct cvm_va *va)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < va->runtime_event_count; i++) {
		const struct cvm_va_runtime_event *e = &va->runtime_events[i];
		json_t *o = json_object();
		int bad = 0;

		if (o == NULL) {
			json_decref(a);
			return NULL;
		}
		bad |= out_jset_str(o, "event", e->event);
		bad |= out_jset_hex(o, "payload", e->payload, e->payload_len);
		if (printable(e->payload, e->payload_len))
			bad |= out_jset(o, "payload_text",
			                json_stringn((const char *)e->payload, e->payload_len));
		if (bad != 0 || json_array_append_new(a, o) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *json_replay(const struct cvm_va_check *c)
{
	json_t *o = json_object(), *regs = json_object();
	int bad = 0;

	if (o == NULL || regs == NULL) {
		json_decref(o);
		json_decref(regs);
		return NULL;
	}
	bad |= out_jset(o, "ok", json_boolean(cvm_va_replay_ok(c)));
	bad |= out_jset_str(o, "error", c->log_ok ? NULL : c->log_why);
	for (unsigned i = 0; i < RTMRS; i++) {
		json_t *r = json_object();

		if (r == NULL) {
			bad = -1;
			break;
		}
		bad |= out_jset_str(r, "state",
		                    (c->stripped & (1u << i)) != 0   ? "stripped"
		                    : (c->covered & (1u << i)) == 0  ? "no_events"
		                    : !c->quote_parsed               ? "no_quote"
		                    : (c->mismatch & (1u << i)) != 0 ? "differs"
		                                                     : "matches");
		bad |= out_jset_hex(r, "replayed", c->replay[i], 48);
		bad |= out_jset(regs, rtmr_names[i], r);
	}
	bad |= out_jset(o, "registers", regs);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int cli_va_json(json_t *o, const struct cvm_va *va, const struct cvm_va_check *c)
{
	json_t *rt = json_object(), *cfg = json_object(), *mrc = NULL;
	int bad = 0;

	if (rt == NULL || cfg == NULL) {
		json_decref(rt);
		json_decref(cfg);
		return -1;
	}
	bad |= out_jset_int(o, "version", va->version);
	bad |= out_jset_str(o, "encoding", va->version == 0 ? "scale" : "msgpack");
	bad |= out_jset_int(o, "variant", va->variant);
	bad |= out_jset_str(o, "platform", cvm_va_variant_name(va->variant));
	bad |= out_jset_int(o, "quote_len", (long long)va->quote_len);
	bad |= out_jset_hex(o, "attestation_report_data", va->report_data, sizeof(va->report_data));
	bad |=
	    out_jset(o, "report_data_matches_quote",
	             c->quote_parsed || c->snp_parsed ? json_boolean(c->report_data_matches) : json_null());
	bad |= out_jset_int(o, "event_count", (long long)va->event_count);
	bad |= out_jset(o, "events", json_events(va));
	bad |= out_jset(o, "event_log_replay", json_replay(c));
	bad |= out_jset_int(o, "runtime_event_count", (long long)va->runtime_event_count);
	bad |= out_jset(o, "runtime_events", json_runtime_events(va));
	bad |= out_jset_hex(rt, "rtmr3", c->runtime_rtmr3, 48);
	bad |= out_jset(rt, "matches_quote",
	                c->quote_parsed && c->runtime_ok ? json_boolean(c->runtime_matches) : json_null());
	bad |= out_jset(o, "runtime_replay", rt);
	if (va->config != NULL) {
		char *text = malloc(va->config_len + 1);

		if (text == NULL) {
			json_decref(cfg);
			return -1;
		}
		memcpy(text, va->config, va->config_len);
		text[va->config_len] = '\0';
		bad |= out_jset_int(cfg, "len", (long long)va->config_len);
		bad |= out_jset_hex(cfg, "sha256", c->config_sha256, sizeof(c->config_sha256));
		bad |= out_jset_str(cfg, "text", text);
		free(text);
		bad |= out_jset(o, "config", cfg);
	} else {
		json_decref(cfg);
		bad |= out_jset(o, "config", json_null());
	}
	if (c->quote_parsed) {
		mrc = json_object();
		if (mrc == NULL)
			return -1;
		bad |= out_jset_int(mrc, "layout", c->mr_config_layout);
		if (c->mr_config_layout == 1) {
			bad |= out_jset_hex(mrc, "compose_hash", c->quote.body.td.mr_config_id + 1, 32);
			bad |= out_jset(mrc, "matches_compose_hash_event",
			                c->has_compose_hash ? json_boolean(c->compose_hash_matches)
			                                    : json_null());
		}
		bad |= out_jset(o, "mr_config", mrc);
	}
	if (va->mr_config != NULL) {
		json_t *doc = json_object();
		char *text = malloc(va->mr_config_len + 1);

		if (doc == NULL || text == NULL) {
			json_decref(doc);
			free(text);
			return -1;
		}
		memcpy(text, va->mr_config, va->mr_config_len);
		text[va->mr_config_len] = '\0';
		bad |= out_jset_str(doc, "text", text);
		free(text);
		bad |= out_jset_hex(doc, "sha256_v3", c->mr_config_doc_hash, 32);
		bad |= out_jset(doc, "matches",
		                c->has_mr_config_doc ? json_boolean(c->mr_config_doc_matches) : json_null());
		bad |= out_jset(o, "mr_config_document", doc);
	}
	return bad;
}

/* ---- reading the file ---------------------------------------------------- */

/* read_va reads FILE (binary, or hex text: detected by its first byte, since
 * a binary V0 starts with 0x00 and a V1 with a MessagePack map prefix) and
 * decodes it. */
static int read_va(const char *cmd, const char *path, struct cvm_va **out)
{
	uint8_t *buf = NULL, *bin = NULL;
	size_t len = 0, n = 0, bin_len = 0;
	char err[256] = "";
	int r, rc;

	*out = NULL;
	rc = cli_read_file(cmd, "attestation file", path, 2 * CVM_VA_MAX + 64, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (len != 0 && isxdigit(buf[0])) {
		const char *h = (const char *)buf;

		n = len;
		while (n > 0 && isspace(buf[n - 1]))
			n--;
		if (n >= 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X')) {
			h += 2;
			n -= 2;
		}
		bin = malloc(n / 2 + 1);
		if (bin == NULL) {
			cli_err(cmd, "out of memory");
			free(buf);
			return CLI_EXIT_ERROR;
		}
		if (n % 2 != 0 || cvm_hex_decode_exact(h, n, bin, n / 2) != CVM_OK) {
			cli_err(cmd,
			        "'%s' starts like hex text but is not an even run of hex digits: give the "
			        "attestation as binary or as hex",
			        path);
			free(bin);
			free(buf);
			return CLI_EXIT_ERROR;
		}
		bin_len = n / 2;
		free(buf);
		buf = bin;
		len = bin_len;
	}
	r = cvm_va_decode(buf, len, out, err, sizeof(err));
	free(buf);
	if (r != CVM_OK) {
		char clean[256];

		out_sanitize(err, clean, sizeof(clean));
		cli_err(cmd, "'%s' is not a VersionedAttestation cvm can decode: %s%s%s", path,
		        clean[0] != '\0' ? clean : cvm_strerror(r), clean[0] != '\0' ? " - " : "",
		        clean[0] != '\0' ? cvm_strerror(r) : "");
		return r == CVM_E_NOMEM ? CLI_EXIT_ERROR : CLI_EXIT_REJECTED;
	}
	return CLI_EXIT_OK;
}

/* ---- show ---------------------------------------------------------------- */

static int show_json(const struct cvm_va *va, const struct cvm_va_check *c)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_jset(o, "verified", json_false());
	bad |= out_jset_str(o, "note", "decoded only; no signature, certificate, CRL or TCB check was made");
	bad |= out_jset_str(o, "tee", cvm_ratls_tee_name(va->tee));
	bad |= cli_va_json(o, va, c);
	/* The quote's or report's fields under the names of cvm quote show. */
	if (c->quote_parsed) {
		bad |= out_jset_int(o, "quote_version", c->quote.version);
		bad |= out_jset_str(o, "body", out_body_name(&c->quote));
		bad |= out_json_body(o, &c->quote);
	} else if (c->snp_parsed) {
		bad |= out_json_snp_report(o, &c->snp);
	}
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

static void show_text(const char *path, const struct cvm_va *va, const struct cvm_va_check *c)
{
	printf("attestation: VersionedAttestation V%u, %s, %s\n", va->version,
	       cvm_va_variant_name(va->variant), cvm_ratls_tee_name(va->tee));
	if (cli_opts.quiet)
		return;
	printf("file: %s\n", path);
	printf("note: decoded only; no signature, certificate, CRL or TCB check was made "
	       "(use 'cvm attestation verify')\n");
	cli_va_text(stdout, "  ", va, c);
	if (c->quote_parsed) {
		printf("quote: TDX v%u, %s:\n", c->quote.version, out_body_name(&c->quote));
		out_tdx_report_text(stdout, "  ", &c->quote.body.td);
	} else if (c->snp_parsed) {
		printf("report: SEV-SNP v%u:\n", c->snp.version);
		out_snp_report_text(stdout, "  ", &c->snp);
	} else if (va->quote_len != 0) {
		printf("quote: %zu bytes that cvm cannot parse for this platform\n", va->quote_len);
	}
}

static int att_show(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_COMMON_LONGOPTS};
	struct cvm_va_check *chk = NULL;
	struct cvm_va *va = NULL;
	int c, rc;

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
		cli_bad_option(CMD_SHOW, c, argv, "cvm help attestation");
		return CLI_EXIT_USAGE;
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(CMD_SHOW, "%s; usage: cvm attestation show FILE [--json]",
		        argc - optind == 0 ? "no FILE given" : "more than one FILE given");
		return CLI_EXIT_USAGE;
	}
	rc = read_va(CMD_SHOW, argv[optind], &va);
	if (rc != CLI_EXIT_OK)
		return rc == CLI_EXIT_REJECTED ? CLI_EXIT_ERROR : rc;
	chk = calloc(1, sizeof(*chk));
	if (chk == NULL) {
		cli_err(CMD_SHOW, "out of memory");
		cvm_va_free(va);
		return CLI_EXIT_ERROR;
	}
	cvm_va_check(va, chk);
	if (cli_opts.json) {
		if (show_json(va, chk) != 0) {
			cli_err(CMD_SHOW, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else {
		show_text(argv[optind], va, chk);
	}
	free(chk);
	cvm_va_free(va);
	return rc;
}

/* ---- verify -------------------------------------------------------------- */

struct verify_ctx {
	const char *collateral_dir;
	const char *policy_path;
	const char *root_path;
	int64_t at;
	bool at_set;
	bool has_expected_rd;
	uint8_t expected_rd[64];
	uint8_t *root;
	size_t root_len;
	struct cvm_va *va;
	struct cvm_va_check chk;
	struct cvm_policy policy;
	struct cvm_dcap_collateral *dcap;
	struct cvm_amd_collateral *amd;
	struct cvm_dcap_result dres;
	struct cvm_amd_result ares;
	struct cvm_report rep;
	bool quote_verified;
	bool simulated;
	char reason[REASON_MAX];
};

static int load_collateral(struct verify_ctx *v)
{
	char what[4352] = "";
	int r;

	if (v->va->tee == CVM_RATLS_TEE_SNP)
		r = cvm_amd_collateral_load_dir(v->collateral_dir, &v->amd, what, sizeof(what));
	else
		r = cvm_dcap_collateral_load_dir(v->collateral_dir, &v->dcap, what, sizeof(what));
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	cli_err(CMD_VERIFY, "cannot load %s collateral from '%s': %s; see 'cvm help quote' for the layout",
	        v->va->tee == CVM_RATLS_TEE_SNP ? "SEV-SNP" : "DCAP", v->collateral_dir,
	        what[0] != '\0' ? what : cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

/* verify_steps runs every check, recording each as a step; returns the
 * first error (0: all passed). */
static int verify_steps(struct verify_ctx *v)
{
	const struct cvm_va *va = v->va;
	struct cvm_va_check *c = &v->chk;
	char buf[640];
	int r, first = CVM_OK;

	cvm_report_init(&v->rep);
	cvm_report_add(&v->rep, "decode", true,
	               "VersionedAttestation V%u, %s, quote %zu bytes, %zu events, %zu runtime events",
	               va->version, cvm_va_variant_name(va->variant), va->quote_len, va->event_count,
	               va->runtime_event_count);
	if (va->tee != CVM_RATLS_TEE_TDX && va->tee != CVM_RATLS_TEE_SNP) {
		cvm_report_add(&v->rep, "platform", false, "%s attestations cannot be verified by cvm",
		               cvm_va_variant_name(va->variant));
		return CVM_E_UNSUPPORTED;
	}
	if (v->collateral_dir == NULL) {
		cvm_report_add(
		    &v->rep, "quote", false,
		    "no --collateral given: the %s's signature, certificate chain and TCB cannot be "
		    "verified",
		    va->tee == CVM_RATLS_TEE_SNP ? "report" : "quote");
		first = CVM_E_SIGNATURE; /* unverified: not shown to be authentic */
	} else if (va->tee == CVM_RATLS_TEE_SNP) {
		r = cvm_verify_snp_report(va->quote, va->quote_len, v->amd, v->root, v->root_len, v->at,
		                          &v->policy, &v->rep, &v->ares);
		v->quote_verified = r == CVM_OK;
		first = r;
	} else {
		r = cvm_verify_quote(va->quote, va->quote_len, v->dcap, v->root, v->root_len, v->at,
		                     &v->policy, &v->rep, &v->dres);
		v->quote_verified = r == CVM_OK;
		first = r;
	}
	if (c->quote_parsed || c->snp_parsed) {
		cvm_report_add(&v->rep, "report_data", c->report_data_matches, "%s",
		               c->report_data_matches
		                   ? "the attestation's report_data is the quote's REPORTDATA"
		                   : "the attestation's report_data differs from the quote's REPORTDATA");
		if (!c->report_data_matches && first == CVM_OK)
			first = CVM_E_MISMATCH;
	}
	if (v->has_expected_rd) {
		bool eq = memcmp(v->expected_rd, va->report_data, 64) == 0;

		cvm_report_add(&v->rep, "report_data_expected", eq, "%s",
		               eq ? "report_data equals --report-data"
		                  : "report_data differs from --report-data");
		if (!eq && first == CVM_OK)
			first = CVM_E_MISMATCH;
	}
	if (c->has_mr_config_doc) {
		cvm_report_add(
		    &v->rep, "mr_config", c->mr_config_doc_matches,
		    "SHA-256(\"dstack-mr-config-v3:\" || 00 || the mr_config document) %s what %s holds",
		    c->mr_config_doc_matches ? "is" : "is NOT", c->snp_parsed ? "HOST_DATA" : "MRCONFIGID");
		if (!c->mr_config_doc_matches && first == CVM_OK)
			first = CVM_E_MISMATCH;
	}
	if (va->tee == CVM_RATLS_TEE_TDX) {
		bool ok = cvm_va_replay_ok(c);

		replay_text(c, buf, sizeof(buf));
		cvm_report_add(&v->rep, "event_log", ok, "%zu events: %s%s", va->event_count, buf,
		               ok || (c->covered & (1u << 3)) != 0 ? "" : " (RTMR3 is not covered)");
		if (!ok && first == CVM_OK)
			first = CVM_E_MISMATCH;
		cvm_report_add(&v->rep, "rtmr3", c->runtime_matches, "%zu runtime events replay to %s",
		               va->runtime_event_count,
		               c->runtime_matches ? "the quote's RTMR3"
		                                  : "a value that is NOT the quote's RTMR3");
		if (!c->runtime_matches && first == CVM_OK)
			first = CVM_E_MISMATCH;
	}
	return first;
}

static void verify_summary(const struct verify_ctx *v, char *buf, size_t cap)
{
	struct cvm_wr w;

	cvm_wr_init_text(&w, buf, cap);
	cvm_wr_fmt(&w, "%s", cvm_va_variant_name(v->va->variant));
	if (v->va->tee == CVM_RATLS_TEE_TDX && v->dres.tcb_status != CVM_TCB_NONE)
		cvm_wr_fmt(&w, ", TCB %s", cvm_tcb_status_name(v->dres.tcb_status));
	if (v->va->tee == CVM_RATLS_TEE_TDX)
		cvm_wr_fmt(&w, ", RTMR3 %s", v->chk.runtime_matches ? "replayed" : "not replayed");
}

static int verify_json(struct verify_ctx *v, int r)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_jset(o, "simulated", json_boolean(v->simulated));
	bad |= out_verdict_json(o, r == CVM_OK, v->reason, NULL);
	bad |= out_jset_int(o, "verify_at", v->at);
	bad |= out_jset_str(o, "tee", cvm_ratls_tee_name(v->va->tee));
	bad |= out_jset(o, "quote_verified", json_boolean(v->quote_verified));
	bad |= out_jset_str(o, "tcb_status",
	                    v->va->tee == CVM_RATLS_TEE_TDX && v->dres.tcb_status != CVM_TCB_NONE
	                        ? cvm_tcb_status_name(v->dres.tcb_status)
	                        : NULL);
	bad |= out_jset(o, "event_log_replayed", json_boolean(cvm_va_replay_ok(&v->chk)));
	bad |= out_jset(o, "rtmr3_replayed", json_boolean(v->chk.runtime_matches));
	bad |= out_jset(o, "report_data_matches_quote", json_boolean(v->chk.report_data_matches));
	bad |= cli_va_json(o, v->va, &v->chk);
	if (v->chk.quote_parsed) {
		bad |= out_jset_int(o, "quote_version", v->chk.quote.version);
		bad |= out_jset_str(o, "body", out_body_name(&v->chk.quote));
		bad |= out_json_body(o, &v->chk.quote);
	} else if (v->chk.snp_parsed) {
		bad |= out_json_snp_report(o, &v->chk.snp);
	}
	bad |= out_jset(o, "steps", out_json_steps(&v->rep));
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

static int att_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"collateral", required_argument, NULL, OPT_COLLATERAL},
	    {"at", required_argument, NULL, OPT_AT},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"report-data", required_argument, NULL, OPT_REPORT_DATA},
	    CLI_COMMON_LONGOPTS,
	};
	struct verify_ctx *v;
	char perr[512], sum[512];
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
		case OPT_REPORT_DATA:
			if (cvm_hex_decode_exact(optarg, strlen(optarg), v->expected_rd, 64) != CVM_OK) {
				cli_err(
				    CMD_VERIFY,
				    "--report-data: expected 128 hex digits (64 bytes), got %zu characters",
				    strlen(optarg));
				rc = CLI_EXIT_USAGE;
				goto out;
			}
			v->has_expected_rd = true;
			break;
		case 'h':
			usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			cli_bad_option(CMD_VERIFY, c, argv, "cvm help attestation");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(CMD_VERIFY, "%s; usage: cvm attestation verify FILE [options]",
		        argc - optind == 0 ? "no FILE given" : "more than one FILE given");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (!v->at_set)
		v->at = (int64_t)time(NULL);
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
	rc = read_va(CMD_VERIFY, argv[optind], &v->va);
	if (rc != CLI_EXIT_OK) {
		if (rc == CLI_EXIT_REJECTED)
			printf("verdict: rejected: the file is not a VersionedAttestation cvm can decode\n");
		goto out;
	}
	if (v->collateral_dir != NULL) {
		rc = load_collateral(v);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	cvm_va_check(v->va, &v->chk);
	r = verify_steps(v);
	rc = cli_exit_for(r);
	out_verdict_reason(&v->rep, r, v->reason, sizeof(v->reason));
	v->simulated = cvm_tee_is_simulated_root(v->root, v->root_len) ||
	               (v->va->tee == CVM_RATLS_TEE_TDX &&
	                cvm_tee_evidence_is_simulated(v->va->quote, v->va->quote_len, NULL, 0)) ||
	               out_amd_simulated(v->amd);
	if (cli_opts.json) {
		if (verify_json(v, r) != 0) {
			cli_err(CMD_VERIFY, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else {
		if (v->simulated)
			printf("%s\n", CVM_TEE_SIMULATED_BANNER);
		if (!cli_opts.quiet)
			out_steps(stdout, &v->rep);
		verify_summary(v, sum, sizeof(sum));
		out_verdict_text(r == CVM_OK, v->reason, sum);
	}
	if (rc == CLI_EXIT_ERROR)
		cli_err(CMD_VERIFY, "verification could not run to the end: %s", cvm_strerror(r));
out:
	cvm_dcap_collateral_free(v->dcap);
	cvm_amd_collateral_free(v->amd);
	cvm_va_free(v->va);
	free(v->root);
	free(v);
	return rc;
}

int cmd_attestation(int argc, char **argv)
{
	static const struct cli_sub subs[] = {{"show", att_show}, {"verify", att_verify}};

	return cli_dispatch("attestation", subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}
