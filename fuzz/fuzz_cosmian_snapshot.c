/* Cosmian VM's snapshot document as cvm reads it (cli/snapshot_cosmian_parse.c,
 * `cvm snapshot show` and `cvm snapshot --cosmian`): the input is parsed as
 * JSON and checked. Invariants: a document that checks is Cosmian's (no
 * "format"), its tee_policy holds exactly one of Tdx and Sev, and every
 * filehashes pair is a non-empty path of at most SNAP_COSMIAN_PATH_MAX bytes
 * with a digest whose length names a hash; a refusal always says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512] = "";
	json_error_t jerr;
	json_t *doc, *tee, *fh, *pair;
	size_t i;

	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return 0;
	if (snap_cosmian_check(doc, why, sizeof(why)) == NULL) {
		if (why[0] == '\0')
			__builtin_trap();
		json_decref(doc);
		return 0;
	}
	if (!snap_cosmian_is(doc))
		__builtin_trap();
	tee = json_object_get(doc, "tee_policy");
	if (json_object_size(tee) != 1 ||
	    (json_object_get(tee, "Tdx") == NULL && json_object_get(tee, "Sev") == NULL))
		__builtin_trap();
	fh = json_object_get(doc, "filehashes");
	json_array_foreach(fh, i, pair)
	{
		json_t *p = json_array_get(pair, 0);
		const char *d = json_string_value(json_array_get(pair, 1));

		if (json_string_length(p) == 0 || json_string_length(p) > SNAP_COSMIAN_PATH_MAX ||
		    d == NULL || snap_cosmian_digest_algo(strlen(d)) == NULL)
			__builtin_trap();
	}
	json_decref(doc);
	return 0;
}
