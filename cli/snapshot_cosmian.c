/* Cosmian VM's snapshot file (its `cosmian_vm snapshot` output; the format is
 * described in docs/cli/cvm-snapshot.md "Cosmian VM's snapshots"): read,
 * shown, and carried into a cvmkit snapshot of the same VM after its TEE
 * policy was checked against the VM's verified evidence.
 *
 * A Cosmian snapshot is one JSON object: `cloud_type` (optional), `tee_policy`
 * ({"Tdx": {"header": {...}, "body": {...}}} or {"Sev": {...}}), `tpm_policy`
 * (null or {reset_count, restart_count}) and `filehashes` (null or [[path,
 * hex digest], ...]). Every policy field may be null. It lacks what cvmkit's
 * own snapshot records (RTMRs, boot PCRs, the AK, the reserved RTMR3 events),
 * so it is never verified against by itself: `cvm snapshot --cosmian FILE`
 * takes a full snapshot of the live VM, refuses it when the VM's verified
 * evidence breaks a field of the Cosmian policy, and adds the Cosmian file's
 * (path, digest) pairs to the reference set. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>

#include "cli.h"
#include "output.h"
#include "snapshot.h"

json_t *snap_cosmian_load(const char *path, bool *is_cosmian, char *why, size_t why_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	json_error_t jerr;
	json_t *doc;

	*is_cosmian = false;
	if (cvm_file_read(path, SNAP_FILE_MAX, &buf, &len) != CVM_OK) {
		(void)snprintf(why, why_len, "cannot read it (at most %zu bytes)", SNAP_FILE_MAX);
		return NULL;
	}
	doc = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (doc == NULL) {
		(void)snprintf(why, why_len, "not JSON (line %d: %s)", jerr.line, jerr.text);
		return NULL;
	}
	*is_cosmian = snap_cosmian_is(doc);
	if (snap_cosmian_check(doc, why, why_len) == NULL) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* kind_of names the checked document's TEE ("Tdx", "Sev") and lends its
 * policy object. */
static const char *kind_of(json_t *doc, json_t **policy)
{
	json_t *tee = json_object_get(doc, "tee_policy");
	const char *k = json_object_iter_key(json_object_iter(tee));

	*policy = k != NULL ? json_object_get(tee, k) : NULL;
	return k != NULL ? k : "";
}

/* print_fields prints a checked policy object's fields in its order. */
static void print_fields(json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		if (json_is_null(v))
			printf("  %-20s null\n", k);
		else if (json_is_string(v))
			printf("  %-20s %s\n", k, json_string_value(v));
		else
			printf("  %-20s %lld\n", k, (long long)json_integer_value(v));
	}
}

void snap_cosmian_print(json_t *doc, const char *path, bool verbose)
{
	json_t *pol, *tpm = json_object_get(doc, "tpm_policy"), *fh = json_object_get(doc, "filehashes"), *v;
	const char *kind = kind_of(doc, &pol), *ct = json_string_value(json_object_get(doc, "cloud_type"));
	size_t i;

	printf("snapshot %s (Cosmian VM's format: cvm snapshot --cosmian carries it into a cvmkit "
	       "snapshot)\n",
	       path);
	printf("cloud: %s\n", ct != NULL ? ct : "none (on premises)");
	printf("tee policy: %s (null fields are not checked)\n",
	       strcmp(kind, "Tdx") == 0 ? "TDX" : "SEV-SNP");
	if (strcmp(kind, "Tdx") == 0) {
		print_fields(json_object_get(pol, "header"));
		print_fields(json_object_get(pol, "body"));
	} else {
		print_fields(pol);
	}
	if (json_is_object(tpm))
		printf("tpm: resetCount %lld, restartCount %lld\n",
		       (long long)json_integer_value(json_object_get(tpm, "reset_count")),
		       (long long)json_integer_value(json_object_get(tpm, "restart_count")));
	else
		printf("tpm: none\n");
	printf("filehashes: %zu (path, digest) pairs\n", json_array_size(fh));
	if (verbose)
		json_array_foreach(fh, i, v)
		{
			char esc[4 * SNAP_COSMIAN_PATH_MAX + 1];
			json_t *p = json_array_get(v, 0);

			snap_escape_path((const uint8_t *)json_string_value(p), json_string_length(p), esc,
			                 sizeof(esc));
			printf("  %s %s\n", json_string_value(json_array_get(v, 1)), esc);
		}
}

/* ---- checking the VM's evidence against the Cosmian policy ------------------ */

struct mismatches {
	char text[1024];
	size_t count;
};

