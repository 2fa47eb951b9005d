/* cvm ct: Certificate Transparency monitoring of the gateway's domains.
 *
 *   cvm ct monitor --log URL --log-key PEM --domain D [--domain D]...
 *                  (--acme-info FILE | --gateway URL) [--state FILE] [--from N]
 *                  [--once] [--interval S] [--allow-insecure-http]
 *                  [--collateral DIR | cache options] [--root CERT] [--policy FILE] [--json]
 *
 * A CA that is tricked or compelled can issue a certificate for the
 * gateway's domain with a key that never was inside the gateway's CVM; the
 * CT logs show it. The monitor trusts only the keys whose quotes verify and
 * bind them (report_data = SHA-512("zt-cert:" || SPKI DER)), and alerts on
 * every logged certificate for a watched domain with another key, on a tree
 * head whose signature fails, and on a log that rewrites its history. See
 * docs/cli/cvm-ct.md. */
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ct.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/report.h>
#include <cvmkit/snp.h>
#include <cvmkit/tee.h>
#include <cvmkit/verify.h>

#include "cli.h"
#include "collateral_opts.h"
#include "net.h"
#include "output.h"

#define CMD_MONITOR "ct monitor"
#define DOMAINS_MAX 16u
#define KEYS_MAX 64u
#define ACME_INFO_MAX ((size_t)4 << 20)
#define QUOTE_MAX ((size_t)64 * 1024)
#define SPKI_MAX ((size_t)16 * 1024)
#define STATE_MAX ((size_t)4096)
#define INTERVAL_MAX 86400u
#define TIMEOUT_S 60u
#define PROGRESS_EVERY 10000u

enum {
	OPT_LOG = 0x200,
	OPT_LOG_KEY,
	OPT_DOMAIN,
	OPT_ACME_INFO,
	OPT_GATEWAY,
	OPT_STATE,
	OPT_FROM,
	OPT_ONCE,
	OPT_INTERVAL,
	OPT_INSECURE_HTTP,
	OPT_ROOT,
	OPT_POLICY,
};

struct mon {
	const char *log_url, *log_key_path, *acme_path, *gateway, *state_path, *policy_path, *root_path;
	const char *domains[DOMAINS_MAX];
	size_t domain_count;
	bool once, insecure_http, from_set;
	uint64_t from;
	unsigned interval;
	struct cli_coll coll;
	uint8_t *root;
	size_t root_len;
	struct cvm_policy policy;
	struct cvm_pubkey *log_key;
	struct cvm_ct_client *client;
	/* the keys whose quotes verified: SHA-256 of their SPKI DER */
	uint8_t trusted[KEYS_MAX][32];
	size_t trusted_count, rejected_count;
	/* results of one pass, for --json */
	json_t *alerts, *keys;
	uint64_t checked, matched, ok;
	int64_t at;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: cvm ct monitor --log URL --log-key PEM --domain D [--domain D]...\n"
	           "                      (--acme-info FILE | --gateway URL) [--state FILE] [--from N]\n"
	           "                      [--once] [--interval S] [--allow-insecure-http]\n"
	           "                      [--collateral DIR | cache options] [--root CERT] [--policy FILE] "
	           "[--json]\n"
	           "\n"
	           "Watches an RFC 6962 Certificate Transparency log for certificates of the domains\n"
	           "(and every name under them) whose key is not one of the gateway's quoted keys.\n"
	           "Each key of the gateway's AcmeInfo is trusted only when its quote verifies\n"
	           "(collateral, --root, --policy as for 'cvm quote verify') and its report_data is\n"
	           "SHA-512(\"zt-cert:\" || SPKI DER). Alerts go to stderr (and --json's \"alerts\").\n"
	           "  --log URL         the log's base URL (methods are URL/ct/v1/...)\n"
	           "  --log-key PEM     the log's public key (PEM or DER SubjectPublicKeyInfo)\n"
	           "  --state FILE      the last verified tree head and the next entry to read;\n"
	           "                    the next run starts there\n"
	           "  --from N          first run: start at entry N (default: the current tree size)\n"
	           "  --once            one pass, then exit (3 on any alert); without it a pass\n"
	           "                    every --interval, each reported on its own\n"
	           "  --interval S      seconds between passes (default 300)\n"
	           "  --allow-insecure-http   allow http:// for the log and the gateway (tests)\n"
	           "Exit codes: 0 no alert, 1 could not run, 2 usage, 3 alert (with --once).\n");
}

