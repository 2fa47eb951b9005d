/* cvm verify: prove over the network that a running VM still matches its
 * snapshot.
 *
 *   cvm verify --url https://HOST:PORT --snapshot FILE [--collateral DIR | --cache DIR ...] [--root CERT]
 *              [--policy FILE] [--at T] [--json] [-v]
 *
 * Always a fresh random nonce; the evidence is verified in full
 * (cvm_evidence_verify) and then compared with the snapshot: the AK, the TEE
 * measurements, the boot PCRs and every quoted IMA entry. See
 * docs/cli/cvm-verify.md. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/evidence.h>
#include <cvmkit/tee.h>

#include "cli.h"
#include "output.h"
#include "snapshot.h"

#define CMD "verify"
#define CHECKS_MAX 16u
#define UNKNOWN_SHOWN_MAX 200u /* IMA entries printed; --json lists them all */

enum { OPT_URL = 0x200, OPT_SNAPSHOT, OPT_ROOT, OPT_POLICY, OPT_AT };

struct check {
	const char *name;
	bool ok;
	char reason[512];
};

struct vctx {
	struct snap_remote rm;
	const char *snapshot_path;
	json_t *snap, *pdoc, *fresh, *unknown;
	struct cvm_policy policy;
	struct snap_evidence e;
	struct check checks[CHECKS_MAX];
	size_t check_count;
	bool rebooted;
	double t_compare;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cvm verify --url https://HOST:PORT --snapshot FILE [--collateral DIR] [--root CERT]\n"
	    "                  [--policy FILE] [--at UNIX_SECONDS] [--json] [-v]\n"
	    "                  [--cache DIR] [--intel-url URL] [--amd-url URL] [--offline]\n"
	    "                  [--refresh] [--refresh-after S] [--timeout MS] [--product NAME]\n"
	    "\n"
	    "Proves that the VM behind cvm-agentd's TLS listener still matches the snapshot: a fresh\n"
	    "random nonce; the TDX quote or SEV-SNP report (policy, debug, TCB), the binding, the\n"
	    "event log (TDX), the TPM quote and its AK (TDX: recorded in RTMR3; SEV-SNP: bound by the\n"
	    "report; and the snapshot's), the IMA prefix PCR 10 covers, every IMA entry in the\n"
	    "snapshot, the boot PCRs and TEE measurements equal to the snapshot's (a snapshot of the\n"
	    "other platform is refused). A reboot since the snapshot is reported on its own line.\n"
	    "  --url https://HOST:PORT  the agent's TLS listener\n"
	    "  --snapshot FILE          the snapshot (cvm snapshot)\n"
	    "  --collateral DIR         a folder holding tdx/ and/or snp/ (a simulator's DIR/collateral),\n"
	    "                           or the one platform's files; without it, the collateral cache\n"
	    "  --cache DIR, --intel-url, --amd-url, --offline, --refresh, --refresh-after S,\n"
	    "  --timeout MS, --product NAME: the cache, as in 'cvm help quote'\n"
	    "  --root CERT              the anchor: Intel's root CA (TDX) or the ARK (SEV-SNP) to pin\n"
	    "                           (default: Intel's own, AMD's built-in ARKs)\n"
	    "  --policy FILE            appraisal policy (default: the one the snapshot recorded)\n"
	    "  --at UNIX_SECONDS        verification time (default: now)\n"
	    "  -v                       the time of each step\n"
	    "Exit codes: 0 every check passed, 1 error, 2 usage, 3 a check failed.\n");
}

