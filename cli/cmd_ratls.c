/* cvm cert ratls make|show|verify: RA-TLS certificates in dstack's and
 * Cosmian's profiles.
 *
 *   cvm cert ratls make --profile dstack|cosmian (--sim DIR --platform tdx|snp | --tee auto)
 *                       --subject CN [--san NAME]... [--hours N] [--app-id HEX] [--usage S]
 *                       [--event-log FILE]... --key-out FILE --cert-out FILE
 *   cvm cert ratls show CERT [--json]
 *   cvm cert ratls verify CERT [--collateral DIR] [--root CERT] [--ca CERT]... [--policy FILE]
 *                         [--at T] [--allow-legacy-ca] [--json]
 *
 * See docs/cli/cvm-cert.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/secret.h>
#include <cvmkit/snp.h>
#include <cvmkit/tee.h>

#include "cli.h"
#include "output.h"

#define CMD_MAKE "cert ratls make"
#define CMD_SHOW "cert ratls show"
#define CMD_VERIFY "cert ratls verify"
#define REASON_MAX 1024
#define CHAIN_FILE_MAX (4 * CVM_RATLS_CERT_MAX) /* a PEM chain of a few certificates */
#define CA_MAX 8u
#define EVENT_LOGS_MAX 4u
#define EVENTS_MAX 4096u
#define EVENT_BYTES_MAX ((size_t)16 << 20)
#define HOURS_MAX 8784u    /* 366 days */
#define SHA384_ALG 0x000cu /* TPM_ALG_SHA384 */

enum {
	OPT_PROFILE = 0x200,
	OPT_SIM,
	OPT_PLATFORM,
	OPT_TEE,
	OPT_SUBJECT,
	OPT_SAN,
	OPT_HOURS,
	OPT_APP_ID,
	OPT_USAGE,
	OPT_EVENT_LOG,
	OPT_KEY_OUT,
	OPT_CERT_OUT,
	OPT_COLLATERAL,
	OPT_ROOT,
	OPT_CA,
	OPT_POLICY,
	OPT_AT,
	OPT_ALLOW_LEGACY_CA,
};

static void usage_make(FILE *f)
{
	fprintf(
	    f,
	    "usage: cvm cert ratls make --profile dstack|cosmian (--sim DIR --platform tdx|snp | --tee "
	    "auto)\n"
	    "                           --subject CN [--san NAME]... [--hours N] [--app-id HEX] [--usage S]\n"
	    "                           [--event-log FILE]... --key-out FILE --cert-out FILE\n"
	    "\n"
	    "Makes a fresh P-256 key and a certificate for it carrying evidence from the local TEE\n"
	    "(--tee auto) or from the simulated platform of 'cvm sim init DIR', whose report data\n"
	    "binds the key as the profile defines it (dstack: SHA-512(\"ratls-cert:\" || SPKI DER);\n"
	    "cosmian: SHA-256(public key) || 32 zero bytes). The certificate is self-signed.\n"
	    "  --profile P        dstack (extension 1.8, and for TDX the legacy 1.1 quote and 1.2 event\n"
	    "                     log) or cosmian (1.2.840.113741.1337.8 TDX, .7 SEV-SNP)\n"
	    "  --sim DIR          the simulator folder; --platform tdx or snp picks its half\n"
	    "  --tee auto         the TEE of this machine (TDX or SEV-SNP guest)\n"
	    "  --subject CN       the subject's common name\n"
	    "  --san NAME         a subject alternative name (DNS name or IP address), repeatable\n"
	    "  --hours N          validity in hours, from 5 minutes before now (default 12)\n"
	    "  --app-id HEX       dstack: the 20-byte app id extension (1.3)\n"
	    "  --usage S          dstack: the usage extension (1.4), e.g. app:custom\n"
	    "  --event-log FILE   TDX: an event log to carry (CCEL binary, dstack JSON event log or\n"
	    "                     runtime_events.log), repeatable, in order; default: the simulator's\n"
	    "                     DIR/agent/runtime_events.log when it exists; on a TDX guest\n"
	    "                     /sys/firmware/acpi/tables/data/CCEL then\n"
	    "                     /run/log/dstack/runtime_events.log, those that exist\n"
	    "  --key-out FILE     the private key (PKCS#8 PEM, mode 0600; never replaces a file)\n"
	    "  --cert-out FILE    the certificate (PEM)\n"
	    "\n"
	    "Common options: -v, -q, --json. Exit codes: 0 made, 1 error, 2 usage.\n");
}

static void usage_show(FILE *f)
{
	fprintf(f, "usage: cvm cert ratls show CERT [--json]\n"
	           "\n"
	           "Decodes the RA-TLS extensions of CERT (DER, or PEM: the first certificate is shown,\n"
	           "the others listed): profile, TEE, the quote or report and its measurements, the event\n"
	           "log and its replay, app id, usage, the VersionedAttestation, app info, and whether\n"
	           "the report data binds the certificate's key. It verifies nothing.\n"
	           "\n"
	           "Common options: -v, -q, --json. Exit codes: 0 read, 1 error, 2 usage.\n");
}

static void usage_verify(FILE *f)
{
	fprintf(
	    f,
	    "usage: cvm cert ratls verify CERT [--collateral DIR] [--root CERT] [--ca CERT]...\n"
	    "                             [--policy FILE] [--at UNIX_SECONDS] [--allow-legacy-ca] [--json]\n"
	    "\n"
	    "Verifies CERT (DER, or a PEM chain, leaf first): its validity at the time, the\n"
	    "evidence (quote or report with the collateral and the policy), the binding of the\n"
	    "report data to the certificate's key, the event log's replay to the RTMRs, and the\n"
	    "chain up to a --ca certificate when one is given.\n"
	    "  --collateral DIR   as for 'cvm quote verify' (DCAP for TDX/SGX, AMD for SEV-SNP)\n"
	    "  --root CERT        trust anchor (default: Intel's root, AMD's ARKs); a simulated\n"
	    "                     root must be given here\n"
	    "  --ca CERT          the chain must end in this CA (repeatable; a PEM file may hold several)\n"
	    "  --policy FILE      appraisal policy, JSON (default: strict, see docs/policy.md)\n"
	    "  --at UNIX_SECONDS  verification time (default: now)\n"
	    "  --allow-legacy-ca  accept CA certificates without keyCertSign (dstack before 0.5.8)\n"
	    "\n"
	    "Common options: -v, -q (verdict only), --json.\n"
	    "Exit codes: 0 accepted, 1 error, 2 usage, 3 rejected.\n");
}

static int bad_option(const char *cmd, int c, char **argv)
{
	char help[64];

	(void)snprintf(help, sizeof(help), "cvm %s --help", cmd);
	cli_bad_option(cmd, c, argv, help);
	return CLI_EXIT_USAGE;
}

