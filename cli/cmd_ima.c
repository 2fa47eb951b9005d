/* cvm ima: show, replay and check Linux IMA runtime measurement lists.
 *
 *   cvm ima show LOG [--keys K[,K...]] [--format F] [--json]
 *   cvm ima replay LOG [--banks sha1,sha256] [--pcr HEX [--bank ALG]] [--format F] [--json]
 *   cvm ima check LOG [--reference FILE] [--keys K[,K...]] [--pcr HEX [--bank ALG]]
 *                     [--allow-violations] [--require-signatures] [--banks ...] [--json]
 *
 * See docs/cli/cvm-ima.md. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/ima.h>

#include "cli.h"
#include "output.h"

#define REF_FILE_MAX ((size_t)512 * 1024 * 1024)
#define NAME_TEXT_MAX (4 * CVM_IMA_EVENT_NAME_MAX + 1)
#define REASON_MAX 512

enum mode { MODE_SHOW, MODE_REPLAY, MODE_CHECK };

enum {
	OPT_BANKS = 0x200,
	OPT_BANK,
	OPT_PCR,
	OPT_REFERENCE,
	OPT_KEYS,
	OPT_FORMAT,
	OPT_ALLOW_VIOLATIONS,
	OPT_REQUIRE_SIGS,
};

struct opts {
	enum mode mode;
	const char *cmd; /* "ima show", ... */
	const char *log;
	enum cvm_ima_format fmt;
	uint16_t banks[CVM_IMA_BANKS_MAX];
	size_t bank_count;
	bool has_pcr;
	uint8_t want[CVM_DIGEST_MAX];
	size_t want_len;
	uint16_t bank;
	bool bank_set;
	const char *reference;
	const char *keys;
	bool allow_violations;
	bool require_sigs;
};

/* sig_counts tallies cvm_ima_sig_check outcomes by status. */
struct sig_counts {
	unsigned long long n[CVM_IMA_SIG_UNSUPPORTED + 1];
};

/* run is the state of one replay or check. */
struct run {
	const struct opts *o;
	struct cvm_ima_reader *rd;
	struct cvm_ima_replay *rp;
	struct cvm_ima_refset *ref;
	struct cvm_ima_keyring *kr;
	/* the state at the prefix that matched --pcr */
	bool matched;
	unsigned long long prefix_entries, prefix_violations;
	uint32_t prefix_mask; /* PCRs the prefix extends */
	uint8_t prefix_pcrs[CVM_IMA_BANKS_MAX][CVM_DIGEST_MAX];
	/* results */
	json_t *unknown;  /* entries the reference does not know */
	json_t *after;    /* entries after the matched prefix */
	json_t *sig_bad;  /* entries whose signature failed */
	json_t *boot_agg; /* boot_aggregate entries */
	struct sig_counts sigs;
	unsigned long long checked;
	int err;              /* first error of the list, CVM_OK if none */
	char why[REASON_MAX]; /* its description */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cvm ima show LOG [--keys KEY[,KEY...]] [--format auto|binary|ascii] [--json]\n"
	        "       cvm ima replay LOG [--banks ALG[,ALG...]] [--pcr HEX [--bank ALG]] [--json]\n"
	        "       cvm ima check LOG [--reference FILE] [--keys KEY[,KEY...]] [--pcr HEX [--bank ALG]]\n"
	        "                     [--allow-violations] [--require-signatures] [--banks ...] [--json]\n"
	        "\n"
	        "LOG is an IMA runtime measurement list, binary or ascii ('-': standard input).\n"
	        "show    prints every entry; it verifies nothing.\n"
	        "replay  checks every template digest and recomputes PCR 10 (and any other PCR the\n"
	        "        list names) for each bank.\n"
	        "check   replays, then compares every entry with the reference set and checks ima-sig\n"
	        "        signatures; every entry the reference does not know is listed by path.\n"
	        "  --banks LIST        banks to replay: sha1, sha256, sha384, sha512, sm3 (default\n"
	        "                      sha1,sha256)\n"
	        "  --pcr HEX           a quoted PCR 10 value: accept the list if a prefix of it replays\n"
	        "                      to HEX (entries after that prefix are listed, not trusted)\n"
	        "  --bank ALG          the bank of --pcr (default: from its length, 64 digits = sha256)\n"
	        "  --reference FILE    known (digest, path) pairs, sha256sum style (docs/cli/cvm-ima.md)\n"
	        "  --keys LIST         public keys or certificates (PEM or DER) for ima-sig signatures\n"
	        "  --allow-violations  do not reject violations (entries the kernel could not measure)\n"
	        "  --require-signatures  reject file entries without a valid signature (needs --keys)\n"
	        "  --format F          auto (default), binary or ascii\n"
	        "\n"
	        "Common options: -v, -q (verdict only), --json (one JSON object).\n"
	        "Exit codes: 0 accepted (show: parsed), 1 error, 2 usage, 3 rejected.\n");
}

/* ---- helpers ------------------------------------------------------------ */

/* name_text writes `r` as printable ASCII: other bytes, and '\', become
 * \xHH and \\, so a crafted name cannot drive a terminal or hide itself. */
static void name_text(const struct cvm_rd *r, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;

	for (size_t i = 0; i < r->len && j + 5 < cap; i++) {
		uint8_t c = r->p[i];

		if (c == '\\') {
			out[j++] = '\\';
			out[j++] = '\\';
		} else if (c >= 0x20 && c < 0x7f) {
			out[j++] = (char)c;
		} else {
			out[j++] = '\\';
			out[j++] = 'x';
			out[j++] = hex[c >> 4];
			out[j++] = hex[c & 15];
		}
	}
	out[j] = '\0';
}