/* ---- the quoted keys -------------------------------------------------------- */

/* decode_field reads a hex string, or standard base64 when it is not hex
 * (AcmeInfo's public_key is hex of the SPKI DER; base64 is accepted too). */
static int decode_field(const json_t *v, size_t max, uint8_t **out, size_t *out_len)
{
	const char *s;
	size_t n;

	*out = NULL;
	*out_len = 0;
	if (!json_is_string(v))
		return CVM_E_FORMAT;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n / 2 > max)
		return n == 0 ? CVM_E_FORMAT : CVM_E_TOO_LARGE;
	*out = malloc(n / 2 + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	if (n % 2 == 0 && cvm_hex_decode(s, n, *out, n / 2 + 1, out_len) == CVM_OK)
		return CVM_OK;
	free(*out);
	*out = NULL;
	return cvm_base64_decode(s, n, max, out, out_len);
}

/* verify_bound verifies `quote` (a DCAP quote or an SEV-SNP report) and its
 * report_data = SHA-512(tag ":" content). On failure `why` says what. */
static int verify_bound(struct mon *m, const uint8_t *quote, size_t quote_len, const char *tag,
                        const uint8_t *content, size_t content_len, char *why, size_t why_cap)
{
	struct cvm_policy pol = m->policy;
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_report rep;
	bool is_snp = cvm_snp_report_looks_like(quote, quote_len);
	int r, rc;

	if (cvm_sha512_tagged(tag, content, content_len, pol.report_data.v) != CVM_OK) {
		snprintf(why, why_cap, "out of memory");
		return CVM_E_NOMEM;
	}
	pol.report_data.set = true;
	rc = cli_coll_load(CMD_MONITOR, &m->coll, "the quote", is_snp, quote, quote_len, m->at, m->root,
	                   m->root_len, &dcap, &amd);
	if (rc != CLI_EXIT_OK) {
		snprintf(why, why_cap, "no collateral verifies it");
		return CVM_E_POLICY;
	}
	cvm_report_init(&rep);
	if (is_snp) {
		struct cvm_amd_result *res = calloc(1, sizeof(*res));

		r = res == NULL ? CVM_E_NOMEM
		                : cvm_verify_snp_report(quote, quote_len, amd, m->root, m->root_len, m->at,
		                                        &pol, &rep, res);
		free(res);
	} else {
		struct cvm_dcap_result *res = calloc(1, sizeof(*res));

		r = res == NULL ? CVM_E_NOMEM
		                : cvm_verify_quote(quote, quote_len, dcap, m->root, m->root_len, m->at, &pol,
		                                   &rep, res);
		free(res);
	}
	if (r != CVM_OK)
		out_verdict_reason(&rep, r, why, why_cap);
	cvm_dcap_collateral_free(dcap);
	cvm_amd_collateral_free(amd);
	return r;
}