static bool printable_bytes(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

/* ---- reading certificates ------------------------------------------------ */

struct chain {
	struct cvm_cert **certs;
	size_t count;
	bool is_pem;
	size_t file_len;
	const uint8_t **der;
	size_t *der_len;
};

static void chain_free(struct chain *ch)
{
	cvm_certs_free(ch->certs, ch->count);
	free(ch->der);
	free(ch->der_len);
	memset(ch, 0, sizeof(*ch));
}

/* read_chain reads a DER certificate or a PEM chain from `path`. */
static int read_chain(const char *cmd, const char *what, const char *path, struct chain *ch)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, rc;

	memset(ch, 0, sizeof(*ch));
	rc = cli_read_file(cmd, what, path, CHAIN_FILE_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	ch->file_len = len;
	ch->is_pem = cvm_pem_starts(buf, len);
	if (ch->is_pem) {
		r = cvm_certs_parse_pem(buf, len, &ch->certs, &ch->count);
	} else {
		ch->certs = calloc(1, sizeof(struct cvm_cert *));
		r = ch->certs == NULL ? CVM_E_NOMEM : cvm_cert_parse(buf, len, &ch->certs[0]);
		ch->count = r == CVM_OK ? 1 : 0;
	}
	free(buf);
	if (r != CVM_OK) {
		cli_err(cmd, "%s '%s' is neither a DER certificate nor PEM 'BEGIN CERTIFICATE' blocks: %s",
		        what, path, cvm_strerror(r));
		chain_free(ch);
		return CLI_EXIT_ERROR;
	}
	ch->der = calloc(ch->count, sizeof(*ch->der));
	ch->der_len = calloc(ch->count, sizeof(*ch->der_len));
	if (ch->der == NULL || ch->der_len == NULL) {
		cli_err(cmd, "out of memory");
		chain_free(ch);
		return CLI_EXIT_ERROR;
	}
	for (size_t i = 0; i < ch->count; i++)
		cvm_cert_der(ch->certs[i], &ch->der[i], &ch->der_len[i]);
	return CLI_EXIT_OK;
}

static int parse_leaf(const char *cmd, const char *path, const struct chain *ch, struct cvm_ratls_info **info)
{
	char err[256] = "", clean[256];
	int r;

	r = cvm_ratls_parse(ch->der[0], ch->der_len[0], info, err, sizeof(err));
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	out_sanitize(err, clean, sizeof(clean));
	cli_err(cmd, "the RA-TLS extensions of '%s' cannot be decoded: %s (%s)", path,
	        clean[0] != '\0' ? clean : "no detail", cvm_strerror(r));
	return r == CVM_E_NOMEM ? CLI_EXIT_ERROR : CLI_EXIT_REJECTED;
}

/* ---- show ----------------------------------------------------------------- */

/* struct shown is what show decodes beyond cvm_ratls_parse. */
struct shown {
	bool has_evidence;
	bool quote_parsed; /* TDX/SGX: quote */
	struct cvm_quote quote;
	bool snp_parsed;
	struct cvm_snp_report snp;
	/* the legacy 1.2 event log, replayed */
	bool log_parsed;
	char log_err[256];
	uint64_t log_events;
	uint8_t log_replay[4][48];
	unsigned log_covered, log_mismatch;
	/* the 1.8 attestation */
	struct cvm_va_check va;
};

static void replay_legacy_log(const struct cvm_ratls_info *info, struct shown *s)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	const struct cvm_evl_replay *rp;
	bool has = true;
	int r;

	if (cvm_evl_parser_new_mem(info->event_log_json, info->event_log_json_len, CVM_EVL_DSTACK_JSON, &p) !=
	    CVM_OK) {
		(void)snprintf(s->log_err, sizeof(s->log_err), "out of memory");
		return;
	}
	for (;;) {
		r = cvm_evl_parser_next(p, &ev, &has);
		if (r != CVM_OK || !has)
			break;
		s->log_events++;
	}
	if (r != CVM_OK) {
		out_sanitize(cvm_evl_parser_err(p), s->log_err, sizeof(s->log_err));
		cvm_evl_parser_free(p);
		return;
	}
	rp = cvm_evl_parser_replay(p);
	for (uint32_t i = 0; i < 4; i++) {
		const uint8_t *v = NULL;
		size_t n = 0;
		const struct cvm_evl_bank *b = cvm_evl_replay_bank(rp, SHA384_ALG);

		if (b == NULL || (b->extended & (1u << i)) == 0)
			continue;
		if (cvm_evl_replay_value(rp, SHA384_ALG, i, &v, &n) != CVM_OK || n != 48)
			continue;
		memcpy(s->log_replay[i], v, 48);
		s->log_covered |= 1u << i;
		if (s->quote_parsed && s->quote.tee == CVM_TEE_TDX &&
		    memcmp(v, s->quote.body.td.rtmr[i], 48) != 0)
			s->log_mismatch |= 1u << i;
	}
	s->log_parsed = true;
	cvm_evl_parser_free(p);
}

static void decode_shown(const struct cvm_ratls_info *info, struct shown *s)
{
	memset(s, 0, sizeof(*s));
	s->has_evidence = info->profile != CVM_RATLS_PROFILE_NONE && info->quote_len != 0;
	if (info->tee == CVM_RATLS_TEE_SNP)
		s->snp_parsed = cvm_snp_report_parse(info->quote, info->quote_len, &s->snp) == CVM_OK;
	else if (info->quote_len != 0)
		s->quote_parsed = cvm_quote_parse(info->quote, info->quote_len, &s->quote) == CVM_OK;
	if (info->event_log_json != NULL)
		replay_legacy_log(info, s);
	if (info->attestation != NULL)
		cvm_va_check(info->attestation, &s->va);
}

static void legacy_log_text(const struct shown *s, char *buf, size_t cap)
{
	struct cvm_wr w;

	cvm_wr_init_text(&w, buf, cap);
	if (!s->log_parsed) {
		cvm_wr_fmt(&w, "cannot be replayed: %s", s->log_err);
		return;
	}
	cvm_wr_fmt(&w, "%" PRIu64 " events", s->log_events);
	for (unsigned i = 0; i < 4; i++)
		cvm_wr_fmt(&w, ", RTMR%u %s", i,
		           (s->log_covered & (1u << i)) == 0              ? "no events"
		           : !s->quote_parsed                             ? "replayed (no quote to compare)"
		           : (s->log_mismatch & (1u << i)) != 0 && i == 3 ? "DIFFERS from the quote"
		           : (s->log_mismatch & (1u << i)) != 0 ? "differs from the quote (a stripped log?)"
		                                                : "matches the quote");
}

static const char *cosmian_sev_format_name(unsigned f)
{
	switch (f) {
	case 1:
		return "tee-tools 1.6.2 bincode";
	case 2:
		return "tee-tools 2.x";
	case 3:
		return "2023 tagged";
	default:
		return NULL;
	}
}

/* sev_certs_text names the format of a Cosmian SEV extension and the
 * certificates its table carried. */
static void sev_certs_text(const struct cvm_ratls_info *info)
{
	const struct cvm_amd_collateral *a = &info->snp_certs;
	char buf[128];
	struct cvm_wr w;

	cvm_wr_init_text(&w, buf, sizeof(buf));
	if (a->vcek_len != 0)
		cvm_wr_str(&w, " VCEK");
	if (a->vlek_len != 0)
		cvm_wr_str(&w, " VLEK");
	if (a->ask_len != 0)
		cvm_wr_str(&w, " ASK");
	if (a->asvk_len != 0)
		cvm_wr_str(&w, " ASVK");
	if (a->cert_chain_len != 0)
		cvm_wr_str(&w, " chain");
	if (a->ark_len != 0)
		cvm_wr_str(&w, " ARK");
	out_field(stdout, "  ", "sev format", "%s; certificates:%s",
	          cosmian_sev_format_name(info->cosmian_sev_format), buf[0] != '\0' ? buf : " none");
}

static void cert_header_text(const struct chain *ch)
{
	char buf[1024], t1[32], t2[32];

	cvm_cert_subject(ch->certs[0], buf, sizeof(buf));
	out_sanitize(buf, buf, sizeof(buf));
	out_field(stdout, "  ", "subject", "%s", buf);
	cvm_cert_issuer(ch->certs[0], buf, sizeof(buf));
	out_sanitize(buf, buf, sizeof(buf));
	out_field(stdout, "  ", "issuer", "%s", buf);
	cvm_cert_serial(ch->certs[0], buf, sizeof(buf));
	out_sanitize(buf, buf, sizeof(buf));
	out_field(stdout, "  ", "serial", "%s", buf);
	out_time(cvm_cert_not_before(ch->certs[0]), t1);
	out_time(cvm_cert_not_after(ch->certs[0]), t2);
	out_field(stdout, "  ", "validity", "%s to %s", t1, t2);
}

static void chain_text(const struct chain *ch)
{
	char subj[512], iss[512];

	if (ch->count < 2)
		return;
	printf("chain (not verified):\n");
	for (size_t i = 1; i < ch->count; i++) {
		uint32_t ku = 0;
		bool has_ku = cvm_cert_key_usage(ch->certs[i], &ku);

		cvm_cert_subject(ch->certs[i], subj, sizeof(subj));
		out_sanitize(subj, subj, sizeof(subj));
		cvm_cert_issuer(ch->certs[i], iss, sizeof(iss));
		out_sanitize(iss, iss, sizeof(iss));
		printf("  [%zu] %s (issuer %s)%s%s\n", i, subj, iss,
		       cvm_cert_claims_ca(ch->certs[i]) ? ", CA" : "",
		       cvm_cert_claims_ca(ch->certs[i]) && has_ku && (ku & CVM_KU_KEY_CERT_SIGN) == 0
		           ? ", keyUsage lacks keyCertSign"
		           : "");
	}
}

/* ---- dstack's 1.9 app info ------------------------------------------------- */

