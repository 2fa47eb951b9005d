/* cvm kms audit: the KMS audit trail (lib/audit), offline.
 *
 *   cvm kms audit verify DB [--expect-head SEQ:HEX [--checkpoint SIG --checkpoint-cert FILE]] [--json]
 *       checks the hash chain (and that the log ends at the head cvm-kmsd logged,
 *       which the KMS key signed)
 *   cvm kms audit show DB [--app-id HEX] [--since TIME] [--decision D] [--json]
 *       prints the records, checking the chain as it goes
 *
 * Exit: 0 intact, 3 tampered or damaged (the first bad record and what is
 * wrong with it), 1 cannot check (no such file, not an audit log), 2 usage.
 * See docs/cli/cvm-kms.md. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/audit.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

#include "cli.h"
#include "output.h"

#define CMD_VERIFY "kms audit verify"
#define CMD_SHOW "kms audit show"
#define ERR_LEN 512
#define HEAD_TEXT_LEN (20 + 1 + 2 * CVM_AUDIT_HASH_LEN + 1) /* "SEQ:HEX" */

enum {
	OPT_EXPECT_HEAD = 0x200,
	OPT_CHECKPOINT,
	OPT_CHECKPOINT_CERT,
	OPT_APP_ID,
	OPT_SINCE,
	OPT_DECISION,
};

static void usage_verify(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s kms audit verify DB [--expect-head SEQ:HEX [--checkpoint SIG --checkpoint-cert "
	    "FILE]]\n"
	    "       [--json]\n"
	    "  Checks every record of the audit log DB: seqs consecutive from 1, each record's hash\n"
	    "  recomputed from its fields and chained to the one before it.\n"
	    "  --expect-head SEQ:HEX  also require that the log ends exactly at this head: the last\n"
	    "                         'event=audit_head seq=SEQ head=HEX' line cvm-kmsd logged. Without\n"
	    "                         it, records removed from the END of the log cannot be seen\n"
	    "  --checkpoint SIG       the head's signed checkpoint (128 hex digits, the sig=HEX of that\n"
	    "                         line): the head must be one the KMS key signed\n"
	    "  --checkpoint-cert FILE the certificate (PEM or DER) of the P-256 key that signs the heads\n"
	    "  --json                 one JSON object on stdout\n"
	    "Exit: 0 intact, 3 tampered (the first bad record and what is wrong), 1 error, 2 usage.\n",
	    CLI_PROG);
}

static void usage_show(FILE *f)
{
	fprintf(f,
	        "usage: %s kms audit show DB [--app-id HEX] [--since TIME] [--decision D] [--json]\n"
	        "  Prints the records of the audit log DB, one line each (key=value), checking the chain as\n"
	        "  it goes: it stops at the first bad record (exit 3), so no record after a break is shown.\n"
	        "  --app-id HEX    only the records of this app (20 bytes, 40 hex digits, 0x allowed)\n"
	        "  --since TIME    only the records at or after TIME (Unix seconds)\n"
	        "  --decision D    only the records with this decision: allowed, denied or error\n"
	        "  --json          one JSON object on stdout\n"
	        "Exit: 0 intact, 3 tampered, 1 error, 2 usage.\n",
	        CLI_PROG);
}

static void audit_usage(FILE *f)
{
	fprintf(f,
	        "usage: %s kms audit verify|show DB [ARGS]\n"
	        "  verify   check the hash chain of an audit log (and its head)\n"
	        "  show     print an audit log's records\n",
	        CLI_PROG);
}

static void head_text(uint64_t seq, const uint8_t head[CVM_AUDIT_HASH_LEN], char out[HEAD_TEXT_LEN])
{
	char hex[2 * CVM_AUDIT_HASH_LEN + 1];

	cvm_hex_encode(head, CVM_AUDIT_HASH_LEN, hex);
	(void)snprintf(out, HEAD_TEXT_LEN, "%llu:%s", (unsigned long long)seq, hex);
}

/* The exit code of a verification that returned `r`: tampered is 3,
 * anything that kept us from checking is 1. */
static int exit_for(int r)
{
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	return r == CVM_E_MISMATCH ? CLI_EXIT_REJECTED : CLI_EXIT_ERROR;
}

/* parse_common runs getopt over a subcommand's arguments and takes the one
 * DB operand; `opt` handles the subcommand's own options (returns false on
 * a bad value, reported). Returns -1 to go on, else an exit code. */
static int parse_args(const char *cmd, int argc, char **argv, const struct option *longopts,
                      bool (*opt)(void *ctx, int c, const char *arg), void *ctx, void (*usage)(FILE *),
                      const char **db)
{
	int c;

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
		if (c == ':' || c == '?') {
			cli_bad_option(cmd, c, argv, "kms");
			return CLI_EXIT_USAGE;
		}
		if (!opt(ctx, c, optarg))
			return CLI_EXIT_USAGE;
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(cmd, "%s; usage: cvm %s DB [options] (see 'cvm %s --help')",
		        argc - optind == 0 ? "the audit log DB is required" : "one audit log DB only", cmd,
		        cmd);
		return CLI_EXIT_USAGE;
	}
	*db = argv[optind];
	return -1;
}

