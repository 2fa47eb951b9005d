/* The reader of Cosmian VM's snapshot documents (snapshot_cosmian.c uses
 * it; fuzz/fuzz_cosmian_snapshot.c drives it alone): what is a Cosmian
 * document, and whether every field has its type and length. The format is
 * described in docs/cli/cvm-snapshot.md "Cosmian VM's snapshots". */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "snapshot.h"

/* A field of a policy: its JSON name, its kind and, for hex, its length. */
enum fkind { F_HEX, F_U16, F_U32, F_U64 };
struct field {
	const char *name;
	enum fkind kind;
	size_t len;
};

static const struct field tdx_header[] = {
    {"minimum_qe_svn", F_U16, 0}, {"minimum_pce_svn", F_U16, 0}, {"qe_vendor_id", F_HEX, 16}};
static const struct field tdx_body[] = {{"minimum_tee_tcb_svn", F_HEX, 16},
                                        {"mr_seam", F_HEX, 48},
                                        {"td_attributes", F_HEX, 8},
                                        {"xfam", F_U64, 0},
                                        {"mr_td", F_HEX, 48},
                                        {"mr_config_id", F_HEX, 48},
                                        {"mr_owner", F_HEX, 48},
                                        {"mr_owner_config", F_HEX, 48},
                                        {"report_data", F_HEX, 64}};
static const struct field sev[] = {{"measurement", F_HEX, 48},       {"report_data", F_HEX, 64},
                                   {"family_id", F_HEX, 16},         {"image_id", F_HEX, 16},
                                   {"guest_svn", F_U32, 0},          {"id_key_digest", F_HEX, 48},
                                   {"author_key_digest", F_HEX, 48}, {"policy", F_U64, 0},
                                   {"report_id", F_HEX, 32},         {"report_id_ma", F_HEX, 32}};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool hex_of_len(json_t *v, size_t len)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != 2 * len)
		return false;
	for (size_t i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* fields_ok checks an object of policy fields: only known names, each null
 * or of its kind. `where` names the object in messages. */
static bool fields_ok(json_t *o, const struct field *f, size_t n, const char *where, char *why,
                      size_t why_len)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o)) {
		(void)snprintf(why, why_len, "%s is not an object", where);
		return false;
	}
	json_object_foreach(o, k, v)
	{
		size_t i;
		bool ok;

		for (i = 0; i < n && strcmp(f[i].name, k) != 0; i++)
			;
		if (i == n) {
			(void)snprintf(why, why_len, "%s has an unknown field \"%.64s\"", where, k);
			return false;
		}
		if (json_is_null(v))
			continue;
		switch (f[i].kind) {
		case F_HEX:
			ok = hex_of_len(v, f[i].len);
			break;
		case F_U16:
			ok = json_is_integer(v) && json_integer_value(v) >= 0 &&
			     json_integer_value(v) <= 0xffff;
			break;
		case F_U32:
			ok = json_is_integer(v) && json_integer_value(v) >= 0 &&
			     json_integer_value(v) <= 0xffffffffLL;
			break;
		default: /* F_U64: jansson's integers are signed 64-bit */
			ok = json_is_integer(v) && json_integer_value(v) >= 0;
			break;
		}
		if (!ok) {
			if (f[i].kind == F_HEX)
				(void)snprintf(why, why_len,
				               "%s.%s is not %zu bytes of lowercase hex (or null)", where, k,
				               f[i].len);
			else
				(void)snprintf(why, why_len,
				               "%s.%s is not an unsigned integer in range (or null)", where,
				               k);
			return false;
		}
	}
	return true;
}

const char *snap_cosmian_digest_algo(size_t hex_len)
{
	switch (hex_len) {
	case 40:
		return "sha1";
	case 64:
		return "sha256";
	case 96:
		return "sha384";
	case 128:
		return "sha512";
	default:
		return NULL;
	}
}