static struct check *add(struct vctx *v, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static struct check *add(struct vctx *v, const char *name, bool ok, const char *fmt, ...)
{
	struct check *c;
	va_list ap;

	if (v->check_count == CHECKS_MAX)
		return NULL;
	c = &v->checks[v->check_count++];
	c->name = name;
	c->ok = ok;
	va_start(ap, fmt);
	(void)vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	return c;
}

static const char *jget(json_t *d, const char *a, const char *b)
{
	const char *s = json_string_value(json_object_get(json_object_get(d, a), b));

	return s != NULL ? s : "";
}

/* culprit_of names the line of a failed step of cvm_evidence_verify's
 * report; NULL for a step that no line names. Steps outside the
 * "evidence.", "tpm" and "ima" names are the TEE quote's verification. */
static const char *culprit_of(const char *step)
{
	if (step == NULL)
		return NULL;
	if (strcmp(step, "evidence.nonce") == 0 || strcmp(step, "evidence.binding") == 0)
		return "nonce";
	if (strcmp(step, "evidence.event_log") == 0)
		return "event log";
	if (strcmp(step, "evidence.snp_cert_table") == 0)
		return "tee"; /* the report's chain */
	if (strcmp(step, "evidence.ak_event") == 0)
		return "tpm ak";
	if (strncmp(step, "tpm", 3) == 0)
		return "tpm quote";
	if (strncmp(step, "ima", 3) == 0)
		return "ima replay";
	if (strncmp(step, "evidence", 8) == 0)
		return NULL;
	return "tee";
}

/* evidence_checks turns cvm_evidence_verify's result into one line per
 * step: the first step not reached carries the reason. */
static void evidence_checks(struct vctx *v)
{
	const struct cvm_evidence_result *res = &v->e.res;
	char reason[1024] = "";
	bool failed = v->e.verdict != CVM_OK, blamed = false, is_snp = v->e.platform == CVM_EVIDENCE_SNP;
	const char *culprit = NULL;
	struct {
		const char *name;
		bool ok;
		char text[256];
	} s[6];

	if (failed) {
		snap_verdict_reason(&v->e, v->rm.root != NULL, reason, sizeof(reason));
		culprit = culprit_of(v->e.rep.failed != NULL ? v->e.rep.failed->name : NULL);
	}
	s[0].name = "nonce";
	s[0].ok = res->bound;
	(void)snprintf(s[0].text, sizeof(s[0].text),
	               "a fresh random 32-byte nonce; the quote's report_data binds it and the AK");
	s[1].name = "tee";
	s[1].ok = res->tee_verified;
	if (is_snp)
		(void)snprintf(
		    s[1].text, sizeof(s[1].text),
		    "SEV-SNP report verified by AMD's rules (chain to the pinned ARK, CRL, signature, "
		    "reported TCB against the %s), accepted by the policy (debug rejected unless it "
		    "allows it)",
		    res->amd.signer == CVM_SNP_SIGNER_VLEK ? "VLEK" : "VCEK");
	else
		(void)snprintf(s[1].text, sizeof(s[1].text),
		               "TDX quote verified by Intel's rules, TCB %s, accepted by the policy (debug "
		               "rejected unless it allows it)",
		               cvm_tcb_status_name(res->dcap.tcb_status));
	s[2].name = "event log";
	s[3].name = "tpm ak";
	if (is_snp) {
		/* No runtime register exists: there is no log to replay, and the
		 * AK is anchored by the report_data binding alone (the agent's
		 * caller rule, include/cvmkit/evidence.h). */
		s[2].ok = res->tee_verified;
		(void)snprintf(s[2].text, sizeof(s[2].text),
		               "SEV-SNP has no runtime measurement register: no event log to replay (the "
		               "launch measurement is the report's)");
		s[3].ok = res->bound;
		(void)snprintf(s[3].text, sizeof(s[3].text),
		               "the report's report_data binds the AK (SEV-SNP: no register records it; only "
		               "the agent and the uids its operator allows get raw report_data)");
	} else {
		s[2].ok = res->rtmrs_replayed;
		(void)snprintf(s[2].text, sizeof(s[2].text), "%zu events replay to RTMR0..3",
		               res->event_count);
		s[3].ok = res->ak_recorded;
		(void)snprintf(s[3].text, sizeof(s[3].text),
		               "the AK is the one the system recorded in RTMR3 before any app event");
	}
	s[4].name = "tpm quote";
	s[4].ok = res->tpm_verified;
	(void)snprintf(s[4].text, sizeof(s[4].text), "signed by the AK over the nonce and the PCR values");
	s[5].name = "ima replay";
	s[5].ok = res->ima_verified;
	(void)snprintf(s[5].text, sizeof(s[5].text), "PCR 10 covers the first %llu of %llu entries",
	               (unsigned long long)res->ima_quoted_entries,
	               (unsigned long long)res->ima_total_entries);
	/* The line to blame is the one of the step that failed (the report's
	 * first failure); the lines it kept from being checked say so. */
	for (size_t i = 0; i < 6; i++) {
		if (s[i].ok)
			(void)add(v, s[i].name, true, "%s", s[i].text);
		else if (!blamed && (culprit == NULL || strcmp(culprit, s[i].name) == 0)) {
			(void)add(v, s[i].name, false, "%s", reason[0] != '\0' ? reason : "not verified");
			blamed = true;
		} else {
			(void)add(v, s[i].name, false, "not checked: %s",
			          blamed ? "an earlier step failed" : "a later step failed first");
		}
	}
	if (failed && !blamed) /* a failure no line names (a required part missing) */
		(void)add(v, "evidence", false, "%s", reason[0] != '\0' ? reason : "not verified");
}

static size_t pcrs_compare(json_t *want, json_t *got, char *diff, size_t cap)
{
	const char *bk, *k;
	json_t *bank, *val;
	size_t n = 0, o = 0;

	diff[0] = '\0';
	json_object_foreach(want, bk, bank)
	{
		json_object_foreach(bank, k, val)
		{
			json_t *g = json_object_get(json_object_get(got, bk), k);

			if (g != NULL && json_equal(g, val))
				continue;
			n++;
			if (o < cap)
				o += (size_t)snprintf(diff + o, cap - o, "%s%s:%s", n > 1 ? ", " : "", bk, k);
		}
	}
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* tee_compare adds the "tee measurements" line: every field of the
 * platform's "tee" section that identifies the guest, by name. */
static void tee_compare(struct vctx *v, bool is_snp)
{
	static const char *const tdx_fields[] = {"mrtd",         "rtmr0",         "rtmr1",
	                                         "rtmr2",        "td_attributes", "xfam",
	                                         "mr_config_id", "mr_owner",      "mr_owner_config"};
	static const char *const snp_fields[] = {
	    "measurement", "host_data", "id_key_digest", "author_key_digest", "family_id", "image_id",
	    "policy",      "guest_svn", "signer"};
	const char *const *fields = is_snp ? snp_fields : tdx_fields;
	size_t count = is_snp ? sizeof(snp_fields) / sizeof(snp_fields[0])
	                      : sizeof(tdx_fields) / sizeof(tdx_fields[0]),
	       n = 0;
	json_t *want = json_object_get(v->snap, "tee"), *got = json_object_get(v->fresh, "tee");
	char diff[512] = "";

	for (size_t i = 0; i < count; i++) {
		json_t *a = json_object_get(want, fields[i]), *b = json_object_get(got, fields[i]);

		if (a != NULL && b != NULL && json_equal(a, b))
			continue;
		(void)snprintf(diff + strlen(diff), sizeof(diff) - strlen(diff), "%s%s", n > 0 ? ", " : "",
		               fields[i]);
		n++;
	}
	if (n == 0)
		(void)add(v, "tee measurements", true, "%s equal the snapshot's",
		          is_snp
		              ? "the SEV-SNP measurement, host_data, ID and author key digests, family and "
		                "image IDs, guest policy, guest SVN and signing key kind"
		              : "MRTD, RTMR0..2, the TD attributes, XFAM, MRCONFIGID, MROWNER and "
		                "MROWNERCONFIG");
	else
		(void)add(v, "tee measurements", false, "%s differ from the snapshot's", diff);
}

/* tcb_floor adds the "tcb floor" line: the platform's TCB may have risen
 * since the snapshot (a firmware or TDX module update), never fallen (a
 * host that rolls back to a vulnerable version). TDX: every byte of the TEE
 * TCB SVN; SEV-SNP: every SVN of the reported TCB. */
static void tcb_floor(struct vctx *v, bool is_snp)
{
	static const char *const snp_parts[] = {"bootloader", "tee", "snp", "microcode", "fmc"};
	json_t *want = json_object_get(v->snap, "tee"), *got = json_object_get(v->fresh, "tee");
	char below[256] = "";
	size_t n = 0;
	bool raised = false;

	if (is_snp) {
		json_t *a = json_object_get(want, "reported_tcb"), *b = json_object_get(got, "reported_tcb");

		for (size_t i = 0; i < sizeof(snp_parts) / sizeof(snp_parts[0]); i++) {
			json_t *x = json_object_get(a, snp_parts[i]), *y = json_object_get(b, snp_parts[i]);

			if (x == NULL && y == NULL)
				continue;
			if (x != NULL && y != NULL && json_integer_value(y) >= json_integer_value(x)) {
				raised |= json_integer_value(y) > json_integer_value(x);
				continue;
			}
			(void)snprintf(below + strlen(below), sizeof(below) - strlen(below),
			               "%s%s %lld < %lld", n > 0 ? ", " : "", snp_parts[i],
			               (long long)json_integer_value(y), (long long)json_integer_value(x));
			n++;
		}
	} else {
		uint8_t a[16], b[16];
		size_t la = 0, lb = 0;
		const char *ha = jget(v->snap, "tee", "tee_tcb_svn"),
		           *hb = jget(v->fresh, "tee", "tee_tcb_svn");

		if (cvm_hex_decode(ha, strlen(ha), a, sizeof(a), &la) != CVM_OK ||
		    cvm_hex_decode(hb, strlen(hb), b, sizeof(b), &lb) != CVM_OK || la != 16 || lb != 16) {
			(void)add(v, "tcb floor", false, "the TEE TCB SVN cannot be read");
			return;
		}
		for (size_t i = 0; i < sizeof(a); i++) {
			if (b[i] >= a[i]) {
				raised |= b[i] > a[i];
				continue;
			}
			(void)snprintf(below + strlen(below), sizeof(below) - strlen(below),
			               "%sTEE TCB SVN byte %zu: %u < %u", n > 0 ? ", " : "", i, b[i], a[i]);
			n++;
		}
	}
	if (n != 0)
		(void)add(v, "tcb floor", false, "the platform's TCB fell below the snapshot's: %s", below);
	else if (raised)
		(void)add(v, "tcb floor", true, "the platform's TCB rose since the snapshot (%s)",
		          is_snp ? "a firmware update" : "a TDX module update");
	else if (!is_snp && strcmp(jget(v->snap, "tee", "mr_seam"), jget(v->fresh, "tee", "mr_seam")) != 0)
		(void)add(
		    v, "tcb floor", true,
		    "the platform's TCB is the snapshot's; the TDX module's measurement (MRSEAM) changed");
	else
		(void)add(v, "tcb floor", true, "the platform's TCB is the snapshot's");
}

/* compare_snapshot compares the fresh document with the snapshot. */
static int compare_snapshot(struct vctx *v)
{
	json_t *sent = json_object_get(json_object_get(v->snap, "ima"), "entries"), *fent, *ent;
	char diff[512], **keys = NULL, buf[4096 + 256];
	size_t n, nkeys, i, unknown = 0, via_files = 0;
	json_int_t then, now;

	/* The agent's TLS key: the connection check proved it is the one RTMR3
	 * recorded in this boot (SEV-SNP: the one the certificate's report
	 * binds). An agent whose key lives on a tmpfs makes a new one at every
	 * boot, so a new key is reported, not failed. */
	if (strcmp(jget(v->snap, "tee", "agent_key_sha256"), jget(v->fresh, "tee", "agent_key_sha256")) == 0)
		(void)add(v, "agent key", true, "the agent's TLS key is the snapshot's");
	else
		(void)add(
		    v, "agent key", true,
		    "the agent's TLS key is not the snapshot's (SHA-256 of its SPKI %s): a new key since "
		    "the snapshot, %s",
		    jget(v->fresh, "tee", "agent_key_sha256"),
		    v->e.platform == CVM_EVIDENCE_SNP ? "the one the certificate's SEV-SNP report binds"
		                                      : "the one RTMR3 recorded in this boot");
	/* the AK */
	if (strcmp(jget(v->snap, "tpm", "ak_name"), jget(v->fresh, "tpm", "ak_name")) == 0)
		(void)add(v, "ak", true, "the TPM attestation key is the snapshot's (%s)",
		          jget(v->fresh, "tpm", "ak_name"));
	else
		(void)add(v, "ak", false,
		          "the TPM attestation key %s is not the snapshot's %s: another TPM or key",
		          jget(v->fresh, "tpm", "ak_name"), jget(v->snap, "tpm", "ak_name"));
	tee_compare(v, v->e.platform == CVM_EVIDENCE_SNP);
	tcb_floor(v, v->e.platform == CVM_EVIDENCE_SNP);
	/* boot PCRs */
	n = pcrs_compare(json_object_get(json_object_get(v->snap, "tpm"), "pcrs"),
	                 json_object_get(json_object_get(v->fresh, "tpm"), "pcrs"), diff, sizeof(diff));
	if (n == 0)
		(void)add(v, "boot pcrs", true, "PCRs 0..9 equal the snapshot's");
	else
		(void)add(v, "boot pcrs", false, "%zu PCR values differ from the snapshot's: %s", n, diff);
	/* IMA entries against the reference set */
	keys = calloc(json_array_size(sent) + 1, sizeof(*keys));
	if (keys == NULL)
		return CLI_EXIT_ERROR;
	nkeys = 0;
	json_array_foreach(sent, i, ent)
	{
		keys[i] = strdup(snap_entry_key(ent, buf, sizeof(buf)));
		if (keys[i] == NULL)
			goto nomem;
		nkeys++;
	}
	qsort(keys, nkeys, sizeof(*keys), cmp_str);
	json_array_foreach(json_object_get(json_object_get(v->fresh, "ima"), "entries"), i, fent)
	{
		const char *k = snap_entry_key(fent, buf, sizeof(buf));

		if (bsearch(&k, keys, nkeys, sizeof(*keys), cmp_str) != NULL)
			continue;
		if (snap_files_has(v->snap, k)) { /* on disk at snapshot time, run since */
			via_files++;
			continue;
		}
		if (json_array_append(v->unknown, fent) != 0)
			goto nomem;
		unknown++;
	}
	diff[0] = '\0';
	if (json_object_get(v->snap, "files") != NULL)
		(void)snprintf(diff, sizeof(diff), " (%zu of them through its file set)", via_files);
	if (unknown == 0)
		(void)add(v, "ima", true, "every one of the %llu quoted IMA entries is in the snapshot%s",
		          (unsigned long long)v->e.res.ima_quoted_entries, diff);
	else
		(void)add(v, "ima", false, "%zu measured (path, digest) pairs are not in the snapshot%s",
		          unknown, json_object_get(v->snap, "files") != NULL ? " nor in its file set" : "");
	/* reboot */
	then = json_integer_value(json_object_get(json_object_get(v->snap, "tpm"), "reset_count"));
	now = (json_int_t)v->e.res.tpm.attest.reset_count;
	v->rebooted = then != now;
	if (v->rebooted)
		(void)add(
		    v, "reboot", true,
		    "the VM rebooted since the snapshot (TPM resetCount %lld, %lld in the snapshot); not a "
		    "failure by itself: every check above is of this boot",
		    (long long)now, (long long)then);
	else
		(void)add(v, "reboot", true, "no reboot since the snapshot (TPM resetCount %lld)",
		          (long long)now);
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	return CLI_EXIT_OK;
nomem:
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	return CLI_EXIT_ERROR;
}

/* platform_matches adds the failing "platform" line when the snapshot is of
 * another TEE than the evidence. */
static bool platform_matches(struct vctx *v)
{
	const char *want = json_string_value(json_object_get(v->snap, "platform"));
	const char *got = v->e.platform == CVM_EVIDENCE_SNP ? "snp" : "tdx";

	if (want != NULL && strcmp(want, got) == 0)
		return true;
	(void)add(v, "platform", false,
	          "the snapshot is of a %s guest and the agent's evidence is %s: not compared (take a "
	          "snapshot of this VM on its own platform)",
	          want != NULL && strcmp(want, "snp") == 0 ? "SEV-SNP" : "TDX",
	          v->e.platform == CVM_EVIDENCE_SNP ? "SEV-SNP" : "TDX");
	return false;
}

static bool all_ok(const struct vctx *v)
{
	for (size_t i = 0; i < v->check_count; i++)
		if (!v->checks[i].ok)
			return false;
	return v->check_count > 0 && v->e.verdict == CVM_OK && v->e.rejected[0] == '\0';
}

static void print_text(const struct vctx *v, double total)
{
	json_t *ent;
	size_t i, j;

	if (v->e.simulated)
		printf("%s\n", CVM_TEE_SIMULATED_BANNER);
	for (i = 0; i < v->check_count; i++) {
		printf("[%s] %s: %s\n", v->checks[i].ok ? " OK " : "FAIL", v->checks[i].name,
		       v->checks[i].reason);
		if (strcmp(v->checks[i].name, "ima") == 0)
			json_array_foreach(v->unknown, j, ent)
			{
				if (j == UNKNOWN_SHOWN_MAX) {
					printf("       ... and %zu more (--json lists them all)\n",
					       json_array_size(v->unknown) - j);
					break;
				}
				printf("       not in the snapshot: %s (%s)\n",
				       json_string_value(json_object_get(ent, "path")),
				       json_string_value(json_object_get(ent, "digest")));
			}
	}
	if (v->e.from_cache)
		cli_cache_info_text(&v->e.coll_info);
	if (cli_opts.verbose > 0) {
		double own = v->e.t_setup + v->e.t_check + v->e.t_verify + v->t_compare;

		printf(
		    "time: setup (anchor, nonce) %.1f ms, TLS handshake %.1f ms of which the collateral and "
		    "the RA-TLS check %.1f ms, GetEvidence %.1f ms, evidence verification %.1f ms, snapshot "
		    "comparison %.1f ms\n",
		    v->e.t_setup, v->e.t_handshake, v->e.t_check, v->e.t_request, v->e.t_verify,
		    v->t_compare);
		printf(
		    "time: total %.1f ms = cvmkit %.1f ms + the guest's quotes and the network %.1f ms (the "
		    "handshake's collateral and certificate check are counted as cvmkit's)\n",
		    total, own, total - own);
	}
	printf("verdict: %s\n", all_ok(v) ? "the VM matches the snapshot"
	                                  : "REJECTED: the VM does not match "
	                                    "the snapshot");
}

static int print_json(const struct vctx *v, double total)
{
	json_t *o = json_object(), *arr = json_array(), *t = json_object();
	int bad = o == NULL || arr == NULL || t == NULL;

	if (bad) {
		json_decref(o);
		json_decref(arr);
		json_decref(t);
		return -1;
	}
	bad |= out_jset_str(o, "verdict", all_ok(v) ? "accepted" : "rejected");
	bad |= out_jset(o, "simulated", json_boolean(v->e.simulated));
	bad |= out_jset_str(o, "url", v->rm.url);
	bad |= out_jset_str(o, "snapshot", v->snapshot_path);
	bad |= out_jset_hex(o, "nonce", v->e.nonce, sizeof(v->e.nonce));
	bad |= out_jset(o, "checks", arr);
	for (size_t i = 0; i < v->check_count; i++) {
		json_t *c = json_object();

		bad |= c == NULL || json_array_append_new(arr, c) != 0;
		bad |= out_jset_str(c, "name", v->checks[i].name);
		bad |= out_jset(c, "ok", json_boolean(v->checks[i].ok));
		bad |= out_jset_str(c, "reason", v->checks[i].reason);
	}
	bad |= out_jset(o, "ima_not_in_snapshot", json_incref(v->unknown));
	bad |= out_jset(o, "rebooted", json_boolean(v->rebooted));
	if (v->e.from_cache)
		bad |= cli_cache_info_json(o, &v->e.coll_info);
	bad |= out_jset(o, "timings_ms", t);
	bad |= out_jset(t, "setup", json_real(v->e.t_setup));
	bad |= out_jset(t, "handshake", json_real(v->e.t_handshake));
	bad |= out_jset(t, "get_evidence", json_real(v->e.t_request));
	bad |= out_jset(t, "peer_check", json_real(v->e.t_check));
	bad |= out_jset(t, "verify", json_real(v->e.t_verify));
	bad |= out_jset(t, "compare", json_real(v->t_compare));
	bad |= out_jset(t, "total", json_real(total));
	bad |= out_jset(t, "cvmkit", json_real(v->e.t_setup + v->e.t_check + v->e.t_verify + v->t_compare));
	if (bad == 0)
		bad = out_json_print(o);
	json_decref(o);
	return bad;
}

static int parse_args(struct vctx *v, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"url", required_argument, NULL, OPT_URL},
	    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"at", required_argument, NULL, OPT_AT},
	    CLI_COLL_LONGOPTS,
	    CLI_COMMON_LONGOPTS,
	};
	bool at_set = false;
	int c, k;

	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		k = cli_coll_option(CMD, &v->rm.coll, c, optarg);
		if (k < 0)
			return CLI_EXIT_USAGE;
		if (k > 0)
			continue;
		switch (c) {
		case OPT_URL:
			v->rm.url = optarg;
			break;
		case OPT_SNAPSHOT:
			v->snapshot_path = optarg;
			break;
		case OPT_ROOT:
			v->rm.root = optarg;
			break;
		case OPT_POLICY:
			v->rm.policy = optarg;
			break;
		case OPT_AT:
			if (!cli_parse_time(optarg, &v->rm.at)) {
				cli_err(CMD, "--at '%.40s': expected Unix seconds", optarg);
				return CLI_EXIT_USAGE;
			}
			at_set = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			cli_bad_option(CMD, c, argv, "cvm help verify");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc || v->rm.url == NULL || v->snapshot_path == NULL) {
		cli_err(CMD, "usage: cvm verify --url https://HOST:PORT --snapshot FILE [--collateral DIR | "
		             "--cache DIR ...] [options]");
		return CLI_EXIT_USAGE;
	}
	if (cli_coll_check(CMD, &v->rm.coll) != CLI_EXIT_OK)
		return CLI_EXIT_USAGE;
	if (!snap_parse_url(&v->rm)) {
		cli_err(CMD, "--url '%s' is not https://HOST:PORT", v->rm.url);
		return CLI_EXIT_USAGE;
	}
	if (!at_set)
		v->rm.at = (int64_t)time(NULL);
	return CLI_EXIT_OK;
}