static int load_acme_info(struct mon *m, const char *json, size_t len)
{
	json_t *j, *keys, *k;
	json_error_t jerr;
	size_t i;

	j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		cli_err(CMD_MONITOR, "the AcmeInfo is not a JSON object (%s); give Gateway.AcmeInfo's answer",
		        j == NULL ? jerr.text : "another JSON value");
		json_decref(j);
		return CLI_EXIT_ERROR;
	}
	keys = json_object_get(j, "quoted_hist_keys");
	if (!json_is_array(keys) || json_array_size(keys) > KEYS_MAX) {
		cli_err(CMD_MONITOR, "the AcmeInfo's quoted_hist_keys is %s",
		        json_is_array(keys) ? "longer than 64 keys" : "missing or not an array");
		json_decref(j);
		return CLI_EXIT_ERROR;
	}
	json_array_foreach(keys, i, k)
	{
		uint8_t *spki = NULL, *quote = NULL, h[32];
		size_t spki_len = 0, quote_len = 0;
		char hex[65], why[512] = "";
		struct cvm_pubkey *pk = NULL;
		json_t *o;
		int r;

		r = decode_field(json_object_get(k, "public_key"), SPKI_MAX, &spki, &spki_len);
		if (r == CVM_OK && cvm_pubkey_parse(spki, spki_len, &pk) != CVM_OK)
			r = CVM_E_FORMAT; /* not a SubjectPublicKeyInfo we can read */
		cvm_pubkey_free(pk);
		if (r == CVM_OK)
			r = decode_field(json_object_get(k, "quote"), QUOTE_MAX, &quote, &quote_len);
		if (r != CVM_OK) {
			snprintf(why, sizeof(why),
			         "public_key or quote is not hex (or base64) of a key and a quote");
			hex[0] = '\0';
		} else {
			cvm_sha256(spki, spki_len, h);
			cvm_hex_encode(h, 32, hex);
			r = verify_bound(m, quote, quote_len, "zt-cert", spki, spki_len, why, sizeof(why));
		}
		if (r == CVM_OK) {
			memcpy(m->trusted[m->trusted_count++], h, 32);
			if (!cli_opts.quiet && !cli_opts.json)
				printf(
				    "key %zu: SPKI SHA-256 %s: quote verifies and binds the key: trusted\n",
				    i, hex);
		} else {
			m->rejected_count++;
			fprintf(stderr,
			        "cvm %s: key %zu%s%s%s: NOT trusted: %s; a certificate with this key will be "
			        "an alert\n",
			        CMD_MONITOR, i, hex[0] != '\0' ? " (SPKI SHA-256 " : "",
			        hex[0] != '\0' ? hex : "", hex[0] != '\0' ? ")" : "", why);
		}
		o = json_pack("{s:i, s:s?, s:b, s:s?}", "index", (json_int_t)i, "spki_sha256",
		              hex[0] != '\0' ? hex : NULL, "trusted", r == CVM_OK, "reason",
		              r == CVM_OK ? NULL : why);
		if (o != NULL)
			json_array_append_new(m->keys, o);
		free(spki);
		free(quote);
	}
	/* The account's quote is reported, not needed: the keys decide. */
	{
		const json_t *uri = json_object_get(j, "account_uri");
		uint8_t *q = NULL;
		size_t q_len = 0;
		char why[512] = "";

		if (json_is_string(uri) &&
		    decode_field(json_object_get(j, "account_quote"), QUOTE_MAX, &q, &q_len) == CVM_OK) {
			int r =
			    verify_bound(m, q, q_len, "acme-account", (const uint8_t *)json_string_value(uri),
			                 json_string_length(uri), why, sizeof(why));

			if (r != CVM_OK)
				fprintf(stderr,
				        "cvm %s: the ACME account's quote does not verify or bind the "
				        "account URI: %s\n",
				        CMD_MONITOR, why);
			else if (!cli_opts.quiet && !cli_opts.json)
				printf("account: quote verifies and binds the account URI\n");
		}
		free(q);
	}
	json_decref(j);
	if (m->trusted_count == 0 && !cli_opts.quiet)
		fprintf(stderr,
		        "cvm %s: no key is trusted: every certificate of the domains will be an alert\n",
		        CMD_MONITOR);
	return CLI_EXIT_OK;
}

