/* The parts of the snapshot's "files" section that read untrusted JSON:
 * a page of the agent's SnapshotFiles answer, and the section of a
 * snapshot file. Apart from the CLI (snapshot_files.c) so that
 * fuzz/fuzz_snapshot_files.c can drive them with the library alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>

#include "snapshot.h"

#define FILES_PATH_TEXT_MAX SNAP_FILES_PATH_TEXT_MAX

/* As the agent escapes paths: bytes outside 0x21..0x7e as \xNN. */
bool snap_files_text_ok(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* digest_ok: "ALGO:HEX" with ALGO the set's and HEX of its length. */
static bool digest_ok(const char *s, size_t n, const char *algo, size_t dlen)
{
	size_t al = strlen(algo);

	if (n != al + 1 + 2 * dlen || strncmp(s, algo, al) != 0 || s[al] != ':')
		return false;
	for (size_t i = al + 1; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int snap_files_page_take(json_t *page, const char *algo, size_t dlen, char **keys, size_t *count,
                         size_t total, char *why, size_t why_len)
{
	json_t *arr = json_object_get(page, "entries"), *ent;
	size_t i;

	if (!json_is_array(arr)) {
		(void)snprintf(why, why_len, "a page has no \"entries\" array");
		return CVM_E_FORMAT;
	}
	json_array_foreach(arr, i, ent)
	{
		json_t *p = json_object_get(ent, "path"), *d = json_object_get(ent, "digest");
		const char *ps = json_string_value(p), *ds = json_string_value(d);
		size_t pl, dl;

		if (ps == NULL || ds == NULL) {
			(void)snprintf(why, why_len, "entry %zu has no \"path\" and \"digest\" strings",
			               *count);
			return CVM_E_FORMAT;
		}
		pl = json_string_length(p);
		dl = json_string_length(d);
		if (!snap_files_text_ok(ps, pl, FILES_PATH_TEXT_MAX) || ps[0] != '/' || strlen(ps) != pl ||
		    !digest_ok(ds, dl, algo, dlen) || strlen(ds) != dl) {
			(void)snprintf(
			    why, why_len,
			    "entry %zu is not an escaped absolute path with a %s digest in lowercase hex",
			    *count, algo);
			return CVM_E_FORMAT;
		}
		if (*count >= total) {
			(void)snprintf(why, why_len, "more entries than the %zu the walk counted", total);
			return CVM_E_FORMAT;
		}
		keys[*count] = malloc(dl + 1 + pl + 1);
		if (keys[*count] == NULL) {
			(void)snprintf(why, why_len, "out of memory");
			return CVM_E_NOMEM;
		}
		memcpy(keys[*count], ds, dl);
		keys[*count][dl] = ' ';
		memcpy(keys[*count] + dl + 1, ps, pl + 1);
		(*count)++;
	}
	return CVM_OK;
}

int snap_files_check(json_t *doc, char *why, size_t why_len)
{
	json_t *f = json_object_get(doc, "files"), *arr, *v;
	enum cvm_digest_alg alg;
	const char *algo, *prev = NULL;
	size_t i, dlen;

	if (f == NULL)
		return CVM_OK;
	algo = json_string_value(json_object_get(f, "algo"));
	if (!json_is_object(f) || algo == NULL || cvm_digest_from_name(algo, &alg) != CVM_OK ||
	    alg == CVM_DIGEST_SM3_256 || strcmp(algo, cvm_digest_name(alg)) != 0) {
		(void)snprintf(why, why_len, "\"files\" needs \"algo\": sha1, sha256, sha384 or sha512");
		return CVM_E_FORMAT;
	}
	dlen = cvm_digest_len(alg);
	arr = json_object_get(f, "entries");
	if (!json_is_array(arr) || json_array_size(arr) > SNAP_FILES_ENTRIES_MAX ||
	    !json_is_integer(json_object_get(f, "count")) ||
	    json_integer_value(json_object_get(f, "count")) != (json_int_t)json_array_size(arr) ||
	    !json_is_integer(json_object_get(f, "skipped")) ||
	    json_integer_value(json_object_get(f, "skipped")) < 0 ||
	    !json_is_array(json_object_get(f, "roots")) || !json_is_array(json_object_get(f, "excluded"))) {
		(void)snprintf(
		    why, why_len,
		    "\"files\" needs \"roots\", \"excluded\", \"count\" (the number of \"entries\", "
		    "at most %u), \"skipped\" and \"entries\"",
		    SNAP_FILES_ENTRIES_MAX);
		return CVM_E_FORMAT;
	}
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v), *sp;
		size_t n = json_string_length(v);

		sp = s != NULL ? memchr(s, ' ', n) : NULL;
		if (s == NULL || strlen(s) != n || sp == NULL ||
		    !digest_ok(s, (size_t)(sp - s), algo, dlen) ||
		    !snap_files_text_ok(sp + 1, n - (size_t)(sp - s) - 1, FILES_PATH_TEXT_MAX) ||
		    sp[1] != '/') {
			(void)snprintf(why, why_len, "\"files.entries\"[%zu] is not \"%s:HEX PATH\"", i,
			               algo);
			return CVM_E_FORMAT;
		}
		if (prev != NULL && strcmp(prev, s) >= 0) {
			(void)snprintf(
			    why, why_len,
			    "\"files.entries\"[%zu] is out of order or repeated (they are sorted, each once)",
			    i);
			return CVM_E_FORMAT;
		}
		prev = s;
	}
	return CVM_OK;
}