static void mismatch(struct mismatches *m, const char *name, const char *want, const char *got)
{
	size_t o = strlen(m->text);

	if (o < sizeof(m->text))
		(void)snprintf(m->text + o, sizeof(m->text) - o, "%s%s (snapshot %.100s, VM %.100s)",
		               m->count > 0 ? "; " : "", name, want, got);
	m->count++;
}

/* hex_eq compares a hex field of the policy with `len` bytes of evidence. */
static void hex_eq(struct mismatches *m, json_t *o, const char *name, const uint8_t *got, size_t len)
{
	json_t *v = json_object_get(o, name);
	char hex[2 * 64 + 1];

	if (v == NULL || json_is_null(v))
		return;
	cvm_hex_encode(got, len, hex);
	if (strcmp(json_string_value(v), hex) != 0)
		mismatch(m, name, json_string_value(v), hex);
}

/* int_cmp compares an integer field: equal, or at least (a floor). */
static void int_cmp(struct mismatches *m, json_t *o, const char *name, uint64_t got, bool floor)
{
	json_t *v = json_object_get(o, name);
	char want[32], have[32];

	if (v == NULL || json_is_null(v))
		return;
	if (floor ? got >= (uint64_t)json_integer_value(v) : got == (uint64_t)json_integer_value(v))
		return;
	(void)snprintf(want, sizeof(want), "%s%lld", floor ? ">= " : "", (long long)json_integer_value(v));
	(void)snprintf(have, sizeof(have), "%llu", (unsigned long long)got);
	mismatch(m, name, want, have);
}

static uint64_t le64(const uint8_t p[8])
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void check_tdx(struct mismatches *m, json_t *pol, const struct cvm_quote *q)
{
	json_t *h = json_object_get(pol, "header"), *b = json_object_get(pol, "body"),
	       *svn = json_object_get(b, "minimum_tee_tcb_svn");
	const struct cvm_tdx_report *td = &q->body.td;

	int_cmp(m, h, "minimum_qe_svn", q->qe_svn, true);
	int_cmp(m, h, "minimum_pce_svn", q->pce_svn, true);
	hex_eq(m, h, "qe_vendor_id", q->qe_vendor_id, sizeof(q->qe_vendor_id));
	if (svn != NULL && !json_is_null(svn)) {
		uint8_t floor[16];
		size_t n = 0;
		char have[33];

		/* every SVN byte at least the floor's, as Intel's TCB levels compare */
		if (cvm_hex_decode(json_string_value(svn), 32, floor, sizeof(floor), &n) != CVM_OK ||
		    n != sizeof(floor))
			mismatch(m, "minimum_tee_tcb_svn", json_string_value(svn), "(unreadable)");
		for (size_t i = 0; n == sizeof(floor) && i < sizeof(floor); i++) {
			if (td->tee_tcb_svn[i] < floor[i]) {
				cvm_hex_encode(td->tee_tcb_svn, sizeof(td->tee_tcb_svn), have);
				mismatch(m, "minimum_tee_tcb_svn", json_string_value(svn), have);
				break;
			}
		}
	}
	hex_eq(m, b, "mr_seam", td->mr_seam, sizeof(td->mr_seam));
	hex_eq(m, b, "td_attributes", td->td_attributes, sizeof(td->td_attributes));
	int_cmp(m, b, "xfam", le64(td->xfam), false);
	hex_eq(m, b, "mr_td", td->mr_td, sizeof(td->mr_td));
	hex_eq(m, b, "mr_config_id", td->mr_config_id, sizeof(td->mr_config_id));
	hex_eq(m, b, "mr_owner", td->mr_owner, sizeof(td->mr_owner));
	hex_eq(m, b, "mr_owner_config", td->mr_owner_config, sizeof(td->mr_owner_config));
	/* report_data: the snapshot's was for its own (zero) nonce */
}

static void check_sev(struct mismatches *m, json_t *pol, const struct cvm_snp_report *r)
{
	hex_eq(m, pol, "measurement", r->measurement, sizeof(r->measurement));
	hex_eq(m, pol, "family_id", r->family_id, sizeof(r->family_id));
	hex_eq(m, pol, "image_id", r->image_id, sizeof(r->image_id));
	int_cmp(m, pol, "guest_svn", r->guest_svn, true);
	hex_eq(m, pol, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest));
	hex_eq(m, pol, "author_key_digest", r->author_key_digest, sizeof(r->author_key_digest));
	int_cmp(m, pol, "policy", r->policy, false);
	/* report_data: the snapshot's own nonce; report_id, report_id_ma: this
	 * launch's identity, new at every boot */
}