static bool filehashes_ok(json_t *fh, char *why, size_t why_len)
{
	size_t i;
	json_t *pair;

	if (json_is_null(fh))
		return true;
	if (!json_is_array(fh) || json_array_size(fh) > SNAP_COSMIAN_FILEHASHES_MAX) {
		(void)snprintf(why, why_len, "\"filehashes\" is not an array of at most %u pairs (or null)",
		               SNAP_COSMIAN_FILEHASHES_MAX);
		return false;
	}
	json_array_foreach(fh, i, pair)
	{
		json_t *p = json_array_get(pair, 0), *d = json_array_get(pair, 1);
		const char *ds = json_string_value(d);

		if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(p) ||
		    json_string_length(p) == 0 || json_string_length(p) > SNAP_COSMIAN_PATH_MAX ||
		    ds == NULL || snap_cosmian_digest_algo(strlen(ds)) == NULL ||
		    !hex_of_len(d, strlen(ds) / 2)) {
			(void)snprintf(
			    why, why_len,
			    "\"filehashes\"[%zu] is not [path, digest] (a path of 1 to %u bytes, a "
			    "SHA-1/256/384/512 digest in lowercase hex)",
			    i, SNAP_COSMIAN_PATH_MAX);
			return false;
		}
	}
	return true;
}

bool snap_cosmian_is(json_t *doc)
{
	return json_is_object(doc) && json_object_get(doc, "format") == NULL &&
	       json_object_get(doc, "tee_policy") != NULL;
}

json_t *snap_cosmian_check(json_t *doc, char *why, size_t why_len)
{
	json_t *tee = json_object_get(doc, "tee_policy"), *tpm, *ct, *v;
	const char *k, *kind = NULL;

	if (!snap_cosmian_is(doc)) {
		(void)snprintf(why, why_len, "not a Cosmian VM snapshot (no \"tee_policy\")");
		return NULL;
	}
	json_object_foreach(doc, k, v)
	{
		if (strcmp(k, "cloud_type") != 0 && strcmp(k, "tee_policy") != 0 &&
		    strcmp(k, "tpm_policy") != 0 && strcmp(k, "filehashes") != 0) {
			(void)snprintf(why, why_len,
			               "an unknown field \"%.64s\" (Cosmian VM's snapshot has "
			               "cloud_type, tee_policy, tpm_policy, filehashes)",
			               k);
			return NULL;
		}
	}
	ct = json_object_get(doc, "cloud_type");
	if (ct != NULL && !json_is_null(ct) &&
	    (!json_is_string(ct) ||
	     (strcmp(json_string_value(ct), "AWS") != 0 && strcmp(json_string_value(ct), "Azure") != 0 &&
	      strcmp(json_string_value(ct), "GCP") != 0))) {
		(void)snprintf(why, why_len, "\"cloud_type\" is none of null, \"AWS\", \"Azure\", \"GCP\"");
		return NULL;
	}
	if (!json_is_object(tee) || json_object_size(tee) != 1) {
		(void)snprintf(why, why_len, "\"tee_policy\" is not an object with one key (Tdx, Sev)");
		return NULL;
	}
	kind = json_object_iter_key(json_object_iter(tee));
	v = json_object_get(tee, kind);
	if (strcmp(kind, "Tdx") == 0) {
		if (!fields_ok(json_object_get(v, "header"), tdx_header, COUNT(tdx_header),
		               "tee_policy.Tdx.header", why, why_len) ||
		    !fields_ok(json_object_get(v, "body"), tdx_body, COUNT(tdx_body), "tee_policy.Tdx.body",
		               why, why_len))
			return NULL;
		if (json_object_size(v) != 2) {
			(void)snprintf(why, why_len, "tee_policy.Tdx has fields other than header and body");
			return NULL;
		}
	} else if (strcmp(kind, "Sev") == 0) {
		if (!fields_ok(v, sev, COUNT(sev), "tee_policy.Sev", why, why_len))
			return NULL;
	} else if (strcmp(kind, "Sgx") == 0) {
		(void)snprintf(why, why_len,
		               "a snapshot of an SGX enclave: cvm snapshot and cvm verify prove "
		               "confidential VMs (TDX, SEV-SNP)");
		return NULL;
	} else {
		(void)snprintf(why, why_len, "tee_policy.%.32s is not a TEE Cosmian VM knows (Tdx, Sev)",
		               kind);
		return NULL;
	}
	tpm = json_object_get(doc, "tpm_policy");
	if (tpm != NULL && !json_is_null(tpm)) {
		static const struct field tf[] = {{"reset_count", F_U32, 0}, {"restart_count", F_U32, 0}};

		if (!fields_ok(tpm, tf, COUNT(tf), "tpm_policy", why, why_len))
			return NULL;
	}
	if (!filehashes_ok(json_object_get(doc, "filehashes"), why, why_len))
		return NULL;
	return doc;
}