static int fetch_gateway(struct mon *m, char **out, size_t *out_len)
{
	struct cli_reply rep = {.max = ACME_INFO_MAX};
	char url[2048];
	CURL *c;
	CURLcode cc;
	long status = 0;

	*out = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s/prpc/Gateway.AcmeInfo", m->gateway) >= sizeof(url)) {
		cli_err(CMD_MONITOR, "--gateway URL is too long");
		return CLI_EXIT_USAGE;
	}
	c = curl_easy_init();
	if (c == NULL)
		return CLI_EXIT_ERROR;
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, m->insecure_http ? "http,https" : "https") !=
	        CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli_reply_collect) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rep) != CURLE_OK) {
		curl_easy_cleanup(c);
		return CLI_EXIT_ERROR;
	}
	cc = curl_easy_perform(c);
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK || status != 200 || rep.too_large) {
		cli_err(
		    CMD_MONITOR,
		    "cannot get the AcmeInfo from '%s': %s; is the gateway running (or give --acme-info)?",
		    url,
		    rep.too_large    ? "the answer is too long"
		    : cc != CURLE_OK ? curl_easy_strerror(cc)
		                     : "HTTP error");
		free(rep.buf);
		return CLI_EXIT_ERROR;
	}
	*out = rep.buf;
	*out_len = rep.len;
	return CLI_EXIT_OK;
}

/* ---- state ------------------------------------------------------------------ */

/* The state file holds the last tree head verified (size, root) and `next`,
 * the first entry not read yet: at most the tree size, less when a walk
 * stopped half way (it is written after every batch, so a long walk that is
 * interrupted resumes where it stopped). */