/* ---- verify ------------------------------------------------------------------- */

struct verify_args {
	bool has_head, has_sig;
	uint64_t seq;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	uint8_t sig[CVM_AUDIT_CHECKPOINT_SIG_LEN];
	const char *cert_path;
};

static bool verify_opt(void *ctx, int c, const char *arg)
{
	struct verify_args *v = ctx;

	if (c == OPT_CHECKPOINT) {
		if (strlen(arg) != (size_t)2 * CVM_AUDIT_CHECKPOINT_SIG_LEN ||
		    cvm_hex_decode_exact(arg, strlen(arg), v->sig, sizeof(v->sig)) != CVM_OK) {
			cli_err(CMD_VERIFY,
			        "--checkpoint '%s': expected the signature r || s as %d hex digits", arg,
			        2 * CVM_AUDIT_CHECKPOINT_SIG_LEN);
			return false;
		}
		v->has_sig = true;
		return true;
	}
	if (c == OPT_CHECKPOINT_CERT) {
		v->cert_path = arg;
		return true;
	}
	if (c != OPT_EXPECT_HEAD)
		return false;
	if (cvm_audit_head_parse(arg, &v->seq, v->head) != CVM_OK) {
		cli_err(
		    CMD_VERIFY,
		    "--expect-head '%s': expected SEQ:HEX, the seq in decimal and the 64 hex digits of the "
		    "head hash, as cvm-kmsd logs them (event=audit_head seq=SEQ head=HEX)",
		    arg);
		return false;
	}
	v->has_head = true;
	return true;
}

static int verify_json(int r, uint64_t count, const char *head, uint64_t bad, const char *err,
                       const char *signer);

/* check_checkpoint verifies the signed checkpoint of the expected head
 * under the certificate's key before the log is read: a head the KMS did not
 * sign is rejected (exit 3) whatever the log says. */