/* digest_text writes "<algo>:<hex>" for the entry's file digest. */
static void digest_text(const struct cvm_ima_entry *e, char *out, size_t cap)
{
	char algo[CVM_IMA_TEMPLATE_NAME_MAX + 1];
	char hex[2 * CVM_IMA_FILE_DIGEST_MAX + 1];

	if (e->template_id == CVM_IMA_TEMPLATE_OTHER || e->digest.len > CVM_IMA_FILE_DIGEST_MAX) {
		(void)snprintf(out, cap, "-");
		return;
	}
	name_text(&e->digest_algo, algo, sizeof(algo));
	cvm_hex_encode(e->digest.p, e->digest.len, hex);
	(void)snprintf(out, cap, "%s:%s", algo, hex);
}

static const char *bank_name(uint16_t alg)
{
	const char *n = cvm_digest_name(alg);

	return n != NULL ? n : "?";
}

static bool parse_alg(const char *s, uint16_t *out)
{
	enum cvm_digest_alg a;

	if (cvm_digest_from_name(s, &a) != CVM_OK)
		return false;
	*out = (uint16_t)a;
	return true;
}

static bool parse_banks(const char *s, struct opts *o)
{
	char buf[128], *save = NULL, *tok;
	uint16_t alg;

	if (strlen(s) >= sizeof(buf))
		return false;
	(void)snprintf(buf, sizeof(buf), "%s", s);
	o->bank_count = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (!parse_alg(tok, &alg) || o->bank_count == CVM_IMA_BANKS_MAX)
			return false;
		for (size_t i = 0; i < o->bank_count; i++) {
			if (o->banks[i] == alg)
				return false;
		}
		o->banks[o->bank_count++] = alg;
	}
	return o->bank_count != 0;
}

static bool parse_format(const char *s, enum cvm_ima_format *f)
{
	if (strcmp(s, "auto") == 0)
		*f = CVM_IMA_FORMAT_AUTO;
	else if (strcmp(s, "binary") == 0)
		*f = CVM_IMA_FORMAT_BINARY;
	else if (strcmp(s, "ascii") == 0)
		*f = CVM_IMA_FORMAT_ASCII;
	else
		return false;
	return true;
}

static const char *format_name(enum cvm_ima_format f)
{
	return f == CVM_IMA_FORMAT_ASCII ? "ascii" : f == CVM_IMA_FORMAT_BINARY ? "binary" : "empty";
}