static int state_load(const struct mon *m, bool *have, uint64_t *size, uint8_t root[32], uint64_t *next)
{
	const json_t *nx;
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *j;
	const json_t *h;
	int r;

	*have = false;
	if (m->state_path == NULL || access(m->state_path, F_OK) != 0)
		return CLI_EXIT_OK;
	r = cvm_file_read(m->state_path, STATE_MAX, &buf, &len);
	if (r != CVM_OK) {
		cli_err(CMD_MONITOR, "cannot read the state file '%s': %s", m->state_path, cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	h = json_object_get(j, "root_hash");
	if (!json_is_integer(json_object_get(j, "tree_size")) ||
	    json_integer_value(json_object_get(j, "tree_size")) < 0 || !json_is_string(h) ||
	    cvm_hex_decode_exact(json_string_value(h), json_string_length(h), root, 32) != CVM_OK) {
		cli_err(CMD_MONITOR,
		        "the state file '%s' is not one cvm ct monitor wrote; remove it to start anew",
		        m->state_path);
		json_decref(j);
		return CLI_EXIT_ERROR;
	}
	*size = (uint64_t)json_integer_value(json_object_get(j, "tree_size"));
	*next = *size;
	nx = json_object_get(j, "next");
	if (nx != NULL) {
		if (!json_is_integer(nx) || json_integer_value(nx) < 0 ||
		    (uint64_t)json_integer_value(nx) > *size) {
			cli_err(CMD_MONITOR,
			        "the state file '%s' has a bad \"next\"; remove it to start anew",
			        m->state_path);
			json_decref(j);
			return CLI_EXIT_ERROR;
		}
		*next = (uint64_t)json_integer_value(nx);
	}
	*have = true;
	json_decref(j);
	return CLI_EXIT_OK;
}

static int state_save(const struct mon *m, const struct cvm_ct_sth *sth, uint64_t next)
{
	char hex[65], buf[512];
	int n, r;

	if (m->state_path == NULL)
		return CLI_EXIT_OK;
	cvm_hex_encode(sth->root_hash, 32, hex);
	n = snprintf(buf, sizeof(buf),
	             "{\"tree_size\": %" PRIu64 ", \"root_hash\": \"%s\", \"timestamp\": %" PRIu64
	             ", \"next\": %" PRIu64 "}\n",
	             sth->tree_size, hex, sth->timestamp, next);
	r = cvm_file_write(m->state_path, buf, (size_t)n, 0644);
	if (r != CVM_OK) {
		cli_err(CMD_MONITOR, "cannot write the state file '%s': %s", m->state_path, cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* ---- one pass --------------------------------------------------------------- */

static void alert(struct mon *m, const char *kind, json_t *detail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void alert(struct mon *m, const char *kind, json_t *detail, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ALERT: %s\n", msg);
	if (detail == NULL)
		detail = json_object();
	if (detail != NULL) {
		json_object_set_new(detail, "kind", json_string(kind));
		json_object_set_new(detail, "message", json_string(msg));
		json_array_append_new(m->alerts, detail);
	}
}

static bool key_trusted(const struct mon *m, const uint8_t h[32])
{
	size_t i;

	for (i = 0; i < m->trusted_count; i++)
		if (memcmp(m->trusted[i], h, 32) == 0)
			return true;
	return false;
}

static void check_entry(struct mon *m, uint64_t index, const struct cvm_ct_raw *raw)
{
	struct cvm_ct_entry *e = calloc(1, sizeof(*e));
	char names[1024], hex[65], issuer[300], serial[140];
	struct cvm_wr w;
	bool match = false;
	size_t i, d;
	int r;

	if (e == NULL) {
		alert(m, "unreadable", NULL, "log index %" PRIu64 ": out of memory reading the entry", index);
		return;
	}
	m->checked++;
	r = cvm_ct_entry_parse(raw->leaf, raw->leaf_len, e);
	if (r != CVM_OK) {
		/* A certificate this parser cannot read may still be one a browser
		 * takes: better a false alert than a missed one. */
		alert(m, "unreadable", json_pack("{s:I}", "index", (json_int_t)index),
		      "log index %" PRIu64 ": the entry cannot be read (%s): check it by hand", index,
		      cvm_strerror(r));
		goto out;
	}
	if (e->names_cut) {
		/* A name past the ones kept could be the domain: padding a
		 * certificate with names must not hide it. */
		alert(m, "too_many_names", json_pack("{s:I}", "index", (json_int_t)index),
		      "log index %" PRIu64
		      ": a certificate with more than %u names: too many to check, check "
		      "it by hand",
		      index, CVM_CT_NAMES_MAX);
		goto out;
	}
	for (i = 0; i < e->name_count && !match; i++)
		for (d = 0; d < m->domain_count && !match; d++)
			match = cvm_ct_name_covers(e->names[i], m->domains[d]);
	if (!match)
		goto out;
	m->matched++;
	cvm_hex_encode(e->spki_sha256, 32, hex);
	cvm_wr_init_text(&w, names, sizeof(names));
	for (i = 0; i < e->name_count; i++)
		cvm_wr_fmt(&w, "%s%s", i ? "," : "", e->names[i]);
	out_sanitize(e->issuer, issuer, sizeof(issuer));
	out_sanitize(e->serial, serial, sizeof(serial));
	if (key_trusted(m, e->spki_sha256)) {
		m->ok++;
		if (!cli_opts.quiet && !cli_opts.json)
			printf("ok: log index %" PRIu64 ": %s%s, serial %s: a quoted key\n", index, names,
			       e->is_precert ? " (precertificate)" : "", serial);
		goto out;
	}
	alert(m, "unquoted_key",
	      json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:b}", "index", (json_int_t)index, "timestamp",
	                (json_int_t)e->timestamp, "names", names, "serial", serial, "issuer", issuer,
	                "spki_sha256", hex, "precert", e->is_precert),
	      "log index %" PRIu64 " (timestamp %" PRIu64
	      " ms): %s for %s, serial %s, issuer '%s', with a key that "
	      "is not a quoted gateway key (SPKI SHA-256 %s)",
	      index, e->timestamp, e->is_precert ? "precertificate" : "certificate", names, serial, issuer,
	      hex);
out:
	cvm_ct_entry_cleanup(e);
	free(e);
}

static int pass(struct mon *m)
{
	struct cvm_ct_sth sth;
	uint8_t old_root[32], (*proof)[32] = NULL;
	uint64_t old_size = 0, old_next = 0, next, done = 0;
	bool have = false;
	size_t count = 0;
	int r, rc;

	rc = state_load(m, &have, &old_size, old_root, &old_next);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = cvm_ct_get_sth(m->client, &sth);
	if (r != CVM_OK) {
		cli_err(CMD_MONITOR, "%s", cvm_ct_client_error(m->client));
		return CLI_EXIT_ERROR;
	}
	if (cvm_ct_sth_verify(&sth, m->log_key) != CVM_OK) {
		alert(m, "sth_signature", json_pack("{s:I}", "tree_size", (json_int_t)sth.tree_size),
		      "the log's tree head (size %" PRIu64
		      ") has a signature that does not verify with --log-key",
		      sth.tree_size);
		return CLI_EXIT_OK;
	}
	if (have) {
		proof = calloc(CVM_CT_PROOF_MAX, 32);
		if (proof == NULL)
			return CLI_EXIT_ERROR;
		r = CVM_E_SIGNATURE;
		if (sth.tree_size >= old_size) {
			if (old_size != 0 && sth.tree_size != old_size) {
				r = cvm_ct_get_consistency(m->client, old_size, sth.tree_size, proof, &count);
				if (r != CVM_OK && r != CVM_E_FORMAT && r != CVM_E_TOO_LARGE) {
					cli_err(CMD_MONITOR, "%s", cvm_ct_client_error(m->client));
					free(proof);
					return CLI_EXIT_ERROR;
				}
			}
			if (r == CVM_OK || old_size == 0 || sth.tree_size == old_size)
				r = cvm_ct_consistency_verify(old_size, old_root, sth.tree_size,
				                              sth.root_hash, (const uint8_t(*)[32])proof,
				                              count);
		}
		free(proof);
		if (r != CVM_OK) {
			alert(m, "inconsistent",
			      json_pack("{s:I, s:I}", "old_tree_size", (json_int_t)old_size, "tree_size",
			                (json_int_t)sth.tree_size),
			      "the log's tree of size %" PRIu64
			      " is not consistent with the tree of size %" PRIu64
			      " seen before: the log rewrote its history (state file kept)",
			      sth.tree_size, old_size);
			return CLI_EXIT_OK;
		}
		next = old_next;
	} else if (m->from_set) {
		next = m->from < sth.tree_size ? m->from : sth.tree_size;
		if (!cli_opts.quiet && !cli_opts.json)
			printf("first run: from entry %" PRIu64 " (--from) to %" PRIu64 "\n", next,
			       sth.tree_size);
	} else {
		next = sth.tree_size;
		if (!cli_opts.quiet && !cli_opts.json)
			printf("first run: starting at the current tree size %" PRIu64
			       "; earlier entries are not checked (give --from 0 to check them)\n",
			       sth.tree_size);
	}
	while (next < sth.tree_size) {
		struct cvm_ct_raw *raw = NULL;
		size_t i;

		r = cvm_ct_get_entries(m->client, next, sth.tree_size - 1, &raw, &count);
		if (r != CVM_OK) {
			cli_err(CMD_MONITOR, "%s", cvm_ct_client_error(m->client));
			return CLI_EXIT_ERROR;
		}
		for (i = 0; i < count; i++)
			check_entry(m, next + i, &raw[i]);
		cvm_ct_raw_free(raw, count);
		next += count;
		/* The batch is done: a walk that stops now resumes after it. */
		rc = state_save(m, &sth, next);
		if (rc != CLI_EXIT_OK)
			return rc;
		done += count;
		if (!cli_opts.quiet && done % PROGRESS_EVERY < count)
			fprintf(stderr, "cvm %s: %" PRIu64 " of %" PRIu64 " entries read\n", CMD_MONITOR,
			        next, sth.tree_size);
	}
	return state_save(m, &sth, next);
}

static int print_json(struct mon *m)
{
	json_t *o =
	    json_pack("{s:I, s:I, s:I, s:O, s:O}", "checked", (json_int_t)m->checked, "matched",
	              (json_int_t)m->matched, "ok", (json_int_t)m->ok, "keys", m->keys, "alerts", m->alerts);
	int bad;

	if (o == NULL)
		return -1;
	bad = out_json_print(o);
	json_decref(o);
	return bad;
}

static int ct_monitor(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"log", required_argument, NULL, OPT_LOG},
	    {"log-key", required_argument, NULL, OPT_LOG_KEY},
	    {"domain", required_argument, NULL, OPT_DOMAIN},
	    {"acme-info", required_argument, NULL, OPT_ACME_INFO},
	    {"gateway", required_argument, NULL, OPT_GATEWAY},
	    {"state", required_argument, NULL, OPT_STATE},
	    {"from", required_argument, NULL, OPT_FROM},
	    {"once", no_argument, NULL, OPT_ONCE},
	    {"interval", required_argument, NULL, OPT_INTERVAL},
	    {"allow-insecure-http", no_argument, NULL, OPT_INSECURE_HTTP},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    CLI_COLL_LONGOPTS,
	    CLI_COMMON_LONGOPTS,
	};
	struct mon *m;
	uint8_t *buf = NULL;
	size_t len = 0;
	char perr[512], *end;
	int c, k, r, rc = CLI_EXIT_USAGE;
	bool alerted = false;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return CLI_EXIT_ERROR;
	m->interval = 300;
	cvm_policy_init(&m->policy);
	m->alerts = json_array();
	m->keys = json_array();
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		k = cli_coll_option(CMD_MONITOR, &m->coll, c, optarg);
		if (k < 0)
			goto out;
		if (k > 0)
			continue;
		switch (c) {
		case OPT_LOG:
			m->log_url = optarg;
			break;
		case OPT_LOG_KEY:
			m->log_key_path = optarg;
			break;
		case OPT_DOMAIN:
			if (m->domain_count == DOMAINS_MAX || !cvm_dns_name_ok(optarg)) {
				cli_err(CMD_MONITOR, "--domain '%s': %s", optarg,
				        m->domain_count == DOMAINS_MAX ? "at most 16 domains"
				                                       : "not a DNS name");
				goto out;
			}
			m->domains[m->domain_count++] = optarg;
			break;
		case OPT_ACME_INFO:
			m->acme_path = optarg;
			break;
		case OPT_GATEWAY:
			m->gateway = optarg;
			break;
		case OPT_STATE:
			m->state_path = optarg;
			break;
		case OPT_FROM:
			m->from = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0') {
				cli_err(CMD_MONITOR, "--from '%s': expected an entry index", optarg);
				goto out;
			}
			m->from_set = true;
			break;
		case OPT_ONCE:
			m->once = true;
			break;
		case OPT_INTERVAL: {
			unsigned long v = strtoul(optarg, &end, 10);

			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || v == 0 ||
			    v > INTERVAL_MAX) {
				cli_err(CMD_MONITOR, "--interval '%s': expected 1..86400 seconds", optarg);
				goto out;
			}
			m->interval = (unsigned)v;
			break;
		}
		case OPT_INSECURE_HTTP:
			m->insecure_http = true;
			break;
		case OPT_ROOT:
			m->root_path = optarg;
			break;
		case OPT_POLICY:
			m->policy_path = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			cli_bad_option(CMD_MONITOR, c, argv, "cvm help ct");
			goto out;
		}
	}
	cli_apply_verbosity();
	if (optind != argc || m->log_url == NULL || m->log_key_path == NULL || m->domain_count == 0 ||
	    (m->acme_path == NULL) == (m->gateway == NULL)) {
		cli_err(CMD_MONITOR,
		        "--log, --log-key, --domain and one of --acme-info and --gateway are required; "
		        "see 'cvm help ct'");
		goto out;
	}
	rc = cli_coll_check(CMD_MONITOR, &m->coll);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	m->at = (int64_t)time(NULL);
	if (m->alerts == NULL || m->keys == NULL)
		goto out;
	if (m->policy_path != NULL) {
		r = cvm_policy_load_file(m->policy_path, &m->policy, perr, sizeof(perr));
		if (r != CVM_OK) {
			cli_err(CMD_MONITOR, "policy file '%s': %s; fix it (see docs/policy.md)",
			        m->policy_path, perr);
			goto out;
		}
	}
	if (m->root_path != NULL && cli_load_cert(CMD_MONITOR, "--root certificate", m->root_path, &m->root,
	                                          &m->root_len) != CLI_EXIT_OK)
		goto out;
	if (cli_read_file(CMD_MONITOR, "--log-key", m->log_key_path, CVM_PUBKEY_FILE_MAX, &buf, &len) !=
	    CLI_EXIT_OK)
		goto out;
	r = cvm_pubkey_parse(buf, len, &m->log_key);
	free(buf);
	buf = NULL;
	if (r != CVM_OK) {
		cli_err(CMD_MONITOR,
		        "--log-key '%s': %s; give the log's public key (PEM SubjectPublicKeyInfo)",
		        m->log_key_path, cvm_strerror(r));
		goto out;
	}
	r = cvm_ct_client_new(m->log_url, m->insecure_http, TIMEOUT_S, &m->client);
	if (r != CVM_OK) {
		cli_err(CMD_MONITOR, "--log '%s': not an https:// URL (http:// needs --allow-insecure-http)",
		        m->log_url);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (m->acme_path != NULL)
		rc = cli_read_file(CMD_MONITOR, "--acme-info", m->acme_path, ACME_INFO_MAX, &buf, &len);
	else
		rc = fetch_gateway(m, (char **)&buf, &len);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = load_acme_info(m, (const char *)buf, len);
	if (rc != CLI_EXIT_OK)
		goto out;
	for (;;) {
		rc = pass(m);
		if (rc != CLI_EXIT_OK && !m->once) {
			/* A log that is down for a while is not a reason to stop
			 * watching it; the message above said why this pass failed. */
			fprintf(stderr, "cvm %s: the pass did not finish; next try in %u s\n", CMD_MONITOR,
			        m->interval);
			sleep(m->interval);
			continue;
		}
		if (rc != CLI_EXIT_OK)
			break;
		if (json_array_size(m->alerts) != 0)
			alerted = true;
		if (cli_opts.json && print_json(m) != 0) {
			rc = CLI_EXIT_ERROR;
			break;
		}
		if (!cli_opts.json && !cli_opts.quiet)
			printf("%" PRIu64 " entries read, %" PRIu64 " for the domains, %" PRIu64
			       " with a quoted key, %zu alert%s\n",
			       m->checked, m->matched, m->ok, json_array_size(m->alerts),
			       json_array_size(m->alerts) == 1 ? "" : "s");
		if (m->once)
			break;
		/* Each pass reports its own findings. */
		m->checked = m->matched = m->ok = 0;
		json_array_clear(m->alerts);
		(void)fflush(stdout);
		sleep(m->interval);
	}
	if (rc == CLI_EXIT_OK && alerted)
		rc = CLI_EXIT_REJECTED;
out:
	free(buf);
	cvm_ct_client_free(m->client);
	cvm_pubkey_free(m->log_key);
	free(m->root);
	json_decref(m->alerts);
	json_decref(m->keys);
	free(m);
	return rc;
}

int cmd_ct(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"monitor", ct_monitor},
	};

	return cli_dispatch("ct", subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}