static int check_checkpoint(const struct verify_args *v, char *signer, size_t signer_len)
{
	struct cvm_cert *cert = NULL;
	uint8_t *der = NULL;
	size_t der_len = 0;
	char subject[256];
	int r, rc;

	rc = cli_load_cert(CMD_VERIFY, "--checkpoint-cert", v->cert_path, &der, &der_len);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = CLI_EXIT_ERROR;
	r = cvm_cert_parse(der, der_len, &cert);
	if (r != CVM_OK) {
		cli_err(CMD_VERIFY, "--checkpoint-cert '%s': %s", v->cert_path, cvm_strerror(r));
		goto out;
	}
	cvm_cert_subject(cert, subject, sizeof(subject));
	out_sanitize(subject, signer, signer_len);
	r = cvm_audit_checkpoint_verify(cert, v->seq, v->head, v->sig);
	if (r == CVM_E_UNSUPPORTED) {
		cli_err(CMD_VERIFY,
		        "--checkpoint-cert '%s' (%s) does not hold a P-256 key, which signs the heads",
		        v->cert_path, signer);
		goto out;
	}
	if (r != CVM_OK) {
		if (cli_opts.json) {
			if (verify_json(
			        CVM_E_MISMATCH, 0, "", 0,
			        "the checkpoint's signature does not verify under --checkpoint-cert: the "
			        "expected head is not one that key signed",
			        signer) != 0)
				cli_err(CMD_VERIFY, "out of memory");
		} else {
			printf("verdict: tampered: the checkpoint's signature does not verify under %s: the "
			       "expected "
			       "head is not one that key signed\n",
			       signer);
		}
		rc = CLI_EXIT_REJECTED;
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	cvm_cert_free(cert);
	free(der);
	return rc;
}

static int verify_json(int r, uint64_t count, const char *head, uint64_t bad, const char *err,
                       const char *signer)
{
	json_t *o = json_object();
	int ret = -1;

	if (o == NULL)
		goto out;
	if (out_jset_str(o, "verdict", r == CVM_OK ? "intact" : "tampered") != 0 ||
	    out_jset_int(o, "records", (long long)count) != 0 || out_jset_str(o, "head", head) != 0)
		goto out;
	if (signer != NULL && out_jset_str(o, "checkpoint_signer", signer) != 0)
		goto out;
	if (r != CVM_OK &&
	    (out_jset_int(o, "bad_record", (long long)bad) != 0 || out_jset_str(o, "reason", err) != 0))
		goto out;
	ret = out_json_print(o);
out:
	json_decref(o);
	return ret;
}

static int kms_audit_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"expect-head", required_argument, NULL, OPT_EXPECT_HEAD},
	    {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
	    {"checkpoint-cert", required_argument, NULL, OPT_CHECKPOINT_CERT},
	    CLI_COMMON_LONGOPTS,
	};
	struct verify_args v;
	uint8_t head[CVM_AUDIT_HASH_LEN];
	char err[ERR_LEN], head_hex[HEAD_TEXT_LEN], signer[256];
	uint64_t count = 0, bad = 0;
	const char *db = NULL;
	int r, rc;

	memset(&v, 0, sizeof(v));
	rc = parse_args(CMD_VERIFY, argc, argv, longopts, verify_opt, &v, usage_verify, &db);
	if (rc >= 0)
		return rc;
	if (v.has_sig != (v.cert_path != NULL) || (v.has_sig && !v.has_head)) {
		cli_err(CMD_VERIFY,
		        "--checkpoint and --checkpoint-cert go together, with --expect-head (the head "
		        "they sign)");
		return CLI_EXIT_USAGE;
	}
	if (v.has_sig) {
		rc = check_checkpoint(&v, signer, sizeof(signer));
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	r = cvm_audit_verify(db, v.has_head ? v.head : NULL, v.seq, &count, head, &bad, err, sizeof(err));
	if (r != CVM_OK && r != CVM_E_MISMATCH) {
		cli_err(CMD_VERIFY, "cannot check %s: %s", db, err[0] != '\0' ? err : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	head_text(count, head, head_hex);
	if (cli_opts.json) {
		if (verify_json(r, count, head_hex, bad, err, v.has_sig ? signer : NULL) != 0) {
			cli_err(CMD_VERIFY, "out of memory");
			return CLI_EXIT_ERROR;
		}
	} else if (r == CVM_OK) {
		printf("verdict: intact (%llu records%s)\n", (unsigned long long)count,
		       v.has_sig ? ", ending at the expected head, which the checkpoint signs"
		                 : (v.has_head ? ", ending at the expected head" : ""));
		if (!cli_opts.quiet)
			printf("head: %s\n", head_hex);
		if (!cli_opts.quiet && v.has_sig)
			printf("checkpoint signed by: %s\n", signer);
	} else {
		printf("verdict: tampered: %s\n", err);
		if (!cli_opts.quiet) {
			printf("first bad record: %llu\n", (unsigned long long)bad);
			printf("intact before it: %llu records, head %s\n", (unsigned long long)count,
			       head_hex);
		}
	}
	if (fflush(stdout) != 0) {
		cli_err(CMD_VERIFY, "cannot write the verdict: %s", strerror(errno));
		return CLI_EXIT_ERROR;
	}
	return exit_for(r);
}

/* ---- show --------------------------------------------------------------------- */

struct show_args {
	char app_id[CVM_AUDIT_ID_MAX + 1];
	const char *decision;
	int64_t since;
	struct cvm_audit_filter filter;
};

static bool show_opt(void *ctx, int c, const char *arg)
{
	struct show_args *s = ctx;
	uint8_t id[CVM_AUDIT_ID_MAX / 2];
	const char *hex = arg;

	switch (c) {
	case OPT_APP_ID:
		if (strncmp(hex, "0x", 2) == 0 || strncmp(hex, "0X", 2) == 0)
			hex += 2;
		if (strlen(hex) != CVM_AUDIT_ID_MAX ||
		    cvm_hex_decode_exact(hex, strlen(hex), id, sizeof(id)) != CVM_OK) {
			cli_err(CMD_SHOW, "--app-id '%s': expected 20 bytes as 40 hex digits", arg);
			return false;
		}
		cvm_hex_encode(id, sizeof(id), s->app_id);
		s->filter.app_id = s->app_id;
		return true;
	case OPT_SINCE:
		if (!cli_parse_time(arg, &s->since)) {
			cli_err(CMD_SHOW, "--since '%s': expected a time in Unix seconds (digits only)", arg);
			return false;
		}
		s->filter.since = s->since;
		return true;
	case OPT_DECISION:
		if (strcmp(arg, "allowed") != 0 && strcmp(arg, "denied") != 0 && strcmp(arg, "error") != 0) {
			cli_err(CMD_SHOW, "--decision '%s': expected allowed, denied or error", arg);
			return false;
		}
		s->filter.decision = arg;
		return true;
	default:
		return false;
	}
}

/* put prints ` name=value`, the value in double quotes (with \" and \\)
 * when it is empty or holds a space, a quote, a backslash or '='. The
 * library hands over printable ASCII only. */
static void put(const char *name, const char *value)
{
	bool quote = value[0] == '\0' || strpbrk(value, " \"\\=") != NULL;

	printf(" %s=", name);
	if (!quote) {
		(void)fputs(value, stdout);
		return;
	}
	putchar('"');
	for (const char *c = value; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			putchar('\\');
		putchar(*c);
	}
	putchar('"');
}

struct show_ctx {
	json_t *records; /* --json: the array; else NULL */
	uint64_t shown;
	bool failed; /* out of memory in the JSON */
};

static int show_one(void *ctx, uint64_t seq, const struct cvm_audit_record *r,
                    const uint8_t hash[CVM_AUDIT_HASH_LEN])
{
	struct show_ctx *s = ctx;
	char when[32], hex[2 * CVM_AUDIT_HASH_LEN + 1];

	out_time(r->time, when);
	cvm_hex_encode(hash, CVM_AUDIT_HASH_LEN, hex);
	s->shown++;
	if (s->records != NULL) {
		json_t *o = json_object();
		bool bad = o == NULL;

		bad = bad || out_jset_int(o, "seq", (long long)seq) != 0 ||
		      out_jset_int(o, "time", r->time) != 0 || out_jset_str(o, "time_utc", when) != 0 ||
		      out_jset_str(o, "node", r->node) != 0 || out_jset_str(o, "method", r->method) != 0 ||
		      out_jset_str(o, "peer", r->peer) != 0 || out_jset_str(o, "tee", r->tee) != 0 ||
		      out_jset_str(o, "app_id", r->app_id) != 0 ||
		      out_jset_str(o, "instance_id", r->instance_id) != 0 ||
		      out_jset_str(o, "compose_hash", r->compose_hash) != 0 ||
		      out_jset_str(o, "device_id", r->device_id) != 0 ||
		      out_jset_str(o, "mr_aggregated", r->mr_aggregated) != 0 ||
		      out_jset_str(o, "os_image_hash", r->os_image_hash) != 0 ||
		      out_jset_str(o, "decision", r->decision) != 0 ||
		      out_jset_str(o, "reason", r->reason) != 0 || out_jset_str(o, "keys", r->keys) != 0 ||
		      out_jset_int(o, "epoch", r->epoch) != 0 || out_jset_str(o, "hash", hex) != 0;
		if (bad || json_array_append_new(s->records, o) != 0) {
			if (bad)
				json_decref(o);
			s->failed = true;
			return 1;
		}
		return 0;
	}
	printf("seq=%llu time=%s", (unsigned long long)seq, when);
	put("node", r->node);
	put("method", r->method);
	put("peer", r->peer);
	put("tee", r->tee);
	put("decision", r->decision);
	put("app_id", r->app_id);
	put("instance_id", r->instance_id);
	put("compose_hash", r->compose_hash);
	put("device_id", r->device_id);
	put("mr_aggregated", r->mr_aggregated);
	put("os_image_hash", r->os_image_hash);
	printf(" epoch=%u", (unsigned)r->epoch);
	put("keys", r->keys);
	put("reason", r->reason);
	printf(" hash=%s\n", hex);
	return 0;
}

static int kms_audit_show(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"app-id", required_argument, NULL, OPT_APP_ID},
	    {"since", required_argument, NULL, OPT_SINCE},
	    {"decision", required_argument, NULL, OPT_DECISION},
	    CLI_COMMON_LONGOPTS,
	};
	struct show_args a;
	struct show_ctx s;
	json_t *o = NULL;
	char err[ERR_LEN];
	const char *db = NULL;
	int r, rc;

	memset(&a, 0, sizeof(a));
	memset(&s, 0, sizeof(s));
	rc = parse_args(CMD_SHOW, argc, argv, longopts, show_opt, &a, usage_show, &db);
	if (rc >= 0)
		return rc;
	rc = CLI_EXIT_ERROR;
	if (cli_opts.json) {
		o = json_object();
		s.records = json_array();
		if (o == NULL || s.records == NULL) {
			json_decref(s.records);
			s.records = NULL;
			cli_err(CMD_SHOW, "out of memory");
			goto out;
		}
		if (out_jset(o, "records", s.records) != 0) {
			s.records = NULL; /* out_jset took it, even on failure */
			cli_err(CMD_SHOW, "out of memory");
			goto out;
		}
	}
	r = cvm_audit_each(db, &a.filter, show_one, &s, err, sizeof(err));
	if (s.failed) {
		cli_err(CMD_SHOW, "out of memory");
		goto out;
	}
	if (r != CVM_OK && r != CVM_E_MISMATCH) {
		cli_err(CMD_SHOW, "cannot read %s: %s", db, err[0] != '\0' ? err : cvm_strerror(r));
		goto out;
	}
	if (o != NULL) {
		if (out_jset_str(o, "verdict", r == CVM_OK ? "intact" : "tampered") != 0 ||
		    out_jset_int(o, "count", (long long)s.shown) != 0 ||
		    (r != CVM_OK && out_jset_str(o, "reason", err) != 0) || out_json_print(o) != 0) {
			cli_err(CMD_SHOW, "out of memory");
			goto out;
		}
	}
	if (fflush(stdout) != 0) {
		cli_err(CMD_SHOW, "cannot write the records: %s", strerror(errno));
		goto out;
	}
	if (r == CVM_E_MISMATCH)
		cli_err(CMD_SHOW, "%s is tampered or damaged, nothing after this is shown: %s", db, err);
	rc = exit_for(r);
out:
	json_decref(o);
	return rc;
}

int cmd_kms_audit(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"verify", kms_audit_verify},
	    {"show", kms_audit_show},
	};

	return cli_dispatch("kms audit", subs, sizeof(subs) / sizeof(subs[0]), audit_usage, argc, argv);
}
