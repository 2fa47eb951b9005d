/* The snapshot's "files" section as cvm reads it (cli/snapshot_files_parse.c):
 * the input is parsed as JSON, as the agent's SnapshotFiles page and as a
 * snapshot document. Invariants: a page never yields more pairs than its
 * room, every pair is "DIGEST PATH" with the path escaped; a section that
 * checks has its entries strictly sorted and as many as its count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/err.h>

#include "snapshot.h"

#define ROOM 64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *keys[ROOM], why[256];
	size_t count = 0;
	json_error_t jerr;
	json_t *doc;

	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return 0;
	memset(keys, 0, sizeof(keys));
	(void)snap_files_page_take(doc, "sha256", 32, keys, &count, ROOM, why, sizeof(why));
	if (count > ROOM)
		__builtin_trap();
	for (size_t i = 0; i < count; i++) {
		const char *sp = strchr(keys[i], ' ');

		if (sp == NULL || strncmp(keys[i], "sha256:", 7) != 0 || (size_t)(sp - keys[i]) != 7 + 64 ||
		    !snap_files_text_ok(sp + 1, strlen(sp + 1), SNAP_FILES_PATH_TEXT_MAX))
			__builtin_trap();
		free(keys[i]);
	}
	if (snap_files_check(doc, why, sizeof(why)) == CVM_OK) {
		json_t *arr = json_object_get(json_object_get(doc, "files"), "entries");

		for (size_t i = 1; i < json_array_size(arr); i++)
			if (strcmp(json_string_value(json_array_get(arr, i - 1)),
			           json_string_value(json_array_get(arr, i))) >= 0)
				__builtin_trap();
		if (arr != NULL &&
		    json_integer_value(json_object_get(json_object_get(doc, "files"), "count")) !=
		        (json_int_t)json_array_size(arr))
			__builtin_trap();
	}
	json_decref(doc);
	return 0;
}