/* The library checked the extension's shape (cvm_ratls_parse): rmp_serde's
 * array form of AppInfo, 8 byte strings (bin, or arrays of byte-sized
 * integers) and optionally init_script_hashes (nil or byte strings). It is
 * read again here with the bounded reader, only to print it. */
#define APP_INFO_FIELD_MAX 4096u
static const char *const app_info_names[] = {"app_id",        "compose_hash",     "instance_id",
                                             "device_id",     "mr_system",        "mr_aggregated",
                                             "os_image_hash", "key_provider_info"};

static bool mp_array_len(struct cvm_rd *r, uint32_t *n)
{
	uint16_t n16;
	uint8_t t;

	if (!cvm_rd_u8(r, &t))
		return false;
	if ((t & 0xf0) == 0x90) {
		*n = t & 0x0fu;
		return true;
	}
	if (t == 0xdc) {
		if (!cvm_rd_u16be(r, &n16))
			return false;
		*n = n16;
		return true;
	}
	return t == 0xdd && cvm_rd_u32be(r, n);
}

/* mp_byte_string reads bin 8/16/32, or an array of integers 0..255, of at
 * most `cap` bytes into `out`. */
static bool mp_byte_string(struct cvm_rd *r, uint8_t *out, size_t cap, size_t *len)
{
	const uint8_t *p = NULL;
	uint32_t n = 0;
	uint16_t n16;
	uint8_t t, b;

	if (!cvm_rd_peek_u8(r, &t))
		return false;
	if (t == 0xc4 || t == 0xc5 || t == 0xc6) {
		(void)cvm_rd_u8(r, &t);
		if (t == 0xc4 && cvm_rd_u8(r, &b))
			n = b;
		else if (t == 0xc5 && cvm_rd_u16be(r, &n16))
			n = n16;
		else if (t != 0xc6 || !cvm_rd_u32be(r, &n))
			return false;
		if (n > cap || !cvm_rd_bytes(r, &p, n))
			return false;
		if (n != 0)
			memcpy(out, p, n);
		*len = n;
		return true;
	}
	if (!mp_array_len(r, &n) || n > cap)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		if (!cvm_rd_u8(r, &t))
			return false;
		if (t == 0xcc) {
			if (!cvm_rd_u8(r, &t))
				return false;
		} else if (t > 0x7f) {
			return false;
		}
		out[i] = t;
	}
	*len = n;
	return true;
}

/* json_app_info decodes the 1.9 extension into {app_id: hex, ...,
 * init_script_hashes: [hex] or null}, with "error" naming where it stopped
 * when it cannot; NULL when out of memory. */