static int open_log(const struct opts *o, struct cvm_ima_reader **rd)
{
	int r = cvm_ima_reader_open(o->log, o->fmt, rd);

	if (r == CVM_OK)
		return CLI_EXIT_OK;
	if (r == CVM_E_SYSTEM)
		cli_err(o->cmd, "cannot read the list '%s': %s", o->log, strerror(errno));
	else
		cli_err(o->cmd, "cannot read the list '%s': %s", o->log, cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

static int load_keys(const struct opts *o, struct cvm_ima_keyring **out)
{
	char list[4096], *save = NULL, *path;
	struct cvm_ima_keyring *kr = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, rc = CLI_EXIT_ERROR;

	*out = NULL;
	if (strlen(o->keys) >= sizeof(list)) {
		cli_err(o->cmd, "--keys: the list is longer than %zu characters", sizeof(list) - 1);
		return CLI_EXIT_USAGE;
	}
	(void)snprintf(list, sizeof(list), "%s", o->keys);
	r = cvm_ima_keyring_new(&kr);
	if (r != CVM_OK) {
		cli_err(o->cmd, "out of memory");
		goto out;
	}
	for (path = strtok_r(list, ",", &save); path != NULL; path = strtok_r(NULL, ",", &save)) {
		r = cvm_file_read(path, CVM_PUBKEY_FILE_MAX, &buf, &len);
		if (r != CVM_OK) {
			cli_err(o->cmd, "cannot read key '%s': %s", path,
			        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
			goto out;
		}
		r = cvm_ima_keyring_add(kr, buf, len);
		free(buf);
		buf = NULL;
		if (r != CVM_OK) {
			cli_err(o->cmd,
			        "key '%s': %s (expected an RSA (2048 bits or more) or EC public key or "
			        "certificate, "
			        "PEM or DER; at most %d keys)",
			        path, cvm_strerror(r), CVM_IMA_KEYS_MAX);
			goto out;
		}
	}
	if (cvm_ima_keyring_count(kr) == 0) {
		cli_err(o->cmd, "--keys names no file");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	*out = kr;
	kr = NULL; /* transferred */
	rc = CLI_EXIT_OK;
out:
	free(buf);
	cvm_ima_keyring_free(kr);
	return rc;
}

static int load_reference(const struct opts *o, struct cvm_ima_refset **out)
{
	uint8_t *buf = NULL;
	size_t len = 0, bad_line = 0;
	int r;

	r = cvm_file_read(o->reference, REF_FILE_MAX, &buf, &len);
	if (r != CVM_OK) {
		cli_err(o->cmd, "cannot read the reference '%s': %s", o->reference,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	r = cvm_ima_refset_parse(buf, len, out, &bad_line);
	free(buf);
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	if (bad_line != 0)
		cli_err(o->cmd,
		        "reference '%s' line %zu: %s; expected '<hex digest>  <path>' (sha256sum output) or "
		        "'<alg>:<hex digest> <path>'",
		        o->reference, bad_line, cvm_strerror(r));
	else
		cli_err(o->cmd, "reference '%s': %s", o->reference, cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

/* entry_json describes one entry for lists in the output. */
static json_t *entry_json(const struct cvm_ima_entry *e, unsigned long long index, const char *reason)
{
	char name[NAME_TEXT_MAX], dig[CVM_IMA_TEMPLATE_NAME_MAX + 2 * CVM_IMA_FILE_DIGEST_MAX + 8];
	char tname[4 * CVM_IMA_TEMPLATE_NAME_MAX + 1];
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	name_text(&e->name, name, sizeof(name));
	name_text(&e->template_name, tname, sizeof(tname));
	digest_text(e, dig, sizeof(dig));
	bad |= out_jset_int(o, "index", (long long)index);
	bad |= out_jset_int(o, "pcr", e->pcr);
	bad |= out_jset_str(o, "template", tname);
	bad |= out_jset_str(o, "digest", dig);
	bad |= out_jset_str(o, "name", name);
	if (reason != NULL)
		bad |= out_jset_str(o, "reason", reason);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int append(json_t *a, json_t *o)
{
	if (o == NULL)
		return -1;
	return json_array_append_new(a, o);
}

static json_t *pcrs_json(const struct run *rn, bool prefix)
{
	json_t *o = json_object();
	uint32_t mask = cvm_ima_replay_pcr_mask(rn->rp) | (1u << CVM_IMA_PCR);
	int bad = 0;

	if (o == NULL)
		return NULL;
	for (size_t b = 0; b < rn->o->bank_count; b++) {
		uint16_t alg = rn->o->banks[b];
		json_t *bank = json_object();
		uint8_t v[CVM_DIGEST_MAX];

		if (bank == NULL) {
			bad = 1;
			break;
		}
		for (uint32_t i = 0; i < CVM_IMA_PCR_COUNT; i++) {
			char key[8];

			if ((mask & (1u << i)) == 0)
				continue;
			if (prefix && i != CVM_IMA_PCR)
				continue;
			if (prefix)
				memcpy(v, rn->prefix_pcrs[b], cvm_digest_len(alg));
			else if (cvm_ima_replay_pcr(rn->rp, alg, i, v, sizeof(v)) != CVM_OK)
				bad = 1;
			(void)snprintf(key, sizeof(key), "%u", i);
			bad |= out_jset_hex(bank, key, v, cvm_digest_len(alg));
		}
		bad |= out_jset(o, bank_name(alg), bank);
	}
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void print_pcrs(const struct run *rn, const char *indent)
{
	uint32_t mask = cvm_ima_replay_pcr_mask(rn->rp) | (1u << CVM_IMA_PCR);

	for (uint32_t i = 0; i < CVM_IMA_PCR_COUNT; i++) {
		if ((mask & (1u << i)) == 0)
			continue;
		for (size_t b = 0; b < rn->o->bank_count; b++) {
			uint16_t alg = rn->o->banks[b];
			uint8_t v[CVM_DIGEST_MAX];
			char hex[2 * CVM_DIGEST_MAX + 1];

			if (cvm_ima_replay_pcr(rn->rp, alg, i, v, sizeof(v)) != CVM_OK)
				continue;
			cvm_hex_encode(v, cvm_digest_len(alg), hex);
			printf("%sPCR %u %-7s %s\n", indent, i, bank_name(alg), hex);
		}
	}
}

/* ---- replay and check -------------------------------------------------- */

static bool pcr_matches(const struct run *rn)
{
	uint8_t v[CVM_DIGEST_MAX];

	if (cvm_ima_replay_pcr(rn->rp, rn->o->bank, CVM_IMA_PCR, v, sizeof(v)) != CVM_OK)
		return false;
	return memcmp(v, rn->o->want, rn->o->want_len) == 0;
}

static void note_prefix(struct run *rn)
{
	rn->matched = true;
	rn->prefix_entries = cvm_ima_replay_entries(rn->rp);
	rn->prefix_violations = cvm_ima_replay_violations(rn->rp);
	rn->prefix_mask = cvm_ima_replay_pcr_mask(rn->rp);
	for (size_t b = 0; b < rn->o->bank_count; b++) {
		if (cvm_ima_replay_pcr(rn->rp, rn->o->banks[b], CVM_IMA_PCR, rn->prefix_pcrs[b],
		                       sizeof(rn->prefix_pcrs[b])) != CVM_OK)
			memset(rn->prefix_pcrs[b], 0, sizeof(rn->prefix_pcrs[b]));
	}
}

/* check_entry compares one attested entry with the reference and checks
 * its signature. Returns 0, or -1 when out of memory. */
static int check_entry(struct run *rn, const struct cvm_ima_entry *e, unsigned long long index)
{
	enum cvm_ima_ref_result res;
	enum cvm_ima_sig_status st;
	uint32_t keyid = 0;
	char why[96];

	rn->checked++;
	if (rn->ref != NULL) {
		res = cvm_ima_refset_check(rn->ref, e);
		if (res == CVM_IMA_REF_BOOT_AGGREGATE) {
			if (append(rn->boot_agg, entry_json(e, index, NULL)) != 0)
				return -1;
		} else if (res != CVM_IMA_REF_MATCH &&
		           !(res == CVM_IMA_REF_VIOLATION && rn->o->allow_violations)) {
			if (append(rn->unknown, entry_json(e, index, cvm_ima_ref_result_name(res))) != 0)
				return -1;
		}
	}
	if (rn->kr == NULL)
		return 0;
	if (cvm_ima_sig_check(rn->kr, e, &st, &keyid) != CVM_OK)
		return -1;
	rn->sigs.n[st]++;
	if (st == CVM_IMA_SIG_VALID)
		return 0;
	if (st == CVM_IMA_SIG_NONE) {
		/* boot_aggregate, violations and buffers have no file to sign */
		if (!rn->o->require_sigs || e->is_violation || e->template_id == CVM_IMA_TEMPLATE_IMA_BUF ||
		    (e->name.len == 14 && memcmp(e->name.p, "boot_aggregate", 14) == 0))
			return 0;
	}
	(void)snprintf(why, sizeof(why), "%s (key id %08x)", cvm_ima_sig_status_name(st), keyid);
	return append(rn->sig_bad, entry_json(e, index, why));
}

/* replay_all reads the whole list: before a --pcr match every entry is
 * attested (and checked in check mode); after it, entries are still parsed
 * and their template digests checked, and they are listed. */
static int replay_all(struct run *rn)
{
	const struct opts *o = rn->o;
	struct cvm_ima_entry e;
	unsigned long long index;
	bool has;
	int r;

	if (o->has_pcr && o->mode == MODE_REPLAY) {
		/* the exported prefix search, as part C uses it */
		r = cvm_ima_replay_until(rn->rp, rn->rd, o->bank, o->want, o->want_len, &rn->matched);
		if (r != CVM_OK)
			goto bad;
		if (rn->matched)
			note_prefix(rn);
	} else if (o->has_pcr && pcr_matches(rn)) {
		note_prefix(rn);
	}
	for (;;) {
		r = cvm_ima_reader_next(rn->rd, &e, &has);
		if (r != CVM_OK)
			goto bad;
		if (!has)
			return CVM_OK;
		index = (unsigned long long)cvm_ima_reader_count(rn->rd);
		r = cvm_ima_replay_extend(rn->rp, &e);
		if (r != CVM_OK) {
			char name[NAME_TEXT_MAX];

			name_text(&e.name, name, sizeof(name));
			(void)snprintf(rn->why, sizeof(rn->why), "entry %llu (%.300s): %s", index,
			               name[0] != '\0' ? name : "no name",
			               r == CVM_E_MISMATCH
			                   ? "the template digest does not match the template data"
			                   : cvm_strerror(r));
			rn->err = r;
			return r;
		}
		if (rn->matched) {
			if (append(rn->after, entry_json(&e, index, NULL)) != 0)
				goto nomem;
			continue;
		}
		if (o->mode == MODE_CHECK && check_entry(rn, &e, index) != 0)
			goto nomem;
		if (o->has_pcr && pcr_matches(rn))
			note_prefix(rn);
	}
nomem:
	r = CVM_E_NOMEM;
	(void)snprintf(rn->why, sizeof(rn->why), "out of memory");
	rn->err = r;
	return r;
bad:
	if (r == CVM_E_MISMATCH)
		(void)snprintf(rn->why, sizeof(rn->why),
		               "entry %llu: the template digest does not match the template data",
		               (unsigned long long)cvm_ima_reader_count(rn->rd));
	else if (cvm_ima_reader_err(rn->rd)[0] != '\0')
		(void)snprintf(rn->why, sizeof(rn->why), "%s", cvm_ima_reader_err(rn->rd));
	else
		(void)snprintf(rn->why, sizeof(rn->why), "%s", cvm_strerror(r));
	rn->err = r;
	return r;
}

/* verdict decides and writes the reason ("" when accepted). */
static int verdict(const struct run *rn, char *reason, size_t cap)
{
	const struct opts *o = rn->o;
	char hex[2 * CVM_DIGEST_MAX + 1];
	size_t n;

	reason[0] = '\0';
	if (rn->err != CVM_OK) {
		(void)snprintf(reason, cap, "%s", rn->why);
		return cli_exit_for(rn->err);
	}
	if (o->has_pcr && !rn->matched) {
		cvm_hex_encode(o->want, o->want_len, hex);
		(void)snprintf(reason, cap, "no prefix of the %llu entries replays PCR 10 (%s) to %s",
		               (unsigned long long)cvm_ima_replay_entries(rn->rp), bank_name(o->bank), hex);
		return CLI_EXIT_REJECTED;
	}
	if (o->has_pcr && (rn->prefix_mask & ~(1u << CVM_IMA_PCR)) != 0) {
		/* IMA policies may name other PCRs: the quoted PCR 10 does not
		 * cover those entries, so nothing vouches for them. */
		for (uint32_t i = 0; i < CVM_IMA_PCR_COUNT; i++) {
			if (i != CVM_IMA_PCR && (rn->prefix_mask & (1u << i)) != 0) {
				(void)snprintf(
				    reason, cap,
				    "entries of the matching prefix extend PCR %u, which --pcr (PCR 10) "
				    "does not cover",
				    i);
				break;
			}
		}
		return CLI_EXIT_REJECTED;
	}
	if (rn->unknown != NULL && json_array_size(rn->unknown) != 0) {
		n = json_array_size(rn->unknown);
		(void)snprintf(reason, cap, "%zu entr%s not in the reference", n,
		               n == 1 ? "y is" : "ies are");
		return CLI_EXIT_REJECTED;
	}
	if (rn->sig_bad != NULL && json_array_size(rn->sig_bad) != 0) {
		n = json_array_size(rn->sig_bad);
		(void)snprintf(reason, cap, "%zu entr%s without a valid signature", n, n == 1 ? "y" : "ies");
		return CLI_EXIT_REJECTED;
	}
	return CLI_EXIT_OK;
}

static json_t *templates_json(const struct run *rn)
{
	json_t *a = json_array();

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < cvm_ima_replay_template_count(rn->rp); i++) {
		char t[4 * CVM_IMA_TEMPLATE_NAME_MAX + 1];
		struct cvm_rd r;
		const char *s = cvm_ima_replay_template_name(rn->rp, i);

		cvm_rd_init(&r, s, strlen(s));
		name_text(&r, t, sizeof(t));
		if (json_array_append_new(a, json_string(t)) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int print_json(const struct run *rn, int rc, const char *reason)
{
	const struct opts *o = rn->o;
	json_t *j = json_object(), *p;
	int bad = 0, ret;

	if (j == NULL)
		return -1;
	bad |= out_verdict_json(j, rc == CLI_EXIT_OK, reason, NULL);
	bad |= out_jset_str(j, "format", format_name(cvm_ima_reader_format(rn->rd)));
	bad |= out_jset_int(j, "entries", (long long)cvm_ima_replay_entries(rn->rp));
	bad |= out_jset_int(j, "violations", (long long)cvm_ima_replay_violations(rn->rp));
	bad |= out_jset(j, "templates", templates_json(rn));
	bad |= out_jset(j, "pcrs", rn->err == CVM_OK ? pcrs_json(rn, false) : json_null());
	if (o->has_pcr) {
		p = json_object();
		bad |= p == NULL;
		if (p != NULL) {
			bad |= out_jset_str(p, "bank", bank_name(o->bank));
			bad |= out_jset_int(p, "pcr", CVM_IMA_PCR);
			bad |= out_jset_hex(p, "expected", o->want, o->want_len);
			bad |= out_jset(p, "matched", json_boolean(rn->matched));
			bad |= out_jset(p, "entries",
			                rn->matched ? json_integer((json_int_t)rn->prefix_entries)
			                            : json_null());
			bad |= out_jset(p, "violations",
			                rn->matched ? json_integer((json_int_t)rn->prefix_violations)
			                            : json_null());
			bad |= out_jset(p, "pcrs", rn->matched ? pcrs_json(rn, true) : json_null());
			bad |= out_jset(p, "after", json_incref(rn->after));
			bad |= out_jset(j, "prefix", p);
		}
	}
	if (o->mode == MODE_CHECK) {
		bad |= out_jset_int(j, "checked", (long long)rn->checked);
		if (rn->ref != NULL) {
			bad |= out_jset_int(j, "reference_pairs", (long long)cvm_ima_refset_count(rn->ref));
			bad |= out_jset(j, "unknown", json_incref(rn->unknown));
			bad |= out_jset(j, "boot_aggregate", json_incref(rn->boot_agg));
		} else {
			bad |= out_jset(j, "unknown", json_null());
		}
		if (rn->kr != NULL) {
			p = json_object();
			bad |= p == NULL;
			if (p != NULL) {
				bad |= out_jset_int(p, "valid", (long long)rn->sigs.n[CVM_IMA_SIG_VALID]);
				bad |= out_jset_int(p, "invalid", (long long)rn->sigs.n[CVM_IMA_SIG_INVALID]);
				bad |= out_jset_int(p, "no_key", (long long)rn->sigs.n[CVM_IMA_SIG_NO_KEY]);
				bad |= out_jset_int(p, "malformed",
				                    (long long)rn->sigs.n[CVM_IMA_SIG_MALFORMED]);
				bad |= out_jset_int(p, "unsupported",
				                    (long long)rn->sigs.n[CVM_IMA_SIG_UNSUPPORTED]);
				bad |= out_jset_int(p, "unsigned", (long long)rn->sigs.n[CVM_IMA_SIG_NONE]);
				bad |= out_jset(p, "failures", json_incref(rn->sig_bad));
				bad |= out_jset(j, "signatures", p);
			}
		} else {
			bad |= out_jset(j, "signatures", json_null());
		}
	}
	ret = bad != 0 ? -1 : out_json_print(j);
	json_decref(j);
	return ret;
}

static void print_list(const char *title, const json_t *a)
{
	size_t i;
	json_t *v;

	if (a == NULL || json_array_size(a) == 0)
		return;
	printf("%s (%zu):\n", title, json_array_size(a));
	json_array_foreach(a, i, v)
	{
		const char *reason = json_string_value(json_object_get(v, "reason"));

		printf("  #%lld %s %s%s%s%s\n", (long long)json_integer_value(json_object_get(v, "index")),
		       json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "digest")), reason != NULL ? " (" : "",
		       reason != NULL ? reason : "", reason != NULL ? ")" : "");
	}
}

static void print_text(const struct run *rn, int rc, const char *reason)
{
	const struct opts *o = rn->o;

	if (!cli_opts.quiet) {
		printf("list: %s, %llu entries, %llu violations, templates",
		       format_name(cvm_ima_reader_format(rn->rd)),
		       (unsigned long long)cvm_ima_replay_entries(rn->rp),
		       (unsigned long long)cvm_ima_replay_violations(rn->rp));
		for (size_t i = 0; i < cvm_ima_replay_template_count(rn->rp); i++) {
			char t[4 * CVM_IMA_TEMPLATE_NAME_MAX + 1];
			const char *s = cvm_ima_replay_template_name(rn->rp, i);
			struct cvm_rd r;

			cvm_rd_init(&r, s, strlen(s));
			name_text(&r, t, sizeof(t));
			printf("%s %s", i == 0 ? "" : ",", t);
		}
		printf("%s\n", cvm_ima_replay_template_count(rn->rp) == 0 ? " none" : "");
		if (rn->err == CVM_OK) {
			printf("template digests: all %llu match their template data\n",
			       (unsigned long long)(cvm_ima_replay_entries(rn->rp) -
			                            cvm_ima_replay_violations(rn->rp)));
			print_pcrs(rn, "");
		}
		if (o->has_pcr && rn->matched) {
			char hex[2 * CVM_DIGEST_MAX + 1];

			cvm_hex_encode(o->want, o->want_len, hex);
			printf("prefix: PCR 10 %s = %s after entry %llu of %llu\n", bank_name(o->bank), hex,
			       rn->prefix_entries, (unsigned long long)cvm_ima_replay_entries(rn->rp));
			print_list("entries after the quoted state, not covered by it", rn->after);
		}
		if (o->mode == MODE_CHECK) {
			if (rn->ref != NULL) {
				printf("reference: %zu pairs; %llu entries checked\n",
				       cvm_ima_refset_count(rn->ref), rn->checked);
				print_list(
				    "boot_aggregate (a digest of PCRs 0-9: compare it with the event log)",
				    rn->boot_agg);
				print_list("unknown entries", rn->unknown);
			}
			if (rn->kr != NULL) {
				printf("signatures: %llu valid, %llu invalid, %llu without a key, %llu "
				       "malformed, "
				       "%llu unsupported, %llu entries unsigned\n",
				       rn->sigs.n[CVM_IMA_SIG_VALID], rn->sigs.n[CVM_IMA_SIG_INVALID],
				       rn->sigs.n[CVM_IMA_SIG_NO_KEY], rn->sigs.n[CVM_IMA_SIG_MALFORMED],
				       rn->sigs.n[CVM_IMA_SIG_UNSUPPORTED], rn->sigs.n[CVM_IMA_SIG_NONE]);
				print_list("signature failures", rn->sig_bad);
			}
		}
	}
	out_verdict_text(rc == CLI_EXIT_OK, reason, NULL);
}

static int do_replay(const struct opts *o)
{
	struct run rn;
	char reason[REASON_MAX];
	int rc;

	memset(&rn, 0, sizeof(rn));
	rn.o = o;
	rn.unknown = json_array();
	rn.after = json_array();
	rn.sig_bad = json_array();
	rn.boot_agg = json_array();
	if (rn.unknown == NULL || rn.after == NULL || rn.sig_bad == NULL || rn.boot_agg == NULL) {
		cli_err(o->cmd, "out of memory");
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	if (o->reference != NULL) {
		rc = load_reference(o, &rn.ref);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	if (o->keys != NULL) {
		rc = load_keys(o, &rn.kr);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	rc = open_log(o, &rn.rd);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (cvm_ima_replay_new(o->banks, o->bank_count, &rn.rp) != CVM_OK) {
		cli_err(o->cmd, "cannot start the replay (out of memory, or libcrypto lacks a bank's hash)");
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	(void)replay_all(&rn);
	if (rn.err == CVM_E_SYSTEM) {
		cli_err(o->cmd, "cannot read the list '%s': %s: %s", o->log, rn.why, strerror(errno));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	rc = verdict(&rn, reason, sizeof(reason));
	if (cli_opts.json) {
		if (print_json(&rn, rc, reason) != 0) {
			cli_err(o->cmd, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else {
		print_text(&rn, rc, reason);
	}
out:
	json_decref(rn.unknown);
	json_decref(rn.after);
	json_decref(rn.sig_bad);
	json_decref(rn.boot_agg);
	cvm_ima_reader_free(rn.rd);
	cvm_ima_replay_free(rn.rp);
	cvm_ima_refset_free(rn.ref);
	cvm_ima_keyring_free(rn.kr);
	return rc;
}

/* ---- show ------------------------------------------------------------- */

static json_t *show_entry_json(const struct cvm_ima_entry *e, unsigned long long index,
                               const struct cvm_ima_keyring *kr)
{
	json_t *o = entry_json(e, index, NULL), *s;
	struct cvm_ima_sig sig;
	enum cvm_ima_sig_status st;
	uint32_t keyid;
	int bad = 0;

	if (o == NULL)
		return NULL;
	bad |= out_jset_hex(o, "template_digest", e->template_digest, sizeof(e->template_digest));
	bad |= out_jset(o, "violation", json_boolean(e->is_violation));
	if (e->buf.len != 0)
		bad |= out_jset_hex(o, "buf", e->buf.p, e->buf.len);
	if (e->modsig.len != 0)
		bad |= out_jset_int(o, "modsig_len", (long long)e->modsig.len);
	if (e->sig.len == 0) {
		bad |= out_jset(o, "sig", json_null());
	} else {
		s = json_object();
		bad |= s == NULL;
		if (s != NULL) {
			bad |= out_jset_hex(s, "bytes", e->sig.p, e->sig.len);
			if (cvm_ima_sig_parse(e->sig, &sig) == CVM_OK) {
				char id[9];

				(void)snprintf(id, sizeof(id), "%08x", sig.keyid);
				bad |= out_jset_int(s, "version", sig.version);
				bad |= out_jset_str(s, "hash",
				                    sig.digest_alg != 0 ? bank_name(sig.digest_alg) : "?");
				bad |= out_jset_str(s, "keyid", id);
			}
			if (kr != NULL) {
				if (cvm_ima_sig_check(kr, e, &st, &keyid) != CVM_OK)
					bad = 1;
				else
					bad |= out_jset_str(s, "status", cvm_ima_sig_status_name(st));
			}
			bad |= out_jset(o, "sig", s);
		}
	}
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void show_entry_text(const struct cvm_ima_entry *e, unsigned long long index,
                            const struct cvm_ima_keyring *kr)
{
	char name[NAME_TEXT_MAX], dig[CVM_IMA_TEMPLATE_NAME_MAX + 2 * CVM_IMA_FILE_DIGEST_MAX + 8];
	char tname[4 * CVM_IMA_TEMPLATE_NAME_MAX + 1], th[41];
	struct cvm_ima_sig sig;
	enum cvm_ima_sig_status st;
	uint32_t keyid;

	name_text(&e->name, name, sizeof(name));
	name_text(&e->template_name, tname, sizeof(tname));
	digest_text(e, dig, sizeof(dig));
	cvm_hex_encode(e->template_digest, sizeof(e->template_digest), th);
	printf("#%llu pcr %u %s %s %s %s%s", index, e->pcr, th, tname, dig, name,
	       e->is_violation ? " [violation]" : "");
	if (e->buf.len != 0)
		printf(" [buf %zu bytes]", e->buf.len);
	if (e->sig.len != 0) {
		if (cvm_ima_sig_parse(e->sig, &sig) == CVM_OK)
			printf(" [sig v%u %s key %08x", sig.version,
			       sig.digest_alg != 0 ? bank_name(sig.digest_alg) : "?", sig.keyid);
		else
			printf(" [sig %zu bytes, undecoded", e->sig.len);
		if (kr != NULL && cvm_ima_sig_check(kr, e, &st, &keyid) == CVM_OK)
			printf(": %s", cvm_ima_sig_status_name(st));
		printf("]");
	}
	printf("\n");
}

static int do_show(const struct opts *o)
{
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_keyring *kr = NULL;
	struct cvm_ima_entry e;
	unsigned long long n = 0;
	bool has, first = true;
	char *line;
	int r, rc;

	if (o->keys != NULL) {
		rc = load_keys(o, &kr);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	rc = open_log(o, &rd);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (cli_opts.json)
		printf("{\n  \"verified\": false,\n  \"entries\": [");
	for (;;) {
		r = cvm_ima_reader_next(rd, &e, &has);
		if (r != CVM_OK || !has)
			break;
		n++;
		if (cli_opts.json) {
			json_t *j = show_entry_json(&e, n, kr);

			line = j != NULL
			           ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER)
			           : NULL;
			json_decref(j);
			if (line == NULL) {
				r = CVM_E_NOMEM;
				break;
			}
			printf("%s\n    %s", first ? "" : ",", line);
			free(line);
			first = false;
		} else if (!cli_opts.quiet) {
			show_entry_text(&e, n, kr);
		}
	}
	if (cli_opts.json) {
		printf("\n  ],\n  \"format\": \"%s\",\n  \"count\": %llu,\n  \"error\": ",
		       format_name(cvm_ima_reader_format(rd)), n);
		if (r == CVM_OK) {
			printf("null\n}\n");
		} else {
			json_t *s = json_string(r == CVM_E_NOMEM ? "out of memory" : cvm_ima_reader_err(rd));

			line = s != NULL ? json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
			printf("%s\n}\n", line != NULL ? line : "\"?\"");
			free(line);
			json_decref(s);
		}
	} else {
		printf("%llu entries (%s list); nothing verified: 'cvm ima replay' checks the template "
		       "digests\n",
		       n, format_name(cvm_ima_reader_format(rd)));
	}
	if (r != CVM_OK) {
		cli_err(o->cmd, "'%s': %s", o->log,
		        r == CVM_E_SYSTEM  ? strerror(errno)
		        : r == CVM_E_NOMEM ? "out of memory"
		                           : cvm_ima_reader_err(rd));
		rc = CLI_EXIT_ERROR;
	}
out:
	cvm_ima_reader_free(rd);
	cvm_ima_keyring_free(kr);
	return rc;
}

/* ---- options ----------------------------------------------------------- */

static int parse_pcr(const char *s, struct opts *o)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2 != 0 || n / 2 > sizeof(o->want) ||
	    cvm_hex_decode(s, n, o->want, sizeof(o->want), &o->want_len) != CVM_OK)
		return -1;
	return 0;
}

static int finish_opts(struct opts *o)
{
	bool listed = false;

	if (!o->has_pcr && o->bank_set) {
		cli_err(o->cmd, "--bank needs --pcr");
		return CLI_EXIT_USAGE;
	}
	if (o->has_pcr) {
		if (!o->bank_set) {
			switch (o->want_len) {
			case 20:
				o->bank = CVM_DIGEST_SHA1;
				break;
			case 32:
				o->bank = CVM_DIGEST_SHA256;
				break;
			case 48:
				o->bank = CVM_DIGEST_SHA384;
				break;
			case 64:
				o->bank = CVM_DIGEST_SHA512;
				break;
			default:
				break;
			}
		}
		if (cvm_digest_len(o->bank) != o->want_len) {
			cli_err(o->cmd, "--pcr has %zu bytes; the %s bank has %zu-byte values", o->want_len,
			        bank_name(o->bank), cvm_digest_len(o->bank));
			return CLI_EXIT_USAGE;
		}
		for (size_t i = 0; i < o->bank_count; i++)
			listed = listed || o->banks[i] == o->bank;
		if (!listed) {
			if (o->bank_count == CVM_IMA_BANKS_MAX) {
				cli_err(o->cmd, "--banks is full; add --bank's algorithm to it instead");
				return CLI_EXIT_USAGE;
			}
			o->banks[o->bank_count++] = o->bank;
		}
	}
	if (o->mode == MODE_CHECK && o->reference == NULL && o->keys == NULL) {
		cli_err(o->cmd, "check needs --reference FILE, --keys KEYS or both");
		return CLI_EXIT_USAGE;
	}
	if (o->require_sigs && o->keys == NULL) {
		cli_err(o->cmd, "--require-signatures needs --keys");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static int run_sub(enum mode mode, const char *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"banks", required_argument, NULL, OPT_BANKS},
	    {"bank", required_argument, NULL, OPT_BANK},
	    {"pcr", required_argument, NULL, OPT_PCR},
	    {"reference", required_argument, NULL, OPT_REFERENCE},
	    {"keys", required_argument, NULL, OPT_KEYS},
	    {"format", required_argument, NULL, OPT_FORMAT},
	    {"allow-violations", no_argument, NULL, OPT_ALLOW_VIOLATIONS},
	    {"require-signatures", no_argument, NULL, OPT_REQUIRE_SIGS},
	    CLI_COMMON_LONGOPTS,
	};
	struct opts o;
	int c, rc;

	memset(&o, 0, sizeof(o));
	o.mode = mode;
	o.cmd = cmd;
	o.banks[0] = CVM_DIGEST_SHA1;
	o.banks[1] = CVM_DIGEST_SHA256;
	o.bank_count = 2;
	o.bank = CVM_DIGEST_SHA256;
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case OPT_BANKS:
			if (mode != MODE_SHOW && parse_banks(optarg, &o))
				continue;
			cli_err(
			    cmd,
			    "--banks '%s': expected a comma-separated list of sha1, sha256, sha384, sha512, "
			    "sm3 (no repeats)%s",
			    optarg, mode == MODE_SHOW ? "; show replays nothing" : "");
			return CLI_EXIT_USAGE;
		case OPT_BANK:
			if (mode != MODE_SHOW && parse_alg(optarg, &o.bank)) {
				o.bank_set = true;
				continue;
			}
			cli_err(cmd, "--bank '%s': expected sha1, sha256, sha384, sha512 or sm3", optarg);
			return CLI_EXIT_USAGE;
		case OPT_PCR:
			if (mode != MODE_SHOW && parse_pcr(optarg, &o) == 0) {
				o.has_pcr = true;
				continue;
			}
			cli_err(cmd,
			        "--pcr '%s': expected the PCR 10 value in hex (40, 64, 96 or 128 digits)",
			        optarg);
			return CLI_EXIT_USAGE;
		case OPT_REFERENCE:
			if (mode == MODE_CHECK) {
				o.reference = optarg;
				continue;
			}
			cli_err(cmd, "--reference is an option of 'cvm ima check'");
			return CLI_EXIT_USAGE;
		case OPT_KEYS:
			if (mode != MODE_REPLAY) {
				o.keys = optarg;
				continue;
			}
			cli_err(cmd, "--keys is an option of 'cvm ima check' and 'cvm ima show'");
			return CLI_EXIT_USAGE;
		case OPT_FORMAT:
			if (parse_format(optarg, &o.fmt))
				continue;
			cli_err(cmd, "--format '%s': expected auto, binary or ascii", optarg);
			return CLI_EXIT_USAGE;
		case OPT_ALLOW_VIOLATIONS:
		case OPT_REQUIRE_SIGS:
			if (mode == MODE_CHECK) {
				if (c == OPT_ALLOW_VIOLATIONS)
					o.allow_violations = true;
				else
					o.require_sigs = true;
				continue;
			}
			cli_err(cmd, "'%s' is an option of 'cvm ima check'", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		default:
			cli_bad_option(cmd, c, argv, "cvm help ima");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	if (argc - optind != 1) {
		cli_err(cmd, "%s; see 'cvm help ima'",
		        argc - optind == 0 ? "no LOG given" : "more than one LOG given");
		return CLI_EXIT_USAGE;
	}
	o.log = argv[optind];
	rc = finish_opts(&o);
	if (rc != CLI_EXIT_OK)
		return rc;
	return mode == MODE_SHOW ? do_show(&o) : do_replay(&o);
}

static int ima_show(int argc, char **argv)
{
	return run_sub(MODE_SHOW, "ima show", argc, argv);
}

static int ima_replay(int argc, char **argv)
{
	return run_sub(MODE_REPLAY, "ima replay", argc, argv);
}

static int ima_check(int argc, char **argv)
{
	return run_sub(MODE_CHECK, "ima check", argc, argv);
}

int cmd_ima(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"show", ima_show}, {"replay", ima_replay}, {"check", ima_check}};

	return cli_dispatch("ima", subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}