static int cmp_entry(const void *a, const void *b)
{
	json_t *const *x = a, *const *y = b;
	int c = strcmp(json_string_value(json_object_get(*x, "digest")),
	               json_string_value(json_object_get(*y, "digest")));

	return c != 0 ? c
	              : strcmp(json_string_value(json_object_get(*x, "path")),
	                       json_string_value(json_object_get(*y, "path")));
}

/* merge_filehashes adds the Cosmian pairs to snapshot.ima.entries, keeping
 * them distinct and sorted by digest then path. Returns how many it added,
 * or -1 when out of memory. */
static long merge_filehashes(json_t *snapshot, json_t *fh)
{
	json_t *ent = json_object_get(json_object_get(snapshot, "ima"), "entries"), **all = NULL, *pair, *e;
	size_t n = json_array_size(ent) + json_array_size(fh), k = 0, i, before = json_array_size(ent);
	long added;

	if (!json_is_array(ent))
		return -1;
	all = calloc(n + 1, sizeof(json_t *));
	if (all == NULL)
		return -1;
	json_array_foreach(ent, i, e) all[k++] = json_incref(e);
	json_array_foreach(fh, i, pair)
	{
		const char *ds = json_string_value(json_array_get(pair, 1));
		json_t *p = json_array_get(pair, 0);
		char esc[4 * SNAP_COSMIAN_PATH_MAX + 1], dig[8 + 128 + 1];

		snap_escape_path((const uint8_t *)json_string_value(p), json_string_length(p), esc,
		                 sizeof(esc));
		(void)snprintf(dig, sizeof(dig), "%s:%s", snap_cosmian_digest_algo(strlen(ds)), ds);
		e = json_pack("{s:s, s:s}", "path", esc, "digest", dig);
		if (e == NULL)
			goto fail;
		all[k++] = e;
	}
	qsort(all, k, sizeof(json_t *), cmp_entry);
	if (json_array_clear(ent) != 0)
		goto fail;
	for (i = 0; i < k; i++) {
		if (i > 0 && cmp_entry(&all[i - 1], &all[i]) == 0)
			continue;
		if (json_array_append(ent, all[i]) != 0)
			goto fail;
	}
	added = (long)json_array_size(ent) - (long)before;
	for (i = 0; i < k; i++)
		json_decref(all[i]);
	free(all);
	return added;
fail:
	for (i = 0; i < k; i++)
		json_decref(all[i]);
	free(all);
	return -1;
}

int snap_cosmian_apply(json_t *cos, const char *path, const struct snap_evidence *e, json_t *snapshot,
                       char *why, size_t why_len)
{
	struct mismatches m;
	json_t *pol, *tpm = json_object_get(cos, "tpm_policy"), *imp;
	const char *kind = kind_of(cos, &pol);
	bool is_tdx = strcmp(kind, "Tdx") == 0;
	long added;

	memset(&m, 0, sizeof(m));
	if (is_tdx != (e->res.platform == CVM_EVIDENCE_TDX)) {
		(void)snprintf(why, why_len, "the Cosmian snapshot is of a %s guest, the VM is %s",
		               is_tdx ? "TDX" : "SEV-SNP",
		               e->res.platform == CVM_EVIDENCE_TDX ? "a TDX guest" : "an SEV-SNP guest");
		return CVM_E_MISMATCH;
	}
	if (is_tdx)
		check_tdx(&m, pol, &e->res.dcap.quote);
	else
		check_sev(&m, pol, &e->res.amd.report);
	if (m.count != 0) {
		(void)snprintf(why, why_len,
		               "the VM breaks %zu field%s of the Cosmian snapshot's TEE policy: %s", m.count,
		               m.count == 1 ? "" : "s", m.text);
		return CVM_E_MISMATCH;
	}
	added = merge_filehashes(snapshot, json_object_get(cos, "filehashes"));
	if (added < 0) {
		(void)snprintf(why, why_len, "out of memory");
		return CVM_E_NOMEM;
	}
	imp = json_pack("{s:s, s:s, s:s, s:O, s:I, s:I}", "from", "cosmian_vm", "file", path, "tee_policy",
	                kind, "tpm_policy", tpm != NULL ? tpm : json_null(), "filehashes",
	                (json_int_t)json_array_size(json_object_get(cos, "filehashes")), "pairs_added",
	                (json_int_t)added);
	if (imp == NULL || json_object_set_new(snapshot, "imported", imp) != 0) {
		(void)snprintf(why, why_len, "out of memory");
		return CVM_E_NOMEM;
	}
	return CVM_OK;
}