static double now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int cmd_verify(int argc, char **argv)
{
	struct vctx *v = calloc(1, sizeof(*v));
	char why[512];
	double t0 = now_ms(), t1;
	int rc;

	if (v == NULL) {
		cli_err(CMD, "out of memory");
		return CLI_EXIT_ERROR;
	}
	rc = parse_args(v, argc, argv);
	if (rc != CLI_EXIT_OK) {
		rc = rc < 0 ? CLI_EXIT_OK : rc;
		goto out;
	}
	cli_apply_verbosity();
	rc = CLI_EXIT_ERROR;
	v->snap = snap_load(v->snapshot_path, why, sizeof(why));
	if (v->snap == NULL) {
		cli_err(CMD, "'%s' is not a usable snapshot: %s (take one with cvm snapshot)",
		        v->snapshot_path, why);
		goto out;
	}
	if (v->rm.policy != NULL) {
		rc = snap_load_policy(CMD, v->rm.policy, &v->policy, &v->pdoc);
		if (rc != CLI_EXIT_OK)
			goto out;
	} else {
		json_t *p = json_object_get(json_object_get(v->snap, "tcb"), "policy");
		char *text = json_is_object(p) ? json_dumps(p, JSON_COMPACT) : NULL;

		cvm_policy_init(&v->policy);
		if (text != NULL &&
		    cvm_policy_parse_json(text, strlen(text), &v->policy, why, sizeof(why)) != CVM_OK) {
			cli_err(CMD, "the policy the snapshot recorded does not parse: %s", why);
			free(text);
			goto out;
		}
		free(text);
	}
	v->unknown = json_array();
	if (v->unknown == NULL) {
		cli_err(CMD, "out of memory");
		goto out;
	}
	rc = snap_fetch(CMD, &v->rm, &v->policy, &v->e);
	if (rc != CLI_EXIT_OK && rc != CLI_EXIT_REJECTED)
		goto out;
	t1 = now_ms();
	if (rc == CLI_EXIT_REJECTED) {
		(void)add(v, "connection", false, "the agent's RA-TLS certificate is rejected: %s",
		          v->e.rejected);
		(void)add(v, "snapshot", false, "not compared: no evidence from a rejected peer");
	} else {
		(void)add(
		    v, "connection", true,
		    "TLS 1.3 to the agent's identity key, %s; its RA-TLS certificate verified under the "
		    "policy",
		    v->e.platform == CVM_EVIDENCE_SNP
		        ? "the one its certificate's SEV-SNP report binds (no register records it on SEV-SNP)"
		        : "the one it recorded in RTMR3");
		evidence_checks(v);
	}
	/* Nothing is compared with a rejected peer, nor across platforms: a TDX
	 * snapshot is no reference for SEV-SNP evidence, nor the reverse. */
	if (rc == CLI_EXIT_REJECTED || (v->e.verdict == CVM_OK && !platform_matches(v))) {
		/* nothing to compare */
	} else if (v->e.verdict == CVM_OK) {
		v->fresh = snap_document(&v->rm, &v->e, NULL, why, sizeof(why));
		if (v->fresh == NULL) {
			cli_err(CMD, "cannot read the evidence: %s", why);
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		if (compare_snapshot(v) != CLI_EXIT_OK) {
			cli_err(CMD, "out of memory");
			rc = CLI_EXIT_ERROR;
			goto out;
		}
	} else {
		(void)add(v, "snapshot", false, "not compared: the evidence did not verify");
	}
	v->t_compare = now_ms() - t1;
	rc = all_ok(v) ? CLI_EXIT_OK : CLI_EXIT_REJECTED;
	if (cli_opts.json) {
		if (print_json(v, now_ms() - t0) != 0) {
			cli_err(CMD, "cannot write the JSON output");
			rc = CLI_EXIT_ERROR;
		}
	} else {
		print_text(v, now_ms() - t0);
	}
out:
	snap_evidence_cleanup(&v->e);
	json_decref(v->snap);
	json_decref(v->pdoc);
	json_decref(v->fresh);
	json_decref(v->unknown);
	free(v);
	return rc;
}