static json_t *json_app_info(const uint8_t *buf, size_t len)
{
	uint8_t *field = malloc(APP_INFO_FIELD_MAX);
	json_t *o = json_object(), *hashes = NULL;
	struct cvm_rd r;
	uint32_t n = 0, count = 0;
	size_t flen = 0;
	uint8_t t;
	int bad = 0;

	if (field == NULL || o == NULL) {
		free(field);
		json_decref(o);
		return NULL;
	}
	cvm_rd_init(&r, buf, len);
	if (!mp_array_len(&r, &n) || (n != 8 && n != 9)) {
		bad |= out_jset_str(o, "error", "not an array of 8 or 9 fields");
		goto out;
	}
	for (size_t i = 0; i < 8; i++) {
		if (!mp_byte_string(&r, field, APP_INFO_FIELD_MAX, &flen)) {
			bad |= out_jset_str(o, "error", app_info_names[i]);
			goto out;
		}
		bad |= out_jset_hex(o, app_info_names[i], field, flen);
		if (i == 7 && flen != 0 && printable_bytes(field, flen))
			bad |= out_jset(o, "key_provider_info_text", json_stringn((const char *)field, flen));
	}
	if (n == 9 && cvm_rd_peek_u8(&r, &t) && t == 0xc0) {
		(void)cvm_rd_u8(&r, &t);
		bad |= out_jset(o, "init_script_hashes", json_null());
	} else if (n == 9) {
		hashes = json_array();
		if (hashes == NULL || !mp_array_len(&r, &count)) {
			json_decref(hashes);
			bad |= out_jset_str(o, "error", "init_script_hashes");
			goto out;
		}
		for (uint32_t i = 0; i < count; i++) {
			if (!mp_byte_string(&r, field, APP_INFO_FIELD_MAX, &flen) ||
			    json_array_append_new(hashes, out_json_hex(field, flen)) != 0) {
				json_decref(hashes);
				bad |= out_jset_str(o, "error", "init_script_hashes");
				goto out;
			}
		}
		bad |= out_jset(o, "init_script_hashes", hashes);
	}
	if (!cvm_rd_empty(&r))
		bad |= out_jset_str(o, "error", "bytes after the last field");
out:
	free(field);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void app_info_text(const struct cvm_ratls_info *info)
{
	json_t *a = json_app_info(info->app_info, info->app_info_len);
	const char *k;
	json_t *v;

	out_field(stdout, "  ", "app info (1.9)", "%zu bytes of MessagePack%s", info->app_info_len,
	          a == NULL ? " (out of memory)" : "");
	json_object_foreach(a, k, v)
	{
		if (json_is_string(v)) {
			out_field(stdout, "    ", k, "%s",
			          json_string_length(v) != 0 ? json_string_value(v) : "(empty)");
		} else if (json_is_array(v)) {
			out_field(stdout, "    ", k, "%zu hashes", json_array_size(v));
			for (size_t i = 0; i < json_array_size(v); i++)
				out_field(stdout, "      ", "", "%s",
				          json_string_value(json_array_get(v, i)));
		} else {
			out_field(stdout, "    ", k, "none");
		}
	}
	json_decref(a);
}

static void show_text(const char *path, const struct chain *ch, const struct cvm_ratls_info *info,
                      const struct shown *s)
{
	char buf[1024];

	printf("certificate: RA-TLS profile %s, TEE %s", cvm_ratls_profile_name(info->profile),
	       cvm_ratls_tee_name(info->tee));
	if (s->has_evidence)
		printf(", report data %s the certificate's key", info->binding ? "binds" : "does NOT bind");
	else
		printf(", no evidence");
	printf("\n");
	if (cli_opts.quiet)
		return;
	printf("file: %s (%zu bytes, %s, %zu certificate%s%s)\n", path, ch->file_len,
	       ch->is_pem ? "PEM" : "DER", ch->count, ch->count == 1 ? "" : "s",
	       ch->count > 1 ? "; the first is shown" : "");
	printf("note: parsed only; no signature, chain or evidence check was made (use 'cvm cert ratls "
	       "verify')\n");
	cert_header_text(ch);
	if (info->profile == CVM_RATLS_PROFILE_NONE) {
		chain_text(ch);
		return;
	}
	printf("extensions:\n");
	if (info->quote_len != 0)
		out_field(stdout, "  ", "quote", "%zu bytes%s", info->quote_len,
		          s->quote_parsed ? (s->quote.tee == CVM_TEE_TDX ? ", TDX quote" : ", SGX quote")
		          : s->snp_parsed ? ", SEV-SNP report"
		                          : ", NOT parsed");
	if (s->quote_parsed)
		out_field(stdout, "  ", "quote header",
		          "version %u, att_key_type %u, tee_type 0x%08x, qe_svn %u, pce_svn %u",
		          s->quote.version, s->quote.att_key_type, (unsigned)s->quote.tee_type,
		          s->quote.qe_svn, s->quote.pce_svn);
	if (info->profile == CVM_RATLS_PROFILE_COSMIAN && cosmian_sev_format_name(info->cosmian_sev_format))
		sev_certs_text(info);
	if (info->event_log_json != NULL) {
		legacy_log_text(s, buf, sizeof(buf));
		out_field(stdout, "  ", "event log (1.2)", "%s", buf);
	}
	if (info->has_app_id)
		out_field_hex(stdout, "  ", "app id (1.3)", info->app_id, sizeof(info->app_id));
	if (info->usage[0] != '\0') {
		out_sanitize(info->usage, buf, sizeof(buf));
		out_field(stdout, "  ", "usage (1.4)", "%s", buf);
	}
	if (info->attestation != NULL) {
		printf("  attestation (1.8):\n");
		cli_va_text(stdout, "    ", info->attestation, &s->va);
	}
	if (info->app_info != NULL)
		app_info_text(info);
	printf("binding:\n");
	out_field_hex(stdout, "  ", "report_data", info->report_data, sizeof(info->report_data));
	out_field_hex(stdout, "  ", "expected", info->expected_report_data,
	              sizeof(info->expected_report_data));
	out_field(stdout, "  ", "result", "%s (%s)",
	          info->binding ? "binds the key" : "does NOT bind the key",
	          info->profile == CVM_RATLS_PROFILE_DSTACK ? "SHA-512(\"ratls-cert:\" || SPKI DER)"
	                                                    : "SHA-256(public key), first 32 bytes");
	if (s->quote_parsed) {
		printf("measurements (%s quote v%u, %s):\n", out_tee_name(&s->quote), s->quote.version,
		       out_body_name(&s->quote));
		if (s->quote.tee == CVM_TEE_TDX)
			out_tdx_report_text(stdout, "  ", &s->quote.body.td);
		else
			out_sgx_report_text(stdout, "  ", &s->quote.body.sgx);
	} else if (s->snp_parsed) {
		printf("measurements (SEV-SNP report v%u):\n", s->snp.version);
		out_snp_report_text(stdout, "  ", &s->snp);
	}
	chain_text(ch);
}

static json_t *json_chain(const struct chain *ch)
{
	json_t *a = json_array();
	char buf[1024], t[32];

	for (size_t i = 0; a != NULL && i < ch->count; i++) {
		json_t *o = json_object();
		uint32_t ku = 0;
		bool has_ku = cvm_cert_key_usage(ch->certs[i], &ku);
		int bad = 0;

		if (o == NULL) {
			json_decref(a);
			return NULL;
		}
		cvm_cert_subject(ch->certs[i], buf, sizeof(buf));
		bad |= out_jset_str(o, "subject", buf);
		cvm_cert_issuer(ch->certs[i], buf, sizeof(buf));
		bad |= out_jset_str(o, "issuer", buf);
		out_time(cvm_cert_not_before(ch->certs[i]), t);
		bad |= out_jset_str(o, "not_before", t);
		out_time(cvm_cert_not_after(ch->certs[i]), t);
		bad |= out_jset_str(o, "not_after", t);
		bad |= out_jset(o, "claims_ca", json_boolean(cvm_cert_claims_ca(ch->certs[i])));
		bad |= out_jset(o, "key_cert_sign",
		                has_ku ? json_boolean((ku & CVM_KU_KEY_CERT_SIGN) != 0) : json_null());
		if (bad != 0 || json_array_append_new(a, o) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *json_legacy_log(const struct shown *s)
{
	json_t *o = json_object(), *regs = json_object();
	int bad = 0;

	if (o == NULL || regs == NULL) {
		json_decref(o);
		json_decref(regs);
		return NULL;
	}
	bad |= out_jset(o, "parsed", json_boolean(s->log_parsed));
	bad |= out_jset_str(o, "error", s->log_parsed ? NULL : s->log_err);
	bad |= out_jset_int(o, "event_count", (long long)s->log_events);
	for (unsigned i = 0; i < 4; i++) {
		static const char *const names[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
		json_t *r = json_object();

		if (r == NULL) {
			bad = -1;
			break;
		}
		bad |= out_jset_str(r, "state",
		                    (s->log_covered & (1u << i)) == 0    ? "no_events"
		                    : !s->quote_parsed                   ? "no_quote"
		                    : (s->log_mismatch & (1u << i)) != 0 ? "differs"
		                                                         : "matches");
		bad |= out_jset_hex(r, "replayed", s->log_replay[i], 48);
		bad |= out_jset(regs, names[i], r);
	}
	bad |= out_jset(o, "registers", regs);
	/* as cvm_va_replay_ok: RTMR3 must replay; RTMR0..2 are shown */
	bad |= out_jset(o, "ok",
	                json_boolean(s->log_parsed && s->quote_parsed && (s->log_mismatch & 8u) == 0 &&
	                             (s->log_covered & 8u) != 0));
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *json_extensions(const struct cvm_ratls_info *info, const struct shown *s)
{
	json_t *o = json_object(), *att;
	int bad = 0;

	if (o == NULL)
		return NULL;
	bad |= out_jset(o, "quote_len",
	                info->quote_len != 0 ? json_integer((json_int_t)info->quote_len) : json_null());
	bad |= out_jset(o, "event_log", info->event_log_json != NULL ? json_legacy_log(s) : json_null());
	bad |= out_jset(o, "app_id",
	                info->has_app_id ? out_json_hex(info->app_id, sizeof(info->app_id)) : json_null());
	bad |= out_jset_str(o, "usage", info->usage[0] != '\0' ? info->usage : NULL);
	if (info->attestation != NULL) {
		att = json_object();
		if (att == NULL || cli_va_json(att, info->attestation, &s->va) != 0) {
			json_decref(att);
			json_decref(o);
			return NULL;
		}
		bad |= out_jset(o, "attestation", att);
	} else {
		bad |= out_jset(o, "attestation", json_null());
	}
	bad |= out_jset(o, "app_info",
	                info->app_info != NULL ? json_app_info(info->app_info, info->app_info_len)
	                                       : json_null());
	if (info->profile == CVM_RATLS_PROFILE_COSMIAN) {
		bad |=
		    out_jset_str(o, "cosmian_sev_format", cosmian_sev_format_name(info->cosmian_sev_format));
		bad |= out_jset_hex(o, "cosmian_extra", info->cosmian_extra, sizeof(info->cosmian_extra));
	}
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int show_json(const struct chain *ch, const struct cvm_ratls_info *info, const struct shown *s)
{
	json_t *o = json_object();
	char buf[1024], t[32];
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_jset(o, "verified", json_false());
	bad |= out_jset_str(o, "note", "parsed only; no signature, chain or evidence check was made");
	bad |= out_jset_int(o, "file_len", (long long)ch->file_len);
	bad |= out_jset_str(o, "format", ch->is_pem ? "pem" : "der");
	bad |= out_jset_int(o, "certificate_count", (long long)ch->count);
	cvm_cert_subject(ch->certs[0], buf, sizeof(buf));
	bad |= out_jset_str(o, "subject", buf);
	cvm_cert_issuer(ch->certs[0], buf, sizeof(buf));
	bad |= out_jset_str(o, "issuer", buf);
	cvm_cert_serial(ch->certs[0], buf, sizeof(buf));
	bad |= out_jset_str(o, "serial", buf);
	out_time(cvm_cert_not_before(ch->certs[0]), t);
	bad |= out_jset_str(o, "not_before", t);
	out_time(cvm_cert_not_after(ch->certs[0]), t);
	bad |= out_jset_str(o, "not_after", t);
	bad |= out_jset_str(o, "profile",
	                    info->profile == CVM_RATLS_PROFILE_NONE ? NULL
	                                                            : cvm_ratls_profile_name(info->profile));
	bad |= out_jset_str(o, "tee", info->tee == CVM_RATLS_TEE_NONE ? NULL : cvm_ratls_tee_name(info->tee));
	/* binding is absent when the certificate carries no evidence. */
	if (s->has_evidence) {
		bad |= out_jset(o, "binding", json_boolean(info->binding));
		bad |= out_jset_hex(o, "expected_report_data", info->expected_report_data,
		                    sizeof(info->expected_report_data));
	}
	if (info->profile != CVM_RATLS_PROFILE_NONE)
		bad |= out_jset(o, "extensions", json_extensions(info, s));
	/* The measurements under the names of cvm quote show --json. */
	if (s->quote_parsed) {
		json_t *hdr = json_object();

		if (hdr != NULL) {
			bad |= out_jset_int(hdr, "version", s->quote.version);
			bad |= out_jset_int(hdr, "att_key_type", s->quote.att_key_type);
			bad |= out_jset_int(hdr, "tee_type", s->quote.tee_type);
			bad |= out_jset_int(hdr, "qe_svn", s->quote.qe_svn);
			bad |= out_jset_int(hdr, "pce_svn", s->quote.pce_svn);
			bad |= out_jset_hex(hdr, "qe_vendor_id", s->quote.qe_vendor_id,
			                    sizeof(s->quote.qe_vendor_id));
			bad |= out_jset_hex(hdr, "user_data", s->quote.user_data, sizeof(s->quote.user_data));
		}
		bad |= out_jset(o, "header", hdr);
		bad |= out_jset_int(o, "quote_version", s->quote.version);
		bad |= out_jset_str(o, "body", out_body_name(&s->quote));
		bad |= out_json_body(o, &s->quote);
	} else if (s->snp_parsed) {
		bad |= out_json_snp_report(o, &s->snp);
	}
	bad |= out_jset(o, "chain", json_chain(ch));
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

int cmd_ratls_show(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_COMMON_LONGOPTS};
	struct cvm_ratls_info *info = NULL;
	struct shown *s = NULL;
	struct chain ch;
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
			usage_show(stdout);
			return CLI_EXIT_OK;
		}
		return bad_option(CMD_SHOW, c, argv);
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(CMD_SHOW, "%s; usage: cvm cert ratls show CERT [--json]",
		        argc - optind == 0 ? "no CERT given" : "more than one CERT given");
		return CLI_EXIT_USAGE;
	}
	rc = read_chain(CMD_SHOW, "certificate", argv[optind], &ch);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = parse_leaf(CMD_SHOW, argv[optind], &ch, &info);
	if (rc != CLI_EXIT_OK) {
		chain_free(&ch);
		return CLI_EXIT_ERROR;
	}
	s = malloc(sizeof(*s));
	if (s == NULL) {
		cli_err(CMD_SHOW, "out of memory");
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	decode_shown(info, s);
	if (cli_opts.json) {
		if (show_json(&ch, info, s) != 0) {
			cli_err(CMD_SHOW, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else {
		show_text(argv[optind], &ch, info, s);
	}
out:
	free(s);
	cvm_ratls_info_free(info);
	chain_free(&ch);
	return rc;
}

/* ---- verify --------------------------------------------------------------- */

struct verify_ctx {
	const char *collateral_dir;
	char collateral_sub[4096]; /* collateral_dir/tdx or /snp, when that is what it holds */
	const char *policy_path;
	const char *root_path;
	const char *ca_paths[CA_MAX];
	size_t ca_path_count;
	bool allow_legacy_ca;
	int64_t at;
	bool at_set;
	struct chain leaf;
	struct chain cas[CA_MAX];
	const uint8_t *ca_der[CA_MAX * 4];
	size_t ca_der_len[CA_MAX * 4];
	size_t ca_count;
	struct cvm_ratls_info *info;
	uint8_t *root;
	size_t root_len;
	struct cvm_policy policy;
	struct cvm_dcap_collateral *dcap;
	struct cvm_amd_collateral *amd;
	struct cvm_ratls_verifier *ver;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	bool checked; /* cvm_ratls_verifier_check ran */
	bool simulated;
	char reason[REASON_MAX];
};

static int verify_load(struct verify_ctx *v, const char *path)
{
	char perr[512], what[4352] = "";
	int r, rc;

	rc = read_chain(CMD_VERIFY, "certificate", path, &v->leaf);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = parse_leaf(CMD_VERIFY, path, &v->leaf, &v->info);
	if (rc != CLI_EXIT_OK)
		return rc;
	for (size_t i = 0; i < v->ca_path_count; i++) {
		rc = read_chain(CMD_VERIFY, "--ca certificate", v->ca_paths[i], &v->cas[i]);
		if (rc != CLI_EXIT_OK)
			return rc;
		for (size_t j = 0; j < v->cas[i].count; j++) {
			if (v->ca_count == sizeof(v->ca_der) / sizeof(v->ca_der[0])) {
				cli_err(CMD_VERIFY, "more than %zu --ca certificates", v->ca_count);
				return CLI_EXIT_USAGE;
			}
			v->ca_der[v->ca_count] = v->cas[i].der[j];
			v->ca_der_len[v->ca_count] = v->cas[i].der_len[j];
			v->ca_count++;
		}
	}
	cvm_policy_init(&v->policy);
	if (v->policy_path != NULL) {
		r = cvm_policy_load_file(v->policy_path, &v->policy, perr, sizeof(perr));
		if (r != CVM_OK) {
			cli_err(CMD_VERIFY, "policy file '%s': %s; fix it (see docs/policy.md)",
			        v->policy_path, perr);
			return CLI_EXIT_ERROR;
		}
	}
	if (v->root_path != NULL) {
		rc = cli_load_cert(CMD_VERIFY, "--root certificate", v->root_path, &v->root, &v->root_len);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (v->collateral_dir == NULL)
		return CLI_EXIT_OK;
	/* A folder with tdx/ and snp/ (a simulator's collateral/, what
	 * `cvm cert ratls fetch` takes) gives the kind the certificate needs. */
	if ((size_t)snprintf(v->collateral_sub, sizeof(v->collateral_sub), "%s/%s", v->collateral_dir,
	                     v->info->tee == CVM_RATLS_TEE_SNP ? "snp" : "tdx") < sizeof(v->collateral_sub) &&
	    access(v->collateral_sub, F_OK) == 0)
		v->collateral_dir = v->collateral_sub;
	if (v->info->tee == CVM_RATLS_TEE_SNP)
		r = cvm_amd_collateral_load_dir(v->collateral_dir, &v->amd, what, sizeof(what));
	else
		r = cvm_dcap_collateral_load_dir(v->collateral_dir, &v->dcap, what, sizeof(what));
	if (r != CVM_OK) {
		cli_err(CMD_VERIFY,
		        "cannot load %s collateral from '%s': %s; see 'cvm help quote' for the layout",
		        v->info->tee == CVM_RATLS_TEE_SNP ? "SEV-SNP" : "DCAP", v->collateral_dir,
		        what[0] != '\0' ? what : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static void verify_summary(const struct verify_ctx *v, char *buf, size_t cap)
{
	const struct cvm_ratls_verdict *d = &v->verdict;
	struct cvm_wr w;

	cvm_wr_init_text(&w, buf, cap);
	cvm_wr_fmt(&w, "%s, %s", cvm_ratls_profile_name(v->info->profile), cvm_ratls_tee_name(v->info->tee));
	if (!v->checked)
		return; /* the collateral stopped it: nothing else was checked */
	if (d->dcap.tcb_status != CVM_TCB_NONE)
		cvm_wr_fmt(&w, ", TCB %s", cvm_tcb_status_name(d->dcap.tcb_status));
	cvm_wr_fmt(&w, ", evidence %s", d->evidence_verified ? "verified" : "not verified");
	cvm_wr_fmt(&w, ", key %s", d->binding ? "bound" : "NOT bound");
	if (v->info->tee == CVM_RATLS_TEE_TDX)
		cvm_wr_fmt(&w, ", event log %s", d->replayed ? "replayed" : "not replayed");
	if (v->ca_count != 0 && d->chain_verified)
		cvm_wr_fmt(&w, ", chain to a --ca%s",
		           d->legacy_ca ? " (legacy CA without keyCertSign accepted)" : "");
	else if (v->ca_count != 0)
		cvm_wr_fmt(&w, ", chain NOT to a --ca%s",
		           d->legacy_ca ? " (a CA lacks keyCertSign; --allow-legacy-ca accepts that)" : "");
}

static int verify_json(const struct verify_ctx *v, int r)
{
	const struct cvm_ratls_verdict *d = &v->verdict;
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return -1;
	bad |= out_jset(o, "simulated", json_boolean(v->simulated));
	bad |= out_verdict_json(o, r == CVM_OK, v->reason, NULL);
	bad |= out_jset_int(o, "verify_at", v->at);
	bad |= out_jset_str(
	    o, "profile",
	    v->info->profile == CVM_RATLS_PROFILE_NONE ? NULL : cvm_ratls_profile_name(v->info->profile));
	bad |= out_jset_str(o, "tee",
	                    v->info->tee == CVM_RATLS_TEE_NONE ? NULL : cvm_ratls_tee_name(v->info->tee));
	bad |= out_jset(o, "evidence_verified", json_boolean(d->evidence_verified));
	bad |= out_jset(o, "binding", json_boolean(d->binding));
	bad |= out_jset(o, "replayed", json_boolean(d->replayed));
	bad |= out_jset(o, "chain_verified", json_boolean(d->chain_verified));
	bad |= out_jset(o, "legacy_ca", json_boolean(d->legacy_ca));
	bad |= out_jset(o, "system_key", json_boolean(d->system_key));
	bad |=
	    out_jset_str(o, "tcb_status",
	                 d->dcap.tcb_status != CVM_TCB_NONE ? cvm_tcb_status_name(d->dcap.tcb_status) : NULL);
	bad |= out_jset(o, "steps", out_json_steps(&v->rep));
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

int cmd_ratls_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"collateral", required_argument, NULL, OPT_COLLATERAL},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"at", required_argument, NULL, OPT_AT},
	    {"allow-legacy-ca", no_argument, NULL, OPT_ALLOW_LEGACY_CA},
	    CLI_COMMON_LONGOPTS,
	};
	struct cvm_ratls_verifier_opts o;
	struct verify_ctx *v;
	char sum[1024];
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
		case OPT_ROOT:
			v->root_path = optarg;
			break;
		case OPT_CA:
			if (v->ca_path_count == CA_MAX) {
				cli_err(CMD_VERIFY, "at most %u --ca options", CA_MAX);
				rc = CLI_EXIT_USAGE;
				goto out;
			}
			v->ca_paths[v->ca_path_count++] = optarg;
			break;
		case OPT_POLICY:
			v->policy_path = optarg;
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
		case OPT_ALLOW_LEGACY_CA:
			v->allow_legacy_ca = true;
			break;
		case 'h':
			usage_verify(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			rc = bad_option(CMD_VERIFY, c, argv);
			goto out;
		}
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(CMD_VERIFY, "%s; usage: cvm cert ratls verify CERT [options]",
		        argc - optind == 0 ? "no CERT given" : "more than one CERT given");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (!v->at_set)
		v->at = (int64_t)time(NULL);
	rc = verify_load(v, argv[optind]);
	if (rc != CLI_EXIT_OK) {
		if (rc == CLI_EXIT_REJECTED)
			printf("verdict: rejected: the certificate's RA-TLS extensions are malformed\n");
		goto out;
	}

	memset(&o, 0, sizeof(o));
	o.policy = &v->policy;
	o.dcap = v->dcap;
	o.amd = v->amd;
	if (v->root != NULL && v->info->tee == CVM_RATLS_TEE_SNP) {
		o.amd_root_der = v->root;
		o.amd_root_der_len = v->root_len;
	} else if (v->root != NULL) {
		o.intel_root_der = v->root;
		o.intel_root_der_len = v->root_len;
	}
	o.ca_der = v->ca_count != 0 ? v->ca_der : NULL;
	o.ca_der_len = v->ca_count != 0 ? v->ca_der_len : NULL;
	o.ca_count = v->ca_count;
	o.allow_legacy_ca = v->allow_legacy_ca;
	o.cache_entries = 1;
	cvm_report_init(&v->rep);
	r = cvm_ratls_verifier_new(&o, v->at, &v->ver);
	if (r != CVM_OK) {
		cvm_report_add(&v->rep, "collateral", false,
		               "the collateral in '%s' does not verify at %lld against %s: %s",
		               v->collateral_dir != NULL ? v->collateral_dir : "(none)", (long long)v->at,
		               v->root != NULL ? "the --root certificate"
		               : v->info->tee == CVM_RATLS_TEE_SNP
		                   ? "AMD's ARKs (a simulated platform needs --root)"
		                   : "Intel's root (a simulated platform needs --root)",
		               cvm_strerror(r));
	} else {
		v->checked = true;
		r = cvm_ratls_verifier_check(v->ver, v->leaf.der, v->leaf.der_len, v->leaf.count, v->at,
		                             &v->verdict, &v->rep);
	}
	/* A verification that ran and failed a step is a rejection, also when
	 * the library calls the missing collateral a caller's omission. */
	rc = r == CVM_E_INVAL && v->rep.failed != NULL ? CLI_EXIT_REJECTED : cli_exit_for(r);
	out_verdict_reason(&v->rep, r, v->reason, sizeof(v->reason));
	v->simulated = v->verdict.simulated || cvm_tee_is_simulated_root(v->root, v->root_len) ||
	               (v->info->tee != CVM_RATLS_TEE_SNP &&
	                cvm_tee_evidence_is_simulated(v->info->quote, v->info->quote_len, NULL, 0)) ||
	               out_amd_simulated(v->amd) || out_amd_simulated(&v->info->snp_certs);
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
	cvm_ratls_verifier_free(v->ver);
	cvm_dcap_collateral_free(v->dcap);
	cvm_amd_collateral_free(v->amd);
	cvm_ratls_info_free(v->info);
	for (size_t i = 0; i < CA_MAX; i++)
		chain_free(&v->cas[i]);
	chain_free(&v->leaf);
	free(v->root);
	free(v);
	return rc;
}

/* ---- make ----------------------------------------------------------------- */

/* struct events holds copies of the events of the logs read for make. */
struct events {
	struct cvm_va_event *ev;
	size_t count;
	size_t bytes;
};

static void events_free(struct events *e)
{
	for (size_t i = 0; i < e->count; i++) {
		free((void *)(uintptr_t)e->ev[i].digest);
		free((void *)(uintptr_t)e->ev[i].event);
		free((void *)(uintptr_t)e->ev[i].payload);
	}
	free(e->ev);
	memset(e, 0, sizeof(*e));
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n != 0 ? n : 1);

	if (d != NULL && n != 0)
		memcpy(d, p, n);
	return d;
}

/* events_add_log appends the events of the log in `buf` as dstack's
 * TdxEvent list has them: CCEL events with imr = MR index - 1 (MRTD's and
 * EV_NO_ACTION events dropped) and their SHA-384 digest; dstack JSON and
 * runtime logs as they are. */
static int events_add_log(const char *path, const uint8_t *buf, size_t len, struct events *e)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	enum cvm_evl_format fmt;
	bool has = true;
	int r, rc = CLI_EXIT_ERROR;

	if (cvm_evl_parser_new_mem(buf, len, CVM_EVL_AUTO, &p) != CVM_OK) {
		cli_err(CMD_MAKE, "out of memory");
		return CLI_EXIT_ERROR;
	}
	for (;;) {
		const uint8_t *digest = NULL;
		struct cvm_va_event *n;
		uint32_t imr;

		r = cvm_evl_parser_next(p, &ev, &has);
		if (r != CVM_OK) {
			char why[256];

			out_sanitize(cvm_evl_parser_err(p), why, sizeof(why));
			cli_err(CMD_MAKE, "event log '%s': %s (%s)", path, why, cvm_strerror(r));
			goto out;
		}
		if (!has)
			break;
		fmt = cvm_evl_parser_format(p);
		if (fmt != CVM_EVL_CCEL && fmt != CVM_EVL_DSTACK && fmt != CVM_EVL_DSTACK_JSON) {
			cli_err(CMD_MAKE,
			        "event log '%s' is a %s log, not a TDX one: give a CCEL, a dstack JSON event "
			        "log or a runtime_events.log",
			        path, cvm_evl_format_name(fmt));
			goto out;
		}
		if (ev.is_header || ev.type == CVM_EV_NO_ACTION)
			continue;
		if (fmt == CVM_EVL_CCEL) {
			if (ev.reg == 0)
				continue; /* MRTD: measured by the TDX module, not replayed */
			imr = ev.reg - 1;
		} else {
			imr = ev.reg;
		}
		for (size_t i = 0; i < ev.digest_count; i++)
			if (ev.digests[i].alg == SHA384_ALG && ev.digests[i].len == 48)
				digest = ev.digests[i].p;
		if (digest == NULL || imr > 3) {
			cli_err(CMD_MAKE,
			        "event log '%s': event %" PRIu64 " has no SHA-384 digest of RTMR0..3", path,
			        ev.seq);
			goto out;
		}
		if (e->count == EVENTS_MAX || e->bytes + ev.data.len > EVENT_BYTES_MAX) {
			cli_err(CMD_MAKE, "the event logs hold more than %u events or %zu bytes", EVENTS_MAX,
			        EVENT_BYTES_MAX);
			goto out;
		}
		if (e->count % 64 == 0) {
			n = calloc(e->count + 64, sizeof(*n));
			if (n == NULL)
				goto nomem;
			if (e->count != 0)
				memcpy(n, e->ev, e->count * sizeof(*n));
			free(e->ev);
			e->ev = n;
		}
		n = &e->ev[e->count];
		n->imr = imr;
		n->event_type = ev.type;
		n->digest = dup_bytes(digest, 48);
		n->digest_len = 48;
		n->event = (const char *)dup_bytes((const uint8_t *)(ev.name != NULL ? ev.name : ""),
		                                   strlen(ev.name != NULL ? ev.name : "") + 1);
		n->payload = dup_bytes(ev.data.p, ev.data.len);
		n->payload_len = ev.data.len;
		e->count++;
		e->bytes += ev.data.len;
		if (n->digest == NULL || n->event == NULL || n->payload == NULL)
			goto nomem;
	}
	rc = CLI_EXIT_OK;
	goto out;
nomem:
	cli_err(CMD_MAKE, "out of memory");
out:
	cvm_evl_parser_free(p);
	return rc;
}

static int events_add_file(const char *path, bool optional, struct events *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (optional && access(path, R_OK) != 0)
		return CLI_EXIT_OK;
	rc = cli_read_file(CMD_MAKE, "event log", path, 64u << 20, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = events_add_log(path, buf, len, e);
	free(buf);
	return rc;
}

struct make_opts {
	enum cvm_ratls_profile profile;
	const char *sim_dir;
	bool platform_set;
	enum cvm_tee_platform platform;
	bool tee_auto;
	const char *subject;
	const char *sans[CVM_CERT_ALT_NAMES_MAX];
	size_t san_count;
	unsigned hours;
	bool has_app_id;
	uint8_t app_id[20];
	const char *usage;
	const char *event_logs[EVENT_LOGS_MAX];
	size_t event_log_count;
	const char *key_out;
	const char *cert_out;
};

static int make_parse(int argc, char **argv, struct make_opts *m)
{
	static const struct option longopts[] = {
	    {"profile", required_argument, NULL, OPT_PROFILE},
	    {"sim", required_argument, NULL, OPT_SIM},
	    {"platform", required_argument, NULL, OPT_PLATFORM},
	    {"tee", required_argument, NULL, OPT_TEE},
	    {"subject", required_argument, NULL, OPT_SUBJECT},
	    {"san", required_argument, NULL, OPT_SAN},
	    {"hours", required_argument, NULL, OPT_HOURS},
	    {"app-id", required_argument, NULL, OPT_APP_ID},
	    {"usage", required_argument, NULL, OPT_USAGE},
	    {"event-log", required_argument, NULL, OPT_EVENT_LOG},
	    {"key-out", required_argument, NULL, OPT_KEY_OUT},
	    {"cert-out", required_argument, NULL, OPT_CERT_OUT},
	    CLI_COMMON_LONGOPTS,
	};
	char *end = NULL;
	unsigned long h;
	int c;

	memset(m, 0, sizeof(*m));
	m->hours = CVM_RATLS_LIFETIME_DEFAULT / 3600;
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_PROFILE:
			if (strcmp(optarg, "dstack") == 0) {
				m->profile = CVM_RATLS_PROFILE_DSTACK;
			} else if (strcmp(optarg, "cosmian") == 0) {
				m->profile = CVM_RATLS_PROFILE_COSMIAN;
			} else {
				cli_err(CMD_MAKE, "--profile '%s': expected dstack or cosmian", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_SIM:
			m->sim_dir = optarg;
			break;
		case OPT_PLATFORM:
			if (strcmp(optarg, "tdx") == 0) {
				m->platform = CVM_TEE_PLATFORM_TDX;
			} else if (strcmp(optarg, "snp") == 0) {
				m->platform = CVM_TEE_PLATFORM_SNP;
			} else {
				cli_err(CMD_MAKE, "--platform '%s': expected tdx or snp", optarg);
				return CLI_EXIT_USAGE;
			}
			m->platform_set = true;
			break;
		case OPT_TEE:
			if (strcmp(optarg, "auto") != 0) {
				cli_err(CMD_MAKE, "--tee '%s': expected auto (the TEE of this machine)",
				        optarg);
				return CLI_EXIT_USAGE;
			}
			m->tee_auto = true;
			break;
		case OPT_SUBJECT:
			m->subject = optarg;
			break;
		case OPT_SAN:
			if (m->san_count == CVM_CERT_ALT_NAMES_MAX) {
				cli_err(CMD_MAKE, "at most %d --san names", CVM_CERT_ALT_NAMES_MAX);
				return CLI_EXIT_USAGE;
			}
			m->sans[m->san_count++] = optarg;
			break;
		case OPT_HOURS:
			errno = 0;
			h = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || errno != 0 || *end != '\0' || h == 0 ||
			    h > HOURS_MAX) {
				cli_err(CMD_MAKE, "--hours '%s': expected a number of hours from 1 to %u",
				        optarg, HOURS_MAX);
				return CLI_EXIT_USAGE;
			}
			m->hours = (unsigned)h;
			break;
		case OPT_APP_ID:
			if (cvm_hex_decode_exact(optarg, strlen(optarg), m->app_id, sizeof(m->app_id)) !=
			    CVM_OK) {
				cli_err(CMD_MAKE, "--app-id '%s': expected 40 hex digits (20 bytes)", optarg);
				return CLI_EXIT_USAGE;
			}
			m->has_app_id = true;
			break;
		case OPT_USAGE:
			if (strlen(optarg) == 0 ||
			    strlen(optarg) >= sizeof(((struct cvm_ratls_info *)0)->usage)) {
				cli_err(CMD_MAKE, "--usage: expected 1 to 63 characters");
				return CLI_EXIT_USAGE;
			}
			m->usage = optarg;
			break;
		case OPT_EVENT_LOG:
			if (m->event_log_count == EVENT_LOGS_MAX) {
				cli_err(CMD_MAKE, "at most %u --event-log files", EVENT_LOGS_MAX);
				return CLI_EXIT_USAGE;
			}
			m->event_logs[m->event_log_count++] = optarg;
			break;
		case OPT_KEY_OUT:
			m->key_out = optarg;
			break;
		case OPT_CERT_OUT:
			m->cert_out = optarg;
			break;
		case 'h':
			usage_make(stdout);
			return -1;
		default:
			return bad_option(CMD_MAKE, c, argv);
		}
	}
	cli_apply_verbosity();
	if (argc != optind) {
		cli_err(CMD_MAKE, "unexpected argument '%s'; see 'cvm cert ratls make --help'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (m->profile == CVM_RATLS_PROFILE_NONE || m->subject == NULL || m->key_out == NULL ||
	    m->cert_out == NULL) {
		cli_err(CMD_MAKE,
		        "--profile, --subject, --key-out and --cert-out are required; see 'cvm cert "
		        "ratls make --help'");
		return CLI_EXIT_USAGE;
	}
	if ((m->sim_dir != NULL) == m->tee_auto) {
		cli_err(CMD_MAKE,
		        "give either --sim DIR --platform tdx|snp (the simulator) or --tee auto (this "
		        "machine's TEE)");
		return CLI_EXIT_USAGE;
	}
	if (m->sim_dir != NULL && !m->platform_set) {
		cli_err(CMD_MAKE, "--sim DIR needs --platform tdx or --platform snp");
		return CLI_EXIT_USAGE;
	}
	if (m->sim_dir == NULL && m->platform_set) {
		cli_err(CMD_MAKE, "--platform goes with --sim; --tee auto finds the platform itself");
		return CLI_EXIT_USAGE;
	}
	if (m->profile == CVM_RATLS_PROFILE_COSMIAN && (m->has_app_id || m->usage != NULL)) {
		cli_err(CMD_MAKE, "--app-id and --usage are dstack extensions; the cosmian profile has none");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static int make_events(const struct make_opts *m, enum cvm_tee_platform platform, struct events *e)
{
	char path[4096];
	int rc = CLI_EXIT_OK;

	if (platform != CVM_TEE_PLATFORM_TDX) {
		if (m->event_log_count != 0) {
			cli_err(CMD_MAKE,
			        "--event-log: an SEV-SNP guest has no RTMRs, so no event log to carry");
			return CLI_EXIT_USAGE;
		}
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < m->event_log_count && rc == CLI_EXIT_OK; i++)
		rc = events_add_file(m->event_logs[i], false, e);
	if (rc != CLI_EXIT_OK || m->event_log_count != 0)
		return rc;
	if (m->sim_dir != NULL) {
		if ((size_t)snprintf(path, sizeof(path), "%s/agent/runtime_events.log", m->sim_dir) >=
		    sizeof(path)) {
			cli_err(CMD_MAKE, "--sim: the path is too long");
			return CLI_EXIT_USAGE;
		}
		return events_add_file(path, true, e);
	}
	rc = events_add_file("/sys/firmware/acpi/tables/data/CCEL", true, e);
	if (rc == CLI_EXIT_OK)
		rc = events_add_file("/run/log/dstack/runtime_events.log", true, e);
	return rc;
}

/* write_key creates the key file `path` (never replacing one) in its folder. */
static int write_key(const char *path, const struct cvm_secret *pem, bool *created, char *err, size_t err_len)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int dfd, r;

	*created = false;
	if (slash == NULL) {
		(void)snprintf(dir, sizeof(dir), ".");
	} else if ((size_t)(slash - path) >= sizeof(dir)) {
		(void)snprintf(err, err_len, "the path is too long");
		return CVM_E_INVAL;
	} else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		if (dir[0] == '\0')
			(void)snprintf(dir, sizeof(dir), "/");
	}
	if (slash != NULL && slash[1] == '\0') {
		(void)snprintf(err, err_len, "'%s' names a folder, not a file", path);
		return CVM_E_INVAL;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		(void)snprintf(err, err_len, "cannot open its folder: %s", strerror(errno));
		return CVM_E_SYSTEM;
	}
	r = cvm_file_create_key(dfd, slash != NULL ? slash + 1 : path, pem->p, pem->len, created, err,
	                        err_len);
	(void)close(dfd);
	return r;
}

static enum cvm_ratls_tee ratls_tee(enum cvm_tee_platform p)
{
	return p == CVM_TEE_PLATFORM_SNP ? CVM_RATLS_TEE_SNP : CVM_RATLS_TEE_TDX;
}

int cmd_ratls_make(int argc, char **argv)
{
	struct make_opts m;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_info ti;
	struct cvm_tee_evidence ev;
	struct cvm_p256_keypair *key = NULL;
	struct cvm_amd_collateral *snp_certs = NULL;
	struct cvm_secret *key_pem = NULL;
	struct cvm_ratls_make_opts o;
	struct cvm_ratls_evidence rev;
	struct events evs;
	struct stat st;
	uint8_t rd[64];
	char *pem = NULL, err[512] = "", nb[32], na[32], path[4096];
	size_t pem_len = 0;
	bool created = false;
	int64_t now;
	int r, rc;

	memset(&ev, 0, sizeof(ev));
	memset(&evs, 0, sizeof(evs));
	rc = make_parse(argc, argv, &m);
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	rc = CLI_EXIT_ERROR;
	/* Fail before quoting when the key's place is taken: a key file is
	 * never replaced (cvm_file_create_key checks again when it writes). */
	if (lstat(m.key_out, &st) == 0) {
		cli_err(CMD_MAKE,
		        "--key-out '%s' exists; cvm never replaces a key file: remove it or choose another",
		        m.key_out);
		return CLI_EXIT_ERROR;
	}
	if (m.sim_dir != NULL)
		r = cvm_tee_open_sim(m.sim_dir, m.platform, &tee);
	else
		r = cvm_tee_detect(NULL, &tee);
	if (r != CVM_OK) {
		if (m.sim_dir != NULL)
			cli_err(CMD_MAKE,
			        "cannot open the simulated %s platform in '%s': %s (is it a 'cvm sim init' "
			        "folder%s?)",
			        m.platform == CVM_TEE_PLATFORM_SNP ? "SEV-SNP" : "TDX", m.sim_dir,
			        cvm_strerror(r),
			        m.platform == CVM_TEE_PLATFORM_SNP ? " with an SEV-SNP half" : "");
		else
			cli_err(CMD_MAKE,
			        "no TEE found on this machine (%s): use --sim DIR for the simulator",
			        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	cvm_tee_info(tee, &ti);
	rc = make_events(&m, ti.platform, &evs);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	if (ti.platform == CVM_TEE_PLATFORM_SNP && m.sim_dir != NULL &&
	    m.profile == CVM_RATLS_PROFILE_COSMIAN) {
		/* Cosmian's SEV extension carries VCEK, ASK and ARK. */
		if ((size_t)snprintf(path, sizeof(path), "%s/collateral/snp", m.sim_dir) >= sizeof(path) ||
		    cvm_amd_collateral_load_dir(path, &snp_certs, err, sizeof(err)) != CVM_OK) {
			cli_err(CMD_MAKE, "cannot read the simulator's AMD chain: %s", err);
			goto out;
		}
	}
	r = cvm_p256_keypair_generate(&key);
	if (r == CVM_OK)
		r = cvm_ratls_report_data(m.profile, key, NULL, rd);
	if (r != CVM_OK) {
		cli_err(CMD_MAKE, "cannot make the key: %s", cvm_strerror(r));
		goto out;
	}
	r = cvm_tee_quote(tee, rd, &ev);
	if (r != CVM_OK) {
		cli_err(CMD_MAKE, "the TEE gave no evidence: %s",
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}

	memset(&rev, 0, sizeof(rev));
	rev.tee = ratls_tee(ti.platform);
	rev.quote = ev.data;
	rev.quote_len = ev.data_len;
	rev.snp_certs = snp_certs;
	rev.events = evs.ev;
	rev.event_count = evs.count;
	now = (int64_t)time(NULL);
	memset(&o, 0, sizeof(o));
	o.profile = m.profile;
	o.common_name = m.subject;
	o.alt_names = m.sans;
	o.alt_name_count = m.san_count;
	o.not_before = now - 300; /* some slack for the peers' clocks */
	o.not_after = now + (int64_t)m.hours * 3600;
	o.server_auth = true;
	o.client_auth = true;
	o.legacy_tdx = m.profile == CVM_RATLS_PROFILE_DSTACK && ti.platform == CVM_TEE_PLATFORM_TDX;
	o.app_id = m.has_app_id ? m.app_id : NULL;
	o.usage = m.usage;
	r = cvm_ratls_make(&o, key, &rev, NULL, NULL, &pem, &pem_len);
	if (r != CVM_OK) {
		cli_err(CMD_MAKE, "cannot make the certificate: %s", cvm_strerror(r));
		goto out;
	}
	r = cvm_p256_keypair_pkcs8_pem(key, &key_pem);
	if (r != CVM_OK) {
		cli_err(CMD_MAKE, "cannot encode the key: %s", cvm_strerror(r));
		goto out;
	}
	r = write_key(m.key_out, key_pem, &created, err, sizeof(err));
	if (r != CVM_OK || !created) {
		cli_err(CMD_MAKE, "cannot write the key to '%s': %s", m.key_out,
		        r != CVM_OK ? err : "a file of that name appeared meanwhile; it was left as it is");
		goto out;
	}
	r = cvm_file_write(m.cert_out, pem, pem_len, 0644);
	if (r != CVM_OK) {
		cli_err(CMD_MAKE, "cannot write the certificate to '%s': %s", m.cert_out,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	rc = CLI_EXIT_OK;
	out_time(o.not_before, nb);
	out_time(o.not_after, na);
	if (cli_opts.json) {
		json_t *j = json_object();
		int bad = j == NULL ? -1 : 0;

		if (j != NULL) {
			bad |= out_jset(j, "simulated", json_boolean(ti.is_simulated));
			bad |= out_jset_str(j, "profile", cvm_ratls_profile_name(m.profile));
			bad |= out_jset_str(j, "tee", cvm_ratls_tee_name(rev.tee));
			bad |= out_jset_int(j, "quote_len", (long long)ev.data_len);
			bad |= out_jset_int(j, "event_count", (long long)evs.count);
			bad |= out_jset_str(j, "not_before", nb);
			bad |= out_jset_str(j, "not_after", na);
			bad |= out_jset_str(j, "key", m.key_out);
			bad |= out_jset_str(j, "certificate", m.cert_out);
			if (bad == 0)
				bad = out_json_print(j);
			json_decref(j);
		}
		if (bad != 0) {
			cli_err(CMD_MAKE, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else {
		if (ti.is_simulated)
			printf("%s\n", CVM_TEE_SIMULATED_BANNER);
		printf("made an RA-TLS certificate: profile %s, TEE %s, %zu-byte %s, %zu events, valid %s to "
		       "%s\n",
		       cvm_ratls_profile_name(m.profile), cvm_ratls_tee_name(rev.tee), ev.data_len,
		       ti.platform == CVM_TEE_PLATFORM_SNP ? "report" : "quote", evs.count, nb, na);
		if (!cli_opts.quiet) {
			printf("key: %s (PKCS#8 PEM, mode 0600)\n", m.key_out);
			printf("certificate: %s\n", m.cert_out);
		}
	}
out:
	cvm_secret_free(key_pem);
	free(pem);
	cvm_p256_keypair_free(key);
	cvm_tee_evidence_cleanup(&ev);
	cvm_amd_collateral_free(snp_certs);
	events_free(&evs);
	cvm_tee_free(tee);
	cvm_wipe(rd, sizeof(rd));
	return rc;
}
